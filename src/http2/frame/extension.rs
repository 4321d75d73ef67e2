//! Extension frames with names in the registry: ALTSVC (RFC 7838), ORIGIN (RFC 8336), PRIORITY_UPDATE
//! (RFC 9218). They are shown, never acted upon.

use super::be_u32;

/// ALTSVC: origin (stream 0) and the Alt-Svc field value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AltSvc<'a> {
    pub origin: &'a [u8],
    pub value: &'a [u8],
}

impl<'a> AltSvc<'a> {
    pub fn load(payload: &'a [u8]) -> Option<AltSvc<'a>> {
        let len = payload
            .first_chunk::<2>()
            .map(|b| usize::from(u16::from_be_bytes(*b)))?;
        let origin = payload.get(2..2 + len)?;
        Some(AltSvc {
            origin,
            value: payload.get(2 + len..).unwrap_or(&[]),
        })
    }
}

/// ORIGIN: a list of length-prefixed ASCII origins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin<'a> {
    raw: &'a [u8],
}

impl<'a> Origin<'a> {
    pub fn load(payload: &'a [u8]) -> Origin<'a> {
        Origin { raw: payload }
    }

    /// The complete entries in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let mut rest = self.raw;
        std::iter::from_fn(move || {
            let len = rest.first_chunk::<2>().map(|b| usize::from(u16::from_be_bytes(*b)))?;
            let entry = rest.get(2..2 + len)?;
            rest = rest.get(2 + len..).unwrap_or(&[]);
            Some(entry)
        })
    }
}

/// PRIORITY_UPDATE: the stream whose priority changes and a Priority field value (`u=3, i`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PriorityUpdate<'a> {
    pub prioritized_stream_id: u32,
    pub field_value: &'a [u8],
}

impl<'a> PriorityUpdate<'a> {
    pub fn load(payload: &'a [u8]) -> Option<PriorityUpdate<'a>> {
        Some(PriorityUpdate {
            prioritized_stream_id: be_u32(payload, 0)? & 0x7fff_ffff,
            field_value: payload.get(4..).unwrap_or(&[]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_payloads() {
        let a = AltSvc::load(b"\x00\x03abch2=\":443\"").unwrap();
        assert_eq!((a.origin, a.value), (&b"abc"[..], &b"h2=\":443\""[..]));
        assert_eq!(AltSvc::load(b"\x00\x09ab"), None);
        let o = Origin::load(b"\x00\x01a\x00\x02bc\x00\x09x");
        assert_eq!(o.iter().collect::<Vec<_>>(), vec![&b"a"[..], &b"bc"[..]]);
        let p = PriorityUpdate::load(b"\x00\x00\x00\x05u=1").unwrap();
        assert_eq!((p.prioritized_stream_id, p.field_value), (5, &b"u=1"[..]));
    }
}
