//! The SQLite triplets: lookups and writes on the mail path, the auto-whitelist count, purges
//! and counts.

use rusqlite::{OptionalExtension, params};

use super::{AWL_PASSES_UP_TO, PURGE_WINDOW_PER_ROW, SqliteTx};
use crate::store::{LiveTriplet, StoreError, Triplet, TripletCounts, TripletKey, TripletTx, rows};

impl TripletTx for SqliteTx<'_> {
    fn triplet(&mut self, key: &TripletKey) -> Result<Option<Triplet>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT first_seen, earliest_accept, last_seen, expires, pass_count
                 FROM triplets WHERE client = ?1 AND sender = ?2 AND recipient = ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![key.client, key.sender, key.recipient], |row| {
                    rows::triplet(row, 0)
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    fn put_triplet(
        &mut self,
        key: &TripletKey,
        network: &str,
        triplet: &Triplet,
    ) -> Result<(), StoreError> {
        let pass_count = rows::sql_int(triplet.pass_count);
        // The same numbered values for both statements.
        let values = params![
            key.client,
            key.sender,
            key.recipient,
            network,
            triplet.first_seen,
            triplet.earliest_accept,
            triplet.last_seen,
            triplet.expires,
            pass_count,
        ];
        // Most writes update a triplet that exists and keep its network and `passed` flag: an
        // UPDATE that sets no indexed column rewrites the row in place and no index page. Any
        // other write (a new triplet, its first pass, a changed network prefix setting) replaces
        // the row and its index entries whole.
        let updated = self
            .conn
            .prepare_cached(
                "UPDATE triplets SET first_seen = ?5, earliest_accept = ?6, last_seen = ?7,
                        expires = ?8, pass_count = ?9
                 WHERE client = ?1 AND sender = ?2 AND recipient = ?3 AND network = ?4
                   AND passed = (?9 > 0)",
            )
            .and_then(|mut stmt| stmt.execute(values))
            .map_err(|e| self.err(e))?;
        if updated == 0 {
            self.conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO triplets
                     (client, sender, recipient, network, first_seen, earliest_accept, last_seen,
                      expires, pass_count, passed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9 > 0)",
                )
                .and_then(|mut stmt| stmt.execute(values))
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn awl_passes(&mut self, network: &str, now: i64) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT count(*) FROM triplets WHERE network = ?1 AND passed = 1 AND expires > ?2",
            )
            .and_then(|mut stmt| stmt.query_row(params![network, now], |row| row.get::<_, i64>(0)))
            .map(|count| count.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    fn awl_passes_up_to(
        &mut self,
        network: &str,
        now: i64,
        enough: u64,
    ) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached(AWL_PASSES_UP_TO)
            .and_then(|mut stmt| {
                stmt.query_row(params![network, now, rows::sql_int(enough)], |row| {
                    row.get::<_, i64>(0)
                })
            })
            .map(|count| count.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    fn purge_expired(&mut self, now: i64) -> Result<u64, StoreError> {
        self.purge_dns_cache(now, None)?;
        self.conn
            .prepare_cached("DELETE FROM triplets WHERE expires <= ?1")
            .and_then(|mut stmt| stmt.execute(params![now]))
            .map(|count| count as u64)
            .map_err(|e| self.err(e))
    }

    fn triplet_counts(&mut self, now: i64, awl_count: u32) -> Result<TripletCounts, StoreError> {
        let (total, passed, pending): (i64, i64, i64) = self
            .conn
            .prepare_cached(
                "SELECT count(*),
                        coalesce(sum(expires > ?1 AND pass_count > 0), 0),
                        coalesce(sum(expires > ?1 AND pass_count = 0), 0)
                 FROM triplets",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![now], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
                })
            })
            .map_err(|e| self.err(e))?;
        let awl_networks: i64 = if awl_count == 0 {
            0
        } else {
            self.conn
                .prepare_cached(
                    "SELECT count(*) FROM (SELECT network FROM triplets
                     WHERE expires > ?1 AND pass_count > 0
                     GROUP BY network HAVING count(*) >= ?2)",
                )
                .and_then(|mut stmt| {
                    stmt.query_row(params![now, i64::from(awl_count)], |row| row.get(0))
                })
                .map_err(|e| self.err(e))?
        };
        Ok(TripletCounts::from_sql(
            total,
            passed,
            pending,
            awl_networks,
        ))
    }

    fn purge_expired_batch(&mut self, now: i64, limit: u64) -> Result<u64, StoreError> {
        // There is no `expires` index (migration 4): visit at most PURGE_WINDOW_PER_ROW × limit
        // triplets in key order, starting at the key where the previous call stopped, and
        // delete the expired ones among them. Calls take turns over the whole table; each holds
        // the write lock for a bounded time whatever the table's size.
        if limit == 0 {
            return Ok(0);
        }
        self.purge_dns_cache(now, Some(limit))?;
        let window = limit.saturating_mul(PURGE_WINDOW_PER_ROW);
        // Where to start: the saved key, or the smallest key there is.
        let start = self
            .conn
            .prepare_cached("SELECT client, sender, recipient FROM purge_cursor WHERE id = 1")
            .and_then(|mut stmt| {
                stmt.query_row([], |row| {
                    Ok(TripletKey {
                        client: row.get(0)?,
                        sender: row.get(1)?,
                        recipient: row.get(2)?,
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))?
            .unwrap_or(TripletKey {
                client: String::new(),
                sender: String::new(),
                recipient: String::new(),
            });
        let mut expired: Vec<TripletKey> = Vec::new();
        // The first key this call leaves for the next one; None once the table's end is reached.
        let mut next_start: Option<TripletKey> = None;
        {
            // One row past the window, to learn where the next call starts.
            let mut stmt = self
                .conn
                .prepare_cached(
                    "SELECT client, sender, recipient, expires FROM triplets
                     WHERE (client, sender, recipient) >= (?1, ?2, ?3)
                     ORDER BY client, sender, recipient LIMIT ?4",
                )
                .map_err(|e| self.err(e))?;
            let rows_wanted = rows::sql_int(window.saturating_add(1));
            let mut rows = stmt
                .query(params![
                    start.client,
                    start.sender,
                    start.recipient,
                    rows_wanted
                ])
                .map_err(|e| self.err(e))?;
            let mut visited = 0u64;
            while let Some(row) = rows.next().map_err(|e| self.err(e))? {
                let key = TripletKey {
                    client: row.get(0).map_err(|e| self.err(e))?,
                    sender: row.get(1).map_err(|e| self.err(e))?,
                    recipient: row.get(2).map_err(|e| self.err(e))?,
                };
                if visited == window || expired.len() as u64 == limit {
                    next_start = Some(key);
                    break;
                }
                visited += 1;
                let expires: i64 = row.get(3).map_err(|e| self.err(e))?;
                if expires <= now {
                    expired.push(key);
                }
            }
        }
        let mut delete = self
            .conn
            .prepare_cached(
                "DELETE FROM triplets WHERE client = ?1 AND sender = ?2 AND recipient = ?3",
            )
            .map_err(|e| self.err(e))?;
        for key in &expired {
            delete
                .execute(params![key.client, key.sender, key.recipient])
                .map_err(|e| self.err(e))?;
        }
        match next_start {
            Some(key) => self
                .conn
                .prepare_cached(
                    "INSERT OR REPLACE INTO purge_cursor (id, client, sender, recipient)
                     VALUES (1, ?1, ?2, ?3)",
                )
                .and_then(|mut stmt| stmt.execute(params![key.client, key.sender, key.recipient])),
            None => self
                .conn
                .prepare_cached("DELETE FROM purge_cursor")
                .and_then(|mut stmt| stmt.execute([])),
        }
        .map_err(|e| self.err(e))?;
        Ok(expired.len() as u64)
    }

    fn live_triplets(&mut self, now: i64) -> Result<Vec<LiveTriplet>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT client, sender, recipient, network,
                        first_seen, earliest_accept, last_seen, expires, pass_count
                 FROM triplets WHERE expires > ?1 ORDER BY client, sender, recipient",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![now], |row| {
            Ok(LiveTriplet {
                key: TripletKey {
                    client: row.get(0)?,
                    sender: row.get(1)?,
                    recipient: row.get(2)?,
                },
                network: row.get(3)?,
                triplet: rows::triplet(row, 4)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }
}
