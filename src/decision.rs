//! The greylisting decision (SPEC §4) as pure functions: settings, lists, triplet state, request
//! and time in; verdict, reason and the triplet record to write out. No I/O, no clock.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::config::{ListKind, MailboxLists, ServerLists, Settings};
use crate::pattern::{Pattern, first_match};
use crate::store::Triplet;

/// What happens to the mail for one recipient (or a whole message).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Accept.
    Pass,
    /// Temporary failure: the sender should retry.
    Defer,
    /// Permanent failure.
    Reject,
}

impl Verdict {
    /// Lower-case name used in log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Defer => "defer",
            Verdict::Reject => "reject",
        }
    }
}

/// Which rule of SPEC §4 decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// Checking is off server-wide.
    Disabled,
    /// Checking is off for the recipient's domain.
    DomainDisabled,
    /// The client authenticated (SMTP AUTH or a relay client).
    Authenticated,
    /// No client address: a local injection.
    LocalInjection,
    /// The client host name matched a white domains pattern.
    WhiteHost,
    /// The client host name matched a black domains pattern.
    BlackHost,
    /// The sender matched the recipient's own white list.
    MailboxWhite,
    /// The sender matched the recipient's own black list.
    MailboxBlack,
    /// The sender matched the server white list.
    ServerWhite,
    /// The sender matched the server black list.
    ServerBlack,
    /// The client network is auto-whitelisted.
    ClientAwl,
    /// Unknown or expired triplet: recorded, deferred.
    New,
    /// Known triplet retried before its earliest-accept time.
    EarlyRetry,
    /// Known triplet retried in time: accepted.
    TripletFound,
}

impl Reason {
    /// The text used in log lines (`reason=<...>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Disabled => "disabled",
            Reason::DomainDisabled => "disabled for domain",
            Reason::Authenticated => "authenticated",
            Reason::LocalInjection => "no client address",
            Reason::WhiteHost => "white domains pattern",
            Reason::BlackHost => "black domains pattern",
            Reason::MailboxWhite => "user white list",
            Reason::MailboxBlack => "user black list",
            Reason::ServerWhite => "server white list",
            Reason::ServerBlack => "server black list",
            Reason::ClientAwl => "client AWL",
            Reason::New => "new",
            Reason::EarlyRetry => "early-retry",
            Reason::TripletFound => "triplet found",
        }
    }

    /// Plesk's list type (`black`/`white`) for list hits, as logged by its filter.
    pub fn list_type(self) -> Option<&'static str> {
        match self {
            Reason::WhiteHost | Reason::MailboxWhite | Reason::ServerWhite => Some("white"),
            Reason::BlackHost | Reason::MailboxBlack | Reason::ServerBlack => Some("black"),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome for one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Pass, defer or reject.
    pub verdict: Verdict,
    /// The rule that decided.
    pub reason: Reason,
    /// The list pattern that matched, for list rules.
    pub pattern: Option<String>,
    /// Seconds the triplet waited, on its first pass only (for `X-Greylist`).
    pub delay: Option<i64>,
    /// The triplet record to store, when the rule touches one.
    pub write: Option<Triplet>,
}

impl Decision {
    fn by_rule(verdict: Verdict, reason: Reason) -> Decision {
        Decision {
            verdict,
            reason,
            pattern: None,
            delay: None,
            write: None,
        }
    }

    fn by_pattern(verdict: Verdict, reason: Reason, pattern: &Pattern) -> Decision {
        Decision {
            pattern: Some(pattern.as_str().to_string()),
            ..Decision::by_rule(verdict, reason)
        }
    }
}

/// The facts about one recipient of a message.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Client IP address; `None` for local injection.
    pub client_ip: Option<IpAddr>,
    /// Verified (forward-confirmed) client host name, if any.
    pub client_name: Option<&'a str>,
    /// Envelope sender as given (empty for bounces).
    pub sender: &'a str,
    /// Envelope recipient as given.
    pub recipient: &'a str,
    /// Whether the client authenticated or is a relay client.
    pub authenticated: bool,
}

/// Server-wide lists, compiled.
#[derive(Debug, Clone)]
pub struct CompiledLists {
    black: Vec<Pattern>,
    white: Vec<Pattern>,
    domains_white: Vec<Pattern>,
    domains_black: Vec<Pattern>,
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
        }
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

/// What the store knows about the client and the triplet.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientState {
    /// Distinct unexpired triplets the client network has passed.
    pub awl_passes: u64,
    /// The triplet's stored record, expired or not.
    pub triplet: Option<Triplet>,
}

/// The result of the rules that need no triplet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOutcome {
    /// A rule decided.
    Decided(Decision),
    /// No rule decided: greylist the client at this address (steps 5–6).
    Greylist(IpAddr),
}

/// Steps 1–4 of SPEC §4: the rules that need no triplet.
pub fn decide_by_policy(
    settings: &Settings,
    lists: &CompiledLists,
    recipient: &RecipientPolicy,
    request: &Request<'_>,
) -> PolicyOutcome {
    match policy_rules(settings, lists, recipient, request) {
        Some(decision) => PolicyOutcome::Decided(decision),
        None => match request.client_ip {
            Some(ip) => PolicyOutcome::Greylist(ip),
            None => {
                PolicyOutcome::Decided(Decision::by_rule(Verdict::Pass, Reason::LocalInjection))
            }
        },
    }
}

fn policy_rules(
    settings: &Settings,
    lists: &CompiledLists,
    recipient: &RecipientPolicy,
    request: &Request<'_>,
) -> Option<Decision> {
    if !settings.enabled {
        return Some(Decision::by_rule(Verdict::Pass, Reason::Disabled));
    }
    if recipient.domain_enabled == Some(false) {
        return Some(Decision::by_rule(Verdict::Pass, Reason::DomainDisabled));
    }
    if request.authenticated {
        return Some(Decision::by_rule(Verdict::Pass, Reason::Authenticated));
    }
    if request.client_ip.is_none() {
        return Some(Decision::by_rule(Verdict::Pass, Reason::LocalInjection));
    }
    if let Some(host) = request.client_name {
        if let Some(pattern) = first_match(&lists.domains_white, host) {
            return Some(Decision::by_pattern(
                Verdict::Pass,
                Reason::WhiteHost,
                pattern,
            ));
        }
        if let Some(pattern) = first_match(&lists.domains_black, host) {
            return Some(Decision::by_pattern(
                Verdict::Reject,
                Reason::BlackHost,
                pattern,
            ));
        }
    }
    let sender = request.sender;
    let mut address_lists: Vec<(&[Pattern], Verdict, Reason)> = Vec::with_capacity(4);
    if settings.personal_conf {
        address_lists.push((&recipient.white, Verdict::Pass, Reason::MailboxWhite));
        address_lists.push((&recipient.black, Verdict::Reject, Reason::MailboxBlack));
    }
    address_lists.push((&lists.white, Verdict::Pass, Reason::ServerWhite));
    address_lists.push((&lists.black, Verdict::Reject, Reason::ServerBlack));
    address_lists
        .into_iter()
        .find_map(|(patterns, verdict, reason)| {
            first_match(patterns, sender)
                .map(|pattern| Decision::by_pattern(verdict, reason, pattern))
        })
}

/// Steps 5–6 of SPEC §4: the auto-whitelist, then the triplet itself.
pub fn decide_by_triplet(settings: &Settings, client: &ClientState, now: i64) -> Decision {
    let live = client.triplet.filter(|t| t.expires > now);
    let expire = i64::from(settings.expire_interval) * 60;
    let passed = |triplet: Triplet, delay: Option<i64>, reason: Reason| Decision {
        verdict: Verdict::Pass,
        reason,
        pattern: None,
        delay,
        write: Some(Triplet {
            last_seen: now,
            expires: now.saturating_add(expire),
            pass_count: triplet.pass_count.saturating_add(1),
            ..triplet
        }),
    };
    if settings.awl_count > 0 && client.awl_passes >= u64::from(settings.awl_count) {
        let base = live.unwrap_or(Triplet {
            first_seen: now,
            earliest_accept: now,
            last_seen: now,
            expires: now,
            pass_count: 0,
        });
        return passed(base, None, Reason::ClientAwl);
    }
    let Some(triplet) = live else {
        let grey = i64::from(settings.grey_interval) * 60;
        return Decision {
            write: Some(Triplet {
                first_seen: now,
                earliest_accept: now.saturating_add(grey),
                last_seen: now,
                expires: now.saturating_add(expire),
                pass_count: 0,
            }),
            ..Decision::by_rule(Verdict::Defer, Reason::New)
        };
    };
    if now < triplet.earliest_accept {
        let penalty = if settings.penalty_enabled {
            i64::from(settings.penalty_interval) * 60
        } else {
            0
        };
        return Decision {
            write: Some(Triplet {
                earliest_accept: triplet.earliest_accept.saturating_add(penalty),
                last_seen: now,
                ..triplet
            }),
            ..Decision::by_rule(Verdict::Defer, Reason::EarlyRetry)
        };
    }
    let delay = (triplet.pass_count == 0).then(|| now.saturating_sub(triplet.first_seen));
    passed(triplet, delay, Reason::TripletFound)
}

/// SPEC §4's rule for a message with several recipients: deferred if any recipient defers,
/// rejected only if all reject, otherwise passed. An empty list passes.
pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
    let mut any = false;
    let mut all_reject = true;
    let mut any_defer = false;
    for verdict in verdicts {
        any = true;
        any_defer |= verdict == Verdict::Defer;
        all_reject &= verdict == Verdict::Reject;
    }
    if any_defer {
        Verdict::Defer
    } else if any && all_reject {
        Verdict::Reject
    } else {
        Verdict::Pass
    }
}

/// The triplet sender: lower-cased, and with `normalize` folded so that the VERP, BATV and
/// sub-address variants of one list's sender count as one (SPEC §4).
pub fn triplet_sender(sender: &str, normalize: bool) -> String {
    let sender = sender.to_lowercase();
    if !normalize {
        return sender;
    }
    let Some((local, domain)) = sender.rsplit_once('@') else {
        return sender;
    };
    let local = strip_batv(local);
    let local = local.split_once('+').map_or(local, |(base, _)| base);
    let mut folded = String::with_capacity(local.len());
    let mut in_digits = false;
    for c in local.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                folded.push('#');
            }
            in_digits = true;
        } else {
            folded.push(c);
            in_digits = false;
        }
    }
    format!("{folded}@{domain}")
}

/// Strips a BATV tag: `prvs=<tag>=<local>` and Microsoft's `msprvs1=<tag>=<local>`.
fn strip_batv(local: &str) -> &str {
    for prefix in ["prvs=", "msprvs1=", "btv1="] {
        if let Some(rest) = local.strip_prefix(prefix)
            && let Some((_, original)) = rest.split_once('=')
            && !original.is_empty()
        {
            return original;
        }
    }
    local
}

/// The client network holding `ip`, as `address/prefix` (IPv4-mapped IPv6 counts as IPv4).
pub fn client_network(ip: IpAddr, settings: &Settings) -> String {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let prefix = settings.ipv4_prefix.min(32);
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            let network = std::net::Ipv4Addr::from(u32::from(v4) & mask);
            format!("{network}/{prefix}")
        }
        IpAddr::V6(v6) => {
            let prefix = settings.ipv6_prefix.min(128);
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            let network = std::net::Ipv6Addr::from(u128::from(v6) & mask);
            format!("{network}/{prefix}")
        }
    }
}
