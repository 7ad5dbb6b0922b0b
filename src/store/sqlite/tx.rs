//! The handle an SQLite transaction gives the caller's closure. It is a [`Tx`](crate::store::Tx) through the
//! concept traits, each implemented in the file of its concept (configuration, triplets, log,
//! DNS cache).

use rusqlite::Connection;

use super::sqlite_or_locked;
use crate::store::StoreError;

/// The [`Tx`](crate::store::Tx) of an SQLite transaction.
pub(super) struct SqliteTx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) path: &'a str,
}

impl SqliteTx<'_> {
    pub(super) fn err(&self, source: rusqlite::Error) -> StoreError {
        sqlite_or_locked(self.path, source)
    }
}
