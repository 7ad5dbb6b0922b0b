//! Admitting connections: every waiting one accepted, an idle one evicted at the limit, each
//! watched under its own token.

use std::collections::HashMap;
use std::io;

use mio::{Interest, Poll, Token};

use crate::logging::Logger;
use crate::policyd::dns_waits::DNS_TOKEN;

use super::Config;
use super::conn::Conn;
use super::limits::evict_one;
use super::listen::Listener;

/// Accepts every waiting connection; returns true when accepting must be retried next turn.
pub(super) fn accept_all(
    listener: &mut Listener,
    poll: &mut Poll,
    conns: &mut HashMap<usize, Conn>,
    next_token: &mut usize,
    config: &Config,
    log: &mut Logger,
) -> bool {
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return false,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                log.error(&format!("accept failed: {err}"));
                return true;
            }
        };
        if conns.len() >= config.max_connections && !evict_one(conns, &peer, config, log) {
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
        conns.insert(token, Conn::new(stream, peer));
    }
}
