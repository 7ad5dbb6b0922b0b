//! The DNS answer cache both stores keep: one row per (client address, kind, name) with the
//! answer as text and an expiry. Kind `zone`: a DNS list zone's answer for the address (a
//! `127.x.y.z` listing or `not listed`). Kind `forward`: whether a host name's A/AAAA records
//! hold the address (`confirmed` / `not confirmed`). No-answers are never stored: they say
//! nothing about the next lookup. Here are the keys, the encoding and the [`DnsCacheTx`] of both
//! backends; the SQL of the two row operations (`CacheRows`) is in the backends.

use std::net::{IpAddr, Ipv4Addr};

use crate::dns::{Forward, ZoneAnswer, ZoneResult};
use crate::store::{DnsCacheTx, StoreError};

/// How long a cached answer is used, in seconds.
pub const DNS_CACHE_SECONDS: i64 = 3_600;

/// The `kind` of a zone answer row.
pub(crate) const KIND_ZONE: &str = "zone";
/// The `kind` of a forward confirmation row.
pub(crate) const KIND_FORWARD: &str = "forward";

const NOT_LISTED: &str = "not listed";
const CONFIRMED: &str = "confirmed";
const NOT_CONFIRMED: &str = "not confirmed";

/// The address as a key: its canonical text, an IPv4-mapped IPv6 address as the IPv4 address
/// (DNS lists ask both the same way).
pub(crate) fn address_key(ip: IpAddr) -> String {
    ip.to_canonical().to_string()
}

/// A host name from an SMTP client as a key: lower-cased, without one trailing dot, bounded
/// like every other value from a client.
pub(crate) fn name_key(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    crate::bounds::bound(&name).into_owned()
}

/// A zone as a key: zones are stored lower-case without a trailing dot already; the same
/// folding here keeps a caller's other spelling from missing the cache.
pub(crate) fn zone_key(zone: &str) -> String {
    name_key(zone)
}

/// The stored text of a zone result; `None` for a no-answer (never stored).
pub(crate) fn encode_zone(result: ZoneResult) -> Option<String> {
    match result {
        ZoneResult::Listed(address) => Some(address.to_string()),
        ZoneResult::NotListed => Some(NOT_LISTED.to_string()),
        ZoneResult::NoAnswer => None,
    }
}

/// A stored zone answer; `None` for text this build does not know (treated as a miss).
pub(crate) fn decode_zone(zone: String, answer: &str) -> Option<ZoneAnswer> {
    let result = if answer == NOT_LISTED {
        ZoneResult::NotListed
    } else {
        ZoneResult::Listed(answer.parse::<Ipv4Addr>().ok()?)
    };
    Some(ZoneAnswer { zone, result })
}

/// The stored text of a forward confirmation; `None` for a no-answer (never stored).
pub(crate) fn encode_forward(forward: Forward) -> Option<&'static str> {
    match forward {
        Forward::Confirmed => Some(CONFIRMED),
        Forward::NotConfirmed => Some(NOT_CONFIRMED),
        Forward::NoAnswer => None,
    }
}

/// A stored forward confirmation; `None` for text this build does not know (a miss).
pub(crate) fn decode_forward(answer: &str) -> Option<Forward> {
    match answer {
        CONFIRMED => Some(Forward::Confirmed),
        NOT_CONFIRMED => Some(Forward::NotConfirmed),
        _ => None,
    }
}

/// The two row operations each store gives the cache; keys, encodings and the loops over them
/// are shared below, in the one [`DnsCacheTx`] of every backend.
pub(crate) trait CacheRows {
    /// One live row's answer, if any.
    fn cached(
        &mut self,
        address: &str,
        kind: &str,
        name: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError>;

    /// Inserts or replaces one row, live until `now` + [`DNS_CACHE_SECONDS`].
    fn cache(
        &mut self,
        address: &str,
        kind: &str,
        name: &str,
        answer: &str,
        now: i64,
    ) -> Result<(), StoreError>;
}

/// The cache of every store that gives it the two row operations: the keys, encodings and
/// loops are the same for both backends.
impl<T: CacheRows> DnsCacheTx for T {
    fn dns_cache_get(
        &mut self,
        ip: IpAddr,
        zones: &[String],
        now: i64,
    ) -> Result<Vec<ZoneAnswer>, StoreError> {
        let address = address_key(ip);
        let mut answers = Vec::new();
        for zone in zones {
            let zone = zone_key(zone);
            if let Some(answer) = self.cached(&address, KIND_ZONE, &zone, now)?
                && let Some(answer) = decode_zone(zone, &answer)
            {
                answers.push(answer);
            }
        }
        Ok(answers)
    }

    fn dns_cache_put(
        &mut self,
        ip: IpAddr,
        answers: &[ZoneAnswer],
        now: i64,
    ) -> Result<(), StoreError> {
        let address = address_key(ip);
        for answer in answers {
            // A missing answer is never stored.
            if let Some(text) = encode_zone(answer.result) {
                self.cache(&address, KIND_ZONE, &zone_key(&answer.zone), &text, now)?;
            }
        }
        Ok(())
    }

    fn forward_cache_get(
        &mut self,
        ip: IpAddr,
        name: &str,
        now: i64,
    ) -> Result<Option<Forward>, StoreError> {
        let answer = self.cached(&address_key(ip), KIND_FORWARD, &name_key(name), now)?;
        Ok(answer.as_deref().and_then(decode_forward))
    }

    fn forward_cache_put(
        &mut self,
        ip: IpAddr,
        name: &str,
        forward: Forward,
        now: i64,
    ) -> Result<(), StoreError> {
        match encode_forward(forward) {
            Some(text) => self.cache(&address_key(ip), KIND_FORWARD, &name_key(name), text, now),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_answers() {
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.1");
        assert_eq!(address_key("2001:DB8::1".parse().unwrap()), "2001:db8::1");
        assert_eq!(name_key("Mail.Example.COM."), "mail.example.com");
        assert!(name_key(&"a".repeat(10_000)).len() < 1_000);
        let listed = ZoneResult::Listed(Ipv4Addr::new(127, 0, 0, 2));
        let text = encode_zone(listed).unwrap();
        assert_eq!(decode_zone("z".into(), &text).unwrap().result, listed);
        let text = encode_zone(ZoneResult::NotListed).unwrap();
        assert_eq!(
            decode_zone("z".into(), &text).unwrap().result,
            ZoneResult::NotListed
        );
        assert_eq!(encode_zone(ZoneResult::NoAnswer), None);
        assert_eq!(decode_zone("z".into(), "garbage"), None);
        for forward in [Forward::Confirmed, Forward::NotConfirmed] {
            assert_eq!(
                decode_forward(encode_forward(forward).unwrap()),
                Some(forward)
            );
        }
        assert_eq!(encode_forward(Forward::NoAnswer), None);
    }
}
