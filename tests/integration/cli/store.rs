//! The database behind `grey_listing` (DESIGN.md §1): concurrent writers, where the file is, how it is
//! created (modes, WAL) and the schema version.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

use rusqlite::Connection;
use serde_json::json;

use crate::support::{
    Backend, INFO_SERVER_DEFAULTS, SERVER_UPDATED, Test, UNDO_SCHEMA_4, grey_listing,
};

// Issue 3 / DESIGN.md §1: 20 CLI processes started at once on a database none of them has created
// yet, each adding a different pattern: all succeed and all 20 patterns are there afterwards.
#[test]
fn twenty_concurrent_cli_processes_all_succeed() {
    concurrent_adds(20, Backend::Sqlite);
}

// DESIGN.md §1: up to 64 concurrent writers never see "database is locked" (issue 7: on both stores).
fn sixty_four_concurrent_cli_processes_all_succeed(backend: Backend) {
    concurrent_adds(64, backend);
}

on_both_stores!(sixty_four_concurrent_cli_processes_all_succeed);

/// Starts `count` `grey_listing -u -blacklist add:...` processes at once on a new database and
/// checks every one succeeded and every pattern is stored, the defaults seeded once.
fn concurrent_adds(count: usize, backend: Backend) {
    let t = Test::on(backend);
    let children: Vec<_> = (0..count)
        .map(|i| {
            let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("grey_listing"));
            cmd.env_remove("GREY_LISTING_DB")
                .env("GREY_LISTING_CONF", "/nonexistent/grey_listing.conf")
                .args(["-u", "-blacklist", &format!("add:*@sender{i}.example")])
                .arg("--db")
                .arg(t.location())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(
            (
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned()
            ),
            (Some(0), String::new())
        );
        assert_eq!(String::from_utf8(output.stdout).unwrap(), SERVER_UPDATED);
    }
    let black = t.run(&["-i", "--json"]).json()["lists"]["black"].clone();
    let mut black: Vec<String> = serde_json::from_value(black).unwrap();
    black.sort();
    let mut expected: Vec<String> = (0..count).map(|i| format!("*@sender{i}.example")).collect();
    expected.sort();
    assert_eq!(black, expected);
    // The defaults were seeded exactly once despite the racing first opens.
    let white = t.run(&["-i", "--json"]).json()["lists"]["domains_white"].clone();
    assert_eq!(white.as_array().unwrap().len(), 11);
}

// DESIGN.md §1: `--db` beats GREY_LISTING_DB, which beats the `db =` line of the file named by
// GREY_LISTING_CONF.
#[test]
fn database_location_resolution_order() {
    let t = Test::new();
    let cli_db = t.dir().join("cli.db");
    let env_db = t.dir().join("env.db");
    let conf_db = t.dir().join("conf.db");
    let conf = t.dir().join("grey_listing.conf");
    std::fs::write(
        &conf,
        format!("# test configuration\ndb = {}\n", conf_db.display()),
    )
    .unwrap();
    let update = |grey: &str| {
        let mut cmd = grey_listing();
        cmd.env("GREY_LISTING_CONF", &conf)
            .args(["-u", "-grey-interval", grey]);
        cmd
    };
    let grey_of = |db: &std::path::Path| {
        let out = grey_listing()
            .args(["-i", "--json", "--db"])
            .arg(db)
            .output()
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        value["settings"]["grey_interval"].clone()
    };

    // Configuration file only.
    update("10").assert().success().stdout(SERVER_UPDATED);
    assert!(conf_db.exists() && !env_db.exists() && !cli_db.exists());
    assert_eq!(grey_of(&conf_db), json!(10));

    // An empty GREY_LISTING_DB counts as unset.
    update("11").env("GREY_LISTING_DB", "").assert().success();
    assert!(!env_db.exists());
    assert_eq!(grey_of(&conf_db), json!(11));

    // The environment beats the file.
    update("12")
        .env("GREY_LISTING_DB", &env_db)
        .assert()
        .success();
    assert!(env_db.exists() && !cli_db.exists());
    assert_eq!(
        (grey_of(&env_db), grey_of(&conf_db)),
        (json!(12), json!(11))
    );

    // --db beats both.
    update("13")
        .env("GREY_LISTING_DB", &env_db)
        .arg("--db")
        .arg(&cli_db)
        .assert()
        .success();
    assert_eq!(
        (grey_of(&cli_db), grey_of(&env_db), grey_of(&conf_db)),
        (json!(13), json!(12), json!(11))
    );
}

// DESIGN.md §1: an unreadable configuration file named by GREY_LISTING_CONF is a system error (exit 2)
// naming the file; without a `db =` line the default location is used (reported in the error
// when the default's directory cannot be made: here a configuration *directory* is given).
#[test]
fn configuration_file_errors_exit_2() {
    let t = Test::new();
    let out = grey_listing()
        .env("GREY_LISTING_CONF", t.dir())
        .arg("-i")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("An error occurred during reading the configuration: "),
        "{stderr}"
    );
    assert!(stderr.contains(t.dir().to_str().unwrap()), "{stderr}");
}

// DESIGN.md §1: a new database file is mode 0660, its created parent directory 2770, and it is in
// WAL mode.
#[test]
fn new_database_modes_and_wal() {
    let t = Test::new();
    let dir = t.dir().join("var-lib-grey_listing");
    let db = dir.join("greylist.db");
    t.run_raw(&["-i", "--db", db.to_str().unwrap()])
        .stdout(INFO_SERVER_DEFAULTS);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&db), 0o660, "database file mode");
    assert_eq!(mode(&dir), 0o2770, "database directory mode");
    let conn = Connection::open(&db).unwrap();
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let version = schema_version(&conn);
    assert!(version >= 1, "schema version {version}");
}

/// The schema version SQLite records in the file (`PRAGMA user_version`).
fn schema_version(conn: &Connection) -> i64 {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

// DESIGN.md §1: an older schema (here version 0: a file some other tool left with an unrelated table)
// is migrated and gets the defaults; the unrelated data stays.
#[test]
fn older_schema_is_migrated() {
    let t = Test::new();
    {
        let conn = Connection::open(t.db()).unwrap();
        conn.execute_batch("CREATE TABLE unrelated (x); INSERT INTO unrelated VALUES (42);")
            .unwrap();
    }
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    let conn = Connection::open(t.db()).unwrap();
    let version = schema_version(&conn);
    assert!(version >= 1);
    let x: i64 = conn
        .query_row("SELECT x FROM unrelated", [], |r| r.get(0))
        .unwrap();
    assert_eq!(x, 42);
    // Reopening a current schema changes nothing.
    drop(conn);
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
}

// DESIGN.md §1: a schema-3 database (an `expires` index, the auto-whitelist index on (network,
// expires), no `passed` flag) is migrated on its first open by this version: its triplets keep
// their state and auto-whitelist counts, passed ones are flagged, the old indexes are gone.
#[test]
fn schema_3_triplets_survive_migration() {
    let t = Test::new();
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    {
        // Turn the new database back into the shape schema 3 had, with triplets in it.
        let conn = Connection::open(t.db()).unwrap();
        conn.execute_batch(UNDO_SCHEMA_4).unwrap();
        conn.execute_batch(
            "INSERT INTO triplets VALUES
                 ('198.51.100.0/24', 'a@x', 'u@y', '198.51.100.0/24', 1000, 1300, 1400, 9000, 2),
                 ('198.51.100.0/24', 'b@x', 'u@y', '198.51.100.0/24', 1000, 1300, 1000, 9000, 0),
                 ('mx.example', 'c@x', 'u@y', '198.51.100.0/24', 1000, 1300, 1400, 9000, 1),
                 ('198.51.100.0/24', 'd@x', 'u@y', '198.51.100.0/24', 1000, 1300, 1400, 1500, 1);",
        )
        .unwrap();
    }
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    let conn = Connection::open(t.db()).unwrap();
    let version = schema_version(&conn);
    assert!(version >= 4, "schema version {version}");
    let flags: Vec<(String, i64, i64)> = conn
        .prepare("SELECT sender, pass_count, passed FROM triplets ORDER BY sender")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [("a@x", 2, 1), ("b@x", 0, 0), ("c@x", 1, 1), ("d@x", 1, 1)];
    assert_eq!(
        flags,
        expected.map(|(s, c, p)| (s.to_string(), c, p)).to_vec()
    );
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'triplets'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, ["triplets_awl"]);
    drop(conn);
    let mut store = t.open();
    let mut passes = (0, 0);
    store
        .read(&mut |tx| {
            // At 2000 the last one has expired: two live passed triplets in the network.
            passes = (
                tx.awl_passes("198.51.100.0/24", 2_000)?,
                tx.awl_passes_up_to("198.51.100.0/24", 2_000, 5)?,
            );
            Ok(())
        })
        .unwrap();
    assert_eq!(passes, (2, 2));
}

// DESIGN.md §1: a database written by a newer version is refused with a clear message, exit 2, and
// left byte-for-byte as it was.
#[test]
fn newer_schema_exits_2_with_a_clear_message() {
    let t = Test::new();
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    {
        let conn = Connection::open(t.db()).unwrap();
        conn.pragma_update(None, "user_version", 9999).unwrap();
    }
    let before = t.files();
    t.run(&["-i"])
        .system_error(&["schema version 9999", "newer"]);
    t.run(&["-u", "-status", "off"]).system_error(&[
        "update of server-wide settings",
        "schema version 9999",
        "newer",
    ]);
    assert!(
        t.files() == before,
        "a too-new database must not be modified"
    );
}

// Issue 7: an unreachable PostgreSQL server is a database error (exit 2, one line) that names
// the location with its password hidden. Port 1 on loopback refuses at once.
#[cfg(feature = "postgres")]
#[test]
fn unreachable_postgres_exits_2_without_the_password() {
    let t = Test::new();
    let url = "postgres://gl:hunter2-secret@127.0.0.1:1/greylisting?connect_timeout=1";
    t.run_raw(&["--db", url, "-i"]).system_error(&[
        "gathering of server wide information",
        "postgres://gl:***@127.0.0.1:1/greylisting",
    ]);
    let out = t.run_raw(&["--db", url, "-u", "-status", "off"]);
    out.system_error(&["update of server-wide settings"]);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    // The statement timeout from the environment is checked too.
    let out = grey_listing()
        .env("GREY_LISTING_PG_TIMEOUT_MS", "soon")
        .args(["--db", url, "-i"])
        .output()
        .unwrap();
    let out = crate::support::Outcome::from(out, &["--db", url, "-i"]);
    out.system_error(&["GREY_LISTING_PG_TIMEOUT_MS", "'soon'"]);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

// A build without the `postgres` feature refuses a PostgreSQL location in one line naming the
// missing support (the password hidden), exits 2 and writes no file; it never panics.
#[cfg(not(feature = "postgres"))]
#[test]
fn a_build_without_postgres_refuses_a_postgres_location_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = grey_listing()
        .current_dir(dir.path())
        .args(["--db", "postgres://gl:Secret7@127.0.0.1:1/db", "-i"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("this build has no PostgreSQL support"),
        "{stderr}"
    );
    assert!(
        stderr.contains("postgres://gl:***@127.0.0.1:1/db"),
        "{stderr}"
    );
    assert!(!stderr.contains("Secret7"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
