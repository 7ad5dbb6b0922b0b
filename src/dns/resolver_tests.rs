//! The DNS client against the stub server over loopback.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use super::*;
use crate::dns::dns_stub::{DnsStub, Reply, addresses};

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

fn zones(list: &[&str]) -> Vec<String> {
    list.iter().map(|zone| zone.to_string()).collect()
}

fn ask(resolver: &Resolver, client: &str, zones: &[String], confirm: Option<&str>) -> DnsFacts {
    resolver.ask(&Question {
        ip: ip(client),
        zones,
        confirm,
    })
}

fn listed(text: &str) -> ZoneResult {
    ZoneResult::Listed(text.parse::<Ipv4Addr>().expect("test address"))
}

#[test]
fn every_kind_of_answer_is_classified() {
    let stub = DnsStub::start();
    let cases = [
        (
            "listed.example",
            Reply::Addresses(addresses(&["127.0.0.2"])),
            listed("127.0.0.2"),
        ),
        (
            "several.example",
            Reply::Addresses(addresses(&["10.0.0.1", "127.0.0.3", "127.0.0.2"])),
            listed("127.0.0.3"),
        ),
        (
            "trust-none.example",
            Reply::Addresses(addresses(&["127.0.1.0"])),
            ZoneResult::NotListed,
        ),
        (
            "refused-code.example",
            Reply::Addresses(addresses(&["127.0.0.255"])),
            ZoneResult::NotListed,
        ),
        (
            "spamhaus-error.example",
            Reply::Addresses(addresses(&["127.255.255.254"])),
            ZoneResult::NotListed,
        ),
        (
            "other.example",
            Reply::Addresses(addresses(&["10.0.0.1"])),
            ZoneResult::NotListed,
        ),
        ("nxdomain.example", Reply::NxDomain, ZoneResult::NotListed),
        ("nodata.example", Reply::NoData, ZoneResult::NotListed),
        (
            "aaaa-only.example",
            Reply::Addresses(addresses(&["::1"])),
            ZoneResult::NotListed,
        ),
        ("servfail.example", Reply::ServFail, ZoneResult::NoAnswer),
        ("refused.example", Reply::Refused, ZoneResult::NoAnswer),
        ("hang.example", Reply::Hang, ZoneResult::NoAnswer),
    ];
    for (zone, reply, _) in &cases {
        stub.set(&format!("1.2.0.192.{zone}"), reply.clone());
    }
    let resolver = Resolver::new(stub.addr()).expect("resolver");
    let asked: Vec<String> = cases.iter().map(|(zone, _, _)| zone.to_string()).collect();
    let facts = ask(&resolver, "192.0.2.1", &asked, None);
    let got: Vec<(&str, ZoneResult)> = facts
        .zones
        .iter()
        .map(|answer| (answer.zone.as_str(), answer.result))
        .collect();
    let want: Vec<(&str, ZoneResult)> =
        cases.iter().map(|(zone, _, want)| (*zone, *want)).collect();
    assert_eq!(got, want);
    assert_eq!(facts.forward, None);
    // Each zone asked once (the hanging one may get its UDP question repeated, as any
    // resolver client does before it gives up).
    for (zone, reply, _) in &cases {
        let asked = stub.queries(&format!("1.2.0.192.{zone}"));
        assert!(
            asked == 1 || *reply == Reply::Hang && asked >= 1,
            "{zone}: {asked}"
        );
    }
}

#[test]
fn ipv6_and_ipv4_mapped_clients_are_asked_by_their_own_names() {
    let stub = DnsStub::start();
    let v6_name = format!(
        "{}.list.example",
        crate::dns::query::reversed(ip("2001:db8::53"))
    );
    stub.set(&v6_name, Reply::Addresses(addresses(&["127.0.0.10"])));
    stub.set(
        "7.2.0.192.list.example",
        Reply::Addresses(addresses(&["127.0.0.11"])),
    );
    let resolver = Resolver::new(stub.addr()).expect("resolver");
    let list = zones(&["list.example"]);
    assert_eq!(
        ask(&resolver, "2001:db8::53", &list, None).zone("list.example"),
        Some(listed("127.0.0.10"))
    );
    assert_eq!(
        ask(&resolver, "::ffff:192.0.2.7", &list, None).zone("list.example"),
        Some(listed("127.0.0.11"))
    );
    assert_eq!(stub.queries(&v6_name), 1);
}

#[test]
fn a_truncated_answer_is_asked_again_over_tcp() {
    let stub = DnsStub::start();
    stub.set(
        "1.2.0.192.big.example",
        Reply::Truncated(addresses(&["10.0.0.1", "127.0.0.4"])),
    );
    let resolver = Resolver::new(stub.addr()).expect("resolver");
    let facts = ask(&resolver, "192.0.2.1", &zones(&["big.example"]), None);
    assert_eq!(facts.zone("big.example"), Some(listed("127.0.0.4")));
    assert_eq!(stub.tcp_queries("1.2.0.192.big.example"), 1);
    assert_eq!(stub.queries("1.2.0.192.big.example"), 2);
}

#[test]
fn a_hanging_zone_costs_the_budget_and_no_more() {
    let stub = DnsStub::start();
    stub.set("1.2.0.192.hang.example", Reply::Hang);
    stub.set(
        "1.2.0.192.quick.example",
        Reply::Addresses(addresses(&["127.0.0.2"])),
    );
    stub.set("mx.hang.example", Reply::Hang);
    let resolver = Resolver::new(stub.addr()).expect("resolver");
    assert_eq!(resolver.budget(), Duration::from_millis(1500));
    let started = Instant::now();
    let facts = ask(
        &resolver,
        "192.0.2.1",
        &zones(&["hang.example", "quick.example", "nx.example"]),
        Some("mx.hang.example"),
    );
    let took = started.elapsed();
    // The bound is the budget; the margin is wide, this is no speed test.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(facts.zone("hang.example"), Some(ZoneResult::NoAnswer));
    assert_eq!(facts.zone("quick.example"), Some(listed("127.0.0.2")));
    assert_eq!(facts.zone("nx.example"), Some(ZoneResult::NotListed));
    assert_eq!(facts.forward, Some(Forward::NoAnswer));
    // A timeout leaves no penalty behind: the same client answers the next question at once.
    let facts = ask(&resolver, "192.0.2.1", &zones(&["quick.example"]), None);
    assert_eq!(facts.zone("quick.example"), Some(listed("127.0.0.2")));
}

#[test]
fn zones_are_asked_once_and_never_from_a_cache_of_the_client() {
    let stub = DnsStub::start();
    stub.set(
        "1.2.0.192.list.example",
        Reply::Addresses(addresses(&["127.0.0.2"])),
    );
    let resolver = Resolver::new(stub.addr()).expect("resolver");
    let list = zones(&["list.example", "LIST.example.", "List.Example"]);
    let facts = ask(&resolver, "192.0.2.1", &list, None);
    assert_eq!(facts.zones.len(), 1);
    assert_eq!(facts.zones[0].zone, "list.example");
    assert_eq!(stub.queries("1.2.0.192.list.example"), 1);
    // The store caches answers; the client asks every time it is asked.
    stub.set("1.2.0.192.list.example", Reply::NxDomain);
    let facts = ask(&resolver, "192.0.2.1", &list, None);
    assert_eq!(facts.zone("list.example"), Some(ZoneResult::NotListed));
    assert_eq!(stub.queries("1.2.0.192.list.example"), 2);
}

#[test]
fn forward_confirmation() {
    let stub = DnsStub::start();
    stub.set(
        "mx.good.example",
        Reply::Addresses(addresses(&["192.0.2.9", "192.0.2.1", "2001:db8::1"])),
    );
    stub.set(
        "mx.other.example",
        Reply::Addresses(addresses(&["192.0.2.9"])),
    );
    stub.set(
        "mx.v6only.example",
        Reply::Addresses(addresses(&["2001:db8::1"])),
    );
    stub.set("mx.servfail.example", Reply::ServFail);
    stub.set("mx.hang.example", Reply::Hang);
    let resolver = Resolver::new(stub.addr()).expect("resolver");
    let forward = |client: &str, name: &str| ask(&resolver, client, &[], Some(name)).forward;
    assert_eq!(
        forward("192.0.2.1", "mx.good.example"),
        Some(Forward::Confirmed)
    );
    assert_eq!(
        forward("192.0.2.1", "MX.Good.Example."),
        Some(Forward::Confirmed)
    );
    assert_eq!(
        forward("::ffff:192.0.2.1", "mx.good.example"),
        Some(Forward::Confirmed)
    );
    assert_eq!(
        forward("2001:db8::1", "mx.good.example"),
        Some(Forward::Confirmed)
    );
    assert_eq!(
        forward("2001:db8::2", "mx.good.example"),
        Some(Forward::NotConfirmed)
    );
    assert_eq!(
        forward("192.0.2.1", "mx.other.example"),
        Some(Forward::NotConfirmed)
    );
    assert_eq!(
        forward("192.0.2.1", "mx.v6only.example"),
        Some(Forward::NotConfirmed)
    );
    assert_eq!(
        forward("192.0.2.1", "mx.missing.example"),
        Some(Forward::NotConfirmed)
    );
    assert_eq!(
        forward("192.0.2.1", "not a..name"),
        Some(Forward::NotConfirmed)
    );
    assert_eq!(
        forward("192.0.2.1", "mx.servfail.example"),
        Some(Forward::NoAnswer)
    );
    assert_eq!(
        forward("192.0.2.1", "mx.hang.example"),
        Some(Forward::NoAnswer)
    );
    assert_eq!(ask(&resolver, "192.0.2.1", &[], None), DnsFacts::default());
}

#[test]
fn a_resolver_that_is_not_there_gives_no_answer() {
    // A UDP port nobody listens on: the network error is no answer, never a listing.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = socket.local_addr().expect("address");
    drop(socket);
    let resolver = Resolver::new(addr).expect("resolver");
    let facts = ask(
        &resolver,
        "192.0.2.1",
        &zones(&["list.example"]),
        Some("mx.example"),
    );
    assert_eq!(facts.zone("list.example"), Some(ZoneResult::NoAnswer));
    assert_eq!(facts.forward, Some(Forward::NoAnswer));
}
