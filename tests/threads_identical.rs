//! `--threads` changes how the work is spread, never the output: every fixture, in every format, with the
//! timeline, spilled or not, from a file or from standard input, must give the same bytes with 1, 2 and 3
//! threads. A generated capture of many short connections spread over time makes the threads hand thousands of
//! connections over in many batches (the fixtures are small enough to fit in one).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.to_string_lossy().to_string();
        if p.is_dir() {
            captures(&p, out);
        } else if name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".pcap.gz") {
            out.push(p);
        }
    }
}

/// stdout and exit code of one run; `stdin` is piped in when given.
fn run(args: &[&str], files: &[&Path], stdin: Option<&[u8]>) -> (Vec<u8>, Option<i32>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_whoclosed"));
    cmd.args(args).args(files).stdout(Stdio::piped()).stderr(Stdio::null());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().expect("run whoclosed");
    if let Some(data) = stdin {
        let mut w = child.stdin.take().expect("stdin");
        let data = data.to_vec();
        std::thread::spawn(move || {
            let _ = w.write_all(&data);
        });
    }
    let out = child.wait_with_output().expect("wait");
    (out.stdout, out.status.code())
}

fn same_with_every_thread_count(args: &[&str], files: &[&Path], stdin: Option<&[u8]>) {
    let one = run(&[args, &["--threads", "1"]].concat(), files, stdin);
    for t in ["2", "3"] {
        let other = run(&[args, &["--threads", t]].concat(), files, stdin);
        assert!(
            one == other,
            "--threads {t} differs from --threads 1: {args:?} {files:?} (exit {:?} vs {:?}, {} vs {} bytes)",
            one.1,
            other.1,
            one.0.len(),
            other.0.len()
        );
    }
}

#[test]
fn every_fixture_every_format() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    captures(&root.join("fixtures/captures"), &mut files);
    assert!(files.len() > 100, "fixtures missing: {}", files.len());
    for (i, f) in files.iter().enumerate() {
        same_with_every_thread_count(&["--format", "json"], &[f], None);
        // The other formats on a share of the fixtures each (all of them on every fixture is minutes).
        let format = ["table", "ndjson", "markdown", "html"][i % 4];
        same_with_every_thread_count(&["--format", format, "--timeline", "--time", "relative"], &[f], None);
    }
}

#[test]
fn merged_files_spilled_and_standard_input() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    captures(&root.join("fixtures/captures/tcp"), &mut files);
    let some: Vec<&Path> = files.iter().take(12).map(PathBuf::as_path).collect();
    for format in ["table", "json", "ndjson", "markdown", "html"] {
        same_with_every_thread_count(&["--format", format, "--timeline"], &some, None);
        same_with_every_thread_count(&["--format", format, "--report-memory", "0"], &some, None);
    }
    let plain = files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "pcap"))
        .expect("a pcap fixture");
    let bytes = std::fs::read(plain).expect("read fixture");
    same_with_every_thread_count(&["--format", "json", "-"], &[], Some(&bytes));
}

/// A pcap of `n` short IPv4 connections (handshake, request, response, FIN both ways, last ACK), one started
/// every 2 ms and each lasting ~1 ms, some reset instead, some left open: more than 4096 packets, connections
/// ending all along (the linger is 2 s) and hundreds still lingering at the end.
fn churn_pcap(n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    // pcap header: microseconds, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    let mut t: u64 = 1_700_000_000_000_000;
    let mut push =
        |t: u64, src: [u8; 4], dst: [u8; 4], sp: u16, dp: u16, seq: u32, ack: u32, flags: u8, data: &[u8]| {
            let mut tcp = Vec::new();
            tcp.extend_from_slice(&sp.to_be_bytes());
            tcp.extend_from_slice(&dp.to_be_bytes());
            tcp.extend_from_slice(&seq.to_be_bytes());
            tcp.extend_from_slice(&ack.to_be_bytes());
            tcp.push(5 << 4);
            tcp.push(flags);
            tcp.extend_from_slice(&65535u16.to_be_bytes());
            tcp.extend_from_slice(&[0; 4]);
            tcp.extend_from_slice(data);
            let total = 20 + tcp.len();
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&(total as u16).to_be_bytes());
            ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
            ip.extend_from_slice(&src);
            ip.extend_from_slice(&dst);
            ip.extend_from_slice(&tcp);
            let mut frame = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
            frame.extend_from_slice(&ip);
            out.extend_from_slice(&((t / 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&((t % 1_000_000) as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            out.extend_from_slice(&frame);
        };
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const PSH: u8 = 0x18;
    const FIN: u8 = 0x11;
    const RST: u8 = 0x04;
    for i in 0..n {
        let c = [10, 1, (i >> 8) as u8, i as u8];
        let s = [10, 2, 0, 1];
        let cp = 20000 + (i % 30000) as u16;
        let sp = if i % 7 == 0 { 443 } else { 8080 };
        let (ci, si) = (1000 * i, 5000 * i + 7);
        push(t, c, s, cp, sp, ci, 0, SYN, &[]);
        push(t + 100, s, c, sp, cp, si, ci + 1, SYN | ACK, &[]);
        push(t + 200, c, s, cp, sp, ci + 1, si + 1, ACK, &[]);
        push(t + 300, c, s, cp, sp, ci + 1, si + 1, PSH, b"GET / HTTP/1.1\r\n\r\n");
        push(t + 400, s, c, sp, cp, si + 1, ci + 19, PSH, b"HTTP/1.1 200 OK\r\n\r\n");
        match i % 5 {
            // Left open (a connection the capture ends in).
            4 if i % 3 == 0 => {}
            3 => push(t + 500, s, c, sp, cp, si + 20, 0, RST, &[]),
            _ => {
                push(t + 500, c, s, cp, sp, ci + 19, si + 20, FIN, &[]);
                push(t + 600, s, c, sp, cp, si + 20, ci + 20, FIN, &[]);
                push(t + 700, c, s, cp, sp, ci + 20, si + 21, ACK, &[]);
            }
        }
        t += 2000;
    }
    out
}

#[test]
fn thousands_of_connections_in_many_batches() {
    let dir = std::env::temp_dir().join(format!("whoclosed-threads-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cap = dir.join("churn.pcap");
    let data = churn_pcap(3000);
    std::fs::write(&cap, &data).expect("write capture");
    for format in ["json", "table", "ndjson", "markdown", "html"] {
        same_with_every_thread_count(&["--format", format, "--timeline"], &[&cap], None);
    }
    same_with_every_thread_count(&["--format", "json", "--report-memory", "0"], &[&cap], None);
    same_with_every_thread_count(&["--format", "ndjson", "-"], &[], Some(&data));
    let (json, code) = run(&["--format", "json", "--threads", "2"], &[&cap], None);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_slice(&json).expect("JSON output");
    assert_eq!(v["connections"].as_array().map(Vec::len), Some(3000));
    let _ = std::fs::remove_dir_all(&dir);
}
