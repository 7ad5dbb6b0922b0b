//! The shared PostgreSQL store, for sites with several MX hosts (issue 7): every host's filter,
//! policy server and CLI use one database, selected by a `postgres://` URL as the database
//! location. All PostgreSQL SQL of the project lives in this module (`postgres/`: schema,
//! configuration tables, triplets, decision log, DNS cache).
//!
//! Built on `tokio-postgres` driven by a private current-thread runtime, so the [`Store`]
//! interface stays synchronous while every round trip gets a client-side deadline: a server
//! that accepts the connection and then hangs (stopped process, lost packets) cannot hang the
//! mail path. The sync `postgres` crate wraps the same client but offers no per-call deadline.
//!
//! Timeouts (all configurable, see [`PgOptions`]):
//! - connecting: `connect_timeout` in the URL (libpq's name, seconds), default 3 s;
//! - every statement: the session's `lock_timeout` (T) and `statement_timeout` (T + 250 ms),
//!   server side, a clean error; plus T + 1 s on the client side, for a server that does not
//!   answer at all. Default 5000 ms — SQLite's busy timeout (DESIGN.md §1); set it with the URL
//!   query parameter `timeout_ms=N` or the environment variable `GREY_LISTING_PG_TIMEOUT_MS`.
//!
//! A connection that broke (server restarted, timeout) is dropped and a new one is made at the
//! next [`Store::write`] / [`Store::read`], so a long-running policy server recovers by itself.
//!
//! Each [`PgStore`] is one connection and drives it on its own runtime with `block_on`, so it
//! must be used from an ordinary thread, not from inside another tokio runtime's task (use one
//! store per worker thread, or `spawn_blocking`, in an async server).

mod config;
mod dns;
mod log;
mod options;
mod schema;
mod session;
mod triplets;
mod tx;

use std::collections::HashMap;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Config, NoTls};

use super::{Store, StoreError, Tx, location, pgurl};
pub(crate) use options::DEFAULT_CONNECT_TIMEOUT;
use options::driver_config;
pub use options::{PgConfigError, PgOptions};
use schema::migrate;
use session::{Conn, Context, wait};
use tx::{Attempt, PgTx, attempt, triplet_from};

/// Advisory-lock namespaces (first key of the two-key form), so our locks do not collide with
/// another application's advisory locks in a shared database. "GLS"/"GLT" in ASCII.
const LOCK_NS_SCHEMA: i32 = 0x474C_5300;
const LOCK_NS_TRIPLET: i32 = 0x474C_5400;

/// How often a write transaction is re-run after PostgreSQL aborted it to break a deadlock or a
/// serialisation failure (not expected from message checks, which hold one triplet lock each).
const DEADLOCK_RETRIES: u32 = 3;

/// A PostgreSQL database holding the greylisting state.
pub struct PgStore {
    config: Config,
    context: Context,
    runtime: Runtime,
    conn: Option<Conn>,
    /// The schema was checked (and created or migrated) on this store's first connection.
    migrated: bool,
}

impl PgStore {
    /// Opens the database at `url` with the timeouts of the process environment, connecting
    /// at once and creating or migrating the schema.
    pub fn open(url: &str) -> Result<PgStore, StoreError> {
        let options = PgOptions::from_env(&crate::clock::process_env).map_err(|source| {
            StoreError::PgConfig {
                location: location::redact(url),
                source,
            }
        })?;
        PgStore::open_with(url, options)
    }

    /// Opens the database at `url`; a `timeout_ms` in the URL beats `options.timeout`. A
    /// password may also come from `password_file=` in the URL or the process's `PGPASSFILE`.
    pub fn open_with(url: &str, options: PgOptions) -> Result<PgStore, StoreError> {
        let shown = location::redact(url);
        let invalid = |message: String| StoreError::Postgres {
            location: shown.clone(),
            message,
        };
        let (mut config, url_timeout) =
            driver_config(url, &crate::clock::process_env).map_err(|source| {
                StoreError::PgConfig {
                    location: shown.clone(),
                    source,
                }
            })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("grey_listing");
        }
        let timeout = url_timeout.unwrap_or(options.timeout);
        // Keepalives notice a peer that vanished without closing (a dead MX link) on an idle
        // pooled connection; the TCP user timeout bounds unacknowledged writes.
        config.keepalives_idle(Duration::from_secs(30));
        config.tcp_user_timeout(timeout + Duration::from_secs(1));
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| invalid(format!("cannot start the client runtime: {e}")))?;
        let mut store = PgStore {
            config,
            context: Context {
                shown,
                password,
                timeout,
            },
            runtime,
            conn: None,
            migrated: false,
        };
        store.ensure_connected()?;
        Ok(store)
    }

    /// The statement timeout in force.
    pub fn timeout(&self) -> Duration {
        self.context.timeout
    }

    /// Makes sure there is a usable connection, reconnecting (and, on the first connection,
    /// checking the schema) if needed.
    fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if let Some(conn) = &self.conn
            && !conn.broken
            && !conn.client.is_closed()
        {
            return Ok(());
        }
        self.conn = None;
        let connect_deadline = self
            .config
            .get_connect_timeout()
            .copied()
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT)
            + self.context.timeout;
        let config = &self.config;
        let connected = self.runtime.block_on(async {
            tokio::time::timeout(connect_deadline, config.connect(NoTls)).await
        });
        let (client, connection) = match connected {
            Ok(Ok(pair)) => pair,
            Ok(Err(err)) => return Err(self.context.error(&err)),
            Err(_elapsed) => {
                return Err(StoreError::Timeout {
                    location: self.context.shown.clone(),
                    waited_ms: connect_deadline.as_millis() as u64,
                });
            }
        };
        // The connection task runs whenever the runtime is driven by a round trip.
        self.runtime.spawn(async move {
            let _ = connection.await;
        });
        let mut conn = Conn {
            client,
            statements: HashMap::new(),
            broken: false,
            last_state: None,
        };
        let ms = self.context.timeout.as_millis();
        // The statement timeout is a quarter second longer than the lock timeout, so a lock
        // wait is reported as "locked", not as a slow statement. idle_in_transaction: a client
        // stuck between statements must not hold triplet locks for long.
        let session = format!(
            "SET lock_timeout = {ms}; SET statement_timeout = {}; \
             SET idle_in_transaction_session_timeout = {}",
            ms + 250,
            ms * 2
        );
        wait(
            &self.runtime,
            &self.context,
            (&mut conn.broken, &mut conn.last_state),
            conn.client.batch_execute(&session),
        )?;
        if !self.migrated {
            migrate(&self.runtime, &self.context, &mut conn)?;
            self.migrated = true;
        }
        self.conn = Some(conn);
        Ok(())
    }

    fn run(
        &mut self,
        writing: bool,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut deadlocks = 0;
        let mut reconnected = false;
        loop {
            self.ensure_connected()?;
            let Some(conn) = self.conn.as_mut() else {
                return Err(self.context.timed_out());
            };
            let result = attempt(&self.runtime, &self.context, conn, writing, f);
            let broken = conn.broken || conn.client.is_closed();
            let state = conn.last_state.take();
            if broken {
                self.conn = None;
            }
            match result {
                Attempt::Done(result) => {
                    let deadlock = state.as_ref().is_some_and(|s| {
                        *s == SqlState::T_R_DEADLOCK_DETECTED
                            || *s == SqlState::T_R_SERIALIZATION_FAILURE
                    });
                    if result.is_err() && deadlock && deadlocks < DEADLOCK_RETRIES {
                        deadlocks += 1;
                        continue;
                    }
                    return result;
                }
                // BEGIN failed on a connection that had gone stale (server restarted since
                // the last use): nothing ran, so try once more on a fresh connection. Not
                // after a timeout: a hung server would only double the wait.
                Attempt::BeginFailed(err) => {
                    let timed_out = matches!(err, StoreError::Timeout { .. });
                    if broken && !timed_out && !reconnected {
                        reconnected = true;
                        continue;
                    }
                    return Err(err);
                }
            }
        }
    }
}

impl Store for PgStore {
    fn write(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.run(true, f)
    }

    fn read(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.run(false, f)
    }

    fn describe(&self) -> String {
        self.context.shown.clone()
    }
}

#[cfg(test)]
mod tests;
