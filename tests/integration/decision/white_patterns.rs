//! White host patterns match whole names or whole-label suffixes; list edits compare ignoring
//! case and say when they change nothing; patterns that will not match as meant get a warning;
//! an upgrade names the stored white patterns that match differently.

use crate::support::ext::{Db, T0 as EXT_T0};
use crate::support::filter::{Sandbox, T0};
use crate::support::{Backend, SERVER_UPDATED, Test, pg_admin};

const ALICE: &str = "alice@sender.example";
const JOHN: &str = "john@local.example";

// The white rule on the mail path: `*google.com` no longer passes names that merely contain
// `google.com`; black patterns still match anywhere in the name.
fn borrowed_white_names_are_greylisted(backend: Backend) {
    let sb = Sandbox::on(backend);
    let from = |host: &str, now: i64| {
        sb.handler(
            now,
            &[("TCPREMOTEIP", "203.0.113.5"), ("TCPREMOTEHOST", host)],
            &["ctx", ALICE, JOHN],
            "Subject: x\n\nbody\n",
        )
    };
    for (i, host) in [
        "mx.google.com.attacker.example",
        "mx.evilgoogle.com",
        "notgoogle.com",
    ]
    .into_iter()
    .enumerate()
    {
        let run = from(host, T0 + i as i64);
        run.assert_verdict("DEFER");
        assert!(!run.logged("list type: white"), "{host}: {run:#?}");
    }
    for host in ["mail-sor-f41.google.com", "google.com", "MX.Google.COM."] {
        let run = from(host, T0 + 10);
        run.assert_verdict("SKIP");
        assert!(run.logged("match string: *google.com"), "{host}: {run:#?}");
    }
    // A black pattern is still a substring match, even inside another domain.
    sb.cli(&["-u", "-domains-blacklist", "add:dialin"]);
    from("host.dialin.google.com.attacker.example", T0 + 20).assert_verdict("REJECT");
}

// `--report` names a white pattern only when the decision would pass by it: a deferred client
// `mx.google.com.attacker.example` is not covered by `*google.com`.
#[test]
fn report_uses_the_decision_matcher() {
    let db = Db::new();
    db.deliver(
        EXT_T0,
        "203.0.113.9",
        Some("mx.google.com.attacker.example"),
        "a@x.example",
        "u@local.example",
    );
    let report: serde_json::Value =
        serde_json::from_str(&db.ok(EXT_T0 + 60, &["--report", "--json"])).unwrap();
    let organisations = report["organisations"].as_array().unwrap();
    assert_eq!(organisations.len(), 1, "{report}");
    assert_eq!(
        organisations[0]["organisation"], "attacker.example",
        "{report}"
    );
    assert!(organisations[0]["white_pattern"].is_null(), "{report}");
}

// Every warning of a pattern added to a list, exactly as printed; the command still succeeds.
#[test]
fn warnings_for_patterns_that_will_not_match_as_meant() {
    let t = Test::new();
    let white = "Warning: white domains pattern";
    let cases: &[(&str, &str, String)] = &[
        (
            "-domains-whitelist",
            "*amazonses*",
            format!(
                "{white} '*amazonses*': '*amazonses*' ends in '*', so any domain owner can match it \
             with a name such as 'amazonses.attacker.example'; end it with the domain \
             (*.example.com)"
            ),
        ),
        (
            "-domains-whitelist",
            "amazonses",
            format!(
                "{white} 'amazonses': 'amazonses' has no '.' and no wildcard, so it matches only \
             names ending in '.amazonses'"
            ),
        ),
        (
            "-domains-whitelist",
            "*-out.amazonses.com",
            format!(
                "{white} '*-out.amazonses.com': '*-out.amazonses.com' matches only \
             '-out.amazonses.com' and names ending in '.-out.amazonses.com'; write the whole \
             label after '*.' (as in *.smtp-out.amazonses.com)"
            ),
        ),
        (
            "-domains-whitelist",
            "**trusted.example",
            format!(
                "{white} '**trusted.example': '**trusted.example' starts with a wildcard joined \
             to the name, so any domain owner can match it with a name such as \
             'attackertrusted.example'; write *.trusted.example for the names under \
             trusted.example"
            ),
        ),
        (
            "-domains-whitelist",
            "[a-z]*bank.example",
            format!(
                "{white} '[a-z]*bank.example': '[a-z]*bank.example' starts with a wildcard \
             joined to the name, so any domain owner can match it with a name such as \
             'attackerbank.example'; write *.bank.example for the names under bank.example"
            ),
        ),
        (
            "-domains-whitelist",
            "?*corp.example",
            format!(
                "{white} '?*corp.example': '?*corp.example' starts with a wildcard joined to the \
             name, so any domain owner can match it with a name such as \
             'attackercorp.example'; write *.corp.example for the names under corp.example"
            ),
        ),
        (
            "-whitelist",
            "*@*",
            "Warning: address pattern '*@*' has an alternative ('*@*') that matches every sender"
                .to_string(),
        ),
        (
            "-domains-whitelist",
            "ok.example|*",
            "Warning: pattern 'ok.example|*' has an \
             alternative that is only '*', so it matches every client host name"
                .to_string(),
        ),
        (
            "-whitelist",
            "*",
            "Warning: pattern '*' has an alternative that is only '*', so it \
             matches every sender"
                .to_string(),
        ),
        (
            "-whitelist",
            "\"*@example.com\"",
            "Warning: pattern '\"*@example.com\"' contains a \
             quote; patterns are wildcards (* ? [...] |), not quoted strings or regular \
             expressions, so it will not match as meant"
                .to_string(),
        ),
        (
            "-blacklist",
            "*@example\\.com",
            "Warning: pattern '*@example\\.com' contains a \
             backslash; patterns are wildcards (* ? [...] |), not quoted strings or regular \
             expressions, so it will not match as meant"
                .to_string(),
        ),
        (
            "-blacklist",
            "/.*@example.com/",
            "Warning: pattern '/.*@example.com/' contains a \
             /.../ regular expression; patterns are wildcards (* ? [...] |), not quoted strings \
             or regular expressions, so it will not match as meant"
                .to_string(),
        ),
        (
            "-blacklist",
            "^spam@example.com",
            "Warning: pattern '^spam@example.com' contains '^' \
             outside a [...] class; patterns are wildcards (* ? [...] |), not quoted strings or \
             regular expressions, so it will not match as meant"
                .to_string(),
        ),
        (
            "-blacklist",
            "spam@example.com$",
            "Warning: pattern 'spam@example.com$' contains '$' \
             outside a [...] class; patterns are wildcards (* ? [...] |), not quoted strings or \
             regular expressions, so it will not match as meant"
                .to_string(),
        ),
        (
            "-blacklist",
            "spam.example",
            "Warning: address pattern 'spam.example' has no '@' in \
             an alternative, which must match the whole envelope sender (write *@example.com \
             for a domain)"
                .to_string(),
        ),
        (
            "-domains-blacklist",
            "*@mx.example",
            "Warning: host-name pattern '*@mx.example' \
             contains '@', but client host names never do, so it never matches"
                .to_string(),
        ),
    ];
    for (option, pattern, warning) in cases {
        t.run(&["-u", option, &format!("add:{pattern}")])
            .warns(SERVER_UPDATED, &[warning.as_str()]);
    }
    // Patterns that mean what they say print nothing.
    for (option, pattern) in [
        ("-whitelist", "[^0-9]*@example.com"),
        ("-domains-whitelist", "*.example.net|mail.example.org"),
        ("-domains-blacklist", "dialin"),
    ] {
        t.run(&["-u", option, &format!("add:{pattern}")])
            .stdout(SERVER_UPDATED);
    }
}

// Edits compare ignoring case: `del:` removes a pattern stored in other case, an add of a
// pattern present in other case keeps the stored spelling, and an edit that changes nothing
// says so (still SUCCESS, exit 0).
fn edits_compare_ignoring_case(backend: Backend) {
    let t = Test::on(backend);
    let white_domains =
        |t: &Test| t.run(&["-i", "--json"]).json()["lists"]["domains_white"].clone();
    t.run(&["-u", "-domains-whitelist", "add:*.AmazonSES.com"])
        .stdout(SERVER_UPDATED);
    t.run(&["-u", "-domains-whitelist", "add:*.amazonses.COM"])
        .warns(
            SERVER_UPDATED,
            &["Warning: *.amazonses.COM is already in the white domains patterns list"],
        );
    assert_eq!(
        white_domains(&t).as_array().unwrap().last().unwrap(),
        "*.AmazonSES.com"
    );
    t.run(&["-u", "-domains-whitelist", "del:*.amazonses.com"])
        .stdout(SERVER_UPDATED);
    assert!(
        !white_domains(&t)
            .to_string()
            .to_lowercase()
            .contains("amazonses")
    );
    t.run(&["-u", "-domains-whitelist", "del:*.amazonses.com"])
        .warns(
            SERVER_UPDATED,
            &["Warning: *.amazonses.com is not in the white domains patterns list"],
        );
    t.run(&[
        "-u",
        "-blacklist",
        "del:*@X.example",
        "-domains-blacklist",
        "del:DSL",
    ])
    .warns(
        SERVER_UPDATED,
        &[
            "Warning: *@X.example is not in the server black list",
            "Warning: DSL is not in the black domains patterns list",
        ],
    );
    t.run(&["-u", "-whitelist", "add:*@Y.example;add:*@y.EXAMPLE"])
        .warns(
            SERVER_UPDATED,
            &["Warning: *@y.EXAMPLE is already in the server white list"],
        );
    let mail = "u@local.example";
    t.run(&[
        "-um",
        mail,
        "-whitelist",
        "add:*@Z.example",
        "-blacklist",
        "del:*@z.example",
    ])
    .warns(
        &format!("SUCCESS: Update of mail '{mail}' complete.\n"),
        &["Warning: *@z.example is not in the black list of u@local.example"],
    );
    t.run(&["-um", mail, "-whitelist", "del:*@z.EXAMPLE;del:*@z.example"])
        .warns(
            &format!("SUCCESS: Update of mail '{mail}' complete.\n"),
            &["Warning: *@z.example is not in the white list of u@local.example"],
        );
    assert_eq!(
        t.run(&["-im", mail, "--json"]).json()["white"],
        serde_json::json!([])
    );
}

/// The white patterns an old database holds besides the defaults: two the whole-label rule
/// warns about, one it does not.
const OLD_WHITE: [&str; 3] = ["*amazonses*", "*.sendgrid.net", "*-out.amazonses.com"];

/// Turns the store of `t` back into schema 4 (before whole-label white patterns) with
/// [`OLD_WHITE`] stored.
fn make_schema_4_with_old_patterns(t: &Test, backend: Backend) {
    t.run(&["-i", "--json"]).json();
    let values: Vec<String> = OLD_WHITE
        .iter()
        .map(|p| format!("('domains_white', '', '{p}')"))
        .collect();
    match backend {
        Backend::Sqlite => {
            let conn = rusqlite::Connection::open(t.db()).unwrap();
            conn.execute_batch(&format!(
                "DROP TABLE pattern_notices; PRAGMA user_version = 4;
                 INSERT INTO list_entries (list, owner, pattern) VALUES {};",
                values.join(", ")
            ))
            .unwrap();
        }
        Backend::Postgres => pg_admin(
            &t.location(),
            &format!(
                "DROP TABLE gl_pattern_notices; UPDATE grey_listing_schema SET version = 4;
                 INSERT INTO gl_list_entries (list, owner, pattern) VALUES {};",
                values.join(", ")
            ),
        ),
    }
}

// The upgrade to whole-label white patterns names each stored white pattern that now matches
// differently, once (the next command is silent), and `--check` says WARNING until they are
// edited.
fn upgrade_names_white_patterns_once_and_check_warns_until_edited(backend: Backend) {
    let t = Test::on(backend);
    make_schema_4_with_old_patterns(&t, backend);
    let first = t.run(&["-im", "u@local.example"]);
    let notice = |pattern: &str, why: &str| {
        format!(
            "Warning: white domains pattern '{pattern}' matches differently since this upgrade \
             (white patterns match the whole host name or whole labels at its end): {why}"
        )
    };
    let expected = [
        notice(
            "*amazonses*",
            "'*amazonses*' ends in '*', so any domain owner can match it with a name such as \
             'amazonses.attacker.example'; end it with the domain (*.example.com)",
        ),
        notice(
            "*-out.amazonses.com",
            "'*-out.amazonses.com' matches only '-out.amazonses.com' and names ending in \
             '.-out.amazonses.com'; write the whole label after '*.' (as in \
             *.smtp-out.amazonses.com)",
        ),
    ];
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    first.warns(
        "Grey listing configuration for u@local.example\n\nUser's black list:\n\nUser's white \
         list:\n\nSUCCESS: Gathering of information for mail 'u@local.example' complete.\n",
        &expected,
    );
    // Once: the next command is silent.
    t.run(&["-id", "local.example"]).stdout(
        "Grey listing configuration for local.example\n\nGrey listing checking  enabled\n\n\
         SUCCESS: Gathering of information for domain 'local.example' complete.\n",
    );
    let check = |t: &Test| {
        let out = t.run(&["--check"]);
        assert_eq!(out.stderr, "", "{}", out.stderr);
        (out.code, out.stdout)
    };
    let (code, line) = check(&t);
    assert_eq!(code, 1, "{line}");
    assert!(
        line.starts_with("GREY_LISTING WARNING - ")
            && line.contains(
                "2 white domains pattern(s) to review: *amazonses*, *-out.amazonses.com |"
            ),
        "{line}"
    );
    t.run(&[
        "-u",
        "-domains-whitelist",
        "del:*amazonses*,*-out.amazonses.com;add:*.amazonses.com",
    ])
    .stdout(SERVER_UPDATED);
    let (code, line) = check(&t);
    assert_eq!(code, 0, "{line}");
    assert!(line.starts_with("GREY_LISTING OK - "), "{line}");
}

on_both_stores!(
    borrowed_white_names_are_greylisted,
    edits_compare_ignoring_case,
    upgrade_names_white_patterns_once_and_check_warns_until_edited,
);
