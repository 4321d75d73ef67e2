//! SETTINGS (RFC 9113 §6.5): a list of 6-byte (identifier, value) pairs on stream 0; an ACK is empty.

use super::{FrameError, FrameType, Head, check_stream_id, flags};
use std::fmt;

/// A setting identifier, open: unknown identifiers are kept and printed in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SettingId(pub u16);

impl SettingId {
    pub const HEADER_TABLE_SIZE: SettingId = SettingId(0x1);
    pub const ENABLE_PUSH: SettingId = SettingId(0x2);
    pub const MAX_CONCURRENT_STREAMS: SettingId = SettingId(0x3);
    pub const INITIAL_WINDOW_SIZE: SettingId = SettingId(0x4);
    pub const MAX_FRAME_SIZE: SettingId = SettingId(0x5);
    pub const MAX_HEADER_LIST_SIZE: SettingId = SettingId(0x6);
    /// RFC 8441.
    pub const ENABLE_CONNECT_PROTOCOL: SettingId = SettingId(0x8);
    /// RFC 9218.
    pub const NO_RFC7540_PRIORITIES: SettingId = SettingId(0x9);

    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x1 => "HEADER_TABLE_SIZE",
            0x2 => "ENABLE_PUSH",
            0x3 => "MAX_CONCURRENT_STREAMS",
            0x4 => "INITIAL_WINDOW_SIZE",
            0x5 => "MAX_FRAME_SIZE",
            0x6 => "MAX_HEADER_LIST_SIZE",
            0x8 => "ENABLE_CONNECT_PROTOCOL",
            0x9 => "NO_RFC7540_PRIORITIES",
            _ => return None,
        })
    }
}

impl fmt::Display for SettingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "UNKNOWN(0x{:x})", self.0),
        }
    }
}

/// A SETTINGS frame, borrowed: [`Settings::iter`] walks the complete pairs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings<'a> {
    pub ack: bool,
    raw: &'a [u8],
}

impl<'a> Settings<'a> {
    pub fn load(head: &Head, payload: &'a [u8]) -> Settings<'a> {
        Settings {
            ack: head.flags & flags::ACK != 0,
            raw: payload,
        }
    }

    /// The complete pairs in order; a trailing partial pair is ignored (and reported by [`Settings::check`]).
    pub fn iter(&self) -> impl Iterator<Item = (SettingId, u32)> + 'a {
        self.raw.chunks_exact(6).map(|c| {
            let mut it = c.iter().copied();
            let mut next = || it.next().unwrap_or(0);
            let id = u16::from_be_bytes([next(), next()]);
            let value = u32::from_be_bytes([next(), next(), next(), next()]);
            (SettingId(id), value)
        })
    }

    pub fn check(&self, head: &Head) -> Result<(), FrameError> {
        check_stream_id(head, true)?;
        if self.ack && head.length != 0 {
            return Err(FrameError::Length {
                kind: head.kind,
                length: head.length,
                rule: "0 with ACK",
            });
        }
        if head.length % 6 != 0 {
            return Err(FrameError::Length {
                kind: head.kind,
                length: head.length,
                rule: "a multiple of 6",
            });
        }
        for (id, value) in self.iter() {
            let bad = match id {
                SettingId::ENABLE_PUSH | SettingId::ENABLE_CONNECT_PROTOCOL | SettingId::NO_RFC7540_PRIORITIES => {
                    value > 1
                }
                SettingId::INITIAL_WINDOW_SIZE => value > 0x7fff_ffff,
                SettingId::MAX_FRAME_SIZE => !(super::DEFAULT_MAX_FRAME_SIZE..=super::MAX_FRAME_LEN).contains(&value),
                _ => false,
            };
            if bad {
                let what = match id {
                    SettingId::INITIAL_WINDOW_SIZE => "INITIAL_WINDOW_SIZE above 2^31-1",
                    SettingId::MAX_FRAME_SIZE => "MAX_FRAME_SIZE outside 16384..=16777215",
                    _ => "boolean setting above 1",
                };
                return Err(FrameError::Value {
                    kind: FrameType::SETTINGS,
                    what,
                    value: u64::from(value),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(flags: u8, length: u32) -> Head {
        Head {
            length,
            kind: FrameType::SETTINGS,
            flags,
            stream_id: 0,
            reserved: false,
        }
    }

    #[test]
    fn walks_the_pairs() {
        let p = [0, 5, 0, 0, 0x40, 0, 0, 0xff, 0, 0, 0, 1];
        let h = head(0, 12);
        let s = Settings::load(&h, &p);
        let v: Vec<_> = s.iter().collect();
        assert_eq!(v, vec![(SettingId::MAX_FRAME_SIZE, 16384), (SettingId(0xff), 1)]);
        assert_eq!(SettingId(0xff).to_string(), "UNKNOWN(0xff)");
        assert!(s.check(&h).is_ok());
    }

    #[test]
    fn bad_lengths_values_and_acks_are_reported() {
        let h = head(0, 7);
        let p = [0u8; 7];
        let s = Settings::load(&h, &p);
        assert_eq!(s.iter().count(), 1);
        assert!(s.check(&h).is_err());
        let h = head(1, 6);
        assert!(Settings::load(&h, &[0, 1, 0, 0, 0, 0]).check(&h).is_err());
        let h = head(0, 6);
        assert!(Settings::load(&h, &[0, 2, 0, 0, 0, 2]).check(&h).is_err());
        assert!(Settings::load(&h, &[0, 5, 0, 0, 0, 2]).check(&h).is_err());
        assert!(Settings::load(&h, &[0, 4, 0x80, 0, 0, 0]).check(&h).is_err());
    }
}
