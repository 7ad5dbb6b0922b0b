//! The per-organisation summary of the decision log: what `--report` gathers about each sender
//! organisation while the rows go by, in one pass.

use std::collections::{HashMap, HashSet};

use foldhash::fast::RandomState;
use serde::Serialize;

use crate::bounds;
use crate::config::{ListKind, ServerLists, Settings};
use crate::decision::triplet_sender;
use crate::pattern::{Pattern, first_match};
use crate::store::LogEntry;

/// What the decision log says about one sender organisation.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct OrganisationSummary {
    /// Registrable domain of its host names, or the client network when it has none.
    pub organisation: String,
    /// Whether `organisation` is a domain (white patterns can be suggested) or a network.
    pub is_domain: bool,
    /// Deferrals recorded.
    pub deferrals: u64,
    /// Distinct client addresses among the deferrals.
    pub client_addresses: u64,
    /// Distinct (sender, recipient) pairs deferred and accepted later in the period.
    pub later_accepted: u64,
    /// Distinct (sender, recipient) pairs deferred.
    pub deferred_pairs: u64,
    /// Median of the first-pass delays, in seconds.
    pub median_delay: Option<i64>,
    /// The white domains pattern that already covers one of its host names.
    pub white_pattern: Option<String>,
}

/// What is gathered about one organisation while the rows go by.
///
/// Hash maps and sets, not ordered ones: a report over a week of a busy server reads millions of
/// rows, and comparing string keys in B-trees was most of its time. Nothing depends on their
/// order (hosts are sorted before use, the result is sorted). Hashed with foldhash rather than
/// the standard SipHash, which was a quarter of the report's time: its per-process random seed
/// still keeps senders from choosing colliding keys.
#[derive(Default)]
struct Acc {
    is_domain: bool,
    deferrals: u64,
    addresses: HashSet<String, RandomState>,
    /// Deferred pair -> time of its first deferral.
    deferred: HashMap<(String, String), i64, RandomState>,
    accepted: HashSet<(String, String), RandomState>,
    delays: Vec<i64>,
    hosts: HashSet<String, RandomState>,
    /// The host name of the group's previous row.
    last_host: String,
}

/// Groups decision-log rows by sender organisation, one row at a time and oldest first (a pair
/// counts as accepted later when a pass follows its deferral).
pub(crate) struct Summariser {
    sender_normalize: bool,
    /// Organisation -> index in `accs`: one hash lookup per row, the index copied out so the
    /// group can be borrowed mutably after it.
    groups: HashMap<String, usize, RandomState>,
    accs: Vec<Acc>,
}

impl Summariser {
    /// An empty grouping; `settings` says how senders are normalised into pairs.
    pub(crate) fn new(settings: &Settings) -> Summariser {
        Summariser {
            sender_normalize: settings.sender_normalize,
            groups: HashMap::default(),
            accs: Vec::new(),
        }
    }

    /// Adds one row.
    pub(crate) fn add(&mut self, entry: &LogEntry) {
        let (name, is_domain) = if !entry.organisation.is_empty() {
            (&entry.organisation, true)
        } else if !entry.client_network.is_empty() {
            (&entry.client_network, false)
        } else {
            return;
        };
        let index = match self.groups.get(name) {
            Some(&index) => index,
            None => {
                self.groups.insert(name.clone(), self.accs.len());
                self.accs.push(Acc::default());
                self.accs.len() - 1
            }
        };
        let Some(acc) = self.accs.get_mut(index) else {
            return;
        };
        acc.is_domain = is_domain;
        if !entry.client_name.is_empty()
            && entry.client_name != acc.last_host
            && !acc.hosts.contains(&entry.client_name)
            && bounds::host_matchable(&entry.client_name)
        {
            acc.hosts.insert(entry.client_name.to_ascii_lowercase());
        }
        // A sender's rows mostly repeat its host name: compare before hashing.
        if entry.client_name != acc.last_host {
            acc.last_host.clone_from(&entry.client_name);
        }
        let pair = || {
            (
                triplet_sender(&entry.sender, self.sender_normalize),
                entry.recipient.to_lowercase(),
            )
        };
        match entry.verdict.as_str() {
            "defer" => {
                acc.deferrals += 1;
                if !acc.addresses.contains(&entry.client_address) {
                    acc.addresses.insert(entry.client_address.clone());
                }
                acc.deferred.entry(pair()).or_insert(entry.time);
            }
            "pass" => {
                if let Some(delay) = entry.delay {
                    acc.delays.push(delay);
                }
                // Nothing deferred yet: no pair to look up (most passes of a quiet sender).
                if !acc.deferred.is_empty() {
                    let pair = pair();
                    if acc.deferred.contains_key(&pair) {
                        acc.accepted.insert(pair);
                    }
                }
            }
            _ => {}
        }
    }

    /// Organisations with deferrals only, most deferred first, with the white pattern in
    /// `lists` that already covers one of their host names.
    pub(crate) fn finish(self, lists: &ServerLists) -> Vec<OrganisationSummary> {
        let white: Vec<Pattern> = lists
            .domains_white
            .iter()
            .map(|p| ListKind::DomainsWhite.compile(p))
            .collect();
        let mut accs: Vec<Option<Acc>> = self.accs.into_iter().map(Some).collect();
        let mut summaries: Vec<OrganisationSummary> = self
            .groups
            .into_iter()
            .filter_map(|(organisation, index)| Some((organisation, accs.get_mut(index)?.take()?)))
            .filter(|(_, acc)| acc.deferrals > 0)
            .map(|(organisation, mut acc)| {
                acc.delays.sort_unstable();
                let median_delay = median(&acc.delays);
                let probe = format!("mail.{organisation}");
                let mut hosts: Vec<&String> = acc.hosts.iter().collect();
                hosts.sort_unstable();
                let white_pattern = hosts
                    .into_iter()
                    .map(String::as_str)
                    .chain(acc.is_domain.then_some(probe.as_str()))
                    .find_map(|host| first_match(&white, host))
                    .map(|p| p.as_str().to_string());
                OrganisationSummary {
                    is_domain: acc.is_domain,
                    deferrals: acc.deferrals,
                    client_addresses: acc.addresses.len() as u64,
                    later_accepted: acc.accepted.len() as u64,
                    deferred_pairs: acc.deferred.len() as u64,
                    median_delay,
                    white_pattern,
                    organisation,
                }
            })
            .collect();
        summaries.sort_by(|a, b| {
            b.deferrals
                .cmp(&a.deferrals)
                .then_with(|| a.organisation.cmp(&b.organisation))
        });
        summaries
    }
}

/// Groups the decision log by sender organisation; organisations with deferrals only, most
/// deferred first.
pub(crate) fn summarise(
    entries: &[LogEntry],
    lists: &ServerLists,
    settings: &Settings,
) -> Vec<OrganisationSummary> {
    let mut summariser = Summariser::new(settings);
    entries.iter().for_each(|entry| summariser.add(entry));
    summariser.finish(lists)
}

fn median(sorted: &[i64]) -> Option<i64> {
    match sorted.len() {
        0 => None,
        n if n % 2 == 1 => Some(sorted[n / 2]),
        n => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1, 5, 9]), Some(5));
        assert_eq!(median(&[1, 3]), Some(2));
    }
}
