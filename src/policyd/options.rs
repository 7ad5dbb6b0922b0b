//! The `greylisting-policyd` command line (clap), in the library so the man page is generated
//! from the same definition the binary parses with.

use clap::{CommandFactory, Parser};

use crate::daemon::options::{self, CommonFirst, CommonLast, Wording};
use crate::manual::{self, Section};

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
    /// Where to listen, the unix socket, the database.
    #[command(flatten)]
    pub first: CommonFirst,
    /// Seconds without a byte from a client before its connection is closed.
    #[arg(long, default_value_t = super::DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Seconds a request may take from its first byte to its blank line; a client still
    /// sending after that is disconnected and logged.
    #[arg(long, default_value_t = crate::daemon::limits::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Most open connections; at the limit the connection idle longest is closed (and logged)
    /// to admit a new one.
    #[arg(long, default_value_t = crate::daemon::limits::DEFAULT_MAX_CONNECTIONS, value_parser = options::parse_positive)]
    pub max_connections: usize,
    /// Honour postgrey's policy_test_time attribute (tests and simulations only).
    #[arg(long)]
    pub allow_test_time: bool,
    /// The header's host name, the database's durability and connections, the metrics.
    #[command(flatten)]
    pub last: CommonLast,
}

/// The policy server's words for the shared options.
const WORDING: &Wording = &[
    (
        "socket_mode",
        "Permissions of the unix socket, octal; never world-writable",
        Some("MODE"),
    ),
    (
        "socket_group",
        "Group of the unix socket, e.g. postfix (needs root or membership of the group: in a \
         systemd unit, SupplementaryGroups=GROUP)",
        Some("GROUP"),
    ),
    (
        "hostname",
        "Host name in the X-Greylist header: at most 253 letters, digits, '.' and '-' (default: \
         this machine's name, or localhost if that is not a valid host name)",
        None,
    ),
    (
        "metrics_listen",
        "Serve Prometheus metrics at http://HOST:PORT/metrics (off by default; use a loopback \
         address such as 127.0.0.1:9123)",
        None,
    ),
];

/// Sections of the man page after the options.
const SECTIONS: &[Section] = &[
    options::ENVIRONMENT,
    Section::tagged(
        "SIGNALS",
        &[
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
    ),
    Section::tagged(
        "EXIT STATUS",
        &[
            options::STOPPED,
            (
                "2",
                "Could not start: a bad command-line option, listen address or --hostname, the \
                 address in use, a file that is not a socket at the unix socket's path, a \
                 --socket-group the process may not use, a PostgreSQL URL with a mistyped \
                 scheme, or a configuration file that is missing (when named by \
                 GREY_LISTING_CONF), unreadable or invalid (it is read at start even with --db).",
            ),
        ],
    ),
    Section::tagged(
        "FILES",
        &[
            manual::CONF_FILE,
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
    ),
];

/// The clap command of `greylisting-policyd` (what [`Args`] parses).
pub fn command() -> clap::Command {
    options::describe(Args::command(), super::DEFAULT_LISTEN, WORDING)
}

/// The sections of the man page `man/greylisting-policyd.1` after clap's own (environment, exit
/// status, files, ...): tests/integration/cli/generated.rs renders the page from [`command`] and
/// these, and checks the committed copy.
pub fn man_sections() -> &'static [Section] {
    SECTIONS
}
