//! The `greylisting-milter` command line (clap), in the library so the man page is generated
//! from the same definition the binary parses with.

use clap::{CommandFactory, Parser};

use super::networks::{self, Network};
use crate::daemon::options::{self, CommonFirst, CommonLast, Wording};
use crate::manual::{self, Section};

/// Milter for Sendmail and Postfix (smtpd_milters) that greylists at RCPT time.
#[derive(Debug, Parser)]
#[command(
    name = "greylisting-milter",
    version,
    long_about = "Milter (milter protocol version 6) for Sendmail and Postfix's smtpd_milters \
                  that greylists at RCPT time. It shares its database with grey_listing, \
                  greylisting-filter and greylisting-policyd and makes the same decisions; \
                  settings and lists changed with grey_listing apply to the next recipient.\n\n\
                  Postfix: in master.cf, on the port-25 smtp service only (not submission), \
                  -o smtpd_milters=inet:127.0.0.1:10024; in main.cf, milter_protocol = 6 and \
                  milter_default_action = accept (Postfix's default, tempfail, defers all mail \
                  while the milter is down).\n\n\
                  Answers per recipient: 451 4.7.1 Service unavailable - try again later \
                  (greylisted), 550 5.7.1 Command rejected (black list), continue otherwise; at \
                  the end of a message whose triplet passed for the first time it adds \
                  X-Greylist: delayed <N> seconds by grey_listing at <host>; <date>. Clients in \
                  --trusted-networks and clients that authenticated ({auth_authen}) always pass. \
                  If the database cannot be used, mail passes and the error is logged."
)]
pub struct Args {
    /// Where to listen, the unix socket, the database.
    #[command(flatten)]
    pub first: CommonFirst,
    /// Clients never greylisted: comma-separated addresses or address/prefix blocks (an empty
    /// value trusts nobody).
    #[arg(long, default_value = networks::DEFAULT_TRUSTED, value_parser = parse_networks)]
    pub trusted_networks: Networks,
    /// Seconds without a byte from the MTA before its connection is closed (never while a
    /// message body is transferred); libmilter's default, as an MTA's SMTP session may send
    /// the milter nothing for longer than its per-command timeout.
    #[arg(long, default_value_t = super::DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Seconds a packet may take to arrive completely, from its first byte.
    #[arg(long, default_value_t = crate::daemon::limits::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Most open connections; at the limit the connection idle longest outside a message is
    /// closed to admit a new one.
    #[arg(long, default_value_t = crate::daemon::limits::DEFAULT_MAX_CONNECTIONS, value_parser = options::parse_positive)]
    pub max_connections: usize,
    /// The header's host name, the database's durability and connections, the metrics.
    #[command(flatten)]
    pub last: CommonLast,
}

/// The milter's words for the shared options.
const WORDING: &Wording = &[
    ("socket_mode", "Mode of a unix socket (octal)", None),
    (
        "socket_group",
        "Group of a unix socket (name or number; default: the server's group)",
        None,
    ),
    (
        "hostname",
        "Host name in the X-Greylist header (default: this machine's name)",
        None,
    ),
    (
        "metrics_listen",
        "Serve Prometheus metrics at http://HOST:PORT/metrics (off by default; use a loopback \
         address such as 127.0.0.1:9124)",
        None,
    ),
];

/// The parsed `--trusted-networks` list.
#[derive(Debug, Clone)]
pub struct Networks(pub Vec<Network>);

fn parse_networks(value: &str) -> Result<Networks, networks::BadNetwork> {
    networks::parse_list(value).map(Networks)
}

/// Sections of the man page after the options.
const SECTIONS: &[Section] = &[
    options::ENVIRONMENT,
    Section::tagged(
        "SIGNALS",
        &[
            (
                "SIGTERM, SIGINT",
                "Stop accepting connections, let open messages finish (at most 10 s), exit 0.",
            ),
            (
                "SIGHUP",
                "Read the configuration file again, resolve the database as at start (--db, \
                 GREY_LISTING_DB, the file's db =), reconnect to syslog and reopen the \
                 database. An invalid configuration is logged and the previous one kept.",
            ),
        ],
    ),
    Section::tagged(
        "EXIT STATUS",
        &[
            options::STOPPED,
            (
                "2",
                "Could not start: a bad command-line option, listen address, --hostname, socket \
                 mode or group, the address or the metrics address in use, a live socket or a \
                 file that is not a socket at the unix socket's path, a PostgreSQL URL with a \
                 mistyped scheme, or a configuration file that is missing (when named by \
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
                "Default database, shared with grey_listing, greylisting-filter and \
                 greylisting-policyd. Deleted or replaced while the milter runs, it is noticed \
                 before the next decision, within a second while idle, and reopened (created \
                 anew if missing).",
            ),
            (
                "syslog, facility mail, ident greylisting-milter",
                "One action=..., reason=... line per recipient; errors and closed connections.",
            ),
        ],
    ),
];

/// The clap command of `greylisting-milter` (what [`Args`] parses).
pub fn command() -> clap::Command {
    options::describe(Args::command(), super::DEFAULT_LISTEN, WORDING)
        .after_long_help(manual::help_text(SECTIONS))
}

/// The sections of the man page `man/greylisting-milter.1` after clap's own (environment, exit
/// status, files, ...): tests/integration/cli/generated.rs renders the page from [`command`] and
/// these, and checks the committed copy.
pub fn man_sections() -> &'static [Section] {
    SECTIONS
}

#[cfg(test)]
mod tests {
    use clap::FromArgMatches;

    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::from_arg_matches(&command().try_get_matches_from(args)?)
    }

    #[test]
    fn trusted_networks_are_checked() {
        let args = parse(&["greylisting-milter"]).unwrap();
        assert_eq!(args.trusted_networks.0.len(), 2);
        let args = parse(&["greylisting-milter", "--trusted-networks", ""]).unwrap();
        assert!(args.trusted_networks.0.is_empty());
        let err = parse(&["greylisting-milter", "--trusted-networks", "10.0.0.0/33"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("10.0.0.0/33"), "{err}");
    }
}
