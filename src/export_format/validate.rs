//! Reading an import: the export file or Plesk's `--info-server` text parsed and validated
//! completely (keys, choice words, ranges, intervals, list patterns) before anything is written.

use crate::bounds;
use crate::config::{self, ServerLists, Settings};
use crate::plesk_import::{self, PleskConfig};

use super::{ConfigDump, EXPORT_FORMAT, EXPORT_VERSION, ImportError, SERVER_LISTS, keys};

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
        // The one line naming the list and what is wrong in it.
        let invalid = |why: &dyn std::fmt::Display| {
            ImportError::Invalid(format!("lists.{}: {why}", kind.as_str()))
        };
        for pattern in lists.get(kind) {
            if kind.is_zone() {
                // Stored only in the form the CLI stores, so the decision compares plainly.
                match config::parse_zone(pattern) {
                    Ok(zone) if zone == *pattern => {}
                    Ok(_) => {
                        return Err(invalid(&format_args!(
                            "zone '{}' is not lower-case without a trailing dot",
                            crate::escape::escape(pattern)
                        )));
                    }
                    Err(e) => return Err(invalid(&e)),
                }
            } else {
                config::check_pattern(pattern).map_err(|e| invalid(&e))?;
            }
        }
        bounds::check_list_size(lists.get(kind)).map_err(|e| invalid(&e))?;
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
