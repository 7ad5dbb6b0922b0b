//! Bad input (DESIGN.md §2): one `An error occurred during` line naming the argument, exit 1, and
//! nothing written — no database created, an existing one (and its -wal/-shm) byte-for-byte
//! unchanged. Database errors exit 2 (DESIGN.md §1, §2).

use rusqlite::Connection;

use crate::support::{INFO_SERVER_DEFAULTS, SERVER_UPDATED, Test};

/// Every class of bad input of DESIGN.md §2's validation rule, with what the message must name.
const BAD_INPUT: &[(&[&str], &[&str])] = &[
    // unknown command or option
    (&["--frobnicate"], &["--frobnicate"]),
    (&["-frobnicate"], &["-frobnicate"]),
    (&["--verbose"], &["--verbose"]),
    (&["-u", "-colour", "blue"], &["-colour"]),
    (&["-u", "--grey-intervall", "5"], &["--grey-intervall"]),
    (&[], &["no command"]),
    (&["example.com"], &["example.com"]),
    (&["-i", "extra"], &["extra"]),
    (&["-u", "-i"], &["-i", "-u"]),
    (&["-ud", "a.example", "-id", "a.example"], &["-id", "-ud"]),
    // option not allowed with that command
    (
        &["-ud", "example.com", "-personal-conf", "true"],
        &["-personal-conf", "-ud"],
    ),
    (
        &["-ud", "example.com", "-grey-interval", "5"],
        &["-grey-interval"],
    ),
    (
        &["-ud", "example.com", "-blacklist", "add:a@b.example"],
        &["-blacklist"],
    ),
    (
        &["-um", "a@example.com", "-status", "off"],
        &["-status", "-um"],
    ),
    (
        &["-um", "a@example.com", "-domains-whitelist", "add:x"],
        &["-domains-whitelist"],
    ),
    (
        &["-um", "a@example.com", "-expire-interval", "5"],
        &["-expire-interval"],
    ),
    (&["-i", "-status", "off"], &["-status", "-i"]),
    (&["-id", "example.com", "-status", "off"], &["-status"]),
    (
        &["-im", "a@example.com", "-whitelist", "add:x@y.example"],
        &["-whitelist"],
    ),
    (&["-h", "-status", "off"], &["-status"]),
    (&["-u", "--extended"], &["--extended"]),
    (&["-ud", "example.com", "-awl-count", "3"], &["-awl-count"]),
    // missing value
    (&["-u", "-status"], &["-status"]),
    (&["-u", "-grey-interval"], &["-grey-interval"]),
    (&["-u", "-blacklist"], &["-blacklist"]),
    (&["-u", "-domains-blacklist"], &["-domains-blacklist"]),
    (&["-ud"], &["-ud"]),
    (&["-um"], &["-um"]),
    (&["-id"], &["-id"]),
    (&["-im"], &["-im"]),
    (&["-i", "--db"], &["--db"]),
    // on|off, true|false misspelt
    (&["-u", "-status", "On"], &["-status", "'On'"]),
    (&["-u", "-status", "yes"], &["-status", "'yes'"]),
    (&["-u", "-status", "true"], &["-status", "'true'"]),
    (
        &["-ud", "example.com", "-status", "of"],
        &["-status", "'of'"],
    ),
    (
        &["-u", "-personal-conf", "yes"],
        &["-personal-conf", "'yes'"],
    ),
    (&["-u", "-personal-conf", "on"], &["-personal-conf", "'on'"]),
    (
        &["-u", "-penalty-status", "True"],
        &["-penalty-status", "'True'"],
    ),
    (
        &["-u", "-sender-normalize", "1"],
        &["-sender-normalize", "'1'"],
    ),
    // non-numeric or out-of-range minutes
    (
        &["-u", "-grey-interval", "abc"],
        &["-grey-interval", "'abc'"],
    ),
    (&["-u", "-grey-interval", "5m"], &["-grey-interval", "'5m'"]),
    (
        &["-u", "-grey-interval", "1.5"],
        &["-grey-interval", "'1.5'"],
    ),
    (&["-u", "-grey-interval", ""], &["-grey-interval"]),
    (
        &["-u", "-grey-interval", "-1"],
        &["-grey-interval", "-1", "0..=43200"],
    ),
    (
        &["-u", "-grey-interval", "43201"],
        &["-grey-interval", "43201", "0..=43200"],
    ),
    (
        &["-u", "-penalty-interval", "43201"],
        &["-penalty-interval", "43201", "0..=43200"],
    ),
    (
        &["-u", "-penalty-interval", "x"],
        &["-penalty-interval", "'x'"],
    ),
    (
        &["-u", "-expire-interval", "0"],
        &["-expire-interval", "0", "1..=5256000"],
    ),
    (
        &["-u", "-expire-interval", "5256001"],
        &["-expire-interval", "5256001", "1..=5256000"],
    ),
    (
        &["-u", "-expire-interval", "99999999999999999999999"],
        &["-expire-interval", "1..=5256000"],
    ),
    (&["-u", "-ipv4-prefix", "33"], &["-ipv4-prefix", "33"]),
    (&["-u", "-ipv6-prefix", "129"], &["-ipv6-prefix", "129"]),
    // empty pattern, malformed list edit
    (&["-u", "-blacklist", ""], &["-blacklist"]),
    (
        &["-u", "-blacklist", "add:"],
        &["-blacklist", "empty pattern"],
    ),
    (
        &["-u", "-whitelist", "add:a@x.example,,b@x.example"],
        &["-whitelist", "empty pattern"],
    ),
    (
        &["-u", "-domains-blacklist", "add:dsl|"],
        &["-domains-blacklist", "'dsl|'"],
    ),
    (
        &["-u", "-domains-whitelist", "add:a b.example"],
        &["-domains-whitelist", "'a b.example'"],
    ),
    (
        &["-u", "-blacklist", "ad:a@x.example"],
        &["-blacklist", "'ad'"],
    ),
    (
        &["-u", "-blacklist", "a@x.example"],
        &["-blacklist", "a@x.example"],
    ),
    (
        &["-u", "-blacklist", "add:a@x.example;;del:b@x.example"],
        &["-blacklist", "empty group"],
    ),
    (
        &["-u", "-blacklist", "add:a@x.example;"],
        &["-blacklist", "empty group"],
    ),
    (
        &["-um", "a@example.com", "-whitelist", "remove:x@y.example"],
        &["-whitelist", "'remove'"],
    ),
    // malformed domain or mail address
    (
        &["-ud", "bad domain", "-status", "off"],
        &["-ud", "'bad domain'"],
    ),
    (&["-ud", "", "-status", "off"], &["-ud"]),
    (
        &["-ud", "a..example", "-status", "off"],
        &["-ud", "'a..example'"],
    ),
    (
        &["-ud", "-leading.example", "-status", "off"],
        &["-leading.example"],
    ),
    (&["-id", "exa mple.com"], &["-id", "'exa mple.com'"]),
    (
        &["-um", "nobody", "-whitelist", "add:*@ietf.org"],
        &["-um", "'nobody'"],
    ),
    (&["-um", "@example.com"], &["-um", "'@example.com'"]),
    (&["-im", "john@"], &["-im", "'john@'"]),
    (&["-im", "john@bad domain"], &["-im", "'john@bad domain'"]),
    // a bad value after good ones in the same command
    (
        &[
            "-u",
            "-status",
            "off",
            "-grey-interval",
            "10",
            "-domains-whitelist",
            "add:*.ok.example",
            "-blacklist",
            "add:x@y.example",
            "-expire-interval",
            "0",
        ],
        &["-expire-interval", "0"],
    ),
    (
        &[
            "-u",
            "-domains-whitelist",
            "add:*.ok.example",
            "-domains-blacklist",
            "add:x;bogus",
        ],
        &["-domains-blacklist", "bogus"],
    ),
    (
        &[
            "-um",
            "a@example.com",
            "-whitelist",
            "add:*@ietf.org",
            "-blacklist",
            "add:",
        ],
        &["-blacklist"],
    ),
    (
        &["-ud", "example.com", "-status", "off", "-status", "maybe"],
        &["-status", "'maybe'"],
    ),
];

// DESIGN.md §1, §2: bad input never creates the database (validation happens before opening it).
#[test]
fn bad_input_creates_no_database() {
    for (args, names) in BAD_INPUT {
        let t = Test::new();
        t.run(args).bad_input(names);
        assert!(
            t.files().is_empty(),
            "grey_listing {args:?} created {:?}",
            t.files().keys()
        );
    }
}

// DESIGN.md §2: bad input leaves an existing database byte-for-byte unchanged, -wal and -shm
// included. The CLI folds its own changes into the main file, so a connection held open here
// writes a row itself and keeps SQLite from folding the WAL back: the WAL file really has
// frames to compare.
#[test]
fn bad_input_leaves_an_existing_database_byte_for_byte_unchanged() {
    let t = Test::new();
    t.run(&["-u", "-blacklist", "add:keep@x.example"])
        .stdout(SERVER_UPDATED);
    let held = Connection::open(t.db()).unwrap();
    let _: i64 = held
        .query_row("SELECT count(*) FROM settings", [], |r| r.get(0))
        .unwrap();
    t.run(&["-u", "-grey-interval", "6"]).stdout(SERVER_UPDATED);
    t.run(&["-ud", "example.com", "-status", "off"])
        .stdout("SUCCESS: Update of domain 'example.com' complete.\n");
    held.execute(
        "INSERT INTO domains (domain, enabled) VALUES ('held.example', 1)",
        [],
    )
    .unwrap();
    let before = t.files();
    assert!(
        before.contains_key("g.db-wal"),
        "expected a WAL file, got {:?}",
        before.keys()
    );
    assert!(!before["g.db-wal"].is_empty());
    for (args, names) in BAD_INPUT {
        t.run(args).bad_input(names);
        assert!(
            t.files() == before,
            "grey_listing {args:?} changed the database files"
        );
    }
    drop(held);
    let info = t.run(&["-i", "--json"]).json();
    assert_eq!(info["settings"]["grey_interval"], 6);
    assert_eq!(
        info["lists"]["black"],
        serde_json::json!(["keep@x.example"])
    );
}

// DESIGN.md §2: after a rejected command with good options before the bad one, none of the good
// ones was applied.
#[test]
fn good_options_before_a_bad_one_are_not_applied() {
    let t = Test::new();
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    t.run(&[
        "-u",
        "-status",
        "off",
        "-grey-interval",
        "10",
        "-domains-whitelist",
        "add:*.ok.example",
        "-penalty-interval",
        "43201",
    ])
    .bad_input(&["-penalty-interval", "43201"]);
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
}

// DESIGN.md §2: the error line names the operation Plesk names and the argument as typed.
#[test]
fn error_lines_name_the_operation_and_the_argument() {
    let t = Test::new();
    let out = t.run(&["-u", "-grey-interval", "43201"]);
    assert_eq!(
        out.stderr,
        "An error occurred during update of server-wide settings: -grey-interval: 43201 is out of range (0..=43200)\n"
    );
    let out = t.run(&["-ud", "example.com", "--status", "maybe"]);
    assert_eq!(
        out.stderr,
        "An error occurred during update of domain 'example.com': --status: invalid value 'maybe' (expected on or off)\n"
    );
    let out = t.run(&["-um", "john@example.com", "-status", "on"]);
    assert_eq!(
        out.stderr,
        "An error occurred during update of mail 'john@example.com': option '-status' is not allowed with -um\n"
    );
    let out = t.run(&["-u", "-frobnicate", "1"]);
    assert_eq!(
        out.stderr,
        "An error occurred during command line parsing: unknown option '-frobnicate'\n"
    );
}

// DESIGN.md §2: a database path under a regular file is a system error: exit 2, a clear message
// naming the path, nothing created.
#[test]
fn database_under_a_regular_file_exits_2() {
    let t = Test::new();
    let file = t.dir().join("plain");
    std::fs::write(&file, b"not a directory").unwrap();
    let db = file.join("sub").join("g.db");
    t.run_raw(&["-i", "--db", db.to_str().unwrap()])
        .system_error(&["gathering of server wide information", "plain"]);
    t.run_raw(&["-u", "-status", "off", "--db", db.to_str().unwrap()])
        .system_error(&["update of server-wide settings", "plain"]);
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory");
}

// DESIGN.md §2: a file that is not an SQLite database is a system error (exit 2) and is not touched.
#[test]
fn random_bytes_database_exits_2_and_is_left_alone() {
    let t = Test::new();
    // Deterministic noise (an LCG) so the test is reproducible; no SQLite header.
    let mut state: u32 = 0x1234_5678;
    let noise: Vec<u8> = (0..8192)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(t.db(), &noise).unwrap();
    t.run(&["-i"]).system_error(&["g.db", "not a database"]);
    t.run(&["-u", "-status", "off"])
        .system_error(&["g.db", "not a database"]);
    assert_eq!(std::fs::read(t.db()).unwrap(), noise);
}

// DESIGN.md §1: a lock held past the busy timeout (5 s) makes the CLI exit 2 with a clear message.
#[test]
fn database_locked_past_the_busy_timeout_exits_2() {
    let t = Test::new();
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    let holder = Connection::open(t.db()).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    t.run(&["-u", "-status", "off"])
        .system_error(&["update of server-wide settings", "locked"]);
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
}

// A mistyped PostgreSQL scheme is an error naming the value redacted (exit 2), never an SQLite
// path: no file or directory named after the password appears.
#[test]
fn a_mistyped_postgres_scheme_is_refused_not_created() {
    let dir = tempfile::tempdir().unwrap();
    for value in [
        "postgres:/u:PW@h/db",
        "postgresql:u:PW@h",
        "Postgres:/u:PW@h/db",
    ] {
        let out = assert_cmd::Command::cargo_bin("grey_listing")
            .unwrap()
            .current_dir(dir.path())
            .env_remove("GREY_LISTING_DB")
            .env_remove("GREY_LISTING_CONF")
            .args(["--db", value, "-i"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{value}: {stderr}");
        assert!(
            stderr.contains("postgres://") && !stderr.contains("PW"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
