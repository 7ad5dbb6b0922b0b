//! Load generator for Postfix policy servers (greylisting-policyd and postgrey), driven by
//! `bench/policyd.sh`. Not a test: `cargo bench --bench policy_load -- <options>`.
//!
//! Every connection sends its share of requests back to back and times each one. A request is a
//! new triplet with probability `--new-ratio` (decided at `T`), otherwise a repeat of one of the
//! connection's earlier triplets decided at `T + 600 s` (past a 5-minute delay, so it passes), via
//! postgrey's `policy_test_time` attribute (start ours with `--allow-test-time`).
//!
//! `--prefill-sqlite PATH --prefill-count N` instead inserts N passed triplets into an existing
//! grey_listing database (key space disjoint from the load's) and exits.
//!
//! Output: one `key=value` line (`decisions_per_s`, `p50_ms`, `p99_ms`, counts).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const T: i64 = 1_800_000_000;

struct Options {
    addr: String,
    requests: usize,
    connections: usize,
    new_ratio: f64,
    seed: u64,
    prefill_sqlite: Option<String>,
    prefill_count: usize,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:10023".to_string(),
        requests: 200_000,
        connections: 50,
        new_ratio: 0.3,
        seed: 1,
        prefill_sqlite: None,
        prefill_count: 1_000_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // cargo bench passes --bench to harness-less targets.
        if arg == "--bench" {
            continue;
        }
        let value = args.next().ok_or(format!("{arg} needs a value"))?;
        let bad = |_| format!("bad value for {arg}: {value}");
        match arg.as_str() {
            "--addr" => o.addr = value,
            "--requests" => o.requests = value.parse().map_err(bad)?,
            "--connections" => o.connections = value.parse().map_err(bad)?,
            "--new-ratio" => o.new_ratio = value.parse().map_err(|_| format!("bad {arg}"))?,
            "--seed" => o.seed = value.parse().map_err(bad)?,
            "--prefill-sqlite" => o.prefill_sqlite = Some(value),
            "--prefill-count" => o.prefill_count = value.parse().map_err(bad)?,
            _ => return Err(format!("unknown option {arg}")),
        }
    }
    if o.connections == 0 {
        return Err("--connections must be positive".to_string());
    }
    Ok(o)
}

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone)]
struct Triplet {
    ip: String,
    sender: String,
    recipient: String,
}

fn new_triplet(rng: &mut Rng) -> Triplet {
    let n = rng.next();
    Triplet {
        ip: format!(
            "10.{}.{}.{}",
            n & 0xff,
            (n >> 8) & 0xff,
            1 + (n >> 16) % 254
        ),
        sender: format!(
            "sender{}@domain{}.example",
            rng.below(1_000_000),
            rng.below(5000)
        ),
        recipient: format!("user{}@local.example", rng.below(1000)),
    }
}

fn request(t: &Triplet, time: i64) -> String {
    format!(
        "request=smtpd_access_policy\nprotocol_state=RCPT\nprotocol_name=ESMTP\n\
         client_address={ip}\nclient_name=unknown\nreverse_client_name=unknown\n\
         helo_name=mx.example\nsender={s}\nrecipient={r}\nsasl_username=\n\
         policy_test_time={time}\n\n",
        ip = t.ip,
        s = t.sender,
        r = t.recipient
    )
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u32>,
    defer: u64,
    pass: u64,
    other: u64,
    errors: u64,
}

fn drive(addr: &str, count: usize, new_ratio: f64, seed: u64) -> Stats {
    let mut stats = Stats::default();
    let mut rng = Rng(seed | 1);
    let Ok(mut stream) = TcpStream::connect(addr) else {
        stats.errors += 1;
        return stats;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut history: Vec<Triplet> = Vec::new();
    let mut buf = Vec::with_capacity(512);
    for _ in 0..count {
        let (triplet, time) = if history.is_empty() || rng.unit() < new_ratio {
            let t = new_triplet(&mut rng);
            history.push(t.clone());
            (t, T)
        } else {
            let index = rng.below(history.len() as u64) as usize;
            (history[index].clone(), T + 600)
        };
        let started = Instant::now();
        if stream
            .write_all(request(&triplet, time).as_bytes())
            .is_err()
        {
            stats.errors += 1;
            return stats;
        }
        buf.clear();
        let mut chunk = [0u8; 1024];
        while !buf.ends_with(b"\n\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    stats.errors += 1;
                    return stats;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        stats
            .latencies_us
            .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if buf.starts_with(b"action=DEFER") || buf.starts_with(b"action=4") {
            stats.defer += 1;
        } else if buf.starts_with(b"action=DUNNO") || buf.starts_with(b"action=PREPEND") {
            stats.pass += 1;
        } else {
            stats.other += 1;
        }
    }
    stats
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

fn prefill(path: &str, count: usize) -> Result<(), String> {
    let mut conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    {
        let mut insert = tx
            .prepare(
                "INSERT OR REPLACE INTO triplets (client, sender, recipient, network, first_seen, \
                 earliest_accept, last_seen, expires, pass_count) VALUES (?1, ?2, ?3, ?1, ?4, ?5, \
                 ?6, ?7, 1)",
            )
            .map_err(|e| e.to_string())?;
        let mut rng = Rng(0x5eed);
        for i in 0..count {
            let network = format!("172.{}.{}.0/24", 16 + (i >> 16) % 16, (i >> 8) & 0xff);
            let sender = format!("prefill{}@pdomain{}.example", i, rng.below(5000));
            let recipient = format!("user{}@local.example", rng.below(1000));
            let first = T - 86_400;
            insert
                .execute(rusqlite::params![
                    network,
                    sender,
                    recipient,
                    first,
                    first + 300,
                    first + 600,
                    T + 30 * 86_400
                ])
                .map_err(|e| e.to_string())?;
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

fn main() {
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("policy_load: {e}");
            std::process::exit(2);
        }
    };
    if let Some(path) = &options.prefill_sqlite {
        if let Err(e) = prefill(path, options.prefill_count) {
            eprintln!("policy_load: prefill {path}: {e}");
            std::process::exit(1);
        }
        println!("prefilled={} path={path}", options.prefill_count);
        return;
    }
    let per_connection = options.requests / options.connections;
    let extra = options.requests % options.connections;
    let started = Instant::now();
    let threads: Vec<_> = (0..options.connections)
        .map(|c| {
            let addr = options.addr.clone();
            let count = per_connection + usize::from(c < extra);
            let seed = options
                .seed
                .wrapping_mul(1_000_003)
                .wrapping_add(c as u64 + 1);
            let ratio = options.new_ratio;
            std::thread::spawn(move || drive(&addr, count, ratio, seed))
        })
        .collect();
    let mut total = Stats::default();
    for thread in threads {
        let Ok(stats) = thread.join() else {
            total.errors += 1;
            continue;
        };
        total.latencies_us.extend(stats.latencies_us);
        total.defer += stats.defer;
        total.pass += stats.pass;
        total.other += stats.other;
        total.errors += stats.errors;
    }
    let wall = started.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let done = total.latencies_us.len();
    println!(
        "requests={done} connections={} wall_s={wall:.2} decisions_per_s={:.0} p50_ms={:.3} \
         p99_ms={:.3} defer={} pass={} other={} errors={}",
        options.connections,
        done as f64 / wall,
        percentile(&total.latencies_us, 0.50),
        percentile(&total.latencies_us, 0.99),
        total.defer,
        total.pass,
        total.other,
        total.errors
    );
}
