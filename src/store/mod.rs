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

use std::net::IpAddr;
use std::path::PathBuf;

use thiserror::Error;

use crate::config::{ListChange, ListEdit, ListKind, MailboxLists, ServerLists, Settings};
use crate::dns::{Forward, ZoneAnswer};

pub use ext::StoreExt;
pub use location::{DbLocation, location_with_conf, redact, resolve_location};
#[cfg(feature = "postgres")]
pub use postgres::{PgOptions, PgStore};
pub use records::{DecisionCount, LiveTriplet, LogEntry, Triplet, TripletCounts, TripletKey};
pub use sqlite::SqliteStore;

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

/// Reads and writes available inside one transaction.
///
/// A write transaction is exclusive (SQLite `BEGIN IMMEDIATE`), or, on PostgreSQL, locks each
/// triplet it reads, so a read followed by a write inside it is atomic: two filter processes
/// cannot both create the same triplet.
pub trait Tx {
    /// The server-wide settings.
    fn settings(&mut self) -> Result<Settings, StoreError>;
    /// The server-wide settings, locked until the transaction ends, for a write that checks the
    /// new values against the stored ones: two admins changing the grey and the expire interval
    /// at once must not both pass the check against the other's old value. SQLite's write
    /// transaction is exclusive already (the default); PostgreSQL locks the settings rows.
    fn settings_for_update(&mut self) -> Result<Settings, StoreError> {
        self.settings()
    }
    /// Replaces the server-wide settings.
    fn set_settings(&mut self, settings: &Settings) -> Result<(), StoreError>;
    /// A list's patterns in insertion order. `owner` is `""` for server lists, else a mailbox.
    fn list(&mut self, kind: ListKind, owner: &str) -> Result<Vec<String>, StoreError>;
    /// The stored white host patterns an upgrade recorded because they match differently now,
    /// not yet reported.
    fn pattern_notices(&mut self) -> Result<Vec<String>, StoreError>;
    /// Forgets the recorded notices (they have been reported).
    fn clear_pattern_notices(&mut self) -> Result<(), StoreError>;
    /// Adds a pattern at the end of a list; a no-op if it is there already.
    fn add_pattern(&mut self, kind: ListKind, owner: &str, pattern: &str)
    -> Result<(), StoreError>;
    /// Deletes a pattern from a list; a no-op if it is not there.
    fn delete_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError>;
    /// A domain's own checking flag, `None` if never set.
    fn domain_status(&mut self, domain: &str) -> Result<Option<bool>, StoreError>;
    /// Sets a domain's checking flag.
    fn set_domain_status(&mut self, domain: &str, enabled: bool) -> Result<(), StoreError>;
    /// Every domain with its own checking flag, sorted by name.
    fn domains(&mut self) -> Result<Vec<(String, bool)>, StoreError>;
    /// Forgets a domain's own flag (it is then enabled, as a domain never set).
    fn delete_domain(&mut self, domain: &str) -> Result<(), StoreError>;
    /// Every mailbox that has a list entry, sorted.
    fn mailboxes(&mut self) -> Result<Vec<String>, StoreError>;
    /// A triplet's state, if recorded (expired records included: the caller decides).
    fn triplet(&mut self, key: &TripletKey) -> Result<Option<Triplet>, StoreError>;
    /// Creates or replaces a triplet; `network` is the client network it came from (for AWL).
    fn put_triplet(
        &mut self,
        key: &TripletKey,
        network: &str,
        triplet: &Triplet,
    ) -> Result<(), StoreError>;
    /// How many distinct unexpired triplets from `network` have passed at least once.
    fn awl_passes(&mut self, network: &str, now: i64) -> Result<u64, StoreError>;
    /// [`Tx::awl_passes`] for the mail path, which only compares the count with the AWL
    /// threshold: a backend may stop counting at `enough` (the result is exact below it, and at
    /// least `enough` otherwise), so a large provider's network with thousands of passed
    /// triplets costs no more than a small one. The default counts them all.
    fn awl_passes_up_to(
        &mut self,
        network: &str,
        now: i64,
        enough: u64,
    ) -> Result<u64, StoreError> {
        let _ = enough;
        self.awl_passes(network, now)
    }
    /// Deletes the triplets expired at `now`; returns how many. Expired DNS cache rows go
    /// too (not counted).
    fn purge_expired(&mut self, now: i64) -> Result<u64, StoreError>;
    /// The cached answers of `zones` for `ip` not expired at `now` (listed or not listed; a
    /// zone without a live row is missing from the result), in the order of `zones`.
    fn dns_cache_get(
        &mut self,
        ip: IpAddr,
        zones: &[String],
        now: i64,
    ) -> Result<Vec<ZoneAnswer>, StoreError>;
    /// Stores the listed and not-listed answers for `ip`, each until `now` +
    /// [`dns_cache::DNS_CACHE_SECONDS`], replacing older ones; no-answers are not stored.
    fn dns_cache_put(
        &mut self,
        ip: IpAddr,
        answers: &[ZoneAnswer],
        now: i64,
    ) -> Result<(), StoreError>;
    /// The cached forward confirmation of host name `name` for `ip`, if not expired at `now`.
    fn forward_cache_get(
        &mut self,
        ip: IpAddr,
        name: &str,
        now: i64,
    ) -> Result<Option<Forward>, StoreError>;
    /// Stores whether `name` forward-confirms `ip`, until `now` +
    /// [`dns_cache::DNS_CACHE_SECONDS`]; a no-answer is not stored.
    fn forward_cache_put(
        &mut self,
        ip: IpAddr,
        name: &str,
        forward: Forward,
        now: i64,
    ) -> Result<(), StoreError>;
    /// Appends a row to the decision log.
    fn log_decision(&mut self, entry: &LogEntry) -> Result<(), StoreError>;
    /// Adds `counts` to the decision counters (created at zero when new). The counters are never
    /// purged: they only grow, as monitoring counters must.
    fn count_decisions(&mut self, counts: &[DecisionCount]) -> Result<(), StoreError>;
    /// Every decision counter, ordered by component, action and reason.
    fn decision_counters(&mut self) -> Result<Vec<DecisionCount>, StoreError>;
    /// The decision-log rows with `time >= since`, oldest first.
    fn decision_log(&mut self, since: i64) -> Result<Vec<LogEntry>, StoreError>;
    /// Calls `each` with every decision-log row with `time >= since`, oldest first, for reports
    /// over a week of a busy server (millions of rows) that need not hold them all at once. The
    /// row passed may be reused between calls. By default, over [`Tx::decision_log`].
    fn each_decision_log(
        &mut self,
        since: i64,
        each: &mut dyn FnMut(&LogEntry),
    ) -> Result<(), StoreError> {
        for entry in self.decision_log(since)? {
            each(&entry);
        }
        Ok(())
    }
    /// Deletes decision-log rows older than `before` (at most `limit` of them when given, so
    /// the mail path can prune a little at a time); returns how many.
    fn purge_decision_log(&mut self, before: i64, limit: Option<u64>) -> Result<u64, StoreError>;
    /// Counts triplets by state at `now`; `awl_count` is the auto-whitelist threshold.
    fn triplet_counts(&mut self, now: i64, awl_count: u32) -> Result<TripletCounts, StoreError>;

    /// A stamp of the configuration (settings, lists, per-domain flags) as this transaction sees
    /// it: equal stamps mean equal configuration, and every committed configuration write, by
    /// any process, changes it. A long-running reader (the policy server) keeps what it read
    /// from the configuration while the stamp stays the same. `None` (the default) means the
    /// backend offers no stamp: read the configuration in every transaction.
    fn config_stamp(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    /// Deletes at most `limit` of the triplets expired at `now` (and at most `limit` expired DNS
    /// cache rows, not counted); returns how many triplets. The filter
    /// calls this now and then so the database stays bounded without a cron job, while no single
    /// mail waits for a large delete. A backend may look at only part of the table per call
    /// (SQLite: a window of triplets after where the previous call stopped), as long as repeated
    /// calls cover it all. Backends without a cheap bounded delete may purge all.
    fn purge_expired_batch(&mut self, now: i64, limit: u64) -> Result<u64, StoreError> {
        let _ = limit;
        self.purge_expired(now)
    }
    /// Every triplet not expired at `now`, ordered by key (for `--migrate-store`).
    fn live_triplets(&mut self, now: i64) -> Result<Vec<LiveTriplet>, StoreError>;
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
    /// log of the old file left at the path would otherwise be applied to the file now there.
    /// Other stores have nothing to do.
    fn abandon_replaced(&mut self) {}
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

/// Takes the notices an upgrade recorded (see [`Tx::pattern_notices`]): returns them and clears
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
