//! `grey_listing --explain` (issue 6): walks DESIGN.md §4 at the virtual time, read-only.

use crate::support::Backend;
use crate::support::ext::{Db, T0, value};

const SES: (&str, &str) = ("54.240.8.17", "a8-17.smtp-out.amazonses.com");

/// Everything the mail path writes or reads, through the store API (both stores): settings,
/// the server black list, every triplet and the whole decision log.
fn snapshot(db: &Db) -> String {
    let mut store = db.open();
    let mut text = String::new();
    store
        .read(&mut |tx| {
            text = format!(
                "{:?}\n{:?}\n{:?}\n{:?}",
                tx.settings()?,
                tx.list(grey_listing::config::ListKind::Black, "")?,
                tx.live_triplets(i64::MIN)?,
                tx.decision_log(i64::MIN)?
            );
            Ok(())
        })
        .unwrap();
    text
}

// DESIGN.md §4 steps 1–6 as the filter would decide: a new triplet defers; nothing is recorded (on
// SQLite the database file is even byte-for-byte unchanged).
fn explains_a_new_triplet_without_changing_the_database(backend: Backend) {
    let db = Db::on(backend);
    db.ok(T0, &["-u", "-blacklist", "add:*@bad.example"]);
    let file_before = (backend == Backend::Sqlite).then(|| std::fs::read(db.file()).unwrap());
    let before = snapshot(&db);
    let text = db.ok(
        T0,
        &[
            "--explain",
            SES.0,
            SES.1,
            "news@shop.example",
            "u@local.example",
        ],
    );
    assert!(text.contains("2026-11-23 09:00:00 UTC"), "{text}");
    assert!(
        value(&text, "White domains").starts_with("a8-17.smtp-out.amazonses.com: no match"),
        "{text}"
    );
    assert!(
        value(&text, "Client AWL").starts_with("54.240.8.0/24: 0 passed triplets, needs 5"),
        "{text}"
    );
    assert!(
        value(&text, "Client key").starts_with("amazonses.com (registrable domain"),
        "{text}"
    );
    assert!(
        value(&text, "Triplet state").starts_with("not recorded"),
        "{text}"
    );
    assert!(value(&text, "Verdict").starts_with("defer (new)"), "{text}");
    assert_eq!(snapshot(&db), before);
    if let Some(file_before) = file_before {
        assert_eq!(std::fs::read(db.file()).unwrap(), file_before);
    }
    // Explaining again gives the same answer: nothing was recorded.
    assert_eq!(
        db.ok(
            T0,
            &[
                "--explain",
                SES.0,
                SES.1,
                "news@shop.example",
                "u@local.example"
            ]
        ),
        text
    );
}

// DESIGN.md §4 step 6 at virtual times: early retry, then the retry in time, from another address
// of the same organisation.
fn follows_the_triplet_through_virtual_time(backend: Backend) {
    let db = Db::on(backend);
    db.deliver(
        T0,
        SES.0,
        Some(SES.1),
        "news@shop.example",
        "u@local.example",
    );
    let early = db.ok(
        T0 + 60,
        &[
            "--explain",
            "54.240.27.90",
            "a27-90.smtp-out.amazonses.com",
            "news@shop.example",
            "u@local.example",
        ],
    );
    assert!(
        value(&early, "Verdict").starts_with("defer (early-retry)"),
        "{early}"
    );
    assert!(early.contains("retry too early (4m 00s left)"), "{early}");
    assert!(
        early.contains(
            "pending since 2026-11-23 09:00:00 UTC, accepted from 2026-11-23 09:05:00 UTC"
        ),
        "{early}"
    );
    let json: serde_json::Value = serde_json::from_str(&db.ok(
        T0 + 400,
        &[
            "--explain",
            "54.240.27.90",
            "a27-90.smtp-out.amazonses.com",
            "news@shop.example",
            "u@local.example",
            "--json",
        ],
    ))
    .unwrap();
    assert_eq!(json["verdict"], "pass");
    assert_eq!(json["reason"], "triplet found");
    assert_eq!(json["client_key"]["key"], "amazonses.com");
    assert_eq!(json["client_key"]["network"], "54.240.27.0/24");
    assert_eq!(json["triplet"]["state"]["state"], "pending");
    assert_eq!(json["triplet"]["state"]["earliest_accept"], T0 + 300);
}

// DESIGN.md §4 steps 3–4: list hits name the pattern; the walk stops at the deciding check.
fn names_the_matching_pattern(backend: Backend) {
    let db = Db::on(backend);
    db.ok(T0, &["-u", "-blacklist", "add:*@bad.example"]);
    let text = db.ok(
        T0,
        &[
            "--explain",
            "192.0.2.1",
            "-",
            "x@bad.example",
            "u@local.example",
        ],
    );
    assert!(
        value(&text, "Server black list")
            .starts_with("<x@bad.example> matches: reject (pattern *@bad.example)"),
        "{text}"
    );
    assert!(
        value(&text, "Verdict").starts_with("reject (server black list), pattern *@bad.example"),
        "{text}"
    );
    assert!(!text.contains("Client AWL"), "{text}");
    let white = db.ok(
        T0,
        &[
            "--explain",
            "40.107.22.51",
            "mail-db5.outbound.protection.outlook.com",
            "-",
            "u@local.example",
        ],
    );
    assert!(
        value(&white, "Verdict").starts_with("pass (white domains pattern), pattern *.outlook.com"),
        "{white}"
    );
    assert!(white.contains("sender <>"), "{white}");
}

// DESIGN.md §4 steps 1 and 4: a disabled domain decides at step 2; mailbox lists are skipped while
// personal configuration is prohibited, and the walk says so.
fn domain_switch_and_personal_lists(backend: Backend) {
    let db = Db::on(backend);
    db.ok(
        T0,
        &[
            "-um",
            "u@local.example",
            "-whitelist",
            "add:*@friend.example",
        ],
    );
    let text = db.ok(
        T0,
        &[
            "--explain",
            "192.0.2.1",
            "-",
            "a@friend.example",
            "u@local.example",
        ],
    );
    assert_eq!(
        value(&text, "User's white list"),
        "<a@friend.example> matches: pass (pattern *@friend.example)"
    );
    assert_eq!(
        value(&text, "Verdict"),
        "pass (user white list), pattern *@friend.example"
    );
    db.ok(T0, &["-u", "-personal-conf", "false"]);
    let text = db.ok(
        T0,
        &[
            "--explain",
            "192.0.2.1",
            "-",
            "a@friend.example",
            "u@local.example",
        ],
    );
    assert_eq!(
        value(&text, "User's white list"),
        "skipped: personal configuration prohibited"
    );
    assert_eq!(value(&text, "Verdict"), "defer (new)");
    db.ok(T0, &["-ud", "local.example", "-status", "off"]);
    let text = db.ok(
        T0,
        &[
            "--explain",
            "192.0.2.1",
            "-",
            "a@friend.example",
            "u@local.example",
        ],
    );
    assert_eq!(
        value(&text, "Domain checking"),
        "local.example: disabled: pass"
    );
    assert_eq!(value(&text, "Verdict"), "pass (disabled for domain)");
    assert!(!text.contains("Authentication"), "{text}");
}

on_both_stores!(
    explains_a_new_triplet_without_changing_the_database,
    follows_the_triplet_through_virtual_time,
    names_the_matching_pattern,
    domain_switch_and_personal_lists,
);
