//! `greylisting-policyd`: the Postfix policy server. Parses flags, binds, installs SIGTERM/SIGINT
//! and SIGHUP handling and runs the library's server loop.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use grey_listing::clock::process_env;
use grey_listing::daemon;
use grey_listing::daemon::reload::LocationSource;
use grey_listing::metrics;
use grey_listing::policyd::options::{self, Args};
use grey_listing::policyd::{self, Config};
use grey_listing::store::daemon_location;

fn main() -> ExitCode {
    let args = daemon::options::parse(options::command());
    daemon::exit_code(policyd::IDENT, serve(args))
}

fn serve(args: Args) -> Result<()> {
    let (first, last) = (args.first, args.last);
    // First, before anything is opened: a host name that could break a reply line.
    daemon::check_hostname_option(last.hostname.as_deref())?;
    // The configuration file is read whatever --db says: a broken one is found now, not at the
    // first reload.
    let db = daemon_location(first.db.as_deref(), &process_env)?;
    let mut config = Config::new(db);
    config.location_source = LocationSource::Resolve {
        cli: first.db.clone(),
    };
    config.idle_timeout = Duration::from_secs(args.idle_timeout);
    config.max_connections = args.max_connections;
    config.request_timeout = Duration::from_secs(args.request_timeout);
    config.allow_test_time = args.allow_test_time;
    last.apply(
        &mut config.synchronous,
        &mut config.db_connections,
        &mut config.hostname,
        &mut config.hostname_note,
    );
    let started = daemon::start::start(
        &first,
        last.metrics_listen.as_deref(),
        metrics::Options { batch_size: true },
        &config.closed,
    )?;
    if let Some((metrics, address)) = started.metrics {
        config.metrics_address = Some(address);
        config.metrics = Some(metrics);
    }
    policyd::run(started.listener, config, started.signals)?;
    Ok(())
}
