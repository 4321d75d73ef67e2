//! GOAWAY (RFC 9113 §6.8): last stream id, error code, then opaque debug data, on stream 0.

use super::{FrameError, Head, be_u32, check_stream_id};
use crate::http2::ErrorCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoAway<'a> {
    /// `None` when the payload (as captured) ends before the field.
    pub last_stream_id: Option<u32>,
    pub error: Option<ErrorCode>,
    /// The debug data present in `payload` (all of it, or what was captured).
    pub debug: &'a [u8],
}

impl<'a> GoAway<'a> {
    /// Reads the fields present in `payload`, which may be a prefix of the frame's payload.
    pub fn load(payload: &'a [u8]) -> GoAway<'a> {
        GoAway {
            last_stream_id: be_u32(payload, 0).map(|v| v & 0x7fff_ffff),
            error: be_u32(payload, 4).map(ErrorCode),
            debug: payload.get(8..).unwrap_or(&[]),
        }
    }

    pub fn check(head: &Head) -> Result<(), FrameError> {
        check_stream_id(head, true)?;
        if head.length < 8 {
            return Err(FrameError::Length {
                kind: head.kind,
                length: head.length,
                rule: "at least 8",
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frame::FrameType;

    #[test]
    fn reads_all_fields() {
        let p = [0x80, 0, 0, 3, 0, 0, 0, 0xb, b't', b'o', b'o'];
        let g = GoAway::load(&p);
        assert_eq!(g.last_stream_id, Some(3));
        assert_eq!(g.error, Some(ErrorCode::ENHANCE_YOUR_CALM));
        assert_eq!(g.debug, b"too");
    }

    #[test]
    fn truncated_payload_keeps_the_visible_fields() {
        let g = GoAway::load(&[0, 0, 0, 7, 0, 0]);
        assert_eq!((g.last_stream_id, g.error, g.debug), (Some(7), None, &[][..]));
        assert_eq!(GoAway::load(&[]).last_stream_id, None);
        let h = Head {
            length: 4,
            kind: FrameType::GOAWAY,
            flags: 0,
            stream_id: 0,
            reserved: false,
        };
        assert!(GoAway::check(&h).is_err());
        assert!(
            GoAway::check(&Head {
                length: 8,
                stream_id: 1,
                ..h
            })
            .is_err()
        );
        assert!(GoAway::check(&Head { length: 8, ..h }).is_ok());
    }
}
