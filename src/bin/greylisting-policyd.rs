//! `greylisting-policyd`: the Postfix policy server. Parses flags, binds, installs SIGTERM/SIGINT
//! handling and runs the library's server loop.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use grey_listing::clock::process_env;
use grey_listing::policy::{self, Config, PolicyListener, Synchronous};
use grey_listing::store::resolve_location;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum SyncMode {
    /// fsync every committed batch before answering (survives a power cut).
    Full,
    /// Survives a process crash; a power cut may forget the last batches.
    Normal,
}

/// Postfix policy delegation server for greylisting (check_policy_service), drop-in for postgrey.
#[derive(Debug, Parser)]
#[command(name = "greylisting-policyd", version)]
struct Args {
    /// Where to listen: host:port (TCP) or unix:/path.
    #[arg(long, default_value = policy::DEFAULT_LISTEN)]
    listen: String,
    /// Database path (default: GREY_LISTING_DB, then /etc/grey_listing.conf, then
    /// /var/lib/grey_listing/greylist.db).
    #[arg(long)]
    db: Option<String>,
    /// Seconds without a byte from a client before its connection is closed.
    #[arg(long, default_value_t = policy::DEFAULT_IDLE_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Most open connections; more are closed at once and logged.
    #[arg(long, default_value_t = policy::DEFAULT_MAX_CONNECTIONS, value_parser = parse_positive)]
    max_connections: usize,
    /// Honour postgrey's policy_test_time attribute (tests and simulations only).
    #[arg(long)]
    allow_test_time: bool,
    /// Host name in the X-Greylist header (default: this machine's name).
    #[arg(long)]
    hostname: Option<String>,
    /// Durability of each committed batch of decisions.
    #[arg(long, value_enum, default_value_t = SyncMode::Full)]
    synchronous: SyncMode,
    /// Database connections deciding requests in parallel, 1 to 64 (default: 1 for SQLite,
    /// 4 for PostgreSQL).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    db_connections: Option<u16>,
}

fn parse_positive(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{value:?} is not a positive number")),
    }
}

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
    config.allow_test_time = args.allow_test_time;
    config.synchronous = match args.synchronous {
        SyncMode::Full => Synchronous::Full,
        SyncMode::Normal => Synchronous::Normal,
    };
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

#[cfg(test)]
mod tests {
    use super::Args;
    use clap::CommandFactory;

    // The clap definition is consistent (no clashing flags, valid defaults).
    #[test]
    fn clap_definition_is_valid() {
        Args::command().debug_assert();
    }
}
