//! `greylisting-milter` on a real server's terms, as the policy server: the database deleted or
//! replaced under it, and SIGHUP with a changed or broken configuration file. The real binary,
//! real signals, a temporary database.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::policyd::lifecycle::{
    NOTICE_WITHIN, fresh_sender, path_str, remove_database, restored_copy,
};
use crate::policyd::server::{cli, triplet_count};
use crate::support::milter::{DEFER, Milter, Mta, reply_text};

const CONTINUE: (u8, Vec<u8>) = (b'c', Vec::new());

/// The milter's answer to a RCPT for a triplet nobody asked about before: a new MAIL (which
/// starts a new message) from sender `n`, then the RCPT.
fn ask_fresh(mta: &mut Mta, n: usize) -> (u8, Vec<u8>) {
    mta.send_str(b'M', &format!("<{}>", fresh_sender(n)));
    mta.rcpt("<u@local.example>")
}

/// Asks fresh triplets until the answer is `want`; panics after `NOTICE_WITHIN` from `since`.
fn until_answer(mta: &mut Mta, want: &(u8, Vec<u8>), since: Instant, first: usize) -> usize {
    let mut n = first;
    loop {
        n += 1;
        if ask_fresh(mta, n) == *want {
            return n;
        }
        assert!(
            since.elapsed() < NOTICE_WITHIN,
            "still no {want:?} {NOTICE_WITHIN:?} after the database changed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_on(db: &Path) -> (Milter, Mta) {
    let milter = Milter::start_on(path_str(db), "127.0.0.1:0", &[]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    (milter, mta)
}

// `rm greylist.db*` under a running milter: it notices within 5 s and creates a new database
// as the CLI would, so a CLI change on the new file applies and triplets go to the new file.
// It used to go on writing into the unlinked file until restarted.
#[test]
fn deleted_database_is_noticed_and_the_new_file_used() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("greylist.db");
    cli(path_str(&db), &["-u", "-grey-interval", "5"]);
    let (milter, mut mta) = start_on(&db);
    assert_eq!(reply_text(&ask_fresh(&mut mta, 0)), DEFER);
    remove_database(&db);
    let removed = Instant::now();
    milter.wait_log("was deleted: creating a new one");
    assert!(removed.elapsed() < NOTICE_WITHIN);
    milter.wait_log(&format!("database {} reopened", db.display()));
    cli(path_str(&db), &["-u", "-status", "off"]);
    let n = until_answer(&mut mta, &CONTINUE, removed, 0);
    // Greylisting on again in the new file: a fresh triplet is deferred and stored there.
    cli(path_str(&db), &["-u", "-status", "on"]);
    let before = triplet_count(path_str(&db));
    assert_eq!(reply_text(&ask_fresh(&mut mta, n + 1)), DEFER);
    assert_eq!(triplet_count(path_str(&db)), before + 1);
}

// A restored copy moved over the database: the milter switches to it within 5 s, and the new
// triplets go into it.
#[test]
fn database_replaced_by_mv_is_reopened() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("greylist.db");
    cli(path_str(&db), &["-u", "-grey-interval", "5"]);
    let (milter, mut mta) = start_on(&db);
    assert_eq!(reply_text(&ask_fresh(&mut mta, 0)), DEFER);
    let restored = dir.path().join("restored.db");
    restored_copy(&restored, &["-u", "-status", "off"]);
    std::fs::rename(&restored, &db).unwrap();
    let moved = Instant::now();
    let n = until_answer(&mut mta, &CONTINUE, moved, 0);
    milter.wait_log("was replaced by another file");
    cli(path_str(&db), &["-u", "-status", "on"]);
    assert_eq!(triplet_count(path_str(&db)), 0);
    for m in n + 1..n + 4 {
        assert_eq!(reply_text(&ask_fresh(&mut mta, m)), DEFER);
    }
    assert_eq!(triplet_count(path_str(&db)), 3);
}

// SIGHUP without --db reads the configuration file again and opens the database it now names,
// with the policy server's log line.
#[test]
fn sighup_follows_the_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("grey_listing.conf");
    let first = dir.path().join("first.db");
    let second = dir.path().join("second.db");
    std::fs::write(&conf, format!("db = {}\n", first.display())).unwrap();
    let milter = Milter::start_with(
        &["--listen", "127.0.0.1:0"],
        &[("GREY_LISTING_CONF", path_str(&conf))],
    );
    milter.wait_log(&format!("database {}", first.display()));
    // The second database lets a retry pass at once; the first keeps the 5-minute interval.
    cli(path_str(&second), &["-u", "-grey-interval", "0"]);
    std::fs::write(&conf, format!("db = {}\n", second.display())).unwrap();
    milter.signal(libc::SIGHUP);
    milter.wait_log(&format!(
        "SIGHUP: configuration read again, database changed from {} to {}",
        first.display(),
        second.display()
    ));
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    mta.send_str(b'M', "<s@example.org>");
    assert_eq!(
        mta.rcpt("<u@local.example>"),
        CONTINUE,
        "the triplet is in the second database"
    );
}

// A configuration file that is now invalid: logged, the previous database kept, still serving
// the open connection and new ones.
#[test]
fn sighup_with_an_invalid_configuration_keeps_the_old_one() {
    sighup_with_a_broken_file_keeps_the_old_database(false);
    // With --db the file still holds the resolver, and SIGHUP checks it as the start does.
    sighup_with_a_broken_file_keeps_the_old_database(true);
}

fn sighup_with_a_broken_file_keeps_the_old_database(db_option: bool) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let conf = dir.path().join("grey_listing.conf");
    std::fs::write(&conf, format!("db = {}\n", db.display())).unwrap();
    let mut args = vec!["--listen", "127.0.0.1:0"];
    if db_option {
        args.extend(["--db", path_str(&db)]);
    }
    let milter = Milter::start_with(&args, &[("GREY_LISTING_CONF", path_str(&conf))]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&ask_fresh(&mut mta, 1)), DEFER);
    std::fs::write(&conf, "db =\n").unwrap();
    milter.signal(libc::SIGHUP);
    let line = milter.wait_log(&format!(
        "SIGHUP: keeping the previous configuration (database {})",
        db.display()
    ));
    assert!(line.contains(path_str(&conf)), "{line}");
    assert_eq!(reply_text(&ask_fresh(&mut mta, 2)), DEFER);
    let mut other = milter.connect();
    other.start_unverified_message();
    assert_eq!(reply_text(&ask_fresh(&mut other, 3)), DEFER);
    assert_eq!(triplet_count(path_str(&db)), 3);
}

// Out of file descriptors: the milter keeps serving the connections it has, logs the failed
// accept once instead of on every loop turn (it retries on each, thousands a second on a busy
// server), and takes the connections that waited once descriptors are free again, saying so.
#[test]
fn out_of_file_descriptors_the_failed_accept_is_logged_once_and_retried() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("greylist.db");
    // About ten descriptors are the milter's own (standard streams, listener, poll, database
    // files): this leaves room for a dozen connections.
    let milter = Milter::start_with_open_files(path_str(&db), 24);
    let mut mta = milter.connect();
    // No no-reply flags: every HELO gets an answer, so each is a turn of the milter's loop.
    let helo = mta.helos_to_answer(1);
    assert_eq!(mta.reply(), Some(CONTINUE), "the answer to CONNECT");
    let mut waiting = Vec::new();
    for _ in 0..40 {
        let mut other = milter.connect();
        other.send(b'O', &[0, 0, 0, 6, 0, 0, 1, 0xff, 0, 0, 0, 0x3f]);
        waiting.push(other);
    }
    milter.wait_log("accept failed: Too many open files");
    for _ in 0..200 {
        mta.send_raw(&helo).unwrap();
        assert_eq!(mta.reply(), Some(CONTINUE));
    }
    // A decision still reads and writes the database.
    mta.send_str(b'M', "<s@example.org>");
    assert_eq!(mta.reply(), Some(CONTINUE));
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    let failures = milter.log_lines_with("accept failed");
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].contains("further failures summed up once a minute"),
        "{}",
        failures[0]
    );
    drop(waiting);
    let line = milter.wait_log("accepting connections again after ");
    assert!(line.contains(" failed accepts in "), "{line}");
    let mut late = milter.connect();
    late.negotiate(0x3f);
}
