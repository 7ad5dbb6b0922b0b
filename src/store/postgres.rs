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
mod triplets;

use options::driver_config;
pub use options::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, PgOptions, TIMEOUT_ENV, TIMEOUT_PARAM,
};
use schema::migrate;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use super::{
    DecisionCount, LiveTriplet, LogEntry, Store, StoreError, Triplet, TripletCounts, TripletKey,
    Tx, location, pgurl,
};
use crate::config::{ListKind, Settings};
use crate::dns::{Forward, ZoneAnswer};

/// Advisory-lock namespaces (first key of the two-key form), so our locks do not collide with
/// another application's advisory locks in a shared database. "GLS"/"GLT" in ASCII.
const LOCK_NS_SCHEMA: i32 = 0x474C_5300;
const LOCK_NS_TRIPLET: i32 = 0x474C_5400;

/// How often a write transaction is re-run after PostgreSQL aborted it to break a deadlock or a
/// serialisation failure (not expected from message checks, which hold one triplet lock each).
const DEADLOCK_RETRIES: u32 = 3;

/// One live connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<&'static str, Statement>,
    /// Set when a deadline passed or the connection failed: it must not be used again.
    broken: bool,
    /// The SQLSTATE of the last failed statement, to retry deadlock victims.
    last_state: Option<SqlState>,
}

/// What error messages need: the redacted location, the password to scrub, the deadline.
struct Context {
    shown: String,
    password: Option<String>,
    timeout: Duration,
}

impl Context {
    /// The client-side deadline of one round trip: the server's own timeout fires first.
    fn deadline(&self) -> Duration {
        self.timeout + Duration::from_secs(1)
    }

    fn error(&self, err: &tokio_postgres::Error) -> StoreError {
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

    fn timed_out(&self) -> StoreError {
        StoreError::Timeout {
            location: self.shown.clone(),
            waited_ms: self.deadline().as_millis() as u64,
        }
    }
}

/// Runs one round trip on the runtime with the client-side deadline. On a deadline or a
/// connection failure the connection is marked broken, so the store reconnects next time.
fn wait<T>(
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
        let options = PgOptions::from_env(&crate::clock::process_env).map_err(|why| {
            StoreError::Postgres {
                location: location::redact(url),
                message: why,
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
            driver_config(url, &crate::clock::process_env).map_err(invalid)?;
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

enum Attempt {
    BeginFailed(StoreError),
    Done(Result<(), StoreError>),
}

fn attempt(
    runtime: &Runtime,
    context: &Context,
    conn: &mut Conn,
    writing: bool,
    f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
) -> Attempt {
    // Writes use READ COMMITTED plus explicit locks (see `PgTx::triplet`); reads get one
    // consistent snapshot.
    let begin = if writing {
        "BEGIN ISOLATION LEVEL READ COMMITTED"
    } else {
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    };
    if let Err(err) = wait(
        runtime,
        context,
        (&mut conn.broken, &mut conn.last_state),
        conn.client.batch_execute(begin),
    ) {
        return Attempt::BeginFailed(err);
    }
    let mut tx = PgTx {
        runtime,
        context,
        conn,
        writing,
        failed: false,
        settings_read: None,
        lists_read: None,
        triplet_locks: Vec::new(),
    };
    let result = f(&mut tx);
    let failed = tx.failed;
    let conn = tx.conn;
    if conn.broken {
        return Attempt::Done(result.and(Err(context.timed_out())));
    }
    let finish = match (&result, failed) {
        (Ok(()), false) => "COMMIT",
        _ => "ROLLBACK",
    };
    let finished = wait(
        runtime,
        context,
        (&mut conn.broken, &mut conn.last_state),
        conn.client.batch_execute(finish),
    );
    Attempt::Done(match (result, failed) {
        (Err(err), _) => Err(err),
        // A statement failed but the closure carried on: PostgreSQL aborted the transaction.
        (Ok(()), true) => Err(StoreError::Postgres {
            location: context.shown.clone(),
            message: "transaction aborted by an earlier error".to_string(),
        }),
        (Ok(()), false) => finished,
    })
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

/// The [`Tx`] of a PostgreSQL transaction.
struct PgTx<'a> {
    runtime: &'a Runtime,
    context: &'a Context,
    conn: &'a mut Conn,
    writing: bool,
    /// A statement failed: the transaction is aborted and must not be committed.
    failed: bool,
    /// The settings as read in this transaction, so `set_settings` writes only what changed.
    settings_read: Option<Vec<(String, String)>>,
    /// Every list of one owner, read in one round trip by the first `list` call for that owner
    /// (a message check reads all four server lists, then both of a mailbox's): saves round
    /// trips, which is where the time goes (docs/BENCHMARKS.md). Any list edit clears it.
    lists_read: Option<(String, Vec<(String, String)>)>,
    /// The (client, sender) pairs whose triplet lock this transaction holds.
    triplet_locks: Vec<(String, String)>,
}

type Params<'p> = [&'p (dyn ToSql + Sync)];

impl PgTx<'_> {
    fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.conn.statements.get(sql) {
            return Ok(statement.clone());
        }
        let conn = &mut *self.conn;
        let statement = wait(
            self.runtime,
            self.context,
            (&mut conn.broken, &mut conn.last_state),
            conn.client.prepare(sql),
        )
        .inspect_err(|_| self.failed = true)?;
        self.conn.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    fn query(&mut self, sql: &'static str, params: &Params<'_>) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let conn = &mut *self.conn;
        wait(
            self.runtime,
            self.context,
            (&mut conn.broken, &mut conn.last_state),
            conn.client.query(&statement, params),
        )
        .inspect_err(|_| self.failed = true)
    }

    fn execute(&mut self, sql: &'static str, params: &Params<'_>) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        let conn = &mut *self.conn;
        wait(
            self.runtime,
            self.context,
            (&mut conn.broken, &mut conn.last_state),
            conn.client.execute(&statement, params),
        )
        .inspect_err(|_| self.failed = true)
    }
}

fn triplet_from(row: &Row, offset: usize) -> Triplet {
    Triplet {
        first_seen: row.get(offset),
        earliest_accept: row.get(offset + 1),
        last_seen: row.get(offset + 2),
        expires: row.get(offset + 3),
        pass_count: row.get::<_, i64>(offset + 4).max(0) as u64,
    }
}

impl Tx for PgTx<'_> {
    fn config_stamp(&mut self) -> Result<Option<i64>, StoreError> {
        PgTx::config_stamp(self)
    }

    fn settings(&mut self) -> Result<Settings, StoreError> {
        PgTx::settings(self)
    }

    fn settings_for_update(&mut self) -> Result<Settings, StoreError> {
        PgTx::settings_for_update(self)
    }

    fn set_settings(&mut self, settings: &Settings) -> Result<(), StoreError> {
        PgTx::set_settings(self, settings)
    }

    fn list(&mut self, kind: ListKind, owner: &str) -> Result<Vec<String>, StoreError> {
        PgTx::list(self, kind, owner)
    }

    fn pattern_notices(&mut self) -> Result<Vec<String>, StoreError> {
        PgTx::pattern_notices(self)
    }

    fn clear_pattern_notices(&mut self) -> Result<(), StoreError> {
        PgTx::clear_pattern_notices(self)
    }

    fn add_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        PgTx::add_pattern(self, kind, owner, pattern)
    }

    fn delete_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        PgTx::delete_pattern(self, kind, owner, pattern)
    }

    fn domain_status(&mut self, domain: &str) -> Result<Option<bool>, StoreError> {
        PgTx::domain_status(self, domain)
    }

    fn set_domain_status(&mut self, domain: &str, enabled: bool) -> Result<(), StoreError> {
        PgTx::set_domain_status(self, domain, enabled)
    }

    fn domains(&mut self) -> Result<Vec<(String, bool)>, StoreError> {
        PgTx::domains(self)
    }

    fn delete_domain(&mut self, domain: &str) -> Result<(), StoreError> {
        PgTx::delete_domain(self, domain)
    }

    fn mailboxes(&mut self) -> Result<Vec<String>, StoreError> {
        PgTx::mailboxes(self)
    }

    fn triplet(&mut self, key: &TripletKey) -> Result<Option<Triplet>, StoreError> {
        PgTx::triplet(self, key)
    }

    fn put_triplet(
        &mut self,
        key: &TripletKey,
        network: &str,
        triplet: &Triplet,
    ) -> Result<(), StoreError> {
        PgTx::put_triplet(self, key, network, triplet)
    }

    fn awl_passes(&mut self, network: &str, now: i64) -> Result<u64, StoreError> {
        PgTx::awl_passes(self, network, now)
    }

    fn awl_passes_up_to(
        &mut self,
        network: &str,
        now: i64,
        enough: u64,
    ) -> Result<u64, StoreError> {
        PgTx::awl_passes_up_to(self, network, now, enough)
    }

    fn purge_expired(&mut self, now: i64) -> Result<u64, StoreError> {
        PgTx::purge_expired(self, now)
    }

    fn dns_cache_get(
        &mut self,
        ip: IpAddr,
        zones: &[String],
        now: i64,
    ) -> Result<Vec<ZoneAnswer>, StoreError> {
        self.zone_answers(ip, zones, now)
    }

    fn dns_cache_put(
        &mut self,
        ip: IpAddr,
        answers: &[ZoneAnswer],
        now: i64,
    ) -> Result<(), StoreError> {
        self.put_zone_answers(ip, answers, now)
    }

    fn forward_cache_get(
        &mut self,
        ip: IpAddr,
        name: &str,
        now: i64,
    ) -> Result<Option<Forward>, StoreError> {
        self.forward_answer(ip, name, now)
    }

    fn forward_cache_put(
        &mut self,
        ip: IpAddr,
        name: &str,
        forward: Forward,
        now: i64,
    ) -> Result<(), StoreError> {
        self.put_forward_answer(ip, name, forward, now)
    }

    fn live_triplets(&mut self, now: i64) -> Result<Vec<LiveTriplet>, StoreError> {
        PgTx::live_triplets(self, now)
    }

    fn log_decision(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        PgTx::log_decision(self, entry)
    }

    fn count_decisions(&mut self, counts: &[DecisionCount]) -> Result<(), StoreError> {
        PgTx::count_decisions(self, counts)
    }

    fn decision_counters(&mut self) -> Result<Vec<DecisionCount>, StoreError> {
        PgTx::decision_counters(self)
    }

    fn decision_log(&mut self, since: i64) -> Result<Vec<LogEntry>, StoreError> {
        PgTx::decision_log(self, since)
    }

    fn purge_decision_log(&mut self, before: i64, limit: Option<u64>) -> Result<u64, StoreError> {
        PgTx::purge_decision_log(self, before, limit)
    }

    fn triplet_counts(&mut self, now: i64, awl_count: u32) -> Result<TripletCounts, StoreError> {
        PgTx::triplet_counts(self, now, awl_count)
    }

    fn purge_expired_batch(&mut self, now: i64, limit: u64) -> Result<u64, StoreError> {
        PgTx::purge_expired_batch(self, now, limit)
    }
}

#[cfg(test)]
mod tests;
