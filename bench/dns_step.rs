//! What the DNS step costs a filter run in `all` mode with no zones, in process (no process
//! start, so the difference is not lost in the noise of spawning): three flows, interleaved, each
//! on its own SQLite database, a new triplet per message:
//! - one write transaction (`engine::check_message_for`, the flow before the DNS step);
//! - a read transaction that plans the DNS questions, then that write transaction (the first
//!   DNS flow; the planning cache here also reads the configuration stamp);
//! - `engine::check_message_dns` as the filter calls it now.
//!
//! Run: `cargo bench --locked --bench dns_step [-- MESSAGES]`.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use grey_listing::dns::{DnsFacts, DnsSource, Question};
use grey_listing::engine::{self, Component, ConfigCache, Message};
use grey_listing::store::{SqliteStore, Store};

/// Every question is a failure here: with no zones nothing may be asked.
struct NoDns;

impl DnsSource for NoDns {
    fn ask(&self, _question: &Question<'_>) -> DnsFacts {
        panic!("DNS asked with no zones configured")
    }
}

fn message(i: usize) -> Message {
    Message {
        client_ip: Some(format!("198.51.100.{}", i % 250).parse().unwrap()),
        client_name: Some("mail.sender.example.com".to_string()),
        sender: format!("sender{i}@sender.example.com"),
        recipients: vec!["john@local.example".to_string()],
        ..Message::default()
    }
}

fn summary(name: &str, mut times: Vec<Duration>) -> f64 {
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let median = us(times[times.len() / 2]);
    let p95 = us(times[times.len() * 95 / 100]);
    println!("{name:<52} median {median:8.1} µs   p95 {p95:8.1} µs");
    median
}

fn main() {
    let messages: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::TempDir::new().unwrap();
    let mut stores: Vec<SqliteStore> = (0..3)
        .map(|i| SqliteStore::open(&dir.path().join(format!("{i}.db"))).unwrap())
        .collect();
    let mut times: Vec<Vec<Duration>> = (0..3).map(|_| Vec::with_capacity(messages)).collect();
    let now = 1_800_000_000;
    for i in 0..messages {
        let m = message(i);
        // A different order every message, so no flow always runs first.
        let order = [
            [0, 1, 2],
            [1, 2, 0],
            [2, 0, 1],
            [2, 1, 0],
            [1, 0, 2],
            [0, 2, 1],
        ][i % 6];
        for flow in order {
            let store = &mut stores[flow];
            let started = Instant::now();
            let outcome = match flow {
                0 => engine::check_message_for(store, Component::Filter, &m, now).unwrap(),
                1 => {
                    let mut plan = None;
                    store
                        .read(&mut |tx| {
                            plan = engine::plan_dns(tx, &mut ConfigCache::new(), &m)?;
                            Ok(())
                        })
                        .unwrap();
                    assert!(plan.is_none());
                    engine::check_message_for(store, Component::Filter, &m, now).unwrap()
                }
                _ => {
                    engine::check_message_dns(store, Component::Filter, &m, now, &NoDns)
                        .unwrap()
                        .0
                }
            };
            times[flow].push(started.elapsed());
            assert_eq!(outcome.verdict, grey_listing::decision::Verdict::Defer);
        }
    }
    println!("{messages} new-triplet messages per flow, interleaved, `all` mode, no zones");
    let [a, b, c]: [Vec<Duration>; 3] = times.try_into().unwrap();
    let one = summary("one write transaction (before the DNS step)", a);
    let two = summary("read transaction to plan + write transaction", b);
    let now_ = summary("check_message_dns (plan inside the write transaction)", c);
    println!(
        "read transaction + plan: {:+.1} µs; check_message_dns vs one transaction: {:+.1} µs",
        two - one,
        now_ - one
    );
}
