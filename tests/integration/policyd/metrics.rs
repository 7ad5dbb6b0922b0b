//! `greylisting-policyd --metrics-listen`: the real server scraped over loopback. The text is
//! OpenMetrics, the counters move by exactly the decisions made, and the endpoint survives
//! garbage, slow and oversized requests. Also the store's own counters (`decision_counters`)
//! on both stores, as `grey_listing --stats --prometheus` prints them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::policyd::server::{DEFER, Server, T0 as POLICY_T0, cli, request};
use crate::support::Backend;
use crate::support::ext::{Db, T0};
use crate::support::openmetrics::check_openmetrics;

/// One HTTP exchange: sends `bytes`, returns everything the server wrote before closing.
pub(crate) fn exchange(addr: &str, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(bytes).unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// `grey_listing --db DB ARGS`'s standard output; panics unless it succeeds.
pub(crate) fn cli_output(db: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("grey_listing"))
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "grey_listing {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `GET /metrics`: checks the status, the content type and the OpenMetrics text; returns it.
pub(crate) fn scrape(addr: &str) -> String {
    let response = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").expect("no head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains(
            "\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"
        ),
        "{head}"
    );
    check_openmetrics(body).unwrap_or_else(|e| panic!("{e}\n{body}"));
    body.to_string()
}

/// The value of `series` (name and labels) in `text`; 0 when absent.
pub(crate) fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn metrics_server(backend: Backend) -> (Server, String) {
    let server = Server::start_in(
        backend,
        &["--allow-test-time", "--metrics-listen", "127.0.0.1:0"],
    );
    let line = server.wait_log("Serving metrics at http://");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap()
        .to_string();
    (server, addr)
}

#[test]
fn counters_move_by_exactly_the_decisions_made() {
    let (server, addr) = metrics_server(Backend::Sqlite);
    cli(&server.db, &["-u", "-grey-interval", "5"]);
    cli(&server.db, &["-u", "-blacklist", "add:*@spam.example"]);
    let before = scrape(&addr);
    let defer_new = r#"greylisting_decisions_total{action="defer",reason="new"}"#;
    let pass_found = r#"greylisting_decisions_total{action="pass",reason="triplet found"}"#;
    let reject_black = r#"greylisting_decisions_total{action="reject",reason="server black list"}"#;
    assert_eq!(value(&before, defer_new), 0.0);
    let mut client = server.connect();
    let ask = |client: &mut crate::policyd::server::Client, sender: &str, t: i64| {
        client.ask(&request(
            "192.0.2.1",
            "mail.example.com",
            sender,
            "u@local.example",
            &[("policy_test_time", &t.to_string())],
        ))
    };
    // Letters, not digits: digit runs in a sender fold into one triplet.
    for name in ["sa", "sb", "sc"] {
        assert_eq!(
            ask(&mut client, &format!("{name}@a.example"), POLICY_T0),
            DEFER
        );
    }
    assert!(ask(&mut client, "sa@a.example", POLICY_T0 + 600).starts_with("action=PREPEND"));
    assert!(ask(&mut client, "x@spam.example", POLICY_T0).starts_with("action=REJECT"));
    let after = scrape(&addr);
    assert_eq!(value(&after, defer_new), 3.0, "{after}");
    assert_eq!(value(&after, pass_found), 1.0, "{after}");
    assert_eq!(value(&after, reject_black), 1.0, "{after}");
    assert_eq!(value(&after, "greylisting_decision_seconds_count"), 5.0);
    // Every request was in some batch.
    assert_eq!(value(&after, "greylisting_batch_size_sum"), 5.0, "{after}");
    assert_eq!(value(&after, "greylisting_store_errors_total"), 0.0);
    assert_eq!(value(&after, "greylisting_connections"), 1.0, "{after}");
    // The store counted the same decisions, as the policy server's.
    let stats = cli_output(&server.db, &["--stats", "--prometheus"]);
    for (labels, n) in [
        (r#"component="policyd",action="defer",reason="new""#, 3),
        (
            r#"component="policyd",action="pass",reason="triplet found""#,
            1,
        ),
        (
            r#"component="policyd",action="reject",reason="server black list""#,
            1,
        ),
    ] {
        let line = format!("greylisting_store_decisions_total{{{labels}}} {n}");
        assert!(stats.lines().any(|l| l == line), "{line} in\n{stats}");
    }
}

/// Garbage, other paths, other methods and an oversized head each get their status (shared with
/// the milter's endpoint).
pub(crate) fn rejects_bad_requests(addr: &str) {
    let status = |bytes: &[u8]| {
        let response = exchange(addr, bytes);
        response.lines().next().unwrap_or("").to_string()
    };
    assert_eq!(
        status(b"\x00\xff garbage\r\n\r\n"),
        "HTTP/1.1 400 Bad Request"
    );
    assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
    assert_eq!(
        status(b"POST /metrics HTTP/1.1\r\n\r\n"),
        "HTTP/1.1 405 Method Not Allowed"
    );
    let mut oversized = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    oversized.extend(std::iter::repeat_n(b'a', 9 * 1024));
    assert_eq!(
        status(&oversized),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

#[test]
fn the_endpoint_survives_garbage_slow_and_oversized_requests() {
    let (_server, addr) = metrics_server(Backend::Sqlite);
    rejects_bad_requests(&addr);
    // A client that sends half a head and waits: others are served meanwhile, and it is cut off
    // after the head timeout (5 s; asserted within three times that).
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    let started = Instant::now();
    scrape(&addr);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a scrape waited for the slow client"
    );
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut out = String::new();
    let _ = slow.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 408 "), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    scrape(&addr);
}

/// The store's counters, per component, through `--stats --prometheus`.
fn store_counters_grow_per_component(backend: Backend) {
    let db = Db::on(backend);
    let empty = db.ok(T0, &["--stats", "--prometheus"]);
    assert!(
        !empty.contains("greylisting_store_decisions_total{"),
        "{empty}"
    );
    for name in ["sa", "sb", "sc"] {
        db.deliver(
            T0,
            "192.0.2.1",
            Some("mail.example.com"),
            &format!("{name}@a.example"),
            "u@local.example",
        );
    }
    db.deliver(
        T0 + 600,
        "192.0.2.1",
        Some("mail.example.com"),
        "sa@a.example",
        "u@local.example",
    );
    let text = db.ok(T0, &["--stats", "--prometheus"]);
    assert!(
        text.contains("# TYPE greylisting_store_decisions_total counter\n"),
        "{text}"
    );
    let sample = |labels: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(&format!("greylisting_store_decisions_total{{{labels}}} "))
            })
            .unwrap_or_else(|| panic!("{labels} in\n{text}"))
            .to_string()
    };
    assert_eq!(
        sample(r#"component="filter",action="defer",reason="new""#),
        "3"
    );
    assert_eq!(
        sample(r#"component="filter",action="pass",reason="triplet found""#),
        "1"
    );
    // Never purged with the decision log.
    db.ok(T0, &["-u", "-log-retention", "1h"]);
    let purged = db.ok(T0 + 86_400 * 365, &["--purge", "--json"]);
    assert!(
        purged.contains("\"decision_log_rows_removed\": 4"),
        "{purged}"
    );
    let later = db.ok(T0, &["--stats", "--prometheus"]);
    assert_eq!(later, text);
}

#[test]
fn prometheus_needs_stats_and_excludes_json() {
    let db = Db::new();
    for args in [
        &["--prometheus"][..],
        &["--stats", "--prometheus", "--json"],
    ] {
        let out = db.cli(T0).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
    }
}

on_both_stores!(store_counters_grow_per_component);

#[test]
fn a_metrics_address_in_use_or_invalid_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for listen in [taken.as_str(), "nonsense"] {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("greylisting-policyd"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                listen,
                "--db",
            ])
            .arg(&db)
            .env("GREY_LISTING_LOG", "stderr")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("cannot listen for metrics on {listen}")),
            "{stderr}"
        );
    }
}
