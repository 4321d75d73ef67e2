//! Corpus access for the differential tests: per-TCP-stream payloads extracted with tshark, a small
//! in-order reassembler (stand-in for the TCP stage, which is not on this branch), and the reference rows of
//! `reference/<file>.h2.tsv`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use whoclosed::source::PacketRef;
use whoclosed::tcp::{Dir, SegMeta, StreamSink};
use whoclosed::ts::Ts;

/// `../shared/corpus` beside the crate, if it is there.
pub fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    p.join("reference").is_dir().then_some(p)
}

pub fn have_tshark() -> bool {
    Command::new("tshark")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One TCP segment as tshark saw it.
#[derive(Clone, Debug)]
pub struct Seg {
    pub frame: u64,
    pub ts: Ts,
    pub stream: u32,
    pub sport: u16,
    pub dport: u16,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    /// Relative sequence number.
    pub seq: u32,
    /// TCP payload length on the wire.
    pub len: u32,
    /// Captured payload (may be shorter than `len`).
    pub payload: Vec<u8>,
}

fn hex(s: &str) -> Vec<u8> {
    let s = s.as_bytes();
    (0..s.len() / 2)
        .filter_map(|i| {
            std::str::from_utf8(&s[2 * i..2 * i + 2])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

/// Every TCP segment of a capture, in capture order.
pub fn segments(capture: &Path) -> Vec<Seg> {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(capture)
        .args([
            "-o",
            "tcp.relative_sequence_numbers:TRUE",
            "-T",
            "fields",
            "-E",
            "separator=/t",
            "-E",
            "occurrence=f",
        ])
        .args([
            "-e",
            "frame.number",
            "-e",
            "frame.time_epoch",
            "-e",
            "tcp.stream",
            "-e",
            "tcp.srcport",
        ])
        .args([
            "-e",
            "tcp.dstport",
            "-e",
            "tcp.flags.syn",
            "-e",
            "tcp.flags.ack",
            "-e",
            "tcp.flags.fin",
        ])
        .args([
            "-e",
            "tcp.flags.reset",
            "-e",
            "tcp.seq",
            "-e",
            "tcp.len",
            "-e",
            "tcp.payload",
            "-Y",
            "tcp",
        ])
        .output()
        .expect("tshark runs");
    let text = String::from_utf8_lossy(&out.stdout);
    let flag = |s: &str| s == "1" || s == "True";
    text.lines()
        .filter_map(|l| {
            let c: Vec<&str> = l.split('\t').collect();
            if c.len() < 11 {
                return None;
            }
            let secs: f64 = c[1].parse().ok()?;
            Some(Seg {
                frame: c[0].parse().ok()?,
                ts: Ts::from_nanos((secs * 1e9) as i64),
                stream: c[2].parse().ok()?,
                sport: c[3].parse().ok()?,
                dport: c[4].parse().ok()?,
                syn: flag(c[5]),
                ack: flag(c[6]),
                fin: flag(c[7]),
                rst: flag(c[8]),
                seq: c[9].parse().ok()?,
                len: c[10].parse().ok()?,
                payload: c.get(11).map(|h| hex(h)).unwrap_or_default(),
            })
        })
        .collect()
}

/// The client port of a stream: the SYN sender's, else the first packet's sender.
pub fn client_port(segs: &[&Seg]) -> Option<u16> {
    segs.iter()
        .find(|s| s.syn && !s.ack)
        .map(|s| s.sport)
        .or_else(|| segs.iter().find(|s| s.syn).map(|s| s.dport))
        .or_else(|| segs.first().map(|s| s.sport))
}

#[derive(Default)]
struct DirReasm {
    next: Option<u32>,
    pending: BTreeMap<u32, Seg>,
    fin: Option<SegMeta>,
}

/// Feeds one TCP stream's segments to a sink in order: retransmissions dropped, out-of-order segments held
/// until the hole fills, holes still open at the end announced as gaps, snaplen cuts announced as gaps.
pub fn feed<S: StreamSink>(segs: &[&Seg], client: u16, sink: &mut S) {
    let mut dirs: [DirReasm; 2] = Default::default();
    let meta = |s: &Seg| SegMeta {
        at: PacketRef {
            file: 0,
            frame: s.frame,
        },
        ts: s.ts,
    };
    for s in segs {
        let dir = if s.sport == client {
            Dir::ToServer
        } else {
            Dir::ToClient
        };
        let r = &mut dirs[dir.index()];
        if s.syn {
            // A second SYN in an established direction (seen in fuzzed captures) starts a new sequence space.
            r.next = if r.next.is_none() {
                Some(s.seq.wrapping_add(1))
            } else {
                None
            };
            if s.len == 0 {
                continue;
            }
        }
        if s.fin || s.rst {
            r.fin.get_or_insert(meta(s));
        }
        if s.len == 0 {
            continue;
        }
        if r.next.is_none() {
            r.next = Some(s.seq);
        }
        r.pending.entry(s.seq).or_insert_with(|| (*s).clone());
        drain(r, dir, sink, false);
    }
    for dir in Dir::BOTH {
        let r = &mut dirs[dir.index()];
        drain(r, dir, sink, true);
        if let Some(m) = r.fin {
            sink.on_end(dir, m);
        }
    }
}

fn drain<S: StreamSink>(r: &mut DirReasm, dir: Dir, sink: &mut S, at_end: bool) {
    let meta = |s: &Seg| SegMeta {
        at: PacketRef {
            file: 0,
            frame: s.frame,
        },
        ts: s.ts,
    };
    loop {
        let Some(next) = r.next else { return };
        let Some((&seq, _)) = r.pending.iter().next() else {
            return;
        };
        let s = r.pending.remove(&seq).unwrap();
        let end = s.seq.wrapping_add(s.len);
        if end.wrapping_sub(next) as i32 <= 0 {
            continue; // all old
        }
        let ahead = s.seq.wrapping_sub(next) as i32;
        if ahead > 0 {
            if !at_end {
                r.pending.insert(seq, s);
                return;
            }
            sink.on_gap(dir, ahead as u64, meta(&s));
        }
        let skip = if ahead < 0 { (-ahead) as usize } else { 0 };
        let have = s.payload.len();
        if skip < have {
            sink.on_data(dir, &s.payload[skip..], meta(&s));
        }
        let cut = (s.len as usize).saturating_sub(have.max(skip));
        if cut > 0 {
            sink.on_gap(dir, cut as u64, meta(&s));
        }
        r.next = Some(end);
    }
}

/// A row of `reference/<file>.h2.tsv`.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub frame: u64,
    pub stream: u32,
    pub sport: u16,
    pub cols: HashMap<String, String>,
}

impl Row {
    pub fn get(&self, k: &str) -> &str {
        self.cols.get(k).map(String::as_str).unwrap_or("")
    }
}

pub fn reference(path: &Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    lines
        .filter_map(|l| {
            let cols: HashMap<String, String> = header
                .iter()
                .zip(l.split('\t'))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Some(Row {
                frame: cols.get("frame")?.parse().ok()?,
                stream: cols.get("tcp_stream")?.parse().ok()?,
                sport: cols.get("sport")?.parse().ok()?,
                cols,
            })
        })
        .collect()
}

/// `reference/**/*.h2.tsv` files, sorted.
pub fn reference_files(corpus: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![corpus.join("reference")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(".h2.tsv") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The extra tshark arguments `ARGS.tsv` lists for a capture (relative to the corpus directory).
pub fn args_for(corpus: &Path, rel: &str) -> Vec<String> {
    let text = std::fs::read_to_string(corpus.join("ARGS.tsv")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            l.split_once('\t')
                .filter(|(f, _)| *f == rel)
                .map(|(_, a)| a.split_whitespace().map(String::from).collect())
        })
        .unwrap_or_default()
}

/// A TLS stream decrypted by tshark (`-z follow,tls,raw`): the server-side node's port and the chunks in
/// order, each with `true` when sent by node 0.
pub struct Decrypted {
    pub node0_port: u16,
    pub chunks: Vec<(bool, Vec<u8>)>,
}

pub fn decrypted_tls(corpus: &Path, rel: &str, stream: u32) -> Option<Decrypted> {
    let out = Command::new("tshark")
        .current_dir(corpus)
        .args(["-n", "-r", rel])
        .args(args_for(corpus, rel))
        .args(["-q", "-z", &format!("follow,tls,raw,{stream}")])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let mut node0_port = None;
    let mut chunks = Vec::new();
    for line in text.lines() {
        if let Some(n) = line.strip_prefix("Node 0: ") {
            node0_port = n.rsplit(':').next().and_then(|p| p.parse().ok());
            continue;
        }
        let (from0, h) = match line.strip_prefix('\t') {
            Some(h) => (false, h),
            None => (true, line),
        };
        if !h.is_empty() && h.len() % 2 == 0 && h.bytes().all(|c| c.is_ascii_hexdigit()) {
            chunks.push((from0, hex(h)));
        }
    }
    Some(Decrypted {
        node0_port: node0_port?,
        chunks,
    })
}
