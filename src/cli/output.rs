//! The texts the info commands print (DESIGN.md §2), byte-for-byte as Plesk prints them.

use std::fmt::Write;

use crate::config::{self, MailboxLists, ServerLists, Settings};
use crate::escape::escape_terminal;

/// A `label value` row: the label padded to 22 columns, so values start at column 24.
pub(super) fn row(label: &str, value: &str) -> String {
    format!("{label:<22} {value}\n")
}

fn enabled(flag: bool) -> &'static str {
    if flag { "enabled" } else { "disabled" }
}

/// A list block: header, entries one per line, blank line. Entries come from the store, which
/// group members can write: escaped so none can move the cursor, retitle the terminal or
/// start a forged line (ordinary patterns print unchanged).
fn list_block(out: &mut String, header: &str, entries: &[String]) {
    out.push_str(header);
    out.push('\n');
    for entry in entries {
        out.push_str(&escape_terminal(entry));
        out.push('\n');
    }
    out.push('\n');
}

/// `--info-server` (and, with `extended`, the `Extension settings:` block and the DNS list
/// zones before SUCCESS).
pub(super) fn info_server(settings: &Settings, lists: &ServerLists, extended: bool) -> String {
    let mut out = String::from("Grey listing configuration.\n\n");
    // Plesk's order, which differs from the table's.
    for key in [
        "enabled",
        "grey_interval",
        "expire_interval",
        "penalty_interval",
        "penalty_enabled",
        "personal_conf",
    ] {
        if let Some(def) = config::setting_by_key(key) {
            out.push_str(&row(def.label, &(def.show)(settings)));
        }
    }
    out.push('\n');
    list_block(&mut out, "Server-wide black list:", &lists.black);
    list_block(&mut out, "Server-wide white list:", &lists.white);
    list_block(
        &mut out,
        "White domains patterns list:",
        &lists.domains_white,
    );
    list_block(
        &mut out,
        "Black domains patterns list:",
        &lists.domains_black,
    );
    // Plesk's own text ends here: scripts written for Plesk read it unchanged. Our settings and
    // lists follow only when asked for.
    if extended {
        out.push_str("Extension settings:\n");
        for def in config::SETTINGS.iter().filter(|def| def.extension) {
            out.push_str(&row(def.label, &(def.show)(settings)));
        }
        out.push('\n');
        list_block(&mut out, "DNSWL zones:", &lists.dnswl_zones);
        list_block(&mut out, "DNSBL zones:", &lists.dnsbl_zones);
    }
    out.push_str("SUCCESS: Gathering of server wide information complete.\n");
    out
}

/// `--info-domain`.
pub(super) fn info_domain(domain: &str, enabled_flag: bool) -> String {
    let mut out = String::new();
    let _ = write!(out, "Grey listing configuration for {domain}\n\n");
    out.push_str(&row("Grey listing checking", enabled(enabled_flag)));
    let _ = write!(
        out,
        "\nSUCCESS: Gathering of information for domain '{domain}' complete.\n"
    );
    out
}

/// `--info-mailname`.
pub(super) fn info_mailname(mail: &str, lists: &MailboxLists) -> String {
    let mut out = String::new();
    let _ = write!(out, "Grey listing configuration for {mail}\n\n");
    list_block(&mut out, "User's black list:", &lists.black);
    list_block(&mut out, "User's white list:", &lists.white);
    let _ = writeln!(
        out,
        "SUCCESS: Gathering of information for mail '{mail}' complete."
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_put_values_at_column_24() {
        assert_eq!(
            row("Grey interval", "5 minutes"),
            "Grey interval          5 minutes\n"
        );
        assert_eq!(
            row("Personal grey listing configuration", "allowed"),
            "Personal grey listing configuration allowed\n"
        );
    }
}
