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
    match b {
        [0x16, 0x03, v, ..] if *v <= 0x04 => return Sniff::Tls,
        [0x16] | [0x16, 0x03] => return Sniff::NeedMore,
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
    let token = b
        .iter()
        .take_while(|c| c.is_ascii_uppercase() || **c == b'-')
        .count();
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
            head.upgrade_h2c |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("h2c"));
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

/// Looks for the first offset where a plausible frame header (not CONTINUATION, at most
/// [`RESYNC_MAX_CANDIDATE`] long) is followed by another plausible header right after its payload.
/// `at_end`: no more bytes will come, so a candidate that ends exactly at the end of `b` is accepted alone.
/// `trust_first`: a plausible header at offset 0 is accepted alone (the connection is known to be HTTP/2 and
/// this direction is at its very start).
pub fn scan(b: &[u8], max_len: u32, at_end: bool, trust_first: bool) -> Scan {
    let cand_max = max_len.min(RESYNC_MAX_CANDIDATE);
    let mut i = 0;
    while let Some(rest) = b.get(i..) {
        let Some(h) = Head::from_prefix(rest) else {
            return Scan::NeedMore(i);
        };
        if h.kind != FrameType::CONTINUATION && h.plausible(cand_max) {
            if i == 0 && trust_first {
                return Scan::Found(0);
            }
            let next = i + HEAD_LEN + usize::try_from(h.length).unwrap_or(usize::MAX);
            match b.get(next..).map(Head::from_prefix) {
                Some(Some(h2)) if h2.plausible(max_len) => return Scan::Found(i),
                Some(Some(_)) => {}
                Some(None) if at_end && next == b.len() => return Scan::Found(i),
                _ if at_end => {}
                _ => return Scan::NeedMore(i),
            }
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
        assert_eq!(
            sniff(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00"),
            Sniff::Preface
        );
        assert_eq!(sniff(b"PRI * HTTP/2"), Sniff::NeedMore);
        assert_eq!(sniff(&[0x16, 0x03, 0x01, 0x02, 0x00]), Sniff::Tls);
        assert_eq!(sniff(b"GET / HTTP/1.1\r\n"), Sniff::Http1Request);
        assert_eq!(sniff(b"PRI / HTTP/1.1\r\n"), Sniff::Http1Request);
        assert_eq!(sniff(b"OPTIO"), Sniff::NeedMore);
        assert_eq!(sniff(b"HTTP/1.1 101 Switching"), Sniff::Http1Response);
        assert_eq!(sniff(b"HTT"), Sniff::NeedMore);
        assert_eq!(sniff(&[0, 0, 6, 4, 0, 0, 0, 0, 0]), Sniff::Unknown);
        assert_eq!(sniff(b"SSH-2.0-OpenSSH"), Sniff::Unknown);
    }

    #[test]
    fn parses_an_upgrade_request_and_response() {
        let req = b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nContent-Length: 3\r\n\r\nabc";
        let h = http1_head(req).unwrap().unwrap();
        assert_eq!(
            (
                h.method.as_str(),
                h.target.as_str(),
                h.upgrade_h2c,
                h.content_length
            ),
            ("GET", "/x", true, 3)
        );
        assert_eq!(h.len, req.len() - 3);
        let resp =
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
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
    fn scan_needs_two_headers_in_a_row() {
        let mut b = vec![0xde, 0xad, 0xbe, 0xef, 0x01];
        b.extend(frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
        b.extend(frame(8, 0, 0, &[0, 0, 1, 0]));
        assert_eq!(scan(&b, 16384, false, false), Scan::Found(5));
        // Only one frame so far: wait, unless the stream has ended.
        let one = &b[..5 + 15];
        assert_eq!(scan(one, 16384, false, false), Scan::NeedMore(5));
        assert_eq!(scan(one, 16384, true, false), Scan::Found(5));
        assert_eq!(scan(&b[5..5 + 15], 16384, false, true), Scan::Found(0));
        assert_eq!(scan(&[0xff; 100], 16384, false, false), Scan::NeedMore(92));
        assert_eq!(scan(&[], 16384, true, false), Scan::NeedMore(0));
    }
}
