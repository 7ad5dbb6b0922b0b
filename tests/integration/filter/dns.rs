//! Selective greylisting through the real `greylisting-filter` (handler mode) with a stub DNS
//! server as the resolver: DNSWL passes in both modes, trusted and suspicious clients, what
//! counts as a listing, IPv6 names, the answer cache, a dead list or resolver, no database lock
//! held while DNS is asked, and the forward confirmation of a qmail `Received:` name.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::dns_stub::{DnsStub, Reply, addresses};
use crate::support::filter::{HandlerRun, Sandbox, T0};

/// A message without a `Received:` header: the client facts come from the environment.
const BARE: &str = "From: alice@sender.example\nSubject: hi\n\nbody\n";

/// A qmail-smtpd `Received:` header naming `mx.sender.example` at 198.51.100.7.
const QMAIL_RECEIVED: &str = "Received: from mx.sender.example (HELO mx.sender.example) (198.51.100.7)\n  by mail.local.example with SMTP; 1 Jan 2027 00:00:00 +0000\nFrom: alice@sender.example\n\nbody\n";

const RECIPIENT: &str = "john@local.example";

/// A sandbox with `settings` applied (`-u` options).
fn sandbox(settings: &[&str]) -> Sandbox {
    let sb = Sandbox::new();
    let mut args = vec!["-u"];
    args.extend_from_slice(settings);
    sb.cli(&args);
    sb
}

const SUSPICIOUS: [&str; 6] = [
    "-greylist-clients",
    "suspicious",
    "-dnswl-zones",
    "add:wl.example",
    "-dnsbl-zones",
    "add:bl.example",
];
const ALL: [&str; 4] = [
    "-dnswl-zones",
    "add:wl.example",
    "-dnsbl-zones",
    "add:bl.example",
];

/// Runs the filter on `message` with the stub at `resolver` and the client facts in `env`.
fn run_at(
    sb: &Sandbox,
    resolver: &str,
    now: i64,
    env: &[(&str, &str)],
    message: &str,
) -> HandlerRun {
    let mut all = vec![("GREY_LISTING_RESOLVER", resolver)];
    all.extend_from_slice(env);
    sb.handler(
        now,
        &all,
        &["ctx", "alice@sender.example", RECIPIENT],
        message,
    )
}

fn run(sb: &Sandbox, stub: &DnsStub, env: &[(&str, &str)]) -> HandlerRun {
    run_at(sb, &stub.addr().to_string(), T0, env, BARE)
}

fn listed(stub: &DnsStub, name: &str, answer: &str) {
    stub.set(name, Reply::Addresses(addresses(&[answer])));
}

// Step 4a: a client listed on a DNSWL zone passes in both modes, logged with the zone, and
// writes no triplet.
#[test]
fn dnswl_passes_in_both_modes() {
    let stub = DnsStub::start();
    listed(&stub, "7.100.51.198.wl.example", "127.0.0.2");
    // A verified name that passes as trusted: the DNSWL pass still comes first. In `all` mode
    // the DNSBL zone is never asked; in suspicious mode it is asked with the DNSWL zone.
    let env = [
        ("TCPREMOTEIP", "198.51.100.7"),
        ("TCPREMOTEHOST", "mx.sender.example"),
    ];
    for (settings, dnsbl_asked) in [(&ALL[..], 0), (&SUSPICIOUS[..], 1)] {
        let sb = sandbox(settings);
        let out = run(&sb, &stub, &env);
        out.assert_verdict("SKIP");
        assert!(
            out.logged("action=pass, reason=dnswl wl.example, "),
            "{out:#?}"
        );
        assert!(sb.triplets().is_empty(), "a DNSWL pass writes no triplet");
        assert_eq!(stub.queries("7.100.51.198.bl.example"), dnsbl_asked);
    }
    // Without any name, in suspicious mode, the DNSWL pass still holds.
    let sb = sandbox(&SUSPICIOUS);
    let out = run(&sb, &stub, &[("TCPREMOTEIP", "198.51.100.7")]);
    out.assert_verdict("SKIP");
    assert!(out.logged("reason=dnswl wl.example, "), "{out:#?}");
}

// Step 4b: a verified name that does not embed the address, on no DNSBL: trusted in
// suspicious mode; the same client is greylisted in `all` mode.
#[test]
fn trusted_client_only_in_suspicious_mode() {
    let stub = DnsStub::start();
    let env = [
        ("TCPREMOTEIP", "198.51.100.7"),
        ("TCPREMOTEHOST", "mx.sender.example"),
    ];
    let sb = sandbox(&SUSPICIOUS);
    let out = run(&sb, &stub, &env);
    out.assert_verdict("SKIP");
    assert!(out.logged("action=pass, reason=trusted client, client_name=mx.sender.example"));
    assert!(sb.triplets().is_empty());
    assert_eq!(stub.queries("7.100.51.198.bl.example"), 1);
    let sb = sandbox(&ALL);
    let out = run(&sb, &stub, &env);
    out.assert_verdict("DEFER");
    assert!(out.logged("action=defer, reason=new, "), "{out:#?}");
}

// Each cause of suspicion greylists: no name, a name embedding the address (the DNSBL is not
// even asked), a DNSBL listing.
#[test]
fn each_suspicious_cause_is_greylisted() {
    let stub = DnsStub::start();
    listed(&stub, "9.2.0.192.bl.example", "127.0.0.2");
    let sb = sandbox(&SUSPICIOUS);
    let cases: [(&str, Option<&str>); 3] = [
        ("198.51.100.7", None),
        ("203.0.113.8", Some("c-203-0-113-8.dyn.isp.example")),
        ("192.0.2.9", Some("mx.listed.example")),
    ];
    for (ip, name) in cases {
        let mut env = vec![("TCPREMOTEIP", ip)];
        if let Some(name) = name {
            env.push(("TCPREMOTEHOST", name));
        }
        let out = run(&sb, &stub, &env);
        out.assert_verdict("DEFER");
        assert!(out.logged("action=defer, reason=new, "), "{ip}: {out:#?}");
    }
    assert_eq!(
        stub.queries("7.100.51.198.bl.example"),
        0,
        "no name: suspicious"
    );
    assert_eq!(stub.queries("8.113.0.203.bl.example"), 0, "embedding name");
    assert_eq!(stub.queries("9.2.0.192.bl.example"), 1);
    assert_eq!(sb.triplets().len(), 3);
}

// What counts as listed: 127.0.0.2 is a listing; dnswl.org's "trust none" 127.0.1.0 and
// "refused" 127.0.0.255, Spamhaus's error 127.255.255.254 and NXDOMAIN are not.
#[test]
fn answer_codes() {
    let stub = DnsStub::start();
    let sb = sandbox(&ALL);
    let cases = [
        ("198.51.100.10", Some("127.0.0.2"), "SKIP"),
        ("198.51.100.11", Some("127.0.1.0"), "DEFER"),
        ("198.51.100.12", Some("127.0.0.255"), "DEFER"),
        ("198.51.100.13", Some("127.255.255.254"), "DEFER"),
        ("198.51.100.14", None, "DEFER"),
    ];
    for (ip, answer, verdict) in cases {
        let last = ip.rsplit('.').next().unwrap();
        let name = format!("{last}.100.51.198.wl.example");
        if let Some(answer) = answer {
            listed(&stub, &name, answer);
        }
        let out = run(&sb, &stub, &[("TCPREMOTEIP", ip)]);
        out.assert_verdict(verdict);
        assert_eq!(stub.queries(&name), 1, "{ip}");
        assert!(
            !out.logged("dns: no answer"),
            "{ip}: an answer, not a no-answer"
        );
    }
}

// An IPv6 client is asked under its 32 nibbles.
#[test]
fn ipv6_client_by_nibbles() {
    let stub = DnsStub::start();
    let name = "5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.wl.example";
    listed(&stub, name, "127.0.0.3");
    let sb = sandbox(&ALL);
    let out = run(&sb, &stub, &[("TCPREMOTEIP", "2001:db8::5")]);
    out.assert_verdict("SKIP");
    assert!(out.logged("reason=dnswl wl.example, "), "{out:#?}");
    assert_eq!(stub.queries(name), 1);
}

// The second message from a client within the hour asks nothing: the answers come from the
// database. An hour later they are asked again.
#[test]
fn answers_are_cached_for_an_hour() {
    let stub = DnsStub::start();
    let sb = sandbox(&SUSPICIOUS);
    let env = [
        ("TCPREMOTEIP", "198.51.100.7"),
        ("TCPREMOTEHOST", "mx.sender.example"),
    ];
    let resolver = stub.addr().to_string();
    run_at(&sb, &resolver, T0, &env, BARE).assert_verdict("SKIP");
    let before = stub.total_queries();
    assert_eq!(before, 2, "both zones asked once");
    let out = run_at(&sb, &resolver, T0 + 600, &env, BARE);
    out.assert_verdict("SKIP");
    assert!(out.logged("reason=trusted client"));
    assert_eq!(
        stub.total_queries(),
        before,
        "the second message asks nothing"
    );
    run_at(&sb, &resolver, T0 + 3_700, &env, BARE).assert_verdict("SKIP");
    assert_eq!(
        stub.total_queries(),
        before + 2,
        "expired answers are asked again"
    );
}

// A list that never answers, or a resolver nobody listens on: the filter decides within its
// budget, logs the list, and the host-name rules still apply.
#[test]
fn a_dead_list_or_resolver_costs_one_budget() {
    let stub = DnsStub::start();
    stub.set("7.100.51.198.wl.example", Reply::Hang);
    stub.set("7.100.51.198.bl.example", Reply::Hang);
    let nobody = {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.local_addr().unwrap().to_string()
    };
    for resolver in [stub.addr().to_string(), nobody] {
        let sb = sandbox(&SUSPICIOUS);
        for (name, verdict) in [(None, "DEFER"), (Some("mx.sender.example"), "SKIP")] {
            let mut env = vec![("TCPREMOTEIP", "198.51.100.7")];
            if let Some(name) = name {
                env.push(("TCPREMOTEHOST", name));
            }
            let started = Instant::now();
            let out = run_at(&sb, &resolver, T0, &env, BARE);
            let took = started.elapsed();
            out.assert_verdict(verdict);
            // The budget is 1.5 s; several times that is a hang, not a slow machine.
            assert!(took < Duration::from_secs(6), "{resolver}: took {took:?}");
            assert!(
                out.logged("dns: no answer from wl.example for 198.51.100.7 within 1.5 s"),
                "{resolver}: {out:#?}"
            );
            if name.is_some() {
                assert!(out.logged("dns: no answer from bl.example for 198.51.100.7"));
                assert!(out.logged("reason=trusted client"));
            }
        }
    }
}

// While the filter waits for a list, the database is not locked: an admin change commits at
// once, long before the filter is done.
#[test]
fn no_lock_is_held_while_a_lookup_waits() {
    let stub = DnsStub::start();
    let name = "7.100.51.198.wl.example";
    stub.set(name, Reply::Hang);
    let sb = sandbox(&ALL);
    let mut filter = sb.filter(T0);
    filter
        .args(["ctx", "alice@sender.example", RECIPIENT])
        .env("GREY_LISTING_RESOLVER", stub.addr().to_string())
        .env("TCPREMOTEIP", "198.51.100.7")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = filter.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stub.queries(name) == 0 {
        assert!(Instant::now() < deadline, "the filter never asked");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The filter now waits for DNS (up to 1.5 s): the change must not wait for it.
    sb.cli(&["-u", "-grey-interval", "7"]);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the admin change had to wait for the filter's lookup"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "deferred after the lookup");
    // The filter decided with the new interval: it read the configuration again.
    let triplets = sb.triplets();
    assert_eq!(triplets.len(), 1);
    assert_eq!(triplets[0].4, T0 + 7 * 60);
}

// A name from qmail's `Received:` header counts in suspicious mode only when its A record
// holds the client address; in `all` mode it is used as always (no lookup).
#[test]
fn received_header_name_needs_forward_confirmation_in_suspicious_mode() {
    let stub = DnsStub::start();
    let resolver = stub.addr().to_string();
    let sb = sandbox(&SUSPICIOUS);
    listed(&stub, "mx.sender.example", "192.0.2.1");
    let out = run_at(&sb, &resolver, T0, &[], QMAIL_RECEIVED);
    out.assert_verdict("DEFER");
    assert_eq!(stub.queries("mx.sender.example"), 1);
    let sb = sandbox(&SUSPICIOUS);
    listed(&stub, "mx.sender.example", "198.51.100.7");
    let out = run_at(&sb, &resolver, T0, &[], QMAIL_RECEIVED);
    out.assert_verdict("SKIP");
    assert!(out.logged("reason=trusted client, client_name=mx.sender.example"));
    // `all` mode: a white host pattern matches the header's name as before, nothing asked.
    let sb = sandbox(&["-domains-whitelist", "add:*.sender.example"]);
    let asked = stub.total_queries();
    let out = run_at(&sb, &resolver, T0, &[], QMAIL_RECEIVED);
    out.assert_verdict("SKIP");
    assert!(
        out.logged("action=pass, reason=white domains pattern"),
        "{out:#?}"
    );
    assert_eq!(stub.total_queries(), asked);
}
