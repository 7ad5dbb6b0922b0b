//! The replies of one turn: each decided request's log lines and action, queued on its
//! connection in request order.

use crate::decision::Verdict;
use crate::engine::{Message, MessageOutcome};
use crate::logging::Logger;
use crate::logline::{self, LineFacts, Shown};

use super::batch::BatchDecider;
use super::conn::Pending;
use super::connections::{CloseCause, Table};
use super::protocol;
use super::{Config, decide};

/// Replies a client may leave unread (beyond the socket buffers) before it is disconnected.
const MAX_UNSENT_REPLIES: usize = 1024 * 1024;

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
    /// The action for a decided message. `header_host` and `date` fill the `X-Greylist` header
    /// on a triplet's first pass.
    pub(super) fn for_outcome(outcome: &MessageOutcome, header_host: &str, date: &str) -> Action {
        match outcome.verdict {
            Verdict::Defer => Action::Defer,
            Verdict::Reject => Action::Reject,
            Verdict::Pass => match outcome.recipients.iter().find_map(|r| r.decision.delay) {
                Some(delay) => Action::Prepend(format!(
                    "X-Greylist: delayed {delay} seconds by grey_listing at {header_host}; {date}"
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

/// Decides this turn's requests in one transaction and queues the replies, in request order.
pub(super) fn answer(
    pending: &mut Vec<Pending>,
    conns: &mut Table,
    decider: &mut BatchDecider,
    config: &Config,
    log: &mut Logger,
) {
    let actions = decide::actions(pending, conns, decider, config, log);
    let mut touched = Vec::new();
    for (request, mut action) in pending.drain(..).zip(actions) {
        let Some(conn) = conns.get_mut(&request.token) else {
            continue;
        };
        // One X-Greylist header per message: Postfix sends every recipient of a message over the
        // same connection with the same `instance`, as postgrey relies on too.
        if matches!(action, Action::Prepend(_))
            && let Some(instance) = request.instance
        {
            if conn.last_header_instance.as_deref() == Some(instance.as_str()) {
                action = Action::Dunno;
            } else {
                conn.last_header_instance = Some(instance);
            }
        }
        conn.out.extend_from_slice(&action.reply());
        touched.push(request.token);
    }
    // Only the connections answered this turn; idle ones are not visited.
    for token in touched {
        if let Some(conn) = conns.get_mut(&token)
            && !conn.out.is_empty()
        {
            conn.flush_out();
            // A client that keeps sending but never reads its replies would grow this buffer
            // without bound: drop it instead.
            if conn.out.len() > MAX_UNSENT_REPLIES && !conn.dead {
                log.error(&format!(
                    "closing connection from {}: more than {MAX_UNSENT_REPLIES} bytes of replies not read",
                    conn.peer
                ));
                conn.close_cause = Some(CloseCause::ReplyBacklog);
                conn.dead = true;
            }
        }
    }
}

/// Logs the decision lines of one request and returns its action (`DUNNO` on a store failure).
pub(super) fn describe_and_act(
    message: &Message,
    now: i64,
    outcome: Result<MessageOutcome, String>,
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
            // The date is formatted only for the header, not for every answer.
            let date = if outcome
                .recipients
                .iter()
                .any(|r| r.decision.delay.is_some())
            {
                decide::header_date(now)
            } else {
                String::new()
            };
            Action::for_outcome(&outcome, &config.hostname, &date)
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
