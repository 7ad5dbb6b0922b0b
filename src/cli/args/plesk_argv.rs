//! The translation that lets Plesk's single-dash long options (`-status on`, `-ud example.com`)
//! reach clap as `--status on`, `--ud example.com`, noting how the user spelled each option so
//! messages can name it that way; and the parse of the translated line.

use std::collections::HashMap;
use std::ffi::OsString;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};
use thiserror::Error;

use super::{Args, command};

/// The command line after [`translate`]: what clap parses, and how the user spelled each option.
#[derive(Debug, Clone)]
pub(crate) struct Translated {
    /// The arguments with every long name double-dashed, ready for clap.
    pub argv: Vec<String>,
    /// How each option was typed, for messages.
    pub spelling: Spelling,
}

/// How the user spelled each option on the command line: the clap long name (`update-domain`,
/// or the bare name of one clap does not know) → the first spelling typed for it, as written
/// before any `=` (`-ud`, `--update-domain`). Messages name options this way.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spelling(HashMap<String, String>);

impl Spelling {
    /// The spelling typed for the option whose clap long name is `long`, if it was typed.
    pub(crate) fn of(&self, long: &str) -> Option<&str> {
        self.0.get(long).map(String::as_str)
    }
}

/// Rewrites single-dash long names (`-status`, `-ud`, and unknown ones like `-foo`, so the error
/// names them whole) to the double-dash form clap parses, and notes how each option was spelled.
/// Values such as `-5` stay as they are.
pub(crate) fn translate(args: &[String]) -> Translated {
    let argv = args
        .iter()
        .map(|arg| match arg.strip_prefix('-') {
            Some(rest) if rest.starts_with(|c: char| c.is_ascii_alphabetic()) => format!("-{arg}"),
            _ => arg.clone(),
        })
        .collect();
    // Every alias (`ud`, `i`, `h`) → its long name, so `-ud` is found under `update-domain`.
    let command = command();
    let mut long_of = HashMap::new();
    for arg in command.get_arguments() {
        if let Some(long) = arg.get_long() {
            for name in arg
                .get_all_aliases()
                .unwrap_or_default()
                .into_iter()
                .chain([long])
            {
                long_of.insert(name, long);
            }
        }
    }
    let mut spelling = HashMap::new();
    for arg in args.iter().filter(|arg| arg.starts_with('-')) {
        let typed = arg.split_once('=').map_or(arg.as_str(), |(name, _)| name);
        let bare = typed.trim_start_matches('-');
        let long = long_of.get(bare).copied().unwrap_or(bare);
        spelling
            .entry(long.to_string())
            .or_insert_with(|| typed.to_string());
    }
    Translated {
        argv,
        spelling: Spelling(spelling),
    }
}

/// Parses already-translated arguments (without the program name).
pub(crate) fn parse(args: &[String], spelling: &Spelling) -> Result<Args, ArgvError> {
    let argv = std::iter::once(OsString::from("grey_listing"))
        .chain(hoist_global_flags(args).into_iter().map(OsString::from));
    Args::try_parse_from(argv).map_err(|err| describe_clap_error(&err, spelling))
}

/// Moves the global flags (`--db PATH`, `--db=PATH`, `--json`, `--extended`) to the end of the
/// already-translated arguments. DESIGN.md §2 lets them stand anywhere on the line, including between
/// a command and its argument (`-id --json example.com`), where clap would take the flag for the
/// command's missing value.
fn hoist_global_flags(args: &[String]) -> Vec<String> {
    let mut rest = Vec::with_capacity(args.len());
    let mut globals = Vec::new();
    let mut iter = args.iter().peekable();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--json" | "--extended" => globals.push(arg.clone()),
            "--db" => {
                globals.push(arg.clone());
                // A following option is not the path: leave it, so clap reports the missing value.
                if let Some(path) = iter.next_if(|next| !next.starts_with('-')) {
                    globals.push(path.clone());
                }
            }
            _ if arg.starts_with("--db=") => globals.push(arg.clone()),
            _ => rest.push(arg.clone()),
        }
    }
    rest.extend(globals);
    rest
}

/// Turns a clap error into one line naming the culprit, spelled as the user typed it.
/// Why the command line does not parse, naming options as the user typed them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum ArgvError {
    /// An option clap does not know.
    #[error("unknown option '{0}'")]
    UnknownOption(String),
    /// A word where no value is expected.
    #[error("unexpected argument '{0}'")]
    Unexpected(String),
    /// An option without its value.
    #[error("option '{0}' needs a value")]
    NeedsValue(String),
    /// An option given twice.
    #[error("'{0}' is given twice")]
    Twice(String),
    /// Two commands (the second, then the first).
    #[error("'{arg}' cannot be used with '{prior}'; give one command")]
    Conflict { arg: String, prior: String },
    /// An option that does not go with the rest.
    #[error("'{0}' cannot be used here")]
    NotHere(String),
    /// No command at all.
    #[error("no command given (see grey_listing --help)")]
    NoCommand,
    /// An argument that is not UTF-8.
    #[error("an argument is not valid UTF-8")]
    NotUtf8,
    /// Anything else: the first line of clap's own message.
    #[error("{0}")]
    Other(String),
}

fn describe_clap_error(err: &clap::Error, spelling: &Spelling) -> ArgvError {
    let context = |kind: ContextKind| match err.get(kind) {
        Some(ContextValue::String(s)) => Some(as_typed(s, spelling)),
        Some(ContextValue::Strings(v)) => v.first().map(|s| as_typed(s, spelling)),
        _ => None,
    };
    let arg = context(ContextKind::InvalidArg);
    match (err.kind(), arg) {
        (ErrorKind::UnknownArgument, Some(arg)) if arg.starts_with('-') => {
            ArgvError::UnknownOption(arg)
        }
        (ErrorKind::UnknownArgument, Some(arg)) => ArgvError::Unexpected(arg),
        (ErrorKind::InvalidValue, Some(arg)) => ArgvError::NeedsValue(arg),
        (ErrorKind::ArgumentConflict, Some(arg)) => match context(ContextKind::PriorArg) {
            Some(prior) if prior == arg => ArgvError::Twice(arg),
            Some(prior) => ArgvError::Conflict { arg, prior },
            None => ArgvError::NotHere(arg),
        },
        (ErrorKind::MissingRequiredArgument, _) => ArgvError::NoCommand,
        (ErrorKind::InvalidUtf8, _) => ArgvError::NotUtf8,
        _ => {
            let rendered = err.to_string();
            let first = rendered.lines().next().unwrap_or("invalid command line");
            ArgvError::Other(first.trim_start_matches("error: ").to_string())
        }
    }
}

/// Shows `--status <on|off>` as the user wrote it (`-status`, or `-i` for `--info-server`),
/// falling back to clap's spelling.
fn as_typed(clap_spelling: &str, spelling: &Spelling) -> String {
    let name = clap_spelling
        .split([' ', '='])
        .next()
        .unwrap_or(clap_spelling);
    let Some(bare) = name.strip_prefix("--") else {
        return name.to_string();
    };
    spelling.of(bare).unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_flags_move_behind_the_command_argument() {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            hoist_global_flags(&strings(&[
                "--id",
                "--json",
                "--db",
                "/x.db",
                "example.com"
            ])),
            strings(&["--id", "example.com", "--json", "--db", "/x.db"])
        );
        assert_eq!(
            hoist_global_flags(&strings(&["--db", "--i"])),
            strings(&["--i", "--db"])
        );
    }

    // Messages name an option as it was first typed, found under its long name whichever alias
    // was used; names clap does not know are kept under their own name.
    #[test]
    fn translation_notes_each_spelling_under_the_long_name() {
        let args: Vec<String> = [
            "-ud",
            "x.org",
            "--status=on",
            "-status",
            "off",
            "-foo",
            "-5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let spelling = translate(&args).spelling;
        assert_eq!(spelling.of("update-domain"), Some("-ud"));
        assert_eq!(spelling.of("ud"), None);
        assert_eq!(spelling.of("status"), Some("--status"));
        assert_eq!(spelling.of("foo"), Some("-foo"));
        assert_eq!(spelling.of("update-server"), None);
    }

    #[test]
    fn translation_leaves_negative_numbers_alone() {
        let args: Vec<String> = [
            "-ud",
            "example.com",
            "-status",
            "off",
            "-grey-interval",
            "-5",
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            translate(&args).argv,
            [
                "--ud",
                "example.com",
                "--status",
                "off",
                "--grey-interval",
                "-5",
                "--json"
            ]
        );
    }
}
