//! The 9-byte frame header (RFC 9113 §4.1), and the plausibility rules used to find frame boundaries in a
//! stream joined mid-connection or after a gap.

use super::{FrameType, flags};

/// Length of the frame header.
pub const HEAD_LEN: usize = 9;
/// The largest length the 24-bit field can carry.
pub const MAX_FRAME_LEN: u32 = (1 << 24) - 1;
/// SETTINGS_MAX_FRAME_SIZE until the peer says otherwise (RFC 9113 §6.5.2).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 16_384;
/// The fewest header bytes that still give a frame's length, type and flags: a header cut shorter than this by
/// the capture (snapshot length, lost segment) cannot be followed.
pub const MIN_CUT_HEAD: usize = 5;

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Payload length (24 bits).
    pub length: u32,
    pub kind: FrameType,
    pub flags: u8,
    /// Stream identifier, reserved bit cleared.
    pub stream_id: u32,
    /// The reserved bit R was set (peers must not set it; receivers ignore it).
    pub reserved: bool,
}

impl Head {
    /// Reads a header; every 9-byte value is a header, so this cannot fail.
    pub fn parse(b: &[u8; HEAD_LEN]) -> Head {
        let [l0, l1, l2, kind, flags, s0, s1, s2, s3] = *b;
        let sid = u32::from_be_bytes([s0, s1, s2, s3]);
        Head {
            length: u32::from_be_bytes([0, l0, l1, l2]),
            kind: FrameType(kind),
            flags,
            stream_id: sid & 0x7fff_ffff,
            reserved: sid & 0x8000_0000 != 0,
        }
    }

    /// Reads a header from the start of `b`, if 9 bytes are there.
    pub fn from_prefix(b: &[u8]) -> Option<Head> {
        b.first_chunk::<HEAD_LEN>().map(Head::parse)
    }

    /// Reads a header of which only the first `b.len()` bytes were captured ([`MIN_CUT_HEAD`] to 8): length,
    /// type and flags are known; the stream identifier's missing low bytes read as zero (and the reserved bit as
    /// clear when its byte is missing). `None` when fewer than [`MIN_CUT_HEAD`] bytes are there.
    pub fn from_cut(b: &[u8]) -> Option<Head> {
        if b.len() < MIN_CUT_HEAD {
            return None;
        }
        let mut full = [0u8; HEAD_LEN];
        for (dst, src) in full.iter_mut().zip(b) {
            *dst = *src;
        }
        Some(Head::parse(&full))
    }

    /// Whether the type needs a non-zero stream identifier (stream frames), as opposed to the connection-level
    /// SETTINGS, PING and GOAWAY (WINDOW_UPDATE may be either; unknown types say nothing).
    pub fn on_stream_type(&self) -> bool {
        matches!(
            self.kind,
            FrameType::DATA
                | FrameType::HEADERS
                | FrameType::PRIORITY
                | FrameType::RST_STREAM
                | FrameType::PUSH_PROMISE
                | FrameType::CONTINUATION
        )
    }

    /// [`Head::plausible_with`] for a header of which only `have` bytes were captured ([`Head::from_cut`]): the
    /// stream identifier is judged on its captured bytes only (a stream frame whose captured bytes are all zero
    /// may still be on a non-zero stream).
    pub fn plausible_cut(&self, have: usize, max_len: u32, strict_flags: bool) -> bool {
        if have >= HEAD_LEN {
            return self.plausible_with(max_len, strict_flags);
        }
        let mut h = *self;
        if h.stream_id == 0 && h.on_stream_type() {
            h.stream_id = 1;
        }
        h.plausible_with(max_len, strict_flags)
    }

    /// Serialises the header (tests and synthetic streams).
    pub fn to_bytes(&self) -> [u8; HEAD_LEN] {
        let [_, l0, l1, l2] = self.length.min(MAX_FRAME_LEN).to_be_bytes();
        let sid = (self.stream_id & 0x7fff_ffff) | if self.reserved { 0x8000_0000 } else { 0 };
        let [s0, s1, s2, s3] = sid.to_be_bytes();
        [l0, l1, l2, self.kind.0, self.flags, s0, s1, s2, s3]
    }

    /// Whether this header could start a real frame, judged strictly, for resynchronisation: a core type, no
    /// undefined flag, the reserved bit clear, a length within `max_len` that fits the type (SETTINGS a
    /// multiple of 6 and empty with ACK, PING 8, GOAWAY at least 8, RST_STREAM and WINDOW_UPDATE 4, PRIORITY
    /// 5), and the stream identifier the type needs (0 for SETTINGS, PING and GOAWAY; non-zero for stream
    /// frames). A stream found mid-connection is only trusted when two such headers follow each other.
    pub fn plausible(&self, max_len: u32) -> bool {
        self.plausible_with(max_len, true)
    }

    /// [`Head::plausible`], optionally letting undefined flags pass (receivers must ignore them, RFC 9113
    /// §4.1, and some peers and crafted captures set them).
    pub fn plausible_with(&self, max_len: u32, strict_flags: bool) -> bool {
        if self.reserved || self.length > max_len || !self.kind.is_core() {
            return false;
        }
        let Some(defined) = flags::defined(self.kind) else {
            return false;
        };
        if strict_flags && self.flags & !defined != 0 {
            return false;
        }
        let len = self.length;
        let on_stream = self.stream_id != 0;
        let fields = u32::try_from(super::prefix_len(self.kind, self.flags)).unwrap_or(u32::MAX);
        match self.kind {
            FrameType::DATA | FrameType::HEADERS | FrameType::PUSH_PROMISE => on_stream && len >= fields,
            FrameType::CONTINUATION => on_stream,
            FrameType::PRIORITY => on_stream && len == 5,
            FrameType::RST_STREAM => on_stream && len == 4,
            FrameType::SETTINGS => {
                !on_stream
                    && if self.flags & flags::ACK != 0 {
                        len == 0
                    } else {
                        len % 6 == 0
                    }
            }
            FrameType::PING => !on_stream && len == 8,
            FrameType::GOAWAY => !on_stream && len >= 8,
            FrameType::WINDOW_UPDATE => len == 4,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_writes_the_nine_bytes() {
        let b = [0x00, 0x40, 0x01, 0x01, 0x25, 0x80, 0x00, 0x00, 0x03];
        let h = Head::parse(&b);
        assert_eq!(h.length, 0x4001);
        assert_eq!(h.kind, FrameType::HEADERS);
        assert_eq!(h.flags, 0x25);
        assert_eq!(h.stream_id, 3);
        assert!(h.reserved);
        assert_eq!(h.to_bytes(), b);
        assert_eq!(Head::from_prefix(&b[..8]), None);
    }

    #[test]
    fn plausibility_follows_the_type_rules() {
        let h = |kind: u8, flags: u8, length: u32, stream_id: u32| Head {
            length,
            kind: FrameType(kind),
            flags,
            stream_id,
            reserved: false,
        };
        let max = DEFAULT_MAX_FRAME_SIZE;
        assert!(h(4, 0, 18, 0).plausible(max));
        assert!(!h(4, 0, 17, 0).plausible(max));
        assert!(!h(4, 1, 6, 0).plausible(max));
        assert!(!h(4, 0, 6, 1).plausible(max));
        assert!(h(6, 1, 8, 0).plausible(max));
        assert!(!h(6, 0, 9, 0).plausible(max));
        assert!(h(0, 1, 100, 1).plausible(max));
        assert!(!h(0, 0, 100, 0).plausible(max));
        assert!(!h(0, 2, 100, 1).plausible(max));
        assert!(!h(0, 0, max + 1, 1).plausible(max));
        assert!(h(7, 0, 8, 0).plausible(max));
        assert!(!h(7, 0, 7, 0).plausible(max));
        assert!(!h(0xa, 0, 8, 0).plausible(max));
        assert!(!h(1, 0x28, 5, 1).plausible(max));
        assert!(h(1, 0x28, 6, 1).plausible(max));
        let mut r = h(8, 0, 4, 0);
        assert!(r.plausible(max));
        r.reserved = true;
        assert!(!r.plausible(max));
    }

    #[test]
    fn a_cut_header_keeps_length_type_and_flags() {
        let max = DEFAULT_MAX_FRAME_SIZE;
        assert_eq!(Head::from_cut(&[0, 0, 8, 6]), None);
        // PING ACK, 8 of 9 bytes: stream id bytes 0, 0, 0 seen.
        let p = Head::from_cut(&[0, 0, 8, 6, 1, 0, 0, 0]).unwrap();
        assert_eq!((p.length, p.kind, p.flags, p.stream_id), (8, FrameType::PING, 1, 0));
        assert!(p.plausible_cut(8, max, true));
        // A PING whose captured stream id bytes are not zero is not on stream 0.
        let q = Head::from_cut(&[0, 0, 8, 6, 0, 0, 0, 1]).unwrap();
        assert!(!q.plausible_cut(8, max, true));
        // DATA with the stream id's low byte missing: may be on stream 1..255.
        let d = Head::from_cut(&[0, 0, 100, 0, 1, 0, 0, 0]).unwrap();
        assert_eq!(d.stream_id, 0);
        assert!(d.plausible_cut(8, max, true));
        assert!(!d.plausible(max));
        // Five bytes: the reserved bit is unknown, taken as clear.
        let s = Head::from_cut(&[0, 0, 6, 4, 0]).unwrap();
        assert!(!s.reserved && s.plausible_cut(5, max, true));
    }
}
