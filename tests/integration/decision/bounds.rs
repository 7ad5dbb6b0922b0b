//! Size bounds on client values through the real binaries: a huge sender or host name is stored,
//! logged and matched in its bounded form (first 256 bytes, `~`, 16 hex digits of its SHA-256),
//! the same in the filter and the policy server; patterns, lists and imports have hard limits;
//! a closed fd 0 or fd 1 in qmail-queue mode is a read error.

use std::io::Write;
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::policyd::server::{Server, request};
use crate::support::filter::{Sandbox, T0, envelope, queue_output, recorded};

const JOHN: &str = "john@local.example";

/// The bounded form, computed here from its definition (not with the library's function).
pub(crate) fn bounded(value: &str) -> String {
    assert!(value.len() > 320 && value.is_ascii());
    let hex: String = Sha256::digest(value.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{}~{hex}", &value[..256])
}

/// The filter in qmail-queue mode for a client at 198.51.100.7 without a host name.
fn qmail(sb: &Sandbox, now: i64) -> Command {
    let mut cmd = sb.filter(now);
    cmd.arg("--qmail-queue")
        .env("GREY_QMAIL_QUEUE", sb.standin_queue("real-queue"))
        .env("TCPREMOTEIP", "198.51.100.7");
    cmd
}

/// Bytes of the SQLite database and its WAL.
fn db_bytes(sb: &Sandbox) -> u64 {
    ["", "-wal"]
        .iter()
        .map(|suffix| {
            let path = format!("{}{suffix}", sb.db.display());
            std::fs::metadata(path).map_or(0, |m| m.len())
        })
        .sum()
}

// One qmail message with a 10 MB sender and five recipients used to add about 100 MB to the
// database (the sender in five triplets and five decision-log rows). Now every stored copy and
// the log line carry the bounded key, and the database grows by a few pages.
#[test]
fn ten_megabyte_sender_in_qmail_queue_mode_is_stored_bounded() {
    let sb = Sandbox::new();
    // A first message creates the schema, so the growth measured below is the message's own.
    let warm = queue_output(
        qmail(&sb, T0),
        b"x\n".to_vec(),
        envelope("w@s.example", &[JOHN]),
    );
    assert_eq!(warm.code, 71, "{}", warm.stderr);
    let before = db_bytes(&sb);
    let sender = format!("{}@sender.example", "a".repeat(10_000_000));
    let key = bounded(&sender);
    let recipients: Vec<String> = (0..5).map(|i| format!("r{i}@local.example")).collect();
    let rcpts: Vec<&str> = recipients.iter().map(String::as_str).collect();
    let run = queue_output(qmail(&sb, T0), b"x\n".to_vec(), envelope(&sender, &rcpts));
    assert_eq!(run.code, 71, "greylisted");
    assert!(
        run.stderr.len() < 10_000,
        "log is bounded: {} bytes",
        run.stderr.len()
    );
    for rcpt in &recipients {
        assert!(
            run.stderr.contains(&format!(
                "action=defer, reason=new, client_name=unknown, client_address=198.51.100.7, sender={key}, recipient={rcpt}\n"
            )),
            "{}",
            run.stderr
        );
    }
    let stored: Vec<(String, String)> = sb
        .triplets()
        .into_iter()
        .filter(|t| t.2 != JOHN)
        .map(|t| (t.1, t.2))
        .collect();
    let expected: Vec<(String, String)> = recipients
        .iter()
        .map(|r| (key.clone(), r.clone()))
        .collect();
    assert_eq!(stored, expected);
    let logged: Vec<String> = sb
        .sql()
        .prepare("SELECT sender FROM decision_log WHERE recipient != ?1")
        .unwrap()
        .query_map([JOHN], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(logged, vec![key.clone(); 5]);
    let growth = db_bytes(&sb).saturating_sub(before);
    assert!(growth < 1_000_000, "database grew by {growth} bytes");
    // The same sender again finds its triplets: the key is stable.
    let again = queue_output(
        qmail(&sb, T0 + 60),
        b"x\n".to_vec(),
        envelope(&sender, &rcpts[..1]),
    );
    assert!(
        again.stderr.contains("reason=early-retry"),
        "{}",
        again.stderr
    );
}

// Handler mode gets the sender as an argument, which Linux limits to 128 KiB: a 120 KB sender
// is stored and logged in the same bounded form.
#[test]
fn long_sender_in_handler_mode_is_stored_bounded() {
    let sb = Sandbox::new();
    let sender = format!("{}@sender.example", "b".repeat(120_000));
    let key = bounded(&sender);
    let run = sb.handle(T0, &sender, JOHN);
    run.assert_verdict("DEFER");
    assert!(
        run.logged(&format!("sender={key}, recipient={JOHN}")),
        "{:?}",
        run.logs()
    );
    let triplets = sb.triplets();
    assert_eq!(triplets.len(), 1);
    assert_eq!(triplets[0].1, key);
}

// Over-long values match no pattern (they are greylisted under their bounded key): a sender
// over 320 bytes escapes even a black `*`, a host name over 253 bytes a black host pattern.
#[test]
fn over_long_senders_and_hosts_match_no_pattern() {
    let sb = Sandbox::new();
    sb.cli(&["-u", "-blacklist", "add:*"]);
    let fits = format!("{}@s.example", "c".repeat(300));
    sb.handle(T0, &fits, JOHN).assert_verdict("REJECT");
    let long = format!("{}@s.example", "c".repeat(320));
    let run = sb.handle(T0, &long, JOHN);
    run.assert_verdict("DEFER");
    assert!(run.logged("reason=new"), "{:?}", run.logs());

    let sb = Sandbox::new();
    let host = |len: usize| format!("{}.dsl.example", "h".repeat(len - 12));
    let run = |name: &str| {
        sb.handler(
            T0,
            &[("TCPREMOTEIP", "198.51.100.7"), ("TCPREMOTEHOST", name)],
            &["ctx", "s@sender.example", JOHN],
            "Subject: x\n\nbody\n",
        )
    };
    run(&host(253)).assert_verdict("REJECT");
    let over = host(254);
    let verdict = run(&over);
    verdict.assert_verdict("DEFER");
    // Keyed by network: a name that long names no organisation.
    assert_eq!(sb.triplets()[0].0, "198.51.100.0/24");
}

// The policy server bounds the same way, and a sender seen by policyd and by the filter is one
// triplet: the key is byte for byte the same in both components.
#[test]
fn policyd_and_filter_share_the_bounded_key() {
    let server = Server::start(&["--allow-test-time"]);
    let sender = format!("{}@sender.example", "d".repeat(8_000));
    let key = bounded(&sender);
    let mut client = server.connect();
    let reply = client.ask(&request(
        "198.51.100.7",
        "unknown",
        &sender,
        JOHN,
        &[("policy_test_time", &T0.to_string())],
    ));
    assert!(reply.starts_with("action=DEFER_IF_PERMIT"), "{reply}");
    let line = server.wait_log("reason=new");
    assert!(
        line.contains(&format!("sender={key}, recipient={JOHN}")),
        "{line}"
    );

    let mut filter = crate::support::filter::filter_at(&server.db, T0 + 60);
    filter
        .arg("--qmail-queue")
        .env("TCPREMOTEIP", "198.51.100.9")
        .env("GREY_QMAIL_QUEUE", "/nonexistent");
    let run = queue_output(filter, b"x\n".to_vec(), envelope(&sender, &[JOHN]));
    assert_eq!(run.code, 71);
    assert!(
        run.stderr.contains(&format!("reason=early-retry (240s missing), client_name=unknown, client_address=198.51.100.9, sender={key}, recipient={JOHN}")),
        "{}",
        run.stderr
    );
    assert_eq!(crate::policyd::server::triplet_count(&server.db), 1);
}

// The 130 KB mailbox-pattern attack (18 s per filter run): patterns over 1,024 characters are
// refused, whole command refused, nothing written. (Linux caps one argument at 128 KiB, so the
// attack pattern here is 100 KB.)
#[test]
fn patterns_over_1024_characters_are_refused() {
    let t = crate::support::Test::new();
    t.run(&["-u", "-blacklist", &format!("add:{}@x", "a".repeat(1022))])
        .stdout("SUCCESS: Update of server-wide settings complete.\n");
    let before = t.files();
    for args in [
        vec!["-u", "-whitelist", "add:*@ok.example"],
        vec!["-um", JOHN, "-blacklist", "add:*@ok.example"],
    ] {
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        args.push("-blacklist".to_string());
        for pattern in ["a".repeat(1025), format!("*{}*", "x?".repeat(50_000))] {
            let mut full = args.clone();
            full.push(format!("add:{pattern}"));
            let full: Vec<&str> = full.iter().map(String::as_str).collect();
            let out = t.run(&full);
            out.bad_input(&["longer than the limit of 1024 characters"]);
            assert!(out.stderr.len() < 500, "the error line is abridged");
        }
    }
    assert_eq!(t.files(), before, "nothing written");
}

/// An `--export` of `t` with the server black list replaced by `black`, written to `name`.
fn export_with_black(t: &crate::support::Test, black: &[String], name: &str) -> String {
    let mut dump = t.run(&["--export"]).json();
    dump["lists"]["black"] = serde_json::json!(black);
    let path = t.dir().join(name);
    std::fs::write(&path, serde_json::to_vec(&dump).unwrap()).unwrap();
    path.to_str().unwrap().to_string()
}

// A list holds at most 10,000 patterns and 65,536 pattern characters: an import or a CLI edit
// past either limit is refused naming it, and nothing is written.
#[test]
fn list_limits_for_imports_and_edits() {
    let t = crate::support::Test::new();
    let many: Vec<String> = (0..10_000).map(|i| format!("{i}@x")).collect();
    let file = export_with_black(&t, &many, "many.json");
    t.run(&["--import", &file])
        .stdout("SUCCESS: Import of configuration complete.\n");
    let before = t.run(&["--export"]).stdout;
    t.run(&["-u", "-blacklist", "add:*@one-more.example"])
        .bad_input(&[
            "server black list",
            "10001 patterns",
            "limit of 10000 patterns",
        ]);
    assert_eq!(t.run(&["--export"]).stdout, before, "nothing written");
    t.run(&["-um", JOHN, "-blacklist", "add:*@fine.example"])
        .stdout(&format!("SUCCESS: Update of mail '{JOHN}' complete.\n"));
    let mut over = many.clone();
    over.push("y@x".to_string());
    let file = export_with_black(&t, &over, "over.json");
    t.run(&["--import", &file])
        .bad_input(&["lists.black", "limit of 10000 patterns"]);

    let t = crate::support::Test::new();
    let wide: Vec<String> = (0..64)
        .map(|i| format!("{i:04}{}", "w".repeat(1020)))
        .collect();
    let file = export_with_black(&t, &wide, "wide.json");
    t.run(&["--import", &file])
        .stdout("SUCCESS: Import of configuration complete.\n");
    let before = t.run(&["--export"]).stdout;
    t.run(&[
        "-u",
        "-grey-interval",
        "7",
        "-blacklist",
        "del:*@nothing.example;add:x",
    ])
    .bad_input(&["server black list", "65537 pattern characters", "65536"]);
    assert_eq!(t.run(&["--export"]).stdout, before, "nothing written");
    // Deleting makes room again.
    t.run(&["-u", "-blacklist", &format!("del:{};add:@x", wide[0])])
        .stdout("SUCCESS: Update of server-wide settings complete.\n");
}

/// Runs `grey_listing --db <db> <args>` with `bytes` (up to `total`) streamed to stdin from a
/// generator, never held whole; returns the status and stderr.
fn streamed(db: &str, args: &[&str], head: Vec<u8>, total: u64) -> (Option<i32>, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("grey_listing"))
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // The CLI stops reading past its limit: a write error then is expected.
        if stdin.write_all(&head).is_err() {
            return;
        }
        let chunk = vec![b' '; 1 << 20];
        let mut left = total.saturating_sub(head.len() as u64);
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if stdin.write_all(&chunk[..n]).is_err() {
                return;
            }
            left -= n as u64;
        }
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// `--import -`, `--import-plesk -` read at most 64 MiB: exactly 64 MiB (a valid export padded
// with white space) is read, one byte more is refused with one line naming the limit.
#[test]
fn imports_read_at_most_64_mib() {
    let t = crate::support::Test::new();
    let export = t.run(&["--export"]).stdout.into_bytes();
    let limit = 64 * 1024 * 1024;
    let db = t.location();
    let (code, stderr) = streamed(&db, &["--import", "-"], export.clone(), limit);
    assert_eq!((code, stderr.as_str()), (Some(0), ""));
    for args in [["--import", "-"], ["--import-plesk", "-"]] {
        let (code, stderr) = streamed(&db, &args, export.clone(), limit + 1);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("An error occurred during ")
                && stderr.contains("standard input is larger than the limit of 64 MiB")
                && stderr.lines().count() == 1,
            "{stderr}"
        );
    }
    // A much longer input is refused as soon as the limit is passed, not read to its end.
    let (code, _) = streamed(&db, &["--import", "-"], export, 4 * limit);
    assert_eq!(code, Some(1));
}

// qmail-queue(8): a closed fd 0 or fd 1 is 54 ("unable to read"), logged naming the
// descriptor. The Rust runtime reopens closed standard descriptors on /dev/null before main,
// so without the start-up check a closed fd 1 read as an empty envelope and exited 91.
#[test]
fn closed_fd_0_or_fd_1_exits_54() {
    let sb = Sandbox::new();
    let message = sb.path("message");
    std::fs::write(&message, b"Subject: x\n\ny\n").unwrap();
    let env_file = sb.path("envelope");
    std::fs::write(&env_file, envelope("a@s.example", &[JOHN])).unwrap();
    let filter = assert_cmd::cargo::cargo_bin("greylisting-filter");
    for (redirect, fd) in [
        (format!("<'{}' 1>&-", message.display()), 1),
        (format!("0<&- 1<'{}'", env_file.display()), 0),
    ] {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("exec \"$0\" --qmail-queue {redirect}"))
            .arg(&filter)
            .env("GREY_LISTING_DB", &sb.db)
            .env("GREY_LISTING_LOG", "stderr")
            .env("GREY_QMAIL_QUEUE", sb.standin_queue("real-queue"))
            .env("RELAYCLIENT", "");
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(54), "fd {fd}: {stderr}");
        assert!(stderr.contains(&format!("fd {fd} is closed")), "{stderr}");
    }
    assert_eq!(recorded(&sb.path("real-queue.message")), None);
}
