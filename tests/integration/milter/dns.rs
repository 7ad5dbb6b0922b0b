//! Selective greylisting through the real `greylisting-milter` with a stub DNS server as its
//! resolver: trusted, DNSWL-listed and suspicious clients at RCPT, and other sessions answered
//! while one waits for a list that does not answer; SIGHUP with a recipient waiting.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::dns_stub::{DnsStub, Reply, addresses};
use crate::policyd::server::cli;
use crate::support::milter::{DEFER, Milter, Mta, reply_text};

const CONTINUE: (u8, Vec<u8>) = (b'c', Vec::new());

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

/// The budget of one message is 1.5 s; several times that is a hang, not a slow machine.
const BOUND: Duration = Duration::from_secs(6);

/// A milter asking `resolver`, in suspicious mode.
fn milter_at(resolver: &str) -> Milter {
    let milter = Milter::start_with_env(&[], &[("GREY_LISTING_RESOLVER", resolver)]);
    cli(&milter.db, &SUSPICIOUS);
    milter
}

fn listed(stub: &DnsStub, name: &str, answer: &str) {
    stub.set(name, Reply::Addresses(addresses(&[answer])));
}

/// A session from `address` named `hostname` (in brackets: unverified) up to MAIL.
fn session(milter: &Milter, hostname: &str, address: &str, sender: &str) -> Mta {
    let mut mta = milter.connect();
    Mta::start_message(hostname, b'4', address, sender, &mut mta);
    mta
}

// In suspicious mode a verified name that does not embed the address, on no DNSBL, passes at
// RCPT; a DNSWL listing passes whatever the name; an unverified name and a DNSBL listing get
// 451 4.7.1. A second recipient of the trusted client asks nothing (the answers are cached).
#[test]
fn trusted_client_passes_and_suspicious_ones_are_deferred() {
    let stub = DnsStub::start();
    listed(&stub, "9.2.0.192.bl.test", "127.0.0.2");
    listed(&stub, "10.2.0.192.wl.test", "127.0.0.2");
    let milter = milter_at(&stub.addr().to_string());
    let mut trusted = session(
        &milter,
        "mx.sender.example",
        "198.51.100.7",
        "<a@sender.example>",
    );
    assert_eq!(trusted.rcpt("<u@local.example>"), CONTINUE);
    assert_eq!(stub.total_queries(), 2, "both zones asked once");
    assert_eq!(trusted.rcpt("<v@local.example>"), CONTINUE);
    assert_eq!(stub.total_queries(), 2, "the second recipient asks nothing");
    milter.wait_log(
        "action=pass, reason=trusted client, client_name=mx.sender.example, \
         client_address=198.51.100.7",
    );
    let cases = [
        ("[192.0.2.10]", "192.0.2.10", None),
        ("[198.51.100.8]", "198.51.100.8", Some(DEFER)),
        ("mx.listed.example", "192.0.2.9", Some(DEFER)),
    ];
    for (hostname, address, expected) in cases {
        let mut mta = session(&milter, hostname, address, "<a@sender.example>");
        let reply = mta.rcpt("<u@local.example>");
        match expected {
            None => assert_eq!(reply, CONTINUE, "{hostname}"),
            Some(text) => assert_eq!(reply_text(&reply), text, "{hostname}"),
        }
    }
    milter.wait_log(
        "action=pass, reason=dnswl wl.test, client_name=unknown, client_address=192.0.2.10",
    );
    milter.wait_log("action=defer, reason=new, client_name=unknown, client_address=198.51.100.8");
    milter.wait_log("action=defer, reason=new, client_name=mx.listed.example");
    // No verified name is suspicious already: the DNSBL is not asked for it.
    assert_eq!(stub.queries("8.100.51.198.bl.test"), 0);
    assert_eq!(stub.queries("9.2.0.192.bl.test"), 1);
}

// While one session's recipient waits for lists that do not answer, other sessions' recipients
// are answered: one whose lists answer at once, one from a server white list sender. The waiting
// one is decided when the budget is over (not listed: trusted), logged, and its session goes on.
#[test]
fn other_sessions_are_answered_while_a_lookup_hangs() {
    let stub = DnsStub::start();
    stub.set("7.100.51.198.wl.test", Reply::Hang);
    stub.set("7.100.51.198.bl.test", Reply::Hang);
    let milter = milter_at(&stub.addr().to_string());
    cli(&milter.db, &["-u", "-whitelist", "add:*@friend.example"]);
    let (arrived, order) = mpsc::channel();
    let mut hanging = session(
        &milter,
        "mx.sender.example",
        "198.51.100.7",
        "<a@sender.example>",
    );
    let a = {
        let arrived = arrived.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let first = hanging.rcpt("<u@local.example>");
            let _ = arrived.send(("A", first, started.elapsed()));
            // The session reads again once its recipient is decided.
            let second = hanging.rcpt("<v@local.example>");
            let _ = arrived.send(("A2", second, started.elapsed()));
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while stub.queries("7.100.51.198.wl.test") == 0 {
        assert!(Instant::now() < deadline, "the milter never asked");
        std::thread::sleep(Duration::from_millis(10));
    }
    let others = [
        (
            "B",
            "mx.other.example",
            "198.51.100.8",
            "<a@sender.example>",
        ),
        (
            "C",
            "[198.51.100.9]",
            "198.51.100.9",
            "<pal@friend.example>",
        ),
    ];
    let threads: Vec<_> = others
        .into_iter()
        .map(|(label, hostname, address, sender)| {
            let mut mta = session(&milter, hostname, address, sender);
            let arrived = arrived.clone();
            std::thread::spawn(move || {
                let started = Instant::now();
                let reply = mta.rcpt("<u@local.example>");
                let _ = arrived.send((label, reply, started.elapsed()));
            })
        })
        .collect();
    a.join().unwrap();
    for thread in threads {
        thread.join().unwrap();
    }
    drop(arrived);
    let replies: Vec<_> = order.iter().collect();
    let labels: Vec<&str> = replies.iter().map(|(label, _, _)| *label).collect();
    let a_at = labels.iter().position(|l| *l == "A").unwrap();
    assert!(
        labels.iter().position(|l| *l == "B").unwrap() < a_at
            && labels.iter().position(|l| *l == "C").unwrap() < a_at,
        "the hanging session was answered first: {replies:?}"
    );
    for (label, reply, took) in &replies {
        assert_eq!(*reply, CONTINUE, "{label}");
        assert!(*took < BOUND, "{label} took {took:?}");
    }
    milter.wait_log("dns: no answer from wl.test for 198.51.100.7 within 1.5 s");
    milter.wait_log("dns: no answer from bl.test for 198.51.100.7 within 1.5 s");
    milter.wait_log("action=pass, reason=trusted client, client_name=mx.other.example");
    milter.wait_log("action=pass, reason=server white list");
    milter.wait_log(
        "action=pass, reason=trusted client, client_name=mx.sender.example, \
         client_address=198.51.100.7, sender=a@sender.example, recipient=v@local.example",
    );
}

// A resolver that cannot be set up: logged, every zone counts as not listed, the recipient is
// decided within the bound and the milter serves on.
#[test]
fn unusable_resolver_setting_counts_as_not_listed() {
    let milter = milter_at("resolver.example");
    let started = Instant::now();
    let mut trusted = session(
        &milter,
        "mx.sender.example",
        "198.51.100.7",
        "<a@sender.example>",
    );
    assert_eq!(trusted.rcpt("<u@local.example>"), CONTINUE);
    let mut unknown = session(&milter, "[198.51.100.8]", "198.51.100.8", "<a@s.example>");
    assert_eq!(reply_text(&unknown.rcpt("<u@local.example>")), DEFER);
    assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
    milter.wait_log("dns: no resolver (");
    milter.wait_log("action=pass, reason=trusted client, client_name=mx.sender.example");
}

// SIGHUP while a recipient waits for lists that do not answer: it is answered (not listed,
// logged), and the next recipient asks the resolver the configuration file now names (the
// milter used to panic there: a second event-loop waker).
#[test]
fn sighup_answers_a_waiting_recipient_and_reads_the_resolver_again() {
    let (old, new) = (DnsStub::start(), DnsStub::start());
    old.set("7.100.51.198.wl.test", Reply::Hang);
    old.set("7.100.51.198.bl.test", Reply::Hang);
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("g.db");
    let conf = dir.path().join("grey_listing.conf");
    let write_conf = |resolver: &DnsStub| {
        std::fs::write(&conf, format!("resolver = {}\n", resolver.addr())).unwrap();
    };
    write_conf(&old);
    let db = db.to_str().unwrap();
    cli(db, &SUSPICIOUS);
    let milter = Milter::start_with(
        &["--listen", "127.0.0.1:0", "--db", db],
        &[("GREY_LISTING_CONF", conf.to_str().unwrap())],
    );
    let mut waiting = session(
        &milter,
        "mx.sender.example",
        "198.51.100.7",
        "<a@sender.example>",
    );
    waiting.send_str(b'R', "<u@local.example>");
    let deadline = Instant::now() + Duration::from_secs(30);
    while old.queries("7.100.51.198.wl.test") == 0 {
        assert!(Instant::now() < deadline, "the milter never asked");
        std::thread::sleep(Duration::from_millis(10));
    }
    write_conf(&new);
    milter.signal(libc::SIGHUP);
    assert_eq!(waiting.reply(), Some(CONTINUE));
    milter.wait_log("dns: no answer from wl.test for 198.51.100.7 (abandoned: SIGHUP)");
    milter.wait_log("SIGHUP: configuration read again, reopening the database");
    let mut next = session(
        &milter,
        "mx.other.example",
        "198.51.100.8",
        "<a@sender.example>",
    );
    assert_eq!(next.rcpt("<u@local.example>"), CONTINUE);
    assert_eq!(new.queries("8.100.51.198.wl.test"), 1);
    assert_eq!(old.queries("8.100.51.198.wl.test"), 0);
    // The waiting session goes on too.
    assert_eq!(waiting.rcpt("<v@local.example>"), CONTINUE);
}
