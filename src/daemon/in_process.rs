//! A daemon run in-process over loopback, for the tests that need a hook or a setting the
//! command line does not offer (both daemons' `server_tests`): the daemon's own loop on a
//! thread, on a database in a fresh temporary directory, stopped and joined when dropped.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::logging::{Fallback, Logger};
use crate::store::DbLocation;

use super::{Listener, ServeError, Signals};

/// A daemon's loop, as `policyd::run_with_logger` and `milter::run_with_logger` are.
pub(crate) type Run<C> = fn(Listener, C, Signals, Logger) -> Result<(), ServeError>;

/// A daemon running on a thread of the test.
pub(crate) struct InProcess<C> {
    addr: String,
    /// The configuration it runs with (its shared counters are the running daemon's).
    pub(crate) config: C,
    shutdown: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl<C: Clone + Send + 'static> InProcess<C> {
    /// Runs `run` on an ephemeral loopback port, with the configuration `config` makes for a
    /// SQLite database in a fresh temporary directory; logs go to stderr.
    pub(crate) fn start(config: impl FnOnce(DbLocation) -> C, run: Run<C>) -> InProcess<C> {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = config(DbLocation::Sqlite(dir.path().join("g.db")));
        let listener = Listener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.describe();
        let shutdown = Arc::new(AtomicBool::new(false));
        let (run_config, run_shutdown) = (config.clone(), Arc::clone(&shutdown));
        let thread = std::thread::spawn(move || {
            let signals = Signals {
                shutdown: run_shutdown,
                reload: Arc::new(AtomicBool::new(false)),
            };
            run(
                listener,
                run_config,
                signals,
                Logger::stderr(Fallback::Stderr),
            )
            .expect("the daemon ran");
        });
        InProcess {
            addr,
            config,
            shutdown,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// A new client connection, waiting at most 30 s for each read; small writes leave at once.
    pub(crate) fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        stream
    }
}

impl<C> Drop for InProcess<C> {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
