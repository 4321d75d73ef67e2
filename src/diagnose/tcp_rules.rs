//! Rules that need only TCP: refusals, handshake timeouts, keepalive and retransmission give-ups, FIN and RST.
//! Each function is one row of docs/diagnosis.md.

use super::middlebox::Place;
use super::util::*;
use super::{Cause, ClosedBy, Confidence, Ctx, Verdict};
use crate::tcp::{Dir, Mark, RstInfo};
use crate::timeline::rst_text;
use crate::ts::Dur;

/// Quiet time after which a sender that stopped retrying SYNs is taken to have given up.
const SYN_GIVE_UP_MIN: Dur = Dur::from_secs(3);

/// The client's SYN was answered by a RST from the server's side and no SYN-ACK.
pub fn connection_refused(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    let syn = t.handshake.syn?;
    if t.handshake.syn_ack.is_some() {
        return None;
    }
    let server = t.dir(Dir::ToClient);
    let rst = server.rsts.iter().find(|r| r.mark >= syn)?;
    let rtt = rst.mark.ts.since(syn.ts);
    let mut v = verdict(
        ClosedBy::Server,
        Cause::ConnectionRefused,
        Confidence::High,
        format!(
            "The server refused the connection: it answered the client's SYN with a RST {rtt} later (nothing listening on port {}, or a firewall rejecting with a reset).",
            t.server.port()
        ),
    );
    v.summary = format!("RST answered the SYN after {rtt}");
    let client = t.dir(Dir::ToServer);
    v.evidence
        .push(ev(syn, format!("{}: client SYN to {}", frame(syn), t.server)));
    if client.syn_count > 1
        && let Some(last) = client.last
    {
        v.evidence.push(ev(
            last,
            format!("{}: the client had sent {} SYNs", frame(last), client.syn_count),
        ));
    }
    v.evidence.push(rst_ev(rst));
    Some(v)
}

/// The client's SYNs were never answered.
pub fn syn_timeout(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    let syn = t.handshake.syn?;
    let server = t.dir(Dir::ToClient);
    if t.handshake.syn_ack.is_some() || server.packets > 0 {
        return None;
    }
    let client = t.dir(Dir::ToServer);
    let last = client.last.unwrap_or(syn);
    let span = last.ts.since(syn.ts);
    let n = client.syn_count.max(1);
    // The gap before the last SYN tells the retry interval in force; the next one would come after twice that.
    let gaps: Vec<Dur> = i
        .timeline
        .events
        .iter()
        .filter(|e| e.kind == "syn")
        .map(|e| e.ts)
        .collect::<Vec<_>>()
        .windows(2)
        .filter_map(|w| w.get(1).zip(w.first()).map(|(b, a)| b.since(*a)))
        .collect();
    let last_gap = gaps.last().copied().unwrap_or(Dur::from_secs(1));
    let quiet = t.observed_until.since(last.ts);
    if let Some(r) = client.rsts.first()
        && n == 1
        && r.mark.ts.since(syn.ts) < Dur::from_secs(1)
    {
        // Reset by the client itself before a SYN retry was even due: an abort, not a timeout.
        let after = r.mark.ts.since(syn.ts);
        let mut v = verdict(
            ClosedBy::Client,
            Cause::Unknown,
            Confidence::Medium,
            format!(
                "The client aborted its own connection attempt with a RST {after} after its SYN, before any answer (a half-open port scan, or an application that cancelled the connect)."
            ),
        );
        v.summary = format!("client SYN then its own RST after {after}");
        v.evidence
            .push(ev(syn, format!("{}: client SYN to {}", frame(syn), t.server)));
        v.evidence.push(rst_ev(r));
        return Some(v);
    }
    let gave_up = quiet >= last_gap.saturating_mul(2).max(SYN_GIVE_UP_MIN) || client.rst_count > 0;
    let icmp = i.timeline.events.iter().find(|e| e.kind == "icmp");
    let why = match icmp {
        Some(e) => format!(" ({})", e.text),
        None => " (the server or something on the path dropped them)".to_string(),
    };
    let mut v = if gave_up {
        verdict(
            ClosedBy::Client,
            Cause::SynTimeout,
            if n >= 2 { Confidence::High } else { Confidence::Medium },
            format!(
                "The client gave up connecting: {n} SYN{} over {span} went unanswered{why}.",
                if n == 1 { "" } else { "s" }
            ),
        )
    } else {
        verdict(
            ClosedBy::None,
            Cause::SynTimeout,
            Confidence::Low,
            format!(
                "The server has not answered the client's {n} SYN{} over {span}{why}; the client was still retrying when the capture ended (Linux retries for about 127 s).",
                if n == 1 { "" } else { "s" }
            ),
        )
    };
    v.summary = if gave_up {
        format!("{n} SYN(s) unanswered, the client gave up")
    } else {
        format!("{n} SYN(s) unanswered so far")
    };
    v.evidence
        .push(ev(syn, format!("{}: client SYN to {}", frame(syn), t.server)));
    if n > 1 {
        v.evidence.push(ev(
            last,
            format!("{}: SYN #{n}, {span} after the first; no SYN-ACK", frame(last)),
        ));
    }
    if let Some(e) = icmp {
        v.evidence.push(super::Evidence {
            at: e.at,
            ts: e.ts,
            text: format!("frame {}: {}", e.at.frame, e.text),
        });
    }
    if gave_up && client.rst_count == 0 {
        v.evidence.push(ev(
            Mark {
                ts: t.observed_until,
                at: last.at,
            },
            format!("no further SYN in the {quiet} until the end of the capture"),
        ));
    }
    v.advice.push(format!(
        "Check that {} is reachable and listening, and that no firewall drops SYNs to port {}.",
        t.server.ip(),
        t.server.port()
    ));
    Some(v)
}

/// Keepalive probes went unanswered and the prober gave up (Linux sends a RST after the last probe).
pub fn keepalive_timeout(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    for d in Dir::BOTH {
        let f = t.dir(d);
        let Some(ka) = f.keepalive_series.as_deref() else {
            continue;
        };
        let unanswered: Vec<Mark> = ka
            .probes
            .iter()
            .copied()
            .filter(|p| ka.last_answer.is_none_or(|a| p.ts > a.ts))
            .collect();
        let (Some(&first), Some(&last)) = (unanswered.first(), unanswered.last()) else {
            continue;
        };
        let peer = t.dir(d.reverse());
        // The peer said nothing after the first unanswered probe (else it is alive, or it reset: peer_reset).
        if peer.last.is_some_and(|m| m.ts > first.ts) {
            continue;
        }
        let rst = f.rsts.iter().find(|r| r.mark.ts >= last.ts);
        let n = unanswered.len();
        let idle = ka.idle_before.map(|d| format!(" after {d} idle")).unwrap_or_default();
        let interval = if n >= 2 {
            format!(
                " {} apart",
                Dur::from_nanos(last.ts.since(first.ts).nanos() / (n as i64 - 1))
            )
        } else {
            String::new()
        };
        let who = d.sender();
        let mut v = match rst {
            Some(_) => verdict(
                party(d),
                Cause::KeepaliveTimeout,
                if n >= 2 { Confidence::High } else { Confidence::Medium },
                format!(
                    "The {who}'s TCP keepalive gave up: {n} probe{}{interval}{idle} went unanswered and its kernel reset the connection; the {} (or the path to it) had stopped answering.",
                    if n == 1 { "" } else { "s" },
                    d.receiver()
                ),
            ),
            None if n >= 2 => verdict(
                ClosedBy::None,
                Cause::KeepaliveTimeout,
                Confidence::Low,
                format!(
                    "The {who}'s TCP keepalive probes go unanswered ({n}{interval}{idle}); the capture ended before the {who} gave up.",
                ),
            ),
            None => continue,
        };
        v.summary = format!(
            "{n} keepalive probe(s) unanswered{}",
            if rst.is_some() { ", then RST" } else { "" }
        );
        v.evidence.push(ev(
            first,
            format!(
                "{}: first unanswered keepalive probe from the {who}{idle}",
                frame(first)
            ),
        ));
        if n > 1 {
            v.evidence.push(ev(
                last,
                format!("{}: keepalive probe #{n}, still no answer", frame(last)),
            ));
        }
        if let Some(r) = rst {
            v.evidence.push(rst_ev(r));
        }
        v.advice.push(format!(
            "Find out why the {} stopped answering (host down, network path cut, or a middlebox that dropped the idle connection's state).",
            d.receiver()
        ));
        return Some(v);
    }
    None
}

/// Data retransmitted with backoff until the sender gave up (Linux: tcp_retries2 or TCP_USER_TIMEOUT, no RST).
pub fn retransmit_exhaustion(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    // The side whose unanswered series started last is the one that was still trying at the end.
    let mut best: Option<(Dir, &crate::tcp::RetransSeries)> = None;
    for d in Dir::BOTH {
        if let Some(s) = t.dir(d).open_retrans.as_deref()
            && s.count >= 2
            && best.is_none_or(|(_, b)| s.sends.first() > b.sends.first())
        {
            best = Some((d, s));
        }
    }
    let (d, s) = best?;
    let start = s.original.or(s.sends.first().copied())?;
    let last = *s.sends.last()?;
    let peer = t.dir(d.reverse());
    // A RST from the peer after the series began means the peer answered (it had lost the connection).
    if peer.rsts.iter().any(|r| r.mark.ts >= start.ts) {
        return None;
    }
    // A peer that had already closed (FIN) made the decision before these retransmissions began.
    if peer.fin.is_some_and(|f| f < start) {
        return None;
    }
    // The peer must not have acknowledged anything new since: otherwise the path works.
    let sender = t.dir(d);
    let quiet = t.observed_until.since(last.ts);
    let due = next_rto(s);
    let gave_up = quiet >= due || sender.rst_count > 0;
    let span = last.ts.since(start.ts);
    let who = d.sender();
    let backoff_text = backoff(s).map(|b| format!(", backoff {b}")).unwrap_or_default();
    let idle = s
        .idle_before
        .filter(|g| *g >= Dur::from_secs(1))
        .map(|g| format!(" The data was the first sent after {g} of silence."))
        .unwrap_or_default();
    let mut v = if gave_up {
        verdict(
            party(d),
            Cause::RetransmitExhaustion,
            if s.count >= 3 && backs_off(s) {
                Confidence::High
            } else {
                Confidence::Medium
            },
            format!(
                "The {who}'s kernel gave up after retransmitting {} bytes {} times over {span} with no acknowledgement{backoff_text}; the {} or the path stopped answering.{idle}",
                s.len,
                s.count,
                d.receiver()
            ),
        )
    } else {
        verdict(
            ClosedBy::None,
            Cause::RetransmitExhaustion,
            Confidence::Low,
            format!(
                "The {who} has been retransmitting {} bytes {} times over {span} with no acknowledgement{backoff_text}; it was still trying when the capture ended.{idle}",
                s.len, s.count
            ),
        )
    };
    v.summary = format!(
        "{} retransmission(s) unanswered over {span}{}",
        s.count,
        if gave_up { ", the sender gave up" } else { "" }
    );
    v.evidence.push(ev(
        start,
        format!("{}: {who} sends {} bytes (seq {})", frame(start), s.len, s.seq_rel),
    ));
    if let Some(&first) = s.sends.first() {
        v.evidence.push(ev(
            first,
            format!(
                "{}: first retransmission, {} later",
                frame(first),
                first.ts.since(start.ts)
            ),
        ));
    }
    v.evidence.push(ev(
        last,
        format!("{}: retransmission #{}, still unacknowledged", frame(last), s.count),
    ));
    if gave_up {
        match sender.rsts.iter().find(|r| r.mark.ts >= last.ts) {
            Some(r) => v.evidence.push(rst_ev(r)),
            None => v.evidence.push(ev(
                Mark { ts: t.observed_until, at: last.at },
                format!("nothing more from the {who} in the {quiet} to the end of the capture (the next retransmission was due after {due})"),
            )),
        }
    }
    v.advice.push(format!(
        "Find out why the {} stopped acknowledging: host or process down, path cut, or a stateful middlebox dropping the flow.",
        d.receiver()
    ));
    Some(v)
}

/// The first FIN decides (unless a RST came before it).
pub fn graceful_close(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    let (d, fin) = first_fin(t)?;
    if final_rst(t).is_some_and(|r| r.mark < fin) {
        return None;
    }
    let who = d.sender();
    let other = d.receiver();
    let peer = t.dir(d.reverse());
    let peer_fin = peer.fin;
    let peer_rst = peer.rsts.iter().find(|r| r.mark > fin);
    let (confidence, tail) = match (peer_fin, peer_rst) {
        (Some(pf), _) => (
            Confidence::High,
            format!("the {other} answered with its own FIN at {}", frame(pf)),
        ),
        (None, Some(r)) => (
            Confidence::High,
            format!(
                "the {other} answered with a RST at {} (it still had data to send or unread data, or it aborted)",
                frame(r.mark)
            ),
        ),
        (None, None) => (
            Confidence::Medium,
            format!("the {other} had not closed its side when the capture ended"),
        ),
    };
    let cause = if d == Dir::ToServer {
        Cause::GracefulClientClose
    } else {
        Cause::GracefulServerClose
    };
    let mut v = verdict(
        party(d),
        cause,
        confidence,
        format!(
            "The {who} closed the connection normally with a FIN at {}; {tail}.",
            frame(fin)
        ),
    );
    v.summary = match (peer_fin, peer_rst) {
        (Some(_), _) => format!("{who} FIN, {other} FIN"),
        (None, Some(_)) => format!("{who} FIN, {other} RST"),
        (None, None) => format!("{who} FIN, {other} still open"),
    };
    v.evidence.push(ev(fin, format!("{}: {who} FIN", frame(fin))));
    if let Some(pf) = peer_fin {
        v.evidence.push(ev(pf, format!("{}: {other} FIN", frame(pf))));
    }
    if let Some(r) = peer_rst {
        v.evidence.push(rst_ev(r));
    }
    Some(v)
}

/// The first RST decides.
pub fn peer_reset(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    let r: &RstInfo = final_rst(t)?;
    let d = r.dir;
    let who = d.sender();
    let other = d.receiver();
    let answering = r.since_receiver_sent.is_some_and(|g| g < Dur::from_secs(1))
        && t.dir(d.reverse()).last.is_some_and(|m| m.ts <= r.mark.ts);
    let explanation = if answering {
        format!(
            "The {who} reset the connection {} after the {other}'s last packet: its side was gone (the process exited or aborted, or it had no such connection any more).",
            r.since_receiver_sent.unwrap_or(Dur::ZERO)
        )
    } else {
        format!(
            "The {who} aborted the connection with a RST (an application closing with unread data or SO_LINGER 0, or a process exit)."
        )
    };
    let mut v = verdict(party(d), Cause::PeerReset, Confidence::High, explanation);
    for x in ignored_rsts(t).into_iter().filter(|x| x.mark < r.mark).take(2) {
        v.evidence.push(ev(
            x.mark,
            format!(
                "{}: an earlier {} — ignored: the {} carried on after it",
                frame(x.mark),
                rst_text(x),
                x.dir.sender()
            ),
        ));
    }
    v.summary = if answering {
        format!("{who} RST answering the {other}")
    } else {
        format!("{who} RST")
    };
    if let Some(prev) = t.dir(d.reverse()).last.filter(|m| m.ts <= r.mark.ts) {
        v.evidence.push(ev(
            prev,
            format!("{}: last packet from the {other} before the RST", frame(prev)),
        ));
    }
    v.evidence.push(rst_ev(r));
    Some(v)
}

/// No FIN, no RST, nothing failing: still open at the end of the capture.
pub fn still_open(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    if t.dirs.iter().any(|d| d.fin.is_some() || d.rst_count > 0) {
        return None;
    }
    let quiet = t.observed_until.since(t.last.ts);
    let ending = match t.end_reason {
        crate::tcp::EndReason::IdleEvicted => " (reported early: idle past the eviction time)",
        crate::tcp::EndReason::TableFull => " (reported early: the connection table was full)",
        _ => "",
    };
    let mut v = verdict(
        ClosedBy::None,
        Cause::StillOpen,
        Confidence::High,
        format!(
            "The connection was still open when the capture ended; its last packet came {quiet} before the end{ending}."
        ),
    );
    v.summary = format!("open; quiet for {quiet} at the end");
    v.evidence
        .push(ev(t.last, format!("{}: last packet of the connection", frame(t.last))));
    // What this vantage point cannot show: a connection cut on the far side's path looks merely quiet here.
    if quiet >= Dur::from_secs(1) {
        let far = match i.vantage.place {
            Place::ServerHost => Some("client"),
            Place::ClientHost => Some("server"),
            _ => None,
        };
        if let Some(far) = far {
            v.explanation.push_str(&format!(
                " This capture was taken on the {} host: if a middlebox or the path cut the connection while it was quiet, this side shows only the silence; a capture at the {far} would show its retransmissions or a reset.",
                if far == "client" { "server" } else { "client" }
            ));
        }
    }
    Some(v)
}

/// Nothing else matched.
pub fn unknown(i: &Ctx<'_>) -> Option<Verdict> {
    let t = i.tcp;
    let mut v = verdict(
        ClosedBy::Unknown,
        Cause::Unknown,
        Confidence::Low,
        "The capture does not show how this connection ended.".to_string(),
    );
    v.summary = "no close or failure seen".to_string();
    v.evidence
        .push(ev(t.last, format!("{}: last packet of the connection", frame(t.last))));
    Some(v)
}
