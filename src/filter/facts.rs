//! Client facts for the filter (DESIGN.md §5): the client address, its verified host name and whether
//! it authenticated, from the environment tcpserver/qmail-smtpd leave behind or, for Plesk's bare
//! handler environment, from the topmost `Received:` header our own MTA wrote.

use std::net::{IpAddr, Ipv4Addr};

use crate::client;

/// What the filter knows about the SMTP client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ClientFacts {
    /// Client address; `None` means a local injection.
    pub ip: Option<IpAddr>,
    /// Verified host name, if any (`unknown` and empty values are `None`).
    pub name: Option<String>,
    /// Authenticated or relay client.
    pub authenticated: bool,
    /// Where the facts came from, for log lines.
    pub source: FactSource,
    /// The name is qmail-smtpd's PTR name, which nobody forward-confirmed: in `suspicious` mode it
    /// counts only after the filter's own forward lookup returns the client address.
    pub name_unconfirmed: bool,
}

/// Where the client facts were found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum FactSource {
    /// `TCPREMOTEIP`/`TCPREMOTEHOST` in the environment.
    Environment,
    /// The topmost `Received:` header with a `from` clause.
    ReceivedHeader,
    /// The topmost `Received:` header has a `from` clause in neither known form: the client is
    /// greylisted as unknown, under the unspecified address `0.0.0.0`.
    UnreadableHeader,
    /// Nothing found: treated as a local injection.
    #[default]
    None,
}

/// Facts parsed from one `Received:` header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ReceivedFacts {
    /// The client address in the header.
    pub ip: Option<IpAddr>,
    /// The verified host name in the header (`unknown` = none).
    pub name: Option<String>,
    /// `with ESMTPA`/`ESMTPSA` (RFC 3848).
    pub authenticated: bool,
    /// The header is in qmail-smtpd's form, whose host name is the PTR name as DNS gave it,
    /// not forward-confirmed (Postfix's form names only forward-confirmed hosts).
    pub unconfirmed: bool,
}

/// True when the environment says the client is trusted (DESIGN.md §5): `RELAYCLIENT` set, even
/// empty (tcprules write `RELAYCLIENT=""`), or `SMTPAUTHUSER`/`AUTHUSER` non-empty.
pub(crate) fn env_authenticated(env: &dyn Fn(&str) -> Option<String>) -> bool {
    env("RELAYCLIENT").is_some()
        || env("SMTPAUTHUSER").is_some_and(|v| !v.is_empty())
        || env("AUTHUSER").is_some_and(|v| !v.is_empty())
}

/// The client facts from the environment alone (qmail-queue mode), or `None` when
/// `TCPREMOTEIP` is missing or not an address.
pub(crate) fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Option<ClientFacts> {
    let ip = client::address(env("TCPREMOTEIP")?.trim())?;
    Some(ClientFacts {
        ip: Some(ip),
        name: env("TCPREMOTEHOST").and_then(|name| client::verified_name(&name)),
        authenticated: env_authenticated(env),
        source: FactSource::Environment,
        // `tcpserver -p` (which the integration guide requires) forward-confirms it.
        name_unconfirmed: false,
    })
}

/// Handler mode: the environment first, else the topmost `Received:` header of `head` (the
/// message's header block), else no client address (a local injection).
pub(crate) fn from_env_or_headers(
    env: &dyn Fn(&str) -> Option<String>,
    head: &[u8],
) -> ClientFacts {
    if let Some(facts) = from_env(env) {
        return facts;
    }
    let env_auth = env_authenticated(env);
    match topmost_received(head) {
        Some(Received::Client(received)) => ClientFacts {
            name_unconfirmed: received.unconfirmed && received.name.is_some(),
            ip: received.ip,
            name: received.name,
            authenticated: env_auth || received.authenticated,
            source: FactSource::ReceivedHeader,
        },
        // No address to trust, but a remote client may well have sent it: greylisted under the
        // unspecified address rather than passed as a local injection, so making the header
        // unreadable cannot be a way in.
        Some(Received::Unreadable) => ClientFacts {
            ip: Some(IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0))),
            name: None,
            authenticated: env_auth,
            source: FactSource::UnreadableHeader,
            name_unconfirmed: false,
        },
        Some(Received::Local) | None => ClientFacts {
            authenticated: env_auth,
            ..ClientFacts::default()
        },
    }
}

/// The header block of a message: everything before the first empty line (LF or CRLF).
pub(crate) fn header_block(message: &[u8]) -> &[u8] {
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

/// What the topmost `Received:` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Received {
    /// Our MTA's header, read.
    Client(ReceivedFacts),
    /// A header our MTA writes for mail it did not get over SMTP (qmail's
    /// `(qmail 1 invoked by uid 0)`, Postfix's `by host (Postfix, from userid 0)`): a local
    /// injection.
    Local,
    /// A `from` clause in neither known form: nothing in it can be trusted.
    Unreadable,
}

/// Reads the topmost `Received:` header of `head`, the one our own MTA wrote. Only qmail-queue's
/// `(qmail 123 invoked from network)` line, which qmail writes above qmail-smtpd's header, is
/// skipped; every other header stops the search, so a header the MTA wrote but that cannot be read
/// never lets a lower one (written by the client) speak instead. `None` when there is none.
pub(crate) fn topmost_received(head: &[u8]) -> Option<Received> {
    let text = String::from_utf8_lossy(head);
    let value = header_values(&text, "received")
        .into_iter()
        .find(|value| !is_qmail_network_note(value))?;
    Some(parse_received(&value))
}

/// qmail-queue's own `(qmail <pid> invoked from network)` line.
fn is_qmail_network_note(value: &str) -> bool {
    let first = value
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    first.starts_with("(qmail ") && first.contains(" invoked from network)")
}

/// The values of the headers called `name`, each with its physical lines kept (CR removed), so the
/// parser can tell the line our MTA starts the `by` clause on.
fn header_values(text: &str, name: &str) -> Vec<String> {
    let mut values: Vec<(bool, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = values.last_mut() {
                value.push('\n');
                value.push_str(line);
            }
            continue;
        }
        if let Some((header, value)) = line.split_once(':') {
            let wanted = header.trim().eq_ignore_ascii_case(name);
            values.push((wanted, value.trim_start().to_string()));
        }
    }
    values
        .into_iter()
        .filter_map(|(wanted, value)| wanted.then_some(value))
        .collect()
}

/// Parses one `Received:` header value as qmail-smtpd writes it,
/// `from <host> [(HELO <helo>)] ([<info>@]<ip>)` `\n  by <host> with <protocol>; <date>`, or as
/// Postfix does, `from <helo> (<host> [<ip>])` `\n\t[(using ...)]` `\n\tby <host> (Postfix) with
/// <protocol> id ...`.
///
/// The HELO is the client's own text and may hold anything, parentheses, ` by ` and ` with `
/// included, so it is never searched: the MTA's client clause is the last parenthesised group
/// of the first line (the HELO comes before it), and the protocol is read only from the
/// continuation line that starts with `by` (both MTAs start the `by` clause on a line of its own,
/// and the HELO cannot hold a line break).
pub(crate) fn parse_received(value: &str) -> Received {
    let mut lines = value.lines();
    let first = lines.next().unwrap_or("").trim();
    let Some(rest) = strip_prefix_ignore_case(first, "from ") else {
        return Received::Local;
    };
    let Some(facts) = client_clause(rest) else {
        return Received::Unreadable;
    };
    let authenticated = lines
        .map(str::trim)
        .find_map(|line| strip_prefix_ignore_case(line, "by "))
        .and_then(by_clause_protocol)
        .is_some_and(|proto| {
            // RFC 3848's words for an SMTP submission that authenticated; LMTPA/LMTPSA are
            // local deliveries, not a client of ours.
            proto.eq_ignore_ascii_case("ESMTPA") || proto.eq_ignore_ascii_case("ESMTPSA")
        });
    Received::Client(ReceivedFacts {
        authenticated,
        ..facts
    })
}

/// The client address and host from the first line after `from `, or `None` when it is in
/// neither form.
fn client_clause(rest: &str) -> Option<ReceivedFacts> {
    let inner = rest.strip_suffix(')')?;
    let open = inner.rfind('(')?;
    let group = inner[open + 1..].trim();
    let before = inner[..open].trim_end();
    // The word after `from`: qmail's remote host (it comes before the HELO), Postfix's HELO.
    let first_end = before.find([' ', '\t', '(']).unwrap_or(before.len());
    let (first_word, middle) = (&before[..first_end], before[first_end..].trim());
    if first_word.is_empty() {
        return None;
    }
    let qmail_form = |ip| {
        // Between qmail's host and its address only the `(HELO ...)` group may stand.
        let helo_only = middle.is_empty()
            || (strip_prefix_ignore_case(middle, "(HELO ").is_some() && middle.ends_with(')'));
        helo_only.then(|| ReceivedFacts {
            ip: Some(ip),
            name: client::verified_name(first_word),
            authenticated: false,
            unconfirmed: true,
        })
    };
    match group.split_once('[') {
        Some((host, bracketed)) => {
            let inside = bracketed.strip_suffix(']')?;
            let inside = strip_prefix_ignore_case(inside, "IPv6:").unwrap_or(inside);
            let ip = client::address(inside)?;
            if host.ends_with('@') {
                // qmail with the ident answer: `(<info>@[<ip>])`.
                return qmail_form(ip);
            }
            let host = host.trim();
            if host.is_empty() || host.contains(char::is_whitespace) {
                return None;
            }
            Some(ReceivedFacts {
                ip: Some(ip),
                name: client::verified_name(host),
                authenticated: false,
                unconfirmed: false,
            })
        }
        None => qmail_form(client::address(
            group.rsplit_once('@').map_or(group, |(_, ip)| ip),
        )?),
    }
}

/// The protocol word of a `by` clause: `<host> [(<comment>)...] with <protocol>`.
fn by_clause_protocol(by: &str) -> Option<&str> {
    let mut rest = by.trim_start();
    rest = rest[rest.find(char::is_whitespace)?..].trim_start();
    while rest.starts_with('(') {
        rest = rest[rest.find(')')? + 1..].trim_start();
    }
    let rest = strip_prefix_ignore_case(rest, "with ")?.trim_start();
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ';')
        .unwrap_or(rest.len());
    Some(&rest[..end])
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

    fn client(value: &str) -> ReceivedFacts {
        match parse_received(value) {
            Received::Client(facts) => facts,
            other => panic!("{value:?} gave {other:?}"),
        }
    }

    #[test]
    fn qmail_smtpd_forms() {
        let facts = client(
            "from mx1.example.net (HELO mail.example.net) (198.51.100.7)\n  by h with SMTP; x",
        );
        assert_eq!(facts.ip, ip("198.51.100.7"));
        assert_eq!(facts.name.as_deref(), Some("mx1.example.net"));
        assert!(!facts.authenticated);
        let facts = client("from unknown (HELO x) (198.51.100.8)\n  by h with SMTP");
        assert_eq!(facts.ip, ip("198.51.100.8"));
        assert_eq!(facts.name, None);
        let facts = client("from mx.example.org (198.51.100.9)\n  by h with SMTP");
        assert_eq!(facts.name.as_deref(), Some("mx.example.org"));
        let facts = client("from unknown (HELO pc) (bob@[203.0.113.4])\n  by h with ESMTPSA");
        assert_eq!(facts.ip, ip("203.0.113.4"));
        assert!(facts.authenticated);
        assert!(
            client("from unknown (HELO pc) (bob@203.0.113.4)\n  by h with ESMTPA").authenticated
        );
    }

    #[test]
    fn postfix_forms() {
        let facts = client(
            "from helo.example (mx.example.com [192.0.2.5])\n\t(using TLSv1.3 with cipher X (256/256 bits))\n\tby mx (Postfix) with ESMTPS id X",
        );
        assert_eq!(facts.ip, ip("192.0.2.5"));
        assert_eq!(facts.name.as_deref(), Some("mx.example.com"));
        assert!(!facts.authenticated);
        let facts =
            client("from pc (unknown [IPv6:2001:db8::1])\n\tby mx (Postfix) with ESMTPA id Y");
        assert_eq!(facts.ip, ip("2001:db8::1"));
        assert_eq!(facts.name, None);
        assert!(facts.authenticated);
        let facts = client(
            "from pc (unknown [192.0.2.6])\n\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))\n\t(No client certificate requested)\n\tby mx (Postfix) with ESMTPSA id Z\n\tfor <u@x>; date",
        );
        assert!(facts.authenticated);
    }

    #[test]
    fn only_the_mtas_own_protocol_word_counts() {
        for value in [
            // The HELO says `with ESMTPA`; the MTA says ESMTP.
            "from a with ESMTPA (unknown [198.51.100.30])\n\tby mx.local (Postfix) with ESMTP id 4AB",
            "from unknown (HELO a with ESMTPA) (198.51.100.20)\n  by mx.local with SMTP; date",
            // A ` by ` in the HELO is not the MTA's clause.
            "from x by h with ESMTPA (unknown [198.51.100.32])\n\tby mx (Postfix) with ESMTP id 1",
            // Not the exact words.
            "from pc (unknown [198.51.100.33])\n\tby mx (Postfix) with ESMTPAX id 1",
            "from pc (unknown [198.51.100.33])\n\tby mx (Postfix) with LMTPA id 1",
            "from unknown (HELO pc) (198.51.100.34)\n  by h with ESMTPSAY; date",
            // The client's certificate name is on its own line, not the `by` line.
            "from pc (unknown [198.51.100.36])\n\t(Client CN \"by x with ESMTPA\", Issuer \"y\" (not verified))\n\tby mx (Postfix) with ESMTPS id 1",
        ] {
            assert!(!client(value).authenticated, "{value}");
        }
    }

    #[test]
    fn groups_in_the_helo_plant_nothing() {
        let facts = client(
            "from x (mail.google.com [1.2.3.4]) (unknown [198.51.100.31])\n\tby mx.local (Postfix) with ESMTP id 1",
        );
        assert_eq!(facts.ip, ip("198.51.100.31"));
        assert_eq!(facts.name, None);
        let facts = client(
            "from unknown (HELO x) (mail.google.com [1.2.3.4]) (198.51.100.22)\n  by mx with SMTP; d",
        );
        assert_eq!(facts.ip, ip("198.51.100.22"));
        assert_eq!(facts.name, None);
        let facts =
            client("from unknown (HELO x) (127.0.0.1) (198.51.100.21)\n  by mx with SMTP; d");
        assert_eq!(facts.ip, ip("198.51.100.21"));
    }

    #[test]
    fn unreadable_and_local_headers() {
        for value in [
            "from nothing here",
            "from a (b [not-an-ip])\n\tby mx",
            "from a (198.51.100.1) trailing\n  by mx with SMTP",
            "from a (two words [198.51.100.1])\n\tby mx",
            "from unknown (198.51.100.1) (198.51.100.2)\n  by mx with SMTP",
            "from (198.51.100.1)",
            // On one line the MTA's clause cannot be told from the HELO.
            "from pc (unknown [198.51.100.35]) by mx (Postfix) with ESMTPA id 1",
        ] {
            assert_eq!(parse_received(value), Received::Unreadable, "{value}");
        }
        assert_eq!(parse_received("by local with SMTP"), Received::Local);
        assert_eq!(
            parse_received("by mx (Postfix, from userid 0)\n\tid 1; date"),
            Received::Local
        );
    }

    #[test]
    fn only_the_topmost_header_is_read() {
        let head = b"Received: (qmail 123 invoked from network); 1 Jan 2026\n\
Received: from mx.example.com (HELO mx) (192.0.2.1)\n  by h with SMTP; 1 Jan 2026\n\
Received: from older.example (older.example [192.0.2.99])\n\tby x\n";
        let Some(Received::Client(facts)) = topmost_received(head) else {
            panic!("no facts");
        };
        assert_eq!(facts.ip, ip("192.0.2.1"));
        assert_eq!(facts.name.as_deref(), Some("mx.example.com"));
        // An unreadable top header does not hand over to the next one.
        let head = b"Received: from a (b [c])\n\tby mx (Postfix) with ESMTP id 1\n\
Received: from pc (mail.google.com [192.0.2.98])\n\tby x (Postfix) with ESMTPA id 2\n";
        assert_eq!(topmost_received(head), Some(Received::Unreadable));
        let env = |_: &str| None;
        let facts = from_env_or_headers(&env, head);
        assert_eq!(facts.ip, ip("0.0.0.0"));
        assert!(!facts.authenticated);
        assert_eq!(facts.source, FactSource::UnreadableHeader);
        // A local injection's header is the top one too.
        let head = b"Received: (qmail 9 invoked by uid 0); d\n\
Received: from pc (mail.google.com [192.0.2.98])\n\tby x (Postfix) with ESMTP id 2\n";
        assert_eq!(topmost_received(head), Some(Received::Local));
        assert_eq!(from_env_or_headers(&env, head).ip, None);
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
