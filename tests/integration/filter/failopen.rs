//! The filter fails open (DESIGN.md §4, §5): whatever is wrong with the database, the
//! mail passes (`SKIP`, or the real qmail-queue runs) and the error is logged. And it never
//! panics, whatever the argv, environment or input (proptest).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::path::Path;

use proptest::prelude::*;

use crate::support::filter::{
    PLAIN_MESSAGE, Sandbox, T0, envelope, handler_output, queue_output, recorded,
};

const ALICE: &str = "alice@sender.example";
const JOHN: &str = "john@local.example";

/// Runs both modes against the database at `db` (a path or a URL) and asserts that the mail
/// passes with an error logged: `SKIP` in handler mode, the real queue run with identical bytes
/// in qmail-queue mode. Returns both runs' stderr text, for further checks.
pub(crate) fn assert_fails_open(
    sb: &Sandbox,
    db: impl AsRef<OsStr>,
    what: &str,
) -> (String, String) {
    let db = db.as_ref();
    let mut cmd = sb.filter(T0);
    cmd.env("GREY_LISTING_DB", db).args(["ctx", ALICE, JOHN]);
    let handler = handler_output(cmd, PLAIN_MESSAGE.as_bytes());
    let run = &handler;
    run.assert_verdict("SKIP");
    assert!(
        run.logs()
            .iter()
            .any(|l| l.starts_with("error: ") && l.ends_with("passing the message (fail open)")),
        "{what}: no error logged: {run:#?}"
    );
    let standin = sb.standin_queue("real-queue");
    let _ = std::fs::remove_file(sb.path("real-queue.message"));
    let mut cmd = sb.filter(T0);
    cmd.arg("--qmail-queue")
        .env("GREY_LISTING_DB", db)
        .env("GREY_QMAIL_QUEUE", &standin)
        .env("TCPREMOTEIP", "198.51.100.7");
    let run = queue_output(
        cmd,
        PLAIN_MESSAGE.as_bytes().to_vec(),
        envelope(ALICE, &[JOHN]),
    );
    assert_eq!(run.code, 0, "{what}: {}", run.stderr);
    assert!(run.stderr.contains("fail open"), "{what}: {}", run.stderr);
    assert_eq!(
        recorded(&sb.path("real-queue.message")).unwrap(),
        PLAIN_MESSAGE.as_bytes(),
        "{what}"
    );
    assert_eq!(
        recorded(&sb.path("real-queue.envelope")).unwrap(),
        envelope(ALICE, &[JOHN]),
        "{what}"
    );
    (handler.lines.join("\n"), run.stderr)
}

#[test]
fn directory_missing_and_not_creatable() {
    let sb = Sandbox::new();
    let file = sb.path("regular-file");
    std::fs::write(&file, "not a directory").unwrap();
    assert_fails_open(&sb, file.join("sub/greylist.db"), "uncreatable directory");
}

#[test]
fn database_file_of_random_bytes() {
    let sb = Sandbox::new();
    let db = sb.path("garbage.db");
    let bytes: Vec<u8> = (0..16_384u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, bytes).unwrap();
    assert_fails_open(&sb, &db, "random bytes");
}

#[test]
fn unreachable_database_url() {
    // A PostgreSQL location that cannot be reached (nothing listens on port 1).
    let sb = Sandbox::new();
    assert_fails_open(
        &sb,
        Path::new("postgres://nobody@127.0.0.1:1/none"),
        "unreachable URL",
    );
}

#[test]
fn database_locked_past_the_busy_timeout() {
    // DESIGN.md §1: a lock held past the busy timeout (5 s) makes the filter fail open. Bounded: the
    // lock is released as soon as both runs are done (about 5 s each).
    let sb = Sandbox::new();
    sb.handle(T0, ALICE, JOHN).assert_verdict("DEFER");
    let holder = sb.sql();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    assert_fails_open(&sb, &sb.db, "locked database");
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    // Once the lock is gone the triplet is found again (nothing was corrupted).
    sb.handle(T0 + 300, ALICE, JOHN).assert_verdict("SKIP");
}

/// Limits the files `cmd` may grow to `bytes` (soft limit only, so the stand-in queue can lift
/// it for itself with `ulimit -f unlimited`).
fn limit_file_size(cmd: &mut std::process::Command, bytes: u64) {
    // SAFETY: only the async-signal-safe `setrlimit` runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn disk_full_while_writing() {
    // "Disk full" simulated with a file-size limit of 0 bytes (RLIMIT_FSIZE): every write that
    // would grow a file fails (EFBIG), as with ENOSPC, without needing a tmpfs or loop mount
    // (which need CAP_SYS_ADMIN, absent in CI containers). The filter ignores SIGXFSZ so the
    // failed write is an error it can handle. The database exists and its WAL must grow for the
    // new triplet, so the write fails in both modes.
    let sb = Sandbox::new();
    sb.handle(T0, ALICE, JOHN).assert_verdict("DEFER");
    let rows_before = sb.triplets();

    let mut cmd = sb.filter(T0 + 300);
    cmd.args(["ctx", "bob@sender.example", JOHN]);
    limit_file_size(&mut cmd, 0);
    let run = handler_output(cmd, PLAIN_MESSAGE.as_bytes());
    run.assert_verdict("SKIP");
    assert!(run.logged("fail open"), "{run:#?}");

    let standin = sb.standin_queue("real-queue");
    let mut cmd = sb.filter(T0 + 300);
    cmd.arg("--qmail-queue")
        .env("GREY_QMAIL_QUEUE", &standin)
        .env("TCPREMOTEIP", "198.51.100.7");
    limit_file_size(&mut cmd, 0);
    let env_bytes = envelope("carol@sender.example", &[JOHN]);
    let run = queue_output(cmd, PLAIN_MESSAGE.as_bytes().to_vec(), env_bytes.clone());
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("fail open"), "{}", run.stderr);
    assert_eq!(
        recorded(&sb.path("real-queue.message")).unwrap(),
        PLAIN_MESSAGE.as_bytes()
    );
    assert_eq!(
        recorded(&sb.path("real-queue.envelope")).unwrap(),
        env_bytes
    );

    assert_eq!(sb.triplets(), rows_before, "nothing may be half-written");
}

fn os(bytes: Vec<u8>) -> OsString {
    OsString::from_vec(bytes.into_iter().filter(|&b| b != 0).collect())
}

fn env_strategy() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    let name = prop::sample::select(vec![
        "TCPREMOTEIP",
        "TCPREMOTEHOST",
        "RELAYCLIENT",
        "SMTPAUTHUSER",
        "AUTHUSER",
        "GREY_LISTING_NOW",
        "GREY_LISTING_PURGE_ONE_IN",
        "GREY_LISTING_CONF",
    ]);
    let value = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..40),
        Just(b"-9223372036854775808".to_vec()),
        Just(b"9223372036854775807".to_vec()),
        Just(b"::ffff:192.0.2.1".to_vec()),
        Just(b"1".to_vec()),
        "[0-9.:a-f]{0,20}".prop_map(String::into_bytes),
    ];
    prop::collection::vec((name.prop_map(str::to_string), value), 0..6)
}

fn input_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000),
        "(Received: from [ -~]{0,60}\\(([ -~]{0,30})\\)[ -~]{0,40}\r?\n){0,3}\n[ -~]{0,30}"
            .prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn handler_never_panics(
        argv in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..30), 0..6),
        env in env_strategy(),
        input in input_strategy(),
    ) {
        // DESIGN.md §5: always exactly one verdict line, last, with its exit status; no panic.
        let sb = Sandbox::new();
        let mut cmd = sb.filter(T0);
        cmd.args(argv.into_iter().map(os));
        for (name, value) in env {
            cmd.env(name, os(value));
        }
        let run = handler_output(cmd, &input);
        prop_assert!((1..=3).contains(&run.code), "{run:#?}");
        let expected = ["", "SKIP", "DEFER", "REJECT"][run.code as usize];
        prop_assert_eq!(run.verdict(), expected);
        let (_, before) = run.lines.split_last().unwrap();
        prop_assert!(before.iter().all(|l| l.starts_with("LOG ")), "{run:#?}");
        prop_assert!(!run.logged("internal error"), "{run:#?}");
    }

    #[test]
    fn qmail_queue_mode_never_panics(
        env in env_strategy(),
        message in prop::collection::vec(any::<u8>(), 0..3000),
        raw_envelope in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            ("[ -~]{0,20}", prop::collection::vec("[ -~]{0,20}", 0..4))
                .prop_map(|(s, r)| envelope(&s, &r.iter().map(String::as_str).collect::<Vec<_>>())),
        ],
    ) {
        // DESIGN.md §5: only qmail-queue's statuses; on pass the real queue gets identical bytes.
        let sb = Sandbox::new();
        let standin = sb.standin_queue("real-queue");
        let mut cmd = sb.filter(T0);
        cmd.arg("--qmail-queue").env("GREY_QMAIL_QUEUE", &standin);
        for (name, value) in env {
            cmd.env(name, os(value));
        }
        let run = queue_output(cmd, message.clone(), raw_envelope.clone());
        prop_assert!([0, 31, 71, 91].contains(&run.code), "{run:#?}");
        prop_assert!(!run.stderr.contains("internal error"), "{}", run.stderr);
        if run.code == 0 {
            prop_assert_eq!(recorded(&sb.path("real-queue.message")), Some(message));
            prop_assert_eq!(recorded(&sb.path("real-queue.envelope")), Some(raw_envelope));
        }
    }
}
