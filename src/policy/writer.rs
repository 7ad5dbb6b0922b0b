//! The single database writer: connection threads send it their requests through a channel; it
//! decides whatever has queued up in ONE write transaction (group commit) and answers each
//! request only after that transaction committed, so every answered decision is stored.

use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::time::{Duration, Instant};

use crate::engine::{self, Message, MessageOutcome};
use crate::store::{self, DbLocation, SqliteStore, Store};

use super::{SharedLogger, Synchronous};

/// Most requests decided in one transaction: bounds the latency a batch adds.
pub const MAX_BATCH: usize = 256;

/// How long after a failed open the writer waits before trying again (requests meanwhile pass).
const REOPEN_DELAY: Duration = Duration::from_secs(1);

/// One request for the writer.
pub struct Job {
    /// The message (one recipient).
    pub message: Message,
    /// Decision time.
    pub now: i64,
    /// Where the outcome goes; `Err` means the store failed and the caller fails open.
    pub reply: Sender<Result<MessageOutcome, String>>,
}

/// Opens the store with the durability the server was asked for.
fn open_store(db: &DbLocation, synchronous: Synchronous) -> Result<Box<dyn Store>, String> {
    match db {
        DbLocation::Sqlite(path) => {
            let sqlite = SqliteStore::open(path).map_err(|e| e.to_string())?;
            let mode = match synchronous {
                Synchronous::Full => "FULL",
                Synchronous::Normal => "NORMAL",
            };
            sqlite
                .connection()
                .pragma_update(None, "synchronous", mode)
                .map_err(|e| format!("database {}: {e}", path.display()))?;
            Ok(Box::new(sqlite))
        }
        other => store::open(other).map_err(|e| e.to_string()),
    }
}

/// Runs until every sender of `jobs` is gone (the server stopped and its connections finished).
pub fn run_writer(
    db: DbLocation,
    synchronous: Synchronous,
    jobs: Receiver<Job>,
    log: SharedLogger,
) {
    let mut store: Option<Box<dyn Store>> = None;
    let mut last_open_failure: Option<Instant> = None;
    let mut open = |store: &mut Option<Box<dyn Store>>| {
        if store.is_some() {
            return;
        }
        if last_open_failure.is_some_and(|t| t.elapsed() < REOPEN_DELAY) {
            return;
        }
        match open_store(&db, synchronous) {
            Ok(opened) => {
                *store = Some(opened);
                last_open_failure = None;
            }
            Err(err) => {
                log.error(&format!("cannot open the database, mail passes: {err}"));
                last_open_failure = Some(Instant::now());
            }
        }
    };
    open(&mut store);
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        open(&mut store);
        let Some(db) = store.as_mut() else {
            fail_batch(batch, "database unavailable");
            continue;
        };
        let pairs: Vec<(&Message, i64)> = batch.iter().map(|j| (&j.message, j.now)).collect();
        let mut outcomes = Vec::new();
        let result = db.write(&mut |tx| {
            outcomes = engine::check_messages_in_tx(tx, &pairs)?;
            Ok(())
        });
        drop(pairs);
        match result {
            Ok(()) => {
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    // A connection that went away meanwhile simply misses its answer.
                    let _ = job.reply.send(Ok(outcome));
                }
            }
            Err(err) => {
                let text = err.to_string();
                log.error(&format!("database error, mail passes: {text}"));
                // Reopen on the next batch: the file may have been replaced or repaired.
                store = None;
                fail_batch(batch, &text);
            }
        }
    }
}

fn fail_batch(batch: Vec<Job>, why: &str) {
    for job in batch {
        let _ = job.reply.send(Err(why.to_string()));
    }
}
