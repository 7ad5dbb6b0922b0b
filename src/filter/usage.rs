//! The documentation of `greylisting-filter`'s command line. The filter has no option parser:
//! in handler mode every argument is data (DESIGN.md §5 — a sender may start with `-`), and the mode
//! is picked from argv by the binary. This clap [`Command`] exists only to generate the man page
//! and the `--help` text; it never parses mail arguments.
//!
//! `--help` (or `--version`) is honoured only as the ONE argument: Plesk always passes a context,
//! a sender and at least one recipient, so a single argument is never a handler invocation.

use std::ffi::OsString;

use clap::{Arg, ArgAction, Command};

use crate::manual::{self, Section};

/// What the environment tells the filter (both modes unless said otherwise).
const ENVIRONMENT: Section = Section {
    title: "ENVIRONMENT",
    intro: "Plesk starts mail handlers with only PATH and LANG, so the database location usually \
            comes from /etc/grey_listing.conf; the client facts come from the TCP* variables when \
            qmail-smtpd's environment reaches the filter, else from the message's topmost \
            Received: header (handler mode only).",
    items: &[
        (
            "GREY_LISTING_DB",
            "Database path; overrides the db = line of the configuration file.",
        ),
        (
            "GREY_LISTING_CONF",
            "Path of the configuration file (default /etc/grey_listing.conf).",
        ),
        (
            "GREY_LISTING_NOW",
            "Unix time to use instead of the clock (tests and simulations).",
        ),
        (
            "TCPREMOTEIP",
            "The SMTP client's address, set by tcpserver.",
        ),
        (
            "TCPREMOTEHOST",
            "The client's host name, set by tcpserver. Run tcpserver with -p: it removes a \
             name whose addresses do not include the client's (forward-confirmed reverse DNS); \
             -h alone passes an unverified PTR name, which a spammer controls.",
        ),
        (
            "RELAYCLIENT",
            "Set (even empty): the client may relay, the mail passes.",
        ),
        (
            "SMTPAUTHUSER, AUTHUSER",
            "Non-empty: the client authenticated, the mail passes.",
        ),
        (
            "GREY_QMAIL_QUEUE",
            "qmail-queue mode: path of the real qmail-queue (default /var/qmail/bin/qmail-queue \
             with --qmail-queue, qmail-queue.orig beside the binary when installed as \
             qmail-queue).",
        ),
        (
            "GREY_LISTING_LOG",
            "stderr: log to stderr instead of syslog (as LOG lines in handler mode).",
        ),
        (
            "GREY_LISTING_PURGE_ONE_IN",
            "Purge expired triplets on one run in N (default 100; 0 = never).",
        ),
    ],
};

/// Exit statuses per mode (DESIGN.md §5).
const EXIT_STATUS: Section = Section {
    title: "EXIT STATUS",
    intro: "Handler mode (the verdict is also the last line on stderr): 1 SKIP (pass), 2 DEFER, \
            3 REJECT. qmail-queue mode:",
    items: &[
        (
            "real qmail-queue's status",
            "The message passed and was handed to the real qmail-queue.",
        ),
        (
            "71",
            "Deferred (greylisted), or the real qmail-queue could not be run (temporary: the \
             sender retries).",
        ),
        ("31", "Rejected (black list)."),
        ("91", "Malformed envelope."),
        (
            "54",
            "The message (fd 0) or the envelope (fd 1) is closed or cannot be read (temporary).",
        ),
    ],
};

/// Where the filter logs and what it writes.
const FILES: Section = Section {
    title: "FILES",
    intro: "",
    items: &[
        manual::CONF_FILE,
        (
            "/var/lib/grey_listing/greylist.db",
            "Default database, shared with grey_listing and greylisting-policyd.",
        ),
        (
            "syslog, facility mail, ident \"greylisting filter\"",
            "Starting greylisting filter..., list hits (list type: black, from: <host>, match \
             string: <pattern>) and one action=<pass|defer|reject>, reason=... line per \
             recipient.",
        ),
    ],
};

/// The sections after the options, shared by the man page and `--help`.
const SECTIONS: &[Section] = &[ENVIRONMENT, EXIT_STATUS, FILES];

/// The clap description of `greylisting-filter`, for documentation only (see the module docs).
pub fn command() -> Command {
    Command::new("greylisting-filter")
        .version(env!("CARGO_PKG_VERSION"))
        .term_width(80)
        .about("Greylisting mail filter: Plesk mail handler and qmail-queue wrapper")
        .long_about(
            "Greylisting mail filter sharing its database with grey_listing and \
             greylisting-policyd.\n\n\
             As a Plesk mail handler (registered with mail_handlers_control --queue=before-queue) \
             it is run as greylisting-filter <context> <sender> <recipient>...; the arguments are \
             not parsed as options (an empty sender is a bounce), the message is read from \
             standard input, and the verdict SKIP, DEFER or REJECT is the last line written to \
             standard error, after any LOG lines.\n\n\
             As a qmail-queue wrapper (greylisting-filter --qmail-queue via QMAILQUEUE, or \
             installed under the name qmail-queue) it reads the message from fd 0 and the \
             envelope from fd 1, decides, and on pass runs the real qmail-queue with the same \
             message and envelope.\n\n\
             If the database cannot be opened, read or written, the mail passes and the error is \
             logged.",
        )
        .override_usage(
            "greylisting-filter <CONTEXT> <SENDER> <RECIPIENT>...\n\
             greylisting-filter --qmail-queue\n\
             qmail-queue\n\
             greylisting-filter --help\n\
             greylisting-filter --version",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            Arg::new("context")
                .value_name("CONTEXT")
                .help("Handler mode: Plesk's context string (not used)"),
        )
        .arg(
            Arg::new("sender")
                .value_name("SENDER")
                .help("Handler mode: the envelope sender, empty for bounces"),
        )
        .arg(
            Arg::new("recipient")
                .value_name("RECIPIENT")
                .num_args(1..)
                .help("Handler mode: the envelope recipients"),
        )
        .arg(
            Arg::new("qmail-queue")
                .long("qmail-queue")
                .action(ArgAction::SetTrue)
                .help("Run as a qmail-queue wrapper (for QMAILQUEUE)"),
        )
        .arg(
            Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("Print help (only as the sole argument)"),
        )
        .arg(
            Arg::new("version")
                .long("version")
                .short('V')
                .action(ArgAction::Version)
                .help("Print version (only as the sole argument)"),
        )
        .after_long_help(manual::help_text(SECTIONS))
}

/// The sections of the man page `man/greylisting-filter.1` after clap's own (environment, exit
/// status, files, ...): tests/integration/cli/generated.rs renders the page from [`command`] and
/// these, and checks the committed copy.
pub fn man_sections() -> &'static [Section] {
    SECTIONS
}

/// What the filter should print instead of filtering, if anything: `args` are the arguments
/// after the program name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoRequest {
    /// `--help` alone: the long help.
    Help,
    /// `--version` alone.
    Version,
}

impl InfoRequest {
    /// Recognises `--help` or `--version` as the only argument; anything else is mail.
    pub fn from_args(args: &[OsString]) -> Option<InfoRequest> {
        match args {
            [only] if only == "--help" => Some(InfoRequest::Help),
            [only] if only == "--version" || only == "-V" => Some(InfoRequest::Version),
            _ => None,
        }
    }

    /// The text to print on stdout.
    pub fn text(&self) -> String {
        match self {
            InfoRequest::Help => command().render_long_help().to_string(),
            InfoRequest::Version => command().render_version().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // DESIGN.md §5: no getopt in handler mode — only a lone --help/--version is not mail.
    #[test]
    fn only_a_lone_help_or_version_is_an_info_request() {
        let args = |list: &[&str]| list.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            InfoRequest::from_args(&args(&["--help"])),
            Some(InfoRequest::Help)
        );
        assert_eq!(
            InfoRequest::from_args(&args(&["--version"])),
            Some(InfoRequest::Version)
        );
        assert_eq!(
            InfoRequest::from_args(&args(&["ctx", "--help", "u@x"])),
            None
        );
        assert_eq!(
            InfoRequest::from_args(&args(&["-V"])),
            Some(InfoRequest::Version)
        );
        assert_eq!(
            InfoRequest::from_args(&args(&["ctx", "--version", "u@x"])),
            None
        );
        assert_eq!(InfoRequest::from_args(&args(&["-h"])), None);
        assert_eq!(InfoRequest::from_args(&args(&[])), None);
    }
}
