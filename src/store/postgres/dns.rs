//! The PostgreSQL side of the DNS answer cache (see [`crate::store::dns_cache`]).

use super::PgTx;
use crate::store::dns_cache::{CacheRows, DNS_CACHE_SECONDS};
use crate::store::{StoreError, rows};

impl CacheRows for PgTx<'_> {
    /// One live row's answer, if any.
    fn cached(
        &mut self,
        address: &str,
        kind: &str,
        name: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        let rows = self.query(
            "SELECT answer FROM gl_dns_cache
             WHERE address = $1 AND kind = $2 AND name = $3 AND expires > $4",
            &[&address, &kind, &name, &now],
        )?;
        Ok(rows.first().map(|row| row.get(0)))
    }

    /// Inserts or replaces one row, live until `now` + [`DNS_CACHE_SECONDS`].
    fn cache(
        &mut self,
        address: &str,
        kind: &str,
        name: &str,
        answer: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let expires = now.saturating_add(DNS_CACHE_SECONDS);
        self.execute(
            "INSERT INTO gl_dns_cache (address, kind, name, answer, expires)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (address, kind, name)
             DO UPDATE SET answer = EXCLUDED.answer, expires = EXCLUDED.expires",
            &[&address, &kind, &name, &answer, &expires],
        )
        .map(|_| ())
    }
}

impl PgTx<'_> {
    /// Deletes expired cache rows, at most `limit` when given (skipping rows another
    /// transaction holds, as the bounded triplet purge does).
    pub(super) fn purge_dns_cache(
        &mut self,
        now: i64,
        limit: Option<u64>,
    ) -> Result<(), StoreError> {
        match limit {
            None => self.execute("DELETE FROM gl_dns_cache WHERE expires <= $1", &[&now]),
            Some(limit) => {
                let limit = rows::sql_int(limit);
                self.execute(
                    "DELETE FROM gl_dns_cache WHERE (address, kind, name) IN
                     (SELECT address, kind, name FROM gl_dns_cache WHERE expires <= $1
                      LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&now, &limit],
                )
            }
        }
        .map(|_| ())
    }
}
