//! `--explain` tells the decision the mail path takes: for generated settings, lists, triplet
//! histories and requests, its verdict, reason and pattern equal the engine's for the same
//! message at the same time.

use proptest::prelude::*;

use super::{ExplainRequest, run};
use crate::config::{ListKind, Settings};
use crate::decision::Reason;
use crate::engine::{self, Message};
use crate::store::{SqliteStore, Store};

const IPS: &[&str] = &["198.51.100.7", "198.51.100.9", "203.0.113.5", "2001:db8::5"];
const NAMES: &[Option<&str>] = &[
    None,
    Some("mx1.sender.example"),
    Some("host7.dsl.isp.example"),
    Some("mail.google.com"),
];
const SENDERS: &[&str] = &[
    "",
    "alice@sender.example",
    "bob+tag@sender.example",
    "bob@sender.example",
    "spam@bad.example",
];
const RECIPIENTS: &[&str] = &[
    "john@local.example",
    "Jane@Local.Example",
    "u@other.example",
];
const ADDRESS_PATTERNS: &[&str] = &["*@bad.example", "alice@*", "*+tag@*", "nobody@*"];
const HOST_PATTERNS: &[&str] = &["*google.com", "*.sender.example", "*dsl*", "none.example"];

/// One generated situation: configuration, a history of earlier messages and the request.
#[derive(Debug, Clone)]
struct Case {
    settings: Settings,
    domain_status: Option<bool>,
    /// (kind, owner index: 0 = server-wide, else the recipient of that index + 1, pattern).
    patterns: Vec<(ListKind, usize, &'static str)>,
    /// (ip, name, sender, recipient, seconds after the start) of earlier messages.
    history: Vec<(usize, usize, usize, usize, i64)>,
    /// The request: ip, name, sender, recipient, seconds after the start.
    request: (usize, usize, usize, usize, i64),
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        any::<bool>(),
        1u32..10,
        any::<bool>(),
        any::<bool>(),
        0u32..3,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(24u8), Just(32u8)],
    )
        .prop_map(
            |(off, grey, penalty, personal, awl, normalize, group, v4)| Settings {
                enabled: !off || grey % 3 != 0,
                grey_interval: grey,
                penalty_enabled: penalty,
                personal_conf: personal,
                awl_count: awl,
                sender_normalize: normalize,
                group_by_host_domain: group,
                ipv4_prefix: v4,
                ..Settings::default()
            },
        )
}

fn pattern() -> impl Strategy<Value = (ListKind, usize, &'static str)> {
    prop_oneof![
        (0..RECIPIENTS.len() + 1, 0..ADDRESS_PATTERNS.len()).prop_map(|(owner, p)| (
            ListKind::White,
            owner,
            ADDRESS_PATTERNS[p]
        )),
        (0..RECIPIENTS.len() + 1, 0..ADDRESS_PATTERNS.len()).prop_map(|(owner, p)| (
            ListKind::Black,
            owner,
            ADDRESS_PATTERNS[p]
        )),
        (0..HOST_PATTERNS.len()).prop_map(|p| (ListKind::DomainsWhite, 0, HOST_PATTERNS[p])),
        (0..HOST_PATTERNS.len()).prop_map(|p| (ListKind::DomainsBlack, 0, HOST_PATTERNS[p])),
    ]
}

fn message() -> impl Strategy<Value = (usize, usize, usize, usize, i64)> {
    (
        0..IPS.len(),
        0..NAMES.len(),
        0..SENDERS.len(),
        0..RECIPIENTS.len(),
        0i64..1500,
    )
}

fn case() -> impl Strategy<Value = Case> {
    (
        settings(),
        prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
        proptest::collection::vec(pattern(), 0..4),
        proptest::collection::vec(message(), 0..6),
        message(),
        any::<proptest::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(
            |(settings, domain_status, patterns, history, fresh, pick, repeat)| {
                // Mostly a retry of an earlier message, so triplets and the AWL are in play.
                let request = match history.is_empty() || !repeat {
                    true => fresh,
                    false => {
                        let (ip, name, sender, recipient, _) = history[pick.index(history.len())];
                        (ip, name, sender, recipient, fresh.4)
                    }
                };
                Case {
                    settings,
                    domain_status,
                    patterns,
                    history,
                    request,
                }
            },
        )
}

const T0: i64 = 1_800_000_000;

fn to_message((ip, name, sender, recipient, _): (usize, usize, usize, usize, i64)) -> Message {
    Message {
        client_ip: IPS[ip].parse().ok(),
        client_name: NAMES[name].map(str::to_string),
        sender: SENDERS[sender].to_string(),
        recipients: vec![RECIPIENTS[recipient].to_string()],
        authenticated: false,
        ..Message::default()
    }
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let dir = tempfile::TempDir::new().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
    store
        .write(&mut |tx| {
            tx.set_settings(&case.settings)?;
            if let Some(enabled) = case.domain_status {
                tx.set_domain_status("local.example", enabled)?;
            }
            for (kind, owner, pattern) in &case.patterns {
                let owner = match owner {
                    0 => String::new(),
                    n => RECIPIENTS[n - 1].to_lowercase(),
                };
                tx.add_pattern(*kind, &owner, pattern)?;
            }
            Ok(())
        })
        .unwrap();
    let mut history = case.history.clone();
    history.sort_by_key(|m| m.4);
    for earlier in history {
        engine::check_message(&mut store, &to_message(earlier), T0 + earlier.4).unwrap();
    }
    let (ip, name, sender, recipient, at) = case.request;
    let now = T0 + 1500 + at;
    let values: Vec<String> = [
        IPS[ip],
        NAMES[name].unwrap_or("-"),
        match SENDERS[sender] {
            "" => "-",
            s => s,
        },
        RECIPIENTS[recipient],
    ]
    .iter()
    .map(|v| v.to_string())
    .collect();
    let request = ExplainRequest::parse(&values).unwrap();
    // No zones are configured here: the resolver is never asked.
    let no_env = |_: &str| None;
    let resolver = crate::dns::SystemResolver::new(&no_env);
    let explained: serde_json::Value =
        serde_json::from_str(&run(&mut store, &request, now, true, &resolver).unwrap()).unwrap();
    let outcome = engine::check_message(&mut store, &to_message(case.request), now).unwrap();
    let decision = &outcome.recipients[0].decision;
    prop_assert_eq!(
        explained["verdict"].as_str(),
        Some(decision.verdict.as_str())
    );
    prop_assert_eq!(explained["reason"].as_str(), Some(decision.reason.as_str()));
    prop_assert_eq!(explained["pattern"].as_str(), decision.pattern.as_deref());
    // The walk starts at the server switch and ends at the check that decided.
    let steps = explained["steps"].as_array().unwrap();
    prop_assert_eq!(&steps[0]["check"], "Server checking");
    let deciding = match decision.reason {
        Reason::Disabled => "Server checking",
        Reason::DomainDisabled => "Domain checking",
        Reason::WhiteHost => "White domains",
        Reason::BlackHost => "Black domains",
        Reason::MailboxWhite => "User's white list",
        Reason::MailboxBlack => "User's black list",
        Reason::ServerWhite => "Server white list",
        Reason::ServerBlack => "Server black list",
        Reason::ClientAwl => "Client AWL",
        Reason::Dnswl => "DNS whitelists",
        Reason::TrustedClient => "Selective greylisting",
        Reason::New | Reason::EarlyRetry | Reason::TripletFound => "Triplet",
        Reason::Authenticated | Reason::LocalInjection => "none: explain has an outside client",
    };
    prop_assert_eq!(steps.last().unwrap()["check"].as_str(), Some(deciding));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn explain_tells_the_engines_decision(case in case()) {
        check(&case)?;
    }
}

// Each refused value is named in its error, which reads as the line the admin sees.
#[test]
fn refused_values_are_named() {
    use super::BadRequest;
    let parse = |values: &[&str]| {
        let values: Vec<String> = values.iter().map(ToString::to_string).collect();
        ExplainRequest::parse(&values).err()
    };
    let arity = parse(&["192.0.2.1", "-", "-"]);
    assert_eq!(arity, Some(BadRequest::Arity));
    assert_eq!(
        arity.map(|e| e.to_string()).as_deref(),
        Some("expects <client-ip> <client-host|-> <sender|-> <recipient>")
    );
    assert_eq!(
        parse(&["192.0.2", "-", "-", "u@example.com"]),
        Some(BadRequest::Ip("192.0.2".to_string()))
    );
    assert!(matches!(
        parse(&["192.0.2.1", "bad host", "-", "u@example.com"]),
        Some(BadRequest::Host(crate::config::ValueError::Domain(_)))
    ));
    assert_eq!(
        parse(&["192.0.2.1", "-", "a\tb@x.example", "u@example.com"]),
        Some(BadRequest::Sender("a\tb@x.example".to_string()))
    );
    assert!(matches!(
        parse(&["192.0.2.1", "-", "-", "nobody"]),
        Some(BadRequest::Recipient(crate::config::ValueError::Mail(_)))
    ));
}
