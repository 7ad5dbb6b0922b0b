//! The milter's listening socket: `host:port` or `unix:/path`, a unix socket getting the mode
//! and group the MTA needs to connect (Postfix's smtpd runs as `postfix`, Sendmail as root or
//! `smmsp`), and the accepted streams.

use std::ffi::CString;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::MilterError;

/// Mode of a unix socket when `--socket-mode` is not given: the owner and its group.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// A bound, non-blocking listener.
pub enum Listener {
    /// TCP.
    Tcp(mio::net::TcpListener),
    /// A unix socket; its path is removed when the listener is dropped.
    Unix(mio::net::UnixListener, PathBuf),
}

/// A `--socket-mode` that is no octal file mode up to `0777` (the value as given).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not an octal file mode such as 0660")]
pub struct BadMode(pub String);

/// Parses an octal mode such as `0660` or `660`; at most `0777`.
pub fn parse_mode(text: &str) -> Result<u32, BadMode> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|&m| m <= 0o777 && !text.is_empty())
        .ok_or_else(|| BadMode(text.to_string()))
}

impl Listener {
    /// Binds `listen`; a unix socket gets `mode` and, if given, `group` (a name or number).
    pub fn bind(listen: &str, mode: u32, group: Option<&str>) -> Result<Listener, MilterError> {
        let io_err = |what, cause| MilterError::Io {
            what,
            address: listen.to_string(),
            cause,
        };
        if let Some(path) = listen.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(MilterError::BadListen(listen.to_string()));
            }
            let gid = group.map(lookup_group).transpose()?;
            let path = PathBuf::from(path);
            // A socket left behind by a previous run is replaced; any other file is not.
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_socket()) {
                let _ = std::fs::remove_file(&path);
            }
            let listener =
                mio::net::UnixListener::bind(&path).map_err(|e| io_err("cannot listen on", e))?;
            let listener = Listener::Unix(listener, path.clone());
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| io_err("cannot set the mode of", e))?;
            if let Some(gid) = gid {
                std::os::unix::fs::chown(&path, None, Some(gid))
                    .map_err(|e| io_err("cannot set the group of", e))?;
            }
            return Ok(listener);
        }
        let addr: SocketAddr = listen
            .parse()
            .map_err(|_| MilterError::BadListen(listen.to_string()))?;
        let listener =
            mio::net::TcpListener::bind(addr).map_err(|e| io_err("cannot listen on", e))?;
        Ok(Listener::Tcp(listener))
    }

    /// The address as `--listen` takes it (the real port when bound to port 0).
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp".to_string(), |a| a.to_string()),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// The socket, to register with the poll.
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Listener::Tcp(l) => l,
            Listener::Unix(l, _) => l,
        }
    }

    /// Accepts one waiting connection and names its peer.
    pub fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), peer.to_string()))
            }
            Listener::Unix(l, path) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), format!("unix:{}", path.display())))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A group name or number to its id.
fn lookup_group(group: &str) -> Result<u32, MilterError> {
    if let Ok(gid) = group.parse::<u32>() {
        return Ok(gid);
    }
    let unknown = || MilterError::BadGroup(group.to_string());
    let name = CString::new(group).map_err(|_| unknown())?;
    let mut entry: libc::group = unsafe_zeroed_group();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to memory we own and that outlives the call; the buffer's
    // length is passed along, and `result` is only read after the call returns.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut entry,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(unknown());
    }
    Ok(entry.gr_gid)
}

/// An all-zero `struct group` for `getgrnam_r` to fill.
fn unsafe_zeroed_group() -> libc::group {
    // SAFETY: `struct group` is plain old data (integers and raw pointers); all-zero bytes are
    // a valid value of it (null pointers, gid 0).
    unsafe { std::mem::zeroed() }
}

/// True when `path` is a socket (for tests and the shutdown check).
pub fn is_socket(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

/// An accepted connection: the same as the policy server's.
pub use crate::policyd::Stream;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert!(parse_mode("0888").is_err());
        assert!(parse_mode("1777").is_err());
        assert!(parse_mode("").is_err());
        assert_eq!(parse_mode("0o660"), Err(BadMode("0o660".to_string())));
    }

    #[test]
    fn unix_socket_gets_mode_and_group_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sock");
        let gid = nix_getgid();
        let listen = format!("unix:{}", path.display());
        let listener = Listener::bind(&listen, 0o620, Some(&gid.to_string())).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o620);
        assert_eq!(std::os::unix::fs::MetadataExt::gid(&meta), gid);
        assert_eq!(listener.describe(), listen);
        drop(listener);
        assert!(!is_socket(&path));
        assert!(matches!(
            Listener::bind(&listen, 0o660, Some("no-such-group-here")),
            Err(MilterError::BadGroup(_))
        ));
        assert!(matches!(
            Listener::bind("unix:", 0o660, None),
            Err(MilterError::BadListen(_))
        ));
        assert!(matches!(
            Listener::bind("localhost", 0o660, None),
            Err(MilterError::BadListen(_))
        ));
    }

    fn nix_getgid() -> u32 {
        // SAFETY: getgid has no preconditions and cannot fail.
        unsafe { libc::getgid() }
    }
}
