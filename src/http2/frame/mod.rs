//! HTTP/2 frames (RFC 9113 §4 and §6): one file per frame type, each with a `load` that reads only what the
//! payload holds and a `check` that says what breaks the RFC's rules.
//!
//! The decoders here are for a passive analyzer, so they are lenient in a precise way:
//! - `load` never fails and never panics: it takes the fields that are present (a GOAWAY cut by the snapshot
//!   length still gives its last stream id) and leaves the rest `None`;
//! - `check` reports the first rule the frame breaks ([`FrameError`]), for the "malformed" events; the frame
//!   is still shown.
//!
//! DATA, HEADERS, PUSH_PROMISE and CONTINUATION carry content that may be large; the analyzer streams it and
//! uses [`prefix_len`] and [`content_bounds`] to find the content between the type's fixed fields and the
//! padding without holding the whole payload. The other types are small and read whole.

mod continuation;
mod data;
mod extension;
mod goaway;
mod head;
mod headers;
mod ping;
mod priority;
mod push_promise;
mod rst_stream;
mod settings;
mod window_update;

pub use continuation::Continuation;
pub use data::Data;
pub use extension::{AltSvc, Origin, PriorityUpdate};
pub use goaway::GoAway;
pub use head::{DEFAULT_MAX_FRAME_SIZE, HEAD_LEN, Head, MAX_FRAME_LEN, MIN_CUT_HEAD};
pub use headers::Headers;
pub use ping::Ping;
pub use priority::Priority;
pub use push_promise::PushPromise;
pub use rst_stream::RstStream;
pub use settings::{SettingId, Settings};
pub use window_update::WindowUpdate;

use std::fmt;

/// A frame type (RFC 9113 §6 and the extension registry), open: unknown types are kept, skipped and printed
/// as `UNKNOWN(0x..)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FrameType(pub u8);

impl FrameType {
    pub const DATA: FrameType = FrameType(0x0);
    pub const HEADERS: FrameType = FrameType(0x1);
    pub const PRIORITY: FrameType = FrameType(0x2);
    pub const RST_STREAM: FrameType = FrameType(0x3);
    pub const SETTINGS: FrameType = FrameType(0x4);
    pub const PUSH_PROMISE: FrameType = FrameType(0x5);
    pub const PING: FrameType = FrameType(0x6);
    pub const GOAWAY: FrameType = FrameType(0x7);
    pub const WINDOW_UPDATE: FrameType = FrameType(0x8);
    pub const CONTINUATION: FrameType = FrameType(0x9);
    /// RFC 7838.
    pub const ALTSVC: FrameType = FrameType(0xa);
    /// RFC 8336.
    pub const ORIGIN: FrameType = FrameType(0xc);
    /// RFC 9218.
    pub const PRIORITY_UPDATE: FrameType = FrameType(0x10);

    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "DATA",
            0x1 => "HEADERS",
            0x2 => "PRIORITY",
            0x3 => "RST_STREAM",
            0x4 => "SETTINGS",
            0x5 => "PUSH_PROMISE",
            0x6 => "PING",
            0x7 => "GOAWAY",
            0x8 => "WINDOW_UPDATE",
            0x9 => "CONTINUATION",
            0xa => "ALTSVC",
            0xc => "ORIGIN",
            0x10 => "PRIORITY_UPDATE",
            _ => return None,
        })
    }

    /// One of the ten RFC 9113 core types (the only ones trusted when resynchronising).
    pub fn is_core(self) -> bool {
        self.0 <= 0x9
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "UNKNOWN(0x{:02x})", self.0),
        }
    }
}

/// Flag bits (RFC 9113 §6). The same bit means different things per type (0x1 is END_STREAM or ACK).
pub mod flags {
    use super::FrameType;

    pub const END_STREAM: u8 = 0x1;
    pub const ACK: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const PADDED: u8 = 0x8;
    pub const PRIORITY: u8 = 0x20;

    /// The flags the RFC defines for a type; `None` for types we do not know.
    pub fn defined(kind: FrameType) -> Option<u8> {
        Some(match kind {
            FrameType::DATA => END_STREAM | PADDED,
            FrameType::HEADERS => END_STREAM | END_HEADERS | PADDED | PRIORITY,
            FrameType::SETTINGS | FrameType::PING => ACK,
            FrameType::PUSH_PROMISE => END_HEADERS | PADDED,
            FrameType::CONTINUATION => END_HEADERS,
            FrameType::PRIORITY
            | FrameType::RST_STREAM
            | FrameType::GOAWAY
            | FrameType::WINDOW_UPDATE
            | FrameType::ALTSVC
            | FrameType::ORIGIN
            | FrameType::PRIORITY_UPDATE => 0,
            _ => return None,
        })
    }
}

/// A rule of RFC 9113 a frame breaks. The frame is still decoded as far as possible.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The payload length breaks the type's rule (`rule` says what it must be).
    Length {
        kind: FrameType,
        length: u32,
        rule: &'static str,
    },
    /// The stream identifier breaks the type's rule.
    StreamId {
        kind: FrameType,
        stream_id: u32,
        rule: &'static str,
    },
    /// The pad length does not fit in the payload.
    Padding { kind: FrameType, pad_len: u8, length: u32 },
    /// A field holds a value the RFC forbids.
    Value {
        kind: FrameType,
        what: &'static str,
        value: u64,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Length { kind, length, rule } => {
                write!(f, "{kind}: length {length}, must be {rule}")
            }
            FrameError::StreamId { kind, stream_id, rule } => {
                write!(f, "{kind}: stream id {stream_id}, must be {rule}")
            }
            FrameError::Padding { kind, pad_len, length } => {
                write!(
                    f,
                    "{kind}: pad length {pad_len} does not fit in a {length}-byte payload"
                )
            }
            FrameError::Value { kind, what, value } => write!(f, "{kind}: {what} ({value})"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Checks the stream-identifier rule of a connection-level (`zero`) or stream-level frame.
pub(crate) fn check_stream_id(head: &Head, zero: bool) -> Result<(), FrameError> {
    match (zero, head.stream_id == 0) {
        (true, false) => Err(FrameError::StreamId {
            kind: head.kind,
            stream_id: head.stream_id,
            rule: "0",
        }),
        (false, true) => Err(FrameError::StreamId {
            kind: head.kind,
            stream_id: 0,
            rule: "non-zero",
        }),
        _ => Ok(()),
    }
}

/// Checks a fixed payload length.
pub(crate) fn check_len(head: &Head, len: u32, rule: &'static str) -> Result<(), FrameError> {
    if head.length == len {
        Ok(())
    } else {
        Err(FrameError::Length {
            kind: head.kind,
            length: head.length,
            rule,
        })
    }
}

/// How many payload bytes come before a streamed frame's content: the pad length byte and the type's fixed
/// fields (HEADERS priority, PUSH_PROMISE promised stream). 0 for the other types.
pub fn prefix_len(kind: FrameType, flags: u8) -> usize {
    let padded = usize::from(flags & flags::PADDED != 0);
    match kind {
        FrameType::DATA => padded,
        FrameType::HEADERS => padded + if flags & flags::PRIORITY != 0 { 5 } else { 0 },
        FrameType::PUSH_PROMISE => padded + 4,
        _ => 0,
    }
}

/// Where the content of a padded frame lies in its payload, `start..end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    pub start: u32,
    pub end: u32,
    /// The pad length when the PADDED flag is set.
    pub pad_len: Option<u8>,
}

/// Finds the content of a DATA, HEADERS or PUSH_PROMISE frame from its first [`prefix_len`] payload bytes
/// (`prefix` may be longer; a missing pad length byte reads as 0). A payload too short for the type's fields or
/// its padding is an error.
pub fn content_bounds(head: &Head, prefix: &[u8]) -> Result<Bounds, FrameError> {
    let need = u32::try_from(prefix_len(head.kind, head.flags)).unwrap_or(u32::MAX);
    if head.length < need {
        return Err(FrameError::Length {
            kind: head.kind,
            length: head.length,
            rule: "long enough for its fields",
        });
    }
    let pad_len = (head.flags & flags::PADDED != 0).then(|| prefix.first().copied().unwrap_or(0));
    let pad = u32::from(pad_len.unwrap_or(0));
    match (head.length - need).checked_sub(pad) {
        Some(content) => Ok(Bounds {
            start: need,
            end: need + content,
            pad_len,
        }),
        None => Err(FrameError::Padding {
            kind: head.kind,
            pad_len: pad_len.unwrap_or(0),
            length: head.length,
        }),
    }
}

/// Reads a big-endian u32 at `at`, if the bytes are there.
pub(crate) fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..)?.first_chunk::<4>().map(|c| u32::from_be_bytes(*c))
}

/// Formats bytes for humans: printable ASCII as is, the rest as `\xNN` (and `\\` for a backslash).
pub fn escape_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(char::from(c)),
            _ => {
                use std::fmt::Write;
                let _ = write!(s, "\\x{c:02x}");
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(kind: FrameType, flags: u8, length: u32) -> Head {
        Head {
            length,
            kind,
            flags,
            stream_id: 1,
            reserved: false,
        }
    }

    #[test]
    fn frame_types_print_rfc_names_and_unknown_in_hex() {
        assert_eq!(FrameType::GOAWAY.to_string(), "GOAWAY");
        assert_eq!(FrameType(0x10).to_string(), "PRIORITY_UPDATE");
        assert_eq!(FrameType(0xb).to_string(), "UNKNOWN(0x0b)");
        assert_eq!(FrameType(0xff).to_string(), "UNKNOWN(0xff)");
    }

    #[test]
    fn content_bounds_skip_fields_and_padding() {
        let h = head(FrameType::HEADERS, flags::PADDED | flags::PRIORITY, 20);
        let b = content_bounds(&h, &[4, 0, 0, 0, 3, 15]).unwrap();
        assert_eq!(
            b,
            Bounds {
                start: 6,
                end: 16,
                pad_len: Some(4)
            }
        );
        let d = head(FrameType::DATA, 0, 7);
        assert_eq!(
            content_bounds(&d, &[]).unwrap(),
            Bounds {
                start: 0,
                end: 7,
                pad_len: None
            }
        );
    }

    #[test]
    fn padding_longer_than_the_payload_is_an_error() {
        let h = head(FrameType::DATA, flags::PADDED, 5);
        assert_eq!(
            content_bounds(&h, &[5]),
            Err(FrameError::Padding {
                kind: FrameType::DATA,
                pad_len: 5,
                length: 5
            })
        );
        let h = head(FrameType::DATA, flags::PADDED, 0);
        assert!(content_bounds(&h, &[]).is_err());
        let h = head(FrameType::PUSH_PROMISE, 0, 3);
        assert!(content_bounds(&h, &[0, 0, 0]).is_err());
    }

    #[test]
    fn escape_keeps_text_and_hexes_the_rest() {
        assert_eq!(escape_bytes(b"shutdown\0"), "shutdown\\x00");
        assert_eq!(escape_bytes(b"a\\b\n"), "a\\\\b\\x0a");
    }
}
