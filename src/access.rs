//! Saying which permission is missing when a file cannot be opened, so an administrator (or a
//! monitoring user) reads what to change instead of a bare "Permission denied".

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// What the caller needs on the file itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Read permission.
    Read,
    /// Read and write permission.
    ReadWrite,
}

/// Whether this process may access `path` in `mode` (`libc::R_OK`, ...), as the kernel decides
/// for the real user and groups (the programs are not set-uid, so real = effective).
fn allowed(path: &Path, mode: libc::c_int) -> bool {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call; access(2) only
    // reads it.
    unsafe { libc::access(c_path.as_ptr(), mode) == 0 }
}

/// Who owns `path` and its mode, for the message (`owner 0, group 118, mode 0640`).
fn ownership(path: &Path) -> String {
    match std::fs::metadata(path) {
        Ok(meta) => format!(
            "owner uid {}, group gid {}, mode {:04o}",
            meta.uid(),
            meta.gid(),
            meta.mode() & 0o7777
        ),
        Err(_) => "not inspectable".to_string(),
    }
}

/// The first permission this process lacks to reach and use `path`: search (x) permission on a
/// directory on the way, else read (and write) permission on the file. `None` when nothing is
/// visibly missing (the denial came from elsewhere, e.g. a security module).
pub(crate) fn missing_permission(path: &Path, need: Need) -> Option<String> {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    // SAFETY: getuid(2) has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    for dir in absolute
        .ancestors()
        .skip(1)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        if dir.as_os_str().is_empty() {
            continue;
        }
        if !allowed(dir, libc::X_OK) {
            return Some(format!(
                "uid {uid} has no search (x) permission on directory {} ({})",
                dir.display(),
                ownership(dir)
            ));
        }
    }
    if !allowed(&absolute, libc::R_OK) {
        return Some(format!(
            "uid {uid} has no read permission on {} ({})",
            absolute.display(),
            ownership(&absolute)
        ));
    }
    if need == Need::ReadWrite && !allowed(&absolute, libc::W_OK) {
        return Some(format!(
            "uid {uid} has no write permission on {} ({})",
            absolute.display(),
            ownership(&absolute)
        ));
    }
    None
}
