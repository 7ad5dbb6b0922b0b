//! Where settings, lists and triplets live (DESIGN.md §1).
//!
//! The mail path and the CLI see the database only through [`Store`] and [`Tx`]: a narrow
//! interface of reads and writes inside one transaction. All SQL is in the backend modules, so a
//! shared PostgreSQL backend plugs in without touching the decision logic.

mod backup;
pub mod dns_cache;
mod ext;
#[cfg(test)]
mod ext_tests;
pub(crate) mod files;
mod location;
mod migration;
#[cfg(feature = "postgres")]
mod pgpass;
mod pgurl;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
mod read_only;
mod records;
mod rows;
pub(crate) mod sqlite;
mod tx;

use std::path::PathBuf;

use thiserror::Error;

use crate::config::{ListChange, ListEdit, ListKind, MailboxLists, ServerLists};

pub use ext::StoreExt;
pub use location::{DbLocation, daemon_location, redact, resolve_location};
#[cfg(feature = "postgres")]
pub use pgpass::PasswordFileError;
#[cfg(feature = "postgres")]
pub use pgurl::ConnStringError;
#[cfg(feature = "postgres")]
pub use postgres::{PgConfigError, PgOptions, PgStore};
pub use records::{DecisionCount, LiveTriplet, LogEntry, Triplet, TripletCounts, TripletKey};
pub use sqlite::SqliteStore;
pub use tx::{ConfigTx, DecisionLogTx, DnsCacheTx, TripletTx, Tx};

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database stayed locked by another process past the busy timeout.
    #[error("database {location} is locked by another process (waited {waited_ms} ms)")]
    Locked {
        /// Which database.
        location: String,
        /// How long we waited.
        waited_ms: u64,
    },
    /// SQLite reported an error.
    #[error("database {location}: {source}")]
    Sqlite {
        /// Which database.
        location: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A file-system error around the database (creating its directory or file).
    #[error("{what} {path}: {source}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer version of grey_listing.
    #[error(
        "database {location} has schema version {found}, newer than this program's {supported}"
    )]
    TooNew {
        /// Which database.
        location: String,
        /// Version found in the file.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// The database needs a schema migration, which a read-only open cannot do.
    #[error(
        "database {location} has schema version {found}, older than this program's {supported}, \
         and this user cannot write it: run grey_listing once as root or as a member of group \
         greylisting (for example grey_listing --info-server) to migrate it"
    )]
    NeedsMigration {
        /// Which database.
        location: String,
        /// Version found in the file.
        found: i64,
        /// The version this build needs.
        supported: i64,
    },
    /// This user lacks a permission the database needs; the message says which and how to fix it.
    #[error("cannot read database {location}: {message}")]
    Permission {
        /// Which database.
        location: String,
        /// The missing permission and the fix.
        message: String,
    },
    /// PostgreSQL reported an error, or the connection failed (never contains the password).
    #[error("database {location}: {message}")]
    Postgres {
        /// Which database (credentials redacted).
        location: String,
        /// What went wrong.
        message: String,
    },
    /// The PostgreSQL store's configuration (a timeout, the connection string, a password
    /// file) was refused before connecting (never contains the password).
    #[cfg(feature = "postgres")]
    #[error("database {location}: {source}")]
    PgConfig {
        /// Which database (credentials redacted).
        location: String,
        /// What is wrong with the configuration.
        #[source]
        source: PgConfigError,
    },
    /// The database server did not answer in time (statement timeout or a hung connection).
    #[error("database {location} did not answer within {waited_ms} ms")]
    Timeout {
        /// Which database (credentials redacted).
        location: String,
        /// How long we waited.
        waited_ms: u64,
    },
    /// A database location this build cannot use.
    #[error("unsupported database location {0}")]
    Unsupported(String),
    /// A change refused by a check that needs the stored values (a list edit that would pass a
    /// list's size limit, an expire interval not longer than the grey interval): the transaction
    /// is rolled back, nothing is written. Bad input for the CLI (exit 1), not a database fault.
    #[error("{0}")]
    Refused(String),
    /// The configuration file that names the database is missing, unreadable or invalid.
    #[error(transparent)]
    Config(#[from] crate::conf_file::ConfError),
}

/// A database holding the greylisting state.
pub trait Store {
    /// Runs `f` in one write transaction (committed if `f` succeeds, rolled back otherwise).
    /// The PostgreSQL store runs `f` again (at most a few times) when the server rolled the
    /// transaction back to break a deadlock, so `f` must not keep state across runs.
    fn write(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// Runs `f` in one read transaction (a consistent snapshot).
    fn read(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError>;
    /// The location, for messages (credentials redacted).
    fn describe(&self) -> String;
    /// Makes what this connection committed part of the database's main file, so a plain copy
    /// of that file holds it (SQLite: a WAL checkpoint). Returns `false` when other connections
    /// kept it from completing within the busy timeout; the changes stay committed either way.
    /// Backends without such a file have nothing to do.
    fn checkpoint(&mut self) -> Result<bool, StoreError> {
        Ok(true)
    }
    /// Called before a long-lived connection is dropped because its database file was deleted
    /// or replaced under it. SQLite empties its write-ahead log through the handle it holds: a
    /// log of the old file left at the path would otherwise be applied to the file now there —
    /// unless another connection already uses the file now there, whose transactions that log
    /// then holds: it is left alone. Other stores have nothing to do.
    fn abandon_replaced(&mut self) {}
    /// The database file this connection opened, for noticing it replaced at its path: SQLite
    /// only, `None` when unknown (the path changed while it was opened) or not a file.
    fn opened_file(&self) -> Option<files::FileId> {
        None
    }
}

/// Opens (creating if needed) the store at a resolved location.
pub fn open(location: &DbLocation) -> Result<Box<dyn Store>, StoreError> {
    match location {
        DbLocation::Sqlite(path) => Ok(Box::new(SqliteStore::open(path)?)),
        #[cfg(feature = "postgres")]
        DbLocation::Postgres(url) => Ok(Box::new(PgStore::open(url)?)),
        #[cfg(not(feature = "postgres"))]
        DbLocation::Postgres(url) => Err(StoreError::Unsupported(format!(
            "{}: this build has no PostgreSQL support (built without the postgres feature)",
            redact(url)
        ))),
    }
}

/// Opens the store for a command that only reads: as [`open`], except that an SQLite database
/// this user cannot open read-write is opened read-only (no WAL switch, no migration, nothing
/// written), so a monitoring user with read access can run the information commands.
pub fn open_for_reading(location: &DbLocation) -> Result<Box<dyn Store>, StoreError> {
    match location {
        DbLocation::Sqlite(path) if !read_only::writable(path) => {
            Ok(Box::new(read_only::open(path)?))
        }
        _ => open(location),
    }
}

/// Takes the notices an upgrade recorded (see [`ConfigTx::pattern_notices`]): returns them and clears
/// them, so they are reported once. Costs one read when there are none. When they cannot be
/// cleared (a database the caller may only read) they are still returned, and stay for the
/// next command.
pub fn take_pattern_notices(store: &mut dyn Store) -> Result<Vec<String>, StoreError> {
    let notices = store.read_with(|tx| tx.pattern_notices())?;
    if notices.is_empty() {
        return Ok(notices);
    }
    let taken = store.write_with(|tx| {
        let taken = tx.pattern_notices()?;
        tx.clear_pattern_notices()?;
        Ok(taken)
    });
    Ok(taken.unwrap_or(notices))
}

/// Reads every server-wide list: Plesk's four and the DNS list zones.
pub fn server_lists(tx: &mut dyn Tx) -> Result<ServerLists, StoreError> {
    Ok(ServerLists {
        black: tx.list(ListKind::Black, "")?,
        white: tx.list(ListKind::White, "")?,
        domains_white: tx.list(ListKind::DomainsWhite, "")?,
        domains_black: tx.list(ListKind::DomainsBlack, "")?,
        dnswl_zones: tx.list(ListKind::DnswlZones, "")?,
        dnsbl_zones: tx.list(ListKind::DnsblZones, "")?,
    })
}

/// Reads a mailbox's own lists.
pub fn mailbox_lists(tx: &mut dyn Tx, mail: &str) -> Result<MailboxLists, StoreError> {
    Ok(MailboxLists {
        black: tx.list(ListKind::Black, mail)?,
        white: tx.list(ListKind::White, mail)?,
    })
}

/// Applies a list edit group by group, in order; patterns compare ignoring case. Returns the
/// `Warning:` lines of [`crate::config::plan_edit`].
pub fn apply_list_edit(
    tx: &mut dyn Tx,
    kind: ListKind,
    owner: &str,
    edit: &ListEdit,
) -> Result<Vec<String>, StoreError> {
    let list = tx.list(kind, owner)?;
    let (changes, warnings) = crate::config::plan_edit(&list, edit, kind, owner);
    for change in changes {
        match change {
            ListChange::Add(pattern) => tx.add_pattern(kind, owner, &pattern)?,
            ListChange::Del(pattern) => tx.delete_pattern(kind, owner, &pattern)?,
        }
    }
    Ok(warnings)
}
