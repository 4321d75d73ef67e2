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
//!
//! Layout: `frame/` (one file per frame type, the 9-byte header, the open [`frame::FrameType`]), `hpack/`
//! (decoder, Huffman, tables), `grpc.rs`, `detect.rs` (preface, h2c upgrade, TLS, resynchronisation),
//! `analyzer.rs` (per-direction byte handling), `conn.rs` (what frames mean, events, records), `streams.rs`,
//! `log.rs`. docs/http2.md has the decoding notes, the differences from tshark and the `--frames` fields.
//!
//! LIMITS (memory is bounded whatever the input; every limit hit is said in [`H2Summary::limits_hit`] and as a
//! `Note` event, never silently):
//! - DATA is never held: its content is streamed to the byte and gRPC message counters, whatever its length;
//! - HEADERS/PUSH_PROMISE/CONTINUATION fragments are HPACK-decoded as they arrive; only an incomplete field is
//!   held, up to `max(max_header_list, 64 KiB)` ([`analyzer::HPACK_PENDING_MIN_CAP`]); a header block stops being
//!   decoded after `max(4 × max_header_list, 256 KiB)` encoded bytes (endless CONTINUATION); the decoded list
//!   is capped at [`H2Config::max_header_list`] (RFC 7541 size accounting; the fields beyond are decoded to keep
//!   the table in sync but not shown);
//! - the HPACK dynamic table is capped per direction at [`H2Config::hpack_table_cap`] (default 64 KiB,
//!   [`analyzer::HPACK_TABLE_CAP`]; at most [`analyzer::HPACK_TABLE_CAP_MAX`]);
//! - other frames split across segments are held up to 16 KiB ([`conn::MAX_CONTROL_PAYLOAD`]); GOAWAY keeps
//!   its first 8 bytes and 4 KiB of debug data ([`conn::GOAWAY_DEBUG_CAP`]); unknown types are skipped;
//! - streams: at most 4096 followed at once ([`streams::MAX_TRACKED_STREAMS`]), closed ones forgotten;
//! - events: per kind, the first and last N are kept (N = 64 control, 128 PING, 32 GOAWAY, 256 RST_STREAM,
//!   256 stream, 64 gap/resync/malformed); the summary keeps the first and last 128 PINGs, 32 GOAWAYs and
//!   256 RST_STREAMs, and the totals count everything;
//! - resynchronisation holds at most one candidate frame of up to 64 KiB plus a header; a direction that never
//!   showed frames is given up after 256 KiB ([`analyzer::SNIFF_BUDGET`]); an HTTP/1.1 head is read up to
//!   16 KiB; bytes cut by a gap before the connection is recognised are kept up to 16 KiB per direction
//!   ([`analyzer::DEFERRED_CAP`]) until the other direction tells whether it is HTTP/2.
//!
//! Captures cut by the snapshot length are followed (docs/http2.md): a cut preface, frame headers cut after 5
//! bytes, a single plausible header at the segment start after a gap once the connection is known to be HTTP/2.
//!
//! CPU is linear in the input: every byte is looked at a bounded number of times (resynchronisation tries each
//! offset once; HPACK representations are re-parsed only while incomplete, and only their length prefix).

pub mod analyzer;
pub mod conn;
pub mod detect;
pub mod frame;
pub mod grpc;
pub mod hpack;
mod log;
pub mod streams;

pub use analyzer::StreamAnalyzer;

use crate::source::PacketRef;
use crate::tcp::Dir;
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
    /// The opaque data; when the capture cut the PING (snapshot length), the captured bytes with the rest zero.
    pub opaque: u64,
    /// The ACK's packet and time.
    pub ack: Option<(PacketRef, Ts)>,
    /// How many of the 8 opaque bytes were captured (8 unless the capture cut the frame). An ACK is matched to
    /// a cut PING on the bytes both show (and to the oldest PING awaiting one when neither shows any).
    pub opaque_len: u8,
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
    /// Length of the debug data the frame declared (`debug` holds at most the first 4 KiB of it).
    pub debug_len: u32,
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
    /// PING ACKs per direction (the direction of the ACK).
    pub ping_acks_total: [u64; 2],
    /// Non-ACK PINGs never matched by an ACK (opaque data, opposite direction) by the end of the capture.
    pub pings_unanswered: u64,
    /// GOAWAY frames per direction (`goaways` keeps the first and last 32).
    pub goaways_total: [u64; 2],
    /// SETTINGS in effect per direction (sender's values, merged over its SETTINGS frames), by identifier.
    pub settings: [Vec<(u16, u32)>; 2],
    /// Last frame of any type per direction.
    pub last_frame: [Option<(PacketRef, Ts)>; 2],
    /// DATA content bytes (padding excluded) per direction.
    pub data_bytes: [u64; 2],
    /// gRPC messages (5-byte length prefixes) per direction.
    pub grpc_messages: [u64; 2],
    /// Streams still open when the capture ended.
    pub streams_active: u64,
    /// Highest stream id opened by a request seen.
    pub highest_stream_id: u32,
    /// The direction the HTTP/2 client sends in: where the preface (or the upgrade request, or the first
    /// request) came from. Normally `ToServer`.
    pub http2_client: Option<Dir>,
    /// Frames or fields breaking RFC 9113/7541 (each also a `Malformed` event, within the event cap).
    pub malformed: u64,
    /// Events not kept because of the per-kind caps.
    pub events_dropped: u64,
    /// Per direction, bytes the capture did not show (gaps: lost segments, snapshot-length cuts) after the end
    /// of the last frame seen, with the packet and time of the last such gap. `None` when the direction's last
    /// frame was followed by no loss. A direction ending with lost bytes had frames there that we cannot show
    /// (a server GOAWAY with debug data `too_many_pings` is 31 bytes: 9 header, 8 fields, 14 debug).
    pub lost_after_last_frame: [Option<(PacketRef, Ts, u64)>; 2],
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
    /// Something worth knowing that is not a protocol event: roles reversed, a limit hit, HPACK out of sync.
    Note {
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
    /// Cap on each direction's HPACK dynamic table (bytes, RFC 7541 accounting; default
    /// [`analyzer::HPACK_TABLE_CAP`], 64 KiB). A peer allowing a larger table gets this much: references to older
    /// entries show as `<unknown dynamic index N>`, never as a wrong field.
    pub hpack_table_cap: usize,
}

impl Default for H2Config {
    fn default() -> Self {
        H2Config {
            keep_frames: false,
            max_header_list: 64 * 1024,
            hpack_table_cap: analyzer::HPACK_TABLE_CAP,
        }
    }
}
