//! Backups of the SQLite database: after a CLI change a plain copy of the main file holds it
//! (the CLI checkpoints the WAL), and `grey_listing --backup FILE` writes a consistent copy at
//! any moment.

use std::os::unix::fs::PermissionsExt;

use rusqlite::Connection;

use crate::support::{SERVER_UPDATED, Test};

const EDIT: &[&str] = &[
    "-u",
    "-blacklist",
    "add:*@spam.example",
    "-grey-interval",
    "7",
];

/// Runs `-i --json` on the SQLite file `db` and returns (grey interval, server black list).
fn settings_of(t: &Test, db: &std::path::Path) -> (u64, Vec<String>) {
    let json = t
        .run_raw(&["-i", "--json", "--db", db.to_str().unwrap()])
        .json();
    let grey = json["settings"]["grey_interval"].as_u64().unwrap();
    let black = serde_json::from_value(json["lists"]["black"].clone()).unwrap();
    (grey, black)
}

fn edited() -> (u64, Vec<String>) {
    (7, vec!["*@spam.example".to_string()])
}

// After a CLI change, copying ONLY greylist.db (no -wal, no -shm) gives a database with the
// change in it — the change does not sit in the WAL alone.
#[test]
fn a_copy_of_the_main_file_alone_holds_the_cli_change() {
    let t = Test::new();
    t.run(&["-i"]);
    t.run(EDIT).stdout(SERVER_UPDATED);
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copy.db");
    std::fs::copy(t.db(), &copy).unwrap();
    assert_eq!(settings_of(&t, &copy), edited());
}

// A reader holding an open read transaction keeps the checkpoint from completing: the change
// stays committed, the CLI says where it is (exit 0), and --backup still copies it — while the
// reader's transaction is still open.
#[test]
fn a_blocked_checkpoint_warns_and_backup_still_copies_the_change() {
    let t = Test::new();
    t.run(&["-i"]);
    let reader = Connection::open(t.db()).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM settings", [], |r| r.get(0))
        .unwrap();
    let out = t.run(EDIT);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, SERVER_UPDATED);
    assert_eq!(
        out.stderr,
        format!(
            "Warning: the change is still only in {}-wal; use grey_listing --backup to copy \
             the database\n",
            t.db().display()
        )
    );

    let backup = t.dir().join("backup.db");
    t.run(&["--backup", backup.to_str().unwrap()])
        .stdout(&format!(
            "SUCCESS: Backup of {} written to {}.\n",
            t.db().display(),
            backup.display()
        ));
    // The reader's transaction is still open, and still sees the old settings.
    let grey: String = reader
        .query_row(
            "SELECT value FROM settings WHERE name = 'grey_interval'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(grey, "5");
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("restored.db");
    std::fs::copy(&backup, &copy).unwrap();
    assert_eq!(settings_of(&t, &copy), edited());
    reader.execute_batch("COMMIT").unwrap();
}

// --backup replaces an existing regular file, leaves no temporary file behind, and the copy
// opens as the same configuration.
#[test]
fn backup_replaces_an_existing_file() {
    let t = Test::new();
    t.run(EDIT).stdout(SERVER_UPDATED);
    let backup = t.dir().join("backup.db");
    std::fs::write(&backup, b"old contents").unwrap();
    std::fs::set_permissions(&backup, std::fs::Permissions::from_mode(0o666)).unwrap();
    t.run(&["--backup", backup.to_str().unwrap()]);
    assert_eq!(
        std::fs::metadata(&backup).unwrap().permissions().mode() & 0o7777,
        0o640
    );
    let mut names: Vec<String> = t.files().into_keys().collect();
    names.retain(|n| !n.starts_with("g.db"));
    assert_eq!(names, ["backup.db"], "a temporary file was left behind");
    assert_eq!(settings_of(&t, &backup), edited());
}

// FILE must be a new name or a regular file: a symbolic link (whoever planted it would choose
// where the copy goes), a directory or a device is refused with exit 1, and nothing changes.
#[test]
fn backup_refuses_links_and_special_files() {
    let t = Test::new();
    t.run(&["-i"]);
    let target = t.dir().join("elsewhere");
    std::fs::write(&target, b"keep").unwrap();
    let link = t.dir().join("link.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    t.run(&["--backup", link.to_str().unwrap()])
        .bad_input(&["backup", "link.db", "symbolic link"]);
    assert_eq!(std::fs::read(&target).unwrap(), b"keep");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let dangling = t.dir().join("dangling.db");
    std::os::unix::fs::symlink(t.dir().join("missing"), &dangling).unwrap();
    t.run(&["--backup", dangling.to_str().unwrap()])
        .bad_input(&["symbolic link"]);
    assert!(!t.dir().join("missing").exists());
    t.run(&["--backup", t.dir().to_str().unwrap()])
        .bad_input(&["not a regular file"]);
    t.run(&["--backup", "/dev/null"])
        .bad_input(&["/dev/null", "not a regular file"]);
    // The database itself is not a backup target.
    t.run(&["--backup", t.db().to_str().unwrap()])
        .bad_input(&["the database itself"]);
}

// The database's companion files (-wal, -shm, -journal) are no backup target either: replacing
// the live WAL loses or corrupts committed changes. Refused by name, through another spelling
// of the directory, and by identity (a hard link).
#[test]
fn backup_refuses_the_database_companion_files() {
    let t = Test::new();
    t.run(EDIT).stdout(SERVER_UPDATED);
    let db = t.db().to_str().unwrap().to_string();
    for suffix in ["-wal", "-shm", "-journal"] {
        t.run(&["--backup", &format!("{db}{suffix}")]).bad_input(&[
            "backup",
            suffix,
            "give another file",
        ]);
    }
    let dir_name = t.dir().file_name().unwrap().to_str().unwrap().to_string();
    let aliased = t.dir().join("..").join(&dir_name).join("g.db-wal");
    t.run(&["--backup", aliased.to_str().unwrap()])
        .bad_input(&["-wal"]);
    let stray = t.dir().join("g.db-journal");
    std::fs::write(&stray, b"journal").unwrap();
    let hard = t.dir().join("other.db");
    std::fs::hard_link(&stray, &hard).unwrap();
    t.run(&["--backup", hard.to_str().unwrap()])
        .bad_input(&["-journal"]);
    assert_eq!(std::fs::read(&stray).unwrap(), b"journal");
    assert_eq!(settings_of(&t, &t.db()), edited());
}

// A backup never creates the database it copies.
#[test]
fn backup_of_a_missing_database_is_refused() {
    let t = Test::new();
    let backup = t.dir().join("backup.db");
    t.run(&["--backup", backup.to_str().unwrap()])
        .bad_input(&["backup", "does not exist"]);
    assert!(t.files().is_empty(), "{:?}", t.files().keys());
}

// PostgreSQL has its own tools; no connection is needed to say so.
#[test]
fn backup_of_a_postgres_store_is_refused() {
    let t = Test::new();
    let out = t.run_raw(&[
        "--db",
        "postgres://gl@127.0.0.1:1/greylisting",
        "--backup",
        t.dir().join("b.db").to_str().unwrap(),
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "An error occurred during backup: a PostgreSQL store is backed up with pg_dump or \
         grey_listing --export\n"
    );
}
