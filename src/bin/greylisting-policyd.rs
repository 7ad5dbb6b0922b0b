//! `greylisting-policyd`: the Postfix policy server. Parses flags, binds, installs SIGTERM/SIGINT
//! and SIGHUP handling and runs the library's server loop.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use grey_listing::clock::process_env;
use grey_listing::conf_file::read_conf;
use grey_listing::metrics;
use grey_listing::policyd::options::Args;
use grey_listing::policyd::reload::LocationSource;
use grey_listing::policyd::socket::SocketOptions;
use grey_listing::policyd::{self, Config, PolicyListener};
use grey_listing::store::location_with_conf;

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
    // First, before anything is opened: a host name that could break a reply line.
    if let Some(hostname) = &args.hostname {
        policyd::check_hostname(hostname).map_err(|why| {
            // Escaped and cut: the value is hostile until checked.
            let shown: String = hostname.escape_debug().take(80).collect();
            anyhow::anyhow!("invalid --hostname \"{shown}\": it {why}")
        })?;
    }
    // Read at start whatever --db says: a broken configuration file is found now, not at the
    // first reload.
    let conf = read_conf(&process_env)?;
    let db = location_with_conf(args.db.as_deref(), &process_env, &conf);
    let mut config = Config::new(db);
    config.location_source = LocationSource::Resolve {
        cli: args.db.clone(),
    };
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
    policyd::raise_fd_limit();
    let shutdown = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&shutdown))
            .context("cannot install the signal handler")?;
    }
    // SIGHUP would otherwise end the process (and leave the unix socket behind).
    let reload = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&reload))
        .context("cannot install the signal handler")?;
    if args.socket_group.is_some() && !args.listen.starts_with("unix:") {
        anyhow::bail!("--socket-group applies to a unix socket only (--listen unix:/path)");
    }
    let socket = SocketOptions {
        mode: args.socket_mode,
        group: args.socket_group.clone(),
    };
    let listener = PolicyListener::bind_with(&args.listen, &socket)?;
    if let Some(listen) = &args.metrics_listen {
        let options = metrics::Options { batch_size: true };
        let (metrics, address) = metrics::start(listen, options, Arc::clone(&config.closed))?;
        config.metrics_address = Some(address);
        config.metrics = Some(metrics);
    }
    policyd::run(listener, config, shutdown, reload)?;
    Ok(())
}
