//! Load generator for `greylisting-milter`, driven by `bench/milter.sh`. Not a test:
//! `cargo bench --bench milter_load -- --addr HOST:PORT|unix:/path --sessions N --concurrency C`.
//!
//! Each of `--concurrency` threads runs SMTP sessions back to back, each session as Postfix's
//! smtpd runs one through `smtpd_milters`: a new connection, option negotiation (offering what
//! Postfix 3 offers: every protocol-6 step flag and action), CONNECT, HELO, MAIL FROM, one RCPT
//! TO (whose reply is awaited and timed), QUIT, close. Every session is a new triplet (random
//! client in 10.0.0.0/8, sender, recipient), so every decision defers and writes one triplet —
//! the same work as `policy_load --new-ratio 1`. The packets are written from the protocol's
//! wire format here, independently of the library's codec.
//!
//! Output: one `key=value` line (`decisions_per_s`, `p50_ms`, `p99_ms`, counts).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

mod common;

use common::{Rng, micros_since, milter_packet, percentile_ms};

struct Options {
    addr: String,
    sessions: usize,
    concurrency: usize,
    seed: u64,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:10024".to_string(),
        sessions: 50_000,
        concurrency: 50,
        seed: 1,
    };
    common::each_option(|arg, value| {
        match arg {
            "--addr" => o.addr = value,
            "--sessions" => o.sessions = common::number(arg, &value)?,
            "--concurrency" => o.concurrency = common::number(arg, &value)?,
            "--seed" => o.seed = common::number(arg, &value)?,
            _ => return Err(format!("unknown option {arg}")),
        }
        Ok(())
    })?;
    if o.concurrency == 0 {
        return Err("--concurrency must be positive".to_string());
    }
    Ok(o)
}

/// Read + Write for TCP and unix streams alike.
trait Duplex: Read + Write {}
impl<T: Read + Write> Duplex for T {}

/// Connects to `host:port` or `unix:/path`.
fn connect(addr: &str) -> std::io::Result<Box<dyn Duplex>> {
    Ok(match addr.strip_prefix("unix:") {
        Some(path) => Box::new(UnixStream::connect(path)?),
        None => {
            let tcp = TcpStream::connect(addr)?;
            tcp.set_nodelay(true)?;
            Box::new(tcp)
        }
    })
}

fn read_packet(stream: &mut dyn Duplex) -> std::io::Result<(u8, Vec<u8>)> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body)?;
    let code = *body.first().unwrap_or(&0);
    Ok((code, body.get(1..).unwrap_or_default().to_vec()))
}

#[derive(Default)]
struct Stats {
    latencies_us: Vec<u32>,
    deferred: usize,
    continued: usize,
    errors: usize,
}

/// One SMTP session's milter conversation; returns the RCPT reply code.
fn session(addr: &str, rng: &mut Rng) -> std::io::Result<u8> {
    let mut stream = connect(addr)?;
    let stream = stream.as_mut();
    let mut out = Vec::with_capacity(512);
    let mut offer = 6u32.to_be_bytes().to_vec();
    offer.extend(0x1ffu32.to_be_bytes());
    offer.extend(0x1f_ffffu32.to_be_bytes());
    milter_packet(&mut out, b'O', &offer);
    stream.write_all(&out)?;
    let (code, reply) = read_packet(stream)?;
    if code != b'O' || reply.len() < 12 {
        return Err(std::io::Error::other("bad negotiation reply"));
    }
    let flags = u32::from_be_bytes([reply[8], reply[9], reply[10], reply[11]]);
    let n = rng.next();
    let ip = format!(
        "10.{}.{}.{}",
        n & 0xff,
        (n >> 8) & 0xff,
        1 + (n >> 16) % 254
    );
    let mut connect = format!("[{ip}]\0").into_bytes();
    connect.push(b'4');
    connect.extend(25u16.to_be_bytes());
    connect.extend(format!("{ip}\0").as_bytes());
    let sender = format!(
        "<sender{}@domain{}.example>\0",
        rng.next() % 1_000_000,
        rng.next() % 5000
    );
    // As Postfix does: a step the milter did not mark no-reply (SMFIP_NR_CONN, _HELO, _MAIL) is
    // written on its own and its answer read before the next; the no-reply steps go out together
    // with the next write.
    out.clear();
    for (code, data, no_reply) in [
        (b'C', connect.as_slice(), 0x1000u32),
        (b'H', b"mx.example\0".as_slice(), 0x2000),
        (b'M', sender.as_bytes(), 0x4000),
    ] {
        milter_packet(&mut out, code, data);
        if flags & no_reply == 0 {
            stream.write_all(&out)?;
            out.clear();
            read_packet(stream)?;
        }
    }
    if !out.is_empty() {
        stream.write_all(&out)?;
    }
    out.clear();
    let rcpt = format!("<user{}@local.example>\0", rng.next() % 1000);
    milter_packet(&mut out, b'R', rcpt.as_bytes());
    stream.write_all(&out)?;
    let (code, _) = read_packet(stream)?;
    out.clear();
    milter_packet(&mut out, b'Q', b"");
    stream.write_all(&out)?;
    Ok(code)
}

fn drive(addr: &str, left: &AtomicUsize, mut rng: Rng) -> Stats {
    let mut stats = Stats::default();
    while left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        let started = Instant::now();
        match session(addr, &mut rng) {
            Ok(code) => {
                stats.latencies_us.push(micros_since(started));
                if code == b'y' {
                    stats.deferred += 1;
                } else {
                    stats.continued += 1;
                }
            }
            Err(_) => stats.errors += 1,
        }
    }
    stats
}

fn main() {
    let options = match parse_options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("milter_load: {e}");
            std::process::exit(2);
        }
    };
    let left = Arc::new(AtomicUsize::new(options.sessions));
    let started = Instant::now();
    let threads: Vec<_> = (0..options.concurrency)
        .map(|i| {
            let addr = options.addr.clone();
            let left = Arc::clone(&left);
            let rng = Rng::for_stream(options.seed, i as u64);
            std::thread::spawn(move || drive(&addr, &left, rng))
        })
        .collect();
    let mut total = Stats::default();
    for thread in threads {
        if let Ok(stats) = thread.join() {
            total.latencies_us.extend(stats.latencies_us);
            total.deferred += stats.deferred;
            total.continued += stats.continued;
            total.errors += stats.errors;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let done = total.latencies_us.len();
    println!(
        "decisions_per_s={:.0} p50_ms={:.3} p99_ms={:.3} requests={done} deferred={} continued={} errors={} seconds={elapsed:.2}",
        done as f64 / elapsed,
        percentile_ms(&total.latencies_us, 0.50),
        percentile_ms(&total.latencies_us, 0.99),
        total.deferred,
        total.continued,
        total.errors,
    );
}
