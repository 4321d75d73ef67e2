//! Every TCP stream of every capture in `../shared/corpus/` through the HTTP/2 analyzer (extracted with tshark,
//! so about two minutes; `cargo test --test http2_corpus_sweep -- --ignored`): nothing may panic or hang, and
//! every stream we call HTTP/2 must be one tshark decodes as HTTP/2 (`reference/*.h2.tsv`), or be listed here
//! with the reason.

mod http2_support;

use http2_support::tshark;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;
use whoclosed::http2::{H2Config, StreamAnalyzer};

/// Streams we recognise as HTTP/2 that have no rows in tshark's reference, and why that is right.
const EXTRA_HTTP2: &[(&str, u32, &str)] = &[(
    "suricata-verify/transform-base64-7296__input.pcap",
    5,
    "a lone SETTINGS frame from curl (MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 2^30, ENABLE_PUSH 0) that \
     the fuzzed capture put on a 4-tuple of its own; tshark decodes HTTP/2 only after a preface or on a \
     configured port",
)];

fn captures(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if name != "reference" && name != "LICENSES" {
                captures(&p, out);
            }
        } else if [".pcap", ".pcapng", ".cap", ".dmp", ".trace"]
            .iter()
            .any(|x| name.ends_with(x))
        {
            out.push(p);
        }
    }
}

#[test]
#[ignore = "runs tshark on the whole corpus (about two minutes)"]
fn whole_corpus_never_panics_and_finds_no_false_http2() {
    let Some(corpus) = tshark::corpus() else {
        eprintln!("note: ../shared/corpus not found; skipped");
        return;
    };
    if !tshark::have_tshark() {
        eprintln!("note: tshark not found; skipped");
        return;
    }
    let mut reference: BTreeSet<(String, u32)> = BTreeSet::new();
    for rf in tshark::reference_files(&corpus) {
        let rel = rf
            .strip_prefix(corpus.join("reference"))
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".h2.tsv")
            .to_string();
        for r in tshark::reference(&rf) {
            reference.insert((rel.clone(), r.stream));
        }
    }
    let mut files = Vec::new();
    captures(&corpus, &mut files);
    files.sort();
    let mut protocols: BTreeMap<String, usize> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut bytes = 0usize;
    let mut streams = 0usize;
    let start = Instant::now();
    let mut analysed = std::time::Duration::ZERO;
    let only = std::env::var("H2_FILES").ok();
    for f in &files {
        if only.as_ref().is_some_and(|o| !f.to_string_lossy().contains(o.as_str())) {
            continue;
        }
        let rel = f.strip_prefix(&corpus).unwrap().to_string_lossy().to_string();
        let segs = tshark::segments(f);
        let ids: BTreeSet<u32> = segs.iter().map(|s| s.stream).collect();
        for id in ids {
            let ss: Vec<&tshark::Seg> = segs.iter().filter(|s| s.stream == id).collect();
            let Some(client) = tshark::client_port(&ss) else {
                continue;
            };
            bytes += ss.iter().map(|s| s.payload.len()).sum::<usize>();
            streams += 1;
            let t = Instant::now();
            let mut a = StreamAnalyzer::new(&H2Config {
                keep_frames: true,
                ..H2Config::default()
            });
            tshark::feed(&ss, client, &mut a);
            a.close();
            let frames: Vec<_> = a.drain_frames().collect();
            let rec = a.finish();
            if std::env::var("H2_DUMP").is_ok_and(|d| format!("{rel} stream {id}").contains(&d)) {
                for f in &frames {
                    let mut d = serde_json::to_string(&f.details).unwrap_or_default();
                    d.truncate(200);
                    eprintln!(
                        "  {} {:?} {} len={} flags=0x{:02x} sid={} {d}",
                        f.at.frame, f.direction, f.frame_type, f.length, f.flags, f.stream_id
                    );
                }
            }
            analysed += t.elapsed();
            *protocols.entry(format!("{:?}", rec.protocol)).or_default() += 1;
            let known = reference.contains(&(rel.clone(), id));
            if rec.protocol.is_http2() && !known && !EXTRA_HTTP2.iter().any(|(x, s, _)| *x == rel && *s == id) {
                unexpected.push(format!(
                    "{rel} stream {id}: {:?}, {} frames",
                    rec.protocol,
                    rec.summary.frames[0] + rec.summary.frames[1]
                ));
            }
        }
    }
    eprintln!(
        "{} captures, {streams} TCP streams, {bytes} payload bytes, analysed in {analysed:?} (total with tshark {:?}); protocols: {protocols:?}",
        files.len(),
        start.elapsed()
    );
    for u in &unexpected {
        eprintln!("HTTP/2 not in tshark's reference: {u}");
    }
    assert!(unexpected.is_empty());
}
