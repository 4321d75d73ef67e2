//! HTTP/2 and gRPC on reassembled TCP streams (RFC 9113, RFC 7541).
//!
//! Passive analysis cannot use a strict HTTP/2 implementation: captures join mid-connection, lose segments and
//! carry frames a conforming peer would reject, and we must still show them. So the frame and HPACK decoders
//! here are our own, lenient, and keep "need more bytes" apart from "malformed".
//!
//! CONTRACT (used by the pipeline and the diagnosis; keep these names and meanings):
//! - [`StreamAnalyzer`] is created per TCP connection and implements [`crate::tcp::StreamSink`];
//! - [`StreamAnalyzer::finish`] gives an [`H2Record`]: the detected protocol, the notable events in order,
//!   and a summary the diagnosis rules read;
//! - with [`H2Config::keep_frames`], every decoded frame is also queued as a [`FrameRecord`] for
//!   `whoclosed --frames`, drained with [`StreamAnalyzer::drain_frames`].

use crate::source::PacketRef;
use crate::tcp::{Dir, SegMeta, StreamSink};
use crate::ts::{Dur, Ts};
use std::fmt;

/// An HTTP/2 error code (RFC 9113 §7), open: unknown codes are kept and printed in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    pub const NO_ERROR: ErrorCode = ErrorCode(0x0);
    pub const PROTOCOL_ERROR: ErrorCode = ErrorCode(0x1);
    pub const INTERNAL_ERROR: ErrorCode = ErrorCode(0x2);
    pub const FLOW_CONTROL_ERROR: ErrorCode = ErrorCode(0x3);
    pub const SETTINGS_TIMEOUT: ErrorCode = ErrorCode(0x4);
    pub const STREAM_CLOSED: ErrorCode = ErrorCode(0x5);
    pub const FRAME_SIZE_ERROR: ErrorCode = ErrorCode(0x6);
    pub const REFUSED_STREAM: ErrorCode = ErrorCode(0x7);
    pub const CANCEL: ErrorCode = ErrorCode(0x8);
    pub const COMPRESSION_ERROR: ErrorCode = ErrorCode(0x9);
    pub const CONNECT_ERROR: ErrorCode = ErrorCode(0xa);
    pub const ENHANCE_YOUR_CALM: ErrorCode = ErrorCode(0xb);
    pub const INADEQUATE_SECURITY: ErrorCode = ErrorCode(0xc);
    pub const HTTP_1_1_REQUIRED: ErrorCode = ErrorCode(0xd);

    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:x}", self.0),
        }
    }
}

/// What the stream analyzer found the connection to carry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppProtocol {
    /// No payload, or not enough to tell.
    #[default]
    Unknown,
    /// HTTP/2 with prior knowledge (client preface seen).
    Http2Preface,
    /// HTTP/1.1 `Upgrade: h2c` then HTTP/2.
    Http2Upgrade,
    /// HTTP/2 recognised mid-connection from plausible frame headers (no preface captured).
    Http2Resync,
    /// TLS records: not decoded.
    Tls,
    /// Something else.
    Other,
}

impl AppProtocol {
    pub fn is_http2(self) -> bool {
        matches!(
            self,
            AppProtocol::Http2Preface | AppProtocol::Http2Upgrade | AppProtocol::Http2Resync
        )
    }
}

/// A PING and, when seen, its ACK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PingInfo {
    /// Direction of the PING (not of the ACK).
    pub dir: Dir,
    pub at: PacketRef,
    pub ts: Ts,
    pub opaque: u64,
    /// The ACK's packet and time.
    pub ack: Option<(PacketRef, Ts)>,
}

/// A GOAWAY frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAwayInfo {
    pub dir: Dir,
    pub at: PacketRef,
    pub ts: Ts,
    /// `None` when the payload was cut before the field.
    pub last_stream_id: Option<u32>,
    pub error: Option<ErrorCode>,
    /// Debug data as captured (capped at a few KiB).
    pub debug: Vec<u8>,
    /// The frame's payload was not fully captured (snaplen, lost segment): fields may be missing.
    pub payload_truncated: bool,
}

/// A RST_STREAM frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RstStreamInfo {
    pub dir: Dir,
    pub at: PacketRef,
    pub ts: Ts,
    pub stream_id: u32,
    pub error: ErrorCode,
    /// The stream's grpc-timeout had run out when the RST_STREAM was sent (deadline cancel).
    pub after_deadline: bool,
}

/// Per-connection HTTP/2 and gRPC facts for the diagnosis.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct H2Summary {
    /// Non-ACK PINGs in order (capped; `pings_total` counts all), with their ACKs.
    pub pings: Vec<PingInfo>,
    pub pings_total: [u64; 2],
    pub goaways: Vec<GoAwayInfo>,
    pub rst_streams: Vec<RstStreamInfo>,
    pub rst_streams_total: [u64; 2],
    /// Frames per direction, indexed by [`Dir::index`].
    pub frames: [u64; 2],
    /// Last DATA or HEADERS frame per direction (gRPC's ping policy counts "data" as either).
    pub last_data_or_headers: [Option<(PacketRef, Ts)>; 2],
    /// Streams opened (by HEADERS) and ended (END_STREAM both ways or RST_STREAM).
    pub streams_opened: u64,
    pub streams_closed: u64,
    pub refused_streams: u64,
    /// gRPC calls that ended with a grpc-status, by status code.
    pub grpc_status: Vec<(u32, u64)>,
    pub grpc_calls: u64,
    /// RST_STREAM CANCEL sent after the call's grpc-timeout ran out.
    pub deadline_cancels: u64,
    /// Byte gaps in the stream and resynchronisations.
    pub gaps: u64,
    pub resyncs: u64,
    pub hpack_out_of_sync: bool,
    /// Limits hit (header list size, frame buffering …), said in the report, never silently.
    pub limits_hit: Vec<String>,
}

/// One notable HTTP/2 event for the timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct H2Event {
    pub dir: Dir,
    pub at: PacketRef,
    pub ts: Ts,
    pub kind: H2EventKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum H2EventKind {
    Detected(AppProtocol),
    Settings {
        ack: bool,
        params: Vec<(u16, u32)>,
    },
    Ping {
        ack: bool,
        opaque: u64,
        rtt: Option<Dur>,
    },
    GoAway(GoAwayInfo),
    RstStream(RstStreamInfo),
    /// A request: stream id and a short summary (`POST /pkg.Svc/Method`).
    StreamOpened {
        stream_id: u32,
        summary: String,
    },
    /// A response or trailers that ended a stream: `200`, `grpc-status 14 UNAVAILABLE "msg"` …
    StreamEnded {
        stream_id: u32,
        summary: String,
    },
    /// Bytes missing from the stream, or skipped to resynchronise.
    Gap {
        missing: u64,
    },
    Resync {
        skipped: u64,
    },
    /// A frame that could not be decoded (type, what was wrong).
    Malformed {
        what: String,
    },
}

/// Everything the HTTP/2 stage learned about one connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct H2Record {
    pub protocol: AppProtocol,
    pub events: Vec<H2Event>,
    pub summary: H2Summary,
}

/// One decoded frame for `--frames` (serialized as documented in docs/json.md).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FrameRecord {
    /// Packet in which the frame's last byte arrived.
    #[serde(skip)]
    pub at: PacketRef,
    #[serde(skip)]
    pub ts: Ts,
    pub direction: Dir,
    pub stream_id: u32,
    #[serde(rename = "type")]
    pub frame_type: String,
    pub flags: u8,
    pub length: u32,
    /// Type-specific details, flattened into the JSON object.
    #[serde(flatten)]
    pub details: serde_json::Map<String, serde_json::Value>,
}

#[derive(Clone, Debug)]
pub struct H2Config {
    /// Queue every frame as a [`FrameRecord`].
    pub keep_frames: bool,
    /// Cap on a decoded header list (bytes, RFC 7541 size accounting).
    pub max_header_list: usize,
}

impl Default for H2Config {
    fn default() -> Self {
        H2Config {
            keep_frames: false,
            max_header_list: 64 * 1024,
        }
    }
}

/// The per-connection HTTP/2 analyzer (protocol detection, frames, HPACK, gRPC).
#[derive(Debug, Default)]
pub struct StreamAnalyzer {
    record: H2Record,
    frames: Vec<FrameRecord>,
}

impl StreamAnalyzer {
    pub fn new(cfg: &H2Config) -> StreamAnalyzer {
        let _ = cfg;
        StreamAnalyzer::default()
    }

    pub fn drain_frames(&mut self) -> std::vec::Drain<'_, FrameRecord> {
        self.frames.drain(..)
    }

    pub fn finish(self) -> H2Record {
        self.record
    }
}

impl StreamSink for StreamAnalyzer {
    fn on_data(&mut self, dir: Dir, data: &[u8], meta: SegMeta) {
        let _ = (dir, data, meta);
    }
    fn on_gap(&mut self, dir: Dir, missing: u64, meta: SegMeta) {
        let _ = (dir, missing, meta);
    }
    fn on_end(&mut self, dir: Dir, meta: SegMeta) {
        let _ = (dir, meta);
    }
}
