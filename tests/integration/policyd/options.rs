//! `greylisting-policyd` options that guard the server: a hostile `--hostname`, an invalid
//! system host name, and the unix socket's mode and group. The real binary.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::policyd::lifecycle::{Daemon, fresh_request, path_str, policyd_bin};
use crate::policyd::server::{DEFER, cli};
use crate::support::daemon::refused_to_start;

fn refused(args: &[&str]) -> String {
    refused_to_start("greylisting-policyd", args)
}

// A CR/LF in --hostname would inject an extra `action=` line into the replies.
#[test]
fn hostname_with_line_breaks_or_too_long_is_refused() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("g.db");
    let base = ["--listen", "127.0.0.1:0", "--db", path_str(&db)];
    let injected = "mx.test\r\naction=REJECT 5.7.1 injected";
    let err = refused(&[&base[..], &["--hostname", injected]].concat());
    assert!(err.contains("invalid --hostname"), "{err}");
    assert!(
        err.contains(r"\r\n"),
        "the value is not shown escaped: {err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let long = format!("{}.example", "a".repeat(254 - ".example".len()));
    assert_eq!(long.len(), 254);
    let err = refused(&[&base[..], &["--hostname", &long]].concat());
    assert!(
        err.contains("invalid --hostname") && err.contains("254 bytes"),
        "{err}"
    );
    for bad in ["", "mx_1.example", "mx.example "] {
        let err = refused(&[&base[..], &["--hostname", bad]].concat());
        assert!(err.contains("invalid --hostname"), "{bad:?}: {err}");
    }
    // Nothing was created.
    assert!(!db.exists());
    // 253 bytes (labels of at most 63) is fine.
    let longest = [
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61),
    ]
    .join(".");
    assert_eq!(longest.len(), 253);
    let _ok = Daemon::start(&[&base[..], &["--hostname", &longest]].concat(), &[], "022");
}

// The socket's mode is --socket-mode (default 0660) whatever the umask; its group is
// --socket-group; it is removed at exit.
#[test]
fn socket_mode_and_group_whatever_the_umask() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("g.db");
    let sock = dir.path().join("policy.sock");
    let listen = format!("unix:{}", sock.display());
    for (umask, extra, mode) in [
        ("077", &[][..], 0o660),
        ("000", &[][..], 0o660),
        ("077", &["--socket-mode", "0660"][..], 0o660),
        ("000", &["--socket-mode", "0640"][..], 0o640),
    ] {
        let mut server = Daemon::start(
            &[&["--listen", &listen, "--db", path_str(&db)][..], extra].concat(),
            &[],
            umask,
        );
        let meta = std::fs::symlink_metadata(&sock).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            mode,
            "umask {umask} {extra:?}"
        );
        assert_eq!(server.connect().ask(&fresh_request(1)), DEFER);
        server.signal(libc::SIGTERM);
        assert_eq!(server.wait_exit(), Some(0));
        assert!(!sock.exists(), "socket left behind at exit");
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // Root may give the socket to any group, named or numbered.
        let server = Daemon::start(
            &[
                "--listen",
                &listen,
                "--db",
                path_str(&db),
                "--socket-group",
                "4242",
            ],
            &[],
            "022",
        );
        assert_eq!(std::fs::symlink_metadata(&sock).unwrap().gid(), 4242);
        drop(server);
    }
    let err = refused(&["--listen", &listen, "--socket-mode", "0666"]);
    assert!(err.contains("world-writable"), "{err}");
    let err = refused(&["--listen", "127.0.0.1:0", "--socket-group", "4242"]);
    assert!(err.contains("unix socket only"), "{err}");
}

// A user who is neither root nor in the group cannot give it the socket: refused at start,
// with the unit setting that fixes it.
#[test]
fn socket_group_the_user_cannot_use_is_refused() {
    let dir = TempDir::new().unwrap();
    let sock = dir.path().join("policy.sock");
    let mut command = Command::new(policyd_bin());
    command
        .args(["--listen", &format!("unix:{}", sock.display())])
        .args(["--db", path_str(&dir.path().join("g.db"))])
        .args(["--socket-group", "4243"])
        .env("GREY_LISTING_LOG", "stderr");
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // As nobody: std drops root's supplementary groups with the user.
        command.uid(65534).gid(65534);
    }
    let out = command.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("add SupplementaryGroups=4243 to the systemd unit"),
        "{err}"
    );
    assert!(!sock.exists());
    let err = refused(&[
        "--listen",
        &format!("unix:{}", sock.display()),
        "--socket-group",
        "no-such-group-gl",
    ]);
    assert!(err.contains("no such group"), "{err}");
}

// A regular file at the socket's path is never removed.
#[test]
fn a_regular_file_at_the_socket_path_is_kept() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("important");
    std::fs::write(&file, b"data").unwrap();
    let err = refused(&[
        "--listen",
        &format!("unix:{}", file.display()),
        "--db",
        path_str(&dir.path().join("g.db")),
    ]);
    assert!(err.contains("not a socket (a regular file)"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"data");
}

// A system host name that is not a valid host name (here `bad_name`, in a UTS namespace of the
// server's own) is not put into the header: localhost instead, and a log line says why.
#[test]
fn an_invalid_system_host_name_falls_back_to_localhost() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("needs root for a UTS namespace; covered by the unit tests of check_hostname");
        return;
    }
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("g.db");
    cli(path_str(&db), &["-u", "-grey-interval", "0"]);
    let mut command = Command::new(policyd_bin());
    command
        .args(["--listen", "127.0.0.1:0", "--db", path_str(&db)])
        .env("GREY_LISTING_LOG", "stderr")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only two system calls on constant data, both
    // async-signal-safe; nothing is allocated.
    unsafe {
        command.pre_exec(|| {
            let name = b"bad_name";
            if libc::unshare(libc::CLONE_NEWUTS) != 0
                || libc::sethostname(name.as_ptr().cast(), name.len()) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let server = Daemon::from_child(command.spawn().unwrap());
    let line = server.wait_log("the system host name");
    assert!(
        line.contains("bad_name") && line.contains("localhost"),
        "{line}"
    );
    let mut client = server.connect();
    assert_eq!(client.ask(&fresh_request(1)), DEFER);
    let header = client.ask(&fresh_request(1));
    assert!(
        header.starts_with("action=PREPEND X-Greylist: delayed ")
            && header.contains(" by grey_listing at localhost; "),
        "{header}"
    );
}
