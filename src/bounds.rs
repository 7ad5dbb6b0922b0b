//! Size limits on everything a client or an admin can make us store, match or print.
//!
//! One SMTP client must not be able to grow the database or the cost of a decision without
//! bound: a 10 MB envelope sender would otherwise be stored whole in every triplet and
//! decision-log row, and matched against every pattern. So every sender, recipient, host name
//! and HELO longer than [`MAX_VALUE_BYTES`] is replaced — in the store, in log lines and in the
//! CLI's output alike — by [`bound`]: its first [`PREFIX_BYTES`] bytes, `~`, and 16 hex digits of
//! the SHA-256 of the whole value. The form is the same in the filter, the policy server and
//! the CLI, so a long sender keeps one key whichever component saw it.
//!
//! Patterns and lists are bounded too ([`MAX_PATTERN_CHARS`], [`MAX_LIST_PATTERNS`],
//! [`MAX_LIST_CHARS`]), so the matcher's O(pattern × text) work stays small, and so are the
//! files the CLI imports ([`MAX_IMPORT_BYTES`]).

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Values longer than this (in bytes) are replaced by their bounded form. RFC 5321 allows a
/// 64-byte local part and a 255-byte domain: every real address fits.
pub(crate) const MAX_VALUE_BYTES: usize = 320;
/// How many leading bytes of an over-long value its bounded form keeps (at most).
pub(crate) const PREFIX_BYTES: usize = 256;
/// Hex digits of the SHA-256 in the bounded form (64 bits: no collision by chance).
pub(crate) const HASH_HEX_DIGITS: usize = 16;
/// The longest host name that can match a host pattern or name an organisation: a DNS name
/// has at most 253 bytes in text form, so anything longer is not one.
pub(crate) const MAX_HOST_NAME_BYTES: usize = 253;
/// The longest pattern accepted, in characters.
pub(crate) const MAX_PATTERN_CHARS: usize = 1_024;
/// The most patterns one list may hold.
pub(crate) const MAX_LIST_PATTERNS: usize = 10_000;
/// The most pattern characters one list may hold, all its patterns together.
pub(crate) const MAX_LIST_CHARS: usize = 65_536;
/// The most bytes `--import`, `--import-plesk` and standard input are read.
pub(crate) const MAX_IMPORT_BYTES: u64 = 64 * 1024 * 1024;

/// `value` itself when it has at most [`MAX_VALUE_BYTES`] bytes, else its bounded form: the
/// first [`PREFIX_BYTES`] bytes cut back to a character boundary, `~`, and the first
/// [`HASH_HEX_DIGITS`] hex digits of the SHA-256 of the whole value.
pub(crate) fn bound(value: &str) -> Cow<'_, str> {
    if value.len() <= MAX_VALUE_BYTES {
        return Cow::Borrowed(value);
    }
    let mut end = PREFIX_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}~{}", &value[..end], hash_hex(value.as_bytes())))
}

/// [`bound`] for a value that need not be UTF-8 (a qmail envelope address): the prefix is cut
/// back so that it does not end inside a well-formed UTF-8 sequence; bytes that belong to no
/// well-formed sequence each count as one unit. For UTF-8 input the result is exactly
/// [`bound`]'s.
pub(crate) fn bound_bytes(value: &[u8]) -> Cow<'_, [u8]> {
    if value.len() <= MAX_VALUE_BYTES {
        return Cow::Borrowed(value);
    }
    let end = utf8_cut(value, PREFIX_BYTES);
    let mut out = Vec::with_capacity(end + 1 + HASH_HEX_DIGITS);
    out.extend_from_slice(&value[..end]);
    out.push(b'~');
    out.extend_from_slice(hash_hex(value).as_bytes());
    Cow::Owned(out)
}

/// The largest position at most `limit` that does not split a well-formed UTF-8 sequence.
fn utf8_cut(value: &[u8], limit: usize) -> usize {
    let mut position = 0;
    for chunk in value.utf8_chunks() {
        for c in chunk.valid().chars() {
            if position + c.len_utf8() > limit {
                return position;
            }
            position += c.len_utf8();
        }
        for _ in chunk.invalid() {
            if position + 1 > limit {
                return position;
            }
            position += 1;
        }
    }
    position
}

/// The first [`HASH_HEX_DIGITS`] lower-case hex digits of the SHA-256 of `value`.
fn hash_hex(value: &[u8]) -> String {
    let digest = Sha256::digest(value);
    digest
        .iter()
        .take(HASH_HEX_DIGITS / 2)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// True when a sender may be matched against address patterns: one longer than
/// [`MAX_VALUE_BYTES`] matches none (it is greylisted under its bounded key), so a huge sender
/// costs no pattern work.
pub(crate) fn sender_matchable(sender: &str) -> bool {
    sender.len() <= MAX_VALUE_BYTES
}

/// True when a host name may be matched against host patterns or name an organisation: longer
/// than [`MAX_HOST_NAME_BYTES`] it is not a DNS name.
pub(crate) fn host_matchable(host: &str) -> bool {
    host.len() <= MAX_HOST_NAME_BYTES
}

/// `text` for an error message: whole up to [`MAX_PATTERN_CHARS`] characters, else its first 64
/// characters and its length, so a refused 130 KB argument does not become a 130 KB line.
pub(crate) fn abridged(text: &str) -> String {
    let chars = text.chars().count();
    if chars <= MAX_PATTERN_CHARS {
        return text.to_string();
    }
    let head: String = text.chars().take(64).collect();
    format!("{head}... ({chars} characters)")
}

/// A pattern or a list over its limit; says which limit and by how much.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OverLimit {
    /// A pattern longer than `MAX_PATTERN_CHARS` (its length in characters).
    #[error(
        "a pattern of {0} characters is longer than the limit of {MAX_PATTERN_CHARS} characters"
    )]
    PatternChars(usize),
    /// A list of more than `MAX_LIST_PATTERNS` patterns (how many it would hold).
    #[error(
        "the list would hold {0} patterns, more than the limit of {MAX_LIST_PATTERNS} patterns"
    )]
    ListPatterns(usize),
    /// A list of more than `MAX_LIST_CHARS` characters (how many it would hold).
    #[error(
        "the list would hold {0} pattern characters, more than the limit of {MAX_LIST_CHARS} \
         characters"
    )]
    ListChars(usize),
}

/// Checks one pattern's length.
pub(crate) fn check_pattern_length(pattern: &str) -> Result<(), OverLimit> {
    let chars = pattern.chars().count();
    if chars > MAX_PATTERN_CHARS {
        return Err(OverLimit::PatternChars(chars));
    }
    Ok(())
}

/// Checks a whole list against [`MAX_LIST_PATTERNS`] and [`MAX_LIST_CHARS`]; the error says
/// which limit and by how much.
pub(crate) fn check_list_size(patterns: &[String]) -> Result<(), OverLimit> {
    if patterns.len() > MAX_LIST_PATTERNS {
        return Err(OverLimit::ListPatterns(patterns.len()));
    }
    let chars: usize = patterns.iter().map(|p| p.chars().count()).sum();
    if chars > MAX_LIST_CHARS {
        return Err(OverLimit::ListChars(chars));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept() {
        let exact = "a".repeat(MAX_VALUE_BYTES);
        assert!(matches!(bound(&exact), Cow::Borrowed(_)));
        assert!(matches!(bound_bytes(exact.as_bytes()), Cow::Borrowed(_)));
        assert_eq!(bound(""), "");
    }

    #[test]
    fn long_values_keep_a_prefix_and_a_hash() {
        let long = "b".repeat(MAX_VALUE_BYTES + 1);
        let bounded = bound(&long);
        let (prefix, hash) = bounded.rsplit_once('~').unwrap();
        assert_eq!(prefix, "b".repeat(PREFIX_BYTES));
        assert_eq!(hash.len(), HASH_HEX_DIGITS);
        // `head -c 321 /dev/zero | tr '\0' b | sha256sum`, first 16 hex digits.
        assert_eq!(hash, "65afe7692e4c3efa");
        assert_eq!(bound_bytes(long.as_bytes()).as_ref(), bounded.as_bytes());
        assert_ne!(bound(&format!("{long}c")), bounded);
    }

    #[test]
    fn the_prefix_never_splits_a_character() {
        // 255 ASCII bytes then a 2-byte character straddling byte 256.
        let value = format!("{}é{}", "x".repeat(255), "y".repeat(100));
        let bounded = bound(&value);
        assert!(bounded.starts_with(&format!("{}~", "x".repeat(255))));
        assert_eq!(bound_bytes(value.as_bytes()).as_ref(), bounded.as_bytes());
        // Invalid bytes count one by one; a valid sequence across the cut is not split.
        let mut raw = vec![b'x'; 254];
        raw.push(0xff);
        raw.extend_from_slice("€".as_bytes());
        raw.extend(std::iter::repeat_n(b'z', 100));
        let bounded = bound_bytes(&raw);
        assert_eq!(&bounded[..255], &raw[..255]);
        assert_eq!(bounded[255], b'~');
    }

    #[test]
    fn list_limits() {
        assert!(check_pattern_length(&"a".repeat(MAX_PATTERN_CHARS)).is_ok());
        let err = check_pattern_length(&"é".repeat(MAX_PATTERN_CHARS + 1)).unwrap_err();
        assert_eq!(err, OverLimit::PatternChars(MAX_PATTERN_CHARS + 1), "{err}");
        assert_eq!(abridged("add:x"), "add:x");
        let long = abridged(&"z".repeat(5000));
        assert_eq!(long, format!("{}... (5000 characters)", "z".repeat(64)));
        let many = vec!["p".to_string(); MAX_LIST_PATTERNS + 1];
        assert_eq!(
            check_list_size(&many),
            Err(OverLimit::ListPatterns(MAX_LIST_PATTERNS + 1))
        );
        let wide = vec!["q".repeat(1000); 66];
        assert_eq!(check_list_size(&wide), Err(OverLimit::ListChars(66_000)));
        assert!(check_list_size(&wide[..65]).is_ok());
    }

    // The limits' refusals read word for word as before: import and the CLI quote them.
    #[test]
    fn refusals_read_exactly() {
        let err = check_pattern_length(&"a".repeat(MAX_PATTERN_CHARS + 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "a pattern of {} characters is longer than the limit of {MAX_PATTERN_CHARS} \
                 characters",
                MAX_PATTERN_CHARS + 1
            )
        );
        let many: Vec<String> = vec!["a".to_string(); MAX_LIST_PATTERNS + 1];
        assert_eq!(
            check_list_size(&many).unwrap_err().to_string(),
            format!(
                "the list would hold {} patterns, more than the limit of {MAX_LIST_PATTERNS} \
                 patterns",
                MAX_LIST_PATTERNS + 1
            )
        );
        let wide: Vec<String> = vec!["b".repeat(MAX_LIST_CHARS / 4 + 1); 4];
        assert_eq!(
            check_list_size(&wide).unwrap_err().to_string(),
            format!(
                "the list would hold {} pattern characters, more than the limit of \
                 {MAX_LIST_CHARS} characters",
                4 * (MAX_LIST_CHARS / 4 + 1)
            )
        );
    }
}
