//! Finished connections spill to a temporary file past `--report-memory`: the output must be byte for byte
//! the same as when everything stays in memory, in every format.

use std::path::Path;
use std::process::Command;

fn run(args: &[&str], file: &Path) -> Vec<u8> {
    let out = Command::new(env!("CARGO_BIN_EXE_whoclosed"))
        .args(args)
        .arg(file)
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[test]
fn spilled_output_equals_in_memory_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = [
        root.join("fixtures/captures/middlebox/idle_cluster-v4-client-eth.pcap"),
        root.join("fixtures/captures/tcp/tuple_reuse-v4-client-eth.pcap"),
        root.join("fixtures/captures/middlebox/nat-v4-server-any.pcapng"),
    ];
    for f in &files {
        for format in ["table", "json", "ndjson", "markdown", "html"] {
            let mem = run(&["--format", format, "--timeline"], f);
            let spilled = run(&["--format", format, "--timeline", "--report-memory", "0"], f);
            assert_eq!(mem, spilled, "{} --format {format}", f.display());
        }
    }
}
