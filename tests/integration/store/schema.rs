//! Both stores hold one data model: after a migration to the current version, PostgreSQL's
//! tables are SQLite's with a `gl_` prefix (the database may be shared with other
//! applications), with the same columns. Indexes, triggers and the version bookkeeping
//! (SQLite's `user_version`, PostgreSQL's `grey_listing_schema` table) are left out; the few
//! columns and tables one backend adds for its own hot path are listed with the reason.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::{Backend, Test};

/// Table name → column names.
type Schema = BTreeMap<String, BTreeSet<String>>;

/// The tables and columns both backends hold.
const SHARED: &[(&str, &[&str])] = &[
    ("settings", &["name", "value"]),
    ("list_entries", &["id", "list", "owner", "pattern"]),
    ("domains", &["domain", "enabled"]),
    (
        "triplets",
        &[
            "client",
            "sender",
            "recipient",
            "network",
            "first_seen",
            "earliest_accept",
            "last_seen",
            "expires",
            "pass_count",
        ],
    ),
    (
        "decision_log",
        &[
            "id",
            "time",
            "client_network",
            "client_key",
            "organisation",
            "client_address",
            "client_name",
            "sender",
            "recipient",
            "verdict",
            "reason",
            "pattern",
            "delay",
        ],
    ),
    ("config_generation", &["id", "generation"]),
    ("pattern_notices", &["id", "pattern"]),
    (
        "decision_counters",
        &["component", "action", "reason", "count"],
    ),
    (
        "dns_cache",
        &["address", "kind", "name", "answer", "expires"],
    ),
];

/// What one backend adds to [`SHARED`] for its own hot path.
fn own(backend: Backend) -> &'static [(&'static str, &'static [&'static str])] {
    match backend {
        // `passed`: the auto-whitelist index covers passed triplets by a flag that changes only
        // on a first pass, so later passes leave the index alone; `purge_cursor`: where the
        // filter's bounded purge stopped (no expiry index to purge by).
        Backend::Sqlite => &[
            ("triplets", &["passed"]),
            ("purge_cursor", &["id", "client", "sender", "recipient"]),
        ],
        // `shard`: each counter is spread over several rows so concurrent deciding
        // transactions on several MX hosts do not all wait on one row.
        Backend::Postgres => &[("decision_counters", &["shard"])],
    }
}

fn expected(backend: Backend) -> Schema {
    let mut schema = Schema::new();
    for (table, columns) in SHARED.iter().chain(own(backend)) {
        schema
            .entry(table.to_string())
            .or_default()
            .extend(columns.iter().map(|c| c.to_string()));
    }
    schema
}

/// The tables and columns of the SQLite database at `path` (SQLite's own tables aside).
fn sqlite_schema(path: &std::path::Path) -> Schema {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT m.name, c.name FROM sqlite_master AS m, pragma_table_info(m.name) AS c
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))
        .unwrap();
    let mut schema = Schema::new();
    for row in rows {
        let (table, column) = row.unwrap();
        schema.entry(table).or_default().insert(column);
    }
    schema
}

/// The tables and columns of the PostgreSQL database at `url`, `gl_` taken off, the version
/// table aside. A table without the prefix (other than the version table) fails the test.
#[cfg(feature = "postgres")]
fn postgres_schema(url: &str) -> Schema {
    let rows = crate::pg_client::with_pg(url, async |client| {
        client
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema()",
                &[],
            )
            .await
            .unwrap()
    });
    let mut schema = Schema::new();
    for row in rows {
        let table: String = row.get(0);
        if table == "grey_listing_schema" {
            continue;
        }
        let name = table
            .strip_prefix("gl_")
            .unwrap_or_else(|| panic!("table {table} has no gl_ prefix"));
        schema
            .entry(name.to_string())
            .or_default()
            .insert(row.get(1));
    }
    schema
}

#[cfg(not(feature = "postgres"))]
fn postgres_schema(_url: &str) -> Schema {
    unreachable!("the PostgreSQL variant is not built without the postgres feature")
}

fn schemas_hold_the_same_tables_and_columns(backend: Backend) {
    let t = Test::on(backend);
    // Opening creates and migrates the schema.
    drop(t.open());
    let found = match backend {
        Backend::Sqlite => sqlite_schema(&t.db()),
        Backend::Postgres => postgres_schema(&t.location()),
    };
    assert_eq!(found, expected(backend), "{backend:?}");
}

on_both_stores!(schemas_hold_the_same_tables_and_columns);
