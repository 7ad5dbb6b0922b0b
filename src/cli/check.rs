//! `grey_listing --check [-w N] [-c N] [-ignore-file F] [-since 24h]`: a Nagios/Icinga plugin
//! (DESIGN.md §2: exit 0/1/2 OK/WARNING/CRITICAL, 3 UNKNOWN for its own errors). It warns when a
//! sender organisation (a domain) was deferred at least N times and is neither covered by a
//! white domains pattern nor in the ignore file, so new big senders get reviewed early.

use thiserror::Error;

use super::report::{OrganisationSummary, load, summarise};
use crate::escape::escape_plugin;
use crate::pattern::{Pattern, white_host_warnings};
use crate::store::{Store, StoreError};

/// Default look-back of `--check`: 24 hours.
pub(super) const DEFAULT_CHECK_SINCE: i64 = 86_400;
/// Default deferrals of one unlisted organisation for WARNING.
pub(super) const DEFAULT_WARNING: u64 = 10;
/// Default deferrals of one unlisted organisation for CRITICAL.
pub(super) const DEFAULT_CRITICAL: u64 = 50;

/// The validated options of `--check`.
#[derive(Debug, Clone)]
pub(super) struct CheckOptions {
    /// Seconds to look back.
    pub since: i64,
    /// Deferrals for WARNING.
    pub warning: u64,
    /// Deferrals for CRITICAL.
    pub critical: u64,
    /// Organisations to leave alone (anchored patterns on the domain).
    pub ignore: Vec<Pattern>,
}

/// Longest ignore file read: a list of reviewed organisations, not a data set.
const MAX_IGNORE_FILE: u64 = 1 << 20;

/// Reads the ignore file: one domain or domain pattern (`example.com`, `*.example.net`) per
/// line; blank lines and `#` comments are skipped. Opened without blocking (a FIFO would hang
/// the plugin) and refused unless it is a regular file of at most 1 MiB; a line that is not a
/// domain pattern is refused, naming its number, rather than silently matching nothing.
pub(super) fn read_ignore_file(path: &str) -> Result<Vec<Pattern>, IgnoreFileError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = escape_plugin(path).to_string();
    let cannot = |cause: std::io::Error| IgnoreFileError::Unreadable {
        shown: shown.clone(),
        cause,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(cannot)?;
    if !file.metadata().map_err(cannot)?.is_file() {
        return Err(IgnoreFileError::NotFile(shown));
    }
    let mut bytes = Vec::new();
    file.take(MAX_IGNORE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_IGNORE_FILE {
        return Err(IgnoreFileError::TooLong(shown));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return Err(IgnoreFileError::NotUtf8(shown));
    };
    let mut patterns = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if !is_domain_pattern(line) {
            return Err(IgnoreFileError::BadLine {
                shown,
                line: index + 1,
                text: escape_plugin(line).to_string(),
            });
        }
        patterns.push(Pattern::address(line.trim_start_matches("*.")));
    }
    Ok(patterns)
}

/// Why the ignore file is refused; `shown` is its path escaped for a plugin line.
#[derive(Debug, Error)]
pub(super) enum IgnoreFileError {
    /// Opening or reading failed.
    #[error("cannot read '{shown}': {cause}")]
    Unreadable {
        shown: String,
        #[source]
        cause: std::io::Error,
    },
    /// Not a regular file (a FIFO, a directory, a device).
    #[error("ignore file '{0}' is not a regular file")]
    NotFile(String),
    /// Over 1 MiB.
    #[error("ignore file '{0}' is longer than 1 MiB")]
    TooLong(String),
    /// Not UTF-8 text.
    #[error("ignore file '{0}' is not UTF-8 text")]
    NotUtf8(String),
    /// A line that is no domain pattern (its number from 1, and the line escaped).
    #[error("ignore file '{shown}' line {line}: '{text}' is not a domain or domain pattern")]
    BadLine {
        shown: String,
        line: usize,
        text: String,
    },
}

/// Letters, digits, `.`, `-`, `_` and the wildcards `*` and `?`: what a domain name or a
/// pattern of one is made of (non-ASCII letters included, for names written as Unicode).
fn is_domain_pattern(line: &str) -> bool {
    line.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '*' | '?'))
}

/// Runs the check; returns the status line and the Nagios exit status. `env` locates the
/// resolver for the DNS zones' health check (only when zones are configured).
pub(super) fn run(
    store: &mut dyn Store,
    options: &CheckOptions,
    now: i64,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, u8), StoreError> {
    let (entries, lists, settings) = load(store, now.saturating_sub(options.since))?;
    let deferrals = entries.iter().filter(|e| e.verdict == "defer").count();
    let passes = entries.iter().filter(|e| e.verdict == "pass").count();
    let flagged: Vec<OrganisationSummary> = summarise(&entries, &lists, &settings)
        .into_iter()
        .filter(|s| {
            s.is_domain
                && s.white_pattern.is_none()
                && s.deferrals >= options.warning
                && !options.ignore.iter().any(|p| p.is_match(&s.organisation))
        })
        .collect();
    let worst = flagged.first().map_or(0, |s| s.deferrals);
    // White host patterns any domain owner can match (or that lost their meaning when white
    // patterns moved to whole-label matching) stay a WARNING until they are edited.
    let borrowable: Vec<&str> = lists
        .domains_white
        .iter()
        .filter(|p| !white_host_warnings(p).is_empty())
        .map(String::as_str)
        .collect();
    // DNS zones that fail their health check (or cannot be checked) stay a WARNING too.
    let zones = super::check_dns::summary(&lists.dnswl_zones, &lists.dnsbl_zones, env);
    let failing_zones = zones.as_ref().map_or(0, |(_, failing)| *failing);
    let (status, code) = if worst >= options.critical {
        ("CRITICAL", 2)
    } else if worst >= options.warning || !borrowable.is_empty() || failing_zones > 0 {
        ("WARNING", 1)
    } else {
        ("OK", 0)
    };
    let period = format_period(options.since);
    let summary = if flagged.is_empty() {
        format!(
            "no unlisted sender organisation deferred {} times or more in the last {period}",
            options.warning
        )
    } else {
        let names: Vec<String> = flagged
            .iter()
            // Names from the decision log: escaped, and `|`, `;`, `=` too, so none can end the
            // status text or forge performance data.
            .map(|s| format!("{} ({})", escape_plugin(&s.organisation), s.deferrals))
            .collect();
        format!(
            "{} unlisted sender organisation(s) deferred often in the last {period}: {}",
            flagged.len(),
            names.join(", ")
        )
    };
    let summary = if borrowable.is_empty() {
        summary
    } else {
        format!(
            "{summary}; {} white domains pattern(s) to review: {}",
            borrowable.len(),
            // Patterns from the store: escaped like the organisation names above.
            borrowable
                .iter()
                .map(|p| escape_plugin(p))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let (summary, zone_data) = match zones {
        Some((text, failing)) => (
            format!("{summary}; {text}"),
            format!(" failing_zones={failing};;;0"),
        ),
        None => (summary, String::new()),
    };
    let line = format!(
        "GREY_LISTING {status} - {summary} | unlisted_organisations={};;;0 max_deferrals={worst};{};{};0 deferrals={deferrals};;;0 passes={passes};;;0{zone_data}\n",
        flagged.len(),
        options.warning,
        options.critical,
    );
    Ok((line, code))
}

/// A look-back period as the user would write it: `24h`, `7d`, `90m`.
fn format_period(seconds: i64) -> String {
    match seconds {
        s if s >= 2 * 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
