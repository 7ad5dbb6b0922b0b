//! Table-driven tests of the pure decision (DESIGN.md §4): every rule of steps 1–6, every precedence
//! edge between them, the multi-recipient rule, and the two cases from Plesk admins' reports.

use std::net::IpAddr;

use grey_listing::config::{MailboxLists, ServerLists, Settings};
use grey_listing::decision::{
    ClientState, CompiledLists, PolicyOutcome, Reason, RecipientPolicy, Request, Verdict,
    client_network, combine, decide_by_policy, decide_by_triplet, triplet_sender,
};
use grey_listing::dns::DnsFacts;
use grey_listing::store::Triplet;

const IP: &str = "198.51.100.7";

/// One row of the policy table: the inputs that differ from a plain greylisted request, and the
/// expected outcome (`None` = no rule decides: greylist).
struct PolicyCase {
    name: &'static str,
    settings: fn(&mut Settings),
    lists: fn(&mut ServerLists),
    domain_enabled: Option<bool>,
    mailbox_white: &'static [&'static str],
    mailbox_black: &'static [&'static str],
    client_ip: Option<&'static str>,
    client_name: Option<&'static str>,
    sender: &'static str,
    authenticated: bool,
    expect: Option<(Verdict, Reason, Option<&'static str>)>,
}

const BASE: PolicyCase = PolicyCase {
    name: "",
    settings: |_| {},
    lists: |_| {},
    domain_enabled: None,
    mailbox_white: &[],
    mailbox_black: &[],
    client_ip: Some(IP),
    client_name: Some("mx1.sender.example"),
    sender: "alice@sender.example",
    authenticated: false,
    expect: None,
};

fn run_policy(case: &PolicyCase) -> PolicyOutcome {
    let mut settings = Settings::default();
    (case.settings)(&mut settings);
    let mut lists = ServerLists::defaults();
    (case.lists)(&mut lists);
    let mailbox = MailboxLists {
        black: case.mailbox_black.iter().map(|s| s.to_string()).collect(),
        white: case.mailbox_white.iter().map(|s| s.to_string()).collect(),
    };
    let policy = RecipientPolicy::new(case.domain_enabled, &mailbox);
    let request = Request {
        client_ip: case.client_ip.map(|ip| ip.parse().unwrap()),
        client_name: case.client_name,
        sender: case.sender,
        recipient: "john@local.example",
        authenticated: case.authenticated,
        client_name_unconfirmed: false,
        dns: &DnsFacts::default(),
    };
    decide_by_policy(&settings, &CompiledLists::new(&lists), &policy, &request)
}

fn policy_cases() -> Vec<PolicyCase> {
    vec![
        // Step 6 reached: nothing decides.
        PolicyCase {
            name: "plain request is greylisted",
            ..BASE
        },
        // Step 1.
        PolicyCase {
            name: "checking disabled server-wide passes",
            settings: |s| s.enabled = false,
            expect: Some((Verdict::Pass, Reason::Disabled, None)),
            ..BASE
        },
        PolicyCase {
            name: "server-wide off beats a black host",
            settings: |s| s.enabled = false,
            client_name: Some("host-dsl-1.isp.example"),
            expect: Some((Verdict::Pass, Reason::Disabled, None)),
            ..BASE
        },
        PolicyCase {
            name: "checking disabled for the domain passes",
            domain_enabled: Some(false),
            expect: Some((Verdict::Pass, Reason::DomainDisabled, None)),
            ..BASE
        },
        PolicyCase {
            name: "domain off beats the server black list",
            domain_enabled: Some(false),
            lists: |l| l.black.push("*@sender.example".into()),
            expect: Some((Verdict::Pass, Reason::DomainDisabled, None)),
            ..BASE
        },
        PolicyCase {
            name: "domain explicitly on is greylisted",
            domain_enabled: Some(true),
            ..BASE
        },
        // Step 2.
        PolicyCase {
            name: "authenticated client passes",
            authenticated: true,
            expect: Some((Verdict::Pass, Reason::Authenticated, None)),
            ..BASE
        },
        PolicyCase {
            name: "authenticated beats a black host and the black list",
            authenticated: true,
            client_name: Some("ppp-7.isp.example"),
            lists: |l| l.black.push("*".into()),
            expect: Some((Verdict::Pass, Reason::Authenticated, None)),
            ..BASE
        },
        PolicyCase {
            name: "no client address (local injection) passes",
            client_ip: None,
            lists: |l| l.black.push("*".into()),
            expect: Some((Verdict::Pass, Reason::LocalInjection, None)),
            ..BASE
        },
        PolicyCase {
            name: "disabled beats authenticated (step 1 before step 2)",
            settings: |s| s.enabled = false,
            authenticated: true,
            expect: Some((Verdict::Pass, Reason::Disabled, None)),
            ..BASE
        },
        // Step 3.
        PolicyCase {
            name: "white host pattern passes",
            client_name: Some("mail-ot1.google.com"),
            expect: Some((Verdict::Pass, Reason::WhiteHost, Some("*google.com"))),
            ..BASE
        },
        PolicyCase {
            name: "black host pattern rejects (unanchored alternative)",
            client_name: Some("host-dsl-17.isp.example"),
            expect: Some((
                Verdict::Reject,
                Reason::BlackHost,
                Some("dsl|broadband|hsd"),
            )),
            ..BASE
        },
        PolicyCase {
            name: "black host match is case-insensitive",
            client_name: Some("DYNAMIC-1.ISP.EXAMPLE"),
            expect: Some((
                Verdict::Reject,
                Reason::BlackHost,
                Some("dynamic|ppp|dyn-ip|dial-up"),
            )),
            ..BASE
        },
        PolicyCase {
            name: "white host beats black host",
            client_name: Some("dsl.mail.yahoo.com"),
            expect: Some((Verdict::Pass, Reason::WhiteHost, Some("*yahoo.com"))),
            ..BASE
        },
        PolicyCase {
            name: "black host beats the server white list",
            client_name: Some("dsl-1.isp.example"),
            lists: |l| l.white.push("*@sender.example".into()),
            expect: Some((
                Verdict::Reject,
                Reason::BlackHost,
                Some("dsl|broadband|hsd"),
            )),
            ..BASE
        },
        PolicyCase {
            name: "black host beats the recipient's own white list",
            client_name: Some("dsl-1.isp.example"),
            mailbox_white: &["*@sender.example"],
            expect: Some((
                Verdict::Reject,
                Reason::BlackHost,
                Some("dsl|broadband|hsd"),
            )),
            ..BASE
        },
        PolicyCase {
            name: "no verified host name skips the host lists",
            client_name: None,
            lists: |l| l.domains_black.push("*".into()),
            ..BASE
        },
        // Step 4.
        PolicyCase {
            name: "recipient's own white list passes",
            mailbox_white: &["*@sender.example"],
            expect: Some((
                Verdict::Pass,
                Reason::MailboxWhite,
                Some("*@sender.example"),
            )),
            ..BASE
        },
        PolicyCase {
            name: "recipient's own black list rejects",
            mailbox_black: &["alice@*"],
            expect: Some((Verdict::Reject, Reason::MailboxBlack, Some("alice@*"))),
            ..BASE
        },
        PolicyCase {
            name: "own white beats own black",
            mailbox_white: &["alice@*"],
            mailbox_black: &["*@sender.example"],
            expect: Some((Verdict::Pass, Reason::MailboxWhite, Some("alice@*"))),
            ..BASE
        },
        PolicyCase {
            name: "own black beats the server white list",
            mailbox_black: &["alice@*"],
            lists: |l| l.white.push("*@sender.example".into()),
            expect: Some((Verdict::Reject, Reason::MailboxBlack, Some("alice@*"))),
            ..BASE
        },
        PolicyCase {
            name: "own white beats the server black list",
            mailbox_white: &["alice@*"],
            lists: |l| l.black.push("*@sender.example".into()),
            expect: Some((Verdict::Pass, Reason::MailboxWhite, Some("alice@*"))),
            ..BASE
        },
        PolicyCase {
            name: "personal conf prohibited: own lists ignored",
            settings: |s| s.personal_conf = false,
            mailbox_white: &["alice@*"],
            lists: |l| l.black.push("*@sender.example".into()),
            expect: Some((
                Verdict::Reject,
                Reason::ServerBlack,
                Some("*@sender.example"),
            )),
            ..BASE
        },
        PolicyCase {
            name: "personal conf prohibited: own black ignored, greylisted",
            settings: |s| s.personal_conf = false,
            mailbox_black: &["*"],
            ..BASE
        },
        PolicyCase {
            name: "server white list passes",
            lists: |l| l.white.push("*@SENDER.example".into()),
            expect: Some((Verdict::Pass, Reason::ServerWhite, Some("*@SENDER.example"))),
            ..BASE
        },
        PolicyCase {
            name: "server black list rejects",
            lists: |l| l.black.push("alice@sender.example".into()),
            expect: Some((
                Verdict::Reject,
                Reason::ServerBlack,
                Some("alice@sender.example"),
            )),
            ..BASE
        },
        PolicyCase {
            name: "server white beats server black",
            lists: |l| {
                l.white.push("alice@*".into());
                l.black.push("*@sender.example".into());
            },
            expect: Some((Verdict::Pass, Reason::ServerWhite, Some("alice@*"))),
            ..BASE
        },
        PolicyCase {
            name: "address patterns are anchored",
            sender: "alice@sender.example.evil",
            lists: |l| l.black.push("*@sender.example".into()),
            ..BASE
        },
        PolicyCase {
            name: "bounce (empty sender) does not match *@*",
            sender: "",
            lists: |l| l.black.push("*@*".into()),
            ..BASE
        },
        PolicyCase {
            name: "bounce (empty sender) matches *",
            sender: "",
            lists: |l| l.black.push("*".into()),
            expect: Some((Verdict::Reject, Reason::ServerBlack, Some("*"))),
            ..BASE
        },
        // Seed 000: Microsoft's outbound pool.
        PolicyCase {
            name: "Plesk report: default lists do not reject outboundpool",
            client_name: Some("db3outboundpool.messaging.microsoft.com"),
            sender: "someone@bigfish.com",
            ..BASE
        },
        PolicyCase {
            name: "Plesk report: *pool* black host rejects despite *@bigfish.com white",
            client_name: Some("db3outboundpool.messaging.microsoft.com"),
            sender: "someone@bigfish.com",
            lists: |l| {
                l.domains_black.push("*pool*".into());
                l.white.push("*@bigfish.com".into());
            },
            expect: Some((Verdict::Reject, Reason::BlackHost, Some("*pool*"))),
            ..BASE
        },
        PolicyCase {
            name: "Plesk report: *messaging.microsoft.com white host passes",
            client_name: Some("db3outboundpool.messaging.microsoft.com"),
            sender: "someone@bigfish.com",
            lists: |l| {
                l.domains_black.push("*pool*".into());
                l.white.push("*@bigfish.com".into());
                l.domains_white.push("*messaging.microsoft.com".into());
            },
            expect: Some((
                Verdict::Pass,
                Reason::WhiteHost,
                Some("*messaging.microsoft.com"),
            )),
            ..BASE
        },
    ]
}

#[test]
fn policy_rules_and_precedence() {
    // DESIGN.md §4 steps 1–4, first match wins.
    let mut failures = Vec::new();
    for case in policy_cases() {
        let got = run_policy(&case);
        let ok = match (&got, case.expect) {
            (PolicyOutcome::Greylist(ip), None) => {
                case.client_ip == Some(IP) && ip.to_string() == IP
            }
            (PolicyOutcome::Decided(d), Some((verdict, reason, pattern))) => {
                d.verdict == verdict
                    && d.reason == reason
                    && d.pattern.as_deref() == pattern
                    && d.write.is_none()
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: got {got:?}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}

fn triplet(first_seen: i64, earliest_accept: i64, expires: i64, pass_count: u64) -> Triplet {
    Triplet {
        first_seen,
        earliest_accept,
        last_seen: first_seen,
        expires,
        pass_count,
    }
}

/// (name, settings, AWL passes, stored triplet, verdict, reason, delay, written triplet)
type TripletCase = (
    &'static str,
    Settings,
    u64,
    Option<Triplet>,
    Verdict,
    Reason,
    Option<i64>,
    Option<Triplet>,
);

#[test]
fn triplet_rules() {
    // DESIGN.md §4 steps 5–6 with the defaults: grey 5 min, expire 51840 min, penalty 2 min (off),
    // AWL after 5 passed triplets.
    let now = 1_000_000;
    let grey = 300;
    let expire = 51_840 * 60;
    let penalty_on = Settings {
        penalty_enabled: true,
        ..Settings::default()
    };
    let awl_off = Settings {
        awl_count: 0,
        ..Settings::default()
    };
    let known = triplet(now - 100, now + 200, now + 1000, 0);
    // (name, settings, awl passes, stored triplet, verdict, reason, delay, written triplet)
    let cases: Vec<TripletCase> = vec![
        (
            "unknown triplet: created, deferred",
            Settings::default(),
            0,
            None,
            Verdict::Defer,
            Reason::New,
            None,
            Some(Triplet {
                first_seen: now,
                earliest_accept: now + grey,
                last_seen: now,
                expires: now + expire,
                pass_count: 0,
            }),
        ),
        (
            "expired triplet counts as unknown (first-seen reset)",
            Settings::default(),
            0,
            Some(triplet(now - 9000, now - 8000, now, 3)),
            Verdict::Defer,
            Reason::New,
            None,
            Some(Triplet {
                first_seen: now,
                earliest_accept: now + grey,
                last_seen: now,
                expires: now + expire,
                pass_count: 0,
            }),
        ),
        (
            "early retry without penalty: earliest-accept unchanged",
            Settings::default(),
            0,
            Some(known),
            Verdict::Defer,
            Reason::EarlyRetry,
            None,
            Some(Triplet {
                last_seen: now,
                ..known
            }),
        ),
        (
            "early retry with penalty: earliest-accept += penalty",
            penalty_on.clone(),
            0,
            Some(known),
            Verdict::Defer,
            Reason::EarlyRetry,
            None,
            Some(Triplet {
                earliest_accept: now + 200 + 120,
                last_seen: now,
                ..known
            }),
        ),
        (
            "retry exactly at earliest-accept passes, delay on first pass",
            Settings::default(),
            0,
            Some(triplet(now - 300, now, now + 10, 0)),
            Verdict::Pass,
            Reason::TripletFound,
            Some(300),
            Some(Triplet {
                first_seen: now - 300,
                earliest_accept: now,
                last_seen: now,
                expires: now + expire,
                pass_count: 1,
            }),
        ),
        (
            "second pass: no delay, expiry refreshed, pass counted",
            Settings::default(),
            0,
            Some(triplet(now - 5000, now - 4000, now + 10, 1)),
            Verdict::Pass,
            Reason::TripletFound,
            None,
            Some(Triplet {
                first_seen: now - 5000,
                earliest_accept: now - 4000,
                last_seen: now,
                expires: now + expire,
                pass_count: 2,
            }),
        ),
        (
            "client AWL passes an unknown triplet and records it as passed",
            Settings::default(),
            5,
            None,
            Verdict::Pass,
            Reason::ClientAwl,
            None,
            Some(Triplet {
                first_seen: now,
                earliest_accept: now,
                last_seen: now,
                expires: now + expire,
                pass_count: 1,
            }),
        ),
        (
            "client AWL beats early retry",
            Settings::default(),
            7,
            Some(known),
            Verdict::Pass,
            Reason::ClientAwl,
            None,
            Some(Triplet {
                last_seen: now,
                expires: now + expire,
                pass_count: 1,
                ..known
            }),
        ),
        (
            "one pass short of AWL: greylisted",
            Settings::default(),
            4,
            None,
            Verdict::Defer,
            Reason::New,
            None,
            Some(Triplet {
                first_seen: now,
                earliest_accept: now + grey,
                last_seen: now,
                expires: now + expire,
                pass_count: 0,
            }),
        ),
        (
            "awl-count 0 turns AWL off",
            awl_off,
            1000,
            None,
            Verdict::Defer,
            Reason::New,
            None,
            Some(Triplet {
                first_seen: now,
                earliest_accept: now + grey,
                last_seen: now,
                expires: now + expire,
                pass_count: 0,
            }),
        ),
    ];
    for (name, settings, awl_passes, stored, verdict, reason, delay, write) in cases {
        let state = ClientState {
            awl_passes,
            triplet: stored,
        };
        let d = decide_by_triplet(&settings, &state, now);
        assert_eq!(
            (d.verdict, d.reason, d.delay, d.write),
            (verdict, reason, delay, write),
            "{name}"
        );
        assert_eq!(d.pattern, None, "{name}");
    }
}

#[test]
fn penalties_are_cumulative() {
    // DESIGN.md §4: "cumulative: aggressive retriers wait longer".
    let settings = Settings {
        penalty_enabled: true,
        ..Settings::default()
    };
    let mut stored = triplet(0, 300, 1_000_000, 0);
    for (attempt, now) in [10, 20, 30].into_iter().enumerate() {
        let d = decide_by_triplet(
            &settings,
            &ClientState {
                awl_passes: 0,
                triplet: Some(stored),
            },
            now,
        );
        assert_eq!(d.reason, Reason::EarlyRetry);
        stored = d.write.unwrap();
        assert_eq!(stored.earliest_accept, 300 + 120 * (attempt as i64 + 1));
    }
    // Not yet at 660, accepted at 660.
    let d = decide_by_triplet(
        &settings,
        &ClientState {
            awl_passes: 0,
            triplet: Some(stored),
        },
        659,
    );
    assert_eq!(d.verdict, Verdict::Defer);
    let d = decide_by_triplet(
        &settings,
        &ClientState {
            awl_passes: 0,
            triplet: Some(d.write.unwrap()),
        },
        900,
    );
    assert_eq!((d.verdict, d.delay), (Verdict::Pass, Some(900)));
}

#[test]
fn multi_recipient_rule() {
    // DESIGN.md §4: deferred if any recipient defers, rejected only if all reject, otherwise passed.
    use Verdict::{Defer, Pass, Reject};
    let cases: &[(&[Verdict], Verdict)] = &[
        (&[], Pass),
        (&[Pass], Pass),
        (&[Defer], Defer),
        (&[Reject], Reject),
        (&[Reject, Reject, Reject], Reject),
        (&[Reject, Pass], Pass),
        (&[Pass, Reject], Pass),
        (&[Pass, Defer], Defer),
        (&[Reject, Defer], Defer),
        (&[Reject, Pass, Defer], Defer),
    ];
    for (verdicts, expected) in cases {
        assert_eq!(combine(verdicts.iter().copied()), *expected, "{verdicts:?}");
    }
}

#[test]
fn triplet_keys_are_case_insensitive_and_networked() {
    // DESIGN.md §4: senders and recipients lower-cased; client key = /24 or /64, mapped IPv6 as IPv4.
    let settings = Settings::default();
    assert_eq!(
        triplet_sender("Alice@Sender.EXAMPLE", false),
        "alice@sender.example"
    );
    assert_eq!(triplet_sender("", true), "");
    assert_eq!(
        triplet_sender("list+bounce-77@x.example", true),
        "list@x.example"
    );
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(
        client_network(ip("198.51.100.7"), &settings),
        "198.51.100.0/24"
    );
    assert_eq!(
        client_network(ip("::ffff:198.51.100.7"), &settings),
        "198.51.100.0/24"
    );
    assert_eq!(
        client_network(ip("2001:db8:1:2:3::4"), &settings),
        "2001:db8:1:2::/64"
    );
    let exact = Settings {
        ipv4_prefix: 32,
        ..Settings::default()
    };
    assert_eq!(
        client_network(ip("198.51.100.7"), &exact),
        "198.51.100.7/32"
    );
}
