//! The command-line options both daemons take, defined once: the argument, its parser and,
//! where the daemons say the same, its help. Where a daemon words the help differently (its
//! clients, its port) it sets the text with `describe`.
//!
//! The options come in two groups, [`CommonFirst`] and [`CommonLast`], because each daemon lists
//! its own options between them (the milter's `--trusted-networks`, the policy server's
//! `--allow-test-time`) and `--help` and the man pages keep the order of the definition.

use clap::{Args, FromArgMatches, ValueEnum};

use super::socket;
use crate::daemon::batch::Synchronous;
use crate::manual::Section;

/// Options listed first: where to listen, the unix socket, the database.
#[derive(Debug, Args)]
pub struct CommonFirst {
    /// Where to listen: IP:port (TCP; an IPv6 address in brackets) or unix:/path.
    #[arg(long)]
    pub listen: String,
    // The help of --socket-mode, --socket-group: each daemon's own.
    #[arg(long, default_value = "0660", value_parser = socket::parse_mode)]
    pub socket_mode: u32,
    #[arg(long)]
    pub socket_group: Option<String>,
    /// Database path or postgres:// URL (default: GREY_LISTING_DB, then /etc/grey_listing.conf, then
    /// /var/lib/grey_listing/greylist.db).
    #[arg(long)]
    pub db: Option<String>,
}

impl CommonFirst {
    /// The unix socket's mode and group as given.
    pub fn socket_options(&self) -> socket::SocketOptions {
        socket::SocketOptions {
            mode: self.socket_mode,
            group: self.socket_group.clone(),
        }
    }
}

/// Options listed last: the header's host name, the durability and connections of the database,
/// the metrics.
#[derive(Debug, Args)]
pub struct CommonLast {
    // The help of --hostname: each daemon's own.
    #[arg(long)]
    pub hostname: Option<String>,
    /// Durability of each committed batch of decisions.
    #[arg(long, value_enum, default_value_t = SyncMode::Full)]
    pub synchronous: SyncMode,
    /// Database connections deciding requests in parallel, 1 to 64 (default: 1 for SQLite,
    /// 4 for PostgreSQL).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub db_connections: Option<u16>,
    // The help of --metrics-listen: each daemon's own (its default port).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_listen: Option<String>,
}

impl CommonLast {
    /// Sets what was given of these options on a daemon's settings (`--metrics-listen` is
    /// started with the listener, see [`super::start`]).
    pub fn apply(
        &self,
        synchronous: &mut Synchronous,
        db_connections: &mut usize,
        hostname: &mut String,
        hostname_note: &mut Option<String>,
    ) {
        *synchronous = self.synchronous.into();
        if let Some(connections) = self.db_connections {
            *db_connections = usize::from(connections);
        }
        if let Some(name) = &self.hostname {
            hostname.clone_from(name);
            // The machine's name is not used, so what is wrong with it does not matter.
            *hostname_note = None;
        }
    }
}

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

/// A daemon's own words for shared options: `(option id, help, value name)`; the help as
/// `--help` shows it (no final period), the value name `None` for clap's own.
pub(crate) type Wording = [(&'static str, &'static str, Option<&'static str>)];

/// Gives the shared options of `command` a daemon's `wording` and its default `listen` address.
pub(crate) fn describe(
    command: clap::Command,
    listen: &'static str,
    wording: &'static Wording,
) -> clap::Command {
    // With its default, `--listen` is no longer required (the derive requires a `String`).
    let command = command.mut_arg("listen", |arg| arg.default_value(listen).required(false));
    wording
        .iter()
        .fold(command, |command, &(id, help, value_name)| {
            command.mut_arg(id, |arg| {
                let arg = arg.help(help);
                match value_name {
                    Some(name) => arg.value_name(name),
                    None => arg,
                }
            })
        })
}

/// Parses the command line with a daemon's `command` (its options worded by `describe`) into
/// `A`; a bad option prints clap's message and exits 2 (`--help` and `--version` exit 0).
pub fn parse<A: FromArgMatches>(command: clap::Command) -> A {
    A::from_arg_matches(&command.get_matches()).unwrap_or_else(|err| err.exit())
}

/// A value that is no number above zero (as given).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a positive number")]
pub(crate) struct NotPositive(String);

/// A number above zero (`--max-connections`), for clap.
pub(crate) fn parse_positive(value: &str) -> Result<usize, NotPositive> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(NotPositive(value.to_string())),
    }
}

/// The exit status of a daemon stopped by a signal, for their man pages.
pub(crate) const STOPPED: (&str, &str) = ("0", "Stopped by SIGTERM or SIGINT.");

/// The environment both daemons read, for their man pages.
pub(crate) const ENVIRONMENT: Section = Section {
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
        (
            "GREY_LISTING_RESOLVER",
            "DNS resolver asked about the DNS lists when zones are set (an IP address with an \
             optional port); else resolver = in the configuration file, else the system's.",
        ),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    // A --hostname replaces the machine's name, and with it the note on why that name was
    // unusable; without one, both stay.
    #[test]
    fn a_given_hostname_drops_the_note_on_the_machines_name() {
        let given = |hostname: Option<&str>| {
            let last = CommonLast {
                hostname: hostname.map(str::to_string),
                synchronous: SyncMode::Normal,
                db_connections: Some(3),
                metrics_listen: None,
            };
            let (mut sync, mut connections) = (Synchronous::Full, 1);
            let mut name = "localhost".to_string();
            let mut note = Some("the system host name mx_1 is bad".to_string());
            last.apply(&mut sync, &mut connections, &mut name, &mut note);
            assert_eq!((sync, connections), (Synchronous::Normal, 3));
            (name, note)
        };
        assert_eq!(given(Some("mx.example")), ("mx.example".to_string(), None));
        let (name, note) = given(None);
        assert_eq!(name, "localhost");
        assert!(note.is_some());
    }

    #[test]
    fn only_numbers_above_zero_are_positive() {
        assert_eq!(parse_positive("1"), Ok(1));
        for bad in ["0", "-1", "", "1.5", " 2"] {
            assert_eq!(parse_positive(bad), Err(NotPositive(bad.to_string())));
        }
    }
}
