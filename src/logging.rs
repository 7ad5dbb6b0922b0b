//! Log lines for the mail path (SPEC §5): syslog, facility mail, with a stderr fallback when
//! there is no `/dev/log` (containers, tests). Logging never fails the caller.

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
}

impl Logger {
    /// Connects to syslog as `ident` (facility mail); falls back to stderr as `fallback` says.
    /// Setting `GREY_LISTING_LOG=stderr` forces the fallback (useful in tests).
    pub fn open(ident: &str, fallback: Fallback, env: &dyn Fn(&str) -> Option<String>) -> Logger {
        let forced = env("GREY_LISTING_LOG").is_some_and(|v| v == "stderr");
        let formatter = Formatter3164 {
            facility: Facility::LOG_MAIL,
            hostname: None,
            process: ident.to_string(),
            pid: std::process::id(),
        };
        let sink = match (forced, std::path::Path::new("/dev/log").exists()) {
            (false, true) => syslog::unix(formatter).map_or(Sink::Stderr(fallback), Sink::Syslog),
            _ => Sink::Stderr(fallback),
        };
        Logger { sink }
    }

    /// A logger that writes only to stderr in the given form.
    pub fn stderr(fallback: Fallback) -> Logger {
        Logger {
            sink: Sink::Stderr(fallback),
        }
    }

    /// Logs one informational line. Errors writing it are ignored (SPEC §5).
    pub fn info(&mut self, line: &str) {
        match &mut self.sink {
            Sink::Syslog(logger) => {
                if logger.info(line).is_err() {
                    write_stderr(Fallback::Stderr, line);
                }
            }
            Sink::Stderr(fallback) => write_stderr(*fallback, line),
        }
    }

    /// Logs one error line.
    pub fn error(&mut self, line: &str) {
        match &mut self.sink {
            Sink::Syslog(logger) => {
                if logger.err(line).is_err() {
                    write_stderr(Fallback::Stderr, line);
                }
            }
            Sink::Stderr(fallback) => write_stderr(*fallback, line),
        }
    }

    /// True when lines go to syslog.
    pub fn is_syslog(&self) -> bool {
        matches!(self.sink, Sink::Syslog(_))
    }
}

fn write_stderr(fallback: Fallback, line: &str) {
    // One line per record: embedded newlines would break the handler protocol.
    let line = line.replace(['\n', '\r'], " ");
    let mut stderr = std::io::stderr().lock();
    let _ = match fallback {
        Fallback::Stderr => writeln!(stderr, "{line}"),
        Fallback::HandlerStderr => writeln!(stderr, "LOG {line}"),
    };
}
