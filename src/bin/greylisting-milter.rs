//! `greylisting-milter`: the milter for Sendmail and Postfix. Parses flags, binds, installs the
//! signal handlers and runs the library's event loop.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::FromArgMatches;

use grey_listing::clock::process_env;
use grey_listing::metrics;
use grey_listing::milter::listen::Listener;
use grey_listing::milter::options::{self, Args};
use grey_listing::milter::{self, Config, Signals};

fn main() -> ExitCode {
    let args = match Args::from_arg_matches(&options::command().get_matches()) {
        Ok(args) => args,
        Err(err) => err.exit(),
    };
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("greylisting-milter: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn serve(args: Args) -> Result<()> {
    // First, before anything is opened: a host name that could break the header line.
    if let Some(hostname) = &args.hostname {
        grey_listing::policyd::check_hostname(hostname).map_err(|why| {
            // Escaped and cut: the value is hostile until checked.
            let shown: String = hostname.escape_debug().take(80).collect();
            anyhow::anyhow!("invalid --hostname \"{shown}\": it {why}")
        })?;
    }
    // Read at start whatever --db says: a broken configuration file is found now.
    let conf = grey_listing::conf_file::read_conf(&process_env)?;
    let db = grey_listing::store::location_with_conf(args.db.as_deref(), &process_env, &conf);
    let mut config = Config::new(db);
    config.rediscover_db = args.db.is_none();
    config.trusted = args.trusted_networks.0;
    config.idle_timeout = Duration::from_secs(args.idle_timeout);
    config.max_connections = args.max_connections;
    config.request_timeout = Duration::from_secs(args.request_timeout);
    config.synchronous = args.synchronous.into();
    if let Some(connections) = args.db_connections {
        config.db_connections = usize::from(connections);
    }
    if let Some(hostname) = args.hostname {
        config.hostname = hostname;
    }
    grey_listing::policyd::raise_fd_limit();
    let signals = Signals::default();
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&signals.shutdown))
            .context("cannot install the signal handler")?;
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&signals.reload))
        .context("cannot install the signal handler")?;
    let listener = Listener::bind(&args.listen, args.socket_mode, args.socket_group.as_deref())?;
    if let Some(listen) = &args.metrics_listen {
        // The batch-size family is the policy server's alone (its clients pipeline requests).
        let options = metrics::Options { batch_size: false };
        let (metrics, address) = metrics::start(listen, options, Arc::clone(&config.closed))?;
        config.metrics_address = Some(address);
        config.metrics = Some(metrics);
    }
    milter::run(listener, config, signals)?;
    Ok(())
}
