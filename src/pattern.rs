//! The pattern matcher shared by host-name and address lists (DESIGN.md §3).
//!
//! Hand-written rather than built on a glob or regex crate because Plesk's patterns need POSIX
//! bracket classes (`[0-9]`, with `[0-9[0-9]]` read as a class then a literal `]`), `|`
//! alternatives, case folding and two anchoring modes. Matching is a dynamic programme over
//! (pattern position × text position), so it is O(pattern × text) whatever the input and can
//! never blow up on `*a*a*a…` patterns the way a backtracking matcher does.

use std::fmt;

pub(crate) mod lint;
mod white;

pub use white::white_host_warnings;

/// How an alternative is matched against its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchoring {
    /// Host-name patterns: an alternative matches if it matches any substring (Plesk's behaviour,
    /// so `dsl|pool` matches `db3outboundpool.messaging.microsoft.com`).
    Substring,
    /// Address patterns: an alternative must match the whole envelope sender.
    Whole,
    /// White host-name patterns: an alternative matches the whole name or a whole-label suffix
    /// of it, so a white pattern cannot be borrowed by `google.com.attacker.example` or
    /// `notgoogle.com` (see `white` for the exact rule).
    WholeLabels,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    AnyOne,
    AnyRun,
    Class {
        negated: bool,
        items: Vec<ClassItem>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ClassItem {
    Single(char),
    Range(char, char),
}

/// A compiled pattern: one or more `|`-separated alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    source: String,
    alternatives: Vec<Vec<Token>>,
    anchoring: Anchoring,
}

impl Pattern {
    /// Compiles `source`. Never fails: every string is a valid pattern under fnmatch rules (an
    /// unterminated `[` is a literal). Empty alternatives are dropped, because an empty
    /// unanchored alternative would match every host — the CLI refuses them anyway.
    pub fn new(source: &str, anchoring: Anchoring) -> Pattern {
        let nonempty = source
            .split('|')
            .filter(|alternative| !alternative.is_empty());
        let alternatives = match anchoring {
            // Each alternative P becomes two whole-name alternatives: P' and `*.P'`.
            Anchoring::WholeLabels => nonempty
                .flat_map(white::label_alternatives)
                .map(|alternative| compile_alternative(&alternative))
                .collect(),
            Anchoring::Substring | Anchoring::Whole => nonempty.map(compile_alternative).collect(),
        };
        Pattern {
            source: source.to_string(),
            alternatives,
            anchoring,
        }
    }

    /// A black host-name pattern (unanchored).
    pub fn host(source: &str) -> Pattern {
        Pattern::new(source, Anchoring::Substring)
    }

    /// A white host-name pattern (whole name or whole-label suffix).
    pub fn white_host(source: &str) -> Pattern {
        Pattern::new(source, Anchoring::WholeLabels)
    }

    /// An envelope-address pattern (anchored).
    pub fn address(source: &str) -> Pattern {
        Pattern::new(source, Anchoring::Whole)
    }

    /// The pattern as the admin wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True if any alternative matches `text`, ignoring case.
    pub fn is_match(&self, text: &str) -> bool {
        let text = match self.anchoring {
            // A fully qualified name (`mx.google.com.`) is the same host.
            Anchoring::WholeLabels => text.strip_suffix('.').unwrap_or(text),
            Anchoring::Substring | Anchoring::Whole => text,
        };
        let text: Vec<char> = text.chars().map(fold_case).collect();
        self.alternatives
            .iter()
            .any(|tokens| match_tokens(tokens, &text, self.anchoring))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Returns the first pattern of `patterns` that matches `text`.
pub fn first_match<'a>(patterns: &'a [Pattern], text: &str) -> Option<&'a Pattern> {
    patterns.iter().find(|pattern| pattern.is_match(text))
}

/// True when two patterns are the same ignoring case, as the matcher compares them, so list
/// edits treat `*.X.com` and `*.x.com` as one pattern.
pub fn same_pattern(a: &str, b: &str) -> bool {
    a.chars().map(fold_case).eq(b.chars().map(fold_case))
}

fn fold_case(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        // Multi-char lower-case expansions (rare, never in host names) keep their first char.
        c.to_lowercase().next().unwrap_or(c)
    }
}

fn compile_alternative(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                // Consecutive stars are one star; keeping one keeps the programme short.
                if tokens.last() != Some(&Token::AnyRun) {
                    tokens.push(Token::AnyRun);
                }
                i += 1;
            }
            '?' => {
                tokens.push(Token::AnyOne);
                i += 1;
            }
            '[' => match parse_class(&chars, i) {
                Some((token, next)) => {
                    tokens.push(token);
                    i = next;
                }
                None => {
                    tokens.push(Token::Literal('['));
                    i += 1;
                }
            },
            c => {
                tokens.push(Token::Literal(fold_case(c)));
                i += 1;
            }
        }
    }
    tokens
}

/// The index after the `]` closing a bracket class that starts at `chars[start] == '['`, or
/// `None` when the `[` is a literal (fnmatch rules, as the matcher reads it).
pub(crate) fn class_end(chars: &[char], start: usize) -> Option<usize> {
    parse_class(chars, start).map(|(_, next)| next)
}

/// Parses a bracket class starting at `chars[start] == '['`. Returns the token and the index
/// after the closing `]`, or `None` when there is no closing bracket (then `[` is literal).
fn parse_class(chars: &[char], start: usize) -> Option<(Token, usize)> {
    let mut i = start + 1;
    let negated = matches!(chars.get(i), Some('!') | Some('^'));
    if negated {
        i += 1;
    }
    let mut items = Vec::new();
    let first = i;
    loop {
        let c = *chars.get(i)?;
        // A `]` right after `[` or `[!` is a member, not the end (POSIX).
        if c == ']' && i > first {
            return Some((Token::Class { negated, items }, i + 1));
        }
        let low = fold_case(c);
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&end| end != ']') {
            let high = fold_case(chars[i + 2]);
            items.push(ClassItem::Range(low, high));
            i += 3;
        } else {
            items.push(ClassItem::Single(low));
            i += 1;
        }
    }
}

fn token_matches_char(token: &Token, c: char) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyOne => true,
        Token::AnyRun => true,
        Token::Class { negated, items } => {
            let member = items.iter().any(|item| match *item {
                ClassItem::Single(s) => s == c,
                ClassItem::Range(low, high) => low <= c && c <= high,
            });
            member != *negated
        }
    }
}

/// The dynamic programme: `reachable[j]` says the tokens consumed so far can match `text[..j]`.
fn match_tokens(tokens: &[Token], text: &[char], anchoring: Anchoring) -> bool {
    let n = text.len();
    let mut reachable = vec![false; n + 1];
    // Unanchored matching is anchored matching with an implicit `*` on both sides.
    match anchoring {
        Anchoring::Substring => reachable.fill(true),
        Anchoring::Whole | Anchoring::WholeLabels => reachable[0] = true,
    }
    let mut next = vec![false; n + 1];
    for token in tokens {
        if *token == Token::AnyRun {
            let mut seen = false;
            for j in 0..=n {
                seen |= reachable[j];
                next[j] = seen;
            }
        } else {
            next[0] = false;
            for j in 0..n {
                next[j + 1] = reachable[j] && token_matches_char(token, text[j]);
            }
        }
        std::mem::swap(&mut reachable, &mut next);
        if !reachable.iter().any(|&r| r) {
            return false;
        }
    }
    match anchoring {
        Anchoring::Substring => reachable.iter().any(|&r| r),
        Anchoring::Whole | Anchoring::WholeLabels => reachable[n],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_000_pool_pattern_matches_microsoft_outbound_host() {
        assert!(
            Pattern::host("dsl|pool|broadband|hsd")
                .is_match("db3outboundpool.messaging.microsoft.com")
        );
    }

    #[test]
    fn seed_001_digit_pattern_matches_sparkpost() {
        assert!(
            Pattern::host("*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*")
                .is_match("mta-70-12-15.sparkpostmail.com")
        );
    }

    #[test]
    fn seed_001_static_matches_mailgun() {
        assert!(Pattern::host("static").is_match("mail25.static.mailgun.info"));
    }

    #[test]
    fn plesk_typo_class_is_a_class_then_a_literal_bracket() {
        let typo = Pattern::host("*[0-9][0-9][0-9].[0-9][0-9][0-9].[0-9[0-9]][0-9]*");
        assert!(typo.is_match("host-123.456.7]8.example"));
        assert!(!typo.is_match("host-123.456.789.example"));
    }

    #[test]
    fn case_is_ignored_on_both_sides() {
        assert!(Pattern::host("*GOOGLE.com").is_match("mail-Yw1-F41.google.COM"));
        assert!(Pattern::address("*@Example.COM").is_match("Bob@example.com"));
        assert!(Pattern::host("[A-C]x").is_match("bX"));
    }

    #[test]
    fn address_patterns_are_anchored_host_patterns_are_not() {
        assert!(!Pattern::address("bob@example.com").is_match("xbob@example.com"));
        assert!(Pattern::address("*@example.com").is_match("bob@example.com"));
        assert!(!Pattern::address("*@example.com").is_match("bob@example.com.evil"));
        assert!(Pattern::host("example.com").is_match("mx.example.com.evil"));
    }

    #[test]
    fn classes_negation_and_bracket_members() {
        assert!(Pattern::address("[!a]b").is_match("xb"));
        assert!(!Pattern::address("[!a]b").is_match("ab"));
        assert!(Pattern::address("[^a]b").is_match("xb"));
        assert!(Pattern::address("[]]").is_match("]"));
        assert!(Pattern::address("[a-]").is_match("-"));
        assert!(Pattern::address("a[b").is_match("a[b"));
        assert!(Pattern::address("?").is_match("é"));
    }

    #[test]
    fn empty_alternatives_never_match_everything() {
        assert!(!Pattern::host("dsl|").is_match("mail.example.com"));
        assert!(!Pattern::host("").is_match("anything"));
    }

    #[test]
    fn long_star_pattern_is_fast_enough_not_to_hang() {
        let pattern = Pattern::host(&"*a".repeat(100));
        let text = "a".repeat(99) + &"b".repeat(151);
        assert!(!pattern.is_match(&text));
    }
}
