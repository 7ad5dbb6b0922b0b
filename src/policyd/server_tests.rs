//! The server in-process over loopback, for what needs a hook or a setting the command line does
//! not offer: a panic injected in the decision, a small budget for incomplete requests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::Config;
use crate::daemon::batch::Synchronous;
use crate::daemon::in_process::InProcess;
use crate::daemon::limits::CloseCause;

type Server = InProcess<Config>;

/// The server with the test's host name and cheap commits, and what `adjust` changes.
fn start(adjust: impl FnOnce(&mut Config)) -> Server {
    InProcess::start(
        |db| {
            let mut config = Config::new(db);
            config.hostname = "mx.test".to_string();
            config.synchronous = Synchronous::Normal;
            adjust(&mut config);
            config
        },
        super::run_with_logger,
    )
}

/// Connections the running server closed for `cause`.
fn closed(server: &Server, cause: CloseCause) -> u64 {
    server.config.closed.get(cause)
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
    let server = start(|_| {});
    let mut client = server.connect();
    let panicking = request("192.0.2.1", crate::daemon::batch::PANIC_RECIPIENT);
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
    let server = start(|c| c.partial_request_budget = 200 * 1024);
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
    while closed(&server, CloseCause::Evicted) == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(closed(&server, CloseCause::Evicted), 1);
    for (i, client) in clients.iter_mut().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(
            ask(client, "\n").as_deref(),
            Some(DUNNO),
            "client {i} holding {} bytes",
            sizes[i]
        );
    }
    assert_eq!(closed(&server, CloseCause::BadInput), 0);
}
