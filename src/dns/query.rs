//! The names asked and the meaning of the answers, apart from any network: the reversed query
//! name of an address under a DNS list zone, and whether the A records that came back are a
//! listing.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use super::ZoneResult;

/// The address as DNS lists compare it: an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a
/// dual-stack socket reports for an IPv4 client) is the IPv4 address it carries.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The labels a DNS list zone puts in front of its own name for `ip`, without the zone: the four
/// decimal octets reversed for IPv4 (and IPv4-mapped IPv6), the 32 hex nibbles reversed for IPv6
/// (lower-case, as RFC 5782 writes them).
pub(crate) fn reversed(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}")
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(63);
            for byte in v6.octets().iter().rev() {
                if !out.is_empty() {
                    out.push('.');
                }
                // Low nibble first: the whole address is reversed nibble by nibble.
                let _ = write!(out, "{:x}.{:x}", byte & 0x0f, byte >> 4);
            }
            out
        }
    }
}

/// The absolute name asked for `ip` on `zone`: `<reversed>.<zone>.` (a trailing dot on the zone
/// is not doubled). Absolute, so no search domain is ever appended.
pub(crate) fn query_name(ip: IpAddr, zone: &str) -> String {
    format!("{}.{}.", reversed(ip), zone.trim_end_matches('.'))
}

/// The zone as answers name it: lower-case, without a trailing dot.
pub(crate) fn zone_key(zone: &str) -> String {
    zone.trim_end_matches('.').to_ascii_lowercase()
}

/// The zones to ask, each once in first-given order: `Example.ORG` and `example.org.` are the
/// same zone, asked once.
pub(crate) fn unique_zones(zones: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(zones.len());
    for zone in zones {
        let key = zone_key(zone);
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}

/// Whether one A record is a listing: `127.x.y.z` with z in 1–254, except `127.255.255.z`.
/// So dnswl.org's `127.0.x.0` ("trust none") and `127.0.0.255` ("query refused") and
/// Spamhaus's `127.255.255.*` (error codes for a blocked or public resolver) are not listings,
/// and neither is any address outside 127/8 (a wildcard or a hijacking resolver).
pub(crate) fn is_listing(answer: Ipv4Addr) -> bool {
    let [a, b, c, d] = answer.octets();
    a == 127 && (1..=254).contains(&d) && !(b == 255 && c == 255)
}

/// What the A records of an answered query say: the first record that is a listing, else not
/// listed (an empty list is NODATA or NXDOMAIN: not listed either).
pub(crate) fn classify(answers: impl IntoIterator<Item = Ipv4Addr>) -> ZoneResult {
    answers
        .into_iter()
        .find(|answer| is_listing(*answer))
        .map_or(ZoneResult::NotListed, ZoneResult::Listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    fn v4(text: &str) -> Ipv4Addr {
        text.parse().expect("test address")
    }

    #[test]
    fn reversed_names_for_each_family() {
        assert_eq!(
            query_name(ip("192.0.2.99"), "list.example"),
            "99.2.0.192.list.example."
        );
        assert_eq!(
            query_name(ip("::ffff:192.0.2.99"), "list.example."),
            "99.2.0.192.list.example."
        );
        // RFC 5782's own IPv6 example.
        assert_eq!(
            query_name(ip("2001:db8:1:2:3:4:567:89ab"), "bad.example.com"),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.bad.example.com."
        );
        assert_eq!(reversed(ip("::1")).split('.').count(), 32);
        assert!(reversed(ip("::1")).starts_with("1.0.0.0."));
    }

    #[test]
    fn only_127_answers_with_a_real_last_octet_are_listings() {
        for listed in ["127.0.0.2", "127.0.0.1", "127.0.2.254", "127.1.255.10"] {
            assert!(is_listing(v4(listed)), "{listed}");
        }
        for not in [
            "127.0.1.0",
            "127.0.0.0",
            "127.0.0.255",
            "127.255.255.254",
            "127.255.255.1",
            "10.0.0.1",
            "128.0.0.2",
        ] {
            assert!(!is_listing(v4(not)), "{not}");
        }
    }

    #[test]
    fn any_listing_record_counts_and_the_first_is_kept() {
        assert_eq!(classify([]), ZoneResult::NotListed);
        assert_eq!(
            classify([v4("10.0.0.1"), v4("127.0.0.4"), v4("127.0.0.2")]),
            ZoneResult::Listed(v4("127.0.0.4"))
        );
        assert_eq!(
            classify([v4("127.0.1.0"), v4("127.255.255.254")]),
            ZoneResult::NotListed
        );
    }

    #[test]
    fn zones_are_asked_once_whatever_their_case() {
        let zones = [
            "B.example".to_string(),
            "a.example".into(),
            "b.EXAMPLE.".into(),
        ];
        assert_eq!(unique_zones(&zones), ["b.example", "a.example"]);
    }

    #[test]
    fn mapped_addresses_are_ipv4() {
        assert_eq!(canonical(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(canonical(ip("2001:db8::1")), ip("2001:db8::1"));
    }
}
