//! The Postfix policy delegation protocol (DESIGN.md §6): `name=value` lines, a blank line ends a
//! request, the reply is `action=...` plus a blank line, many requests per connection.
//!
//! Reading is bounded: a line over [`MAX_LINE`] bytes, a request over [`MAX_REQUEST`] bytes or a
//! line that is not an attribute is a [`ProtocolError`], and the caller closes the connection.

use std::borrow::Cow;

use thiserror::Error;

use crate::engine::Message;

/// Longest accepted line, without its newline (DESIGN.md §6).
pub(crate) const MAX_LINE: usize = 8 * 1024;
/// Largest accepted request, all its lines and newlines together (DESIGN.md §6).
pub(crate) const MAX_REQUEST: usize = 64 * 1024;

/// The reply for a deferred recipient.
pub(crate) const REPLY_DEFER: &str = "DEFER_IF_PERMIT 4.7.1 Service unavailable - try again later";
/// The reply for a rejected recipient.
pub(crate) const REPLY_REJECT: &str = "REJECT 5.7.1 Command rejected";
/// The reply that lets other restrictions decide.
pub(crate) const REPLY_DUNNO: &str = "DUNNO";

/// Why a connection must be closed.
#[derive(Debug, Error)]
pub(crate) enum ProtocolError {
    /// A line longer than [`MAX_LINE`].
    #[error("line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// A request larger than [`MAX_REQUEST`].
    #[error("request larger than {MAX_REQUEST} bytes")]
    RequestTooLarge,
    /// A line that is not a `name=value` attribute.
    #[error("garbage line ({0})")]
    Garbage(&'static str),
    /// The client closed the connection in the middle of a request.
    #[error("client disconnected in the middle of a request")]
    Truncated,
}

/// One request's attributes; a repeated name keeps its last value.
///
/// Stored as one text buffer plus offsets (two allocations per request rather than two per
/// attribute, and no hashing): a request has a dozen attributes and the server reads a few.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attributes {
    text: String,
    /// Per attribute, in arrival order: where its name starts, where its value starts (the
    /// name ends just before) and where its value ends.
    spans: Vec<(usize, usize, usize)>,
}

impl Attributes {
    /// The value of an attribute, if present (the last one given wins).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.spans
            .iter()
            .rev()
            .find(|(start, value, _)| self.text.get(*start..*value) == Some(name))
            .and_then(|(_, value, end)| self.text.get(*value..*end))
    }

    /// Sets an attribute (a later line with the same name wins).
    pub(crate) fn insert(&mut self, name: &str, value: &str) {
        if self.spans.is_empty() {
            // Room for a typical Postfix request at once, instead of growing step by step.
            self.text.reserve(512);
            self.spans.reserve(24);
        }
        let start = self.text.len();
        self.text.push_str(name);
        let value_start = self.text.len();
        self.text.push_str(value);
        self.spans.push((start, value_start, self.text.len()));
    }

    /// True when no attribute was given.
    pub(crate) fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Heap bytes held (the tests check that a request's buffers are released).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.text.capacity() + self.spans.capacity() * std::mem::size_of::<(usize, usize, usize)>()
    }
}

/// Splits the bytes of a connection into requests, within the protocol's limits.
#[derive(Debug, Default)]
pub(crate) struct RequestReader {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte in `buf`.
    pos: usize,
    /// Attributes of the request being read.
    current: Attributes,
    /// Bytes of the request being read, consumed lines included.
    request_bytes: usize,
    /// Whether any line of the current request was consumed.
    started: bool,
}

impl RequestReader {
    /// A reader with an empty buffer.
    pub(crate) fn new() -> RequestReader {
        RequestReader::default()
    }

    /// True when part of a request has arrived but not its end.
    pub(crate) fn in_progress(&self) -> bool {
        self.started || self.pos < self.buf.len()
    }

    /// Bytes held for the request in progress: its lines already consumed plus the bytes not
    /// yet split into lines (0 between requests).
    pub(crate) fn partial_bytes(&self) -> usize {
        self.request_bytes + (self.buf.len() - self.pos)
    }

    /// Heap bytes the reader holds (buffer and attributes of the request in progress); the
    /// tests check that they are released after each request.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity() + self.current.capacity()
    }

    /// Appends bytes received from a non-blocking socket; [`RequestReader::take_request`] then
    /// returns the complete requests among them.
    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete request already buffered, or `None` until more bytes arrive. Errors
    /// when the buffered bytes break the protocol's limits.
    pub(crate) fn take_request(&mut self) -> Result<Option<Attributes>, ProtocolError> {
        self.take_buffered()
    }

    /// The request cut off by the client's end of stream, answered as if its blank line had
    /// come: Exim's `${readsocket}` writes a request, half-closes and reads the answer until the
    /// server closes, and an Exim configuration may well leave out the final blank line (or even
    /// the last newline). Call once, after the last [`RequestReader::take_request`]. A last
    /// line that is not an attribute is [`ProtocolError::Truncated`]: the client really was cut
    /// off.
    pub(crate) fn finish(&mut self) -> Result<Option<Attributes>, ProtocolError> {
        // Nothing can follow: the reader ends empty whatever the outcome. What stays in the
        // buffer has no newline; its size was checked when it arrived.
        let buf = std::mem::take(&mut self.buf);
        let rest = buf.get(self.pos..).unwrap_or_default();
        let line = rest.strip_suffix(b"\r").unwrap_or(rest);
        let mut current = std::mem::take(&mut self.current);
        let started = std::mem::take(&mut self.started) || !line.is_empty();
        self.pos = 0;
        self.request_bytes = 0;
        if !line.is_empty() {
            let (name, value) = parse_attribute(line).map_err(|_| ProtocolError::Truncated)?;
            current.insert(name, &value);
        }
        Ok(started.then_some(current))
    }

    /// Consumes complete lines from the buffer; returns a request when its blank line is there.
    fn take_buffered(&mut self) -> Result<Option<Attributes>, ProtocolError> {
        loop {
            let rest = &self.buf[self.pos..];
            let Some(newline) = rest.iter().position(|&b| b == b'\n') else {
                // The bound is on the line without its CRLF: a CR may arrive before its LF.
                let line_len = rest.len() - usize::from(rest.last() == Some(&b'\r'));
                if line_len > MAX_LINE {
                    return Err(ProtocolError::LineTooLong);
                }
                if self.request_bytes + rest.len() > MAX_REQUEST {
                    return Err(ProtocolError::RequestTooLarge);
                }
                return Ok(None);
            };
            let mut line = &rest[..newline];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            if line.len() > MAX_LINE {
                return Err(ProtocolError::LineTooLong);
            }
            self.request_bytes += newline + 1;
            if self.request_bytes > MAX_REQUEST {
                return Err(ProtocolError::RequestTooLarge);
            }
            if line.is_empty() {
                self.pos += newline + 1;
                self.request_bytes = 0;
                self.started = false;
                if self.pos == self.buf.len() {
                    // Nothing of the next request yet: give the buffer back, so thousands of
                    // idle connections do not each keep the capacity their largest request grew.
                    self.buf = Vec::new();
                    self.pos = 0;
                }
                return Ok(Some(std::mem::take(&mut self.current)));
            }
            let (name, value) = parse_attribute(line)?;
            self.current.insert(name, &value);
            self.started = true;
            self.pos += newline + 1;
        }
    }
}

/// Splits `name=value`, refusing what is not an attribute line: no `=`, or an empty or odd
/// name. The value is taken as it came, whatever its bytes: a sender with invalid UTF-8, an ESC
/// or a C1 control is the client's odd mail, not a broken policy client, and closing the
/// connection would make Postfix defer the mail for us. As in the filter, a byte that is not
/// part of a UTF-8 character (and a NUL, which PostgreSQL text cannot hold) becomes U+FFFD, so
/// such a sender is greylisted like any other; log lines escape every control character.
fn parse_attribute(line: &[u8]) -> Result<(&str, Cow<'_, str>), ProtocolError> {
    let equals = line
        .iter()
        .position(|&b| b == b'=')
        .ok_or(ProtocolError::Garbage("no '=' in line"))?;
    let (name, value) = (&line[..equals], &line[equals + 1..]);
    let name_ok = !name.is_empty()
        && name
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !name_ok {
        return Err(ProtocolError::Garbage("bad attribute name"));
    }
    let name =
        std::str::from_utf8(name).map_err(|_| ProtocolError::Garbage("bad attribute name"))?;
    let value = match String::from_utf8_lossy(value) {
        Cow::Borrowed(v) if !v.contains('\0') => Cow::Borrowed(v),
        other => Cow::Owned(other.replace('\0', "\u{fffd}")),
    };
    Ok((name, value))
}

/// What to do with one request before the decision.
#[derive(Debug, Clone)]
pub(crate) enum Parsed {
    /// A recipient to decide: the message and the decision time.
    Check {
        /// The facts about the message and this one recipient.
        message: Message,
        /// Unix seconds to decide at.
        now: i64,
    },
    /// Answer `DUNNO` at once; the text says why (for the log).
    Ignore(String),
    /// A request without any attribute (a lone empty line): answer `DUNNO`. Postfix never
    /// sends one, so only a broken or hostile client does; the connection logs it once and
    /// closes after too many in a row, instead of one log line per newline.
    Empty,
}

/// Turns a request into a message to decide. `now` is the server clock; `policy_test_time`
/// replaces it only when `allow_test_time` is set (DESIGN.md §4).
pub(crate) fn interpret(attrs: &Attributes, now: i64, allow_test_time: bool) -> Parsed {
    if attrs.is_empty() {
        return Parsed::Empty;
    }
    match attrs.get("request") {
        Some("smtpd_access_policy") => {}
        Some(other) => {
            return Parsed::Ignore(format!(
                "request={} is not smtpd_access_policy",
                crate::escape::shown(other)
            ));
        }
        None => return Parsed::Ignore("request attribute missing".to_string()),
    }
    let Some(address) = attrs.get("client_address").filter(|a| !a.is_empty()) else {
        return Parsed::Ignore("client_address missing".to_string());
    };
    let Some(recipient) = attrs.get("recipient").filter(|r| !r.is_empty()) else {
        return Parsed::Ignore("recipient missing".to_string());
    };
    let Some(client_ip) = crate::client::address(address) else {
        return Parsed::Ignore(format!(
            "unparseable client_address={}",
            crate::escape::shown(address)
        ));
    };
    let client_name = attrs
        .get("client_name")
        .and_then(crate::client::verified_name);
    let authenticated = attrs.get("sasl_username").is_some_and(|u| !u.is_empty());
    let now = if allow_test_time {
        attrs
            .get("policy_test_time")
            .and_then(|t| t.trim().parse::<i64>().ok())
            .unwrap_or(now)
    } else {
        now
    };
    Parsed::Check {
        message: Message {
            client_ip: Some(client_ip),
            client_name,
            sender: attrs.get("sender").unwrap_or("").to_string(),
            recipients: vec![recipient.to_string()],
            authenticated,
            ..Message::default()
        },
        now,
    }
}

#[cfg(test)]
#[path = "protocol_tests.rs"]
mod tests;
