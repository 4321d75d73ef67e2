//! Edge cases of the TCP engine with hand-built segments. Real behaviour is tested on captured traffic
//! (tests/golden.rs); these pin the mechanisms a capture rarely shows on demand.

use super::*;
use crate::decode::{Fragment, IpHeader, TcpFlags, TcpOptions, TcpSegment};
use crate::source::PacketRef;
use crate::ts::{Dur, Ts};
use std::net::{IpAddr, Ipv4Addr};

#[derive(Default)]
struct Bytes {
    data: [Vec<u8>; 2],
    gaps: [u64; 2],
    ended: [bool; 2],
}

impl StreamSink for Bytes {
    fn on_data(&mut self, dir: Dir, data: &[u8], _: SegMeta) {
        self.data[dir.index()].extend_from_slice(data);
    }
    fn on_gap(&mut self, dir: Dir, missing: u64, _: SegMeta) {
        self.gaps[dir.index()] += missing;
    }
    fn on_end(&mut self, dir: Dir, _: SegMeta) {
        self.ended[dir.index()] = true;
    }
}

const C: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const S: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

struct Sim {
    t: Tracker<Bytes, fn() -> Bytes>,
    frame: u64,
    now: Ts,
    out: Vec<(TcpRecord, Bytes)>,
}

struct Pkt<'a> {
    from_client: bool,
    flags: u16,
    seq: u32,
    ack: u32,
    win: u16,
    data: &'a [u8],
    ttl: u8,
    cport: u16,
    wscale: Option<u8>,
}

impl<'a> Pkt<'a> {
    fn c(flags: u16, seq: u32, ack: u32) -> Pkt<'a> {
        Pkt {
            from_client: true,
            flags,
            seq,
            ack,
            win: 1000,
            data: &[],
            ttl: 64,
            cport: 40000,
            wscale: None,
        }
    }
    fn s(flags: u16, seq: u32, ack: u32) -> Pkt<'a> {
        Pkt {
            from_client: false,
            flags,
            seq,
            ack,
            win: 1000,
            data: &[],
            ttl: 63,
            cport: 40000,
            wscale: None,
        }
    }
    fn data(mut self, d: &'a [u8]) -> Pkt<'a> {
        self.data = d;
        self
    }
    fn win(mut self, w: u16) -> Pkt<'a> {
        self.win = w;
        self
    }
    fn wscale(mut self, shift: u8) -> Pkt<'a> {
        self.wscale = Some(shift);
        self
    }
}

const SYN: u16 = TcpFlags::SYN;
const ACK: u16 = TcpFlags::ACK;
const FIN: u16 = TcpFlags::FIN | TcpFlags::ACK;
const RST: u16 = TcpFlags::RST;
const PSH: u16 = TcpFlags::PSH | TcpFlags::ACK;

impl Sim {
    /// A simulation whose table holds at most `max` connections (default linger).
    fn with_table_cap(max: usize) -> Sim {
        let cfg = TcpConfig {
            max_connections: max,
            ..TcpConfig::default()
        };
        Sim {
            t: Tracker::new(cfg, Bytes::default as fn() -> Bytes),
            ..Sim::new()
        }
    }

    fn new() -> Sim {
        let cfg = TcpConfig {
            linger: Dur::from_secs(1),
            ..TcpConfig::default()
        };
        Sim {
            t: Tracker::new(cfg, Bytes::default as fn() -> Bytes),
            frame: 0,
            now: Ts::from_nanos(1_000_000_000_000),
            out: Vec::new(),
        }
    }
    fn after(&mut self, ms: i64) -> &mut Sim {
        self.now = self.now.plus(Dur::from_millis(ms));
        self
    }
    fn send(&mut self, p: Pkt<'_>) -> &mut Sim {
        self.frame += 1;
        let (src, dst, sp, dp) = if p.from_client {
            (C, S, p.cport, 80)
        } else {
            (S, C, 80, p.cport)
        };
        let ip = IpHeader {
            src,
            dst,
            ttl: p.ttl,
            id: Some(self.frame as u32),
            dont_fragment: true,
            tos: 0,
            fragment: Fragment::None,
        };
        let seg = TcpSegment {
            src_port: sp,
            dst_port: dp,
            seq: SeqNum(p.seq),
            ack: SeqNum(p.ack),
            flags: TcpFlags(p.flags),
            window: p.win,
            urgent: 0,
            options: TcpOptions {
                window_scale: p.wscale,
                ..TcpOptions::default()
            },
            payload: p.data,
            payload_len: p.data.len() as u32,
            header_truncated: false,
        };
        self.t.segment(
            &ip,
            &seg,
            Mark {
                ts: self.now,
                at: PacketRef {
                    file: 0,
                    frame: self.frame,
                },
            },
        );
        self.out.extend(self.t.drain_finished());
        self
    }
    fn finish(&mut self) -> Vec<(TcpRecord, Bytes)> {
        self.t.finish_all(self.now);
        self.out.extend(self.t.drain_finished());
        let mut v = std::mem::take(&mut self.out);
        v.sort_by_key(|(r, _)| r.id);
        v
    }
    fn handshake(&mut self, isn_c: u32, isn_s: u32) -> &mut Sim {
        self.send(Pkt::c(SYN, isn_c, 0));
        self.after(1).send(Pkt::s(SYN | ACK, isn_s, isn_c.wrapping_add(1)));
        self.after(1)
            .send(Pkt::c(ACK, isn_c.wrapping_add(1), isn_s.wrapping_add(1)))
    }
}

fn kinds(r: &TcpRecord) -> Vec<String> {
    r.events
        .iter()
        .map(|e| {
            let k = format!("{:?}", e.kind);
            k.split([' ', '(', '{']).next().unwrap_or("").to_string()
        })
        .collect()
}

#[test]
fn handshake_data_and_fin_across_sequence_wrap() {
    let mut s = Sim::new();
    let ic = u32::MAX - 2;
    s.handshake(ic, 7);
    s.after(1).send(Pkt::c(PSH, ic.wrapping_add(1), 8).data(b"hello"));
    s.after(1).send(Pkt::s(PSH, 8, ic.wrapping_add(6)).data(b"world!"));
    s.after(1).send(Pkt::c(FIN, ic.wrapping_add(6), 14));
    s.after(1).send(Pkt::s(FIN, 14, ic.wrapping_add(7)));
    s.after(1).send(Pkt::c(ACK, ic.wrapping_add(7), 15));
    let out = s.finish();
    assert_eq!(out.len(), 1);
    let (r, b) = &out[0];
    assert_eq!(r.roles, RoleSource::Syn);
    assert!(r.handshake.completed());
    assert_eq!(b.data[0], b"hello");
    assert_eq!(b.data[1], b"world!");
    assert_eq!(b.gaps, [0, 0]);
    assert_eq!(r.dir(Dir::ToServer).bytes, 5);
    assert_eq!(r.dir(Dir::ToServer).retransmissions, 0);
    assert!(r.dir(Dir::ToServer).fin.is_some() && r.dir(Dir::ToClient).fin.is_some());
    assert_eq!(r.end_reason, EndReason::Closed);
}

#[test]
fn closed_connection_is_finished_after_the_linger_time() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(1).send(Pkt::c(RST, 101, 0));
    assert!(s.out.is_empty());
    // Another connection's packet 2 s later moves packet time past the linger.
    s.after(2000).send(Pkt {
        cport: 40001,
        ..Pkt::c(SYN, 5, 0)
    });
    assert_eq!(s.out.len(), 1);
    assert_eq!(s.out[0].0.dir(Dir::ToServer).rst_count, 1);
}

#[test]
fn roles_are_inferred_without_a_handshake() {
    let mut s = Sim::new();
    // First packet is from the server (port 80) mid-connection.
    s.send(Pkt::s(PSH, 500, 900).data(b"abc"));
    s.after(1).send(Pkt::c(ACK, 900, 503));
    let out = s.finish();
    let r = &out[0].0;
    assert_eq!(r.roles, RoleSource::WellKnownPort);
    assert_eq!(r.client.port(), 40000);
    assert_eq!(out[0].1.data[1], b"abc");
}

#[test]
fn syn_ack_first_makes_its_receiver_the_client() {
    let mut s = Sim::new();
    s.send(Pkt::s(SYN | ACK, 7, 101));
    s.after(1).send(Pkt::c(ACK, 101, 8));
    let r = &s.finish()[0].0;
    assert_eq!(r.roles, RoleSource::SynAck);
    assert_eq!(r.client.ip(), C);
}

#[test]
fn a_new_syn_after_a_finished_connection_starts_a_new_one() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(1).send(Pkt::c(FIN, 101, 201));
    s.after(1).send(Pkt::s(FIN, 201, 102));
    s.after(1).send(Pkt::c(ACK, 102, 202));
    // Same 4-tuple, new ISN, within the linger time.
    s.after(100).handshake(5000, 9000);
    let out = s.finish();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].0.end_reason, EndReason::Superseded);
    assert_eq!(out[1].0.dir(Dir::ToServer).isn, Some(SeqNum(5000)));
}

#[test]
fn a_retransmitted_syn_stays_in_its_connection() {
    let mut s = Sim::new();
    s.send(Pkt::c(SYN, 100, 0));
    s.after(1000).send(Pkt::c(SYN, 100, 0));
    s.after(2000).send(Pkt::c(SYN, 100, 0));
    let out = s.finish();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.dir(Dir::ToServer).syn_count, 3);
}

#[test]
fn retransmission_series_with_backoff_is_kept_open_when_unanswered() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(10)
        .send(Pkt::c(PSH, 101, 201).data(b"x".repeat(100).as_slice()));
    let mut gap = 200;
    for _ in 0..5 {
        s.after(gap)
            .send(Pkt::c(PSH, 101, 201).data(b"x".repeat(100).as_slice()));
        gap *= 2;
    }
    let out = s.finish();
    let c = out[0].0.dir(Dir::ToServer);
    assert_eq!(c.retransmissions, 5);
    let series = c.open_retrans.as_deref().expect("open series");
    assert_eq!(series.count, 5);
    assert_eq!(series.seq_rel, 1);
    assert!(series.original.is_some());
    assert_eq!(out[0].1.data[0].len(), 100, "retransmitted bytes are delivered once");
}

#[test]
fn acknowledged_series_is_recovered() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(10).send(Pkt::c(PSH, 101, 201).data(b"abcd"));
    s.after(200).send(Pkt::c(PSH, 101, 201).data(b"abcd"));
    s.after(400).send(Pkt::c(PSH, 101, 201).data(b"abcd"));
    s.after(5).send(Pkt::s(ACK, 201, 105));
    let out = s.finish();
    let c = out[0].0.dir(Dir::ToServer);
    assert!(c.open_retrans.is_none());
    assert_eq!(c.longest_series, 2);
    assert!(kinds(&out[0].0).contains(&"Recovered".to_string()));
}

#[test]
fn keepalive_probes_and_answers() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(10).send(Pkt::c(PSH, 101, 201).data(b"req"));
    s.after(1).send(Pkt::s(ACK, 201, 104));
    // Idle, then probes at seq = snd_una - 1.
    s.after(2000).send(Pkt::c(ACK, 103, 201));
    s.after(1).send(Pkt::s(ACK, 201, 104));
    s.after(1000).send(Pkt::c(ACK, 103, 201));
    s.after(1000).send(Pkt::c(ACK, 103, 201));
    s.after(1000).send(Pkt::c(RST, 104, 201));
    let out = s.finish();
    let c = out[0].0.dir(Dir::ToServer);
    assert_eq!(c.keepalives, 3);
    let ka = c.keepalive_series.as_deref().expect("series");
    assert_eq!(ka.count, 3);
    assert_eq!(ka.answered, 1);
    assert_eq!(out[0].0.dir(Dir::ToClient).retransmissions, 0);
    assert_eq!(c.retransmissions, 0, "probes are not retransmissions");
}

#[test]
fn zero_window_and_probes() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(1).send(Pkt::s(PSH, 201, 101).data(b"0123456789"));
    s.after(1).send(Pkt::c(ACK, 101, 211).win(0));
    s.after(200).send(Pkt::s(ACK, 210, 101));
    s.after(400).send(Pkt::s(ACK, 210, 101));
    s.after(10).send(Pkt::c(ACK, 101, 211).win(500));
    let out = s.finish();
    let r = &out[0].0;
    assert_eq!(r.dir(Dir::ToServer).zero_windows, 1);
    assert_eq!(r.dir(Dir::ToClient).window_probes, 2);
    assert_eq!(r.dir(Dir::ToClient).keepalives, 0);
    assert!(kinds(r).contains(&"WindowOpened".to_string()));
}

#[test]
fn holes_out_of_order_and_acked_unseen() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(1).send(Pkt::c(PSH, 101, 201).data(b"aaaa"));
    s.after(1).send(Pkt::c(PSH, 109, 201).data(b"cccc"));
    s.after(1).send(Pkt::c(PSH, 105, 201).data(b"bbbb")); // 1 ms later: out of order
    s.after(1).send(Pkt::c(PSH, 117, 201).data(b"eeee")); // 113..117 never captured
    s.after(1).send(Pkt::s(ACK, 201, 121)); // the server got it
    let out = s.finish();
    let (r, b) = &out[0];
    let c = r.dir(Dir::ToServer);
    assert_eq!(c.out_of_order, 1);
    assert_eq!(c.lost_segments, 2);
    // Bytes are the sequence space advanced: the hole the capture missed counts (the sender sent it).
    assert_eq!(c.bytes, 20);
    assert_eq!(c.retransmissions, 0);
    assert_eq!(b.data[0], b"aaaabbbbcccceeee");
    assert_eq!(b.gaps[0], 4);
}

#[test]
fn duplicate_acks_and_fast_retransmit() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    for i in 0..4u32 {
        s.after(1).send(Pkt::s(PSH, 201 + i * 10, 101).data(&[b'z'; 10]));
    }
    s.after(1).send(Pkt::c(ACK, 101, 211));
    s.after(1).send(Pkt::c(ACK, 101, 211));
    s.after(1).send(Pkt::c(ACK, 101, 211));
    s.after(1).send(Pkt::s(PSH, 211, 101).data(&[b'z'; 10]));
    let out = s.finish();
    let r = &out[0].0;
    assert_eq!(r.dir(Dir::ToServer).dup_acks, 2);
    assert_eq!(r.dir(Dir::ToClient).fast_retransmissions, 1);
}

#[test]
fn rst_fingerprint_compares_with_the_same_side() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(1).send(Pkt::s(PSH, 201, 101).data(b"hi"));
    s.after(1).send(Pkt::c(ACK, 101, 203));
    s.after(1).send(Pkt {
        ttl: 64,
        ..Pkt::s(RST, 203, 0)
    });
    let out = s.finish();
    let r = &out[0].0.dir(Dir::ToClient).rsts[0];
    assert_eq!(r.ttl, 64);
    assert_eq!(r.before.ttl_mode, Some(63));
    assert_eq!(r.seq_check, SeqCheck::Exact);
    assert!(!r.with_ack);
}

#[test]
fn table_cap_evicts_the_least_recently_active() {
    let mut s = Sim::with_table_cap(2);
    for port in 0..3u16 {
        s.after(1).send(Pkt {
            cport: 1000 + port,
            ..Pkt::c(SYN, 1, 0)
        });
    }
    assert_eq!(s.t.stats().evicted_table_full, 1);
    assert_eq!(s.out[0].0.client.port(), 1000);
    assert_eq!(s.out[0].0.end_reason, EndReason::TableFull);
}

#[test]
fn arbitrary_numbers_do_not_panic() {
    let mut s = Sim::new();
    let vals = [0u32, 1, 0x7fff_ffff, 0x8000_0000, 0x8000_0001, u32::MAX];
    for &a in &vals {
        for &b in &vals {
            for flags in [SYN, SYN | ACK, ACK, PSH, FIN, RST, RST | ACK, 0xfff] {
                s.after(0).send(Pkt::c(flags, a, b).data(b"x"));
                s.after(0).send(Pkt::s(flags, b, a).win(0));
            }
        }
    }
    let _ = s.finish();
}

#[test]
fn icmp_errors_are_matched_to_their_connection_through_the_quoted_header() {
    use crate::decode::{IcmpKind, IcmpMessage, QuotedTcp};
    let mut s = Sim::new();
    s.send(Pkt::c(SYN, 100, 0));
    // A router (not an endpoint) says host unreachable about the client's SYN.
    let router = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 254));
    let ip = IpHeader {
        src: router,
        dst: C,
        ttl: 64,
        id: Some(1),
        dont_fragment: false,
        tos: 0,
        fragment: Fragment::None,
    };
    let msg = IcmpMessage {
        v6: false,
        icmp_type: 3,
        code: 1,
        kind: IcmpKind::Unreachable,
        quoted: Some(QuotedTcp {
            src: C,
            dst: S,
            src_port: 40000,
            dst_port: 80,
            seq: Some(SeqNum(100)),
        }),
    };
    let now = s.now;
    let mark = |ms: i64, frame: u64| Mark {
        ts: now.plus(Dur::from_millis(ms)),
        at: PacketRef { file: 0, frame },
    };
    s.t.icmp(&ip, &msg, mark(1, 2));
    // An error quoting an unknown connection is counted, not attached anywhere.
    let other = IcmpMessage {
        quoted: Some(QuotedTcp {
            src_port: 1,
            ..msg.quoted.unwrap_or_else(|| unreachable!())
        }),
        ..msg
    };
    s.t.icmp(&ip, &other, mark(2, 3));
    assert_eq!(s.t.stats().icmp_matched, 1);
    assert_eq!(s.t.stats().icmp_unmatched, 1);
    let out = s.finish();
    let icmp = out[0].0.events.iter().find_map(|e| match &e.kind {
        TcpEventKind::Icmp { from, text, .. } => Some((*from, text.clone(), e.dir)),
        _ => None,
    });
    let (from, text, dir) = icmp.expect("icmp event");
    assert_eq!(from, router);
    assert!(text.starts_with("host unreachable"), "{text}");
    assert_eq!(dir, Some(Dir::ToServer), "the error is about the client's packet");
}

#[test]
fn table_cap_evicts_by_last_activity_not_age() {
    // The table keeps no activity order until it is first full; then it must still pick the connection quiet
    // the longest (ties: the lower id).
    let mut s = Sim::with_table_cap(3);
    for port in 0..3u16 {
        s.after(1).send(Pkt {
            cport: 1000 + port,
            ..Pkt::c(SYN, 1, 0)
        });
    }
    // 1000 is the oldest but speaks again; 1001 is now the quietest.
    s.after(1).send(Pkt {
        cport: 1000,
        ..Pkt::c(SYN, 1, 0)
    });
    s.after(1).send(Pkt {
        cport: 1003,
        ..Pkt::c(SYN, 1, 0)
    });
    // The order is kept from then on: 1002, then 1000.
    s.after(1).send(Pkt {
        cport: 1004,
        ..Pkt::c(SYN, 1, 0)
    });
    s.after(1).send(Pkt {
        cport: 1005,
        ..Pkt::c(SYN, 1, 0)
    });
    let evicted: Vec<u16> = s.out.iter().map(|(r, _)| r.client.port()).collect();
    assert_eq!(evicted, [1001, 1002, 1000]);
    assert_eq!(s.t.stats().evicted_table_full, 3);
    assert_eq!(s.t.open_connections(), 3);
}

#[test]
fn late_packets_count_for_fifteen_seconds_after_the_record() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(1).send(Pkt::c(FIN, 101, 201));
    s.after(1).send(Pkt::s(FIN, 201, 102));
    s.after(1).send(Pkt::c(ACK, 102, 202));
    // Linger (1 s here) runs out: the record is made, the 4-tuple remembered.
    s.after(1500).send(Pkt {
        cport: 50000,
        ..Pkt::c(SYN, 1, 0)
    });
    assert_eq!(s.out.len(), 1);
    s.after(5000).send(Pkt::s(FIN, 201, 102));
    assert_eq!(s.t.stats().late_packets, 1);
    assert_eq!(s.t.stats().connections, 2);
    // Many other connections come and go meanwhile (tombstones are swept as time passes).
    for i in 0..3000u16 {
        s.after(3).send(Pkt {
            cport: 10000 + i,
            ..Pkt::c(RST, 1, 0)
        });
    }
    assert_eq!(s.t.stats().late_packets, 1);
    // 15 s after the record: the same 4-tuple is a new connection, whatever the packet.
    s.after(1000).send(Pkt::s(ACK, 201, 102));
    assert_eq!(s.t.stats().late_packets, 1);
    assert_eq!(s.t.stats().connections, 3003);
    let out = s.finish();
    assert_eq!(
        out.iter()
            .filter(|(r, _)| r.client.port() == 40000 || r.server.port() == 40000)
            .count(),
        2
    );
}

#[test]
fn a_syn_reopens_a_remembered_four_tuple() {
    let mut s = Sim::new();
    s.handshake(100, 200);
    s.after(1).send(Pkt::c(RST, 101, 0));
    s.after(1500).send(Pkt {
        cport: 50000,
        ..Pkt::c(SYN, 1, 0)
    });
    s.after(10).handshake(5000, 6000);
    assert_eq!(s.t.stats().late_packets, 0);
    let out = s.finish();
    assert_eq!(out.len(), 3);
    assert!(out[2].0.handshake.completed());
}

#[test]
fn reassembly_holds_what_the_receivers_window_allows_beyond_a_hole() {
    // Regression (benchmark workload): a fast HTTP/2 download with a 3 MiB window, one segment missing for a
    // while; 1 MiB arrives after the hole before its retransmission does. The fixed 256 KiB cap gave up the hole
    // and told HTTP/2 of a gap in a stream the capture holds whole.
    let mut s = Sim::new();
    s.send(Pkt::c(SYN, 100, 0).wscale(7));
    s.after(1).send(Pkt::s(SYN | ACK, 200, 101).wscale(7));
    s.after(1).send(Pkt::c(ACK, 101, 201).win(24_000)); // 24,000 << 7: ~3 MiB
    let seg = vec![7u8; 1000];
    let lost = 201u32;
    for i in 1..=1024u32 {
        s.after(0).send(Pkt::s(PSH, lost + i * 1000, 101).data(&seg));
    }
    s.after(1).send(Pkt::s(PSH, lost, 101).data(&seg));
    let out = s.finish();
    let (_, b) = &out[0];
    assert_eq!(b.gaps, [0, 0]);
    assert_eq!(b.data[1].len(), 1025 * 1000);
}
