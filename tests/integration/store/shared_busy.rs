//! One SQLite database locked by someone else (a `sqlite3` shell left in a transaction, a
//! long admin job) past the store's busy timeout, while the milter, the policy server and the
//! filter decide on it and the CLI changes and lists settings: each mail front end waits within
//! its bound, then passes the mail (fails open) and says why; none defers or rejects because of
//! the lock, none dies; the CLI's change fails with one clear line and exit 2, its listing works;
//! once the lock is gone each makes real decisions again.

use std::time::{Duration, Instant};

use super::shared::{both_daemons, filter_run};
use super::shared_load::admin;
use crate::policyd::server::{self, request};
use crate::support::milter::{DEFER as MILTER_DEFER, reply_text};

/// The store's busy timeout is 5 s; a front end answers within three times that.
const ANSWER_WITHIN: Duration = Duration::from_secs(15);

#[test]
fn a_lock_held_past_the_busy_timeout_fails_open_everywhere_and_passes_over() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (milter, server) = both_daemons(&db);
    let ask = |rcpt: &str| request("198.51.100.7", "unknown", "a@sender.example", rcpt, &[]);
    // Both daemons have their database open and their configuration cached.
    let mut c = server.connect();
    assert_eq!(c.ask(&ask("warm@local.example")), server::DEFER);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<warm@local.example>")), MILTER_DEFER);

    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let now = grey_listing::clock::system_now();
    let started = Instant::now();
    let (policy, milter_reply, filter, (update, info)) = std::thread::scope(|scope| {
        let policy = scope.spawn(|| c.ask(&ask("locked@local.example")));
        let milter_reply = scope.spawn(|| mta.rcpt("<locked@local.example>"));
        let filter = scope.spawn(|| filter_run(&db, now, "198.51.100.7", "", "a@sender.example"));
        let admin = scope.spawn(|| {
            (
                admin(&db, &["-u", "-grey-interval", "3"]),
                admin(&db, &["-i"]),
            )
        });
        (
            policy.join().unwrap(),
            milter_reply.join().unwrap(),
            filter.join().unwrap(),
            admin.join().unwrap(),
        )
    });
    let waited = started.elapsed();
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);

    assert!(waited < ANSWER_WITHIN, "answered after {waited:?}");
    assert_eq!(policy, server::DUNNO, "the policy server fails open");
    assert_eq!(milter_reply, (b'c', Vec::new()), "the milter fails open");
    filter.assert_verdict("SKIP");
    assert!(
        filter.logged("passing the message (fail open)"),
        "{filter:#?}"
    );
    // The CLI gives up on a change with one clear line and exit 2, changing nothing; listing
    // needs no write lock and works.
    assert_eq!(update.code, 2, "{update:#?}");
    assert!(
        update.stdout.is_empty()
            && update.stderr.lines().count() == 1
            && update
                .stderr
                .starts_with("An error occurred during update of server-wide settings: ")
            && update.stderr.contains("locked"),
        "{update:#?}"
    );
    assert_eq!((info.code, info.stderr.as_str()), (0, ""), "{info:#?}");
    assert!(
        info.stdout.contains("Grey interval          5 minutes"),
        "{info:#?}"
    );
    for line in [
        server.wait_log("action=pass, reason=error: "),
        milter.wait_log("action=pass, reason=error: "),
    ] {
        assert!(line.contains("locked"), "the log says why: {line}");
    }

    // The lock is gone: real decisions again, and the failed-open triplet was not stored, so
    // it is new now.
    assert_eq!(c.ask(&ask("locked@local.example")), server::DEFER);
    server.wait_log("action=defer, reason=new, client_name=unknown, client_address=198.51.100.7, sender=a@sender.example, recipient=locked@local.example");
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<again@local.example>")), MILTER_DEFER);
    let again = filter_run(&db, now, "198.51.100.7", "", "a@sender.example");
    again.assert_verdict("DEFER");
    let integrity: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
}
