//! `grey_listing --purge` and `grey_listing --stats [--json]`.

use std::collections::BTreeMap;

use serde_json::json;

use super::output::row;
use super::to_json;
use crate::escape::escape;
use crate::store::{Store, StoreError, StoreExt};

/// The decisions `--stats` counts: the last 24 hours.
const STATS_WINDOW: i64 = 86_400;

/// Removes expired triplets and decision-log rows past the retention, in one write
/// transaction, and says how many of each went.
pub(super) fn purge(store: &mut dyn Store, now: i64, json: bool) -> Result<String, StoreError> {
    let (triplets, log_rows) = store.write_with(|tx| {
        let settings = tx.settings()?;
        // Retention 0 means no decision log: any rows left from before go.
        let before = match i64::try_from(settings.log_retention) {
            Ok(0) => i64::MAX,
            Ok(retention) => now.saturating_sub(retention),
            Err(_) => i64::MIN,
        };
        Ok((tx.purge_expired(now)?, tx.purge_decision_log(before, None)?))
    })?;
    if json {
        return Ok(to_json(&json!({
            "expired_triplets_removed": triplets,
            "decision_log_rows_removed": log_rows,
        })));
    }
    let mut out = String::new();
    out.push_str(&row("Expired triplets", &format!("{triplets} removed")));
    out.push_str(&row("Decision log rows", &format!("{log_rows} removed")));
    out.push_str("\nSUCCESS: Purge complete.\n");
    Ok(out)
}

/// Counts triplets by state and the last 24 hours' decisions by verdict.
pub(super) fn stats(store: &mut dyn Store, now: i64, json: bool) -> Result<String, StoreError> {
    let mut verdicts: BTreeMap<String, u64> = ["pass", "defer", "reject"]
        .iter()
        .map(|v| (v.to_string(), 0))
        .collect();
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    let (settings, counts) = store.read_with(|tx| {
        let settings = tx.settings()?;
        let counts = tx.triplet_counts(now, settings.awl_count)?;
        for entry in tx.decision_log(now.saturating_sub(STATS_WINDOW))? {
            *verdicts.entry(entry.verdict).or_default() += 1;
            *reasons.entry(entry.reason).or_default() += 1;
        }
        Ok((settings, counts))
    })?;
    if json {
        return Ok(to_json(&json!({
            "time": now,
            "triplets": counts,
            "decisions_24h": verdicts,
            "reasons_24h": reasons,
        })));
    }
    let mut out = String::from("Grey listing statistics.\n\n");
    out.push_str(&row("Triplets", &counts.total.to_string()));
    out.push_str(&row("Passed triplets", &counts.passed.to_string()));
    out.push_str(&row("Pending triplets", &counts.pending.to_string()));
    out.push_str(&row("Expired triplets", &counts.expired.to_string()));
    let awl = if settings.awl_count == 0 {
        "0 (auto-whitelist off)".to_string()
    } else {
        counts.awl_networks.to_string()
    };
    out.push_str(&row("AWL client networks", &awl));
    out.push_str("\nDecisions in the last 24 hours:\n");
    // Verdicts and reasons are read from the store: printed escaped like every stored value.
    for (verdict, count) in &verdicts {
        out.push_str(&row(&escape(verdict), &count.to_string()));
    }
    out.push_str("\nBy reason:\n");
    for (reason, count) in &reasons {
        out.push_str(&row(&escape(reason), &count.to_string()));
    }
    out.push_str("\nSUCCESS: Gathering of statistics complete.\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Reason;
    use crate::store::{LogEntry, SqliteStore};

    // The passes of selective greylisting are counted by `--stats` under fixed reasons: every
    // DNSWL pass under `dnswl` whatever its zone (the engine keeps the zone in the row's
    // pattern), every trusted client under `trusted client`.
    #[test]
    fn stats_count_dns_list_and_trusted_client_passes() {
        let dir = tempfile::TempDir::new().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
        let row = |reason: Reason, zone: Option<&str>| LogEntry {
            time: 1_000,
            client_network: "198.51.100.0/24".to_string(),
            client_key: String::new(),
            organisation: String::new(),
            client_address: "198.51.100.7".to_string(),
            client_name: String::new(),
            sender: "a@sender.example".to_string(),
            recipient: "u@local.example".to_string(),
            verdict: "pass".to_string(),
            reason: reason.as_str().to_string(),
            pattern: zone.map(str::to_string),
            delay: None,
        };
        let rows = [
            row(Reason::Dnswl, Some("a.wl.example")),
            row(Reason::Dnswl, Some("b.wl.example")),
            row(Reason::TrustedClient, None),
        ];
        store
            .write(&mut |tx| rows.iter().try_for_each(|r| tx.log_decision(r)))
            .unwrap();
        let text = stats(&mut store, 2_000, true).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json["reasons_24h"]["dnswl"], 2, "{text}");
        assert_eq!(json["reasons_24h"]["trusted client"], 1, "{text}");
        assert_eq!(json["decisions_24h"]["pass"], 3, "{text}");
        let text = stats(&mut store, 2_000, false).unwrap();
        assert!(text.contains("trusted client"), "{text}");
    }
}
