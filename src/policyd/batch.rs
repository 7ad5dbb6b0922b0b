//! The database side of the server: decides a batch of requests in write transactions (group
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
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::decision::triplet_sender;
use crate::engine::{self, Checked, ConfigCache, Message};
use crate::logging::Logger;
use crate::store::{self, DbLocation, SqliteStore, Store, StoreExt};

use super::Synchronous;
use super::reload::{self, FileId};

/// Log pages after which a commit of the server checkpoints the WAL into the database.
const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// How long after a failed open the server waits before trying again (requests meanwhile pass).
const REOPEN_DELAY: Duration = Duration::from_secs(1);

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
pub(crate) type Decided = Result<Checked, String>;

/// Owns the database connection(s) of the server.
pub struct BatchDecider {
    /// Where the connections are (the pool checks an SQLite file for them).
    db: DbLocation,
    /// The single connection, used on the calling thread (pool of one).
    inline: Option<Connection>,
    /// The worker threads of a larger pool.
    workers: Vec<Worker>,
    /// Where every worker sends its answers.
    answers: Receiver<Answer>,
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
                db: connection.db.clone(),
                inline: Some(connection),
                workers: Vec::new(),
                answers,
            };
        }
        // The first connection opens alone (creating or migrating the schema of a new
        // database under its lock); the others start once it has tried, so they do not queue
        // on that lock all at once and hit the store's lock timeout.
        let (opened_tx, opened) = mpsc::channel();
        let mut workers = vec![Worker::start(
            0,
            db.clone(),
            synchronous,
            component,
            answer_tx.clone(),
            Some(opened_tx),
        )];
        let _ = opened.recv();
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
            db,
            inline: None,
            workers,
            answers,
        }
    }

    /// Decides `batch` (message, decision time); one outcome per request, in order. A request
    /// whose connection failed gets `Err` with the reason (the caller answers `DUNNO`).
    pub fn decide(&mut self, batch: &[(&Message, i64)], log: &mut Logger) -> Vec<Decided> {
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
                    results[p] = Some(Err("database worker stopped".to_string()));
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
            .map(|r| r.unwrap_or_else(|| Err("database worker stopped".to_string())))
            .collect()
    }
}

impl BatchDecider {
    /// Reopens every connection whose SQLite file was deleted or replaced since it was opened
    /// (a deleted one is created anew, as the CLI would). Called on a timer, not per request.
    pub fn check_replaced(&mut self, log: &mut Logger) {
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
        if let Some(connection) = self.inline.as_mut() {
            let (mut notes, mut errors) = (Vec::new(), Vec::new());
            connection.reopen(db.clone(), &mut notes, &mut errors);
            log_notes(log, notes);
            log_all(log, errors);
            return;
        }
        self.all_workers(|| Job::Close(db.clone()), log);
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

/// Which worker decides a request from `sender`: every sender that normalises to the same
/// triplet sender (whatever the setting says) lands on the same worker.
fn shard(sender: &str, workers: usize) -> usize {
    let mut hasher = DefaultHasher::new();
    triplet_sender(sender, true).hash(&mut hasher);
    (hasher.finish() % workers.max(1) as u64) as usize
}

/// One result per request from one transaction's outcome.
fn spread(outcome: Result<Vec<Checked>, String>, count: usize) -> Vec<Decided> {
    match outcome {
        Ok(list) if list.len() == count => list.into_iter().map(Ok).collect(),
        Ok(_) => vec![Err("missing outcome".to_string()); count],
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
    outcome: Option<Result<Vec<Checked>, String>>,
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
        opened: Option<Sender<()>>,
    ) -> Worker {
        let (jobs, job_rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name(format!("db-{index}"))
            .spawn(move || {
                let mut connection = Connection::new(db, synchronous, component);
                let mut errors = Vec::new();
                connection.ensure_open(&mut errors);
                if let Some(opened) = opened {
                    let _ = opened.send(());
                }
                // Startup errors go out with the first answer.
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

/// One database connection, opened lazily and reopened after an error.
struct Connection {
    db: DbLocation,
    synchronous: Synchronous,
    /// Who decides, for the store's decision counters.
    component: engine::Component,
    store: Option<Box<dyn Store>>,
    /// The SQLite file the open store uses (`None`: unknown, reopen at the next check).
    opened_file: Option<FileId>,
    last_open_failure: Option<Instant>,
    /// Configuration read from the store, valid while its stamp stays the same.
    cache: ConfigCache,
}

impl Connection {
    fn new(db: DbLocation, synchronous: Synchronous, component: engine::Component) -> Connection {
        Connection {
            db,
            synchronous,
            component,
            store: None,
            opened_file: None,
            last_open_failure: None,
            cache: ConfigCache::new(),
        }
    }

    fn ensure_open(&mut self, errors: &mut Vec<String>) {
        if self.store.is_some()
            || self
                .last_open_failure
                .is_some_and(|t| t.elapsed() < REOPEN_DELAY)
        {
            return;
        }
        // The file's identity before and after the open: if they differ, the file was replaced
        // meanwhile and which one SQLite holds is unknown, so the next check reopens.
        let path = match &self.db {
            DbLocation::Sqlite(path) => Some(path.clone()),
            _ => None,
        };
        let before = path.as_deref().and_then(reload::file_id);
        match open_store(&self.db, self.synchronous) {
            Ok(opened) => {
                let after = path.as_deref().and_then(reload::file_id);
                self.opened_file = after.filter(|id| before.is_none_or(|b| b == *id));
                // Another file may now be behind the location: read the configuration afresh.
                self.cache.clear();
                self.store = Some(opened);
                self.last_open_failure = None;
            }
            Err(err) => {
                errors.push(format!("cannot open the database, mail passes: {err}"));
                self.last_open_failure = Some(Instant::now());
            }
        }
    }

    /// Reopens at once when the SQLite file at the path is not the one this connection opened.
    fn check_replaced(&mut self, notes: &mut Vec<String>, errors: &mut Vec<String>) {
        let DbLocation::Sqlite(path) = &self.db else {
            // A PostgreSQL server keeps its database whatever happens to local files.
            return;
        };
        let current = reload::file_id(path);
        if self.abandon_if_replaced(current, notes) {
            self.ensure_open(errors);
            if self.store.is_some() {
                notes.push(format!("database {} reopened", self.db));
            }
        }
    }

    /// Closes the store when its SQLite file is not `current`, the file now at the path; true
    /// when it did. The next [`Connection::ensure_open`] opens the file at the path (creating
    /// it if there is none).
    fn abandon_if_replaced(&mut self, current: Option<FileId>, notes: &mut Vec<String>) -> bool {
        if !matches!(self.db, DbLocation::Sqlite(_)) || self.store.is_none() {
            // Not open: the next batch opens whatever is there.
            return false;
        }
        if !reload::must_reopen(self.opened_file, current) {
            return false;
        }
        notes.push(reload::replaced_line(&self.db, current));
        if let Some(mut old) = self.store.take() {
            old.abandon_replaced();
        }
        self.last_open_failure = None;
        true
    }

    /// Closes the store; the next [`Connection::ensure_open`] opens `db`.
    fn close(&mut self, db: DbLocation) {
        self.db = db;
        self.store = None;
        self.last_open_failure = None;
    }

    /// Closes the store and opens `db` (which may be the same location) at once.
    fn reopen(&mut self, db: DbLocation, notes: &mut Vec<String>, errors: &mut Vec<String>) {
        self.close(db);
        self.ensure_open(errors);
        if self.store.is_some() {
            notes.push(format!("database {} opened", self.db));
        }
    }

    /// Decides `batch` in one transaction. `Err` carries why the store failed.
    fn decide(
        &mut self,
        batch: &[(&Message, i64)],
        errors: &mut Vec<String>,
    ) -> Result<Vec<Checked>, String> {
        self.ensure_open(errors);
        let Some(store) = self.store.as_mut() else {
            return Err("database unavailable".to_string());
        };
        let cache = &mut self.cache;
        let component = self.component;
        // A panic inside the transaction must not leave it open nor kill the server: it is
        // caught here, the connection dropped (which rolls the transaction back, also on
        // PostgreSQL, whose server ends a closed session's transaction) with the cached
        // configuration, and both are opened afresh for the next batch.
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            store.write_with(|tx| {
                let outcomes = engine::check_messages_with_dns(tx, cache, component, batch)?;
                #[cfg(test)]
                panic_hook(batch);
                Ok(outcomes)
            })
        }));
        let result = match result {
            Ok(result) => result,
            Err(payload) => {
                let why = format!(
                    "panic while deciding: {}",
                    super::decide::panic_text(payload.as_ref())
                );
                errors.push(format!(
                    "{why}; its {} request{} pass, the database connection is reopened",
                    batch.len(),
                    if batch.len() == 1 { "" } else { "s" }
                ));
                self.store = None;
                self.cache.clear();
                return Err(why);
            }
        };
        match result {
            Ok(outcomes) => Ok(outcomes),
            Err(err) => {
                let text = err.to_string();
                errors.push(format!("database error, mail passes: {text}"));
                // Reopen on the next batch: the file may have been replaced or repaired.
                self.store = None;
                Err(text)
            }
        }
    }
}

/// Opens the store with the durability the server was asked for.
fn open_store(db: &DbLocation, synchronous: Synchronous) -> Result<Box<dyn Store>, String> {
    match db {
        DbLocation::Sqlite(path) => {
            let sqlite = SqliteStore::open(path).map_err(|e| e.to_string())?;
            // Checkpoint every WAL_AUTOCHECKPOINT_PAGES instead of SQLite's 1,000: a page
            // changed several times within the window is copied into the database once, and
            // fewer checkpoints read the log back (measured on 100,000 requests against
            // 1,000,000 triplets: 15 % fewer writes, 55 % fewer reads). The log file then
            // grows to about 40 MiB and is reused from its start after each checkpoint.
            sqlite
                .set_durability(synchronous == Synchronous::Full, WAL_AUTOCHECKPOINT_PAGES)
                .map_err(|e| e.to_string())?;
            Ok(Box::new(sqlite))
        }
        other => store::open(other).map_err(|e| e.to_string()),
    }
}

/// A recipient whose decision panics inside the store transaction, after its writes (tests
/// only: the real inputs that used to panic no longer do).
#[cfg(test)]
pub(super) const PANIC_RECIPIENT: &str = "panic-in-transaction@hook.invalid";

#[cfg(test)]
fn panic_hook(batch: &[(&Message, i64)]) {
    if batch
        .iter()
        .any(|(m, _)| m.recipients.iter().any(|r| r == PANIC_RECIPIENT))
    {
        panic!("test hook: {PANIC_RECIPIENT}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(ip: &str, recipient: &str) -> Message {
        Message {
            client_ip: Some(ip.parse().expect("ip")),
            client_name: None,
            sender: "s@example.org".to_string(),
            recipients: vec![recipient.to_string()],
            authenticated: false,
            ..Message::default()
        }
    }

    fn triplets(db: &DbLocation) -> usize {
        let mut store = store::open(db).expect("open");
        store
            .read_with(|tx| Ok(tx.live_triplets(i64::MIN)?.len()))
            .expect("read")
    }

    // A panic inside the transaction fails the batch open (every request Err), rolls back what
    // the batch wrote, leaves no lock behind, and the next batch is decided on a fresh
    // connection — with one connection and with a pool.
    #[test]
    fn a_panic_in_the_transaction_rolls_back_and_the_next_batch_is_decided() {
        for connections in [1, 2] {
            let dir = tempfile::tempdir().expect("tempdir");
            let db = DbLocation::Sqlite(dir.path().join("g.db"));
            let mut log = Logger::stderr(crate::logging::Fallback::Stderr);
            let mut decider = BatchDecider::new(
                db.clone(),
                Synchronous::Normal,
                connections,
                engine::Component::Policyd,
                &mut log,
            );
            let ok = message("192.0.2.1", "u@example.com");
            let bad = message("192.0.2.2", PANIC_RECIPIENT);
            let decided = decider.decide(&[(&ok, 1_000), (&bad, 1_000)], &mut log);
            assert_eq!(decided.len(), 2);
            assert!(
                decided.iter().all(|d| d
                    .as_ref()
                    .is_err_and(|e| e.contains("panic while deciding"))),
                "{connections}: {decided:?}"
            );
            assert_eq!(triplets(&db), 0, "the panicked batch was rolled back");
            // Nothing holds the write lock: another connection writes at once.
            let mut other = store::open(&db).expect("open");
            other.write(&mut |_| Ok(())).expect("no lock left behind");
            drop(other);
            let next = message("192.0.2.3", "v@example.com");
            let decided = decider.decide(&[(&next, 1_000)], &mut log);
            assert_eq!(
                decided[0]
                    .as_ref()
                    .ok()
                    .and_then(Checked::decided)
                    .expect("decided")
                    .verdict
                    .as_str(),
                "defer"
            );
            assert_eq!(triplets(&db), 1);
        }
    }

    // Senders that share a triplet sender (DESIGN.md §4 normalisation) share a worker, so the
    // PostgreSQL triplet lock (client, sender) is never wanted by two workers at once.
    #[test]
    fn normalised_senders_share_a_shard() {
        for workers in 1..=8 {
            assert_eq!(
                shard("Bob+news@Example.com", workers),
                shard("bob@example.com", workers)
            );
            assert_eq!(
                shard("prvs=1234567890=bob@example.com", workers),
                shard("bob@example.com", workers)
            );
            assert!(shard("anyone@example.org", workers) < workers);
        }
    }

    #[test]
    fn a_failed_transaction_fails_every_request_of_its_part() {
        let spread = spread(Err("down".to_string()), 3);
        assert_eq!(spread.len(), 3);
        assert!(
            spread
                .iter()
                .all(|d| d.as_ref().is_err_and(|e| e == "down"))
        );
    }

    // A pool decides a batch on several connections and returns the outcomes in request order.
    #[test]
    fn pool_answers_in_request_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = DbLocation::Sqlite(dir.path().join("g.db"));
        let mut log = Logger::stderr(crate::logging::Fallback::Stderr);
        let mut decider = BatchDecider::new(
            db,
            Synchronous::Normal,
            3,
            engine::Component::Policyd,
            &mut log,
        );
        let messages: Vec<Message> = (0..12)
            .map(|i| Message {
                client_ip: Some(format!("192.0.2.{i}").parse().expect("ip")),
                client_name: None,
                sender: format!("s{}@example.org", ["a", "b", "c", "d"][i % 4]),
                recipients: vec![format!("r{i}@example.com")],
                authenticated: i % 3 == 0,
                ..Message::default()
            })
            .collect();
        let batch: Vec<(&Message, i64)> = messages.iter().map(|m| (m, 1_000)).collect();
        let decided = decider.decide(&batch, &mut log);
        assert_eq!(decided.len(), 12);
        for (i, d) in decided.iter().enumerate() {
            let outcome = d.as_ref().ok().and_then(Checked::decided).expect("decided");
            assert_eq!(outcome.recipients[0].recipient, format!("r{i}@example.com"));
            let expected = if i % 3 == 0 { "pass" } else { "defer" };
            assert_eq!(outcome.verdict.as_str(), expected, "request {i}");
        }
    }
}
