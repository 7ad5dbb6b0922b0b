//! `greylisting-policyd`: the Postfix policy server. Parses flags, binds, installs SIGTERM/SIGINT
//! handling and runs the library's server loop.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use grey_listing::clock::process_env;
use grey_listing::policy::cli::Args;
use grey_listing::policy::{self, Config, PolicyListener};
use grey_listing::store::resolve_location;

fn main() -> ExitCode {
    let args = Args::parse();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("greylisting-policyd: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: Args) -> Result<()> {
    let db = resolve_location(args.db.as_deref(), &process_env)
        .context("cannot find the database location")?;
    let mut config = Config::new(db);
    config.idle_timeout = Duration::from_secs(args.idle_timeout);
    config.max_connections = args.max_connections;
    config.request_timeout = Duration::from_secs(args.request_timeout);
    config.allow_test_time = args.allow_test_time;
    config.synchronous = args.synchronous.into();
    if let Some(connections) = args.db_connections {
        config.db_connections = usize::from(connections);
    }
    if let Some(hostname) = args.hostname {
        config.hostname = hostname;
    }
    policy::raise_fd_limit();
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))
            .context("cannot install the signal handler")?;
    }
    let listener = PolicyListener::bind(&args.listen)?;
    policy::run(listener, config, shutdown)?;
    Ok(())
}
