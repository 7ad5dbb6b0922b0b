//! Steps 4a and 4b of the decision: a client listed on a DNS whitelist passes, and with
//! `greylist-clients suspicious` a client that is not suspicious passes too. The DNS answers are
//! inputs fetched before the decision (like the host name), so these steps stay pure.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use super::{CompiledLists, Decision, Reason, Request, Step, Trace, Verdict, embeds_address};
use crate::bounds;
use crate::config::{GreylistClients, Settings};
use crate::dns::{DnsFacts, Forward, ZoneResult};

/// What a zone said, as a step of the trace shows it: `None` when the zone was not asked (or
/// not answered in the facts), which counts as not listed.
pub type ZoneSeen = (String, Option<ZoneResult>);

/// Why step 4b finds a client suspicious, or that it trusts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suspicion {
    /// No verified host name (none at all, or one nobody confirmed).
    NoVerifiedName,
    /// The verified host name embeds the client address: an end-user line.
    NameEmbedsAddress,
    /// The client address is listed on this DNSBL zone, with this answer.
    Dnsbl {
        /// The first listing zone, in list order.
        zone: String,
        /// The A record it answered.
        answer: Ipv4Addr,
    },
    /// None of the above: the client passes as trusted.
    Trusted,
}

impl fmt::Display for Suspicion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Suspicion::NoVerifiedName => f.write_str("suspicious: no verified host name"),
            Suspicion::NameEmbedsAddress => f.write_str("suspicious: name embeds the address"),
            Suspicion::Dnsbl { zone, answer } => write!(f, "dnsbl {zone} {answer}"),
            Suspicion::Trusted => f.write_str("trusted client"),
        }
    }
}

/// The client host name the rules may use. In `suspicious` mode a name nobody verified (the
/// filter's name from a qmail `Received:` header) counts only once its forward lookup returned
/// the client address; in `all` mode every name counts, as it always did.
pub fn verified_name<'a>(
    settings: &Settings,
    name: Option<&'a str>,
    unconfirmed: bool,
    facts: &DnsFacts,
) -> Option<&'a str> {
    let confirmed = facts.forward == Some(Forward::Confirmed);
    match settings.greylist_clients {
        GreylistClients::Suspicious if unconfirmed && !confirmed => None,
        _ => name,
    }
}

/// The answer of a listing zone, if it listed the address.
fn listing(facts: &DnsFacts, zone: &str) -> Option<Ipv4Addr> {
    match facts.zone(zone) {
        Some(ZoneResult::Listed(answer)) => Some(answer),
        _ => None,
    }
}

fn seen(zones: &[String], facts: &DnsFacts) -> Vec<ZoneSeen> {
    zones
        .iter()
        .map(|zone| (zone.clone(), facts.zone(zone)))
        .collect()
}

/// Whether a name (already the one the rules may use) makes the client suspicious by itself.
pub fn name_suspicion(name: Option<&str>, ip: IpAddr) -> Option<Suspicion> {
    let name = name
        .map(|name| name.trim())
        .filter(|name| !name.is_empty() && *name != "unknown" && bounds::host_matchable(name));
    match name {
        None => Some(Suspicion::NoVerifiedName),
        Some(name) if embeds_address(name, ip) => Some(Suspicion::NameEmbedsAddress),
        Some(_) => None,
    }
}

/// Steps 4a and 4b for a client at `ip` that steps 1–4 left undecided.
pub(super) fn dns_rules(
    settings: &Settings,
    lists: &CompiledLists,
    request: &Request<'_>,
    ip: IpAddr,
    trace: &mut Trace,
) -> Option<Decision> {
    let facts = request.dns;
    // Step 4a. Nothing is traced without zones, so `all` mode without zones reads as before.
    if !lists.dnswl_zones.is_empty() {
        let listed = lists
            .dnswl_zones
            .iter()
            .find(|zone| listing(facts, zone).is_some());
        trace.push(|| Step::Dnswl {
            answers: seen(&lists.dnswl_zones, facts),
            listed: listed.cloned(),
        });
        if let Some(zone) = listed {
            return Some(Decision {
                pattern: Some(zone.clone()),
                ..Decision::by_rule(Verdict::Pass, Reason::Dnswl)
            });
        }
    }
    // Step 4b.
    if settings.greylist_clients != GreylistClients::Suspicious {
        return None;
    }
    let name = request.verified_name(settings);
    let by_name = name_suspicion(name, ip);
    let dnsbl_asked = by_name.is_none();
    let suspicion = by_name.unwrap_or_else(|| {
        lists
            .dnsbl_zones
            .iter()
            .find_map(|zone| {
                listing(facts, zone).map(|answer| Suspicion::Dnsbl {
                    zone: zone.clone(),
                    answer,
                })
            })
            .unwrap_or(Suspicion::Trusted)
    });
    let trusted = suspicion == Suspicion::Trusted;
    trace.push(|| Step::Clients {
        forward: if request.client_name_unconfirmed {
            facts.forward
        } else {
            None
        },
        dnsbl: if dnsbl_asked {
            seen(&lists.dnsbl_zones, facts)
        } else {
            Vec::new()
        },
        suspicion,
    });
    trusted.then(|| Decision::by_rule(Verdict::Pass, Reason::TrustedClient))
}

#[cfg(test)]
mod tests;
