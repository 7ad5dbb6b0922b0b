//! The exact line `grey_listing` prints for bad `--explain` and `--migrate-store` values: the
//! checks return typed errors, and these lines must read the same whatever carries them.

use crate::support::grey_listing;

/// Stderr of a run refused as bad input (exit 1).
fn refused(args: &[&str]) -> String {
    let out = grey_listing().args(args).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn explain_refusals_read_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    let explain = |values: &[&str]| {
        let mut args = vec!["--db", db, "--explain"];
        args.extend_from_slice(values);
        let err = refused(&args);
        err.lines().next().unwrap_or("").to_string()
    };
    let prefix = "An error occurred during explanation: --explain: ";
    for (values, why) in [
        (
            &["192.0.2", "-", "-", "u@example.com"][..],
            "'192.0.2' is not an IP address".to_string(),
        ),
        (
            &["192.0.2.1", "bad host", "-", "u@example.com"][..],
            config_error(grey_listing::config::parse_domain("bad host")),
        ),
        (
            &["192.0.2.1", "-", "a b@x.example", "u@example.com"][..],
            "'a b@x.example' is not a valid sender address".to_string(),
        ),
        (
            &["192.0.2.1", "-", "-", "nobody"][..],
            config_error(grey_listing::config::parse_mail("nobody")),
        ),
    ] {
        assert_eq!(explain(values), format!("{prefix}{why}"), "{values:?}");
    }
}

fn config_error<T: std::fmt::Debug>(parsed: Result<T, grey_listing::config::ValueError>) -> String {
    parsed.unwrap_err().to_string()
}

#[test]
fn migrate_store_refusals_read_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.db");
    let b = dir.path().join("b.db");
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let prefix = "An error occurred during migration of store: ";
    let first = |args: &[&str]| refused(args).lines().next().unwrap_or("").to_string();
    assert_eq!(
        first(&["--migrate-store", a, b]),
        format!("{prefix}--migrate-store: source database {a} does not exist")
    );
    assert_eq!(
        first(&["--migrate-store", "", b]),
        format!("{prefix}--migrate-store: a database location is empty")
    );
    assert_eq!(
        first(&["--migrate-store", a, a]),
        format!("{prefix}--migrate-store: FROM and TO are the same database ({a})")
    );
    assert_eq!(
        first(&["--db", a, "--migrate-store", a, b]),
        format!("{prefix}option '--db' is not allowed with --migrate-store: give FROM and TO")
    );
}
