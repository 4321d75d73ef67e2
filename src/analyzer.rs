//! Drives the stages over packets: decode → TCP → HTTP/2 → timeline → diagnosis.
//!
//! The same code path serves files and live interfaces: packets come in with their own timestamps, finished
//! connections come out as soon as the TCP stage lets go of them (so memory follows the connections open at
//! once, not the file), each already carrying its timeline and verdict.

use crate::decode::{Decoder, Transport};
use crate::diagnose::{self, Verdict};
use crate::http2::{AppProtocol, FrameRecord, H2Config, H2Record, StreamAnalyzer};
use crate::source::Packet;
use crate::tcp::{Dir, Mark, SegMeta, StreamSink, TcpConfig, TcpRecord, TcpStats, Tracker};
use crate::timeline::{self, Timeline};
use crate::ts::Ts;
use std::net::SocketAddr;

/// Settings of every analysis stage.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub tcp: TcpConfig,
    pub h2: H2Config,
}

/// One connection, analysed to the end.
#[derive(Clone, Debug)]
pub struct Finished {
    /// Boxed as the TCP stage handed it over: the record is large (over a kilobyte), and moved a few times.
    pub tcp: Box<TcpRecord>,
    pub h2: H2Record,
    pub timeline: Timeline,
    pub verdict: Verdict,
}

/// A connection the TCP stage let go of, before the stages after it: [`Ended::finish`] runs those (HTTP/2
/// record, timeline, diagnosis), and may run on another thread than the packets.
pub struct Ended {
    tcp: Box<TcpRecord>,
    sink: LazyH2,
}

impl Ended {
    pub fn finish(self) -> Finished {
        finish_one(self.tcp, self.sink.finish())
    }
}

/// Packet counters of the whole run.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PacketStats {
    pub packets: u64,
    pub bytes: u64,
    #[serde(skip)]
    pub first: Option<Ts>,
    #[serde(skip)]
    pub last: Option<Ts>,
}

/// The HTTP/2 analyzer of one connection, allocated when its first payload byte arrives and freed as soon as it
/// has decided the stream is not HTTP/2 (keeping only its small record): most connections of a busy capture
/// (refused, probes, HTTP/1, TLS) never need it for long, and memory follows the connections open at once.
///
/// A few bytes from one side only (a request the server never answered, thousands of them lingering at once)
/// are held as they came, calls and all, and the analyzer is made when more come, when the other side speaks,
/// or at the end: it then gets the same calls in the same order, so it ends the same.
pub struct LazyH2 {
    cfg: std::sync::Arc<H2Config>,
    inner: Option<Box<StreamAnalyzer>>,
    /// An analyzer that finished early: its record, or nothing when it only said "not HTTP/2".
    done: Option<Option<Box<H2Record>>>,
    held: Option<Box<Held>>,
    /// Whether calls may be held (always, but in the test that compares with an analyzer made at once).
    hold: bool,
}

/// Stream calls held before the analyzer is made.
#[derive(Default)]
struct Held {
    calls: Vec<HeldCall>,
    bytes: Vec<u8>,
}

#[derive(Clone, Copy)]
enum HeldCall {
    /// `len` bytes of `Held::bytes` (after those of the calls before).
    Data {
        dir: Dir,
        len: u32,
        meta: SegMeta,
    },
    Gap {
        dir: Dir,
        missing: u64,
        meta: SegMeta,
    },
    End {
        dir: Dir,
        meta: SegMeta,
    },
}

/// The most bytes and calls held before the analyzer is made (it takes ~2.5 KiB).
const HOLD_BYTES: usize = 512;
const HOLD_CALLS: usize = 8;

impl LazyH2 {
    /// Whether a data or gap call for `dir` may be held (nothing made yet, one side only, little).
    fn may_hold(&self, dir: Dir, bytes: usize) -> bool {
        if !self.hold || self.inner.is_some() || self.done.is_some() || self.cfg.keep_frames {
            return false;
        }
        let Some(h) = self.held.as_deref() else {
            return bytes <= HOLD_BYTES;
        };
        h.calls.len() < HOLD_CALLS
            && h.bytes.len().saturating_add(bytes) <= HOLD_BYTES
            && h.calls.iter().all(|c| match *c {
                HeldCall::Data { dir: d, .. } | HeldCall::Gap { dir: d, .. } => d == dir,
                HeldCall::End { .. } => true,
            })
    }

    /// Makes the analyzer and hands it the held calls.
    fn release(&mut self) {
        let Some(h) = self.held.take() else { return };
        let mut at = 0usize;
        for c in h.calls {
            match c {
                HeldCall::Data { dir, len, meta } => {
                    let end = at.saturating_add(len as usize);
                    let data = h.bytes.get(at..end).unwrap_or_default();
                    at = end;
                    self.data(dir, data, meta);
                }
                HeldCall::Gap { dir, missing, meta } => self.gap(dir, missing, meta),
                HeldCall::End { dir, meta } => self.end(dir, meta),
            }
        }
    }

    fn data(&mut self, dir: Dir, data: &[u8], meta: SegMeta) {
        if let Some(a) = self.get() {
            a.on_data(dir, data, meta);
            self.settle();
        }
    }

    fn gap(&mut self, dir: Dir, missing: u64, meta: SegMeta) {
        if let Some(a) = self.get() {
            a.on_gap(dir, missing, meta);
            self.settle();
        }
    }

    fn end(&mut self, dir: Dir, meta: SegMeta) {
        if let Some(a) = self.inner.as_mut() {
            a.on_end(dir, meta);
        }
    }

    fn get(&mut self) -> Option<&mut StreamAnalyzer> {
        if self.done.is_some() {
            return None;
        }
        let cfg = &self.cfg;
        Some(self.inner.get_or_insert_with(|| Box::new(StreamAnalyzer::new(cfg))))
    }

    /// Frees the analyzer once its answer cannot change (not HTTP/2: other payload, or TLS).
    fn settle(&mut self) {
        let decided = self
            .inner
            .as_ref()
            .is_some_and(|a| matches!(a.protocol(), AppProtocol::Other | AppProtocol::Tls));
        if decided
            && !self.cfg.keep_frames
            && let Some(a) = self.inner.take()
        {
            let record = a.finish();
            // Plain "not HTTP/2" with nothing else to say: keep the answer, not the record.
            let bare = record.protocol == AppProtocol::Other
                && record
                    .events
                    .iter()
                    .all(|e| matches!(e.kind, crate::http2::H2EventKind::Detected(_)))
                && record.summary == crate::http2::H2Summary::default();
            self.done = Some(if bare { None } else { Some(Box::new(record)) });
        }
    }

    fn drain_frames(&mut self) -> Vec<FrameRecord> {
        self.release();
        self.inner
            .as_mut()
            .map(|a| a.drain_frames().collect())
            .unwrap_or_default()
    }

    fn finish(mut self) -> H2Record {
        self.release();
        match (self.done, self.inner) {
            (Some(Some(r)), _) => *r,
            (Some(None), _) => H2Record {
                protocol: AppProtocol::Other,
                ..H2Record::default()
            },
            (None, Some(a)) => a.finish(),
            (None, None) => H2Record::default(),
        }
    }
}

impl StreamSink for LazyH2 {
    fn on_data(&mut self, dir: Dir, data: &[u8], meta: SegMeta) {
        if self.may_hold(dir, data.len()) {
            let h = self.held.get_or_insert_with(Box::default);
            h.bytes.extend_from_slice(data);
            let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
            h.calls.push(HeldCall::Data { dir, len, meta });
            return;
        }
        self.release();
        self.data(dir, data, meta);
    }
    fn on_gap(&mut self, dir: Dir, missing: u64, meta: SegMeta) {
        if self.may_hold(dir, 0) {
            let h = self.held.get_or_insert_with(Box::default);
            h.calls.push(HeldCall::Gap { dir, missing, meta });
            return;
        }
        self.release();
        self.gap(dir, missing, meta);
    }
    fn on_end(&mut self, dir: Dir, meta: SegMeta) {
        // With nothing held or made, there is nothing to end (as for an analyzer never made).
        match self.held.as_deref_mut() {
            Some(h) if h.calls.len() < HOLD_CALLS => h.calls.push(HeldCall::End { dir, meta }),
            Some(_) => {
                self.release();
                self.end(dir, meta);
            }
            None => self.end(dir, meta),
        }
    }
}

type SinkFactory = Box<dyn FnMut() -> LazyH2 + Send>;

pub struct Analyzer {
    decoder: Decoder,
    tracker: Tracker<LazyH2, SinkFactory>,
    keep_frames: bool,
    frames: Vec<(u64, FrameRecord)>,
    stats: PacketStats,
}

impl Analyzer {
    pub fn new(settings: Settings) -> Analyzer {
        let keep_frames = settings.h2.keep_frames;
        let h2 = std::sync::Arc::new(settings.h2);
        let factory: SinkFactory = Box::new(move || LazyH2 {
            cfg: std::sync::Arc::clone(&h2),
            inner: None,
            done: None,
            held: None,
            hold: true,
        });
        Analyzer {
            decoder: Decoder::new(),
            tracker: Tracker::new(settings.tcp, factory),
            keep_frames,
            frames: Vec::new(),
            stats: PacketStats::default(),
        }
    }

    /// One captured packet.
    pub fn packet(&mut self, pkt: &Packet<'_>) {
        let st = &mut self.stats;
        st.packets = st.packets.saturating_add(1);
        st.bytes = st.bytes.saturating_add(u64::from(pkt.orig_len));
        st.first = Some(st.first.map_or(pkt.ts, |f| f.min(pkt.ts)));
        st.last = Some(st.last.map_or(pkt.ts, |l| l.max(pkt.ts)));
        let mark = Mark { ts: pkt.ts, at: pkt.at };
        let decoded = self.decoder.decode(pkt);
        let Some(ip) = decoded.ip else {
            self.tracker.advance(pkt.ts);
            return;
        };
        match decoded.transport {
            Transport::Tcp(seg) => {
                self.tracker.segment(&ip, &seg, mark);
                if self.keep_frames {
                    let a = SocketAddr::new(ip.src, seg.src_port);
                    let b = SocketAddr::new(ip.dst, seg.dst_port);
                    if let Some((id, sink)) = self.tracker.sink_mut(a, b) {
                        self.frames.extend(sink.drain_frames().into_iter().map(|f| (id, f)));
                    }
                }
            }
            Transport::Icmp(msg) => self.tracker.icmp(&ip, &msg, mark),
            Transport::Other(_) | Transport::None => self.tracker.advance(pkt.ts),
        }
    }

    /// Packet time moved on without packets (live capture timer).
    pub fn advance(&mut self, now: Ts) {
        self.tracker.advance(now);
    }

    /// Connections that ended since the last call, fully analysed, in the order they ended.
    pub fn take_finished(&mut self) -> Vec<Finished> {
        self.take_ended().into_iter().map(Ended::finish).collect()
    }

    /// Connections that ended since the last call, in the order they ended, to be finished by the caller.
    pub fn take_ended(&mut self) -> Vec<Ended> {
        let keep_frames = self.keep_frames;
        let done = self.tracker.take_done();
        let mut out = Vec::with_capacity(done.len());
        for (tcp, mut sink) in done {
            if keep_frames {
                self.frames.extend(sink.drain_frames().into_iter().map(|f| (tcp.id, f)));
            }
            out.push(Ended { tcp, sink });
        }
        out
    }

    /// HTTP/2 frames decoded since the last call (with `keep_frames`).
    pub fn take_frames(&mut self) -> Vec<(u64, FrameRecord)> {
        std::mem::take(&mut self.frames)
    }

    /// The input ended: every open connection is finished as it stands.
    pub fn finish(&mut self) -> Vec<Finished> {
        let mut out = Vec::new();
        self.finish_each(|f| out.push(f));
        out
    }

    /// The input ended: every open connection is finished and handed to `f` one at a time, in id order, so a
    /// capture ending with thousands of open connections never holds all their analyses at once.
    pub fn finish_each(&mut self, mut f: impl FnMut(Finished)) {
        self.end_each(|e| f(e.finish()));
    }

    /// [`Analyzer::finish_each`], leaving each connection's finishing to `f`.
    pub fn end_each(&mut self, mut f: impl FnMut(Ended)) {
        let end = self.stats.last.unwrap_or(Ts::ZERO);
        let keep_frames = self.keep_frames;
        let frames = &mut self.frames;
        self.tracker.finish_each(end, |tcp, mut sink| {
            if keep_frames {
                frames.extend(sink.drain_frames().into_iter().map(|fr| (tcp.id, fr)));
            }
            f(Ended {
                tcp: Box::new(tcp),
                sink,
            });
        });
    }

    pub fn packet_stats(&self) -> &PacketStats {
        &self.stats
    }
    pub fn tcp_config(&self) -> &TcpConfig {
        self.tracker.config()
    }
    pub fn tcp_stats(&self) -> &TcpStats {
        self.tracker.stats()
    }
    pub fn decode_stats(&self) -> &crate::decode::DecodeStats {
        self.decoder.stats()
    }
    pub fn open_connections(&self) -> usize {
        self.tracker.open_connections()
    }
}

/// The stages after TCP for one connection: timeline, then the diagnosis.
pub fn finish_one(tcp: Box<TcpRecord>, h2: H2Record) -> Finished {
    let timeline = timeline::build(&tcp, Some(&h2));
    let verdict = diagnose::diagnose(&diagnose::Input {
        tcp: &tcp,
        h2: Some(&h2),
        timeline: &timeline,
    });
    Finished {
        tcp,
        h2,
        timeline,
        verdict,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lazy(hold: bool) -> LazyH2 {
        LazyH2 {
            cfg: std::sync::Arc::new(H2Config::default()),
            inner: None,
            done: None,
            held: None,
            hold,
        }
    }

    /// Holding calls changes nothing: the same calls give the same record as an analyzer made at the first.
    #[test]
    fn held_calls_give_the_same_record() {
        let mut settings = vec![0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100];
        let mut h2 = crate::http2::detect::PREFACE.to_vec();
        h2.append(&mut settings.clone());
        settings[4] = 1; // ACK: a wrong length for it
        let starts: [&[u8]; 7] = [
            b"GET /7 HTTP/1.0\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            &[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
            &h2,
            &settings,
            &[0x55; 700],
        ];
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for round in 0..3000 {
            let mut calls = Vec::new();
            for _ in 0..1 + next(6) {
                let dir = if next(3) == 0 { Dir::ToClient } else { Dir::ToServer };
                let meta = SegMeta {
                    at: crate::source::PacketRef {
                        file: 0,
                        frame: calls.len() as u64 + 1,
                    },
                    ts: Ts::from_nanos(calls.len() as i64),
                };
                match next(8) {
                    0 => calls.push((dir, None, next(3000), meta)),
                    1 => calls.push((dir, None, u64::MAX, meta)),
                    _ => {
                        let src = starts[next(starts.len() as u64) as usize];
                        let cut = 1 + next(src.len() as u64) as usize;
                        calls.push((dir, Some(src[..cut].to_vec()), 0, meta));
                    }
                }
            }
            let mut a = lazy(true);
            let mut b = lazy(false);
            for (dir, data, n, meta) in &calls {
                for l in [&mut a, &mut b] {
                    match (data, *n) {
                        (Some(d), _) => l.on_data(*dir, d, *meta),
                        (None, u64::MAX) => l.on_end(*dir, *meta),
                        (None, missing) => l.on_gap(*dir, missing, *meta),
                    }
                }
            }
            assert_eq!(a.finish(), b.finish(), "round {round}");
        }
    }
}
