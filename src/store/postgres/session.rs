//! One PostgreSQL connection driven on the store's runtime: every round trip under a client-side
//! deadline, errors turned into [`StoreError`]s that name the redacted location and never the
//! password.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Statement};

use crate::store::StoreError;

/// One live connection and the statements prepared on it.
pub(super) struct Conn {
    pub(super) client: Client,
    pub(super) statements: HashMap<&'static str, Statement>,
    /// Set when a deadline passed or the connection failed: it must not be used again.
    pub(super) broken: bool,
    /// The SQLSTATE of the last failed statement, to retry deadlock victims.
    pub(super) last_state: Option<SqlState>,
}

/// What error messages need: the redacted location, the password to scrub, the deadline.
pub(super) struct Context {
    pub(super) shown: String,
    pub(super) password: Option<String>,
    pub(super) timeout: Duration,
}

impl Context {
    /// The client-side deadline of one round trip: the server's own timeout fires first.
    pub(super) fn deadline(&self) -> Duration {
        self.timeout + Duration::from_secs(1)
    }

    pub(super) fn error(&self, err: &tokio_postgres::Error) -> StoreError {
        let waited_ms = self.timeout.as_millis() as u64;
        match err.code() {
            Some(state) if *state == SqlState::LOCK_NOT_AVAILABLE => {
                return StoreError::Locked {
                    location: self.shown.clone(),
                    waited_ms,
                };
            }
            Some(state) if *state == SqlState::QUERY_CANCELED => {
                return StoreError::Timeout {
                    location: self.shown.clone(),
                    waited_ms,
                };
            }
            _ => {}
        }
        let mut message = match err.as_db_error() {
            Some(db) => format!(
                "{}: {} (SQLSTATE {})",
                db.severity(),
                db.message(),
                db.code().code()
            ),
            None => {
                let mut text = err.to_string();
                let mut source = std::error::Error::source(err);
                while let Some(cause) = source {
                    text.push_str(": ");
                    text.push_str(&cause.to_string());
                    source = cause.source();
                }
                text
            }
        };
        // The driver never prints the password, but a server message might echo input: scrub.
        if let Some(password) = self.password.as_deref().filter(|p| !p.is_empty()) {
            message = message.replace(password, "***");
        }
        StoreError::Postgres {
            location: self.shown.clone(),
            message,
        }
    }

    pub(super) fn timed_out(&self) -> StoreError {
        StoreError::Timeout {
            location: self.shown.clone(),
            waited_ms: self.deadline().as_millis() as u64,
        }
    }
}

/// Runs one round trip on the runtime with the client-side deadline. On a deadline or a
/// connection failure the connection is marked broken, so the store reconnects next time.
pub(super) fn wait<T>(
    runtime: &Runtime,
    context: &Context,
    conn_state: (&mut bool, &mut Option<SqlState>),
    future: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, StoreError> {
    let (broken, last_state) = conn_state;
    let deadline = context.deadline();
    // The timer must be created inside the runtime, hence the async block.
    let outcome = runtime.block_on(async { tokio::time::timeout(deadline, future).await });
    match outcome {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            *last_state = err.code().cloned();
            if err.as_db_error().is_none() || err.is_closed() {
                *broken = true;
            }
            Err(context.error(&err))
        }
        Err(_elapsed) => {
            *broken = true;
            Err(context.timed_out())
        }
    }
}
