//! Every row of the settings table, walked end to end on both stores: listed by `--help`, typed
//! as its `--update-server` option, validated (out-of-range values refused, nothing written), stored,
//! shown by `--info-server` (`--extended` for extension settings) and `--json`, exported and
//! imported into a fresh database, and an out-of-range value in an import refused.

use grey_listing::config::{SETTINGS, SettingDef, SettingKind, Settings};

use crate::ext_support::{Db, T0};
use crate::support::Backend;

/// A valid value other than the default, as typed, as stored and as `--json` shows it.
fn changed_value(def: &SettingDef) -> (String, u64, serde_json::Value) {
    let default = (def.get)(&Settings::default());
    match def.kind {
        SettingKind::OnOff => {
            let on = default == 0;
            let typed = if on { "on" } else { "off" };
            (typed.to_string(), u64::from(on), serde_json::json!(on))
        }
        SettingKind::TrueFalse => {
            let on = default == 0;
            (on.to_string(), u64::from(on), serde_json::json!(on))
        }
        SettingKind::Number { min, max } => {
            let value = if default < max { default + 1 } else { min };
            (value.to_string(), value, serde_json::json!(value))
        }
        SettingKind::Duration { .. } => {
            let days = default / 86_400 + 1;
            (
                format!("{days}d"),
                days * 86_400,
                serde_json::json!(days * 24 * 60),
            )
        }
        SettingKind::Choice { words } => {
            let index = (default + 1) % words.len() as u64;
            let word = words[index as usize];
            (word.to_string(), index, serde_json::json!(word))
        }
    }
}

/// A value the option refuses, as typed.
fn refused_value(def: &SettingDef) -> String {
    match def.kind {
        SettingKind::OnOff | SettingKind::TrueFalse => "maybe".to_string(),
        SettingKind::Number { max, .. } => (max + 1).to_string(),
        SettingKind::Duration { max } => format!("{}d", max / 86_400 + 1),
        SettingKind::Choice { .. } => "maybe".to_string(),
    }
}

fn json(db: &Db) -> serde_json::Value {
    serde_json::from_str(&db.ok(T0, &["-i", "--json"])).unwrap()
}

fn fails(db: &Db, args: &[&str]) -> String {
    let out = db.cli(T0).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

fn every_setting_from_option_to_import(backend: Backend) {
    for def in &SETTINGS {
        let option = format!("-{}", def.option);
        let db = Db::on(backend);
        let shown = |db: &Db| {
            let mut args = vec!["--info-server"];
            if def.extension {
                args.push("--extended");
            }
            db.ok(T0, &args)
        };
        let before = (shown(&db), db.ok(T0, &["--export"]));

        // The option has its --help row.
        assert!(db.ok(T0, &["--help"]).contains(def.usage), "{option}");

        // Validation: refused, named, nothing written.
        let bad = refused_value(def);
        let err = fails(&db, &["-u", &option, &bad]);
        assert!(err.contains(&option), "{option} {bad}: {err}");
        assert_eq!((shown(&db), db.ok(T0, &["--export"])), before, "{option}");

        // Option → store.
        let (typed, stored, json_value) = changed_value(def);
        db.ok(T0, &["-u", &option, &typed]);
        let mut store = db.open();
        let mut settings = Settings::default();
        store
            .read(&mut |tx| {
                settings = tx.settings()?;
                Ok(())
            })
            .unwrap();
        assert_eq!((def.get)(&settings), stored, "{option} {typed}");

        // Store → --info-server (--extended) and --json.
        let text = shown(&db);
        assert_ne!(text, before.0, "{option} {typed} not shown");
        let line = format!("{:<22} {}\n", def.label, (def.show)(&settings));
        assert!(text.contains(&line), "{line:?} not in {text}");
        assert_eq!(json(&db)["settings"][def.key], json_value, "{option}");

        // Export → import into a fresh database.
        let export = db.ok(T0, &["--export"]);
        let dump: serde_json::Value = serde_json::from_str(&export).unwrap();
        assert_eq!(dump["settings"][def.key], json_value, "{option}");
        let target = Db::on(backend);
        let file = target.path.with_file_name("export.json");
        std::fs::write(&file, &export).unwrap();
        target.ok(T0, &["--import", file.to_str().unwrap()]);
        assert_eq!(json(&target)["settings"][def.key], json_value, "{option}");
        assert_eq!(shown(&target), shown(&db), "{option}");

        // An import out of range (or a word not among the choices) is refused whole.
        let refused = match (def.import_range(&settings), def.kind) {
            (Some((_, _, max)), _) => Some(serde_json::json!(max + 1)),
            (None, SettingKind::Choice { .. }) => Some(serde_json::json!("maybe")),
            (None, _) => None,
        };
        if let Some(refused) = refused {
            let mut dump = dump.clone();
            dump["settings"][def.key] = refused;
            let fresh = Db::on(backend);
            let untouched = fresh.ok(T0, &["--export"]);
            let file = fresh.path.with_file_name("bad.json");
            std::fs::write(&file, dump.to_string()).unwrap();
            let err = fails(&fresh, &["--import", file.to_str().unwrap()]);
            assert!(err.contains(&format!("settings.{}", def.key)), "{err}");
            assert_eq!(fresh.ok(T0, &["--export"]), untouched, "{option}");
        }
    }
}

on_both_stores!(every_setting_from_option_to_import);
