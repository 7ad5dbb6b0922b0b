//! One PostgreSQL transaction: `BEGIN` to `COMMIT` (or `ROLLBACK`) around the caller's closure,
//! and the [`Tx`] it hands the closure, whose concept traits are implemented in the modules by
//! concept next to this one.

use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement};

use super::{Conn, Context, wait};
use crate::store::{StoreError, Triplet, Tx, rows};

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
        let statement = self.round_trip(|client| client.prepare(sql))?;
        self.conn.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(super) fn query(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql)?;
        self.round_trip(|client| client.query(&statement, params))
    }

    pub(super) fn execute(
        &mut self,
        sql: &'static str,
        params: &Params<'_>,
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql)?;
        self.round_trip(|client| client.execute(&statement, params))
    }

    /// Waits for one call on the connection's client (within the statement timeout). A failed
    /// call marks the transaction failed: PostgreSQL has aborted it, so it must not commit.
    fn round_trip<'c, T, F>(
        &'c mut self,
        call: impl FnOnce(&'c Client) -> F,
    ) -> Result<T, StoreError>
    where
        F: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let conn = &mut *self.conn;
        let result = wait(
            self.runtime,
            self.context,
            (&mut conn.broken, &mut conn.last_state),
            call(&conn.client),
        );
        if result.is_err() {
            self.failed = true;
        }
        result
    }
}

pub(super) fn triplet_from(row: &Row, offset: usize) -> Triplet {
    rows::triplet(row, offset).unwrap_or_else(|never| match never {})
}
