//! The DNS part of deciding a message: what must be asked about the client before the write
//! transaction (nothing when the white and black lists decide every recipient), and the flow
//! that reads the configuration, asks DNS with no transaction open, then decides with the
//! answers. Lookups can take up to the whole DNS budget: a transaction held open meanwhile
//! would block every other writer of the store.

use std::net::IpAddr;

use super::{
    ConfigCache, Message, MessageOutcome, check_messages_cached, recipient_key, recipient_policy,
};
use crate::config::{GreylistClients, Settings};
use crate::decision::{
    CompiledLists, RecipientPolicy, Request, Suspicion, combine, decide_by_lists, name_suspicion,
    verified_name,
};
use crate::dns::{DnsFacts, DnsSource, Forward, Question, ZoneAnswer, ZoneResult};
use crate::engine::{Checked, Component, check_messages_with_dns};
use crate::names;
use crate::store::{Store, StoreError, StoreExt, Tx};

/// What to ask DNS about one message's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsPlan {
    /// The client address.
    pub ip: IpAddr,
    /// The zones to ask, each once: the DNSWL zones, then (in suspicious mode) the DNSBL zones.
    pub zones: Vec<String>,
    /// The unconfirmed client name to forward-confirm (suspicious mode only).
    pub confirm: Option<String>,
}

impl DnsPlan {
    /// The question for a [`DnsSource`].
    pub fn question(&self) -> Question<'_> {
        Question {
            ip: self.ip,
            zones: &self.zones,
            confirm: self.confirm.as_deref(),
        }
    }

    /// What is left to ask once `known` (answers cached earlier) is taken into account;
    /// `None` when `known` answers everything.
    pub fn remaining(&self, known: &DnsFacts) -> Option<DnsPlan> {
        let answered = |zone: &String| {
            known
                .zone(zone)
                .is_some_and(|result| result != ZoneResult::NoAnswer)
        };
        let confirmed = matches!(
            known.forward,
            Some(Forward::Confirmed | Forward::NotConfirmed)
        );
        let rest = DnsPlan {
            ip: self.ip,
            zones: self
                .zones
                .iter()
                .filter(|z| !answered(z))
                .cloned()
                .collect(),
            confirm: self.confirm.clone().filter(|_| !confirmed),
        };
        (!rest.zones.is_empty() || rest.confirm.is_some()).then_some(rest)
    }

    /// The answers of `facts` worth keeping for later messages: real answers only, never a
    /// missing answer (the next message should ask again).
    pub fn cacheable(facts: &DnsFacts) -> DnsFacts {
        DnsFacts {
            zones: facts
                .zones
                .iter()
                .filter(|answer| answer.result != ZoneResult::NoAnswer)
                .cloned()
                .collect(),
            forward: facts
                .forward
                .filter(|forward| *forward != Forward::NoAnswer),
        }
    }
}

/// `known` with the answers of `asked` added; for a zone or a forward confirmation in both, a
/// real answer beats a missing one.
pub fn merge_facts(known: &DnsFacts, asked: &DnsFacts) -> DnsFacts {
    let mut merged = known.clone();
    for answer in &asked.zones {
        match merged
            .zones
            .iter_mut()
            .find(|a| a.zone.eq_ignore_ascii_case(&answer.zone))
        {
            Some(old) if old.result == ZoneResult::NoAnswer => old.result = answer.result,
            Some(_) => {}
            None => merged.zones.push(ZoneAnswer::clone(answer)),
        }
    }
    merged.forward = match (known.forward, asked.forward) {
        (None | Some(Forward::NoAnswer), Some(asked)) => Some(asked),
        (known, _) => known,
    };
    merged
}

/// What DNS must be asked about `message`'s client, given the configuration: `policies` are the
/// recipients' policies, in the order of `message.recipients`. `None` when the white and black
/// lists (steps 1–4) decide every recipient, or when there is nothing to ask (no zones and no
/// name to confirm). DNSWL zones are asked in both modes; DNSBL zones only in suspicious mode
/// and only when the name does not already make the client suspicious; the unconfirmed name is
/// forward-confirmed in suspicious mode.
pub fn plan_dns_with(
    settings: &Settings,
    lists: &CompiledLists,
    policies: &[RecipientPolicy],
    message: &Message,
) -> Option<DnsPlan> {
    let ip = message.client_ip?;
    let suspicious = settings.greylist_clients == GreylistClients::Suspicious;
    let name = message.client_name.as_deref().map(names::host_for_matching);
    let name = name.as_deref();
    let unconfirmed = message.client_name_unconfirmed;
    // A name worth confirming: one that would count as a name once confirmed.
    let pending =
        suspicious && unconfirmed && name_suspicion(name, ip) != Some(Suspicion::NoVerifiedName);
    let sender = names::address_for_matching(&message.sender);
    let unanswered = DnsFacts::default();
    let confirmed = DnsFacts {
        forward: Some(Forward::Confirmed),
        ..DnsFacts::default()
    };
    let by_lists = |recipient: &str, policy: &RecipientPolicy, facts: &DnsFacts| {
        let request = Request {
            client_ip: Some(ip),
            client_name: name,
            client_name_unconfirmed: unconfirmed,
            dns: facts,
            sender: &sender,
            recipient,
            authenticated: message.authenticated,
        };
        decide_by_lists(settings, lists, policy, &request)
    };
    // With a confirmation pending, the lists may decide differently once the name counts (a
    // white host pattern beats the black sender list): a recipient is settled only when they
    // decide it, and the same way whether or not the name is confirmed.
    let open = message
        .recipients
        .iter()
        .zip(policies)
        .any(|(recipient, policy)| {
            let without = by_lists(recipient, policy, &unanswered);
            without.is_none() || (pending && by_lists(recipient, policy, &confirmed) != without)
        });
    if !open {
        return None;
    }
    let mut zones: Vec<String> = Vec::new();
    let mut add = |zone: &String| {
        if !zones.iter().any(|z| z.eq_ignore_ascii_case(zone)) {
            zones.push(zone.clone());
        }
    };
    lists.dnswl_zones().iter().for_each(&mut add);
    if suspicious {
        // Pending: the name is judged as if confirmed (it may turn out fine); otherwise as is.
        let judged = if pending {
            name
        } else {
            verified_name(settings, name, unconfirmed, &unanswered)
        };
        if name_suspicion(judged, ip).is_none() {
            lists.dnsbl_zones().iter().for_each(&mut add);
        }
    }
    let confirm = name.filter(|_| pending).map(str::to_string);
    (!zones.is_empty() || confirm.is_some()).then_some(DnsPlan { ip, zones, confirm })
}

/// [`plan_dns_with`] on the configuration as `cache` holds it for `tx` (a read transaction is
/// enough; policyd passes its long-lived cache).
pub fn plan_dns(
    tx: &mut dyn Tx,
    cache: &mut ConfigCache,
    message: &Message,
) -> Result<Option<DnsPlan>, StoreError> {
    let ((settings, lists), recipients) = cache.refresh(tx)?;
    if message.client_ip.is_none() {
        return Ok(None);
    }
    let mut policies = Vec::with_capacity(message.recipients.len());
    for recipient in &message.recipients {
        let lower = recipient_key(recipient);
        policies.push(recipient_policy(tx, settings, recipients, &lower)?.clone());
    }
    Ok(plan_dns_with(settings, lists, &policies, message))
}

/// What DNS (and the store's cache of its answers) told about a message's client.
pub(super) type Asked = DnsFacts;

/// The answers the store's cache holds for `plan` (unexpired ones only).
pub(super) fn cached_facts(
    tx: &mut dyn Tx,
    plan: &DnsPlan,
    now: i64,
) -> Result<DnsFacts, StoreError> {
    let zones = tx.dns_cache_get(plan.ip, &plan.zones, now)?;
    let forward = match &plan.confirm {
        Some(name) => tx.forward_cache_get(plan.ip, name, now)?,
        None => None,
    };
    Ok(DnsFacts { zones, forward })
}

/// Stores the real answers of `asked` (never a missing answer) in the cache.
pub(super) fn cache_answers(
    tx: &mut dyn Tx,
    plan_ip: IpAddr,
    confirm: Option<&str>,
    asked: &DnsFacts,
    now: i64,
) -> Result<(), StoreError> {
    let keep = DnsPlan::cacheable(asked);
    if !keep.zones.is_empty() {
        tx.dns_cache_put(plan_ip, &keep.zones, now)?;
    }
    if let (Some(name), Some(forward)) = (confirm, keep.forward) {
        tx.forward_cache_put(plan_ip, name, forward, now)?;
    }
    Ok(())
}

/// Decides a message with DNS. One write transaction reads the configuration, plans what DNS
/// to ask and reads the cached answers; when nothing is left to ask (the configuration needs no
/// DNS, the lists decide, or the cache answers everything) it decides and records the triplets
/// right there, so the common case costs one transaction. Otherwise that transaction ends
/// with nothing written, the missing answers are asked with no transaction open, and a second
/// write transaction decides with them and caches the new answers (it reads the configuration
/// again: answers for zones removed meanwhile are ignored). The message's own `dns` facts are
/// kept. Also returns what was asked live (to log the zones that did not answer).
pub fn check_message_dns(
    store: &mut dyn Store,
    component: Component,
    message: &Message,
    now: i64,
    dns: &dyn DnsSource,
) -> Result<(MessageOutcome, Asked), StoreError> {
    // The daemons' batch step, with a batch of one: it plans, reads the cache, and decides when
    // nothing is left to ask; otherwise it writes nothing and says what to ask.
    match decide_in_one(store, component, message, now)? {
        Checked::Decided(outcome) => Ok((outcome, DnsFacts::default())),
        Checked::NeedsDns { ask, known } => {
            let mut message = message.clone();
            message.dns = known;
            decide_with_plan(store, component, &message, now, dns, Some(&ask))
        }
    }
}

/// One write transaction of [`check_messages_with_dns`] for `message` alone.
fn decide_in_one(
    store: &mut dyn Store,
    component: Component,
    message: &Message,
    now: i64,
) -> Result<Checked, StoreError> {
    store.write_with(|tx| {
        let mut cache = ConfigCache::single_transaction();
        let checked = check_messages_with_dns(tx, &mut cache, component, &[(message, now)])?;
        Ok(checked
            .into_iter()
            .next()
            .unwrap_or(Checked::Decided(MessageOutcome {
                verdict: combine([]),
                recipients: Vec::new(),
            })))
    })
}

/// The rest of [`check_message_dns`] once the plan is known and the cached answers are in
/// `message.dns`: asks what is missing (no transaction is open here), then decides and caches
/// the new answers in the write transaction, as a daemon's batch does with a message that
/// comes back from DNS (`dns_asked` set: not planned again).
fn decide_with_plan(
    store: &mut dyn Store,
    component: Component,
    message: &Message,
    now: i64,
    dns: &dyn DnsSource,
    plan: Option<&DnsPlan>,
) -> Result<(MessageOutcome, Asked), StoreError> {
    let mut message = message.clone();
    let rest = plan.and_then(|plan| plan.remaining(&message.dns));
    let asked = match &rest {
        Some(rest) => dns.ask(&rest.question()),
        None => DnsFacts::default(),
    };
    message.dns = merge_facts(&message.dns, &asked);
    // What was asked now is what the deciding transaction caches (nothing when nothing was).
    message.dns_asked = plan.map(|plan| {
        rest.clone().unwrap_or(DnsPlan {
            ip: plan.ip,
            zones: Vec::new(),
            confirm: None,
        })
    });
    match decide_in_one(store, component, &message, now)? {
        Checked::Decided(outcome) => Ok((outcome, asked)),
        // Only a message without a plan can be planned again (a zone added meanwhile); it is
        // decided without that zone's answer rather than asked twice.
        Checked::NeedsDns { .. } => {
            let outcome = store.write_with(|tx| {
                let mut outcomes = check_messages_cached(
                    tx,
                    &mut ConfigCache::single_transaction(),
                    component,
                    &[(&message, now)],
                )?;
                Ok(outcomes.pop())
            })?;
            Ok((
                outcome.unwrap_or(MessageOutcome {
                    verdict: combine([]),
                    recipients: Vec::new(),
                }),
                asked,
            ))
        }
    }
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;
