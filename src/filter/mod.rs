//! `greylisting-filter` (DESIGN.md §5): the decision for one message, shared by the Plesk mail-handler
//! mode ([`handler_mode`]) and the qmail-queue wrapper ([`qmail_queue`]).
//!
//! Everything here fails open: a database that cannot be opened, read or written, or even a bug
//! that panics, passes the mail and logs why. Greylisting must never lose or block mail itself.

pub(crate) mod facts;
pub mod handler_mode;
pub mod qmail_queue;
pub mod usage;

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::clock;
use crate::decision::Verdict;
use crate::dns::{self, SystemResolver};
use crate::engine::{self, Component, Message, MessageOutcome};
use crate::logging::Logger;
use crate::logline::{self, LineFacts, Shown};
use crate::store::{self, StoreError, StoreExt};

/// The syslog ident of the filter (DESIGN.md §5).
pub const LOG_IDENT: &str = "greylisting filter";

/// Environment variable: purge expired triplets on one run in N (default
/// [`DEFAULT_PURGE_ONE_IN`]; `1` = every run, `0` = never, e.g. when a cron job purges).
pub const PURGE_ONE_IN_VAR: &str = "GREY_LISTING_PURGE_ONE_IN";

/// By default one filter run in 100 deletes expired triplets.
pub const DEFAULT_PURGE_ONE_IN: u64 = 100;

/// At most this many expired triplets are deleted by one run, so no mail waits long for it.
/// With the default odds that is up to 10 rows per run on average; expired rows cannot pile up
/// unless the average run creates more than 10 new triplets (then purge from cron as well).
pub const PURGE_BATCH: u64 = 1000;

/// The envelope as the filter's log lines show it: each address bounded and escaped from the
/// bytes that arrived (`Shown::bytes`), so a byte that is not UTF-8 is logged as
/// `\xNN` rather than as the U+FFFD that [`envelope_text`] leaves in the decision's copy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShownEnvelope {
    /// The sender, as logged.
    pub sender: Shown,
    /// The recipients, as logged, in envelope order.
    pub recipients: Vec<Shown>,
}

impl ShownEnvelope {
    /// From the raw envelope addresses.
    pub fn new(sender: &[u8], recipients: &[&[u8]]) -> ShownEnvelope {
        ShownEnvelope {
            sender: Shown::bytes(sender),
            recipients: recipients.iter().map(|r| Shown::bytes(r)).collect(),
        }
    }
}

/// The text the decision and the store use for an envelope address that arrived as bytes
/// (qmail's envelope, the handler's argv). Both stores keep text — PostgreSQL cannot hold
/// invalid UTF-8 at all — so a byte that is not part of a UTF-8 character becomes U+FFFD here;
/// such a sender still gets its own triplet, matches `?` as one character, and its exact bytes
/// appear in the log line ([`ShownEnvelope`]).
pub fn envelope_text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Decides one message against the configured database and logs the decision. Never fails:
/// every store error and every panic passes the message (logged as an error). `shown` is the
/// envelope as the log lines show it.
pub fn decide(
    message: &Message,
    shown: &ShownEnvelope,
    env: &dyn Fn(&str) -> Option<String>,
    log: &mut Logger,
) -> Verdict {
    let result = catch_unwind(AssertUnwindSafe(|| decide_in_store(message, env)));
    match result {
        Ok(Ok(run)) => {
            for note in &run.dns_notes {
                log.error(note);
            }
            log_outcome(message, shown, &run.outcome, log);
            if let Some(line) = run.purge_note {
                log.info(&line);
            }
            run.outcome.verdict
        }
        Ok(Err(err)) => {
            log.error(&format!("error: {err}; passing the message (fail open)"));
            Verdict::Pass
        }
        Err(panic) => {
            log.error(&format!(
                "internal error: {}; passing the message (fail open)",
                crate::logline::panic_text(panic.as_ref())
            ));
            Verdict::Pass
        }
    }
}

struct Run {
    outcome: MessageOutcome,
    purge_note: Option<String>,
    /// The DNS lists that did not answer in time (one line each), and a missing resolver.
    dns_notes: Vec<String>,
}

fn decide_in_store(
    message: &Message,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Run, StoreError> {
    let location = store::resolve_location(None, env)?;
    let mut db = store::open(&location)?;
    let now = clock::now(env);
    let resolver = SystemResolver::new(env);
    let (outcome, asked) =
        engine::check_message_dns(db.as_mut(), Component::Filter, message, now, &resolver)?;
    let mut dns_notes = Vec::new();
    if let Some(why) = resolver.error() {
        dns_notes.push(format!(
            "dns: no resolver ({why}); DNS lists count as not listed"
        ));
    }
    if let Some(ip) = message.client_ip {
        dns_notes.extend(
            asked
                .unanswered_zones()
                .map(|zone| logline::dns_no_answer_line(zone, ip, dns::BUDGET)),
        );
    }
    // The verdict is already decided and committed; a failed purge only delays the cleanup.
    let purge_note = if purge_due(env) {
        match db.write_with(|tx| tx.purge_expired_batch(now, PURGE_BATCH)) {
            Ok(purged) => (purged > 0).then(|| format!("purged {purged} expired triplets")),
            Err(err) => Some(format!("purge of expired triplets failed: {err}")),
        }
    } else {
        None
    };
    Ok(Run {
        outcome,
        purge_note,
        dns_notes,
    })
}

/// Whether this run should purge: with odds of one in `GREY_LISTING_PURGE_ONE_IN`.
fn purge_due(env: &dyn Fn(&str) -> Option<String>) -> bool {
    let one_in = env(PURGE_ONE_IN_VAR)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(DEFAULT_PURGE_ONE_IN);
    match one_in {
        0 => false,
        1 => true,
        n => crate::clock::cheap_random().is_multiple_of(n),
    }
}

/// Logs Plesk's list-hit line (when a list decided) and one decision line per recipient, in the
/// format every front end shares ([`crate::logline`]).
fn log_outcome(
    message: &Message,
    shown: &ShownEnvelope,
    outcome: &MessageOutcome,
    log: &mut Logger,
) {
    for (index, recipient) in outcome.recipients.iter().enumerate() {
        let fallback;
        let recipient_shown = match shown.recipients.get(index) {
            Some(shown) => shown,
            None => {
                fallback = Shown::text(&recipient.recipient);
                &fallback
            }
        };
        let facts = LineFacts {
            client_name: message.client_name.as_deref(),
            client_ip: message.client_ip,
            sender: &shown.sender,
            recipient: recipient_shown,
        };
        if let Some(line) = logline::list_hit_line(&recipient.decision, &facts) {
            log.info(&line);
        }
        log.info(&logline::decision_line(&recipient.decision, &facts));
    }
}
