//! A live run: open the interface (as root), drop privileges, then analyse packets as they arrive and write
//! each connection's verdict as soon as it is made. The analysis is the offline one (packet timestamps, the
//! same analyzer); only the clock that moves packet time on while no packets come is the wall clock.

use super::config::{Config, LiveConfig};
use super::run::{FrameWriter, Output, capture_out};
use super::{CliError, privs};
use crate::analyzer::{Analyzer, Finished};
use crate::report::{self, ConnReport, Format, TimeFmt};
use crate::source::live::{Live, list_interfaces};
use crate::source::{Packet, PacketRef};
use crate::ts::{Dur, Ts};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

/// `-D`: the interfaces libpcap can open.
pub fn list() -> Result<(), CliError> {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    for (i, d) in list_interfaces()?.iter().enumerate() {
        let desc = d.description.as_deref().map(|s| format!(" ({s})")).unwrap_or_default();
        let up = if d.up { "" } else { " [down]" };
        let addrs = if d.addresses.is_empty() {
            String::new()
        } else {
            format!("  {}", d.addresses.join(", "))
        };
        writeln!(out, "{}. {}{desc}{up}{addrs}", i + 1, d.name)?;
    }
    Ok(())
}

/// Writes verdicts as they come.
struct Stream {
    format: Format,
    time: TimeFmt,
    status: bool,
    /// Counts for the final line (table, ndjson) …
    acc: crate::report::incident::SummaryAcc,
    shown: u64,
}

impl Stream {
    fn header(&self, out: &mut dyn Write, iface: &str) -> io::Result<()> {
        if self.format == Format::Table {
            writeln!(
                out,
                "whoclosed: capturing on {iface}; a line per connection as it ends (Ctrl-C to stop)"
            )?;
        }
        Ok(())
    }

    fn emit(&mut self, out: &mut dyn Write, c: ConnReport) -> io::Result<()> {
        self.shown += 1;
        match self.format {
            Format::Ndjson => {
                serde_json::to_writer(&mut *out, &c).map_err(io::Error::other)?;
                out.write_all(b"\n")?;
                out.flush()?;
            }
            Format::Table => {
                if self.status {
                    eprint!("\r\x1b[K");
                }
                writeln!(
                    out,
                    "#{:<5} {}  {} → {}  closed by {:<9} {:<22} {}",
                    c.id,
                    self.time.short(c.end_ts),
                    c.client,
                    c.server,
                    c.closed_by,
                    c.cause,
                    c.reason
                )?;
                if c.is_problem() {
                    writeln!(out, "       {}", c.explanation)?;
                }
                out.flush()?;
            }
            // Whole-document formats go through `Output` (pieces, spilled past a budget) and are written at the end.
            Format::Json | Format::Markdown | Format::Html => {}
        }
        self.acc.add(&c);
        Ok(())
    }
}

pub fn run(cfg: &Config, live: &LiveConfig) -> Result<(), CliError> {
    let iface = live.options.interface.clone();
    let opened = Live::open(live.options.clone())?;
    if let Some(user) = &live.user {
        privs::drop_to(user)?;
    }
    let link = opened.link;
    let mut running = opened.start();
    let stopper = running.stopper();
    {
        let s = stopper.clone();
        ctrlc::set_handler(move || s.stop())
            .map_err(|e| CliError::Usage(format!("cannot install the Ctrl-C handler: {e}")))?;
    }
    let mut analyzer = Analyzer::new(cfg.settings.clone());
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let status = std::io::stderr().is_terminal();
    let mut stream = Stream {
        format: cfg.format,
        time: TimeFmt {
            mode: cfg.time,
            origin: Ts::ZERO,
        },
        status,
        acc: Default::default(),
        shown: 0,
    };
    let renderer = crate::report::renderer(cfg.format);
    let mut document = Output::new(cfg);
    let mut frames = FrameWriter::new(cfg.format, false);
    if cfg.frames {
        frames.begin(&mut out)?;
    } else {
        stream.header(&mut out, &iface)?;
    }
    let started = Instant::now();
    let mut frame: u64 = 0;
    let mut last: Option<(Ts, Instant)> = None;
    let mut last_status = Instant::now();
    let multi_file = false;

    let handle =
        |f: Finished, stream: &mut Stream, document: &mut Output<'_>, out: &mut dyn Write| -> Result<(), CliError> {
            let c = report::conn_report(&f, multi_file);
            if cfg.selection.matches(&c, &f.tcp) && !cfg.frames {
                if matches!(cfg.format, Format::Json | Format::Markdown | Format::Html) {
                    document.add_report(c.clone(), &f.tcp, renderer.as_ref())?;
                }
                stream.emit(out, c)?;
            }
            Ok(())
        };

    loop {
        if live.duration.is_some_and(|d| started.elapsed() >= d) && !stopper.stopped() {
            stopper.stop();
        }
        match running.packets.recv_timeout(Duration::from_millis(200)) {
            Ok(batch) => {
                for &(ts, start, len, orig_len) in &batch.packets {
                    frame += 1;
                    let data = batch.data.get(start..start.saturating_add(len)).unwrap_or(&[]);
                    let pkt = Packet {
                        at: PacketRef { file: 0, frame },
                        ts,
                        link,
                        data,
                        orig_len,
                    };
                    analyzer.packet(&pkt);
                    last = Some((ts, Instant::now()));
                }
                if cfg.frames {
                    frames.write(&mut out, &analyzer.take_frames(), &cfg.selection.conns)?;
                    out.flush()?;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // No packets: move packet time on with the wall clock so closed connections still get their
                // verdict after the linger time.
                if let Some((ts, at)) = last {
                    let waited = Dur::from_nanos(i64::try_from(at.elapsed().as_nanos()).unwrap_or(i64::MAX));
                    analyzer.advance(ts.plus(waited));
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
        for f in analyzer.take_finished() {
            handle(f, &mut stream, &mut document, &mut out)?;
        }
        if status && last_status.elapsed() >= Duration::from_millis(500) {
            let st = &running.stats;
            eprint!(
                "\r\x1b[K{} packets · {} open · {} verdicts · {} dropped",
                st.captured.load(Ordering::Relaxed),
                analyzer.open_connections(),
                stream.shown,
                st.kernel_dropped.load(Ordering::Relaxed) + st.if_dropped.load(Ordering::Relaxed)
            );
            last_status = Instant::now();
        }
    }
    running.join();
    if status {
        eprint!("\r\x1b[K");
    }
    // Connections still open are reported as they stand.
    for f in analyzer.finish() {
        handle(f, &mut stream, &mut document, &mut out)?;
    }
    let st = &running.stats;
    let kernel = st.kernel_dropped.load(Ordering::Relaxed);
    let ifd = st.if_dropped.load(Ordering::Relaxed);
    let captured = st.captured.load(Ordering::Relaxed);
    let mut warnings = Vec::new();
    if kernel + ifd > 0 {
        warnings.push(format!(
            "{iface}: {kernel} packets dropped by the kernel and {ifd} by the interface: verdicts may miss packets"
        ));
    }
    let error = st.error.lock().ok().and_then(|g| g.clone());
    if let Some(e) = &error {
        warnings.push(format!("{iface}: the capture stopped: {e}"));
    }
    if cfg.frames {
        frames.end(&mut out)?;
        out.flush()?;
    } else {
        let files = vec![crate::source::FileInfo {
            path: format!("interface {iface}"),
            format: "live".into(),
            link_types: vec![link.to_string()],
            snaplen: u32::try_from(live.options.snaplen).unwrap_or(0),
            packets: captured,
            ..Default::default()
        }];
        let summary = stream.acc.finish();
        match cfg.format {
            Format::Table => {
                let by_cause: Vec<String> = summary.by_cause.iter().map(|(k, v)| format!("{k} {v}")).collect();
                writeln!(
                    out,
                    "Stopped after {}: {} packets, {} connections reported ({} problems): {}; kernel drops {}, interface drops {}.",
                    Dur::from_nanos(i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX)),
                    captured,
                    summary.connections,
                    summary.problems,
                    if by_cause.is_empty() {
                        "none".to_string()
                    } else {
                        by_cause.join(", ")
                    },
                    kernel,
                    ifd
                )?;
            }
            Format::Ndjson => {
                eprintln!(
                    "whoclosed: {} packets, {} connections reported, kernel drops {kernel}, interface drops {ifd}",
                    captured, stream.shown
                );
            }
            _ => {
                let capture = capture_out(&analyzer, files, warnings.clone());
                document.finish(&capture, renderer.as_ref(), &mut out)?;
            }
        }
        out.flush()?;
    }
    for w in &warnings {
        eprintln!("whoclosed: warning: {w}");
    }
    match error {
        Some(e) => Err(CliError::Nothing(format!("{iface}: capture failed: {e}"))),
        None => Ok(()),
    }
}
