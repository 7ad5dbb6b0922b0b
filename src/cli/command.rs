//! What `grey_listing` can be asked to do: the validated [`Command`], and for each kind of
//! command its name, the operation its messages name and the options it allows
//! ([`CommandKind`]), plus how the user spelled a command or an option (from the spelling map
//! `args::translate` makes).

use super::args::{Args, Spelling};
use super::{check, explain, report};
use crate::config::{self, ListEdit, ListKind, Settings};
use crate::export_format::ConfigDump;
use crate::plesk_import::PleskConfig;
use crate::store::{DbLocation, StoreError};

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
    CheckDns,
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
                | Command::CheckDns
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

/// The zone lists `--update-server` takes (extensions).
const SERVER_ZONE_OPTIONS: [&str; 2] = ["dnswl-zones", "dnsbl-zones"];

/// Options `--update-server` takes: every setting and every server list.
static SERVER_OPTIONS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    config::SETTINGS
        .iter()
        .map(|def| def.option)
        .chain(SERVER_LIST_OPTIONS)
        .chain(SERVER_ZONE_OPTIONS)
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
        .chain(
            SERVER_ZONE_OPTIONS
                .into_iter()
                .zip([!args.dnswl_zones.is_empty(), !args.dnsbl_zones.is_empty()]),
        )
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

/// The kinds of command, each with its one description: its long name, the options it allows
/// and the operation its messages name — what validation, error messages and
/// [`command_as_typed`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CommandKind {
    Help,
    Version,
    InfoServer,
    InfoDomain,
    InfoMailname,
    UpdateServer,
    UpdateDomain,
    UpdateMailname,
    Explain,
    Report,
    Check,
    CheckDns,
    Purge,
    Stats,
    ImportPlesk,
    Export,
    Import,
    Backup,
    MigrateStore,
}

impl CommandKind {
    /// The command clap parsed. Its `command` group admits exactly one and requires it, so the
    /// help fallback is never taken on a parsed command line.
    pub(super) fn of(args: &Args) -> Self {
        let given = [
            (args.help, Self::Help),
            (args.version, Self::Version),
            (args.info_server, Self::InfoServer),
            (args.info_domain.is_some(), Self::InfoDomain),
            (args.info_mailname.is_some(), Self::InfoMailname),
            (args.update_server, Self::UpdateServer),
            (args.update_domain.is_some(), Self::UpdateDomain),
            (args.update_mailname.is_some(), Self::UpdateMailname),
            (args.explain.is_some(), Self::Explain),
            (args.report, Self::Report),
            (args.check, Self::Check),
            (args.check_dns, Self::CheckDns),
            (args.purge, Self::Purge),
            (args.stats, Self::Stats),
            (args.import_plesk.is_some(), Self::ImportPlesk),
            (args.export, Self::Export),
            (args.import.is_some(), Self::Import),
            (args.backup.is_some(), Self::Backup),
            (args.migrate_store.is_some(), Self::MigrateStore),
        ];
        given
            .into_iter()
            .find_map(|(given, kind)| given.then_some(kind))
            .unwrap_or(Self::Help)
    }

    /// Its clap long name (`update-domain`).
    pub(super) fn long(self) -> &'static str {
        match self {
            Self::Help => "help",
            Self::Version => "version",
            Self::InfoServer => "info-server",
            Self::InfoDomain => "info-domain",
            Self::InfoMailname => "info-mailname",
            Self::UpdateServer => "update-server",
            Self::UpdateDomain => "update-domain",
            Self::UpdateMailname => "update-mailname",
            Self::Explain => "explain",
            Self::Report => "report",
            Self::Check => "check",
            Self::CheckDns => "check-dns",
            Self::Purge => "purge",
            Self::Stats => "stats",
            Self::ImportPlesk => "import-plesk",
            Self::Export => "export",
            Self::Import => "import",
            Self::Backup => "backup",
            Self::MigrateStore => "migrate-store",
        }
    }

    /// The value-taking options it allows (long names); [`given_options`] lists them all.
    pub(super) fn allowed(self) -> &'static [&'static str] {
        match self {
            Self::UpdateServer => SERVER_OPTIONS.as_slice(),
            Self::UpdateDomain => &["status"],
            Self::UpdateMailname => &["blacklist", "whitelist"],
            Self::Report => &["since", "top", "threshold"],
            Self::Check => &["since", "w", "c", "ignore-file"],
            Self::Help
            | Self::Version
            | Self::InfoServer
            | Self::InfoDomain
            | Self::InfoMailname
            | Self::Explain
            | Self::CheckDns
            | Self::Purge
            | Self::Stats
            | Self::ImportPlesk
            | Self::Export
            | Self::Import
            | Self::Backup
            | Self::MigrateStore => &[],
        }
    }

    /// The operation its messages name (`update of domain 'example.com'`).
    pub(super) fn operation(self, args: &Args) -> String {
        let named = |what: &str, name: &Option<String>| {
            format!("{what} '{}'", name.as_deref().unwrap_or_default())
        };
        match self {
            Self::Help => "help".to_string(),
            Self::Version => "version".to_string(),
            Self::InfoServer => "gathering of server wide information".to_string(),
            Self::InfoDomain => named("gathering of information for domain", &args.info_domain),
            Self::InfoMailname => named("gathering of information for mail", &args.info_mailname),
            Self::UpdateServer => "update of server-wide settings".to_string(),
            Self::UpdateDomain => named("update of domain", &args.update_domain),
            Self::UpdateMailname => named("update of mail", &args.update_mailname),
            Self::Explain => "explanation".to_string(),
            Self::Report => "report".to_string(),
            Self::Check => "check".to_string(),
            Self::CheckDns => "check of DNS zones".to_string(),
            Self::Purge => "purge".to_string(),
            Self::Stats => "gathering of statistics".to_string(),
            Self::ImportPlesk => "import of Plesk configuration".to_string(),
            Self::Export => "export of configuration".to_string(),
            Self::Import => "import of configuration".to_string(),
            Self::Backup => "backup".to_string(),
            Self::MigrateStore => "migration of store".to_string(),
        }
    }
}

/// The command as the user typed it, for messages (`-ud`, `--update-domain`).
pub(super) fn command_as_typed(kind: CommandKind, spelling: &Spelling) -> String {
    spelling
        .of(kind.long())
        .map_or_else(|| format!("--{}", kind.long()), str::to_string)
}

/// Names an option as the user typed it (`-status` or `--status`).
pub(super) fn typed(spelling: &Spelling, long: &str) -> String {
    spelling
        .of(long)
        .map_or_else(|| format!("-{long}"), str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    const KINDS: [CommandKind; 19] = [
        CommandKind::Help,
        CommandKind::Version,
        CommandKind::InfoServer,
        CommandKind::InfoDomain,
        CommandKind::InfoMailname,
        CommandKind::UpdateServer,
        CommandKind::UpdateDomain,
        CommandKind::UpdateMailname,
        CommandKind::Explain,
        CommandKind::Report,
        CommandKind::Check,
        CommandKind::CheckDns,
        CommandKind::Purge,
        CommandKind::Stats,
        CommandKind::ImportPlesk,
        CommandKind::Export,
        CommandKind::Import,
        CommandKind::Backup,
        CommandKind::MigrateStore,
    ];

    // Every clap command is one kind, found again from the parsed line, and a kind allows only
    // options validation knows (a misspelt name would allow nothing and refuse the option).
    #[test]
    fn every_clap_command_is_one_kind_with_known_options() {
        let mut command = super::super::command();
        command.build();
        let group: Vec<&str> = command
            .get_arguments()
            .filter(|arg| {
                command
                    .get_groups()
                    .any(|g| g.get_id() == "command" && g.get_args().any(|id| id == arg.get_id()))
            })
            .filter_map(|arg| arg.get_long())
            .collect();
        assert_eq!(group.len(), KINDS.len());
        let known: Vec<&str> = given_options(&Args::parse_from(["grey_listing", "--purge"]))
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        for kind in KINDS {
            assert!(group.contains(&kind.long()), "{kind:?}");
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(kind.long()))
                .unwrap();
            let values = arg.get_num_args().map_or(0, |n| n.min_values());
            let values = if arg.get_action().takes_values() {
                values.max(1)
            } else {
                0
            };
            let argv = std::iter::once("grey_listing".to_string())
                .chain([format!("--{}", kind.long())])
                .chain((0..values).map(|i| format!("v{i}")));
            assert_eq!(CommandKind::of(&Args::parse_from(argv)), kind);
            for option in kind.allowed() {
                assert!(known.contains(option), "{kind:?} allows unknown {option}");
            }
        }
    }
}
