//! `greylisting-policyd`: the Postfix policy delegation server (SPEC §6).
//!
//! Design: one thread accepts connections (TCP or a unix socket), one small thread serves each
//! connection (blocking reads with a short timeout tick, so idle timeouts and SIGTERM are noticed),
//! and ONE writer thread owns the database: it decides the requests that queued up meanwhile in a
//! single write transaction (group commit) and answers each request after that commit. Settings
//! and lists are read at the start of every transaction, so CLI changes apply to the next request.
//! Any database failure answers `DUNNO` (mail passes) and is logged.

pub mod protocol;
mod writer;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::TimeZone;
use thiserror::Error;

use crate::clock;
use crate::engine::MessageOutcome;
use crate::logging::{Fallback, Logger};
use crate::store::DbLocation;

use protocol::{Parsed, ProtocolError, ReadControl, RequestReader};
use writer::Job;

/// The syslog ident of the server.
pub const IDENT: &str = "greylisting-policyd";
/// Default listen address: postgrey's port, loopback only (SPEC §6).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:10023";
/// Default idle timeout, longer than Postfix's 300 s `smtpd_policy_service_max_idle`.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(330);
/// Default bound on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// How often a blocked connection thread wakes to check the idle clock and shutdown.
const TICK: Duration = Duration::from_millis(500);
/// How long a request already in progress may still take to arrive after SIGTERM.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Stack of a connection thread: buffers live on the heap, so a small stack suffices and
/// thousands of idle connections stay cheap.
const CONNECTION_STACK: usize = 256 * 1024;

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
    /// Bound on open connections; more are closed at once and logged.
    pub max_connections: usize,
    /// Honour postgrey's `policy_test_time` attribute.
    pub allow_test_time: bool,
    /// Host name used in the `X-Greylist` header.
    pub hostname: String,
    /// Durability of commits.
    pub synchronous: Synchronous,
}

impl Config {
    /// Defaults of SPEC §6 for a database.
    pub fn new(db: DbLocation) -> Config {
        Config {
            db,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            allow_test_time: false,
            hostname: local_hostname(),
            synchronous: Synchronous::Full,
        }
    }
}

/// The machine's host name (for the header), `localhost` if it cannot be read.
pub fn local_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    match std::str::from_utf8(&buf[..end]) {
        Ok(name) if !name.is_empty() => name.to_string(),
        _ => "localhost".to_string(),
    }
}

/// Raises the soft limit of open files to the hard limit, so `--max-connections` can be reached.
/// Failing to raise it is harmless (accept errors are logged and retried).
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a struct we own.
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
    /// Binds `host:port` or `unix:/path` (a stale socket file at the path is replaced).
    pub fn bind(listen: &str) -> Result<PolicyListener, PolicyError> {
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
            if std::fs::symlink_metadata(&path).is_ok_and(|m| {
                use std::os::unix::fs::FileTypeExt;
                m.file_type().is_socket()
            }) {
                let _ = std::fs::remove_file(&path);
            }
            let listener = UnixListener::bind(&path).map_err(|e| io_err("cannot listen on", e))?;
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

    fn raw_fd(&self) -> i32 {
        match self {
            PolicyListener::Tcp(l) => l.as_raw_fd(),
            PolicyListener::Unix(l, _) => l.as_raw_fd(),
        }
    }

    fn set_nonblocking(&self) -> io::Result<()> {
        match self {
            PolicyListener::Tcp(l) => l.set_nonblocking(true),
            PolicyListener::Unix(l, _) => l.set_nonblocking(true),
        }
    }

    fn accept(&self) -> io::Result<(Connection, String)> {
        match self {
            PolicyListener::Tcp(l) => {
                let (s, peer) = l.accept()?;
                s.set_nonblocking(false)?;
                let _ = s.set_nodelay(true);
                Ok((Connection::Tcp(s), peer.to_string()))
            }
            PolicyListener::Unix(l, path) => {
                let (s, _) = l.accept()?;
                s.set_nonblocking(false)?;
                Ok((Connection::Unix(s), format!("unix:{}", path.display())))
            }
        }
    }
}

impl Drop for PolicyListener {
    fn drop(&mut self) {
        if let PolicyListener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

enum Connection {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Connection {
    fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s.set_read_timeout(Some(timeout)),
            Connection::Unix(s) => s.set_read_timeout(Some(timeout)),
        }
    }

    fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s.set_write_timeout(Some(timeout)),
            Connection::Unix(s) => s.set_write_timeout(Some(timeout)),
        }
    }

    fn close(&self) {
        let _ = match self {
            Connection::Tcp(s) => s.shutdown(Shutdown::Both),
            Connection::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.read(buf),
            Connection::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(s) => s.write(buf),
            Connection::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Tcp(s) => s.flush(),
            Connection::Unix(s) => s.flush(),
        }
    }
}

/// The logger shared by all threads (a line is written under the lock).
#[derive(Clone)]
pub struct SharedLogger(Arc<Mutex<Logger>>);

impl SharedLogger {
    /// Wraps a logger.
    pub fn new(logger: Logger) -> SharedLogger {
        SharedLogger(Arc::new(Mutex::new(logger)))
    }

    /// Logs an informational line.
    pub fn info(&self, line: &str) {
        if let Ok(mut logger) = self.0.lock() {
            logger.info(line);
        }
    }

    /// Logs an error line.
    pub fn error(&self, line: &str) {
        if let Ok(mut logger) = self.0.lock() {
            logger.error(line);
        }
    }
}

struct Shared {
    config: Config,
    log: SharedLogger,
    shutdown: Arc<AtomicBool>,
    active: AtomicUsize,
}

/// Runs the server on `listener` until `shutdown` becomes true (the binary sets it on SIGTERM),
/// then stops accepting, finishes the requests in flight and returns. Logs as
/// `greylisting-policyd` to syslog, or stderr without it.
pub fn run(
    listener: PolicyListener,
    config: Config,
    shutdown: Arc<AtomicBool>,
) -> Result<(), PolicyError> {
    let logger = Logger::open(IDENT, Fallback::Stderr, &clock::process_env);
    run_with_logger(listener, config, shutdown, SharedLogger::new(logger))
}

/// [`run`] with a caller-provided logger.
pub fn run_with_logger(
    listener: PolicyListener,
    config: Config,
    shutdown: Arc<AtomicBool>,
    log: SharedLogger,
) -> Result<(), PolicyError> {
    let address = listener.describe();
    listener
        .set_nonblocking()
        .map_err(|cause| PolicyError::Io {
            what: "cannot configure",
            address: address.clone(),
            cause,
        })?;
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>();
    let writer = {
        let db = config.db.clone();
        let synchronous = config.synchronous;
        let log = log.clone();
        std::thread::Builder::new()
            .name("db-writer".to_string())
            .spawn(move || writer::run_writer(db, synchronous, jobs_rx, log))
            .map_err(|cause| PolicyError::Io {
                what: "cannot start the database writer for",
                address: address.clone(),
                cause,
            })?
    };
    log.info(&format!(
        "Starting greylisting-policyd: listening on {address}, database {}, max connections {}, idle timeout {} s{}",
        config.db,
        config.max_connections,
        config.idle_timeout.as_secs(),
        if config.allow_test_time {
            ", policy_test_time honoured"
        } else {
            ""
        }
    ));
    let shared = Arc::new(Shared {
        config,
        log: log.clone(),
        shutdown,
        active: AtomicUsize::new(0),
    });
    accept_loop(&listener, &shared, &jobs_tx);
    drop(listener);
    log.info("Stopping greylisting-policyd: no new connections, finishing requests in flight");
    // Connection threads notice the shutdown within one tick once their request is answered.
    while shared.active.load(Ordering::SeqCst) > 0 {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(jobs_tx);
    let _ = writer.join();
    log.info("greylisting-policyd stopped");
    Ok(())
}

fn accept_loop(listener: &PolicyListener, shared: &Arc<Shared>, jobs: &Sender<Job>) {
    let fd = listener.raw_fd();
    while !shared.shutdown.load(Ordering::SeqCst) {
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd we own; the timeout bounds how late a shutdown is noticed.
        let ready = unsafe { libc::poll(&mut poll, 1, TICK.as_millis() as i32) };
        if ready <= 0 {
            continue;
        }
        let (connection, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => {
                // Out of file descriptors and the like: log, breathe, keep serving.
                shared.log.error(&format!("accept failed: {err}"));
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let active = shared.active.load(Ordering::SeqCst);
        if active >= shared.config.max_connections {
            shared.log.error(&format!(
                "too many connections ({active}, max {}): closing connection from {peer}",
                shared.config.max_connections
            ));
            connection.close();
            continue;
        }
        shared.active.fetch_add(1, Ordering::SeqCst);
        let thread_shared = Arc::clone(shared);
        let thread_jobs = jobs.clone();
        let spawned = std::thread::Builder::new()
            .name("policy-conn".to_string())
            .stack_size(CONNECTION_STACK)
            .spawn(move || {
                serve_connection(connection, &peer, &thread_shared, &thread_jobs);
                thread_shared.active.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            shared.active.fetch_sub(1, Ordering::SeqCst);
            shared
                .log
                .error(&format!("cannot start a connection thread: {err}"));
        }
    }
}

struct Control<'a> {
    shared: &'a Shared,
    last_byte: Instant,
    shutdown_seen: Option<Instant>,
}

impl ReadControl for Control<'_> {
    fn on_tick(&mut self, in_progress: bool) -> Result<(), ProtocolError> {
        if self.shared.shutdown.load(Ordering::SeqCst) {
            let since = *self.shutdown_seen.get_or_insert_with(Instant::now);
            if !in_progress || since.elapsed() > SHUTDOWN_GRACE {
                return Err(ProtocolError::Shutdown);
            }
        }
        if self.last_byte.elapsed() >= self.shared.config.idle_timeout {
            return Err(ProtocolError::IdleTimeout);
        }
        Ok(())
    }

    fn on_bytes(&mut self) {
        self.last_byte = Instant::now();
    }
}

fn serve_connection(mut connection: Connection, peer: &str, shared: &Shared, jobs: &Sender<Job>) {
    let tick = TICK.min(shared.config.idle_timeout);
    if connection.set_read_timeout(tick).is_err()
        || connection
            .set_write_timeout(Duration::from_secs(30))
            .is_err()
    {
        return;
    }
    let mut reader = RequestReader::new();
    let mut control = Control {
        shared,
        last_byte: Instant::now(),
        shutdown_seen: None,
    };
    let (reply_tx, reply_rx) = mpsc::channel();
    loop {
        let attrs = match reader.next_request(&mut connection, &mut control) {
            Ok(Some(attrs)) => attrs,
            Ok(None) | Err(ProtocolError::Shutdown) => break,
            Err(ProtocolError::IdleTimeout) => {
                shared.log.info(&format!(
                    "closing idle connection from {peer} after {} s",
                    shared.config.idle_timeout.as_secs()
                ));
                break;
            }
            Err(err) => {
                shared
                    .log
                    .error(&format!("closing connection from {peer}: {err}"));
                break;
            }
        };
        let action = decide(&attrs, peer, shared, jobs, &reply_tx, &reply_rx);
        if connection.write_all(&protocol::reply(&action)).is_err() {
            break;
        }
        control.last_byte = Instant::now();
        if shared.shutdown.load(Ordering::SeqCst) && !reader.in_progress() {
            break;
        }
    }
    connection.close();
}

type Reply = Result<MessageOutcome, String>;

fn decide(
    attrs: &protocol::Attributes,
    peer: &str,
    shared: &Shared,
    jobs: &Sender<Job>,
    reply_tx: &Sender<Reply>,
    reply_rx: &mpsc::Receiver<Reply>,
) -> String {
    let (message, now) =
        match protocol::interpret(attrs, clock::system_now(), shared.config.allow_test_time) {
            Parsed::Check { message, now } => (message, now),
            Parsed::Ignore(why) => {
                shared
                    .log
                    .info(&format!("action=dunno, reason={why}, peer={peer}"));
                return protocol::REPLY_DUNNO.to_string();
            }
        };
    let describe = |verdict: &str, reason: &str| {
        format!(
            "action={verdict}, reason={reason}, client_name={}, client_address={}, sender={}, recipient={}",
            message.client_name.as_deref().unwrap_or("unknown"),
            message
                .client_ip
                .map_or_else(String::new, |ip| ip.to_string()),
            protocol::clip(&message.sender),
            protocol::clip(message.recipients.first().map_or("", String::as_str)),
        )
    };
    let job = Job {
        message: message.clone(),
        now,
        reply: reply_tx.clone(),
    };
    let outcome = if jobs.send(job).is_ok() {
        reply_rx
            .recv()
            .unwrap_or_else(|_| Err("database writer stopped".to_string()))
    } else {
        Err("database writer stopped".to_string())
    };
    match outcome {
        Ok(outcome) => {
            for recipient in &outcome.recipients {
                let decision = &recipient.decision;
                if let (Some(list_type), Some(pattern)) =
                    (decision.reason.list_type(), &decision.pattern)
                {
                    let from = match decision.reason {
                        crate::decision::Reason::WhiteHost | crate::decision::Reason::BlackHost => {
                            message.client_name.as_deref().unwrap_or("unknown")
                        }
                        _ => message.sender.as_str(),
                    };
                    shared.log.info(&format!(
                        "list type: {list_type}, from: {}, match string: {pattern}",
                        protocol::clip(from)
                    ));
                }
                shared.log.info(&describe(
                    decision.verdict.as_str(),
                    decision.reason.as_str(),
                ));
            }
            protocol::action(&outcome, &shared.config.hostname, &header_date(now))
        }
        Err(why) => {
            shared
                .log
                .error(&describe("pass", &format!("error: {why}")));
            protocol::REPLY_DUNNO.to_string()
        }
    }
}

/// RFC 2822 date of `now` in local time, as mail headers carry it.
fn header_date(now: i64) -> String {
    match chrono::Local.timestamp_opt(now, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.to_rfc2822(),
        chrono::LocalResult::None => chrono::DateTime::<chrono::Utc>::from_timestamp(now, 0)
            .map_or_else(|| now.to_string(), |t| t.to_rfc2822()),
    }
}
