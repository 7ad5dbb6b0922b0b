//! The man page and shell completions are generated from the clap definition and committed; this
//! test regenerates them in memory and fails when the committed copies are stale (like just's
//! completions test). Update them with:
//!
//!     UPDATE_GENERATED=1 cargo test --locked --test integration generated

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use grey_listing::cli::completions::{self, Shell};
use grey_listing::manual::{Section, render_sections};

/// Every generated file: path relative to the repository, and its expected contents.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![(
        PathBuf::from("man/grey_listing.1"),
        grey_listing::cli::manpage::render(),
    )];
    // Issue 8: one man page per binary, from the library's clap definitions.
    files.push((
        PathBuf::from("man/greylisting-filter.1"),
        man_page(
            grey_listing::filter::usage::command(),
            grey_listing::filter::usage::man_sections(),
        ),
    ));
    files.push((
        PathBuf::from("man/greylisting-policyd.1"),
        man_page(
            grey_listing::policyd::options::command(),
            grey_listing::policyd::options::man_sections(),
        ),
    ));
    files.push((
        PathBuf::from("man/greylisting-milter.1"),
        man_page(
            grey_listing::milter::options::command(),
            grey_listing::milter::options::man_sections(),
        ),
    ));
    for (shell, name) in [
        (Shell::Bash, "grey_listing.bash"),
        (Shell::Zsh, "_grey_listing"),
        (Shell::Fish, "grey_listing.fish"),
    ] {
        files.push((
            Path::new("completions").join(name),
            completions::script(shell).into_bytes(),
        ));
    }
    // The daemons' options are ordinary two-dash ones: clap_complete writes their completions.
    for (name, command) in [
        (
            "greylisting-policyd",
            grey_listing::policyd::options::command(),
        ),
        (
            "greylisting-milter",
            grey_listing::milter::options::command(),
        ),
    ] {
        for (shell, file) in [
            (clap_complete::Shell::Bash, format!("{name}.bash")),
            (clap_complete::Shell::Zsh, format!("_{name}")),
            (clap_complete::Shell::Fish, format!("{name}.fish")),
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), name, &mut script);
            files.push((Path::new("completions").join(file), script));
        }
    }
    files
}

/// Renders a complete man page: clap_mangen's page for `command` (title, NAME, SYNOPSIS,
/// DESCRIPTION, options), with `sections` inserted before its VERSION section. Only this
/// generator renders pages, so clap_mangen is a dev-dependency, not part of the binaries.
fn man_page(command: clap::Command, sections: &[Section]) -> Vec<u8> {
    // clap_mangen would render after_long_help as an "EXTRA" section; ours replace it.
    let command = command
        .after_help(None::<&str>)
        .after_long_help(None::<&str>);
    let mut page = Vec::new();
    clap_mangen::Man::new(command).render(&mut page).unwrap();
    let page = String::from_utf8_lossy(&page).into_owned();
    let extra = render_sections(sections);
    let page = match page.find("\n.SH VERSION\n") {
        Some(at) => format!("{}\n{extra}{}", &page[..at], &page[at + 1..]),
        None => format!("{page}{extra}"),
    };
    page.into_bytes()
}

// Issue 3: `man/grey_listing.1` and `completions/` are generated from the code and committed.
#[test]
fn man_page_and_completions_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_GENERATED").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (relative, expected) in generated() {
        let path = root.join(&relative);
        if update {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &expected).unwrap();
            continue;
        }
        if std::fs::read(&path).ok().as_deref() != Some(expected.as_slice()) {
            stale.push(relative.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "generated files are missing or stale: {}\n\
         regenerate them with: UPDATE_GENERATED=1 cargo test --locked --test integration generated\n\
         then commit them",
        stale.join(", ")
    );
}

// The generated files describe the real command: every Plesk command and option is in them.
#[test]
fn generated_files_name_every_command_and_option() {
    let names = [
        "update-server",
        "update-domain",
        "update-mailname",
        "info-server",
        "info-domain",
        "info-mailname",
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
        "db",
        "json",
    ];
    // The daemons' man pages and completions are checked below.
    for (path, contents) in generated()
        .into_iter()
        .filter(|(path, _)| !path.to_string_lossy().contains("greylisting-"))
    {
        // roff escapes the hyphen as `\-`.
        let text = String::from_utf8(contents).unwrap().replace("\\-", "-");
        for name in names {
            assert!(
                text.contains(name),
                "{} does not mention {name}",
                path.display()
            );
        }
    }
}

// The daemons' completions offer their options, in every shell.
#[test]
fn daemon_completions_offer_their_options() {
    let expected: [(&str, &[&str]); 2] = [
        (
            "greylisting-policyd",
            &["listen", "socket-group", "idle-timeout", "metrics-listen"],
        ),
        (
            "greylisting-milter",
            &["listen", "socket-group", "trusted-networks", "hostname"],
        ),
    ];
    for (daemon, options) in expected {
        let scripts: Vec<_> = generated()
            .into_iter()
            .filter(|(path, _)| path.to_string_lossy().contains(daemon))
            .filter(|(path, _)| path.starts_with("completions"))
            .collect();
        assert_eq!(
            scripts.len(),
            3,
            "bash, zsh and fish completions of {daemon}"
        );
        for (path, contents) in scripts {
            let text = String::from_utf8(contents).unwrap();
            for option in options {
                assert!(text.contains(option), "{} lacks {option}", path.display());
            }
        }
    }
}

// Issue 8 / DESIGN.md §5: the filter's man page documents both modes, every environment variable the
// filter reads and the exit statuses of each mode.
#[test]
fn filter_man_page_documents_modes_environment_and_exit_statuses() {
    let page = String::from_utf8(man_page(
        grey_listing::filter::usage::command(),
        grey_listing::filter::usage::man_sections(),
    ))
    .unwrap()
    .replace("\\-", "-");
    for needle in [
        ".SH SYNOPSIS",
        "<CONTEXT> <SENDER> <RECIPIENT>...",
        "--qmail-queue",
        ".SH \"ENVIRONMENT\"",
        "GREY_LISTING_DB",
        "GREY_LISTING_CONF",
        "GREY_LISTING_NOW",
        "TCPREMOTEIP",
        "TCPREMOTEHOST",
        "RELAYCLIENT",
        "SMTPAUTHUSER, AUTHUSER",
        "GREY_QMAIL_QUEUE",
        "GREY_LISTING_LOG",
        ".SH \"EXIT STATUS\"",
        "1 SKIP (pass), 2 DEFER, 3 REJECT",
        "\\fB71\\fR",
        "\\fB31\\fR",
        "\\fB91\\fR",
    ] {
        assert!(
            page.contains(needle),
            "filter man page lacks {needle:?}:\n{page}"
        );
    }
    // clap_mangen's catch-all section is replaced by ours.
    assert!(!page.contains(".SH EXTRA"));
}

// Issue 8 / DESIGN.md §6: the policy server's man page lists every option of the binary.
#[test]
fn policyd_man_page_lists_every_option() {
    let page = String::from_utf8(man_page(
        grey_listing::policyd::options::command(),
        grey_listing::policyd::options::man_sections(),
    ))
    .unwrap()
    .replace("\\-", "-");
    for needle in [
        "--listen",
        "127.0.0.1:10023",
        "--db",
        "--idle-timeout",
        "330",
        "--max-connections",
        "4096",
        "--request-timeout",
        "--allow-test-time",
        "--hostname",
        "--synchronous",
        "--db-connections",
        "GREY_LISTING_DB",
        "SIGTERM",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(
            page.contains(needle),
            "policyd man page lacks {needle:?}:\n{page}"
        );
    }
}

/// Every command and option of `grey_listing` in its one-dash spellings, and the words that
/// complete its value (`None`: a free value or none).
fn one_dash_options() -> Vec<(String, Option<&'static str>)> {
    let command = grey_listing::cli::command();
    let mut options = Vec::new();
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else { continue };
        let values = match arg.get_value_names().unwrap_or_default() {
            [name] if name.as_str() == "on|off" => Some("on off"),
            [name] if name.as_str() == "true|false" => Some("true false"),
            _ => None,
        };
        for name in std::iter::once(long).chain(arg.get_visible_aliases().unwrap_or_default()) {
            options.push((format!("-{name}"), values));
        }
    }
    options
}

// Completions are for Plesk-style typing: every command and option with one dash, no `--u`-style
// spellings, and nothing else offered.
#[test]
fn completion_files_offer_every_option_with_one_dash_and_nothing_else() {
    let expected: BTreeSet<String> = one_dash_options()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for name in [
        "-u",
        "-ud",
        "-um",
        "-i",
        "-id",
        "-im",
        "-h",
        "-status",
        "-update-server",
    ] {
        assert!(expected.contains(name), "the definition lacks {name}");
    }
    for (path, contents) in generated().into_iter().filter(|(path, _)| {
        path.starts_with("completions") && path.to_string_lossy().contains("grey_listing")
    }) {
        let text = String::from_utf8(contents).unwrap();
        // Every word that looks like an option, wherever the script offers it.
        let offered: BTreeSet<String> = if path.ends_with("grey_listing.fish") {
            text.lines()
                .filter_map(|line| line.split_once(" -o ").map(|(_, rest)| rest))
                .map(|rest| format!("-{}", rest.split(' ').next().unwrap()))
                .collect()
        } else {
            let list = text
                .lines()
                .find_map(|line| {
                    line.trim()
                        .strip_prefix("opts=(")
                        .map(|rest| rest.trim_end_matches(')').to_string())
                        .or_else(|| {
                            line.trim()
                                .strip_prefix("COMPREPLY=($(compgen -W \"-")
                                .map(|rest| format!("-{}", rest.split('"').next().unwrap()))
                        })
                })
                .unwrap_or_else(|| panic!("{}: no option list", path.display()));
            list.split_whitespace().map(str::to_string).collect()
        };
        assert_eq!(offered, expected, "{}", path.display());
        assert!(
            !text.contains(" --u ") && !text.contains("-o -"),
            "{}: two-dash aliases offered",
            path.display()
        );
        for word in ["on off", "true false"] {
            assert!(text.contains(word), "{} lacks {word:?}", path.display());
        }
    }
}

/// What bash's completion function offers for the words typed so far (the last one is the word
/// being completed).
fn bash_complete(words: &[&str]) -> Vec<String> {
    bash_complete_for("grey_listing", words)
}

/// [`bash_complete`] for `command`, with the completion function its script registers.
fn bash_complete_for(command: &str, words: &[&str]) -> Vec<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("completions")
        .join(format!("{command}.bash"));
    // `complete -F FUNCTION ... COMMAND`: the function the script registers for the command.
    let program = format!(
        "source {}; COMP_WORDS=({command} {}); COMP_CWORD={}; \
         function=$(complete -p {command} | sed 's/.*-F \\([^ ]*\\) .*/\\1/'); \
         \"$function\" {command} \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" "),
        words.len()
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&program)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_string)
        .collect()
}

// The committed bash script really completes: one-dash names, the values after -status and the
// boolean options, nothing after an option with a free value.
#[test]
fn bash_completion_completes_plesk_style() {
    assert_eq!(bash_complete(&["-st"]), ["-stats", "-status"]);
    assert_eq!(bash_complete(&["-ud"]), ["-ud"]);
    assert!(bash_complete(&["-u"]).contains(&"-update-server".to_string()));
    assert_eq!(bash_complete(&["-u", "-status", ""]), ["on", "off"]);
    for (option, values) in one_dash_options() {
        if let Some(values) = values {
            let got = bash_complete(&["-u", &option, ""]).join(" ");
            assert_eq!(got, values, "after {option}");
        }
    }
    assert_eq!(bash_complete(&["-u", "-penalty-status", "t"]), ["true"]);
    assert!(bash_complete(&["-u", "-grey-interval", ""]).is_empty());
    assert!(
        !bash_complete(&["--"])
            .iter()
            .any(|word| word.starts_with("--"))
    );
}

// The daemons' committed bash scripts really complete their options.
#[test]
fn bash_completion_completes_the_daemons_options() {
    assert_eq!(
        bash_complete_for("greylisting-milter", &["--tr"]),
        ["--trusted-networks"]
    );
    assert_eq!(
        bash_complete_for("greylisting-policyd", &["--metrics-l"]),
        ["--metrics-listen"]
    );
}

// The man page serves a Plesk administrator: one-dash spellings with the short forms, the
// list-edit grammar with examples, exit status, environment, files and examples.
#[test]
fn grey_listing_man_page_is_written_for_plesk_admins() {
    let page = String::from_utf8(grey_listing::cli::manpage::render())
        .unwrap()
        .replace("\\-", "-");
    for needle in [
        "\\fB-update-server\\fR, \\fB-u\\fR",
        "\\fB-update-domain\\fR, \\fB-ud\\fR",
        "\\fB-update-mailname\\fR, \\fB-um\\fR",
        "\\fB-info-server\\fR, \\fB-i\\fR",
        "\\fB-info-domain\\fR, \\fB-id\\fR",
        "\\fB-info-mailname\\fR, \\fB-im\\fR",
        "\\fB-help\\fR, \\fB-h\\fR",
        ".SH \"LIST EDITS\"",
        "<add|del>:<pattern1[,pattern2]>;<add|del>:...",
        "add:*.example.net,*.example.org;del:*@old.example",
        ".SH \"EXIT STATUS\"",
        ".SH \"ENVIRONMENT\"",
        "GREY_LISTING_DB",
        ".SH \"FILES\"",
        "/etc/grey_listing.conf",
        ".SH \"EXAMPLES\"",
        "grey_listing -ud example.com -status off",
    ] {
        assert!(page.contains(needle), "man page lacks {needle:?}:\n{page}");
    }
    for odd in ["--u\\", "--u ", "--w", "--c ", "--ud", "--i\\"] {
        assert!(!page.contains(odd), "man page spells {odd:?}");
    }
}
