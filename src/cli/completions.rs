//! Shell completions for `grey_listing`, written from the clap definition.
//!
//! clap_complete offers every long option with two dashes and every alias as another long option
//! (`--u`, `--ud`), while a Plesk administrator types one dash: `-u`, `-ud`, `-status`. So the
//! scripts are written here: each command and option in its one-dash form (the two-dash forms
//! still work, they are just not offered), `on off` after `-status`, `true false` after the boolean
//! options, file names where a file is expected, and nothing after an option whose value is free.

use clap::{Arg, ArgAction};

/// A shell we write completions for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shell {
    /// bash (bash-completion).
    Bash,
    /// zsh (compsys).
    Zsh,
    /// fish.
    Fish,
}

/// What may follow an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    /// Nothing: the option is a flag.
    None,
    /// One of these words.
    Words(&'static [&'static str]),
    /// A file name.
    File,
    /// A value we cannot guess (a number, a domain, a list edit).
    Free,
}

/// One option as the completions offer it.
struct Entry {
    /// Every one-dash spelling: the long name, then its visible aliases (`-update-server`, `-u`).
    names: Vec<String>,
    /// The one-line description.
    help: String,
    /// What follows it.
    value: Value,
}

const ON_OFF: &[&str] = &["on", "off"];
const TRUE_FALSE: &[&str] = &["true", "false"];

fn value_of(arg: &Arg) -> Value {
    if matches!(
        arg.get_action(),
        ArgAction::SetTrue | ArgAction::SetFalse | ArgAction::Count
    ) {
        return Value::None;
    }
    let names: Vec<&str> = arg
        .get_value_names()
        .unwrap_or_default()
        .iter()
        .map(|name| name.as_str())
        .collect();
    match names.as_slice() {
        ["on|off"] => Value::Words(ON_OFF),
        ["true|false"] => Value::Words(TRUE_FALSE),
        ["all|suspicious"] => Value::Words(crate::config::GREYLIST_CLIENTS_WORDS),
        ["FILE"] | ["PATH|URL"] | ["FROM", "TO"] => Value::File,
        _ => Value::Free,
    }
}

/// Every option of `grey_listing`, in the order the clap definition gives them.
fn entries() -> Vec<Entry> {
    super::command()
        .get_arguments()
        .filter(|arg| !arg.is_hide_set())
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let names = std::iter::once(long)
                .chain(arg.get_visible_aliases().unwrap_or_default())
                .map(|name| format!("-{name}"))
                .collect();
            let help = arg
                .get_help()
                .map(|help| help.to_string())
                .unwrap_or_default();
            Some(Entry {
                names,
                help,
                value: value_of(arg),
            })
        })
        .collect()
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> String {
    let entries = entries();
    match shell {
        Shell::Bash => bash(&entries),
        Shell::Zsh => zsh(&entries),
        Shell::Fish => fish(&entries),
    }
}

/// The names of the options whose value is `kind`, as one shell `case` pattern (`-a|--a|-b|--b`).
fn case_pattern(entries: &[Entry], kind: Value) -> Option<String> {
    let names: Vec<String> = entries
        .iter()
        .filter(|entry| entry.value == kind)
        .flat_map(|entry| entry.names.iter())
        .flat_map(|name| [name.clone(), format!("-{name}")])
        .collect();
    (!names.is_empty()).then(|| names.join("|"))
}

/// The distinct value kinds that take a value, in a fixed order.
fn value_kinds() -> [Value; 5] {
    [
        Value::Words(ON_OFF),
        Value::Words(TRUE_FALSE),
        Value::Words(crate::config::GREYLIST_CLIENTS_WORDS),
        Value::File,
        Value::Free,
    ]
}

fn all_names(entries: &[Entry]) -> String {
    entries
        .iter()
        .flat_map(|entry| entry.names.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

const HEADER: &str = "generated from grey_listing's option definitions \
                      (UPDATE_GENERATED=1 cargo test --locked --test integration generated)";

fn bash(entries: &[Entry]) -> String {
    let mut out = format!(
        "# bash completion for grey_listing, {HEADER}\n\
         _grey_listing() {{\n    \
         local cur=\"${{COMP_WORDS[COMP_CWORD]}}\" prev=\"${{COMP_WORDS[COMP_CWORD-1]}}\"\n    \
         COMPREPLY=()\n    \
         case \"$prev\" in\n"
    );
    for kind in value_kinds() {
        let Some(pattern) = case_pattern(entries, kind) else {
            continue;
        };
        let action = match kind {
            Value::Words(words) => format!(
                "COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))",
                words.join(" ")
            ),
            Value::File => "COMPREPLY=($(compgen -f -- \"$cur\"))".to_string(),
            Value::Free | Value::None => ":".to_string(),
        };
        out.push_str(&format!(
            "        {pattern})\n            {action}\n            return 0\n            ;;\n"
        ));
    }
    out.push_str(&format!(
        "    esac\n    \
         COMPREPLY=($(compgen -W \"{}\" -- \"$cur\"))\n\
         }}\n\
         complete -F _grey_listing grey_listing\n",
        all_names(entries)
    ));
    out
}

fn zsh(entries: &[Entry]) -> String {
    let mut out = format!(
        "#compdef grey_listing\n\
         # zsh completion for grey_listing, {HEADER}\n\
         local -a opts\n\
         opts=({})\n\
         case ${{words[CURRENT-1]}} in\n",
        all_names(entries)
    );
    for kind in value_kinds() {
        let Some(pattern) = case_pattern(entries, kind) else {
            continue;
        };
        let action = match kind {
            Value::Words(words) => format!("compadd -- {}", words.join(" ")),
            Value::File => "_files".to_string(),
            Value::Free | Value::None => ":".to_string(),
        };
        out.push_str(&format!(
            "    {pattern})\n        {action}\n        return\n        ;;\n"
        ));
    }
    out.push_str("esac\ncompadd -- \"${opts[@]}\"\n");
    out
}

/// Quotes text for fish's single-quoted strings.
fn fish_quote(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn fish(entries: &[Entry]) -> String {
    let mut out = format!(
        "# fish completion for grey_listing, {HEADER}\n\
         complete -c grey_listing -f\n"
    );
    for entry in entries {
        let value = match entry.value {
            Value::None => String::new(),
            Value::Words(words) => format!(" -x -a {}", fish_quote(&words.join(" "))),
            Value::File => " -r -F".to_string(),
            Value::Free => " -x".to_string(),
        };
        for name in &entry.names {
            out.push_str(&format!(
                "complete -c grey_listing -o {}{value} -d {}\n",
                name.trim_start_matches('-'),
                fish_quote(&entry.help)
            ));
        }
    }
    out
}
