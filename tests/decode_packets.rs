//! The decoder on hand-built packets: every link type, tag stacks, IPv4 options, IPv6 extension headers,
//! fragments, tunnels, ICMP quotes, lengths that disagree, and every prefix of a packet (no panic, ever).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use whoclosed::decode::{DecodeIssue, Decoded, Decoder, Fragment, IcmpKind, SeqNum, TcpSegment, Transport};
use whoclosed::source::{LinkType, Packet, PacketRef};
use whoclosed::ts::Ts;

fn pkt(link: LinkType, data: &[u8]) -> Packet<'_> {
    Packet {
        at: PacketRef { file: 0, frame: 1 },
        ts: Ts::from_nanos(1_000),
        link,
        data,
        orig_len: data.len() as u32,
    }
}

fn tcp_hdr(sport: u16, dport: u16, seq: u32, flags: u8, opts: &[u8]) -> Vec<u8> {
    let doff = (20 + opts.len()) / 4;
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&7u32.to_be_bytes());
    v.extend_from_slice(&[(doff as u8) << 4, flags, 0x10, 0x00, 0, 0, 0, 0]);
    v.extend_from_slice(opts);
    v
}

fn ipv4(proto: u8, payload: &[u8], id: u16, frag: u16) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut v = vec![0x45, 0x10];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&frag.to_be_bytes());
    v.extend_from_slice(&[61, proto, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2]);
    v.extend_from_slice(payload);
    v
}

fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0x60, 0x00, 0, 0];
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(&[next, 55]);
    v.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1).octets());
    v.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
    v.extend_from_slice(payload);
    v
}

fn eth(et: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    v.extend_from_slice(&et.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn seg<'a>(d: &Decoded<'a>) -> TcpSegment<'a> {
    match d.transport {
        Transport::Tcp(s) => s,
        other => panic!("no TCP segment: {other:?} (issue {:?})", d.issue),
    }
}

/// (source address, source port, seq, captured payload, payload length) of the TCP segment, and the issue.
type Summary = (Option<(IpAddr, u16, u32, usize, u32)>, Option<DecodeIssue>);

fn one(link: LinkType, data: &[u8]) -> Summary {
    let mut dec = Decoder::new();
    let p = pkt(link, data);
    let d = dec.decode(&p);
    let s = match d.transport {
        Transport::Tcp(s) => Some((d.ip.unwrap().src, s.src_port, s.seq.0, s.payload.len(), s.payload_len)),
        _ => None,
    };
    (s, d.issue)
}

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));

#[test]
fn ethernet_vlan_ipv4_tcp_with_options() {
    let mut t = tcp_hdr(443, 50_000, 1000, 0x18, &[2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 0, 0]);
    t.extend_from_slice(b"payload!");
    let f = eth(
        0x8100,
        &[[0, 42].as_slice(), &[0x08, 0x00], &ipv4(6, &t, 0x1234, 0x4000)].concat(),
    );
    let mut dec = Decoder::new();
    let p = pkt(LinkType::ETHERNET, &f);
    let d = dec.decode(&p);
    let ip = d.ip.unwrap();
    assert_eq!(
        (ip.src, ip.ttl, ip.id, ip.dont_fragment, ip.tos),
        (SRC4, 61, Some(0x1234), true, 0x10)
    );
    assert_eq!(ip.fragment, Fragment::None);
    let s = seg(&d);
    assert_eq!(
        (s.src_port, s.dst_port, s.seq, s.ack),
        (443, 50_000, SeqNum(1000), SeqNum(7))
    );
    assert!(s.flags.psh() && s.flags.ack());
    assert_eq!(
        (s.window, s.options.mss, s.options.window_scale),
        (0x1000, Some(1460), Some(7))
    );
    assert!(s.options.sack_permitted);
    assert_eq!((s.payload, s.payload_len), (&b"payload!"[..], 8));
    assert_eq!(d.issue, None);
    let st = dec.stats();
    assert_eq!((st.packets, st.ip, st.tcp), (1, 1, 1));
}

#[test]
fn every_link_type_reaches_tcp() {
    let ip4 = ipv4(6, &tcp_hdr(1, 2, 3, 0x02, &[]), 1, 0);
    let ip6 = ipv6(6, &tcp_hdr(1, 2, 3, 0x02, &[]));
    let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ip4);
    let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0];
    sll2.extend_from_slice(&ip6);
    let cases: Vec<(LinkType, Vec<u8>)> = vec![
        (LinkType::ETHERNET, eth(0x0800, &ip4)),
        (
            LinkType::ETHERNET,
            eth(0x88a8, &[&[0, 1, 0x81, 0x00, 0, 2, 0x86, 0xdd][..], &ip6].concat()),
        ),
        (LinkType::LINUX_SLL, sll),
        (LinkType::LINUX_SLL2, sll2),
        (LinkType::RAW, ip4.clone()),
        (LinkType::RAW, ip6.clone()),
        (LinkType::IPV4, ip4.clone()),
        (LinkType::IPV6, ip6.clone()),
        (LinkType::NULL, [&[2, 0, 0, 0][..], &ip4].concat()),
        (LinkType::NULL, [&[0, 0, 0, 2][..], &ip4].concat()),
        (LinkType::NULL, [&[30, 0, 0, 0][..], &ip6].concat()),
        (LinkType::NULL, [&[0, 0, 0, 28][..], &ip6].concat()),
        (LinkType::LOOP, [&[0, 0, 0, 2][..], &ip4].concat()),
        (LinkType(239), [&[2, 0, 0, 0, 44, 0, 9, 0][..], &ip4].concat()),
        (LinkType(9), [&[0xff, 0x03, 0x00, 0x21][..], &ip4].concat()),
    ];
    for (link, f) in &cases {
        let (s, issue) = one(*link, f);
        let s = s.unwrap_or_else(|| panic!("{link}: no TCP ({issue:?})"));
        assert_eq!((s.1, s.2), (1, 3), "{link}");
        assert_eq!(issue, None, "{link}");
    }
    // Not IP, and unsupported links: quiet issues, counted.
    let mut dec = Decoder::new();
    let arp = eth(0x0806, &[0; 28]);
    assert_eq!(
        dec.decode(&pkt(LinkType::ETHERNET, &arp)).issue,
        Some(DecodeIssue::NotIp)
    );
    assert_eq!(
        dec.decode(&pkt(LinkType(147), &ip4)).issue,
        Some(DecodeIssue::UnsupportedLink(147))
    );
    assert_eq!((dec.stats().not_ip, dec.stats().unsupported_link), (1, 1));
}

#[test]
fn ipv4_options_padding_tso_and_lengths() {
    let t = tcp_hdr(80, 9, 5, 0x10, &[]);
    // IHL 6 (one 4-byte option: NOP NOP NOP EOL).
    let mut ip = ipv4(6, &t, 1, 0);
    ip[0] = 0x46;
    ip.splice(20..20, [1, 1, 1, 0]);
    ip[3] += 4;
    let (s, issue) = one(LinkType::RAW, &ip);
    assert_eq!((s.unwrap().1, issue), (80, None));
    // Ethernet padding after a short packet is not payload.
    let f = eth(0x0800, &[ipv4(6, &t, 1, 0), vec![0; 6]].concat());
    let (s, _) = one(LinkType::ETHERNET, &f);
    assert_eq!((s.unwrap().3, s.unwrap().4), (0, 0));
    // TSO: IP total length 0, the frame carries 3000 bytes of payload.
    let mut big = ipv4(6, &[t.clone(), vec![0xaa; 3000]].concat(), 1, 0);
    big[2] = 0;
    big[3] = 0;
    let (s, issue) = one(LinkType::RAW, &big);
    assert_eq!((s.unwrap().3, s.unwrap().4, issue), (3000, 3000, None));
    // Snapshot length cut: the IP length says 1000 bytes of payload, 10 were captured.
    let full = ipv4(6, &[t.clone(), vec![0xbb; 1000]].concat(), 1, 0);
    let cut = &full[..50];
    let mut dec = Decoder::new();
    let mut p = pkt(LinkType::RAW, cut);
    p.orig_len = full.len() as u32;
    let d = dec.decode(&p);
    let s = seg(&d);
    assert_eq!((s.payload.len(), s.payload_len, s.header_truncated), (10, 1000, false));
    // The IP length claims more than the frame had on the wire: cut to the frame, flagged.
    let mut liar = ipv4(6, &[t.clone(), vec![0xcc; 10]].concat(), 1, 0);
    liar[2..4].copy_from_slice(&900u16.to_be_bytes());
    let (s, issue) = one(LinkType::RAW, &liar);
    assert_eq!(s.unwrap().4, 10);
    assert!(
        matches!(issue, Some(DecodeIssue::Malformed { layer: "ipv4", .. })),
        "{issue:?}"
    );
    // Impossible IPv4 headers.
    let mut bad = ipv4(6, &t, 1, 0);
    bad[0] = 0x44;
    assert!(matches!(
        one(LinkType::RAW, &bad).1,
        Some(DecodeIssue::Malformed { layer: "ipv4", .. })
    ));
    let mut bad = ipv4(6, &t, 1, 0);
    bad[2..4].copy_from_slice(&10u16.to_be_bytes());
    assert!(matches!(
        one(LinkType::RAW, &bad).1,
        Some(DecodeIssue::Malformed { layer: "ipv4", .. })
    ));
}

#[test]
fn rst_cut_by_the_snapshot_length_still_counts() {
    // Ethernet + IPv4 + 14 bytes of a RST that carried 20 bytes of data.
    let t = tcp_hdr(5000, 80, 77, 0x14, &[]);
    let full = eth(0x0800, &ipv4(6, &[t, vec![0; 20]].concat(), 1, 0));
    let cut = &full[..14 + 20 + 14];
    let mut dec = Decoder::new();
    let mut p = pkt(LinkType::ETHERNET, cut);
    p.orig_len = full.len() as u32;
    let d = dec.decode(&p);
    let s = seg(&d);
    assert!(s.flags.rst() && s.header_truncated);
    assert_eq!((s.seq, s.payload_len, s.window), (SeqNum(77), 20, 0));
    assert!(matches!(
        d.issue,
        Some(DecodeIssue::Truncated {
            layer: "tcp",
            need: 20,
            have: 14,
            ..
        })
    ));
    assert_eq!(dec.stats().truncated, 1);
}

#[test]
fn ipv6_extension_headers() {
    let t = tcp_hdr(22, 40_000, 9, 0x11, &[]);
    // Hop-by-hop (8), routing (16), destination options (8), then TCP.
    let mut ext = vec![43, 0, 1, 4, 0, 0, 0, 0];
    ext.extend_from_slice(&[60, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    ext.extend_from_slice(&[6, 0, 1, 4, 0, 0, 0, 0]);
    let f = ipv6(0, &[ext.clone(), t.clone()].concat());
    let (s, issue) = one(LinkType::RAW, &f);
    assert_eq!((s.unwrap().1, s.unwrap().4, issue), (22, 0, None));
    // AH (length in 4-byte words minus 2): 12 + 4 bytes.
    let ah = vec![6, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0];
    let (s, _) = one(LinkType::RAW, &ipv6(51, &[ah, t.clone()].concat()));
    assert_eq!(s.unwrap().1, 22);
    // ESP and no-next-header stop at the IP layer.
    let mut dec = Decoder::new();
    let esp = ipv6(50, &[0; 32]);
    assert_eq!(dec.decode(&pkt(LinkType::RAW, &esp)).transport, Transport::Other(50));
    let none = ipv6(59, &[]);
    assert_eq!(dec.decode(&pkt(LinkType::RAW, &none)).transport, Transport::Other(59));
    // An extension header cut by the capture.
    let cut = ipv6(0, &[ext, t].concat());
    let d = dec.decode(&pkt(LinkType::RAW, &cut[..40 + 12]));
    assert!(
        matches!(d.issue, Some(DecodeIssue::Truncated { layer: "ipv6-ext", .. })),
        "{:?}",
        d.issue
    );
    // An atomic fragment (offset 0, no more fragments) is a whole datagram.
    let atomic = [vec![6, 0, 0, 0, 0, 0, 0, 9], tcp_hdr(1, 2, 3, 0x02, &[])].concat();
    let f = ipv6(44, &atomic);
    let d = dec.decode(&pkt(LinkType::RAW, &f));
    assert_eq!(seg(&d).src_port, 1);
    assert_eq!(d.ip.unwrap().fragment, Fragment::None);
}

#[test]
fn ipv4_fragments_piece_then_reassembled() {
    let mut payload = tcp_hdr(1234, 80, 500, 0x18, &[]);
    payload.extend((0..100u8).collect::<Vec<u8>>());
    // 120 bytes of TCP: fragments of 64 (offset 0, MF) and 56 (offset 8 units).
    let f1 = ipv4(6, &payload[..64], 77, 0x2000);
    let f2 = ipv4(6, &payload[64..], 77, 8);
    let mut dec = Decoder::new();
    let d = dec.decode(&pkt(LinkType::RAW, &f1));
    assert_eq!(d.ip.unwrap().fragment, Fragment::Piece { offset: 0, more: true });
    assert_eq!(d.issue, Some(DecodeIssue::Fragment));
    let s = seg(&d);
    assert_eq!(
        (s.src_port, s.seq, s.payload_len, s.payload.len()),
        (1234, SeqNum(500), 44, 44)
    );
    let d = dec.decode(&pkt(LinkType::RAW, &f2));
    assert_eq!(d.ip.unwrap().fragment, Fragment::Reassembled { count: 2 });
    assert_eq!(d.issue, None);
    let s = seg(&d);
    assert_eq!((s.seq, s.payload_len), (SeqNum(500), 100));
    assert_eq!(s.payload, &payload[20..]);
    let st = dec.stats();
    assert_eq!((st.fragments, st.fragments_reassembled, st.tcp), (2, 1, 2));
    // Out of order: the last piece first (held back), then the first completes the datagram.
    let mut dec = Decoder::new();
    let d = dec.decode(&pkt(LinkType::RAW, &f2));
    assert_eq!((d.transport, d.issue), (Transport::None, Some(DecodeIssue::Fragment)));
    assert_eq!(
        d.ip.unwrap().fragment,
        Fragment::Piece {
            offset: 64,
            more: false
        }
    );
    let d = dec.decode(&pkt(LinkType::RAW, &f1));
    assert_eq!(seg(&d).payload_len, 100);
    // A first fragment cut by the snapshot length cannot be reassembled but still shows its TCP header.
    let mut dec = Decoder::new();
    let mut p = pkt(LinkType::RAW, &f1[..40]);
    p.orig_len = f1.len() as u32;
    let d = dec.decode(&p);
    assert_eq!(seg(&d).seq, SeqNum(500));
    let d = dec.decode(&pkt(LinkType::RAW, &f2));
    assert_eq!(d.transport, Transport::None);
}

#[test]
fn ipv6_fragments_reassembled() {
    let mut payload = tcp_hdr(8080, 1, 42, 0x10, &[]);
    payload.extend_from_slice(&[7u8; 60]);
    let frag = |off: u16, more: bool, id: u32| {
        let mut h = vec![6, 0];
        h.extend_from_slice(&(off | u16::from(more)).to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h
    };
    let f1 = ipv6(44, &[frag(0, true, 9), payload[..40].to_vec()].concat());
    let f2 = ipv6(44, &[frag(40, false, 9), payload[40..].to_vec()].concat());
    let mut dec = Decoder::new();
    let d = dec.decode(&pkt(LinkType::RAW, &f1));
    assert_eq!(d.ip.unwrap().id, Some(9));
    assert_eq!(seg(&d).payload_len, 20);
    let d = dec.decode(&pkt(LinkType::RAW, &f2));
    assert_eq!(d.ip.unwrap().fragment, Fragment::Reassembled { count: 2 });
    assert_eq!(seg(&d).payload_len, 60);
}

#[test]
fn icmp_errors_quote_tcp() {
    let quoted = ipv4(6, &tcp_hdr(40_000, 443, 0xdead_beef, 0x18, &[])[..8], 5, 0x4000);
    let mut icmp = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
    icmp.extend_from_slice(&quoted);
    let mut dec = Decoder::new();
    let f = ipv4(1, &icmp, 9, 0);
    let d = dec.decode(&pkt(LinkType::RAW, &f));
    let Transport::Icmp(m) = d.transport else {
        panic!("{d:?}")
    };
    assert_eq!(m.kind, IcmpKind::PacketTooBig { mtu: 1400 });
    let q = m.quoted.unwrap();
    assert_eq!(
        (q.src_port, q.dst_port, q.seq),
        (40_000, 443, Some(SeqNum(0xdead_beef)))
    );
    assert_eq!(dec.stats().icmp, 1);
    // ICMPv6 port unreachable quoting an IPv6 TCP SYN.
    let q6 = ipv6(6, &tcp_hdr(50_000, 25, 1, 0x02, &[]));
    let mut icmp6 = vec![1, 4, 0, 0, 0, 0, 0, 0];
    icmp6.extend_from_slice(&q6);
    let f = ipv6(58, &icmp6);
    let d = dec.decode(&pkt(LinkType::RAW, &f));
    let Transport::Icmp(m) = d.transport else {
        panic!("{d:?}")
    };
    assert!(m.v6 && m.kind == IcmpKind::Unreachable && m.code == 4);
    assert_eq!(m.quoted.unwrap().dst_port, 25);
}

#[test]
fn tunnels_report_the_inner_packet() {
    let inner = ipv4(6, &tcp_hdr(7, 8, 9, 0x02, &[]), 1, 0);
    let mut dec = Decoder::new();
    // IP-in-IP.
    let mut outer = ipv4(4, &inner, 2, 0);
    outer[12..16].copy_from_slice(&[10, 9, 9, 9]);
    let d = dec.decode(&pkt(LinkType::RAW, &outer));
    assert_eq!((d.ip.unwrap().src, seg(&d).src_port), (SRC4, 7));
    // GRE with a key, carrying IPv4.
    let gre = [vec![0x20, 0, 0x08, 0x00, 0, 0, 0, 1], inner.clone()].concat();
    let f = ipv4(47, &gre, 3, 0);
    let d = dec.decode(&pkt(LinkType::RAW, &f));
    assert_eq!(seg(&d).dst_port, 8);
    // VXLAN (UDP 4789) carrying Ethernet + IPv4.
    let mut udp = vec![0x30, 0x39, 0x12, 0xb5, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 1, 0];
    udp.extend(eth(0x0800, &inner));
    let f = ipv4(17, &udp, 4, 0);
    let d = dec.decode(&pkt(LinkType::RAW, &f));
    assert_eq!(seg(&d).seq, SeqNum(9));
    // Plain UDP is just "another protocol".
    let udp = vec![0x00, 0x35, 0x12, 0x34, 0, 12, 0, 0, 1, 2, 3, 4];
    assert_eq!(
        dec.decode(&pkt(LinkType::RAW, &ipv4(17, &udp, 5, 0))).transport,
        Transport::Other(17)
    );
    // A truncated inner packet: the outer one is reported.
    let f = ipv4(4, &inner[..10], 6, 0);
    let d = dec.decode(&pkt(LinkType::RAW, &f));
    assert_eq!((d.transport, d.ip.unwrap().src), (Transport::Other(4), SRC4));
    assert!(matches!(d.issue, Some(DecodeIssue::Truncated { layer: "ipv4", .. })));
}

#[test]
fn no_prefix_or_garbage_panics() {
    let mut t = tcp_hdr(1, 2, 3, 0x12, &[2, 4, 5, 0xb4, 5, 10, 0, 0, 0, 1, 0, 0, 0, 2, 8, 10]);
    t.extend_from_slice(&[0; 2]);
    let frames = [
        eth(
            0x8100,
            &[[0, 1, 0x88, 0x47, 0, 0, 0x11, 64].as_slice(), &ipv4(6, &t, 1, 0)].concat(),
        ),
        eth(
            0x86dd,
            &ipv6(
                0,
                &[vec![44, 0, 1, 4, 0, 0, 0, 0], vec![6, 0, 0, 1, 0, 0, 0, 1], t.clone()].concat(),
            ),
        ),
        eth(
            0x0800,
            &ipv4(
                47,
                &[
                    vec![0x30, 0, 0x65, 0x58, 0, 0, 0, 1, 0, 0, 0, 1],
                    eth(0x0800, &ipv4(6, &t, 1, 0)),
                ]
                .concat(),
                1,
                0,
            ),
        ),
        eth(
            0x0800,
            &ipv4(
                1,
                &[vec![3, 3, 0, 0, 0, 0, 0, 0], ipv4(6, &t[..8], 1, 0)].concat(),
                1,
                0,
            ),
        ),
    ];
    let links = [
        0u32, 1, 9, 10, 12, 101, 104, 105, 108, 113, 127, 228, 229, 239, 242, 276, 999,
    ];
    let mut dec = Decoder::new();
    for f in &frames {
        for link in links {
            for n in 0..=f.len() {
                let mut p = pkt(LinkType(link), &f[..n]);
                p.orig_len = f.len() as u32;
                let _ = dec.decode(&p);
            }
        }
    }
    // Pseudo-random garbage (xorshift), every link type.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let mut buf = [0u8; 200];
    for i in 0..20_000u32 {
        for b in buf.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        // Make the interesting paths likely: a valid-looking IP version nibble and protocol.
        buf[14] = if i % 2 == 0 { 0x45 } else { 0x60 };
        buf[0] = buf[14];
        let n = (x as usize) % buf.len();
        let link = links[i as usize % links.len()];
        let mut p = pkt(LinkType(link), &buf[..n]);
        p.orig_len = (x >> 32) as u32;
        let _ = dec.decode(&p);
    }
    assert!(dec.stats().packets > 20_000);
}
