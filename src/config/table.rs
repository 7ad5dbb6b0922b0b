//! The server-wide settings, one row each: the key the stores, `--json` and `--export` use,
//! the `--update-server` option, the kind of value with its range, and how to read and write it
//! in [`Settings`]. The store pairs, the clap options (and so the man page and completions), the
//! option parsing and range checks of the CLI, the import checks and the options
//! `--update-server` accepts all read this table, so adding a setting is one row here (plus its
//! field and its use in the decision).

use super::{
    GreylistClients, MAX_AWL_COUNT, MAX_EXPIRE_MINUTES, MAX_GREY_MINUTES, MAX_LOG_RETENTION,
    Settings, ValueError, parse_duration, parse_in_range, parse_on_off, parse_true_false,
};

/// Why a value typed for a setting was refused.
#[derive(Debug)]
pub enum SettingValueError {
    /// Not a value of the setting's kind, or out of its range.
    Value(ValueError),
    /// A duration longer than the setting allows; `max_days` is the limit.
    TooLong {
        /// The longest duration accepted, in days.
        max_days: u64,
    },
    /// A duration that is not a whole number of minutes (durations are kept in minutes).
    NotWholeMinutes,
}

/// The kind of value a setting takes, with the range the CLI and imports accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingKind {
    /// `on`/`off` on the command line.
    OnOff,
    /// `true`/`false` on the command line.
    TrueFalse,
    /// A whole number in `min..=max`.
    Number {
        /// Smallest value accepted.
        min: u64,
        /// Largest value accepted.
        max: u64,
    },
    /// A duration with a unit (`30d`) on the command line, whole minutes up to `max` seconds;
    /// kept in seconds, shown and exported in minutes.
    Duration {
        /// Longest duration accepted, in seconds.
        max: u64,
    },
    /// One of a few words, kept as the word's index in `words` (so [`SettingDef::get`] and
    /// [`SettingDef::set`] stay numbers) and stored, shown and exported as the word.
    Choice {
        /// The words accepted, in index order.
        words: &'static [&'static str],
    },
}

/// One server-wide setting.
#[derive(Debug, Clone, Copy)]
pub struct SettingDef {
    /// The name in the stores, `--json` and `--export` (`awl_count`).
    pub key: &'static str,
    /// The `--update-server` option without its dash (`awl-count`).
    pub option: &'static str,
    /// The value's kind and range.
    pub kind: SettingKind,
    /// The row label in `--info-server` (with `--extended` for extensions).
    pub label: &'static str,
    /// The value as `--info-server` shows it.
    pub show: fn(&Settings) -> String,
    /// The left column of its `--help` row (`-awl-count <number>`).
    pub usage: &'static str,
    /// Its `--help` description.
    pub help: &'static str,
    /// The name of its value in the man page and completions (`N`; `on|off` and `true|false`
    /// offer those words to complete).
    pub value_name: &'static str,
    /// Its one-line description in the man page and completions.
    pub summary: &'static str,
    /// An extension of ours rather than one of Plesk's settings (shown by `--info-server
    /// --extended`, listed under "Extension options").
    pub extension: bool,
    /// The value in `settings` (switches as 0/1, durations in seconds).
    pub get: fn(&Settings) -> u64,
    /// Stores `value` (as [`SettingDef::get`] gives it) into `settings`; a value the field
    /// cannot hold leaves it as it is.
    pub set: fn(&mut Settings, u64),
}

impl SettingDef {
    /// Whether the value is a switch.
    pub fn is_switch(&self) -> bool {
        matches!(self.kind, SettingKind::OnOff | SettingKind::TrueFalse)
    }

    /// The value as the stores keep it: `true`/`false`, a choice's word or decimal digits.
    pub fn stored(&self, settings: &Settings) -> String {
        let value = (self.get)(settings);
        match self.kind {
            _ if self.is_switch() => (value != 0).to_string(),
            SettingKind::Choice { words } => usize::try_from(value)
                .ok()
                .and_then(|index| words.get(index))
                .map_or_else(|| value.to_string(), |word| word.to_string()),
            _ => value.to_string(),
        }
    }

    /// Reads a stored value into `settings`; an unreadable one is ignored (the default stays).
    pub fn load(&self, settings: &mut Settings, stored: &str) {
        let value = match self.kind {
            _ if self.is_switch() => stored.parse::<bool>().ok().map(u64::from),
            SettingKind::Choice { words } => choice_index(words, stored),
            _ => stored.parse::<u64>().ok(),
        };
        if let Some(value) = value {
            (self.set)(settings, value);
        }
    }

    /// Parses a value as typed on the command line (`on`, `true`, `30`, `30d`) into the form
    /// [`SettingDef::get`] gives.
    pub fn parse(&self, text: &str) -> Result<u64, SettingValueError> {
        match self.kind {
            SettingKind::OnOff => parse_on_off(text).map(u64::from),
            SettingKind::TrueFalse => parse_true_false(text).map(u64::from),
            SettingKind::Number { min, max } => parse_in_range(text, min, max),
            SettingKind::Choice { words } => {
                choice_index(words, text).ok_or_else(|| ValueError::Choice {
                    value: text.to_string(),
                    expected: words.join(" or "),
                })
            }
            SettingKind::Duration { max } => {
                let seconds = parse_duration(text).map_err(SettingValueError::Value)?;
                let seconds = u64::try_from(seconds).unwrap_or(u64::MAX);
                if seconds > max {
                    return Err(SettingValueError::TooLong {
                        max_days: max / 86_400,
                    });
                }
                if seconds % 60 != 0 {
                    return Err(SettingValueError::NotWholeMinutes);
                }
                return Ok(seconds);
            }
        }
        .map_err(SettingValueError::Value)
    }

    /// The range an import checks, in the unit the file gives (minutes for durations), with the
    /// value in that unit; `None` for switches.
    pub fn import_range(&self, settings: &Settings) -> Option<(u64, u64, u64)> {
        let value = (self.get)(settings);
        match self.kind {
            // A choice's word is checked when the file is read (an unknown word is refused).
            SettingKind::OnOff | SettingKind::TrueFalse | SettingKind::Choice { .. } => None,
            SettingKind::Number { min, max } => Some((value, min, max)),
            SettingKind::Duration { max } => Some((value / 60, 0, max / 60)),
        }
    }
}

/// The index of `word` among `words` (exact spelling, as the switches' `on`/`true`).
fn choice_index(words: &[&str], word: &str) -> Option<u64> {
    words
        .iter()
        .position(|w| *w == word)
        .and_then(|index| u64::try_from(index).ok())
}

/// The words of `-greylist-clients`, in the order of [`GreylistClients`]'s values 0 and 1.
pub const GREYLIST_CLIENTS_WORDS: &[&str] = &["all", "suspicious"];

fn enabled(flag: bool) -> &'static str {
    if flag { "enabled" } else { "disabled" }
}

fn show_awl(settings: &Settings) -> String {
    match settings.awl_count {
        0 => "disabled".to_string(),
        count => format!("after {count} passed triplets"),
    }
}

fn show_retention(settings: &Settings) -> String {
    let seconds = settings.log_retention;
    if seconds == 0 {
        "disabled (no decision log)".to_string()
    } else if seconds.is_multiple_of(86_400) {
        format!("{} days", seconds / 86_400)
    } else {
        format!("{} minutes", seconds.div_ceil(60))
    }
}

fn narrow<T: TryFrom<u64>>(slot: &mut T, value: u64) {
    if let Ok(value) = T::try_from(value) {
        *slot = value;
    }
}

/// Every server-wide setting, in the order `--update-server` checks its options.
pub const SETTINGS: [SettingDef; 13] = [
    SettingDef {
        key: "enabled",
        option: "status",
        label: "Grey listing checking",
        show: |s| enabled(s.enabled).to_string(),
        usage: "-status <on|off>",
        value_name: "on|off",
        summary: "Enable or disable grey listing (--update-server, --update-domain)",
        help: "enable/disable grey listing. Used with --update-domain or with --update-server command",
        extension: false,
        kind: SettingKind::OnOff,
        get: |s| u64::from(s.enabled),
        set: |s, v| s.enabled = v != 0,
    },
    SettingDef {
        key: "personal_conf",
        option: "personal-conf",
        label: "Personal grey listing configuration",
        show: |s| {
            if s.personal_conf {
                "allowed"
            } else {
                "prohibited"
            }
            .to_string()
        },
        usage: "-personal-conf <true|false>",
        value_name: "true|false",
        summary: "Allow or prohibit personal grey listing configuration (--update-server)",
        help: "allows or prohibits personal grey listing configuration for users. Used only with --update-server command.",
        extension: false,
        kind: SettingKind::TrueFalse,
        get: |s| u64::from(s.personal_conf),
        set: |s, v| s.personal_conf = v != 0,
    },
    SettingDef {
        key: "grey_interval",
        option: "grey-interval",
        label: "Grey interval",
        show: |s| format!("{} minutes", s.grey_interval),
        usage: "-grey-interval <number>",
        value_name: "MINUTES",
        summary: "Grey interval in minutes (--update-server)",
        help: "updates grey interval value (in minutes). Used only with --update-server command",
        extension: false,
        kind: SettingKind::Number {
            min: 0,
            max: MAX_GREY_MINUTES as u64,
        },
        get: |s| u64::from(s.grey_interval),
        set: |s, v| narrow(&mut s.grey_interval, v),
    },
    SettingDef {
        key: "expire_interval",
        option: "expire-interval",
        label: "Expire interval",
        show: |s| format!("{} minutes", s.expire_interval),
        usage: "-expire-interval <number>",
        value_name: "MINUTES",
        summary: "Expire interval in minutes (--update-server)",
        help: "updates expire interval value (in minutes). Used only with --update-server command",
        extension: false,
        kind: SettingKind::Number {
            min: 1,
            max: MAX_EXPIRE_MINUTES as u64,
        },
        get: |s| u64::from(s.expire_interval),
        set: |s, v| narrow(&mut s.expire_interval, v),
    },
    SettingDef {
        key: "penalty_interval",
        option: "penalty-interval",
        label: "Penalty interval",
        show: |s| format!("{} minutes", s.penalty_interval),
        usage: "-penalty-interval <number>",
        value_name: "MINUTES",
        summary: "Penalty interval in minutes (--update-server)",
        help: "updates penalty interval value (in minutes). Used only with --update-server command",
        extension: false,
        kind: SettingKind::Number {
            min: 0,
            max: MAX_GREY_MINUTES as u64,
        },
        get: |s| u64::from(s.penalty_interval),
        set: |s, v| narrow(&mut s.penalty_interval, v),
    },
    SettingDef {
        key: "penalty_enabled",
        option: "penalty-status",
        label: "Penalty",
        show: |s| enabled(s.penalty_enabled).to_string(),
        usage: "-penalty-status <true|false>",
        value_name: "true|false",
        summary: "Enable or disable penalties (--update-server)",
        help: "enable/disable penalties for server. Used only with --update-server command",
        extension: false,
        kind: SettingKind::TrueFalse,
        get: |s| u64::from(s.penalty_enabled),
        set: |s, v| s.penalty_enabled = v != 0,
    },
    SettingDef {
        key: "ipv4_prefix",
        option: "ipv4-prefix",
        label: "IPv4 prefix",
        show: |s| s.ipv4_prefix.to_string(),
        usage: "-ipv4-prefix <0-32>",
        value_name: "BITS",
        summary: "Prefix length of the IPv4 client network, 0-32 (--update-server; extension)",
        help: "prefix length of the client network an IPv4 sender is greylisted as (default 24; 32 = exact address, as Plesk). Used only with --update-server command",
        extension: true,
        kind: SettingKind::Number { min: 0, max: 32 },
        get: |s| u64::from(s.ipv4_prefix),
        set: |s, v| narrow(&mut s.ipv4_prefix, v),
    },
    SettingDef {
        key: "ipv6_prefix",
        option: "ipv6-prefix",
        label: "IPv6 prefix",
        show: |s| s.ipv6_prefix.to_string(),
        usage: "-ipv6-prefix <0-128>",
        value_name: "BITS",
        summary: "Prefix length of the IPv6 client network, 0-128 (--update-server; extension)",
        help: "prefix length of the client network an IPv6 sender is greylisted as (default 64; 128 = exact address). Used only with --update-server command",
        extension: true,
        kind: SettingKind::Number { min: 0, max: 128 },
        get: |s| u64::from(s.ipv6_prefix),
        set: |s, v| narrow(&mut s.ipv6_prefix, v),
    },
    SettingDef {
        key: "awl_count",
        option: "awl-count",
        label: "Client auto-whitelist",
        show: show_awl,
        usage: "-awl-count <number>",
        value_name: "N",
        summary: "Passed triplets after which a client network skips greylisting, 0 = off (--update-server; extension)",
        help: "after this many passed triplets a client network skips greylisting until they expire (default 5, 0 = off). Used only with --update-server command",
        extension: true,
        kind: SettingKind::Number {
            min: 0,
            max: MAX_AWL_COUNT as u64,
        },
        get: |s| u64::from(s.awl_count),
        set: |s, v| narrow(&mut s.awl_count, v),
    },
    SettingDef {
        key: "sender_normalize",
        option: "sender-normalize",
        label: "Sender normalization",
        show: |s| enabled(s.sender_normalize).to_string(),
        usage: "-sender-normalize <true|false>",
        value_name: "true|false",
        summary: "Fold VERP, BATV and +extension sender variants into one (--update-server; extension)",
        help: "count +extension, BATV (prvs=) and VERP variants of a sender as one sender (default true). Used only with --update-server command",
        extension: true,
        kind: SettingKind::TrueFalse,
        get: |s| u64::from(s.sender_normalize),
        set: |s, v| s.sender_normalize = v != 0,
    },
    SettingDef {
        key: "group_by_host_domain",
        option: "group-by-host-domain",
        label: "Group by host domain",
        show: |s| enabled(s.group_by_host_domain).to_string(),
        usage: "-group-by-host-domain <true|false>",
        value_name: "true|false",
        summary: "Key verified server host names by their registrable domain (--update-server; extension)",
        help: "key a client with a verified server host name by its registrable domain, so a provider retrying from another address is the same client (default true). Used only with --update-server command",
        extension: true,
        kind: SettingKind::TrueFalse,
        get: |s| u64::from(s.group_by_host_domain),
        set: |s, v| s.group_by_host_domain = v != 0,
    },
    SettingDef {
        key: "log_retention",
        option: "log-retention",
        label: "Decision log retention",
        show: show_retention,
        usage: "-log-retention <duration>",
        value_name: "DURATION",
        summary: "How long decision-log rows are kept, e.g. 30d; 0d = no decision log (--update-server; extension)",
        help: "how long the decision log keeps a row, e.g. 30d (default 30d; 0d = no decision log). Used only with --update-server command",
        extension: true,
        kind: SettingKind::Duration {
            max: MAX_LOG_RETENTION,
        },
        get: |s| s.log_retention,
        set: |s, v| s.log_retention = v,
    },
    SettingDef {
        key: "greylist_clients",
        option: "greylist-clients",
        label: "Greylist clients",
        show: |s| GREYLIST_CLIENTS_WORDS[greylist_clients_index(s.greylist_clients)].to_string(),
        usage: "-greylist-clients <all|suspicious>",
        value_name: "all|suspicious",
        summary: "Greylist all clients, or only suspicious ones (--update-server; extension)",
        help: "greylist every client (all, the default) or only suspicious ones: without a verified host name, with a name embedding their address, or listed on a DNSBL zone (suspicious). Used only with --update-server command",
        extension: true,
        kind: SettingKind::Choice {
            words: GREYLIST_CLIENTS_WORDS,
        },
        get: |s| greylist_clients_index(s.greylist_clients) as u64,
        set: |s, v| {
            s.greylist_clients = match v {
                0 => GreylistClients::All,
                1 => GreylistClients::Suspicious,
                _ => s.greylist_clients,
            }
        },
    },
];

fn greylist_clients_index(value: GreylistClients) -> usize {
    match value {
        GreylistClients::All => 0,
        GreylistClients::Suspicious => 1,
    }
}

/// The row for a store, JSON or export key.
pub fn setting_by_key(key: &str) -> Option<&'static SettingDef> {
    SETTINGS.iter().find(|def| def.key == key)
}
