//! The bounds both daemons put on their connections, and what they share to keep them: the
//! defaults of `--max-connections` and `--request-timeout`, the budget for bytes held by
//! incomplete requests or packets, why a connection was closed ([`CloseCause`]) and the counts
//! of those closes ([`ClosedConnections`], shared so the metrics exporter can read them from
//! its own thread), the log line of a close past the budget, and giving freed memory back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Default bound on open connections.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// Default time a request (policy server) or a packet (milter) may take to arrive completely,
/// from its first byte.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Default bound on the bytes held for incomplete requests, all connections together.
pub(crate) const DEFAULT_PARTIAL_BUDGET: usize = 64 * 1024 * 1024;
/// Incomplete-request bytes freed since the heap was last trimmed past which the next sweep
/// hands the free heap back to the system.
pub(crate) const TRIM_AFTER: usize = 8 * 1024 * 1024;
/// Only incomplete requests at least this large count towards [`TRIM_AFTER`]: the few hundred
/// bytes of an ordinary request are reused by the next one, trimming for them would be waste.
pub(crate) const TRIM_COUNTS_FROM: usize = 4 * 1024;

/// Why the server closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCause {
    /// Closed to make room: the idlest one at the connection limit, or the largest incomplete
    /// request when incomplete requests hold more than the budget.
    Evicted,
    /// No byte from the client for the idle timeout.
    Idle,
    /// A request not complete within the request timeout of its first byte.
    RequestTimeout,
    /// A protocol violation: a line or request too long, garbage, a read error.
    BadInput,
    /// The client left too many replies unread.
    ReplyBacklog,
}

impl CloseCause {
    /// Every cause, in the order of [`CloseCause::as_str`]'s labels.
    pub const ALL: [CloseCause; 5] = [
        CloseCause::Evicted,
        CloseCause::Idle,
        CloseCause::RequestTimeout,
        CloseCause::BadInput,
        CloseCause::ReplyBacklog,
    ];

    /// The label of the cause (as a metrics label would carry it).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseCause::Evicted => "evicted",
            CloseCause::Idle => "idle",
            CloseCause::RequestTimeout => "request-timeout",
            CloseCause::BadInput => "bad-input",
            CloseCause::ReplyBacklog => "reply-backlog",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Connections the server closed, by cause, since it started.
#[derive(Debug, Default)]
pub struct ClosedConnections {
    counts: [AtomicU64; 5],
}

impl ClosedConnections {
    /// Counts one close.
    pub fn record(&self, cause: CloseCause) {
        self.counts[cause.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// How many connections were closed for `cause`.
    pub fn get(&self, cause: CloseCause) -> u64 {
        self.counts[cause.index()].load(Ordering::Relaxed)
    }
}

/// The line logged when a connection is closed because incomplete `what` (requests, packets)
/// of all connections together hold `total` bytes, more than `budget`, and this one, from
/// `peer`, holds the most (`held`). Both daemons write it, in this one form.
pub(crate) fn over_budget_line(
    peer: &dyn std::fmt::Display,
    what: &str,
    total: usize,
    budget: usize,
    held: usize,
) -> String {
    format!(
        "closing connection from {peer}: incomplete {what} hold {total} bytes in all (max {budget}), this one the most ({held} bytes)"
    )
}

/// Returns the free memory at the top of the heap and in its free pages to the system: glibc's
/// allocator keeps freed request buffers otherwise, so memory that incomplete requests once held
/// would stay resident after they are gone.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; no pointer of ours is
    // involved.
    unsafe {
        libc::malloc_trim(0);
    }
}
