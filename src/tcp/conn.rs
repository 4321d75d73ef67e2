//! One TCP connection: two endpoint states (Zeek's model: each side's view kept apart) and the analysis of
//! every segment against them, in the spirit of Wireshark's `tcp.analysis.*` but kept as facts and events for
//! the diagnosis rather than as per-packet flags.
//!
//! Terms: for direction `d`, the *sender* is the endpoint sending in `d` and the *receiver* the other one.
//! `next_seq` is the highest sequence number the sender has used plus one (what it will send next);
//! `acked` is the highest acknowledgement the receiver sent for it (the sender's `snd_una` as seen on the
//! wire). All sequence arithmetic is wrapping; every count saturates.

use super::reassembly::Reassembler;
use super::record::*;
use super::{Dir, SegMeta, StreamSink};
use crate::decode::{IpHeader, SeqNum, TcpSegment};
use crate::ts::{Dur, Ts};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Engine settings (all in packet time).
#[derive(Clone, Debug)]
pub struct TcpConfig {
    /// How long a closed connection (FIN both ways, or RST) is kept for late packets before its record is made.
    pub linger: Dur,
    /// A silence at least this long on a connection is an idle-gap event.
    pub idle_gap: Dur,
    /// Connections quiet for this long are reported and dropped (live runs); `None` keeps them to the end.
    pub idle_evict: Option<Dur>,
    /// Most connections tracked at once; past it the least recently active one is reported and dropped.
    pub max_connections: usize,
    /// Bytes buffered per direction for out-of-order segments, at least…
    pub reassembly_cap: usize,
    /// …and up to twice the receiver's advertised window, at most this much.
    pub reassembly_max: usize,
    /// Timeline events kept per connection (the first and last halves; the middle is counted).
    pub max_events: usize,
    /// Segments arriving this soon after a hole opened count as out of order rather than retransmitted.
    pub reorder_window: Dur,
}

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            linger: Dur::from_secs(2),
            idle_gap: Dur::from_secs(1),
            idle_evict: None,
            max_connections: 200_000,
            reassembly_cap: 256 * 1024,
            reassembly_max: 16 * 1024 * 1024,
            max_events: 1000,
            reorder_window: Dur::from_millis(3),
        }
    }
}

const MAX_RSTS: usize = 8;
const MAX_SERIES_SENDS: usize = 64;
const MAX_PROBES: usize = 64;
const RECENT: usize = 32;
const MAX_HOLES: usize = 8;

/// A run of data segments from one side, reported as one event.
#[derive(Clone, Copy, Debug)]
struct Burst {
    first: Mark,
    last: Mark,
    segments: u64,
    bytes: u64,
}

/// A send of new data, remembered briefly to find a retransmission's original.
#[derive(Clone, Copy, Debug)]
struct Sent {
    seq: SeqNum,
    mark: Mark,
    idle_before: Option<Dur>,
}

/// A hole in what the sender sent: bytes skipped, and when the skip was seen.
#[derive(Clone, Copy, Debug)]
struct Hole {
    from: SeqNum,
    to: SeqNum,
    seen: Ts,
}

/// One side's state as a sender (and, for ACK/window fields, what it says as a receiver).
#[derive(Debug, Default)]
pub(crate) struct Endpoint {
    facts: DirFacts,
    /// Base for relative sequence numbers (relative 1 = first data byte).
    base: Option<SeqNum>,
    next_seq: Option<SeqNum>,
    /// Highest ACK the peer sent for this sender's data.
    acked: Option<SeqNum>,
    fin_seq: Option<SeqNum>,
    /// As a receiver: the last ACK number and raw window this endpoint sent, the window scale it applies.
    last_ack: Option<SeqNum>,
    last_win: u16,
    scale: u8,
    /// Run of duplicate ACKs this endpoint is sending.
    dup_run: u64,
    dup_run_first: Option<Mark>,
    zero_window_since: Option<Mark>,
    series: Option<Box<RetransSeries>>,
    ka_active: bool,
    last_syn: Option<Ts>,
    /// For a SYN-ACK sender: the ACK number of its SYN-ACK.
    syn_acked: Option<SeqNum>,
    recent: VecDeque<Sent>,
    holes: Vec<Hole>,
    burst: Option<Burst>,
    ttl_counts: [(u8, u64); 4],
    reasm: Reassembler,
}

impl Endpoint {
    fn new(cfg: &TcpConfig) -> Endpoint {
        Endpoint {
            reasm: Reassembler::new(cfg.reassembly_cap),
            ..Endpoint::default()
        }
    }

    fn rel(&self, seq: SeqNum) -> u32 {
        self.base.map_or(seq.0, |b| seq.offset_from(b))
    }

    fn fingerprint(&mut self, ip: &IpHeader, seg: &TcpSegment<'_>) {
        let fp = &mut self.facts.fingerprint;
        fp.packets = fp.packets.saturating_add(1);
        if fp.packets == 1 {
            fp.ttl_min = ip.ttl;
            fp.ttl_max = ip.ttl;
        } else {
            fp.ttl_min = fp.ttl_min.min(ip.ttl);
            fp.ttl_max = fp.ttl_max.max(ip.ttl);
        }
        // Most common TTL, over a handful of distinct values (a path change adds one).
        let slot = self
            .ttl_counts
            .iter()
            .position(|&(t, n)| n > 0 && t == ip.ttl)
            .or_else(|| {
                let free = self.ttl_counts.iter().position(|&(_, n)| n == 0);
                free.or_else(|| {
                    // Replace the least seen value.
                    self.ttl_counts
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, n))| *n)
                        .map(|(i, _)| i)
                })
            });
        if let Some(i) = slot
            && let Some(e) = self.ttl_counts.get_mut(i)
        {
            if e.0 != ip.ttl || e.1 == 0 {
                *e = (ip.ttl, 0);
            }
            e.1 = e.1.saturating_add(1);
        }
        if let Some(&(t, n)) = self.ttl_counts.iter().max_by_key(|(_, n)| *n) {
            fp.ttl_mode = Some(t);
            fp.ttl_mode_count = n;
        }
        if let Some(id) = ip.id {
            if id == 0 {
                fp.ip_id_zero = fp.ip_id_zero.saturating_add(1);
            } else if let Some(prev) = fp.last_ip_id {
                let step = id.wrapping_sub(prev) & 0xffff;
                if (1..=64).contains(&step) {
                    fp.ip_id_small_steps = fp.ip_id_small_steps.saturating_add(1);
                }
            }
            fp.last_ip_id = Some(id);
        }
        if let Some((tsval, _)) = seg.options.timestamps {
            fp.with_timestamps = fp.with_timestamps.saturating_add(1);
            fp.last_tsval = Some(tsval);
        }
    }

    fn remember_send(&mut self, seq: SeqNum, mark: Mark, idle_before: Option<Dur>) {
        if self.recent.len() >= RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(Sent { seq, mark, idle_before });
    }

    fn original_of(&self, seq: SeqNum) -> Option<Sent> {
        self.recent.iter().rev().find(|s| s.seq == seq).copied()
    }

    /// Closes the open retransmission series into the history (recovered or replaced).
    fn retire_series(&mut self) {
        if let Some(s) = self.series.take() {
            self.facts.retrans_series = self.facts.retrans_series.saturating_add(1);
            self.facts.longest_series = self.facts.longest_series.max(s.count);
        }
    }
}

/// Time-ordered events with a cap: the first half kept, then a ring of the latest; the middle counted.
#[derive(Debug, Default)]
struct EventLog {
    head: Vec<TcpEvent>,
    tail: VecDeque<TcpEvent>,
    dropped: u64,
    cap: usize,
}

impl EventLog {
    fn push(&mut self, e: TcpEvent) {
        let half = (self.cap / 2).max(1);
        if self.head.len() < half {
            self.head.push(e);
            return;
        }
        if self.tail.len() >= half {
            self.tail.pop_front();
            self.dropped = self.dropped.saturating_add(1);
        }
        self.tail.push_back(e);
    }

    fn into_parts(self) -> (Vec<TcpEvent>, u64) {
        let mut v = self.head;
        v.extend(self.tail);
        (v, self.dropped)
    }
}

/// A tracked connection and its stream consumer.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub roles: RoleSource,
    pub first: Mark,
    pub last: Mark,
    handshake: Handshake,
    ep: [Endpoint; 2],
    events: EventLog,
    /// FIN seen both ways, or a RST: waiting out the linger time.
    pub closing: bool,
    reorder: Dur,
    reassembly_max: usize,
    pub sink: S,
}

impl<S: StreamSink> Conn<S> {
    pub fn new(
        id: u64,
        client: SocketAddr,
        server: SocketAddr,
        roles: RoleSource,
        mark: Mark,
        cfg: &TcpConfig,
        sink: S,
    ) -> Conn<S> {
        Conn {
            id,
            client,
            server,
            roles,
            first: mark,
            last: mark,
            handshake: Handshake::default(),
            ep: [Endpoint::new(cfg), Endpoint::new(cfg)],
            events: EventLog {
                cap: cfg.max_events,
                ..EventLog::default()
            },
            closing: false,
            reorder: cfg.reorder_window,
            reassembly_max: cfg.reassembly_max,
            sink,
        }
    }

    /// Whether a SYN (without ACK) from the client with this ISN starts a new connection on this 4-tuple.
    pub fn is_new_attempt(&self, isn: SeqNum) -> bool {
        let client = &self.ep[Dir::ToServer.index()];
        let server = &self.ep[Dir::ToClient.index()];
        match client.facts.isn {
            // A retransmitted SYN carries the same ISN.
            Some(old) if client.facts.syn.is_some() => old != isn && (self.closing || self.any_close()),
            // The SYN-ACK was captured first (reordering at the capture point) and acknowledges this SYN.
            _ if client.facts.syn.is_none() && server.syn_acked == Some(isn.add(1)) => false,
            // A connection we only saw mid-stream (or whose SYN we never saw) ends where a SYN begins.
            _ => true,
        }
    }

    fn any_close(&self) -> bool {
        self.ep.iter().any(|e| e.facts.fin.is_some() || e.facts.rst_count > 0)
    }

    fn emit(&mut self, mark: Mark, dir: Option<Dir>, kind: TcpEventKind) {
        self.flush_bursts();
        self.events.push(TcpEvent { mark, dir, kind });
    }

    fn flush_bursts(&mut self) {
        for d in Dir::BOTH {
            if let Some(b) = self.ep[d.index()].burst.take() {
                self.events.push(TcpEvent {
                    mark: b.first,
                    dir: Some(d),
                    kind: TcpEventKind::Data {
                        segments: b.segments,
                        bytes: b.bytes,
                        last: b.last,
                    },
                });
            }
        }
    }

    /// Processes one segment sent in direction `dir`.
    pub fn segment(&mut self, dir: Dir, ip: &IpHeader, seg: &TcpSegment<'_>, mark: Mark, cfg: &TcpConfig) {
        let si = dir.index();
        let ri = dir.reverse().index();
        let meta = SegMeta {
            at: mark.at,
            ts: mark.ts,
        };

        // Connection-wide silence before this packet.
        let gap = if self.first == mark {
            None
        } else {
            Some(mark.ts.since(self.last.ts))
        };
        if let Some(g) = gap
            && g >= cfg.idle_gap
        {
            let from = self.last;
            self.emit(mark, None, TcpEventKind::Idle { dur: g, from });
        }
        let previous = self.last;
        if mark.ts >= self.last.ts {
            self.last = mark;
        }

        {
            let f = &mut self.ep[si].facts;
            f.packets = f.packets.saturating_add(1);
            if f.first.is_none() {
                f.first = Some(mark);
            }
            f.last = Some(mark);
        }

        let flags = seg.flags;
        if flags.rst() {
            self.rst(dir, ip, seg, mark, previous, gap);
            return;
        }
        self.ep[si].facts.last_non_rst = Some(mark);
        let advances_ack = flags.ack() && self.ep[si].last_ack.is_none_or(|a| seg.ack.gt(a));
        if seg.payload_len > 0 || flags.syn() || flags.fin() || advances_ack {
            let f = &mut self.ep[si].facts;
            f.last_progress = Some(mark);
            f.last_progress_tsval = seg.options.timestamps.map(|t| t.0);
            f.last_progress_ack = flags.ack().then_some(seg.ack);
        }
        self.ep[si].fingerprint(ip, seg);

        // --- handshake ---------------------------------------------------------------------------------
        if flags.syn() {
            self.syn(dir, seg, mark);
        } else if self.ep[si].base.is_none() {
            // Joined mid-connection: make the first byte seen relative 1.
            self.ep[si].base = Some(seg.seq.sub(1));
        }
        if !flags.syn()
            && flags.ack()
            && dir == Dir::ToServer
            && self.handshake.syn_ack.is_some()
            && self.handshake.ack.is_none()
            && self.ep[ri].facts.isn.is_some_and(|isn| seg.ack == isn.add(1))
        {
            self.handshake.ack = Some(mark);
            self.emit(mark, Some(dir), TcpEventKind::HandshakeAck);
        }

        // --- this sender's sequence space ----------------------------------------------------------------
        let data_seq = if flags.syn() { seg.seq.add(1) } else { seg.seq };
        let plen = seg.payload_len;
        let len = plen.saturating_add(u32::from(flags.fin()));
        let peer_zero_window = self.ep[ri].zero_window_since.is_some();
        let next = self.ep[si].next_seq;
        let is_probe_shape = plen <= 1 && !flags.syn() && !flags.fin();
        if is_probe_shape && next.is_some_and(|n| seg.seq == n.sub(1)) {
            // seq = snd_una − 1 with 0 or 1 byte: a keepalive (or a zero-window probe, when the peer's window
            // is closed: Linux probes a zero window the same way).
            if peer_zero_window {
                self.window_probe(dir, mark);
            } else {
                self.keepalive(dir, mark, gap);
            }
        } else if peer_zero_window && plen == 1 && next.is_some_and(|n| seg.seq == n) && !flags.fin() {
            // One new byte into a closed window.
            self.window_probe(dir, mark);
            self.ep[si].next_seq = Some(seg.seq.add(1));
        } else if len > 0 {
            self.sequence(dir, data_seq, plen, flags.fin(), mark, gap);
        }

        if flags.fin() {
            let fin_seq = data_seq.add(plen);
            let e = &mut self.ep[si];
            e.facts.fin_count = e.facts.fin_count.saturating_add(1);
            let retrans = e.fin_seq.is_some();
            if e.facts.fin.is_none() {
                e.facts.fin = Some(mark);
                e.fin_seq = Some(fin_seq);
            }
            let rel = e.rel(fin_seq);
            self.emit(
                mark,
                Some(dir),
                TcpEventKind::Fin {
                    seq_rel: rel,
                    retransmission: retrans,
                },
            );
        }

        // --- what this sender says about the peer's data (ACK, window) ----------------------------------
        if flags.ack() {
            self.ack(dir, seg, mark);
        }
        self.window(dir, seg, mark);

        // --- stream bytes --------------------------------------------------------------------------------
        if plen > 0 {
            let e = &mut self.ep[si];
            let (overflows, gap_bytes) = (e.reasm.overflows, e.reasm.gap_bytes);
            let cut = e.reasm.segment(dir, data_seq, seg.payload, plen, meta, &mut self.sink);
            if cut > 0 {
                e.facts.snaplen_missing = e.facts.snaplen_missing.saturating_add(cut);
            }
            let more = e.reasm.overflows.saturating_sub(overflows);
            if more > 0 {
                let first = e.facts.reassembly_overflows == 0;
                e.facts.reassembly_overflows = e.facts.reassembly_overflows.saturating_add(more);
                if first {
                    let skipped = e.reasm.gap_bytes.saturating_sub(gap_bytes).saturating_sub(cut);
                    let cap = cfg.reassembly_cap as u64;
                    self.emit(mark, Some(dir), TcpEventKind::ReassemblyFull { skipped, cap });
                }
            }
        }
        if flags.fin() {
            let e = &mut self.ep[si];
            e.reasm.end(dir, meta, &mut self.sink);
        }
        if self.ep.iter().all(|e| e.facts.fin.is_some()) {
            self.closing = true;
        }
    }

    fn syn(&mut self, dir: Dir, seg: &TcpSegment<'_>, mark: Mark) {
        let si = dir.index();
        let ack = seg.flags.ack();
        let e = &mut self.ep[si];
        let first = e.facts.syn.is_none();
        let since_prev = e.last_syn.map(|p| mark.ts.since(p));
        e.last_syn = Some(mark.ts);
        let nth = e.facts.syn_count;
        e.facts.syn_count = e.facts.syn_count.saturating_add(1);
        if first {
            e.facts.syn = Some(mark);
            e.facts.isn = Some(seg.seq);
            e.base = Some(seg.seq);
            e.next_seq = Some(seg.seq.add(1));
            e.facts.mss = seg.options.mss;
            e.facts.window_scale = seg.options.window_scale;
            e.facts.sack_permitted = seg.options.sack_permitted;
            e.facts.timestamps = seg.options.timestamps.is_some();
            e.reasm.set_syn(seg.seq);
            if ack {
                e.syn_acked = Some(seg.ack);
                self.handshake.syn_ack = Some(mark);
            } else {
                self.handshake.syn = Some(mark);
                if dir == Dir::ToServer {
                    // A SYN captured after its SYN-ACK: the roles are now known, not inferred.
                    self.roles = RoleSource::Syn;
                }
            }
            // Window scaling applies once both SYNs carried the option (RFC 7323 §2.2).
            if let (Some(cs), Some(ss)) = (self.ep[0].facts.window_scale, self.ep[1].facts.window_scale) {
                self.ep[0].scale = cs.min(14);
                self.ep[1].scale = ss.min(14);
            }
        }
        self.emit(mark, Some(dir), TcpEventKind::Syn { ack, nth, since_prev });
    }

    fn sequence(&mut self, dir: Dir, seq: SeqNum, plen: u32, fin: bool, mark: Mark, gap: Option<Dur>) {
        let reorder = self.reorder;
        let si = dir.index();
        let ri = dir.reverse().index();
        let len = plen.saturating_add(u32::from(fin));
        let end = seq.add(len);
        let receiver_dup_run = self.ep[ri].dup_run;
        let receiver_last_ack = self.ep[ri].last_ack;
        let e = &mut self.ep[si];
        let Some(next) = e.next_seq else {
            // First data seen from this side.
            e.next_seq = Some(end);
            e.facts.bytes = e.facts.bytes.saturating_add(u64::from(plen));
            self.new_data(dir, seq, plen, mark, gap);
            return;
        };
        if end.gt(next) {
            if seq.gt(next) {
                let missing = u64::from(seq.offset_from(next));
                e.facts.lost_segments = e.facts.lost_segments.saturating_add(1);
                if e.holes.len() >= MAX_HOLES {
                    e.holes.remove(0);
                }
                e.holes.push(Hole {
                    from: next,
                    to: seq,
                    seen: mark.ts,
                });
                let rel = e.rel(next);
                self.emit(
                    mark,
                    Some(dir),
                    TcpEventKind::Missing {
                        seq_rel: rel,
                        bytes: missing,
                    },
                );
            }
            let e = &mut self.ep[si];
            e.next_seq = Some(end);
            // Bytes are the sequence space the sender advanced (holes included: it sent them), as Zeek counts.
            let advance = end.offset_from(next).saturating_sub(u32::from(fin));
            e.facts.bytes = e.facts.bytes.saturating_add(u64::from(advance));
            let fresh_from = if seq.gt(next) { seq } else { next };
            let fresh = end.offset_from(fresh_from).saturating_sub(u32::from(fin));
            self.new_data(dir, seq, fresh, mark, gap);
            return;
        }
        // Nothing new: out of order, or a retransmission.
        let e = &mut self.ep[si];
        let in_hole = e.holes.iter().position(|h| seq.ge(h.from) && seq.lt(h.to));
        if let Some(i) = in_hole
            && let Some(h) = e.holes.get(i).copied()
            && mark.ts.since(h.seen) <= reorder
        {
            e.facts.out_of_order = e.facts.out_of_order.saturating_add(1);
            Self::shrink_hole(e, i, seq, end);
            let rel = e.rel(seq);
            self.emit(
                mark,
                Some(dir),
                TcpEventKind::OutOfOrder {
                    seq_rel: rel,
                    len: plen,
                },
            );
            return;
        }
        if let Some(i) = in_hole {
            Self::shrink_hole(e, i, seq, end);
        }
        if plen == 0 {
            // A retransmitted FIN alone: counted with the FIN, not as a data retransmission.
            return;
        }
        let fast = receiver_dup_run >= 2 && receiver_last_ack == Some(seq);
        let spurious = e.acked.is_some_and(|a| end.le(a));
        e.facts.retransmissions = e.facts.retransmissions.saturating_add(1);
        if fast {
            e.facts.fast_retransmissions = e.facts.fast_retransmissions.saturating_add(1);
        }
        if spurious {
            e.facts.spurious_retransmissions = e.facts.spurious_retransmissions.saturating_add(1);
        }
        let rel = e.rel(seq);
        let same_series = e.series.as_ref().is_some_and(|s| s.seq_rel == rel);
        if !same_series {
            e.retire_series();
            let orig = e.original_of(seq);
            e.series = Some(Box::new(RetransSeries {
                dir,
                seq_rel: rel,
                len: plen,
                original: orig.map(|o| o.mark),
                sends: Vec::new(),
                count: 0,
                idle_before: orig.and_then(|o| o.idle_before),
                recovered: None,
            }));
        }
        let mut since_prev = None;
        let mut nth = 1;
        if let Some(s) = e.series.as_mut() {
            let prev = s.sends.last().copied().or(s.original);
            since_prev = prev.map(|p| mark.ts.since(p.ts));
            s.count = s.count.saturating_add(1);
            nth = s.count;
            if s.sends.len() < MAX_SERIES_SENDS {
                s.sends.push(mark);
            } else if let Some(last) = s.sends.last_mut() {
                *last = mark; // keep the latest as the last entry
            }
        }
        self.emit(
            mark,
            Some(dir),
            TcpEventKind::Retransmission {
                seq_rel: rel,
                len: plen,
                nth,
                since_prev,
                fast,
                spurious,
            },
        );
    }

    fn shrink_hole(e: &mut Endpoint, i: usize, seq: SeqNum, end: SeqNum) {
        if let Some(h) = e.holes.get_mut(i) {
            if seq == h.from {
                h.from = end.min(h.to);
            } else if end.ge(h.to) {
                h.to = seq;
            }
            if h.from.ge(h.to) {
                e.holes.remove(i);
            }
        }
    }

    fn new_data(&mut self, dir: Dir, seq: SeqNum, plen: u32, mark: Mark, gap: Option<Dur>) {
        let e = &mut self.ep[dir.index()];
        if plen == 0 {
            return;
        }
        if e.facts.first_data.is_none() {
            e.facts.first_data = Some(mark);
        }
        e.facts.last_data = Some(mark);
        e.ka_active = false;
        e.remember_send(seq, mark, gap);
        match e.burst.as_mut() {
            Some(b) => {
                b.last = mark;
                b.segments = b.segments.saturating_add(1);
                b.bytes = b.bytes.saturating_add(u64::from(plen));
            }
            None => {
                // Data from one side ends the other side's burst (a response follows a request).
                let other = dir.reverse().index();
                if let Some(b) = self.ep[other].burst.take() {
                    self.events.push(TcpEvent {
                        mark: b.first,
                        dir: Some(dir.reverse()),
                        kind: TcpEventKind::Data {
                            segments: b.segments,
                            bytes: b.bytes,
                            last: b.last,
                        },
                    });
                }
                self.ep[dir.index()].burst = Some(Burst {
                    first: mark,
                    last: mark,
                    segments: 1,
                    bytes: u64::from(plen),
                });
            }
        }
    }

    fn keepalive(&mut self, dir: Dir, mark: Mark, gap: Option<Dur>) {
        let e = &mut self.ep[dir.index()];
        e.facts.keepalives = e.facts.keepalives.saturating_add(1);
        if !e.ka_active || e.facts.keepalive_series.is_none() {
            e.ka_active = true;
            e.facts.keepalive_series = Some(Box::new(KeepaliveSeries {
                dir,
                probes: Vec::new(),
                count: 0,
                answered: 0,
                last_answer: None,
                idle_before: gap,
            }));
        }
        let mut since_prev = None;
        let mut nth = 1;
        if let Some(s) = e.facts.keepalive_series.as_mut() {
            since_prev = s.probes.last().map(|p| mark.ts.since(p.ts)).or(gap);
            s.count = s.count.saturating_add(1);
            nth = s.count;
            if s.probes.len() < MAX_PROBES {
                s.probes.push(mark);
            } else if let Some(last) = s.probes.last_mut() {
                *last = mark;
            }
        }
        self.emit(mark, Some(dir), TcpEventKind::KeepAlive { nth, since_prev });
    }

    fn window_probe(&mut self, dir: Dir, mark: Mark) {
        let e = &mut self.ep[dir.index()];
        e.facts.window_probes = e.facts.window_probes.saturating_add(1);
        self.emit(mark, Some(dir), TcpEventKind::WindowProbe);
    }

    /// The sender of `dir` acknowledges the peer's data.
    fn ack(&mut self, dir: Dir, seg: &TcpSegment<'_>, mark: Mark) {
        let si = dir.index();
        let ri = dir.reverse().index();
        let ack = seg.ack;
        let pure = seg.payload_len == 0 && !seg.flags.syn() && !seg.flags.fin();
        let meta = SegMeta {
            at: mark.at,
            ts: mark.ts,
        };

        // Keepalive answered: a pure ACK of exactly the prober's next sequence number after a probe.
        let peer = &mut self.ep[ri];
        if pure
            && peer.ka_active
            && peer.next_seq == Some(ack)
            && let Some(s) = peer.facts.keepalive_series.as_mut()
            && s.probes
                .last()
                .is_some_and(|p| s.last_answer.is_none_or(|a| a.ts <= p.ts) && p.ts <= mark.ts)
        {
            s.answered = s.answered.saturating_add(1);
            s.last_answer = Some(mark);
            peer.facts.keepalive_acks = peer.facts.keepalive_acks.saturating_add(1);
            self.emit(mark, Some(dir), TcpEventKind::KeepAliveAck);
        }

        // Progress on the peer's data.
        let peer = &mut self.ep[ri];
        let advanced = peer.acked.is_none_or(|a| ack.gt(a));
        if advanced {
            peer.acked = Some(ack);
            if let Some(s) = peer.series.as_ref()
                && ack.gt(peer.base.map_or(SeqNum(s.seq_rel), |b| b.add(s.seq_rel)))
            {
                let rel = s.seq_rel;
                let n = s.count;
                let after = s
                    .original
                    .or(s.sends.first().copied())
                    .map_or(Dur::ZERO, |o| mark.ts.since(o.ts));
                if let Some(s) = peer.series.as_mut() {
                    s.recovered = Some(mark);
                }
                peer.retire_series();
                if n >= 2 {
                    self.emit(
                        mark,
                        Some(dir.reverse()),
                        TcpEventKind::Recovered {
                            seq_rel: rel,
                            retransmissions: n,
                            after,
                        },
                    );
                }
            }
            // Acknowledging bytes never seen from the peer.
            let peer = &mut self.ep[ri];
            let limit = match (peer.next_seq, peer.fin_seq) {
                (Some(n), Some(f)) => Some(n.max(f.add(1))),
                (n, _) => n,
            };
            if let Some(n) = limit
                && ack.gt(n)
                && ack.diff(n) < i32::MAX / 2
            {
                let bytes = u64::from(ack.offset_from(n));
                peer.facts.acked_unseen = peer.facts.acked_unseen.saturating_add(1);
                peer.facts.bytes = peer.facts.bytes.saturating_add(bytes);
                peer.next_seq = Some(ack);
                self.emit(mark, Some(dir), TcpEventKind::AckedUnseen { bytes });
            }
        }
        let peer = &mut self.ep[ri];
        let fin = peer.fin_seq;
        peer.reasm.acked(dir.reverse(), ack, fin, meta, &mut self.sink);

        // Duplicate ACKs (RFC 5681 §2: no data, same ACK, same window, data outstanding).
        let me = &self.ep[si];
        let outstanding = self.ep[ri].next_seq.is_some_and(|n| n.gt(ack));
        let dup = pure && me.last_ack == Some(ack) && me.last_win == seg.window && outstanding;
        let me = &mut self.ep[si];
        if dup {
            me.dup_run = me.dup_run.saturating_add(1);
            me.facts.dup_acks = me.facts.dup_acks.saturating_add(1);
            if me.dup_run_first.is_none() {
                me.dup_run_first = Some(mark);
            }
        } else if me.dup_run > 0 {
            let count = me.dup_run;
            let first = me.dup_run_first.take().unwrap_or(mark);
            let rel = self.ep[ri].rel(ack);
            self.ep[si].dup_run = 0;
            if count >= 2 {
                self.emit(first, Some(dir), TcpEventKind::DupAcks { count, ack_rel: rel });
            }
        }
        let me = &mut self.ep[si];
        if !dup {
            me.dup_run = 0;
            me.dup_run_first = None;
        }
        me.last_ack = Some(ack);
    }

    fn window(&mut self, dir: Dir, seg: &TcpSegment<'_>, mark: Mark) {
        if seg.header_truncated || seg.flags.syn() {
            self.ep[dir.index()].last_win = seg.window;
            return;
        }
        let e = &mut self.ep[dir.index()];
        e.last_win = seg.window;
        let window = (u64::from(seg.window) << e.scale).saturating_mul(2);
        let cap = usize::try_from(window).unwrap_or(usize::MAX).min(self.reassembly_max);
        // This endpoint's window bounds what the peer may send beyond a hole.
        self.ep[dir.reverse().index()].reasm.raise_cap(cap);
        let e = &mut self.ep[dir.index()];
        if seg.window == 0 {
            if e.zero_window_since.is_none() {
                e.zero_window_since = Some(mark);
                e.facts.zero_windows = e.facts.zero_windows.saturating_add(1);
                self.emit(mark, Some(dir), TcpEventKind::ZeroWindow);
            }
        } else if let Some(since) = e.zero_window_since.take() {
            let after = mark.ts.since(since.ts);
            self.emit(mark, Some(dir), TcpEventKind::WindowOpened { after });
        }
    }

    fn rst(&mut self, dir: Dir, ip: &IpHeader, seg: &TcpSegment<'_>, mark: Mark, previous: Mark, gap: Option<Dur>) {
        let si = dir.index();
        let ri = dir.reverse().index();
        // What the receiver expects next from this sender: the last ACK it sent, else what we saw sent.
        let expected = self.ep[ri].last_ack;
        let rcv_window = u64::from(self.ep[ri].last_win) << self.ep[ri].scale;
        let seq_check = match expected {
            None => SeqCheck::Unknown,
            Some(x) => {
                let off = i64::from(seg.seq.diff(x));
                if off == 0 {
                    SeqCheck::Exact
                } else if off > 0 && (off as u64) < rcv_window.max(1) {
                    SeqCheck::InWindow(off)
                } else {
                    SeqCheck::OutOfWindow(off)
                }
            }
        };
        let since_receiver_sent = self.ep[ri].facts.last.map(|m| mark.ts.since(m.ts));
        let info = RstInfo {
            dir,
            mark,
            with_ack: seg.flags.ack(),
            seq: seg.seq,
            ack: seg.ack,
            window: seg.window,
            ttl: ip.ttl,
            ip_id: ip.id,
            option_kinds: seg.options.kinds,
            tsval: seg.options.timestamps.map(|t| t.0),
            payload_len: seg.payload_len,
            seq_check,
            before: self.ep[si].facts.fingerprint,
            since_previous: gap.or(if previous == mark {
                None
            } else {
                Some(mark.ts.since(previous.ts))
            }),
            since_receiver_sent,
        };
        let e = &mut self.ep[si];
        e.facts.rst_count = e.facts.rst_count.saturating_add(1);
        if e.facts.rsts.len() < MAX_RSTS {
            // Most connections see one RST: no room for four.
            e.facts.rsts.reserve_exact(1);
            e.facts.rsts.push(info.clone());
        }
        self.emit(mark, Some(dir), TcpEventKind::Rst(Box::new(info)));
        // The byte streams are not ended here: a RST the peers ignore (injected, out of window) is followed by
        // more data, and the streams end when the connection is finished anyway.
        self.closing = true;
    }

    /// An ICMP error that quotes one of this connection's packets.
    pub fn icmp(
        &mut self,
        dir: Option<Dir>,
        from: std::net::IpAddr,
        text: String,
        icmp_type: u8,
        code: u8,
        mark: Mark,
    ) {
        if mark.ts >= self.last.ts {
            self.last = mark;
        }
        self.emit(
            mark,
            dir,
            TcpEventKind::Icmp {
                from,
                text,
                icmp_type,
                code,
            },
        );
    }

    /// The connection started closing: little more will be added to it while it lingers, so its growing
    /// buffers give back the room they reserved ahead (thousands of connections linger at once).
    pub fn shrink(&mut self) {
        self.events.head.shrink_to_fit();
        self.events.tail.shrink_to_fit();
        for e in &mut self.ep {
            e.recent.shrink_to_fit();
            e.holes.shrink_to_fit();
        }
    }

    /// Ends the connection: flushes streams and open state into the record.
    pub fn finish(mut self, reason: EndReason, observed_until: Ts) -> (TcpRecord, S) {
        self.flush_bursts();
        let meta = SegMeta {
            at: self.last.at,
            ts: self.last.ts,
        };
        for d in Dir::BOTH {
            let e = &mut self.ep[d.index()];
            e.reasm.end(d, meta, &mut self.sink);
            if let Some(s) = e.series.take() {
                e.facts.retrans_series = e.facts.retrans_series.saturating_add(1);
                e.facts.longest_series = e.facts.longest_series.max(s.count);
                e.facts.open_retrans = Some(s);
            }
        }
        let (events, events_dropped) = self.events.into_parts();
        let [a, b] = self.ep;
        let record = TcpRecord {
            id: self.id,
            client: self.client,
            server: self.server,
            roles: self.roles,
            first: self.first,
            last: self.last,
            handshake: self.handshake,
            dirs: [a.facts, b.facts],
            events,
            events_dropped,
            end_reason: reason,
            observed_until,
        };
        (record, self.sink)
    }
}
