//! DATA (RFC 9113 §6.1): optional padding around the content, on a stream. The analyzer streams DATA content
//! through (only counts and gRPC message prefixes are needed), so a huge DATA frame is never held; `load` is
//! for a payload already in hand.

use super::{Bounds, FrameError, Head, check_stream_id, content_bounds, flags};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Data<'a> {
    pub end_stream: bool,
    pub pad_len: Option<u8>,
    pub data: &'a [u8],
}

impl<'a> Data<'a> {
    /// The content of a whole payload; on a padding error the content is empty and the error is returned too.
    pub fn load(head: &Head, payload: &'a [u8]) -> (Data<'a>, Result<(), FrameError>) {
        let end_stream = head.flags & flags::END_STREAM != 0;
        let (b, err) = split(head, payload);
        let data = slice(payload, &b);
        (
            Data {
                end_stream,
                pad_len: b.pad_len,
                data,
            },
            err,
        )
    }

    pub fn check(head: &Head) -> Result<(), FrameError> {
        check_stream_id(head, false)
    }
}

/// Bounds of the content, or empty bounds and the error.
pub(crate) fn split(head: &Head, payload: &[u8]) -> (Bounds, Result<(), FrameError>) {
    match content_bounds(head, payload) {
        Ok(b) => (b, Ok(())),
        Err(e) => {
            let pad_len = (head.flags & flags::PADDED != 0).then(|| payload.first().copied().unwrap_or(0));
            (
                Bounds {
                    start: head.length,
                    end: head.length,
                    pad_len,
                },
                Err(e),
            )
        }
    }
}

/// The `bounds` part of `payload` (as far as it is there).
pub(crate) fn slice<'a>(payload: &'a [u8], b: &Bounds) -> &'a [u8] {
    let start = usize::try_from(b.start).unwrap_or(usize::MAX).min(payload.len());
    let end = usize::try_from(b.end).unwrap_or(usize::MAX).clamp(start, payload.len());
    payload.get(start..end).unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frame::FrameType;

    fn head(flags: u8, length: u32) -> Head {
        Head {
            length,
            kind: FrameType::DATA,
            flags,
            stream_id: 1,
            reserved: false,
        }
    }

    #[test]
    fn plain_and_padded_content() {
        let (d, e) = Data::load(&head(1, 3), b"abc");
        assert_eq!((d.data, d.end_stream, d.pad_len, e), (&b"abc"[..], true, None, Ok(())));
        let (d, e) = Data::load(&head(flags::PADDED, 6), &[2, b'h', b'i', b'!', 0, 0]);
        assert_eq!((d.data, d.pad_len, e), (&b"hi!"[..], Some(2), Ok(())));
    }

    #[test]
    fn bad_padding_gives_empty_content_and_an_error() {
        let (d, e) = Data::load(&head(flags::PADDED, 3), &[9, 1, 2]);
        assert_eq!(d.data, b"");
        assert!(e.is_err());
        assert!(
            Data::check(&Head {
                stream_id: 0,
                ..head(0, 0)
            })
            .is_err()
        );
    }
}
