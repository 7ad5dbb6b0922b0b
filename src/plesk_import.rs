//! Reading the output of Plesk's own `grey_listing --info-server`, so an admin moves a Plesk
//! server's configuration with one command (`grey_listing --import-plesk FILE`).
//!
//! Both known formats are accepted (DESIGN.md §2): newer Plesk, and older Plesk that wraps the
//! personal-conf row over two lines and indents list entries by one space.

use thiserror::Error;

use crate::config::{ListKind, ServerLists, Settings};

/// What Plesk's `--info-server` output says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PleskConfig {
    /// Plesk's six settings, applied over the current ones (extensions keep their values).
    pub enabled: bool,
    /// Grey interval, minutes.
    pub grey_interval: u32,
    /// Expire interval, minutes.
    pub expire_interval: u32,
    /// Penalty interval, minutes.
    pub penalty_interval: u32,
    /// Penalties on or off.
    pub penalty_enabled: bool,
    /// Personal configuration allowed.
    pub personal_conf: bool,
    /// The four server-wide lists.
    pub lists: ServerLists,
}

impl PleskConfig {
    /// The settings after applying this configuration over `current`.
    pub fn settings_over(&self, current: &Settings) -> Settings {
        Settings {
            enabled: self.enabled,
            grey_interval: self.grey_interval,
            expire_interval: self.expire_interval,
            penalty_interval: self.penalty_interval,
            penalty_enabled: self.penalty_enabled,
            personal_conf: self.personal_conf,
            ..current.clone()
        }
    }
}

/// Why the text is not Plesk's `--info-server` output.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum PleskParseError {
    /// A setting row is missing.
    #[error("no '{0}' row found: is this the output of Plesk's grey_listing --info-server?")]
    Missing(&'static str),
    /// The output stops early: a list section or the closing line is missing (a truncated paste
    /// would otherwise empty the lists it lost).
    #[error("incomplete output of Plesk's grey_listing --info-server: {0}; nothing was imported")]
    Incomplete(String),
    /// A setting row has a value we cannot read.
    #[error("line {line}: cannot read '{text}'")]
    BadValue {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Checking,
    Grey,
    Expire,
    PenaltyInterval,
    Penalty,
    Personal,
}

/// Row labels; "Penalty interval" comes before "Penalty" so the longer label wins.
const FIELDS: &[(&str, Field)] = &[
    ("Grey listing checking", Field::Checking),
    ("Grey interval", Field::Grey),
    ("Expire interval", Field::Expire),
    ("Penalty interval", Field::PenaltyInterval),
    ("Penalty", Field::Penalty),
    ("Personal grey listing configuration", Field::Personal),
];

const HEADERS: &[(&str, ListKind)] = &[
    ("Server-wide black list:", ListKind::Black),
    ("Server-wide white list:", ListKind::White),
    ("White domains patterns list:", ListKind::DomainsWhite),
    ("Black domains patterns list:", ListKind::DomainsBlack),
];

/// The line Plesk ends a complete `--info-server` output with.
const COMPLETE: &str = "SUCCESS: Gathering of server wide information complete.";

/// Parses Plesk's `--info-server` output. Every list section and the closing line must be
/// there: a missing section would otherwise read as an empty list.
pub(crate) fn parse_info_server(text: &str) -> Result<PleskConfig, PleskParseError> {
    let mut values: Vec<(Field, String, usize)> = Vec::new();
    let mut lists = ServerLists::default();
    let mut current_list: Option<ListKind> = None;
    // Older Plesk wraps "Personal grey listing" / "configuration          allowed".
    let mut pending_prefix: Option<String> = None;
    let mut seen_headers = [false; HEADERS.len()];
    let mut complete = false;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim();
        if let Some(at) = HEADERS.iter().position(|(header, _)| *header == trimmed) {
            seen_headers[at] = true;
            current_list = Some(HEADERS[at].1);
            continue;
        }
        if trimmed == COMPLETE {
            complete = true;
        }
        if let Some(kind) = current_list {
            if trimmed.is_empty() {
                current_list = None;
            } else if !trimmed.starts_with("SUCCESS:") {
                let entries = list_mut(&mut lists, kind);
                if !entries.iter().any(|e| e == trimmed) {
                    entries.push(trimmed.to_string());
                }
                continue;
            }
        }
        if trimmed.is_empty()
            || trimmed.starts_with("SUCCESS:")
            || trimmed.starts_with("Grey listing configuration")
        {
            continue;
        }
        let joined = match pending_prefix.take() {
            Some(prefix) => format!("{prefix} {trimmed}"),
            None => trimmed.to_string(),
        };
        let collapsed = collapse_spaces(&joined);
        let matched = FIELDS.iter().find_map(|&(label, field)| {
            collapsed
                .strip_prefix(label)
                .filter(|rest| rest.starts_with(' '))
                .map(|rest| (field, rest.trim().to_string()))
        });
        match matched {
            Some((field, value)) => values.push((field, value, line_no)),
            None if "Personal grey listing configuration".starts_with(collapsed.as_str()) => {
                pending_prefix = Some(collapsed);
            }
            None => {
                return Err(PleskParseError::BadValue {
                    line: line_no,
                    text: trimmed.to_string(),
                });
            }
        }
    }
    let mut missing: Vec<String> = HEADERS
        .iter()
        .zip(seen_headers)
        .filter(|(_, seen)| !seen)
        .map(|((header, _), _)| format!("no '{header}' section"))
        .collect();
    if !complete {
        missing.push(format!("no closing '{COMPLETE}' line"));
    }
    let get = |field: Field, name: &'static str| {
        values
            .iter()
            .rev()
            .find(|(f, _, _)| *f == field)
            .map(|(_, value, line)| (value.clone(), *line))
            .ok_or(PleskParseError::Missing(name))
    };
    let flag =
        |field: Field, name: &'static str, yes: &str, no: &str| -> Result<bool, PleskParseError> {
            let (value, line) = get(field, name)?;
            match value.as_str() {
                v if v == yes => Ok(true),
                v if v == no => Ok(false),
                _ => Err(PleskParseError::BadValue { line, text: value }),
            }
        };
    let minutes = |field: Field, name: &'static str| -> Result<u32, PleskParseError> {
        let (value, line) = get(field, name)?;
        value
            .strip_suffix("minutes")
            .map(str::trim)
            .and_then(|n| n.parse().ok())
            .ok_or(PleskParseError::BadValue { line, text: value })
    };
    let config = PleskConfig {
        enabled: flag(
            Field::Checking,
            "Grey listing checking",
            "enabled",
            "disabled",
        )?,
        grey_interval: minutes(Field::Grey, "Grey interval")?,
        expire_interval: minutes(Field::Expire, "Expire interval")?,
        penalty_interval: minutes(Field::PenaltyInterval, "Penalty interval")?,
        penalty_enabled: flag(Field::Penalty, "Penalty", "enabled", "disabled")?,
        personal_conf: flag(
            Field::Personal,
            "Personal grey listing configuration",
            "allowed",
            "prohibited",
        )?,
        lists,
    };
    if !missing.is_empty() {
        return Err(PleskParseError::Incomplete(missing.join(", ")));
    }
    Ok(config)
}

fn list_mut(lists: &mut ServerLists, kind: ListKind) -> &mut Vec<String> {
    match kind {
        ListKind::Black => &mut lists.black,
        ListKind::White => &mut lists.white,
        ListKind::DomainsWhite => &mut lists.domains_white,
        ListKind::DomainsBlack => &mut lists.domains_black,
        ListKind::DnswlZones => &mut lists.dnswl_zones,
        ListKind::DnsblZones => &mut lists.dnsbl_zones,
    }
}

fn collapse_spaces(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Plesk patterns known to reject big legitimate senders (DESIGN.md §2), with who they hit.
pub(crate) fn known_harmful(pattern: &str) -> Option<&'static str> {
    let lower = pattern.to_lowercase();
    let alternatives: Vec<&str> = lower.split('|').collect();
    if alternatives.contains(&"pool") {
        return Some(
            "'pool' matches Microsoft 365 outbound hosts (*.outboundpool.messaging.microsoft.com)",
        );
    }
    if alternatives.contains(&"static") {
        return Some("'static' matches Mailgun and other providers' static-address mail hosts");
    }
    if lower.contains("[0-9][0-9]") {
        return Some(
            "digit patterns match SparkPost, Pinterest and QQ mail hosts (mta-70-12-15.sparkpostmail.com)",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEWER: &str = "Grey listing configuration.\n\nGrey listing checking  enabled\nGrey interval          5 minutes\nExpire interval        51840 minutes\nPenalty interval       2 minutes\nPenalty                disabled\nPersonal grey listing configuration allowed\n\nServer-wide black list:\n*@somedomain.com\n\nServer-wide white list:\n*@bigfish.com\n\nWhite domains patterns list:\n*google.com\n*mail.ru\n\nBlack domains patterns list:\n*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*\ndsl|pool|broadband|hsd\n\nSUCCESS: Gathering of server wide information complete.\n";

    const OLDER: &str = "Grey listing configuration.\n\nGrey listing checking  disabled\nGrey interval          5 minutes\nExpire interval        51840 minutes\nPenalty interval       2 minutes\nPenalty                disabled\nPersonal grey listing\nconfiguration          allowed\n\nServer-wide black list:\n\nServer-wide white list:\n\nWhite domains patterns list:\n\nBlack domains patterns list:\n *[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*\n dsl|pool|broadband|hsd\n\nSUCCESS: Gathering of server wide information complete.\n";

    #[test]
    fn newer_format() {
        let config = parse_info_server(NEWER).unwrap();
        assert!(config.enabled && config.personal_conf && !config.penalty_enabled);
        assert_eq!(
            (
                config.grey_interval,
                config.expire_interval,
                config.penalty_interval
            ),
            (5, 51840, 2)
        );
        assert_eq!(config.lists.black, ["*@somedomain.com"]);
        assert_eq!(config.lists.white, ["*@bigfish.com"]);
        assert_eq!(config.lists.domains_white, ["*google.com", "*mail.ru"]);
        assert_eq!(config.lists.domains_black[1], "dsl|pool|broadband|hsd");
    }

    #[test]
    fn older_format_with_wrapped_row_and_indented_entries() {
        let config = parse_info_server(OLDER).unwrap();
        assert!(!config.enabled);
        assert!(config.personal_conf);
        assert!(config.lists.domains_white.is_empty());
        assert_eq!(
            config.lists.domains_black,
            [
                "*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*",
                "dsl|pool|broadband|hsd"
            ]
        );
    }

    #[test]
    fn rejects_other_text() {
        assert!(parse_info_server("hello world\n").is_err());
        assert_eq!(
            parse_info_server("Grey listing checking  enabled\n"),
            Err(PleskParseError::Missing("Grey interval"))
        );
    }

    #[test]
    fn truncated_output_is_refused_naming_what_is_missing() {
        let cut = NEWER
            .find("White domains patterns list:")
            .expect("sample has the section");
        let err = parse_info_server(&NEWER[..cut]).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, PleskParseError::Incomplete(_))
                && text.contains("White domains patterns list:")
                && text.contains("Black domains patterns list:")
                && text.contains("SUCCESS: Gathering"),
            "{text}"
        );
        let without_end = NEWER.replace(COMPLETE, "");
        let text = parse_info_server(&without_end).unwrap_err().to_string();
        assert!(
            text.contains("closing") && !text.contains("section"),
            "{text}"
        );
        for sample in [NEWER, OLDER] {
            assert!(parse_info_server(sample).is_ok());
        }
    }

    #[test]
    fn flags_harmful_patterns() {
        assert!(known_harmful("dsl|pool|broadband|hsd").is_some());
        assert!(known_harmful("dynamic|static|ppp").is_some());
        assert!(known_harmful("dsl|broadband|hsd").is_none());
    }
}
