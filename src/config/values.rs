//! Values from the command line: what can be wrong with one, and the parsers for on/off,
//! numbers, durations, domains and mail addresses.

use thiserror::Error;

use super::EditFault;
use crate::names::BadName;

/// What is wrong with a value given on the command line.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ValueError {
    /// Not `on` or `off`.
    #[error("invalid value '{0}' (expected on or off)")]
    OnOff(String),
    /// Not `true` or `false`.
    #[error("invalid value '{0}' (expected true or false)")]
    TrueFalse(String),
    /// Not a whole number.
    #[error("'{0}' is not a whole number of minutes")]
    NotANumber(String),
    /// A number outside its range.
    #[error("{value} is out of range ({min}..={max})")]
    OutOfRange {
        /// The value given.
        value: String,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// A list edit that does not follow `<add|del>:<pattern[,pattern]>;...`.
    #[error("malformed list edit '{edit}': {why}")]
    MalformedEdit {
        /// The whole edit as given.
        edit: String,
        /// What is wrong.
        #[source]
        why: EditFault,
    },
    /// A domain name that cannot be one.
    #[error("'{0}' is not a valid domain name")]
    Domain(String),
    /// A mail address that cannot be one.
    #[error("'{0}' is not a valid mail address (expected mail@domain)")]
    Mail(String),
    /// A pattern whose names have no A-label form.
    #[error("pattern '{pattern}': {why}")]
    PatternName {
        /// The pattern as given.
        pattern: String,
        /// What is wrong.
        #[source]
        why: BadName,
    },
    /// A DNS zone name that cannot be one.
    #[error("'{0}' is not a valid DNS zone (letters, digits and hyphens in dot-separated labels)")]
    Zone(String),
    /// A word that is not one of a setting's choices.
    #[error("invalid value '{value}' (expected {expected})")]
    Choice {
        /// The value given.
        value: String,
        /// The words accepted, joined with "or".
        expected: String,
    },
    /// A duration that is not a number with a unit.
    #[error("invalid duration '{0}' (expected a number with a unit: 90m, 36h, 7d)")]
    Duration(String),
}

/// Parses `on`/`off`.
pub fn parse_on_off(value: &str) -> Result<bool, ValueError> {
    match value {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(ValueError::OnOff(value.to_string())),
    }
}

/// Parses `true`/`false`.
pub fn parse_true_false(value: &str) -> Result<bool, ValueError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ValueError::TrueFalse(value.to_string())),
    }
}

/// Parses a whole number within `min..=max`.
pub fn parse_in_range(value: &str, min: u64, max: u64) -> Result<u64, ValueError> {
    let digits = value.strip_prefix('+').unwrap_or(value);
    let is_integer = {
        let unsigned = digits.strip_prefix('-').unwrap_or(digits);
        !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit())
    };
    if !is_integer {
        return Err(ValueError::NotANumber(value.to_string()));
    }
    let out_of_range = || ValueError::OutOfRange {
        value: value.to_string(),
        min,
        max,
    };
    if digits.starts_with('-') {
        return Err(out_of_range());
    }
    let number: u64 = digits.parse().map_err(|_| out_of_range())?;
    if number < min || number > max {
        return Err(out_of_range());
    }
    Ok(number)
}

/// Parses a duration with a unit (`90m`, `36h`, `7d`, `2w`, `30s`) into seconds.
pub fn parse_duration(value: &str) -> Result<i64, ValueError> {
    let bad = || ValueError::Duration(value.to_string());
    let split = value.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = value.split_at(split);
    let number: i64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(bad()),
    };
    number.checked_mul(scale).ok_or_else(bad)
}

/// Validates and normalises (A-label form, lower case, no trailing dot) a domain name.
pub fn parse_domain(value: &str) -> Result<String, ValueError> {
    let bad = || ValueError::Domain(value.to_string());
    let domain = value.strip_suffix('.').unwrap_or(value);
    let domain = crate::names::domain_to_ascii(domain).ok_or_else(bad)?;
    if domain.is_empty() || domain.len() > 253 {
        return Err(bad());
    }
    for label in domain.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(bad());
        }
    }
    Ok(domain)
}

/// Validates and normalises a mail address `local@domain`: lower case, the domain in A-label
/// form (the local part is not converted).
pub fn parse_mail(value: &str) -> Result<String, ValueError> {
    let bad = || ValueError::Mail(value.to_string());
    let (local, domain) = value.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.chars().any(|c| c.is_whitespace() || c.is_control());
    if !local_ok {
        return Err(bad());
    }
    let domain = parse_domain(domain).map_err(|_| bad())?;
    Ok(format!("{}@{}", local.to_lowercase(), domain))
}
