//! `greylisting-milter`: the milter for Sendmail and Postfix. Parses flags, binds, installs the
//! signal handlers and runs the library's event loop.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;

use grey_listing::clock::process_env;
use grey_listing::daemon;
use grey_listing::daemon::reload::LocationSource;
use grey_listing::metrics;
use grey_listing::milter::options::{self, Args};
use grey_listing::milter::{self, Config};

fn main() -> ExitCode {
    let args = daemon::options::parse(options::command());
    daemon::exit_code(milter::IDENT, serve(args))
}

fn serve(args: Args) -> Result<()> {
    let (first, last) = (args.first, args.last);
    daemon::check_hostname_option(last.hostname.as_deref())?;
    // The configuration file is read whatever --db says: a broken one is found now.
    let db = grey_listing::store::daemon_location(first.db.as_deref(), &process_env)?;
    let mut config = Config::new(db);
    config.location_source = LocationSource::Resolve {
        cli: first.db.clone(),
    };
    config.trusted = args.trusted_networks.0;
    config.idle_timeout = Duration::from_secs(args.idle_timeout);
    config.max_connections = args.max_connections;
    config.request_timeout = Duration::from_secs(args.request_timeout);
    last.apply(
        &mut config.synchronous,
        &mut config.db_connections,
        &mut config.hostname,
        &mut config.hostname_note,
    );
    // The batch-size family is the policy server's alone (its clients pipeline requests).
    let metrics = metrics::Options { batch_size: false };
    let started = daemon::start::start(
        &first,
        last.metrics_listen.as_deref(),
        metrics,
        &config.closed,
    )?;
    if let Some((metrics, address)) = started.metrics {
        config.metrics_address = Some(address);
        config.metrics = Some(metrics);
    }
    milter::run(started.listener, config, started.signals)?;
    Ok(())
}
