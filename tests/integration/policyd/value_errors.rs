//! The exact line each daemon prints for a command-line value its own parser refuses (socket
//! mode, connection bound, trusted networks, host name): the parsers return typed errors, and
//! these lines must read the same whatever type carries them. The real binaries.

use crate::support::daemon::refused_to_start;

/// The stderr of `binary` refusing `args` (exit 2, nothing else started).
fn refused(binary: &str, args: &[&str]) -> String {
    refused_to_start(binary, args)
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[test]
fn policyd_value_errors_read_exactly() {
    let policyd = "greylisting-policyd";
    let err = refused(policyd, &["--socket-mode", "0666"]);
    assert_eq!(
        first_line(&err),
        "error: invalid value '0666' for '--socket-mode <MODE>': a world-writable socket would \
         let every local user use the server; give the socket a group with --socket-group instead",
        "{err}"
    );
    let err = refused(policyd, &["--socket-mode", "0888"]);
    assert_eq!(
        first_line(&err),
        "error: invalid value '0888' for '--socket-mode <MODE>': expected an octal mode from \
         0000 to 0777, such as 0660",
        "{err}"
    );
    let err = refused(policyd, &["--max-connections", "0"]);
    assert_eq!(
        first_line(&err),
        "error: invalid value '0' for '--max-connections <MAX_CONNECTIONS>': \"0\" is not a \
         positive number",
        "{err}"
    );
    let err = refused(
        policyd,
        &[
            "--listen",
            "127.0.0.1:0",
            "--db",
            "/nonexistent/g.db",
            "--hostname",
            "x..y",
        ],
    );
    assert_eq!(
        err,
        "greylisting-policyd: invalid --hostname \"x..y\": it has an empty label (a leading, \
         trailing or doubled '.')\n"
    );
}

#[test]
fn milter_value_errors_read_exactly() {
    let milter = "greylisting-milter";
    let err = refused(milter, &["--socket-mode", "0888"]);
    assert_eq!(
        first_line(&err),
        "error: invalid value '0888' for '--socket-mode <SOCKET_MODE>': expected an octal mode \
         from 0000 to 0777, such as 0660",
        "{err}"
    );
    let err = refused(milter, &["--trusted-networks", "10.0.0.0/33"]);
    assert_eq!(
        first_line(&err),
        "error: invalid value '10.0.0.0/33' for '--trusted-networks <TRUSTED_NETWORKS>': \
         invalid network \"10.0.0.0/33\" (expected an address or address/prefix, e.g. \
         192.0.2.0/24)",
        "{err}"
    );
    let err = refused(milter, &["--max-connections=-1"]);
    assert_eq!(
        first_line(&err),
        "error: invalid value '-1' for '--max-connections <MAX_CONNECTIONS>': \"-1\" is not a \
         positive number",
        "{err}"
    );
    let err = refused(
        milter,
        &[
            "--listen",
            "127.0.0.1:0",
            "--db",
            "/nonexistent/g.db",
            "--hostname",
            "mx-.example",
        ],
    );
    assert_eq!(
        err,
        "greylisting-milter: invalid --hostname \"mx-.example\": it has a label starting or \
         ending with '-' (mx-)\n"
    );
}
