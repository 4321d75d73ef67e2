//! Output as a user meets it: a reader that stops early (`whoclosed big.pcap | head -1`) ends the program
//! quietly with exit 0, and colour codes appear only on a terminal without NO_COLOR, or with `--color always`.

mod cli_support;

use cli_support::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Runs whoclosed on `file` with `args`, reads one line of its output and closes the pipe.
fn head_one(file: &std::path::Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg(file)
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let stdout = child.stdout.take().unwrap();
        let mut r = BufReader::new(stdout);
        r.read_line(&mut first).unwrap();
        // `r` (the read end) is dropped here: the pipe is closed while whoclosed still has output to write.
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        first,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn closed_pipe_ends_quietly() {
    let d = TempDir::new("pipe");
    // 3000 connections: every format writes far more than a pipe buffer holds.
    let p = d.file("big.pcap", &pcap(false, false, 65535, &conversations(3000)));
    for args in [
        &["--quiet"][..],
        &["--format", "json"],
        &["--format", "ndjson"],
        &["--format", "markdown"],
        &["--format", "html"],
        &["--timeline"],
        &["--frames", "--format", "json"],
    ] {
        let (code, first, stderr) = head_one(&p, args);
        assert_eq!(code, Some(0), "{args:?}: stderr {stderr}");
        assert!(!first.is_empty(), "{args:?}: no first line");
        assert!(stderr.is_empty(), "{args:?}: stderr {stderr:?}");
        assert!(!stderr.to_lowercase().contains("broken pipe"), "{args:?}");
    }
}

/// The same through a real shell pipeline.
#[test]
fn closed_pipe_through_head() {
    let d = TempDir::new("head");
    let p = d.file("big.pcap", &pcap(false, false, 65535, &conversations(3000)));
    let script = format!(
        "'{}' '{}' 2>err.txt | head -1 >/dev/null; echo \"${{PIPESTATUS[0]}}\"",
        BIN,
        p.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&d.0)
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(status, "0", "whoclosed's exit status in the pipeline");
    let err = std::fs::read_to_string(d.path("err.txt")).unwrap();
    assert!(err.is_empty(), "stderr: {err:?}");
}

fn has_escape(b: &[u8]) -> bool {
    b.contains(&0x1b)
}

#[test]
fn no_colour_in_a_pipe() {
    let d = TempDir::new("pipecolor");
    let p = d.file("c.pcap", &pcap(false, false, 65535, &conversations(2)));
    for args in [
        &[][..],
        &["--timeline"],
        &["--format", "markdown"],
        &["--color", "auto"],
    ] {
        let r = run(args.iter().map(std::ffi::OsStr::new).chain([p.as_os_str()]));
        assert_eq!(r.code, Some(0));
        assert!(!has_escape(&r.stdout), "{args:?}: escape codes in a pipe");
    }
    let r = run([std::ffi::OsStr::new("--color"), "always".as_ref(), p.as_os_str()]);
    assert!(has_escape(&r.stdout), "--color always gives no colour");
    let r = run([std::ffi::OsStr::new("--color"), "never".as_ref(), p.as_os_str()]);
    assert!(!has_escape(&r.stdout));
    // JSON never has escape codes, even with --color always.
    let r = run([
        std::ffi::OsStr::new("--color"),
        "always".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
        p.as_os_str(),
    ]);
    assert!(!has_escape(&r.stdout));
    r.json();
}

/// Runs `whoclosed ARGS` on a pseudo-terminal (util-linux `script`); `None` when `script` is not installed.
fn on_tty(args: &str, no_color: bool) -> Option<Vec<u8>> {
    let cmd = format!("'{BIN}' {args}");
    let mut c = Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"]).stdin(Stdio::null());
    if no_color {
        c.env("NO_COLOR", "1");
    } else {
        c.env_remove("NO_COLOR");
    }
    let out = c.output().ok()?;
    out.status.success().then_some(out.stdout)
}

#[test]
fn colour_on_a_terminal_unless_no_color() {
    let d = TempDir::new("tty");
    let p = d.file("c.pcap", &pcap(false, false, 65535, &conversations(2)));
    let quoted = format!("'{}'", p.display());
    let Some(tty) = on_tty(&quoted, false) else {
        eprintln!("note: `script` (util-linux) is not available; terminal colour test skipped");
        return;
    };
    assert!(has_escape(&tty), "no colour on a terminal");
    let plain = on_tty(&quoted, true).unwrap();
    assert!(!has_escape(&plain), "NO_COLOR set, yet colour codes");
    let never = on_tty(&format!("--color never {quoted}"), false).unwrap();
    assert!(!has_escape(&never), "--color never, yet colour codes");
    // NO_COLOR with an empty value does not count (no-color.org).
    let mut c = Command::new("script");
    c.args(["-qec", &format!("'{BIN}' {quoted}"), "/dev/null"])
        .env("NO_COLOR", "")
        .stdin(Stdio::null());
    let out = c.output().unwrap();
    assert!(has_escape(&out.stdout));
}
