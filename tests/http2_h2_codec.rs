//! Differential test of our frame decoder against h2's frame encoder (`h2::Codec`): random sequences of every
//! frame type h2 can write (SETTINGS, PING, GOAWAY with debug data, RST_STREAM, WINDOW_UPDATE, DATA, HEADERS
//! with CONTINUATION, PUSH_PROMISE), cut into random segments, must come out as the same frames with the same
//! fields.

mod http2_support;

use bytes::Bytes;
use h2::frame::{BytesStr, Data, GoAway, Headers, Ping, Pseudo, PushPromise, Reset, Settings, StreamId, WindowUpdate};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use http2_support::h2_writer::H2Writer;
use http2_support::*;
use serde_json::Value;
use whoclosed::http2::{FrameRecord, H2Config, StreamAnalyzer};
use whoclosed::tcp::{Dir, StreamSink};

enum Want {
    Settings {
        ack: bool,
        params: Vec<(u64, u64)>,
    },
    Ping {
        ack: bool,
        opaque: [u8; 8],
    },
    GoAway {
        last: u32,
        code: u32,
        debug: Vec<u8>,
    },
    Reset {
        stream: u32,
        code: u32,
    },
    Window {
        stream: u32,
        inc: u32,
    },
    Data {
        stream: u32,
        end: bool,
        len: usize,
    },
    Headers {
        stream: u32,
        end: bool,
        fields: Vec<(String, String)>,
    },
    Push {
        stream: u32,
        promised: u32,
        fields: Vec<(String, String)>,
    },
}

fn fields(rng: &mut Rng, big: bool) -> (HeaderMap, Vec<(String, String)>) {
    let mut map = HeaderMap::new();
    for i in 0..rng.below(6) {
        let len = if big && i == 0 { 20_000 } else { rng.below(50) as usize };
        let v: Vec<u8> = (0..len).map(|_| 0x21 + rng.below(90) as u8).collect();
        map.append(
            HeaderName::from_bytes(format!("x-h{}", rng.below(5)).as_bytes()).unwrap(),
            HeaderValue::from_bytes(&v).unwrap(),
        );
    }
    let list = map
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    (map, list)
}

fn request_pseudo(path: &str) -> (Pseudo, Vec<(String, String)>) {
    let p = Pseudo {
        method: Some(Method::GET),
        scheme: Some(BytesStr::try_from(Bytes::from_static(b"https")).unwrap()),
        authority: Some(BytesStr::try_from(Bytes::from_static(b"example.com")).unwrap()),
        path: Some(BytesStr::try_from(Bytes::copy_from_slice(path.as_bytes())).unwrap()),
        ..Pseudo::default()
    };
    let list = [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "example.com"),
        (":path", path),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    (p, list)
}

fn random_frame(rng: &mut Rng, w: &mut H2Writer, want: &mut Vec<Want>) {
    let sid = 1 + 2 * rng.below(50) as u32;
    match rng.below(9) {
        0 => {
            if rng.below(4) == 0 {
                w.send(Settings::ack());
                want.push(Want::Settings {
                    ack: true,
                    params: vec![],
                });
                return;
            }
            let mut s = Settings::default();
            let mut params = Vec::new();
            if rng.below(2) == 0 {
                let v = rng.below(65536) as u32;
                s.set_header_table_size(Some(v));
                params.push((1, u64::from(v)));
            }
            if rng.below(2) == 0 {
                let v = rng.below(2) == 0;
                s.set_enable_push(v);
                params.push((2, u64::from(v)));
            }
            if rng.below(2) == 0 {
                let v = rng.below(1000) as u32;
                s.set_max_concurrent_streams(Some(v));
                params.push((3, u64::from(v)));
            }
            if rng.below(2) == 0 {
                let v = rng.below(1 << 31) as u32;
                s.set_initial_window_size(Some(v));
                params.push((4, u64::from(v)));
            }
            if rng.below(2) == 0 {
                let v = 16384 + rng.below((1 << 24) - 16384) as u32;
                s.set_max_frame_size(Some(v));
                params.push((5, u64::from(v)));
            }
            if rng.below(2) == 0 {
                let v = rng.below(1 << 20) as u32;
                s.set_max_header_list_size(Some(v));
                params.push((6, u64::from(v)));
            }
            params.sort();
            w.send(s);
            want.push(Want::Settings { ack: false, params });
        }
        1 => {
            let opaque = rng.next().to_be_bytes();
            let ack = rng.below(2) == 0;
            w.send(if ack { Ping::pong(opaque) } else { Ping::new(opaque) });
            want.push(Want::Ping { ack, opaque });
        }
        2 => {
            let code = [0u32, 1, 2, 7, 8, 0xb, 0xd, 0x77][rng.below(8) as usize];
            let n = rng.below(3) as usize * rng.below(200) as usize;
            let debug = rng.bytes(n);
            w.send(GoAway::with_debug_data(
                StreamId::from(sid),
                code.into(),
                Bytes::from(debug.clone()),
            ));
            want.push(Want::GoAway { last: sid, code, debug });
        }
        3 => {
            let code = rng.below(16) as u32;
            w.send(Reset::new(StreamId::from(sid), code.into()));
            want.push(Want::Reset { stream: sid, code });
        }
        4 => {
            let stream = if rng.below(2) == 0 { 0 } else { sid };
            let inc = 1 + rng.below((1 << 31) - 1) as u32;
            w.send(WindowUpdate::new(StreamId::from(stream), inc));
            want.push(Want::Window { stream, inc });
        }
        5 | 6 => {
            let len = [0, 1, 5, 100, 1000, 16384][rng.below(6) as usize];
            let mut d = Data::new(StreamId::from(sid), Bytes::from(rng.bytes(len)));
            let end = rng.below(2) == 0;
            d.set_end_stream(end);
            w.send(d);
            want.push(Want::Data { stream: sid, end, len });
        }
        7 => {
            let big = rng.below(10) == 0;
            let (map, mut list) = fields(rng, big);
            let (pseudo, mut plist) = request_pseudo(&format!("/p/{}", rng.below(1000)));
            plist.append(&mut list);
            let mut h = Headers::new(StreamId::from(sid), pseudo, map);
            let end = rng.below(2) == 0;
            if end {
                h.set_end_stream();
            }
            w.send(h);
            want.push(Want::Headers {
                stream: sid,
                end,
                fields: plist,
            });
        }
        _ => {
            let (map, mut list) = fields(rng, false);
            let (pseudo, mut plist) = request_pseudo("/pushed.css");
            plist.append(&mut list);
            let promised = 2 + 2 * rng.below(100) as u32;
            w.send(PushPromise::new(
                StreamId::from(sid),
                StreamId::from(promised),
                pseudo,
                map,
            ));
            want.push(Want::Push {
                stream: sid,
                promised,
                fields: plist,
            });
        }
    }
}

fn header_list(v: &Value) -> Vec<(String, String)> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap_or("").to_string(),
                        p[1].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Takes the records of one header block (the first and its CONTINUATIONs).
fn block<'a>(it: &mut std::iter::Peekable<impl Iterator<Item = &'a FrameRecord>>) -> Vec<(String, String)> {
    let first = it.next().expect("a header frame");
    let mut list = header_list(&first.details["headers"]);
    let mut done = first.details["end_headers"] == true;
    while !done {
        let c = it.next().expect("a CONTINUATION");
        assert_eq!(c.frame_type, "CONTINUATION");
        list.extend(header_list(&c.details["headers"]));
        done = c.details["end_headers"] == true;
    }
    list
}

#[test]
fn frames_written_by_h2_read_back_identically() {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for seed in 1..=60u64 {
        let mut rng = Rng(seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let mut w = H2Writer::default();
        let mut want = Vec::new();
        for _ in 0..80 {
            random_frame(&mut rng, &mut w, &mut want);
        }
        let bytes = w.take();
        let mut a = StreamAnalyzer::new(&H2Config {
            keep_frames: true,
            ..H2Config::default()
        });
        a.on_data(Dir::ToServer, PREFACE, meta(1, 0));
        let mut rest = &bytes[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(4000) as usize).min(rest.len());
            a.on_data(Dir::ToServer, &rest[..n], meta(2, 0));
            rest = &rest[n..];
        }
        let frames: Vec<FrameRecord> = a.drain_frames().collect();
        for f in &frames {
            *counts.entry(f.frame_type.clone()).or_default() += 1;
            assert!(f.details.get("malformed").is_none(), "seed {seed}: {f:?}");
        }
        let mut it = frames.iter().peekable();
        for (i, w) in want.iter().enumerate() {
            let ctx = format!("seed {seed}, frame {i}");
            match w {
                Want::Headers { stream, end, fields } => {
                    let f = *it.peek().unwrap();
                    assert_eq!((f.frame_type.as_str(), f.stream_id), ("HEADERS", *stream), "{ctx}");
                    assert_eq!(f.details["end_stream"], *end, "{ctx}");
                    assert_eq!(&block(&mut it), fields, "{ctx}");
                    continue;
                }
                Want::Push {
                    stream,
                    promised,
                    fields,
                } => {
                    let f = *it.peek().unwrap();
                    assert_eq!((f.frame_type.as_str(), f.stream_id), ("PUSH_PROMISE", *stream), "{ctx}");
                    assert_eq!(f.details["promised_stream_id"], *promised, "{ctx}");
                    assert_eq!(&block(&mut it), fields, "{ctx}");
                    continue;
                }
                _ => {}
            }
            let f = it.next().unwrap_or_else(|| panic!("{ctx}: missing"));
            let d = &f.details;
            match w {
                Want::Settings { ack, params } => {
                    assert_eq!(
                        (f.frame_type.as_str(), f.stream_id, f.flags),
                        ("SETTINGS", 0, u8::from(*ack)),
                        "{ctx}"
                    );
                    let mut got: Vec<(u64, u64)> = d["settings"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| (s["id"].as_u64().unwrap(), s["value"].as_u64().unwrap()))
                        .collect();
                    got.sort();
                    assert_eq!(&got, params, "{ctx}");
                    assert_eq!(f.length as usize, 6 * params.len(), "{ctx}");
                }
                Want::Ping { ack, opaque } => {
                    assert_eq!(
                        (f.frame_type.as_str(), f.length, d["ack"].as_bool()),
                        ("PING", 8, Some(*ack)),
                        "{ctx}"
                    );
                    assert_eq!(d["opaque"], format!("{:016x}", u64::from_be_bytes(*opaque)), "{ctx}");
                }
                Want::GoAway { last, code, debug } => {
                    assert_eq!(
                        (f.frame_type.as_str(), f.length as usize),
                        ("GOAWAY", 8 + debug.len()),
                        "{ctx}"
                    );
                    assert_eq!(
                        (d["last_stream_id"].as_u64(), d["error_code"].as_u64()),
                        (Some(u64::from(*last)), Some(u64::from(*code))),
                        "{ctx}"
                    );
                    assert_eq!(d["debug"], whoclosed::http2::frame::escape_bytes(debug), "{ctx}");
                }
                Want::Reset { stream, code } => {
                    assert_eq!(
                        (f.frame_type.as_str(), f.stream_id, d["error_code"].as_u64()),
                        ("RST_STREAM", *stream, Some(u64::from(*code))),
                        "{ctx}"
                    );
                }
                Want::Window { stream, inc } => {
                    assert_eq!(
                        (f.frame_type.as_str(), f.stream_id, d["increment"].as_u64()),
                        ("WINDOW_UPDATE", *stream, Some(u64::from(*inc))),
                        "{ctx}"
                    );
                }
                Want::Data { stream, end, len } => {
                    assert_eq!(
                        (f.frame_type.as_str(), f.stream_id, f.length as usize),
                        ("DATA", *stream, *len),
                        "{ctx}"
                    );
                    assert_eq!(
                        (d["end_stream"].as_bool(), d["data_length"].as_u64()),
                        (Some(*end), Some(*len as u64)),
                        "{ctx}"
                    );
                }
                Want::Headers { .. } | Want::Push { .. } => unreachable!(),
            }
        }
        assert!(it.next().is_none(), "seed {seed}: extra frames");
    }
    eprintln!("{counts:?}");
    for t in [
        "SETTINGS",
        "PING",
        "GOAWAY",
        "RST_STREAM",
        "WINDOW_UPDATE",
        "DATA",
        "HEADERS",
        "CONTINUATION",
        "PUSH_PROMISE",
    ] {
        assert!(counts.get(t).copied().unwrap_or(0) > 0, "no {t} frames");
    }
}
