//! Many MTA connections at once: every recipient gets exactly one reply, its own, whatever
//! other connections send in the same moment (the milter decides the recipients that arrive
//! together in one transaction); and the log lines name each connection's peer as it is.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::support::milter::{DEFER, Milter, Mta, reply_text};
use crate::support::{Backend, Test};

const REJECT: &str = "550 5.7.1 Command rejected";

/// The client (its verified host name), and what its recipient must be answered: a white host
/// passes, a black one is rejected, any other is deferred as a new triplet.
fn client_of(session: usize) -> (&'static str, Option<&'static str>) {
    match session % 3 {
        0 => ("mx1.google.com", None),
        1 => ("host.dsl.example", Some(REJECT)),
        _ => ("[198.51.100.7]", Some(DEFER)),
    }
}

/// Opens `sessions` MTA connections up to MAIL, sends every RCPT at the same moment, and checks
/// that each gets one reply, the one for its own client and nothing after it. With `stop`, the
/// milter is told to stop (SIGTERM) while the recipients arrive: messages already open are
/// still answered.
fn rcpts_at_once(milter: &Milter, sessions: usize, stop: bool) {
    let barrier = Arc::new(Barrier::new(sessions + 1));
    let threads: Vec<_> = (0..sessions)
        .map(|session| {
            let mut mta = milter.connect();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let (client, expected) = client_of(session);
                let address = format!("198.51.100.{}", 10 + session);
                let sender = format!("<s{session}@example.org>");
                Mta::start_message(client, b'4', &address, &sender, &mut mta);
                barrier.wait();
                let reply = mta.rcpt(&format!("<u{session}@local.example>"));
                match expected {
                    None => assert_eq!(reply, (b'c', Vec::new()), "session {session}"),
                    Some(text) => assert_eq!(reply_text(&reply), text, "session {session}"),
                }
                mta
            })
        })
        .collect();
    barrier.wait();
    if stop {
        milter.signal(libc::SIGTERM);
    }
    let mtas: Vec<Mta> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for (session, mut mta) in mtas.into_iter().enumerate() {
        // QUIT: the milter ends the connection; a second reply would show up before the end.
        mta.send(b'Q', b"");
        match mta.read_end() {
            Ok(0) => {}
            Err(err) if err.kind() == ErrorKind::ConnectionReset => {}
            other => panic!("session {session}: after its one reply, {other:?}"),
        }
    }
    for session in 0..sessions {
        let recipient = format!("recipient=u{session}@local.example");
        milter.wait_log(&recipient);
        let lines = milter.log_lines();
        let decided = lines.iter().filter(|l| l.contains(&recipient)).count();
        assert_eq!(decided, 1, "one decision logged for session {session}");
    }
}

#[test]
fn many_sessions_sending_rcpt_at_once_each_get_their_own_one_reply() {
    let milter = Milter::start(&[]);
    rcpts_at_once(&milter, 48, false);
    rcpts_at_once_again(&milter);
}

/// The same clients again in new sessions: the triplets are known now, so the deferred ones
/// stay deferred (grey interval not over) and nothing was stored twice or crossed.
fn rcpts_at_once_again(milter: &Milter) {
    let mut mta = milter.connect();
    Mta::start_message(
        "[198.51.100.7]",
        b'4',
        "198.51.100.12",
        "<s2@example.org>",
        &mut mta,
    );
    assert_eq!(reply_text(&mta.rcpt("<u2@local.example>")), DEFER);
    milter.wait_log("action=defer, reason=early-retry");
}

#[test]
fn sigterm_while_many_rcpts_arrive_answers_every_open_message() {
    let mut milter = Milter::start(&[]);
    rcpts_at_once(&milter, 24, true);
    assert_eq!(milter.wait_exit(), Some(0));
}

/// SIGTERM closes the connections between messages, but an MTA does not wait for an answer to
/// MAIL: a MAIL that has arrived while the milter was busy, and not been read yet, opened a
/// message, and that message is finished like the others.
#[test]
fn sigterm_keeps_a_message_whose_mail_is_not_read_yet() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let mut milter = Milter::start_on(db.to_str().unwrap(), "127.0.0.1:0", &[]);
    let mut first = milter.connect();
    first.start_unverified_message();
    assert_eq!(reply_text(&first.rcpt("<u@local.example>")), DEFER);
    let mut waiting = milter.connect();
    waiting.negotiate(crate::support::milter::ALL_FLAGS);
    waiting.connect_client("[198.51.100.8]", b'4', "198.51.100.8");
    // A lock on the database holds the milter in its next decision (for less than its busy
    // timeout), so that the MAIL below arrives while it reads nothing.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    first.send_str(b'R', "<v@local.example>");
    std::thread::sleep(Duration::from_millis(500));
    waiting.send_str(b'M', "<s@example.org>");
    milter.signal(libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(reply_text(&first.reply().unwrap()), DEFER);
    milter.wait_log("Stopping greylisting-milter");
    let reply = waiting.rcpt("<w@local.example>");
    assert_eq!(
        reply_text(&reply),
        DEFER,
        "the message opened by MAIL goes on"
    );
    drop((first, waiting));
    assert_eq!(milter.wait_exit(), Some(0));
}

/// Sends a packet before negotiation over `stream`: the milter closes the connection and logs
/// `closing connection from <peer>: ...`; returns that line.
fn bad_first_packet(milter: &Milter, mut stream: impl Read + Write) -> String {
    stream.write_all(&[0, 0, 0, 3, b'H', b'x', 0]).unwrap();
    let mut rest = Vec::new();
    // The milter closes the connection: the read ends (0 bytes) rather than timing out.
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "no reply to a bad first packet: {rest:?}");
    milter.wait_log("command before option negotiation")
}

/// Log lines name a TCP peer by its address and port (IPv6 in brackets) and a unix socket's by
/// `unix:` and the socket's path, exactly.
#[test]
fn log_lines_name_tcp_ipv6_and_unix_peers() {
    for listen in ["127.0.0.1:0", "[::1]:0"] {
        let store = Test::on(Backend::Sqlite);
        let milter = Milter::start_on(&store.location(), listen, &[]);
        let stream = TcpStream::connect(&milter.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let peer = stream.local_addr().unwrap().to_string();
        let line = bad_first_packet(&milter, stream);
        assert!(
            line.contains(&format!(
                "closing connection from {peer}: command before option negotiation"
            )),
            "{line}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let listen = format!("unix:{}", dir.path().join("milter.sock").display());
    let db = dir.path().join("g.db");
    let milter = Milter::start_on(db.to_str().unwrap(), &listen, &[]);
    let stream = std::os::unix::net::UnixStream::connect(dir.path().join("milter.sock")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let line = bad_first_packet(&milter, stream);
    assert!(
        line.contains(&format!(
            "closing connection from {listen}: command before option negotiation"
        )),
        "{line}"
    );
}

/// Connections that write packets as fast as they can (here macro packets, which get no reply)
/// do not keep the milter from serving others: each gets a bounded share of reading per turn.
#[test]
fn flooding_connections_do_not_hold_up_others() {
    let milter = Milter::start(&[]);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|_| {
            let mut mta = milter.connect();
            mta.negotiate(crate::support::milter::ALL_FLAGS);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut data = b"C{x}\0".to_vec();
                data.extend(std::iter::repeat_n(b'v', 60_000));
                data.push(0);
                let mut packet = ((data.len() + 1) as u32).to_be_bytes().to_vec();
                packet.push(b'D');
                packet.extend(&data);
                let burst = packet.repeat(32);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if mta.send_raw(&burst).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    // Let the floods fill their sockets.
    std::thread::sleep(Duration::from_millis(500));
    // Within the client's read timeout (30 s): an answer, not a hang.
    let mut mta = milter.connect();
    mta.start_unverified_message();
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), DEFER);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    // The flooders' last writes end when the milter is gone.
    drop(milter);
    for flooder in flooders {
        flooder.join().unwrap();
    }
}

/// An MTA that never reads the replies to the steps it wants answered (here HELO, over and
/// over) is closed once they pass the milter's bound, as one that never reads its RCPT replies.
#[test]
fn unread_replies_to_any_step_are_bounded() {
    let milter = Milter::start(&[]);
    let mut mta = milter.connect_small_window();
    let burst = mta.helos_to_answer(10_000);
    // Far more replies than the bound (and the sockets' buffers) hold; the writes fail once
    // the milter has closed the connection.
    for _ in 0..2_000 {
        if mta.send_raw(&burst).is_err() {
            break;
        }
    }
    milter.wait_log("bytes of replies not read");
}
