//! The database's files: symbolic links, devices, FIFOs and directories in place of the database
//! or its -wal/-shm/-journal files are refused (the CLI exits 2 naming the file, the mail path
//! fails open) and nothing is created through them; new files get their modes whatever the
//! umask; a database from a newer schema is refused before anything in it changes. The same
//! attacks by another user, and the group ownership, need root: tests/e2e/files.sh.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::filter::failopen::assert_fails_open;
use crate::policyd::server::{DUNNO, Server, request};
use crate::support::filter::Sandbox;
use crate::support::{INFO_SERVER_DEFAULTS, Outcome, Test, grey_listing};

/// `grey_listing <args> --db <db>` with a bound on its run time: a FIFO opened as a database
/// would block it for ever.
fn run_on(db: &Path, args: &[&str]) -> Outcome {
    let out = grey_listing()
        .args(args)
        .arg("--db")
        .arg(db)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    Outcome::from(out, args)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

// A symbolic link in place of the database, to a missing file or to an existing empty file
// (root's own, say): exit 2 naming the link, nothing created or changed at its target.
#[test]
fn a_symlinked_database_is_refused_and_its_target_untouched() {
    let t = Test::new();
    let missing = t.dir().join("etc-shadow-like");
    std::os::unix::fs::symlink(&missing, t.db()).unwrap();
    for args in [&["-i"][..], &["-u", "-status", "off"]] {
        t.run(args)
            .system_error(&[t.db().to_str().unwrap(), "symbolic link"]);
    }
    assert!(!missing.exists(), "a file was created at the link's target");

    let empty = t.dir().join("root-owned-empty");
    std::fs::write(&empty, b"").unwrap();
    std::fs::remove_file(t.db()).unwrap();
    std::os::unix::fs::symlink(&empty, t.db()).unwrap();
    t.run(&["-i"]).system_error(&["symbolic link"]);
    assert_eq!(
        std::fs::read(&empty).unwrap(),
        b"",
        "the target became a database"
    );
}

// A symbolic link planted as a companion file (-wal, -shm, -journal), next to a new or an
// existing database: exit 2 naming that file; nothing is created at the target, and a new
// database is not created either.
#[test]
fn a_symlinked_companion_file_is_refused() {
    for suffix in ["-wal", "-shm", "-journal"] {
        let t = Test::new();
        let target = t.dir().join("target");
        let companion = with_suffix(&t.db(), suffix);
        std::os::unix::fs::symlink(&target, &companion).unwrap();
        t.run(&["-i"])
            .system_error(&[companion.to_str().unwrap(), "symbolic link"]);
        assert!(!t.db().exists(), "{suffix}: database created");
        assert!(!target.exists(), "{suffix}: link target created");

        std::fs::remove_file(&companion).unwrap();
        t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
        let _ = std::fs::remove_file(&companion);
        std::os::unix::fs::symlink(&target, &companion).unwrap();
        t.run(&["-u", "-status", "off"])
            .system_error(&[companion.to_str().unwrap(), "symbolic link"]);
        assert!(!target.exists(), "{suffix}: link target created");
    }
}

// `--db /dev/null` used to give a database on the null device and a world-writable
// /dev/null-journal; a directory or a FIFO (which would block the open) is no better. All are
// refused before SQLite creates anything beside them.
#[test]
fn devices_directories_and_fifos_are_refused() {
    let t = Test::new();
    let journal = Path::new("/dev/null-journal");
    let journal_before = journal.exists();
    run_on(Path::new("/dev/null"), &["-u", "-status", "off"])
        .system_error(&["/dev/null", "character device"]);
    assert_eq!(
        journal.exists(),
        journal_before,
        "/dev/null-journal created"
    );

    let dir = t.dir().join("a-directory");
    std::fs::create_dir(&dir).unwrap();
    run_on(&dir, &["-i"]).system_error(&["a-directory", "directory"]);

    let fifo = t.dir().join("fifo.db");
    mkfifo(&fifo);
    run_on(&fifo, &["-i"]).system_error(&["fifo.db", "FIFO"]);
    let db = t.db();
    mkfifo(&with_suffix(&db, "-wal"));
    run_on(&db, &["-i"]).system_error(&["g.db-wal", "FIFO"]);
    assert!(!db.exists(), "database created beside a FIFO");
}

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

// What the CLI creates is mode 2770 (directories) and 0660 (database, -wal, -shm) whatever the
// umask: a restrictive one would lock the filter and the policy server out, a permissive one
// must not make anything world-writable.
#[test]
fn new_files_get_their_modes_whatever_the_umask() {
    for umask in ["077", "000", "022"] {
        let t = Test::new();
        let dir = t.dir().join("lib").join("grey_listing");
        let db = dir.join("greylist.db");
        let out = std::process::Command::new("sh")
            .args(["-c", &format!("umask {umask}; exec \"$@\""), "sh"])
            .arg(assert_cmd::cargo::cargo_bin("grey_listing"))
            .args(["-u", "-status", "off", "--db"])
            .arg(&db)
            .env("GREY_LISTING_CONF", "/nonexistent/grey_listing.conf")
            .env_remove("GREY_LISTING_DB")
            .output()
            .unwrap();
        assert!(out.status.success(), "umask {umask}: {out:?}");
        assert_eq!(mode(&dir), 0o2770, "umask {umask}: directory");
        assert_eq!(mode(&t.dir().join("lib")), 0o2770, "umask {umask}: parent");
        for name in ["greylist.db", "greylist.db-wal", "greylist.db-shm"] {
            assert_eq!(mode(&dir.join(name)), 0o660, "umask {umask}: {name}");
        }
        // The setgid directory hands its group to every file created in it.
        let group = std::fs::metadata(&dir).unwrap().gid();
        for name in ["greylist.db", "greylist.db-wal", "greylist.db-shm"] {
            assert_eq!(std::fs::metadata(dir.join(name)).unwrap().gid(), group);
        }
    }
}

// An admin's symbolic link for the database's directory is not a planted file: it still works.
#[test]
fn a_symlinked_directory_is_followed() {
    let t = Test::new();
    let real = t.dir().join("real");
    std::fs::create_dir(&real).unwrap();
    let alias = t.dir().join("alias");
    std::os::unix::fs::symlink(&real, &alias).unwrap();
    run_on(&alias.join("g.db"), &["-u", "-status", "off"])
        .stdout("SUCCESS: Update of server-wide settings complete.\n");
    assert!(real.join("g.db").is_file());
}

// The mail path fails open on a planted link (filter: the message passes and the error is
// logged; policyd: DUNNO and a log line), and creates nothing at the link's target.
#[test]
fn mail_path_fails_open_on_a_symlinked_database() {
    let sb = Sandbox::new();
    let target = sb.path("target");
    let db = sb.path("greylist.db");
    std::os::unix::fs::symlink(&target, &db).unwrap();
    let (handler_log, queue_log) = assert_fails_open(&sb, &db, "symlinked database");
    assert!(handler_log.contains("symbolic link"), "{handler_log}");
    assert!(queue_log.contains("symbolic link"), "{queue_log}");

    let server = Server::start_on(db.to_str().unwrap(), "127.0.0.1:0", &[]);
    let mut c = server.connect();
    let ask = request(
        "192.0.2.1",
        "unknown",
        "a@b.example",
        "u@local.example",
        &[],
    );
    assert_eq!(c.ask(&ask), DUNNO);
    server.wait_log("symbolic link");
    assert!(!target.exists(), "a file was created at the link's target");
}

/// A database of the current schema, then switched back to a rollback journal and stamped
/// with a schema version from the future, as a newer release could leave it.
pub(crate) fn newer_rollback_journal_database(t: &Test) {
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    let conn = Connection::open(t.db()).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    conn.pragma_update(None, "user_version", 9999).unwrap();
}

fn journal_mode(db: &Path) -> String {
    let conn = Connection::open(db).unwrap();
    conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap()
}

// A database from a newer schema is refused before anything in it changes — not even its
// journal mode: the file's bytes stay identical and no file appears beside it.
#[test]
fn a_newer_schema_in_rollback_journal_mode_is_left_byte_for_byte() {
    let t = Test::new();
    newer_rollback_journal_database(&t);
    let before = t.files();
    assert_eq!(before.keys().collect::<Vec<_>>(), ["g.db"]);
    t.run(&["-i"])
        .system_error(&["schema version 9999", "newer"]);
    t.run(&["-u", "-status", "off"])
        .system_error(&["schema version 9999"]);
    assert!(t.files() == before, "the newer database was modified");
    assert_eq!(journal_mode(&t.db()), "delete");
}

// The filter fails open on such a database, and leaves it as it was too.
#[test]
fn the_filter_fails_open_on_a_newer_schema_and_leaves_it_alone() {
    let t = Test::new();
    newer_rollback_journal_database(&t);
    let before = t.files();
    let sb = Sandbox::new();
    let (handler_log, _) = assert_fails_open(&sb, t.db(), "newer schema");
    assert!(handler_log.contains("schema version 9999"), "{handler_log}");
    assert!(
        t.files() == before,
        "the filter modified the newer database"
    );
    assert_eq!(journal_mode(&t.db()), "delete");
}
