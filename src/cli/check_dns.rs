//! `grey_listing --check-dns`: a Nagios/Icinga plugin that asks every configured DNSWL and
//! DNSBL zone for its RFC 5782 test entries over the system resolver, and the zone part of
//! `--check`. A zone that lists 127.0.0.1 has been shut down and answers "listed" for
//! everything (every client would pass as `dnswl`, or be suspicious): CRITICAL. A zone that
//! does not list 127.0.0.2, or gives no answer, is useless but harmless (it counts as not
//! listed): WARNING.

use serde_json::json;

use super::to_json;
use crate::dns::{ZoneCheck, ZoneHealth, ZoneResult, check_zones, system_resolver};
use crate::escape::{escape_plugin, escape_terminal};
use crate::store::{self, Store, StoreError, StoreExt};

/// The configured zones, each once in list order (DNSWL zones first), with the lists naming it.
fn zones_of(dnswl: &[String], dnsbl: &[String]) -> Vec<(String, Vec<&'static str>)> {
    let mut zones: Vec<(String, Vec<&'static str>)> = Vec::new();
    for (list, names) in [("dnswl", dnswl), ("dnsbl", dnsbl)] {
        for zone in names {
            match zones.iter_mut().find(|(z, _)| z.eq_ignore_ascii_case(zone)) {
                Some((_, lists)) => lists.push(list),
                None => zones.push((zone.clone(), vec![list])),
            }
        }
    }
    zones
}

/// Why there is no resolver, for a plugin line: it may quote a configured value, so nothing in
/// it may change the terminal or start the performance data.
fn plugin_text(why: &str) -> String {
    escape_terminal(why).replace('|', "\\x7c")
}

/// The Nagios status of a set of checks: CRITICAL when a zone lists everything, WARNING when a
/// zone is otherwise unusable, else OK.
fn status(checks: &[ZoneCheck]) -> (&'static str, u8) {
    if checks
        .iter()
        .any(|c| c.health == ZoneHealth::ListsEverything)
    {
        ("CRITICAL", 2)
    } else if checks.iter().any(|c| !c.health.is_ok()) {
        ("WARNING", 1)
    } else {
        ("OK", 0)
    }
}

/// A short word for a failing zone, for one-line summaries.
fn short(health: ZoneHealth) -> &'static str {
    match health {
        ZoneHealth::Ok => "ok",
        ZoneHealth::ListsEverything => "lists everything",
        ZoneHealth::DoesNotListTestEntry => "does not list 127.0.0.2",
        ZoneHealth::NoAnswer => "no answer",
    }
}

fn answer_json(result: ZoneResult) -> serde_json::Value {
    match result {
        ZoneResult::Listed(answer) => json!({ "listed": answer.to_string() }),
        ZoneResult::NotListed => json!("not listed"),
        ZoneResult::NoAnswer => json!("no answer"),
    }
}

/// Runs `--check-dns`: the status line, then one line per zone; the Nagios exit status.
/// A resolver that cannot be located is UNKNOWN (exit 3), named in one line.
pub(super) fn run(
    store: &mut dyn Store,
    env: &dyn Fn(&str) -> Option<String>,
    json: bool,
) -> Result<(String, u8), StoreError> {
    let lists = store.read_with(|tx| {
        let server = store::server_lists(tx)?;
        Ok((server.dnswl_zones, server.dnsbl_zones))
    })?;
    let zones = zones_of(&lists.0, &lists.1);
    if zones.is_empty() {
        let text = "no DNS zones configured";
        return Ok(if json {
            (
                to_json(&json!({ "status": "OK", "message": text, "zones": [] })),
                0,
            )
        } else {
            (format!("GREY_LISTING OK - {text}\n"), 0)
        });
    }
    let resolver = match system_resolver(env) {
        Ok(resolver) => resolver,
        Err(why) => {
            // The locate error names the variable or file and quotes its value.
            let why = plugin_text(&why.to_string());
            return Ok(if json {
                (
                    to_json(&json!({ "status": "UNKNOWN", "message": why, "zones": [] })),
                    3,
                )
            } else {
                (format!("GREY_LISTING UNKNOWN - {why}\n"), 3)
            });
        }
    };
    let names: Vec<String> = zones.iter().map(|(zone, _)| zone.clone()).collect();
    let checks = check_zones(&resolver, &names);
    let (status, code) = status(&checks);
    if json {
        let zones: Vec<serde_json::Value> = checks
            .iter()
            .zip(&zones)
            .map(|(check, (_, lists))| {
                json!({
                    "zone": check.zone,
                    "lists": lists,
                    "healthy": check.health.is_ok(),
                    "health": short(check.health),
                    "test_entry_127_0_0_2": answer_json(check.listed_entry),
                    "test_entry_127_0_0_1": answer_json(check.unlisted_entry),
                    "text": check.to_string(),
                })
            })
            .collect();
        return Ok((to_json(&json!({ "status": status, "zones": zones })), code));
    }
    let failing = checks.iter().filter(|c| !c.health.is_ok()).count();
    let mut out = format!(
        "GREY_LISTING {status} - {} of {} DNS zone(s) healthy | zones={};;;0 failing_zones={failing};;;0\n",
        checks.len() - failing,
        checks.len(),
        checks.len(),
    );
    for check in &checks {
        out.push_str(&check.to_string());
        out.push('\n');
    }
    Ok((out, code))
}

/// The zone part of `--check`: `None` without zones; otherwise the text for its summary and
/// the number of failing zones (any makes `--check` warn; without a resolver all of them).
pub(super) fn summary(
    dnswl: &[String],
    dnsbl: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(String, usize)> {
    let zones = zones_of(dnswl, dnsbl);
    if zones.is_empty() {
        return None;
    }
    let resolver = match system_resolver(env) {
        Ok(resolver) => resolver,
        Err(why) => {
            return Some((
                format!(
                    "{} DNS zone(s) not checked: {}",
                    zones.len(),
                    plugin_text(&why.to_string())
                ),
                zones.len(),
            ));
        }
    };
    let names: Vec<String> = zones.into_iter().map(|(zone, _)| zone).collect();
    let checks = check_zones(&resolver, &names);
    let failing: Vec<String> = checks
        .iter()
        .filter(|c| !c.health.is_ok())
        .map(|c| format!("{} ({})", escape_plugin(&c.zone), short(c.health)))
        .collect();
    let text = if failing.is_empty() {
        format!("{} DNS zone(s) ok", checks.len())
    } else {
        format!(
            "{} of {} DNS zone(s) failing --check-dns: {}",
            failing.len(),
            checks.len(),
            failing.join(", ")
        )
    };
    Some((text, failing.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    // A zone on both lists is checked once and named with both; DNSWL zones come first.
    #[test]
    fn zones_once_in_list_order() {
        let zones = zones_of(
            &strings(&["wl.example", "both.example"]),
            &strings(&["bl.example", "Both.Example"]),
        );
        assert_eq!(
            zones,
            [
                ("wl.example".to_string(), vec!["dnswl"]),
                ("both.example".to_string(), vec!["dnswl", "dnsbl"]),
                ("bl.example".to_string(), vec!["dnsbl"]),
            ]
        );
    }

    #[test]
    fn status_by_worst_zone() {
        let check = |health| ZoneCheck {
            zone: "z.example".to_string(),
            health,
            listed_entry: ZoneResult::NoAnswer,
            listed_answer: None,
            unlisted_entry: ZoneResult::NoAnswer,
        };
        assert_eq!(status(&[check(ZoneHealth::Ok)]), ("OK", 0));
        assert_eq!(
            status(&[check(ZoneHealth::Ok), check(ZoneHealth::NoAnswer)]),
            ("WARNING", 1)
        );
        assert_eq!(
            status(&[check(ZoneHealth::DoesNotListTestEntry)]),
            ("WARNING", 1)
        );
        assert_eq!(
            status(&[
                check(ZoneHealth::NoAnswer),
                check(ZoneHealth::ListsEverything)
            ]),
            ("CRITICAL", 2)
        );
    }
}
