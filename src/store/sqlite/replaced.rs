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
//! So the two sides take turns. A connection opening the file at the path first waits, for a
//! bounded time, until no other process has the log index open without holding the file at the
//! path — that is, until every connection to the old file has let go ([`wait_for_old_users`]).
//! A connection letting go of the old file folds the log into it unless the new file is in use
//! ([`in_use`]), which, with openers waiting, only happens when one gave up waiting or is not
//! ours. Without the wait, an opener could write between another process's check and its fold,
//! and that write was folded into the old file and lost.
//!
//! SQLite holds a shared lock on a database file in write-ahead-log mode for as long as a
//! connection to it is open, and one on its `-shm` file while it has the log index mapped; the
//! lock on the database file is taken first and let go of last. The kernel lists every
//! process's file locks in `/proc/locks`, found without opening the file: closing a descriptor
//! of a file drops every lock this process holds on it, SQLite's included.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where Linux lists the file locks of every process.
const PROC_LOCKS: &str = "/proc/locks";

/// How long an opener waits for connections to a replaced file to let go. The daemons look at
/// the path every second (DESIGN.md §6) and before every batch; a process that has not let go
/// by then is hung or not ours, and waiting longer would only slow every open.
pub(crate) const LET_GO_WAIT: Duration = Duration::from_secs(3);

/// How often the opener looks again while it waits.
const LET_GO_POLL: Duration = Duration::from_millis(10);

/// Waits (at most `bound`) until no other process has the log index beside `path` open while
/// holding no lock on the database file at `path`: a process with a connection to a file that
/// was replaced at the path. Returns those still there when the time ran out (process ids as
/// the kernel lists them), empty when there are none.
pub(crate) fn wait_for_old_users(path: &Path, bound: Duration) -> Vec<String> {
    let started = Instant::now();
    loop {
        let old = old_users(path);
        if old.is_empty() || started.elapsed() >= bound {
            return old;
        }
        std::thread::sleep(LET_GO_POLL);
    }
}

/// The other processes holding a lock on the `-shm` file beside `path` but none on the
/// database file at `path`. Empty when there is no `-shm` file or the locks cannot be read.
fn old_users(path: &Path) -> Vec<String> {
    let mut shm = path.as_os_str().to_owned();
    shm.push("-shm");
    let Ok(shm) = std::fs::symlink_metadata(&shm) else {
        return Vec::new();
    };
    let Ok(locks) = std::fs::read_to_string(PROC_LOCKS) else {
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

/// [`old_users`] from the text of `/proc/locks`: holders of `shm` that hold nothing on `db`,
/// this process (`own`) left out — its own connections take turns inside it.
fn old_users_in(locks: &str, shm: FileKey, db: Option<FileKey>, own: &str) -> Vec<String> {
    let on_db = db.map(|db| lock_holders(locks, db)).unwrap_or_default();
    lock_holders(locks, shm)
        .into_iter()
        .filter(|pid| pid != own && !on_db.contains(pid))
        .collect()
}

/// A file as `/proc/locks` names it: device numbers and inode.
#[derive(Debug, Clone, Copy)]
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

/// The process ids of the lines of `/proc/locks` that name the file. The kernel writes the file as `<major>:<minor>:<inode>` after the process id,
/// the device numbers in hexadecimal of at least two digits, the inode in decimal
/// (`1: POSIX ADVISORY READ 4711 fe:00:1234 0 EOF`; a waiting request has an extra `->` field;
/// an open-file-description lock has the id -1).
fn lock_holders(locks: &str, file: FileKey) -> BTreeSet<String> {
    let names_file = |field: &str| {
        let mut parts = field.split(':');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(maj), Some(min), Some(inode), None) => {
                u32::from_str_radix(maj, 16).ok() == Some(file.major)
                    && u32::from_str_radix(min, 16).ok() == Some(file.minor)
                    && inode.parse::<u64>().ok() == Some(file.ino)
            }
            _ => false,
        }
    };
    locks
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let at = fields.iter().position(|field| names_file(field))?;
            Some(fields.get(at.checked_sub(1)?)?.to_string())
        })
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
    fn old_users_hold_the_log_index_but_not_the_file_at_the_path() {
        // 100 and 200 have the log index (inode 5) mapped; 100 holds the file at the path
        // (inode 7), 200 only the old one (inode 6); 300 is this process.
        let locks = "1: POSIX  ADVISORY  READ 100 fe:00:7 1073741826 1073742335
2: POSIX  ADVISORY  READ 100 fe:00:5 128 128
3: POSIX  ADVISORY  READ 200 fe:00:6 1073741826 1073742335
4: POSIX  ADVISORY  READ 200 fe:00:5 128 128
5: POSIX  ADVISORY  READ 300 fe:00:5 128 128
";
        let (shm, db) = (key(0xfe, 0, 5), key(0xfe, 0, 7));
        assert_eq!(old_users_in(locks, shm, Some(db), "300"), ["200"]);
        assert_eq!(
            old_users_in(locks, shm, None, "300"),
            ["100", "200"],
            "no file at the path: every other user of the index is an old one"
        );
        assert!(old_users_in(locks, key(0xfe, 0, 9), Some(db), "300").is_empty());
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
