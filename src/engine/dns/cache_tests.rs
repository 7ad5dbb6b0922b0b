//! The store's cache of DNS answers as the engine uses it: real answers are kept for the next
//! message, missing answers are asked again, expired answers too.

use super::tests::{FakeDns, message, store, zones};
use super::*;
use crate::config::ListKind;
use crate::decision::Reason;
use crate::store::SqliteStore;

#[test]
fn answers_are_cached_for_the_next_message_and_no_answers_are_not() {
    let (_dir, mut store) = store();
    store
        .write(&mut |tx| {
            let mut settings = tx.settings()?;
            settings.greylist_clients = GreylistClients::Suspicious;
            tx.set_settings(&settings)?;
            tx.add_pattern(ListKind::DnswlZones, "", "wl.example")?;
            tx.add_pattern(ListKind::DnsblZones, "", "bl.example")
        })
        .unwrap();
    let dns = FakeDns::new(vec![
        ("wl.example", ZoneResult::NotListed),
        ("bl.example", ZoneResult::NoAnswer),
    ]);
    let name = "mail.sender.example.com";
    let first = message(Some(name), true);
    let (outcome, asked) =
        check_message_dns(&mut store, Component::Filter, &first, 1_000, &dns).unwrap();
    // The name confirmed and embeds nothing; the DNSBL did not answer (not listed): trusted.
    assert_eq!(outcome.recipients[0].decision.reason, Reason::TrustedClient);
    assert_eq!(asked.unanswered_zones().collect::<Vec<_>>(), ["bl.example"]);
    assert_eq!(
        *dns.asked.borrow(),
        vec![(zones(&["wl.example", "bl.example"]), Some(name.to_string()))]
    );
    // The next message asks only what had no answer.
    check_message_dns(&mut store, Component::Filter, &first, 1_100, &dns).unwrap();
    assert_eq!(
        dns.asked.borrow().last().cloned(),
        Some((zones(&["bl.example"]), None))
    );
    // An hour later the cached answers are gone and everything is asked again.
    check_message_dns(&mut store, Component::Filter, &first, 1_000 + 3_601, &dns).unwrap();
    assert_eq!(
        dns.asked.borrow().last().cloned(),
        Some((zones(&["wl.example", "bl.example"]), Some(name.to_string())))
    );
    assert_eq!(dns.calls(), 3);
}

/// A store that counts the transactions run on it.
struct Counting {
    inner: SqliteStore,
    writes: usize,
    reads: usize,
}

impl Store for Counting {
    fn write(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.writes += 1;
        self.inner.write(f)
    }

    fn read(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Tx) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.reads += 1;
        self.inner.read(f)
    }

    fn describe(&self) -> String {
        self.inner.describe()
    }
}

// Every filter run pays for its transactions: when nothing is left to ask DNS (no zones, or a
// warm cache) the message is planned and decided in one write transaction; only a lookup splits
// it in two, with the lookup between them and no transaction open (another connection writes
// meanwhile). The decisions are those of the two-transaction flow.
#[test]
fn one_transaction_unless_dns_is_asked() {
    let (dir, inner) = store();
    let mut store = Counting {
        inner,
        writes: 0,
        reads: 0,
    };
    let dns = FakeDns::new(vec![(
        "bl.example",
        ZoneResult::Listed(std::net::Ipv4Addr::new(127, 0, 0, 2)),
    )]);
    let transactions = |store: &mut Counting, m: &Message, now| {
        let (writes, reads) = (store.writes, store.reads);
        let (outcome, _) = check_message_dns(store, Component::Filter, m, now, &dns).unwrap();
        (
            outcome.recipients[0].decision.reason,
            store.writes - writes,
            store.reads - reads,
        )
    };
    let verified = message(Some("mail.sender.example.com"), false);
    // `all` mode, no zones: one write transaction, nothing asked.
    assert_eq!(
        transactions(&mut store, &verified, 1_000),
        (Reason::New, 1, 0)
    );
    store
        .write(&mut |tx| {
            let mut settings = tx.settings()?;
            settings.greylist_clients = GreylistClients::Suspicious;
            tx.set_settings(&settings)?;
            tx.add_pattern(ListKind::DnsblZones, "", "bl.example")
        })
        .unwrap();
    *dns.writer.borrow_mut() = Some(SqliteStore::open(&dir.path().join("g.db")).unwrap());
    // Cold cache: two write transactions around the lookup; the listing makes the client
    // suspicious, so the triplet found at 1,000 decides.
    assert_eq!(
        transactions(&mut store, &verified, 1_400),
        (Reason::TripletFound, 2, 0)
    );
    assert_eq!(dns.calls(), 1);
    // Warm cache: one transaction again, nothing asked, the cached listing still counts.
    let other = Message {
        sender: "b@sender.example.com".to_string(),
        ..verified.clone()
    };
    assert_eq!(transactions(&mut store, &other, 1_500), (Reason::New, 1, 0));
    assert_eq!(dns.calls(), 1);
}
