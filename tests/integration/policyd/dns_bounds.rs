//! What a request waiting for DNS may hold: the requests a client sends behind it are bounded,
//! and the limit on connections does not close its connection before it is answered. The real
//! binary, the DNS stub, loopback.

use std::time::Duration;

use crate::dns_stub::{DnsStub, Reply};
use crate::policyd::dns::{ALL, from, server_with, wait_query};
use crate::policyd::server::{DEFER, DUNNO};

const EMPTY: &str = "request=smtpd_access_policy\n\n";

// A client that pipelines requests behind one waiting for a list that does not answer cannot
// queue them without bound (Postfix and Exim wait for each reply): past 64 the connection is
// closed with one log line, and other clients are served meanwhile.
#[test]
fn requests_piling_up_behind_a_lookup_close_the_connection() {
    let stub = DnsStub::start();
    stub.set("7.100.51.198.wl.test", Reply::Hang);
    let server = server_with(&stub.addr().to_string(), &ALL, &[]);
    let mut piling = server.connect();
    let requests: String = (0..200)
        .map(|i| from("198.51.100.7", "unknown", &format!("s{i}@sender.example")))
        .collect();
    let _ = piling.send(requests.as_bytes());
    assert!(piling.is_closed_by_server());
    server.wait_log("more than 64 requests sent while one waits for DNS");
    let lines = server.log_lines_with("requests sent while one waits for DNS");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let mut other = server.connect();
    assert_eq!(other.ask(EMPTY), DUNNO);
}

// At --max-connections the connection idle longest makes room, unless it is owed a reply: a
// request waiting for DNS keeps its connection, and another one is closed instead.
#[test]
fn eviction_spares_a_connection_whose_request_waits_for_dns() {
    let stub = DnsStub::start();
    stub.set("7.100.51.198.wl.test", Reply::Hang);
    let server = server_with(&stub.addr().to_string(), &ALL, &["--max-connections", "2"]);
    let mut waiting = server.connect();
    waiting
        .send(from("198.51.100.7", "unknown", "a@sender.example").as_bytes())
        .unwrap();
    wait_query(&stub, "7.100.51.198.wl.test");
    std::thread::sleep(Duration::from_millis(50));
    let mut idle = server.connect();
    assert_eq!(idle.ask(EMPTY), DUNNO);
    let mut newcomer = server.connect();
    assert_eq!(newcomer.ask(EMPTY), DUNNO);
    assert!(idle.is_closed_by_server(), "the other connection made room");
    // The list never answers: after its 1.5 s budget the client counts as not listed.
    assert_eq!(waiting.reply().as_deref(), Some(DEFER));
}
