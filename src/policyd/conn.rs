//! One client connection of the policy server: reading requests as they arrive (edge-triggered),
//! the end of the stream, writing replies; and a complete request waiting for its turn.

use std::io::{self, Read};
use std::time::Instant;

use crate::clock;
use crate::daemon::output::{Flushed, Outgoing, backlog_line};
use crate::daemon::{Peer, Stream};
use crate::logging::Logger;

use super::Config;
use super::protocol::{self, Parsed, RequestReader};
use super::reply::Action;
use crate::daemon::dns_waits::WaitsForDns;
use crate::daemon::limits::CloseCause;
use crate::engine::Message;

/// Bytes read from a socket at once.
const READ_CHUNK: usize = 16 * 1024;
/// Empty requests in a row after which a connection is closed as bad input: Postfix never sends
/// one, so a stream of lone newlines is a broken or hostile client, not mail.
const MAX_EMPTY_REQUESTS: u32 = 100;
/// Requests a connection may send while one of its requests waits for DNS. Postfix and Exim
/// wait for each reply, so they never have more than one outstanding: past this the client is
/// closed as bad input, so a pipelining client cannot queue requests (and memory) without bound
/// behind a slow lookup.
const MAX_HELD: usize = 64;

/// One client connection.
pub(super) struct Conn {
    pub(super) stream: Stream,
    pub(super) peer: Peer,
    pub(super) reader: RequestReader,
    /// Replies not yet written (the socket was full).
    pub(super) out: Vec<u8>,
    /// Last byte received or reply sent (the idle clock).
    pub(super) last_activity: Instant,
    /// When the first byte of the request in progress arrived (the request clock).
    pub(super) request_started: Option<Instant>,
    /// The reader's incomplete-request bytes as last added to the table's total.
    pub(super) partial_accounted: usize,
    /// Why the server is closing the connection, when it decided to (counted on removal).
    pub(super) close_cause: Option<CloseCause>,
    /// The `instance` whose message already got an `X-Greylist` header.
    pub(super) last_header_instance: Option<String>,
    /// Empty requests (no attribute) received since the last non-empty one.
    pub(super) empty_in_a_row: u32,
    /// Whether an empty request on this connection was logged already (once is enough).
    pub(super) empty_logged: bool,
    /// The client closed its side: close once the replies are out.
    pub(super) eof: bool,
    /// Close now (protocol violation, socket error).
    pub(super) dead: bool,
    /// A request of this connection waits (for DNS, or behind one that did): later replies and
    /// requests wait in `held`, in order.
    pub(super) waiting: bool,
    /// What waits behind it.
    pub(super) held: std::collections::VecDeque<Held>,
}

impl Conn {
    /// A connection just accepted.
    pub(super) fn new(stream: Stream, peer: Peer) -> Conn {
        Conn {
            stream,
            peer,
            reader: RequestReader::new(),
            out: Vec::new(),
            last_activity: Instant::now(),
            request_started: None,
            partial_accounted: 0,
            close_cause: None,
            last_header_instance: None,
            empty_in_a_row: 0,
            empty_logged: false,
            eof: false,
            dead: false,
            waiting: false,
            held: std::collections::VecDeque::new(),
        }
    }

    /// Reads until the socket is drained; complete requests go to `pending`. `closing` says
    /// the event reported the peer's end of stream (or an error) as well.
    ///
    /// A read that returns less than the buffer holds has drained the socket: the loop stops
    /// there instead of paying one more `recv` for the `WouldBlock` (one system call per request
    /// saved). Edge-triggered epoll reports every later arrival of data as a new event, so
    /// nothing is missed; only an end of stream already reported by this event needs the read
    /// that returns 0, hence `closing`.
    pub(super) fn read_ready(
        &mut self,
        token: usize,
        closing: bool,
        pending: &mut Vec<Pending>,
        config: &Config,
        log: &mut Logger,
    ) {
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.end_of_stream(token, pending, config, log);
                    return;
                }
                Ok(n) => {
                    self.last_activity = Instant::now();
                    let drained = n < chunk.len() && !closing;
                    self.reader.feed(&chunk[..n]);
                    loop {
                        match self.reader.take_request() {
                            Ok(Some(attrs)) => {
                                if !self.count_empty(&attrs, log) {
                                    return;
                                }
                                pending.push(Pending::new(token, &attrs, config));
                            }
                            Ok(None) => break,
                            Err(err) => {
                                log.error(&format!("closing connection from {}: {err}", self.peer));
                                self.close_cause = Some(CloseCause::BadInput);
                                self.dead = true;
                                return;
                            }
                        }
                    }
                    if drained {
                        return;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    if err.kind() == io::ErrorKind::ConnectionReset && self.reader.in_progress() {
                        log.error(&format!(
                            "closing connection from {}: client reset the connection in the middle of a request",
                            self.peer
                        ));
                    } else if err.kind() != io::ErrorKind::ConnectionReset {
                        log.error(&format!(
                            "closing connection from {}: read error: {err}",
                            self.peer
                        ));
                    }
                    self.dead = true;
                    return;
                }
            }
        }
    }

    /// Counts empty requests: the first on a connection is logged, and after
    /// [`MAX_EMPTY_REQUESTS`] in a row the connection is closed as bad input (false). A flood of
    /// newlines thus costs two log lines, not one per byte.
    fn count_empty(&mut self, attrs: &protocol::Attributes, log: &mut Logger) -> bool {
        if !attrs.is_empty() {
            self.empty_in_a_row = 0;
            return true;
        }
        self.empty_in_a_row += 1;
        if self.empty_in_a_row > MAX_EMPTY_REQUESTS {
            log.error(&format!(
                "closing connection from {}: more than {MAX_EMPTY_REQUESTS} empty requests in a row",
                self.peer
            ));
            self.close_cause = Some(CloseCause::BadInput);
            self.dead = true;
            return false;
        }
        if !self.empty_logged {
            self.empty_logged = true;
            log.info(&format!(
                "action=dunno, reason=empty request (no attributes), peer={}; further empty requests on this connection are answered without a log line",
                self.peer
            ));
        }
        true
    }

    /// The client closed its side. Exim's `${readsocket}` writes one request, half-closes and
    /// reads until the server closes: a request cut off here is answered as if its blank line
    /// had come. Either way the connection is only read no more; it closes once every queued
    /// reply is written (or the peer is gone), never with a reply half sent.
    fn end_of_stream(
        &mut self,
        token: usize,
        pending: &mut Vec<Pending>,
        config: &Config,
        log: &mut Logger,
    ) {
        self.eof = true;
        match self.reader.finish() {
            Ok(Some(attrs)) => {
                log.info(&format!(
                    "request from {} ended by the end of the stream without its empty line: answered as complete",
                    self.peer
                ));
                pending.push(Pending::new(token, &attrs, config));
            }
            Ok(None) => {}
            Err(err) => log.error(&format!("closing connection from {}: {err}", self.peer)),
        }
    }

    /// True when the connection must be closed now: broken, or the client is gone and every
    /// reply is out (a request still waiting for DNS has a reply to come: Exim half-closes
    /// right after its request and reads until the end of the stream).
    pub(super) fn is_finished(&self) -> bool {
        self.dead || self.eof && self.out.is_empty() && !self.waiting
    }

    /// Queues `held` (a later request, or its reply) behind the request this connection waits
    /// for. When more than [`MAX_HELD`] would wait, the connection is closed instead (logged
    /// once, counted as bad input) and what waited is dropped.
    pub(super) fn hold(&mut self, held: Held, log: &mut Logger) {
        if self.dead {
            return;
        }
        if self.held.len() >= MAX_HELD {
            log.error(&format!(
                "closing connection from {}: more than {MAX_HELD} requests sent while one waits for DNS (a client waits for each reply)",
                self.peer
            ));
            self.close_cause = Some(CloseCause::BadInput);
            self.dead = true;
            self.held = std::collections::VecDeque::new();
            return;
        }
        self.held.push_back(held);
    }

    /// Writes queued replies until done or the socket is full. The emptied buffer is released
    /// (as the request buffer is).
    pub(super) fn flush_out(&mut self, log: &mut Logger) {
        let outgoing = Outgoing {
            stream: &mut self.stream,
            out: &mut self.out,
            last_activity: &mut self.last_activity,
        };
        match outgoing.flush(0) {
            Flushed::Open => {}
            Flushed::Broken => self.dead = true,
            Flushed::Backlog => {
                log.error(&backlog_line(&self.peer));
                self.close_cause = Some(CloseCause::ReplyBacklog);
                self.dead = true;
            }
        }
    }
}

/// A request waiting for the turn's transaction.
pub(super) struct Pending {
    pub(super) token: usize,
    pub(super) instance: Option<String>,
    pub(super) kind: Parsed,
    /// This is the request its connection waits for (it waited for DNS, or it was held behind
    /// one that did): once it is answered, the connection's held requests go on.
    pub(super) gate: bool,
}

impl WaitsForDns for Pending {
    fn message_mut(&mut self) -> Option<&mut Message> {
        match &mut self.kind {
            Parsed::Check { message, .. } => Some(message),
            Parsed::Ignore(_) | Parsed::Empty => None,
        }
    }
}

/// What waits on a connection behind a request that waits for DNS: replies keep their order.
pub(super) enum Held {
    /// A decided request's reply.
    Reply(Action),
    /// A request not decided yet.
    Request(Box<Pending>),
}

impl Pending {
    pub(super) fn new(token: usize, attrs: &protocol::Attributes, config: &Config) -> Pending {
        Pending {
            token,
            instance: attrs
                .get("instance")
                .filter(|i| !i.is_empty())
                .map(str::to_string),
            kind: protocol::interpret(attrs, clock::system_now(), config.allow_test_time),
            gate: false,
        }
    }
}
