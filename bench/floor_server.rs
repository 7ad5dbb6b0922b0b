//! The floor of `bench/milter_floor.sh`: a server that speaks the milter or the policy protocol
//! exactly as far as `bench/milter_load.rs` and `bench/policy_load.rs` need, and decides nothing.
//! Not a test and not a product: it has no store, no log, no limits, and answers every recipient
//! with the same deferral. What it costs per decision is what the connection pattern alone costs
//! the kernel and a minimal event loop, the part no implementation can avoid:
//! `cargo bench --bench floor_server -- --protocol milter|policy --listen HOST:PORT|unix:/path`.
//!
//! The event loop is built like the daemons' (`mio`, edge-triggered, a read that returns less
//! than the buffer ends a connection's turn), the milter side asks for the same steps and no-reply
//! flags as greylisting-milter and resets the connection after the MTA's QUIT as it does. Replies
//! are written at once, one `write` per reply, as the daemons write them.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::time::Duration;

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Token};

mod common;

use common::milter_packet;

/// Protocol flags greylisting-milter asks for (`SMFIP_*`): no headers, body, end of headers or
/// unknown commands, and no reply to any step but RCPT and end of message.
const MILTER_FLAGS: u32 = 0x20 | 0x10 | 0x40 | 0x100 // NOHDRS NOBODY NOEOH NOUNKNOWN
    | 0x80 | 0x1000 | 0x2000 | 0x4000 // NR_HDR NR_CONN NR_HELO NR_MAIL
    | 0x1_0000 | 0x2_0000 | 0x4_0000 | 0x8_0000; // NR_DATA NR_UNKN NR_EOH NR_BODY
const DEFER: &[u8] = b"451 4.7.1 Service unavailable - try again later";

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Milter,
    Policy,
}

trait Stream: Read + Write + AsFd + mio::event::Source {}
impl<T: Read + Write + AsFd + mio::event::Source> Stream for T {}

fn main() {
    let mut protocol = Protocol::Milter;
    let mut listen = String::from("127.0.0.1:12079");
    let parsed = common::each_option(|arg, value| {
        match arg {
            "--protocol" if value == "milter" => protocol = Protocol::Milter,
            "--protocol" if value == "policy" => protocol = Protocol::Policy,
            "--listen" => listen = value,
            _ => return Err(format!("unknown option or value: {arg} {value}")),
        }
        Ok(())
    });
    if let Err(e) = parsed.and_then(|()| serve(protocol, &listen).map_err(|e| e.to_string())) {
        eprintln!("floor_server: {e}");
        std::process::exit(2);
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

fn serve(protocol: Protocol, listen: &str) -> std::io::Result<()> {
    let mut listener = match listen.strip_prefix("unix:") {
        Some(path) => Listener::Unix(UnixListener::bind(path)?),
        None => {
            let addr = listen.parse().map_err(std::io::Error::other)?;
            let tcp = TcpListener::bind(addr)?;
            // Accepted sockets inherit it, as in the daemons' listener.
            socket2::SockRef::from(&tcp).set_tcp_nodelay(true)?;
            Listener::Tcp(tcp)
        }
    };
    let mut poll = Poll::new()?;
    match &mut listener {
        Listener::Tcp(l) => poll.registry().register(l, Token(0), Interest::READABLE)?,
        Listener::Unix(l) => poll.registry().register(l, Token(0), Interest::READABLE)?,
    }
    let mut conns: HashMap<usize, (Box<dyn Stream>, Vec<u8>)> = HashMap::new();
    let mut next = 1usize;
    let mut events = Events::with_capacity(256);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            if event.token() == Token(0) {
                loop {
                    let accepted: std::io::Result<Box<dyn Stream>> = match &listener {
                        Listener::Tcp(l) => l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>),
                        Listener::Unix(l) => {
                            l.accept().map(|(s, _)| Box::new(s) as Box<dyn Stream>)
                        }
                    };
                    match accepted {
                        Ok(mut stream) => {
                            poll.registry().register(
                                &mut stream,
                                Token(next),
                                Interest::READABLE,
                            )?;
                            conns.insert(next, (stream, Vec::new()));
                            next += 1;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => return Err(e),
                    }
                }
                continue;
            }
            let token = event.token().0;
            let done = match conns.get_mut(&token) {
                Some((stream, pending)) => turn(protocol, stream.as_mut(), pending, &mut buf),
                None => continue,
            };
            if done && let Some((stream, _)) = conns.remove(&token) {
                close(protocol, stream);
            }
        }
    }
}

/// Reads what arrived and answers every complete request; true when the connection is over.
fn turn(
    protocol: Protocol,
    stream: &mut dyn Stream,
    pending: &mut Vec<u8>,
    buf: &mut [u8],
) -> bool {
    loop {
        match stream.read(buf) {
            Ok(0) => return true,
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                let mut out = Vec::new();
                let quit = match protocol {
                    Protocol::Milter => milter_answers(pending, &mut out),
                    Protocol::Policy => policy_answers(pending, &mut out),
                };
                if !out.is_empty() && stream.write_all(&out).is_err() {
                    return true;
                }
                if quit {
                    return true;
                }
                if n < buf.len() {
                    return false;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Takes complete milter packets off `pending` and writes their replies; true after QUIT.
fn milter_answers(pending: &mut Vec<u8>, out: &mut Vec<u8>) -> bool {
    let mut at = 0;
    let mut quit = false;
    while let Some(len) = pending.get(at..at + 4) {
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(body) = pending.get(at + 4..at + 4 + len) else {
            break;
        };
        match body.first() {
            Some(b'O') => {
                let offered = |i: usize| {
                    body.get(i..i + 4)
                        .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                };
                let mut reply = 6u32.to_be_bytes().to_vec();
                reply.extend((offered(5) & 0x01).to_be_bytes());
                reply.extend((offered(9) & MILTER_FLAGS).to_be_bytes());
                milter_packet(out, b'O', &reply);
            }
            Some(b'R') => {
                let mut text = DEFER.to_vec();
                text.push(0);
                milter_packet(out, b'y', &text);
            }
            Some(b'E') => milter_packet(out, b'c', b""),
            Some(b'Q') => quit = true,
            _ => {}
        }
        at += 4 + len;
    }
    pending.drain(..at);
    quit
}

/// Takes complete policy requests (attribute lines ending in an empty line) off `pending` and
/// answers each; never ends the connection (the client does).
fn policy_answers(pending: &mut Vec<u8>, out: &mut Vec<u8>) -> bool {
    let mut at = 0;
    while let Some(end) = pending[at..].windows(2).position(|w| w == b"\n\n") {
        out.extend_from_slice(b"action=DEFER_IF_PERMIT ");
        out.extend_from_slice(DEFER.get(4..).unwrap_or_default());
        out.extend_from_slice(b"\n\n");
        at += end + 2;
    }
    pending.drain(..at);
    false
}

/// The milter resets a TCP connection after QUIT, as greylisting-milter does; the policy
/// connection is closed by its client and simply dropped.
fn close(protocol: Protocol, stream: Box<dyn Stream>) {
    if protocol == Protocol::Milter {
        // A unix socket has no linger to set; the error is of no interest either way.
        let _ = socket2::SockRef::from(&stream.as_fd()).set_linger(Some(Duration::ZERO));
    }
    drop(stream);
}
