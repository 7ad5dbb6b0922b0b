//! The pattern matcher against a simple reference (DESIGN.md §3), by property testing.
//!
//! Patterns are generated as lists of atoms and written out as text; the reference matches the
//! atoms directly with plain recursion (exponential, fine for the small sizes used here), so it
//! shares no code and no parsing with the matcher under test.

use grey_listing::pattern::Pattern;
use proptest::prelude::*;

/// One element of a generated pattern.
#[derive(Debug, Clone)]
enum Atom {
    Literal(char),
    AnyOne,
    AnyRun,
    /// `[...]`: members and ranges, possibly negated with `!` or `^`.
    Class {
        negated_with: Option<char>,
        singles: Vec<char>,
        ranges: Vec<(char, char)>,
    },
}

impl Atom {
    fn write(&self, out: &mut String) {
        match self {
            Atom::Literal(c) => out.push(*c),
            Atom::AnyOne => out.push('?'),
            Atom::AnyRun => out.push('*'),
            Atom::Class {
                negated_with,
                singles,
                ranges,
            } => {
                out.push('[');
                if let Some(bang) = negated_with {
                    out.push(*bang);
                }
                for (low, high) in ranges {
                    out.push(*low);
                    out.push('-');
                    out.push(*high);
                }
                out.extend(singles);
                out.push(']');
            }
        }
    }

    /// Does this single-character atom accept `c`? Case-insensitive (DESIGN.md §3).
    fn accepts(&self, c: char) -> bool {
        let c = c.to_ascii_lowercase();
        match self {
            Atom::Literal(l) => l.to_ascii_lowercase() == c,
            Atom::AnyOne | Atom::AnyRun => true,
            Atom::Class {
                negated_with,
                singles,
                ranges,
            } => {
                let member = singles.iter().any(|s| s.to_ascii_lowercase() == c)
                    || ranges.iter().any(|(low, high)| {
                        low.to_ascii_lowercase() <= c && c <= high.to_ascii_lowercase()
                    });
                member != negated_with.is_some()
            }
        }
    }
}

/// Reference: does the whole of `text` match `atoms`? Textbook recursion.
fn reference_whole(atoms: &[Atom], text: &[char]) -> bool {
    match atoms.split_first() {
        None => text.is_empty(),
        Some((Atom::AnyRun, rest)) => {
            (0..=text.len()).any(|skip| reference_whole(rest, &text[skip..]))
        }
        Some((atom, rest)) => {
            !text.is_empty() && atom.accepts(text[0]) && reference_whole(rest, &text[1..])
        }
    }
}

/// Reference for host-name patterns: some substring matches (DESIGN.md §3: unanchored).
fn reference_substring(atoms: &[Atom], text: &[char]) -> bool {
    (0..=text.len())
        .any(|start| (start..=text.len()).any(|end| reference_whole(atoms, &text[start..end])))
}

/// Small alphabets so that matches are frequent; upper case to exercise case folding.
const PATTERN_CHARS: &[char] = &['a', 'b', 'c', 'A', 'B', '.', '-', '@', '1'];
const TEXT_CHARS: &[char] = &['a', 'b', 'c', 'A', 'B', 'C', '.', '-', '@', '1', 'x'];

fn range_bound() -> impl Strategy<Value = char> {
    prop::sample::select(&['a', 'b', 'c', '0', '9'][..])
}

fn atom() -> impl Strategy<Value = Atom> {
    prop_oneof![
        4 => prop::sample::select(PATTERN_CHARS).prop_map(Atom::Literal),
        1 => Just(Atom::AnyOne),
        2 => Just(Atom::AnyRun),
        1 => (
            prop::option::of(prop::sample::select(&['!', '^'][..])),
            prop::collection::vec(prop::sample::select(&['a', 'b', 'C', '.', '1'][..]), 1..3),
            prop::collection::vec((range_bound(), range_bound()), 0..2),
        )
            .prop_map(|(negated_with, singles, ranges)| Atom::Class {
                negated_with,
                singles,
                // Keep ranges ordered (a reversed range is empty in both; not interesting).
                ranges: ranges
                    .into_iter()
                    .map(|(a, b)| if a <= b { (a, b) } else { (b, a) })
                    .collect(),
            }),
    ]
}

fn alternatives() -> impl Strategy<Value = Vec<Vec<Atom>>> {
    prop::collection::vec(prop::collection::vec(atom(), 1..6), 1..4)
}

fn source(alternatives: &[Vec<Atom>]) -> String {
    let mut out = String::new();
    for (i, atoms) in alternatives.iter().enumerate() {
        if i > 0 {
            out.push('|');
        }
        for atom in atoms {
            atom.write(&mut out);
        }
    }
    out
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TEXT_CHARS), 0..10).prop_map(String::from_iter)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    // DESIGN.md §3: address patterns are anchored on the whole text; any alternative may match.
    #[test]
    fn address_patterns_agree_with_the_reference(alts in alternatives(), text in text()) {
        let chars: Vec<char> = text.chars().collect();
        let expected = alts.iter().any(|atoms| reference_whole(atoms, &chars));
        let src = source(&alts);
        prop_assert_eq!(Pattern::address(&src).is_match(&text), expected, "pattern {:?} text {:?}", src, text);
    }

    // DESIGN.md §3: host-name patterns match if an alternative matches any substring.
    #[test]
    fn host_patterns_agree_with_the_reference(alts in alternatives(), text in text()) {
        let chars: Vec<char> = text.chars().collect();
        let expected = alts.iter().any(|atoms| reference_substring(atoms, &chars));
        let src = source(&alts);
        prop_assert_eq!(Pattern::host(&src).is_match(&text), expected, "pattern {:?} text {:?}", src, text);
    }

    // DESIGN.md §3: the matcher never panics, whatever the pattern and text (unbalanced brackets,
    // stray `!`, `-`, `]`, non-ASCII).
    #[test]
    fn never_panics_on_arbitrary_input(pattern in "\\PC{0,30}", text in "\\PC{0,30}") {
        let _ = Pattern::host(&pattern).is_match(&text);
        let _ = Pattern::address(&pattern).is_match(&text);
    }

    // DESIGN.md §3: patterns made of brackets and specials that are not well formed still compile
    // and behave like fnmatch: an unterminated `[` is a literal.
    #[test]
    fn unterminated_bracket_is_a_literal(prefix in "[ab]{0,3}", suffix in "[ab]{0,3}") {
        let pattern = format!("{prefix}[{suffix}");
        prop_assert!(Pattern::address(&pattern).is_match(&pattern));
    }
}

// DESIGN.md §3: the examples it names.
#[test]
fn seed_examples() {
    assert!(
        Pattern::host("dsl|pool|broadband|hsd").is_match("db3outboundpool.messaging.microsoft.com")
    );
    assert!(
        Pattern::host("*[0-9][0-9]-[0-9][0-9]-[0-9][0-9]*")
            .is_match("mta-70-12-15.sparkpostmail.com")
    );
    assert!(Pattern::host("static").is_match("mail25.static.mailgun.info"));
    assert!(
        Pattern::host("*[0-9][0-9][0-9]-[0-9][0-9][0-9]-[0-9][0-9][0-9]*")
            .is_match("out203-205-221-153.mail.qq.com")
    );
    // The default black patterns (DESIGN.md §2, "Defaults") do not hit those senders.
    for host in [
        "db3outboundpool.messaging.microsoft.com",
        "mail25.static.mailgun.info",
        "mta-70-12-15.sparkpostmail.com",
    ] {
        assert!(!Pattern::host("dsl|broadband|hsd").is_match(host), "{host}");
        assert!(
            !Pattern::host("dynamic|ppp|dyn-ip|dial-up").is_match(host),
            "{host}"
        );
    }
    assert!(Pattern::address("*@ietf.org").is_match("Someone@IETF.org"));
    assert!(!Pattern::address("*@ietf.org").is_match("someone@ietf.org.example"));
}

// DESIGN.md §3: no backtracking blow-up — the 200-character `*a` pattern against a 250-character
// host name that almost matches completes (its speed is measured in bench/pattern.rs).
#[test]
fn long_star_pattern_against_long_host_name() {
    let pattern = Pattern::host(&"*a".repeat(100));
    assert!(!pattern.is_match(&("a".repeat(99) + &"b".repeat(151))));
    assert!(pattern.is_match(&("b".repeat(150) + &"a".repeat(100))));
}
