//! `greylisting-milter`: greylisting for Sendmail and for Postfix's `smtpd_milters`.
//!
//! Built like `greylisting-policyd` and on the same parts: ONE thread runs an event loop (epoll
//! via `mio`) over the listener and every MTA connection; each turn handles the packets that
//! arrived, decides every recipient waiting for an answer in one write transaction
//! (`crate::daemon::batch::BatchDecider`, the group commit and configuration cache the policy
//! server uses too, so both servers make the same decisions from the same database), and only
//! then queues the replies. A connection whose recipient is being decided reads nothing more
//! until its answer is queued. Store failures answer `CONTINUE` (mail passes) and are logged.

mod conn;
mod limits;
pub(crate) mod networks;
pub mod options;
pub(crate) mod protocol;
pub(crate) mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock;
use crate::daemon::batch::{self, BatchDecider, DecideError, Synchronous};
use crate::daemon::dns_waits::DnsWaits;
use crate::daemon::event_loop::{
    EventLoop, LISTENER, Opened, TICK, exposed_line, log_metrics_address, open_loop,
};
use crate::daemon::limits::{
    ClosedConnections, DEFAULT_MAX_CONNECTIONS, DEFAULT_PARTIAL_BUDGET, DEFAULT_REQUEST_TIMEOUT,
};
use crate::daemon::reload::{Lifecycle, LocationSource};
use crate::daemon::{Listener, Signals};
use crate::engine::Checked;
use crate::logging::{Fallback, Logger};
use crate::logline::panic_line;
use crate::metrics::Metrics;
use crate::store::DbLocation;

use conn::{Conn, PendingRcpt};
use limits::{PartialTotal, close_for_stop, close_idle, keep_within_budget};
use networks::Network;

/// Why the milter could not start or run (the daemons share one definition).
pub use crate::daemon::ServeError as MilterError;

/// The syslog ident of the milter.
pub const IDENT: &str = "greylisting-milter";
/// Default listen address: loopback, the port after the policy server's.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10024";
/// Default idle timeout: libmilter's (2 hours and 10 s), which milter-greylist and OpenDKIM
/// keep. Not the policy server's 330 s: an MTA holds one milter connection for a whole SMTP
/// session and writes to it only at the steps a milter sees, while its own timeouts count per
/// SMTP command (Postfix's `smtpd_timeout`, 300 s; Sendmail's `Timeout.command`, 1 hour) and
/// commands such as NOOP, VRFY or STARTTLS reach no milter. A shorter clock closes connections
/// the MTA still uses, and their later recipients then get its default action (accepted
/// ungreylisted, or deferred with Postfix's default `tempfail`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(7210);

/// Rounds of decide-then-read per loop turn: a connection that pipelines commands gets one
/// recipient per round; the rest waits for the next turn, so others are not starved.
const MAX_ROUNDS: usize = 16;
/// Extra zero-timeout polls per turn that gather recipients into the turn's transaction.
const MAX_GATHER: usize = 8;

/// Milter settings (the command line).
#[derive(Debug, Clone)]
pub struct Config {
    /// The database.
    pub db: DbLocation,
    /// Where SIGHUP finds the database location again.
    pub location_source: LocationSource,
    /// Clients never greylisted.
    pub trusted: Vec<Network>,
    /// Close a connection after this long without a byte, except while a body is transferred.
    pub idle_timeout: Duration,
    /// Bound on open connections.
    pub max_connections: usize,
    /// A packet must be complete this long after its first byte, so a peer that trickles
    /// bytes cannot hold a connection (an MTA writes each packet at once).
    pub request_timeout: Duration,
    /// Bound on the bytes held for incomplete packets, all connections together (64 MiB, as
    /// the policy server's for incomplete requests; smaller in tests).
    pub partial_packet_budget: usize,
    /// The bytes held for incomplete packets now.
    pub(crate) partial_total: PartialTotal,
    /// Host name used in the `X-Greylist` header.
    pub hostname: String,
    /// Why the machine's host name is not in the header, logged when the milter starts; `None`
    /// when it is, or when `--hostname` was given.
    pub hostname_note: Option<String>,
    /// Durability of commits.
    pub synchronous: Synchronous,
    /// Database connections deciding each batch in parallel.
    pub db_connections: usize,
    /// Connections the milter closed, by cause (shared with the metrics).
    pub closed: Arc<ClosedConnections>,
    /// Metrics to keep up to date (`--metrics-listen`); `None`: none are kept.
    pub metrics: Option<Arc<Metrics>>,
    /// Where the metrics are served, for the start-up log line.
    pub metrics_address: Option<String>,
}

impl Config {
    /// Defaults for a database.
    pub fn new(db: DbLocation) -> Config {
        // An invalid system host name is replaced, as in the policy server (the binary checks
        // an explicit --hostname).
        let (hostname, hostname_note) = crate::daemon::hostname::default_hostname();
        Config {
            db_connections: batch::default_connections(&db),
            db,
            location_source: LocationSource::Fixed,
            trusted: networks::parse_list(networks::DEFAULT_TRUSTED).unwrap_or_default(),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            partial_packet_budget: DEFAULT_PARTIAL_BUDGET,
            partial_total: PartialTotal::default(),
            hostname,
            hostname_note,
            synchronous: Synchronous::Full,
            closed: Arc::new(ClosedConnections::default()),
            metrics: None,
            metrics_address: None,
        }
    }
}

/// Runs the milter on `listener` until `signals.shutdown`, then stops accepting, lets open
/// messages finish (within a grace period) and returns. Logs as `greylisting-milter`.
pub fn run(listener: Listener, config: Config, signals: Signals) -> Result<(), MilterError> {
    let logger = Logger::open(IDENT, Fallback::Stderr, &clock::process_env);
    run_with_logger(listener, config, signals, logger)
}

/// [`run`] with a caller-provided logger.
pub fn run_with_logger(
    listener: Listener,
    mut config: Config,
    signals: Signals,
    mut log: Logger,
) -> Result<(), MilterError> {
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
        crate::engine::Component::Milter,
        &mut log,
    )?;
    log.info(&format!(
        "Starting greylisting-milter: listening on {address}, database {} ({} connection{}), trusted networks {}, max connections {}, idle timeout {} s, request timeout {} s",
        config.db,
        config.db_connections,
        if config.db_connections == 1 { "" } else { "s" },
        networks::describe(&config.trusted),
        config.max_connections,
        config.idle_timeout.as_secs(),
        config.request_timeout.as_secs(),
    ));
    if exposed {
        log.error(&exposed_line(
            "the milter",
            &address,
            "milter protocol",
            DEFAULT_LISTEN,
        ));
    }
    for line in networks::too_wide_lines(&config.trusted) {
        log.error(&line);
    }
    if let Some(note) = config.hostname_note.take() {
        log.error(&note);
    }
    log_metrics_address(config.metrics_address.as_ref(), &mut log);
    log.flush();
    let mut lifecycle = Lifecycle::new(signals.reload);
    let mut conns: HashMap<usize, Conn> = HashMap::new();
    let mut pending: Vec<PendingRcpt> = Vec::new();
    let mut chunk = vec![0u8; conn::READ_CHUNK];
    let mut dns_waits: DnsWaits<PendingRcpt> = DnsWaits::new();
    let mut last_sweep = Instant::now();
    // Some connection has bytes left to read that no event will report (`Conn::has_more`).
    let mut more_to_read = false;
    loop {
        if lp.begin_stop(&signals.shutdown) {
            log.info("Stopping greylisting-milter: no new connections, finishing open messages");
        }
        if lifecycle.tick(
            &mut config.db,
            &config.location_source,
            &mut decider,
            &mut log,
        ) {
            // The configuration file (and with it the resolver) may have changed.
            dns_waits.restart(&mut log);
        }
        if let Some(grace_over) = lp.grace_over() {
            close_for_stop(
                &mut conns,
                &mut pending,
                &mut chunk,
                grace_over,
                &config,
                &mut log,
            );
            if conns.is_empty() {
                break;
            }
        }
        let timeout = if pending.is_empty() && !more_to_read {
            TICK
        } else {
            Duration::ZERO
        };
        if !lp.wait(timeout, &mut log) {
            continue;
        }
        handle_events(
            &mut lp,
            &mut conns,
            &mut pending,
            &mut chunk,
            &config,
            &mut log,
        );
        if more_to_read {
            read_more(&mut conns, &mut pending, &mut chunk, &config, &mut log);
        }
        // Recipients whose DNS answers came (the worker woke the loop) join this turn's batch.
        pending.extend(dns_waits.take_ready(&mut log));
        let mut rounds = 0;
        while !pending.is_empty() && rounds < MAX_ROUNDS {
            rounds += 1;
            let mut waits = Waits {
                dns: &mut dns_waits,
                registry: lp.poll.registry(),
            };
            answer(
                &mut pending,
                &mut chunk,
                &mut conns,
                &mut decider,
                &mut waits,
                &config,
                &mut log,
            );
            // Recipients that came back at once (no resolver) are decided in the next round.
            pending.extend(dns_waits.take_ready(&mut log));
        }
        more_to_read = false;
        conns.retain(|_, c| {
            more_to_read |= c.has_more();
            !c.is_finished()
        });
        if last_sweep.elapsed() >= TICK {
            last_sweep = Instant::now();
            close_idle(&mut conns, &config, &mut log);
            config.partial_total.trim_when_released();
        }
        if let Some(metrics) = &config.metrics {
            metrics.set_connections(conns.len());
        }
        log.flush();
    }
    lp.finish(IDENT, &mut log);
    Ok(())
}

/// Handles the events of the last wait: reads (queueing recipients in `pending`), writes, and
/// the connections waiting at the listener.
///
/// Then, while recipients wait, it takes in what has arrived meanwhile, without waiting for
/// anything: MTAs that got their negotiation reply in this turn have often sent their RCPT by
/// now, and one transaction (one fsync) for them all costs far less than one each. No reply is
/// held back for it; the bound keeps a busy listener from delaying the batch.
fn handle_events(
    lp: &mut EventLoop,
    conns: &mut HashMap<usize, Conn>,
    pending: &mut Vec<PendingRcpt>,
    chunk: &mut [u8],
    config: &Config,
    log: &mut Logger,
) {
    let mut gathered = 0;
    loop {
        let mut listener_ready = false;
        for event in lp.events.iter() {
            if event.token() == LISTENER {
                listener_ready = true;
                continue;
            }
            let token = event.token().0;
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                conn.readable(event.is_read_closed() || event.is_error());
                conn.pump(token, pending, chunk, config, log);
                keep_within_budget(conns, config, log);
            } else if !conn.out.is_empty() {
                // Writable again: the rest of the replies.
                conn.flush_out(config, log);
            }
        }
        if listener_ready {
            lp.listener_ready();
        }
        // An accept that failed (out of descriptors) is retried once per turn, not again in
        // each gathering poll, where it would only log the same failure again.
        if gathered == 0 || listener_ready {
            let mut admission = limits::Admission {
                conns: &mut *conns,
                config,
            };
            lp.accept(&mut admission, log);
        }
        if pending.is_empty()
            || gathered == MAX_GATHER
            || !lp.wait(Duration::ZERO, log)
            || lp.events.is_empty()
        {
            return;
        }
        gathered += 1;
    }
}

/// Goes on reading the connections whose last turn stopped at the read bound.
fn read_more(
    conns: &mut HashMap<usize, Conn>,
    pending: &mut Vec<PendingRcpt>,
    chunk: &mut [u8],
    config: &Config,
    log: &mut Logger,
) {
    let more: Vec<usize> = conns
        .iter()
        .filter(|(_, c)| c.has_more())
        .map(|(&token, _)| token)
        .collect();
    for token in more {
        if let Some(conn) = conns.get_mut(&token) {
            conn.pump(token, pending, chunk, config, log);
        }
        keep_within_budget(conns, config, log);
    }
}

/// Where recipients that need DNS wait.
struct Waits<'a> {
    dns: &'a mut DnsWaits<PendingRcpt>,
    registry: &'a mio::Registry,
}

/// Decides the waiting recipients in one transaction, queues their replies, then lets each of
/// their connections go on with the packets it already sent (which may queue new recipients).
/// A recipient that needs DNS waits for it, its connection reading nothing more meanwhile.
fn answer(
    pending: &mut Vec<PendingRcpt>,
    chunk: &mut [u8],
    conns: &mut HashMap<usize, Conn>,
    decider: &mut BatchDecider,
    waits: &mut Waits<'_>,
    config: &Config,
    log: &mut Logger,
) {
    let batch: Vec<PendingRcpt> = std::mem::take(pending);
    let checks: Vec<_> = batch.iter().map(|p| (&p.message, p.now)).collect();
    // A panic while deciding must not take the MTA's mail flow down: the batch passes, the
    // store is reopened (its transaction was rolled back by the unwinding), and we go on.
    let started = Instant::now();
    let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decider.decide(&checks, &mut *log)
    }));
    let mut outcomes = match decided {
        Ok(outcomes) => {
            if let Some(metrics) = &config.metrics {
                metrics.record_batch(started.elapsed().as_secs_f64(), &checks, &outcomes);
            }
            outcomes
        }
        Err(payload) => {
            log.error(&panic_line(
                checks.len(),
                "recipient",
                "all passed, the database reopened",
                payload.as_ref(),
            ));
            *decider = BatchDecider::new(
                config.db.clone(),
                config.synchronous,
                config.db_connections,
                crate::engine::Component::Milter,
                log,
            );
            vec![Err(DecideError::Internal); checks.len()]
        }
    }
    .into_iter();
    drop(checks);
    for request in batch {
        let outcome = match outcomes.next().unwrap_or(Err(DecideError::MissingOutcome)) {
            Ok(Checked::Decided(outcome)) => Ok(outcome),
            // The connection stays `awaiting` (it reads nothing more) until the answers come.
            Ok(Checked::NeedsDns { ask, known }) => {
                if conns.contains_key(&request.token) {
                    waits.dns.park(request, ask, known, waits.registry, log);
                }
                continue;
            }
            Err(why) => Err(why),
        };
        let Some(conn) = conns.get_mut(&request.token) else {
            continue;
        };
        conn.awaiting = false;
        conn.session
            .decided(&request.message, outcome, &mut conn.out, log);
        conn.pump(request.token, pending, chunk, config, log);
        keep_within_budget(conns, config, log);
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod server_tests;
