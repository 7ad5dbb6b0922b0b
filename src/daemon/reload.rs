//! Keeping a long-running daemon (the policy server and the milter alike) on the right database
//! and configuration.
//!
//! - A database file deleted or replaced under the server (`rm greylist.db*`, a restored copy
//!   moved over it) would otherwise keep receiving the server's writes in the unlinked file, and
//!   CLI changes made to the new file would never reach the server. Every [`WATCH_INTERVAL`] the
//!   loop compares the device and inode behind the path with those of the file it opened, and
//!   reopens on a difference; the batch decider does the same before every batch
//!   (`BatchDecider::decide`). This is a `stat` per interval and per batch, not per request.
//! - SIGHUP re-reads the configuration file whatever `--db` says, as at start (the database
//!   location is resolved as at start: `--db`, then `GREY_LISTING_DB`, then the file's `db =`,
//!   then the default), reopens the database it names and reconnects to syslog. A configuration
//!   that is now invalid is logged and the previous one kept.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::clock;
use crate::daemon::batch::BatchDecider;
use crate::logging::Logger;
pub use crate::store::files::{FileId, file_id, must_reopen};
use crate::store::{DbLocation, daemon_location};

/// How often the database path is compared with the open file. Well inside the 5 s within
/// which a replaced database must be noticed, and a `stat` a second costs nothing.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// Where the database location comes from when the configuration is read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationSource {
    /// The location given to the server is kept (SIGHUP only reopens it).
    Fixed,
    /// Resolved again from the `--db` value (if any), the environment and the configuration
    /// file, as at start.
    Resolve {
        /// The `--db` value.
        cli: Option<String>,
    },
}

/// What the event loop does between turns to stay on the right database: the SIGHUP flag and
/// the periodic check of the database file.
pub struct Lifecycle {
    reload: Arc<AtomicBool>,
    last_watch: Instant,
}

impl Lifecycle {
    /// `reload` is set by the SIGHUP handler.
    pub fn new(reload: Arc<AtomicBool>) -> Lifecycle {
        Lifecycle {
            reload,
            last_watch: Instant::now(),
        }
    }

    /// Called once per loop turn: an atomic load and a clock read unless there is work.
    /// `db` is the database in use, `source` where SIGHUP looks it up again. Returns true when
    /// it reloaded (SIGHUP).
    pub fn tick(
        &mut self,
        db: &mut DbLocation,
        source: &LocationSource,
        decider: &mut BatchDecider,
        log: &mut Logger,
    ) -> bool {
        if self.reload.swap(false, Ordering::SeqCst) {
            reload(db, source, decider, log);
            self.last_watch = Instant::now();
            return true;
        }
        if self.last_watch.elapsed() >= WATCH_INTERVAL {
            self.last_watch = Instant::now();
            decider.check_replaced(log);
        }
        false
    }
}

/// SIGHUP: syslog again, the configuration again, the database again.
fn reload(
    current: &mut DbLocation,
    source: &LocationSource,
    decider: &mut BatchDecider,
    log: &mut Logger,
) {
    log.reconnect();
    let resolved = match source {
        LocationSource::Fixed => {
            log.info(&format!("SIGHUP: reopening the database {current}"));
            decider.reopen(current, log);
            return;
        }
        LocationSource::Resolve { cli } => daemon_location(cli.as_deref(), &clock::process_env),
    };
    match resolved {
        Ok(db) => {
            if db == *current {
                log.info(&format!(
                    "SIGHUP: configuration read again, reopening the database {db}"
                ));
            } else {
                log.info(&format!(
                    "SIGHUP: configuration read again, database changed from {current} to {db}"
                ));
            }
            decider.reopen(&db, log);
            *current = db;
        }
        Err(err) => log.error(&format!(
            "SIGHUP: keeping the previous configuration (database {current}): {err}"
        )),
    }
}

/// The log line for a database found deleted or replaced.
pub fn replaced_line(db: &DbLocation, current: Option<FileId>) -> String {
    match current {
        None => format!("database {db} was deleted: creating a new one and using it"),
        Some(_) => format!("database {db} was replaced by another file: reopening it"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_or_deleted_file_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.db");
        std::fs::write(&path, b"one").expect("write");
        let opened = file_id(&path);
        assert!(opened.is_some());
        assert!(!must_reopen(opened, file_id(&path)));
        // A copy moved over the path: another inode.
        let copy = dir.path().join("copy.db");
        std::fs::write(&copy, b"two").expect("write");
        std::fs::rename(&copy, &path).expect("rename");
        assert!(must_reopen(opened, file_id(&path)));
        std::fs::remove_file(&path).expect("remove");
        assert!(must_reopen(opened, file_id(&path)));
        // Unknown identity: always reopen.
        assert!(must_reopen(None, None));
    }
}
