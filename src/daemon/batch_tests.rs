//! Tests of the batch decider: group commit, the pool split by sender, reopening after panics.

use super::*;
use crate::store::{self, StoreError, StoreExt};

fn message(ip: &str, recipient: &str) -> Message {
    Message {
        client_ip: Some(ip.parse().expect("ip")),
        client_name: None,
        sender: "s@example.org".to_string(),
        recipients: vec![recipient.to_string()],
        authenticated: false,
        ..Message::default()
    }
}

fn triplets(db: &DbLocation) -> usize {
    let mut store = store::open(db).expect("open");
    store
        .read_with(|tx| Ok(tx.live_triplets(i64::MIN)?.len()))
        .expect("read")
}

// A panic inside the transaction fails the batch open (every request Err), rolls back what
// the batch wrote, leaves no lock behind, and the next batch is decided on a fresh
// connection — with one connection and with a pool.
#[test]
fn a_panic_in_the_transaction_rolls_back_and_the_next_batch_is_decided() {
    for connections in [1, 2] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = DbLocation::Sqlite(dir.path().join("g.db"));
        let mut log = Logger::stderr(crate::logging::Fallback::Stderr);
        let mut decider = BatchDecider::new(
            db.clone(),
            Synchronous::Normal,
            connections,
            engine::Component::Policyd,
            &mut log,
        );
        let ok = message("192.0.2.1", "u@example.com");
        let bad = message("192.0.2.2", PANIC_RECIPIENT);
        let decided = decider.decide(&[(&ok, 1_000), (&bad, 1_000)], &mut log);
        assert_eq!(decided.len(), 2);
        assert!(
            decided.iter().all(|d| d.as_ref().is_err_and(
                |e| matches!(e, DecideError::Panicked(m) if m.contains(PANIC_RECIPIENT))
            )),
            "{connections}: {decided:?}"
        );
        assert_eq!(triplets(&db), 0, "the panicked batch was rolled back");
        // Nothing holds the write lock: another connection writes at once.
        let mut other = store::open(&db).expect("open");
        other.write(&mut |_| Ok(())).expect("no lock left behind");
        drop(other);
        let next = message("192.0.2.3", "v@example.com");
        let decided = decider.decide(&[(&next, 1_000)], &mut log);
        assert_eq!(
            decided[0]
                .as_ref()
                .ok()
                .and_then(Checked::decided)
                .expect("decided")
                .verdict
                .as_str(),
            "defer"
        );
        assert_eq!(triplets(&db), 1);
    }
}

// Senders that share a triplet sender (DESIGN.md §4 normalisation) share a worker, so the
// PostgreSQL triplet lock (client, sender) is never wanted by two workers at once.
#[test]
fn normalised_senders_share_a_shard() {
    for workers in 1..=8 {
        assert_eq!(
            shard("Bob+news@Example.com", workers),
            shard("bob@example.com", workers)
        );
        assert_eq!(
            shard("prvs=1234567890=bob@example.com", workers),
            shard("bob@example.com", workers)
        );
        assert!(shard("anyone@example.org", workers) < workers);
    }
}

#[test]
fn a_failed_transaction_fails_every_request_of_its_part() {
    let spread = spread(Err(DecideError::Unavailable), 3);
    assert_eq!(spread.len(), 3);
    assert!(
        spread
            .iter()
            .all(|d| matches!(d, Err(DecideError::Unavailable)))
    );
}

// A pool decides a batch on several connections and returns the outcomes in request order.
#[test]
fn pool_answers_in_request_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = DbLocation::Sqlite(dir.path().join("g.db"));
    let mut log = Logger::stderr(crate::logging::Fallback::Stderr);
    let mut decider = BatchDecider::new(
        db,
        Synchronous::Normal,
        3,
        engine::Component::Policyd,
        &mut log,
    );
    let messages: Vec<Message> = (0..12)
        .map(|i| Message {
            client_ip: Some(format!("192.0.2.{i}").parse().expect("ip")),
            client_name: None,
            sender: format!("s{}@example.org", ["a", "b", "c", "d"][i % 4]),
            recipients: vec![format!("r{i}@example.com")],
            authenticated: i % 3 == 0,
            ..Message::default()
        })
        .collect();
    let batch: Vec<(&Message, i64)> = messages.iter().map(|m| (m, 1_000)).collect();
    let decided = decider.decide(&batch, &mut log);
    assert_eq!(decided.len(), 12);
    for (i, d) in decided.iter().enumerate() {
        let outcome = d.as_ref().ok().and_then(Checked::decided).expect("decided");
        assert_eq!(outcome.recipients[0].recipient, format!("r{i}@example.com"));
        let expected = if i % 3 == 0 { "pass" } else { "defer" };
        assert_eq!(outcome.verdict.as_str(), expected, "request {i}");
    }
}

// The reasons a request could not be decided read exactly as they always did: they end up in
// the `action=pass, reason=error: <why>` log line.
#[test]
fn undecided_reasons_read_exactly() {
    let missing = spread(Ok(Vec::new()), 2);
    assert_eq!(missing.len(), 2);
    for decided in &missing {
        assert_eq!(
            decided.as_ref().err().map(ToString::to_string).as_deref(),
            Some("missing outcome")
        );
    }
    // A database that cannot be opened (a regular file where its directory should be).
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"not a directory").expect("write");
    let mut log = Logger::stderr(crate::logging::Fallback::Stderr);
    for connections in [1, 2] {
        let mut decider = BatchDecider::new(
            DbLocation::Sqlite(blocker.join("g.db")),
            Synchronous::Normal,
            connections,
            engine::Component::Policyd,
            &mut log,
        );
        let request = message("192.0.2.1", "u@example.com");
        let decided = decider.decide(&[(&request, 1_000)], &mut log);
        assert_eq!(
            decided[0]
                .as_ref()
                .err()
                .map(ToString::to_string)
                .as_deref(),
            Some("database unavailable"),
            "{connections}"
        );
    }
}

// A store error inside the transaction is the store's own message, word for word.
#[test]
fn a_store_error_in_the_transaction_reads_as_the_store_wrote_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("g.db");
    let mut log = Logger::stderr(crate::logging::Fallback::Stderr);
    let mut decider = BatchDecider::new(
        DbLocation::Sqlite(path.clone()),
        Synchronous::Normal,
        1,
        engine::Component::Policyd,
        &mut log,
    );
    let request = message("192.0.2.1", "u@example.com");
    assert!(decider.decide(&[(&request, 1_000)], &mut log)[0].is_ok());
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute_batch("DROP TABLE triplets")
        .expect("drop");
    let decided = decider.decide(&[(&request, 2_000)], &mut log);
    let why = decided[0].as_ref().err().map(ToString::to_string);
    assert_eq!(
        why.as_deref(),
        Some(format!("database {}: no such table: triplets", path.display()).as_str()),
        "{decided:?}"
    );
    // The typed error still holds what SQLite said, for whoever wants more than the text.
    let Err(DecideError::Store(store)) = &decided[0] else {
        panic!("not a store error: {decided:?}");
    };
    let StoreError::Sqlite { source, .. } = store.as_ref() else {
        panic!("not an SQLite error: {store:?}");
    };
    assert!(source.to_string().contains("no such table"), "{source}");
}
