//! One PostgreSQL transaction: `BEGIN` to `COMMIT` (or `ROLLBACK`) around the caller's closure,
//! and the [`Tx`] it hands the closure, whose methods are in the modules by concept next to
//! this one.

use std::net::IpAddr;

use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::{Conn, Context, wait};
use crate::config::{ListKind, Settings};
use crate::dns::{Forward, ZoneAnswer};
use crate::store::dns_cache;
use crate::store::{
    DecisionCount, LiveTriplet, LogEntry, StoreError, Triplet, TripletCounts, TripletKey, Tx, rows,
};

pub(super) enum Attempt {
    BeginFailed(StoreError),
    Done(Result<(), StoreError>),
}

pub(super) fn attempt(
    runtime: &Runtime,
    context: &Context,
    conn: &mut Conn,
    writing: bool,
    f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
) -> Attempt {
    // Writes use READ COMMITTED plus explicit locks (see `PgTx::triplet`); reads get one
    // consistent snapshot.
    let begin = if writing {
        "BEGIN ISOLATION LEVEL READ COMMITTED"
    } else {
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    };
    if let Err(err) = wait(
        runtime,
        context,
        (&mut conn.broken, &mut conn.last_state),
        conn.client.batch_execute(begin),
    ) {
        return Attempt::BeginFailed(err);
    }
    let mut tx = PgTx {
        runtime,
        context,
        conn,
        writing,
        failed: false,
        settings_read: None,
        lists_read: None,
        triplet_locks: Vec::new(),
    };
    let result = f(&mut tx);
    let failed = tx.failed;
    let conn = tx.conn;
    if conn.broken {
        return Attempt::Done(result.and(Err(context.timed_out())));
    }
    let finish = match (&result, failed) {
        (Ok(()), false) => "COMMIT",
        _ => "ROLLBACK",
    };
    let finished = wait(
        runtime,
        context,
        (&mut conn.broken, &mut conn.last_state),
        conn.client.batch_execute(finish),
    );
    Attempt::Done(match (result, failed) {
        (Err(err), _) => Err(err),
        // A statement failed but the closure carried on: PostgreSQL aborted the transaction.
        (Ok(()), true) => Err(StoreError::Postgres {
            location: context.shown.clone(),
            message: "transaction aborted by an earlier error".to_string(),
        }),
        (Ok(()), false) => finished,
    })
}

/// The [`Tx`] of a PostgreSQL transaction.
pub(super) struct PgTx<'a> {
    pub(super) runtime: &'a Runtime,
    pub(super) context: &'a Context,
    pub(super) conn: &'a mut Conn,
    pub(super) writing: bool,
    /// A statement failed: the transaction is aborted and must not be committed.
    pub(super) failed: bool,
    /// The settings as read in this transaction, so `set_settings` writes only what changed.
    pub(super) settings_read: Option<Vec<(String, String)>>,
    /// Every list of one owner, read in one round trip by the first `list` call for that owner
    /// (a message check reads all four server lists, then both of a mailbox's): saves round
    /// trips, which is where the time goes (docs/BENCHMARKS.md). Any list edit clears it.
    pub(super) lists_read: Option<(String, Vec<(String, String)>)>,
    /// The (client, sender) pairs whose triplet lock this transaction holds.
    pub(super) triplet_locks: Vec<(String, String)>,
}

pub(super) type Params<'p> = [&'p (dyn ToSql + Sync)];

impl PgTx<'_> {
    pub(super) fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.conn.statements.get(sql) {
            return Ok(statement.clone());
        }
        let conn = &mut *self.conn;
        let statement = wait(
            self.runtime,
            self.context,
            (&mut conn.broken, &mut conn.last_state),
            conn.client.prepare(sql),
        )
        .inspect_err(|_| self.failed = true)?;
        self.conn.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        let conn = &mut *self.conn;
        wait(
            self.runtime,
            self.context,
            (&mut conn.broken, &mut conn.last_state),
            conn.client.query(&statement, params),
        )
        .inspect_err(|_| self.failed = true)
    }

    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        let conn = &mut *self.conn;
        wait(
            self.runtime,
            self.context,
            (&mut conn.broken, &mut conn.last_state),
            conn.client.execute(&statement, params),
        )
        .inspect_err(|_| self.failed = true)
    }
}

pub(super) fn triplet_from(row: &Row, offset: usize) -> Triplet {
    rows::triplet(row, offset).unwrap_or_else(|never| match never {})
}

impl Tx for PgTx<'_> {
    fn config_stamp(&mut self) -> Result<Option<i64>, StoreError> {
        PgTx::config_stamp(self)
    }

    fn settings(&mut self) -> Result<Settings, StoreError> {
        PgTx::settings(self)
    }

    fn settings_for_update(&mut self) -> Result<Settings, StoreError> {
        PgTx::settings_for_update(self)
    }

    fn set_settings(&mut self, settings: &Settings) -> Result<(), StoreError> {
        PgTx::set_settings(self, settings)
    }

    fn list(&mut self, kind: ListKind, owner: &str) -> Result<Vec<String>, StoreError> {
        PgTx::list(self, kind, owner)
    }

    fn pattern_notices(&mut self) -> Result<Vec<String>, StoreError> {
        PgTx::pattern_notices(self)
    }

    fn clear_pattern_notices(&mut self) -> Result<(), StoreError> {
        PgTx::clear_pattern_notices(self)
    }

    fn add_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        PgTx::add_pattern(self, kind, owner, pattern)
    }

    fn delete_pattern(
        &mut self,
        kind: ListKind,
        owner: &str,
        pattern: &str,
    ) -> Result<(), StoreError> {
        PgTx::delete_pattern(self, kind, owner, pattern)
    }

    fn domain_status(&mut self, domain: &str) -> Result<Option<bool>, StoreError> {
        PgTx::domain_status(self, domain)
    }

    fn set_domain_status(&mut self, domain: &str, enabled: bool) -> Result<(), StoreError> {
        PgTx::set_domain_status(self, domain, enabled)
    }

    fn domains(&mut self) -> Result<Vec<(String, bool)>, StoreError> {
        PgTx::domains(self)
    }

    fn delete_domain(&mut self, domain: &str) -> Result<(), StoreError> {
        PgTx::delete_domain(self, domain)
    }

    fn mailboxes(&mut self) -> Result<Vec<String>, StoreError> {
        PgTx::mailboxes(self)
    }

    fn triplet(&mut self, key: &TripletKey) -> Result<Option<Triplet>, StoreError> {
        PgTx::triplet(self, key)
    }

    fn put_triplet(
        &mut self,
        key: &TripletKey,
        network: &str,
        triplet: &Triplet,
    ) -> Result<(), StoreError> {
        PgTx::put_triplet(self, key, network, triplet)
    }

    fn awl_passes(&mut self, network: &str, now: i64) -> Result<u64, StoreError> {
        PgTx::awl_passes(self, network, now)
    }

    fn awl_passes_up_to(
        &mut self,
        network: &str,
        now: i64,
        enough: u64,
    ) -> Result<u64, StoreError> {
        PgTx::awl_passes_up_to(self, network, now, enough)
    }

    fn purge_expired(&mut self, now: i64) -> Result<u64, StoreError> {
        PgTx::purge_expired(self, now)
    }

    fn dns_cache_get(
        &mut self,
        ip: IpAddr,
        zones: &[String],
        now: i64,
    ) -> Result<Vec<ZoneAnswer>, StoreError> {
        dns_cache::zone_answers(self, ip, zones, now)
    }

    fn dns_cache_put(
        &mut self,
        ip: IpAddr,
        answers: &[ZoneAnswer],
        now: i64,
    ) -> Result<(), StoreError> {
        dns_cache::put_zone_answers(self, ip, answers, now)
    }

    fn forward_cache_get(
        &mut self,
        ip: IpAddr,
        name: &str,
        now: i64,
    ) -> Result<Option<Forward>, StoreError> {
        dns_cache::forward_answer(self, ip, name, now)
    }

    fn forward_cache_put(
        &mut self,
        ip: IpAddr,
        name: &str,
        forward: Forward,
        now: i64,
    ) -> Result<(), StoreError> {
        dns_cache::put_forward_answer(self, ip, name, forward, now)
    }

    fn live_triplets(&mut self, now: i64) -> Result<Vec<LiveTriplet>, StoreError> {
        PgTx::live_triplets(self, now)
    }

    fn log_decision(&mut self, entry: &LogEntry) -> Result<(), StoreError> {
        PgTx::log_decision(self, entry)
    }

    fn count_decisions(&mut self, counts: &[DecisionCount]) -> Result<(), StoreError> {
        PgTx::count_decisions(self, counts)
    }

    fn decision_counters(&mut self) -> Result<Vec<DecisionCount>, StoreError> {
        PgTx::decision_counters(self)
    }

    fn decision_log(&mut self, since: i64) -> Result<Vec<LogEntry>, StoreError> {
        PgTx::decision_log(self, since)
    }

    fn purge_decision_log(&mut self, before: i64, limit: Option<u64>) -> Result<u64, StoreError> {
        PgTx::purge_decision_log(self, before, limit)
    }

    fn triplet_counts(&mut self, now: i64, awl_count: u32) -> Result<TripletCounts, StoreError> {
        PgTx::triplet_counts(self, now, awl_count)
    }

    fn purge_expired_batch(&mut self, now: i64, limit: u64) -> Result<u64, StoreError> {
        PgTx::purge_expired_batch(self, now, limit)
    }
}
