//! Issue 5: `greylisting-policyd` keeps its configuration (settings, compiled server lists,
//! per-domain flags, mailbox lists) between transactions, yet every change made with the
//! `grey_listing` CLI takes effect on the very next request, without a restart. Each test first
//! makes the server read (and cache) the item, changes it with the real CLI, then asks again on
//! the same connection. The real binaries on both stores (issue 7), loopback sockets.

use super::server::{Server, cli, request};
use crate::support::Backend;

const DEFER: &str = "action=DEFER_IF_PERMIT 4.7.1 Service unavailable - try again later";
const REJECT: &str = "action=REJECT 5.7.1 Command rejected";
const DUNNO: &str = "action=DUNNO";

// DESIGN.md §4 step 1 (checking off for the recipient's domain): a domain switched off with
// `-ud DOMAIN -status off` passes the next request for a recipient the server has already
// decided for (its domain flag was cached); switched on again, greylisting is back at once.
fn domain_switched_off_applies_to_the_next_request(backend: Backend) {
    let server = Server::start_in(backend, &[]);
    let mut c = server.connect();
    let r = |sender: &str| request("198.51.100.30", "unknown", sender, "u@cached.example", &[]);
    assert_eq!(c.ask(&r("a@one.example")), DEFER);
    assert_eq!(c.ask(&r("a@two.example")), DEFER);
    cli(&server.db, &["-ud", "cached.example", "-status", "off"]);
    assert_eq!(c.ask(&r("a@three.example")), DUNNO);
    server.wait_log("reason=disabled for domain, client_name=unknown, client_address=198.51.100.30, sender=a@three.example");
    cli(&server.db, &["-ud", "cached.example", "-status", "on"]);
    assert_eq!(c.ask(&r("a@four.example")), DEFER);
    server.wait_log(
        "reason=new, client_name=unknown, client_address=198.51.100.30, sender=a@four.example",
    );
}

// DESIGN.md §4 step 4 (the recipient's own white list, then its black list): an entry added with
// `-um MAILBOX -whitelist add:...` applies to the next request for that mailbox, whose (empty)
// lists the server had cached; a black-list entry added and deleted likewise.
fn mailbox_list_entries_apply_to_the_next_request(backend: Backend) {
    let server = Server::start_in(backend, &[]);
    let mut c = server.connect();
    let r = |sender: &str| {
        request(
            "198.51.100.31",
            "unknown",
            sender,
            "john@local.example",
            &[],
        )
    };
    assert_eq!(c.ask(&r("pal@friend.example")), DEFER);
    cli(
        &server.db,
        &[
            "-um",
            "john@local.example",
            "-whitelist",
            "add:*@friend.example",
        ],
    );
    assert_eq!(c.ask(&r("pal@friend.example")), DUNNO);
    server.wait_log("reason=user white list, client_name=unknown, client_address=198.51.100.31, sender=pal@friend.example");
    cli(
        &server.db,
        &[
            "-um",
            "john@local.example",
            "-blacklist",
            "add:*@foe.example",
        ],
    );
    assert_eq!(c.ask(&r("x@foe.example")), REJECT);
    server.wait_log("list type: black, from: x@foe.example, match string: *@foe.example");
    cli(
        &server.db,
        &[
            "-um",
            "john@local.example",
            "-blacklist",
            "del:*@foe.example",
        ],
    );
    assert_eq!(c.ask(&r("y@foe.example")), DEFER);
    server.wait_log(
        "reason=new, client_name=unknown, client_address=198.51.100.31, sender=y@foe.example",
    );
}

// DESIGN.md §4 step 3 and §1 (one store, no copies): a black domains pattern
// deleted with `-u -domains-blacklist del:...` stops rejecting on the very next request, though
// the server had compiled and cached the pattern; added back, it rejects again at once.
fn deleted_server_black_pattern_applies_to_the_next_request(backend: Backend) {
    let server = Server::start_in(backend, &[]);
    let mut c = server.connect();
    let r = |sender: &str| {
        request(
            "198.51.100.32",
            "host32.dsl.isp.example",
            sender,
            "u@local.example",
            &[],
        )
    };
    assert_eq!(c.ask(&r("a@one.example")), REJECT);
    cli(
        &server.db,
        &["-u", "-domains-blacklist", "del:dsl|broadband|hsd"],
    );
    assert_eq!(c.ask(&r("a@two.example")), DEFER);
    server.wait_log("reason=new, client_name=host32.dsl.isp.example, client_address=198.51.100.32, sender=a@two.example");
    cli(
        &server.db,
        &["-u", "-domains-blacklist", "add:dsl|broadband|hsd"],
    );
    assert_eq!(c.ask(&r("a@three.example")), REJECT);
}

// DESIGN.md §2 settings: a server-wide scalar changed with `-u` (here the grey interval) is used by
// the next request: a retry 2 minutes after the first attempt is early with the default 5
// minutes, and accepted once the interval is 1 minute.
fn changed_grey_interval_applies_to_the_next_request(backend: Backend) {
    let server = Server::start_in(backend, &["--allow-test-time"]);
    let mut c = server.connect();
    let t0: i64 = 1_700_000_000;
    let r = |t: i64| {
        request(
            "198.51.100.33",
            "unknown",
            "a@interval.example",
            "u@local.example",
            &[("policy_test_time", &t.to_string())],
        )
    };
    assert_eq!(c.ask(&r(t0)), DEFER);
    assert_eq!(c.ask(&r(t0 + 120)), DEFER);
    cli(&server.db, &["-u", "-grey-interval", "1"]);
    // The stored earliest-accept was fixed when the triplet was created (5 minutes), so a new
    // triplet shows the new interval.
    let r2 = |t: i64| {
        request(
            "198.51.100.33",
            "unknown",
            "b@interval.example",
            "u@local.example",
            &[("policy_test_time", &t.to_string())],
        )
    };
    assert_eq!(c.ask(&r2(t0 + 200)), DEFER);
    assert!(
        c.ask(&r2(t0 + 261))
            .starts_with("action=PREPEND X-Greylist: delayed 61 seconds")
    );
}

on_both_stores!(
    domain_switched_off_applies_to_the_next_request,
    mailbox_list_entries_apply_to_the_next_request,
    deleted_server_black_pattern_applies_to_the_next_request,
    changed_grey_interval_applies_to_the_next_request,
);
