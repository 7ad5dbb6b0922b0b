//! The configuration a long-running decider keeps between transactions, tied to the store's
//! configuration stamp, and the recipient policies read through it.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use crate::bounds;
use crate::config::Settings;
use crate::decision::{CompiledLists, RecipientPolicy};
use crate::names;
use crate::store::{self, StoreError, Tx};

/// Recipients whose policy (domain flag, own lists) a [`ConfigCache`] keeps at most; past it the
/// cache starts over, so a flood of distinct recipient addresses cannot grow memory unbounded.
const MAX_CACHED_RECIPIENTS: usize = 65_536;

/// The server-wide part of the configuration: settings and compiled server lists.
type ServerConfig = (Settings, CompiledLists);
/// Lower-cased recipient → its domain's flag and its own compiled lists.
pub(super) type RecipientCache = HashMap<String, RecipientPolicy>;

/// What a long-running decider (the policy server) keeps from the configuration between
/// transactions: the settings, the compiled server lists and, per recipient seen, its domain's
/// flag and its own compiled lists. Everything is tied to the store's configuration stamp
/// ([`store::ConfigTx::config_stamp`]), read at the start of every transaction: when another
/// process (the CLI) has committed any configuration change, the stamp differs and everything is
/// read again, so the change applies to the very next request. A backend without a stamp gets
/// no caching.
#[derive(Debug)]
pub struct ConfigCache {
    /// Whether to keep anything past one transaction (false: read everything every time).
    pub(super) keep: bool,
    /// The stamp the contents below belong to.
    pub(super) stamp: Option<i64>,
    /// Settings and compiled server lists, once read.
    pub(super) server: Option<ServerConfig>,
    /// Lower-cased recipient → its domain flag and own lists, compiled.
    pub(super) recipients: RecipientCache,
    /// How many times the configuration was (re)read; for tests and diagnostics.
    pub(super) loads: u64,
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

    /// A cache for one transaction only: no stamp is read and nothing outlives the
    /// transaction, but within it the configuration is read once (planning DNS and deciding
    /// share it).
    pub(super) fn single_transaction() -> ConfigCache {
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
    pub(super) fn refresh(
        &mut self,
        tx: &mut dyn Tx,
    ) -> Result<(&ServerConfig, &mut RecipientCache), StoreError> {
        // A one-transaction cache is dropped with its transaction: what it read is still
        // the transaction's view.
        if self.keep {
            let stamp = tx.config_stamp()?;
            if stamp.is_none() || stamp != self.stamp {
                self.clear();
                self.stamp = stamp;
            }
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

/// The recipient's policy (its domain's flag, its own lists) from `recipients`, read from the
/// store inside `tx` on first sight.
pub(super) fn recipient_policy<'c>(
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

/// The recipient as the triplets and the cache key it: normalised, lower-cased and bounded
/// before anything is looked up, cached or stored (an over-long recipient is no mailbox — an
/// address has at most 320 bytes — and must not grow the cache or the store).
pub(super) fn recipient_key(recipient: &str) -> String {
    bounds::bound(&names::address_for_matching(recipient).to_lowercase()).into_owned()
}
