//! RST_STREAM (RFC 9113 §6.4): one error code, on a stream.

use super::{FrameError, Head, be_u32, check_len, check_stream_id};
use crate::http2::ErrorCode;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RstStream {
    /// `None` when fewer than 4 bytes are there.
    pub error: Option<ErrorCode>,
}

impl RstStream {
    pub fn load(payload: &[u8]) -> RstStream {
        RstStream {
            error: be_u32(payload, 0).map(ErrorCode),
        }
    }

    pub fn check(head: &Head) -> Result<(), FrameError> {
        check_stream_id(head, false)?;
        check_len(head, 4, "4")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frame::FrameType;

    #[test]
    fn reads_the_code_and_checks_the_rules() {
        assert_eq!(RstStream::load(&[0, 0, 0, 8]).error, Some(ErrorCode::CANCEL));
        assert_eq!(
            RstStream::load(&[0, 0, 1, 0]).error.map(|e| e.to_string()),
            Some("0x100".to_string())
        );
        assert_eq!(RstStream::load(&[0, 0]).error, None);
        let h = Head {
            length: 4,
            kind: FrameType::RST_STREAM,
            flags: 0,
            stream_id: 1,
            reserved: false,
        };
        assert!(RstStream::check(&h).is_ok());
        assert!(RstStream::check(&Head { stream_id: 0, ..h }).is_err());
        assert!(RstStream::check(&Head { length: 5, ..h }).is_err());
    }
}
