//! The policy server's memory of DNS list zones that gave no answer: a zone that did not answer
//! for an address is not asked again for that address for [`NO_ANSWER_TTL`], so a dead or slow
//! list does not cost every request of a busy client the whole budget. No-answers are never
//! written to the store (they say nothing about the address); this memory lives only as long as
//! the process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::query::{canonical, zone_key};

/// How long a no-answer is remembered.
pub(crate) const NO_ANSWER_TTL: Duration = Duration::from_secs(60);
/// At most this many (address, zone) pairs are remembered; beyond that, once the expired ones
/// are dropped, a new no-answer is not remembered (the zone is simply asked again next time).
pub(crate) const NO_ANSWER_CAPACITY: usize = 16_384;

/// (address, zone) pairs that gave no answer recently. Addresses compare as DNS lists see them
/// (IPv4-mapped IPv6 as IPv4), zones ignoring case and a trailing dot.
#[derive(Debug, Clone)]
pub struct NoAnswerMemory {
    until: HashMap<(IpAddr, String), Instant>,
    ttl: Duration,
    capacity: usize,
}

impl Default for NoAnswerMemory {
    fn default() -> Self {
        NoAnswerMemory::new(NO_ANSWER_TTL, NO_ANSWER_CAPACITY)
    }
}

impl NoAnswerMemory {
    /// A memory that keeps a no-answer for `ttl` and at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: usize) -> NoAnswerMemory {
        NoAnswerMemory {
            until: HashMap::new(),
            ttl,
            capacity,
        }
    }

    /// Remembers that `zone` gave no answer for `ip` at `now`.
    pub fn remember(&mut self, ip: IpAddr, zone: &str, now: Instant) {
        let entry = (canonical(ip), zone_key(zone));
        if self.until.len() >= self.capacity && !self.until.contains_key(&entry) {
            self.until.retain(|_, until| *until > now);
            if self.until.len() >= self.capacity {
                return;
            }
        }
        self.until.insert(entry, now + self.ttl);
    }

    /// Whether `zone` gave no answer for `ip` less than the lifetime before `now`.
    pub fn is_remembered(&self, ip: IpAddr, zone: &str, now: Instant) -> bool {
        self.until
            .get(&(canonical(ip), zone_key(zone)))
            .is_some_and(|until| *until > now)
    }

    /// How many pairs are held (expired ones included until they are dropped).
    pub fn len(&self) -> usize {
        self.until.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn a_no_answer_is_remembered_for_its_lifetime_only() {
        let start = Instant::now();
        let mut memory = NoAnswerMemory::default();
        memory.remember(ip("::ffff:192.0.2.1"), "List.Example.", start);
        assert!(memory.is_remembered(ip("192.0.2.1"), "list.example", start));
        let later = start + Duration::from_secs(59);
        assert!(memory.is_remembered(ip("192.0.2.1"), "LIST.example", later));
        assert!(!memory.is_remembered(ip("192.0.2.2"), "list.example", later));
        assert!(!memory.is_remembered(ip("192.0.2.1"), "other.example", later));
        assert!(!memory.is_remembered(ip("192.0.2.1"), "list.example", start + NO_ANSWER_TTL));
    }

    #[test]
    fn the_memory_is_bounded_and_drops_expired_pairs_first() {
        let start = Instant::now();
        let mut memory = NoAnswerMemory::new(Duration::from_secs(10), 2);
        memory.remember(ip("192.0.2.1"), "a.example", start);
        memory.remember(ip("192.0.2.2"), "a.example", start);
        memory.remember(ip("192.0.2.3"), "a.example", start);
        assert_eq!(memory.len(), 2);
        assert!(!memory.is_remembered(ip("192.0.2.3"), "a.example", start));
        let later = start + Duration::from_secs(11);
        memory.remember(ip("192.0.2.3"), "a.example", later);
        assert_eq!(memory.len(), 1);
        assert!(memory.is_remembered(ip("192.0.2.3"), "a.example", later));
    }
}
