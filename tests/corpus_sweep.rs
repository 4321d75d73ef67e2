//! Robustness sweep over the shared corpus (`../shared/corpus`, ~460 public captures, many damaged on purpose):
//! every capture is opened and every packet decoded. Nothing may panic or hang; a file that cannot be read must
//! be refused with a `SourceError`, damage after good records must come out as warnings.
//!
//! When the corpus is not there (a clone without `shared/` beside it) the test prints a note and passes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use whoclosed::decode::{Decoder, Transport};
use whoclosed::source;

fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if dir.join("INDEX.tsv").is_file() {
        Some(dir)
    } else {
        eprintln!("note: {} not found; corpus sweep skipped", dir.display());
        None
    }
}

#[derive(Debug, Default)]
struct Outcome {
    refused: Option<String>,
    packets: u64,
    tcp: u64,
    warnings: Vec<String>,
}

fn sweep(path: &Path) -> Outcome {
    let mut out = Outcome::default();
    let mut src = match source::open(&[path]) {
        Ok(s) => s,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&*path.to_string_lossy()),
                "error does not name the file: {msg}"
            );
            out.refused = Some(e.message);
            return out;
        }
    };
    let mut dec = Decoder::new();
    while let Some(pkt) = src.next_packet() {
        out.packets += 1;
        let d = dec.decode(&pkt);
        if let Transport::Tcp(seg) = d.transport {
            out.tcp += 1;
            assert!(seg.payload.len() as u64 <= u64::from(seg.payload_len) || seg.payload_len == 0);
        }
    }
    let (done, total) = src.progress();
    if let Some(t) = total {
        assert!(done <= t, "{}: progress {done} > total {t}", path.display());
    }
    out.warnings = src.take_warnings().into_iter().map(|w| w.message).collect();
    let files = src.files();
    assert_eq!(files.len(), 1);
    assert_eq!(files.first().map(|f| f.packets), Some(out.packets));
    out
}

#[test]
fn every_capture_reads_without_panic() {
    let Some(dir) = corpus() else { return };
    let index = std::fs::read_to_string(dir.join("INDEX.tsv")).expect("INDEX.tsv");
    let start = Instant::now();
    let mut results = BTreeMap::new();
    for line in index.lines().skip(1) {
        let Some(file) = line.split('\t').next() else {
            continue;
        };
        let t = Instant::now();
        let o = sweep(&dir.join(file));
        assert!(t.elapsed() < Duration::from_secs(20), "{file} took {:?}", t.elapsed());
        results.insert(file.to_string(), o);
    }
    let full = results
        .values()
        .filter(|o| o.refused.is_none() && o.warnings.is_empty())
        .count();
    let warned: Vec<_> = results
        .iter()
        .filter(|(_, o)| o.refused.is_none() && !o.warnings.is_empty())
        .collect();
    let refused: Vec<_> = results.iter().filter(|(_, o)| o.refused.is_some()).collect();
    let packets: u64 = results.values().map(|o| o.packets).sum();
    let tcp: u64 = results.values().map(|o| o.tcp).sum();
    eprintln!(
        "corpus: {} captures, {full} read fully, {} with warnings, {} refused; {packets} packets, {tcp} TCP; {:?}",
        results.len(),
        warned.len(),
        refused.len(),
        start.elapsed()
    );
    for (f, o) in &warned {
        eprintln!("  warn   {f}: {} packets; {}", o.packets, o.warnings.join(" | "));
    }
    for (f, o) in &refused {
        eprintln!("  refuse {f}: {}", o.refused.as_deref().unwrap_or(""));
    }
    // Every file whose container is broken says so; a refused file is one that is not a capture at all.
    let refused_names: Vec<&str> = refused.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(refused_names, EXPECTED_REFUSED, "refused files changed");
    for (f, want) in EXPECTED_WARNINGS {
        let o = &results[*f];
        assert!(
            o.warnings.iter().any(|w| w.contains(want)),
            "{f}: expected a warning containing {want:?}, got {:?}",
            o.warnings
        );
    }
}

/// Files that are not captures (or are empty): refused with a `SourceError`.
const EXPECTED_REFUSED: &[&str] = &["pcap-parser/err-eof.bin"];

/// Damaged containers, and the warning each must produce.
const EXPECTED_WARNINGS: &[(&str, &str)] = &[
    (
        "ndpi/fuzz-2021-10-13.pcap",
        "stopped at byte 24: record length 524501 exceeds the limit of 262144 bytes",
    ),
    (
        "suricata-verify/bug-1450-04__tls_DER-incomplete-header.pcap",
        "stopped at byte 5035: record length 4325376",
    ),
    (
        "suricata-verify/bug-1450-05__tls_DER-incomplete-content.pcap",
        "stopped at byte 5035: record length 4325376",
    ),
    (
        "suricata-verify/bug-6875-01__fuzz.pcap",
        "stopped at byte 228: record length 1409179648",
    ),
    (
        "suricata-verify/smtp-to-comma__10.7.29.101_49898-178.63.41.150_25.pcap",
        "stopped at byte 3695",
    ),
    ("gopacket/le-test901.pcapng", "has version 2.0"),
    ("zeek/trunc/trunc-hdr.pcap", "more than the snapshot length 1 (kept)"),
];
