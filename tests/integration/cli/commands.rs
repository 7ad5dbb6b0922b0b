//! `grey_listing` outputs, byte for byte (DESIGN.md §2), command and option spellings, and the admin
//! commands of issue 3 run as written.

use serde_json::json;

use crate::support::{Backend, INFO_SERVER_DEFAULTS, SERVER_UPDATED, Test};

// DESIGN.md §2: `--info-server` on a new database prints exactly the default block.
fn info_server_on_a_new_database_prints_the_defaults(backend: Backend) {
    Test::on(backend)
        .run(&["--info-server"])
        .stdout(INFO_SERVER_DEFAULTS);
}

// DESIGN.md §2: a domain never set is `enabled`; `-status off` makes it `disabled`.
fn info_domain_shows_the_domain_flag(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["--info-domain", "example.com"]).stdout(
        "Grey listing configuration for example.com\n\n\
         Grey listing checking  enabled\n\n\
         SUCCESS: Gathering of information for domain 'example.com' complete.\n",
    );
    t.run(&["--update-domain", "example.com", "-status", "off"])
        .stdout("SUCCESS: Update of domain 'example.com' complete.\n");
    t.run(&["--info-domain", "example.com"]).stdout(
        "Grey listing configuration for example.com\n\n\
         Grey listing checking  disabled\n\n\
         SUCCESS: Gathering of information for domain 'example.com' complete.\n",
    );
    t.run(&["-ud", "example.com", "-status", "on"])
        .stdout("SUCCESS: Update of domain 'example.com' complete.\n");
    t.run(&["-id", "example.com"]).stdout(
        "Grey listing configuration for example.com\n\n\
         Grey listing checking  enabled\n\n\
         SUCCESS: Gathering of information for domain 'example.com' complete.\n",
    );
}

// DESIGN.md §2: `--info-mailname` prints both of the mailbox's lists, empty ones as header + blank.
fn info_mailname_shows_the_mailbox_lists(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["--info-mailname", "john@example.com"]).stdout(
        "Grey listing configuration for john@example.com\n\n\
         User's black list:\n\n\
         User's white list:\n\n\
         SUCCESS: Gathering of information for mail 'john@example.com' complete.\n",
    );
    t.run(&["-um", "john@example.com", "-whitelist", "add:*@ietf.org"])
        .stdout("SUCCESS: Update of mail 'john@example.com' complete.\n");
    t.run(&["--info-mailname", "john@example.com"]).stdout(
        "Grey listing configuration for john@example.com\n\n\
         User's black list:\n\n\
         User's white list:\n\
         *@ietf.org\n\n\
         SUCCESS: Gathering of information for mail 'john@example.com' complete.\n",
    );
}

// DESIGN.md §2: the three update SUCCESS lines; an update with no options changes nothing and still
// prints its SUCCESS line.
fn update_commands_print_their_success_lines_and_no_options_change_nothing(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["--update-server"]).stdout(SERVER_UPDATED);
    t.run(&["--update-domain", "example.com"])
        .stdout("SUCCESS: Update of domain 'example.com' complete.\n");
    t.run(&["--update-mailname", "john@example.com"])
        .stdout("SUCCESS: Update of mail 'john@example.com' complete.\n");
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
    t.run(&["-id", "example.com"]).stdout(
        "Grey listing configuration for example.com\n\n\
         Grey listing checking  enabled\n\n\
         SUCCESS: Gathering of information for domain 'example.com' complete.\n",
    );
}

/// Plesk's help text: every command and option with its description, corrected where Plesk's
/// words are untrue here (a domain or mailbox need not exist; the lists are not SpamAssassin's).
const PLESK_HELP_ROWS: &[(&str, &str)] = &[
    (
        "--update-mailname or -um <mail@domain>",
        "updates the grey listing configuration for a mail user (the mailbox need not exist)",
    ),
    (
        "--update-domain or -ud <domain>",
        "updates the grey listing configuration for a domain (the domain need not exist)",
    ),
    (
        "--update-server or -u",
        "updates the grey listing server-wide settings",
    ),
    (
        "--info-mailname or -im <mail@domain>",
        "retrieves grey listing settings for given mailname",
    ),
    (
        "--info-domain or -id <domain>",
        "retrieves grey listing settings for given domain",
    ),
    (
        "--info-server or -i",
        "retrieves server wide grey listing settings",
    ),
    ("--help or -h", "displays this help page"),
    (
        "-status <on|off>",
        "enable/disable grey listing. Used with --update-domain or with --update-server command",
    ),
    (
        "-personal-conf <true|false>",
        "allows or prohibits personal grey listing configuration for users. Used only with --update-server command.",
    ),
    (
        "-grey-interval <number>",
        "updates grey interval value (in minutes). Used only with --update-server command",
    ),
    (
        "-expire-interval <number>",
        "updates expire interval value (in minutes). Used only with --update-server command",
    ),
    (
        "-penalty-interval <number>",
        "updates penalty interval value (in minutes). Used only with --update-server command",
    ),
    (
        "-penalty-status <true|false>",
        "enable/disable penalties for server. Used only with --update-server command",
    ),
    (
        "-blacklist <add|del>:<pattern1[,pattern2]>;...",
        "adds, deletes e-mail(s) pattern of black list. Used with --update-mailname or with --update-server command",
    ),
    (
        "-whitelist <add|del>:<pattern1[,pattern2]>;...",
        "adds, deletes e-mail(s) pattern of white list. Used with --update-mailname or with --update-server command",
    ),
    (
        "-domains-whitelist <add|del>:<pattern1[,pattern2]>;...",
        "adds, deletes domains pattern of white list. Used only with --update-server command",
    ),
    (
        "-domains-blacklist <add|del>:<pattern1[,pattern2]>;...",
        "adds, deletes domains pattern of black list. Used only with --update-server command",
    ),
];

/// The help page's two-column rows as (left column, description joined across its wrapped lines).
fn help_rows(page: &str) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for line in page.lines() {
        let Some(rest) = line.strip_prefix("  ") else {
            continue;
        };
        if rest.starts_with(' ') {
            // A continuation: more of the last row's description.
            if let Some((_, description)) = rows.last_mut() {
                if !description.is_empty() {
                    description.push(' ');
                }
                description.push_str(rest.trim());
            }
        } else {
            let (left, description) = rest.split_once("  ").unwrap_or((rest, ""));
            rows.push((left.to_string(), description.trim().to_string()));
        }
    }
    rows
}

// `--help` carries all of Plesk's help text in our two-column layout: each row is Plesk's left
// column and its description, wrapped to 80 columns.
#[test]
fn help_carries_every_line_of_plesks_help_text() {
    let out = Test::new().run(&["--help"]);
    assert_eq!(out.code, 0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        out.stdout
            .starts_with("Usage: grey_listing command [options]\n")
    );
    assert!(lines.contains(&"Available commands:"));
    assert!(lines.contains(&"Available options:"));
    let rows = help_rows(&out.stdout);
    for (left, description) in PLESK_HELP_ROWS {
        assert!(
            rows.iter().any(|(l, d)| l == left && d == description),
            "help lacks Plesk's row {left:?} / {description:?}"
        );
    }
    for untrue in ["existing", "spamassassin"] {
        assert!(
            !out.stdout.to_lowercase().contains(untrue),
            "help says {untrue:?}"
        );
    }
    // Plesk's rows come before our extensions, which have their own section.
    let plesk_end = out.stdout.find("-domains-blacklist <add|del>").unwrap();
    let extensions = out
        .stdout
        .find("\nExtensions (grey_listing only, not in Plesk):\n")
        .unwrap();
    assert!(plesk_end < extensions);
    for extension in [
        "--db <path|url>",
        "--migrate-store <from> <to>",
        "--json",
        "--extended",
        "-ipv4-prefix",
        "-ipv6-prefix",
        "-awl-count",
        "-sender-normalize",
        "--backup <file>",
    ] {
        let at = out.stdout.find(&format!("  {extension}")).unwrap();
        assert!(
            at > extensions,
            "{extension} must be in the extensions section"
        );
    }
}

// Every binary's help fits an 80-column terminal.
#[test]
fn help_fits_80_columns() {
    for binary in ["grey_listing", "greylisting-filter", "greylisting-policyd"] {
        let output = assert_cmd::Command::cargo_bin(binary)
            .unwrap()
            .arg("--help")
            .env("COLUMNS", "200")
            .output()
            .unwrap();
        assert!(output.status.success(), "{binary} --help failed");
        let page = String::from_utf8(output.stdout).unwrap();
        assert!(page.lines().count() > 10, "{binary}: help is too short");
        for line in page.lines() {
            assert!(
                line.chars().count() <= 80,
                "{binary} --help has a line of {} columns: {line:?}",
                line.chars().count()
            );
        }
    }
}

// DESIGN.md §2: the whole help page, byte for byte (snapshot; `-h` and `--help` print the same page,
// and help needs no database).
#[test]
fn help_page_snapshot() {
    let t = Test::new();
    let page = include_str!("snapshots/help.txt");
    t.run(&["--help"]).stdout(page);
    t.run(&["-h"]).stdout(page);
    t.run(&["-help"]).stdout(page);
    assert!(t.files().is_empty(), "--help must not create the database");
}

// DESIGN.md §2: `--json` gives the same information as an object (byte-exact snapshots).
fn json_objects(backend: Backend) {
    let t = Test::on(backend);
    let server = t.run(&["-i", "--json"]);
    assert_eq!(
        server.json(),
        json!({
            "settings": {
                "enabled": true, "grey_interval": 5, "expire_interval": 51840,
                "penalty_interval": 2, "penalty_enabled": false, "personal_conf": true,
                "ipv4_prefix": 24, "ipv6_prefix": 64, "awl_count": 5,
                "sender_normalize": true, "group_by_host_domain": true,
                "log_retention": 43_200, "greylist_clients": "all"
            },
            "lists": {
                "black": [], "white": [],
                "domains_white": ["*.office365.com", "*.outlook.com", "*.outlook.office.com",
                    "*facebook.com", "*google.com", "*mail.ru", "*parallels.com", "*plesk.com",
                    "*rambler.ru", "*yahoo.com", "*yandex.ru"],
                "domains_black": ["dsl|broadband|hsd", "dynamic|ppp|dyn-ip|dial-up"],
                "dnswl_zones": [], "dnsbl_zones": []
            }
        })
    );
    t.run(&["-i", "--json"])
        .stdout(include_str!("snapshots/info_server.json"));
    t.run(&["-u", "-status", "off", "--json"]).stdout(
        "{\n  \"message\": \"Update of server-wide settings complete.\",\n  \"success\": true\n}\n",
    );
    t.run(&["-ud", "Example.com", "-status", "off", "--json"]).stdout(
        "{\n  \"message\": \"Update of domain 'Example.com' complete.\",\n  \"success\": true\n}\n",
    );
    t.run(&["-id", "example.com", "--json"])
        .stdout("{\n  \"domain\": \"example.com\",\n  \"enabled\": false\n}\n");
    t.run(&["-id", "other.example", "--json"])
        .stdout("{\n  \"domain\": \"other.example\",\n  \"enabled\": true\n}\n");
    t.run(&["-um", "john@example.com", "-blacklist", "add:*@spam.example", "--json"])
        .stdout("{\n  \"message\": \"Update of mail 'john@example.com' complete.\",\n  \"success\": true\n}\n");
    t.run(&["-im", "john@example.com", "--json"]).stdout(
        "{\n  \"black\": [\n    \"*@spam.example\"\n  ],\n  \"mail\": \"john@example.com\",\n  \"white\": []\n}\n",
    );
    assert_eq!(
        t.run(&["-i", "--json"]).json()["settings"]["enabled"],
        json!(false)
    );
}

// DESIGN.md §2: `--info-server --extended` is Plesk's block, then `Extension settings:`, then the
// DNS list zones, then SUCCESS.
fn info_server_extended(backend: Backend) {
    let t = Test::on(backend);
    let plesk_block = INFO_SERVER_DEFAULTS
        .strip_suffix("SUCCESS: Gathering of server wide information complete.\n")
        .unwrap();
    let expected = format!(
        "{plesk_block}\
         Extension settings:\n\
         IPv4 prefix            24\n\
         IPv6 prefix            64\n\
         Client auto-whitelist  after 5 passed triplets\n\
         Sender normalization   enabled\n\
         Group by host domain   enabled\n\
         Decision log retention 30 days\n\
         Greylist clients       all\n\n\
         DNSWL zones:\n\n\
         DNSBL zones:\n\n\
         SUCCESS: Gathering of server wide information complete.\n"
    );
    t.run(&["--info-server", "--extended"]).stdout(&expected);
    t.run(&[
        "-u",
        "-ipv4-prefix",
        "32",
        "-ipv6-prefix",
        "128",
        "-awl-count",
        "0",
        "-sender-normalize",
        "false",
        "-greylist-clients",
        "suspicious",
        "-dnswl-zones",
        "add:List.DNSWL.org.,swl.example",
        "-dnsbl-zones",
        "add:zen.spamhaus.org",
    ])
    .stdout(SERVER_UPDATED);
    let changed = format!(
        "{plesk_block}\
         Extension settings:\n\
         IPv4 prefix            32\n\
         IPv6 prefix            128\n\
         Client auto-whitelist  disabled\n\
         Sender normalization   disabled\n\
         Group by host domain   enabled\n\
         Decision log retention 30 days\n\
         Greylist clients       suspicious\n\n\
         DNSWL zones:\n\
         list.dnswl.org\n\
         swl.example\n\n\
         DNSBL zones:\n\
         zen.spamhaus.org\n\n\
         SUCCESS: Gathering of server wide information complete.\n"
    );
    t.run(&["-extended", "-i"]).stdout(&changed);
    // Plesk's command without --extended stays Plesk's block.
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
}

// DESIGN.md §2 / issue 3: the seven commands in long and short form, with one or two leading dashes.
fn long_and_short_forms_of_all_seven_commands(backend: Backend) {
    let t = Test::on(backend);
    let help = include_str!("snapshots/help.txt");
    for form in ["--help", "-help", "-h", "--h"] {
        t.run(&[form]).stdout(help);
    }
    for form in ["--update-server", "-update-server", "-u", "--u"] {
        t.run(&[form]).stdout(SERVER_UPDATED);
    }
    for form in ["--info-server", "-info-server", "-i", "--i"] {
        t.run(&[form]).stdout(INFO_SERVER_DEFAULTS);
    }
    for form in ["--update-domain", "-update-domain", "-ud", "--ud"] {
        t.run(&[form, "example.com"])
            .stdout("SUCCESS: Update of domain 'example.com' complete.\n");
    }
    for form in ["--info-domain", "-info-domain", "-id", "--id"] {
        t.run(&[form, "example.com"]).stdout(
            "Grey listing configuration for example.com\n\n\
             Grey listing checking  enabled\n\n\
             SUCCESS: Gathering of information for domain 'example.com' complete.\n",
        );
    }
    for form in ["--update-mailname", "-update-mailname", "-um", "--um"] {
        t.run(&[form, "a@example.com"])
            .stdout("SUCCESS: Update of mail 'a@example.com' complete.\n");
    }
    for form in ["--info-mailname", "-info-mailname", "-im", "--im"] {
        t.run(&[form, "a@example.com"]).stdout(
            "Grey listing configuration for a@example.com\n\n\
             User's black list:\n\n\
             User's white list:\n\n\
             SUCCESS: Gathering of information for mail 'a@example.com' complete.\n",
        );
    }
}

// DESIGN.md §2: every option with one and with two leading dashes sets the same setting.
#[test]
fn every_option_with_one_or_two_dashes() {
    let cases: &[(&str, &str, &str, serde_json::Value)] = &[
        ("status", "off", "enabled", json!(false)),
        ("personal-conf", "false", "personal_conf", json!(false)),
        ("grey-interval", "11", "grey_interval", json!(11)),
        ("expire-interval", "1000", "expire_interval", json!(1000)),
        ("penalty-interval", "7", "penalty_interval", json!(7)),
        ("penalty-status", "true", "penalty_enabled", json!(true)),
        ("ipv4-prefix", "28", "ipv4_prefix", json!(28)),
        ("ipv6-prefix", "48", "ipv6_prefix", json!(48)),
        ("awl-count", "3", "awl_count", json!(3)),
        (
            "sender-normalize",
            "false",
            "sender_normalize",
            json!(false),
        ),
    ];
    for dashes in ["-", "--"] {
        for (option, value, field, expected) in cases {
            let t = Test::new();
            t.run(&["-u", &format!("{dashes}{option}"), value])
                .stdout(SERVER_UPDATED);
            let settings = &t.run(&["-i", "--json"]).json()["settings"];
            assert_eq!(&settings[field], expected, "{dashes}{option} {value}");
        }
        let lists: &[(&str, &str, &str)] = &[
            ("blacklist", "black", "*@x.example"),
            ("whitelist", "white", "*@x.example"),
            ("domains-whitelist", "domains_white", "*.x.example"),
            ("domains-blacklist", "domains_black", "*.x.example"),
        ];
        for (option, field, pattern) in lists {
            let t = Test::new();
            t.run(&[
                "-u",
                &format!("{dashes}{option}"),
                &format!("add:{pattern}"),
            ])
            .stdout(SERVER_UPDATED);
            let list = t.run(&["-i", "--json"]).json()["lists"][field].clone();
            assert_eq!(list.as_array().unwrap().last(), Some(&json!(pattern)));
        }
        let t = Test::new();
        let mail = "m@example.com";
        for (option, field) in [("blacklist", "black"), ("whitelist", "white")] {
            t.run(&["-um", mail, &format!("{dashes}{option}"), "add:*@y.example"])
                .stdout("SUCCESS: Update of mail 'm@example.com' complete.\n");
            assert_eq!(
                t.run(&["-im", mail, "--json"]).json()[field],
                json!(["*@y.example"])
            );
        }
        t.run(&["-ud", "d.example", &format!("{dashes}status"), "off"])
            .stdout("SUCCESS: Update of domain 'd.example' complete.\n");
        assert_eq!(
            t.run(&["-id", "d.example", "--json"]).json()["enabled"],
            json!(false)
        );
    }
}

// DESIGN.md §2: global flags (`--db PATH`, `--json`) may appear anywhere on the line, with one or
// two dashes.
#[test]
fn global_flags_anywhere_on_the_line() {
    let t = Test::new();
    let db = t.db();
    let db = db.to_str().unwrap();
    t.run_raw(&["--db", db, "-u", "-grey-interval", "9"])
        .stdout(SERVER_UPDATED);
    t.run_raw(&["-u", "--db", db, "-expire-interval", "99"])
        .stdout(SERVER_UPDATED);
    t.run_raw(&["-u", "-penalty-interval", "4", "-db", db])
        .stdout(SERVER_UPDATED);
    t.run_raw(&[
        &format!("--db={db}"),
        "-ud",
        "example.com",
        "-status",
        "off",
    ])
    .stdout("SUCCESS: Update of domain 'example.com' complete.\n");
    let expected = json!({"domain": "example.com", "enabled": false});
    for line in [
        vec!["--json", "-id", "example.com", "--db", db],
        vec!["-id", "--json", "example.com", "--db", db],
        vec!["-db", db, "-json", "-id", "example.com"],
        vec!["-id", "example.com", "-db", db, "--json"],
    ] {
        assert_eq!(t.run_raw(&line).json(), expected, "{line:?}");
    }
    let settings = &t.run_raw(&["-json", "-i", "-db", db]).json()["settings"];
    assert_eq!(
        (
            &settings["grey_interval"],
            &settings["expire_interval"],
            &settings["penalty_interval"]
        ),
        (&json!(9), &json!(99), &json!(4))
    );
}

// DESIGN.md §2: the last of a repeated scalar option wins; repeated list edits all apply, in order.
fn last_repeated_scalar_wins(backend: Backend) {
    let t = Test::on(backend);
    t.run(&[
        "-u",
        "-grey-interval",
        "7",
        "-status",
        "off",
        "-grey-interval",
        "9",
        "--status",
        "on",
        "-personal-conf",
        "false",
        "-personal-conf",
        "true",
        "-penalty-status",
        "true",
        "-penalty-status",
        "false",
        "-blacklist",
        "add:a@x.example",
        "-blacklist",
        "add:b@x.example;del:a@x.example",
    ])
    .stdout(SERVER_UPDATED);
    let info = t.run(&["-i", "--json"]).json();
    assert_eq!(info["settings"]["grey_interval"], json!(9));
    assert_eq!(info["settings"]["enabled"], json!(true));
    assert_eq!(info["settings"]["personal_conf"], json!(true));
    assert_eq!(info["settings"]["penalty_enabled"], json!(false));
    assert_eq!(info["lists"]["black"], json!(["b@x.example"]));
    t.run(&[
        "-ud",
        "example.com",
        "-status",
        "off",
        "-status",
        "on",
        "-status",
        "off",
    ])
    .stdout("SUCCESS: Update of domain 'example.com' complete.\n");
    assert_eq!(
        t.run(&["-id", "example.com", "--json"]).json()["enabled"],
        json!(false)
    );
}

// List-edit grammar: several groups applied in order, adds of present patterns and deletes of
// missing ones change nothing (with a warning), `*.x.com` and `*x.com` are different patterns,
// insertion order kept.
fn list_edit_groups_apply_in_order(backend: Backend) {
    let t = Test::on(backend);
    t.run(&[
        "-u",
        "-blacklist",
        "add:*.x.com,*x.com;add:c@d.example;del:*x.com,missing@x.com;add:*.x.com",
    ])
    .warns(
        SERVER_UPDATED,
        &[
            "Warning: address pattern '*.x.com' has no '@' in an alternative, which must match \
             the whole envelope sender (write *@example.com for a domain)",
            "Warning: address pattern '*x.com' has no '@' in an alternative, which must match \
             the whole envelope sender (write *@example.com for a domain)",
            "Warning: missing@x.com is not in the server black list",
            "Warning: *.x.com is already in the server black list",
        ],
    );
    t.run(&["-u", "-blacklist", "del:nothing@here.example;add:*x.com"])
        .warns(
            SERVER_UPDATED,
            &[
                "Warning: nothing@here.example is not in the server black list",
                "Warning: address pattern '*x.com' has no '@' in an alternative, which must \
                 match the whole envelope sender (write *@example.com for a domain)",
            ],
        );
    assert_eq!(
        t.run(&["-i", "--json"]).json()["lists"]["black"],
        json!(["*.x.com", "c@d.example", "*x.com"])
    );
}

/// `--info-server` with the given block replacing the defaults' settings rows and lists.
fn info_server(
    rows: &str,
    black: &[&str],
    white: &[&str],
    domains_white: &[&str],
    domains_black: &[&str],
) -> String {
    let block = |header: &str, entries: &[&str]| {
        let mut out = format!("{header}\n");
        for entry in entries {
            out.push_str(entry);
            out.push('\n');
        }
        out.push('\n');
        out
    };
    format!(
        "Grey listing configuration.\n\n{rows}\n{}{}{}{}SUCCESS: Gathering of server wide information complete.\n",
        block("Server-wide black list:", black),
        block("Server-wide white list:", white),
        block("White domains patterns list:", domains_white),
        block("Black domains patterns list:", domains_black),
    )
}

const DEFAULT_ROWS: &str = "\
Grey listing checking  enabled
Grey interval          5 minutes
Expire interval        51840 minutes
Penalty interval       2 minutes
Penalty                disabled
Personal grey listing configuration allowed
";

const DEFAULT_WHITE_DOMAINS: &[&str] = &[
    "*.office365.com",
    "*.outlook.com",
    "*.outlook.office.com",
    "*facebook.com",
    "*google.com",
    "*mail.ru",
    "*parallels.com",
    "*plesk.com",
    "*rambler.ru",
    "*yahoo.com",
    "*yandex.ru",
];

const DEFAULT_BLACK_DOMAINS: &[&str] = &["dsl|broadband|hsd", "dynamic|ppp|dyn-ip|dial-up"];

// The helper itself reproduces the default block Plesk prints (DESIGN.md §2), so the cases below
// compare against Plesk's layout.
#[test]
fn info_server_helper_reproduces_plesks_block() {
    assert_eq!(
        info_server(
            DEFAULT_ROWS,
            &[],
            &[],
            DEFAULT_WHITE_DOMAINS,
            DEFAULT_BLACK_DOMAINS
        ),
        INFO_SERVER_DEFAULTS
    );
}

fn with_extra<'a>(base: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter().chain(extra).copied().collect()
}

// Issue 3 (a Plesk admin's report): whitelisting Microsoft's outbound pool, as the admin typed it.
fn admin_whitelists_messaging_microsoft_com(backend: Backend) {
    let t = Test::on(backend);
    t.run(&[
        "--update-server",
        "-domains-whitelist",
        "add:*messaging.microsoft.com",
    ])
    .stdout(SERVER_UPDATED);
    t.run(&["--info-server"]).stdout(&info_server(
        DEFAULT_ROWS,
        &[],
        &[],
        &with_extra(DEFAULT_WHITE_DOMAINS, &["*messaging.microsoft.com"]),
        DEFAULT_BLACK_DOMAINS,
    ));
}

// Issue 3: the short form with an unquoted pattern.
fn admin_whitelists_outlook_protection(backend: Backend) {
    let t = Test::on(backend);
    t.run(&[
        "-u",
        "-domains-whitelist",
        "add:*outbound.protection.outlook.com",
    ])
    .stdout(SERVER_UPDATED);
    t.run(&["-i"]).stdout(&info_server(
        DEFAULT_ROWS,
        &[],
        &[],
        &with_extra(DEFAULT_WHITE_DOMAINS, &["*outbound.protection.outlook.com"]),
        DEFAULT_BLACK_DOMAINS,
    ));
}

// Issue 3: turning a domain off, then `--info-domain` shows `disabled`.
fn admin_disables_a_domain(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["--update-domain", "example.com", "-status", "off"])
        .stdout("SUCCESS: Update of domain 'example.com' complete.\n");
    t.run(&["--info-domain", "example.com"]).stdout(
        "Grey listing configuration for example.com\n\n\
         Grey listing checking  disabled\n\n\
         SUCCESS: Gathering of information for domain 'example.com' complete.\n",
    );
    // Only that domain: the server-wide settings are untouched.
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
}

// Issue 3: the long one-line server configuration.
fn admin_configures_the_whole_server_in_one_command(backend: Backend) {
    let t = Test::on(backend);
    t.run(&[
        "--update-server",
        "-status",
        "on",
        "-personal-conf",
        "true",
        "-penalty-status",
        "true",
        "-grey-interval",
        "8",
        "-expire-interval",
        "57600",
        "-penalty-interval",
        "5",
        "-domains-whitelist",
        "add:example.com,sample.net",
        "-blacklist",
        "add:*instant*@*",
    ])
    .stdout(SERVER_UPDATED);
    t.run(&["--info-server"]).stdout(&info_server(
        "\
Grey listing checking  enabled
Grey interval          8 minutes
Expire interval        57600 minutes
Penalty interval       5 minutes
Penalty                enabled
Personal grey listing configuration allowed
",
        &["*instant*@*"],
        &[],
        &with_extra(DEFAULT_WHITE_DOMAINS, &["example.com", "sample.net"]),
        DEFAULT_BLACK_DOMAINS,
    ));
}

// Issue 3: a mailbox's own white list.
fn admin_whitelists_ietf_for_a_mailbox(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["-um", "johndoe@example.com", "-whitelist", "add:*@ietf.org"])
        .stdout("SUCCESS: Update of mail 'johndoe@example.com' complete.\n");
    t.run(&["-im", "johndoe@example.com"]).stdout(
        "Grey listing configuration for johndoe@example.com\n\n\
         User's black list:\n\n\
         User's white list:\n\
         *@ietf.org\n\n\
         SUCCESS: Gathering of information for mail 'johndoe@example.com' complete.\n",
    );
    // Mailbox lists are not server lists.
    t.run(&["-i"]).stdout(INFO_SERVER_DEFAULTS);
}

// Issue 3: nine big senders in one group, kept in the order given.
fn admin_whitelists_nine_big_senders(backend: Backend) {
    let t = Test::on(backend);
    let senders = [
        "*.adobe.com",
        "*.amazonses.com",
        "*.ebay.com",
        "*.google.com",
        "*.github.com",
        "*.linkedin.com",
        "*.paypal.com",
        "*.shopify.com",
        "*.telus.com",
    ];
    t.run(&[
        "-u",
        "-domains-whitelist",
        &format!("add:{}", senders.join(",")),
    ])
    .stdout(SERVER_UPDATED);
    t.run(&["-i"]).stdout(&info_server(
        DEFAULT_ROWS,
        &[],
        &[],
        &with_extra(DEFAULT_WHITE_DOMAINS, &senders),
        DEFAULT_BLACK_DOMAINS,
    ));
}

// Issue 3 (a Plesk admin's report): adding Plesk's digit pattern back, then replacing it in one edit.
fn admin_adds_then_replaces_the_digit_pattern(backend: Backend) {
    let t = Test::on(backend);
    let digits = "*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*";
    t.run(&["-u", "-domains-blacklist", &format!("add:{digits}")])
        .stdout(SERVER_UPDATED);
    t.run(&["-i"]).stdout(&info_server(
        DEFAULT_ROWS,
        &[],
        &[],
        DEFAULT_WHITE_DOMAINS,
        &with_extra(DEFAULT_BLACK_DOMAINS, &[digits]),
    ));
    t.run(&[
        "-u",
        "-domains-blacklist",
        &format!("del:{digits};add:*.dynamic.example.net"),
    ])
    .stdout(SERVER_UPDATED);
    t.run(&["-i"]).stdout(&info_server(
        DEFAULT_ROWS,
        &[],
        &[],
        DEFAULT_WHITE_DOMAINS,
        &with_extra(DEFAULT_BLACK_DOMAINS, &["*.dynamic.example.net"]),
    ));
}

// DESIGN.md §2: `-um` works whatever `-personal-conf` says.
fn mailbox_lists_are_editable_while_personal_conf_is_prohibited(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["-u", "-personal-conf", "false"])
        .stdout(SERVER_UPDATED);
    t.run(&["-um", "a@example.com", "-blacklist", "add:*@bad.example"])
        .stdout("SUCCESS: Update of mail 'a@example.com' complete.\n");
    assert_eq!(
        t.run(&["-im", "a@example.com", "--json"]).json()["black"],
        json!(["*@bad.example"])
    );
    t.run(&["-i"]).stdout(&info_server(
        &DEFAULT_ROWS.replace("allowed", "prohibited"),
        &[],
        &[],
        DEFAULT_WHITE_DOMAINS,
        DEFAULT_BLACK_DOMAINS,
    ));
}

// DESIGN.md §2: the numeric bounds are inclusive (grey and penalty 0..=43200, expire 1..=5256000).
fn numeric_bounds_are_inclusive(backend: Backend) {
    let t = Test::on(backend);
    t.run(&[
        "-u",
        "-grey-interval",
        "0",
        "-penalty-interval",
        "0",
        "-expire-interval",
        "1",
    ])
    .stdout(SERVER_UPDATED);
    let s = t.run(&["-i", "--json"]).json()["settings"].clone();
    assert_eq!(
        (
            &s["grey_interval"],
            &s["penalty_interval"],
            &s["expire_interval"]
        ),
        (&json!(0), &json!(0), &json!(1))
    );
    t.run(&[
        "-u",
        "-grey-interval",
        "43200",
        "-penalty-interval",
        "43200",
        "-expire-interval",
        "5256000",
    ])
    .stdout(SERVER_UPDATED);
    let s = t.run(&["-i", "--json"]).json()["settings"].clone();
    assert_eq!(
        (
            &s["grey_interval"],
            &s["penalty_interval"],
            &s["expire_interval"]
        ),
        (&json!(43200), &json!(43200), &json!(5256000))
    );
}

// DESIGN.md §2: domains and mail addresses name the same domain or mailbox whatever their case (the
// filter looks recipients up lower-cased); the messages repeat the name as the admin typed it.
fn domain_and_mailbox_names_ignore_case(backend: Backend) {
    let t = Test::on(backend);
    t.run(&["-ud", "Example.COM", "-status", "off"])
        .stdout("SUCCESS: Update of domain 'Example.COM' complete.\n");
    t.run(&["-id", "example.com"]).stdout(
        "Grey listing configuration for example.com\n\n\
         Grey listing checking  disabled\n\n\
         SUCCESS: Gathering of information for domain 'example.com' complete.\n",
    );
    t.run(&["-um", "John@Example.COM", "-whitelist", "add:*@ietf.org"])
        .stdout("SUCCESS: Update of mail 'John@Example.COM' complete.\n");
    assert_eq!(
        t.run(&["-im", "john@example.com", "--json"]).json(),
        json!({"mail": "john@example.com", "black": [], "white": ["*@ietf.org"]})
    );
}

// Issue 7: the CLI behaves the same on both stores.
on_both_stores!(
    info_server_on_a_new_database_prints_the_defaults,
    info_domain_shows_the_domain_flag,
    info_mailname_shows_the_mailbox_lists,
    update_commands_print_their_success_lines_and_no_options_change_nothing,
    json_objects,
    info_server_extended,
    long_and_short_forms_of_all_seven_commands,
    last_repeated_scalar_wins,
    list_edit_groups_apply_in_order,
    admin_whitelists_messaging_microsoft_com,
    admin_whitelists_outlook_protection,
    admin_disables_a_domain,
    admin_configures_the_whole_server_in_one_command,
    admin_whitelists_ietf_for_a_mailbox,
    admin_whitelists_nine_big_senders,
    admin_adds_then_replaces_the_digit_pattern,
    mailbox_lists_are_editable_while_personal_conf_is_prohibited,
    numeric_bounds_are_inclusive,
    domain_and_mailbox_names_ignore_case,
);
