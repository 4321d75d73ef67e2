//! Link, IP and TCP decoding: bytes of one captured packet in, plain data out.
//!
//! Lenient by design. A packet cut by the snapshot length, a header with a bad length, an unknown link type: the
//! decoder keeps every layer that decoded and says why it stopped ([`DecodeIssue`]), and the stages after it
//! decide what the partial packet is still good for. No accessor here can panic on capture data.
//!
//! Checksums are not verified: captures taken on the sending host show offloaded checksums as bad, and a TCP
//! analyzer that dropped those packets would miss half of every connection.

mod frag;
mod icmp;
mod ip;
mod link;
pub mod seq;
mod tcp;
mod wire;

pub use frag::{MAX_DATAGRAM as FRAG_MAX_DATAGRAM, MAX_PENDING as FRAG_MAX_PENDING, TIMEOUT as FRAG_TIMEOUT};
pub use seq::SeqNum;
pub use tcp::{TCP_MIN_CAPTURED, walk_options};

use std::net::IpAddr;

/// The IP layer of a packet (the innermost IP header that carries the transport decoded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpHeader {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    /// IPv4 identification; for IPv6 the fragment header's identification when there is one.
    pub id: Option<u32>,
    /// IPv4 DF bit (always false for IPv6).
    pub dont_fragment: bool,
    /// DSCP/ECN byte (IPv4 TOS, IPv6 traffic class).
    pub tos: u8,
    /// Set when this packet is a reassembled datagram or a fragment of one.
    pub fragment: Fragment,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    #[default]
    None,
    /// Rebuilt from several fragments; `count` fragments were used.
    Reassembled { count: u16 },
    /// A fragment that could not (yet) be reassembled: its offset in bytes and whether more follow.
    Piece { offset: u16, more: bool },
}

/// TCP flags (the 9 bits of RFC 9293 + RFC 3168/AccECN's AE), as an open bit set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    pub const AE: u16 = 0x100;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }

    /// tcpdump-style letters: `S`, `S.`, `F.`, `R`, `R.`, `P.` …
    pub fn letters(self) -> String {
        let mut s = String::new();
        for (bit, c) in [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
        ] {
            if self.has(bit) {
                s.push(c);
            }
        }
        if self.ack() {
            s.push('.');
        }
        if s.is_empty() {
            s.push_str("none");
        }
        s
    }
}

/// The TCP options of one segment, walked by our own walker (unknown kinds are skipped by their length and
/// remembered, not fatal).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpOptions {
    pub mss: Option<u16>,
    pub window_scale: Option<u8>,
    pub sack_permitted: bool,
    /// TSval, TSecr.
    pub timestamps: Option<(u32, u32)>,
    /// Up to four SACK blocks (left edge, right edge); `sack_count` of them are valid.
    pub sack: [(SeqNum, SeqNum); 4],
    pub sack_count: u8,
    /// Bit `k` set when option kind `k` (0..=63) was present; bit 63 also stands for any kind >= 63.
    pub kinds: u64,
    /// The option area was cut or malformed; what came before the damage is kept.
    pub malformed: bool,
}

impl TcpOptions {
    pub fn has_kind(&self, kind: u8) -> bool {
        let k = u32::from(kind.min(63));
        self.kinds & (1u64 << k) != 0
    }
    pub fn sack_blocks(&self) -> &[(SeqNum, SeqNum)] {
        let n = usize::from(self.sack_count).min(self.sack.len());
        self.sack.get(..n).unwrap_or(&[])
    }
}

/// One TCP segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    /// The raw (unscaled) window field.
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    /// The captured payload bytes.
    pub payload: &'a [u8],
    /// The payload length on the wire, from the IP length (>= `payload.len()`; larger when the snapshot length
    /// cut the packet). For TSO/GSO "super-packets" with IP length 0 it is the captured length.
    pub payload_len: u32,
    /// The TCP header itself was cut by the snapshot length: ports, sequence numbers and flags are valid (the
    /// first 14 bytes were present), window/options may be missing.
    pub header_truncated: bool,
}

/// ICMP / ICMPv6 messages that matter to TCP: errors that quote a TCP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcmpMessage {
    pub v6: bool,
    pub icmp_type: u8,
    pub code: u8,
    pub kind: IcmpKind,
    /// The quoted header of the packet that caused the error, when it was TCP.
    pub quoted: Option<QuotedTcp>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IcmpKind {
    /// Destination unreachable with its code (v4: 0 net, 1 host, 3 port, 9/10/13 administratively prohibited;
    /// v6: 0 no route, 1 admin prohibited, 3 address, 4 port, 5 policy, 6 reject route).
    Unreachable,
    /// IPv4 fragmentation needed (type 3 code 4) or ICMPv6 packet too big, with the next-hop MTU.
    PacketTooBig {
        mtu: u32,
    },
    TimeExceeded,
    ParameterProblem,
    /// Any other ICMP message (echo, redirect …).
    Other,
}

/// The addresses, ports and sequence number quoted inside an ICMP error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotedTcp {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Present when the quote reaches the sequence number (8 bytes of TCP header are always quoted in IPv4).
    pub seq: Option<SeqNum>,
}

/// The transport layer found in a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport<'a> {
    Tcp(TcpSegment<'a>),
    Icmp(IcmpMessage),
    /// Another IP protocol (UDP, SCTP …), by number.
    Other(u8),
    /// Decoding stopped before the transport layer.
    None,
}

/// Why decoding stopped or what was odd about the packet. `layer` names where ("ethernet", "ipv4", "tcp" …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeIssue {
    /// The link type is not one we decode.
    UnsupportedLink(u32),
    /// Not IP (ARP, LLDP …): not an error, nothing for us.
    NotIp,
    /// The capture ended inside a header: `need` bytes were required at `offset`, `have` were captured.
    Truncated {
        layer: &'static str,
        offset: usize,
        need: usize,
        have: usize,
    },
    /// A header field is impossible (bad version, header length shorter than the minimum …).
    Malformed { layer: &'static str, what: &'static str },
    /// A fragment held back for reassembly, or given up on.
    Fragment,
}

/// Everything decoded from one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub ip: Option<IpHeader>,
    pub transport: Transport<'a>,
    pub issue: Option<DecodeIssue>,
}

impl Decoded<'_> {
    pub const EMPTY: Decoded<'static> = Decoded {
        ip: None,
        transport: Transport::None,
        issue: None,
    };
}

/// Decoder statistics for the capture summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DecodeStats {
    pub packets: u64,
    pub ip: u64,
    pub tcp: u64,
    pub icmp: u64,
    pub not_ip: u64,
    pub unsupported_link: u64,
    pub truncated: u64,
    pub malformed: u64,
    pub fragments: u64,
    pub fragments_reassembled: u64,
}

/// The decoding stage. Stateful only for IPv4/IPv6 fragment reassembly (bounded: see the limits exported as
/// `FRAG_*`, documented in `frag.rs`).
///
/// Fragments: a fragment is reported with [`Fragment::Piece`] and [`DecodeIssue::Fragment`]; the first fragment
/// (offset 0) also carries the transport header decoded from its own bytes (payload and `payload_len` are that
/// fragment's), so a TCP header survives when later pieces are missing. When the last missing piece arrives the
/// whole datagram is reported once more with [`Fragment::Reassembled`]: a TCP consumer sees the first piece's
/// segment first and then the complete one with the same sequence number.
#[derive(Debug, Default)]
pub struct Decoder {
    stats: DecodeStats,
    frag: frag::Reassembler,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Decodes one packet. The result borrows from the packet (or from the decoder, for a reassembled datagram).
    pub fn decode<'a>(&'a mut self, pkt: &crate::source::Packet<'a>) -> Decoded<'a> {
        let Decoder { stats, frag } = self;
        let d = match link::locate_end(pkt.link, pkt.data) {
            Ok((net, off, end)) => {
                // A link-layer length (PPPoE) bounds the packet like the frame length does.
                let data = pkt.data.get(..end.min(pkt.data.len())).unwrap_or(pkt.data);
                let wire_end = (pkt.orig_len as usize).max(pkt.data.len()).min(end);
                ip::ip(Some(frag), net, data, off, wire_end, pkt.ts, 0)
            }
            Err(issue) => Decoded {
                ip: None,
                transport: Transport::None,
                issue: Some(issue),
            },
        };
        stats.count(&d);
        d
    }

    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }
}

impl DecodeStats {
    fn count(&mut self, d: &Decoded<'_>) {
        self.packets += 1;
        if let Some(ip) = &d.ip {
            self.ip += 1;
            match ip.fragment {
                Fragment::None => {}
                Fragment::Piece { .. } => self.fragments += 1,
                Fragment::Reassembled { .. } => {
                    self.fragments += 1;
                    self.fragments_reassembled += 1;
                }
            }
        }
        match d.transport {
            Transport::Tcp(_) => self.tcp += 1,
            Transport::Icmp(_) => self.icmp += 1,
            Transport::Other(_) | Transport::None => {}
        }
        match d.issue {
            Some(DecodeIssue::UnsupportedLink(_)) => self.unsupported_link += 1,
            Some(DecodeIssue::NotIp) => self.not_ip += 1,
            Some(DecodeIssue::Truncated { .. }) => self.truncated += 1,
            Some(DecodeIssue::Malformed { .. }) => self.malformed += 1,
            Some(DecodeIssue::Fragment) | None => {}
        }
    }
}
