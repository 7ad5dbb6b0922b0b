//! The configuration file, `/etc/grey_listing.conf` (or the file `GREY_LISTING_CONF` names).
//!
//! A line is blank, a comment (first non-blank character `#`), or `key = value`: the key is the
//! text before the first `=`, the value everything after it, both trimmed of spaces and tabs; no
//! quotes and no trailing comments (a `#` inside a value belongs to it). Known keys: `db` and
//! `resolver`; a key given twice is an error. Whenever the file is read, all of it is checked,
//! so a typo (`db: /path`, `database = /path`) is an error instead of a silently ignored line
//! and a silently used default database.

use std::io::Read;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::access::{self, Need};

/// The default configuration file.
pub const DEFAULT_CONF: &str = "/etc/grey_listing.conf";
/// The environment variable naming another configuration file.
pub const CONF_ENV: &str = "GREY_LISTING_CONF";
/// A configuration file larger than this is refused (it holds two short lines).
const MAX_CONF_BYTES: u64 = 64 * 1024;

/// The keys a configuration file may set.
const KNOWN_KEYS: &[&str] = &["db", "resolver"];

/// A parsed configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfFile {
    /// `db =`: the database path or `postgres://` URL.
    pub db: Option<String>,
    /// `resolver =`: the DNS resolver to use for DNS lookups.
    pub resolver: Option<String>,
}

/// Why the configuration file cannot be used. Displays as the whole one-line message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfError {
    /// Something is wrong on one line of the file.
    #[error("An error occurred during reading the configuration: {}:{line}: {what}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        what: String,
    },
    /// The file as a whole cannot be read.
    #[error("An error occurred during reading the configuration: {}: {what}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the missing permission when that is the cause.
        what: String,
    },
}

/// The configuration file to read: `GREY_LISTING_CONF` if set and not empty, else the default.
/// The flag says whether it was named explicitly (then a missing file is an error).
pub fn conf_path(env: &dyn Fn(&str) -> Option<String>) -> (PathBuf, bool) {
    match env(CONF_ENV).filter(|v| !v.is_empty()) {
        Some(path) => (PathBuf::from(path), true),
        None => (PathBuf::from(DEFAULT_CONF), false),
    }
}

/// Reads and checks the configuration file `env` selects. A missing default file is an empty
/// configuration; a missing file named by `GREY_LISTING_CONF`, an unreadable file or any bad line
/// is an error. (The policy server calls this at start and on SIGHUP.)
pub fn read_conf(env: &dyn Fn(&str) -> Option<String>) -> Result<ConfFile, ConfError> {
    let (path, explicit) = conf_path(env);
    read_conf_file(&path, explicit)
}

/// Reads and checks one configuration file; `must_exist` makes a missing file an error.
pub fn read_conf_file(path: &Path, must_exist: bool) -> Result<ConfFile, ConfError> {
    let file_error = |what: String| ConfError::File {
        path: path.to_path_buf(),
        what,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !must_exist => {
            return Ok(ConfFile::default());
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(file_error(format!(
                "no such file (named by {CONF_ENV}; unset it to use {DEFAULT_CONF})"
            )));
        }
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            let what = access::missing_permission(path, Need::Read)
                .map(|missing| {
                    format!(
                        "permission denied: {missing}; make it readable for this user (the \
                         package installs it 0640 root:greylisting: add the user to group \
                         greylisting)"
                    )
                })
                .unwrap_or_else(|| format!("cannot be read: {err}"));
            return Err(file_error(what));
        }
        Err(err) => return Err(file_error(format!("cannot be read: {err}"))),
    };
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_CONF_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| file_error(format!("cannot be read: {err}")))?;
    if bytes.len() as u64 > MAX_CONF_BYTES {
        return Err(file_error(format!(
            "larger than {} KiB: not a grey_listing configuration file",
            MAX_CONF_BYTES / 1024
        )));
    }
    parse(path, &bytes)
}

/// Parses the whole text; the first bad line is the error.
fn parse(path: &Path, bytes: &[u8]) -> Result<ConfFile, ConfError> {
    let mut conf = ConfFile::default();
    let mut seen: Vec<(&'static str, usize)> = Vec::new();
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let bad = |what: String| ConfError::Line {
            path: path.to_path_buf(),
            line: line_no,
            what,
        };
        let line = std::str::from_utf8(raw).map_err(|_| bad("not valid UTF-8".to_string()))?;
        let trimmed = line.trim_matches([' ', '\t']);
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(c) = trimmed.chars().find(|c| c.is_control() && *c != '\t') {
            let hint = if c == '\r' {
                " (Windows line ends? save the file with LF line ends)"
            } else {
                ""
            };
            return Err(bad(format!("control character {:?} in the line{hint}", c)));
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(bad(format!(
                "'{}' is not a 'key = value' line (keys: {})",
                shown(trimmed),
                KNOWN_KEYS.join(", ")
            )));
        };
        let key = key.trim_matches([' ', '\t']);
        let value = value.trim_matches([' ', '\t']);
        let Some(&known) = KNOWN_KEYS.iter().find(|k| **k == key) else {
            return Err(bad(format!(
                "unknown key '{}' (keys: {})",
                shown(key),
                KNOWN_KEYS.join(", ")
            )));
        };
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == known) {
            return Err(bad(format!(
                "key '{known}' given twice (first on line {first})"
            )));
        }
        seen.push((known, line_no));
        if value.is_empty() {
            return Err(bad(format!("key '{known}' has an empty value")));
        }
        match known {
            "db" => conf.db = Some(value.to_string()),
            _ => {
                if !is_resolver_address(value) {
                    return Err(bad(format!(
                        "resolver '{}' is not an IP address with an optional port \
                         (127.0.0.1, 127.0.0.1:5353, ::1, [::1]:5353)",
                        shown(value)
                    )));
                }
                conf.resolver = Some(value.to_string());
            }
        }
    }
    Ok(conf)
}

/// An IP address, or an IP address and a port other than 0 (`[…]` around an IPv6 address with
/// a port). Never a host name: resolving the resolver's name would need a resolver.
fn is_resolver_address(value: &str) -> bool {
    value.parse::<std::net::IpAddr>().is_ok()
        || value
            .parse::<std::net::SocketAddr>()
            .is_ok_and(|addr| addr.port() != 0)
}

/// Text of a bad line as an error may show it: a PostgreSQL URL in it (`db: postgres://…`, a
/// line that misses its `=`) has its password hidden wherever in the line it starts.
fn shown(text: &str) -> String {
    match text.find("postgres") {
        Some(at) => format!("{}{}", &text[..at], crate::store::redact(&text[at..])),
        None => crate::store::redact(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<ConfFile, String> {
        parse(Path::new("/c.conf"), text.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_grammar() {
        assert_eq!(
            parsed("# comment\n\n  \t\ndb = /srv/g.db\n  resolver\t=  127.0.0.1:53  \n"),
            Ok(ConfFile {
                db: Some("/srv/g.db".to_string()),
                resolver: Some("127.0.0.1:53".to_string()),
            })
        );
        // A `#` inside a value belongs to it; quotes are kept; the first `=` splits.
        assert_eq!(
            parsed("db = /srv/a#b.db\n").unwrap().db.as_deref(),
            Some("/srv/a#b.db")
        );
        assert_eq!(parsed("db=\"/x\"").unwrap().db.as_deref(), Some("\"/x\""));
        assert_eq!(
            parsed("db = postgres://u@h/d?a=b").unwrap().db.as_deref(),
            Some("postgres://u@h/d?a=b")
        );
        assert_eq!(parsed(""), Ok(ConfFile::default()));
    }

    #[test]
    fn every_bad_line_is_an_error_naming_file_and_line() {
        let prefix = "An error occurred during reading the configuration: /c.conf:";
        for (text, line, what) in [
            ("db: /path\n", 1, "'db: /path' is not a 'key = value' line"),
            ("#\ndatabase = /path\n", 2, "unknown key 'database'"),
            (
                "db = /a\ndb = /b\n",
                2,
                "key 'db' given twice (first on line 1)",
            ),
            ("db =\n", 1, "key 'db' has an empty value"),
            ("= /a\n", 1, "unknown key ''"),
            (
                "db: postgres://u:secret@h/d\n",
                1,
                "'db: postgres://u:***@h/d' is not",
            ),
            ("db = /a\r\n", 1, "Windows line ends"),
            ("resolver = 1.1.1.1\nDB = /a\n", 2, "unknown key 'DB'"),
            (
                "resolver = dns.example\n",
                1,
                "resolver 'dns.example' is not an IP",
            ),
            ("\nresolver = 127.0.0.1:0\n", 2, "is not an IP address"),
            ("resolver = 1.2.3.4:53:53\n", 1, "is not an IP address"),
        ] {
            let err = parsed(text).unwrap_err();
            assert!(
                err.starts_with(&format!("{prefix}{line}: ")) && err.contains(what),
                "{text:?}: {err}"
            );
        }
        let err = parse(Path::new("/c.conf"), b"db = /a\xff\n").unwrap_err();
        assert_eq!(err.to_string(), format!("{prefix}1: not valid UTF-8"));
    }

    #[test]
    fn resolver_addresses() {
        for value in [
            "127.0.0.1",
            "127.0.0.1:5353",
            "::1",
            "[::1]:5353",
            "2001:db8::1",
        ] {
            let conf = parsed(&format!("resolver = {value}\n")).unwrap();
            assert_eq!(conf.resolver.as_deref(), Some(value));
        }
    }

    // The file the Debian package installs is valid.
    #[test]
    fn the_packaged_file_parses() {
        let text = include_str!("../packaging/grey_listing.conf");
        assert_eq!(
            parsed(text).unwrap().db.as_deref(),
            Some("/var/lib/grey_listing/greylist.db")
        );
    }

    #[test]
    fn missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.conf");
        assert_eq!(read_conf_file(&missing, false), Ok(ConfFile::default()));
        let err = read_conf_file(&missing, true).unwrap_err().to_string();
        assert!(err.contains("none.conf: no such file"), "{err}");
    }
}
