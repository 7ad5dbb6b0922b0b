//! 64 filter processes at once on one database (DESIGN.md §1: up to 64 concurrent writers never see
//! "database is locked"; DESIGN.md §4: triplet lookup and update are atomic). Virtual time, no sleeps.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::Backend;
use crate::support::filter::{HandlerRun, Sandbox, T0, handler_output};

const PROCESSES: usize = 64;
const MESSAGES: usize = 2_000;
const TRIPLETS: usize = 500;

/// Triplet `t` comes from its own /24 (so the auto-whitelist never kicks in and every message
/// goes through the triplet rule) and goes to its own recipient.
fn triplet_of(message: usize) -> (String, String) {
    let t = message % TRIPLETS;
    (
        format!("10.{}.{}.9", t / 250, t % 250),
        format!("user{t}@local.example"),
    )
}

/// Runs all messages at virtual time `now`, at most 64 processes at a time; returns
/// (message index, run) pairs.
fn round(sb: &Sandbox, now: i64) -> Vec<(usize, HandlerRun)> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(MESSAGES));
    std::thread::scope(|scope| {
        for _ in 0..PROCESSES {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= MESSAGES {
                        break;
                    }
                    let (ip, recipient) = triplet_of(i);
                    let mut cmd = sb.filter(now);
                    // Default purge odds: concurrent purges must not disturb anything either.
                    cmd.env_remove("GREY_LISTING_PURGE_ONE_IN")
                        .env("TCPREMOTEIP", &ip)
                        .args(["ctx", "alice@sender.example", &recipient]);
                    let run = handler_output(cmd, b"Subject: load\n\nbody\n");
                    results.lock().unwrap().push((i, run));
                }
            });
        }
    });
    results.into_inner().unwrap()
}

fn sixty_four_concurrent_filters(backend: Backend) {
    let sb = Sandbox::on(backend);
    // Create the database once so the rounds measure steady-state writes (concurrent first opens
    // are covered by the store's own migration lock).
    sb.cli(&["-u", "-grey-interval", "5"]);

    // Round 1: every message defers (new or early retry), with no errors.
    let first = round(&sb, T0);
    assert_eq!(first.len(), MESSAGES);
    for (i, run) in &first {
        run.assert_verdict("DEFER");
        assert!(!run.logged("error"), "message {i}: {run:#?}");
    }
    let news = first.iter().filter(|(_, r)| r.logged("reason=new")).count();
    assert_eq!(news, TRIPLETS, "exactly one message per triplet creates it");

    // Exactly the 500 triplets, none lost, none duplicated.
    let rows = sb.triplets();
    let expected: BTreeSet<(String, String)> = (0..TRIPLETS)
        .map(|t| {
            let (ip, rcpt) = triplet_of(t);
            (format!("{}.0/24", ip.rsplit_once('.').unwrap().0), rcpt)
        })
        .collect();
    let got: BTreeSet<(String, String)> = rows.iter().map(|r| (r.0.clone(), r.2.clone())).collect();
    assert_eq!(rows.len(), TRIPLETS);
    assert_eq!(got, expected);
    assert!(
        rows.iter()
            .all(|r| r.3 == T0 && r.4 == T0 + 300 && r.7 == 0)
    );

    // Round 2, past the interval: every message passes, each triplet passes four times.
    let second = round(&sb, T0 + 301);
    assert_eq!(second.len(), MESSAGES);
    for (i, run) in &second {
        run.assert_verdict("SKIP");
        assert!(run.logged("reason=triplet found"), "message {i}: {run:#?}");
        assert!(!run.logged("error"), "message {i}: {run:#?}");
    }
    let rows = sb.triplets();
    assert_eq!(rows.len(), TRIPLETS);
    assert!(
        rows.iter().all(|r| r.7 == 4),
        "every triplet passed exactly 4 times"
    );
    let first_passes = second.iter().filter(|(_, r)| r.logged("delay=301")).count();
    assert_eq!(
        first_passes, TRIPLETS,
        "the delay is logged on each triplet's first pass only"
    );
}

fn concurrent_first_runs_create_the_database_once(backend: Backend) {
    // DESIGN.md §1: concurrent first opens do not race (schema created under BEGIN IMMEDIATE); every
    // message is decided, none fails open.
    let sb = Sandbox::on(backend);
    let runs: Vec<HandlerRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..32)
            .map(|t| {
                let sb = &sb;
                scope.spawn(move || {
                    let mut cmd = sb.filter(T0);
                    cmd.env("TCPREMOTEIP", format!("10.1.{t}.9")).args([
                        "ctx",
                        "alice@sender.example",
                        &format!("user{t}@local.example"),
                    ]);
                    handler_output(cmd, b"Subject: first\n\nbody\n")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for run in &runs {
        run.assert_verdict("DEFER");
        assert!(run.logged("reason=new"), "{run:#?}");
        assert!(!run.logged("error"), "{run:#?}");
    }
    assert_eq!(sb.triplets().len(), 32);
}

on_both_stores!(
    sixty_four_concurrent_filters,
    concurrent_first_runs_create_the_database_once,
);
