//! The timeline: one connection's TCP and HTTP/2 events merged in time order, each with a machine tag and a
//! sentence for people. It is the currency of everything after it: the diagnosis cites its events as evidence
//! and every report format prints it.
//!
//! Events are kept, not packets: a bulk transfer is one "data" event, a run of duplicate ACKs one event.

use crate::http2::{AppProtocol, H2Event, H2EventKind, H2Record};
use crate::source::PacketRef;
use crate::tcp::{Dir, RstInfo, SeqCheck, TcpEvent, TcpEventKind, TcpRecord};
use crate::ts::Ts;
use std::borrow::Cow;

/// Who an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Client,
    Server,
    /// Something on the path (a router's ICMP, a forged packet).
    Network,
    /// The connection as a whole (idle gaps).
    Connection,
}

impl Actor {
    pub fn from_dir(d: Option<Dir>) -> Actor {
        match d {
            Some(Dir::ToServer) => Actor::Client,
            Some(Dir::ToClient) => Actor::Server,
            None => Actor::Connection,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Client => "client",
            Actor::Server => "server",
            Actor::Network => "network",
            Actor::Connection => "-",
        }
    }
}

/// Which layer an event comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    Tcp,
    Icmp,
    Http2,
}

/// One line of a connection's story.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub ts: Ts,
    pub at: PacketRef,
    /// For events spanning packets (a data burst): the last one.
    pub until: Option<(PacketRef, Ts)>,
    pub actor: Actor,
    pub layer: Layer,
    /// Stable machine tag: `syn`, `syn_ack`, `handshake_ack`, `data`, `retransmission`, `recovered`,
    /// `out_of_order`, `missing`, `acked_unseen`, `dup_acks`, `keepalive`, `keepalive_ack`, `zero_window`,
    /// `window_opened`, `window_probe`, `idle`, `fin`, `rst`, `icmp`, `truncated`, and for HTTP/2 `h2_detected`,
    /// `h2_settings`, `h2_ping`, `h2_ping_ack`, `h2_goaway`, `h2_rst_stream`, `h2_stream_opened`,
    /// `h2_stream_ended`, `h2_gap`, `h2_resync`, `h2_malformed`, `h2_note`.
    pub kind: &'static str,
    /// The sentence; the common fixed ones ("client sent SYN") are not allocated, connection after connection.
    pub text: Cow<'static, str>,
}

/// A connection's merged events.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeline {
    pub events: Vec<Event>,
    /// Events left out by the per-connection caps (the middle of very long connections).
    pub dropped: u64,
}

/// Builds the timeline of one connection.
pub fn build(tcp: &TcpRecord, h2: Option<&H2Record>) -> Timeline {
    let mut events: Vec<Event> = tcp.events.iter().map(tcp_event).collect();
    if let Some(h2) = h2 {
        // "Not HTTP/2" is the normal case for most connections: only HTTP/2 and TLS are worth a line.
        events.extend(
            h2.events
                .iter()
                .filter(|e| !matches!(e.kind, H2EventKind::Detected(AppProtocol::Other | AppProtocol::Unknown)))
                .map(h2_event),
        );
    }
    // An idle gap ended by a probe or a retransmission is already told by that packet's line ("2.0 s after the
    // previous packet"): keep the timeline to one line per fact.
    let told: Vec<PacketRef> = events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                "keepalive" | "retransmission" | "window_probe" | "syn" | "syn_ack"
            )
        })
        .map(|e| e.at)
        .collect();
    events.retain(|e| e.kind != "idle" || e.until.is_none_or(|(end, _)| !told.contains(&end)));
    // Stable: events of one packet keep the order in which the stages emitted them.
    events.sort_by_key(|e| (e.ts, e.at));
    Timeline {
        events,
        dropped: tcp.events_dropped,
    }
}

fn tcp_event(e: &TcpEvent) -> Event {
    let actor = Actor::from_dir(e.dir);
    let who = actor.as_str();
    let mut until = None;
    // The sentences that are always the same words (a third of all events on a busy capture) are borrowed.
    let (kind, text): (&str, Cow<'static, str>) = match &e.kind {
        TcpEventKind::Syn { ack, nth, since_prev } => {
            let name = if *ack { "SYN-ACK" } else { "SYN" };
            let tag = if *ack { "syn_ack" } else { "syn" };
            match (nth, since_prev) {
                (0, _) => match (actor, ack) {
                    (Actor::Client, false) => (tag, "client sent SYN".into()),
                    (Actor::Server, true) => (tag, "server sent SYN-ACK".into()),
                    _ => (tag, format!("{who} sent {name}").into()),
                },
                (n, Some(gap)) => (
                    tag,
                    format!("{who} retransmitted {name} (#{n}, {gap} after the previous one)").into(),
                ),
                (n, None) => (tag, format!("{who} retransmitted {name} (#{n})").into()),
            }
        }
        TcpEventKind::HandshakeAck => ("handshake_ack", "client completed the handshake (ACK)".into()),
        TcpEventKind::Data { segments, bytes, last } => {
            until = Some((last.at, last.ts));
            let seg = if *segments == 1 { "segment" } else { "segments" };
            ("data", format!("{who} sent {bytes} bytes in {segments} {seg}").into())
        }
        TcpEventKind::Retransmission {
            seq_rel,
            len,
            nth,
            since_prev,
            fast,
            spurious,
        } => {
            let how = if *fast {
                "fast retransmission"
            } else if *spurious {
                "spurious retransmission"
            } else {
                "retransmission"
            };
            let gap = since_prev
                .map(|g| format!(", {g} after the previous send"))
                .unwrap_or_default();
            (
                "retransmission",
                format!("{who} {how} #{nth} of {len} bytes at seq {seq_rel}{gap}").into(),
            )
        }
        TcpEventKind::Recovered {
            seq_rel,
            retransmissions,
            after,
        } => (
            "recovered",
            format!(
                "seq {seq_rel} acknowledged after {retransmissions} retransmissions ({after} after it was first sent)"
            )
            .into(),
        ),
        TcpEventKind::OutOfOrder { seq_rel, len } => (
            "out_of_order",
            format!("{who} segment out of order ({len} bytes at seq {seq_rel})").into(),
        ),
        TcpEventKind::Missing { seq_rel, bytes } => (
            "missing",
            format!("{bytes} bytes from the {who} at seq {seq_rel} are not in the capture").into(),
        ),
        TcpEventKind::AckedUnseen { bytes } => {
            let other = e.dir.map_or("peer", |d| d.receiver());
            (
                "acked_unseen",
                format!("{who} acknowledged {bytes} bytes of the {other}'s that the capture never saw").into(),
            )
        }
        TcpEventKind::DupAcks { count, ack_rel } => (
            "dup_acks",
            format!("{who} sent {count} duplicate ACKs for seq {ack_rel}").into(),
        ),
        TcpEventKind::KeepAlive { nth, since_prev } => {
            let gap = since_prev
                .map(|g| format!(", {g} after the previous packet"))
                .unwrap_or_default();
            ("keepalive", format!("{who} TCP keepalive probe #{nth}{gap}").into())
        }
        TcpEventKind::KeepAliveAck => ("keepalive_ack", format!("{who} answered the keepalive probe").into()),
        TcpEventKind::ZeroWindow => (
            "zero_window",
            format!("{who} advertised a zero window (its receive buffer is full)").into(),
        ),
        TcpEventKind::WindowOpened { after } => (
            "window_opened",
            format!("{who} opened its window again after {after}").into(),
        ),
        TcpEventKind::WindowProbe => ("window_probe", format!("{who} probed the peer's zero window").into()),
        TcpEventKind::Idle { dur, from } => {
            until = Some((e.mark.at, e.mark.ts));
            return Event {
                ts: from.ts,
                at: from.at,
                until,
                actor: Actor::Connection,
                layer: Layer::Tcp,
                kind: "idle",
                text: format!("idle for {dur}").into(),
            };
        }
        TcpEventKind::Fin {
            seq_rel,
            retransmission,
        } => {
            if *retransmission {
                ("fin", format!("{who} retransmitted its FIN").into())
            } else {
                (
                    "fin",
                    format!("{who} sent FIN (seq {seq_rel}): it has nothing more to send").into(),
                )
            }
        }
        TcpEventKind::Rst(info) => ("rst", rst_text(info).into()),
        TcpEventKind::Icmp { from, text, .. } => {
            return Event {
                ts: e.mark.ts,
                at: e.mark.at,
                until: None,
                actor: Actor::Network,
                layer: Layer::Icmp,
                kind: "icmp",
                text: format!("ICMP from {from} about a {who} packet: {text}").into(),
            };
        }
        TcpEventKind::Truncated { bytes } => (
            "truncated",
            format!("{bytes} bytes of {who} payload cut by the snapshot length").into(),
        ),
        TcpEventKind::ReassemblyFull { skipped, cap } => (
            "reassembly_full",
            format!(
                "limit: {cap} bytes of {who} data were held ahead of missing data, the reassembly cap; {skipped} \
                 missing bytes were given up on and the stream analysed from after them (later overflows not listed)"
            )
            .into(),
        ),
    };
    Event {
        ts: e.mark.ts,
        at: e.mark.at,
        until,
        actor,
        layer: Layer::Tcp,
        kind,
        text,
    }
}

/// A RST described with the details that tell a peer's RST from a forged one.
pub fn rst_text(r: &RstInfo) -> String {
    use std::fmt::Write as _;
    let who = r.dir.sender();
    let flags = if r.with_ack { "RST+ACK" } else { "RST" };
    // One string written in place (a RST is on most short connections' timelines, and cited by the diagnosis).
    let mut s = String::with_capacity(80);
    let _ = write!(s, "{who} sent {flags} (TTL {}", r.ttl);
    if let Some(i) = r.ip_id {
        let _ = write!(s, ", IP ID {i}");
    }
    let _ = write!(s, ", window {}, ", r.window);
    let _ = match r.seq_check {
        SeqCheck::Exact => s.write_str("seq exactly as expected"),
        SeqCheck::InWindow(o) => write!(s, "seq {o} bytes into the window"),
        SeqCheck::OutOfWindow(o) => write!(s, "seq out of window by {o}"),
        SeqCheck::Unknown => s.write_str("seq not checkable"),
    };
    s.push(')');
    s
}

fn h2_event(e: &H2Event) -> Event {
    let actor = Actor::from_dir(Some(e.dir));
    let who = actor.as_str();
    let (kind, text) = match &e.kind {
        H2EventKind::Detected(p) => {
            let how = match p {
                AppProtocol::Http2Preface => "HTTP/2 (client preface)",
                AppProtocol::Http2Upgrade => "HTTP/2 (upgraded from HTTP/1.1 h2c)",
                AppProtocol::Http2Resync => "HTTP/2 (recognised mid-connection from its frames)",
                AppProtocol::Tls => "TLS: the payload is encrypted and not decoded",
                AppProtocol::Other | AppProtocol::Unknown => "the payload is not HTTP/2 (not decoded)",
            };
            ("h2_detected", format!("{who} payload: {how}"))
        }
        H2EventKind::Settings { ack: true, .. } => ("h2_settings", format!("{who} acknowledged SETTINGS")),
        H2EventKind::Settings { ack: false, params } => {
            let p: Vec<String> = params
                .iter()
                .map(|(k, v)| format!("{}={v}", setting_name(*k)))
                .collect();
            ("h2_settings", format!("{who} SETTINGS {}", p.join(", ")))
        }
        H2EventKind::Ping { ack: false, opaque, .. } => ("h2_ping", format!("{who} PING {opaque:016x}")),
        H2EventKind::Ping { ack: true, opaque, rtt } => {
            let r = rtt.map(|r| format!(", round trip {r}")).unwrap_or_default();
            ("h2_ping_ack", format!("{who} PING ACK {opaque:016x}{r}"))
        }
        H2EventKind::GoAway(g) => {
            let code = g.error.map_or("?".to_string(), |c| c.to_string());
            let last = g.last_stream_id.map_or("?".to_string(), |l| l.to_string());
            let dbg = if g.debug.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", String::from_utf8_lossy(&g.debug).escape_debug())
            };
            let cut = if g.payload_truncated {
                " (payload cut in the capture)"
            } else {
                ""
            };
            (
                "h2_goaway",
                format!("{who} GOAWAY {code}{dbg}, last stream {last}{cut}"),
            )
        }
        H2EventKind::RstStream(r) => {
            let late = if r.after_deadline {
                " after the call's deadline"
            } else {
                ""
            };
            (
                "h2_rst_stream",
                format!("{who} RST_STREAM {} on stream {}{late}", r.error, r.stream_id),
            )
        }
        H2EventKind::StreamOpened { stream_id, summary } => {
            ("h2_stream_opened", format!("{who} stream {stream_id}: {summary}"))
        }
        H2EventKind::StreamEnded { stream_id, summary } => {
            ("h2_stream_ended", format!("{who} stream {stream_id} ended: {summary}"))
        }
        H2EventKind::Gap { missing } => ("h2_gap", format!("{missing} bytes of {who} HTTP/2 stream missing")),
        H2EventKind::Resync { skipped } => (
            "h2_resync",
            format!("resynchronised the {who} HTTP/2 stream (skipped {skipped} bytes)"),
        ),
        H2EventKind::Malformed { what } => ("h2_malformed", format!("{who} malformed HTTP/2: {what}")),
        H2EventKind::Note { what } => ("h2_note", format!("HTTP/2 ({who} side): {what}")),
    };
    Event {
        ts: e.ts,
        at: e.at,
        until: None,
        actor,
        layer: Layer::Http2,
        kind,
        text: text.into(),
    }
}

/// RFC 9113 §6.5.2 setting names.
pub fn setting_name(id: u16) -> String {
    match id {
        1 => "HEADER_TABLE_SIZE".into(),
        2 => "ENABLE_PUSH".into(),
        3 => "MAX_CONCURRENT_STREAMS".into(),
        4 => "INITIAL_WINDOW_SIZE".into(),
        5 => "MAX_FRAME_SIZE".into(),
        6 => "MAX_HEADER_LIST_SIZE".into(),
        8 => "ENABLE_CONNECT_PROTOCOL".into(),
        9 => "NO_RFC7540_PRIORITIES".into(),
        other => format!("0x{other:x}"),
    }
}
