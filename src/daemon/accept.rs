//! Admitting connections, for both daemons: every waiting one accepted, room made at the limit
//! as the daemon's table decides, each watched under its own token.

use std::io;
use std::time::{Duration, Instant};

use mio::{Interest, Poll, Token};

use crate::daemon::dns_waits::DNS_TOKEN;
use crate::logging::Logger;

use super::listener::{Listener, Peer, Stream};

/// A daemon's connection table, as accepting sees it.
pub(crate) trait Admit {
    /// Called before a connection from `peer` is taken: makes room at the connection limit;
    /// false refuses the newcomer (its stream is dropped, closing it).
    fn admit(&mut self, peer: &Peer, log: &mut Logger) -> bool;
    /// Takes the accepted connection, watched under `token`.
    fn insert(&mut self, token: usize, stream: Stream, peer: Peer);
}

/// Accepts every waiting connection. An error (out of file descriptors and the like) means
/// accepting must be retried next turn; the connections already accepted are kept.
pub(crate) fn accept_all(
    listener: &mut Listener,
    poll: &mut Poll,
    conns: &mut impl Admit,
    next_token: &mut usize,
    log: &mut Logger,
) -> io::Result<()> {
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
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

/// How often a lasting accept failure is summed up in the log.
pub(crate) const FAILURE_SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Failed accepts while they last. A daemon out of file descriptors retries accepting on every
/// loop turn, which can be thousands a second on a busy server: the first failure is logged at
/// once, the rest are counted and summed up at most once every [`FAILURE_SUMMARY_EVERY`], and the
/// end of the failures is logged too, so the log says what happened without being flooded.
#[derive(Debug, Default)]
pub(crate) struct AcceptFailures {
    /// The first failure of the current run of failures; `None` while accepting works.
    since: Option<Instant>,
    /// When the last line about this run was written.
    logged_at: Option<Instant>,
    /// Failures since that line.
    unlogged: u64,
    /// Failures in this run.
    total: u64,
}

impl AcceptFailures {
    /// Counts a failed accept at `now`; the line to log, if one is due.
    pub(crate) fn failed(&mut self, err: &io::Error, now: Instant) -> Option<String> {
        self.total += 1;
        let Some(logged_at) = self.logged_at else {
            self.since = Some(now);
            self.logged_at = Some(now);
            return Some(format!(
                "accept failed: {err}; new connections wait (retried every turn, further failures summed up once a minute)"
            ));
        };
        self.unlogged += 1;
        if now.saturating_duration_since(logged_at) < FAILURE_SUMMARY_EVERY {
            return None;
        }
        let line = format!(
            "accept failed {} more times in the last {} s, last: {err}",
            self.unlogged,
            now.saturating_duration_since(logged_at).as_secs()
        );
        self.logged_at = Some(now);
        self.unlogged = 0;
        Some(line)
    }

    /// Accepting worked again at `now` (every waiting connection taken): the line that ends a
    /// run of failures, if there was one.
    pub(crate) fn recovered(&mut self, now: Instant) -> Option<String> {
        self.end(now, "accepting connections again")
    }

    /// The daemon stops accepting at `now` (it is stopping): the line that ends a run of
    /// failures, if there was one, so its last failures are not left uncounted.
    pub(crate) fn stopped(&mut self, now: Instant) -> Option<String> {
        self.end(now, "no longer accepting (stopping)")
    }

    fn end(&mut self, now: Instant, what: &str) -> Option<String> {
        let since = self.since?;
        let line = format!(
            "{what} after {} failed accepts in {} s",
            self.total,
            now.saturating_duration_since(since).as_secs()
        );
        *self = AcceptFailures::default();
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(libc::EMFILE)
    }

    #[test]
    fn the_first_failure_is_logged_at_once_and_the_rest_once_a_minute() {
        let start = Instant::now();
        let mut failures = AcceptFailures::default();
        let first = failures.failed(&emfile(), start).unwrap();
        assert!(first.starts_with("accept failed: "), "{first}");
        assert!(first.contains("Too many open files"), "{first}");
        // Within the minute: counted, not logged.
        for ms in 1..=1000 {
            let at = start + Duration::from_millis(ms * 59);
            assert_eq!(failures.failed(&emfile(), at), None);
        }
        let summary = failures
            .failed(&emfile(), start + FAILURE_SUMMARY_EVERY)
            .unwrap();
        assert_eq!(
            summary,
            "accept failed 1001 more times in the last 60 s, last: Too many open files (os error 24)"
        );
        // The next minute counts afresh.
        assert_eq!(
            failures.failed(&emfile(), start + Duration::from_secs(61)),
            None
        );
        let end = failures.recovered(start + Duration::from_secs(90)).unwrap();
        assert_eq!(
            end,
            "accepting connections again after 1003 failed accepts in 90 s"
        );
    }

    #[test]
    fn accepting_that_never_failed_logs_nothing_and_a_new_run_starts_afresh() {
        let start = Instant::now();
        let mut failures = AcceptFailures::default();
        assert_eq!(failures.recovered(start), None);
        failures.failed(&emfile(), start).unwrap();
        failures.recovered(start + Duration::from_secs(1)).unwrap();
        assert_eq!(failures.recovered(start + Duration::from_secs(2)), None);
        // A failure after the end of the last run is logged at once again.
        let again = failures.failed(&emfile(), start + Duration::from_secs(3));
        assert!(again.is_some_and(|l| l.starts_with("accept failed: ")));
        // A stop ends the run too, with its count.
        failures.failed(&emfile(), start + Duration::from_secs(4));
        assert_eq!(
            failures.stopped(start + Duration::from_secs(5)).unwrap(),
            "no longer accepting (stopping) after 2 failed accepts in 2 s"
        );
        assert_eq!(failures.stopped(start + Duration::from_secs(6)), None);
    }
}
