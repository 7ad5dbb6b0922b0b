//! Where a PostgreSQL password comes from when it is not in the connection string, so it never
//! has to appear on a command line (which every local user can read in `ps`):
//!
//! - `password_file=/abs/path` in the connection string: the first line of that file, without
//!   its line end. The file may be readable by its group (the filter and the policy server run
//!   as group `greylisting`), never by every user. A password in the string as well is an error.
//! - otherwise, when the string holds no password, the file named by `PGPASSFILE`, in libpq's
//!   format (`hostname:port:database:username:password`, `*` matching anything, `\` escaping
//!   `:` and `\`, the first matching line wins). Unlike libpq, a group-readable file is used
//!   (same reason) and a world-readable or unreadable one is an error rather than ignored, so
//!   a mistake is reported instead of showing up as a failed login. `~/.pgpass` is NOT read:
//!   the filter runs under Plesk with a bare environment and whatever home directory, so a
//!   password source must be named explicitly.
//!
//! Messages name the file, never its contents.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tokio_postgres::Config;
use tokio_postgres::config::Host;

/// The environment variable naming a libpq password file.
pub(super) const PGPASSFILE: &str = "PGPASSFILE";

/// Longest password file read: a password line is short, and a huge file is a mistake.
const MAX_FILE: u64 = 64 << 10;

/// Why no password could be taken from a password file. `what` names where the file was
/// given (`password_file` or `PGPASSFILE`); no variant holds anything read from the file.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    /// `password_file` given while the connection string holds a password too.
    #[error(
        "a password is given both in the connection string and by password_file={path}: \
         keep only one"
    )]
    Twice {
        /// The `password_file` value.
        path: String,
    },
    /// `password_file` is not an absolute path.
    #[error("password_file={path} must be an absolute path")]
    NotAbsolute {
        /// The `password_file` value.
        path: String,
    },
    /// The password file's first line is empty.
    #[error("password file {path}: its first line is empty")]
    EmptyFirstLine {
        /// The `password_file` value.
        path: String,
    },
    /// The path names a symbolic link (refused so the file checked is the file read).
    #[error("{what} {} is a symbolic link; name the file itself", path.display())]
    SymbolicLink {
        /// Where the file was named.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Opening or reading the file failed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// Where the file was named.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a regular file (a FIFO, a device, a directory).
    #[error("{what} {} is not a regular file", path.display())]
    NotRegular {
        /// Where the file was named.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// Every user may read the file.
    #[error(
        "{what} {} is readable by every user (mode {mode:04o}): chmod o-rwx {}",
        path.display(),
        path.display()
    )]
    WorldReadable {
        /// Where the file was named.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is longer than a password file can reasonably be.
    #[error("{what} {} is longer than {} KiB", path.display(), MAX_FILE >> 10)]
    TooLong {
        /// Where the file was named.
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
}

/// Sets the password of `config` from `password_file` or `PGPASSFILE` (see the module).
pub(super) fn apply(
    config: &mut Config,
    password_file: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), PasswordFileError> {
    if let Some(path) = password_file {
        let path_owned = || path.to_string();
        if config.get_password().is_some() {
            return Err(PasswordFileError::Twice { path: path_owned() });
        }
        if !path.starts_with('/') {
            return Err(PasswordFileError::NotAbsolute { path: path_owned() });
        }
        let text = read_private("password_file", Path::new(path))?;
        let line = first_line(&text);
        if line.is_empty() {
            return Err(PasswordFileError::EmptyFirstLine { path: path_owned() });
        }
        config.password(line);
        return Ok(());
    }
    if config.get_password().is_some() {
        return Ok(());
    }
    let Some(path) = env(PGPASSFILE).filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let text = read_private(PGPASSFILE, Path::new(&path))?;
    if let Some(password) = lookup(config, &text) {
        config.password(password);
    }
    Ok(())
}

/// The file's bytes; refused when every user may read it, when it is not a regular file (a FIFO
/// would block the open or the read forever, a device never ends), when it is a symbolic link,
/// and when it is longer than `MAX_FILE`.
fn read_private(what: &'static str, path: &Path) -> Result<Vec<u8>, PasswordFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source: std::io::Error| PasswordFileError::Io {
        what,
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => PasswordFileError::SymbolicLink {
                what,
                path: path.to_path_buf(),
            },
            _ => io(e),
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(PasswordFileError::NotRegular {
            what,
            path: path.to_path_buf(),
        });
    }
    let mode = meta.permissions().mode();
    if mode & 0o004 != 0 {
        return Err(PasswordFileError::WorldReadable {
            what,
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    let mut text = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut text).map_err(io)?;
    if text.len() as u64 > MAX_FILE {
        return Err(PasswordFileError::TooLong {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(text)
}

/// The first line without its line end (`\n` or `\r\n`).
fn first_line(text: &[u8]) -> &[u8] {
    let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The password of the first line of a libpq password file matching the connection: tried
/// for each host in turn (the driver has one password for all of them). A unix socket in the
/// usual directories is looked up as `localhost`, as libpq does for its default directory.
fn lookup(config: &Config, text: &[u8]) -> Option<Vec<u8>> {
    let user = config.get_user()?;
    // libpq's default database name is the user name.
    let dbname = config.get_dbname().unwrap_or(user);
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            Host::Tcp(name) => name.clone(),
            Host::Unix(dir) => {
                let dir = dir.to_string_lossy();
                if ["/run/postgresql", "/var/run/postgresql", "/tmp"].contains(&dir.as_ref()) {
                    "localhost".to_string()
                } else {
                    dir.into_owned()
                }
            }
        })
        .collect();
    if hosts.is_empty() {
        hosts = config
            .get_hostaddrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
    }
    if hosts.is_empty() {
        hosts.push("localhost".to_string());
    }
    let ports = config.get_ports();
    hosts.iter().enumerate().find_map(|(i, host)| {
        let port = match ports {
            [] => 5432,
            [one] => *one,
            many => many.get(i).copied().unwrap_or(5432),
        };
        let port = port.to_string();
        let wanted = [host.as_str(), &port, dbname, user].map(str::as_bytes);
        text.split(|b| *b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .filter(|line| !line.is_empty() && !line.starts_with(b"#"))
            .find_map(|line| matches(line, &wanted))
    })
}

/// libpq's `passwordFromFile` for one line: four fields compared (a lone `*` matches
/// anything, `\` makes the next byte literal), then the password up to the next unescaped `:`.
fn matches(line: &[u8], wanted: &[&[u8]; 4]) -> Option<Vec<u8>> {
    let mut rest = line;
    for want in wanted {
        rest = match_field(rest, want)?;
    }
    let mut password = Vec::new();
    let mut i = 0;
    while i < rest.len() && rest[i] != b':' {
        if rest[i] == b'\\' && i + 1 < rest.len() {
            i += 1;
        }
        password.push(rest[i]);
        i += 1;
    }
    Some(password)
}

/// One field: the rest of the line after it and its `:`, when it matches `want`.
fn match_field<'a>(field: &'a [u8], want: &[u8]) -> Option<&'a [u8]> {
    if let Some(rest) = field.strip_prefix(b"*:") {
        return Some(rest);
    }
    let mut i = 0;
    let mut matched = 0;
    while i < field.len() {
        let escaped = field[i] == b'\\' && i + 1 < field.len();
        if escaped {
            i += 1;
        }
        let b = field[i];
        // As in libpq, an unescaped ':' ends the field only once the whole value matched;
        // before that it is compared like any byte (an IPv6 address).
        if b == b':' && !escaped && matched == want.len() {
            return Some(&field[i + 1..]);
        }
        if want.get(matched) != Some(&b) {
            return None;
        }
        matched += 1;
        i += 1;
    }
    None
}

#[cfg(test)]
#[path = "pgpass_tests.rs"]
mod tests;
