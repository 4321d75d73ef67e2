//! IPv4 and IPv6 (with extension headers), fragments, the transport dispatch and the tunnels we look through.
//!
//! Lengths: the IP length says what was on the wire; the captured part may be shorter (snapshot length) or
//! longer (Ethernet padding, which is dropped). An IP length of 0 is what TSO/GSO "super-packets" captured on the
//! sending host carry: the captured length is used instead. IPv6 jumbograms (payload length 0 with a hop-by-hop
//! jumbo option) are read the same way.
//!
//! Tunnels decoded when cheap: IP-in-IP (4, 41), GRE (IP, IPv6, transparent Ethernet, PPTP's PPP), and over UDP
//! Teredo (3544), VXLAN (4789), GTP-U (2152) and Geneve (6081). Nesting stops at [`MAX_DEPTH`] levels; the
//! payload of a reassembled datagram is not searched for further tunnels. When the inner packet does not decode,
//! the outer one is reported with its protocol as `Transport::Other`.

use super::frag::{Added, Key, Reassembler};
use super::link::{self, Net};
use super::wire::{arr4, arr16, be16, be32, byte, range, tail};
use super::{DecodeIssue, Decoded, Fragment, IpHeader, Transport, icmp, tcp};
use crate::source::LinkType;
use crate::ts::Ts;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Tunnel nesting limit (outer packet is depth 0).
pub const MAX_DEPTH: u8 = 3;
/// IPv6 extension headers walked before giving up.
const MAX_EXT: usize = 16;

fn stop<'a>(ip: Option<IpHeader>, issue: DecodeIssue) -> Decoded<'a> {
    Decoded {
        ip,
        transport: Transport::None,
        issue: Some(issue),
    }
}

/// Flags an IP length that claimed more than the frame had, unless something else was already reported.
fn longer_than_frame<'a>(d: Decoded<'a>, layer: &'static str) -> Decoded<'a> {
    let what = "IP length larger than the frame; cut to the frame";
    Decoded {
        issue: d.issue.or(Some(DecodeIssue::Malformed { layer, what })),
        ..d
    }
}

#[inline(always)]
fn done<'a>(ip: IpHeader, transport: Transport<'a>, issue: Option<DecodeIssue>) -> Decoded<'a> {
    Decoded {
        ip: Some(ip),
        transport,
        issue,
    }
}

/// Decodes the IP packet starting at `b[off..]`. `wire_end` is how many bytes from `b[0]` were on the wire (the
/// frame's original length; at least `b.len()`).
///
/// An IP length larger than what the frame had on the wire is cut to the frame, as Wireshark does, and flagged
/// `Malformed` (when nothing else went wrong): the frame length comes from the capturing kernel, the IP length
/// from the packet, and in the corpus the IP length is the one that lies (crafted and fuzzed files), or both
/// lead to the same result (zeek `tcp/reassembly.pcap` slices bytes out of frames: a clipped length there
/// becomes a gap before the next segment instead of inside this one).
pub(crate) fn ip<'a>(
    frag: Option<&'a mut Reassembler>,
    net: Net,
    b: &'a [u8],
    off: usize,
    wire_end: usize,
    ts: Ts,
    depth: u8,
) -> Decoded<'a> {
    let room = wire_end.max(b.len()).saturating_sub(off);
    match net {
        Net::V4 => ipv4(frag, b, off, room, ts, depth),
        Net::V6 => ipv6(frag, b, off, room, ts, depth),
    }
}

/// `room`: bytes on the wire from `off` to the end of the frame.
fn ipv4<'a>(frag: Option<&'a mut Reassembler>, b: &'a [u8], off: usize, room: usize, ts: Ts, depth: u8) -> Decoded<'a> {
    let h = tail(b, off);
    if h.len() < 20 {
        return stop(
            None,
            DecodeIssue::Truncated {
                layer: "ipv4",
                offset: off,
                need: 20,
                have: h.len(),
            },
        );
    }
    if byte(h, 0) >> 4 != 4 {
        return stop(
            None,
            DecodeIssue::Malformed {
                layer: "ipv4",
                what: "version is not 4",
            },
        );
    }
    let ihl = usize::from(byte(h, 0) & 0x0f) * 4;
    if ihl < 20 {
        return stop(
            None,
            DecodeIssue::Malformed {
                layer: "ipv4",
                what: "header length below 20 bytes",
            },
        );
    }
    if h.len() < ihl {
        return stop(
            None,
            DecodeIssue::Truncated {
                layer: "ipv4",
                offset: off,
                need: ihl,
                have: h.len(),
            },
        );
    }
    let ff = be16(h, 6);
    let mut hdr = IpHeader {
        src: IpAddr::V4(Ipv4Addr::from(arr4(h, 12))),
        dst: IpAddr::V4(Ipv4Addr::from(arr4(h, 16))),
        ttl: byte(h, 8),
        id: Some(u32::from(be16(h, 4))),
        dont_fragment: ff & 0x4000 != 0,
        tos: byte(h, 1),
        fragment: Fragment::None,
    };
    let total = usize::from(be16(h, 2));
    // Total length 0: a TSO/GSO super-packet seen before segmentation; trust the frame length.
    let wire = if total == 0 { room } else { total.min(room) };
    let long = total > room;
    if wire < ihl {
        return stop(
            Some(hdr),
            DecodeIssue::Malformed {
                layer: "ipv4",
                what: "total length shorter than its header",
            },
        );
    }
    let payload = range(h, ihl, wire);
    let payload_wire = u32::try_from(wire - ihl).unwrap_or(u32::MAX);
    let proto = byte(h, 9);
    let more = ff & 0x2000 != 0;
    let foff = u32::from(ff & 0x1fff) * 8;
    if !more && foff == 0 {
        let d = transport(frag, hdr, proto, payload, payload_wire, off + ihl, ts, depth);
        return if long { longer_than_frame(d, "ipv4") } else { d };
    }
    hdr.fragment = Fragment::Piece {
        offset: foff as u16,
        more,
    };
    let key = Key {
        src: hdr.src,
        dst: hdr.dst,
        id: u32::from(be16(h, 4)),
        proto,
    };
    fragment(
        frag,
        hdr,
        key,
        proto,
        foff,
        more,
        payload,
        payload_wire,
        off + ihl,
        ts,
        depth,
    )
}

/// A fragment (either IP version): reassemble, or report the piece. The first fragment's transport header is
/// decoded from the piece when the datagram is not (yet) complete.
#[allow(clippy::too_many_arguments)]
fn fragment<'a>(
    frag: Option<&'a mut Reassembler>,
    hdr: IpHeader,
    key: Key,
    proto: u8,
    foff: u32,
    more: bool,
    payload: &'a [u8],
    payload_wire: u32,
    at: usize,
    ts: Ts,
    depth: u8,
) -> Decoded<'a> {
    let whole = payload.len() as u64 == u64::from(payload_wire);
    if let (Some(frag), true) = (frag, whole) {
        let first = (foff == 0).then_some((
            IpHeader {
                fragment: Fragment::None,
                ..hdr
            },
            proto,
        ));
        if let Added::Complete(idx) = frag.add(key, ts, foff, more, payload, first) {
            let frag: &'a Reassembler = frag;
            if let Some((data, first_hdr, first_proto, count)) = frag.datagram(idx) {
                let ip = IpHeader {
                    fragment: Fragment::Reassembled { count },
                    ..first_hdr
                };
                let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                return if ip.src.is_ipv6() {
                    v6_chain(None, ip, first_proto, data, len, 0, ts, depth)
                } else {
                    transport(None, ip, first_proto, data, len, 0, ts, depth)
                };
            }
        }
    }
    if foff == 0 {
        let d = if hdr.src.is_ipv6() {
            v6_chain(None, hdr, proto, payload, payload_wire, at, ts, depth)
        } else {
            transport(None, hdr, proto, payload, payload_wire, at, ts, depth)
        };
        return Decoded {
            issue: d.issue.or(Some(DecodeIssue::Fragment)),
            ..d
        };
    }
    stop(Some(hdr), DecodeIssue::Fragment)
}

fn ipv6<'a>(frag: Option<&'a mut Reassembler>, b: &'a [u8], off: usize, room: usize, ts: Ts, depth: u8) -> Decoded<'a> {
    let h = tail(b, off);
    if h.len() < 40 {
        return stop(
            None,
            DecodeIssue::Truncated {
                layer: "ipv6",
                offset: off,
                need: 40,
                have: h.len(),
            },
        );
    }
    if byte(h, 0) >> 4 != 6 {
        return stop(
            None,
            DecodeIssue::Malformed {
                layer: "ipv6",
                what: "version is not 6",
            },
        );
    }
    let hdr = IpHeader {
        src: IpAddr::V6(Ipv6Addr::from(arr16(h, 8))),
        dst: IpAddr::V6(Ipv6Addr::from(arr16(h, 24))),
        ttl: byte(h, 7),
        id: None,
        dont_fragment: false,
        tos: ((byte(h, 0) & 0x0f) << 4) | (byte(h, 1) >> 4),
        fragment: Fragment::None,
    };
    let plen = usize::from(be16(h, 4));
    // Payload length 0: a jumbogram or a GSO super-packet; trust the frame length.
    let room = room.saturating_sub(40);
    let wire = if plen == 0 { room } else { plen.min(room) };
    let body = range(h, 40, 40 + wire);
    let wire = u32::try_from(wire).unwrap_or(u32::MAX);
    let d = v6_chain(frag, hdr, byte(h, 6), body, wire, off + 40, ts, depth);
    if plen > room { longer_than_frame(d, "ipv6") } else { d }
}

/// Walks IPv6 extension headers from `body[0]` (next header `nh`) to the transport.
#[allow(clippy::too_many_arguments)]
fn v6_chain<'a>(
    frag: Option<&'a mut Reassembler>,
    mut hdr: IpHeader,
    mut nh: u8,
    body: &'a [u8],
    wire: u32,
    at: usize,
    ts: Ts,
    depth: u8,
) -> Decoded<'a> {
    let mut pos = 0usize;
    for _ in 0..MAX_EXT {
        let (need, len) = match nh {
            0 | 43 | 60 | 135 | 139 | 140 => (2, (usize::from(byte(body, pos + 1)) + 1) * 8),
            51 => (2, (usize::from(byte(body, pos + 1)) + 2) * 4),
            44 => (8, 8),
            _ => {
                let Some(rest_wire) = wire.checked_sub(pos as u32) else {
                    let what = "extension headers longer than the payload";
                    return stop(Some(hdr), DecodeIssue::Malformed { layer: "ipv6", what });
                };
                return transport(frag, hdr, nh, tail(body, pos), rest_wire, at + pos, ts, depth);
            }
        };
        let have = body.len().saturating_sub(pos);
        if have < need || have < len {
            let need = need.max(len);
            return stop(
                Some(hdr),
                DecodeIssue::Truncated {
                    layer: "ipv6-ext",
                    offset: at + pos,
                    need,
                    have,
                },
            );
        }
        let next = byte(body, pos);
        if nh == 44 {
            let fo = be16(body, pos + 2);
            let foff = u32::from(fo & 0xfff8);
            let more = fo & 1 != 0;
            let id = be32(body, pos + 4);
            hdr.id = Some(id);
            pos += 8;
            if foff == 0 && !more {
                // An atomic fragment (RFC 6946): a fragment header on a whole datagram.
                nh = next;
                continue;
            }
            if frag.is_none() && matches!(hdr.fragment, Fragment::Reassembled { .. }) {
                let what = "fragment header inside a reassembled datagram";
                return stop(Some(hdr), DecodeIssue::Malformed { layer: "ipv6", what });
            }
            let Some(rest_wire) = wire.checked_sub(pos as u32) else {
                let what = "extension headers longer than the payload";
                return stop(Some(hdr), DecodeIssue::Malformed { layer: "ipv6", what });
            };
            hdr.fragment = Fragment::Piece {
                offset: foff as u16,
                more,
            };
            let key = Key {
                src: hdr.src,
                dst: hdr.dst,
                id,
                proto: 0,
            };
            return fragment(
                frag,
                hdr,
                key,
                next,
                foff,
                more,
                tail(body, pos),
                rest_wire,
                at + pos,
                ts,
                depth,
            );
        }
        nh = next;
        pos += len;
    }
    stop(
        Some(hdr),
        DecodeIssue::Malformed {
            layer: "ipv6",
            what: "more than 16 extension headers",
        },
    )
}

/// The transport layer of an IP payload (`p` captured, `wire` bytes on the wire), including tunnels.
///
/// Inlined into its callers, like the TCP parser below it: building the segment in place instead of moving a
/// 200-byte `Decoded` through several returns measurably sped up the hot path.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn transport<'a>(
    frag: Option<&'a mut Reassembler>,
    hdr: IpHeader,
    proto: u8,
    p: &'a [u8],
    wire: u32,
    at: usize,
    ts: Ts,
    depth: u8,
) -> Decoded<'a> {
    match proto {
        6 => match tcp::parse(p, wire, at) {
            (Some(seg), issue) => done(hdr, Transport::Tcp(seg), issue),
            (None, issue) => done(hdr, Transport::None, issue),
        },
        _ => not_tcp(frag, hdr, proto, p, wire, at, ts, depth),
    }
}

/// Everything but TCP: ICMP, tunnels, other protocols.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn not_tcp<'a>(
    frag: Option<&'a mut Reassembler>,
    hdr: IpHeader,
    proto: u8,
    p: &'a [u8],
    wire: u32,
    at: usize,
    ts: Ts,
    depth: u8,
) -> Decoded<'a> {
    let v6 = hdr.src.is_ipv6();
    match proto {
        1 if !v6 => match icmp::parse_v4(p, at) {
            Ok(m) => done(hdr, Transport::Icmp(m), None),
            Err(issue) => done(hdr, Transport::None, Some(issue)),
        },
        58 if v6 => match icmp::parse_v6(p, at) {
            Ok(m) => done(hdr, Transport::Icmp(m), None),
            Err(issue) => done(hdr, Transport::None, Some(issue)),
        },
        4 | 41 | 47 | 17 if depth < MAX_DEPTH && frag.is_some() => {
            let inner = match proto {
                4 => Some((Net::V4, 0)),
                41 => Some((Net::V6, 0)),
                47 => gre(p),
                _ => udp_tunnel(p),
            };
            if let Some((net, off)) = inner {
                let d = ip(frag, net, p, off, wire as usize, ts, depth + 1);
                if d.ip.is_some() {
                    return d;
                }
                if proto == 4 || proto == 41 {
                    return done(hdr, Transport::Other(proto), d.issue);
                }
            }
            // Not a tunnel after all (or one we do not look into).
            done(hdr, Transport::Other(proto), None)
        }
        other => done(hdr, Transport::Other(other), None),
    }
}

/// GRE (RFC 2784/2890, and PPTP's enhanced GRE): where the inner packet starts and what it is.
fn gre(p: &[u8]) -> Option<(Net, usize)> {
    if p.len() < 4 {
        return None;
    }
    let flags = be16(p, 0);
    let version = flags & 7;
    if flags & 0x4000 != 0 || version > 1 {
        return None; // source routing (obsolete) or unknown version
    }
    let mut hlen = 4usize;
    for bit in [0x8000u16, 0x2000, 0x1000] {
        if flags & bit != 0 {
            hlen += 4;
        }
    }
    if version == 1 && flags & 0x0080 != 0 {
        hlen += 4; // acknowledgment number
    }
    let inner = p.get(hlen..)?;
    let (net, off) = match be16(p, 2) {
        0x0800 => (Net::V4, 0),
        0x86dd => (Net::V6, 0),
        0x6558 => link::locate(LinkType::ETHERNET, inner).ok()?,
        0x880b => link::locate(LinkType(9), inner).ok()?,
        // WCCP redirection: a 4-byte redirect header, then IPv4.
        0x883e => (Net::V4, 4),
        // Aruba access points tunnel 802.11 frames.
        0x8200 => link::locate(LinkType(105), inner).ok()?,
        _ => return None,
    };
    Some((net, hlen + off))
}

/// UDP tunnels by well-known port: where the inner packet starts and what it is.
fn udp_tunnel(p: &[u8]) -> Option<(Net, usize)> {
    if p.len() < 8 + 8 {
        return None;
    }
    let (sport, dport) = (be16(p, 0), be16(p, 2));
    let has = |port: u16| sport == port || dport == port;
    if has(3544) {
        // Teredo: optional authentication and origin indication headers, then IPv6.
        let mut off = 8usize;
        if be16(p, off) == 1 {
            off += 13 + usize::from(byte(p, off + 2)) + usize::from(byte(p, off + 3));
        }
        if be16(p, off) == 0 {
            off += 8;
        }
        return (byte(p, off) >> 4 == 6).then_some((Net::V6, off));
    }
    if dport == 4789 {
        // VXLAN: 8-byte header with the I flag, then Ethernet.
        if byte(p, 8) & 0x08 == 0 {
            return None;
        }
        let (net, off) = link::locate(LinkType::ETHERNET, p.get(16..)?).ok()?;
        return Some((net, 16 + off));
    }
    if has(2152) {
        // GTP-U version 1, G-PDU: 8-byte header, 4 more when E/S/PN is set, then extension headers.
        let flags = byte(p, 8);
        if flags >> 5 != 1 || byte(p, 9) != 0xff {
            return None;
        }
        let mut off = 16usize;
        if flags & 0x07 != 0 {
            let mut next = byte(p, off + 3);
            off += 4;
            if flags & 0x04 != 0 {
                for _ in 0..8 {
                    if next == 0 {
                        break;
                    }
                    let len = usize::from(byte(p, off)) * 4;
                    if len == 0 {
                        return None;
                    }
                    next = byte(p, off + len - 1);
                    off += len;
                }
            }
        }
        return match byte(p, off) >> 4 {
            4 => Some((Net::V4, off)),
            6 => Some((Net::V6, off)),
            _ => None,
        };
    }
    if dport == 6081 {
        // Geneve: options length in 4-byte words, protocol type.
        if byte(p, 8) >> 6 != 0 {
            return None;
        }
        let off = 16 + usize::from(byte(p, 8) & 0x3f) * 4;
        return match be16(p, 10) {
            0x0800 => Some((Net::V4, off)),
            0x86dd => Some((Net::V6, off)),
            0x6558 => {
                let (net, o) = link::locate(LinkType::ETHERNET, p.get(off..)?).ok()?;
                Some((net, off + o))
            }
            _ => None,
        };
    }
    None
}
