//! The policy server's DNS worker against the stub server over loopback.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};

use super::*;
use crate::dns::Forward;
use crate::dns::dns_stub::{DnsStub, Reply, addresses};

const WAKE: Token = Token(7);

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn worker(stub: &DnsStub, limit: usize) -> (DnsWorker, Poll) {
    let poll = Poll::new().expect("poll");
    let waker = Arc::new(mio::Waker::new(poll.registry(), WAKE).expect("waker"));
    let lookups = Lookups::new(stub.addr()).expect("lookups");
    let worker = DnsWorker::start_bounded(lookups, waker, limit).expect("worker");
    (worker, poll)
}

/// Waits (bounded) for the waker and collects what finished; each wake-up must bring results.
fn wait_for(worker: &DnsWorker, poll: &mut Poll, count: usize) -> Vec<(u64, DnsFacts)> {
    let mut events = Events::with_capacity(4);
    let mut finished = Vec::new();
    let give_up = Instant::now() + Duration::from_secs(10);
    while finished.len() < count && Instant::now() < give_up {
        poll.poll(&mut events, Some(Duration::from_millis(500)))
            .expect("poll");
        if events.iter().any(|event| event.token() == WAKE) {
            finished.extend(worker.take_finished());
        }
    }
    finished
}

fn listed(text: &str) -> ZoneResult {
    ZoneResult::Listed(text.parse::<Ipv4Addr>().expect("test address"))
}

#[test]
fn a_hanging_job_does_not_hold_back_a_quick_one() {
    let stub = DnsStub::start();
    stub.set("1.2.0.192.hang.example", Reply::Hang);
    stub.set(
        "2.2.0.192.quick.example",
        Reply::Addresses(addresses(&["127.0.0.2"])),
    );
    stub.set(
        "mx.quick.example",
        Reply::Addresses(addresses(&["192.0.2.2"])),
    );
    let (worker, mut poll) = worker(&stub, MAX_OUTSTANDING);
    worker.submit(1, ip("192.0.2.1"), vec!["hang.example".into()], None);
    worker.submit(
        2,
        ip("192.0.2.2"),
        vec!["quick.example".into()],
        Some("mx.quick.example".into()),
    );
    let finished = wait_for(&worker, &mut poll, 2);
    let ids: Vec<u64> = finished.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, [2, 1]);
    assert_eq!(
        finished[0].1.zone("quick.example"),
        Some(listed("127.0.0.2"))
    );
    assert_eq!(finished[0].1.forward, Some(Forward::Confirmed));
    assert_eq!(
        finished[1].1.zone("hang.example"),
        Some(ZoneResult::NoAnswer)
    );
    assert_eq!(worker.outstanding(), 0);
}

#[test]
fn a_zone_without_answer_is_not_asked_again_for_that_address() {
    let stub = DnsStub::start();
    stub.set("1.2.0.192.hang.example", Reply::Hang);
    stub.set("1.2.0.192.quick.example", Reply::NxDomain);
    let (worker, mut poll) = worker(&stub, MAX_OUTSTANDING);
    let zones = vec!["hang.example".to_string(), "quick.example".to_string()];
    worker.submit(1, ip("192.0.2.1"), zones.clone(), None);
    assert_eq!(wait_for(&worker, &mut poll, 1).len(), 1);
    let asked = stub.queries("1.2.0.192.hang.example");
    assert!(asked >= 1);
    worker.submit(2, ip("::ffff:192.0.2.1"), zones, None);
    let finished = wait_for(&worker, &mut poll, 1);
    assert_eq!(finished.len(), 1);
    let facts = &finished[0].1;
    assert_eq!(facts.zone("hang.example"), Some(ZoneResult::NoAnswer));
    assert_eq!(facts.zone("quick.example"), Some(ZoneResult::NotListed));
    assert_eq!(facts.zones[0].zone, "hang.example");
    assert_eq!(stub.queries("1.2.0.192.hang.example"), asked);
    assert_eq!(stub.queries("1.2.0.192.quick.example"), 2);
}

#[test]
fn beyond_the_bound_a_job_finishes_at_once_unanswered() {
    let stub = DnsStub::start();
    stub.set("1.2.0.192.hang.example", Reply::Hang);
    let (worker, mut poll) = worker(&stub, 1);
    worker.submit(1, ip("192.0.2.1"), vec!["hang.example".into()], None);
    worker.submit(
        2,
        ip("192.0.2.5"),
        vec!["hang.example".into(), "HANG.example".into()],
        Some("mx.example".into()),
    );
    // Job 2 was finished inside `submit`, before any lookup.
    let finished = worker.take_finished();
    assert_eq!(finished.len(), 1);
    assert_eq!(finished[0].0, 2);
    assert_eq!(
        finished[0].1,
        DnsFacts {
            zones: vec![ZoneAnswer {
                zone: "hang.example".into(),
                result: ZoneResult::NoAnswer
            }],
            forward: Some(Forward::NoAnswer),
        }
    );
    assert_eq!(stub.queries("5.2.0.192.hang.example"), 0);
    let rest = wait_for(&worker, &mut poll, 1);
    assert_eq!(rest.iter().map(|(id, _)| *id).collect::<Vec<_>>(), [1]);
    assert_eq!(worker.outstanding(), 0);
}

#[test]
fn dropping_the_worker_stops_its_thread_with_jobs_pending() {
    let stub = DnsStub::start();
    stub.set("1.2.0.192.hang.example", Reply::Hang);
    let (worker, _poll) = worker(&stub, MAX_OUTSTANDING);
    worker.submit(1, ip("192.0.2.1"), vec!["hang.example".into()], None);
    let started = Instant::now();
    drop(worker);
    assert!(started.elapsed() < Duration::from_secs(5));
}
