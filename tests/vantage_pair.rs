//! Two captures of the same traffic (`whoclosed client.pcap server.pcap`): the lab captured every middlebox
//! scenario at both ends at once. The files must be recognised as two vantage points, every connection matched
//! across them (through a NAT too), and the other side's capture must prove what one side can only suspect.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn run(client: &str, server: &str) -> Value {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/captures/middlebox");
    let out = Command::new(env!("CARGO_BIN_EXE_whoclosed"))
        .args(["--format", "json"])
        .arg(dir.join(client))
        .arg(dir.join(server))
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("json")
}

fn evidence_text(c: &Value) -> String {
    c["evidence"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["text"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[test]
fn forged_rst_is_proven_by_the_server_side_capture() {
    for v in ["v4-client-eth.pcap", "v6-client-any.pcap"] {
        let server = if v.starts_with("v4") {
            "middlebox_reset-inject-v4-server-any.pcapng"
        } else {
            "middlebox_reset-inject-v6-server-eth.pcapng"
        };
        // The server-side file first: orientation comes from the captures, not the argument order.
        let r = run(server, &format!("middlebox_reset-inject-{v}"));
        let conns = r["connections"].as_array().expect("connections");
        assert_eq!(conns.len(), 1, "one connection seen from two places");
        let c = &conns[0];
        assert_eq!(c["closed_by"], "middlebox");
        assert_eq!(c["confidence"], "high");
        assert!(c["other_side"]["id"].is_u64());
        assert!(
            evidence_text(c).contains("never left the server"),
            "{}",
            evidence_text(c)
        );
        assert!(
            r["capture"]["notes"][0]
                .as_str()
                .unwrap_or("")
                .contains("two vantage points")
        );
    }
}

#[test]
fn silent_drop_is_proven_by_the_server_side_capture() {
    let r = run(
        "firewall_idle_timeout-drop-v4-client-eth.pcap",
        "firewall_idle_timeout-drop-v4-server-any.pcapng",
    );
    let c = &r["connections"][0];
    assert_eq!(c["cause"], "firewall_idle_timeout");
    assert_eq!(c["closed_by"], "middlebox");
    assert_eq!(c["other_side"]["cause"], "still_open", "the server saw only silence");
    assert!(evidence_text(c).contains("reached the server"), "{}", evidence_text(c));
    // The merged timeline holds both captures' events, clock-aligned.
    let tl = c["timeline"].as_array().expect("timeline");
    assert!(
        tl.iter()
            .any(|e| e["text"].as_str().unwrap_or("").starts_with("[seen at the other end]"))
    );
    let times: Vec<&str> = tl.iter().filter_map(|e| e["time"].as_str()).collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "merged timeline in time order");
}

#[test]
fn nat_rewritten_connections_are_matched_by_their_sequence_numbers() {
    for (c, s) in [
        ("nat-v4-client-eth.pcap", "nat-v4-server-any.pcapng"),
        ("nat-v6-client-any.pcap", "nat-v6-server-eth.pcapng"),
    ] {
        let r = run(c, s);
        let conns = r["connections"].as_array().expect("connections");
        assert_eq!(conns.len(), 3, "{c}: three connections, each matched once");
        for conn in conns {
            let other = &conn["other_side"];
            assert!(other.is_object(), "{c}: unmatched connection {}", conn["client"]);
            assert_ne!(other["client"], conn["client"], "the NAT rewrote the client's address");
            assert_eq!(other["cause"], conn["cause"]);
        }
    }
}

#[test]
fn rotated_pieces_are_not_taken_for_two_vantage_points() {
    // Two different captures: merged in time order as before, no pairing.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/captures/tcp");
    let out = Command::new(env!("CARGO_BIN_EXE_whoclosed"))
        .args(["--format", "json"])
        .arg(dir.join("graceful_client_close-v4-client-eth.pcap"))
        .arg(dir.join("peer_reset-by_server-v4-client-eth.pcap"))
        .output()
        .expect("run");
    let r: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert!(r["capture"]["notes"].as_array().is_none_or(|n| n.is_empty()));
    assert_eq!(r["connections"].as_array().map(Vec::len), Some(2));
}
