//! Finding the database (DESIGN.md §1): `--db` > `GREY_LISTING_DB` > `db =` in the configuration file
//! > `/var/lib/grey_listing/greylist.db`.

use std::path::PathBuf;

use super::StoreError;
use crate::conf_file::{self, ConfFile};

/// The default SQLite database.
pub(super) const DEFAULT_DB: &str = "/var/lib/grey_listing/greylist.db";

/// A resolved database location.
#[derive(Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

impl DbLocation {
    /// Classifies a location string: `postgres://`/`postgresql://` URLs and key=value
    /// connection strings (`host=... dbname=...`), else a file path.
    ///
    /// The scheme is read ignoring case (`POSTGRES://` is written back as `postgres://`). A
    /// value that starts with the scheme and `:` but not `://` (`postgres:/u:pw@h/db`) is a
    /// mistyped URL, never a file path: it is kept as a PostgreSQL location, shown redacted, and
    /// [`resolve_location`] refuses it.
    pub fn parse(value: &str) -> DbLocation {
        if let Some(rest) = strip_scheme_ignoring_case(value, "://") {
            let scheme = &value[..value.len() - rest.len() - 3];
            return DbLocation::Postgres(format!("{}://{rest}", scheme.to_ascii_lowercase()));
        }
        if mistyped_scheme(value).is_some()
            || super::pgurl::is_url(value)
            || super::pgurl::is_key_value(value)
        {
            DbLocation::Postgres(value.to_string())
        } else {
            DbLocation::Sqlite(PathBuf::from(
                value.strip_prefix("sqlite://").unwrap_or(value),
            ))
        }
    }
}

/// Redacted like [`Display`](std::fmt::Display): a `{:?}` must not show a password either.
impl std::fmt::Debug for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::Sqlite(path) => f.debug_tuple("Sqlite").field(path).finish(),
            DbLocation::Postgres(url) => f.debug_tuple("Postgres").field(&redact(url)).finish(),
        }
    }
}

impl std::fmt::Display for DbLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbLocation::Sqlite(path) => write!(f, "{}", path.display()),
            DbLocation::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// Hides the password of a PostgreSQL connection string (`postgres://user:secret@host` →
/// `postgres://user:***@host`, `password=` in a URL's query or a key=value string), reading it
/// exactly as the driver does so no character of a password is ever shown. A mistyped URL
/// (`postgres:/u:secret@h`) cannot be read like that: all of it after the scheme is hidden.
pub fn redact(url: &str) -> String {
    match mistyped_scheme(url) {
        Some(scheme) => format!("{scheme}:***"),
        None => super::pgurl::redact(url),
    }
}

const SCHEMES: [&str; 2] = ["postgresql", "postgres"];

/// What follows `<scheme><separator>` when `value` starts with a PostgreSQL scheme in any case.
fn strip_scheme_ignoring_case<'a>(value: &'a str, separator: &str) -> Option<&'a str> {
    SCHEMES.iter().find_map(|scheme| {
        let head = value.get(..scheme.len())?;
        let rest = value.get(scheme.len()..)?;
        if head.eq_ignore_ascii_case(scheme) {
            rest.strip_prefix(separator)
        } else {
            None
        }
    })
}

/// The scheme as written when `value` is `postgres:` or `postgresql:` (any case) not followed
/// by `//`.
fn mistyped_scheme(value: &str) -> Option<&str> {
    let rest = strip_scheme_ignoring_case(value, ":")?;
    if rest.starts_with("//") {
        return None;
    }
    Some(&value[..value.len() - rest.len() - 1])
}

/// Resolves the database location from the command line value, the environment and the
/// configuration file, which is read (and checked whole) only when neither of the first two
/// names the database. `env` is passed in so tests and the filter's bare environment are
/// explicit.
pub fn resolve_location(
    cli: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<DbLocation, StoreError> {
    let location = match explicit_location(cli, env) {
        Some(location) => location,
        None => location_with_conf(cli, env, &conf_file::read_conf(env)?),
    };
    refuse_mistyped(location)
}

/// The database location of a daemon (the policy server, the milter), at start and on SIGHUP:
/// as [`resolve_location`], but the configuration file is read and checked whole whatever
/// `--db` and the environment say. It also holds the DNS resolver, and a file broken while a
/// daemon runs is found by the next SIGHUP, as at start, rather than at the next restart.
pub fn daemon_location(
    cli: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<DbLocation, StoreError> {
    refuse_mistyped(location_with_conf(cli, env, &conf_file::read_conf(env)?))
}

/// `location`, unless it is a PostgreSQL URL with a mistyped scheme (`postgres:/…`), which
/// would fail every connection later with a less helpful error.
fn refuse_mistyped(location: DbLocation) -> Result<DbLocation, StoreError> {
    if let DbLocation::Postgres(value) = &location
        && mistyped_scheme(value).is_some()
    {
        return Err(StoreError::Unsupported(format!(
            "{}: a PostgreSQL URL starts with postgres:// or postgresql://",
            redact(value)
        )));
    }
    Ok(location)
}

/// The location when the configuration file has been read already.
fn location_with_conf(
    cli: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    conf: &ConfFile,
) -> DbLocation {
    explicit_location(cli, env)
        .or_else(|| conf.db.as_deref().map(DbLocation::parse))
        .unwrap_or_else(|| DbLocation::Sqlite(PathBuf::from(DEFAULT_DB)))
}

/// `--db`, else a non-empty `GREY_LISTING_DB`.
fn explicit_location(
    cli: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<DbLocation> {
    if let Some(value) = cli {
        return Some(DbLocation::parse(value));
    }
    env("GREY_LISTING_DB")
        .filter(|v| !v.is_empty())
        .map(|value| DbLocation::parse(&value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_schemes_ignore_case_and_mistyped_ones_are_refused() {
        let none = |_: &str| None;
        assert_eq!(
            DbLocation::parse("POSTGRES://u:PW@h:1/db"),
            DbLocation::Postgres("postgres://u:PW@h:1/db".to_string())
        );
        assert_eq!(
            DbLocation::parse("PostgreSQL://h/db"),
            DbLocation::Postgres("postgresql://h/db".to_string())
        );
        for value in [
            "postgres:/u:PW@h/db",
            "postgresql:u:PW@h",
            "POSTGRES:u:PW@h",
        ] {
            let location = DbLocation::parse(value);
            assert!(matches!(location, DbLocation::Postgres(_)), "{value}");
            assert!(!location.to_string().contains("PW"), "{location}");
            assert!(!format!("{location:?}").contains("PW"), "{location:?}");
            let err = resolve_location(Some(value), &none)
                .unwrap_err()
                .to_string();
            assert!(err.contains("postgres://") && !err.contains("PW"), "{err}");
        }
        // A file whose name merely starts with the word stays a file.
        assert_eq!(
            DbLocation::parse("postgres.db"),
            DbLocation::Sqlite(PathBuf::from("postgres.db"))
        );
    }

    #[test]
    fn precedence_cli_env_conf_default() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("g.conf");
        std::fs::write(&conf, "# comment\ndb = /srv/from-conf.db\n").unwrap();
        let conf_str = conf.to_str().unwrap().to_string();
        let with_env = |db: Option<&str>| {
            let db = db.map(str::to_string);
            let conf_str = conf_str.clone();
            move |name: &str| match name {
                "GREY_LISTING_DB" => db.clone(),
                "GREY_LISTING_CONF" => Some(conf_str.clone()),
                _ => None,
            }
        };
        assert_eq!(
            resolve_location(Some("/a.db"), &with_env(Some("/b.db"))).unwrap(),
            DbLocation::Sqlite("/a.db".into())
        );
        assert_eq!(
            resolve_location(None, &with_env(Some("/b.db"))).unwrap(),
            DbLocation::Sqlite("/b.db".into())
        );
        assert_eq!(
            resolve_location(None, &with_env(None)).unwrap(),
            DbLocation::Sqlite("/srv/from-conf.db".into())
        );
        let empty = |name: &str| (name == "GREY_LISTING_CONF").then(|| "/dev/null".to_string());
        assert_eq!(
            resolve_location(None, &empty).unwrap(),
            DbLocation::Sqlite(DEFAULT_DB.into())
        );
        // A file named by GREY_LISTING_CONF must exist, but is read only when needed.
        let missing =
            |name: &str| (name == "GREY_LISTING_CONF").then(|| "/nonexistent/x.conf".to_string());
        assert!(matches!(
            resolve_location(None, &missing),
            Err(StoreError::Config(_))
        ));
        assert_eq!(
            resolve_location(Some("/a.db"), &missing).unwrap(),
            DbLocation::Sqlite("/a.db".into())
        );
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
        assert_eq!(
            redact("postgresql://u:p@w@h/db?password=x&connect_timeout=2"),
            "postgresql://u:***@h/db?password=***&connect_timeout=2"
        );
        assert_eq!(redact("postgres://u@h"), "postgres://u@h");
        let location = DbLocation::parse("postgres://u:S3cr/et?PW@h/db");
        assert_eq!(
            format!("{location:?}"),
            r#"Postgres("postgres://u:***@h/db")"#
        );
        assert_eq!(location.to_string(), "postgres://u:***@h/db");
    }

    #[test]
    fn key_value_connection_strings_are_postgres() {
        let location = DbLocation::parse("host=db.example.net user=gl password='a b'");
        assert!(matches!(location, DbLocation::Postgres(_)));
        assert_eq!(
            location.to_string(),
            "host=db.example.net user=gl password=***"
        );
        assert!(matches!(
            DbLocation::parse("greylist.db"),
            DbLocation::Sqlite(_)
        ));
    }
}
