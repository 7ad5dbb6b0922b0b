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

/// Grants user `uid` the permission bits `perm` (4 read, 2 write, 1 search) on `path` with a POSIX
/// ACL, as `setfacl -m u:UID:PERM PATH` does, or `setfacl -d -m …` when `default` (the ACL a
/// directory gives the files created in it later). The ACL is written as the kernel's extended
/// attribute, so the suite needs no `acl` package; one already on `path` is replaced. Panics when
/// the file system refuses it.
pub(crate) fn grant_acl(path: &Path, uid: u32, perm: u16, default: bool) {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    // The kernel's format (linux/posix_acl_xattr.h): a version, then (tag, perm, id) entries in
    // tag order, little-endian; the owner, group and other entries carry no id.
    const NO_ID: u32 = u32::MAX;
    let mode = std::fs::metadata(path).unwrap().permissions().mode();
    let bits = |shift: u32| ((mode >> shift) & 0o7) as u16;
    let entries: [(u16, u16, u32); 5] = [
        (0x01, bits(6), NO_ID),        // the owner
        (0x02, perm, uid),             // the named user
        (0x04, bits(3), NO_ID),        // the owning group
        (0x10, bits(3) | perm, NO_ID), // the mask: what the group class may have at most
        (0x20, bits(0), NO_ID),        // everyone else
    ];
    let mut value = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        value.extend(tag.to_le_bytes());
        value.extend(perm.to_le_bytes());
        value.extend(id.to_le_bytes());
    }
    let name = if default {
        c"system.posix_acl_default"
    } else {
        c"system.posix_acl_access"
    };
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: both names are NUL-terminated strings that outlive the call, and the value pointer
    // and length describe `value`, which the call only reads.
    let rc = unsafe {
        libc::setxattr(
            c_path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert!(
        rc == 0,
        "cannot set the ACL {name:?} on {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}
