//! The configuration file (`/etc/grey_listing.conf` or `GREY_LISTING_CONF`): every line it holds
//! is checked whenever it is read, so a typo is an error instead of a silently used default
//! database. The CLI exits 2, `--check` reports UNKNOWN (3), the filter fails open and logs it,
//! the policy server refuses to start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

use crate::support::filter::{PLAIN_MESSAGE, Sandbox, T0, handler_output};
use crate::support::unprivileged::{as_nobody, open_dir};
use crate::support::{SERVER_UPDATED, Test, grey_listing};

fn conf(t: &Test, text: &str) -> PathBuf {
    let path = t.dir().join("grey_listing.conf");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_with_conf(conf: &Path, args: &[&str]) -> std::process::Output {
    grey_listing()
        .env("GREY_LISTING_CONF", conf)
        .args(args)
        .output()
        .unwrap()
}

fn error_line(out: &std::process::Output) -> (i32, String, String) {
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// `db: /path` and `database = /path` used to be ignored and the default database used.
#[test]
fn bad_lines_are_errors_naming_file_and_line() {
    let t = Test::new();
    let db = t.dir().join("meant.db");
    for (text, line, what) in [
        (
            format!("db: {}\n", db.display()),
            1,
            format!(
                "'db: {}' is not a 'key = value' line (keys: db, resolver)",
                db.display()
            ),
        ),
        (
            format!("# ours\ndatabase = {}\n", db.display()),
            2,
            "unknown key 'database' (keys: db, resolver)".to_string(),
        ),
        (
            format!("db = {0}\n\ndb = {0}\n", db.display()),
            3,
            "key 'db' given twice (first on line 1)".to_string(),
        ),
    ] {
        let file = conf(&t, &text);
        let out = run_with_conf(&file, &["-u", "-grey-interval", "7"]);
        assert_eq!(
            error_line(&out),
            (
                2,
                String::new(),
                format!(
                    "An error occurred during reading the configuration: {}:{line}: {what}\n",
                    file.display()
                )
            )
        );
        assert!(!db.exists(), "nothing may be created");
    }
}

// A file named by GREY_LISTING_CONF must exist; the default file may be missing.
#[test]
fn a_missing_named_file_is_an_error() {
    let t = Test::new();
    let file = t.dir().join("none.conf");
    let out = run_with_conf(&file, &["-i"]);
    let (code, stdout, stderr) = error_line(&out);
    assert_eq!((code, stdout.as_str()), (2, ""));
    assert!(
        stderr.starts_with(&format!(
            "An error occurred during reading the configuration: {}: no such file",
            file.display()
        )),
        "{stderr}"
    );
}

// The file is read only when one of its keys is needed: with --db or GREY_LISTING_DB a broken
// file is not in the way.
#[test]
fn the_file_is_read_only_when_needed() {
    let t = Test::new();
    let file = conf(&t, "database = /x\n");
    let db = t.db();
    let mut cmd = grey_listing();
    cmd.env("GREY_LISTING_CONF", &file)
        .args(["-u", "-grey-interval", "7", "--db"])
        .arg(&db)
        .assert()
        .success()
        .stdout(SERVER_UPDATED);
    let mut cmd = grey_listing();
    cmd.env("GREY_LISTING_CONF", &file)
        .env("GREY_LISTING_DB", &db)
        .arg("-i")
        .assert()
        .success();
    // And a good file is used.
    let file = conf(
        &t,
        &format!("resolver = 127.0.0.1\ndb = {}\n", db.display()),
    );
    let out = run_with_conf(&file, &["-i", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["settings"]["grey_interval"], 7);
}

// `--check` reports a configuration error as UNKNOWN on stdout, exit 3.
#[test]
fn check_reports_unknown() {
    let t = Test::new();
    let file = conf(&t, "db: /x\n");
    let out = run_with_conf(&file, &["--check"]);
    assert_eq!(
        error_line(&out),
        (
            3,
            format!(
                "GREY_LISTING UNKNOWN - An error occurred during reading the configuration: \
                 {}:1: 'db: /x' is not a 'key = value' line (keys: db, resolver)\n",
                file.display()
            ),
            String::new()
        )
    );
}

// An existing file the user cannot read: the message names the missing permission.
#[test]
fn an_unreadable_file_names_the_missing_permission() {
    let t = Test::new();
    open_dir(t.dir());
    let file = conf(&t, "db = /x.db\n");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = as_nobody(&assert_cmd::cargo::cargo_bin("grey_listing"))
        .env("GREY_LISTING_CONF", &file)
        .env_remove("GREY_LISTING_DB")
        .arg("-i")
        .output()
        .unwrap();
    let (code, stdout, stderr) = error_line(&out);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "An error occurred during reading the configuration: {}: permission denied: uid \
             65534 has no read permission on {} (owner uid 0, group gid 0, mode 0600)",
            file.display(),
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("group greylisting"), "{stderr}");
}

// The filter fails open (SKIP) and logs the configuration error.
#[test]
fn the_filter_fails_open_and_logs_it() {
    let sb = Sandbox::new();
    let file = sb.path("grey_listing.conf");
    std::fs::write(&file, "database = /x\n").unwrap();
    let mut cmd = sb.filter(T0);
    cmd.env_remove("GREY_LISTING_DB")
        .env("GREY_LISTING_CONF", &file)
        .args(["ctx", "alice@sender.example", "john@local.example"]);
    let run = handler_output(cmd, PLAIN_MESSAGE.as_bytes());
    run.assert_verdict("SKIP");
    assert!(
        run.logged(&format!(
            "An error occurred during reading the configuration: {}:1: unknown key 'database'",
            file.display()
        )),
        "{run:#?}"
    );
}

// The policy server reads the file at start, whatever --db says, and refuses to start.
#[test]
fn policyd_refuses_to_start() {
    let t = Test::new();
    let file = conf(&t, "db = /a.db\ndb = /b.db\n");
    let out = Command::cargo_bin("greylisting-policyd")
        .unwrap()
        .env("GREY_LISTING_CONF", &file)
        .env("GREY_LISTING_LOG", "stderr")
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(t.db())
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "An error occurred during reading the configuration: {}:2: key 'db' given twice",
            file.display()
        )),
        "{stderr}"
    );
    assert!(!t.db().exists());
}
