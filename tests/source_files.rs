//! Capture files built byte by byte in a temporary directory: good ones in every variant the source must read,
//! and bad ones, whose error or warning must name the file and say what is wrong.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use whoclosed::source::{self, PacketSource, SourceError};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("whoclosed-source-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---- classic pcap writer ----

fn pcap_header(big: bool, nanos: bool, snaplen: u32, link: u32) -> Vec<u8> {
    let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut v = Vec::new();
    let w32 = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    let w16 = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    w32(&mut v, magic);
    w16(&mut v, 2);
    w16(&mut v, 4);
    w32(&mut v, 0);
    w32(&mut v, 0);
    w32(&mut v, snaplen);
    w32(&mut v, link);
    v
}

fn pcap_record(big: bool, sec: u32, frac: u32, data: &[u8], orig: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [sec, frac, data.len() as u32, orig] {
        v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
    }
    v.extend_from_slice(data);
    v
}

/// A raw IPv4/TCP packet (link type RAW) from `sport`, with `n` as sequence number.
fn ip_tcp(sport: u16, n: u32) -> Vec<u8> {
    let mut v = vec![0x45, 0, 0, 40, 0, 0, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&[0, 80]);
    v.extend_from_slice(&n.to_be_bytes());
    v.extend_from_slice(&[0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
    v
}

fn good_pcap(n: u32, sport: u16, t0: u32) -> Vec<u8> {
    let mut f = pcap_header(false, false, 65535, 101);
    for i in 0..n {
        f.extend(pcap_record(false, t0 + i, 0, &ip_tcp(sport, i), 40));
    }
    f
}

// ---- pcapng writer ----

fn block(big: bool, btype: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let w = |x: u32| {
        if big { x.to_be_bytes() } else { x.to_le_bytes() }
    };
    let mut v = Vec::new();
    v.extend_from_slice(&w(btype));
    v.extend_from_slice(&w(len));
    v.extend_from_slice(body);
    v.extend(std::iter::repeat_n(0, pad));
    v.extend_from_slice(&w(len));
    v
}

fn shb(big: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&if big {
        0x1a2b_3c4du32.to_be_bytes()
    } else {
        0x1a2b_3c4du32.to_le_bytes()
    });
    body.extend_from_slice(&if big { 1u16.to_be_bytes() } else { 1u16.to_le_bytes() });
    body.extend_from_slice(&if big { 0u16.to_be_bytes() } else { 0u16.to_le_bytes() });
    body.extend_from_slice(&[0xff; 8]);
    block(big, 0x0A0D_0D0A, &body)
}

/// An IDB with optional if_tsresol (option 9) and if_tsoffset (option 14).
fn idb(big: bool, link: u16, snaplen: u32, tsresol: Option<u8>, tsoffset: Option<i64>) -> Vec<u8> {
    let w16 = |x: u16| {
        if big { x.to_be_bytes() } else { x.to_le_bytes() }
    };
    let mut body = Vec::new();
    body.extend_from_slice(&w16(link));
    body.extend_from_slice(&[0, 0]);
    body.extend_from_slice(&if big {
        snaplen.to_be_bytes()
    } else {
        snaplen.to_le_bytes()
    });
    if let Some(r) = tsresol {
        body.extend_from_slice(&w16(9));
        body.extend_from_slice(&w16(1));
        body.extend_from_slice(&[r, 0, 0, 0]);
    }
    if let Some(o) = tsoffset {
        body.extend_from_slice(&w16(14));
        body.extend_from_slice(&w16(8));
        body.extend_from_slice(&if big { o.to_be_bytes() } else { o.to_le_bytes() });
    }
    if tsresol.is_some() || tsoffset.is_some() {
        body.extend_from_slice(&[0, 0, 0, 0]);
    }
    block(big, 1, &body)
}

fn epb(big: bool, iface: u32, ticks: u64, data: &[u8], orig: u32) -> Vec<u8> {
    let w = |x: u32| {
        if big { x.to_be_bytes() } else { x.to_le_bytes() }
    };
    let mut body = Vec::new();
    body.extend_from_slice(&w(iface));
    body.extend_from_slice(&w((ticks >> 32) as u32));
    body.extend_from_slice(&w(ticks as u32));
    body.extend_from_slice(&w(data.len() as u32));
    body.extend_from_slice(&w(orig));
    body.extend_from_slice(data);
    block(big, 6, &body)
}

fn spb(big: bool, data: &[u8], orig: u32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&if big { orig.to_be_bytes() } else { orig.to_le_bytes() });
    body.extend_from_slice(data);
    block(big, 3, &body)
}

// ---- reading helpers ----

struct Read {
    /// (file, frame, ts nanos, link, captured length, orig length)
    packets: Vec<(u16, u64, i64, u32, usize, u32)>,
    warnings: Vec<String>,
    src: Box<dyn PacketSource>,
}

fn read_all<P: AsRef<Path>>(paths: &[P]) -> Read {
    let mut src = source::open(paths).unwrap_or_else(|e| panic!("open failed: {e}"));
    let mut packets = Vec::new();
    while let Some(p) = src.next_packet() {
        packets.push((p.at.file, p.at.frame, p.ts.nanos(), p.link.0, p.data.len(), p.orig_len));
    }
    let warnings = src.take_warnings().into_iter().map(|w| w.to_string()).collect();
    Read { packets, warnings, src }
}

fn open_err<P: AsRef<Path>>(paths: &[P]) -> SourceError {
    match source::open(paths) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn assert_err(path: &Path, want: &str) {
    let e = open_err(&[path]);
    let line = e.to_string();
    assert!(
        line.contains(&*path.to_string_lossy()),
        "{line:?} does not name the file"
    );
    assert!(line.contains(want), "{line:?} does not say {want:?}");
    assert!(!line.contains('\n'), "{line:?} is not one line");
}

// ---- refused inputs ----

#[test]
fn refused_inputs_name_the_file_and_the_problem() {
    let d = TempDir::new();
    assert_err(&d.file("empty.pcap", b""), "empty file (0 bytes)");
    assert_err(
        &d.file("three.pcap", &[0xd4, 0xc3, 0xb2]),
        "too short to be a capture: 3 bytes",
    );
    assert_err(
        &d.file("short.pcap", &pcap_header(false, false, 65535, 1)[..20]),
        "too short for a pcap file header",
    );
    assert_err(
        &d.file("short.pcapng", &shb(false)[..20]),
        "too short for a pcapng section header",
    );
    assert_err(
        &d.file("magic.pcap", &[0x12, 0x34, 0x56, 0x78, 0, 0, 0, 0, 1, 2]),
        "unknown magic number 0x12345678",
    );
    assert_err(
        &d.file("notes.txt", b"GET / HTTP/1.1\r\nHost: x\r\n"),
        "it is text (starts with \"GET / HTTP/1.1\")",
    );
    assert_err(
        &d.file("page.pcap", b"<!DOCTYPE html>\n<html><body>404</body></html>"),
        "HTML",
    );
    assert_err(
        &d.file("z.pcap.zst", &[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]),
        "compressed with zstd; decompress it first",
    );
    assert_err(&d.0, "is a directory");
    assert_err(&d.0.join("missing.pcap"), "no such file");
    // gzip around something that is not a capture.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"just some text, not a capture at all").unwrap();
    assert_err(
        &d.file("text.gz", &gz.finish().unwrap()),
        "gzip-compressed, but not a pcap or pcapng file",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"").unwrap();
    assert_err(
        &d.file("nothing.gz", &gz.finish().unwrap()),
        "gzip-compressed, but empty",
    );
    // A bad file among good ones fails the whole open, naming the bad one.
    let good = d.file("good.pcap", &good_pcap(2, 1000, 100));
    let bad = d.file("bad.pcap", b"hello");
    let e = open_err(&[&good, &bad]);
    assert!(e.to_string().contains("bad.pcap"), "{e}");
    assert!(source::open::<&Path>(&[]).is_err());
}

#[cfg(unix)]
#[test]
fn non_utf8_file_names_open_and_print() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let d = TempDir::new();
    let name = OsStr::from_bytes(b"caf\xe9.pcap");
    let p = d.0.join(name);
    std::fs::write(&p, good_pcap(3, 1000, 100)).unwrap();
    let r = read_all(&[&p]);
    assert_eq!(r.packets.len(), 3);
    assert!(r.src.files()[0].path.contains("caf\u{fffd}.pcap"));
    std::fs::write(&p, b"").unwrap();
    let e = open_err(&[&p]);
    assert!(e.to_string().contains("caf\u{fffd}.pcap: empty file"), "{e}");
}

// ---- classic pcap ----

#[test]
fn big_endian_nanosecond_pcap() {
    let d = TempDir::new();
    let mut f = pcap_header(true, true, 65535, 1);
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    eth.extend(ip_tcp(1000, 1));
    f.extend(pcap_record(true, 1_700_000_000, 123_456_789, &eth, 54));
    f.extend(pcap_record(true, 1_700_000_001, 5, &eth, 54));
    let r = read_all(&[d.file("be-ns.pcap", &f)]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.packets[0], (0, 1, 1_700_000_000_123_456_789, 1, 54, 54));
    assert_eq!(r.packets[1].2, 1_700_000_001_000_000_005);
    let info = &r.src.files()[0];
    assert_eq!((info.format.as_str(), info.snaplen, info.packets), ("pcap", 65535, 2));
    assert_eq!(info.link_types, vec!["EN10MB".to_string()]);
}

#[test]
fn modified_pcap_and_microseconds() {
    let d = TempDir::new();
    // Kuznetzov "modified" format: magic a1b2cd34 and 24-byte record headers (8 extra bytes).
    let mut f = pcap_header(false, false, 65535, 101);
    f[..4].copy_from_slice(&0xa1b2_cd34u32.to_le_bytes());
    let pkt = ip_tcp(1, 1);
    let mut rec = pcap_record(false, 10, 250_000, &pkt, 40);
    rec.splice(16..16, [0u8; 8]);
    f.extend(&rec);
    f.extend(&rec);
    let r = read_all(&[d.file("modified.pcap", &f)]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.packets.len(), 2);
    assert_eq!(r.packets[1], (0, 2, 10_250_000_000, 101, 40, 40));
}

#[test]
fn snaplen_zero_is_not_an_error() {
    let d = TempDir::new();
    let mut f = pcap_header(false, false, 0, 101);
    f.extend(pcap_record(false, 1, 0, &ip_tcp(1, 1), 40));
    let r = read_all(&[d.file("snap0.pcap", &f)]);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.packets.len(), 1);
}

#[test]
fn truncated_last_record_is_a_warning() {
    let d = TempDir::new();
    let mut f = good_pcap(2, 1000, 100);
    let good_len = f.len();
    f.extend(pcap_record(false, 200, 0, &ip_tcp(1000, 9), 40));
    f.truncate(f.len() - 15);
    let p = d.file("cut.pcap", &f);
    let r = read_all(&[&p]);
    assert_eq!(r.packets.len(), 2);
    assert_eq!(
        r.warnings,
        vec![format!(
            "{}: stopped at byte {good_len}: the last record is cut (needs 56 bytes, file ends after 41)",
            p.display()
        )]
    );
    // Cut inside the record header.
    let mut f = good_pcap(1, 1000, 100);
    f.extend_from_slice(&[1, 2, 3, 4, 5]);
    let r = read_all(&[d.file("cut-hdr.pcap", &f)]);
    assert_eq!(r.packets.len(), 1);
    assert!(
        r.warnings[0]
            .ends_with("stopped at byte 80: the last record is cut (its header needs 16 bytes, file ends after 5)"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn absurd_record_length_stops_with_a_warning() {
    let d = TempDir::new();
    let mut f = good_pcap(1, 1000, 100);
    let at = f.len();
    let mut rec = pcap_record(false, 200, 0, &[0; 64], 64);
    rec[8..12].copy_from_slice(&2_147_483_632u32.to_le_bytes());
    f.extend(rec);
    f.extend(pcap_record(false, 201, 0, &ip_tcp(1000, 9), 40));
    let r = read_all(&[d.file("absurd.pcap", &f)]);
    assert_eq!(r.packets.len(), 1);
    assert_eq!(r.warnings.len(), 1);
    assert!(
        r.warnings[0].contains(&format!(
            "absurd.pcap: stopped at byte {at}: record length 2147483632 exceeds the limit of 262144 bytes \
             (snapshot length 65535)"
        )),
        "{:?}",
        r.warnings
    );
}

#[test]
fn caplen_over_snaplen_is_kept_and_oversized_records_are_cut() {
    let d = TempDir::new();
    // 40 captured bytes with a snapshot length of 30: kept, one warning.
    let mut f = pcap_header(false, false, 30, 101);
    f.extend(pcap_record(false, 1, 0, &ip_tcp(1, 1), 40));
    f.extend(pcap_record(false, 2, 0, &ip_tcp(1, 2), 40));
    let r = read_all(&[d.file("over.pcap", &f)]);
    assert_eq!(r.packets.len(), 2);
    assert_eq!(r.packets[0].4, 40);
    assert_eq!(r.warnings.len(), 1);
    assert!(r.warnings[0].contains("record at byte 24 has 40 captured bytes, more than the snapshot length 30 (kept)"));
    // A 300 000-byte record in a file whose snapshot length allows it: the first 256 KiB are kept, the rest
    // skipped, and the next record is read normally.
    let mut f = pcap_header(false, false, 1 << 20, 101);
    let mut big = ip_tcp(1, 1);
    big.resize(300_000, 0xab);
    f.extend(pcap_record(false, 1, 0, &big, 300_000));
    f.extend(pcap_record(false, 2, 0, &ip_tcp(1, 2), 40));
    let r = read_all(&[d.file("big.pcap", &f)]);
    assert_eq!(r.packets.len(), 2);
    assert_eq!((r.packets[0].4, r.packets[0].5), (262_144, 300_000));
    assert_eq!((r.packets[1].1, r.packets[1].4), (2, 40));
    assert!(
        r.warnings[0].contains("only the first 262144 are kept"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn gzip_files_are_read_transparently() {
    let d = TempDir::new();
    let raw = good_pcap(50, 1000, 100);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    let bytes = gz.finish().unwrap();
    let p = d.file("trace.pcap.gz", &bytes);
    let mut r = read_all(&[&p]);
    assert_eq!(r.packets.len(), 50);
    assert!(r.warnings.is_empty());
    let info = &r.src.files()[0];
    assert!(info.gzip);
    assert_eq!(r.src.progress(), (bytes.len() as u64, Some(bytes.len() as u64)));
    assert!(r.src.next_packet().is_none());
    // A gzip file cut short: the records before the damage are read, then a warning.
    let p = d.file("cut.pcap.gz", &bytes[..bytes.len() / 2]);
    let r = read_all(&[&p]);
    assert!(!r.packets.is_empty() && r.packets.len() < 50);
    assert!(
        r.warnings.iter().any(|w| w.contains("cut.pcap.gz: stopped at byte")),
        "{:?}",
        r.warnings
    );
}

// ---- pcapng ----

#[test]
fn pcapng_sections_interfaces_and_blocks() {
    let d = TempDir::new();
    let pkt = ip_tcp(7, 7);
    let mut f = shb(false);
    // Interface 0: RAW, microseconds; interface 1: RAW, base-2 resolution (2^-10 s) and an offset of 100 s.
    f.extend(idb(false, 101, 0, None, None));
    f.extend(idb(false, 101, 0, Some(0x80 | 10), Some(100)));
    f.extend(epb(false, 0, 1_500_000, &pkt, 40)); // frame 1: 1.5 s
    f.extend(block(false, 0x0000_0BAD, &[0, 0, 0x7f, 0xff, 1, 2, 3, 4])); // custom block: a frame for Wireshark
    f.extend(epb(false, 1, 3 * 1024 + 512, &pkt, 40)); // frame 3: 100 + 3.5 s
    f.extend(block(false, 0x0000_0004, &[0; 8])); // NRB: skipped
    f.extend(block(false, 0x7777_0001, &[1; 12])); // unknown block type: skipped
    f.extend(spb(false, &pkt, 40)); // frame 4: SPB, timestamp of the previous packet
    // A damaged EPB whose captured length does not fit in its block: skipped with a warning, framing intact.
    let mut bad = epb(false, 0, 5, &pkt, 40);
    bad[20..24].copy_from_slice(&5000u32.to_le_bytes());
    let bad_at = f.len();
    f.extend(bad); // frame 5
    f.extend(epb(false, 7, 5, &pkt, 40)); // frame 6: unknown interface
    // Second section, big-endian: interfaces start again; nanosecond resolution; Ethernet with snaplen 30.
    f.extend(shb(true));
    f.extend(idb(true, 1, 30, Some(9), None));
    let mut eth = vec![0u8; 12];
    eth.extend_from_slice(&[0x08, 0x00]);
    eth.extend(&pkt);
    f.extend(epb(true, 0, 2_000_000_007, &eth, 54)); // frame 7
    f.extend(spb(true, &eth, 54)); // frame 8: SPB captured length min(orig 54, snaplen 30)
    let p = d.file("two-sections.pcapng", &f);
    let r = read_all(&[&p]);
    let frames: Vec<u64> = r.packets.iter().map(|p| p.1).collect();
    assert_eq!(frames, vec![1, 3, 4, 7, 8]);
    assert_eq!(r.packets[0].2, 1_500_000_000);
    assert_eq!(r.packets[1].2, 103_500_000_000);
    assert_eq!(r.packets[2].2, 103_500_000_000);
    assert_eq!((r.packets[3].2, r.packets[3].3, r.packets[3].4), (2_000_000_007, 1, 54));
    assert_eq!((r.packets[4].4, r.packets[4].5), (30, 54));
    assert_eq!(r.warnings.len(), 3, "{:?}", r.warnings);
    assert!(r.warnings[0].contains(&format!(
        "skipped a damaged enhanced packet block at byte {bad_at} (frame 5): captured length 5000 does not fit"
    )));
    assert!(r.warnings[1].contains("interface 7 is not described in its section"));
    assert!(r.warnings[2].contains("54 captured bytes, more than the snapshot length 30 (kept)"));
    let info = &r.src.files()[0];
    assert_eq!(info.format, "pcapng");
    assert_eq!(info.link_types, vec!["RAW".to_string(), "EN10MB".to_string()]);
    assert_eq!((info.snaplen, info.packets), (30, 5));
}

#[test]
fn pcapng_broken_framing_stops() {
    let d = TempDir::new();
    let pkt = ip_tcp(7, 7);
    let mut f = shb(false);
    f.extend(idb(false, 101, 0, None, None));
    f.extend(epb(false, 0, 1, &pkt, 40));
    // Leading and trailing lengths disagree: the rest cannot be framed.
    let at = f.len();
    let mut bad = epb(false, 0, 2, &pkt, 40);
    let n = bad.len();
    bad[n - 4..].copy_from_slice(&12u32.to_le_bytes());
    f.extend(bad);
    f.extend(epb(false, 0, 3, &pkt, 40));
    let r = read_all(&[d.file("framing.pcapng", &f)]);
    assert_eq!(r.packets.len(), 1);
    assert!(
        r.warnings[0].contains(&format!(
            "stopped at byte {at}: block of type 0x00000006 is damaged (leading length 72, trailing length 12)"
        )),
        "{:?}",
        r.warnings
    );
    // An impossible length.
    let mut f = shb(false);
    f.extend(idb(false, 101, 0, None, None));
    f.extend_from_slice(&6u32.to_le_bytes());
    f.extend_from_slice(&7u32.to_le_bytes());
    f.extend_from_slice(&[0; 16]);
    let r = read_all(&[d.file("impossible.pcapng", &f)]);
    assert!(r.warnings[0].contains("has an impossible length 7"), "{:?}", r.warnings);
    // Cut in the middle of a block.
    let mut f = shb(false);
    f.extend(idb(false, 101, 0, None, None));
    f.extend(epb(false, 0, 1, &pkt, 40));
    f.truncate(f.len() - 10);
    let r = read_all(&[d.file("cut.pcapng", &f)]);
    assert!(
        r.warnings[0].contains("the last block is cut (needs 72 bytes, file ends after 62)"),
        "{:?}",
        r.warnings
    );
}

// ---- several files ----

#[test]
fn files_merge_in_time_order_ties_keep_file_order() {
    let d = TempDir::new();
    // File 0: t = 100, 102, 104; file 1: t = 101, 102, 103; file 2: empty (header only).
    let mut a = pcap_header(false, false, 65535, 101);
    for (i, t) in [100u32, 102, 104].iter().enumerate() {
        a.extend(pcap_record(false, *t, 0, &ip_tcp(1, i as u32), 40));
    }
    let mut b = pcap_header(false, false, 65535, 101);
    for (i, t) in [101u32, 102, 103].iter().enumerate() {
        b.extend(pcap_record(false, *t, 0, &ip_tcp(2, i as u32), 40));
    }
    let c = pcap_header(false, false, 65535, 101);
    let (pa, pb, pc) = (d.file("a.pcap", &a), d.file("b.pcap", &b), d.file("c.pcap", &c));
    let mut r = read_all(&[&pa, &pb, &pc]);
    let order: Vec<(u16, u64, i64)> = r.packets.iter().map(|p| (p.0, p.1, p.2 / 1_000_000_000)).collect();
    assert_eq!(
        order,
        vec![
            (0, 1, 100),
            (1, 1, 101),
            (0, 2, 102),
            (1, 2, 102),
            (1, 3, 103),
            (0, 3, 104)
        ]
    );
    let files = r.src.files();
    assert_eq!(files.iter().map(|f| f.packets).collect::<Vec<_>>(), vec![3, 3, 0]);
    let total = (a.len() + b.len() + c.len()) as u64;
    assert_eq!(r.src.progress(), (total, Some(total)));
    assert!(r.src.next_packet().is_none());
    // Timestamps going backwards inside one file are kept in file order, without a warning.
    let mut back = pcap_header(false, false, 65535, 101);
    for t in [50u32, 40, 60] {
        back.extend(pcap_record(false, t, 0, &ip_tcp(3, t), 40));
    }
    let r = read_all(&[d.file("back.pcap", &back)]);
    assert_eq!(
        r.packets.iter().map(|p| p.2 / 1_000_000_000).collect::<Vec<_>>(),
        vec![50, 40, 60]
    );
    assert!(r.warnings.is_empty());
}

#[test]
fn big_file_streams_in_constant_memory() {
    // 200 000 records through one 256 KiB buffer: the buffer never grows for small records.
    let d = TempDir::new();
    let mut f = pcap_header(false, false, 65535, 101);
    let rec = pcap_record(false, 1, 0, &ip_tcp(1, 1), 40);
    for _ in 0..200_000 {
        f.extend_from_slice(&rec);
    }
    let p = d.file("many.pcap", &f);
    let mut src = source::open(&[&p]).unwrap();
    let mut n = 0u64;
    let mut last_frame = 0;
    while let Some(pkt) = src.next_packet() {
        n += 1;
        last_frame = pkt.at.frame;
    }
    assert_eq!((n, last_frame), (200_000, 200_000));
    assert_eq!(src.progress().0, f.len() as u64);
}

// ---- standard input ----

/// Runs this test binary again as a child that reads `-`, feeding it `input` on stdin; returns its stdout.
fn run_stdin_child(input: &[u8]) -> String {
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["stdin_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("WHOCLOSED_STDIN_CHILD", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The child half of `stdin_is_streamed` (does nothing unless started by it).
#[test]
fn stdin_child() {
    if std::env::var_os("WHOCLOSED_STDIN_CHILD").is_none() {
        return;
    }
    match source::open(&["-"]) {
        Ok(mut src) => {
            let mut n = 0;
            while src.next_packet().is_some() {
                n += 1;
            }
            let w: Vec<String> = src.take_warnings().into_iter().map(|w| w.to_string()).collect();
            println!("RESULT packets={n} warnings={w:?} progress={:?}", src.progress());
        }
        Err(e) => println!("RESULT error={e}"),
    }
}

#[test]
fn stdin_is_streamed() {
    let raw = good_pcap(1000, 1000, 100);
    let out = run_stdin_child(&raw);
    assert!(
        out.contains(&format!(
            "RESULT packets=1000 warnings=[] progress=({}, None)",
            raw.len()
        )),
        "{out}"
    );
    let out = run_stdin_child(b"");
    assert!(
        out.contains("RESULT error=<stdin>: standard input is empty (no capture data)"),
        "{out}"
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&raw).unwrap();
    let out = run_stdin_child(&gz.finish().unwrap());
    assert!(out.contains("RESULT packets=1000 warnings=[]"), "{out}");
    let e = open_err(&["-", "-"]);
    assert!(e.to_string().contains("standard input named twice"), "{e}");
}

// ---- damage everywhere ----

#[test]
fn mutated_files_never_panic() {
    let d = TempDir::new();
    let pkt = ip_tcp(7, 7);
    let mut ng = shb(false);
    ng.extend(idb(false, 101, 100, Some(0x80 | 20), Some(-5)));
    ng.extend(epb(false, 0, 1, &pkt, 40));
    ng.extend(spb(false, &pkt, 40));
    ng.extend(shb(true));
    ng.extend(idb(true, 1, 0, Some(9), None));
    ng.extend(epb(true, 0, 2, &pkt, 40));
    let mut pc = good_pcap(3, 1, 1);
    pc.extend(pcap_record(false, 9, 9, &pkt, 1000));
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..3000 {
        let mut f = if i % 2 == 0 { ng.clone() } else { pc.clone() };
        for _ in 0..(1 + next() % 4) {
            let at = (next() as usize) % f.len();
            f[at] = next() as u8;
        }
        if next() % 4 == 0 {
            let n = (next() as usize) % f.len();
            f.truncate(n.max(1));
        }
        let p = d.file("m.bin", &f);
        if let Ok(mut src) = source::open(&[&p]) {
            let mut n = 0;
            while let Some(pkt) = src.next_packet() {
                assert!(pkt.data.len() <= source::MAX_CAPLEN);
                n += 1;
                assert!(n < 100);
            }
            let _ = src.take_warnings();
        }
    }
}
