//! The per-connection driver: takes the two reassembled byte streams from the TCP stage, tells what they carry,
//! cuts HTTP/2 frames out of them and hands each complete frame to `conn.rs`.
//!
//! Each direction is in one `Mode`: sniffing its first bytes, reading an HTTP/1.1 head (h2c upgrade), waiting
//! for the client preface, reading frames, looking for frames again (after a gap or mid-connection), or off (TLS,
//! not HTTP/2). Bytes that cannot be decided yet are held with the packet each came in (`Hold`), so that a
//! frame found later still carries the packet of its last byte.
//!
//! The common path — a direction in sync, frames whole inside a segment — reads frames straight from the
//! segment: no copy, no allocation. A frame split across segments is streamed: DATA content goes to the
//! counters as it arrives, header block fragments to the HPACK decoder (only an incomplete field is kept), and
//! only small control frames are held, up to a cap.

use super::conn::{self, Block, Conn, Cur, FrameCtx};
use super::detect::{self, Scan, Sniff};
use super::frame::{self, FrameType, HEAD_LEN, Head, flags};
use super::hpack;
use super::{AppProtocol, FrameRecord, H2Config, H2Record};
use crate::tcp::{Dir, SegMeta, StreamSink};

/// The most a direction's HPACK dynamic table may hold here (RFC 7541 accounting); a peer allowing more gets
/// this, and references to older entries show as unknown.
pub const HPACK_TABLE_CAP: usize = 64 * 1024;
/// The most [`H2Config::hpack_table_cap`] may raise it to.
pub const HPACK_TABLE_CAP_MAX: usize = 16 * 1024 * 1024;
/// Bytes a direction may be searched for frames before it is given up as not HTTP/2 (when neither direction
/// has been recognised).
pub const SNIFF_BUDGET: u64 = 256 * 1024;
/// Frames after a resynchronisation that must each look plausible, or the search goes on.
pub const PROBATION_FRAMES: u8 = 4;
/// An incomplete HPACK field held between fragments is kept up to `max(max_header_list, this)` bytes.
pub const HPACK_PENDING_MIN_CAP: usize = 64 * 1024;
/// Bytes of a direction, cut by a gap before the connection was recognised, kept until the other direction
/// tells whether it is HTTP/2 (a server's SETTINGS cut by the snapshot length before the client's preface).
pub const DEFERRED_CAP: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The first bytes of the direction: preface, TLS, HTTP/1, or something else.
    Sniff,
    /// An HTTP/1.1 request head (looking for `Upgrade: h2c`).
    Http1Request,
    /// An HTTP/1.1 response head (looking for `101`).
    Http1Response,
    /// After an upgrade request: its body, then the client preface.
    ExpectPreface,
    /// In sync: frames.
    Frames,
    /// Looking for frame boundaries.
    Resync,
    /// Not decoded (TLS, not HTTP/2, or given up).
    Off,
}

/// Bytes waiting for a decision, with the packet each run of them came in.
#[derive(Debug, Default)]
struct Hold {
    buf: Vec<u8>,
    /// End offset in `buf` and packet of each piece.
    segs: Vec<(usize, SegMeta)>,
}

impl Hold {
    fn push(&mut self, data: &[u8], meta: SegMeta) {
        if data.is_empty() {
            return;
        }
        self.buf.extend_from_slice(data);
        self.segs.push((self.buf.len(), meta));
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn len(&self) -> usize {
        self.buf.len()
    }

    fn consume(&mut self, n: usize) {
        let n = n.min(self.buf.len());
        if n == 0 {
            return;
        }
        self.buf.drain(..n);
        self.segs.retain_mut(|(end, _)| {
            if *end <= n {
                false
            } else {
                *end -= n;
                true
            }
        });
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.segs.clear();
    }

    fn first_meta(&self) -> Option<SegMeta> {
        self.segs.first().map(|s| s.1)
    }
}

/// Bytes held when a gap came, before anything said whether the connection is HTTP/2: decided once the other
/// direction tells (`kick`), dropped when this direction sends more first.
#[derive(Debug)]
struct Deferred {
    hold: Hold,
    missing: u64,
    meta: SegMeta,
}

/// One direction of the connection.
#[derive(Debug)]
struct DirState {
    mode: Mode,
    hold: Hold,
    hdr: [u8; HEAD_LEN],
    hdr_have: usize,
    cur: Option<Cur>,
    /// Payload of a held frame split across segments.
    ctrl: Vec<u8>,
    hpack: hpack::Decoder,
    block: Block,
    /// Frames were found in this direction at least once.
    synced_once: bool,
    /// Bytes skipped looking for frames since the last sync.
    skipped: u64,
    /// Sync was lost (gap, implausible header): the next sync is a resynchronisation.
    lost: bool,
    /// HTTP/1.1 body bytes before the client preface.
    expect_skip: u64,
    /// Frames still checked strictly after a resynchronisation: an implausible header among them means the
    /// boundary found was wrong, and the search goes on.
    probation: u8,
    ended: bool,
    /// Bytes were seen at all.
    seen: bool,
    last_meta: Option<SegMeta>,
    /// The first held byte is the first of the direction or the first after a gap: a segment start, where a
    /// frame is likely to start (snapshot-length cuts end at segment ends).
    at_boundary: bool,
    deferred: Option<Deferred>,
}

impl DirState {
    fn new(table_cap: usize) -> DirState {
        DirState {
            mode: Mode::Sniff,
            hold: Hold::default(),
            hdr: [0; HEAD_LEN],
            hdr_have: 0,
            cur: None,
            ctrl: Vec::new(),
            hpack: hpack::Decoder::new(table_cap),
            block: Block::default(),
            synced_once: false,
            skipped: 0,
            lost: false,
            expect_skip: 0,
            probation: 0,
            ended: false,
            seen: false,
            last_meta: None,
            at_boundary: true,
            deferred: None,
        }
    }
}

/// The per-connection HTTP/2 analyzer (protocol detection, frames, HPACK, gRPC).
///
/// Feed it through [`StreamSink`]; take `--frames` records with [`StreamAnalyzer::drain_frames`]; end with
/// [`StreamAnalyzer::close`] (finishes frames cut by the end of the capture; drain again after it if you want
/// their records) and [`StreamAnalyzer::finish`].
#[derive(Debug)]
pub struct StreamAnalyzer {
    conn: Conn,
    dirs: [DirState; 2],
    closed: bool,
}

impl Default for StreamAnalyzer {
    fn default() -> Self {
        StreamAnalyzer::new(&H2Config::default())
    }
}

impl StreamAnalyzer {
    pub fn new(cfg: &H2Config) -> StreamAnalyzer {
        let table_cap = cfg.hpack_table_cap.min(HPACK_TABLE_CAP_MAX);
        StreamAnalyzer {
            conn: Conn::new(cfg.keep_frames, cfg.max_header_list),
            dirs: [DirState::new(table_cap), DirState::new(table_cap)],
            closed: false,
        }
    }

    /// The frame records queued so far (with [`H2Config::keep_frames`]).
    pub fn drain_frames(&mut self) -> std::vec::Drain<'_, FrameRecord> {
        self.conn.frames.drain(..)
    }

    /// What was recognised so far.
    pub fn protocol(&self) -> AppProtocol {
        self.conn.protocol
    }

    /// The capture ended: finishes what the streams left open (a frame cut short is reported as truncated).
    /// Idempotent; [`StreamAnalyzer::finish`] calls it.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        for dir in Dir::BOTH {
            if let Some(meta) = self.state(dir).last_meta {
                self.end(dir, meta);
            }
        }
        if self.conn.protocol == AppProtocol::Unknown && self.dirs.iter().any(|d| d.seen) {
            let meta = self.dirs.iter().find_map(|d| d.last_meta);
            if let Some(meta) = meta
                && self
                    .dirs
                    .iter()
                    .all(|d| !d.seen || d.skipped > 0 || d.mode == Mode::Off)
            {
                self.conn.set_protocol(AppProtocol::Other, Dir::ToServer, meta);
            }
        }
    }

    pub fn finish(mut self) -> super::H2Record {
        self.close();
        let record: H2Record = self.conn.into_record();
        record
    }

    fn state(&mut self, dir: Dir) -> &mut DirState {
        let [a, b] = &mut self.dirs;
        match dir {
            Dir::ToServer => a,
            Dir::ToClient => b,
        }
    }

    fn split(&mut self, dir: Dir) -> (&mut DirState, &mut Conn) {
        let [a, b] = &mut self.dirs;
        let ds = match dir {
            Dir::ToServer => a,
            Dir::ToClient => b,
        };
        (ds, &mut self.conn)
    }

    fn all_off(&mut self) {
        for d in &mut self.dirs {
            d.mode = Mode::Off;
            d.hold.clear();
            d.deferred = None;
        }
    }

    fn input(&mut self, dir: Dir, data: &[u8], meta: SegMeta) {
        if data.is_empty() {
            return;
        }
        self.settle_deferred(dir);
        let (ds, conn) = self.split(dir);
        ds.seen = true;
        ds.last_meta = Some(meta);
        match ds.mode {
            Mode::Off => {}
            Mode::Frames if ds.hold.is_empty() => {
                if let Some(k) = frames_input(ds, conn, dir, data, meta) {
                    ds.hold.push(data.get(k..).unwrap_or(&[]), meta);
                    self.advance(dir, false);
                }
            }
            _ => {
                ds.hold.push(data, meta);
                self.advance(dir, false);
            }
        }
    }

    /// The connection was recognised from the other direction: decide on bytes held here.
    fn kick(&mut self, dir: Dir) {
        if self.state(dir).deferred.is_some() {
            self.settle_deferred(dir);
            return;
        }
        let ds = self.state(dir);
        if matches!(ds.mode, Mode::Sniff | Mode::Resync) && !ds.hold.is_empty() {
            let at_end = ds.ended;
            self.advance(dir, at_end);
        }
    }

    /// Runs the mode machine over the held bytes until it needs more. Every pass consumes bytes or changes
    /// mode, so this ends; the bound is a second guard. When a pass recognises the connection, the other
    /// direction decides on its held bytes too, before this one's frames if its bytes came first, so that frame
    /// records come out in capture order.
    fn advance(&mut self, dir: Dir, at_end: bool) {
        let bound = self.state(dir).hold.len().saturating_add(16);
        let mut deferred_kick = false;
        for _ in 0..bound {
            let before = self.conn.protocol;
            let progressed = match self.state(dir).mode {
                Mode::Off => {
                    self.state(dir).hold.clear();
                    false
                }
                Mode::Frames => self.replay(dir),
                Mode::Sniff => self.sniff_step(dir, at_end),
                Mode::Http1Request => self.http1_step(dir, true, at_end),
                Mode::Http1Response => self.http1_step(dir, false, at_end),
                Mode::ExpectPreface => self.expect_preface_step(dir, at_end),
                Mode::Resync => self.resync_step(dir, at_end),
            };
            if self.conn.protocol != before {
                let mine = self.state(dir).hold.first_meta().map(|m| m.at);
                let other = self.state(dir.reverse());
                let theirs = other
                    .hold
                    .first_meta()
                    .or_else(|| other.deferred.as_ref().and_then(|d| d.hold.first_meta()))
                    .map(|m| m.at);
                match (theirs, mine) {
                    (Some(t), Some(m)) if t > m => deferred_kick = true,
                    _ => self.kick(dir.reverse()),
                }
            }
            if !progressed {
                break;
            }
        }
        if deferred_kick {
            self.kick(dir.reverse());
        }
    }

    /// Frames mode with held bytes: feeds them through, piece by piece with their packets. `true` if sync was
    /// lost again (the rest is held, mode is Resync).
    fn replay(&mut self, dir: Dir) -> bool {
        let (ds, conn) = self.split(dir);
        if ds.hold.is_empty() {
            return false;
        }
        let Hold { mut buf, mut segs } = std::mem::take(&mut ds.hold);
        let mut start = 0;
        let mut lost = false;
        for &(end, meta) in &segs {
            let chunk = buf.get(start..end).unwrap_or(&[]);
            if lost {
                ds.hold.push(chunk, meta);
            } else if let Some(k) = frames_input(ds, conn, dir, chunk, meta) {
                ds.hold.push(chunk.get(k..).unwrap_or(&[]), meta);
                lost = true;
            }
            start = end;
        }
        if !lost {
            buf.clear();
            segs.clear();
            ds.hold = Hold { buf, segs };
        }
        lost
    }

    fn sniff_step(&mut self, dir: Dir, at_end: bool) -> bool {
        let (ds, conn) = self.split(dir);
        let Some(meta) = ds.hold.first_meta() else {
            return false;
        };
        let known_h2 = conn.protocol.is_http2();
        match detect::sniff(&ds.hold.buf) {
            Sniff::NeedMore if !at_end => false,
            Sniff::Preface => {
                preface_seen(ds, conn, dir);
                let p = if conn.upgrade_pending {
                    AppProtocol::Http2Upgrade
                } else {
                    AppProtocol::Http2Preface
                };
                conn.set_protocol(p, dir, meta);
                if dir == Dir::ToClient {
                    conn.note(
                        dir,
                        meta,
                        "client connection preface sent by the TCP server: the HTTP/2 client is the TCP server".into(),
                    );
                }
                true
            }
            Sniff::Tls if !known_h2 => {
                conn.set_protocol(AppProtocol::Tls, dir, meta);
                self.all_off();
                true
            }
            Sniff::Http1Request if !known_h2 => {
                ds.mode = Mode::Http1Request;
                true
            }
            Sniff::Http1Response if !known_h2 => {
                // Read it even without a request seen: the request may be lost, and a `101` still means h2c.
                ds.mode = Mode::Http1Response;
                true
            }
            _ => {
                ds.mode = Mode::Resync;
                true
            }
        }
    }

    fn http1_step(&mut self, dir: Dir, request: bool, at_end: bool) -> bool {
        let (ds, conn) = self.split(dir);
        let Some(meta) = ds.hold.first_meta() else {
            return false;
        };
        let head = match detect::http1_head(&ds.hold.buf) {
            Ok(Some(h)) => h,
            Ok(None) if !at_end => return false,
            _ => {
                // Not a readable HTTP/1.1 head after all (damaged, or cut): look for frames instead.
                ds.mode = Mode::Resync;
                return true;
            }
        };
        if request {
            // After any request head, look at what the client sends next: the preface (an upgrade, even one
            // whose header we could not read, or HTTP/2 inside a CONNECT tunnel), TLS (a tunnel), or more
            // HTTP/1.1 (not HTTP/2).
            ds.hold.consume(head.len);
            ds.mode = Mode::ExpectPreface;
            if head.method.eq_ignore_ascii_case("CONNECT") {
                conn.connect_pending = true;
            } else {
                ds.expect_skip = head.content_length;
            }
            if head.upgrade_h2c {
                conn.upgrade_pending = true;
                conn.summary.http2_client = Some(dir);
                conn.open_upgrade_stream(dir, meta, &head.method, &head.target);
            }
            return true;
        }
        if head.status == 101 && (head.upgrade_h2c || conn.upgrade_pending) {
            ds.hold.consume(head.len);
            ds.mode = Mode::Frames;
            ds.synced_once = true;
            if !conn.upgrade_pending {
                conn.note(
                    dir,
                    meta,
                    "HTTP/1.1 101 Switching Protocols without a recognised Upgrade: h2c request".into(),
                );
                conn.upgrade_pending = true;
            }
            conn.set_protocol(AppProtocol::Http2Upgrade, dir, meta);
        } else if (100..200).contains(&head.status) {
            ds.hold.consume(head.len);
        } else if conn.connect_pending && (200..300).contains(&head.status) {
            // A CONNECT tunnel is open: what follows is a new stream of bytes.
            conn.connect_pending = false;
            conn.note(dir, meta, format!("HTTP/1.1 CONNECT tunnel open ({})", head.status));
            ds.hold.consume(head.len);
            ds.mode = Mode::Sniff;
        } else {
            conn.set_protocol(AppProtocol::Other, dir, meta);
            self.all_off();
        }
        true
    }

    fn expect_preface_step(&mut self, dir: Dir, at_end: bool) -> bool {
        let (ds, conn) = self.split(dir);
        if ds.expect_skip > 0 {
            let n = usize::try_from(ds.expect_skip).unwrap_or(usize::MAX).min(ds.hold.len());
            ds.hold.consume(n);
            ds.expect_skip -= n as u64;
            if ds.expect_skip > 0 {
                return false;
            }
        }
        let Some(meta) = ds.hold.first_meta() else {
            return false;
        };
        match detect::sniff(&ds.hold.buf) {
            Sniff::NeedMore if !at_end => false,
            Sniff::Preface => {
                preface_seen(ds, conn, dir);
                let p = if conn.upgrade_pending {
                    AppProtocol::Http2Upgrade
                } else if conn.connect_pending {
                    AppProtocol::Http2Preface
                } else {
                    conn.note(
                        dir,
                        meta,
                        "client preface after an HTTP/1.1 request without a recognised Upgrade: h2c".into(),
                    );
                    AppProtocol::Http2Upgrade
                };
                conn.set_protocol(p, dir, meta);
                true
            }
            Sniff::Tls if conn.connect_pending => {
                conn.set_protocol(AppProtocol::Tls, dir, meta);
                self.all_off();
                true
            }
            _ if conn.upgrade_pending => {
                ds.mode = Mode::Resync;
                true
            }
            _ => {
                conn.set_protocol(AppProtocol::Other, dir, meta);
                self.all_off();
                true
            }
        }
    }

    fn resync_step(&mut self, dir: Dir, at_end: bool) -> bool {
        let d = dir.index();
        let (ds, conn) = self.split(dir);
        if ds.hold.is_empty() {
            return false;
        }
        if ds.hold.buf.starts_with(detect::PREFACE) {
            // The client preface after lost bytes (or where an HTTP/1.1 exchange was expected): as good as a
            // preface at the start.
            let Some(meta) = ds.hold.first_meta() else {
                return false;
            };
            if ds.lost || ds.skipped > 0 {
                conn.summary.resyncs += 1;
                conn.emit(dir, meta, super::H2EventKind::Resync { skipped: ds.skipped });
            }
            preface_seen(ds, conn, dir);
            ds.lost = false;
            ds.skipped = 0;
            let p = if conn.upgrade_pending {
                AppProtocol::Http2Upgrade
            } else {
                AppProtocol::Http2Preface
            };
            conn.set_protocol(p, dir, meta);
            return true;
        }
        let trust = trust_first(ds, conn);
        let max = conn.max_frame.get(d).copied().unwrap_or(frame::DEFAULT_MAX_FRAME_SIZE);
        let strict = !conn.protocol.is_http2();
        match detect::scan(&ds.hold.buf, max, at_end, trust.is_some(), strict) {
            Scan::Found(i) => {
                ds.hold.consume(i);
                ds.skipped += i as u64;
                let Some(meta) = ds.hold.first_meta() else {
                    return false;
                };
                let probation = if i == 0 && trust == Some(Trust::Start) {
                    0
                } else {
                    PROBATION_FRAMES
                };
                synced(ds, conn, dir, meta, probation);
                true
            }
            Scan::NeedMore(i) => {
                ds.hold.consume(i);
                ds.skipped += i as u64;
                if i > 0 {
                    ds.at_boundary = false;
                }
                if at_end {
                    ds.skipped += ds.hold.len() as u64;
                    ds.hold.clear();
                }
                if !ds.synced_once && !conn.protocol.is_http2() && ds.skipped > SNIFF_BUDGET {
                    ds.mode = Mode::Off;
                    ds.hold.clear();
                }
                false
            }
        }
    }

    fn gap(&mut self, dir: Dir, missing: u64, meta: SegMeta) {
        let known = self.conn.protocol.is_http2();
        let (ds, conn) = self.split(dir);
        ds.seen = true;
        ds.last_meta = Some(meta);
        if ds.mode == Mode::Off {
            return;
        }
        conn.summary.gaps += 1;
        conn.emit(dir, meta, super::H2EventKind::Gap { missing });
        if let Some(d) = ds.deferred.as_mut().filter(|_| !known) {
            // Two gaps in a row: one longer gap after the deferred bytes.
            d.missing = d.missing.saturating_add(missing);
            d.meta = meta;
            return;
        }
        self.settle_deferred(dir);
        let before = self.conn.protocol;
        self.gap_effect(dir, missing, meta);
        if self.conn.protocol != before {
            self.kick(dir.reverse());
        }
    }

    /// What `missing` lost bytes do to the direction's state.
    fn gap_effect(&mut self, dir: Dir, missing: u64, meta: SegMeta) {
        self.gap_effect_on_mode(dir, missing, meta);
        let ds = self.state(dir);
        if ds.mode == Mode::Resync && ds.hold.is_empty() {
            // The next byte is the first after the gap: a segment start.
            ds.at_boundary = true;
        }
    }

    fn gap_effect_on_mode(&mut self, dir: Dir, missing: u64, meta: SegMeta) {
        if self.cut_preface(dir, missing, meta) {
            return;
        }
        let (ds, conn) = self.split(dir);
        match ds.mode {
            Mode::Off => {}
            Mode::Http1Request | Mode::Http1Response => {
                conn.set_protocol(AppProtocol::Other, dir, meta);
                self.all_off();
            }
            Mode::Sniff | Mode::ExpectPreface => {
                ds.skipped += ds.hold.len() as u64;
                ds.hold.clear();
                ds.mode = Mode::Resync;
                ds.lost = true;
                ds.at_boundary = true;
                conn.lost_after_frames(dir, meta, missing);
            }
            Mode::Resync | Mode::Frames => {
                if ds.mode == Mode::Resync
                    && (self.cut_head_at_boundary(dir, missing, meta) || self.defer(dir, missing, meta))
                {
                    return;
                }
                // Bytes held before the gap: a frame ending exactly at the gap is still taken.
                let ds = self.state(dir);
                if ds.mode == Mode::Resync || !ds.hold.is_empty() {
                    self.advance(dir, true);
                }
                let (ds, conn) = self.split(dir);
                if ds.mode == Mode::Frames {
                    frames_gap(ds, conn, dir, missing, meta);
                } else {
                    ds.skipped += ds.hold.len() as u64;
                    ds.hold.clear();
                    ds.lost = true;
                    conn.lose_messages(dir);
                    conn.lost_after_frames(dir, meta, missing);
                }
            }
        }
    }

    /// A strict prefix of the client preface (at least [`detect::MIN_CUT_PREFACE`] bytes) right before a gap
    /// that covers the rest of it: the preface of a segment cut by the snapshot length. Taken as the preface.
    fn cut_preface(&mut self, dir: Dir, missing: u64, meta: SegMeta) -> bool {
        let ds = self.state(dir);
        let expecting = ds.mode == Mode::Sniff || (ds.mode == Mode::ExpectPreface && ds.expect_skip == 0);
        let have = ds.hold.len();
        let rest = detect::PREFACE.len().saturating_sub(have);
        if !expecting || !detect::is_cut_preface(&ds.hold.buf) || missing < rest as u64 {
            return false;
        }
        let Some(first) = ds.hold.first_meta() else {
            return false;
        };
        let last = ds.hold.segs.last().map_or(first, |s| s.1);
        // Complete it with the bytes it must have had, and let the usual path take it.
        ds.hold.push(detect::PREFACE.get(have..).unwrap_or(&[]), last);
        self.advance(dir, false);
        let (ds, conn) = self.split(dir);
        if ds.mode != Mode::Frames {
            return false; // cannot happen: a whole preface is always taken
        }
        conn.note(
            dir,
            first,
            format!(
                "the client connection preface is cut short in the capture ({have} of {} bytes, then a gap: snapshot \
                 length); taken as the preface",
                detect::PREFACE.len()
            ),
        );
        let beyond = missing - rest as u64;
        if beyond > 0 {
            self.gap_effect(dir, beyond, meta);
        }
        true
    }

    /// Resync at a segment start right after a gap (or the direction's start), in a connection known to be
    /// HTTP/2: the first bytes are a frame header cut by this gap (5 to 8 bytes captured: snapshot length).
    /// Taken when plausible, as a single whole header would be.
    fn cut_head_at_boundary(&mut self, dir: Dir, missing: u64, meta: SegMeta) -> bool {
        let (ds, conn) = self.split(dir);
        let have = ds.hold.len();
        let Some(trust) = trust_first(ds, conn) else {
            return false;
        };
        if !(frame::MIN_CUT_HEAD..HEAD_LEN).contains(&have) || missing < (HEAD_LEN - have) as u64 {
            return false;
        }
        let Some(head) = Head::from_cut(&ds.hold.buf) else {
            return false;
        };
        let max = conn
            .max_frame
            .get(dir.index())
            .copied()
            .unwrap_or(frame::DEFAULT_MAX_FRAME_SIZE);
        if !detect::candidate_cut(&head, have, max.min(detect::RESYNC_MAX_CANDIDATE)) {
            return false;
        }
        let Some(first) = ds.hold.first_meta() else {
            return false;
        };
        for (dst, src) in ds.hdr.iter_mut().zip(&ds.hold.buf) {
            *dst = *src;
        }
        ds.hdr_have = have;
        ds.hold.clear();
        let probation = if trust == Trust::Start { 0 } else { PROBATION_FRAMES };
        synced(ds, conn, dir, first, probation);
        frames_gap(ds, conn, dir, missing, meta);
        true
    }

    /// Before anything says whether the connection is HTTP/2, bytes at a segment start that may begin a frame
    /// cut by this gap are kept until the other direction tells (`kick`), instead of being skipped.
    fn defer(&mut self, dir: Dir, missing: u64, meta: SegMeta) -> bool {
        let (ds, conn) = self.split(dir);
        if conn.protocol != AppProtocol::Unknown
            || !ds.at_boundary
            || ds.hold.is_empty()
            || ds.hold.len() > DEFERRED_CAP
            || ds.ended
        {
            return false;
        }
        let max = conn
            .max_frame
            .get(dir.index())
            .copied()
            .unwrap_or(frame::DEFAULT_MAX_FRAME_SIZE);
        let have = ds.hold.len().min(HEAD_LEN);
        let starts_a_frame = Head::from_cut(&ds.hold.buf)
            .is_some_and(|h| detect::candidate_cut(&h, have, max.min(detect::RESYNC_MAX_CANDIDATE)));
        // Frames that end exactly at the gap are taken the usual way.
        if !starts_a_frame || matches!(detect::scan(&ds.hold.buf, max, true, false, true), Scan::Found(_)) {
            return false;
        }
        ds.deferred = Some(Deferred {
            hold: std::mem::take(&mut ds.hold),
            missing,
            meta,
        });
        true
    }

    /// Decides on deferred bytes: replayed (with their gap) once the connection is known to be HTTP/2, skipped
    /// otherwise.
    fn settle_deferred(&mut self, dir: Dir) {
        let Some(d) = self.state(dir).deferred.take() else {
            return;
        };
        if self.conn.protocol.is_http2() {
            let ds = self.state(dir);
            ds.hold = d.hold;
            ds.at_boundary = true;
            self.advance(dir, false);
            self.gap_effect(dir, d.missing, d.meta);
        } else {
            let (ds, conn) = self.split(dir);
            ds.skipped += d.hold.len() as u64;
            ds.lost = true;
            ds.at_boundary = true;
            conn.lose_messages(dir);
            conn.lost_after_frames(dir, d.meta, d.missing);
        }
    }

    fn end(&mut self, dir: Dir, meta: SegMeta) {
        if self.state(dir).ended {
            return;
        }
        self.settle_deferred(dir);
        self.state(dir).ended = true;
        if !self.state(dir).hold.is_empty() {
            self.advance(dir, true);
        }
        let (ds, conn) = self.split(dir);
        if ds.mode != Mode::Frames {
            return;
        }
        if let Some(cur) = ds.cur.as_mut() {
            cur.truncated = true;
            end_frame(ds, conn, dir, meta, None);
        }
        if ds.hdr_have > 0 {
            conn.malformed(
                dir,
                meta,
                format!("the stream ended {} bytes into a frame header", ds.hdr_have),
            );
            ds.hdr_have = 0;
        }
        if ds.block.active {
            conn.note(
                dir,
                meta,
                format!(
                    "the stream ended inside the header block of stream {}",
                    ds.block.stream_id
                ),
            );
            ds.block.reset();
        }
    }
}

impl StreamSink for StreamAnalyzer {
    fn on_data(&mut self, dir: Dir, data: &[u8], meta: SegMeta) {
        self.input(dir, data, meta);
    }

    fn on_gap(&mut self, dir: Dir, missing: u64, meta: SegMeta) {
        self.gap(dir, missing, meta);
    }

    fn on_end(&mut self, dir: Dir, meta: SegMeta) {
        self.end(dir, meta);
    }
}

/// Why a single plausible header may be trusted as a frame boundary (no chain of three needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trust {
    /// The direction's very first bytes, the connection being known to be HTTP/2 from the other direction.
    Start,
    /// The first bytes after a gap that lost sync, at a segment start, in a connection known to be HTTP/2
    /// (segments of a capture cut by the snapshot length each start with a frame, as do most segments).
    AfterGap,
}

/// The client connection preface at the head of `ds`: taken, and frames follow from this side, which is the
/// HTTP/2 client.
fn preface_seen(ds: &mut DirState, conn: &mut Conn, dir: Dir) {
    ds.hold.consume(detect::PREFACE.len());
    ds.mode = Mode::Frames;
    ds.synced_once = true;
    if conn.summary.http2_client.is_none() {
        conn.summary.http2_client = Some(dir);
    }
}

fn trust_first(ds: &DirState, conn: &Conn) -> Option<Trust> {
    if !conn.protocol.is_http2() {
        None
    } else if !ds.synced_once && ds.skipped == 0 {
        Some(Trust::Start)
    } else if ds.lost && ds.at_boundary {
        Some(Trust::AfterGap)
    } else {
        None
    }
}

/// Frame boundaries were found at the start of the held bytes (whose first byte came in `meta`).
fn synced(ds: &mut DirState, conn: &mut Conn, dir: Dir, meta: SegMeta, probation: u8) {
    ds.mode = Mode::Frames;
    ds.probation = probation;
    ds.at_boundary = false;
    if !conn.protocol.is_http2() {
        conn.set_protocol(AppProtocol::Http2Resync, dir, meta);
    }
    if ds.lost || ds.skipped > 0 {
        conn.summary.resyncs += 1;
        conn.emit(dir, meta, super::H2EventKind::Resync { skipped: ds.skipped });
    }
    ds.synced_once = true;
    ds.lost = false;
    ds.skipped = 0;
}

/// A header that cannot belong to a stream in sync: too long for the connection and not a well-formed frame
/// of a known type (reserved bit, undefined flags or unknown type). A merely oversized frame of a known type is
/// decoded (and reported).
fn implausible(h: &Head, max: u32) -> bool {
    let well_formed =
        h.kind.name().is_some() && !h.reserved && flags::defined(h.kind).is_some_and(|d| h.flags & !d == 0);
    h.length > max.max(frame::DEFAULT_MAX_FRAME_SIZE) && !well_formed
}

/// Reads frames from `data`. Returns `Some(offset)` when sync was lost there (the mode is now Resync and the
/// bytes from `offset` on are left to the caller).
fn frames_input(ds: &mut DirState, conn: &mut Conn, dir: Dir, data: &[u8], meta: SegMeta) -> Option<usize> {
    let d = dir.index();
    let mut pos = 0usize;
    while let Some(rest) = data.get(pos..).filter(|r| !r.is_empty()) {
        let Some(cur) = ds.cur.as_ref() else {
            // A frame header.
            let (head, start) = if ds.hdr_have == 0 {
                match Head::from_prefix(rest) {
                    Some(h) => {
                        pos += HEAD_LEN;
                        (h, pos - HEAD_LEN)
                    }
                    None => {
                        for (dst, src) in ds.hdr.iter_mut().zip(rest) {
                            *dst = *src;
                        }
                        ds.hdr_have = rest.len();
                        return None;
                    }
                }
            } else {
                let take = (HEAD_LEN - ds.hdr_have).min(rest.len());
                for (dst, src) in ds.hdr.iter_mut().skip(ds.hdr_have).zip(rest.iter().take(take)) {
                    *dst = *src;
                }
                ds.hdr_have += take;
                pos += take;
                if ds.hdr_have < HEAD_LEN {
                    return None;
                }
                ds.hdr_have = 0;
                (Head::parse(&ds.hdr), 0)
            };
            let max = conn.max_frame.get(d).copied().unwrap_or(frame::DEFAULT_MAX_FRAME_SIZE);
            let on_probation = ds.probation > 0;
            ds.probation = ds.probation.saturating_sub(1);
            if implausible(&head, max) || (on_probation && !head.plausible_with(frame::MAX_FRAME_LEN, false)) {
                conn.malformed(
                    dir,
                    meta,
                    format!(
                        "implausible frame header (type 0x{:02x}, flags 0x{:02x}, length {}, stream {}): looking for frames again",
                        head.kind.0, head.flags, head.length, head.stream_id
                    ),
                );
                lose_sync(ds, conn, dir, meta);
                return Some(if start == 0 && pos < HEAD_LEN { 0 } else { start + 1 });
            }
            start_frame(ds, conn, dir, head, HEAD_LEN, meta);
            if head.length == 0 {
                end_frame(ds, conn, dir, meta, Some(&[]));
            }
            continue;
        };
        // Payload.
        let remaining = cur.head.length.saturating_sub(cur.got);
        let n = usize::try_from(remaining).unwrap_or(usize::MAX).min(rest.len());
        let whole = cur.got == 0 && u32::try_from(n).is_ok_and(|n| n == cur.head.length);
        let piece = rest.get(..n).unwrap_or(&[]);
        payload_piece(ds, conn, dir, piece, whole, meta);
        pos += n;
        if ds.cur.as_ref().is_some_and(|c| c.got >= c.head.length) {
            end_frame(ds, conn, dir, meta, whole.then_some(piece));
        }
    }
    None
}

/// A frame starts; `have` of its header bytes were captured (fewer than 9 when a gap cut the header: the stream
/// id of a stream frame is then unknown, and the frame does not act on any stream).
fn start_frame(ds: &mut DirState, conn: &mut Conn, dir: Dir, head: Head, have: usize, meta: SegMeta) {
    ds.ctrl.clear();
    conn.frame_started(dir);
    let sid_known = have >= HEAD_LEN || !head.on_stream_type();
    let max = conn
        .max_frame
        .get(dir.index())
        .copied()
        .unwrap_or(frame::DEFAULT_MAX_FRAME_SIZE);
    if head.length > max {
        conn.malformed(
            dir,
            meta,
            format!(
                "{} frame of {} bytes, above SETTINGS_MAX_FRAME_SIZE {max}",
                head.kind, head.length
            ),
        );
    }
    match head.kind {
        FrameType::HEADERS | FrameType::PUSH_PROMISE => {
            if ds.block.active {
                conn.malformed(
                    dir,
                    meta,
                    format!(
                        "{} on stream {} while the header block of stream {} was not finished",
                        head.kind, head.stream_id, ds.block.stream_id
                    ),
                );
                ds.hpack.mark_out_of_sync();
                conn.out_of_sync(dir, meta, "a header block was abandoned");
            }
            let end_stream = head.kind == FrameType::HEADERS && head.flags & flags::END_STREAM != 0;
            ds.block.begin(
                head.stream_id,
                head.kind == FrameType::PUSH_PROMISE,
                end_stream && sid_known,
            );
            if !sid_known {
                ds.block.any_stream = true;
            }
        }
        FrameType::CONTINUATION => {
            let same = ds.block.stream_id == head.stream_id || ds.block.any_stream || !sid_known;
            if !ds.block.active || !same {
                conn.malformed(
                    dir,
                    meta,
                    format!(
                        "CONTINUATION on stream {} without a header block in progress",
                        head.stream_id
                    ),
                );
                ds.block.begin(head.stream_id, false, false);
                ds.block.broken = true;
                ds.hpack.mark_out_of_sync();
                conn.out_of_sync(dir, meta, "a CONTINUATION without its HEADERS");
            }
        }
        _ => {
            if ds.block.active {
                conn.malformed(
                    dir,
                    meta,
                    format!(
                        "{} frame inside the header block of stream {}",
                        head.kind, ds.block.stream_id
                    ),
                );
            }
        }
    }
    let mut cur = Cur::new(head);
    cur.head_have = u8::try_from(have.min(HEAD_LEN)).unwrap_or(9);
    cur.truncated = have < HEAD_LEN;
    if !sid_known {
        // Whatever of the payload comes cannot be put on a stream.
        cur.after_gap = true;
        if conn::is_streamed(head.kind) && head.kind != FrameType::DATA {
            ds.block.broken = true;
            ds.hpack.mark_out_of_sync();
            conn.out_of_sync(dir, meta, "a header block's frame header was cut");
        }
    }
    ds.cur = Some(cur);
}

fn payload_piece(ds: &mut DirState, conn: &mut Conn, dir: Dir, piece: &[u8], whole: bool, meta: SegMeta) {
    let Some(cur) = ds.cur.as_mut() else { return };
    let off = cur.got;
    cur.got = cur.got.saturating_add(u32::try_from(piece.len()).unwrap_or(u32::MAX));
    let kind = cur.head.kind;
    if conn::is_streamed(kind) {
        streamed_piece(ds, conn, dir, off, piece, meta);
        return;
    }
    if whole || cur.after_gap {
        return;
    }
    let cap = conn::hold_cap(kind);
    let take = cap.saturating_sub(ds.ctrl.len()).min(piece.len());
    ds.ctrl.extend_from_slice(piece.get(..take).unwrap_or(&[]));
    if take < piece.len() && cap > 0 && kind != FrameType::GOAWAY {
        cur.overflow = true;
    }
}

fn streamed_piece(ds: &mut DirState, conn: &mut Conn, dir: Dir, off: u32, piece: &[u8], meta: SegMeta) {
    let Some(cur) = ds.cur.as_mut() else { return };
    if cur.after_gap {
        // A gap hit this frame: the offsets of its fixed fields and padding are no longer trusted.
        return;
    }
    let head = cur.head;
    let mut off = usize::try_from(off).unwrap_or(usize::MAX);
    let mut piece = piece;
    if cur.bounds.is_none() {
        let need = frame::prefix_len(head.kind, head.flags);
        let have = usize::from(cur.prefix_have);
        let take = need.saturating_sub(have).min(piece.len());
        for (dst, src) in cur.prefix.iter_mut().skip(have).zip(piece.iter().take(take)) {
            *dst = *src;
        }
        cur.prefix_have = cur.prefix_have.saturating_add(u8::try_from(take).unwrap_or(u8::MAX));
        piece = piece.get(take..).unwrap_or(&[]);
        off += take;
        if usize::from(cur.prefix_have) >= need {
            cur.bounds = Some(frame::content_bounds(&head, cur.prefix()));
        }
    }
    let Some(Ok(b)) = cur.bounds.clone() else {
        return;
    };
    let start = usize::try_from(b.start).unwrap_or(usize::MAX).max(off);
    let end = usize::try_from(b.end)
        .unwrap_or(usize::MAX)
        .min(off.saturating_add(piece.len()));
    if start >= end {
        return;
    }
    let content = piece.get(start - off..end - off).unwrap_or(&[]);
    if head.kind == FrameType::DATA {
        conn.data_content(dir, head.stream_id, content);
    } else {
        hpack_feed(ds, conn, dir, content, meta);
    }
}

fn hpack_feed(ds: &mut DirState, conn: &mut Conn, dir: Dir, content: &[u8], meta: SegMeta) {
    let b = &mut ds.block;
    if !b.active || b.broken {
        return;
    }
    b.encoded = b.encoded.saturating_add(content.len());
    if b.encoded > conn.max_block {
        b.broken = true;
        b.pending.clear();
        ds.hpack.mark_out_of_sync();
        conn.limit(
            "header_block",
            dir,
            meta,
            format!(
                "a header block above {} encoded bytes: decoding stopped",
                conn.max_block
            ),
        );
        conn.out_of_sync(dir, meta, "a header block was too large to decode");
        return;
    }
    ds.hpack
        .set_allowed(conn.table_allowed.get(dir.index()).copied().unwrap_or(u32::MAX));
    let mut pending = std::mem::take(&mut b.pending);
    let mut sink = conn::FieldSink {
        info: &mut b.info,
        rec: if conn.keep_frames { Some(&mut b.rec) } else { None },
        list_size: &mut b.list_size,
        capped: &mut b.capped,
        max_list: conn.max_header_list,
        notices: &mut b.notices,
    };
    let result = if pending.is_empty() {
        match ds.hpack.decode(content, &mut sink) {
            Ok(n) => {
                pending.extend_from_slice(content.get(n..).unwrap_or(&[]));
                Ok(())
            }
            Err(e) => Err(e),
        }
    } else {
        pending.extend_from_slice(content);
        match ds.hpack.decode(&pending, &mut sink) {
            Ok(n) => {
                pending.drain(..n.min(pending.len()));
                Ok(())
            }
            Err(e) => Err(e),
        }
    };
    b.pending = pending;
    conn.handle_notices(dir, meta, &mut b.notices);
    let cap = conn.max_header_list.max(HPACK_PENDING_MIN_CAP);
    if let Err(e) = result {
        b.broken = true;
        b.pending.clear();
        ds.hpack.mark_out_of_sync();
        conn.malformed(
            dir,
            meta,
            format!("HPACK: {e} in the header block of stream {}", b.stream_id),
        );
        conn.out_of_sync(dir, meta, "a header block could not be decoded");
    } else if b.pending.len() > cap {
        b.broken = true;
        b.pending.clear();
        ds.hpack.mark_out_of_sync();
        conn.limit(
            "hpack_field",
            dir,
            meta,
            format!("a header field above {cap} bytes: its block not decoded further"),
        );
        conn.out_of_sync(dir, meta, "a header field was too large to decode");
    }
}

/// The current frame is complete or cut short.
fn end_frame(ds: &mut DirState, conn: &mut Conn, dir: Dir, meta: SegMeta, whole: Option<&[u8]>) {
    let Some(mut cur) = ds.cur.take() else { return };
    let ctrl = std::mem::take(&mut ds.ctrl);
    let mut payload = whole.unwrap_or(&ctrl);
    if !conn::is_streamed(cur.head.kind) {
        let cap = conn::hold_cap(cur.head.kind);
        if payload.len() > cap {
            if cur.head.kind != FrameType::GOAWAY && cap > 0 {
                cur.overflow = true;
            }
            payload = payload.get(..cap).unwrap_or(payload);
        }
    }
    conn::finish_frame(
        conn,
        FrameCtx {
            block: &mut ds.block,
            hpack: &mut ds.hpack,
        },
        dir,
        meta,
        &cur,
        payload,
    );
    ds.ctrl = ctrl;
}

/// Bytes of unknown content are gone: look for frames again.
fn lose_sync(ds: &mut DirState, conn: &mut Conn, dir: Dir, meta: SegMeta) {
    ds.mode = Mode::Resync;
    ds.lost = true;
    ds.at_boundary = false;
    ds.hdr_have = 0;
    ds.cur = None;
    ds.probation = 0;
    if ds.block.active {
        ds.block.reset();
    }
    ds.hpack.mark_out_of_sync();
    conn.out_of_sync(
        dir,
        meta,
        "bytes were lost between frames (header blocks may be among them)",
    );
    conn.lose_messages(dir);
}

/// A gap while reading frames.
fn frames_gap(ds: &mut DirState, conn: &mut Conn, dir: Dir, missing: u64, meta: SegMeta) {
    if ds.cur.is_none() && ds.hdr_have > 0 && cut_head(ds, conn, dir, missing, meta) {
        return;
    }
    let Some(cur) = ds.cur.as_mut() else {
        conn.lost_after_frames(dir, meta, missing);
        lose_sync(ds, conn, dir, meta);
        return;
    };
    cur.truncated = true;
    cur.after_gap = true;
    let head = cur.head;
    let sid_known = cur.head_have >= 9 || !head.on_stream_type();
    match head.kind {
        FrameType::DATA => {
            if sid_known
                && let Some(s) = conn.streams.get_mut(head.stream_id)
                && let Some(m) = s.messages.get_mut(dir.index())
            {
                m.lose();
            }
        }
        FrameType::HEADERS | FrameType::PUSH_PROMISE | FrameType::CONTINUATION => {
            ds.block.broken = true;
            ds.block.pending.clear();
            ds.hpack.mark_out_of_sync();
            conn.out_of_sync(dir, meta, "bytes of a header block were lost");
        }
        _ => {}
    }
    let remaining = u64::from(head.length.saturating_sub(cur.got));
    if missing < remaining {
        cur.got = cur.got.saturating_add(u32::try_from(missing).unwrap_or(u32::MAX));
        return;
    }
    cur.got = head.length;
    end_frame(ds, conn, dir, meta, None);
    if missing > remaining {
        conn.lost_after_frames(dir, meta, missing - remaining);
        lose_sync(ds, conn, dir, meta);
    }
}

/// A gap right after the first `hdr_have` bytes of a frame header. With at least [`frame::MIN_CUT_HEAD`] of
/// them (length, type and flags known) and the gap covering the rest of the header, the frame is followed: its
/// boundaries are known, so the stream stays in sync when the gap ends inside it or at its end. `false` when
/// it cannot be followed (the caller loses sync).
fn cut_head(ds: &mut DirState, conn: &mut Conn, dir: Dir, missing: u64, meta: SegMeta) -> bool {
    let have = ds.hdr_have;
    let need = HEAD_LEN.saturating_sub(have);
    if have < frame::MIN_CUT_HEAD || missing < need as u64 {
        return false;
    }
    let Some(head) = Head::from_cut(ds.hdr.get(..have).unwrap_or(&[])) else {
        return false;
    };
    ds.hdr_have = 0;
    let max = conn
        .max_frame
        .get(dir.index())
        .copied()
        .unwrap_or(frame::DEFAULT_MAX_FRAME_SIZE);
    let on_probation = ds.probation > 0;
    ds.probation = ds.probation.saturating_sub(1);
    if implausible(&head, max) || (on_probation && !head.plausible_cut(have, frame::MAX_FRAME_LEN, false)) {
        conn.malformed(
            dir,
            meta,
            format!(
                "implausible frame header cut after {have} bytes (type 0x{:02x}, flags 0x{:02x}, length {}): looking for frames again",
                head.kind.0, head.flags, head.length
            ),
        );
        return false;
    }
    start_frame(ds, conn, dir, head, have, meta);
    let rest = missing - need as u64;
    if rest > 0 {
        frames_gap(ds, conn, dir, rest, meta);
    } else if head.length == 0 {
        end_frame(ds, conn, dir, meta, None);
    }
    true
}
