//! The store interface (DESIGN.md §1) behaves the same on SQLite and PostgreSQL (issue 7): the
//! library's `Store`/`Tx` driven directly, each test on a fresh database of each backend.

use std::sync::{Arc, Barrier};

use grey_listing::config::{ListKind, ServerLists, Settings};
use grey_listing::decision::{Reason, Verdict};
use grey_listing::engine::{self, Message};
use grey_listing::store::{self, LiveTriplet, Store, StoreError, Triplet, TripletKey};

use crate::support::{Backend, Test};

fn key(client: &str, sender: &str, recipient: &str) -> TripletKey {
    TripletKey {
        client: client.to_string(),
        sender: sender.to_string(),
        recipient: recipient.to_string(),
    }
}

fn triplet(expires: i64, pass_count: u64) -> Triplet {
    Triplet {
        first_seen: 1_000,
        earliest_accept: 1_300,
        last_seen: 1_000,
        expires,
        pass_count,
    }
}

/// Runs a write transaction, panicking on a store error.
fn write(store: &mut dyn Store, mut f: impl FnMut(&mut dyn store::Tx) -> Result<(), StoreError>) {
    store.write(&mut |tx| f(tx)).unwrap();
}

/// Runs a read transaction and returns what `f` computed.
fn read<T: Default>(
    store: &mut dyn Store,
    mut f: impl FnMut(&mut dyn store::Tx) -> Result<T, StoreError>,
) -> T {
    let mut value = T::default();
    store
        .read(&mut |tx| {
            value = f(tx)?;
            Ok(())
        })
        .unwrap();
    value
}

// DESIGN.md §2 defaults of a new database; settings written in one transaction read back whole.
fn settings_round_trip(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    let (settings, lists) = read(store.as_mut(), |tx| {
        Ok((tx.settings()?, store::server_lists(tx)?))
    });
    assert_eq!(settings, Settings::default());
    assert_eq!(lists, ServerLists::defaults());
    let changed = Settings {
        enabled: false,
        grey_interval: 17,
        expire_interval: 99,
        penalty_interval: 3,
        penalty_enabled: true,
        personal_conf: false,
        ipv4_prefix: 32,
        ipv6_prefix: 48,
        awl_count: 0,
        sender_normalize: false,
        ..Settings::default()
    };
    write(store.as_mut(), |tx| tx.set_settings(&changed));
    // A second store (another process, another MX host) sees the committed change.
    let mut other = t.open();
    assert_eq!(read(other.as_mut(), |tx| tx.settings()), changed);
}

// DESIGN.md §2: lists keep insertion order; adding an existing pattern and deleting a missing one
// are no-ops; patterns compare as literal strings; mailbox lists are separate.
fn list_order_and_no_op_edits(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    write(store.as_mut(), |tx| {
        for pattern in ["*x.com", "*.x.com", "a@b.example", "*x.com"] {
            tx.add_pattern(ListKind::Black, "", pattern)?;
        }
        tx.delete_pattern(ListKind::Black, "", "missing@example.com")?;
        tx.add_pattern(ListKind::White, "john@example.com", "*@ietf.org")?;
        tx.add_pattern(ListKind::Black, "amy@example.com", "*@spam.example")
    });
    let (black, john, mailboxes) = read(store.as_mut(), |tx| {
        Ok((
            tx.list(ListKind::Black, "")?,
            tx.list(ListKind::White, "john@example.com")?,
            tx.mailboxes()?,
        ))
    });
    assert_eq!(black, ["*x.com", "*.x.com", "a@b.example"]);
    assert_eq!(john, ["*@ietf.org"]);
    assert_eq!(mailboxes, ["amy@example.com", "john@example.com"]);
    write(store.as_mut(), |tx| {
        tx.delete_pattern(ListKind::Black, "", "*x.com")?;
        // Re-adding puts it at the end.
        tx.add_pattern(ListKind::Black, "", "*x.com")
    });
    let black = read(store.as_mut(), |tx| tx.list(ListKind::Black, ""));
    assert_eq!(black, ["*.x.com", "a@b.example", "*x.com"]);
}

// DESIGN.md §2: a domain never set is enabled (no flag); flags are set, listed sorted, forgotten.
fn domain_flags(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    assert_eq!(
        read(store.as_mut(), |tx| tx.domain_status("b.example")),
        None
    );
    write(store.as_mut(), |tx| {
        tx.set_domain_status("b.example", false)?;
        tx.set_domain_status("a.example", true)?;
        tx.set_domain_status("b.example", false)
    });
    let (b, domains) = read(store.as_mut(), |tx| {
        Ok((tx.domain_status("b.example")?, tx.domains()?))
    });
    assert_eq!(b, Some(false));
    assert_eq!(
        domains,
        [
            ("a.example".to_string(), true),
            ("b.example".to_string(), false)
        ]
    );
    write(store.as_mut(), |tx| tx.delete_domain("b.example"));
    assert_eq!(
        read(store.as_mut(), |tx| tx.domain_status("b.example")),
        None
    );
}

// DESIGN.md §4: a triplet is recorded, read back, and replaced in place (one row per key).
fn triplet_put_get(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    let k = key("192.0.2.0/24", "a@b.example", "u@local.example");
    assert_eq!(read(store.as_mut(), |tx| tx.triplet(&k)), None);
    write(store.as_mut(), |tx| {
        tx.put_triplet(&k, "192.0.2.0/24", &triplet(5_000, 0))
    });
    assert_eq!(
        read(store.as_mut(), |tx| tx.triplet(&k)),
        Some(triplet(5_000, 0))
    );
    write(store.as_mut(), |tx| {
        tx.put_triplet(&k, "192.0.2.0/24", &triplet(9_000, 1))
    });
    let live = read(store.as_mut(), |tx| tx.live_triplets(0));
    assert_eq!(
        live,
        [LiveTriplet {
            key: k.clone(),
            network: "192.0.2.0/24".to_string(),
            triplet: triplet(9_000, 1),
        }]
    );
}

// DESIGN.md §4 step 5: the auto-whitelist counts distinct unexpired triplets of a network that
// passed at least once.
fn awl_passes(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    write(store.as_mut(), |tx| {
        let net = "198.51.100.0/24";
        tx.put_triplet(&key(net, "a@x", "u@y"), net, &triplet(5_000, 1))?;
        tx.put_triplet(&key(net, "b@x", "u@y"), net, &triplet(5_000, 3))?;
        // Never passed.
        tx.put_triplet(&key(net, "c@x", "u@y"), net, &triplet(5_000, 0))?;
        // Expired at now = 4_000.
        tx.put_triplet(&key(net, "d@x", "u@y"), net, &triplet(4_000, 2))?;
        // Keyed by host domain, but counted for its network.
        tx.put_triplet(
            &key("sender.example", "e@x", "u@y"),
            net,
            &triplet(5_000, 1),
        )?;
        // Another network.
        tx.put_triplet(
            &key("203.0.113.0/24", "a@x", "u@y"),
            "203.0.113.0/24",
            &triplet(5_000, 1),
        )
    });
    assert_eq!(
        read(store.as_mut(), |tx| tx.awl_passes("198.51.100.0/24", 4_000)),
        3
    );
    assert_eq!(
        read(store.as_mut(), |tx| tx.awl_passes("192.0.2.0/24", 4_000)),
        0
    );
}

// DESIGN.md §2 expire interval: purging deletes exactly the triplets expired at `now`.
fn purge_expired(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    write(store.as_mut(), |tx| {
        for (i, expires) in [100, 200, 300, 400].into_iter().enumerate() {
            let k = key("192.0.2.0/24", &format!("s{i}@x"), "u@y");
            tx.put_triplet(&k, "192.0.2.0/24", &triplet(expires, 0))?;
        }
        Ok(())
    });
    let mut purged = 0;
    write(store.as_mut(), |tx| {
        purged = tx.purge_expired(200)?;
        Ok(())
    });
    assert_eq!(purged, 2);
    let left: Vec<i64> = read(store.as_mut(), |tx| tx.live_triplets(0))
        .iter()
        .map(|live| live.triplet.expires)
        .collect();
    assert_eq!(left, [300, 400]);
    // live_triplets leaves out the ones expired at `now` without deleting them.
    assert_eq!(read(store.as_mut(), |tx| tx.live_triplets(300)).len(), 1);
}

// DESIGN.md §2 expire interval: the filter's bounded purge (a few rows per message) removes at most
// `limit` triplets per call, never a live one, and repeated calls reach every expired triplet
// however the table is ordered. SQLite looks at a window of the table per call (no `expires`
// index since schema 4); here the table is several windows long.
fn bounded_purge_covers_the_table(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    write(store.as_mut(), |tx| {
        for i in 0..300 {
            // Every third triplet expired at now = 500; the keys interleave them.
            let expires = if i % 3 == 0 { 400 } else { 9_000 };
            let k = key(&format!("192.0.{}.0/24", i % 7), &format!("s{i}@x"), "u@y");
            tx.put_triplet(&k, &k.client, &triplet(expires, 1))?;
        }
        Ok(())
    });
    let mut total = 0;
    let mut calls = 0;
    while total < 100 {
        calls += 1;
        assert!(
            calls <= 60,
            "100 expired triplets not purged after 60 calls"
        );
        let mut purged = 0;
        write(store.as_mut(), |tx| {
            purged = tx.purge_expired_batch(500, 10)?;
            Ok(())
        });
        assert!(purged <= 10, "a call with limit 10 purged {purged}");
        total += purged;
    }
    assert_eq!(total, 100);
    let left = read(store.as_mut(), |tx| tx.live_triplets(0));
    assert_eq!(left.len(), 200);
    assert!(left.iter().all(|live| live.triplet.expires == 9_000));
    // Nothing more to find, however often it is called.
    for _ in 0..5 {
        write(store.as_mut(), |tx| {
            assert_eq!(tx.purge_expired_batch(500, 10)?, 0);
            Ok(())
        });
    }
}

// DESIGN.md §4 step 5 across a triplet's life: it counts for the auto-whitelist from its first pass,
// keeps counting while its passes and expiry are updated, stops when it is created again (an
// expired triplet seen anew) and follows a change of network. On SQLite this exercises the
// `passed` flag behind the auto-whitelist index (schema 4), which must always equal
// `pass_count > 0`.
fn awl_follows_a_triplet_through_its_life(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    let net = "198.51.100.0/24";
    let other = "198.51.0.0/16";
    let k = key("198.51.100.7", "a@x", "u@y");
    let count = |store: &mut dyn Store, network: &'static str| {
        read(store, |tx| {
            Ok((
                tx.awl_passes(network, 2_000)?,
                tx.awl_passes_up_to(network, 2_000, 5)?,
            ))
        })
    };
    // (network written, state written, AWL counts of `net`, of `other`: full and up to 5)
    type Step = (&'static str, Triplet, (u64, u64), (u64, u64));
    let steps: [Step; 6] = [
        // new: pending
        (net, triplet(5_000, 0), (0, 0), (0, 0)),
        // first pass
        (net, triplet(5_000, 1), (1, 1), (0, 0)),
        // more passes, a later expiry
        (net, triplet(6_000, 2), (1, 1), (0, 0)),
        (net, triplet(7_000, 3), (1, 1), (0, 0)),
        // created again after expiring: pending
        (net, triplet(8_000, 0), (0, 0), (0, 0)),
        // passes again, now recorded under a wider network
        (other, triplet(8_000, 1), (0, 0), (1, 1)),
    ];
    for (i, (network, state, in_net, in_other)) in steps.into_iter().enumerate() {
        write(store.as_mut(), |tx| tx.put_triplet(&k, network, &state));
        assert_eq!(count(store.as_mut(), net), in_net, "step {i}: {net}");
        assert_eq!(count(store.as_mut(), other), in_other, "step {i}: {other}");
        assert_eq!(
            read(store.as_mut(), |tx| tx.triplet(&k)),
            Some(state),
            "step {i}"
        );
        if backend == Backend::Sqlite {
            let conn = rusqlite::Connection::open(t.db()).unwrap();
            let mismatched: i64 = conn
                .query_row(
                    "SELECT count(*) FROM triplets WHERE passed <> (pass_count > 0)",
                    [],
                    |row| row.get(0),
                )
                .unwrap();
            assert_eq!(mismatched, 0, "step {i}: passed flag out of step");
        }
    }
}

// DESIGN.md §1/§2: a transaction whose closure fails writes nothing.
fn failed_transaction_rolls_back(backend: Backend) {
    let t = Test::on(backend);
    let mut store = t.open();
    let result = store.write(&mut |tx| {
        tx.add_pattern(ListKind::Black, "", "*@rolled-back.example")?;
        tx.set_domain_status("rolled-back.example", false)?;
        Err(StoreError::Unsupported("stop here".to_string()))
    });
    assert!(matches!(result, Err(StoreError::Unsupported(_))));
    let (black, domain) = read(store.as_mut(), |tx| {
        Ok((
            tx.list(ListKind::Black, "")?,
            tx.domain_status("rolled-back.example")?,
        ))
    });
    assert!(black.is_empty(), "{black:?}");
    assert_eq!(domain, None);
    // The store is still usable after the rollback.
    write(store.as_mut(), |tx| {
        tx.add_pattern(ListKind::Black, "", "*@kept.example")
    });
    assert_eq!(
        read(store.as_mut(), |tx| tx.list(ListKind::Black, "")),
        ["*@kept.example"]
    );
}

// DESIGN.md §1: concurrent first opens do not race — every one succeeds and the defaults are
// seeded exactly once.
fn concurrent_first_opens(backend: Backend) {
    let t = Test::on(backend);
    let location = store::DbLocation::parse(&t.location());
    let barrier = Arc::new(Barrier::new(16));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let location = location.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut store = store::open(&location).unwrap();
                read(store.as_mut(), |tx| tx.list(ListKind::DomainsWhite, "")).len()
            })
        })
        .collect();
    for thread in threads {
        assert_eq!(thread.join().unwrap(), 11);
    }
}

const WRITERS: usize = 64;
const ROUNDS: usize = 4;

fn message(recipients: &[&str]) -> Message {
    Message {
        client_ip: Some("192.0.2.7".parse().unwrap()),
        client_name: None,
        sender: "sender@origin.example".to_string(),
        recipients: recipients.iter().map(|r| r.to_string()).collect(),
        authenticated: false,
        ..Message::default()
    }
}

// DESIGN.md §1 + §4 / issue 7: 64 concurrent writers (threads, each with its own store) checking the
// same triplets lose no update and create no duplicate row: every pass is counted.
fn sixty_four_writers_lose_nothing(backend: Backend) {
    let t = Test::on(backend);
    let recipients = ["u1@local.example", "u2@local.example"];
    {
        let mut store = t.open();
        write(store.as_mut(), |tx| {
            let mut settings = tx.settings()?;
            // No auto-whitelist: every check must go through the triplet itself.
            settings.awl_count = 0;
            tx.set_settings(&settings)
        });
        let first = engine::check_message(store.as_mut(), &message(&recipients), 10_000).unwrap();
        assert_eq!(first.verdict, Verdict::Defer);
    }
    // After the grey interval (5 minutes) every retry passes and counts.
    let now = 10_000 + 600;
    let location = store::DbLocation::parse(&t.location());
    let barrier = Arc::new(Barrier::new(WRITERS));
    let threads: Vec<_> = (0..WRITERS)
        .map(|_| {
            let location = location.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut store = store::open(&location).unwrap();
                barrier.wait();
                for _ in 0..ROUNDS {
                    let outcome =
                        engine::check_message(store.as_mut(), &message(&recipients), now).unwrap();
                    assert_eq!(outcome.verdict, Verdict::Pass);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut store = t.open();
    let live = read(store.as_mut(), |tx| tx.live_triplets(now));
    assert_eq!(live.len(), recipients.len(), "{live:?}");
    for row in live {
        assert_eq!(row.triplet.pass_count, (WRITERS * ROUNDS) as u64, "{row:?}");
    }
}

// DESIGN.md §1 / issue 7: 64 concurrent writers each creating their own triplets: all are there.
fn sixty_four_writers_creating_triplets(backend: Backend) {
    let t = Test::on(backend);
    let location = store::DbLocation::parse(&t.location());
    t.open();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let threads: Vec<_> = (0..WRITERS)
        .map(|i| {
            let location = location.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut store = store::open(&location).unwrap();
                barrier.wait();
                let recipient = format!("user{i}@local.example");
                let outcome =
                    engine::check_message(store.as_mut(), &message(&[&recipient]), 20_000).unwrap();
                assert_eq!(outcome.verdict, Verdict::Defer);
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let mut store = t.open();
    assert_eq!(
        read(store.as_mut(), |tx| tx.live_triplets(20_000)).len(),
        WRITERS
    );
}

// Issue 7, two MX hosts on one store (library level: each "host" is a store opened once and kept,
// as a policy server does): a triplet first seen on one host passes on the other after the grey
// interval, and a pattern added with the CLI meanwhile takes effect on both at their next check.
fn two_hosts_share_triplets_and_lists(backend: Backend) {
    let t = Test::on(backend);
    let mut mx1 = t.open();
    let mut mx2 = t.open();
    let first =
        engine::check_message(mx1.as_mut(), &message(&["u@local.example"]), 50_000).unwrap();
    assert_eq!(first.recipients[0].decision.reason, Reason::New);
    // Too early on the other host: the same triplet, still waiting.
    let early =
        engine::check_message(mx2.as_mut(), &message(&["u@local.example"]), 50_060).unwrap();
    assert_eq!(early.recipients[0].decision.reason, Reason::EarlyRetry);
    let retry =
        engine::check_message(mx2.as_mut(), &message(&["u@local.example"]), 50_600).unwrap();
    assert_eq!(retry.verdict, Verdict::Pass);
    assert_eq!(retry.recipients[0].decision.reason, Reason::TripletFound);
    assert_eq!(retry.recipients[0].decision.delay, Some(600));

    t.run(&["-u", "-blacklist", "add:*@origin.example"])
        .stdout(crate::support::SERVER_UPDATED);
    for host in [&mut mx1, &mut mx2] {
        let outcome =
            engine::check_message(host.as_mut(), &message(&["v@local.example"]), 50_700).unwrap();
        assert_eq!(outcome.verdict, Verdict::Reject);
        assert_eq!(outcome.recipients[0].decision.reason, Reason::ServerBlack);
    }
}

// Issue 7: messages naming the same recipients in opposite orders, concurrently, all succeed
// and all count (on PostgreSQL the triplet locks can deadlock; the store re-runs the victim).
fn opposite_recipient_orders_all_succeed(backend: Backend) {
    let t = Test::on(backend);
    let forward = ["a@local.example", "b@local.example", "c@local.example"];
    let backward = ["c@local.example", "b@local.example", "a@local.example"];
    {
        let mut store = t.open();
        write(store.as_mut(), |tx| {
            let mut settings = tx.settings()?;
            settings.awl_count = 0;
            tx.set_settings(&settings)
        });
        engine::check_message(store.as_mut(), &message(&forward), 10_000).unwrap();
    }
    let location = store::DbLocation::parse(&t.location());
    let threads = 16;
    let rounds = 5;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let location = location.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut store = store::open(&location).unwrap();
                barrier.wait();
                let order = if i % 2 == 0 { forward } else { backward };
                for _ in 0..rounds {
                    let outcome =
                        engine::check_message(store.as_mut(), &message(&order), 10_600).unwrap();
                    assert_eq!(outcome.verdict, Verdict::Pass);
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let mut store = t.open();
    for row in read(store.as_mut(), |tx| tx.live_triplets(10_600)) {
        assert_eq!(row.triplet.pass_count, (threads * rounds) as u64, "{row:?}");
    }
}

/// One configuration write inside a transaction.
type ConfigEdit = dyn Fn(&mut dyn store::Tx) -> Result<(), StoreError>;

/// The configuration stamp as a fresh transaction sees it.
fn stamp(store: &mut dyn Store) -> i64 {
    read(store, |tx| {
        Ok(tx.config_stamp()?.expect("this backend offers a stamp"))
    })
}

// Issue 5 / issue 7: the configuration stamp a policy server caches against changes with every
// committed configuration write by another connection (a settings value, a list entry, a domain
// flag), stays put while only triplets change, and does not change for a rolled-back write.
fn config_stamp_follows_configuration_writes(backend: Backend) {
    let t = Test::on(backend);
    let mut server = t.open();
    let mut admin = t.open();
    let first = stamp(server.as_mut());
    assert_eq!(stamp(server.as_mut()), first);
    write(server.as_mut(), |tx| {
        tx.put_triplet(
            &key("192.0.2.0/24", "s@x", "r@y"),
            "192.0.2.0/24",
            &triplet(9_000, 1),
        )
    });
    assert_eq!(
        stamp(server.as_mut()),
        first,
        "a triplet write is not configuration"
    );
    let mut seen = vec![first];
    let edits: [&ConfigEdit; 4] = [
        &|tx| tx.add_pattern(ListKind::DomainsBlack, "", "*.new.example"),
        &|tx| tx.delete_pattern(ListKind::DomainsBlack, "", "*.new.example"),
        &|tx| tx.set_domain_status("example.com", false),
        &|tx| {
            let settings = Settings {
                grey_interval: 7,
                ..tx.settings()?
            };
            tx.set_settings(&settings)
        },
    ];
    for edit in edits {
        write(admin.as_mut(), |tx| edit(tx));
        let now = stamp(server.as_mut());
        assert!(
            !seen.contains(&now),
            "stamp {now} repeated after a change: {seen:?}"
        );
        seen.push(now);
    }
    let before = stamp(server.as_mut());
    let failed = admin.write(&mut |tx| {
        tx.add_pattern(ListKind::DomainsWhite, "", "*.rolled-back.example")?;
        Err(StoreError::Unsupported("abort".to_string()))
    });
    assert!(failed.is_err());
    assert_eq!(
        stamp(server.as_mut()),
        before,
        "a rolled-back write changed the stamp"
    );
}

on_both_stores!(
    opposite_recipient_orders_all_succeed,
    config_stamp_follows_configuration_writes,
    two_hosts_share_triplets_and_lists,
    settings_round_trip,
    list_order_and_no_op_edits,
    domain_flags,
    triplet_put_get,
    awl_passes,
    purge_expired,
    bounded_purge_covers_the_table,
    awl_follows_a_triplet_through_its_life,
    failed_transaction_rolls_back,
    concurrent_first_opens,
    sixty_four_writers_lose_nothing,
    sixty_four_writers_creating_triplets,
);
