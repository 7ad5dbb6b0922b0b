//! `--import-plesk`, `--export` and `--import`: whole configurations in and out.

use std::io::{self, Read};

use serde_json::json;
use thiserror::Error;

use crate::bounds;
use crate::export_format::{self, ConfigDump, ImportError};
use crate::plesk_import::PleskConfig;
use crate::store::{Store, StoreError, StoreExt};

/// Why a file to import cannot be used; `name` is the source as given (`-`: standard input).
#[derive(Debug, Error)]
pub(super) enum SourceError {
    /// Opening or reading failed.
    #[error("cannot read '{name}': {cause}")]
    Unreadable {
        name: String,
        #[source]
        cause: io::Error,
    },
    /// More than [`bounds::MAX_IMPORT_BYTES`].
    #[error(
        "{} is larger than the limit of {} MiB ({limit} bytes)",
        quoted(.name),
        .limit / (1024 * 1024)
    )]
    TooLarge { name: String, limit: u64 },
    /// Not UTF-8 text.
    #[error("cannot read '{name}': not valid UTF-8 text")]
    NotUtf8 { name: String },
    /// Read, but not a valid configuration.
    #[error("{}: {cause}", described(.name))]
    Invalid {
        name: String,
        #[source]
        cause: ImportError,
    },
}

/// The source in a size message: standard input, or the name in quotes.
fn quoted(name: &str) -> String {
    if name == "-" {
        "standard input".to_string()
    } else {
        format!("'{name}'")
    }
}

/// The source before a validation message: standard input, or the name as given.
fn described(name: &str) -> &str {
    if name == "-" { "standard input" } else { name }
}

/// Reads a file named on the command line, `-` meaning standard input, up to
/// [`bounds::MAX_IMPORT_BYTES`]: a bigger input (or an endless one, `/dev/zero`) is refused
/// after reading one byte past the limit, never held in memory whole.
pub(super) fn read_source(source: &str) -> Result<String, SourceError> {
    let mut bytes = Vec::new();
    let limit = bounds::MAX_IMPORT_BYTES;
    let result = if source == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(source).and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
    };
    result.map_err(|cause| SourceError::Unreadable {
        name: source.to_string(),
        cause,
    })?;
    if bytes.len() as u64 > limit {
        return Err(SourceError::TooLarge {
            name: source.to_string(),
            limit,
        });
    }
    String::from_utf8(bytes).map_err(|_| SourceError::NotUtf8 {
        name: source.to_string(),
    })
}

/// Reads and validates Plesk's `--info-server` output.
pub(super) fn load_plesk(source: &str) -> Result<PleskConfig, SourceError> {
    let text = read_source(source)?;
    export_format::parse_plesk(&text).map_err(|cause| invalid(source, cause))
}

/// Reads and validates an `--export` file.
pub(super) fn load_export(source: &str) -> Result<ConfigDump, SourceError> {
    let text = read_source(source)?;
    export_format::parse_export(&text).map_err(|cause| invalid(source, cause))
}

fn invalid(source: &str, cause: ImportError) -> SourceError {
    SourceError::Invalid {
        name: source.to_string(),
        cause,
    }
}

/// Applies a Plesk configuration in one transaction; prints each change, then SUCCESS.
pub(super) fn import_plesk(
    store: &mut dyn Store,
    config: &PleskConfig,
    json: bool,
) -> Result<String, StoreError> {
    let result = store.write_with(|tx| export_format::import_plesk(tx, config))?;
    let message = "Import of Plesk configuration complete.";
    if json {
        return Ok(super::to_json(&json!({
            "success": true,
            "message": message,
            "changes": result.changes,
            "warnings": result.warnings,
        })));
    }
    let mut out = String::new();
    if result.changes.is_empty() {
        out.push_str("No changes: the configuration already matches.\n");
    }
    for line in result.changes.iter().chain(&result.warnings) {
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("SUCCESS: {message}\n"));
    Ok(out)
}

/// The whole configuration as JSON (what `--import` reads back).
pub(super) fn export(store: &mut dyn Store) -> Result<String, StoreError> {
    let dump = store.read_with(export_format::export)?;
    Ok(super::to_json(&json!(dump)))
}

/// Replaces the whole configuration in one transaction.
pub(super) fn import(
    store: &mut dyn Store,
    dump: &ConfigDump,
    json: bool,
) -> Result<String, StoreError> {
    store.write(&mut |tx| export_format::import(tx, dump))?;
    let message = "Import of configuration complete.";
    if json {
        return Ok(super::to_json(
            &json!({ "success": true, "message": message }),
        ));
    }
    Ok(format!("SUCCESS: {message}\n"))
}
