//! `--version` / `-V` on all three binaries: `<binary name> <Cargo version>`, exit 0. The filter
//! honours it only as its sole argument, like `--help`, so a sender `--version` is still mail.

use assert_cmd::Command;

use crate::support::filter::{PLAIN_MESSAGE, Sandbox, T0, handler_output};
use crate::support::grey_listing;

fn version_line(binary: &str) -> String {
    format!("{binary} {}\n", env!("CARGO_PKG_VERSION"))
}

#[test]
fn grey_listing_prints_its_version() {
    for flag in ["--version", "-V", "-version", "--V"] {
        grey_listing()
            .arg(flag)
            .assert()
            .success()
            .stdout(version_line("grey_listing"))
            .stderr("");
    }
    // A command like any other: options are not allowed with it.
    grey_listing()
        .args(["--version", "-status", "on"])
        .assert()
        .code(1);
}

#[test]
fn greylisting_policyd_prints_its_version() {
    for flag in ["--version", "-V"] {
        Command::cargo_bin("greylisting-policyd")
            .unwrap()
            .arg(flag)
            .assert()
            .success()
            .stdout(version_line("greylisting-policyd"));
    }
}

#[test]
fn greylisting_filter_prints_its_version_only_as_the_sole_argument() {
    for flag in ["--version", "-V"] {
        Command::cargo_bin("greylisting-filter")
            .unwrap()
            .arg(flag)
            .assert()
            .success()
            .stdout(version_line("greylisting-filter"));
    }
    // A handler call whose sender is `--version` or `-V` is mail.
    let sb = Sandbox::new();
    for sender in ["--version", "-V"] {
        let mut cmd = sb.filter(T0);
        cmd.args(["ctx", sender, "john@local.example"]);
        let run = handler_output(cmd, PLAIN_MESSAGE.as_bytes());
        run.assert_verdict("DEFER");
    }
}
