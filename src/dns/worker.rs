//! DNS for an event loop that must never wait for a lookup (the policy server's; the milter's is
//! one too): [`DnsWorker`] owns one thread with its own tokio runtime; the event loop hands it jobs with
//! [`DnsWorker::submit`] (which never blocks), the worker asks them all concurrently, and each
//! finished job is delivered through a channel with the event loop's [`mio::Waker`] woken, to be
//! collected with [`DnsWorker::take_finished`].
//!
//! The worker also keeps the [`NoAnswerMemory`]: a zone that gave no answer for an address is
//! not asked again for it for a minute (the job gets [`ZoneResult::NoAnswer`] for it at once).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::mpsc as tokio_mpsc;

use super::memory::NoAnswerMemory;
use super::query::unique_zones;
use super::{DnsFacts, Lookups, Question, ResolverError, ZoneAnswer, ZoneResult};

/// Jobs submitted and not finished yet, at most. A job submitted beyond that is finished at once
/// with every zone [`ZoneResult::NoAnswer`] (and the forward lookup [`Forward::NoAnswer`]): the
/// mail is then decided without DNS lists, as on a DNS outage, instead of queueing without
/// bound behind a resolver that no longer keeps up.
pub(crate) const MAX_OUTSTANDING: usize = 4096;

/// One job: what [`DnsWorker::submit`] was given.
struct Job {
    id: u64,
    ip: IpAddr,
    zones: Vec<String>,
    confirm: Option<String>,
}

/// What the worker thread and its tasks share with the event loop's side.
struct Shared {
    finished: mpsc::Sender<(u64, DnsFacts)>,
    /// Shared with the event loop, which keeps it for the next worker: mio allows one waker per
    /// poll instance for the life of the process (a second one panics in debug builds).
    waker: Arc<mio::Waker>,
    outstanding: AtomicUsize,
}

impl Shared {
    /// Delivers a finished job and wakes the event loop.
    fn finish(&self, id: u64, facts: DnsFacts) {
        // The receiver lives in the `DnsWorker`; when it is gone nobody waits for the answer.
        let _ = self.finished.send((id, facts));
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
        // A failed wake-up cannot be reported to anyone; the event loop also collects finished
        // jobs whenever it wakes for another reason.
        let _ = self.waker.wake();
    }
}

/// The policy server's DNS thread (see the module documentation).
pub struct DnsWorker {
    jobs: Option<tokio_mpsc::UnboundedSender<Job>>,
    finished: mpsc::Receiver<(u64, DnsFacts)>,
    shared: Arc<Shared>,
    limit: usize,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DnsWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsWorker")
            .field("outstanding", &self.outstanding())
            .finish_non_exhaustive()
    }
}

impl DnsWorker {
    /// Starts the worker thread, asking with `lookups` (and its budget); `waker` is woken after
    /// each finished job.
    pub fn start(lookups: Lookups, waker: Arc<mio::Waker>) -> Result<DnsWorker, ResolverError> {
        DnsWorker::start_bounded(lookups, waker, MAX_OUTSTANDING)
    }

    /// [`DnsWorker::start`] with another bound than [`MAX_OUTSTANDING`].
    fn start_bounded(
        lookups: Lookups,
        waker: Arc<mio::Waker>,
        limit: usize,
    ) -> Result<DnsWorker, ResolverError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let (jobs, mut incoming) = tokio_mpsc::unbounded_channel::<Job>();
        let (finished_tx, finished) = mpsc::channel();
        let shared = Arc::new(Shared {
            finished: finished_tx,
            waker,
            outstanding: AtomicUsize::new(0),
        });
        let worker_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("dns".to_string())
            .spawn(move || {
                let memory = Arc::new(Mutex::new(NoAnswerMemory::default()));
                runtime.block_on(async move {
                    while let Some(job) = incoming.recv().await {
                        let (lookups, memory) = (lookups.clone(), Arc::clone(&memory));
                        let shared = Arc::clone(&worker_shared);
                        tokio::spawn(async move {
                            let id = job.id;
                            let facts = run(&lookups, &memory, job).await;
                            shared.finish(id, facts);
                        });
                    }
                });
            })?;
        Ok(DnsWorker {
            jobs: Some(jobs),
            finished,
            shared,
            limit,
            thread: Some(thread),
        })
    }

    /// Hands a job to the worker; never blocks. `id` comes back with the job's facts from
    /// [`DnsWorker::take_finished`]. Beyond `MAX_OUTSTANDING` jobs (or if the worker thread is
    /// gone) the job finishes at once with nothing answered.
    pub fn submit(&self, id: u64, ip: IpAddr, zones: Vec<String>, confirm: Option<String>) {
        let outstanding = self.shared.outstanding.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            id,
            ip,
            zones,
            confirm,
        };
        if outstanding >= self.limit {
            return self.shared.finish(id, unanswered(&job));
        }
        if let Some(jobs) = &self.jobs {
            match jobs.send(job) {
                Ok(()) => {}
                Err(tokio_mpsc::error::SendError(job)) => {
                    self.shared.finish(job.id, unanswered(&job))
                }
            }
        }
    }

    /// The jobs finished since the last call, as `(id, facts)`, in the order they finished.
    pub fn take_finished(&self) -> Vec<(u64, DnsFacts)> {
        self.finished.try_iter().collect()
    }

    /// Jobs submitted and not finished yet.
    pub fn outstanding(&self) -> usize {
        self.shared.outstanding.load(Ordering::SeqCst)
    }
}

impl Drop for DnsWorker {
    /// Stops the worker: jobs still running are dropped unanswered.
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The facts of a job that was not asked: every zone and the forward lookup without answer.
fn unanswered(job: &Job) -> DnsFacts {
    DnsFacts::unanswered(&job.zones, job.confirm.is_some())
}

/// Asks one job: the zones remembered as unanswered for this address are not asked again, the
/// zones that give no answer now are remembered.
async fn run(lookups: &Lookups, memory: &Mutex<NoAnswerMemory>, job: Job) -> DnsFacts {
    let zones = unique_zones(&job.zones);
    let skipped: Vec<bool> = {
        let memory = memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        zones
            .iter()
            .map(|zone| memory.is_remembered(job.ip, zone, now))
            .collect()
    };
    let asked: Vec<String> = zones
        .iter()
        .zip(&skipped)
        .filter(|(_, skip)| !**skip)
        .map(|(zone, _)| zone.clone())
        .collect();
    let question = Question {
        ip: job.ip,
        zones: &asked,
        confirm: job.confirm.as_deref(),
    };
    let facts = lookups.ask(&question).await;
    {
        let mut memory = memory
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        for answer in &facts.zones {
            if answer.result == ZoneResult::NoAnswer {
                memory.remember(job.ip, &answer.zone, now);
            }
        }
    }
    DnsFacts {
        zones: zones
            .into_iter()
            .map(|zone| {
                let result = facts.zone(&zone).unwrap_or(ZoneResult::NoAnswer);
                ZoneAnswer { zone, result }
            })
            .collect(),
        forward: facts.forward,
    }
}

#[cfg(test)]
#[path = "worker_tests.rs"]
mod tests;
