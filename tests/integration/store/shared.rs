//! One SQLite database shared by the policy server, the milter and the filter (a site moving
//! from one to the other, or running them on different MTA services): a triplet one of them
//! deferred is the triplet the others find on the retry, with the first attempt's time. Each
//! binary runs as itself on one temporary database: the policy server on test time
//! (`policy_test_time`), the filter on `GREY_LISTING_NOW`, the milter on the real clock.

use std::path::Path;
use std::process::Command;

use crate::policyd::server::{self, Server, cli, live_triplets, request};
use crate::support::filter::{HandlerRun, PLAIN_MESSAGE, filter_at, handler_output};
use crate::support::milter::{DEFER as MILTER_DEFER, Milter, Mta, reply_text};
use crate::support::stored_triplets;

/// The milter's answer to a recipient that passes.
const CONTINUE: (u8, Vec<u8>) = (b'c', Vec::new());

/// Both daemons on the database `db` in `dir` (created first by the CLI, as an admin would),
/// the policy server honouring `policy_test_time`.
pub(crate) fn both_daemons(db: &Path) -> (Milter, Server) {
    let db = db.to_str().unwrap();
    cli(db, &["-i"]);
    let milter = Milter::start_on(db, "127.0.0.1:0", &[]);
    let server = Server::start_on(db, "127.0.0.1:0", &["--allow-test-time"]);
    (milter, server)
}

/// The filter in handler mode at virtual time `now`, for a client qmail-smtpd's environment
/// describes (`TCPREMOTEHOST` is a verified name), to `U@Local.Example`.
pub(crate) fn filter_run(db: &Path, now: i64, ip: &str, host: &str, sender: &str) -> HandlerRun {
    filter_run_to(db, now, [ip, host, sender, "U@Local.Example"])
}

/// [`filter_run`] for the client address, host name, sender and recipient in `facts`.
fn filter_run_to(db: &Path, now: i64, facts: [&str; 4]) -> HandlerRun {
    handler_output(filter_cmd(db, now, facts), PLAIN_MESSAGE.as_bytes())
}

/// The command [`filter_run_to`] runs (no purges unless the caller sets their odds).
pub(crate) fn filter_cmd(db: &Path, now: i64, facts: [&str; 4]) -> Command {
    let [ip, host, sender, recipient] = facts;
    let mut cmd = filter_at(db.to_str().unwrap(), now);
    cmd.env("TCPREMOTEIP", ip)
        .env("TCPREMOTEHOST", host)
        .args(["ctx", sender, recipient]);
    cmd
}

/// The one stored triplet: its client key, sender, recipient and first-seen time.
fn only_triplet(db: &Path) -> (String, String, String, i64, u64) {
    let rows = stored_triplets(db.to_str().unwrap());
    assert_eq!(rows.len(), 1, "one triplet for all three binaries");
    let row = &rows[0];
    (
        row.key.client.clone(),
        row.key.sender.clone(),
        row.key.recipient.clone(),
        row.triplet.first_seen,
        row.triplet.pass_count,
    )
}

/// The milter's end of message for a message whose recipients passed: the `X-Greylist` header
/// value, if it added one.
fn end_of_message(mta: &mut Mta) -> Option<String> {
    mta.send(b'T', b"");
    mta.send(b'E', b"");
    let (code, data) = mta.reply().expect("end-of-message reply");
    if code == b'c' {
        return None;
    }
    assert_eq!(code, b'h', "an added header or CONTINUE");
    assert_eq!(mta.reply(), Some(CONTINUE));
    let header = String::from_utf8(data).unwrap();
    Some(
        header
            .strip_prefix("X-Greylist\0")
            .unwrap()
            .trim_end_matches('\0')
            .to_string(),
    )
}

/// The delay in `delayed <N> seconds by grey_listing at mx.test; <date>`.
fn delay_of(value: &str) -> i64 {
    let rest = value
        .strip_prefix("delayed ")
        .unwrap_or_else(|| panic!("not an X-Greylist value: {value:?}"));
    let (seconds, tail) = rest.split_once(' ').unwrap();
    assert!(
        tail.starts_with("seconds by grey_listing at mx.test; "),
        "{value:?}"
    );
    seconds.parse().unwrap()
}

// The milter defers a new triplet; the filter, asked for a retry from another server of the
// same sender domain a minute later, finds it (an early retry, not a new triplet); the policy
// server passes the retry after the grey interval with the delay counted from the milter's
// first attempt; afterwards the filter passes it as a known triplet. One row throughout,
// written by all three.
#[test]
fn a_triplet_the_milter_deferred_passes_on_the_policy_server_and_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (milter, server) = both_daemons(&db);

    let mut mta = milter.connect();
    Mta::start_message(
        "mx1.sender.example",
        b'4',
        "198.51.100.7",
        "<Alice+news@Sender.Example>",
        &mut mta,
    );
    assert_eq!(reply_text(&mta.rcpt("<u@local.example>")), MILTER_DEFER);
    milter.wait_log("action=defer, reason=new, client_name=mx1.sender.example");
    let (client, sender, recipient, first_seen, passes) = only_triplet(&db);
    assert_eq!(
        (client.as_str(), sender.as_str(), recipient.as_str(), passes),
        (
            "sender.example",
            "alice@sender.example",
            "u@local.example",
            0
        )
    );

    // Another server of the same provider, another network: the same client key.
    let early = filter_run(
        &db,
        first_seen + 60,
        "203.0.113.9",
        "mx3.sender.example",
        "alice@sender.example",
    );
    early.assert_verdict("DEFER");
    assert!(
        early.logged("reason=early-retry (240s missing)"),
        "{early:#?}"
    );

    let mut c = server.connect();
    let retry = request(
        "192.0.2.44",
        "mx2.sender.example",
        "alice+other@sender.example",
        "U@local.example",
        &[("policy_test_time", &(first_seen + 400).to_string())],
    );
    let reply = c.ask(&retry);
    assert!(
        reply.starts_with(
            "action=PREPEND X-Greylist: delayed 400 seconds by grey_listing at mx.test; "
        ),
        "{reply}"
    );
    server.wait_log("action=pass, reason=triplet found, delay=400, client_name=mx2.sender.example");

    let known = filter_run(
        &db,
        first_seen + 500,
        "203.0.113.9",
        "mx3.sender.example",
        "alice@sender.example",
    );
    known.assert_verdict("SKIP");
    assert!(
        known.logged("reason=triplet found, client_name=mx3.sender.example"),
        "{known:#?}"
    );
    assert!(
        !known.logged("delay="),
        "only the first pass has a delay: {known:#?}"
    );
    let (_, _, _, still_first_seen, passes) = only_triplet(&db);
    assert_eq!((still_first_seen, passes), (first_seen, 2));
}

// The other way round: the policy server defers a new triplet (its test time ten minutes in
// the past), the filter finds it, and the milter, on the real clock, passes the retry and adds
// the header with the delay counted from the policy server's first attempt.
#[test]
fn a_triplet_the_policy_server_deferred_passes_on_the_milter_and_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (milter, server) = both_daemons(&db);
    let first_seen = grey_listing::clock::system_now() - 600;

    let mut c = server.connect();
    let first = request(
        "198.51.100.7",
        "unknown",
        "bob@sender.example",
        "u@local.example",
        &[("policy_test_time", &first_seen.to_string())],
    );
    assert_eq!(c.ask(&first), server::DEFER);
    assert_eq!(only_triplet(&db).3, first_seen);

    // The same network, no verified name: the network is the key for all three.
    let early = filter_run(
        &db,
        first_seen + 100,
        "198.51.100.8",
        "",
        "Bob@Sender.Example",
    );
    early.assert_verdict("DEFER");
    assert!(
        early.logged("reason=early-retry (200s missing)"),
        "{early:#?}"
    );

    let mut mta = milter.connect();
    Mta::start_message(
        "[198.51.100.9]",
        b'4',
        "198.51.100.9",
        "<bob@sender.example>",
        &mut mta,
    );
    assert_eq!(mta.rcpt("<u@local.example>"), CONTINUE);
    let header = end_of_message(&mut mta).expect("X-Greylist on the first pass");
    // The milter decides on the real clock, a moment after `first_seen + 600`.
    let delay = delay_of(&header);
    assert!((600..600 + 60).contains(&delay), "{header}");
    milter.wait_log(&format!(
        "action=pass, reason=triplet found, delay={delay}, client_name=unknown"
    ));

    let known = filter_run(
        &db,
        first_seen + 900,
        "198.51.100.10",
        "",
        "bob@sender.example",
    );
    known.assert_verdict("SKIP");
    assert!(known.logged("reason=triplet found"), "{known:#?}");
    let (client, _, _, still_first_seen, passes) = only_triplet(&db);
    assert_eq!(
        (client.as_str(), still_first_seen, passes),
        ("198.51.100.0/24", first_seen, 2)
    );
    assert_eq!(live_triplets(db.to_str().unwrap()).len(), 1);
}

/// One way a client, sender or recipient reaches the milter and the policy server: how the
/// milter's MTA and Postfix's policy delegation each spell it.
struct Spelling {
    what: &'static str,
    /// CONNECT's host name, family and address.
    milter_client: (&'static str, u8, &'static str),
    /// MAIL's and RCPT's arguments.
    milter_envelope: (&'static str, &'static str),
    /// `client_address`, `client_name`, `sender`, `recipient`.
    policy: [&'static str; 4],
    /// The filter's `TCPREMOTEIP`, `TCPREMOTEHOST`, sender and recipient arguments.
    filter: [&'static str; 4],
}

const SPELLINGS: &[Spelling] = &[
    Spelling {
        what: "an IPv6 client, the milter's address with its IPv6: prefix, another host of its /64",
        milter_client: ("[IPv6:2001:db8:1:2::7]", b'6', "IPv6:2001:db8:1:2::7"),
        milter_envelope: ("<a@six.example>", "<u@local.example>"),
        policy: [
            "2001:db8:1:2::99",
            "unknown",
            "a@six.example",
            "u@local.example",
        ],
        filter: ["2001:db8:1:2::5", "", "a@six.example", "u@local.example"],
    },
    Spelling {
        what: "an IPv4 client that Postfix names in its IPv4-mapped IPv6 form",
        milter_client: ("[198.51.100.7]", b'4', "198.51.100.7"),
        milter_envelope: ("<a@mapped.example>", "<u@local.example>"),
        policy: [
            "::ffff:198.51.100.7",
            "unknown",
            "a@mapped.example",
            "u@local.example",
        ],
        filter: [
            "::ffff:198.51.100.9",
            "",
            "a@mapped.example",
            "U@local.example",
        ],
    },
    Spelling {
        what: "a bounce (null sender)",
        milter_client: ("[198.51.100.7]", b'4', "198.51.100.7"),
        milter_envelope: ("<>", "<bounce@local.example>"),
        policy: ["198.51.100.7", "unknown", "", "bounce@local.example"],
        filter: ["198.51.100.7", "", "", "bounce@local.example"],
    },
    Spelling {
        what: "a source route on the milter's sender, case in both addresses",
        milter_client: ("[198.51.100.7]", b'4', "198.51.100.7"),
        milter_envelope: (
            "<@relay.example:Route@Sender.Example>",
            "<Case@Local.Example>",
        ),
        policy: [
            "198.51.100.7",
            "unknown",
            "route@sender.example",
            "case@local.example",
        ],
        filter: [
            "198.51.100.7",
            "",
            "ROUTE@sender.example",
            "case@LOCAL.example",
        ],
    },
    Spelling {
        what: "an internationalised recipient domain, raw in SMTPUTF8 and in its A-label form",
        milter_client: ("[198.51.100.7]", b'4', "198.51.100.7"),
        milter_envelope: ("<a@idn.example>", "<u@bücher.example>"),
        policy: [
            "198.51.100.7",
            "unknown",
            "a@idn.example",
            "u@xn--bcher-kva.example",
        ],
        filter: ["198.51.100.7", "", "a@idn.example", "u@BÜCHER.example"],
    },
    Spelling {
        what: "a verified host name with a trailing dot, another server of its domain",
        milter_client: ("mx1.dot.example.", b'4', "198.51.100.7"),
        milter_envelope: ("<a@dot.example>", "<u@local.example>"),
        policy: [
            "203.0.113.5",
            "mx2.dot.example",
            "a@dot.example",
            "u@local.example",
        ],
        filter: [
            "192.0.2.5",
            "mx3.dot.example.",
            "a@dot.example",
            "u@local.example",
        ],
    },
];

// However the milter's MTA, Postfix and qmail spell a client, a sender or a recipient, a retry
// the policy server sees is the triplet the milter deferred: it passes with the delay counted
// from the milter's attempt; the filter then finds it passed; no second triplet is written.
#[test]
fn all_three_key_every_spelling_alike() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (milter, server) = both_daemons(&db);
    let mut c = server.connect();
    for (n, case) in SPELLINGS.iter().enumerate() {
        let mut mta = milter.connect();
        let (host, family, address) = case.milter_client;
        Mta::start_message(host, family, address, case.milter_envelope.0, &mut mta);
        assert_eq!(
            reply_text(&mta.rcpt(case.milter_envelope.1)),
            MILTER_DEFER,
            "{}",
            case.what
        );
        drop(mta);
        let rows = live_triplets(db.to_str().unwrap());
        assert_eq!(rows.len(), n + 1, "{}", case.what);
        let first_seen = rows.iter().map(|t| t.first_seen).max().unwrap();
        let [ip, name, sender, recipient] = case.policy;
        let reply = c.ask(&request(
            ip,
            name,
            sender,
            recipient,
            &[("policy_test_time", &(first_seen + 400).to_string())],
        ));
        assert!(
            reply.starts_with("action=PREPEND X-Greylist: delayed 400 seconds"),
            "{}: {reply}",
            case.what
        );
        let known = filter_run_to(&db, first_seen + 500, case.filter);
        known.assert_verdict("SKIP");
        assert!(
            known.logged("reason=triplet found"),
            "{}: {known:#?}",
            case.what
        );
        assert_eq!(
            live_triplets(db.to_str().unwrap()).len(),
            n + 1,
            "{}",
            case.what
        );
    }
}
