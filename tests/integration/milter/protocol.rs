//! `greylisting-milter` over loopback: the real binary on a real database, spoken to byte by byte
//! as Postfix's `smtpd_milters` would (tests/e2e/milter.sh has the real Postfix and miltertest).

use std::time::{Duration, Instant};

use crate::milter::metrics::metrics_address;
use crate::policyd::metrics::{scrape, value};
use crate::policyd::server::cli;
use crate::support::milter::{ALL_FLAGS, DEFER, Milter, Mta, reply_text};

const CONTINUE: (u8, Vec<u8>) = (b'c', Vec::new());

/// Negotiation: version 6, only the header action and the macro lists, only the steps used,
/// no-reply for the steps whose answer never changes, and the macros we read.
#[test]
fn negotiation_asks_for_what_is_used() {
    let milter = Milter::start(&[]);
    let mut mta = milter.connect();
    let (version, actions, flags, macros) = mta.negotiate(ALL_FLAGS);
    assert_eq!(version, 6);
    assert_eq!(actions, 0x01 | 0x100);
    // NOBODY NOHDRS NOEOH NOUNKNOWN, the NR_* bits; DATA stays (it stops the idle clock).
    for wanted in [0x10, 0x20, 0x40, 0x100, 0x1000, 0x2000, 0x4000, 0x1_0000] {
        assert_eq!(flags & wanted, wanted, "flag {wanted:#x} in {flags:#x}");
    }
    assert_eq!(flags & 0x200, 0, "SMFIP_NODATA");
    assert_eq!(
        flags & (0x01 | 0x02 | 0x04 | 0x08),
        0,
        "connect..rcpt wanted"
    );
    let mut expected = 0u32.to_be_bytes().to_vec();
    expected.extend(b"{daemon_name} {client_resolve}\0");
    expected.extend(2u32.to_be_bytes());
    expected.extend(b"{auth_authen}\0");
    assert_eq!(macros, expected);
    // An MTA that offers no no-reply bits gets CONTINUE for every step.
    let mut old = milter.connect();
    let (_, _, flags, _) = old.negotiate(0x3f);
    assert_eq!(flags & 0x1000, 0);
    old.connect_client("[192.0.2.9]", b'4', "192.0.2.9");
    assert_eq!(old.reply(), Some(CONTINUE));
    old.send_str(b'H', "helo.example");
    assert_eq!(old.reply(), Some(CONTINUE));
    old.send_str(b'M', "<s@example.org>");
    assert_eq!(old.reply(), Some(CONTINUE));
}

/// A new triplet is deferred with 451 4.7.1 at RCPT and logged as policyd logs it; its retry
/// after the grey interval passes and the message gets one X-Greylist header at its end.
#[test]
fn new_triplet_defers_then_passes_with_one_header() {
    let milter = Milter::start(&[]);
    cli(&milter.db, &["-u", "-grey-interval", "0"]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    assert_eq!(reply_text(&mta.rcpt("<v@local.example>")), DEFER);
    milter.wait_log(
        "action=defer, reason=new, client_name=unknown, client_address=198.51.100.7, \
         sender=s@example.org, recipient=u@local.example",
    );
    // The client retries in a new message on the same connection.
    mta.send_str(b'M', "<s@example.org>");
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    assert_eq!(mta.rcpt("<v@local.example>"), CONTINUE);
    mta.expect_greylist_header_at_end();
    milter.wait_log("action=pass, reason=triplet found");
    // A third message: the triplet is known, no header.
    mta.send_str(b'M', "<s@example.org>");
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    mta.send(b'E', b"");
    assert_eq!(mta.reply(), Some(CONTINUE));
}

/// Clients that are never greylisted: a white host name, a trusted network (IPv4 and IPv6,
/// Sendmail's `IPv6:` form), an authenticated client; a black host is rejected with 550.
#[test]
fn white_trusted_and_authenticated_clients_pass() {
    let milter = Milter::start(&["--trusted-networks", "127.0.0.0/8,2001:db8::/32"]);
    let mut mta = milter.connect();
    Mta::start_message(
        "mx1.google.com",
        b'4',
        "198.51.100.8",
        "<s@example.org>",
        &mut mta,
    );
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    milter.wait_log("action=pass, reason=white domains pattern, client_name=mx1.google.com");
    for (family, address) in [(b'4', "127.0.0.1"), (b'6', "IPv6:2001:db8::25")] {
        let mut mta = milter.connect();
        Mta::start_message("[x]", family, address, "<s@example.org>", &mut mta);
        assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE, "{address}");
    }
    milter.wait_log(
        "action=pass, reason=authenticated, client_name=unknown, client_address=2001:db8::25",
    );
    let mut mta = milter.connect();
    mta.negotiate(ALL_FLAGS);
    mta.connect_client("[203.0.113.5]", b'4', "203.0.113.5");
    mta.send(b'D', b"M{auth_authen}\0bob\0");
    mta.send_str(b'M', "<s@example.org>");
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    milter.wait_log(
        "action=pass, reason=authenticated, client_name=unknown, client_address=203.0.113.5",
    );
    let mut mta = milter.connect();
    Mta::start_message(
        "host.dsl.example",
        b'4',
        "198.51.100.9",
        "<s@example.org>",
        &mut mta,
    );
    assert_eq!(
        reply_text(&mta.rcpt("<u@local.example>")),
        "550 5.7.1 Command rejected"
    );
}

/// Abort forgets the message: a first-pass delay before it adds no header after it.
#[test]
fn abort_resets_the_message() {
    let milter = Milter::start(&[]);
    cli(&milter.db, &["-u", "-grey-interval", "0"]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    mta.send_str(b'M', "<s@example.org>");
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    mta.send(b'A', b"");
    mta.send(b'E', b"");
    assert_eq!(mta.reply(), Some(CONTINUE), "no header after an abort");
}

/// A packet announcing more than 64 KiB closes the connection with a log line; garbage and
/// commands before negotiation too; the milter goes on serving.
#[test]
fn oversized_and_malformed_packets_close_the_connection() {
    let milter = Milter::start(&[]);
    let mut mta = milter.connect();
    mta.negotiate(ALL_FLAGS);
    mta.send_raw(&(64 * 1024 + 1u32).to_be_bytes()).unwrap();
    assert_eq!(mta.reply(), None);
    milter.wait_log("packet of 65537 bytes is larger than 65536 bytes");
    let mut mta = milter.connect();
    mta.negotiate(ALL_FLAGS);
    mta.send(b'C', b"host\0Z");
    assert_eq!(mta.reply(), None);
    milter.wait_log("malformed connect packet");
    let mut mta = milter.connect();
    mta.send_str(b'H', "early");
    assert_eq!(mta.reply(), None);
    milter.wait_log("command before option negotiation");
    let mut mta = milter.connect();
    mta.negotiate(ALL_FLAGS);
    mta.send(b'!', b"");
    assert_eq!(mta.reply(), None);
    milter.wait_log("unknown command 0x21");
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
}

/// A database that cannot be opened: mail passes (CONTINUE) and the error is logged.
#[test]
fn store_fault_fails_open() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    std::fs::write(&db, vec![b'x'; 4096]).unwrap();
    let milter = Milter::start_on(db.to_str().unwrap(), "127.0.0.1:0", &[]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    milter.wait_log("action=pass, reason=error: ");
}

/// Idle connections close, except inside DATA; at --max-connections the connection idle
/// longest outside a message makes room, one inside a message never does.
#[test]
fn idle_timeout_and_eviction_spare_messages() {
    let milter = Milter::start(&["--idle-timeout", "1", "--max-connections", "2"]);
    let mut in_data = milter.connect();
    in_data.start_unverified_message();
    in_data.send(b'T', b"");
    let mut idle = milter.connect();
    idle.negotiate(ALL_FLAGS);
    let started = Instant::now();
    assert_eq!(idle.reply(), None, "the idle connection is closed");
    assert!(started.elapsed() < Duration::from_secs(20));
    milter.wait_log("closing idle connection");
    std::thread::sleep(Duration::from_secs(3));
    in_data.send(b'E', b"");
    assert_eq!(
        in_data.reply(),
        Some(CONTINUE),
        "no idle timeout inside DATA"
    );
    // Eviction, without the idle timeout in the way. Steps are answered (no no-reply bits
    // offered) so each connection's state is known to the milter before the next one comes.
    let milter = Milter::start(&["--max-connections", "2", "--metrics-listen", "127.0.0.1:0"]);
    let metrics = metrics_address(&milter);
    let evicted = r#"greylisting_connections_closed_total{cause="evicted"}"#;
    let open_message = |mta: &mut Mta| {
        mta.negotiate(0x3f);
        mta.connect_client("[198.51.100.7]", b'4', "198.51.100.7");
        assert_eq!(mta.reply(), Some(CONTINUE));
        mta.send_str(b'M', "<s@example.org>");
        assert_eq!(mta.reply(), Some(CONTINUE));
    };
    let mut in_message = milter.connect();
    open_message(&mut in_message);
    let mut between = milter.connect();
    between.negotiate(0x3f);
    let mut newcomer = milter.connect();
    newcomer.negotiate(0x3f);
    assert_eq!(
        between.reply(),
        None,
        "the connection between messages made room"
    );
    milter.wait_log("closing the idle connection from");
    newcomer.connect_client("[198.51.100.8]", b'4', "198.51.100.8");
    assert_eq!(newcomer.reply(), Some(CONTINUE));
    newcomer.send_str(b'M', "<s@example.org>");
    assert_eq!(newcomer.reply(), Some(CONTINUE));
    let mut refused = milter.connect();
    let _ = refused.send_raw(&[0, 0, 0, 1, b'Q']);
    assert_eq!(refused.reply(), None);
    milter.wait_log("all inside a message");
    assert_eq!(reply_text(&in_message.rcpt("<u@local.example>")), DEFER);
    // Both closes the limit made are counted: the idle connection and the refused newcomer.
    assert_eq!(value(&scrape(&metrics), evicted), 2.0);
}

/// Unix socket with its mode; SIGHUP reopens the database; SIGTERM lets the open message finish
/// and exits 0.
#[test]
fn unix_socket_reload_and_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("milter.sock");
    let db = dir.path().join("g.db");
    let listen = format!("unix:{}", socket.display());
    let mut milter = Milter::start_on(db.to_str().unwrap(), &listen, &["--socket-mode", "0600"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    milter.signal(libc::SIGHUP);
    milter.wait_log("SIGHUP: configuration read again, reopening the database");
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    let mut idle = milter.connect();
    idle.negotiate(ALL_FLAGS);
    milter.signal(libc::SIGTERM);
    milter.wait_log("Stopping greylisting-milter");
    assert_eq!(
        idle.reply(),
        None,
        "connections between messages close at once"
    );
    mta.send(b'E', b"");
    assert_eq!(mta.reply(), Some(CONTINUE), "the open message finishes");
    drop(mta);
    assert_eq!(milter.wait_exit(), Some(0));
    assert!(!socket.exists(), "the socket file is removed");
    // The log reader thread may see the last line a moment after the exit.
    milter.wait_log("greylisting-milter stopped");
}

/// Bad start-up input: one line naming the culprit, exit 2, nothing listening.
#[test]
fn bad_options_exit_2_naming_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let db = db.to_str().unwrap();
    for (args, culprit) in [
        (vec!["--trusted-networks", "10.0.0.0/33"], "10.0.0.0/33"),
        (vec!["--listen", "nonsense"], "nonsense"),
        (vec!["--socket-mode", "0999"], "0999"),
        (
            vec![
                "--listen",
                "unix:/tmp/never-made.sock",
                "--socket-group",
                "no-such-group-x",
            ],
            "no-such-group-x",
        ),
        (vec!["--max-connections", "0"], "\"0\""),
    ] {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("greylisting-milter"))
            .args(["--db", db])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(culprit), "{args:?}: {stderr}");
    }
    assert!(!std::path::Path::new("/tmp/never-made.sock").exists());
    // A PostgreSQL URL with a mistyped scheme is refused at start, its password hidden, rather
    // than failing every recipient open later.
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("greylisting-milter"))
        .args(["--db", "postgres:/u:Secret1@localhost/db"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("a PostgreSQL URL starts with postgres://") && !stderr.contains("Secret1"),
        "{stderr}"
    );
    let help = std::process::Command::new(assert_cmd::cargo::cargo_bin("greylisting-milter"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    for needle in [
        "--trusted-networks",
        "--socket-group",
        "milter_default_action",
        "SIGHUP",
    ] {
        assert!(text.contains(needle), "--help lacks {needle}");
    }
}

/// A peer that sends part of a packet and then nothing is closed after --request-timeout,
/// even though it is not idle long enough for the idle timeout.
#[test]
fn trickled_packet_is_closed_after_the_request_timeout() {
    let milter = Milter::start(&["--request-timeout", "1"]);
    let mut mta = milter.connect();
    mta.negotiate(ALL_FLAGS);
    mta.send_raw(&[0, 0, 0, 20, b'H', b'x']).unwrap();
    let started = Instant::now();
    assert_eq!(mta.reply(), None);
    assert!(started.elapsed() < Duration::from_secs(20));
    milter.wait_log("packet not complete 1 s after its first byte");
}

/// --request-timeout bounds one packet, not a stream of them: an MTA that sends body chunks back
/// to back (it did not grant SMFIP_NOBODY), every write ending inside the next chunk, for over
/// three times the timeout, is not closed and gets its end-of-message answer.
#[test]
fn a_stream_of_packets_outlasting_the_request_timeout_is_not_closed() {
    let milter = Milter::start(&["--request-timeout", "1"]);
    let mut mta = milter.connect();
    // Only the body's no-reply flag is granted: every other step is answered.
    mta.negotiate(0x8_0000);
    mta.connect_client("localhost", b'4', "127.0.0.1");
    mta.send_str(b'H', "client.example");
    mta.send_str(b'M', "<s@example.org>");
    for _ in 0..3 {
        assert_eq!(mta.reply(), Some(CONTINUE));
    }
    // A trusted client: the recipient passes.
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    mta.send(b'T', b"");
    assert_eq!(mta.reply(), Some(CONTINUE));
    let mut chunk = 20_001u32.to_be_bytes().to_vec();
    chunk.push(b'B');
    chunk.extend(std::iter::repeat_n(b'x', 20_000));
    let stream = chunk.repeat(300);
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_millis(3_500) {
        let end = (sent + 30_000).min(stream.len());
        mta.send_raw(&stream[sent..end])
            .expect("the milter closed the connection");
        sent = end;
        std::thread::sleep(Duration::from_millis(20));
    }
    // Complete the chunk in flight, then end the message.
    let rest = (chunk.len() - sent % chunk.len()) % chunk.len();
    mta.send_raw(&stream[sent..sent + rest]).unwrap();
    mta.send(b'E', b"");
    assert_eq!(mta.reply(), Some(CONTINUE));
    assert!(
        !milter
            .log_lines()
            .iter()
            .any(|line| line.contains("packet not complete")),
        "{:?}",
        milter.log_lines()
    );
}
