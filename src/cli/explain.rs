//! `grey_listing --explain <client-ip> <client-host|-> <sender|-> <recipient>`: walks SPEC §4
//! for one message at `now`, read-only. The verdict comes from the same pure functions the mail
//! path runs ([`decide_by_policy`], [`decide_by_triplet`]); the walk around it shows each check.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;

use super::output::row;
use super::to_json;
use crate::bounds;
use crate::config::{self, ListKind, MailboxLists, ServerLists, Settings};
use crate::decision::{
    ClientKey, ClientState, CompiledLists, Decision, PolicyOutcome, Reason, RecipientPolicy,
    Request, client_key, decide_by_policy, decide_by_triplet, triplet_sender,
};
use crate::escape::{escape, shown};
use crate::pattern::{Pattern, first_match};
use crate::store::{self, Store, StoreError, Triplet, TripletKey};

/// The message to explain, validated.
#[derive(Debug, Clone)]
pub struct ExplainRequest {
    client_ip: IpAddr,
    client_name: Option<String>,
    sender: String,
    recipient: String,
}

impl ExplainRequest {
    /// Validates the four values: an IP address, a host name or `-`, a sender or `-`/`<>` (the
    /// empty bounce sender), a recipient mail address.
    pub fn parse(values: &[String]) -> Result<ExplainRequest, String> {
        let [ip, host, sender, recipient] = values else {
            return Err("expects <client-ip> <client-host|-> <sender|-> <recipient>".to_string());
        };
        let client_ip = ip
            .parse::<IpAddr>()
            .map_err(|_| format!("'{ip}' is not an IP address"))?;
        let client_name = match host.as_str() {
            "-" | "" => None,
            name => Some(config::parse_domain(name).map_err(|e| e.to_string())?),
        };
        let sender = match sender.as_str() {
            "-" | "<>" => String::new(),
            s if s.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(format!("'{s}' is not a valid sender address"));
            }
            s => crate::names::address_for_matching(s).into_owned(),
        };
        let recipient = config::parse_mail(recipient).map_err(|e| e.to_string())?;
        Ok(ExplainRequest {
            client_ip,
            client_name,
            sender,
            recipient,
        })
    }
}

/// One check of the walk.
#[derive(Debug, Clone, Serialize)]
struct Step {
    /// What is checked.
    check: &'static str,
    /// What was found.
    result: String,
    /// The pattern that matched, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
}

/// Everything read from the store, in one snapshot.
#[derive(Default)]
struct Snapshot {
    settings: Settings,
    lists: ServerLists,
    domain_enabled: Option<bool>,
    mailbox: MailboxLists,
    awl_passes: u64,
    triplet: Option<Triplet>,
}

/// Runs the explanation; the store is only read.
pub fn run(
    store: &mut dyn Store,
    request: &ExplainRequest,
    now: i64,
    json: bool,
) -> Result<String, StoreError> {
    let domain = request
        .recipient
        .rsplit_once('@')
        .map_or("", |(_, d)| d)
        .to_string();
    // The triplet key exactly as the mail path stores it (bounded when over-long).
    let sender_key_for = |settings: &Settings| {
        bounds::bound(&triplet_sender(&request.sender, settings.sender_normalize)).into_owned()
    };
    let mut snapshot = Snapshot::default();
    let mut client = None;
    store.read(&mut |tx| {
        let settings = tx.settings()?;
        let lists = store::server_lists(tx)?;
        let black: Vec<Pattern> = lists
            .domains_black
            .iter()
            .map(|p| ListKind::DomainsBlack.compile(p))
            .collect();
        let key = client_key(
            request.client_ip,
            request.client_name.as_deref(),
            &settings,
            &black,
        );
        let triplet_key = TripletKey {
            client: key.key.clone(),
            sender: sender_key_for(&settings),
            recipient: request.recipient.clone(),
        };
        snapshot = Snapshot {
            domain_enabled: tx.domain_status(&domain)?,
            mailbox: store::mailbox_lists(tx, &request.recipient)?,
            awl_passes: tx.awl_passes(&key.network, now)?,
            triplet: tx.triplet(&triplet_key)?,
            settings,
            lists,
        };
        client = Some(key);
        Ok(())
    })?;
    let Some(client) = client else {
        return Ok(String::new());
    };
    let settings = &snapshot.settings;
    let compiled = CompiledLists::new(&snapshot.lists);
    let policy = RecipientPolicy::new(snapshot.domain_enabled, &snapshot.mailbox);
    let facts = Request {
        client_ip: Some(request.client_ip),
        client_name: request.client_name.as_deref(),
        sender: &request.sender,
        recipient: &request.recipient,
        authenticated: false,
    };
    let state = ClientState {
        awl_passes: snapshot.awl_passes,
        triplet: snapshot.triplet,
    };
    let decision = match decide_by_policy(settings, &compiled, &policy, &facts) {
        PolicyOutcome::Decided(decision) => decision,
        PolicyOutcome::Greylist(_) => decide_by_triplet(settings, &state, now),
    };
    let steps = walk(request, &snapshot, &domain, &client, &decision, now);
    let sender_key = sender_key_for(settings);
    if json {
        return Ok(to_json(&json!({
            "time": now,
            "client_address": request.client_ip.to_string(),
            "client_name": request.client_name,
            "sender": request.sender,
            "recipient": request.recipient,
            "steps": steps,
            "client_key": client,
            "triplet": {
                "client": client.key,
                "sender": sender_key,
                "recipient": request.recipient,
                "state": triplet_json(snapshot.triplet, now),
            },
            "awl_passes": snapshot.awl_passes,
            "verdict": decision.verdict,
            "reason": decision.reason.as_str(),
            "pattern": decision.pattern,
        })));
    }
    // Every value below came from the command line or the store: printed bounded and escaped.
    let mut out = format!(
        "Explanation for client {} ({}), sender <{}>, recipient <{}> at {}\n\n",
        request.client_ip,
        request
            .client_name
            .as_deref()
            .map_or_else(|| "no verified host name".to_string(), shown),
        shown(&request.sender),
        shown(&request.recipient),
        super::report::format_time(now),
    );
    for (number, step) in steps.iter().enumerate() {
        let mut result = step.result.clone();
        if let Some(pattern) = &step.pattern {
            result.push_str(&format!(" (pattern {})", escape(pattern)));
        }
        out.push_str(&row(&format!("{:>2}. {}", number + 1, step.check), &result));
    }
    out.push('\n');
    out.push_str(&row("Client network", &client.network));
    out.push_str(&row(
        "Client key",
        &format!("{} ({})", shown(&client.key), client.basis.as_str()),
    ));
    out.push_str(&row(
        "Triplet",
        &format!(
            "{} / <{}> / <{}>",
            shown(&client.key),
            shown(&sender_key),
            shown(&request.recipient)
        ),
    ));
    out.push_str(&row("Triplet state", &triplet_text(snapshot.triplet, now)));
    out.push('\n');
    let mut verdict = format!(
        "{} ({})",
        decision.verdict.as_str(),
        decision.reason.as_str()
    );
    if let Some(pattern) = &decision.pattern {
        verdict.push_str(&format!(", pattern {}", escape(pattern)));
    }
    out.push_str(&row("Verdict", &verdict));
    out.push_str("\nNothing was changed: --explain only reads the database.\n");
    Ok(out)
}

/// The checks of SPEC §4 in order, up to the one that decided.
fn walk(
    request: &ExplainRequest,
    snapshot: &Snapshot,
    domain: &str,
    client: &ClientKey,
    decision: &Decision,
    now: i64,
) -> Vec<Step> {
    let settings = &snapshot.settings;
    let mut steps = Vec::new();
    let mut push = |check: &'static str, result: String, pattern: Option<String>| {
        steps.push(Step {
            check,
            result,
            pattern,
        });
    };
    let decided = |reasons: &[Reason]| reasons.contains(&decision.reason);

    push(
        "Server checking",
        if settings.enabled {
            "enabled"
        } else {
            "disabled: pass"
        }
        .to_string(),
        None,
    );
    if decided(&[Reason::Disabled]) {
        return steps;
    }
    let domain = shown(domain);
    let domain_text = match snapshot.domain_enabled {
        None => format!("{domain}: enabled (never set)"),
        Some(true) => format!("{domain}: enabled"),
        Some(false) => format!("{domain}: disabled: pass"),
    };
    push("Domain checking", domain_text, None);
    if decided(&[Reason::DomainDisabled]) {
        return steps;
    }
    push(
        "Authentication",
        "not authenticated (explain assumes an outside client)".to_string(),
        None,
    );
    let compile = |kind: ListKind, patterns: &[String]| -> Vec<Pattern> {
        patterns.iter().map(|p| kind.compile(p)).collect()
    };
    let host_check = |kind: ListKind, verdict: &str| match request.client_name.as_deref() {
        None => ("no verified host name".to_string(), None),
        Some(host) if !bounds::host_matchable(host) => (
            format!(
                "{}: longer than {} bytes, matches no pattern",
                shown(host),
                bounds::MAX_HOST_NAME_BYTES
            ),
            None,
        ),
        Some(host) => match first_match(&compile(kind, snapshot.lists.get(kind)), host) {
            Some(pattern) => (
                format!("{} matches: {verdict}", shown(host)),
                Some(pattern.as_str().to_string()),
            ),
            None => (format!("{}: no match", shown(host)), None),
        },
    };
    let (result, pattern) = host_check(ListKind::DomainsWhite, "pass");
    push("White domains", result, pattern);
    if decided(&[Reason::WhiteHost]) {
        return steps;
    }
    let (result, pattern) = host_check(ListKind::DomainsBlack, "reject");
    push("Black domains", result, pattern);
    if decided(&[Reason::BlackHost]) {
        return steps;
    }
    let sender_shown = if request.sender.is_empty() {
        "<> (bounce)".to_string()
    } else {
        format!("<{}>", shown(&request.sender))
    };
    let address_check = |patterns: Vec<Pattern>, verdict: &str| {
        if !bounds::sender_matchable(&request.sender) {
            return (
                format!(
                    "{sender_shown}: longer than {} bytes, matches no pattern",
                    bounds::MAX_VALUE_BYTES
                ),
                None,
            );
        }
        match first_match(&patterns, &request.sender) {
            Some(pattern) => (
                format!("{sender_shown} matches: {verdict}"),
                Some(pattern.as_str().to_string()),
            ),
            None => (format!("{sender_shown}: no match"), None),
        }
    };
    let personal = |patterns: &[String], verdict: &str| {
        if settings.personal_conf {
            address_check(compile(ListKind::White, patterns), verdict)
        } else {
            (
                "skipped: personal configuration prohibited".to_string(),
                None,
            )
        }
    };
    let (result, pattern) = personal(&snapshot.mailbox.white, "pass");
    push("User's white list", result, pattern);
    if decided(&[Reason::MailboxWhite]) {
        return steps;
    }
    let (result, pattern) = personal(&snapshot.mailbox.black, "reject");
    push("User's black list", result, pattern);
    if decided(&[Reason::MailboxBlack]) {
        return steps;
    }
    let (result, pattern) = address_check(compile(ListKind::White, &snapshot.lists.white), "pass");
    push("Server white list", result, pattern);
    if decided(&[Reason::ServerWhite]) {
        return steps;
    }
    let (result, pattern) =
        address_check(compile(ListKind::Black, &snapshot.lists.black), "reject");
    push("Server black list", result, pattern);
    if decided(&[Reason::ServerBlack]) {
        return steps;
    }
    let awl = if settings.awl_count == 0 {
        "off (awl-count 0)".to_string()
    } else if decided(&[Reason::ClientAwl]) {
        format!(
            "{}: {} passed triplets, needs {}: pass",
            client.network, snapshot.awl_passes, settings.awl_count
        )
    } else {
        format!(
            "{}: {} passed triplets, needs {}: not auto-whitelisted",
            client.network, snapshot.awl_passes, settings.awl_count
        )
    };
    push("Client AWL", awl, None);
    if decided(&[Reason::ClientAwl]) {
        return steps;
    }
    let triplet = match decision.reason {
        Reason::New => match snapshot.triplet {
            Some(_) => "expired: would be recreated, defer (new)".to_string(),
            None => "unknown: would be created, defer (new)".to_string(),
        },
        Reason::EarlyRetry => format!(
            "retry too early ({} left): defer (early-retry)",
            super::report::format_delay(
                snapshot
                    .triplet
                    .map_or(0, |t| t.earliest_accept.saturating_sub(now))
            )
        ),
        _ => "retry in time: pass (triplet found)".to_string(),
    };
    push("Triplet", triplet, None);
    steps
}

fn triplet_text(triplet: Option<Triplet>, now: i64) -> String {
    let time = super::report::format_time;
    match triplet {
        None => "not recorded".to_string(),
        Some(t) if t.expires <= now => format!("expired at {}", time(t.expires)),
        Some(t) if t.pass_count == 0 => format!(
            "pending since {}, accepted from {}, expires {}",
            time(t.first_seen),
            time(t.earliest_accept),
            time(t.expires)
        ),
        Some(t) => format!(
            "passed {}, first seen {}, last seen {}, expires {}",
            if t.pass_count == 1 {
                "once".to_string()
            } else {
                format!("{} times", t.pass_count)
            },
            time(t.first_seen),
            time(t.last_seen),
            time(t.expires)
        ),
    }
}

fn triplet_json(triplet: Option<Triplet>, now: i64) -> serde_json::Value {
    match triplet {
        None => json!({ "state": "unknown" }),
        Some(t) => {
            let state = if t.expires <= now {
                "expired"
            } else if t.pass_count == 0 {
                "pending"
            } else {
                "passed"
            };
            json!({
                "state": state,
                "first_seen": t.first_seen,
                "earliest_accept": t.earliest_accept,
                "last_seen": t.last_seen,
                "expires": t.expires,
                "pass_count": t.pass_count,
            })
        }
    }
}
