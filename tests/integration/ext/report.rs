//! `grey_listing --report` (issue 6): sender organisations most often deferred, from the
//! decision log the engine writes, with suggested white patterns.

use crate::support::Backend;
use crate::support::ext::{Db, T0, seed_week};

// Issue 6: deferrals, distinct client addresses, later accepted, median delay, white pattern;
// suggestions only for unlisted domains at or above the threshold.
fn reports_deferred_organisations_and_suggests_patterns(backend: Backend) {
    let db = Db::on(backend);
    seed_week(&db);
    let text = db.ok(T0 + 86_400, &["--report"]);
    assert!(
        text.contains("since 2026-11-17 09:00:00 UTC (top 10)"),
        "{text}"
    );
    let row = |name: &str| -> Vec<String> {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no row {name}:\n{text}"))
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    assert_eq!(
        row("amazonses.com"),
        ["amazonses.com", "6", "2", "3 of 3", "7m 00s", "-"]
    );
    assert_eq!(
        row("sendgrid.net"),
        ["sendgrid.net", "2", "1", "0 of 1", "-", "*.sendgrid.net"]
    );
    assert_eq!(
        row("198.51.100.0/24"),
        ["198.51.100.0/24", "2", "1", "0 of 2", "-", "-"]
    );
    // Most deferred first.
    let first = text.find("amazonses.com").unwrap();
    assert!(first < text.find("sendgrid.net").unwrap());
    assert!(
        text.contains("\ngrey_listing -u -domains-whitelist add:*.amazonses.com\n"),
        "{text}"
    );
    assert!(!text.contains("add:*.sendgrid.net"), "{text}");
    assert!(!text.contains("add:*.198"), "{text}");
}

// Issue 6: -top limits the rows, -threshold the suggestions, -since the period; --json.
fn options_and_json(backend: Backend) {
    let db = Db::on(backend);
    seed_week(&db);
    let json: serde_json::Value = serde_json::from_str(&db.ok(
        T0 + 86_400,
        &["--report", "-top", "1", "-threshold", "7", "--json"],
    ))
    .unwrap();
    let orgs = json["organisations"].as_array().unwrap();
    assert_eq!(orgs.len(), 1);
    assert_eq!(orgs[0]["organisation"], "amazonses.com");
    assert_eq!(orgs[0]["deferrals"], 6);
    assert_eq!(orgs[0]["median_delay"], 420);
    assert_eq!(json["suggestions"].as_array().unwrap().len(), 0);
    // Eight days later the week-old deferrals are outside -since 7d.
    let later = db.ok(T0 + 8 * 86_400, &["--report"]);
    assert!(
        later.contains("No deferrals recorded in this period."),
        "{later}"
    );
    let wide = db.ok(T0 + 8 * 86_400, &["--report", "-since", "9d"]);
    assert!(wide.contains("amazonses.com"), "{wide}");
}

on_both_stores!(
    reports_deferred_organisations_and_suggests_patterns,
    options_and_json,
);
