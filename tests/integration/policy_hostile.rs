//! `greylisting-policyd` against hostile or broken clients over loopback: odd bytes in values,
//! floods of empty requests, bad start-up options. The mail path never blocks mail because of
//! the server itself, and every client value is escaped in the log.

use std::process::Command;

use tempfile::TempDir;

use crate::policy::{DEFER, DUNNO, Server, request};

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
