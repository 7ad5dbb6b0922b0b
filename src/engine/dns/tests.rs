//! The flow around the DNS plan (the plan per mode: `plan_tests.rs`), with a table-driven fake
//! [`DnsSource`] that counts what it is asked.

use std::cell::RefCell;
use std::net::Ipv4Addr;

use super::*;
use crate::config::ListKind;
use crate::decision::Reason;
use crate::engine::check_message_for;
use crate::store::{SqliteStore, Triplet, TripletKey};

/// Answers from a table (zones not in it: not listed) and records every question.
pub(super) struct FakeDns {
    table: Vec<(&'static str, ZoneResult)>,
    forward: Forward,
    pub(super) asked: RefCell<Vec<(Vec<String>, Option<String>)>>,
    /// A second connection that writes while DNS is asked: it only succeeds when no write
    /// transaction is open on the decider's connection.
    pub(super) writer: RefCell<Option<SqliteStore>>,
}

impl FakeDns {
    pub(super) fn new(table: Vec<(&'static str, ZoneResult)>) -> FakeDns {
        FakeDns {
            table,
            forward: Forward::Confirmed,
            asked: RefCell::new(Vec::new()),
            writer: RefCell::new(None),
        }
    }

    pub(super) fn calls(&self) -> usize {
        self.asked.borrow().len()
    }
}

impl DnsSource for FakeDns {
    fn ask(&self, question: &Question<'_>) -> DnsFacts {
        self.asked.borrow_mut().push((
            question.zones.to_vec(),
            question.confirm.map(str::to_string),
        ));
        if let Some(writer) = self.writer.borrow_mut().as_mut() {
            let key = TripletKey {
                client: "203.0.113.0/24".to_string(),
                sender: "other@x.example".to_string(),
                recipient: "u@local.example".to_string(),
            };
            let triplet = Triplet {
                first_seen: 1,
                earliest_accept: 2,
                last_seen: 1,
                expires: 9_999,
                pass_count: 0,
            };
            writer
                .write(&mut |tx| tx.put_triplet(&key, "203.0.113.0/24", &triplet))
                .expect("no write transaction is open while DNS is asked");
        }
        DnsFacts {
            zones: question
                .zones
                .iter()
                .map(|zone| ZoneAnswer {
                    zone: zone.clone(),
                    result: self
                        .table
                        .iter()
                        .find(|(z, _)| z == zone)
                        .map_or(ZoneResult::NotListed, |(_, r)| *r),
                })
                .collect(),
            forward: question.confirm.map(|_| self.forward),
        }
    }
}

pub(super) const GOOD: &str = "mx1.sender.example.com";
pub(super) const LINE: &str = "c-198-51-100-7.hsd1.ma.comcast.net";

pub(super) fn message(name: Option<&str>, unconfirmed: bool) -> Message {
    Message {
        client_ip: "198.51.100.7".parse().ok(),
        client_name: name.map(str::to_string),
        client_name_unconfirmed: unconfirmed,
        sender: "a@sender.example.com".to_string(),
        recipients: vec!["u@local.example".to_string()],
        ..Message::default()
    }
}

pub(super) fn zones(list: &[&str]) -> Vec<String> {
    list.iter().map(|z| z.to_string()).collect()
}
pub(super) fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::TempDir::new().unwrap();
    let store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
    (dir, store)
}

// Through the store (default configuration: `all` mode, no zones) nothing is asked and the
// decisions are exactly those of the plain engine; nor when a list decides.
#[test]
fn no_dns_without_zones_and_when_a_list_decides() {
    let (_dir, mut with_dns) = store();
    let (_dir2, mut plain) = store();
    let dns = FakeDns::new(vec![(
        "wl.example",
        ZoneResult::Listed(Ipv4Addr::new(127, 0, 0, 2)),
    )]);
    for (i, m) in [
        message(Some(GOOD), false),
        message(None, true),
        message(Some(LINE), true),
    ]
    .iter()
    .enumerate()
    {
        for now in [1_000, 1_100, 1_400] {
            let now = now + i as i64;
            let a = check_message_dns(&mut with_dns, Component::Filter, m, now, &dns)
                .unwrap()
                .0;
            let b = check_message_for(&mut plain, Component::Filter, m, now).unwrap();
            let reasons = |o: &MessageOutcome| -> Vec<Reason> {
                o.recipients.iter().map(|r| r.decision.reason).collect()
            };
            assert_eq!(reasons(&a), reasons(&b));
            assert_eq!(a.verdict, b.verdict);
        }
    }
    with_dns
        .write(&mut |tx| tx.add_pattern(ListKind::White, "", "*@sender.example.com"))
        .unwrap();
    let outcome = check_message_dns(
        &mut with_dns,
        Component::Filter,
        &message(None, false),
        2_000,
        &dns,
    )
    .unwrap()
    .0;
    assert_eq!(outcome.recipients[0].decision.reason, Reason::ServerWhite);
    assert_eq!(dns.calls(), 0);
}

// DNS is asked once, with no write transaction open (another connection writes meanwhile),
// and answers the message already carries are not asked again.
#[test]
fn dns_is_asked_once_outside_any_transaction() {
    let (dir, mut store) = store();
    let dns = FakeDns::new(vec![("bl.example", ZoneResult::NoAnswer)]);
    *dns.writer.borrow_mut() = Some(SqliteStore::open(&dir.path().join("g.db")).unwrap());
    let plan = DnsPlan {
        ip: "198.51.100.7".parse().unwrap(),
        zones: zones(&["wl.example", "bl.example"]),
        confirm: Some(GOOD.to_string()),
    };
    let mut known = message(Some(GOOD), true);
    known.dns.zones.push(ZoneAnswer {
        zone: "wl.example".to_string(),
        result: ZoneResult::NotListed,
    });
    let outcome = decide_with_plan(
        &mut store,
        Component::Filter,
        &known,
        1_000,
        &dns,
        Some(&plan),
    )
    .unwrap()
    .0;
    assert_eq!(outcome.recipients[0].decision.reason, Reason::New);
    assert_eq!(
        *dns.asked.borrow(),
        vec![(zones(&["bl.example"]), Some(GOOD.to_string()))]
    );
    // The other connection's triplet is there: its write went through while DNS was asked.
    let mut found = None;
    store
        .read(&mut |tx| {
            found = tx.triplet(&TripletKey {
                client: "203.0.113.0/24".to_string(),
                sender: "other@x.example".to_string(),
                recipient: "u@local.example".to_string(),
            })?;
            Ok(())
        })
        .unwrap();
    assert!(found.is_some());
    // Everything known: nothing asked.
    known.dns.zones.push(ZoneAnswer {
        zone: "bl.example".to_string(),
        result: ZoneResult::NotListed,
    });
    known.dns.forward = Some(Forward::NotConfirmed);
    decide_with_plan(
        &mut store,
        Component::Filter,
        &known,
        1_100,
        &dns,
        Some(&plan),
    )
    .unwrap();
    assert_eq!(dns.calls(), 1);
}

// What is kept for later messages, and how new answers join known ones.
#[test]
fn remaining_cacheable_and_merged_answers() {
    let listed = ZoneResult::Listed(Ipv4Addr::new(127, 0, 0, 2));
    let facts = DnsFacts {
        zones: vec![
            ZoneAnswer {
                zone: "a.example".to_string(),
                result: ZoneResult::NoAnswer,
            },
            ZoneAnswer {
                zone: "b.example".to_string(),
                result: listed,
            },
        ],
        forward: Some(Forward::NoAnswer),
    };
    let kept = DnsPlan::cacheable(&facts);
    assert_eq!(kept.zones.len(), 1);
    assert_eq!(kept.zones[0].zone, "b.example");
    assert_eq!(kept.forward, None);
    let plan = DnsPlan {
        ip: "192.0.2.1".parse().unwrap(),
        zones: zones(&["a.example", "B.example"]),
        confirm: Some("x.example".to_string()),
    };
    let rest = plan.remaining(&facts).unwrap();
    assert_eq!(rest.zones, zones(&["a.example"]));
    assert_eq!(rest.confirm.as_deref(), Some("x.example"));
    let asked = DnsFacts {
        zones: vec![ZoneAnswer {
            zone: "A.example".to_string(),
            result: ZoneResult::NotListed,
        }],
        forward: Some(Forward::Confirmed),
    };
    let merged = merge_facts(&facts, &asked);
    assert_eq!(merged.zone("a.example"), Some(ZoneResult::NotListed));
    assert_eq!(merged.zone("b.example"), Some(listed));
    assert_eq!(merged.forward, Some(Forward::Confirmed));
    assert_eq!(plan.remaining(&merged), None);
}
