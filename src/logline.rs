//! The log lines every front end (the filter, the policy server, a milter) writes about a
//! decision, in one format: postgrey's `action=..., reason=..., client_name=..., client_address=...,
//! sender=..., recipient=...` with `(<n>s missing)` on an early retry and `, delay=<n>` on a
//! triplet's first pass, plus Plesk's `list type: ..., from: ..., match string: ...` line when a
//! list decided. Log-analysis scripts grep for these texts, so they are written here only.
//!
//! Every value that came from the client or the store goes through [`crate::escape`] (bounded,
//! then escaped), so none can forge a field or a line.

use std::any::Any;
use std::net::IpAddr;
use std::time::Duration;

use crate::decision::{Decision, Reason};
use crate::escape;

/// A value from outside as the log shows it: bounded and escaped. Built from text or from raw
/// envelope bytes (a qmail envelope need not be UTF-8: its bytes are shown exactly).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    /// From text.
    pub fn text(value: &str) -> Shown {
        Shown(escape::shown(value))
    }

    /// From bytes that need not be UTF-8.
    pub fn bytes(value: &[u8]) -> Shown {
        Shown(escape::shown_bytes(value))
    }

    /// The shown form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The facts a decision line names about one recipient of a message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LineFacts<'a> {
    /// The verified client host name (`None`: logged as `unknown`).
    pub client_name: Option<&'a str>,
    /// The client address (`None`, a local injection: logged as `none`).
    pub client_ip: Option<IpAddr>,
    /// The envelope sender, shown.
    pub sender: &'a Shown,
    /// This recipient, shown.
    pub recipient: &'a Shown,
}

impl LineFacts<'_> {
    fn client_name(&self) -> String {
        self.client_name
            .map_or_else(|| "unknown".to_string(), escape::shown)
    }
}

/// The decision line for one recipient:
/// `action=<verdict>, reason=<reason>[ (<n>s missing)|, delay=<n>], client_name=..., ...`.
pub(crate) fn decision_line(decision: &Decision, facts: &LineFacts<'_>) -> String {
    let mut reason = decision.reason.as_str().to_string();
    match (decision.reason, &decision.write, decision.delay) {
        (Reason::EarlyRetry, Some(triplet), _) => {
            // Postgrey's form; `last_seen` of the written triplet is the decision time.
            let missing = triplet.earliest_accept.saturating_sub(triplet.last_seen);
            reason = format!("{reason} ({missing}s missing)");
        }
        (Reason::TripletFound, _, Some(delay)) => reason = format!("{reason}, delay={delay}"),
        // The listing zone is part of the reason (`dnswl list.dnswl.org`); it comes from the
        // store, so it is escaped like every stored value.
        (Reason::Dnswl, _, _) => {
            if let Some(zone) = &decision.pattern {
                reason = format!("{reason} {}", escape::shown(zone));
            }
        }
        _ => {}
    }
    line(decision.verdict.as_str(), &reason, facts)
}

/// The line for a recipient that could not be decided (the store failed): the mail passes and
/// the line says why. `why` is our own error (written through `Display`), not a client value.
pub(crate) fn failure_line(
    why: &(impl std::fmt::Display + ?Sized),
    facts: &LineFacts<'_>,
) -> String {
    line("pass", &format!("error: {why}"), facts)
}

/// Plesk's list-hit line, when a list pattern decided: `list type: <black|white>, from: <host or
/// sender>, match string: <pattern>`.
pub(crate) fn list_hit_line(decision: &Decision, facts: &LineFacts<'_>) -> Option<String> {
    let (Some(list_type), Some(pattern)) = (decision.reason.list_type(), &decision.pattern) else {
        return None;
    };
    let from = match decision.reason {
        Reason::WhiteHost | Reason::BlackHost => facts.client_name(),
        _ => facts.sender.as_str().to_string(),
    };
    Some(format!(
        "list type: {list_type}, from: {from}, match string: {}",
        escape::escape(pattern)
    ))
}

/// The line for a DNS list zone that gave no answer within the budget (the message is decided
/// as if the zone did not list the client):
/// `dns: no answer from <zone> for <ip> within <budget in seconds> s`.
pub(crate) fn dns_no_answer_line(zone: &str, ip: IpAddr, budget: Duration) -> String {
    format!(
        "dns: no answer from {} for {ip} within {} s",
        escape::shown(zone),
        budget.as_secs_f64()
    )
}

/// The line for a zone whose lookup a daemon abandoned when SIGHUP set its resolver up again:
/// the zone counts as not listed for that request, as after a timeout.
pub(crate) fn dns_abandoned_line(zone: &str, ip: IpAddr) -> String {
    format!(
        "dns: no answer from {} for {ip} (abandoned: SIGHUP)",
        escape::shown(zone)
    )
}

fn line(action: &str, reason: &str, facts: &LineFacts<'_>) -> String {
    format!(
        "action={action}, reason={reason}, client_name={}, client_address={}, sender={}, recipient={}",
        facts.client_name(),
        facts
            .client_ip
            .map_or_else(|| "none".to_string(), |ip| ip.to_string()),
        facts.sender.as_str(),
        facts.recipient.as_str(),
    )
}

/// The line for a panic while deciding a batch of `count` `what`s (requests, recipients), all
/// of which were then given `outcome`; both daemons write it, in this one form.
pub(crate) fn panic_line(
    count: usize,
    what: &str,
    outcome: &str,
    payload: &(dyn Any + Send),
) -> String {
    format!(
        "panic while deciding a batch of {count} {what}{}, {outcome}: {}",
        if count == 1 { "" } else { "s" },
        panic_text(payload)
    )
}

/// The message a panic was raised with (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::panic;

    use super::*;
    use crate::decision::Verdict;
    use crate::store::Triplet;

    fn decision(verdict: Verdict, reason: Reason) -> Decision {
        Decision {
            verdict,
            reason,
            pattern: None,
            delay: None,
            write: None,
        }
    }

    #[test]
    fn early_retries_and_first_passes_carry_postgrey_details() {
        let sender = Shown::text("a@s.example");
        let recipient = Shown::text("u@l.example");
        let facts = LineFacts {
            client_name: Some("mx.s.example"),
            client_ip: "192.0.2.7".parse().ok(),
            sender: &sender,
            recipient: &recipient,
        };
        let early = Decision {
            write: Some(Triplet {
                first_seen: 0,
                earliest_accept: 300,
                last_seen: 60,
                expires: 999,
                pass_count: 0,
            }),
            ..decision(Verdict::Defer, Reason::EarlyRetry)
        };
        assert_eq!(
            decision_line(&early, &facts),
            "action=defer, reason=early-retry (240s missing), client_name=mx.s.example, \
             client_address=192.0.2.7, sender=a@s.example, recipient=u@l.example"
        );
        let first = Decision {
            delay: Some(400),
            ..decision(Verdict::Pass, Reason::TripletFound)
        };
        assert!(
            decision_line(&first, &facts)
                .starts_with("action=pass, reason=triplet found, delay=400, client_name=")
        );
        assert_eq!(list_hit_line(&first, &facts), None);
    }

    // Selective greylisting's passes: the DNSWL pass names its zone, the trusted client passes
    // by a fixed text; neither writes Plesk's list-hit line.
    #[test]
    fn dns_list_and_trusted_client_reasons() {
        let sender = Shown::text("a@s.example");
        let recipient = Shown::text("u@l.example");
        let facts = LineFacts {
            client_name: Some("mx.s.example"),
            client_ip: "192.0.2.7".parse().ok(),
            sender: &sender,
            recipient: &recipient,
        };
        let dnswl = Decision {
            pattern: Some("list.dnswl.example, x".to_string()),
            ..decision(Verdict::Pass, Reason::Dnswl)
        };
        assert!(
            decision_line(&dnswl, &facts)
                .starts_with("action=pass, reason=dnswl list.dnswl.example\\x2c x, client_name=")
        );
        assert_eq!(list_hit_line(&dnswl, &facts), None);
        let trusted = decision(Verdict::Pass, Reason::TrustedClient);
        assert!(
            decision_line(&trusted, &facts)
                .starts_with("action=pass, reason=trusted client, client_name=mx.s.example, ")
        );
        assert_eq!(list_hit_line(&trusted, &facts), None);
    }

    #[test]
    fn a_dns_zone_without_answer_is_one_escaped_line() {
        let ip = "2001:db8::7".parse().expect("address");
        assert_eq!(
            dns_no_answer_line("list.example", ip, crate::dns::BUDGET),
            "dns: no answer from list.example for 2001:db8::7 within 1.5 s"
        );
        assert_eq!(
            dns_no_answer_line("a, b\n\\c", ip, Duration::from_secs(2)),
            "dns: no answer from a\\x2c b\\x0a\\\\c for 2001:db8::7 within 2 s"
        );
    }

    #[test]
    fn hostile_values_cannot_forge_a_field() {
        let sender = Shown::bytes(b"x, recipient=root@h\n\xff");
        let recipient = Shown::text("u@l.example");
        let facts = LineFacts {
            client_name: Some("evil, action=pass"),
            client_ip: None,
            sender: &sender,
            recipient: &recipient,
        };
        let hit = Decision {
            pattern: Some("evil*".to_string()),
            ..decision(Verdict::Reject, Reason::BlackHost)
        };
        assert_eq!(
            decision_line(&hit, &facts),
            "action=reject, reason=black domains pattern, client_name=evil\\x2c action=pass, \
             client_address=none, sender=x\\x2c recipient=root@h\\x0a\\xff, recipient=u@l.example"
        );
        assert_eq!(
            list_hit_line(&hit, &facts).as_deref(),
            Some("list type: black, from: evil\\x2c action=pass, match string: evil*")
        );
        assert!(
            failure_line("database locked", &facts)
                .starts_with("action=pass, reason=error: database locked, client_name=evil\\x2c")
        );
    }

    #[test]
    fn panic_line_counts_and_names_the_batch() {
        let payload = panic::catch_unwind(|| panic!("boom")).unwrap_err();
        assert_eq!(
            panic_line(1, "recipient", "all passed", payload.as_ref()),
            "panic while deciding a batch of 1 recipient, all passed: boom"
        );
        assert_eq!(
            panic_line(3, "request", "all answered DUNNO", payload.as_ref()),
            "panic while deciding a batch of 3 requests, all answered DUNNO: boom"
        );
    }

    #[test]
    fn panic_text_reads_both_payload_kinds() {
        let text = panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_text(text.as_ref()), "plain");
        let formatted = panic::catch_unwind(|| panic!("n={}", 3)).unwrap_err();
        assert_eq!(panic_text(formatted.as_ref()), "n=3");
    }
}
