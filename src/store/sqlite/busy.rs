//! Waiting for another writer: how often a connection tries again for a lock another holds.
//!
//! SQLite's own wait (`busy_timeout`) backs off to one try every 100 ms. Under many concurrent
//! writers, such as one filter process per message on a busy Plesk server, the lock is free only
//! for moments, and whoever tries in such a moment gets it: newcomers, still trying every few
//! milliseconds, win against a process that has already waited a second. The unlucky process can
//! reach the 5 s timeout, after which its message passes ungreylisted, while the others take a
//! tenth of a second. Here the pause doubles from 1 ms but stops at 20 ms, jittered so that
//! waiters do not move in step. With 64 concurrent filters the slowest run now waits about half
//! as long, for the same throughput (docs/BENCHMARKS.md, "Filters waiting for each other"). A
//! shorter cap costs more CPU than it saves waiting: every try wakes a process.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::BUSY_TIMEOUT;

/// The first pause.
const PAUSE_FIRST: Duration = Duration::from_millis(1);

/// The longest pause.
const PAUSE_MAX: Duration = Duration::from_millis(20);

/// Makes `conn` wait for a lock as described above, for at most [`BUSY_TIMEOUT`] per wait.
pub(crate) fn wait_for_locks(conn: &mut Connection) -> rusqlite::Result<()> {
    let mut waiting_since = Instant::now();
    conn.busy_handler(Some(move |tries_before: i32| {
        let now = Instant::now();
        // SQLite counts the tries of one wait from 0; a 0 starts a new wait.
        if tries_before == 0 {
            waiting_since = now;
        }
        if now.duration_since(waiting_since) >= BUSY_TIMEOUT {
            return false;
        }
        std::thread::sleep(pause(tries_before, jitter()));
        true
    }))
}

/// The pause after `tries_before` failed tries: [`PAUSE_FIRST`] doubled that often, at most
/// [`PAUSE_MAX`], then shortened by up to half of it as `jitter` (0 to 1) says.
fn pause(tries_before: i32, jitter: f64) -> Duration {
    let doublings = u32::try_from(tries_before.clamp(0, 16)).unwrap_or(0);
    let full = PAUSE_FIRST.saturating_mul(1 << doublings).min(PAUSE_MAX);
    full.mul_f64(1.0 - jitter.clamp(0.0, 1.0) / 2.0)
}

/// A number from 0 to 1 that differs between processes and between tries.
fn jitter() -> f64 {
    // At most 1,000, which an f64 holds exactly.
    let thousandths = u32::try_from(crate::clock::cheap_random() % 1_001).unwrap_or(0);
    f64::from(thousandths) / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_their_cap_and_jitter_takes_up_to_half() {
        let ms = Duration::from_millis;
        assert_eq!(pause(0, 0.0), ms(1));
        assert_eq!(pause(1, 0.0), ms(2));
        assert_eq!(pause(4, 0.0), ms(16));
        assert_eq!(pause(5, 0.0), PAUSE_MAX);
        assert_eq!(pause(i32::MAX, 0.0), PAUSE_MAX);
        assert_eq!(pause(-1, 0.0), ms(1));
        assert_eq!(pause(5, 1.0), PAUSE_MAX / 2);
        assert_eq!(pause(0, 7.0), Duration::from_micros(500));
        for _ in 0..1_000 {
            let j = jitter();
            assert!((0.0..=1.0).contains(&j), "{j}");
        }
    }

    /// A WAL database with one table in a new directory, and a connection that waits as
    /// [`wait_for_locks`] makes it.
    fn database() -> (tempfile::TempDir, std::path::PathBuf, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("busy.db");
        Connection::open(&path)
            .expect("open")
            .execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x);")
            .expect("schema");
        let mut waiter = Connection::open(&path).expect("open");
        wait_for_locks(&mut waiter).expect("handler");
        (dir, path, waiter)
    }

    /// A connection holding the write lock of `path`.
    fn holder(path: &std::path::Path) -> Connection {
        let holder = Connection::open(path).expect("open");
        holder.execute_batch("BEGIN IMMEDIATE;").expect("lock");
        holder
    }

    // A lock held past the timeout ends the wait with "busy" after about the timeout: not at
    // once, and not after SQLite's count of tries.
    #[test]
    fn a_lock_held_past_the_timeout_ends_the_wait_after_the_timeout() {
        let (_dir, path, waiter) = database();
        let _holder = holder(&path);
        let started = Instant::now();
        let result = waiter.execute_batch("BEGIN IMMEDIATE;");
        let waited = started.elapsed();
        let err = result.expect_err("the lock is held");
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy),
            "{err}"
        );
        assert!(waited >= BUSY_TIMEOUT, "gave up after {waited:?}");
        assert!(waited < BUSY_TIMEOUT * 3, "waited {waited:?}");
    }

    // A lock let go while another connection waits is taken, and each wait on the same
    // connection gets a full timeout of its own: four waits of 1.5 s each pass, where a timeout
    // counted from the first wait would end the fourth.
    #[test]
    fn a_lock_let_go_is_taken_and_each_wait_starts_afresh() {
        let hold = BUSY_TIMEOUT * 3 / 10;
        let (_dir, path, waiter) = database();
        for round in 0..4 {
            let holder = holder(&path);
            let release = std::thread::spawn(move || {
                std::thread::sleep(hold);
                holder.execute_batch("COMMIT;").expect("commit");
            });
            let started = Instant::now();
            waiter
                .execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (1); COMMIT;")
                .unwrap_or_else(|err| panic!("round {round}: {err}"));
            assert!(started.elapsed() >= hold, "round {round}");
            release.join().expect("holder");
        }
    }
}
