//! Runs the pure decision of [`crate::decision`] against a store: reads what it needs, decides
//! every recipient and writes the triplets back, all in one write transaction.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;

use crate::bounds;
use crate::config::Settings;
use crate::decision::{
    ClientKey, ClientState, CompiledLists, Decision, PolicyOutcome, Reason, RecipientPolicy,
    Request, Trace, Verdict, client_key, combine, decide_by_policy_traced,
    decide_by_triplet_traced, triplet_sender, verified_name,
};
use crate::dns::DnsFacts;
use crate::names;
use crate::store::{self, LogEntry, Store, StoreError, StoreExt, TripletKey, Tx};

mod dns;
mod dns_batch;
mod explain;

pub use dns::{DnsPlan, check_message_dns, merge_facts, plan_dns, plan_dns_with};
pub use dns_batch::{Checked, check_messages_with_dns};
pub use explain::{ExplainedDns, Explanation, explain, explain_with_dns};

/// Old decision-log rows pruned per message at most, so the mail path never does a long delete
/// (`grey_listing --purge` removes any backlog at once).
const LOG_PRUNE_PER_MESSAGE: u64 = 64;

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

/// Recipients whose policy (domain flag, own lists) a [`ConfigCache`] keeps at most; past it the
/// cache starts over, so a flood of distinct recipient addresses cannot grow memory unbounded.
const MAX_CACHED_RECIPIENTS: usize = 65_536;

/// The server-wide part of the configuration: settings and compiled server lists.
type ServerConfig = (Settings, CompiledLists);
/// Lower-cased recipient → its domain's flag and its own compiled lists.
type RecipientCache = HashMap<String, RecipientPolicy>;

/// What a long-running decider (the policy server) keeps from the configuration between
/// transactions: the settings, the compiled server lists and, per recipient seen, its domain's
/// flag and its own compiled lists. Everything is tied to the store's configuration stamp
/// ([`Tx::config_stamp`]), read at the start of every transaction: when another process (the
/// CLI) has committed any configuration change, the stamp differs and everything is read again,
/// so the change applies to the very next request. A backend without a stamp gets no caching.
#[derive(Debug)]
pub struct ConfigCache {
    /// Whether to keep anything past one transaction (false: read everything every time).
    keep: bool,
    /// The stamp the contents below belong to.
    stamp: Option<i64>,
    /// Settings and compiled server lists, once read.
    server: Option<ServerConfig>,
    /// Lower-cased recipient → its domain flag and own lists, compiled.
    recipients: RecipientCache,
    /// How many times the configuration was (re)read; for tests and diagnostics.
    loads: u64,
}

impl Default for ConfigCache {
    fn default() -> ConfigCache {
        ConfigCache::new()
    }
}

impl ConfigCache {
    /// An empty cache that keeps the configuration between transactions while the store's
    /// stamp stays the same.
    pub fn new() -> ConfigCache {
        ConfigCache {
            keep: true,
            stamp: None,
            server: None,
            recipients: HashMap::new(),
            loads: 0,
        }
    }

    /// A cache for one transaction only: no stamp is read, nothing is reused.
    fn single_transaction() -> ConfigCache {
        ConfigCache {
            keep: false,
            ..ConfigCache::new()
        }
    }

    /// How many times the settings and server lists were read from the store.
    pub fn loads(&self) -> u64 {
        self.loads
    }

    /// Forgets everything (the store was reopened, for instance).
    pub fn clear(&mut self) {
        self.stamp = None;
        self.server = None;
        self.recipients.clear();
    }

    /// Makes the cache valid for the transaction `tx`: keeps its contents when the stamp is the
    /// one they were read under, otherwise reads the settings and server lists again. Returns
    /// the settings with the compiled server lists, and the per-recipient part.
    fn refresh(
        &mut self,
        tx: &mut dyn Tx,
    ) -> Result<(&ServerConfig, &mut RecipientCache), StoreError> {
        let stamp = if self.keep { tx.config_stamp()? } else { None };
        if stamp.is_none() || stamp != self.stamp {
            self.clear();
            self.stamp = stamp;
        }
        let server = match &mut self.server {
            Some(server) => server,
            empty @ None => {
                let settings = tx.settings()?;
                let lists = CompiledLists::new(&store::server_lists(tx)?);
                self.loads += 1;
                empty.insert((settings, lists))
            }
        };
        Ok((server, &mut self.recipients))
    }
}

/// [`check_messages_in_tx`] with a configuration cache kept by the caller across transactions:
/// the configuration is read only when the store's stamp says it changed, so a request costs
/// the triplet statements alone. Same decisions as [`check_messages_in_tx`].
/// `component` names who decides, for the store's decision counters (counted in the same
/// transaction, once per action and reason).
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
fn decide_loaded(
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

/// The recipient's policy (its domain's flag, its own lists) from `recipients`, read from the
/// store inside `tx` on first sight.
fn recipient_policy<'c>(
    tx: &mut dyn Tx,
    settings: &Settings,
    recipients: &'c mut RecipientCache,
    recipient_lower: &str,
) -> Result<&'c RecipientPolicy, StoreError> {
    if recipients.len() >= MAX_CACHED_RECIPIENTS && !recipients.contains_key(recipient_lower) {
        recipients.clear();
    }
    match recipients.entry(recipient_lower.to_string()) {
        Entry::Occupied(known) => Ok(known.into_mut()),
        Entry::Vacant(unknown) => {
            let domain = recipient_lower.rsplit_once('@').map_or("", |(_, d)| d);
            let domain_enabled = if settings.enabled {
                tx.domain_status(domain)?
            } else {
                None
            };
            let mailbox = if settings.personal_conf {
                store::mailbox_lists(tx, recipient_lower)?
            } else {
                Default::default()
            };
            Ok(unknown.insert(RecipientPolicy::new(domain_enabled, &mailbox)))
        }
    }
}

fn decide_recipients(
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

/// The recipient as the triplets and the cache key it: normalised, lower-cased and bounded
/// before anything is looked up, cached or stored (an over-long recipient is no mailbox — an
/// address has at most 320 bytes — and must not grow the cache or the store).
fn recipient_key(recipient: &str) -> String {
    bounds::bound(&names::address_for_matching(recipient).to_lowercase()).into_owned()
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
mod tests {
    use super::*;
    use crate::config::ListKind;
    use crate::decision::Reason;
    use crate::store::SqliteStore;

    fn message(ip: &str, recipient: &str) -> Message {
        Message {
            client_ip: ip.parse().ok(),
            client_name: None,
            sender: "a@sender.example".to_string(),
            recipients: vec![recipient.to_string()],
            authenticated: false,
            ..Message::default()
        }
    }

    fn decide_cached(store: &mut SqliteStore, cache: &mut ConfigCache, m: &Message) -> Reason {
        let mut outcomes = Vec::new();
        store
            .write(&mut |tx| {
                outcomes = check_messages_cached(tx, cache, Component::Filter, &[(m, 1000)])?;
                Ok(())
            })
            .unwrap();
        outcomes[0].recipients[0].decision.reason
    }

    // Issue 5: the configuration is read once and reused while nothing changes it; a write to
    // any configuration table by another connection (the CLI) — a domain flag, a mailbox list
    // entry, the settings — makes the very next transaction read it again (DESIGN.md §4 steps 1 and
    // 4), while triplet writes do not.
    #[test]
    fn config_cache_reloads_exactly_after_configuration_writes() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("g.db");
        let mut store = SqliteStore::open(&path).unwrap();
        let mut cli = SqliteStore::open(&path).unwrap();
        let mut cache = ConfigCache::new();
        let m = message("192.0.2.1", "u@local.example");
        assert_eq!(decide_cached(&mut store, &mut cache, &m), Reason::New);
        assert_eq!(
            decide_cached(&mut store, &mut cache, &m),
            Reason::EarlyRetry
        );
        assert_eq!(
            cache.loads(),
            1,
            "unchanged configuration is not read again"
        );

        cli.write(&mut |tx| tx.set_domain_status("local.example", false))
            .unwrap();
        assert_eq!(
            decide_cached(&mut store, &mut cache, &m),
            Reason::DomainDisabled
        );
        assert_eq!(cache.loads(), 2);
        cli.write(&mut |tx| tx.delete_domain("local.example"))
            .unwrap();
        assert_eq!(
            decide_cached(&mut store, &mut cache, &m),
            Reason::EarlyRetry
        );

        cli.write(&mut |tx| tx.add_pattern(ListKind::White, "u@local.example", "*@sender.example"))
            .unwrap();
        assert_eq!(
            decide_cached(&mut store, &mut cache, &m),
            Reason::MailboxWhite
        );
        cli.write(&mut |tx| {
            tx.delete_pattern(ListKind::White, "u@local.example", "*@sender.example")
        })
        .unwrap();
        assert_eq!(
            decide_cached(&mut store, &mut cache, &m),
            Reason::EarlyRetry
        );
        assert_eq!(cache.loads(), 5);

        cli.write(&mut |tx| {
            let mut settings = tx.settings()?;
            settings.enabled = false;
            tx.set_settings(&settings)
        })
        .unwrap();
        assert_eq!(decide_cached(&mut store, &mut cache, &m), Reason::Disabled);
        assert_eq!(cache.loads(), 6);

        // Triplet writes by another process leave the configuration stamp alone.
        let key = TripletKey {
            client: "198.51.100.0/24".to_string(),
            sender: "x@y.example".to_string(),
            recipient: "u@local.example".to_string(),
        };
        let triplet = crate::store::Triplet {
            first_seen: 1,
            earliest_accept: 2,
            last_seen: 1,
            expires: 5000,
            pass_count: 0,
        };
        cli.write(&mut |tx| tx.put_triplet(&key, "198.51.100.0/24", &triplet))
            .unwrap();
        assert_eq!(decide_cached(&mut store, &mut cache, &m), Reason::Disabled);
        assert_eq!(cache.loads(), 6);
    }

    // Issue 5 (DESIGN.md §1 store interface): the SQLite stamp stays put while only reading and takes
    // a value never seen before after every kind of configuration write — list entries added and
    // deleted, domain flags set and forgotten, settings rewritten.
    #[test]
    fn sqlite_stamp_changes_with_every_configuration_table() {
        fn stamp(store: &mut SqliteStore) -> i64 {
            let mut found = None;
            store
                .read(&mut |tx| {
                    found = tx.config_stamp()?;
                    Ok(())
                })
                .unwrap();
            found.expect("SQLite offers a configuration stamp")
        }
        type ConfigWrite = fn(&mut dyn Tx) -> Result<(), StoreError>;
        let dir = tempfile::TempDir::new().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
        let first = stamp(&mut store);
        assert_eq!(
            stamp(&mut store),
            first,
            "reading does not change the stamp"
        );
        let mut stamps = vec![first];
        let writes: [ConfigWrite; 6] = [
            |tx| tx.add_pattern(ListKind::Black, "", "*@spam.example"),
            |tx| tx.delete_pattern(ListKind::Black, "", "*@spam.example"),
            |tx| tx.set_domain_status("a.example", false),
            |tx| tx.set_domain_status("a.example", true),
            |tx| tx.delete_domain("a.example"),
            |tx| {
                let settings = tx.settings()?;
                tx.set_settings(&settings)
            },
        ];
        for write in writes {
            store.write(&mut |tx| write(tx)).unwrap();
            let now = stamp(&mut store);
            assert!(
                !stamps.contains(&now),
                "stamp {now} seen before: {stamps:?}"
            );
            stamps.push(now);
        }
    }

    // DESIGN.md §4 step 5 (auto-whitelist after `awl-count` distinct unexpired passed triplets): the
    // mail path's count stops at the threshold, is exact below it, ignores expired and
    // never-passed records, is served by the auto-whitelist index, and decides as before.
    #[test]
    fn awl_count_stops_at_the_threshold() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
        let network = "198.51.100.0/24";
        store
            .write(&mut |tx| {
                for i in 0..10 {
                    let key = TripletKey {
                        client: network.to_string(),
                        sender: format!("s{i}@x.example"),
                        recipient: "u@local.example".to_string(),
                    };
                    let triplet = crate::store::Triplet {
                        first_seen: 100,
                        earliest_accept: 400,
                        last_seen: 500,
                        // One expired record and one that never passed among ten.
                        expires: if i == 0 { 900 } else { 5000 },
                        pass_count: if i == 1 { 0 } else { 1 },
                    };
                    tx.put_triplet(&key, network, &triplet)?;
                }
                Ok(())
            })
            .unwrap();
        let mut counts = Vec::new();
        store
            .read(&mut |tx| {
                counts = vec![
                    tx.awl_passes(network, 1000)?,
                    tx.awl_passes_up_to(network, 1000, 5)?,
                    tx.awl_passes_up_to(network, 1000, 20)?,
                    tx.awl_passes_up_to("203.0.113.0/24", 1000, 5)?,
                ];
                Ok(())
            })
            .unwrap();
        assert_eq!(counts, vec![8, 5, 8, 0]);
        let plan: Vec<String> = store
            .connection()
            .prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                crate::store::sqlite::AWL_PASSES_UP_TO
            ))
            .unwrap()
            .query_map(rusqlite::params![network, 1000, 5], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("triplets_awl")),
            "plan: {plan:?}"
        );
        let neighbour = message("198.51.100.77", "v@local.example");
        let outcome = check_message(&mut store, &neighbour, 1000).unwrap();
        assert_eq!(outcome.recipients[0].decision.reason, Reason::ClientAwl);
    }

    // DESIGN.md §4 step 6 inside one group-committed transaction: a later message of the batch sees
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
