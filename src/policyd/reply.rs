//! The replies of one turn: each decided request's log lines and action, queued on its
//! connection in request order.

use crate::decision::Verdict;
use crate::engine::{Message, MessageOutcome};
use mio::Registry;

use crate::logging::Logger;
use crate::logline::{self, LineFacts, Shown};

use super::Config;
use super::conn::{Conn, Held, Pending};
use super::connections::Table;
use super::decide::{self, Step};
use super::protocol;
use crate::daemon::batch::{BatchDecider, DecideError};
use crate::daemon::dns_waits::DnsWaits;
use crate::header;

/// What the server answers one request (DESIGN.md §6), rendered in one place ([`Action::reply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// No opinion: Postfix goes on with its other restrictions (mail passes).
    Dunno,
    /// Greylisted: `DEFER_IF_PERMIT 4.7.1 …`.
    Defer,
    /// Rejected by a black list: `REJECT 5.7.1 …`.
    Reject,
    /// Passed on a triplet's first pass: add this `X-Greylist` header line.
    Prepend(String),
}

impl Action {
    /// The action for a decided message at `now`. `header_host` fills the `X-Greylist` header
    /// on a triplet's first pass.
    pub(super) fn for_outcome(outcome: &MessageOutcome, header_host: &str, now: i64) -> Action {
        match outcome.verdict {
            Verdict::Defer => Action::Defer,
            Verdict::Reject => Action::Reject,
            Verdict::Pass => match outcome.recipients.iter().find_map(|r| r.decision.delay) {
                Some(delay) => Action::Prepend(format!(
                    "{}: {}",
                    header::NAME,
                    header::value(delay, header_host, now)
                )),
                None => Action::Dunno,
            },
        }
    }

    /// The bytes sent back: `action=<action>`, then a blank line.
    pub(super) fn reply(&self) -> Vec<u8> {
        let text = match self {
            Action::Dunno => protocol::REPLY_DUNNO,
            Action::Defer => protocol::REPLY_DEFER,
            Action::Reject => protocol::REPLY_REJECT,
            Action::Prepend(header) => {
                return format!("action=PREPEND {header}\n\n").into_bytes();
            }
        };
        format!("action={text}\n\n").into_bytes()
    }
}

/// Rounds of decide-then-release per turn: a request released from behind one that waited for
/// DNS is decided in the next round; past this, in the next turn.
const MAX_ROUNDS: usize = 16;

/// What `answer` needs besides the requests: the database and the DNS waits.
pub(super) struct Deciders<'a> {
    pub(super) decider: &'a mut BatchDecider,
    pub(super) waits: &'a mut DnsWaits<Pending>,
    pub(super) registry: &'a Registry,
}

/// Decides this turn's requests in one transaction and queues the replies, in request order per
/// connection. A request that needs DNS is parked (its connection's later requests and replies
/// wait behind it); one coming back with its answers is decided with them.
pub(super) fn answer(
    pending: &mut Vec<Pending>,
    conns: &mut Table,
    deciders: &mut Deciders<'_>,
    config: &Config,
    log: &mut Logger,
) {
    let mut batch: Vec<Pending> = Vec::with_capacity(pending.len());
    for request in pending.drain(..) {
        match conns.get_mut(&request.token) {
            Some(conn) if conn.waiting && !request.gate => {
                conn.hold(Held::Request(Box::new(request)), log);
            }
            Some(_) => batch.push(request),
            None => {}
        }
    }
    let mut touched = Vec::new();
    for _ in 0..MAX_ROUNDS {
        if batch.is_empty() {
            break;
        }
        let steps = decide::actions(&batch, conns, deciders.decider, config, log);
        let mut next = Vec::new();
        for (request, step) in batch.drain(..).zip(steps) {
            let Some(conn) = conns.get_mut(&request.token) else {
                continue;
            };
            touched.push(request.token);
            match step {
                Step::Park { ask, known } => {
                    if conn.waiting && !request.gate {
                        // Behind another request of the same connection in this batch.
                        conn.hold(Held::Request(Box::new(request)), log);
                    } else {
                        conn.waiting = true;
                        let mut request = request;
                        request.gate = true;
                        deciders
                            .waits
                            .park(request, ask, known, deciders.registry, log);
                    }
                }
                Step::Reply(action) => {
                    let action = once_per_message(conn, request.instance, action);
                    if conn.waiting && !request.gate {
                        conn.hold(Held::Reply(action), log);
                        continue;
                    }
                    conn.out.extend_from_slice(&action.reply());
                    if request.gate {
                        conn.waiting = false;
                        release_held(conn, &mut next);
                    }
                }
            }
        }
        next.extend(deciders.waits.take_ready(log));
        batch = next;
    }
    // Past the rounds: the next turn.
    pending.append(&mut batch);
    // Only the connections answered this turn, each once; idle ones are not visited.
    touched.sort_unstable();
    touched.dedup();
    for token in touched {
        if let Some(conn) = conns.get_mut(&token)
            && !conn.out.is_empty()
        {
            conn.flush_out(log);
        }
    }
}

/// One X-Greylist header per message: Postfix sends every recipient of a message over the same
/// connection with the same `instance`, as postgrey relies on too.
fn once_per_message(conn: &mut Conn, instance: Option<String>, action: Action) -> Action {
    if let (Action::Prepend(_), Some(instance)) = (&action, instance) {
        if conn.last_header_instance.as_deref() == Some(instance.as_str()) {
            return Action::Dunno;
        }
        conn.last_header_instance = Some(instance);
    }
    action
}

/// Queues the held replies of `conn` up to its next held request, which becomes the one the
/// connection waits for (decided in the next round).
fn release_held(conn: &mut Conn, next: &mut Vec<Pending>) {
    while let Some(held) = conn.held.pop_front() {
        match held {
            Held::Reply(action) => conn.out.extend_from_slice(&action.reply()),
            Held::Request(request) => {
                let mut request = *request;
                request.gate = true;
                conn.waiting = true;
                next.push(request);
                return;
            }
        }
    }
}

/// Logs the decision lines of one request and returns its action (`DUNNO` on a store failure).
pub(super) fn describe_and_act(
    message: &Message,
    now: i64,
    outcome: Result<MessageOutcome, DecideError>,
    config: &Config,
    log: &mut Logger,
) -> Action {
    let sender = Shown::text(&message.sender);
    let recipient = Shown::text(message.recipients.first().map_or("", String::as_str));
    let facts = LineFacts {
        client_name: message.client_name.as_deref(),
        client_ip: message.client_ip,
        sender: &sender,
        recipient: &recipient,
    };
    match outcome {
        Ok(outcome) => {
            for recipient in &outcome.recipients {
                if let Some(line) = logline::list_hit_line(&recipient.decision, &facts) {
                    log.info(&line);
                }
                log.info(&logline::decision_line(&recipient.decision, &facts));
            }
            Action::for_outcome(&outcome, &config.hostname, now)
        }
        Err(why) => {
            log.error(&logline::failure_line(&why, &facts));
            Action::Dunno
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_renders_as_one_reply_with_its_blank_line() {
        assert_eq!(Action::Dunno.reply(), b"action=DUNNO\n\n");
        assert_eq!(
            Action::Defer.reply(),
            b"action=DEFER_IF_PERMIT 4.7.1 Service unavailable - try again later\n\n"
        );
        assert_eq!(
            Action::Reject.reply(),
            b"action=REJECT 5.7.1 Command rejected\n\n"
        );
        assert_eq!(
            Action::Prepend("X-Greylist: delayed 300 seconds".to_string()).reply(),
            b"action=PREPEND X-Greylist: delayed 300 seconds\n\n"
        );
    }
}
