//! `greylisting-policyd` stopping (SIGTERM) while clients are busy, and the peers its log lines
//! name.

use std::net::TcpStream;
use std::time::Duration;

use crate::policyd::server::{Client, DEFER, DUNNO, Server, request};
use crate::support::daemon::fill_with_unread_replies;
use crate::support::{Backend, Test};

/// A request that arrived whole while the server was deciding others, and was not read yet
/// when SIGTERM came, is answered: its client is waiting for that answer.
#[test]
fn sigterm_answers_a_request_that_arrived_unread() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let mut server = Server::start_on(db.to_str().unwrap(), "127.0.0.1:0", &[]);
    let mut first = server.connect();
    let ask = |ip: &str, rcpt: &str| request(ip, "unknown", "a@b.example", rcpt, &[]);
    assert_eq!(
        first.ask(&ask("192.0.2.1", "u@local.example")).as_str(),
        DEFER
    );
    let mut second = server.connect();
    // A lock on the database holds the server in its next decision (for less than its busy
    // timeout), so that the second request arrives while it reads nothing.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    first
        .send(ask("192.0.2.1", "v@local.example").as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    second
        .send(ask("192.0.2.2", "w@local.example").as_bytes())
        .unwrap();
    server.terminate();
    std::thread::sleep(Duration::from_millis(500));
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(first.reply().as_deref(), Some(DEFER));
    server.wait_log("Stopping greylisting-policyd");
    assert_eq!(
        second.reply().as_deref(),
        Some(DEFER),
        "the request sent before the stop is answered"
    );
    drop((first, second));
    assert_eq!(server.wait_exit(), Some(0));
}

/// SIGTERM waits at most the grace (10 s) for work in progress: a client that never reads its
/// replies is closed then, with a log line, and the server exits, where it used to be kept
/// until the idle timeout (330 s).
#[test]
fn sigterm_does_not_wait_past_the_grace_for_a_client_that_never_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    // A unix socket: its buffers do not grow, so a few batches of replies fill them (a
    // TCP socket's may grow past the server's own bound on unread replies).
    let listen = format!("unix:{}", dir.path().join("p.sock").display());
    let mut server = Server::start_on(db.to_str().unwrap(), &listen, &[]);
    let stream =
        std::os::unix::net::UnixStream::connect(listen.strip_prefix("unix:").unwrap()).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let mut client = Client::over(Box::new(stream));
    // Batches of 150 replies of 68 bytes, each batch's last logged once it is handled.
    const BATCH: usize = 150;
    fill_with_unread_replies(fd, |i| {
        let requests: String = (0..BATCH)
            .map(|j| {
                let rcpt = format!("u{i}_{j}@local.example");
                request("192.0.2.1", "unknown", "a@b.example", &rcpt, &[])
            })
            .collect();
        client.send(requests.as_bytes()).unwrap();
        server.wait_log(&format!("recipient=u{i}_{}@local.example", BATCH - 1));
    });
    server.terminate();
    // `wait_exit` allows 60 s, six times the grace.
    assert_eq!(server.wait_exit(), Some(0));
    server.wait_log("closing 1 connection still open 10 s after SIGTERM");
    drop(client);
}

/// Sends an empty request over `stream`; returns the line naming its peer.
fn empty_request(server: &Server, stream: Box<dyn crate::policyd::server::ReadWrite>) -> String {
    let mut client = Client::over(stream);
    client.send(b"\n").unwrap();
    assert_eq!(client.reply().as_deref(), Some(DUNNO));
    server.wait_log("reason=empty request (no attributes), peer=")
}

/// Log lines name a TCP peer by its address and port (IPv6 in brackets) and a unix socket's by
/// `unix:` and the socket's path, exactly.
#[test]
fn log_lines_name_tcp_ipv6_and_unix_peers() {
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let store = Test::on(Backend::Sqlite);
        let server = Server::start_on(&store.location(), listen, &[]);
        let stream = TcpStream::connect(&server.addr).unwrap();
        let peer = stream.local_addr().unwrap().to_string();
        let line = empty_request(&server, Box::new(stream));
        assert!(line.contains(&format!("peer={peer};")), "{line}");
    }
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("unix:{}", dir.path().join("p.sock").display());
    let db = dir.path().join("g.db");
    let server = Server::start_on(db.to_str().unwrap(), &listen, &[]);
    let stream = std::os::unix::net::UnixStream::connect(dir.path().join("p.sock")).unwrap();
    let line = empty_request(&server, Box::new(stream));
    assert!(line.contains(&format!("peer={listen};")), "{line}");
}
