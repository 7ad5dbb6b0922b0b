//! `--trusted-networks`: address blocks (`192.0.2.0/24`, `2001:db8::/32`, or a single address)
//! whose clients are never greylisted. A milter sees every client, the MTA's own network
//! included, so this stands in for Postfix's `permit_mynetworks` before a policy check.

use std::fmt;
use std::net::IpAddr;

use thiserror::Error;

/// The default: the loopback networks.
pub(crate) const DEFAULT_TRUSTED: &str = "127.0.0.0/8,::1/128";

/// A bad block on the command line.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid network {0:?} (expected an address or address/prefix, e.g. 192.0.2.0/24)")]
pub struct BadNetwork(pub String);

/// One address block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `address` or `address/prefix`; host bits beyond the prefix are ignored.
    pub fn parse(text: &str) -> Result<Network, BadNetwork> {
        let bad = || BadNetwork(text.to_string());
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let base: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if base.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Network { base, prefix })
    }

    /// True when `ip` is in the block (an IPv4-mapped IPv6 address counts as its IPv4 form).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.base, ip) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The widest block `--trusted-networks` takes without a warning, per family: wider blocks are
/// no one's own network (a typo such as `10.0.0.0/0` for `/8` trusts every client).
const WIDEST_IPV4: u8 = 8;
const WIDEST_IPV6: u8 = 16;

/// The start-up warning for each block of `networks` wider than anyone's own network.
pub(crate) fn too_wide_lines(networks: &[Network]) -> Vec<String> {
    networks
        .iter()
        .filter_map(|n| {
            let widest = if n.base.is_ipv4() {
                WIDEST_IPV4
            } else {
                WIDEST_IPV6
            };
            (n.prefix < widest).then(|| {
                format!(
                    "warning: trusted network {n} (--trusted-networks) is wider than a /{widest}: none of its clients is ever greylisted; list only your own networks"
                )
            })
        })
        .collect()
}

/// The networks as the start-up line names them: `none`, or the list as `--trusted-networks`
/// takes it.
pub(super) fn describe(networks: &[Network]) -> String {
    if networks.is_empty() {
        return "none".to_string();
    }
    networks
        .iter()
        .map(Network::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// Parses a comma-separated list; an empty list (`""`) trusts nobody.
pub(crate) fn parse_list(text: &str) -> Result<Vec<Network>, BadNetwork> {
    text.split(',')
        .filter(|part| !part.trim().is_empty())
        .map(Network::parse)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses() {
        let list = parse_list(DEFAULT_TRUSTED).unwrap();
        assert!(list.iter().any(|n| n.contains(ip("127.1.2.3"))));
        assert!(list.iter().any(|n| n.contains(ip("::1"))));
        assert!(list.iter().any(|n| n.contains(ip("::ffff:127.0.0.1"))));
        assert!(!list.iter().any(|n| n.contains(ip("128.0.0.1"))));
        assert!(!list.iter().any(|n| n.contains(ip("::2"))));
        let net = Network::parse("192.0.2.77/24").unwrap();
        assert!(net.contains(ip("192.0.2.1")));
        assert!(!net.contains(ip("192.0.3.1")));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(!Network::parse("0.0.0.0/0").unwrap().contains(ip("::8")));
        assert!(
            Network::parse("2001:db8::/32")
                .unwrap()
                .contains(ip("2001:db8:ffff::1"))
        );
        assert!(
            Network::parse("198.51.100.7")
                .unwrap()
                .contains(ip("198.51.100.7"))
        );
        assert!(
            !Network::parse("198.51.100.7")
                .unwrap()
                .contains(ip("198.51.100.8"))
        );
    }

    #[test]
    fn blocks_wider_than_a_network_are_warned_about() {
        let list =
            parse_list("0.0.0.0/0,10.0.0.0/8,10.0.0.0/7,::/0,2001:db8::/16,2000::/15").unwrap();
        let lines = too_wide_lines(&list);
        assert_eq!(lines.len(), 4, "{lines:#?}");
        for (line, block) in lines
            .iter()
            .zip(["0.0.0.0/0", "10.0.0.0/7", "::/0", "2000::/15"])
        {
            assert!(
                line.starts_with(&format!("warning: trusted network {block} ")),
                "{line}"
            );
        }
        assert!(too_wide_lines(&parse_list(DEFAULT_TRUSTED).unwrap()).is_empty());
    }

    #[test]
    fn bad_blocks_are_named() {
        for bad in [
            "",
            "1.2.3.4/33",
            "::/129",
            "1.2.3/8",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "x/8",
        ] {
            assert_eq!(
                Network::parse(bad),
                Err(BadNetwork(bad.to_string())),
                "{bad}"
            );
        }
        assert_eq!(parse_list("").unwrap(), vec![]);
        assert!(parse_list("127.0.0.0/8,nonsense").is_err());
        assert_eq!(
            parse_list("10.0.0.0/8, ::1/128").unwrap()[1].to_string(),
            "::1/128"
        );
    }
}
