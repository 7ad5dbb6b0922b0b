//! The `--help` page: all of Plesk's help text (seed 000) in a two-column layout, then ours.

/// One row of the help page: left column and description.
type Row = (&'static str, &'static str);

const COMMANDS: &[Row] = &[
    (
        "--update-mailname or -um <mail@domain>",
        "updates the grey listing configuration for existing mail user",
    ),
    (
        "--update-domain or -ud <domain>",
        "updates the grey listing configuration for existing domain",
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
];

const OPTIONS: &[Row] = &[
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
        "adds, deletes e-mail(s) pattern of black list shared with spamassassin. Used with --update-mailname or with --update-server command",
    ),
    (
        "-whitelist <add|del>:<pattern1[,pattern2]>;...",
        "adds, deletes e-mail(s) pattern of white list shared with spamassassin. Used with --update-mailname or with --update-server command",
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

const EXTENSIONS: &[Row] = &[
    (
        "--db <path|url>",
        "database to use: an SQLite file or a postgres:// URL (default: $GREY_LISTING_DB, the 'db =' line of /etc/grey_listing.conf, or /var/lib/grey_listing/greylist.db). Allowed with every command but --migrate-store",
    ),
    (
        "--migrate-store <from> <to>",
        "copies the configuration and the unexpired triplets from database <from> to database <to> (SQLite paths or postgres:// URLs), in one transaction on <to>, and prints the counts",
    ),
    (
        "--json",
        "print the information of an --info-* command as a JSON object",
    ),
    (
        "--extended",
        "with --info-server: also print the extension settings",
    ),
    (
        "-ipv4-prefix <0-32>",
        "prefix length of the client network an IPv4 sender is greylisted as (default 24; 32 = exact address, as Plesk). Used only with --update-server command",
    ),
    (
        "-ipv6-prefix <0-128>",
        "prefix length of the client network an IPv6 sender is greylisted as (default 64; 128 = exact address). Used only with --update-server command",
    ),
    (
        "-awl-count <number>",
        "after this many passed triplets a client network skips greylisting until they expire (default 5, 0 = off). Used only with --update-server command",
    ),
    (
        "-sender-normalize <true|false>",
        "count +extension, BATV (prvs=) and VERP variants of a sender as one sender (default true). Used only with --update-server command",
    ),
];

const LEFT_WIDTH: usize = 56;

fn rows(out: &mut String, rows: &[Row]) {
    for (left, right) in rows {
        if left.len() < LEFT_WIDTH {
            out.push_str(&format!("  {left:<width$}{right}\n", width = LEFT_WIDTH));
        } else {
            out.push_str(&format!(
                "  {left}\n  {:<width$}{right}\n",
                "",
                width = LEFT_WIDTH
            ));
        }
    }
}

/// The help page.
pub fn text() -> String {
    let mut out = String::from("Usage: grey_listing command [options]\n\nAvailable commands:\n");
    rows(&mut out, COMMANDS);
    out.push_str("\nAvailable options:\n");
    rows(&mut out, OPTIONS);
    out.push_str(
        "\nExtensions (grey_listing only, not in Plesk):\n\
         Every command and option is accepted with one or two leading dashes.\n",
    );
    rows(&mut out, EXTENSIONS);
    out.push_str(
        "\nExit status: 0 success, 1 bad input (nothing is changed), 2 database or system error.\n",
    );
    out
}
