//! PING (RFC 9113 §6.7): 8 opaque bytes on stream 0; the ACK echoes them.

use super::{FrameError, Head, check_len, check_stream_id, flags};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ping {
    pub ack: bool,
    /// The opaque data as a big-endian u64; `None` when fewer than 8 bytes are there.
    pub opaque: Option<u64>,
}

impl Ping {
    pub const LEN: u32 = 8;

    pub fn load(head: &Head, payload: &[u8]) -> Ping {
        Ping {
            ack: head.flags & flags::ACK != 0,
            opaque: payload.first_chunk::<8>().map(|b| u64::from_be_bytes(*b)),
        }
    }

    pub fn check(head: &Head) -> Result<(), FrameError> {
        check_stream_id(head, true)?;
        check_len(head, Self::LEN, "8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http2::frame::FrameType;

    fn head(flags: u8, length: u32, stream_id: u32) -> Head {
        Head {
            length,
            kind: FrameType::PING,
            flags,
            stream_id,
            reserved: false,
        }
    }

    #[test]
    fn reads_opaque_and_ack() {
        let p = Ping::load(&head(1, 8, 0), &[2, 4, 16, 16, 9, 14, 7, 7]);
        assert_eq!(
            p,
            Ping {
                ack: true,
                opaque: Some(0x0204_1010_090e_0707)
            }
        );
        assert_eq!(Ping::check(&head(1, 8, 0)), Ok(()));
    }

    #[test]
    fn short_or_misplaced_pings_are_reported() {
        assert_eq!(Ping::load(&head(0, 7, 0), &[1; 7]).opaque, None);
        assert!(Ping::check(&head(0, 7, 0)).is_err());
        assert!(Ping::check(&head(0, 8, 3)).is_err());
    }
}
