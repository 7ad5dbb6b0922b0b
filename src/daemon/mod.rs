//! What the two daemons, `greylisting-policyd` and `greylisting-milter`, share around their
//! protocols: the listening socket and its unix-socket set-up ([`listener`], [`socket`]),
//! accepting connections (`accept`), writing queued replies (`output`), the event loop's
//! poll, shutdown and stop (`event_loop`), staying on the right database across SIGHUP and a
//! database file replaced under them ([`reload`]), the signal flags ([`Signals`]), the command-line
//! options they have in common ([`options`]) and the binaries' start-up checks and steps
//! ([`check_hostname_option`], [`start`], [`exit_code`]).

pub(crate) mod accept;
pub(crate) mod event_loop;
#[cfg(test)]
pub(crate) mod in_process;
pub mod listener;
pub mod options;
pub(crate) mod output;
pub mod reload;
pub mod socket;
pub mod start;

use std::fmt::Display;
use std::io;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use thiserror::Error;

pub(crate) use listener::Peer;
pub use listener::{ListenError, Listener, Stream};

/// Why a daemon could not start or run.
#[derive(Debug, Error)]
pub enum ServeError {
    /// The listening socket could not be set up.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// Polling failed.
    #[error("{what} {address}: {cause}")]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The address involved.
        address: String,
        /// The OS error.
        cause: io::Error,
    },
}

/// The flags the binary's signal handlers set.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// SIGTERM/SIGINT: stop.
    pub shutdown: Arc<AtomicBool>,
    /// SIGHUP: reload.
    pub reload: Arc<AtomicBool>,
}

impl Signals {
    /// Installs the handlers: SIGTERM and SIGINT set `shutdown`, SIGHUP sets `reload` (it would
    /// otherwise end the process and leave a unix socket behind).
    pub fn install() -> io::Result<Signals> {
        let signals = Signals::default();
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&signals.shutdown))?;
        }
        signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&signals.reload))?;
        Ok(signals)
    }
}

/// A `--hostname` the header line cannot carry.
#[derive(Debug, Error)]
#[error("invalid --hostname \"{shown}\": it {why}")]
pub struct BadHostname {
    /// The value, escaped and cut: it is hostile until checked.
    shown: String,
    /// What is wrong with it.
    why: String,
}

/// Checks a `--hostname` value first, before anything is opened: a host name that could break
/// the header line (or the policy server's reply line) is refused.
pub fn check_hostname_option(hostname: Option<&str>) -> Result<(), BadHostname> {
    let Some(hostname) = hostname else {
        return Ok(());
    };
    crate::policyd::check_hostname(hostname).map_err(|why| BadHostname {
        shown: hostname.escape_debug().take(80).collect(),
        why: why.to_string(),
    })
}

/// The exit of a daemon binary: 0 after a clean stop, else the error (with its causes) on
/// stderr after the daemon's name, and 2.
pub fn exit_code<E: Display>(ident: &str, result: Result<(), E>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{ident}: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Raises the soft limit of open files to the hard limit, so `--max-connections` can be reached.
/// Failing to raise it is harmless (accept errors are logged and retried).
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` into `limit`, a live local of exactly that type, and
    // setrlimit only reads it; neither keeps the pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            let _ = libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
