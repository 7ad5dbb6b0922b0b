//! `greylisting-milter` and its database, under the rules every binary follows: a symbolic link
//! in place of the database or a companion file, and a database from a newer schema, are refused
//! (mail passes, the error is logged, nothing is written); a PostgreSQL password never shows in
//! a log line; and the milter greylists on PostgreSQL as on SQLite (the `postgres` variants are
//! run by tests/e2e/postgres.sh). The real binary over loopback.

use std::path::{Path, PathBuf};

use crate::policyd::server::cli;
use crate::store::files::newer_rollback_journal_database;
use crate::support::milter::{DEFER, Milter, reply_text};
use crate::support::{Backend, INFO_SERVER_DEFAULTS, Test};

const CONTINUE: (u8, Vec<u8>) = (b'c', Vec::new());

/// One recipient of a new message from 198.51.100.7: its reply.
fn rcpt_once(milter: &Milter) -> (u8, Vec<u8>) {
    let mut mta = milter.connect();
    mta.start_unverified_message();
    mta.rcpt("<u@local.example>")
}

/// Every file in `dir` with its bytes.
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let bytes = std::fs::read(&path).unwrap_or_default();
            (path, bytes)
        })
        .collect();
    all.sort();
    all
}

// A symbolic link in place of the database: the recipient passes, the refusal is logged, and
// nothing is created at the link's target.
#[test]
fn a_symlinked_database_fails_open_and_its_target_stays_missing() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    let db = dir.path().join("g.db");
    std::os::unix::fs::symlink(&target, &db).unwrap();
    let milter = Milter::start_on(db.to_str().unwrap(), "127.0.0.1:0", &[]);
    assert_eq!(rcpt_once(&milter), CONTINUE);
    milter.wait_log("symbolic link");
    milter.wait_log("action=pass, reason=error: ");
    assert!(!target.exists(), "a file was created at the link's target");
}

// A symbolic link in place of the write-ahead log of an existing database: the same.
#[test]
fn a_symlinked_wal_fails_open_and_its_target_stays_missing() {
    let t = Test::new();
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    let target = t.dir().join("target");
    let wal = PathBuf::from(format!("{}-wal", t.db().display()));
    let _ = std::fs::remove_file(&wal);
    std::os::unix::fs::symlink(&target, &wal).unwrap();
    let milter = Milter::start_on(t.db().to_str().unwrap(), "127.0.0.1:0", &[]);
    assert_eq!(rcpt_once(&milter), CONTINUE);
    milter.wait_log("symbolic link");
    assert!(!target.exists(), "a file was created at the link's target");
}

// A database the milter creates gets its modes whatever the umask: the directory 2770, the
// database and its companion files 0660 (the group's members, the other mail-path binaries,
// share it), nothing for others.
#[test]
fn a_new_database_gets_its_modes_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o7777;
    for umask in ["077", "000"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lib").join("g.db");
        let milter = Milter::start_under_umask(db.to_str().unwrap(), umask);
        let mut mta = milter.connect();
        mta.start_unverified_message();
        assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
        assert_eq!(mode(&dir.path().join("lib")), 0o2770, "umask {umask}");
        assert_eq!(mode(&db), 0o660, "umask {umask}");
        for (path, _) in files(&dir.path().join("lib")) {
            assert_eq!(mode(&path), 0o660, "umask {umask}: {}", path.display());
        }
    }
}

// A database from a newer schema, left in rollback-journal mode as a newer release could leave
// it: the recipient passes, the refusal is logged, and not one byte of the directory changes —
// not even the journal mode.
#[test]
fn a_newer_schema_fails_open_and_is_left_byte_for_byte() {
    let t = Test::new();
    newer_rollback_journal_database(&t);
    let before = files(t.dir());
    let milter = Milter::start_on(t.db().to_str().unwrap(), "127.0.0.1:0", &[]);
    assert_eq!(rcpt_once(&milter), CONTINUE);
    milter.wait_log("schema version 9999");
    assert!(files(t.dir()) == before, "the newer database was modified");
}

// A PostgreSQL URL with a password and nothing listening: the recipient passes, the error names
// the location with the password replaced, and no line of the milter's output shows it.
#[test]
fn a_postgres_password_never_shows_in_the_log() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let password = "s3cr3t-pw%2Cwith,odd@chars";
    let url = format!("postgres://u:{password}@127.0.0.1:{port}/x?connect_timeout=2");
    let milter = Milter::start_on(&url, "127.0.0.1:0", &[]);
    assert_eq!(rcpt_once(&milter), CONTINUE);
    milter.wait_log("action=pass, reason=error: ");
    milter.wait_log("u:***@127.0.0.1");
    let lines = milter.log_lines();
    for line in &lines {
        for secret in ["s3cr3t", "odd@chars"] {
            assert!(!line.contains(secret), "{line}");
        }
    }
}

// On both stores: a new triplet is deferred at RCPT, its retry after the grey interval passes
// and the message gets its X-Greylist header at the end.
fn new_triplet_is_deferred_and_its_retry_passes_with_the_header(backend: Backend) {
    let milter = Milter::start_in(backend, &[]);
    cli(&milter.db, &["-u", "-grey-interval", "0"]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    milter.wait_log("action=defer, reason=new, client_name=unknown, client_address=198.51.100.7");
    mta.send_str(b'M', "<s@example.org>");
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    mta.expect_greylist_header_at_end();
    milter.wait_log("action=pass, reason=triplet found");
}

on_both_stores!(new_triplet_is_deferred_and_its_retry_passes_with_the_header);
