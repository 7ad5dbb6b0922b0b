//! Man pages for the binaries whose documentation needs more than clap's sections: clap_mangen
//! renders the title, NAME, SYNOPSIS, DESCRIPTION and OPTIONS from the clap command (in the
//! generator, tests/integration/cli/generated.rs: the binaries never render a page), and the
//! sections clap has no place for (ENVIRONMENT, EXIT STATUS, FILES, ...) are rendered here as
//! plain roff. The same [`Section`]s feed `--help`'s trailing text, so help and man page agree.

/// A man-page section made of tagged paragraphs (`.TP`) and/or plain paragraphs.
#[derive(Debug, Clone, Copy)]
pub struct Section {
    /// Section heading, upper case by convention (`ENVIRONMENT`).
    pub title: &'static str,
    /// Untagged text printed before the items (may be empty).
    pub intro: &'static str,
    /// `(tag, text)` pairs: a variable name, an exit status, a file path.
    pub items: &'static [(&'static str, &'static str)],
}

impl Section {
    /// A section of tagged paragraphs only.
    pub(crate) const fn tagged(
        title: &'static str,
        items: &'static [(&'static str, &'static str)],
    ) -> Section {
        Section {
            title,
            intro: "",
            items,
        }
    }
}

/// The FILES item for the configuration file, the same in every page that names it.
pub(crate) const CONF_FILE: (&str, &str) = (
    "/etc/grey_listing.conf",
    "The line db = <path> names the shared database.",
);

/// Escapes text for roff: backslashes, hyphens (so `man` does not turn `-` into a dash) and a
/// leading control character (`.` or `'`).
pub(crate) fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}

/// Renders the extra sections as roff.
pub fn render_sections(sections: &[Section]) -> String {
    let mut roff = String::new();
    for section in sections {
        roff.push_str(&format!(".SH \"{}\"\n", section.title));
        if !section.intro.is_empty() {
            roff.push_str(&escape(section.intro));
            roff.push('\n');
        }
        for (tag, text) in section.items {
            roff.push_str(".TP\n");
            roff.push_str(&format!("\\fB{}\\fR\n", escape(tag)));
            roff.push_str(&escape(text));
            roff.push('\n');
        }
    }
    roff
}

/// The sections as plain text for `--help` (`after_long_help`): heading, then indented items.
pub fn help_text(sections: &[Section]) -> String {
    let mut text = String::new();
    for section in sections {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{}:\n", title_case(section.title)));
        if !section.intro.is_empty() {
            text.push_str(&format!("  {}\n", section.intro));
        }
        for (tag, item) in section.items {
            text.push_str(&format!("  {tag}\n          {item}\n"));
        }
    }
    text
}

/// `EXIT STATUS` → `Exit status` (help headings are not shouted).
fn title_case(title: &str) -> String {
    let lower = title.to_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each binary's clap definition is consistent (no clashing flags, valid defaults).
    #[test]
    fn every_clap_definition_is_valid() {
        crate::filter::usage::command().debug_assert();
        crate::policyd::options::command().debug_assert();
        crate::milter::options::command().debug_assert();
    }

    #[test]
    fn escapes_hyphens_backslashes_and_leading_dots() {
        assert_eq!(escape("a-b"), "a\\-b");
        assert_eq!(escape("a\\b"), "a\\\\b");
        assert_eq!(escape(".qmail"), "\\&.qmail");
    }

    #[test]
    fn help_text_lists_every_item() {
        const SECTIONS: &[Section] = &[Section {
            title: "EXIT STATUS",
            intro: "",
            items: &[("0", "fine"), ("2", "broken")],
        }];
        let text = help_text(SECTIONS);
        assert!(text.starts_with("Exit status:\n"));
        assert!(text.contains("  0\n          fine\n"));
        assert!(text.contains("  2\n          broken\n"));
    }
}
