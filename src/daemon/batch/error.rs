//! Why a request could not be decided. The reason travels typed from the store (or the pool)
//! to the daemon's reply, where it is written once, through `Display`, into the request's
//! `action=pass, reason=error: <why>` log line; the metrics count it as a store error.

use std::sync::Arc;

use thiserror::Error;

use crate::store::StoreError;

/// Why the store could not decide a request (the request passes: the daemons fail open).
#[derive(Debug, Clone, Error)]
pub(crate) enum DecideError {
    /// The store failed in the transaction. One failure fails every request of the
    /// transaction, so the error is shared rather than copied as text.
    #[error(transparent)]
    Store(Arc<StoreError>),
    /// The database is not open: opening it failed (that error was logged when it happened)
    /// and the next try waits a moment.
    #[error("database unavailable")]
    Unavailable,
    /// The database did not answer in time a moment ago (a hung or far too slow server): the
    /// requests pass at once rather than each waiting out the timeout again.
    #[error("database not answering (it did not answer in time a moment ago)")]
    NotAnswering,
    /// A panic inside the transaction, with its message; the transaction was rolled back.
    #[error("panic while deciding: {0}")]
    Panicked(String),
    /// A panic in the daemon while deciding, outside any transaction.
    #[error("internal error")]
    Internal,
    /// The pool thread that owns the request's connection is gone.
    #[error("database worker stopped")]
    WorkerStopped,
    /// The transaction returned fewer or more outcomes than it had requests.
    #[error("missing outcome")]
    MissingOutcome,
}

impl From<StoreError> for DecideError {
    fn from(err: StoreError) -> DecideError {
        DecideError::Store(Arc::new(err))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;

    // Each reason reads as the text the daemons logged before it was typed.
    #[test]
    fn reasons_read_as_before() {
        assert_eq!(DecideError::Unavailable.to_string(), "database unavailable");
        assert_eq!(
            DecideError::NotAnswering.to_string(),
            "database not answering (it did not answer in time a moment ago)"
        );
        assert_eq!(
            DecideError::Panicked("boom".to_string()).to_string(),
            "panic while deciding: boom"
        );
        assert_eq!(DecideError::Internal.to_string(), "internal error");
        assert_eq!(
            DecideError::WorkerStopped.to_string(),
            "database worker stopped"
        );
        assert_eq!(DecideError::MissingOutcome.to_string(), "missing outcome");
    }

    // A store error keeps its own message and its cause (the SQLite error under it), and a
    // copy for another request of the same transaction is the same error, not a new text.
    #[test]
    fn a_store_error_keeps_its_message_and_source() {
        let store = StoreError::Sqlite {
            location: "/tmp/g.db".to_string(),
            source: rusqlite::Error::InvalidQuery,
        };
        let text = store.to_string();
        let err = DecideError::from(store);
        assert_eq!(err.to_string(), text);
        let copy = err.clone();
        let (DecideError::Store(a), DecideError::Store(b)) = (&err, &copy) else {
            panic!("not a store error: {err:?}");
        };
        assert!(Arc::ptr_eq(a, b));
        assert!(matches!(**a, StoreError::Sqlite { .. }));
        let source = err.source().expect("the SQLite error");
        assert_eq!(
            source.to_string(),
            rusqlite::Error::InvalidQuery.to_string()
        );
        assert!(source.downcast_ref::<rusqlite::Error>().is_some());
    }
}
