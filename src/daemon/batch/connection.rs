//! One database connection of the batch decider, opened lazily and reopened after an error
//! or a panic inside its transaction; its configuration cache lives with it.

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::engine::{self, Checked, ConfigCache, Message};
use crate::store::{self, DbLocation, SqliteStore, Store, StoreError, StoreExt};

use super::DecideError;

use super::Synchronous;
use crate::daemon::reload::{self, FileId};

/// Log pages after which a commit of the server checkpoints the WAL into the database.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// How long after a failed open the server waits before trying again (requests meanwhile pass);
/// also how long the decider lets requests pass after the database did not answer in time.
pub(super) const REOPEN_DELAY: Duration = Duration::from_secs(1);

/// One database connection, opened lazily and reopened after an error.
pub(super) struct Connection {
    pub(super) db: DbLocation,
    synchronous: Synchronous,
    /// Who decides, for the store's decision counters.
    component: engine::Component,
    store: Option<Box<dyn Store>>,
    last_open_failure: Option<Instant>,
    /// Configuration read from the store, valid while its stamp stays the same.
    cache: ConfigCache,
}

impl Connection {
    pub(super) fn new(
        db: DbLocation,
        synchronous: Synchronous,
        component: engine::Component,
    ) -> Connection {
        Connection {
            db,
            synchronous,
            component,
            store: None,
            last_open_failure: None,
            cache: ConfigCache::new(),
        }
    }

    /// Opens the store unless it is open or an open failed a moment ago. Returns the error of
    /// an open tried now and failed (it is also logged through `errors`).
    pub(super) fn ensure_open(&mut self, errors: &mut Vec<String>) -> Option<StoreError> {
        if self.store.is_some()
            || self
                .last_open_failure
                .is_some_and(|t| t.elapsed() < REOPEN_DELAY)
        {
            return None;
        }
        match open_store(&self.db, self.synchronous, errors) {
            Ok(opened) => {
                // Another file may now be behind the location: read the configuration afresh.
                self.cache.clear();
                self.store = Some(opened);
                self.last_open_failure = None;
                None
            }
            Err(err) => {
                errors.push(format!("cannot open the database, mail passes: {err}"));
                self.last_open_failure = Some(Instant::now());
                Some(err)
            }
        }
    }

    /// Reopens at once when the SQLite file at the path is not the one this connection opened.
    pub(super) fn check_replaced(&mut self, notes: &mut Vec<String>, errors: &mut Vec<String>) {
        let DbLocation::Sqlite(path) = &self.db else {
            // A PostgreSQL server keeps its database whatever happens to local files.
            return;
        };
        let current = reload::file_id(path);
        if self.abandon_if_replaced(current, notes) {
            self.ensure_open(errors);
            if self.store.is_some() {
                notes.push(format!("database {} reopened", self.db));
            }
        }
    }

    /// Closes the store when its SQLite file is not `current`, the file now at the path; true
    /// when it did. The next [`Connection::ensure_open`] opens the file at the path (creating
    /// it if there is none).
    pub(super) fn abandon_if_replaced(
        &mut self,
        current: Option<FileId>,
        notes: &mut Vec<String>,
    ) -> bool {
        if !matches!(self.db, DbLocation::Sqlite(_)) || self.store.is_none() {
            // Not open: the next batch opens whatever is there.
            return false;
        }
        // The store knows which file it opened (unknown if the path changed meanwhile: reopen).
        let opened = self.store.as_ref().and_then(|store| store.opened_file());
        if !reload::must_reopen(opened, current) {
            return false;
        }
        notes.push(reload::replaced_line(&self.db, current));
        if let Some(mut old) = self.store.take() {
            old.abandon_replaced();
        }
        self.last_open_failure = None;
        true
    }

    /// Closes the store; the next [`Connection::ensure_open`] opens `db`.
    pub(super) fn close(&mut self, db: DbLocation) {
        self.db = db;
        self.store = None;
        self.last_open_failure = None;
    }

    /// Closes the store and opens `db` (which may be the same location) at once.
    pub(super) fn reopen(
        &mut self,
        db: DbLocation,
        notes: &mut Vec<String>,
        errors: &mut Vec<String>,
    ) {
        self.close(db);
        self.ensure_open(errors);
        if self.store.is_some() {
            notes.push(format!("database {} opened", self.db));
        }
    }

    /// Decides `batch` in one transaction. `Err` carries why the store failed.
    pub(super) fn decide(
        &mut self,
        batch: &[(&Message, i64)],
        errors: &mut Vec<String>,
    ) -> Result<Vec<Checked>, DecideError> {
        // An open that failed just now is this batch's reason (the decider tells a server
        // that did not answer from one that refused); one skipped for a while is "unavailable".
        if let Some(err) = self.ensure_open(errors) {
            return Err(err.into());
        }
        let Some(store) = self.store.as_mut() else {
            return Err(DecideError::Unavailable);
        };
        let cache = &mut self.cache;
        let component = self.component;
        // A panic inside the transaction must not leave it open nor kill the server: it is
        // caught here, the connection dropped (which rolls the transaction back, also on
        // PostgreSQL, whose server ends a closed session's transaction) with the cached
        // configuration, and both are opened afresh for the next batch.
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            store.write_with(|tx| {
                let outcomes = engine::check_messages_with_dns(tx, cache, component, batch)?;
                #[cfg(test)]
                panic_hook(batch);
                Ok(outcomes)
            })
        }));
        let result = match result {
            Ok(result) => result,
            Err(payload) => {
                let why = DecideError::Panicked(crate::logline::panic_text(payload.as_ref()));
                errors.push(format!(
                    "{why}; its {} request{} pass, the database connection is reopened",
                    batch.len(),
                    if batch.len() == 1 { "" } else { "s" }
                ));
                self.store = None;
                self.cache.clear();
                return Err(why);
            }
        };
        match result {
            Ok(outcomes) => Ok(outcomes),
            Err(err) => {
                errors.push(format!("database error, mail passes: {err}"));
                // Reopen on the next batch: the file may have been replaced or repaired.
                self.store = None;
                Err(err.into())
            }
        }
    }
}

/// Opens the store with the durability the server was asked for; a line naming processes that
/// kept a replaced SQLite file open past the wait goes to `errors`.
fn open_store(
    db: &DbLocation,
    synchronous: Synchronous,
    errors: &mut Vec<String>,
) -> Result<Box<dyn Store>, StoreError> {
    match db {
        DbLocation::Sqlite(path) => {
            let (sqlite, notice) = SqliteStore::open_after_old_users(path)?;
            errors.extend(notice);
            // Checkpoint every WAL_AUTOCHECKPOINT_PAGES instead of SQLite's 1,000: a page
            // changed several times within the window is copied into the database once, and
            // fewer checkpoints read the log back (measured on 100,000 requests against
            // 1,000,000 triplets: 15 % fewer writes, 55 % fewer reads). The log file then
            // grows to about 40 MiB and is reused from its start after each checkpoint.
            sqlite.set_durability(synchronous == Synchronous::Full, WAL_AUTOCHECKPOINT_PAGES)?;
            Ok(Box::new(sqlite))
        }
        other => store::open(other),
    }
}

/// A recipient whose decision panics inside the store transaction, after its writes (tests
/// only: the real inputs that used to panic no longer do).
#[cfg(test)]
pub(crate) const PANIC_RECIPIENT: &str = "panic-in-transaction@hook.invalid";

#[cfg(test)]
fn panic_hook(batch: &[(&Message, i64)]) {
    if batch
        .iter()
        .any(|(m, _)| m.recipients.iter().any(|r| r == PANIC_RECIPIENT))
    {
        panic!("test hook: {PANIC_RECIPIENT}");
    }
}
