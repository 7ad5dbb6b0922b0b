//! The files and names the CLI reads before it opens anything (`--import`, `--import-plesk`,
//! `--backup FILE`, `--check --ignore-file`): each refusal reads word for word as the admin
//! sees it, and a typed refusal keeps what caused it.

use std::io;
use std::os::unix::fs::symlink;

use super::{backup, check, import_export};

fn not_found() -> String {
    io::Error::from_raw_os_error(libc::ENOENT).to_string()
}

#[test]
fn import_sources_refuse_word_for_word() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().expect("utf-8");
    assert_eq!(
        import_export::read_source(missing).unwrap_err().to_string(),
        format!("cannot read '{missing}': {}", not_found())
    );
    let latin1 = dir.path().join("latin1.json");
    std::fs::write(&latin1, b"{\"caf\xe9\": 1}").expect("write");
    let latin1 = latin1.to_str().expect("utf-8");
    assert_eq!(
        import_export::read_source(latin1).unwrap_err().to_string(),
        format!("cannot read '{latin1}': not valid UTF-8 text")
    );
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, b"{").expect("write");
    let broken = broken.to_str().expect("utf-8");
    let expected = format!(
        "{broken}: {}",
        crate::export_format::parse_export("{").unwrap_err()
    );
    assert_eq!(
        import_export::load_export(broken).unwrap_err().to_string(),
        expected
    );
    let expected = format!(
        "{broken}: {}",
        crate::export_format::parse_plesk("{").unwrap_err()
    );
    assert_eq!(
        import_export::load_plesk(broken).unwrap_err().to_string(),
        expected
    );
}

#[test]
fn backup_targets_refuse_word_for_word() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(
        backup::check_target("").unwrap_err().to_string(),
        "--backup needs a file name"
    );
    let folder = dir.path().to_str().expect("utf-8");
    assert_eq!(
        backup::check_target(folder).unwrap_err().to_string(),
        format!("{folder} is not a regular file")
    );
    let link = dir.path().join("link");
    symlink(dir.path().join("elsewhere"), &link).expect("symlink");
    let link = link.to_str().expect("utf-8");
    assert_eq!(
        backup::check_target(link).unwrap_err().to_string(),
        format!("{link} is a symbolic link; give a regular file or a new name")
    );
    let new = dir.path().join("new.db");
    assert_eq!(
        backup::check_target(new.to_str().expect("utf-8")).ok(),
        Some(new)
    );
}

#[test]
fn ignore_files_refuse_word_for_word() {
    let dir = tempfile::tempdir().expect("tempdir");
    let read = |path: &std::path::Path| {
        check::read_ignore_file(path.to_str().expect("utf-8"))
            .err()
            .map(|e| e.to_string())
    };
    let shown = |path: &std::path::Path| {
        crate::escape::escape_plugin(path.to_str().expect("utf-8")).to_string()
    };
    let missing = dir.path().join("missing");
    assert_eq!(
        read(&missing),
        Some(format!(
            "cannot read '{}': {}",
            shown(&missing),
            not_found()
        ))
    );
    assert_eq!(
        read(dir.path()),
        Some(format!(
            "ignore file '{}' is not a regular file",
            shown(dir.path())
        ))
    );
    let long = dir.path().join("long");
    std::fs::write(&long, vec![b'#'; (1 << 20) + 1]).expect("write");
    assert_eq!(
        read(&long),
        Some(format!(
            "ignore file '{}' is longer than 1 MiB",
            shown(&long)
        ))
    );
    let latin1 = dir.path().join("latin1");
    std::fs::write(&latin1, b"caf\xe9.example\n").expect("write");
    assert_eq!(
        read(&latin1),
        Some(format!(
            "ignore file '{}' is not UTF-8 text",
            shown(&latin1)
        ))
    );
    let bad = dir.path().join("bad");
    std::fs::write(&bad, "# reviewed\nexample.com\nnot a domain\n").expect("write");
    assert_eq!(
        read(&bad),
        Some(format!(
            "ignore file '{}' line 3: 'not a domain' is not a domain or domain pattern",
            shown(&bad)
        ))
    );
}

// A typed refusal keeps its cause: the OS error of an unreadable file, the import error of an
// invalid one, the kind of a refused backup target.
#[test]
fn refusals_keep_their_cause() {
    use std::error::Error as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("missing");
    let missing = missing.to_str().expect("utf-8");
    let err = import_export::read_source(missing).unwrap_err();
    let cause = err.source().and_then(|s| s.downcast_ref::<io::Error>());
    assert_eq!(cause.map(io::Error::kind), Some(io::ErrorKind::NotFound));
    let err = check::read_ignore_file(missing).unwrap_err();
    let cause = err.source().and_then(|s| s.downcast_ref::<io::Error>());
    assert_eq!(cause.map(io::Error::kind), Some(io::ErrorKind::NotFound));
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, b"[]").expect("write");
    let err = import_export::load_export(broken.to_str().expect("utf-8")).unwrap_err();
    assert!(
        matches!(err, import_export::SourceError::Invalid { .. }),
        "{err:?}"
    );
    assert!(
        err.source()
            .is_some_and(|s| s.is::<crate::export_format::ImportError>())
    );
    assert_eq!(backup::check_target(""), Err(backup::BadTarget::NoName));
}
