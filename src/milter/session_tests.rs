use super::*;
use crate::decision::Reason;
use crate::milter::networks;

fn config() -> Config {
    let mut config = Config::new(crate::store::DbLocation::Sqlite("/nonexistent".into()));
    config.hostname = "mx.test".to_string();
    config.trusted = networks::parse_list("127.0.0.0/8,10.0.0.0/8").unwrap();
    config
}

/// Packets in `out` as (code, data).
fn packets(out: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut reader = Vec::new();
    let mut rest = out;
    while rest.len() >= 5 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        reader.push((rest[4], rest[5..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    reader
}

fn negotiated(offered_flags: u32) -> (Session, Vec<u8>) {
    let mut session = Session::new();
    let mut out = Vec::new();
    let step = session.handle(
        Command::Negotiate {
            version: 6,
            actions: 0x1ff,
            protocol: offered_flags,
        },
        &mut out,
        &config(),
    );
    assert!(matches!(step, Step::Next));
    (session, out)
}

#[test]
fn negotiation_asks_only_for_what_is_offered_and_needed() {
    let (_, out) = negotiated(0x1f_ffff);
    let got = packets(&out);
    assert_eq!(got.len(), 1);
    let (code, data) = &got[0];
    assert_eq!(*code, b'O');
    assert_eq!(&data[..4], &6u32.to_be_bytes());
    assert_eq!(
        &data[4..8],
        &(SMFIF_ADDHDRS | SMFIF_SETSYMLIST).to_be_bytes()
    );
    assert_eq!(&data[8..12], &WANTED_FLAGS.to_be_bytes());
    assert_eq!(WANTED_FLAGS & flag::NODATA, 0);
    assert!(data.ends_with(b"\0\0\0\x02{auth_authen}\0"));
    // An MTA without the no-reply flags gets CONTINUE for every step.
    let (mut session, _) = negotiated(flag::NOBODY | flag::NOHDRS);
    let mut out = Vec::new();
    session.handle(Command::Helo("x".into()), &mut out, &config());
    assert_eq!(packets(&out), vec![(b'c', vec![])]);
}

/// Header, end of headers and body each follow their own no-reply flag: a reply the MTA did
/// not wait for would be taken as the answer to its next command.
#[test]
fn content_steps_are_answered_by_their_own_no_reply_flags() {
    let steps = || [Command::Header, Command::EndOfHeaders, Command::Body];
    for (offered, expected_replies) in [
        (0, [true, true, true]),
        (flag::NR_BODY, [true, true, false]),
        (flag::NR_HDR | flag::NR_EOH, [false, false, true]),
        (flag::NR_EOH, [true, false, true]),
        (
            flag::NR_HDR | flag::NR_EOH | flag::NR_BODY,
            [false, false, false],
        ),
    ] {
        let (mut session, _) = negotiated(offered);
        for (step, replied) in steps().into_iter().zip(expected_replies) {
            let name = format!("{step:?} with flags {offered:#x}");
            let mut out = Vec::new();
            session.handle(step, &mut out, &config());
            let expected = if replied {
                vec![(b'c', vec![])]
            } else {
                vec![]
            };
            assert_eq!(packets(&out), expected, "{name}");
        }
    }
}

#[test]
fn commands_before_negotiation_close_the_connection() {
    let mut session = Session::new();
    let mut out = Vec::new();
    assert!(matches!(
        session.handle(Command::Helo("x".into()), &mut out, &config()),
        Step::Close(_)
    ));
    assert!(matches!(
        session.handle(
            Command::Negotiate {
                version: 1,
                actions: 0,
                protocol: 0
            },
            &mut out,
            &config()
        ),
        Step::Close(_)
    ));
}

fn decide(session: &mut Session, rcpt: &str) -> Message {
    match session.handle(Command::Rcpt(rcpt.into()), &mut Vec::new(), &config()) {
        Step::Decide(message) => message,
        other => panic!("{other:?}"),
    }
}

#[test]
fn rcpt_carries_the_client_facts() {
    let (mut session, _) = negotiated(0x1f_ffff);
    let mut out = Vec::new();
    let cfg = config();
    session.handle(
        Command::Connect {
            hostname: "[192.0.2.1]".into(),
            address: ClientAddress::Inet("192.0.2.1".parse().unwrap(), 4000),
        },
        &mut out,
        &cfg,
    );
    session.handle(Command::Mail("<s@example.org>".into()), &mut out, &cfg);
    assert!(out.is_empty(), "no replies to steps agreed as no-reply");
    let message = decide(&mut session, "<u@example.com>");
    assert_eq!(message.client_name, None);
    assert_eq!(message.client_ip, "192.0.2.1".parse().ok());
    assert_eq!(message.sender, "s@example.org");
    assert_eq!(message.recipients, vec!["u@example.com".to_string()]);
    assert!(!message.authenticated);
    // {auth_authen} at MAIL marks the client authenticated, until a MAIL without it.
    session.handle(
        Command::Macros {
            stage: b'M',
            pairs: vec![("{auth_authen}".into(), "bob".into())],
        },
        &mut out,
        &cfg,
    );
    session.handle(Command::Mail("<>".into()), &mut out, &cfg);
    let message = decide(&mut session, "u@example.com");
    assert!(message.authenticated);
    assert_eq!(message.sender, "");
    session.handle(
        Command::Macros {
            stage: b'M',
            pairs: vec![],
        },
        &mut out,
        &cfg,
    );
    assert!(!decide(&mut session, "u@example.com").authenticated);
    // A trusted network passes as authenticated; a verified name is kept.
    session.handle(
        Command::Connect {
            hostname: "relay.example".into(),
            address: ClientAddress::Inet("10.1.2.3".parse().unwrap(), 4000),
        },
        &mut out,
        &cfg,
    );
    let message = decide(&mut session, "u@example.com");
    assert!(message.authenticated);
    assert_eq!(message.client_name.as_deref(), Some("relay.example"));
}

fn outcome(verdict: Verdict, reason: Reason, delay: Option<i64>) -> MessageOutcome {
    MessageOutcome {
        verdict,
        recipients: vec![crate::engine::RecipientOutcome {
            recipient: "u@example.com".into(),
            decision: crate::decision::Decision {
                verdict,
                reason,
                pattern: None,
                delay,
                write: None,
            },
        }],
    }
}

#[test]
fn decisions_become_replies_and_one_header_per_message() {
    let (mut session, _) = negotiated(0x1f_ffff);
    let cfg = config();
    let mut log = Logger::stderr(crate::logging::Fallback::Stderr);
    let mut out = Vec::new();
    session.handle(Command::Mail("<s@x>".into()), &mut out, &cfg);
    let message = decide(&mut session, "<a@y>");
    session.decided(
        &message,
        Ok(outcome(Verdict::Defer, Reason::New, None)),
        &mut out,
        &mut log,
    );
    session.decided(
        &message,
        Ok(outcome(Verdict::Reject, Reason::ServerBlack, None)),
        &mut out,
        &mut log,
    );
    for delay in [Some(300), Some(700), None] {
        session.decided(
            &message,
            Ok(outcome(Verdict::Pass, Reason::TripletFound, delay)),
            &mut out,
            &mut log,
        );
    }
    session.decided(
        &message,
        Err(crate::daemon::batch::DecideError::Unavailable),
        &mut out,
        &mut log,
    );
    assert!(session.in_message());
    session.handle(Command::Data, &mut out, &cfg);
    assert!(session.in_data());
    session.handle(Command::EndOfMessage, &mut out, &cfg);
    assert!(!session.in_message());
    let got = packets(&out);
    assert_eq!(got[0], (b'y', format!("{REPLY_DEFER}\0").into_bytes()));
    assert_eq!(got[1], (b'y', format!("{REPLY_REJECT}\0").into_bytes()));
    assert!(got[2..6].iter().all(|p| *p == (b'c', vec![])));
    let (code, header) = &got[6];
    assert_eq!(*code, b'h');
    let header = String::from_utf8_lossy(header);
    assert!(
        header.starts_with("X-Greylist\0delayed 700 seconds by grey_listing at mx.test; "),
        "{header}"
    );
    assert_eq!(got[7], (b'c', vec![]));
    assert_eq!(got.len(), 8);
    // The next message starts without a delay: no header.
    let mut out = Vec::new();
    session.handle(Command::Mail("<s@x>".into()), &mut out, &cfg);
    session.handle(Command::EndOfMessage, &mut out, &cfg);
    assert_eq!(packets(&out), vec![(b'c', vec![])]);
}

#[test]
fn abort_and_new_mail_forget_the_delay() {
    let (mut session, _) = negotiated(0x1f_ffff);
    let cfg = config();
    let mut log = Logger::stderr(crate::logging::Fallback::Stderr);
    for reset in [Command::Abort, Command::Mail("<t@x>".into())] {
        let mut out = Vec::new();
        session.handle(Command::Mail("<s@x>".into()), &mut out, &cfg);
        let message = decide(&mut session, "<a@y>");
        session.decided(
            &message,
            Ok(outcome(Verdict::Pass, Reason::TripletFound, Some(60))),
            &mut out,
            &mut log,
        );
        session.handle(reset, &mut out, &cfg);
        let mut out = Vec::new();
        session.handle(Command::EndOfMessage, &mut out, &cfg);
        assert_eq!(packets(&out), vec![(b'c', vec![])]);
    }
}

// Sendmail passes an unverified PTR name with {client_resolve} other than OK: no name then.
#[test]
fn sendmail_unverified_names_are_none() {
    let (mut session, _) = negotiated(0x1f_ffff);
    let cfg = config();
    let mut out = Vec::new();
    for (resolve, expected) in [("FORGED", None), ("OK", Some("mx.example"))] {
        session.handle(
            Command::Macros {
                stage: b'C',
                pairs: vec![("{client_resolve}".into(), resolve.into())],
            },
            &mut out,
            &cfg,
        );
        session.handle(
            Command::Connect {
                hostname: "mx.example".into(),
                address: ClientAddress::Inet("192.0.2.1".parse().unwrap(), 25),
            },
            &mut out,
            &cfg,
        );
        assert_eq!(
            decide(&mut session, "<u@x>").client_name.as_deref(),
            expected
        );
    }
}

#[test]
fn source_routes_are_dropped_from_addresses() {
    let (mut session, _) = negotiated(0x1f_ffff);
    let cfg = config();
    let mut out = Vec::new();
    session.handle(
        Command::Mail("<@relay.example,@b.example:s@example.org>".into()),
        &mut out,
        &cfg,
    );
    let message = decide(&mut session, "<@relay.example:u@example.com>");
    assert_eq!(message.sender, "s@example.org");
    assert_eq!(message.recipients, vec!["u@example.com".to_string()]);
    // A colon elsewhere is the address's own.
    session.handle(
        Command::Mail("<\"a:b\"@example.org>".into()),
        &mut out,
        &cfg,
    );
    let message = decide(&mut session, "<u@[IPv6:2001:db8::1]>");
    assert_eq!(message.sender, "\"a:b\"@example.org");
    assert_eq!(message.recipients, vec!["u@[IPv6:2001:db8::1]".to_string()]);
}
