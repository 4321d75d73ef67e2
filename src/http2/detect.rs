//! Telling HTTP/2 from the rest on any port, and finding frame boundaries mid-stream.
//!
//! - the client connection preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n` (RFC 9113 §3.4): HTTP/2 with prior knowledge;
//! - an HTTP/1.1 request with `Upgrade: h2c` answered by `101 Switching Protocols` (RFC 7540 §3.2);
//! - a TLS record header (handshake, version 3.x): TLS, not decoded;
//! - otherwise two plausible frame headers in a row ([`Head::plausible`]), the second right where the first
//!   frame ends: HTTP/2 joined mid-connection. [`scan`] does that search, also used after a gap.

use super::frame::{FrameType, HEAD_LEN, Head};

/// The client connection preface.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The fewest bytes of the client preface that, followed by a gap, are taken as the preface (cut by the
/// snapshot length: `PRI * HT` is no other protocol's start).
pub const MIN_CUT_PREFACE: usize = 8;

/// A strict prefix of the client preface, long enough to tell ([`MIN_CUT_PREFACE`]).
pub fn is_cut_preface(b: &[u8]) -> bool {
    (MIN_CUT_PREFACE..PREFACE.len()).contains(&b.len()) && PREFACE.starts_with(b)
}

/// Candidate frames longer than this are not used to resynchronise (they would have to be held whole).
pub const RESYNC_MAX_CANDIDATE: u32 = 64 * 1024;

/// What the first bytes of a direction look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sniff {
    /// Too few bytes to tell.
    NeedMore,
    Preface,
    Tls,
    /// An HTTP/1.x request line starts here.
    Http1Request,
    /// An HTTP/1.x status line starts here.
    Http1Response,
    /// None of the above: look for frames.
    Unknown,
}

pub fn sniff(b: &[u8]) -> Sniff {
    if b.is_empty() {
        return Sniff::NeedMore;
    }
    let n = b.len().min(PREFACE.len());
    if b.get(..n) == PREFACE.get(..n) {
        return if n == PREFACE.len() {
            Sniff::Preface
        } else {
            Sniff::NeedMore
        };
    }
    // A TLS record header: handshake at the start, or change_cipher_spec, alert, application_data when the
    // capture joined later.
    match b {
        [0x14..=0x17, 0x03, v, ..] if *v <= 0x04 => return Sniff::Tls,
        [0x14..=0x17] | [0x14..=0x17, 0x03] => return Sniff::NeedMore,
        _ => {}
    }
    let status = b"HTTP/1.";
    let m = b.len().min(status.len());
    if b.get(..m) == status.get(..m) {
        return if m == status.len() {
            Sniff::Http1Response
        } else {
            Sniff::NeedMore
        };
    }
    // A method token (RFC 9110 methods are upper-case letters, and "-" in some extensions) then a space.
    let token = b.iter().take_while(|c| c.is_ascii_uppercase() || **c == b'-').count();
    match b.get(token) {
        Some(b' ') if (3..=16).contains(&token) => Sniff::Http1Request,
        None if token == b.len() && token <= 16 => Sniff::NeedMore,
        _ => Sniff::Unknown,
    }
}

/// Cap on an HTTP/1.x message head.
pub const HTTP1_HEAD_CAP: usize = 16 * 1024;

/// A parsed HTTP/1.x message head.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Http1Head {
    /// Request method and target, or empty for a response.
    pub method: String,
    pub target: String,
    /// Response status, or 0 for a request.
    pub status: u16,
    /// `Upgrade` lists the `h2c` token.
    pub upgrade_h2c: bool,
    pub content_length: u64,
    /// Bytes the head takes, up to and including the blank line.
    pub len: usize,
}

/// The bytes are not an HTTP/1.x head (or one longer than [`HTTP1_HEAD_CAP`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotHttp1;

/// Parses an HTTP/1.x head at the start of `b`: `Ok(None)` when the blank line has not arrived yet.
pub fn http1_head(b: &[u8]) -> Result<Option<Http1Head>, NotHttp1> {
    let Some(end) = b.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if b.len() > HTTP1_HEAD_CAP {
            Err(NotHttp1)
        } else {
            Ok(None)
        };
    };
    let text = String::from_utf8_lossy(b.get(..end).unwrap_or(&[]));
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut head = Http1Head {
        len: end + 4,
        ..Http1Head::default()
    };
    let mut parts = first.splitn(3, ' ');
    let (a, b2) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if a.starts_with("HTTP/1.") {
        head.status = b2.parse().map_err(|_| NotHttp1)?;
    } else {
        head.method = a.to_string();
        head.target = b2.to_string();
    }
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            head.upgrade_h2c |= value.split(',').any(|t| t.trim().eq_ignore_ascii_case("h2c"));
        } else if name.eq_ignore_ascii_case("content-length") {
            head.content_length = value.trim().parse().unwrap_or(0);
        }
    }
    Ok(Some(head))
}

/// Result of a search for frame boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scan {
    /// A frame starts at this offset.
    Found(usize),
    /// Nothing before this offset can start a frame; look again from here when more bytes arrive.
    NeedMore(usize),
}

/// How many plausible headers in a row confirm a frame boundary.
pub const RESYNC_CHAIN: usize = 3;

/// Whether a header may start a resynchronised stream: plausible, and not a frame payload bytes imitate
/// easily (an empty DATA without END_STREAM or an empty HEADERS, as runs of zero padding do).
fn candidate(h: &Head, max_len: u32) -> bool {
    let empty_data = h.kind == FrameType::DATA && h.length == 0 && h.flags & super::frame::flags::END_STREAM == 0;
    let empty_headers = h.kind == FrameType::HEADERS && h.length == 0;
    !empty_data && !empty_headers && h.plausible(max_len)
}

/// Whether a header of which only `have` bytes were captured ([`Head::from_cut`]; 9 for a whole one) may start
/// frames found by trusting one header: plausible on what was captured, not an empty DATA without END_STREAM or
/// an empty HEADERS (zero padding imitates those), not a CONTINUATION (a lone one is never taken as a start).
pub fn candidate_cut(h: &Head, have: usize, max_len: u32) -> bool {
    let empty_data = h.kind == FrameType::DATA && h.length == 0 && h.flags & super::frame::flags::END_STREAM == 0;
    let empty_headers = h.kind == FrameType::HEADERS && h.length == 0;
    h.kind != FrameType::CONTINUATION && !empty_data && !empty_headers && h.plausible_cut(have, max_len, true)
}

/// What follows a candidate header.
enum Chain {
    /// [`RESYNC_CHAIN`] plausible headers in a row (or a plausible one too long to look past).
    Confirmed,
    /// Plausible frames that end exactly at the end of the bytes held.
    EndsAtEnd,
    /// More bytes are needed to tell.
    NeedMore,
    Broken,
}

/// Whether a frame's payload is what HTTP/2 puts there (for the strict search, when nothing else says the
/// connection is HTTP/2): SETTINGS with known identifiers and valid values, a non-zero WINDOW_UPDATE, a PING,
/// GOAWAY and RST_STREAM with registered error codes, a PRIORITY not on itself. `None`: the payload is not all
/// held yet.
fn telling(h: &Head, payload: Option<&[u8]>) -> Option<bool> {
    use super::frame::{GoAway, Priority, RstStream, Settings, WindowUpdate};
    let known_code = |c: Option<crate::http2::ErrorCode>| c.is_some_and(|c| c.name().is_some());
    Some(match h.kind {
        FrameType::PING => true,
        FrameType::SETTINGS => {
            let p = payload?;
            let s = Settings::load(h, p);
            h.length <= 60 && s.check(h).is_ok() && s.iter().all(|(id, _)| id.name().is_some())
        }
        FrameType::WINDOW_UPDATE => WindowUpdate::load(payload?).check(h).is_ok(),
        FrameType::GOAWAY => {
            let p = payload?.get(..8)?;
            known_code(GoAway::load(p).error) && p.first().is_some_and(|b| b & 0x80 == 0)
        }
        FrameType::RST_STREAM => known_code(RstStream::load(payload?).error),
        FrameType::PRIORITY => Priority::check(h, Priority::load(payload?).as_ref()).is_ok(),
        _ => false,
    })
}

fn empty_data(h: &Head) -> bool {
    h.kind == FrameType::DATA && h.length == 0 && h.flags & super::frame::flags::END_STREAM == 0
}

/// Walks the frames after `at`. Strict (nothing else says the connection is HTTP/2): no empty DATA without
/// END_STREAM anywhere, and either a [`telling`] frame among them or frames of one low-numbered stream (a
/// transfer in progress); binary protocols full of zeros chain plausible DATA headers otherwise.
fn chain(b: &[u8], at: usize, max_len: u32, strict: bool) -> Chain {
    let mut pos = at;
    let mut first_continuation = false;
    let mut telling_seen = false;
    let mut one_stream = true;
    let mut first_sid = 0;
    // `frames`: how many frames the chain has; one frame of one stream is not a transfer.
    let verdict = |telling_seen: bool, one_stream: bool, first_sid: u32, frames: usize| {
        if !strict || telling_seen || (one_stream && first_sid < 1 << 20 && frames > 1) {
            Chain::Confirmed
        } else {
            Chain::Broken
        }
    };
    for n in 0..RESYNC_CHAIN {
        let Some(h) = b.get(pos..).and_then(Head::from_prefix) else {
            // A CONTINUATION (the rest of a header block whose start was lost) is only taken with company.
            let enough = if first_continuation { n > 1 } else { n > 0 };
            return if pos == b.len() && enough {
                match verdict(telling_seen, one_stream, first_sid, n) {
                    Chain::Confirmed => Chain::EndsAtEnd,
                    other => other,
                }
            } else {
                Chain::NeedMore
            };
        };
        // The first header must be strictly plausible; the ones confirming it may carry undefined flags.
        let ok = if n == 0 {
            first_continuation = h.kind == FrameType::CONTINUATION;
            first_sid = h.stream_id;
            candidate(&h, max_len.min(RESYNC_MAX_CANDIDATE))
        } else {
            h.plausible_with(max_len, false) && !(strict && empty_data(&h))
        };
        if !ok {
            return Chain::Broken;
        }
        let len = usize::try_from(h.length).unwrap_or(usize::MAX);
        let start = pos.saturating_add(HEAD_LEN);
        if strict {
            one_stream &= h.stream_id == first_sid
                && matches!(h.kind, FrameType::DATA | FrameType::HEADERS | FrameType::CONTINUATION);
            match telling(&h, b.get(start..start.saturating_add(len))) {
                Some(t) => telling_seen |= t,
                None => return Chain::NeedMore,
            }
        }
        if n > 0 && h.length > RESYNC_MAX_CANDIDATE {
            // Too long to hold and look past: two headers will do.
            return verdict(telling_seen, one_stream, first_sid, n + 1);
        }
        pos = start.saturating_add(len);
    }
    verdict(telling_seen, one_stream, first_sid, RESYNC_CHAIN)
}

/// The first offset from `i` whose 9 bytes could be a [`candidate`] header, or where fewer than 9 bytes are
/// left. A candidate's length is at most [`RESYNC_MAX_CANDIDATE`] (its first byte is 0 or 1), its type a core
/// one (at most 9) and its reserved bit clear: three byte tests that reject almost every offset of a stream that
/// is not HTTP/2 (random bytes: 255 in 256 at the first test) before a header is parsed.
fn next_possible_start(b: &[u8], mut i: usize) -> usize {
    const _: () = assert!(RESYNC_MAX_CANDIDATE < 2 << 16);
    while let Some(&[len0, _, _, kind, _, sid0, ..]) = b.get(i..).and_then(|r| r.first_chunk::<HEAD_LEN>()) {
        if len0 <= 1 && kind <= 9 && sid0 & 0x80 == 0 {
            break;
        }
        i += 1;
    }
    i
}

/// A frame header at the very start of `b` that `scan` accepts alone when told to trust the first one.
fn trusted_start(b: &[u8], max_len: u32) -> bool {
    Head::from_prefix(b)
        .is_some_and(|h| h.kind != FrameType::CONTINUATION && candidate(&h, max_len.min(RESYNC_MAX_CANDIDATE)))
}

/// Looks for the first offset where [`RESYNC_CHAIN`] plausible frame headers follow each other, each right
/// after the previous frame's payload (the first a `candidate` of at most [`RESYNC_MAX_CANDIDATE`] bytes).
/// `at_end`: no more bytes will come (end of stream, or a gap), so plausible frames ending exactly at the end
/// of `b` are accepted. `trust_first`: a candidate at offset 0 is accepted alone (the connection is known to
/// be HTTP/2 and this direction is at its very start). `strict`: nothing says the connection is HTTP/2 yet, so
/// the frames must also show it (see `chain`).
pub fn scan(b: &[u8], max_len: u32, at_end: bool, trust_first: bool, strict: bool) -> Scan {
    let mut i = 0;
    while i < b.len() {
        if i == 0 && trust_first && trusted_start(b, max_len) {
            return Scan::Found(0);
        }
        i = next_possible_start(b, i);
        match chain(b, i, max_len, strict) {
            Chain::Confirmed => return Scan::Found(i),
            Chain::EndsAtEnd if at_end => return Scan::Found(i),
            Chain::EndsAtEnd | Chain::NeedMore if !at_end => return Scan::NeedMore(i),
            _ => {}
        }
        i += 1;
    }
    Scan::NeedMore(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_the_usual_starts() {
        assert_eq!(sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00"), Sniff::Preface);
        assert_eq!(sniff(b"PRI * HTTP/2"), Sniff::NeedMore);
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0x02, 0x00]), Sniff::Tls);
        assert_eq!(sniff(&[0x17, 0x03, 0x03, 0x40, 0x11]), Sniff::Tls);
        assert_eq!(sniff(&[0x17]), Sniff::NeedMore);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniff::Http1Request);
        assert_eq!(sniff(b"PRI / HTTP/1.1\r\n"), Sniff::Http1Request);
        assert_eq!(sniff(b"OPTIO"), Sniff::NeedMore);
        assert_eq!(sniff(b"HTTP/1.1 101 Switching"), Sniff::Http1Response);
        assert_eq!(sniff(b"HTT"), Sniff::NeedMore);
        assert_eq!(sniff(&[0, 0, 6, 4, 0, 0, 0, 0, 0]), Sniff::Unknown);
        assert_eq!(sniff(b"SSH-2.0-OpenSSH"), Sniff::Unknown);
    }

    #[test]
    fn a_cut_preface_is_a_long_enough_strict_prefix() {
        assert!(is_cut_preface(b"PRI * HT"));
        assert!(is_cut_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r"));
        assert!(!is_cut_preface(b"PRI * H"));
        assert!(!is_cut_preface(PREFACE));
        assert!(!is_cut_preface(b"PRI * HTTP/1.1"));
    }

    #[test]
    fn parses_an_upgrade_request_and_response() {
        let req = b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabc";
        let h = http1_head(req).unwrap().unwrap();
        assert_eq!(
            (h.method.as_str(), h.target.as_str(), h.upgrade_h2c, h.content_length),
            ("GET", "/x", true, 3)
        );
        assert_eq!(h.len, req.len() - 3);
        let resp = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
        let h = http1_head(resp).unwrap().unwrap();
        assert_eq!((h.status, h.upgrade_h2c), (101, true));
        assert_eq!(http1_head(b"GET / HTTP/1.1\r\nHost"), Ok(None));
        assert_eq!(http1_head(b"HTTP/1.1 abc\r\n\r\n"), Err(NotHttp1));
    }

    fn frame(kind: u8, flags: u8, sid: u32, payload: &[u8]) -> Vec<u8> {
        let h = Head {
            length: payload.len() as u32,
            kind: FrameType(kind),
            flags,
            stream_id: sid,
            reserved: false,
        };
        let mut v = h.to_bytes().to_vec();
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn scan_needs_three_headers_in_a_row() {
        let mut b = vec![0xde, 0xad, 0xbe, 0xef, 0x01];
        b.extend(frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
        b.extend(frame(8, 0, 0, &[0, 0, 1, 0]));
        // Two frames so far: wait, unless the stream has ended.
        assert_eq!(scan(&b, 16384, false, false, false), Scan::NeedMore(5));
        assert_eq!(scan(&b, 16384, true, false, false), Scan::Found(5));
        b.extend(frame(6, 0, 0, &[0; 8]));
        assert_eq!(scan(&b, 16384, false, false, false), Scan::Found(5));
        let one = &b[..5 + 15];
        assert_eq!(scan(one, 16384, false, false, false), Scan::NeedMore(5));
        assert_eq!(scan(one, 16384, true, false, false), Scan::Found(5));
        assert_eq!(scan(&b[5..5 + 15], 16384, false, true, false), Scan::Found(0));
        assert_eq!(scan(&[0xff; 100], 16384, false, false, false), Scan::NeedMore(92));
        assert_eq!(scan(&[], 16384, true, false, false), Scan::NeedMore(0));
    }

    #[test]
    fn zero_padding_before_a_real_header_is_not_a_frame() {
        // Zero padding, then a real DATA header (length 1823, PADDED, stream 1) and its payload: an empty DATA
        // "frame" on stream 1823 followed by a "frame" of 2048 bytes would chain, but an empty DATA without
        // END_STREAM is not taken as a first frame.
        let mut b = vec![0u8; 40];
        b.extend(frame(0, 0x08, 1, &vec![0; 1823]));
        b.extend(frame(6, 0, 0, &[0; 8]));
        b.extend(frame(6, 1, 0, &[0; 8]));
        assert_eq!(scan(&b, 16384, false, false, false), Scan::Found(40));
        assert_eq!(scan(&b, 16384, false, false, true), Scan::Found(40));
    }

    /// `scan` without the byte prefilter: every offset goes through `chain`.
    fn scan_every_offset(b: &[u8], max_len: u32, at_end: bool, trust_first: bool, strict: bool) -> Scan {
        let mut i = 0;
        while i < b.len() {
            if i == 0 && trust_first && trusted_start(b, max_len) {
                return Scan::Found(0);
            }
            match chain(b, i, max_len, strict) {
                Chain::Confirmed => return Scan::Found(i),
                Chain::EndsAtEnd if at_end => return Scan::Found(i),
                Chain::EndsAtEnd | Chain::NeedMore if !at_end => return Scan::NeedMore(i),
                _ => {}
            }
            i += 1;
        }
        Scan::NeedMore(b.len())
    }

    #[test]
    fn the_prefilter_changes_no_answer() {
        // Random bytes, bytes biased towards small values (zeros, ones: what passes the prefilter), and real
        // frames after junk, cut at every length.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for _ in 0..200 {
            let n = (next() % 300) as usize;
            inputs.push((0..n).map(|_| next() as u8).collect());
            inputs.push(
                (0..n)
                    .map(|_| [0, 0, 0, 1, 4, 8, 6, 0x80, next() as u8][(next() % 9) as usize])
                    .collect(),
            );
        }
        let mut real = vec![0x42, 0x00, 0x01];
        real.extend(frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
        real.extend(frame(8, 0, 0, &[0, 0, 1, 0]));
        real.extend(frame(0, 0, 1, &[7; 20]));
        real.extend(frame(6, 0, 0, &[0; 8]));
        for n in 0..=real.len() {
            inputs.push(real[..n].to_vec());
        }
        for b in &inputs {
            for (at_end, trust, strict) in [
                (false, false, false),
                (true, false, true),
                (false, true, true),
                (true, true, false),
            ] {
                assert_eq!(
                    scan(b, 16384, at_end, trust, strict),
                    scan_every_offset(b, 16384, at_end, trust, strict),
                    "{b:?}"
                );
            }
        }
    }

    #[test]
    fn strict_search_wants_frames_that_look_like_http2() {
        // Three DATA headers on unrelated streams (as binary protocols full of zeros give): only after a loss
        // in a known HTTP/2 connection.
        let mut b = frame(0, 0, 0x0010_0001, &[1, 2, 3]);
        b.extend(frame(0, 0, 0x0200_0003, &[4]));
        b.extend(frame(0, 1, 0x0000_0201, &[5, 6]));
        b.extend(frame(0, 0, 0x0000_0005, &[7]));
        assert_eq!(scan(&b, 16384, false, false, false), Scan::Found(0));
        assert_eq!(scan(&b, 16384, true, false, true), Scan::NeedMore(b.len()));
        // One stream's transfer, or a WINDOW_UPDATE among them, is HTTP/2 enough.
        let mut t = frame(0, 0, 7, &[1; 100]);
        t.extend(frame(0, 0, 7, &[2; 100]));
        t.extend(frame(0, 1, 7, &[3; 10]));
        assert_eq!(scan(&t, 16384, false, false, true), Scan::Found(0));
        let mut w = frame(0, 0, 0x0010_0001, &[1, 2, 3]);
        w.extend(frame(8, 0, 0, &[0, 0, 0x40, 0]));
        w.extend(frame(0, 0, 0x0200_0003, &[4]));
        assert_eq!(scan(&w, 16384, false, false, true), Scan::Found(0));
        // SETTINGS with an unknown identifier does not count.
        let mut u = frame(4, 0, 0, &[0x12, 0x34, 0, 0, 0, 1]);
        u.extend(frame(0, 0, 0x0200_0003, &[4]));
        u.extend(frame(0, 0, 0x0300_0003, &[4]));
        assert_eq!(scan(&u, 16384, true, false, true), Scan::NeedMore(u.len()));
    }
}
