//! `greylisting-policyd` over loopback (DESIGN.md §6): the real binary, a real database (SQLite, and
//! PostgreSQL for the `postgres` variants), real sockets. Time is driven with `policy_test_time`
//! (`--allow-test-time`), so nothing sleeps for a grey interval.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::support::daemon::{DaemonChild, DaemonLog};
use crate::support::{Backend, Test};

pub(crate) const DEFER: &str = "action=DEFER_IF_PERMIT 4.7.1 Service unavailable - try again later";
pub(crate) const REJECT: &str = "action=REJECT 5.7.1 Command rejected";
pub(crate) const DUNNO: &str = "action=DUNNO";

/// A running policy server and its collected log lines.
pub(crate) struct Server {
    child: DaemonChild,
    /// Where it listens (`host:port` or `unix:/path`).
    pub addr: String,
    log: DaemonLog,
    /// The database location given with `--db` (a SQLite path or a PostgreSQL URL).
    pub db: String,
    _store: Option<Test>,
}

fn policyd_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("greylisting-policyd")
}

/// Runs the `grey_listing` CLI on a database location; panics unless it succeeds.
pub(crate) fn cli(db: &str, args: &[&str]) {
    let out = Command::new(assert_cmd::cargo::cargo_bin("grey_listing"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "grey_listing {args:?}: {out:?}");
}

impl Server {
    /// Starts the server on a fresh SQLite database in a temporary directory.
    pub(crate) fn start(extra: &[&str]) -> Server {
        Server::start_in(Backend::Sqlite, extra)
    }

    /// Starts the server on a fresh database of `backend` (issue 7: one suite, both stores).
    pub(crate) fn start_in(backend: Backend, extra: &[&str]) -> Server {
        let store = Test::on(backend);
        let mut server = Server::start_on(&store.location(), "127.0.0.1:0", extra);
        server._store = Some(store);
        server
    }

    /// Starts the server on a fresh SQLite database with extra environment variables (the
    /// resolver: `GREY_LISTING_RESOLVER`).
    pub(crate) fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let store = Test::on(Backend::Sqlite);
        let mut server = Server::start_on_env(&store.location(), "127.0.0.1:0", extra, env);
        server._store = Some(store);
        server
    }

    /// Starts the server on the database location `db`, listening on `listen`.
    pub(crate) fn start_on(db: &str, listen: &str, extra: &[&str]) -> Server {
        Server::start_on_env(db, listen, extra, &[])
    }

    /// [`Server::start_on`] with extra environment variables.
    pub(crate) fn start_on_env(
        db: &str,
        listen: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        let child = Command::new(policyd_bin())
            .arg("--listen")
            .arg(listen)
            .arg("--db")
            .arg(db)
            .arg("--hostname")
            .arg("mx.test")
            .args(extra)
            .env("GREY_LISTING_LOG", "stderr")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = DaemonChild::new(child, "server");
        let (addr, log) = child.listening();
        Server {
            child,
            addr,
            log,
            db: db.to_string(),
            _store: None,
        }
    }

    /// A new client connection.
    pub(crate) fn connect(&self) -> Client {
        let stream: Box<dyn ReadWrite> = match self.addr.strip_prefix("unix:") {
            Some(path) => Box::new(UnixStream::connect(path).unwrap()),
            None => Box::new(TcpStream::connect(&self.addr).unwrap()),
        };
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Waits (bounded) until a log line containing `needle` appears; returns it.
    pub(crate) fn wait_log(&self, needle: &str) -> String {
        self.log.wait_for(needle)
    }

    /// Every log line collected so far.
    pub(crate) fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    /// The log lines collected so far that contain `needle`.
    pub(crate) fn log_lines_with(&self, needle: &str) -> Vec<String> {
        self.log.lines_with(needle)
    }

    /// Sends SIGTERM.
    pub(crate) fn terminate(&self) {
        self.child.signal(libc::SIGTERM);
    }

    /// Sends a signal.
    pub(crate) fn signal(&self, signal: i32) {
        self.child.signal(signal);
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub(crate) fn wait_exit(&mut self) -> Option<i32> {
        self.child.wait_exit()
    }
}

/// Read + Write for TCP and unix streams alike.
pub(crate) trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

/// One client connection.
pub(crate) struct Client {
    stream: Box<dyn ReadWrite>,
    buf: Vec<u8>,
}

impl Client {
    /// A client on an already connected stream.
    pub(crate) fn over(stream: Box<dyn ReadWrite>) -> Client {
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends raw bytes.
    pub(crate) fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one reply (up to its blank line) and returns its first line; `None` on EOF.
    pub(crate) fn reply(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let reply = String::from_utf8(self.buf[..end].to_vec()).unwrap();
                self.buf.drain(..end + 2);
                return Some(reply);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a request and returns its reply, `None` when the connection failed or closed (or
    /// a read timeout set on the stream expired).
    #[cfg(feature = "postgres")]
    pub(crate) fn send_and_reply(&mut self, request: &str) -> Option<String> {
        self.send(request.as_bytes()).ok()?;
        self.reply()
    }

    /// Sends a request and returns its reply.
    pub(crate) fn ask(&mut self, request: &str) -> String {
        self.send(request.as_bytes()).unwrap();
        self.reply().expect("connection closed instead of a reply")
    }

    /// True when the server closed the connection (EOF or reset), waiting at most 60 s.
    pub(crate) fn is_closed_by_server(&mut self) -> bool {
        let started = Instant::now();
        loop {
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) | Ok(_) => {
                    if started.elapsed() > Duration::from_secs(60) {
                        return false;
                    }
                }
            }
        }
    }
}

/// A complete policy request (Postfix's attribute names).
pub(crate) fn request(
    ip: &str,
    name: &str,
    sender: &str,
    rcpt: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut r = format!(
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n\
         client_address={ip}\nclient_name={name}\nreverse_client_name={name}\n\
         helo_name={name}\nsender={sender}\nrecipient={rcpt}\nsasl_username=\n"
    );
    for (k, v) in extra {
        r.push_str(&format!("{k}={v}\n"));
    }
    r.push('\n');
    r
}

fn at(t: i64) -> String {
    t.to_string()
}

pub(crate) const T0: i64 = 1_700_000_000;

// DESIGN.md §4 step 6 and §6: new → defer, early retry → defer, retry after the grey interval → PREPEND
// X-Greylist with the delay, later → DUNNO; many requests on one connection.
fn triplet_lifecycle_with_test_time(backend: Backend) {
    let server = Server::start_in(backend, &["--allow-test-time"]);
    cli(&server.db, &["-u", "-grey-interval", "5"]);
    let mut c = server.connect();
    let ask = |c: &mut Client, t: i64| {
        c.ask(&request(
            "198.51.100.7",
            "mx1.sender.example",
            "Alice@Sender.Example",
            "u@local.example",
            &[("policy_test_time", &at(t))],
        ))
    };
    assert_eq!(ask(&mut c, T0), DEFER);
    assert_eq!(ask(&mut c, T0 + 60), DEFER);
    let header = ask(&mut c, T0 + 400);
    assert!(
        header.starts_with(
            "action=PREPEND X-Greylist: delayed 400 seconds by grey_listing at mx.test; "
        ),
        "{header}"
    );
    // RFC 2822 date of the decision time.
    let date = header.rsplit("; ").next().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc2822(date)
            .unwrap()
            .timestamp()
            == T0 + 400,
        "{date}"
    );
    assert_eq!(ask(&mut c, T0 + 500), DUNNO);
    server.wait_log("action=defer, reason=new, client_name=mx1.sender.example, client_address=198.51.100.7, sender=Alice@Sender.Example, recipient=u@local.example");
    // The filter's format: postgrey's `(<n>s missing)` and the first pass's `delay=`.
    server.wait_log("action=defer, reason=early-retry (240s missing), client_name=mx1.sender.example, client_address=198.51.100.7, sender=Alice@Sender.Example, recipient=u@local.example");
    server.wait_log("action=pass, reason=triplet found, delay=400, client_name=mx1.sender.example, client_address=198.51.100.7, sender=Alice@Sender.Example, recipient=u@local.example");
}

// DESIGN.md §4 (client key = /24): a retry from a neighbour in the same /24 passes.
fn neighbour_in_same_network_passes(backend: Backend) {
    let server = Server::start_in(backend, &["--allow-test-time"]);
    let mut c = server.connect();
    let r = |ip: &str, t: i64| {
        request(
            ip,
            "unknown",
            "a@s.example",
            "u@local.example",
            &[("policy_test_time", &at(t))],
        )
    };
    assert_eq!(c.ask(&r("203.0.113.10", T0)), DEFER);
    assert!(
        c.ask(&r("203.0.113.99", T0 + 600))
            .starts_with("action=PREPEND X-Greylist: delayed 600 seconds")
    );
    // Another /24 is a new client.
    assert_eq!(c.ask(&r("203.0.114.10", T0 + 600)), DEFER);
}

// DESIGN.md §4: without --allow-test-time, policy_test_time is ignored (the real clock decides).
fn test_time_is_ignored_without_the_flag(backend: Backend) {
    let server = Server::start_in(backend, &[]);
    let mut c = server.connect();
    let r = |t: i64| {
        request(
            "198.51.100.7",
            "unknown",
            "a@s.example",
            "u@local.example",
            &[("policy_test_time", &at(t))],
        )
    };
    assert_eq!(c.ask(&r(T0)), DEFER);
    // A day "later" by the attribute, but the real clock says seconds: still an early retry.
    assert_eq!(c.ask(&r(T0 + 86_400)), DEFER);
    server.wait_log("reason=early-retry");
}

// DESIGN.md §4 steps 2–4: authenticated (sasl_username), white/black host patterns, sender white list.
fn list_and_authentication_rules(backend: Backend) {
    let server = Server::start_in(backend, &[]);
    cli(&server.db, &["-u", "-whitelist", "add:*@friend.example"]);
    let mut c = server.connect();
    // Default black host pattern dsl|broadband|hsd.
    assert_eq!(
        c.ask(&request(
            "192.0.2.1",
            "host1.dsl.isp.example",
            "x@y.example",
            "u@local.example",
            &[]
        )),
        REJECT
    );
    server
        .wait_log("list type: black, from: host1.dsl.isp.example, match string: dsl|broadband|hsd");
    // White host beats black host (*google.com).
    assert_eq!(
        c.ask(&request(
            "192.0.2.2",
            "dsl.google.com",
            "x@y.example",
            "u@local.example",
            &[]
        )),
        DUNNO
    );
    assert_eq!(
        c.ask(&request(
            "192.0.2.3",
            "unknown",
            "x@y.example",
            "u@local.example",
            &[("sasl_username", "bob")]
        )),
        DUNNO
    );
    server.wait_log("reason=authenticated");
    assert_eq!(
        c.ask(&request(
            "192.0.2.4",
            "unknown",
            "pal@friend.example",
            "u@local.example",
            &[]
        )),
        DUNNO
    );
    server.wait_log("reason=server white list");
    assert_eq!(
        c.ask(&request(
            "192.0.2.5",
            "unknown",
            "pal@stranger.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
}

// Issue 5: settings changed with the CLI take effect on the next request, no restart.
fn cli_changes_apply_to_the_next_request(backend: Backend) {
    let server = Server::start_in(backend, &[]);
    let mut c = server.connect();
    let r = |sender: &str| request("198.51.100.20", "unknown", sender, "u@local.example", &[]);
    assert_eq!(c.ask(&r("a@one.example")), DEFER);
    cli(&server.db, &["-u", "-status", "off"]);
    assert_eq!(c.ask(&r("a@two.example")), DUNNO);
    server.wait_log("reason=disabled");
    cli(
        &server.db,
        &["-u", "-status", "on", "-blacklist", "add:*@three.example"],
    );
    assert_eq!(c.ask(&r("a@three.example")), REJECT);
    cli(&server.db, &["-ud", "local.example", "-status", "off"]);
    assert_eq!(c.ask(&r("a@four.example")), DUNNO);
}

// DESIGN.md §6: incomplete requests, another request type and an unparseable client_address get
// DUNNO and the connection stays usable (an unparseable address kills postgrey 1.37).
#[test]
fn bad_requests_get_dunno_and_the_server_keeps_serving() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    assert_eq!(c.ask("request=smtpd_access_policy\n\n"), DUNNO);
    assert_eq!(
        c.ask("request=junk_policy\nclient_address=192.0.2.1\n\n"),
        DUNNO
    );
    assert_eq!(
        c.ask("request=smtpd_access_policy\nclient_address=192.0.2.1\nsender=a@b.example\n\n"),
        DUNNO
    );
    for bad in ["999.1.2.3", "not an address", "192.0.2.1.5", "::ffff:zz"] {
        assert_eq!(
            c.ask(&request(
                bad,
                "unknown",
                "a@b.example",
                "u@local.example",
                &[]
            )),
            DUNNO
        );
    }
    server.wait_log("unparseable client_address=999.1.2.3");
    server.wait_log("is not smtpd_access_policy");
    // Same connection, a real request still works.
    assert_eq!(
        c.ask(&request(
            "192.0.2.9",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
}

// DESIGN.md §6: a line over 8 KiB (here 1 MiB) closes the connection with a log line; the server
// keeps serving other clients.
#[test]
fn one_mebibyte_line_closes_the_connection() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let mut line = b"request=".to_vec();
    line.extend(std::iter::repeat_n(b'x', 1024 * 1024));
    line.extend(b"\n\n");
    // The server may close before reading everything: a write error is fine.
    let _ = c.send(&line);
    assert!(c.is_closed_by_server());
    server.wait_log("line longer than 8192 bytes");
    let mut other = server.connect();
    assert_eq!(
        other.ask(&request(
            "192.0.2.9",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
}

// DESIGN.md §6: a request over 64 KiB of short lines closes the connection.
#[test]
fn oversized_request_closes_the_connection() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let mut req = String::new();
    for i in 0..2000 {
        req.push_str(&format!("attribute_{i}={}\n", "v".repeat(40)));
    }
    let _ = c.send(req.as_bytes());
    assert!(c.is_closed_by_server());
    server.wait_log("request larger than 65536 bytes");
}

// DESIGN.md §6: binary garbage closes the connection with a log line; the server survives.
#[test]
fn binary_garbage_closes_the_connection() {
    let server = Server::start(&[]);
    let mut garbage = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..4096 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        garbage.push((x >> 16) as u8);
    }
    garbage.extend(b"\n\n");
    let mut c = server.connect();
    let _ = c.send(&garbage);
    assert!(c.is_closed_by_server());
    server.wait_log("closing connection from");
    let mut other = server.connect();
    assert_eq!(other.ask("request=smtpd_access_policy\n\n"), DUNNO);
}

// DESIGN.md §6: a client that disconnects mid-request is logged; nothing else happens.
#[test]
fn disconnect_mid_request_is_logged() {
    let server = Server::start(&[]);
    {
        let mut c = server.connect();
        c.send(b"request=smtpd_access_policy\nclient_address=192.0.2.1\nsend")
            .unwrap();
    }
    server.wait_log("client disconnected in the middle of a request");
    let mut other = server.connect();
    assert_eq!(other.ask("request=smtpd_access_policy\n\n"), DUNNO);
}

fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into `limit`, a live local of exactly that type, and
    // setrlimit only reads `wanted` or `limit`; neither keeps the pointer.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        // 1,000 client sockets plus the harness: root may raise the hard limit too.
        let wanted = libc::rlimit {
            rlim_cur: limit.rlim_max.max(4096),
            rlim_max: limit.rlim_max.max(4096),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) != 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

// DESIGN.md §6: 1,000 idle connections held open do not stop a new client being answered, and idle
// connections are closed after --idle-timeout.
#[test]
fn thousand_idle_connections_and_idle_timeout() {
    raise_fd_limit();
    let server = Server::start(&["--idle-timeout", "3"]);
    let mut idle: Vec<Client> = (0..1000).map(|_| server.connect()).collect();
    let mut fresh = server.connect();
    assert_eq!(
        fresh.ask(&request(
            "192.0.2.77",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
    // The idle ones are closed by the server once the idle timeout passes.
    assert!(idle[0].is_closed_by_server());
    assert!(idle[999].is_closed_by_server());
    server.wait_log("closing idle connection from");
    idle.clear();
}

// DESIGN.md §6: --listen unix:/path serves the same protocol.
#[test]
fn unix_socket_listener() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("g.db");
    let sock = dir.path().join("policy.sock");
    let listen = format!("unix:{}", sock.display());
    let server = Server::start_on(db.to_str().unwrap(), &listen, &[]);
    assert_eq!(server.addr, listen);
    let mut c = server.connect();
    assert_eq!(
        c.ask(&request(
            "192.0.2.1",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
}

/// How many triplet records the store at `db` holds (through the store API, so it works on
/// both stores).
pub(crate) fn triplet_count(db: &str) -> usize {
    crate::support::stored_triplets(db).len()
}

/// The triplet records the store at `db` holds, live or not (through the store API).
pub(crate) fn live_triplets(db: &str) -> Vec<grey_listing::store::Triplet> {
    let mut store = grey_listing::store::open(&grey_listing::store::DbLocation::parse(db)).unwrap();
    let mut found = Vec::new();
    store
        .read(&mut |tx| {
            found = tx
                .live_triplets(i64::MIN)?
                .into_iter()
                .map(|live| live.triplet)
                .collect();
            Ok(())
        })
        .unwrap();
    found
}

// Issue 5: many concurrent clients; every answered decision is stored (group commit).
fn concurrent_clients_all_decisions_stored(backend: Backend) {
    let server = Server::start_in(backend, &["--allow-test-time"]);
    let addr = server.addr.clone();
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut c = Client {
                    stream: Box::new(TcpStream::connect(&addr).unwrap()),
                    buf: Vec::new(),
                };
                for i in 0..25 {
                    let reply = c.ask(&request(
                        &format!("10.{t}.{i}.1"),
                        "unknown",
                        &format!("s{i}@t{t}.example"),
                        "u@local.example",
                        &[("policy_test_time", &at(T0))],
                    ));
                    assert_eq!(reply, DEFER);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(triplet_count(&server.db), 500);
}

// DESIGN.md §6: SIGTERM stops accepting, finishes the request in flight (its decision stored), exit 0.
fn sigterm_finishes_requests_in_flight_and_exits_zero(backend: Backend) {
    let mut server = Server::start_in(backend, &[]);
    let mut c = server.connect();
    assert_eq!(
        c.ask(&request(
            "192.0.2.1",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
    let full = request(
        "192.0.2.2",
        "unknown",
        "a@b.example",
        "v@local.example",
        &[],
    );
    let (head, tail) = full.split_at(40);
    c.send(head.as_bytes()).unwrap();
    // Let the server read the first half before the signal.
    std::thread::sleep(Duration::from_millis(300));
    server.terminate();
    server.wait_log("Stopping greylisting-policyd");
    // New connections are refused once the listener is closed.
    assert!(TcpStream::connect(&server.addr).is_err());
    c.send(tail.as_bytes()).unwrap();
    assert_eq!(c.reply().as_deref(), Some(DEFER));
    assert_eq!(server.wait_exit(), Some(0));
    assert_eq!(triplet_count(&server.db), 2);
}

// DESIGN.md §4: the mail path fails open — a database that cannot be opened answers DUNNO and logs.
#[test]
fn unusable_database_fails_open() {
    let dir = TempDir::new().unwrap();
    // A regular file where the database's directory should be.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let db = blocker.join("greylist.db");
    let server = Server::start_on(db.to_str().unwrap(), "127.0.0.1:0", &[]);
    let mut c = server.connect();
    assert_eq!(
        c.ask(&request(
            "192.0.2.1",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DUNNO
    );
    server.wait_log("cannot open the database, mail passes");
    server.wait_log("action=pass, reason=error:");
}

// DESIGN.md §6 (PREPEND on a triplet's first pass), like postgrey: one X-Greylist header per message —
// the second recipient of the same `instance` gets DUNNO, a new message gets its header again.
fn one_header_per_message_instance(backend: Backend) {
    let server = Server::start_in(backend, &["--allow-test-time"]);
    let mut c = server.connect();
    let r = |rcpt: &str, instance: &str, t: i64| {
        request(
            "198.51.100.40",
            "unknown",
            "a@s.example",
            rcpt,
            &[("instance", instance), ("policy_test_time", &at(t))],
        )
    };
    for rcpt in ["u@local.example", "v@local.example", "w@local.example"] {
        assert_eq!(c.ask(&r(rcpt, "1a.1", T0)), DEFER);
    }
    assert!(
        c.ask(&r("u@local.example", "2b.2", T0 + 400))
            .starts_with("action=PREPEND X-Greylist:")
    );
    assert_eq!(c.ask(&r("v@local.example", "2b.2", T0 + 400)), DUNNO);
    assert!(
        c.ask(&r("w@local.example", "3c.3", T0 + 400))
            .starts_with("action=PREPEND X-Greylist:")
    );
}

// DESIGN.md §6 (`--listen host:port` or `unix:/path`): anything else is refused before serving.
#[test]
fn bad_listen_address_is_refused() {
    let dir = TempDir::new().unwrap();
    assert_cmd::Command::new(policyd_bin())
        .args(["--listen", "nonsense", "--db"])
        .arg(dir.path().join("g.db"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "invalid listen address \"nonsense\" (expected host:port or unix:/path)",
        ));
    assert_cmd::Command::new(policyd_bin())
        .args(["--max-connections", "0"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--max-connections"));
}

on_both_stores!(
    triplet_lifecycle_with_test_time,
    neighbour_in_same_network_passes,
    test_time_is_ignored_without_the_flag,
    list_and_authentication_rules,
    cli_changes_apply_to_the_next_request,
    concurrent_clients_all_decisions_stored,
    sigterm_finishes_requests_in_flight_and_exits_zero,
    one_header_per_message_instance,
);
