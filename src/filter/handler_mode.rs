//! Plesk mail-handler mode (DESIGN.md §5): `greylisting-filter <context> <sender> <recipient>...`, the
//! message on stdin, the verdict as the last stderr line and the exit status.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;

use super::facts;
use crate::decision::Verdict;
use crate::engine::Message;
use crate::logging::{Fallback, Logger};

/// How much of the message is kept for finding its headers.
const HEAD_LIMIT: u64 = 1 << 20;

/// The handler protocol's answers and their exit statuses (Plesk: 0 only for PASS/STOP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerVerdict {
    /// Pass the message on (Plesk's greylist answers SKIP, not PASS). Exit 1.
    Skip = 1,
    /// Temporary failure. Exit 2.
    Defer = 2,
    /// Permanent failure. Exit 3.
    Reject = 3,
}

impl HandlerVerdict {
    /// The protocol word written to stderr.
    pub fn as_str(self) -> &'static str {
        match self {
            HandlerVerdict::Skip => "SKIP",
            HandlerVerdict::Defer => "DEFER",
            HandlerVerdict::Reject => "REJECT",
        }
    }

    /// The exit status that goes with it.
    pub fn exit_code(self) -> u8 {
        self as u8
    }
}

impl From<Verdict> for HandlerVerdict {
    fn from(verdict: Verdict) -> HandlerVerdict {
        match verdict {
            Verdict::Pass => HandlerVerdict::Skip,
            Verdict::Defer => HandlerVerdict::Defer,
            Verdict::Reject => HandlerVerdict::Reject,
        }
    }
}

/// Runs the handler: `args` are the arguments after the program name. Reads `stdin` to the end,
/// logs, writes the verdict line to `verdict_out` (stderr) and returns it. Never fails.
pub fn run(
    args: &[OsString],
    stdin: &mut dyn Read,
    env: &dyn Fn(&str) -> Option<String>,
    verdict_out: &mut dyn Write,
) -> HandlerVerdict {
    let mut log = Logger::open(super::LOG_IDENT, Fallback::HandlerStderr, env);
    log.info("Starting greylisting filter...");
    // Only the headers matter, but stdin is read to the end so the caller, which writes the
    // whole message, never sees a broken pipe. The first MiB is kept (the topmost `Received:`
    // header is at the start), the rest is discarded. A read error keeps what was read so far.
    let mut message_bytes = Vec::new();
    let read = stdin
        .take(HEAD_LIMIT)
        .read_to_end(&mut message_bytes)
        .and_then(|_| std::io::copy(stdin, &mut std::io::sink()));
    if let Err(err) = read {
        log.error(&format!("error reading the message: {err}"));
    }
    let verdict = match args {
        [_context, sender, recipients @ ..] => {
            let recipients = usable_recipients(recipients, &mut log);
            if recipients.is_empty() {
                log.info("no recipients: nothing to greylist; passing the message");
                HandlerVerdict::Skip
            } else {
                decide_message(sender, &recipients, &message_bytes, env, &mut log)
            }
        }
        _ => {
            log.error(&format!(
                "usage: greylisting-filter <context> <sender> <recipient>... (got {} arguments); passing the message",
                args.len()
            ));
            HandlerVerdict::Skip
        }
    };
    // The verdict is the last line; a write error here cannot be reported anywhere.
    let _ = writeln!(verdict_out, "{}", verdict.as_str());
    let _ = verdict_out.flush();
    verdict
}

/// The recipient arguments worth deciding on: an empty (or all-blank) argument names no mailbox
/// and would only record a triplet for nobody, so it is left out with a log line.
fn usable_recipients<'a>(recipients: &'a [OsString], log: &mut Logger) -> Vec<&'a OsString> {
    let mut usable = Vec::with_capacity(recipients.len());
    for (index, recipient) in recipients.iter().enumerate() {
        if recipient.as_bytes().trim_ascii().is_empty() {
            log.info(&format!(
                "ignoring recipient argument {} (empty)",
                index + 1
            ));
        } else {
            usable.push(recipient);
        }
    }
    usable
}

/// Finds the client and decides the message for `recipients`.
fn decide_message(
    sender: &OsString,
    recipients: &[&OsString],
    message_bytes: &[u8],
    env: &dyn Fn(&str) -> Option<String>,
    log: &mut Logger,
) -> HandlerVerdict {
    let head = facts::header_block(message_bytes);
    let client = facts::from_env_or_headers(env, head);
    if client.source == facts::FactSource::UnreadableHeader {
        log.info(
            "the topmost Received: header is in no known form; greylisting the client as \
             unknown (client_address=0.0.0.0)",
        );
    }
    let message = Message {
        client_ip: client.ip,
        client_name: client.name,
        sender: super::envelope_text(sender.as_bytes()),
        recipients: recipients
            .iter()
            .map(|r| super::envelope_text(r.as_bytes()))
            .collect(),
        authenticated: client.authenticated,
        client_name_unconfirmed: client.name_unconfirmed,
        ..Message::default()
    };
    let raw: Vec<&[u8]> = recipients.iter().map(|r| r.as_bytes()).collect();
    let shown = super::ShownEnvelope::new(sender.as_bytes(), &raw);
    HandlerVerdict::from(super::decide(&message, &shown, env, log))
}
