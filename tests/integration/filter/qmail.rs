//! `greylisting-filter` as a qmail-queue wrapper (DESIGN.md §5), with a stand-in real qmail-queue
//! that records the bytes it receives on fd 0 (message) and fd 1 (envelope).

use std::process::Command;

use crate::support::Backend;
use crate::support::filter::{Sandbox, T0, envelope, queue_output, recorded};

const ALICE: &str = "alice@sender.example";
const JOHN: &str = "john@local.example";

/// The filter in `--qmail-queue` mode, pointed at a stand-in; the client is `mx.sender.example`.
fn wrapper(sb: &Sandbox, now: i64, standin: &std::path::Path) -> Command {
    let mut cmd = sb.filter(now);
    cmd.arg("--qmail-queue")
        .env("GREY_QMAIL_QUEUE", standin)
        .env("TCPREMOTEIP", "198.51.100.7")
        .env("TCPREMOTEHOST", "mx.sender.example");
    cmd
}

fn message_of(size: usize, seed: u8) -> Vec<u8> {
    // Every byte value, including NUL, CR and 8-bit, in a pattern that is not periodic in 256.
    let mut bytes = b"Subject: binary\r\n\r\n".to_vec();
    let mut x = u32::from(seed) | 1;
    while bytes.len() < size {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push((x >> 11) as u8);
    }
    bytes.truncate(size);
    bytes
}

#[test]
fn passed_mail_reaches_the_real_queue_byte_identical() {
    // DESIGN.md §5: on pass, the real qmail-queue gets the identical message (fd 0) and envelope
    // (fd 1) and its exit status is returned. RELAYCLIENT makes every message pass.
    let sb = Sandbox::new();
    let standin = sb.standin_queue("real-queue");
    let many: Vec<String> = (0..100).map(|i| format!("user{i}@local.example")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        (
            "LF text",
            b"Subject: hi\n\nhello\n".to_vec(),
            envelope(ALICE, &[JOHN]),
        ),
        (
            "CRLF text",
            b"Subject: hi\r\n\r\nhello\r\n".to_vec(),
            envelope(ALICE, &[JOHN]),
        ),
        (
            "8-bit",
            "Subject: Grüße\n\nÄÖÜ ß € \u{1F600}\n".as_bytes().to_vec(),
            envelope(ALICE, &[JOHN]),
        ),
        (
            "binary with NULs",
            message_of(70_000, 7),
            envelope(ALICE, &[JOHN]),
        ),
        ("empty body", Vec::new(), envelope("", &[JOHN])),
        (
            "20 MB, spooled",
            message_of(20 << 20, 3),
            envelope(ALICE, &[JOHN]),
        ),
        (
            "100 recipients",
            b"Subject: many\n\nx\n".to_vec(),
            envelope(ALICE, &many),
        ),
    ];
    for (name, message, env_bytes) in cases {
        let _ = std::fs::remove_file(sb.path("real-queue.message"));
        let _ = std::fs::remove_file(sb.path("real-queue.envelope"));
        let mut cmd = wrapper(&sb, T0, &standin);
        cmd.env("RELAYCLIENT", "");
        let run = queue_output(cmd, message.clone(), env_bytes.clone());
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let got_message = recorded(&sb.path("real-queue.message")).unwrap();
        assert!(
            got_message == message,
            "{name}: message differs ({} vs {} bytes)",
            got_message.len(),
            message.len()
        );
        assert_eq!(
            recorded(&sb.path("real-queue.envelope")).unwrap(),
            env_bytes,
            "{name}"
        );
        assert!(
            run.stderr.contains("action=pass, reason=authenticated"),
            "{name}: {}",
            run.stderr
        );
    }
}

fn greylisting_in_qmail_queue_mode(backend: Backend) {
    // DESIGN.md §5: defer exits 71 without running the real queue; the retry after the interval is
    // queued; the real queue's exit status comes back unchanged.
    let sb = Sandbox::on(backend);
    let standin = sb.standin_queue("real-queue");
    let message = b"Subject: hi\n\nhello\n".to_vec();
    let run = queue_output(
        wrapper(&sb, T0, &standin),
        message.clone(),
        envelope(ALICE, &[JOHN]),
    );
    assert_eq!(run.code, 71, "{}", run.stderr);
    assert!(run.stderr.contains("action=defer, reason=new, client_name=mx.sender.example, client_address=198.51.100.7, sender=alice@sender.example, recipient=john@local.example"), "{}", run.stderr);
    // Plain stderr lines in qmail-queue mode, no `LOG` prefix.
    assert!(run.stderr.lines().all(|l| !l.starts_with("LOG ")));
    assert_eq!(
        recorded(&sb.path("real-queue.message")),
        None,
        "deferred mail must not be queued"
    );
    let mut cmd = wrapper(&sb, T0 + 300, &standin);
    cmd.env("STANDIN_EXIT", "0");
    let run = queue_output(cmd, message.clone(), envelope(ALICE, &[JOHN]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(recorded(&sb.path("real-queue.message")).unwrap(), message);
    // The real queue's own failure status is returned as is.
    let mut cmd = wrapper(&sb, T0 + 301, &standin);
    cmd.env("STANDIN_EXIT", "81");
    assert_eq!(
        queue_output(cmd, message, envelope(ALICE, &[JOHN])).code,
        81
    );
}

fn reject_and_malformed_envelope(backend: Backend) {
    // DESIGN.md §5: reject exits 31, a malformed envelope 91; the real queue is not run.
    let sb = Sandbox::on(backend);
    let standin = sb.standin_queue("real-queue");
    let mut cmd = wrapper(&sb, T0, &standin);
    cmd.env("TCPREMOTEHOST", "ppp-42.isp.example");
    let run = queue_output(cmd, b"Subject: x\n\ny\n".to_vec(), envelope(ALICE, &[JOHN]));
    assert_eq!(run.code, 31, "{}", run.stderr);
    assert!(run.stderr.contains(
        "list type: black, from: ppp-42.isp.example, match string: dynamic|ppp|dyn-ip|dial-up"
    ));
    for bad in [&b""[..], b"Talice\0\0", b"Fa@b\0Tj@l\0", b"Fa@b\0Xj@l\0\0"] {
        let mut cmd = wrapper(&sb, T0, &standin);
        cmd.env("RELAYCLIENT", "");
        let run = queue_output(cmd, b"Subject: x\n\ny\n".to_vec(), bad.to_vec());
        assert_eq!(run.code, 91, "{bad:?}: {}", run.stderr);
    }
    assert_eq!(recorded(&sb.path("real-queue.message")), None);
}

#[test]
fn real_queue_that_cannot_run_exits_71() {
    // DESIGN.md §5: a real qmail-queue that cannot be run is a temporary failure (nothing is lost).
    let sb = Sandbox::new();
    let missing = sb.path("no-such-queue");
    let mut cmd = wrapper(&sb, T0, &missing);
    cmd.env("RELAYCLIENT", "");
    let run = queue_output(cmd, b"Subject: x\n\ny\n".to_vec(), envelope(ALICE, &[JOHN]));
    assert_eq!(run.code, 71, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot run the real qmail-queue"),
        "{}",
        run.stderr
    );
}

#[test]
fn renamed_install_finds_qmail_queue_orig_beside_itself() {
    // DESIGN.md §5: installed as `qmail-queue`, the real queue is `qmail-queue.orig` beside it.
    let sb = Sandbox::new();
    let bin = sb.path("bin");
    std::fs::create_dir(&bin).unwrap();
    let exe = assert_cmd::cargo::cargo_bin("greylisting-filter");
    std::os::unix::fs::symlink(&exe, bin.join("qmail-queue")).unwrap();
    let standin = sb.standin_queue("bin/qmail-queue.orig");
    assert_eq!(standin, bin.join("qmail-queue.orig"));
    let mut cmd = Command::new(bin.join("qmail-queue"));
    cmd.env_clear()
        .env("GREY_LISTING_DB", &sb.db)
        .env("GREY_LISTING_LOG", "stderr")
        .env("GREY_LISTING_NOW", T0.to_string())
        .env("TCPREMOTEIP", "198.51.100.7")
        .env("RELAYCLIENT", "");
    let message = b"Subject: renamed\n\nbody\n".to_vec();
    let run = queue_output(cmd, message.clone(), envelope(ALICE, &[JOHN]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        recorded(&bin.join("qmail-queue.orig.message")).unwrap(),
        message
    );
    assert_eq!(
        recorded(&bin.join("qmail-queue.orig.envelope")).unwrap(),
        envelope(ALICE, &[JOHN])
    );
    // The filter ignores SIGXFSZ for itself; the real queue must start with the default.
    let sigign =
        String::from_utf8(recorded(&bin.join("qmail-queue.orig.sigign")).unwrap()).unwrap();
    let mask = u64::from_str_radix(sigign.trim().trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_eq!(
        mask & (1 << (libc::SIGXFSZ - 1)),
        0,
        "SIGXFSZ ignored in the real queue: {sigign}"
    );
}

#[test]
fn spool_write_failure_keeps_the_message_in_memory() {
    // DESIGN.md §5 (large messages are spooled) and fail open: when the spool file cannot be
    // written — simulated with a file-size limit (RLIMIT_FSIZE, soft only; the stand-in lifts it
    // for itself) hit at the first write (1 MiB) or in the middle (2 MiB) — the 3 MiB message is
    // kept in memory and still queued intact.
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    let standin = sb.standin_queue("real-queue");
    let message = message_of(3 << 20, 11);
    for limit in [1u64 << 20, 2 << 20] {
        let _ = std::fs::remove_file(sb.path("real-queue.message"));
        let mut cmd = wrapper(&sb, T0, &standin);
        cmd.env("RELAYCLIENT", "");
        // SAFETY: only the async-signal-safe `setrlimit` runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let limit = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let run = queue_output(cmd, message.clone(), envelope(ALICE, &[JOHN]));
        assert_eq!(run.code, 0, "limit {limit}: {}", run.stderr);
        assert!(
            run.stderr.contains("cannot write the spool file"),
            "limit {limit}: {}",
            run.stderr
        );
        assert!(
            recorded(&sb.path("real-queue.message")).unwrap() == message,
            "limit {limit}"
        );
    }
}

#[test]
fn unreadable_message_or_envelope_exits_54() {
    // qmail-queue(8): 54 = unable to read the message or envelope (temporary). A directory on
    // fd 0 or fd 1 makes every read fail (EISDIR).
    use std::process::Stdio;
    let sb = Sandbox::new();
    let standin = sb.standin_queue("real-queue");
    let envelope_file = sb.path("envelope");
    std::fs::write(&envelope_file, envelope(ALICE, &[JOHN])).unwrap();
    let message_file = sb.path("message");
    std::fs::write(&message_file, b"Subject: x\n\ny\n").unwrap();
    let dir = || std::fs::File::open(sb.dir.path()).unwrap();
    let file = |p: &std::path::Path| std::fs::File::open(p).unwrap();
    for (stdin, stdout, what) in [
        (dir(), file(&envelope_file), "message"),
        (file(&message_file), dir(), "envelope"),
    ] {
        let mut cmd = wrapper(&sb, T0, &standin);
        cmd.env("RELAYCLIENT", "")
            .stdin(Stdio::from(stdin))
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::piped());
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(54), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("error reading the {what}")),
            "{stderr}"
        );
    }
    assert_eq!(recorded(&sb.path("real-queue.message")), None);
}

on_both_stores!(
    greylisting_in_qmail_queue_mode,
    reject_and_malformed_envelope,
);
