//! `grey_listing --explain <client-ip> <client-host|-> <sender|-> <recipient>`: the decision for
//! one message at `now`, read-only. The engine runs the mail path's own walk with its trace on
//! ([`engine::explain`]); this module only puts each traced check into words.

use std::net::IpAddr;

use serde::Serialize;
use serde_json::json;
use thiserror::Error;

use super::output::row;
use super::to_json;
use crate::bounds;
use crate::config;
use crate::decision::{self as trace, ClientKey, ListSeen, Reason, TripletSeen};
use crate::dns::SystemResolver;
use crate::engine::{self, Message};
use crate::escape::{escape, shown};
use crate::store::{Store, StoreError, Triplet};

/// Why the values given to `--explain` describe no message (each value as given).
#[derive(Debug, PartialEq, Eq, Error)]
pub(super) enum BadRequest {
    /// Not four values (clap counts them first; kept for any other caller).
    #[error("expects <client-ip> <client-host|-> <sender|-> <recipient>")]
    Arity,
    /// The client address.
    #[error("'{0}' is not an IP address")]
    Ip(String),
    /// The client host name.
    #[error(transparent)]
    Host(config::ValueError),
    /// The sender, with white space or a control character in it.
    #[error("'{0}' is not a valid sender address")]
    Sender(String),
    /// The recipient.
    #[error(transparent)]
    Recipient(config::ValueError),
}

/// The message to explain, validated.
#[derive(Debug, Clone)]
pub(super) struct ExplainRequest {
    client_ip: IpAddr,
    client_name: Option<String>,
    sender: String,
    recipient: String,
}

impl ExplainRequest {
    /// Validates the four values: an IP address, a host name or `-`, a sender or `-`/`<>` (the
    /// empty bounce sender), a recipient mail address.
    pub(super) fn parse(values: &[String]) -> Result<ExplainRequest, BadRequest> {
        let [ip, host, sender, recipient] = values else {
            return Err(BadRequest::Arity);
        };
        let client_ip = ip
            .parse::<IpAddr>()
            .map_err(|_| BadRequest::Ip(ip.clone()))?;
        let client_name = match host.as_str() {
            "-" | "" => None,
            name => Some(config::parse_domain(name).map_err(BadRequest::Host)?),
        };
        let sender = match sender.as_str() {
            "-" | "<>" => String::new(),
            s if s.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return Err(BadRequest::Sender(s.to_string()));
            }
            s => crate::names::address_for_matching(s).into_owned(),
        };
        let recipient = config::parse_mail(recipient).map_err(BadRequest::Recipient)?;
        Ok(ExplainRequest {
            client_ip,
            client_name,
            sender,
            recipient,
        })
    }
}

/// One check of the walk, as printed.
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

/// Runs the explanation; the store is only read. DNS answers the store's cache lacks are asked
/// live from `resolver` and not stored.
pub(super) fn run(
    store: &mut dyn Store,
    request: &ExplainRequest,
    now: i64,
    json: bool,
    resolver: &SystemResolver<'_>,
) -> Result<String, StoreError> {
    let message = Message {
        client_ip: Some(request.client_ip),
        client_name: request.client_name.clone(),
        sender: request.sender.clone(),
        recipients: vec![request.recipient.clone()],
        authenticated: false,
        ..Message::default()
    };
    let (explained, seen) =
        engine::explain_with_dns(store, &message, &request.recipient, now, resolver)?;
    let sources = dns::sources(&seen);
    let no_resolver = resolver.error().map(ToString::to_string);
    let Some(explained) = explained else {
        return Ok(String::new());
    };
    let (Some(client), Some(triplet_key)) = (&explained.client, &explained.triplet_key) else {
        return Ok(String::new());
    };
    let domain = request.recipient.rsplit_once('@').map_or("", |(_, d)| d);
    let steps: Vec<Step> = explained
        .trace
        .steps()
        .iter()
        .map(|step| render(step, domain, client))
        .collect();
    let decision = &explained.decision;
    if json {
        return Ok(to_json(&json!({
            "time": now,
            "client_address": request.client_ip.to_string(),
            "client_name": request.client_name,
            "sender": request.sender,
            "recipient": request.recipient,
            "steps": steps,
            "dns": sources,
            "dns_resolver_error": no_resolver,
            "client_key": client,
            "triplet": {
                "client": triplet_key.client,
                "sender": triplet_key.sender,
                "recipient": triplet_key.recipient,
                "state": triplet_json(explained.triplet, now),
            },
            "awl_passes": explained.awl_passes,
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
    if !sources.is_empty() {
        out.push('\n');
    }
    if let Some(why) = &no_resolver {
        out.push_str(&row(
            "DNS resolver",
            &format!(
                "none ({}): zones not in the cache count as not listed",
                shown(why)
            ),
        ));
    }
    for source in &sources {
        out.push_str(&row("DNS answer", &dns::source_text(source)));
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
            shown(&triplet_key.client),
            shown(&triplet_key.sender),
            shown(&triplet_key.recipient)
        ),
    ));
    out.push_str(&row("Triplet state", &triplet_text(explained.triplet, now)));
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

/// One step of the decision's trace in words. `domain` is the recipient's domain, `client` the
/// client key the walk used.
fn render(step: &trace::Step, domain: &str, client: &ClientKey) -> Step {
    let plain = |check: &'static str, result: String| Step {
        check,
        result,
        pattern: None,
    };
    match step {
        trace::Step::Server { enabled } => plain(
            "Server checking",
            if *enabled {
                "enabled"
            } else {
                "disabled: pass"
            }
            .to_string(),
        ),
        trace::Step::Domain { enabled } => {
            let domain = shown(domain);
            plain(
                "Domain checking",
                match enabled {
                    None => format!("{domain}: enabled (never set)"),
                    Some(true) => format!("{domain}: enabled"),
                    Some(false) => format!("{domain}: disabled: pass"),
                },
            )
        }
        trace::Step::Authentication { authenticated } => plain(
            "Authentication",
            if *authenticated {
                "authenticated: pass"
            } else {
                "not authenticated (explain assumes an outside client)"
            }
            .to_string(),
        ),
        trace::Step::LocalInjection => {
            plain("Client address", "none (local injection): pass".to_string())
        }
        trace::Step::List { rule, seen } => render_list(*rule, seen),
        trace::Step::Dnswl { answers, listed } => dns::render_dnswl(answers, listed.as_deref()),
        trace::Step::Clients {
            forward,
            dnsbl,
            suspicion,
        } => dns::render_clients(*forward, dnsbl, suspicion),
        trace::Step::Awl {
            needed,
            passes,
            whitelisted,
        } => plain(
            "Client AWL",
            if *needed == 0 {
                "off (awl-count 0)".to_string()
            } else {
                let outcome = if *whitelisted {
                    "pass"
                } else {
                    "not auto-whitelisted"
                };
                format!(
                    "{}: {passes} passed triplets, needs {needed}: {outcome}",
                    client.network
                )
            },
        ),
        trace::Step::Triplet(seen) => plain(
            "Triplet",
            match seen {
                TripletSeen::Unknown => "unknown: would be created, defer (new)".to_string(),
                TripletSeen::Expired => "expired: would be recreated, defer (new)".to_string(),
                TripletSeen::Early { left } => format!(
                    "retry too early ({} left): defer (early-retry)",
                    super::report::format_delay(*left)
                ),
                TripletSeen::InTime => "retry in time: pass (triplet found)".to_string(),
            },
        ),
    }
}

/// A list check in words: host-name lists show the host, address lists the sender.
fn render_list(rule: Reason, seen: &ListSeen) -> Step {
    let (check, host) = match rule {
        Reason::WhiteHost => ("White domains", true),
        Reason::BlackHost => ("Black domains", true),
        Reason::MailboxWhite => ("User's white list", false),
        Reason::MailboxBlack => ("User's black list", false),
        Reason::ServerWhite => ("Server white list", false),
        _ => ("Server black list", false),
    };
    let verdict = if rule.list_type() == Some("white") {
        "pass"
    } else {
        "reject"
    };
    let value = |value: &str| match (host, value) {
        (true, _) => shown(value),
        (false, "") => "<> (bounce)".to_string(),
        (false, sender) => format!("<{}>", shown(sender)),
    };
    let limit = if host {
        bounds::MAX_HOST_NAME_BYTES
    } else {
        bounds::MAX_VALUE_BYTES
    };
    let (result, pattern) = match seen {
        ListSeen::Absent => ("no verified host name".to_string(), None),
        ListSeen::TooLong(v) => (
            format!(
                "{}: longer than {limit} bytes, matches no pattern",
                value(v)
            ),
            None,
        ),
        ListSeen::Skipped => (
            "skipped: personal configuration prohibited".to_string(),
            None,
        ),
        ListSeen::NoMatch(v) => (format!("{}: no match", value(v)), None),
        ListSeen::Match { value: v, pattern } => (
            format!("{} matches: {verdict}", value(v)),
            Some(pattern.clone()),
        ),
    };
    Step {
        check,
        result,
        pattern,
    }
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

mod dns;

#[cfg(test)]
mod tests;
