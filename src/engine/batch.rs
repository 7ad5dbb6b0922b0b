//! Deciding a batch of messages in one write transaction: every recipient walked, the decision
//! counters counted and old decision-log rows pruned.

use crate::bounds;
use crate::config::Settings;
use crate::decision::{CompiledLists, Reason, Trace, Verdict, combine};
use crate::store::{self, StoreError, Tx};

use super::{
    Component, ConfigCache, LoggedFacts, Message, MessageOutcome, Mode, RecipientCache,
    RecipientOutcome, Walk, log_entry, recipient_key, recipient_policy,
};

/// Old decision-log rows pruned per message at most, so the mail path never does a long delete
/// (`grey_listing --purge` removes any backlog at once).
const LOG_PRUNE_PER_MESSAGE: u64 = 64;

/// [`check_messages_in_tx`] with a configuration cache kept by the caller across transactions:
/// the configuration is read only when the store's stamp says it changed, so a request costs
/// the triplet statements alone. Same decisions as [`check_messages_in_tx`].
/// `component` names who decides, for the store's decision counters (counted in the same
/// transaction, once per action and reason).
///
/// [`check_messages_in_tx`]: super::check_messages_in_tx
pub fn check_messages_cached(
    tx: &mut dyn Tx,
    cache: &mut ConfigCache,
    component: Component,
    messages: &[(&Message, i64)],
) -> Result<Vec<MessageOutcome>, StoreError> {
    let ((settings, lists), recipients) = cache.refresh(tx)?;
    decide_loaded(tx, (settings, lists), recipients, component, messages)
}

/// [`check_messages_cached`] on a configuration already refreshed for `tx`.
pub(super) fn decide_loaded(
    tx: &mut dyn Tx,
    (settings, lists): (&Settings, &CompiledLists),
    recipients: &mut RecipientCache,
    component: Component,
    messages: &[(&Message, i64)],
) -> Result<Vec<MessageOutcome>, StoreError> {
    let mut results = Vec::with_capacity(messages.len());
    let mut counts: Vec<(Verdict, Reason, u64)> = Vec::new();
    for (message, now) in messages {
        let outcomes = decide_recipients(tx, settings, lists, recipients, message, *now)?;
        for outcome in &outcomes {
            let (verdict, reason) = (outcome.decision.verdict, outcome.decision.reason);
            match counts
                .iter_mut()
                .find(|(v, r, _)| *v == verdict && *r == reason)
            {
                Some((_, _, n)) => *n += 1,
                None => counts.push((verdict, reason, 1)),
            }
        }
        let verdict = combine(outcomes.iter().map(|o| o.decision.verdict));
        results.push(MessageOutcome {
            verdict,
            recipients: outcomes,
        });
    }
    // Always in the same order: concurrent transactions then lock the counter rows in the same
    // order and cannot deadlock on them (PostgreSQL).
    counts.sort_by_key(|(verdict, reason, _)| (verdict.as_str(), reason.as_str()));
    let counts: Vec<store::DecisionCount> = counts
        .into_iter()
        .map(|(verdict, reason, count)| store::DecisionCount {
            component: component.as_str().to_string(),
            action: verdict.as_str().to_string(),
            reason: reason.as_str().to_string(),
            count,
        })
        .collect();
    tx.count_decisions(&counts)?;
    let latest = messages.iter().map(|(_, now)| *now).max();
    if let (true, Some(now)) = (settings.log_retention > 0, latest) {
        let retention = i64::try_from(settings.log_retention).unwrap_or(i64::MAX);
        tx.purge_decision_log(now.saturating_sub(retention), Some(LOG_PRUNE_PER_MESSAGE))?;
    }
    Ok(results)
}

pub(super) fn decide_recipients(
    tx: &mut dyn Tx,
    settings: &Settings,
    lists: &CompiledLists,
    recipients: &mut RecipientCache,
    message: &Message,
    now: i64,
) -> Result<Vec<RecipientOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(message.recipients.len());
    let walk = Walk::new(settings, lists, message, now, Mode::Mail);
    let sender_logged = bounds::bound(&message.sender);
    for recipient in &message.recipients {
        let recipient_lower = recipient_key(recipient);
        let policy = recipient_policy(tx, settings, recipients, &recipient_lower)?;
        let decision = walk.decide(tx, policy, recipient, &recipient_lower, &mut Trace::off())?;
        if settings.log_retention > 0 {
            let facts = LoggedFacts {
                message,
                sender: &sender_logged,
                recipient,
            };
            tx.log_decision(&log_entry(&facts, walk.key.as_ref(), &decision, now))?;
        }
        outcomes.push(RecipientOutcome {
            recipient: recipient.clone(),
            decision,
        });
    }
    Ok(outcomes)
}
