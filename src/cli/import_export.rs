//! `--import-plesk`, `--export` and `--import`: whole configurations in and out.

use std::io::Read;

use serde_json::json;

use crate::bounds;
use crate::export_format::{self, ConfigDump, ImportError};
use crate::plesk_import::PleskConfig;
use crate::store::{Store, StoreError, StoreExt};

/// Reads a file named on the command line, `-` meaning standard input, up to
/// [`bounds::MAX_IMPORT_BYTES`]: a bigger input (or an endless one, `/dev/zero`) is refused
/// after reading one byte past the limit, never held in memory whole.
pub(super) fn read_source(source: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    let limit = bounds::MAX_IMPORT_BYTES;
    let result = if source == "-" {
        std::io::stdin().take(limit + 1).read_to_end(&mut bytes)
    } else {
        std::fs::File::open(source).and_then(|file| file.take(limit + 1).read_to_end(&mut bytes))
    };
    result.map_err(|err| format!("cannot read '{source}': {err}"))?;
    if bytes.len() as u64 > limit {
        let name = if source == "-" {
            "standard input".to_string()
        } else {
            format!("'{source}'")
        };
        return Err(format!(
            "{name} is larger than the limit of {} MiB ({limit} bytes)",
            limit / (1024 * 1024)
        ));
    }
    String::from_utf8(bytes).map_err(|_| format!("cannot read '{source}': not valid UTF-8 text"))
}

/// Reads and validates Plesk's `--info-server` output.
pub(super) fn load_plesk(source: &str) -> Result<PleskConfig, String> {
    let text = read_source(source)?;
    export_format::parse_plesk(&text).map_err(|err| describe(source, err))
}

/// Reads and validates an `--export` file.
pub(super) fn load_export(source: &str) -> Result<ConfigDump, String> {
    let text = read_source(source)?;
    export_format::parse_export(&text).map_err(|err| describe(source, err))
}

fn describe(source: &str, err: ImportError) -> String {
    let name = if source == "-" {
        "standard input"
    } else {
        source
    };
    format!("{name}: {err}")
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
