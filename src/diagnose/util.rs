//! Small helpers shared by the rules: evidence lines, party names, retransmission timing.

use super::{Cause, ClosedBy, Confidence, Evidence, Verdict};
use crate::tcp::{Dir, Mark, RetransSeries, RstInfo, TcpRecord};
use crate::ts::{Dur, Ts};

pub fn ev(m: Mark, text: impl Into<String>) -> Evidence {
    Evidence {
        at: m.at,
        ts: m.ts,
        text: text.into(),
    }
}

pub fn verdict(closed_by: ClosedBy, cause: Cause, confidence: Confidence, explanation: String) -> Verdict {
    Verdict {
        closed_by,
        cause,
        confidence,
        explanation,
        summary: String::new(),
        evidence: Vec::new(),
        advice: Vec::new(),
        factors: Vec::new(),
        rule: "",
        idle: None,
        survived_idle: None,
        vantage: None,
    }
}

pub fn party(d: Dir) -> ClosedBy {
    match d {
        Dir::ToServer => ClosedBy::Client,
        Dir::ToClient => ClosedBy::Server,
    }
}

/// A RST as evidence: its frame and what tells a peer's RST from a forged one ([`rst_text`]).
pub fn rst_ev(r: &RstInfo) -> Evidence {
    ev(r.mark, format!("{}: {}", frame(r.mark), crate::timeline::rst_text(r)))
}

/// "frame 12" in the evidence style (1-based, Wireshark's numbering; `file#frame` when several files).
pub fn frame(m: Mark) -> String {
    if m.at.file == 0 {
        format!("frame {}", m.at.frame)
    } else {
        format!("file {} frame {}", m.at.file + 1, m.at.frame)
    }
}

/// The RST that ended the connection: the first one after which its sender sent nothing but RSTs. A stack that
/// resets has no socket left, so a "RST" followed by more of the same side's traffic (a SYN-ACK, data, ACKs) did
/// not end anything: it was injected, or answered a stray packet.
pub fn final_rst(t: &TcpRecord) -> Option<&RstInfo> {
    let mut all: Vec<&RstInfo> = t.dirs.iter().flat_map(|d| d.rsts.iter()).collect();
    all.sort_by_key(|r| r.mark);
    all.into_iter().find(|r| !contradicted(t, r))
}

/// Whether the RST's own side carried on after it with something produced after the RST: data, SYN or FIN, or
/// an ACK beyond the RST's — with a newer TCP timestamp, or (without timestamps) more than 10 ms later. A
/// packet the stack had queued before it reset (a delayed ACK) does not count.
fn contradicted(t: &TcpRecord, r: &RstInfo) -> bool {
    let f = t.dir(r.dir);
    let Some(p) = f.last_progress.filter(|m| *m > r.mark) else {
        return false;
    };
    let newer = match (f.last_progress_tsval, r.tsval) {
        (Some(a), Some(b)) => a.wrapping_sub(b) as i32 > 0,
        _ => p.ts.since(r.mark.ts) > crate::ts::Dur::from_millis(10),
    };
    let acks_more = match (f.last_progress_ack, r.with_ack) {
        (Some(a), true) => a.gt(r.ack),
        _ => false,
    };
    newer || acks_more
}

/// RSTs that their own side contradicted by carrying on afterwards.
pub fn ignored_rsts(t: &TcpRecord) -> Vec<&RstInfo> {
    let mut v: Vec<&RstInfo> = t
        .dirs
        .iter()
        .flat_map(|d| d.rsts.iter())
        .filter(|r| contradicted(t, r))
        .collect();
    v.sort_by_key(|r| r.mark);
    v
}

/// The first FIN (side, mark).
pub fn first_fin(t: &TcpRecord) -> Option<(Dir, Mark)> {
    Dir::BOTH
        .iter()
        .filter_map(|&d| t.dir(d).fin.map(|m| (d, m)))
        .min_by_key(|(_, m)| *m)
}

/// The gaps between a series' transmissions, the first one (when captured) included.
fn gaps(s: &RetransSeries) -> Vec<Dur> {
    let times: Vec<Ts> = s.original.iter().chain(&s.sends).map(|m| m.ts).collect();
    times
        .windows(2)
        .filter_map(|w| match w {
            [a, b] => Some(b.since(*a)),
            _ => None,
        })
        .collect()
}

/// The time a sender would wait before its next retransmission, from the series' last gap: RTO backoff
/// doubles, capped at 120 s (Linux TCP_RTO_MAX), at least 200 ms (TCP_RTO_MIN).
pub fn next_rto(s: &RetransSeries) -> Dur {
    let last_gap = gaps(s).last().copied().unwrap_or(Dur::from_millis(200));
    let doubled = last_gap.saturating_mul(2);
    doubled.max(Dur::from_millis(200)).min(Dur::from_secs(120))
}

/// "0.20 s → 3.2 s" : the first and last gaps of a series, to show the backoff.
pub fn backoff(s: &RetransSeries) -> Option<String> {
    match gaps(s).as_slice() {
        [] => None,
        [g] => Some(format!("{g}")),
        [first, .., last] => Some(format!("{first} → {last}")),
    }
}

/// Whether the gaps of a series grow (exponential backoff) rather than stay flat.
pub fn backs_off(s: &RetransSeries) -> bool {
    let gaps = gaps(s);
    // Each gap at least 1.5× the one before, compared in i128: a capture's times can be hours or decades apart.
    gaps.len() >= 2
        && gaps
            .windows(2)
            .all(|w| matches!(w, [a, b] if i128::from(b.nanos()) * 10 >= i128::from(a.nanos()) * 15))
}

/// gRPC status code names (grpc/doc/statuscodes.md); unknown codes print as numbers.
pub fn grpc_status_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .map_or_else(|| format!("{code}"), |n| (*n).to_string())
}

#[cfg(test)]
mod backoff_tests {
    use super::*;
    use crate::source::PacketRef;
    use crate::tcp::{Dir, Mark};

    fn series(times: &[i64]) -> RetransSeries {
        let mark = |n: i64| Mark {
            ts: Ts::from_nanos(n),
            at: PacketRef::default(),
        };
        RetransSeries {
            dir: Dir::ToServer,
            seq_rel: 1,
            len: 1,
            original: times.first().map(|&t| mark(t)),
            sends: times.iter().skip(1).map(|&t| mark(t)).collect(),
            count: times.len().saturating_sub(1) as u32,
            idle_before: None,
            recovered: None,
        }
    }

    #[test]
    fn doubling_gaps_back_off_and_flat_ones_do_not() {
        assert!(backs_off(&series(&[0, 200, 600, 1400])));
        assert!(!backs_off(&series(&[0, 200, 400, 600])));
    }

    /// Regression (found by the pipeline fuzz target): gaps near the range of i64 overflowed the comparison.
    #[test]
    fn gaps_of_any_size_do_not_overflow() {
        assert!(!backs_off(&series(&[i64::MIN, 0, i64::MAX])));
        assert!(backs_off(&series(&[i64::MIN, i64::MIN + 1, i64::MAX])));
    }
}
