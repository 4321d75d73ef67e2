//! WINDOW_UPDATE (RFC 9113 §6.9): a 31-bit increment, on the connection (stream 0) or a stream.

use super::{FrameError, FrameType, Head, be_u32, check_len};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowUpdate {
    /// `None` when fewer than 4 bytes are there.
    pub increment: Option<u32>,
}

impl WindowUpdate {
    pub fn load(payload: &[u8]) -> WindowUpdate {
        WindowUpdate {
            increment: be_u32(payload, 0).map(|v| v & 0x7fff_ffff),
        }
    }

    pub fn check(&self, head: &Head) -> Result<(), FrameError> {
        check_len(head, 4, "4")?;
        if self.increment == Some(0) {
            return Err(FrameError::Value {
                kind: FrameType::WINDOW_UPDATE,
                what: "increment must be non-zero",
                value: 0,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_increment_without_the_reserved_bit() {
        let w = WindowUpdate::load(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(w.increment, Some(0x7fff_ffff));
        let h = Head {
            length: 4,
            kind: FrameType::WINDOW_UPDATE,
            flags: 0,
            stream_id: 0,
            reserved: false,
        };
        assert!(w.check(&h).is_ok());
        assert!(WindowUpdate::load(&[0, 0, 0, 0]).check(&h).is_err());
        assert_eq!(WindowUpdate::load(&[1]).increment, None);
    }
}
