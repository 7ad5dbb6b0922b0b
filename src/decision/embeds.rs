//! Whether a host name embeds the client address: the mark of an end-user line
//! (`c-73-162-45-12.hsd1.ca.comcast.net`). One definition serves the client key (such names are
//! keyed by network, not by their domain) and selective greylisting (such clients are suspicious).
//!
//! Only the part of the name left of its registrable domain is examined, so a provider's own
//! domain (`t-ipconnect.de`, `1und1.de`) never counts as address digits. Matching is by values
//! counted once each (a multiset intersection): a run of digits or a hex group stands for at most
//! one octet or group, so `10-10-10` does not match `10.10.10.10` four times over.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Whether `host` embeds `ip` in one of the forms ISPs give end-user lines: the octets as decimal
/// runs in any order and with any separators (at least three, at least one of two or more
/// digits), the address as one decimal number, as twelve zero-padded digits or as eight hex
/// digits; for IPv6, at least four groups (two of them non-zero) or the upper, lower or whole
/// address in hex. IPv4-mapped IPv6 addresses count as IPv4.
pub fn embeds_address(host: &str, ip: IpAddr) -> bool {
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    let local = without_registrable_domain(host);
    match ip {
        IpAddr::V4(v4) => embeds_v4(local, v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => embeds_v4(local, v4),
            None => embeds_v6(local, v6),
        },
    }
}

/// `host` without its registrable domain (and the dot before it). A name whose suffix is not in
/// the public suffix list has no registrable domain: nothing is removed. Only the list's ICANN
/// section counts: its private section names hosting platforms' per-customer zones
/// (`eu-central-1.compute.amazonaws.com`), and treating those as suffixes would make a whole
/// generic instance name (`ec2-54-93-120-17.eu-central-1.compute.amazonaws.com`) a registrable
/// domain, hiding the address it embeds.
fn without_registrable_domain(host: &str) -> &str {
    let Some(suffix) = icann_suffix(host) else {
        return host;
    };
    // The registrable domain: the suffix and the one label before it.
    let Some(before) = host
        .strip_suffix(suffix)
        .and_then(|rest| rest.strip_suffix('.'))
    else {
        return host;
    };
    match before.rfind('.') {
        Some(dot) => &host[..dot],
        // The name is its registrable domain: nothing left of it.
        None => "",
    }
}

/// The longest tail of `host` that is an ICANN public suffix, if the list knows one.
fn icann_suffix(host: &str) -> Option<&str> {
    let mut tail = host;
    loop {
        if let Some(suffix) = psl::suffix(tail.as_bytes())
            && suffix.is_known()
            && suffix.typ() == Some(psl::Type::Icann)
            && suffix.as_bytes() == tail.as_bytes()
        {
            return Some(tail);
        }
        tail = tail.split_once('.')?.1;
    }
}

/// How many of `wanted` the `found` values cover, each value on either side counted once.
fn matched<T: std::hash::Hash + Eq + Copy>(wanted: &[T], found: &[T]) -> HashMap<T, usize> {
    let mut need: HashMap<T, usize> = HashMap::new();
    for value in wanted {
        *need.entry(*value).or_default() += 1;
    }
    let mut have: HashMap<T, usize> = HashMap::new();
    for value in found {
        *have.entry(*value).or_default() += 1;
    }
    need.into_iter()
        .map(|(value, count)| (value, count.min(have.get(&value).copied().unwrap_or(0))))
        .filter(|(_, count)| *count > 0)
        .collect()
}

fn embeds_v4(local: &str, v4: Ipv4Addr) -> bool {
    let runs: Vec<&str> = local
        .split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .collect();
    let octets = v4.octets();
    let numbers: Vec<u8> = runs
        .iter()
        .filter(|run| run.len() <= 3)
        .filter_map(|run| run.parse::<u8>().ok())
        .collect();
    let hits = matched(&octets, &numbers);
    let total: usize = hits.values().sum();
    // A run of two or more digits can always be the one chosen for its value, so one matched
    // value with such a run is enough.
    let long = hits.keys().any(|value| {
        runs.iter()
            .any(|run| (2..=3).contains(&run.len()) && run.parse::<u8>().ok() == Some(*value))
    });
    if total >= 3 && long {
        return true;
    }
    let number = u32::from(v4).to_string();
    let padded = format!(
        "{:03}{:03}{:03}{:03}",
        octets[0], octets[1], octets[2], octets[3]
    );
    runs.iter().any(|run| *run == number || *run == padded)
        || local.contains(&format!("{:08x}", u32::from(v4)))
}

fn embeds_v6(local: &str, v6: Ipv6Addr) -> bool {
    let parts: Vec<&str> = local
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect();
    let values: Vec<u16> = parts
        .iter()
        .filter(|part| part.len() <= 4)
        .filter_map(|part| u16::from_str_radix(part, 16).ok())
        .collect();
    let hits = matched(&v6.segments(), &values);
    let total: usize = hits.values().sum();
    let non_zero: usize = hits
        .iter()
        .filter(|(value, _)| **value != 0)
        .map(|(_, count)| count)
        .sum();
    if total >= 4 && non_zero >= 2 {
        return true;
    }
    let full = format!("{:032x}", u128::from(v6));
    let zeros = "0000000000000000";
    let wanted: Vec<&str> = [&full[..16], &full[16..]]
        .into_iter()
        .filter(|half| *half != zeros)
        .chain([full.as_str()])
        .collect();
    parts
        .iter()
        .any(|part| wanted.iter().any(|hex| part.contains(hex)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Names that embed their address and names that do not, for IPv4, IPv4-mapped and IPv6.
    const CASES: &[(&str, &str, bool)] = &[
        // Embed.
        ("c-73-162-45-12.hsd1.ca.comcast.net", "73.162.45.12", true),
        (
            "89.67.45.123.broad.xa.dynamic.example.cn",
            "123.45.67.89",
            true,
        ),
        ("p5dc0a1b2.dip0.t-ipconnect.de", "93.192.161.178", true),
        ("P5DC0A1B2.dip0.t-ipconnect.de.", "93.192.161.178", true),
        ("ip-010-001-002-003.example", "10.1.2.3", true),
        ("x3325256711.isp.example.com", "198.51.100.7", true),
        ("host198051100007.isp.example.com", "198.51.100.7", true),
        ("c-198-51-100-7.hsd1.ma.comcast.net", "198.51.100.7", true),
        ("7.100.51.198.in-addr.example.net", "198.51.100.7", true),
        ("dyn-51-100-7.isp.example.com", "198.51.100.7", true),
        ("ip-c6336407.isp.example.com", "198.51.100.7", true),
        (
            "c-73-162-45-12.hsd1.ca.comcast.net",
            "::ffff:73.162.45.12",
            true,
        ),
        // Three octets of which two are equal: each run counts once, and both are there.
        ("dsl-10-10-5.isp.example.com", "10.10.5.77", true),
        (
            "2001-db8-0-0-0-0-1-5.v6.isp.example.com",
            "2001:db8::1:5",
            true,
        ),
        (
            "ip6-20010db8000000000000000000010005.isp.example.com",
            "2001:db8::1:5",
            true,
        ),
        (
            "cust-0a1b2c3d4e5f6789.v6.isp.example.com",
            "2001:db8:aa:bb:a1b:2c3d:4e5f:6789",
            true,
        ),
        (
            "2001-db8-aa-bb.pool.isp.example.com",
            "2001:db8:aa:bb::7",
            true,
        ),
        // Do not.
        ("a8-17.smtp-out.amazonses.com", "54.240.8.17", false),
        // Hosting platforms' zones in the private section of the list are not suffixes here.
        (
            "ec2-54-93-120-17.eu-central-1.compute.amazonaws.com",
            "54.93.120.17",
            true,
        ),
        (
            "172-105-12-34.ip.linodeusercontent.com",
            "172.105.12.34",
            true,
        ),
        ("mail-sor-f41.google.com", "209.85.220.41", false),
        ("smtp1-2-3.example", "10.1.2.3", false),
        ("mx2.example.com", "192.0.2.2", false),
        // The digits are in the registrable domain, which says nothing about the line.
        ("mail.73-162-45-12.com", "73.162.45.12", false),
        // One run of `10` stands for one octet only.
        ("mx10.isp10.example.com", "10.10.10.10", false),
        ("mail.example.com", "2001:db8::25", false),
        // A lower half of zeros is not an interface identifier.
        ("x-0000000000000000.isp.example.com", "2001:db8::", false),
        // Four groups, but only one non-zero.
        ("a-0-0-0-25.isp.example.com", "2001:db8::25", false),
        ("", "198.51.100.7", false),
        (".", "2001:db8::1", false),
    ];

    // Both uses of the one definition: the function itself and the client key, which keeps a
    // name that embeds its address on the network key.
    #[test]
    fn embedding_names_and_their_client_key() {
        let settings = crate::config::Settings::default();
        for (host, addr, expected) in CASES {
            assert_eq!(embeds_address(host, ip(addr)), *expected, "{host} {addr}");
            let key = crate::decision::client_key(ip(addr), Some(host), &settings, &[]);
            let network_for_address = key.basis == crate::decision::KeyBasis::NetworkAddressInName;
            assert_eq!(
                network_for_address,
                *expected && !host.trim_matches('.').is_empty(),
                "{host} {addr}"
            );
        }
    }

    proptest::proptest! {
        // The mail path never panics, whatever an SMTP client or its DNS says.
        #[test]
        fn never_panics(host in "\\PC{0,120}", v4 in proptest::prelude::any::<u32>(),
                        v6 in proptest::prelude::any::<u128>()) {
            let _ = embeds_address(&host, IpAddr::from(Ipv4Addr::from(v4)));
            let _ = embeds_address(&host, IpAddr::from(Ipv6Addr::from(v6)));
        }
    }
}
