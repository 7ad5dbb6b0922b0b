//! The man page `man/grey_listing.1`, written from the clap definition for a Plesk administrator:
//! every command and option in the one-dash spelling Plesk's documentation uses, with its short
//! form (`-update-server`, `-u`), then the list-edit grammar, exit status, environment, files and
//! examples. clap_mangen would print `--u` and `--update-server` as two long options.

use clap::Arg;

use crate::manual::{self, Section};

/// The sections after the options.
const SECTIONS: &[Section] = &[
    Section {
        title: "LIST EDITS",
        intro: "The values of -blacklist, -whitelist, -domains-whitelist and \
                -domains-blacklist are list edits. Adding a pattern already in the list, or \
                deleting one that is not, changes nothing and prints a Warning: line on standard \
                error (the command still succeeds). Patterns are compared ignoring case. In a \
                pattern, * matches any run of characters, ? one character, [...] a class, and | \
                separates alternatives. Address patterns (-blacklist, -whitelist) match the whole \
                envelope sender; black domain patterns match anywhere in the client's host name; \
                white domain patterns match the whole name or a whole-label suffix of it. \
                -dnswl-zones and -dnsbl-zones take the same edits with DNS zone names instead \
                of patterns (letters, digits and hyphens in dot-separated labels, no \
                wildcards; compared ignoring case, stored lower-case without a trailing dot).",
        items: &[
            (
                "<add|del>:<pattern1[,pattern2]>;<add|del>:...",
                "The grammar: groups separated by ;, patterns by a comma, applied in order.",
            ),
            (
                "add:*@example.com",
                "Add one pattern: every sender at example.com.",
            ),
            (
                "add:*.example.net,*.example.org;del:*@old.example",
                "Add two patterns, then delete one.",
            ),
            (
                "del:dsl|broadband|hsd",
                "Delete a pattern with alternatives (quote it in the shell: | is a pipe).",
            ),
        ],
    },
    Section {
        title: "EXIT STATUS",
        intro: "",
        items: &[
            ("0", "Success."),
            (
                "1",
                "Bad input: an unknown or misspelt command, option or value. Nothing was changed.",
            ),
            (
                "2",
                "Database or system error (the database cannot be opened, read or written).",
            ),
            (
                "--check, --check-dns",
                "Nagios/Icinga codes: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (their own errors, \
                 such as a resolver that cannot be located).",
            ),
        ],
    },
    Section {
        title: "ENVIRONMENT",
        intro: "",
        items: &[
            (
                "GREY_LISTING_DB",
                "Database path or postgres:// URL, used when --db is not given.",
            ),
            (
                "GREY_LISTING_CONF",
                "Path of the configuration file read instead of /etc/grey_listing.conf.",
            ),
            (
                "GREY_LISTING_RESOLVER",
                "DNS resolver for --check-dns, --check and --explain (an IP address with an \
                 optional port, e.g. 127.0.0.1:5353); else resolver = in the configuration file, \
                 else /etc/resolv.conf.",
            ),
            (
                "GREY_LISTING_NOW",
                "Unix seconds used as the current time (tests and simulations).",
            ),
        ],
    },
    Section {
        title: "FILES",
        intro: "",
        items: &[
            (
                "/etc/grey_listing.conf",
                "Lines key = value: db = <path or URL> names the database shared with \
                 greylisting-filter and greylisting-policyd; resolver = <IP address[:port]> the \
                 DNS resolver asked about the DNS lists.",
            ),
            (
                "/var/lib/grey_listing/greylist.db",
                "The default database (SQLite).",
            ),
        ],
    },
    Section {
        title: "EXAMPLES",
        intro: "",
        items: &[
            (
                "grey_listing -i",
                "Show the server-wide settings and lists.",
            ),
            (
                "grey_listing -u -status on -grey-interval 10",
                "Enable greylisting server-wide with a 10-minute grey interval.",
            ),
            (
                "grey_listing -u -domains-whitelist \"add:*.messaging.microsoft.com\"",
                "Let Microsoft's hosted mail servers through without greylisting.",
            ),
            (
                "grey_listing -ud example.com -status off",
                "Switch greylisting off for one domain.",
            ),
            (
                "grey_listing -um john@example.com -whitelist \"add:*@ietf.org\"",
                "Let one mailbox receive mail from ietf.org without greylisting.",
            ),
            (
                "grey_listing -id example.com",
                "Show whether greylisting is on for a domain.",
            ),
            (
                "grey_listing --check-dns",
                "Check that every DNSWL/DNSBL zone answers its RFC 5782 test entries.",
            ),
            (
                "grey_listing --db /tmp/test.db -i --json",
                "The settings of another database, as JSON.",
            ),
        ],
    },
    Section {
        title: "SEE ALSO",
        intro: "greylisting-filter(1), greylisting-policyd(1)",
        items: &[],
    },
];

/// `\fB-update-server\fR, \fB-u\fR \fI<DOMAIN>\fR`: the one-dash spellings and the value.
fn tag(arg: &Arg, long: &str) -> String {
    let names: Vec<String> = std::iter::once(long)
        .chain(arg.get_visible_aliases().unwrap_or_default())
        .map(|name| format!("\\fB{}\\fR", manual::escape(&format!("-{name}"))))
        .collect();
    let mut tag = names.join(", ");
    if arg.get_action().takes_values() {
        for value in arg.get_value_names().unwrap_or_default() {
            tag.push_str(&format!(" \\fI<{}>\\fR", manual::escape(value.as_str())));
        }
    }
    tag
}

/// The options under their headings (in the order the headings first appear), each heading's
/// options in the order the definition gives them.
fn options() -> String {
    let command = super::command();
    let args: Vec<&Arg> = command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && arg.get_long().is_some())
        .collect();
    let heading_of = |arg: &Arg| arg.get_help_heading().unwrap_or("Options").to_string();
    let mut headings: Vec<String> = Vec::new();
    for arg in &args {
        let heading = heading_of(arg);
        if !headings.contains(&heading) {
            headings.push(heading);
        }
    }
    let mut roff = String::new();
    for heading in headings {
        roff.push_str(&format!(".SH \"{}\"\n", heading.to_uppercase()));
        for arg in args.iter().filter(|arg| heading_of(arg) == heading) {
            let Some(long) = arg.get_long() else { continue };
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|help| help.to_string())
                .unwrap_or_default();
            roff.push_str(&format!(
                ".TP\n{}\n{}\n",
                tag(arg, long),
                manual::escape(&help)
            ));
        }
    }
    roff
}

/// The whole page.
pub fn render() -> Vec<u8> {
    let command = super::command();
    let version = env!("CARGO_PKG_VERSION");
    let about = command
        .get_long_about()
        .map(|about| about.to_string())
        .unwrap_or_default();
    let mut roff = format!(
        ".TH GREY_LISTING 1 \"\" \"grey_listing {version}\" \"User Commands\"\n\
         .SH NAME\n\
         grey_listing \\- configure greylisting (Plesk\\-compatible grey_listing command)\n\
         .SH SYNOPSIS\n\
         \\fBgrey_listing\\fR \\fIcommand\\fR [\\fImail\\-address\\fR|\\fIdomain\\-name\\fR] \
         [\\fIoption\\fR \\fIvalue\\fR]...\n\
         .SH DESCRIPTION\n\
         {}\n",
        manual::escape(&about)
    );
    roff.push_str(&options());
    roff.push_str(&manual::render_sections(SECTIONS));
    roff.push_str(&format!(".SH VERSION\n{version}\n"));
    roff.into_bytes()
}
