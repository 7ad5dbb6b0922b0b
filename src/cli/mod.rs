//! The `grey_listing` admin command (DESIGN.md §2): parse and validate everything first, then open
//! the store and apply the whole change in one transaction, then print Plesk's texts.

mod args;
mod backup;
mod check;
mod check_dns;
mod command;
pub mod completions;
mod error;
mod explain;
mod help;
mod import_export;
mod maintenance;
pub mod manpage;
mod output;
mod report;
mod report_data;
mod report_html;
mod setting_args;
mod stats_prometheus;
mod validate;

#[cfg(test)]
mod input_tests;

use std::ffi::OsString;
use std::io::Write;

use serde_json::json;

use crate::bounds;
use crate::config::{self, ListEdit, ListKind, Settings};
use crate::dns::SystemResolver;
use crate::store::{self, DbLocation, Store, StoreError, StoreExt};

use args::translate;
pub use args::{Args, command};
pub use error::{CliError, ExitCode};

use command::{Command, CommandKind};
use validate::validate;
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
    let plugin = argv.iter().filter_map(|arg| arg.to_str()).any(|arg| {
        arg.starts_with('-') && matches!(arg.trim_start_matches('-'), "check" | "check-dns")
    });
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
        .ok_or_else(|| parsing(args::ArgvError::NotUtf8.to_string()))?;
    let translated = translate(&original);
    let args =
        args::parse(&translated.argv, &translated.spelling).map_err(|e| parsing(e.to_string()))?;
    let operation = CommandKind::of(&args).operation(&args);
    let command = validate(&args, &translated.spelling)?;
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
    let (text, status) = execute(store.as_mut(), &command, args.json, now, env, &mut warnings)
        .map_err(store_error)?;
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
        writeln!(stderr, "{}", crate::escape::escape_terminal(&line))?;
    }
    Ok(())
}

fn open_store(location: &DbLocation) -> Result<Box<dyn Store>, StoreError> {
    store::open(location)
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
    let (dump, triplets) =
        source.read_with(|tx| Ok((crate::export_format::export(tx)?, tx.live_triplets(now)?)))?;
    drop(source);
    let mut target = store::open(to)?;
    target.write(&mut |tx| {
        crate::export_format::import(tx, &dump)?;
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

/// Runs a validated command; `Warning:` lines for standard error are added to `warnings`.
/// `env` locates the DNS resolver for the commands that ask DNS.
fn execute(
    store: &mut dyn Store,
    command: &Command,
    json: bool,
    now: i64,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
) -> Result<(String, u8), StoreError> {
    // Every command but the --check plugin exits 0 when it succeeds.
    let text = match command {
        Command::Check(options) => return check::run(store, options, now, env),
        Command::CheckDns => return check_dns::run(store, env, json),
        Command::Explain(request) => {
            explain::run(store, request, now, json, &SystemResolver::new(env))?
        }
        Command::Report(options) => report::run(store, options, now, json)?,
        Command::Purge => maintenance::purge(store, now, json)?,
        Command::Stats => maintenance::stats(store, now, json)?,
        Command::StatsPrometheus => stats_prometheus::text(store)?,
        Command::ImportPlesk(config) => import_export::import_plesk(store, config, json)?,
        Command::Export => import_export::export(store)?,
        Command::Import(dump) => import_export::import(store, dump, json)?,
        Command::Help => help::text(),
        Command::Version => String::new(),
        Command::InfoServer { extended } => {
            let (settings, lists) =
                store.read_with(|tx| Ok((tx.settings()?, store::server_lists(tx)?)))?;
            if json {
                to_json(&json!({ "settings": settings, "lists": lists }))
            } else {
                output::info_server(&settings, &lists, *extended)
            }
        }
        Command::InfoDomain { domain, shown } => {
            let status = store.read_with(|tx| tx.domain_status(domain))?;
            let enabled = status.unwrap_or(true);
            if json {
                to_json(&json!({ "domain": domain, "enabled": enabled }))
            } else {
                output::info_domain(shown, enabled)
            }
        }
        Command::InfoMailname { mail, shown } => {
            let lists = store.read_with(|tx| store::mailbox_lists(tx, mail))?;
            if json {
                to_json(&json!({ "mail": mail, "black": lists.black, "white": lists.white }))
            } else {
                output::info_mailname(shown, &lists)
            }
        }
        Command::UpdateServer(update) => {
            let found = store.write_with(|tx| {
                // A re-run transaction (PostgreSQL deadlock retry) starts with no warnings.
                let mut found = Vec::new();
                let settings = update.applied(&tx.settings_for_update()?)?;
                tx.set_settings(&settings)?;
                for (kind, edit) in &update.edits {
                    found.extend(store::apply_list_edit(tx, *kind, "", edit)?);
                }
                check_list_sizes(tx, &update.edits, "")?;
                Ok(found)
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
            let found = store.write_with(|tx| {
                let mut found = Vec::new();
                for (kind, edit) in edits {
                    found.extend(store::apply_list_edit(tx, *kind, mail, edit)?);
                }
                check_list_sizes(tx, edits, mail)?;
                Ok(found)
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
    kind.display_name(owner)
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
