//! The command line: clap definitions plus the small translation that lets Plesk's single-dash
//! long options (`-status on`, `-ud example.com`) reach clap as `--status on`, `--ud example.com`
//! (that translation and the parse: `args/plesk_argv.rs`).

use clap::{ArgAction, ArgGroup, CommandFactory, Parser};

pub(super) use super::setting_args::SettingArgs;

mod plesk_argv;

pub(super) use plesk_argv::{ArgvError, Spelling, parse, translate};

/// The `grey_listing` command line as clap sees it (after `translate`).
#[derive(Debug, Parser)]
#[command(
    name = "grey_listing",
    version,
    about = "Configure greylisting (Plesk-compatible grey_listing command)",
    long_about = "Configure greylisting: server-wide settings, per-domain checking and per-mailbox \
                  lists, in the database shared with greylisting-filter and greylisting-policyd. \
                  Every option and command is accepted with one or two leading dashes.",
    override_usage = "grey_listing <command> [mail-address|domain-name] [<option> <value>]...",
    disable_help_flag = true,
    // Our own `--version`/`-V` command below (clap's flag would bypass the one-or-two-dash
    // translation); `version` stays for the man page.
    disable_version_flag = true,
    args_override_self = true,
    group(ArgGroup::new("command").required(true).multiple(false))
)]
pub struct Args {
    /// Update the server-wide settings.
    #[arg(
        long = "update-server",
        visible_alias = "u",
        group = "command",
        help_heading = "Commands"
    )]
    pub update_server: bool,
    /// Update the grey listing configuration of a domain.
    #[arg(
        long = "update-domain",
        visible_alias = "ud",
        value_name = "DOMAIN",
        group = "command",
        help_heading = "Commands"
    )]
    pub update_domain: Option<String>,
    /// Update the grey listing configuration of a mail user.
    #[arg(
        long = "update-mailname",
        visible_alias = "um",
        value_name = "MAIL",
        group = "command",
        help_heading = "Commands"
    )]
    pub update_mailname: Option<String>,
    /// Show the server-wide settings.
    #[arg(
        long = "info-server",
        visible_alias = "i",
        group = "command",
        help_heading = "Commands"
    )]
    pub info_server: bool,
    /// Show the settings of a domain.
    #[arg(
        long = "info-domain",
        visible_alias = "id",
        value_name = "DOMAIN",
        group = "command",
        help_heading = "Commands"
    )]
    pub info_domain: Option<String>,
    /// Show the settings of a mail user.
    #[arg(
        long = "info-mailname",
        visible_alias = "im",
        value_name = "MAIL",
        group = "command",
        help_heading = "Commands"
    )]
    pub info_mailname: Option<String>,
    /// Copy the configuration and the live triplets from database FROM to database TO, in one
    /// transaction on TO (extension; FROM and TO are SQLite paths or postgres:// URLs).
    #[arg(
        long = "migrate-store",
        num_args = 2,
        value_names = ["FROM", "TO"],
        group = "command",
        help_heading = "Extension commands"
    )]
    pub migrate_store: Option<Vec<String>>,
    /// Display the help page.
    #[arg(
        long = "help",
        visible_alias = "h",
        group = "command",
        help_heading = "Commands"
    )]
    pub help: bool,
    /// Print the program name and version (extension).
    #[arg(
        long = "version",
        visible_alias = "V",
        group = "command",
        help_heading = "Extension commands"
    )]
    pub version: bool,
    /// Walk through the decision for one message, read-only (extension).
    #[arg(
        long = "explain",
        num_args = 4,
        value_names = ["CLIENT-IP", "CLIENT-HOST|-", "SENDER|-", "RECIPIENT"],
        group = "command",
        help_heading = "Extension commands"
    )]
    pub explain: Option<Vec<String>>,
    /// Table of the sender organisations most often deferred (extension).
    #[arg(
        long = "report",
        group = "command",
        help_heading = "Extension commands"
    )]
    pub report: bool,
    /// Nagios/Icinga plugin: warn about often deferred, unlisted sender organisations (extension).
    #[arg(long = "check", group = "command", help_heading = "Extension commands")]
    pub check: bool,
    /// Nagios/Icinga plugin: ask every DNSWL/DNSBL zone for its RFC 5782 test entries (extension).
    #[arg(
        long = "check-dns",
        group = "command",
        help_heading = "Extension commands"
    )]
    pub check_dns: bool,
    /// Remove expired triplets and old decision-log rows (extension).
    #[arg(long = "purge", group = "command", help_heading = "Extension commands")]
    pub purge: bool,
    /// Show counts of triplets and recent decisions (extension).
    #[arg(long = "stats", group = "command", help_heading = "Extension commands")]
    pub stats: bool,
    /// Apply the output of Plesk's `grey_listing --info-server` (a file, or - for stdin; extension).
    #[arg(
        long = "import-plesk",
        value_name = "FILE",
        group = "command",
        help_heading = "Extension commands"
    )]
    pub import_plesk: Option<String>,
    /// Print the whole configuration (settings, lists, domains, mailboxes) as JSON (extension).
    #[arg(
        long = "export",
        group = "command",
        help_heading = "Extension commands"
    )]
    pub export: bool,
    /// Replace the whole configuration with an --export file (or - for stdin; extension).
    #[arg(
        long = "import",
        value_name = "FILE",
        group = "command",
        help_heading = "Extension commands"
    )]
    pub import: Option<String>,
    /// Write a consistent copy of the SQLite database to FILE, even while it is in use (extension).
    #[arg(
        long = "backup",
        value_name = "FILE",
        group = "command",
        help_heading = "Extension commands"
    )]
    pub backup: Option<String>,

    /// Plesk's settings (`--status`, `--grey-interval`, …), one option per settings row.
    #[command(flatten)]
    pub plesk_settings: SettingArgs<false>,
    /// Edit the e-mail black list (--update-server, --update-mailname).
    #[arg(long = "blacklist", value_name = "EDIT", action = ArgAction::Append, help_heading = "Options")]
    pub blacklist: Vec<String>,
    /// Edit the e-mail white list (--update-server, --update-mailname).
    #[arg(long = "whitelist", value_name = "EDIT", action = ArgAction::Append, help_heading = "Options")]
    pub whitelist: Vec<String>,
    /// Edit the white domains patterns list (--update-server).
    #[arg(long = "domains-whitelist", value_name = "EDIT", action = ArgAction::Append, help_heading = "Options")]
    pub domains_whitelist: Vec<String>,
    /// Edit the black domains patterns list (--update-server).
    #[arg(long = "domains-blacklist", value_name = "EDIT", action = ArgAction::Append, help_heading = "Options")]
    pub domains_blacklist: Vec<String>,

    /// Our own settings (`--awl-count`, `--log-retention`, …), one option per settings row.
    #[command(flatten)]
    pub extension_settings: SettingArgs<true>,
    /// Edit the DNSWL zones: a client listed on one passes (--update-server; extension).
    #[arg(long = "dnswl-zones", value_name = "EDIT", action = ArgAction::Append, help_heading = "Extension options")]
    pub dnswl_zones: Vec<String>,
    /// Edit the DNSBL zones: a client listed on one is suspicious (--update-server; extension).
    #[arg(long = "dnsbl-zones", value_name = "EDIT", action = ArgAction::Append, help_heading = "Extension options")]
    pub dnsbl_zones: Vec<String>,
    /// Period to look back, e.g. 7d or 24h (--report, --check; extension).
    #[arg(
        long = "since",
        value_name = "DURATION",
        allow_negative_numbers = true,
        help_heading = "Extension options"
    )]
    pub since: Option<String>,
    /// Rows shown by --report (extension).
    #[arg(
        long = "top",
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Extension options"
    )]
    pub top: Option<String>,
    /// Deferrals from which --report suggests a white pattern (extension).
    #[arg(
        long = "threshold",
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Extension options"
    )]
    pub threshold: Option<String>,
    /// With --report: write an HTML page with charts to FILE (- for stdout; extension).
    #[arg(
        long = "html",
        value_name = "FILE",
        conflicts_with = "json",
        help_heading = "Extension options"
    )]
    pub html: Option<String>,
    /// With --stats: print the stored decision counters for Prometheus (extension).
    #[arg(
        long = "prometheus",
        conflicts_with = "json",
        help_heading = "Extension options"
    )]
    pub prometheus: bool,
    /// Deferrals of one unlisted organisation that make --check warn (extension).
    #[arg(
        long = "w",
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Extension options"
    )]
    pub warning: Option<String>,
    /// Deferrals of one unlisted organisation that make --check critical (extension).
    #[arg(
        long = "c",
        value_name = "N",
        allow_negative_numbers = true,
        help_heading = "Extension options"
    )]
    pub critical: Option<String>,
    /// File of sender organisations --check ignores, one domain pattern a line (extension).
    #[arg(
        long = "ignore-file",
        value_name = "FILE",
        help_heading = "Extension options"
    )]
    pub ignore_file: Option<String>,

    /// Database: an SQLite file path or a postgres:// URL (default: $GREY_LISTING_DB, else the
    /// `db =` line of /etc/grey_listing.conf or $GREY_LISTING_CONF, else
    /// /var/lib/grey_listing/greylist.db).
    #[arg(
        long = "db",
        value_name = "PATH|URL",
        global = true,
        help_heading = "Global options"
    )]
    pub db: Option<String>,
    /// Print information as a JSON object.
    #[arg(long = "json", global = true, help_heading = "Global options")]
    pub json: bool,
    /// With --info-server: also show the extension settings.
    #[arg(long = "extended", global = true, help_heading = "Global options")]
    pub extended: bool,
}

impl Args {
    /// The value given for the settings option `option` (a [`crate::config::SETTINGS`] row's
    /// option), as typed.
    pub fn setting(&self, option: &str) -> Option<&str> {
        self.plesk_settings
            .get(option)
            .or_else(|| self.extension_settings.get(option))
    }
}

/// The clap command, for man pages, completions and the translation table.
pub fn command() -> clap::Command {
    Args::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        command().debug_assert();
    }

    // The man page and completions are generated from the clap definition: every settings row
    // has its option there, with the row's description and value name, under the heading its
    // kind belongs to, and `Args::setting` reads it.
    #[test]
    fn every_setting_has_its_clap_option() {
        let command = command();
        for def in &crate::config::SETTINGS {
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(def.option))
                .unwrap_or_else(|| panic!("no clap option --{}", def.option));
            let heading = if def.extension {
                "Extension options"
            } else {
                "Options"
            };
            assert_eq!(arg.get_help_heading(), Some(heading), "{}", def.option);
            assert_eq!(
                arg.get_help().map(|help| help.to_string()).as_deref(),
                Some(def.summary),
                "{}",
                def.option
            );
            let names = arg.get_value_names().unwrap_or_default();
            assert_eq!(names, [def.value_name], "{}", def.option);
            let argv = [
                "--update-server".to_string(),
                format!("--{}", def.option),
                "x".to_string(),
            ];
            let args = parse(&argv, &Spelling::default()).unwrap();
            assert_eq!(args.setting(def.option), Some("x"), "{}", def.option);
        }
    }

    // Each refusal of the command line reads word for word as the admin sees it, in the
    // spelling typed.
    #[test]
    fn refusals_read_exactly() {
        let refusal = |argv: &[&str]| {
            let argv: Vec<String> = argv.iter().map(ToString::to_string).collect();
            let translated = translate(&argv);
            parse(&translated.argv, &translated.spelling)
                .err()
                .map(|e| e.to_string())
        };
        for (argv, expected) in [
            (&["-bogus"][..], "unknown option '-bogus'"),
            (&["-i", "extra"][..], "unexpected argument 'extra'"),
            (&["-u", "-status"][..], "option '-status' needs a value"),
            (
                &["-i", "-u"][..],
                "'-i' cannot be used with '-u'; give one command",
            ),
            (&[][..], "no command given (see grey_listing --help)"),
        ] {
            assert_eq!(refusal(argv).as_deref(), Some(expected), "{argv:?}");
        }
        let argv = ["-i".to_string(), "-u".to_string()];
        let translated = translate(&argv);
        assert_eq!(
            parse(&translated.argv, &translated.spelling).err(),
            Some(ArgvError::Conflict {
                arg: "-i".to_string(),
                prior: "-u".to_string()
            })
        );
    }
}
