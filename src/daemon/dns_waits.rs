//! Requests waiting for DNS (DESIGN.md §4, steps 4a and 4b), for the event loops of greylisting-policyd
//! and greylisting-milter. A batch hands back the messages whose list answers are missing
//! ([`Checked::NeedsDns`](crate::engine::Checked)); they are parked here while the [`DnsWorker`]
//! asks, and come back, with the answers in their message, for the next batch. The loop never
//! waits: other connections are served meanwhile. The worker starts with the first question
//! (a server whose configuration asks no DNS never reads resolv.conf) and starts again after a
//! reload; when no resolver can be set up, a parked request comes back at once with every zone
//! unanswered (it is decided as if not listed, and the reason is logged).

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Registry, Token, Waker};
use thiserror::Error;

use crate::clock;
use crate::dns::{self, DnsFacts, DnsWorker, Lookups, NoResolver};
use crate::engine::{DnsPlan, Message, merge_facts};
use crate::logging::Logger;
use crate::logline;

/// The event-loop token the worker wakes.
pub(crate) const DNS_TOKEN: Token = Token(usize::MAX);

/// How long a failure to set up the resolver is remembered before it is tried again.
const RETRY_SETUP: Duration = Duration::from_secs(60);

/// Why the DNS worker could not start; reads as the error underneath.
#[derive(Debug, Error)]
enum SetupError {
    /// No resolver, or no client for it.
    #[error(transparent)]
    NoResolver(#[from] NoResolver),
    /// The event loop's waker cannot be made.
    #[error(transparent)]
    Waker(io::Error),
}

/// Something that waits for DNS: a request whose message gets the answers.
pub(crate) trait WaitsForDns {
    /// The message to complete (`None`: nothing to ask for).
    fn message_mut(&mut self) -> Option<&mut Message>;
}

struct Parked<T> {
    item: T,
    ask: DnsPlan,
}

/// The parked requests and the worker asking for them.
pub(crate) struct DnsWaits<T> {
    worker: Option<DnsWorker>,
    /// The event loop's waker, made once and handed to every worker: mio allows one per poll
    /// instance for the life of the process (a second one, for the worker started again after
    /// SIGHUP, panics in debug builds).
    waker: Option<Arc<Waker>>,
    /// Why the worker could not start, and when that was found.
    setup_failed: Option<(SetupError, Instant)>,
    parked: HashMap<u64, Parked<T>>,
    next_id: u64,
    /// Requests that come back without asking (no resolver): returned by the next `take_ready`.
    unanswered: Vec<T>,
}

impl<T: WaitsForDns> DnsWaits<T> {
    pub(crate) fn new() -> DnsWaits<T> {
        DnsWaits {
            worker: None,
            waker: None,
            setup_failed: None,
            parked: HashMap::new(),
            next_id: 0,
            unanswered: Vec::new(),
        }
    }

    /// Parks `item` until `ask` is answered; `known` (the answers the store's cache had) go into
    /// its message now.
    pub(crate) fn park(
        &mut self,
        mut item: T,
        ask: DnsPlan,
        known: DnsFacts,
        registry: &Registry,
        log: &mut Logger,
    ) {
        if let Some(message) = item.message_mut() {
            message.dns = known;
        }
        if self.worker.is_none() && !self.start(registry, log) {
            answer_unanswered(&mut item, ask);
            self.unanswered.push(item);
            return;
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        if let Some(worker) = &self.worker {
            worker.submit(id, ask.ip, ask.zones.clone(), ask.confirm.clone());
        }
        self.parked.insert(id, Parked { item, ask });
    }

    /// The requests whose questions were answered (or can never be), answers in their message
    /// and `dns_asked` set; a line is logged for every zone that did not answer.
    pub(crate) fn take_ready(&mut self, log: &mut Logger) -> Vec<T> {
        let mut ready = std::mem::take(&mut self.unanswered);
        let Some(worker) = &self.worker else {
            return ready;
        };
        for (id, facts) in worker.take_finished() {
            let Some(Parked { mut item, ask }) = self.parked.remove(&id) else {
                continue;
            };
            for zone in facts.unanswered_zones() {
                log.error(&logline::dns_no_answer_line(zone, ask.ip, dns::BUDGET));
            }
            if let Some(message) = item.message_mut() {
                message.dns = merge_facts(&message.dns, &facts);
                message.dns_asked = Some(ask);
            }
            ready.push(item);
        }
        ready
    }

    /// Forgets the worker (SIGHUP: the resolver may have changed); parked requests come back
    /// unanswered with the next `take_ready` (a line logged for each of their zones, as for a
    /// zone that did not answer in time), a new worker starts with the next question.
    pub(crate) fn restart(&mut self, log: &mut Logger) {
        self.worker = None;
        self.setup_failed = None;
        for (_, Parked { mut item, ask }) in self.parked.drain() {
            for zone in &ask.zones {
                log.error(&logline::dns_abandoned_line(zone, ask.ip));
            }
            answer_unanswered(&mut item, ask);
            self.unanswered.push(item);
        }
    }

    /// Starts the worker; false (logged, then remembered for a minute) when no resolver can
    /// be set up.
    fn start(&mut self, registry: &Registry, log: &mut Logger) -> bool {
        if let Some((_, since)) = &self.setup_failed
            && since.elapsed() < RETRY_SETUP
        {
            return false;
        }
        let started = dns::locate_system(&clock::process_env)
            .map_err(|err| SetupError::NoResolver(err.into()))
            .and_then(|located| {
                Lookups::new(located.addr).map_err(|err| SetupError::NoResolver(err.into()))
            })
            .and_then(|lookups| {
                let waker = match &self.waker {
                    Some(waker) => Arc::clone(waker),
                    None => {
                        let waker =
                            Arc::new(Waker::new(registry, DNS_TOKEN).map_err(SetupError::Waker)?);
                        self.waker = Some(Arc::clone(&waker));
                        waker
                    }
                };
                DnsWorker::start(lookups, waker).map_err(|err| SetupError::NoResolver(err.into()))
            });
        match started {
            Ok(worker) => {
                self.worker = Some(worker);
                self.setup_failed = None;
                true
            }
            Err(why) => {
                log.error(&format!(
                    "dns: no resolver ({why}); DNS lists count as not listed, trying again in {} s",
                    RETRY_SETUP.as_secs()
                ));
                self.setup_failed = Some((why, Instant::now()));
                false
            }
        }
    }
}

/// Completes `item` as if nobody answered `ask`.
fn answer_unanswered<T: WaitsForDns>(item: &mut T, ask: DnsPlan) {
    if let Some(message) = item.message_mut() {
        let unanswered = DnsFacts::unanswered(&ask.zones, ask.confirm.is_some());
        message.dns = merge_facts(&message.dns, &unanswered);
        message.dns_asked = Some(ask);
    }
}
