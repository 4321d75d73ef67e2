//! Differential test of our HPACK decoder against h2's encoder: many random header lists (seeded), with
//! dynamic-table churn, sensitive (never-indexed) fields, table size updates and blocks large enough to need
//! CONTINUATION frames, encoded by h2 and decoded by our analyzer, must come out identical, whatever the TCP
//! segmentation.

mod http2_support;

use bytes::Bytes;
use h2::frame::{BytesStr, Headers, Pseudo, StreamId};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use http2_support::h2_writer::H2Writer;
use http2_support::*;
use whoclosed::http2::{FrameRecord, H2Config, StreamAnalyzer};
use whoclosed::tcp::{Dir, StreamSink};

const NAMES: &[&str] = &[
    "content-type",
    "user-agent",
    "accept",
    "accept-encoding",
    "cookie",
    "set-cookie",
    "authorization",
    "cache-control",
    "x-request-id",
    "grpc-timeout",
    "grpc-status",
    "grpc-message",
    "te",
    "date",
    "etag",
    "content-length",
    "x-b3-traceid",
    "via",
];

fn token(rng: &mut Rng, max: u64) -> String {
    const CH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..1 + rng.below(max))
        .map(|_| char::from(CH[rng.below(CH.len() as u64) as usize]))
        .collect()
}

fn value(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    match rng.below(10) {
        0..=3 if !pool.is_empty() => pool[rng.below(pool.len() as u64) as usize].clone(),
        4 => Vec::new(),
        5 => {
            // Large: beyond the table, or beyond a frame.
            let n = [300, 2000, 5000, 20_000][rng.below(4) as usize];
            (0..n).map(|i| b'a' + (i % 26) as u8).collect()
        }
        6 => (0..rng.below(40)).map(|_| 0x80 + rng.below(128) as u8).collect(),
        _ => (0..rng.below(60)).map(|_| 0x20 + rng.below(95) as u8).collect(),
    }
}

struct Block {
    expected: Vec<(String, String)>,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn random_block(rng: &mut Rng, pool: &mut Vec<Vec<u8>>, stream: u32) -> (Headers, Block) {
    let mut expected = Vec::new();
    let mut pseudo = Pseudo::default();
    match rng.below(3) {
        0 => {
            let m = [
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::from_bytes(b"PURGE").unwrap(),
            ][rng.below(4) as usize]
                .clone();
            let scheme = if rng.below(2) == 0 { "http" } else { "https" };
            let authority = format!("{}.example:{}", token(rng, 12), rng.below(65536));
            let path = format!("/{}/{}?q={}", token(rng, 10), token(rng, 10), rng.below(1000));
            expected.push((":method".to_string(), m.as_str().to_string()));
            expected.push((":scheme".to_string(), scheme.to_string()));
            expected.push((":authority".to_string(), authority.clone()));
            expected.push((":path".to_string(), path.clone()));
            pseudo.method = Some(m);
            pseudo.scheme = Some(BytesStr::try_from(Bytes::from(scheme)).unwrap());
            pseudo.authority = Some(BytesStr::try_from(Bytes::from(authority)).unwrap());
            pseudo.path = Some(BytesStr::try_from(Bytes::from(path)).unwrap());
        }
        1 => {
            let st = StatusCode::from_u16(100 + rng.below(500) as u16).unwrap();
            expected.push((":status".to_string(), st.as_str().to_string()));
            pseudo.status = Some(st);
        }
        _ => {} // trailers
    }
    let mut map = HeaderMap::new();
    for _ in 0..rng.below(14) {
        let name = if rng.below(3) == 0 {
            format!("x-{}", token(rng, 16))
        } else {
            NAMES[rng.below(NAMES.len() as u64) as usize].to_string()
        };
        let v = value(rng, pool);
        if pool.len() < 64 && v.len() < 100 {
            pool.push(v.clone());
        }
        let mut hv = HeaderValue::from_bytes(&v).unwrap();
        if rng.below(8) == 0 {
            hv.set_sensitive(true);
        }
        map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), hv);
    }
    for (n, v) in map.iter() {
        expected.push((n.as_str().to_string(), lossy(v.as_bytes())));
    }
    let mut h = Headers::new(StreamId::from(stream), pseudo, map);
    if rng.below(3) == 0 {
        h.set_end_stream();
    }
    (h, Block { expected })
}

/// Our frame records, grouped back into header blocks.
fn blocks_of(frames: &[FrameRecord]) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<(String, String)>> = None;
    for f in frames {
        if let Some(list) = f.details.get("headers") {
            let c = cur.get_or_insert_with(Vec::new);
            for pair in list.as_array().unwrap() {
                let p = pair.as_array().unwrap();
                c.push((p[0].as_str().unwrap().to_string(), p[1].as_str().unwrap().to_string()));
            }
            if f.details["end_headers"] == true {
                out.extend(cur.take());
            }
        }
    }
    out
}

fn decode_with_ours(bytes: &[u8], rng: &mut Rng) -> (Vec<FrameRecord>, whoclosed::http2::H2Record) {
    let cfg = H2Config {
        keep_frames: true,
        max_header_list: 1 << 20,
        ..H2Config::default()
    };
    let mut a = StreamAnalyzer::new(&cfg);
    a.on_data(Dir::ToServer, PREFACE, meta(1, 0));
    let mut rest = bytes;
    let mut no = 2;
    while !rest.is_empty() {
        let n = match rng.below(3) {
            0 => rest.len(),
            1 => 1 + rng.below(20) as usize,
            _ => 1 + rng.below(3000) as usize,
        }
        .min(rest.len());
        a.on_data(Dir::ToServer, &rest[..n], meta(no, 0));
        rest = &rest[n..];
        no += 1;
    }
    let frames: Vec<_> = a.drain_frames().collect();
    (frames, a.finish())
}

/// HEADERS frames whose block starts with a dynamic table size update (h2 writes them first).
fn count_size_updates(mut b: &[u8]) -> usize {
    let mut n = 0;
    while let Some(h) = whoclosed::http2::frame::Head::from_prefix(b) {
        let len = h.length as usize;
        if h.kind == whoclosed::http2::frame::FrameType::HEADERS && b.get(9).is_some_and(|f| f & 0xe0 == 0x20) {
            n += 1;
        }
        b = &b[(9 + len).min(b.len())..];
    }
    n
}

#[test]
fn random_header_lists_from_h2_decode_identically() {
    let mut total_blocks = 0;
    let mut total_fields = 0;
    let mut continuations = 0;
    let mut size_updates = 0;
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut w = H2Writer::default();
        let mut pool = Vec::new();
        let mut expected = Vec::new();
        for i in 0..60 {
            if rng.below(6) == 0 {
                // The peer's SETTINGS_HEADER_TABLE_SIZE changed: h2 emits a size update in the next block.
                w.codec().set_send_header_table_size(rng.below(4097) as usize);
            }
            let (h, b) = random_block(&mut rng, &mut pool, 2 * i + 1);
            w.send(h);
            expected.push(b.expected);
        }
        let bytes = w.take();
        size_updates += count_size_updates(&bytes);
        let (frames, rec) = decode_with_ours(&bytes, &mut rng);
        let got = blocks_of(&frames);
        assert_eq!(got.len(), expected.len(), "seed {seed}");
        for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(g, e, "seed {seed}, block {i}");
            total_fields += e.len();
        }
        total_blocks += got.len();
        assert!(!rec.summary.hpack_out_of_sync, "seed {seed}");
        assert_eq!(rec.summary.malformed, 0, "seed {seed}: {:?}", rec.events);
        continuations += frames.iter().filter(|f| f.frame_type == "CONTINUATION").count();
    }
    eprintln!(
        "{total_blocks} blocks, {total_fields} fields, {continuations} CONTINUATION frames, {size_updates} size updates"
    );
    assert!(continuations > 10, "{continuations}");
    assert!(size_updates > 50, "{size_updates}");
    assert_eq!(total_blocks, 40 * 60);
    assert!(total_fields > 10_000, "{total_fields}");
}

#[test]
fn continuation_frames_are_exercised() {
    let mut rng = Rng(77);
    let mut w = H2Writer::default();
    let mut map = HeaderMap::new();
    for i in 0..8 {
        map.append(
            HeaderName::from_bytes(format!("x-big-{i}").as_bytes()).unwrap(),
            HeaderValue::from_bytes(&vec![b'z'; 9000]).unwrap(),
        );
    }
    let expected: Vec<(String, String)> = map
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), lossy(v.as_bytes())))
        .collect();
    w.send(Headers::trailers(StreamId::from(1), map));
    let (frames, rec) = decode_with_ours(&w.take(), &mut rng);
    assert!(frames.iter().filter(|f| f.frame_type == "CONTINUATION").count() >= 3);
    assert_eq!(blocks_of(&frames), vec![expected]);
    assert_eq!(rec.summary.malformed, 0);
}
