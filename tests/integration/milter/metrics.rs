//! `greylisting-milter --metrics-listen`: the real milter scraped over loopback while MTA
//! sessions are driven through it. The text is OpenMetrics, the decision counters move by exactly
//! the recipients decided, closes are counted by cause, store errors are counted, and the
//! endpoint answers bad requests as the policy server's does.

use std::time::{Duration, Instant};

use crate::policyd::metrics::{cli_output, rejects_bad_requests, scrape, value};
use crate::policyd::server::cli;
use crate::support::milter::{ALL_FLAGS, DEFER, Milter, Mta, reply_text};

const CONTINUE: (u8, Vec<u8>) = (b'c', Vec::new());
const DEFER_NEW: &str = r#"greylisting_decisions_total{action="defer",reason="new"}"#;
const PASS_FOUND: &str = r#"greylisting_decisions_total{action="pass",reason="triplet found"}"#;
const PASS_AUTH: &str = r#"greylisting_decisions_total{action="pass",reason="authenticated"}"#;
const REJECT_BLACK: &str =
    r#"greylisting_decisions_total{action="reject",reason="black domains pattern"}"#;

/// The metrics address from the milter's start-up log line.
pub(crate) fn metrics_address(milter: &Milter) -> String {
    let line = milter.wait_log("Serving metrics at http://");
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap()
        .to_string()
}

/// Scrapes until `series` has `expected` (the gauges are set at the end of a loop turn, which
/// may come just after the reply the test waited for); bounded.
fn scrape_until(addr: &str, series: &str, expected: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = scrape(addr);
        if value(&text, series) == expected || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn milter_counters_move_by_exactly_the_decisions_made() {
    let milter = Milter::start(&["--metrics-listen", "127.0.0.1:0"]);
    let addr = metrics_address(&milter);
    cli(&milter.db, &["-u", "-grey-interval", "0"]);
    let before = scrape(&addr);
    assert_eq!(value(&before, DEFER_NEW), 0.0, "{before}");
    // The batch size is the policy server's alone.
    assert!(!before.contains("greylisting_batch_size"), "{before}");
    // Session 1: two new recipients deferred, then the retry in a new message passes one.
    let mut first = milter.connect();
    first.start_unverified_message();
    assert_eq!(reply_text(&first.rcpt("<u@local.example>")), DEFER);
    assert_eq!(reply_text(&first.rcpt("<v@local.example>")), DEFER);
    first.send_str(b'M', "<s@example.org>");
    assert_eq!(first.rcpt("<u@local.example>"), CONTINUE);
    // Session 2: a trusted client passes; session 3: a black host is rejected.
    let mut trusted = milter.connect();
    Mta::start_message("[x]", b'4', "127.0.0.1", "<s@example.org>", &mut trusted);
    assert_eq!(trusted.rcpt("<u@local.example>"), CONTINUE);
    let mut black = milter.connect();
    Mta::start_message(
        "host.dsl.example",
        b'4',
        "198.51.100.9",
        "<s@example.org>",
        &mut black,
    );
    assert_eq!(
        reply_text(&black.rcpt("<u@local.example>")),
        "550 5.7.1 Command rejected"
    );
    // Session 4: garbage closes the connection as bad input (no decision).
    let mut bad = milter.connect();
    bad.negotiate(ALL_FLAGS);
    bad.send(b'!', b"");
    assert_eq!(bad.reply(), None);
    let bad_input = r#"greylisting_connections_closed_total{cause="bad-input"}"#;
    let after = scrape_until(&addr, "greylisting_connections", 3.0);
    assert!(
        after.contains("# TYPE greylisting_decisions counter\n"),
        "{after}"
    );
    assert_eq!(value(&after, DEFER_NEW), 2.0, "{after}");
    assert_eq!(value(&after, PASS_FOUND), 1.0, "{after}");
    assert_eq!(value(&after, PASS_AUTH), 1.0, "{after}");
    assert_eq!(value(&after, REJECT_BLACK), 1.0, "{after}");
    let all: f64 = after
        .lines()
        .filter(|l| l.starts_with("greylisting_decisions_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(all, 5.0, "one count per recipient decided: {after}");
    assert_eq!(value(&after, "greylisting_decision_seconds_count"), 5.0);
    // The policy server's buckets, and its build information.
    let buckets: Vec<&str> = after
        .lines()
        .filter_map(|l| l.strip_prefix("greylisting_decision_seconds_bucket{le=\""))
        .filter_map(|l| l.split('"').next())
        .collect();
    assert_eq!(
        buckets,
        [
            "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
            "1.0", "2.5", "+Inf"
        ],
        "{after}"
    );
    let build = format!(
        "greylisting_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(after.lines().any(|l| l == build), "{build} in\n{after}");
    assert_eq!(value(&after, "greylisting_store_errors_total"), 0.0);
    assert_eq!(value(&after, bad_input), 1.0, "{after}");
    assert_eq!(value(&after, "greylisting_connections"), 3.0, "{after}");
    // The store counted the same decisions under the milter's name.
    let stats = cli_output(&milter.db, &["--stats", "--prometheus"]);
    for (labels, n) in [
        (r#"component="milter",action="defer",reason="new""#, 2),
        (
            r#"component="milter",action="pass",reason="triplet found""#,
            1,
        ),
    ] {
        let line = format!("greylisting_store_decisions_total{{{labels}}} {n}");
        assert!(stats.lines().any(|l| l == line), "{line} in\n{stats}");
    }
    drop((first, trusted, black));
    let closed = scrape_until(&addr, "greylisting_connections", 0.0);
    assert_eq!(value(&closed, "greylisting_connections"), 0.0, "{closed}");
    rejects_bad_requests(&addr);
}

/// A database that cannot be used: the recipient passes, and the metrics say why.
#[test]
fn milter_store_errors_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    std::fs::write(&db, vec![b'x'; 4096]).unwrap();
    let milter = Milter::start_on(
        db.to_str().unwrap(),
        "127.0.0.1:0",
        &["--metrics-listen", "127.0.0.1:0"],
    );
    let addr = metrics_address(&milter);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    let text = scrape(&addr);
    assert_eq!(
        value(&text, "greylisting_store_errors_total"),
        1.0,
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"greylisting_decisions_total{action="pass",reason="store error"}"#
        ),
        1.0,
        "{text}"
    );
}

#[test]
fn a_milter_metrics_address_in_use_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("greylisting-milter"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            &taken,
            "--db",
        ])
        .arg(&db)
        .env("GREY_LISTING_LOG", "stderr")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen for metrics on {taken}")),
        "{stderr}"
    );
}

/// Every cause the milter closes a connection for is counted under its label: an idle
/// connection, a packet not complete in time, the idlest connection making room at
/// --max-connections, and an MTA that leaves its replies unread.
#[test]
fn milter_closes_are_counted_by_cause() {
    let closed =
        |cause: &str| format!(r#"greylisting_connections_closed_total{{cause="{cause}"}}"#);
    let timed = Milter::start(&[
        "--metrics-listen",
        "127.0.0.1:0",
        "--idle-timeout",
        "1",
        "--request-timeout",
        "1",
    ]);
    let addr = metrics_address(&timed);
    let mut idle = timed.connect();
    idle.negotiate(ALL_FLAGS);
    assert_eq!(idle.reply(), None);
    let mut trickling = timed.connect();
    trickling.negotiate(ALL_FLAGS);
    trickling.send_raw(&[0, 0, 0, 20, b'H', b'x']).unwrap();
    assert_eq!(trickling.reply(), None);
    let text = scrape_until(&addr, &closed("request-timeout"), 1.0);
    assert_eq!(value(&text, &closed("idle")), 1.0, "{text}");
    assert_eq!(value(&text, &closed("request-timeout")), 1.0, "{text}");

    let bounded = Milter::start(&["--metrics-listen", "127.0.0.1:0", "--max-connections", "2"]);
    let addr = metrics_address(&bounded);
    // Steps are answered (no no-reply bits offered), so the milter knows each connection before
    // the next one comes.
    let mut oldest = bounded.connect();
    oldest.negotiate(0x3f);
    let mut second = bounded.connect();
    second.negotiate(0x3f);
    let mut newcomer = bounded.connect();
    newcomer.negotiate(0x3f);
    assert_eq!(oldest.reply(), None, "the idlest connection made room");
    let mut unread = bounded.connect_small_window();
    let burst = unread.helos_to_answer(10_000);
    for _ in 0..2_000 {
        if unread.send_raw(&burst).is_err() {
            break;
        }
    }
    bounded.wait_log("bytes of replies not read");
    let text = scrape_until(&addr, &closed("reply-backlog"), 1.0);
    assert_eq!(value(&text, &closed("reply-backlog")), 1.0, "{text}");
    // The unread connection was admitted by evicting the idlest one again.
    assert_eq!(value(&text, &closed("evicted")), 2.0, "{text}");
    assert_eq!(value(&text, &closed("bad-input")), 0.0, "{text}");
}
