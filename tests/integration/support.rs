//! A small builder for CLI cases: each test reads as the command an admin types and the exact
//! text they see (in the spirit of just's `Test::new().args(..).stdout(..).status(..)`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

/// `--info-server` on a new database, exactly as SPEC §2 prints it.
pub const INFO_SERVER_DEFAULTS: &str = "\
Grey listing configuration.

Grey listing checking  enabled
Grey interval          5 minutes
Expire interval        51840 minutes
Penalty interval       2 minutes
Penalty                disabled
Personal grey listing configuration allowed

Server-wide black list:

Server-wide white list:

White domains patterns list:
*.office365.com
*.outlook.com
*.outlook.office.com
*facebook.com
*google.com
*mail.ru
*parallels.com
*plesk.com
*rambler.ru
*yahoo.com
*yandex.ru

Black domains patterns list:
dsl|broadband|hsd
dynamic|ppp|dyn-ip|dial-up

SUCCESS: Gathering of server wide information complete.
";

/// SPEC §2's SUCCESS line of `--update-server`.
pub const SERVER_UPDATED: &str = "SUCCESS: Update of server-wide settings complete.\n";

/// A `grey_listing` command without any database-location environment, so the test decides
/// where the database is (a stray `GREY_LISTING_DB` or `/etc/grey_listing.conf` cannot leak in).
pub fn grey_listing() -> Command {
    let mut cmd = Command::cargo_bin("grey_listing").unwrap();
    cmd.env_remove("GREY_LISTING_DB")
        .env("GREY_LISTING_CONF", "/nonexistent/grey_listing.conf")
        .env_remove("GREY_LISTING_NOW");
    cmd
}

/// One temporary directory holding the database `g.db`; every run gets `--db <dir>/g.db`.
pub struct Test {
    dir: TempDir,
}

impl Test {
    /// A fresh directory with no database yet.
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The temporary directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The database path passed with `--db`.
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("g.db")
    }

    /// Runs `grey_listing <args> --db <db>`.
    pub fn run(&self, args: &[&str]) -> Outcome {
        let mut cmd = grey_listing();
        cmd.args(args).arg("--db").arg(self.db());
        Outcome::from(cmd.output().unwrap(), args)
    }

    /// Runs `grey_listing <args>` exactly as given (the test places `--db` itself).
    pub fn run_raw(&self, args: &[&str]) -> Outcome {
        let mut cmd = grey_listing();
        cmd.args(args);
        Outcome::from(cmd.output().unwrap(), args)
    }

    /// Every file of the directory with its bytes (the database, its -wal and -shm files).
    pub fn files(&self) -> BTreeMap<String, Vec<u8>> {
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(self.dir()).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            files.insert(name, std::fs::read(entry.path()).unwrap());
        }
        files
    }
}

/// What a run printed and returned.
pub struct Outcome {
    /// The command line, for failure messages.
    pub args: Vec<String>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit status (-1 if killed by a signal).
    pub code: i32,
}

impl Outcome {
    fn from(output: Output, args: &[&str]) -> Outcome {
        Outcome {
            args: args.iter().map(|s| s.to_string()).collect(),
            stdout: String::from_utf8(output.stdout).unwrap(),
            stderr: String::from_utf8(output.stderr).unwrap(),
            code: output.status.code().unwrap_or(-1),
        }
    }

    /// Success: exit 0, nothing on stderr, exactly `expected` on stdout.
    #[track_caller]
    pub fn stdout(&self, expected: &str) -> &Outcome {
        assert_eq!(
            (self.code, self.stderr.as_str()),
            (0, ""),
            "grey_listing {:?} failed",
            self.args
        );
        assert_eq!(
            self.stdout, expected,
            "grey_listing {:?}: stdout differs\n--- got ---\n{}--- expected ---\n{}",
            self.args, self.stdout, expected
        );
        self
    }

    /// Bad input (SPEC §2): exit 1, nothing on stdout, exactly one stderr line that starts
    /// `An error occurred during` and contains every one of `names`.
    #[track_caller]
    pub fn bad_input(&self, names: &[&str]) -> &Outcome {
        self.one_error_line(1, names)
    }

    /// Database or system error (SPEC §2): exit 2 and one clear stderr line containing `names`.
    #[track_caller]
    pub fn system_error(&self, names: &[&str]) -> &Outcome {
        self.one_error_line(2, names)
    }

    #[track_caller]
    fn one_error_line(&self, code: i32, names: &[&str]) -> &Outcome {
        assert_eq!(
            self.code, code,
            "grey_listing {:?}: exit status (stderr: {:?})",
            self.args, self.stderr
        );
        assert_eq!(self.stdout, "", "grey_listing {:?}: stdout", self.args);
        assert!(
            self.stderr.starts_with("An error occurred during ")
                && self.stderr.ends_with('\n')
                && self.stderr.matches('\n').count() == 1,
            "grey_listing {:?}: stderr must be one 'An error occurred during' line, got {:?}",
            self.args,
            self.stderr
        );
        for name in names {
            assert!(
                self.stderr.contains(name),
                "grey_listing {:?}: stderr {:?} does not name {name:?}",
                self.args,
                self.stderr
            );
        }
        self
    }

    /// Parses stdout as JSON (after checking the run succeeded).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        assert_eq!(
            (self.code, self.stderr.as_str()),
            (0, ""),
            "{:?}",
            self.args
        );
        serde_json::from_str(&self.stdout).unwrap()
    }
}
