//! Connection-level HTTP/2 state: what each completed frame means (SETTINGS, PING round trips, GOAWAY,
//! RST_STREAM, stream lifecycles, gRPC calls), the bounded event logs and the `--frames` records.
//!
//! The byte-level work (frame boundaries, streaming payloads, HPACK) is in `analyzer.rs`; it calls
//! `finish_frame` once per frame, at the packet that carried the frame's last byte.

use super::frame::{self, Bounds, FrameType, Head, SettingId, flags};
use super::grpc;
use super::hpack::{self, Notice};
use super::log::BoundedLog;
use super::streams::{Stream, Streams};
use super::{
    AppProtocol, ErrorCode, FrameRecord, GoAwayInfo, H2Event, H2EventKind, H2Record, H2Summary, PingInfo, RstStreamInfo,
};
use crate::tcp::{Dir, SegMeta};
use crate::ts::{Dur, Ts};
use serde_json::{Map, Value, json};
use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;

/// GOAWAY debug data kept per frame (the rest is counted in `debug_len`).
pub const GOAWAY_DEBUG_CAP: usize = 4 * 1024;
/// Payload bytes held for a control frame split across segments (SETTINGS, PING, RST_STREAM …); beyond it the
/// frame is decoded from what was kept and the limit is reported.
pub const MAX_CONTROL_PAYLOAD: usize = 16 * 1024;
/// Non-ACK PINGs kept in the summary: the first and the last this many.
pub const PINGS_KEPT: usize = 128;
/// PINGs waiting for their ACK; older ones are given up (and stay unanswered).
pub const OUTSTANDING_PINGS: usize = 256;
/// GOAWAYs and RST_STREAMs kept in the summary (first and last this many).
pub const GOAWAYS_KEPT: usize = 32;
pub const RSTS_KEPT: usize = 256;
/// Interesting header values (`:path`, `grpc-message` …) are kept up to this many bytes.
pub const VALUE_CAP: usize = 1024;

/// Event kinds, each with its own bounded log (first and last N kept) so that a flood of one kind cannot push
/// out the others.
#[derive(Clone, Copy)]
enum Cat {
    Control = 0,
    Ping = 1,
    GoAway = 2,
    Rst = 3,
    Stream = 4,
    Problem = 5,
}

const CAT_CAPS: [usize; 6] = [64, 128, 32, 256, 256, 64];

fn cat(kind: &H2EventKind) -> Cat {
    match kind {
        H2EventKind::Detected(_) | H2EventKind::Settings { .. } | H2EventKind::Note { .. } => Cat::Control,
        H2EventKind::Ping { .. } => Cat::Ping,
        H2EventKind::GoAway(_) => Cat::GoAway,
        H2EventKind::RstStream(_) => Cat::Rst,
        H2EventKind::StreamOpened { .. } | H2EventKind::StreamEnded { .. } => Cat::Stream,
        H2EventKind::Gap { .. } | H2EventKind::Resync { .. } | H2EventKind::Malformed { .. } => Cat::Problem,
    }
}

#[derive(Debug)]
struct Outstanding {
    dir: Dir,
    opaque: u64,
    /// Opaque bytes captured (8 unless the PING was cut).
    known: u8,
    seq: u64,
    ts: Ts,
}

/// The values of a header block the analysis uses (the full list only goes to `--frames`). The strings keep
/// their buffers from block to block, so that a request does not allocate here.
#[derive(Debug, Default)]
pub(crate) struct BlockInfo {
    method: String,
    has_method: bool,
    path: String,
    has_path: bool,
    grpc_message: String,
    has_grpc_message: bool,
    /// `grpc-timeout` as sent (`100m`), for the stream summary.
    grpc_timeout_raw: String,
    pub status: Option<u16>,
    pub grpc_content_type: bool,
    pub grpc_status: Option<u32>,
    pub grpc_timeout: Option<Dur>,
}

/// Replaces `dst` with (at most [`VALUE_CAP`] bytes of) `v`, lossily decoded.
fn set_capped(dst: &mut String, v: &[u8]) {
    dst.clear();
    let v = v.get(..VALUE_CAP).unwrap_or(v);
    match std::str::from_utf8(v) {
        Ok(s) => dst.push_str(s),
        Err(_) => dst.push_str(&String::from_utf8_lossy(v)),
    }
}

impl BlockInfo {
    pub fn observe(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b":method" if !self.has_method => {
                set_capped(&mut self.method, value);
                self.has_method = true;
            }
            b":path" if !self.has_path => {
                set_capped(&mut self.path, value);
                self.has_path = true;
            }
            b":status" if self.status.is_none() => {
                self.status = std::str::from_utf8(value).ok().and_then(|s| s.trim().parse().ok());
            }
            b"content-type" => self.grpc_content_type |= grpc::is_grpc_content_type(value),
            b"grpc-status" if self.grpc_status.is_none() => self.grpc_status = grpc::parse_status(value),
            b"grpc-message" if !self.has_grpc_message => {
                grpc::percent_decode_into(value.get(..VALUE_CAP).unwrap_or(value), &mut self.grpc_message);
                self.has_grpc_message = true;
            }
            b"grpc-timeout" if self.grpc_timeout.is_none() => {
                self.grpc_timeout = grpc::parse_timeout(value);
                if self.grpc_timeout.is_some() {
                    set_capped(&mut self.grpc_timeout_raw, value);
                }
            }
            _ => {}
        }
    }

    pub fn method(&self) -> Option<&str> {
        self.has_method.then_some(self.method.as_str())
    }

    pub fn path(&self) -> Option<&str> {
        self.has_path.then_some(self.path.as_str())
    }

    /// `grpc-timeout` as sent, when it parsed.
    pub fn grpc_timeout_text(&self) -> &str {
        if self.grpc_timeout.is_some() {
            &self.grpc_timeout_raw
        } else {
            ""
        }
    }

    pub fn grpc_message(&self) -> Option<&str> {
        self.has_grpc_message.then_some(self.grpc_message.as_str())
    }

    pub fn clear(&mut self) {
        self.has_method = false;
        self.has_path = false;
        self.has_grpc_message = false;
        self.status = None;
        self.grpc_content_type = false;
        self.grpc_status = None;
        self.grpc_timeout = None;
    }
}

/// A header block being decoded (HEADERS or PUSH_PROMISE and its CONTINUATIONs), one per direction.
#[derive(Debug, Default)]
pub(crate) struct Block {
    pub active: bool,
    pub stream_id: u32,
    pub push: bool,
    pub promised: Option<u32>,
    pub end_stream: bool,
    /// Bytes of an incomplete representation, waiting for the next fragment.
    pub pending: Vec<u8>,
    /// Decoding stopped for this block (lost bytes, malformed, limit); fields already out are kept.
    pub broken: bool,
    /// The block's stream id is not known (its frame header was cut): CONTINUATIONs on any stream continue it.
    pub any_stream: bool,
    /// Encoded bytes seen in this block.
    pub encoded: usize,
    /// Decoded size so far (RFC 7541 accounting) and whether it went past the cap.
    pub list_size: usize,
    pub capped: bool,
    pub info: BlockInfo,
    /// Fields decoded since the last frame record (only with `keep_frames`).
    pub rec: Vec<(String, String)>,
    pub notices: Vec<Notice>,
}

impl Block {
    pub fn begin(&mut self, stream_id: u32, push: bool, end_stream: bool) {
        self.active = true;
        self.stream_id = stream_id;
        self.push = push;
        self.promised = None;
        self.end_stream = end_stream;
        self.pending.clear();
        self.broken = false;
        self.any_stream = false;
        self.encoded = 0;
        self.list_size = 0;
        self.capped = false;
        self.info.clear();
        self.rec.clear();
        self.notices.clear();
    }

    pub fn reset(&mut self) {
        self.begin(0, false, false);
        self.active = false;
    }
}

/// Receives decoded fields for one block: caps the list, keeps the interesting values, queues notices.
pub(crate) struct FieldSink<'a> {
    pub info: &'a mut BlockInfo,
    pub rec: Option<&'a mut Vec<(String, String)>>,
    pub list_size: &'a mut usize,
    pub capped: &'a mut bool,
    pub max_list: usize,
    pub notices: &'a mut Vec<Notice>,
}

impl hpack::Sink for FieldSink<'_> {
    fn field(&mut self, f: hpack::Field<'_>) {
        *self.list_size = self.list_size.saturating_add(hpack::entry_size(f.name, f.value));
        self.info.observe(f.name, f.value);
        if *self.list_size > self.max_list {
            *self.capped = true;
            return;
        }
        if let Some(rec) = self.rec.as_deref_mut() {
            rec.push((
                String::from_utf8_lossy(f.name).into_owned(),
                String::from_utf8_lossy(f.value).into_owned(),
            ));
        }
    }

    fn notice(&mut self, n: Notice) {
        if self.notices.len() < 64 {
            self.notices.push(n);
        }
    }
}

/// The frame being read in one direction.
#[derive(Debug)]
pub(crate) struct Cur {
    pub head: Head,
    /// Payload bytes consumed so far (gaps included).
    pub got: u32,
    /// The first payload bytes of a streamed frame (pad length, priority, promised stream).
    pub prefix: [u8; 6],
    pub prefix_have: u8,
    /// Content bounds, once the prefix is in.
    pub bounds: Option<Result<Bounds, frame::FrameError>>,
    /// A gap or the end of the stream cut the payload.
    pub truncated: bool,
    /// Control payload beyond the buffer cap was dropped.
    pub overflow: bool,
    /// After a gap, later bytes are not buffered (they would be at the wrong offsets).
    pub after_gap: bool,
    /// Header bytes captured: 9, or 5 to 8 when a gap cut the header (the stream id's low bytes read as zero).
    pub head_have: u8,
}

impl Cur {
    pub fn new(head: Head) -> Cur {
        let streamed = is_streamed(head.kind);
        let bounds = (streamed && frame::prefix_len(head.kind, head.flags) == 0).then_some(Ok(Bounds {
            start: 0,
            end: head.length,
            pad_len: None,
        }));
        Cur {
            head,
            got: 0,
            prefix: [0; 6],
            prefix_have: 0,
            bounds,
            truncated: false,
            overflow: false,
            after_gap: false,
            head_have: 9,
        }
    }

    pub fn prefix(&self) -> &[u8] {
        self.prefix.get(..usize::from(self.prefix_have)).unwrap_or(&[])
    }

    /// The content bounds, computed from what prefix there is when the frame ended early.
    pub fn bounds(&self) -> Result<Bounds, frame::FrameError> {
        match &self.bounds {
            Some(b) => b.clone(),
            None => frame::content_bounds(&self.head, self.prefix()),
        }
    }
}

/// DATA, HEADERS, PUSH_PROMISE and CONTINUATION are streamed; the others are held (up to a cap) and read whole.
pub(crate) fn is_streamed(kind: FrameType) -> bool {
    matches!(
        kind,
        FrameType::DATA | FrameType::HEADERS | FrameType::PUSH_PROMISE | FrameType::CONTINUATION
    )
}

/// How much of a held frame's payload is kept.
pub(crate) fn hold_cap(kind: FrameType) -> usize {
    match kind {
        FrameType::GOAWAY => 8 + GOAWAY_DEBUG_CAP,
        k if k.name().is_some() => MAX_CONTROL_PAYLOAD,
        _ => 0,
    }
}

/// Everything about the connection that is not per-direction byte parsing.
#[derive(Debug)]
pub(crate) struct Conn {
    pub keep_frames: bool,
    pub max_header_list: usize,
    /// Encoded bytes one header block may take before decoding stops.
    pub max_block: usize,
    pub protocol: AppProtocol,
    seq: u64,
    events: Vec<BoundedLog<H2Event>>,
    pub summary: H2Summary,
    pings: BoundedLog<PingInfo>,
    outstanding: VecDeque<Outstanding>,
    outstanding_dropped: u64,
    goaways: BoundedLog<GoAwayInfo>,
    rsts: BoundedLog<RstStreamInfo>,
    pub streams: Streams,
    limits_seen: HashSet<&'static str>,
    pub frames: Vec<FrameRecord>,
    /// SETTINGS_HEADER_TABLE_SIZE and SETTINGS_MAX_FRAME_SIZE that apply to what each direction sends
    /// (set by the SETTINGS of the other direction).
    pub table_allowed: [u32; 2],
    pub max_frame: [u32; 2],
    /// An HTTP/1.1 `Upgrade: h2c` request (or a `101`) was seen.
    pub upgrade_pending: bool,
    /// An HTTP/1.1 CONNECT request waits for its response.
    pub connect_pending: bool,
    out_of_sync_noted: [bool; 2],
    /// A spare string buffer (stream summaries).
    scratch: String,
}

impl Conn {
    pub fn new(keep_frames: bool, max_header_list: usize) -> Conn {
        Conn {
            keep_frames,
            max_header_list,
            max_block: max_header_list.saturating_mul(4).max(256 * 1024),
            protocol: AppProtocol::Unknown,
            seq: 0,
            events: CAT_CAPS.iter().map(|&c| BoundedLog::new(c, c)).collect(),
            summary: H2Summary::default(),
            pings: BoundedLog::new(PINGS_KEPT, PINGS_KEPT),
            outstanding: VecDeque::new(),
            outstanding_dropped: 0,
            goaways: BoundedLog::new(GOAWAYS_KEPT, GOAWAYS_KEPT),
            rsts: BoundedLog::new(RSTS_KEPT, RSTS_KEPT),
            streams: Streams::default(),
            limits_seen: HashSet::new(),
            frames: Vec::new(),
            table_allowed: [hpack::DEFAULT_TABLE_SIZE as u32; 2],
            max_frame: [frame::DEFAULT_MAX_FRAME_SIZE; 2],
            upgrade_pending: false,
            connect_pending: false,
            out_of_sync_noted: [false; 2],
            scratch: String::new(),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn emit(&mut self, dir: Dir, meta: SegMeta, kind: H2EventKind) {
        let seq = self.next_seq();
        let c = cat(&kind) as usize;
        if let Some(log) = self.events.get_mut(c) {
            log.push(
                seq,
                H2Event {
                    dir,
                    at: meta.at,
                    ts: meta.ts,
                    kind,
                },
            );
        }
    }

    /// A string for a stream event's summary: the buffer of the stream event about to be dropped when the
    /// log is full, so that a long connection's streams do not allocate one each.
    fn summary_buf(&mut self) -> String {
        let reused = self
            .events
            .get_mut(Cat::Stream as usize)
            .and_then(BoundedLog::evict_for_reuse);
        match reused.map(|e| e.kind) {
            Some(H2EventKind::StreamOpened { mut summary, .. } | H2EventKind::StreamEnded { mut summary, .. }) => {
                summary.clear();
                summary
            }
            _ => String::new(),
        }
    }

    pub fn malformed(&mut self, dir: Dir, meta: SegMeta, what: String) {
        self.summary.malformed += 1;
        self.emit(dir, meta, H2EventKind::Malformed { what });
    }

    pub fn note(&mut self, dir: Dir, meta: SegMeta, what: String) {
        self.emit(dir, meta, H2EventKind::Note { what });
    }

    /// A limit was hit: said once per kind in `limits_hit` and as a note.
    pub fn limit(&mut self, key: &'static str, dir: Dir, meta: SegMeta, what: String) {
        if self.limits_seen.insert(key) {
            self.summary.limits_hit.push(what.clone());
            self.note(dir, meta, format!("limit: {what}"));
        }
    }

    pub fn set_protocol(&mut self, p: AppProtocol, dir: Dir, meta: SegMeta) {
        if self.protocol == p {
            return;
        }
        // A stronger HTTP/2 detection may replace a weaker one (resync → preface), nothing else changes.
        let upgrade = self.protocol == AppProtocol::Unknown
            || (self.protocol == AppProtocol::Http2Resync && p.is_http2())
            || (self.protocol == AppProtocol::Other && p == AppProtocol::Tls);
        if upgrade {
            self.protocol = p;
            self.emit(dir, meta, H2EventKind::Detected(p));
        }
    }

    /// HPACK lost track of the peer's table in `dir`.
    pub fn out_of_sync(&mut self, dir: Dir, meta: SegMeta, why: &str) {
        self.summary.hpack_out_of_sync = true;
        let d = dir.index();
        if let Some(noted) = self.out_of_sync_noted.get_mut(d)
            && !*noted
        {
            *noted = true;
            self.note(
                dir,
                meta,
                format!("HPACK table of the {} out of sync: {why}", dir.sender()),
            );
        }
    }

    /// A frame header was read in `dir`: nothing is lost after its last frame (yet).
    pub fn frame_started(&mut self, dir: Dir) {
        if let Some(l) = self.summary.lost_after_last_frame.get_mut(dir.index()) {
            *l = None;
        }
    }

    /// `n` bytes of `dir` were lost after the end of its last frame.
    pub fn lost_after_frames(&mut self, dir: Dir, meta: SegMeta, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(l) = self.summary.lost_after_last_frame.get_mut(dir.index()) {
            let before = l.map_or(0, |(_, _, b)| b);
            *l = Some((meta.at, meta.ts, before.saturating_add(n)));
        }
    }

    /// Bytes of `dir` were lost: gRPC message boundaries of its open streams are unknown from here on.
    pub fn lose_messages(&mut self, dir: Dir) {
        for s in self.streams.values_mut() {
            if let Some(m) = s.messages.get_mut(dir.index()) {
                m.lose();
            }
        }
    }

    pub fn data_content(&mut self, dir: Dir, stream_id: u32, content: &[u8]) {
        let d = dir.index();
        if let Some(b) = self.summary.data_bytes.get_mut(d) {
            *b = b.saturating_add(content.len() as u64);
        }
        if let Some(s) = self.streams.get_mut(stream_id)
            && s.grpc
            && let Some(m) = s.messages.get_mut(d)
        {
            m.feed(content);
        }
    }

    pub fn handle_notices(&mut self, dir: Dir, meta: SegMeta, notices: &mut Vec<Notice>) {
        for n in notices.drain(..) {
            match n {
                Notice::UnknownIndex(i) => self.out_of_sync(dir, meta, &format!("unknown dynamic index {i}")),
                Notice::IndexZero => self.malformed(dir, meta, "HPACK: indexed field with index 0".into()),
                Notice::Huffman(e) => self.malformed(dir, meta, format!("HPACK: bad Huffman string ({e:?})")),
                Notice::SizeAboveSettings { size, allowed } => self.malformed(
                    dir,
                    meta,
                    format!("HPACK: dynamic table size update to {size} above SETTINGS_HEADER_TABLE_SIZE {allowed}"),
                ),
                Notice::SizeCapped { size, cap } => self.limit(
                    "hpack_table",
                    dir,
                    meta,
                    format!(
                        "HPACK dynamic table of {size} bytes requested, {cap} kept (older entries show as unknown)"
                    ),
                ),
            }
        }
    }

    /// A non-ACK PING; `known` of its opaque bytes were captured (the rest of `opaque` is zero).
    fn ping(&mut self, dir: Dir, meta: SegMeta, opaque: u64, known: u8) {
        let d = dir.index();
        if let Some(t) = self.summary.pings_total.get_mut(d) {
            *t += 1;
        }
        let seq = self.next_seq();
        self.pings.push(
            seq,
            PingInfo {
                dir,
                at: meta.at,
                ts: meta.ts,
                opaque,
                ack: None,
                opaque_len: known,
            },
        );
        if self.outstanding.len() >= OUTSTANDING_PINGS {
            self.outstanding.pop_front();
            self.outstanding_dropped += 1;
        }
        self.outstanding.push_back(Outstanding {
            dir,
            opaque,
            known,
            seq,
            ts: meta.ts,
        });
        self.emit(
            dir,
            meta,
            H2EventKind::Ping {
                ack: false,
                opaque,
                rtt: None,
            },
        );
    }

    /// A PING ACK; `known` of its opaque bytes were captured. Matched to the oldest PING of the other direction
    /// awaiting an ACK whose opaque agrees on the bytes both show.
    fn ping_ack(&mut self, dir: Dir, meta: SegMeta, opaque: u64, known: u8) {
        if let Some(t) = self.summary.ping_acks_total.get_mut(dir.index()) {
            *t += 1;
        }
        let pos = self.outstanding.iter().position(|o| {
            let k = u32::from(o.known.min(known).min(8));
            let mask = u64::MAX.checked_shl(64 - 8 * k).unwrap_or(0);
            o.dir == dir.reverse() && (o.opaque ^ opaque) & mask == 0
        });
        let rtt = match pos.and_then(|p| self.outstanding.remove(p)) {
            Some(o) => {
                if let Some(p) = self.pings.get_mut(o.seq) {
                    p.ack = Some((meta.at, meta.ts));
                }
                Some(meta.ts.since(o.ts))
            }
            None => None,
        };
        self.emit(dir, meta, H2EventKind::Ping { ack: true, opaque, rtt });
    }

    fn rst(&mut self, dir: Dir, meta: SegMeta, stream_id: u32, error: ErrorCode) {
        let d = dir.index();
        if let Some(t) = self.summary.rst_streams_total.get_mut(d) {
            *t += 1;
        }
        let deadline = self.streams.get(stream_id).and_then(|s| s.deadline);
        let after_deadline = error == ErrorCode::CANCEL && deadline.is_some_and(|dl| meta.ts >= dl);
        if after_deadline {
            self.summary.deadline_cancels += 1;
        }
        if error == ErrorCode::REFUSED_STREAM {
            self.summary.refused_streams += 1;
        }
        if self.streams.get(stream_id).is_some() {
            self.close_stream(stream_id);
        }
        let info = RstStreamInfo {
            dir,
            at: meta.at,
            ts: meta.ts,
            stream_id,
            error,
            after_deadline,
        };
        let seq = self.next_seq();
        self.rsts.push(seq, info.clone());
        self.emit(dir, meta, H2EventKind::RstStream(info));
    }

    fn close_stream(&mut self, id: u32) {
        if let Some(s) = self.streams.remove(id) {
            self.summary.streams_closed += 1;
            self.count_messages(&s);
        }
    }

    fn count_messages(&mut self, s: &Stream) {
        for (total, m) in self.summary.grpc_messages.iter_mut().zip(&s.messages) {
            *total = total.saturating_add(m.messages);
        }
    }

    /// END_STREAM from `dir` on a stream.
    fn end_stream(&mut self, dir: Dir, meta: SegMeta, id: u32) {
        let Some(s) = self.streams.get_mut(id) else {
            return;
        };
        if let Some(e) = s.ended.get_mut(dir.index()) {
            *e = true;
        }
        let response_end = s.resp_dir() == Some(dir);
        let both = s.ended.iter().all(|e| *e);
        if response_end {
            let mut summary = std::mem::take(&mut self.scratch);
            ended_summary(s, &mut summary);
            let buf = self.summary_buf();
            self.scratch = buf;
            let summary = summary;
            self.emit(dir, meta, H2EventKind::StreamEnded { stream_id: id, summary });
        }
        if both {
            self.close_stream(id);
        }
    }

    /// A complete header block.
    pub fn headers_done(&mut self, dir: Dir, meta: SegMeta, block: &Block) {
        let info = &block.info;
        let id = if block.push {
            block.promised.unwrap_or(0)
        } else {
            block.stream_id
        };
        if block.push {
            // A promised request: the server "sends" it on behalf of the client.
            if id == 0 {
                return;
            }
            self.summary.streams_opened += 1;
            let summary = format!(
                "PUSH_PROMISE {} {}",
                info.method().unwrap_or("?"),
                info.path().unwrap_or("?")
            );
            if let Some(s) = self.streams.entry(id) {
                s.req_dir = Some(dir.reverse());
                if let Some(e) = s.ended.get_mut(dir.reverse().index()) {
                    *e = true;
                }
            } else {
                self.stream_overflow(dir, meta);
            }
            self.emit(dir, meta, H2EventKind::StreamOpened { stream_id: id, summary });
            return;
        }
        if let Some(m) = info.method() {
            // A request.
            if self.summary.http2_client.is_none() {
                self.summary.http2_client = Some(dir);
            }
            let new = self.streams.is_new(id);
            if new {
                self.summary.streams_opened += 1;
                self.summary.highest_stream_id = self.summary.highest_stream_id.max(id);
                if info.grpc_content_type {
                    self.summary.grpc_calls += 1;
                }
            }
            let deadline = info.grpc_timeout.map(|t| meta.ts.plus(t));
            match self.streams.entry(id) {
                Some(s) => {
                    s.req_dir = Some(dir);
                    s.grpc |= info.grpc_content_type;
                    if deadline.is_some() {
                        s.deadline = deadline;
                    }
                }
                None => self.stream_overflow(dir, meta),
            }
            if new {
                let mut summary = self.summary_buf();
                let _ = write!(summary, "{m} {}", info.path().unwrap_or("?"));
                if info.grpc_timeout.is_some() {
                    let _ = write!(summary, " (grpc-timeout {})", info.grpc_timeout_text());
                }
                self.emit(dir, meta, H2EventKind::StreamOpened { stream_id: id, summary });
            }
        } else if info.status.is_some() || info.grpc_status.is_some() {
            // A response or trailers. Streams are followed from their request, except when the capture joined
            // mid-connection: then a response is the first sign of a stream that started before it.
            let follow = self.streams.get(id).is_some() || self.protocol == AppProtocol::Http2Resync;
            if follow {
                match self.streams.entry(id) {
                    Some(s) => {
                        if s.req_dir.is_none() {
                            s.req_dir = Some(dir.reverse());
                        }
                        if info.status.is_some() {
                            s.status = s.status.or(info.status);
                        }
                        s.grpc |= info.grpc_content_type;
                    }
                    None => self.stream_overflow(dir, meta),
                }
            }
        }
        if let Some(code) = info.grpc_status {
            let first = match self.streams.get_mut(id) {
                Some(s) => {
                    let first = s.grpc_status.is_none();
                    s.grpc_status = Some(code);
                    match (info.grpc_message(), &mut s.grpc_message) {
                        (Some(m), Some(old)) => m.clone_into(old),
                        (Some(m), slot) => *slot = Some(m.to_owned()),
                        (None, slot) => *slot = None,
                    }
                    first
                }
                None => true,
            };
            if first {
                match self.summary.grpc_status.iter_mut().find(|(c, _)| *c == code) {
                    Some((_, n)) => *n += 1,
                    None => self.summary.grpc_status.push((code, 1)),
                }
            }
        }
        if block.end_stream {
            self.end_stream(dir, meta, id);
        }
    }

    /// The HTTP/1.1 request of an h2c upgrade is stream 1, half-closed by the client (RFC 7540 §3.2).
    pub fn open_upgrade_stream(&mut self, dir: Dir, meta: SegMeta, method: &str, target: &str) {
        self.summary.streams_opened += 1;
        self.summary.highest_stream_id = self.summary.highest_stream_id.max(1);
        match self.streams.entry(1) {
            Some(s) => {
                s.req_dir = Some(dir);
                if let Some(e) = s.ended.get_mut(dir.index()) {
                    *e = true;
                }
            }
            None => self.stream_overflow(dir, meta),
        }
        let summary = format!("{method} {target} (HTTP/1.1 with Upgrade: h2c)");
        self.emit(dir, meta, H2EventKind::StreamOpened { stream_id: 1, summary });
    }

    fn stream_overflow(&mut self, dir: Dir, meta: SegMeta) {
        self.limit(
            "streams",
            dir,
            meta,
            format!(
                "more than {} streams open at once: later ones counted, not followed",
                super::streams::MAX_TRACKED_STREAMS
            ),
        );
    }

    fn settings(&mut self, dir: Dir, meta: SegMeta, ack: bool, params: Vec<(u16, u32)>) {
        let d = dir.index();
        let other = dir.reverse().index();
        for &(id, v) in &params {
            match SettingId(id) {
                SettingId::HEADER_TABLE_SIZE => {
                    if let Some(a) = self.table_allowed.get_mut(other) {
                        *a = v;
                    }
                }
                SettingId::MAX_FRAME_SIZE => {
                    if let Some(m) = self.max_frame.get_mut(other) {
                        *m = v.clamp(frame::DEFAULT_MAX_FRAME_SIZE, frame::MAX_FRAME_LEN);
                    }
                }
                _ => {}
            }
            if let Some(eff) = self.summary.settings.get_mut(d) {
                match eff.iter_mut().find(|(i, _)| *i == id) {
                    Some(e) => e.1 = v,
                    None => {
                        eff.push((id, v));
                        eff.sort_unstable();
                    }
                }
            }
        }
        self.emit(dir, meta, H2EventKind::Settings { ack, params });
    }

    /// Builds the record: events merged back into order, kept PINGs/GOAWAYs/RST_STREAMs, totals.
    pub fn into_record(mut self) -> H2Record {
        let mut summary = std::mem::take(&mut self.summary);
        let dropped: u64 = self.events.iter().map(BoundedLog::dropped).sum();
        summary.events_dropped = dropped;
        if dropped > 0 {
            summary.limits_hit.push(format!(
                "{dropped} events not kept (the first and last of each kind are)"
            ));
        }
        let lost_pings = self.pings.dropped();
        if lost_pings > 0 {
            summary.limits_hit.push(format!(
                "{lost_pings} PINGs not listed (first and last {PINGS_KEPT} are)"
            ));
        }
        let lost_rsts = self.rsts.dropped();
        if lost_rsts > 0 {
            summary.limits_hit.push(format!(
                "{lost_rsts} RST_STREAMs not listed (first and last {RSTS_KEPT} are)"
            ));
        }
        let lost_goaways = self.goaways.dropped();
        if lost_goaways > 0 {
            summary.limits_hit.push(format!(
                "{lost_goaways} GOAWAYs not listed (first and last {GOAWAYS_KEPT} are)"
            ));
        }
        summary.pings_unanswered = self.outstanding.len() as u64 + self.outstanding_dropped;
        summary.pings = self.pings.into_items().map(|(_, p)| p).collect();
        summary.goaways = self.goaways.into_items().map(|(_, g)| g).collect();
        summary.rst_streams = self.rsts.into_items().map(|(_, r)| r).collect();
        summary.streams_active = self.streams.len() as u64;
        let open: Vec<[u64; 2]> = self
            .streams
            .values_mut()
            .map(|s| [s.messages[0].messages, s.messages[1].messages])
            .collect();
        for m in open {
            for (t, n) in summary.grpc_messages.iter_mut().zip(m) {
                *t = t.saturating_add(n);
            }
        }
        summary.grpc_status.sort_unstable();
        let mut events: Vec<(u64, H2Event)> = self.events.into_iter().flat_map(BoundedLog::into_items).collect();
        events.sort_by_key(|(s, _)| *s);
        H2Record {
            protocol: self.protocol,
            events: events.into_iter().map(|(_, e)| e).collect(),
            summary,
        }
    }
}

fn ended_summary(s: &Stream, out: &mut String) {
    out.clear();
    if let Some(st) = s.status {
        let _ = write!(out, "{st}");
    }
    if let Some(code) = s.grpc_status {
        if !out.is_empty() {
            out.push_str(", ");
        }
        let _ = write!(out, "grpc-status {code} {}", grpc::status_name(code).unwrap_or("?"));
        if let Some(m) = s.grpc_message.as_deref().filter(|m| !m.is_empty()) {
            let _ = write!(out, " {m:?}");
        }
    }
    if s.grpc {
        let [a, b] = &s.messages;
        let (req, resp) = match s.req_dir {
            Some(Dir::ToClient) => (b, a),
            _ => (a, b),
        };
        let _ = write!(
            out,
            "{}messages {}/{}",
            if out.is_empty() { "" } else { ", " },
            req.messages,
            resp.messages
        );
    }
    if out.is_empty() {
        out.push_str("ended");
    }
}

/// State of one direction the frame handlers need besides the connection.
pub(crate) struct FrameCtx<'a> {
    pub block: &'a mut Block,
    pub hpack: &'a mut hpack::Decoder,
}

/// A frame is complete (or cut short): act on it and queue its record. `payload` is the frame's payload (whole,
/// or as much as was held), meaningful for the held types only.
pub(crate) fn finish_frame(conn: &mut Conn, ctx: FrameCtx<'_>, dir: Dir, meta: SegMeta, cur: &Cur, payload: &[u8]) {
    let head = cur.head;
    let d = dir.index();
    if let Some(n) = conn.summary.frames.get_mut(d) {
        *n += 1;
    }
    if let Some(l) = conn.summary.last_frame.get_mut(d) {
        *l = Some((meta.at, meta.ts));
    }
    let mut rec = conn.keep_frames.then(Map::new);
    let mut problem: Option<String> = None;
    let sid = head.stream_id;
    // A cut header: the stream id's low bytes are unknown. Stream frames neither act on a stream nor are
    // judged on their stream id (a captured zero may be any of 1..255 on the wire).
    let sid_known = cur.head_have >= 9 || !head.on_stream_type();
    let chk = if sid_known || sid != 0 {
        head
    } else {
        Head { stream_id: 1, ..head }
    };
    let set = |rec: &mut Option<Map<String, Value>>, k: &str, v: Value| {
        if let Some(r) = rec.as_mut() {
            r.insert(k.to_string(), v);
        }
    };
    match head.kind {
        FrameType::DATA => {
            let b = cur.bounds();
            problem = frame::Data::check(&chk).err().map(|e| e.to_string());
            let (len, pad) = match &b {
                Ok(b) => (b.end - b.start, b.pad_len),
                Err(e) => {
                    problem = Some(e.to_string());
                    (0, None)
                }
            };
            if let Some(l) = conn.summary.last_data_or_headers.get_mut(d) {
                *l = Some((meta.at, meta.ts));
            }
            set(&mut rec, "end_stream", json!(head.flags & flags::END_STREAM != 0));
            if let Some(p) = pad {
                set(&mut rec, "padding", json!(p));
            }
            set(&mut rec, "data_length", json!(len));
            if head.flags & flags::END_STREAM != 0 && sid_known {
                conn.end_stream(dir, meta, sid);
            }
        }
        FrameType::HEADERS | FrameType::PUSH_PROMISE | FrameType::CONTINUATION => {
            problem = match head.kind {
                FrameType::HEADERS => frame::Headers::check(&chk),
                FrameType::PUSH_PROMISE => frame::PushPromise::check(&chk),
                _ => frame::Continuation::check(&chk),
            }
            .err()
            .map(|e| e.to_string());
            if let Err(e) = cur.bounds() {
                problem = Some(e.to_string());
            }
            let end_headers = head.flags & flags::END_HEADERS != 0;
            match head.kind {
                FrameType::HEADERS => {
                    if let Some(l) = conn.summary.last_data_or_headers.get_mut(d) {
                        *l = Some((meta.at, meta.ts));
                    }
                    let h = frame::Headers::load(&head, cur.prefix());
                    set(&mut rec, "end_stream", json!(h.end_stream));
                    set(&mut rec, "end_headers", json!(h.end_headers));
                    if let Some(p) = h.pad_len {
                        set(&mut rec, "padding", json!(p));
                    }
                    if let Some(p) = h.priority {
                        set(&mut rec, "exclusive", json!(p.exclusive));
                        set(&mut rec, "stream_dependency", json!(p.dependency));
                        set(&mut rec, "weight", json!(p.rfc_weight()));
                    }
                }
                FrameType::PUSH_PROMISE => {
                    let p = frame::PushPromise::load(&head, cur.prefix());
                    if ctx.block.active && ctx.block.stream_id == sid {
                        ctx.block.promised = p.promised_stream_id;
                    }
                    set(&mut rec, "end_headers", json!(p.end_headers));
                    if let Some(pl) = p.pad_len {
                        set(&mut rec, "padding", json!(pl));
                    }
                    if let Some(ps) = p.promised_stream_id {
                        set(&mut rec, "promised_stream_id", json!(ps));
                    }
                }
                _ => set(&mut rec, "end_headers", json!(end_headers)),
            }
            if let Some(r) = rec.as_mut() {
                let list: Vec<Value> = ctx.block.rec.drain(..).map(|(n, v)| json!([n, v])).collect();
                r.insert("headers".into(), Value::Array(list));
            } else {
                ctx.block.rec.clear();
            }
            if end_headers && ctx.block.active && ctx.block.stream_id == sid {
                complete_block(conn, ctx, dir, meta);
            }
        }
        FrameType::PRIORITY => {
            let p = frame::Priority::load(payload);
            problem = frame::Priority::check(&chk, p.as_ref()).err().map(|e| e.to_string());
            if let Some(p) = p {
                set(&mut rec, "exclusive", json!(p.exclusive));
                set(&mut rec, "stream_dependency", json!(p.dependency));
                set(&mut rec, "weight", json!(p.rfc_weight()));
            }
        }
        FrameType::RST_STREAM => {
            let r = frame::RstStream::load(payload);
            problem = frame::RstStream::check(&chk).err().map(|e| e.to_string());
            match r.error {
                Some(e) => {
                    set(&mut rec, "error", json!(e.to_string()));
                    set(&mut rec, "error_code", json!(e.0));
                    if sid_known {
                        conn.rst(dir, meta, sid, e);
                    }
                }
                // Cut by the capture: nothing wrong with the frame, its code is just not known.
                None if cur.truncated => {}
                None => problem = Some(format!("RST_STREAM on stream {sid} without its error code")),
            }
        }
        FrameType::SETTINGS => {
            let s = frame::Settings::load(&head, payload);
            problem = s.check(&head).err().map(|e| e.to_string());
            let params: Vec<(u16, u32)> = s.iter().map(|(i, v)| (i.0, v)).collect();
            if let Some(r) = rec.as_mut() {
                r.insert("ack".into(), json!(s.ack));
                let list: Vec<Value> = params
                    .iter()
                    .map(|&(i, v)| json!({"id": i, "name": SettingId(i).to_string(), "value": v}))
                    .collect();
                r.insert("settings".into(), Value::Array(list));
            }
            if !s.ack || !params.is_empty() {
                conn.settings(dir, meta, s.ack, params);
            } else {
                conn.emit(
                    dir,
                    meta,
                    H2EventKind::Settings {
                        ack: true,
                        params: Vec::new(),
                    },
                );
            }
        }
        FrameType::PING => {
            let p = frame::Ping::load(&head, payload);
            problem = frame::Ping::check(&chk).err().map(|e| e.to_string());
            set(&mut rec, "ack", json!(p.ack));
            let seen = match p.opaque {
                Some(o) => {
                    set(&mut rec, "opaque", json!(format!("{o:016x}")));
                    Some((o, 8))
                }
                None if cur.truncated => {
                    // Cut by the capture: still a PING (the diagnosis counts them), with the bytes captured.
                    let k = payload.len().min(8);
                    let mut b = [0u8; 8];
                    for (dst, src) in b.iter_mut().zip(payload) {
                        *dst = *src;
                    }
                    if k > 0 {
                        let hex: String = payload.iter().take(k).map(|x| format!("{x:02x}")).collect();
                        set(&mut rec, "opaque_captured", json!(hex));
                    }
                    Some((u64::from_be_bytes(b), u8::try_from(k).unwrap_or(8)))
                }
                None => None,
            };
            if let Some((o, k)) = seen {
                if p.ack {
                    conn.ping_ack(dir, meta, o, k);
                } else {
                    conn.ping(dir, meta, o, k);
                }
            }
        }
        FrameType::GOAWAY => {
            let g = frame::GoAway::load(payload);
            problem = frame::GoAway::check(&head).err().map(|e| e.to_string());
            let debug_len = head.length.saturating_sub(8);
            let debug = g.debug.get(..GOAWAY_DEBUG_CAP).unwrap_or(g.debug).to_vec();
            if usize::try_from(debug_len).unwrap_or(usize::MAX) > GOAWAY_DEBUG_CAP {
                conn.limit(
                    "goaway_debug",
                    dir,
                    meta,
                    format!("GOAWAY debug data of {debug_len} bytes: the first {GOAWAY_DEBUG_CAP} kept"),
                );
            }
            if let Some(r) = rec.as_mut() {
                if let Some(l) = g.last_stream_id {
                    r.insert("last_stream_id".into(), json!(l));
                }
                if let Some(e) = g.error {
                    r.insert("error".into(), json!(e.to_string()));
                    r.insert("error_code".into(), json!(e.0));
                }
                r.insert("debug".into(), json!(frame::escape_bytes(&debug)));
                r.insert("debug_length".into(), json!(debug_len));
            }
            let info = GoAwayInfo {
                dir,
                at: meta.at,
                ts: meta.ts,
                last_stream_id: g.last_stream_id,
                error: g.error,
                debug,
                payload_truncated: cur.truncated,
                debug_len,
            };
            if let Some(t) = conn.summary.goaways_total.get_mut(d) {
                *t += 1;
            }
            let seq = conn.next_seq();
            conn.goaways.push(seq, info.clone());
            conn.emit(dir, meta, H2EventKind::GoAway(info));
        }
        FrameType::WINDOW_UPDATE => {
            let w = frame::WindowUpdate::load(payload);
            problem = w.check(&head).err().map(|e| e.to_string());
            if let Some(i) = w.increment {
                set(&mut rec, "increment", json!(i));
            }
        }
        FrameType::ALTSVC => {
            if let Some(a) = frame::AltSvc::load(payload) {
                set(&mut rec, "origin", json!(String::from_utf8_lossy(a.origin)));
                set(&mut rec, "value", json!(String::from_utf8_lossy(a.value)));
            }
        }
        FrameType::ORIGIN => {
            let list: Vec<Value> = frame::Origin::load(payload)
                .iter()
                .map(|o| json!(String::from_utf8_lossy(o)))
                .collect();
            set(&mut rec, "origins", Value::Array(list));
        }
        FrameType::PRIORITY_UPDATE => {
            if let Some(p) = frame::PriorityUpdate::load(payload) {
                set(&mut rec, "prioritized_stream_id", json!(p.prioritized_stream_id));
                set(
                    &mut rec,
                    "priority_field_value",
                    json!(String::from_utf8_lossy(p.field_value)),
                );
            }
        }
        _ => {}
    }
    if cur.overflow {
        conn.limit(
            "control_payload",
            dir,
            meta,
            format!(
                "a {} frame of {} bytes: only the first {} read",
                head.kind,
                head.length,
                hold_cap(head.kind)
            ),
        );
    }
    if cur.truncated {
        set(&mut rec, "truncated", json!(true));
    }
    if cur.head_have < 9 {
        set(&mut rec, "header_captured", json!(cur.head_have));
    }
    if let Some(p) = problem {
        set(&mut rec, "malformed", json!(p));
        conn.malformed(dir, meta, p);
    }
    if let Some(details) = rec {
        conn.frames.push(FrameRecord {
            at: meta.at,
            ts: meta.ts,
            direction: dir,
            stream_id: sid,
            frame_type: head.kind.to_string(),
            flags: head.flags,
            length: head.length,
            details,
        });
    }
}

/// END_HEADERS: the block is complete.
pub(crate) fn complete_block(conn: &mut Conn, ctx: FrameCtx<'_>, dir: Dir, meta: SegMeta) {
    let b = ctx.block;
    if !b.pending.is_empty() && !b.broken {
        conn.malformed(
            dir,
            meta,
            format!("header block of stream {} ends inside a field", b.stream_id),
        );
        ctx.hpack.mark_out_of_sync();
        conn.out_of_sync(dir, meta, "a header block ended inside a field");
    }
    if b.capped {
        conn.limit(
            "header_list",
            dir,
            meta,
            format!(
                "a header list above {} bytes: the fields beyond it not shown",
                conn.max_header_list
            ),
        );
    }
    conn.headers_done(dir, meta, b);
    b.reset();
}
