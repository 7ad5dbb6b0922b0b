//! Settings, lists and the validated edits the CLI applies to them (DESIGN.md §2).
//!
//! Everything here is plain data and pure validation: parsing `add:a,b;del:c`, checking minutes,
//! domains and mail addresses. Nothing touches the database, so the CLI can validate a whole
//! command line before it opens (or creates) anything.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::pattern::lint::Target;
use crate::pattern::{Pattern, same_pattern};

mod table;
mod zones;

pub use table::{
    GREYLIST_CLIENTS_WORDS, SETTINGS, SettingDef, SettingKind, SettingValueError, setting_by_key,
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

/// Which list a pattern belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// Envelope-sender patterns that reject (server-wide, or a mailbox's own).
    Black,
    /// Envelope-sender patterns that pass (server-wide, or a mailbox's own).
    White,
    /// Client host-name patterns that pass.
    DomainsWhite,
    /// Client host-name patterns that reject.
    DomainsBlack,
    /// DNSWL zones: a client address listed on one passes. Zone names, not patterns.
    DnswlZones,
    /// DNSBL zones: a client address listed on one is suspicious. Zone names, not patterns.
    DnsblZones,
}

impl ListKind {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Black => "black",
            ListKind::White => "white",
            ListKind::DomainsWhite => "domains_white",
            ListKind::DomainsBlack => "domains_black",
            ListKind::DnswlZones => "dnswl_zones",
            ListKind::DnsblZones => "dnsbl_zones",
        }
    }

    /// Whether the list holds DNS zone names (checked by [`parse_zone`], never compiled or
    /// linted as patterns) rather than patterns.
    pub fn is_zone(self) -> bool {
        matches!(self, ListKind::DnswlZones | ListKind::DnsblZones)
    }

    /// Black host-name patterns are matched unanchored, white ones on whole labels, address
    /// patterns anchored. The decision, `--explain`, `--report` and `--check` all compile here.
    /// Zone lists are not patterns and nothing compiles them; a zone name holds no pattern
    /// character, so compiled anchored it could only ever match itself.
    pub fn compile(self, source: &str) -> Pattern {
        match self {
            ListKind::DomainsWhite => Pattern::white_host(source),
            ListKind::DomainsBlack => Pattern::host(source),
            ListKind::Black | ListKind::White | ListKind::DnswlZones | ListKind::DnsblZones => {
                Pattern::address(source)
            }
        }
    }

    /// Whether the list holds client host-name patterns (else envelope-address patterns).
    pub fn is_host(self) -> bool {
        matches!(self, ListKind::DomainsWhite | ListKind::DomainsBlack)
    }

    /// Which pattern warnings an entry added to this list gets (none for zone names).
    pub fn lint_target(self) -> Option<Target> {
        match self {
            ListKind::Black => Some(Target::BlackAddress),
            ListKind::White => Some(Target::WhiteAddress),
            ListKind::DomainsWhite => Some(Target::WhiteHost),
            ListKind::DomainsBlack => Some(Target::BlackHost),
            ListKind::DnswlZones | ListKind::DnsblZones => None,
        }
    }

    /// The list as warnings name it; `owner` is `""` for server lists, else the mailbox.
    pub fn display_name(self, owner: &str) -> String {
        match (self, owner) {
            (ListKind::Black, "") => "server black list".to_string(),
            (ListKind::White, "") => "server white list".to_string(),
            (ListKind::Black, mail) => format!("black list of {mail}"),
            (ListKind::White, mail) => format!("white list of {mail}"),
            (ListKind::DomainsWhite, _) => "white domains patterns list".to_string(),
            (ListKind::DomainsBlack, _) => "black domains patterns list".to_string(),
            (ListKind::DnswlZones, _) => "DNSWL zones list".to_string(),
            (ListKind::DnsblZones, _) => "DNSBL zones list".to_string(),
        }
    }
}

/// The server-wide lists, as stored (insertion order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerLists {
    /// Server-wide black list (envelope senders).
    pub black: Vec<String>,
    /// Server-wide white list (envelope senders).
    pub white: Vec<String>,
    /// White domains patterns (client host names).
    pub domains_white: Vec<String>,
    /// Black domains patterns (client host names).
    pub domains_black: Vec<String>,
    /// DNSWL zones: a client address listed there passes (DESIGN.md §4). Absent from exports
    /// written before the zone lists existed: empty then.
    #[serde(default)]
    pub dnswl_zones: Vec<String>,
    /// DNSBL zones: a client address listed there is suspicious (DESIGN.md §4).
    #[serde(default)]
    pub dnsbl_zones: Vec<String>,
}

impl ServerLists {
    /// The lists of a new database.
    pub fn defaults() -> ServerLists {
        ServerLists {
            black: Vec::new(),
            white: Vec::new(),
            domains_white: DEFAULT_DOMAINS_WHITELIST
                .iter()
                .map(|s| s.to_string())
                .collect(),
            domains_black: DEFAULT_DOMAINS_BLACKLIST
                .iter()
                .map(|s| s.to_string())
                .collect(),
            dnswl_zones: Vec::new(),
            dnsbl_zones: Vec::new(),
        }
    }

    /// The list of a given kind.
    pub fn get(&self, kind: ListKind) -> &[String] {
        match kind {
            ListKind::Black => &self.black,
            ListKind::White => &self.white,
            ListKind::DomainsWhite => &self.domains_white,
            ListKind::DomainsBlack => &self.domains_black,
            ListKind::DnswlZones => &self.dnswl_zones,
            ListKind::DnsblZones => &self.dnsbl_zones,
        }
    }
}

/// A mailbox's own lists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxLists {
    /// The mailbox's black list (envelope senders).
    pub black: Vec<String>,
    /// The mailbox's white list (envelope senders).
    pub white: Vec<String>,
}

/// Add or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOp {
    /// Add the patterns (existing ones are left as stored and get a warning).
    Add,
    /// Delete the patterns (missing ones change nothing and get a warning).
    Del,
}

/// One `<add|del>:<p1,p2>` group of a list edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditGroup {
    /// Add or delete.
    pub op: EditOp,
    /// The patterns, in the order given.
    pub patterns: Vec<String>,
}

/// A whole list edit: groups applied in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListEdit {
    /// The groups, in order.
    pub groups: Vec<EditGroup>,
}

/// What is wrong with a value given on the command line.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValueError {
    /// Not `on` or `off`.
    #[error("invalid value '{0}' (expected on or off)")]
    OnOff(String),
    /// Not `true` or `false`.
    #[error("invalid value '{0}' (expected true or false)")]
    TrueFalse(String),
    /// Not a whole number.
    #[error("'{0}' is not a whole number of minutes")]
    NotANumber(String),
    /// A number outside its range.
    #[error("{value} is out of range ({min}..={max})")]
    OutOfRange {
        /// The value given.
        value: String,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A list edit that does not follow `<add|del>:<pattern[,pattern]>;...`.
    #[error("malformed list edit '{edit}': {why}")]
    MalformedEdit {
        /// The whole edit as given.
        edit: String,
        /// What is wrong.
        why: String,
    },
    /// A domain name that cannot be one.
    #[error("'{0}' is not a valid domain name")]
    Domain(String),
    /// A mail address that cannot be one.
    #[error("'{0}' is not a valid mail address (expected mail@domain)")]
    Mail(String),
    /// A pattern whose names have no A-label form.
    #[error("pattern '{pattern}': {why}")]
    PatternName {
        /// The pattern as given.
        pattern: String,
        /// What is wrong.
        why: String,
    },
    /// A DNS zone name that cannot be one.
    #[error("'{0}' is not a valid DNS zone (letters, digits and hyphens in dot-separated labels)")]
    Zone(String),
    /// A word that is not one of a setting's choices.
    #[error("invalid value '{value}' (expected {expected})")]
    Choice {
        /// The value given.
        value: String,
        /// The words accepted, joined with "or".
        expected: String,
    },
    /// A duration that is not a number with a unit.
    #[error("invalid duration '{0}' (expected a number with a unit: 90m, 36h, 7d)")]
    Duration(String),
}

/// Parses `on`/`off`.
pub fn parse_on_off(value: &str) -> Result<bool, ValueError> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(ValueError::OnOff(value.to_string())),
    }
}

/// Parses `true`/`false`.
pub fn parse_true_false(value: &str) -> Result<bool, ValueError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ValueError::TrueFalse(value.to_string())),
    }
}

/// Parses a whole number within `min..=max`.
pub fn parse_in_range(value: &str, min: u64, max: u64) -> Result<u64, ValueError> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    let is_integer = {
        let unsigned = digits.strip_prefix('-').unwrap_or(digits);
        !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit())
    };
    if !is_integer {
        return Err(ValueError::NotANumber(value.to_string()));
    }
    let out_of_range = || ValueError::OutOfRange {
        value: value.to_string(),
        min,
        max,
    };
    if digits.starts_with('-') {
        return Err(out_of_range());
    }
    let number: u64 = digits.parse().map_err(|_| out_of_range())?;
    if number < min || number > max {
        return Err(out_of_range());
    }
    Ok(number)
}

/// Parses a duration with a unit (`90m`, `36h`, `7d`, `2w`, `30s`) into seconds.
pub fn parse_duration(value: &str) -> Result<i64, ValueError> {
    let bad = || ValueError::Duration(value.to_string());
    let split = value.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = value.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    number.checked_mul(scale).ok_or_else(bad)
}

/// Parses the list-edit grammar `<add|del>:<pattern1[,pattern2]>;<add|del>:...`.
pub fn parse_list_edit(edit: &str) -> Result<ListEdit, ValueError> {
    let malformed = |why: String| ValueError::MalformedEdit {
        edit: crate::bounds::abridged(edit),
        why,
    };
    let mut groups = Vec::new();
    for group in edit.split(';') {
        let group = group.trim();
        if group.is_empty() {
            return Err(malformed("empty group".to_string()));
        }
        let (op, patterns) = group.split_once(':').ok_or_else(|| {
            malformed(format!(
                "group '{group}' has no ':' (expected add:... or del:...)"
            ))
        })?;
        let op = match op.trim() {
            "add" => EditOp::Add,
            "del" => EditOp::Del,
            other => {
                return Err(malformed(format!(
                    "unknown operation '{other}' (expected add or del)"
                )));
            }
        };
        let mut parsed = Vec::new();
        for pattern in patterns.split(',') {
            let pattern = pattern.trim();
            check_pattern(pattern).map_err(malformed)?;
            parsed.push(pattern.to_string());
        }
        groups.push(EditGroup {
            op,
            patterns: parsed,
        });
    }
    Ok(ListEdit { groups })
}

/// Rejects patterns that could only be mistakes: empty ones, empty `|` alternatives (which would
/// match every host), white space and control characters.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("empty pattern".to_string());
    }
    crate::bounds::check_pattern_length(pattern)?;
    if pattern.split('|').any(str::is_empty) {
        return Err(format!("pattern '{pattern}' has an empty '|' alternative"));
    }
    if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "pattern '{pattern}' contains white space or a control character"
        ));
    }
    Ok(())
}

/// One change a list edit makes to a stored list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListChange {
    /// Append this pattern.
    Add(String),
    /// Delete the stored pattern spelt exactly so.
    Del(String),
}

/// What an edit does to the list `kind` of `owner` (`""`: the server's) holding `list`
/// (patterns compare ignoring case, as the matcher does): the changes to make, in order, and the
/// `Warning:` lines — for each pattern added that will not match as meant
/// ([`crate::pattern::lint`]), each add of a pattern already there (its stored spelling is
/// kept) and each delete that removes nothing.
pub fn plan_edit(
    list: &[String],
    edit: &ListEdit,
    kind: ListKind,
    owner: &str,
) -> (Vec<ListChange>, Vec<String>) {
    let list_name = kind.display_name(owner);
    let mut current = list.to_vec();
    let mut changes = Vec::new();
    let mut warnings = Vec::new();
    for group in &edit.groups {
        for pattern in &group.patterns {
            let present = current.iter().any(|p| same_pattern(p, pattern));
            match (group.op, present) {
                (EditOp::Add, false) => {
                    if let Some(target) = kind.lint_target() {
                        warnings.extend(crate::pattern::lint::warnings(pattern, target));
                    }
                    current.push(pattern.clone());
                    changes.push(ListChange::Add(pattern.clone()));
                }
                (EditOp::Add, true) => {
                    warnings.push(format!("Warning: {pattern} is already in the {list_name}"));
                }
                (EditOp::Del, true) => current.retain(|p| {
                    let same = same_pattern(p, pattern);
                    if same {
                        changes.push(ListChange::Del(p.clone()));
                    }
                    !same
                }),
                (EditOp::Del, false) => {
                    warnings.push(format!("Warning: {pattern} is not in the {list_name}"));
                }
            }
        }
    }
    (changes, warnings)
}

/// Applies an edit to a list held in memory (insertion order kept; adds of present patterns and
/// deletes of missing ones change nothing; patterns compare ignoring case).
pub fn apply_edit(list: &mut Vec<String>, edit: &ListEdit) {
    // Which list only shapes the warnings, which are not wanted here.
    let (changes, _) = plan_edit(list, edit, ListKind::Black, "");
    for change in changes {
        match change {
            ListChange::Add(pattern) => list.push(pattern),
            ListChange::Del(pattern) => list.retain(|p| *p != pattern),
        }
    }
}

/// Puts the names in an edit's patterns into A-label form (see [`crate::names`]).
pub fn edit_to_ascii(kind: ListKind, edit: ListEdit) -> Result<ListEdit, ValueError> {
    let groups = edit
        .groups
        .into_iter()
        .map(|group| {
            let patterns = group
                .patterns
                .into_iter()
                .map(|pattern| {
                    crate::names::pattern_to_ascii(&pattern, kind.is_host())
                        .map_err(|why| ValueError::PatternName { pattern, why })
                })
                .collect::<Result<_, _>>()?;
            Ok(EditGroup {
                op: group.op,
                patterns,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ListEdit { groups })
}

/// Validates and normalises (A-label form, lower case, no trailing dot) a domain name.
pub fn parse_domain(value: &str) -> Result<String, ValueError> {
    let bad = || ValueError::Domain(value.to_string());
    let domain = value.strip_suffix('.').unwrap_or(value);
    let domain = crate::names::domain_to_ascii(domain).ok_or_else(bad)?;
    if domain.is_empty() || domain.len() > 253 {
        return Err(bad());
    }
    for label in domain.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(bad());
        }
    }
    Ok(domain)
}

/// Validates and normalises a mail address `local@domain`: lower case, the domain in A-label
/// form (the local part is not converted).
pub fn parse_mail(value: &str) -> Result<String, ValueError> {
    let bad = || ValueError::Mail(value.to_string());
    let (local, domain) = value.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.chars().any(|c| c.is_whitespace() || c.is_control());
    if !local_ok {
        return Err(bad());
    }
    let domain = parse_domain(domain).map_err(|_| bad())?;
    Ok(format!("{}@{}", local.to_lowercase(), domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_edit_grammar_groups_and_patterns() {
        let edit =
            parse_list_edit("del:*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*;add:*.dynamic.example.net,b")
                .unwrap();
        assert_eq!(edit.groups.len(), 2);
        assert_eq!(edit.groups[0].op, EditOp::Del);
        assert_eq!(edit.groups[1].patterns, vec!["*.dynamic.example.net", "b"]);
    }

    #[test]
    fn list_edit_rejects_mistakes() {
        for bad in [
            "", "add", "add:", "add:a,,b", "put:a", "add:a;", "add:dsl|", "add:a b",
        ] {
            assert!(parse_list_edit(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn apply_edit_keeps_order_and_ignores_noops() {
        let mut list = vec!["a".to_string(), "b".to_string()];
        apply_edit(
            &mut list,
            &parse_list_edit("add:c,a;del:b,zz;add:b").unwrap(),
        );
        assert_eq!(list, ["a", "c", "b"]);
    }

    #[test]
    fn edits_compare_ignoring_case_and_warn_about_noops() {
        let list = vec!["*.AmazonSES.com".to_string(), "*x.com".to_string()];
        let edit = parse_list_edit("del:*.amazonses.com;add:*X.COM,*.x.com;del:nothere").unwrap();
        let (changes, warnings) = plan_edit(&list, &edit, ListKind::DomainsWhite, "");
        assert_eq!(
            changes,
            [
                ListChange::Del("*.AmazonSES.com".to_string()),
                ListChange::Add("*.x.com".to_string())
            ]
        );
        assert_eq!(
            warnings,
            [
                "Warning: *X.COM is already in the white domains patterns list",
                "Warning: nothere is not in the white domains patterns list"
            ]
        );
    }

    #[test]
    fn minutes_ranges() {
        assert_eq!(parse_in_range("0", 0, 43_200), Ok(0));
        assert!(matches!(
            parse_in_range("-1", 0, 10),
            Err(ValueError::OutOfRange { .. })
        ));
        assert!(matches!(
            parse_in_range("5x", 0, 10),
            Err(ValueError::NotANumber(_))
        ));
        assert!(matches!(
            parse_in_range("99999999999999999999999", 0, 10),
            Err(ValueError::OutOfRange { .. })
        ));
    }

    #[test]
    fn domains_and_mails() {
        assert_eq!(parse_domain("Example.COM.").unwrap(), "example.com");
        assert!(parse_domain("exa mple.com").is_err());
        assert!(parse_domain("-x.com").is_err());
        assert!(parse_domain("a..b").is_err());
        assert_eq!(parse_mail("John@Example.com").unwrap(), "john@example.com");
        assert!(parse_mail("example.com").is_err());
        assert!(parse_mail("@example.com").is_err());
        assert!(parse_mail("a@b@c.com").is_err());
        assert_eq!(parse_domain("Bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(
            parse_domain("xn--bcher-kva.de").unwrap(),
            "xn--bcher-kva.de"
        );
        assert!(parse_domain("xn--zz.de").is_err());
        assert_eq!(
            parse_mail("jörg@bücher.de").unwrap(),
            "jörg@xn--bcher-kva.de"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert!(parse_duration("7").is_err());
        assert!(parse_duration("d").is_err());
    }

    #[test]
    fn settings_round_trip_through_pairs() {
        let settings = Settings {
            grey_interval: 8,
            penalty_enabled: true,
            ..Settings::default()
        };
        let pairs = settings.to_pairs();
        let back = Settings::from_pairs(pairs.iter().map(|(n, v)| (*n, v.as_str())));
        assert_eq!(back, settings);
    }
}
