//! `greylisting-policyd`: the Postfix policy delegation server (DESIGN.md §6).
//!
//! Design: ONE thread runs an event loop (epoll via `mio`) over the listener and every
//! connection. Each loop turn reads whatever the ready connections sent, parses the complete
//! requests, decides all of them in a single write transaction (group commit, [`batch`]) and only
//! then queues the replies — so an answered decision is always stored, and the cost of a commit
//! (and its fsync) is shared by every request that arrived meanwhile. On SQLite no thread
//! hand-offs, no locks: two system calls per request plus one commit per turn. On PostgreSQL a
//! small pool of connections decides parts of each turn's batch at once ([`batch`]). The
//! configuration is cached between transactions and checked against the store's configuration
//! stamp in every one, so CLI changes apply to the next request. Idle connections cost a socket
//! and a small buffer; any database failure answers `DUNNO` (mail passes) and is logged.

pub mod batch;
pub mod cli;
pub mod connections;
mod decide;
mod hostname;
pub mod protocol;
pub mod reload;
#[cfg(test)]
mod server_tests;
pub mod socket;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use thiserror::Error;

use crate::clock;
use crate::engine::{Message, MessageOutcome};
use crate::logging::{Fallback, Logger};
use crate::logline::{self, LineFacts, Shown};
use crate::store::DbLocation;

use batch::BatchDecider;
use connections::{CloseCause, ClosedConnections, Table};
pub use hostname::{FALLBACK_HOSTNAME, MAX_HOSTNAME, check_hostname, local_hostname};
use protocol::{Parsed, RequestReader};
use reload::{Lifecycle, LocationSource};
use socket::{SocketError, SocketOptions};

/// The syslog ident of the server.
pub const IDENT: &str = "greylisting-policyd";
/// Default listen address: postgrey's port, loopback only (DESIGN.md §6).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10023";
/// Default idle timeout, longer than Postfix's 300 s `smtpd_policy_service_max_idle`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(330);
/// Default bound on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// How often the loop wakes without events to check idle connections and the shutdown flag.
const TICK: Duration = Duration::from_millis(250);
/// How long a request already in progress may still take to arrive after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Token of the listening socket; connections count up from 1.
const LISTENER: Token = Token(0);
/// Bytes read from a socket at once.
const READ_CHUNK: usize = 16 * 1024;
/// Replies a client may leave unread (beyond the socket buffers) before it is disconnected.
const MAX_UNSENT_REPLIES: usize = 1024 * 1024;
/// Empty requests in a row after which a connection is closed as bad input: Postfix never sends
/// one, so a stream of lone newlines is a broken or hostile client, not mail.
const MAX_EMPTY_REQUESTS: u32 = 100;

/// Why the server could not start or run.
#[derive(Debug, Error)]
pub enum PolicyError {
    /// The listen address is not `host:port` or `unix:/path`.
    #[error("invalid listen address {0:?} (expected host:port or unix:/path)")]
    BadListen(String),
    /// Binding or accepting failed.
    #[error("{what} {address}: {cause}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The address involved.
        address: String,
        /// The OS error.
        cause: io::Error,
    },
    /// The unix socket could not be set up as asked.
    #[error(transparent)]
    Socket(#[from] SocketError),
}

/// How hard a commit presses the decision to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `synchronous=FULL`: every committed batch is fsynced before its replies go out, so an
    /// answered decision survives a power cut.
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, a power cut may forget the last
    /// batches (senders are then greylisted once more; no mail is lost).
    Normal,
}

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
    /// Database connections deciding each batch in parallel (see [`batch`]).
    pub db_connections: usize,
    /// Where SIGHUP finds the database location again.
    pub location_source: LocationSource,
    /// Lines logged when the server starts (what was wrong with the defaults it fell back from).
    pub notes: Vec<String>,
}

impl Config {
    /// Defaults of DESIGN.md §6 for a database.
    pub fn new(db: DbLocation) -> Config {
        let mut notes = Vec::new();
        let hostname = local_hostname().unwrap_or_else(|why| {
            notes.push(format!(
                "{why}; the X-Greylist header names {FALLBACK_HOSTNAME} (set --hostname)"
            ));
            FALLBACK_HOSTNAME.to_string()
        });
        Config {
            db_connections: batch::default_connections(&db),
            db,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            request_timeout: connections::DEFAULT_REQUEST_TIMEOUT,
            partial_request_budget: connections::DEFAULT_PARTIAL_BUDGET,
            closed: Arc::new(ClosedConnections::default()),
            metrics: None,
            metrics_address: None,
            allow_test_time: false,
            hostname,
            synchronous: Synchronous::Full,
            location_source: LocationSource::Fixed,
            notes,
        }
    }
}

/// Raises the soft limit of open files to the hard limit, so `--max-connections` can be reached.
/// Failing to raise it is harmless (accept errors are logged and retried).
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into `limit`, a live local of exactly that type, and
    // setrlimit only reads it; neither keeps the pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// A bound listening socket.
#[derive(Debug)]
pub enum PolicyListener {
    /// TCP (loopback by default).
    Tcp(TcpListener),
    /// A unix socket; the path is removed when the server stops.
    Unix(UnixListener, PathBuf),
}

impl PolicyListener {
    /// Binds `host:port` or `unix:/path` (a unix socket with the default mode and group).
    pub fn bind(listen: &str) -> Result<PolicyListener, PolicyError> {
        PolicyListener::bind_with(listen, &SocketOptions::default())
    }

    /// Binds `host:port` or `unix:/path`; a unix socket gets the mode and group of `options`
    /// before it accepts anything (see [`socket::bind_unix`]: a stale socket is replaced, any
    /// other file at the path is refused).
    pub fn bind_with(listen: &str, options: &SocketOptions) -> Result<PolicyListener, PolicyError> {
        let io_err = |what, cause| PolicyError::Io {
            what,
            address: listen.to_string(),
            cause,
        };
        if let Some(path) = listen.strip_prefix("unix:") {
            if path.is_empty() {
                return Err(PolicyError::BadListen(listen.to_string()));
            }
            let path = PathBuf::from(path);
            let listener = socket::bind_unix(&path, options)?;
            return Ok(PolicyListener::Unix(listener, path));
        }
        let addr: SocketAddr = listen
            .parse()
            .map_err(|_| PolicyError::BadListen(listen.to_string()))?;
        let listener = TcpListener::bind(addr).map_err(|e| io_err("cannot listen on", e))?;
        Ok(PolicyListener::Tcp(listener))
    }

    /// The address as given to `--listen` (the real port when bound to port 0).
    pub fn describe(&self) -> String {
        match self {
            PolicyListener::Tcp(l) => l
                .local_addr()
                .map_or_else(|_| "tcp".to_string(), |a| a.to_string()),
            PolicyListener::Unix(_, path) => format!("unix:{}", path.display()),
        }
    }

    /// True for a TCP address other hosts may reach: a wildcard (`0.0.0.0`, `[::]`) or any
    /// address that is not loopback. The protocol has no authentication, so anyone who can
    /// connect can ask for decisions and fill the database with triplets.
    pub fn reachable_from_other_hosts(&self) -> bool {
        match self {
            PolicyListener::Tcp(l) => l.local_addr().is_ok_and(|a| !a.ip().is_loopback()),
            PolicyListener::Unix(..) => false,
        }
    }

    /// Turns the std listener into a non-blocking mio one (the unix path travels along so it is
    /// removed when the server stops).
    fn into_mio(mut self) -> io::Result<Listener> {
        // A duplicate descriptor keeps the socket open when `self` is dropped; the path moves
        // out so `self`'s Drop does not remove the socket file.
        match &mut self {
            PolicyListener::Tcp(l) => {
                let tcp = l.try_clone()?;
                tcp.set_nonblocking(true)?;
                Ok(Listener::Tcp(mio::net::TcpListener::from_std(tcp)))
            }
            PolicyListener::Unix(l, path) => {
                let unix = l.try_clone()?;
                unix.set_nonblocking(true)?;
                let path = std::mem::take(path);
                Ok(Listener::Unix(mio::net::UnixListener::from_std(unix), path))
            }
        }
    }
}

impl Drop for PolicyListener {
    fn drop(&mut self) {
        if let PolicyListener::Unix(_, path) = self
            && !path.as_os_str().is_empty()
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

enum Listener {
    Tcp(mio::net::TcpListener),
    Unix(mio::net::UnixListener, PathBuf),
}

impl Listener {
    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Listener::Tcp(l) => l,
            Listener::Unix(l, _) => l,
        }
    }

    fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer) = l.accept()?;
                let _ = s.set_nodelay(true);
                Ok((Stream::Tcp(s), peer.to_string()))
            }
            Listener::Unix(l, path) => {
                let (s, _) = l.accept()?;
                Ok((Stream::Unix(s), format!("unix:{}", path.display())))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// An accepted connection of a daemon (the policy server's and the milter's).
pub enum Stream {
    /// Over TCP.
    Tcp(mio::net::TcpStream),
    /// Over a unix socket.
    Unix(mio::net::UnixStream),
}

impl Stream {
    /// The socket, to register with the poll.
    pub fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One client connection.
struct Conn {
    stream: Stream,
    peer: String,
    reader: RequestReader,
    /// Replies not yet written (the socket was full).
    out: Vec<u8>,
    /// Last byte received or reply sent (the idle clock).
    last_activity: Instant,
    /// When the first byte of the request in progress arrived (the request clock).
    request_started: Option<Instant>,
    /// The reader's incomplete-request bytes as last added to the table's total.
    partial_accounted: usize,
    /// Why the server is closing the connection, when it decided to (counted on removal).
    close_cause: Option<CloseCause>,
    /// The `instance` whose message already got an `X-Greylist` header.
    last_header_instance: Option<String>,
    /// Empty requests (no attribute) received since the last non-empty one.
    empty_in_a_row: u32,
    /// Whether an empty request on this connection was logged already (once is enough).
    empty_logged: bool,
    /// The client closed its side: close once the replies are out.
    eof: bool,
    /// Close now (protocol violation, socket error).
    dead: bool,
}

impl Conn {
    /// Reads until the socket is drained; complete requests go to `pending`. `closing` says
    /// the event reported the peer's end of stream (or an error) as well.
    ///
    /// A read that returns less than the buffer holds has drained the socket: the loop stops
    /// there instead of paying one more `recv` for the `WouldBlock` (one system call per request
    /// saved). Edge-triggered epoll reports every later arrival of data as a new event, so
    /// nothing is missed; only an end of stream already reported by this event needs the read
    /// that returns 0, hence `closing`.
    fn read_ready(
        &mut self,
        token: usize,
        closing: bool,
        pending: &mut Vec<Pending>,
        config: &Config,
        log: &mut Logger,
    ) {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.end_of_stream(token, pending, config, log);
                    return;
                }
                Ok(n) => {
                    self.last_activity = Instant::now();
                    let drained = n < chunk.len() && !closing;
                    self.reader.feed(&chunk[..n]);
                    loop {
                        match self.reader.take_request() {
                            Ok(Some(attrs)) => {
                                if !self.count_empty(&attrs, log) {
                                    return;
                                }
                                pending.push(Pending::new(token, &attrs, config));
                            }
                            Ok(None) => break,
                            Err(err) => {
                                log.error(&format!("closing connection from {}: {err}", self.peer));
                                self.close_cause = Some(CloseCause::BadInput);
                                self.dead = true;
                                return;
                            }
                        }
                    }
                    if drained {
                        return;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    if err.kind() == io::ErrorKind::ConnectionReset && self.reader.in_progress() {
                        log.error(&format!(
                            "closing connection from {}: client reset the connection in the middle of a request",
                            self.peer
                        ));
                    } else if err.kind() != io::ErrorKind::ConnectionReset {
                        log.error(&format!(
                            "closing connection from {}: read error: {err}",
                            self.peer
                        ));
                    }
                    self.dead = true;
                    return;
                }
            }
        }
    }

    /// Counts empty requests: the first on a connection is logged, and after
    /// [`MAX_EMPTY_REQUESTS`] in a row the connection is closed as bad input (false). A flood of
    /// newlines thus costs two log lines, not one per byte.
    fn count_empty(&mut self, attrs: &protocol::Attributes, log: &mut Logger) -> bool {
        if !attrs.is_empty() {
            self.empty_in_a_row = 0;
            return true;
        }
        self.empty_in_a_row += 1;
        if self.empty_in_a_row > MAX_EMPTY_REQUESTS {
            log.error(&format!(
                "closing connection from {}: more than {MAX_EMPTY_REQUESTS} empty requests in a row",
                self.peer
            ));
            self.close_cause = Some(CloseCause::BadInput);
            self.dead = true;
            return false;
        }
        if !self.empty_logged {
            self.empty_logged = true;
            log.info(&format!(
                "action=dunno, reason=empty request (no attributes), peer={}; further empty requests on this connection are answered without a log line",
                self.peer
            ));
        }
        true
    }

    /// The client closed its side. Exim's `${readsocket}` writes one request, half-closes and
    /// reads until the server closes: a request cut off here is answered as if its blank line
    /// had come. Either way the connection is only read no more; it closes once every queued
    /// reply is written (or the peer is gone), never with a reply half sent.
    fn end_of_stream(
        &mut self,
        token: usize,
        pending: &mut Vec<Pending>,
        config: &Config,
        log: &mut Logger,
    ) {
        self.eof = true;
        match self.reader.finish() {
            Ok(Some(attrs)) => {
                log.info(&format!(
                    "request from {} ended by the end of the stream without its empty line: answered as complete",
                    self.peer
                ));
                pending.push(Pending::new(token, &attrs, config));
            }
            Ok(None) => {}
            Err(err) => log.error(&format!("closing connection from {}: {err}", self.peer)),
        }
    }

    /// True when the connection must be closed now: broken, or the client is gone and every
    /// reply is out.
    fn is_finished(&self) -> bool {
        self.dead || self.eof && self.out.is_empty()
    }

    /// Writes queued replies until done or the socket is full.
    fn flush_out(&mut self) {
        let mut written = 0;
        while written < self.out.len() {
            match self.stream.write(&self.out[written..]) {
                Ok(0) => {
                    self.dead = true;
                    break;
                }
                Ok(n) => written += n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
        if written == self.out.len() {
            // Release the buffer with the replies (as the request buffer is released).
            self.out = Vec::new();
        } else {
            self.out.drain(..written);
        }
        if written > 0 {
            self.last_activity = Instant::now();
        }
    }
}

/// A request waiting for the turn's transaction.
struct Pending {
    token: usize,
    instance: Option<String>,
    kind: Parsed,
}

impl Pending {
    fn new(token: usize, attrs: &protocol::Attributes, config: &Config) -> Pending {
        Pending {
            token,
            instance: attrs
                .get("instance")
                .filter(|i| !i.is_empty())
                .map(str::to_string),
            kind: protocol::interpret(attrs, clock::system_now(), config.allow_test_time),
        }
    }
}

/// Runs the server on `listener` until `shutdown` becomes true (the binary sets it on SIGTERM),
/// then stops accepting, finishes the requests in flight and returns. When `reload` becomes true
/// (SIGHUP) it reads the configuration again and reopens the database (see [`reload`]). Logs as
/// `greylisting-policyd` to syslog, or stderr without it.
pub fn run(
    listener: PolicyListener,
    config: Config,
    shutdown: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
) -> Result<(), PolicyError> {
    let logger = Logger::open(IDENT, Fallback::Stderr, &clock::process_env);
    run_with_logger(listener, config, shutdown, reload, logger)
}

/// [`run`] with a caller-provided logger.
pub fn run_with_logger(
    listener: PolicyListener,
    mut config: Config,
    shutdown: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
    mut log: Logger,
) -> Result<(), PolicyError> {
    let address = listener.describe();
    let exposed = listener.reachable_from_other_hosts();
    let io_err = |what: &'static str| {
        let address = address.clone();
        move |cause| PolicyError::Io {
            what,
            address,
            cause,
        }
    };
    let mut listener = Some(listener.into_mio().map_err(io_err("cannot configure"))?);
    let mut poll = Poll::new().map_err(io_err("cannot poll"))?;
    if let Some(l) = listener.as_mut() {
        poll.registry()
            .register(l.source(), LISTENER, Interest::READABLE)
            .map_err(io_err("cannot poll"))?;
    }
    // One write per turn for stderr log lines instead of two per line (syslog is unaffected).
    log.hold_stderr_lines();
    let mut decider = BatchDecider::new(
        config.db.clone(),
        config.synchronous,
        config.db_connections,
        crate::engine::Component::Policyd,
        &mut log,
    );
    log.info(&start_line(&address, &config));
    if exposed {
        log.error(&format!(
            "warning: the policy server on {address} is reachable from other hosts, and the policy protocol has no authentication: anyone who can connect can query decisions and add triplets; listen on loopback (127.0.0.1:10023) or a unix socket, or firewall the port"
        ));
    }
    for note in std::mem::take(&mut config.notes) {
        log.error(&note);
    }
    if let Some(address) = &config.metrics_address {
        log.info(&format!("Serving metrics at http://{address}/metrics"));
    }
    // Whoever started us learns the address (and that we are up) at once.
    log.flush();
    let mut lifecycle = Lifecycle::new(reload);
    let mut events = Events::with_capacity(1024);
    let mut conns = Table::new(Arc::clone(&config.closed));
    let mut next_token = 1usize;
    let mut pending: Vec<Pending> = Vec::new();
    let mut last_sweep = Instant::now();
    let mut stopping_since: Option<Instant> = None;
    // An accept that failed (out of descriptors) is retried every turn: epoll is edge-triggered.
    let mut accept_backlog = false;
    loop {
        lifecycle.tick(&mut config, &mut decider, &mut log);
        if shutdown.load(Ordering::SeqCst) && stopping_since.is_none() {
            if let Some(mut l) = listener.take() {
                let _ = poll.registry().deregister(l.source());
            }
            stopping_since = Some(Instant::now());
            log.info(
                "Stopping greylisting-policyd: no new connections, finishing requests in flight",
            );
        }
        if let Some(since) = stopping_since {
            let grace_over = since.elapsed() > SHUTDOWN_GRACE;
            // Keep only connections with a request still arriving (within the grace) or replies
            // still to write.
            conns.retain(|c| {
                !c.dead && (c.reader.in_progress() && !grace_over || !c.out.is_empty())
            });
            if conns.is_empty() {
                break;
            }
        }
        match poll.poll(&mut events, Some(TICK)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                log.error(&format!("poll failed: {err}"));
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        accept_backlog |= serve_events(&events, &mut conns, &mut pending, &config, &mut log);
        if accept_backlog {
            if let Some(l) = listener.as_mut() {
                accept_backlog =
                    accept_all(l, &mut poll, &mut conns, &mut next_token, &config, &mut log);
            } else {
                accept_backlog = false;
            }
        }
        if !pending.is_empty() {
            answer(&mut pending, &mut conns, &mut decider, &config, &mut log);
        }
        conns.remove_finished();
        if last_sweep.elapsed() >= TICK {
            last_sweep = Instant::now();
            conns.sweep(config.idle_timeout, config.request_timeout, &mut log);
        }
        if let Some(metrics) = &config.metrics {
            metrics.set_connections(conns.len());
        }
        log.flush();
    }
    drop(listener);
    log.info("greylisting-policyd stopped");
    log.flush();
    Ok(())
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
                conn.flush_out();
            }
        }
        let completed = pending.len() > requests_before;
        conns.after_read(token.0, completed, config.partial_request_budget, log);
    }
    accept
}

/// Accepts every waiting connection; returns true when accepting must be retried next turn.
fn accept_all(
    listener: &mut Listener,
    poll: &mut Poll,
    conns: &mut Table,
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
                // Out of file descriptors and the like: log, keep serving, retry next turn.
                log.error(&format!("accept failed: {err}"));
                return true;
            }
        };
        conns.make_room(config.max_connections, log);
        let token = *next_token;
        *next_token = next_token.wrapping_add(1).max(1);
        if let Err(err) = poll.registry().register(
            stream.source(),
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log.error(&format!("cannot watch connection from {peer}: {err}"));
            continue;
        }
        conns.insert(
            token,
            Conn {
                stream,
                peer,
                reader: RequestReader::new(),
                out: Vec::new(),
                last_activity: Instant::now(),
                request_started: None,
                partial_accounted: 0,
                close_cause: None,
                last_header_instance: None,
                empty_in_a_row: 0,
                empty_logged: false,
                eof: false,
                dead: false,
            },
        );
    }
}

/// Decides this turn's requests in one transaction and queues the replies, in request order.
fn answer(
    pending: &mut Vec<Pending>,
    conns: &mut Table,
    decider: &mut BatchDecider,
    config: &Config,
    log: &mut Logger,
) {
    let actions = decide::actions(pending, conns, decider, config, log);
    let mut touched = Vec::new();
    for (request, mut action) in pending.drain(..).zip(actions) {
        let Some(conn) = conns.get_mut(&request.token) else {
            continue;
        };
        // One X-Greylist header per message: Postfix sends every recipient of a message over the
        // same connection with the same `instance`, as postgrey relies on too.
        if action.starts_with("PREPEND ")
            && let Some(instance) = request.instance
        {
            if conn.last_header_instance.as_deref() == Some(instance.as_str()) {
                action = protocol::REPLY_DUNNO.to_string();
            } else {
                conn.last_header_instance = Some(instance);
            }
        }
        conn.out.extend_from_slice(&protocol::reply(&action));
        touched.push(request.token);
    }
    // Only the connections answered this turn; idle ones are not visited.
    for token in touched {
        if let Some(conn) = conns.get_mut(&token)
            && !conn.out.is_empty()
        {
            conn.flush_out();
            // A client that keeps sending but never reads its replies would grow this buffer
            // without bound: drop it instead.
            if conn.out.len() > MAX_UNSENT_REPLIES && !conn.dead {
                log.error(&format!(
                    "closing connection from {}: more than {MAX_UNSENT_REPLIES} bytes of replies not read",
                    conn.peer
                ));
                conn.close_cause = Some(CloseCause::ReplyBacklog);
                conn.dead = true;
            }
        }
    }
}

/// Logs the decision lines of one request and returns its action (`DUNNO` on a store failure).
fn describe_and_act(
    message: &Message,
    now: i64,
    outcome: Result<MessageOutcome, String>,
    config: &Config,
    log: &mut Logger,
) -> String {
    let sender = Shown::text(&message.sender);
    let recipient = Shown::text(message.recipients.first().map_or("", String::as_str));
    let facts = LineFacts {
        client_name: message.client_name.as_deref(),
        client_ip: message.client_ip,
        sender: &sender,
        recipient: &recipient,
    };
    match outcome {
        Ok(outcome) => {
            for recipient in &outcome.recipients {
                if let Some(line) = logline::list_hit_line(&recipient.decision, &facts) {
                    log.info(&line);
                }
                log.info(&logline::decision_line(&recipient.decision, &facts));
            }
            // The date is formatted only for the header, not for every answer.
            let date = if outcome
                .recipients
                .iter()
                .any(|r| r.decision.delay.is_some())
            {
                decide::header_date(now)
            } else {
                String::new()
            };
            protocol::action(&outcome, &config.hostname, &date)
        }
        Err(why) => {
            log.error(&logline::failure_line(&why, &facts));
            protocol::REPLY_DUNNO.to_string()
        }
    }
}
