//! Running a binary as an unprivileged user (`nobody`), for the permission tests. The suite runs
//! as root here and in CI; root reads every file, so without dropping privileges a test of a
//! missing permission would prove nothing. A test that cannot drop them fails (never skips).

use std::path::Path;
use std::process::Command;

/// The uid the commands run as.
pub(crate) const NOBODY_UID: u32 = 65_534;

/// `setpriv --reuid=nobody --regid=nogroup --clear-groups <program>`, after checking that this
/// really yields uid 65534 (panics otherwise: the test must not pass without dropping).
pub(crate) fn as_nobody(program: &Path) -> Command {
    let probe = Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "id",
            "-u",
        ])
        .output()
        .unwrap_or_else(|err| panic!("cannot run setpriv to drop privileges: {err}"));
    let uid = String::from_utf8_lossy(&probe.stdout).trim().to_string();
    assert!(
        probe.status.success() && uid == NOBODY_UID.to_string(),
        "cannot drop privileges to nobody (run the tests as root): setpriv said {uid:?}, {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(program);
    cmd
}

/// Makes `dir` traversable and readable by everyone (temporary directories are 0700).
pub(crate) fn open_dir(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}
