//! The PostgreSQL triplets: lookups and writes (under a per-triplet advisory lock) on the mail
//! path, the auto-whitelist count, purges and counts.

use super::{LOCK_NS_TRIPLET, PgTx, triplet_from};
use crate::store::{LiveTriplet, StoreError, Triplet, TripletCounts, TripletKey, TripletTx, rows};

impl TripletTx for PgTx<'_> {
    fn triplet(&mut self, key: &TripletKey) -> Result<Option<Triplet>, StoreError> {
        let lock = (key.client.clone(), key.sender.clone());
        if self.writing && !self.triplet_locks.contains(&lock) {
            // The check-and-update of a triplet must be atomic (DESIGN.md §1): two MX hosts seeing
            // the same retry must not both count it, and two early retries must both add their
            // penalty. SELECT ... FOR UPDATE would lock only a row that exists, leaving a new
            // triplet's first sighting racy; a transaction-scoped advisory lock also covers the
            // row that is not there yet, and is released at COMMIT or ROLLBACK. put_triplet's
            // INSERT ... ON CONFLICT then cannot make duplicate rows whatever happens.
            //
            // The lock is on the client and sender, not the whole triplet: every recipient of
            // one message shares them, so a message check holds one such lock, and two messages
            // naming the same recipients in different orders cannot deadlock (they would with
            // one lock per recipient). Messages from the same client and sender are serialised,
            // which costs nothing worth measuring; a hash collision does the same to two
            // unrelated ones.
            //
            // The lock is its own statement, before the read: under READ COMMITTED each
            // statement reads the data committed when it starts, so a read in the same
            // statement as the lock wait could see the row as it was before the wait.
            self.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2 || chr(31) || $3))",
                &[&LOCK_NS_TRIPLET, &key.client, &key.sender],
            )?;
            self.triplet_locks.push(lock);
        }
        Ok(self
            .query(
                "SELECT first_seen, earliest_accept, last_seen, expires, pass_count
                 FROM gl_triplets WHERE client = $1 AND sender = $2 AND recipient = $3",
                &[&key.client, &key.sender, &key.recipient],
            )?
            .first()
            .map(|row| triplet_from(row, 0)))
    }

    fn put_triplet(
        &mut self,
        key: &TripletKey,
        network: &str,
        triplet: &Triplet,
    ) -> Result<(), StoreError> {
        let pass_count = rows::sql_int(triplet.pass_count);
        self.execute(
            "INSERT INTO gl_triplets
             (client, sender, recipient, network, first_seen, earliest_accept, last_seen, expires, pass_count)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (client, sender, recipient) DO UPDATE SET
                 network = EXCLUDED.network,
                 first_seen = EXCLUDED.first_seen,
                 earliest_accept = EXCLUDED.earliest_accept,
                 last_seen = EXCLUDED.last_seen,
                 expires = EXCLUDED.expires,
                 pass_count = EXCLUDED.pass_count",
            &[
                &key.client,
                &key.sender,
                &key.recipient,
                &network,
                &triplet.first_seen,
                &triplet.earliest_accept,
                &triplet.last_seen,
                &triplet.expires,
                &pass_count,
            ],
        )?;
        Ok(())
    }

    fn awl_passes(&mut self, network: &str, now: i64) -> Result<u64, StoreError> {
        let rows = self.query(
            "SELECT count(*) FROM gl_triplets WHERE network = $1 AND expires > $2 AND pass_count > 0",
            &[&network, &now],
        )?;
        Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0)).max(0) as u64)
    }

    fn awl_passes_up_to(
        &mut self,
        network: &str,
        now: i64,
        enough: u64,
    ) -> Result<u64, StoreError> {
        // The partial index gl_triplets_awl serves the inner select; LIMIT stops at the threshold.
        let rows = self.query(
            "SELECT count(*) FROM (SELECT 1 FROM gl_triplets
             WHERE network = $1 AND expires > $2 AND pass_count > 0 LIMIT $3) AS passed",
            &[&network, &now, &rows::sql_int(enough)],
        )?;
        Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0)).max(0) as u64)
    }

    fn purge_expired(&mut self, now: i64) -> Result<u64, StoreError> {
        self.purge_dns_cache(now, None)?;
        self.execute("DELETE FROM gl_triplets WHERE expires <= $1", &[&now])
    }

    fn live_triplets(&mut self, now: i64) -> Result<Vec<LiveTriplet>, StoreError> {
        Ok(self
            .query(
                "SELECT client, sender, recipient, network,
                        first_seen, earliest_accept, last_seen, expires, pass_count
                 FROM gl_triplets WHERE expires > $1
                 ORDER BY client COLLATE \"C\", sender COLLATE \"C\", recipient COLLATE \"C\"",
                &[&now],
            )?
            .iter()
            .map(|row| LiveTriplet {
                key: TripletKey {
                    client: row.get(0),
                    sender: row.get(1),
                    recipient: row.get(2),
                },
                network: row.get(3),
                triplet: triplet_from(row, 4),
            })
            .collect())
    }

    fn triplet_counts(&mut self, now: i64, awl_count: u32) -> Result<TripletCounts, StoreError> {
        let rows = self.query(
            "SELECT count(*),
                    count(*) FILTER (WHERE expires > $1 AND pass_count > 0),
                    count(*) FILTER (WHERE expires > $1 AND pass_count = 0)
             FROM gl_triplets",
            &[&now],
        )?;
        let (total, passed, pending): (i64, i64, i64) = rows
            .first()
            .map_or((0, 0, 0), |row| (row.get(0), row.get(1), row.get(2)));
        let awl_networks: i64 = if awl_count == 0 {
            0
        } else {
            self.query(
                "SELECT count(*) FROM (SELECT network FROM gl_triplets
                 WHERE expires > $1 AND pass_count > 0
                 GROUP BY network HAVING count(*) >= $2) AS awl",
                &[&now, &i64::from(awl_count)],
            )?
            .first()
            .map_or(0, |row| row.get(0))
        };
        Ok(TripletCounts::from_sql(
            total,
            passed,
            pending,
            awl_networks,
        ))
    }

    fn purge_expired_batch(&mut self, now: i64, limit: u64) -> Result<u64, StoreError> {
        self.purge_dns_cache(now, Some(limit))?;
        let limit = rows::sql_int(limit);
        self.execute(
            "DELETE FROM gl_triplets WHERE (client, sender, recipient) IN
             (SELECT client, sender, recipient FROM gl_triplets WHERE expires <= $1
              LIMIT $2 FOR UPDATE SKIP LOCKED)",
            &[&now, &limit],
        )
    }
}
