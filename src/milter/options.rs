//! The `greylisting-milter` command line (clap), in the library so the man page is generated
//! from the same definition the binary parses with.

use clap::{CommandFactory, Parser};

use super::networks::{self, Network};
use crate::manual::{self, Section};
use crate::policyd::options::SyncMode;

/// Milter for Sendmail and Postfix (smtpd_milters) that greylists at RCPT time.
#[derive(Debug, Parser)]
#[command(
    name = "greylisting-milter",
    version,
    long_about = "Milter (milter protocol version 6) for Sendmail and Postfix's smtpd_milters \
                  that greylists at RCPT time. It shares its database with grey_listing, \
                  greylisting-filter and greylisting-policyd and makes the same decisions; \
                  settings and lists changed with grey_listing apply to the next recipient.\n\n\
                  Postfix main.cf: smtpd_milters = inet:127.0.0.1:10024, milter_protocol = 6, \
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
    /// Where to listen: host:port (TCP) or unix:/path.
    #[arg(long, default_value = super::DEFAULT_LISTEN)]
    pub listen: String,
    /// Mode of a unix socket (octal).
    #[arg(long, default_value = "0660", value_parser = super::listen::parse_mode)]
    pub socket_mode: u32,
    /// Group of a unix socket (name or number; default: the server's group).
    #[arg(long)]
    pub socket_group: Option<String>,
    /// Database path or postgres:// URL (default: GREY_LISTING_DB, then /etc/grey_listing.conf, then
    /// /var/lib/grey_listing/greylist.db).
    #[arg(long)]
    pub db: Option<String>,
    /// Clients never greylisted: comma-separated addresses or address/prefix blocks (an empty
    /// value trusts nobody).
    #[arg(long, default_value = networks::DEFAULT_TRUSTED, value_parser = parse_networks)]
    pub trusted_networks: Networks,
    /// Seconds without a byte from the MTA before its connection is closed (never while a
    /// message body is transferred).
    #[arg(long, default_value_t = super::DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Seconds a packet may take to arrive completely, from its first byte.
    #[arg(long, default_value_t = super::DEFAULT_REQUEST_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout: u64,
    /// Most open connections; at the limit the connection idle longest outside a message is
    /// closed to admit a new one.
    #[arg(long, default_value_t = super::DEFAULT_MAX_CONNECTIONS, value_parser = crate::policyd::options::parse_positive)]
    pub max_connections: usize,
    /// Host name in the X-Greylist header (default: this machine's name).
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
    /// address such as 127.0.0.1:9124).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,
}

/// The parsed `--trusted-networks` list.
#[derive(Debug, Clone)]
pub struct Networks(pub Vec<Network>);

fn parse_networks(value: &str) -> Result<Networks, networks::BadNetwork> {
    networks::parse_list(value).map(Networks)
}

/// Sections of the man page after the options.
const SECTIONS: &[Section] = &[
    crate::policyd::options::DAEMON_ENVIRONMENT,
    Section {
        title: "SIGNALS",
        intro: "",
        items: &[
            (
                "SIGTERM, SIGINT",
                "Stop accepting connections, let open messages finish (at most 10 s), exit 0.",
            ),
            (
                "SIGHUP",
                "Read the configuration file again (when --db is not given), reconnect to \
                 syslog and reopen the database.",
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
                "Could not start: a bad command-line option, listen address or socket group, \
                 the address in use, no database location.",
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
                "Default database, shared with grey_listing, greylisting-filter and \
                 greylisting-policyd.",
            ),
            (
                "syslog, facility mail, ident greylisting-milter",
                "One action=..., reason=... line per recipient; errors and closed connections.",
            ),
        ],
    },
];

/// The clap command of `greylisting-milter` (what [`Args`] parses).
pub fn command() -> clap::Command {
    Args::command().after_long_help(manual::help_text(SECTIONS))
}

/// The sections of the man page `man/greylisting-milter.1` after clap's own (environment, exit
/// status, files, ...): tests/integration/cli/generated.rs renders the page from [`command`] and
/// these, and checks the committed copy.
pub fn man_sections() -> &'static [Section] {
    SECTIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn trusted_networks_are_checked() {
        let args = Args::try_parse_from(["greylisting-milter"]).unwrap();
        assert_eq!(args.trusted_networks.0.len(), 2);
        let args = Args::try_parse_from(["greylisting-milter", "--trusted-networks", ""]).unwrap();
        assert!(args.trusted_networks.0.is_empty());
        let err = Args::try_parse_from(["greylisting-milter", "--trusted-networks", "10.0.0.0/33"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("10.0.0.0/33"), "{err}");
    }
}
