//! The PostgreSQL schema: its migrations, in order, and the driver that applies them under an
//! advisory lock when a connection is made.

use tokio::runtime::Runtime;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

use super::{Conn, Context, LOCK_NS_SCHEMA, wait};
use crate::config::ListKind;
use crate::store::StoreError;
use crate::store::migration::{self, Step};

/// The schema version this build writes. Each entry of [`MIGRATIONS`] moves one version up.
pub(super) const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Migrations, in order: `MIGRATIONS[n]` upgrades a version-`n` database to `n + 1`. Append new
/// ones; never edit an old one. Table names carry a `gl_` prefix because the database may be
/// shared with other applications.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: settings, lists, per-domain flags and triplets (the SQLite schema's version 1).
    "CREATE TABLE gl_settings (
         name  text PRIMARY KEY,
         value text NOT NULL
     );
     CREATE TABLE gl_list_entries (
         id      bigserial PRIMARY KEY,
         list    text NOT NULL,
         owner   text NOT NULL,
         pattern text NOT NULL,
         UNIQUE (list, owner, pattern)
     );
     CREATE TABLE gl_domains (
         domain  text PRIMARY KEY,
         enabled boolean NOT NULL
     );
     CREATE TABLE gl_triplets (
         client          text NOT NULL,
         sender          text NOT NULL,
         recipient       text NOT NULL,
         network         text NOT NULL,
         first_seen      bigint NOT NULL,
         earliest_accept bigint NOT NULL,
         last_seen       bigint NOT NULL,
         expires         bigint NOT NULL,
         pass_count      bigint NOT NULL,
         PRIMARY KEY (client, sender, recipient)
     );
     CREATE INDEX gl_triplets_awl ON gl_triplets (network, expires) WHERE pass_count > 0;
     CREATE INDEX gl_triplets_expires ON gl_triplets (expires);",
    // 2: one owner's lists are read in one query (`PgTx::list`).
    "CREATE INDEX gl_list_entries_owner ON gl_list_entries (owner, id);",
    // 3: the decision log read by --report, --check and --stats (the SQLite schema's version 2).
    "CREATE TABLE gl_decision_log (
         id             bigserial PRIMARY KEY,
         time           bigint NOT NULL,
         client_network text NOT NULL,
         client_key     text NOT NULL,
         organisation   text NOT NULL,
         client_address text NOT NULL,
         client_name    text NOT NULL,
         sender         text NOT NULL,
         recipient      text NOT NULL,
         verdict        text NOT NULL,
         reason         text NOT NULL,
         pattern        text,
         delay          bigint
     );
     CREATE INDEX gl_decision_log_time ON gl_decision_log (time);",
    // 4: a configuration stamp that every write to settings, lists or domain flags changes in
    // the same transaction (statement triggers, so writes by any host and any later version
    // count), so a policy server can cache its configuration and still see every change at its
    // very next request (the SQLite schema's version 3). Random values: a database restored
    // from a backup cannot present a stamp a running server has seen with other contents.
    "CREATE TABLE gl_config_generation (
         id         integer PRIMARY KEY CHECK (id = 1),
         generation bigint NOT NULL
     );
     INSERT INTO gl_config_generation (id, generation)
         VALUES (1, (random() * 9e18)::bigint);
     CREATE FUNCTION gl_bump_config_generation() RETURNS trigger LANGUAGE plpgsql AS $$
     BEGIN
         UPDATE gl_config_generation SET generation = (random() * 9e18)::bigint WHERE id = 1;
         RETURN NULL;
     END $$;
     CREATE TRIGGER gl_settings_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
         ON gl_settings FOR EACH STATEMENT EXECUTE FUNCTION gl_bump_config_generation();
     CREATE TRIGGER gl_list_entries_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
         ON gl_list_entries FOR EACH STATEMENT EXECUTE FUNCTION gl_bump_config_generation();
     CREATE TRIGGER gl_domains_config AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
         ON gl_domains FOR EACH STATEMENT EXECUTE FUNCTION gl_bump_config_generation();",
    // 5: white host patterns now match whole names and whole-label suffixes only. The stored
    // white patterns that the new rule would warn about are recorded (by the step after this
    // one in `migrate`) so the next CLI command names them (the SQLite schema's version 5).
    "CREATE TABLE IF NOT EXISTS gl_pattern_notices (
         id      bigserial PRIMARY KEY,
         pattern text NOT NULL
     );",
    // 6: decisions counted by component, action and reason in the deciding transaction, never
    // purged (the SQLite schema's version 6). Each counter is spread over 16 rows (`shard`,
    // drawn at random per update; readers add them up): with a single row, every deciding
    // transaction of every MX would wait for the one before it to commit, as they all update
    // the same (filter, defer, new) row.
    "CREATE TABLE IF NOT EXISTS gl_decision_counters (
         component text NOT NULL,
         action    text NOT NULL,
         reason    text NOT NULL,
         shard     smallint NOT NULL,
         count     bigint NOT NULL,
         PRIMARY KEY (component, action, reason, shard)
     );",
    // 7: DNS answers cached for an hour, per client address: a DNS list zone's answer (kind
    // `zone`) or a host name's forward confirmation (kind `forward`); purged with the expired
    // triplets (the SQLite schema's version 7).
    "CREATE TABLE IF NOT EXISTS gl_dns_cache (
         address text NOT NULL,
         kind    text NOT NULL,
         name    text NOT NULL,
         answer  text NOT NULL,
         expires bigint NOT NULL,
         PRIMARY KEY (address, kind, name)
     );
     CREATE INDEX IF NOT EXISTS gl_dns_cache_expires ON gl_dns_cache (expires);",
];

/// The migration step after which stored white patterns are checked against the whole-label rule.
pub(super) const WHITE_RULE_MIGRATION: usize = 4;

/// Creates or upgrades the schema under a transaction-scoped advisory lock, so concurrent
/// first opens on several hosts do not race: the loser waits, then sees the winner's version.
pub(super) fn migrate(
    runtime: &Runtime,
    context: &Context,
    conn: &mut Conn,
) -> Result<(), StoreError> {
    let client = &conn.client;
    let mut state = (&mut conn.broken, &mut conn.last_state);
    macro_rules! run {
        ($future:expr) => {
            wait(runtime, context, (&mut *state.0, &mut *state.1), $future)
        };
    }
    // Fast path for every connection but the first: one read, no lock.
    let version = read_version(runtime, context, client, &mut state)?;
    if version == Some(SCHEMA_VERSION) {
        return Ok(());
    }
    run!(client.batch_execute("BEGIN"))?;
    let result = (|| {
        run!(client.execute("SELECT pg_advisory_xact_lock($1, 0)", &[&LOCK_NS_SCHEMA]))?;
        run!(client.batch_execute(
            "CREATE TABLE IF NOT EXISTS grey_listing_schema (version integer NOT NULL)"
        ))?;
        let version: i32 =
            run!(client.query_opt("SELECT max(version) FROM grey_listing_schema", &[]))?
                .and_then(|row| row.get::<_, Option<i32>>(0))
                .unwrap_or(0);
        migration::refuse_newer(
            &context.shown,
            i64::from(version),
            i64::from(SCHEMA_VERSION),
        )?;
        let version = version.max(0) as usize;
        for step in migration::steps(MIGRATIONS, version, WHITE_RULE_MIGRATION) {
            if let Step::Sql(sql) = step {
                run!(client.batch_execute(sql))?;
            }
            if step == Step::SeedDefaults {
                for (name, value) in migration::default_settings() {
                    run!(client.execute(
                        "INSERT INTO gl_settings (name, value) VALUES ($1, $2)",
                        &[&name, &value]
                    ))?;
                }
                for (list, pattern) in migration::default_list_entries() {
                    run!(client.execute(
                        "INSERT INTO gl_list_entries (list, owner, pattern) VALUES ($1, '', $2)",
                        &[&list, &pattern]
                    ))?;
                }
            }
            if step == Step::RecordWhiteNotices {
                let white = ListKind::DomainsWhite.as_str();
                let rows = run!(client.query(
                    "SELECT pattern FROM gl_list_entries WHERE list = $1 AND owner = '' ORDER BY id",
                    &[&white]
                ))?;
                for row in rows {
                    let pattern: String = row.get(0);
                    if migration::needs_notice(&pattern) {
                        run!(client.execute(
                            "INSERT INTO gl_pattern_notices (pattern) VALUES ($1)",
                            &[&pattern]
                        ))?;
                    }
                }
            }
        }
        run!(client.batch_execute("DELETE FROM grey_listing_schema"))?;
        run!(client.execute(
            "INSERT INTO grey_listing_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION]
        ))?;
        Ok(())
    })();
    match result {
        Ok(()) => run!(client.batch_execute("COMMIT")),
        Err(err) => {
            if !*state.0 {
                let _ = run!(client.batch_execute("ROLLBACK"));
            }
            Err(err)
        }
    }
}

pub(super) fn read_version(
    runtime: &Runtime,
    context: &Context,
    client: &Client,
    state: &mut (&mut bool, &mut Option<SqlState>),
) -> Result<Option<i32>, StoreError> {
    let exists = wait(
        runtime,
        context,
        (&mut *state.0, &mut *state.1),
        client.query_one("SELECT to_regclass('grey_listing_schema') IS NOT NULL", &[]),
    )?
    .get::<_, bool>(0);
    if !exists {
        return Ok(None);
    }
    let row = wait(
        runtime,
        context,
        (&mut *state.0, &mut *state.1),
        client.query_one("SELECT max(version) FROM grey_listing_schema", &[]),
    )?;
    let version: Option<i32> = row.get(0);
    if let Some(found) = version {
        migration::refuse_newer(&context.shown, i64::from(found), i64::from(SCHEMA_VERSION))?;
    }
    Ok(version)
}
