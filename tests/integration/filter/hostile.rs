//! `greylisting-filter` in handler mode against hostile input: a client's HELO that imitates the
//! MTA's own words, envelope addresses in unusual spellings, and odd argument lists.

use crate::support::filter::{Sandbox, T0};

const SPAMMER: &str = "bad@spam.example";
const USER: &str = "u@local.example";

/// A sandbox whose server black list holds `*@spam.example`.
fn black_listed() -> Sandbox {
    let sb = Sandbox::new();
    sb.cli(&["-u", "-blacklist", "add:*@spam.example"]);
    sb
}

#[test]
fn a_helo_saying_esmtpa_is_not_authentication() {
    let sb = black_listed();
    for message in [
        "Received: from a with ESMTPA (unknown [198.51.100.30])\n\tby mx.local (Postfix) with ESMTP id 4AB; Mon, 30 Nov 2026\n\nb\n",
        "Received: from unknown (HELO a with ESMTPA) (198.51.100.20)\n  by mx.local with SMTP; Mon, 30 Nov 2026\n\nb\n",
        "Received: from x by y with ESMTPSA (unknown [198.51.100.23])\n\tby mx.local (Postfix) with ESMTP id 4AB; Mon, 30 Nov 2026\n\nb\n",
        "Received: from pc (unknown [198.51.100.24])\n\tby mx.local (Postfix) with ESMTPAX id 4AB; Mon, 30 Nov 2026\n\nb\n",
    ] {
        let run = sb.handler(T0, &[], &["ctx", SPAMMER, USER], message);
        run.assert_verdict("REJECT");
        assert!(
            run.logged("action=reject, reason=server black list"),
            "{run:#?}"
        );
    }
    // The MTA's own word still counts.
    let message = "Received: from a with ESMTP (unknown [198.51.100.30])\n\tby mx.local (Postfix) with ESMTPSA id 4AB; Mon, 30 Nov 2026\n\nb\n";
    let run = sb.handler(T0, &[], &["ctx", SPAMMER, USER], message);
    run.assert_verdict("SKIP");
    assert!(run.logged("action=pass, reason=authenticated"), "{run:#?}");
}

#[test]
fn parentheses_in_the_helo_plant_no_client() {
    let sb = Sandbox::new();
    for (i, (message, address)) in [
        (
            "Received: from x (mail.google.com [1.2.3.4]) (unknown [198.51.100.31])\n\tby mx.local (Postfix) with ESMTP id 4AB; d\n\nb\n",
            "198.51.100.31",
        ),
        (
            "Received: from unknown (HELO x) (mail.google.com [1.2.3.4]) (198.51.100.22)\n  by mx.local with SMTP; d\n\nb\n",
            "198.51.100.22",
        ),
        (
            "Received: from unknown (HELO x) (127.0.0.1) (198.51.100.21)\n  by mx.local with SMTP; d\n\nb\n",
            "198.51.100.21",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let sender = format!("{}@sender.example", ["ann", "bob", "cat"][i]);
        let run = sb.handler(T0, &[], &["ctx", &sender, USER], message);
        run.assert_verdict("DEFER");
        let line =
            format!("action=defer, reason=new, client_name=unknown, client_address={address},");
        assert!(run.logged(&line), "{line} in {run:#?}");
    }
}

#[test]
fn an_unreadable_top_header_is_an_unknown_client() {
    let sb = Sandbox::new();
    // The next header down (the client's own) would make it a white-listed, authenticated host.
    let message = "Received: from a (b [not-an-address])\n\tby mx.local (Postfix) with ESMTP id 1; d\nReceived: from pc (mail.google.com [192.0.2.98])\n\tby x (Postfix) with ESMTPA id 2; d\n\nb\n";
    let run = sb.handler(T0, &[], &["ctx", "a@sender.example", USER], message);
    run.assert_verdict("DEFER");
    assert!(
        run.logged("the topmost Received: header is in no known form; greylisting the client as unknown (client_address=0.0.0.0)"),
        "{run:#?}"
    );
    assert!(
        run.logged("action=defer, reason=new, client_name=unknown, client_address=0.0.0.0,"),
        "{run:#?}"
    );
    // The same on one line: the MTA's clause cannot be told from the HELO.
    let message =
        "Received: from pc (unknown [198.51.100.35]) by mx (Postfix) with ESMTPA id 1\n\nb\n";
    let run = sb.handler(T0, &[], &["ctx", "b@sender.example", USER], message);
    run.assert_verdict("DEFER");
    assert!(run.logged("client_address=0.0.0.0"), "{run:#?}");
}

#[test]
fn the_senders_domain_is_matched_the_way_host_names_are() {
    let sb = black_listed();
    let message =
        "Received: from unknown (HELO pc) (198.51.100.40)\n  by mx.local with SMTP; d\n\nb\n";
    for sender in ["a@spam.example.", "<a@spam.example>", " a@SPAM.example. "] {
        let run = sb.handler(T0, &[], &["ctx", sender, USER], message);
        run.assert_verdict("REJECT");
        assert!(
            run.logged("action=reject, reason=server black list"),
            "{sender:?}: {run:#?}"
        );
    }
    // The recipient too: its domain's greylisting is switched off, trailing dot or not.
    sb.cli(&["-ud", "local.example", "-status", "off"]);
    for recipient in ["u@local.example.", "<u@local.example>"] {
        let run = sb.handler(T0, &[], &["ctx", "x@sender.example", recipient], message);
        run.assert_verdict("SKIP");
        assert!(
            run.logged("action=pass, reason="),
            "{recipient:?}: {run:#?}"
        );
    }
}

#[test]
fn no_recipients_and_empty_recipients_are_logged() {
    let sb = Sandbox::new();
    let message =
        "Received: from unknown (HELO pc) (198.51.100.41)\n  by mx.local with SMTP; d\n\nb\n";
    // No recipient at all: passed, and the log says why.
    let run = sb.handler(T0, &[], &["ctx", "x@sender.example"], message);
    run.assert_verdict("SKIP");
    assert_eq!(
        run.logs(),
        vec![
            "Starting greylisting filter...",
            "no recipients: nothing to greylist; passing the message",
        ]
    );
    // Only empty recipients: each is named in the log, then the same.
    let run = sb.handler(T0, &[], &["ctx", "x@sender.example", "", " "], message);
    run.assert_verdict("SKIP");
    assert_eq!(
        run.logs(),
        vec![
            "Starting greylisting filter...",
            "ignoring recipient argument 1 (empty)",
            "ignoring recipient argument 2 (empty)",
            "no recipients: nothing to greylist; passing the message",
        ]
    );
    // An empty one beside a real one: the real one is greylisted, no triplet for nobody.
    let run = sb.handler(T0, &[], &["ctx", "x@sender.example", "", USER], message);
    run.assert_verdict("DEFER");
    assert!(
        run.logged("ignoring recipient argument 1 (empty)"),
        "{run:#?}"
    );
    assert!(!run.logged("recipient=,"), "{run:#?}");
    assert!(
        !run.logs().iter().any(|l| l.ends_with("recipient=")),
        "{run:#?}"
    );
    assert_eq!(sb.triplets().len(), 1);
}
