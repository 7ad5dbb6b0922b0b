//! Steps 4a and 4b of the trace in words: the DNS list answers the decision used, and what made
//! the client suspicious or trusted. Zones come from the store: shown escaped like every value.

use super::Step;
use crate::decision::{Suspicion, ZoneSeen};
use crate::dns::{Forward, ZoneResult};
use crate::escape::shown;

/// The answers of `zones` as one text: `zone: listed (127.0.0.2)`, `zone: not listed`, ...
fn answers(zones: &[ZoneSeen]) -> String {
    zones
        .iter()
        .map(|(zone, result)| {
            let said = match result {
                Some(ZoneResult::Listed(answer)) => format!("listed ({answer})"),
                Some(ZoneResult::NotListed) => "not listed".to_string(),
                Some(ZoneResult::NoAnswer) => "no answer (not listed)".to_string(),
                None => "not asked (not listed)".to_string(),
            };
            format!("{}: {said}", shown(zone))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Step 4a: the DNS whitelist zones and the one that listed the client, if any.
pub(super) fn render_dnswl(zones: &[ZoneSeen], listed: Option<&str>) -> Step {
    let outcome = match listed {
        Some(zone) => format!("dnswl {}: pass", shown(zone)),
        None => "not listed".to_string(),
    };
    Step {
        check: "DNS whitelists",
        result: format!("{}: {outcome}", answers(zones)),
        pattern: None,
    }
}

/// Step 4b: selective greylisting's verdict on the client, with the answers it used.
pub(super) fn render_clients(
    forward: Option<Forward>,
    dnsbl: &[ZoneSeen],
    suspicion: &Suspicion,
) -> Step {
    let mut parts = Vec::new();
    match forward {
        Some(Forward::Confirmed) => parts.push("forward lookup confirms the name".to_string()),
        Some(Forward::NotConfirmed) => {
            parts.push("forward lookup does not confirm the name".to_string())
        }
        Some(Forward::NoAnswer) => parts.push("forward lookup: no answer".to_string()),
        None => {}
    }
    if !dnsbl.is_empty() {
        parts.push(answers(dnsbl));
    }
    let verdict = match suspicion {
        Suspicion::Dnsbl { zone, answer } => format!("suspicious: dnsbl {} {answer}", shown(zone)),
        Suspicion::Trusted => "trusted client: pass".to_string(),
        other => other.to_string(),
    };
    parts.push(verdict);
    Step {
        check: "Selective greylisting",
        result: parts.join("; "),
        pattern: None,
    }
}
