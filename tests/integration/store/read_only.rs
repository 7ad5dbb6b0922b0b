//! Read-only users: a monitoring user (here `nobody`) with read access to the database can run
//! the information commands and `--check`; without it the message says which permission is
//! missing. Nothing is ever written by them. The suite runs as root, so every run here drops to
//! `nobody` (and fails, never skips, when it cannot).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use crate::support::unprivileged::{NOBODY_UID, as_nobody, grant_acl, open_dir};
use crate::support::{SERVER_UPDATED, Test, UNDO_SCHEMA_4};

/// The time of every run, so reports by root and by `nobody` cover the same period.
const NOW: i64 = 1_800_000_000;

/// A database in `<tmp>/d/g.db`, its directory created 2770 by the first (root) run.
struct Db {
    /// Holds the temporary directory for as long as the database is used.
    _t: Test,
    path: PathBuf,
}

impl Db {
    fn new() -> Db {
        let t = Test::new();
        open_dir(t.dir());
        let path = t.dir().join("d").join("g.db");
        let db = Db { _t: t, path };
        db.root(&[
            "-u",
            "-grey-interval",
            "7",
            "-blacklist",
            "add:*@spam.example",
        ])
        .stdout(SERVER_UPDATED);
        db.root(&["-ud", "example.com", "-status", "off"]);
        db.root(&["-um", "john@example.com", "-whitelist", "add:*@ietf.org"]);
        db
    }

    fn dir(&self) -> &Path {
        self.path.parent().unwrap()
    }

    fn root(&self, args: &[&str]) -> crate::support::Outcome {
        let args = [args, &["--db", self.path.to_str().unwrap()]].concat();
        let mut cmd = crate::support::grey_listing();
        cmd.args(&args).env("GREY_LISTING_NOW", NOW.to_string());
        crate::support::Outcome::from(cmd.output().unwrap(), &args)
    }

    fn nobody(&self, args: &[&str]) -> crate::support::Outcome {
        let mut cmd = as_nobody(&assert_cmd::cargo::cargo_bin("grey_listing"));
        cmd.args(args)
            .arg("--db")
            .arg(&self.path)
            .env("GREY_LISTING_NOW", NOW.to_string());
        crate::support::Outcome::from(cmd.output().unwrap(), args)
    }

    /// The database directory's files and their bytes.
    fn files(&self) -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(self.dir())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect()
    }

    /// The docs' recipe (`setfacl -m u:nobody:x` on the directory, `setfacl -d -m u:nobody:r` on
    /// it for the -wal and -shm files created later, `setfacl -m u:nobody:r` on its files).
    fn grant_read(&self) {
        grant_acl(self.dir(), NOBODY_UID, 1, false);
        grant_acl(self.dir(), NOBODY_UID, 4, true);
        for name in self.files().keys() {
            grant_acl(&self.dir().join(name), NOBODY_UID, 4, false);
        }
    }
}

/// Names the files that differ (their bytes would flood the output).
#[track_caller]
fn assert_unchanged(before: &BTreeMap<String, Vec<u8>>, after: &BTreeMap<String, Vec<u8>>) {
    let changed: Vec<&String> = before
        .keys()
        .chain(after.keys())
        .filter(|name| before.get(*name) != after.get(*name))
        .collect();
    assert!(changed.is_empty(), "a read-only run changed {changed:?}");
}

/// What nobody sees must equal what root sees.
const INFO: &[&[&str]] = &[
    &["-i"],
    &["-i", "--extended"],
    &["-id", "example.com"],
    &["-im", "john@example.com"],
    &["--export"],
    &["--stats"],
    &["--report"],
    &[
        "--explain",
        "198.51.100.7",
        "-",
        "a@sender.example",
        "u@example.com",
    ],
];

#[test]
fn without_access_the_message_names_the_missing_permission() {
    let db = Db::new();
    let before = db.files();
    db.nobody(&["-i"]).system_error(&[
        &format!(
            "cannot read database {}: uid 65534 has no search (x) permission on directory {}",
            db.path.display(),
            db.dir().display()
        ),
        "member of group greylisting",
        "setfacl",
    ]);
    let check = db.nobody(&["--check"]);
    assert_eq!(check.code, 3, "{}", check.stderr);
    assert!(
        check.stdout.starts_with(
            "GREY_LISTING UNKNOWN - An error occurred during check: cannot read database"
        ) && check.stdout.contains("no search (x) permission"),
        "{}",
        check.stdout
    );
    // Traverse alone is not enough: the file itself needs read permission.
    grant_acl(db.dir(), NOBODY_UID, 1, false);
    db.nobody(&["-im", "john@example.com"])
        .system_error(&[&format!(
            "uid 65534 has no read permission on {}",
            db.path.display()
        )]);
    assert_unchanged(&before, &db.files());
}

#[test]
fn with_read_access_the_information_commands_work_and_write_nothing() {
    let db = Db::new();
    // The CLI checkpoints its changes into the main file; the mail path does not, so a message
    // leaves the WAL in use (a small WAL is kept after the last close): read through -wal and
    // -shm.
    let mut filter = crate::support::filter::filter_at(db.path.to_str().unwrap(), NOW);
    filter.args(["ctx", "a@sender.example", "b@local.example"]);
    let message = crate::support::filter::handler_output(
        filter,
        b"Received: from mx.sender.example (HELO mx) (198.51.100.7)\n\nbody\n",
    );
    assert_eq!(message.code, 2, "{message:?}");
    assert!(
        std::fs::metadata(db.path.with_file_name("g.db-wal"))
            .unwrap()
            .len()
            > 0,
        "{:?}",
        db.files().keys()
    );
    let roots: Vec<String> = INFO.iter().map(|args| db.root(args).stdout).collect();
    db.grant_read();
    let before = db.files();
    for (args, roots) in INFO.iter().zip(&roots) {
        let ours = db.nobody(args);
        assert_eq!(
            (ours.code, ours.stderr.as_str(), ours.stdout.as_str()),
            (0, "", roots.as_str()),
            "{args:?}"
        );
    }
    let check = db.nobody(&["--check"]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(
        check.stdout.starts_with("GREY_LISTING OK"),
        "{}",
        check.stdout
    );
    assert_unchanged(&before, &db.files());
    // Writing is still refused, and changes nothing.
    let update = db.nobody(&["-u", "-grey-interval", "9"]);
    assert_eq!(update.code, 2, "{}", update.stderr);
    assert!(
        db.root(&["-i"])
            .stdout
            .contains("Grey interval          7 minutes")
    );
}

// No WAL content: the main file holds everything and is read as immutable (a read-only user
// could not create the -shm file SQLite would otherwise want).
#[test]
fn without_a_wal_the_main_file_is_read() {
    let db = Db::new();
    let root_view = db.root(&["-i"]).stdout;
    {
        let conn = Connection::open(&db.path).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    }
    // Leaving WAL mode checkpointed and removed the -wal file; the WAL switch back only marks the
    // header. Whatever SQLite left beside the file, its WAL is empty or absent.
    assert!(
        std::fs::metadata(db.path.with_file_name("g.db-wal")).map_or(0, |m| m.len()) == 0,
        "{:?}",
        db.files().keys()
    );
    db.grant_read();
    let before = db.files();
    let ours = db.nobody(&["-i"]);
    assert_eq!((ours.code, ours.stderr.as_str()), (0, ""));
    assert_eq!(ours.stdout, root_view);
    assert_unchanged(&before, &db.files());
}

// A database that needs a migration is refused, saying how to migrate it.
#[test]
fn a_database_needing_a_migration_is_refused() {
    let db = Db::new();
    Connection::open(&db.path)
        .unwrap()
        .execute_batch(UNDO_SCHEMA_4)
        .unwrap();
    db.grant_read();
    let before = db.files();
    db.nobody(&["-i"]).system_error(&[
        "has schema version 3, older than this program's",
        "run grey_listing once as root or as a member of group greylisting",
    ]);
    assert_unchanged(&before, &db.files());
    // Root migrates it; then the read-only user can read.
    db.root(&["-i"]);
    db.grant_read();
    assert_eq!(db.nobody(&["-i"]).code, 0);
}
