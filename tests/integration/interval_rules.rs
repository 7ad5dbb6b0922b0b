//! Settings whose result makes no sense are refused (an expire interval not longer than the
//! grey interval: every triplet would expire before its retry is accepted, so no new sender would
//! ever get through), by `--update-server` against the stored values and by both imports; and
//! every interval in `--json` and `--export` is in minutes.

use crate::support::{Backend, SERVER_UPDATED, Test};

const REFUSED_3_5: &str = "An error occurred during update of server-wide settings: \
     -expire-interval 3 (minutes) must be longer than -grey-interval 5 (minutes)\n";

fn write(t: &Test, name: &str, text: &str) -> String {
    let path = t.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn intervals(t: &Test) -> (serde_json::Value, serde_json::Value) {
    let settings = t.run(&["-i", "--json"]).json()["settings"].clone();
    (
        settings["grey_interval"].clone(),
        settings["expire_interval"].clone(),
    )
}

// Someone thinking in days types `-expire-interval 3`: refused against the stored grey interval,
// exact text, exit 1, nothing changed (the other options of the same command included).
fn expire_not_longer_than_grey_is_refused(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["-u", "-penalty-interval", "4"])
        .stdout(SERVER_UPDATED);
    let refused = t.run(&["-u", "-status", "off", "-expire-interval", "3"]);
    assert_eq!(
        (
            refused.code,
            refused.stdout.as_str(),
            refused.stderr.as_str()
        ),
        (1, "", REFUSED_3_5)
    );
    // Equal is refused too; the grey interval raised over the stored expire interval as well.
    t.run(&["-u", "-expire-interval", "5"])
        .bad_input(&["-expire-interval 5 (minutes) must be longer than -grey-interval 5"]);
    t.run(&["-u", "-expire-interval", "60"])
        .stdout(SERVER_UPDATED);
    t.run(&["--update-server", "--grey-interval", "60"])
        .bad_input(&["-expire-interval 60 (minutes) must be longer than --grey-interval 60"]);
    let settings = t.run(&["-i", "--json"]).json()["settings"].clone();
    assert_eq!(settings["enabled"], true, "rolled back whole");
    assert_eq!(
        (&settings["grey_interval"], &settings["expire_interval"]),
        (&serde_json::json!(5), &serde_json::json!(60))
    );
    // Both in one command: judged on the result, not on the order of the options.
    t.run(&["-u", "-expire-interval", "3", "-grey-interval", "2"])
        .stdout(SERVER_UPDATED);
    assert_eq!(intervals(&t), (serde_json::json!(2), serde_json::json!(3)));
}

// Two admins at once: one raises the grey interval while the other lowers the expire interval.
// Each change alone is fine; together they are not. The second waits for the first (SQLite's
// exclusive write, PostgreSQL's lock on the settings rows) and is judged on its result.
fn concurrent_changes_are_judged_on_the_committed_values(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["-u", "-expire-interval", "200"])
        .stdout(SERVER_UPDATED);
    let mut store = t.open();
    let mut second = None;
    store
        .write(&mut |tx| {
            let mut settings = tx.settings_for_update()?;
            if second.is_none() {
                let mut cmd =
                    std::process::Command::new(assert_cmd::cargo::cargo_bin("grey_listing"));
                cmd.env_remove("GREY_LISTING_DB").args([
                    "-u",
                    "-expire-interval",
                    "50",
                    "--db",
                    &t.location(),
                ]);
                second = Some(cmd.output_in_thread());
                // Give it the time to reach its own read of the settings, where it must wait.
                std::thread::sleep(std::time::Duration::from_secs(2));
            }
            settings.grey_interval = 100;
            tx.set_settings(&settings)
        })
        .unwrap();
    drop(store);
    let out = second.unwrap().join().unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned()
        ),
        (
            Some(1),
            "An error occurred during update of server-wide settings: -expire-interval 50 \
             (minutes) must be longer than -grey-interval 100 (minutes)\n"
                .to_string()
        )
    );
    assert_eq!(
        intervals(&t),
        (serde_json::json!(100), serde_json::json!(200))
    );
}

/// Runs a command to completion on another thread.
trait OutputInThread {
    fn output_in_thread(self) -> std::thread::JoinHandle<std::process::Output>;
}

impl OutputInThread for std::process::Command {
    fn output_in_thread(mut self) -> std::thread::JoinHandle<std::process::Output> {
        std::thread::spawn(move || self.output().unwrap())
    }
}

// On a database that does not exist yet the defaults are the stored values, and a refused
// change creates nothing.
#[test]
fn refused_on_a_new_database_creates_nothing() {
    let t = Test::new();
    let refused = t.run(&["-u", "-expire-interval", "3"]);
    assert_eq!((refused.code, refused.stderr.as_str()), (1, REFUSED_3_5));
    assert!(t.files().is_empty(), "{:?}", t.files().keys());
    t.run(&["-u", "-expire-interval", "6"])
        .stdout(SERVER_UPDATED);
}

// `--import` applies the same rule (its own wording, naming the file's fields).
fn import_refuses_expire_not_longer_than_grey(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["-u", "-grey-interval", "7"]).stdout(SERVER_UPDATED);
    let good = t.run(&["--export"]).stdout;
    let bad = good.replace("\"expire_interval\": 51840", "\"expire_interval\": 3");
    assert_ne!(bad, good);
    let file = write(&t, "bad.json", &bad);
    let refused = t.run(&["--import", &file]);
    assert_eq!(
        refused.stderr,
        format!(
            "An error occurred during import of configuration: {file}: \
             settings.expire_interval 3 (minutes) must be longer than \
             settings.grey_interval 7 (minutes)\n"
        )
    );
    refused.bad_input(&[]);
    assert_eq!(
        intervals(&t),
        (serde_json::json!(7), serde_json::json!(51840))
    );
}

// `--import-plesk` too: Plesk's text gives both intervals.
fn import_plesk_refuses_expire_not_longer_than_grey(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["-u", "-grey-interval", "7"]).stdout(SERVER_UPDATED);
    let info = t.run(&["-i"]).stdout;
    let bad = info.replace(
        "Expire interval        51840 minutes",
        "Expire interval        3 minutes",
    );
    assert_ne!(bad, info);
    let file = write(&t, "plesk.txt", &bad);
    let refused = t.run(&["--import-plesk", &file]);
    assert_eq!(
        refused.stderr,
        format!(
            "An error occurred during import of Plesk configuration: {file}: \
             Expire interval 3 (minutes) must be longer than Grey interval 7 (minutes)\n"
        )
    );
    refused.bad_input(&[]);
    assert_eq!(
        intervals(&t),
        (serde_json::json!(7), serde_json::json!(51840))
    );
}

// `--import` refuses what `--update-server` refuses: the auto-whitelist count and the log
// retention had no bounds on import.
#[test]
fn import_refuses_the_ranges_the_cli_refuses() {
    let t = Test::new();
    t.run(&["-u", "-awl-count", "1000001"])
        .bad_input(&["-awl-count"]);
    t.run(&["-u", "-log-retention", "3651d"])
        .bad_input(&["-log-retention"]);
    let good = t.run(&["--export"]).stdout;
    let before = t.files();
    for (from, to, name) in [
        (
            "\"awl_count\": 5",
            "\"awl_count\": 1000001",
            "settings.awl_count",
        ),
        (
            "\"log_retention\": 43200",
            "\"log_retention\": 5256001",
            "settings.log_retention",
        ),
    ] {
        let bad = good.replace(from, to);
        assert_ne!(bad, good);
        let file = write(&t, "bad.json", &bad);
        t.run(&["--import", &file]).bad_input(&["bad.json", name]);
        std::fs::remove_file(&file).unwrap();
    }
    // The largest values the CLI accepts import.
    let top = good
        .replace("\"awl_count\": 5", "\"awl_count\": 1000000")
        .replace("\"log_retention\": 43200", "\"log_retention\": 5256000");
    let file = write(&t, "top.json", &top);
    t.run(&["--import", &file])
        .stdout("SUCCESS: Import of configuration complete.\n");
    std::fs::remove_file(&file).unwrap();
    let settings = t.run(&["-i", "--json"]).json()["settings"].clone();
    assert_eq!(
        (&settings["awl_count"], &settings["log_retention"]),
        (&serde_json::json!(1_000_000), &serde_json::json!(5_256_000))
    );
    assert_ne!(t.files(), before);
}

// One unit in --json: the log retention is in minutes like the intervals; `-log-retention`
// takes whole minutes only.
#[test]
fn json_gives_every_interval_in_minutes() {
    let t = Test::new();
    t.run(&["-u", "-log-retention", "36h", "-grey-interval", "10"])
        .stdout(SERVER_UPDATED);
    let settings = t.run(&["-i", "--json"]).json()["settings"].clone();
    assert_eq!(settings["log_retention"], 36 * 60);
    assert_eq!(settings["grey_interval"], 10);
    t.run(&["-u", "-log-retention", "90s"])
        .bad_input(&["-log-retention", "'90s' is not a whole number of minutes"]);
    let text = t.run(&["-i", "--extended"]).stdout;
    assert!(
        text.contains("Decision log retention 2160 minutes\n"),
        "{text}"
    );
}

// `--export` writes version 3 (minutes); `--import` still reads version 1 (seconds, rounded up
// to whole minutes).
#[test]
fn export_is_version_3_and_version_1_still_imports() {
    let t = Test::new();
    let export = t.run(&["--export"]).json();
    assert_eq!(export["version"], 3);
    assert_eq!(export["settings"]["log_retention"], 43_200);
    let mut old = export.clone();
    old["version"] = serde_json::json!(1);
    old["settings"]["log_retention"] = serde_json::json!(7 * 86_400 + 1);
    let file = write(&t, "v1.json", &old.to_string());
    t.run(&["--import", &file])
        .stdout("SUCCESS: Import of configuration complete.\n");
    let settings = t.run(&["-i", "--json"]).json()["settings"].clone();
    assert_eq!(settings["log_retention"], 7 * 24 * 60 + 1);
    let mut future = export;
    future["version"] = serde_json::json!(4);
    let file = write(&t, "v4.json", &future.to_string());
    t.run(&["--import", &file])
        .bad_input(&["v4.json", "version 4", "version 1 to 3"]);
}

on_both_stores!(
    expire_not_longer_than_grey_is_refused,
    concurrent_changes_are_judged_on_the_committed_values,
    import_refuses_expire_not_longer_than_grey,
    import_plesk_refuses_expire_not_longer_than_grey,
);
