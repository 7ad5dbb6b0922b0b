//! The SQLite side of the DNS answer cache (see [`crate::store::dns_cache`]).

use rusqlite::{OptionalExtension, params};

use super::SqliteTx;
use crate::store::dns_cache::{CacheRows, DNS_CACHE_SECONDS};
use crate::store::{StoreError, rows};

impl CacheRows for SqliteTx<'_> {
    /// One live row's answer, if any.
    fn cached(
        &mut self,
        address: &str,
        kind: &str,
        name: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT answer FROM dns_cache
                 WHERE address = ?1 AND kind = ?2 AND name = ?3 AND expires > ?4",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![address, kind, name, now], |row| row.get(0))
                    .optional()
            })
            .map_err(|e| self.err(e))
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
        self.conn
            .prepare_cached(
                "INSERT INTO dns_cache (address, kind, name, answer, expires)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (address, kind, name)
                 DO UPDATE SET answer = excluded.answer, expires = excluded.expires",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    address,
                    kind,
                    name,
                    answer,
                    now.saturating_add(DNS_CACHE_SECONDS)
                ])
            })
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}

impl SqliteTx<'_> {
    /// Deletes expired cache rows, at most `limit` when given (through the `expires` index).
    pub(super) fn purge_dns_cache(&self, now: i64, limit: Option<u64>) -> Result<(), StoreError> {
        let limit = limit.map_or(-1, rows::sql_int);
        self.conn
            .prepare_cached(
                "DELETE FROM dns_cache WHERE rowid IN
                 (SELECT rowid FROM dns_cache WHERE expires <= ?1 LIMIT ?2)",
            )
            .and_then(|mut stmt| stmt.execute(params![now, limit]))
            .map(|_| ())
            .map_err(|e| self.err(e))
    }
}
