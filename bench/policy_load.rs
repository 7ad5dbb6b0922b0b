//! Load generator for Postfix policy servers (greylisting-policyd and postgrey), driven by
//! `bench/policyd.sh`. Not a test: `cargo bench --bench policy_load -- <options>`.
//!
//! Every connection sends its share of requests back to back, one at a time as a Postfix smtpd
//! process does, and times each one. By default one thread drives all connections through epoll
//! (`--driver events`), so the generator needs a few microseconds of CPU per request and leaves
//! the two cores to the server under test; `--driver threads` runs one blocking thread per
//! connection instead (the driver of the runs before 2026-11-23 14:00 UTC). A request is a
//! new triplet with probability `--new-ratio` (decided at `T`), otherwise a repeat of one of the
//! connection's earlier triplets decided at `T + 600 s` (past a 5-minute delay, so it passes), via
//! postgrey's `policy_test_time` attribute (start ours with `--allow-test-time`).
//!
//! `--prefill-sqlite PATH --prefill-count N` instead inserts N passed triplets into an existing
//! grey_listing database (key space disjoint from the load's) and exits.
//!
//! `--slow-clients N` first opens N more connections that each send the start of a request and
//! then trickle one more byte a second (slow or hostile local clients holding connection slots;
//! `bench/policyd_slow.sh`); the load then runs beside them. The output adds how many of them the
//! server closed meanwhile (`slow_closed`).
//!
//! Output: one `key=value` line (`decisions_per_s`, `p50_ms`, `p99_ms`, counts).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;

use common::{Rng, micros_since, percentile_ms};

const T: i64 = 1_800_000_000;

struct Options {
    addr: String,
    requests: usize,
    connections: usize,
    new_ratio: f64,
    seed: u64,
    driver: Driver,
    prefill_sqlite: Option<String>,
    prefill_count: usize,
    slow_clients: usize,
}

#[derive(Clone, Copy)]
enum Driver {
    Events,
    Threads,
}

fn parse_options() -> Result<Options, String> {
    let mut o = Options {
        addr: "127.0.0.1:10023".to_string(),
        requests: 200_000,
        connections: 50,
        new_ratio: 0.3,
        seed: 1,
        driver: Driver::Events,
        prefill_sqlite: None,
        prefill_count: 1_000_000,
        slow_clients: 0,
    };
    common::each_option(|arg, value| {
        match arg {
            "--addr" => o.addr = value,
            "--requests" => o.requests = common::number(arg, &value)?,
            "--connections" => o.connections = common::number(arg, &value)?,
            "--new-ratio" => o.new_ratio = value.parse().map_err(|_| format!("bad {arg}"))?,
            "--seed" => o.seed = common::number(arg, &value)?,
            "--driver" => {
                o.driver = match value.as_str() {
                    "events" => Driver::Events,
                    "threads" => Driver::Threads,
                    _ => return Err(format!("--driver is events or threads, not {value}")),
                }
            }
            "--prefill-sqlite" => o.prefill_sqlite = Some(value),
            "--prefill-count" => o.prefill_count = common::number(arg, &value)?,
            "--slow-clients" => o.slow_clients = common::number(arg, &value)?,
            _ => return Err(format!("unknown option {arg}")),
        }
        Ok(())
    })?;
    if o.connections == 0 {
        return Err("--connections must be positive".to_string());
    }
    Ok(o)
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

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.latencies_us.extend(other.latencies_us);
        self.defer += other.defer;
        self.pass += other.pass;
        self.other += other.other;
        self.errors += other.errors;
    }
}

/// One connection's request sequence: the same for both drivers and every server, given its seed.
struct Session {
    rng: Rng,
    new_ratio: f64,
    left: usize,
    history: Vec<Triplet>,
    stats: Stats,
}

impl Session {
    fn new(count: usize, new_ratio: f64, rng: Rng) -> Session {
        Session {
            rng,
            new_ratio,
            left: count,
            history: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// The next request to send, or `None` when the connection's share is done.
    fn next_request(&mut self) -> Option<String> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (triplet, time) = if self.history.is_empty() || self.rng.unit() < self.new_ratio {
            let t = new_triplet(&mut self.rng);
            self.history.push(t.clone());
            (t, T)
        } else {
            let index = self.rng.below(self.history.len() as u64) as usize;
            (self.history[index].clone(), T + 600)
        };
        Some(request(&triplet, time))
    }

    fn record(&mut self, reply: &[u8], started: Instant) {
        self.stats.latencies_us.push(micros_since(started));
        if reply.starts_with(b"action=DEFER") || reply.starts_with(b"action=4") {
            self.stats.defer += 1;
        } else if reply.starts_with(b"action=DUNNO") || reply.starts_with(b"action=PREPEND") {
            self.stats.pass += 1;
        } else {
            self.stats.other += 1;
        }
    }
}

/// `--driver threads`: one blocking thread per connection (the driver of the first runs).
fn drive_thread(addr: &str, mut session: Session) -> Stats {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        session.stats.errors += 1;
        return session.stats;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut buf = Vec::with_capacity(512);
    while let Some(request) = session.next_request() {
        let started = Instant::now();
        if stream.write_all(request.as_bytes()).is_err() {
            session.stats.errors += 1;
            break;
        }
        buf.clear();
        let mut chunk = [0u8; 1024];
        while !buf.ends_with(b"\n\n") {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => {
                    session.stats.errors += 1;
                    return session.stats;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        session.record(&buf, started);
    }
    session.stats
}

/// `--driver events` (default): one thread drives every connection through epoll, so the load
/// generator spends a few microseconds per request instead of two thread wake-ups, and leaves
/// the cores to the server under test. Each connection still has exactly one request in flight,
/// as a Postfix smtpd process does.
fn drive_events(addr: &str, sessions: Vec<Session>) -> Stats {
    struct Client {
        stream: mio::net::TcpStream,
        session: Session,
        reply: Vec<u8>,
        started: Instant,
        done: bool,
    }
    let mut total = Stats::default();
    let Ok(addr) = addr.parse::<std::net::SocketAddr>() else {
        total.errors += sessions.len() as u64;
        return total;
    };
    let Ok(mut poll) = mio::Poll::new() else {
        total.errors += sessions.len() as u64;
        return total;
    };
    let mut clients = Vec::with_capacity(sessions.len());
    for mut session in sessions {
        // Blocking connect, then non-blocking; a refused connection counts as an error.
        let Ok(stream) = TcpStream::connect(addr) else {
            session.stats.errors += 1;
            total.merge(session.stats);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let _ = stream.set_nonblocking(true);
        let mut stream = mio::net::TcpStream::from_std(stream);
        if poll
            .registry()
            .register(
                &mut stream,
                mio::Token(clients.len()),
                mio::Interest::READABLE,
            )
            .is_err()
        {
            session.stats.errors += 1;
            total.merge(session.stats);
            continue;
        }
        clients.push(Client {
            stream,
            session,
            reply: Vec::with_capacity(512),
            started: Instant::now(),
            done: false,
        });
    }
    let mut active = 0;
    let send = |client: &mut Client| -> bool {
        let Some(request) = client.session.next_request() else {
            client.done = true;
            return false;
        };
        client.reply.clear();
        client.started = Instant::now();
        // A request is a few hundred bytes: the socket buffer takes it whole.
        match client.stream.write(request.as_bytes()) {
            Ok(n) if n == request.len() => true,
            _ => {
                client.session.stats.errors += 1;
                client.done = true;
                false
            }
        }
    };
    for client in clients.iter_mut() {
        if send(client) {
            active += 1;
        }
    }
    let mut events = mio::Events::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    while active > 0 {
        if poll
            .poll(&mut events, Some(Duration::from_secs(60)))
            .is_err()
        {
            break;
        }
        if events.is_empty() {
            // Nothing for a minute: count what is still waiting as errors.
            break;
        }
        for event in events.iter() {
            let Some(client) = clients.get_mut(event.token().0) else {
                continue;
            };
            if client.done {
                continue;
            }
            loop {
                match client.stream.read(&mut chunk) {
                    Ok(n) if n > 0 => client.reply.extend_from_slice(&chunk[..n]),
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                    // Closed or broken before the whole reply came.
                    _ => {
                        client.session.stats.errors += 1;
                        client.done = true;
                        active -= 1;
                        break;
                    }
                }
            }
            if !client.done && client.reply.ends_with(b"\n\n") {
                client.session.record(&client.reply, client.started);
                if !send(client) {
                    active -= 1;
                }
            }
        }
    }
    for client in clients {
        let mut stats = client.session.stats;
        if !client.done {
            stats.errors += 1;
        }
        total.merge(stats);
    }
    total
}

/// Slow clients: connections that started a request and add one byte a second, until the
/// server closes them or `stop` is set. Returns the thread; it yields how many were closed.
fn start_slow_clients(
    addr: &str,
    count: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Result<std::thread::JoinHandle<usize>, String> {
    let mut streams = Vec::with_capacity(count);
    for i in 0..count {
        let mut stream =
            TcpStream::connect(addr).map_err(|e| format!("slow client {i}: connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        stream
            .write_all(b"request=smtpd_access_policy\nsender=")
            .map_err(|e| format!("slow client {i}: {e}"))?;
        streams.push(Some(stream));
    }
    Ok(std::thread::spawn(move || {
        let mut closed = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let round = Instant::now();
            for slot in streams.iter_mut() {
                if let Some(stream) = slot
                    && stream.write_all(b"a").is_err()
                {
                    *slot = None;
                    closed += 1;
                }
            }
            if let Some(rest) = Duration::from_secs(1).checked_sub(round.elapsed()) {
                std::thread::sleep(rest);
            }
        }
        // A write may still succeed on a socket the server already closed: count those too.
        for stream in streams.iter_mut().flatten() {
            let _ = stream.set_nonblocking(true);
            let mut byte = [0u8; 1];
            match stream.read(&mut byte) {
                Ok(0) => closed += 1,
                Err(e) if e.kind() != std::io::ErrorKind::WouldBlock => closed += 1,
                _ => {}
            }
        }
        closed
    }))
}

fn prefill(path: &str, count: usize) -> Result<(), String> {
    let mut conn = rusqlite::Connection::open(path).map_err(|e| e.to_string())?;
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    {
        let mut insert = tx
            .prepare(
                "INSERT OR REPLACE INTO triplets (client, sender, recipient, network, first_seen, \
                 earliest_accept, last_seen, expires, pass_count, passed) VALUES (?1, ?2, ?3, ?1, \
                 ?4, ?5, ?6, ?7, 1, 1)",
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
    let sessions: Vec<Session> = (0..options.connections)
        .map(|c| {
            let count = per_connection + usize::from(c < extra);
            let rng = Rng::for_stream(options.seed, c as u64);
            Session::new(count, options.new_ratio, rng)
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow = if options.slow_clients > 0 {
        match start_slow_clients(&options.addr, options.slow_clients, stop.clone()) {
            Ok(thread) => Some(thread),
            Err(e) => {
                eprintln!("policy_load: {e}");
                std::process::exit(1);
            }
        }
    } else {
        None
    };
    let started = Instant::now();
    let mut total = Stats::default();
    match options.driver {
        Driver::Events => total.merge(drive_events(&options.addr, sessions)),
        Driver::Threads => {
            let threads: Vec<_> = sessions
                .into_iter()
                .map(|session| {
                    let addr = options.addr.clone();
                    std::thread::spawn(move || drive_thread(&addr, session))
                })
                .collect();
            for thread in threads {
                match thread.join() {
                    Ok(stats) => total.merge(stats),
                    Err(_) => total.errors += 1,
                }
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let slow_closed = slow.map(|thread| thread.join().unwrap_or(0));
    total.latencies_us.sort_unstable();
    let done = total.latencies_us.len();
    let slow = slow_closed.map_or_else(String::new, |closed| {
        format!(
            " slow_clients={} slow_closed={closed}",
            options.slow_clients
        )
    });
    println!(
        "requests={done} connections={} wall_s={wall:.2} decisions_per_s={:.0} p50_ms={:.3} \
         p99_ms={:.3} defer={} pass={} other={} errors={}{slow}",
        options.connections,
        done as f64 / wall,
        percentile_ms(&total.latencies_us, 0.50),
        percentile_ms(&total.latencies_us, 0.99),
        total.defer,
        total.pass,
        total.other,
        total.errors
    );
}
