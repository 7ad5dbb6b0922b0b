//! `grey_listing --migrate-store FROM TO` (issue 7): configuration and live triplets copied
//! between stores — SQLite → the backend under test → a new SQLite file — in one transaction on
//! the target, with counts printed; bad input refused before anything is opened.

use grey_listing::engine::{self, Message};
use grey_listing::export_format;
use grey_listing::store::{self, DbLocation, LiveTriplet};

use crate::support::{Backend, Outcome, Test, grey_listing};

const NOW: i64 = 2_000_000_000;

fn migrate(from: &str, to: &str) -> Outcome {
    let args = ["--migrate-store", from, to];
    let output = grey_listing()
        .env("GREY_LISTING_NOW", NOW.to_string())
        .args(args)
        .output()
        .unwrap();
    Outcome::from(output, &args)
}

/// Everything a store holds that migration copies: configuration and live triplets.
fn contents(location: &str) -> (export_format::ConfigDump, Vec<LiveTriplet>) {
    let mut store = store::open(&DbLocation::parse(location)).unwrap();
    let mut result = None;
    store
        .read(&mut |tx| {
            result = Some((export_format::export(tx)?, tx.live_triplets(NOW)?));
            Ok(())
        })
        .unwrap();
    result.unwrap()
}

fn message(sender: &str) -> Message {
    Message {
        client_ip: Some("192.0.2.7".parse().unwrap()),
        client_name: None,
        sender: sender.to_string(),
        recipients: vec!["u@local.example".to_string()],
        authenticated: false,
        ..Message::default()
    }
}

// Issue 7: SQLite → store under test → SQLite keeps settings, all lists, domain flags, mailbox
// lists and the unexpired triplets (with their network, times and pass counts); expired
// triplets are left behind.
fn migrate_store_round_trip(backend: Backend) {
    let source = Test::new();
    let middle = Test::on(backend);
    let back = Test::new();
    let src = source.location();
    source
        .run(&["-u", "-grey-interval", "9", "-penalty-status", "true"])
        .stdout(crate::support::SERVER_UPDATED);
    source.run(&[
        "-u",
        "-blacklist",
        "add:*@spam.example",
        "-domains-blacklist",
        "del:dsl|broadband|hsd",
    ]);
    source.run(&["-ud", "example.com", "-status", "off"]);
    source.run(&["-um", "john@example.com", "-whitelist", "add:*@ietf.org"]);
    {
        let mut store = source.open();
        // Expired by NOW: first seen long ago, expiry = first pass + expire interval.
        engine::check_message(store.as_mut(), &message("old@x.example"), NOW - 40_000_000).unwrap();
        // Live: one new, one passed twice.
        engine::check_message(store.as_mut(), &message("new@x.example"), NOW - 60).unwrap();
        for at in [NOW - 7_200, NOW - 3_600, NOW - 1_800] {
            engine::check_message(store.as_mut(), &message("passed@x.example"), at).unwrap();
        }
    }
    let (config, live) = contents(&src);
    assert_eq!(live.len(), 2, "{live:?}");
    assert_eq!(live.iter().map(|l| l.triplet.pass_count).max(), Some(2));

    let expected_counts = "\n\
        Settings               copied\n\
        Server list patterns   13\n\
        Domains                1\n\
        Mailboxes              1\n\
        Mailbox patterns       1\n\
        Live triplets          2\n\
        \n\
        SUCCESS: Migration of store complete.\n";
    let shown = |location: &str| DbLocation::parse(location).to_string();
    migrate(&src, &middle.location()).stdout(&format!(
        "Copied from {} to {}:\n{expected_counts}",
        shown(&src),
        shown(&middle.location())
    ));
    assert_eq!(contents(&middle.location()), (config.clone(), live.clone()));
    migrate(&middle.location(), &back.location()).stdout(&format!(
        "Copied from {} to {}:\n{expected_counts}",
        shown(&middle.location()),
        shown(&back.location())
    ));
    assert_eq!(contents(&back.location()), (config, live));
}

// Issue 7: the target's configuration is replaced, not merged, in one transaction: a pattern
// only the target had is gone afterwards; a triplet only the target had stays.
fn migrate_store_replaces_the_configuration(backend: Backend) {
    let source = Test::new();
    let target = Test::on(backend);
    source.run(&["-i"]);
    target.run(&["-u", "-whitelist", "add:*@only-target.example"]);
    {
        let mut store = target.open();
        engine::check_message(store.as_mut(), &message("target@x.example"), NOW - 10).unwrap();
    }
    migrate(&source.location(), &target.location());
    let (config, live) = contents(&target.location());
    assert!(config.lists.white.is_empty(), "{:?}", config.lists.white);
    assert_eq!(live.len(), 1);
}

on_both_stores!(
    migrate_store_round_trip,
    migrate_store_replaces_the_configuration
);

// DESIGN.md §2 validation: bad `--migrate-store` input exits 1, names the problem and creates nothing.
#[test]
fn migrate_store_bad_input() {
    let t = Test::new();
    let a = t.dir().join("a.db");
    let b = t.dir().join("b.db");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    migrate(a, b).bad_input(&[
        "--migrate-store",
        "source database",
        "a.db",
        "does not exist",
    ]);
    grey_listing().args(["--db", a, "-i"]).assert().success();
    migrate(a, a).bad_input(&["FROM and TO are the same database"]);
    t.run_raw(&["-migrate-store", a, b, "--db", a])
        .bad_input(&["'--db' is not allowed with -migrate-store"]);
    t.run_raw(&["--migrate-store", a])
        .bad_input(&["--migrate-store"]);
    t.run_raw(&["--migrate-store", a, b, "-status", "on"])
        .bad_input(&["'-status' is not allowed with --migrate-store"]);
    assert!(
        !std::path::Path::new(b).exists(),
        "no target may be created"
    );
}
