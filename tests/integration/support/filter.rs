//! Helpers shared by the `greylisting-filter` tests: a temporary database (SQLite, or a fresh
//! PostgreSQL database for the `postgres` variants), the real binaries, a stand-in qmail-queue
//! that records what it receives, and pipes for fd 1.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use assert_cmd::cargo::CommandCargoExt;

use crate::support::{Backend, Env};

/// A fixed virtual "now" (DESIGN.md §4: `GREY_LISTING_NOW`), so no test sleeps.
pub(crate) const T0: i64 = 1_800_000_000;

/// A message as qmail-smtpd receives it from `mx.sender.example` (no list matches that host).
pub(crate) const PLAIN_MESSAGE: &str = "Received: from mx.sender.example (HELO mx.sender.example) (198.51.100.7)\n  by mail.local.example with SMTP; 1 Jan 2027 00:00:00 +0000\nFrom: alice@sender.example\nSubject: hello\n\nbody\n";

/// A temporary directory holding the database (in `db/greylist.db` on SQLite) and whatever a
/// test writes: the shared [`Env`] (its `dir`, `db` and `location()`) plus the filter's runs.
pub(crate) struct Sandbox {
    env: Env,
}

impl std::ops::Deref for Sandbox {
    type Target = Env;

    fn deref(&self) -> &Env {
        &self.env
    }
}

/// A stderr log line without its `<RFC 3339 time> <ident>[<pid>]: ` start, if it has one.
pub(crate) fn strip_stamp<'a>(line: &'a str, ident: &str) -> Option<&'a str> {
    let (time, rest) = line.split_once(' ')?;
    chrono::DateTime::parse_from_rfc3339(time).ok()?;
    let rest = rest.strip_prefix(ident)?.strip_prefix('[')?;
    let (pid, text) = rest.split_once("]: ")?;
    pid.parse::<u32>().ok()?;
    Some(text)
}

/// One stored triplet: `(client, sender, recipient, first_seen, earliest_accept, last_seen,
/// expires, pass_count)`.
pub(crate) type TripletRow = (String, String, String, i64, i64, i64, i64, i64);

/// What one handler-mode run printed and returned.
#[derive(Debug)]
pub(crate) struct HandlerRun {
    /// Exit status.
    pub code: i32,
    /// The stderr lines, verdict last.
    pub lines: Vec<String>,
}

impl HandlerRun {
    /// The verdict line (the last stderr line).
    pub(crate) fn verdict(&self) -> &str {
        self.lines.last().map(String::as_str).unwrap_or("")
    }

    /// The `LOG` lines, without the prefix, the time and `greylisting filter[<pid>]: `.
    pub(crate) fn logs(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix("LOG "))
            .map(|l| {
                strip_stamp(l, "greylisting filter")
                    .unwrap_or_else(|| panic!("LOG line without time and ident: {l:?}"))
            })
            .collect()
    }

    /// True if some log line contains `text`.
    pub(crate) fn logged(&self, text: &str) -> bool {
        self.logs().iter().any(|l| l.contains(text))
    }

    /// Asserts the DESIGN.md §5 protocol shape, then the verdict and its exit status.
    pub(crate) fn assert_verdict(&self, verdict: &str) {
        let code = match verdict {
            "SKIP" => 1,
            "DEFER" => 2,
            "REJECT" => 3,
            other => panic!("not a verdict: {other}"),
        };
        assert_eq!(
            (self.verdict(), self.code),
            (verdict, code),
            "lines: {:#?}",
            self.lines
        );
        let (last, before) = self.lines.split_last().unwrap();
        assert_eq!(last, verdict);
        for line in before {
            assert!(
                line.starts_with("LOG "),
                "non-LOG line before the verdict: {line:?}"
            );
        }
    }
}

impl Sandbox {
    /// A fresh directory; the SQLite database is created by the first run.
    pub(crate) fn new() -> Sandbox {
        Sandbox::on(Backend::Sqlite)
    }

    /// A fresh directory and a fresh, empty database on `backend` (issue 7: the filter's
    /// behaviour suite runs on both stores).
    pub(crate) fn on(backend: Backend) -> Sandbox {
        Sandbox {
            env: Env::on(backend, "db/greylist.db"),
        }
    }

    /// A path inside the sandbox.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `greylisting-filter` with Plesk's bare environment (PATH, LANG) plus the database,
    /// stderr logging, no random purges and the virtual time `now`.
    pub(crate) fn filter(&self, now: i64) -> Command {
        filter_at(&self.location(), now)
    }

    /// Runs handler mode with `args` (context, sender, recipients), extra env and `message`.
    pub(crate) fn handler(
        &self,
        now: i64,
        env: &[(&str, &str)],
        args: &[&str],
        message: &str,
    ) -> HandlerRun {
        let mut cmd = self.filter(now);
        cmd.args(args);
        for (name, value) in env {
            cmd.env(name, value);
        }
        handler_output(cmd, message.as_bytes())
    }

    /// Plain handler run: one sender, one recipient, [`PLAIN_MESSAGE`].
    pub(crate) fn handle(&self, now: i64, sender: &str, recipient: &str) -> HandlerRun {
        self.handler(now, &[], &["ctx", sender, recipient], PLAIN_MESSAGE)
    }

    /// Runs the admin CLI on this database; asserts success.
    pub(crate) fn cli(&self, args: &[&str]) {
        let out = Command::cargo_bin("grey_listing")
            .unwrap()
            .env_clear()
            .arg("--db")
            .arg(self.location())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "grey_listing {args:?}: {out:?}");
    }

    /// Opens the SQLite database file directly (test-side inspection of SQLite-only details).
    pub(crate) fn sql(&self) -> rusqlite::Connection {
        assert!(!self.is_postgres(), "sql() inspects the SQLite file only");
        rusqlite::Connection::open(&self.db).unwrap()
    }

    /// Every stored triplet row (expired ones included), ordered by key, read through the
    /// store API so the same assertion holds on both stores.
    pub(crate) fn triplets(&self) -> Vec<TripletRow> {
        super::stored_triplets(&self.location())
            .into_iter()
            .map(|r| {
                (
                    r.key.client,
                    r.key.sender,
                    r.key.recipient,
                    r.triplet.first_seen,
                    r.triplet.earliest_accept,
                    r.triplet.last_seen,
                    r.triplet.expires,
                    i64::try_from(r.triplet.pass_count).unwrap(),
                )
            })
            .collect()
    }

    /// Writes the stand-in qmail-queue as `name` in the sandbox; it records its fd 0 to
    /// `<name>.message`, its fd 1 to `<name>.envelope`, its ignored-signal mask to
    /// `<name>.sigign`, and exits with `$STANDIN_EXIT` (0).
    pub(crate) fn standin_queue(&self, name: &str) -> PathBuf {
        let path = self.path(name);
        let script = format!(
            "#!/bin/sh\nulimit -f unlimited 2>/dev/null\ngrep SigIgn /proc/$$/status > '{p}.sigign'\ncat > '{p}.message' || exit 53\ncat <&1 > '{p}.envelope' || exit 54\nexit \"${{STANDIN_EXIT:-0}}\"\n",
            p = path.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }
}

/// `greylisting-filter` on the database `location` (a path or a URL) with Plesk's bare
/// environment (PATH, LANG), stderr logging, no random purges and the virtual time `now`.
pub(crate) fn filter_at(location: &str, now: i64) -> Command {
    let mut cmd = Command::cargo_bin("greylisting-filter").unwrap();
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("LANG", "C")
        .env("GREY_LISTING_DB", location)
        .env("GREY_LISTING_LOG", "stderr")
        .env("GREY_LISTING_PURGE_ONE_IN", "0")
        .env("GREY_LISTING_NOW", now.to_string());
    cmd
}

/// Runs `cmd` with `stdin` bytes and collects the handler's stderr lines and status.
pub(crate) fn handler_output(mut cmd: Command, stdin: &[u8]) -> HandlerRun {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let bytes = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&bytes);
    });
    let out: Output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    HandlerRun {
        code: out.status.code().unwrap_or(-1),
        lines: String::from_utf8_lossy(&out.stderr)
            .lines()
            .map(str::to_string)
            .collect(),
    }
}

/// A pipe `(read end, write end)`, close-on-exec so concurrently spawned children do not keep
/// the write end open.
pub(crate) fn pipe() -> (File, File) {
    let (reader, writer) = std::io::pipe().unwrap();
    (
        File::from(OwnedFd::from(reader)),
        File::from(OwnedFd::from(writer)),
    )
}

/// What a qmail-queue-mode run did.
#[derive(Debug)]
pub(crate) struct QueueRun {
    /// Exit status.
    pub code: i32,
    /// Stderr text.
    pub stderr: String,
}

/// Runs `cmd` in qmail-queue mode the way qmail-smtpd does: the message written to fd 0 and
/// closed, and only then the envelope written to fd 1 (a pipe). A filter that read fd 1 first
/// would deadlock on messages bigger than a pipe buffer.
pub(crate) fn queue_output(mut cmd: Command, message: Vec<u8>, envelope: Vec<u8>) -> QueueRun {
    use std::io::Write;
    use std::process::Stdio;
    let (envelope_read, mut envelope_write) = pipe();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::from(envelope_read))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(cmd);
    let mut input = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&message);
        drop(input);
        let _ = envelope_write.write_all(&envelope);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    QueueRun {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Builds a qmail envelope `F<sender>\0T<rcpt>\0...\0`.
pub(crate) fn envelope(sender: &str, recipients: &[&str]) -> Vec<u8> {
    let mut bytes = format!("F{sender}\0").into_bytes();
    for r in recipients {
        bytes.extend_from_slice(format!("T{r}\0").as_bytes());
    }
    bytes.push(0);
    bytes
}

/// Reads a file the stand-in wrote, or `None` if it was not run.
pub(crate) fn recorded(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}
