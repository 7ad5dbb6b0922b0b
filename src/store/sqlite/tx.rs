//! [`Tx`] for an SQLite transaction: the trait's methods, each handing over to the
//! `impl SqliteTx` block of its concept (schema, configuration, triplets, log, DNS cache).

use std::net::IpAddr;

use rusqlite::Connection;

use super::sqlite_or_locked;
use crate::config::{ListKind, Settings};
use crate::dns::{Forward, ZoneAnswer};
use crate::store::dns_cache;
use crate::store::{
    DecisionCount, LiveTriplet, LogEntry, StoreError, Triplet, TripletCounts, TripletKey, Tx,
};

/// The [`Tx`] of an SQLite transaction.
pub(super) struct SqliteTx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) path: &'a str,
}

impl SqliteTx<'_> {
    pub(super) fn err(&self, source: rusqlite::Error) -> StoreError {
        sqlite_or_locked(self.path, source)
    }
}

impl Tx for SqliteTx<'_> {
    fn config_stamp(&mut self) -> Result<Option<i64>, StoreError> {
        SqliteTx::config_stamp(self)
    }

    fn settings(&mut self) -> Result<Settings, StoreError> {
        SqliteTx::settings(self)
    }

    fn set_settings(&mut self, settings: &Settings) -> Result<(), StoreError> {
        SqliteTx::set_settings(self, settings)
    }

    fn list(&mut self, kind: ListKind, owner: &str) -> Result<Vec<String>, StoreError> {
        SqliteTx::list(self, kind, owner)
    }

    fn pattern_notices(&mut self) -> Result<Vec<String>, StoreError> {
        SqliteTx::pattern_notices(self)
    }

    fn clear_pattern_notices(&mut self) -> Result<(), StoreError> {
        SqliteTx::clear_pattern_notices(self)
    }

    fn add_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        SqliteTx::add_pattern(self, kind, owner, pattern)
    }

    fn delete_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        SqliteTx::delete_pattern(self, kind, owner, pattern)
    }

    fn domain_status(&mut self, domain: &str) -> Result<Option<bool>, StoreError> {
        SqliteTx::domain_status(self, domain)
    }

    fn set_domain_status(&mut self, domain: &str, enabled: bool) -> Result<(), StoreError> {
        SqliteTx::set_domain_status(self, domain, enabled)
    }

    fn domains(&mut self) -> Result<Vec<(String, bool)>, StoreError> {
        SqliteTx::domains(self)
    }

    fn delete_domain(&mut self, domain: &str) -> Result<(), StoreError> {
        SqliteTx::delete_domain(self, domain)
    }

    fn mailboxes(&mut self) -> Result<Vec<String>, StoreError> {
        SqliteTx::mailboxes(self)
    }

    fn triplet(&mut self, key: &TripletKey) -> Result<Option<Triplet>, StoreError> {
        SqliteTx::triplet(self, key)
    }

    fn put_triplet(
        &mut self,
        key: &TripletKey,
        network: &str,
        triplet: &Triplet,
    ) -> Result<(), StoreError> {
        SqliteTx::put_triplet(self, key, network, triplet)
    }

    fn awl_passes(&mut self, network: &str, now: i64) -> Result<u64, StoreError> {
        SqliteTx::awl_passes(self, network, now)
    }

    fn awl_passes_up_to(
        &mut self,
        network: &str,
        now: i64,
        enough: u64,
    ) -> Result<u64, StoreError> {
        SqliteTx::awl_passes_up_to(self, network, now, enough)
    }

    fn purge_expired(&mut self, now: i64) -> Result<u64, StoreError> {
        SqliteTx::purge_expired(self, now)
    }

    fn dns_cache_get(
        &mut self,
        ip: IpAddr,
        zones: &[String],
        now: i64,
    ) -> Result<Vec<ZoneAnswer>, StoreError> {
        dns_cache::zone_answers(self, ip, zones, now)
    }

    fn dns_cache_put(
        &mut self,
        ip: IpAddr,
        answers: &[ZoneAnswer],
        now: i64,
    ) -> Result<(), StoreError> {
        dns_cache::put_zone_answers(self, ip, answers, now)
    }

    fn forward_cache_get(
        &mut self,
        ip: IpAddr,
        name: &str,
        now: i64,
    ) -> Result<Option<Forward>, StoreError> {
        dns_cache::forward_answer(self, ip, name, now)
    }

    fn forward_cache_put(
        &mut self,
        ip: IpAddr,
        name: &str,
        forward: Forward,
        now: i64,
    ) -> Result<(), StoreError> {
        dns_cache::put_forward_answer(self, ip, name, forward, now)
    }

    fn log_decision(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        SqliteTx::log_decision(self, entry)
    }

    fn count_decisions(&mut self, counts: &[DecisionCount]) -> Result<(), StoreError> {
        SqliteTx::count_decisions(self, counts)
    }

    fn decision_counters(&mut self) -> Result<Vec<DecisionCount>, StoreError> {
        SqliteTx::decision_counters(self)
    }

    fn decision_log(&mut self, since: i64) -> Result<Vec<LogEntry>, StoreError> {
        SqliteTx::decision_log(self, since)
    }

    fn each_decision_log(
        &mut self,
        since: i64,
        each: &mut dyn FnMut(&LogEntry),
    ) -> Result<(), StoreError> {
        SqliteTx::each_decision_log(self, since, each)
    }

    fn purge_decision_log(&mut self, before: i64, limit: Option<u64>) -> Result<u64, StoreError> {
        SqliteTx::purge_decision_log(self, before, limit)
    }

    fn triplet_counts(&mut self, now: i64, awl_count: u32) -> Result<TripletCounts, StoreError> {
        SqliteTx::triplet_counts(self, now, awl_count)
    }

    fn purge_expired_batch(&mut self, now: i64, limit: u64) -> Result<u64, StoreError> {
        SqliteTx::purge_expired_batch(self, now, limit)
    }

    fn live_triplets(&mut self, now: i64) -> Result<Vec<LiveTriplet>, StoreError> {
        SqliteTx::live_triplets(self, now)
    }
}
