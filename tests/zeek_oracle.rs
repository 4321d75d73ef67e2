//! Differential test against Zeek's own verdicts (`../shared/corpus/zeek-oracle.tsv`): for each TCP record Zeek
//! pins, the party that closed first in Zeek's `history` (the first of F/f/R/r; uppercase is Zeek's originator)
//! must be our `closed_by`. Records Zeek has no closer for must be `none`/`unknown` for us.
//!
//! Known, explained differences are listed in `EXPLAINED`; anything else fails. Skips when the corpus is absent.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (trace, Zeek conn_state, Zeek history, why we answer differently)
const EXPLAINED: &[(&str, &str, &str, &str)] = &[
    (
        "zeek/chksums/localhost-bad-chksum.pcap",
        "OTH",
        "C",
        "checksums validated by Zeek: it dropped the client's packets; we keep them (offload)",
    ),
    (
        "zeek/chksums/localhost-bad-chksum.pcap",
        "SH",
        "HcADF",
        "same run: Zeek saw only the server's half",
    ),
    (
        "zeek/modbus/modbus-and-non-modbus-p502.pcap",
        "RSTRH",
        "Dr",
        "a second Zeek record of a 4-tuple after its timers split it; we report one connection",
    ),
    (
        "zeek/tcp/fin_retransmission.pcap",
        "RSTR",
        "NA",
        "client FIN, then server RST: the FIN sender decided first (docs/diagnosis.md graceful_close)",
    ),
    (
        "zeek/tcp/rst-inject-rae.pcap",
        "REJ",
        "NA",
        "the injected RST after the SYN was ignored (the server carried on); the connection ended by a later server RST",
    ),
    (
        "zeek/tunnels/Teredo.pcap",
        "SH",
        "Fa",
        "Zeek split the 4-tuple into several records by its timers",
    ),
    (
        "zeek/tunnels/Teredo.pcap",
        "OTH",
        "R",
        "Zeek split the 4-tuple into several records by its timers",
    ),
    (
        "zeek/tunnels/Teredo.pcap",
        "RSTRH",
        "^r",
        "Zeek split the 4-tuple into several records by its timers",
    ),
];

fn corpus() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    p.join("zeek-oracle.tsv").exists().then_some(p)
}

fn endpoint(h: &str, p: &str) -> String {
    if h.contains(':') {
        format!("[{h}]:{p}")
    } else {
        format!("{h}:{p}")
    }
}

/// Zeek's first closer in `history`: true = originator.
fn zeek_closer(history: &str) -> Option<bool> {
    let h = history.rsplit('^').next().unwrap_or("");
    h.chars().find(|c| "FfRr".contains(*c)).map(|c| c.is_ascii_uppercase())
}

#[test]
fn closers_agree_with_zeek() {
    let Some(root) = corpus() else {
        eprintln!("zeek_oracle: ../shared/corpus not found, skipped");
        return;
    };
    let tsv = std::fs::read_to_string(root.join("zeek-oracle.tsv")).expect("read oracle");
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect("column");
    let (ct, coh, cop, crh, crp, cproto, cstate, chist) = (
        col("trace"),
        col("orig_h"),
        col("orig_p"),
        col("resp_h"),
        col("resp_p"),
        col("proto"),
        col("conn_state"),
        col("history"),
    );
    let mut cache: HashMap<String, Value> = HashMap::new();
    let (mut agree, mut total, mut unexplained) = (0, 0, Vec::new());
    for line in lines {
        let f: Vec<&str> = line.split('\t').collect();
        let get = |i: usize| f.get(i).copied().unwrap_or("");
        if get(cproto) != "tcp" {
            continue;
        }
        let trace = get(ct).to_string();
        let rep = cache.entry(trace.clone()).or_insert_with(|| {
            let out = Command::new(env!("CARGO_BIN_EXE_whoclosed"))
                .args(["--format", "json"])
                .arg(root.join(&trace))
                .output()
                .expect("run whoclosed");
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
        });
        let (a, b) = (endpoint(get(coh), get(cop)), endpoint(get(crh), get(crp)));
        let Some(conn) = rep["connections"].as_array().and_then(|cs| {
            cs.iter().find(|c| {
                let (x, y) = (c["client"].as_str().unwrap_or(""), c["server"].as_str().unwrap_or(""));
                (x == a && y == b) || (x == b && y == a)
            })
        }) else {
            continue; // a tunnel's inner flow we report under other addresses, or a non-TCP oddity
        };
        total += 1;
        let ours = conn["closed_by"].as_str().unwrap_or("");
        let orig_is_client = conn["client"].as_str() == Some(a.as_str());
        let want = zeek_closer(get(chist)).map(|orig| if orig == orig_is_client { "client" } else { "server" });
        let ok = match want {
            Some(w) => w == ours,
            None => matches!(ours, "none" | "unknown") || get(chist) == "NA",
        };
        if ok {
            agree += 1;
            continue;
        }
        let explained = EXPLAINED
            .iter()
            .any(|(t, s, h, _)| *t == trace && *s == get(cstate) && *h == get(chist));
        if !explained {
            unexplained.push(format!(
                "{trace} {a} → {b}: Zeek {} {} (closer {want:?}), ours {ours} {}",
                get(cstate),
                get(chist),
                conn["cause"]
            ));
        }
    }
    eprintln!(
        "zeek_oracle: {agree} of {total} records agree; {} explained differences",
        total - agree - unexplained.len()
    );
    assert!(
        unexplained.is_empty(),
        "unexplained differences with Zeek:\n{}",
        unexplained.join("\n")
    );
    assert!(total >= 40, "only {total} oracle records matched a connection");
}
