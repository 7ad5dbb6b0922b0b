//! DNS for the daemons (policyd, the milter), which decide batches in one write transaction per
//! event-loop turn and must never wait for DNS inside it. A message that needs answers nobody has
//! yet is not decided in its batch: the batch hands back what to ask ([`Checked::NeedsDns`]), the
//! daemon asks without blocking its loop and sends the message again with the answers and
//! [`Message::dns_asked`] set; that batch decides it and caches the answers. Planning reads the
//! configuration and the cached answers inside the batch's transaction, so a daemon pays nothing
//! extra for it: when the configuration asks no DNS (`all` mode, no DNSWL zone), nothing is
//! planned at all.

use std::borrow::Cow;

use super::dns::{cache_answers, cached_facts};
use super::{ConfigCache, Message, MessageOutcome, decide_loaded, recipient_key, recipient_policy};
use crate::config::GreylistClients;
use crate::dns::DnsFacts;
use crate::engine::{Component, DnsPlan, merge_facts, plan_dns_with};
use crate::store::{StoreError, Tx};

/// What a batch did with one message.
#[derive(Debug, Clone)]
pub enum Checked {
    /// Decided (and recorded).
    Decided(MessageOutcome),
    /// Not decided: DNS must be asked `ask` first; `known` holds the answers already there (from
    /// the store's cache), to put in [`Message::dns`] with the new ones.
    NeedsDns {
        /// What is left to ask.
        ask: DnsPlan,
        /// The answers known so far.
        known: DnsFacts,
    },
}

impl Checked {
    /// The outcome, when the message was decided.
    pub fn decided(&self) -> Option<&MessageOutcome> {
        match self {
            Checked::Decided(outcome) => Some(outcome),
            Checked::NeedsDns { .. } => None,
        }
    }
}

/// Decides `messages` in `tx` like [`super::check_messages_cached`], except those whose DNS
/// answers are missing: they are handed back as [`Checked::NeedsDns`], nothing written for them.
pub fn check_messages_with_dns(
    tx: &mut dyn Tx,
    cache: &mut ConfigCache,
    component: Component,
    messages: &[(&Message, i64)],
) -> Result<Vec<Checked>, StoreError> {
    let ((settings, lists), recipients) = cache.refresh(tx)?;
    let dns_possible =
        settings.greylist_clients == GreylistClients::Suspicious || !lists.dnswl_zones().is_empty();
    let mut checked: Vec<Option<Checked>> = vec![None; messages.len()];
    let mut ready: Vec<(Cow<'_, Message>, i64)> = Vec::with_capacity(messages.len());
    let mut ready_index = Vec::with_capacity(messages.len());
    for (index, (message, now)) in messages.iter().enumerate() {
        if dns_possible && message.dns_asked.is_none() && message.client_ip.is_some() {
            let mut policies = Vec::with_capacity(message.recipients.len());
            for recipient in &message.recipients {
                let key = recipient_key(recipient);
                policies.push(recipient_policy(tx, settings, recipients, &key)?.clone());
            }
            if let Some(plan) = plan_dns_with(settings, lists, &policies, message) {
                let known = merge_facts(&message.dns, &cached_facts(tx, &plan, *now)?);
                match plan.remaining(&known) {
                    Some(ask) => {
                        checked[index] = Some(Checked::NeedsDns { ask, known });
                        continue;
                    }
                    None => {
                        let mut with_answers = Message::clone(message);
                        with_answers.dns = known;
                        ready.push((Cow::Owned(with_answers), *now));
                        ready_index.push(index);
                        continue;
                    }
                }
            }
        }
        ready.push((Cow::Borrowed(*message), *now));
        ready_index.push(index);
    }
    if !ready.is_empty() {
        let batch: Vec<(&Message, i64)> = ready.iter().map(|(m, now)| (m.as_ref(), *now)).collect();
        let outcomes = decide_loaded(tx, (settings, lists), recipients, component, &batch)?;
        for (message, now) in &batch {
            if let (Some(asked), Some(ip)) = (&message.dns_asked, message.client_ip) {
                cache_answers(
                    tx,
                    ip,
                    asked.confirm.as_deref(),
                    &live(asked, &message.dns),
                    *now,
                )?;
            }
        }
        for (index, outcome) in ready_index.into_iter().zip(outcomes) {
            checked[index] = Some(Checked::Decided(outcome));
        }
    }
    Ok(checked.into_iter().flatten().collect())
}

/// The answers of `facts` that `asked` asked for (the rest came from the cache and are not
/// stored again, which would extend their life).
fn live(asked: &DnsPlan, facts: &DnsFacts) -> DnsFacts {
    DnsFacts {
        zones: facts
            .zones
            .iter()
            .filter(|answer| {
                asked
                    .zones
                    .iter()
                    .any(|z| z.eq_ignore_ascii_case(&answer.zone))
            })
            .cloned()
            .collect(),
        forward: facts.forward.filter(|_| asked.confirm.is_some()),
    }
}
