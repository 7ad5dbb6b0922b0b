//! The Postfix policy delegation protocol (DESIGN.md §6): `name=value` lines, a blank line ends a
//! request, the reply is `action=...` plus a blank line, many requests per connection.
//!
//! Reading is bounded: a line over [`MAX_LINE`] bytes, a request over [`MAX_REQUEST`] bytes or a
//! line that is not an attribute is a [`ProtocolError`], and the caller closes the connection.

use std::borrow::Cow;

use thiserror::Error;

use crate::decision::Verdict;
use crate::engine::{Message, MessageOutcome};

/// Longest accepted line, without its newline (DESIGN.md §6).
pub const MAX_LINE: usize = 8 * 1024;
/// Largest accepted request, all its lines and newlines together (DESIGN.md §6).
pub const MAX_REQUEST: usize = 64 * 1024;

/// The reply for a deferred recipient.
pub const REPLY_DEFER: &str = "DEFER_IF_PERMIT 4.7.1 Service unavailable - try again later";
/// The reply for a rejected recipient.
pub const REPLY_REJECT: &str = "REJECT 5.7.1 Command rejected";
/// The reply that lets other restrictions decide.
pub const REPLY_DUNNO: &str = "DUNNO";

/// Why a connection must be closed.
#[derive(Debug, Error)]
pub enum ProtocolError {
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
pub struct Attributes {
    text: String,
    /// Per attribute, in arrival order: where its name starts, where its value starts (the
    /// name ends just before) and where its value ends.
    spans: Vec<(usize, usize, usize)>,
}

impl Attributes {
    /// The value of an attribute, if present (the last one given wins).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.spans
            .iter()
            .rev()
            .find(|(start, value, _)| self.text.get(*start..*value) == Some(name))
            .and_then(|(_, value, end)| self.text.get(*value..*end))
    }

    /// Sets an attribute (a later line with the same name wins).
    pub fn insert(&mut self, name: &str, value: &str) {
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
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Heap bytes held.
    fn capacity(&self) -> usize {
        self.text.capacity() + self.spans.capacity() * std::mem::size_of::<(usize, usize, usize)>()
    }
}

/// Splits the bytes of a connection into requests, within the protocol's limits.
#[derive(Debug, Default)]
pub struct RequestReader {
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
    pub fn new() -> RequestReader {
        RequestReader::default()
    }

    /// True when part of a request has arrived but not its end.
    pub fn in_progress(&self) -> bool {
        self.started || self.pos < self.buf.len()
    }

    /// Bytes held for the request in progress: its lines already consumed plus the bytes not
    /// yet split into lines (0 between requests).
    pub fn partial_bytes(&self) -> usize {
        self.request_bytes + (self.buf.len() - self.pos)
    }

    /// Heap bytes the reader holds (buffer and attributes of the request in progress).
    pub fn capacity(&self) -> usize {
        self.buf.capacity() + self.current.capacity()
    }

    /// Appends bytes received from a non-blocking socket; [`RequestReader::take_request`] then
    /// returns the complete requests among them.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete request already buffered, or `None` until more bytes arrive. Errors
    /// when the buffered bytes break the protocol's limits.
    pub fn take_request(&mut self) -> Result<Option<Attributes>, ProtocolError> {
        self.take_buffered()
    }

    /// The request cut off by the client's end of stream, answered as if its blank line had
    /// come: Exim's `${readsocket}` writes a request, half-closes and reads the answer until the
    /// server closes, and an Exim configuration may well leave out the final blank line (or even
    /// the last newline). Call once, after the last [`RequestReader::take_request`]. A last
    /// line that is not an attribute is [`ProtocolError::Truncated`]: the client really was cut
    /// off.
    pub fn finish(&mut self) -> Result<Option<Attributes>, ProtocolError> {
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
pub enum Parsed {
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
pub fn interpret(attrs: &Attributes, now: i64, allow_test_time: bool) -> Parsed {
    if attrs.is_empty() {
        return Parsed::Empty;
    }
    match attrs.get("request") {
        Some("smtpd_access_policy") => {}
        Some(other) => {
            return Parsed::Ignore(format!(
                "request={} is not smtpd_access_policy",
                clip(other)
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
        return Parsed::Ignore(format!("unparseable client_address={}", clip(address)));
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

/// A client-supplied value as a log line shows it: bounded and escaped exactly as the filter
/// and the CLI show it ([`crate::escape::shown`]), so a long sender has the same key in every
/// log and no value can forge a field or a line.
pub fn clip(value: &str) -> String {
    crate::escape::shown(value)
}

/// The action for a decided recipient (DESIGN.md §6). `header_host` and `date` fill the
/// `X-Greylist` header on a triplet's first pass.
pub fn action(outcome: &MessageOutcome, header_host: &str, date: &str) -> String {
    match outcome.verdict {
        Verdict::Defer => REPLY_DEFER.to_string(),
        Verdict::Reject => REPLY_REJECT.to_string(),
        Verdict::Pass => match outcome.recipients.iter().find_map(|r| r.decision.delay) {
            Some(delay) => format!(
                "PREPEND X-Greylist: delayed {delay} seconds by grey_listing at {header_host}; {date}"
            ),
            None => REPLY_DUNNO.to_string(),
        },
    }
}

/// The bytes sent back for an action: `action=<action>`, then a blank line.
pub fn reply(action: &str) -> Vec<u8> {
    format!("action={action}\n\n").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in small pieces (as a socket would deliver it), then reports EOF.
    fn read_all(input: &[u8]) -> Vec<Result<Option<Attributes>, String>> {
        let mut reader = RequestReader::new();
        let mut out = Vec::new();
        for piece in input.chunks(7) {
            reader.feed(piece);
            loop {
                match reader.take_request() {
                    Ok(Some(r)) => out.push(Ok(Some(r))),
                    Ok(None) => break,
                    Err(e) => {
                        out.push(Err(e.to_string()));
                        return out;
                    }
                }
            }
        }
        out.push(reader.finish().map_err(|e| e.to_string()));
        out
    }

    // DESIGN.md §6: many requests per connection, blank line ends each.
    #[test]
    fn reads_several_requests() {
        let got = read_all(b"request=smtpd_access_policy\nsender=a@b\n\nrequest=x\n\n");
        assert_eq!(got.len(), 3);
        let first = got[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(first.get("sender"), Some("a@b"));
        assert_eq!(
            got[1].as_ref().unwrap().as_ref().unwrap().get("request"),
            Some("x")
        );
        assert_eq!(got[2], Ok(None));
    }

    // DESIGN.md §6: a line over 8 KiB closes the connection.
    #[test]
    fn long_line_is_refused_without_newline() {
        let mut input = b"request=".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
        let got = read_all(&input);
        assert_eq!(
            got.last().unwrap().as_ref().unwrap_err(),
            "line longer than 8192 bytes"
        );
    }

    // DESIGN.md §6: exactly 8 KiB is still fine.
    #[test]
    fn line_of_exactly_the_limit_is_accepted() {
        let mut input = b"x=".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE - 2));
        input.extend(b"\n\n");
        let got = read_all(&input);
        assert!(got[0].is_ok());
    }

    /// Feeds `pieces` one by one; the requests read, or the first error.
    fn read_pieces(pieces: &[&[u8]]) -> Result<Vec<Attributes>, String> {
        let mut reader = RequestReader::new();
        let mut out = Vec::new();
        for piece in pieces {
            reader.feed(piece);
            while let Some(request) = reader.take_request().map_err(|e| e.to_string())? {
                out.push(request);
            }
        }
        Ok(out)
    }

    // The line bound counts the line without its CRLF, even when the CR arrives in one segment
    // and the LF in the next.
    #[test]
    fn crlf_split_across_segments_does_not_count_against_the_line() {
        let mut line = b"x=".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_LINE - 2));
        line.push(b'\r');
        let got = read_pieces(&[&line, b"\n", b"\r\n"]).expect("8192-byte line accepted");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].get("x").map(str::len), Some(MAX_LINE - 2));
        let mut longer = b"x=".to_vec();
        longer.extend(std::iter::repeat_n(b'a', MAX_LINE - 1));
        longer.push(b'\r');
        assert_eq!(
            read_pieces(&[&longer, b"\n", b"\r\n"]).unwrap_err(),
            "line longer than 8192 bytes"
        );
        // A CR is not a free byte in the middle of a line.
        let mut with_cr = b"x=".to_vec();
        with_cr.extend(std::iter::repeat_n(b'a', MAX_LINE - 2));
        with_cr.extend(b"\ra");
        assert_eq!(
            read_pieces(&[&with_cr]).unwrap_err(),
            "line longer than 8192 bytes"
        );
    }

    // A complete request leaves no buffer behind when nothing of the next one has arrived.
    #[test]
    fn buffers_are_released_after_each_request() {
        let mut reader = RequestReader::new();
        for i in 0..16 {
            reader.feed(format!("a{i}=").as_bytes());
            reader.feed(&[b'v'; 4000]);
            reader.feed(b"\n");
            assert!(reader.take_request().expect("valid").is_none());
        }
        assert!(reader.partial_bytes() > 16 * 4000);
        assert!(reader.capacity() > 16 * 4000);
        reader.feed(b"\n");
        assert!(reader.take_request().expect("valid").is_some());
        assert_eq!(reader.partial_bytes(), 0);
        assert_eq!(reader.capacity(), 0);
        assert!(!reader.in_progress());
        // With the next request already started, its bytes stay.
        reader.feed(b"a=b\n\nc=");
        assert!(reader.take_request().expect("valid").is_some());
        assert_eq!(reader.partial_bytes(), 2);
        assert!(reader.in_progress());
    }

    // DESIGN.md §6: a request over 64 KiB closes the connection.
    #[test]
    fn large_request_is_refused() {
        let mut input = Vec::new();
        for i in 0..20 {
            input.extend(format!("a{i}=").bytes());
            input.extend(std::iter::repeat_n(b'v', 4000));
            input.push(b'\n');
        }
        let got = read_all(&input);
        assert_eq!(
            got.last().unwrap().as_ref().unwrap_err(),
            "request larger than 65536 bytes"
        );
    }

    // DESIGN.md §6: garbage closes the connection.
    #[test]
    fn garbage_is_refused() {
        for input in [
            &b"hello world\n\n"[..],
            b"\xff\xfe=\x00\n",
            b"=x\n",
            b"a\x1b=b\n",
        ] {
            let got = read_all(input);
            assert!(
                got[0].as_ref().unwrap_err().starts_with("garbage"),
                "{input:?}"
            );
        }
    }

    // Odd bytes in a value are the client's mail, not protocol garbage: kept (invalid UTF-8
    // and NUL as U+FFFD), so the request is decided like any other.
    #[test]
    fn odd_bytes_in_values_are_kept() {
        let got = read_all(b"a=\xff\xfe@x\nb=\x1b[31m\xc2\x85\nc=b\x00c\tx\n\n");
        let request = got[0].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(request.get("a"), Some("\u{fffd}\u{fffd}@x"));
        assert_eq!(request.get("b"), Some("\u{1b}[31m\u{85}"));
        assert_eq!(request.get("c"), Some("b\u{fffd}c\tx"));
    }

    // A disconnect inside a line that cannot be an attribute is reported, a clean one is not.
    #[test]
    fn truncated_request_is_reported() {
        let got = read_all(b"request=smtpd_access_policy\nsend");
        assert_eq!(
            got[0].as_ref().unwrap_err(),
            "client disconnected in the middle of a request"
        );
    }

    // Exim's `${readsocket}` half-closes after its request: EOF stands in for the blank line,
    // also for a last line without its newline; nothing buffered gives nothing.
    #[test]
    fn end_of_stream_completes_the_request() {
        for input in [
            &b"request=smtpd_access_policy\nsender=a=b@x\n"[..],
            b"request=smtpd_access_policy\nsender=a=b@x",
            b"request=smtpd_access_policy\r\nsender=a=b@x\r",
        ] {
            let mut reader = RequestReader::new();
            reader.feed(input);
            assert!(matches!(reader.take_request(), Ok(None)), "{input:?}");
            let request = reader.finish().unwrap().unwrap();
            assert_eq!(request.get("request"), Some("smtpd_access_policy"));
            assert_eq!(request.get("sender"), Some("a=b@x"), "{input:?}");
            assert!(!reader.in_progress());
            assert!(matches!(reader.finish(), Ok(None)));
        }
        let mut reader = RequestReader::new();
        reader.feed(b"request=smtpd_access_policy\n\n");
        assert!(reader.take_request().unwrap().is_some());
        assert!(matches!(reader.finish(), Ok(None)));
    }

    // A last line that is no attribute means the client was really cut off.
    #[test]
    fn end_of_stream_inside_garbage_is_truncated() {
        let mut reader = RequestReader::new();
        reader.feed(b"request=smtpd_access_policy\nsend");
        assert!(matches!(reader.take_request(), Ok(None)));
        assert!(matches!(reader.finish(), Err(ProtocolError::Truncated)));
    }

    fn attrs(pairs: &[(&str, &str)]) -> Attributes {
        let mut a = Attributes::default();
        for (n, v) in pairs {
            a.insert(n, v);
        }
        a
    }

    // DESIGN.md §6: not smtpd_access_policy or missing attributes → DUNNO (Ignore).
    #[test]
    fn interpret_ignores_incomplete_requests() {
        assert!(matches!(interpret(&attrs(&[]), 0, false), Parsed::Empty));
        assert!(matches!(
            interpret(&attrs(&[("request", "junk")]), 0, false),
            Parsed::Ignore(_)
        ));
        let no_rcpt = attrs(&[
            ("request", "smtpd_access_policy"),
            ("client_address", "1.2.3.4"),
        ]);
        assert!(matches!(interpret(&no_rcpt, 0, false), Parsed::Ignore(_)));
        let bad_ip = attrs(&[
            ("request", "smtpd_access_policy"),
            ("client_address", "1.2.3.400"),
            ("recipient", "u@x"),
        ]);
        assert!(
            matches!(interpret(&bad_ip, 0, false), Parsed::Ignore(m) if m.contains("1.2.3.400"))
        );
    }

    // DESIGN.md §4/§6: client_name unknown = none; sasl_username = authenticated; test time gated.
    #[test]
    fn interpret_builds_the_message() {
        let a = attrs(&[
            ("request", "smtpd_access_policy"),
            ("client_address", "2001:db8::1"),
            ("client_name", "unknown"),
            ("sender", "s@x"),
            ("recipient", "u@y"),
            ("sasl_username", "bob"),
            ("policy_test_time", "1000"),
        ]);
        let Parsed::Check { message, now } = interpret(&a, 5, false) else {
            panic!("not a check");
        };
        assert_eq!(now, 5);
        assert_eq!(message.client_name, None);
        assert!(message.authenticated);
        assert_eq!(message.recipients, vec!["u@y".to_string()]);
        assert_eq!(message.client_ip, "2001:db8::1".parse().ok());
        let Parsed::Check { now, .. } = interpret(&a, 5, true) else {
            panic!("not a check");
        };
        assert_eq!(now, 1000);
    }

    #[test]
    fn client_address_forms() {
        assert_eq!(
            crate::client::address("[192.0.2.1]"),
            "192.0.2.1".parse().ok()
        );
        assert_eq!(crate::client::address("IPv6:::1"), "::1".parse().ok());
        assert_eq!(crate::client::address("not-an-ip"), None);
    }
}
