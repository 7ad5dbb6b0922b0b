//! The embedded SQLite store: one file shared by the CLI, the filter and the policy server.

mod busy;
mod config;
mod dns;
mod log;
mod replaced;
mod schema;
mod triplets;
mod tx;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::files::{self, FileId};
use super::{Store, StoreError, Tx};
pub(crate) use busy::wait_for_locks;
pub(crate) use schema::SCHEMA_VERSION;
use tx::SqliteTx;

/// How long a writer waits for another one before giving up (DESIGN.md §1).
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// An open SQLite database.
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Set once the schema is known good; until then a close behaves as SQLite's default, so a
    /// refused database (too new, not a database) is left exactly as it was.
    opened: bool,
    /// Whether a write transaction (or a migration) committed since the last checkpoint.
    changed: bool,
    /// The device and inode of the file SQLite opened; `None` when the path changed while it
    /// opened it, so which file it holds is unknown.
    opened_file: Option<FileId>,
    /// Set once [`Store::abandon_replaced`] has let go of the log.
    abandoned: bool,
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
        let before = files::file_id(path);
        let mut conn = Connection::open_with_flags(&real, flags).map_err(sqlite_err)?;
        let opened_file = files::file_id(path).filter(|after| before == Some(*after));
        wait_for_locks(&mut conn).map_err(sqlite_err)?;
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
            opened_file,
            abandoned: false,
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

    /// [`SqliteStore::open`] for a long-running daemon: first waits, at most 3 s, until no
    /// other process still has a connection to a file that was replaced at `path` (DESIGN.md
    /// §6), so that one letting go of the old file cannot fold this one's first writes into it.
    /// Also returns, when some did not let go in time, the line naming them. Only the daemons
    /// wait: finding the other processes means reading the kernel's lock list, which holds up
    /// every file lock on the host while it is read — once per (re)open, never per message.
    pub(crate) fn open_after_old_users(
        path: &Path,
    ) -> Result<(SqliteStore, Option<String>), StoreError> {
        let old_users = replaced::wait_for_old_users(path, replaced::LET_GO_WAIT);
        let notice = (!old_users.is_empty()).then(|| {
            format!(
                "database {} was replaced while process {} still had the old file open; it \
                 did not let go within {} s, so this opened it anyway: until it lets go, \
                 changes may be lost and the database damaged",
                path.display(),
                old_users.join(", "),
                replaced::LET_GO_WAIT.as_secs()
            )
        });
        Ok((SqliteStore::open(path)?, notice))
    }

    /// Wraps a connection `super::read_only` opened read-only: no WAL switch, no migration, and
    /// nothing to configure at close.
    pub(crate) fn from_read_only(conn: Connection, path: &Path) -> SqliteStore {
        SqliteStore {
            conn,
            path: path.to_path_buf(),
            opened: false,
            changed: false,
            opened_file: None,
            abandoned: false,
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
    /// `WAL_KEEP_BYTES` — one round of fsyncs every few dozen messages, and a bounded WAL.
    ///
    /// A connection whose file is no longer the one at the path (a restored copy moved over it
    /// while this program ran, then SIGHUP, a stop, the filter's exit) first lets go of the log
    /// it shares with the file now there, as [`Store::abandon_replaced`] does: closing as usual
    /// would leave its transactions in that log, and the next program to open the file at the
    /// path would read them as that file's pages.
    fn drop(&mut self) {
        if !self.opened {
            return;
        }
        if !self.abandoned && files::must_reopen(self.opened_file, files::file_id(&self.path)) {
            self.abandon_replaced();
            if !self.opened {
                return;
            }
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

    fn opened_file(&self) -> Option<FileId> {
        self.opened_file
    }

    fn abandon_replaced(&mut self) {
        if replaced::in_use(&self.path) {
            // Another connection already works on the file now at the path, through the log
            // this handle shares with it: the log holds that file's transactions now. Neither
            // a checkpoint now nor one at close (which would also delete the log) may fold them
            // into the old file; let go of it without touching the log.
            let _ = self
                .conn
                .set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true);
            // `Drop` leaves that setting alone.
            self.opened = false;
            return;
        }
        self.abandoned = true;
        // Nobody uses the new file yet: the log holds only the old file's transactions.
        // Checkpoints into the old (unlinked) file and truncates the log this handle has open,
        // which is the one still at the path unless a new log was moved there too, so the first
        // connection to the new file does not read them as its own.
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
