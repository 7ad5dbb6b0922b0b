//! How the milter ends connections: after the MTA's QUIT a TCP connection is reset (nothing is
//! left to exchange, and the MTA's host keeps no TIME_WAIT entry per SMTP session); every other
//! end, and any end over a unix socket, is an ordinary close.

use std::io::ErrorKind;
use std::time::Duration;

use crate::support::daemon::fill_with_unread_replies;
use crate::support::milter::{ALL_FLAGS, DEFER, Milter, Mta, reply_text};

const CONTINUE: (u8, Vec<u8>) = (b'c', Vec::new());

/// A whole session as Postfix runs it, then QUIT: every reply arrived, then the reset.
#[test]
fn quit_resets_a_tcp_connection_after_the_replies() {
    let milter = Milter::start(&[]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    mta.send(b'Q', b"");
    let end = mta.read_end().map_err(|e| e.kind());
    assert_eq!(end, Err(ErrorKind::ConnectionReset), "QUIT ends in a reset");
    // The decision was made and logged before.
    milter.wait_log("action=defer, reason=new, client_name=unknown, client_address=198.51.100.7");
}

/// An MTA that pipelines (or reads slowly) still gets every reply it was owed when it sends
/// QUIT behind them: replies written to the socket but not yet taken by the MTA are not thrown
/// away by a reset.
#[test]
fn quit_behind_unread_replies_loses_none() {
    let milter = Milter::start(&[]);
    let mut mta = milter.connect_small_window();
    mta.start_unverified_message();
    // Far more reply bytes than the two sockets' buffers hold, far fewer than the milter's
    // limit on unread replies.
    const RCPTS: usize = 3000;
    let mut packets = Vec::new();
    for i in 0..RCPTS {
        let data = format!("<u{i}@local.example>\0");
        packets.extend(((data.len() + 1) as u32).to_be_bytes());
        packets.push(b'R');
        packets.extend(data.as_bytes());
    }
    packets.extend(1u32.to_be_bytes());
    packets.push(b'Q');
    mta.send_raw(&packets).unwrap();
    // Every reply queued before the MTA reads any of them.
    milter.wait_log(&format!("recipient=u{}@local.example", RCPTS - 1));
    let mut replies = 0;
    while let Some(reply) = mta.reply() {
        assert_eq!(reply_text(&reply), DEFER);
        replies += 1;
    }
    assert_eq!(replies, RCPTS, "every pipelined RCPT got its reply");
}

/// SIGTERM waits at most the grace (10 s) for work in progress: an MTA that never reads the
/// replies it is owed is closed then, with a log line, and the milter exits, where it used to
/// be kept until the idle timeout (7210 s).
#[test]
fn sigterm_does_not_wait_past_the_grace_for_an_mta_that_never_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    // A unix socket: its buffers do not grow, so a few batches of replies fill them (a
    // TCP socket's may grow past the milter's own bound on unread replies).
    let listen = format!("unix:{}", dir.path().join("milter.sock").display());
    let mut milter = Milter::start_on(db.to_str().unwrap(), &listen, &[]);
    let stream =
        std::os::unix::net::UnixStream::connect(listen.strip_prefix("unix:").unwrap()).unwrap();
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let mut mta = Mta::over(Box::new(stream));
    // Batches of 1,000 HELOs (5-byte replies), each ended by a recipient whose log line shows
    // the batch handled, and an abort: the connection is between messages.
    let helos = mta.helos_to_answer(1_000);
    fill_with_unread_replies(fd, |i| {
        mta.send_raw(&helos).unwrap();
        mta.send_str(b'M', "<s@example.org>");
        mta.send_str(b'R', &format!("<u{i}@local.example>"));
        mta.send(b'A', b"");
        milter.wait_log(&format!("recipient=u{i}@local.example"));
    });
    milter.signal(libc::SIGTERM);
    // `wait_exit` allows 60 s, six times the grace.
    assert_eq!(milter.wait_exit(), Some(0));
    milter.wait_log("closing 1 connection still open 10 s after SIGTERM");
    drop(mta);
}

/// QUIT_NC keeps the connection for the next SMTP session; a protocol error closes it in order.
#[test]
fn other_ends_are_orderly() {
    let milter = Milter::start(&[]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    mta.send(b'K', b"");
    mta.connect_client("[198.51.100.8]", b'4', "198.51.100.8");
    mta.send_str(b'M', "<s@example.org>");
    assert_eq!(
        reply_text(&mta.rcpt("<u@local.example>")),
        DEFER,
        "the connection serves the next session after QUIT_NC"
    );
    let mut bad = milter.connect();
    bad.negotiate(ALL_FLAGS);
    bad.send(b'!', b"");
    assert_eq!(bad.read_end().map_err(|e| e.kind()), Ok(0), "error close");
    milter.wait_log("unknown command 0x21");
}

/// Over a unix socket there is no TCP teardown to spare: QUIT ends in an ordinary close.
#[test]
fn quit_closes_a_unix_socket_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let listen = format!("unix:{}", dir.path().join("milter.sock").display());
    let milter = Milter::start_on(db.to_str().unwrap(), &listen, &[]);
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    mta.send(b'Q', b"");
    assert_eq!(mta.read_end().map_err(|e| e.kind()), Ok(0));
}

/// An MTA that resets its connection in the middle of a packet is logged, as the policy server
/// logs a client reset in the middle of a request; the milter serves on.
#[test]
fn reset_in_the_middle_of_a_packet_is_logged() {
    use std::io::Write;
    let milter = Milter::start(&[]);
    let stream = std::net::TcpStream::connect(&milter.addr).unwrap();
    (&stream).write_all(&[0, 0, 0, 40, b'H', b'x']).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    crate::support::daemon::close_with_reset(stream);
    milter.wait_log("MTA reset the connection in the middle of a packet");
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
}

/// Negotiates with every step answered, so the milter has read each before the reply comes;
/// then CONNECT and, with `mail`, a MAIL that opens a message.
fn answered_session(milter: &Milter, mail: bool) -> Mta {
    let mut mta = milter.connect();
    mta.negotiate(0x3f);
    mta.connect_client("[198.51.100.7]", b'4', "198.51.100.7");
    assert_eq!(mta.reply(), Some(CONTINUE));
    if mail {
        mta.send_str(b'M', "<s@example.org>");
        assert_eq!(mta.reply(), Some(CONTINUE));
    }
    mta
}

/// Runs `end` and connects a newcomer while the milter is stopped, so it sees both in one turn;
/// returns the newcomer.
fn end_and_connect_in_one_turn(milter: &Milter, end: impl FnOnce()) -> Mta {
    milter.signal(libc::SIGSTOP);
    end();
    let newcomer = milter.connect();
    std::thread::sleep(Duration::from_millis(300));
    milter.signal(libc::SIGCONT);
    newcomer
}

/// At --max-connections, a session that ended in the same turn as a newcomer arrived holds no
/// place: the newcomer is admitted, and no open session is closed (or a finished one counted as
/// evicted) for it. Both ends: an MTA gone inside a message, and a QUIT between messages.
#[test]
fn at_max_connections_a_session_that_just_ended_frees_its_place() {
    let milter = Milter::start(&["--max-connections", "2"]);
    let mut in_message = answered_session(&milter, true);
    let gone = answered_session(&milter, true);
    let mut newcomer = end_and_connect_in_one_turn(&milter, || drop(gone));
    newcomer.negotiate(0x3f);
    assert_eq!(reply_text(&in_message.rcpt("<u@local.example>")), DEFER);
    // The newcomer, between messages, quits as another arrives.
    let mut last = end_and_connect_in_one_turn(&milter, || newcomer.send(b'Q', b""));
    last.negotiate(0x3f);
    assert_eq!(reply_text(&in_message.rcpt("<v@local.example>")), DEFER);
    let limited = milter.log_lines_with("too many connections");
    assert!(limited.is_empty(), "{limited:#?}");
}
