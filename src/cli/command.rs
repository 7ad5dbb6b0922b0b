//! What `grey_listing` can be asked to do: the validated [`Command`], and for each command its
//! names, the operation its messages name and the options it allows ([`CommandSpec`]), plus
//! how the user spelled a command or an option (from the spelling map `args::translate` makes).

use super::args::{Args, Spelling};
use super::{check, explain, report};
use crate::config::{self, ListEdit, ListKind, Settings};
use crate::plesk::PleskConfig;
use crate::store::{DbLocation, StoreError};
use crate::transfer::ConfigDump;

/// A validated command, ready to run.
#[derive(Debug)]
pub(super) enum Command {
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
    pub(super) fn only_reads(&self) -> bool {
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

/// Changes to the server-wide settings: each given setting with its value (as
/// [`config::SettingDef::get`] gives it), then the list edits.
#[derive(Debug, Default)]
pub(super) struct ServerUpdate {
    pub(super) settings: Vec<(&'static config::SettingDef, u64)>,
    pub(super) edits: Vec<(ListKind, ListEdit)>,
    /// `-grey-interval` and `-expire-interval` as the user spelled them, for the refusal.
    pub(super) interval_names: [String; 2],
}

impl ServerUpdate {
    fn apply(&self, settings: &mut Settings) {
        for (def, value) in &self.settings {
            (def.set)(settings, *value);
        }
    }

    /// Applies the update over `stored` and checks the result (the stored values matter: a
    /// lower expire interval alone can fall under the stored grey interval).
    pub(super) fn applied(&self, stored: &Settings) -> Result<Settings, StoreError> {
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

/// The list options `--update-server` takes besides the settings.
const SERVER_LIST_OPTIONS: [&str; 4] = [
    "blacklist",
    "whitelist",
    "domains-whitelist",
    "domains-blacklist",
];

/// Options `--update-server` takes: every setting and every server list.
static SERVER_OPTIONS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    config::SETTINGS
        .iter()
        .map(|def| def.option)
        .chain(SERVER_LIST_OPTIONS)
        .collect()
});

/// Every option that takes a value, and whether it was given: Plesk's settings, the lists, our
/// settings, then the options of the extension commands (the first one not allowed is named).
pub(super) fn given_options(args: &Args) -> Vec<(&'static str, bool)> {
    let settings = |extension: bool| {
        config::SETTINGS
            .iter()
            .filter(move |def| def.extension == extension)
            .map(|def| (def.option, args.setting(def.option).is_some()))
    };
    let lists = [
        !args.blacklist.is_empty(),
        !args.whitelist.is_empty(),
        !args.domains_whitelist.is_empty(),
        !args.domains_blacklist.is_empty(),
    ];
    settings(false)
        .chain(SERVER_LIST_OPTIONS.into_iter().zip(lists))
        .chain(settings(true))
        .chain([
            ("since", args.since.is_some()),
            ("top", args.top.is_some()),
            ("threshold", args.threshold.is_some()),
            ("w", args.warning.is_some()),
            ("c", args.critical.is_some()),
            ("ignore-file", args.ignore_file.is_some()),
        ])
        .collect()
}

/// One command's names, the operation its messages name, and the options it allows — the one
/// table validation, error messages and `command_as_typed` all read.
pub(super) struct CommandSpec {
    long: &'static str,
    pub(super) operation: String,
    pub(super) allowed: &'static [&'static str],
}

/// The spec of the command clap parsed (its `command` group admits exactly one).
pub(super) fn command_spec(args: &Args) -> CommandSpec {
    let spec = |long, operation: String, allowed| CommandSpec {
        long,
        operation,
        allowed,
    };
    if args.help {
        spec("help", "help".to_string(), &[])
    } else if args.version {
        spec("version", "version".to_string(), &[])
    } else if args.info_server {
        spec(
            "info-server",
            "gathering of server wide information".to_string(),
            &[],
        )
    } else if let Some(domain) = &args.info_domain {
        let operation = format!("gathering of information for domain '{domain}'");
        spec("info-domain", operation, &[])
    } else if let Some(mail) = &args.info_mailname {
        let operation = format!("gathering of information for mail '{mail}'");
        spec("info-mailname", operation, &[])
    } else if args.update_server {
        let operation = "update of server-wide settings".to_string();
        spec("update-server", operation, SERVER_OPTIONS.as_slice())
    } else if let Some(domain) = &args.update_domain {
        spec(
            "update-domain",
            format!("update of domain '{domain}'"),
            &["status"],
        )
    } else if let Some(mail) = &args.update_mailname {
        let operation = format!("update of mail '{mail}'");
        spec("update-mailname", operation, &["blacklist", "whitelist"])
    } else if args.explain.is_some() {
        spec("explain", "explanation".to_string(), &[])
    } else if args.report {
        spec(
            "report",
            "report".to_string(),
            &["since", "top", "threshold"],
        )
    } else if args.check {
        spec(
            "check",
            "check".to_string(),
            &["since", "w", "c", "ignore-file"],
        )
    } else if args.purge {
        spec("purge", "purge".to_string(), &[])
    } else if args.stats {
        spec("stats", "gathering of statistics".to_string(), &[])
    } else if args.import_plesk.is_some() {
        let operation = "import of Plesk configuration".to_string();
        spec("import-plesk", operation, &[])
    } else if args.export {
        spec("export", "export of configuration".to_string(), &[])
    } else if args.import.is_some() {
        spec("import", "import of configuration".to_string(), &[])
    } else if args.backup.is_some() {
        spec("backup", "backup".to_string(), &[])
    } else if args.migrate_store.is_some() {
        let operation = "migration of store".to_string();
        spec("migrate-store", operation, &[])
    } else {
        spec("help", "command line parsing".to_string(), &[])
    }
}

/// The command as the user typed it, for messages (`-ud`, `--update-domain`).
pub(super) fn command_as_typed(spec: &CommandSpec, spelling: &Spelling) -> String {
    spelling
        .of(spec.long)
        .map_or_else(|| format!("--{}", spec.long), str::to_string)
}

/// Names an option as the user typed it (`-status` or `--status`).
pub(super) fn typed(spelling: &Spelling, long: &str) -> String {
    spelling
        .of(long)
        .map_or_else(|| format!("-{long}"), str::to_string)
}
