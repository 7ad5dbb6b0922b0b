//! Turns a parsed command line into a [`Command`]: the options the command allows, then every
//! value checked before anything is opened, each refusal naming the option as the user typed it.

use super::args::{Args, Spelling};
use super::command::{Command, CommandKind, ServerUpdate, command_as_typed, given_options, typed};
use super::{CliError, backup, check, explain, import_export, report};
use crate::config::{self, ListEdit, ListKind, SettingDef, SettingValueError, ValueError};
use crate::store::DbLocation;
use thiserror::Error;

/// What every check needs to word its refusal: the operation and how options were typed.
struct Checker<'a> {
    operation: String,
    spelling: &'a Spelling,
}

impl Checker<'_> {
    fn bad(&self, message: String) -> CliError {
        CliError::BadInput {
            operation: self.operation.clone(),
            message,
        }
    }

    /// A bad value, named by its option as typed.
    fn culprit(&self, name: &str, e: ValueError) -> CliError {
        self.bad(format!("{}: {e}", typed(self.spelling, name)))
    }

    fn on_off(&self, name: &str, v: Option<&str>) -> Result<Option<bool>, CliError> {
        v.map(|v| config::parse_on_off(v).map_err(|e| self.culprit(name, e)))
            .transpose()
    }

    fn duration(&self, name: &str, v: &Option<String>, max: u64) -> Result<Option<i64>, CliError> {
        v.as_deref()
            .map(|v| match config::parse_duration(v) {
                Ok(seconds) if seconds as u64 <= max => Ok(seconds),
                Ok(_) => Err(self.bad(format!(
                    "{}: '{v}' is longer than {} days",
                    typed(self.spelling, name),
                    max / 86_400
                ))),
                Err(e) => Err(self.culprit(name, e)),
            })
            .transpose()
    }

    fn count(
        &self,
        name: &str,
        v: &Option<String>,
        min: u64,
        default: u64,
    ) -> Result<u64, CliError> {
        v.as_deref()
            .map(|v| {
                config::parse_in_range(v, min, 1_000_000_000).map_err(|e| match e {
                    ValueError::NotANumber(v) => self.bad(format!(
                        "{}: '{v}' is not a whole number",
                        typed(self.spelling, name)
                    )),
                    e => self.culprit(name, e),
                })
            })
            .transpose()
            .map(|n| n.unwrap_or(default))
    }

    /// Every list edit given, in the order of the lists.
    fn list_edits(&self, args: &Args) -> Result<Vec<(ListKind, ListEdit)>, CliError> {
        let given = [
            ("blacklist", ListKind::Black, &args.blacklist),
            ("whitelist", ListKind::White, &args.whitelist),
            (
                "domains-whitelist",
                ListKind::DomainsWhite,
                &args.domains_whitelist,
            ),
            (
                "domains-blacklist",
                ListKind::DomainsBlack,
                &args.domains_blacklist,
            ),
            ("dnswl-zones", ListKind::DnswlZones, &args.dnswl_zones),
            ("dnsbl-zones", ListKind::DnsblZones, &args.dnsbl_zones),
        ];
        let mut edits = Vec::new();
        for (name, kind, values) in given {
            for value in values {
                let edit = config::parse_list_edit(value)
                    .and_then(|edit| {
                        if kind.is_zone() {
                            config::edit_zones(edit)
                        } else {
                            config::edit_to_ascii(kind, edit)
                        }
                    })
                    .map_err(|e| self.culprit(name, e))?;
                edits.push((kind, edit));
            }
        }
        Ok(edits)
    }

    /// Every setting given, parsed by its table row, in the table's order.
    fn settings(&self, args: &Args) -> Result<Vec<(&'static SettingDef, u64)>, CliError> {
        let mut settings = Vec::new();
        for def in &config::SETTINGS {
            let Some(value) = args.setting(def.option) else {
                continue;
            };
            let parsed = def.parse(value).map_err(|e| {
                let why = match e {
                    SettingValueError::Value(e) => return self.culprit(def.option, e),
                    SettingValueError::TooLong { max_days } => {
                        format!("is longer than {max_days} days")
                    }
                    // Kept in whole minutes, the unit `--json` and `--export` show it in.
                    SettingValueError::NotWholeMinutes => {
                        "is not a whole number of minutes".to_string()
                    }
                };
                self.bad(format!(
                    "{}: '{value}' {why}",
                    typed(self.spelling, def.option)
                ))
            })?;
            settings.push((def, parsed));
        }
        Ok(settings)
    }

    fn report(&self, args: &Args) -> Result<Command, CliError> {
        Ok(Command::Report(report::ReportOptions {
            since: self
                .duration("since", &args.since, config::MAX_LOG_RETENTION)?
                .unwrap_or(report::DEFAULT_REPORT_SINCE),
            top: self.count("top", &args.top, 1, report::DEFAULT_TOP)? as usize,
            threshold: self.count("threshold", &args.threshold, 1, report::DEFAULT_THRESHOLD)?,
            html: args.html.clone(),
        }))
    }

    fn check(&self, args: &Args) -> Result<Command, CliError> {
        let warning = self.count("w", &args.warning, 1, check::DEFAULT_WARNING)?;
        let critical = self.count("c", &args.critical, 1, check::DEFAULT_CRITICAL)?;
        if warning > critical {
            return Err(self.bad(format!(
                "{} {warning} is above {} {critical}",
                typed(self.spelling, "w"),
                typed(self.spelling, "c")
            )));
        }
        let ignore = match &args.ignore_file {
            Some(path) => check::read_ignore_file(path)
                .map_err(|e| self.bad(format!("{}: {e}", typed(self.spelling, "ignore-file"))))?,
            None => Vec::new(),
        };
        Ok(Command::Check(check::CheckOptions {
            since: self
                .duration("since", &args.since, config::MAX_LOG_RETENTION)?
                .unwrap_or(check::DEFAULT_CHECK_SINCE),
            warning,
            critical,
            ignore,
        }))
    }
}

/// Validates the parsed arguments of one command line; `spelling` says how options were typed.
pub(super) fn validate(args: &Args, spelling: &Spelling) -> Result<Command, CliError> {
    let kind = CommandKind::of(args);
    let command_name = command_as_typed(kind, spelling);
    let allowed = kind.allowed();
    let check = Checker {
        operation: kind.operation(args),
        spelling,
    };
    for (name, given) in given_options(args) {
        if given && !allowed.contains(&name) {
            return Err(check.bad(format!(
                "option '{}' is not allowed with {command_name}",
                typed(spelling, name)
            )));
        }
    }
    if args.extended && !args.info_server {
        return Err(check.bad(format!(
            "option '{}' is allowed only with --info-server",
            typed(spelling, "extended")
        )));
    }
    for (given, name, command, with) in [
        (args.html.is_some(), "html", "report", args.report),
        (args.prometheus, "prometheus", "stats", args.stats),
    ] {
        if given && !with {
            return Err(check.bad(format!(
                "option '{}' is allowed only with --{command}",
                typed(spelling, name)
            )));
        }
    }
    let list_edits = check.list_edits(args)?;
    let named = |e: ValueError| check.bad(format!("{command_name}: {e}"));
    let command = if let Some(pair) = &args.migrate_store {
        validate_migration(pair, args, spelling).map_err(|e| check.bad(e.to_string()))?
    } else if args.help {
        Command::Help
    } else if args.version {
        Command::Version
    } else if args.info_server {
        Command::InfoServer {
            extended: args.extended,
        }
    } else if let Some(shown) = &args.info_domain {
        let domain = config::parse_domain(shown).map_err(named)?;
        Command::InfoDomain {
            shown: shown_as_stored(shown, &domain),
            domain,
        }
    } else if let Some(shown) = &args.info_mailname {
        let mail = config::parse_mail(shown).map_err(named)?;
        Command::InfoMailname {
            shown: shown_as_stored(shown, &mail),
            mail,
        }
    } else if args.update_server {
        Command::UpdateServer(ServerUpdate {
            settings: check.settings(args)?,
            edits: list_edits,
            interval_names: [
                typed(spelling, "grey-interval"),
                typed(spelling, "expire-interval"),
            ],
        })
    } else if let Some(shown) = &args.update_domain {
        let domain = config::parse_domain(shown).map_err(named)?;
        Command::UpdateDomain {
            shown: shown_as_stored(shown, &domain),
            domain,
            status: check.on_off("status", args.setting("status"))?,
        }
    } else if let Some(shown) = &args.update_mailname {
        let mail = config::parse_mail(shown).map_err(named)?;
        Command::UpdateMailname {
            shown: shown_as_stored(shown, &mail),
            mail,
            edits: list_edits,
        }
    } else if let Some(values) = &args.explain {
        Command::Explain(
            explain::ExplainRequest::parse(values)
                .map_err(|e| check.bad(format!("{command_name}: {e}")))?,
        )
    } else if args.report {
        check.report(args)?
    } else if args.check {
        check.check(args)?
    } else if args.check_dns {
        Command::CheckDns
    } else if args.purge {
        Command::Purge
    } else if args.stats && args.prometheus {
        Command::StatsPrometheus
    } else if args.stats {
        Command::Stats
    } else if let Some(source) = &args.import_plesk {
        Command::ImportPlesk(
            import_export::load_plesk(source).map_err(|e| check.bad(e.to_string()))?,
        )
    } else if args.export {
        Command::Export
    } else if let Some(source) = &args.import {
        Command::Import(import_export::load_export(source).map_err(|e| check.bad(e.to_string()))?)
    } else if let Some(target) = &args.backup {
        Command::Backup(backup::check_target(target).map_err(|e| check.bad(e.to_string()))?)
    } else {
        return Err(check.bad("no command given (see grey_listing --help)".to_string()));
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
    spelling: &Spelling,
) -> Result<Command, BadMigration> {
    let command = command_as_typed(CommandKind::of(args), spelling);
    if args.db.is_some() {
        return Err(BadMigration::DbGiven {
            option: typed(spelling, "db"),
            command,
        });
    }
    let [from, to] = pair else {
        return Err(BadMigration::Arity(command));
    };
    if from.is_empty() || to.is_empty() {
        return Err(BadMigration::Empty(command));
    }
    let (from, to) = (DbLocation::parse(from), DbLocation::parse(to));
    if from == to {
        return Err(BadMigration::Same { command, db: from });
    }
    if let DbLocation::Sqlite(path) = &from
        && !path.exists()
    {
        return Err(BadMigration::NoSource {
            command,
            path: path.clone(),
        });
    }
    Ok(Command::MigrateStore { from, to })
}

/// Why `--migrate-store FROM TO` is refused; `command` is the option as the user typed it.
#[derive(Debug, Clone, PartialEq, Error)]
enum BadMigration {
    /// `--db` given too.
    #[error("option '{option}' is not allowed with {command}: give FROM and TO")]
    DbGiven { option: String, command: String },
    /// Not two locations (clap counts them first).
    #[error("{0} needs two databases: FROM TO")]
    Arity(String),
    /// An empty location.
    #[error("{0}: a database location is empty")]
    Empty(String),
    /// Both name one database.
    #[error("{command}: FROM and TO are the same database ({db})")]
    Same { command: String, db: DbLocation },
    /// An SQLite source that is not there (opening it would create an empty one).
    #[error("{command}: source database {} does not exist", .path.display())]
    NoSource {
        command: String,
        path: std::path::PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    // The one refusal clap's own count of values makes unreachable from the command line
    // still reads like its siblings.
    #[test]
    fn a_migration_without_two_locations_reads_like_the_others() {
        assert_eq!(
            BadMigration::Arity("--migrate-store".to_string()).to_string(),
            "--migrate-store needs two databases: FROM TO"
        );
    }
}
