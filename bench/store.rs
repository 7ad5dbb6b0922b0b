//! Store benchmark (issue 7): SQLite and PostgreSQL in the same run.
//!
//! Per backend: opening the store (what a one-process-per-message filter pays each time), the
//! latency of `engine::check_message` for a new triplet and for a retry that passes, and the
//! throughput of N threads, each with its own store, checking distinct messages. For
//! PostgreSQL also one bare round trip (`SELECT 1`) and an empty write transaction, to say
//! where the time goes. Needs `GREY_LISTING_BENCH_PG` (an admin URL; bench/store.sh starts a
//! throwaway cluster and sets it). Run: `bash bench/store.sh`.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use grey_listing::engine::{self, Message};
use grey_listing::store::{self, DbLocation, Store};

#[path = "../tests/support/pg_client.rs"]
mod pg_client;

use pg_client::{pg_admin, with_pg};

const LATENCY_MESSAGES: usize = 2_000;
const THREAD_COUNTS: [usize; 4] = [1, 2, 8, 32];
const MESSAGES_PER_THREAD: usize = 400;

fn message(i: usize, thread: usize) -> Message {
    Message {
        client_ip: Some(
            format!("198.51.{}.{}", thread % 250, i % 250)
                .parse()
                .unwrap(),
        ),
        client_name: None,
        sender: format!("sender{i}@t{thread}.example"),
        recipients: vec![format!("user{}@local.example", i % 50)],
        authenticated: false,
        ..Message::default()
    }
}

fn median_and_p99(mut times: Vec<Duration>) -> (f64, f64) {
    times.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    (
        us(times[times.len() / 2]),
        us(times[times.len() * 99 / 100]),
    )
}

/// Median time of one `SELECT 1` round trip on one connection.
fn pg_round_trip(url: &str) -> f64 {
    with_pg(url, async |client| {
        let statement = client.prepare("SELECT 1").await.unwrap();
        let mut times = Vec::new();
        for _ in 0..LATENCY_MESSAGES {
            let started = Instant::now();
            client.query_one(&statement, &[]).await.unwrap();
            times.push(started.elapsed());
        }
        median_and_p99(times).0
    })
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, ""), |(b, q)| (b, q));
    let scheme_end = base.find("://").unwrap() + 3;
    let authority_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{name}{query}", &base[..authority_end])
}

fn bench(name: &str, location: &DbLocation) {
    println!("== {name}");
    // Open: connection (PostgreSQL) or file (SQLite), schema check.
    let mut opens = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let store = store::open(location).unwrap();
        opens.push(started.elapsed());
        drop(store);
    }
    let (open_median, _) = median_and_p99(opens);
    println!("open store:                     median {open_median:9.1} µs");

    let mut store = store::open(location).unwrap();
    store
        .write(&mut |tx| {
            let mut settings = tx.settings()?;
            settings.awl_count = 0;
            tx.set_settings(&settings)
        })
        .unwrap();
    let mut empty = Vec::new();
    for _ in 0..LATENCY_MESSAGES {
        let started = Instant::now();
        store.write(&mut |_| Ok(())).unwrap();
        empty.push(started.elapsed());
    }
    let (empty_median, _) = median_and_p99(empty);
    println!("empty write transaction:        median {empty_median:9.1} µs");

    let now = 1_900_000_000;
    for (label, at) in [("new triplet (defer)", now), ("retry (pass)", now + 600)] {
        let mut times = Vec::new();
        for i in 0..LATENCY_MESSAGES {
            let started = Instant::now();
            engine::check_message(store.as_mut(), &message(i, 0), at).unwrap();
            times.push(started.elapsed());
        }
        let (median, p99) = median_and_p99(times);
        println!("check_message, {label:<20} median {median:9.1} µs  p99 {p99:9.1} µs");
    }

    for threads in THREAD_COUNTS {
        let barrier = Arc::new(Barrier::new(threads + 1));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let location = location.clone();
                let barrier = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut store: Box<dyn Store> = store::open(&location).unwrap();
                    barrier.wait();
                    for i in 0..MESSAGES_PER_THREAD {
                        engine::check_message(store.as_mut(), &message(i, 1_000 + t), now).unwrap();
                    }
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        for handle in handles {
            handle.join().unwrap();
        }
        let elapsed = started.elapsed().as_secs_f64();
        let total = threads * MESSAGES_PER_THREAD;
        println!(
            "throughput, {threads:2} threads:          {:9.0} messages/s ({total} messages in {elapsed:.2} s)",
            total as f64 / elapsed
        );
        // Fresh triplets for the next round.
        store
            .write(&mut |tx| tx.purge_expired(i64::MAX).map(|_| ()))
            .unwrap();
    }
}

fn main() {
    // `cargo bench` passes --bench; nothing else is accepted.
    let Some(admin) = std::env::var("GREY_LISTING_BENCH_PG")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        eprintln!("GREY_LISTING_BENCH_PG is not set: run bash bench/store.sh");
        std::process::exit(2);
    };
    let dir = tempfile::tempdir().unwrap();
    bench(
        "SQLite (WAL, synchronous=NORMAL)",
        &DbLocation::Sqlite(dir.path().join("bench.db")),
    );
    let name = format!("gl_bench_{}", std::process::id());
    pg_admin(&admin, &format!("DROP DATABASE IF EXISTS {name}"));
    pg_admin(&admin, &format!("CREATE DATABASE {name}"));
    let url = with_database(&admin, &name);
    println!("== PostgreSQL round trip");
    println!(
        "SELECT 1 (prepared):            median {:9.1} µs",
        pg_round_trip(&url)
    );
    bench(
        "PostgreSQL (loopback TCP)",
        &DbLocation::Postgres(url.clone()),
    );
    // Peer run: the same without waiting for the commit's WAL flush, to show its share.
    bench(
        "PostgreSQL (loopback TCP, synchronous_commit=off)",
        &DbLocation::Postgres(format!("{url}?options=-c%20synchronous_commit%3Doff")),
    );
    pg_admin(
        &admin,
        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
    );
}
