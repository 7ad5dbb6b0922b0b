//! The `grey_listing` admin command (SPEC §2): parse and validate everything first, then open
//! the store and apply the whole change in one transaction, then print Plesk's texts.

mod args;
mod backup;
mod check;
pub mod completions;
mod explain;
mod help;
mod maintenance;
pub mod manpage;
mod output;
mod report;
mod report_data;
mod report_html;
mod stats_prometheus;
mod transfer;

use std::ffi::OsString;
use std::io::Write;

use serde_json::json;
use thiserror::Error;

use crate::bounds;
use crate::config::{
    self, ListEdit, ListKind, MAX_EXPIRE_MINUTES, MAX_GREY_MINUTES, MailboxLists, ServerLists,
    Settings, ValueError,
};
use crate::plesk::PleskConfig;
use crate::store::{self, DbLocation, Store, StoreError};
use crate::transfer::ConfigDump;

pub use args::{Args, command, translate};

/// The exit statuses of `grey_listing` (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Success.
    Success = 0,
    /// Bad input: nothing was changed.
    BadInput = 1,
    /// Database or system error.
    System = 2,
    /// A monitoring plugin's own error (`--check`): Nagios UNKNOWN.
    PluginUnknown = 3,
}

/// Why a `grey_listing` run failed. Displays as the one line printed on stderr.
#[derive(Debug, Error)]
pub enum CliError {
    /// Bad input, found before anything was opened or written.
    #[error("An error occurred during {operation}: {message}")]
    BadInput {
        /// What was being done (`update of server-wide settings`, ...).
        operation: String,
        /// What was wrong, naming the argument.
        message: String,
    },
    /// The store failed.
    #[error("An error occurred during {operation}: {source}")]
    Store {
        /// What was being done.
        operation: String,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The configuration file is missing, unreadable or invalid (the text is the whole line).
    #[error("{0}")]
    Config(crate::conf_file::ConfError),
    /// Writing the output failed.
    #[error("An error occurred during output: {0}")]
    Output(#[from] std::io::Error),
    /// Any error of the `--check` plugin, reported as Nagios UNKNOWN on standard output.
    #[error("GREY_LISTING UNKNOWN - {0}")]
    PluginUnknown(Box<CliError>),
}

impl CliError {
    /// The exit status for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            CliError::BadInput { .. } => ExitCode::BadInput,
            CliError::Store { .. } | CliError::Config(_) | CliError::Output(_) => ExitCode::System,
            CliError::PluginUnknown(_) => ExitCode::PluginUnknown,
        }
    }

    /// Whether the line belongs on standard output (monitoring plugins report there).
    pub fn to_stdout(&self) -> bool {
        matches!(self, CliError::PluginUnknown(_))
    }
}

/// A validated command, ready to run.
#[derive(Debug)]
enum Command {
    Help,
    Version,
    InfoServer {
        extended: bool,
    },
    InfoDomain {
        domain: String,
        shown: String,
    },
    InfoMailname {
        mail: String,
        shown: String,
    },
    UpdateServer(ServerUpdate),
    UpdateDomain {
        domain: String,
        shown: String,
        status: Option<bool>,
    },
    UpdateMailname {
        mail: String,
        shown: String,
        edits: Vec<(ListKind, ListEdit)>,
    },
    Explain(explain::ExplainRequest),
    Report(report::ReportOptions),
    Check(check::CheckOptions),
    Purge,
    Stats,
    StatsPrometheus,
    ImportPlesk(PleskConfig),
    Export,
    Import(ConfigDump),
    MigrateStore {
        from: DbLocation,
        to: DbLocation,
    },
    Backup(std::path::PathBuf),
}

impl Command {
    /// Commands that never write: a user who may only read the database can run them.
    fn only_reads(&self) -> bool {
        matches!(
            self,
            Command::InfoServer { .. }
                | Command::InfoDomain { .. }
                | Command::InfoMailname { .. }
                | Command::Explain(_)
                | Command::Report(_)
                | Command::Check(_)
                | Command::Stats
                | Command::StatsPrometheus
                | Command::Export
        )
    }
}

/// Changes to the server-wide settings; `None` leaves a setting as it is.
#[derive(Debug, Default)]
struct ServerUpdate {
    status: Option<bool>,
    personal_conf: Option<bool>,
    grey_interval: Option<u32>,
    expire_interval: Option<u32>,
    penalty_interval: Option<u32>,
    penalty_status: Option<bool>,
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
    awl_count: Option<u32>,
    sender_normalize: Option<bool>,
    group_by_host_domain: Option<bool>,
    log_retention: Option<u64>,
    edits: Vec<(ListKind, ListEdit)>,
    /// `-grey-interval` and `-expire-interval` as the user spelled them, for the refusal.
    interval_names: [String; 2],
}

impl ServerUpdate {
    fn apply(&self, settings: &mut Settings) {
        fn set<T: Copy>(slot: &mut T, value: Option<T>) {
            if let Some(value) = value {
                *slot = value;
            }
        }
        set(&mut settings.enabled, self.status);
        set(&mut settings.personal_conf, self.personal_conf);
        set(&mut settings.grey_interval, self.grey_interval);
        set(&mut settings.expire_interval, self.expire_interval);
        set(&mut settings.penalty_interval, self.penalty_interval);
        set(&mut settings.penalty_enabled, self.penalty_status);
        set(&mut settings.ipv4_prefix, self.ipv4_prefix);
        set(&mut settings.ipv6_prefix, self.ipv6_prefix);
        set(&mut settings.awl_count, self.awl_count);
        set(&mut settings.sender_normalize, self.sender_normalize);
        set(
            &mut settings.group_by_host_domain,
            self.group_by_host_domain,
        );
        set(&mut settings.log_retention, self.log_retention);
    }

    /// Applies the update over `stored` and checks the result (the stored values matter: a
    /// lower expire interval alone can fall under the stored grey interval).
    fn applied(&self, stored: &Settings) -> Result<Settings, StoreError> {
        let mut settings = stored.clone();
        self.apply(&mut settings);
        if !settings.intervals_make_sense() {
            let [grey, expire] = &self.interval_names;
            return Err(StoreError::Refused(format!(
                "{expire} {} (minutes) must be longer than {grey} {} (minutes)",
                settings.expire_interval, settings.grey_interval
            )));
        }
        Ok(settings)
    }
}

/// Runs `grey_listing` with `argv` (without the program name). Output goes to `out`; the
/// caller prints the error line and maps it to an exit status.
pub fn run(
    argv: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    run_status(argv, env, out).map(|_| ())
}

/// Like [`run`], but returns the exit status of a successful run: 0, except for the `--check`
/// plugin, whose status is Nagios's 0/1/2 (OK/WARNING/CRITICAL). Every error of `--check`,
/// bad arguments included, becomes [`CliError::PluginUnknown`] (exit 3).
pub fn run_status(
    argv: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let plugin = argv
        .iter()
        .filter_map(|arg| arg.to_str())
        .any(|arg| arg.starts_with('-') && arg.trim_start_matches('-') == "check");
    run_command(argv, env, out).map_err(|err| {
        if plugin {
            CliError::PluginUnknown(Box::new(err))
        } else {
            err
        }
    })
}

fn run_command(
    argv: &[OsString],
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut dyn Write,
) -> Result<u8, CliError> {
    let parsing = |message: String| CliError::BadInput {
        operation: "command line parsing".to_string(),
        message,
    };
    let original: Vec<String> = argv
        .iter()
        .map(|arg| arg.to_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| parsing("an argument is not valid UTF-8".to_string()))?;
    let args = args::parse(&translate(&original), &original).map_err(parsing)?;
    let operation = command_spec(&args).operation;
    let command = validate(&args, &original)?;
    if let Command::Help = command {
        out.write_all(help::text().as_bytes())?;
        return Ok(0);
    }
    if let Command::Version = command {
        writeln!(out, "grey_listing {}", env!("CARGO_PKG_VERSION"))?;
        return Ok(0);
    }
    let store_error = |source| match source {
        // A check against the stored values refused the change: bad input, rolled back.
        StoreError::Refused(message) => CliError::BadInput {
            operation: operation.clone(),
            message,
        },
        StoreError::Config(err) => CliError::Config(err),
        source => CliError::Store {
            operation: operation.clone(),
            source,
        },
    };
    if let Command::MigrateStore { from, to } = &command {
        let text =
            migrate_store(from, to, crate::clock::now(env), args.json).map_err(store_error)?;
        out.write_all(text.as_bytes())?;
        return Ok(0);
    }
    let location = store::resolve_location(args.db.as_deref(), env).map_err(store_error)?;
    if let Command::Backup(target) = &command {
        let text = backup::run(&location, target, &operation, args.json)?;
        out.write_all(text.as_bytes())?;
        return Ok(0);
    }
    if let (Command::UpdateServer(update), DbLocation::Sqlite(path)) = (&command, &location)
        && std::fs::symlink_metadata(path).is_err()
    {
        // A database not created yet holds the defaults: check against them and create
        // nothing when the change is refused. (Created meanwhile: the transaction checks again.)
        update.applied(&Settings::default()).map_err(store_error)?;
    }
    let mut store = if command.only_reads() {
        store::open_for_reading(&location)
    } else {
        open_store(&location)
    }
    .map_err(store_error)?;
    let now = crate::clock::now(env);
    // Patterns an upgrade made match differently are named once, by the first command after it.
    let mut warnings: Vec<String> = store::take_pattern_notices(store.as_mut())
        .map_err(store_error)?
        .iter()
        .map(|pattern| upgrade_notice(pattern))
        .collect();
    print_warnings(&mut warnings)?;
    let (text, status) =
        execute(store.as_mut(), &command, args.json, now, &mut warnings).map_err(store_error)?;
    print_warnings(&mut warnings)?;
    out.write_all(text.as_bytes())?;
    backup::checkpoint_or_warn(store.as_mut());
    Ok(status)
}

/// The line naming a stored white host pattern that matches differently since the upgrade to
/// whole-label matching.
fn upgrade_notice(pattern: &str) -> String {
    let why = crate::pattern::white_host_warnings(pattern)
        .into_iter()
        .next()
        .unwrap_or_else(|| "it now matches whole labels only".to_string());
    format!(
        "Warning: white domains pattern '{pattern}' matches differently since this upgrade \
         (white patterns match the whole host name or whole labels at its end): {why}"
    )
}

/// Writes `Warning:` lines to standard error (the command still succeeds) and empties the list.
fn print_warnings(warnings: &mut Vec<String>) -> Result<(), CliError> {
    if warnings.is_empty() {
        return Ok(());
    }
    let mut stderr = std::io::stderr().lock();
    for line in warnings.drain(..) {
        writeln!(stderr, "{line}")?;
    }
    Ok(())
}

fn open_store(location: &DbLocation) -> Result<Box<dyn Store>, StoreError> {
    store::open(location)
}

/// Names an option as the user typed it (`-status` or `--status`).
fn typed(original: &[String], long: &str) -> String {
    original
        .iter()
        .map(|arg| arg.split_once('=').map_or(arg.as_str(), |(name, _)| name))
        .find(|arg| arg.starts_with('-') && arg.trim_start_matches('-') == long)
        .map_or_else(|| format!("-{long}"), str::to_string)
}

fn validate(args: &Args, original: &[String]) -> Result<Command, CliError> {
    let spec = command_spec(args);
    let command_name = command_as_typed(&spec, original);
    let CommandSpec {
        operation, allowed, ..
    } = spec;
    let bad = |message: String| CliError::BadInput {
        operation: operation.clone(),
        message,
    };
    for (name, given) in given_options(args) {
        if given && !allowed.contains(&name) {
            return Err(bad(format!(
                "option '{}' is not allowed with {command_name}",
                typed(original, name)
            )));
        }
    }
    if args.extended && !args.info_server {
        return Err(bad(format!(
            "option '{}' is allowed only with --info-server",
            typed(original, "extended")
        )));
    }
    for (given, name, command) in [
        (args.html.is_some(), "html", "report"),
        (args.prometheus, "prometheus", "stats"),
    ] {
        if given && !(args.report && command == "report" || args.stats && command == "stats") {
            return Err(bad(format!(
                "option '{}' is allowed only with --{command}",
                typed(original, name)
            )));
        }
    }
    let culprit = |name: &str, e: ValueError| bad(format!("{}: {e}", typed(original, name)));
    let on_off = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|v| config::parse_on_off(v).map_err(|e| culprit(name, e)))
            .transpose()
    };
    let true_false = |name: &str, v: &Option<String>| {
        v.as_deref()
            .map(|v| config::parse_true_false(v).map_err(|e| culprit(name, e)))
            .transpose()
    };
    let number = |name: &str, v: &Option<String>, min: u64, max: u64| {
        v.as_deref()
            .map(|v| config::parse_in_range(v, min, max).map_err(|e| culprit(name, e)))
            .transpose()
    };
    let duration = |name: &str, v: &Option<String>, max: u64| {
        v.as_deref()
            .map(|v| match config::parse_duration(v) {
                Ok(seconds) if seconds as u64 <= max => Ok(seconds),
                Ok(_) => Err(bad(format!(
                    "{}: '{v}' is longer than {} days",
                    typed(original, name),
                    max / 86_400
                ))),
                Err(e) => Err(culprit(name, e)),
            })
            .transpose()
    };
    let count = |name: &str, v: &Option<String>, min: u64, default: u64| {
        v.as_deref()
            .map(|v| {
                config::parse_in_range(v, min, 1_000_000_000).map_err(|e| match e {
                    ValueError::NotANumber(v) => bad(format!(
                        "{}: '{v}' is not a whole number",
                        typed(original, name)
                    )),
                    e => culprit(name, e),
                })
            })
            .transpose()
            .map(|n| n.unwrap_or(default))
    };
    let edits = |name: &str,
                 kind: ListKind,
                 values: &[String]|
     -> Result<Vec<(ListKind, ListEdit)>, CliError> {
        values
            .iter()
            .map(|v| {
                config::parse_list_edit(v)
                    .and_then(|edit| config::edit_to_ascii(kind, edit))
                    .map_err(|e| culprit(name, e))
                    .map(|edit| (kind, edit))
            })
            .collect()
    };
    let mut list_edits = Vec::new();
    list_edits.extend(edits("blacklist", ListKind::Black, &args.blacklist)?);
    list_edits.extend(edits("whitelist", ListKind::White, &args.whitelist)?);
    list_edits.extend(edits(
        "domains-whitelist",
        ListKind::DomainsWhite,
        &args.domains_whitelist,
    )?);
    list_edits.extend(edits(
        "domains-blacklist",
        ListKind::DomainsBlack,
        &args.domains_blacklist,
    )?);

    let grey_max = u64::from(MAX_GREY_MINUTES);
    let command = if let Some(pair) = &args.migrate_store {
        validate_migration(pair, args, original).map_err(bad)?
    } else if args.help {
        Command::Help
    } else if args.version {
        Command::Version
    } else if args.info_server {
        Command::InfoServer {
            extended: args.extended,
        }
    } else if let Some(shown) = &args.info_domain {
        let domain =
            config::parse_domain(shown).map_err(|e| bad(format!("{command_name}: {e}")))?;
        Command::InfoDomain {
            shown: shown_as_stored(shown, &domain),
            domain,
        }
    } else if let Some(shown) = &args.info_mailname {
        let mail = config::parse_mail(shown).map_err(|e| bad(format!("{command_name}: {e}")))?;
        Command::InfoMailname {
            shown: shown_as_stored(shown, &mail),
            mail,
        }
    } else if args.update_server {
        Command::UpdateServer(ServerUpdate {
            status: on_off("status", &args.status)?,
            personal_conf: true_false("personal-conf", &args.personal_conf)?,
            grey_interval: number("grey-interval", &args.grey_interval, 0, grey_max)?
                .map(|n| n as u32),
            expire_interval: number(
                "expire-interval",
                &args.expire_interval,
                1,
                u64::from(MAX_EXPIRE_MINUTES),
            )?
            .map(|n| n as u32),
            penalty_interval: number("penalty-interval", &args.penalty_interval, 0, grey_max)?
                .map(|n| n as u32),
            penalty_status: true_false("penalty-status", &args.penalty_status)?,
            ipv4_prefix: number("ipv4-prefix", &args.ipv4_prefix, 0, 32)?.map(|n| n as u8),
            ipv6_prefix: number("ipv6-prefix", &args.ipv6_prefix, 0, 128)?.map(|n| n as u8),
            awl_count: number(
                "awl-count",
                &args.awl_count,
                0,
                u64::from(config::MAX_AWL_COUNT),
            )?
            .map(|n| n as u32),
            sender_normalize: true_false("sender-normalize", &args.sender_normalize)?,
            group_by_host_domain: true_false("group-by-host-domain", &args.group_by_host_domain)?,
            log_retention: match duration(
                "log-retention",
                &args.log_retention,
                config::MAX_LOG_RETENTION,
            )? {
                // Kept in whole minutes, the unit `--json` and `--export` show it in.
                Some(seconds) if seconds % 60 != 0 => {
                    return Err(bad(format!(
                        "{}: '{}' is not a whole number of minutes",
                        typed(original, "log-retention"),
                        args.log_retention.as_deref().unwrap_or_default()
                    )));
                }
                seconds => seconds.map(|seconds| seconds as u64),
            },
            edits: list_edits,
            interval_names: [
                typed(original, "grey-interval"),
                typed(original, "expire-interval"),
            ],
        })
    } else if let Some(shown) = &args.update_domain {
        let domain =
            config::parse_domain(shown).map_err(|e| bad(format!("{command_name}: {e}")))?;
        Command::UpdateDomain {
            shown: shown_as_stored(shown, &domain),
            domain,
            status: on_off("status", &args.status)?,
        }
    } else if let Some(shown) = &args.update_mailname {
        let mail = config::parse_mail(shown).map_err(|e| bad(format!("{command_name}: {e}")))?;
        Command::UpdateMailname {
            shown: shown_as_stored(shown, &mail),
            mail,
            edits: list_edits,
        }
    } else if let Some(values) = &args.explain {
        Command::Explain(
            explain::ExplainRequest::parse(values)
                .map_err(|e| bad(format!("{command_name}: {e}")))?,
        )
    } else if args.report {
        Command::Report(report::ReportOptions {
            since: duration("since", &args.since, config::MAX_LOG_RETENTION)?
                .unwrap_or(report::DEFAULT_REPORT_SINCE),
            top: count("top", &args.top, 1, report::DEFAULT_TOP)? as usize,
            threshold: count("threshold", &args.threshold, 1, report::DEFAULT_THRESHOLD)?,
            html: args.html.clone(),
        })
    } else if args.check {
        let warning = count("w", &args.warning, 1, check::DEFAULT_WARNING)?;
        let critical = count("c", &args.critical, 1, check::DEFAULT_CRITICAL)?;
        if warning > critical {
            return Err(bad(format!(
                "{} {warning} is above {} {critical}",
                typed(original, "w"),
                typed(original, "c")
            )));
        }
        let ignore = match &args.ignore_file {
            Some(path) => check::read_ignore_file(path)
                .map_err(|e| bad(format!("{}: {e}", typed(original, "ignore-file"))))?,
            None => Vec::new(),
        };
        Command::Check(check::CheckOptions {
            since: duration("since", &args.since, config::MAX_LOG_RETENTION)?
                .unwrap_or(check::DEFAULT_CHECK_SINCE),
            warning,
            critical,
            ignore,
        })
    } else if args.purge {
        Command::Purge
    } else if args.stats && args.prometheus {
        Command::StatsPrometheus
    } else if args.stats {
        Command::Stats
    } else if let Some(source) = &args.import_plesk {
        Command::ImportPlesk(transfer::load_plesk(source).map_err(&bad)?)
    } else if args.export {
        Command::Export
    } else if let Some(source) = &args.import {
        Command::Import(transfer::load_export(source).map_err(&bad)?)
    } else if let Some(target) = &args.backup {
        Command::Backup(backup::check_target(target).map_err(&bad)?)
    } else {
        return Err(bad("no command given (see grey_listing --help)".to_string()));
    };
    Ok(command)
}

/// The name or address as output shows it: as the user typed it (Plesk echoes it), unless it
/// holds non-ASCII letters — then the stored A-label form, so output names what is stored.
fn shown_as_stored(given: &str, stored: &str) -> String {
    if given.is_ascii() {
        given.to_string()
    } else {
        stored.to_string()
    }
}

/// Checks `--migrate-store FROM TO` before anything is opened: two different locations, no
/// `--db` (the locations are given), and an SQLite source that exists (opening a missing one
/// would create an empty database and copy its defaults).
fn validate_migration(
    pair: &[String],
    args: &Args,
    original: &[String],
) -> Result<Command, String> {
    let typed_command = command_as_typed(&command_spec(args), original);
    if args.db.is_some() {
        return Err(format!(
            "option '{}' is not allowed with {typed_command}: give FROM and TO",
            typed(original, "db")
        ));
    }
    let [from, to] = pair else {
        return Err(format!("{typed_command} needs two databases: FROM TO"));
    };
    if from.is_empty() || to.is_empty() {
        return Err(format!("{typed_command}: a database location is empty"));
    }
    let (from, to) = (DbLocation::parse(from), DbLocation::parse(to));
    if from == to {
        return Err(format!(
            "{typed_command}: FROM and TO are the same database ({from})"
        ));
    }
    if let DbLocation::Sqlite(path) = &from
        && !path.exists()
    {
        return Err(format!(
            "{typed_command}: source database {} does not exist",
            path.display()
        ));
    }
    Ok(Command::MigrateStore { from, to })
}

/// Copies the configuration (as `--export`/`--import` would) and the triplets not expired at
/// `now` from one store to another. The source is read in one read transaction, the target
/// written in one write transaction: the target's configuration is replaced, its triplets with
/// the same key are replaced and its other triplets are kept.
fn migrate_store(
    from: &DbLocation,
    to: &DbLocation,
    now: i64,
    json: bool,
) -> Result<String, StoreError> {
    let mut source = store::open(from)?;
    let mut dump = None;
    let mut triplets = Vec::new();
    source.read(&mut |tx| {
        dump = Some(crate::transfer::export(tx)?);
        triplets = tx.live_triplets(now)?;
        Ok(())
    })?;
    drop(source);
    let Some(dump) = dump else {
        return Err(StoreError::Unsupported(format!("nothing read from {from}")));
    };
    let mut target = store::open(to)?;
    target.write(&mut |tx| {
        crate::transfer::import(tx, &dump)?;
        for live in &triplets {
            tx.put_triplet(&live.key, &live.network, &live.triplet)?;
        }
        Ok(())
    })?;
    backup::checkpoint_or_warn(target.as_mut());
    let patterns = dump.lists.black.len()
        + dump.lists.white.len()
        + dump.lists.domains_white.len()
        + dump.lists.domains_black.len();
    let mailbox_patterns: usize = dump
        .mailboxes
        .values()
        .map(|lists| lists.black.len() + lists.white.len())
        .sum();
    let message = "Migration of store complete.";
    if json {
        return Ok(to_json(&json!({
            "from": from.to_string(),
            "to": to.to_string(),
            "server_list_patterns": patterns,
            "domains": dump.domains.len(),
            "mailboxes": dump.mailboxes.len(),
            "mailbox_patterns": mailbox_patterns,
            "live_triplets": triplets.len(),
            "success": true,
            "message": message,
        })));
    }
    let mut text = format!("Copied from {from} to {to}:\n\n");
    text.push_str(&output::row("Settings", "copied"));
    text.push_str(&output::row("Server list patterns", &patterns.to_string()));
    text.push_str(&output::row("Domains", &dump.domains.len().to_string()));
    text.push_str(&output::row("Mailboxes", &dump.mailboxes.len().to_string()));
    text.push_str(&output::row(
        "Mailbox patterns",
        &mailbox_patterns.to_string(),
    ));
    text.push_str(&output::row("Live triplets", &triplets.len().to_string()));
    text.push_str(&format!("\nSUCCESS: {message}\n"));
    Ok(text)
}

/// Options `--update-server` takes: all of them.
const SERVER_OPTIONS: &[&str] = &[
    "status",
    "personal-conf",
    "grey-interval",
    "expire-interval",
    "penalty-interval",
    "penalty-status",
    "blacklist",
    "whitelist",
    "domains-whitelist",
    "domains-blacklist",
    "ipv4-prefix",
    "ipv6-prefix",
    "awl-count",
    "sender-normalize",
    "group-by-host-domain",
    "log-retention",
];

fn given_options(args: &Args) -> [(&'static str, bool); 22] {
    [
        ("status", args.status.is_some()),
        ("personal-conf", args.personal_conf.is_some()),
        ("grey-interval", args.grey_interval.is_some()),
        ("expire-interval", args.expire_interval.is_some()),
        ("penalty-interval", args.penalty_interval.is_some()),
        ("penalty-status", args.penalty_status.is_some()),
        ("blacklist", !args.blacklist.is_empty()),
        ("whitelist", !args.whitelist.is_empty()),
        ("domains-whitelist", !args.domains_whitelist.is_empty()),
        ("domains-blacklist", !args.domains_blacklist.is_empty()),
        ("ipv4-prefix", args.ipv4_prefix.is_some()),
        ("ipv6-prefix", args.ipv6_prefix.is_some()),
        ("awl-count", args.awl_count.is_some()),
        ("sender-normalize", args.sender_normalize.is_some()),
        ("group-by-host-domain", args.group_by_host_domain.is_some()),
        ("log-retention", args.log_retention.is_some()),
        ("since", args.since.is_some()),
        ("top", args.top.is_some()),
        ("threshold", args.threshold.is_some()),
        ("w", args.warning.is_some()),
        ("c", args.critical.is_some()),
        ("ignore-file", args.ignore_file.is_some()),
    ]
}

/// One command's names, the operation its messages name, and the options it allows — the one
/// table validation, error messages and `command_as_typed` all read.
struct CommandSpec {
    long: &'static str,
    short: &'static str,
    operation: String,
    allowed: &'static [&'static str],
}

/// The spec of the command clap parsed (its `command` group admits exactly one).
fn command_spec(args: &Args) -> CommandSpec {
    let spec = |long, short, operation: String, allowed| CommandSpec {
        long,
        short,
        operation,
        allowed,
    };
    if args.help {
        spec("help", "h", "help".to_string(), &[])
    } else if args.version {
        spec("version", "V", "version".to_string(), &[])
    } else if args.info_server {
        spec(
            "info-server",
            "i",
            "gathering of server wide information".to_string(),
            &[],
        )
    } else if let Some(domain) = &args.info_domain {
        let operation = format!("gathering of information for domain '{domain}'");
        spec("info-domain", "id", operation, &[])
    } else if let Some(mail) = &args.info_mailname {
        let operation = format!("gathering of information for mail '{mail}'");
        spec("info-mailname", "im", operation, &[])
    } else if args.update_server {
        let operation = "update of server-wide settings".to_string();
        spec("update-server", "u", operation, SERVER_OPTIONS)
    } else if let Some(domain) = &args.update_domain {
        spec(
            "update-domain",
            "ud",
            format!("update of domain '{domain}'"),
            &["status"],
        )
    } else if let Some(mail) = &args.update_mailname {
        let operation = format!("update of mail '{mail}'");
        spec(
            "update-mailname",
            "um",
            operation,
            &["blacklist", "whitelist"],
        )
    } else if args.explain.is_some() {
        spec("explain", "explain", "explanation".to_string(), &[])
    } else if args.report {
        spec(
            "report",
            "report",
            "report".to_string(),
            &["since", "top", "threshold"],
        )
    } else if args.check {
        spec(
            "check",
            "check",
            "check".to_string(),
            &["since", "w", "c", "ignore-file"],
        )
    } else if args.purge {
        spec("purge", "purge", "purge".to_string(), &[])
    } else if args.stats {
        spec("stats", "stats", "gathering of statistics".to_string(), &[])
    } else if args.import_plesk.is_some() {
        let operation = "import of Plesk configuration".to_string();
        spec("import-plesk", "import-plesk", operation, &[])
    } else if args.export {
        spec(
            "export",
            "export",
            "export of configuration".to_string(),
            &[],
        )
    } else if args.import.is_some() {
        spec(
            "import",
            "import",
            "import of configuration".to_string(),
            &[],
        )
    } else if args.backup.is_some() {
        spec("backup", "backup", "backup".to_string(), &[])
    } else if args.migrate_store.is_some() {
        let operation = "migration of store".to_string();
        spec("migrate-store", "migrate-store", operation, &[])
    } else {
        spec("help", "h", "command line parsing".to_string(), &[])
    }
}

/// The command as the user typed it, for messages (`-ud`, `--update-domain`).
fn command_as_typed(spec: &CommandSpec, original: &[String]) -> String {
    let (long, short) = (spec.long, spec.short);
    original
        .iter()
        .map(|arg| arg.split_once('=').map_or(arg.as_str(), |(name, _)| name))
        .find(|arg| arg.starts_with('-') && [long, short].contains(&arg.trim_start_matches('-')))
        .map_or_else(|| format!("--{long}"), str::to_string)
}

/// Runs a validated command; `Warning:` lines for standard error are added to `warnings`.
fn execute(
    store: &mut dyn Store,
    command: &Command,
    json: bool,
    now: i64,
    warnings: &mut Vec<String>,
) -> Result<(String, u8), StoreError> {
    // Every command but the --check plugin exits 0 when it succeeds.
    let text = match command {
        Command::Check(options) => return check::run(store, options, now),
        Command::Explain(request) => explain::run(store, request, now, json)?,
        Command::Report(options) => report::run(store, options, now, json)?,
        Command::Purge => maintenance::purge(store, now, json)?,
        Command::Stats => maintenance::stats(store, now, json)?,
        Command::StatsPrometheus => stats_prometheus::text(store)?,
        Command::ImportPlesk(config) => transfer::import_plesk(store, config, json)?,
        Command::Export => transfer::export(store)?,
        Command::Import(dump) => transfer::import(store, dump, json)?,
        Command::Help => help::text(),
        Command::Version => String::new(),
        Command::InfoServer { extended } => {
            let mut snapshot = (Settings::default(), ServerLists::default());
            store.read(&mut |tx| {
                snapshot = (tx.settings()?, store::server_lists(tx)?);
                Ok(())
            })?;
            let (settings, lists) = snapshot;
            if json {
                to_json(&json!({ "settings": settings, "lists": lists }))
            } else {
                output::info_server(&settings, &lists, *extended)
            }
        }
        Command::InfoDomain { domain, shown } => {
            let mut status = None;
            store.read(&mut |tx| {
                status = tx.domain_status(domain)?;
                Ok(())
            })?;
            let enabled = status.unwrap_or(true);
            if json {
                to_json(&json!({ "domain": domain, "enabled": enabled }))
            } else {
                output::info_domain(shown, enabled)
            }
        }
        Command::InfoMailname { mail, shown } => {
            let mut lists = MailboxLists::default();
            store.read(&mut |tx| {
                lists = store::mailbox_lists(tx, mail)?;
                Ok(())
            })?;
            if json {
                to_json(&json!({ "mail": mail, "black": lists.black, "white": lists.white }))
            } else {
                output::info_mailname(shown, &lists)
            }
        }
        Command::UpdateServer(update) => {
            let mut found = Vec::new();
            store.write(&mut |tx| {
                // A re-run transaction (PostgreSQL deadlock retry) starts over.
                found.clear();
                let settings = update.applied(&tx.settings_for_update()?)?;
                tx.set_settings(&settings)?;
                for (kind, edit) in &update.edits {
                    found.extend(store::apply_list_edit(tx, *kind, "", edit)?);
                }
                check_list_sizes(tx, &update.edits, "")
            })?;
            warnings.extend(found);
            success("Update of server-wide settings complete.", json)
        }
        Command::UpdateDomain {
            domain,
            shown,
            status,
        } => {
            store.write(&mut |tx| {
                if let Some(enabled) = status {
                    tx.set_domain_status(domain, *enabled)?;
                }
                Ok(())
            })?;
            success(&format!("Update of domain '{shown}' complete."), json)
        }
        // Handled by `run` before any store is opened: it needs two stores, not one.
        Command::MigrateStore { .. } => String::new(),
        // Handled by `run`: it needs the SQLite store itself, not the store interface.
        Command::Backup(_) => String::new(),
        Command::UpdateMailname { mail, shown, edits } => {
            let mut found = Vec::new();
            store.write(&mut |tx| {
                found.clear();
                for (kind, edit) in edits {
                    found.extend(store::apply_list_edit(tx, *kind, mail, edit)?);
                }
                check_list_sizes(tx, edits, mail)
            })?;
            warnings.extend(found);
            success(&format!("Update of mail '{shown}' complete."), json)
        }
    };
    Ok((text, 0))
}

/// After the edits, inside their transaction: every list an edit added to must still be within
/// the list limits ([`bounds::check_list_size`]); otherwise the whole command is refused and
/// rolled back. `owner` is `""` for the server lists, else the mailbox.
fn check_list_sizes(
    tx: &mut dyn store::Tx,
    edits: &[(ListKind, ListEdit)],
    owner: &str,
) -> Result<(), StoreError> {
    let mut checked: Vec<ListKind> = Vec::new();
    for (kind, edit) in edits {
        let adds = edit.groups.iter().any(|g| g.op == config::EditOp::Add);
        if !adds || checked.contains(kind) {
            continue;
        }
        checked.push(*kind);
        let list = tx.list(*kind, owner)?;
        bounds::check_list_size(&list)
            .map_err(|why| StoreError::Refused(format!("{}: {why}", list_name(*kind, owner))))?;
    }
    Ok(())
}

/// A list as messages name it.
fn list_name(kind: ListKind, owner: &str) -> String {
    match (kind, owner) {
        (ListKind::Black, "") => "server black list".to_string(),
        (ListKind::White, "") => "server white list".to_string(),
        (ListKind::DomainsWhite, _) => "white domains patterns list".to_string(),
        (ListKind::DomainsBlack, _) => "black domains patterns list".to_string(),
        (ListKind::Black, mail) => format!("black list of {mail}"),
        (ListKind::White, mail) => format!("white list of {mail}"),
    }
}

fn success(message: &str, json: bool) -> String {
    if json {
        to_json(&json!({ "success": true, "message": message }))
    } else {
        format!("SUCCESS: {message}\n")
    }
}

/// Pretty JSON with a final newline (shared by the extension commands).
pub(crate) fn to_json(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}
