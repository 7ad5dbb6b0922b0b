//! The engine with DNS facts through a real store: the decision-log rows, counters and
//! triplets of DNS passes.

use std::net::Ipv4Addr;

use super::tests::{FakeDns, GOOD, LINE, message, store, zones};
use super::*;
use crate::config::ServerLists;
use crate::decision::Reason;
use crate::store::SqliteStore;

// The decision-log row of a DNS pass: the reason is the fixed name (`dnswl`, `trusted
// client`) that reports and counters group by, the zone stays in the pattern, and no client key
// is recorded since no triplet was written.
#[test]
fn log_rows_of_dns_passes() {
    use crate::decision::{Decision, Verdict};
    let message = message(Some(GOOD), false);
    let facts = super::super::LoggedFacts {
        message: &message,
        sender: &message.sender,
        recipient: "u@local.example",
    };
    let key = crate::decision::client_key(
        "198.51.100.7".parse().unwrap(),
        Some(GOOD),
        &Settings::default(),
        &[],
    );
    for (reason, zone, text) in [
        (Reason::Dnswl, Some("wl.example"), "dnswl"),
        (Reason::TrustedClient, None, "trusted client"),
    ] {
        let decision = Decision {
            verdict: Verdict::Pass,
            reason,
            pattern: zone.map(str::to_string),
            delay: None,
            write: None,
        };
        let row = super::super::log_entry(&facts, Some(&key), &decision, 1_000);
        assert_eq!(row.reason, text);
        assert_eq!(row.pattern.as_deref(), zone);
        assert_eq!(row.client_key, "");
        assert_eq!(row.organisation, "example.com");
    }
}

/// A cache holding `settings` and zones as the configuration of `store`'s current stamp, so the
/// engine decides with them (the stores do not keep zones or the mode yet).
fn configured(
    store: &mut SqliteStore,
    mode: GreylistClients,
    dnswl: &[&str],
    dnsbl: &[&str],
) -> ConfigCache {
    let mut stamp = None;
    store
        .read(&mut |tx| {
            stamp = tx.config_stamp()?;
            Ok(())
        })
        .unwrap();
    let settings = Settings {
        greylist_clients: mode,
        ..Settings::default()
    };
    let mut server = ServerLists::defaults();
    server.domains_black.clear();
    server.dnswl_zones = zones(dnswl);
    server.dnsbl_zones = zones(dnsbl);
    ConfigCache {
        keep: true,
        stamp,
        server: Some((settings, CompiledLists::new(&server))),
        recipients: Default::default(),
        loads: 0,
    }
}

// Through the engine and the store: DNSWL and trusted-client passes write no triplet, add
// nothing to the auto-whitelist, and are logged and counted like other passes; a suspicious
// client is greylisted as before. The plan read through the cache names the zones.
#[test]
fn dns_passes_through_the_store() {
    let (_dir, mut store) = store();
    let mut cache = configured(
        &mut store,
        GreylistClients::Suspicious,
        &["wl.example"],
        &["bl.example"],
    );
    let good = message(Some(GOOD), false);
    let mut plan = None;
    store
        .read(&mut |tx| {
            plan = plan_dns(tx, &mut cache, &good)?;
            Ok(())
        })
        .unwrap();
    assert_eq!(
        plan.map(|p| p.zones),
        Some(zones(&["wl.example", "bl.example"]))
    );
    let listed = ZoneResult::Listed(Ipv4Addr::new(127, 0, 0, 2));
    let dns = FakeDns::new(vec![("wl.example", listed)]);
    let whitelisted = Message {
        dns: dns.ask(&Question {
            ip: good.client_ip.unwrap(),
            zones: &zones(&["wl.example"]),
            confirm: None,
        }),
        ..good.clone()
    };
    let line = message(Some(LINE), false);
    let mut reasons = Vec::new();
    for (i, m) in [&good, &good, &whitelisted, &line].into_iter().enumerate() {
        store
            .write(&mut |tx| {
                let outcome = check_messages_cached(
                    tx,
                    &mut cache,
                    Component::Policyd,
                    &[(m, 1_000 + i as i64)],
                )?;
                let decision = &outcome[0].recipients[0].decision;
                reasons.push((decision.reason, decision.pattern.clone()));
                Ok(())
            })
            .unwrap();
    }
    assert_eq!(
        reasons,
        vec![
            (Reason::TrustedClient, None),
            (Reason::TrustedClient, None),
            (Reason::Dnswl, Some("wl.example".to_string())),
            (Reason::New, None),
        ]
    );
    store
        .read(&mut |tx| {
            // Only the suspicious client's triplet; no auto-whitelist credit for the passes.
            assert_eq!(tx.triplet_counts(2_000, 5)?.total, 1);
            assert_eq!(tx.awl_passes("198.51.100.0/24", 2_000)?, 0);
            let logged: Vec<(String, Option<String>)> = tx
                .decision_log(0)?
                .into_iter()
                .map(|e| (e.reason, e.pattern))
                .collect();
            assert!(logged.contains(&("trusted client".to_string(), None)));
            assert!(logged.contains(&("dnswl".to_string(), Some("wl.example".to_string()))));
            let counted: Vec<(String, String, u64)> = tx
                .decision_counters()?
                .into_iter()
                .map(|c| (c.component, c.reason, c.count))
                .collect();
            assert!(counted.contains(&("policyd".to_string(), "trusted client".to_string(), 2)));
            assert!(counted.contains(&("policyd".to_string(), "dnswl".to_string(), 1)));
            Ok(())
        })
        .unwrap();
}
