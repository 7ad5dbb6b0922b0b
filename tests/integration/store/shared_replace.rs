//! A database file moved over the path (a restored copy) while the milter and the policy server
//! both have the old one open. A move replaces only the database file: the `-wal` and `-shm`
//! files at the path are still the ones both daemons use. Each daemon must move to the new file
//! before its next decision, and letting go of the old one must not throw away what the other
//! daemon has already written to the new one through that shared log.

use std::path::Path;
use std::time::{Duration, Instant};

use super::shared::filter_run;
use super::shared_load::integrity;
use crate::dns_stub::{DnsStub, Reply};
use crate::policyd::lifecycle::{fresh_sender, restored_copy};
use crate::policyd::server::{self, Server, cli, request};
use crate::support::filter::{Sandbox, T0};
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

/// A milter and a policy server on one database, each with a decision in its log, and a
/// restored copy moved over it while the milter is stopped (SIGSTOP): the milter cannot let go
/// of the old file until it is continued.
fn stopped_on_replaced_file(dir: &Path) -> (Milter, Server, std::path::PathBuf) {
    let db = dir.join("g.db");
    let location = db.to_str().unwrap();
    cli(location, &["-i"]);
    let milter = Milter::start_on(location, "127.0.0.1:0", &[]);
    let server = Server::start_on(location, "127.0.0.1:0", &[]);
    let answers = both_asked(&milter, &mut server.connect(), &fresh_sender(0));
    assert_eq!(
        answers,
        (server::DEFER.to_string(), MILTER_DEFER.to_string())
    );
    milter.signal(libc::SIGSTOP);
    let restored = dir.join("restored.db");
    restored_copy(&restored, &["-u", "-blacklist", "add:*@restored.example"]);
    std::fs::rename(&restored, &db).unwrap();
    (milter, server, db)
}

/// The policy server's answer to a new message from `sender`, asked in another thread.
fn ask_in_background(server: &Server, sender: String) -> std::thread::JoinHandle<String> {
    let mut c = server.connect();
    std::thread::spawn(move || {
        c.ask(&request(
            "198.51.100.7",
            "unknown",
            &sender,
            "p@local.example",
            &[],
        ))
    })
}

// The policy server reopens the file moved over the path while the milter still has the old
// one open and has not noticed. Writing at once would share the log with the milter's old file:
// had the milter checked "is the new file in use?" just before the server opened it, and emptied
// the log just after the server wrote, the server's write would end in the old file. So the
// server waits until the milter has let go, then decides on the restored file.
#[test]
fn a_daemon_reopening_a_moved_file_waits_until_the_other_on_the_old_one_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let (milter, server, db) = stopped_on_replaced_file(dir.path());
    let answer = ask_in_background(&server, fresh_sender(300));
    // Well inside the server's 3 s wait; the milter notices the move within a second of being
    // continued.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !answer.is_finished(),
        "the server did not wait for the stopped milter"
    );
    milter.signal(libc::SIGCONT);
    assert_eq!(answer.join().unwrap(), server::DEFER);
    milter.wait_log("was replaced by another file: reopening it");
    assert_stored(&db, &[(fresh_sender(300), "p@local.example".to_string())]);
    // The restored configuration is whole and the milter decides on it.
    let mut mta = milter.connect();
    Mta::start_message(
        "[198.51.100.7]",
        b'4',
        "198.51.100.7",
        "<x@restored.example>",
        &mut mta,
    );
    assert_eq!(reply_text(&mta.rcpt("<m@local.example>")), MILTER_REJECT);
    assert_eq!(integrity(&db), "ok");
}

// A process that does not let go in time (here stopped for good) does not stop the server: it
// decides after its wait and logs which process kept the old file open.
#[test]
fn a_process_that_never_lets_go_of_a_replaced_file_is_named_not_waited_for_forever() {
    let dir = tempfile::tempdir().unwrap();
    let (milter, server, db) = stopped_on_replaced_file(dir.path());
    let started = Instant::now();
    let answer = ask_in_background(&server, fresh_sender(300));
    assert_eq!(answer.join().unwrap(), server::DEFER);
    let waited = started.elapsed();
    milter.signal(libc::SIGCONT);
    server.wait_log(&format!(
        "database {} was replaced while process {} still had the old file open; it did not let \
         go within 3 s",
        db.display(),
        milter.pid()
    ));
    assert!(waited >= Duration::from_secs(3), "gave up after {waited:?}");
}

// A program whose file is replaced while it runs and which then simply exits — here the filter,
// held up by a DNS list that never answers while a restored copy is moved over the path — lets
// go of the log the restored copy shares: the next program reads the restored copy, not the
// filter's old file.
#[test]
fn a_filter_finishing_after_its_file_was_replaced_leaves_the_restored_copy_whole() {
    let stub = DnsStub::start();
    let name = "7.100.51.198.wl.example";
    stub.set(name, Reply::Hang);
    let sb = Sandbox::new();
    sb.cli(&["-u", "-dnswl-zones", "add:wl.example"]);
    let db = sb.path("db/greylist.db");
    let mut filter = sb.filter(T0);
    filter
        .args(["ctx", "alice@sender.example", "u@local.example"])
        .env("GREY_LISTING_RESOLVER", stub.addr().to_string())
        .env("TCPREMOTEIP", "198.51.100.7")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = filter.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while stub.queries(name) == 0 {
        assert!(Instant::now() < deadline, "the filter never asked");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The filter has the database open and waits for DNS (1.5 s): the restore happens now.
    let restored = sb.path("restored.db");
    restored_copy(&restored, &["-u", "-blacklist", "add:*@restored.example"]);
    std::fs::rename(&restored, &db).unwrap();
    assert_eq!(
        child.wait().unwrap().code(),
        Some(2),
        "deferred on its old file"
    );
    assert_stored(&db, &[]);
    // The restored copy's lists, not those of the file the filter had open.
    let patterns: Vec<String> = rusqlite::Connection::open(&db)
        .unwrap()
        .prepare("SELECT pattern FROM list_entries")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        patterns.iter().any(|p| p == "*@restored.example")
            && !patterns.iter().any(|p| p == "wl.example"),
        "{patterns:?}"
    );
    assert_eq!(integrity(&db), "ok");
}
