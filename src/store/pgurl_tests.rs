use std::str::FromStr;

use super::*;

/// The password the driver itself reads from `value`.
fn driver_password(value: &str) -> Option<String> {
    tokio_postgres::Config::from_str(value)
        .ok()?
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

#[test]
fn redacts_url_passwords_as_the_driver_reads_them() {
    let cases = [
        (
            "postgres://u:secret@h:5432/db",
            "postgres://u:***@h:5432/db",
        ),
        ("postgres://h/db", "postgres://h/db"),
        ("postgres://u@h", "postgres://u@h"),
        (
            "postgres://u:S3cr/et?PW@127.0.0.1:1/db",
            "postgres://u:***@127.0.0.1:1/db",
        ),
        ("postgres://u:a#b%zz:c@h/db", "postgres://u:***@h/db"),
        ("postgres://u:p@w@h/db", "postgres://u:***@h/db"),
        (
            "postgresql://u:p@h/db?password=x&connect_timeout=2",
            "postgresql://u:***@h/db?password=***&connect_timeout=2",
        ),
        (
            "postgres://u:pw@h1:5432,[::1]:5433/db?host=%2Frun%2Fpostgresql",
            "postgres://u:***@h1:5432,[::1]:5433/db?host=%2Frun%2Fpostgresql",
        ),
        (
            "postgres://u@%2Frun%2Fpostgresql/db?password=a%26b",
            "postgres://u@%2Frun%2Fpostgresql/db?password=***",
        ),
        // An unencoded '&' in a query password: the rest up to a known parameter is hidden.
        (
            "postgres://h/db?password=a&b&c=d&connect_timeout=2",
            "postgres://h/db?password=***&connect_timeout=2",
        ),
        // An '@' inside the query: the driver takes everything before it as the user.
        ("postgres://h/db?password=x@y&z", "postgres://***"),
        (
            "postgres://u:p/w@h/db?password_file=/etc/pw",
            "postgres://u:***@h/db?password_file=/etc/pw",
        ),
    ];
    for (url, shown) in cases {
        assert_eq!(redact(url), shown, "{url}");
    }
}

#[test]
fn the_password_the_driver_reads_is_never_shown() {
    for (password, read) in [
        ("S3cr/et?PW", "S3cr/et?PW"),
        ("a#b", "a#b"),
        ("p%41ss", "pAss"),
        ("x:y:z", "x:y:z"),
        ("q?r=s&t", "q?r=s&t"),
        ("/?#%:", "/?#%:"),
    ] {
        let url = format!("postgres://gl:{password}@127.0.0.1:1/db");
        assert_eq!(driver_password(&url).as_deref(), Some(read));
        let shown = redact(&url);
        assert!(!shown.contains(password), "{shown}");
        assert_eq!(shown, "postgres://gl:***@127.0.0.1:1/db");
    }
    // '@' unencoded: the driver ends the password early; all of it stays hidden.
    let url = "postgres://gl:sec@ret@127.0.0.1:1/db";
    assert_eq!(driver_password(url).as_deref(), Some("sec"));
    assert!(!redact(url).contains("ret"), "{}", redact(url));
}

#[test]
fn redacts_key_value_strings() {
    let cases = [
        (
            "host=h user=u password=secret dbname=db",
            "host=h user=u password=*** dbname=db",
        ),
        (
            "host=h password='my s3cret' port=5432",
            "host=h password=*** port=5432",
        ),
        ("password = a\\ b host=h", "password = *** host=h"),
        // An unquoted space in a password: everything after it is hidden.
        (
            "host=h password=my s3cret port=1",
            "host=h password=*** ***",
        ),
        ("host=h password='unterminated", "host=h password=***"),
    ];
    for (value, shown) in cases {
        assert_eq!(redact(value), shown, "{value}");
        assert!(!redact(value).contains("s3cret"));
    }
    assert_eq!(
        driver_password("host=h password='my s3cret' port=5432").as_deref(),
        Some("my s3cret")
    );
}

#[test]
fn recognises_key_value_strings() {
    assert!(is_key_value("host=h dbname=x"));
    assert!(is_key_value("  user = u"));
    assert!(!is_key_value("/var/lib/grey_listing/greylist.db"));
    assert!(!is_key_value("greylist.db"));
    assert!(!is_key_value("bogus=1"));
    assert!(!is_key_value("postgres://h/db"));
}

#[test]
fn own_parameters_are_taken_out() {
    let (driver, own) =
        split_own("postgres://u:p?w@h/db?timeout_ms=250&connect_timeout=2&password_file=%2Fa%20b")
            .unwrap();
    assert_eq!(driver, "postgres://u:p?w@h/db?connect_timeout=2");
    assert_eq!(
        own,
        OwnParams {
            timeout_ms: Some("250".into()),
            password_file: Some("/a b".into()),
        }
    );
    // Empty pairs are dropped, as before the driver saw the query.
    let (driver, _) = split_own("postgres://h/db?&application_name=x&&connect_timeout=2&").unwrap();
    assert_eq!(
        driver,
        "postgres://h/db?application_name=x&connect_timeout=2"
    );
    let (driver, own) = split_own("postgres://h/db?password_file=/x").unwrap();
    assert_eq!(driver, "postgres://h/db");
    assert_eq!(own.password_file.as_deref(), Some("/x"));
    assert_eq!(
        split_own("postgres://h/db").unwrap(),
        ("postgres://h/db".to_string(), OwnParams::default())
    );
    let (driver, own) = split_own("host=h password_file='/p w' dbname=d").unwrap();
    assert_eq!(driver, "host=h dbname=d");
    assert_eq!(own.password_file.as_deref(), Some("/p w"));
    assert!(tokio_postgres::Config::from_str(&driver).is_ok());
}

#[test]
fn problems_name_no_secret() {
    for (value, secret) in [
        ("postgres://h/db?password=a&b0b=c", "b0b"),
        ("postgres://h/db?password=a&zz", "zz"),
        ("host=h password=my s3cret port=1", "s3cret"),
        ("host=h password=my s3cret", "s3cret"),
        ("postgres://u:p@55@h/db", "55"),
    ] {
        let err = split_own(value).unwrap_err().to_string();
        assert!(!err.contains(secret), "{value}: {err}");
    }
    let err = split_own("postgres://h/db?conect_timeout=2")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown parameter 'conect_timeout'"), "{err}");
    let err = split_own("host=h bogus=1").unwrap_err().to_string();
    assert!(err.contains("unknown parameter 'bogus'"), "{err}");
}

// Two password files are a mistake to report, not a choice to make silently.
#[test]
fn password_file_given_twice_is_refused() {
    for value in [
        "postgres://h/db?password_file=/a&password_file=/b",
        "host=h password_file=/a password_file=/b",
    ] {
        let err = split_own(value).unwrap_err().to_string();
        assert!(
            err.contains("password_file") && err.contains("twice"),
            "{err}"
        );
        assert!(!err.contains("/a") && !err.contains("/b"), "{err}");
    }
}

// The problems word for word: the typed errors must keep every message byte for byte.
#[test]
fn problem_messages_are_exact() {
    let after_password = "something that is not a known parameter follows 'password': write '&' \
                          in a password as %26 in a URL, and quote a password holding spaces in \
                          a key=value string";
    for (value, want) in [
        (
            "postgres://u:p@55@h/db",
            "the host part of the URL holds '@': write '@' in a user name or password as %40",
        ),
        ("postgres://h/db?password=a&zz", after_password),
        ("postgres://h/db?password=a&b0b=c", after_password),
        ("host=h password=my s3cret", after_password),
        ("postgres://h/db?zz", "a query parameter without '='"),
        (
            "postgres://h/db?conect_timeout=2",
            "unknown parameter 'conect_timeout'",
        ),
        ("host=h bogus", "'=' expected at byte 12"),
        ("host=h port=", "a value expected at byte 12"),
        ("host=h bogus=1", "unknown parameter 'bogus'"),
        (
            "host=h password_file=/a password_file=/b",
            "password_file is given twice: keep only one",
        ),
    ] {
        assert_eq!(split_own(value).unwrap_err().to_string(), want, "{value}");
    }
}
