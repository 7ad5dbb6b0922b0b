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

/// A host name for the `X-Greylist` header: 1 to 253 bytes of letters, digits, `.` and `-`.
/// Anything else could break the reply (a CR/LF would inject another `action=` line).
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
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        Some(bad) => Err(format!(
            "contains {:?}; only letters, digits, '.' and '-' are allowed",
            bad
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_host_names_are_accepted() {
        assert_eq!(check_hostname("mx1.example.com"), Ok(()));
        assert_eq!(check_hostname("MX-1"), Ok(()));
        assert_eq!(check_hostname(&"a".repeat(253)), Ok(()));
        assert!(
            check_hostname(&"a".repeat(254))
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
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
        assert!(check_hostname("mx\r\nx").unwrap_err().contains("'\\r'"));
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
