//! Log lines for the mail path: syslog, facility mail, with a stderr fallback when there is no
//! `/dev/log` (containers, tests). Logging never fails the caller.
//!
//! Stderr lines carry what syslog would have added, so they line up with the mail log:
//! `2026-03-16T09:06:42.123456+01:00 greylisting filter[25916]: <text>` — local time in RFC 3339
//! with microseconds and the UTC offset. That is the form Debian's rsyslog (since Debian 12) and
//! `journalctl -o short-iso-precise` write the mail log in, it sorts as plain text across days,
//! years and daylight-saving changes (the offset is part of it), and it separates the messages of
//! one busy second. In the Plesk handler protocol the line keeps `LOG ` first (`LOG <time>
//! <ident>[<pid>]: <text>`): the verdict must stay the only line without it.

use std::io::Write;

use syslog::{Facility, Formatter3164, Logger as SyslogLogger, LoggerBackend};

/// Where lines go when syslog is not reachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Plain lines on stderr (qmail-queue mode, policy server).
    Stderr,
    /// `LOG <text>` lines on stderr, the Plesk mail-handler protocol's log lines.
    HandlerStderr,
}

enum Sink {
    Syslog(SyslogLogger<LoggerBackend, Formatter3164>),
    Stderr(Fallback),
}

/// A logger with a fixed ident.
pub struct Logger {
    sink: Sink,
    /// `ident[pid]: ` (empty for [`Logger::stderr`]), after the time on stderr lines.
    tag: String,
    /// Stderr lines held for one write (see [`Logger::hold_stderr_lines`]); `None`: write at once.
    held: Option<Vec<u8>>,
    /// How the syslog connection was made, to make it again ([`Logger::reconnect`]); `None` for
    /// a stderr-only logger.
    origin: Option<Origin>,
}

/// What [`Logger::open`] was given.
struct Origin {
    ident: String,
    fallback: Fallback,
    /// `GREY_LISTING_LOG=stderr`: never syslog.
    forced: bool,
    /// The syslog socket.
    socket: std::path::PathBuf,
}

/// The syslog socket.
const SYSLOG_SOCKET: &str = "/dev/log";

/// Held stderr bytes past which they are written at once, whatever the caller does.
const HELD_MAX: usize = 64 * 1024;

impl Logger {
    /// Connects to syslog as `ident` (facility mail); falls back to stderr as `fallback` says.
    /// Setting `GREY_LISTING_LOG=stderr` forces the fallback (useful in tests).
    pub fn open(ident: &str, fallback: Fallback, env: &dyn Fn(&str) -> Option<String>) -> Logger {
        let origin = Origin {
            ident: ident.to_string(),
            fallback,
            forced: env("GREY_LISTING_LOG").is_some_and(|v| v == "stderr"),
            socket: SYSLOG_SOCKET.into(),
        };
        let tag = format!("{}[{}]: ", origin.ident, std::process::id());
        Logger {
            sink: origin.connect(),
            tag,
            held: None,
            origin: Some(origin),
        }
    }

    /// Connects to syslog again (a daemon does so on SIGHUP: syslogd or journald may have been
    /// restarted, leaving the old socket dead). A stderr-only logger stays as it is.
    pub fn reconnect(&mut self) {
        if let Some(origin) = &self.origin {
            self.sink = origin.connect();
        }
    }

    /// A logger that writes only to stderr in the given form.
    pub fn stderr(fallback: Fallback) -> Logger {
        Logger {
            sink: Sink::Stderr(fallback),
            tag: String::new(),
            held: None,
            origin: None,
        }
    }

    /// From now on, lines that go to stderr are collected and written by [`Logger::flush`] in
    /// one system call (the policy server flushes once per turn of its loop, instead of two
    /// writes per line). Syslog lines are still sent one by one, at once. Dropping the logger
    /// flushes.
    pub fn hold_stderr_lines(&mut self) {
        if self.held.is_none() {
            self.held = Some(Vec::new());
        }
    }

    /// Writes the held stderr lines, if any. Errors are ignored (DESIGN.md §5).
    pub fn flush(&mut self) {
        if let Some(held) = self.held.as_mut()
            && !held.is_empty()
        {
            let _ = std::io::stderr().lock().write_all(held);
            held.clear();
        }
    }

    fn stderr_line(&mut self, fallback: Fallback, line: &str) {
        let mut record = Vec::with_capacity(line.len() + 64);
        if fallback == Fallback::HandlerStderr {
            record.extend_from_slice(b"LOG ");
        }
        record.extend_from_slice(timestamp(chrono::Local::now()).as_bytes());
        record.push(b' ');
        record.extend_from_slice(self.tag.as_bytes());
        push_one_line(&mut record, line);
        match self.held.as_mut() {
            Some(held) => {
                held.extend_from_slice(&record);
                if held.len() > HELD_MAX {
                    self.flush();
                }
            }
            // One write per record, so lines of concurrent processes do not interleave.
            None => {
                let _ = std::io::stderr().lock().write_all(&record);
            }
        }
    }

    /// Logs one informational line. Errors writing it are ignored (DESIGN.md §5).
    pub fn info(&mut self, line: &str) {
        match &mut self.sink {
            Sink::Syslog(logger) => {
                if logger.info(line).is_err() {
                    self.stderr_line(Fallback::Stderr, line);
                }
            }
            Sink::Stderr(fallback) => {
                let fallback = *fallback;
                self.stderr_line(fallback, line);
            }
        }
    }

    /// Logs one error line.
    pub fn error(&mut self, line: &str) {
        match &mut self.sink {
            Sink::Syslog(logger) => {
                if logger.err(line).is_err() {
                    self.stderr_line(Fallback::Stderr, line);
                }
            }
            Sink::Stderr(fallback) => {
                let fallback = *fallback;
                self.stderr_line(fallback, line);
            }
        }
    }

    /// True when lines go to syslog.
    pub fn is_syslog(&self) -> bool {
        matches!(self.sink, Sink::Syslog(_))
    }
}

impl Origin {
    fn connect(&self) -> Sink {
        let formatter = Formatter3164 {
            facility: Facility::LOG_MAIL,
            hostname: None,
            process: self.ident.clone(),
            pid: std::process::id(),
        };
        if self.forced || !self.socket.exists() {
            return Sink::Stderr(self.fallback);
        }
        syslog::unix_custom(formatter, &self.socket)
            .map_or(Sink::Stderr(self.fallback), Sink::Syslog)
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Appends `line` and a newline; embedded newlines would break the one-line-per-record form.
fn push_one_line(out: &mut Vec<u8>, line: &str) {
    let start = out.len();
    out.extend_from_slice(line.as_bytes());
    for byte in &mut out[start..] {
        if *byte == b'\n' || *byte == b'\r' {
            *byte = b' ';
        }
    }
    out.push(b'\n');
}

/// The time on a stderr log line: local time, RFC 3339 with microseconds and the UTC offset.
fn timestamp<Tz: chrono::TimeZone>(now: chrono::DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    now.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_are_rfc_3339_with_offset_and_microseconds() {
        let zone = chrono::FixedOffset::east_opt(3_600).unwrap();
        let time = zone.timestamp_opt(1_773_648_402, 123_456_789).unwrap();
        assert_eq!(timestamp(time), "2026-03-16T09:06:42.123456+01:00");
        let parsed = chrono::DateTime::parse_from_rfc3339(&timestamp(time)).unwrap();
        assert_eq!(parsed.timestamp(), 1_773_648_402);
    }

    #[test]
    fn one_record_per_line() {
        let mut out = Vec::new();
        push_one_line(&mut out, "a\nb\rc");
        assert_eq!(out, b"a b c\n");
    }

    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    fn receive(socket: &UnixDatagram) -> Option<String> {
        let mut buf = [0u8; 2048];
        let n = socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).to_string())
    }

    // A syslog daemon restarted under a running server: its old socket is gone, and only a
    // reconnect reaches the new one.
    #[test]
    fn reconnect_reaches_a_restarted_syslog() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("log");
        let first = UnixDatagram::bind(&path).expect("bind");
        first
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let origin = Origin {
            ident: "gl-test".to_string(),
            fallback: Fallback::Stderr,
            forced: false,
            socket: path.clone(),
        };
        let mut log = Logger {
            sink: origin.connect(),
            tag: String::new(),
            held: None,
            origin: Some(origin),
        };
        assert!(log.is_syslog());
        log.info("one");
        assert!(receive(&first).expect("first line").contains("gl-test"));
        // The daemon restarts: a new socket at the same path.
        drop(first);
        std::fs::remove_file(&path).expect("remove");
        let second = UnixDatagram::bind(&path).expect("bind again");
        second
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        log.info("lost");
        assert_eq!(
            receive(&second),
            None,
            "the old connection reached the new socket"
        );
        log.reconnect();
        second
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        log.info("after reconnect");
        assert!(
            receive(&second)
                .expect("line after reconnect")
                .contains("after reconnect")
        );
    }

    #[test]
    fn a_stderr_logger_stays_on_stderr() {
        let mut log = Logger::stderr(Fallback::Stderr);
        log.reconnect();
        assert!(!log.is_syslog());
    }
}
