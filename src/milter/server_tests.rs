//! The milter in-process over loopback, for what needs a hook or a setting the command line does
//! not offer: a panic injected in the decision, a small budget for incomplete packets. The
//! policy server's counterparts are in `src/policyd/server_tests.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::Config;
use crate::daemon::batch::Synchronous;
use crate::daemon::in_process::InProcess;
use crate::daemon::limits::CloseCause;

type Milter = InProcess<Config>;

/// The milter with the test's host name and cheap commits, and what `adjust` changes.
fn start(adjust: impl FnOnce(&mut Config)) -> Milter {
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

/// Connections the running milter closed for `cause`.
fn closed(milter: &Milter, cause: CloseCause) -> u64 {
    milter.config.closed.get(cause)
}

/// One packet: length, command, data (written here from the wire format, not with the codec).
fn packet(code: u8, data: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(data.len() + 1)
        .expect("small packet")
        .to_be_bytes()
        .to_vec();
    out.push(code);
    out.extend_from_slice(data);
    out
}

/// Reads one reply packet: (code, data); `None` when the milter closed the connection.
fn reply(stream: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut data = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut data).ok()?;
    let (&code, rest) = data.split_first()?;
    Some((code, rest.to_vec()))
}

/// Negotiates version 6 offering every step and no-reply bit, then CONNECT from `ip` (no
/// verified name), HELO and MAIL, none of which is answered.
fn open_message(stream: &mut TcpStream, ip: &str) {
    let mut offer = 6u32.to_be_bytes().to_vec();
    offer.extend(0x1ffu32.to_be_bytes());
    offer.extend(0x1f_ffffu32.to_be_bytes());
    stream.write_all(&packet(b'O', &offer)).expect("send");
    assert_eq!(reply(stream).map(|r| r.0), Some(b'O'));
    let connect = format!("[{ip}]\x004\x09\x1d{ip}\0");
    stream
        .write_all(&packet(b'C', connect.as_bytes()))
        .expect("send");
    stream
        .write_all(&packet(b'H', b"client.example\0"))
        .expect("send");
    stream
        .write_all(&packet(b'M', b"<s@example.org>\0"))
        .expect("send");
}

/// Sends RCPT and returns its reply.
fn rcpt(stream: &mut TcpStream, recipient: &str) -> Option<(u8, Vec<u8>)> {
    let data = format!("<{recipient}>\0");
    stream.write_all(&packet(b'R', data.as_bytes())).ok()?;
    reply(stream)
}

const CONTINUE: Option<(u8, Vec<u8>)> = Some((b'c', Vec::new()));

fn deferred(reply: Option<(u8, Vec<u8>)>) -> bool {
    reply.is_some_and(|(code, text)| {
        code == b'y' && text.starts_with(b"451 4.7.1 Service unavailable")
    })
}

// A panic while deciding (here inside the store transaction, after its writes) lets the
// recipient pass; the milter lives on, on the same connection and on new ones, and the store
// is usable at once.
#[test]
fn a_panic_while_deciding_passes_the_recipient_and_the_milter_serves_on() {
    let milter = start(|_| {});
    let mut mta = milter.connect();
    open_message(&mut mta, "192.0.2.1");
    let panicking = crate::daemon::batch::PANIC_RECIPIENT;
    assert_eq!(rcpt(&mut mta, panicking), CONTINUE);
    assert!(deferred(rcpt(&mut mta, "u@example.com")));
    assert_eq!(rcpt(&mut mta, panicking), CONTINUE);
    let mut other = milter.connect();
    open_message(&mut other, "192.0.2.3");
    assert!(deferred(rcpt(&mut other, "u@example.com")));
}

/// Opens a session and sends the first `bytes` bytes of a macro packet announced at 64,000
/// bytes (one macro, its value `h…`), then waits a little so the milter has read them before
/// the next client sends. Macro values are the one place a packet that large is accepted.
fn send_partial(stream: &mut TcpStream, bytes: usize) {
    open_message(stream, "192.0.2.9");
    let mut text = 64_000u32.to_be_bytes().to_vec();
    text.extend_from_slice(b"DH{x}\0");
    text.resize(bytes, b'h');
    stream.write_all(&text).expect("send");
    std::thread::sleep(Duration::from_millis(300));
}

/// True when the milter closed the connection (end of stream or reset) within 30 s.
fn closed_by_milter(stream: &mut TcpStream) -> bool {
    let mut chunk = [0u8; 256];
    match stream.read(&mut chunk) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

// Incomplete packets hold at most the budget in all: past it, the connection holding the
// largest is closed (counted as evicted); the others complete their packets and go on.
#[test]
fn incomplete_packets_are_bounded_in_all() {
    let milter = start(|c| {
        c.partial_packet_budget = 200 * 1024;
        // Only the budget may close a connection here.
        c.request_timeout = Duration::from_secs(600);
    });
    let sizes = [20 * 1024, 60 * 1024, 30 * 1024, 40 * 1024, 52 * 1024];
    let mut clients: Vec<TcpStream> = sizes
        .iter()
        .map(|&size| {
            let mut stream = milter.connect();
            send_partial(&mut stream, size);
            stream
        })
        .collect();
    // 20 + 60 + 30 + 40 KiB fit; the fifth passes 200 KiB: the 60 KiB one goes.
    assert!(closed_by_milter(&mut clients[1]));
    let started = Instant::now();
    while closed(&milter, CloseCause::Evicted) == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(closed(&milter, CloseCause::Evicted), 1);
    for (i, client) in clients.iter_mut().enumerate().filter(|(i, _)| *i != 1) {
        // The rest of the macro value (its NUL last), then a recipient.
        let mut rest = vec![b'h'; 64_000 + 4 - sizes[i] - 1];
        rest.push(0);
        client.write_all(&rest).expect("send");
        assert!(
            deferred(rcpt(client, &format!("u{i}@example.com"))),
            "client {i} holding {} bytes",
            sizes[i]
        );
    }
    assert_eq!(closed(&milter, CloseCause::BadInput), 0);
    assert_eq!(milter.config.partial_total.get(), 0);
}
