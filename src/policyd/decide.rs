//! One turn's decisions, guarded: the actions for a batch of requests, with any panic while
//! deciding or describing them caught, logged and answered `DUNNO` for the whole batch, so a bug
//! reached by one request never takes the server (and with it every mail) down. A panic inside a
//! store transaction is caught closer, by the decider, which then drops its connection (so the
//! transaction is rolled back) and reopens it for the next batch.

use std::panic::{self, AssertUnwindSafe};

use crate::dns::DnsFacts;
use crate::engine::{Checked, DnsPlan, Message};
use crate::logging::Logger;
use crate::logline::panic_line;

use super::Config;
use super::conn::Pending;
use super::connections::Table;
use super::protocol::Parsed;
use super::reply::Action;
use crate::daemon::batch::{BatchDecider, DecideError};

/// What to do with one request of a batch.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// Answer it.
    Reply(Action),
    /// Ask DNS first (`known`: the answers the store's cache had); decided in a later batch.
    Park {
        /// What is left to ask.
        ask: DnsPlan,
        /// The answers known so far.
        known: DnsFacts,
    },
}

/// The step for each of `pending`, in order. Decides the checks in one batch; a panic answers
/// every request of the batch `DUNNO`, with a log line.
pub(super) fn actions(
    pending: &[Pending],
    conns: &Table,
    decider: &mut BatchDecider,
    config: &Config,
    log: &mut Logger,
) -> Vec<Step> {
    let guarded = panic::catch_unwind(AssertUnwindSafe(|| {
        decide_and_describe(pending, conns, decider, config, log)
    }));
    match guarded {
        Ok(actions) => actions,
        Err(payload) => {
            log.error(&panic_line(
                pending.len(),
                "request",
                "all answered DUNNO",
                payload.as_ref(),
            ));
            vec![Step::Reply(Action::Dunno); pending.len()]
        }
    }
}

fn decide_and_describe(
    pending: &[Pending],
    conns: &Table,
    decider: &mut BatchDecider,
    config: &Config,
    log: &mut Logger,
) -> Vec<Step> {
    let checks: Vec<(&Message, i64)> = pending
        .iter()
        .filter_map(|p| match &p.kind {
            Parsed::Check { message, now } => Some((message, *now)),
            Parsed::Ignore(_) | Parsed::Empty => None,
        })
        .collect();
    let started = std::time::Instant::now();
    let outcomes = if checks.is_empty() {
        Vec::new()
    } else {
        decider.decide(&checks, log)
    };
    if let Some(metrics) = &config.metrics {
        metrics.record_batch(started.elapsed().as_secs_f64(), &checks, &outcomes);
    }
    let mut outcomes = outcomes.into_iter();
    pending
        .iter()
        .map(|request| match &request.kind {
            Parsed::Ignore(why) => {
                let peer = conns
                    .get(&request.token)
                    .map_or_else(String::new, |c| c.peer.to_string());
                log.info(&format!("action=dunno, reason={why}, peer={peer}"));
                Step::Reply(Action::Dunno)
            }
            // Logged (once per connection) where it was read.
            Parsed::Empty => Step::Reply(Action::Dunno),
            Parsed::Check { message, now } => {
                match outcomes.next().unwrap_or(Err(DecideError::MissingOutcome)) {
                    Ok(Checked::NeedsDns { ask, known }) => Step::Park { ask, known },
                    Ok(Checked::Decided(outcome)) => Step::Reply(super::reply::describe_and_act(
                        message,
                        *now,
                        Ok(outcome),
                        config,
                        log,
                    )),
                    Err(why) => Step::Reply(super::reply::describe_and_act(
                        message,
                        *now,
                        Err(why),
                        config,
                        log,
                    )),
                }
            }
        })
        .collect()
}
