//! The start-up both daemon binaries go through once their settings are read: the file limit
//! raised, the signal handlers installed, the listening socket bound and the metrics endpoint
//! started.

use std::io;
use std::sync::Arc;

use thiserror::Error;

use crate::daemon::limits::ClosedConnections;
use crate::metrics::{self, Metrics};

use super::options::CommonFirst;
use super::{ListenError, Listener, Signals, raise_fd_limit};

/// What the event loop is started with.
pub struct Started {
    /// The bound listening socket.
    pub listener: Listener,
    /// The flags the signal handlers set.
    pub signals: Signals,
    /// The metrics to keep up to date and the address they are served at (`--metrics-listen`).
    pub metrics: Option<(Arc<Metrics>, String)>,
}

/// Why a daemon could not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// A signal handler could not be installed.
    #[error("cannot install the signal handler")]
    Signals(#[source] io::Error),
    /// The listening socket could not be set up.
    #[error(transparent)]
    Listen(#[from] ListenError),
    /// The metrics endpoint could not be started.
    #[error(transparent)]
    Metrics(#[from] metrics::StartError),
}

/// Raises the file limit, installs the signal handlers, binds `first.listen` and, with
/// `metrics_listen`, starts the metrics endpoint (`closed`: the daemon's close counters).
pub fn start(
    first: &CommonFirst,
    metrics_listen: Option<&str>,
    options: metrics::Options,
    closed: &Arc<ClosedConnections>,
) -> Result<Started, StartError> {
    raise_fd_limit();
    let signals = Signals::install().map_err(StartError::Signals)?;
    let listener = Listener::bind_with(&first.listen, &first.socket_options())?;
    let metrics = metrics_listen
        .map(|listen| metrics::start(listen, options, Arc::clone(closed)))
        .transpose()?;
    Ok(Started {
        listener,
        signals,
        metrics,
    })
}
