//! Internationalised domain names: the CLI stores every domain in A-label form and the mail path
//! converts the recipient's and sender's domains and the client host name the same way, so
//! `bücher.de` and `xn--bcher-kva.de` are one domain everywhere.

use crate::policyd::server::{DEFER, DUNNO, REJECT, Server, cli, request};
use crate::support::filter::{Sandbox, T0};
use crate::support::{Backend, SERVER_UPDATED, Test};

const ALICE: &str = "alice@sender.example";

// Both spellings name one record; output shows the A-label form.
fn cli_stores_a_labels(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["-ud", "bücher.de", "-status", "off"])
        .stdout("SUCCESS: Update of domain 'xn--bcher-kva.de' complete.\n");
    let disabled = |shown: &str| {
        format!(
            "Grey listing configuration for {shown}\n\nGrey listing checking  disabled\n\n\
             SUCCESS: Gathering of information for domain '{shown}' complete.\n"
        )
    };
    t.run(&["-id", "xn--bcher-kva.de"])
        .stdout(&disabled("xn--bcher-kva.de"));
    t.run(&["-id", "BÜCHER.de"])
        .stdout(&disabled("xn--bcher-kva.de"));

    t.run(&[
        "-um",
        "jörg@bücher.de",
        "-whitelist",
        "add:*@müller.example",
    ])
    .stdout("SUCCESS: Update of mail 'jörg@xn--bcher-kva.de' complete.\n");
    let info = t.run(&["-im", "jörg@xn--bcher-kva.de", "--json"]).json();
    assert_eq!(info["mail"], "jörg@xn--bcher-kva.de");
    assert_eq!(
        info["white"],
        serde_json::json!(["*@xn--mller-kva.example"])
    );
    // The same pattern in the other spelling is the same pattern.
    t.run(&[
        "-um",
        "jörg@bücher.de",
        "-whitelist",
        "add:*@xn--mller-kva.example",
    ])
    .warns(
        "SUCCESS: Update of mail 'jörg@xn--bcher-kva.de' complete.\n",
        &[
            "Warning: *@xn--mller-kva.example is already in the white list of \
               jörg@xn--bcher-kva.de",
        ],
    );

    t.run(&["-u", "-domains-whitelist", "add:*.bücher.de|mx.straße.de"])
        .stdout(SERVER_UPDATED);
    let lists = t.run(&["-i", "--json"]).json()["lists"].clone();
    assert_eq!(
        lists["domains_white"].as_array().unwrap().last().unwrap(),
        "*.xn--bcher-kva.de|mx.xn--strae-oqa.de"
    );
}

// A name that cannot be converted is a malformed domain; a pattern label that mixes wildcards
// and non-ASCII letters has no A-label form. Exit 1, nothing written.
#[test]
fn unconvertible_names_are_bad_input() {
    let t = Test::new();
    t.run(&["-ud", "xn--zz.de", "-status", "off"])
        .bad_input(&["-ud", "xn--zz.de"]);
    t.run(&["-um", "a@xn--zz.de", "-whitelist", "add:*@x.example"])
        .bad_input(&["-um", "a@xn--zz.de"]);
    t.run(&["-u", "-domains-whitelist", "add:*bücher.de"])
        .bad_input(&[
            "-domains-whitelist",
            "*bücher.de",
            "mixes wildcards and non-ASCII",
        ]);
    t.run(&["-u", "-whitelist", "add:*@b?cher-ü.de"])
        .bad_input(&["-whitelist", "*@b?cher-ü.de"]);
    assert!(!t.db().exists(), "nothing is created for bad input");
}

// The filter: a domain switched off in its Unicode spelling is off for mail to its A-label
// spelling and the other way round; sender domains and client host names match patterns
// stored from Unicode spellings; a name that cannot be converted fails open (greylisted as
// usual, no error).
fn filter_converts_names(backend: Backend) {
    let sb = Sandbox::on(backend);
    sb.cli(&["-ud", "bücher.de", "-status", "off"]);
    let run = sb.handle(T0, ALICE, "x@xn--bcher-kva.de");
    run.assert_verdict("SKIP");
    assert!(run.logged("reason=disabled"), "{run:#?}");
    sb.cli(&["-ud", "xn--mller-kva.de", "-status", "off"]);
    sb.handle(T0, ALICE, "x@Müller.de").assert_verdict("SKIP");

    sb.cli(&["-u", "-blacklist", "add:*@spämmer.example"]);
    sb.handle(T0, "a@xn--spmmer-cua.example", "u@local.example")
        .assert_verdict("REJECT");
    sb.cli(&["-u", "-domains-whitelist", "add:*.bücher.de"]);
    let run = sb.handler(
        T0,
        &[
            ("TCPREMOTEIP", "203.0.113.5"),
            ("TCPREMOTEHOST", "mx.xn--bcher-kva.de"),
        ],
        &["ctx", ALICE, "u@local.example"],
        "Subject: x\n\nbody\n",
    );
    run.assert_verdict("SKIP");
    let run = sb.handler(
        T0,
        &[
            ("TCPREMOTEIP", "203.0.113.5"),
            ("TCPREMOTEHOST", "MX.Bücher.de"),
        ],
        &["ctx", ALICE, "v@local.example"],
        "Subject: x\n\nbody\n",
    );
    run.assert_verdict("SKIP");
    sb.handle(T0, ALICE, "x@\u{301}bad.example")
        .assert_verdict("DEFER");
}

// The policy server converts the same names.
fn policyd_converts_names(backend: Backend) {
    let server = Server::start_in(backend, &[]);
    cli(&server.db, &["-ud", "bücher.de", "-status", "off"]);
    cli(&server.db, &["-u", "-blacklist", "add:*@spämmer.example"]);
    let mut c = server.connect();
    let ask = |c: &mut crate::policyd::server::Client, name: &str, sender: &str, rcpt: &str| {
        c.ask(&request("198.51.100.7", name, sender, rcpt, &[]))
    };
    assert_eq!(ask(&mut c, "unknown", ALICE, "x@xn--bcher-kva.de"), DUNNO);
    assert_eq!(ask(&mut c, "unknown", ALICE, "y@BÜCHER.de"), DUNNO);
    server.wait_log("reason=disabled");
    assert_eq!(
        ask(
            &mut c,
            "unknown",
            "a@xn--spmmer-cua.example",
            "u@local.example"
        ),
        REJECT
    );
    cli(&server.db, &["-u", "-domains-whitelist", "add:*.bücher.de"]);
    assert_eq!(
        ask(&mut c, "mx.xn--bcher-kva.de", ALICE, "u@local.example"),
        DUNNO
    );
    assert_eq!(
        ask(&mut c, "mx.example", ALICE, "u@\u{301}bad.example"),
        DEFER
    );
}

on_both_stores!(
    cli_stores_a_labels,
    filter_converts_names,
    policyd_converts_names
);
