//! The bounds on the milter's connections: at `--max-connections` the idlest connection outside
//! a message makes room for a new one, connections silent too long or trickling a packet are
//! closed, and the bytes held for incomplete packets are bounded in all (past the budget, the
//! connection holding the most is closed). Each close is logged and counted by cause.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Config;
use super::conn::{Conn, PendingRcpt};
use crate::daemon::accept::Admit;
use crate::daemon::event_loop::grace_over_line;
use crate::daemon::limits::{
    CloseCause, TRIM_AFTER, TRIM_COUNTS_FROM, over_budget_line, trim_heap,
};
use crate::daemon::{Peer, Stream};
use crate::logging::Logger;

/// The bytes all connections hold for packets not complete yet. Each connection adds its own
/// through its [`PartialShare`], which gives them back when the connection is dropped, however
/// it is closed, so the total needs no bookkeeping at every place a connection goes away.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartialTotal {
    held: Arc<AtomicUsize>,
    released: Arc<AtomicUsize>,
}

impl PartialTotal {
    /// The bytes held now.
    pub(crate) fn get(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Bytes of large incomplete packets let go since the heap was last trimmed.
    fn released(&self) -> usize {
        self.released.load(Ordering::Relaxed)
    }

    /// Gives the memory large incomplete packets held back to the system once enough of it has
    /// been let go, as the policy server does: the allocator would keep it otherwise, and a
    /// flood of big packets would leave the milter's memory at its high-water mark.
    pub(super) fn trim_when_released(&self) {
        if self.released() >= TRIM_AFTER {
            self.released.store(0, Ordering::Relaxed);
            trim_heap();
        }
    }
}

/// One connection's part of a [`PartialTotal`].
#[derive(Debug)]
pub(super) struct PartialShare {
    total: PartialTotal,
    held: usize,
}

impl PartialShare {
    /// A connection holding nothing yet.
    pub(super) fn new(total: &PartialTotal) -> PartialShare {
        PartialShare {
            total: total.clone(),
            held: 0,
        }
    }

    /// The connection now holds `held` bytes of incomplete packets.
    pub(super) fn set(&mut self, held: usize) {
        if held >= self.held {
            self.total
                .held
                .fetch_add(held - self.held, Ordering::Relaxed);
        } else {
            self.total
                .held
                .fetch_sub(self.held - held, Ordering::Relaxed);
            // Only large packets count: the few hundred bytes of an ordinary one come and go
            // on every command.
            if self.held >= TRIM_COUNTS_FROM {
                self.total
                    .released
                    .fetch_add(self.held - held, Ordering::Relaxed);
            }
        }
        self.held = held;
    }

    /// The bytes this connection holds.
    pub(super) fn held(&self) -> usize {
        self.held
    }
}

impl Drop for PartialShare {
    fn drop(&mut self) {
        self.set(0);
    }
}

/// While incomplete packets hold more than the budget in all, closes the
/// connection holding the most, with a log line each (counted as evicted, as the policy
/// server counts it). A peer cannot hold more than one packet's worth, but thousands of peers
/// together could hold far more memory than the milter should.
pub(super) fn keep_within_budget(
    conns: &mut HashMap<usize, Conn>,
    config: &Config,
    log: &mut Logger,
) {
    let budget = config.partial_packet_budget;
    while config.partial_total.get() > budget {
        let Some((&largest, conn)) = conns.iter().max_by_key(|(_, c)| c.partial.held()) else {
            return;
        };
        log.error(&over_budget_line(
            &conn.peer,
            "packets",
            config.partial_total.get(),
            budget,
            conn.partial.held(),
        ));
        config.closed.record(CloseCause::Evicted);
        conns.remove(&largest);
    }
}

/// The connections as accepting sees them: at the limit the connection idle longest outside a
/// message makes room, or the newcomer is refused.
pub(super) struct Admission<'a> {
    pub(super) conns: &'a mut HashMap<usize, Conn>,
    pub(super) config: &'a Config,
}

impl Admit for Admission<'_> {
    fn admit(&mut self, peer: &Peer, log: &mut Logger) -> bool {
        admit_at_limit(self.conns, peer, self.config, log)
    }

    fn insert(&mut self, token: usize, stream: Stream, peer: Peer) {
        self.conns
            .insert(token, Conn::new(stream, peer, &self.config.partial_total));
    }
}

/// Whether `newcomer` may be admitted at `--max-connections`, closing one connection to make
/// room if need be ([`evict_one`]). At the limit, the connections already finished (the MTA
/// quit or went away in this turn) are closed first, as the end of the turn would close them:
/// counting them would close a live session, or refuse the newcomer, for a place that is free.
fn admit_at_limit(
    conns: &mut HashMap<usize, Conn>,
    newcomer: &Peer,
    config: &Config,
    log: &mut Logger,
) -> bool {
    if conns.len() < config.max_connections {
        return true;
    }
    conns.retain(|_, c| !c.is_finished());
    conns.len() < config.max_connections || evict_one(conns, newcomer, config, log)
}

/// At `--max-connections`: closes the connection idle longest that is not inside a message, to
/// admit `newcomer`. False (and the newcomer is refused) when every connection is in a message.
/// Either way one connection is closed for the limit and counted as `evicted`.
fn evict_one(
    conns: &mut HashMap<usize, Conn>,
    newcomer: &Peer,
    config: &Config,
    log: &mut Logger,
) -> bool {
    let victim = conns
        .iter()
        .filter(|(_, c)| !c.busy())
        .min_by_key(|(_, c)| c.last_activity)
        .map(|(&token, _)| token);
    match victim.and_then(|token| conns.remove(&token)) {
        Some(old) => {
            config.closed.record(CloseCause::Evicted);
            log.info(&format!(
                "too many connections (max {}): closing the idle connection from {} to admit {newcomer}",
                config.max_connections, old.peer
            ));
            true
        }
        None => {
            // The newcomer is the connection closed for the limit: counted like an eviction, so
            // a dashboard sees refusals as well as the idle connections that made room.
            config.closed.record(CloseCause::Evicted);
            log.error(&format!(
                "too many connections (max {}), all inside a message: closing connection from {newcomer}",
                config.max_connections
            ));
            false
        }
    }
}

/// Closes connections silent for `--idle-timeout`, except those transferring a body or being
/// answered, and those whose current packet is not complete within `--request-timeout`.
pub(super) fn close_idle(conns: &mut HashMap<usize, Conn>, config: &Config, log: &mut Logger) {
    let idle = config.idle_timeout;
    conns.retain(|_, c| {
        if c.partial_since
            .is_some_and(|since| since.elapsed() >= config.request_timeout)
        {
            config.closed.record(CloseCause::RequestTimeout);
            log.error(&format!(
                "closing connection from {}: packet not complete {} s after its first byte",
                c.peer,
                config.request_timeout.as_secs()
            ));
            return false;
        }
        let keep = c.session.in_data() || c.awaiting || c.last_activity.elapsed() < idle;
        if !keep {
            config.closed.record(CloseCause::Idle);
            log.info(&format!(
                "closing idle connection from {} after {} s",
                c.peer,
                idle.as_secs()
            ));
        }
        keep
    });
}

/// While stopping: closes the connections between messages, keeping those with replies still
/// to write; once the grace is over, closes them all, with a log line when any was still open.
///
/// What has already arrived is read first: an MTA does not wait for an answer to MAIL (nor to
/// CONNECT or HELO), so a connection whose MAIL is still in the socket is inside a message for
/// the MTA, and closing it would fail that message. Recipients read here join `pending`.
pub(super) fn close_for_stop(
    conns: &mut HashMap<usize, Conn>,
    pending: &mut Vec<PendingRcpt>,
    chunk: &mut [u8],
    grace_over: bool,
    config: &Config,
    log: &mut Logger,
) {
    if grace_over {
        // An MTA that never reads its replies would otherwise hold the stop up until the idle
        // timeout, past any service manager's patience.
        let open = conns.values().filter(|c| !c.dead).count();
        if open > 0 {
            log.error(&grace_over_line(open));
        }
        conns.clear();
        return;
    }
    let idle: Vec<usize> = conns
        .iter()
        .filter(|(_, c)| !c.busy())
        .map(|(&token, _)| token)
        .collect();
    for token in idle {
        if let Some(conn) = conns.get_mut(&token) {
            // No event may have reported the bytes yet: try a read.
            conn.readable(false);
            // Replies to steps the MTA wants answered are written too: no later event may
            // report the socket writable again.
            conn.pump(token, pending, chunk, config, log);
        }
        keep_within_budget(conns, config, log);
    }
    conns.retain(|_, c| !c.dead && (c.busy() || !c.out.is_empty()));
}

#[cfg(test)]
mod tests {
    use super::*;

    // The total follows every connection's share, also when one is dropped; only large packets
    // let go count towards a trim, and a trim starts the count again.
    #[test]
    fn shares_add_up_and_large_packets_let_go_count_towards_a_trim() {
        let total = PartialTotal::default();
        let mut small = PartialShare::new(&total);
        let mut large = PartialShare::new(&total);
        small.set(300);
        large.set(TRIM_AFTER / 2);
        assert_eq!(total.get(), 300 + TRIM_AFTER / 2);
        small.set(0);
        assert_eq!(total.released(), 0, "an ordinary packet does not count");
        large.set(100);
        assert_eq!(total.released(), TRIM_AFTER / 2 - 100);
        large.set(TRIM_AFTER);
        drop(large);
        assert_eq!(total.get(), 0);
        assert_eq!(total.released(), TRIM_AFTER / 2 - 100 + TRIM_AFTER);
        total.trim_when_released();
        assert_eq!(total.released(), 0);
        drop(small);
        assert_eq!(total.get(), 0);
    }
}
