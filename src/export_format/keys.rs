//! The keys an export may hold. serde alone would skip an unknown key (a typo such as
//! `grey_intervall` would be dropped without a word) and fill a missing setting with its
//! default; an import replaces the whole configuration, so both are refused, naming the key.

use serde_json::Value;

use super::ImportError;
use crate::config::Settings;

const TOP: &[&str] = &[
    "format",
    "version",
    "settings",
    "lists",
    "domains",
    "mailboxes",
];
const LISTS: &[&str] = &[
    "black",
    "white",
    "domains_white",
    "domains_black",
    "dnswl_zones",
    "dnsbl_zones",
];
/// Keys version 3 added: a version 2 file may lack them (the default and empty lists apply).
const ADDED_IN_3: &[&str] = &["greylist_clients", "dnswl_zones", "dnsbl_zones"];
const MAILBOX_LISTS: &[&str] = &["black", "white"];

/// Checks the keys of a parsed export of `version`. Version 3 (what `--export` writes now)
/// must hold every key; version 2 every key but those version 3 added. Version 1 files were written while settings were still being added,
/// and without `domains`/`mailboxes` when there were none: those may be missing (defaults and
/// empty maps apply). Unknown keys are refused in both.
pub(super) fn check(value: &Value, version: u64) -> Result<(), ImportError> {
    let strict = version >= 2;
    let required_top: &[&str] = if strict {
        TOP
    } else {
        &["format", "version", "settings", "lists"]
    };
    check_object(value, "", TOP, required_top)?;
    let setting_names: Vec<&str> = Settings::default()
        .to_pairs()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let required_settings: Vec<&str> = if strict {
        since_version(&setting_names, version)
    } else {
        Vec::new()
    };
    check_object(
        &value["settings"],
        "settings.",
        &setting_names,
        &required_settings,
    )?;
    check_object(
        &value["lists"],
        "lists.",
        LISTS,
        &since_version(LISTS, version),
    )?;
    if let Some(mailboxes) = value.get("mailboxes").and_then(Value::as_object) {
        for (mail, lists) in mailboxes {
            let prefix = format!("mailboxes.{mail}.");
            check_object(lists, &prefix, MAILBOX_LISTS, MAILBOX_LISTS)?;
        }
    }
    Ok(())
}

/// The keys among `keys` that a file of `version` must hold.
fn since_version<'a>(keys: &[&'a str], version: u64) -> Vec<&'a str> {
    keys.iter()
        .copied()
        .filter(|key| version >= 3 || !ADDED_IN_3.contains(key))
        .collect()
}

/// Refuses keys of `value` not in `known` and keys of `required` it lacks. A value that is not
/// an object is left for the parser, which names what it expected.
fn check_object(
    value: &Value,
    prefix: &str,
    known: &[&str],
    required: &[&str],
) -> Result<(), ImportError> {
    let Some(object) = value.as_object() else {
        return Ok(());
    };
    if let Some(unknown) = object.keys().find(|key| !known.contains(&key.as_str())) {
        return Err(ImportError::Invalid(format!(
            "unknown key '{prefix}{}'",
            crate::escape::escape(unknown)
        )));
    }
    let missing: Vec<String> = required
        .iter()
        .filter(|key| !object.contains_key(**key))
        .map(|key| format!("'{prefix}{key}'"))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ImportError::Invalid(format!(
            "missing {}",
            missing.join(", ")
        )))
    }
}
