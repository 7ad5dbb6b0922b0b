//! The decision for one recipient, explained: the mail path's own walk ([`super::Walk`]) run
//! read-only with the trace on, plus what the store holds about the client and the triplet.

use super::{ConfigCache, Message, Mode, Walk, recipient_key, recipient_policy};
use crate::decision::{ClientKey, Decision, Trace};
use crate::store::{StoreError, Triplet, TripletKey, Tx};

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
