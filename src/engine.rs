//! Runs the pure decision of [`crate::decision`] against a store: reads what it needs, decides
//! every recipient and writes the triplets back, all in one write transaction.

use std::net::IpAddr;

use crate::config::Settings;
use crate::decision::{
    ClientKey, ClientState, CompiledLists, Decision, PolicyOutcome, RecipientPolicy, Request,
    Verdict, client_key, combine, decide_by_policy, decide_by_triplet, triplet_sender,
};
use crate::store::{self, LogEntry, Store, StoreError, TripletKey, Tx};

/// Old decision-log rows pruned per message at most, so the mail path never does a long delete
/// (`grey_listing --purge` removes any backlog at once).
const LOG_PRUNE_PER_MESSAGE: u64 = 64;

/// The facts about one incoming message.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Client IP address; `None` for local injection.
    pub client_ip: Option<IpAddr>,
    /// Verified client host name, if any.
    pub client_name: Option<String>,
    /// Envelope sender (empty for bounces).
    pub sender: String,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// Whether the client authenticated or is a relay client.
    pub authenticated: bool,
}

/// The decision for one recipient.
#[derive(Debug, Clone)]
pub struct RecipientOutcome {
    /// The recipient as given.
    pub recipient: String,
    /// What was decided and why.
    pub decision: Decision,
}

/// The decision for a whole message.
#[derive(Debug, Clone)]
pub struct MessageOutcome {
    /// Combined verdict (SPEC §4's multi-recipient rule).
    pub verdict: Verdict,
    /// Per recipient, in the order given.
    pub recipients: Vec<RecipientOutcome>,
}

/// Decides a message and records its triplets, atomically.
pub fn check_message(
    store: &mut dyn Store,
    message: &Message,
    now: i64,
) -> Result<MessageOutcome, StoreError> {
    let mut outcomes = Vec::new();
    store.write(&mut |tx| {
        outcomes = check_messages_in_tx(tx, &[(message, now)])?;
        Ok(())
    })?;
    Ok(outcomes.pop().unwrap_or(MessageOutcome {
        verdict: combine([]),
        recipients: Vec::new(),
    }))
}

/// Decides several messages inside a caller-provided write transaction (the policy server's
/// group commit): settings and lists are read once, at the start of the transaction, so a change
/// made with the CLI is seen by the next transaction; each message sees the triplets written for
/// the messages before it. `messages` pairs each message with its decision time.
pub fn check_messages_in_tx(
    tx: &mut dyn Tx,
    messages: &[(&Message, i64)],
) -> Result<Vec<MessageOutcome>, StoreError> {
    let settings = tx.settings()?;
    let lists = CompiledLists::new(&store::server_lists(tx)?);
    let mut results = Vec::with_capacity(messages.len());
    for (message, now) in messages {
        let outcomes = decide_recipients(tx, &settings, &lists, message, *now)?;
        let verdict = combine(outcomes.iter().map(|o| o.decision.verdict));
        results.push(MessageOutcome {
            verdict,
            recipients: outcomes,
        });
    }
    let latest = messages.iter().map(|(_, now)| *now).max();
    if let (true, Some(now)) = (settings.log_retention > 0, latest) {
        let retention = i64::try_from(settings.log_retention).unwrap_or(i64::MAX);
        tx.purge_decision_log(now.saturating_sub(retention), Some(LOG_PRUNE_PER_MESSAGE))?;
    }
    Ok(results)
}

fn decide_recipients(
    tx: &mut dyn Tx,
    settings: &Settings,
    lists: &CompiledLists,
    message: &Message,
    now: i64,
) -> Result<Vec<RecipientOutcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(message.recipients.len());
    // The client key does not depend on the recipient: computed once (SPEC §4 "Client key").
    let key = message.client_ip.map(|ip| {
        client_key(
            ip,
            message.client_name.as_deref(),
            settings,
            lists.domains_black(),
        )
    });
    for recipient in &message.recipients {
        let recipient_lower = recipient.to_lowercase();
        let domain = recipient_lower.rsplit_once('@').map_or("", |(_, d)| d);
        let domain_enabled = if settings.enabled {
            tx.domain_status(domain)?
        } else {
            None
        };
        let mailbox = if settings.personal_conf {
            store::mailbox_lists(tx, &recipient_lower)?
        } else {
            Default::default()
        };
        let policy = RecipientPolicy::new(domain_enabled, &mailbox);
        let request = Request {
            client_ip: message.client_ip,
            client_name: message.client_name.as_deref(),
            sender: &message.sender,
            recipient,
            authenticated: message.authenticated,
        };
        let decision = match decide_by_policy(settings, lists, &policy, &request) {
            PolicyOutcome::Decided(decision) => decision,
            PolicyOutcome::Greylist(ip) => {
                let client = key.clone().unwrap_or_else(|| {
                    client_key(ip, request.client_name, settings, lists.domains_black())
                });
                let network = client.network;
                let triplet_key = TripletKey {
                    client: client.key,
                    sender: triplet_sender(&message.sender, settings.sender_normalize),
                    recipient: recipient_lower.clone(),
                };
                let state = ClientState {
                    awl_passes: if settings.awl_count > 0 {
                        tx.awl_passes(&network, now)?
                    } else {
                        0
                    },
                    triplet: tx.triplet(&triplet_key)?,
                };
                let decision = decide_by_triplet(settings, &state, now);
                if let Some(write) = &decision.write {
                    tx.put_triplet(&triplet_key, &network, write)?;
                }
                decision
            }
        };
        if settings.log_retention > 0 {
            tx.log_decision(&log_entry(message, recipient, key.as_ref(), &decision, now))?;
        }
        outcomes.push(RecipientOutcome {
            recipient: recipient.clone(),
            decision,
        });
    }
    Ok(outcomes)
}

/// The decision-log row for one recipient's decision.
fn log_entry(
    message: &Message,
    recipient: &str,
    key: Option<&ClientKey>,
    decision: &Decision,
    now: i64,
) -> LogEntry {
    let keyed = decision.write.is_some();
    LogEntry {
        time: now,
        client_network: key.map(|k| k.network.clone()).unwrap_or_default(),
        client_key: key
            .filter(|_| keyed)
            .map(|k| k.key.clone())
            .unwrap_or_default(),
        organisation: key.and_then(|k| k.organisation.clone()).unwrap_or_default(),
        client_address: message
            .client_ip
            .map(|ip| ip.to_string())
            .unwrap_or_default(),
        client_name: message.client_name.clone().unwrap_or_default(),
        sender: message.sender.clone(),
        recipient: recipient.to_string(),
        verdict: decision.verdict.as_str().to_string(),
        reason: decision.reason.as_str().to_string(),
        pattern: decision.pattern.clone(),
        delay: decision.delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Reason;
    use crate::store::SqliteStore;

    fn message(ip: &str, recipient: &str) -> Message {
        Message {
            client_ip: ip.parse().ok(),
            client_name: None,
            sender: "a@sender.example".to_string(),
            recipients: vec![recipient.to_string()],
            authenticated: false,
        }
    }

    // SPEC §4 step 6 inside one group-committed transaction: a later message of the batch sees
    // the triplet an earlier one wrote (new, then early-retry; then a pass after the interval).
    #[test]
    fn batch_sees_its_own_writes_in_order() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
        let first = message("192.0.2.1", "u@local.example");
        let neighbour = message("192.0.2.77", "u@local.example");
        let other = message("192.0.2.1", "v@local.example");
        let mut outcomes = Vec::new();
        store
            .write(&mut |tx| {
                outcomes = check_messages_in_tx(
                    tx,
                    &[
                        (&first, 1000),
                        (&neighbour, 1010),
                        (&other, 1020),
                        (&first, 1400),
                    ],
                )?;
                Ok(())
            })
            .unwrap();
        let reasons: Vec<Reason> = outcomes
            .iter()
            .map(|o| o.recipients[0].decision.reason)
            .collect();
        assert_eq!(
            reasons,
            vec![
                Reason::New,
                Reason::EarlyRetry,
                Reason::New,
                Reason::TripletFound
            ]
        );
        assert_eq!(outcomes[3].verdict, Verdict::Pass);
        assert_eq!(outcomes[3].recipients[0].decision.delay, Some(400));
        // Committed: a later transaction sees the passed triplet.
        let again = check_message(&mut store, &first, 1500).unwrap();
        assert_eq!(again.recipients[0].decision.reason, Reason::TripletFound);
        assert_eq!(again.recipients[0].decision.delay, None);
    }
}
