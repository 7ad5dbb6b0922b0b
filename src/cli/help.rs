//! The `--help` page: all of Plesk's help text in a two-column layout wrapped to 80 columns,
//! corrected where it is untrue here (a domain or mailbox need not exist; the lists are not
//! shared with SpamAssassin), then our extensions in a section of their own.

use crate::config;

/// One row of the help page: left column and description.
type Row = (&'static str, &'static str);

const COMMANDS: &[Row] = &[
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
];

/// The list options; the settings' own rows come first, from [`config::SETTINGS`].
const LIST_OPTIONS: &[Row] = &[
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

const EXTENSIONS: &[Row] = &[
    (
        "--db <path|url>",
        "database to use: an SQLite file or a postgres:// URL (default: $GREY_LISTING_DB, the 'db =' line of /etc/grey_listing.conf, or /var/lib/grey_listing/greylist.db). Allowed with every command but --migrate-store",
    ),
    (
        "--version or -V",
        "prints the program name and version (grey_listing <version>)",
    ),
    (
        "--migrate-store <from> <to>",
        "copies the configuration and the unexpired triplets from database <from> to database <to> (SQLite paths or postgres:// URLs), in one transaction on <to>, and prints the counts",
    ),
    (
        "--json",
        "print the information of an --info-* command, --explain, --report, --purge, --stats or --check-dns as a JSON object",
    ),
    (
        "--extended",
        "with --info-server: also print the extension settings",
    ),
];

/// The extension rows after the extension settings' own rows.
const EXTENSIONS_AFTER_SETTINGS: &[Row] = &[
    (
        "-dnswl-zones <add|del>:<zone1[,zone2]>;...",
        "adds, deletes DNSWL zones (e.g. list.dnswl.org): a client address listed on one passes without greylisting. Used only with --update-server command",
    ),
    (
        "-dnsbl-zones <add|del>:<zone1[,zone2]>;...",
        "adds, deletes DNSBL zones: with -greylist-clients suspicious a client address listed on one is greylisted. Used only with --update-server command",
    ),
    (
        "--explain <client-ip> <client-host|-> <sender|-> <recipient>",
        "walks through the decision for one message at this moment (honours GREY_LISTING_NOW): each check, what matched, the client key, the triplet and the verdict. DNS list answers come from the database's cache or are asked live (not stored), each shown with its source. Only reads the database",
    ),
    (
        "--report",
        "table of the sender organisations most often deferred, then suggested -domains-whitelist commands. Options -since <duration> (default 7d), -top <N> (default 10), -threshold <N> (default 5); -html <file|-> writes one self-contained HTML page with charts instead (decisions per hour, how long mail waited, the organisations, the settings; not with --json)",
    ),
    (
        "--check",
        "Nagios/Icinga plugin: WARNING/CRITICAL when an unlisted sender organisation was deferred -w <N> (default 10) / -c <N> (default 50) times within -since <duration> (default 24h); -ignore-file <file> lists domains to leave alone. Exit 0/1/2, 3 for its own errors",
    ),
    (
        "--check-dns",
        "Nagios/Icinga plugin: asks every -dnswl-zones and -dnsbl-zones zone for its RFC 5782 test entries (127.0.0.2 listed, 127.0.0.1 not) through the resolver of GREY_LISTING_RESOLVER, 'resolver =' in /etc/grey_listing.conf or /etc/resolv.conf, and prints a status line, then one line per zone. CRITICAL when a zone lists everything, WARNING when a zone does not list 127.0.0.2 or does not answer. --check warns about such zones too. Exit 0/1/2, 3 for its own errors (no resolver)",
    ),
    (
        "--purge",
        "removes expired triplets and decision-log rows older than the retention, and prints how many",
    ),
    (
        "--stats",
        "prints counts: triplets (passed, pending, expired), auto-whitelisted client networks, decisions of the last 24 hours by verdict and reason. With -prometheus: the stored decision counters (by component, action and reason, never purged) for node_exporter's textfile collector",
    ),
    (
        "--import-plesk <file|->",
        "applies the output of Plesk's grey_listing --info-server (settings and the four server-wide lists; extension settings and the zone lists are left alone) in one transaction, prints what changed and warns about patterns that reject big legitimate senders",
    ),
    (
        "--export",
        "prints the whole configuration (settings, server-wide lists, domains, mailbox lists) as JSON",
    ),
    (
        "--import <file|->",
        "replaces the whole configuration with an --export file, in one transaction",
    ),
    (
        "--backup <file>",
        "writes a consistent copy of the SQLite database to the file (mode 0640), even while the filter and policyd use it; a symbolic link is refused. For PostgreSQL use pg_dump or --export",
    ),
];

/// The `--help` rows of Plesk's settings or of ours, in the table's order.
fn setting_rows(extension: bool) -> Vec<Row> {
    config::SETTINGS
        .iter()
        .filter(|def| def.extension == extension)
        .map(|def| (def.usage, def.help))
        .collect()
}

/// Width of the terminal the page must fit.
pub(crate) const PAGE_WIDTH: usize = 80;
/// Column where descriptions start: two spaces of indent plus the left column.
const DESCRIPTION_COLUMN: usize = 30;

/// Wrapping at spaces only: option names such as `--update-server` are never split.
fn wrap_options(width: usize) -> textwrap::Options<'static> {
    textwrap::Options::new(width)
        .break_words(false)
        .word_splitter(textwrap::WordSplitter::NoHyphenation)
        .word_separator(textwrap::WordSeparator::AsciiSpace)
}

/// Appends `rows` in two columns: the left column, then the description wrapped to
/// [`PAGE_WIDTH`]; a left column too wide for its place gets a line of its own.
fn rows(out: &mut String, rows: &[Row]) {
    let options = wrap_options(PAGE_WIDTH - DESCRIPTION_COLUMN);
    let indent = " ".repeat(DESCRIPTION_COLUMN);
    for (left, right) in rows {
        let mut lines = textwrap::wrap(right, &options).into_iter();
        let first = lines.next().unwrap_or_default();
        // Two spaces at least between the columns, as Plesk's own page has.
        if 2 + left.len() + 2 <= DESCRIPTION_COLUMN {
            out.push_str(&format!(
                "  {left:<width$}{first}\n",
                width = DESCRIPTION_COLUMN - 2
            ));
        } else {
            out.push_str(&format!("  {left}\n{indent}{first}\n"));
        }
        for line in lines {
            out.push_str(&format!("{indent}{line}\n"));
        }
    }
}

/// The help page.
pub(super) fn text() -> String {
    let mut out = String::from("Usage: grey_listing command [options]\n\nAvailable commands:\n");
    rows(&mut out, COMMANDS);
    out.push_str("\nAvailable options:\n");
    rows(&mut out, &setting_rows(false));
    rows(&mut out, LIST_OPTIONS);
    out.push_str(
        "\nExtensions (grey_listing only, not in Plesk):\n\
         Every command and option is accepted with one or two leading dashes.\n",
    );
    rows(&mut out, EXTENSIONS);
    rows(&mut out, &setting_rows(true));
    rows(&mut out, EXTENSIONS_AFTER_SETTINGS);
    out.push('\n');
    for line in textwrap::wrap(
        "Exit status: 0 success, 1 bad input (nothing is changed), 2 database or system \
         error. --check and --check-dns exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (their own \
         errors).",
        wrap_options(PAGE_WIDTH),
    ) {
        out.push_str(&line);
        out.push('\n');
    }
    out
}
