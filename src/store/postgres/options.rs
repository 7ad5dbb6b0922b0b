//! The PostgreSQL store's timeouts and the driver's configuration from a connection string.

use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::Config;

use crate::store::pgpass::{self, PasswordFileError};
use crate::store::pgurl::{self, ConnStringError};

/// Default time allowed for one statement or lock wait: SQLite's busy timeout (DESIGN.md §1).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time allowed for a socket connect when the URL sets no `connect_timeout`.
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Environment variable overriding [`DEFAULT_TIMEOUT`] (milliseconds).
pub(crate) const TIMEOUT_ENV: &str = "GREY_LISTING_PG_TIMEOUT_MS";
/// Our own URL query parameter for the statement timeout (milliseconds); removed from the URL
/// before it reaches the driver, which refuses options it does not know.
pub(crate) const TIMEOUT_PARAM: &str = super::pgurl::TIMEOUT_PARAM;

/// Bounds for a configured timeout, so a typo cannot disable it or make it absurdly long.
const TIMEOUT_RANGE_MS: std::ops::RangeInclusive<u64> = 50..=600_000;

/// Why the PostgreSQL store's configuration (environment or connection string) is refused.
/// No variant holds a password.
#[derive(Debug, thiserror::Error)]
pub enum PgConfigError {
    /// A timeout is not a whole number of milliseconds within the allowed range.
    #[error(
        "{name} must be a number of milliseconds from {} to {}, not '{value}'",
        TIMEOUT_RANGE_MS.start(),
        TIMEOUT_RANGE_MS.end()
    )]
    BadTimeout {
        /// Where it was set: the environment variable or the URL parameter.
        name: &'static str,
        /// The value as written.
        value: String,
    },
    /// The connection string cannot be read as the driver reads it.
    #[error(transparent)]
    ConnString(#[from] ConnStringError),
    /// The driver refused the connection string (its message names the option, not the value).
    #[error("invalid connection string: {0}")]
    Driver(#[source] tokio_postgres::Error),
    /// The password file could not be used.
    #[error(transparent)]
    PasswordFile(#[from] PasswordFileError),
}

/// Timeouts of a [`PgStore`](crate::store::PgStore).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Statement and lock timeout (server side), and the client-side deadline minus one second.
    pub timeout: Duration,
}

impl PgOptions {
    /// The options from the environment: `GREY_LISTING_PG_TIMEOUT_MS`, else the default.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<PgOptions, PgConfigError> {
        let timeout = match env(TIMEOUT_ENV).filter(|v| !v.is_empty()) {
            Some(value) => parse_timeout_ms(TIMEOUT_ENV, &value)?,
            None => DEFAULT_TIMEOUT,
        };
        Ok(PgOptions { timeout })
    }
}

pub(super) fn parse_timeout_ms(name: &'static str, value: &str) -> Result<Duration, PgConfigError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|ms| TIMEOUT_RANGE_MS.contains(ms))
        .map(Duration::from_millis)
        .ok_or_else(|| PgConfigError::BadTimeout {
            name,
            value: value.to_string(),
        })
}

/// The driver's configuration for a connection string: our own parameters (`timeout_ms`,
/// `password_file`) taken out first, the password read from `password_file` or `PGPASSFILE`
/// when given so. Also returns the `timeout_ms` of the string. Errors name no password.
pub(super) fn driver_config(
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(Config, Option<Duration>), PgConfigError> {
    let (driver_url, own) = pgurl::split_own(url)?;
    let timeout = own
        .timeout_ms
        .map(|value| parse_timeout_ms(TIMEOUT_PARAM, &value))
        .transpose()?;
    // The string was checked above as the driver reads it; what the driver may still reject
    // (a bad port or option value) is named by the option only, never by its value.
    let mut config = Config::from_str(&driver_url).map_err(PgConfigError::Driver)?;
    pgpass::apply(&mut config, own.password_file.as_deref(), env)?;
    Ok((config, timeout))
}
