//! The SQLite schema: its migrations, in order, and the driver that applies them when a
//! database is opened.

use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior, params};

use super::{BUSY_TIMEOUT, SqliteStore, is_busy, sqlite_or_locked};
use crate::config::ListKind;
use crate::store::StoreError;
use crate::store::migration::{self, Step};

/// The schema version this build writes. Each entry of [`MIGRATIONS`] moves one version up.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Migrations, in order: `MIGRATIONS[n]` upgrades a version-`n` database to `n + 1`.
pub(super) const MIGRATIONS: &[&str] = &[
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
pub(super) const WHITE_RULE_MIGRATION: usize = 4;

impl SqliteStore {
    /// `journal_mode=WAL` must run outside a transaction and does not use the busy handler on
    /// every SQLite version, so it is retried while another process holds the lock.
    pub(super) fn enable_wal(&mut self) -> Result<(), StoreError> {
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

    pub(super) fn user_version(&self) -> Result<i64, StoreError> {
        self.conn
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(|e| self.error(e))
    }

    /// Creates or upgrades the schema under `BEGIN IMMEDIATE`, so concurrent first opens do not
    /// race: the loser waits, then sees the version the winner wrote.
    pub(super) fn migrate(&mut self) -> Result<(), StoreError> {
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
        migration::refuse_newer(&path, version, SCHEMA_VERSION)?;
        for step in migration::steps(MIGRATIONS, version as usize, WHITE_RULE_MIGRATION) {
            match step {
                Step::Sql(sql) => tx.execute_batch(sql),
                Step::SeedDefaults => seed_defaults(&tx),
                Step::RecordWhiteNotices => record_white_pattern_notices(&tx),
            }
            .map_err(|e| sqlite_or_locked(&path, e))?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| sqlite_or_locked(&path, e))?;
        tx.commit().map_err(|e| sqlite_or_locked(&path, e))?;
        self.changed = true;
        Ok(())
    }

    pub(super) fn check_not_too_new(&self, version: i64) -> Result<(), StoreError> {
        migration::refuse_newer(&self.path.display().to_string(), version, SCHEMA_VERSION)
    }
}

fn seed_defaults(conn: &Connection) -> rusqlite::Result<()> {
    for (name, value) in migration::default_settings() {
        conn.execute(
            "INSERT INTO settings (name, value) VALUES (?1, ?2)",
            params![name, value],
        )?;
    }
    for (list, pattern) in migration::default_list_entries() {
        conn.execute(
            "INSERT INTO list_entries (list, owner, pattern) VALUES (?1, '', ?2)",
            params![list, pattern],
        )?;
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
        if migration::needs_notice(&pattern) {
            conn.execute(
                "INSERT INTO pattern_notices (pattern) VALUES (?1)",
                params![pattern],
            )?;
        }
    }
    Ok(())
}
