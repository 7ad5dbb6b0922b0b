//! Steps 1–4b of DESIGN.md §4: the server and mailbox lists and the other rules that need no
//! triplet.

use std::net::IpAddr;

use crate::bounds;
use crate::config::{ListKind, MailboxLists, ServerLists, Settings};
use crate::pattern::{Pattern, first_match};

use super::*;

/// Server-wide lists, compiled.
#[derive(Debug, Clone)]
pub struct CompiledLists {
    black: Vec<Pattern>,
    white: Vec<Pattern>,
    domains_white: Vec<Pattern>,
    domains_black: Vec<Pattern>,
    pub(super) dnswl_zones: Vec<String>,
    pub(super) dnsbl_zones: Vec<String>,
}

impl CompiledLists {
    /// Compiles the server-wide lists.
    pub fn new(lists: &ServerLists) -> CompiledLists {
        let compile = |kind: ListKind| lists.get(kind).iter().map(|p| kind.compile(p)).collect();
        CompiledLists {
            black: compile(ListKind::Black),
            white: compile(ListKind::White),
            domains_white: compile(ListKind::DomainsWhite),
            domains_black: compile(ListKind::DomainsBlack),
            dnswl_zones: lists.dnswl_zones.clone(),
            dnsbl_zones: lists.dnsbl_zones.clone(),
        }
    }

    /// The DNS whitelist zones, in list order.
    pub fn dnswl_zones(&self) -> &[String] {
        &self.dnswl_zones
    }

    /// The DNS blocklist zones, in list order.
    pub fn dnsbl_zones(&self) -> &[String] {
        &self.dnsbl_zones
    }

    /// The black host patterns (also used to tell end-user lines from mail servers).
    pub fn domains_black(&self) -> &[Pattern] {
        &self.domains_black
    }
}

/// What the store knows about the recipient.
#[derive(Debug, Clone, Default)]
pub struct RecipientPolicy {
    /// The recipient domain's own checking flag (`None` = never set = enabled).
    pub domain_enabled: Option<bool>,
    /// The recipient's own lists, compiled.
    pub black: Vec<Pattern>,
    /// The recipient's own white list, compiled.
    pub white: Vec<Pattern>,
}

impl RecipientPolicy {
    /// Builds it from stored values.
    pub fn new(domain_enabled: Option<bool>, mailbox: &MailboxLists) -> RecipientPolicy {
        RecipientPolicy {
            domain_enabled,
            black: mailbox.black.iter().map(|p| Pattern::address(p)).collect(),
            white: mailbox.white.iter().map(|p| Pattern::address(p)).collect(),
        }
    }
}

/// The result of the rules that need no triplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// A rule decided.
    Decided(Decision),
    /// No rule decided: greylist the client at this address (steps 5–6).
    Greylist(IpAddr),
}

/// Steps 1–4, 4a and 4b of DESIGN.md §4: the rules that need no triplet.
pub fn decide_by_policy(
    settings: &Settings,
    lists: &CompiledLists,
    recipient: &RecipientPolicy,
    request: &Request<'_>,
) -> PolicyOutcome {
    decide_by_policy_traced(settings, lists, recipient, request, &mut Trace::off())
}

/// [`decide_by_policy`], recording each check in `trace`.
pub fn decide_by_policy_traced(
    settings: &Settings,
    lists: &CompiledLists,
    recipient: &RecipientPolicy,
    request: &Request<'_>,
    trace: &mut Trace,
) -> PolicyOutcome {
    if let Some(decision) = policy_rules(settings, lists, recipient, request, trace) {
        return PolicyOutcome::Decided(decision);
    }
    let Some(ip) = request.client_ip else {
        return PolicyOutcome::Decided(Decision::by_rule(Verdict::Pass, Reason::LocalInjection));
    };
    match clients::dns_rules(settings, lists, request, ip, trace) {
        Some(decision) => PolicyOutcome::Decided(decision),
        None => PolicyOutcome::Greylist(ip),
    }
}

/// Steps 1–4 alone (no DNS answers needed): the decision when one of them decides. A client
/// that none of them decides is the one whose DNS lists are worth asking.
pub fn decide_by_lists(
    settings: &Settings,
    lists: &CompiledLists,
    recipient: &RecipientPolicy,
    request: &Request<'_>,
) -> Option<Decision> {
    policy_rules(settings, lists, recipient, request, &mut Trace::off())
}

fn policy_rules(
    settings: &Settings,
    lists: &CompiledLists,
    recipient: &RecipientPolicy,
    request: &Request<'_>,
    trace: &mut Trace,
) -> Option<Decision> {
    trace.push(|| Step::Server {
        enabled: settings.enabled,
    });
    if !settings.enabled {
        return Some(Decision::by_rule(Verdict::Pass, Reason::Disabled));
    }
    trace.push(|| Step::Domain {
        enabled: recipient.domain_enabled,
    });
    if recipient.domain_enabled == Some(false) {
        return Some(Decision::by_rule(Verdict::Pass, Reason::DomainDisabled));
    }
    trace.push(|| Step::Authentication {
        authenticated: request.authenticated,
    });
    if request.authenticated {
        return Some(Decision::by_rule(Verdict::Pass, Reason::Authenticated));
    }
    if request.client_ip.is_none() {
        trace.push(|| Step::LocalInjection);
        return Some(Decision::by_rule(Verdict::Pass, Reason::LocalInjection));
    }
    // A name too long to be a DNS name, or a sender over the value limit, matches no pattern:
    // it is greylisted under its bounded key, and costs the matcher nothing.
    let client_name = request.verified_name(settings);
    let host_lists = [
        (&lists.domains_white, Verdict::Pass, Reason::WhiteHost),
        (&lists.domains_black, Verdict::Reject, Reason::BlackHost),
    ];
    for (patterns, verdict, rule) in host_lists {
        let decided = list_rule(patterns, client_name, bounds::host_matchable, rule, trace);
        if let Some(pattern) = decided {
            return Some(Decision::by_pattern(verdict, rule, pattern));
        }
    }
    let address_lists = [
        (&recipient.white, Verdict::Pass, Reason::MailboxWhite, true),
        (
            &recipient.black,
            Verdict::Reject,
            Reason::MailboxBlack,
            true,
        ),
        (&lists.white, Verdict::Pass, Reason::ServerWhite, false),
        (&lists.black, Verdict::Reject, Reason::ServerBlack, false),
    ];
    for (patterns, verdict, rule, personal) in address_lists {
        if personal && !settings.personal_conf {
            trace.push(|| Step::List {
                rule,
                seen: ListSeen::Skipped,
            });
            continue;
        }
        let sender = Some(request.sender);
        if let Some(pattern) = list_rule(patterns, sender, bounds::sender_matchable, rule, trace) {
            return Some(Decision::by_pattern(verdict, rule, pattern));
        }
    }
    None
}

/// One list check: the first pattern of `patterns` that `value` matches, if `value` is there
/// and `matchable`; the check is recorded in `trace` as `rule`.
fn list_rule<'p>(
    patterns: &'p [Pattern],
    value: Option<&str>,
    matchable: fn(&str) -> bool,
    rule: Reason,
    trace: &mut Trace,
) -> Option<&'p Pattern> {
    let Some(value) = value else {
        trace.push(|| Step::List {
            rule,
            seen: ListSeen::Absent,
        });
        return None;
    };
    if !matchable(value) {
        trace.push(|| Step::List {
            rule,
            seen: ListSeen::TooLong(value.to_string()),
        });
        return None;
    }
    let found = first_match(patterns, value);
    trace.push(|| Step::List {
        rule,
        seen: match found {
            Some(pattern) => ListSeen::Match {
                value: value.to_string(),
                pattern: pattern.as_str().to_string(),
            },
            None => ListSeen::NoMatch(value.to_string()),
        },
    });
    found
}
