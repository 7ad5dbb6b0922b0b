//! The SMTP client's address and verified host name as every front end receives them (the
//! filter from `TCPREMOTEIP`/`TCPREMOTEHOST` or a `Received:` header, the policy server from
//! Postfix's `client_address`/`client_name`): one reading of each, so the same text means the
//! same client wherever it arrives.

use std::net::IpAddr;

/// Parses a client address, tolerating surrounding spaces, brackets (`[192.0.2.1]`) and an
/// `IPv6:` prefix (`IPv6:2001:db8::1`, as in `Received:` headers). `None` when it is no address.
pub(crate) fn address(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_start_matches('[').trim_end_matches(']');
    let bare = text
        .get(..5)
        .filter(|prefix| prefix.eq_ignore_ascii_case("ipv6:"))
        .map_or(text, |_| &text[5..]);
    bare.parse().ok()
}

/// The verified host name worth matching, or `None`: empty values, `unknown` (what Postfix and
/// tcpserver say when the name could not be verified) and anything with spaces are no name. A
/// trailing root dot is dropped.
pub(crate) fn verified_name(text: &str) -> Option<String> {
    let text = text.trim().trim_end_matches('.');
    if text.is_empty() || text.eq_ignore_ascii_case("unknown") || text.contains(char::is_whitespace)
    {
        return None;
    }
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_in_every_form_a_front_end_sees() {
        let v4: Option<IpAddr> = "192.0.2.1".parse().ok();
        let v6: Option<IpAddr> = "2001:db8::1".parse().ok();
        assert_eq!(address("192.0.2.1"), v4);
        assert_eq!(address(" [192.0.2.1] "), v4);
        assert_eq!(address("IPv6:2001:db8::1"), v6);
        assert_eq!(address("[ipv6:2001:db8::1]"), v6);
        assert_eq!(address("2001:db8::1"), v6);
        assert_eq!(address("not-an-ip"), None);
        assert_eq!(address(""), None);
        assert_eq!(address("IPv6:"), None);
    }

    #[test]
    fn names_that_are_no_verified_name() {
        assert_eq!(verified_name("mx.example."), Some("mx.example".to_string()));
        assert_eq!(
            verified_name(" mx.example "),
            Some("mx.example".to_string())
        );
        for none in ["", " ", "unknown", "UNKNOWN", "a b", "."] {
            assert_eq!(verified_name(none), None, "{none:?}");
        }
    }
}
