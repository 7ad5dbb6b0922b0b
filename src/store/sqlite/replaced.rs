//! A database file replaced at its path (a restored copy moved over it, DESIGN.md §6) while
//! connections to the old file are open, here or in another process.
//!
//! A move replaces only the database file: the `-wal` and `-shm` files at the path stay, and
//! every connection, to the old file or the new, uses them. While only connections to the old
//! file use them, the log holds the old file's transactions, and the connection letting go
//! must fold them into the old file and empty the log, or the first connection to the new file
//! would read them as its own. Once a connection to the new file is open (another daemon, the
//! filter, the CLI), the log holds the new file's transactions instead: folding it into the old
//! file and emptying it would throw them away.
//!
//! So the two sides take turns. A daemon (re)opening the file at the path first waits, for a
//! bounded time, until no other process has the log index open with a connection to another
//! database file and none to the file at the path — that is, until every connection to the old
//! file has let go ([`wait_for_old_users`]). A connection letting go of the old file (on
//! noticing, or on closing after the move) folds the log into it unless the new file is in use
//! ([`in_use`]). Without the wait, a daemon could open and write between another process's
//! check and its fold, and that write was folded into the old file and lost.
//!
//! The filter and the CLI do not wait: the other processes are found in `/proc/locks`, and
//! reading it holds up file locking across the whole host while it is read (64 filters that
//! each read it once took twice as long, and some hit SQLite's 5 s busy timeout). A daemon reads
//! it once per (re)open. `/proc/locks` also shows only processes of this pid namespace, is
//! missing under a `/proc` mounted with `subset=pid`, names btrfs subvolumes' files by a device
//! number `stat` does not give, and is read only up to [`OPENER_READS_AT_MOST`] by an opener:
//! then the opener does not wait.
//!
//! SQLite holds a shared lock on a database file in write-ahead-log mode for as long as a
//! connection to it is open, and one on its `-shm` file while it has the log index mapped; the
//! lock on the database file is taken first and let go of last. The kernel lists every
//! process's file locks in `/proc/locks`, found without opening the file: closing a descriptor
//! of a file drops every lock this process holds on it, SQLite's included.

use std::collections::BTreeSet;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where Linux lists the file locks of every process.
const PROC_LOCKS: &str = "/proc/locks";

/// How much of `/proc/locks` an opener reads. The kernel hands the list out a page per read,
/// walking it from the start each time, and lets it change between pages: on a host holding
/// tens of thousands of locks a full read takes most of a second and is no consistent picture.
/// About 3,500 locks fit; past that an opener does not wait (it opens as it would without the
/// wait).
const OPENER_READS_AT_MOST: u64 = 256 * 1024;

/// Where SQLite's shared lock on a database file starts on Unix (`PENDING_BYTE + 2`): every
/// open connection holds a read lock from here on, whatever it does.
const SQLITE_SHARED_FIRST: u64 = 0x4000_0002;

/// How long an opener waits for connections to a replaced file to let go. The daemons look at
/// the path every second (DESIGN.md §6) and before every batch; a process that has not let go
/// by then is hung or not ours, and waiting longer would only slow every open.
pub(crate) const LET_GO_WAIT: Duration = Duration::from_secs(3);

/// How often the opener looks again while it waits.
const LET_GO_POLL: Duration = Duration::from_millis(25);

/// How many reads in a row must show no old user before the opener believes it. The list
/// changes between the pages a read hands out, so one read can miss a line that stays put when
/// lines before it come and go (seen in CI with other tests locking files all along); three
/// misses in a row of a process that holds its locks throughout are far less likely.
const CLEAN_READS: u32 = 3;

/// Waits (at most `bound`) until no other process has a connection to a file that was
/// replaced at `path`: one that holds a lock on the log index beside `path`, SQLite's shared
/// lock on another database file, and no lock on the database file at `path`. Returns those
/// still there when the time ran out (process ids as the kernel lists them), empty when
/// [`CLEAN_READS`] reads in a row found none.
pub(crate) fn wait_for_old_users(path: &Path, bound: Duration) -> Vec<String> {
    let started = Instant::now();
    let mut clean = 0;
    loop {
        let old = old_users(path);
        if old.is_empty() {
            clean += 1;
            if clean == CLEAN_READS {
                return old;
            }
        } else if started.elapsed() >= bound {
            return old;
        } else {
            clean = 0;
        }
        std::thread::sleep(LET_GO_POLL);
    }
}

/// The other processes with a connection to a file replaced at `path` ([`old_users_in`]).
/// Empty when there is no `-shm` file, or the locks cannot be read or are too many.
fn old_users(path: &Path) -> Vec<String> {
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    let Ok(shm) = std::fs::symlink_metadata(&shm) else {
        return Vec::new();
    };
    let Some(locks) = std::fs::File::open(PROC_LOCKS)
        .ok()
        .and_then(|file| read_at_most(file, OPENER_READS_AT_MOST))
    else {
        return Vec::new();
    };
    let db = std::fs::symlink_metadata(path)
        .ok()
        .map(|db| FileKey::of(&db));
    old_users_in(
        &locks,
        FileKey::of(&shm),
        db,
        &std::process::id().to_string(),
    )
}

/// The whole text `from` gives, `None` when it cannot be read or holds `limit` bytes or more.
fn read_at_most(from: impl Read, limit: u64) -> Option<String> {
    let mut text = String::new();
    let read = from.take(limit).read_to_string(&mut text).ok()?;
    ((read as u64) < limit).then_some(text)
}

/// [`old_users`] from the text of `/proc/locks`: the processes that hold a lock on `shm`,
/// SQLite's shared lock on another file of the same file system, and nothing on `db`; this
/// process (`own`) left out — its own connections take turns inside it. The shared lock on
/// another file is the evidence: the list is no consistent picture (see
/// [`OPENER_READS_AT_MOST`]), and a line of the file at the path missing from it alone must
/// not make an opener wait.
fn old_users_in(locks: &str, shm: FileKey, db: Option<FileKey>, own: &str) -> Vec<String> {
    let on_db = db.map(|db| lock_holders(locks, db)).unwrap_or_default();
    let on_other_database: BTreeSet<&str> = parsed(locks)
        .filter(|lock| {
            lock.start == SQLITE_SHARED_FIRST
                && lock.file.same_device(shm)
                && lock.file != shm
                && Some(lock.file) != db
        })
        .map(|lock| lock.pid)
        .collect();
    lock_holders(locks, shm)
        .into_iter()
        .filter(|pid| {
            pid != own && !on_db.contains(pid) && on_other_database.contains(pid.as_str())
        })
        .collect()
}

/// A file as `/proc/locks` names it: device numbers and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileKey {
    major: u32,
    minor: u32,
    ino: u64,
}

impl FileKey {
    fn of(meta: &std::fs::Metadata) -> FileKey {
        let dev = meta.dev();
        FileKey {
            major: libc::major(dev),
            minor: libc::minor(dev),
            ino: meta.ino(),
        }
    }

    fn same_device(self, other: FileKey) -> bool {
        (self.major, self.minor) == (other.major, other.minor)
    }

    /// A `<major>:<minor>:<inode>` field: device numbers in hexadecimal, inode in decimal.
    fn parse(field: &str) -> Option<FileKey> {
        let mut parts = field.split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(major), Some(minor), Some(ino), None) => Some(FileKey {
                major: u32::from_str_radix(major, 16).ok()?,
                minor: u32::from_str_radix(minor, 16).ok()?,
                ino: ino.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// True when some process (this one included) holds a lock on the file at `path`. False when
/// there is no file there or the locks cannot be read.
pub(super) fn in_use(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let Ok(locks) = std::fs::read_to_string(PROC_LOCKS) else {
        return false;
    };
    !lock_holders(&locks, FileKey::of(&meta)).is_empty()
}

/// One line of `/proc/locks`.
struct Lock<'a> {
    /// The process id as the kernel writes it (-1 for an open-file-description lock).
    pid: &'a str,
    file: FileKey,
    /// The first byte locked.
    start: u64,
}

/// The lines of `/proc/locks`: `1: POSIX ADVISORY READ 4711 fe:00:1234 0 EOF`, the process
/// id before the file, the range after it; a waiting request has an extra `->` field.
fn parsed(locks: &str) -> impl Iterator<Item = Lock<'_>> {
    locks.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (at, file) = fields
            .iter()
            .enumerate()
            .find_map(|(at, field)| Some((at, FileKey::parse(field)?)))?;
        Some(Lock {
            pid: fields.get(at.checked_sub(1)?)?,
            file,
            start: fields.get(at + 1)?.parse().ok()?,
        })
    })
}

/// The process ids holding a lock on `file`.
fn lock_holders(locks: &str, file: FileKey) -> BTreeSet<String> {
    parsed(locks)
        .filter(|lock| lock.file == file)
        .map(|lock| lock.pid.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCKS: &str = "1: POSIX  ADVISORY  READ 24182 fe:00:10970290 128 128
2: POSIX  ADVISORY  READ 24182 fe:00:10970288 1073741826 1073742335
3: OFDLCK ADVISORY  WRITE -1 00:2d:77 0 EOF
3: -> POSIX  ADVISORY  WRITE 999 103:0a:5 0 EOF
";

    #[test]
    fn a_lock_is_found_by_device_and_inode_with_its_holder() {
        let pids = |major, minor, ino| -> Vec<String> {
            lock_holders(LOCKS, key(major, minor, ino))
                .into_iter()
                .collect()
        };
        assert_eq!(pids(0xfe, 0, 10_970_288), ["24182"]);
        assert_eq!(pids(0, 0x2d, 77), ["-1"]);
        assert_eq!(pids(0x103, 0x0a, 5), ["999"], "a waiting request counts");
    }

    #[test]
    fn another_inode_or_device_is_not_the_file() {
        assert!(lock_holders(LOCKS, key(0xfe, 0, 10_970_289)).is_empty());
        assert!(lock_holders(LOCKS, key(0xfe, 1, 10_970_288)).is_empty());
        assert!(lock_holders(LOCKS, key(0, 0x2d, 7)).is_empty());
        assert!(lock_holders("", key(0xfe, 0, 10_970_288)).is_empty());
    }

    fn key(major: u32, minor: u32, ino: u64) -> FileKey {
        FileKey { major, minor, ino }
    }

    #[test]
    fn old_users_hold_the_log_index_and_another_database_but_not_the_file_at_the_path() {
        // Inode 5 is the log index, 7 the file at the path, 6 a file replaced there. 100 uses
        // the file at the path, 200 the old one; 300 is this process; 400 holds the index and
        // its shared lock is missing from the list (read while it changed); 500 holds
        // another file's shared lock on another file system.
        let locks = "1: POSIX  ADVISORY  READ 100 fe:00:7 1073741826 1073742335
2: POSIX  ADVISORY  READ 100 fe:00:5 128 128
3: POSIX  ADVISORY  READ 200 fe:00:6 1073741826 1073742335
4: POSIX  ADVISORY  READ 200 fe:00:5 128 128
5: POSIX  ADVISORY  READ 300 fe:00:6 1073741826 1073742335
6: POSIX  ADVISORY  READ 300 fe:00:5 128 128
7: POSIX  ADVISORY  READ 400 fe:00:5 128 128
8: POSIX  ADVISORY  READ 500 fe:00:5 128 128
9: POSIX  ADVISORY  READ 500 fe:01:6 1073741826 1073742335
";
        let (shm, db) = (key(0xfe, 0, 5), key(0xfe, 0, 7));
        assert_eq!(old_users_in(locks, shm, Some(db), "300"), ["200"]);
        assert_eq!(
            old_users_in(locks, shm, None, "300"),
            ["100", "200"],
            "no file at the path: every other database user of the index is an old one"
        );
        assert!(old_users_in(locks, key(0xfe, 0, 9), Some(db), "300").is_empty());
    }

    #[test]
    fn an_opener_reads_a_crowded_lock_list_as_none() {
        assert_eq!(read_at_most(LOCKS.as_bytes(), 4096).as_deref(), Some(LOCKS));
        assert_eq!(read_at_most(LOCKS.as_bytes(), LOCKS.len() as u64), None);
        assert_eq!(read_at_most(&[0xff_u8][..], 4096), None, "not text");
    }

    /// The names of the tables in the SQLite file at `path`, read by a plain connection.
    fn tables(path: &Path) -> Vec<String> {
        let conn = rusqlite::Connection::open(path).expect("open");
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .expect("prepare");
        stmt.query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    // A program whose file is replaced while it runs and which then just closes (the filter's
    // exit, a daemon's stop or SIGHUP) must not leave its transactions in the log the file now
    // at the path reads.
    #[test]
    fn a_connection_closed_after_its_file_was_replaced_leaves_nothing_in_the_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.db");
        let old = super::super::SqliteStore::open(&path).expect("open");
        old.connection()
            .execute_batch("CREATE TABLE old_only (x); INSERT INTO old_only VALUES (1)")
            .expect("write");
        let copy = dir.path().join("copy.db");
        rusqlite::Connection::open(&copy)
            .expect("copy")
            .execute_batch("CREATE TABLE new_only (x); INSERT INTO new_only VALUES (2)")
            .expect("write copy");
        std::fs::rename(&copy, &path).expect("move");
        drop(old);
        assert_eq!(tables(&path), ["new_only"]);
        let conn = rusqlite::Connection::open(&path).expect("open");
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .expect("check");
        assert_eq!(check, "ok");
    }

    #[test]
    fn a_file_this_process_has_locked_is_in_use() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.db");
        let conn = rusqlite::Connection::open(&path).expect("open");
        let _: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .expect("wal");
        conn.execute_batch("CREATE TABLE t (x)").expect("write");
        assert!(in_use(&path), "an open connection in WAL mode holds a lock");
        drop(conn);
        assert!(!in_use(&path), "closed, nobody holds it");
        assert!(!in_use(&dir.path().join("missing.db")));
    }
}
