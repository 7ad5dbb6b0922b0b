//! The unix socket of the server: its mode and group are set before anyone can connect, and
//! only a stale socket is ever removed from the path.
//!
//! A socket file gets its mode from the umask when it is bound, and Postfix (another user) then
//! cannot connect. Changing it afterwards leaves a window with the wrong permissions, and
//! changing the umask affects every thread. So the socket is bound inside a fresh directory only
//! this process can enter (mode 0700), given its mode and group there, and then hard-linked to
//! its path; the link fails rather than replace a file that appeared meanwhile. Connecting
//! follows the link to the same socket.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Longest unix socket path, in bytes without the terminating NUL (`sun_path` holds 108 on
/// Linux). A longer path cannot be bound or connected to.
pub const MAX_SOCKET_PATH: usize = 107;

/// Default mode of the socket: owner and group may connect, nobody else.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// How the unix socket is set up (`--socket-mode`, `--socket-group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// Permission bits of the socket file.
    pub mode: u32,
    /// Group of the socket file (by name, or a number); `None` keeps the process's.
    pub group: Option<String>,
}

impl Default for SocketOptions {
    fn default() -> SocketOptions {
        SocketOptions {
            mode: DEFAULT_SOCKET_MODE,
            group: None,
        }
    }
}

/// Why the unix socket could not be set up.
#[derive(Debug, Error)]
pub enum SocketError {
    /// Something other than a socket is at the path: never removed.
    #[error("refusing to listen on {path}: it exists and is not a socket ({kind})")]
    NotASocket {
        /// The path.
        path: PathBuf,
        /// What is there.
        kind: &'static str,
    },
    /// A server answers on the socket already.
    #[error("another server is listening on {0}")]
    InUse(PathBuf),
    /// `--socket-group` names no group.
    #[error("--socket-group {0:?}: no such group")]
    UnknownGroup(String),
    /// `--socket-group` names a group this process may not give files to.
    #[error(
        "--socket-group {group}: this process (uid {uid}) is neither root nor a member of group \
         {group}, so it cannot give the socket to it; add SupplementaryGroups={group} to the \
         systemd unit (or run it with that group)"
    )]
    NotMember {
        /// The group.
        group: String,
        /// The process's effective user id.
        uid: u32,
    },
    /// The path does not fit a unix socket address: clients could not connect to it.
    #[error(
        "unix socket path {path} is {len} bytes long; the kernel allows at most {MAX_SOCKET_PATH} \
         (108 with the terminating NUL): use a shorter path"
    )]
    PathTooLong {
        /// The path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// A system call failed.
    #[error("{what} {path}: {cause}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        cause: io::Error,
    },
}

/// Why a `--socket-mode` is refused (clap names the value before this text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ModeError {
    /// Not an octal mode up to `0777`.
    #[error("expected an octal mode from 0000 to 0777, such as 0660")]
    NotOctal,
    /// Others may write: every local user could use the server.
    #[error(
        "a world-writable socket would let every local user use the server; give the socket a \
         group with --socket-group instead"
    )]
    WorldWritable,
}

/// Parses an octal socket mode (`0660`, `660`, `0o660`). World-writable modes are refused: every
/// local user could then write into the database through the server; use `--socket-group`.
pub fn parse_mode(value: &str) -> Result<u32, ModeError> {
    let digits = value.strip_prefix("0o").unwrap_or(value);
    let mode = match u32::from_str_radix(digits, 8) {
        Ok(mode) if !digits.is_empty() && mode <= 0o777 => mode,
        _ => return Err(ModeError::NotOctal),
    };
    if mode & 0o002 != 0 {
        return Err(ModeError::WorldWritable);
    }
    Ok(mode)
}

/// Binds a unix socket at `path` with `options`' mode and group (see the module comment). A
/// socket left at the path by a server that is gone is removed first; a live one, or any file
/// that is not a socket (a symbolic link included), is refused.
pub fn bind_unix(path: &Path, options: &SocketOptions) -> Result<UnixListener, SocketError> {
    let gid = options
        .group
        .as_deref()
        .map(|name| {
            let gid = lookup_group(name)?;
            check_group_allowed(name, gid, &Credentials::current())?;
            Ok::<u32, SocketError>(gid)
        })
        .transpose()?;
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(SocketError::PathTooLong {
            path: path.to_path_buf(),
            len,
        });
    }
    remove_stale(path)?;
    let io_err = |what, path: &Path| {
        let path = path.to_path_buf();
        move |cause| SocketError::Io { what, path, cause }
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    // Short names: the staging path must fit a socket address too.
    let private = tempfile::Builder::new()
        .prefix(".gp.")
        .permissions(std::fs::Permissions::from_mode(0o700))
        .tempdir_in(parent)
        .map_err(io_err("cannot create a directory in", parent))?;
    let staged = private.path().join("s");
    let listener = bind_staged(private.path(), &staged)?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(options.mode))
        .map_err(io_err("cannot set the mode of", &staged))?;
    if let Some(gid) = gid {
        std::os::unix::fs::chown(&staged, None, Some(gid))
            .map_err(io_err("cannot change the group of", &staged))?;
    }
    std::fs::hard_link(&staged, path).map_err(|cause| {
        if cause.kind() == io::ErrorKind::AlreadyExists {
            SocketError::Io {
                what: "another file appeared meanwhile at",
                path: path.to_path_buf(),
                cause,
            }
        } else {
            SocketError::Io {
                what: "cannot listen on",
                path: path.to_path_buf(),
                cause,
            }
        }
    })?;
    // Dropping `private` removes the staging link and the directory; the socket stays bound.
    drop(private);
    Ok(listener)
}

/// Binds the staging socket `staged` inside the directory `dir`. When its path is longer than
/// a socket address allows (a final path that fits, with a shorter file name than the staging
/// directory's), it is bound through `/proc/self/fd/N/`, a short name for the same directory.
fn bind_staged(dir: &Path, staged: &Path) -> Result<UnixListener, SocketError> {
    let failed = |cause| SocketError::Io {
        what: "cannot listen on",
        path: staged.to_path_buf(),
        cause,
    };
    if staged.as_os_str().len() <= MAX_SOCKET_PATH {
        return UnixListener::bind(staged).map_err(failed);
    }
    let handle = std::fs::File::open(dir).map_err(failed)?;
    let short = format!(
        "/proc/self/fd/{}/s",
        std::os::fd::AsRawFd::as_raw_fd(&handle)
    );
    UnixListener::bind(short).map_err(failed)
}

/// Removes a socket nobody answers on; refuses a live one and anything that is not a socket.
fn remove_stale(path: &Path) -> Result<(), SocketError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(cause) => {
            return Err(SocketError::Io {
                what: "cannot inspect",
                path: path.to_path_buf(),
                cause,
            });
        }
    };
    let kind = meta.file_type();
    if !kind.is_socket() {
        let kind = if kind.is_symlink() {
            "a symbolic link"
        } else if kind.is_dir() {
            "a directory"
        } else if kind.is_file() {
            "a regular file"
        } else {
            "a special file"
        };
        return Err(SocketError::NotASocket {
            path: path.to_path_buf(),
            kind,
        });
    }
    if UnixStream::connect(path).is_ok() {
        return Err(SocketError::InUse(path.to_path_buf()));
    }
    std::fs::remove_file(path).map_err(|cause| SocketError::Io {
        what: "cannot remove the stale socket",
        path: path.to_path_buf(),
        cause,
    })
}

/// The group id of `name` (a group name, or a number).
fn lookup_group(name: &str) -> Result<u32, SocketError> {
    crate::store::files::group_id(name)
        .or_else(|| name.parse::<u32>().ok())
        .ok_or_else(|| SocketError::UnknownGroup(name.to_string()))
}

/// Who this process is, as far as giving a file to a group goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

impl Credentials {
    /// The credentials of this process.
    pub fn current() -> Credentials {
        // SAFETY: geteuid and getegid take no arguments, have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let mut groups = vec![0 as libc::gid_t; 1024];
        // SAFETY: the buffer holds as many entries as we say.
        let n = unsafe { libc::getgroups(groups.len() as libc::c_int, groups.as_mut_ptr()) };
        groups.truncate(usize::try_from(n).unwrap_or(0));
        Credentials { uid, gid, groups }
    }
}

/// The kernel lets a process give its file to a group only when it is root or a member of
/// the group; checking first turns a bare `EPERM` into advice.
pub fn check_group_allowed(name: &str, gid: u32, who: &Credentials) -> Result<(), SocketError> {
    if who.uid == 0 || who.gid == gid || who.groups.contains(&gid) {
        return Ok(());
    }
    Err(SocketError::NotMember {
        group: name.to_string(),
        uid: who.uid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_octal_and_never_world_writable() {
        assert_eq!(parse_mode("0660"), Ok(0o660));
        assert_eq!(parse_mode("660"), Ok(0o660));
        assert_eq!(parse_mode("0o640"), Ok(0o640));
        assert_eq!(parse_mode("0600"), Ok(0o600));
        for bad in ["", "0o", "0680", "1660", "rw-rw----", "0x1b0", "-660"] {
            assert!(parse_mode(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_mode("0666"), Err(ModeError::WorldWritable));
        assert_eq!(parse_mode("0888"), Err(ModeError::NotOctal));
        assert!(parse_mode("0777").is_err());
    }

    #[test]
    fn only_root_or_members_may_use_a_group() {
        let user = Credentials {
            uid: 1000,
            gid: 1000,
            groups: vec![1000, 27],
        };
        assert!(check_group_allowed("sudo", 27, &user).is_ok());
        assert!(check_group_allowed("me", 1000, &user).is_ok());
        let err = check_group_allowed("postfix", 118, &user).unwrap_err();
        assert!(
            err.to_string()
                .contains("add SupplementaryGroups=postfix to the systemd unit"),
            "{err}"
        );
        let root = Credentials {
            uid: 0,
            gid: 0,
            groups: vec![],
        };
        assert!(check_group_allowed("postfix", 118, &root).is_ok());
    }

    #[test]
    fn groups_are_found_by_name_or_number() {
        assert_eq!(lookup_group("root").ok(), Some(0));
        assert_eq!(lookup_group("4242").ok(), Some(4242));
        assert!(matches!(
            lookup_group("no-such-group-gl"),
            Err(SocketError::UnknownGroup(_))
        ));
        assert!(lookup_group("a\0b").is_err());
    }

    #[test]
    fn the_socket_gets_its_mode_whatever_the_umask_and_stale_ones_go() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("policy.sock");
        let options = SocketOptions {
            mode: 0o640,
            group: None,
        };
        let listener = bind_unix(&path, &options).expect("bind");
        let meta = std::fs::symlink_metadata(&path).expect("stat");
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640);
        // The staging directory is gone; only the socket is left.
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
        // Connecting through the path reaches the listener.
        let _client = UnixStream::connect(&path).expect("connect");
        assert!(listener.accept().is_ok());
        // A live socket is not taken over.
        assert!(matches!(
            bind_unix(&path, &options),
            Err(SocketError::InUse(_))
        ));
        // Once its server is gone, it is stale and replaced.
        drop(listener);
        let _again = bind_unix(&path, &options).expect("stale socket replaced");
    }

    #[test]
    fn files_that_are_not_sockets_are_never_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("regular");
        std::fs::write(&file, b"keep me").expect("write");
        let err = bind_unix(&file, &SocketOptions::default()).unwrap_err();
        assert!(err.to_string().contains("a regular file"), "{err}");
        assert_eq!(std::fs::read(&file).expect("read"), b"keep me");
        // A symbolic link to a stale socket is not followed or removed either.
        let target = dir.path().join("target.sock");
        drop(UnixListener::bind(&target).expect("bind"));
        let link = dir.path().join("link.sock");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        let err = bind_unix(&link, &SocketOptions::default()).unwrap_err();
        assert!(err.to_string().contains("a symbolic link"), "{err}");
        assert!(std::fs::symlink_metadata(&link).is_ok());
        assert!(std::fs::symlink_metadata(&target).is_ok());
    }
}
