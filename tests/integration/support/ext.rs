//! Shared helpers of the extension tests: a temporary database, the real `grey_listing` binary
//! run at a virtual time, and decision-log data made through the library's engine (the same
//! code the filter and policyd run).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use grey_listing::engine::{self, Message, MessageOutcome};
use grey_listing::store::Store;

use crate::support::{Backend, Env};

/// A fixed virtual "now": 2026-11-23 09:00:00 UTC.
pub(crate) const T0: i64 = 1_795_424_400;

/// A temporary directory holding one database file, or a fresh PostgreSQL database for the
/// `postgres` variants (issue 7: one suite, both stores).
pub(crate) struct Db {
    env: Env,
    /// The SQLite database path (unused on PostgreSQL).
    pub path: PathBuf,
}

impl Db {
    /// A new SQLite location (the file is created by the first run).
    pub(crate) fn new() -> Db {
        Db::on(Backend::Sqlite)
    }

    /// A new, empty database location on `backend`.
    pub(crate) fn on(backend: Backend) -> Db {
        let env = Env::on(backend, "greylist.db");
        let path = env.db.clone();
        Db { env, path }
    }

    /// The location the binaries get: the SQLite path or the PostgreSQL URL.
    pub(crate) fn location(&self) -> String {
        self.env.location()
    }

    /// Opens the store through the library.
    pub(crate) fn open(&self) -> Box<dyn Store> {
        self.env.open()
    }

    /// `grey_listing` on this database at virtual time `now`.
    pub(crate) fn cli(&self, now: i64) -> Command {
        let mut cmd = Command::cargo_bin("grey_listing").unwrap();
        cmd.env("GREY_LISTING_DB", self.location())
            .env("GREY_LISTING_NOW", now.to_string())
            .env_remove("GREY_LISTING_CONF")
            .env("GREY_LISTING_LOG", "stderr");
        cmd
    }

    /// Runs `grey_listing args...` at `now`, expecting success; returns stdout.
    pub(crate) fn ok(&self, now: i64, args: &[&str]) -> String {
        let out = self.cli(now).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "grey_listing {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// One message through the engine, as the filter would decide it at `now`.
    pub(crate) fn deliver(
        &self,
        now: i64,
        ip: &str,
        host: Option<&str>,
        sender: &str,
        recipient: &str,
    ) -> MessageOutcome {
        let mut store = self.open();
        let message = Message {
            client_ip: Some(ip.parse::<IpAddr>().unwrap()),
            client_name: host.map(str::to_string),
            sender: sender.to_string(),
            recipients: vec![recipient.to_string()],
            authenticated: false,
            ..Message::default()
        };
        engine::check_message(&mut *store, &message, now).unwrap()
    }

    /// The SQLite database file (SQLite-only inspection).
    pub(crate) fn file(&self) -> &Path {
        assert!(!self.env.is_postgres(), "file() is the SQLite file only");
        &self.path
    }
}

/// The value of the row labelled `label` in `text` (rows may carry a step number `NN. `);
/// panics with the whole text when there is none.
pub(crate) fn value<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|line| {
            let line = line.trim_start();
            let line = line
                .split_once(". ")
                .filter(|(n, _)| n.chars().all(|c| c.is_ascii_digit()))
                .map_or(line, |(_, rest)| rest);
            line.strip_prefix(label)
                .filter(|rest| rest.starts_with(' '))
                .map(str::trim)
        })
        .unwrap_or_else(|| panic!("no row '{label}' in:\n{text}"))
}

/// A week of decision-log data made through the engine (what the filter would record):
/// - Amazon SES: 6 deferrals of 3 senders from 3 addresses in 2 /24s; each sender's retry
///   7 minutes later from yet another address passes (3 later accepted, delays 420 s).
/// - SendGrid: 2 deferrals, later covered by a white domains pattern.
/// - one end-user line without a host name: 2 deferrals, never retried.
pub(crate) fn seed_week(db: &Db) {
    let ses = [
        ("54.240.8.17", "a8-17.smtp-out.amazonses.com"),
        ("54.240.8.18", "a8-18.smtp-out.amazonses.com"),
        ("54.240.27.90", "a27-90.smtp-out.amazonses.com"),
    ];
    for (n, sender) in ["a@shop.example", "b@shop.example", "c@news.example"]
        .iter()
        .enumerate()
    {
        let t = T0 + n as i64 * 3_600;
        for (i, (ip, host)) in ses.iter().enumerate().take(2) {
            let out = db.deliver(t + i as i64 * 60, ip, Some(host), sender, "u@local.example");
            assert_eq!(out.verdict, grey_listing::decision::Verdict::Defer);
        }
        let (ip, host) = ses[2];
        let out = db.deliver(t + 420, ip, Some(host), sender, "u@local.example");
        assert_eq!(out.verdict, grey_listing::decision::Verdict::Pass);
    }
    for t in [T0, T0 + 60] {
        db.deliver(
            t,
            "167.89.1.2",
            Some("o1.ptr1234.sendgrid.net"),
            "x@app.example",
            "u@local.example",
        );
    }
    for recipient in ["u@local.example", "v@local.example"] {
        db.deliver(T0, "198.51.100.7", None, "bot@spam.example", recipient);
    }
    db.ok(T0, &["-u", "-domains-whitelist", "add:*.sendgrid.net"]);
}
