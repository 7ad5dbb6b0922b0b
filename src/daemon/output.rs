//! Writing a connection's queued output, for both daemons.

use std::io::{self, Write};
use std::time::Instant;

use super::listener::{Peer, Stream};

/// Replies a peer may leave unread (beyond the socket buffers) before it is disconnected: one
/// that keeps sending but never reads would grow its buffer without bound. Postfix, Sendmail
/// and Exim wait for each reply before the next request, so a legitimate backlog is a few
/// hundred bytes; this bound times `--max-connections` (256 MiB at the default 4,096) is what
/// peers that never read can make a daemon hold.
pub(crate) const MAX_UNSENT_REPLIES: usize = 64 * 1024;

/// What writing a connection's queued output left it as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flushed {
    /// Everything was written, or the rest waits for the socket to take it.
    Open,
    /// A write failed or wrote nothing: the connection must be closed.
    Broken,
    /// More than [`MAX_UNSENT_REPLIES`] bytes wait: the peer does not read its replies, and
    /// the connection must be closed (log [`backlog_line`]).
    Backlog,
}

/// The error line for a connection closed for [`Flushed::Backlog`].
pub(crate) fn backlog_line(peer: &Peer) -> String {
    format!(
        "closing connection from {peer}: more than {MAX_UNSENT_REPLIES} bytes of replies not read"
    )
}

/// A connection's replies not yet written, and what writing them touches.
pub(crate) struct Outgoing<'a> {
    /// The connection's socket.
    pub stream: &'a mut Stream,
    /// The queued bytes; what is written is removed.
    pub out: &'a mut Vec<u8>,
    /// Set when bytes went out (the idle clock).
    pub last_activity: &'a mut Instant,
}

impl Outgoing<'_> {
    /// Writes the queued bytes until done or the socket is full. An emptied buffer larger than
    /// `keep_capacity` is released.
    pub(crate) fn flush(self, keep_capacity: usize) -> Flushed {
        let mut written = 0;
        let mut alive = true;
        while written < self.out.len() {
            match self.stream.write(&self.out[written..]) {
                Ok(0) => {
                    alive = false;
                    break;
                }
                Ok(n) => written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    alive = false;
                    break;
                }
            }
        }
        self.out.drain(..written);
        if self.out.is_empty() && self.out.capacity() > keep_capacity {
            *self.out = Vec::new();
        }
        if written > 0 {
            *self.last_activity = Instant::now();
        }
        if !alive {
            Flushed::Broken
        } else if self.out.len() > MAX_UNSENT_REPLIES {
            Flushed::Backlog
        } else {
            Flushed::Open
        }
    }
}
