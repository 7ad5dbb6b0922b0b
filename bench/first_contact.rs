//! First-contact figures (issue 17): each client of `bench/first_contact_population.tsv` sends
//! its FIRST message to a server that has never seen it — a fresh database, so no triplet and no
//! auto-whitelist — once with `greylist-clients all` and once with `suspicious`, both with the
//! DNSWL and DNSBL zones the population's answers belong to. Every attempt goes through the
//! engine's DNS-aware decision with the population as the resolver; a deferred message is
//! retried on the client's schedule. Outcomes are weighted by each client's share of first
//! contacts in its category.

use std::net::IpAddr;

use grey_listing::config::{GreylistClients, ListKind, Settings};
use grey_listing::decision::{Verdict, embeds_address};
use grey_listing::dns::DnsFacts;
use grey_listing::engine::{Component, Message, check_message_dns};
use grey_listing::store::{SqliteStore, Store};

use crate::population::{self, Client, DNSBL_ZONE, DNSWL_ZONE, PopulationDns};
use crate::{START, minutes};

const MODES: [(GreylistClients, &str); 2] = [
    (GreylistClients::All, "all"),
    (GreylistClients::Suspicious, "suspicious"),
];

/// What became of one client's first message.
struct Fate {
    /// Seconds from the first attempt to the passing one; `None`: never delivered.
    delay: Option<i64>,
    /// The reason the decision gave on the first attempt.
    first_reason: String,
}

/// Stores the mode and the zone lists the way `grey_listing -u` would.
fn configure(store: &mut dyn Store, mode: GreylistClients) {
    let settings = Settings {
        greylist_clients: mode,
        ..Settings::default()
    };
    store
        .write(&mut |tx| {
            tx.set_settings(&settings)?;
            tx.add_pattern(ListKind::DnswlZones, "", DNSWL_ZONE)?;
            tx.add_pattern(ListKind::DnsblZones, "", DNSBL_ZONE)
        })
        .unwrap();
    // Read back: figures for a mode the store did not keep would be figures for `all`.
    let mut stored = None;
    store
        .read(&mut |tx| {
            stored = Some((
                tx.settings()?.greylist_clients,
                tx.list(ListKind::DnswlZones, "")?,
                tx.list(ListKind::DnsblZones, "")?,
            ));
            Ok(())
        })
        .unwrap();
    assert_eq!(
        stored,
        Some((
            mode,
            vec![DNSWL_ZONE.to_string()],
            vec![DNSBL_ZONE.to_string()]
        ))
    );
}

/// One attempt through the engine: the verdict and the first recipient's reason.
fn decide(
    store: &mut dyn Store,
    message: &Message,
    now: i64,
    dns: &PopulationDns<'_>,
) -> (Verdict, String) {
    let (outcome, _asked) = check_message_dns(store, Component::Filter, message, now, dns).unwrap();
    let reason =
        outcome
            .recipients
            .first()
            .map_or_else(String::new, |r| match &r.decision.pattern {
                // The pattern or zone that decided; `|` escaped for the Markdown table.
                Some(pattern) => format!("{} `{}`", r.decision.reason, pattern.replace('|', "\\|")),
                None => r.decision.reason.to_string(),
            });
    (outcome.verdict, reason)
}

fn first_contact(client: &Client, mode: GreylistClients, dns: &PopulationDns<'_>) -> Fate {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("first.db")).unwrap();
    configure(&mut store, mode);
    let mut first_reason = String::new();
    for (attempt, offset) in client.retry.attempts().into_iter().enumerate() {
        let (ip, name) = client.origin(attempt);
        // The filter's view: the name the receiving qmail wrote into its Received: header,
        // which nobody has forward-confirmed yet.
        let message = Message {
            client_ip: Some(IpAddr::V4(ip)),
            client_name_unconfirmed: name.is_some(),
            client_name: name,
            sender: "first-contact@sender.example".to_string(),
            recipients: vec!["user@local.example".to_string()],
            authenticated: false,
            dns: DnsFacts::default(),
            dns_asked: None,
        };
        let (verdict, reason) = decide(&mut store, &message, START + offset, dns);
        if attempt == 0 {
            first_reason = reason;
        }
        match verdict {
            Verdict::Pass => {
                return Fate {
                    delay: Some(offset),
                    first_reason,
                };
            }
            Verdict::Reject => break,
            Verdict::Defer => {}
        }
    }
    Fate {
        delay: None,
        first_reason,
    }
}

/// Nearest-rank weighted percentile of delays (`None` = never delivered, ranked last).
fn weighted_percentile(fates: &[(&Client, &Fate)], p: u64) -> Option<Option<i64>> {
    let mut delays: Vec<(Option<i64>, u64)> = fates
        .iter()
        .map(|(client, fate)| (fate.delay, client.share))
        .collect();
    delays.sort_by_key(|(delay, _)| delay.unwrap_or(i64::MAX));
    let total: u64 = delays.iter().map(|(_, w)| w).sum();
    let rank = (p * total).div_ceil(100).max(1);
    let mut seen = 0;
    delays.into_iter().find_map(|(delay, weight)| {
        seen += weight;
        (seen >= rank).then_some(delay)
    })
}

fn delay_text(delay: Option<Option<i64>>) -> String {
    match delay {
        None => "-".to_string(),
        Some(None) => "never".to_string(),
        Some(Some(seconds)) => minutes(Some(seconds)),
    }
}

/// Share (per cent) of the weight of `fates` for which `pick` holds.
fn share(fates: &[(&Client, &Fate)], pick: impl Fn(&Fate) -> bool) -> f64 {
    let total: u64 = fates.iter().map(|(c, _)| c.share).sum();
    let picked: u64 = fates
        .iter()
        .filter(|(_, f)| pick(f))
        .map(|(c, _)| c.share)
        .sum();
    100.0 * picked as f64 / total.max(1) as f64
}

/// Runs both modes over the population and prints the three Markdown tables.
pub(crate) fn print_tables() {
    let clients = population::load().unwrap_or_else(|why| panic!("{why}"));
    // The file says which names embed their address; the decision's own rule must agree, or
    // the population does not model what its rows claim.
    for client in &clients {
        if let Some(name) = &client.name {
            let embeds = embeds_address(name, IpAddr::V4(client.ip));
            assert_eq!(
                embeds, client.embeds,
                "population: {name} ({}) embeds: the file says {}, the decision {embeds}",
                client.ip, client.embeds
            );
        }
    }
    let dns = PopulationDns::new(&clients);
    let mut runs = Vec::new();
    for (mode, name) in MODES {
        let started = std::time::Instant::now();
        dns.questions.set(0);
        let fates: Vec<Fate> = clients
            .iter()
            .map(|client| first_contact(client, mode, &dns))
            .collect();
        eprintln!(
            "first contact, {name}: {} clients, {} DNS questions in {:.1} s",
            clients.len(),
            dns.questions.get(),
            started.elapsed().as_secs_f64()
        );
        runs.push((name, fates));
    }
    println!(
        "| greylist-clients | legitimate first contacts delivered at once | median delay (min) | p95 delay (min) | legitimate never delivered | bot first contacts blocked |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, fates) in &runs {
        let (legit, bots) = split(&clients, fates);
        println!(
            "| {name} | {:.1} % | {} | {} | {:.1} % | {:.1} % |",
            share(&legit, |f| f.delay == Some(0)),
            delay_text(weighted_percentile(&legit, 50)),
            delay_text(weighted_percentile(&legit, 95)),
            share(&legit, |f| f.delay.is_none()),
            share(&bots, |f| f.delay.is_none()),
        );
    }
    println!();
    print_kinds(&clients, &runs);
    println!();
    print_clients(&clients, &runs);
}

type Weighted<'a> = Vec<(&'a Client, &'a Fate)>;

fn split<'a>(clients: &'a [Client], fates: &'a [Fate]) -> (Weighted<'a>, Weighted<'a>) {
    clients.iter().zip(fates).partition(|(c, _)| c.legitimate)
}

fn print_kinds(clients: &[Client], runs: &[(&str, Vec<Fate>)]) {
    println!(
        "| greylist-clients | category | kind | share of the category | delivered at once | median delay (min) | p95 delay (min) | never delivered |"
    );
    println!("|---|---|---|---:|---:|---:|---:|---:|");
    for (name, fates) in runs {
        let mut kinds: Vec<(bool, &str)> = Vec::new();
        for c in clients {
            if !kinds.contains(&(c.legitimate, c.kind.as_str())) {
                kinds.push((c.legitimate, &c.kind));
            }
        }
        for (legitimate, kind) in kinds {
            let group: Weighted<'_> = clients
                .iter()
                .zip(fates)
                .filter(|(c, _)| c.legitimate == legitimate && c.kind == kind)
                .collect();
            let weight: u64 = group.iter().map(|(c, _)| c.share).sum();
            let category: u64 = clients
                .iter()
                .filter(|c| c.legitimate == legitimate)
                .map(|c| c.share)
                .sum();
            println!(
                "| {name} | {} | {kind} | {:.1} % | {:.1} % | {} | {} | {:.1} % |",
                if legitimate { "legitimate" } else { "bot" },
                100.0 * weight as f64 / category.max(1) as f64,
                share(&group, |f| f.delay == Some(0)),
                delay_text(weighted_percentile(&group, 50)),
                delay_text(weighted_percentile(&group, 95)),
                share(&group, |f| f.delay.is_none()),
            );
        }
    }
}

fn print_clients(clients: &[Client], runs: &[(&str, Vec<Fate>)]) {
    let modes: Vec<&str> = runs.iter().map(|(name, _)| *name).collect();
    print!("| client | kind | name (address) | share |");
    for mode in &modes {
        print!(" first decision, {mode} | delay (min), {mode} |");
    }
    println!();
    println!("|---|---|---|---:|{}", "---|---:|".repeat(modes.len()));
    for (index, client) in clients.iter().enumerate() {
        print!(
            "| {} | {} | `{}` ({}) | {} ‰ |",
            client.label,
            client.kind,
            client.name.as_deref().unwrap_or("no PTR"),
            client.ip,
            client.share
        );
        for (_, fates) in runs {
            let fate = &fates[index];
            print!(
                " {} | {} |",
                fate.first_reason,
                fate.delay.map_or("never".to_string(), |d| minutes(Some(d)))
            );
        }
        println!();
    }
}
