//! Moving a whole configuration in and out: `--export` / `--import` (our JSON) and
//! `--import-plesk` (Plesk's `--info-server` text). Each import is validated completely before
//! anything is written, then applied in one write transaction.

mod keys;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::bounds;
use crate::config::{self, ListKind, MailboxLists, ServerLists, Settings};
use crate::plesk_import::{self, PleskConfig};
use crate::store::{self, StoreError, Tx};

/// The `format` field of an export, so a wrong file is refused clearly.
pub const EXPORT_FORMAT: &str = "grey_listing-configuration";
/// The version of the export format `--export` writes. Version 3 added the
/// `greylist_clients` setting and the `dnswl_zones`/`dnsbl_zones` lists (a version 2 file
/// without them keeps the default and empty lists). Version 2 gives `log_retention` in minutes
/// like every other interval; version 1 gave it in seconds. Both are still read.
pub const EXPORT_VERSION: u32 = 3;

/// Plesk's four server lists: what `--import-plesk` replaces.
const PLESK_LISTS: [ListKind; 4] = [
    ListKind::Black,
    ListKind::White,
    ListKind::DomainsWhite,
    ListKind::DomainsBlack,
];

/// Every server list: what `--export` carries and `--import` replaces.
const SERVER_LISTS: [ListKind; 6] = [
    ListKind::Black,
    ListKind::White,
    ListKind::DomainsWhite,
    ListKind::DomainsBlack,
    ListKind::DnswlZones,
    ListKind::DnsblZones,
];

/// A whole configuration: settings, server lists, per-domain flags and per-mailbox lists.
/// Triplets are state, not configuration, and are not included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDump {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// [`EXPORT_VERSION`] when written; version 1 files are converted when read.
    pub version: u32,
    /// Server-wide settings.
    pub settings: Settings,
    /// Server-wide lists.
    pub lists: ServerLists,
    /// Domains with their own checking flag.
    #[serde(default)]
    pub domains: BTreeMap<String, bool>,
    /// Mailboxes with their own lists.
    #[serde(default)]
    pub mailboxes: BTreeMap<String, MailboxLists>,
}

/// Why an import file cannot be applied.
#[derive(Debug, Error)]
pub enum ImportError {
    /// Not valid JSON of the expected shape.
    #[error("not a grey_listing export: {0}")]
    Json(#[from] serde_json::Error),
    /// A wrong `format` or `version` field.
    #[error(
        "not a grey_listing export (format '{format}', version {version}; expected '{EXPORT_FORMAT}', version 1 to {EXPORT_VERSION})"
    )]
    Format {
        /// The format found.
        format: String,
        /// The version found.
        version: u32,
    },
    /// A value out of range or malformed.
    #[error("{0}")]
    Invalid(String),
    /// Plesk's text could not be read.
    #[error(transparent)]
    Plesk(#[from] plesk_import::PleskParseError),
}

/// Reads the whole configuration.
pub fn export(tx: &mut dyn Tx) -> Result<ConfigDump, StoreError> {
    let settings = tx.settings()?;
    let lists = store::server_lists(tx)?;
    let domains = tx.domains()?.into_iter().collect();
    let mut mailboxes = BTreeMap::new();
    for mail in tx.mailboxes()? {
        let lists = store::mailbox_lists(tx, &mail)?;
        mailboxes.insert(mail, lists);
    }
    Ok(ConfigDump {
        format: EXPORT_FORMAT.to_string(),
        version: EXPORT_VERSION,
        settings,
        lists,
        domains,
        mailboxes,
    })
}

/// Parses and validates an export.
pub fn parse_export(text: &str) -> Result<ConfigDump, ImportError> {
    let mut value: serde_json::Value = serde_json::from_str(text)?;
    let format = value["format"].as_str().unwrap_or_default().to_string();
    let version = value["version"].as_u64().unwrap_or_default();
    if format != EXPORT_FORMAT || !(1..=u64::from(EXPORT_VERSION)).contains(&version) {
        return Err(ImportError::Format {
            format,
            version: u32::try_from(version).unwrap_or(u32::MAX),
        });
    }
    keys::check(&value, version)?;
    check_choices(&value)?;
    if version == 1 {
        upgrade_version_1(&mut value);
    }
    let mut dump: ConfigDump = serde_json::from_value(value)?;
    dump.version = EXPORT_VERSION;
    validate_settings(&dump.settings)?;
    check_intervals(
        &dump.settings,
        "settings.grey_interval",
        "settings.expire_interval",
    )?;
    validate_lists(&dump.lists)?;
    for domain in dump.domains.keys() {
        if config::parse_domain(domain).ok().as_deref() != Some(domain.as_str()) {
            return Err(ImportError::Invalid(format!(
                "domains: '{domain}' is not a valid lower-case domain name"
            )));
        }
    }
    for (mail, lists) in &dump.mailboxes {
        if config::parse_mail(mail).ok().as_deref() != Some(mail.as_str()) {
            return Err(ImportError::Invalid(format!(
                "mailboxes: '{mail}' is not a valid lower-case mail address"
            )));
        }
        for pattern in lists.black.iter().chain(&lists.white) {
            config::check_pattern(pattern)
                .map_err(|why| ImportError::Invalid(format!("mailbox {mail}: {why}")))?;
        }
        for (name, list) in [("black", &lists.black), ("white", &lists.white)] {
            bounds::check_list_size(list).map_err(|why| {
                ImportError::Invalid(format!("mailbox {mail} {name} list: {why}"))
            })?;
        }
    }
    Ok(dump)
}

/// Version 1 gave `log_retention` in seconds: as minutes, rounded up (a retention is kept at
/// least as long as asked). A value that is not a number is left for the parser to refuse.
fn upgrade_version_1(value: &mut serde_json::Value) {
    if let Some(retention) = value.pointer_mut("/settings/log_retention")
        && let Some(seconds) = retention.as_u64()
    {
        *retention = serde_json::Value::from(seconds.div_ceil(60));
    }
}

/// The words of choice settings (`greylist_clients`), checked here so the refusal names the
/// key (the parser would name only the word).
fn check_choices(value: &serde_json::Value) -> Result<(), ImportError> {
    for def in &config::SETTINGS {
        let config::SettingKind::Choice { words } = def.kind else {
            continue;
        };
        let Some(given) = value["settings"].get(def.key) else {
            continue;
        };
        if !given.as_str().is_some_and(|word| words.contains(&word)) {
            return Err(ImportError::Invalid(format!(
                "settings.{}: invalid value {} (expected {})",
                def.key,
                crate::escape::escape(&bounds::abridged(&given.to_string())),
                words.join(" or ")
            )));
        }
    }
    Ok(())
}

/// The rule `--update-server` applies: an expire interval longer than the grey interval.
fn check_intervals(settings: &Settings, grey: &str, expire: &str) -> Result<(), ImportError> {
    if settings.intervals_make_sense() {
        return Ok(());
    }
    Err(ImportError::Invalid(format!(
        "{expire} {} (minutes) must be longer than {grey} {} (minutes)",
        settings.expire_interval, settings.grey_interval
    )))
}

/// The ranges `--update-server` accepts, so an import cannot store what the CLI refuses.
fn validate_settings(settings: &Settings) -> Result<(), ImportError> {
    for def in &config::SETTINGS {
        let Some((value, min, max)) = def.import_range(settings) else {
            continue;
        };
        if value < min || value > max {
            return Err(ImportError::Invalid(format!(
                "settings.{}: {value} is out of range ({min}..={max})",
                def.key
            )));
        }
    }
    Ok(())
}

fn validate_lists(lists: &ServerLists) -> Result<(), ImportError> {
    for kind in SERVER_LISTS {
        for pattern in lists.get(kind) {
            let checked = if kind.is_zone() {
                // Stored only in the form the CLI stores, so the decision compares plainly.
                match config::parse_zone(pattern) {
                    Ok(zone) if zone == *pattern => Ok(()),
                    Ok(_) => Err(format!(
                        "zone '{}' is not lower-case without a trailing dot",
                        crate::escape::escape(pattern)
                    )),
                    Err(e) => Err(e.to_string()),
                }
            } else {
                config::check_pattern(pattern)
            };
            checked
                .map_err(|why| ImportError::Invalid(format!("lists.{}: {why}", kind.as_str())))?;
        }
        bounds::check_list_size(lists.get(kind))
            .map_err(|why| ImportError::Invalid(format!("lists.{}: {why}", kind.as_str())))?;
    }
    Ok(())
}

/// Replaces the whole configuration with `dump` (inside the caller's write transaction).
pub fn import(tx: &mut dyn Tx, dump: &ConfigDump) -> Result<(), StoreError> {
    tx.set_settings(&dump.settings)?;
    replace_server_lists(tx, &dump.lists, &SERVER_LISTS)?;
    for (domain, _) in tx.domains()? {
        if !dump.domains.contains_key(&domain) {
            tx.delete_domain(&domain)?;
        }
    }
    for (domain, enabled) in &dump.domains {
        tx.set_domain_status(domain, *enabled)?;
    }
    let empty = MailboxLists::default();
    let mut owners = tx.mailboxes()?;
    owners.extend(dump.mailboxes.keys().cloned());
    owners.sort();
    owners.dedup();
    for mail in owners {
        let wanted = dump.mailboxes.get(&mail).unwrap_or(&empty);
        replace_list(tx, ListKind::Black, &mail, &wanted.black)?;
        replace_list(tx, ListKind::White, &mail, &wanted.white)?;
    }
    Ok(())
}

fn replace_server_lists(
    tx: &mut dyn Tx,
    lists: &ServerLists,
    kinds: &[ListKind],
) -> Result<(), StoreError> {
    for &kind in kinds {
        replace_list(tx, kind, "", lists.get(kind))?;
    }
    Ok(())
}

/// Makes a stored list equal to `wanted`, order included. Unchanged lists are not touched.
fn replace_list(
    tx: &mut dyn Tx,
    kind: ListKind,
    owner: &str,
    wanted: &[String],
) -> Result<(), StoreError> {
    let current = tx.list(kind, owner)?;
    if current == wanted {
        return Ok(());
    }
    for pattern in &current {
        tx.delete_pattern(kind, owner, pattern)?;
    }
    for pattern in wanted {
        tx.add_pattern(kind, owner, pattern)?;
    }
    Ok(())
}

/// Parses and validates Plesk's `--info-server` text.
pub fn parse_plesk(text: &str) -> Result<PleskConfig, ImportError> {
    let config = plesk_import::parse_info_server(text)?;
    let settings = config.settings_over(&Settings::default());
    validate_settings(&settings)?;
    // Plesk's text gives both intervals, so the file alone decides.
    check_intervals(&settings, "Grey interval", "Expire interval")?;
    validate_lists(&config.lists)?;
    Ok(config)
}

/// What `--import-plesk` changed, and what it warns about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PleskImport {
    /// One line per changed setting or list entry.
    pub changes: Vec<String>,
    /// Imported black patterns known to reject legitimate senders, with the command to drop them.
    pub warnings: Vec<String>,
}

/// Applies a Plesk configuration (settings and the four server lists) inside the caller's write
/// transaction.
pub fn import_plesk(tx: &mut dyn Tx, config: &PleskConfig) -> Result<PleskImport, StoreError> {
    let before = tx.settings()?;
    let after = config.settings_over(&before);
    let mut changes = Vec::new();
    let on = |flag: bool, yes: &str, no: &str| {
        if flag {
            yes.to_string()
        } else {
            no.to_string()
        }
    };
    let mut changed = |label: &str, old: String, new: String| {
        if old != new {
            changes.push(format!("{label}: {old} -> {new}"));
        }
    };
    changed(
        "Grey listing checking",
        on(before.enabled, "enabled", "disabled"),
        on(after.enabled, "enabled", "disabled"),
    );
    changed(
        "Grey interval",
        format!("{} minutes", before.grey_interval),
        format!("{} minutes", after.grey_interval),
    );
    changed(
        "Expire interval",
        format!("{} minutes", before.expire_interval),
        format!("{} minutes", after.expire_interval),
    );
    changed(
        "Penalty interval",
        format!("{} minutes", before.penalty_interval),
        format!("{} minutes", after.penalty_interval),
    );
    changed(
        "Penalty",
        on(before.penalty_enabled, "enabled", "disabled"),
        on(after.penalty_enabled, "enabled", "disabled"),
    );
    changed(
        "Personal grey listing configuration",
        on(before.personal_conf, "allowed", "prohibited"),
        on(after.personal_conf, "allowed", "prohibited"),
    );
    tx.set_settings(&after)?;
    let old_lists = store::server_lists(tx)?;
    for (kind, label) in [
        (ListKind::Black, "Server-wide black list"),
        (ListKind::White, "Server-wide white list"),
        (ListKind::DomainsWhite, "White domains patterns list"),
        (ListKind::DomainsBlack, "Black domains patterns list"),
    ] {
        let old = old_lists.get(kind);
        let new = config.lists.get(kind);
        changes.extend(
            old.iter()
                .filter(|p| !new.contains(p))
                .map(|p| format!("{label}: - {p}")),
        );
        changes.extend(
            new.iter()
                .filter(|p| !old.contains(p))
                .map(|p| format!("{label}: + {p}")),
        );
    }
    replace_server_lists(tx, &config.lists, &PLESK_LISTS)?;
    let warnings = config
        .lists
        .domains_black
        .iter()
        .filter_map(|pattern| {
            plesk_import::known_harmful(pattern).map(|why| {
                format!(
                    "warning: black domains pattern '{pattern}' rejects legitimate mail: {why}; \
                     remove it with: grey_listing -u -domains-blacklist \"del:{pattern}\""
                )
            })
        })
        .collect();
    Ok(PleskImport { changes, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SqliteStore, Store, StoreExt};

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn export_import_round_trip() {
        let (_dir, mut source) = store();
        source
            .write(&mut |tx| {
                tx.set_domain_status("example.com", false)?;
                tx.add_pattern(ListKind::White, "john@example.com", "*@ietf.org")?;
                tx.add_pattern(ListKind::DomainsBlack, "", "*.dyn.example.net")?;
                let mut settings = tx.settings()?;
                settings.grey_interval = 8;
                tx.set_settings(&settings)
            })
            .unwrap();
        let dump = source.read_with(export).unwrap();
        let text = serde_json::to_string(&dump).unwrap();
        let parsed = parse_export(&text).unwrap();

        let (_dir2, mut target) = store();
        target
            .write(&mut |tx| {
                tx.set_domain_status("other.example", true)?;
                tx.add_pattern(ListKind::Black, "old@example.com", "*@spam.example")?;
                import(tx, &parsed)
            })
            .unwrap();
        let again = target.read_with(export).unwrap();
        assert_eq!(again, dump);
    }

    #[test]
    fn bad_exports_are_refused() {
        assert!(matches!(parse_export("{"), Err(ImportError::Json(_))));
        assert!(matches!(
            parse_export("{}"),
            Err(ImportError::Format { .. })
        ));
        let (_dir, mut source) = store();
        let mut dump = source.read_with(export).unwrap();
        dump.settings.grey_interval = 50_000;
        let text = serde_json::to_string(&dump).unwrap();
        assert!(matches!(parse_export(&text), Err(ImportError::Invalid(_))));
    }
}
