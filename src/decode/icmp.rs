//! ICMP and ICMPv6 messages, and the TCP header an error message quotes.
//!
//! An ICMP error quotes the IP header of the packet that caused it and at least 8 bytes of what followed: for
//! TCP that is the ports and the sequence number, enough to tie the error to a connection and a segment.

use super::wire::{arr4, arr16, be16, be32, byte, tail};
use super::{DecodeIssue, IcmpKind, IcmpMessage, QuotedTcp, SeqNum};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses an ICMP (v4) message.
pub fn parse_v4(b: &[u8], at: usize) -> Result<IcmpMessage, DecodeIssue> {
    if b.len() < 8 {
        return Err(DecodeIssue::Truncated {
            layer: "icmp",
            offset: at,
            need: 8,
            have: b.len(),
        });
    }
    let (t, code) = (byte(b, 0), byte(b, 1));
    let kind = match (t, code) {
        (3, 4) => IcmpKind::PacketTooBig {
            mtu: u32::from(be16(b, 6)),
        },
        (3, _) => IcmpKind::Unreachable,
        (11, _) => IcmpKind::TimeExceeded,
        (12, _) => IcmpKind::ParameterProblem,
        _ => IcmpKind::Other,
    };
    // Errors that quote the offending datagram: unreachable, source quench, redirect, time exceeded, parameter.
    let quoted = if matches!(t, 3 | 4 | 5 | 11 | 12) {
        quoted_v4(tail(b, 8))
    } else {
        None
    };
    Ok(IcmpMessage {
        v6: false,
        icmp_type: t,
        code,
        kind,
        quoted,
    })
}

/// Parses an ICMPv6 message.
pub fn parse_v6(b: &[u8], at: usize) -> Result<IcmpMessage, DecodeIssue> {
    if b.len() < 8 {
        return Err(DecodeIssue::Truncated {
            layer: "icmpv6",
            offset: at,
            need: 8,
            have: b.len(),
        });
    }
    let (t, code) = (byte(b, 0), byte(b, 1));
    let kind = match t {
        1 => IcmpKind::Unreachable,
        2 => IcmpKind::PacketTooBig { mtu: be32(b, 4) },
        3 => IcmpKind::TimeExceeded,
        4 => IcmpKind::ParameterProblem,
        _ => IcmpKind::Other,
    };
    let quoted = if (1..=4).contains(&t) {
        quoted_v6(tail(b, 8))
    } else {
        None
    };
    Ok(IcmpMessage {
        v6: true,
        icmp_type: t,
        code,
        kind,
        quoted,
    })
}

fn quoted_tcp(src: IpAddr, dst: IpAddr, t: &[u8]) -> Option<QuotedTcp> {
    if t.len() < 4 {
        return None;
    }
    Some(QuotedTcp {
        src,
        dst,
        src_port: be16(t, 0),
        dst_port: be16(t, 2),
        seq: (t.len() >= 8).then(|| SeqNum(be32(t, 4))),
    })
}

/// The quoted IPv4 header and the start of its TCP header.
fn quoted_v4(q: &[u8]) -> Option<QuotedTcp> {
    if q.len() < 20 || byte(q, 0) >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(byte(q, 0) & 0x0f) * 4;
    // Only the first fragment of a datagram carries the TCP header.
    if ihl < 20 || byte(q, 9) != 6 || be16(q, 6) & 0x1fff != 0 {
        return None;
    }
    let src = IpAddr::V4(Ipv4Addr::from(arr4(q, 12)));
    let dst = IpAddr::V4(Ipv4Addr::from(arr4(q, 16)));
    quoted_tcp(src, dst, tail(q, ihl))
}

/// The quoted IPv6 header, its extension headers, and the start of its TCP header.
fn quoted_v6(q: &[u8]) -> Option<QuotedTcp> {
    if q.len() < 40 || byte(q, 0) >> 4 != 6 {
        return None;
    }
    let src = IpAddr::V6(Ipv6Addr::from(arr16(q, 8)));
    let dst = IpAddr::V6(Ipv6Addr::from(arr16(q, 24)));
    let mut nh = byte(q, 6);
    let mut off = 40usize;
    for _ in 0..8 {
        match nh {
            6 => return quoted_tcp(src, dst, tail(q, off)),
            0 | 43 | 60 | 135 | 139 | 140 => {
                let len = (usize::from(byte(q, off + 1)) + 1) * 8;
                nh = *q.get(off)?;
                off = off.checked_add(len)?;
            }
            44 => {
                if be16(q, off + 2) & 0xfff8 != 0 {
                    return None;
                }
                nh = *q.get(off)?;
                off = off.checked_add(8)?;
            }
            51 => {
                let len = (usize::from(byte(q, off + 1)) + 2) * 4;
                nh = *q.get(off)?;
                off = off.checked_add(len)?;
            }
            _ => return None,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp_quote() -> Vec<u8> {
        let mut q = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        q.extend_from_slice(&[0x04, 0xd2, 0x01, 0xbb, 0, 0, 0x30, 0x39]);
        q
    }

    #[test]
    fn v4_frag_needed_quotes_tcp() {
        let mut b = vec![3, 4, 0, 0, 0, 0, 0x05, 0xdc];
        b.extend_from_slice(&ipv4_tcp_quote());
        let m = parse_v4(&b, 0).unwrap();
        assert_eq!(m.kind, IcmpKind::PacketTooBig { mtu: 1500 });
        let q = m.quoted.unwrap();
        assert_eq!((q.src_port, q.dst_port, q.seq), (1234, 443, Some(SeqNum(12345))));
        assert_eq!(q.dst, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        // Only 4 bytes of TCP quoted: ports but no sequence number.
        let m = parse_v4(&b[..8 + 24], 0).unwrap();
        assert_eq!(m.quoted.unwrap().seq, None);
        // Echo request: no quote.
        let m = parse_v4(&[8, 0, 0, 0, 0, 1, 0, 1], 0).unwrap();
        assert_eq!((m.kind, m.quoted), (IcmpKind::Other, None));
        assert!(parse_v4(&[3, 3, 0], 0).is_err());
        let mut b = vec![11, 0, 0, 0, 0, 0, 0, 0];
        b.extend_from_slice(&ipv4_tcp_quote());
        assert_eq!(parse_v4(&b, 0).unwrap().kind, IcmpKind::TimeExceeded);
    }

    #[test]
    fn v6_packet_too_big_through_ext_headers() {
        let mut b = vec![2, 0, 0, 0, 0, 0, 0x05, 0x00];
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 40, 60, 64];
        ip6.extend_from_slice(&[0xfe; 16]);
        ip6.extend_from_slice(&[0xfd; 16]);
        b.extend_from_slice(&ip6);
        // Destination options (8 bytes) then TCP.
        b.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
        b.extend_from_slice(&[0, 80, 0x9c, 0x40, 0, 0, 0, 7]);
        let m = parse_v6(&b, 0).unwrap();
        assert_eq!(m.kind, IcmpKind::PacketTooBig { mtu: 1280 });
        let q = m.quoted.unwrap();
        assert_eq!((q.src_port, q.dst_port, q.seq), (80, 40000, Some(SeqNum(7))));
        // Cut inside the extension header: no quote, no panic.
        let m = parse_v6(&b[..8 + 40 + 3], 0).unwrap();
        assert_eq!(m.quoted, None);
        assert_eq!(
            parse_v6(&[1, 4, 0, 0, 0, 0, 0, 0], 0).unwrap().kind,
            IcmpKind::Unreachable
        );
    }
}
