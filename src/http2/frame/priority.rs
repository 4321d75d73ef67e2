//! PRIORITY (RFC 9113 §6.3, deprecated but still sent): exclusive bit, stream dependency, weight. The same five
//! bytes follow the pad length in a HEADERS frame with the PRIORITY flag.

use super::{FrameError, Head, check_len, check_stream_id};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Priority {
    pub exclusive: bool,
    pub dependency: u32,
    /// The weight as sent (0–255); the RFC's weight is this plus one.
    pub weight: u8,
}

impl Priority {
    pub const LEN: u32 = 5;

    pub fn parse(b: &[u8; 5]) -> Priority {
        let [d0, d1, d2, d3, weight] = *b;
        let dep = u32::from_be_bytes([d0, d1, d2, d3]);
        Priority {
            exclusive: dep & 0x8000_0000 != 0,
            dependency: dep & 0x7fff_ffff,
            weight,
        }
    }

    /// The priority fields at the start of `payload`, if 5 bytes are there.
    pub fn load(payload: &[u8]) -> Option<Priority> {
        payload.first_chunk::<5>().map(Priority::parse)
    }

    /// Weight on the RFC's 1–256 scale.
    pub fn rfc_weight(&self) -> u16 {
        u16::from(self.weight) + 1
    }

    pub fn check(head: &Head, p: Option<&Priority>) -> Result<(), FrameError> {
        check_stream_id(head, false)?;
        check_len(head, Self::LEN, "5")?;
        if let Some(p) = p
            && p.dependency == head.stream_id
        {
            return Err(FrameError::Value {
                kind: head.kind,
                what: "stream depends on itself",
                value: u64::from(p.dependency),
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
    fn reads_the_fields() {
        let p = Priority::load(&[0x80, 0, 0, 3, 15]).unwrap();
        assert_eq!(
            p,
            Priority {
                exclusive: true,
                dependency: 3,
                weight: 15
            }
        );
        assert_eq!(p.rfc_weight(), 16);
        assert_eq!(Priority::load(&[0; 4]), None);
    }

    #[test]
    fn self_dependency_and_bad_length_are_reported() {
        let h = Head {
            length: 5,
            kind: FrameType::PRIORITY,
            flags: 0,
            stream_id: 3,
            reserved: false,
        };
        let p = Priority::load(&[0, 0, 0, 3, 0]).unwrap();
        assert!(Priority::check(&h, Some(&p)).is_err());
        assert!(Priority::check(&Head { length: 6, ..h }, None).is_err());
        assert!(Priority::check(&h, Priority::load(&[0, 0, 0, 1, 0]).as_ref()).is_ok());
    }
}
