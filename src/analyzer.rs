//! Drives the stages over packets: decode → TCP → HTTP/2 → timeline → diagnosis.
//!
//! The same code path serves files and live interfaces: packets come in with their own timestamps, finished
//! connections come out as soon as the TCP stage lets go of them (so memory follows the connections open at
//! once, not the file), each already carrying its timeline and verdict.

use crate::decode::{Decoder, Transport};
use crate::diagnose::{self, Verdict};
use crate::http2::{FrameRecord, H2Config, H2Record, StreamAnalyzer};
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
    pub tcp: TcpRecord,
    pub h2: H2Record,
    pub timeline: Timeline,
    pub verdict: Verdict,
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

type SinkFactory = Box<dyn FnMut() -> LazyH2 + Send>;

/// A connection's HTTP/2 analyzer, made when its first stream byte (or gap, or end) arrives. Most connections
/// of a SYN flood, a port scan or a refused service never carry a byte, and an analyzer is ~2 KB: made eagerly,
/// it was 45% of every tracked connection.
pub struct LazyH2 {
    cfg: H2Config,
    inner: Option<Box<StreamAnalyzer>>,
}

impl LazyH2 {
    fn get(&mut self) -> &mut StreamAnalyzer {
        let cfg = &self.cfg;
        self.inner.get_or_insert_with(|| Box::new(StreamAnalyzer::new(cfg)))
    }

    fn drain_frames(&mut self) -> impl Iterator<Item = FrameRecord> + '_ {
        self.inner.iter_mut().flat_map(|a| a.drain_frames())
    }

    fn finish(self) -> H2Record {
        match self.inner {
            Some(a) => a.finish(),
            None => StreamAnalyzer::new(&self.cfg).finish(),
        }
    }
}

impl StreamSink for LazyH2 {
    fn on_data(&mut self, dir: Dir, data: &[u8], meta: SegMeta) {
        self.get().on_data(dir, data, meta);
    }
    fn on_gap(&mut self, dir: Dir, missing: u64, meta: SegMeta) {
        self.get().on_gap(dir, missing, meta);
    }
    fn on_end(&mut self, dir: Dir, meta: SegMeta) {
        self.get().on_end(dir, meta);
    }
}

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
        let h2 = settings.h2;
        let factory: SinkFactory = Box::new(move || LazyH2 {
            cfg: h2.clone(),
            inner: None,
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
                        self.frames.extend(sink.drain_frames().map(|f| (id, f)));
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
        let keep_frames = self.keep_frames;
        let mut out = Vec::new();
        for (tcp, mut sink) in self.tracker.drain_finished() {
            if keep_frames {
                self.frames.extend(sink.drain_frames().map(|f| (tcp.id, f)));
            }
            let h2 = sink.finish();
            out.push(finish_one(tcp, h2));
        }
        out
    }

    /// HTTP/2 frames decoded since the last call (with `keep_frames`).
    pub fn take_frames(&mut self) -> Vec<(u64, FrameRecord)> {
        std::mem::take(&mut self.frames)
    }

    /// The input ended: every open connection is finished as it stands, one at a time as the iterator is
    /// advanced (connections that ended earlier and were not taken yet come first). Frames of these connections
    /// (with `keep_frames`) are in [`Analyzer::take_frames`] once the iterator is done.
    pub fn finish(&mut self) -> impl Iterator<Item = Finished> + '_ {
        let end = self.stats.last.unwrap_or(Ts::ZERO);
        let keep_frames = self.keep_frames;
        let frames = &mut self.frames;
        self.tracker.finish_each(end).map(move |(tcp, mut sink)| {
            if keep_frames {
                frames.extend(sink.drain_frames().map(|f| (tcp.id, f)));
            }
            finish_one(tcp, sink.finish())
        })
    }

    pub fn packet_stats(&self) -> &PacketStats {
        &self.stats
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
pub fn finish_one(tcp: TcpRecord, h2: H2Record) -> Finished {
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
