//! The host name written into the `X-Greylist` header (`--hostname`, or the machine's). It
//! becomes part of a reply line, so it is checked like any other outside value: a CR or LF in it
//! would inject another `action=`.

use std::io;

use thiserror::Error;

/// The header's host name when the machine's cannot be used.
pub(crate) const FALLBACK_HOSTNAME: &str = "localhost";

/// Why the machine's host name cannot be used for the header.
#[derive(Debug, Error)]
pub(crate) enum HostnameError {
    /// `gethostname` failed.
    #[error("cannot read the host name: {0}")]
    Unreadable(#[source] io::Error),
    /// The machine's name is no valid host name.
    #[error("the system host name {} {why}", .name.escape_debug())]
    Invalid {
        /// The name as the system gave it (shown escaped).
        name: String,
        /// What is wrong with it.
        #[source]
        why: BadHostname,
    },
}

/// What is wrong with a host name; reads as the end of a sentence naming it ("... it is empty").
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum BadHostname {
    /// No name at all.
    #[error("is empty")]
    Empty,
    /// Longer than a DNS name may be (its length in bytes).
    #[error("is {0} bytes long, at most {MAX_HOSTNAME} are allowed")]
    TooLong(usize),
    /// A character that is not a letter, digit, `.` or `-`.
    #[error("contains {0:?}; only letters, digits, '.' and '-' are allowed")]
    BadChar(char),
    /// A leading, trailing or doubled dot.
    #[error("has an empty label (a leading, trailing or doubled '.')")]
    EmptyLabel,
    /// A label longer than a DNS label may be (its length in bytes).
    #[error("has a label of {0} bytes, at most {MAX_LABEL} are allowed")]
    LongLabel(usize),
    /// A label starting or ending with `-` (the label; only letters, digits and `-` by then).
    #[error("has a label starting or ending with '-' ({0})")]
    HyphenEdge(String),
}

/// The machine's host name (for the header); `Err` says why it cannot be used. It goes into a
/// reply line, so only a valid host name is taken (see [`check_hostname`]).
pub(crate) fn local_hostname() -> Result<String, HostnameError> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(HostnameError::Unreadable(io::Error::last_os_error()));
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]);
    check_hostname(&name)
        .map(|()| name.to_string())
        .map_err(|why| HostnameError::Invalid {
            name: name.to_string(),
            why,
        })
}

/// The header's host name when `--hostname` is not given: the machine's, or
/// [`FALLBACK_HOSTNAME`] with the line saying why, which the daemon logs when it starts.
pub(crate) fn default_hostname() -> (String, Option<String>) {
    fallback_for(local_hostname())
}

fn fallback_for(found: Result<String, HostnameError>) -> (String, Option<String>) {
    match found {
        Ok(name) => (name, None),
        Err(why) => (
            FALLBACK_HOSTNAME.to_string(),
            Some(format!(
                "{why}; the X-Greylist header names {FALLBACK_HOSTNAME} (set --hostname)"
            )),
        ),
    }
}

/// Longest host name accepted (a DNS name's limit).
pub(crate) const MAX_HOSTNAME: usize = 253;

/// Longest label of a host name (a DNS label's limit).
pub(super) const MAX_LABEL: usize = 63;

/// A host name for the `X-Greylist` header: 1 to 253 bytes of dot-separated labels, each 1 to 63
/// letters, digits and `-`, not starting or ending with `-`. Anything else could break the reply
/// (a CR/LF would inject another `action=` line) or is no host name (`x..y`, `-mx`). A trailing
/// dot (the DNS root) is refused too: mail headers name hosts without it.
pub(crate) fn check_hostname(name: &str) -> Result<(), BadHostname> {
    if name.is_empty() {
        return Err(BadHostname::Empty);
    }
    if name.len() > MAX_HOSTNAME {
        return Err(BadHostname::TooLong(name.len()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        return Err(BadHostname::BadChar(bad));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(BadHostname::EmptyLabel);
        }
        if label.len() > MAX_LABEL {
            return Err(BadHostname::LongLabel(label.len()));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(BadHostname::HyphenEdge(label.to_string()));
        }
    }
    Ok(())
}

/// A `--hostname` the header line cannot carry.
#[derive(Debug, Error)]
#[error("invalid --hostname \"{shown}\": it {why}")]
pub struct BadHostnameOption {
    /// The value, escaped and cut: it is hostile until checked.
    shown: String,
    /// What is wrong with it.
    why: String,
}

/// Checks a `--hostname` value first, before anything is opened: a host name that could break
/// the header line (or the policy server's reply line) is refused.
pub fn check_hostname_option(hostname: Option<&str>) -> Result<(), BadHostnameOption> {
    let Some(hostname) = hostname else {
        return Ok(());
    };
    check_hostname(hostname).map_err(|why| BadHostnameOption {
        shown: hostname.escape_debug().take(80).collect(),
        why: why.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unusable_system_name_falls_back_with_a_note() {
        assert_eq!(
            fallback_for(Ok("mx.example".to_string())),
            ("mx.example".to_string(), None)
        );
        let (name, note) = fallback_for(Err(HostnameError::Invalid {
            name: "mx_1".to_string(),
            why: BadHostname::BadChar('_'),
        }));
        assert_eq!(name, FALLBACK_HOSTNAME);
        assert_eq!(
            note.as_deref(),
            Some(
                "the system host name mx_1 contains '_'; only letters, digits, '.' and '-' are \
                 allowed; the X-Greylist header names localhost (set --hostname)"
            )
        );
    }

    #[test]
    fn only_plain_host_names_are_accepted() {
        assert_eq!(check_hostname("mx1.example.com"), Ok(()));
        assert_eq!(check_hostname("MX-1"), Ok(()));
        let longest = [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61),
        ]
        .join(".");
        assert_eq!(check_hostname(&longest), Ok(()));
        assert_eq!(
            check_hostname(&format!("{longest}e")),
            Err(BadHostname::TooLong(254))
        );
        assert!(check_hostname("").is_err());
        for bad in [
            "mx\r\naction=REJECT",
            "mx\n",
            "mx example",
            "mx_1",
            "mx;",
            "mx\u{e9}",
            "x..y",
            ".mx",
            "mx.",
            "-mx.example",
            "mx-.example",
            "mx.-a",
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
        assert_eq!(check_hostname("mx\r\nx"), Err(BadHostname::BadChar('\r')));
        assert_eq!(check_hostname(&"a".repeat(63)), Ok(()));
        assert_eq!(
            check_hostname(&"a".repeat(64)),
            Err(BadHostname::LongLabel(64))
        );
        assert_eq!(check_hostname("a-b.c0"), Ok(()));
    }

    // Each refusal reads exactly as before: the binaries print it after "invalid --hostname
    // ...: it " and the policy server logs it after "the system host name ...".
    #[test]
    fn refusals_read_exactly() {
        let why = |name: &str| check_hostname(name).unwrap_err().to_string();
        assert_eq!(why(""), "is empty");
        assert_eq!(
            why(&"a".repeat(254)),
            "is 254 bytes long, at most 253 are allowed"
        );
        assert_eq!(
            why("mx\r\n"),
            "contains '\\r'; only letters, digits, '.' and '-' are allowed"
        );
        assert_eq!(
            why("x..y"),
            "has an empty label (a leading, trailing or doubled '.')"
        );
        assert_eq!(
            why(&format!("{}.example", "a".repeat(64))),
            "has a label of 64 bytes, at most 63 are allowed"
        );
        assert_eq!(
            why("mx.-a.example"),
            "has a label starting or ending with '-' (-a)"
        );
    }

    // The policy server logs why it does not use the machine's name: the name escaped, then
    // what is wrong with it, kept as the error's source.
    #[test]
    fn an_invalid_system_name_is_named_escaped_with_its_fault() {
        use std::error::Error as _;
        let err = HostnameError::Invalid {
            name: "mx\r\n.example".to_string(),
            why: BadHostname::BadChar('\r'),
        };
        assert_eq!(
            err.to_string(),
            "the system host name mx\\r\\n.example contains '\\r'; only letters, digits, '.' \
             and '-' are allowed"
        );
        let source = err.source().and_then(|s| s.downcast_ref::<BadHostname>());
        assert_eq!(source, Some(&BadHostname::BadChar('\r')));
        let unreadable = HostnameError::Unreadable(io::Error::from_raw_os_error(libc::EFAULT));
        assert_eq!(
            unreadable.to_string(),
            format!(
                "cannot read the host name: {}",
                io::Error::from_raw_os_error(libc::EFAULT)
            )
        );
    }

    // Whatever the machine is called, the header gets a valid name.
    #[test]
    fn the_system_name_is_used_only_when_valid() {
        match local_hostname() {
            Ok(name) => assert_eq!(check_hostname(&name), Ok(())),
            Err(why) => assert!(why.to_string().contains("host name"), "{why}"),
        }
    }
}
