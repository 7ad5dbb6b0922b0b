//! Reading a packet's data field by field, each read bounded by what is left.

use super::{MAX_VALUE, ProtocolError};

/// Reads fields off a packet's data, each read bounded by what is left.
pub(super) struct Fields<'a> {
    data: &'a [u8],
    command: &'static str,
}

impl<'a> Fields<'a> {
    pub(super) fn new(data: &'a [u8], command: &'static str) -> Fields<'a> {
        Fields { data, command }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn short(&self) -> ProtocolError {
        ProtocolError::Malformed {
            command: self.command,
            why: "too short",
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtocolError> {
        if self.data.len() < n {
            return Err(self.short());
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    pub(super) fn byte(&mut self) -> Result<u8, ProtocolError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u16(&mut self) -> Result<u16, ProtocolError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn u32(&mut self) -> Result<u32, ProtocolError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A NUL-terminated string; bytes that are not UTF-8 become U+FFFD (they are only ever
    /// compared, bounded and logged, never trusted).
    pub(super) fn string(&mut self) -> Result<String, ProtocolError> {
        let end = self
            .data
            .iter()
            .position(|&b| b == 0)
            .ok_or(ProtocolError::Malformed {
                command: self.command,
                why: "string without its NUL",
            })?;
        let text = String::from_utf8_lossy(&self.data[..end]).into_owned();
        self.data = &self.data[end + 1..];
        Ok(text)
    }

    /// [`Fields::string`] for a value a session keeps or decides on (a host name, HELO or
    /// address): at most [`MAX_VALUE`] bytes.
    pub(super) fn value(&mut self) -> Result<String, ProtocolError> {
        let end = self.data.iter().position(|&b| b == 0);
        if let Some(bytes) = end.filter(|&n| n > MAX_VALUE) {
            return Err(ProtocolError::ValueTooLong {
                command: self.command,
                bytes,
            });
        }
        self.string()
    }
}
