//! Capture file reading: `source::open` on arbitrary bytes (pcap, pcapng, gzip), every packet and warning read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whoclosed::source;

fuzz_target!(|data: &[u8]| {
    let path = whoclosed_fuzz::write_scratch("source", data);
    let Ok(mut src) = source::open(&[&path]) else {
        return;
    };
    let mut n = 0u64;
    while let Some(p) = src.next_packet() {
        assert!(p.data.len() <= source::MAX_CAPLEN);
        assert!(p.orig_len as usize >= p.data.len());
        n += 1;
        if n % 64 == 0 {
            let _ = src.take_warnings();
        }
    }
    let w = src.take_warnings();
    // Warnings per file are capped (20 and one "more than" line).
    assert!(w.len() <= 21, "{} warnings", w.len());
    let _ = src.files();
    let _ = src.progress();
});
