//! The `-greylist-clients` setting and the `-dnswl-zones` / `-dnsbl-zones` lists through the
//! real `grey_listing` binary, on both stores: edits, display, JSON, export and import (also of
//! an export written before they existed), `--import-plesk` leaving them alone, and bad zones
//! refused with nothing written.

use serde_json::json;

use crate::support::{Backend, INFO_SERVER_DEFAULTS, SERVER_UPDATED, Test};

fn write(t: &Test, name: &str, text: &str) -> String {
    let path = t.dir().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn lists(t: &Test) -> serde_json::Value {
    t.run(&["-i", "--json"]).json()["lists"].clone()
}

/// A server with both zone lists filled and greylist-clients suspicious.
fn configured(backend: Backend) -> Test {
    let t = Test::on(backend);
    t.run(&[
        "-u",
        "-greylist-clients",
        "suspicious",
        "-dnswl-zones",
        "add:List.DNSWL.org.,swl.example",
        "-dnsbl-zones",
        "add:zen.spamhaus.org;add:bl.example",
    ])
    .stdout(SERVER_UPDATED);
    t
}

// Edits follow the list grammar: zones stored lower-case without the trailing dot, in order;
// an add of a present zone (any case) and a delete of a missing one warn and change nothing.
fn zone_edits_and_display(backend: Backend) {
    let t = configured(backend);
    let out = t.run(&["-i", "--json"]).json();
    assert_eq!(out["settings"]["greylist_clients"], "suspicious");
    assert_eq!(
        out["lists"]["dnswl_zones"],
        json!(["list.dnswl.org", "swl.example"])
    );
    assert_eq!(
        out["lists"]["dnsbl_zones"],
        json!(["zen.spamhaus.org", "bl.example"])
    );
    t.run(&[
        "-u",
        "-dnswl-zones",
        "add:SWL.example;del:gone.example",
        "-dnsbl-zones",
        "del:zen.spamhaus.org;add:ix.example",
    ])
    .warns(
        SERVER_UPDATED,
        &[
            // Named in the stored spelling: zones are compared in that form.
            "Warning: swl.example is already in the DNSWL zones list",
            "Warning: gone.example is not in the DNSWL zones list",
        ],
    );
    let after = lists(&t);
    assert_eq!(
        after["dnswl_zones"],
        json!(["list.dnswl.org", "swl.example"])
    );
    assert_eq!(after["dnsbl_zones"], json!(["bl.example", "ix.example"]));
    let text = t.run(&["-i", "--extended"]).stdout.clone();
    let tail = "Greylist clients       suspicious\n\n\
                DNSWL zones:\nlist.dnswl.org\nswl.example\n\n\
                DNSBL zones:\nbl.example\nix.example\n\n\
                SUCCESS: Gathering of server wide information complete.\n";
    assert!(text.ends_with(tail), "{text}");
    // Plesk's command prints Plesk's text only.
    let plain = t.run(&["-i"]).stdout.clone();
    assert!(
        !plain.contains("zones") && !plain.contains("Greylist clients"),
        "{plain}"
    );
    // Back to the default.
    t.run(&["-u", "-greylist-clients", "all"])
        .stdout(SERVER_UPDATED);
    assert_eq!(
        t.run(&["-i", "--json"]).json()["settings"]["greylist_clients"],
        "all"
    );
}

// A bad zone or a bad greylist-clients word: one line naming it, exit 1, nothing written,
// even when good options come before it on the same line.
fn bad_values_change_nothing(backend: Backend) {
    let t = configured(backend);
    let before = t.run(&["--export"]).stdout.clone();
    for (option, value, named) in [
        (
            "-dnswl-zones",
            "add:ok.example,*.dnswl.example",
            "*.dnswl.example",
        ),
        ("-dnsbl-zones", "add:-bad.example", "-bad.example"),
        ("-dnsbl-zones", "add:a..example", "a..example"),
        (
            "-dnsbl-zones",
            "add:under_score.example",
            "under_score.example",
        ),
        ("-dnswl-zones", "add:bücher.example", "bücher.example"),
        ("-dnswl-zones", "add:x", "add:x"),
        ("-dnswl-zones", "put:x.example", "put"),
        ("-greylist-clients", "some", "some"),
        ("-greylist-clients", "Suspicious", "Suspicious"),
    ] {
        let long = format!("add:{}.example", "a".repeat(64));
        let value = if value == "add:x" {
            long.as_str()
        } else {
            value
        };
        let named = if named == "add:x" { &long[4..] } else { named };
        t.run(&[
            "-u",
            "-grey-interval",
            "9",
            "-dnsbl-zones",
            "add:new.example",
            option,
            value,
        ])
        .bad_input(&[option, named]);
        assert_eq!(t.run(&["--export"]).stdout, before, "{option} {value}");
    }
    // The zone options belong to --update-server only.
    t.run(&["-um", "john@example.com", "-dnswl-zones", "add:a.example"])
        .bad_input(&["-dnswl-zones"]);
    assert_eq!(t.run(&["--export"]).stdout, before);
}

// --export carries the setting and both lists; --import into a fresh database gives the same.
fn export_import_round_trip(backend: Backend) {
    let t = configured(backend);
    let export = t.run(&["--export"]).json();
    assert_eq!(export["version"], 3);
    assert_eq!(export["settings"]["greylist_clients"], "suspicious");
    assert_eq!(
        export["lists"]["dnswl_zones"],
        json!(["list.dnswl.org", "swl.example"])
    );
    let target = Test::on(backend);
    let file = write(&target, "export.json", &export.to_string());
    target
        .run(&["--import", &file])
        .stdout("SUCCESS: Import of configuration complete.\n");
    assert_eq!(
        target.run(&["-i", "--extended"]).stdout,
        t.run(&["-i", "--extended"]).stdout
    );
    assert_eq!(
        target.run(&["--export"]).stdout,
        t.run(&["--export"]).stdout
    );
}

// An export written before the setting and the zone lists existed (version 2) still imports:
// an import replaces the whole configuration, so the setting is back at its default and the
// zone lists are empty. A version 3 file must hold them, and bad zones in a file are refused.
fn older_export_imports_with_defaults(backend: Backend) {
    let t = configured(backend);
    let mut old = t.run(&["--export"]).json();
    old["version"] = json!(2);
    old["settings"]
        .as_object_mut()
        .unwrap()
        .remove("greylist_clients");
    let lists = old["lists"].as_object_mut().unwrap();
    lists.remove("dnswl_zones");
    lists.remove("dnsbl_zones");
    // The same content as version 3 is refused: the keys are missing.
    let mut missing = old.clone();
    missing["version"] = json!(3);
    let file = write(&t, "missing.json", &missing.to_string());
    t.run(&["--import", &file])
        .bad_input(&["missing 'settings.greylist_clients'"]);
    missing["settings"]["greylist_clients"] = json!("all");
    let file = write(&t, "missing.json", &missing.to_string());
    t.run(&["--import", &file])
        .bad_input(&["'lists.dnswl_zones'", "'lists.dnsbl_zones'"]);
    let file = write(&t, "v2.json", &old.to_string());
    t.run(&["--import", &file])
        .stdout("SUCCESS: Import of configuration complete.\n");
    let out = t.run(&["-i", "--json"]).json();
    assert_eq!(out["settings"]["greylist_clients"], "all");
    assert_eq!(out["lists"]["dnswl_zones"], json!([]));
    assert_eq!(out["lists"]["dnsbl_zones"], json!([]));

    let before = t.run(&["--export"]).stdout.clone();
    let mut bad = t.run(&["--export"]).json();
    for (key, zones) in [
        ("dnswl_zones", json!(["*.example"])),
        ("dnsbl_zones", json!(["Upper.example"])),
        ("dnsbl_zones", json!(["dot.example."])),
    ] {
        let mut dump = bad.clone();
        dump["lists"][key] = zones;
        let file = write(&t, "bad.json", &dump.to_string());
        t.run(&["--import", &file])
            .bad_input(&[&format!("lists.{key}")]);
        assert_eq!(t.run(&["--export"]).stdout, before);
    }
    bad["settings"]["greylist_clients"] = json!("sometimes");
    let file = write(&t, "bad.json", &bad.to_string());
    t.run(&["--import", &file])
        .bad_input(&["settings.greylist_clients", "sometimes"]);
    assert_eq!(t.run(&["--export"]).stdout, before);
}

// --import-plesk sets Plesk's settings and lists and leaves ours alone.
fn import_plesk_leaves_them_alone(backend: Backend) {
    let t = configured(backend);
    let plesk =
        INFO_SERVER_DEFAULTS.replace("Grey interval          5", "Grey interval          8");
    let file = write(&t, "plesk.txt", &plesk);
    let out = t.run(&["--import-plesk", &file]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let after = t.run(&["-i", "--json"]).json();
    assert_eq!(after["settings"]["grey_interval"], 8);
    assert_eq!(after["settings"]["greylist_clients"], "suspicious");
    assert_eq!(
        after["lists"]["dnswl_zones"],
        json!(["list.dnswl.org", "swl.example"])
    );
    assert_eq!(
        after["lists"]["dnsbl_zones"],
        json!(["zen.spamhaus.org", "bl.example"])
    );
}

on_both_stores!(
    zone_edits_and_display,
    bad_values_change_nothing,
    export_import_round_trip,
    older_export_imports_with_defaults,
    import_plesk_leaves_them_alone,
);
