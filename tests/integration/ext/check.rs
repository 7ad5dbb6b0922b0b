//! `grey_listing --check` (DESIGN.md §2, "Our extensions", issue 6): a Nagios/Icinga plugin with exit
//! codes 0/1/2 and 3 for its own errors, one status line with perfdata.

use crate::support::Backend;
use crate::support::ext::{Db, T0, seed_week};

fn check(db: &Db, args: &[&str]) -> (i32, String) {
    let out = db
        .cli(T0 + 3_600 * 3)
        .arg("--check")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one status line: {stdout}");
    (out.status.code().unwrap(), stdout)
}

// Nagios codes: OK below -w, WARNING at -w, CRITICAL at -c; white-listed organisations and
// networks never count.
fn status_follows_the_thresholds(backend: Backend) {
    let db = Db::on(backend);
    seed_week(&db);
    let (code, line) = check(&db, &[]);
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("GREY_LISTING OK - no unlisted sender organisation deferred 10 times"),
        "{line}"
    );
    assert!(
        line.contains(
            "| unlisted_organisations=0;;;0 max_deferrals=0;10;50;0 deferrals=10;;;0 passes=3;;;0"
        ),
        "{line}"
    );
    let (code, line) = check(&db, &["-w", "2", "-c", "7"]);
    assert_eq!(code, 1, "{line}");
    assert!(line.starts_with("GREY_LISTING WARNING - 1 unlisted sender organisation(s) deferred often in the last 24h: amazonses.com (6)"), "{line}");
    assert!(line.contains("max_deferrals=6;2;7;0"), "{line}");
    let (code, line) = check(&db, &["--w", "2", "-c", "6"]);
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("GREY_LISTING CRITICAL - "), "{line}");
}

// Issue 6: organisations in the ignore file are left alone; -since bounds the period.
fn ignore_file_and_since(backend: Backend) {
    let db = Db::on(backend);
    seed_week(&db);
    let dir = tempfile::tempdir().unwrap();
    let ignore = dir.path().join("ignore");
    std::fs::write(&ignore, "# reviewed\n*.amazonses.com\n\n").unwrap();
    let (code, line) = check(&db, &["-w", "2", "-ignore-file", ignore.to_str().unwrap()]);
    assert_eq!(code, 0, "{line}");
    let (code, line) = check(&db, &["-w", "2", "-since", "30m"]);
    assert_eq!(code, 0, "{line}");
}

// DESIGN.md §2: the plugin's own errors — bad arguments included — are UNKNOWN, exit 3.
#[test]
fn own_errors_are_unknown() {
    let db = Db::new();
    for args in [
        vec!["-w", "ten"],
        vec!["-w", "9", "-c", "3"],
        vec!["-ignore-file", "/nonexistent/ignore"],
        vec!["-top", "3"],
        vec!["-since"],
    ] {
        let (code, line) = check(&db, &args);
        assert_eq!(code, 3, "{args:?}: {line}");
        assert!(
            line.starts_with("GREY_LISTING UNKNOWN - An error occurred during "),
            "{line}"
        );
    }
    assert!(!db.file().exists());
}

// The ignore file is bounded: a FIFO, a device, an over-long file or a line that is not a
// domain pattern is UNKNOWN naming the file (and the line), at once.
#[test]
fn ignore_files_that_cannot_be_a_list_are_unknown() {
    let db = Db::new();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c_path` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let big = dir.path().join("big");
    std::fs::write(&big, "a.example\n".repeat(120_000)).unwrap();
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "# ok\namazonses.com\nevil\x1b[2J.example\n").unwrap();
    for (path, wanted) in [
        (fifo.to_str().unwrap(), "not a regular file"),
        ("/dev/zero", "not a regular file"),
        (big.to_str().unwrap(), "longer than 1 MiB"),
        (
            bad.to_str().unwrap(),
            "line 3: 'evil\\x1b[2J.example' is not a domain",
        ),
    ] {
        let out = db
            .cli(T0)
            .args(["--check", "-ignore-file", path])
            .timeout(std::time::Duration::from_secs(20))
            .output()
            .unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.status.code(), Some(3), "{path}: {stdout}");
        assert!(
            stdout.starts_with("GREY_LISTING UNKNOWN - ") && stdout.contains(wanted),
            "{path}: {stdout}"
        );
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
    }
}

// DESIGN.md §2: a database error is the plugin's own error too: UNKNOWN, exit 3, on stdout.
#[test]
fn database_errors_are_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    let db_path = not_a_dir.join("greylist.db");
    let out = assert_cmd::Command::cargo_bin("grey_listing")
        .unwrap()
        .args(["--check", "--db", db_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("GREY_LISTING UNKNOWN - An error occurred during check: "),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1);
}

on_both_stores!(status_follows_the_thresholds, ignore_file_and_since,);
