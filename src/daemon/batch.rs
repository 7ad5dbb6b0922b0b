//! The database side of both daemons: decides a batch of requests in write transactions (group
//! commit) and hands back the outcomes only after they committed, so every answered decision is
//! stored. Opens the store lazily and reopens it after an error; while the store is unusable the
//! requests it should have decided fail open.
//!
//! With one database connection (the default for SQLite, whose writers take turns anyway) the
//! whole batch is one transaction on the event-loop thread. With a pool of N connections (the
//! default for PostgreSQL, where every statement is a network round trip) the batch is split in
//! N parts decided at the same time, each by a worker thread owning one connection, each part
//! one transaction. The split is by envelope sender: requests that could touch the same triplet
//! (the PostgreSQL store locks a triplet by client and sender) always go to the same worker, in
//! arrival order, so the workers never wait on each other's locks.
//!
//! Each connection keeps the configuration (settings, lists, domain flags) between transactions
//! in an [`engine::ConfigCache`], checked against the store's configuration stamp in every
//! transaction, so a request costs only its triplet statements and a change made with the CLI
//! still applies to the very next request.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::decision::triplet_sender;
use crate::engine::{self, Checked, Message};
use crate::logging::Logger;
use crate::store::{DbLocation, StoreError};

mod connection;
mod error;

#[cfg(test)]
pub(crate) use connection::PANIC_RECIPIENT;
use connection::{Connection, REOPEN_DELAY};
pub(crate) use error::DecideError;

use crate::daemon::reload::{self, FileId};

/// How hard a commit presses the decision to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// `synchronous=FULL`: every committed batch is fsynced before its replies go out, so an
    /// answered decision survives a power cut.
    Full,
    /// `synchronous=NORMAL`: survives a crash of the process, a power cut may forget the last
    /// batches (senders are then greylisted once more; no mail is lost).
    Normal,
}

/// Connections used when the command line does not say: one for SQLite (writers serialise, and
/// one connection keeps group commit whole), four for PostgreSQL (enough to overlap round trips
/// on a small MX without holding many server backends).
pub(crate) fn default_connections(db: &DbLocation) -> usize {
    match db {
        DbLocation::Sqlite(_) => 1,
        _ => 4,
    }
}

/// The outcome of one request: its decision, or why the store could not decide it.
pub(crate) type Decided = Result<Checked, DecideError>;

/// Owns the database connection(s) of a daemon (the policy server or the milter).
pub struct BatchDecider {
    /// Where the connections are (the pool checks an SQLite file for them).
    db: DbLocation,
    /// The single connection, used on the calling thread (pool of one).
    inline: Option<Connection>,
    /// The worker threads of a larger pool.
    workers: Vec<Worker>,
    /// Where every worker sends its answers.
    answers: Receiver<Answer>,
    /// When a batch last found the database not answering in time (a hung server). Until
    /// [`REOPEN_DELAY`] has passed, requests pass at once: those that arrived while the batch
    /// waited must not each wait out the timeout again (the MTA waits only so long, and every
    /// other connection of the event loop waits with them).
    not_answering_since: Option<Instant>,
    /// The SQLite file last seen at the path (see [`BatchDecider::replaced_since_seen`]).
    seen_file: Option<FileId>,
}

impl BatchDecider {
    /// A decider for `db` with `connections` connections (at least one); opens them at once,
    /// logging a failure, which is retried later.
    pub fn new(
        db: DbLocation,
        synchronous: Synchronous,
        connections: usize,
        component: engine::Component,
        log: &mut Logger,
    ) -> BatchDecider {
        let (answer_tx, answers) = mpsc::channel();
        if connections <= 1 {
            let mut connection = Connection::new(db, synchronous, component);
            let mut errors = Vec::new();
            connection.ensure_open(&mut errors);
            log_all(log, errors);
            return BatchDecider {
                seen_file: sqlite_file(&connection.db),
                db: connection.db.clone(),
                inline: Some(connection),
                workers: Vec::new(),
                answers,
                not_answering_since: None,
            };
        }
        // The first connection opens alone (creating or migrating the schema of a new
        // database under its lock); the others start once it has tried, so they do not queue
        // on that lock all at once and hit the store's lock timeout. Why it failed is logged
        // now, as with a single connection: a database that cannot be reached is said at start,
        // not only once mail comes.
        let (opened_tx, opened) = mpsc::channel();
        let mut workers = vec![Worker::start(
            0,
            db.clone(),
            synchronous,
            component,
            answer_tx.clone(),
            Some(opened_tx),
        )];
        if let Ok(errors) = opened.recv() {
            log_all(log, errors);
        }
        workers.extend((1..connections).map(|index| {
            Worker::start(
                index,
                db.clone(),
                synchronous,
                component,
                answer_tx.clone(),
                None,
            )
        }));
        BatchDecider {
            seen_file: sqlite_file(&db),
            db,
            inline: None,
            workers,
            answers,
            not_answering_since: None,
        }
    }

    /// Decides `batch` (message, decision time); one outcome per request, in order. A request
    /// whose connection failed gets `Err` with the reason (the caller answers `DUNNO`).
    pub(crate) fn decide(&mut self, batch: &[(&Message, i64)], log: &mut Logger) -> Vec<Decided> {
        if self
            .not_answering_since
            .is_some_and(|since| since.elapsed() < REOPEN_DELAY)
        {
            return vec![Err(DecideError::NotAnswering); batch.len()];
        }
        let results = self.decide_now(batch, log);
        if results.iter().any(not_answered) {
            self.not_answering_since = Some(Instant::now());
        }
        results
    }

    /// [`BatchDecider::decide`] on the connection(s), whatever happened before.
    fn decide_now(&mut self, batch: &[(&Message, i64)], log: &mut Logger) -> Vec<Decided> {
        if self.replaced_since_seen() {
            self.check_replaced(log);
        }
        if let Some(connection) = self.inline.as_mut() {
            let mut errors = Vec::new();
            let outcome = connection.decide(batch, &mut errors);
            log_all(log, errors);
            return spread(outcome, batch.len());
        }
        // Scatter by sender, gather in request order.
        let mut parts: Vec<Vec<usize>> = vec![Vec::new(); self.workers.len()];
        for (position, (message, _)) in batch.iter().enumerate() {
            parts[shard(&message.sender, self.workers.len())].push(position);
        }
        let mut waiting = 0;
        let mut results: Vec<Option<Decided>> = vec![None; batch.len()];
        for (worker, positions) in self.workers.iter().zip(&parts) {
            if positions.is_empty() {
                continue;
            }
            let job: Vec<(Message, i64)> = positions
                .iter()
                .map(|&p| (batch[p].0.clone(), batch[p].1))
                .collect();
            if worker.jobs.send(Job::Decide(job)).is_ok() {
                waiting += 1;
            } else {
                for &p in positions {
                    results[p] = Some(Err(DecideError::WorkerStopped));
                }
            }
        }
        while waiting > 0 {
            let Ok(answer) = self.answers.recv() else {
                break;
            };
            log_all(log, answer.errors);
            log_notes(log, answer.notes);
            // A note (a reopened database) answers no job.
            let Some(outcome) = answer.outcome else {
                continue;
            };
            waiting -= 1;
            let positions = &parts[answer.worker];
            for (&p, decided) in positions.iter().zip(spread(outcome, positions.len())) {
                results[p] = Some(decided);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(DecideError::WorkerStopped)))
            .collect()
    }
}

impl BatchDecider {
    /// Reopens every connection whose SQLite file was deleted or replaced since it was opened
    /// (a deleted one is created anew, as the CLI would). Called on a timer, not per request.
    pub fn check_replaced(&mut self, log: &mut Logger) {
        self.seen_file = sqlite_file(&self.db);
        if let Some(connection) = self.inline.as_mut() {
            let (mut notes, mut errors) = (Vec::new(), Vec::new());
            connection.check_replaced(&mut notes, &mut errors);
            log_notes(log, notes);
            log_all(log, errors);
            return;
        }
        let DbLocation::Sqlite(path) = &self.db else {
            return;
        };
        // Every pooled connection lets go of the old file before any opens the new one: the
        // log and index files beside the path may still be the old database's, and a
        // connection to the new file must not share them with one to the old. The workers are
        // idle between batches, so this round trip is short.
        let current = reload::file_id(path);
        self.all_workers(|| Job::Abandon(current), log);
    }

    /// Closes every connection and opens `db` instead (SIGHUP). A pool opens it with the next
    /// batch, so a slow database server does not hold up the loop here.
    pub fn reopen(&mut self, db: &DbLocation, log: &mut Logger) {
        self.db = db.clone();
        self.not_answering_since = None;
        self.seen_file = sqlite_file(db);
        if let Some(connection) = self.inline.as_mut() {
            let (mut notes, mut errors) = (Vec::new(), Vec::new());
            connection.reopen(db.clone(), &mut notes, &mut errors);
            log_notes(log, notes);
            log_all(log, errors);
            return;
        }
        self.all_workers(|| Job::Close(db.clone()), log);
    }

    /// Whether the SQLite file at the path is not the one seen last: one `stat` before every
    /// batch. The timer of [`check_replaced`](BatchDecider::check_replaced) alone would leave a
    /// daemon deciding on a file moved away from the path for up to a second, while another
    /// program sharing the database (the other daemon, the filter) already works on the file
    /// moved there — through the same `-wal` and `-shm` files, since a move replaces only the
    /// database file: this daemon's writes would land in the log the new file reads, made on
    /// pages of the old one.
    fn replaced_since_seen(&self) -> bool {
        matches!(self.db, DbLocation::Sqlite(_)) && sqlite_file(&self.db) != self.seen_file
    }

    /// Sends a job to every worker and waits until each has answered it.
    fn all_workers(&mut self, job: impl Fn() -> Job, log: &mut Logger) {
        let sent = self
            .workers
            .iter()
            .filter(|worker| worker.jobs.send(job()).is_ok())
            .count();
        for _ in 0..sent {
            let Ok(answer) = self.answers.recv() else {
                break;
            };
            log_all(log, answer.errors);
            log_notes(log, answer.notes);
        }
    }
}

impl Drop for BatchDecider {
    fn drop(&mut self) {
        for worker in self.workers.drain(..) {
            // Closing the job channel ends the worker's loop.
            drop(worker.jobs);
            if let Some(thread) = worker.thread {
                let _ = thread.join();
            }
        }
    }
}

/// The identity of the SQLite file at `db`'s path (`None` for PostgreSQL or no file).
fn sqlite_file(db: &DbLocation) -> Option<FileId> {
    match db {
        DbLocation::Sqlite(path) => reload::file_id(path),
        _ => None,
    }
}

/// Which worker decides a request from `sender`: every sender that normalises to the same
/// triplet sender (whatever the setting says) lands on the same worker.
fn shard(sender: &str, workers: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    triplet_sender(sender, true).hash(&mut hasher);
    (hasher.finish() % workers.max(1) as u64) as usize
}

/// True when the store did not answer within its timeout (on an open connection or while
/// connecting): a hung or far too slow server, not one that refused.
fn not_answered(decided: &Decided) -> bool {
    matches!(decided, Err(DecideError::Store(err)) if matches!(**err, StoreError::Timeout { .. }))
}

/// One result per request from one transaction's outcome.
fn spread(outcome: Result<Vec<Checked>, DecideError>, count: usize) -> Vec<Decided> {
    match outcome {
        Ok(list) if list.len() == count => list.into_iter().map(Ok).collect(),
        Ok(_) => vec![Err(DecideError::MissingOutcome); count],
        Err(why) => vec![Err(why); count],
    }
}

fn log_all(log: &mut Logger, errors: Vec<String>) {
    for line in errors {
        log.error(&line);
    }
}

fn log_notes(log: &mut Logger, notes: Vec<String>) {
    for line in notes {
        log.info(&line);
    }
}

/// What a worker is asked to do.
enum Job {
    /// Decide a part of a batch and answer with its outcome.
    Decide(Vec<(Message, i64)>),
    /// Close the connection if its SQLite file is no longer the one now at the path (this
    /// identity); the next batch opens the new one. Always answered.
    Abandon(Option<FileId>),
    /// Close the connection; the next batch opens this database. Always answered.
    Close(DbLocation),
}

/// What a worker sends back: the outcome of a `Decide` job, or only lines to log.
struct Answer {
    worker: usize,
    /// `None`: not the answer to a `Decide` job, only lines to log.
    outcome: Option<Result<Vec<Checked>, DecideError>>,
    /// Error lines to log (the logger belongs to the event-loop thread).
    errors: Vec<String>,
    /// Informational lines to log.
    notes: Vec<String>,
}

/// A pool thread owning one connection.
struct Worker {
    jobs: Sender<Job>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn start(
        index: usize,
        db: DbLocation,
        synchronous: Synchronous,
        component: engine::Component,
        answers: Sender<Answer>,
        opened: Option<Sender<Vec<String>>>,
    ) -> Worker {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(format!("db-{index}"))
            .spawn(move || {
                let mut connection = Connection::new(db, synchronous, component);
                let mut errors = Vec::new();
                connection.ensure_open(&mut errors);
                // The first worker's start-up errors are logged by whoever waits for it; the
                // others' go out with their first answer.
                if let Some(opened) = opened {
                    let _ = opened.send(std::mem::take(&mut errors));
                }
                let mut notes = Vec::new();
                for job in job_rx {
                    let outcome = match job {
                        Job::Decide(job) => {
                            let batch: Vec<(&Message, i64)> =
                                job.iter().map(|(m, t)| (m, *t)).collect();
                            Some(connection.decide(&batch, &mut errors))
                        }
                        Job::Abandon(current) => {
                            connection.abandon_if_replaced(current, &mut notes);
                            None
                        }
                        Job::Close(db) => {
                            connection.close(db);
                            None
                        }
                    };
                    let answer = Answer {
                        worker: index,
                        outcome,
                        errors: std::mem::take(&mut errors),
                        notes: std::mem::take(&mut notes),
                    };
                    if answers.send(answer).is_err() {
                        break;
                    }
                }
            });
        match thread {
            Ok(thread) => Worker {
                jobs,
                thread: Some(thread),
            },
            // No thread: its jobs cannot be sent (the receiver is gone), so its requests fail
            // open with "database worker stopped".
            Err(_) => Worker { jobs, thread: None },
        }
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
