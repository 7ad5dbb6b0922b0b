//! Admitting connections, for both daemons: every waiting one accepted, room made at the limit
//! as the daemon's table decides, each watched under its own token.

use std::io;

use mio::{Interest, Poll, Token};

use crate::logging::Logger;
use crate::policyd::dns_waits::DNS_TOKEN;

use super::listener::{Listener, Peer, Stream};

/// A daemon's connection table, as accepting sees it.
pub(crate) trait Admit {
    /// Called before a connection from `peer` is taken: makes room at the connection limit;
    /// false refuses the newcomer (its stream is dropped, closing it).
    fn admit(&mut self, peer: &Peer, log: &mut Logger) -> bool;
    /// Takes the accepted connection, watched under `token`.
    fn insert(&mut self, token: usize, stream: Stream, peer: Peer);
}

/// Accepts every waiting connection; returns true when accepting must be retried next turn.
pub(crate) fn accept_all(
    listener: &mut Listener,
    poll: &mut Poll,
    conns: &mut impl Admit,
    next_token: &mut usize,
    log: &mut Logger,
) -> bool {
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                // Out of file descriptors and the like: log, keep serving, retry next turn.
                log.error(&format!("accept failed: {err}"));
                return true;
            }
        };
        if !conns.admit(&peer, log) {
            continue;
        }
        let token = *next_token;
        // Tokens skip 0 (the listener) and the DNS worker's.
        *next_token = match next_token.wrapping_add(1) {
            0 => 1,
            next if next == DNS_TOKEN.0 => 1,
            next => next,
        };
        if let Err(err) = poll.registry().register(
            stream.source(),
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log.error(&format!("cannot watch connection from {peer}: {err}"));
            continue;
        }
        conns.insert(token, stream, peer);
    }
}
