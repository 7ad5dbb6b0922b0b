//! The DNS side of the admin CLI against a stub DNS server: `--check-dns` (a Nagios plugin
//! over the zones' RFC 5782 test entries), the zone part of `--check`, and `--explain` showing
//! the cached and the live answers (never storing them) and what made a client suspicious.

use crate::dns_stub::{DnsStub, Reply, addresses};
use crate::support::filter::{Sandbox, T0};
use crate::support::{Outcome, grey_listing};

/// `grey_listing args...` on the sandbox's database at `T0`, with `resolver`.
fn cli(sb: &Sandbox, resolver: &str, args: &[&str]) -> Outcome {
    let mut cmd = grey_listing();
    cmd.env("GREY_LISTING_RESOLVER", resolver)
        .env("GREY_LISTING_NOW", T0.to_string())
        .args(args)
        .arg("--db")
        .arg(sb.location());
    Outcome::from(cmd.output().unwrap(), args)
}

fn listed(stub: &DnsStub, name: &str, answer: &str) {
    stub.set(name, Reply::Addresses(addresses(&[answer])));
}

/// A stub whose `good.example` passes the health check, `all.example` lists everything and
/// `dead.example` never answers.
fn zones_stub() -> DnsStub {
    let stub = DnsStub::start();
    listed(&stub, "2.0.0.127.good.example", "127.0.0.2");
    listed(&stub, "2.0.0.127.all.example", "127.0.0.2");
    listed(&stub, "1.0.0.127.all.example", "127.0.0.2");
    stub.set("2.0.0.127.dead.example", Reply::Hang);
    stub.set("1.0.0.127.dead.example", Reply::Hang);
    stub
}

#[test]
fn check_dns_without_zones() {
    let sb = Sandbox::new();
    sb.cli(&["-u"]);
    let out = cli(&sb, "127.0.0.1:9", &["--check-dns"]);
    assert_eq!(
        (out.code, out.stdout.as_str(), out.stderr.as_str()),
        (0, "GREY_LISTING OK - no DNS zones configured\n", "")
    );
}

// OK when every zone answers its test entries as a list should; WARNING for a dead list;
// CRITICAL for one that lists everything. One line per zone after the status line.
#[test]
fn check_dns_status_per_zone() {
    let stub = zones_stub();
    let resolver = stub.addr().to_string();
    let sb = Sandbox::new();
    sb.cli(&["-u", "-dnswl-zones", "add:good.example"]);
    let out = cli(&sb, &resolver, &["-check-dns"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert_eq!(
        out.stdout,
        "GREY_LISTING OK - 1 of 1 DNS zone(s) healthy | zones=1;;;0 failing_zones=0;;;0\n\
         good.example: ok (127.0.0.2 listed as 127.0.0.2, 127.0.0.1 not listed)\n"
    );
    sb.cli(&["-u", "-dnsbl-zones", "add:dead.example"]);
    let out = cli(&sb, &resolver, &["--check-dns"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout
            .starts_with("GREY_LISTING WARNING - 1 of 2 DNS zone(s) healthy")
    );
    assert!(
        out.stdout
            .contains("\ndead.example: no answer within the time limit")
    );
    sb.cli(&["-u", "-dnsbl-zones", "add:all.example"]);
    let out = cli(&sb, &resolver, &["--check-dns"]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(
        out.stdout
            .starts_with("GREY_LISTING CRITICAL - 1 of 3 DNS zone(s) healthy")
    );
    assert!(
        out.stdout
            .contains("\nall.example: lists everything (127.0.0.1 listed")
    );
    assert_eq!(out.stdout.lines().count(), 4);
    let json = cli(&sb, &resolver, &["--check-dns", "--json"]);
    assert_eq!(json.code, 2);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["status"], "CRITICAL");
    assert_eq!(json["zones"][0]["zone"], "good.example");
    assert_eq!(json["zones"][0]["lists"], serde_json::json!(["dnswl"]));
    assert_eq!(json["zones"][0]["healthy"], true);
    assert_eq!(json["zones"][2]["health"], "lists everything");
    assert_eq!(
        json["zones"][2]["test_entry_127_0_0_1"]["listed"],
        "127.0.0.2"
    );
}

// A resolver that cannot be located: one UNKNOWN line, exit 3, as --check reports its errors.
#[test]
fn check_dns_without_a_resolver() {
    let sb = Sandbox::new();
    sb.cli(&["-u", "-dnswl-zones", "add:good.example"]);
    let out = cli(&sb, "not|an address", &["--check-dns"]);
    assert_eq!(out.code, 3);
    assert!(
        out.stdout
            .starts_with("GREY_LISTING UNKNOWN - resolver 'not\\x7can address'"),
        "{}",
        out.stdout
    );
    assert_eq!(out.stdout.lines().count(), 1);
    // --check warns: the zones cannot be checked.
    let out = cli(&sb, "not|an address", &["--check"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.contains("; 1 DNS zone(s) not checked: resolver"));
}

// --check: a line for the zones only when some are configured; a failing zone warns.
#[test]
fn check_reports_the_zones() {
    let stub = zones_stub();
    let resolver = stub.addr().to_string();
    let sb = Sandbox::new();
    sb.cli(&["-u"]);
    let out = cli(&sb, &resolver, &["--check"]);
    assert_eq!(out.code, 0);
    assert!(!out.stdout.contains("DNS zone"), "{}", out.stdout);
    assert!(!out.stdout.contains("failing_zones"));
    sb.cli(&["-u", "-dnswl-zones", "add:good.example"]);
    let out = cli(&sb, &resolver, &["--check"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(
        out.stdout.contains("; 1 DNS zone(s) ok |"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with(" failing_zones=0;;;0\n"));
    sb.cli(&["-u", "-dnsbl-zones", "add:all.example"]);
    let out = cli(&sb, &resolver, &["--check"]);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(out.stdout.starts_with("GREY_LISTING WARNING - "));
    assert!(
        out.stdout
            .contains("; 1 of 2 DNS zone(s) failing --check-dns: all.example (lists everything) |"),
        "{}",
        out.stdout
    );
}

const EXPLAIN_SUSPICIOUS: [&str; 6] = [
    "-greylist-clients",
    "suspicious",
    "-dnswl-zones",
    "add:wl.example",
    "-dnsbl-zones",
    "add:bl.example",
];

fn explain(sb: &Sandbox, resolver: &str, ip: &str, name: &str) -> Outcome {
    let out = cli(
        sb,
        resolver,
        &[
            "--explain",
            ip,
            name,
            "alice@sender.example",
            "john@local.example",
        ],
    );
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
    out
}

// --explain asks live what the cache lacks and stores nothing (asked again next time); once
// the filter cached the answers, --explain uses them and asks nothing.
#[test]
fn explain_uses_the_cache_and_asks_live_without_storing() {
    let stub = DnsStub::start();
    let resolver = stub.addr().to_string();
    let sb = Sandbox::new();
    sb.cli(&["-u"]);
    sb.cli(
        &["-u"]
            .iter()
            .chain(&EXPLAIN_SUSPICIOUS)
            .copied()
            .collect::<Vec<_>>(),
    );
    for round in 1..=2 {
        let out = explain(&sb, &resolver, "198.51.100.7", "mx.sender.example");
        assert!(
            out.stdout.contains(
                "DNS answer             wl.example: not listed (asked now, not stored)\n"
            ),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout
                .contains("bl.example: not listed (asked now, not stored)")
        );
        assert!(out.stdout.contains("trusted client: pass"));
        assert_eq!(stub.total_queries(), 2 * round, "asked live each time");
    }
    let filter = sb.handler(
        T0,
        &[
            ("GREY_LISTING_RESOLVER", &resolver),
            ("TCPREMOTEIP", "198.51.100.7"),
            ("TCPREMOTEHOST", "mx.sender.example"),
        ],
        &["ctx", "alice@sender.example", "john@local.example"],
        "From: a@b\n\nbody\n",
    );
    filter.assert_verdict("SKIP");
    let before = stub.total_queries();
    let out = explain(&sb, &resolver, "198.51.100.7", "mx.sender.example");
    assert!(
        out.stdout
            .contains("wl.example: not listed (from the cache)")
    );
    assert!(
        out.stdout
            .contains("bl.example: not listed (from the cache)")
    );
    assert_eq!(stub.total_queries(), before, "the cache answered");
    // A zone without answer gets its line; JSON names each source.
    stub.set("9.100.51.198.wl.example", Reply::Hang);
    let out = explain(&sb, &resolver, "198.51.100.9", "mx.sender.example");
    assert!(
        out.stdout
            .contains("wl.example: no answer within 1.5 s (counts as not listed)"),
        "{}",
        out.stdout
    );
    let json = cli(
        &sb,
        &resolver,
        &[
            "--explain",
            "198.51.100.7",
            "mx.sender.example",
            "-",
            "john@local.example",
            "--json",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["dns"][0]["zone"], "wl.example");
    assert_eq!(json["dns"][0]["source"], "cache");
    assert_eq!(json["dns"][0]["result"], "not listed");
    assert_eq!(json["reason"], "trusted client");
}

// In suspicious mode, --explain names the rule that made the client suspicious or trusted.
#[test]
fn explain_names_the_rule() {
    let stub = DnsStub::start();
    let resolver = stub.addr().to_string();
    listed(&stub, "5.113.0.203.wl.example", "127.0.0.2");
    listed(&stub, "9.2.0.192.bl.example", "127.0.0.2");
    let sb = Sandbox::new();
    sb.cli(
        &["-u"]
            .iter()
            .chain(&EXPLAIN_SUSPICIOUS)
            .copied()
            .collect::<Vec<_>>(),
    );
    let cases = [
        (
            "198.51.100.7",
            "-",
            "suspicious: no verified host name",
            "defer",
        ),
        (
            "198.51.100.8",
            "c-198-51-100-8.dyn.isp.example",
            "suspicious: name embeds the address",
            "defer",
        ),
        (
            "192.0.2.9",
            "mx.listed.example",
            "dnsbl bl.example 127.0.0.2",
            "defer",
        ),
        ("203.0.113.5", "-", "dnswl wl.example: pass", "pass"),
        (
            "198.51.100.20",
            "mx.sender.example",
            "trusted client: pass",
            "pass",
        ),
    ];
    for (ip, name, rule, verdict) in cases {
        let out = explain(&sb, &resolver, ip, name);
        assert!(out.stdout.contains(rule), "{ip}: {}", out.stdout);
        let verdict_row = out
            .stdout
            .lines()
            .find(|l| l.starts_with("Verdict "))
            .unwrap();
        assert!(verdict_row.contains(verdict), "{ip}: {verdict_row}");
    }
    // A name that embeds the address is never looked up on the DNSBL.
    assert_eq!(stub.queries("8.100.51.198.bl.example"), 0);
}
