//! What a transaction offers, by concept: [`ConfigTx`] (settings, lists, per-domain flags),
//! [`TripletTx`] (triplets and the auto-whitelist count), [`DecisionLogTx`] (decision log and
//! counters) and [`DnsCacheTx`] (cached DNS answers). [`Tx`] is their union, the one type the
//! callers see (`&mut dyn Tx`); its methods need no import, as a trait object carries its
//! supertraits' methods. Each backend implements each concept trait in the file of that
//! concept, and is a [`Tx`] by the blanket implementation below.

use std::net::IpAddr;

use crate::config::{ListKind, Settings};
use crate::dns::{Forward, ZoneAnswer};

use super::{DecisionCount, LiveTriplet, LogEntry, StoreError, Triplet, TripletCounts, TripletKey};

/// Reads and writes available inside one transaction.
///
/// A write transaction is exclusive (SQLite `BEGIN IMMEDIATE`), or, on PostgreSQL, locks each
/// triplet it reads, so a read followed by a write inside it is atomic: two filter processes
/// cannot both create the same triplet.
pub trait Tx: ConfigTx + TripletTx + DecisionLogTx + DnsCacheTx {}

impl<T: ConfigTx + TripletTx + DecisionLogTx + DnsCacheTx> Tx for T {}

/// The configuration inside one transaction: server-wide settings, the lists, the per-domain
/// checking flags and what an upgrade recorded about stored patterns.
pub trait ConfigTx {
    /// A stamp of the configuration (settings, lists, per-domain flags) as this transaction sees
    /// it: equal stamps mean equal configuration, and every committed configuration write, by
    /// any process, changes it. A long-running reader (the policy server) keeps what it read
    /// from the configuration while the stamp stays the same. `None` (the default) means the
    /// backend offers no stamp: read the configuration in every transaction.
    fn config_stamp(&mut self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
    /// The server-wide settings.
    fn settings(&mut self) -> Result<Settings, StoreError>;
    /// The server-wide settings, locked until the transaction ends, for a write that checks the
    /// new values against the stored ones: two admins changing the grey and the expire interval
    /// at once must not both pass the check against the other's old value. SQLite's write
    /// transaction is exclusive already (the default); PostgreSQL locks the settings rows.
    fn settings_for_update(&mut self) -> Result<Settings, StoreError> {
        self.settings()
    }
    /// Replaces the server-wide settings.
    fn set_settings(&mut self, settings: &Settings) -> Result<(), StoreError>;
    /// A list's patterns in insertion order. `owner` is `""` for server lists, else a mailbox.
    fn list(&mut self, kind: ListKind, owner: &str) -> Result<Vec<String>, StoreError>;
    /// The stored white host patterns an upgrade recorded because they match differently now,
    /// not yet reported.
    fn pattern_notices(&mut self) -> Result<Vec<String>, StoreError>;
    /// Forgets the recorded notices (they have been reported).
    fn clear_pattern_notices(&mut self) -> Result<(), StoreError>;
    /// Adds a pattern at the end of a list; a no-op if it is there already.
    fn add_pattern(&mut self, kind: ListKind, owner: &str, pattern: &str)
    -> Result<(), StoreError>;
    /// Deletes a pattern from a list; a no-op if it is not there.
    fn delete_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError>;
    /// A domain's own checking flag, `None` if never set.
    fn domain_status(&mut self, domain: &str) -> Result<Option<bool>, StoreError>;
    /// Sets a domain's checking flag.
    fn set_domain_status(&mut self, domain: &str, enabled: bool) -> Result<(), StoreError>;
    /// Every domain with its own checking flag, sorted by name.
    fn domains(&mut self) -> Result<Vec<(String, bool)>, StoreError>;
    /// Forgets a domain's own flag (it is then enabled, as a domain never set).
    fn delete_domain(&mut self, domain: &str) -> Result<(), StoreError>;
    /// Every mailbox that has a list entry, sorted.
    fn mailboxes(&mut self) -> Result<Vec<String>, StoreError>;
}

/// The triplets inside one transaction: the mail path's lookup and write, the auto-whitelist
/// count, purges and counts.
pub trait TripletTx {
    /// A triplet's state, if recorded (expired records included: the caller decides).
    fn triplet(&mut self, key: &TripletKey) -> Result<Option<Triplet>, StoreError>;
    /// Creates or replaces a triplet; `network` is the client network it came from (for AWL).
    fn put_triplet(
        &mut self,
        key: &TripletKey,
        network: &str,
        triplet: &Triplet,
    ) -> Result<(), StoreError>;
    /// How many distinct unexpired triplets from `network` have passed at least once.
    fn awl_passes(&mut self, network: &str, now: i64) -> Result<u64, StoreError>;
    /// [`TripletTx::awl_passes`] for the mail path, which only compares the count with the AWL
    /// threshold: a backend may stop counting at `enough` (the result is exact below it, and at
    /// least `enough` otherwise), so a large provider's network with thousands of passed
    /// triplets costs no more than a small one. The default counts them all.
    fn awl_passes_up_to(
        &mut self,
        network: &str,
        now: i64,
        enough: u64,
    ) -> Result<u64, StoreError> {
        let _ = enough;
        self.awl_passes(network, now)
    }
    /// Deletes the triplets expired at `now`; returns how many. Expired DNS cache rows go
    /// too (not counted).
    fn purge_expired(&mut self, now: i64) -> Result<u64, StoreError>;
    /// Deletes at most `limit` of the triplets expired at `now` (and at most `limit` expired DNS
    /// cache rows, not counted); returns how many triplets. The filter
    /// calls this now and then so the database stays bounded without a cron job, while no single
    /// mail waits for a large delete. A backend may look at only part of the table per call
    /// (SQLite: a window of triplets after where the previous call stopped), as long as repeated
    /// calls cover it all. Backends without a cheap bounded delete may purge all.
    fn purge_expired_batch(&mut self, now: i64, limit: u64) -> Result<u64, StoreError> {
        let _ = limit;
        self.purge_expired(now)
    }
    /// Counts triplets by state at `now`; `awl_count` is the auto-whitelist threshold.
    fn triplet_counts(&mut self, now: i64, awl_count: u32) -> Result<TripletCounts, StoreError>;
    /// Every triplet not expired at `now`, ordered by key (for `--migrate-store`).
    fn live_triplets(&mut self, now: i64) -> Result<Vec<LiveTriplet>, StoreError>;
}

/// The decision log and the decision counters inside one transaction.
pub trait DecisionLogTx {
    /// Appends a row to the decision log.
    fn log_decision(&mut self, entry: &LogEntry) -> Result<(), StoreError>;
    /// Adds `counts` to the decision counters (created at zero when new). The counters are never
    /// purged: they only grow, as monitoring counters must.
    fn count_decisions(&mut self, counts: &[DecisionCount]) -> Result<(), StoreError>;
    /// Every decision counter, ordered by component, action and reason.
    fn decision_counters(&mut self) -> Result<Vec<DecisionCount>, StoreError>;
    /// The decision-log rows with `time >= since`, oldest first.
    fn decision_log(&mut self, since: i64) -> Result<Vec<LogEntry>, StoreError>;
    /// Calls `each` with every decision-log row with `time >= since`, oldest first, for reports
    /// over a week of a busy server (millions of rows) that need not hold them all at once. The
    /// row passed may be reused between calls. By default, over [`DecisionLogTx::decision_log`].
    fn each_decision_log(
        &mut self,
        since: i64,
        each: &mut dyn FnMut(&LogEntry),
    ) -> Result<(), StoreError> {
        for entry in self.decision_log(since)? {
            each(&entry);
        }
        Ok(())
    }
    /// Deletes decision-log rows older than `before` (at most `limit` of them when given, so
    /// the mail path can prune a little at a time); returns how many.
    fn purge_decision_log(&mut self, before: i64, limit: Option<u64>) -> Result<u64, StoreError>;
}

/// The DNS answer cache inside one transaction. Both backends get it from
/// [`dns_cache`](super::dns_cache), over the two row operations each gives it.
pub trait DnsCacheTx {
    /// The cached answers of `zones` for `ip` not expired at `now` (listed or not listed; a
    /// zone without a live row is missing from the result), in the order of `zones`.
    fn dns_cache_get(
        &mut self,
        ip: IpAddr,
        zones: &[String],
        now: i64,
    ) -> Result<Vec<ZoneAnswer>, StoreError>;
    /// Stores the listed and not-listed answers for `ip`, each until `now` +
    /// [`dns_cache::DNS_CACHE_SECONDS`](super::dns_cache::DNS_CACHE_SECONDS), replacing older ones; no-answers are not stored.
    fn dns_cache_put(
        &mut self,
        ip: IpAddr,
        answers: &[ZoneAnswer],
        now: i64,
    ) -> Result<(), StoreError>;
    /// The cached forward confirmation of host name `name` for `ip`, if not expired at `now`.
    fn forward_cache_get(
        &mut self,
        ip: IpAddr,
        name: &str,
        now: i64,
    ) -> Result<Option<Forward>, StoreError>;
    /// Stores whether `name` forward-confirms `ip`, until `now` +
    /// [`dns_cache::DNS_CACHE_SECONDS`](super::dns_cache::DNS_CACHE_SECONDS); a no-answer is not stored.
    fn forward_cache_put(
        &mut self,
        ip: IpAddr,
        name: &str,
        forward: Forward,
        now: i64,
    ) -> Result<(), StoreError>;
}
