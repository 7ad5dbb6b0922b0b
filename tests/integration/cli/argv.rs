//! Any command line, however garbled, gives either a result or one clean error line, never a
//! panic; bad input never creates the database (DESIGN.md §2). Runs the CLI library in-process so
//! hundreds of generated command lines stay fast; the same code is the binary's whole body.

use std::ffi::OsString;

use grey_listing::cli::{self, CliError, ExitCode};
use proptest::prelude::*;

/// Words an admin (or a typo) might put on a `grey_listing` line. `--db` is left out: the
/// database location comes from the environment below, inside a temporary directory.
const WORDS: &[&str] = &[
    "--update-server",
    "-u",
    "--update-domain",
    "-ud",
    "--update-mailname",
    "-um",
    "--info-server",
    "-i",
    "--info-domain",
    "-id",
    "--info-mailname",
    "-im",
    "--help",
    "-h",
    "-status",
    "--status",
    "-personal-conf",
    "-grey-interval",
    "-expire-interval",
    "-penalty-interval",
    "-penalty-status",
    "-blacklist",
    "-whitelist",
    "-domains-whitelist",
    "-domains-blacklist",
    "-ipv4-prefix",
    "-awl-count",
    "--json",
    "-json",
    "--extended",
    "on",
    "off",
    "true",
    "false",
    "0",
    "5",
    "-1",
    "43201",
    "5256001",
    "1e3",
    "",
    "add:*@x.example",
    "del:a@x.example;add:*.y.example",
    "add:",
    "add:a|",
    "x:y",
    "example.com",
    "a@example.com",
    "bad domain",
    "-frobnicate",
    "--",
    "-",
    "=",
    "--status=off",
];

fn argv() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(WORDS).prop_map(str::to_string),
            1 => "\\PC{0,12}",
        ],
        0..7,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    // DESIGN.md §2: exit 0 with output, or exit 1/2 with one `An error occurred during` line; exit 1
    // (bad input) never leaves a database behind.
    #[test]
    fn any_command_line_succeeds_or_fails_cleanly(words in argv()) {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("g.db").to_string_lossy().into_owned();
        let env = move |name: &str| match name {
            "GREY_LISTING_DB" => Some(db.clone()),
            "GREY_LISTING_CONF" => Some("/nonexistent/grey_listing.conf".to_string()),
            _ => None,
        };
        let args: Vec<OsString> = words.iter().map(OsString::from).collect();
        let mut out = Vec::new();
        match cli::run(&args, &env, &mut out) {
            Ok(()) => prop_assert!(!out.is_empty(), "{:?} printed nothing", words),
            Err(err) => {
                let line = err.to_string();
                prop_assert!(line.starts_with("An error occurred during "), "{:?}: {}", words, line);
                prop_assert!(!line.contains('\n'), "{:?}: {:?}", words, line);
                prop_assert!(out.is_empty(), "{:?} printed output and failed", words);
                if let CliError::BadInput { .. } = err {
                    prop_assert_eq!(err.exit_code(), ExitCode::BadInput);
                    prop_assert!(
                        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
                        "{:?} was rejected but created files", words
                    );
                }
            }
        }
    }
}
