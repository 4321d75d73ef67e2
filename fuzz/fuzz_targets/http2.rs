//! The HTTP/2 stage: `http2::StreamAnalyzer` fed arbitrary chunks, gaps and ends in both directions, as the TCP
//! engine would (detection, HTTP/1.1 upgrade, frames, HPACK, gRPC, resync after gaps), then closed and finished.
//!
//! Input: a config byte, then operations `[op u8][len u8][len bytes]`: op bit 0 is the direction, bits 1..2
//! pick data / gap (len is the size, scaled) / end; a data chunk may start with the client preface.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whoclosed::http2::{H2Config, StreamAnalyzer};
use whoclosed::source::PacketRef;
use whoclosed::tcp::{Dir, SegMeta, StreamSink};
use whoclosed::ts::Ts;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let h2 = H2Config {
        keep_frames: cfg & 1 != 0,
        max_header_list: if cfg & 2 != 0 { 256 } else { 64 * 1024 },
        ..H2Config::default()
    };
    let mut a = StreamAnalyzer::new(&h2);
    let mut frame = 0u64;
    let mut chunk = Vec::new();
    if cfg & 4 != 0 {
        // Most inputs start with the preface, so that the frame decoder is reached at once.
        a.on_data(Dir::ToServer, PREFACE, meta(0));
    }
    while let [op, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (bytes, more) = tail.split_at(n);
        rest = more;
        frame += 1;
        let dir = if op & 1 == 0 { Dir::ToServer } else { Dir::ToClient };
        let m = meta(frame);
        match (op >> 1) & 7 {
            // Several consecutive data ops are joined into one segment now and then (frames across segments).
            0..=3 => {
                chunk.clear();
                chunk.extend_from_slice(bytes);
                a.on_data(dir, &chunk, m);
            }
            4 => {
                chunk.clear();
                chunk.extend_from_slice(PREFACE);
                chunk.extend_from_slice(bytes);
                a.on_data(dir, &chunk, m);
            }
            5 => a.on_gap(dir, u64::from(*len) * u64::from(op >> 4).pow(3).max(1), m),
            6 => a.on_end(dir, m),
            _ => {
                // A gap announcing an absurd size: what a huge sequence jump gives.
                a.on_gap(dir, u64::MAX >> (op >> 4), m);
            }
        }
        if frame % 16 == 0 {
            for f in a.drain_frames() {
                let _ = serde_json::to_string(&f);
            }
        }
    }
    a.close();
    for f in a.drain_frames() {
        let _ = serde_json::to_string(&f);
    }
    let rec = a.finish();
    let _ = format!("{:?}", rec.summary);
});

fn meta(frame: u64) -> SegMeta {
    SegMeta {
        at: PacketRef { file: 0, frame },
        ts: Ts::from_nanos(1_700_000_000_000_000_000 + frame as i64 * 1_000_000),
    }
}
