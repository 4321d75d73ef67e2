//! Shared by the `cli_*` tests: runs the whoclosed binary as a user would, and writes small captures byte by
//! byte (classic pcap in both byte orders and resolutions, pcapng blocks, a TCP conversation over raw IPv4).
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_whoclosed");

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh directory under the system temp dir (world-readable, so a test may drop privileges), removed when
/// dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("whoclosed-cli-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn file(&self, name: impl AsRef<OsStr>, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name.as_ref());
        std::fs::write(&p, bytes).unwrap();
        p
    }
    pub fn path(&self, name: impl AsRef<OsStr>) -> PathBuf {
        self.0.join(name.as_ref())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What one run printed.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}): {:?}\nstderr: {}",
                String::from_utf8_lossy(&self.stdout),
                self.stderr
            )
        })
    }
}

fn finish(out: Output) -> Run {
    Run {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs whoclosed with these arguments, no standard input, colour variables removed.
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new(BIN)
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .output()
        .expect("running whoclosed");
    finish(out)
}

/// Runs whoclosed with `input` on standard input.
pub fn run_stdin<I, S>(args: I, input: &[u8]) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running whoclosed");
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    finish(out)
}

/// The user-visible contract for an input that cannot be analysed: exit 2, nothing on stdout, and one line on
/// stderr that names the file and says `want`.
pub fn assert_refused(r: &Run, file: &str, want: &str) {
    assert_eq!(r.code, Some(2), "exit code; stderr: {}", r.stderr);
    assert!(
        r.stdout.is_empty(),
        "partial output on stdout: {:?}",
        String::from_utf8_lossy(&r.stdout)
    );
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "not one line on stderr: {:?}", r.stderr);
    let line = lines[0];
    assert!(line.starts_with("whoclosed: "), "{line:?}");
    assert!(line.contains(file), "{line:?} does not name {file:?}");
    assert!(line.contains(want), "{line:?} does not say {want:?}");
}

/// The contract for a damaged but readable input: exit 0, a JSON report of what was read, and one warning line
/// naming the file that says `want` (the same text in `capture.warnings`).
pub fn assert_warned(r: &Run, file: &str, want: &str) -> serde_json::Value {
    assert_eq!(r.code, Some(0), "exit code; stderr: {}", r.stderr);
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "not one line on stderr: {:?}", r.stderr);
    let line = lines[0];
    assert!(line.starts_with("whoclosed: warning: "), "{line:?}");
    assert!(line.contains(file), "{line:?} does not name {file:?}");
    assert!(line.contains(want), "{line:?} does not say {want:?}");
    let v = r.json();
    let warnings = v["capture"]["warnings"].as_array().expect("capture.warnings");
    assert!(
        warnings.iter().any(|w| w.as_str().is_some_and(|w| w.contains(want))),
        "capture.warnings {warnings:?} does not say {want:?}"
    );
    v
}

/// The contract for a clean input: exit 0, a JSON report, nothing on stderr.
pub fn assert_clean(r: &Run) -> serde_json::Value {
    assert_eq!(r.code, Some(0), "exit code; stderr: {}", r.stderr);
    assert!(r.stderr.is_empty(), "stderr: {}", r.stderr);
    r.json()
}

pub fn name(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

// ---- packets ----

/// A raw IPv4 (link type RAW) TCP segment.
#[allow(clippy::too_many_arguments)]
pub fn ipv4_tcp(
    src: [u8; 4],
    sport: u16,
    dst: [u8; 4],
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let total = (40 + payload.len()) as u16;
    let mut v = vec![0x45, 0];
    v.extend_from_slice(&total.to_be_bytes());
    v.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    v.extend_from_slice(&src);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ack.to_be_bytes());
    v.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    v.extend_from_slice(payload);
    v
}

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;

/// One whole TCP conversation (handshake, a request and a response, FIN both ways) on client port `sport`, as
/// (microseconds after the start, packet) pairs.
pub fn conversation(sport: u16, t0_us: u64) -> Vec<(u64, Vec<u8>)> {
    let c = [10, 0, 0, 1];
    let s = [10, 0, 0, 2];
    let (ci, si) = (1000u32, 5000u32);
    let req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let rq = req.len() as u32;
    let rs = resp.len() as u32;
    let mut t = t0_us;
    let mut step = || {
        t += 1000;
        t
    };
    vec![
        (step(), ipv4_tcp(c, sport, s, 80, ci, 0, SYN, &[])),
        (step(), ipv4_tcp(s, 80, c, sport, si, ci + 1, SYN | ACK, &[])),
        (step(), ipv4_tcp(c, sport, s, 80, ci + 1, si + 1, ACK, &[])),
        (step(), ipv4_tcp(c, sport, s, 80, ci + 1, si + 1, PSH | ACK, req)),
        (step(), ipv4_tcp(s, 80, c, sport, si + 1, ci + 1 + rq, PSH | ACK, resp)),
        (
            step(),
            ipv4_tcp(c, sport, s, 80, ci + 1 + rq, si + 1 + rs, FIN | ACK, &[]),
        ),
        (
            step(),
            ipv4_tcp(s, 80, c, sport, si + 1 + rs, ci + 2 + rq, FIN | ACK, &[]),
        ),
        (step(), ipv4_tcp(c, sport, s, 80, ci + 2 + rq, si + 2 + rs, ACK, &[])),
    ]
}

/// `n` conversations one after the other (distinct client ports).
pub fn conversations(n: u16) -> Vec<(u64, Vec<u8>)> {
    (0..n)
        .flat_map(|i| conversation(20_000u16.wrapping_add(i), u64::from(i) * 100_000))
        .collect()
}

// ---- classic pcap ----

/// Base time of the test captures: 2024-01-01T00:00:00Z.
pub const T0: u32 = 1_704_067_200;

fn w32(v: &mut Vec<u8>, big: bool, x: u32) {
    v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
}

fn w16(v: &mut Vec<u8>, big: bool, x: u16) {
    v.extend_from_slice(&if big { x.to_be_bytes() } else { x.to_le_bytes() });
}

pub fn pcap_header(big: bool, nanos: bool, snaplen: u32, link: u32) -> Vec<u8> {
    let mut v = Vec::new();
    w32(&mut v, big, if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
    w16(&mut v, big, 2);
    w16(&mut v, big, 4);
    w32(&mut v, big, 0);
    w32(&mut v, big, 0);
    w32(&mut v, big, snaplen);
    w32(&mut v, big, link);
    v
}

pub fn pcap_record(big: bool, sec: u32, frac: u32, data: &[u8], orig: u32) -> Vec<u8> {
    let mut v = Vec::new();
    for x in [sec, frac, data.len() as u32, orig] {
        w32(&mut v, big, x);
    }
    v.extend_from_slice(data);
    v
}

/// A pcap (link type RAW) of these packets; `nanos` writes nanosecond timestamps.
pub fn pcap(big: bool, nanos: bool, snaplen: u32, pkts: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut f = pcap_header(big, nanos, snaplen, 101);
    for (us, p) in pkts {
        let sec = T0 + (us / 1_000_000) as u32;
        let frac = if nanos {
            (us % 1_000_000) as u32 * 1000 + 7
        } else {
            (us % 1_000_000) as u32
        };
        f.extend(pcap_record(big, sec, frac, p, p.len() as u32));
    }
    f
}

// ---- pcapng ----

pub fn block(big: bool, btype: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let mut v = Vec::new();
    w32(&mut v, big, btype);
    w32(&mut v, big, len);
    v.extend_from_slice(body);
    v.extend(std::iter::repeat_n(0, pad));
    w32(&mut v, big, len);
    v
}

pub fn shb(big: bool) -> Vec<u8> {
    let mut body = Vec::new();
    w32(&mut body, big, 0x1a2b_3c4d);
    w16(&mut body, big, 1);
    w16(&mut body, big, 0);
    body.extend_from_slice(&[0xff; 8]);
    block(big, 0x0A0D_0D0A, &body)
}

pub fn idb(big: bool, link: u16, snaplen: u32) -> Vec<u8> {
    let mut body = Vec::new();
    w16(&mut body, big, link);
    body.extend_from_slice(&[0, 0]);
    w32(&mut body, big, snaplen);
    block(big, 1, &body)
}

/// An enhanced packet block on interface 0 with a microsecond timestamp.
pub fn epb(big: bool, us: u64, data: &[u8]) -> Vec<u8> {
    let ticks = u64::from(T0) * 1_000_000 + us;
    let mut body = Vec::new();
    w32(&mut body, big, 0);
    w32(&mut body, big, (ticks >> 32) as u32);
    w32(&mut body, big, ticks as u32);
    w32(&mut body, big, data.len() as u32);
    w32(&mut body, big, data.len() as u32);
    body.extend_from_slice(data);
    block(big, 6, &body)
}

/// A pcapng section (SHB, one RAW interface, the packets).
pub fn pcapng_section(big: bool, pkts: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut f = shb(big);
    f.extend(idb(big, 101, 65535));
    for (us, p) in pkts {
        f.extend(epb(big, *us, p));
    }
    f
}

/// Gzip of `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}
