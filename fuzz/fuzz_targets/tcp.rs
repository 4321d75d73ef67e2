//! The TCP engine: `tcp::Tracker` fed a sequence of segments built from the input (arbitrary flags, sequence and
//! acknowledgement numbers, windows, options, payloads, snaplen cuts, time jumps, ICMP errors) across a few
//! 4-tuples, with small limits so that eviction, linger, reassembly caps and event caps are all reached. The
//! sink is the HTTP/2 analyzer, and every finished connection goes through timeline and diagnosis.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use whoclosed::analyzer::finish_one;
use whoclosed::decode::{
    Fragment, IcmpKind, IcmpMessage, IpHeader, QuotedTcp, SeqNum, TcpFlags, TcpOptions, TcpSegment,
};
use whoclosed::http2::{H2Config, StreamAnalyzer};
use whoclosed::source::PacketRef;
use whoclosed::tcp::{Mark, TcpConfig, Tracker};
use whoclosed::ts::{Dur, Ts};

#[derive(Arbitrary, Debug)]
enum Seq {
    /// Near the flow's base: in-window, overlapping, slightly out of order.
    Near(i16),
    /// Anywhere.
    Abs(u32),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Seg {
        /// Which of 4 tuples, which side sends.
        tuple: u8,
        reverse: bool,
        flags: u16,
        seq: Seq,
        ack: Seq,
        window: u16,
        mss: Option<u16>,
        wscale: Option<u8>,
        sack_ok: bool,
        ts_opt: Option<(u32, u32)>,
        sack: Vec<(i16, u16)>,
        /// Payload bytes taken from the pool; `extra` more on the wire than captured.
        len: u16,
        extra: u16,
        header_truncated: bool,
        ttl: u8,
        /// Time step in microseconds; `big` makes it seconds (linger, idle, keepalive timing).
        dt: u16,
        big: bool,
    },
    Icmp {
        tuple: u8,
        reverse: bool,
        kind: u8,
        code: u8,
        seq: Option<Seq>,
    },
    /// Packet time moves on without a TCP packet.
    Advance(u16),
}

#[derive(Arbitrary, Debug)]
struct Input {
    max_connections: u8,
    reassembly_cap: u16,
    max_events: u8,
    idle_evict: Option<u8>,
    linger_ms: u16,
    v6: bool,
    pool: Vec<u8>,
    ops: Vec<Op>,
}

const BASES: [u32; 4] = [1000, 0xffff_ff00, 0x8000_0000, 7];

fn tuple(i: u8, v6: bool) -> (IpAddr, u16, IpAddr, u16) {
    let k = i % 4;
    let (a, b): (IpAddr, IpAddr) = if v6 && k % 2 == 1 {
        (
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1).into(),
            Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2).into(),
        )
    } else {
        (Ipv4Addr::new(10, 0, 0, 1).into(), Ipv4Addr::new(10, 0, 0, 2).into())
    };
    // Tuples 0 and 2 share addresses and differ in ports; 3 reuses tuple 1's ports (port reuse).
    let (pa, pb) = match k {
        0 => (40000, 443),
        1 => (40001, 50051),
        2 => (40002, 443),
        _ => (40001, 50051),
    };
    (a, pa, b, pb)
}

fn seq(s: &Seq, base: u32) -> SeqNum {
    match *s {
        Seq::Near(d) => SeqNum(base.wrapping_add(d as i32 as u32)),
        Seq::Abs(v) => SeqNum(v),
    }
}

fuzz_target!(|input: Input| {
    let cfg = TcpConfig {
        linger: Dur::from_millis(i64::from(input.linger_ms)),
        idle_gap: Dur::from_millis(500),
        idle_evict: input.idle_evict.map(|s| Dur::from_secs(i64::from(s))),
        max_connections: usize::from(input.max_connections % 4).max(1),
        reassembly_cap: usize::from(input.reassembly_cap % 8192).max(1),
        reassembly_max: usize::from(input.reassembly_cap % 8192).max(1) * 4,
        max_events: usize::from(input.max_events % 64).max(4),
        reorder_window: Dur::from_millis(3),
        ..TcpConfig::default()
    };
    let h2 = H2Config {
        keep_frames: input.v6,
        max_header_list: 4096,
        ..H2Config::default()
    };
    let mut t = Tracker::new(cfg, move || StreamAnalyzer::new(&h2));
    let mut now = Ts::from_nanos(1_700_000_000_000_000_000);
    let mut pool_at = 0usize;
    let pool = &input.pool;
    let mut frame = 0u64;
    let mut finished = Vec::new();
    for op in input.ops.iter().take(4096) {
        frame += 1;
        let at = PacketRef { file: 0, frame };
        match op {
            Op::Seg {
                tuple: ti,
                reverse,
                flags,
                seq: s,
                ack,
                window,
                mss,
                wscale,
                sack_ok,
                ts_opt,
                sack,
                len,
                extra,
                header_truncated,
                ttl,
                dt,
                big,
            } => {
                let step = if *big {
                    Dur::from_millis(i64::from(*dt) * 100)
                } else {
                    Dur::from_micros(i64::from(*dt))
                };
                now = now.plus(step);
                let (a, pa, b, pb) = tuple(*ti, input.v6);
                let (src, sp, dst, dp) = if *reverse { (b, pb, a, pa) } else { (a, pa, b, pb) };
                let base = BASES[usize::from(*ti % 4)].wrapping_add(if *reverse { 0x1234_5678 } else { 0 });
                let back = BASES[usize::from(*ti % 4)].wrapping_add(if *reverse { 0 } else { 0x1234_5678 });
                let n = usize::from(*len % 2048).min(pool.len().saturating_sub(pool_at));
                let payload = pool.get(pool_at..pool_at + n).unwrap_or(&[]);
                pool_at = if pool.is_empty() { 0 } else { (pool_at + n) % pool.len() };
                let mut opts = TcpOptions {
                    mss: *mss,
                    window_scale: *wscale,
                    sack_permitted: *sack_ok,
                    timestamps: *ts_opt,
                    ..TcpOptions::default()
                };
                for (i, (l, w)) in sack.iter().take(4).enumerate() {
                    let left = SeqNum(back.wrapping_add(*l as i32 as u32));
                    opts.sack[i] = (left, left.add(u32::from(*w)));
                    opts.sack_count = (i + 1) as u8;
                }
                let ip = IpHeader {
                    src,
                    dst,
                    ttl: *ttl,
                    id: Some(frame as u32),
                    dont_fragment: true,
                    tos: 0,
                    fragment: Fragment::None,
                };
                let seg = TcpSegment {
                    src_port: sp,
                    dst_port: dp,
                    seq: seq(s, base),
                    ack: seq(ack, back),
                    flags: TcpFlags(*flags & 0x1ff),
                    window: *window,
                    urgent: 0,
                    options: opts,
                    payload,
                    payload_len: (payload.len() as u32).saturating_add(u32::from(*extra)),
                    header_truncated: *header_truncated,
                };
                t.segment(&ip, &seg, Mark { ts: now, at });
            }
            Op::Icmp {
                tuple: ti,
                reverse,
                kind,
                code,
                seq: s,
            } => {
                let (a, pa, b, pb) = tuple(*ti, input.v6);
                let (src, sp, dst, dp) = if *reverse { (b, pb, a, pa) } else { (a, pa, b, pb) };
                let base = BASES[usize::from(*ti % 4)];
                let k = match kind % 5 {
                    0 => IcmpKind::Unreachable,
                    1 => IcmpKind::PacketTooBig {
                        mtu: u32::from(*code) * 8,
                    },
                    2 => IcmpKind::TimeExceeded,
                    3 => IcmpKind::ParameterProblem,
                    _ => IcmpKind::Other,
                };
                let msg = IcmpMessage {
                    v6: src.is_ipv6(),
                    icmp_type: *kind,
                    code: *code,
                    kind: k,
                    quoted: Some(QuotedTcp {
                        src,
                        dst,
                        src_port: sp,
                        dst_port: dp,
                        seq: s.as_ref().map(|s| seq(s, base)),
                    }),
                };
                let ip = IpHeader {
                    src: if *code % 2 == 0 {
                        dst
                    } else {
                        Ipv4Addr::new(192, 0, 2, 1).into()
                    },
                    dst: src,
                    ttl: 64,
                    id: None,
                    dont_fragment: false,
                    tos: 0,
                    fragment: Fragment::None,
                };
                t.icmp(&ip, &msg, Mark { ts: now, at });
            }
            Op::Advance(s) => {
                now = now.plus(Dur::from_secs(i64::from(*s)));
                t.advance(now);
            }
        }
        for (rec, sink) in t.drain_finished() {
            finished.push((rec, sink));
        }
    }
    t.finish_all(now);
    finished.extend(t.drain_finished());
    assert_eq!(t.open_connections(), 0);
    for (rec, sink) in finished {
        let f = finish_one(Box::new(rec), sink.finish());
        let _ = whoclosed::report::conn_report(&f, false);
    }
});
