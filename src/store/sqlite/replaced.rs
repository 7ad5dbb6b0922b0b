//! Whether the database file now at a path is in use, for a connection letting go of the file
//! that was there before (a restored copy moved over it, DESIGN.md §6).
//!
//! A move replaces only the database file: the `-wal` and `-shm` files at the path stay, and
//! every connection, to the old file or the new, uses them. While only connections to the old
//! file use them, the log holds the old file's transactions, and the connection letting go
//! must fold them into the old file and empty the log, or the first connection to the new file
//! would read them as its own. Once a connection to the new file is open (another daemon, the
//! filter, the CLI), the log holds the new file's transactions instead: folding it into the old
//! file and emptying it would throw them away.
//!
//! SQLite holds a shared lock on a database file in write-ahead-log mode for as long as a
//! connection to it is open, so a lock on the new file says someone uses it. The kernel lists
//! every process's file locks in `/proc/locks`, found without opening the file: closing a
//! descriptor of a file drops every lock this process holds on it, SQLite's included.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Where Linux lists the file locks of every process.
const PROC_LOCKS: &str = "/proc/locks";

/// True when some process (this one included) holds a lock on the file at `path`. False when
/// there is no file there or the locks cannot be read.
pub(super) fn in_use(path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let Ok(locks) = std::fs::read_to_string(PROC_LOCKS) else {
        return false;
    };
    let dev = meta.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    locks_file(&locks, major, minor, meta.ino())
}

/// Whether a line of `/proc/locks` names the file (device `major:minor`, inode `ino`). The
/// kernel writes the file as `<major>:<minor>:<inode>`, the device numbers in hexadecimal of
/// at least two digits, the inode in decimal (`1: POSIX ADVISORY READ 4711 fe:00:1234 0 EOF`;
/// a waiting request has an extra `->` field).
fn locks_file(locks: &str, major: u32, minor: u32, ino: u64) -> bool {
    locks.lines().any(|line| {
        line.split_whitespace().any(|field| {
            let mut parts = field.split(':');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(maj), Some(min), Some(inode), None) => {
                    u32::from_str_radix(maj, 16).ok() == Some(major)
                        && u32::from_str_radix(min, 16).ok() == Some(minor)
                        && inode.parse::<u64>().ok() == Some(ino)
                }
                _ => false,
            }
        })
    })
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
    fn a_lock_is_found_by_device_and_inode() {
        assert!(locks_file(LOCKS, 0xfe, 0, 10_970_288));
        assert!(locks_file(LOCKS, 0, 0x2d, 77));
        assert!(
            locks_file(LOCKS, 0x103, 0x0a, 5),
            "a waiting request counts"
        );
    }

    #[test]
    fn another_inode_or_device_is_not_the_file() {
        assert!(!locks_file(LOCKS, 0xfe, 0, 10_970_289));
        assert!(!locks_file(LOCKS, 0xfe, 1, 10_970_288));
        assert!(!locks_file(LOCKS, 0, 0x2d, 7));
        assert!(!locks_file("", 0xfe, 0, 10_970_288));
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
