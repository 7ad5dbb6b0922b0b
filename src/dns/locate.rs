//! Where the DNS resolver is. First found: the environment variable `GREY_LISTING_RESOLVER`,
//! the `resolver =` key of the configuration file, the first `nameserver` line of
//! `/etc/resolv.conf`. The value is an IP address with an optional port (`127.0.0.1`,
//! `127.0.0.1:5353`, `::1`, `[::1]:5353`; the port defaults to 53), never a host name: resolving
//! the resolver's own name would need a resolver.

use std::fmt;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::conf_file::{self, ConfError, ConfFile};
use crate::escape;

/// The environment variable naming the resolver.
pub(crate) const RESOLVER_ENV: &str = "GREY_LISTING_RESOLVER";
/// The system resolver configuration.
pub(crate) const RESOLV_CONF: &str = "/etc/resolv.conf";
/// The port of a resolver given without one.
pub(crate) const DEFAULT_PORT: u16 = 53;
/// `/etc/resolv.conf` larger than this is not read (real ones are a few hundred bytes).
const MAX_RESOLV_CONF_BYTES: u64 = 64 * 1024;

/// Where a resolver address was found, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The environment variable [`RESOLVER_ENV`].
    Env,
    /// The `resolver =` key of the configuration file.
    ConfFile,
    /// A `nameserver` line of the system resolver configuration (the file named).
    ResolvConf(PathBuf),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env => write!(f, "{RESOLVER_ENV}"),
            Origin::ConfFile => f.write_str("resolver = in the configuration file"),
            Origin::ResolvConf(path) => write!(f, "nameserver in {}", path.display()),
        }
    }
}

/// The resolver to ask and where that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// Address and port of the resolver.
    pub addr: SocketAddr,
    /// Where it was found.
    pub origin: Origin,
}

/// Why no resolver can be used. Displays as one line naming the culprit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LocateError {
    /// A value is not an IP address with an optional port.
    #[error(
        "resolver '{value}' ({origin}) is not an IP address with an optional port \
         (127.0.0.1, 127.0.0.1:5353, ::1, [::1]:5353)"
    )]
    BadValue {
        /// The value, escaped for the terminal and the log.
        value: String,
        /// Where it was found.
        origin: Origin,
    },
    /// Nothing names a resolver.
    #[error(
        "no DNS resolver: {RESOLVER_ENV} is not set, the configuration file has no resolver = \
         and {} has no nameserver line",
        path.display()
    )]
    NotFound {
        /// The system resolver configuration that was read.
        path: PathBuf,
    },
    /// The system resolver configuration exists but cannot be read.
    #[error("no DNS resolver: cannot read {}: {what}", path.display())]
    ResolvConf {
        /// The file.
        path: PathBuf,
        /// Why.
        what: String,
    },
    /// The configuration file cannot be used.
    #[error(transparent)]
    Conf(#[from] ConfError),
}

/// Parses a resolver value: an IP address (port 53) or an IP address and a port other than 0
/// (`[…]` around an IPv6 address with a port).
pub(crate) fn parse_resolver(value: &str, origin: Origin) -> Result<SocketAddr, LocateError> {
    let value = value.trim();
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    match value.parse::<SocketAddr>() {
        Ok(addr) if addr.port() != 0 => Ok(addr),
        _ => Err(LocateError::BadValue {
            value: escape::escape_terminal(value).into_owned(),
            origin,
        }),
    }
}

/// Finds the resolver from these sources, first found: `env` (`RESOLVER_ENV`, an empty value
/// counts as unset), `conf` (its `resolver =`), the first `nameserver` line of `resolv_conf`.
/// A bad value where one is found is an error: a later source is not tried, so a typo never
/// silently sends the lookups elsewhere.
pub fn locate(
    env: &dyn Fn(&str) -> Option<String>,
    conf: &ConfFile,
    resolv_conf: &Path,
) -> Result<Located, LocateError> {
    if let Some(value) = env(RESOLVER_ENV).filter(|value| !value.is_empty()) {
        let addr = parse_resolver(&value, Origin::Env)?;
        return Ok(Located {
            addr,
            origin: Origin::Env,
        });
    }
    if let Some(value) = &conf.resolver {
        let addr = parse_resolver(value, Origin::ConfFile)?;
        return Ok(Located {
            addr,
            origin: Origin::ConfFile,
        });
    }
    let origin = Origin::ResolvConf(resolv_conf.to_path_buf());
    match first_nameserver(resolv_conf)? {
        Some(value) => Ok(Located {
            addr: parse_resolver(&value, origin.clone())?,
            origin,
        }),
        None => Err(LocateError::NotFound {
            path: resolv_conf.to_path_buf(),
        }),
    }
}

/// [`locate`] with the configuration file the binaries read (see [`conf_file::read_conf`]) and
/// `RESOLV_CONF`.
pub fn locate_system(env: &dyn Fn(&str) -> Option<String>) -> Result<Located, LocateError> {
    let conf = match env(RESOLVER_ENV).filter(|value| !value.is_empty()) {
        // The environment wins; a broken configuration file is not this lookup's business.
        Some(_) => ConfFile::default(),
        None => conf_file::read_conf(env)?,
    };
    locate(env, &conf, Path::new(RESOLV_CONF))
}

/// The value of the first `nameserver` line of a resolv.conf (`None` when the file is missing
/// or has none). Comments start with `#` or `;`.
fn first_nameserver(path: &Path) -> Result<Option<String>, LocateError> {
    let unreadable = |what: String| LocateError::ResolvConf {
        path: path.to_path_buf(),
        what,
    };
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(unreadable(error.to_string())),
    };
    let mut text = String::new();
    file.take(MAX_RESOLV_CONF_BYTES)
        .read_to_string(&mut text)
        .map_err(|error| unreadable(error.to_string()))?;
    Ok(text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("nameserver"), Some(value)) => Some(value.to_string()),
            _ => None,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn resolv_conf(dir: &tempfile::TempDir, text: &str) -> PathBuf {
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, text).expect("write resolv.conf");
        path
    }

    fn conf(resolver: Option<&str>) -> ConfFile {
        ConfFile {
            db: None,
            resolver: resolver.map(str::to_string),
        }
    }

    #[test]
    fn values_with_and_without_a_port() {
        for (value, want) in [
            ("127.0.0.1", "127.0.0.1:53"),
            ("127.0.0.1:5353", "127.0.0.1:5353"),
            ("::1", "[::1]:53"),
            ("[::1]:5353", "[::1]:5353"),
        ] {
            let got = parse_resolver(value, Origin::Env).expect(value);
            assert_eq!(got.to_string(), want);
        }
        for bad in [
            "dns.example",
            "127.0.0.1:0",
            "[::1]",
            "1.2.3.4:53:53",
            "",
            "::1:53x",
        ] {
            let error = parse_resolver(bad, Origin::ConfFile).expect_err(bad);
            let text = error.to_string();
            assert!(
                text.starts_with(&format!("resolver '{bad}' (resolver = in")),
                "{text}"
            );
        }
        let error = parse_resolver("a\x1b[31m", Origin::Env).expect_err("escape");
        assert!(
            error
                .to_string()
                .contains("'a\\x1b[31m' (GREY_LISTING_RESOLVER)")
        );
    }

    #[test]
    fn env_wins_over_the_conf_file_which_wins_over_resolv_conf() {
        let dir = tempfile::tempdir().expect("tempdir");
        let system = resolv_conf(
            &dir,
            "# comment\n; other\nsearch example.org\nnameserver 10.0.0.53\nnameserver 10.0.0.54\n",
        );
        let env = |key: &str| (key == RESOLVER_ENV).then(|| "[::1]:5353".to_string());
        let found = locate(&env, &conf(Some("127.0.0.2")), &system).expect("env");
        assert_eq!(
            (found.addr.to_string(), found.origin),
            ("[::1]:5353".into(), Origin::Env)
        );
        let found = locate(&no_env, &conf(Some("127.0.0.2")), &system).expect("conf");
        assert_eq!(
            (found.addr.to_string(), found.origin),
            ("127.0.0.2:53".into(), Origin::ConfFile)
        );
        let empty_env = |_: &str| Some(String::new());
        let found = locate(&empty_env, &conf(None), &system).expect("resolv.conf");
        assert_eq!(found.addr.to_string(), "10.0.0.53:53");
        assert_eq!(found.origin, Origin::ResolvConf(system.clone()));
    }

    #[test]
    fn a_bad_value_is_an_error_not_a_fallback() {
        let dir = tempfile::tempdir().expect("tempdir");
        let system = resolv_conf(&dir, "nameserver 10.0.0.53\n");
        let env = |key: &str| (key == RESOLVER_ENV).then(|| "resolver.example".to_string());
        let error = locate(&env, &conf(Some("127.0.0.2")), &system).expect_err("env");
        assert_eq!(
            error.to_string(),
            "resolver 'resolver.example' (GREY_LISTING_RESOLVER) is not an IP address with an \
             optional port (127.0.0.1, 127.0.0.1:5353, ::1, [::1]:5353)"
        );
        let scoped = resolv_conf(&dir, "nameserver fe80::1%eth0\n");
        let error = locate(&no_env, &conf(None), &scoped).expect_err("scope");
        assert!(
            error.to_string().contains("'fe80::1%eth0' (nameserver in "),
            "{error}"
        );
    }

    #[test]
    fn nothing_found_names_every_source() {
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = resolv_conf(&dir, "search example.org\n");
        let missing = dir.path().join("missing");
        for path in [empty, missing] {
            let error = locate(&no_env, &conf(None), &path).expect_err("none");
            assert!(matches!(error, LocateError::NotFound { .. }), "{error}");
            assert!(
                error
                    .to_string()
                    .contains("GREY_LISTING_RESOLVER is not set")
            );
        }
    }

    #[test]
    fn the_system_lookup_reads_the_named_conf_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.conf");
        std::fs::write(&path, "resolver = 127.0.0.9:5300\n").expect("write conf");
        let named = path.to_string_lossy().into_owned();
        let env = |key: &str| (key == conf_file::CONF_ENV).then(|| named.clone());
        let found = locate_system(&env).expect("conf file");
        assert_eq!(found.addr.to_string(), "127.0.0.9:5300");
        std::fs::write(&path, "resolver = x.example\n").expect("write conf");
        assert!(matches!(locate_system(&env), Err(LocateError::Conf(_))));
    }
}
