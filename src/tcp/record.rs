//! What the TCP stage hands on for one connection: its events in capture order and the facts the diagnosis
//! rules read (per-direction endpoint summaries, the handshake, RSTs with their IP/TCP fingerprints, the
//! retransmission and keepalive series that were still open when the connection ended).
//!
//! These are plain data: no reference back into the engine, so a finished connection's engine state can be
//! freed the moment its record is made.

use super::Dir;
use crate::decode::SeqNum;
use crate::source::PacketRef;
use crate::ts::{Dur, Ts};
use std::net::SocketAddr;

/// A point in the capture: a packet and its time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mark {
    pub ts: Ts,
    pub at: PacketRef,
}

/// How the client/server roles were decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleSource {
    /// The SYN sender is the client.
    Syn,
    /// No SYN captured: the SYN-ACK's receiver is the client.
    SynAck,
    /// No handshake captured: the server is the side on a well-known port (< 1024).
    WellKnownPort,
    /// No handshake captured: the client is the side on an ephemeral port (>= 32768).
    EphemeralPort,
    /// No handshake captured: the lower port is taken as the server's.
    LowerPort,
}

impl RoleSource {
    pub fn inferred(self) -> bool {
        self != RoleSource::Syn
    }
    pub fn describe(self) -> &'static str {
        match self {
            RoleSource::Syn => "the SYN sender is the client",
            RoleSource::SynAck => "roles inferred from the SYN-ACK (the SYN was not captured)",
            RoleSource::WellKnownPort => "roles inferred: no handshake captured, the server is on the well-known port",
            RoleSource::EphemeralPort => "roles inferred: no handshake captured, the client is on the ephemeral port",
            RoleSource::LowerPort => {
                "roles inferred: no handshake captured, the server is taken to be on the lower port"
            }
        }
    }
}

/// Where the sequence number of a RST fell, relative to what its receiver expected next from its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "offset")]
pub enum SeqCheck {
    /// Exactly the next expected sequence number (RFC 5961: the only value that resets at once).
    Exact,
    /// Inside the receive window, this many bytes past the expected number.
    InWindow(i64),
    /// Outside the window (negative: before it).
    OutOfWindow(i64),
    /// Nothing known about the sender's sequence space (no earlier packet from it).
    Unknown,
}

/// The earlier packets of one direction, for comparing a RST (or any packet) with what that sender usually
/// looks like: a forged RST often differs in TTL, IP ID or options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fingerprint {
    /// Packets (not counting RSTs) this profile was built from.
    pub packets: u64,
    /// The most common TTL / hop limit and how many packets had it.
    pub ttl_mode: Option<u8>,
    pub ttl_mode_count: u64,
    /// Lowest and highest TTL seen.
    pub ttl_min: u8,
    pub ttl_max: u8,
    /// The last IP ID and how the IDs moved: packets with ID 0, and steps of +1..+64 from the previous.
    pub last_ip_id: Option<u32>,
    pub ip_id_zero: u64,
    pub ip_id_small_steps: u64,
    /// Packets carrying TCP timestamps.
    pub with_timestamps: u64,
    /// Last TSval seen.
    pub last_tsval: Option<u32>,
}

/// One RST, with everything a later rule needs to tell a peer's RST from a forged one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RstInfo {
    pub dir: Dir,
    pub mark: Mark,
    pub with_ack: bool,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub window: u16,
    pub ttl: u8,
    pub ip_id: Option<u32>,
    /// TCP option kinds present (bit k for kind k).
    pub option_kinds: u64,
    pub tsval: Option<u32>,
    pub payload_len: u32,
    pub seq_check: SeqCheck,
    /// The same direction's packets before this RST.
    pub before: Fingerprint,
    /// Time since the previous packet of the connection (either direction).
    pub since_previous: Option<Dur>,
    /// Time since the previous packet the RST's receiver sent (what a RST "answers").
    pub since_receiver_sent: Option<Dur>,
}

/// Retransmissions of the same data, in order: the backoff series.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetransSeries {
    pub dir: Dir,
    /// Relative sequence number of the retransmitted data and its length.
    pub seq_rel: u32,
    pub len: u32,
    /// The first transmission, when captured.
    pub original: Option<Mark>,
    /// Every retransmission (capped; `count` counts all).
    pub sends: Vec<Mark>,
    pub count: u32,
    /// Quiet time on the connection before the original transmission.
    pub idle_before: Option<Dur>,
    /// When the receiver finally acknowledged it.
    pub recovered: Option<Mark>,
}

/// Keepalive probes since the last real traffic from the prober.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeepaliveSeries {
    pub dir: Dir,
    pub probes: Vec<Mark>,
    pub count: u32,
    /// Probes the peer answered (ACK), and the last answer.
    pub answered: u32,
    pub last_answer: Option<Mark>,
    /// Quiet time before the first probe.
    pub idle_before: Option<Dur>,
}

/// Facts about one direction (the packets one endpoint sent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirFacts {
    pub packets: u64,
    /// Payload bytes that advanced the sequence space (retransmissions not counted).
    pub bytes: u64,
    /// SYN (client) or SYN-ACK (server): the first one, and how many were sent.
    pub syn: Option<Mark>,
    pub syn_count: u32,
    pub fin: Option<Mark>,
    pub fin_count: u32,
    /// RSTs (the first few kept; `rst_count` counts all).
    pub rsts: Vec<RstInfo>,
    pub rst_count: u32,
    pub retransmissions: u64,
    pub fast_retransmissions: u64,
    pub spurious_retransmissions: u64,
    pub out_of_order: u64,
    /// Holes: the sender's data skipped ahead of what was captured.
    pub lost_segments: u64,
    /// The receiver acknowledged this sender's bytes the capture never saw.
    pub acked_unseen: u64,
    pub dup_acks: u64,
    pub keepalives: u64,
    pub keepalive_acks: u64,
    /// Zero windows this endpoint advertised, and window probes it sent.
    pub zero_windows: u64,
    pub window_probes: u64,
    /// Bytes cut by the snapshot length.
    pub snaplen_missing: u64,
    /// Times the reassembly buffer of this direction overflowed (a documented limit: `TcpConfig::reassembly_cap`).
    pub reassembly_overflows: u64,
    pub first: Option<Mark>,
    pub last: Option<Mark>,
    /// The last packet that was not a RST (a stack that reset has no socket left to send anything else).
    pub last_non_rst: Option<Mark>,
    /// The last packet that moved the connection on: data, SYN or FIN, or an ACK of new data. A RST followed by
    /// such a packet from the same side did not end anything; a stale ACK already queued when the stack reset
    /// does not count.
    pub last_progress: Option<Mark>,
    /// That packet's TSval and ACK number, to tell a packet produced after a RST from one already queued.
    pub last_progress_tsval: Option<u32>,
    pub last_progress_ack: Option<SeqNum>,
    pub first_data: Option<Mark>,
    pub last_data: Option<Mark>,
    /// Options from the handshake.
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    pub timestamps: bool,
    pub fingerprint: Fingerprint,
    /// The retransmission series that was still unanswered when the connection ended.
    pub open_retrans: Option<Box<RetransSeries>>,
    /// How many series there were, and the longest one (in retransmissions).
    pub retrans_series: u64,
    pub longest_series: u32,
    /// The last keepalive series (answered or not).
    pub keepalive_series: Option<Box<KeepaliveSeries>>,
    /// Initial sequence number (from the SYN, or the first packet).
    pub isn: Option<SeqNum>,
}

/// The handshake as captured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Handshake {
    pub syn: Option<Mark>,
    pub syn_ack: Option<Mark>,
    /// The client's ACK completing the handshake.
    pub ack: Option<Mark>,
}

impl Handshake {
    pub fn completed(&self) -> bool {
        self.syn_ack.is_some() && self.ack.is_some()
    }
    /// SYN → SYN-ACK (the part of the round trip beyond the capture point towards the server).
    pub fn server_rtt(&self) -> Option<Dur> {
        Some(self.syn_ack?.ts.since(self.syn?.ts))
    }
    /// SYN-ACK → ACK (the part towards the client).
    pub fn client_rtt(&self) -> Option<Dur> {
        Some(self.ack?.ts.since(self.syn_ack?.ts))
    }
}

/// Why the engine let go of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    /// FIN/RST seen and the linger time passed without more packets.
    Closed,
    /// The capture (or the live run) ended.
    CaptureEnd,
    /// Idle for longer than the eviction time (live runs).
    IdleEvicted,
    /// Evicted because the connection table was full.
    TableFull,
    /// A new SYN on the same 4-tuple started a new connection.
    Superseded,
}

/// A TCP event for the timeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpEvent {
    pub mark: Mark,
    /// Sender of the packet the event is about (`None` for connection-wide events such as idle gaps).
    pub dir: Option<Dir>,
    pub kind: TcpEventKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TcpEventKind {
    /// SYN (client) or SYN-ACK (server); `nth` 0 is the first transmission, later ones retransmissions.
    Syn {
        ack: bool,
        nth: u32,
        since_prev: Option<Dur>,
    },
    /// The third packet of the handshake.
    HandshakeAck,
    /// A burst of data segments from one side.
    Data {
        segments: u64,
        bytes: u64,
        last: Mark,
    },
    /// Data sent again; `nth` within its series (1 = first retransmission), gap since the previous send.
    Retransmission {
        seq_rel: u32,
        len: u32,
        nth: u32,
        since_prev: Option<Dur>,
        fast: bool,
        spurious: bool,
    },
    /// A retransmission series ended with the data acknowledged.
    Recovered {
        seq_rel: u32,
        retransmissions: u32,
        after: Dur,
    },
    OutOfOrder {
        seq_rel: u32,
        len: u32,
    },
    /// Sequence numbers jumped: bytes the capture did not see.
    Missing {
        seq_rel: u32,
        bytes: u64,
    },
    /// The peer acknowledged bytes the capture never saw.
    AckedUnseen {
        bytes: u64,
    },
    /// Duplicate ACKs (a run of them, counted once).
    DupAcks {
        count: u64,
        ack_rel: u32,
    },
    KeepAlive {
        nth: u32,
        since_prev: Option<Dur>,
    },
    KeepAliveAck,
    ZeroWindow,
    WindowOpened {
        after: Dur,
    },
    WindowProbe,
    /// No packet on the connection for `dur` (ends at this event's mark).
    Idle {
        dur: Dur,
        from: Mark,
    },
    Fin {
        seq_rel: u32,
        retransmission: bool,
    },
    Rst(Box<RstInfo>),
    /// An ICMP error about this connection (from a router or the peer's host).
    Icmp {
        from: std::net::IpAddr,
        text: String,
        icmp_type: u8,
        code: u8,
    },
    /// Payload cut by the capture's snapshot length.
    Truncated {
        bytes: u64,
    },
    /// The reassembly buffer (bytes held ahead of a hole) reached its cap: the hole was given up on and
    /// `skipped` bytes were announced missing. Emitted for the first overflow of a direction only; the rest are
    /// counted in [`DirFacts::reassembly_overflows`].
    ReassemblyFull {
        skipped: u64,
        cap: u64,
    },
}

/// Everything the TCP stage learned about one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpRecord {
    /// 1-based, in order of the connections' first packets.
    pub id: u64,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub roles: RoleSource,
    pub first: Mark,
    pub last: Mark,
    pub handshake: Handshake,
    /// Indexed by [`Dir::index`]: what the client sent, what the server sent.
    pub dirs: [DirFacts; 2],
    pub events: Vec<TcpEvent>,
    /// Events left out by the per-connection cap.
    pub events_dropped: u64,
    pub end_reason: EndReason,
    /// The time up to which the capture was read when the record was made (end of file, or live "now").
    pub observed_until: Ts,
}

impl TcpRecord {
    pub fn dir(&self, d: Dir) -> &DirFacts {
        &self.dirs[d.index()]
    }
}
