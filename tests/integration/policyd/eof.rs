//! `greylisting-policyd` and a client that half-closes after its request, as Exim's
//! `${readsocket}` does: it writes the request, shuts down its sending side and reads until the
//! server closes. The real binary on loopback.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use crate::policyd::server::{DEFER, DUNNO, Server, request};

/// Connects, sends `bytes`, half-closes, and reads until the server closes; returns the replies'
/// first lines and any bytes after the last complete reply. Panics when the server does not
/// close within the read timeout (Exim would hang until its own timeout).
fn half_close_exchange(server: &Server, bytes: &[u8]) -> (Vec<String>, Vec<u8>) {
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut received = Vec::new();
    if let Err(err) = stream.read_to_end(&mut received) {
        panic!("server did not close the connection: {err}");
    }
    let mut replies = Vec::new();
    let mut rest = &received[..];
    while let Some(end) = rest.windows(2).position(|w| w == b"\n\n") {
        replies.push(String::from_utf8(rest[..end].to_vec()).unwrap());
        rest = &rest[end + 2..];
    }
    (replies, rest.to_vec())
}

fn exim_request(ip: &str) -> String {
    request(ip, "unknown", "a=b@sender.example", "u@local.example", &[])
}

// A request completed before the half-close is answered, then the connection is closed (Exim
// reads until the end of the stream, so a server that kept it open would hang the SMTP session).
#[test]
fn half_close_after_a_complete_request_is_answered_then_closed() {
    let server = Server::start(&[]);
    let (replies, rest) = half_close_exchange(&server, exim_request("192.0.2.21").as_bytes());
    assert_eq!(replies, [DEFER]);
    assert_eq!(rest, b"");
}

// A request cut off by the end of the stream before its empty line is answered as if the empty
// line had come, and logged; also without the last newline. An unfinished line that is no
// attribute is still a client cut off: closed without an answer, logged.
#[test]
fn end_of_stream_without_the_empty_line_is_answered_and_logged() {
    let server = Server::start(&[]);
    let full = exim_request("192.0.2.22");
    for cut in [&full[..full.len() - 1], &full[..full.len() - 2]] {
        let (replies, rest) = half_close_exchange(&server, cut.as_bytes());
        assert_eq!(replies, [DEFER], "{cut:?}");
        assert_eq!(rest, b"");
    }
    server.wait_log("without its empty line: answered as complete");
    assert!(
        server
            .log_lines()
            .iter()
            .any(|l| l.contains("action=defer, reason=new")
                && l.contains("sender=a=b@sender.example")),
        "{:#?}",
        server.log_lines()
    );

    let (replies, rest) = half_close_exchange(&server, b"request=smtpd_access_policy\nsend");
    assert!(
        replies.is_empty() && rest.is_empty(),
        "{replies:?} {rest:?}"
    );
    server.wait_log("client disconnected in the middle of a request");
}

// Every queued reply is written before the close, also when the client reads nothing until it
// has sent everything (the replies pile up beyond the socket buffers) and its last request is cut
// off by the end of the stream.
#[test]
fn every_pipelined_reply_is_flushed_before_the_close() {
    const REQUESTS: usize = 20_000;
    let server = Server::start(&[]);
    let mut bytes = "request=smtpd_access_policy\n\n"
        .repeat(REQUESTS)
        .into_bytes();
    let last = exim_request("192.0.2.23");
    bytes.extend_from_slice(&last.as_bytes()[..last.len() - 1]);
    let (replies, rest) = half_close_exchange(&server, &bytes);
    assert_eq!(replies.len(), REQUESTS + 1);
    assert!(replies[..REQUESTS].iter().all(|r| r == DUNNO));
    assert_eq!(replies[REQUESTS], DEFER);
    assert_eq!(rest, b"");
}
