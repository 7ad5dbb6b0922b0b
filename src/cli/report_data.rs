//! The numbers behind the report's charts: decisions per UTC hour by outcome, and how long mail
//! that passed had waited. `--report --json` prints them and the HTML report draws exactly them.

use serde::Serialize;

use crate::decision::Reason;
use crate::store::LogEntry;

/// Upper edges of the waiting-time buckets, in minutes; a last bucket holds everything longer.
pub(super) const DELAY_EDGES_MINUTES: [i64; 8] = [1, 5, 15, 30, 60, 120, 240, 480];

/// Decisions in one UTC hour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct Hour {
    /// Start of the hour, unix seconds.
    pub hour: i64,
    /// Passed recipients.
    pub pass: u64,
    /// Deferred recipients.
    pub defer: u64,
    /// Rejected recipients.
    pub reject: u64,
}

/// One bucket of the waiting-time histogram: waits longer than the previous edge and at most
/// `le_minutes` (`None`: longer than the last edge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct DelayBucket {
    /// Upper edge in minutes, inclusive; `None` for the open last bucket.
    pub le_minutes: Option<i64>,
    /// First passes that had waited that long.
    pub count: u64,
}

/// Counts decisions per UTC hour, one row at a time (the report streams the decision log).
#[derive(Debug, Clone)]
pub(super) struct HourlyCounter {
    from: i64,
    until: i64,
    first: i64,
    hours: Vec<Hour>,
}

impl HourlyCounter {
    /// One entry per UTC hour from the hour holding `from` to the hour holding `until`.
    pub(super) fn new(from: i64, until: i64) -> HourlyCounter {
        let first = from.div_euclid(3_600);
        let last = until.max(from).div_euclid(3_600);
        let hours = (first..=last)
            .map(|h| Hour {
                hour: h * 3_600,
                ..Hour::default()
            })
            .collect();
        HourlyCounter {
            from,
            until,
            first,
            hours,
        }
    }

    /// Counts `entry` in its hour; rows outside the period, or with another verdict, are not
    /// counted.
    pub(super) fn add(&mut self, entry: &LogEntry) {
        if entry.time < self.from || entry.time > self.until {
            return;
        }
        let Ok(index) = usize::try_from(entry.time.div_euclid(3_600) - self.first) else {
            return;
        };
        let Some(hour) = self.hours.get_mut(index) else {
            return;
        };
        match entry.verdict.as_str() {
            "pass" => hour.pass += 1,
            "defer" => hour.defer += 1,
            "reject" => hour.reject += 1,
            _ => {}
        }
    }

    /// The hours counted.
    pub(super) fn finish(self) -> Vec<Hour> {
        self.hours
    }
}

/// Counts how long mail waited between its first deferral and its first pass, in the buckets
/// of [`DELAY_EDGES_MINUTES`], one row at a time: the decision log records that wait on each
/// triplet's first pass.
#[derive(Debug, Clone)]
pub(super) struct DelayCounter {
    buckets: Vec<DelayBucket>,
}

impl Default for DelayCounter {
    fn default() -> DelayCounter {
        let buckets = DELAY_EDGES_MINUTES
            .iter()
            .map(|&edge| Some(edge))
            .chain([None])
            .map(|le_minutes| DelayBucket {
                le_minutes,
                count: 0,
            })
            .collect();
        DelayCounter { buckets }
    }
}

impl DelayCounter {
    /// Counts `entry` when it is a pass with a recorded wait.
    pub(super) fn add(&mut self, entry: &LogEntry) {
        let (Some(delay), "pass") = (entry.delay, entry.verdict.as_str()) else {
            return;
        };
        let index = DELAY_EDGES_MINUTES
            .iter()
            .position(|&edge| delay <= edge * 60)
            .unwrap_or(DELAY_EDGES_MINUTES.len());
        if let Some(bucket) = self.buckets.get_mut(index) {
            bucket.count += 1;
        }
    }

    /// The buckets counted.
    pub(super) fn finish(self) -> Vec<DelayBucket> {
        self.buckets
    }
}

/// Passes that selective greylisting let through at once, from the decision log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(super) struct SelectivePasses {
    /// Passes because a DNSWL zone listed the client (reason `dnswl`).
    pub dnswl: u64,
    /// Passes of clients that were not suspicious (reason `trusted client`).
    pub trusted_client: u64,
}

impl SelectivePasses {
    /// Counts `entry` when it is a DNSWL or trusted-client pass.
    pub(super) fn add(&mut self, entry: &LogEntry) {
        if entry.verdict != "pass" {
            return;
        }
        if entry.reason == Reason::Dnswl.as_str() {
            self.dnswl += 1;
        } else if entry.reason == Reason::TrustedClient.as_str() {
            self.trusted_client += 1;
        }
    }
}

/// The label of a bucket: `≤ 1 min`, `5–15 min`, `> 8 h`.
pub(super) fn bucket_label(index: usize) -> String {
    let minutes = |m: i64| {
        if m >= 60 && m % 60 == 0 {
            format!("{} h", m / 60)
        } else {
            format!("{m} min")
        }
    };
    match (index.checked_sub(1), DELAY_EDGES_MINUTES.get(index)) {
        (None, Some(&edge)) => format!("\u{2264} {}", minutes(edge)),
        (Some(prev), Some(&edge)) => {
            let low = DELAY_EDGES_MINUTES.get(prev).copied().unwrap_or(0);
            format!("{}\u{2013}{}", minutes(low), minutes(edge))
        }
        _ => format!(
            "> {}",
            minutes(DELAY_EDGES_MINUTES[DELAY_EDGES_MINUTES.len() - 1])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One entry per UTC hour from the hour holding `from` to the hour holding `until`, each with
    /// its decisions by outcome. Rows outside the period, or with another verdict, are not counted.
    fn hourly(entries: &[LogEntry], from: i64, until: i64) -> Vec<Hour> {
        let mut counter = HourlyCounter::new(from, until);
        entries.iter().for_each(|entry| counter.add(entry));
        counter.finish()
    }

    /// The waiting-time histogram of `entries` (see [`DelayCounter`]).
    fn delay_histogram(entries: &[LogEntry]) -> Vec<DelayBucket> {
        let mut counter = DelayCounter::default();
        entries.iter().for_each(|entry| counter.add(entry));
        counter.finish()
    }

    fn entry(time: i64, verdict: &str, delay: Option<i64>) -> LogEntry {
        LogEntry {
            time,
            verdict: verdict.to_string(),
            delay,
            ..LogEntry::default()
        }
    }

    #[test]
    fn hours_cover_the_period_and_count_by_outcome() {
        let entries = [
            entry(7_200, "defer", None),
            entry(7_300, "pass", None),
            entry(10_799, "reject", None),
            entry(10_800, "pass", None),
            entry(100, "pass", None),
        ];
        let hours = hourly(&entries, 7_000, 11_000);
        assert_eq!(hours.len(), 3);
        assert_eq!(
            hours[0],
            Hour {
                hour: 3_600,
                ..Hour::default()
            }
        );
        assert_eq!((hours[1].pass, hours[1].defer, hours[1].reject), (1, 1, 1));
        assert_eq!((hours[2].pass, hours[2].defer, hours[2].reject), (1, 0, 0));
    }

    #[test]
    fn delays_land_in_their_buckets() {
        let entries = [
            entry(0, "pass", Some(60)),
            entry(0, "pass", Some(61)),
            entry(0, "pass", Some(480 * 60 + 1)),
            entry(0, "defer", Some(30)),
            entry(0, "pass", None),
        ];
        let counts: Vec<u64> = delay_histogram(&entries).iter().map(|b| b.count).collect();
        assert_eq!(counts, [1, 1, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn bucket_labels() {
        assert_eq!(bucket_label(0), "\u{2264} 1 min");
        assert_eq!(bucket_label(4), "30 min\u{2013}1 h");
        assert_eq!(bucket_label(8), "> 8 h");
    }
}
