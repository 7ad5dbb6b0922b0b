//! `greylisting-policyd`: the Postfix policy delegation server (DESIGN.md §6).
//!
//! Design: ONE thread runs an event loop (epoll via `mio`) over the listener and every
//! connection. Each loop turn reads whatever the ready connections sent, parses the complete
//! requests, decides all of them in a single write transaction (group commit, `daemon::batch`) and only
//! then queues the replies — so an answered decision is always stored, and the cost of a commit
//! (and its fsync) is shared by every request that arrived meanwhile. On SQLite no thread
//! hand-offs, no locks: two system calls per request plus one commit per turn. On PostgreSQL a
//! small pool of connections decides parts of each turn's batch at once (`daemon::batch`). The
//! configuration is cached between transactions and checked against the store's configuration
//! stamp in every one, so CLI changes apply to the next request. Idle connections cost a socket
//! and a small buffer; any database failure answers `DUNNO` (mail passes) and is logged.

mod conn;
pub(crate) mod connections;
pub(crate) mod decide;
pub mod options;
pub(crate) mod protocol;
mod reply;
#[cfg(test)]
mod server_tests;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Events;

use crate::clock;
use crate::daemon::accept::Admit;
use crate::daemon::event_loop::{
    LISTENER, Opened, TICK, exposed_line, grace_over_line, log_metrics_address, open_loop,
};
use crate::daemon::reload::{Lifecycle, LocationSource};
use crate::daemon::{Listener, Peer, Signals, Stream};
use crate::logging::{Fallback, Logger};
use crate::store::DbLocation;

use crate::daemon::batch::{self, Synchronous};
use crate::daemon::dns_waits::{DNS_TOKEN, DnsWaits};
use crate::daemon::hostname::default_hostname;
use crate::daemon::limits::{
    ClosedConnections, DEFAULT_MAX_CONNECTIONS, DEFAULT_PARTIAL_BUDGET, DEFAULT_REQUEST_TIMEOUT,
};
use conn::{Conn, Pending};
use connections::Table;

/// Why the server could not start or run (the daemons share one definition).
pub use crate::daemon::ServeError as PolicyError;

/// The syslog ident of the server.
pub const IDENT: &str = "greylisting-policyd";
/// Default listen address: postgrey's port, loopback only (DESIGN.md §6).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10023";
/// Default idle timeout, longer than Postfix's 300 s `smtpd_policy_service_max_idle`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(330);

/// Server settings (the command line).
#[derive(Debug, Clone)]
pub struct Config {
    /// The database.
    pub db: DbLocation,
    /// Close a connection after this long without a byte from the client.
    pub idle_timeout: Duration,
    /// Bound on open connections; at the bound the connection idle longest is closed to admit
    /// a new one.
    pub max_connections: usize,
    /// Time a request may take from its first byte to its end.
    pub request_timeout: Duration,
    /// Bound on the bytes held for incomplete requests, all connections together (64 MiB;
    /// smaller in tests).
    pub partial_request_budget: usize,
    /// Connections the server closed, by cause (shared with whoever reports them).
    pub closed: Arc<ClosedConnections>,
    /// Metrics to keep up to date (`--metrics-listen`); `None`: none are kept.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Where the metrics are served, for the start-up log line.
    pub metrics_address: Option<String>,
    /// Honour postgrey's `policy_test_time` attribute.
    pub allow_test_time: bool,
    /// Host name used in the `X-Greylist` header.
    pub hostname: String,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Database connections deciding each batch in parallel (see `daemon::batch`).
    pub db_connections: usize,
    /// Where SIGHUP finds the database location again.
    pub location_source: LocationSource,
    /// Why the machine's host name is not in the header, logged when the server starts; `None`
    /// when it is, or when `--hostname` was given.
    pub hostname_note: Option<String>,
}

impl Config {
    /// The defaults (docs/policyd.md, "Running it") for a database.
    pub fn new(db: DbLocation) -> Config {
        let (hostname, hostname_note) = default_hostname();
        Config {
            db_connections: batch::default_connections(&db),
            db,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            partial_request_budget: DEFAULT_PARTIAL_BUDGET,
            closed: Arc::new(ClosedConnections::default()),
            metrics: None,
            metrics_address: None,
            allow_test_time: false,
            hostname,
            synchronous: Synchronous::Full,
            location_source: LocationSource::Fixed,
            hostname_note,
        }
    }
}

/// Runs the server on `listener` until `signals.shutdown` becomes true (the binary sets it on
/// SIGTERM), then stops accepting, finishes the requests in flight and returns. When
/// `signals.reload` becomes true (SIGHUP) it reads the configuration again and reopens the
/// database (see [`crate::daemon::reload`]). Logs as `greylisting-policyd` to syslog, or
/// stderr without it.
pub fn run(listener: Listener, config: Config, signals: Signals) -> Result<(), PolicyError> {
    let logger = Logger::open(IDENT, Fallback::Stderr, &clock::process_env);
    run_with_logger(listener, config, signals, logger)
}

/// [`run`] with a caller-provided logger.
pub fn run_with_logger(
    listener: Listener,
    mut config: Config,
    signals: Signals,
    mut log: Logger,
) -> Result<(), PolicyError> {
    let Opened {
        mut lp,
        mut decider,
        address,
        exposed,
    } = open_loop(
        listener,
        &config.db,
        config.synchronous,
        config.db_connections,
        crate::engine::Component::Policyd,
        &mut log,
    )?;
    log.info(&start_line(&address, &config));
    if exposed {
        log.error(&exposed_line(
            "the policy server",
            &address,
            "policy protocol",
            DEFAULT_LISTEN,
        ));
    }
    if let Some(note) = config.hostname_note.take() {
        log.error(&note);
    }
    log_metrics_address(config.metrics_address.as_ref(), &mut log);
    // Whoever started us learns the address (and that we are up) at once.
    log.flush();
    let mut lifecycle = Lifecycle::new(signals.reload);
    let mut conns = Table::new(Arc::clone(&config.closed));
    let mut pending: Vec<Pending> = Vec::new();
    let mut dns_waits: DnsWaits<Pending> = DnsWaits::new();
    let mut last_sweep = Instant::now();
    loop {
        if lifecycle.tick(
            &mut config.db,
            &config.location_source,
            &mut decider,
            &mut log,
        ) {
            // The configuration file (and with it the resolver) may have changed.
            dns_waits.restart(&mut log);
        }
        if lp.begin_stop(&signals.shutdown) {
            log.info(
                "Stopping greylisting-policyd: no new connections, finishing requests in flight",
            );
        }
        if let Some(grace_over) = lp.grace_over() {
            close_for_stop(&mut conns, &mut pending, grace_over, &config, &mut log);
            if conns.is_empty() {
                break;
            }
        }
        if !lp.wait(TICK, &mut log) {
            continue;
        }
        if serve_events(&lp.events, &mut conns, &mut pending, &config, &mut log) {
            lp.listener_ready();
        }
        // Requests whose DNS answers came (the worker woke the loop) join this turn's batch.
        pending.extend(dns_waits.take_ready(&mut log));
        if !pending.is_empty() {
            let mut deciders = reply::Deciders {
                decider: &mut decider,
                waits: &mut dns_waits,
                registry: lp.poll.registry(),
            };
            reply::answer(&mut pending, &mut conns, &mut deciders, &config, &mut log);
        }
        conns.remove_finished();
        // Accepting comes after the turn's requests are answered and the finished connections
        // are gone: a client that left in this turn then holds no place at --max-connections,
        // and one that half-closed after its request (Exim) holds its place until answered.
        let mut admission = Admission {
            conns: &mut conns,
            max_connections: config.max_connections,
        };
        lp.accept(&mut admission, &mut log);
        if last_sweep.elapsed() >= TICK {
            last_sweep = Instant::now();
            conns.sweep(config.idle_timeout, config.request_timeout, &mut log);
        }
        if let Some(metrics) = &config.metrics {
            metrics.set_connections(conns.len());
        }
        log.flush();
    }
    lp.finish(IDENT, &mut log);
    Ok(())
}

/// While stopping: keeps only the connections with a request still arriving or waiting for
/// its answer, or replies still to write; once the grace is over, closes them all, with a log
/// line when any was still open (a client that never reads its replies would otherwise hold
/// the stop up until the idle timeout).
///
/// What has already arrived is read first: a client that sent its whole request just before
/// the stop (while the server was busy deciding, say) waits for the answer, and closing its
/// connection would fail its mail for no reason. The requests read here join `pending`.
fn close_for_stop(
    conns: &mut Table,
    pending: &mut Vec<Pending>,
    grace_over: bool,
    config: &Config,
    log: &mut Logger,
) {
    if grace_over {
        let mut open = 0;
        conns.retain_tokens(|_, c| {
            open += usize::from(!c.dead);
            false
        });
        if open > 0 {
            log.error(&grace_over_line(open));
        }
        return;
    }
    for token in conns.tokens() {
        let requests_before = pending.len();
        if let Some(conn) = conns.get_mut(&token)
            && !conn.eof
            && !conn.dead
        {
            conn.read_ready(token, false, pending, config, log);
        }
        let completed = pending.len() > requests_before;
        conns.after_read(token, completed, config.partial_request_budget, log);
    }
    let answering: HashSet<usize> = pending.iter().map(|p| p.token).collect();
    conns.retain_tokens(|token, c| {
        !c.dead
            && (c.reader.in_progress()
                || !c.out.is_empty()
                || c.waiting
                || answering.contains(&token))
    });
}

/// The line logged at start: where we listen and the limits in force.
fn start_line(address: &str, config: &Config) -> String {
    format!(
        "Starting greylisting-policyd: listening on {address}, database {} ({} connection{}), max connections {}, idle timeout {} s, request timeout {} s{}",
        config.db,
        config.db_connections,
        if config.db_connections == 1 { "" } else { "s" },
        config.max_connections,
        config.idle_timeout.as_secs(),
        config.request_timeout.as_secs(),
        if config.allow_test_time {
            ", policy_test_time honoured"
        } else {
            ""
        }
    )
}

/// Reads and writes what the connections of `events` are ready for; complete requests are
/// added to `pending`. Returns true when the listener has connections waiting to be accepted.
fn serve_events(
    events: &Events,
    conns: &mut Table,
    pending: &mut Vec<Pending>,
    config: &Config,
    log: &mut Logger,
) -> bool {
    let mut accept = false;
    for event in events.iter() {
        let token = event.token();
        if token == LISTENER {
            accept = true;
            continue;
        }
        if token == DNS_TOKEN {
            // Answers are collected every turn.
            continue;
        }
        let requests_before = pending.len();
        if let Some(conn) = conns.get_mut(&token.0) {
            // After the end of the stream the connection only writes its last replies.
            if !conn.eof && (event.is_readable() || event.is_read_closed() || event.is_error()) {
                let closing = event.is_read_closed() || event.is_error();
                conn.read_ready(token.0, closing, pending, config, log);
            }
            // A peer gone while replies wait: the write fails and closes the connection
            // now rather than at the idle timeout.
            let can_write = event.is_writable() || event.is_write_closed() || event.is_error();
            if can_write && !conn.out.is_empty() {
                conn.flush_out(log);
            }
        }
        let completed = pending.len() > requests_before;
        conns.after_read(token.0, completed, config.partial_request_budget, log);
    }
    accept
}

/// The table as accepting sees it: at the limit the connection idle longest makes room.
struct Admission<'a> {
    conns: &'a mut Table,
    max_connections: usize,
}

impl Admit for Admission<'_> {
    fn admit(&mut self, _peer: &Peer, log: &mut Logger) -> bool {
        self.conns.make_room(self.max_connections, log);
        true
    }

    fn insert(&mut self, token: usize, stream: Stream, peer: Peer) {
        self.conns.insert(token, Conn::new(stream, peer));
    }
}
