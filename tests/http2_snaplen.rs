//! Captures cut by the snapshot length (`tcpdump -s 80`): every segment keeps its first few payload bytes and
//! the TCP stage announces the rest as a gap that ends at the segment's end. tshark still shows the first frame
//! header of every segment ("[Packet size limited during capture]"); so must we (regression:
//! `too_many_pings-snaplen-*` showed no frame at all, the preface being cut at 14 bytes).

mod http2_support;

use http2_support::*;
use whoclosed::http2::{AppProtocol, FrameRecord, H2Config, H2EventKind, H2Record, StreamAnalyzer};
use whoclosed::tcp::{Dir, StreamSink};

const C: Dir = Dir::ToServer;
const S: Dir = Dir::ToClient;

/// Feeds each segment cut to `keep` payload bytes, the rest announced as a gap (as the TCP stage does).
fn run_cut(steps: &[(Dir, Vec<u8>, u64)], keep: usize) -> (H2Record, Vec<FrameRecord>) {
    let mut a = StreamAnalyzer::new(&H2Config {
        keep_frames: true,
        ..H2Config::default()
    });
    for (dir, bytes, no) in steps {
        let m = meta(*no, *no as i64 * 10);
        let k = keep.min(bytes.len());
        a.on_data(*dir, &bytes[..k], m);
        if bytes.len() > k {
            a.on_gap(*dir, (bytes.len() - k) as u64, m);
        }
    }
    a.close();
    let frames = a.drain_frames().collect();
    (a.finish(), frames)
}

/// The frames a segment holds: (offset of the header, type, flags, length, stream id).
fn frames_in(seg: &[u8]) -> Vec<(usize, u8, u8, u32, u32)> {
    let mut out = Vec::new();
    let mut pos = if seg.starts_with(PREFACE) { PREFACE.len() } else { 0 };
    while pos + 9 <= seg.len() {
        let h = &seg[pos..pos + 9];
        let len = u32::from_be_bytes([0, h[0], h[1], h[2]]);
        let sid = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
        out.push((pos, h[3], h[4], len, sid));
        pos += 9 + len as usize;
    }
    out
}

/// A gRPC connection: preface and settings, a unary call, keepalive PINGs, then the server's PING ACK and
/// GOAWAY ENHANCE_YOUR_CALM "too_many_pings" in one segment (as grpc-go sends them).
fn conversation() -> Vec<(Dir, Vec<u8>, u64)> {
    let mut ce = Enc::default();
    let mut se = Enc::default();
    let mut c1 = PREFACE.to_vec();
    c1.extend(settings(&[(2, 0), (4, 4_194_304)]));
    c1.extend(frame(8, 0, 0, &[0, 0x3f, 0, 1]));
    let mut s1 = settings(&[(5, 16384), (1, 8192), (3, 100), (4, 65535)]);
    s1.extend(frame(8, 0, 0, &[0, 0, 0x10, 0]));
    let mut c2 = headers(
        1,
        false,
        &grpc_request(&mut ce, "/greet.GreetService/Greet", Some("2S")),
    );
    c2.extend(data(1, true, &grpc_msg(b"hello")));
    let mut s2 = headers(1, false, &se.indexed(8).add("content-type", "application/grpc").take());
    s2.extend(data(1, false, &grpc_msg(b"hi there")));
    s2.extend(headers(1, true, &se.add("grpc-status", "0").take()));
    let mut steps = vec![
        (C, c1, 4),
        (S, s1, 6),
        (C, frame(4, 1, 0, &[]), 8),
        (S, frame(4, 1, 0, &[]), 9),
        (C, c2, 10),
        (S, s2, 11),
    ];
    for i in 0..4u64 {
        let opaque = 0xaa02_0df4_b500_0000 + i;
        steps.push((C, ping(false, opaque), 20 + 2 * i));
        let mut ack = ping(true, opaque);
        if i == 3 {
            ack.extend(goaway(1, 0xb, b"too_many_pings"));
        }
        steps.push((S, ack, 21 + 2 * i));
    }
    steps
}

#[test]
fn snaplen_cut_segments_show_the_first_frame_header_of_every_segment() {
    let steps = conversation();
    for keep in [8, 9, 10, 14, 20, 30, 40, 60, 100, 1000] {
        let (rec, frames) = run_cut(&steps, keep);
        assert!(rec.protocol.is_http2(), "keep {keep}: {:?}", rec.protocol);
        // What must be shown: every frame with at least 5 header bytes captured (a frame the cut went through
        // ends the segment's frames).
        let mut want = Vec::new();
        for (dir, seg, no) in &steps {
            for (off, kind, flags, len, sid) in frames_in(seg) {
                if off + 5 > keep {
                    break;
                }
                let cut = off + 9 + len as usize > keep;
                let sid_seen = if off + 9 <= keep { sid } else { 0 };
                want.push((*dir, *no, kind, flags, len, sid_seen, cut));
            }
        }
        let got: Vec<_> = frames
            .iter()
            .map(|f| {
                let kind = match f.frame_type.as_str() {
                    "DATA" => 0,
                    "HEADERS" => 1,
                    "SETTINGS" => 4,
                    "PING" => 6,
                    "GOAWAY" => 7,
                    "WINDOW_UPDATE" => 8,
                    other => panic!("unexpected {other}"),
                };
                (
                    f.direction,
                    f.at.frame,
                    kind,
                    f.flags,
                    f.length,
                    f.stream_id,
                    f.details.get("truncated").is_some(),
                )
            })
            .collect();
        assert_eq!(got, want, "keep {keep}");
        assert!(
            frames.iter().all(|f| f.details.get("malformed").is_none()),
            "keep {keep}: a cut frame is not malformed"
        );
        assert_eq!(rec.summary.malformed, 0, "keep {keep}");
        // Every PING counted, every one answered (ACKs matched on the opaque bytes captured).
        assert_eq!(rec.summary.pings_total[C.index()], 4, "keep {keep}");
        assert_eq!(rec.summary.pings_unanswered, 0, "keep {keep}");
        assert!(rec.summary.pings.iter().all(|p| p.ack.is_some()), "keep {keep}");
        let known = (keep.saturating_sub(9)).min(8) as u8;
        assert!(rec.summary.pings.iter().all(|p| p.opaque_len == known), "keep {keep}");
    }
}

#[test]
fn snaplen_cut_preface_is_taken_and_said() {
    for keep in [8, 14, 23] {
        let (rec, _) = run_cut(&conversation(), keep);
        assert_eq!(rec.protocol, AppProtocol::Http2Preface);
        assert_eq!(rec.summary.http2_client, Some(C));
        assert!(rec.events.iter().any(|e| matches!(&e.kind, H2EventKind::Note { what }
            if what.contains("preface is cut short") && what.contains(&format!("{keep} of 24")))));
    }
    // Seven bytes could be anything: not taken.
    let (rec, frames) = run_cut(&[(C, PREFACE.to_vec(), 1)], 7);
    assert!(!rec.protocol.is_http2());
    assert!(frames.is_empty());
}

#[test]
fn snaplen_cut_goaway_keeps_the_fields_captured() {
    // The GOAWAY first in its segment: 9 header bytes, then last stream id, error code, debug data.
    for (keep, last, error) in [
        (11, None, None),
        (13, Some(1), None),
        (17, Some(1), Some(0xb)),
        (20, Some(1), Some(0xb)),
    ] {
        let steps = vec![(C, PREFACE.to_vec(), 1), (S, goaway(1, 0xb, b"too_many_pings"), 2)];
        let (rec, frames) = run_cut(&steps, keep);
        let g = &rec.summary.goaways[0];
        assert!(g.payload_truncated, "keep {keep}");
        assert_eq!(g.last_stream_id, last, "keep {keep}");
        assert_eq!(g.error.map(|e| e.0), error, "keep {keep}");
        assert_eq!(g.debug_len, 14);
        assert_eq!(g.debug, b"too_many_pings".get(..keep.saturating_sub(17)).unwrap());
        let f = &frames[0];
        assert_eq!(
            f.details.get("last_stream_id").and_then(|v| v.as_u64()),
            last.map(u64::from)
        );
        assert_eq!(
            f.details.get("error_code").and_then(|v| v.as_u64()),
            error.map(u64::from)
        );
    }
}

#[test]
fn snaplen_loss_after_the_last_frame_is_counted() {
    // The server's last segment holds a PING ACK and a GOAWAY of 31 bytes: with 14 bytes captured the GOAWAY
    // is not seen at all, but its 31 bytes are counted after the PING ACK.
    let (rec, _) = run_cut(&conversation(), 14);
    let (at, _, n) = rec.summary.lost_after_last_frame[S.index()].expect("bytes lost at the end");
    assert_eq!((at.frame, n), (27, 31));
    assert_eq!(rec.summary.lost_after_last_frame[C.index()], None);
    let (rec, _) = run_cut(&conversation(), 100_000);
    assert_eq!(rec.summary.lost_after_last_frame, [None, None]);
}

#[test]
fn server_frame_cut_before_the_client_preface_is_kept_until_the_preface_comes() {
    // IPv6 on `any` with snaplen 100: 8 payload bytes. The server's SETTINGS comes before the client preface.
    let s1 = settings(&[(5, 16384), (3, 100), (4, 65535), (6, 16384)]);
    let steps = vec![
        (S, s1, 4),
        (C, PREFACE.iter().copied().chain(settings(&[])).collect(), 6),
        (S, frame(4, 1, 0, &[]), 8),
        (C, frame(4, 1, 0, &[]), 9),
        (C, ping(false, 1), 11),
        (S, ping(true, 1), 13),
    ];
    let (rec, frames) = run_cut(&steps, 8);
    let got: Vec<_> = frames
        .iter()
        .map(|f| {
            (
                f.at.frame,
                f.frame_type.as_str(),
                f.flags,
                f.details["header_captured"].as_u64(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (4, "SETTINGS", 0, Some(8)),
            (8, "SETTINGS", 1, Some(8)),
            (9, "SETTINGS", 1, Some(8)),
            (11, "PING", 0, Some(8)),
            (13, "PING", 1, Some(8)),
        ]
    );
    assert_eq!(rec.protocol, AppProtocol::Http2Preface);
    assert_eq!(rec.summary.pings_unanswered, 0);
    // No resynchronisation is claimed for the server's first frame.
    assert!(
        !rec.events
            .iter()
            .any(|e| e.at.frame == 4 && matches!(e.kind, H2EventKind::Resync { .. }))
    );
}

#[test]
fn cut_bytes_of_a_connection_never_recognised_are_not_frames() {
    // A plausible-looking 8 bytes then a gap, then more bytes from the same side before anything says HTTP/2:
    // dropped, not shown.
    let mut junk = vec![0, 0, 8, 6, 0, 0, 0, 0];
    junk.extend([0x41; 40]);
    let steps = vec![
        (S, junk.clone(), 1),
        (S, junk.clone(), 2),
        (C, b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(), 3),
    ];
    let (rec, frames) = run_cut(&steps, 8);
    assert!(frames.is_empty());
    assert!(!rec.protocol.is_http2());
    // Same, ended by the capture.
    let (rec, frames) = run_cut(&[(S, junk, 1)], 8);
    assert!(frames.is_empty());
    assert!(!rec.protocol.is_http2());
}

#[test]
fn a_cut_header_of_a_stream_frame_does_not_act_on_a_stream() {
    // DATA with END_STREAM whose stream id's last byte was not captured: shown, cut, but stream 1 stays open.
    let mut ce = Enc::default();
    let steps = [
        (C, PREFACE.to_vec(), 1),
        (C, headers(1, false, &grpc_request(&mut ce, "/a.B/C", None)), 2),
        (C, data(1, true, &grpc_msg(b"x")), 3),
    ];
    let mut a = StreamAnalyzer::new(&H2Config {
        keep_frames: true,
        ..H2Config::default()
    });
    for (dir, bytes, no) in &steps[..2] {
        a.on_data(*dir, bytes, meta(*no, 0));
    }
    a.on_data(C, &steps[2].1[..8], meta(3, 0));
    a.on_gap(C, (steps[2].1.len() - 8) as u64, meta(3, 0));
    a.close();
    let frames: Vec<_> = a.drain_frames().collect();
    let d = frames.last().unwrap();
    assert_eq!((d.frame_type.as_str(), d.stream_id), ("DATA", 0));
    assert_eq!(d.details["header_captured"], 8);
    assert!(d.details.get("malformed").is_none());
    let rec = a.finish();
    assert_eq!(rec.summary.malformed, 0);
    assert_eq!((rec.summary.streams_opened, rec.summary.streams_active), (1, 1));
}

#[test]
fn snaplen_cut_segments_split_anywhere_give_the_same_frames() {
    // The captured bytes of a segment may reach us in pieces (reassembly joins and splits them): same result.
    let steps = conversation();
    for keep in [8, 12, 14, 30] {
        let (want_rec, want) = run_cut(&steps, keep);
        let mut rng = Rng(keep as u64 | 1);
        for _ in 0..50 {
            let mut a = StreamAnalyzer::new(&H2Config {
                keep_frames: true,
                ..H2Config::default()
            });
            for (dir, bytes, no) in &steps {
                let m = meta(*no, *no as i64 * 10);
                let k = keep.min(bytes.len());
                let mut rest = &bytes[..k];
                while !rest.is_empty() {
                    let n = (1 + rng.below(rest.len() as u64) as usize).min(rest.len());
                    a.on_data(*dir, &rest[..n], m);
                    rest = &rest[n..];
                }
                if bytes.len() > k {
                    a.on_gap(*dir, (bytes.len() - k) as u64, m);
                }
            }
            a.close();
            let got: Vec<_> = a.drain_frames().collect();
            assert_eq!(got, want, "keep {keep}");
            assert_eq!(a.finish().summary, want_rec.summary, "keep {keep}");
        }
    }
}

#[test]
fn mutated_snaplen_captures_never_panic() {
    let rounds: u64 = std::env::var("H2_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(400);
    let base = conversation();
    let mut rng = Rng(0x5a9_1e4);
    for _ in 0..rounds {
        let mut steps = base.clone();
        if rng.below(3) == 0 {
            // The server speaks first.
            let i = 1 + rng.below(steps.len() as u64 - 1) as usize;
            let s = steps.remove(i);
            steps.insert(0, s);
        }
        for (_, bytes, _) in steps.iter_mut() {
            for _ in 0..rng.below(3) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len() as u64) as usize;
                bytes[at] = rng.next() as u8;
            }
        }
        let keep = 1 + rng.below(40) as usize;
        let mut a = StreamAnalyzer::new(&H2Config {
            keep_frames: rng.below(2) == 0,
            ..H2Config::default()
        });
        for (dir, bytes, no) in &steps {
            let m = meta(*no, 0);
            let k = keep.min(bytes.len());
            a.on_data(*dir, &bytes[..k], m);
            if bytes.len() > k || rng.below(5) == 0 {
                a.on_gap(*dir, (bytes.len() - k) as u64 + rng.below(3), m);
            }
            if rng.below(30) == 0 {
                a.on_end(*dir, m);
            }
        }
        let _ = a.drain_frames().count();
        let rec = a.finish();
        assert!(rec.events.len() < 2000);
    }
}
