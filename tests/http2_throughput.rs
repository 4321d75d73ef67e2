//! Throughput of the HTTP/2 stage (frames + HPACK + gRPC bookkeeping) on large synthetic streams written by
//! h2's encoder, fed in 1448-byte segments as the TCP stage would deliver them:
//!
//! ```text
//! cargo test --release --test http2_throughput -- --ignored --nocapture
//! ```
//!
//! Two workloads: gRPC unary calls (small frames, every request and response HPACK-coded, the worst case per
//! byte) and a bulk transfer (16 KiB DATA frames).

mod http2_support;

use bytes::Bytes;
use h2::frame::{BytesStr, Data, Headers, Ping, Pseudo, StreamId, WindowUpdate};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http2_support::h2_writer::H2Writer;
use http2_support::*;
use std::time::Instant;
use whoclosed::http2::{H2Config, StreamAnalyzer};
use whoclosed::tcp::{Dir, StreamSink};

fn grpc_calls(calls: u32) -> (Vec<u8>, Vec<u8>) {
    let mut c = H2Writer::default();
    let mut s = H2Writer::default();
    let mut rng = Rng(99);
    for i in 0..calls {
        let sid = StreamId::from(2 * i + 1);
        let pseudo = Pseudo {
            method: Some(Method::POST),
            scheme: Some(BytesStr::try_from(Bytes::from_static(b"http")).unwrap()),
            authority: Some(BytesStr::try_from(Bytes::from_static(b"orders.internal:50051")).unwrap()),
            path: Some(BytesStr::try_from(Bytes::from_static(b"/shop.v1.OrderService/GetOrder")).unwrap()),
            ..Pseudo::default()
        };
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("grpc-timeout", HeaderValue::from_static("4999m"));
        h.insert("user-agent", HeaderValue::from_static("grpc-go/1.62.0"));
        h.insert(
            HeaderName::from_static("x-request-id"),
            HeaderValue::from_str(&format!("{:032x}", rng.next())).unwrap(),
        );
        c.send(Headers::new(sid, pseudo, h));
        let n = 40 + rng.below(200) as usize;
        let mut d = Data::new(sid, Bytes::from(grpc_msg(&rng.bytes(n))));
        d.set_end_stream(true);
        c.send(d);
        let mut rh = HeaderMap::new();
        rh.insert("content-type", HeaderValue::from_static("application/grpc"));
        s.send(Headers::new(sid, Pseudo::response(StatusCode::OK), rh));
        let n = 100 + rng.below(1500) as usize;
        s.send(Data::new(sid, Bytes::from(grpc_msg(&rng.bytes(n)))));
        let mut t = HeaderMap::new();
        t.insert("grpc-status", HeaderValue::from_static("0"));
        t.insert("grpc-message", HeaderValue::from_static(""));
        let mut tr = Headers::trailers(sid, t);
        tr.set_end_stream();
        s.send(tr);
        if i % 16 == 0 {
            s.send(WindowUpdate::new(StreamId::zero(), 65535));
            c.send(Ping::new(rng.next().to_be_bytes()));
        }
    }
    (c.take(), s.take())
}

fn bulk(mb: usize) -> Vec<u8> {
    let mut s = H2Writer::default();
    for i in 0..8u32 {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        s.send(Headers::new(
            StreamId::from(1 + 2 * i),
            Pseudo::response(StatusCode::OK),
            h,
        ));
    }
    // gRPC server streaming: 16 KiB DATA frames, each a 5-byte prefix and a message body.
    let mut msg = grpc_msg(&vec![0x5a; 16384 - 5]);
    msg.truncate(16384);
    let chunk = Bytes::from(msg);
    for i in 0..(mb * 64) {
        s.send(Data::new(StreamId::from(1 + 2 * (i as u32 % 8)), chunk.clone()));
        if i % 4 == 0 {
            s.send(WindowUpdate::new(StreamId::zero(), 65536));
        }
    }
    s.take()
}

fn run_once(c: &[u8], s: &[u8], keep_frames: bool) -> (f64, u64) {
    let mut a = StreamAnalyzer::new(&H2Config {
        keep_frames,
        ..H2Config::default()
    });
    let start = Instant::now();
    a.on_data(Dir::ToServer, PREFACE, meta(1, 0));
    let (mut ci, mut si) = (c.chunks(1448), s.chunks(1448));
    let mut no = 2;
    let mut drained = 0u64;
    loop {
        let (x, y) = (ci.next(), si.next());
        if x.is_none() && y.is_none() {
            break;
        }
        if let Some(x) = x {
            a.on_data(Dir::ToServer, x, meta(no, 0));
        }
        if let Some(y) = y {
            a.on_data(Dir::ToClient, y, meta(no + 1, 0));
        }
        no += 2;
        if keep_frames && no % 256 == 0 {
            drained += a.drain_frames().count() as u64;
        }
    }
    drained += a.drain_frames().count() as u64;
    let rec = a.finish();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(rec.summary.malformed, 0);
    let _ = drained;
    (secs, rec.summary.frames[0] + rec.summary.frames[1])
}

fn report(name: &str, c: &[u8], s: &[u8]) {
    let bytes = (c.len() + s.len()) as f64;
    let modes: &[bool] = if std::env::var("H2_BENCH_NO_FRAMES").is_ok() {
        &[false]
    } else {
        &[false, true]
    };
    for &keep in modes {
        let mut best = f64::MAX;
        let mut frames = 0;
        let rounds = std::env::var("H2_BENCH_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(3);
        for _ in 0..rounds {
            let (t, f) = run_once(c, s, keep);
            best = best.min(t);
            frames = f;
        }
        eprintln!(
            "{name:<14} keep_frames={keep:<5} {:>7.1} MB in {:>7.3} s = {:>8.1} MB/s, {:>6.2} M frames/s ({frames} frames)",
            bytes / 1e6,
            best,
            bytes / 1e6 / best,
            frames as f64 / 1e6 / best
        );
    }
}

#[test]
#[ignore = "throughput measurement; run in release mode"]
fn throughput() {
    let (c, s) = grpc_calls(200_000);
    report("gRPC unary", &c, &s);
    let b = bulk(512);
    report("bulk DATA", &[], &b);
}
