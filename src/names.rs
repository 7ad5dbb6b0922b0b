//! Domain names in one form. A domain given to the CLI, the domain part of a mail address or an
//! address pattern, a host-name pattern, and on the mail path the recipient's and sender's
//! domains and the client host name all go through UTS 46 non-transitional processing (the
//! `idna` crate: lower case, `ß` kept) before they are stored, compared or matched, so
//! `bücher.de` and `xn--bcher-kva.de` are one domain. Local parts are kept as given.

use std::borrow::Cow;

use thiserror::Error;

/// Characters that make a pattern label a wildcard rather than a name.
const PATTERN_CHARS: [char; 4] = ['*', '?', '[', ']'];

/// The A-label form of `domain` (lower-cased), or `None` when UTS 46 processing refuses it.
/// The result may still be no valid host name (`idna` lets spaces through, for instance): the
/// callers check the shape themselves.
pub(crate) fn domain_to_ascii(domain: &str) -> Option<String> {
    idna::domain_to_ascii(domain).ok()
}

/// A client host name as the mail path matches and keys it: lower-cased, in A-label form. A
/// name that cannot be converted is kept, lower-cased: the mail path never fails on a name.
pub(crate) fn host_for_matching(name: &str) -> Cow<'_, str> {
    // Longer than any host name: it matches no pattern and is keyed by network anyway, so it
    // is not worth converting (and the work stays bounded).
    if name.len() > crate::bounds::MAX_HOST_NAME_BYTES {
        return Cow::Borrowed(name);
    }
    if name.is_ascii() {
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Cow::Owned(name.to_ascii_lowercase());
        }
        return Cow::Borrowed(name);
    }
    Cow::Owned(domain_to_ascii(name).unwrap_or_else(|| name.to_lowercase()))
}

/// An envelope address as the mail path matches and keys it: surrounding whitespace and one
/// pair of angle brackets removed (`<a@x>` and ` a@x ` are `a@x`; `<>` is the empty bounce
/// sender), and its domain (after the last `@`) written the way host names are: one trailing `.`
/// removed (`spam.example.` is `spam.example`, or a black list would not see it) and in A-label
/// form. The local part is kept as given; ASCII domains keep their case (matching and keys ignore
/// it anyway); a domain that cannot be converted is kept, lower-cased.
pub(crate) fn address_for_matching(address: &str) -> Cow<'_, str> {
    // Over-long addresses are bounded (hashed) before they are keyed: not worth converting.
    if address.len() > crate::bounds::MAX_VALUE_BYTES {
        return Cow::Borrowed(address);
    }
    let trimmed = address.trim();
    let bare = trimmed
        .strip_prefix('<')
        .and_then(|inner| inner.strip_suffix('>'))
        .map_or(trimmed, str::trim);
    let Some((local, domain)) = bare.rsplit_once('@') else {
        return Cow::Borrowed(bare);
    };
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_ascii() {
        if local.len() + 1 + domain.len() == bare.len() {
            return Cow::Borrowed(bare);
        }
        return Cow::Owned(format!("{local}@{domain}"));
    }
    Cow::Owned(format!(
        "{local}@{}",
        domain_to_ascii(domain).unwrap_or_else(|| domain.to_lowercase())
    ))
}

/// A pattern with the names in it in A-label form: for host-name patterns the whole of each
/// `|`-alternative, for address patterns the part after the last `@`. Each dot-separated label
/// that holds no pattern character is converted; ASCII labels are left exactly as written.
/// Refused (with the reason): a label mixing pattern characters and non-ASCII letters, which has
/// no A-label form, and a label UTS 46 refuses.
pub(crate) fn pattern_to_ascii(pattern: &str, host: bool) -> Result<String, BadName> {
    if pattern.is_ascii() {
        return Ok(pattern.to_string());
    }
    let alternatives: Result<Vec<String>, BadName> = pattern
        .split('|')
        .map(|alternative| {
            if host {
                labels_to_ascii(alternative)
            } else {
                match alternative.rsplit_once('@') {
                    Some((local, domain)) => Ok(format!("{local}@{}", labels_to_ascii(domain)?)),
                    None => Ok(alternative.to_string()),
                }
            }
        })
        .collect();
    Ok(alternatives?.join("|"))
}

/// Why a label of a pattern has no A-label form (the label as written).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BadName {
    /// Pattern characters and non-ASCII letters in one label.
    #[error(
        "label '{0}' mixes wildcards and non-ASCII letters (write *.bücher.de or the xn-- form)"
    )]
    MixedLabel(String),
    /// A label UTS 46 refuses.
    #[error("label '{0}' is not a valid domain label")]
    InvalidLabel(String),
}

fn labels_to_ascii(name: &str) -> Result<String, BadName> {
    let labels: Result<Vec<String>, BadName> = name
        .split('.')
        .map(|label| {
            if label.is_ascii() {
                Ok(label.to_string())
            } else if label.contains(PATTERN_CHARS) {
                Err(BadName::MixedLabel(label.to_string()))
            } else {
                domain_to_ascii(label)
                    .filter(|converted| !converted.is_empty())
                    .ok_or_else(|| BadName::InvalidLabel(label.to_string()))
            }
        })
        .collect();
    Ok(labels?.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_are_one_name() {
        assert_eq!(
            domain_to_ascii("Bücher.DE").as_deref(),
            Some("xn--bcher-kva.de")
        );
        assert_eq!(
            domain_to_ascii("xn--bcher-kva.de").as_deref(),
            Some("xn--bcher-kva.de")
        );
        // Non-transitional: ß is kept, not mapped to ss.
        assert_eq!(
            domain_to_ascii("straße.de").as_deref(),
            Some("xn--strae-oqa.de")
        );
        assert_eq!(domain_to_ascii("xn--zz.de"), None);
    }

    #[test]
    fn the_mail_path_converts_and_fails_open() {
        assert_eq!(host_for_matching("MX.Bücher.de"), "mx.xn--bcher-kva.de");
        assert_eq!(host_for_matching("MX.Example.COM"), "mx.example.com");
        assert_eq!(
            address_for_matching("Jörg@Bücher.de"),
            "Jörg@xn--bcher-kva.de"
        );
        assert_eq!(address_for_matching("Bob@Example.com"), "Bob@Example.com");
        assert_eq!(address_for_matching(""), "");
        // UTS 46 refuses a label that starts with a combining mark: kept, lower-cased.
        assert_eq!(address_for_matching("a@\u{301}X.de"), "a@\u{301}x.de");
    }

    #[test]
    fn addresses_lose_the_trailing_dot_brackets_and_spaces() {
        assert_eq!(address_for_matching("a@spam.example."), "a@spam.example");
        assert_eq!(address_for_matching("a@Bücher.de."), "a@xn--bcher-kva.de");
        assert_eq!(address_for_matching("<a@spam.example>"), "a@spam.example");
        assert_eq!(
            address_for_matching(" <a@spam.example.> "),
            "a@spam.example"
        );
        assert_eq!(address_for_matching("\ta@spam.example\n"), "a@spam.example");
        assert_eq!(address_for_matching("<>"), "");
        // Only one dot, one pair of brackets.
        assert_eq!(address_for_matching("a@x.."), "a@x.");
        assert_eq!(address_for_matching("<<a@x>>"), "<a@x>");
        // Without `@`, only the wrapping goes.
        assert_eq!(address_for_matching("<postmaster>"), "postmaster");
    }

    #[test]
    fn patterns_convert_name_labels_only() {
        assert_eq!(
            pattern_to_ascii("*.bücher.de", true).unwrap(),
            "*.xn--bcher-kva.de"
        );
        assert_eq!(
            pattern_to_ascii("*.AmazonSES.com", true).unwrap(),
            "*.AmazonSES.com"
        );
        assert_eq!(
            pattern_to_ascii("jörg@bücher.de|*@x.de", false).unwrap(),
            "jörg@xn--bcher-kva.de|*@x.de"
        );
        assert!(pattern_to_ascii("*bücher.de", true).is_err());
        assert!(pattern_to_ascii("*@b?cher-ü.de", false).is_err());
    }

    // The reasons a pattern's names are refused read word for word as before.
    #[test]
    fn refusals_read_exactly() {
        assert_eq!(
            pattern_to_ascii("*bücher.de", true)
                .unwrap_err()
                .to_string(),
            "label '*bücher' mixes wildcards and non-ASCII letters (write *.bücher.de or the \
             xn-- form)"
        );
        assert_eq!(
            pattern_to_ascii("a@x.\u{200b}", false)
                .unwrap_err()
                .to_string(),
            "label '\u{200b}' is not a valid domain label"
        );
    }
}
