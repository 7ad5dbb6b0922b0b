use super::*;

/// A packet as the MTA would send it.
fn wire(code: u8, data: &[u8]) -> Vec<u8> {
    let mut out = ((data.len() + 1) as u32).to_be_bytes().to_vec();
    out.push(code);
    out.extend_from_slice(data);
    out
}

/// Feeds `input` a few bytes at a time, as a socket may deliver it; collects what comes out.
fn read_all(input: &[u8]) -> Vec<Result<Command, ProtocolError>> {
    let mut reader = PacketReader::new();
    let mut out = Vec::new();
    for piece in input.chunks(3) {
        reader.feed(piece);
        loop {
            match reader.next_command() {
                Ok(Some(c)) => out.push(Ok(c)),
                Ok(None) => break,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }
    out
}

fn one(code: u8, data: &[u8]) -> Result<Command, ProtocolError> {
    let mut got = read_all(&wire(code, data));
    assert_eq!(got.len(), 1, "{got:?}");
    got.remove(0)
}

#[test]
fn negotiation_offer_is_decoded() {
    let mut data = 6u32.to_be_bytes().to_vec();
    data.extend(0x1ffu32.to_be_bytes());
    data.extend(0x1f_ffffu32.to_be_bytes());
    assert_eq!(
        one(b'O', &data),
        Ok(Command::Negotiate {
            version: 6,
            actions: 0x1ff,
            protocol: 0x1f_ffff
        })
    );
    assert!(matches!(
        one(b'O', &data[..11]),
        Err(ProtocolError::Malformed { .. })
    ));
}

#[test]
fn macros_are_decoded_per_stage() {
    assert_eq!(
        one(b'D', b"M{auth_authen}\0bob\0i\0ABC123\0"),
        Ok(Command::Macros {
            stage: b'M',
            pairs: vec![
                ("{auth_authen}".into(), "bob".into()),
                ("i".into(), "ABC123".into())
            ]
        })
    );
    assert_eq!(
        one(b'D', b"C"),
        Ok(Command::Macros {
            stage: b'C',
            pairs: vec![]
        })
    );
    assert!(one(b'D', b"").is_err());
    assert!(one(b'D', b"Mname\0value").is_err());
}

#[test]
fn connect_families() {
    assert_eq!(
        one(b'C', b"mx.example\0\x34\x01\xbb192.0.2.1\0"),
        Ok(Command::Connect {
            hostname: "mx.example".into(),
            address: ClientAddress::Inet("192.0.2.1".parse().unwrap(), 443)
        })
    );
    // Sendmail's IPv6 form and Postfix's bare one; a link-local client's zone, in either form,
    // is dropped, not refused.
    for (text, address) in [
        (&b"IPv6:2001:db8::1"[..], "2001:db8::1"),
        (b"2001:db8::1", "2001:db8::1"),
        (b"fe80::1%eth0", "fe80::1"),
        (b"IPv6:fe80::1%2", "fe80::1"),
    ] {
        let mut data = b"[IPv6:x]\x006\x00\x19".to_vec();
        data.extend_from_slice(text);
        data.push(0);
        assert_eq!(
            one(b'C', &data),
            Ok(Command::Connect {
                hostname: "[IPv6:x]".into(),
                address: ClientAddress::Inet(address.parse().unwrap(), 25)
            })
        );
    }
    assert_eq!(
        one(b'C', b"localhost\0L\0\0/run/x.sock\0"),
        Ok(Command::Connect {
            hostname: "localhost".into(),
            address: ClientAddress::Unix("/run/x.sock".into())
        })
    );
    assert_eq!(
        one(b'C', b"localhost\0U"),
        Ok(Command::Connect {
            hostname: "localhost".into(),
            address: ClientAddress::Unknown
        })
    );
    for bad in [
        &b"h\0\x34\0\x19not-an-ip\0"[..],
        b"h\0\x34\0\x19::1\0",
        // A zone belongs to IPv6 addresses only.
        b"h\0\x34\0\x19192.0.2.1%eth0\0",
        b"h\0\x36\0\x19%eth0\0",
        b"h\0X",
        b"h\0\x34\0",
        b"h",
    ] {
        assert!(
            matches!(one(b'C', bad), Err(ProtocolError::Malformed { .. })),
            "{bad:?}"
        );
    }
}

#[test]
fn envelope_commands_keep_the_first_argument() {
    assert_eq!(
        one(b'H', b"client.example\0"),
        Ok(Command::Helo("client.example".into()))
    );
    assert_eq!(
        one(b'M', b"<s@example.org>\0SIZE=100\0BODY=8BITMIME\0"),
        Ok(Command::Mail("<s@example.org>".into()))
    );
    assert_eq!(
        one(b'R', b"<u@example.com>\0"),
        Ok(Command::Rcpt("<u@example.com>".into()))
    );
    assert!(one(b'R', b"<u@example.com>").is_err());
    // Bytes that are not UTF-8 are kept as replacement characters, not refused.
    assert_eq!(
        one(b'M', b"<\xff@x>\0"),
        Ok(Command::Mail("<\u{fffd}@x>".into()))
    );
}

#[test]
fn values_a_session_keeps_are_bounded() {
    let with_nul = |len: usize, tail: &[u8]| {
        let mut data = vec![b'a'; len];
        data.push(0);
        data.extend_from_slice(tail);
        data
    };
    // At the bound: decoded as usual.
    assert_eq!(
        one(b'M', &with_nul(MAX_VALUE, b"SIZE=1\0")),
        Ok(Command::Mail("a".repeat(MAX_VALUE)))
    );
    for (code, command) in [(b'H', "helo"), (b'M', "mail"), (b'R', "rcpt")] {
        assert_eq!(
            one(code, &with_nul(MAX_VALUE + 1, b"")),
            Err(ProtocolError::ValueTooLong {
                command,
                bytes: MAX_VALUE + 1
            })
        );
    }
    let long_host = with_nul(MAX_VALUE + 1, b"4\x00\x19198.51.100.7\0");
    assert_eq!(
        one(b'C', &long_host),
        Err(ProtocolError::ValueTooLong {
            command: "connect",
            bytes: MAX_VALUE + 1
        })
    );
    let mut long_path = b"localhost\0L\0\0".to_vec();
    long_path.extend(with_nul(MAX_VALUE + 1, b""));
    assert!(matches!(
        one(b'C', &long_path),
        Err(ProtocolError::ValueTooLong { .. })
    ));
    // Macro values are not kept whole (only whether one is empty, or a clipped copy).
    let mut macro_data = b"M{auth_authen}\0".to_vec();
    macro_data.extend(with_nul(MAX_VALUE + 1, b""));
    assert!(one(b'D', &macro_data).is_ok());
    assert_eq!(
        ProtocolError::ValueTooLong {
            command: "mail",
            bytes: 9000
        }
        .to_string(),
        "mail packet with a value of 9000 bytes, longer than 8192 bytes"
    );
}

#[test]
fn data_less_commands() {
    for (code, command) in [
        (b'T', Command::Data),
        (b'L', Command::Header),
        (b'N', Command::EndOfHeaders),
        (b'B', Command::Body),
        (b'E', Command::EndOfMessage),
        (b'A', Command::Abort),
        (b'Q', Command::Quit),
        (b'K', Command::QuitNewConnection),
        (b'U', Command::UnknownSmtp),
    ] {
        assert_eq!(one(code, b""), Ok(command));
    }
    assert_eq!(one(b'z', b""), Err(ProtocolError::UnknownCommand(b'z')));
}

#[test]
fn several_packets_in_one_read_and_truncated_ones_wait() {
    let mut input = wire(b'A', b"");
    input.extend(wire(b'R', b"<u@x>\0"));
    let truncated = wire(b'H', b"helo\0");
    input.extend(&truncated[..truncated.len() - 2]);
    let mut reader = PacketReader::new();
    reader.feed(&input);
    assert_eq!(reader.next_command(), Ok(Some(Command::Abort)));
    assert_eq!(
        reader.next_command(),
        Ok(Some(Command::Rcpt("<u@x>".into())))
    );
    assert_eq!(reader.next_command(), Ok(None));
    assert!(reader.in_progress());
    reader.feed(&truncated[truncated.len() - 2..]);
    assert_eq!(
        reader.next_command(),
        Ok(Some(Command::Helo("helo".into())))
    );
    assert!(!reader.in_progress());
}

// A length over 64 KiB is refused from its four bytes, before any of the data is buffered.
#[test]
fn oversized_and_empty_packets_are_refused() {
    let mut reader = PacketReader::new();
    reader.feed(&(MAX_PACKET as u32 + 1).to_be_bytes());
    assert_eq!(
        reader.next_command(),
        Err(ProtocolError::TooLarge(MAX_PACKET as u32 + 1))
    );
    let mut reader = PacketReader::new();
    reader.feed(&0u32.to_be_bytes());
    assert_eq!(reader.next_command(), Err(ProtocolError::Empty));
    // Exactly the limit is a packet like any other (a macro packet: its value is not bounded
    // as a HELO's is).
    let mut body = b"H{x}\0".to_vec();
    body.resize(MAX_PACKET - 2, b'x');
    body.push(0);
    assert_eq!(wire(b'D', &body).len(), 4 + MAX_PACKET);
    let got = read_all(&wire(b'D', &body));
    assert_eq!(got.len(), 1);
    assert!(got[0].is_ok(), "{:?}", got[0].as_ref().map(|_| ()));
}

/// The bytes of a reply split into (code, data) packets.
fn packets(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        out.push((rest[4], rest[5..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    out
}

#[test]
fn replies_are_encoded() {
    let mut out = Vec::new();
    write_simple(&mut out, reply::CONTINUE);
    write_reply_code(&mut out, "451 4.7.1 Service unavailable - try again later");
    write_add_header(&mut out, "X-Greylist", "delayed 5 seconds");
    write_negotiate(
        &mut out,
        6,
        SMFIF_ADDHDRS,
        flag::NOBODY,
        &[(stage::ENVFROM, "{auth_authen}")],
    );
    let got = packets(&out);
    assert_eq!(got[0], (b'c', vec![]));
    assert_eq!(
        got[1],
        (
            b'y',
            b"451 4.7.1 Service unavailable - try again later\0".to_vec()
        )
    );
    assert_eq!(got[2], (b'h', b"X-Greylist\0delayed 5 seconds\0".to_vec()));
    let mut negotiation = vec![0, 0, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0x10, 0, 0, 0, 2];
    negotiation.extend(b"{auth_authen}\0");
    assert_eq!(got[3], (b'O', negotiation));
}

proptest::proptest! {
    // Whatever arrives, in whatever pieces, the reader answers with commands or an error.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        cut in 1usize..64,
    ) {
        let mut reader = PacketReader::new();
        'feed: for piece in bytes.chunks(cut) {
            reader.feed(piece);
            loop {
                match reader.next_command() {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
    }

    // Well-framed packets with arbitrary codes and data decode or fail, never panic.
    #[test]
    fn arbitrary_packets_never_panic(
        code in proptest::prelude::any::<u8>(),
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
    ) {
        let _ = decode(code, &data);
        let framed = wire(code, &data);
        let _ = read_all(&framed);
    }
}
