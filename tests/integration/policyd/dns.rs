//! Selective greylisting through the real `greylisting-policyd` with a stub DNS server as its
//! resolver: DNSWL passes, trusted and suspicious clients, the answer cache, and the event loop
//! while a list does not answer (other connections served, one connection's replies in order, a
//! dead resolver, no database lock held, SIGHUP).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::dns_stub::{DnsStub, Reply, addresses};
use crate::policyd::lifecycle::{Daemon, path_str};
use crate::policyd::server::{DEFER, DUNNO, REJECT, Server, cli, live_triplets, request};

/// Selective greylisting with one DNSWL and one DNSBL zone.
const SUSPICIOUS: [&str; 7] = [
    "-u",
    "-greylist-clients",
    "suspicious",
    "-dnswl-zones",
    "add:wl.test",
    "-dnsbl-zones",
    "add:bl.test",
];
/// Plesk's mode (every client greylisted) with the same zones: only the DNSWL zone is asked.
pub(crate) const ALL: [&str; 5] = [
    "-u",
    "-dnswl-zones",
    "add:wl.test",
    "-dnsbl-zones",
    "add:bl.test",
];

/// The budget of one request is 1.5 s; several times that is a hang, not a slow machine.
const BOUND: Duration = Duration::from_secs(6);

/// A server asking `resolver`, configured with `settings`.
fn server_at(resolver: &str, settings: &[&str]) -> Server {
    server_with(resolver, settings, &[])
}

/// [`server_at`] with extra command-line arguments.
pub(crate) fn server_with(resolver: &str, settings: &[&str], extra: &[&str]) -> Server {
    let server = Server::start_with_env(extra, &[("GREY_LISTING_RESOLVER", resolver)]);
    cli(&server.db, settings);
    server
}

fn serve(stub: &DnsStub, settings: &[&str]) -> Server {
    server_at(&stub.addr().to_string(), settings)
}

fn listed(stub: &DnsStub, name: &str, answer: &str) {
    stub.set(name, Reply::Addresses(addresses(&[answer])));
}

/// A request from `ip` named `name` (`unknown`: Postfix found no verified name).
pub(crate) fn from(ip: &str, name: &str, sender: &str) -> String {
    request(ip, name, sender, "u@local.example", &[])
}

/// Waits (bounded) until the stub was asked `name`.
pub(crate) fn wait_query(stub: &DnsStub, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while stub.queries(name) == 0 {
        assert!(Instant::now() < deadline, "{name} was never asked");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `request` on a new connection and, in a thread, reports its reply on `arrived` with
/// `label` and how long it took.
fn ask_in_thread(
    server: &Server,
    request: String,
    label: &'static str,
    arrived: &mpsc::Sender<(&'static str, String, Duration)>,
) -> std::thread::JoinHandle<()> {
    let mut client = server.connect();
    let arrived = arrived.clone();
    std::thread::spawn(move || {
        let started = Instant::now();
        let reply = client.ask(&request);
        let _ = arrived.send((label, reply, started.elapsed()));
    })
}

// Step 4a: a client on the DNSWL passes in both modes (a DUNNO, logged with the zone), writes
// no triplet; in `all` mode the DNSBL zone is never asked.
#[test]
fn dnswl_passes_in_both_modes() {
    let stub = DnsStub::start();
    listed(&stub, "7.100.51.198.wl.test", "127.0.0.2");
    for (settings, dnsbl_asked) in [(&ALL[..], 0), (&SUSPICIOUS[..], 1)] {
        let server = serve(&stub, settings);
        let before = stub.queries("7.100.51.198.bl.test");
        let mut c = server.connect();
        let reply = c.ask(&from(
            "198.51.100.7",
            "mx.sender.example",
            "a@sender.example",
        ));
        assert_eq!(reply, DUNNO, "{settings:?}");
        server.wait_log("action=pass, reason=dnswl wl.test, client_name=mx.sender.example");
        assert_eq!(crate::policyd::server::triplet_count(&server.db), 0);
        assert_eq!(
            stub.queries("7.100.51.198.bl.test") - before,
            dnsbl_asked,
            "{settings:?}"
        );
    }
}

// Step 4b in suspicious mode: a verified name that does not embed the address, on no DNSBL, is
// trusted; Postfix's `unknown`, an embedding name and a DNSBL listing are greylisted. Spamhaus's
// error code 127.255.255.254 is no listing. In `all` mode the trusted client is greylisted.
#[test]
fn trusted_and_suspicious_clients() {
    let stub = DnsStub::start();
    listed(&stub, "9.2.0.192.bl.test", "127.0.0.2");
    listed(&stub, "10.2.0.192.bl.test", "127.255.255.254");
    let server = serve(&stub, &SUSPICIOUS);
    let mut c = server.connect();
    let cases = [
        ("198.51.100.7", "mx.sender.example", DUNNO),
        ("198.51.100.8", "unknown", DEFER),
        ("203.0.113.8", "c-203-0-113-8.dyn.isp.example", DEFER),
        ("192.0.2.9", "mx.listed.example", DEFER),
        ("192.0.2.10", "mx.error.example", DUNNO),
    ];
    for (ip, name, expected) in cases {
        let reply = c.ask(&from(ip, name, &format!("a@{ip}.example")));
        assert_eq!(reply, expected, "{ip} {name}");
    }
    server.wait_log("action=pass, reason=trusted client, client_name=mx.sender.example, client_address=198.51.100.7");
    server.wait_log("action=defer, reason=new, client_name=unknown, client_address=198.51.100.8");
    server.wait_log("action=defer, reason=new, client_name=c-203-0-113-8.dyn.isp.example");
    server.wait_log("action=defer, reason=new, client_name=mx.listed.example");
    server.wait_log("action=pass, reason=trusted client, client_name=mx.error.example");
    // No name or an embedding one is suspicious already: the DNSBL is not asked for them.
    assert_eq!(stub.queries("8.100.51.198.bl.test"), 0);
    assert_eq!(stub.queries("8.113.0.203.bl.test"), 0);
    assert_eq!(stub.queries("9.2.0.192.bl.test"), 1);
    assert!(
        server
            .log_lines()
            .iter()
            .all(|l| !l.contains("dns: no answer")),
        "every zone answered"
    );
    let server = serve(&stub, &ALL);
    let reply = server.connect().ask(&from(
        "198.51.100.7",
        "mx.sender.example",
        "a@sender.example",
    ));
    assert_eq!(reply, DEFER);
}

// The answers are cached in the database: the second request from the client asks nothing.
#[test]
fn second_request_from_a_client_asks_nothing() {
    let stub = DnsStub::start();
    let server = serve(&stub, &SUSPICIOUS);
    let mut c = server.connect();
    let r = |rcpt: &str| {
        request(
            "198.51.100.7",
            "mx.sender.example",
            "a@s.example",
            rcpt,
            &[],
        )
    };
    assert_eq!(c.ask(&r("u@local.example")), DUNNO);
    assert_eq!(stub.total_queries(), 2, "both zones asked once");
    // On another connection too: the cache is the store's, not the connection's.
    assert_eq!(server.connect().ask(&r("v@local.example")), DUNNO);
    assert_eq!(stub.total_queries(), 2, "the second request asks nothing");
}

// While a list does not answer for one connection's client, other connections are answered: one
// that needs no DNS (a server white list sender) and one whose lists answer at once. The hanging
// one is decided when the budget is over, as not listed, with a log line.
#[test]
fn other_connections_are_served_while_a_lookup_hangs() {
    let stub = DnsStub::start();
    stub.set("7.100.51.198.wl.test", Reply::Hang);
    listed(&stub, "8.100.51.198.wl.test", "127.0.0.2");
    let server = serve(&stub, &ALL);
    cli(&server.db, &["-u", "-whitelist", "add:*@friend.example"]);
    let (arrived, order) = mpsc::channel();
    let a = ask_in_thread(
        &server,
        from("198.51.100.7", "unknown", "a@sender.example"),
        "A",
        &arrived,
    );
    wait_query(&stub, "7.100.51.198.wl.test");
    let b = ask_in_thread(
        &server,
        from("198.51.100.9", "unknown", "pal@friend.example"),
        "B",
        &arrived,
    );
    let c = ask_in_thread(
        &server,
        from("198.51.100.8", "unknown", "a@sender.example"),
        "C",
        &arrived,
    );
    for thread in [a, b, c] {
        thread.join().unwrap();
    }
    drop(arrived);
    let replies: Vec<_> = order.iter().collect();
    let labels: Vec<&str> = replies.iter().map(|(label, _, _)| *label).collect();
    assert_eq!(
        labels.last(),
        Some(&"A"),
        "A answered before the others: {replies:?}"
    );
    for (label, reply, took) in &replies {
        let expected = if *label == "A" { DEFER } else { DUNNO };
        assert_eq!(reply, expected, "{label}");
        assert!(*took < BOUND, "{label} took {took:?}");
    }
    server.wait_log("dns: no answer from wl.test for 198.51.100.7 within 1.5 s");
    server.wait_log("action=pass, reason=server white list");
    server.wait_log(
        "action=pass, reason=dnswl wl.test, client_name=unknown, client_address=198.51.100.8",
    );
    server.wait_log("action=defer, reason=new, client_name=unknown, client_address=198.51.100.7");
}

// Requests pipelined on one connection are answered in their order, though the first waits for
// a list that does not answer and the others (a black-listed sender, a DNSWL client, a
// black-listed sender again) could be answered at once.
#[test]
fn one_connection_replies_stay_in_order() {
    let stub = DnsStub::start();
    stub.set("7.100.51.198.wl.test", Reply::Hang);
    listed(&stub, "8.100.51.198.wl.test", "127.0.0.2");
    let server = serve(&stub, &ALL);
    cli(&server.db, &["-u", "-blacklist", "add:*@spam.example"]);
    let mut c = server.connect();
    let started = Instant::now();
    let pipelined = [
        from("198.51.100.7", "unknown", "a@sender.example"),
        from("198.51.100.9", "unknown", "x@spam.example"),
        from("198.51.100.8", "unknown", "a@sender.example"),
        from("198.51.100.10", "unknown", "y@spam.example"),
    ]
    .concat();
    c.send(pipelined.as_bytes()).unwrap();
    let replies: Vec<String> = (0..4).map(|_| c.reply().expect("a reply")).collect();
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    assert_eq!(replies, [DEFER, REJECT, DUNNO, REJECT]);
    server.wait_log("dns: no answer from wl.test for 198.51.100.7 within 1.5 s");
    // The connection goes on as usual.
    assert_eq!(
        c.ask(&from("198.51.100.11", "unknown", "z@spam.example")),
        REJECT
    );
}

// A request that waits for DNS when the client half-closes (Exim's `${readsocket}`) is still
// answered, then the connection is closed.
#[test]
fn half_closed_connection_gets_its_dns_answer() {
    let stub = DnsStub::start();
    listed(&stub, "7.100.51.198.wl.test", "127.0.0.2");
    let server = serve(&stub, &ALL);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let r = from("198.51.100.7", "unknown", "a@sender.example");
    stream.write_all(r.as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut received = String::new();
    stream.read_to_string(&mut received).unwrap();
    assert_eq!(received, format!("{DUNNO}\n\n"));
    server.wait_log("reason=dnswl wl.test");
}

// A resolver nobody listens on: decided within the bound as not listed (a trusted client
// passes, a client without a name is greylisted), logged, and the server goes on serving.
#[test]
fn dead_resolver_counts_as_not_listed() {
    let nobody = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().to_string()
    };
    let server = server_at(&nobody, &SUSPICIOUS);
    let mut c = server.connect();
    for (ip, name, expected) in [
        ("198.51.100.7", "mx.sender.example", DUNNO),
        ("198.51.100.8", "unknown", DEFER),
    ] {
        let started = Instant::now();
        assert_eq!(c.ask(&from(ip, name, "a@sender.example")), expected, "{ip}");
        assert!(
            started.elapsed() < BOUND,
            "{ip}: took {:?}",
            started.elapsed()
        );
    }
    server.wait_log("dns: no answer from wl.test for 198.51.100.7 within 1.5 s");
    server.wait_log("dns: no answer from bl.test for 198.51.100.7 within 1.5 s");
    server.wait_log("action=pass, reason=trusted client, client_name=mx.sender.example");
    assert_eq!(
        server
            .connect()
            .ask(&from("198.51.100.9", "unknown", "b@sender.example")),
        DEFER
    );
}

// A resolver that cannot be set up (a name where an address belongs): said once, every zone
// counts as not listed at once, the server serves on.
#[test]
fn unusable_resolver_setting_is_logged_and_counts_as_not_listed() {
    let server = server_at("resolver.example", &SUSPICIOUS);
    let mut c = server.connect();
    let started = Instant::now();
    assert_eq!(
        c.ask(&from(
            "198.51.100.7",
            "mx.sender.example",
            "a@sender.example"
        )),
        DUNNO
    );
    assert_eq!(
        c.ask(&from("198.51.100.8", "unknown", "a@sender.example")),
        DEFER
    );
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    server.wait_log("dns: no resolver (");
    server.wait_log("action=pass, reason=trusted client, client_name=mx.sender.example");
    let said = server.log_lines_with("dns: no resolver (").len();
    assert_eq!(said, 1, "the failure is remembered, not logged per request");
}

// While a request waits for DNS, the database is not locked: an admin change commits before the
// request is answered, and the request is then decided with the new grey interval.
#[test]
fn no_lock_is_held_while_a_lookup_waits() {
    let stub = DnsStub::start();
    stub.set("7.100.51.198.wl.test", Reply::Hang);
    let server = serve(&stub, &ALL);
    let (arrived, answers) = mpsc::channel();
    let a = ask_in_thread(
        &server,
        from("198.51.100.7", "unknown", "a@sender.example"),
        "A",
        &arrived,
    );
    wait_query(&stub, "7.100.51.198.wl.test");
    cli(&server.db, &["-u", "-grey-interval", "7"]);
    assert!(
        answers.try_recv().is_err(),
        "the admin change had to wait for the lookup"
    );
    a.join().unwrap();
    let (_, reply, _) = answers.recv().unwrap();
    assert_eq!(reply, DEFER);
    let triplets = live_triplets(&server.db);
    assert_eq!(triplets.len(), 1);
    let t = triplets[0];
    assert_eq!(t.earliest_accept - t.first_seen, 7 * 60, "{t:?}");
}

// SIGHUP while a request waits for a list that does not answer: the request is answered (as not
// listed, logged), and the resolver the configuration file now names is used from then on (the
// server used to panic at the first question after SIGHUP: a second event-loop waker).
#[test]
fn sighup_answers_a_waiting_request_and_reads_the_resolver_again() {
    let (old, new) = (DnsStub::start(), DnsStub::start());
    old.set("7.100.51.198.wl.test", Reply::Hang);
    listed(&new, "8.100.51.198.wl.test", "127.0.0.2");
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("g.db");
    let conf = dir.path().join("grey_listing.conf");
    let write_conf = |resolver: &DnsStub| {
        let text = format!("db = {}\nresolver = {}\n", db.display(), resolver.addr());
        std::fs::write(&conf, text).unwrap();
    };
    write_conf(&old);
    cli(path_str(&db), &ALL);
    let server = Daemon::start(
        &["--listen", "127.0.0.1:0"],
        &[("GREY_LISTING_CONF", path_str(&conf))],
        "007",
    );
    let mut c = server.connect();
    c.send(from("198.51.100.7", "unknown", "a@sender.example").as_bytes())
        .unwrap();
    wait_query(&old, "7.100.51.198.wl.test");
    write_conf(&new);
    server.signal(libc::SIGHUP);
    assert_eq!(c.reply().as_deref(), Some(DEFER));
    server.wait_log("dns: no answer from wl.test for 198.51.100.7 (abandoned: SIGHUP)");
    server.wait_log("SIGHUP: configuration read again");
    let reply = c
        .send(from("198.51.100.8", "unknown", "a@sender.example").as_bytes())
        .ok()
        .and_then(|()| c.reply());
    assert_eq!(reply.as_deref(), Some(DUNNO), "{:#?}", server.log_lines());
    assert_eq!(new.queries("8.100.51.198.wl.test"), 1);
    assert_eq!(old.queries("8.100.51.198.wl.test"), 0);
}

// SIGTERM while a request waits for DNS: the request is answered and recorded, then the server
// exits 0.
#[test]
fn sigterm_finishes_a_request_waiting_for_dns() {
    let stub = DnsStub::start();
    stub.set("7.100.51.198.wl.test", Reply::Hang);
    let mut server = serve(&stub, &ALL);
    let mut c = server.connect();
    c.send(from("198.51.100.7", "unknown", "a@sender.example").as_bytes())
        .unwrap();
    wait_query(&stub, "7.100.51.198.wl.test");
    server.terminate();
    assert_eq!(c.reply().as_deref(), Some(DEFER));
    assert_eq!(server.wait_exit(), Some(0));
    assert_eq!(live_triplets(&server.db).len(), 1);
}
