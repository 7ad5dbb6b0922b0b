//! qmail-queue wrapper mode (DESIGN.md §5). qmail-smtpd writes the message to our fd 0, closes it,
//! and only then writes the envelope (`F<sender>\0T<rcpt>\0...\0`) to our fd 1. We read both,
//! decide, and on pass hand the identical bytes to the real qmail-queue the same way.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::facts;
use crate::decision::Verdict;
use crate::engine::Message;
use crate::logging::{Fallback, Logger};

/// Environment variable naming the real qmail-queue.
pub const REAL_QUEUE_VAR: &str = "GREY_QMAIL_QUEUE";
/// The real queue in `--qmail-queue` (QMAILQUEUE) installs.
pub const DEFAULT_REAL_QUEUE: &str = "/var/qmail/bin/qmail-queue";
/// The renamed real queue, beside us, when we are installed as `qmail-queue`.
pub const RENAMED_REAL_QUEUE: &str = "qmail-queue.orig";
/// Messages larger than this are spooled to an unnamed temporary file instead of memory.
pub const SPOOL_THRESHOLD: usize = 1 << 20;

/// qmail-queue exit statuses we produce (qmail's `qmail-queue(8)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueExit {
    /// Permanent failure: the message is rejected.
    Reject = 31,
    /// Unable to read the message or the envelope (temporary).
    ReadError = 54,
    /// Temporary failure: greylisted, or the real qmail-queue could not be run.
    Temporary = 71,
    /// The envelope is malformed (permanent).
    BadEnvelope = 91,
}

impl QueueExit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Which install style invoked us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStyle {
    /// `QMAILQUEUE=... greylisting-filter --qmail-queue`.
    Flag,
    /// Our binary renamed to `qmail-queue`, the real one to `qmail-queue.orig`.
    Renamed,
}

/// True when `argv0`'s file name is `qmail-queue` (the renamed install).
pub fn invoked_as_qmail_queue(argv0: &OsStr) -> bool {
    Path::new(argv0).file_name() == Some(OsStr::new("qmail-queue"))
}

/// The real qmail-queue: `GREY_QMAIL_QUEUE`, else the install style's default. In the renamed
/// style it lies beside the path we were invoked as (or beside our executable when `argv0` has
/// no directory).
pub fn real_queue_path(
    style: InstallStyle,
    argv0: &OsStr,
    env: &dyn Fn(&str) -> Option<String>,
) -> PathBuf {
    if let Some(path) = env(REAL_QUEUE_VAR).filter(|v| !v.is_empty()) {
        return PathBuf::from(path);
    }
    match style {
        InstallStyle::Flag => PathBuf::from(DEFAULT_REAL_QUEUE),
        InstallStyle::Renamed => {
            let dir = Path::new(argv0)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .or_else(|| {
                    std::env::current_exe()
                        .ok()
                        .and_then(|exe| exe.parent().map(Path::to_path_buf))
                })
                .unwrap_or_else(|| PathBuf::from("/var/qmail/bin"));
            dir.join(RENAMED_REAL_QUEUE)
        }
    }
}

/// A parsed qmail envelope; the raw bytes are kept to pass on unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The envelope sender (may be empty).
    pub sender: Vec<u8>,
    /// The recipients.
    pub recipients: Vec<Vec<u8>>,
}

/// Parses `F<sender>\0T<rcpt>\0...T<rcpt>\0\0`; `None` when malformed.
pub fn parse_envelope(bytes: &[u8]) -> Option<Envelope> {
    let rest = bytes.strip_prefix(b"F")?;
    let end = rest.iter().position(|&b| b == 0)?;
    let sender = rest[..end].to_vec();
    let mut rest = &rest[end + 1..];
    let mut recipients = Vec::new();
    loop {
        match rest.first() {
            Some(0) if rest.len() == 1 => break,
            Some(b'T') => {
                let end = rest.iter().position(|&b| b == 0)?;
                recipients.push(rest[1..end].to_vec());
                rest = &rest[end + 1..];
            }
            _ => return None,
        }
    }
    Some(Envelope { sender, recipients })
}

/// The message as read from fd 0: in memory, or spooled to an unnamed temporary file.
enum Spool {
    Memory(Vec<u8>),
    File(File),
}

/// Reads all of `input`, keeping up to [`SPOOL_THRESHOLD`] bytes in memory and spooling the
/// rest to a temporary file. If no spool file can be made or written (a full `/tmp`), the message
/// stays in memory: using more memory is better than refusing mail. Only a read error fails.
fn read_message(input: &mut dyn Read, log: &mut Logger) -> io::Result<Spool> {
    let mut buffer = Vec::new();
    input
        .take(SPOOL_THRESHOLD as u64 + 1)
        .read_to_end(&mut buffer)?;
    if buffer.len() <= SPOOL_THRESHOLD {
        return Ok(Spool::Memory(buffer));
    }
    let mut file = match tempfile::tempfile() {
        Ok(file) => file,
        Err(err) => {
            log.error(&format!(
                "cannot create a spool file ({err}); keeping the message in memory"
            ));
            input.read_to_end(&mut buffer)?;
            return Ok(Spool::Memory(buffer));
        }
    };
    if let Err(err) = file.write_all(&buffer) {
        log.error(&format!(
            "cannot write the spool file ({err}); keeping the message in memory"
        ));
        input.read_to_end(&mut buffer)?;
        return Ok(Spool::Memory(buffer));
    }
    // Bytes of the message fully written to the file; on a write error they are read back.
    let mut spooled = buffer.len() as u64;
    drop(buffer);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        if let Err(err) = file.write_all(&chunk[..n]) {
            log.error(&format!(
                "cannot write the spool file ({err}); keeping the message in memory"
            ));
            let mut memory = Vec::new();
            file.seek(SeekFrom::Start(0))?;
            (&mut file).take(spooled).read_to_end(&mut memory)?;
            memory.extend_from_slice(&chunk[..n]);
            input.read_to_end(&mut memory)?;
            return Ok(Spool::Memory(memory));
        }
        spooled += n as u64;
    }
    file.seek(SeekFrom::Start(0))?;
    Ok(Spool::File(file))
}

/// The exit status when fd 0 (the message) or fd 1 (the envelope) was closed when we started:
/// qmail's "unable to read" (54, temporary), logged naming the descriptor, instead of reading
/// an empty message or envelope from the /dev/null the Rust runtime puts in its place.
pub fn closed_descriptor(fd: i32, env: &dyn Fn(&str) -> Option<String>) -> u8 {
    let mut log = Logger::open(super::LOG_IDENT, Fallback::Stderr, env);
    let what = if fd == 0 { "message" } else { "envelope" };
    log.error(&format!(
        "cannot read the {what}: fd {fd} is closed; asking the sender to retry"
    ));
    QueueExit::ReadError.code()
}

/// Runs the wrapper: `message_in` is fd 0, `envelope_in` fd 1. Returns the exit status.
pub fn run(
    style: InstallStyle,
    argv0: &OsStr,
    message_in: &mut dyn Read,
    envelope_in: &mut dyn Read,
    env: &dyn Fn(&str) -> Option<String>,
) -> u8 {
    let mut log = Logger::open(super::LOG_IDENT, Fallback::Stderr, env);
    log.info("Starting greylisting filter...");
    // All of fd 0 first: qmail-smtpd writes the envelope only after closing it.
    let spool = match read_message(message_in, &mut log) {
        Ok(spool) => spool,
        Err(err) => {
            log.error(&format!("error reading the message: {err}"));
            return QueueExit::ReadError.code();
        }
    };
    let mut envelope_bytes = Vec::new();
    if let Err(err) = envelope_in.read_to_end(&mut envelope_bytes) {
        log.error(&format!("error reading the envelope: {err}"));
        return QueueExit::ReadError.code();
    }
    let Some(envelope) = parse_envelope(&envelope_bytes) else {
        log.error("malformed envelope on fd 1");
        return QueueExit::BadEnvelope.code();
    };
    let client = facts::from_env(env).unwrap_or_else(|| facts::ClientFacts {
        authenticated: facts::env_authenticated(env),
        ..Default::default()
    });
    let message = Message {
        client_ip: client.ip,
        client_name: client.name,
        sender: super::envelope_text(&envelope.sender),
        recipients: envelope
            .recipients
            .iter()
            .map(|r| super::envelope_text(r))
            .collect(),
        authenticated: client.authenticated,
        ..Message::default()
    };
    let recipients: Vec<&[u8]> = envelope.recipients.iter().map(Vec::as_slice).collect();
    let shown = super::ShownEnvelope::new(&envelope.sender, &recipients);
    match super::decide(&message, &shown, env, &mut log) {
        Verdict::Defer => QueueExit::Temporary.code(),
        Verdict::Reject => QueueExit::Reject.code(),
        Verdict::Pass => {
            let real = real_queue_path(style, argv0, env);
            match run_real_queue(&real, spool, &envelope_bytes) {
                Ok(code) => code,
                Err(err) => {
                    log.error(&format!(
                        "cannot run the real qmail-queue {}: {err}",
                        real.display()
                    ));
                    QueueExit::Temporary.code()
                }
            }
        }
    }
}

/// Runs the real qmail-queue with the message on its fd 0 and the envelope on its fd 1 (a
/// pipe), and returns its exit status (71 if a signal killed it).
fn run_real_queue(path: &Path, spool: Spool, envelope: &[u8]) -> io::Result<u8> {
    // Both ends are close-on-exec (std's pipe sets it), so only the end handed to the child
    // as its fd 1 survives into it.
    let (envelope_reader, mut envelope_writer) = io::pipe()?;
    let (stdin, memory) = match spool {
        Spool::File(file) => (Stdio::from(file), None),
        Spool::Memory(bytes) => (Stdio::piped(), Some(bytes)),
    };
    let mut child = {
        // The command (holding our copy of the pipe's read end) is dropped right after the
        // spawn, so a real queue that exits early makes our envelope write fail instead of hang.
        let mut command = Command::new(path);
        command
            .stdin(stdin)
            .stdout(Stdio::from(envelope_reader))
            .stderr(Stdio::inherit());
        // The filter binary ignores SIGXFSZ; the real queue gets the default disposition, as if
        // qmail-smtpd had started it directly (ignored signals survive exec).
        // SAFETY: only the async-signal-safe `signal` is called between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_DFL);
                Ok(())
            });
        }
        command.spawn()?
    };
    // Message and envelope are written concurrently so neither order of reading can deadlock.
    let writer = match (memory, child.stdin.take()) {
        (Some(bytes), Some(mut child_stdin)) => Some(std::thread::spawn(move || {
            // A real queue that stops reading is reported by its exit status.
            let _ = child_stdin.write_all(&bytes);
        })),
        _ => None,
    };
    let _ = envelope_writer.write_all(envelope);
    drop(envelope_writer);
    if let Some(writer) = writer {
        let _ = writer.join();
    }
    let status = child.wait()?;
    Ok(status
        .code()
        .map_or(QueueExit::Temporary.code(), |code| code.clamp(0, 255) as u8))
}

/// A readable handle on our fd 1, where qmail-smtpd writes the envelope.
pub fn envelope_fd() -> io::Result<File> {
    let owned = io::stdout().as_fd().try_clone_to_owned()?;
    Ok(File::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let env = parse_envelope(b"Fa@b\0Tc@d\0Te@f\0\0").unwrap();
        assert_eq!(env.sender, b"a@b");
        assert_eq!(env.recipients, vec![b"c@d".to_vec(), b"e@f".to_vec()]);
        let bounce = parse_envelope(b"F\0Tc@d\0\0").unwrap();
        assert!(bounce.sender.is_empty());
        assert_eq!(parse_envelope(b"F\0\0").unwrap().recipients.len(), 0);
        for bad in [
            &b""[..],
            b"Tc@d\0\0",
            b"Fa@b\0Tc@d\0",
            b"Fa@b\0Xc@d\0\0",
            b"Fa@b",
            b"Fa@b\0Tc@d\0\0junk",
            b"Fa@b\0Tc@d",
        ] {
            assert_eq!(parse_envelope(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn install_styles() {
        assert!(invoked_as_qmail_queue(OsStr::new(
            "/var/qmail/bin/qmail-queue"
        )));
        assert!(!invoked_as_qmail_queue(OsStr::new(
            "/usr/bin/greylisting-filter"
        )));
        let none = |_: &str| None;
        assert_eq!(
            real_queue_path(
                InstallStyle::Renamed,
                OsStr::new("/q/bin/qmail-queue"),
                &none
            ),
            PathBuf::from("/q/bin/qmail-queue.orig")
        );
        assert_eq!(
            real_queue_path(InstallStyle::Flag, OsStr::new("greylisting-filter"), &none),
            PathBuf::from(DEFAULT_REAL_QUEUE)
        );
        let set = |name: &str| (name == REAL_QUEUE_VAR).then(|| "/x/real".to_string());
        assert_eq!(
            real_queue_path(InstallStyle::Renamed, OsStr::new("qmail-queue"), &set),
            PathBuf::from("/x/real")
        );
    }
}
