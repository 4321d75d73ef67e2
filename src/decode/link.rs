//! Link layers: from the start of a captured frame to the start of its IP header.
//!
//! Ethernet (802.1Q/802.1ad/QinQ tag stacks, 802.3 + LLC/SNAP, MPLS label stacks with or without a pseudowire
//! control word, PPPoE sessions), Linux cooked v1/v2, raw IP, BSD loopback (NULL in either byte order, LOOP),
//! NFLOG, PPP (with or without HDLC framing, MPLS over PPP), Cisco HDLC, FDDI, IP over InfiniBand and 802.11 data
//! frames (plain or behind radiotap). Anything else is "unsupported link", counted
//! and otherwise ignored.

use super::DecodeIssue;
use super::wire::{be16, byte, le16, le32};
use crate::source::LinkType;

/// Which IP version starts at the offset found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Net {
    V4,
    V6,
}

const MAX_TAGS: usize = 8;
const MAX_LABELS: usize = 16;

fn trunc(layer: &'static str, offset: usize, need: usize, have: usize) -> DecodeIssue {
    DecodeIssue::Truncated {
        layer,
        offset,
        need,
        have,
    }
}

/// The IP version from the first nibble, for links that carry bare IP.
fn by_version(b: &[u8], off: usize) -> Result<(Net, usize), DecodeIssue> {
    match b.get(off).map(|v| v >> 4) {
        Some(4) => Ok((Net::V4, off)),
        Some(6) => Ok((Net::V6, off)),
        Some(_) => Err(DecodeIssue::NotIp),
        None => Err(trunc("ip", off, 1, 0)),
    }
}

/// Finds the IP header in a frame of link type `link`.
pub(crate) fn locate(link: LinkType, b: &[u8]) -> Result<(Net, usize), DecodeIssue> {
    locate_end(link, b).map(|(net, off, _)| (net, off))
}

/// Like [`locate`], also returning where the link layer says the IP packet ends (`usize::MAX` when it does not
/// say: only PPPoE carries a payload length).
pub(crate) fn locate_end(link: LinkType, b: &[u8]) -> Result<(Net, usize, usize), DecodeIssue> {
    let mut end = usize::MAX;
    let (net, off) = locate_in(link, b, &mut end)?;
    Ok((net, off, end))
}

fn locate_in(link: LinkType, b: &[u8], end: &mut usize) -> Result<(Net, usize), DecodeIssue> {
    match link.0 {
        1 => ethernet(b, 0, end),
        // RAW, and the DLT_RAW values some BSDs wrote into pcap files (12, 14).
        101 | 12 | 14 | 228 | 229 => by_version(b, 0),
        0 => {
            if b.len() < 4 {
                return Err(trunc("null", 0, 4, b.len()));
            }
            // The address family in the writer's byte order: try both.
            let fam = |v: u32| match v {
                2 => Some(Net::V4),
                10 | 24 | 28 | 30 => Some(Net::V6),
                _ => None,
            };
            match fam(le32(b, 0)).or_else(|| fam(u32::from_be_bytes(super::wire::arr4(b, 0)))) {
                Some(n) => Ok((n, 4)),
                None => Err(DecodeIssue::NotIp),
            }
        }
        108 => {
            if b.len() < 4 {
                return Err(trunc("loop", 0, 4, b.len()));
            }
            match super::wire::be32(b, 0) {
                2 => Ok((Net::V4, 4)),
                10 | 24 | 28 | 30 => Ok((Net::V6, 4)),
                _ => Err(DecodeIssue::NotIp),
            }
        }
        113 => {
            if b.len() < 16 {
                return Err(trunc("linux_sll", 0, 16, b.len()));
            }
            ethertype(b, 16, be16(b, 14), 0, end)
        }
        276 => {
            if b.len() < 20 {
                return Err(trunc("linux_sll2", 0, 20, b.len()));
            }
            ethertype(b, 20, be16(b, 0), 0, end)
        }
        239 => nflog(b),
        9 | 50 => ppp(b, 0, end),
        104 => {
            if b.len() < 4 {
                return Err(trunc("c_hdlc", 0, 4, b.len()));
            }
            ethertype(b, 4, be16(b, 2), 0, end)
        }
        105 => wlan(b, 0, end),
        127 => {
            // Radiotap: its own length, then an 802.11 frame.
            if b.len() < 4 {
                return Err(trunc("radiotap", 0, 4, b.len()));
            }
            wlan(b, usize::from(le16(b, 2)), end)
        }
        242 => {
            // IP over InfiniBand (tcpdump's encapsulation): two 20-byte addresses, type, reserved.
            if b.len() < 44 {
                return Err(trunc("ipoib", 0, 44, b.len()));
            }
            ethertype(b, 44, be16(b, 40), 0, end)
        }
        10 => {
            // FDDI: frame control + two MAC addresses, then 802.2 LLC.
            if b.len() < 13 {
                return Err(trunc("fddi", 0, 13, b.len()));
            }
            llc(b, 13, 0, end)
        }
        other => Err(DecodeIssue::UnsupportedLink(other)),
    }
}

fn ethernet(b: &[u8], off: usize, end: &mut usize) -> Result<(Net, usize), DecodeIssue> {
    if b.len() < off + 14 {
        return Err(trunc("ethernet", off, 14, b.len().saturating_sub(off)));
    }
    ethertype(b, off + 14, be16(b, off + 12), 0, end)
}

/// Follows an EtherType (and the tags, label stacks and encapsulations it announces) to the IP header.
fn ethertype(b: &[u8], mut off: usize, mut et: u16, depth: u8, end: &mut usize) -> Result<(Net, usize), DecodeIssue> {
    for _ in 0..MAX_TAGS {
        match et {
            0x0800 => return Ok((Net::V4, off)),
            0x86dd => return Ok((Net::V6, off)),
            0x8100 | 0x88a8 | 0x9100 | 0x9200 | 0x9300 => {
                if b.len() < off + 4 {
                    return Err(trunc("vlan", off, 4, b.len().saturating_sub(off)));
                }
                et = be16(b, off + 2);
                off += 4;
            }
            0x8847 | 0x8848 => return mpls(b, off, depth, end),
            0x8864 => {
                // PPPoE session: ver/type, code, session id, length, then the PPP protocol.
                if b.len() < off + 8 {
                    return Err(trunc("pppoe", off, 8, b.len().saturating_sub(off)));
                }
                // Its length field bounds the PPP frame (what follows is Ethernet padding).
                *end = (off + 6).saturating_add(usize::from(be16(b, off + 4)));
                return ppp(b, off + 6, end);
            }
            x if x < 0x0600 => return llc(b, off, depth, end),
            _ => return Err(DecodeIssue::NotIp),
        }
    }
    Err(DecodeIssue::Malformed {
        layer: "vlan",
        what: "more than 8 stacked tags",
    })
}

/// 802.2 LLC: only SNAP (AA AA 03, OUI, EtherType) can carry IP for us.
fn llc(b: &[u8], off: usize, depth: u8, end: &mut usize) -> Result<(Net, usize), DecodeIssue> {
    if b.len() < off + 3 {
        return Err(trunc("llc", off, 3, b.len().saturating_sub(off)));
    }
    if byte(b, off) == 0xaa && byte(b, off + 1) == 0xaa && byte(b, off + 2) & 0xef == 0x03 {
        if b.len() < off + 8 {
            return Err(trunc("snap", off, 8, b.len().saturating_sub(off)));
        }
        return ethertype(b, off + 8, be16(b, off + 6), depth, end);
    }
    Err(DecodeIssue::NotIp)
}

fn mpls(b: &[u8], mut off: usize, depth: u8, end: &mut usize) -> Result<(Net, usize), DecodeIssue> {
    for _ in 0..MAX_LABELS {
        if b.len() < off + 4 {
            return Err(trunc("mpls", off, 4, b.len().saturating_sub(off)));
        }
        let bottom = byte(b, off + 2) & 1 == 1;
        off += 4;
        if bottom {
            return match b.get(off).map(|v| v >> 4) {
                Some(4) => Ok((Net::V4, off)),
                Some(6) => Ok((Net::V6, off)),
                // A pseudowire control word, then an Ethernet frame (once: no nesting).
                Some(0) if depth == 0 => {
                    if b.len() < off + 4 + 14 {
                        return Err(trunc("mpls-pw", off, 18, b.len().saturating_sub(off)));
                    }
                    let eth = off + 4;
                    ethertype(b, eth + 14, be16(b, eth + 12), 1, end)
                }
                Some(_) => Err(DecodeIssue::NotIp),
                None => Err(trunc("mpls", off, 1, 0)),
            };
        }
    }
    Err(DecodeIssue::Malformed {
        layer: "mpls",
        what: "more than 16 labels",
    })
}

/// An 802.11 data frame: its header (address 4, QoS and HT control when present), then LLC/SNAP. Protected
/// (encrypted) frames and frames without data carry nothing for us.
fn wlan(b: &[u8], off: usize, end: &mut usize) -> Result<(Net, usize), DecodeIssue> {
    if b.len() < off + 24 {
        return Err(trunc("802.11", off, 24, b.len().saturating_sub(off)));
    }
    let (fc0, fc1) = (byte(b, off), byte(b, off + 1));
    let subtype = fc0 >> 4;
    if (fc0 >> 2) & 3 != 2 || subtype & 0x4 != 0 || fc1 & 0x40 != 0 {
        return Err(DecodeIssue::NotIp);
    }
    let mut hlen = 24;
    if fc1 & 3 == 3 {
        hlen += 6;
    }
    if subtype & 0x8 != 0 {
        hlen += 2;
        if fc1 & 0x80 != 0 {
            hlen += 4;
        }
    }
    llc(b, off + hlen, 0, end)
}

/// PPP: optional HDLC address/control (FF 03), then a 1- or 2-byte protocol number.
fn ppp(b: &[u8], mut off: usize, end: &mut usize) -> Result<(Net, usize), DecodeIssue> {
    if byte(b, off) == 0xff && byte(b, off + 1) == 0x03 {
        off += 2;
    }
    let Some(&first) = b.get(off) else {
        return Err(trunc("ppp", off, 2, 0));
    };
    let (proto, len) = if first & 1 == 1 {
        (u16::from(first), 1)
    } else {
        (be16(b, off), 2)
    };
    if b.len() < off + len {
        return Err(trunc("ppp", off, len, b.len().saturating_sub(off)));
    }
    match proto {
        0x21 => Ok((Net::V4, off + len)),
        0x57 => Ok((Net::V6, off + len)),
        0x281 | 0x283 => mpls(b, off + len, 0, end),
        _ => Err(DecodeIssue::NotIp),
    }
}

/// NFLOG: family, version, resource id, then TLVs (length and type in host byte order, i.e. little-endian on
/// every capture we know) padded to 4 bytes; type 9 is the packet payload.
fn nflog(b: &[u8]) -> Result<(Net, usize), DecodeIssue> {
    if b.len() < 4 {
        return Err(trunc("nflog", 0, 4, b.len()));
    }
    let net = match byte(b, 0) {
        2 => Net::V4,
        10 => Net::V6,
        _ => return Err(DecodeIssue::NotIp),
    };
    let mut off = 4usize;
    for _ in 0..64 {
        if b.len() < off + 4 {
            return Err(trunc("nflog", off, 4, b.len().saturating_sub(off)));
        }
        let len = usize::from(le16(b, off));
        let kind = le16(b, off + 2);
        if len < 4 {
            return Err(DecodeIssue::Malformed {
                layer: "nflog",
                what: "TLV length below 4",
            });
        }
        if kind == 9 {
            return Ok((net, off + 4));
        }
        off = off.saturating_add((len + 3) & !3);
    }
    Err(DecodeIssue::Malformed {
        layer: "nflog",
        what: "no payload TLV",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth(et: u16, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&et.to_be_bytes());
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn ethernet_with_tag_stacks() {
        assert_eq!(locate(LinkType::ETHERNET, &eth(0x0800, &[0x45])), Ok((Net::V4, 14)));
        // QinQ: 802.1ad outer, 802.1Q inner, then IPv6.
        let f = eth(0x88a8, &[0, 1, 0x81, 0x00, 0, 2, 0x86, 0xdd, 0x60]);
        assert_eq!(locate(LinkType::ETHERNET, &f), Ok((Net::V6, 22)));
        let f = eth(0x9100, &[0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3, 0x08, 0x00]);
        assert_eq!(locate(LinkType::ETHERNET, &f), Ok((Net::V4, 26)));
        // A tag cut short.
        let f = eth(0x8100, &[0, 1]);
        assert!(matches!(
            locate(LinkType::ETHERNET, &f),
            Err(DecodeIssue::Truncated { layer: "vlan", .. })
        ));
        // Too many tags.
        let mut rest = Vec::new();
        for _ in 0..9 {
            rest.extend_from_slice(&[0, 1, 0x81, 0x00]);
        }
        let f = eth(0x8100, &rest);
        assert!(matches!(
            locate(LinkType::ETHERNET, &f),
            Err(DecodeIssue::Malformed { .. })
        ));
        assert_eq!(
            locate(LinkType::ETHERNET, &eth(0x0806, &[0; 28])),
            Err(DecodeIssue::NotIp)
        );
        assert!(matches!(
            locate(LinkType::ETHERNET, &[0; 10]),
            Err(DecodeIssue::Truncated { .. })
        ));
    }

    #[test]
    fn ethernet_llc_snap_mpls_pppoe() {
        let f = eth(40, &[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00, 0x45]);
        assert_eq!(locate(LinkType::ETHERNET, &f), Ok((Net::V4, 22)));
        let f = eth(40, &[0x42, 0x42, 0x03]);
        assert_eq!(locate(LinkType::ETHERNET, &f), Err(DecodeIssue::NotIp));
        // Two MPLS labels, bottom of stack on the second, then IPv4.
        let f = eth(0x8847, &[0, 0, 0x10, 64, 0, 0, 0x11, 64, 0x45]);
        assert_eq!(locate(LinkType::ETHERNET, &f), Ok((Net::V4, 22)));
        // MPLS, control word, inner Ethernet with IPv6.
        let mut f = eth(0x8847, &[0, 0, 0x11, 64, 0, 0, 0, 0]);
        f.extend_from_slice(&eth(0x86dd, &[0x60]));
        assert_eq!(locate(LinkType::ETHERNET, &f), Ok((Net::V6, 36)));
        // PPPoE session carrying IPv4.
        let f = eth(0x8864, &[0x11, 0, 0, 1, 0, 20, 0x00, 0x21, 0x45]);
        assert_eq!(locate(LinkType::ETHERNET, &f), Ok((Net::V4, 22)));
    }

    #[test]
    fn cooked_raw_null_loop() {
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x86, 0xdd, 0x60]);
        assert_eq!(locate(LinkType::LINUX_SLL, &sll), Ok((Net::V6, 16)));
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0; 18]);
        sll2.push(0x45);
        assert_eq!(locate(LinkType::LINUX_SLL2, &sll2), Ok((Net::V4, 20)));
        assert!(matches!(
            locate(LinkType::LINUX_SLL2, &sll2[..10]),
            Err(DecodeIssue::Truncated { .. })
        ));
        assert_eq!(locate(LinkType::RAW, &[0x45]), Ok((Net::V4, 0)));
        assert_eq!(locate(LinkType::IPV6, &[0x60]), Ok((Net::V6, 0)));
        assert_eq!(locate(LinkType::RAW, &[0x15]), Err(DecodeIssue::NotIp));
        // NULL in both byte orders, IPv6 as the BSDs number it.
        assert_eq!(locate(LinkType::NULL, &[2, 0, 0, 0, 0x45]), Ok((Net::V4, 4)));
        assert_eq!(locate(LinkType::NULL, &[0, 0, 0, 2, 0x45]), Ok((Net::V4, 4)));
        assert_eq!(locate(LinkType::NULL, &[30, 0, 0, 0, 0x60]), Ok((Net::V6, 4)));
        assert_eq!(locate(LinkType::NULL, &[0, 0, 0, 24, 0x60]), Ok((Net::V6, 4)));
        assert_eq!(locate(LinkType::NULL, &[7, 0, 0, 0]), Err(DecodeIssue::NotIp));
        assert_eq!(locate(LinkType::LOOP, &[0, 0, 0, 2, 0x45]), Ok((Net::V4, 4)));
        assert_eq!(locate(LinkType(147), &[0; 40]), Err(DecodeIssue::UnsupportedLink(147)));
    }

    #[test]
    fn ppp_nflog_hdlc_fddi() {
        assert_eq!(locate(LinkType(9), &[0xff, 0x03, 0x00, 0x21, 0x45]), Ok((Net::V4, 4)));
        assert_eq!(locate(LinkType(9), &[0x57, 0x60]), Ok((Net::V6, 1)));
        assert_eq!(locate(LinkType(9), &[0xc0, 0x21, 1]), Err(DecodeIssue::NotIp));
        assert_eq!(locate(LinkType(104), &[0x0f, 0, 0x08, 0x00, 0x45]), Ok((Net::V4, 4)));
        // NFLOG: header, a prefix TLV of 6 bytes (padded to 8), then the payload TLV.
        let mut nf = vec![2, 0, 0, 0];
        nf.extend_from_slice(&[6, 0, 10, 0, b'a', b'b', 0, 0]);
        nf.extend_from_slice(&[24, 0, 9, 0, 0x45]);
        assert_eq!(locate(LinkType(239), &nf), Ok((Net::V4, 16)));
        let bad = [2, 0, 0, 0, 2, 0, 1, 0];
        assert!(matches!(
            locate(LinkType(239), &bad),
            Err(DecodeIssue::Malformed { .. })
        ));
        let mut fddi = vec![0x50; 13];
        fddi.extend_from_slice(&[0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00, 0x45]);
        assert_eq!(locate(LinkType(10), &fddi), Ok((Net::V4, 21)));
    }
}
