//! The records the store keeps and hands out: triplets and their keys, decision-log rows,
//! decision counters, counts, and triplets as copied between stores.

/// The key of a greylisting triplet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TripletKey {
    /// Client key: its network (`192.0.2.0/24`) or its sender organisation's domain.
    pub client: String,
    /// Envelope sender, lower-cased (and normalised when the setting says so); empty for bounces.
    pub sender: String,
    /// Envelope recipient, lower-cased.
    pub recipient: String,
}

/// The stored state of a triplet. Times are unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Triplet {
    /// First time the triplet was seen (reset when an expired record is recreated).
    pub first_seen: i64,
    /// Earliest time a retry is accepted.
    pub earliest_accept: i64,
    /// Last time the triplet was seen.
    pub last_seen: i64,
    /// When the record expires.
    pub expires: i64,
    /// How many times it passed.
    pub pass_count: u64,
}

/// One row of the decision log: what was decided for one recipient, and about whom.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct LogEntry {
    /// Unix seconds.
    pub time: i64,
    /// The client network (`192.0.2.0/24`); empty without a client address.
    pub client_network: String,
    /// The triplet's client key (network or host domain); empty when no triplet was involved.
    pub client_key: String,
    /// The sender organisation (registrable domain of a server-like host name); empty if none.
    pub organisation: String,
    /// The client address; empty for local injection.
    pub client_address: String,
    /// The verified client host name; empty if none.
    pub client_name: String,
    /// The envelope sender as given.
    pub sender: String,
    /// The recipient as given.
    pub recipient: String,
    /// `pass`, `defer` or `reject`.
    pub verdict: String,
    /// The log text of the deciding rule (`new`, `triplet found`, ...).
    pub reason: String,
    /// The list pattern that matched, if any.
    pub pattern: Option<String>,
    /// Seconds the triplet waited, on its first pass.
    pub delay: Option<i64>,
}

/// How many decisions one component made with one action for one reason, since the counter was
/// created.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DecisionCount {
    /// `filter`, `policyd` or `milter`.
    pub component: String,
    /// `pass`, `defer` or `reject`.
    pub action: String,
    /// The deciding rule's name (`new`, `triplet found`, ...).
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// Counts over the triplets table at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct TripletCounts {
    /// All stored triplet records.
    pub total: u64,
    /// Unexpired records that have passed at least once.
    pub passed: u64,
    /// Unexpired records still waiting for their first pass.
    pub pending: u64,
    /// Records expired but not yet purged.
    pub expired: u64,
    /// Client networks with at least `awl-count` passed, unexpired triplets (0 when AWL is off).
    pub awl_networks: u64,
}

impl TripletCounts {
    /// From the counts an SQL backend computed (signed integers): expired = total minus the
    /// unexpired ones.
    pub(super) fn from_sql(
        total: i64,
        passed: i64,
        pending: i64,
        awl_networks: i64,
    ) -> TripletCounts {
        let count = |n: i64| n.max(0) as u64;
        TripletCounts {
            total: count(total),
            passed: count(passed),
            pending: count(pending),
            expired: count(total - passed - pending),
            awl_networks: count(awl_networks),
        }
    }
}

/// A triplet with its key and client network, as copied between stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveTriplet {
    /// The triplet's key.
    pub key: TripletKey,
    /// The client network it came from (for the auto-whitelist).
    pub network: String,
    /// Its state.
    pub triplet: Triplet,
}
