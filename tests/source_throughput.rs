//! Throughput of source + decode on a large capture (not run by default).
//!
//! ```text
//! WHOCLOSED_BENCH_FILE=/path/big.pcap cargo test --release --test source_throughput -- --ignored --nocapture
//! ```
//!
//! Prints MB/s and packets/s for reading alone and for reading plus decoding, best of three runs (the file is
//! in the page cache after the first), next to the time `cat file > /dev/null` takes for the same bytes.

use std::time::Instant;
use whoclosed::decode::{Decoder, Transport};
use whoclosed::source;

fn run(path: &str, decode: bool) -> (f64, u64, u64) {
    let start = Instant::now();
    let mut src = source::open(&[path]).expect("open");
    let mut dec = Decoder::new();
    let (mut n, mut tcp, mut bytes) = (0u64, 0u64, 0u64);
    while let Some(p) = src.next_packet() {
        n += 1;
        bytes += p.data.len() as u64;
        if decode && let Transport::Tcp(s) = dec.decode(&p).transport {
            tcp += u64::from(s.payload_len > 0) + 1;
        }
    }
    std::hint::black_box((tcp, bytes));
    (start.elapsed().as_secs_f64(), n, src.progress().0)
}

fn cat(path: &str) -> f64 {
    let start = Instant::now();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("cat '{path}' > /dev/null"))
        .status()
        .expect("cat");
    assert!(status.success());
    start.elapsed().as_secs_f64()
}

#[test]
#[ignore]
fn source_and_decode_throughput() {
    let Ok(path) = std::env::var("WHOCLOSED_BENCH_FILE") else {
        eprintln!("set WHOCLOSED_BENCH_FILE to a large capture");
        return;
    };
    let best = |f: &dyn Fn() -> f64| (0..3).map(|_| f()).fold(f64::MAX, f64::min);
    let t_cat = best(&|| cat(&path));
    let (_, n, size) = run(&path, false);
    let t_src = best(&|| run(&path, false).0);
    let t_dec = best(&|| run(&path, true).0);
    let mb = size as f64 / 1e6;
    eprintln!("{path}: {mb:.0} MB, {n} packets");
    eprintln!("  cat > /dev/null : {t_cat:.3} s  {:.0} MB/s", mb / t_cat);
    for (what, t) in [("source", t_src), ("source+decode", t_dec)] {
        eprintln!(
            "  {what:<15} : {t:.3} s  {:.0} MB/s  {:.2} Mpkt/s  ({:.1}x cat's speed)",
            mb / t,
            n as f64 / t / 1e6,
            t_cat / t
        );
    }
}
