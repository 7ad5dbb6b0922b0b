//! Client facts for the filter (SPEC §5): the client address, its verified host name and whether
//! it authenticated, from the environment tcpserver/qmail-smtpd leave behind or, for Plesk's bare
//! handler environment, from the topmost `Received:` header our own MTA wrote.

use std::net::IpAddr;

use crate::client;

/// What the filter knows about the SMTP client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFacts {
    /// Client address; `None` means a local injection.
    pub ip: Option<IpAddr>,
    /// Verified host name, if any (`unknown` and empty values are `None`).
    pub name: Option<String>,
    /// Authenticated or relay client.
    pub authenticated: bool,
    /// Where the facts came from, for log lines.
    pub source: FactSource,
}

/// Where the client facts were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FactSource {
    /// `TCPREMOTEIP`/`TCPREMOTEHOST` in the environment.
    Environment,
    /// The topmost `Received:` header with a `from` clause.
    ReceivedHeader,
    /// Nothing found: treated as a local injection.
    #[default]
    None,
}

/// Facts parsed from one `Received:` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceivedFacts {
    /// The client address in the header.
    pub ip: Option<IpAddr>,
    /// The verified host name in the header (`unknown` = none).
    pub name: Option<String>,
    /// `with ESMTPA`/`ESMTPSA` (RFC 3848).
    pub authenticated: bool,
}

/// True when the environment says the client is trusted (SPEC §5): `RELAYCLIENT` set, even
/// empty (tcprules write `RELAYCLIENT=""`), or `SMTPAUTHUSER`/`AUTHUSER` non-empty.
pub fn env_authenticated(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env("RELAYCLIENT").is_some()
        || env("SMTPAUTHUSER").is_some_and(|v| !v.is_empty())
        || env("AUTHUSER").is_some_and(|v| !v.is_empty())
}

/// The client facts from the environment alone (qmail-queue mode), or `None` when
/// `TCPREMOTEIP` is missing or not an address.
pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<ClientFacts> {
    let ip = client::address(env("TCPREMOTEIP")?.trim())?;
    Some(ClientFacts {
        ip: Some(ip),
        name: env("TCPREMOTEHOST").and_then(|name| client::verified_name(&name)),
        authenticated: env_authenticated(env),
        source: FactSource::Environment,
    })
}

/// Handler mode: the environment first, else the topmost `Received:` header of `head` (the
/// message's header block), else no client address (a local injection).
pub fn from_env_or_headers(env: &dyn Fn(&str) -> Option<String>, head: &[u8]) -> ClientFacts {
    if let Some(facts) = from_env(env) {
        return facts;
    }
    let env_auth = env_authenticated(env);
    match topmost_received(head) {
        Some(received) => ClientFacts {
            ip: received.ip,
            name: received.name,
            authenticated: env_auth || received.authenticated,
            source: FactSource::ReceivedHeader,
        },
        None => ClientFacts {
            authenticated: env_auth,
            ..ClientFacts::default()
        },
    }
}

/// The header block of a message: everything before the first empty line (LF or CRLF).
pub fn header_block(message: &[u8]) -> &[u8] {
    let mut start = 0;
    while start < message.len() {
        let end = message[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(message.len(), |i| start + i);
        let line = &message[start..end];
        if line.is_empty() || line == b"\r" {
            return &message[..start];
        }
        start = end + 1;
    }
    message
}

/// Parses the topmost `Received:` header that has a `from` clause. Headers without one (qmail's
/// own `Received: (qmail 123 invoked from network)`) say nothing about the client and are skipped.
pub fn topmost_received(head: &[u8]) -> Option<ReceivedFacts> {
    let text = String::from_utf8_lossy(head);
    unfolded_headers(&text)
        .into_iter()
        .filter_map(|(name, value)| name.eq_ignore_ascii_case("received").then_some(value))
        .find_map(|value| parse_received(&value))
}

/// Splits a header block into (name, unfolded value) pairs.
fn unfolded_headers(text: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    headers
}

/// Parses one `Received:` header value in qmail-smtpd's form
/// `from <host> [(HELO <helo>)] ([<info>@]<ip>)` or Postfix's `from <helo> (<host> [<ip>])`.
/// `None` when it has no `from` clause or no client address.
pub fn parse_received(value: &str) -> Option<ReceivedFacts> {
    let value = value.trim();
    let rest = strip_prefix_ignore_case(value, "from ")?;
    let authenticated = with_protocol(value).is_some_and(|proto| {
        let proto = proto.to_ascii_uppercase();
        proto.starts_with("ESMTPA") || proto.starts_with("ESMTPSA")
    });
    let (first_word, groups) = split_from_clause(rest);
    let mut ip = None;
    let mut name = None;
    for group in groups {
        let group = group.trim();
        // Postfix: `host [ip]`, possibly `[IPv6:...]`.
        if let (Some(open), Some(close)) = (group.find('['), group.rfind(']'))
            && open < close
        {
            let inside = &group[open + 1..close];
            if let Some(addr) = client::address(inside) {
                let before = group[..open].trim();
                ip = Some(addr);
                // `remoteinfo@[ip]` is qmail's form: the host is then the word after `from`.
                name = if before.ends_with('@') {
                    client::verified_name(first_word)
                } else {
                    client::verified_name(before)
                };
                break;
            }
        }
        if strip_prefix_ignore_case(group, "HELO ").is_some() {
            continue;
        }
        // qmail-smtpd: `(ip)` or `(remoteinfo@ip)`; the host is the word after `from`.
        let candidate = group.rsplit_once('@').map_or(group, |(_, ip)| ip);
        if let Some(addr) = client::address(candidate) {
            ip = Some(addr);
            name = client::verified_name(first_word);
            break;
        }
    }
    let ip = ip?;
    Some(ReceivedFacts {
        ip: Some(ip),
        name,
        authenticated,
    })
}

/// The first word of a `from` clause and an iterator over the parenthesised groups after it
/// (nested parentheses kept inside their group), stopping at the first ` by `.
fn split_from_clause(rest: &str) -> (&str, std::vec::IntoIter<&str>) {
    let first_end = rest.find([' ', '(', '\t']).unwrap_or(rest.len());
    let first_word = &rest[..first_end];
    let mut groups = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    let after = &rest[first_end..];
    for (i, c) in after.char_indices() {
        match c {
            '(' => {
                if depth == 0 {
                    start = i + 1;
                }
                depth += 1;
            }
            ')' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    groups.push(&after[start..i]);
                }
            }
            _ if depth == 0 && after[i..].starts_with(" by ") => break,
            _ => {}
        }
    }
    (first_word, groups.into_iter())
}

/// The protocol word after ` with ` in a `Received:` value, if any.
fn with_protocol(value: &str) -> Option<&str> {
    let lower = value.to_ascii_lowercase();
    let at = lower.find(" with ")?;
    value[at + 6..].split_whitespace().next()
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn qmail_smtpd_forms() {
        let facts = parse_received(
            "from mx1.example.net (HELO mail.example.net) (198.51.100.7) by h with SMTP; x",
        )
        .unwrap();
        assert_eq!(facts.ip, ip("198.51.100.7"));
        assert_eq!(facts.name.as_deref(), Some("mx1.example.net"));
        assert!(!facts.authenticated);
        let facts = parse_received("from unknown (HELO x) (198.51.100.8) by h with SMTP").unwrap();
        assert_eq!(facts.ip, ip("198.51.100.8"));
        assert_eq!(facts.name, None);
        let facts = parse_received("from mx.example.org (198.51.100.9) by h with SMTP").unwrap();
        assert_eq!(facts.name.as_deref(), Some("mx.example.org"));
        let facts =
            parse_received("from unknown (HELO pc) (bob@[203.0.113.4]) by h with ESMTPSA").unwrap();
        assert_eq!(facts.ip, ip("203.0.113.4"));
        assert!(facts.authenticated);
    }

    #[test]
    fn postfix_forms() {
        let facts = parse_received(
            "from helo.example (mx.example.com [192.0.2.5]) (using TLSv1.3) by mx with ESMTPS id X",
        )
        .unwrap();
        assert_eq!(facts.ip, ip("192.0.2.5"));
        assert_eq!(facts.name.as_deref(), Some("mx.example.com"));
        assert!(!facts.authenticated);
        let facts =
            parse_received("from pc (unknown [IPv6:2001:db8::1]) by mx with ESMTPA id Y").unwrap();
        assert_eq!(facts.ip, ip("2001:db8::1"));
        assert_eq!(facts.name, None);
        assert!(facts.authenticated);
    }

    #[test]
    fn headers_without_client_are_skipped() {
        let head = b"Received: (qmail 123 invoked from network); 1 Jan 2026\n\
Received: from mx.example.com (HELO mx) (192.0.2.1)\n  by h with SMTP; 1 Jan 2026\n\
Received: from older.example (older.example [192.0.2.99]) by x\n";
        let facts = topmost_received(head).unwrap();
        assert_eq!(facts.ip, ip("192.0.2.1"));
        assert_eq!(facts.name.as_deref(), Some("mx.example.com"));
        assert_eq!(parse_received("by local with SMTP"), None);
        assert_eq!(parse_received("from nothing here"), None);
    }

    #[test]
    fn header_block_stops_at_blank_line() {
        assert_eq!(header_block(b"A: 1\nB: 2\n\nbody\n"), b"A: 1\nB: 2\n");
        assert_eq!(header_block(b"A: 1\r\n\r\nbody"), b"A: 1\r\n");
        assert_eq!(header_block(b"A: 1\n"), b"A: 1\n");
        assert_eq!(header_block(b""), b"");
    }

    #[test]
    fn relayclient_counts_even_when_empty() {
        let env = |name: &str| (name == "RELAYCLIENT").then(String::new);
        assert!(env_authenticated(&env));
        let env = |name: &str| (name == "SMTPAUTHUSER").then(String::new);
        assert!(!env_authenticated(&env));
    }
}
