//! A database file moved over the path (a restored copy) while the milter and the policy server
//! both have the old one open. A move replaces only the database file: the `-wal` and `-shm`
//! files at the path are still the ones both daemons use. Each daemon must move to the new file
//! before its next decision, and letting go of the old one must not throw away what the other
//! daemon has already written to the new one through that shared log.

use std::path::Path;

use super::shared::filter_run;
use super::shared_load::integrity;
use crate::policyd::lifecycle::{fresh_sender, restored_copy};
use crate::policyd::server::{self, Server, cli, request};
use crate::support::milter::{DEFER as MILTER_DEFER, Milter, Mta, reply_text};

/// The milter's reply to a rejected recipient.
const MILTER_REJECT: &str = "550 5.7.1 Command rejected";

/// The senders of the triplets stored in the SQLite file at `db`.
fn stored_senders(db: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT sender, recipient FROM triplets ORDER BY sender, recipient")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Every decision after the move, and only those, is in the file at `db`.
#[track_caller]
fn assert_stored(db: &Path, expected: &[(String, String)]) {
    let stored = stored_senders(db);
    let missing: Vec<_> = expected.iter().filter(|t| !stored.contains(t)).collect();
    let extra: Vec<_> = stored.iter().filter(|t| !expected.contains(t)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "decided after the move but not in the restored file: {missing:?}; in it but not \
         decided after the move: {extra:?}"
    );
}

/// One new message from `sender` to each daemon (the policy server first); their answers.
fn both_asked(milter: &Milter, c: &mut server::Client, sender: &str) -> (String, String) {
    let policy = c.ask(&request(
        "198.51.100.7",
        "unknown",
        sender,
        "p@local.example",
        &[],
    ));
    let mut mta = milter.connect();
    Mta::start_message(
        "[198.51.100.7]",
        b'4',
        "198.51.100.7",
        &format!("<{sender}>"),
        &mut mta,
    );
    (policy, reply_text(&mta.rcpt("<m@local.example>")))
}

#[test]
fn a_database_moved_over_the_path_is_used_by_both_daemons_from_their_next_decision() {
    moved_over(&[]);
}

// The same with a pool of database connections in each daemon, every one of which must let go
// of the old file.
#[test]
fn a_database_moved_over_the_path_is_used_by_every_pooled_connection_of_both_daemons() {
    moved_over(&["--db-connections", "3"]);
}

/// Both daemons (with `extra` options) on one database, a restored copy moved over it, and
/// decisions from both after the move.
fn moved_over(extra: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let location = db.to_str().unwrap();
    cli(location, &["-i"]);
    let mut milter = Milter::start_on(location, "127.0.0.1:0", extra);
    let mut server = Server::start_on(location, "127.0.0.1:0", extra);
    let mut c = server.connect();
    // Decisions on the old file: both daemons have it open, and its log holds their writes.
    for n in 0..10 {
        let answers = both_asked(&milter, &mut c, &fresh_sender(n));
        assert_eq!(
            answers,
            (server::DEFER.to_string(), MILTER_DEFER.to_string())
        );
    }
    // A restored copy, self-contained as --backup writes it, with a black-list entry the old
    // file does not have.
    let restored = dir.path().join("restored.db");
    restored_copy(&restored, &["-u", "-blacklist", "add:*@restored.example"]);
    std::fs::rename(&restored, &db).unwrap();

    // From the next decision on, both decide on the restored file and store there.
    let mut expected = Vec::new();
    for n in 100..120 {
        let sender = fresh_sender(n);
        let answers = both_asked(&milter, &mut c, &sender);
        assert_eq!(
            answers,
            (server::DEFER.to_string(), MILTER_DEFER.to_string()),
            "{sender}"
        );
        expected.push((sender.clone(), "m@local.example".to_string()));
        expected.push((sender, "p@local.example".to_string()));
    }
    // On the restored configuration.
    let answers = both_asked(&milter, &mut c, "x@restored.example");
    assert_eq!(
        answers,
        (server::REJECT.to_string(), MILTER_REJECT.to_string())
    );
    let now = grey_listing::clock::system_now();
    filter_run(&db, now, "198.51.100.7", "", &fresh_sender(200)).assert_verdict("DEFER");
    expected.push((fresh_sender(200), "u@local.example".to_string()));
    expected.sort();
    assert_stored(&db, &expected);
    milter.wait_log("was replaced by another file: reopening it");
    server.wait_log("was replaced by another file: reopening it");

    // Stopped, the daemons leave the restored file whole.
    drop(c);
    milter.signal(libc::SIGTERM);
    server.terminate();
    assert_eq!((milter.wait_exit(), server.wait_exit()), (Some(0), Some(0)));
    assert_stored(&db, &expected);
    assert_eq!(integrity(&db), "ok");
}
