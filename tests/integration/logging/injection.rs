//! Values from an SMTP client cannot forge, split or colour a log line or the CLI's output:
//! controls, C1 and bidi characters, Unicode's line and paragraph separators and invalid UTF-8
//! bytes are written as `\xNN`, `\` as `\\`,
//! `,` as `\x2c` (so an RFC 5321 quoted local part cannot add a `recipient=` field), through the
//! real filter (both modes), the real policy server and the real CLI.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output};

use crate::policyd::server::{Server, request};
use crate::support::filter::{Sandbox, T0, handler_output, queue_output};

const JOHN: &str = "john@local.example";

/// A sender that tries everything: a quoted local part with `, recipient=`, an ANSI sequence,
/// CR LF, a right-to-left override, an invalid byte and a backslash.
const HOSTILE: &[u8] =
    b"\"x, recipient=root@local.example\"\x1b[2K\r\nfake\xe2\x80\xae\xff\\@s.example";
/// How every log line and the CLI show [`HOSTILE`].
const HOSTILE_SHOWN: &str = "\"x\\x2c recipient=root@local.example\"\\x1b[2K\\x0d\\x0afake\\xe2\\x80\\xae\\xff\\\\@s.example";

/// Asserts `line` is one decision line with exactly the six fields of the format.
#[track_caller]
fn six_fields(line: &str) {
    let fields: Vec<&str> = line.split(", ").collect();
    let names: Vec<&str> = fields
        .iter()
        .map(|f| f.split('=').next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "action",
            "reason",
            "client_name",
            "client_address",
            "sender",
            "recipient"
        ],
        "{line}"
    );
}

/// Asserts `text` holds no raw control, C1, bidi or Unicode line or paragraph separator.
#[track_caller]
fn clean(text: &str) {
    let bad = text.chars().find(|&c| {
        (c.is_control() && c != '\n')
            || matches!(c, '\u{200e}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    assert_eq!(bad, None, "{text:?}");
}

#[test]
fn qmail_envelope_values_are_escaped_per_byte() {
    let sb = Sandbox::new();
    let mut cmd = sb.filter(T0);
    cmd.arg("--qmail-queue")
        .env("GREY_QMAIL_QUEUE", "/nonexistent")
        .env("TCPREMOTEIP", "198.51.100.7")
        .env("TCPREMOTEHOST", "mx.ev\u{1b}[31mil.example");
    let mut env = b"F".to_vec();
    env.extend_from_slice(HOSTILE);
    env.extend_from_slice(b"\0Tjo\xe2\x80\xaehn\x07@local.example\0\0");
    let run = queue_output(cmd, b"x\n".to_vec(), env);
    assert_eq!(run.code, 71, "{}", run.stderr);
    assert!(
        !run.stderr.contains('\u{fffd}'),
        "no U+FFFD: {}",
        run.stderr
    );
    clean(&run.stderr);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .map(|line| crate::support::filter::strip_stamp(line, "greylisting filter").unwrap_or(line))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert_eq!(
        lines[1],
        format!(
            "action=defer, reason=new, client_name=mx.ev\\x1b[31mil.example, client_address=198.51.100.7, sender={HOSTILE_SHOWN}, recipient=jo\\xe2\\x80\\xaehn\\x07@local.example"
        )
    );
    six_fields(lines[1]);
}

#[test]
fn handler_arguments_and_list_hits_are_escaped() {
    let sb = Sandbox::new();
    // A black pattern with a bidi override in it: the list-hit line escapes the pattern too.
    sb.cli(&["-u", "-blacklist", "add:*\u{202e}*"]);
    let mut cmd = sb.filter(T0);
    cmd.env("TCPREMOTEIP", "198.51.100.7")
        .arg("ctx")
        .arg(OsStr::from_bytes(HOSTILE))
        .arg(JOHN);
    let run = handler_output(cmd, b"Subject: x\n\nbody\n");
    run.assert_verdict("REJECT");
    clean(&run.lines.join("\n"));
    assert_eq!(
        run.logs(),
        [
            "Starting greylisting filter...".to_string(),
            format!("list type: black, from: {HOSTILE_SHOWN}, match string: *\\xe2\\x80\\xae*"),
            format!(
                "action=reject, reason=server black list, client_name=unknown, client_address=198.51.100.7, sender={HOSTILE_SHOWN}, recipient={JOHN}"
            ),
        ]
    );
    six_fields(run.logs()[2]);
}

#[test]
fn policyd_log_lines_are_escaped() {
    let server = Server::start(&["--allow-test-time"]);
    // U+2028, Unicode's line separator, splits the line for tools that split on it.
    let sender = "\"x, recipient=root@h\"\u{202e}\t\\\u{2028}@s.example";
    let mut client = server.connect();
    let reply = client.ask(&request(
        "198.51.100.7",
        "mx,forged=1.example",
        sender,
        JOHN,
        &[("policy_test_time", &T0.to_string())],
    ));
    assert!(reply.starts_with("action=DEFER_IF_PERMIT"), "{reply}");
    let line = server.wait_log("reason=new");
    assert!(
        line.ends_with(&format!(
            "action=defer, reason=new, client_name=mx\\x2cforged=1.example, client_address=198.51.100.7, sender=\"x\\x2c recipient=root@h\"\\xe2\\x80\\xae\\x09\\\\\\xe2\\x80\\xa8@s.example, recipient={JOHN}"
        )),
        "{line}"
    );
    six_fields(&line[line.find("action=").unwrap()..]);
    // An escape character in a value is the client's odd mail, not protocol garbage: the
    // request is decided like any other and the log line escapes it.
    let mut bad = server.connect();
    bad.send(b"request=smtpd_access_policy\nclient_address=198.51.100.8\nclient_name=unknown\nsender=a\x1b[31m@b\nrecipient=u@h.example\n\n")
        .unwrap();
    assert!(bad.reply().is_some_and(|r| r.starts_with("action=")));
    server.wait_log("sender=a\\x1b[31m@b");
    clean(&server.log_lines().join("\n"));
}

/// `grey_listing --db <sandbox> <args>` at the virtual time `now`.
fn cli_at(sb: &Sandbox, now: i64, args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("grey_listing"))
        .env_clear()
        .env("GREY_LISTING_NOW", now.to_string())
        .arg("--db")
        .arg(sb.location())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_output_from_the_store_is_escaped() {
    let sb = Sandbox::new();
    for host in ["mx.ev\u{1b}[31mil.example", "mx.a|b;c=d.example"] {
        let run = sb.handler(
            T0,
            &[("TCPREMOTEIP", "198.51.100.7"), ("TCPREMOTEHOST", host)],
            &["ctx", "s@sender.example", JOHN],
            "Subject: x\n\nbody\n",
        );
        run.assert_verdict("DEFER");
    }
    let report = cli_at(&sb, T0 + 100, &["--report", "-threshold", "1"]);
    let text = String::from_utf8(report.stdout).unwrap();
    assert!(report.status.success(), "{text}");
    clean(&text);
    assert!(text.contains("ev\\x1b[31mil.example"), "{text}");
    assert!(text.contains("a|b;c=d.example"), "{text}");
    // Neither name is a plain domain: no shell command is suggested for them.
    assert!(!text.contains("grey_listing -u"), "{text}");

    let check = cli_at(&sb, T0 + 100, &["--check", "-w", "1", "-c", "100"]);
    let line = String::from_utf8(check.stdout).unwrap();
    assert_eq!(check.status.code(), Some(1), "{line}");
    clean(&line);
    assert!(line.contains("a\\x7cb\\x3bc\\x3dd.example (1)"), "{line}");
    assert!(line.contains("ev\\x1b[31mil.example (1)"), "{line}");
    assert_eq!(
        line.matches('|').count(),
        1,
        "only the perfdata separator: {line}"
    );

    // --stats prints stored verdicts and reasons: a row written by anything else is escaped.
    sb.sql()
        .execute(
            "INSERT INTO decision_log (time, client_network, client_key, organisation, \
             client_address, client_name, sender, recipient, verdict, reason) \
             VALUES (?1, '', '', '', '', '', '', '', 'pass', ?2)",
            rusqlite::params![T0, "x\u{1b}]0;owned\u{7}"],
        )
        .unwrap();
    let stats = cli_at(&sb, T0 + 100, &["--stats"]);
    let text = String::from_utf8(stats.stdout).unwrap();
    clean(&text);
    assert!(text.contains("x\\x1b]0;owned\\x07"), "{text}");
}

#[test]
fn explain_output_is_escaped() {
    let sb = Sandbox::new();
    sb.cli(&["-u", "-blacklist", "add:*\u{202e}*"]);
    // --explain refuses white space and controls in its arguments; the rest must be escaped.
    let sender = "\"a,b\"\u{202e}\\@s.example";
    let out = cli_at(&sb, T0, &["--explain", "198.51.100.7", "-", sender, JOHN]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    clean(&text);
    let shown = "\"a\\x2cb\"\\xe2\\x80\\xae\\\\@s.example";
    assert!(text.contains(&format!("sender <{shown}>")), "{text}");
    assert!(
        text.contains(&format!(
            "<{shown}> matches: reject (pattern *\\xe2\\x80\\xae*)"
        )),
        "{text}"
    );
    assert!(text.contains("pattern *\\xe2\\x80\\xae*\n"), "{text}");
}
