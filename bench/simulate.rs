//! Deliverability simulation (issue 6): drives `engine::check_message` with virtual time on a
//! temporary SQLite database, with senders modelled on published MTA retry schedules, providers
//! that rotate across several addresses and /24s, and spam bots. Compares Plesk-exact settings
//! (32/128, no grouping, no AWL, no sender normalisation) with grey_listing's defaults.
//!
//! Then the first-contact figures of `first_contact` (issue 17): each client of a fixed
//! population's first message, with `greylist-clients all` and `suspicious`.
//!
//! Run: `cargo bench --bench simulate` (or `cargo test --bench simulate` for a debug build).
//! Output is Markdown tables for docs/BENCHMARKS.md. Deterministic: a fixed-seed generator.

#![allow(clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr};

use grey_listing::config::Settings;
use grey_listing::decision::Verdict;
use grey_listing::engine::{Message, check_message};
use grey_listing::store::{SqliteStore, Store};

mod common;
mod first_contact;
mod population;
mod retry;

use common::Rng;
use retry::Schedule;

/// Simulated period: one week, starting 2026-11-23 00:00 UTC.
const START: i64 = 1_795_392_000;
const PERIOD: i64 = 7 * 86_400;
const RECIPIENTS: u64 = 40;
/// Local parts of people's sender addresses (no digits: digit runs are folded by sender
/// normalisation, which is meant for VERP tags, not for telling people apart).
const NAMES: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yvonne",
];

/// Where a sender's attempts come from.
#[derive(Clone)]
enum Origin {
    /// One server with a verified host name.
    Server { ip: Ipv4Addr, host: &'static str },
    /// A provider's pool: `subnets` /24s of `per_subnet` addresses, each attempt from a random
    /// one; host names from `name(ip)` (verified, under one registrable domain).
    Pool {
        base: [u8; 2],
        subnets: u8,
        per_subnet: u8,
        name: fn(Ipv4Addr) -> String,
    },
    /// A bot on a residential line: a random address, PTR embedding it, or none.
    Residential { named: bool },
}

struct Sender {
    label: &'static str,
    legitimate: bool,
    schedule: Schedule,
    origin: Origin,
    messages: u64,
    /// Sender addresses: `{n}` is replaced by a per-message number (VERP/bounce tracking),
    /// `{name}` by one of `senders` people, `{s}` by a number below `senders`.
    sender: &'static str,
    senders: u64,
}

fn senders() -> Vec<Sender> {
    vec![
        Sender {
            label: "Postfix server",
            legitimate: true,
            schedule: Schedule::Postfix,
            origin: Origin::Server {
                ip: Ipv4Addr::new(192, 0, 2, 25),
                host: "mail.example-postfix.org",
            },
            messages: 300,
            sender: "{name}@example-postfix.org",
            senders: 10,
        },
        Sender {
            label: "Exim server",
            legitimate: true,
            schedule: Schedule::Exim,
            origin: Origin::Server {
                ip: Ipv4Addr::new(192, 0, 2, 80),
                host: "mx.example-exim.net",
            },
            messages: 300,
            sender: "{name}@example-exim.net",
            senders: 10,
        },
        Sender {
            label: "Exchange on-premises",
            legitimate: true,
            schedule: Schedule::Exchange,
            origin: Origin::Server {
                ip: Ipv4Addr::new(198, 18, 4, 10),
                host: "smtp.corp-exchange.example",
            },
            messages: 300,
            sender: "{name}@corp-exchange.example",
            senders: 10,
        },
        Sender {
            label: "qmail server",
            legitimate: true,
            schedule: Schedule::Qmail,
            origin: Origin::Server {
                ip: Ipv4Addr::new(198, 18, 9, 3),
                host: "mail.qmail-host.example",
            },
            messages: 300,
            sender: "{name}@qmail-host.example",
            senders: 10,
        },
        Sender {
            label: "Microsoft 365 (6 /24s)",
            legitimate: true,
            schedule: Schedule::Exchange,
            origin: Origin::Pool {
                base: [40, 107],
                subnets: 6,
                per_subnet: 64,
                name: |ip| {
                    let o = ip.octets();
                    format!(
                        "mail-eur{:02}on{}{:03}.outbound.protection.outlook.com",
                        o[2] % 7,
                        o[2],
                        o[3] + 7
                    )
                },
            },
            messages: 500,
            sender: "{name}@tenant.example",
            senders: 20,
        },
        Sender {
            label: "Amazon SES-like (3 /24s)",
            legitimate: true,
            schedule: Schedule::Postfix,
            origin: Origin::Pool {
                base: [54, 240],
                subnets: 3,
                per_subnet: 32,
                name: |ip| {
                    let o = ip.octets();
                    format!("a{}-{}.smtp-out.amazonses.com", o[2], o[3])
                },
            },
            messages: 500,
            sender: "0102{n}-{n}@amazonses.com",
            senders: 1,
        },
        Sender {
            label: "Newsletter ESP, VERP (4 /24s)",
            legitimate: true,
            schedule: Schedule::Postfix,
            origin: Origin::Pool {
                base: [198, 2],
                subnets: 4,
                per_subnet: 16,
                name: |ip| {
                    format!(
                        "mail{}.suw{}.mcsv.example.net",
                        ip.octets()[3] % 16,
                        ip.octets()[2]
                    )
                },
            },
            messages: 500,
            sender: "bounce-mc.us5_{n}.{n}-list@mcsv.example.net",
            senders: 1,
        },
        Sender {
            label: "Bot, never retries",
            legitimate: false,
            schedule: Schedule::Never,
            origin: Origin::Residential { named: true },
            messages: 1_500,
            sender: "{n}@spam{s}.example",
            senders: 50,
        },
        Sender {
            label: "Bot, retries once (30 s-15 min)",
            legitimate: false,
            schedule: Schedule::Once(0),
            origin: Origin::Residential { named: false },
            messages: 1_500,
            sender: "{n}@spam{s}.example",
            senders: 50,
        },
    ]
}

struct Pending {
    sender: usize,
    first: i64,
    attempts: Vec<i64>,
    next: usize,
    ip: Ipv4Addr,
    host: Option<String>,
    from: String,
    to: String,
}

#[derive(Default, Clone)]
struct Tally {
    sent: u64,
    delivered: u64,
    rejected: u64,
    delays: Vec<i64>,
    /// Most deferred attempts at or after first attempt + grey interval, over all messages.
    worst_extra_retries: u64,
}

fn pick_origin(origin: &Origin, rng: &mut Rng) -> (Ipv4Addr, Option<String>) {
    match origin {
        Origin::Server { ip, host } => (*ip, Some(host.to_string())),
        Origin::Pool {
            base,
            subnets,
            per_subnet,
            name,
        } => {
            let ip = Ipv4Addr::new(
                base[0],
                base[1],
                rng.below(u64::from(*subnets)) as u8 * 3 + 4,
                rng.below(u64::from(*per_subnet)) as u8 + 10,
            );
            (ip, Some(name(ip)))
        }
        Origin::Residential { named } => {
            let ip = Ipv4Addr::new(
                100 + rng.below(100) as u8,
                rng.below(256) as u8,
                rng.below(256) as u8,
                1 + rng.below(254) as u8,
            );
            let o = ip.octets();
            let host =
                named.then(|| format!("c-{}-{}-{}-{}.res.isp.example", o[0], o[1], o[2], o[3]));
            (ip, host)
        }
    }
}

fn run(settings: &Settings, label: &str) -> Vec<(&'static str, bool, Tally)> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("sim.db")).unwrap();
    let wanted = settings.clone();
    store.write(&mut |tx| tx.set_settings(&wanted)).unwrap();
    let grey = i64::from(settings.grey_interval) * 60;
    let senders = senders();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut queue: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
    let mut pending: Vec<Pending> = Vec::new();
    for (index, sender) in senders.iter().enumerate() {
        for _ in 0..sender.messages {
            let first = START + rng.below(PERIOD as u64) as i64;
            let (ip, host) = pick_origin(&sender.origin, &mut rng);
            let attempts = match sender.schedule {
                Schedule::Once(_) => Schedule::Once(30 + rng.below(870) as i64).attempts(),
                other => other.attempts(),
            };
            let from = sender
                .sender
                .replace("{n}", &rng.below(1_000_000).to_string())
                .replace(
                    "{name}",
                    NAMES[rng.below(sender.senders) as usize % NAMES.len()],
                )
                .replace("{s}", &rng.below(sender.senders).to_string());
            let to = format!("user{}@local.example", rng.below(RECIPIENTS));
            queue.push(Reverse((first, pending.len())));
            pending.push(Pending {
                sender: index,
                first,
                attempts,
                next: 0,
                ip,
                host,
                from,
                to,
            });
        }
    }
    let mut tallies = vec![Tally::default(); senders.len()];
    for (tally, sender) in tallies.iter_mut().zip(&senders) {
        tally.sent = sender.messages;
    }
    let mut extra = vec![0u64; pending.len()];
    let mut checks = 0u64;
    let started = std::time::Instant::now();
    while let Some(Reverse((now, id))) = queue.pop() {
        let p = &mut pending[id];
        let sender = &senders[p.sender];
        if p.next > 0 && matches!(sender.origin, Origin::Pool { .. }) {
            // Providers retry from whichever outbound server picks the message up.
            let (ip, host) = pick_origin(&sender.origin, &mut rng);
            p.ip = ip;
            p.host = host;
        }
        let message = Message {
            client_ip: Some(IpAddr::V4(p.ip)),
            client_name: p.host.clone(),
            sender: p.from.clone(),
            recipients: vec![p.to.clone()],
            authenticated: false,
            ..Message::default()
        };
        let outcome = check_message(&mut store, &message, now).unwrap();
        checks += 1;
        let tally = &mut tallies[p.sender];
        match outcome.verdict {
            Verdict::Pass => {
                tally.delivered += 1;
                tally.delays.push(now - p.first);
                tally.worst_extra_retries = tally.worst_extra_retries.max(extra[id]);
            }
            Verdict::Reject => tally.rejected += 1,
            Verdict::Defer => {
                if now - p.first >= grey {
                    extra[id] += 1;
                }
                p.next += 1;
                if let Some(offset) = p.attempts.get(p.next) {
                    queue.push(Reverse((p.first + offset, id)));
                } else {
                    tally.worst_extra_retries = tally.worst_extra_retries.max(extra[id]);
                }
            }
        }
    }
    eprintln!(
        "{label}: {checks} check_message calls in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    senders
        .iter()
        .zip(tallies)
        .map(|(s, t)| (s.label, s.legitimate, t))
        .collect()
}

fn percentile(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted.get(rank).copied()
}

fn minutes(seconds: Option<i64>) -> String {
    seconds.map_or("-".to_string(), |s| format!("{:.1}", s as f64 / 60.0))
}

fn main() {
    // `cargo test` passes harness flags such as `--bench`; nothing to parse.
    let plesk = Settings {
        ipv4_prefix: 32,
        ipv6_prefix: 128,
        group_by_host_domain: false,
        awl_count: 0,
        sender_normalize: false,
        ..Settings::default()
    };
    let ours = Settings::default();
    // Isolates what host-domain grouping, /24 networks and sender normalisation do alone.
    let ours_without_awl = Settings {
        awl_count: 0,
        ..Settings::default()
    };
    let configs = [
        ("Plesk-exact", plesk),
        ("grey_listing defaults, AWL off", ours_without_awl),
        ("grey_listing defaults", ours),
    ];
    let mut summary = Vec::new();
    println!(
        "| settings | sender | messages | delivered | delayed > 15 min | median delay (min) | p95 delay (min) | max delay (min) | max retries deferred after the grey interval | blocked |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, settings) in &configs {
        let results = run(settings, name);
        let (mut legit_delays, mut legit_sent, mut legit_late) = (Vec::new(), 0u64, 0u64);
        let (mut bot_sent, mut bot_blocked) = (0u64, 0u64);
        for (label, legitimate, mut tally) in results {
            tally.delays.sort_unstable();
            let late = tally.delays.iter().filter(|d| **d > 900).count() as u64
                + (tally.sent - tally.delivered - tally.rejected);
            let blocked = tally.sent - tally.delivered;
            if legitimate {
                legit_delays.extend(&tally.delays);
                legit_sent += tally.sent;
                legit_late += late;
            } else {
                bot_sent += tally.sent;
                bot_blocked += blocked;
            }
            let late_share = if legitimate {
                format!("{:.1} %", 100.0 * late as f64 / tally.sent as f64)
            } else {
                "-".to_string()
            };
            println!(
                "| {name} | {label} | {} | {} | {late_share} | {} | {} | {} | {} | {:.1} % |",
                tally.sent,
                tally.delivered,
                minutes(percentile(&tally.delays, 50.0)),
                minutes(percentile(&tally.delays, 95.0)),
                minutes(tally.delays.last().copied()),
                if legitimate {
                    tally.worst_extra_retries.to_string()
                } else {
                    "-".to_string()
                },
                100.0 * blocked as f64 / tally.sent as f64,
            );
        }
        legit_delays.sort_unstable();
        summary.push(format!(
            "| {name} | {:.1} % | {} | {} | {:.1} % |",
            100.0 * legit_late as f64 / legit_sent as f64,
            minutes(percentile(&legit_delays, 50.0)),
            minutes(percentile(&legit_delays, 95.0)),
            100.0 * bot_blocked as f64 / bot_sent as f64,
        ));
    }
    println!();
    println!(
        "| settings | legitimate mail delayed > 15 min | median delay (min) | p95 delay (min) | bot mail blocked |"
    );
    println!("|---|---:|---:|---:|---:|");
    for line in summary {
        println!("{line}");
    }
    println!();
    first_contact::print_tables();
}
