//! The decision for one recipient, explained: the mail path's own walk ([`super::Walk`]) run
//! read-only with the trace on, plus what the store holds about the client and the triplet.

use super::dns::{DnsPlan, cached_facts, merge_facts, plan_dns};
use super::{ConfigCache, Message, Mode, Walk, recipient_key, recipient_policy};
use crate::decision::{ClientKey, Decision, Trace};
use crate::dns::{DnsFacts, DnsSource};
use crate::store::{Store, StoreError, StoreExt, Triplet, TripletKey, Tx};

/// How the decision for one recipient was reached, and what the store holds about it.
#[derive(Debug, Clone)]
pub struct Explanation {
    /// The decision the mail path would take now.
    pub decision: Decision,
    /// Each check of the walk, up to the one that decided.
    pub trace: Trace,
    /// The client key (`None` only without a client address).
    pub client: Option<ClientKey>,
    /// The triplet key for this recipient (`None` only without a client address).
    pub triplet_key: Option<TripletKey>,
    /// The triplet as stored, expired or not.
    pub triplet: Option<Triplet>,
    /// Distinct unexpired triplets the client network has passed, counted exactly.
    pub awl_passes: u64,
}

/// Explains the decision for `recipient` of `message` at `now` inside `tx`, writing nothing:
/// the same rules, reads and normalisation as the mail path.
pub fn explain(
    tx: &mut dyn Tx,
    message: &Message,
    recipient: &str,
    now: i64,
) -> Result<Explanation, StoreError> {
    let mut cache = ConfigCache::single_transaction();
    let ((settings, lists), recipients) = cache.refresh(tx)?;
    let walk = Walk::new(settings, lists, message, now, Mode::Explain);
    let recipient_lower = recipient_key(recipient);
    let policy = recipient_policy(tx, settings, recipients, &recipient_lower)?;
    let mut trace = Trace::on();
    let decision = walk.decide(tx, policy, recipient, &recipient_lower, &mut trace)?;
    let triplet_key = walk
        .key
        .as_ref()
        .map(|client| walk.triplet_key(client, &recipient_lower));
    let triplet = match &triplet_key {
        Some(key) => tx.triplet(key)?,
        None => None,
    };
    let awl_passes = match &walk.key {
        Some(client) => tx.awl_passes(&client.network, now)?,
        None => 0,
    };
    Ok(Explanation {
        decision,
        trace,
        client: walk.key.clone(),
        triplet_key,
        triplet,
        awl_passes,
    })
}

/// Where the DNS answers of an explanation came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExplainedDns {
    /// What the mail path would ask DNS (`None`: the lists decide, or nothing to ask).
    pub plan: Option<DnsPlan>,
    /// The answers the store's cache held (unexpired ones).
    pub cached: DnsFacts,
    /// The answers asked live for what the cache did not hold (never stored).
    pub live: DnsFacts,
}

/// [`explain`] with the DNS answers the mail path would use: the cached ones, read in a first
/// read transaction, and the missing ones asked from `dns` with no transaction open — and not
/// stored, so explaining changes nothing — then the walk in a second read transaction.
pub fn explain_with_dns(
    store: &mut dyn Store,
    message: &Message,
    recipient: &str,
    now: i64,
    dns: &dyn DnsSource,
) -> Result<(Option<Explanation>, ExplainedDns), StoreError> {
    let mut seen = store.read_with(|tx| {
        let mut seen = ExplainedDns {
            plan: plan_dns(tx, &mut ConfigCache::single_transaction(), message)?,
            ..ExplainedDns::default()
        };
        if let Some(plan) = &seen.plan {
            seen.cached = cached_facts(tx, plan, now)?;
        }
        Ok(seen)
    })?;
    if let Some(rest) = seen.plan.as_ref().and_then(|p| p.remaining(&seen.cached)) {
        seen.live = dns.ask(&rest.question());
    }
    let mut message = message.clone();
    message.dns = merge_facts(&merge_facts(&message.dns, &seen.cached), &seen.live);
    let explained = store.read_with(|tx| explain(tx, &message, recipient, now))?;
    Ok((Some(explained), seen))
}
