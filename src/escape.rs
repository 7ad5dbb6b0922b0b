//! Escaping of values that came from outside (an SMTP client, the store) before they go into a
//! log line or onto the terminal, so nobody can forge, split or colour a line.
//!
//! Each byte below 0x20, 0x7f, each byte of an invalid UTF-8 sequence, and each UTF-8 byte of
//! the C1 controls (U+0080–U+009F), the line and paragraph separators (U+2028–U+2029, which
//! tools that split on Unicode line ends read as a new line) and the bidirectional marks,
//! embeddings, overrides and isolates (U+061C, U+200E–U+200F, U+202A–U+202E, U+2066–U+2069)
//! becomes `\xNN`; `\` becomes `\\` (so an escape can never be faked) and `,` becomes `\x2c`
//! (log fields are split on `, `, and an RFC 5321 quoted local part such as
//! `"x, recipient=root@h"@example.com` must stay one field). `=` stays: BATV and SRS senders
//! are full of it. Every other character is kept.
//!
//! [`shown`] and [`shown_bytes`] first apply `crate::bounds::bound`, so an over-long value is
//! printed in its bounded form, exactly as it is stored.

use std::borrow::Cow;
use std::fmt::Write;

use crate::bounds;

/// Escapes `value` for a log line or terminal output (see the module documentation).
pub fn escape(value: &str) -> Cow<'_, str> {
    escape_with(value, &[])
}

/// [`escape`] for the line of a monitoring plugin: `|` separates the performance data and `;`
/// and `=` its fields, so they are escaped as well.
pub fn escape_plugin(value: &str) -> Cow<'_, str> {
    escape_with(value, b"|;=")
}

/// For values printed in Plesk-compatible command output (stored patterns in `--info-server`,
/// `--info-mailname`) and for error lines: only what can change the terminal or the line
/// structure becomes `\xNN` (controls, C1, bidirectional controls). `\` and `,` stay as they
/// are, so every ordinary pattern prints exactly as stored and as Plesk prints it; a pattern
/// that itself holds the text `\x1b` prints that text, which is harmless.
pub fn escape_terminal(value: &str) -> Cow<'_, str> {
    if !value.chars().any(is_hidden) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        if is_hidden(c) {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                push_hex(&mut out, byte);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// [`escape`] for bytes that need not be UTF-8 (a qmail envelope): every byte of an invalid
/// sequence becomes `\xNN` on its own, nothing is replaced by U+FFFD.
pub fn escape_bytes(value: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(value) {
        return escape(text);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for chunk in value.utf8_chunks() {
        out.push_str(&escape(chunk.valid()));
        for byte in chunk.invalid() {
            push_hex(&mut out, *byte);
        }
    }
    Cow::Owned(out)
}

/// A client value as logged or printed: bounded, then escaped.
pub fn shown(value: &str) -> String {
    escape(&bounds::bound(value)).into_owned()
}

/// [`shown`] for bytes that need not be UTF-8.
pub fn shown_bytes(value: &[u8]) -> String {
    escape_bytes(&bounds::bound_bytes(value)).into_owned()
}

/// True for characters written as `\xNN` per UTF-8 byte.
fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{1f}'
        | '\u{7f}'..='\u{9f}'
        | '\u{61c}'
        | '\u{200e}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}')
}

fn escape_with<'a>(value: &'a str, extra: &[u8]) -> Cow<'a, str> {
    let needs = |c: char| {
        is_hidden(c) || c == '\\' || c == ',' || (c.is_ascii() && extra.contains(&(c as u8)))
    };
    if !value.chars().any(needs) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 16);
    for c in value.chars() {
        if c == '\\' {
            out.push_str("\\\\");
        } else if needs(c) {
            let mut buffer = [0u8; 4];
            for byte in c.encode_utf8(&mut buffer).bytes() {
                push_hex(&mut out, byte);
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn push_hex(out: &mut String, byte: u8) {
    let _ = write!(out, "\\x{byte:02x}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_borrowed() {
        assert!(matches!(
            escape("prvs=1234=bob@example.com"),
            Cow::Borrowed(_)
        ));
        assert_eq!(escape("Jörg@bücher.de"), "Jörg@bücher.de");
    }

    #[test]
    fn controls_backslash_and_comma() {
        assert_eq!(escape("a\u{1b}[31mb"), "a\\x1b[31mb");
        assert_eq!(escape("a\r\nb\u{0}\t\u{7f}"), "a\\x0d\\x0ab\\x00\\x09\\x7f");
        assert_eq!(escape("a\\x41"), "a\\\\x41");
        assert_eq!(
            escape("\"x, recipient=root@h\"@example.com"),
            "\"x\\x2c recipient=root@h\"@example.com"
        );
    }

    #[test]
    fn c1_and_bidi_characters_per_byte() {
        assert_eq!(escape("\u{85}"), "\\xc2\\x85");
        assert_eq!(escape("a\u{202e}b"), "a\\xe2\\x80\\xaeb");
        assert_eq!(escape("\u{200e}\u{2069}"), "\\xe2\\x80\\x8e\\xe2\\x81\\xa9");
        // The Arabic letter mark, a bidi mark like U+200E and U+200F.
        assert_eq!(escape("a\u{61c}b"), "a\\xd8\\x9cb");
        // Unicode's line and paragraph separators.
        assert_eq!(
            escape("a\u{2028}b\u{2029}"),
            "a\\xe2\\x80\\xa8b\\xe2\\x80\\xa9"
        );
        // Neighbours of the escaped ranges stay.
        assert_eq!(
            escape("\u{a0}\u{2010}\u{2027}\u{202f}\u{2070}"),
            "\u{a0}\u{2010}\u{2027}\u{202f}\u{2070}"
        );
    }

    #[test]
    fn invalid_utf8_per_byte() {
        assert_eq!(escape_bytes(b"j\xf6rg@x"), "j\\xf6rg@x");
        assert_eq!(escape_bytes(b"\xe2\x80a,\\"), "\\xe2\\x80a\\x2c\\\\");
        assert_eq!(escape_bytes("é".as_bytes()), "é");
    }

    #[test]
    fn terminal_output_escapes_only_what_breaks_the_terminal() {
        for plain in [
            "*[0-9][0-9]-*",
            "dsl|broadband|hsd",
            "xn--bcher-kva.de",
            "a\\b,c",
            "Jörg",
        ] {
            assert!(
                matches!(escape_terminal(plain), Cow::Borrowed(_)),
                "{plain}"
            );
        }
        assert_eq!(
            escape_terminal("evil\u{1b}]0;pwned\u{7}\nSUCCESS: x\u{202e}"),
            "evil\\x1b]0;pwned\\x07\\x0aSUCCESS: x\\xe2\\x80\\xae"
        );
    }

    #[test]
    fn plugin_separators() {
        assert_eq!(escape_plugin("a|b;c=d"), "a\\x7cb\\x3bc\\x3dd");
        assert_eq!(escape("a|b;c=d"), "a|b;c=d");
    }

    #[test]
    fn shown_values_are_bounded_first() {
        let long = format!("{}\u{1b}", "a".repeat(400));
        let text = shown(&long);
        assert!(text.starts_with(&"a".repeat(256)));
        assert_eq!(text.len(), 256 + 1 + 16);
        assert_eq!(shown_bytes(long.as_bytes()), text);
    }
}
