//! The milter's unix socket is set up as the policy server's: nothing at the path is taken over
//! or removed unless it is a socket nobody answers on, and a mode or group that would be wrong
//! or ignored is refused at start.

use crate::support::daemon::refused_to_start;
use crate::support::milter::Milter;

/// The milter's stderr refusing to start with `args` on `db` (exit 2).
fn refused(db: &str, args: &[&str]) -> String {
    refused_to_start("greylisting-milter", &[&["--db", db][..], args].concat())
}

#[test]
fn unsafe_or_ignored_socket_settings_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    let socket = dir.path().join("m.sock");
    let listen = format!("unix:{}", socket.display());
    let err = refused(db, &["--listen", &listen, "--socket-mode", "0666"]);
    assert!(err.contains("world-writable"), "{err}");
    assert!(!socket.exists());
    let err = refused(db, &["--listen", "127.0.0.1:0", "--socket-group", "0"]);
    assert!(
        err.contains("--socket-group applies to a unix socket only"),
        "{err}"
    );
}

#[test]
fn files_and_live_sockets_at_the_path_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, b"keep me").unwrap();
    let err = refused(db, &["--listen", &format!("unix:{}", file.display())]);
    assert!(
        err.contains("it exists and is not a socket (a regular file)"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    // A second milter on the path of a running one: refused, the first goes on serving.
    let socket = dir.path().join("m.sock");
    let listen = format!("unix:{}", socket.display());
    let first = Milter::start_on(db, &listen, &[]);
    let err = refused(db, &["--listen", &listen]);
    assert!(err.contains("another server is listening on"), "{err}");
    let mut mta = first.connect();
    mta.negotiate(crate::support::milter::ALL_FLAGS);
}

// A wildcard listen address starts with one warning, as the policy server's does: the milter
// protocol has no authentication, so any host that can connect can ask for decisions and add
// triplets. Loopback starts without it.
#[test]
fn a_wildcard_listen_address_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    let warning = "reachable from other hosts";
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let milter = Milter::start_on(db, listen, &[]);
        let line = milter.wait_log(warning);
        assert!(
            line.contains("the milter on ")
                && line.contains("no authentication")
                && line.contains("127.0.0.1:10024")
                && line.contains("unix socket"),
            "{line}"
        );
        let count = milter
            .log_lines()
            .iter()
            .filter(|l| l.contains(warning))
            .count();
        assert_eq!(count, 1, "{:#?}", milter.log_lines());
    }
    let milter = Milter::start_on(db, "127.0.0.1:0", &[]);
    let mut mta = milter.connect();
    mta.negotiate(crate::support::milter::ALL_FLAGS);
    assert!(!milter.log_lines().iter().any(|l| l.contains(warning)));
}
