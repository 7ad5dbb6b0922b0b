//! The health check of DNS list zones (RFC 5782 §5): every list must list the test address
//! 127.0.0.2 and must not list 127.0.0.1. A list that lists 127.0.0.1 has been shut down and
//! answers "listed" for everything (it would pass every client as trusted from a DNSWL, or mark
//! every client suspicious from a DNSBL); one that does not list 127.0.0.2 is not a DNS list
//! (or the resolver is blocked by it, as Spamhaus does with public resolvers).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use super::query::unique_zones;
use super::{DnsFacts, DnsSource, Question, ZoneResult};
use crate::escape;

/// The test address every DNS list lists (`2.0.0.127.<zone>`).
pub const LISTED_TEST_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The test address no working DNS list lists (`1.0.0.127.<zone>`).
pub const UNLISTED_TEST_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// What the check found for one zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneHealth {
    /// 127.0.0.2 listed, 127.0.0.1 not listed.
    Ok,
    /// 127.0.0.1 listed: a shut-down list answering "listed" for everything.
    ListsEverything,
    /// 127.0.0.2 not listed.
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
    fn from_answers(listed_entry: ZoneResult, unlisted_entry: ZoneResult) -> ZoneHealth {
        match (listed_entry, unlisted_entry) {
            (ZoneResult::NoAnswer, _) | (_, ZoneResult::NoAnswer) => ZoneHealth::NoAnswer,
            (_, ZoneResult::Listed(_)) => ZoneHealth::ListsEverything,
            (ZoneResult::NotListed, _) => ZoneHealth::DoesNotListTestEntry,
            (ZoneResult::Listed(_), ZoneResult::NotListed) => ZoneHealth::Ok,
        }
    }
}

/// The check of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneCheck {
    /// The zone, lower-case, without a trailing dot.
    pub zone: String,
    /// The verdict.
    pub health: ZoneHealth,
    /// What `2.0.0.127.<zone>` answered.
    pub listed_entry: ZoneResult,
    /// What `1.0.0.127.<zone>` answered.
    pub unlisted_entry: ZoneResult,
}

impl fmt::Display for ZoneCheck {
    /// One line for a human: the zone (escaped), the verdict and why.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let zone = escape::escape(&self.zone);
        match self.health {
            ZoneHealth::Ok => write!(
                f,
                "{zone}: ok (127.0.0.2 listed{}, 127.0.0.1 not listed)",
                answer_suffix(self.listed_entry)
            ),
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

/// Checks `zones` (each once, in the order given) with two questions in all, so the check of
/// any number of zones takes at most twice the source's budget.
pub fn check_zones(source: &dyn DnsSource, zones: &[String]) -> Vec<ZoneCheck> {
    let zones = unique_zones(zones);
    let ask = |address: Ipv4Addr| -> DnsFacts {
        source.ask(&Question {
            ip: IpAddr::V4(address),
            zones: &zones,
            confirm: None,
        })
    };
    let listed = ask(LISTED_TEST_ADDRESS);
    let unlisted = ask(UNLISTED_TEST_ADDRESS);
    zones
        .iter()
        .map(|zone| {
            let listed_entry = listed.zone(zone).unwrap_or(ZoneResult::NoAnswer);
            let unlisted_entry = unlisted.zone(zone).unwrap_or(ZoneResult::NoAnswer);
            ZoneCheck {
                zone: zone.clone(),
                health: ZoneHealth::from_answers(listed_entry, unlisted_entry),
                listed_entry,
                unlisted_entry,
            }
        })
        .collect()
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
        stub.set("2.0.0.127.dead.example", Reply::Hang);
        stub.set("1.0.0.127.dead.example", Reply::Hang);
        let resolver = Resolver::new(stub.addr()).expect("resolver");
        let zones: Vec<String> = [
            "good.example",
            "All.Example",
            "blocked.example",
            "dead.example",
            "good.example.",
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
            ]
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
            unlisted_entry: ZoneResult::NoAnswer,
        };
        assert!(check.to_string().starts_with("x\\x0a\\x2c ok: no answer"));
    }
}
