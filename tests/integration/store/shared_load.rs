//! All four binaries on one SQLite database at the same moment: the milter and the policy
//! server each under tens of concurrent sessions (new and retried triplets mixed), the filter
//! run again and again, and the admin CLI changing settings and lists, listing them, purging
//! and backing up meanwhile. Whoever waits for whom, every answer must be a real decision
//! (never a fail-open pass because the database was busy), no daemon dies, every CLI command
//! succeeds, the database stays sound, and a CLI change reaches both daemons' next decision.

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::shared::{both_daemons, filter_cmd, filter_run};
use crate::policyd::lifecycle::fresh_sender;
use crate::policyd::server::{self, Server, request};
use crate::support::filter::{PLAIN_MESSAGE, handler_output};
use crate::support::milter::{DEFER as MILTER_DEFER, Milter, Mta, reply_text};

/// The milter's reply to a rejected recipient.
const MILTER_REJECT: &str = "550 5.7.1 Command rejected";
/// Concurrent milter sessions and policy clients.
const SESSIONS: usize = 16;
/// How long the daemons are kept busy.
const LOAD: Duration = Duration::from_secs(3);

/// What one CLI run printed and returned.
#[derive(Debug)]
pub(crate) struct AdminRun {
    pub args: Vec<String>,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `grey_listing --db DB ARGS` (no database from the environment).
pub(crate) fn admin(db: &Path, args: &[&str]) -> AdminRun {
    let out = Command::new(assert_cmd::cargo::cargo_bin("grey_listing"))
        .env_remove("GREY_LISTING_DB")
        .env_remove("GREY_LISTING_NOW")
        .env("GREY_LISTING_CONF", "/nonexistent/grey_listing.conf")
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .unwrap();
    AdminRun {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// How many answers each front end gave during the load.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub milter: AtomicUsize,
    pub policyd: AtomicUsize,
    pub filter: AtomicUsize,
}

/// One milter session of worker `worker`, round `round`: a client network of its own, a few
/// recipients in turn (so triplets are retried), every seventh session from a black-listed host.
fn milter_session(milter: &Milter, worker: usize, round: usize) {
    let mut mta = milter.connect();
    let (host, address) = if round % 7 == 6 {
        ("host.dsl.example".to_string(), format!("198.18.{worker}.9"))
    } else {
        (format!("[198.19.{worker}.9]"), format!("198.19.{worker}.9"))
    };
    let sender = format!("<{}>", fresh_sender(round % 3));
    Mta::start_message(&host, b'4', &address, &sender, &mut mta);
    let reply = mta.rcpt(&format!("<u{}@local.example>", round % 4));
    let valid = reply == (b'c', Vec::new())
        || (reply.0 == b'y'
            && [MILTER_DEFER, MILTER_REJECT].contains(&reply_text(&reply).as_str()));
    assert!(valid, "milter worker {worker} round {round}: {reply:?}");
    mta.send(b'Q', b"");
}

/// One policy client's requests, on one connection as Postfix keeps it, test time moving on
/// by a minute per request so retries come both early and late.
fn policy_client(server: &Server, worker: usize, stop: &AtomicBool, tally: &Tally) {
    let mut c = server.connect();
    let base = grey_listing::clock::system_now();
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let reply = c.ask(&request(
            &format!("10.{worker}.{}.1", round % 2),
            "unknown",
            &fresh_sender(round % 3),
            &format!("u{}@local.example", round % 5),
            &[("policy_test_time", &(base + 60 * round as i64).to_string())],
        ));
        let valid = [server::DEFER, server::REJECT, server::DUNNO].contains(&reply.as_str())
            || reply.starts_with("action=PREPEND X-Greylist: delayed ");
        assert!(valid, "policy worker {worker} round {round}: {reply}");
        tally.policyd.fetch_add(1, Ordering::Relaxed);
        round += 1;
    }
}

/// Filter runs one after the other until `stop`, at the real time.
fn filter_runs(db: &Path, worker: usize, purge: bool, stop: &AtomicBool, tally: &Tally) {
    let mut round = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let now = grey_listing::clock::system_now();
        let ip = format!("203.0.{worker}.{}", round % 50);
        let sender = fresh_sender(round % 3);
        let mut cmd = filter_cmd(db, now, [&ip, "", &sender, "U@Local.Example"]);
        // The filter's own bounded purge, on every run or at its default odds.
        cmd.env("GREY_LISTING_PURGE_ONE_IN", if purge { "1" } else { "100" });
        let run = handler_output(cmd, PLAIN_MESSAGE.as_bytes());
        assert!(
            ["SKIP", "DEFER", "REJECT"].contains(&run.verdict()),
            "filter worker {worker}: {run:#?}"
        );
        assert!(!run.logged("error"), "filter worker {worker}: {run:#?}");
        tally.filter.fetch_add(1, Ordering::Relaxed);
        round += 1;
    }
}

/// Keeps both daemons and the filter busy for [`LOAD`] while `admin_loop` runs the CLI (it is
/// handed the stop flag and must return once it is set). Returns the tally and the admin runs.
pub(crate) fn under_load(
    db: &Path,
    milter: &Milter,
    server: &Server,
    purge_every_run: bool,
    admin_loop: impl FnOnce(&AtomicBool) -> Vec<AdminRun> + Send,
) -> (Tally, Vec<AdminRun>) {
    let stop = AtomicBool::new(false);
    let tally = Tally::default();
    let admin_runs = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for worker in 0..SESSIONS {
            let (stop, tally) = (&stop, &tally);
            scope.spawn(move || {
                let mut round = 0;
                while !stop.load(Ordering::Relaxed) {
                    milter_session(milter, worker, round);
                    tally.milter.fetch_add(1, Ordering::Relaxed);
                    round += 1;
                }
            });
            scope.spawn(move || policy_client(server, worker, stop, tally));
        }
        for worker in 0..2 {
            let (stop, tally) = (&stop, &tally);
            scope.spawn(move || filter_runs(db, worker, purge_every_run, stop, tally));
        }
        let (stop_ref, runs_ref) = (&stop, &admin_runs);
        let admin_thread = scope.spawn(move || {
            let runs = admin_loop(stop_ref);
            runs_ref.lock().unwrap().extend(runs);
        });
        let started = Instant::now();
        while started.elapsed() < LOAD && !admin_thread.is_finished() {
            std::thread::sleep(Duration::from_millis(50));
        }
        stop.store(true, Ordering::Relaxed);
    });
    (tally, admin_runs.into_inner().unwrap())
}

/// Log lines that name a failure: the store's, a panic's, or a lock's.
pub(crate) fn failure_lines(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            ["error", "locked", "busy", "panic", "mail passes"]
                .iter()
                .any(|w| l.contains(w))
        })
        .cloned()
        .collect()
}

/// The decision lines (`action=...`) in `lines`.
pub(crate) fn decisions(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.contains(": action=")).count()
}

/// `PRAGMA integrity_check` of the SQLite file at `path`.
pub(crate) fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// Both daemons still answer, with real decisions: one new triplet each.
fn still_deciding(milter: &Milter, server: &Server, tag: usize) {
    let mut mta = milter.connect();
    Mta::start_message(
        "[198.51.100.7]",
        b'4',
        "198.51.100.7",
        "<after@load.example>",
        &mut mta,
    );
    assert_eq!(
        reply_text(&mta.rcpt(&format!("<after{tag}@local.example>"))),
        MILTER_DEFER
    );
    let mut c = server.connect();
    let reply = c.ask(&request(
        "192.0.2.7",
        "unknown",
        "after@load.example",
        &format!("after{tag}@local.example"),
        &[],
    ));
    assert_eq!(reply, server::DEFER);
}

/// Runs `commands` in turn, over and over, until `stop`.
fn cycle(db: &Path, stop: &AtomicBool, commands: &[Vec<String>]) -> Vec<AdminRun> {
    let mut runs = Vec::new();
    for command in commands.iter().cycle() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let args: Vec<&str> = command.iter().map(String::as_str).collect();
        runs.push(admin(db, &args));
    }
    runs
}

/// Every CLI run succeeded and said nothing on stderr.
fn all_succeeded(runs: &[AdminRun]) {
    assert!(!runs.is_empty());
    for run in runs {
        assert_eq!((run.code, run.stderr.as_str()), (0, ""), "{run:#?}");
        assert!(run.stdout.contains("SUCCESS: "), "{run:#?}");
    }
}

/// Neither daemon logged a failure, and each logged one decision per answer it gave (the
/// policy server `earlier` more, for requests before the load).
fn clean_logs(milter: &Milter, server: &Server, tally: &Tally, earlier: usize) {
    let milter_lines = milter.log_lines();
    let server_lines = server.log_lines();
    assert_eq!(failure_lines(&milter_lines), Vec::<String>::new(), "milter");
    assert_eq!(
        failure_lines(&server_lines),
        Vec::<String>::new(),
        "policy server"
    );
    // The log is collected as it comes: wait (bounded) for the last lines.
    let deadline = Instant::now() + Duration::from_secs(10);
    let counts = || {
        (
            decisions(&milter.log_lines()),
            decisions(&server.log_lines()),
        )
    };
    let want = (
        tally.milter.load(Ordering::Relaxed),
        tally.policyd.load(Ordering::Relaxed) + earlier,
    );
    while counts() != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(counts(), want, "one decision line per answer");
    // Four writers, one set of counters: none lost, none counted twice.
    let counted = |component: &str| -> usize {
        let conn = rusqlite::Connection::open(&milter.db).unwrap();
        conn.query_row(
            "SELECT coalesce(sum(count), 0) FROM decision_counters WHERE component = ?1",
            [component],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| usize::try_from(n).unwrap())
        .unwrap()
    };
    assert_eq!(
        (counted("milter"), counted("policyd"), counted("filter")),
        (want.0, want.1, tally.filter.load(Ordering::Relaxed)),
        "decisions counted per component"
    );
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|a| a.to_string()).collect()
}

// Settings and lists changed and listed with the CLI while both daemons decide under load
// and the filter runs: only real decisions, every CLI command succeeds, the database is sound,
// and afterwards a change reaches both daemons' (and the filter's) next decision.
#[test]
fn cli_changes_while_both_daemons_and_the_filter_decide() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (mut milter, mut server) = both_daemons(&db);
    let commands = [
        args(&["-u", "-grey-interval", "0"]),
        args(&["-i"]),
        args(&["-u", "-whitelist", "add:*@white.example"]),
        args(&["-u", "-blacklist", "add:*@black.example"]),
        args(&[
            "-um",
            "u1@local.example",
            "-whitelist",
            "add:*@friend.example",
        ]),
        args(&["-u", "-grey-interval", "1"]),
        args(&["-u", "-domains-blacklist", "add:blocked-host"]),
        args(&["-im", "u1@local.example"]),
        args(&["-u", "-whitelist", "del:*@white.example"]),
        args(&["-u", "-blacklist", "del:*@black.example"]),
        args(&[
            "-um",
            "u1@local.example",
            "-whitelist",
            "del:*@friend.example",
        ]),
        args(&["-u", "-domains-blacklist", "del:blocked-host"]),
    ];
    let (tally, runs) = under_load(&db, &milter, &server, false, |stop| {
        cycle(&db, stop, &commands)
    });
    all_succeeded(&runs);
    clean_logs(&milter, &server, &tally, 0);
    assert!(tally.filter.load(Ordering::Relaxed) > 0, "{tally:?}");
    still_deciding(&milter, &server, 1);

    // A black-list entry: rejected by all three at their next decision.
    let added = admin(&db, &["-u", "-blacklist", "add:*@final.example"]);
    assert_eq!((added.code, added.stderr.as_str()), (0, ""), "{added:#?}");
    let mut mta = milter.connect();
    Mta::start_message(
        "[198.51.100.7]",
        b'4',
        "198.51.100.7",
        "<x@final.example>",
        &mut mta,
    );
    assert_eq!(reply_text(&mta.rcpt("<v@local.example>")), MILTER_REJECT);
    drop(mta);
    let mut c = server.connect();
    let r = |sender: &str| request("192.0.2.8", "unknown", sender, "v@local.example", &[]);
    assert_eq!(c.ask(&r("x@final.example")), server::REJECT);
    let now = grey_listing::clock::system_now();
    filter_run(&db, now, "192.0.2.9", "", "x@final.example").assert_verdict("REJECT");

    // Greylisting off: passed by both daemons at their next decision.
    let off = admin(&db, &["-u", "-status", "off"]);
    assert_eq!((off.code, off.stderr.as_str()), (0, ""), "{off:#?}");
    let mut mta = milter.connect();
    Mta::start_message(
        "[198.51.100.7]",
        b'4',
        "198.51.100.7",
        "<y@sender.example>",
        &mut mta,
    );
    assert_eq!(mta.rcpt("<w@local.example>"), (b'c', Vec::new()));
    milter.wait_log("action=pass, reason=disabled, client_name=unknown, client_address=198.51.100.7, sender=y@sender.example");
    assert_eq!(c.ask(&r("y@sender.example")), server::DUNNO);
    server.wait_log("action=pass, reason=disabled, client_name=unknown, client_address=192.0.2.8, sender=y@sender.example");
    // Open connections (a message in progress among them) would hold the stop up.
    drop((mta, c));

    assert_eq!(integrity(&db), "ok");
    stop_both(&mut milter, &mut server);
    server.terminate();
    assert_eq!((milter.wait_exit(), server.wait_exit()), (Some(0), Some(0)));
}

// `--purge` and `--backup` while both daemons decide under load and the filter purges on
// every run: no daemon error, every purge and backup succeeds, each backup is a sound database
// of the current schema, and the expired triplets are gone.
#[test]
fn purge_and_backup_while_both_daemons_and_the_filter_decide() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("g.db");
    let (mut milter, mut server) = both_daemons(&db);
    // Triplets first seen 100 days ago and never retried: long expired.
    let old = grey_listing::clock::system_now() - 100 * 86_400;
    let mut c = server.connect();
    for n in 0..50 {
        let reply = c.ask(&request(
            "192.0.2.50",
            "unknown",
            &fresh_sender(n),
            "old@local.example",
            &[("policy_test_time", &old.to_string())],
        ));
        assert_eq!(reply, server::DEFER);
    }
    let backups = dir.path().join("backups");
    std::fs::create_dir(&backups).unwrap();
    let commands: Vec<Vec<String>> = (0..4)
        .flat_map(|n| {
            let target = backups.join(format!("bk{n}.db")).display().to_string();
            [args(&["--purge"]), args(&["--backup", &target])]
        })
        .collect();
    let (tally, runs) = under_load(&db, &milter, &server, true, |stop| {
        cycle(&db, stop, &commands)
    });
    all_succeeded(&runs);
    assert!(runs.iter().any(|r| r.args[0] == "--backup"), "{runs:#?}");
    clean_logs(&milter, &server, &tally, 50);
    still_deciding(&milter, &server, 2);
    drop(c);

    let now = grey_listing::clock::system_now();
    let expired = server::live_triplets(db.to_str().unwrap())
        .iter()
        .filter(|t| t.expires <= now)
        .count();
    assert_eq!(expired, 0, "purged");
    for entry in std::fs::read_dir(&backups).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(integrity(&path), "ok", "{}", path.display());
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        let settings: i64 = conn
            .query_row("SELECT count(*) FROM settings", [], |r| r.get(0))
            .unwrap();
        assert!(version > 0 && settings > 0, "{}", path.display());
    }
    assert_eq!(integrity(&db), "ok");
    stop_both(&mut milter, &mut server);
    server.terminate();
    assert_eq!((milter.wait_exit(), server.wait_exit()), (Some(0), Some(0)));
}

/// SIGTERM to both daemons: each exits 0 (it did not die under the load).
fn stop_both(milter: &mut Milter, server: &mut Server) {
    milter.signal(libc::SIGTERM);
    server.terminate();
    assert_eq!((milter.wait_exit(), server.wait_exit()), (Some(0), Some(0)));
}
