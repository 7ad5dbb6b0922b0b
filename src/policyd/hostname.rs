//! The host name written into the `X-Greylist` header. It becomes part of a reply line, so it
//! is checked like any other outside value: a CR or LF in it would inject another `action=`.

use std::io;

/// The header's host name when the machine's cannot be used.
pub const FALLBACK_HOSTNAME: &str = "localhost";

/// The machine's host name (for the header); `Err` says why it cannot be used. It goes into a
/// reply line, so only a valid host name is taken (see [`check_hostname`]).
pub fn local_hostname() -> Result<String, String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return Err(format!(
            "cannot read the host name: {}",
            io::Error::last_os_error()
        ));
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]);
    check_hostname(&name)
        .map(|()| name.to_string())
        .map_err(|why| format!("the system host name {} {why}", name.escape_debug()))
}

/// Longest host name accepted (a DNS name's limit).
pub const MAX_HOSTNAME: usize = 253;

/// Longest label of a host name (a DNS label's limit).
pub(super) const MAX_LABEL: usize = 63;

/// A host name for the `X-Greylist` header: 1 to 253 bytes of dot-separated labels, each 1 to 63
/// letters, digits and `-`, not starting or ending with `-`. Anything else could break the reply
/// (a CR/LF would inject another `action=` line) or is no host name (`x..y`, `-mx`). A trailing
/// dot (the DNS root) is refused too: mail headers name hosts without it.
pub fn check_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".to_string());
    }
    if name.len() > MAX_HOSTNAME {
        return Err(format!(
            "is {} bytes long, at most {MAX_HOSTNAME} are allowed",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        return Err(format!(
            "contains {bad:?}; only letters, digits, '.' and '-' are allowed"
        ));
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("has an empty label (a leading, trailing or doubled '.')".to_string());
        }
        if label.len() > MAX_LABEL {
            return Err(format!(
                "has a label of {} bytes, at most {MAX_LABEL} are allowed",
                label.len()
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("has a label starting or ending with '-' ({label})"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            check_hostname(&format!("{longest}e"))
                .unwrap_err()
                .contains("254 bytes")
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
        assert!(check_hostname("mx\r\nx").unwrap_err().contains("'\\r'"));
        assert_eq!(check_hostname(&"a".repeat(63)), Ok(()));
        assert!(
            check_hostname(&"a".repeat(64))
                .unwrap_err()
                .contains("64 bytes")
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

    // Whatever the machine is called, the header gets a valid name.
    #[test]
    fn the_system_name_is_used_only_when_valid() {
        match local_hostname() {
            Ok(name) => assert_eq!(check_hostname(&name), Ok(())),
            Err(why) => assert!(why.contains("host name"), "{why}"),
        }
    }
}
