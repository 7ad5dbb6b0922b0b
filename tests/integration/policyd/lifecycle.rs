//! `greylisting-policyd` on a real server's terms: the database deleted or replaced under it, and
//! SIGHUP. The real binary, real signals, a temporary database. Also the harness of
//! `policy_options` (a server started with exactly the given arguments and environment).

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::policyd::server::{Client, DEFER, DUNNO, cli, request, triplet_count};
use crate::support::daemon::{DaemonChild, DaemonLog};

/// The bound within which a deleted or replaced database must be noticed, times three.
pub(crate) const NOTICE_WITHIN: Duration = Duration::from_secs(15);

pub(crate) fn policyd_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("greylisting-policyd")
}

/// A policy server started with exactly the given arguments and environment.
pub(crate) struct Daemon {
    child: DaemonChild,
    addr: String,
    log: DaemonLog,
}

impl Daemon {
    /// Starts `greylisting-policyd ARGS` under `umask` with `env` added (and `GREY_LISTING_DB`
    /// removed, so the configuration file counts); waits until it listens.
    pub(crate) fn start(args: &[&str], env: &[(&str, &str)], umask: &str) -> Daemon {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("umask \"$0\"; exec \"$@\"")
            .arg(umask)
            .arg(policyd_bin())
            .args(args)
            .env_remove("GREY_LISTING_DB")
            .env("GREY_LISTING_LOG", "stderr")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        Daemon::from_child(command.spawn().unwrap())
    }

    /// Collects the log of a started server (stderr piped); waits until it listens.
    pub(crate) fn from_child(child: Child) -> Daemon {
        let mut child = DaemonChild::new(child, "server");
        let (addr, log) = child.listening();
        Daemon { child, addr, log }
    }

    pub(crate) fn connect(&self) -> Client {
        match self.addr.strip_prefix("unix:") {
            Some(path) => Client::over(Box::new(UnixStream::connect(path).unwrap())),
            None => Client::over(Box::new(std::net::TcpStream::connect(&self.addr).unwrap())),
        }
    }

    pub(crate) fn signal(&self, signal: i32) {
        self.child.signal(signal);
    }

    pub(crate) fn wait_log(&self, needle: &str) -> String {
        self.log.wait_for(needle)
    }

    /// Every log line collected so far.
    pub(crate) fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.child.is_running()
    }

    pub(crate) fn wait_exit(&mut self) -> Option<i32> {
        self.child.wait_exit()
    }
}

pub(crate) fn path_str(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A sender nobody used before: `n` spelt in letters, since digit runs in a sender fold
/// together.
pub(crate) fn fresh_sender(n: usize) -> String {
    let mut word = String::new();
    let mut rest = n;
    loop {
        word.push(char::from(b'a' + (rest % 26) as u8));
        rest /= 26;
        if rest == 0 {
            break;
        }
    }
    format!("{word}@sender.example")
}

/// A request for a triplet nobody asked about before.
pub(crate) fn fresh_request(n: usize) -> String {
    request(
        "198.51.100.7",
        "unknown",
        &fresh_sender(n),
        "u@local.example",
        &[],
    )
}

/// Asks fresh triplets until the answer is `want`; panics after `NOTICE_WITHIN` from `since`.
fn until_answer(client: &mut Client, want: &str, since: Instant, first: usize) -> usize {
    let mut n = first;
    loop {
        n += 1;
        if client.ask(&fresh_request(n)) == want {
            return n;
        }
        assert!(
            since.elapsed() < NOTICE_WITHIN,
            "still no {want:?} {NOTICE_WITHIN:?} after the database changed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A database as a restore brings it: made by the CLI (`grey_listing ARGS`), then one
/// self-contained file, as --backup writes it, with no log beside it.
pub(crate) fn restored_copy(path: &Path, args: &[&str]) {
    cli(path_str(path), args);
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA journal_mode=DELETE", [], |_| Ok(()))
        .unwrap();
}

pub(crate) fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

// `rm greylist.db*` under a running server: it notices within 5 s and creates a new database as
// the CLI would, so a CLI change on the new file applies and triplets go to the new file.
#[test]
fn deleted_database_is_noticed_and_the_new_file_used() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("greylist.db");
    cli(path_str(&db), &["-u", "-grey-interval", "5"]);
    let server = Daemon::start(
        &["--listen", "127.0.0.1:0", "--db", path_str(&db)],
        &[],
        "007",
    );
    let mut client = server.connect();
    assert_eq!(client.ask(&fresh_request(0)), DEFER);
    remove_database(&db);
    let removed = Instant::now();
    // Left alone, the server creates the new database itself.
    server.wait_log("was deleted: creating a new one");
    assert!(removed.elapsed() < NOTICE_WITHIN);
    server.wait_log(&format!("database {} reopened", db.display()));
    assert!(db.exists());
    cli(path_str(&db), &["-u", "-status", "off"]);
    let n = until_answer(&mut client, DUNNO, removed, 0);
    // Greylisting on again in the new file: a fresh triplet is deferred and stored there.
    cli(path_str(&db), &["-u", "-status", "on"]);
    let before = triplet_count(path_str(&db));
    assert_eq!(client.ask(&fresh_request(n + 1)), DEFER);
    assert_eq!(triplet_count(path_str(&db)), before + 1);
}

// A restored copy moved over the database: the server switches to it within 5 s.
#[test]
fn database_replaced_by_mv_is_reopened() {
    replaced_by_mv(&[]);
}

// The same with a pool of connections, each of which must switch.
#[test]
fn database_replaced_by_mv_is_reopened_by_every_pooled_connection() {
    replaced_by_mv(&["--db-connections", "3"]);
}

fn replaced_by_mv(extra: &[&str]) {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("greylist.db");
    cli(path_str(&db), &["-u", "-grey-interval", "5"]);
    let server = Daemon::start(
        &[
            &["--listen", "127.0.0.1:0", "--db", path_str(&db)][..],
            extra,
        ]
        .concat(),
        &[],
        "007",
    );
    let mut client = server.connect();
    assert_eq!(client.ask(&fresh_request(0)), DEFER);
    // Senders spread over every pooled connection.
    for n in 100..110 {
        assert_eq!(client.ask(&fresh_request(n)), DEFER);
    }
    let restored = dir.path().join("restored.db");
    restored_copy(&restored, &["-u", "-status", "off"]);
    // Only the file is moved: the log of the old database stays at the path, and must not be
    // applied to the restored one.
    std::fs::rename(&restored, &db).unwrap();
    let moved = Instant::now();
    let n = until_answer(&mut client, DUNNO, moved, 0);
    server.wait_log("was replaced by another file");
    // Every connection switches: ten senders in a row, all on the restored configuration.
    for m in n + 1..n + 11 {
        while client.ask(&fresh_request(m)) != DUNNO {
            assert!(
                moved.elapsed() < NOTICE_WITHIN,
                "a connection stayed on the old file"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    cli(path_str(&db), &["-u", "-status", "on"]);
    // The restored file had no triplet (those decided before are in the old file): the new
    // ones go into it.
    assert_eq!(triplet_count(path_str(&db)), 0);
    for m in 200..210 {
        assert_eq!(client.ask(&fresh_request(m)), DEFER);
    }
    assert_eq!(triplet_count(path_str(&db)), 10);
}

// SIGHUP used to kill the server (exit 129). Now it reads the configuration file again and
// serves on, from the database the file now names.
#[test]
fn sighup_rereads_the_configuration_file_and_serves_on() {
    let dir = TempDir::new().unwrap();
    let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
    let conf = dir.path().join("grey_listing.conf");
    std::fs::write(&conf, format!("db = {}\n", a.display())).unwrap();
    cli(path_str(&b), &["-u", "-grey-interval", "5"]);
    let mut server = Daemon::start(
        &["--listen", "127.0.0.1:0"],
        &[("GREY_LISTING_CONF", path_str(&conf))],
        "007",
    );
    let mut client = server.connect();
    assert_eq!(client.ask(&fresh_request(1)), DEFER);
    assert_eq!(triplet_count(path_str(&a)), 1);
    std::fs::write(&conf, format!("# moved\ndb = {}\n", b.display())).unwrap();
    server.signal(libc::SIGHUP);
    server.wait_log(&format!(
        "database changed from {} to {}",
        a.display(),
        b.display()
    ));
    assert!(server.is_running(), "SIGHUP ended the server");
    // The same connection goes on; decisions now go to b.
    assert_eq!(client.ask(&fresh_request(2)), DEFER);
    assert_eq!(triplet_count(path_str(&b)), 1);
    assert_eq!(triplet_count(path_str(&a)), 1);
    // A new connection too.
    assert_eq!(server.connect().ask(&fresh_request(3)), DEFER);
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(), Some(0));
}

// An invalid configuration on SIGHUP: logged, the previous one kept, still serving.
#[test]
fn sighup_with_an_invalid_configuration_keeps_the_old_one() {
    let dir = TempDir::new().unwrap();
    let a = dir.path().join("a.db");
    let conf = dir.path().join("grey_listing.conf");
    std::fs::write(&conf, format!("db = {}\n", a.display())).unwrap();
    let mut server = Daemon::start(
        &["--listen", "127.0.0.1:0"],
        &[("GREY_LISTING_CONF", path_str(&conf))],
        "007",
    );
    let mut client = server.connect();
    assert_eq!(client.ask(&fresh_request(1)), DEFER);
    std::fs::write(&conf, "db =\n").unwrap();
    server.signal(libc::SIGHUP);
    let line = server.wait_log("keeping the previous configuration");
    assert!(line.contains(path_str(&conf)), "{line}");
    assert!(server.is_running());
    assert_eq!(client.ask(&fresh_request(2)), DEFER);
    assert_eq!(triplet_count(path_str(&a)), 2);
}
