//! HEADERS (RFC 9113 §6.2): optional padding and priority fields around a header block fragment, on a stream.
//! The fragment is HPACK-decoded by the analyzer as it arrives.

use super::{FrameError, Head, Priority, check_stream_id, data, flags};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers {
    pub end_stream: bool,
    pub end_headers: bool,
    pub pad_len: Option<u8>,
    /// Present with the PRIORITY flag (and when the payload holds the 5 bytes).
    pub priority: Option<Priority>,
}

impl Headers {
    /// The fixed fields, read from the first payload bytes (`prefix`, at least
    /// [`prefix_len`](super::prefix_len) bytes when the frame is whole).
    pub fn load(head: &Head, prefix: &[u8]) -> Headers {
        let padded = usize::from(head.flags & flags::PADDED != 0);
        Headers {
            end_stream: head.flags & flags::END_STREAM != 0,
            end_headers: head.flags & flags::END_HEADERS != 0,
            pad_len: (padded == 1).then(|| prefix.first().copied().unwrap_or(0)),
            priority: if head.flags & flags::PRIORITY != 0 {
                prefix.get(padded..).and_then(Priority::load)
            } else {
                None
            },
        }
    }

    /// The header block fragment of a whole payload; empty (with the error) when the padding does not fit.
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
    fn reads_padding_and_priority_around_the_fragment() {
        let head = Head {
            length: 11,
            kind: FrameType::HEADERS,
            flags: flags::PADDED | flags::PRIORITY | flags::END_HEADERS,
            stream_id: 5,
            reserved: false,
        };
        let payload = [2, 0x80, 0, 0, 3, 255, 0x82, 0x86, 0x84, 0, 0];
        let h = Headers::load(&head, &payload);
        assert_eq!(h.pad_len, Some(2));
        assert_eq!(
            h.priority,
            Some(Priority {
                exclusive: true,
                dependency: 3,
                weight: 255
            })
        );
        assert!(h.end_headers && !h.end_stream);
        assert_eq!(Headers::fragment(&head, &payload), (&[0x82, 0x86, 0x84][..], Ok(())));
        let short = Head { length: 4, ..head };
        assert!(Headers::fragment(&short, &payload[..4]).1.is_err());
    }
}
