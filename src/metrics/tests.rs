//! The exposition checked line by line against the OpenMetrics text format, and the routing
//! of request heads.

use std::sync::Arc;

// The checker is shared with the integration tests, which scrape the real server.
#[path = "../../tests/integration/support/openmetrics.rs"]
mod openmetrics;
use openmetrics::check_openmetrics;

use super::http::{Route, route};
use super::*;
use crate::daemon::limits::{CloseCause, ClosedConnections};
use crate::decision::{Decision, Reason, Verdict};
use crate::engine::RecipientOutcome;

fn decided(verdict: Verdict, reason: Reason) -> MessageOutcome {
    MessageOutcome {
        verdict,
        recipients: vec![RecipientOutcome {
            recipient: "u@example.com".to_string(),
            decision: Decision {
                verdict,
                reason,
                pattern: None,
                delay: None,
                write: None,
            },
        }],
    }
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn every_family_is_there_and_the_text_is_openmetrics() {
    let closed = Arc::new(ClosedConnections::default());
    closed.record(CloseCause::Idle);
    let metrics = Metrics::new(Options { batch_size: true }, Arc::clone(&closed));
    metrics.record_message(&decided(Verdict::Defer, Reason::New));
    metrics.record_message(&decided(Verdict::Defer, Reason::New));
    metrics.record_message(&decided(Verdict::Pass, Reason::TripletFound));
    metrics.record_store_error(3);
    metrics.observe_decision_seconds(0.003);
    metrics.observe_batch(4);
    metrics.set_connections(7);
    let text = metrics.encode();
    check_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let expect = [
        (
            r#"greylisting_decisions_total{action="defer",reason="new"}"#,
            2.0,
        ),
        (
            r#"greylisting_decisions_total{action="pass",reason="triplet found"}"#,
            1.0,
        ),
        (
            r#"greylisting_decisions_total{action="pass",reason="store error"}"#,
            3.0,
        ),
        ("greylisting_store_errors_total", 1.0),
        ("greylisting_connections", 7.0),
        (r#"greylisting_connections_closed_total{cause="idle"}"#, 1.0),
        (
            r#"greylisting_connections_closed_total{cause="evicted"}"#,
            0.0,
        ),
        (r#"greylisting_decision_seconds_bucket{le="0.0025"}"#, 0.0),
        (r#"greylisting_decision_seconds_bucket{le="0.005"}"#, 1.0),
        (r#"greylisting_decision_seconds_bucket{le="+Inf"}"#, 1.0),
        (r#"greylisting_batch_size_bucket{le="4.0"}"#, 1.0),
        (
            &format!(
                "greylisting_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            ),
            1.0,
        ),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    }
    for bucket in DECISION_SECONDS_BUCKETS {
        let le = format!("{bucket:?}");
        assert!(
            text.contains(&format!(
                "greylisting_decision_seconds_bucket{{le=\"{le}\"}}"
            )),
            "bucket {le} in\n{text}"
        );
    }
}

#[test]
fn the_milter_form_has_no_batch_size() {
    let metrics = Metrics::new(
        Options { batch_size: false },
        Arc::new(ClosedConnections::default()),
    );
    let text = metrics.encode();
    check_openmetrics(&text).unwrap();
    assert!(!text.contains("greylisting_batch_size"));
}

#[test]
fn the_checker_rejects_what_is_not_openmetrics() {
    let good = "# TYPE a counter\na_total 1\n# EOF\n";
    assert!(check_openmetrics(good).is_ok());
    for bad in [
        "# TYPE a counter\na_total 1\n",
        "# TYPE a counter\na 1\n# EOF\n",
        "# TYPE a counter\na_total{x=\"1} 1\n# EOF\n",
        "# TYPE a counter\na_total one\n# EOF\n",
        "a_total 1\n# EOF\n",
        "# TYPE a counter\n# TYPE a counter\n# EOF\n",
    ] {
        assert!(check_openmetrics(bad).is_err(), "{bad}");
    }
}

#[test]
fn request_heads_are_routed() {
    assert_eq!(
        route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
        Route::Metrics
    );
    assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
    assert_eq!(route(b"GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
    assert_eq!(route(b"GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
    assert_eq!(
        route(b"POST /metrics HTTP/1.1\r\n\r\n"),
        Route::MethodNotAllowed
    );
    assert_eq!(
        route(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
        Route::MethodNotAllowed
    );
    assert_eq!(route(b"GET /metrics\r\n\r\n"), Route::BadRequest);
    assert_eq!(route(b"\x00\xff\xfe garbage\r\n\r\n"), Route::BadRequest);
    assert_eq!(route(b"GET /metrics SMTP/1.1\r\n\r\n"), Route::BadRequest);
}

// Label values stay fixed names: a DNSWL pass is labelled `dnswl` whatever zone listed the
// client (zones are configuration, not a fixed set), and a trusted client `trusted client`.
#[test]
fn dns_list_passes_are_labelled_by_fixed_reason_names() {
    let metrics = Metrics::new(
        Options { batch_size: false },
        Arc::new(ClosedConnections::default()),
    );
    for zone in ["list.dnswl.example", "other.wl.example"] {
        let mut outcome = decided(Verdict::Pass, Reason::Dnswl);
        outcome.recipients[0].decision.pattern = Some(zone.to_string());
        metrics.record_message(&outcome);
    }
    metrics.record_message(&decided(Verdict::Pass, Reason::TrustedClient));
    let text = metrics.encode();
    check_openmetrics(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(
        sample(
            &text,
            r#"greylisting_decisions_total{action="pass",reason="dnswl"}"#
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            r#"greylisting_decisions_total{action="pass",reason="trusted client"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("wl.example"), "{text}");
}
