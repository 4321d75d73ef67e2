//! Helpers shared by the fuzz targets: a scratch file for the targets that read captures through
//! `source::open`, and small capture writers.

use std::path::PathBuf;

/// A per-process scratch file (on tmpfs when there is one) the capture targets write each input to.
pub fn scratch_path(tag: &str) -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    dir.join(format!("whoclosed-fuzz-{tag}-{}.pcap", std::process::id()))
}

/// Writes `data` to the scratch file and returns its path.
pub fn write_scratch(tag: &str, data: &[u8]) -> PathBuf {
    let p = scratch_path(tag);
    // A failed write only makes the target read a stale or missing file: still a valid run.
    let _ = std::fs::write(&p, data);
    p
}

/// A classic little-endian microsecond pcap header with this link type and snapshot length.
pub fn pcap_header(link: u32, snaplen: u32) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&0i32.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&snaplen.to_le_bytes());
    v.extend_from_slice(&link.to_le_bytes());
    v
}

/// Appends one pcap record.
pub fn pcap_record(out: &mut Vec<u8>, ts_us: u64, data: &[u8], orig_len: u32) {
    let sec = (ts_us / 1_000_000) as u32;
    let usec = (ts_us % 1_000_000) as u32;
    out.extend_from_slice(&sec.to_le_bytes());
    out.extend_from_slice(&usec.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&orig_len.max(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
}

/// The link types the decoder knows, and one it does not.
pub const LINKS: [u32; 19] = [
    0, 1, 9, 10, 12, 14, 50, 101, 104, 105, 108, 113, 127, 228, 229, 239, 242, 276, 147,
];
