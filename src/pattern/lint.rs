//! Warnings for patterns that are accepted but will not do what their author meant: quotes or
//! regular-expression syntax (the matcher knows only `*`, `?`, `[...]` and `|`), an address
//! pattern without `@`, a host-name pattern with `@`, a white alternative that is only `*` or that
//! matches every sender (`*@*`), and the risky shapes of white host patterns
//! ([`super::white_host_warnings`]).

use super::class_end;

/// Which kind of list a pattern is added to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A black list of envelope senders.
    BlackAddress,
    /// A white list of envelope senders.
    WhiteAddress,
    /// The black domains patterns (client host names).
    BlackHost,
    /// The white domains patterns (client host names).
    WhiteHost,
}

impl Target {
    fn is_host(self) -> bool {
        matches!(self, Target::BlackHost | Target::WhiteHost)
    }

    fn is_white(self) -> bool {
        matches!(self, Target::WhiteAddress | Target::WhiteHost)
    }
}

/// The `Warning: ...` lines for adding `pattern` to a list of kind `target` (empty if none).
pub(crate) fn warnings(pattern: &str, target: Target) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(what) = foreign_syntax(pattern) {
        lines.push(format!(
            "Warning: pattern '{pattern}' contains {what}; patterns are wildcards (* ? [...] |), \
             not quoted strings or regular expressions, so it will not match as meant"
        ));
    }
    let alternatives = || pattern.split('|').filter(|a| !a.is_empty());
    let only_stars = |a: &str| a.chars().all(|c| c == '*');
    if target.is_host() {
        if pattern.contains('@') {
            lines.push(format!(
                "Warning: host-name pattern '{pattern}' contains '@', but client host names \
                 never do, so it never matches"
            ));
        }
    } else if alternatives().any(|a| !a.contains('@') && !only_stars(a)) {
        lines.push(format!(
            "Warning: address pattern '{pattern}' has no '@' in an alternative, which must \
             match the whole envelope sender (write *@example.com for a domain)"
        ));
    }
    if target.is_white() && alternatives().any(only_stars) {
        let whom = if target.is_host() {
            "every client host name"
        } else {
            "every sender"
        };
        lines.push(format!(
            "Warning: pattern '{pattern}' has an alternative that is only '*', so it matches \
             {whom}"
        ));
    }
    if target == Target::WhiteAddress
        && let Some(alternative) =
            alternatives().find(|a| !only_stars(a) && matches_every_sender(a))
    {
        lines.push(format!(
            "Warning: address pattern '{pattern}' has an alternative ('{alternative}') that \
             matches every sender"
        ));
    }
    if target == Target::WhiteHost {
        lines.extend(
            super::white_host_warnings(pattern)
                .into_iter()
                .map(|why| format!("Warning: white domains pattern '{pattern}': {why}")),
        );
    }
    lines
}

/// Senders of every common shape: an alternative that matches them all (`*@*`, `?*@*.*`) lets
/// any sender through a white list.
const SENDER_PROBES: [&str; 5] = [
    "alice@example.com",
    "bounce-4711+tag@mail.sender.example.org",
    "1@xn--bcher-kva.de",
    "j.doe@sub.domain.co.uk",
    "Q@Z.IO",
];

fn matches_every_sender(alternative: &str) -> bool {
    let pattern = super::Pattern::address(alternative);
    SENDER_PROBES.iter().all(|sender| pattern.is_match(sender))
}

/// What in `pattern` looks like a quoted string or a regular expression, if anything.
fn foreign_syntax(pattern: &str) -> Option<&'static str> {
    if pattern.contains('"') {
        return Some("a quote");
    }
    if pattern.contains('\\') {
        return Some("a backslash");
    }
    let slashed = |a: &str| a.len() >= 2 && a.starts_with('/') && a.ends_with('/');
    if pattern.split('|').any(slashed) {
        return Some("a /.../ regular expression");
    }
    // `^` negates inside a bracket class (`[^0-9]`) and is harmless there; outside one it is an
    // anchor the author expected to work.
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '[' => {
                if let Some(next) = class_end(&chars, i) {
                    i = next;
                    continue;
                }
            }
            '^' => return Some("'^' outside a [...] class"),
            '$' => return Some("'$' outside a [...] class"),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_syntax_is_found_outside_classes_only() {
        for (pattern, what) in [
            ("\"*@example.com\"", "a quote"),
            ("*@example\\.com", "a backslash"),
            ("/.*@example.com/", "a /.../ regular expression"),
            ("^mail.example.com", "'^' outside a [...] class"),
            ("*@example.com$", "'$' outside a [...] class"),
        ] {
            assert_eq!(foreign_syntax(pattern), Some(what), "{pattern}");
        }
        for fine in [
            "*@example.com",
            "[^0-9]x@y.com",
            "a[$]b@c.d",
            "a/b@c.d",
            "[0-9[0-9]]",
        ] {
            assert_eq!(foreign_syntax(fine), None, "{fine}");
        }
    }

    #[test]
    fn each_kind_of_list_gets_its_own_warnings() {
        assert!(warnings("*@example.com", Target::WhiteAddress).is_empty());
        assert!(warnings("dsl|pool", Target::BlackHost).is_empty());
        assert_eq!(warnings("example.com", Target::BlackAddress).len(), 1);
        assert_eq!(warnings("x@mx.example.com", Target::BlackHost).len(), 1);
        assert_eq!(warnings("*", Target::WhiteAddress).len(), 1);
        assert!(warnings("*", Target::BlackAddress).is_empty());
        assert_eq!(warnings("a.example|*", Target::WhiteHost).len(), 1);
        assert!(warnings("*", Target::BlackHost).is_empty());
    }

    #[test]
    fn white_address_patterns_matching_every_sender_are_named() {
        for every in ["*@*", "x@y.example|*@*", "?*@*.*", "**@**"] {
            let lines = warnings(every, Target::WhiteAddress);
            assert_eq!(lines.len(), 1, "{every}: {lines:?}");
            assert!(lines[0].ends_with("that matches every sender"), "{lines:?}");
        }
        assert_eq!(
            warnings("*@*", Target::WhiteAddress),
            ["Warning: address pattern '*@*' has an alternative ('*@*') that matches every sender"]
        );
        // `*` alone keeps its own warning, once; black lists and narrower patterns get none.
        assert_eq!(warnings("*", Target::WhiteAddress).len(), 1);
        assert!(warnings("*@*", Target::BlackAddress).is_empty());
        assert!(warnings("*@*.com", Target::WhiteAddress).is_empty());
        assert!(warnings("*@*example.com", Target::WhiteAddress).is_empty());
    }
}
