//! The policy server's rules on client values, held by `greylisting-milter` too: every value an
//! MTA passes on (host name, sender, recipient, macros) is escaped in log lines, so no control
//! character, line break or direction override reaches the log as it came, and a value over
//! 320 bytes is stored and logged in its bounded form (first 256 bytes, `~`, 16 hex digits of
//! its SHA-256). The real binary over loopback.

use crate::decision::bounds::bounded;
use crate::policyd::server::cli;
use crate::support::milter::{ALL_FLAGS, DEFER, Milter, Mta, reply_text};

const CONTINUE: (u8, Vec<u8>) = (b'c', Vec::new());

/// Sends a command whose data is one NUL-terminated string of raw bytes.
fn send_bytes(mta: &mut Mta, code: u8, bytes: &[u8]) {
    let mut data = bytes.to_vec();
    data.push(0);
    mta.send(code, &data);
}

/// True when `line` holds a byte no escaped log line has: a C0 control or DEL.
fn has_raw_control(line: &str) -> bool {
    line.bytes().any(|b| b < 0x20 || b == 0x7f)
}

// A host name, sender and recipient full of line breaks, escapes, DEL, a C1 control and a
// direction override are logged escaped, each in its field of one line; no log line carries a
// raw control character and none starts with what a client smuggled after a line break.
#[test]
fn hostile_bytes_from_the_mta_are_escaped_in_log_lines() {
    let milter = Milter::start(&[]);
    let mut mta = milter.connect();
    mta.negotiate(ALL_FLAGS);
    mta.connect_client("mx\u{1b}[31m.evil\u{202e}.example", b'4', "198.51.100.7");
    mta.send_str(b'H', "helo.example");
    send_bytes(&mut mta, b'M', b"<a\r\nforged: line\x7f,b=c@x.example>");
    mta.send_str(b'R', "<u\u{85}\nforged@local.example>");
    assert_eq!(reply_text(&mta.reply().unwrap()), DEFER);
    let line = milter.wait_log("action=defer, reason=new");
    assert_eq!(
        line.split_once("action=").unwrap().1,
        "defer, reason=new, client_name=mx\\x1b[31m.evil\\xe2\\x80\\xae.example, \
         client_address=198.51.100.7, sender=a\\x0d\\x0aforged: line\\x7f\\x2cb=c@x.example, \
         recipient=u\\xc2\\x85\\x0aforged@local.example"
    );
    // Bytes that are no UTF-8 become U+FFFD, as in the policy server: decided like any other
    // sender, on the same connection.
    send_bytes(&mut mta, b'M', b"<\xff\xfe@x.example>");
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    milter.wait_log("sender=\u{fffd}\u{fffd}@x.example, recipient=u@local.example");
    for line in milter.log_lines() {
        assert!(!has_raw_control(&line), "{line:?}");
        assert!(!line.starts_with("forged"), "{line:?}");
    }
}

// The macros the milter logs are escaped as well: `{daemon_name}` names the MTA service in the
// line of a recipient that passed because the database failed.
#[test]
fn hostile_macros_are_escaped_in_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    std::fs::write(&db, vec![b'x'; 4096]).unwrap();
    let milter = Milter::start_on(db.to_str().unwrap(), "127.0.0.1:0", &[]);
    let mut mta = milter.connect();
    mta.negotiate(ALL_FLAGS);
    mta.send(
        b'D',
        b"C{daemon_name}\0smtp\nforged: x\x1b\0{client_resolve}\0OK\r\n\0",
    );
    mta.connect_client("[198.51.100.7]", b'4', "198.51.100.7");
    mta.send(b'D', b"M{auth_authen}\0\0");
    mta.send_str(b'M', "<s@example.org>");
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    let line = milter.wait_log("daemon_name=");
    assert!(
        line.ends_with("daemon_name=smtp\\x0aforged: x\\x1b"),
        "{line:?}"
    );
    for line in milter.log_lines() {
        assert!(!has_raw_control(&line), "{line:?}");
        assert!(!line.starts_with("forged"), "{line:?}");
    }
}

// A sender, recipient and host name over 320 bytes are stored (triplet and decision log) and
// logged in their bounded form, the same key the other front ends use; the retry finds its
// triplet under that key. The host name, longer than any DNS name, matches no host pattern
// (not the default white `*google.com`): it is greylisted.
#[test]
fn over_long_values_are_stored_and_logged_bounded() {
    let milter = Milter::start(&[]);
    cli(&milter.db, &["-u", "-grey-interval", "0"]);
    let sender = format!("{}@sender.example", "s".repeat(400));
    let recipient = format!("{}@local.example", "r".repeat(400));
    let host = format!("{}.mx.google.com", "h".repeat(400));
    let mut mta = milter.connect();
    let ask = |mta: &mut Mta| {
        Mta::start_message(&host, b'4', "198.51.100.7", &format!("<{sender}>"), mta);
        mta.rcpt(&format!("<{recipient}>"))
    };
    assert_eq!(reply_text(&ask(&mut mta)), DEFER);
    let line = milter.wait_log("action=defer, reason=new");
    assert!(
        line.ends_with(&format!(
            "client_name={}, client_address=198.51.100.7, sender={}, recipient={}",
            bounded(&host),
            bounded(&sender),
            bounded(&recipient)
        )),
        "{line}"
    );
    assert!(line.len() < 1_000, "{line}");
    let mut again = milter.connect();
    assert_eq!(ask(&mut again), CONTINUE);
    milter.wait_log("action=pass, reason=triplet found");
    let sql = rusqlite::Connection::open(&milter.db).unwrap();
    let triplets: Vec<(String, String)> = sql
        .prepare("SELECT sender, recipient FROM triplets")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(triplets, vec![(bounded(&sender), bounded(&recipient))]);
    let logged: Vec<(String, String, String)> = sql
        .prepare("SELECT client_name, sender, recipient FROM decision_log")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let row = (bounded(&host), bounded(&sender), bounded(&recipient));
    assert_eq!(logged, vec![row.clone(), row]);
}

// The host name from CONNECT is read as the policy server reads Postfix's `client_name`: a
// trailing root dot is dropped (the log and the decision log name the client as the other
// front ends do), and a name with white space is no verified name (the client is greylisted
// as one without a name, not passed by a white pattern it only seems to match).
#[test]
fn host_names_are_read_as_the_policy_server_reads_them() {
    let milter = Milter::start(&[]);
    let mut mta = milter.connect();
    Mta::start_message(
        "mx1.google.com.",
        b'4',
        "198.51.100.8",
        "<s@example.org>",
        &mut mta,
    );
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    milter.wait_log(
        "action=pass, reason=white domains pattern, client_name=mx1.google.com, \
         client_address=198.51.100.8",
    );
    let mut mta = milter.connect();
    Mta::start_message(
        "mx1 .google.com",
        b'4',
        "198.51.100.9",
        "<s@example.org>",
        &mut mta,
    );
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    milter.wait_log("action=defer, reason=new, client_name=unknown, client_address=198.51.100.9");
    let sql = rusqlite::Connection::open(&milter.db).unwrap();
    let names: Vec<String> = sql
        .prepare("SELECT client_name FROM decision_log ORDER BY id")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(names, ["mx1.google.com", ""]);
}

// A host name, sender or recipient longer than 8 KiB comes from no MTA (Postfix and Sendmail cut
// SMTP command lines at 2 KiB), and a session keeps its sender and host name: the connection is
// closed with one log line, as the policy server closes one with a line over 8 KiB, and the MTA
// applies its default action. A value of 8 KiB is decided as usual.
#[test]
fn a_value_over_8_kib_closes_the_connection() {
    let milter = Milter::start(&[]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    let at_bound = format!("<{}@example.org>", "a".repeat(8192 - 14));
    assert_eq!(at_bound.len(), 8192);
    mta.send_str(b'M', &at_bound);
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    mta.send_str(b'M', &format!("<{}@example.org>", "a".repeat(8192)));
    assert_eq!(mta.reply(), None, "closed");
    let line = milter.wait_log("mail packet with a value of 8206 bytes, longer than 8192 bytes");
    assert!(
        line.contains("closing connection from 127.0.0.1:"),
        "{line}"
    );
    // A host name over the bound at CONNECT, the same.
    let mut other = milter.connect();
    other.negotiate(ALL_FLAGS);
    other.connect_client(&"h".repeat(8193), b'4', "198.51.100.9");
    assert_eq!(other.reply(), None, "closed");
    milter.wait_log("connect packet with a value of 8193 bytes");
}
