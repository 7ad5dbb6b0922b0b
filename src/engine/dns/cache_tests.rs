//! The store's cache of DNS answers as the engine uses it: real answers are kept for the next
//! message, missing answers are asked again, expired answers too.

use super::tests::{FakeDns, message, store, zones};
use super::*;
use crate::config::ListKind;
use crate::decision::Reason;

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
