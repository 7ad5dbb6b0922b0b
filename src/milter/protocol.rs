//! The milter wire protocol, version 6, as Sendmail's libmilter and Postfix's `smtpd_milters`
//! speak it. Written from the public protocol description: every packet is a 4-byte big-endian
//! length (counting the command byte), one command byte, then the command's data; strings are
//! NUL-terminated, numbers are 32-bit big-endian (a port is 16-bit).
//!
//! Reading is bounded: a packet announcing more than [`MAX_PACKET`] bytes, an empty packet, an
//! unknown command or a packet whose data does not fit its command is a [`ProtocolError`] and
//! the caller closes the connection. Nothing here panics on any input.

use std::net::IpAddr;

use thiserror::Error;

use fields::Fields;

/// The protocol version we speak (and the highest we accept to negotiate).
pub(crate) const VERSION: u32 = 6;
/// The oldest version whose negotiation we understand (libmilter's minimum as well).
pub(crate) const MIN_VERSION: u32 = 2;
/// Longest string of CONNECT, HELO, MAIL or RCPT accepted: the policy server's line limit
/// (`policyd::protocol::MAX_LINE`). No MTA sends more (Postfix and Sendmail cut SMTP command
/// lines at 2,048 bytes), and a connection keeps its host name and sender for the whole
/// session, so a longer one would let thousands of connections hold far more memory than
/// their packets ever do.
pub(crate) const MAX_VALUE: usize = crate::policyd::protocol::MAX_LINE;
/// Largest packet accepted, its command byte included. The MTA sends body chunks of at most
/// 64 KiB and we ask for no body at all, so a larger packet is a broken or hostile peer.
pub(crate) const MAX_PACKET: usize = 64 * 1024;

/// Command codes, MTA to milter (`SMFIC_*`).
pub(crate) mod cmd {
    /// Option negotiation.
    pub(crate) const OPTNEG: u8 = b'O';
    /// Macro definitions for the next command.
    pub(crate) const MACRO: u8 = b'D';
    /// Client connection.
    pub(crate) const CONNECT: u8 = b'C';
    /// HELO/EHLO.
    pub(crate) const HELO: u8 = b'H';
    /// MAIL FROM.
    pub(crate) const MAIL: u8 = b'M';
    /// RCPT TO.
    pub(crate) const RCPT: u8 = b'R';
    /// DATA.
    pub(crate) const DATA: u8 = b'T';
    /// One header.
    pub(crate) const HEADER: u8 = b'L';
    /// End of headers.
    pub(crate) const EOH: u8 = b'N';
    /// A body chunk.
    pub(crate) const BODY: u8 = b'B';
    /// End of message.
    pub(crate) const BODYEOB: u8 = b'E';
    /// The message was aborted.
    pub(crate) const ABORT: u8 = b'A';
    /// Close the connection.
    pub(crate) const QUIT: u8 = b'Q';
    /// End of this SMTP session; another one follows on the same connection.
    pub(crate) const QUIT_NC: u8 = b'K';
    /// An SMTP command the MTA does not know.
    pub(crate) const UNKNOWN: u8 = b'U';
}

/// Reply codes, milter to MTA (`SMFIR_*`). The protocol's whole set for these steps is named,
/// used or not, so a reader sees what the milter chose not to send.
#[allow(dead_code)]
pub(crate) mod reply {
    /// Go on with the next step.
    pub(crate) const CONTINUE: u8 = b'c';
    /// Accept the message (or connection) without further steps.
    pub(crate) const ACCEPT: u8 = b'a';
    /// An SMTP reply with code, enhanced code and text.
    pub(crate) const REPLYCODE: u8 = b'y';
    /// Append a header.
    pub(crate) const ADDHEADER: u8 = b'h';
    /// Temporary failure without text.
    pub(crate) const TEMPFAIL: u8 = b't';
    /// Rejection without text.
    pub(crate) const REJECT: u8 = b'r';
}

/// `SMFIF_ADDHDRS`: the milter may add headers.
pub(crate) const SMFIF_ADDHDRS: u32 = 0x01;
/// `SMFIF_SETSYMLIST`: the milter may say which macros it wants per step.
pub(crate) const SMFIF_SETSYMLIST: u32 = 0x100;

/// Protocol flags (`SMFIP_*`): steps the milter does not want, or does not answer. Named whole,
/// as the reply codes are.
#[allow(dead_code)]
pub(crate) mod flag {
    /// No HEADER packets.
    pub(crate) const NOHDRS: u32 = 0x20;
    /// No BODY packets.
    pub(crate) const NOBODY: u32 = 0x10;
    /// No end-of-headers packet.
    pub(crate) const NOEOH: u32 = 0x40;
    /// No reply to HEADER.
    pub(crate) const NR_HDR: u32 = 0x80;
    /// No UNKNOWN packets.
    pub(crate) const NOUNKNOWN: u32 = 0x100;
    /// No DATA packet.
    pub(crate) const NODATA: u32 = 0x200;
    /// No reply to CONNECT.
    pub(crate) const NR_CONN: u32 = 0x1000;
    /// No reply to HELO.
    pub(crate) const NR_HELO: u32 = 0x2000;
    /// No reply to MAIL.
    pub(crate) const NR_MAIL: u32 = 0x4000;
    /// No reply to DATA.
    pub(crate) const NR_DATA: u32 = 0x1_0000;
    /// No reply to UNKNOWN.
    pub(crate) const NR_UNKN: u32 = 0x2_0000;
    /// No reply to end of headers.
    pub(crate) const NR_EOH: u32 = 0x4_0000;
    /// No reply to BODY.
    pub(crate) const NR_BODY: u32 = 0x8_0000;
}

/// Macro stages (`SMFIM_*`) for the negotiation reply's macro lists.
pub(crate) mod stage {
    /// Macros sent with CONNECT.
    pub(crate) const CONNECT: u32 = 0;
    /// Macros sent with MAIL.
    pub(crate) const ENVFROM: u32 = 2;
}

/// Why a connection must be closed.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum ProtocolError {
    /// A packet announcing more than [`MAX_PACKET`] bytes.
    #[error("packet of {0} bytes is larger than {MAX_PACKET} bytes")]
    TooLarge(u32),
    /// A length of zero: not even a command byte.
    #[error("empty packet")]
    Empty,
    /// A command code the protocol does not have.
    #[error("unknown command 0x{0:02x}")]
    UnknownCommand(u8),
    /// A host name, HELO or address longer than [`MAX_VALUE`].
    #[error("{command} packet with a value of {bytes} bytes, longer than {MAX_VALUE} bytes")]
    ValueTooLong {
        /// The command's name.
        command: &'static str,
        /// The value's length.
        bytes: usize,
    },
    /// The data does not fit the command.
    #[error("malformed {command} packet: {why}")]
    Malformed {
        /// The command's name.
        command: &'static str,
        /// What is wrong.
        why: &'static str,
    },
}

/// The client's address from the CONNECT step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ClientAddress {
    /// IPv4 or IPv6, with the client's port.
    Inet(IpAddr, u16),
    /// A unix-domain socket (the path, as the MTA gives it).
    Unix(String),
    /// The MTA does not know (local submission, or a family it does not report).
    Unknown,
}

/// One decoded command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// The MTA's offer: its version, the actions it allows and the protocol flags it supports.
    Negotiate {
        /// Protocol version.
        version: u32,
        /// `SMFIF_*` actions offered.
        actions: u32,
        /// `SMFIP_*` flags offered.
        protocol: u32,
    },
    /// Macros for the command `stage` (its command code).
    Macros {
        /// The command the macros belong to.
        stage: u8,
        /// Name and value pairs, names as sent (`{auth_authen}` or `j`).
        pairs: Vec<(String, String)>,
    },
    /// A client connected.
    Connect {
        /// Its host name, or its address in brackets when unverified.
        hostname: String,
        /// Its address.
        address: ClientAddress,
    },
    /// HELO/EHLO with its argument.
    Helo(String),
    /// MAIL FROM, its address as sent (angle brackets included); ESMTP arguments dropped.
    Mail(String),
    /// RCPT TO, its address as sent; ESMTP arguments dropped.
    Rcpt(String),
    /// DATA.
    Data,
    /// One header (not asked for; answered as `SMFIP_NR_HDR` says if sent anyway).
    Header,
    /// End of headers (not asked for; answered as `SMFIP_NR_EOH` says if sent anyway).
    EndOfHeaders,
    /// A body chunk (not asked for; answered as `SMFIP_NR_BODY` says if sent anyway).
    Body,
    /// End of message.
    EndOfMessage,
    /// The current message was aborted.
    Abort,
    /// Close the connection.
    Quit,
    /// The SMTP session ended; a new one follows on this connection.
    QuitNewConnection,
    /// An unknown SMTP command.
    UnknownSmtp,
}

/// Splits the bytes of a connection into packets, within [`MAX_PACKET`].
#[derive(Debug, Default)]
pub(crate) struct PacketReader {
    buf: Vec<u8>,
    /// First byte not yet consumed.
    pos: usize,
}

impl PacketReader {
    /// An empty reader.
    pub(crate) fn new() -> PacketReader {
        PacketReader::default()
    }

    /// Appends received bytes.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// True when part of a packet is buffered.
    pub(crate) fn in_progress(&self) -> bool {
        self.pos < self.buf.len()
    }

    /// Bytes buffered and not yet taken as a packet (0 between packets).
    pub(crate) fn partial_bytes(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete command, `None` until more bytes arrive. The length is checked as
    /// soon as its four bytes are there, before the packet's data is waited for.
    pub(crate) fn next_command(&mut self) -> Result<Option<Command>, ProtocolError> {
        let rest = &self.buf[self.pos..];
        let Some(header) = rest.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        if len == 0 {
            return Err(ProtocolError::Empty);
        }
        if len as usize > MAX_PACKET {
            return Err(ProtocolError::TooLarge(len));
        }
        let Some(packet) = rest.get(4..4 + len as usize) else {
            return Ok(None);
        };
        let command = decode(packet[0], &packet[1..])?;
        self.pos += 4 + len as usize;
        if self.pos == self.buf.len() {
            // Release the buffer between packets: an idle connection keeps no memory.
            self.buf = Vec::new();
            self.pos = 0;
        }
        Ok(Some(command))
    }
}

/// Decodes one packet's command code and data.
pub(crate) fn decode(code: u8, data: &[u8]) -> Result<Command, ProtocolError> {
    let malformed = |command, why| ProtocolError::Malformed { command, why };
    Ok(match code {
        cmd::OPTNEG => {
            let mut fields = Fields::new(data, "negotiation");
            let version = fields.u32()?;
            let actions = fields.u32()?;
            let protocol = fields.u32()?;
            Command::Negotiate {
                version,
                actions,
                protocol,
            }
        }
        cmd::MACRO => {
            let (&stage, rest) = data.split_first().ok_or(malformed("macro", "no stage"))?;
            let mut fields = Fields::new(rest, "macro");
            let mut pairs = Vec::new();
            while !fields.is_empty() {
                let name = fields.string()?;
                // A name without its value ends some MTAs' lists; it defines nothing.
                if fields.is_empty() {
                    break;
                }
                pairs.push((name, fields.string()?));
            }
            Command::Macros { stage, pairs }
        }
        cmd::CONNECT => decode_connect(data)?,
        cmd::HELO => Command::Helo(Fields::new(data, "helo").value()?),
        cmd::MAIL => Command::Mail(Fields::new(data, "mail").value()?),
        cmd::RCPT => Command::Rcpt(Fields::new(data, "rcpt").value()?),
        cmd::DATA => Command::Data,
        cmd::HEADER => Command::Header,
        cmd::EOH => Command::EndOfHeaders,
        cmd::BODY => Command::Body,
        cmd::BODYEOB => Command::EndOfMessage,
        cmd::ABORT => Command::Abort,
        cmd::QUIT => Command::Quit,
        cmd::QUIT_NC => Command::QuitNewConnection,
        cmd::UNKNOWN => Command::UnknownSmtp,
        other => return Err(ProtocolError::UnknownCommand(other)),
    })
}

fn decode_connect(data: &[u8]) -> Result<Command, ProtocolError> {
    let malformed = |why| ProtocolError::Malformed {
        command: "connect",
        why,
    };
    let mut fields = Fields::new(data, "connect");
    let hostname = fields.value()?;
    let family = fields.byte()?;
    let address = match family {
        b'U' => ClientAddress::Unknown,
        b'4' | b'6' | b'L' => {
            let port = fields.u16()?;
            let text = fields.value()?;
            if family == b'L' {
                ClientAddress::Unix(text)
            } else {
                // Sendmail writes IPv6 addresses as `IPv6:2001:db8::1`, Postfix bare.
                let bare = text
                    .get(..5)
                    .filter(|p| p.eq_ignore_ascii_case("ipv6:"))
                    .map_or(text.as_str(), |_| &text[5..]);
                // A link-local client may come with its zone (`fe80::1%eth0`): the address is
                // what identifies it; refusing it would close the MTA's connection instead.
                let bare = match bare.split_once('%') {
                    Some((address, _zone)) if family == b'6' => address,
                    _ => bare,
                };
                let ip: IpAddr = bare.parse().map_err(|_| malformed("bad address"))?;
                if ip.is_ipv4() != (family == b'4') {
                    return Err(malformed("address does not match its family"));
                }
                ClientAddress::Inet(ip, port)
            }
        }
        _ => return Err(malformed("unknown address family")),
    };
    Ok(Command::Connect { hostname, address })
}

/// Appends one packet: length, code, data.
fn packet(out: &mut Vec<u8>, code: u8, data: &[&[u8]]) {
    let len = 1 + data.iter().map(|d| d.len()).sum::<usize>();
    // Our packets are a few hundred bytes at most (replies and one header we compose).
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(code);
    for d in data {
        out.extend_from_slice(d);
    }
}

/// Appends the negotiation reply: version, actions, protocol flags, then the macro lists
/// (stage, space-separated names) when the MTA allows us to set them.
pub(crate) fn write_negotiate(
    out: &mut Vec<u8>,
    version: u32,
    actions: u32,
    protocol: u32,
    macros: &[(u32, &str)],
) {
    let mut data = Vec::with_capacity(12 + macros.len() * 24);
    data.extend_from_slice(&version.to_be_bytes());
    data.extend_from_slice(&actions.to_be_bytes());
    data.extend_from_slice(&protocol.to_be_bytes());
    for (stage, names) in macros {
        data.extend_from_slice(&stage.to_be_bytes());
        data.extend_from_slice(names.as_bytes());
        data.push(0);
    }
    packet(out, cmd::OPTNEG, &[&data]);
}

/// Appends a reply without data (`CONTINUE`, `ACCEPT`, ...).
pub(crate) fn write_simple(out: &mut Vec<u8>, code: u8) {
    packet(out, code, &[]);
}

/// Appends an SMTP reply (`451 4.7.1 text`). NUL bytes in `text` would end it early: they are
/// dropped (our texts are constants).
pub(crate) fn write_reply_code(out: &mut Vec<u8>, text: &str) {
    let clean: Vec<u8> = text.bytes().filter(|&b| b != 0).collect();
    packet(out, reply::REPLYCODE, &[&clean, b"\0"]);
}

/// Appends an add-header request.
pub(crate) fn write_add_header(out: &mut Vec<u8>, name: &str, value: &str) {
    let name: Vec<u8> = name.bytes().filter(|&b| b != 0).collect();
    let value: Vec<u8> = value.bytes().filter(|&b| b != 0).collect();
    packet(out, reply::ADDHEADER, &[&name, b"\0", &value, b"\0"]);
}

#[path = "protocol_fields.rs"]
mod fields;
#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
