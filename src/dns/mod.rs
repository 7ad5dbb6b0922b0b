//! DNS facts about the client (DESIGN.md §4, steps 4a and 4b): DNSWL/DNSBL zone answers for the
//! client address and the forward confirmation of a host name that nobody verified yet. They are
//! fetched before the store's write transaction and handed to the decision as inputs, like the
//! host name, so no lock is ever held while a lookup waits.
//!
//! The parts: `query` (the reversed names asked and what counts as a listing), `locate`
//! (where the resolver is), `resolver` (the client: [`Lookups`] asynchronous, [`Resolver`]
//! blocking, one budget per question), `worker` (the policy server's DNS thread) with
//! `memory` (its one-minute memory of zones that gave no answer), and `check` (the RFC 5782
//! health check of a zone).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

pub(crate) mod check;
pub(crate) mod locate;
pub(crate) mod memory;
pub(crate) mod query;
pub(crate) mod resolver;
mod system;
pub(crate) mod worker;

pub use check::{ZoneCheck, ZoneHealth, check_zones};
pub use locate::{LocateError, Located, locate, locate_system};
pub use memory::NoAnswerMemory;
pub use resolver::{Lookups, Resolver, ResolverError};
pub(crate) use system::system_resolver;
pub use system::{NoResolver, SystemResolver};
pub use worker::DnsWorker;

/// The time all lookups for one message (filter, milter) or one request (policy server) may take
/// together; what is not answered by then counts as not listed.
pub const BUDGET: Duration = Duration::from_millis(1500);

/// What one DNS list zone said about the client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneResult {
    /// Listed: an A record `127.x.y.z`, z in 1–254, not `127.255.255.z`.
    Listed(Ipv4Addr),
    /// An answer that is not a listing (NXDOMAIN, NODATA, any other address).
    NotListed,
    /// No answer within the budget (timeout, SERVFAIL, REFUSED, network error).
    NoAnswer,
}

/// One zone's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneAnswer {
    /// The zone asked, lower-case, without a trailing dot.
    pub zone: String,
    /// What it said.
    pub result: ZoneResult,
}

/// Whether a host name's A/AAAA records hold the client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    /// One of the name's addresses is the client address.
    Confirmed,
    /// The name resolved (or does not exist) and none of its addresses is the client address.
    NotConfirmed,
    /// No answer within the budget.
    NoAnswer,
}

/// Everything DNS told about one client, for one message or request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DnsFacts {
    /// The zones asked, each once.
    pub zones: Vec<ZoneAnswer>,
    /// The forward confirmation of the client name, when one was asked for.
    pub forward: Option<Forward>,
}

impl DnsFacts {
    /// The facts of a question nobody answered: every zone (each once) and the forward lookup
    /// without answer.
    pub fn unanswered(zones: &[String], confirm: bool) -> DnsFacts {
        DnsFacts {
            zones: query::unique_zones(zones)
                .into_iter()
                .map(|zone| ZoneAnswer {
                    zone,
                    result: ZoneResult::NoAnswer,
                })
                .collect(),
            forward: confirm.then_some(Forward::NoAnswer),
        }
    }

    /// The zones asked that gave no answer.
    pub fn unanswered_zones(&self) -> impl Iterator<Item = &str> {
        self.zones
            .iter()
            .filter(|answer| answer.result == ZoneResult::NoAnswer)
            .map(|answer| answer.zone.as_str())
    }

    /// The answer of `zone` (compared ignoring case), if it was asked.
    pub fn zone(&self, zone: &str) -> Option<ZoneResult> {
        self.zones
            .iter()
            .find(|answer| answer.zone.eq_ignore_ascii_case(zone))
            .map(|answer| answer.result)
    }
}

/// What to ask about one client: every zone at once and, optionally, a forward lookup of a host
/// name, all within one budget.
#[derive(Debug, Clone, Copy)]
pub struct Question<'a> {
    /// The client address.
    pub ip: IpAddr,
    /// Zones to ask (DNSWL and DNSBL alike: the caller knows which is which).
    pub zones: &'a [String],
    /// A host name whose A/AAAA records should hold `ip`.
    pub confirm: Option<&'a str>,
}

/// Something that answers [`Question`]s: the real resolver, or a table in tests and simulations.
/// It never fails: whatever is not answered in time is [`ZoneResult::NoAnswer`] /
/// [`Forward::NoAnswer`].
pub trait DnsSource {
    /// Asks everything in `question` at once and waits at most for the budget.
    fn ask(&self, question: &Question<'_>) -> DnsFacts;
}

/// The DNS server the tests run over loopback (shared with the integration tests).
#[cfg(test)]
#[path = "../../tests/support/dns_stub.rs"]
pub(crate) mod dns_stub;
