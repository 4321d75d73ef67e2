//! The connection table: 4-tuple → connection, roles, and the decisions of when a connection is over.
//!
//! Time here is packet time. A connection that closed (FIN both ways, or RST) is kept for a linger period so
//! late packets (the last ACK, a retransmitted FIN, a RST answering a FIN) still land in it; then its record is
//! made and its state freed. Two lazy min-heaps drive this without scanning the table: one of closing
//! deadlines, one of last activity (for idle eviction and for making room when the table is full; built only
//! once one of those is needed, as it orders the connections the same way whenever it is built).
//!
//! The hash is foldhash with a per-process random seed: fast on 4-tuples and not floodable by an attacker who
//! chooses addresses and ports (a SYN flood is exactly that). A closed connection's 4-tuple stays in the same
//! table as a tombstone, so that a packet costs one lookup whether its connection is open, lingering or gone.

use super::conn::{Conn, TcpConfig};
use super::record::{EndReason, Mark, RoleSource, TcpRecord};
use super::{Dir, StreamSink};
use crate::decode::{IcmpKind, IcmpMessage, IpHeader, TcpSegment};
use crate::ts::{Dur, Ts};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};

/// Both endpoints, lower one first, so either direction finds the connection: each address as 16 bytes (IPv4
/// told apart from IPv6 by a flag beside the port), in 40 bytes rather than two `SocketAddr`s' 64, hashed as
/// five words.
#[derive(Clone, Copy, Debug, Eq, PartialOrd, Ord)]
struct Key([u64; 5]);

/// Compared word by word without branches: the derived comparison of the array is a `memcmp` call, and this
/// comparison runs on every table lookup.
impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        let [a0, a1, a2, a3, a4] = self.0;
        let [b0, b1, b2, b3, b4] = other.0;
        ((a0 ^ b0) | (a1 ^ b1) | (a2 ^ b2) | (a3 ^ b3) | (a4 ^ b4)) == 0
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        for w in self.0 {
            state.write_u64(w);
        }
    }
}

/// One endpoint as (address high word, address low word, IPv6 flag and port).
fn end_words(a: SocketAddr) -> (u64, u64, u64) {
    let (bits, v6) = match a.ip() {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 0),
        IpAddr::V6(v6) => (u128::from(v6), 1u64 << 16),
    };
    ((bits >> 64) as u64, bits as u64, v6 | u64::from(a.port()))
}

fn key(a: SocketAddr, b: SocketAddr) -> Key {
    let (a, b) = (end_words(a), end_words(b));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    Key([lo.0, lo.1, hi.0, hi.1, (lo.2 << 32) | hi.2])
}

/// A table entry: a tracked connection, or the tombstone of one reported closed at the given time.
enum Slot<S> {
    /// Boxed: the table's slots stay small while it grows (a connection's state is kilobytes).
    Open(Box<Conn<S>>),
    Closed(Ts),
}

/// Counters for the capture summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct TcpStats {
    pub segments: u64,
    pub connections: u64,
    pub icmp_matched: u64,
    pub icmp_unmatched: u64,
    /// Connections reported early because the table was full (a documented limit was hit).
    pub evicted_table_full: u64,
    pub evicted_idle: u64,
    pub peak_connections: u64,
    /// Packets that arrived for a connection already reported closed (within 15 s of its record), not analysed.
    pub late_packets: u64,
}

/// How long a closed connection's 4-tuple is remembered after its record was made.
const TOMBSTONE_TIME: Dur = Dur::from_secs(15);
/// Expired tombstones are swept out at most this often (packet time); until then they are ignored.
const SWEEP_EVERY: Dur = Dur::from_secs(1);

/// The TCP stage. `S` consumes each connection's byte streams (the HTTP/2 analyzer); `F` makes one.
pub struct Tracker<S, F> {
    cfg: TcpConfig,
    /// Open connections, and tombstones of connections that closed and were reported recently, with when: a
    /// late packet for one (a retransmitted FIN, a stray ACK) is counted instead of starting a phantom
    /// connection. A tombstone counts for `TOMBSTONE_TIME`; expired ones are swept out now and then.
    conns: HashMap<Key, Slot<S>, foldhash::fast::RandomState>,
    /// Open connections in `conns`, and tombstones.
    open: usize,
    tombs: usize,
    last_sweep: Ts,
    closing: BinaryHeap<Reverse<(Ts, u64, Key)>>,
    activity: BinaryHeap<Reverse<(Ts, u64, Key)>>,
    /// `activity` is kept up to date (idle eviction is on, or the table was full once).
    activity_on: bool,
    /// Records of connections that ended since the last collection; boxed, as thousands may end at once (a
    /// jump in packet time) and a vector of them inline would be one block of tens of MB.
    done: Vec<(Box<TcpRecord>, S)>,
    next_id: u64,
    now: Ts,
    make_sink: F,
    stats: TcpStats,
}

impl<S: StreamSink, F: FnMut() -> S> Tracker<S, F> {
    pub fn new(cfg: TcpConfig, make_sink: F) -> Self {
        Tracker {
            activity_on: cfg.idle_evict.is_some(),
            cfg,
            conns: HashMap::default(),
            open: 0,
            tombs: 0,
            last_sweep: Ts::ZERO,
            closing: BinaryHeap::new(),
            activity: BinaryHeap::new(),
            done: Vec::new(),
            next_id: 1,
            now: Ts::ZERO,
            make_sink,
            stats: TcpStats::default(),
        }
    }

    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    pub fn stats(&self) -> &TcpStats {
        &self.stats
    }

    pub fn open_connections(&self) -> usize {
        self.open
    }

    /// The open connection of a key.
    fn open_mut(&mut self, k: &Key) -> Option<&mut Conn<S>> {
        match self.conns.get_mut(k) {
            Some(Slot::Open(c)) => Some(c),
            _ => None,
        }
    }

    /// The stream consumer of the connection a segment between these endpoints belongs to.
    pub fn sink_mut(&mut self, a: SocketAddr, b: SocketAddr) -> Option<(u64, &mut S)> {
        self.open_mut(&key(a, b)).map(|c| (c.id, &mut c.sink))
    }

    /// One TCP segment.
    pub fn segment(&mut self, ip: &IpHeader, seg: &TcpSegment<'_>, mark: Mark) {
        self.stats.segments = self.stats.segments.saturating_add(1);
        self.advance(mark.ts);
        let src = SocketAddr::new(ip.src, seg.src_port);
        let dst = SocketAddr::new(ip.dst, seg.dst_port);
        let k = key(src, dst);
        let syn_only = seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst();

        match self.conns.get_mut(&k) {
            Some(Slot::Open(c)) => {
                if !(syn_only && c.client == src && c.is_new_attempt(seg.seq)) {
                    Self::to_conn(c, &self.cfg, &mut self.closing, k, src, ip, seg, mark);
                    return;
                }
                self.finalize(k, EndReason::Superseded);
            }
            // A late packet of a connection already reported closed; a SYN starts a new one on the 4-tuple.
            Some(Slot::Closed(at)) if !syn_only && at.plus(TOMBSTONE_TIME) > self.now => {
                self.stats.late_packets = self.stats.late_packets.saturating_add(1);
                return;
            }
            Some(Slot::Closed(_)) => self.tombs = self.tombs.saturating_sub(1),
            None => {}
        }
        self.make_room();
        let (client, server, roles) = roles(src, dst, seg);
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        let sink = (self.make_sink)();
        let conn = Box::new(Conn::new(id, client, server, roles, mark, &self.cfg, sink));
        // Replaces the tombstone, if any.
        self.conns.insert(k, Slot::Open(conn));
        self.open += 1;
        if self.activity_on {
            self.activity.push(Reverse((mark.ts, id, k)));
            self.compact_activity();
        }
        self.stats.connections = self.stats.connections.saturating_add(1);
        self.stats.peak_connections = self.stats.peak_connections.max(self.open as u64);
        if let Some(Slot::Open(c)) = self.conns.get_mut(&k) {
            Self::to_conn(c, &self.cfg, &mut self.closing, k, src, ip, seg, mark);
        }
    }

    /// Hands a segment to its connection; a connection that starts closing gets its linger deadline.
    #[allow(clippy::too_many_arguments)]
    fn to_conn(
        c: &mut Conn<S>,
        cfg: &TcpConfig,
        closing: &mut BinaryHeap<Reverse<(Ts, u64, Key)>>,
        k: Key,
        src: SocketAddr,
        ip: &IpHeader,
        seg: &TcpSegment<'_>,
        mark: Mark,
    ) {
        let dir = if src == c.client { Dir::ToServer } else { Dir::ToClient };
        let was_closing = c.closing;
        c.segment(dir, ip, seg, mark, cfg);
        if c.closing && !was_closing {
            c.shrink();
            let deadline = c.last.ts.plus(cfg.linger);
            closing.push(Reverse((deadline, c.id, k)));
        }
    }

    /// An ICMP error: matched to its connection through the quoted header.
    pub fn icmp(&mut self, ip: &IpHeader, msg: &IcmpMessage, mark: Mark) {
        self.advance(mark.ts);
        let Some(q) = msg.quoted else {
            return;
        };
        let src = SocketAddr::new(q.src, q.src_port);
        let dst = SocketAddr::new(q.dst, q.dst_port);
        let Some(Slot::Open(c)) = self.conns.get_mut(&key(src, dst)) else {
            self.stats.icmp_unmatched = self.stats.icmp_unmatched.saturating_add(1);
            return;
        };
        self.stats.icmp_matched = self.stats.icmp_matched.saturating_add(1);
        // The quoted packet was sent by `q.src`: the error is about that direction.
        let dir = if src == c.client {
            Some(Dir::ToServer)
        } else {
            Some(Dir::ToClient)
        };
        c.icmp(dir, ip.src, icmp_text(msg), msg.icmp_type, msg.code, mark);
    }

    /// Packet time moved on to `now`: finish connections whose linger or idle time ran out.
    pub fn advance(&mut self, now: Ts) {
        if now <= self.now {
            return;
        }
        self.now = now;
        self.sweep_tombstones();
        while let Some(Reverse((deadline, id, k))) = self.closing.peek().copied() {
            if deadline > now {
                break;
            }
            self.closing.pop();
            let Some(Slot::Open(c)) = self.conns.get(&k) else {
                continue;
            };
            if c.id != id {
                continue;
            }
            let due = c.last.ts.plus(self.cfg.linger);
            if due <= now {
                self.finalize(k, EndReason::Closed);
            } else {
                self.closing.push(Reverse((due, id, k)));
            }
        }
        if let Some(idle) = self.cfg.idle_evict {
            while let Some(Reverse((last, id, k))) = self.activity.peek().copied() {
                if last.plus(idle) > now {
                    break;
                }
                self.activity.pop();
                let Some(Slot::Open(c)) = self.conns.get(&k) else {
                    continue;
                };
                if c.id != id {
                    continue;
                }
                if c.last.ts.plus(idle) <= now {
                    self.stats.evicted_idle = self.stats.evicted_idle.saturating_add(1);
                    self.finalize(k, EndReason::IdleEvicted);
                } else {
                    self.activity.push(Reverse((c.last.ts, id, k)));
                }
            }
        }
    }

    /// The activity heap keeps stale entries of connections already gone (lazy deletion); rebuild it from the
    /// table when they outnumber the live ones, so it follows the open connections, not the file.
    fn compact_activity(&mut self) {
        if self.activity.len() > self.open.saturating_mul(2).saturating_add(4096) {
            self.rebuild_activity();
        }
    }

    /// The activity heap from the table: each open connection once, with its last activity. Popping it gives
    /// the same connections in the same order as the heap kept up to date (the least recently active first,
    /// ties by id), so it can be built only when it is first needed.
    fn rebuild_activity(&mut self) {
        self.activity = self
            .conns
            .iter()
            .filter_map(|(k, s)| match s {
                Slot::Open(c) => Some(Reverse((c.last.ts, c.id, *k))),
                Slot::Closed(_) => None,
            })
            .collect();
    }

    /// The table is full: report and drop the least recently active connection.
    fn make_room(&mut self) {
        while self.open >= self.cfg.max_connections.max(1) {
            if !self.activity_on {
                self.rebuild_activity();
                self.activity_on = true;
            }
            let Some(Reverse((last, id, k))) = self.activity.pop() else {
                return;
            };
            let Some(Slot::Open(c)) = self.conns.get(&k) else {
                continue;
            };
            if c.id != id {
                continue;
            }
            if c.last.ts != last {
                self.activity.push(Reverse((c.last.ts, id, k)));
                continue;
            }
            self.stats.evicted_table_full = self.stats.evicted_table_full.saturating_add(1);
            self.finalize(k, EndReason::TableFull);
        }
    }

    /// Reports an open connection (a closed one leaves its tombstone).
    fn finalize(&mut self, k: Key, reason: EndReason) {
        if !matches!(self.conns.get(&k), Some(Slot::Open(_))) {
            return;
        }
        let slot = if reason == EndReason::Closed {
            self.tombs += 1;
            self.conns.insert(k, Slot::Closed(self.now))
        } else {
            self.conns.remove(&k)
        };
        if let Some(Slot::Open(c)) = slot {
            self.open = self.open.saturating_sub(1);
            let until = self.now.max(c.last.ts);
            let (r, s) = (*c).finish(reason, until);
            self.done.push((Box::new(r), s));
        }
    }

    /// Drops the expired tombstones, at most once a second of packet time and only when tombstones are a fair
    /// share of the table (a sweep visits all of it): each tombstone is visited a bounded number of times, and
    /// the table holds little more than the tombstones that still count.
    fn sweep_tombstones(&mut self) {
        if self.now < self.last_sweep.plus(SWEEP_EVERY) || self.tombs < (self.open / 2).max(1024) {
            return;
        }
        self.last_sweep = self.now;
        let now = self.now;
        let mut kept = 0;
        self.conns.retain(|_, s| match s {
            Slot::Open(_) => true,
            Slot::Closed(at) => {
                let keep = at.plus(TOMBSTONE_TIME) > now;
                kept += usize::from(keep);
                keep
            }
        });
        self.tombs = kept;
    }

    /// Records of connections that ended since the last call.
    pub fn drain_finished(&mut self) -> impl Iterator<Item = (TcpRecord, S)> + '_ {
        self.done.drain(..).map(|(r, s)| (*r, s))
    }

    /// Records of connections that ended since the last call, taken with their vector: after a jump in packet
    /// time thousands end at once, and a vector drained in place would keep room for that many for good.
    pub fn take_done(&mut self) -> Vec<(Box<TcpRecord>, S)> {
        std::mem::take(&mut self.done)
    }

    /// The input ended (end of file, or a live run stopping): every connection still tracked is finished, in id
    /// order, one at a time (handed to `f` as it is made, so the records never pile up).
    pub fn finish_each(&mut self, end: Ts, mut f: impl FnMut(TcpRecord, S)) {
        self.now = self.now.max(end);
        for (r, s) in self.done.drain(..) {
            f(*r, s);
        }
        let mut keys: Vec<(u64, Key)> = self
            .conns
            .iter()
            .filter_map(|(k, s)| match s {
                Slot::Open(c) => Some((c.id, *k)),
                Slot::Closed(_) => None,
            })
            .collect();
        keys.sort_unstable();
        for (_, k) in keys {
            if let Some(Slot::Open(c)) = self.conns.remove(&k) {
                self.open = self.open.saturating_sub(1);
                // A connection whose linger had not run out is still a closed one.
                let reason = if c.closing {
                    EndReason::Closed
                } else {
                    EndReason::CaptureEnd
                };
                let until = self.now.max(c.last.ts);
                let (r, s) = (*c).finish(reason, until);
                f(r, s);
            }
        }
        self.conns.shrink_to_fit();
        self.closing.clear();
        self.activity.clear();
    }

    /// [`Tracker::finish_each`], collecting the records.
    pub fn finish_all(&mut self, end: Ts) {
        let mut out = Vec::new();
        self.finish_each(end, |r, s| out.push((Box::new(r), s)));
        self.done = out;
    }
}

/// Decides who is the client when a connection's first packet is seen.
fn roles(src: SocketAddr, dst: SocketAddr, seg: &TcpSegment<'_>) -> (SocketAddr, SocketAddr, RoleSource) {
    let f = seg.flags;
    if f.syn() && !f.ack() {
        return (src, dst, RoleSource::Syn);
    }
    if f.syn() && f.ack() {
        return (dst, src, RoleSource::SynAck);
    }
    let (sp, dp) = (src.port(), dst.port());
    if (sp < 1024) != (dp < 1024) {
        return if dp < 1024 {
            (src, dst, RoleSource::WellKnownPort)
        } else {
            (dst, src, RoleSource::WellKnownPort)
        };
    }
    if (sp >= 32768) != (dp >= 32768) {
        return if sp >= 32768 {
            (src, dst, RoleSource::EphemeralPort)
        } else {
            (dst, src, RoleSource::EphemeralPort)
        };
    }
    if dp <= sp {
        (src, dst, RoleSource::LowerPort)
    } else {
        (dst, src, RoleSource::LowerPort)
    }
}

fn icmp_text(m: &IcmpMessage) -> String {
    let what = match (m.v6, m.kind, m.code) {
        (_, IcmpKind::PacketTooBig { mtu }, _) => {
            return if m.v6 {
                format!("packet too big (MTU {mtu})")
            } else {
                format!("fragmentation needed (next-hop MTU {mtu})")
            };
        }
        (_, IcmpKind::TimeExceeded, _) => "time exceeded (TTL expired in transit)",
        (_, IcmpKind::ParameterProblem, _) => "parameter problem",
        (false, IcmpKind::Unreachable, 0) => "network unreachable",
        (false, IcmpKind::Unreachable, 1) => "host unreachable",
        (false, IcmpKind::Unreachable, 2) => "protocol unreachable",
        (false, IcmpKind::Unreachable, 3) => "port unreachable",
        (false, IcmpKind::Unreachable, 9 | 10 | 13) => "administratively prohibited",
        (true, IcmpKind::Unreachable, 0) => "no route to destination",
        (true, IcmpKind::Unreachable, 1) => "administratively prohibited",
        (true, IcmpKind::Unreachable, 3) => "address unreachable",
        (true, IcmpKind::Unreachable, 4) => "port unreachable",
        (true, IcmpKind::Unreachable, 5) => "source address failed ingress/egress policy",
        (true, IcmpKind::Unreachable, 6) => "reject route to destination",
        (_, IcmpKind::Unreachable, _) => "destination unreachable",
        (_, IcmpKind::Other, _) => "ICMP message",
    };
    format!("{what} (type {}, code {})", m.icmp_type, m.code)
}

/// Whether an address is one of the connection's ends (for ICMP from the peer host vs a router).
pub fn is_endpoint(c: (SocketAddr, SocketAddr), a: IpAddr) -> bool {
    c.0.ip() == a || c.1.ip() == a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{Fragment, SeqNum, TcpFlags, TcpOptions};
    use crate::source::PacketRef;
    use crate::tcp::{Dir, SegMeta};
    use std::net::Ipv4Addr;

    struct Null;
    impl StreamSink for Null {
        fn on_data(&mut self, _: Dir, _: &[u8], _: SegMeta) {}
        fn on_gap(&mut self, _: Dir, _: u64, _: SegMeta) {}
        fn on_end(&mut self, _: Dir, _: SegMeta) {}
    }

    fn seg(t: &mut Tracker<Null, fn() -> Null>, n: u32, flags: u16, ms: i64) {
        let ip = IpHeader {
            src: Ipv4Addr::from(0x0a00_0000 + n).into(),
            dst: Ipv4Addr::new(10, 255, 0, 1).into(),
            ttl: 64,
            id: None,
            dont_fragment: true,
            tos: 0,
            fragment: Fragment::None,
        };
        let s = TcpSegment {
            src_port: 40000,
            dst_port: 443,
            seq: SeqNum(n),
            ack: SeqNum(0),
            flags: TcpFlags(flags),
            window: 1000,
            urgent: 0,
            options: TcpOptions::default(),
            payload: &[],
            payload_len: 0,
            header_truncated: false,
        };
        let mark = Mark {
            ts: Ts::from_nanos(ms * 1_000_000),
            at: PacketRef {
                file: 0,
                frame: u64::from(n),
            },
        };
        t.segment(&ip, &s, mark);
    }

    /// 100 000 short connections (SYN, then RST), one a millisecond: the heaps must follow the connections in
    /// the table (those still lingering), not every connection ever seen (80 bytes each were left behind).
    #[test]
    fn regression_activity_heap_grows_with_every_connection() {
        let mut t: Tracker<Null, fn() -> Null> = Tracker::new(TcpConfig::default(), || Null);
        for n in 0..100_000u32 {
            seg(&mut t, n, TcpFlags::SYN, i64::from(n));
            seg(&mut t, n, TcpFlags::RST, i64::from(n));
            if n % 4096 == 0 {
                t.drain_finished().for_each(drop);
            }
        }
        let open = t.open_connections();
        assert!(open < 20_000, "{open} connections still tracked");
        let limit = open * 2 + 4096;
        assert!(
            t.activity.len() <= limit,
            "activity heap {} for {open} connections",
            t.activity.len()
        );
        assert!(
            t.closing.len() <= limit,
            "closing heap {} for {open} connections",
            t.closing.len()
        );
    }
}
