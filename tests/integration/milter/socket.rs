//! The milter's unix socket is set up as the policy server's: nothing at the path is taken over
//! or removed unless it is a socket nobody answers on, and a mode or group that would be wrong
//! or ignored is refused at start.

use crate::support::daemon::refused_to_start;
use crate::support::milter::{ALL_FLAGS, Milter};

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

// As the policy server: a listen address other hosts can reach starts with one warning (the
// milter protocol has no authentication), and so does a trusted network wider than anyone's
// own (a typo like /0 for /8 would let every client through). Loopback and the default
// trusted networks start without either.
#[test]
fn exposed_listen_addresses_and_too_wide_trusted_networks_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    let exposed = "reachable from other hosts";
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let milter = Milter::start_on(db, listen, &[]);
        let line = milter.wait_log(exposed);
        assert!(
            line.contains("the milter on")
                && line.contains("milter protocol has no authentication")
                && line.contains("127.0.0.1:10024")
                && line.contains("unix socket"),
            "{line}"
        );
        let port = milter.addr.rsplit(':').next().unwrap().to_string();
        let mut mta = Milter::connect_to(&format!("127.0.0.1:{port}"))
            .or_else(|_| Milter::connect_to(&format!("[::1]:{port}")))
            .unwrap();
        mta.negotiate(ALL_FLAGS);
        let count = milter.log_lines_with(exposed).len();
        assert_eq!(count, 1, "{:#?}", milter.log_lines());
    }
    let milter = Milter::start_on(db, "127.0.0.1:0", &["--trusted-networks", "10.0.0.0/0,::1"]);
    let line = milter.wait_log("warning: trusted network 10.0.0.0/0 (--trusted-networks)");
    assert!(
        line.contains("none of its clients is ever greylisted"),
        "{line}"
    );
    milter.connect().negotiate(ALL_FLAGS);
    let lines = milter.log_lines();
    assert!(!lines.iter().any(|l| l.contains(exposed)), "{lines:#?}");
    assert!(
        !lines.iter().any(|l| l.contains("::1/128 (--trusted")),
        "{lines:#?}"
    );
    let milter = Milter::start_on(db, "127.0.0.1:0", &[]);
    // The start-up line names what the policy server's names, and the trusted networks.
    let start = milter.wait_log("Starting greylisting-milter: listening on 127.0.0.1:");
    for part in [
        &format!("database {db} ("),
        "trusted networks 127.0.0.0/8,::1/128",
        "max connections 4096",
        "idle timeout 7210 s",
        "request timeout 30 s",
    ] {
        assert!(start.contains(part), "{part:?} not in {start}");
    }
    milter.connect().negotiate(ALL_FLAGS);
    let lines = milter.log_lines();
    assert!(!lines.iter().any(|l| l.contains("warning")), "{lines:#?}");
}
