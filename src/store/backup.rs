//! A consistent copy of the SQLite database while it is in use, through SQLite's online backup
//! API: a plain `cp` of the main file may miss what still sits in the `-wal` file.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::files;
use super::sqlite::{BUSY_TIMEOUT, SqliteStore};
use super::{Store, StoreError};

/// Mode of a backup: readable by group `greylisting`, writable by its owner only.
pub(super) const BACKUP_MODE: u32 = 0o640;

/// Mode of the temporary directory the copy is written in: its owner's alone.
pub(super) const PRIVATE_DIR_MODE: u32 = 0o700;

impl SqliteStore {
    /// Copies the database into a new file in a private temporary directory beside `target`,
    /// then renames it over `target`, so `target` is always either its old contents or a
    /// complete copy. The copy is one snapshot of the database (one read transaction); writers
    /// carry on meanwhile.
    ///
    /// The directory of `target` may be writable by group members (the database's own 2770
    /// directory). SQLite opens files by name, so the copy is written in a directory of our own
    /// (mode 0700) where nobody else can plant a link, and opened with `SQLITE_OPEN_NOFOLLOW`.
    /// The final `rename` replaces whatever entry `target` is (a link included) and never
    /// follows it.
    pub fn backup_to(&self, target: &Path) -> Result<(), StoreError> {
        let io = |what: &'static str| {
            move |source: std::io::Error| StoreError::Io {
                what,
                path: target.to_path_buf(),
                source,
            }
        };
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let private = private_dir(dir, &name).map_err(io(
            "cannot create a temporary directory for the backup beside",
        ))?;
        let temp_path = private.path().join("backup.db");
        let temp = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp_path)
            .map_err(io("cannot create a temporary file for the backup beside"))?;
        self.copy_to_path(&temp_path)?;
        check_same(&temp, &temp_path)
            .map_err(io("the temporary backup file was replaced; beside"))?;
        finish(&temp).map_err(io("cannot write the backup"))?;
        std::fs::rename(&temp_path, target).map_err(io("cannot rename the backup to"))?;
        private
            .close()
            .map_err(io("cannot remove the temporary directory beside"))?;
        // The rename itself is durable once the directory is on disk.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot sync the directory of"))
    }

    /// Opens the new file at `path` (never through a link) and copies the database into it.
    fn copy_to_path(&self, path: &Path) -> Result<(), StoreError> {
        let location = path.display().to_string();
        let copy_err = |source| StoreError::Sqlite {
            location: location.clone(),
            source,
        };
        let mut copy = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(copy_err)?;
        // A half-written copy is thrown away whole, so it needs no rollback journal (and no
        // journal file appears beside the target).
        let _: String = copy
            .query_row("PRAGMA journal_mode=OFF", [], |row| row.get(0))
            .map_err(copy_err)?;
        self.copy_into(&mut copy)?;
        copy.close().map_err(|(_, source)| copy_err(source))
    }

    /// Copies every page in one step: one read transaction on the source, so the copy is
    /// consistent whatever other connections write meanwhile.
    fn copy_into(&self, copy: &mut Connection) -> Result<(), StoreError> {
        let source_location = self.describe();
        let backup = Backup::new(self.connection(), copy).map_err(|source| StoreError::Sqlite {
            location: source_location.clone(),
            source,
        })?;
        let started = Instant::now();
        loop {
            let step = backup.step(-1).map_err(|source| StoreError::Sqlite {
                location: source_location.clone(),
                source,
            })?;
            match step {
                StepResult::Done => return Ok(()),
                // Another connection holds a lock the copy needs: wait, as for any write.
                _ if started.elapsed() < BUSY_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    return Err(StoreError::Locked {
                        location: source_location,
                        waited_ms: BUSY_TIMEOUT.as_millis() as u64,
                    });
                }
            }
        }
    }
}

/// A new directory beside the target, created exclusively with mode 0700 (no one else may
/// create, rename or link anything in it).
fn private_dir(dir: &Path, name: &str) -> std::io::Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
        .tempdir_in(dir)
}

/// Whether `path` still names the file we created (SQLite wrote into what `path` named).
fn check_same(file: &File, path: &Path) -> std::io::Result<()> {
    let ours = file.metadata()?;
    let named = std::fs::symlink_metadata(path)?;
    if ours.dev() == named.dev() && ours.ino() == named.ino() && ours.len() > 0 {
        Ok(())
    } else {
        Err(std::io::Error::other("not the file created for the copy"))
    }
}

/// The copy's final group and mode, then its bytes on disk before the rename makes it visible.
fn finish(file: &File) -> std::io::Result<()> {
    files::set_owner_and_mode(file, BACKUP_MODE)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_is_written_in_a_directory_of_its_owner_alone() {
        let parent = tempfile::tempdir().expect("tempdir");
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o2777))
            .expect("chmod");
        let private = private_dir(parent.path(), "bk.db").expect("private dir");
        let meta = std::fs::symlink_metadata(private.path()).expect("stat");
        assert!(meta.is_dir());
        // The setgid bit comes from the parent and is harmless; nobody else may enter.
        assert_eq!(meta.mode() & 0o777, PRIVATE_DIR_MODE);
        // SAFETY: geteuid has no preconditions and cannot fail.
        assert_eq!(meta.uid(), unsafe { libc::geteuid() });
    }

    #[test]
    fn a_link_planted_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("g.db");
        let store = SqliteStore::open(&db).expect("open");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").expect("victim");
        let target = dir.path().join("bk.db");
        std::os::unix::fs::symlink(&victim, &target).expect("symlink");
        store.backup_to(&target).expect("backup");
        assert_eq!(std::fs::read(&victim).expect("read"), b"precious");
        let meta = std::fs::symlink_metadata(&target).expect("stat");
        assert!(meta.is_file(), "the link was replaced by the copy");
        assert_eq!(meta.mode() & 0o777, BACKUP_MODE);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary entries left behind: {left:?}");
    }
}
