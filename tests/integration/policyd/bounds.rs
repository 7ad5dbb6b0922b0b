//! `greylisting-policyd` on a real server's terms: a slow or greedy local client cannot lock the
//! others out (request timeout, eviction of the idlest connection), line bounds do not depend on
//! how the bytes are segmented, and no request data can crash the server. The real binary over
//! loopback; incomplete-request budget and injected panics are tested in-process in
//! `src/policyd/server_tests.rs`.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::policyd::server::{Client, DEFER, DUNNO, Server, cli, request};

/// A policy request without the attributes needed for a decision: answered DUNNO.
const EMPTY: &str = "request=smtpd_access_policy\n\n";

fn raw(server: &Server) -> TcpStream {
    let stream = TcpStream::connect(&server.addr).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

// A client that trickles a byte every 0.2 s (far inside the idle timeout) is disconnected once
// its request has taken --request-timeout from its first byte, and logged; a connection idle
// between requests is not touched by that timeout.
#[test]
fn trickling_client_is_closed_after_the_request_timeout() {
    let server = Server::start(&["--request-timeout", "2"]);
    let mut between_requests = server.connect();
    assert_eq!(between_requests.ask(EMPTY), DUNNO);
    let mut stream = raw(&server);
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(b"request=smtpd_access_policy\nsender=")
        .unwrap();
    // How the close showed, for the failure message: a close too early has another cause.
    let (closed_after, seen) = loop {
        if let Err(e) = stream.write_all(b"a") {
            break (started.elapsed(), format!("write failed: {e}"));
        }
        let mut chunk = [0u8; 64];
        match stream.read(&mut chunk) {
            Ok(0) => break (started.elapsed(), "end of stream".to_string()),
            Ok(n) => panic!(
                "unexpected reply {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => break (started.elapsed(), format!("read failed: {e}")),
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "trickling client never closed"
        );
    };
    assert!(
        closed_after >= Duration::from_secs(2) && closed_after < Duration::from_secs(6),
        "closed after {closed_after:?} ({seen}); server log: {:?}",
        server.log_lines()
    );
    server.wait_log("request not complete within 2 s of its first byte");
    assert_eq!(between_requests.ask(EMPTY), DUNNO);
}

// At --max-connections a new client is admitted and answered; the connection idle longest is
// closed (and logged) to make room, the others keep being served.
#[test]
fn at_max_connections_the_idlest_connection_makes_room() {
    let server = Server::start(&["--max-connections", "4"]);
    let mut held: Vec<Client> = Vec::new();
    for _ in 0..4 {
        let mut client = server.connect();
        assert_eq!(client.ask(EMPTY), DUNNO);
        held.push(client);
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut fifth = server.connect();
    assert_eq!(
        fifth.ask(&request(
            "192.0.2.5",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
    assert!(held[0].is_closed_by_server());
    server.wait_log("the longest idle of 4 connections (max 4), to admit a new one");
    for client in &mut held[1..] {
        assert_eq!(client.ask(EMPTY), DUNNO);
    }
}

// A client that went away in the same turn as a newcomer arrived holds no place at
// --max-connections: nobody is closed for the newcomer, the remaining client keeps its
// connection. The server is stopped while both happen, so it sees them in one turn.
#[test]
fn at_max_connections_a_client_that_just_left_frees_its_place() {
    let server = Server::start(&["--max-connections", "2"]);
    let mut kept = server.connect();
    assert_eq!(kept.ask(EMPTY), DUNNO);
    std::thread::sleep(Duration::from_millis(50));
    let mut leaving = server.connect();
    assert_eq!(leaving.ask(EMPTY), DUNNO);
    server.signal(libc::SIGSTOP);
    drop(leaving);
    let mut newcomer = server.connect();
    std::thread::sleep(Duration::from_millis(300));
    server.signal(libc::SIGCONT);
    assert_eq!(newcomer.ask(EMPTY), DUNNO);
    assert_eq!(kept.ask(EMPTY), DUNNO);
    let evictions = server.log_lines_with("to admit a new one");
    assert!(evictions.is_empty(), "{evictions:#?}");
}

/// Sends a request whose `ccert_subject` line is `line_len` bytes without its line end, with
/// the CR and the LF of that line in separate writes; the reply, `None` if the server closed.
fn ask_with_split_crlf(server: &Server, line_len: usize) -> Option<String> {
    let mut stream = raw(server);
    stream
        .write_all(b"request=smtpd_access_policy\r\nclient_address=192.0.2.8\r\n")
        .unwrap();
    let mut line = b"ccert_subject=".to_vec();
    line.resize(line_len, b'a');
    line.push(b'\r');
    stream.write_all(&line).unwrap();
    // Let the server read the CR on its own before the LF arrives.
    std::thread::sleep(Duration::from_millis(300));
    let _ = stream.write_all(b"\nrecipient=u@local.example\r\nsender=s@b.example\r\n\r\n");
    let mut client = Client::over(Box::new(stream));
    client.reply()
}

// The 8 KiB line bound counts the line without its CRLF, however the CR and LF are segmented.
#[test]
fn line_bound_does_not_depend_on_where_the_crlf_is_split() {
    let server = Server::start(&[]);
    assert_eq!(ask_with_split_crlf(&server, 8192).as_deref(), Some(DEFER));
    assert_eq!(ask_with_split_crlf(&server, 8193), None);
    server.wait_log("line longer than 8192 bytes");
}

// postgrey's policy_test_time (with --allow-test-time) may be any number: a date after year 9999
// (which crashed the date formatting of the X-Greylist header) or the ends of the integer range
// are answered, and the server serves on.
#[test]
fn extreme_test_times_are_answered_and_the_server_serves_on() {
    let server = Server::start(&["--allow-test-time"]);
    cli(&server.db, &["-u", "-grey-interval", "5"]);
    let mut c = server.connect();
    let ask = |c: &mut Client, ip: &str, t: &str| {
        c.ask(&request(
            ip,
            "unknown",
            "a@b.example",
            "u@local.example",
            &[("policy_test_time", t)],
        ))
    };
    let year_10000 = 253_402_300_800_i64;
    assert_eq!(ask(&mut c, "192.0.2.10", &year_10000.to_string()), DEFER);
    let header = ask(&mut c, "192.0.2.10", &(year_10000 + 600).to_string());
    assert!(
        header.starts_with(
            "action=PREPEND X-Greylist: delayed 600 seconds by grey_listing at mx.test; "
        ) && header.contains(" 10000 "),
        "{header}"
    );
    for (ip, time) in [
        ("192.0.2.11", i64::MAX.to_string()),
        ("192.0.2.12", i64::MIN.to_string()),
        ("192.0.2.13", "99999999999999999999999".to_string()),
        ("192.0.2.14", "-1".to_string()),
    ] {
        assert_eq!(ask(&mut c, ip, &time), DEFER, "{time}");
        let again = ask(&mut c, ip, &time);
        assert!(again.starts_with("action="), "{time}: {again}");
    }
    let mut fresh = server.connect();
    assert_eq!(
        fresh.ask(&request(
            "192.0.2.20",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
}

// A client that resets its connection in the middle of a request is logged.
#[test]
fn reset_in_the_middle_of_a_request_is_logged() {
    let server = Server::start(&[]);
    let stream = raw(&server);
    (&stream)
        .write_all(b"request=smtpd_access_policy\nclient_address=192.0.2.1\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    crate::support::daemon::close_with_reset(stream);
    server.wait_log("client reset the connection in the middle of a request");
    assert_eq!(server.connect().ask(EMPTY), DUNNO);
}

// A client that pipelines requests and never reads the replies is closed once more than the
// server's bound (64 KiB) of replies waits for it, with a log line, rather than making the
// server buffer without limit.
#[test]
fn a_client_that_never_reads_its_replies_is_closed() {
    let server = Server::start(&[]);
    // The smallest receive window: the replies stay on the server's side.
    let mut stream = crate::support::daemon::connect_small_window(&server.addr);
    let one = request(
        "198.51.100.7",
        "mx.example.org",
        "s@example.org",
        "u@local.example",
        &[],
    );
    let burst = one.repeat(1_000);
    // Far more replies than the bound and the sockets' buffers hold; the writes fail once the
    // server has closed the connection.
    for _ in 0..1_000 {
        if stream.write_all(burst.as_bytes()).is_err() {
            break;
        }
    }
    let line = server.wait_log("bytes of replies not read");
    assert!(
        line.contains(&format!(
            "closing connection from {}",
            stream.local_addr().unwrap()
        )),
        "{line}"
    );
    // The server goes on answering others.
    assert_eq!(server.connect().ask(EMPTY), DUNNO);
    // One line for the connection, not one per request answered in the turn that closed it.
    let lines = server.log_lines_with("bytes of replies not read");
    assert_eq!(lines.len(), 1, "{lines:#?}");
}
