//! `greylisting-filter` in Plesk mail-handler mode (DESIGN.md §5), driven as a real process on a
//! temporary database with virtual time.

use crate::support::Backend;
use crate::support::filter::{PLAIN_MESSAGE, Sandbox, T0};

const ALICE: &str = "alice@sender.example";
const JOHN: &str = "john@local.example";

fn new_triplet_defers_then_passes_after_the_interval(backend: Backend) {
    // DESIGN.md §5 verdict protocol: LOG lines, then DEFER (exit 2) / SKIP (exit 1); DESIGN.md §4 step 6.
    let sb = Sandbox::on(backend);
    let run = sb.handle(T0, ALICE, JOHN);
    run.assert_verdict("DEFER");
    assert_eq!(
        run.logs(),
        vec![
            "Starting greylisting filter...",
            "action=defer, reason=new, client_name=mx.sender.example, client_address=198.51.100.7, sender=alice@sender.example, recipient=john@local.example",
        ]
    );
    let run = sb.handle(T0 + 299, ALICE, JOHN);
    run.assert_verdict("DEFER");
    assert!(run.logged("reason=early-retry (1s missing)"), "{run:?}");
    let run = sb.handle(T0 + 300, ALICE, JOHN);
    run.assert_verdict("SKIP");
    assert!(
        run.logged("action=pass, reason=triplet found, delay=300, client_name=mx.sender.example"),
        "{run:?}"
    );
}

fn senders_and_recipients_compare_case_insensitively(backend: Backend) {
    // DESIGN.md §4: the triplet's sender and recipient are lower-cased.
    let sb = Sandbox::on(backend);
    sb.handle(T0, "Alice@Sender.Example", "JOHN@local.example")
        .assert_verdict("DEFER");
    let run = sb.handle(T0 + 400, "alice@SENDER.example", "john@LOCAL.EXAMPLE");
    run.assert_verdict("SKIP");
    assert!(run.logged("reason=triplet found"));
    let rows = sb.triplets();
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].1.as_str(), rows[0].2.as_str()), (ALICE, JOHN));
    // DESIGN.md §4 client key: the verified server name mx.sender.example groups by its registrable
    // domain (group-by-host-domain is on by default).
    assert_eq!(rows[0].0, "sender.example");
}

fn bounce_with_empty_sender_is_greylisted(backend: Backend) {
    // DESIGN.md §5: the sender is an empty argument for bounces.
    let sb = Sandbox::on(backend);
    let run = sb.handle(T0, "", JOHN);
    run.assert_verdict("DEFER");
    assert!(run.logged("sender=, recipient=john@local.example"));
    sb.handle(T0 + 300, "", JOHN).assert_verdict("SKIP");
}

fn client_facts_from_received_headers(backend: Backend) {
    // DESIGN.md §5: the topmost Received header, qmail-smtpd and Postfix forms; host names are then
    // matched against the domain lists (a `dsl` host is rejected by the default black list).
    let sb = Sandbox::on(backend);
    let cases = [
        // qmail-smtpd with a host name; qmail-queue's own line on top is skipped.
        (
            "Received: (qmail 4711 invoked from network); 1 Jan 2027\nReceived: from host-dsl-9.isp.example (HELO pc) (192.0.2.9)\n  by mail.local.example with SMTP; 1 Jan 2027\n\nbody\n",
            "REJECT",
            "list type: black, from: host-dsl-9.isp.example, match string: dsl|broadband|hsd",
        ),
        // qmail-smtpd without a verified name: greylisted by address.
        (
            "Received: from unknown (HELO host-dsl-9.isp.example) (192.0.2.10)\n  by mail.local.example with SMTP; 1 Jan 2027\n\nbody\n",
            "DEFER",
            "client_name=unknown, client_address=192.0.2.10",
        ),
        // Postfix, TLS and CRLF line ends.
        (
            "Received: from helo.example (mail-qk1.google.com [2001:db8::25])\r\n\t(using TLSv1.3) by mx.local.example (Postfix) with ESMTPS id 1\r\n\r\nbody\r\n",
            "SKIP",
            "list type: white, from: mail-qk1.google.com, match string: *google.com",
        ),
        // Only the topmost Received counts.
        (
            "Received: from mx.sender.example (HELO mx) (198.51.100.70)\n by h with SMTP; x\nReceived: from ppp-1.isp.example (ppp-1.isp.example [192.0.2.1]) by relay\n\nbody\n",
            "DEFER",
            "client_name=mx.sender.example, client_address=198.51.100.70",
        ),
    ];
    for (message, verdict, log) in cases {
        let run = sb.handler(T0, &[], &["ctx", ALICE, JOHN], message);
        run.assert_verdict(verdict);
        assert!(run.logged(log), "expected {log:?} in {run:#?}");
    }
}

fn environment_facts_beat_the_received_header(backend: Backend) {
    // DESIGN.md §5: TCPREMOTEIP/TCPREMOTEHOST first.
    let sb = Sandbox::on(backend);
    let message =
        "Received: from host-dsl-9.isp.example (HELO pc) (192.0.2.9)\n by h with SMTP; x\n\nbody\n";
    let run = sb.handler(
        T0,
        &[
            ("TCPREMOTEIP", "203.0.113.5"),
            ("TCPREMOTEHOST", "out.mail.yahoo.com"),
        ],
        &["ctx", ALICE, JOHN],
        message,
    );
    run.assert_verdict("SKIP");
    assert!(run.logged("list type: white, from: out.mail.yahoo.com, match string: *yahoo.com"));
    assert!(run.logged("client_address=203.0.113.5"));
}

fn authenticated_and_relay_clients_pass(backend: Backend) {
    // DESIGN.md §5: RELAYCLIENT set even empty, SMTPAUTHUSER/AUTHUSER non-empty, or ESMTPA/ESMTPSA.
    let sb = Sandbox::on(backend);
    for env in [
        &[("RELAYCLIENT", "")][..],
        &[("SMTPAUTHUSER", "bob")][..],
        &[("AUTHUSER", "bob")][..],
        &[("TCPREMOTEIP", "192.0.2.77"), ("RELAYCLIENT", "")][..],
    ] {
        let run = sb.handler(T0, env, &["ctx", ALICE, JOHN], PLAIN_MESSAGE);
        run.assert_verdict("SKIP");
        assert!(
            run.logged("action=pass, reason=authenticated"),
            "{env:?}: {run:#?}"
        );
    }
    for with in ["ESMTPA", "ESMTPSA", "esmtpsa"] {
        let message = format!(
            "Received: from unknown (HELO pc) (198.51.100.8)\n  by mail.local.example with {with}; 1 Jan 2027\n\nbody\n"
        );
        let run = sb.handler(T0, &[], &["ctx", ALICE, JOHN], &message);
        run.assert_verdict("SKIP");
        assert!(run.logged("reason=authenticated"), "{with}");
    }
    // An empty SMTPAUTHUSER is not authentication.
    let run = sb.handler(
        T0,
        &[("SMTPAUTHUSER", "")],
        &["ctx", ALICE, JOHN],
        PLAIN_MESSAGE,
    );
    run.assert_verdict("DEFER");
    // Plain ESMTPS is not authentication.
    let message = "Received: from unknown (HELO pc) (198.51.100.9)\n by h with ESMTPS; x\n\nbody\n";
    sb.handler(T0, &[], &["ctx", ALICE, JOHN], message)
        .assert_verdict("DEFER");
}

fn no_client_address_is_a_local_injection(backend: Backend) {
    // DESIGN.md §4 step 2: no client IP → pass.
    let sb = Sandbox::on(backend);
    let run = sb.handler(T0, &[], &["ctx", ALICE, JOHN], "Subject: local\n\nbody\n");
    run.assert_verdict("SKIP");
    assert!(run.logged("reason=no client address, client_name=unknown, client_address=none"));
    // Too few arguments: nothing to decide, the mail passes.
    sb.handler(T0, &[], &["ctx"], PLAIN_MESSAGE)
        .assert_verdict("SKIP");
}

fn multi_recipient_rule_end_to_end(backend: Backend) {
    // DESIGN.md §4: deferred if any recipient defers, rejected only if all reject, otherwise passed;
    // all triplets are recorded.
    let sb = Sandbox::on(backend);
    let (a, b, c) = ("a@local.example", "b@local.example", "c@local.example");
    sb.cli(&["-um", a, "-blacklist", "add:*@sender.example"]);
    sb.cli(&["-um", b, "-blacklist", "add:alice@*"]);
    sb.cli(&["-um", c, "-whitelist", "add:*@sender.example"]);
    sb.handler(T0, &[], &["ctx", ALICE, a, b], PLAIN_MESSAGE)
        .assert_verdict("REJECT");
    sb.handler(T0, &[], &["ctx", ALICE, a, c], PLAIN_MESSAGE)
        .assert_verdict("SKIP");
    let run = sb.handler(T0, &[], &["ctx", ALICE, a, c, JOHN], PLAIN_MESSAGE);
    run.assert_verdict("DEFER");
    assert_eq!(
        run.logs()
            .iter()
            .filter(|l| l.starts_with("action="))
            .count(),
        3
    );
    assert!(
        run.logged("list type: black, from: alice@sender.example, match string: *@sender.example")
    );
    assert!(
        run.logged("list type: white, from: alice@sender.example, match string: *@sender.example")
    );
    let rows = sb.triplets();
    assert_eq!(
        rows.len(),
        1,
        "only greylisted recipients have triplets: {rows:?}"
    );
    assert_eq!(rows[0].2, JOHN);
}

fn database_location_from_the_configuration_file(backend: Backend) {
    // DESIGN.md §1/§5: Plesk gives handlers a bare environment; `db =` in the configuration file
    // (a path, or on several MX hosts the shared database's URL).
    let sb = Sandbox::on(backend);
    let sqlite_file = sb.path("from-conf/greylist.db");
    let location = match backend {
        Backend::Sqlite => sqlite_file.to_str().unwrap().to_string(),
        Backend::Postgres => sb.location(),
    };
    let conf = sb.path("grey_listing.conf");
    std::fs::write(&conf, format!("# test\ndb = {location}\n")).unwrap();
    let mut cmd = sb.filter(T0);
    cmd.env_remove("GREY_LISTING_DB")
        .env("GREY_LISTING_CONF", &conf)
        .args(["ctx", ALICE, JOHN]);
    crate::support::filter::handler_output(cmd, PLAIN_MESSAGE.as_bytes()).assert_verdict("DEFER");
    match backend {
        Backend::Sqlite => {
            assert!(
                sqlite_file.exists(),
                "the filter must have created the configured database"
            );
            assert!(!sb.db.exists());
        }
        // The only way to the test's database was the file: the triplet is stored there.
        Backend::Postgres => assert_eq!(sb.triplets().len(), 1),
    }
}

fn cli_changes_take_effect_immediately(backend: Backend) {
    // DESIGN.md §1: one store, no copies: each filter run sees the CLI's last write.
    let sb = Sandbox::on(backend);
    sb.handle(T0, ALICE, JOHN).assert_verdict("DEFER");
    sb.cli(&["-u", "-status", "off"]);
    let run = sb.handle(T0 + 1, ALICE, JOHN);
    run.assert_verdict("SKIP");
    assert!(run.logged("reason=disabled"));
    sb.cli(&["-u", "-status", "on"]);
    sb.cli(&["-ud", "local.example", "-status", "off"]);
    sb.handle(T0 + 2, ALICE, JOHN).assert_verdict("SKIP");
    sb.cli(&["-ud", "local.example", "-status", "on"]);
    sb.handle(T0 + 3, ALICE, JOHN).assert_verdict("DEFER");
    sb.cli(&["-u", "-blacklist", "add:*@sender.example"]);
    sb.handle(T0 + 4, ALICE, JOHN).assert_verdict("REJECT");
    sb.cli(&["-u", "-blacklist", "del:*@sender.example"]);
    sb.cli(&["-u", "-grey-interval", "1"]);
    // The stored earliest-accept (T0 + 300) still governs this triplet...
    sb.handle(T0 + 200, ALICE, JOHN).assert_verdict("DEFER");
    // ...while a new triplet gets the new 1-minute interval.
    sb.handle(T0 + 200, "bob@sender.example", JOHN)
        .assert_verdict("DEFER");
    sb.handle(T0 + 260, "bob@sender.example", JOHN)
        .assert_verdict("SKIP");
}

fn seed_000_microsoft_outbound_pool(backend: Backend) {
    // DESIGN.md §2 defaults and Plesk report: `pool` is not a default black pattern; an admin's `*pool*`
    // rejects even a white-listed sender; a white host pattern beats it.
    let sb = Sandbox::on(backend);
    let message = "Received: from mail.bigfish.com (db3outboundpool.messaging.microsoft.com [40.107.1.2])\n by mx.local.example (Postfix) with ESMTPS id 1\n\nbody\n";
    let run = |sb: &Sandbox| sb.handler(T0, &[], &["ctx", "someone@bigfish.com", JOHN], message);
    run(&sb).assert_verdict("DEFER");
    sb.cli(&[
        "-u",
        "-domains-blacklist",
        "add:*pool*",
        "-whitelist",
        "add:*@bigfish.com",
    ]);
    let rejected = run(&sb);
    rejected.assert_verdict("REJECT");
    assert!(rejected.logged(
        "list type: black, from: db3outboundpool.messaging.microsoft.com, match string: *pool*"
    ));
    sb.cli(&["-u", "-domains-whitelist", "add:*messaging.microsoft.com"]);
    run(&sb).assert_verdict("SKIP");
}

fn scenario_one_triplet_through_its_life(backend: Backend) {
    // DESIGN.md §4 step 6 with virtual time: new → early retry (without, then with penalty) →
    // accepted → refreshed → expired → new.
    let sb = Sandbox::on(backend);
    let expire = 51_840 * 60;
    let row = |sb: &Sandbox| {
        let rows = sb.triplets();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        (r.3, r.4, r.5, r.6, r.7)
    };
    // new: earliest-accept = now + 5 min.
    sb.handle(T0, ALICE, JOHN).assert_verdict("DEFER");
    assert_eq!(row(&sb), (T0, T0 + 300, T0, T0 + expire, 0));
    // early retry, penalties off: earliest-accept unchanged.
    let run = sb.handle(T0 + 60, ALICE, JOHN);
    run.assert_verdict("DEFER");
    assert!(run.logged("reason=early-retry (240s missing)"));
    assert_eq!(row(&sb), (T0, T0 + 300, T0 + 60, T0 + expire, 0));
    // early retry, penalties on: + 2 min each time.
    sb.cli(&["-u", "-penalty-status", "true"]);
    let run = sb.handle(T0 + 120, ALICE, JOHN);
    run.assert_verdict("DEFER");
    assert!(run.logged("reason=early-retry (300s missing)"));
    assert_eq!(row(&sb).1, T0 + 420);
    sb.handle(T0 + 400, ALICE, JOHN).assert_verdict("DEFER");
    assert_eq!(row(&sb).1, T0 + 540);
    // accepted: delay since first seen, expiry from now.
    let run = sb.handle(T0 + 540, ALICE, JOHN);
    run.assert_verdict("SKIP");
    assert!(run.logged("reason=triplet found, delay=540"));
    assert_eq!(row(&sb), (T0, T0 + 540, T0 + 540, T0 + 540 + expire, 1));
    // refreshed: a later pass moves the expiry, no delay logged.
    let later = T0 + 10 * 86_400;
    let run = sb.handle(later, ALICE, JOHN);
    run.assert_verdict("SKIP");
    assert!(run.logged("reason=triplet found, client_name"));
    assert_eq!(row(&sb), (T0, T0 + 540, later, later + expire, 2));
    // expired: one second past the expiry it is new again.
    let expired = later + expire;
    let run = sb.handle(expired, ALICE, JOHN);
    run.assert_verdict("DEFER");
    assert!(run.logged("reason=new"));
    assert_eq!(
        row(&sb),
        (expired, expired + 300, expired, expired + expire, 0)
    );
}

fn expired_triplets_are_purged_by_the_filter(backend: Backend) {
    // DESIGN.md §4 via docs/filter.md: a filter run (here forced every run) deletes expired rows.
    let sb = Sandbox::on(backend);
    sb.handle(T0, ALICE, JOHN).assert_verdict("DEFER");
    sb.handle(T0, "bob@sender.example", JOHN)
        .assert_verdict("DEFER");
    sb.cli(&["-u", "-expire-interval", "6"]);
    // The expiry of existing rows was fixed when written; a much later run sees them expired.
    let later = T0 + 51_840 * 60 + 1;
    sb.handle(later - 2, "carol@sender.example", JOHN)
        .assert_verdict("DEFER");
    assert_eq!(sb.triplets().len(), 3);
    let mut cmd = sb.filter(later);
    cmd.env("GREY_LISTING_PURGE_ONE_IN", "1")
        .args(["ctx", "dave@sender.example", JOHN]);
    let run = crate::support::filter::handler_output(cmd, PLAIN_MESSAGE.as_bytes());
    run.assert_verdict("DEFER");
    assert!(run.logged("purged 2 expired triplets"), "{run:#?}");
    let senders: Vec<String> = sb.triplets().into_iter().map(|r| r.1).collect();
    assert_eq!(senders, vec!["carol@sender.example", "dave@sender.example"]);
}

#[test]
fn write_ahead_log_stays_bounded_across_filter_runs() {
    // DESIGN.md §1 WAL store, one short filter process per message: the log is checkpointed and
    // removed once it passes 512 KiB (src/store/sqlite.rs), so it cannot grow without bound.
    // Each run appends at least two 4 KiB pages, so 200 runs would leave >= 1.6 MB unbounded.
    let sb = Sandbox::new();
    let wal = sb.db.with_file_name("greylist.db-wal");
    let mut largest = 0;
    for i in 0..200 {
        let recipient = format!("user{i}@local.example");
        sb.handle(T0, ALICE, &recipient).assert_verdict("DEFER");
        largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    assert!(largest > 0, "the WAL is kept between runs");
    assert!(largest < 600 * 1024, "WAL grew to {largest} bytes");
    assert_eq!(sb.triplets().len(), 200);
}

#[test]
fn handler_reads_a_large_message_to_the_end() {
    // DESIGN.md §5: the message on stdin is read to the end (the caller must never see a broken
    // pipe), however large; the decision uses its headers.
    use std::io::Write;
    use std::process::Stdio;
    let sb = Sandbox::new();
    let mut message = PLAIN_MESSAGE.as_bytes().to_vec();
    message.extend(std::iter::repeat_n(b'x', 5 << 20));
    let mut child = sb
        .filter(T0)
        .args(["ctx", ALICE, JOHN])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let written = std::thread::spawn(move || stdin.write_all(&message));
    let out = child.wait_with_output().unwrap();
    written
        .join()
        .unwrap()
        .expect("the filter must read all of stdin");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).ends_with("DEFER\n"));
}

#[test]
fn lone_help_prints_the_help_and_touches_no_database() {
    // Issue 8 / DESIGN.md §5: `--help` as the ONLY argument prints the help (exit 0); a handler call
    // always has a context, a sender and a recipient, so it cannot be mistaken for one.
    let sb = Sandbox::new();
    let output = sb.filter(T0).arg("--help").output().unwrap();
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).unwrap();
    assert!(
        help.contains("greylisting-filter <CONTEXT> <SENDER> <RECIPIENT>..."),
        "{help}"
    );
    assert!(help.contains("GREY_QMAIL_QUEUE"), "{help}");
    assert!(output.stderr.is_empty());
    assert!(!sb.db.exists());
}

#[test]
fn a_sender_that_looks_like_an_option_is_mail() {
    // DESIGN.md §5: no getopt in handler mode — `--help` as the sender is greylisted like any sender.
    let sb = Sandbox::new();
    sb.handle(T0, "--help", JOHN).assert_verdict("DEFER");
    sb.handle(T0 + 300, "--help", JOHN).assert_verdict("SKIP");
}

on_both_stores!(
    database_location_from_the_configuration_file,
    new_triplet_defers_then_passes_after_the_interval,
    senders_and_recipients_compare_case_insensitively,
    bounce_with_empty_sender_is_greylisted,
    client_facts_from_received_headers,
    environment_facts_beat_the_received_header,
    authenticated_and_relay_clients_pass,
    no_client_address_is_a_local_injection,
    multi_recipient_rule_end_to_end,
    cli_changes_take_effect_immediately,
    seed_000_microsoft_outbound_pool,
    scenario_one_triplet_through_its_life,
    expired_triplets_are_purged_by_the_filter,
);
