//! Steps 4a and 4b of the trace in words: the DNS list answers the decision used, and what made
//! the client suspicious or trusted. Zones come from the store: shown escaped like every value.

use serde::Serialize;

use super::Step;
use crate::decision::{Suspicion, ZoneSeen};
use crate::dns::{self, Forward, ZoneResult};
use crate::engine::ExplainedDns;
use crate::escape::shown;

/// One zone the mail path would ask, with its answer and where the answer came from.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ZoneSource {
    /// The zone, as stored.
    pub(super) zone: String,
    /// `cache` (the store's cache of answers), `live` (asked now, not stored) or `none` (no
    /// answer within the time limit: counts as not listed).
    pub(super) source: &'static str,
    /// `listed 127.0.0.2`, `not listed` or `no answer`.
    pub(super) result: String,
}

/// Each zone of the plan with where its answer came from, in the order they are asked.
pub(super) fn sources(seen: &ExplainedDns) -> Vec<ZoneSource> {
    let Some(plan) = &seen.plan else {
        return Vec::new();
    };
    let real = |result: Option<ZoneResult>| result.filter(|r| *r != ZoneResult::NoAnswer);
    plan.zones
        .iter()
        .map(|zone| {
            let (source, result) = match (real(seen.cached.zone(zone)), real(seen.live.zone(zone)))
            {
                (Some(result), _) => ("cache", result),
                (None, Some(result)) => ("live", result),
                (None, None) => ("none", ZoneResult::NoAnswer),
            };
            let result = match result {
                ZoneResult::Listed(answer) => format!("listed {answer}"),
                ZoneResult::NotListed => "not listed".to_string(),
                ZoneResult::NoAnswer => "no answer".to_string(),
            };
            ZoneSource {
                zone: zone.clone(),
                source,
                result,
            }
        })
        .collect()
}

/// One zone's line of the explanation (escaped: zones come from the store).
pub(super) fn source_text(source: &ZoneSource) -> String {
    let zone = shown(&source.zone);
    match source.source {
        "cache" => format!("{zone}: {} (from the cache)", source.result),
        "live" => format!("{zone}: {} (asked now, not stored)", source.result),
        _ => format!(
            "{zone}: no answer within {} s (counts as not listed)",
            dns::BUDGET.as_secs_f64()
        ),
    }
}

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

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    // The texts `--explain` shows for steps 4a and 4b, zones escaped as stored values.
    #[test]
    fn dns_steps_in_words() {
        let listed = ZoneResult::Listed(Ipv4Addr::new(127, 0, 0, 2));
        let step = render_dnswl(
            &[
                ("a.wl.example".to_string(), Some(ZoneResult::NoAnswer)),
                ("b.wl.example".to_string(), Some(listed)),
            ],
            Some("b.wl.example"),
        );
        assert_eq!(
            step.result,
            "a.wl.example: no answer (not listed); b.wl.example: listed (127.0.0.2): \
             dnswl b.wl.example: pass"
        );
        let bl = vec![("bl.example\n".to_string(), Some(listed))];
        let dnsbl = Suspicion::Dnsbl {
            zone: "bl.example\n".to_string(),
            answer: Ipv4Addr::new(127, 0, 0, 2),
        };
        let step = render_clients(Some(Forward::Confirmed), &bl, &dnsbl);
        assert_eq!(
            step.result,
            "forward lookup confirms the name; bl.example\\x0a: listed (127.0.0.2); \
             suspicious: dnsbl bl.example\\x0a 127.0.0.2"
        );
        for (suspicion, text) in [
            (
                Suspicion::NameEmbedsAddress,
                "suspicious: name embeds the address",
            ),
            (
                Suspicion::NoVerifiedName,
                "suspicious: no verified host name",
            ),
            (Suspicion::Trusted, "trusted client: pass"),
        ] {
            assert_eq!(render_clients(None, &[], &suspicion).result, text);
        }
    }
}
