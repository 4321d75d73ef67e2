//! PUSH_PROMISE (RFC 9113 §6.6): optional padding, the promised stream id, then a header block fragment.

use super::{FrameError, Head, be_u32, check_stream_id, data, flags};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PushPromise {
    pub end_headers: bool,
    pub pad_len: Option<u8>,
    /// `None` when the payload is too short to hold it.
    pub promised_stream_id: Option<u32>,
}

impl PushPromise {
    pub fn load(head: &Head, prefix: &[u8]) -> PushPromise {
        let padded = usize::from(head.flags & flags::PADDED != 0);
        PushPromise {
            end_headers: head.flags & flags::END_HEADERS != 0,
            pad_len: (padded == 1).then(|| prefix.first().copied().unwrap_or(0)),
            promised_stream_id: be_u32(prefix, padded).map(|v| v & 0x7fff_ffff),
        }
    }

    pub fn fragment<'a>(head: &Head, payload: &'a [u8]) -> (&'a [u8], Result<(), FrameError>) {
        let (b, err) = data::split(head, payload);
        (data::slice(payload, &b), err)
    }

    pub fn check(head: &Head) -> Result<(), FrameError> {
        check_stream_id(head, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frame::FrameType;

    #[test]
    fn reads_the_promised_stream() {
        let head = Head {
            length: 7,
            kind: FrameType::PUSH_PROMISE,
            flags: 0x4,
            stream_id: 1,
            reserved: false,
        };
        let payload = [0, 0, 0, 2, 0x82, 0x87, 0x84];
        let p = PushPromise::load(&head, &payload);
        assert_eq!(
            p,
            PushPromise {
                end_headers: true,
                pad_len: None,
                promised_stream_id: Some(2)
            }
        );
        assert_eq!(PushPromise::fragment(&head, &payload).0, &[0x82, 0x87, 0x84]);
        let padded = Head {
            length: 8,
            flags: 0xc,
            ..head
        };
        let p = PushPromise::load(&padded, &[3, 0, 0, 0, 4]);
        assert_eq!((p.pad_len, p.promised_stream_id), (Some(3), Some(4)));
        assert!(PushPromise::fragment(&padded, &[3, 0, 0, 0, 4, 1, 1, 1]).0.is_empty());
    }
}
