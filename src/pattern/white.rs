//! The rule for white host-name patterns: an alternative matches the whole client host name or a
//! whole-label suffix of it, never a name that merely contains it.
//!
//! A white pattern passes mail without greylisting, and anyone who owns a domain can give their
//! server a forward-confirmed name such as `google.com.attacker.example` or `notgoogle.com`. So
//! each `|`-alternative *P* is read as *P′*: *P* without its leading `*` when the next character
//! is neither `.` nor `*` (Plesk's `*google.com` means "google.com and the names under it"), else
//! *P* itself; the alternative matches when *P′* or `*.`*P′* matches the whole name. `?`, `[...]`
//! and the other `*` keep their meaning.

/// *P′* for one alternative *P*.
fn derive(alternative: &str) -> &str {
    match alternative.strip_prefix('*') {
        Some(rest) if !rest.is_empty() && !rest.starts_with(['.', '*']) => rest,
        _ => alternative,
    }
}

/// The two whole-name alternatives one white alternative stands for: *P′* and `*.`*P′*.
pub(super) fn label_alternatives(alternative: &str) -> [String; 2] {
    let derived = derive(alternative);
    [derived.to_string(), format!("*.{derived}")]
}

/// Why a white host pattern probably does not do what its author meant, one text per problem
/// (empty when it is fine): an alternative that ends in `*` can be borrowed by any domain owner
/// (`*amazonses*` matches `amazonses.com.attacker.example`); one with no `.` and no wildcard
/// matches only names ending in `.<it>`; one that lost its leading `*` but does not start with a
/// letter or digit (`*-out.amazonses.com`) matches only names whose label starts with `-`; one
/// whose *P′* starts with wildcards joined to the name (`**trusted.example`) can be borrowed.
pub fn white_host_warnings(pattern: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    // An alternative of stars alone matched every name before and after this rule: the list
    // edit warns about it on its own.
    let risky = pattern
        .split('|')
        .filter(|a| !a.is_empty() && !a.chars().all(|c| c == '*'));
    for alternative in risky {
        let derived = derive(alternative);
        if alternative.ends_with('*') {
            warnings.push(format!(
                "'{alternative}' ends in '*', so any domain owner can match it with a name such as \
                 '{}.attacker.example'; end it with the domain (*.example.com)",
                alternative.trim_matches('*')
            ));
        } else if !alternative.contains(['.', '*', '?', '[']) {
            warnings.push(format!(
                "'{alternative}' has no '.' and no wildcard, so it matches only names ending in \
                 '.{alternative}'"
            ));
        } else if let Some(rest) = glued_wildcard_rest(derived) {
            warnings.push(borrowed_prefix_warning(alternative, rest));
        } else if derived.len() != alternative.len()
            && !derived.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            warnings.push(format!(
                "'{alternative}' matches only '{derived}' and names ending in '.{derived}'; \
                 write the whole label after '*.' (as in *.smtp-out.amazonses.com)"
            ));
        }
    }
    warnings
}

/// When *P′* starts with wildcards or classes joined to literal text in the same label
/// (`**trusted.example`, `[a-z]*bank.example`, `?*corp.example`), the text after those leading
/// wildcards (`trusted.example`): a domain owner can put their own name in front of it
/// (`attackertrusted.example`). `None` when the leading wildcards stand for whole labels (`*.`,
/// `?.`) or there are none.
fn glued_wildcard_rest(derived: &str) -> Option<&str> {
    let chars: Vec<char> = derived.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '*' | '?' => i += 1,
            '[' => match super::class_end(&chars, i) {
                Some(next) => i = next,
                None => break,
            },
            _ => break,
        }
    }
    match chars.get(i) {
        Some(&c) if i > 0 && c != '.' => {
            let start: usize = chars[..i].iter().map(|c| c.len_utf8()).sum();
            Some(&derived[start..])
        }
        _ => None,
    }
}

/// The warning for [`glued_wildcard_rest`], with a name it matches when one can be shown.
fn borrowed_prefix_warning(alternative: &str, rest: &str) -> String {
    let pattern = super::Pattern::white_host(alternative);
    let example = ["attacker", "evil", "x", "a", "0", "-"]
        .iter()
        .map(|prefix| format!("{prefix}{rest}"))
        .find(|name| pattern.is_match(name));
    let such = example.map_or_else(String::new, |name| format!(" such as '{name}'"));
    format!(
        "'{alternative}' starts with a wildcard joined to the name, so any domain owner can match \
         it with a name{such}; write *.{rest} for the names under {rest}"
    )
}

#[cfg(test)]
mod tests {
    use super::super::Pattern;
    use super::*;

    // Every example of the rule: (pattern, name, matches).
    #[test]
    fn white_patterns_match_whole_names_or_whole_label_suffixes() {
        let table: &[(&str, &str, bool)] = &[
            ("*google.com", "google.com", true),
            ("*google.com", "mail-sor-f41.google.com", true),
            ("*google.com", "notgoogle.com", false),
            ("*google.com", "mx.evilgoogle.com", false),
            ("*google.com", "google.com.attacker.example", false),
            ("*google.com", "mx.google.com.attacker.example", false),
            ("*google.com", "mail-sor-f41.google.com.", true),
            ("*google.com", "MAIL-SOR-F41.Google.COM", true),
            ("*GOOGLE.com", "mx.google.com", true),
            ("*google.com", "mx.google.com..", false),
            ("example.com", "example.com", true),
            ("example.com", "mx.example.com", true),
            ("example.com", "notexample.com", false),
            ("example.com", "example.com.attacker.example", false),
            ("example.com", "EXAMPLE.COM.", true),
            (
                "*.outlook.com",
                "mail-db5eur03on2051.outbound.protection.outlook.com",
                true,
            ),
            ("*.outlook.com", "x.outlook.com", true),
            ("*.outlook.com", "outlook.com.attacker.example", false),
            ("*.outlook.com", "notoutlook.com", false),
            ("*.outlook.com", "outlook.com", false),
            ("mx?.example.com", "mx1.example.com", true),
            ("mx[0-9].example.com", "a.mx7.example.com", true),
            ("*google.com|*.outlook.com", "x.outlook.com", true),
            (
                "*google.com|*.outlook.com",
                "outlook.com.attacker.example",
                false,
            ),
            ("*amazonses*", "amazonses.com.attacker.example", true),
            ("amazonses", "a.amazonses", true),
            ("amazonses", "a.amazonses.com", false),
            ("*-out.amazonses.com", "a8-17.smtp-out.amazonses.com", false),
            ("*-out.amazonses.com", "x.-out.amazonses.com", true),
            ("*", "anything.example", true),
            ("**google.com", "notgoogle.com", true),
        ];
        for &(pattern, name, expected) in table {
            assert_eq!(
                Pattern::white_host(pattern).is_match(name),
                expected,
                "{pattern} vs {name}"
            );
        }
    }

    #[test]
    fn black_host_patterns_stay_substring_matches() {
        assert!(Pattern::host("*google.com").is_match("mx.google.com.attacker.example"));
        assert!(Pattern::host("dsl").is_match("a.dsl.example"));
    }

    #[test]
    fn white_patterns_print_unchanged() {
        assert_eq!(Pattern::white_host("*google.com").as_str(), "*google.com");
    }

    #[test]
    fn warnings_name_the_three_risky_shapes() {
        assert!(white_host_warnings("*google.com").is_empty());
        assert!(white_host_warnings("*.outlook.com|example.com").is_empty());
        let borrowed = white_host_warnings("*amazonses*");
        assert_eq!(borrowed.len(), 1);
        assert!(borrowed[0].contains("ends in '*'"), "{borrowed:?}");
        assert!(white_host_warnings("amazonses")[0].contains("no '.' and no wildcard"));
        assert!(white_host_warnings("*-out.amazonses.com")[0].contains("whole label"));
        assert_eq!(white_host_warnings("ok.example|x*|y").len(), 2);
    }

    #[test]
    fn wildcards_joined_to_the_name_are_borrowable() {
        for (pattern, borrowed) in [
            ("**trusted.example", "attackertrusted.example"),
            ("[a-z]*bank.example", "attackerbank.example"),
            ("?*corp.example", "attackercorp.example"),
            ("*[a-z]bank.example", "xbank.example"),
            ("ok.example|?bank.example", "xbank.example"),
        ] {
            assert!(Pattern::white_host(pattern).is_match(borrowed), "{pattern}");
            let warnings = white_host_warnings(pattern);
            assert_eq!(warnings.len(), 1, "{pattern}: {warnings:?}");
            assert!(
                warnings[0].contains(&format!("such as '{borrowed}'")),
                "{pattern}: {warnings:?}"
            );
        }
        assert_eq!(
            white_host_warnings("**trusted.example"),
            [
                "'**trusted.example' starts with a wildcard joined to the name, so any domain owner \
              can match it with a name such as 'attackertrusted.example'; write \
              *.trusted.example for the names under trusted.example"
            ]
        );
        // Wildcards standing for whole labels, or inside a fixed domain, are fine.
        for fine in [
            "*.outlook.com",
            "**.outlook.com",
            "?.example.com",
            "[a-z].example.com",
            "mx[0-9].example.com",
            "*google.com",
        ] {
            assert!(white_host_warnings(fine).is_empty(), "{fine}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_matcher_never_panics(pattern in "\\PC{0,24}", name in "\\PC{0,40}") {
            for p in [Pattern::white_host(&pattern), Pattern::host(&pattern), Pattern::address(&pattern)] {
                let _ = p.is_match(&name);
            }
            let _ = white_host_warnings(&pattern);
            let _ = crate::pattern::lint::warnings(&pattern, crate::pattern::lint::Target::WhiteHost);
        }

        #[test]
        fn white_matches_are_whole_label_suffixes_for_literal_patterns(
            domain in "[a-z]{1,6}\\.[a-z]{2,3}",
            prefix in "[a-z]{0,5}",
            suffix in "[a-z.]{0,5}",
        ) {
            let name = format!("{prefix}{domain}{suffix}");
            // The reference: one trailing dot removed, then the name or a `.`-suffix of it.
            let bare = name.strip_suffix('.').unwrap_or(&name);
            let expected = bare == domain || bare.ends_with(&format!(".{domain}"));
            proptest::prop_assert_eq!(Pattern::white_host(&format!("*{domain}")).is_match(&name), expected);
        }
    }
}
