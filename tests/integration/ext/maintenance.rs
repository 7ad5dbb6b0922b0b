//! `grey_listing --stats` and `--purge` (issue 6), at virtual times.

use crate::support::Backend;
use crate::support::ext::{Db, T0, seed_week, value};

// Issue 6: counts of triplets (passed, pending), AWL client networks, decisions over 24 h.
fn stats_count_triplets_and_recent_decisions(backend: Backend) {
    let db = Db::on(backend);
    seed_week(&db);
    let now = T0 + 3 * 3_600;
    let text = db.ok(now, &["--stats"]);
    // Triplets: 3 SES (passed), 1 SendGrid, 2 for the bot (pending).
    assert_eq!(value(&text, "Triplets"), "6");
    assert_eq!(value(&text, "Passed triplets"), "3");
    assert_eq!(value(&text, "Pending triplets"), "3");
    assert_eq!(value(&text, "Expired triplets"), "0");
    assert_eq!(value(&text, "AWL client networks"), "0");
    assert_eq!(value(&text, "defer"), "10");
    assert_eq!(value(&text, "pass"), "3");
    assert_eq!(value(&text, "reject"), "0");
    assert_eq!(value(&text, "early-retry"), "4");
    assert_eq!(value(&text, "new"), "6");
    // With awl-count 1, the one /24 SES passed from (54.240.27.0/24) is auto-whitelisted.
    db.ok(now, &["-u", "-awl-count", "1"]);
    let json: serde_json::Value =
        serde_json::from_str(&db.ok(now, &["--stats", "--json"])).unwrap();
    assert_eq!(json["triplets"]["awl_networks"], 1);
    assert_eq!(json["decisions_24h"]["defer"], 10);
    // Two days later the decisions are out of the 24-hour window.
    let later: serde_json::Value =
        serde_json::from_str(&db.ok(now + 2 * 86_400, &["--stats", "--json"])).unwrap();
    assert_eq!(later["decisions_24h"]["defer"], 0);
}

// Issue 6: --purge removes expired triplets and log rows past the retention, and says so.
fn purge_removes_expired_triplets_and_old_log_rows(backend: Backend) {
    let db = Db::on(backend);
    seed_week(&db);
    let text = db.ok(T0 + 86_400, &["--purge"]);
    assert_eq!(value(&text, "Expired triplets"), "0 removed");
    assert_eq!(value(&text, "Decision log rows"), "0 removed");
    // 37 days later: every triplet has expired (expire 36 days), every row is past 30 days.
    let text = db.ok(T0 + 37 * 86_400, &["--purge"]);
    assert_eq!(value(&text, "Expired triplets"), "6 removed");
    assert_eq!(value(&text, "Decision log rows"), "13 removed");
    assert!(text.ends_with("SUCCESS: Purge complete.\n"), "{text}");
    let json: serde_json::Value =
        serde_json::from_str(&db.ok(T0 + 37 * 86_400, &["--purge", "--json"])).unwrap();
    assert_eq!(json["expired_triplets_removed"], 0);
    assert_eq!(json["decision_log_rows_removed"], 0);
    let stats = db.ok(T0 + 37 * 86_400, &["--stats"]);
    assert_eq!(value(&stats, "Triplets"), "0");
}

// DESIGN.md §1: a database written before the decision log existed (schema version 1) is migrated
// on open, keeping its settings, and then logs decisions.
#[test]
fn version_1_database_gains_the_decision_log() {
    let db = Db::new();
    db.ok(T0, &["-u", "-grey-interval", "7"]);
    {
        let store = grey_listing::store::SqliteStore::open(db.file()).unwrap();
        let conn = store.connection();
        conn.execute_batch(crate::support::UNDO_SCHEMA_4).unwrap();
        conn.execute_batch("DROP TABLE decision_log; PRAGMA user_version = 1;")
            .unwrap();
    }
    db.deliver(T0, "192.0.2.1", None, "a@b.example", "u@local.example");
    let stats = db.ok(T0, &["--stats"]);
    assert_eq!(value(&stats, "defer"), "1");
    assert!(
        db.ok(T0, &["-i"])
            .contains("Grey interval          7 minutes\n")
    );
}

on_both_stores!(
    stats_count_triplets_and_recent_decisions,
    purge_removes_expired_triplets_and_old_log_rows,
);
