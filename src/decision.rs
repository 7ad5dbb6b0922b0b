//! The greylisting decision (DESIGN.md §4) as pure functions: settings, lists, triplet state, request
//! and time in; verdict, reason and the triplet record to write out. No I/O, no clock.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::bounds;
use crate::config::{ListKind, MailboxLists, ServerLists, Settings};
use crate::dns::DnsFacts;
use crate::pattern::{Pattern, first_match};
use crate::store::Triplet;

mod clients;
mod embeds;
mod trace;

pub use clients::{Suspicion, ZoneSeen, name_suspicion, verified_name};
pub use embeds::embeds_address;

pub use trace::{ListSeen, Step, Trace, TripletSeen};

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

/// Which rule of DESIGN.md §4 decided.
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
    /// The client address is listed on a DNS whitelist zone (the zone is the decision's
    /// `pattern`; logged as `dnswl <zone>`).
    Dnswl,
    /// Selective greylisting: the client is not suspicious.
    TrustedClient,
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
            Reason::Dnswl => "dnswl",
            Reason::TrustedClient => "trusted client",
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
    /// The list pattern that matched, for list rules; the listing zone for [`Reason::Dnswl`].
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
    /// Client host name, if any: verified (forward-confirmed) unless `client_name_unconfirmed`.
    pub client_name: Option<&'a str>,
    /// Whether nobody verified `client_name` yet (the filter's name from a qmail-form
    /// `Received:` header): with `greylist-clients suspicious` it then counts only when
    /// `dns.forward` is [`crate::dns::Forward::Confirmed`].
    pub client_name_unconfirmed: bool,
    /// What DNS said about the client (zones not in the facts count as not listed).
    pub dns: &'a DnsFacts,
    /// Envelope sender as given (empty for bounces).
    pub sender: &'a str,
    /// Envelope recipient as given.
    pub recipient: &'a str,
    /// Whether the client authenticated or is a relay client.
    pub authenticated: bool,
}

impl<'a> Request<'a> {
    /// The client host name the rules may use ([`verified_name`]).
    pub fn verified_name(&self, settings: &Settings) -> Option<&'a str> {
        verified_name(
            settings,
            self.client_name,
            self.client_name_unconfirmed,
            self.dns,
        )
    }
}

/// Server-wide lists, compiled.
#[derive(Debug, Clone)]
pub struct CompiledLists {
    black: Vec<Pattern>,
    white: Vec<Pattern>,
    domains_white: Vec<Pattern>,
    domains_black: Vec<Pattern>,
    dnswl_zones: Vec<String>,
    dnsbl_zones: Vec<String>,
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

/// Steps 5–6 of DESIGN.md §4: the auto-whitelist, then the triplet itself.
pub fn decide_by_triplet(settings: &Settings, client: &ClientState, now: i64) -> Decision {
    decide_by_triplet_traced(settings, client, now, &mut Trace::off())
}

/// [`decide_by_triplet`], recording each check in `trace`.
pub fn decide_by_triplet_traced(
    settings: &Settings,
    client: &ClientState,
    now: i64,
    trace: &mut Trace,
) -> Decision {
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
    let whitelisted = settings.awl_count > 0 && client.awl_passes >= u64::from(settings.awl_count);
    trace.push(|| Step::Awl {
        needed: settings.awl_count,
        passes: client.awl_passes,
        whitelisted,
    });
    if whitelisted {
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
        trace.push(|| {
            Step::Triplet(match client.triplet {
                Some(_) => TripletSeen::Expired,
                None => TripletSeen::Unknown,
            })
        });
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
        trace.push(|| {
            Step::Triplet(TripletSeen::Early {
                left: triplet.earliest_accept.saturating_sub(now),
            })
        });
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
    trace.push(|| Step::Triplet(TripletSeen::InTime));
    let delay = (triplet.pass_count == 0).then(|| now.saturating_sub(triplet.first_seen));
    passed(triplet, delay, Reason::TripletFound)
}

/// DESIGN.md §4's rule for a message with several recipients: deferred if any recipient defers,
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
/// sub-address variants of one list's sender count as one (DESIGN.md §4).
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

/// How a client is keyed in its triplets (DESIGN.md §4 "Client key").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyBasis {
    /// Keyed by the registrable domain of its verified host name.
    HostDomain,
    /// Keyed by network: `group-by-host-domain` is off.
    NetworkGroupingOff,
    /// Keyed by network: no verified host name.
    NetworkNoHostName,
    /// Keyed by network: the host name embeds the client address (an end-user line).
    NetworkAddressInName,
    /// Keyed by network: the host name matches a black domains pattern.
    NetworkBlackPattern,
    /// Keyed by network: the host name has no registrable domain in the public suffix list.
    NetworkNoRegistrableDomain,
}

impl KeyBasis {
    /// A short explanation, for `--explain`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyBasis::HostDomain => "registrable domain of the verified host name",
            KeyBasis::NetworkGroupingOff => "client network (group-by-host-domain is off)",
            KeyBasis::NetworkNoHostName => "client network (no verified host name)",
            KeyBasis::NetworkAddressInName => {
                "client network (host name contains the client address: end-user line)"
            }
            KeyBasis::NetworkBlackPattern => {
                "client network (host name matches a black domains pattern)"
            }
            KeyBasis::NetworkNoRegistrableDomain => {
                "client network (host name has no registrable domain)"
            }
        }
    }
}

/// The key a client's triplets are stored under, with the network its auto-whitelist uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientKey {
    /// The triplet's client key: the network (`192.0.2.0/24`) or a domain (`outlook.com`).
    pub key: String,
    /// The client network (always: the auto-whitelist is keyed by it).
    pub network: String,
    /// The sender organisation: the registrable domain of a host name that is not an end-user
    /// line, whether or not grouping is on (reports group by it).
    pub organisation: Option<String>,
    /// Why the key is what it is.
    pub basis: KeyBasis,
}

/// The client key of DESIGN.md §4: the client network, or — with `group-by-host-domain` — the
/// registrable domain of a verified host name that does not look like an end-user line.
pub fn client_key(
    ip: IpAddr,
    client_name: Option<&str>,
    settings: &Settings,
    domains_black: &[Pattern],
) -> ClientKey {
    let network = client_network(ip, settings);
    let (organisation, basis) = match host_organisation(ip, client_name, domains_black) {
        Ok(domain) if settings.group_by_host_domain => (Some(domain), KeyBasis::HostDomain),
        Ok(domain) => (Some(domain), KeyBasis::NetworkGroupingOff),
        Err(basis) => (None, basis),
    };
    let key = match (&organisation, basis) {
        (Some(domain), KeyBasis::HostDomain) => domain.clone(),
        _ => network.clone(),
    };
    ClientKey {
        key,
        network,
        organisation,
        basis,
    }
}

/// The registrable domain of a host name fit to stand for a sender organisation, or why not.
fn host_organisation(
    ip: IpAddr,
    client_name: Option<&str>,
    domains_black: &[Pattern],
) -> Result<String, KeyBasis> {
    if client_name.is_some_and(|name| !bounds::host_matchable(name.trim().trim_end_matches('.'))) {
        return Err(KeyBasis::NetworkNoRegistrableDomain);
    }
    let host = client_name
        .map(|name| name.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|name| !name.is_empty() && name != "unknown")
        .ok_or(KeyBasis::NetworkNoHostName)?;
    if embeds_address(&host, ip) {
        return Err(KeyBasis::NetworkAddressInName);
    }
    if first_match(domains_black, &host).is_some() {
        return Err(KeyBasis::NetworkBlackPattern);
    }
    // A domain that is itself a public suffix (or a single label) names no organisation.
    match psl::domain_str(&host) {
        Some(domain) if domain.contains('.') && psl::suffix_str(&host) != Some(&host) => {
            Ok(domain.to_string())
        }
        _ => Err(KeyBasis::NetworkNoRegistrableDomain),
    }
}

#[cfg(test)]
mod client_key_tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn black() -> Vec<Pattern> {
        crate::config::DEFAULT_DOMAINS_BLACKLIST
            .iter()
            .map(|p| Pattern::host(p))
            .collect()
    }

    // DESIGN.md §4 "Client key": a provider's outbound servers share one key.
    #[test]
    fn verified_server_names_are_keyed_by_registrable_domain() {
        let settings = Settings::default();
        for (addr, host, domain) in [
            (
                "40.107.22.51",
                "mail-db5eur03on2051.outbound.protection.outlook.com",
                "outlook.com",
            ),
            ("209.85.220.41", "mail-sor-f41.google.com", "google.com"),
            (
                "54.240.8.17",
                "a8-17.smtp-out.amazonses.com",
                "amazonses.com",
            ),
            ("198.51.100.7", "mx1.example.co.uk.", "example.co.uk"),
        ] {
            let key = client_key(ip(addr), Some(host), &settings, &black());
            assert_eq!(key.key, domain, "{host}");
            assert_eq!(key.basis, KeyBasis::HostDomain);
            assert_eq!(key.network, client_network(ip(addr), &settings));
        }
    }

    // DESIGN.md §4: end-user lines, black-pattern hosts and missing names keep the network key.
    #[test]
    fn end_user_lines_keep_the_network_key() {
        let settings = Settings::default();
        let cases = [
            (
                "198.51.100.7",
                Some("c-198-51-100-7.hsd1.ma.comcast.net"),
                KeyBasis::NetworkAddressInName,
            ),
            (
                "198.51.100.7",
                Some("7.100.51.198.in-addr.example.net"),
                KeyBasis::NetworkAddressInName,
            ),
            (
                "198.51.100.7",
                Some("host198051100007.isp.example"),
                KeyBasis::NetworkAddressInName,
            ),
            (
                "198.51.100.7",
                Some("dyn-51-100-7.isp.example"),
                KeyBasis::NetworkAddressInName,
            ),
            (
                "198.51.100.7",
                Some("ip-c6336407.isp.example"),
                KeyBasis::NetworkAddressInName,
            ),
            (
                "198.51.100.7",
                Some("x3325256711.isp.example"),
                KeyBasis::NetworkAddressInName,
            ),
            (
                "2001:db8::1:5",
                Some("2001-db8-0-0-0-0-1-5.v6.isp.example"),
                KeyBasis::NetworkAddressInName,
            ),
            (
                "2001:db8::1:5",
                Some("ip6-20010db8000000000000000000010005.isp.example"),
                KeyBasis::NetworkAddressInName,
            ),
            (
                "198.51.100.7",
                Some("adsl.customers.isp.example"),
                KeyBasis::NetworkBlackPattern,
            ),
            ("198.51.100.7", None, KeyBasis::NetworkNoHostName),
            (
                "198.51.100.7",
                Some("co.uk"),
                KeyBasis::NetworkNoRegistrableDomain,
            ),
        ];
        for (addr, host, basis) in cases {
            let key = client_key(ip(addr), host, &settings, &black());
            assert_eq!(key.basis, basis, "{host:?}");
            assert_eq!(key.key, key.network, "{host:?}");
        }
    }

    // DESIGN.md §4: with grouping off the key is the network, the organisation is still known.
    #[test]
    fn grouping_off_keys_by_network() {
        let settings = Settings {
            group_by_host_domain: false,
            ..Settings::default()
        };
        let key = client_key(
            ip("203.0.113.9"),
            Some("mta9.mailer.example.com"),
            &settings,
            &[],
        );
        assert_eq!(key.key, "203.0.113.0/24");
        assert_eq!(key.organisation.as_deref(), Some("example.com"));
        assert_eq!(key.basis, KeyBasis::NetworkGroupingOff);
    }

    proptest::proptest! {
        // The mail path never panics: any host name text, any address, any prefixes.
        #[test]
        fn client_key_never_panics(
            host in "\\PC{0,80}",
            v4 in proptest::prelude::any::<u32>(),
            v6 in proptest::prelude::any::<u128>(),
            p4 in 0u8..=40,
            p6 in 0u8..=140,
            group in proptest::prelude::any::<bool>(),
        ) {
            let settings = Settings {
                ipv4_prefix: p4,
                ipv6_prefix: p6,
                group_by_host_domain: group,
                ..Settings::default()
            };
            for ip in [IpAddr::from(std::net::Ipv4Addr::from(v4)), IpAddr::from(std::net::Ipv6Addr::from(v6))] {
                let key = client_key(ip, Some(&host), &settings, &black());
                proptest::prop_assert!(!key.key.is_empty());
                proptest::prop_assert!(!key.network.is_empty());
            }
        }
    }
}

#[cfg(test)]
mod normalisation_tests {
    use super::*;

    // DESIGN.md §4 step 6: lower-case; +extension, BATV tags and digit runs folded when normalising.
    #[test]
    fn triplet_senders_fold_list_variants() {
        assert_eq!(
            triplet_sender("John@Example.COM", false),
            "john@example.com"
        );
        assert_eq!(
            triplet_sender("john+news@example.com", true),
            "john@example.com"
        );
        assert_eq!(
            triplet_sender("prvs=0123abcd=john@example.com", true),
            "john@example.com"
        );
        assert_eq!(
            triplet_sender("bounce-1234-5678@list.example", true),
            triplet_sender("bounce-99-1@list.example", true)
        );
        assert_eq!(
            triplet_sender("user2@host9.example", true),
            "user#@host9.example"
        );
        assert_eq!(triplet_sender("", true), "");
    }

    // DESIGN.md §4 "Client key": /24 and /64 by default, exact with 32/128, mapped IPv6 as IPv4.
    #[test]
    fn client_networks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let defaults = Settings::default();
        assert_eq!(
            client_network(ip("198.51.100.7"), &defaults),
            "198.51.100.0/24"
        );
        assert_eq!(
            client_network(ip("::ffff:198.51.100.7"), &defaults),
            "198.51.100.0/24"
        );
        assert_eq!(
            client_network(ip("2001:db8:1:2:3::5"), &defaults),
            "2001:db8:1:2::/64"
        );
        let exact = Settings {
            ipv4_prefix: 32,
            ipv6_prefix: 128,
            ..Settings::default()
        };
        assert_eq!(
            client_network(ip("198.51.100.7"), &exact),
            "198.51.100.7/32"
        );
        assert_eq!(client_network(ip("2001:db8::5"), &exact), "2001:db8::5/128");
        let zero = Settings {
            ipv4_prefix: 0,
            ..Settings::default()
        };
        assert_eq!(client_network(ip("198.51.100.7"), &zero), "0.0.0.0/0");
    }
}
