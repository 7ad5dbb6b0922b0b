//! A running `greylisting-milter` and a milter client that speaks the protocol byte by byte,
//! written from the wire format (not with the library's codec, so a codec bug cannot hide
//! itself).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::daemon::{DaemonChild, DaemonLog};
use crate::support::{Backend, Test};

/// The SMTP reply for a greylisted recipient.
pub(crate) const DEFER: &str = "451 4.7.1 Service unavailable - try again later";

/// A running milter and its collected log lines.
pub(crate) struct Milter {
    child: DaemonChild,
    /// Where it listens.
    pub addr: String,
    log: DaemonLog,
    /// The database location given with `--db`.
    pub db: String,
    _store: Option<Test>,
}

fn milter_bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("greylisting-milter")
}

impl Milter {
    /// Starts the milter on a fresh SQLite database, on an ephemeral loopback port.
    pub(crate) fn start(extra: &[&str]) -> Milter {
        Milter::start_in(Backend::Sqlite, extra)
    }

    /// Starts the milter on a fresh database of `backend`, on an ephemeral loopback port.
    pub(crate) fn start_in(backend: Backend, extra: &[&str]) -> Milter {
        let store = Test::on(backend);
        let mut milter = Milter::start_on(&store.location(), "127.0.0.1:0", extra);
        milter._store = Some(store);
        milter
    }

    /// Starts the milter on a fresh SQLite database with extra environment variables (the
    /// resolver: `GREY_LISTING_RESOLVER`).
    pub(crate) fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Milter {
        let store = Test::on(Backend::Sqlite);
        let location = store.location();
        let mut args = vec!["--listen", "127.0.0.1:0", "--db", &location];
        args.extend_from_slice(extra);
        let mut milter = Milter::start_with(&args, env);
        milter._store = Some(store);
        milter
    }

    /// Starts the milter on database `db`, listening on `listen`.
    pub(crate) fn start_on(db: &str, listen: &str, extra: &[&str]) -> Milter {
        let mut args = vec!["--listen", listen, "--db", db];
        args.extend_from_slice(extra);
        Milter::start_with(&args, &[])
    }

    /// Starts the milter with exactly `args` (and `--hostname mx.test`) and extra environment.
    pub(crate) fn start_with(args: &[&str], env: &[(&str, &str)]) -> Milter {
        Milter::spawn(Command::new(milter_bin()), args, env)
    }

    /// [`Milter::start_on`] under the file-creation mask `umask` (octal, as the shell takes it).
    pub(crate) fn start_under_umask(db: &str, umask: &str) -> Milter {
        Milter::start_after_shell(db, "umask \"$0\"", umask)
    }

    /// [`Milter::start_on`] allowed at most `limit` open files (soft and hard limit, so the
    /// milter cannot raise it).
    pub(crate) fn start_with_open_files(db: &str, limit: u32) -> Milter {
        Milter::start_after_shell(db, "ulimit -n \"$0\"", &limit.to_string())
    }

    /// [`Milter::start_on`] from a shell that first runs `setup` with `$0` = `value`.
    fn start_after_shell(db: &str, setup: &str, value: &str) -> Milter {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!("{setup}; exec \"$@\""))
            .arg(value)
            .arg(milter_bin());
        Milter::spawn(sh, &["--listen", "127.0.0.1:0", "--db", db], &[])
    }

    /// Runs `command` (the milter, or a wrapper that executes it) with `args`.
    fn spawn(mut command: Command, args: &[&str], env: &[(&str, &str)]) -> Milter {
        let db = args
            .iter()
            .position(|a| *a == "--db")
            .and_then(|i| args.get(i + 1))
            .map_or_else(String::new, |d| d.to_string());
        let child = command
            .args(["--hostname", "mx.test"])
            .args(args)
            .env("GREY_LISTING_LOG", "stderr")
            .env_remove("GREY_LISTING_DB")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut child = DaemonChild::new(child, "milter");
        let (addr, log) = child.listening();
        Milter {
            child,
            addr,
            log,
            db,
            _store: None,
        }
    }

    /// A new MTA connection over TCP to `addr` (an address other than the one the milter
    /// reports, e.g. loopback for a wildcard listener).
    pub(crate) fn connect_to(addr: &str) -> std::io::Result<Mta> {
        let tcp = TcpStream::connect(addr)?;
        tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
        tcp.set_nodelay(true)?;
        Ok(Mta {
            stream: Box::new(tcp),
        })
    }

    /// A new MTA connection (TCP or unix, as the milter listens).
    pub(crate) fn connect(&self) -> Mta {
        let stream: Box<dyn Duplex> = match self.addr.strip_prefix("unix:") {
            Some(path) => Box::new(std::os::unix::net::UnixStream::connect(path).unwrap()),
            None => {
                let tcp = TcpStream::connect(&self.addr).unwrap();
                tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                // Packets that get no reply (CONNECT, HELO, MAIL) leave at once, not held back
                // until the milter acknowledges the previous one.
                tcp.set_nodelay(true).unwrap();
                Box::new(tcp)
            }
        };
        Mta { stream }
    }

    /// A new TCP connection whose receive buffer is as small as the kernel allows, so the
    /// milter's replies queue on its side when they are not read at once.
    pub(crate) fn connect_small_window(&self) -> Mta {
        let tcp = super::daemon::connect_small_window(&self.addr);
        tcp.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        Mta {
            stream: Box::new(tcp),
        }
    }

    /// Waits (bounded) for a log line containing `needle`.
    pub(crate) fn wait_log(&self, needle: &str) -> String {
        self.log.wait_for(needle)
    }

    /// Every log line collected so far.
    pub(crate) fn log_lines(&self) -> Vec<String> {
        self.log.lines()
    }

    /// The log lines collected so far that contain `needle`.
    pub(crate) fn log_lines_with(&self, needle: &str) -> Vec<String> {
        self.log.lines_with(needle)
    }

    /// Sends a signal.
    pub(crate) fn signal(&self, signal: i32) {
        self.child.signal(signal);
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.pid()
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub(crate) fn wait_exit(&mut self) -> Option<i32> {
        self.child.wait_exit()
    }
}

/// Read + Write for TCP and unix streams alike.
pub(crate) trait Duplex: Read + Write + Send {}
impl<T: Read + Write + Send> Duplex for T {}

/// Every protocol flag Postfix 3 offers with `milter_protocol = 6` (steps and no-reply bits).
pub(crate) const ALL_FLAGS: u32 = 0x1f_ffff;
/// Every action of protocol 6, the macro lists included.
pub(crate) const ALL_ACTIONS: u32 = 0x1ff;

/// The MTA side of one milter connection.
pub(crate) struct Mta {
    stream: Box<dyn Duplex>,
}

impl Mta {
    /// An MTA on an already connected stream.
    pub(crate) fn over(stream: Box<dyn Duplex>) -> Mta {
        Mta { stream }
    }

    /// Sends one packet.
    pub(crate) fn send(&mut self, code: u8, data: &[u8]) {
        let mut packet = ((data.len() + 1) as u32).to_be_bytes().to_vec();
        packet.push(code);
        packet.extend_from_slice(data);
        self.stream.write_all(&packet).unwrap();
    }

    /// Sends raw bytes.
    pub(crate) fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Reads one reply packet; `None` when the milter closed the connection.
    pub(crate) fn reply(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let len = u32::from_be_bytes(len) as usize;
        let mut packet = vec![0u8; len];
        self.stream.read_exact(&mut packet).ok()?;
        Some((packet[0], packet[1..].to_vec()))
    }

    /// One read of whatever comes next: `Ok(0)` is the milter's orderly close (FIN), an
    /// error of kind `ConnectionReset` its reset.
    pub(crate) fn read_end(&mut self) -> std::io::Result<usize> {
        let mut buf = [0u8; 64];
        self.stream.read(&mut buf)
    }

    /// Negotiates, offering `flags`; returns the milter's (version, actions, flags, rest).
    pub(crate) fn negotiate(&mut self, flags: u32) -> (u32, u32, u32, Vec<u8>) {
        let mut data = 6u32.to_be_bytes().to_vec();
        data.extend(ALL_ACTIONS.to_be_bytes());
        data.extend(flags.to_be_bytes());
        self.send(b'O', &data);
        let (code, data) = self.reply().expect("negotiation reply");
        assert_eq!(code, b'O');
        let word = |i: usize| u32::from_be_bytes(data[i..i + 4].try_into().unwrap());
        (word(0), word(4), word(8), data[12..].to_vec())
    }

    /// Negotiates with no no-reply bits and sends CONNECT: from then on every HELO gets a
    /// CONTINUE reply. Returns `count` HELO packets, for tests of replies the MTA does not read.
    pub(crate) fn helos_to_answer(&mut self, count: usize) -> Vec<u8> {
        self.negotiate(0x3f);
        self.connect_client("[198.51.100.7]", b'4', "198.51.100.7");
        let mut helo = 7u32.to_be_bytes().to_vec();
        helo.push(b'H');
        helo.extend(b"x.org\0");
        helo.repeat(count)
    }

    /// Sends CONNECT for an IPv4 or IPv6 client (`family` `4` or `6`).
    pub(crate) fn connect_client(&mut self, hostname: &str, family: u8, address: &str) {
        let mut data = hostname.as_bytes().to_vec();
        data.push(0);
        data.push(family);
        data.extend(2525u16.to_be_bytes());
        data.extend(address.as_bytes());
        data.push(0);
        self.send(b'C', &data);
    }

    /// Sends a command whose data is one string.
    pub(crate) fn send_str(&mut self, code: u8, text: &str) {
        let mut data = text.as_bytes().to_vec();
        data.push(0);
        self.send(code, &data);
    }

    /// Negotiates (all flags offered), then CONNECT, HELO and MAIL, none of which is answered.
    pub(crate) fn start_message(
        hostname: &str,
        family: u8,
        address: &str,
        sender: &str,
        mta: &mut Mta,
    ) {
        mta.negotiate(ALL_FLAGS);
        mta.connect_client(hostname, family, address);
        mta.send_str(b'H', "client.example");
        mta.send_str(b'M', sender);
    }

    /// [`Mta::start_message`] for the client most tests use: 198.51.100.7 over IPv4 with no
    /// verified name (Postfix's `[198.51.100.7]`), sending from `<s@example.org>`.
    pub(crate) fn start_unverified_message(&mut self) {
        Mta::start_message(
            "[198.51.100.7]",
            b'4',
            "198.51.100.7",
            "<s@example.org>",
            self,
        );
    }

    /// DATA and end of message for a message whose triplet passed for the first time: the
    /// milter adds one `X-Greylist` header (naming the test host, `mx.test`), then continues.
    pub(crate) fn expect_greylist_header_at_end(&mut self) {
        self.send(b'T', b"");
        self.send(b'E', b"");
        let (code, header) = self.reply().unwrap();
        assert_eq!(code, b'h');
        let header = String::from_utf8(header).unwrap();
        assert!(
            header.starts_with("X-Greylist\0delayed ")
                && header.contains(" seconds by grey_listing at mx.test; "),
            "{header:?}"
        );
        assert_eq!(self.reply(), Some((b'c', Vec::new())));
    }

    /// Sends RCPT and returns its reply.
    pub(crate) fn rcpt(&mut self, recipient: &str) -> (u8, Vec<u8>) {
        self.send_str(b'R', recipient);
        self.reply().expect("rcpt reply")
    }
}

/// A reply-code packet's text.
pub(crate) fn reply_text(reply: &(u8, Vec<u8>)) -> String {
    assert_eq!(reply.0, b'y', "not a reply code: {reply:?}");
    String::from_utf8(reply.1.strip_suffix(b"\0").unwrap().to_vec()).unwrap()
}
