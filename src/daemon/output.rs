//! Writing a connection's queued output, for both daemons.

use std::io::{self, Write};
use std::time::Instant;

use super::listener::Stream;

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
    /// `keep_capacity` is released. Returns false when the connection is broken (a write failed
    /// or wrote nothing): it must be closed.
    pub(crate) fn flush(self, keep_capacity: usize) -> bool {
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
        alive
    }
}
