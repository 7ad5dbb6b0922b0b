//! Connection strings and timeouts, without a server.

use super::options::{DEFAULT_TIMEOUT, TIMEOUT_ENV};
use super::*;

#[test]
fn own_parameters_are_taken_out_before_the_driver() {
    let no_env = |_: &str| None;
    let (config, timeout) = driver_config(
        "postgres://u:p@h/db?timeout_ms=250&connect_timeout=2",
        &no_env,
    )
    .unwrap();
    assert_eq!(timeout, Some(Duration::from_millis(250)));
    assert_eq!(config.get_connect_timeout(), Some(&Duration::from_secs(2)));
    assert_eq!(config.get_password(), Some(&b"p"[..]));
    let (_, timeout) = driver_config("postgres://h/db", &no_env).unwrap();
    assert_eq!(timeout, None);
    assert!(driver_config("postgres://h/db?timeout_ms=0", &no_env).is_err());
    assert!(driver_config("postgres://h/db?timeout_ms=abc", &no_env).is_err());

    // password_file: read, and not passed on (the driver refuses unknown options).
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "S3cr/et?PW\n").unwrap();
    let private = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(&file, private).unwrap();
    let url = format!(
        "postgres://gl@h/db?password_file={}&application_name=x",
        file.display()
    );
    let (config, _) = driver_config(&url, &no_env).unwrap();
    assert_eq!(config.get_password(), Some(&b"S3cr/et?PW"[..]));
    assert_eq!(config.get_application_name(), Some("x"));
    // The same in the key=value form.
    let kv = format!("host=h user=gl password_file={}", file.display());
    let (config, _) = driver_config(&kv, &no_env).unwrap();
    assert_eq!(config.get_password(), Some(&b"S3cr/et?PW"[..]));
}

#[test]
fn timeout_from_environment() {
    let env =
        |value: &'static str| move |name: &str| (name == TIMEOUT_ENV).then(|| value.to_string());
    assert_eq!(
        PgOptions::from_env(&env("1500")).unwrap().timeout,
        Duration::from_millis(1500)
    );
    assert_eq!(
        PgOptions::from_env(&|_: &str| None).unwrap().timeout,
        DEFAULT_TIMEOUT
    );
    assert!(PgOptions::from_env(&env("-1")).is_err());
}

// Issue 7: credentials never appear in error messages.
#[test]
fn unreachable_server_error_names_the_redacted_url() {
    // Port 1 on loopback: nothing listens there, the connect is refused at once.
    let url = "postgres://gl:s3cret-pass@127.0.0.1:1/db?connect_timeout=1";
    let err = match PgStore::open_with(
        url,
        PgOptions {
            timeout: DEFAULT_TIMEOUT,
        },
    ) {
        Ok(_) => panic!("connected to port 1"),
        Err(err) => err.to_string(),
    };
    assert!(!err.contains("s3cret-pass"), "{err}");
    assert!(err.contains("postgres://gl:***@127.0.0.1:1/db"), "{err}");
}

// The refusals word for word: the typed errors must keep every message byte for byte.
#[test]
fn configuration_messages_are_exact() {
    let no_env = |_: &str| None;
    let env = |name: &str| (name == TIMEOUT_ENV).then(|| "-1".to_string());
    assert_eq!(
        PgOptions::from_env(&env).unwrap_err().to_string(),
        "GREY_LISTING_PG_TIMEOUT_MS must be a number of milliseconds from 50 to 600000, not '-1'"
    );
    let message = |url: &str| driver_config(url, &no_env).unwrap_err().to_string();
    assert_eq!(
        message("postgres://h/db?timeout_ms=49"),
        "timeout_ms must be a number of milliseconds from 50 to 600000, not '49'"
    );
    assert_eq!(
        message("postgres://h/db?bogus=1"),
        "unknown parameter 'bogus'"
    );
    assert_eq!(
        message("postgres://h:notaport/db"),
        "invalid connection string: invalid connection string"
    );
    assert_eq!(
        message("host=h port=notaport dbname=d"),
        "invalid connection string: invalid connection string"
    );
    assert_eq!(
        message("postgres://h/db?password_file=rel"),
        "password_file=rel must be an absolute path"
    );
}

// A refused configuration reaches the caller as the store error, its text unchanged, with the
// typed reason as its source, and the URL's password hidden.
#[test]
fn refused_configuration_is_a_store_error_with_its_reason() {
    let options = PgOptions {
        timeout: DEFAULT_TIMEOUT,
    };
    let err = PgStore::open_with("postgres://gl:s3cret@h/db?timeout_ms=49", options)
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "database postgres://gl:***@h/db?timeout_ms=49: timeout_ms must be a number of \
         milliseconds from 50 to 600000, not '49'"
    );
    let source = std::error::Error::source(&err).unwrap();
    assert!(
        matches!(
            source.downcast_ref::<PgConfigError>(),
            Some(PgConfigError::BadTimeout { name: "timeout_ms", value }) if value == "49"
        ),
        "{source:?}"
    );
}
