//! The server's table of client connections and the bounds that keep one local client from
//! locking every other one out:
//!
//! - a request must be complete within the request timeout of its first byte, so a client that
//!   trickles a byte now and then cannot hold a connection slot for ever;
//! - at the connection limit the connection idle longest is closed to admit the new one (Postfix
//!   opens a new connection when its cached one was closed), instead of refusing the newcomer;
//! - the bytes held for incomplete requests are bounded in all: past the budget, the connection
//!   holding the largest incomplete request is closed.
//!
//! Every close the server decides is counted by cause in [`ClosedConnections`] (shared with the
//! milter, `daemon::limits`) and logged. Closes the client chose (end of stream, reset) are not
//! counted there.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::daemon::limits::{
    CloseCause, ClosedConnections, TRIM_AFTER, TRIM_COUNTS_FROM, over_budget_line, trim_heap,
};
use crate::logging::Logger;

use super::Conn;

/// The open connections by token, with the running total of bytes their incomplete requests
/// hold (kept up to date on every read and every removal, so the budget is checked in O(1)).
pub(super) struct Table {
    conns: HashMap<usize, Conn>,
    partial_total: usize,
    /// Incomplete-request bytes released since the heap was last trimmed.
    released: usize,
    closed: std::sync::Arc<ClosedConnections>,
}

impl Table {
    pub(super) fn new(closed: std::sync::Arc<ClosedConnections>) -> Table {
        Table {
            conns: HashMap::new(),
            partial_total: 0,
            released: 0,
            closed,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.conns.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    pub(super) fn get(&self, token: &usize) -> Option<&Conn> {
        self.conns.get(token)
    }

    pub(super) fn get_mut(&mut self, token: &usize) -> Option<&mut Conn> {
        self.conns.get_mut(token)
    }

    pub(super) fn insert(&mut self, token: usize, conn: Conn) {
        if let Some(old) = self.conns.insert(token, conn) {
            self.partial_total -= old.partial_accounted;
        }
    }

    /// Bookkeeping after reading from `token`: starts or stops its request clock (`completed`:
    /// at least one request ended in what was read) and updates the incomplete-request total;
    /// then closes the largest incomplete requests while the total is over `budget`.
    pub(super) fn after_read(
        &mut self,
        token: usize,
        completed: bool,
        budget: usize,
        log: &mut Logger,
    ) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if !conn.reader.in_progress() {
            conn.request_started = None;
        } else if completed || conn.request_started.is_none() {
            // The bytes that started the request in progress came with this read.
            conn.request_started = Some(conn.last_activity);
        }
        let held = conn.reader.partial_bytes();
        if conn.partial_accounted >= TRIM_COUNTS_FROM {
            self.released += conn.partial_accounted.saturating_sub(held);
        }
        self.partial_total = self.partial_total - conn.partial_accounted + held;
        conn.partial_accounted = held;
        while self.partial_total > budget {
            let Some((&largest, conn)) = self.conns.iter().max_by_key(|(_, c)| c.partial_accounted)
            else {
                break;
            };
            log.error(&over_budget_line(
                &conn.peer,
                "requests",
                self.partial_total,
                budget,
                conn.partial_accounted,
            ));
            self.remove(largest, Some(CloseCause::Evicted));
        }
    }

    /// Closes the connection idle longest while `max` or more are open, so one more fits. The
    /// loop calls it after removing the finished connections, so each one counted is open.
    /// A connection owed a reply (its request waits for DNS, or its replies are still being
    /// written) is picked only when every connection is: closing it would lose the answer.
    pub(super) fn make_room(&mut self, max: usize, log: &mut Logger) {
        while self.conns.len() >= max {
            let owed = |c: &Conn| c.waiting || !c.out.is_empty();
            let idlest = |owed_too: bool| {
                self.conns
                    .iter()
                    .filter(|(_, c)| owed_too || !owed(c))
                    .min_by_key(|(_, c)| c.last_activity)
            };
            let Some((&idlest, conn)) = idlest(false).or_else(|| idlest(true)) else {
                return;
            };
            log.info(&format!(
                "closing connection from {}, idle {} s: the longest idle of {} connections (max {max}), to admit a new one",
                conn.peer,
                conn.last_activity.elapsed().as_secs(),
                self.conns.len()
            ));
            self.remove(idlest, Some(CloseCause::Evicted));
        }
    }

    /// Removes the connections that are finished (closed by the client, or marked for closing
    /// with a cause, which is counted; the reason was logged where it was marked).
    pub(super) fn remove_finished(&mut self) {
        let finished: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.is_finished())
            .map(|(&t, _)| t)
            .collect();
        for token in finished {
            let cause = self.conns.get(&token).and_then(|c| c.close_cause);
            self.remove(token, cause);
        }
    }

    /// Closes connections idle for `idle` and requests not complete within `request` of their
    /// first byte, with a log line each.
    pub(super) fn sweep(&mut self, idle: Duration, request: Duration, log: &mut Logger) {
        let now = Instant::now();
        let mut expired = Vec::new();
        for (&token, conn) in &self.conns {
            // A connection whose request waits for DNS is not idle: it gets its answer first.
            if now.saturating_duration_since(conn.last_activity) >= idle && !conn.waiting {
                log.info(&format!(
                    "closing idle connection from {} after {} s",
                    conn.peer,
                    idle.as_secs()
                ));
                expired.push((token, CloseCause::Idle));
            } else if conn
                .request_started
                .is_some_and(|t| now.saturating_duration_since(t) >= request)
            {
                log.error(&format!(
                    "closing connection from {}: request not complete within {} s of its first byte ({} bytes so far)",
                    conn.peer,
                    request.as_secs(),
                    conn.partial_accounted
                ));
                expired.push((token, CloseCause::RequestTimeout));
            }
        }
        for (token, cause) in expired {
            self.remove(token, Some(cause));
        }
        if self.released >= TRIM_AFTER {
            self.released = 0;
            trim_heap();
        }
    }

    /// The tokens of the open connections.
    pub(super) fn tokens(&self) -> Vec<usize> {
        self.conns.keys().copied().collect()
    }

    /// Keeps only the connections `keep` accepts, given their token (shutdown: those still
    /// worth finishing).
    pub(super) fn retain_tokens(&mut self, mut keep: impl FnMut(usize, &Conn) -> bool) {
        let gone: Vec<usize> = self
            .conns
            .iter()
            .filter(|(t, c)| !keep(**t, c))
            .map(|(&t, _)| t)
            .collect();
        for token in gone {
            self.remove(token, None);
        }
    }

    fn remove(&mut self, token: usize, cause: Option<CloseCause>) {
        if let Some(conn) = self.conns.remove(&token) {
            self.partial_total -= conn.partial_accounted;
            if conn.partial_accounted >= TRIM_COUNTS_FROM {
                self.released += conn.partial_accounted;
            }
            if let Some(cause) = cause {
                self.closed.record(cause);
            }
        }
    }
}
