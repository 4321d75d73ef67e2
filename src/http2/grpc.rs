//! gRPC over HTTP/2 (grpc/grpc `doc/PROTOCOL-HTTP2.md`, `doc/statuscodes.md`): recognising calls, reading
//! `grpc-status`, `grpc-message` and `grpc-timeout`, and counting length-prefixed messages in DATA.

use crate::ts::Dur;

/// `content-type: application/grpc` or `application/grpc+proto`, `application/grpc-web` …
pub fn is_grpc_content_type(v: &[u8]) -> bool {
    v.len() >= 16 && v.get(..16).is_some_and(|p| p.eq_ignore_ascii_case(b"application/grpc"))
}

/// Name of a gRPC status code.
pub fn status_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => return None,
    })
}

/// Parses `grpc-status` (a decimal number).
pub fn parse_status(v: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(v).ok()?.trim();
    s.parse().ok()
}

/// Parses `grpc-timeout`: 1 to 8 ASCII digits and a unit, H M S m u n.
pub fn parse_timeout(v: &[u8]) -> Option<Dur> {
    let (unit, digits) = v.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n: i64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Dur::from_secs(n.saturating_mul(3600)),
        b'M' => Dur::from_secs(n.saturating_mul(60)),
        b'S' => Dur::from_secs(n),
        b'm' => Dur::from_millis(n),
        b'u' => Dur::from_micros(n),
        b'n' => Dur::from_nanos(n),
        _ => return None,
    })
}

/// Decodes `grpc-message` (percent-encoded UTF-8); a bad escape is kept as is.
pub fn percent_decode(v: &[u8]) -> String {
    let mut s = String::new();
    percent_decode_into(v, &mut s);
    s
}

/// [`percent_decode`] into a reused buffer (no allocation for the common plain or empty message).
pub fn percent_decode_into(v: &[u8], out: &mut String) {
    out.clear();
    if v.is_empty() {
        return;
    }
    if !v.contains(&b'%') {
        match std::str::from_utf8(v) {
            Ok(s) => out.push_str(s),
            Err(_) => out.push_str(&String::from_utf8_lossy(v)),
        }
        return;
    }
    let mut bytes = Vec::with_capacity(v.len());
    let mut i = 0;
    while let Some(&b) = v.get(i) {
        if b == b'%'
            && let (Some(h), Some(l)) = (v.get(i + 1).and_then(hex_val), v.get(i + 2).and_then(hex_val))
        {
            bytes.push(h << 4 | l);
            i += 3;
            continue;
        }
        bytes.push(b);
        i += 1;
    }
    out.push_str(&String::from_utf8_lossy(&bytes));
}

fn hex_val(c: &u8) -> Option<u8> {
    char::from(*c).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// `/package.Service/Method` → (`package.Service`, `Method`).
pub fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (svc, method) = rest.split_once('/')?;
    (!svc.is_empty() && !method.is_empty() && !method.contains('/')).then_some((svc, method))
}

/// Counts gRPC messages in one direction of a call: each is a 1-byte compressed flag, a 4-byte big-endian
/// length, then the message, and may span DATA frames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounter {
    /// Bytes of the current 5-byte prefix seen so far.
    prefix_have: u8,
    prefix: [u8; 5],
    /// Message bytes still to skip.
    remaining: u64,
    /// Bytes were lost: counting stopped.
    lost: bool,
    pub messages: u64,
    pub compressed: u64,
}

impl MessageCounter {
    pub fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.lost {
            if self.remaining > 0 {
                let n = usize::try_from(self.remaining).unwrap_or(usize::MAX).min(data.len());
                self.remaining -= n as u64;
                data = data.get(n..).unwrap_or(&[]);
                continue;
            }
            let take = (5 - usize::from(self.prefix_have)).min(data.len());
            let (head, rest) = data.split_at(take);
            for (slot, &b) in self.prefix.iter_mut().skip(usize::from(self.prefix_have)).zip(head) {
                *slot = b;
            }
            self.prefix_have += take as u8;
            data = rest;
            if self.prefix_have == 5 {
                let [flag, l0, l1, l2, l3] = self.prefix;
                self.prefix_have = 0;
                self.messages += 1;
                if flag & 1 != 0 {
                    self.compressed += 1;
                }
                self.remaining = u64::from(u32::from_be_bytes([l0, l1, l2, l3]));
            }
        }
    }

    /// Bytes of this direction were lost: message boundaries are unknown from here on.
    pub fn lose(&mut self) {
        self.lost = true;
    }

    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// In the middle of a message (or its prefix).
    pub fn partial(&self) -> bool {
        self.prefix_have > 0 || self.remaining > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout(b"1S"), Some(Dur::from_secs(1)));
        assert_eq!(parse_timeout(b"99999999m"), Some(Dur::from_millis(99_999_999)));
        assert_eq!(parse_timeout(b"2H"), Some(Dur::from_secs(7200)));
        assert_eq!(parse_timeout(b"5M"), Some(Dur::from_secs(300)));
        assert_eq!(parse_timeout(b"7u"), Some(Dur::from_micros(7)));
        assert_eq!(parse_timeout(b"7n"), Some(Dur::from_nanos(7)));
        assert_eq!(parse_timeout(b"123456789S"), None);
        assert_eq!(parse_timeout(b"S"), None);
        assert_eq!(parse_timeout(b"1x"), None);
        assert_eq!(parse_timeout(b"-1S"), None);
        assert_eq!(parse_timeout(b""), None);
    }

    #[test]
    fn statuses_messages_and_paths() {
        assert_eq!(status_name(14), Some("UNAVAILABLE"));
        assert_eq!(status_name(17), None);
        assert_eq!(parse_status(b"8"), Some(8));
        assert_eq!(parse_status(b"x"), None);
        assert_eq!(percent_decode(b"too%20many%20pings%"), "too many pings%");
        assert_eq!(percent_decode(b"%E2%9C%93 ok %zz"), "✓ ok %zz");
        assert_eq!(
            split_path("/greet.GreetService/Greet"),
            Some(("greet.GreetService", "Greet"))
        );
        assert_eq!(split_path("/index.html"), None);
        assert!(is_grpc_content_type(b"application/grpc"));
        assert!(is_grpc_content_type(b"Application/gRPC+proto"));
        assert!(!is_grpc_content_type(b"application/json"));
    }

    #[test]
    fn messages_across_frames() {
        let mut c = MessageCounter::default();
        // Two messages (3 bytes, then an empty compressed one) and the start of a third, split at odd places.
        let stream = [0, 0, 0, 0, 3, b'a', b'b', b'c', 1, 0, 0, 0, 0, 0, 0, 0];
        for chunk in stream.chunks(3) {
            c.feed(chunk);
        }
        assert_eq!((c.messages, c.compressed), (2, 1));
        assert!(c.partial());
        let mut big = MessageCounter::default();
        big.feed(&[0, 0xff, 0xff, 0xff, 0xff]);
        big.feed(&[0; 1000]);
        assert_eq!(big.messages, 1);
        big.lose();
        big.feed(&[0; 10]);
        assert!(big.is_lost());
    }
}
