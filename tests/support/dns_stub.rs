//! A DNS server for tests, over loopback: UDP on `127.0.0.1` at a port the system picks, and TCP
//! on the same port (for the fallback after a truncated UDP answer). It answers A and AAAA
//! questions from a table the test changes while it runs, and counts the questions per name, so
//! a test can prove that an answer came from a cache ("the second message asks nothing").
//!
//! Used by the unit tests of `src/dns` and by the integration tests (included by `#[path]` from
//! both). Its threads stop when it is dropped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_resolver::proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, AAAA};
use hickory_resolver::proto::rr::{RData, Record, RecordType};

/// How often the threads look whether the stub was dropped.
const POLL: Duration = Duration::from_millis(20);
/// A datagram the UDP thread echoes instead of answering (it is no DNS message): once the echo
/// is back, every question sent before it has been read and counted.
const SYNC: &[u8] = b"grey_listing dns stub: sync";
/// How long a count waits for the stub to read what was sent before it.
const SYNC_WAIT: Duration = Duration::from_secs(10);

/// What the stub answers for one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    /// These addresses: an A question gets the IPv4 ones, an AAAA question the IPv6 ones; a
    /// question whose family has none gets NODATA (NOERROR without answers).
    Addresses(Vec<IpAddr>),
    /// NXDOMAIN.
    NxDomain,
    /// NOERROR without answers.
    NoData,
    /// SERVFAIL.
    ServFail,
    /// REFUSED.
    Refused,
    /// No answer at all, on either transport.
    Hang,
    /// Over UDP an empty answer with the TC bit set; over TCP the addresses, as
    /// [`Reply::Addresses`].
    Truncated(Vec<IpAddr>),
}

/// Parses addresses for a [`Reply`]: `addresses(&["127.0.0.2", "::1"])`.
pub(crate) fn addresses(list: &[&str]) -> Vec<IpAddr> {
    list.iter()
        .map(|text| text.parse().expect("a test address"))
        .collect()
}

#[derive(Default)]
struct State {
    table: HashMap<String, Reply>,
    /// Questions per name (both transports).
    asked: HashMap<String, usize>,
    /// Questions per name that came over TCP.
    asked_tcp: HashMap<String, usize>,
}

/// The running stub. Names are compared lower-case, without the trailing dot; a name not in the
/// table gets NXDOMAIN.
pub(crate) struct DnsStub {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl DnsStub {
    /// Starts the stub on a free port of 127.0.0.1 (UDP and TCP).
    pub(crate) fn start() -> DnsStub {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("stub address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let threads = vec![
            serve_udp(udp, Arc::clone(&state), Arc::clone(&stop)),
            serve_tcp(tcp, Arc::clone(&state), Arc::clone(&stop)),
        ];
        DnsStub {
            addr,
            state,
            stop,
            threads,
        }
    }

    /// The address (UDP and TCP) to use as the resolver.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers `name` with `reply` from now on.
    pub(crate) fn set(&self, name: &str, reply: Reply) {
        lock(&self.state).table.insert(key(name), reply);
    }

    /// Waits until the UDP thread has read every datagram sent to it before this call. A
    /// client that gave up waiting (a process past its DNS budget on a loaded machine) may
    /// have left questions unread in the socket; counting them now keeps counts exact.
    fn sync(&self) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the sync socket");
        socket
            .set_read_timeout(Some(SYNC_WAIT))
            .expect("sync timeout");
        socket
            .send_to(SYNC, self.addr)
            .expect("send the sync datagram");
        let mut buffer = [0u8; 64];
        loop {
            let (length, _) = socket
                .recv_from(&mut buffer)
                .expect("the DNS stub did not echo the sync datagram");
            if &buffer[..length] == SYNC {
                return;
            }
        }
    }

    /// Questions received for `name` so far (any type, both transports).
    pub(crate) fn queries(&self, name: &str) -> usize {
        self.sync();
        lock(&self.state)
            .asked
            .get(&key(name))
            .copied()
            .unwrap_or(0)
    }

    /// Questions received for `name` over TCP so far.
    pub(crate) fn tcp_queries(&self, name: &str) -> usize {
        self.sync();
        lock(&self.state)
            .asked_tcp
            .get(&key(name))
            .copied()
            .unwrap_or(0)
    }

    /// Questions received for all names so far.
    pub(crate) fn total_queries(&self) -> usize {
        self.sync();
        lock(&self.state).asked.values().sum()
    }
}

impl Drop for DnsStub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same free port (retried: the port the system gave the
/// UDP socket may be taken for TCP).
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = udp.local_addr().expect("UDP address").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            return (udp, tcp);
        }
    }
    panic!("no free port for UDP and TCP together");
}

fn serve_udp(socket: UdpSocket, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) -> JoinHandle<()> {
    socket.set_read_timeout(Some(POLL)).expect("UDP timeout");
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            let Ok((length, peer)) = socket.recv_from(&mut buffer) else {
                continue;
            };
            if &buffer[..length] == SYNC {
                let _ = socket.send_to(SYNC, peer);
                continue;
            }
            if let Some(reply) = respond(&state, &buffer[..length], false) {
                let _ = socket.send_to(&reply, peer);
            }
        }
    })
}

fn serve_tcp(
    listener: TcpListener,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<()> {
    listener.set_nonblocking(true).expect("TCP nonblocking");
    std::thread::spawn(move || {
        let mut connections = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
                    connections.push(std::thread::spawn(move || {
                        serve_connection(stream, &state, &stop)
                    }));
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
        for connection in connections {
            let _ = connection.join();
        }
    })
}

/// Length-prefixed messages on one TCP connection until the client closes it or the stub stops.
fn serve_connection(mut stream: TcpStream, state: &Mutex<State>, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(POLL));
    let mut pending = Vec::new();
    let mut buffer = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(length) => pending.extend_from_slice(&buffer[..length]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        while pending.len() >= 2 {
            let length = usize::from(u16::from_be_bytes([pending[0], pending[1]]));
            if pending.len() < 2 + length {
                break;
            }
            let message: Vec<u8> = pending.drain(..2 + length).skip(2).collect();
            if let Some(reply) = respond(state, &message, true) {
                let Ok(length) = u16::try_from(reply.len()) else {
                    return;
                };
                let mut framed = length.to_be_bytes().to_vec();
                framed.extend_from_slice(&reply);
                if stream.write_all(&framed).is_err() {
                    return;
                }
            }
        }
    }
}

/// The encoded answer to one request, or `None` for no answer.
fn respond(state: &Mutex<State>, request: &[u8], over_tcp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(request).ok()?;
    let query = request.queries.first()?.clone();
    let name = key(&query.name().to_string());
    let reply = {
        let mut state = lock(state);
        *state.asked.entry(name.clone()).or_default() += 1;
        if over_tcp {
            *state.asked_tcp.entry(name.clone()).or_default() += 1;
        }
        state.table.get(&name).cloned().unwrap_or(Reply::NxDomain)
    };
    let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.add_query(query.clone());
    let list = match reply {
        Reply::Hang => return None,
        Reply::NxDomain => {
            response.metadata.response_code = ResponseCode::NXDomain;
            Vec::new()
        }
        Reply::ServFail => {
            response.metadata.response_code = ResponseCode::ServFail;
            Vec::new()
        }
        Reply::Refused => {
            response.metadata.response_code = ResponseCode::Refused;
            Vec::new()
        }
        Reply::NoData => Vec::new(),
        Reply::Truncated(_) if !over_tcp => {
            response.metadata.truncation = true;
            Vec::new()
        }
        Reply::Addresses(list) | Reply::Truncated(list) => list,
    };
    for ip in list {
        let data = match (query.query_type(), ip) {
            (RecordType::A, IpAddr::V4(v4)) => RData::A(A(v4)),
            (RecordType::AAAA, IpAddr::V6(v6)) => RData::AAAA(AAAA(v6)),
            _ => continue,
        };
        response.add_answer(Record::from_rdata(query.name().clone(), 60, data));
    }
    response.to_vec().ok()
}
