//! Steps 4a and 4b as pure functions: every rule, with DNS answers built by hand.

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::config::{ServerLists, Settings};
use crate::decision::{
    PolicyOutcome, RecipientPolicy, TripletSeen, decide_by_policy_traced, decide_by_triplet,
};
use crate::dns::ZoneAnswer;

const IP: &str = "198.51.100.7";
const GOOD_NAME: &str = "mx1.sender.example.com";

fn settings(mode: GreylistClients) -> Settings {
    Settings {
        greylist_clients: mode,
        ..Settings::default()
    }
}

fn lists(dnswl: &[&str], dnsbl: &[&str]) -> CompiledLists {
    let mut lists = ServerLists::defaults();
    // Without the default black host patterns, which would reject end-user lines at step 3.
    lists.domains_black.clear();
    lists.dnswl_zones = dnswl.iter().map(|z| z.to_string()).collect();
    lists.dnsbl_zones = dnsbl.iter().map(|z| z.to_string()).collect();
    CompiledLists::new(&lists)
}

fn facts(zones: &[(&str, ZoneResult)], forward: Option<Forward>) -> DnsFacts {
    DnsFacts {
        zones: zones
            .iter()
            .map(|(zone, result)| ZoneAnswer {
                zone: zone.to_string(),
                result: *result,
            })
            .collect(),
        forward,
    }
}

fn listed(last: u8) -> ZoneResult {
    ZoneResult::Listed(Ipv4Addr::new(127, 0, 0, last))
}

/// Decides one request; returns the outcome and the trace.
fn decide(
    settings: &Settings,
    lists: &CompiledLists,
    name: Option<&str>,
    unconfirmed: bool,
    dns: &DnsFacts,
) -> (PolicyOutcome, Trace) {
    let request = Request {
        client_ip: IP.parse().ok(),
        client_name: name,
        client_name_unconfirmed: unconfirmed,
        dns,
        sender: "alice@sender.example.com",
        recipient: "john@local.example",
        authenticated: false,
    };
    let mut trace = Trace::on();
    let outcome = decide_by_policy_traced(
        settings,
        lists,
        &RecipientPolicy::default(),
        &request,
        &mut trace,
    );
    (outcome, trace)
}

fn reason(outcome: &PolicyOutcome) -> Option<(Reason, Option<String>)> {
    match outcome {
        PolicyOutcome::Decided(d) => {
            assert_eq!(d.verdict, Verdict::Pass);
            assert_eq!(d.write, None, "DNS passes write no triplet");
            Some((d.reason, d.pattern.clone()))
        }
        PolicyOutcome::Greylist(_) => None,
    }
}

fn suspicion(trace: &Trace) -> Option<Suspicion> {
    trace.steps().iter().find_map(|step| match step {
        Step::Clients { suspicion, .. } => Some(suspicion.clone()),
        _ => None,
    })
}

// Step 4a in both modes: the first listing zone in list order names the pass, whatever order
// the answers came in; a zone that did not answer or was not asked lists nothing.
#[test]
fn dnswl_passes_in_both_modes_naming_the_first_listing_zone() {
    let lists = lists(&["a.wl.example", "b.wl.example", "c.wl.example"], &[]);
    let dns = facts(
        &[
            ("c.wl.example", listed(3)),
            ("b.wl.example", listed(2)),
            ("a.wl.example", ZoneResult::NotListed),
        ],
        None,
    );
    for mode in [GreylistClients::All, GreylistClients::Suspicious] {
        // No name at all: suspicious, but the DNS whitelist comes first.
        let (outcome, trace) = decide(&settings(mode), &lists, None, false, &dns);
        assert_eq!(
            reason(&outcome),
            Some((Reason::Dnswl, Some("b.wl.example".to_string()))),
            "{mode:?}"
        );
        assert!(trace.steps().contains(&Step::Dnswl {
            answers: vec![
                ("a.wl.example".to_string(), Some(ZoneResult::NotListed)),
                ("b.wl.example".to_string(), Some(listed(2))),
                ("c.wl.example".to_string(), Some(listed(3))),
            ],
            listed: Some("b.wl.example".to_string()),
        }));
        assert_eq!(suspicion(&trace), None, "4a decided before 4b");
    }
    let unanswered = facts(&[("a.wl.example", ZoneResult::NoAnswer)], None);
    let (outcome, _) = decide(
        &settings(GreylistClients::All),
        &lists,
        None,
        false,
        &unanswered,
    );
    assert_eq!(reason(&outcome), None, "no answer is not a listing");
}

// Step 4b: a verified name that does not embed the address, on no DNSBL, passes as trusted.
#[test]
fn trusted_client_passes_in_suspicious_mode_only() {
    let lists = lists(&[], &["bl.example"]);
    let clean = facts(&[("bl.example", ZoneResult::NotListed)], None);
    let (outcome, trace) = decide(
        &settings(GreylistClients::Suspicious),
        &lists,
        Some(GOOD_NAME),
        false,
        &clean,
    );
    assert_eq!(reason(&outcome), Some((Reason::TrustedClient, None)));
    assert_eq!(suspicion(&trace), Some(Suspicion::Trusted));
    let (outcome, trace) = decide(
        &settings(GreylistClients::All),
        &lists,
        Some(GOOD_NAME),
        false,
        &clean,
    );
    assert_eq!(reason(&outcome), None);
    assert_eq!(suspicion(&trace), None);
}

// Step 4b's three causes, each alone; DNSBL zones are consulted only when the name does not
// already make the client suspicious, a zone without an answer lists nothing, and a listing
// on a DNSBL zone counts only in suspicious mode.
#[test]
fn each_suspicious_cause_greylists() {
    let lists = lists(&[], &["one.bl.example", "two.bl.example"]);
    let listed_dns = facts(
        &[
            ("one.bl.example", ZoneResult::NoAnswer),
            ("two.bl.example", listed(2)),
        ],
        None,
    );
    let clean = DnsFacts::default();
    let suspicious = settings(GreylistClients::Suspicious);
    let cases: [(Option<&str>, &DnsFacts, Suspicion); 4] = [
        (None, &clean, Suspicion::NoVerifiedName),
        (Some("unknown"), &clean, Suspicion::NoVerifiedName),
        (
            Some("c-198-51-100-7.hsd1.ma.comcast.net"),
            &listed_dns,
            Suspicion::NameEmbedsAddress,
        ),
        (
            Some(GOOD_NAME),
            &listed_dns,
            Suspicion::Dnsbl {
                zone: "two.bl.example".to_string(),
                answer: Ipv4Addr::new(127, 0, 0, 2),
            },
        ),
    ];
    for (name, dns, expected) in cases {
        let (outcome, trace) = decide(&suspicious, &lists, name, false, dns);
        assert_eq!(reason(&outcome), None, "{name:?}");
        assert_eq!(suspicion(&trace), Some(expected.clone()), "{name:?}");
        let consulted = trace
            .steps()
            .iter()
            .any(|step| matches!(step, Step::Clients { dnsbl, .. } if !dnsbl.is_empty()));
        assert_eq!(
            consulted,
            matches!(expected, Suspicion::Dnsbl { .. }),
            "{name:?}"
        );
    }
    assert_eq!(
        Suspicion::Dnsbl {
            zone: "two.bl.example".to_string(),
            answer: Ipv4Addr::new(127, 0, 0, 2)
        }
        .to_string(),
        "dnsbl two.bl.example 127.0.0.2"
    );
    // A DNSBL listing is no reason to pass or to reject in `all` mode: plain greylisting.
    let (outcome, trace) = decide(
        &settings(GreylistClients::All),
        &lists,
        Some(GOOD_NAME),
        false,
        &listed_dns,
    );
    assert!(matches!(outcome, PolicyOutcome::Greylist(_)));
    assert_eq!(suspicion(&trace), None);
    // The zone that did not answer alone lists nothing: trusted.
    let unanswered = facts(&[("one.bl.example", ZoneResult::NoAnswer)], None);
    let (outcome, _) = decide(&suspicious, &lists, Some(GOOD_NAME), false, &unanswered);
    assert_eq!(reason(&outcome), Some((Reason::TrustedClient, None)));
}

// The filter's name from a qmail `Received:` header: in suspicious mode it counts only once
// confirmed, for 4b and for the host lists alike; in `all` mode it counts as before.
#[test]
fn unconfirmed_names_count_only_when_confirmed_in_suspicious_mode() {
    let lists = lists(&[], &[]);
    let suspicious = settings(GreylistClients::Suspicious);
    for (forward, expected) in [
        (None, None),
        (Some(Forward::NoAnswer), None),
        (Some(Forward::NotConfirmed), None),
        (
            Some(Forward::Confirmed),
            Some((Reason::TrustedClient, None)),
        ),
    ] {
        let dns = facts(&[], forward);
        let (outcome, trace) = decide(&suspicious, &lists, Some(GOOD_NAME), true, &dns);
        assert_eq!(reason(&outcome), expected, "{forward:?}");
        let forward_seen = trace.steps().iter().find_map(|step| match step {
            Step::Clients { forward, .. } => Some(*forward),
            _ => None,
        });
        assert_eq!(
            forward_seen,
            Some(forward),
            "the trace shows the answer used"
        );
    }
    // A verified name needs no confirmation.
    let (outcome, _) = decide(
        &suspicious,
        &lists,
        Some(GOOD_NAME),
        false,
        &DnsFacts::default(),
    );
    assert_eq!(reason(&outcome), Some((Reason::TrustedClient, None)));

    // The white host list sees the unconfirmed name in `all` mode, not in suspicious mode
    // until it is confirmed.
    let mut server = ServerLists::defaults();
    server.domains_white = vec!["*.sender.example.com".to_string()];
    let white = CompiledLists::new(&server);
    let host = |mode, forward| {
        let dns = facts(&[], forward);
        reason(&decide(&settings(mode), &white, Some(GOOD_NAME), true, &dns).0).map(|r| r.0)
    };
    assert_eq!(host(GreylistClients::All, None), Some(Reason::WhiteHost));
    assert_eq!(host(GreylistClients::Suspicious, None), None);
    assert_eq!(
        host(GreylistClients::Suspicious, Some(Forward::Confirmed)),
        Some(Reason::WhiteHost)
    );
    assert_eq!(
        verified_name(
            &settings(GreylistClients::All),
            Some("x"),
            true,
            &DnsFacts::default()
        ),
        Some("x")
    );
}

// `all` mode without zones: the decision and its trace are exactly what they were before,
// whatever DNS facts come along.
#[test]
fn all_mode_without_zones_is_unchanged() {
    let all = settings(GreylistClients::All);
    let no_zones = lists(&[], &[]);
    let noisy = facts(
        &[("wl.example", listed(2)), ("bl.example", listed(2))],
        Some(Forward::NotConfirmed),
    );
    for name in [None, Some(GOOD_NAME)] {
        let plain = decide(&all, &no_zones, name, false, &DnsFacts::default());
        assert!(matches!(plain.0, PolicyOutcome::Greylist(_)));
        assert_eq!(decide(&all, &no_zones, name, false, &noisy), plain);
        assert_eq!(decide(&all, &no_zones, name, true, &noisy), plain);
        assert!(
            plain
                .1
                .steps()
                .iter()
                .all(|step| !matches!(step, Step::Dnswl { .. } | Step::Clients { .. }))
        );
    }
}

// Passes at 4a and 4b never reach the auto-whitelist or the triplet: nothing is written, so
// they add nothing to the client network's passed triplets; the triplet steps are untouched.
#[test]
fn dns_passes_do_not_reach_the_triplet() {
    let lists = lists(&["wl.example"], &[]);
    let dns = facts(&[("wl.example", listed(2))], None);
    let (outcome, trace) = decide(&settings(GreylistClients::All), &lists, None, false, &dns);
    assert!(matches!(outcome, PolicyOutcome::Decided(ref d) if d.write.is_none()));
    assert!(
        !trace
            .steps()
            .iter()
            .any(|step| matches!(step, Step::Awl { .. } | Step::Triplet(TripletSeen::Unknown)))
    );
    // For contrast: the triplet step of the same client writes a record.
    let greylisted = decide_by_triplet(&Settings::default(), &Default::default(), 1000);
    assert!(greylisted.write.is_some());
    let ip: IpAddr = IP.parse().unwrap();
    assert_eq!(name_suspicion(Some(GOOD_NAME), ip), None);
}
