//! One way to start a daemon for a test (greylisting-policyd, greylisting-milter): its stderr
//! log collected in the background, the address it reports in its `listening on <addr>,` line
//! (so it can listen on port 0), a bounded wait for a log line, signals and a bounded wait for
//! its exit.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A started daemon's process: killed and reaped when dropped, so a failing test leaves none
/// behind.
pub(crate) struct DaemonChild {
    child: Child,
    /// Names the daemon in failures.
    who: &'static str,
}

impl DaemonChild {
    pub(crate) fn new(child: Child, who: &'static str) -> DaemonChild {
        DaemonChild { child, who }
    }

    /// Collects the daemon's log (its stderr, which must be piped) and waits, at most 30 s,
    /// until it says where it listens (see [`DaemonLog::listening`]).
    pub(crate) fn listening(&mut self) -> (String, DaemonLog) {
        DaemonLog::listening(&mut self.child, self.who)
    }

    /// Sends `signal`.
    pub(crate) fn signal(&self, signal: i32) {
        // SAFETY: kill(2) takes no pointers, so it cannot touch this process's memory; the pid is
        // that of a child this test started.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits, at most 60 s, for the process to exit; returns its exit code.
    pub(crate) fn wait_exit(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "{} did not exit", self.who);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for DaemonChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log lines of a started daemon, collected from its stderr as they come.
pub(crate) struct DaemonLog {
    lines: Arc<Mutex<Vec<String>>>,
}

impl DaemonLog {
    /// Collects `child`'s stderr (which must be piped) and waits, at most 30 s, until it says
    /// where it listens; returns that address (`host:port` or `unix:/path`) and the log.
    pub(crate) fn listening(child: &mut Child, who: &str) -> (String, DaemonLog) {
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let thread_lines = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let _ = addr_tx.send(rest.split(',').next().unwrap_or("").to_string());
                }
                thread_lines.lock().unwrap().push(line);
            }
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{who} did not report its address"));
        (addr, DaemonLog { lines })
    }

    /// Waits (bounded) until a log line containing `needle` appears; returns it.
    pub(crate) fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(line) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line containing {needle:?}; log: {:#?}",
                self.lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every log line collected so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The log lines collected so far that contain `needle`.
    pub(crate) fn lines_with(&self, needle: &str) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }
}

/// Bytes that arrived on the socket `fd` and are not read yet (`FIONREAD`).
pub(crate) fn unread_bytes(fd: std::os::fd::RawFd) -> usize {
    let mut queued: libc::c_int = 0;
    // SAFETY: the caller's socket `fd` is open for the call; FIONREAD writes one int, to
    // `queued`, which we own.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &mut queued) };
    assert_eq!(rc, 0, "FIONREAD: {}", std::io::Error::last_os_error());
    usize::try_from(queued).unwrap()
}

/// Makes a daemon hold replies its peer never reads, a few batches' worth (far under its bound
/// of 64 KiB): `send_batch(i)` sends batch `i` over the peer's socket `fd`, each batch's replies
/// a few KiB, and returns once the daemon has handled it. Stops when two batches in a row added
/// nothing to what waits on the peer's side (the socket is full; the daemon keeps the rest).
pub(crate) fn fill_with_unread_replies(fd: std::os::fd::RawFd, mut send_batch: impl FnMut(usize)) {
    let mut last = unread_bytes(fd);
    let mut unchanged = 0;
    for i in 0..1_000 {
        send_batch(i);
        // The replies are written right after the log line the batch waited for.
        std::thread::sleep(Duration::from_millis(100));
        let now = unread_bytes(fd);
        if now == last {
            unchanged += 1;
            if unchanged == 2 {
                return;
            }
        } else {
            unchanged = 0;
            last = now;
        }
    }
    panic!("the socket never filled: {last} bytes unread");
}

/// A TCP connection to a daemon at `addr` whose receive buffer is as small as the kernel allows,
/// so the daemon's replies queue on its side when they are not read at once.
pub(crate) fn connect_small_window(addr: &str) -> std::net::TcpStream {
    let addr: std::net::SocketAddr = addr.parse().unwrap();
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )
    .unwrap();
    socket.set_recv_buffer_size(1).unwrap();
    socket.connect(&addr.into()).unwrap();
    std::net::TcpStream::from(socket)
}

/// Closes `stream` with a reset instead of a FIN (a zero linger time), as a client that
/// crashes or gives up does.
pub(crate) fn close_with_reset(stream: std::net::TcpStream) {
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
}

/// Runs `binary` (a daemon) with `args` and expects it to refuse to start: exit 2 within 30 s.
/// A daemon that serves instead is killed and the test fails. Returns its stderr.
pub(crate) fn refused_to_start(binary: &str, args: &[&str]) -> String {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let mut child = Command::new(assert_cmd::cargo::cargo_bin(binary))
        .args(args)
        .env("GREY_LISTING_LOG", "stderr")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{binary} {args:?}: started instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{binary} {args:?}: {stderr}");
    stderr
}
