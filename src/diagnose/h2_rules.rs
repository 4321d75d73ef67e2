//! Rules that read HTTP/2: GOAWAYs and PINGs explain most "abrupt" gRPC closes, and they come before the TCP
//! rules because they explain the FIN or RST that follows them (a client that FINs right after the server's
//! GOAWAY was closed by the server).

use super::util::*;
use super::{Cause, ClosedBy, Confidence, Ctx, Verdict};
use crate::http2::{ErrorCode, GoAwayInfo, H2Summary, PingInfo};
use crate::tcp::{Dir, Mark, TcpRecord};
use crate::ts::Dur;

/// gRPC servers' default: one PING per 5 minutes without data (`grpc.http2.min_ping_interval_without_data_ms`),
/// and GOAWAY after 2 strikes (`grpc.http2.max_ping_strikes`).
const GRPC_MIN_PING_INTERVAL: Dur = Dur::from_secs(300);
const GRPC_PING_STRIKES: u32 = 2;

fn debug_text(g: &GoAwayInfo) -> String {
    String::from_utf8_lossy(&g.debug).trim_end_matches('\0').to_string()
}

fn debug_has(g: &GoAwayInfo, needle: &str) -> bool {
    debug_text(g).to_ascii_lowercase().contains(needle)
}

fn goaway_line(g: &GoAwayInfo) -> String {
    let code = g.error.map_or("(code not captured)".to_string(), |c| c.to_string());
    let dbg = debug_text(g);
    let dbg = if dbg.is_empty() {
        String::new()
    } else {
        format!(" \"{}\"", dbg.escape_debug())
    };
    let last = g.last_stream_id.map_or(String::new(), |l| format!(", last stream {l}"));
    let cut = if g.payload_truncated {
        " (payload cut in the capture)"
    } else {
        ""
    };
    format!(
        "{}: {} GOAWAY {code}{dbg}{last}{cut}",
        frame(Mark { ts: g.ts, at: g.at }),
        g.dir.sender()
    )
}

fn mark_of(g: &GoAwayInfo) -> Mark {
    Mark { ts: g.ts, at: g.at }
}

/// What ended the TCP connection after a GOAWAY (the first FIN or RST after it), for the evidence.
fn tcp_end_after(t: &TcpRecord, after: Mark) -> Option<(Mark, String)> {
    let mut ends: Vec<(Mark, String)> = Vec::new();
    for d in Dir::BOTH {
        let f = t.dir(d);
        if let Some(m) = f.fin.filter(|m| *m >= after) {
            ends.push((m, format!("{}: {} FIN", frame(m), d.sender())));
        }
        if let Some(r) = f.rsts.iter().find(|r| r.mark >= after) {
            ends.push((r.mark, format!("{}: {} RST", frame(r.mark), d.sender())));
        }
    }
    ends.into_iter().min_by_key(|(m, _)| *m)
}

/// The client's PINGs before `until`, and how many came without DATA/HEADERS from the client in between.
struct Cadence<'a> {
    pings: Vec<&'a PingInfo>,
    median: Option<Dur>,
}

fn cadence(s: &H2Summary, dir: Dir, until: Mark) -> Cadence<'_> {
    let pings: Vec<&PingInfo> = s
        .pings
        .iter()
        .filter(|p| p.dir == dir && (p.ts, p.at) <= (until.ts, until.at))
        .collect();
    let mut gaps: Vec<Dur> = pings
        .windows(2)
        .filter_map(|w| w.get(1).zip(w.first()).map(|(b, a)| b.ts.since(a.ts)))
        .collect();
    gaps.sort();
    let median = gaps.get(gaps.len() / 2).copied();
    Cadence { pings, median }
}

/// The decisive GOAWAY: the first with an error code other than NO_ERROR, else the last one.
fn decisive(s: &H2Summary) -> Option<&GoAwayInfo> {
    s.goaways
        .iter()
        .find(|g| g.error.is_some_and(|e| e != ErrorCode::NO_ERROR))
        .or(s.goaways.last())
}

/// GOAWAY ENHANCE_YOUR_CALM "too_many_pings" from the server (or, with the payload cut, a server GOAWAY after a
/// run of client PINGs without data).
pub fn too_many_pings(i: &Ctx<'_>) -> Option<Verdict> {
    let h2 = i.h2?;
    let s = &h2.summary;
    let Some(g) = s.goaways.iter().find(|g| {
        g.dir == Dir::ToClient
            && (debug_has(g, "too_many_pings")
                || (g.payload_truncated && g.error.is_none_or(|e| e == ErrorCode::ENHANCE_YOUR_CALM)))
    }) else {
        return too_many_pings_unseen(i);
    };
    let gm = mark_of(g);
    let c = cadence(s, Dir::ToServer, gm);
    let explicit = debug_has(g, "too_many_pings");
    if !explicit && c.pings.len() < 2 {
        return None;
    }
    let confidence = if explicit {
        Confidence::High
    } else if g.error == Some(ErrorCode::ENHANCE_YOUR_CALM) {
        Confidence::Medium
    } else {
        Confidence::Low
    };
    let n = c.pings.len();
    let every = c.median.map(|m| format!(" every {m}")).unwrap_or_default();
    let without_data = match s.last_data_or_headers[Dir::ToServer.index()] {
        None => format!("on a channel with no calls (all {n} without data)"),
        Some((_, t)) => {
            let k = c.pings.iter().filter(|p| p.ts > t).count();
            format!("{k} of them with no data from the client since its last request")
        }
    };
    let inferred = if explicit {
        String::new()
    } else {
        " (the GOAWAY's payload is cut in the capture: inferred from its timing after the client's PINGs)".to_string()
    };
    let mut v = verdict(
        ClosedBy::Server,
        Cause::TooManyPings,
        confidence,
        format!(
            "The server closed the connection with GOAWAY ENHANCE_YOUR_CALM \"too_many_pings\"{inferred}: the client sent {n} PING{}{every}, {without_data}, while gRPC servers by default accept one PING per {} without data and send GOAWAY after {GRPC_PING_STRIKES} strikes.",
            if n == 1 { "" } else { "s" },
            GRPC_MIN_PING_INTERVAL
        ),
    );
    v.summary = format!("GOAWAY too_many_pings after {n} client PINGs{every}");
    if let (Some(first), Some(last)) = (c.pings.first(), c.pings.last()) {
        v.evidence.push(ev(
            Mark {
                ts: first.ts,
                at: first.at,
            },
            format!(
                "{}: first client PING",
                frame(Mark {
                    ts: first.ts,
                    at: first.at
                })
            ),
        ));
        if n > 1 {
            v.evidence.push(ev(
                Mark {
                    ts: last.ts,
                    at: last.at,
                },
                format!(
                    "{}: client PING #{n}{every}",
                    frame(Mark {
                        ts: last.ts,
                        at: last.at
                    })
                ),
            ));
        }
    }
    v.evidence.push(ev(gm, goaway_line(g)));
    if let Some((m, text)) = tcp_end_after(i.tcp, gm) {
        v.evidence
            .push(ev(m, format!("{text}, {} after the GOAWAY", m.ts.since(gm.ts))));
    }
    v.advice.push(
        "Raise the client's keepalive time (grpc.keepalive_time_ms) to at least 300000 ms (5 min), or stop pinging idle channels (grpc.keepalive_permit_without_calls=0)."
            .to_string(),
    );
    v.advice.push(
        "Or let the server accept faster pings: grpc.http2.min_ping_interval_without_data_ms and grpc.http2.max_ping_strikes (C-core servers) / keepalive.EnforcementPolicy.MinTime (grpc-go) below the client's interval, and PermitWithoutStream if the channel is idle."
            .to_string(),
    );
    Some(v)
}

/// Size of a GOAWAY frame carrying debug data "too_many_pings": 9 header + 8 fields + 14 debug bytes.
const TOO_MANY_PINGS_GOAWAY: u64 = 31;

/// The server's GOAWAY itself is not in the capture (the snapshot length cut everything after the frame
/// headers), but what is visible fits only one story: the client pinged at a cadence gRPC servers reject, the
/// server's last bytes — the size of a GOAWAY — went unseen, and the connection closed right after.
fn too_many_pings_unseen(i: &Ctx<'_>) -> Option<Verdict> {
    let s = &i.h2?.summary;
    let t = i.tcp;
    let (at, ts, bytes) = s.lost_after_last_frame[Dir::ToClient.index()]?;
    // A GOAWAY is 17 bytes plus its debug data; anything else in the unseen tail would be a different story.
    if !(17..=17 + 256).contains(&bytes) {
        return None;
    }
    let lost = Mark { ts, at };
    let c = cadence(s, Dir::ToServer, lost);
    let n = c.pings.len();
    let median = c.median?;
    if n < 2 || median >= GRPC_MIN_PING_INTERVAL {
        return None;
    }
    // No calls of the client's since the first of those PINGs.
    let first = c.pings.first()?;
    if s.last_data_or_headers[Dir::ToServer.index()].is_some_and(|(_, t)| t > first.ts) {
        return None;
    }
    // The connection ended right after the unseen bytes.
    let (end, end_text) = tcp_end_after(t, lost)?;
    if end.ts.since(lost.ts) > Dur::from_secs(1) {
        return None;
    }
    let exact = bytes == TOO_MANY_PINGS_GOAWAY;
    let mut v = verdict(
        ClosedBy::Server,
        Cause::TooManyPings,
        if exact { Confidence::Medium } else { Confidence::Low },
        format!(
            "The server most likely closed the connection with GOAWAY ENHANCE_YOUR_CALM \"too_many_pings\": the capture's snapshot length cut the frame, but {bytes} server bytes it did not keep followed the server's last frame{} right before the close, after the client sent {n} PINGs every {median} without a call — where gRPC servers by default accept one PING per {GRPC_MIN_PING_INTERVAL} without data and send GOAWAY after {GRPC_PING_STRIKES} strikes.",
            if exact {
                " (exactly the size of that GOAWAY: 9 + 8 + 14 bytes)"
            } else {
                ""
            }
        ),
    );
    v.summary = format!("GOAWAY too_many_pings inferred (cut by snaplen) after {n} client PINGs every {median}");
    let fm = Mark {
        ts: first.ts,
        at: first.at,
    };
    v.evidence.push(ev(
        fm,
        format!(
            "{}: first client PING (the capture keeps only the frame headers)",
            frame(fm)
        ),
    ));
    if let Some(last) = c.pings.last() {
        let lm = Mark {
            ts: last.ts,
            at: last.at,
        };
        v.evidence
            .push(ev(lm, format!("{}: client PING #{n}, every {median}", frame(lm))));
    }
    v.evidence.push(ev(
        lost,
        format!(
            "{}: {bytes} server bytes after its last frame are not in the capture",
            frame(lost)
        ),
    ));
    v.evidence
        .push(ev(end, format!("{end_text}, {} later", end.ts.since(lost.ts))));
    v.advice.push(
        "Capture with a larger snapshot length (tcpdump -s 0) to see the GOAWAY itself; and raise the client's keepalive time (grpc.keepalive_time_ms) to at least 300000 ms, or let the server accept faster pings."
            .to_string(),
    );
    Some(v)
}

/// A PING left unanswered and the pinger closed: grpcio says GOAWAY ENHANCE_YOUR_CALM "ping_timeout" (or the
/// path is black-holed and only the PING, its retransmissions and the pinger's close reach the wire).
pub fn h2_ping_timeout(i: &Ctx<'_>) -> Option<Verdict> {
    let h2 = i.h2?;
    let s = &h2.summary;
    let t = i.tcp;
    // Explicit: a GOAWAY saying so.
    let explicit = s
        .goaways
        .iter()
        .find(|g| debug_has(g, "ping_timeout") || debug_has(g, "keepalive watchdog"));
    // Implicit: the last PING of one side never answered, and that side ended the connection after it.
    let pinger_and_ping = match explicit {
        Some(g) => s
            .pings
            .iter()
            .rev()
            .find(|p| p.dir == g.dir && p.ack.is_none() && p.ts <= g.ts)
            .map(|p| (g.dir, p)),
        None => {
            let last = s.pings.iter().rev().find(|p| p.ack.is_none())?;
            Some((last.dir, last))
        }
    };
    let (d, ping) = match (explicit, pinger_and_ping) {
        (_, Some(x)) => x,
        (Some(_), None) => return None,
        (None, None) => return None,
    };
    let pm = Mark {
        ts: ping.ts,
        at: ping.at,
    };
    let peer = t.dir(d.reverse());
    // The peer must not have sent HTTP/2 after the PING (an answered PING or live peer is not a timeout).
    let pinger = t.dir(d);
    // Black-holed path: the PING went out, TCP retransmitted it unanswered, then the pinger fell silent — gRPC
    // sets TCP_USER_TIMEOUT to its keepalive timeout, so the kernel aborts the socket without a FIN or RST.
    let silent = pinger.open_retrans.as_deref().filter(|s| {
        let starts_at_ping =
            s.original.map(|o| o.at) == Some(ping.at) || s.sends.first().is_some_and(|f| f.ts >= ping.ts);
        let last = s.sends.last().copied();
        starts_at_ping
            && last.is_some_and(|l| pinger.last.is_none_or(|p| p <= l))
            && last.is_some_and(|l| t.observed_until.since(l.ts) >= next_rto(s))
            && pinger.fin.is_none_or(|f| f < pm)
            && pinger.rsts.iter().all(|r| r.mark < pm)
    });
    let ended_by_pinger = pinger.fin.is_some_and(|m| m >= pm)
        || pinger.rsts.iter().any(|r| r.mark >= pm)
        || explicit.is_some()
        || silent.is_some();
    if !ended_by_pinger {
        return None;
    }
    if explicit.is_none() {
        // The peer sent no data after the PING (its TCP ACKs are fine: a frozen process still ACKs).
        if peer.last_data.is_some_and(|m| m > pm) {
            return None;
        }
        if silent.is_none() {
            // And the pinger's close came after a wait (the keepalive timeout), not in the same breath.
            let close = pinger
                .fin
                .into_iter()
                .chain(pinger.rsts.iter().map(|r| r.mark))
                .filter(|m| *m >= pm)
                .min()?;
            if close.ts.since(pm.ts) < Dur::from_millis(500) {
                return None;
            }
        }
    }
    let who = d.sender();
    let other = d.receiver();
    let end = tcp_end_after(t, pm);
    let silent_last = silent.and_then(|s| s.sends.last().copied());
    let waited = explicit
        .map(|g| g.ts.since(ping.ts))
        .or(end.as_ref().map(|(m, _)| m.ts.since(ping.ts)))
        .or(silent_last.map(|l| l.ts.since(ping.ts)));
    let waited_s = match (waited, silent.is_some()) {
        (Some(w), true) => format!(" for at least {w}"),
        (Some(w), false) => format!(" for {w}"),
        (None, _) => String::new(),
    };
    let peer_acks = peer.last.is_some_and(|m| m > pm) && peer.last_data.is_none_or(|m| m <= pm);
    let why = if silent.is_some() {
        format!(
            "even its TCP retransmissions of the PING went unacknowledged (the {other} or the path went dark), and the {who}'s kernel dropped the connection without a FIN or RST (gRPC sets TCP_USER_TIMEOUT to the keepalive timeout)"
        )
    } else if peer_acks {
        format!(
            "the {other}'s TCP stack still acknowledged packets, so its process (not the network) stopped answering"
        )
    } else {
        format!("nothing at all came back from the {other}: the {other} or the path to it went silent")
    };
    let mut v = verdict(
        super::util::party(d),
        Cause::H2PingTimeout,
        if explicit.is_some() {
            Confidence::High
        } else {
            Confidence::Medium
        },
        format!("The {who} closed the connection because its HTTP/2 keepalive PING went unanswered{waited_s}; {why}."),
    );
    v.summary = format!("PING unanswered{waited_s}, {who} closed");
    v.evidence.push(ev(
        pm,
        format!("{}: {who} PING {:016x}, never acknowledged", frame(pm), ping.opaque),
    ));
    if let Some(g) = explicit {
        v.evidence.push(ev(mark_of(g), goaway_line(g)));
    }
    if let Some(s) = silent {
        if let Some(&f) = s.sends.first() {
            v.evidence.push(ev(
                f,
                format!("{}: TCP retransmits the PING, {} later", frame(f), f.ts.since(pm.ts)),
            ));
        }
        if let Some(&l) = s.sends.last() {
            v.evidence.push(ev(
                l,
                format!(
                    "{}: retransmission #{} of the PING, then nothing more from the {who} in the {} to the end of the capture",
                    frame(l),
                    s.count,
                    t.observed_until.since(l.ts)
                ),
            ));
        }
    } else if let Some((m, text)) = end {
        v.evidence.push(ev(m, text));
    }
    v.advice.push(format!(
        "Find out why the {other} stopped answering (a stalled or overloaded process, a long GC pause, or a network path that went dark); the {who}'s keepalive did its job."
    ));
    Some(v)
}

/// GOAWAY NO_ERROR "max_age" from the server: gRPC's max connection age.
pub fn server_goaway_max_age(i: &Ctx<'_>) -> Option<Verdict> {
    let s = &i.h2?.summary;
    let g = s
        .goaways
        .iter()
        .rev()
        .find(|g| g.dir == Dir::ToClient && debug_has(g, "max_age"))?;
    let gm = mark_of(g);
    let age = gm.ts.since(i.tcp.first.ts);
    let mut v = verdict(
        ClosedBy::Server,
        Cause::ServerGoawayMaxAge,
        Confidence::High,
        format!(
            "The server ended the connection at its maximum connection age: GOAWAY NO_ERROR \"max_age\" {age} after the connection opened (grpc.max_connection_age_ms); this is by design and clients reconnect."
        ),
    );
    v.summary = format!("GOAWAY max_age after {age}");
    let goaways = s.goaways.iter().filter(|x| x.dir == Dir::ToClient);
    for x in goaways {
        v.evidence.push(ev(mark_of(x), goaway_line(x)));
    }
    if let Some((m, text)) = tcp_end_after(i.tcp, gm) {
        v.evidence
            .push(ev(m, format!("{text}, {} after the GOAWAY", m.ts.since(gm.ts))));
    }
    v.advice.push(
        "If the reconnects hurt, raise grpc.max_connection_age_ms (with jitter) and give calls time to finish with grpc.max_connection_age_grace_ms; make clients retry UNAVAILABLE."
            .to_string(),
    );
    Some(v)
}

/// Any other GOAWAY: NO_ERROR is a graceful shutdown by its sender; an error code is `goaway_error`.
pub fn goaway(i: &Ctx<'_>) -> Option<Verdict> {
    let s = &i.h2?.summary;
    let g = decisive(s)?;
    let gm = mark_of(g);
    let who = g.dir.sender();
    let dbg = debug_text(g);
    let dbg_s = if dbg.is_empty() {
        String::new()
    } else {
        format!(" (\"{}\")", dbg.escape_debug())
    };
    let mut v = match g.error {
        Some(ErrorCode::NO_ERROR) | None => {
            let cause = if g.dir == Dir::ToClient {
                Cause::GracefulServerClose
            } else {
                Cause::GracefulClientClose
            };
            let mut v = verdict(
                party(g.dir),
                cause,
                if g.error.is_some() {
                    Confidence::High
                } else {
                    Confidence::Medium
                },
                format!(
                    "The {who} shut the connection down gracefully with GOAWAY NO_ERROR{dbg_s}: no new calls on it, the open ones allowed to finish."
                ),
            );
            v.summary = format!("{who} GOAWAY NO_ERROR{dbg_s}");
            v
        }
        Some(code) => {
            let mut v = verdict(
                party(g.dir),
                Cause::GoawayError,
                Confidence::High,
                format!(
                    "The {who} ended the connection with GOAWAY {code}{dbg_s}: it saw an HTTP/2 error it could not continue after."
                ),
            );
            v.summary = format!("{who} GOAWAY {code}");
            v.advice.push(format!(
                "Look at the {who}'s logs around this time for the {code} it reported, and at the frames the other side sent just before (whoclosed --frames)."
            ));
            v
        }
    };
    // Servers send two GOAWAYs on shutdown (last stream 2^31−1, then the real one): cite them all.
    for x in s.goaways.iter().filter(|x| x.dir == g.dir) {
        v.evidence.push(ev(mark_of(x), goaway_line(x)));
    }
    if let Some((m, text)) = tcp_end_after(i.tcp, gm) {
        v.evidence
            .push(ev(m, format!("{text}, {} after the GOAWAY", m.ts.since(gm.ts))));
    }
    Some(v)
}

/// Overload signs and failed calls, named beside whatever cause was found.
pub fn factors(i: &Ctx<'_>) -> Vec<String> {
    let mut out = Vec::new();
    let t = i.tcp;
    for d in Dir::BOTH {
        let z = t.dir(d).zero_windows;
        if z > 0 {
            out.push(format!(
                "the {} advertised a zero window {z} time{} (it could not keep up reading)",
                d.sender(),
                if z == 1 { "" } else { "s" }
            ));
        }
    }
    let Some(h2) = i.h2 else { return out };
    let s = &h2.summary;
    if s.refused_streams > 0 {
        out.push(format!(
            "{} stream{} refused (REFUSED_STREAM: the server was at its concurrent-stream limit)",
            s.refused_streams,
            if s.refused_streams == 1 { "" } else { "s" }
        ));
    }
    if s.deadline_cancels > 0 {
        out.push(format!(
            "{} call{} cancelled after the deadline ran out (RST_STREAM CANCEL after grpc-timeout)",
            s.deadline_cancels,
            if s.deadline_cancels == 1 { "" } else { "s" }
        ));
    }
    let mut failed = 0;
    for &(code, n) in &s.grpc_status {
        // RESOURCE_EXHAUSTED 8, UNAVAILABLE 14, DEADLINE_EXCEEDED 4, INTERNAL 13, UNKNOWN 2, CANCELLED 1
        if code != 0 {
            failed += n;
        }
        if matches!(code, 4 | 8 | 14) {
            out.push(format!(
                "{n} call{} ended with grpc-status {}",
                if n == 1 { "" } else { "s" },
                grpc_status_name(code)
            ));
        }
    }
    if s.grpc_calls > 0 && failed == s.grpc_calls {
        out.push(format!(
            "all {} gRPC call{} on the connection failed",
            s.grpc_calls,
            if s.grpc_calls == 1 { "" } else { "s" }
        ));
    }
    out
}
