//! Bad inputs as a user meets them, through the binary: each gets either a full analysis of what is readable
//! plus a one-line warning naming the file (exit 0), or a one-line error naming the file (exit 2) and nothing on
//! stdout. The source-level details are in tests/source_files.rs; these check what the user sees.

mod cli_support;

use cli_support::*;
use std::path::Path;

fn json_run(p: &Path) -> Run {
    run([std::ffi::OsStr::new("--format"), "json".as_ref(), p.as_os_str()])
}

fn good() -> Vec<(u64, Vec<u8>)> {
    conversations(3)
}

#[test]
fn empty_file_is_refused() {
    let d = TempDir::new("empty");
    let p = d.file("empty.pcap", b"");
    assert_refused(&json_run(&p), &name(&p), "empty file");
}

#[test]
fn too_short_file_is_refused() {
    let d = TempDir::new("short");
    let p = d.file("short.pcap", &[0xd4, 0xc3]);
    assert_refused(&json_run(&p), &name(&p), "too short");
    // A whole magic number but no header.
    let p = d.file("short2.pcap", &pcap_header(false, false, 65535, 101)[..10]);
    assert_refused(&json_run(&p), &name(&p), "too short");
}

#[test]
fn wrong_magic_is_refused_and_described() {
    let d = TempDir::new("magic");
    let p = d.file("notes.pcap", b"these are my notes, not a capture\n");
    assert_refused(&json_run(&p), &name(&p), "not a pcap or pcapng file");
    let p = d.file(
        "random.pcap",
        &[0x06, 0x05, 0x04, 0x03, 0xff, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert_refused(&json_run(&p), &name(&p), "unknown magic number 0x06050403");
    let p = d.file("cap.pcap.zst", &[0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0, 0]);
    assert_refused(&json_run(&p), &name(&p), "zstd");
}

#[test]
fn truncated_last_record_keeps_everything_before_it() {
    let d = TempDir::new("trunc");
    let mut f = pcap(false, false, 65535, &good());
    f.truncate(f.len() - 5);
    let p = d.file("cut.pcap", &f);
    let v = assert_warned(&json_run(&p), &name(&p), "the last record is cut");
    assert_eq!(v["capture"]["packets"], 23);
    assert_eq!(v["connections"].as_array().unwrap().len(), 3);
}

#[test]
fn absurd_record_length_stops_reading_with_a_warning() {
    let d = TempDir::new("absurd");
    let pk = good();
    let mut f = pcap(false, false, 65535, &pk[..8]);
    // caplen 0x7fff_ffff: garbage, and classic pcap has no other framing.
    f.extend(pcap_record(false, T0 + 1, 0, &[], 0));
    let at = f.len() - 8;
    f[at..at + 4].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    f.extend(std::iter::repeat_n(0xab, 200));
    let p = d.file("absurd.pcap", &f);
    let v = assert_warned(&json_run(&p), &name(&p), "record length 2147483647 exceeds the limit");
    assert_eq!(v["capture"]["packets"], 8);
    assert_eq!(v["connections"].as_array().unwrap().len(), 1);
}

/// The first record is already garbage: nothing could be analysed, so exit 2 with a line naming the file.
#[test]
fn absurd_first_record_is_an_error() {
    let d = TempDir::new("absurd1");
    let mut f = pcap_header(false, false, 65535, 101);
    f.extend(pcap_record(false, T0, 0, &[], 0));
    f[32..36].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let p = d.file("absurd1.pcap", &f);
    let r = json_run(&p);
    assert_nothing_analysed(&r, &name(&p), "exceeds the limit");
}

/// Exit 2, nothing on stdout, and the last stderr line is the error naming the file. Any line before it is the
/// same damage printed as a warning first (see `regression_nothing_analysed_printed_twice`).
fn assert_nothing_analysed(r: &Run, file: &str, want: &str) {
    assert_eq!(r.code, Some(2), "stderr: {}", r.stderr);
    assert!(
        r.stdout.is_empty(),
        "partial stdout: {:?}",
        String::from_utf8_lossy(&r.stdout)
    );
    let lines = r.stderr_lines();
    let last = lines.last().expect("an error line");
    assert!(last.starts_with("whoclosed: nothing could be analysed: "), "{last:?}");
    assert!(last.contains(file) && last.contains(want), "{last:?}");
    for l in &lines[..lines.len() - 1] {
        let w = l
            .strip_prefix("whoclosed: warning: ")
            .unwrap_or_else(|| panic!("unexpected line {l:?}"));
        assert!(last.ends_with(w), "{l:?} is not the error repeated");
    }
}

/// When nothing could be analysed, the damage is printed twice: as a warning, then as the error. It should be
/// one line. The fix is in src/cli/run.rs (print the warnings after the "nothing could be analysed" check),
/// which is being reworked on another branch: un-ignore this once it lands.
#[test]
fn regression_nothing_analysed_printed_twice() {
    let d = TempDir::new("twice");
    let mut f = pcap_header(false, false, 65535, 101);
    f.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    let p = d.file("cutfirst.pcap", &f);
    assert_refused(&json_run(&p), &name(&p), "the last record is cut");
}

#[test]
fn cut_first_record_is_an_error() {
    let d = TempDir::new("cutfirst");
    let mut f = pcap_header(false, false, 65535, 101);
    f.extend_from_slice(&[1, 2, 3, 4, 5, 6]);
    let p = d.file("cutfirst.pcap", &f);
    assert_nothing_analysed(&json_run(&p), &name(&p), "the last record is cut");
}

#[test]
fn header_only_capture_is_an_empty_report() {
    let d = TempDir::new("hdr");
    let p = d.file("hdr.pcap", &pcap_header(false, false, 65535, 1));
    let v = assert_clean(&json_run(&p));
    assert_eq!(v["capture"]["packets"], 0);
    assert_eq!(v["connections"].as_array().unwrap().len(), 0);
}

#[test]
fn zero_snaplen_is_read() {
    let d = TempDir::new("snap0");
    let p = d.file("snap0.pcap", &pcap(false, false, 0, &good()));
    let v = assert_clean(&json_run(&p));
    assert_eq!(v["capture"]["packets"], 24);
    assert_eq!(v["capture"]["files"][0]["snaplen"], 0);
    assert_eq!(v["connections"].as_array().unwrap().len(), 3);
}

#[test]
fn big_endian_and_nanosecond_pcaps_are_read() {
    let d = TempDir::new("endian");
    let le = assert_clean(&json_run(&d.file("le.pcap", &pcap(false, false, 65535, &good()))));
    for (big, nanos) in [(true, false), (false, true), (true, true)] {
        let p = d.file(format!("v-{big}-{nanos}.pcap"), &pcap(big, nanos, 65535, &good()));
        let v = assert_clean(&json_run(&p));
        assert_eq!(v["capture"]["packets"], 24, "{big} {nanos}");
        assert_eq!(v["summary"], le["summary"], "{big} {nanos}");
        let start = v["capture"]["start"].as_str().unwrap();
        assert!(start.starts_with("2024-01-01T00:00:00.001"), "{start}");
        if nanos {
            // The nanosecond part survives (7 ns added by the writer).
            assert!(start.contains("00:00:00.001000007"), "{start}");
        }
    }
}

#[test]
fn pcapng_unknown_blocks_are_skipped_silently() {
    let d = TempDir::new("ngunk");
    let pk = good();
    let mut f = shb(false);
    f.extend(idb(false, 101, 65535));
    for (i, (us, p)) in pk.iter().enumerate() {
        if i % 5 == 0 {
            f.extend(block(false, 0x0000_0777, b"vendor data!"));
        }
        f.extend(epb(false, *us, p));
    }
    let p = d.file("unknown.pcapng", &f);
    let v = assert_clean(&json_run(&p));
    assert_eq!(v["capture"]["packets"], 24);
    assert_eq!(v["capture"]["files"][0]["format"], "pcapng");
}

#[test]
fn pcapng_damaged_block_is_skipped_with_a_warning() {
    let d = TempDir::new("ngdmg");
    let pk = good();
    let mut f = shb(false);
    f.extend(idb(false, 101, 65535));
    for (i, (us, p)) in pk.iter().enumerate() {
        let mut b = epb(false, *us, p);
        if i == 10 {
            // Captured length larger than the block: the block is skipped, framing holds.
            b[20..24].copy_from_slice(&5000u32.to_le_bytes());
        }
        f.extend(b);
    }
    let p = d.file("damaged.pcapng", &f);
    let v = assert_warned(&json_run(&p), &name(&p), "skipped a damaged enhanced packet block");
    assert_eq!(v["capture"]["packets"], 23);
}

#[test]
fn pcapng_broken_framing_stops_with_a_warning() {
    let d = TempDir::new("ngframe");
    let pk = good();
    let mut f = pcapng_section(false, &pk[..16]);
    let mut b = epb(false, 9_999_999, &pk[16].1);
    let n = b.len();
    b[n - 4..].copy_from_slice(&7u32.to_le_bytes());
    f.extend(b);
    f.extend(pcapng_section(false, &pk[17..]));
    let p = d.file("frame.pcapng", &f);
    let v = assert_warned(&json_run(&p), &name(&p), "trailing length 7");
    assert_eq!(v["capture"]["packets"], 16);
}

#[test]
fn pcapng_several_sections_of_both_byte_orders() {
    let d = TempDir::new("ngsect");
    let pk = good();
    let mut f = pcapng_section(false, &pk[..8]);
    f.extend(pcapng_section(true, &pk[8..16]));
    f.extend(pcapng_section(false, &pk[16..]));
    let p = d.file("sections.pcapng", &f);
    let v = assert_clean(&json_run(&p));
    assert_eq!(v["capture"]["packets"], 24);
    assert_eq!(v["connections"].as_array().unwrap().len(), 3);
}

#[test]
fn a_directory_is_refused() {
    let d = TempDir::new("dir");
    assert_refused(&json_run(&d.0), &name(&d.0), "is a directory");
}

#[test]
fn a_missing_file_is_refused() {
    let d = TempDir::new("missing");
    let p = d.path("not-there.pcap");
    assert_refused(&json_run(&p), &name(&p), "no such file");
}

#[test]
fn one_bad_file_among_good_ones_is_named() {
    let d = TempDir::new("several");
    let a = d.file("a.pcap", &pcap(false, false, 65535, &good()));
    let b = d.file("b.pcap", b"");
    let r = run([
        std::ffi::OsStr::new("--format"),
        "json".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
    ]);
    assert_refused(&r, &name(&b), "empty file");
    assert!(!r.stderr.contains("a.pcap"), "{}", r.stderr);
}

/// Runs as `nobody` (the tests run as root, which reads anything). Skipped with a note when setpriv is missing
/// or when nobody cannot execute the test binary where it lies.
#[test]
fn no_read_permission_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("perm");
    std::fs::set_permissions(&d.0, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = d.file("secret.pcap", &pcap(false, false, 65535, &good()));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let drop = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];
    let probe = std::process::Command::new("setpriv")
        .args(drop)
        .args([BIN, "--version"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => {
            eprintln!("note: setpriv cannot run whoclosed as nobody here; permission test skipped");
            return;
        }
    }
    let out = std::process::Command::new("setpriv")
        .args(drop)
        .args([
            std::ffi::OsStr::new(BIN),
            "--format".as_ref(),
            "json".as_ref(),
            p.as_os_str(),
        ])
        .output()
        .unwrap();
    let r = Run {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert_refused(&r, &name(&p), "permission denied");
}

#[test]
fn non_utf8_path_is_read_and_named() {
    use std::os::unix::ffi::OsStrExt;
    let d = TempDir::new("utf8");
    let fname = std::ffi::OsStr::from_bytes(b"caf\xe9-\xff.pcap");
    let p = d.file(fname, &pcap(false, false, 65535, &good()));
    let v = assert_clean(&json_run(&p));
    let shown = v["capture"]["files"][0]["path"].as_str().unwrap();
    assert!(shown.ends_with("caf\u{fffd}-\u{fffd}.pcap"), "{shown}");
    // The table names the file too (lossily), and an error about such a file names it.
    let t = run([p.as_os_str()]);
    assert_eq!(t.code, Some(0));
    assert!(String::from_utf8_lossy(&t.stdout).contains("caf\u{fffd}-\u{fffd}.pcap"));
    let missing = d.path(std::ffi::OsStr::from_bytes(b"gone-\xfe.pcap"));
    assert_refused(&json_run(&missing), "gone-\u{fffd}.pcap", "no such file");
}

#[test]
fn gzip_capture_is_read_transparently() {
    let d = TempDir::new("gz");
    let raw = pcap(false, false, 65535, &good());
    let plain = assert_clean(&json_run(&d.file("plain.pcap", &raw)));
    let p = d.file("cap.pcap.gz", &gzip(&raw));
    let v = assert_clean(&json_run(&p));
    assert_eq!(v["capture"]["files"][0]["gzip"], true);
    assert_eq!(v["summary"], plain["summary"]);
    // A gzip pcapng, read from standard input.
    let ng = gzip(&pcapng_section(false, &good()));
    let r = run_stdin(["--format", "json", "-"], &ng);
    let v = assert_clean(&r);
    assert_eq!(v["capture"]["packets"], 24);
}

#[test]
fn truncated_gzip_keeps_what_decompressed() {
    let d = TempDir::new("gzcut");
    let raw = pcap(false, false, 65535, &conversations(200));
    let mut z = gzip(&raw);
    z.truncate(z.len() * 2 / 3);
    let p = d.file("cut.pcap.gz", &z);
    let r = json_run(&p);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let lines = r.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", r.stderr);
    assert!(
        lines[0].contains(&name(&p)) && lines[0].starts_with("whoclosed: warning: "),
        "{}",
        lines[0]
    );
    let v = r.json();
    let n = v["capture"]["packets"].as_u64().unwrap();
    assert!(n > 100 && n < 1600, "{n}");
}

#[test]
fn gzip_of_garbage_is_refused() {
    let d = TempDir::new("gzbad");
    let p = d.file("notes.pcap.gz", &gzip(b"just some text, compressed\n"));
    assert_refused(
        &json_run(&p),
        &name(&p),
        "gzip-compressed, but not a pcap or pcapng file",
    );
    let p = d.file(
        "broken.gz",
        &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef],
    );
    assert_refused(&json_run(&p), &name(&p), "gzip");
}

#[test]
fn empty_standard_input_is_refused() {
    let r = run_stdin(["--format", "json", "-"], b"");
    assert_refused(&r, "<stdin>", "standard input is empty");
}

#[test]
fn standard_input_capture_is_read() {
    let r = run_stdin(["--format", "json", "-"], &pcap(true, true, 65535, &good()));
    let v = assert_clean(&r);
    assert_eq!(v["capture"]["packets"], 24);
}
