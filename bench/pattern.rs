//! Pattern matcher micro-benchmark (DESIGN.md §3, issue 3): a 200-character `*a` pattern against a
//! 250-character host name that almost matches — the worst case for a backtracking matcher —
//! next to a typical list pattern on a typical host name, in the same run.
//!
//! Run with `cargo bench --locked --bench pattern` (or `bash bench/cli.sh`). Prints figures only;
//! nothing here asserts a time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use grey_listing::pattern::Pattern;

/// Median time of one `is_match`, over `rounds` rounds of `per_round` calls each.
fn median_per_match(pattern: &Pattern, text: &str, rounds: usize, per_round: u32) -> Duration {
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..per_round {
                black_box(black_box(pattern).is_match(black_box(text)));
            }
            start.elapsed() / per_round
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn main() {
    let worst = Pattern::host(&"*a".repeat(100));
    let worst_text = "a".repeat(99) + &"b".repeat(151);
    assert_eq!(worst.as_str().len(), 200);
    assert_eq!(worst_text.len(), 250);
    let typical = Pattern::host("*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*");
    let typical_text = "mta-70-12-15.sparkpostmail.com";
    let defaults: Vec<Pattern> = ["dsl|broadband|hsd", "dynamic|ppp|dyn-ip|dial-up"]
        .iter()
        .map(|p| Pattern::host(p))
        .collect();
    let host = "db3outboundpool.messaging.microsoft.com";

    let worst_time = median_per_match(&worst, &worst_text, 101, 200);
    let typical_time = median_per_match(&typical, typical_text, 101, 20_000);
    let mut samples: Vec<Duration> = (0..101)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..20_000u32 {
                black_box(grey_listing::pattern::first_match(
                    black_box(&defaults),
                    black_box(host),
                ));
            }
            start.elapsed() / 20_000
        })
        .collect();
    samples.sort();
    let defaults_time = samples[samples.len() / 2];

    println!("pattern matcher, median time per match (101 rounds):");
    println!(
        "  200-char '*a' pattern vs 250-char host (no match): {:>10.3} µs",
        worst_time.as_secs_f64() * 1e6
    );
    println!(
        "  '*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' vs {typical_text}: {:>10.3} µs",
        typical_time.as_secs_f64() * 1e6
    );
    println!(
        "  both default black patterns vs {host}: {:>10.3} µs",
        defaults_time.as_secs_f64() * 1e6
    );
    println!(
        "  worst case / typical pattern: {:.1}x",
        worst_time.as_secs_f64() / typical_time.as_secs_f64()
    );
}
