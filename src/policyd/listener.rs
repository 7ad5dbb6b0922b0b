//! The policy server's listening socket (TCP or unix) and its accepted connections' streams,
//! shared with the milter.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use super::PolicyError;
use super::socket::{self, SocketOptions};

/// A bound listening socket.
#[derive(Debug)]
pub enum PolicyListener {
    /// TCP (loopback by default).
    Tcp(TcpListener),
    /// A unix socket; the path is removed when the server stops.
    Unix(UnixListener, PathBuf),
}

impl PolicyListener {
    /// Binds `host:port` or `unix:/path` (a unix socket with the default mode and group).
    pub fn bind(listen: &str) -> Result<PolicyListener, PolicyError> {
        PolicyListener::bind_with(listen, &SocketOptions::default())
    }

    /// Binds `host:port` or `unix:/path`; a unix socket gets the mode and group of `options`
    /// before it accepts anything (see [`socket::bind_unix`]: a stale socket is replaced, any
    /// other file at the path is refused).
    pub fn bind_with(listen: &str, options: &SocketOptions) -> Result<PolicyListener, PolicyError> {
        let io_err = |what, cause| PolicyError::Io {
            what,
            address: listen.to_string(),
            cause,
        };
        if let Some(path) = listen.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(PolicyError::BadListen(listen.to_string()));
            }
            let path = PathBuf::from(path);
            let listener = socket::bind_unix(&path, options)?;
            return Ok(PolicyListener::Unix(listener, path));
        }
        let addr: SocketAddr = listen
            .parse()
            .map_err(|_| PolicyError::BadListen(listen.to_string()))?;
        let listener = TcpListener::bind(addr).map_err(|e| io_err("cannot listen on", e))?;
        Ok(PolicyListener::Tcp(listener))
    }

    /// The address as given to `--listen` (the real port when bound to port 0).
    pub fn describe(&self) -> String {
        match self {
            PolicyListener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp".to_string(), |a| a.to_string()),
            PolicyListener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// True for a TCP address other hosts may reach: a wildcard (`0.0.0.0`, `[::]`) or any
    /// address that is not loopback. The protocol has no authentication, so anyone who can
    /// connect can ask for decisions and fill the database with triplets.
    pub fn reachable_from_other_hosts(&self) -> bool {
        match self {
            PolicyListener::Tcp(l) => l.local_addr().is_ok_and(|a| !a.ip().is_loopback()),
            PolicyListener::Unix(..) => false,
        }
    }

    /// Turns the std listener into a non-blocking mio one (the unix path travels along so it is
    /// removed when the server stops).
    pub(super) fn into_mio(mut self) -> io::Result<Listener> {
        // A duplicate descriptor keeps the socket open when `self` is dropped; the path moves
        // out so `self`'s Drop does not remove the socket file.
        match &mut self {
            PolicyListener::Tcp(l) => {
                let tcp = l.try_clone()?;
                tcp.set_nonblocking(true)?;
                Ok(Listener::Tcp(mio::net::TcpListener::from_std(tcp)))
            }
            PolicyListener::Unix(l, path) => {
                let unix = l.try_clone()?;
                unix.set_nonblocking(true)?;
                let path = std::mem::take(path);
                Ok(Listener::Unix(mio::net::UnixListener::from_std(unix), path))
            }
        }
    }
}

impl Drop for PolicyListener {
    fn drop(&mut self) {
        if let PolicyListener::Unix(_, path) = self
            && !path.as_os_str().is_empty()
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

pub(super) enum Listener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener, PathBuf),
}

impl Listener {
    pub(super) fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Listener::Tcp(l) => l,
            Listener::Unix(l, _) => l,
        }
    }

    pub(super) fn accept(&self) -> io::Result<(Stream, String)> {
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
