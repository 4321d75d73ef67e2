//! Golden verdicts: every capture under fixtures/captures/ with a `*.expected.json` beside it is analysed by the
//! binary, as a user runs it (`whoclosed --format json FILE`), and every connection's client, server, closer and
//! cause must be what the scenario that produced the capture did (fixtures/README.md).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn expected_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            expected_files(&p, out);
        } else if p.to_string_lossy().ends_with(".expected.json") {
            out.push(p);
        }
    }
}

fn capture_for(expected: &Path) -> Option<PathBuf> {
    let s = expected.to_string_lossy();
    let stem = s.strip_suffix(".expected.json")?;
    // `NAME.pcap.expected.json` names its capture in full; `NAME.expected.json` leaves the extension out.
    if Path::new(stem).is_file() {
        return Some(PathBuf::from(stem));
    }
    ["pcap", "pcapng", "pcap.gz"]
        .iter()
        .map(|ext| PathBuf::from(format!("{stem}.{ext}")))
        .find(|p| p.exists())
}

fn endpoint_matches(want: &str, got: &str) -> bool {
    if want == got {
        return true;
    }
    // An IP without a port matches any port ("10.77.1.2" or "fd77:1::2" vs "[fd77:1::2]:40000").
    let host = got
        .rsplit_once(':')
        .map_or(got, |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    want == host
}

pub fn check(expected: &Path) -> Result<(), String> {
    let cap = capture_for(expected).ok_or("no capture beside it")?;
    let want: Value = serde_json::from_str(&std::fs::read_to_string(expected).map_err(|e| e.to_string())?)
        .map_err(|e| format!("bad expected file: {e}"))?;
    let out = Command::new(env!("CARGO_BIN_EXE_whoclosed"))
        .args(["--format", "json"])
        .arg(&cap)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "exit {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let got: Value = serde_json::from_slice(&out.stdout).map_err(|e| format!("bad JSON output: {e}"))?;
    let empty = Vec::new();
    let want_conns = want["connections"].as_array().unwrap_or(&empty);
    let got_conns = got["connections"].as_array().unwrap_or(&empty);
    let mut errs = Vec::new();
    if want_conns.len() != got_conns.len() {
        errs.push(format!(
            "{} connections expected, {} reported: {:?}",
            want_conns.len(),
            got_conns.len(),
            got_conns
                .iter()
                .map(|c| format!("{} → {} {} {}", c["client"], c["server"], c["closed_by"], c["cause"]))
                .collect::<Vec<_>>()
        ));
    }
    for (i, (w, g)) in want_conns.iter().zip(got_conns).enumerate() {
        let n = i + 1;
        for key in ["client", "server"] {
            if let Some(ws) = w[key].as_str()
                && !endpoint_matches(ws, g[key].as_str().unwrap_or(""))
            {
                errs.push(format!("connection {n}: {key} {ws} expected, {} reported", g[key]));
            }
        }
        for key in ["closed_by", "cause"] {
            if let Some(ws) = w[key].as_str()
                && g[key].as_str() != Some(ws)
            {
                errs.push(format!(
                    "connection {n}: {key} {ws} expected, {} reported ({})",
                    g[key],
                    g["explanation"].as_str().unwrap_or("")
                ));
            }
        }
        if let Some(frames) = w["evidence_frames"].as_array() {
            let cited: Vec<u64> = g["evidence"]
                .as_array()
                .unwrap_or(&empty)
                .iter()
                .filter_map(|e| e["frame"].as_u64())
                .collect();
            for f in frames.iter().filter_map(Value::as_u64) {
                if !cited.contains(&f) {
                    errs.push(format!(
                        "connection {n}: evidence should cite frame {f}, cites {cited:?}"
                    ));
                }
            }
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs.join("\n    "))
    }
}

#[test]
fn every_fixture_gets_its_expected_verdict() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/captures");
    let mut files = Vec::new();
    expected_files(&root, &mut files);
    let mut failures = Vec::new();
    for f in &files {
        if let Err(e) = check(f) {
            failures.push(format!("{}:\n    {e}", f.strip_prefix(&root).unwrap_or(f).display()));
        }
    }
    eprintln!("golden: {} fixtures checked, {} failed", files.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} fixtures wrong:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
