//! Helpers shared by the HTTP/2 integration tests: frame and HPACK builders, a seeded RNG, feeding an
//! analyzer with a given chunking.
#![allow(dead_code)]

use whoclosed::http2::frame::{FrameType, Head};
use whoclosed::http2::{FrameRecord, H2Config, H2Record, StreamAnalyzer};
use whoclosed::source::PacketRef;
use whoclosed::tcp::{Dir, SegMeta, StreamSink};
use whoclosed::ts::Ts;

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The type number of a frame type as whoclosed prints it (`"GOAWAY"`, `"UNKNOWN(0x2a)"`): the inverse of
/// `FrameType`'s `Display`.
pub fn type_number(name: &str) -> Option<u8> {
    (0..=u8::MAX).find(|&n| FrameType(n).to_string() == name)
}

pub fn frame(kind: u8, flags: u8, stream_id: u32, payload: &[u8]) -> Vec<u8> {
    let head = Head {
        length: payload.len() as u32,
        kind: FrameType(kind),
        flags,
        stream_id,
        reserved: false,
    };
    let mut v = head.to_bytes().to_vec();
    v.extend_from_slice(payload);
    v
}

pub fn settings(params: &[(u16, u32)]) -> Vec<u8> {
    let mut p = Vec::new();
    for (id, v) in params {
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&v.to_be_bytes());
    }
    frame(4, 0, 0, &p)
}

pub fn ping(ack: bool, opaque: u64) -> Vec<u8> {
    frame(6, u8::from(ack), 0, &opaque.to_be_bytes())
}

pub fn goaway(last: u32, error: u32, debug: &[u8]) -> Vec<u8> {
    let mut p = last.to_be_bytes().to_vec();
    p.extend_from_slice(&error.to_be_bytes());
    p.extend_from_slice(debug);
    frame(7, 0, 0, &p)
}

pub fn rst(stream: u32, error: u32) -> Vec<u8> {
    frame(3, 0, stream, &error.to_be_bytes())
}

pub fn data(stream: u32, end: bool, payload: &[u8]) -> Vec<u8> {
    frame(0, u8::from(end), stream, payload)
}

/// A gRPC message: compressed flag, 4-byte length, body.
pub fn grpc_msg(body: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A minimal HPACK encoder for tests.
#[derive(Default)]
pub struct Enc {
    pub out: Vec<u8>,
}

impl Enc {
    pub fn int(&mut self, prefix_bits: u8, flags: u8, mut v: usize) -> &mut Self {
        let max = (1usize << prefix_bits) - 1;
        if v < max {
            self.out.push(flags | v as u8);
            return self;
        }
        self.out.push(flags | max as u8);
        v -= max;
        while v >= 128 {
            self.out.push((v % 128) as u8 | 0x80);
            v /= 128;
        }
        self.out.push(v as u8);
        self
    }
    pub fn string(&mut self, s: &[u8], huffman: bool) -> &mut Self {
        if huffman {
            let mut h = Vec::new();
            whoclosed::http2::hpack::huffman::encode(s, &mut h);
            self.int(7, 0x80, h.len());
            self.out.extend_from_slice(&h);
        } else {
            self.int(7, 0, s.len());
            self.out.extend_from_slice(s);
        }
        self
    }
    pub fn indexed(&mut self, i: usize) -> &mut Self {
        self.int(7, 0x80, i)
    }
    /// Literal with incremental indexing, new name.
    pub fn add(&mut self, name: &str, value: &str) -> &mut Self {
        self.out.push(0x40);
        self.string(name.as_bytes(), true).string(value.as_bytes(), true)
    }
    /// Literal without indexing, new name.
    pub fn lit(&mut self, name: &str, value: &str) -> &mut Self {
        self.out.push(0x00);
        self.string(name.as_bytes(), false).string(value.as_bytes(), false)
    }
    /// Literal with incremental indexing, indexed name.
    pub fn add_named(&mut self, index: usize, value: &str) -> &mut Self {
        self.int(6, 0x40, index).string(value.as_bytes(), true)
    }
    pub fn size_update(&mut self, n: usize) -> &mut Self {
        self.int(5, 0x20, n)
    }
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }
}

/// A gRPC request header block.
pub fn grpc_request(enc: &mut Enc, path: &str, timeout: Option<&str>) -> Vec<u8> {
    enc.indexed(3) // :method POST
        .indexed(6) // :scheme http
        .add_named(4, path) // :path
        .add_named(1, "localhost:50051")
        .add("content-type", "application/grpc")
        .add("te", "trailers");
    if let Some(t) = timeout {
        enc.add("grpc-timeout", t);
    }
    enc.take()
}

pub fn headers(stream: u32, end_stream: bool, block: &[u8]) -> Vec<u8> {
    frame(1, 0x4 | u8::from(end_stream), stream, block)
}

pub fn meta(frame_no: u64, ts_ms: i64) -> SegMeta {
    SegMeta {
        at: PacketRef {
            file: 0,
            frame: frame_no,
        },
        ts: Ts::from_nanos(ts_ms * 1_000_000),
    }
}

/// A seeded xorshift64* generator.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One direction's bytes with a packet number per segment.
pub struct Script {
    pub steps: Vec<(Dir, Vec<u8>, u64)>,
}

/// How to cut each step's bytes.
#[derive(Clone, Copy)]
pub enum Cut {
    Whole,
    Bytes(usize),
    Random(u64),
}

/// Feeds the steps (each with its own packet number), cut as asked; every piece carries its step's packet.
pub fn run(steps: &[(Dir, Vec<u8>, u64)], cut: Cut, keep_frames: bool) -> (H2Record, Vec<FrameRecord>) {
    let cfg = H2Config {
        keep_frames,
        ..H2Config::default()
    };
    let mut a = StreamAnalyzer::new(&cfg);
    let mut frames = Vec::new();
    let mut rng = Rng(match cut {
        Cut::Random(s) => s | 1,
        _ => 1,
    });
    for (dir, bytes, no) in steps {
        let m = meta(*no, *no as i64 * 10);
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = match cut {
                Cut::Whole => rest.len(),
                Cut::Bytes(n) => n.min(rest.len()),
                Cut::Random(_) => (1 + rng.below(rest.len() as u64) as usize).min(rest.len()),
            };
            a.on_data(*dir, &rest[..n], m);
            rest = &rest[n..];
        }
        frames.extend(a.drain_frames());
    }
    a.close();
    frames.extend(a.drain_frames());
    (a.finish(), frames)
}

pub mod h2_writer;
pub mod tshark;
