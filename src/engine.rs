//! Runs the pure decision of [`crate::decision`] against a store: reads what it needs, decides
//! every recipient and writes the triplets back, all in one write transaction.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::bounds;
use crate::config::Settings;
use crate::decision::{
    ClientKey, ClientState, CompiledLists, Decision, PolicyOutcome, RecipientPolicy, Request,
    Trace, Verdict, client_key, combine, decide_by_policy_traced, decide_by_triplet_traced,
    triplet_sender, verified_name,
};
use crate::dns::DnsFacts;
use crate::names;
use crate::store::{LogEntry, Store, StoreError, StoreExt, TripletKey, Tx};

mod batch;
mod cache;
mod dns;
mod dns_batch;
mod explain;

use batch::decide_loaded;
use cache::{RecipientCache, recipient_key, recipient_policy};

pub use batch::check_messages_cached;
pub use cache::ConfigCache;
pub use dns::{DnsPlan, check_message_dns, merge_facts, plan_dns, plan_dns_with};
pub use dns_batch::{Checked, check_messages_with_dns};
pub use explain::{ExplainedDns, Explanation, explain, explain_with_dns};

/// The facts about one incoming message.
#[derive(Debug, Clone, Default)]
pub struct Message {
    /// Client IP address; `None` for local injection.
    pub client_ip: Option<IpAddr>,
    /// Client host name, if any: verified unless `client_name_unconfirmed`.
    pub client_name: Option<String>,
    /// Whether nobody verified `client_name` (the filter's name from a qmail-form `Received:`
    /// header): with `greylist-clients suspicious` it counts only once `dns.forward` confirms it.
    pub client_name_unconfirmed: bool,
    /// Envelope sender (empty for bounces).
    pub sender: String,
    /// Envelope recipients.
    pub recipients: Vec<String>,
    /// Whether the client authenticated or is a relay client.
    pub authenticated: bool,
    /// What DNS said about the client, fetched before the write transaction ([`plan_dns`]);
    /// empty: nothing listed, no name confirmed.
    pub dns: DnsFacts,
    /// Set by a daemon once it asked DNS for this message (the answers are in `dns`): the batch
    /// decides it without planning again and caches the answers of this plan.
    pub dns_asked: Option<DnsPlan>,
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
    /// Combined verdict (DESIGN.md §4's multi-recipient rule).
    pub verdict: Verdict,
    /// Per recipient, in the order given.
    pub recipients: Vec<RecipientOutcome>,
}

/// Which program decided: the store's decision counters are kept per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// `greylisting-filter` (and the CLI's own checks).
    Filter,
    /// `greylisting-policyd`.
    Policyd,
    /// `greylisting-milter`.
    Milter,
}

impl Component {
    /// The name the counters carry.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Filter => "filter",
            Component::Policyd => "policyd",
            Component::Milter => "milter",
        }
    }
}

/// Decides a message for the filter and records its triplets, atomically.
pub fn check_message(
    store: &mut dyn Store,
    message: &Message,
    now: i64,
) -> Result<MessageOutcome, StoreError> {
    check_message_for(store, Component::Filter, message, now)
}

/// [`check_message`] for any component (counted as that component's decisions).
pub fn check_message_for(
    store: &mut dyn Store,
    component: Component,
    message: &Message,
    now: i64,
) -> Result<MessageOutcome, StoreError> {
    let mut outcomes = store.write_with(|tx| {
        check_messages_cached(
            tx,
            &mut ConfigCache::single_transaction(),
            component,
            &[(message, now)],
        )
    })?;
    Ok(outcomes.pop().unwrap_or(MessageOutcome {
        verdict: combine([]),
        recipients: Vec::new(),
    }))
}

/// Decides several messages inside a caller-provided write transaction: settings and lists are
/// read once, at the start of the transaction, so a change made with the CLI is seen by the
/// next transaction; each message sees the triplets written for the messages before it.
/// `messages` pairs each message with its decision time. Nothing is kept for later
/// transactions; the policy server uses [`check_messages_cached`] instead.
pub fn check_messages_in_tx(
    tx: &mut dyn Tx,
    messages: &[(&Message, i64)],
) -> Result<Vec<MessageOutcome>, StoreError> {
    check_messages_cached(
        tx,
        &mut ConfigCache::single_transaction(),
        Component::Filter,
        messages,
    )
}

/// Whether a walk decides mail or only explains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The mail path: triplets are written, the auto-whitelist count may stop at its threshold.
    Mail,
    /// `--explain`: nothing is written and the auto-whitelist count is exact.
    Explain,
}

/// One message's walk through the rules: what every recipient's decision shares, computed once
/// per message.
struct Walk<'m> {
    settings: &'m Settings,
    lists: &'m CompiledLists,
    message: &'m Message,
    now: i64,
    mode: Mode,
    /// The client name in A-label form, as the CLI stores names (never failing: a name that
    /// cannot be converted is used lower-cased).
    client_name: Option<Cow<'m, str>>,
    /// The sender as matched.
    sender: Cow<'m, str>,
    /// The client key ([`client_key`]); it does not depend on the recipient.
    key: Option<ClientKey>,
    /// The sender as the triplets store it (a bounded sender costs a hash of the whole value).
    sender_key: String,
}

impl<'m> Walk<'m> {
    fn new(
        settings: &'m Settings,
        lists: &'m CompiledLists,
        message: &'m Message,
        now: i64,
        mode: Mode,
    ) -> Walk<'m> {
        let client_name = message.client_name.as_deref().map(names::host_for_matching);
        let sender = names::address_for_matching(&message.sender);
        // Keyed by the name the rules may use: an unconfirmed name is no name in suspicious mode.
        let key_name = verified_name(
            settings,
            client_name.as_deref(),
            message.client_name_unconfirmed,
            &message.dns,
        );
        let key = message
            .client_ip
            .map(|ip| client_key(ip, key_name, settings, lists.domains_black()));
        let sender_key =
            bounds::bound(&triplet_sender(&sender, settings.sender_normalize)).into_owned();
        Walk {
            settings,
            lists,
            message,
            now,
            mode,
            client_name,
            sender,
            key,
            sender_key,
        }
    }

    /// The triplet key of this message for one recipient (already [`recipient_key`]ed).
    fn triplet_key(&self, client: &ClientKey, recipient_lower: &str) -> TripletKey {
        TripletKey {
            client: client.key.clone(),
            sender: self.sender_key.clone(),
            recipient: recipient_lower.to_string(),
        }
    }

    /// Decides one recipient: the policy rules, then (when none decided) the triplet, read and
    /// in [`Mode::Mail`] written back. Each check is recorded in `trace`.
    fn decide(
        &self,
        tx: &mut dyn Tx,
        policy: &RecipientPolicy,
        recipient: &str,
        recipient_lower: &str,
        trace: &mut Trace,
    ) -> Result<Decision, StoreError> {
        let (settings, now) = (self.settings, self.now);
        let request = Request {
            client_ip: self.message.client_ip,
            client_name: self.client_name.as_deref(),
            sender: &self.sender,
            recipient,
            authenticated: self.message.authenticated,
            client_name_unconfirmed: self.message.client_name_unconfirmed,
            dns: &self.message.dns,
        };
        let ip = match decide_by_policy_traced(settings, self.lists, policy, &request, trace) {
            PolicyOutcome::Decided(decision) => return Ok(decision),
            PolicyOutcome::Greylist(ip) => ip,
        };
        let client = self.key.clone().unwrap_or_else(|| {
            client_key(
                ip,
                request.verified_name(settings),
                settings,
                self.lists.domains_black(),
            )
        });
        let triplet_key = self.triplet_key(&client, recipient_lower);
        let network = client.network;
        let awl_passes = match (settings.awl_count, self.mode) {
            (0, _) => 0,
            // Only compared with the threshold: counting may stop there.
            (count, Mode::Mail) => tx.awl_passes_up_to(&network, now, u64::from(count))?,
            (_, Mode::Explain) => tx.awl_passes(&network, now)?,
        };
        let state = ClientState {
            awl_passes,
            triplet: tx.triplet(&triplet_key)?,
        };
        let decision = decide_by_triplet_traced(settings, &state, now, trace);
        if let (Mode::Mail, Some(write)) = (self.mode, &decision.write) {
            tx.put_triplet(&triplet_key, &network, write)?;
        }
        Ok(decision)
    }
}

/// What a decision-log row says about the message: the sender already bounded.
struct LoggedFacts<'a> {
    message: &'a Message,
    sender: &'a str,
    recipient: &'a str,
}

/// The decision-log row for one recipient's decision.
fn log_entry(
    facts: &LoggedFacts<'_>,
    key: Option<&ClientKey>,
    decision: &Decision,
    now: i64,
) -> LogEntry {
    let keyed = decision.write.is_some();
    let message = facts.message;
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
        client_name: message
            .client_name
            .as_deref()
            .map_or_else(String::new, |name| bounds::bound(name).into_owned()),
        sender: facts.sender.to_string(),
        recipient: bounds::bound(facts.recipient).into_owned(),
        verdict: decision.verdict.as_str().to_string(),
        reason: decision.reason.as_str().to_string(),
        pattern: decision.pattern.clone(),
        delay: decision.delay,
    }
}

#[cfg(test)]
mod tests;
