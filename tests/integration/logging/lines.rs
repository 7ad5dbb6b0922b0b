//! The stderr log (no `/dev/log`, or `GREY_LISTING_LOG=stderr`) carries what syslog would add —
//! local time in RFC 3339 with microseconds and offset, then `ident[pid]: ` — so it lines up
//! with the mail log. In the Plesk handler protocol `LOG ` stays first and the verdict last.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::policyd::server::Server;
use crate::support::filter::{PLAIN_MESSAGE, Sandbox, T0, envelope, handler_output, queue_output};

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Checks `line` is `<time> <ident>[<pid>]: <text>` with a time between `from` and `to` (unix
/// seconds) and returns the pid and the text.
fn stamped<'a>(line: &'a str, ident: &str, from: f64, to: f64) -> (u32, &'a str) {
    let (time, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
    assert!(
        time.len() == "2026-03-16T09:06:42.123456+01:00".len() && time.as_bytes()[10] == b'T',
        "not an RFC 3339 time with microseconds: {line:?}"
    );
    let parsed =
        chrono::DateTime::parse_from_rfc3339(time).unwrap_or_else(|e| panic!("{line:?}: {e}"));
    let at = parsed.timestamp_micros() as f64 / 1e6;
    assert!(
        at >= from - 1.0 && at <= to + 1.0,
        "{line:?}: time outside the run"
    );
    // The local offset, as the mail log shows it.
    let local = chrono::Local::now().offset().local_minus_utc();
    assert_eq!(parsed.offset().local_minus_utc(), local, "{line:?}");
    let rest = rest
        .strip_prefix(ident)
        .and_then(|r| r.strip_prefix('['))
        .unwrap_or_else(|| panic!("no '{ident}[' in {line:?}"));
    let (pid, text) = rest.split_once("]: ").unwrap();
    (pid.parse().unwrap(), text)
}

#[test]
fn handler_mode_log_lines_carry_time_and_ident_after_log() {
    let sb = Sandbox::new();
    let mut cmd = sb.filter(T0);
    cmd.args(["ctx", "alice@sender.example", "john@local.example"]);
    let from = unix_now();
    let run = handler_output(cmd, PLAIN_MESSAGE.as_bytes());
    let to = unix_now();
    run.assert_verdict("DEFER");
    let (_, logs) = run.lines.split_last().unwrap();
    assert_eq!(logs.len(), 2, "{run:#?}");
    let mut pids = Vec::new();
    for line in logs {
        let line = line.strip_prefix("LOG ").unwrap();
        let (pid, text) = stamped(line, "greylisting filter", from, to);
        assert!(!text.is_empty());
        pids.push(pid);
    }
    assert_eq!(pids[0], pids[1], "one process");
}

#[test]
fn qmail_queue_mode_log_lines_carry_time_and_ident() {
    let sb = Sandbox::new();
    let standin = sb.standin_queue("real-queue");
    let mut cmd = sb.filter(T0);
    cmd.arg("--qmail-queue")
        .env("GREY_QMAIL_QUEUE", &standin)
        .env("TCPREMOTEIP", "198.51.100.7");
    let from = unix_now();
    let run = queue_output(
        cmd,
        PLAIN_MESSAGE.as_bytes().to_vec(),
        envelope("alice@sender.example", &["john@local.example"]),
    );
    let to = unix_now();
    assert_eq!(run.code, 71, "{}", run.stderr);
    let texts: Vec<&str> = run
        .stderr
        .lines()
        .map(|line| stamped(line, "greylisting filter", from, to).1)
        .collect();
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("action=defer, reason=new")),
        "{texts:?}"
    );
}

#[test]
fn policyd_log_lines_carry_time_and_ident() {
    let from = unix_now();
    let server = Server::start(&[]);
    let line = server.wait_log("listening on");
    let to = unix_now();
    let (pid, text) = stamped(&line, "greylisting-policyd", from, to);
    assert!(text.contains("listening on"), "{line}");
    assert!(pid > 0);
}
