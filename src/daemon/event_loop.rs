//! The parts of the daemons' event loops that do not depend on the protocol: the poll with the
//! listener registered, accepting when the listener is ready, the switch to stopping on
//! SIGTERM, and the last lines.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

use crate::daemon::batch::{BatchDecider, Synchronous};
use crate::engine::Component;
use crate::logging::Logger;
use crate::store::DbLocation;

use super::ServeError;
use super::accept::{AcceptFailures, Admit, accept_all};
use super::listener::Listener;

/// Token of the listening socket; connections count up from 1.
pub(crate) const LISTENER: Token = Token(0);
/// How long a daemon waits for events at most, to check idle connections and the signal flags.
pub(crate) const TICK: Duration = Duration::from_millis(250);
/// How long requests and messages in progress may still take after SIGTERM.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The line logged when the grace after SIGTERM is over and `open` connections are still open
/// (a request or message in progress, replies their peer has not read): they are closed, so
/// that stopping never takes longer than the grace.
pub(crate) fn grace_over_line(open: usize) -> String {
    format!(
        "closing {open} connection{} still open {} s after SIGTERM",
        if open == 1 { "" } else { "s" },
        SHUTDOWN_GRACE.as_secs()
    )
}

/// What a daemon has after its first steps, which both daemons take alike (see [`open_loop`]).
pub(crate) struct Opened {
    /// The event loop, watching the listener.
    pub(crate) lp: EventLoop,
    /// The decider, on the database.
    pub(crate) decider: BatchDecider,
    /// The listen address as `--listen` names it (the real port when bound to port 0).
    pub(crate) address: String,
    /// Other hosts can reach the listener: the start-up warns ([`exposed_line`]).
    pub(crate) exposed: bool,
}

/// A daemon's first steps: the event loop on `listener`, stderr log lines held for one write
/// per turn instead of two per line (syslog is unaffected), and the decider on `db` with
/// `connections` connections, whose decisions are logged as `component`'s. The database is
/// opened before the daemon's start-up line, so a failure to open it is logged first.
pub(crate) fn open_loop(
    listener: Listener,
    db: &DbLocation,
    synchronous: Synchronous,
    connections: usize,
    component: Component,
    log: &mut Logger,
) -> Result<Opened, ServeError> {
    let address = listener.describe();
    let exposed = listener.reachable_from_other_hosts();
    let lp = EventLoop::new(listener, &address)?;
    log.hold_stderr_lines();
    let decider = BatchDecider::new(db.clone(), synchronous, connections, component, log);
    Ok(Opened {
        lp,
        decider,
        address,
        exposed,
    })
}

/// The poll, the listener (until the daemon stops accepting) and the state of accepting and
/// stopping.
pub(crate) struct EventLoop {
    /// The poll: the listener, the connections and the DNS worker's waker.
    pub(crate) poll: Poll,
    /// The events of the last [`EventLoop::wait`].
    pub(crate) events: Events,
    listener: Option<Listener>,
    next_token: usize,
    /// An accept that failed (out of descriptors) is retried every turn: epoll is edge-triggered.
    accept_backlog: bool,
    /// Failed accepts while they last, so they are logged without flooding the log.
    accept_failures: AcceptFailures,
    stopping_since: Option<Instant>,
}

impl EventLoop {
    /// Watches `listener` (described as `address` in errors).
    pub(crate) fn new(mut listener: Listener, address: &str) -> Result<EventLoop, ServeError> {
        let io_err = |cause| ServeError::Io {
            what: "cannot poll",
            address: address.to_string(),
            cause,
        };
        let poll = Poll::new().map_err(io_err)?;
        poll.registry()
            .register(listener.source(), LISTENER, Interest::READABLE)
            .map_err(io_err)?;
        Ok(EventLoop {
            poll,
            events: Events::with_capacity(1024),
            listener: Some(listener),
            next_token: 1,
            accept_backlog: false,
            accept_failures: AcceptFailures::default(),
            stopping_since: None,
        })
    }

    /// True once, on the first call after `shutdown` was set: the listener is closed (no new
    /// connections), and the caller logs that it is stopping.
    pub(crate) fn begin_stop(&mut self, shutdown: &AtomicBool) -> bool {
        if self.stopping_since.is_some() || !shutdown.load(Ordering::SeqCst) {
            return false;
        }
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(l.source());
        }
        self.stopping_since = Some(Instant::now());
        true
    }

    /// While stopping: whether the grace for work in progress is over. `None` while serving.
    pub(crate) fn grace_over(&self) -> Option<bool> {
        self.stopping_since
            .map(|since| since.elapsed() > SHUTDOWN_GRACE)
    }

    /// Waits at most `timeout` for events; false when there are none to handle (interrupted by
    /// a signal, or the poll failed: logged, and a short pause so a lasting failure does not
    /// spin).
    pub(crate) fn wait(&mut self, timeout: Duration, log: &mut Logger) -> bool {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => true,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => false,
            Err(err) => {
                log.error(&format!("poll failed: {err}"));
                std::thread::sleep(Duration::from_millis(50));
                false
            }
        }
    }

    /// The listener reported connections waiting.
    pub(crate) fn listener_ready(&mut self) {
        self.accept_backlog = true;
    }

    /// Accepts what waits, if the listener said so (or an accept failed last turn).
    pub(crate) fn accept(&mut self, conns: &mut impl Admit, log: &mut Logger) {
        if !self.accept_backlog {
            return;
        }
        let Some(listener) = self.listener.as_mut() else {
            self.accept_backlog = false;
            return;
        };
        let accepted = accept_all(listener, &mut self.poll, conns, &mut self.next_token, log);
        self.accept_backlog = accepted.is_err();
        // Out of file descriptors and the like: keep serving, retry next turn, log sparingly.
        match accepted {
            Ok(()) => {
                if let Some(line) = self.accept_failures.recovered(Instant::now()) {
                    log.info(&line);
                }
            }
            Err(err) => {
                if let Some(line) = self.accept_failures.failed(&err, Instant::now()) {
                    log.error(&line);
                }
            }
        }
    }

    /// Closes the listener (removing a unix socket) and logs the last line, `<ident> stopped`.
    pub(crate) fn finish(mut self, ident: &str, log: &mut Logger) {
        drop(self.listener.take());
        // A run of failed accepts the stop cut short: its count, up to the stop.
        let stopped_at = self.stopping_since.unwrap_or_else(Instant::now);
        if let Some(line) = self.accept_failures.stopped(stopped_at) {
            log.error(&line);
        }
        log.info(&format!("{ident} stopped"));
        log.flush();
    }
}

/// The start-up warning for a TCP listen address other hosts can reach
/// ([`Listener::reachable_from_other_hosts`]): neither daemon's protocol has authentication.
/// `daemon` names the daemon ("the policy server"), `protocol` its protocol, `loopback` the
/// default address to suggest instead.
pub(crate) fn exposed_line(daemon: &str, address: &str, protocol: &str, loopback: &str) -> String {
    format!(
        "warning: {daemon} on {address} is reachable from other hosts, and the {protocol} has no authentication: anyone who can connect can query decisions and add triplets; listen on loopback ({loopback}) or a unix socket, or firewall the port"
    )
}

/// The start-up line naming where the metrics are served, if they are.
pub(crate) fn log_metrics_address(address: Option<&String>, log: &mut Logger) {
    if let Some(address) = address {
        log.info(&format!("Serving metrics at http://{address}/metrics"));
    }
}
