//! Library-level tests of the extension rules the filter and policyd share: the client key
//! (DESIGN.md §4 "Client key"), the network-keyed auto-whitelist (DESIGN.md §4 step 5) and the decision
//! log with its retention (issue 6).

use crate::support::Backend;
use crate::support::ext::{Db, T0};
use grey_listing::decision::{Reason, Verdict};

const SES_1: (&str, &str) = ("54.240.8.17", "a8-17.smtp-out.amazonses.com");
const SES_2: (&str, &str) = ("54.240.27.90", "a27-90.smtp-out.amazonses.com");

/// The whole decision log, oldest first, through the store API (works on both stores).
fn log_rows(db: &Db) -> Vec<(i64, String, String, String, String)> {
    let mut store = db.open();
    let mut rows = Vec::new();
    store
        .read(&mut |tx| {
            rows = tx.decision_log(i64::MIN)?;
            Ok(())
        })
        .unwrap();
    rows.into_iter()
        .map(|e| (e.time, e.client_key, e.organisation, e.verdict, e.reason))
        .collect()
}

// DESIGN.md §4 "Client key": with group-by-host-domain (default on) a retry from another address
// and another /24 of the same provider finds the triplet.
fn provider_retry_from_another_subnet_finds_the_triplet(backend: Backend) {
    let db = Db::on(backend);
    let first = db.deliver(
        T0,
        SES_1.0,
        Some(SES_1.1),
        "bounce@news.example.com",
        "u@local.example",
    );
    assert_eq!(first.verdict, Verdict::Defer);
    assert_eq!(first.recipients[0].decision.reason, Reason::New);
    let retry = db.deliver(
        T0 + 360,
        SES_2.0,
        Some(SES_2.1),
        "bounce@news.example.com",
        "u@local.example",
    );
    assert_eq!(retry.verdict, Verdict::Pass);
    assert_eq!(retry.recipients[0].decision.reason, Reason::TripletFound);
    assert_eq!(retry.recipients[0].decision.delay, Some(360));
}

// DESIGN.md §4: with the setting off the key is the network, as without the extension.
fn without_grouping_another_subnet_is_a_new_client(backend: Backend) {
    let db = Db::on(backend);
    db.ok(T0, &["-u", "-group-by-host-domain", "false"]);
    db.deliver(
        T0,
        SES_1.0,
        Some(SES_1.1),
        "bounce@news.example.com",
        "u@local.example",
    );
    let retry = db.deliver(
        T0 + 360,
        SES_2.0,
        Some(SES_2.1),
        "bounce@news.example.com",
        "u@local.example",
    );
    assert_eq!(retry.verdict, Verdict::Defer);
    assert_eq!(retry.recipients[0].decision.reason, Reason::New);
}

// DESIGN.md §4: host names that contain the client address (end-user lines) keep the network key,
// so two customers of one ISP never share a triplet.
fn end_user_lines_are_not_grouped(backend: Backend) {
    let db = Db::on(backend);
    db.deliver(
        T0,
        "198.51.100.7",
        Some("c-198-51-100-7.res.isp.example"),
        "a@spam.example",
        "u@local.example",
    );
    let other = db.deliver(
        T0 + 360,
        "203.0.113.9",
        Some("c-203-0-113-9.res.isp.example"),
        "a@spam.example",
        "u@local.example",
    );
    assert_eq!(other.recipients[0].decision.reason, Reason::New);
}

// DESIGN.md §4 step 5: the auto-whitelist is keyed by network, never by host domain: an
// organisation's whitelisted /24 does not whitelist its other networks.
fn auto_whitelist_is_keyed_by_network(backend: Backend) {
    let db = Db::on(backend);
    db.ok(T0, &["-u", "-awl-count", "2"]);
    for (n, sender) in ["a@one.example", "b@two.example"].iter().enumerate() {
        let t = T0 + n as i64 * 1000;
        db.deliver(t, SES_1.0, Some(SES_1.1), sender, "u@local.example");
        let pass = db.deliver(t + 400, SES_1.0, Some(SES_1.1), sender, "u@local.example");
        assert_eq!(pass.verdict, Verdict::Pass);
    }
    let same_net = db.deliver(
        T0 + 5000,
        "54.240.8.99",
        Some("a8-99.smtp-out.amazonses.com"),
        "c@three.example",
        "u@local.example",
    );
    assert_eq!(same_net.recipients[0].decision.reason, Reason::ClientAwl);
    let other_net = db.deliver(
        T0 + 5000,
        SES_2.0,
        Some(SES_2.1),
        "d@four.example",
        "u@local.example",
    );
    assert_eq!(other_net.recipients[0].decision.reason, Reason::New);
}

// Issue 6: every recipient decision is logged with client key and organisation; rows older
// than the retention are pruned by the mail path; retention 0 writes no log.
fn decisions_are_logged_and_pruned_after_retention(backend: Backend) {
    let db = Db::on(backend);
    db.ok(T0, &["-u", "-log-retention", "1d"]);
    db.deliver(
        T0,
        SES_1.0,
        Some(SES_1.1),
        "a@news.example.com",
        "u@local.example",
    );
    db.deliver(
        T0 + 400,
        SES_2.0,
        Some(SES_2.1),
        "a@news.example.com",
        "u@local.example",
    );
    let rows = log_rows(&db);
    assert_eq!(
        rows,
        vec![
            (
                T0,
                "amazonses.com".into(),
                "amazonses.com".into(),
                "defer".into(),
                "new".into()
            ),
            (
                T0 + 400,
                "amazonses.com".into(),
                "amazonses.com".into(),
                "pass".into(),
                "triplet found".into()
            ),
        ]
    );
    // Two days later: the day-old rows are gone, the new one is there.
    db.deliver(
        T0 + 2 * 86_400,
        "192.0.2.1",
        None,
        "x@y.example",
        "u@local.example",
    );
    let rows = log_rows(&db);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].1, "192.0.2.0/24");
    assert_eq!(rows[0].2, "");
    db.ok(T0, &["-u", "-log-retention", "0d"]);
    db.deliver(
        T0 + 3 * 86_400,
        "192.0.2.1",
        None,
        "x@y.example",
        "v@local.example",
    );
    assert_eq!(log_rows(&db).len(), 1);
}

on_both_stores!(
    provider_retry_from_another_subnet_finds_the_triplet,
    without_grouping_another_subnet_is_a_new_client,
    end_user_lines_are_not_grouped,
    auto_whitelist_is_keyed_by_network,
    decisions_are_logged_and_pruned_after_retention,
);
