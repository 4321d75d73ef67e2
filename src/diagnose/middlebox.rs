//! Somebody in between: a firewall, NAT or load balancer that forgot an idle connection, or an IPS that reset it.
//!
//! Two signatures, both read from one side's capture:
//! - the first send after a long silence vanishes (retransmitted with backoff into silence until the sender
//!   gives up), where the same connection had survived every shorter silence before;
//! - a RST the peer never sent: it differs from everything the peer sent before in IP TTL (a box one hop nearer
//!   sends 64 where the peer's packets arrive with 63), IP ID pattern, or TCP options.
//!
//! The vantage point is inferred here too, because it changes what a capture can show: at the server, a
//! connection cut on the client's path looks merely idle.

use super::util::*;
use super::{Cause, ClosedBy, Confidence, Ctx, Verdict};
use crate::tcp::{Dir, Mark, RetransSeries, RstInfo, TcpEventKind, TcpRecord};
use crate::ts::Dur;

/// The shortest silence we call "idle" for a middlebox timeout. Real middleboxes forget after tens of seconds
/// to hours (docs/idle-timeouts.md); the lab shortens them to seconds. The rule also requires the silence to be
/// longer than every silence the connection survived before, which is what makes it an *idle* timeout.
const IDLE_MIN: Dur = Dur::from_secs(1);

/// Evidence that a RST did not come from the endpoint it claims to come from.
#[derive(Clone, Debug, Default)]
pub struct Forgery {
    /// One sentence per sign, with the numbers.
    pub signs: Vec<String>,
    /// A sign that alone makes the case (TTL).
    pub strong: bool,
}

impl Forgery {
    /// Only the TTL decides: a real stack answering a segment it has no socket for sends a RST with IP ID 0 and
    /// no TCP options too, so those signs only support a TTL difference, never make the case alone.
    pub fn forged(&self) -> bool {
        self.strong
    }
}

/// Compares a RST with the earlier packets of the same direction.
pub fn forgery(r: &RstInfo) -> Forgery {
    let b = &r.before;
    let who = r.dir.sender();
    let mut f = Forgery::default();
    if b.packets == 0 {
        return f;
    }
    if let Some(mode) = b.ttl_mode
        && r.ttl != mode
        && !(b.ttl_min..=b.ttl_max).contains(&r.ttl)
    {
        let hops = i16::from(r.ttl) - i16::from(mode);
        let place = if hops > 0 {
            format!(
                "{hops} hop{} nearer the capture point than the {who}",
                if hops == 1 { "" } else { "s" }
            )
        } else {
            format!(
                "{} hop{} farther than the {who}",
                -hops,
                if hops == -1 { "" } else { "s" }
            )
        };
        f.signs.push(format!(
            "TTL {} where all {} earlier {who} packets arrived with {mode}: the RST was sent from {place}",
            r.ttl, b.packets
        ));
        // Consistent TTLs before make the difference decisive.
        f.strong = b.ttl_mode_count * 10 >= b.packets * 9;
    }
    if let (Some(id), Some(last)) = (r.ip_id, b.last_ip_id)
        && b.packets >= 3
        && b.ip_id_small_steps * 2 >= b.packets
    {
        let step = id.wrapping_sub(last) & 0xffff;
        if id == 0 || step > 1000 {
            f.signs.push(format!(
                "IP ID {id} breaks the {who}'s sequence (its last packet had {last}, each step small)"
            ));
        }
    }
    if r.tsval.is_none() && b.packets >= 3 && b.with_timestamps == b.packets {
        f.signs.push(format!(
            "no TCP timestamps, though the {who} stamped all {} earlier packets",
            b.packets
        ));
    }
    f
}

/// The silence that ended at (or just before) `m`, if the connection was idle right before it.
pub fn idle_before(t: &TcpRecord, m: Mark) -> Option<Dur> {
    t.events
        .iter()
        .filter_map(|e| match e.kind {
            TcpEventKind::Idle { dur, .. } if e.mark <= m && m.ts.since(e.mark.ts) < Dur::from_secs(1) => Some(dur),
            _ => None,
        })
        .next_back()
}

/// The longest silence the connection had survived before `m` (a later packet answered after it).
fn longest_survived(t: &TcpRecord, m: Mark) -> Dur {
    t.events
        .iter()
        .filter_map(|e| match e.kind {
            TcpEventKind::Idle { dur, .. } if e.mark < m && m.ts.since(e.mark.ts) >= Dur::from_secs(1) => Some(dur),
            _ => None,
        })
        .max()
        .unwrap_or(Dur::ZERO)
}

/// The longest silence after which the connection still carried traffic both ways, if any.
pub fn survived_idle(t: &TcpRecord) -> Option<Dur> {
    let answered_after = |m: Mark| Dir::BOTH.iter().all(|d| t.dir(*d).last_non_rst.is_some_and(|l| l > m));
    t.events
        .iter()
        .filter_map(|e| match e.kind {
            TcpEventKind::Idle { dur, .. } if answered_after(e.mark) => Some(dur),
            _ => None,
        })
        .max()
}

/// Whether a silence of `idle` before `m` is one the connection had never survived: an idle timeout.
fn idle_killed(t: &TcpRecord, m: Mark, idle: Dur) -> bool {
    idle >= IDLE_MIN && idle.nanos() > longest_survived(t, m).nanos().saturating_mul(6) / 5
}

fn icmp_from_router(i: &Ctx<'_>, after: Mark) -> Option<(Mark, String)> {
    let t = i.tcp;
    t.events.iter().find_map(|e| match &e.kind {
        TcpEventKind::Icmp { from, text, .. }
            if e.mark >= after && *from != t.client.ip() && *from != t.server.ip() =>
        {
            Some((e.mark, format!("{}: the router {from} said: {text}", frame(e.mark))))
        }
        _ => None,
    })
}

fn rst_evidence(r: &RstInfo, f: &Forgery) -> String {
    format!(
        "{}: {}; not the {}'s: {}",
        frame(r.mark),
        crate::timeline::rst_text(r),
        r.dir.sender(),
        f.signs.join("; ")
    )
}

fn idle_advice(v: &mut Verdict, idle: Dur) {
    let below = Dur::from_secs_f64((idle.as_secs_f64() * 0.5).max(1.0));
    v.advice.push(format!(
        "Keep idle connections alive below the middlebox's timeout (about {idle}): gRPC keepalive with keepalive_time below that (e.g. {below}), or TCP keepalive (tcp_keepalive_time / TCP_KEEPIDLE) below it."
    ));
    v.advice.push(
        "Or raise the idle timeout of the firewall / NAT / load balancer on the path (docs/idle-timeouts.md lists common defaults)."
            .to_string(),
    );
}

/// An idle gap, then the first send after it either vanishes (retransmitted into silence) or draws a RST the
/// peer never sent.
pub fn firewall_idle_timeout(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    // (a) A forged RST answering the first send after the silence (and no FIN before it: a close came first).
    if let Some(r) = final_rst(t).filter(|r| first_fin(t).is_none_or(|(_, f)| f > r.mark)) {
        let f = forgery(r);
        let receiver = t.dir(r.dir.reverse());
        if f.forged()
            && let Some(send) = receiver.last_non_rst.filter(|m| *m <= r.mark)
            && r.mark.ts.since(send.ts) < Dur::from_secs(1)
            && let Some(idle) = idle_before(t, send)
            && idle_killed(t, send, idle)
        {
            let who = r.dir.reverse().sender();
            let mut v = verdict(
                ClosedBy::Middlebox,
                Cause::FirewallIdleTimeout,
                Confidence::High,
                format!(
                    "A middlebox had forgotten the connection after {idle} idle: the {who}'s first packet after the silence was answered {} later by a RST the {} never sent (a firewall or NAT rejecting a flow it no longer knew).",
                    r.mark.ts.since(send.ts),
                    r.dir.sender()
                ),
            );
            v.summary = format!("idle {idle}, then a forged RST");
            v.idle = Some(idle);
            v.evidence
                .push(ev(send, format!("{}: the {who} sends after {idle} idle", frame(send))));
            v.evidence.push(ev(r.mark, rst_evidence(r, &f)));
            idle_advice(&mut v, idle);
            return Some(v);
        }
    }
    // (b) The first send after the silence vanished: retransmitted into silence, never acknowledged.
    let (d, s) = open_series(t)?;
    let start = s.original.or(s.sends.first().copied())?;
    let idle = s.idle_before?;
    if !idle_killed(t, start, idle) || s.count < 2 {
        return None;
    }
    let peer = t.dir(d.reverse());
    // A peer that had already closed (FIN) decided before these sends.
    if peer.fin.is_some_and(|f| f < start) {
        return None;
    }
    if peer.last.is_some_and(|m| m > start) && peer.rsts.iter().all(|r| !forgery(r).forged()) {
        // The peer answered after the send (an ACK, data or its own RST): the path worked.
        if peer.last_non_rst.is_some_and(|m| m > start) || !peer.rsts.is_empty() {
            return None;
        }
    }
    let last = *s.sends.last()?;
    let quiet = t.observed_until.since(last.ts);
    let gave_up = quiet >= next_rto(s) || t.dir(d).rst_count > 0;
    let who = d.sender();
    let icmp = icmp_from_router(i, start);
    let mut v = verdict(
        if gave_up { ClosedBy::Middlebox } else { ClosedBy::None },
        Cause::FirewallIdleTimeout,
        match (gave_up, icmp.is_some()) {
            (true, true) => Confidence::High,
            (true, false) => Confidence::Medium,
            (false, _) => Confidence::Low,
        },
        format!(
            "The connection died in a middlebox's idle timeout: after {idle} of silence (longer than any it had survived), the {who}'s next {} bytes were never acknowledged — {} retransmissions over {} went unanswered{}. A firewall or NAT had dropped the idle flow's state (or the {} went down while idle; a capture at the {} would show whether anything arrived).",
            s.len,
            s.count,
            last.ts.since(start.ts),
            if gave_up {
                " until the sender gave up"
            } else {
                ", still retrying when the capture ended"
            },
            d.receiver(),
            d.receiver()
        ),
    );
    v.summary = format!("idle {idle}, then {} retransmissions into silence", s.count);
    v.idle = Some(idle);
    v.evidence.push(ev(
        start,
        format!("{}: the {who} sends {} bytes after {idle} idle", frame(start), s.len),
    ));
    v.evidence.push(ev(
        last,
        format!(
            "{}: retransmission #{}, {} after the first send, still unanswered",
            frame(last),
            s.count,
            last.ts.since(start.ts)
        ),
    ));
    if let Some((m, text)) = icmp {
        v.evidence.push(ev(m, text));
    }
    if gave_up && t.dir(d).rst_count == 0 {
        v.evidence.push(ev(
            Mark {
                ts: t.observed_until,
                at: last.at,
            },
            format!(
                "nothing more from the {who} in the {quiet} to the end of the capture: its kernel gave up (no RST)"
            ),
        ));
    }
    idle_advice(&mut v, idle);
    Some(v)
}

/// A forged RST without a preceding idle gap (an IPS or firewall resetting a live connection).
pub fn middlebox_reset(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    let r = final_rst(t)?;
    if first_fin(t).is_some_and(|(_, f)| f < r.mark) {
        return None; // a FIN decided first
    }
    let f = forgery(r);
    if !f.forged() {
        return None;
    }
    let claimed = r.dir.sender();
    let mut v = verdict(
        ClosedBy::Middlebox,
        Cause::MiddleboxReset,
        if f.strong { Confidence::High } else { Confidence::Medium },
        format!(
            "Something between the two ends reset the connection: the RST that ended it claims to come from the {claimed} but does not match the {claimed}'s packets ({}).",
            f.signs.first().cloned().unwrap_or_default()
        ),
    );
    v.summary = format!("forged RST in the {claimed}'s name");
    if let Some(prev) = t.dir(r.dir.reverse()).last_non_rst.filter(|m| *m <= r.mark) {
        v.evidence.push(ev(
            prev,
            format!(
                "{}: last packet from the {} before the RST",
                frame(prev),
                r.dir.receiver()
            ),
        ));
    }
    v.evidence.push(ev(r.mark, rst_evidence(r, &f)));
    v.advice.push(
        "Look for an IPS, firewall or load balancer on the path that resets flows (policy, signatures, connection limits); a capture at the other end shows whether that RST ever left it."
            .to_string(),
    );
    Some(v)
}

/// The unanswered retransmission series that was still open at the end (the later one when both sides had).
fn open_series(t: &TcpRecord) -> Option<(Dir, &RetransSeries)> {
    let mut best: Option<(Dir, &RetransSeries)> = None;
    for d in Dir::BOTH {
        if let Some(s) = t.dir(d).open_retrans.as_deref()
            && best.is_none_or(|(_, b)| s.sends.first() > b.sends.first())
        {
            best = Some((d, s));
        }
    }
    best
}

/// Where the capture was taken, for one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    ClientHost,
    ServerHost,
    Between,
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vantage {
    pub place: Place,
    pub reason: String,
}

fn initial_ttl(ttl: u8) -> bool {
    matches!(ttl, 64 | 128 | 255 | 32 | 60)
}

/// Infers the capture point from TTLs (a host's own packets carry its initial TTL, 64/128/255) and from the
/// handshake (at the client, SYN-ACK → ACK is immediate; at the server, SYN → SYN-ACK is).
pub fn vantage(t: &TcpRecord) -> Vantage {
    let c = t.dir(Dir::ToServer).fingerprint.ttl_mode;
    let s = t.dir(Dir::ToClient).fingerprint.ttl_mode;
    let hs = (t.handshake.server_rtt(), t.handshake.client_rtt());
    let timing = match hs {
        (Some(a), Some(b)) if a.nanos() > 0 && b.nanos() > 0 => {
            if b.nanos().saturating_mul(10) < a.nanos() {
                Some(Place::ClientHost)
            } else if a.nanos().saturating_mul(10) < b.nanos() {
                Some(Place::ServerHost)
            } else {
                Some(Place::Between)
            }
        }
        _ => None,
    };
    let by_ttl = match (c.map(initial_ttl), s.map(initial_ttl)) {
        (Some(true), Some(false)) => Some(Place::ClientHost),
        (Some(false), Some(true)) => Some(Place::ServerHost),
        (Some(false), Some(false)) => Some(Place::Between),
        _ => None,
    };
    // Every connection gets this line: written in place, in one string.
    use std::fmt::Write as _;
    let mut reason = String::with_capacity(96);
    for (label, ttl) in [("client packets TTL ", c), (", server packets TTL ", s)] {
        reason.push_str(label);
        let _ = match ttl {
            Some(x) => write!(reason, "{x}"),
            None => reason.write_str("?"),
        };
    }
    let _ = match hs {
        (Some(a), Some(b)) => write!(reason, "; SYN→SYN-ACK {a}, SYN-ACK→ACK {b}"),
        _ => reason.write_str("; no complete handshake"),
    };
    let place = match (by_ttl, timing) {
        (Some(p), Some(q)) if p == q => p,
        (Some(p), None) | (None, Some(p)) => p,
        (Some(p), Some(_)) => p, // TTL is the steadier witness
        (None, None) => Place::Unknown,
    };
    Vantage { place, reason }
}
