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

/// Reads the process environment; the form [`now`] and the store location take.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
