//! Settings, lists and the validated edits the CLI applies to them (DESIGN.md §2).
//!
//! Everything here is plain data and pure validation: parsing `add:a,b;del:c`, checking minutes,
//! domains and mail addresses. Nothing touches the database, so the CLI can validate a whole
//! command line before it opens (or creates) anything.

use serde::{Deserialize, Serialize};

mod edits;
mod lists;
mod table;
mod values;
mod zones;

pub use crate::bounds::OverLimit;
pub use crate::names::BadName;
pub use edits::{
    EditFault, EditGroup, EditOp, ListChange, ListEdit, PatternError, apply_edit, check_pattern,
    edit_to_ascii, parse_list_edit, plan_edit,
};
pub use lists::{ListKind, MailboxLists, ServerLists};

pub use table::{
    GREYLIST_CLIENTS_WORDS, SETTINGS, SettingDef, SettingKind, SettingValueError, setting_by_key,
};
pub use values::{
    ValueError, parse_domain, parse_duration, parse_in_range, parse_mail, parse_on_off,
    parse_true_false,
};
pub use zones::{edit_zones, parse_zone};

/// Upper bound of the grey and penalty intervals, in minutes (30 days).
pub const MAX_GREY_MINUTES: u32 = 43_200;
/// Upper bound of the expire interval, in minutes (10 years).
pub const MAX_EXPIRE_MINUTES: u32 = 5_256_000;

/// Upper bound of the auto-whitelist count (the CLI and `--import` both refuse more).
pub const MAX_AWL_COUNT: u32 = 1_000_000;

/// Plesk's white host patterns that a new database starts with, in their printed order.
pub const DEFAULT_DOMAINS_WHITELIST: &[&str] = &[
    "*.office365.com",
    "*.outlook.com",
    "*.outlook.office.com",
    "*facebook.com",
    "*google.com",
    "*mail.ru",
    "*parallels.com",
    "*plesk.com",
    "*rambler.ru",
    "*yahoo.com",
    "*yandex.ru",
];

/// The black host patterns a new database starts with. Plesk's `pool`, `static` and digit
/// patterns are left out on purpose: they reject Microsoft 365, Mailgun, SparkPost and QQ.
pub const DEFAULT_DOMAINS_BLACKLIST: &[&str] = &["dsl|broadband|hsd", "dynamic|ppp|dyn-ip|dial-up"];

/// Default lifetime of a decision-log row: 30 days, in seconds.
pub const DEFAULT_LOG_RETENTION: u64 = 30 * 86_400;
/// Longest decision-log retention accepted: 10 years, in seconds.
pub const MAX_LOG_RETENTION: u64 = 3_650 * 86_400;

/// Server-wide scalar settings: Plesk's six, then our extensions (DESIGN.md §2, §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Greylisting checking on or off server-wide.
    pub enabled: bool,
    /// Minutes a new triplet waits before a retry is accepted.
    pub grey_interval: u32,
    /// Minutes a triplet record lives after its last pass.
    pub expire_interval: u32,
    /// Minutes added to the wait for each too-early retry, when penalties are on.
    pub penalty_interval: u32,
    /// Penalties on or off.
    pub penalty_enabled: bool,
    /// Mailbox-level lists honoured (true) or ignored (false).
    pub personal_conf: bool,
    /// Prefix length grouping IPv4 clients into one network (32 = exact address, as Plesk).
    pub ipv4_prefix: u8,
    /// Prefix length grouping IPv6 clients into one network (128 = exact address).
    pub ipv6_prefix: u8,
    /// Passed, unexpired triplets after which a client network skips greylisting (0 = off).
    pub awl_count: u32,
    /// Fold VERP/BATV/sub-address variants of a sender into one triplet sender.
    pub sender_normalize: bool,
    /// Key verified, non-residential clients by registrable domain instead of network.
    pub group_by_host_domain: bool,
    /// Seconds the decision log keeps a row (0 = no decision log is written). Shown and read
    /// in minutes in JSON, like every other interval there.
    #[serde(with = "minutes")]
    pub log_retention: u64,
    /// Which clients are greylisted: all (Plesk) or only suspicious ones (DESIGN.md §4).
    pub greylist_clients: GreylistClients,
}

/// Which clients reach the auto-whitelist and triplet steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GreylistClients {
    /// Every client (Plesk's behaviour).
    #[default]
    All,
    /// Only clients without a verified host name, with a name embedding their address, or
    /// listed on a DNSBL zone; everyone else passes as `trusted client`.
    Suspicious,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            enabled: true,
            grey_interval: 5,
            expire_interval: 51_840,
            penalty_interval: 2,
            penalty_enabled: false,
            personal_conf: true,
            ipv4_prefix: 24,
            ipv6_prefix: 64,
            awl_count: 5,
            sender_normalize: true,
            group_by_host_domain: true,
            log_retention: DEFAULT_LOG_RETENTION,
            greylist_clients: GreylistClients::All,
        }
    }
}

impl Settings {
    /// The settings as `(name, value)` pairs, the form the stores keep them in ([`SETTINGS`]).
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        SETTINGS
            .iter()
            .map(|def| (def.key, def.stored(self)))
            .collect()
    }

    /// Rebuilds settings from stored pairs; names not given (or unreadable) keep their default,
    /// so a database written by an older version still loads.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Settings {
        let mut settings = Settings::default();
        for (name, value) in pairs {
            if let Some(def) = setting_by_key(name) {
                def.load(&mut settings, value);
            }
        }
        settings
    }
}

/// Seconds kept in memory and in the stores, minutes in JSON (`--json`, `--export`): one unit
/// for every interval an admin reads, the unit of Plesk's options.
mod minutes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Seconds as minutes, rounded up (a retention is a lower bound: never show less).
    pub(super) fn serialize<S: Serializer>(
        seconds: &u64,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(seconds.div_ceil(60))
    }

    /// Minutes as seconds; a count too large to hold in seconds is an error, not a wrap.
    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let minutes = u64::deserialize(deserializer)?;
        minutes
            .checked_mul(60)
            .ok_or_else(|| serde::de::Error::custom(format!("{minutes} minutes is too long")))
    }
}

impl Settings {
    /// Whether the intervals make sense together: an expire interval not longer than the grey
    /// interval removes every triplet before its retry is accepted, so no new sender would ever
    /// get through.
    pub fn intervals_make_sense(&self) -> bool {
        self.expire_interval > self.grey_interval
    }
}

#[cfg(test)]
mod tests;
