//! The health check of DNS list zones (RFC 5782 §5): every list must answer its test address
//! 127.0.0.2 and must not list 127.0.0.1. A list that lists 127.0.0.1 has been shut down and
//! answers "listed" for everything (it would pass every client as trusted from a DNSWL, or mark
//! every client suspicious from a DNSBL); one that does not answer 127.0.0.2 is not a DNS list
//! (or the resolver is blocked by it: Spamhaus answers public resolvers `127.255.255.254`).
//! "Answer" rather than "list": dnswl.org answers its test entry `127.0.10.0`, trust level
//! none, which the decision rightly does not count as a listing.

use std::fmt;
use std::net::Ipv4Addr;

use super::ZoneResult;
use super::query::{classify, is_listing};
use super::resolver::{ARecords, Resolver};
use crate::escape;

/// The test address every DNS list lists (`2.0.0.127.<zone>`).
pub(crate) const LISTED_TEST_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The test address no working DNS list lists (`1.0.0.127.<zone>`).
pub(crate) const UNLISTED_TEST_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// What the check found for one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneHealth {
    /// 127.0.0.2 answered with a 127/8 address (not an error code), 127.0.0.1 not listed.
    Ok,
    /// 127.0.0.1 listed: a shut-down list answering "listed" for everything.
    ListsEverything,
    /// 127.0.0.2 not answered with an address (NXDOMAIN), or only with an error code.
    DoesNotListTestEntry,
    /// One of the two test entries got no answer within the budget.
    NoAnswer,
}

impl ZoneHealth {
    /// Whether the zone can be used.
    pub fn is_ok(self) -> bool {
        self == ZoneHealth::Ok
    }

    /// From the two answers.
    fn from_answers(listed_entry: &ARecords, unlisted_entry: &ARecords) -> ZoneHealth {
        match (listed_entry, unlisted_entry) {
            (ARecords::NoAnswer, _) | (_, ARecords::NoAnswer) => ZoneHealth::NoAnswer,
            (_, ARecords::Addresses(unlisted)) if unlisted.iter().any(|a| is_listing(*a)) => {
                ZoneHealth::ListsEverything
            }
            (ARecords::Addresses(listed), _) if listed.iter().any(|a| is_test_answer(*a)) => {
                ZoneHealth::Ok
            }
            (ARecords::Addresses(_), _) => ZoneHealth::DoesNotListTestEntry,
        }
    }
}

/// An answer that shows the list serves its test entry: any 127/8 address but the error codes
/// `127.255.255.*`.
fn is_test_answer(answer: Ipv4Addr) -> bool {
    let [first, second, third, _] = answer.octets();
    first == 127 && !(second == 255 && third == 255)
}

/// The check of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneCheck {
    /// The zone, lower-case, without a trailing dot.
    pub zone: String,
    /// The verdict.
    pub health: ZoneHealth,
    /// What `2.0.0.127.<zone>` answered, as the decision would read it.
    pub listed_entry: ZoneResult,
    /// The first address `2.0.0.127.<zone>` answered, listing or not (`127.0.10.0`).
    pub listed_answer: Option<Ipv4Addr>,
    /// What `1.0.0.127.<zone>` answered.
    pub unlisted_entry: ZoneResult,
}

impl fmt::Display for ZoneCheck {
    /// One line for a human: the zone (escaped), the verdict and why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let zone = escape::escape(&self.zone);
        match self.health {
            ZoneHealth::Ok => match (self.listed_entry, self.listed_answer) {
                (ZoneResult::Listed(answer), _) => write!(
                    f,
                    "{zone}: ok (127.0.0.2 listed as {answer}, 127.0.0.1 not listed)"
                ),
                (_, answer) => write!(
                    f,
                    "{zone}: ok (127.0.0.2 answered{}, 127.0.0.1 not listed)",
                    answer.map(|a| format!(" {a}")).unwrap_or_default()
                ),
            },
            ZoneHealth::ListsEverything => write!(
                f,
                "{zone}: lists everything (127.0.0.1 listed{}): the list has been shut down \
                 or does not work; remove it",
                answer_suffix(self.unlisted_entry)
            ),
            ZoneHealth::DoesNotListTestEntry => write!(
                f,
                "{zone}: does not list its test entry 127.0.0.2: not a DNS list, or it refuses \
                 this resolver"
            ),
            ZoneHealth::NoAnswer => write!(
                f,
                "{zone}: no answer within the time limit (a dead list, or the resolver cannot \
                 reach it)"
            ),
        }
    }
}

fn answer_suffix(result: ZoneResult) -> String {
    match result {
        ZoneResult::Listed(answer) => format!(" as {answer}"),
        _ => String::new(),
    }
}

/// Checks `zones` (each once, in the order given) with two rounds of questions, so the check of
/// any number of zones takes at most twice the resolver's budget.
pub fn check_zones(resolver: &Resolver, zones: &[String]) -> Vec<ZoneCheck> {
    let listed = resolver.a_records(LISTED_TEST_ADDRESS, zones);
    let unlisted = resolver.a_records(UNLISTED_TEST_ADDRESS, zones);
    listed
        .into_iter()
        .zip(unlisted)
        .map(|((zone, listed_entry), (_, unlisted_entry))| ZoneCheck {
            health: ZoneHealth::from_answers(&listed_entry, &unlisted_entry),
            listed_entry: as_zone_result(&listed_entry),
            listed_answer: match &listed_entry {
                ARecords::Addresses(addresses) => addresses.first().copied(),
                ARecords::NoAnswer => None,
            },
            unlisted_entry: as_zone_result(&unlisted_entry),
            zone,
        })
        .collect()
}

fn as_zone_result(records: &ARecords) -> ZoneResult {
    match records {
        ARecords::Addresses(addresses) => classify(addresses.iter().copied()),
        ARecords::NoAnswer => ZoneResult::NoAnswer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Resolver;
    use crate::dns::dns_stub::{DnsStub, Reply, addresses};

    #[test]
    fn each_kind_of_list_over_the_network() {
        let stub = DnsStub::start();
        stub.set(
            "2.0.0.127.good.example",
            Reply::Addresses(addresses(&["127.0.0.2"])),
        );
        stub.set(
            "2.0.0.127.all.example",
            Reply::Addresses(addresses(&["127.0.0.2"])),
        );
        stub.set(
            "1.0.0.127.all.example",
            Reply::Addresses(addresses(&["127.0.0.2"])),
        );
        stub.set(
            "2.0.0.127.blocked.example",
            Reply::Addresses(addresses(&["127.255.255.254"])),
        );
        // dnswl.org: the test entry answers "trust none", which is no listing but an answer.
        stub.set(
            "2.0.0.127.wl.example",
            Reply::Addresses(addresses(&["127.0.10.0"])),
        );
        stub.set("2.0.0.127.dead.example", Reply::Hang);
        stub.set("1.0.0.127.dead.example", Reply::Hang);
        let resolver = Resolver::new(stub.addr()).expect("resolver");
        let zones: Vec<String> = [
            "good.example",
            "All.Example",
            "blocked.example",
            "dead.example",
            "good.example.",
            "wl.example",
        ]
        .map(String::from)
        .to_vec();
        let checks = check_zones(&resolver, &zones);
        let health: Vec<(&str, ZoneHealth)> = checks
            .iter()
            .map(|check| (check.zone.as_str(), check.health))
            .collect();
        assert_eq!(
            health,
            [
                ("good.example", ZoneHealth::Ok),
                ("all.example", ZoneHealth::ListsEverything),
                ("blocked.example", ZoneHealth::DoesNotListTestEntry),
                ("dead.example", ZoneHealth::NoAnswer),
                ("wl.example", ZoneHealth::Ok),
            ]
        );
        assert_eq!(
            checks[4].to_string(),
            "wl.example: ok (127.0.0.2 answered 127.0.10.0, 127.0.0.1 not listed)"
        );
        assert_eq!(
            checks[0].to_string(),
            "good.example: ok (127.0.0.2 listed as 127.0.0.2, 127.0.0.1 not listed)"
        );
        assert!(
            checks[1]
                .to_string()
                .starts_with("all.example: lists everything (127.0.0.1 listed as 127.0.0.2)")
        );
        assert!(
            checks[2]
                .to_string()
                .contains("does not list its test entry 127.0.0.2")
        );
        assert!(checks[3].to_string().starts_with("dead.example: no answer"));
        assert_eq!(stub.queries("2.0.0.127.good.example"), 1);
        assert_eq!(stub.queries("1.0.0.127.good.example"), 1);
    }

    #[test]
    fn a_zone_name_cannot_forge_the_line() {
        let check = ZoneCheck {
            zone: "x\n, ok".to_string(),
            health: ZoneHealth::NoAnswer,
            listed_entry: ZoneResult::NoAnswer,
            listed_answer: None,
            unlisted_entry: ZoneResult::NoAnswer,
        };
        assert!(check.to_string().starts_with("x\\x0a\\x2c ok: no answer"));
    }
}
