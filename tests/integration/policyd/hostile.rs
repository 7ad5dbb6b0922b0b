//! `greylisting-policyd` against hostile or broken clients over loopback: odd bytes in values,
//! floods of empty requests, bad start-up options. The mail path never blocks mail because of
//! the server itself, and every client value is escaped in the log.

use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::policyd::server::{DEFER, DUNNO, Server, request};
use crate::support::daemon::refused_to_start;

// A sender with invalid UTF-8, a C1 control (U+0085) or an ESC is decided like any other (here:
// greylisted) instead of closing the connection, which Postfix would turn into a 451 for the
// client. The connection stays open and the log line shows the value escaped.
#[test]
fn odd_bytes_in_a_value_are_decided_not_dropped() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    let senders: [&[u8]; 3] = [
        b"\xff\xfe@x.example",
        "a\u{85}b@x.example".as_bytes(),
        b"esc\x1b[31m@x.example",
    ];
    for (i, sender) in senders.iter().enumerate() {
        let mut req = format!(
            "request=smtpd_access_policy\nclient_address=192.0.2.{}\nclient_name=unknown\nsender=",
            i + 1
        )
        .into_bytes();
        req.extend_from_slice(sender);
        req.extend_from_slice(b"\nrecipient=u@local.example\n\n");
        c.send(&req).unwrap();
        assert_eq!(c.reply().as_deref(), Some(DEFER), "{sender:?}");
    }
    server.wait_log("sender=a\\xc2\\x85b@x.example");
    server.wait_log("sender=esc\\x1b[31m@x.example");
    server.wait_log("sender=\u{fffd}\u{fffd}@x.example");
    assert!(
        server
            .log_lines()
            .iter()
            .all(|l| !l.contains('\u{1b}') && !l.contains('\u{85}')),
        "{:#?}",
        server.log_lines()
    );
    assert!(
        !server
            .log_lines()
            .iter()
            .any(|l| l.contains("closing connection"))
    );
    // A line that is not an attribute still closes the connection.
    c.send(b"no equals sign here\n\n").unwrap();
    assert!(c.is_closed_by_server());
    server.wait_log("garbage line (no '=' in line)");
}

// Empty requests (lone newlines) are answered DUNNO but logged once per connection; more than
// 100 in a row close the connection as bad input, so 100,000 newlines cost two log lines, not
// 100,000.
#[test]
fn a_flood_of_empty_lines_is_logged_once_and_closed() {
    let server = Server::start(&[]);
    let mut c = server.connect();
    // 100 in a row are still answered, and a real request after them is decided.
    c.send(&[b'\n'; 100]).unwrap();
    for _ in 0..100 {
        assert_eq!(c.reply().as_deref(), Some(DUNNO));
    }
    assert_eq!(
        c.ask(&request(
            "192.0.2.9",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
    let empty_lines = |s: &Server| s.log_lines_with("reason=empty request").len();
    assert_eq!(empty_lines(&server), 1, "{:#?}", server.log_lines());
    // The flood: the server may close before reading everything, so a write error is fine.
    let _ = c.send(&vec![b'\n'; 100_000]);
    assert!(c.is_closed_by_server());
    server.wait_log("more than 100 empty requests in a row");
    assert_eq!(empty_lines(&server), 1, "{:#?}", server.log_lines());
    assert!(server.log_lines().len() < 20, "{:#?}", server.log_lines());
    // Another connection is served (and logs its own first empty request).
    let mut other = server.connect();
    assert_eq!(other.ask("\n"), DUNNO);
    let deadline = Instant::now() + Duration::from_secs(30);
    while empty_lines(&server) < 2 {
        assert!(Instant::now() < deadline, "{:#?}", server.log_lines());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The server's stderr refusing to start with `args` (exit 2).
fn refused(args: &[&str]) -> String {
    refused_to_start("greylisting-policyd", args)
}

// Only a real host name goes into the X-Greylist header: no empty label, no label over 63
// bytes, no label starting or ending with '-', no leading or trailing dot.
#[test]
fn malformed_hostnames_are_refused() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    let long_label = format!("{}.example", "a".repeat(64));
    for (bad, why) in [
        ("x..y", "empty label"),
        (".mx.example", "empty label"),
        ("mx.example.", "empty label"),
        (long_label.as_str(), "label of 64 bytes"),
        ("-mx.example", "starting or ending with '-'"),
        ("mx-.example", "starting or ending with '-'"),
    ] {
        let hostname = format!("--hostname={bad}");
        let err = refused(&["--listen", "127.0.0.1:0", "--db", db, &hostname]);
        assert!(
            err.contains(&format!("invalid --hostname \"{bad}\"")) && err.contains(why),
            "{bad:?}: {err}"
        );
    }
}

/// A directory under `base` whose path is `len` bytes long.
fn dir_of_length(base: &std::path::Path, len: usize) -> std::path::PathBuf {
    let short = base.as_os_str().len();
    assert!(short + 2 <= len);
    let dir = base.join("d".repeat(len - short - 1));
    std::fs::create_dir(&dir).unwrap();
    assert_eq!(dir.as_os_str().len(), len);
    dir
}

// A unix socket path over the kernel's limit (107 bytes plus the NUL) is refused at start with
// exit 2, naming the path and the limit; a path of exactly 107 bytes works, even though the
// private staging path beside it is longer than that.
#[test]
fn unix_socket_path_over_the_kernel_limit_is_refused() {
    let base = TempDir::new().unwrap();
    let db = base.path().join("g.db");
    let db = db.to_str().unwrap();
    let dir = dir_of_length(base.path(), 100);
    let too_long = dir.join("p.socke");
    assert_eq!(too_long.as_os_str().len(), 108);
    let listen = format!("unix:{}", too_long.display());
    let err = refused(&["--listen", &listen, "--db", db]);
    assert!(
        err.contains(&format!("{}", too_long.display())) && err.contains("at most 107"),
        "{err}"
    );
    assert!(!too_long.exists());
    // A long file name in a short directory: the staging path would fit, the final one not.
    let long_name = base
        .path()
        .join("s".repeat(107 - base.path().as_os_str().len()));
    assert_eq!(long_name.as_os_str().len(), 108);
    let err = refused(&[
        "--listen",
        &format!("unix:{}", long_name.display()),
        "--db",
        db,
    ]);
    assert!(
        err.contains("108 bytes long") && err.contains("at most 107"),
        "{err}"
    );
    assert!(!long_name.exists());
    let longest = dir.join("p.sock");
    assert_eq!(longest.as_os_str().len(), 107);
    let server = Server::start_on(db, &format!("unix:{}", longest.display()), &[]);
    let mut c = server.connect();
    assert_eq!(
        c.ask(&request(
            "192.0.2.1",
            "unknown",
            "a@b.example",
            "u@local.example",
            &[]
        )),
        DEFER
    );
    // Nothing but the socket (and the database files) is left in the directory.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("p.sock")]);
}

// A wildcard listen address starts with one warning that other hosts can reach the server
// (it has no authentication); loopback starts without it.
#[test]
fn a_wildcard_listen_address_is_warned_about() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    let warning = "reachable from other hosts";
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let server = Server::start_on(db, listen, &[]);
        let line = server.wait_log(warning);
        assert!(
            line.contains("no authentication")
                && line.contains("loopback")
                && line.contains("unix socket"),
            "{line}"
        );
        let port = server.addr.rsplit(':').next().unwrap().to_string();
        let mut c = crate::policyd::server::Client::over(Box::new(
            std::net::TcpStream::connect(format!("127.0.0.1:{port}"))
                .or_else(|_| std::net::TcpStream::connect(format!("[::1]:{port}")))
                .unwrap(),
        ));
        assert_eq!(c.ask("request=smtpd_access_policy\n\n"), DUNNO);
        let count = server.log_lines_with(warning).len();
        assert_eq!(count, 1, "{:#?}", server.log_lines());
    }
    let server = Server::start_on(db, "127.0.0.1:0", &[]);
    let mut c = server.connect();
    assert_eq!(c.ask("request=smtpd_access_policy\n\n"), DUNNO);
    assert!(!server.log_lines().iter().any(|l| l.contains(warning)));
}
