//! A small builder for CLI cases: each test reads as the command an admin types and the exact
//! text they see (in the spirit of just's `Test::new().args(..).stdout(..).status(..)`).

pub(crate) mod daemon;
pub(crate) mod ext;
pub(crate) mod filter;
pub(crate) mod milter;
pub(crate) mod openmetrics;
pub(crate) mod unprivileged;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering};

use assert_cmd::Command;
use tempfile::TempDir;

/// `--info-server` on a new database, exactly as DESIGN.md §2 prints it.
pub(crate) const INFO_SERVER_DEFAULTS: &str = "\
Grey listing configuration.

Grey listing checking  enabled
Grey interval          5 minutes
Expire interval        51840 minutes
Penalty interval       2 minutes
Penalty                disabled
Personal grey listing configuration allowed

Server-wide black list:

Server-wide white list:

White domains patterns list:
*.office365.com
*.outlook.com
*.outlook.office.com
*facebook.com
*google.com
*mail.ru
*parallels.com
*plesk.com
*rambler.ru
*yahoo.com
*yandex.ru

Black domains patterns list:
dsl|broadband|hsd
dynamic|ppp|dyn-ip|dial-up

SUCCESS: Gathering of server wide information complete.
";

/// DESIGN.md §2's SUCCESS line of `--update-server`.
pub(crate) const SERVER_UPDATED: &str = "SUCCESS: Update of server-wide settings complete.\n";

/// SQL that turns an SQLite database of the current schema back into the shape schema 3 had
/// (before migrations 4 and 5): the triplet indexes of then, no `passed` flag, no purge cursor,
/// no pattern notices. For tests of the migrations; run it on a database without triplets.
pub(crate) const UNDO_SCHEMA_4: &str = "DROP TABLE pattern_notices;
     DROP INDEX triplets_awl;
     ALTER TABLE triplets DROP COLUMN passed;
     DROP TABLE purge_cursor;
     CREATE INDEX triplets_awl ON triplets (network, expires) WHERE pass_count > 0;
     CREATE INDEX triplets_expires ON triplets (expires);
     PRAGMA user_version = 3;";

/// Every stored triplet (expired ones included) of the database at `location` (a path or a
/// PostgreSQL URL), read through the store API so the same assertion holds on both stores.
pub(crate) fn stored_triplets(location: &str) -> Vec<grey_listing::store::LiveTriplet> {
    let mut store =
        grey_listing::store::open(&grey_listing::store::DbLocation::parse(location)).unwrap();
    let mut rows = Vec::new();
    store
        .read(&mut |tx| {
            rows = tx.live_triplets(i64::MIN)?;
            Ok(())
        })
        .unwrap();
    rows
}

/// A `grey_listing` command without any database-location environment, so the test decides
/// where the database is (a stray `GREY_LISTING_DB` or `/etc/grey_listing.conf` cannot leak in).
pub(crate) fn grey_listing() -> Command {
    let mut cmd = Command::cargo_bin("grey_listing").unwrap();
    cmd.env_remove("GREY_LISTING_DB")
        .env("GREY_LISTING_CONF", "/nonexistent/grey_listing.conf")
        .env_remove("GREY_LISTING_NOW");
    cmd
}

/// Which store a parametrised test runs against (issue 7: one behaviour suite, both stores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A new SQLite file in a temporary directory.
    Sqlite,
    /// A new database on the PostgreSQL server named by `GREY_LISTING_TEST_PG`.
    Postgres,
}

/// The environment variable naming a PostgreSQL server for the tests, as an admin URL such as
/// `postgres://postgres@127.0.0.1:5432/postgres` (tests/e2e/postgres.sh sets it).
pub(crate) const TEST_PG_ENV: &str = "GREY_LISTING_TEST_PG";

/// Declares the `sqlite` and `postgres` variants of behaviour tests written as
/// `fn name(backend: Backend)`. The PostgreSQL variants are `#[ignore]`d so a plain
/// `cargo test` needs no server; tests/e2e/postgres.sh runs them with `--ignored`, and there a
/// missing server URL makes every one of them FAIL rather than skip.
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(crate::support::Backend::Sqlite)
                }
            )*
        }
        #[cfg(feature = "postgres")]
        mod postgres {
            $(
                #[test]
                #[ignore = "needs PostgreSQL in GREY_LISTING_TEST_PG: run tests/e2e/postgres.sh"]
                fn $name() {
                    super::$name(crate::support::Backend::Postgres)
                }
            )*
        }
    };
}

/// The admin URL of the test server; panics (fails the test) when it is not set.
pub(crate) fn test_pg_url() -> String {
    match std::env::var(TEST_PG_ENV) {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "{TEST_PG_ENV} is not set: PostgreSQL tests need a server URL \
             (tests/e2e/postgres.sh starts a throwaway cluster and sets it)"
        ),
    }
}

/// Runs SQL on the server as the admin URL's user.
#[cfg(feature = "postgres")]
pub(crate) use crate::pg_client::pg_admin;

/// Without the PostgreSQL store no test reaches a server: the PostgreSQL variants are not built.
#[cfg(not(feature = "postgres"))]
pub(crate) fn pg_admin(_url: &str, _sql: &str) {
    panic!("this build has no PostgreSQL support (built without the postgres feature)")
}

/// `url` with its database name replaced by `name`.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").unwrap() + 3;
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..authority_end])
}

/// A database created on the test server for one test and dropped afterwards.
pub(crate) struct PgDatabase {
    admin: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl PgDatabase {
    /// Creates `gl_test_<pid>_<n>` on the server of `GREY_LISTING_TEST_PG`.
    pub(crate) fn create() -> PgDatabase {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let admin = test_pg_url();
        let name = format!(
            "gl_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        // Two calls: a multi-statement query is one transaction, which CREATE DATABASE refuses.
        pg_admin(
            &admin,
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        pg_admin(&admin, &format!("CREATE DATABASE {name}"));
        let url = with_database(&admin, &name);
        PgDatabase { admin, name, url }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        // Best effort: a failed drop must not hide the test's own result.
        let admin = self.admin.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::panic::catch_unwind(move || pg_admin(&admin, &sql));
    }
}

/// A temporary directory and a database location on the chosen backend: the one core the CLI,
/// filter and extension fixtures ([`Test`], [`filter::Sandbox`], [`ext::Db`]) share; each adds
/// the runs its tests need.
pub(crate) struct Env {
    /// Keeps the directory alive.
    pub dir: TempDir,
    /// The SQLite database path (handed to the binaries unless the environment is on PostgreSQL).
    pub db: PathBuf,
    /// The PostgreSQL database, for an environment on that store.
    pg: Option<PgDatabase>,
}

impl Env {
    /// A fresh directory with the SQLite database at `sqlite` inside it (created by the first
    /// run), or a fresh, empty PostgreSQL database when `backend` is [`Backend::Postgres`].
    pub(crate) fn on(backend: Backend, sqlite: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join(sqlite);
        let pg = (backend == Backend::Postgres).then(PgDatabase::create);
        Env { dir, db, pg }
    }

    /// The location handed to the binaries: the SQLite path or the PostgreSQL URL.
    pub(crate) fn location(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => self.db.to_str().unwrap().to_string(),
        }
    }

    /// Opens the store at [`Env::location`] through the library.
    pub(crate) fn open(&self) -> Box<dyn grey_listing::store::Store> {
        grey_listing::store::open(&grey_listing::store::DbLocation::parse(&self.location()))
            .unwrap()
    }

    /// True on PostgreSQL (the SQLite path then names no database).
    pub(crate) fn is_postgres(&self) -> bool {
        self.pg.is_some()
    }
}

/// A temporary directory and, on PostgreSQL, a fresh database; every run gets `--db <location>`
/// (for SQLite `<dir>/g.db`).
pub(crate) struct Test {
    env: Env,
}

impl Test {
    /// A fresh directory with no SQLite database yet.
    pub(crate) fn new() -> Test {
        Test::on(Backend::Sqlite)
    }

    /// A fresh, empty database location on `backend`.
    pub(crate) fn on(backend: Backend) -> Test {
        Test {
            env: Env::on(backend, "g.db"),
        }
    }

    /// The location given with `--db`: the SQLite path or the PostgreSQL URL.
    pub(crate) fn location(&self) -> String {
        self.env.location()
    }

    /// Opens the store at [`Test::location`] through the library.
    pub(crate) fn open(&self) -> Box<dyn grey_listing::store::Store> {
        self.env.open()
    }

    /// The temporary directory.
    pub(crate) fn dir(&self) -> &Path {
        self.env.dir.path()
    }

    /// The SQLite database path (passed with `--db` unless the test runs on PostgreSQL).
    pub(crate) fn db(&self) -> PathBuf {
        self.env.db.clone()
    }

    /// Runs `grey_listing <args> --db <location>`.
    pub(crate) fn run(&self, args: &[&str]) -> Outcome {
        let mut cmd = grey_listing();
        cmd.args(args).arg("--db").arg(self.location());
        Outcome::from(cmd.output().unwrap(), args)
    }

    /// Runs `grey_listing <args>` exactly as given (the test places `--db` itself).
    pub(crate) fn run_raw(&self, args: &[&str]) -> Outcome {
        let mut cmd = grey_listing();
        cmd.args(args);
        Outcome::from(cmd.output().unwrap(), args)
    }

    /// Every file of the directory with its bytes (the database, its -wal and -shm files).
    pub(crate) fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(self.dir()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            files.insert(name, std::fs::read(entry.path()).unwrap());
        }
        files
    }
}

/// What a run printed and returned.
pub(crate) struct Outcome {
    /// The command line, for failure messages.
    pub args: Vec<String>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit status (-1 if killed by a signal).
    pub code: i32,
}

impl Outcome {
    /// Collects a finished run.
    pub(crate) fn from(output: Output, args: &[&str]) -> Outcome {
        Outcome {
            args: args.iter().map(|s| s.to_string()).collect(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
            code: output.status.code().unwrap_or(-1),
        }
    }

    /// Success: exit 0, nothing on stderr, exactly `expected` on stdout.
    #[track_caller]
    pub(crate) fn stdout(&self, expected: &str) -> &Outcome {
        assert_eq!(
            (self.code, self.stderr.as_str()),
            (0, ""),
            "grey_listing {:?} failed",
            self.args
        );
        assert_eq!(
            self.stdout, expected,
            "grey_listing {:?}: stdout differs\n--- got ---\n{}--- expected ---\n{}",
            self.args, self.stdout, expected
        );
        self
    }

    /// Success with warnings: exit 0, exactly `expected` on stdout and exactly the `warnings`
    /// lines, in order, on stderr.
    #[track_caller]
    pub(crate) fn warns(&self, expected: &str, warnings: &[&str]) -> &Outcome {
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            (self.code, lines.as_slice()),
            (0, warnings),
            "grey_listing {:?}: exit status and warnings",
            self.args
        );
        assert_eq!(
            self.stdout, expected,
            "grey_listing {:?}: stdout",
            self.args
        );
        self
    }

    /// Bad input (DESIGN.md §2): exit 1, nothing on stdout, exactly one stderr line that starts
    /// `An error occurred during` and contains every one of `names`.
    #[track_caller]
    pub(crate) fn bad_input(&self, names: &[&str]) -> &Outcome {
        self.one_error_line(1, names)
    }

    /// Database or system error (DESIGN.md §2): exit 2 and one clear stderr line containing `names`.
    #[track_caller]
    pub(crate) fn system_error(&self, names: &[&str]) -> &Outcome {
        self.one_error_line(2, names)
    }

    #[track_caller]
    fn one_error_line(&self, code: i32, names: &[&str]) -> &Outcome {
        assert_eq!(
            self.code, code,
            "grey_listing {:?}: exit status (stderr: {:?})",
            self.args, self.stderr
        );
        assert_eq!(self.stdout, "", "grey_listing {:?}: stdout", self.args);
        assert!(
            self.stderr.starts_with("An error occurred during ")
                && self.stderr.ends_with('\n')
                && self.stderr.matches('\n').count() == 1,
            "grey_listing {:?}: stderr must be one 'An error occurred during' line, got {:?}",
            self.args,
            self.stderr
        );
        for name in names {
            assert!(
                self.stderr.contains(name),
                "grey_listing {:?}: stderr {:?} does not name {name:?}",
                self.args,
                self.stderr
            );
        }
        self
    }

    /// Parses stdout as JSON (after checking the run succeeded).
    #[track_caller]
    pub(crate) fn json(&self) -> serde_json::Value {
        assert_eq!(
            (self.code, self.stderr.as_str()),
            (0, ""),
            "{:?}",
            self.args
        );
        serde_json::from_str(&self.stdout).unwrap()
    }
}
