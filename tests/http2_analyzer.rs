//! End-to-end tests of the HTTP/2 stage on synthetic byte streams: detection, frame splitting at every
//! boundary, HPACK across fragments, gaps, resynchronisation, limits, gRPC facts.

mod http2_support;

use http2_support::*;
use whoclosed::http2::{AppProtocol, ErrorCode, H2Config, H2EventKind, StreamAnalyzer};
use whoclosed::tcp::{Dir, StreamSink};
use whoclosed::ts::Dur;

const C: Dir = Dir::ToServer;
const S: Dir = Dir::ToClient;

/// A gRPC unary call with keepalive PINGs, ending in a GOAWAY from the server.
fn grpc_conversation() -> Vec<(Dir, Vec<u8>, u64)> {
    let mut ce = Enc::default();
    let mut se = Enc::default();
    let mut c1 = PREFACE.to_vec();
    c1.extend(settings(&[(2, 0), (4, 4_194_304)]));
    let mut s1 = settings(&[(5, 16384), (1, 8192)]);
    s1.extend(frame(4, 1, 0, &[]));
    let mut c2 = frame(4, 1, 0, &[]);
    c2.extend(headers(
        1,
        false,
        &grpc_request(&mut ce, "/greet.GreetService/Greet", Some("2S")),
    ));
    c2.extend(data(1, true, &grpc_msg(b"hello")));
    let mut s2 = headers(1, false, &se.indexed(8).add("content-type", "application/grpc").take());
    s2.extend(data(1, false, &grpc_msg(b"hi there")));
    s2.extend(headers(
        1,
        true,
        &se.add("grpc-status", "0").add("grpc-message", "").take(),
    ));
    let c3 = ping(false, 0x0102_0304_0506_0708);
    let s3 = ping(true, 0x0102_0304_0506_0708);
    let mut c4 = headers(
        3,
        false,
        &grpc_request(&mut ce, "/greet.GreetService/Slow", Some("100m")),
    );
    c4.extend(data(3, true, &grpc_msg(&[7; 100])));
    let c5 = rst(3, 8);
    let s6 = goaway(3, 0xb, b"too_many_pings");
    vec![
        (C, c1, 4),
        (S, s1, 6),
        (C, c2, 8),
        (S, s2, 10),
        (C, c3, 12),
        (S, s3, 13),
        (C, c4, 20),
        (C, c5, 40),
        (S, s6, 50),
    ]
}

#[test]
fn every_chunking_gives_the_same_frames_and_summary() {
    let steps = grpc_conversation();
    let (base, base_frames) = run(&steps, Cut::Whole, true);
    assert_eq!(base.protocol, AppProtocol::Http2Preface);
    assert_eq!(base_frames.len(), 15, "{base_frames:#?}");
    for cut in [
        Cut::Bytes(1),
        Cut::Bytes(2),
        Cut::Bytes(7),
        Cut::Bytes(9),
        Cut::Bytes(10),
    ]
    .into_iter()
    .chain((1..40).map(Cut::Random))
    {
        let (rec, frames) = run(&steps, cut, true);
        assert_eq!(frames, base_frames);
        assert_eq!(rec, base);
    }
}

#[test]
fn grpc_call_facts() {
    let (rec, frames) = run(&grpc_conversation(), Cut::Whole, true);
    let s = &rec.summary;
    assert_eq!(s.frames, [8, 7]);
    assert_eq!(s.streams_opened, 2);
    assert_eq!(s.streams_closed, 2);
    assert_eq!(s.grpc_calls, 2);
    assert_eq!(s.grpc_status, vec![(0, 1)]);
    assert_eq!(s.grpc_messages, [2, 1]);
    assert_eq!(s.deadline_cancels, 1);
    assert_eq!(s.rst_streams.len(), 1);
    assert!(s.rst_streams[0].after_deadline);
    assert_eq!(s.rst_streams[0].error, ErrorCode::CANCEL);
    assert_eq!(s.pings.len(), 1);
    assert_eq!(s.pings[0].ack.map(|(at, _)| at.frame), Some(13));
    assert_eq!(s.pings_unanswered, 0);
    assert_eq!(s.goaways.len(), 1);
    let g = &s.goaways[0];
    assert_eq!(
        (g.dir, g.last_stream_id, g.error),
        (S, Some(3), Some(ErrorCode::ENHANCE_YOUR_CALM))
    );
    assert_eq!(g.debug, b"too_many_pings");
    assert!(!g.payload_truncated);
    assert_eq!(s.last_data_or_headers[C.index()].map(|(at, _)| at.frame), Some(20));
    assert_eq!(s.settings[S.index()], vec![(1, 8192), (5, 16384)]);
    assert_eq!(s.http2_client, Some(C));
    assert_eq!(s.malformed, 0, "{:#?}", rec.events);
    assert!(!s.hpack_out_of_sync);
    // Events in order, with the round trip and the stream summaries.
    let kinds: Vec<String> = rec
        .events
        .iter()
        .map(|e| match &e.kind {
            H2EventKind::StreamOpened { summary, .. } | H2EventKind::StreamEnded { summary, .. } => summary.clone(),
            H2EventKind::Ping { ack, rtt, .. } => format!("ping ack={ack} rtt={rtt:?}"),
            k => format!("{k:?}").split([' ', '(', '{']).next().unwrap_or("").to_string(),
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "Detected",
            "Settings",
            "Settings",
            "Settings",
            "Settings",
            "POST /greet.GreetService/Greet (grpc-timeout 2S)",
            "200, grpc-status 0 OK, messages 1/1",
            "ping ack=false rtt=None",
            &format!("ping ack=true rtt={:?}", Some(Dur::from_millis(10))),
            "POST /greet.GreetService/Slow (grpc-timeout 100m)",
            "RstStream",
            "GoAway",
        ]
    );
    // The frame records carry the decoded details.
    let h = frames.iter().find(|f| f.frame_type == "HEADERS").unwrap();
    assert_eq!(
        h.details["headers"][2],
        serde_json::json!([":path", "/greet.GreetService/Greet"])
    );
    let g = frames.iter().find(|f| f.frame_type == "GOAWAY").unwrap();
    assert_eq!(g.details["error"], "ENHANCE_YOUR_CALM");
    assert_eq!(g.details["debug"], "too_many_pings");
    assert_eq!(g.at.frame, 50);
    let p = frames.iter().find(|f| f.frame_type == "PING").unwrap();
    assert_eq!(p.details["opaque"], "0102030405060708");
}

#[test]
fn huge_goaway_and_data_are_streamed_not_held() {
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[]));
    c.extend(headers(
        1,
        false,
        &Enc::default().indexed(3).indexed(6).indexed(4).take(),
    ));
    // A DATA frame of 16 MiB - 1 and a GOAWAY with as much debug data.
    let big = vec![0x41u8; (1 << 24) - 1];
    c.extend(data(1, false, &big));
    c.extend(goaway(1, 2, &big[8..]));
    let steps = vec![(C, c, 1)];
    for cut in [Cut::Bytes(1460), Cut::Bytes(65536), Cut::Whole] {
        let (rec, frames) = run(&steps, cut, true);
        let s = &rec.summary;
        assert_eq!(s.data_bytes[0], (1 << 24) - 1);
        assert_eq!(s.goaways[0].debug.len(), 4096);
        assert_eq!(s.goaways[0].debug_len, (1 << 24) - 1 - 8);
        assert_eq!(s.goaways[0].error, Some(ErrorCode::INTERNAL_ERROR));
        assert!(
            s.limits_hit.iter().any(|l| l.contains("GOAWAY debug data")),
            "{:?}",
            s.limits_hit
        );
        assert_eq!(frames.len(), 4);
        // Both frames are above the default SETTINGS_MAX_FRAME_SIZE: reported, still decoded.
        assert_eq!(s.malformed, 2);
    }
}

#[test]
fn goaway_cut_by_a_gap_keeps_its_visible_fields() {
    let mut a = StreamAnalyzer::new(&H2Config {
        keep_frames: true,
        ..H2Config::default()
    });
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[]));
    a.on_data(C, &c, meta(1, 0));
    a.on_data(S, &settings(&[]), meta(2, 1));
    let g = goaway(7, 0xb, b"too_many_pings");
    // Snaplen cut the last 10 bytes of the segment.
    a.on_data(S, &g[..g.len() - 10], meta(3, 2));
    a.on_gap(S, 10, meta(3, 2));
    a.on_end(S, meta(4, 3));
    let frames: Vec<_> = a.drain_frames().collect();
    let rec = a.finish();
    let g = &rec.summary.goaways[0];
    assert!(g.payload_truncated);
    assert_eq!(
        (g.last_stream_id, g.error),
        (Some(7), Some(ErrorCode::ENHANCE_YOUR_CALM))
    );
    assert_eq!(g.debug, b"too_");
    assert_eq!(g.at.frame, 3);
    assert_eq!(rec.summary.gaps, 1);
    assert_eq!(rec.summary.resyncs, 0);
    assert_eq!(frames.last().unwrap().details["truncated"], true);

    // Cut inside the error code: only the last stream id is known.
    let mut a = StreamAnalyzer::new(&H2Config::default());
    a.on_data(C, PREFACE, meta(1, 0));
    let g = goaway(7, 0xb, b"");
    a.on_data(S, &g[..15], meta(2, 0));
    a.on_end(S, meta(3, 0));
    let rec = a.finish();
    let g = &rec.summary.goaways[0];
    assert_eq!((g.last_stream_id, g.error, g.payload_truncated), (Some(7), None, true));
}

#[test]
fn gap_inside_a_data_frame_keeps_sync_and_a_gap_across_frames_resyncs() {
    let mut a = StreamAnalyzer::new(&H2Config {
        keep_frames: true,
        ..H2Config::default()
    });
    a.on_data(C, PREFACE, meta(1, 0));
    let d = data(1, false, &[0; 1000]);
    a.on_data(C, &d[..100], meta(2, 0));
    a.on_gap(C, 500, meta(3, 0));
    a.on_data(C, &d[600..], meta(4, 0));
    a.on_data(C, &ping(false, 5), meta(5, 0));
    let frames: Vec<_> = a.drain_frames().collect();
    assert_eq!(
        frames.iter().map(|f| f.frame_type.as_str()).collect::<Vec<_>>(),
        ["DATA", "PING"]
    );
    assert_eq!(frames[0].at.frame, 4);
    assert_eq!(frames[0].details["truncated"], true);
    // Now lose the end of a frame and the start of the next ones: resync on the next two frames.
    let w = frame(8, 0, 0, &[0, 0, 1, 0]);
    a.on_data(C, &w[..5], meta(6, 0));
    a.on_gap(C, 30, meta(7, 0));
    let mut tail = vec![0xaa; 3];
    tail.extend(ping(false, 6));
    tail.extend(ping(false, 7));
    // Five header bytes give the frame's length: it is shown, cut, and the gap goes past its end.
    let cut: Vec<_> = a.drain_frames().collect();
    assert_eq!(cut.len(), 1);
    assert_eq!((cut[0].frame_type.as_str(), cut[0].at.frame), ("WINDOW_UPDATE", 7));
    assert_eq!(cut[0].details["header_captured"], 5);
    assert_eq!(cut[0].details["truncated"], true);
    a.on_data(C, &tail, meta(8, 0));
    // Junk at the segment start after the gap: two plausible frames are not enough to trust the boundary, a
    // third confirms it.
    assert_eq!(a.drain_frames().count(), 0);
    a.on_data(C, &ping(false, 8), meta(9, 0));
    let frames: Vec<_> = a.drain_frames().collect();
    assert_eq!(
        frames.iter().map(|f| f.frame_type.as_str()).collect::<Vec<_>>(),
        ["PING", "PING", "PING"]
    );
    assert_eq!(frames.iter().map(|f| f.at.frame).collect::<Vec<_>>(), [8, 8, 9]);
    let rec = a.finish();
    assert_eq!((rec.summary.gaps, rec.summary.resyncs), (2, 1));
    assert!(rec.events.iter().any(|e| e.kind == H2EventKind::Resync { skipped: 3 }));
    assert!(rec.summary.hpack_out_of_sync);
}

#[test]
fn mid_connection_capture_resyncs_and_marks_unknown_dynamic_entries() {
    // The capture starts inside a DATA frame; the next frames reference dynamic entries never seen.
    let mut c = vec![0x55; 37];
    c.extend(frame(8, 0, 0, &[0, 0, 0, 10]));
    c.extend(headers(5, true, &[0x82, 0x86, 0xbe, 0x84]));
    let (rec, frames) = run(
        &[(C, c, 1), (S, ping(false, 1), 2), (S, ping(false, 2), 3)],
        Cut::Whole,
        true,
    );
    assert_eq!(rec.protocol, AppProtocol::Http2Resync);
    assert_eq!(frames.len(), 4);
    assert_eq!(
        frames[1].details["headers"][2],
        serde_json::json!(["<unknown dynamic index 62>", "<unknown dynamic index 62>"])
    );
    assert!(rec.summary.hpack_out_of_sync);
    assert_eq!(rec.summary.resyncs, 1);
    assert_eq!(rec.summary.streams_opened, 1);
}

#[test]
fn tls_and_http1_are_recognised_and_left_alone() {
    let hello = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0];
    let (rec, frames) = run(&[(C, hello.to_vec(), 1), (S, settings(&[]), 2)], Cut::Bytes(1), true);
    assert_eq!(rec.protocol, AppProtocol::Tls);
    assert!(frames.is_empty());
    let (rec, _) = run(
        &[
            (C, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), 1),
            (S, b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), 2),
        ],
        Cut::Whole,
        false,
    );
    assert_eq!(rec.protocol, AppProtocol::Other);
}

#[test]
fn h2c_upgrade() {
    let req = b"GET /index HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n";
    let resp = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    let mut s = resp.to_vec();
    s.extend(settings(&[(3, 100)]));
    s.extend(headers(1, false, &Enc::default().indexed(8).take()));
    s.extend(data(1, true, b"hello"));
    let mut c = PREFACE.to_vec();
    c.extend(settings(&[]));
    for cut in [Cut::Whole, Cut::Bytes(3)] {
        let (rec, frames) = run(&[(C, req.to_vec(), 1), (S, s.clone(), 2), (C, c.clone(), 3)], cut, true);
        assert_eq!(rec.protocol, AppProtocol::Http2Upgrade);
        assert_eq!(frames.len(), 4);
        assert_eq!((rec.summary.streams_opened, rec.summary.streams_closed), (1, 1));
        assert!(rec.events.iter().any(|e| e.kind
            == H2EventKind::StreamEnded {
                stream_id: 1,
                summary: "200".into()
            }));
    }
}

#[test]
fn preface_from_the_tcp_server_is_handled_and_noted() {
    let mut s = PREFACE.to_vec();
    s.extend(settings(&[]));
    s.extend(headers(
        1,
        true,
        &Enc::default().indexed(2).indexed(6).indexed(4).take(),
    ));
    let (rec, frames) = run(
        &[(C, settings(&[]), 1), (S, s, 2), (C, headers(1, true, &[0x88]), 3)],
        Cut::Whole,
        true,
    );
    assert_eq!(rec.protocol, AppProtocol::Http2Preface);
    assert_eq!(rec.summary.http2_client, Some(S));
    assert_eq!(frames.len(), 4);
    assert_eq!(frames[0].direction, C);
    assert!(
        rec.events
            .iter()
            .any(|e| matches!(&e.kind, H2EventKind::Note { what } if what.contains("preface")))
    );
    assert_eq!(rec.summary.streams_closed, 1);
}

#[test]
fn hpack_bomb_and_endless_continuation_are_capped() {
    let mut c = PREFACE.to_vec();
    let mut e = Enc::default();
    // One 4000-byte entry, then 10 000 references to it: 40 MB decoded from 10 kB.
    e.add("x-big", &"v".repeat(4000));
    for _ in 0..10_000 {
        e.indexed(62);
    }
    let block = e.take();
    c.extend(frame(1, 0, 1, &block[..5000]));
    c.extend(frame(9, 0, 1, &block[5000..]));
    // Endless CONTINUATION: 2000 frames of 1000 literal bytes each (2 MB of header block).
    let mut lit = Enc::default();
    for i in 0..2000 {
        lit.lit(&format!("n{i:04}"), &"x".repeat(985));
    }
    let lits = lit.take();
    let mut first = frame(1, 0, 3, &lits[..1000]);
    c.append(&mut first);
    for chunk in lits[1000..].chunks(1000) {
        c.extend(frame(9, 0, 3, chunk));
    }
    c.extend(frame(9, 4, 3, &[]));
    c.extend(ping(false, 9));
    let (rec, frames) = run(&[(C, c, 1)], Cut::Bytes(1460), true);
    let s = &rec.summary;
    assert!(
        s.limits_hit.iter().any(|l| l.contains("header list")),
        "{:?}",
        s.limits_hit
    );
    assert!(
        s.limits_hit.iter().any(|l| l.contains("header block above")),
        "{:?}",
        s.limits_hit
    );
    let shown: usize = frames
        .iter()
        .filter_map(|f| f.details.get("headers"))
        .map(|h| h.as_array().unwrap().len())
        .sum();
    assert!(shown < 300, "{shown} fields shown");
    assert_eq!(frames.last().unwrap().frame_type, "PING");
}

#[test]
fn ping_without_ack_is_unanswered_and_acks_match_by_opaque_and_direction() {
    let mut c = PREFACE.to_vec();
    c.extend(ping(false, 1));
    c.extend(ping(true, 42));
    let steps = vec![
        (C, c, 1),
        (S, ping(false, 1), 2),
        (C, ping(true, 1), 3),
        (C, ping(false, 2), 4),
    ];
    let (rec, _) = run(&steps, Cut::Whole, false);
    let s = &rec.summary;
    assert_eq!(s.pings_total, [2, 1]);
    assert_eq!(s.ping_acks_total, [2, 0]);
    // The client's ACK of 1 answers the server's PING 1, not the client's own.
    assert_eq!(
        s.pings
            .iter()
            .map(|p| (p.dir, p.opaque, p.ack.is_some()))
            .collect::<Vec<_>>(),
        vec![(C, 1, false), (S, 1, true), (C, 2, false)]
    );
    assert_eq!(s.pings_unanswered, 2);
}

#[test]
fn many_pings_keep_the_first_and_the_last() {
    let mut c = PREFACE.to_vec();
    for i in 0..10_000u64 {
        c.extend(ping(false, i));
    }
    let (rec, _) = run(&[(C, c, 1)], Cut::Whole, false);
    let s = &rec.summary;
    assert_eq!(s.pings_total[0], 10_000);
    assert_eq!(s.pings.len(), 256);
    assert_eq!(s.pings.last().map(|p| p.opaque), Some(9_999));
    assert_eq!(s.pings_unanswered, 10_000);
    assert!(rec.events.len() < 600);
    assert!(s.events_dropped > 0);
    assert!(!s.limits_hit.is_empty());
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(std::env::var("H2_FUZZ_SEED")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(0x1234_5678));
    let rounds: u64 = std::env::var("H2_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    for round in 0..rounds {
        let mut steps = Vec::new();
        for i in 0..(1 + rng.below(8)) {
            let dir = if rng.below(2) == 0 { C } else { S };
            let mut b = match rng.below(4) {
                0 => PREFACE.to_vec(),
                1 => settings(&[(1, rng.below(100_000) as u32)]),
                _ => Vec::new(),
            };
            let n = rng.below(3000) as usize;
            let mut noise = rng.bytes(n);
            // Sprinkle plausible headers.
            if round % 2 == 0 {
                for _ in 0..rng.below(20) {
                    let at = rng.below(noise.len().max(1) as u64) as usize;
                    let (k, fl, sid, len) = (
                        rng.below(11) as u8,
                        rng.below(256) as u8,
                        rng.below(8) as u32,
                        rng.below(40) as usize,
                    );
                    let f = frame(k, fl, sid, &rng.bytes(len));
                    noise.splice(at.min(noise.len())..at.min(noise.len()), f);
                }
            }
            b.extend(noise);
            steps.push((dir, b, i));
        }
        let cfg = H2Config {
            keep_frames: true,
            max_header_list: 1 + rng.below(70_000) as usize,
            ..H2Config::default()
        };
        let mut a = StreamAnalyzer::new(&cfg);
        for (dir, b, no) in &steps {
            let mut rest = &b[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(rest.len() as u64) as usize).min(rest.len());
                a.on_data(*dir, &rest[..n], meta(*no, 0));
                rest = &rest[n..];
                if rng.below(10) == 0 {
                    a.on_gap(*dir, rng.below(100_000), meta(*no, 0));
                }
            }
        }
        a.on_end(C, meta(99, 0));
        let _ = a.drain_frames().count();
        let _ = a.finish();
    }
}

#[test]
fn mutated_conversations_never_panic() {
    let base = grpc_conversation();
    let rounds: u64 = std::env::var("H2_FUZZ_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(500);
    let mut rng = Rng(0xfeed_beef);
    for _ in 0..rounds {
        let mut steps = base.clone();
        for (_, bytes, _) in steps.iter_mut() {
            for _ in 0..rng.below(4) {
                if bytes.is_empty() {
                    break;
                }
                let at = rng.below(bytes.len() as u64) as usize;
                match rng.below(4) {
                    0 => bytes[at] ^= 1 << rng.below(8),
                    1 => bytes[at] = rng.next() as u8,
                    2 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, rng.next() as u8),
                }
            }
        }
        let cfg = H2Config {
            keep_frames: rng.below(2) == 0,
            max_header_list: 64 + rng.below(5000) as usize,
            ..H2Config::default()
        };
        let mut a = StreamAnalyzer::new(&cfg);
        for (dir, b, no) in &steps {
            let mut rest = &b[..];
            while !rest.is_empty() {
                let n = (1 + rng.below(rest.len() as u64) as usize).min(rest.len());
                a.on_data(*dir, &rest[..n], meta(*no, 0));
                rest = &rest[n..];
                if rng.below(20) == 0 {
                    a.on_gap(*dir, rng.below(50), meta(*no, 0));
                }
            }
            if rng.below(10) == 0 {
                a.on_end(*dir, meta(*no, 0));
            }
        }
        let _ = a.drain_frames().count();
        let rec = a.finish();
        assert!(rec.events.len() < 2000);
    }
}

#[test]
fn hpack_table_cap_is_configurable() {
    // Three 100-byte entries (RFC 7541 size: name + value + 32), then a reference to the oldest (index 64).
    let mut e = Enc::default();
    let v = "v".repeat(60);
    let block = e
        .indexed(3)
        .add("x-a", &v)
        .add("x-b", &v)
        .add("x-c", &v)
        .indexed(64)
        .take();
    let steps = [(C, [PREFACE.to_vec(), headers(1, true, &block)].concat(), 1)];
    let shown = |cap: usize| {
        let mut a = StreamAnalyzer::new(&H2Config {
            keep_frames: true,
            hpack_table_cap: cap,
            ..H2Config::default()
        });
        a.on_data(C, &steps[0].1, meta(1, 0));
        let f: Vec<_> = a.drain_frames().collect();
        f[0].details["headers"][4].clone()
    };
    assert_eq!(shown(4096), serde_json::json!(["x-a", v]));
    // Room for two entries only: the oldest is gone, shown as unknown, never as a wrong field.
    assert_eq!(
        shown(200),
        serde_json::json!(["<unknown dynamic index 64>", "<unknown dynamic index 64>"])
    );
}
