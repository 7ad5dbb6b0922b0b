//! What the two daemons, `greylisting-policyd` and `greylisting-milter`, share around their
//! protocols: the listening socket and its unix-socket set-up ([`listener`], [`socket`]),
//! accepting connections (`accept`), writing queued replies (`output`), the event loop's
//! poll, shutdown and stop (`event_loop`), deciding a turn's requests in one group commit
//! ([`batch`]), the bounds on connections and why one was closed (`limits`), requests waiting
//! for DNS answers (`dns_waits`), staying on the right database across SIGHUP and a database
//! file replaced under them ([`reload`]), the signal flags ([`Signals`]), the command-line
//! options they have in common ([`options`]), the header's host name (`hostname`) and the
//! binaries' start-up checks and steps ([`check_hostname_option`], [`start`], [`exit_code`]).

pub(crate) mod accept;
pub mod batch;
pub(crate) mod dns_waits;
pub(crate) mod event_loop;
pub(crate) mod hostname;
#[cfg(test)]
pub(crate) mod in_process;
pub(crate) mod limits;
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

pub use hostname::{BadHostnameOption, check_hostname_option};
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
