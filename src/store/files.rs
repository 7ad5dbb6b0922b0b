//! The SQLite database's files on disk: what may be opened and how new files are created.
//!
//! The database usually lives in a directory writable by group `greylisting` (mode 2770), so any
//! member of that group can plant entries next to the database. Root's CLI must therefore never
//! follow a symbolic link or open a device, FIFO or directory in place of the database or one of
//! SQLite's companion files (`-wal`, `-shm`, `-journal`), and what it creates must stay usable by
//! the filter and the policy server, which run as that group.

use std::ffi::{CString, OsString};
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// The system group shared by root's CLI, the filter and the policy server.
pub(crate) const GROUP: &str = "greylisting";

/// Mode of a database file we create: read-write for its owner and group `greylisting`.
pub(crate) const FILE_MODE: u32 = 0o660;

/// Mode of a database directory we create: setgid, so every file created in it later (the
/// WAL files, a new database) inherits the directory's group.
pub(crate) const DIR_MODE: u32 = 0o2770;

/// The files SQLite may create next to a database, by the suffix it appends.
pub(crate) const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// `path` with `suffix` appended to its last component (`g.db` → `g.db-wal`).
pub(crate) fn companion(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// The identity of a file: which file system, which inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

/// The identity of the file at `path` (a symbolic link is not followed), `None` when there is
/// none (deleted, or unreadable directory).
pub fn file_id(path: &Path) -> Option<FileId> {
    std::fs::symlink_metadata(path).ok().map(|m| FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// Whether a connection that opened the file `opened` must let go of it, now that the path
/// shows `current`. An unknown identity (the file changed while it was being opened) always
/// must.
pub fn must_reopen(opened: Option<FileId>, current: Option<FileId>) -> bool {
    opened.is_none() || opened != current
}

/// Refuses `path` unless it is missing or a regular file, without following a symbolic link.
/// Returns whether it exists.
pub(crate) fn check_regular(path: &Path) -> Result<bool, StoreError> {
    let refuse = |why: String| StoreError::Io {
        what: "refusing database file",
        path: path.to_path_buf(),
        source: std::io::Error::new(ErrorKind::InvalidInput, why),
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_file() {
                Ok(true)
            } else if kind.is_symlink() {
                Err(refuse(
                    "it is a symbolic link; the database and its -wal, -shm and -journal files \
                     must be regular files"
                        .to_string(),
                ))
            } else {
                Err(refuse(format!(
                    "it is {}, not a regular file",
                    describe_kind(&kind)
                )))
            }
        }
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoreError::Io {
            what: "cannot examine database file",
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn describe_kind(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

/// Makes the database at `path` safe to hand to SQLite: creates its missing directories (mode
/// 2770) and the empty database file (mode 0660), both with group `greylisting` when root
/// creates them and that group exists; refuses a database or companion file that is not a
/// regular file. Returns the path to open: the same file, reached through the canonical form of
/// its directory, so SQLite's refusal of symbolic links (`SQLITE_OPEN_NOFOLLOW`) applies only to
/// the files themselves and a symbolic link the admin made for the directory still works.
pub(crate) fn prepare(path: &Path) -> Result<PathBuf, StoreError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_dirs(parent)?;
    // The companions first: a planted `-journal` must not survive into a fresh database.
    for suffix in COMPANIONS {
        check_regular(&companion(path, suffix))?;
    }
    if !check_regular(path)? {
        create_file(path)?;
    }
    let name = path.file_name().ok_or_else(|| StoreError::Io {
        what: "refusing database file",
        path: path.to_path_buf(),
        source: std::io::Error::new(ErrorKind::InvalidInput, "it does not name a file"),
    })?;
    let dir = std::fs::canonicalize(parent).map_err(|source| StoreError::Io {
        what: "cannot resolve database directory",
        path: parent.to_path_buf(),
        source,
    })?;
    Ok(dir.join(name))
}

/// Creates `dir` and its missing ancestors, each with mode 2770 whatever the umask, and group
/// `greylisting` when root creates them.
fn create_dirs(dir: &Path) -> Result<(), StoreError> {
    if dir.as_os_str().is_empty() || std::fs::symlink_metadata(dir).is_ok() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    let error = |source| StoreError::Io {
        what: "cannot create database directory",
        path: dir.to_path_buf(),
        source,
    };
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        // Another process created it first: it owns the modes.
        Err(err) if err.kind() == ErrorKind::AlreadyExists => return Ok(()),
        Err(source) => return Err(error(source)),
    }
    // The group before the mode: the setgid bit is then set for a group already in place.
    // lchown: nothing here may follow a link someone put in our place.
    if let Some(gid) = group_for_new_files() {
        std::os::unix::fs::lchown(dir, None, Some(gid)).map_err(error)?;
    }
    // mkdir's mode is filtered by the umask; set it outright.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE)).map_err(error)
}

/// Creates the empty database file: never through a symbolic link (`O_EXCL` with
/// `O_NOFOLLOW`), mode 0660 whatever the umask, group `greylisting` when root creates it.
fn create_file(path: &Path) -> Result<(), StoreError> {
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path);
    let file = match created {
        Ok(file) => file,
        // Another process created it first: fine if it is a regular file.
        Err(err) if err.kind() == ErrorKind::AlreadyExists => {
            check_regular(path)?;
            return Ok(());
        }
        Err(source) => {
            return Err(StoreError::Io {
                what: "cannot create database file",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    set_owner_and_mode(&file, FILE_MODE).map_err(|source| StoreError::Io {
        what: "cannot set the group and mode of database file",
        path: path.to_path_buf(),
        source,
    })
}

/// Gives a file we just created group `greylisting` (when root runs this and the group exists)
/// and exactly `mode`, on the open descriptor so no path lookup can be redirected.
pub(crate) fn set_owner_and_mode(file: &File, mode: u32) -> std::io::Result<()> {
    if let Some(gid) = group_for_new_files() {
        std::os::unix::fs::fchown(file, None, Some(gid))?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(mode))
}

/// The group to give what we create: `greylisting`'s id when running as root and the group
/// exists. Others keep their own group (or the setgid directory's), which they may not change.
pub(crate) fn group_for_new_files() -> Option<u32> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return None;
    }
    group_id(GROUP)
}

/// Looks a group up by name through the C library (so NSS sources count, not only /etc/group).
pub(crate) fn group_id(name: &str) -> Option<u32> {
    let c_name = CString::new(name).ok()?;
    let mut size = 4096;
    // Bounded: a group record larger than 1 MiB is treated as absent.
    while size <= 1 << 20 {
        let mut buf: Vec<libc::c_char> = vec![0; size];
        // SAFETY: `struct group` is plain data (pointers and integers); all zeroes is a valid
        // value, and getgrnam_r overwrites it before we read it.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call: `c_name` is NUL-terminated, `group` and
        // `result` are live locals, and `buf` has `buf.len()` writable bytes. The strings the
        // record points to live in `buf`, which we do not read; we copy only the gid.
        let rc = unsafe {
            libc::getgrnam_r(
                c_name.as_ptr(),
                &mut group,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE {
            size *= 4;
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        return Some(group.gr_gid);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_and_special_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        let link = dir.path().join("g.db");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = check_regular(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert!(prepare(&link).is_err());
        assert!(!target.exists(), "nothing created at the link's target");
        let err = check_regular(Path::new("/dev/null"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("character device"), "{err}");
        let err = check_regular(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a directory"), "{err}");
        assert!(!check_regular(&dir.path().join("missing")).unwrap());
    }

    #[test]
    fn a_planted_companion_stops_the_creation() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("g.db");
        std::os::unix::fs::symlink("/nonexistent", companion(&db, "-wal")).unwrap();
        let err = prepare(&db).unwrap_err().to_string();
        assert!(err.contains("g.db-wal"), "{err}");
        assert!(
            !db.exists(),
            "no database created beside a planted companion"
        );
    }

    #[test]
    fn a_symlinked_directory_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let alias = dir.path().join("alias");
        std::os::unix::fs::symlink(&real, &alias).unwrap();
        let opened = prepare(&alias.join("g.db")).unwrap();
        assert_eq!(opened, std::fs::canonicalize(&real).unwrap().join("g.db"));
        assert!(real.join("g.db").is_file());
    }
}
