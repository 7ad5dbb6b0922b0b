//! The server-wide settings as command-line options, made from the settings table
//! ([`crate::config::SETTINGS`]) at run time: one row is one option, with no field of its own in
//! [`super::args::Args`].

use std::collections::BTreeMap;

use clap::{Arg, ArgAction, ArgMatches};

use crate::config::{SETTINGS, SettingDef};

/// The options of the [`crate::config::SETTINGS`] rows whose `extension` is `EXTENSION`, built
/// from the table at run time (name, value name, description, heading), so a new row is an
/// option without a field here. Two instances keep Plesk's settings and ours at their places in
/// the option list (the man page and completions follow it).
#[derive(Debug, Clone, Default)]
pub struct SettingArgs<const EXTENSION: bool> {
    /// The values given, by the row's option name, as typed.
    values: BTreeMap<&'static str, String>,
}

impl<const EXTENSION: bool> SettingArgs<EXTENSION> {
    fn rows() -> impl Iterator<Item = &'static SettingDef> {
        SETTINGS.iter().filter(|def| def.extension == EXTENSION)
    }

    /// The value given for `option`, if it is one of this instance's rows.
    pub fn get(&self, option: &str) -> Option<&str> {
        self.values.get(option).map(String::as_str)
    }
}

impl<const EXTENSION: bool> clap::FromArgMatches for SettingArgs<EXTENSION> {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut args = Self::default();
        args.update_from_arg_matches(matches)?;
        Ok(args)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for def in Self::rows() {
            if let Some(value) = matches.get_one::<String>(def.option) {
                self.values.insert(def.option, value.clone());
            }
        }
        Ok(())
    }
}

impl<const EXTENSION: bool> clap::Args for SettingArgs<EXTENSION> {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        let heading = if EXTENSION {
            "Extension options"
        } else {
            "Options"
        };
        for def in Self::rows() {
            cmd = cmd.arg(
                Arg::new(def.option)
                    .long(def.option)
                    .value_name(def.value_name)
                    .help(def.summary)
                    .help_heading(heading)
                    .action(ArgAction::Set)
                    .value_parser(clap::value_parser!(String))
                    // `-grey-interval -5` reaches the range check, which names the option.
                    .allow_negative_numbers(!def.is_switch()),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}
