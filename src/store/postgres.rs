//! The shared PostgreSQL store, for sites with several MX hosts (issue 7): every host's filter,
//! policy server and CLI use one database, selected by a `postgres://` URL as the database
//! location. All PostgreSQL SQL of the project lives in this file.
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

mod dns;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use tokio::runtime::Runtime;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

use super::{
    DecisionCount, LiveTriplet, LogEntry, Store, StoreError, Triplet, TripletCounts, TripletKey,
    Tx, location, pgpass, pgurl,
};
use crate::config::{ListKind, ServerLists, Settings};
use crate::dns::{Forward, ZoneAnswer};

/// Default time allowed for one statement or lock wait: SQLite's busy timeout (DESIGN.md §1).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for a socket connect when the URL sets no `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Environment variable overriding [`DEFAULT_TIMEOUT`] (milliseconds).
pub const TIMEOUT_ENV: &str = "GREY_LISTING_PG_TIMEOUT_MS";
/// Our own URL query parameter for the statement timeout (milliseconds); removed from the URL
/// before it reaches the driver, which refuses options it does not know.
pub const TIMEOUT_PARAM: &str = super::pgurl::TIMEOUT_PARAM;

/// Bounds for a configured timeout, so a typo cannot disable it or make it absurdly long.
const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 50..=600_000;

/// Advisory-lock namespaces (first key of the two-key form), so our locks do not collide with
/// another application's advisory locks in a shared database. "GLS"/"GLT" in ASCII.
const LOCK_NS_SCHEMA: i32 = 0x474C_5300;
const LOCK_NS_TRIPLET: i32 = 0x474C_5400;

/// How often a write transaction is re-run after PostgreSQL aborted it to break a deadlock or a
/// serialisation failure (not expected from message checks, which hold one triplet lock each).
const DEADLOCK_RETRIES: u32 = 3;

/// The schema version this build writes. Each entry of [`MIGRATIONS`] moves one version up.
const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Migrations, in order: `MIGRATIONS[n]` upgrades a version-`n` database to `n + 1`. Append new
/// ones; never edit an old one. Table names carry a `gl_` prefix because the database may be
/// shared with other applications.
const MIGRATIONS: &[&str] = &[
    // 1: settings, lists, per-domain flags and triplets (the SQLite schema's version 1).
    "CREATE TABLE gl_settings (
         name  text PRIMARY KEY,
         value text NOT NULL
     );
     CREATE TABLE gl_list_entries (
         id      bigserial PRIMARY KEY,
         list    text NOT NULL,
         owner   text NOT NULL,
         pattern text NOT NULL,
         UNIQUE (list, owner, pattern)
     );
     CREATE TABLE gl_domains (
         domain  text PRIMARY KEY,
         enabled boolean NOT NULL
     );
     CREATE TABLE gl_triplets (
         client          text NOT NULL,
         sender          text NOT NULL,
         recipient       text NOT NULL,
         network         text NOT NULL,
         first_seen      bigint NOT NULL,
         earliest_accept bigint NOT NULL,
         last_seen       bigint NOT NULL,
         expires         bigint NOT NULL,
         pass_count      bigint NOT NULL,
         PRIMARY KEY (client, sender, recipient)
     );
     CREATE INDEX gl_triplets_awl ON gl_triplets (network, expires) WHERE pass_count > 0;
     CREATE INDEX gl_triplets_expires ON gl_triplets (expires);",
    // 2: one owner's lists are read in one query (`PgTx::list`).
    "CREATE INDEX gl_list_entries_owner ON gl_list_entries (owner, id);",
    // 3: the decision log read by --report, --check and --stats (the SQLite schema's version 2).
    "CREATE TABLE gl_decision_log (
         id             bigserial PRIMARY KEY,
         time           bigint NOT NULL,
         client_network text NOT NULL,
         client_key     text NOT NULL,
         organisation   text NOT NULL,
         client_address text NOT NULL,
         client_name    text NOT NULL,
         sender         text NOT NULL,
         recipient      text NOT NULL,
         verdict        text NOT NULL,
         reason         text NOT NULL,
         pattern        text,
         delay          bigint
     );
     CREATE INDEX gl_decision_log_time ON gl_decision_log (time);",
    // 4: a configuration stamp that every write to settings, lists or domain flags changes in
    // the same transaction (statement triggers, so writes by any host and any later version
    // count), so a policy server can cache its configuration and still see every change at its
    // very next request (the SQLite schema's version 3). Random values: a database restored
    // from a backup cannot present a stamp a running server has seen with other contents.
    "CREATE TABLE gl_config_generation (
         id         integer PRIMARY KEY CHECK (id = 1),
         generation bigint NOT NULL
     );
     INSERT INTO gl_config_generation (id, generation)
         VALUES (1, (random() * 9e18)::bigint);
     CREATE FUNCTION gl_bump_config_generation() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         UPDATE gl_config_generation SET generation = (random() * 9e18)::bigint WHERE id = 1;
         RETURN NULL;
     END $$;
     CREATE TRIGGER gl_settings_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
         ON gl_settings FOR EACH STATEMENT EXECUTE FUNCTION gl_bump_config_generation();
     CREATE TRIGGER gl_list_entries_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
         ON gl_list_entries FOR EACH STATEMENT EXECUTE FUNCTION gl_bump_config_generation();
     CREATE TRIGGER gl_domains_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
         ON gl_domains FOR EACH STATEMENT EXECUTE FUNCTION gl_bump_config_generation();",
    // 5: white host patterns now match whole names and whole-label suffixes only. The stored
    // white patterns that the new rule would warn about are recorded (by the step after this
    // one in `migrate`) so the next CLI command names them (the SQLite schema's version 5).
    "CREATE TABLE IF NOT EXISTS gl_pattern_notices (
         id      bigserial PRIMARY KEY,
         pattern text NOT NULL
     );",
    // 6: decisions counted by component, action and reason in the deciding transaction, never
    // purged (the SQLite schema's version 6). Each counter is spread over 16 rows (`shard`,
    // drawn at random per update; readers add them up): with a single row, every deciding
    // transaction of every MX would wait for the one before it to commit, as they all update
    // the same (filter, defer, new) row.
    "CREATE TABLE IF NOT EXISTS gl_decision_counters (
         component text NOT NULL,
         action    text NOT NULL,
         reason    text NOT NULL,
         shard     smallint NOT NULL,
         count     bigint NOT NULL,
         PRIMARY KEY (component, action, reason, shard)
     );",
    // 7: DNS answers cached for an hour, per client address: a DNS list zone's answer (kind
    // `zone`) or a host name's forward confirmation (kind `forward`); purged with the expired
    // triplets (the SQLite schema's version 7).
    "CREATE TABLE IF NOT EXISTS gl_dns_cache (
         address text NOT NULL,
         kind    text NOT NULL,
         name    text NOT NULL,
         answer  text NOT NULL,
         expires bigint NOT NULL,
         PRIMARY KEY (address, kind, name)
     );
     CREATE INDEX IF NOT EXISTS gl_dns_cache_expires ON gl_dns_cache (expires);",
];

/// The migration step after which stored white patterns are checked against the whole-label rule.
const WHITE_RULE_MIGRATION: usize = 4;

/// Timeouts of a [`PgStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Statement and lock timeout (server side), and the client-side deadline minus one second.
    pub timeout: Duration,
}

impl PgOptions {
    /// The options from the environment: `GREY_LISTING_PG_TIMEOUT_MS`, else the default.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<PgOptions, String> {
        let timeout = match env(TIMEOUT_ENV).filter(|v| !v.is_empty()) {
            Some(value) => parse_timeout_ms(TIMEOUT_ENV, &value)?,
            None => DEFAULT_TIMEOUT,
        };
        Ok(PgOptions { timeout })
    }
}

fn parse_timeout_ms(name: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<u64>()
        .ok()
        .filter(|ms| TIMEOUT_RANGE_MS.contains(ms))
        .map(Duration::from_millis)
        .ok_or_else(|| {
            format!(
                "{name} must be a number of milliseconds from {} to {}, not '{value}'",
                TIMEOUT_RANGE_MS.start(),
                TIMEOUT_RANGE_MS.end()
            )
        })
}

/// The driver's configuration for a connection string: our own parameters (`timeout_ms`,
/// `password_file`) taken out first, the password read from `password_file` or `PGPASSFILE`
/// when given so. Also returns the `timeout_ms` of the string. Errors name no password.
fn driver_config(
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Option<Duration>), String> {
    let (driver_url, own) = pgurl::split_own(url)?;
    let timeout = own
        .timeout_ms
        .map(|value| parse_timeout_ms(TIMEOUT_PARAM, &value))
        .transpose()?;
    // The string was checked above as the driver reads it; what the driver may still reject
    // (a bad port or option value) is named by the option only, never by its value.
    let mut config =
        Config::from_str(&driver_url).map_err(|e| format!("invalid connection string: {e}"))?;
    pgpass::apply(&mut config, own.password_file.as_deref(), env)?;
    Ok((config, timeout))
}

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

/// Creates or upgrades the schema under a transaction-scoped advisory lock, so concurrent
/// first opens on several hosts do not race: the loser waits, then sees the winner's version.
fn migrate(runtime: &Runtime, context: &Context, conn: &mut Conn) -> Result<(), StoreError> {
    let client = &conn.client;
    let mut state = (&mut conn.broken, &mut conn.last_state);
    macro_rules! run {
        ($future:expr) => {
            wait(runtime, context, (&mut *state.0, &mut *state.1), $future)
        };
    }
    // Fast path for every connection but the first: one read, no lock.
    let version = read_version(runtime, context, client, &mut state)?;
    if version == Some(SCHEMA_VERSION) {
        return Ok(());
    }
    run!(client.batch_execute("BEGIN"))?;
    let result = (|| {
        run!(client.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_NS_SCHEMA]))?;
        run!(client.batch_execute(
            "CREATE TABLE IF NOT EXISTS grey_listing_schema (version integer NOT NULL)"
        ))?;
        let version: i32 =
            run!(client.query_opt("SELECT max(version) FROM grey_listing_schema", &[]))?
                .and_then(|row| row.get::<_, Option<i32>>(0))
                .unwrap_or(0);
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                location: context.shown.clone(),
                found: i64::from(version),
                supported: i64::from(SCHEMA_VERSION),
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            run!(client.batch_execute(migration))?;
            if index == 0 {
                for (name, value) in Settings::default().to_pairs() {
                    run!(client.execute(
                        "INSERT INTO gl_settings (name, value) VALUES ($1, $2)",
                        &[&name, &value]
                    ))?;
                }
                let lists = ServerLists::defaults();
                for kind in [ListKind::DomainsWhite, ListKind::DomainsBlack] {
                    for pattern in lists.get(kind) {
                        run!(client.execute(
                            "INSERT INTO gl_list_entries (list, owner, pattern) VALUES ($1, '', $2)",
                            &[&kind.as_str(), pattern]
                        ))?;
                    }
                }
            }
            if index == WHITE_RULE_MIGRATION {
                let white = ListKind::DomainsWhite.as_str();
                let rows = run!(client.query(
                    "SELECT pattern FROM gl_list_entries WHERE list = $1 AND owner = '' ORDER BY id",
                    &[&white]
                ))?;
                for row in rows {
                    let pattern: String = row.get(0);
                    if !crate::pattern::white_host_warnings(&pattern).is_empty() {
                        run!(client.execute(
                            "INSERT INTO gl_pattern_notices (pattern) VALUES ($1)",
                            &[&pattern]
                        ))?;
                    }
                }
            }
        }
        run!(client.batch_execute("DELETE FROM grey_listing_schema"))?;
        run!(client.execute(
            "INSERT INTO grey_listing_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION]
        ))?;
        Ok(())
    })();
    match result {
        Ok(()) => run!(client.batch_execute("COMMIT")),
        Err(err) => {
            if !*state.0 {
                let _ = run!(client.batch_execute("ROLLBACK"));
            }
            Err(err)
        }
    }
}

fn read_version(
    runtime: &Runtime,
    context: &Context,
    client: &Client,
    state: &mut (&mut bool, &mut Option<SqlState>),
) -> Result<Option<i32>, StoreError> {
    let exists = wait(
        runtime,
        context,
        (&mut *state.0, &mut *state.1),
        client.query_one("SELECT to_regclass('grey_listing_schema') IS NOT NULL", &[]),
    )?
    .get::<_, bool>(0);
    if !exists {
        return Ok(None);
    }
    let row = wait(
        runtime,
        context,
        (&mut *state.0, &mut *state.1),
        client.query_one("SELECT max(version) FROM grey_listing_schema", &[]),
    )?;
    let version: Option<i32> = row.get(0);
    if let Some(found) = version
        && found > SCHEMA_VERSION
    {
        return Err(StoreError::TooNew {
            location: context.shown.clone(),
            found: i64::from(found),
            supported: i64::from(SCHEMA_VERSION),
        });
    }
    Ok(version)
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
        Ok(self
            .query(
                "SELECT generation FROM gl_config_generation WHERE id = 1",
                &[],
            )?
            .first()
            .map(|row| row.get(0)))
    }

    fn settings(&mut self) -> Result<Settings, StoreError> {
        let pairs: Vec<(String, String)> = self
            .query("SELECT name, value FROM gl_settings", &[])?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let settings = Settings::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        self.settings_read = Some(pairs);
        Ok(settings)
    }

    fn settings_for_update(&mut self) -> Result<Settings, StoreError> {
        // Locked in name order, so two updates cannot deadlock on each other's rows. Under READ
        // COMMITTED a row that another update changed is read as committed after the wait.
        let pairs: Vec<(String, String)> = self
            .query(
                "SELECT name, value FROM gl_settings ORDER BY name FOR UPDATE",
                &[],
            )?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let settings = Settings::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        self.settings_read = Some(pairs);
        Ok(settings)
    }

    fn set_settings(&mut self, settings: &Settings) -> Result<(), StoreError> {
        // Only the values that differ from what this transaction read are written. Writers run
        // under READ COMMITTED without a table lock, so two admins changing different settings
        // at once both keep their change — the result of running them one after the other —
        // instead of the later one writing back the earlier one's stale value.
        let read = self.settings_read.take().unwrap_or_default();
        for (name, value) in settings.to_pairs() {
            let unchanged = read.iter().any(|(n, v)| *n == name && *v == value);
            if !unchanged {
                self.execute(
                    "INSERT INTO gl_settings (name, value) VALUES ($1, $2)
                     ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                    &[&name, &value],
                )?;
            }
        }
        self.settings_read = None;
        Ok(())
    }

    fn list(&mut self, kind: ListKind, owner: &str) -> Result<Vec<String>, StoreError> {
        let cached = self
            .lists_read
            .as_ref()
            .is_some_and(|(cached_owner, _)| cached_owner == owner);
        if !cached {
            let entries = self
                .query(
                    "SELECT list, pattern FROM gl_list_entries WHERE owner = $1 ORDER BY id",
                    &[&owner],
                )?
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect();
            self.lists_read = Some((owner.to_string(), entries));
        }
        Ok(self
            .lists_read
            .as_ref()
            .map(|(_, entries)| {
                entries
                    .iter()
                    .filter(|(list, _)| list == kind.as_str())
                    .map(|(_, pattern)| pattern.clone())
                    .collect()
            })
            .unwrap_or_default())
    }

    fn pattern_notices(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query("SELECT pattern FROM gl_pattern_notices ORDER BY id", &[])?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }

    fn clear_pattern_notices(&mut self) -> Result<(), StoreError> {
        self.execute("DELETE FROM gl_pattern_notices", &[])?;
        Ok(())
    }

    fn add_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        self.lists_read = None;
        self.execute(
            "INSERT INTO gl_list_entries (list, owner, pattern) VALUES ($1, $2, $3)
             ON CONFLICT (list, owner, pattern) DO NOTHING",
            &[&kind.as_str(), &owner, &pattern],
        )?;
        Ok(())
    }

    fn delete_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        self.lists_read = None;
        self.execute(
            "DELETE FROM gl_list_entries WHERE list = $1 AND owner = $2 AND pattern = $3",
            &[&kind.as_str(), &owner, &pattern],
        )?;
        Ok(())
    }

    fn domain_status(&mut self, domain: &str) -> Result<Option<bool>, StoreError> {
        Ok(self
            .query(
                "SELECT enabled FROM gl_domains WHERE domain = $1",
                &[&domain],
            )?
            .first()
            .map(|row| row.get(0)))
    }

    fn set_domain_status(&mut self, domain: &str, enabled: bool) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO gl_domains (domain, enabled) VALUES ($1, $2)
             ON CONFLICT (domain) DO UPDATE SET enabled = EXCLUDED.enabled",
            &[&domain, &enabled],
        )?;
        Ok(())
    }

    fn domains(&mut self) -> Result<Vec<(String, bool)>, StoreError> {
        Ok(self
            .query(
                "SELECT domain, enabled FROM gl_domains ORDER BY domain COLLATE \"C\"",
                &[],
            )?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect())
    }

    fn delete_domain(&mut self, domain: &str) -> Result<(), StoreError> {
        self.execute("DELETE FROM gl_domains WHERE domain = $1", &[&domain])?;
        Ok(())
    }

    fn mailboxes(&mut self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query(
                "SELECT DISTINCT owner COLLATE \"C\" FROM gl_list_entries
                 WHERE owner <> '' ORDER BY 1",
                &[],
            )?
            .iter()
            .map(|row| row.get(0))
            .collect())
    }

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
        let pass_count = triplet.pass_count.min(i64::MAX as u64) as i64;
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
            &[&network, &now, &(enough.min(i64::MAX as u64) as i64)],
        )?;
        Ok(rows.first().map_or(0, |row| row.get::<_, i64>(0)).max(0) as u64)
    }

    fn purge_expired(&mut self, now: i64) -> Result<u64, StoreError> {
        self.purge_dns_cache(now, None)?;
        self.execute("DELETE FROM gl_triplets WHERE expires <= $1", &[&now])
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

    fn log_decision(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO gl_decision_log
             (time, client_network, client_key, organisation, client_address, client_name,
              sender, recipient, verdict, reason, pattern, delay)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                &entry.time,
                &entry.client_network,
                &entry.client_key,
                &entry.organisation,
                &entry.client_address,
                &entry.client_name,
                &entry.sender,
                &entry.recipient,
                &entry.verdict,
                &entry.reason,
                &entry.pattern,
                &entry.delay,
            ],
        )?;
        Ok(())
    }

    fn count_decisions(&mut self, counts: &[DecisionCount]) -> Result<(), StoreError> {
        for c in counts {
            let count = i64::try_from(c.count).unwrap_or(i64::MAX);
            self.execute(
                "INSERT INTO gl_decision_counters (component, action, reason, shard, count)
                 VALUES ($1, $2, $3, floor(random() * 16)::smallint, $4)
                 ON CONFLICT (component, action, reason, shard)
                 DO UPDATE SET count = gl_decision_counters.count + EXCLUDED.count",
                &[&c.component, &c.action, &c.reason, &count],
            )?;
        }
        Ok(())
    }

    fn decision_counters(&mut self) -> Result<Vec<DecisionCount>, StoreError> {
        Ok(self
            .query(
                "SELECT component, action, reason, sum(count)::bigint FROM gl_decision_counters
                 GROUP BY component, action, reason ORDER BY component, action, reason",
                &[],
            )?
            .iter()
            .map(|row| DecisionCount {
                component: row.get(0),
                action: row.get(1),
                reason: row.get(2),
                count: row.get::<_, i64>(3).max(0) as u64,
            })
            .collect())
    }

    fn decision_log(&mut self, since: i64) -> Result<Vec<LogEntry>, StoreError> {
        Ok(self
            .query(
                "SELECT time, client_network, client_key, organisation, client_address,
                        client_name, sender, recipient, verdict, reason, pattern, delay
                 FROM gl_decision_log WHERE time >= $1 ORDER BY time, id",
                &[&since],
            )?
            .iter()
            .map(|row| LogEntry {
                time: row.get(0),
                client_network: row.get(1),
                client_key: row.get(2),
                organisation: row.get(3),
                client_address: row.get(4),
                client_name: row.get(5),
                sender: row.get(6),
                recipient: row.get(7),
                verdict: row.get(8),
                reason: row.get(9),
                pattern: row.get(10),
                delay: row.get(11),
            })
            .collect())
    }

    fn purge_decision_log(&mut self, before: i64, limit: Option<u64>) -> Result<u64, StoreError> {
        match limit {
            // A bounded delete, so the mail path prunes a little at a time; SKIP LOCKED lets
            // two hosts prune at once without waiting on each other's rows.
            Some(limit) => {
                let limit = limit.min(i64::MAX as u64) as i64;
                self.execute(
                    "DELETE FROM gl_decision_log WHERE id IN
                     (SELECT id FROM gl_decision_log WHERE time < $1
                      ORDER BY time LIMIT $2 FOR UPDATE SKIP LOCKED)",
                    &[&before, &limit],
                )
            }
            None => self.execute("DELETE FROM gl_decision_log WHERE time < $1", &[&before]),
        }
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
        let limit = limit.min(i64::MAX as u64) as i64;
        self.execute(
            "DELETE FROM gl_triplets WHERE (client, sender, recipient) IN
             (SELECT client, sender, recipient FROM gl_triplets WHERE expires <= $1
              LIMIT $2 FOR UPDATE SKIP LOCKED)",
            &[&now, &limit],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_parameters_are_taken_out_before_the_driver() {
        let no_env = |_: &str| None;
        let (config, timeout) = driver_config(
            "postgres://u:p@h/db?timeout_ms=250&connect_timeout=2",
            &no_env,
        )
        .unwrap();
        assert_eq!(timeout, Some(Duration::from_millis(250)));
        assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert_eq!(config.get_password(), Some(&b"p"[..]));
        let (_, timeout) = driver_config("postgres://h/db", &no_env).unwrap();
        assert_eq!(timeout, None);
        assert!(driver_config("postgres://h/db?timeout_ms=0", &no_env).is_err());
        assert!(driver_config("postgres://h/db?timeout_ms=abc", &no_env).is_err());

        // password_file: read, and not passed on (the driver refuses unknown options).
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "S3cr/et?PW\n").unwrap();
        let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
        std::fs::set_permissions(&file, private).unwrap();
        let url = format!(
            "postgres://gl@h/db?password_file={}&application_name=x",
            file.display()
        );
        let (config, _) = driver_config(&url, &no_env).unwrap();
        assert_eq!(config.get_password(), Some(&b"S3cr/et?PW"[..]));
        assert_eq!(config.get_application_name(), Some("x"));
        // The same in the key=value form.
        let kv = format!("host=h user=gl password_file={}", file.display());
        let (config, _) = driver_config(&kv, &no_env).unwrap();
        assert_eq!(config.get_password(), Some(&b"S3cr/et?PW"[..]));
    }

    #[test]
    fn timeout_from_environment() {
        let env = |value: &'static str| {
            move |name: &str| (name == TIMEOUT_ENV).then(|| value.to_string())
        };
        assert_eq!(
            PgOptions::from_env(&env("1500")).unwrap().timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(
            PgOptions::from_env(&|_: &str| None).unwrap().timeout,
            DEFAULT_TIMEOUT
        );
        assert!(PgOptions::from_env(&env("-1")).is_err());
    }

    // Issue 7: credentials never appear in error messages.
    #[test]
    fn unreachable_server_error_names_the_redacted_url() {
        // Port 1 on loopback: nothing listens there, the connect is refused at once.
        let url = "postgres://gl:s3cret-pass@127.0.0.1:1/db?connect_timeout=1";
        let err = match PgStore::open_with(
            url,
            PgOptions {
                timeout: DEFAULT_TIMEOUT,
            },
        ) {
            Ok(_) => panic!("connected to port 1"),
            Err(err) => err.to_string(),
        };
        assert!(!err.contains("s3cret-pass"), "{err}");
        assert!(err.contains("postgres://gl:***@127.0.0.1:1/db"), "{err}");
    }
}
