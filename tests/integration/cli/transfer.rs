//! `--import-plesk`, `--export`, `--import` (issue 8) through the real `grey_listing` binary.

use crate::support::{Backend, INFO_SERVER_DEFAULTS, Test, grey_listing};

/// DESIGN.md §2: the newer Plesk format (as Plesk prints it, line breaks restored).
const NEWER_PLESK: &str = "Grey listing configuration.

Grey listing checking  enabled
Grey interval          5 minutes
Expire interval        51840 minutes
Penalty interval       2 minutes
Penalty                disabled
Personal grey listing configuration allowed

Server-wide black list:
*@somedomain.com

Server-wide white list:
*@bigfish.com

White domains patterns list:
*google.com
*mail.ru
*parallels.com
*rambler.ru
*yahoo.com
*yandex.ru

Black domains patterns list:
*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*
*[0-9][0-9].[0-9][0-9].[0-9][0-9]*
*[0-9][0-9][0-9]-[0-9][0-9][0-9]-[0-9][0-9][0-9]*
*[0-9][0-9][0-9].[0-9][0-9][0-9].[0-9[0-9]][0-9]*
dsl|pool|broadband|hsd
dynamic|static|ppp|dyn-ip|dial-up

SUCCESS: Gathering of server wide information complete.
";

/// DESIGN.md §2: the older Plesk format — wrapped personal-conf row, entries indented by one space.
const OLDER_PLESK: &str = "Grey listing configuration.

Grey listing checking  disabled
Grey interval          5 minutes
Expire interval        51840 minutes
Penalty interval       2 minutes
Penalty                disabled
Personal grey listing
configuration          allowed

Server-wide black list:

Server-wide white list:

White domains patterns list:

Black domains patterns list:
 *[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*
 dsl|pool|broadband|hsd

SUCCESS: Gathering of server wide information complete.
";

fn write(t: &Test, name: &str, text: &str) -> String {
    let path = t.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

// Issue 8: importing Plesk's newer output reproduces Plesk's --info-server byte for byte, and
// the import prints what changed and warns about the patterns that reject big senders.
fn import_plesk_newer_format_round_trips_through_info_server(backend: Backend) {
    let t = Test::on(backend);
    let file = write(&t, "plesk.txt", NEWER_PLESK);
    let out = t.run(&["--import-plesk", &file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("Server-wide white list: + *@bigfish.com\n")
    );
    assert!(
        out.stdout
            .contains("White domains patterns list: - *.office365.com\n")
    );
    assert!(
        out.stdout
            .contains("Black domains patterns list: + dsl|pool|broadband|hsd\n")
    );
    assert!(
        out.stdout
            .contains("warning: black domains pattern 'dsl|pool|broadband|hsd'")
    );
    assert!(
        out.stdout
            .contains("warning: black domains pattern 'dynamic|static|ppp|dyn-ip|dial-up'")
    );
    assert!(
        out.stdout
            .ends_with("SUCCESS: Import of Plesk configuration complete.\n")
    );
    t.run(&["--info-server"]).stdout(NEWER_PLESK);
}

// DESIGN.md §2: the older format, read from standard input with `-`.
fn import_plesk_older_format_from_stdin(backend: Backend) {
    let t = Test::on(backend);
    let out = grey_listing()
        .args(["--import-plesk", "-", "--db"])
        .arg(t.location())
        .write_stdin(OLDER_PLESK)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with("Grey listing checking: enabled -> disabled\n"),
        "{stdout}"
    );
    let expected = OLDER_PLESK
        .replace(
            "Personal grey listing\nconfiguration          allowed",
            "Personal grey listing configuration allowed",
        )
        .replace("\n *[0-9]", "\n*[0-9]")
        .replace("\n dsl|", "\ndsl|");
    t.run(&["-i"]).stdout(&expected);
    // A second import changes nothing, and says so.
    let again = t.run(&["--import-plesk", &write(&t, "old.txt", OLDER_PLESK)]);
    assert!(
        again
            .stdout
            .starts_with("No changes: the configuration already matches.\n"),
        "{}",
        again.stdout
    );
}

// DESIGN.md §2 validation: a file that is not Plesk's output is bad input, and nothing is written.
#[test]
fn import_plesk_rejects_other_text_and_changes_nothing() {
    let t = Test::new();
    t.run(&["-u", "-grey-interval", "7"])
        .stdout(crate::support::SERVER_UPDATED);
    let before = t.files();
    let file = write(&t, "notes.txt", "hello\n");
    t.run(&["--import-plesk", &file]).bad_input(&["notes.txt"]);
    t.run(&["--import-plesk", "/nonexistent/plesk.txt"])
        .bad_input(&["/nonexistent/plesk.txt"]);
    std::fs::remove_file(t.dir().join("notes.txt")).unwrap();
    assert_eq!(t.files(), before);
}

// A paste cut short (here after the white list's header) would read as empty domain lists:
// it is refused, naming what is missing, and the lists stay as they were.
#[test]
fn import_plesk_refuses_a_truncated_paste() {
    let t = Test::new();
    t.run(&["-u", "-domains-blacklist", "add:*dsl*"])
        .stdout(crate::support::SERVER_UPDATED);
    let before = t.files();
    let cut =
        NEWER_PLESK.find("Server-wide white list:").unwrap() + "Server-wide white list:\n".len();
    let file = write(&t, "cut.txt", &NEWER_PLESK[..cut]);
    t.run(&["--import-plesk", &file]).bad_input(&[
        "cut.txt",
        "White domains patterns list:",
        "Black domains patterns list:",
        "SUCCESS: Gathering of server wide information complete.",
    ]);
    std::fs::remove_file(t.dir().join("cut.txt")).unwrap();
    assert_eq!(t.files(), before);
}

// Issue 8: --export then --import into another database reproduces the whole configuration.
fn export_import_round_trip(backend: Backend) {
    let source = Test::on(backend);
    source.run(&[
        "-u",
        "-grey-interval",
        "8",
        "-domains-blacklist",
        "add:*.dyn.example.net",
    ]);
    source.run(&["-ud", "example.com", "-status", "off"]);
    source.run(&["-um", "john@example.com", "-whitelist", "add:*@ietf.org"]);
    let export = source.run(&["--export"]);
    assert_eq!(export.code, 0, "{}", export.stderr);
    let dump = export.json();
    assert_eq!(dump["format"], "grey_listing-configuration");
    assert_eq!(dump["domains"]["example.com"], false);
    assert_eq!(
        dump["mailboxes"]["john@example.com"]["white"][0],
        "*@ietf.org"
    );

    let target = Test::on(backend);
    target.run(&["-um", "old@example.com", "-blacklist", "add:*@x.example"]);
    let file = write(&target, "export.json", &export.stdout);
    target
        .run(&["--import", &file])
        .stdout("SUCCESS: Import of configuration complete.\n");
    assert_eq!(target.run(&["--export"]).stdout, export.stdout);
    for args in [
        &["-i"][..],
        &["-id", "example.com"],
        &["-im", "john@example.com"],
        &["-im", "old@example.com"],
    ] {
        assert_eq!(target.run(args).stdout, source.run(args).stdout, "{args:?}");
    }
}

// DESIGN.md §2 validation: an export with an out-of-range value is refused whole.
#[test]
fn import_refuses_invalid_exports() {
    let t = Test::new();
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    let good = t.run(&["--export"]).stdout;
    let before = t.files();
    let bad = good.replace("\"grey_interval\": 5", "\"grey_interval\": 99999");
    assert_ne!(bad, good);
    let file = write(&t, "bad.json", &bad);
    t.run(&["--import", &file])
        .bad_input(&["bad.json", "grey_interval"]);
    let file = write(
        &t,
        "other.json",
        "{\"format\": \"something\", \"version\": 1}",
    );
    t.run(&["--import", &file]).bad_input(&["other.json"]);
    std::fs::remove_file(t.dir().join("bad.json")).unwrap();
    std::fs::remove_file(t.dir().join("other.json")).unwrap();
    assert_eq!(t.files(), before);
}

/// A change to a parsed export.
type Edit = fn(&mut serde_json::Value);

// An import replaces the whole configuration: a misspelt key (which serde would skip) or a
// setting taken out (which would silently become its default) is refused, naming the key.
#[test]
fn import_refuses_unknown_and_missing_keys() {
    let t = Test::new();
    t.run(&["-u", "-grey-interval", "7"])
        .stdout(crate::support::SERVER_UPDATED);
    let good: serde_json::Value = t.run(&["--export"]).json();
    let edits: [(Edit, &str); 5] = [
        (
            (|v| v["settings"]["grey_intervall"] = 7.into()),
            "settings.grey_intervall",
        ),
        ((|v| v["settingz"] = serde_json::json!({})), "settingz"),
        (
            (|v| v["lists"]["blak"] = serde_json::json!([])),
            "lists.blak",
        ),
        (
            (|v| {
                v["settings"]
                    .as_object_mut()
                    .unwrap()
                    .remove("grey_interval");
            }),
            "settings.grey_interval",
        ),
        (
            (|v| {
                v.as_object_mut().unwrap().remove("mailboxes");
            }),
            "mailboxes",
        ),
    ];
    for (edit, key) in edits {
        let mut bad = good.clone();
        edit(&mut bad);
        let file = write(&t, "bad.json", &bad.to_string());
        t.run(&["--import", &file]).bad_input(&["bad.json", key]);
    }
    // Version 1 files may lack settings added later, but not hold unknown keys.
    let mut old = good.clone();
    old["version"] = 1.into();
    old["settings"].as_object_mut().unwrap().remove("awl_count");
    old["settings"]["log_retention"] = 2_592_000.into();
    let file = write(&t, "bad.json", &old.to_string());
    t.run(&["--import", &file])
        .stdout("SUCCESS: Import of configuration complete.\n");
    old["settings"]["grey_intervall"] = 7.into();
    let file = write(&t, "bad.json", &old.to_string());
    t.run(&["--import", &file])
        .bad_input(&["settings.grey_intervall"]);
    std::fs::remove_file(t.dir().join("bad.json")).unwrap();
    assert_eq!(t.run(&["--export"]).json(), good);
}

on_both_stores!(
    export_import_round_trip,
    import_plesk_newer_format_round_trips_through_info_server,
    import_plesk_older_format_from_stdin,
);
