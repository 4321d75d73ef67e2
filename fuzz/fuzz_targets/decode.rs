//! Link + IP + TCP/ICMP decoding: `decode::Decoder::decode` on a sequence of packets, each with a link type
//! chosen from the input (one decoder, so IPv4/IPv6 fragment reassembly sees the whole sequence).
//!
//! Input: repeated records `[link selector u8][cut u8][len u16 le][len bytes]`; `cut` makes the wire length
//! larger than the captured bytes (snaplen cuts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use whoclosed::decode::{Decoder, Transport};
use whoclosed::source::{LinkType, Packet, PacketRef};
use whoclosed::ts::Ts;

fuzz_target!(|data: &[u8]| {
    let mut dec = Decoder::new();
    let mut rest = data;
    let mut frame = 0u64;
    while let [sel, cut, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*l0, *l1])).min(tail.len());
        let (pkt, more) = tail.split_at(len);
        rest = more;
        frame += 1;
        let link = whoclosed_fuzz::LINKS[usize::from(*sel) % whoclosed_fuzz::LINKS.len()];
        let orig_len = (pkt.len() as u32).saturating_add(u32::from(*cut) * 16);
        let p = Packet {
            at: PacketRef { file: 0, frame },
            // Time moves on in steps of up to ~4 s, so fragment timeouts are crossed.
            ts: Ts::from_nanos((frame as i64).saturating_mul(i64::from(*sel) * 16_000_000)),
            link: LinkType(link),
            data: pkt,
            orig_len,
        };
        let d = dec.decode(&p);
        if let Transport::Tcp(seg) = d.transport {
            assert!(seg.payload_len as usize >= seg.payload.len());
            let _ = seg.flags.letters();
            let _ = seg.options.sack_blocks();
        }
    }
    let _ = dec.stats();
});
