//! The daemons' listening socket (TCP or unix) and their accepted connections' streams: one
//! definition for the policy server and the milter.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use super::socket::{self, SocketError, SocketOptions};

/// Why the listening socket could not be set up.
#[derive(Debug, Error)]
pub enum ListenError {
    /// The listen address is not `host:port` or `unix:/path`.
    #[error("invalid listen address {0:?} (expected host:port or unix:/path)")]
    BadListen(String),
    /// `--socket-group` with a TCP address: it would be ignored, silently.
    #[error("--socket-group applies to a unix socket only (--listen unix:/path)")]
    GroupWithoutUnix,
    /// Binding or configuring failed.
    #[error("{what} {address}: {cause}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The address involved.
        address: String,
        /// The OS error.
        cause: io::Error,
    },
    /// The unix socket could not be set up as asked.
    #[error(transparent)]
    Socket(#[from] SocketError),
}

/// A bound, non-blocking listening socket.
#[derive(Debug)]
pub enum Listener {
    /// TCP (loopback by default).
    Tcp(mio::net::TcpListener),
    /// A unix socket; its path is removed when the listener is dropped.
    Unix(mio::net::UnixListener, Arc<Path>),
}

/// Who a connection came from, as log lines name it: the client's address and port, or
/// `unix:<socket path>`. Kept unformatted, since most connections end without a line that
/// names them.
#[derive(Debug, Clone)]
pub(crate) enum Peer {
    /// A TCP client.
    Tcp(SocketAddr),
    /// A client of the unix socket at this path.
    Unix(Arc<Path>),
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(address) => address.fmt(f),
            Peer::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl Listener {
    /// Binds `host:port` or `unix:/path` (a unix socket with the default mode and group).
    pub fn bind(listen: &str) -> Result<Listener, ListenError> {
        Listener::bind_with(listen, &SocketOptions::default())
    }

    /// Binds `host:port` or `unix:/path`; a unix socket gets the mode and group of `options`
    /// before it accepts anything (see [`socket::bind_unix`]: a stale socket is replaced, any
    /// other file at the path is refused). A group for a TCP address is refused.
    pub fn bind_with(listen: &str, options: &SocketOptions) -> Result<Listener, ListenError> {
        let io_err = |what| {
            move |cause| ListenError::Io {
                what,
                address: listen.to_string(),
                cause,
            }
        };
        if let Some(path) = listen.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(ListenError::BadListen(listen.to_string()));
            }
            let path = PathBuf::from(path);
            let listener = socket::bind_unix(&path, options)?;
            if let Err(cause) = listener.set_nonblocking(true) {
                // Nobody else will remove the socket this call just made.
                let _ = std::fs::remove_file(&path);
                return Err(io_err("cannot configure")(cause));
            }
            return Ok(Listener::Unix(
                mio::net::UnixListener::from_std(listener),
                Arc::from(path),
            ));
        }
        if options.group.is_some() {
            return Err(ListenError::GroupWithoutUnix);
        }
        let addr: SocketAddr = listen
            .parse()
            .map_err(|_| ListenError::BadListen(listen.to_string()))?;
        let listener = TcpListener::bind(addr).map_err(io_err("cannot listen on"))?;
        listener
            .set_nonblocking(true)
            .map_err(io_err("cannot configure"))?;
        // Replies are single small writes that must leave at once. Accepted connections
        // inherit the option from the listener, which saves a system call per connection.
        socket2::SockRef::from(&listener)
            .set_tcp_nodelay(true)
            .map_err(io_err("cannot configure"))?;
        Ok(Listener::Tcp(mio::net::TcpListener::from_std(listener)))
    }

    /// The address as given to `--listen` (the real port when bound to port 0).
    pub fn describe(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp".to_string(), |a| a.to_string()),
            Listener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// True for a TCP address other hosts may reach: a wildcard (`0.0.0.0`, `[::]`) or any
    /// address that is not loopback. The protocols have no authentication, so anyone who can
    /// connect can ask for decisions and fill the database with triplets.
    pub fn reachable_from_other_hosts(&self) -> bool {
        match self {
            Listener::Tcp(l) => l.local_addr().is_ok_and(|a| !a.ip().is_loopback()),
            Listener::Unix(..) => false,
        }
    }

    /// The socket, to register with the poll.
    pub(crate) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Listener::Tcp(l) => l,
            Listener::Unix(l, _) => l,
        }
    }

    /// Accepts one waiting connection and names its peer.
    pub(crate) fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept()?;
                Ok((Stream::Tcp(s), Peer::Tcp(peer)))
            }
            Listener::Unix(l, path) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), Peer::Unix(Arc::clone(path))))
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

/// An accepted connection of a daemon (the policy server's and the milter's).
pub enum Stream {
    /// Over TCP.
    Tcp(mio::net::TcpStream),
    /// Over a unix socket.
    Unix(mio::net::UnixStream),
}

impl Stream {
    /// The socket, to register with the poll.
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    #[test]
    fn unix_socket_gets_mode_and_group_and_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sock");
        // SAFETY: getegid has no preconditions and cannot fail.
        let gid = unsafe { libc::getegid() };
        let listen = format!("unix:{}", path.display());
        let options = SocketOptions {
            mode: 0o620,
            group: Some(gid.to_string()),
        };
        let listener = Listener::bind_with(&listen, &options).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o620);
        assert_eq!(meta.gid(), gid);
        assert_eq!(listener.describe(), listen);
        assert!(!listener.reachable_from_other_hosts());
        drop(listener);
        assert!(std::fs::symlink_metadata(&path).is_err(), "removed on drop");
        let unknown = SocketOptions {
            mode: 0o660,
            group: Some("no-such-group-here".to_string()),
        };
        assert!(matches!(
            Listener::bind_with(&listen, &unknown),
            Err(ListenError::Socket(SocketError::UnknownGroup(_)))
        ));
    }

    #[test]
    fn bad_addresses_and_a_group_for_tcp_are_refused() {
        for bad in ["unix:", "localhost", "nonsense:port"] {
            assert!(
                matches!(Listener::bind(bad), Err(ListenError::BadListen(_))),
                "{bad}"
            );
        }
        let group = SocketOptions {
            mode: 0o660,
            group: Some("0".to_string()),
        };
        assert!(matches!(
            Listener::bind_with("127.0.0.1:0", &group),
            Err(ListenError::GroupWithoutUnix)
        ));
        let tcp = Listener::bind("127.0.0.1:0").unwrap();
        assert!(tcp.describe().starts_with("127.0.0.1:"));
        assert!(!tcp.describe().ends_with(":0"));
        assert!(!tcp.reachable_from_other_hosts());
    }

    /// Accepts the one connection waiting (the listener is non-blocking).
    fn accept_one(listener: &Listener) -> (Stream, Peer) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match listener.accept() {
                Ok(accepted) => return accepted,
                Err(err)
                    if err.kind() == io::ErrorKind::WouldBlock
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(err) => panic!("accept: {err}"),
            }
        }
    }

    #[test]
    fn accepted_tcp_connections_have_no_delay_and_name_their_peer() {
        let listener = Listener::bind("127.0.0.1:0").unwrap();
        let address: SocketAddr = listener.describe().parse().unwrap();
        let client = std::net::TcpStream::connect(address).unwrap();
        let (stream, peer) = accept_one(&listener);
        let Stream::Tcp(tcp) = stream else {
            panic!("a TCP listener accepted a unix stream");
        };
        // Set on the listener only: the accepted socket must have inherited it.
        assert!(tcp.nodelay().unwrap());
        assert_eq!(peer.to_string(), client.local_addr().unwrap().to_string());
    }

    #[test]
    fn unix_peers_are_named_by_the_socket_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.sock");
        let listen = format!("unix:{}", path.display());
        let listener = Listener::bind(&listen).unwrap();
        let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (_stream, peer) = accept_one(&listener);
        assert_eq!(peer.to_string(), listen);
    }
}
