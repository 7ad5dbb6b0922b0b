use super::*;
use crate::config::ListKind;
use crate::decision::Reason;
use crate::store::SqliteStore;

fn message(ip: &str, recipient: &str) -> Message {
    Message {
        client_ip: ip.parse().ok(),
        client_name: None,
        sender: "a@sender.example".to_string(),
        recipients: vec![recipient.to_string()],
        authenticated: false,
        ..Message::default()
    }
}

fn decide_cached(store: &mut SqliteStore, cache: &mut ConfigCache, m: &Message) -> Reason {
    let mut outcomes = Vec::new();
    store
        .write(&mut |tx| {
            outcomes = check_messages_cached(tx, cache, Component::Filter, &[(m, 1000)])?;
            Ok(())
        })
        .unwrap();
    outcomes[0].recipients[0].decision.reason
}

// Issue 5: the configuration is read once and reused while nothing changes it; a write to
// any configuration table by another connection (the CLI) — a domain flag, a mailbox list
// entry, the settings — makes the very next transaction read it again (DESIGN.md §4 steps 1 and
// 4), while triplet writes do not.
#[test]
fn config_cache_reloads_exactly_after_configuration_writes() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("g.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let mut cli = SqliteStore::open(&path).unwrap();
    let mut cache = ConfigCache::new();
    let m = message("192.0.2.1", "u@local.example");
    assert_eq!(decide_cached(&mut store, &mut cache, &m), Reason::New);
    assert_eq!(
        decide_cached(&mut store, &mut cache, &m),
        Reason::EarlyRetry
    );
    assert_eq!(
        cache.loads(),
        1,
        "unchanged configuration is not read again"
    );

    cli.write(&mut |tx| tx.set_domain_status("local.example", false))
        .unwrap();
    assert_eq!(
        decide_cached(&mut store, &mut cache, &m),
        Reason::DomainDisabled
    );
    assert_eq!(cache.loads(), 2);
    cli.write(&mut |tx| tx.delete_domain("local.example"))
        .unwrap();
    assert_eq!(
        decide_cached(&mut store, &mut cache, &m),
        Reason::EarlyRetry
    );

    cli.write(&mut |tx| tx.add_pattern(ListKind::White, "u@local.example", "*@sender.example"))
        .unwrap();
    assert_eq!(
        decide_cached(&mut store, &mut cache, &m),
        Reason::MailboxWhite
    );
    cli.write(&mut |tx| tx.delete_pattern(ListKind::White, "u@local.example", "*@sender.example"))
        .unwrap();
    assert_eq!(
        decide_cached(&mut store, &mut cache, &m),
        Reason::EarlyRetry
    );
    assert_eq!(cache.loads(), 5);

    cli.write(&mut |tx| {
        let mut settings = tx.settings()?;
        settings.enabled = false;
        tx.set_settings(&settings)
    })
    .unwrap();
    assert_eq!(decide_cached(&mut store, &mut cache, &m), Reason::Disabled);
    assert_eq!(cache.loads(), 6);

    // Triplet writes by another process leave the configuration stamp alone.
    let key = TripletKey {
        client: "198.51.100.0/24".to_string(),
        sender: "x@y.example".to_string(),
        recipient: "u@local.example".to_string(),
    };
    let triplet = crate::store::Triplet {
        first_seen: 1,
        earliest_accept: 2,
        last_seen: 1,
        expires: 5000,
        pass_count: 0,
    };
    cli.write(&mut |tx| tx.put_triplet(&key, "198.51.100.0/24", &triplet))
        .unwrap();
    assert_eq!(decide_cached(&mut store, &mut cache, &m), Reason::Disabled);
    assert_eq!(cache.loads(), 6);
}

// Issue 5 (DESIGN.md §1, the store contract): the SQLite stamp stays put while only reading and takes
// a value never seen before after every kind of configuration write — list entries added and
// deleted, domain flags set and forgotten, settings rewritten.
#[test]
fn sqlite_stamp_changes_with_every_configuration_table() {
    fn stamp(store: &mut SqliteStore) -> i64 {
        let mut found = None;
        store
            .read(&mut |tx| {
                found = tx.config_stamp()?;
                Ok(())
            })
            .unwrap();
        found.expect("SQLite offers a configuration stamp")
    }
    type ConfigWrite = fn(&mut dyn Tx) -> Result<(), StoreError>;
    let dir = tempfile::TempDir::new().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
    let first = stamp(&mut store);
    assert_eq!(
        stamp(&mut store),
        first,
        "reading does not change the stamp"
    );
    let mut stamps = vec![first];
    let writes: [ConfigWrite; 6] = [
        |tx| tx.add_pattern(ListKind::Black, "", "*@spam.example"),
        |tx| tx.delete_pattern(ListKind::Black, "", "*@spam.example"),
        |tx| tx.set_domain_status("a.example", false),
        |tx| tx.set_domain_status("a.example", true),
        |tx| tx.delete_domain("a.example"),
        |tx| {
            let settings = tx.settings()?;
            tx.set_settings(&settings)
        },
    ];
    for write in writes {
        store.write(&mut |tx| write(tx)).unwrap();
        let now = stamp(&mut store);
        assert!(
            !stamps.contains(&now),
            "stamp {now} seen before: {stamps:?}"
        );
        stamps.push(now);
    }
}

// DESIGN.md §4 step 5 (auto-whitelist after `awl-count` distinct unexpired passed triplets): the
// mail path's count stops at the threshold, is exact below it, ignores expired and
// never-passed records, is served by the auto-whitelist index, and decides as before.
#[test]
fn awl_count_stops_at_the_threshold() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
    let network = "198.51.100.0/24";
    store
        .write(&mut |tx| {
            for i in 0..10 {
                let key = TripletKey {
                    client: network.to_string(),
                    sender: format!("s{i}@x.example"),
                    recipient: "u@local.example".to_string(),
                };
                let triplet = crate::store::Triplet {
                    first_seen: 100,
                    earliest_accept: 400,
                    last_seen: 500,
                    // One expired record and one that never passed among ten.
                    expires: if i == 0 { 900 } else { 5000 },
                    pass_count: if i == 1 { 0 } else { 1 },
                };
                tx.put_triplet(&key, network, &triplet)?;
            }
            Ok(())
        })
        .unwrap();
    let mut counts = Vec::new();
    store
        .read(&mut |tx| {
            counts = vec![
                tx.awl_passes(network, 1000)?,
                tx.awl_passes_up_to(network, 1000, 5)?,
                tx.awl_passes_up_to(network, 1000, 20)?,
                tx.awl_passes_up_to("203.0.113.0/24", 1000, 5)?,
            ];
            Ok(())
        })
        .unwrap();
    assert_eq!(counts, vec![8, 5, 8, 0]);
    let plan: Vec<String> = store
        .connection()
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            crate::store::sqlite::AWL_PASSES_UP_TO
        ))
        .unwrap()
        .query_map(rusqlite::params![network, 1000, 5], |row| row.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("triplets_awl")),
        "plan: {plan:?}"
    );
    let neighbour = message("198.51.100.77", "v@local.example");
    let outcome = check_message(&mut store, &neighbour, 1000).unwrap();
    assert_eq!(outcome.recipients[0].decision.reason, Reason::ClientAwl);
}

// DESIGN.md §4 step 6 inside one group-committed transaction: a later message of the batch sees
// the triplet an earlier one wrote (new, then early-retry; then a pass after the interval).
#[test]
fn batch_sees_its_own_writes_in_order() {
    let dir = tempfile::TempDir::new().unwrap();
    let mut store = SqliteStore::open(&dir.path().join("g.db")).unwrap();
    let first = message("192.0.2.1", "u@local.example");
    let neighbour = message("192.0.2.77", "u@local.example");
    let other = message("192.0.2.1", "v@local.example");
    let mut outcomes = Vec::new();
    store
        .write(&mut |tx| {
            outcomes = check_messages_in_tx(
                tx,
                &[
                    (&first, 1000),
                    (&neighbour, 1010),
                    (&other, 1020),
                    (&first, 1400),
                ],
            )?;
            Ok(())
        })
        .unwrap();
    let reasons: Vec<Reason> = outcomes
        .iter()
        .map(|o| o.recipients[0].decision.reason)
        .collect();
    assert_eq!(
        reasons,
        vec![
            Reason::New,
            Reason::EarlyRetry,
            Reason::New,
            Reason::TripletFound
        ]
    );
    assert_eq!(outcomes[3].verdict, Verdict::Pass);
    assert_eq!(outcomes[3].recipients[0].decision.delay, Some(400));
    // Committed: a later transaction sees the passed triplet.
    let again = check_message(&mut store, &first, 1500).unwrap();
    assert_eq!(again.recipients[0].decision.reason, Reason::TripletFound);
    assert_eq!(again.recipients[0].decision.delay, None);
}
