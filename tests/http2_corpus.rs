//! Differential test against tshark 4.0.17 on the public captures of `../shared/corpus/`: every TCP stream in
//! which tshark decodes HTTP/2 (`reference/<file>.h2.tsv`) is extracted with tshark, reassembled, fed to our
//! analyzer, and our frame sequence per direction must equal tshark's: type, length, flags, stream id and the
//! type details (RST_STREAM and GOAWAY codes, GOAWAY debug data, PING opaque and ACK, SETTINGS, WINDOW_UPDATE
//! increment, decoded headers). The packet of each frame is compared too and reported.
//!
//! Skipped (with a note) when the corpus or tshark is absent. Streams tshark only decodes after TLS
//! decryption are reported as "TLS, not decoded" by us (an intentional difference, docs/http2.md).

mod http2_support;

use http2_support::tshark::{self, Row};
use std::collections::BTreeMap;
use whoclosed::http2::{AppProtocol, FrameRecord, H2Config, StreamAnalyzer};
use whoclosed::tcp::Dir;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok())
        .collect()
}

/// Our record in the reference's column form (only the columns the reference fills for the type).
fn as_columns(f: &FrameRecord) -> BTreeMap<&'static str, String> {
    let d = &f.details;
    let mut m = BTreeMap::new();
    let type_num = whoclosed::http2::frame::FrameType(http2_support::type_number(&f.frame_type).unwrap_or(255));
    m.insert("h2_type", type_num.0.to_string());
    m.insert("h2_len", f.length.to_string());
    m.insert("h2_flags", format!("0x{:02x}", f.flags));
    m.insert("h2_streamid", f.stream_id.to_string());
    let s = |k: &str| {
        d.get(k).map(|v| {
            v.as_u64()
                .map(|n| n.to_string())
                .unwrap_or_else(|| v.as_str().unwrap_or("").to_string())
        })
    };
    match f.frame_type.as_str() {
        "RST_STREAM" => {
            m.insert("rst_error", s("error_code").unwrap_or_default());
        }
        "GOAWAY" => {
            m.insert("goaway_last_stream_id", s("last_stream_id").unwrap_or_default());
            m.insert("goaway_error", s("error_code").unwrap_or_default());
            m.insert("goaway_debug", s("debug").unwrap_or_default());
        }
        "PING" => {
            m.insert("ping_opaque_hex", s("opaque").unwrap_or_default());
            m.insert("ping_ack", if d["ack"] == true { "1" } else { "0" }.to_string());
        }
        "SETTINGS" => {
            let list: Vec<String> = d["settings"]
                .as_array()
                .map(|a| a.iter().map(|x| format!("{}={}", x["id"], x["value"])).collect())
                .unwrap_or_default();
            m.insert("settings", list.join(","));
        }
        "WINDOW_UPDATE" => {
            m.insert("window_increment", s("increment").unwrap_or_default());
        }
        "HEADERS" | "PUSH_PROMISE" | "CONTINUATION" => {
            let list: Vec<String> = d["headers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            esc(&format!(
                                "{}: {}",
                                p[0].as_str().unwrap_or(""),
                                p[1].as_str().unwrap_or("")
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            m.insert("headers", list.join(" | "));
        }
        _ => {}
    }
    m
}

fn ref_columns(r: &Row, ours: &BTreeMap<&'static str, String>) -> BTreeMap<&'static str, String> {
    let mut m = BTreeMap::new();
    for k in ours.keys() {
        let v = match *k {
            "goaway_debug" => whoclosed::http2::frame::escape_bytes(&unhex(r.get("goaway_debug_hex"))),
            k => r.get(k).to_string(),
        };
        m.insert(*k, v);
    }
    m
}

fn short(s: &str) -> String {
    if s.len() > 160 {
        let mut cut = 160;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…({} bytes)", &s[..cut], s.len())
    } else {
        s.to_string()
    }
}

#[derive(Default)]
struct Tally {
    streams: usize,
    agree: usize,
    frames: usize,
    frame_number_mismatches: usize,
    tls: usize,
    tls_agree: usize,
    known: usize,
    report: Vec<String>,
}

/// A disagreement we know about and stand by (docs/http2.md, "Differences from tshark"): in the direction sent
/// from `sport` of `file`'s TCP stream `stream`, our frames at the packets `ours_extra_at` are frames tshark does
/// not show; tshark shows only the first `tshark_stops_after` frames; the header lists of frames `#unreassembled`
/// (indexes after the skip) are not compared. Everything else must still agree.
struct Known {
    file: &'static str,
    stream: u32,
    sport: u16,
    ours_extra_at: &'static [u64],
    tshark_stops_after: Option<usize>,
    /// tshark frames at these packets that we do not show.
    tshark_extra_at: &'static [u64],
    unreassembled: &'static [usize],
    why: &'static str,
}

const KNOWN: &[Known] = &[
    Known {
        file: "arkime/http2-nghttp2.pcap",
        stream: 0,
        sport: 49570,
        ours_extra_at: &[],
        tshark_stops_after: Some(7),
        tshark_extra_at: &[],
        unreassembled: &[6],
        why: "tshark does not reassemble the 16 KiB HEADERS spread over 15 segments (BoundError, Unreassembled \
              Packet), shows it at its first packet without headers, and decodes nothing more from the client; we \
              decode it, its CONTINUATION and the 4 frames after",
    },
    Known {
        file: "suricata-verify/bug-5929-02__http2_multiple_headers.pcap",
        stream: 0,
        sport: 80,
        ours_extra_at: &[4],
        tshark_stops_after: None,
        tshark_extra_at: &[],
        unreassembled: &[],
        why: "the server's SETTINGS and WINDOW_UPDATE come in packet 4, before the client preface; tshark has not \
              recognised HTTP/2 on port 80 yet and shows packet 4 as plain TCP",
    },
    Known {
        file: "suricata-verify/http2-authority-mismatch__authority_and_host_2.pcap",
        stream: 0,
        sport: 80,
        ours_extra_at: &[4],
        tshark_stops_after: None,
        tshark_extra_at: &[],
        unreassembled: &[],
        why: "server frames before the client preface (as bug-5929-02)",
    },
    Known {
        file: "suricata-verify/http2-userinfo-authority__http2_userinfo_in_authority_1.pcap",
        stream: 0,
        sport: 80,
        ours_extra_at: &[4],
        tshark_stops_after: None,
        tshark_extra_at: &[],
        unreassembled: &[],
        why: "server frames before the client preface (as bug-5929-02)",
    },
    Known {
        file: "suricata-verify/drop-protocol-change__input.pcap",
        stream: 0,
        sport: 80,
        ours_extra_at: &[2],
        tshark_stops_after: None,
        tshark_extra_at: &[],
        unreassembled: &[],
        why: "the server's SETTINGS follows its 101 Switching Protocols head in the same segment; tshark shows the \
              segment as HTTP only (the upgrade request itself is a damaged IP fragment)",
    },
    Known {
        file: "suricata-verify/transform-base64-7296__input.pcap",
        stream: 4,
        sport: 8080,
        ours_extra_at: &[47],
        tshark_stops_after: None,
        tshark_extra_at: &[39],
        unreassembled: &[],
        why: "fuzzed capture (damaged 101 status line, a packet with every TCP flag, a HEADERS with the reserved \
              bit and a corrupted stream id): tshark shows the server's SETTINGS and stops; we do not take \
              SETTINGS, WINDOW_UPDATE, HEADERS-with-reserved-bit as a frame boundary and find frames again at \
              packet 47 (DATA, RST_STREAM)",
    },
];

/// Feeds tshark's decryption of a TLS stream to a fresh analyzer and compares the frames (all columns but the
/// packet). Returns the number of frames compared.
fn compare_decrypted(corpus: &std::path::Path, rel: &str, stream: u32, rows: &[&Row]) -> Result<usize, String> {
    let d = tshark::decrypted_tls(corpus, rel, stream).ok_or("tshark follow,tls failed")?;
    let client_is_node0 = d
        .chunks
        .iter()
        .find(|(_, c)| c.starts_with(b"PRI * HTTP/2.0"))
        .is_some_and(|(n0, _)| *n0);
    let mut a = StreamAnalyzer::new(&H2Config {
        keep_frames: true,
        ..H2Config::default()
    });
    for (i, (from0, bytes)) in d.chunks.iter().enumerate() {
        let dir = if *from0 == client_is_node0 {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        whoclosed::tcp::StreamSink::on_data(&mut a, dir, bytes, http2_support::meta(i as u64, 0));
    }
    a.close();
    let frames: Vec<FrameRecord> = a.drain_frames().collect();
    let mut problems = Vec::new();
    let mut n = 0;
    for dir in Dir::BOTH {
        let from_node0 = (dir == Dir::ToServer) == client_is_node0;
        let theirs: Vec<&&Row> = rows
            .iter()
            .filter(|r| (r.sport == d.node0_port) == from_node0)
            .collect();
        let ours: Vec<&FrameRecord> = frames.iter().filter(|f| f.direction == dir).collect();
        if ours.len() != theirs.len() {
            problems.push(format!("{dir:?}: {} frames, tshark {}", ours.len(), theirs.len()));
        }
        for (i, (o, r)) in ours.iter().zip(&theirs).enumerate() {
            n += 1;
            let oc = as_columns(o);
            let rc = ref_columns(r, &oc);
            if oc != rc {
                problems.push(format!("{dir:?} #{i}: ours {oc:?}, tshark {rc:?}"));
            }
        }
    }
    if problems.is_empty() {
        Ok(n)
    } else {
        Err(problems.join("\n    "))
    }
}

#[test]
fn corpus_streams_agree_with_tshark() {
    let Some(corpus) = tshark::corpus() else {
        eprintln!("note: ../shared/corpus not found; corpus differential skipped");
        return;
    };
    if !tshark::have_tshark() {
        eprintln!("note: tshark not found; corpus differential skipped");
        return;
    }
    let mut t = Tally::default();
    let mut unexpected = Vec::new();
    for rf in tshark::reference_files(&corpus) {
        let rel = rf
            .strip_prefix(corpus.join("reference"))
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".h2.tsv")
            .to_string();
        let cap = corpus.join(&rel);
        let rows = tshark::reference(&rf);
        let segs = tshark::segments(&cap);
        let mut by_stream: BTreeMap<u32, Vec<&Row>> = BTreeMap::new();
        for r in &rows {
            by_stream.entry(r.stream).or_default().push(r);
        }
        for (stream, rows) in by_stream {
            t.streams += 1;
            let ss: Vec<&tshark::Seg> = segs.iter().filter(|s| s.stream == stream).collect();
            let Some(client) = tshark::client_port(&ss) else {
                continue;
            };
            let mut a = StreamAnalyzer::new(&H2Config {
                keep_frames: true,
                ..H2Config::default()
            });
            tshark::feed(&ss, client, &mut a);
            a.close();
            let frames: Vec<FrameRecord> = a.drain_frames().collect();
            let rec = a.finish();
            let label = format!("{rel} stream {stream}");
            if std::env::var("H2_DUMP").is_ok_and(|d| label.contains(&d)) {
                for f in &frames {
                    let mut d = serde_json::to_string(&f.details).unwrap_or_default();
                    d.truncate(300);
                    eprintln!(
                        "  {:>5} {:?} {} len={} flags=0x{:02x} sid={} {d}",
                        f.at.frame, f.direction, f.frame_type, f.length, f.flags, f.stream_id
                    );
                }
                for e in &rec.events {
                    eprintln!("  event {} {:?} {:?}", e.at.frame, e.dir, e.kind);
                }
            }
            if rec.protocol == AppProtocol::Tls {
                t.tls += 1;
                // We do not decrypt; check our decoder on tshark's decrypted bytes instead (no packet numbers).
                match compare_decrypted(&corpus, &rel, stream, &rows) {
                    Ok(n) => {
                        t.tls_agree += 1;
                        t.frames += n;
                        t.report.push(format!(
                            "{label}: TLS, not decoded; its {n} decrypted frames agree with tshark"
                        ));
                    }
                    Err(e) => {
                        t.report.push(format!(
                            "{label}: TLS, not decoded; decrypted frames DIFFERENT\n    {e}"
                        ));
                        unexpected.push(label);
                    }
                }
                continue;
            }
            let mut problems = Vec::new();
            let mut known_used = Vec::new();
            for dir in Dir::BOTH {
                let mut theirs: Vec<&&Row> = rows
                    .iter()
                    .filter(|r| (r.sport == client) == (dir == Dir::ToServer))
                    .collect();
                let mut ours: Vec<&FrameRecord> = frames.iter().filter(|f| f.direction == dir).collect();
                let sport = ss
                    .iter()
                    .find(|s| (s.sport == client) == (dir == Dir::ToServer))
                    .map(|s| s.sport);
                let known = KNOWN
                    .iter()
                    .find(|k| k.file == rel && k.stream == stream && Some(k.sport) == sport);
                if let Some(k) = known {
                    known_used.push(k.why);
                    ours.retain(|f| !k.ours_extra_at.contains(&f.at.frame));
                    theirs.retain(|r| !k.tshark_extra_at.contains(&r.frame));
                    if let Some(n) = k.tshark_stops_after {
                        ours.truncate(n);
                    }
                }
                if ours.len() != theirs.len() {
                    problems.push(format!("{dir:?}: {} frames, tshark {}", ours.len(), theirs.len()));
                }
                for (i, (o, r)) in ours.iter().zip(&theirs).enumerate() {
                    t.frames += 1;
                    let mut oc = as_columns(o);
                    if known.is_some_and(|k| k.unreassembled.contains(&i)) {
                        oc.remove("headers");
                    }
                    let rc = ref_columns(r, &oc);
                    if oc != rc {
                        let diff: Vec<String> = oc
                            .iter()
                            .filter(|(k, v)| rc.get(*k) != Some(v))
                            .map(|(k, v)| {
                                format!(
                                    "{k}: ours {:?} tshark {:?}",
                                    short(v),
                                    short(rc.get(k).map(String::as_str).unwrap_or(""))
                                )
                            })
                            .collect();
                        problems.push(format!("{dir:?} #{i} (tshark frame {}): {}", r.frame, diff.join("; ")));
                    }
                    if o.at.frame != r.frame && !known.is_some_and(|k| k.unreassembled.contains(&i)) {
                        t.frame_number_mismatches += 1;
                        t.report.push(format!(
                            "{label}: {dir:?} #{i} {} at packet {}, tshark {}",
                            o.frame_type, o.at.frame, r.frame
                        ));
                    }
                }
            }
            if problems.is_empty() && known_used.is_empty() {
                t.agree += 1;
                t.report
                    .push(format!("{label}: OK ({} frames, {:?})", rows.len(), rec.protocol));
            } else if problems.is_empty() {
                t.known += 1;
                t.report.push(format!(
                    "{label}: KNOWN DIFFERENCE, the rest agrees: {}",
                    known_used.join("; ")
                ));
            } else {
                t.report
                    .push(format!("{label}: DIFFERENT\n    {}", problems.join("\n    ")));
                unexpected.push(label);
            }
        }
    }
    eprintln!("{}", t.report.join("\n"));
    eprintln!(
        "corpus: {} HTTP/2 streams: {} agree with tshark, {} agree apart from a known tshark shortcoming, {} TLS (not decoded; {} agree once tshark decrypts them); {} frames compared, {} at a different packet",
        t.streams, t.agree, t.known, t.tls, t.tls_agree, t.frames, t.frame_number_mismatches
    );
    assert!(unexpected.is_empty(), "streams disagreeing with tshark: {unexpected:?}");
}

/// Real streams with one segment lost: for every data segment of every (non-TLS) corpus stream in turn, its
/// bytes become a gap. Whatever we then show must be frames tshark shows (in order, same fields; a frame cut
/// by the gap is marked truncated and not compared), and the last frame of the direction must be found again
/// when the loss is not among its last segments.
#[test]
fn corpus_streams_with_a_lost_segment_resync() {
    let Some(corpus) = tshark::corpus() else {
        eprintln!("note: ../shared/corpus not found; skipped");
        return;
    };
    if !tshark::have_tshark() {
        eprintln!("note: tshark not found; skipped");
        return;
    }
    let mut runs = 0;
    let mut recovered = 0;
    for rf in tshark::reference_files(&corpus) {
        let rel = rf
            .strip_prefix(corpus.join("reference"))
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".h2.tsv")
            .to_string();
        let rows = tshark::reference(&rf);
        let segs = tshark::segments(&corpus.join(&rel));
        let streams: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.stream).collect();
        for stream in streams {
            let ss: Vec<&tshark::Seg> = segs.iter().filter(|s| s.stream == stream).collect();
            let Some(client) = tshark::client_port(&ss) else {
                continue;
            };
            let data: Vec<usize> = (0..ss.len()).filter(|&i| ss[i].len > 0).collect();
            if data.len() > 400 || KNOWN.iter().any(|k| k.file == rel && k.stream == stream) {
                continue;
            }
            for (n, &drop) in data.iter().enumerate() {
                let mut lossy: Vec<tshark::Seg> = ss.iter().map(|s| (*s).clone()).collect();
                lossy[drop].payload.clear();
                let refs: Vec<&tshark::Seg> = lossy.iter().collect();
                let mut a = StreamAnalyzer::new(&H2Config {
                    keep_frames: true,
                    ..H2Config::default()
                });
                tshark::feed(&refs, client, &mut a);
                a.close();
                let frames: Vec<FrameRecord> = a.drain_frames().collect();
                if a.protocol() == AppProtocol::Tls {
                    break;
                }
                let rec = a.finish();
                runs += 1;
                let lost_dir = if ss[drop].sport == client {
                    Dir::ToServer
                } else {
                    Dir::ToClient
                };
                for dir in Dir::BOTH {
                    let theirs: Vec<&Row> = rows
                        .iter()
                        .filter(|r| r.stream == stream && (r.sport == client) == (dir == Dir::ToServer))
                        .collect();
                    let ours: Vec<&FrameRecord> = frames
                        .iter()
                        .filter(|f| f.direction == dir && f.details.get("truncated").is_none())
                        .collect();
                    // Subsequence check.
                    let mut j = 0;
                    for o in &ours {
                        let mut oc = as_columns(o);
                        if oc.get("headers").is_some_and(|h| h.contains("<unknown dynamic index")) || dir == lost_dir {
                            // After a loss, HPACK may be out of sync: compare the frame, not its header list.
                            oc.remove("headers");
                        }
                        while j < theirs.len() && ref_columns(theirs[j], &oc) != oc {
                            j += 1;
                        }
                        if j >= theirs.len() {
                            for f in &frames {
                                eprintln!(
                                    "  {} {:?} {} len={} flags=0x{:02x} sid={} trunc={:?}",
                                    f.at.frame,
                                    f.direction,
                                    f.frame_type,
                                    f.length,
                                    f.flags,
                                    f.stream_id,
                                    f.details.get("truncated")
                                );
                            }
                        }
                        assert!(
                            j < theirs.len(),
                            "{rel} stream {stream}, segment {} lost: our {dir:?} frame {oc:?} is not in tshark's list (in order)",
                            ss[drop].frame
                        );
                        j += 1;
                    }
                    // Finding frames again takes three in a row after the loss (docs/http2.md).
                    let after_loss = theirs.iter().filter(|r| r.frame > ss[drop].frame).count();
                    if dir != lost_dir || after_loss >= 3 {
                        if let (Some(t), Some(o)) = (theirs.last(), ours.last()) {
                            let oc = as_columns(o);
                            let mut rc = ref_columns(t, &oc);
                            rc.remove("headers");
                            let mut oc = oc;
                            oc.remove("headers");
                            if oc != rc {
                                for f in &frames {
                                    eprintln!(
                                        "  {} {:?} {} len={} flags=0x{:02x} sid={}",
                                        f.at.frame, f.direction, f.frame_type, f.length, f.flags, f.stream_id
                                    );
                                }
                                for e in &rec.events {
                                    eprintln!("  event {} {:?} {:?}", e.at.frame, e.dir, e.kind);
                                }
                            }
                            assert_eq!(
                                oc, rc,
                                "{rel} stream {stream}, segment {} ({n}) lost: last {dir:?} frame not recovered",
                                ss[drop].frame
                            );
                            recovered += 1;
                        }
                    }
                }
            }
        }
    }
    eprintln!("{runs} runs with one lost segment, {recovered} directions checked for recovery");
    assert!(runs > 100);
}

/// Real streams joined mid-connection: each (non-TLS) corpus stream with its first third of packets cut off,
/// as a capture started late would have it. The analyzer must recognise HTTP/2 without the preface (when
/// three frames or more remain in a direction that show it), show only frames tshark shows (in order, header
/// lists aside: the HPACK table is out of sync), and reach each direction's last frame.
#[test]
fn corpus_streams_joined_mid_connection() {
    let Some(corpus) = tshark::corpus() else {
        eprintln!("note: ../shared/corpus not found; skipped");
        return;
    };
    if !tshark::have_tshark() {
        eprintln!("note: tshark not found; skipped");
        return;
    }
    let mut checked = 0;
    let mut detected = 0;
    for rf in tshark::reference_files(&corpus) {
        let rel = rf
            .strip_prefix(corpus.join("reference"))
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".h2.tsv")
            .to_string();
        let rows = tshark::reference(&rf);
        let segs = tshark::segments(&corpus.join(&rel));
        let streams: std::collections::BTreeSet<u32> = rows.iter().map(|r| r.stream).collect();
        for stream in streams {
            let ss: Vec<&tshark::Seg> = segs.iter().filter(|s| s.stream == stream).collect();
            let Some(client) = tshark::client_port(&ss) else {
                continue;
            };
            if KNOWN.iter().any(|k| k.file == rel && k.stream == stream) {
                continue;
            }
            let data: Vec<usize> = (0..ss.len()).filter(|&i| ss[i].len > 0).collect();
            if data.len() < 6 {
                continue;
            }
            let mut whole = StreamAnalyzer::new(&H2Config::default());
            tshark::feed(&ss, client, &mut whole);
            if whole.finish().protocol == AppProtocol::Tls {
                continue;
            }
            let cut = ss[data[data.len() / 3]].frame;
            let late: Vec<&tshark::Seg> = ss.iter().copied().filter(|s| s.frame >= cut).collect();
            let mut a = StreamAnalyzer::new(&H2Config {
                keep_frames: true,
                ..H2Config::default()
            });
            tshark::feed(&late, client, &mut a);
            a.close();
            let frames: Vec<FrameRecord> = a.drain_frames().collect();
            let rec = a.finish();
            if rec.protocol == AppProtocol::Tls {
                continue;
            }
            checked += 1;
            if rec.protocol.is_http2() {
                detected += 1;
            }
            for dir in Dir::BOTH {
                let theirs: Vec<&Row> = rows
                    .iter()
                    .filter(|r| r.stream == stream && r.frame >= cut && (r.sport == client) == (dir == Dir::ToServer))
                    .collect();
                let ours: Vec<&FrameRecord> = frames
                    .iter()
                    .filter(|f| f.direction == dir && f.details.get("truncated").is_none())
                    .collect();
                let mut j = 0;
                for o in &ours {
                    let mut oc = as_columns(o);
                    oc.remove("headers");
                    while j < theirs.len() && ref_columns(theirs[j], &oc) != oc {
                        j += 1;
                    }
                    assert!(
                        j < theirs.len(),
                        "{rel} stream {stream} from packet {cut}: our {dir:?} frame {oc:?} is not in tshark's list"
                    );
                    j += 1;
                }
                if theirs.len() >= 3 {
                    let (Some(t), Some(o)) = (theirs.last(), ours.last()) else {
                        panic!(
                            "{rel} stream {stream} from packet {cut}: no {dir:?} frames found, tshark has {}",
                            theirs.len()
                        );
                    };
                    let mut oc = as_columns(o);
                    oc.remove("headers");
                    assert_eq!(
                        ref_columns(t, &oc),
                        oc,
                        "{rel} stream {stream} from packet {cut}: last {dir:?} frame not reached"
                    );
                }
            }
        }
    }
    eprintln!("{checked} streams joined late, {detected} recognised as HTTP/2");
    assert!(checked >= 15);
}
