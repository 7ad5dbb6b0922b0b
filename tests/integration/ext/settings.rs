//! Extension settings on `--update-server` (DESIGN.md §2, "Our extensions"): `-group-by-host-domain`,
//! `-log-retention`, shown by `--info-server --extended` and `--json`, validated before anything
//! is written; Plesk's own `--info-server` output stays byte-identical.

use predicates::prelude::*;

use crate::support::Backend;
use crate::support::ext::{Db, T0};

// DESIGN.md §2: extension settings appear in the Extension settings block and in --json.
fn new_settings_show_in_extended_and_json_output(backend: Backend) {
    let db = Db::on(backend);
    let defaults = db.ok(T0, &["--info-server", "--extended"]);
    assert!(
        defaults.contains("Group by host domain   enabled\n"),
        "{defaults}"
    );
    assert!(
        defaults.contains("Decision log retention 30 days\n"),
        "{defaults}"
    );
    db.ok(
        T0,
        &[
            "-u",
            "-group-by-host-domain",
            "false",
            "--log-retention",
            "7d",
        ],
    );
    let text = db.ok(T0, &["-i", "-extended"]);
    assert!(text.contains("Group by host domain   disabled\n"), "{text}");
    assert!(text.contains("Decision log retention 7 days\n"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&db.ok(T0, &["-i", "--json"])).unwrap();
    assert_eq!(json["settings"]["group_by_host_domain"], false);
    assert_eq!(json["settings"]["log_retention"], 7 * 24 * 60);
    db.ok(T0, &["-u", "-log-retention", "0d"]);
    let text = db.ok(T0, &["-i", "--extended"]);
    assert!(
        text.contains("Decision log retention disabled (no decision log)\n"),
        "{text}"
    );
}

// DESIGN.md §2: Plesk's --info-server block is unchanged by extension settings.
fn plesk_info_server_output_is_unchanged(backend: Backend) {
    let db = Db::on(backend);
    let before = db.ok(T0, &["--info-server"]);
    db.ok(
        T0,
        &[
            "-u",
            "-group-by-host-domain",
            "false",
            "-log-retention",
            "90d",
        ],
    );
    assert_eq!(db.ok(T0, &["--info-server"]), before);
    assert!(!before.contains("Extension settings"));
}

// DESIGN.md §2 validation: bad values are one line naming the option, exit 1, nothing written.
#[test]
fn bad_extension_values_are_rejected_before_the_database_is_opened() {
    let db = Db::new();
    for (args, culprit) in [
        (
            vec!["-u", "-group-by-host-domain", "yes"],
            "-group-by-host-domain",
        ),
        (vec!["-u", "-log-retention", "30"], "-log-retention"),
        (vec!["-u", "-log-retention", "9999d"], "-log-retention"),
        (
            vec!["-ud", "example.com", "-log-retention", "1d"],
            "-log-retention",
        ),
        (vec!["--report", "-top", "0"], "-top"),
        (vec!["--report", "-since", "week"], "-since"),
        (vec!["--stats", "-since", "1d"], "-since"),
        (vec!["--purge", "-top", "3"], "-top"),
        (vec!["--explain", "198.51.100.7", "-", "-"], "--explain"),
    ] {
        db.cli(T0).args(&args).assert().code(1).stdout("").stderr(
            predicate::str::starts_with("An error occurred during ")
                .and(predicate::str::contains(culprit))
                .and(predicate::function(|s: &str| s.lines().count() == 1)),
        );
        assert!(!db.file().exists(), "{args:?} created the database");
    }
}

// DESIGN.md §2: extension commands and options are listed in the help page's extension section.
#[test]
fn help_lists_the_extension_commands() {
    let db = Db::new();
    let help = db.ok(T0, &["--help"]);
    let extensions = help.split("Extensions (grey_listing only").nth(1).unwrap();
    for name in [
        "-group-by-host-domain",
        "-log-retention",
        "--explain",
        "--report",
        "--check",
        "--purge",
        "--stats",
    ] {
        assert!(extensions.contains(name), "{name} missing from help");
    }
}

on_both_stores!(
    new_settings_show_in_extended_and_json_output,
    plesk_info_server_output_is_unchanged,
);
