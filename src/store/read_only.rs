//! Opening the SQLite database for a user who may read it but not write it — a monitoring user
//! running `grey_listing --check`, an auditor running `--info-server` — instead of failing.
//!
//! The information commands come here when the database cannot be opened read-write. The
//! connection is opened with `mode=ro`: SQLite then reads a WAL database without writing
//! anything, provided its `-wal` and `-shm` files exist and are readable. When there is no
//! `-wal` file, or it is empty, everything is in the main file and `immutable=1` lets SQLite read
//! it without the `-shm` file (which a read-only user could not create). A read-only open skips
//! the WAL switch and the migration, and refuses a database that would need a migration.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::sqlite::{SCHEMA_VERSION, SqliteStore, wait_for_locks};
use crate::access::{self, Need};

/// Whether `path` can be opened read-write the way [`SqliteStore::open`] does it: the file and
/// any existing `-wal`/`-shm` readable and writable, and the directory writable (SQLite creates
/// and deletes the `-wal` and `-shm` files there). A missing file counts as writable: the normal
/// open creates it (or says why it cannot).
pub(super) fn writable(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return true,
        Err(_) => return false,
        Ok(_) => {}
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    access::missing_permission(path, Need::ReadWrite).is_none()
        && access::missing_permission(dir, Need::ReadWrite).is_none()
        && ["-wal", "-shm"].iter().all(|suffix| {
            let file = super::files::companion(path, suffix);
            !file.exists() || access::missing_permission(&file, Need::ReadWrite).is_none()
        })
}

/// What to tell a user who cannot read the database.
fn cannot_read(path: &Path, missing: &str) -> StoreError {
    StoreError::Permission {
        location: path.display().to_string(),
        message: format!(
            "{missing}; run this as root or as a member of group greylisting, or grant read \
             access to the directory's files and traverse access to the directory (setfacl: see \
             the README, \"Read-only users\")"
        ),
    }
}

/// Opens an existing SQLite database read-only (see the module documentation).
pub(super) fn open(path: &Path) -> Result<SqliteStore, StoreError> {
    // The same refusal as a read-write open: a symbolic link or special file planted in the
    // shared directory is named as such, not read through.
    // A file that cannot even be examined is left to the permission check below, which says
    // what is missing.
    let companions = super::files::COMPANIONS
        .iter()
        .map(|suffix| super::files::companion(path, suffix));
    for file in std::iter::once(path.to_path_buf()).chain(companions) {
        match super::files::check_regular(&file) {
            Err(StoreError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::PermissionDenied => {}
            other => {
                other?;
            }
        }
    }
    if let Some(missing) = access::missing_permission(path, Need::Read) {
        return Err(cannot_read(path, &missing));
    }
    let wal = super::files::companion(path, "-wal");
    let wal_in_use = std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0);
    if wal_in_use {
        for file in [wal.clone(), super::files::companion(path, "-shm")] {
            if file.exists()
                && let Some(missing) = access::missing_permission(&file, Need::Read)
            {
                return Err(cannot_read(path, &missing));
            }
        }
    }
    let uri = format!(
        "file:{}?mode=ro{}",
        uri_path(path),
        if wal_in_use { "" } else { "&immutable=1" }
    );
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let location = path.display().to_string();
    let sqlite_err = |source| StoreError::Sqlite {
        location: location.clone(),
        source,
    };
    let mut conn = Connection::open_with_flags(&uri, flags).map_err(sqlite_err)?;
    wait_for_locks(&mut conn).map_err(sqlite_err)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite_err)?;
    super::migration::refuse_newer(&location, version, SCHEMA_VERSION)?;
    if version < SCHEMA_VERSION {
        return Err(StoreError::NeedsMigration {
            location,
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(SqliteStore::from_read_only(conn, path))
}

/// The path as the path part of an SQLite `file:` URI: bytes other than unreserved characters
/// and `/` are percent-encoded, so `?`, `#` and `%` in a file name stay part of it.
fn uri_path(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for &byte in absolute.as_os_str().as_bytes() {
        if byte.is_ascii_alphanumeric() || b"/-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_are_percent_encoded() {
        assert_eq!(
            uri_path(Path::new("/var/lib/a b?#%.db")),
            "/var/lib/a%20b%3F%23%25.db"
        );
    }
}
