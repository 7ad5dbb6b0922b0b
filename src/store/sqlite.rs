//! The embedded SQLite store: one file shared by the CLI, the filter and the policy server.

mod dns;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use super::files;
use super::{
    DecisionCount, LiveTriplet, LogEntry, Store, StoreError, Triplet, TripletCounts, TripletKey, Tx,
};
use crate::config::{ListKind, ServerLists, Settings};
use crate::dns::{Forward, ZoneAnswer};

/// How long a writer waits for another one before giving up (DESIGN.md §1).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema version this build writes. Each entry of [`MIGRATIONS`] moves one version up.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Migrations, in order: `MIGRATIONS[n]` upgrades a version-`n` database to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: settings, lists, per-domain flags and triplets.
    "CREATE TABLE settings (
         name  TEXT PRIMARY KEY,
         value TEXT NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE list_entries (
         id      INTEGER PRIMARY KEY AUTOINCREMENT,
         list    TEXT NOT NULL,
         owner   TEXT NOT NULL,
         pattern TEXT NOT NULL,
         UNIQUE (list, owner, pattern)
     );
     CREATE TABLE domains (
         domain  TEXT PRIMARY KEY,
         enabled INTEGER NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE triplets (
         client          TEXT NOT NULL,
         sender          TEXT NOT NULL,
         recipient       TEXT NOT NULL,
         network         TEXT NOT NULL,
         first_seen      INTEGER NOT NULL,
         earliest_accept INTEGER NOT NULL,
         last_seen       INTEGER NOT NULL,
         expires         INTEGER NOT NULL,
         pass_count      INTEGER NOT NULL,
         PRIMARY KEY (client, sender, recipient)
     ) WITHOUT ROWID;
     CREATE INDEX triplets_awl ON triplets (network, expires) WHERE pass_count > 0;
     CREATE INDEX triplets_expires ON triplets (expires);",
    // 2: the decision log read by --report, --check and --stats (extension).
    "CREATE TABLE decision_log (
         id             INTEGER PRIMARY KEY,
         time           INTEGER NOT NULL,
         client_network TEXT NOT NULL,
         client_key     TEXT NOT NULL,
         organisation   TEXT NOT NULL,
         client_address TEXT NOT NULL,
         client_name    TEXT NOT NULL,
         sender         TEXT NOT NULL,
         recipient      TEXT NOT NULL,
         verdict        TEXT NOT NULL,
         reason         TEXT NOT NULL,
         pattern        TEXT,
         delay          INTEGER
     );
     CREATE INDEX decision_log_time ON decision_log (time);",
    // 3: a configuration stamp that every write to settings, lists or domain flags changes in
    // the same transaction (triggers, so writes by any process and any later version count), so
    // the policy server can cache its configuration and still see every change on the very next
    // request. A random start and random steps: a database replaced by another one (or restored
    // from a backup) cannot present a stamp a running server has already seen with other
    // contents. `IF NOT EXISTS`: a database whose version was lowered by hand keeps its table.
    "CREATE TABLE IF NOT EXISTS config_generation (
         id         INTEGER PRIMARY KEY CHECK (id = 1),
         generation INTEGER NOT NULL
     );
     INSERT OR IGNORE INTO config_generation (id, generation) VALUES (1, random());
     CREATE TRIGGER IF NOT EXISTS config_settings_insert AFTER INSERT ON settings
         BEGIN UPDATE config_generation SET generation = random() WHERE id = 1; END;
     CREATE TRIGGER IF NOT EXISTS config_settings_update AFTER UPDATE ON settings
         BEGIN UPDATE config_generation SET generation = random() WHERE id = 1; END;
     CREATE TRIGGER IF NOT EXISTS config_settings_delete AFTER DELETE ON settings
         BEGIN UPDATE config_generation SET generation = random() WHERE id = 1; END;
     CREATE TRIGGER IF NOT EXISTS config_lists_insert AFTER INSERT ON list_entries
         BEGIN UPDATE config_generation SET generation = random() WHERE id = 1; END;
     CREATE TRIGGER IF NOT EXISTS config_lists_update AFTER UPDATE ON list_entries
         BEGIN UPDATE config_generation SET generation = random() WHERE id = 1; END;
     CREATE TRIGGER IF NOT EXISTS config_lists_delete AFTER DELETE ON list_entries
         BEGIN UPDATE config_generation SET generation = random() WHERE id = 1; END;
     CREATE TRIGGER IF NOT EXISTS config_domains_insert AFTER INSERT ON domains
         BEGIN UPDATE config_generation SET generation = random() WHERE id = 1; END;
     CREATE TRIGGER IF NOT EXISTS config_domains_update AFTER UPDATE ON domains
         BEGIN UPDATE config_generation SET generation = random() WHERE id = 1; END;
     CREATE TRIGGER IF NOT EXISTS config_domains_delete AFTER DELETE ON domains
         BEGIN UPDATE config_generation SET generation = random() WHERE id = 1; END;",
    // 4: cheaper triplet writes for the policy server. Each pass used to rewrite the triplet's
    // entries in two indexes besides its row — three B-tree pages written per request instead
    // of one, most of the server's commit cost:
    // - `triplets_expires` served only the purge. It is gone; the filter's bounded purge walks
    //   the table in key order from where the previous one stopped (`purge_cursor`), and a full
    //   purge scans the table once.
    // - the auto-whitelist index keyed on (network, expires) moved with every pass. It is now
    //   keyed on the network alone and covers the triplets whose `passed` flag is set: a column
    //   that changes only when a triplet first passes (or is created again), so updating the
    //   pass count and expiry of a passed triplet leaves the index alone. `passed` is always
    //   `pass_count > 0`; only `put_triplet` writes either.
    "DROP INDEX IF EXISTS triplets_expires;
     DROP INDEX IF EXISTS triplets_awl;
     ALTER TABLE triplets ADD COLUMN passed INTEGER NOT NULL DEFAULT 0;
     UPDATE triplets SET passed = 1 WHERE pass_count > 0;
     CREATE INDEX triplets_awl ON triplets (network) WHERE passed = 1;
     CREATE TABLE IF NOT EXISTS purge_cursor (
         id        INTEGER PRIMARY KEY CHECK (id = 1),
         client    TEXT NOT NULL,
         sender    TEXT NOT NULL,
         recipient TEXT NOT NULL
     );",
    // 5: white host patterns now match whole names and whole-label suffixes only. The stored
    // white patterns that the new rule would warn about are recorded (by
    // `record_white_pattern_notices`, run after this step) so the next CLI command names them.
    "CREATE TABLE IF NOT EXISTS pattern_notices (
         id      INTEGER PRIMARY KEY,
         pattern TEXT NOT NULL
     );",
    // 6: decisions counted by component, action and reason, in the deciding transaction and
    // never purged (the decision log is), so `--stats --prometheus` can export counters that
    // only ever grow.
    "CREATE TABLE IF NOT EXISTS decision_counters (
         component TEXT NOT NULL,
         action    TEXT NOT NULL,
         reason    TEXT NOT NULL,
         count     INTEGER NOT NULL,
         PRIMARY KEY (component, action, reason)
     );",
    // 7: DNS answers cached for an hour (`dns_cache` module): per client address, a DNS list
    // zone's answer (kind `zone`) or a host name's forward confirmation (kind `forward`).
    // Purged with the expired triplets, through the index on `expires`.
    "CREATE TABLE IF NOT EXISTS dns_cache (
         address TEXT NOT NULL,
         kind    TEXT NOT NULL,
         name    TEXT NOT NULL,
         answer  TEXT NOT NULL,
         expires INTEGER NOT NULL,
         PRIMARY KEY (address, kind, name)
     );
     CREATE INDEX IF NOT EXISTS dns_cache_expires ON dns_cache (expires);",
];

/// The migration step after which stored white patterns are checked against the whole-label rule.
const WHITE_RULE_MIGRATION: usize = 4;

/// An open SQLite database.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Set once the schema is known good; until then a close behaves as SQLite's default, so a
    /// refused database (too new, not a database) is left exactly as it was.
    opened: bool,
    /// Whether a write transaction (or a migration) committed since the last checkpoint.
    changed: bool,
}

impl SqliteStore {
    /// Opens the database at `path`, creating its directory (mode 2770), the file (mode 0660) and
    /// the schema as needed, and migrating an older schema. A database or companion file that is
    /// a symbolic link or not a regular file is refused, and a database written by a newer
    /// version is refused before anything is written to it.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let real = files::prepare(path)?;
        // NOFOLLOW: a symbolic link planted between our checks and SQLite's open is refused too
        // (`prepare` resolved the directory, so only the file itself is checked here).
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        let location = path.display().to_string();
        let sqlite_err = |source| StoreError::Sqlite {
            location: location.clone(),
            source,
        };
        let conn = Connection::open_with_flags(&real, flags).map_err(sqlite_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite_err)?;
        // Query-planner stability: a cached statement keeps its plan whatever values are bound.
        // Without it SQLite re-compiles some statements (a `LIMIT ?`, the list lookup) on every
        // new binding, which cost the policy server a full parse per request; our queries are
        // plain index lookups whose best plan does not depend on the values.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(sqlite_err)?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            opened: false,
            changed: false,
        };
        // A plain read before anything else: a database from a newer version is refused before
        // its journal mode or anything else in it changes.
        let version = store.user_version()?;
        store.check_not_too_new(version)?;
        store.enable_wal()?;
        // NORMAL is crash-safe in WAL mode; a power cut may forget the last commits, which only
        // means a sender is greylisted once more — never a lost message.
        store
            .conn
            .pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| store.error(e))?;
        store.migrate()?;
        store.opened = true;
        Ok(store)
    }

    /// Wraps a connection `super::read_only` opened read-only: no WAL switch, no migration, and
    /// nothing to configure at close.
    pub(crate) fn from_read_only(conn: Connection, path: &Path) -> SqliteStore {
        SqliteStore {
            conn,
            path: path.to_path_buf(),
            opened: false,
            changed: false,
        }
    }

    fn error(&self, source: rusqlite::Error) -> StoreError {
        let location = self.path.display().to_string();
        if is_busy(&source) {
            return StoreError::Locked {
                location,
                waited_ms: BUSY_TIMEOUT.as_millis() as u64,
            };
        }
        StoreError::Sqlite { location, source }
    }

    /// `journal_mode=WAL` must run outside a transaction and does not use the busy handler on
    /// every SQLite version, so it is retried while another process holds the lock.
    fn enable_wal(&mut self) -> Result<(), StoreError> {
        let started = Instant::now();
        loop {
            let result: rusqlite::Result<String> =
                self.conn
                    .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0));
            match result {
                Ok(_) => return Ok(()),
                Err(err) if is_busy(&err) && started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(err) => return Err(self.error(err)),
            }
        }
    }

    fn user_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| self.error(e))
    }

    /// Creates or upgrades the schema under `BEGIN IMMEDIATE`, so concurrent first opens do not
    /// race: the loser waits, then sees the version the winner wrote.
    fn migrate(&mut self) -> Result<(), StoreError> {
        // Fast path for every open but the first: a plain read, no write lock.
        let version = self.user_version()?;
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        self.check_not_too_new(version)?;
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_or_locked(&path, e))?;
        let version: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| sqlite_or_locked(&path, e))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                location: path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(migration)
                .map_err(|e| sqlite_or_locked(&path, e))?;
            if index == 0 {
                seed_defaults(&tx).map_err(|e| sqlite_or_locked(&path, e))?;
            }
            if index == WHITE_RULE_MIGRATION {
                record_white_pattern_notices(&tx).map_err(|e| sqlite_or_locked(&path, e))?;
            }
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| sqlite_or_locked(&path, e))?;
        tx.commit().map_err(|e| sqlite_or_locked(&path, e))?;
        self.changed = true;
        Ok(())
    }

    fn check_not_too_new(&self, version: i64) -> Result<(), StoreError> {
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                location: self.path.display().to_string(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(())
    }

    fn run(
        &mut self,
        behavior: TransactionBehavior,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(behavior)
            .map_err(|e| sqlite_or_locked(&path, e))?;
        let mut handle = SqliteTx {
            conn: &tx,
            path: &path,
        };
        f(&mut handle)?;
        // Dropping `tx` on the error path above rolls back.
        tx.commit().map_err(|e| sqlite_or_locked(&path, e))?;
        if matches!(behavior, TransactionBehavior::Immediate) {
            self.changed = true;
        }
        Ok(())
    }

    /// Moves every committed change from the WAL into the database file and empties the WAL
    /// (`wal_checkpoint(TRUNCATE)`), so a plain copy of the database file holds them. Returns
    /// whether it completed within the busy timeout; nothing to do when this connection changed
    /// nothing.
    fn checkpoint_wal(&mut self) -> Result<bool, StoreError> {
        if !self.changed {
            return Ok(true);
        }
        let started = Instant::now();
        loop {
            // SQLite waits (busy handler) for readers still using the log, but answers "busy"
            // at once while another connection runs a checkpoint: so retry until the timeout.
            let result = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    row.get::<_, i64>(0)
                });
            match result {
                Ok(0) => {
                    self.changed = false;
                    return Ok(true);
                }
                Ok(_) => {}
                Err(err) if is_busy(&err) => {}
                Err(err) => return Err(self.error(err)),
            }
            if started.elapsed() >= BUSY_TIMEOUT {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sets how this connection trades durability for writes, for a long-running server:
    /// `full_sync` is SQLite's `synchronous=FULL` (else `NORMAL`: a power loss may lose the
    /// last commits, never corrupt the file), and the write-ahead log is checkpointed into the
    /// database every `wal_autocheckpoint_pages` pages instead of SQLite's 1,000.
    pub fn set_durability(
        &self,
        full_sync: bool,
        wal_autocheckpoint_pages: i64,
    ) -> Result<(), StoreError> {
        let pragma = |name: &str, value: &dyn rusqlite::ToSql| {
            self.conn
                .pragma_update(None, name, value)
                .map_err(|source| StoreError::Sqlite {
                    location: self.path.display().to_string(),
                    source,
                })
        };
        pragma("synchronous", &if full_sync { "FULL" } else { "NORMAL" })?;
        pragma("wal_autocheckpoint", &wal_autocheckpoint_pages)
    }

    /// The underlying connection, for benchmarks and tests that need raw SQL.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The auto-whitelist count of a network, stopping at a threshold: the partial index
/// `triplets_awl` (network) WHERE passed = 1 finds the network's passed triplets, LIMIT stops the
/// scan at the threshold. (`passed = 1` must appear as written for SQLite to use that index.)
pub(crate) const AWL_PASSES_UP_TO: &str = "SELECT count(*) FROM (SELECT 1 FROM triplets
     WHERE network = ?1 AND passed = 1 AND expires > ?2 LIMIT ?3)";

/// How many triplets a bounded purge may visit per triplet it may delete.
const PURGE_WINDOW_PER_ROW: u64 = 10;

/// A WAL smaller than this is left in place when the last connection closes (see `Drop`).
const WAL_KEEP_BYTES: u64 = 512 * 1024;

impl Drop for SqliteStore {
    /// The filter is one short process per message. By default the last connection to close
    /// checkpoints the WAL and deletes it: three or four fsyncs per message (1–10 ms). Never
    /// doing it is worse: each first connection rebuilds the WAL index from the whole log, and a
    /// log that is only ever checkpointed by single-write connections is never restarted, so it
    /// grows without bound. So: skip the close-time checkpoint while the WAL is small, and let
    /// the closing connection checkpoint and delete it once it has grown past
    /// [`WAL_KEEP_BYTES`] — one round of fsyncs every few dozen messages, and a bounded WAL.
    fn drop(&mut self) {
        if !self.opened {
            return;
        }
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        let small = std::fs::metadata(&wal).map_or(true, |m| m.len() < WAL_KEEP_BYTES);
        let _ = self
            .conn
            .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, small);
    }
}

impl Store for SqliteStore {
    fn write(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.run(TransactionBehavior::Immediate, f)
    }

    fn read(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.run(TransactionBehavior::Deferred, f)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }

    fn checkpoint(&mut self) -> Result<bool, StoreError> {
        self.checkpoint_wal()
    }

    fn abandon_replaced(&mut self) {
        // Checkpoints into the old (unlinked) file and truncates the log this handle has open,
        // which is the one still at the path unless a new log was moved there too.
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked)
    )
}

fn sqlite_or_locked(location: &str, source: rusqlite::Error) -> StoreError {
    if is_busy(&source) {
        StoreError::Locked {
            location: location.to_string(),
            waited_ms: BUSY_TIMEOUT.as_millis() as u64,
        }
    } else {
        StoreError::Sqlite {
            location: location.to_string(),
            source,
        }
    }
}

fn seed_defaults(conn: &Connection) -> rusqlite::Result<()> {
    for (name, value) in Settings::default().to_pairs() {
        conn.execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2)",
            params![name, value],
        )?;
    }
    let lists = ServerLists::defaults();
    for kind in [ListKind::DomainsWhite, ListKind::DomainsBlack] {
        for pattern in lists.get(kind) {
            conn.execute(
                "INSERT INTO list_entries (list, owner, pattern) VALUES (?1, '', ?2)",
                params![kind.as_str(), pattern],
            )?;
        }
    }
    Ok(())
}

/// Records the stored white host patterns that match differently under the whole-label rule in
/// a way their author should look at (see [`crate::pattern::white_host_warnings`]).
fn record_white_pattern_notices(conn: &Connection) -> rusqlite::Result<()> {
    let patterns: Vec<String> = conn
        .prepare("SELECT pattern FROM list_entries WHERE list = ?1 AND owner = '' ORDER BY id")?
        .query_map(params![ListKind::DomainsWhite.as_str()], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for pattern in patterns {
        if !crate::pattern::white_host_warnings(&pattern).is_empty() {
            conn.execute(
                "INSERT INTO pattern_notices (pattern) VALUES (?1)",
                params![pattern],
            )?;
        }
    }
    Ok(())
}

/// The [`Tx`] of an SQLite transaction.
struct SqliteTx<'a> {
    conn: &'a Connection,
    path: &'a str,
}

impl SqliteTx<'_> {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        sqlite_or_locked(self.path, source)
    }
}

impl Tx for SqliteTx<'_> {
    fn config_stamp(&mut self) -> Result<Option<i64>, StoreError> {
        self.conn
            .prepare_cached("SELECT generation FROM config_generation WHERE id = 1")
            .and_then(|mut stmt| stmt.query_row([], |row| row.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    fn settings(&mut self) -> Result<Settings, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, value FROM settings")
            .map_err(|e| self.err(e))?;
        let pairs = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.err(e))?;
        Ok(Settings::from_pairs(
            pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        ))
    }

    fn set_settings(&mut self, settings: &Settings) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("INSERT OR REPLACE INTO settings (name, value) VALUES (?1, ?2)")
            .map_err(|e| self.err(e))?;
        for (name, value) in settings.to_pairs() {
            stmt.execute(params![name, value])
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn list(&mut self, kind: ListKind, owner: &str) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT pattern FROM list_entries WHERE list = ?1 AND owner = ?2 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![kind.as_str(), owner], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn pattern_notices(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT pattern FROM pattern_notices ORDER BY id")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn clear_pattern_notices(&mut self) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM pattern_notices", [])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn add_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT OR IGNORE INTO list_entries (list, owner, pattern) VALUES (?1, ?2, ?3)",
            )
            .and_then(|mut stmt| stmt.execute(params![kind.as_str(), owner, pattern]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn delete_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "DELETE FROM list_entries WHERE list = ?1 AND owner = ?2 AND pattern = ?3",
            )
            .and_then(|mut stmt| stmt.execute(params![kind.as_str(), owner, pattern]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn domain_status(&mut self, domain: &str) -> Result<Option<bool>, StoreError> {
        self.conn
            .prepare_cached("SELECT enabled FROM domains WHERE domain = ?1")
            .and_then(|mut stmt| stmt.query_row(params![domain], |row| row.get(0)).optional())
            .map_err(|e| self.err(e))
    }

    fn set_domain_status(&mut self, domain: &str, enabled: bool) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO domains (domain, enabled) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute(params![domain, enabled]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn domains(&mut self) -> Result<Vec<(String, bool)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT domain, enabled FROM domains ORDER BY domain")
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn delete_domain(&mut self, domain: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM domains WHERE domain = ?1")
            .and_then(|mut stmt| stmt.execute(params![domain]))
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn mailboxes(&mut self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT DISTINCT owner FROM list_entries WHERE owner <> '' ORDER BY owner",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    fn triplet(&mut self, key: &TripletKey) -> Result<Option<Triplet>, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT first_seen, earliest_accept, last_seen, expires, pass_count
                 FROM triplets WHERE client = ?1 AND sender = ?2 AND recipient = ?3",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![key.client, key.sender, key.recipient], |row| {
                    Ok(Triplet {
                        first_seen: row.get(0)?,
                        earliest_accept: row.get(1)?,
                        last_seen: row.get(2)?,
                        expires: row.get(3)?,
                        pass_count: row.get::<_, i64>(4)?.max(0) as u64,
                    })
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
        let pass_count = triplet.pass_count.min(i64::MAX as u64) as i64;
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
                stmt.query_row(
                    params![network, now, enough.min(i64::MAX as u64) as i64],
                    |row| row.get::<_, i64>(0),
                )
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

    fn log_decision(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO decision_log
                 (time, client_network, client_key, organisation, client_address, client_name,
                  sender, recipient, verdict, reason, pattern, delay)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    entry.time,
                    entry.client_network,
                    entry.client_key,
                    entry.organisation,
                    entry.client_address,
                    entry.client_name,
                    entry.sender,
                    entry.recipient,
                    entry.verdict,
                    entry.reason,
                    entry.pattern,
                    entry.delay,
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn count_decisions(&mut self, counts: &[DecisionCount]) -> Result<(), StoreError> {
        for c in counts {
            self.conn
                .prepare_cached(
                    "INSERT INTO decision_counters (component, action, reason, count)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (component, action, reason) DO UPDATE SET count = count + ?4",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        c.component,
                        c.action,
                        c.reason,
                        i64::try_from(c.count).unwrap_or(i64::MAX)
                    ])
                })
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn decision_counters(&mut self) -> Result<Vec<DecisionCount>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT component, action, reason, count FROM decision_counters
                 ORDER BY component, action, reason",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(DecisionCount {
                    component: row.get(0)?,
                    action: row.get(1)?,
                    reason: row.get(2)?,
                    count: row.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>());
        drop(stmt);
        rows.map_err(|e| self.err(e))
    }

    fn decision_log(&mut self, since: i64) -> Result<Vec<LogEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT time, client_network, client_key, organisation, client_address,
                        client_name, sender, recipient, verdict, reason, pattern, delay
                 FROM decision_log WHERE time >= ?1 ORDER BY time, id",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map(params![since], |row| {
            Ok(LogEntry {
                time: row.get(0)?,
                client_network: row.get(1)?,
                client_key: row.get(2)?,
                organisation: row.get(3)?,
                client_address: row.get(4)?,
                client_name: row.get(5)?,
                sender: row.get(6)?,
                recipient: row.get(7)?,
                verdict: row.get(8)?,
                reason: row.get(9)?,
                pattern: row.get(10)?,
                delay: row.get(11)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    fn each_decision_log(
        &mut self,
        since: i64,
        each: &mut dyn FnMut(&LogEntry),
    ) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT time, client_network, client_key, organisation, client_address,
                        client_name, sender, recipient, verdict, reason, pattern, delay
                 FROM decision_log WHERE time >= ?1 ORDER BY time, id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params![since]).map_err(|e| self.err(e))?;
        // One row, its strings refilled in place: no allocation per row once they have grown.
        let mut entry = LogEntry::default();
        let read = |row: &rusqlite::Row<'_>, entry: &mut LogEntry| -> rusqlite::Result<()> {
            entry.time = row.get(0)?;
            for (index, field) in [
                (1, &mut entry.client_network),
                (2, &mut entry.client_key),
                (3, &mut entry.organisation),
                (4, &mut entry.client_address),
                (5, &mut entry.client_name),
                (6, &mut entry.sender),
                (7, &mut entry.recipient),
                (8, &mut entry.verdict),
                (9, &mut entry.reason),
            ] {
                field.clear();
                field.push_str(row.get_ref(index)?.as_str()?);
            }
            entry.pattern = row.get(10)?;
            entry.delay = row.get(11)?;
            Ok(())
        };
        loop {
            match rows.next() {
                Ok(Some(row)) => read(row, &mut entry).map_err(|e| self.err(e))?,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.err(e)),
            }
            each(&entry);
        }
    }

    fn purge_decision_log(&mut self, before: i64, limit: Option<u64>) -> Result<u64, StoreError> {
        let limit = limit.map_or(-1, |n| n.min(i64::MAX as u64) as i64);
        self.conn
            .prepare_cached(
                "DELETE FROM decision_log WHERE id IN
                 (SELECT id FROM decision_log WHERE time < ?1 ORDER BY time LIMIT ?2)",
            )
            .and_then(|mut stmt| stmt.execute(params![before, limit]))
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
            let rows_wanted = window.saturating_add(1).min(i64::MAX as u64) as i64;
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
                triplet: Triplet {
                    first_seen: row.get(4)?,
                    earliest_accept: row.get(5)?,
                    last_seen: row.get(6)?,
                    expires: row.get(7)?,
                    pass_count: row.get::<_, i64>(8)?.max(0) as u64,
                },
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }
}
