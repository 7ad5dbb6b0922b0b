//! `grey_listing --report --html FILE`: the report as one self-contained HTML page — no script,
//! no external resource — with inline SVG charts, each followed by a table of the same numbers.
//!
//! Every value read from the store (organisation names, patterns, settings) is escaped twice:
//! first as the text report escapes it (control characters and bidirectional marks as `\xNN`),
//! then for HTML. The markup is XHTML-compatible, so an XML parser can check it.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::config::Settings;
use crate::escape::escape;
use crate::store::StoreError;
use crate::svg::{Series, StackedBars, escape_xml};

use super::report::{OrganisationSummary, format_delay, format_time};
use super::report_data::{DelayBucket, Hour, bucket_label};

/// Colours of the outcomes, the same in every chart.
const OUTCOMES: [Series; 3] = [
    Series {
        name: "pass",
        color: "#2e7d32",
    },
    Series {
        name: "defer",
        color: "#f9a825",
    },
    Series {
        name: "reject",
        color: "#c62828",
    },
];

/// Everything the page shows.
pub(super) struct Page<'a> {
    /// Start and end of the period, unix seconds.
    pub from: i64,
    /// End of the period.
    pub until: i64,
    /// Decisions per hour.
    pub hourly: &'a [Hour],
    /// Waiting-time histogram.
    pub delays: &'a [DelayBucket],
    /// The most deferred organisations.
    pub organisations: &'a [OrganisationSummary],
    /// Suggested whitelist commands.
    pub suggestions: &'a [String],
    /// Deferrals from which a command is suggested.
    pub threshold: u64,
    /// The settings in effect.
    pub settings: &'a Settings,
}

/// A value from the store, safe for the page.
fn shown(value: &str) -> String {
    escape_xml(&escape(value))
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222;background:#fff}\
table{border-collapse:collapse;margin:0.5em 0 2em}\
td,th{border:1px solid #bbb;padding:2px 8px;text-align:right}\
th{background:#eee}td.name{text-align:left}\
details{margin-bottom:2em}";

/// The whole page.
pub(super) fn render(page: &Page<'_>) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\
         <meta charset=\"utf-8\"/><title>grey_listing report</title>",
    );
    out.push_str(&format!("<style>{STYLE}</style></head>\n<body>\n"));
    out.push_str(&format!(
        "<h1>Greylisting report</h1>\n<p>From {} to {}.</p>\n",
        format_time(page.from),
        format_time(page.until)
    ));
    hourly_section(&mut out, page.hourly);
    delay_section(&mut out, page.delays);
    organisation_section(&mut out, page);
    settings_section(&mut out, page.settings);
    out.push_str("</body>\n</html>\n");
    out
}

fn hourly_section(out: &mut String, hourly: &[Hour]) {
    let label = |h: &Hour| {
        chrono::DateTime::from_timestamp(h.hour, 0).map_or_else(
            || h.hour.to_string(),
            |t| t.format("%m-%d %H:00").to_string(),
        )
    };
    let bars: Vec<(String, Vec<u64>)> = hourly
        .iter()
        .map(|h| (label(h), vec![h.pass, h.defer, h.reject]))
        .collect();
    out.push_str("<h2>Decisions per hour (UTC)</h2>\n");
    out.push_str(
        &StackedBars {
            title: "Decisions per hour (UTC), by outcome",
            series: &OUTCOMES,
            bars: &bars,
            label_every: hourly.len().div_ceil(8),
        }
        .render(),
    );
    out.push_str(
        "\n<details><summary>Table</summary><table id=\"hourly\">\
         <tr><th>Hour (UTC)</th><th>pass</th><th>defer</th><th>reject</th></tr>\n",
    );
    for (h, (name, _)) in hourly.iter().zip(&bars) {
        out.push_str(&format!(
            "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape_xml(name),
            h.pass,
            h.defer,
            h.reject
        ));
    }
    out.push_str("</table></details>\n");
}

fn delay_section(out: &mut String, delays: &[DelayBucket]) {
    const WAITED: [Series; 1] = [Series {
        name: "first passes",
        color: "#1565c0",
    }];
    let bars: Vec<(String, Vec<u64>)> = delays
        .iter()
        .enumerate()
        .map(|(i, b)| (bucket_label(i), vec![b.count]))
        .collect();
    out.push_str("<h2>How long legitimate mail waited</h2>\n<p>From the first deferral to the first pass of each triplet.</p>\n");
    out.push_str(
        &StackedBars {
            title: "First-pass waiting time",
            series: &WAITED,
            bars: &bars,
            label_every: 1,
        }
        .render(),
    );
    out.push_str("\n<table id=\"delays\"><tr><th>Waited</th><th>First passes</th></tr>\n");
    for (name, values) in &bars {
        out.push_str(&format!(
            "<tr><td class=\"name\">{}</td><td>{}</td></tr>\n",
            escape_xml(name),
            values.first().copied().unwrap_or(0)
        ));
    }
    out.push_str("</table>\n");
}

fn organisation_section(out: &mut String, page: &Page<'_>) {
    const DEFERRED: [Series; 1] = [Series {
        name: "deferrals",
        color: "#f9a825",
    }];
    out.push_str("<h2>Sender organisations most often deferred</h2>\n");
    let bars: Vec<(String, Vec<u64>)> = page
        .organisations
        .iter()
        .map(|s| (escape(&s.organisation).into_owned(), vec![s.deferrals]))
        .collect();
    out.push_str(
        &StackedBars {
            title: "Deferrals by sender organisation",
            series: &DEFERRED,
            bars: &bars,
            label_every: 1,
        }
        .render(),
    );
    out.push_str(
        "\n<table id=\"organisations\"><tr><th>Sender organisation</th><th>Deferrals</th>\
         <th>Client addresses</th><th>Later accepted</th><th>Median delay</th>\
         <th>White pattern</th></tr>\n",
    );
    for s in page.organisations {
        out.push_str(&format!(
            "<tr><td class=\"name\">{}</td><td>{}</td><td>{}</td><td>{} of {}</td><td>{}</td>\
             <td class=\"name\">{}</td></tr>\n",
            shown(&s.organisation),
            s.deferrals,
            s.client_addresses,
            s.later_accepted,
            s.deferred_pairs,
            s.median_delay.map_or("-".to_string(), format_delay),
            s.white_pattern.as_deref().map_or("-".to_string(), shown),
        ));
    }
    out.push_str("</table>\n");
    if page.suggestions.is_empty() {
        out.push_str(&format!(
            "<p>No suggestions: no unlisted sender domain was deferred {} times or more.</p>\n",
            page.threshold
        ));
    } else {
        out.push_str(&format!(
            "<p>Suggested commands (sender domains deferred {} times or more, not white-listed):</p>\n<pre id=\"suggestions\">",
            page.threshold
        ));
        for command in page.suggestions {
            out.push_str(&shown(command));
            out.push('\n');
        }
        out.push_str("</pre>\n");
    }
}

fn settings_section(out: &mut String, settings: &Settings) {
    out.push_str(
        "<h2>Settings in effect</h2>\n<table id=\"settings\"><tr><th>Setting</th><th>Value</th></tr>\n",
    );
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(settings) {
        for (name, value) in map {
            let value = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            out.push_str(&format!(
                "<tr><td class=\"name\">{}</td><td>{}</td></tr>\n",
                shown(&name),
                shown(&value)
            ));
        }
    }
    out.push_str("</table>\n");
}

/// Writes the page to `target` (`-`: returned for standard output). An existing file is
/// replaced by renaming a finished temporary file over it: a reader never sees half a page, and
/// a symbolic link at `target` is replaced, never followed.
pub(super) fn write(target: &str, page: &str) -> Result<String, StoreError> {
    if target == "-" {
        return Ok(page.to_string());
    }
    let path = Path::new(target);
    let io = |what: &'static str| {
        move |source| StoreError::Io {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut file = tempfile::Builder::new()
        .prefix(".grey_listing-report")
        .tempfile_in(dir)
        .map_err(io("cannot create a temporary file beside"))?;
    file.write_all(page.as_bytes())
        .and_then(|()| file.flush())
        .and_then(|()| {
            file.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .map_err(io("cannot write"))?;
    file.persist(path)
        .map_err(|e| e.error)
        .map_err(io("cannot replace"))?;
    Ok(format!(
        "SUCCESS: HTML report written to {}.\n",
        escape(target)
    ))
}
