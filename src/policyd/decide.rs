//! One turn's decisions, guarded: the actions for a batch of requests, with any panic while
//! deciding or describing them caught, logged and answered `DUNNO` for the whole batch, so a bug
//! reached by one request never takes the server (and with it every mail) down. A panic inside a
//! store transaction is caught closer, by the decider, which then drops its connection (so the
//! transaction is rolled back) and reopens it for the next batch.

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Timelike};

use crate::dns::DnsFacts;
use crate::engine::{Checked, DnsPlan, Message};
use crate::logging::Logger;

use super::Config;
use super::batch::{BatchDecider, DecideError};
use super::conn::Pending;
use super::connections::Table;
use super::protocol::Parsed;
use super::reply::Action;

/// What to do with one request of a batch.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Answer it.
    Reply(Action),
    /// Ask DNS first (`known`: the answers the store's cache had); decided in a later batch.
    Park {
        /// What is left to ask.
        ask: DnsPlan,
        /// The answers known so far.
        known: DnsFacts,
    },
}

/// The step for each of `pending`, in order. Decides the checks in one batch; a panic answers
/// every request of the batch `DUNNO`, with a log line.
pub(super) fn actions(
    pending: &[Pending],
    conns: &Table,
    decider: &mut BatchDecider,
    config: &Config,
    log: &mut Logger,
) -> Vec<Step> {
    let guarded = panic::catch_unwind(AssertUnwindSafe(|| {
        decide_and_describe(pending, conns, decider, config, log)
    }));
    match guarded {
        Ok(actions) => actions,
        Err(payload) => {
            log.error(&panic_line(
                pending.len(),
                "request",
                "all answered DUNNO",
                payload.as_ref(),
            ));
            vec![Step::Reply(Action::Dunno); pending.len()]
        }
    }
}

fn decide_and_describe(
    pending: &[Pending],
    conns: &Table,
    decider: &mut BatchDecider,
    config: &Config,
    log: &mut Logger,
) -> Vec<Step> {
    let checks: Vec<(&Message, i64)> = pending
        .iter()
        .filter_map(|p| match &p.kind {
            Parsed::Check { message, now } => Some((message, *now)),
            Parsed::Ignore(_) | Parsed::Empty => None,
        })
        .collect();
    let started = std::time::Instant::now();
    let outcomes = if checks.is_empty() {
        Vec::new()
    } else {
        decider.decide(&checks, log)
    };
    if let Some(metrics) = &config.metrics {
        metrics.record_batch(started.elapsed().as_secs_f64(), &checks, &outcomes);
    }
    let mut outcomes = outcomes.into_iter();
    pending
        .iter()
        .map(|request| match &request.kind {
            Parsed::Ignore(why) => {
                let peer = conns
                    .get(&request.token)
                    .map_or_else(String::new, |c| c.peer.to_string());
                log.info(&format!("action=dunno, reason={why}, peer={peer}"));
                Step::Reply(Action::Dunno)
            }
            // Logged (once per connection) where it was read.
            Parsed::Empty => Step::Reply(Action::Dunno),
            Parsed::Check { message, now } => {
                match outcomes.next().unwrap_or(Err(DecideError::MissingOutcome)) {
                    Ok(Checked::NeedsDns { ask, known }) => Step::Park { ask, known },
                    Ok(Checked::Decided(outcome)) => Step::Reply(super::reply::describe_and_act(
                        message,
                        *now,
                        Ok(outcome),
                        config,
                        log,
                    )),
                    Err(why) => Step::Reply(super::reply::describe_and_act(
                        message,
                        *now,
                        Err(why),
                        config,
                        log,
                    )),
                }
            }
        })
        .collect()
}

/// The line for a panic while deciding a batch of `count` `what`s (requests, recipients), all
/// of which were then given `outcome`; both daemons write it, in this one form.
pub(crate) fn panic_line(
    count: usize,
    what: &str,
    outcome: &str,
    payload: &(dyn Any + Send),
) -> String {
    format!(
        "panic while deciding a batch of {count} {what}{}, {outcome}: {}",
        if count == 1 { "" } else { "s" },
        panic_text(payload)
    )
}

/// The message a panic was raised with (`panic!` gives a `&str` or a `String`).
pub(super) fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(no message)".to_string()
    }
}

/// RFC 2822 date of `now` in local time, as mail headers carry it; for any `now` (the time may
/// come from a request's `policy_test_time`): years past 9999 or before 0 are written with as
/// many digits as they need, and a time beyond the calendar's range as its Unix seconds.
pub(super) fn header_date(now: i64) -> String {
    let time = match chrono::Local.timestamp_opt(now, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            Some(t.fixed_offset())
        }
        chrono::LocalResult::None => {
            DateTime::<chrono::Utc>::from_timestamp(now, 0).map(|t| t.fixed_offset())
        }
    };
    time.map_or_else(|| now.to_string(), |t| rfc2822(&t))
}

/// `Tue, 14 Nov 2023 22:13:20 +0000` (day not padded, as chrono writes it), built from the date's fields (chrono's own RFC 2822
/// writer panics on a year it cannot write in four digits).
fn rfc2822(time: &DateTime<FixedOffset>) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.get(time.month0() as usize).copied().unwrap_or("Jan");
    let offset = time.offset().local_minus_utc();
    let sign = if offset < 0 { '-' } else { '+' };
    let minutes = offset.unsigned_abs() / 60;
    format!(
        "{}, {} {month} {:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        time.weekday(),
        time.day(),
        time.year(),
        time.hour(),
        time.minute(),
        time.second(),
        minutes / 60,
        minutes % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Within chrono's own range the header date is exactly its RFC 2822 form.
    #[test]
    fn header_date_matches_chronos_rfc2822_for_ordinary_years() {
        for now in [0, 1_700_000_000, 1_000_000_000, -86_400, 253_402_300_799] {
            let expected = chrono::Local
                .timestamp_opt(now, 0)
                .single()
                .map(|t| t.to_rfc2822())
                .expect("in range");
            assert_eq!(header_date(now), expected, "{now}");
        }
        let utc = DateTime::<chrono::Utc>::from_timestamp(1_700_000_000, 0).expect("in range");
        let east = utc.with_timezone(&FixedOffset::east_opt(5 * 3600 + 1800).expect("offset"));
        let west = utc.with_timezone(&FixedOffset::west_opt(3 * 3600).expect("offset"));
        assert_eq!(rfc2822(&east), east.to_rfc2822());
        assert_eq!(rfc2822(&west), west.to_rfc2822());
    }

    // A test time after year 9999 (chrono's writer panics there), before year 0, or past the
    // calendar gives a header date instead of a panic.
    #[test]
    fn header_date_is_total() {
        assert!(header_date(253_402_300_800).contains(" 10000 "));
        assert!(header_date(-62_198_755_200).contains(" -001"));
        assert_eq!(header_date(i64::MAX), i64::MAX.to_string());
        assert_eq!(header_date(i64::MIN), i64::MIN.to_string());
    }

    #[test]
    fn panic_line_counts_and_names_the_batch() {
        let payload = panic::catch_unwind(|| panic!("boom")).unwrap_err();
        assert_eq!(
            panic_line(1, "recipient", "all passed", payload.as_ref()),
            "panic while deciding a batch of 1 recipient, all passed: boom"
        );
        assert_eq!(
            panic_line(3, "request", "all answered DUNNO", payload.as_ref()),
            "panic while deciding a batch of 3 requests, all answered DUNNO: boom"
        );
    }

    #[test]
    fn panic_text_reads_both_payload_kinds() {
        let text = panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_text(text.as_ref()), "plain");
        let formatted = panic::catch_unwind(|| panic!("n={}", 3)).unwrap_err();
        assert_eq!(panic_text(formatted.as_ref()), "n=3");
    }
}
