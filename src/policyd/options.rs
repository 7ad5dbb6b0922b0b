//! The `greylisting-policyd` command line (clap), in the library so the man page is generated
//! from the same definition the binary parses with.

use clap::{CommandFactory, Parser, ValueEnum};
use thiserror::Error;

use super::Synchronous;
use crate::manual::Section;

/// Durability of each committed batch, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SyncMode {
    /// fsync every committed batch before answering (survives a power cut).
    Full,
    /// Survives a process crash; a power cut may forget the last batches.
    Normal,
}

impl From<SyncMode> for Synchronous {
    fn from(mode: SyncMode) -> Synchronous {
        match mode {
            SyncMode::Full => Synchronous::Full,
            SyncMode::Normal => Synchronous::Normal,
        }
    }
}

/// Postfix policy delegation server for greylisting (check_policy_service), drop-in for postgrey.
#[derive(Debug, Parser)]
#[command(
    name = "greylisting-policyd",
    term_width = 80,
    version,
    long_about = "Postfix policy delegation server for greylisting (check_policy_service), drop-in \
                  for postgrey. It shares its database with grey_listing and greylisting-filter; \
                  settings and lists changed with grey_listing apply to the next request.\n\n\
                  Postfix main.cf, after reject_unauth_destination:\n\
                  smtpd_recipient_restrictions = ..., reject_unauth_destination, \
                  check_policy_service inet:127.0.0.1:10023\n\n\
                  Answers: action=DEFER_IF_PERMIT 4.7.1 Service unavailable - try again later \
                  (greylisted), action=REJECT 5.7.1 Command rejected (black list), \
                  action=PREPEND X-Greylist: delayed <N> seconds ... (first pass of a triplet), \
                  action=DUNNO otherwise. If the database cannot be used the answer is DUNNO and \
                  the error is logged."
)]
pub struct Args {
    /// Where to listen: host:port (TCP) or unix:/path.
    #[arg(long, default_value = super::DEFAULT_LISTEN)]
    pub listen: String,
    /// Permissions of the unix socket, octal; never world-writable.
    #[arg(long, value_name = "MODE", default_value = "0660", value_parser = super::socket::parse_mode)]
    pub socket_mode: u32,
    /// Group of the unix socket, e.g. postfix (needs root or membership of the group: in a
    /// systemd unit, SupplementaryGroups=GROUP).
    #[arg(long, value_name = "GROUP")]
    pub socket_group: Option<String>,
    /// Database path or postgres:// URL (default: GREY_LISTING_DB, then /etc/grey_listing.conf, then
    /// /var/lib/grey_listing/greylist.db).
    #[arg(long)]
    pub db: Option<String>,
    /// Seconds without a byte from a client before its connection is closed.
    #[arg(long, default_value_t = super::DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Seconds a request may take from its first byte to its blank line; a client still
    /// sending after that is disconnected and logged.
    #[arg(long, default_value_t = super::connections::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Most open connections; at the limit the connection idle longest is closed (and logged)
    /// to admit a new one.
    #[arg(long, default_value_t = super::DEFAULT_MAX_CONNECTIONS, value_parser = parse_positive)]
    pub max_connections: usize,
    /// Honour postgrey's policy_test_time attribute (tests and simulations only).
    #[arg(long)]
    pub allow_test_time: bool,
    /// Host name in the X-Greylist header: at most 253 letters, digits, '.' and '-' (default:
    /// this machine's name, or localhost if that is not a valid host name).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Durability of each committed batch of decisions.
    #[arg(long, value_enum, default_value_t = SyncMode::Full)]
    pub synchronous: SyncMode,
    /// Database connections deciding requests in parallel, 1 to 64 (default: 1 for SQLite,
    /// 4 for PostgreSQL).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub db_connections: Option<u16>,
    /// Serve Prometheus metrics at http://HOST:PORT/metrics (off by default; use a loopback
    /// address such as 127.0.0.1:9123).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,
}

/// A value that is no number above zero (as given).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0:?} is not a positive number")]
pub(crate) struct NotPositive(String);

/// A number above zero (`--max-connections`), for clap; shared with the milter.
pub(crate) fn parse_positive(value: &str) -> Result<usize, NotPositive> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(NotPositive(value.to_string())),
    }
}

/// The environment both daemons (policy server and milter) read, for their man pages.
pub(crate) const DAEMON_ENVIRONMENT: Section = Section {
    title: "ENVIRONMENT",
    intro: "",
    items: &[
        (
            "GREY_LISTING_DB",
            "Database path, used when --db is not given.",
        ),
        (
            "GREY_LISTING_CONF",
            "Path of the configuration file (default /etc/grey_listing.conf).",
        ),
        (
            "GREY_LISTING_LOG",
            "stderr: log to stderr instead of syslog (also the fallback without /dev/log).",
        ),
    ],
};

/// Sections of the man page after the options.
const SECTIONS: &[Section] = &[
    DAEMON_ENVIRONMENT,
    Section {
        title: "SIGNALS",
        intro: "",
        items: &[
            (
                "SIGTERM, SIGINT",
                "Stop accepting connections, answer the requests in flight, exit 0.",
            ),
            (
                "SIGHUP",
                "Read the configuration file again (an invalid one is logged and the previous \
                 configuration kept), reopen the database it names, reconnect to syslog, go on \
                 serving.",
            ),
        ],
    },
    Section {
        title: "EXIT STATUS",
        intro: "",
        items: &[
            ("0", "Stopped by SIGTERM or SIGINT."),
            (
                "2",
                "Could not start: a bad command-line option, listen address or --hostname, the \
                 address in use, a file that is not a socket at the unix socket's path, a \
                 --socket-group the process may not use, or a configuration file that is missing \
                 (when named by GREY_LISTING_CONF), unreadable or invalid (it is read at start \
                 even with --db).",
            ),
        ],
    },
    Section {
        title: "FILES",
        intro: "",
        items: &[
            (
                "/etc/grey_listing.conf",
                "The line db = <path> names the shared database.",
            ),
            (
                "/var/lib/grey_listing/greylist.db",
                "Default database, shared with grey_listing and greylisting-filter. Deleted or \
                 replaced while the server runs, it is noticed within 5 seconds and reopened \
                 (created anew if missing).",
            ),
            (
                "/var/spool/postfix/greylisting/socket",
                "Where the documented Postfix setup puts the unix socket (--listen \
                 unix:/var/spool/postfix/greylisting/socket --socket-group postfix; Postfix: \
                 check_policy_service unix:greylisting/socket). The packaged unit makes the \
                 directory: owner greylisting, group postfix, mode 2750.",
            ),
            (
                "syslog, facility mail, ident greylisting-policyd",
                "One action=..., reason=... line per decision; errors and closed connections.",
            ),
        ],
    },
];

/// The clap command of `greylisting-policyd` (what [`Args`] parses).
pub fn command() -> clap::Command {
    Args::command()
}

/// The sections of the man page `man/greylisting-policyd.1` after clap's own (environment, exit
/// status, files, ...): tests/integration/cli/generated.rs renders the page from [`command`] and
/// these, and checks the committed copy.
pub fn man_sections() -> &'static [Section] {
    SECTIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    // The clap definition is consistent (no clashing flags, valid defaults).
    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn only_numbers_above_zero_are_positive() {
        assert_eq!(parse_positive("1"), Ok(1));
        for bad in ["0", "-1", "", "1.5", " 2"] {
            assert_eq!(parse_positive(bad), Err(NotPositive(bad.to_string())));
        }
    }
}
