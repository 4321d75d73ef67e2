//! The report: a serde model of the run (capture, summary, connections) and one renderer per format.
//!
//! The model is built once from the analysed connections and is the JSON schema (docs/json.md): keys are
//! stable, later features add keys. Human renderers (table, Markdown, HTML) read the same model and the time
//! display settings; none of them looks back into the analysis.

pub mod html;
pub mod incident;
pub mod json;
pub mod markdown;
pub mod store;
pub mod table;
pub mod time;

use crate::analyzer::Finished;
use crate::diagnose::{Cause, ClosedBy, Confidence};
use crate::http2::{AppProtocol, H2Record};
use crate::source::{FileInfo, PacketRef};
use crate::tcp::{Dir, DirFacts, RoleSource, TcpRecord};
use crate::ts::Ts;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};
pub use time::{TimeFmt, TimeMode, rfc3339};

/// A value per side.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Pair<T> {
    pub client: T,
    pub server: T,
}

impl<T: Copy> Pair<T> {
    fn of(t: &TcpRecord, f: impl Fn(&DirFacts) -> T) -> Pair<T> {
        Pair {
            client: f(t.dir(Dir::ToServer)),
            server: f(t.dir(Dir::ToClient)),
        }
    }
}

/// A capture frame cited by the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EvidenceOut {
    pub frame: u64,
    /// Index (1-based) of the input file, when several were read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<u16>,
    pub time: String,
    pub text: String,
    #[serde(skip)]
    pub ts: Ts,
}

/// One timeline line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EventOut {
    pub time: String,
    pub frame: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<u16>,
    /// For events spanning packets: the last frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until_frame: Option<u64>,
    pub from: &'static str,
    pub layer: crate::timeline::Layer,
    pub event: &'static str,
    pub text: std::borrow::Cow<'static, str>,
    #[serde(skip)]
    pub ts: Ts,
}

/// TCP counters of one connection.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TcpOut {
    pub packets: Pair<u64>,
    pub bytes: Pair<u64>,
    pub syn: Pair<u32>,
    pub fin: Pair<u32>,
    pub rst: Pair<u32>,
    pub retransmissions: Pair<u64>,
    pub fast_retransmissions: Pair<u64>,
    pub out_of_order: Pair<u64>,
    pub lost_segments: Pair<u64>,
    pub acked_unseen: Pair<u64>,
    pub dup_acks: Pair<u64>,
    pub keepalives: Pair<u64>,
    pub zero_windows: Pair<u64>,
    pub window_probes: Pair<u64>,
    pub snaplen_missing_bytes: Pair<u64>,
    pub handshake: HandshakeOut,
    pub mss: Pair<Option<u16>>,
    pub window_scale: Pair<Option<u8>>,
    pub sack_permitted: Pair<bool>,
    pub timestamps: Pair<bool>,
    /// Most common IP TTL / hop limit of each side's packets, as they arrived at the capture point.
    pub ttl: Pair<Option<u8>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HandshakeOut {
    pub completed: bool,
    /// SYN → SYN-ACK and SYN-ACK → ACK, in milliseconds, as seen at the capture point.
    pub syn_to_synack_ms: Option<f64>,
    pub synack_to_ack_ms: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PingOut {
    pub from: &'static str,
    pub frame: u64,
    pub time: String,
    pub opaque: String,
    pub ack_frame: Option<u64>,
    pub rtt_ms: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GoAwayOut {
    pub from: &'static str,
    pub frame: u64,
    pub time: String,
    pub last_stream_id: Option<u32>,
    pub error: Option<String>,
    pub debug: String,
    pub truncated: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Http2Out {
    /// How HTTP/2 was recognised: `preface`, `upgrade` or `resync` (mid-connection).
    pub detected: &'static str,
    pub frames: Pair<u64>,
    pub streams_opened: u64,
    pub streams_closed: u64,
    pub refused_streams: u64,
    pub pings_total: Pair<u64>,
    pub pings: Vec<PingOut>,
    pub goaways: Vec<GoAwayOut>,
    pub rst_streams: Pair<u64>,
    pub grpc_calls: u64,
    /// gRPC status name → calls that ended with it.
    pub grpc_status: BTreeMap<String, u64>,
    pub deadline_cancels: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub hpack_out_of_sync: bool,
    pub limits_hit: Vec<String>,
}

/// The same connection in the other capture (two vantage points).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OtherSide {
    /// 1-based input file of the other capture, and the connection's id there.
    pub file: u16,
    pub id: u64,
    /// Its addresses as that capture saw them (they differ behind a NAT).
    pub client: String,
    pub server: String,
    pub closed_by: ClosedBy,
    pub cause: Cause,
    /// The other capture's clock minus this one's, and the one-way delay between the capture points (from the
    /// handshake), in milliseconds.
    pub clock_offset_ms: Option<f64>,
    pub one_way_delay_ms: Option<f64>,
}

/// The capture point as one connection shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VantageConn {
    pub place: crate::diagnose::middlebox::Place,
    pub reason: String,
}

/// One connection in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ConnReport {
    pub id: u64,
    pub client: String,
    pub server: String,
    /// How the roles were decided; `roles_inferred` when no SYN was captured.
    pub roles: RoleSource,
    pub roles_inferred: bool,
    pub start: String,
    pub end: String,
    pub duration_s: f64,
    pub closed_by: ClosedBy,
    pub cause: Cause,
    pub confidence: Confidence,
    pub explanation: String,
    /// A few words (the table's reason column).
    pub reason: String,
    pub evidence: Vec<EvidenceOut>,
    pub advice: Vec<String>,
    pub factors: Vec<String>,
    /// The rule of docs/diagnosis.md that decided.
    pub rule: &'static str,
    /// For idle-timeout verdicts: the silence before the failure, in seconds.
    pub idle_s: Option<f64>,
    /// The longest silence after which this connection still carried traffic both ways.
    pub survived_idle_s: Option<f64>,
    /// Where the capture was taken, as this connection shows it.
    pub vantage: Option<VantageConn>,
    /// With two captures of the same traffic: the same connection as the other capture saw it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_side: Option<OtherSide>,
    /// What the payload was: `http2_preface`, `http2_upgrade`, `http2_resync`, `tls`, `other`, `unknown`.
    pub protocol: AppProtocol,
    pub tcp: TcpOut,
    pub http2: Option<Http2Out>,
    pub timeline: Vec<EventOut>,
    /// Timeline events left out in the middle of a very long connection.
    pub timeline_dropped: u64,
    #[serde(skip)]
    pub start_ts: Ts,
    #[serde(skip)]
    pub end_ts: Ts,
}

impl ConnReport {
    pub fn is_problem(&self) -> bool {
        !self.cause.is_normal()
    }
}

/// What was read.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CaptureOut {
    pub files: Vec<FileInfo>,
    pub packets: u64,
    pub bytes: u64,
    pub tcp_segments: u64,
    pub connections: u64,
    pub start: Option<String>,
    pub end: Option<String>,
    pub duration_s: f64,
    /// Damage in the inputs (one line each), and limits the analysis hit.
    pub warnings: Vec<String>,
    /// How the inputs were read (e.g. two vantage points of the same traffic).
    pub notes: Vec<String>,
    pub decode: crate::decode::DecodeStats,
    pub tcp: crate::tcp::TcpStats,
    #[serde(skip)]
    pub start_ts: Option<Ts>,
}

/// What the connections say together: counts, middlebox idle-kill clusters, the capture point, advice.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SummaryOut {
    pub connections: u64,
    pub problems: u64,
    pub by_cause: BTreeMap<String, u64>,
    pub by_closer: BTreeMap<String, u64>,
    pub idle_clusters: Vec<incident::IdleCluster>,
    pub vantage: Option<incident::VantageOut>,
    pub advice: Vec<String>,
}

/// The whole report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Report {
    pub capture: CaptureOut,
    pub summary: SummaryOut,
    pub connections: Vec<ConnReport>,
}

impl Report {
    pub fn summarize(&mut self) {
        let mut acc = incident::SummaryAcc::default();
        for c in &self.connections {
            acc.add(c);
        }
        self.summary = acc.finish();
    }
}

/// Evidence texts may start with their own frame ("frame 12: …"); the report shows the frame beside the text,
/// so that prefix is dropped (a reference to another file's frame stays).
fn without_own_frame(text: &str, at: PacketRef) -> &str {
    let own = if at.file == 0 {
        format!("frame {}: ", at.frame)
    } else {
        format!("file {} frame {}: ", at.file + 1, at.frame)
    };
    text.strip_prefix(own.as_str()).unwrap_or(text)
}

fn file_of(at: PacketRef, multi: bool) -> Option<u16> {
    multi.then_some(at.file.saturating_add(1))
}

fn ms(d: Option<crate::ts::Dur>) -> Option<f64> {
    d.map(|d| (d.as_millis_f64() * 1000.0).round() / 1000.0)
}

/// Builds one connection's report entry. `multi_file` adds the file index to frame references.
pub fn conn_report(f: &Finished, multi_file: bool) -> ConnReport {
    let t = &f.tcp;
    let v = &f.verdict;
    let evidence = v
        .evidence
        .iter()
        .map(|e| EvidenceOut {
            frame: e.at.frame,
            file: file_of(e.at, multi_file),
            time: rfc3339(e.ts),
            text: without_own_frame(&e.text, e.at).to_string(),
            ts: e.ts,
        })
        .collect();
    let timeline = f
        .timeline
        .events
        .iter()
        .map(|e| EventOut {
            time: rfc3339(e.ts),
            frame: e.at.frame,
            file: file_of(e.at, multi_file),
            until_frame: e.until.map(|(u, _)| u.frame).filter(|u| *u != e.at.frame),
            from: e.actor.as_str(),
            layer: e.layer,
            event: e.kind,
            text: e.text.clone(),
            ts: e.ts,
        })
        .collect();
    let hs = &t.handshake;
    let tcp = TcpOut {
        packets: Pair::of(t, |d| d.packets),
        bytes: Pair::of(t, |d| d.bytes),
        syn: Pair::of(t, |d| d.syn_count),
        fin: Pair::of(t, |d| d.fin_count),
        rst: Pair::of(t, |d| d.rst_count),
        retransmissions: Pair::of(t, |d| d.retransmissions),
        fast_retransmissions: Pair::of(t, |d| d.fast_retransmissions),
        out_of_order: Pair::of(t, |d| d.out_of_order),
        lost_segments: Pair::of(t, |d| d.lost_segments),
        acked_unseen: Pair::of(t, |d| d.acked_unseen),
        dup_acks: Pair::of(t, |d| d.dup_acks),
        keepalives: Pair::of(t, |d| d.keepalives),
        zero_windows: Pair::of(t, |d| d.zero_windows),
        window_probes: Pair::of(t, |d| d.window_probes),
        snaplen_missing_bytes: Pair::of(t, |d| d.snaplen_missing),
        handshake: HandshakeOut {
            completed: hs.completed(),
            syn_to_synack_ms: ms(hs.server_rtt()),
            synack_to_ack_ms: ms(hs.client_rtt()),
        },
        mss: Pair::of(t, |d| d.mss),
        window_scale: Pair::of(t, |d| d.window_scale),
        sack_permitted: Pair::of(t, |d| d.sack_permitted),
        timestamps: Pair::of(t, |d| d.timestamps),
        ttl: Pair::of(t, |d| d.fingerprint.ttl_mode),
    };
    ConnReport {
        id: t.id,
        client: t.client.to_string(),
        server: t.server.to_string(),
        roles: t.roles,
        roles_inferred: t.roles.inferred(),
        start: rfc3339(t.first.ts),
        end: rfc3339(t.last.ts),
        duration_s: t.last.ts.since(t.first.ts).as_secs_f64(),
        closed_by: v.closed_by,
        cause: v.cause,
        confidence: v.confidence,
        explanation: v.explanation.clone(),
        reason: if v.summary.is_empty() {
            v.explanation.clone()
        } else {
            v.summary.clone()
        },
        evidence,
        advice: v.advice.clone(),
        factors: v.factors.clone(),
        rule: v.rule,
        idle_s: v.idle.map(|d| d.as_secs_f64()),
        survived_idle_s: v.survived_idle.map(|d| d.as_secs_f64()),
        vantage: v.vantage.as_ref().map(|x| VantageConn {
            place: x.place,
            reason: x.reason.clone(),
        }),
        other_side: None,
        protocol: f.h2.protocol,
        tcp,
        http2: http2_out(&f.h2, multi_file),
        timeline,
        timeline_dropped: f.timeline.dropped,
        start_ts: t.first.ts,
        end_ts: t.last.ts,
    }
}

fn http2_out(h: &H2Record, multi_file: bool) -> Option<Http2Out> {
    let _ = multi_file;
    let detected = match h.protocol {
        AppProtocol::Http2Preface => "preface",
        AppProtocol::Http2Upgrade => "upgrade",
        AppProtocol::Http2Resync => "resync",
        _ => return None,
    };
    let s = &h.summary;
    let side = |d: Dir| d.sender();
    let pair = |a: [u64; 2]| Pair {
        client: a[0],
        server: a[1],
    };
    Some(Http2Out {
        detected,
        frames: pair(s.frames),
        streams_opened: s.streams_opened,
        streams_closed: s.streams_closed,
        refused_streams: s.refused_streams,
        pings_total: pair(s.pings_total),
        pings: s
            .pings
            .iter()
            .map(|p| PingOut {
                from: side(p.dir),
                frame: p.at.frame,
                time: rfc3339(p.ts),
                opaque: format!("{:016x}", p.opaque),
                ack_frame: p.ack.map(|(a, _)| a.frame),
                rtt_ms: ms(p.ack.map(|(_, t)| t.since(p.ts))),
            })
            .collect(),
        goaways: s
            .goaways
            .iter()
            .map(|g| GoAwayOut {
                from: side(g.dir),
                frame: g.at.frame,
                time: rfc3339(g.ts),
                last_stream_id: g.last_stream_id,
                error: g.error.map(|e| e.to_string()),
                debug: String::from_utf8_lossy(&g.debug).into_owned(),
                truncated: g.payload_truncated,
            })
            .collect(),
        rst_streams: pair(s.rst_streams_total),
        grpc_calls: s.grpc_calls,
        grpc_status: s
            .grpc_status
            .iter()
            .map(|(code, n)| (crate::diagnose::grpc_status_name(*code), *n))
            .collect(),
        deadline_cancels: s.deadline_cancels,
        gaps: s.gaps,
        resyncs: s.resyncs,
        hpack_out_of_sync: s.hpack_out_of_sync,
        limits_hit: s.limits_hit.clone(),
    })
}

/// Which connections to show.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub ports: Vec<u16>,
    pub hosts: Vec<std::net::IpAddr>,
    pub conns: Vec<u64>,
    pub problems_only: bool,
}

impl Selection {
    pub fn matches(&self, c: &ConnReport, t: &TcpRecord) -> bool {
        (self.ports.is_empty()
            || self
                .ports
                .iter()
                .any(|p| *p == t.client.port() || *p == t.server.port()))
            && (self.hosts.is_empty() || self.hosts.iter().any(|h| *h == t.client.ip() || *h == t.server.ip()))
            && (self.conns.is_empty() || self.conns.contains(&c.id))
            && (!self.problems_only || c.is_problem())
    }
}

/// Output formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Table,
    Json,
    Ndjson,
    Markdown,
    Html,
}

/// How to render.
#[derive(Clone, Copy, Debug, Default)]
pub struct RenderOpts {
    pub time: TimeFmt,
    pub timeline: bool,
    pub color: bool,
    /// Terminal width when writing to a terminal (tables wrap to it); `None` leaves lines whole.
    pub width: Option<u16>,
}

/// One connection's share of an output, made when the connection finishes so that nothing else of it needs to
/// be kept: the table row's cells (or one line), the paragraph or section for a problem, the timeline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Piece {
    pub id: u64,
    pub problem: bool,
    pub cells: Vec<String>,
    /// Output bytes as they are printed (UTF-8, kept as bytes: they are only ever written out).
    pub detail: Vec<u8>,
    pub timeline: String,
}

/// The pieces of a run in id order; they may be walked several times (rows first, then paragraphs).
pub trait Pieces {
    fn count(&self) -> usize;
    fn walk(&self, f: &mut dyn FnMut(&Piece) -> io::Result<()>) -> io::Result<()>;
    /// Every piece's `detail`, in id order, back to back, leaving out the first `skip_first` bytes of the
    /// first one (a separator its renderer puts before every piece but the first). For renderers whose pieces
    /// are text to concatenate (JSON, NDJSON): the report store hands its spilled text over in runs that the
    /// output copies without reading them (see [`Sink::copy_from`]).
    fn write_details(&self, out: &mut dyn Sink, skip_first: usize) -> io::Result<()> {
        write_walked_details(self, out, skip_first)
    }
}

/// [`Pieces::write_details`] by walking the pieces (what an implementation that keeps them in memory does).
pub(crate) fn write_walked_details<P: Pieces + ?Sized>(
    pieces: &P,
    out: &mut dyn Sink,
    skip_first: usize,
) -> io::Result<()> {
    let mut skip = skip_first;
    pieces.walk(&mut |p| {
        out.write_all(p.detail.get(skip..).unwrap_or_default())?;
        skip = 0;
        Ok(())
    })
}

impl Pieces for Vec<Piece> {
    fn count(&self) -> usize {
        self.len()
    }
    fn walk(&self, f: &mut dyn FnMut(&Piece) -> io::Result<()>) -> io::Result<()> {
        self.iter().try_for_each(f)
    }
}

/// Where a whole report is written: any writer, which can also take a range of a file (the report store's
/// spilled text). The range goes through `io::copy`, which for the CLI's standard output (a `BufWriter` on
/// `StdoutLock`) copies inside the kernel — `sendfile`, `splice` or `copy_file_range` by what the output is —
/// so the spilled text of a large run is not read back into memory to be written out again.
pub trait Sink: Write {
    fn copy_from(&mut self, file: &std::fs::File, offset: u64, len: u64) -> io::Result<()>;
}

impl<W: Write> Sink for W {
    fn copy_from(&mut self, file: &std::fs::File, offset: u64, len: u64) -> io::Result<()> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        let n = io::copy(&mut f.take(len), self)?;
        if n == len {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "whoclosed spill file cut short",
            ))
        }
    }
}

/// What is printed above the connections.
pub struct Head<'a> {
    pub capture: &'a CaptureOut,
    pub summary: &'a SummaryOut,
}

/// One renderer per output format.
pub trait Renderer {
    /// One connection's share of the output.
    fn piece(&self, c: &ConnReport, opts: &RenderOpts) -> Piece;
    /// The whole output from the head and the pieces in id order.
    fn write(&self, head: &Head<'_>, pieces: &dyn Pieces, opts: &RenderOpts, out: &mut dyn Sink) -> io::Result<()>;
    /// A report held in memory.
    fn render(&self, report: &Report, opts: &RenderOpts, out: &mut dyn Sink) -> io::Result<()> {
        let pieces: Vec<Piece> = report.connections.iter().map(|c| self.piece(c, opts)).collect();
        self.write(
            &Head {
                capture: &report.capture,
                summary: &report.summary,
            },
            &pieces,
            opts,
            out,
        )
    }
}

pub fn renderer(format: Format) -> Box<dyn Renderer> {
    match format {
        Format::Table => Box::new(table::Table),
        Format::Json => Box::new(json::Json),
        Format::Ndjson => Box::new(json::Ndjson),
        Format::Markdown => Box::new(markdown::Markdown),
        Format::Html => Box::new(html::Html),
    }
}
