//! The current time, replaceable by `GREY_LISTING_NOW` so tests and simulations never sleep
//! (DESIGN.md §4).

use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that replaces the clock (unix seconds).
pub const NOW_VAR: &str = "GREY_LISTING_NOW";

/// Unix seconds: `GREY_LISTING_NOW` when set to an integer, else the system clock.
pub fn now(env: &dyn Fn(&str) -> Option<String>) -> i64 {
    env(NOW_VAR)
        .and_then(|value| value.trim().parse::<i64>().ok())
        .unwrap_or_else(system_now)
}

/// The system clock in unix seconds.
pub fn system_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A cheap random number (no crate needed for a coin toss or a jitter): the clock's nanoseconds
/// mixed with the process id, so it differs between processes and between calls.
pub(crate) fn cheap_random() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = (u64::from(nanos) << 20) ^ u64::from(std::process::id());
    // splitmix64 finaliser.
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Reads the process environment; the form [`now`] and the store location take.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
