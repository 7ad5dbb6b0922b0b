//! Tests of the policy protocol reader and the request interpretation.

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
    assert!(matches!(interpret(&bad_ip, 0, false), Parsed::Ignore(m) if m.contains("1.2.3.400")));
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
