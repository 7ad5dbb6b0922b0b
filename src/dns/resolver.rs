//! The DNS client: every zone of a [`Question`] and the forward lookup asked at once from one
//! resolver, all within one budget ([`BUDGET`] unless shortened).
//!
//! [`Lookups`] is the asynchronous core (for a thread that already runs a tokio runtime, such
//! as the policy server's [`super::worker::DnsWorker`]); [`Resolver`] wraps it with its own
//! current-thread runtime as a blocking [`DnsSource`] for callers that may wait (the filter, the
//! CLI's `--explain` and `--check-dns`); an event loop uses the worker instead.
//!
//! The resolver is asked over UDP, with TCP when an answer comes back truncated. Every name is
//! absolute (no search domain is ever appended), the hosts file is never read and hickory's own
//! cache is off: the store caches answers, with the lifetimes this program chooses. One attempt
//! per query: a retry would only spend the budget a parallel query may still need.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use thiserror::Error;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::query::{canonical, classify, query_name, unique_zones};
use super::{BUDGET, DnsFacts, DnsSource, Forward, Question, ZoneAnswer, ZoneResult};

/// Simultaneous queries the client lets wait on one connection (zones times concurrent
/// requests in the policy server; far beyond hickory's default of 32).
const MAX_ACTIVE_REQUESTS: usize = 4096;

/// Why the DNS client cannot be set up. Displays as one line.
#[derive(Debug, Error)]
pub enum ResolverError {
    /// The resolver library refused the configuration.
    #[error("cannot set up the DNS client for {addr}: {what}")]
    Client {
        /// The resolver.
        addr: SocketAddr,
        /// Why.
        what: String,
    },
    /// The runtime that drives the queries cannot be started.
    #[error("cannot start the DNS client's runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The asynchronous DNS client: asks [`Question`]s of one resolver. Cheap to clone; clones share
/// their connections. Must be used from inside a tokio runtime.
#[derive(Clone)]
pub struct Lookups {
    client: TokioResolver,
    budget: Duration,
}

impl std::fmt::Debug for Lookups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lookups")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

/// One finished query of an [`Lookups::ask`].
enum Done {
    Zone(usize, ZoneResult),
    Forward(Forward),
}

impl Lookups {
    /// A client of the resolver at `addr`, with the budget [`BUDGET`].
    pub fn new(addr: SocketAddr) -> Result<Lookups, ResolverError> {
        let mut udp = ConnectionConfig::udp();
        udp.port = addr.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = addr.port();
        let server = NameServerConfig::new(addr.ip(), true, vec![udp, tcp]);
        let mut builder = TokioResolver::builder_with_config(
            ResolverConfig::from_parts(None, Vec::new(), vec![server]),
            TokioRuntimeProvider::default(),
        );
        let options: &mut ResolverOpts = builder.options_mut();
        options.ndots = 0;
        options.timeout = BUDGET;
        // No retry after a failed attempt (see the module documentation).
        options.attempts = 0;
        options.cache_size = 0;
        options.use_hosts_file = ResolveHosts::Never;
        options.max_active_requests = MAX_ACTIVE_REQUESTS;
        let client = builder.build().map_err(|error| ResolverError::Client {
            addr,
            what: error.to_string(),
        })?;
        Ok(Lookups {
            client,
            budget: BUDGET,
        })
    }

    /// The same client with another budget (tests that prove the bound shorten it).
    pub fn with_budget(mut self, budget: Duration) -> Lookups {
        self.budget = budget;
        self
    }

    /// The time one [`Lookups::ask`] may take at most.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Asks every zone of `question` (each once) and its forward lookup at once, and returns when
    /// all are answered or the budget is spent, whichever comes first. Whatever is unanswered
    /// then is [`ZoneResult::NoAnswer`] / [`Forward::NoAnswer`].
    pub async fn ask(&self, question: &Question<'_>) -> DnsFacts {
        let deadline = Instant::now() + self.budget;
        let zones = unique_zones(question.zones);
        let mut results = vec![ZoneResult::NoAnswer; zones.len()];
        let mut forward = question.confirm.map(|_| Forward::NoAnswer);
        let mut tasks = JoinSet::new();
        for (index, zone) in zones.iter().enumerate() {
            let (client, name) = (self.client.clone(), query_name(question.ip, zone));
            tasks.spawn(
                async move { Done::Zone(index, zone_lookup(&client, &name, deadline).await) },
            );
        }
        if let Some(host) = question.confirm {
            let (client, host, ip) = (self.client.clone(), host.to_string(), question.ip);
            tasks.spawn(async move {
                Done::Forward(forward_lookup(&client, &host, ip, deadline).await)
            });
        }
        // Each task stops itself at the deadline; the outer bound only guards against one that
        // does not, so nothing here can outlive the budget by more than a moment.
        let collect = async {
            while let Some(joined) = tasks.join_next().await {
                match joined {
                    Ok(Done::Zone(index, result)) => {
                        if let Some(slot) = results.get_mut(index) {
                            *slot = result;
                        }
                    }
                    Ok(Done::Forward(answer)) => forward = Some(answer),
                    // A task that panicked or was cancelled answered nothing.
                    Err(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout_at(deadline + Duration::from_millis(50), collect).await;
        tasks.abort_all();
        DnsFacts {
            zones: zones
                .into_iter()
                .zip(results)
                .map(|(zone, result)| ZoneAnswer { zone, result })
                .collect(),
            forward,
        }
    }
}

/// What a name's A records are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ARecords {
    /// The addresses (none: NXDOMAIN or NODATA).
    Addresses(Vec<Ipv4Addr>),
    /// No answer within the budget (timeout, SERVFAIL, REFUSED, network error).
    NoAnswer,
}

/// The A records of `name`.
async fn a_records(client: &TokioResolver, name: &str, deadline: Instant) -> ARecords {
    // A name that cannot be asked (a zone too long for the reversed IPv6 address) got no answer.
    let Ok(name) = Name::from_ascii(name) else {
        return ARecords::NoAnswer;
    };
    match tokio::time::timeout_at(deadline, client.lookup(name, RecordType::A)).await {
        Ok(Ok(lookup)) => ARecords::Addresses(
            lookup
                .answers()
                .iter()
                .filter_map(|record| match &record.data {
                    RData::A(a) => Some(a.0),
                    _ => None,
                })
                .collect(),
        ),
        Ok(Err(error)) => {
            negative_or_none(&error, ARecords::Addresses(Vec::new()), ARecords::NoAnswer)
        }
        Err(_elapsed) => ARecords::NoAnswer,
    }
}

/// The A records of `name` as a zone answer.
async fn zone_lookup(client: &TokioResolver, name: &str, deadline: Instant) -> ZoneResult {
    match a_records(client, name, deadline).await {
        ARecords::Addresses(addresses) => classify(addresses),
        ARecords::NoAnswer => ZoneResult::NoAnswer,
    }
}

/// Whether `host` has the client address among its addresses. Only the client's own family is
/// asked (A for IPv4 and IPv4-mapped clients, AAAA for IPv6): a record of the other family can
/// never be the client address, and asking it would only add a way to get no answer.
async fn forward_lookup(
    client: &TokioResolver,
    host: &str,
    ip: IpAddr,
    deadline: Instant,
) -> Forward {
    let ip = canonical(ip);
    let absolute = format!("{}.", host.trim_end_matches('.'));
    // A name DNS cannot even carry has no address at all.
    let Ok(name) = Name::from_ascii(&absolute) else {
        return Forward::NotConfirmed;
    };
    let kind = if ip.is_ipv4() {
        RecordType::A
    } else {
        RecordType::AAAA
    };
    match tokio::time::timeout_at(deadline, client.lookup(name, kind)).await {
        Ok(Ok(lookup)) => {
            let found = lookup.answers().iter().any(|record| match &record.data {
                RData::A(a) => IpAddr::V4(a.0) == ip,
                RData::AAAA(aaaa) => canonical(IpAddr::V6(aaaa.0)) == ip,
                _ => false,
            });
            if found {
                Forward::Confirmed
            } else {
                Forward::NotConfirmed
            }
        }
        Ok(Err(error)) => negative_or_none(&error, Forward::NotConfirmed, Forward::NoAnswer),
        Err(_elapsed) => Forward::NoAnswer,
    }
}

/// NXDOMAIN and NODATA are answers (`negative`); SERVFAIL, REFUSED, network errors and anything
/// else are none.
fn negative_or_none<T>(error: &NetError, negative: T, none: T) -> T {
    if error.is_no_records_found() {
        negative
    } else {
        none
    }
}

/// The blocking DNS client: [`Lookups`] with its own current-thread runtime, for callers that
/// wait for the answers (the filter, `--explain`, `--check-dns`). Must not be used
/// from inside another tokio runtime.
#[derive(Debug)]
pub struct Resolver {
    runtime: tokio::runtime::Runtime,
    lookups: Lookups,
}

impl Resolver {
    /// A client of the resolver at `addr`, with the budget [`BUDGET`].
    pub fn new(addr: SocketAddr) -> Result<Resolver, ResolverError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let lookups = {
            let _inside = runtime.enter();
            Lookups::new(addr)?
        };
        Ok(Resolver { runtime, lookups })
    }

    /// The same client with another budget (tests that prove the bound shorten it).
    pub fn with_budget(mut self, budget: Duration) -> Resolver {
        self.lookups = self.lookups.with_budget(budget);
        self
    }

    /// The time one [`DnsSource::ask`] may take at most.
    pub fn budget(&self) -> Duration {
        self.lookups.budget()
    }
}

impl Resolver {
    /// The A records of `<reversed address>.<zone>` for each of `zones` (each once, in order),
    /// asked at once within the budget: the raw answers the health check of a list reads.
    pub fn a_records(&self, address: Ipv4Addr, zones: &[String]) -> Vec<(String, ARecords)> {
        let lookups = &self.lookups;
        self.runtime.block_on(async {
            let deadline = Instant::now() + lookups.budget;
            let zones = unique_zones(zones);
            let mut tasks = JoinSet::new();
            for (index, zone) in zones.iter().enumerate() {
                let client = lookups.client.clone();
                let name = query_name(IpAddr::V4(address), zone);
                tasks.spawn(async move { (index, a_records(&client, &name, deadline).await) });
            }
            let mut results = vec![ARecords::NoAnswer; zones.len()];
            let collect = async {
                while let Some(joined) = tasks.join_next().await {
                    if let Ok((index, records)) = joined
                        && let Some(slot) = results.get_mut(index)
                    {
                        *slot = records;
                    }
                }
            };
            let _ = tokio::time::timeout_at(deadline + Duration::from_millis(50), collect).await;
            tasks.abort_all();
            zones.into_iter().zip(results).collect()
        })
    }
}

impl DnsSource for Resolver {
    fn ask(&self, question: &Question<'_>) -> DnsFacts {
        self.runtime.block_on(self.lookups.ask(question))
    }
}

#[cfg(test)]
#[path = "resolver_tests.rs"]
mod tests;
