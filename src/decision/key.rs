//! The client key (DESIGN.md §4 "Client key"): the client network, or the registrable domain of
//! its verified host name.

use std::net::IpAddr;

use crate::bounds;
use crate::config::Settings;
use crate::pattern::{Pattern, first_match};

use super::*;

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
