//! `grey_listing --backup FILE`, and the checkpoint after every CLI change that keeps a plain
//! copy of the SQLite database file complete.

use std::io::Write;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::{CliError, success};
use crate::store::{DbLocation, SqliteStore, Store, StoreError, files};

/// Checks `--backup FILE` before anything is opened: a new name or an existing regular file.
/// A symbolic link is refused rather than followed or replaced: whoever planted it would choose
/// where root writes the copy.
pub(super) fn check_target(file: &str) -> Result<PathBuf, BadTarget> {
    if file.is_empty() {
        return Err(BadTarget::NoName);
    }
    let path = PathBuf::from(file);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(BadTarget::Symlink(file.to_string())),
        Ok(meta) if !meta.is_file() => Err(BadTarget::NotFile(file.to_string())),
        _ => Ok(path),
    }
}

/// Why `--backup FILE` is refused (the file as given).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(super) enum BadTarget {
    /// An empty name.
    #[error("--backup needs a file name")]
    NoName,
    /// A symbolic link.
    #[error("{0} is a symbolic link; give a regular file or a new name")]
    Symlink(String),
    /// Something that exists and is no regular file.
    #[error("{0} is not a regular file")]
    NotFile(String),
}

/// Runs `--backup`: SQLite only; the database must exist (a backup never creates one) and must
/// not be the target itself.
pub(super) fn run(
    location: &DbLocation,
    target: &Path,
    operation: &str,
    json: bool,
) -> Result<String, CliError> {
    let bad = |message: String| CliError::BadInput {
        operation: operation.to_string(),
        message,
    };
    let store_error = |source| CliError::Store {
        operation: operation.to_string(),
        source,
    };
    let db = match location {
        DbLocation::Sqlite(db) => db,
        DbLocation::Postgres(_) => {
            return Err(bad(
                "a PostgreSQL store is backed up with pg_dump or grey_listing --export".to_string(),
            ));
        }
    };
    if !files::check_regular(db).map_err(store_error)? {
        return Err(bad(format!("database {} does not exist", db.display())));
    }
    if let Some(which) = own_file(db, target) {
        return Err(bad(format!(
            "{} is {which}; give another file",
            target.display()
        )));
    }
    let store = SqliteStore::open(db).map_err(store_error)?;
    store.backup_to(target).map_err(store_error)?;
    Ok(success(
        &format!(
            "Backup of {} written to {}.",
            db.display(),
            target.display()
        ),
        json,
    ))
}

/// SQLite's companion files of a database: replacing one of them while the database is in use
/// loses or corrupts what it holds.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Whether `target` is the database or one of its companion files, by name (after resolving
/// the directories) or by identity (device and inode, which catches hard links). Says which.
fn own_file(db: &Path, target: &Path) -> Option<String> {
    let mut own = vec![(db.to_path_buf(), "the database itself".to_string())];
    for suffix in COMPANIONS {
        let mut name = db.as_os_str().to_os_string();
        name.push(suffix);
        own.push((PathBuf::from(name), format!("the database's {suffix} file")));
    }
    let target_name = resolved(target);
    own.into_iter()
        .find(|(path, _)| {
            same_file(path, target) || (target_name.is_some() && resolved(path) == target_name)
        })
        .map(|(_, which)| which)
}

/// `path` with its directory resolved (links, `..`), the last component kept as written.
fn resolved(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Some(std::fs::canonicalize(dir).ok()?.join(name))
}

/// Whether two paths name one file (an existing target with the other's device and inode).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// After a command: moves what it committed into the database's main file, so a plain copy of
/// that file holds it. When other connections keep the checkpoint from completing, the change
/// stays committed and a warning says where it is.
pub(super) fn checkpoint_or_warn(store: &mut dyn Store) {
    let complete = match store.checkpoint() {
        Ok(complete) => complete,
        Err(StoreError::Locked { .. }) => false,
        Err(err) => {
            let _ = writeln!(std::io::stderr(), "Warning: checkpoint failed: {err}");
            false
        }
    };
    if !complete {
        let _ = writeln!(
            std::io::stderr(),
            "Warning: the change is still only in {}-wal; use grey_listing --backup to copy \
             the database",
            store.describe()
        );
    }
}
