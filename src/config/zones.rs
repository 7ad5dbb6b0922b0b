//! DNS list zones (`-dnswl-zones`, `-dnsbl-zones`): names, not patterns. Each entry is checked
//! and put in one spelling before it is stored, so the decision and the cache compare zones by
//! plain equality.

use super::{EditGroup, ListEdit, ValueError};

/// Checks a zone name and returns its stored form: lower-case, without one trailing dot. A zone
/// is letters, digits and hyphens in dot-separated labels of 1–63 bytes, no label starting or
/// ending with a hyphen, at most 253 bytes in all. No wildcards, no underscores, no IDN: the
/// name is asked in DNS as given.
pub fn parse_zone(value: &str) -> Result<String, ValueError> {
    let bad = || ValueError::Zone(crate::bounds::abridged(value));
    let zone = value
        .strip_suffix('.')
        .unwrap_or(value)
        .to_ascii_lowercase();
    if zone.is_empty() || zone.len() > 253 {
        return Err(bad());
    }
    for label in zone.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(bad());
        }
    }
    Ok(zone)
}

/// Puts every zone of a parsed list edit into its stored form, refusing the first bad one.
pub fn edit_zones(edit: ListEdit) -> Result<ListEdit, ValueError> {
    let groups = edit
        .groups
        .into_iter()
        .map(|group| {
            let patterns = group
                .patterns
                .iter()
                .map(|zone| parse_zone(zone))
                .collect::<Result<_, _>>()?;
            Ok(EditGroup {
                op: group.op,
                patterns,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(ListEdit { groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_lower_case_without_a_trailing_dot() {
        assert_eq!(parse_zone("List.DNSWL.org.").unwrap(), "list.dnswl.org");
        assert_eq!(parse_zone("zen.spamhaus.org").unwrap(), "zen.spamhaus.org");
        assert_eq!(parse_zone("a-1.b").unwrap(), "a-1.b");
        let longest_label = "a".repeat(63);
        assert_eq!(parse_zone(&longest_label).unwrap(), longest_label);
    }

    #[test]
    fn bad_zones_are_refused() {
        let long_label = "a".repeat(64);
        let long_name = vec!["abcdefghi"; 26].join("."); // 259 bytes
        for bad in [
            "",
            ".",
            "a..b",
            ".a.b",
            "a.b..",
            "*.dnsbl.example",
            "-a.example",
            "a-.example",
            "a_b.example",
            "bücher.de",
            "a b.example",
            "dnsbl.example/24",
            long_label.as_str(),
            long_name.as_str(),
        ] {
            assert!(parse_zone(bad).is_err(), "{bad:?} should be refused");
        }
        let exact = format!("{0}.{0}.{0}.{1}", "a".repeat(63), "b".repeat(61));
        assert_eq!(exact.len(), 253);
        assert!(parse_zone(&exact).is_ok());
        assert!(parse_zone(&format!("{exact}c")).is_err());
    }
}
