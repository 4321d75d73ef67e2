//! Reassembly of one direction's byte stream.
//!
//! In-order bytes go straight from the packet to the [`StreamSink`] without a copy; only segments that arrive
//! ahead of a hole are buffered, up to a cap. Overlaps are resolved the way a receiver resolves them: bytes
//! already delivered win (a retransmission with different content does not rewrite history), and a buffered
//! segment keeps its bytes against a later overlapping one.
//!
//! A hole is given up on — announced to the sink with `on_gap` and skipped — when the receiver acknowledges
//! bytes past it (it got them; the capture did not), when the buffer cap is reached, or when the stream ends.
//! Bytes cut by the snapshot length are announced the same way.

use super::{Dir, SegMeta, StreamSink};
use crate::decode::SeqNum;
use std::collections::BTreeMap;

/// What a buffered segment costs besides its captured bytes (its map entry, node share and allocation), counted
/// against the cap so that the cap bounds memory whatever the segments look like: a segment whose payload the
/// snapshot length cut away costs no payload bytes, yet an entry.
pub const PENDING_OVERHEAD: usize = 64;

fn cost(data_len: usize) -> usize {
    data_len.saturating_add(PENDING_OVERHEAD)
}

/// A segment held ahead of a hole: its captured bytes, its length on the wire (more when the snapshot length
/// cut it) and its own packet, so bytes delivered later still name the packet that carried them.
#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    wire: u32,
    meta: SegMeta,
}

/// Reassembly state of one direction.
#[derive(Debug, Default)]
pub struct Reassembler {
    /// The next byte the sink expects; `None` until the stream's start is known.
    next: Option<SeqNum>,
    /// Absolute stream offset of `next` (bytes delivered or skipped so far), so buffered segments are keyed
    /// by a number that does not wrap.
    offset: u64,
    /// Segments ahead of `next`, by stream offset.
    pending: BTreeMap<u64, Pending>,
    /// Bytes held ahead of a hole, each segment counted with [`PENDING_OVERHEAD`].
    pending_bytes: usize,
    /// Most bytes buffered ahead of a hole.
    cap: usize,
    ended: bool,
    /// Bytes announced as gaps, and bytes dropped because the buffer was full.
    pub gap_bytes: u64,
    pub overflows: u64,
}

/// Why a gap was announced (for the caller's statistics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GapCause {
    SnapLen,
    Missing,
}

impl Reassembler {
    pub fn new(cap: usize) -> Reassembler {
        Reassembler {
            cap,
            ..Reassembler::default()
        }
    }

    /// The stream starts right after this SYN.
    pub fn set_syn(&mut self, isn: SeqNum) {
        if self.next.is_none() {
            self.next = Some(isn.add(1));
        }
    }

    /// Raises the buffer cap (to follow the receiver's window: a sender can have that much outstanding beyond
    /// a hole, so a smaller buffer would give up on holes a retransmission is about to fill). Never lowered.
    pub fn raise_cap(&mut self, cap: usize) {
        self.cap = self.cap.max(cap);
    }

    pub fn next(&self) -> Option<SeqNum> {
        self.next
    }

    pub fn ended(&self) -> bool {
        self.ended
    }

    /// A segment's payload. `wire_len` is its length on the wire (more than `data.len()` when the capture cut
    /// it). Returns the number of bytes announced as a snaplen gap.
    pub fn segment<S: StreamSink>(
        &mut self,
        dir: Dir,
        seq: SeqNum,
        data: &[u8],
        wire_len: u32,
        meta: SegMeta,
        sink: &mut S,
    ) -> u64 {
        if self.ended || wire_len == 0 {
            return 0;
        }
        let next = *self.next.get_or_insert(seq);
        let rel = i64::from(seq.diff(next));
        let wire = u64::from(wire_len);
        let end = rel.saturating_add(i64::try_from(wire).unwrap_or(i64::MAX));
        if end <= 0 {
            return 0; // entirely old: already delivered or skipped
        }
        if rel <= 0 {
            // In order (possibly overlapping what was delivered): deliver the new part.
            let skip = usize::try_from(-rel).unwrap_or(usize::MAX);
            let captured_new = data.get(skip..).unwrap_or(&[]);
            let wire_new = u64::try_from(end).unwrap_or(0);
            let mut cut = 0;
            if !captured_new.is_empty() {
                self.deliver(dir, captured_new, meta, sink);
            }
            let missing = wire_new.saturating_sub(captured_new.len() as u64);
            if missing > 0 {
                self.skip(dir, missing, meta, sink);
                cut = missing;
            }
            self.drain(dir, meta, sink);
            return cut;
        }
        // Ahead of a hole: buffer what was captured (bounded).
        let key = self.offset.saturating_add(u64::try_from(rel).unwrap_or(0));
        if rel > i64::from(i32::MAX / 2) {
            return 0; // absurdly far ahead: not this stream's data (or a crafted packet); ignore
        }
        if self.pending_bytes.saturating_add(cost(data.len())) > self.cap {
            self.overflows += 1;
            // Give up on the holes before this segment: deliver what is buffered below it, with gaps for the
            // holes, then skip to it. Each buffered entry is handled once (no recursion per entry: with
            // thousands of entries that overflowed the stack).
            while let Some(first) = self.pending.keys().next().copied().filter(|&f| f < key) {
                let missing = first.saturating_sub(self.offset);
                self.skip(dir, missing, meta, sink);
                self.drain(dir, meta, sink);
                if let Some(p) = self.pending.remove(&first) {
                    // Not drained (it lies behind the new position): dropped, to guarantee progress.
                    self.pending_bytes = self.pending_bytes.saturating_sub(cost(p.data.len()));
                }
            }
            let missing = key.saturating_sub(self.offset);
            self.skip(dir, missing, meta, sink);
            self.drain(dir, meta, sink);
            // Now in order (or already past): delivered by the in-order path, which never comes back here.
            return self.segment(dir, seq, data, wire_len, meta, sink);
        }
        match self.pending.get(&key) {
            // First wins, as in a receiver's out-of-order queue, unless the new segment covers more.
            Some(old) if old.wire >= wire_len => {}
            _ => {
                let old_cost = self.pending.get(&key).map_or(0, |p| cost(p.data.len()));
                self.pending_bytes = self
                    .pending_bytes
                    .saturating_sub(old_cost)
                    .saturating_add(cost(data.len()));
                self.pending.insert(
                    key,
                    Pending {
                        data: data.to_vec(),
                        wire: wire_len,
                        meta,
                    },
                );
            }
        }
        0
    }

    /// The receiver acknowledged up to `ack`: everything before it reached the receiver, so a hole before it
    /// will never be filled in this capture. `fin` is the sender's FIN sequence number when known: its slot
    /// is not a data byte.
    pub fn acked<S: StreamSink>(
        &mut self,
        dir: Dir,
        ack: SeqNum,
        fin: Option<SeqNum>,
        meta: SegMeta,
        sink: &mut S,
    ) -> u64 {
        let Some(next) = self.next else { return 0 };
        if self.ended {
            return 0;
        }
        let ack = match fin {
            Some(f) if ack.gt(f) => f,
            _ => ack,
        };
        let ahead = ack.diff(next);
        if ahead <= 0 || ahead > i32::MAX / 2 {
            return 0;
        }
        let ahead = u64::from(ahead.unsigned_abs());
        // Only a hole with nothing buffered at its start can be skipped; a FIN's sequence slot (one past the
        // data) must not count as a missing byte.
        let target = self.offset.saturating_add(ahead);
        let first_pending = self.pending.keys().next().copied();
        let until = match first_pending {
            Some(p) if p < target => p,
            _ => target,
        };
        let missing = until.saturating_sub(self.offset);
        if missing == 0 {
            return 0;
        }
        self.skip(dir, missing, meta, sink);
        self.drain(dir, meta, sink);
        missing
    }

    /// The direction ended (FIN, RST, or the connection is being finalized): flush what is buffered, with
    /// gaps for the holes, then tell the sink.
    pub fn end<S: StreamSink>(&mut self, dir: Dir, meta: SegMeta, sink: &mut S) {
        if self.ended {
            return;
        }
        while let Some((&key, _)) = self.pending.iter().next() {
            let missing = key.saturating_sub(self.offset);
            if missing > 0 {
                self.skip(dir, missing, meta, sink);
            }
            self.drain(dir, meta, sink);
            if self.pending.contains_key(&key) {
                // Could not drain (should not happen); drop it to guarantee progress.
                if let Some(v) = self.pending.remove(&key) {
                    self.pending_bytes = self.pending_bytes.saturating_sub(cost(v.data.len()));
                }
            }
        }
        self.ended = true;
        sink.on_end(dir, meta);
    }

    fn deliver<S: StreamSink>(&mut self, dir: Dir, data: &[u8], meta: SegMeta, sink: &mut S) {
        sink.on_data(dir, data, meta);
        self.advance(data.len() as u64);
    }

    fn skip<S: StreamSink>(&mut self, dir: Dir, missing: u64, meta: SegMeta, sink: &mut S) {
        if missing == 0 {
            return;
        }
        sink.on_gap(dir, missing, meta);
        self.gap_bytes = self.gap_bytes.saturating_add(missing);
        self.advance(missing);
    }

    fn advance(&mut self, n: u64) {
        self.offset = self.offset.saturating_add(n);
        if let Some(next) = self.next.as_mut() {
            *next = next.add(n as u32);
        }
    }

    /// Deliver buffered segments that now follow on, each with its own packet.
    fn drain<S: StreamSink>(&mut self, dir: Dir, _meta: SegMeta, sink: &mut S) {
        while let Some((&key, _)) = self.pending.iter().next() {
            if key > self.offset {
                break;
            }
            let Some(p) = self.pending.remove(&key) else {
                break;
            };
            self.pending_bytes = self.pending_bytes.saturating_sub(cost(p.data.len()));
            let skip = usize::try_from(self.offset - key).unwrap_or(usize::MAX);
            if let Some(rest) = p.data.get(skip..)
                && !rest.is_empty()
            {
                self.deliver(dir, rest, p.meta, sink);
            }
            // The part the snapshot length cut away.
            let end = key.saturating_add(u64::from(p.wire));
            let cut = end.saturating_sub(self.offset);
            if cut > 0 {
                self.skip(dir, cut, p.meta, sink);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::PacketRef;
    use crate::ts::Ts;

    #[derive(Default)]
    struct Collect {
        out: Vec<u8>,
        gaps: Vec<u64>,
        ended: bool,
    }
    impl StreamSink for Collect {
        fn on_data(&mut self, _: Dir, data: &[u8], _: SegMeta) {
            self.out.extend_from_slice(data);
        }
        fn on_gap(&mut self, _: Dir, missing: u64, _: SegMeta) {
            self.gaps.push(missing);
            self.out.extend(std::iter::repeat_n(b'?', missing as usize));
        }
        fn on_end(&mut self, _: Dir, _: SegMeta) {
            self.ended = true;
        }
    }

    const M: SegMeta = SegMeta {
        at: PacketRef { file: 0, frame: 1 },
        ts: Ts::ZERO,
    };
    const D: Dir = Dir::ToServer;

    fn seg(r: &mut Reassembler, c: &mut Collect, seq: u32, data: &[u8]) {
        r.segment(D, SeqNum(seq), data, data.len() as u32, M, c);
    }

    #[test]
    fn in_order_and_out_of_order() {
        let mut r = Reassembler::new(1 << 20);
        let mut c = Collect::default();
        r.set_syn(SeqNum(99));
        seg(&mut r, &mut c, 100, b"hello ");
        seg(&mut r, &mut c, 111, b"!");
        seg(&mut r, &mut c, 106, b"world");
        assert_eq!(c.out, b"hello world!");
        seg(&mut r, &mut c, 100, b"HELLO "); // retransmission with other bytes: first wins
        assert_eq!(c.out, b"hello world!");
    }

    #[test]
    fn wraps_around_the_sequence_space() {
        let mut r = Reassembler::new(1 << 20);
        let mut c = Collect::default();
        r.set_syn(SeqNum(u32::MAX - 3));
        seg(&mut r, &mut c, u32::MAX - 2, b"abc");
        seg(&mut r, &mut c, 1, b"ef");
        seg(&mut r, &mut c, 0, b"d");
        assert_eq!(c.out, b"abcdef");
    }

    #[test]
    fn ack_past_a_hole_announces_a_gap() {
        let mut r = Reassembler::new(1 << 20);
        let mut c = Collect::default();
        r.set_syn(SeqNum(0));
        seg(&mut r, &mut c, 1, b"ab");
        seg(&mut r, &mut c, 6, b"fg");
        assert_eq!(r.acked(D, SeqNum(8), None, M, &mut c), 3);
        assert_eq!(c.out, b"ab???fg");
        // An ACK of the FIN slot right after the data is not a gap.
        assert_eq!(r.acked(D, SeqNum(9), Some(SeqNum(8)), M, &mut c), 0);
        // Without a FIN it is a missing byte.
        assert_eq!(r.acked(D, SeqNum(9), None, M, &mut c), 1);
    }

    #[test]
    fn snaplen_cut_is_a_gap() {
        let mut r = Reassembler::new(1 << 20);
        let mut c = Collect::default();
        r.set_syn(SeqNum(0));
        let cut = r.segment(D, SeqNum(1), b"abc", 10, M, &mut c);
        assert_eq!(cut, 7);
        seg(&mut r, &mut c, 11, b"z");
        assert_eq!(c.out, b"abc???????z");
    }

    #[test]
    fn buffer_cap_forces_progress() {
        let mut r = Reassembler::new(25);
        let mut c = Collect::default();
        r.set_syn(SeqNum(0));
        for i in 0..10u32 {
            r.segment(D, SeqNum(100 + i * 10), &[b'x'; 10], 10, M, &mut c);
        }
        assert!(r.overflows > 0);
        assert!(!c.gaps.is_empty());
        r.end(D, M, &mut c);
        assert!(c.ended);
        assert_eq!(r.pending_bytes, 0);
    }

    #[derive(Default)]
    struct Frames {
        chunks: Vec<(u64, Vec<u8>)>,
        gaps: Vec<(u64, u64)>,
    }
    impl StreamSink for Frames {
        fn on_data(&mut self, _: Dir, data: &[u8], m: SegMeta) {
            self.chunks.push((m.at.frame, data.to_vec()));
        }
        fn on_gap(&mut self, _: Dir, missing: u64, m: SegMeta) {
            self.gaps.push((m.at.frame, missing));
        }
        fn on_end(&mut self, _: Dir, _: SegMeta) {}
    }

    fn at(frame: u64) -> SegMeta {
        SegMeta {
            at: PacketRef { file: 0, frame },
            ts: Ts::ZERO,
        }
    }

    #[test]
    fn buffered_segments_keep_their_own_packet_and_snaplen_cut() {
        let mut r = Reassembler::new(1 << 20);
        let mut f = Frames::default();
        r.set_syn(SeqNum(0));
        // Frame 2 arrives ahead of frame 3's bytes and was cut by the snapshot length (4 of 10 bytes kept).
        r.segment(D, SeqNum(5), b"efgh", 10, at(2), &mut f);
        r.segment(D, SeqNum(1), b"abcd", 4, at(3), &mut f);
        assert_eq!(f.chunks, vec![(3, b"abcd".to_vec()), (2, b"efgh".to_vec())]);
        assert_eq!(f.gaps, vec![(2, 6)], "the cut part of frame 2 is a gap at frame 2");
        r.segment(D, SeqNum(15), b"z", 1, at(4), &mut f);
        assert_eq!(f.chunks.last(), Some(&(4, b"z".to_vec())));
    }

    #[test]
    fn end_flushes_holes() {
        let mut r = Reassembler::new(1 << 20);
        let mut c = Collect::default();
        r.set_syn(SeqNum(0));
        seg(&mut r, &mut c, 5, b"e");
        r.end(D, M, &mut c);
        assert_eq!(c.out, b"????e");
        seg(&mut r, &mut c, 6, b"late");
        assert_eq!(c.out, b"????e");
    }
}

#[cfg(test)]
mod robust_tests {
    use super::*;
    use crate::source::PacketRef;
    use crate::ts::Ts;

    struct Count(u64, u64);
    impl StreamSink for Count {
        fn on_data(&mut self, _: Dir, d: &[u8], _: SegMeta) {
            self.0 += d.len() as u64;
        }
        fn on_gap(&mut self, _: Dir, n: u64, _: SegMeta) {
            self.1 += n;
        }
        fn on_end(&mut self, _: Dir, _: SegMeta) {}
    }
    const M: SegMeta = SegMeta {
        at: PacketRef { file: 0, frame: 1 },
        ts: Ts::ZERO,
    };

    /// Segments whose payload the snapshot length cut away entirely (headers-only captures) cost no payload
    /// bytes, so they were never counted against the cap: a hole that is never filled (a one-sided capture) kept
    /// every later segment's entry, without bound. And once the buffer was full, giving up holes one entry at a
    /// time recursed once per such entry: 200 000 of them overflowed the stack.
    #[test]
    fn regression_reassembly_cut_segments_unbounded() {
        let mut r = Reassembler::new(256 * 1024);
        let mut c = Count(0, 0);
        r.set_syn(SeqNum(0));
        // Hole at 1; then 200 000 headers-only segments of 100 bytes on the wire.
        for i in 0..200_000u32 {
            r.segment(Dir::ToServer, SeqNum(2 + i * 100), &[], 100, M, &mut c);
            assert!(
                r.pending.len() <= 256 * 1024 / PENDING_OVERHEAD + 1,
                "{} entries",
                r.pending.len()
            );
        }
        // A buffer nearly full of real bytes, then one more segment: the overflow must not recurse per entry.
        let big = vec![7u8; 200 * 1024];
        r.segment(Dir::ToServer, SeqNum(40_000_000), &big, big.len() as u32, M, &mut c);
        r.segment(Dir::ToServer, SeqNum(41_000_000), &big, big.len() as u32, M, &mut c);
        assert!(r.overflows > 0);
        assert!(r.pending_bytes <= 256 * 1024);
        r.end(Dir::ToServer, M, &mut c);
        assert_eq!(r.pending_bytes, 0);
        assert!(r.pending.is_empty());
    }
}
