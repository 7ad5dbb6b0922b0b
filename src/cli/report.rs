//! `grey_listing --report [-since 7d] [-top N] [-threshold N] [--json]`: the sender
//! organisations most often deferred, from the decision log, with suggested white patterns.

use serde_json::json;
use tabled::settings::Style;
use tabled::{Table, Tabled};

use super::{report_data, report_html, to_json};
use crate::config::{self, ServerLists, Settings};
use crate::escape::escape;
use crate::store::{self, LogEntry, Store, StoreError, StoreExt};

mod summary;

pub(super) use summary::{OrganisationSummary, Summariser, summarise};

/// Default look-back of `--report`: 7 days.
pub(super) const DEFAULT_REPORT_SINCE: i64 = 7 * 86_400;
/// Default number of rows of `--report`.
pub(super) const DEFAULT_TOP: u64 = 10;
/// Default deferrals from which `--report` suggests a white pattern.
pub(super) const DEFAULT_THRESHOLD: u64 = 5;

/// The validated options of `--report`.
#[derive(Debug, Clone)]
pub(super) struct ReportOptions {
    /// Seconds to look back.
    pub since: i64,
    /// Rows to show.
    pub top: usize,
    /// Deferrals from which a white pattern is suggested.
    pub threshold: u64,
    /// Write an HTML page with charts to this file (`-`: standard output) instead of the table.
    pub html: Option<String>,
}

/// Reads the decision log since `now - since` and the lists, in one snapshot.
pub(super) fn load(
    store: &mut dyn Store,
    since: i64,
) -> Result<(Vec<LogEntry>, ServerLists, Settings), StoreError> {
    store.read_with(|tx| {
        Ok((
            tx.decision_log(since)?,
            store::server_lists(tx)?,
            tx.settings()?,
        ))
    })
}

/// Everything the report shows, gathered in one pass over the decision log since `from`
/// (streamed: a week of a busy server is millions of rows) in one snapshot with the lists.
struct Gathered {
    summaries: Vec<OrganisationSummary>,
    hourly: Vec<report_data::Hour>,
    delays: Vec<report_data::DelayBucket>,
    selective: report_data::SelectivePasses,
    settings: Settings,
}

fn gather(store: &mut dyn Store, from: i64, until: i64) -> Result<Gathered, StoreError> {
    store.read_with(|tx| {
        let settings = tx.settings()?;
        let lists = store::server_lists(tx)?;
        let mut summariser = Summariser::new(&settings);
        let mut hourly = report_data::HourlyCounter::new(from, until);
        let mut delays = report_data::DelayCounter::default();
        let mut selective = report_data::SelectivePasses::default();
        tx.each_decision_log(from, &mut |entry| {
            summariser.add(entry);
            hourly.add(entry);
            delays.add(entry);
            selective.add(entry);
        })?;
        Ok(Gathered {
            summaries: summariser.finish(&lists),
            hourly: hourly.finish(),
            delays: delays.finish(),
            selective,
            settings,
        })
    })
}

#[derive(Tabled)]
struct Row {
    #[tabled(rename = "Sender organisation")]
    organisation: String,
    #[tabled(rename = "Deferrals")]
    deferrals: u64,
    #[tabled(rename = "Client addresses")]
    addresses: u64,
    #[tabled(rename = "Later accepted")]
    accepted: String,
    #[tabled(rename = "Median delay")]
    median: String,
    #[tabled(rename = "White pattern")]
    pattern: String,
}

/// Runs the report.
pub(super) fn run(
    store: &mut dyn Store,
    options: &ReportOptions,
    now: i64,
    json: bool,
) -> Result<String, StoreError> {
    let from = now.saturating_sub(options.since);
    let Gathered {
        mut summaries,
        hourly,
        delays,
        selective,
        settings,
    } = gather(store, from, now)?;
    summaries.truncate(options.top);
    let suggestions: Vec<String> = summaries
        .iter()
        .filter(|s| s.is_domain && s.white_pattern.is_none() && s.deferrals >= options.threshold)
        // A command to paste into a shell: only for names that are plain domain names, whatever
        // the decision log holds.
        .filter(|s| config::parse_domain(&s.organisation).is_ok_and(|d| d == s.organisation))
        .map(|s| {
            format!(
                "grey_listing -u -domains-whitelist add:*.{}",
                s.organisation
            )
        })
        .collect();
    if let Some(target) = &options.html {
        let page = report_html::render(&report_html::Page {
            from,
            until: now,
            hourly: &hourly,
            delays: &delays,
            organisations: &summaries,
            suggestions: &suggestions,
            threshold: options.threshold,
            settings: &settings,
        });
        return report_html::write(target, &page);
    }
    if json {
        return Ok(to_json(&json!({
            "since": from,
            "until": now,
            "organisations": summaries,
            "threshold": options.threshold,
            "suggestions": suggestions,
            "hourly": hourly,
            "delay_histogram": delays,
            "selective_passes": selective,
        })));
    }
    let mut out = format!(
        "Sender organisations most often deferred since {} (top {}):\n\n",
        format_time(from),
        options.top
    );
    if summaries.is_empty() {
        out.push_str("No deferrals recorded in this period.\n");
        out.push_str(&selective_text(selective));
        return Ok(out);
    }
    let rows: Vec<Row> = summaries
        .iter()
        .map(|s| Row {
            organisation: escape(&s.organisation).into_owned(),
            deferrals: s.deferrals,
            addresses: s.client_addresses,
            accepted: format!("{} of {}", s.later_accepted, s.deferred_pairs),
            median: s.median_delay.map_or("-".to_string(), format_delay),
            pattern: s
                .white_pattern
                .as_deref()
                .map_or_else(|| "-".to_string(), |p| escape(p).into_owned()),
        })
        .collect();
    let mut table = Table::new(rows);
    table.with(Style::psql());
    out.push_str(&table.to_string());
    out.push('\n');
    out.push('\n');
    if suggestions.is_empty() {
        out.push_str(&format!(
            "No suggestions: no unlisted sender domain was deferred {} times or more.\n",
            options.threshold
        ));
    } else {
        out.push_str(&format!(
            "Suggested commands (sender domains deferred {} times or more, not white-listed):\n",
            options.threshold
        ));
        for command in &suggestions {
            out.push_str(command);
            out.push('\n');
        }
    }
    out.push_str(&selective_text(selective));
    Ok(out)
}

/// The line about selective greylisting's passes (nothing when there were none).
fn selective_text(passes: report_data::SelectivePasses) -> String {
    let total = passes.dnswl + passes.trusted_client;
    if total == 0 {
        return String::new();
    }
    format!(
        "\nPassed without greylisting by selective greylisting: {total} ({} dnswl, {} trusted client).\n",
        passes.dnswl, passes.trusted_client
    )
}

/// A unix time as `2026-11-23 09:00:00 UTC`.
pub(super) fn format_time(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0).map_or_else(
        || seconds.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// A delay in seconds as `45s`, `7m 30s`, `2h 05m`, `3d 04h`.
pub(super) fn format_delay(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {:02}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {:02}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {:02}h", s / 86_400, s % 86_400 / 3_600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_readable() {
        assert_eq!(format_delay(45), "45s");
        assert_eq!(format_delay(450), "7m 30s");
        assert_eq!(format_delay(7_500), "2h 05m");
        assert_eq!(format_delay(273_600), "3d 04h");
    }
}
