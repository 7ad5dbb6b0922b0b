//! The man page and shell completions are generated from the clap definition and committed; this
//! test regenerates them in memory and fails when the committed copies are stale (like just's
//! completions test). Update them with:
//!
//!     UPDATE_GENERATED=1 cargo test --locked --test integration generated

use std::path::{Path, PathBuf};

use clap_complete::Shell;

/// Every generated file: path relative to the repository, and its expected contents.
fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut man = Vec::new();
    clap_mangen::Man::new(grey_listing::cli::command())
        .render(&mut man)
        .unwrap();
    files.push((PathBuf::from("man/grey_listing.1"), man));
    // Issue 8: one man page per binary, from the library's clap definitions.
    files.push((
        PathBuf::from("man/greylisting-filter.1"),
        grey_listing::handler::cli::man_page().unwrap(),
    ));
    files.push((
        PathBuf::from("man/greylisting-policyd.1"),
        grey_listing::policy::cli::man_page().unwrap(),
    ));
    files.push((
        PathBuf::from("man/greylisting-milter.1"),
        grey_listing::milter::cli::man_page().unwrap(),
    ));
    for (shell, name) in [
        (Shell::Bash, "grey_listing.bash"),
        (Shell::Zsh, "_grey_listing"),
        (Shell::Fish, "grey_listing.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(
            shell,
            &mut grey_listing::cli::command(),
            "grey_listing",
            &mut script,
        );
        files.push((Path::new("completions").join(name), script));
    }
    files
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
    for (path, contents) in generated()
        .into_iter()
        .filter(|(path, _)| !path.to_string_lossy().starts_with("man/greylisting-"))
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

// Issue 8 / SPEC §5: the filter's man page documents both modes, every environment variable the
// filter reads and the exit statuses of each mode.
#[test]
fn filter_man_page_documents_modes_environment_and_exit_statuses() {
    let page = String::from_utf8(grey_listing::handler::cli::man_page().unwrap())
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

// Issue 8 / SPEC §6: the policy server's man page lists every option of the binary.
#[test]
fn policyd_man_page_lists_every_option() {
    let page = String::from_utf8(grey_listing::policy::cli::man_page().unwrap())
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
