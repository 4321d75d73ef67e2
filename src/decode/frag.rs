//! IPv4 and IPv6 fragment reassembly, bounded.
//!
//! Limits (all fixed):
//! - at most [`MAX_PENDING`] datagrams in progress; a new one evicts the oldest;
//! - a datagram is at most [`MAX_DATAGRAM`] bytes (65535, the largest IP payload without jumbograms); a fragment
//!   reaching past that is dropped;
//! - at most [`MAX_PIECES`] disjoint pieces per datagram (overlapping and adjacent pieces merge);
//! - a datagram not completed [`TIMEOUT`] (30 s, Linux's `ipfrag_time`) of packet time after its last fragment
//!   is dropped.
//!
//! So the table holds at most `MAX_PENDING × MAX_DATAGRAM` bytes (1 MiB), allocated once per slot on first use
//! and reused. Overlaps are resolved by the later fragment (checksums are not verified, so there is no better
//! choice); the result is a view, not a verdict on which copy the receiver used.

use super::IpHeader;
use crate::ts::{Dur, Ts};
use std::net::IpAddr;

pub const MAX_PENDING: usize = 16;
pub const MAX_DATAGRAM: usize = 65_535;
pub const MAX_PIECES: usize = 64;
pub const TIMEOUT: Dur = Dur::from_secs(30);

/// Identifies the fragments of one datagram (RFC 791: source, destination, protocol, id; RFC 8200: source,
/// destination, id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Key {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    /// IPv4 protocol; 0 for IPv6.
    pub proto: u8,
}

struct Slot {
    key: Option<Key>,
    last_seen: Ts,
    buf: Vec<u8>,
    /// Disjoint, sorted [start, end) pieces received.
    pieces: Vec<(u32, u32)>,
    /// Payload length, known once the last fragment (more = false) arrived.
    total: Option<u32>,
    count: u16,
    /// The IP header and transport protocol of the first fragment (offset 0).
    first: Option<(IpHeader, u8)>,
}

/// The outcome of adding one fragment.
pub(crate) enum Added {
    /// The datagram is complete: its slot index (read it with [`Reassembler::datagram`]).
    Complete(usize),
    /// Held for more fragments.
    Pending,
    /// Not usable (too long, inconsistent, too many pieces); the fragment is reported as a piece.
    Dropped,
}

#[derive(Default)]
pub(crate) struct Reassembler {
    slots: Vec<Slot>,
}

impl std::fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pending = self.slots.iter().filter(|s| s.key.is_some()).count();
        f.debug_struct("Reassembler").field("pending", &pending).finish()
    }
}

impl Reassembler {
    /// Adds a fragment: `offset` in bytes, `more` the MF flag, `data` its payload (as captured, which must be all
    /// of it: a fragment cut by the snapshot length cannot be reassembled). `first` is the IP header and
    /// transport protocol when this is the fragment at offset 0.
    pub(crate) fn add(
        &mut self,
        key: Key,
        ts: Ts,
        offset: u32,
        more: bool,
        data: &[u8],
        first: Option<(IpHeader, u8)>,
    ) -> Added {
        let Ok(len) = u32::try_from(data.len()) else {
            return Added::Dropped;
        };
        let end = offset.saturating_add(len);
        if end as usize > MAX_DATAGRAM {
            return Added::Dropped;
        }
        // Expire stale datagrams (packet time).
        for s in &mut self.slots {
            if s.key.is_some() && ts.since(s.last_seen) > TIMEOUT {
                s.key = None;
            }
        }
        let idx = match self.slots.iter().position(|s| s.key == Some(key)) {
            Some(i) => i,
            None => {
                let i = match self.slots.iter().position(|s| s.key.is_none()) {
                    Some(i) => i,
                    None if self.slots.len() < MAX_PENDING => {
                        self.slots.push(Slot {
                            key: None,
                            last_seen: ts,
                            buf: vec![0; MAX_DATAGRAM],
                            pieces: Vec::with_capacity(MAX_PIECES + 1),
                            total: None,
                            count: 0,
                            first: None,
                        });
                        self.slots.len() - 1
                    }
                    None => {
                        // Evict the datagram that waited longest.
                        let mut oldest = 0;
                        for (i, s) in self.slots.iter().enumerate() {
                            if self.slots.get(oldest).is_some_and(|o| s.last_seen < o.last_seen) {
                                oldest = i;
                            }
                        }
                        oldest
                    }
                };
                let Some(s) = self.slots.get_mut(i) else {
                    return Added::Dropped;
                };
                s.key = Some(key);
                s.pieces.clear();
                s.total = None;
                s.count = 0;
                s.first = None;
                i
            }
        };
        let Some(s) = self.slots.get_mut(idx) else {
            return Added::Dropped;
        };
        s.last_seen = ts;
        s.count = s.count.saturating_add(1);
        if !more {
            if s.total.is_some_and(|t| t != end) {
                s.key = None;
                return Added::Dropped;
            }
            s.total = Some(end);
        }
        if first.is_some() {
            s.first = first;
        }
        if let Some(dst) = s.buf.get_mut(offset as usize..end as usize) {
            dst.copy_from_slice(data);
        }
        if !insert_piece(&mut s.pieces, offset, end) {
            s.key = None;
            return Added::Dropped;
        }
        match (s.total, s.pieces.as_slice(), s.first) {
            (Some(t), [(0, e)], Some(_)) if *e == t => {
                s.key = None;
                Added::Complete(idx)
            }
            (Some(t), _, _) if s.pieces.last().is_some_and(|p| p.1 > t) => {
                s.key = None;
                Added::Dropped
            }
            _ => Added::Pending,
        }
    }

    /// A completed datagram: its payload, the first fragment's IP header and transport protocol, and the number
    /// of fragments used.
    pub(crate) fn datagram(&self, idx: usize) -> Option<(&[u8], IpHeader, u8, u16)> {
        let s = self.slots.get(idx)?;
        let total = s.total? as usize;
        let (hdr, proto) = s.first?;
        Some((s.buf.get(..total)?, hdr, proto, s.count))
    }
}

/// Inserts [start, end) into sorted disjoint pieces, merging overlaps and neighbours. False when the list is full.
fn insert_piece(p: &mut Vec<(u32, u32)>, start: u32, end: u32) -> bool {
    if start >= end {
        return true;
    }
    let mut s = start;
    let mut e = end;
    // Remove every piece that overlaps or touches [s, e), widening it.
    let mut i = 0;
    while i < p.len() {
        let Some(&(a, b)) = p.get(i) else { break };
        if b < s || a > e {
            i += 1;
            continue;
        }
        s = s.min(a);
        e = e.max(b);
        p.remove(i);
    }
    if p.len() >= MAX_PIECES {
        return false;
    }
    let at = p.iter().position(|&(a, _)| a > s).unwrap_or(p.len());
    p.insert(at, (s, e));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Fragment;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> Key {
        Key {
            src: IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)),
            dst: IpAddr::V4(Ipv4Addr::new(5, 6, 7, 8)),
            id,
            proto: 6,
        }
    }

    fn hdr() -> IpHeader {
        IpHeader {
            src: key(0).src,
            dst: key(0).dst,
            ttl: 64,
            id: Some(1),
            dont_fragment: false,
            tos: 0,
            fragment: Fragment::None,
        }
    }

    #[test]
    fn out_of_order_and_overlap() {
        let mut r = Reassembler::default();
        let t = Ts::from_nanos(0);
        assert!(matches!(r.add(key(1), t, 16, false, &[3; 8], None), Added::Pending));
        assert!(matches!(r.add(key(1), t, 8, true, &[2; 12], None), Added::Pending));
        let Added::Complete(i) = r.add(key(1), t, 0, true, &[1; 8], Some((hdr(), 6))) else {
            panic!()
        };
        let (d, _, proto, count) = r.datagram(i).unwrap();
        assert_eq!(d.len(), 24);
        assert_eq!((proto, count), (6, 3));
        assert_eq!(&d[..9], &[1, 1, 1, 1, 1, 1, 1, 1, 2]);
        // The later fragment wins where they overlap (bytes 16..20).
        assert_eq!((d[19], d[20], d[23]), (2, 3, 3));
    }

    #[test]
    fn bounded_and_timed_out() {
        let mut r = Reassembler::default();
        for id in 0..100 {
            r.add(
                key(id),
                Ts::from_nanos(i64::from(id)),
                0,
                true,
                &[0; 8],
                Some((hdr(), 6)),
            );
        }
        assert_eq!(r.slots.len(), MAX_PENDING);
        // The first datagrams were evicted: their tail completes nothing.
        assert!(matches!(
            r.add(key(0), Ts::from_nanos(200), 8, false, &[0; 8], None),
            Added::Pending
        ));
        // id 99 is still there.
        assert!(matches!(
            r.add(key(99), Ts::from_nanos(201), 8, false, &[0; 8], None),
            Added::Complete(_)
        ));
        // Timeout in packet time.
        r.add(key(500), Ts::from_nanos(0), 0, true, &[0; 8], Some((hdr(), 6)));
        let later = Ts::from_nanos(0).plus(Dur::from_secs(31));
        assert!(matches!(
            r.add(key(500), later, 8, false, &[0; 8], None),
            Added::Pending
        ));
        assert!(matches!(
            r.add(key(7), later, 65_530, false, &[0; 8], None),
            Added::Dropped
        ));
    }

    #[test]
    fn pieces_merge() {
        let mut p = Vec::new();
        assert!(insert_piece(&mut p, 10, 20));
        assert!(insert_piece(&mut p, 30, 40));
        assert!(insert_piece(&mut p, 20, 30));
        assert_eq!(p, vec![(10, 40)]);
        assert!(insert_piece(&mut p, 0, 5));
        assert!(insert_piece(&mut p, 3, 12));
        assert_eq!(p, vec![(0, 40)]);
        let mut p = Vec::new();
        for i in 0..MAX_PIECES as u32 {
            assert!(insert_piece(&mut p, i * 10, i * 10 + 5));
        }
        assert!(!insert_piece(&mut p, 10_000, 10_005));
    }
}
