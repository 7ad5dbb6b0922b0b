//! Moving a whole configuration in and out: `--export` / `--import` (our JSON) and
//! `--import-plesk` (Plesk's `--info-server` text). Each import is validated completely before
//! anything is written, then applied in one write transaction.

mod keys;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::config::{ListKind, MailboxLists, ServerLists, Settings};
use crate::plesk_import::{self, PleskConfig};
use crate::store::{self, StoreError, Tx};

pub use validate::{parse_export, parse_plesk};

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

    // A bad entry of a server list is refused naming the list, in the words the CLI uses.
    #[test]
    fn bad_list_entries_read_exactly() {
        let (_dir, mut source) = store();
        let clean = source.read_with(export).unwrap();
        let refusal = |edit: &dyn Fn(&mut ConfigDump)| {
            let mut dump = clean.clone();
            edit(&mut dump);
            let text = serde_json::to_string(&dump).unwrap();
            parse_export(&text).unwrap_err().to_string()
        };
        assert_eq!(
            refusal(&|d| d.lists.white.push("a b".to_string())),
            "lists.white: pattern 'a b' contains white space or a control character"
        );
        assert_eq!(
            refusal(&|d| d.lists.dnsbl_zones.push("Zone.Example".to_string())),
            "lists.dnsbl_zones: zone 'Zone.Example' is not lower-case without a trailing dot"
        );
        assert_eq!(
            refusal(&|d| d.lists.dnswl_zones.push("bad zone".to_string())),
            format!(
                "lists.dnswl_zones: {}",
                crate::config::parse_zone("bad zone").unwrap_err()
            )
        );
        let many = vec!["a".to_string(); crate::bounds::MAX_LIST_PATTERNS + 1];
        assert_eq!(
            refusal(&|d| d.lists.black = many.clone()),
            format!(
                "lists.black: the list would hold {} patterns, more than the limit of {} patterns",
                crate::bounds::MAX_LIST_PATTERNS + 1,
                crate::bounds::MAX_LIST_PATTERNS
            )
        );
    }
}
