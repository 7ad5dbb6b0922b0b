//! `greylisting-milter` on a PostgreSQL server that fails, through the real binary over loopback:
//! a stopped server makes RCPT answer CONTINUE (the mail passes) with a log line saying why; a
//! hung one (SIGSTOP) is cut off by the timeout in the URL, so the RCPT reply comes long before
//! the MTA's own milter timeout, and other MTA connections are answered too; a milter started
//! while the server is down starts and passes mail. Once the server is back, the same milter
//! process greylists again, on its open connections and on new ones. The URL carries a password,
//! which must never appear in a log line.
//!
//! Each test with a server starts its OWN throwaway cluster (store/pg_faults.rs's [`Cluster`]),
//! so stopping it cannot disturb other tests; those are `#[ignore]`d in a plain `cargo test` and
//! run by tests/e2e/postgres.sh. The test of a server that is not there at all needs none.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::policyd::server::{Server, cli};
use crate::store::pg_binary_faults::Frozen;
use crate::store::pg_faults::{Cluster, PASSWORD};
use crate::support::milter::{ALL_FLAGS, DEFER, Milter, Mta, reply_text};

const CONTINUE: (u8, Vec<u8>) = (b'c', Vec::new());

/// Short connect and statement timeouts, so a fault is noticed quickly.
const QUERY: &str = "connect_timeout=1&timeout_ms=500";

/// The longest one store wait may take with [`QUERY`]: a new connection to a hung server is
/// given the connect timeout plus the statement timeout; a round trip on an open connection the
/// statement timeout plus one second.
const STORE_WAIT: Duration = Duration::from_millis(2500);

/// How long a reply may take while the server hangs: a wide multiple of [`STORE_WAIT`] (a reply
/// may wait out another connection's store wait before its own), and still below Postfix's
/// default `milter_command_timeout` (30 s), after which the MTA gives up on the milter.
const REPLY_BOUND: Duration = STORE_WAIT.saturating_mul(4);

/// A bound for a whole hung-server scenario: a real hang fails the test instead of blocking CI.
const HARD_TIMEOUT: Duration = Duration::from_secs(120);

/// The sender of triplet `n`: each triplet its own sender domain, so each is new (digits in the
/// local part would be folded into one triplet sender).
fn sender(n: u32) -> String {
    format!("<s@n{n}.origin.example>")
}

/// A new MTA connection with a message from triplet `n`'s sender open: negotiation, CONNECT,
/// HELO and MAIL, none of which is answered (every no-reply bit offered).
fn open_message(milter: &Milter, n: u32) -> Mta {
    let mut mta = milter.connect();
    Mta::start_message("[198.51.100.7]", b'4', "198.51.100.7", &sender(n), &mut mta);
    mta
}

/// A further message on an open connection: MAIL from triplet `n`'s sender, then one RCPT.
fn next_message(mta: &mut Mta, n: u32) -> (u8, Vec<u8>) {
    mta.send_str(b'M', &sender(n));
    mta.rcpt("<u@local.example>")
}

#[track_caller]
fn assert_deferred(reply: &(u8, Vec<u8>), what: &str) {
    assert_eq!(reply_text(reply), DEFER, "{what}");
}

/// Sends new triplets (numbered from `first`) on `mta` until the milter greylists again, and
/// asserts that it does: after a failed open the database is tried again only after a moment
/// (about a second), the recipients meanwhile pass. Bounded: 300 attempts 100 ms apart.
/// Returns the next unused triplet number; a failure shows `milter`'s log.
fn assert_greylists_again(mta: &mut Mta, first: u32, milter: &Milter) -> u32 {
    for n in first..first + 300 {
        let reply = next_message(mta, n);
        if reply == CONTINUE {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_deferred(&reply, &format!("triplet {n}"));
        return n + 1;
    }
    panic!(
        "the milter did not greylist again after the server came back: {}",
        milter.log_lines().join("\n")
    );
}

fn assert_no_password(milter: &Milter) {
    for line in milter.log_lines() {
        assert!(
            !line.contains(PASSWORD),
            "a log line shows the password: {line}"
        );
    }
}

/// The milter on the cluster, with no grey interval (a retry passes at once).
fn milter_on(cluster: &Cluster) -> Milter {
    let url = cluster.url(QUERY);
    let milter = Milter::start_on(&url, "127.0.0.1:0", &[]);
    cli(&url, &["-u", "-grey-interval", "0"]);
    milter
}

// PostgreSQL stopped while the milter runs: RCPT is answered CONTINUE on the open connection
// and on a new one, a log line says why (the location shown without its password). Started
// again: the same milter process defers a new triplet again, on the old connection and on a
// new one, and a triplet deferred before the outage passes on its retry.
#[test]
#[ignore = "needs PostgreSQL 15 binaries: run tests/e2e/postgres.sh"]
fn postgres_down_milter_passes_and_greylisting_resumes() {
    let cluster = Cluster::start_new();
    let milter = milter_on(&cluster);
    let mut mta = open_message(&milter, 1);
    assert_deferred(&mta.rcpt("<u@local.example>"), "before the outage");

    cluster.stop();
    assert_eq!(next_message(&mut mta, 2), CONTINUE);
    let mut other = open_message(&milter, 3);
    assert_eq!(other.rcpt("<u@local.example>"), CONTINUE);
    milter.wait_log("mail passes");
    milter.wait_log("action=pass, reason=error:");
    milter.wait_log("postgres:***@127.0.0.1");

    cluster.start();
    let next = assert_greylists_again(&mut mta, 4, &milter);
    let mut fresh = open_message(&milter, next);
    assert_deferred(&fresh.rcpt("<u@local.example>"), "a new connection");
    // The triplet deferred before the outage is still known: its retry passes.
    assert_eq!(next_message(&mut fresh, 1), CONTINUE);
    milter.wait_log("action=pass, reason=triplet found");
    assert_no_password(&milter);
}

/// A RCPT's reply (`None`: the connection closed or the read timed out) and how long it took.
type Timed = (Option<(u8, Vec<u8>)>, Duration);

/// What the MTA connections saw while the server was hung.
struct HungReplies {
    /// The RCPT on the connection whose message was open before the hang.
    first: Timed,
    /// A second connection's RCPT, sent while the first one waited on the store.
    queued: Timed,
    /// How long a third connection's negotiation reply took, asked meanwhile.
    negotiated: Duration,
    /// The third connection's RCPT.
    third: Timed,
}

/// Sends RCPT on `mta` and times the reply.
fn timed_rcpt(mta: &mut Mta) -> Timed {
    let started = Instant::now();
    mta.send_str(b'R', "<u@local.example>");
    let reply = mta.reply();
    (reply, started.elapsed())
}

/// RCPT on `mta` in a thread of its own; the thread hands back the reply and the connection.
fn rcpt_in_thread(mut mta: Mta) -> std::thread::JoinHandle<(Timed, Mta)> {
    std::thread::spawn(move || (timed_rcpt(&mut mta), mta))
}

/// While the server hangs: the RCPTs of `first` and, half a second later (the first one is
/// then waiting on the store, which takes at least 1.5 s), of `queued`; then a third connection
/// to `addr` negotiates and sends its own message. Gives back the replies and `first`.
fn while_hung(first: Mta, queued: Mta, addr: &str) -> (HungReplies, Option<Mta>) {
    let first = rcpt_in_thread(first);
    std::thread::sleep(Duration::from_millis(500));
    let queued = rcpt_in_thread(queued);
    let mut third = Milter::connect_to(addr).unwrap();
    let started = Instant::now();
    third.negotiate(ALL_FLAGS);
    let negotiated = started.elapsed();
    third.connect_client("[198.51.100.7]", b'4', "198.51.100.7");
    third.send_str(b'H', "client.example");
    third.send_str(b'M', &sender(4));
    let third = timed_rcpt(&mut third);
    let (first, mta) = first
        .join()
        .map_or(((None, Duration::ZERO), None), |(r, m)| (r, Some(m)));
    let queued = queued.join().map_or((None, Duration::ZERO), |(r, _)| r);
    let replies = HungReplies {
        first,
        queued,
        negotiated,
        third,
    };
    (replies, mta)
}

#[track_caller]
fn assert_passed_in_time(reply: &Timed, what: &str) {
    let (reply, took) = reply;
    assert_eq!(reply.as_ref(), Some(&CONTINUE), "{what}");
    assert!(*took < REPLY_BOUND, "{what} took {took:?}");
}

// PostgreSQL hung (postmaster and every backend SIGSTOPped: the kernel accepts TCP, nothing
// answers) with a short timeout in the URL: the RCPT reply (CONTINUE) comes within a wide
// multiple of the timeout, far from a hang. A second connection's RCPT that arrives while the
// first waits is answered once that wait is over, without waiting out the timeout once more
// (its log line says the database is not answering); a third connection that arrives meanwhile
// is negotiated and its RCPT answered too. Once the server runs again, the same milter process
// greylists again. Bounded by a hard timeout so a real hang fails the test.
#[test]
#[ignore = "needs PostgreSQL 15 binaries: run tests/e2e/postgres.sh"]
fn hung_postgres_does_not_hold_the_milters_replies() {
    let cluster = Cluster::start_new();
    let milter = milter_on(&cluster);
    let mut mta = open_message(&milter, 1);
    assert_deferred(&mta.rcpt("<u@local.example>"), "before the hang");
    mta.send_str(b'M', &sender(2));
    let queued = open_message(&milter, 3);

    let mut pids = cluster.grey_listing_backends();
    assert!(!pids.is_empty(), "the milter holds a connection");
    pids.push(cluster.postmaster_pid());
    let frozen = Frozen::freeze(pids);

    let (done_tx, done_rx) = mpsc::channel();
    let addr = milter.addr.clone();
    // The connections move to the worker, which may block on them.
    let worker = std::thread::spawn(move || {
        let (replies, mta) = while_hung(mta, queued, &addr);
        let _ = done_tx.send(replies);
        mta
    });
    let replies = done_rx.recv_timeout(HARD_TIMEOUT);
    // Continue the server before any assertion, so a failure leaves nothing frozen.
    drop(frozen);
    let replies = replies.expect("the milter's replies hung on a hung PostgreSQL server");
    let mut mta = worker.join().unwrap().expect("the first MTA connection");

    assert_passed_in_time(
        &replies.first,
        "RCPT on the connection open before the hang",
    );
    assert_passed_in_time(&replies.queued, "RCPT sent while another one waited");
    assert!(
        replies.negotiated < REPLY_BOUND,
        "the third connection's negotiation took {:?}",
        replies.negotiated
    );
    assert_passed_in_time(&replies.third, "RCPT on the third connection");
    milter.wait_log("mail passes");
    let line = milter.wait_log("sender=s@n3.origin.example");
    assert!(
        line.contains("action=pass, reason=error: database not answering"),
        "the queued recipient waited out the timeout once more: {line}"
    );

    // Running again: greylisting resumes in the same milter process.
    let next = assert_greylists_again(&mut mta, 5, &milter);
    let mut fresh = open_message(&milter, next);
    assert_deferred(&fresh.rcpt("<u@local.example>"), "a new connection");
    assert_no_password(&milter);
}

// The milter started while PostgreSQL is down (as the policy server, it starts: the store is
// opened lazily and tried again later): it logs why, answers RCPT with CONTINUE, and once the
// server is up it greylists, on the connection it already had and on a new one.
#[test]
#[ignore = "needs PostgreSQL 15 binaries: run tests/e2e/postgres.sh"]
fn milter_started_while_postgres_is_down_passes_then_greylists() {
    let cluster = Cluster::start_new();
    cluster.stop();
    let milter = Milter::start_on(&cluster.url(QUERY), "127.0.0.1:0", &[]);
    let mut mta = open_message(&milter, 1);
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    milter.wait_log("cannot open the database, mail passes");
    milter.wait_log("action=pass, reason=error:");

    cluster.start();
    let next = assert_greylists_again(&mut mta, 2, &milter);
    let mut fresh = open_message(&milter, next);
    assert_deferred(&fresh.rcpt("<u@local.example>"), "a new connection");
    assert_no_password(&milter);
}

// A daemon started while nothing answers at its PostgreSQL location says so at once, before any
// mail comes, with the location shown without its password: with one database connection and
// with a pool of them (the default for PostgreSQL, whose first connection is opened by a pool
// thread), for the milter and for the policy server alike.
#[test]
fn a_daemon_started_with_postgres_unreachable_says_so_before_any_mail() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres:{PASSWORD}@127.0.0.1:{port}/postgres?{QUERY}");
    for connections in ["1", "4"] {
        let args = ["--db-connections", connections];
        let milter = Milter::start_on(&url, "127.0.0.1:0", &args);
        let line = milter.wait_log("cannot open the database, mail passes");
        assert!(line.contains("postgres:***@127.0.0.1"), "{line}");
        assert_no_password(&milter);
        let policyd = Server::start_on(&url, "127.0.0.1:0", &args);
        let line = policyd.wait_log("cannot open the database, mail passes");
        assert!(line.contains("postgres:***@127.0.0.1"), "{line}");
        for line in policyd.log_lines() {
            assert!(
                !line.contains(PASSWORD),
                "a log line shows the password: {line}"
            );
        }
    }
}
