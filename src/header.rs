//! The `X-Greylist` header the policy server and the milter add to a message on its triplet's
//! first pass: `X-Greylist: delayed <N> seconds by grey_listing at <host>; <RFC 2822 date>`.
//! Both daemons write it with [`value`], so it reads the same whichever one the MTA asks.

use chrono::{DateTime, Datelike, FixedOffset, TimeZone, Timelike};

/// The header's name.
pub(crate) const NAME: &str = "X-Greylist";

/// The header's value for a message delayed `delay` seconds, added by `host` at `now`.
pub(crate) fn value(delay: i64, host: &str, now: i64) -> String {
    format!(
        "delayed {delay} seconds by grey_listing at {host}; {}",
        date(now)
    )
}

/// RFC 2822 date of `now` in local time, as mail headers carry it; for any `now` (the time may
/// come from a request's `policy_test_time`): years past 9999 or before 0 are written with as
/// many digits as they need, and a time beyond the calendar's range as its Unix seconds.
fn date(now: i64) -> String {
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

/// `Tue, 14 Nov 2023 22:13:20 +0000` (day not padded, as chrono writes it), built from the
/// date's fields: chrono's own RFC 2822 writer panics on a year it cannot write in four digits.
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
    fn date_matches_chronos_rfc2822_for_ordinary_years() {
        for now in [0, 1_700_000_000, 1_000_000_000, -86_400, 253_402_300_799] {
            let expected = chrono::Local
                .timestamp_opt(now, 0)
                .single()
                .map(|t| t.to_rfc2822())
                .expect("in range");
            assert_eq!(date(now), expected, "{now}");
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
    fn date_is_total() {
        assert!(date(253_402_300_800).contains(" 10000 "));
        assert!(date(-62_198_755_200).contains(" -001"));
        assert_eq!(date(i64::MAX), i64::MAX.to_string());
        assert_eq!(date(i64::MIN), i64::MIN.to_string());
    }

    #[test]
    fn value_names_delay_host_and_date() {
        let line = value(300, "mx.example.org", 1_700_000_000);
        assert!(
            line.starts_with("delayed 300 seconds by grey_listing at mx.example.org; "),
            "{line}"
        );
        assert!(line.ends_with(&date(1_700_000_000)), "{line}");
    }
}
