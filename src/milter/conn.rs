//! One MTA connection in the event loop: its socket, the packets read but not yet handled, the
//! replies not yet written and the [`Session`] they drive.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::time::Instant;

use super::Config;
use super::limits::{PartialShare, PartialTotal};
use super::protocol::PacketReader;
use super::session::{Session, Step};
use crate::daemon::dns_waits::WaitsForDns;
use crate::daemon::limits::CloseCause;
use crate::daemon::output::{Flushed, Outgoing, backlog_line};
use crate::daemon::{Peer, Stream};
use crate::engine::Message;
use crate::logging::Logger;

/// Bytes read from a socket at once: the size of the event loop's one read buffer.
pub(super) const READ_CHUNK: usize = 16 * 1024;
/// Reads of one connection per [`Conn::pump`]: a peer that writes faster than its packets are
/// handled would otherwise keep the event loop reading it, and every other connection waiting.
const MAX_READS_PER_PUMP: usize = 8;

/// A recipient waiting for the turn's transaction.
pub(super) struct PendingRcpt {
    /// The connection it came from.
    pub token: usize,
    /// The facts to decide.
    pub message: Message,
    /// When it arrived (unix seconds).
    pub now: i64,
}

impl WaitsForDns for PendingRcpt {
    fn message_mut(&mut self) -> Option<&mut Message> {
        Some(&mut self.message)
    }
}

/// One MTA connection.
pub(super) struct Conn {
    pub stream: Stream,
    pub peer: Peer,
    reader: PacketReader,
    pub session: Session,
    /// Replies not yet written (the socket was full).
    pub out: Vec<u8>,
    /// Last byte received or reply sent (the idle clock).
    pub last_activity: Instant,
    /// When the first byte of a packet not yet complete arrived (the request-timeout clock).
    pub partial_since: Option<Instant>,
    /// The bytes of packets not yet taken, as counted in the milter's total.
    pub partial: PartialShare,
    /// A RCPT is being decided: no further packet is handled until its answer is queued.
    pub awaiting: bool,
    /// The socket has been read dry since its last readiness event.
    drained: bool,
    /// Reading stopped at [`MAX_READS_PER_PUMP`] with bytes left (see [`Conn::has_more`]).
    more: bool,
    /// The last event reported the peer's end of stream: read until it shows.
    closing: bool,
    /// The MTA closed its side.
    eof: bool,
    /// The MTA said QUIT: close once the replies are out.
    quit: bool,
    /// Close now (protocol violation, socket error).
    pub dead: bool,
}

impl Conn {
    /// A new connection, its buffered bytes counted in `partial_total`.
    pub(super) fn new(stream: Stream, peer: Peer, partial_total: &PartialTotal) -> Conn {
        Conn {
            stream,
            peer,
            reader: PacketReader::new(),
            session: Session::new(),
            out: Vec::new(),
            last_activity: Instant::now(),
            partial_since: None,
            partial: PartialShare::new(partial_total),
            awaiting: false,
            drained: false,
            more: false,
            closing: false,
            eof: false,
            quit: false,
            dead: false,
        }
    }

    /// A readiness event: there may be new bytes (and, with `closing`, an end of stream).
    pub(super) fn readable(&mut self, closing: bool) {
        self.drained = false;
        self.closing |= closing;
    }

    /// True while a packet has partly arrived or a message is open: shutdown waits for these.
    pub(super) fn busy(&self) -> bool {
        self.awaiting || self.reader.in_progress() || self.session.in_message()
    }

    /// Handles buffered packets and reads more, until a RCPT waits for its decision (it goes
    /// to `pending`), the socket is dry, or the connection ends; then writes the replies queued.
    ///
    /// At most one chunk is buffered beyond the packets handled: while a decision is pending
    /// nothing is read, so a peer that pipelines cannot grow the buffer. `chunk` is the event
    /// loop's read buffer, shared by all connections (a fresh one zeroed on every call cost
    /// more than the few hundred bytes a session reads).
    pub(super) fn pump(
        &mut self,
        token: usize,
        pending: &mut Vec<PendingRcpt>,
        chunk: &mut [u8],
        config: &Config,
        log: &mut Logger,
    ) {
        self.read_and_handle(token, pending, chunk, config, log);
        if !self.out.is_empty() {
            self.flush_out(config, log);
        }
    }

    fn read_and_handle(
        &mut self,
        token: usize,
        pending: &mut Vec<PendingRcpt>,
        chunk: &mut [u8],
        config: &Config,
        log: &mut Logger,
    ) {
        let mut reads = 0;
        loop {
            while !self.awaiting && !self.dead && !self.quit {
                match self.reader.next_command() {
                    Ok(Some(command)) => {
                        // The request timeout bounds one packet: the next starts its own clock,
                        // even when a read ends in its middle (a stream of body chunks).
                        self.partial_since = None;
                        match self.session.handle(command, &mut self.out, config) {
                            Step::Next => {}
                            Step::Decide(message) => {
                                self.awaiting = true;
                                pending.push(PendingRcpt {
                                    token,
                                    message,
                                    now: crate::clock::system_now(),
                                });
                            }
                            Step::Quit => self.quit = true,
                            Step::Close(why) => {
                                log.error(&format!("closing connection from {}: {why}", self.peer));
                                config.closed.record(CloseCause::BadInput);
                                self.dead = true;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        log.error(&format!("closing connection from {}: {err}", self.peer));
                        config.closed.record(CloseCause::BadInput);
                        self.dead = true;
                    }
                }
            }
            // Complete packets were all taken above: what is left is the start of the next one.
            self.partial_since = if self.reader.in_progress() {
                self.partial_since.or_else(|| Some(Instant::now()))
            } else {
                None
            };
            self.partial.set(self.reader.partial_bytes());
            if self.awaiting {
                // Whatever is left is read once the answer is queued.
                return;
            }
            if self.dead || self.quit || self.eof || self.drained {
                self.more = false;
                return;
            }
            if reads == MAX_READS_PER_PUMP {
                self.more = true;
                return;
            }
            reads += 1;
            self.more = false;
            match self.stream.read(chunk) {
                Ok(0) => {
                    self.eof = true;
                    if self.reader.in_progress() {
                        log.error(&format!(
                            "connection from {} closed in the middle of a packet",
                            self.peer
                        ));
                    }
                    return;
                }
                Ok(n) => {
                    self.last_activity = Instant::now();
                    // A short read has emptied the socket (edge-triggered epoll reports the
                    // next arrival), unless the end of stream is still to be seen.
                    self.drained = n < chunk.len() && !self.closing;
                    self.reader.feed(&chunk[..n]);
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => self.drained = true,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => {
                    // A reset is the MTA's own close, not counted as the milter's; one that cuts
                    // a packet off is logged, as the end of the stream there is.
                    if err.kind() != io::ErrorKind::ConnectionReset {
                        config.closed.record(CloseCause::BadInput);
                        log.error(&format!(
                            "closing connection from {}: read error: {err}",
                            self.peer
                        ));
                    } else if self.reader.in_progress() {
                        log.error(&format!(
                            "closing connection from {}: MTA reset the connection in the middle of a packet",
                            self.peer
                        ));
                    }
                    self.dead = true;
                }
            }
        }
    }

    /// True when bytes are left to read that no event will report: pump it again next turn.
    pub(super) fn has_more(&self) -> bool {
        self.more && !self.awaiting
    }

    /// True when the connection must be closed now.
    pub(super) fn is_finished(&self) -> bool {
        self.dead || (self.eof || self.quit) && !self.awaiting && self.out.is_empty()
    }

    /// Writes queued replies until done or the socket is full. The buffer is kept for the
    /// next replies unless it grew beyond a read chunk. An MTA that leaves more than
    /// [`MAX_UNSENT_REPLIES`](crate::daemon::output::MAX_UNSENT_REPLIES) bytes unread is
    /// disconnected, whichever steps the replies answer.
    pub(super) fn flush_out(&mut self, config: &Config, log: &mut Logger) {
        let outgoing = Outgoing {
            stream: &mut self.stream,
            out: &mut self.out,
            last_activity: &mut self.last_activity,
        };
        match outgoing.flush(READ_CHUNK) {
            Flushed::Open => {}
            Flushed::Broken => self.dead = true,
            Flushed::Backlog => {
                log.error(&backlog_line(&self.peer));
                self.dead = true;
                config.closed.record(CloseCause::ReplyBacklog);
            }
        }
    }
}

impl Drop for Conn {
    /// A TCP connection that ended with the MTA's QUIT is reset rather than closed with a FIN.
    /// The MTA sends QUIT only after reading every reply it waited for, and closes its end
    /// right after writing it (Postfix's milter client and Sendmail alike), so nothing is left
    /// to exchange; an orderly close would still cost a FIN, its acknowledgement and a
    /// TIME_WAIT entry on the MTA's host for each SMTP session — over loopback all of it
    /// processed in the milter's own system call. Every other close (a protocol error, the
    /// idle timeout, shutdown, the MTA's own close) stays orderly.
    ///
    /// A reset throws away whatever the socket still holds to send, so it is only used when the
    /// MTA has acknowledged every byte written: an MTA that pipelined QUIT behind commands
    /// whose replies it has not taken yet (or reads slowly) gets them all, then an orderly close.
    fn drop(&mut self) {
        if self.quit
            && self.out.is_empty()
            && let Stream::Tcp(tcp) = &self.stream
            && all_acknowledged(tcp)
        {
            reset_on_close(tcp);
        }
    }
}

/// True when the kernel holds nothing of `tcp`'s output, neither unsent nor unacknowledged
/// (`SIOCOUTQ` is zero). False when it cannot tell.
fn all_acknowledged(tcp: &mio::net::TcpStream) -> bool {
    let mut queued: libc::c_int = 0;
    // SAFETY: the descriptor is an open TCP socket owned by `tcp`, which outlives the call;
    // TIOCOUTQ (SIOCOUTQ for sockets) writes one int, to `queued`, which we own.
    let rc = unsafe { libc::ioctl(tcp.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    rc == 0 && queued == 0
}

/// Makes the coming close of `tcp` send a reset: `SO_LINGER` on with a zero timeout. When the
/// option cannot be set, the close is an ordinary one, which is correct too.
fn reset_on_close(tcp: &mio::net::TcpStream) {
    let _ = socket2::SockRef::from(tcp).set_linger(Some(std::time::Duration::ZERO));
}
