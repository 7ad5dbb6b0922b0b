use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::str::FromStr;

use super::*;

fn config(url: &str) -> Config {
    Config::from_str(url).unwrap()
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// Writes `text` to a file of mode `mode` in `dir`.
fn file(dir: &tempfile::TempDir, name: &str, text: &str, mode: u32) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn password(config: &Config) -> Option<&[u8]> {
    config.get_password()
}

#[test]
fn password_file_first_line_is_the_password() {
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        ("S3cr/et?PW@#%:\nsecond line\n", &b"S3cr/et?PW@#%:"[..]),
        ("crlf\r\n", b"crlf"),
        ("no line end", b"no line end"),
        (" spaces kept \n", b" spaces kept "),
    ] {
        // Group-readable is fine: the filter and the policy server read it as the group.
        let path = file(&dir, "pw", text, 0o640);
        let mut cfg = config("postgres://gl@h/db");
        apply(&mut cfg, path.to_str(), &no_env).unwrap();
        assert_eq!(password(&cfg), Some(want));
    }
}

#[test]
fn password_file_refusals_name_the_file_not_its_contents() {
    let dir = tempfile::tempdir().unwrap();
    let open = file(&dir, "open", "s3cret-in-file\n", 0o644);
    let path = open.to_str().unwrap();
    let err = apply(&mut config("postgres://gl@h/db"), Some(path), &no_env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(path) && err.contains("readable by every user"),
        "{err}"
    );
    assert!(
        !err.contains("s3cret-in-file") && !err.contains('\n'),
        "{err}"
    );

    let private = file(&dir, "private", "s3cret-in-file\n", 0o600);
    let path = private.to_str().unwrap();
    let err = apply(&mut config("postgres://gl:other@h/db"), Some(path), &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("both") && err.contains(path), "{err}");
    assert!(!err.contains("other"), "{err}");

    let err = apply(&mut config("postgres://gl@h/db"), Some("pw.txt"), &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("absolute"), "{err}");
    let missing = dir.path().join("missing");
    let err = apply(&mut config("postgres://gl@h/db"), missing.to_str(), &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains(missing.to_str().unwrap()), "{err}");
    let empty = file(&dir, "empty", "\nsecond\n", 0o600);
    let err = apply(&mut config("postgres://gl@h/db"), empty.to_str(), &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("empty"), "{err}");
}

const PGPASS: &str = "\
# comment line
db.example.net:5432:other:gl:wrong-db
db.example.net:*:greylisting:gl:right\\:one\\\\x:ignored
*:*:*:gl:any-host
localhost:5432:gl:gl:socket
\\:\\:1:5433:*:*:ipv6
";

fn lookup_for(url: &str) -> Option<String> {
    lookup(&config(url), PGPASS.as_bytes()).map(|p| String::from_utf8(p).unwrap())
}

#[test]
fn pgpass_lines_match_like_libpq() {
    // Wildcard port, escaped ':' and '\' in the password, which ends at the next ':'.
    assert_eq!(
        lookup_for("postgres://gl@db.example.net:6000/greylisting").as_deref(),
        Some("right:one\\x")
    );
    // The first matching line wins: the wildcard line before the socket line.
    assert_eq!(
        lookup_for("postgres://gl@other-host/x").as_deref(),
        Some("any-host")
    );
    assert_eq!(
        lookup_for("postgres://gl@%2Frun%2Fpostgresql").as_deref(),
        Some("any-host")
    );
    // An escaped host field (IPv6) and the port must both match.
    assert_eq!(
        lookup_for("postgres://u@[::1]:5433/d").as_deref(),
        Some("ipv6")
    );
    assert_eq!(lookup_for("postgres://u@[::1]:5432/d"), None);
    // No user name: nothing can match.
    assert_eq!(lookup_for("postgres://db.example.net/greylisting"), None);
}

#[test]
fn pgpass_socket_default_database_and_several_hosts() {
    let text = b"localhost:5432:gl:gl:socket\nh2:5433:gl:gl:second\n";
    // A unix socket in the usual directory is "localhost"; the database defaults to the user.
    let cfg = config("postgres://gl@%2Fvar%2Frun%2Fpostgresql");
    assert_eq!(lookup(&cfg, text).as_deref(), Some(&b"socket"[..]));
    // Each host is tried in turn, with its own port.
    let cfg = config("postgres://gl@h1:5432,h2:5433");
    assert_eq!(lookup(&cfg, text).as_deref(), Some(&b"second"[..]));
}

#[test]
fn pgpassfile_is_used_only_without_another_password() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "pgpass", "*:*:*:gl:from-pgpass\n", 0o640);
    let shown = path.to_str().unwrap().to_string();
    let env = move |name: &str| (name == PGPASSFILE).then(|| shown.clone());
    let mut cfg = config("postgres://gl@h/db");
    apply(&mut cfg, None, &env).unwrap();
    assert_eq!(password(&cfg), Some(&b"from-pgpass"[..]));
    let mut cfg = config("postgres://gl:in-url@h/db");
    apply(&mut cfg, None, &env).unwrap();
    assert_eq!(password(&cfg), Some(&b"in-url"[..]));
    let pw = file(&dir, "pw", "from-file\n", 0o600);
    let mut cfg = config("postgres://gl@h/db");
    apply(&mut cfg, pw.to_str(), &env).unwrap();
    assert_eq!(password(&cfg), Some(&b"from-file"[..]));

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o604)).unwrap();
    let err = apply(&mut config("postgres://gl@h/db"), None, &env)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("PGPASSFILE") && err.contains(path.to_str().unwrap()),
        "{err}"
    );
    assert!(!err.contains("from-pgpass"), "{err}");
}

// A FIFO, a device, a link or an endless file is refused at once: the open never blocks and
// the read is bounded.
#[test]
fn password_files_that_are_not_plain_small_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c_path` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (tx, rx) = std::sync::mpsc::channel();
    let fifo_path = fifo.to_str().unwrap().to_string();
    std::thread::spawn(move || {
        let result = apply(&mut config("postgres://gl@h/db"), Some(&fifo_path), &no_env);
        let _ = tx.send(result);
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a FIFO as password_file must not block")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
    let err = apply(
        &mut config("postgres://gl@h/db"),
        Some("/dev/zero"),
        &no_env,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("not a regular file"), "{err}");

    let target = file(&dir, "target", "pw\n", 0o600);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let err = apply(&mut config("postgres://gl@h/db"), link.to_str(), &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("symbolic link"), "{err}");

    let big = file(&dir, "big", &"x".repeat(70 << 10), 0o600);
    let err = apply(&mut config("postgres://gl@h/db"), big.to_str(), &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains("longer than"), "{err}");

    // PGPASSFILE goes through the same checks.
    let env_fifo = fifo.to_str().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let env = move |name: &str| (name == PGPASSFILE).then(|| env_fifo.clone());
        let _ = tx.send(apply(&mut config("postgres://gl@h/db"), None, &env));
    });
    let err = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("a FIFO as PGPASSFILE must not block")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
}

// The refusals word for word: the typed errors must keep every message byte for byte.
#[test]
fn password_file_messages_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let message = |url: &str, file: Option<&str>, env: &dyn Fn(&str) -> Option<String>| {
        apply(&mut config(url), file, env).unwrap_err().to_string()
    };
    let open = file(&dir, "open", "s3cret\n", 0o644);
    let open = open.to_str().unwrap();
    assert_eq!(
        message("postgres://gl@h/db", Some(open), &no_env),
        format!("password_file {open} is readable by every user (mode 0644): chmod o-rwx {open}")
    );
    let env = |name: &str| (name == PGPASSFILE).then(|| open.to_string());
    assert_eq!(
        message("postgres://gl@h/db", None, &env),
        format!("PGPASSFILE {open} is readable by every user (mode 0644): chmod o-rwx {open}")
    );
    assert_eq!(
        message("postgres://gl:other@h/db", Some("/p"), &no_env),
        "a password is given both in the connection string and by password_file=/p: keep only one"
    );
    assert_eq!(
        message("postgres://gl@h/db", Some("pw.txt"), &no_env),
        "password_file=pw.txt must be an absolute path"
    );
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    assert_eq!(
        message("postgres://gl@h/db", Some(missing), &no_env),
        format!("password_file {missing}: No such file or directory (os error 2)")
    );
    let empty = file(&dir, "empty", "\nsecond\n", 0o600);
    let empty = empty.to_str().unwrap();
    assert_eq!(
        message("postgres://gl@h/db", Some(empty), &no_env),
        format!("password file {empty}: its first line is empty")
    );
    assert_eq!(
        message("postgres://gl@h/db", Some("/dev/null"), &no_env),
        "password_file /dev/null is not a regular file"
    );
    let target = file(&dir, "target", "pw\n", 0o600);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let link = link.to_str().unwrap();
    assert_eq!(
        message("postgres://gl@h/db", Some(link), &no_env),
        format!("password_file {link} is a symbolic link; name the file itself")
    );
    let big = file(&dir, "big", &"x".repeat(70 << 10), 0o600);
    let big = big.to_str().unwrap();
    assert_eq!(
        message("postgres://gl@h/db", Some(big), &no_env),
        format!("password_file {big} is longer than 64 KiB")
    );
}
