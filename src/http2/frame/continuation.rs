//! CONTINUATION (RFC 9113 §6.10): more of a header block, on the same stream, until END_HEADERS. Its payload
//! is all fragment.

use super::{FrameError, Head, check_stream_id, flags};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Continuation {
    pub end_headers: bool,
}

impl Continuation {
    pub fn load(head: &Head) -> Continuation {
        Continuation {
            end_headers: head.flags & flags::END_HEADERS != 0,
        }
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
    fn end_headers_flag() {
        let h = Head {
            length: 0,
            kind: FrameType::CONTINUATION,
            flags: 0x4,
            stream_id: 1,
            reserved: false,
        };
        assert!(Continuation::load(&h).end_headers);
        assert!(Continuation::check(&Head { stream_id: 0, ..h }).is_err());
    }
}
