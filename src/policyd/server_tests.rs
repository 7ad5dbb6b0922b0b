//! The server in-process over loopback, for what needs a hook or a setting the command line does
//! not offer: a panic injected in the decision, a small budget for incomplete requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::connections::CloseCause;
use super::{Config, Synchronous};
use crate::daemon::{Listener, Signals};
use crate::logging::{Fallback, Logger};
use crate::store::DbLocation;

struct Server {
    addr: String,
    config: Config,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(adjust: impl FnOnce(&mut Config)) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::new(DbLocation::Sqlite(dir.path().join("g.db")));
        config.hostname = "mx.test".to_string();
        config.synchronous = Synchronous::Normal;
        adjust(&mut config);
        let listener = Listener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.describe();
        let shutdown = Arc::new(AtomicBool::new(false));
        let (run_config, run_shutdown) = (config.clone(), Arc::clone(&shutdown));
        let thread = std::thread::spawn(move || {
            let log = Logger::stderr(Fallback::Stderr);
            let signals = Signals {
                shutdown: run_shutdown,
                reload: Arc::new(AtomicBool::new(false)),
            };
            super::run_with_logger(listener, run_config, signals, log).expect("server ran");
        });
        Server {
            addr,
            config,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream
    }

    fn closed(&self, cause: CloseCause) -> u64 {
        self.config.closed.get(cause)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn request(ip: &str, recipient: &str) -> String {
    format!(
        "request=smtpd_access_policy\nclient_address={ip}\nclient_name=unknown\n\
         sender=s@example.org\nrecipient={recipient}\n\n"
    )
}

/// Sends `text` and reads one reply (up to its blank line); `None` when the server closed.
fn ask(stream: &mut TcpStream, text: &str) -> Option<String> {
    stream.write_all(text.as_bytes()).ok()?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\n\n") {
        match stream.read(&mut byte) {
            Ok(1) => reply.push(byte[0]),
            _ => return None,
        }
    }
    Some(String::from_utf8_lossy(&reply).trim_end().to_string())
}

/// True when the server closed the connection (end of stream or reset) within 30 s.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 256];
    match stream.read(&mut chunk) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

const DEFER: &str = "action=DEFER_IF_PERMIT 4.7.1 Service unavailable - try again later";
const DUNNO: &str = "action=DUNNO";

// A panic while deciding (here inside the store transaction, after its writes) answers the
// batch DUNNO; the server lives on, on the same connection, and the store is usable at once.
#[test]
fn a_panic_while_deciding_answers_dunno_and_the_server_serves_on() {
    let server = Server::start(|_| {});
    let mut client = server.connect();
    let panicking = request("192.0.2.1", super::batch::PANIC_RECIPIENT);
    assert_eq!(ask(&mut client, &panicking).as_deref(), Some(DUNNO));
    assert_eq!(
        ask(&mut client, &request("192.0.2.2", "u@example.com")).as_deref(),
        Some(DEFER)
    );
    assert_eq!(ask(&mut client, &panicking).as_deref(), Some(DUNNO));
    let mut other = server.connect();
    assert_eq!(
        ask(&mut other, &request("192.0.2.3", "u@example.com")).as_deref(),
        Some(DEFER)
    );
}

/// Sends an incomplete request of about `bytes` bytes (4,000-byte attribute lines, no blank
/// line), then waits a little so the server has read it before the next client sends.
fn send_partial(stream: &mut TcpStream, bytes: usize) {
    let mut text = Vec::new();
    let mut i = 0;
    while text.len() < bytes {
        text.extend(format!("a{i}=").bytes());
        text.extend(std::iter::repeat_n(b'v', 4000));
        text.push(b'\n');
        i += 1;
    }
    stream.write_all(&text).expect("send");
    std::thread::sleep(Duration::from_millis(300));
}

// Incomplete requests hold at most the budget in all: past it, the connection holding the
// largest is closed (counted as evicted); the others complete their requests and are answered.
#[test]
fn incomplete_requests_are_bounded_in_all() {
    let server = Server::start(|c| c.partial_request_budget = 200 * 1024);
    let sizes = [20 * 1024, 60 * 1024, 30 * 1024, 40 * 1024, 52 * 1024];
    let mut clients: Vec<TcpStream> = sizes
        .iter()
        .map(|&size| {
            let mut stream = server.connect();
            send_partial(&mut stream, size);
            stream
        })
        .collect();
    // 20 + 60 + 30 + 40 KiB (plus line overhead) fit; the fifth passes 200 KiB: the 60 KiB one
    // goes.
    assert!(closed_by_server(&mut clients[1]));
    let started = Instant::now();
    while server.closed(CloseCause::Evicted) == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.closed(CloseCause::Evicted), 1);
    for (i, client) in clients.iter_mut().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(
            ask(client, "\n").as_deref(),
            Some(DUNNO),
            "client {i} holding {} bytes",
            sizes[i]
        );
    }
    assert_eq!(server.closed(CloseCause::BadInput), 0);
}
