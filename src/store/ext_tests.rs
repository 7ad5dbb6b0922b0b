//! [`StoreExt`]: values out of a transaction, errors and rollback unchanged; and the server's
//! durability settings on an SQLite connection.

use super::{SqliteStore, Store, StoreError, StoreExt, TripletKey};
use crate::config::ListKind;

fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::TempDir::new().expect("temporary directory");
    let store = SqliteStore::open(&dir.path().join("g.db")).expect("open");
    (dir, store)
}

#[test]
fn write_with_returns_the_value_and_commits() {
    let (_dir, mut store) = store();
    let added = store
        .write_with(|tx| {
            tx.add_pattern(ListKind::White, "", "*@a.example")?;
            Ok(tx.list(ListKind::White, "")?.len())
        })
        .expect("write");
    assert_eq!(added, 1);
    let dyn_store: &mut dyn Store = &mut store;
    let list = dyn_store
        .read_with(|tx| tx.list(ListKind::White, ""))
        .expect("read");
    assert_eq!(list, vec!["*@a.example".to_string()]);
}

#[test]
fn write_with_an_error_rolls_back_and_returns_it() {
    let (_dir, mut store) = store();
    let result: Result<(), StoreError> = store.write_with(|tx| {
        tx.add_pattern(ListKind::Black, "", "*@b.example")?;
        Err(StoreError::Refused("no".to_string()))
    });
    assert!(matches!(result, Err(StoreError::Refused(ref m)) if m == "no"));
    let key = TripletKey {
        client: "192.0.2.0/24".to_string(),
        sender: "s@b.example".to_string(),
        recipient: "r@c.example".to_string(),
    };
    let (list, triplet) = store
        .read_with(|tx| Ok((tx.list(ListKind::Black, "")?, tx.triplet(&key)?)))
        .expect("read");
    assert!(list.is_empty(), "rolled back: {list:?}");
    assert_eq!(triplet, None);
}

#[test]
fn set_durability_sets_both_pragmas() {
    let (_dir, store) = store();
    let read = |name: &str| -> i64 {
        store
            .connection()
            .pragma_query_value(None, name, |row| row.get(0))
            .expect("pragma")
    };
    store.set_durability(false, 1234).expect("normal");
    // SQLite numbers its modes: NORMAL is 1, FULL is 2.
    assert_eq!((read("synchronous"), read("wal_autocheckpoint")), (1, 1234));
    store.set_durability(true, 10_000).expect("full");
    assert_eq!(
        (read("synchronous"), read("wal_autocheckpoint")),
        (2, 10_000)
    );
}
