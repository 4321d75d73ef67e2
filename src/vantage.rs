//! Two captures of the same traffic, taken at two places (`whoclosed client.pcap server.pcap`).
//!
//! Several files are usually pieces of one capture (tcpdump `-C`/`-G` rotation) and are merged in time order.
//! But when two files hold the *same* connections — the same initial sequence numbers — they are two vantage
//! points: each is analysed on its own, connections are matched across them (by their initial sequence numbers,
//! which a NAT leaves alone, else by 4-tuple), the clocks are aligned from the handshake, and each verdict is
//! checked against what the other side saw. A RST that reached the client but never left the server is proven
//! forged; data the client retransmitted that never reached the server proves a drop in between.

use crate::analyzer::Finished;
use crate::decode::{Decoder, SeqNum, Transport};
use crate::diagnose::{Cause, ClosedBy, Confidence, Evidence};
use crate::source;
use crate::tcp::{Dir, Mark};
use crate::ts::Dur;
use std::collections::HashSet;
use std::path::Path;

/// Packets read from the start of each file to decide whether files are vantage points of the same traffic.
const PROBE_PACKETS: usize = 20_000;

/// ISNs of the SYNs and SYN-ACKs near the start of a file.
fn probe(path: &Path) -> HashSet<(u32, bool)> {
    let mut out = HashSet::new();
    let Ok(mut src) = source::open(&[path]) else { return out };
    let mut dec = Decoder::new();
    let mut n = 0;
    while let Some(pkt) = src.next_packet() {
        n += 1;
        if n > PROBE_PACKETS {
            break;
        }
        if let Transport::Tcp(seg) = dec.decode(&pkt).transport
            && seg.flags.syn()
            && !seg.flags.rst()
        {
            out.insert((seg.seq.0, seg.flags.ack()));
        }
    }
    out
}

/// Whether the files are vantage points of the same traffic (they share handshakes) rather than consecutive
/// pieces of one capture. Only pairs are merged this way.
pub fn is_vantage_pair(paths: &[std::path::PathBuf]) -> bool {
    let [a, b] = paths else { return false };
    if a.as_os_str() == "-" || b.as_os_str() == "-" {
        return false;
    }
    let (pa, pb) = (probe(a), probe(b));
    let shared = pa.intersection(&pb).count();
    // Two rotated pieces never repeat a handshake; two views of one connection always do.
    shared >= 2 || (shared == 1 && pa.len().min(pb.len()) <= 2)
}

/// Which side of the path a file was captured on, from its connections' vantage.
fn side_of(conns: &[Finished]) -> Option<crate::diagnose::middlebox::Place> {
    use crate::diagnose::middlebox::Place;
    let (mut c, mut s) = (0, 0);
    for f in conns {
        match f.verdict.vantage.as_ref().map(|v| v.place) {
            Some(Place::ClientHost) => c += 1,
            Some(Place::ServerHost) => s += 1,
            _ => {}
        }
    }
    if c > s {
        Some(Place::ClientHost)
    } else if s > c {
        Some(Place::ServerHost)
    } else {
        None
    }
}

fn isns(f: &Finished) -> (Option<SeqNum>, Option<SeqNum>) {
    (f.tcp.dir(Dir::ToServer).isn, f.tcp.dir(Dir::ToClient).isn)
}

/// One connection seen from two places.
pub struct Pair<'a> {
    pub near: &'a Finished,
    pub far: &'a Finished,
    /// Far clock minus near clock (from the handshake), and the one-way delay between the capture points.
    pub offset: Option<Dur>,
    pub delay: Option<Dur>,
}

/// Matches connections of the client-side capture (`near`) with the server-side one (`far`).
pub fn match_pairs<'a>(near: &'a [Finished], far: &'a [Finished]) -> Vec<Pair<'a>> {
    let mut used = vec![false; far.len()];
    let mut out = Vec::new();
    for n in near {
        let (nc, ns) = isns(n);
        let found = far.iter().enumerate().find(|(i, f)| {
            if used.get(*i).copied().unwrap_or(true) {
                return false;
            }
            let (fc, fs) = isns(f);
            match (nc, ns, fc, fs) {
                (Some(a), Some(b), Some(c), Some(d)) => a == c && b == d,
                (Some(a), _, Some(c), _) => a == c,
                _ => n.tcp.client == f.tcp.client && n.tcp.server == f.tcp.server,
            }
        });
        if let Some((i, f)) = found {
            if let Some(u) = used.get_mut(i) {
                *u = true;
            }
            let hn = &n.tcp.handshake;
            let hf = &f.tcp.handshake;
            let (offset, delay) = match (hn.syn, hn.syn_ack, hf.syn, hf.syn_ack) {
                (Some(a), Some(b), Some(c), Some(d)) => {
                    let fwd = c.ts.since(a.ts).nanos(); // SYN: near → far
                    let back = d.ts.since(b.ts).nanos(); // SYN-ACK: far → near (times on each clock)
                    (
                        Some(Dur::from_nanos((fwd / 2).saturating_add(back / 2))),
                        Some(Dur::from_nanos((fwd / 2).saturating_sub(back / 2))),
                    )
                }
                _ => (None, None),
            };
            out.push(Pair {
                near: n,
                far: f,
                offset,
                delay,
            });
        }
    }
    out
}

/// Orders the two files' results as (client side, server side) when the captures say which is which.
pub fn orient(a: Vec<Finished>, b: Vec<Finished>) -> (Vec<Finished>, Vec<Finished>, bool) {
    use crate::diagnose::middlebox::Place;
    match (side_of(&a), side_of(&b)) {
        (Some(Place::ServerHost), _) | (_, Some(Place::ClientHost)) => (b, a, true),
        _ => (a, b, false),
    }
}

/// What the far capture proves about the near capture's verdict, as extra evidence and a corrected verdict.
pub struct CrossCheck {
    pub evidence: Vec<Evidence>,
    pub closed_by: Option<ClosedBy>,
    pub cause: Option<Cause>,
    pub confidence: Option<Confidence>,
    pub note: Option<String>,
}

fn far_mark(m: Mark, file: u16) -> String {
    if file == 0 {
        format!("frame {}", m.at.frame)
    } else {
        format!("file {} frame {}", file + 1, m.at.frame)
    }
}

/// Checks one pair: RSTs that one capture shows arriving and the other shows never leaving; data that left
/// and never arrived.
pub fn cross_check(p: &Pair<'_>) -> CrossCheck {
    let mut c = CrossCheck {
        evidence: Vec::new(),
        closed_by: None,
        cause: None,
        confidence: None,
        note: None,
    };
    let near = &p.near.tcp;
    let far = &p.far.tcp;
    let delay = p.delay.unwrap_or(Dur::ZERO).abs();
    let slack = delay.saturating_mul(4).saturating_add(Dur::from_millis(50));
    let to_far = |m: Mark| m.ts.plus(p.offset.unwrap_or(Dur::ZERO));
    // RSTs that arrived at the client claiming to be the server's: did the server send them?
    for r in &near.dir(Dir::ToClient).rsts {
        let at_far = to_far(r.mark);
        let sent = far
            .dir(Dir::ToClient)
            .rsts
            .iter()
            .any(|x| x.seq == r.seq && x.mark.ts.since(at_far).abs() <= slack.saturating_add(delay));
        if !sent && far.dir(Dir::ToClient).packets > 0 {
            c.evidence.push(Evidence {
                at: r.mark.at,
                ts: r.mark.ts,
                text: format!(
                    "{}: the RST that reached the client never left the server: the server-side capture has no RST with seq {} around that time — it was forged in between",
                    far_mark(r.mark, r.mark.at.file),
                    r.seq
                ),
            });
            if p.near.verdict.closed_by != ClosedBy::Middlebox {
                c.closed_by = Some(ClosedBy::Middlebox);
                c.cause = Some(if p.near.verdict.idle.is_some() {
                    Cause::FirewallIdleTimeout
                } else {
                    Cause::MiddleboxReset
                });
            }
            c.confidence = Some(Confidence::High);
        }
    }
    // RSTs that arrived at the server claiming to be the client's.
    for r in &far.dir(Dir::ToServer).rsts {
        let sent = near.dir(Dir::ToServer).rsts.iter().any(|x| x.seq == r.seq);
        if !sent && near.dir(Dir::ToServer).packets > 0 {
            c.evidence.push(Evidence {
                at: r.mark.at,
                ts: r.mark.ts,
                text: format!(
                    "{}: the RST that reached the server never left the client (the client-side capture has no RST with seq {}): forged in between",
                    far_mark(r.mark, r.mark.at.file),
                    r.seq
                ),
            });
            c.confidence = Some(Confidence::High);
        }
    }
    // Data the client retransmitted into silence: did any of it reach the server?
    if let Some(s) = near.dir(Dir::ToServer).open_retrans.as_deref()
        && let Some(first) = s.original.or(s.sends.first().copied())
    {
        let at_far = to_far(first);
        let arrived = far
            .dir(Dir::ToServer)
            .last
            .is_some_and(|m| m.ts >= at_far.plus(Dur::from_nanos(-slack.nanos())));
        if !arrived {
            c.evidence.push(Evidence {
                at: first.at,
                ts: first.ts,
                text: format!(
                    "none of the client's {} sends of these bytes reached the server: the server-side capture has nothing from the client after {}",
                    s.count.saturating_add(1),
                    far.dir(Dir::ToServer).last.map_or("the start".to_string(), |m| far_mark(m, m.at.file))
                ),
            });
            c.confidence = Some(Confidence::High);
        }
    }
    let fv = &p.far.verdict;
    c.note = Some(format!(
        "Seen at both ends: the other capture has this connection as {} → {} ({}, closed by {}){}.",
        far.client,
        far.server,
        fv.cause,
        fv.closed_by,
        match (p.offset, p.delay) {
            (Some(o), Some(d)) => format!("; its clock is {o} ahead, one-way delay {d}"),
            _ => String::new(),
        }
    ));
    c
}

/// Whether a path holds two vantage points (for the CLI).
pub fn describe(paths: &[std::path::PathBuf], flipped: bool) -> String {
    let name = |i: usize| paths.get(i).map(|p| p.display().to_string()).unwrap_or_default();
    let (c, s) = if flipped {
        (name(1), name(0))
    } else {
        (name(0), name(1))
    };
    format!(
        "{c} and {s} hold the same connections: analysed as two vantage points (client side: {c}; server side: {s})"
    )
}
