//! A consistent copy of the SQLite database while it is in use, through SQLite's online backup
//! API: a plain `cp` of the main file may miss what still sits in the `-wal` file.

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::files;
use super::sqlite::{BUSY_TIMEOUT, SqliteStore};
use super::{Store, StoreError};

/// Mode of a backup: readable by group `greylisting`, writable by its owner only.
pub const BACKUP_MODE: u32 = 0o640;

impl SqliteStore {
    /// Copies the database into a new temporary file beside `target`, then renames it over
    /// `target`, so `target` is always either its old contents or a complete copy. The copy is
    /// one snapshot of the database (one read transaction); writers carry on meanwhile.
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
        // A name of our own, created exclusively (never through a planted link), mode 0600
        // until the copy is complete.
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io("cannot create a temporary file for the backup beside"))?;
        let location = temp.path().display().to_string();
        let copy_err = |source| StoreError::Sqlite {
            location: location.clone(),
            source,
        };
        let mut copy = Connection::open_with_flags(
            temp.path(),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(copy_err)?;
        // A half-written copy is thrown away whole, so it needs no rollback journal (and no
        // journal file appears beside the target).
        let _: String = copy
            .query_row("PRAGMA journal_mode=OFF", [], |row| row.get(0))
            .map_err(copy_err)?;
        self.copy_into(&mut copy)?;
        copy.close().map_err(|(_, source)| copy_err(source))?;
        finish(temp.as_file()).map_err(io("cannot write the backup"))?;
        temp.persist(target)
            .map_err(|err| io("cannot rename the backup to")(err.error))?;
        // The rename itself is durable once the directory is on disk.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("cannot sync the directory of"))
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

/// The copy's final group and mode, then its bytes on disk before the rename makes it visible.
fn finish(file: &File) -> std::io::Result<()> {
    files::set_owner_and_mode(file, BACKUP_MODE)?;
    file.sync_all()
}
