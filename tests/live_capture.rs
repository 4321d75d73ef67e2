//! Live capture end to end (needs root, `ip`, `tcpreplay`; CI runs as root): fixture captures are replayed at
//! their original timing onto a veth in network namespaces of our own while `whoclosed -i` captures on the other
//! end. The verdicts streamed live must equal the offline verdicts of the same fixture, and of the `-w` file.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn can_run() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"));
    let tools = ["ip", "tcpreplay", "capinfos"].iter().all(|t| {
        Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    root && tools
}

fn verdicts_ndjson(text: &str) -> Vec<(String, String, String, String)> {
    let mut v: Vec<_> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or("").to_string();
            (s("client"), s("server"), s("closed_by"), s("cause"))
        })
        .collect();
    v.sort();
    v
}

fn offline(path: &Path) -> Vec<(String, String, String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_whoclosed"))
        .args(["--format", "ndjson"])
        .arg(path)
        .output()
        .expect("run");
    verdicts_ndjson(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn live_verdicts_equal_offline_verdicts() {
    if !can_run() {
        eprintln!("live_capture: needs root, ip, tcpreplay and capinfos; skipped");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixtures = [
        "tcp/connection_refused-v4-client-eth.pcap",
        "tcp/graceful_client_close-v4-client-eth.pcap",
        "tcp/peer_reset-by_server-v4-client-eth.pcap",
        "tcp/keepalive_timeout-v4-client-eth.pcap",
        "middlebox/middlebox_reset-inject-v4-client-eth.pcap",
        "middlebox/firewall_idle_timeout-reset-v4-client-eth.pcap",
    ];
    let mut failures = Vec::new();
    for rel in fixtures {
        let fix = root.join("fixtures/captures").join(rel);
        let out: PathBuf = std::env::temp_dir().join(format!(
            "whoclosed-live-{}-{}",
            std::process::id(),
            rel.replace('/', "_")
        ));
        std::fs::create_dir_all(&out).expect("tmp dir");
        let status = Command::new(root.join("tests/live/replay.sh"))
            .arg(env!("CARGO_BIN_EXE_whoclosed"))
            .arg(&fix)
            .arg(&out)
            .status()
            .expect("replay");
        let live = verdicts_ndjson(&std::fs::read_to_string(out.join("live.ndjson")).unwrap_or_default());
        let want = offline(&fix);
        let written = offline(&out.join("live.pcap"));
        let err = std::fs::read_to_string(out.join("live.err")).unwrap_or_default();
        if !status.success() || live != want || live != written || !err.contains("dropped") && !err.contains("drops 0")
        {
            failures.push(format!(
                "{rel}: exit {:?}\n  live    {live:?}\n  offline {want:?}\n  -w file {written:?}\n  stderr  {err}",
                status.code()
            ));
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `-Z USER`: the capture is opened as root, then the process runs as USER (checked in /proc while it runs).
#[test]
fn drops_privileges_after_opening_the_capture() {
    if !can_run() {
        eprintln!("live_capture: needs root; skipped");
        return;
    }
    let out = std::env::temp_dir().join(format!("whoclosed-z-{}.pcap", std::process::id()));
    let child = Command::new(env!("CARGO_BIN_EXE_whoclosed"))
        .args([
            "-i",
            "lo",
            "--duration",
            "2",
            "--format",
            "ndjson",
            "-Z",
            "nobody",
            "-w",
        ])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap_or("").to_string();
    let done = child.wait_with_output().expect("wait");
    let _ = std::fs::remove_file(&out);
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let uids: Vec<&str> = uid_line.split_whitespace().skip(1).collect();
    assert!(
        !uids.is_empty() && uids.iter().all(|u| *u != "0"),
        "still root while capturing: {uid_line}"
    );
}
