//! The DNS plan per mode, table-driven: which zones are asked and whether the client name is
//! confirmed, for each configuration and message.

use super::tests::{GOOD, LINE, message, zones};
use super::*;
use crate::config::{MailboxLists, ServerLists};

/// One row: the configuration and the message, and the plan expected (`None`: nothing asked).
struct PlanCase {
    name: &'static str,
    mode: GreylistClients,
    dnswl: &'static [&'static str],
    dnsbl: &'static [&'static str],
    white_sender: bool,
    message: Message,
    expect: Option<(&'static [&'static str], Option<&'static str>)>,
}

fn plan_cases() -> Vec<PlanCase> {
    use GreylistClients::{All, Suspicious};
    let row = |name, mode, dnswl, dnsbl, message, expect| PlanCase {
        name,
        mode,
        dnswl,
        dnsbl,
        white_sender: false,
        message,
        expect,
    };
    let both: &[&str] = &["wl.example"];
    let bl: &[&str] = &["bl.example"];
    vec![
        row(
            "all, no zones",
            All,
            &[],
            &[],
            message(Some(GOOD), false),
            None,
        ),
        row(
            "all, unconfirmed name, no zones",
            All,
            &[],
            &[],
            message(Some(GOOD), true),
            None,
        ),
        row(
            "all: DNSWL only",
            All,
            both,
            bl,
            message(Some(GOOD), false),
            Some((&["wl.example"], None)),
        ),
        row(
            "all, only DNSBL zones: nothing",
            All,
            &[],
            bl,
            message(Some(GOOD), false),
            None,
        ),
        row(
            "suspicious, verified good name: both",
            Suspicious,
            both,
            bl,
            message(Some(GOOD), false),
            Some((&["wl.example", "bl.example"], None)),
        ),
        row(
            "suspicious, name embeds the address: no DNSBL",
            Suspicious,
            both,
            bl,
            message(Some(LINE), false),
            Some((&["wl.example"], None)),
        ),
        row(
            "suspicious, no name: no DNSBL",
            Suspicious,
            both,
            bl,
            message(None, false),
            Some((&["wl.example"], None)),
        ),
        row(
            "suspicious, no name, no DNSWL: nothing",
            Suspicious,
            &[],
            bl,
            message(None, false),
            None,
        ),
        row(
            "suspicious, verified good name, no zones: 4b decides without DNS",
            Suspicious,
            &[],
            &[],
            message(Some(GOOD), false),
            None,
        ),
        row(
            "suspicious, unconfirmed good name: confirm and DNSBL",
            Suspicious,
            &[],
            bl,
            message(Some(GOOD), true),
            Some((&["bl.example"], Some(GOOD))),
        ),
        row(
            "suspicious, unconfirmed line name: confirm, no DNSBL",
            Suspicious,
            &[],
            bl,
            message(Some(LINE), true),
            Some((&[], Some(LINE))),
        ),
        row(
            "a zone on both lists is asked once",
            Suspicious,
            &["x.example", "wl.example"],
            &["WL.example", "bl.example"],
            message(Some(GOOD), false),
            Some((&["x.example", "wl.example", "bl.example"], None)),
        ),
        row(
            "authenticated: step 2 decides",
            Suspicious,
            both,
            bl,
            Message {
                authenticated: true,
                ..message(Some(GOOD), false)
            },
            None,
        ),
        row(
            "local injection",
            Suspicious,
            both,
            bl,
            Message {
                client_ip: None,
                ..message(Some(GOOD), false)
            },
            None,
        ),
        PlanCase {
            white_sender: true,
            ..row(
                "a white list decides",
                Suspicious,
                both,
                bl,
                message(Some(GOOD), true),
                None,
            )
        },
    ]
}

// The plan per mode: DNSWL zones in both modes, DNSBL zones only in suspicious mode and only
// when the name does not already make the client suspicious, the unconfirmed name confirmed in
// suspicious mode only, and nothing when the lists decide or nothing needs asking.
#[test]
fn plan_per_mode() {
    for case in plan_cases() {
        let settings = Settings {
            greylist_clients: case.mode,
            ..Settings::default()
        };
        let mut server = ServerLists::defaults();
        server.domains_black.clear();
        server.dnswl_zones = zones(case.dnswl);
        server.dnsbl_zones = zones(case.dnsbl);
        if case.white_sender {
            server.white = vec!["*@sender.example.com".to_string()];
        }
        let lists = CompiledLists::new(&server);
        let policies = vec![RecipientPolicy::new(None, &MailboxLists::default())];
        let plan = plan_dns_with(&settings, &lists, &policies, &case.message);
        let expected = case.expect.map(|(z, confirm)| DnsPlan {
            ip: "198.51.100.7".parse().unwrap(),
            zones: zones(z),
            confirm: confirm.map(str::to_string),
        });
        assert_eq!(plan, expected, "{}", case.name);
    }
}

// A white host pattern may decide once the pending name is confirmed: the plan must ask.
#[test]
fn pending_confirmation_keeps_the_plan_when_the_name_could_decide() {
    let settings = Settings {
        greylist_clients: GreylistClients::Suspicious,
        ..Settings::default()
    };
    let mut server = ServerLists::defaults();
    server.black = vec!["*@sender.example.com".to_string()];
    server.domains_white = vec!["*.sender.example.com".to_string()];
    let lists = CompiledLists::new(&server);
    let policies = vec![RecipientPolicy::default()];
    // Verified: the white host decides. Unconfirmed: the black sender list would reject
    // without the name, so the name must be confirmed first.
    assert_eq!(
        plan_dns_with(&settings, &lists, &policies, &message(Some(GOOD), false)),
        None
    );
    let plan = plan_dns_with(&settings, &lists, &policies, &message(Some(GOOD), true));
    assert_eq!(plan.and_then(|p| p.confirm), Some(GOOD.to_string()));
}
