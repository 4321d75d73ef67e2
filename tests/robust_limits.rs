//! Documented limits (docs/limits.md) hold under adversarial input, and each one that is hit is said in the
//! report. Regression tests for the limit and memory bugs found by benches/adversarial.sh.

mod cli_support;

use cli_support::*;
use std::process::Command;
use whoclosed::analyzer::{Analyzer, Finished, Settings};
use whoclosed::source::{LinkType, Packet, PacketRef};
use whoclosed::ts::Ts;

/// Runs raw IPv4 packets (µs, bytes) through the analyzer; returns every finished connection.
fn analyse(settings: Settings, pkts: &[(u64, Vec<u8>)]) -> (Analyzer, Vec<Finished>) {
    let mut a = Analyzer::new(settings);
    let mut done = Vec::new();
    for (i, (us, data)) in pkts.iter().enumerate() {
        let p = Packet {
            at: PacketRef {
                file: 0,
                frame: i as u64 + 1,
            },
            ts: Ts::from_nanos(1_700_000_000_000_000_000 + *us as i64 * 1000),
            link: LinkType::RAW,
            data,
            orig_len: data.len() as u32,
        };
        a.packet(&p);
        done.extend(a.take_finished());
    }
    done.extend(a.finish());
    (a, done)
}

const C: [u8; 4] = [10, 0, 0, 1];
const S: [u8; 4] = [10, 0, 0, 2];

/// A handshake, then `n` segments of `len` bytes that all lie after a hole (the first segment never comes).
fn hole_then(n: u32, len: usize) -> Vec<(u64, Vec<u8>)> {
    let mut v = vec![
        (1, ipv4_tcp(C, 40000, S, 80, 100, 0, SYN, &[])),
        (2, ipv4_tcp(S, 80, C, 40000, 500, 101, SYN | ACK, &[])),
        (3, ipv4_tcp(C, 40000, S, 80, 101, 501, ACK, &[])),
    ];
    let payload = vec![b'z'; len];
    for i in 0..n {
        let seq = 101 + (i + 1) * len as u32;
        v.push((
            10 + u64::from(i),
            ipv4_tcp(C, 40000, S, 80, seq, 501, PSH | ACK, &payload),
        ));
    }
    v
}

/// The reassembly cap (256 KiB ahead of a hole, per direction) was reached without a word in the report: the
/// hole was skipped silently (only an HTTP/2 connection showed a gap). Now the timeline says so.
#[test]
fn regression_reassembly_cap_hit_silently() {
    let (_, done) = analyse(Settings::default(), &hole_then(400, 1000));
    assert_eq!(done.len(), 1);
    let f = &done[0];
    assert!(f.tcp.dirs[0].reassembly_overflows > 0);
    let ev: Vec<_> = f
        .timeline
        .events
        .iter()
        .filter(|e| e.kind == "reassembly_full")
        .collect();
    assert_eq!(ev.len(), 1, "one event for the first overflow");
    assert!(ev[0].text.contains("262144 bytes of client data"), "{}", ev[0].text);
    assert!(
        ev[0].text.contains("1000 missing bytes were given up"),
        "{}",
        ev[0].text
    );
    // Under the cap: no such event.
    let (_, done) = analyse(Settings::default(), &hole_then(100, 1000));
    assert_eq!(done[0].tcp.dirs[0].reassembly_overflows, 0);
    assert!(!done[0].timeline.events.iter().any(|e| e.kind == "reassembly_full"));
}

/// The same through the binary: the JSON timeline carries the event.
#[test]
fn reassembly_limit_is_in_the_json_report() {
    let d = TempDir::new("reasm");
    let p = d.file("hole.pcap", &pcap(false, false, 65535, &hole_then(400, 1000)));
    let r = run([std::ffi::OsStr::new("--format"), "json".as_ref(), p.as_os_str()]);
    let v = assert_clean(&r);
    let tl = v["connections"][0]["timeline"].as_array().unwrap();
    assert!(tl.iter().any(|e| e["event"] == "reassembly_full"), "{tl:?}");
}

/// A full table evicts the least recently active connection early; the capture counters say how many and the
/// evicted connection's explanation says why it was reported early.
#[test]
fn table_full_is_counted_and_explained() {
    let mut pkts = Vec::new();
    for i in 0..50u16 {
        pkts.push((u64::from(i), ipv4_tcp(C, 30000 + i, S, 443, 7, 0, SYN, &[])));
    }
    let mut s = Settings::default();
    s.tcp.max_connections = 10;
    let (a, done) = analyse(s, &pkts);
    assert_eq!(done.len(), 50);
    assert_eq!(a.tcp_stats().evicted_table_full, 40);
    assert_eq!(a.tcp_stats().peak_connections, 10);
    let first = done.iter().find(|f| f.tcp.id == 1).unwrap();
    assert_eq!(first.tcp.end_reason, whoclosed::tcp::EndReason::TableFull);
    // The CLI flag sets the limit and the JSON counts it.
    let d = TempDir::new("table");
    let p = d.file("syns.pcap", &pcap(false, false, 65535, &pkts));
    let r = run([
        std::ffi::OsStr::new("--format"),
        "json".as_ref(),
        "--max-connections".as_ref(),
        "10".as_ref(),
        p.as_os_str(),
    ]);
    let v = assert_clean(&r);
    assert_eq!(v["capture"]["tcp"]["evicted_table_full"], 40);
    let said = v["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["explanation"]
                .as_str()
                .unwrap_or("")
                .contains("connection table was full")
        })
        .count();
    assert_eq!(said, 40, "every evicted connection says why it was reported early");
}

/// An evicted connection whose rule is not `still_open` (here a SYN timeout) read "the client was still
/// retrying when the capture ended": nothing said that a limit ended it.
#[test]
fn regression_table_full_eviction_unexplained() {
    let mut pkts = Vec::new();
    for i in 0..3u16 {
        pkts.push((u64::from(i), ipv4_tcp(C, 30000 + i, S, 443, 7, 0, SYN, &[])));
    }
    let mut s = Settings::default();
    s.tcp.max_connections = 2;
    let (_, done) = analyse(s, &pkts);
    let first = done.iter().find(|f| f.tcp.id == 1).unwrap();
    assert_eq!(first.verdict.rule, "syn_timeout");
    assert!(
        first
            .verdict
            .explanation
            .contains("Reported early: the connection table was full"),
        "{}",
        first.verdict.explanation
    );
    let last = done.iter().find(|f| f.tcp.id == 3).unwrap();
    assert!(!last.verdict.explanation.contains("Reported early"));
}

/// Peak RSS (KiB) of whoclosed with these arguments, through `/usr/bin/time`; `None` when it is not installed.
fn peak_rss_kib(args: &[&std::ffi::OsStr]) -> Option<u64> {
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(BIN)
        .args(args)
        .stdout(std::process::Stdio::null())
        .output()
        .ok()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).lines().last()?.trim().parse().ok()
}

/// 50 000 half-open connections (a SYN flood), all still in the table at the end, one kept for the report.
/// Before: ~7 KB each (connection state inline in the hash table's power-of-two buckets, an HTTP/2 analyzer made
/// for every connection, and every record made at once at the end): ~360 MB. Now ~3.3 KB each.
#[test]
fn regression_syn_flood_memory_per_connection() {
    let d = TempDir::new("flood");
    let n = 50_000u32;
    let mut f = pcap_header(false, false, 65535, 101);
    for i in 0..n {
        let src = (0x0a00_0000u32 + i).to_be_bytes();
        let p = ipv4_tcp(src, 40000, S, 443, i, 0, SYN, &[]);
        f.extend(pcap_record(false, T0, i, &p, p.len() as u32));
    }
    let p = d.file("flood.pcap", &f);
    let args = [
        std::ffi::OsStr::new("--format"),
        "json".as_ref(),
        "--conn".as_ref(),
        "1".as_ref(),
        p.as_os_str(),
    ];
    let Some(kib) = peak_rss_kib(&args) else {
        eprintln!("note: /usr/bin/time is not installed; memory regression test skipped");
        return;
    };
    let per_conn = kib * 1024 / u64::from(n);
    eprintln!("syn flood: {kib} KiB peak for {n} connections ({per_conn} bytes each)");
    assert!(kib < 240 * 1024, "peak RSS {kib} KiB for {n} half-open connections");
}
