//! The DNS answer cache of both stores: zone answers per (address, zone) and forward
//! confirmations per (address, name), each live for an hour, no-answers never stored, expired
//! rows purged with the expired triplets; and the SQLite migration from schema 6.

use std::net::{IpAddr, Ipv4Addr};

use grey_listing::dns::{Forward, ZoneAnswer, ZoneResult};
use grey_listing::store::dns_cache::DNS_CACHE_SECONDS;
use grey_listing::store::{self, Store, StoreError};
use rusqlite::Connection;

use crate::support::{Backend, INFO_SERVER_DEFAULTS, SERVER_UPDATED, Test};

const NOW: i64 = 1_700_000_000;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn answer(zone: &str, result: ZoneResult) -> ZoneAnswer {
    ZoneAnswer {
        zone: zone.to_string(),
        result,
    }
}

fn listed(last: u8) -> ZoneResult {
    ZoneResult::Listed(Ipv4Addr::new(127, 0, 0, last))
}

fn zones(names: &[&str]) -> Vec<String> {
    names.iter().map(|z| z.to_string()).collect()
}

fn write(store: &mut dyn Store, mut f: impl FnMut(&mut dyn store::Tx) -> Result<(), StoreError>) {
    store.write(&mut |tx| f(tx)).unwrap();
}

fn cached(store: &mut dyn Store, ip: IpAddr, names: &[&str], now: i64) -> Vec<ZoneAnswer> {
    let mut found = Vec::new();
    store
        .read(&mut |tx| {
            found = tx.dns_cache_get(ip, &zones(names), now)?;
            Ok(())
        })
        .unwrap();
    found
}

fn forward(store: &mut dyn Store, ip: IpAddr, name: &str, now: i64) -> Option<Forward> {
    let mut found = None;
    store
        .read(&mut |tx| {
            found = tx.forward_cache_get(ip, name, now)?;
            Ok(())
        })
        .unwrap();
    found
}

// Put then get: listed and not-listed answers come back for an hour, in the order asked, per
// address; a no-answer is not stored; an expired answer is not returned.
fn zone_answers_live_for_an_hour(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    let client = ip("192.0.2.7");
    write(store.as_mut(), |tx| {
        tx.dns_cache_put(
            client,
            &[
                answer("list.dnswl.org", listed(2)),
                answer("zen.spamhaus.org", ZoneResult::NotListed),
                answer("bl.example", ZoneResult::NoAnswer),
            ],
            NOW,
        )
    });
    let asked = [
        "zen.spamhaus.org",
        "bl.example",
        "list.dnswl.org",
        "never.example",
    ];
    let expected = vec![
        answer("zen.spamhaus.org", ZoneResult::NotListed),
        answer("list.dnswl.org", listed(2)),
    ];
    assert_eq!(cached(store.as_mut(), client, &asked, NOW), expected);
    let last_second = NOW + DNS_CACHE_SECONDS - 1;
    assert_eq!(
        cached(store.as_mut(), client, &asked, last_second),
        expected
    );
    // Expired at now + 3600.
    let expiry = NOW + DNS_CACHE_SECONDS;
    assert_eq!(cached(store.as_mut(), client, &asked, expiry), vec![]);
    // Another address shares nothing; the IPv4-mapped form of the address is the address.
    assert_eq!(cached(store.as_mut(), ip("192.0.2.8"), &asked, NOW), vec![]);
    assert_eq!(
        cached(store.as_mut(), ip("::ffff:192.0.2.7"), &asked, NOW),
        expected
    );
    // IPv6 addresses are keys as well.
    let v6 = ip("2001:db8::25");
    write(store.as_mut(), |tx| {
        tx.dns_cache_put(v6, &[answer("bl.example", listed(10))], NOW)
    });
    assert_eq!(
        cached(store.as_mut(), v6, &["bl.example"], NOW),
        vec![answer("bl.example", listed(10))]
    );
}

// A second put replaces the answer and restarts the hour; a no-answer later leaves the stored
// answer alone.
fn zone_answers_are_replaced(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    let client = ip("198.51.100.9");
    write(store.as_mut(), |tx| {
        tx.dns_cache_put(client, &[answer("bl.example", listed(2))], NOW)
    });
    let later = NOW + 1_800;
    write(store.as_mut(), |tx| {
        tx.dns_cache_put(
            client,
            &[answer("bl.example", ZoneResult::NotListed)],
            later,
        )
    });
    write(store.as_mut(), |tx| {
        tx.dns_cache_put(client, &[answer("bl.example", ZoneResult::NoAnswer)], later)
    });
    let after_first_hour = NOW + DNS_CACHE_SECONDS + 10;
    assert_eq!(
        cached(store.as_mut(), client, &["bl.example"], after_first_hour),
        vec![answer("bl.example", ZoneResult::NotListed)]
    );
    assert_eq!(
        cached(
            store.as_mut(),
            client,
            &["bl.example"],
            later + DNS_CACHE_SECONDS
        ),
        vec![]
    );
}

// Forward confirmations: per (address, name), the name compared ignoring case and one trailing
// dot, replaced by a later answer, a no-answer never stored, an hour of life; a hostile long
// name is bounded and still finds its row.
fn forward_confirmations_are_cached(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    let client = ip("203.0.113.5");
    write(store.as_mut(), |tx| {
        tx.forward_cache_put(client, "Mail.Example.COM.", Forward::Confirmed, NOW)?;
        tx.forward_cache_put(client, "other.example", Forward::NotConfirmed, NOW)?;
        tx.forward_cache_put(client, "lost.example", Forward::NoAnswer, NOW)
    });
    let now = NOW + 10;
    assert_eq!(
        forward(store.as_mut(), client, "mail.example.com", now),
        Some(Forward::Confirmed)
    );
    assert_eq!(
        forward(store.as_mut(), client, "other.example", now),
        Some(Forward::NotConfirmed)
    );
    assert_eq!(forward(store.as_mut(), client, "lost.example", now), None);
    assert_eq!(
        forward(store.as_mut(), ip("203.0.113.6"), "mail.example.com", now),
        None
    );
    assert_eq!(
        forward(
            store.as_mut(),
            client,
            "mail.example.com",
            NOW + DNS_CACHE_SECONDS
        ),
        None
    );
    write(store.as_mut(), |tx| {
        tx.forward_cache_put(client, "mail.example.com", Forward::NotConfirmed, now)
    });
    assert_eq!(
        forward(store.as_mut(), client, "mail.example.com", now),
        Some(Forward::NotConfirmed)
    );
    // A zone and a forward row never answer for each other.
    assert_eq!(
        cached(store.as_mut(), client, &["other.example"], now),
        vec![]
    );

    let hostile = format!("{}.example", "x".repeat(5_000));
    write(store.as_mut(), |tx| {
        tx.forward_cache_put(client, &hostile, Forward::Confirmed, NOW)
    });
    assert_eq!(
        forward(store.as_mut(), client, &hostile, now),
        Some(Forward::Confirmed)
    );
}

/// Every cache row, expired or not (zone rows asked at a time before they were written).
fn rows_left(store: &mut dyn Store, client: IpAddr) -> (usize, bool) {
    let zone_rows = cached(store, client, &["a.example", "b.example"], NOW - 1).len();
    let forward_row = forward(store, client, "host.example", NOW - 1).is_some();
    (zone_rows, forward_row)
}

// `--purge` and the mail path's bounded purge take expired cache rows with the expired
// triplets, and leave live ones.
fn expired_rows_are_purged_with_triplets(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    let old = ip("192.0.2.1");
    let fresh = ip("192.0.2.2");
    let put = |store: &mut dyn Store, client: IpAddr, at: i64| {
        write(store, |tx| {
            tx.dns_cache_put(
                client,
                &[
                    answer("a.example", listed(2)),
                    answer("b.example", ZoneResult::NotListed),
                ],
                at,
            )?;
            tx.forward_cache_put(client, "host.example", Forward::Confirmed, at)
        });
    };
    put(store.as_mut(), old, NOW);
    let purge_time = NOW + DNS_CACHE_SECONDS + 60;
    put(store.as_mut(), fresh, purge_time - 60);
    assert_eq!(rows_left(store.as_mut(), old), (2, true));

    // The mail path's bounded purge (a limit of 1 row per call) gets there in a few calls.
    for _ in 0..4 {
        write(store.as_mut(), |tx| {
            tx.purge_expired_batch(purge_time, 1).map(|_| ())
        });
    }
    assert_eq!(rows_left(store.as_mut(), old), (0, false));
    assert_eq!(rows_left(store.as_mut(), fresh), (2, true));

    // --purge, once they expire too.
    drop(store);
    let purge_time = purge_time - 60 + DNS_CACHE_SECONDS;
    let purged = crate::support::grey_listing()
        .env("GREY_LISTING_NOW", purge_time.to_string())
        .args(["--db", &t.location(), "--purge"])
        .output()
        .unwrap();
    assert!(purged.status.success(), "{purged:?}");
    let mut store = t.open();
    assert_eq!(rows_left(store.as_mut(), fresh), (0, false));
}

on_both_stores!(
    zone_answers_live_for_an_hour,
    zone_answers_are_replaced,
    forward_confirmations_are_cached,
    expired_rows_are_purged_with_triplets,
);

// A schema-6 database (before the DNS cache) is migrated on first use: its configuration,
// triplets and counters stay, the cache table appears, the version is 7.
#[test]
fn schema_6_database_is_migrated_to_7_keeping_its_data() {
    let t = Test::new();
    t.run(&[
        "-u",
        "-blacklist",
        "add:*@kept.example",
        "-grey-interval",
        "7",
    ])
    .stdout(SERVER_UPDATED);
    {
        let conn = Connection::open(t.db()).unwrap();
        conn.execute_batch(
            "DROP TABLE dns_cache;
             INSERT INTO triplets VALUES
                 ('198.51.100.0/24', 'a@x', 'u@y', '198.51.100.0/24', 1000, 1300, 1400,
                  9999999999, 2, 1);
             INSERT INTO decision_counters VALUES ('filter', 'defer', 'new', 3);
             PRAGMA user_version = 6;",
        )
        .unwrap();
    }
    let info = t.run(&["-i", "--json"]).json();
    assert_eq!(
        info["lists"]["black"],
        serde_json::json!(["*@kept.example"])
    );
    assert_eq!(info["settings"]["grey_interval"], 7);
    assert_eq!(info["settings"]["greylist_clients"], "all");
    let conn = Connection::open(t.db()).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 7);
    let counts: (i64, i64, i64) = conn
        .query_row(
            "SELECT (SELECT count(*) FROM triplets),
                    (SELECT count FROM decision_counters),
                    (SELECT count(*) FROM dns_cache)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(counts, (1, 3, 0));
    drop(conn);
    // The migrated database caches.
    let mut store = t.open();
    let client = ip("192.0.2.1");
    write(store.as_mut(), |tx| {
        tx.dns_cache_put(client, &[answer("a.example", listed(2))], NOW)
    });
    assert_eq!(cached(store.as_mut(), client, &["a.example"], NOW).len(), 1);
    // Plesk's command is unchanged by the migration.
    drop(store);
    let text = t.run(&["-i"]).stdout.clone();
    assert!(text.starts_with("Grey listing configuration.\n"), "{text}");
    assert_ne!(text, INFO_SERVER_DEFAULTS);
}
