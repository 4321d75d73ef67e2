//! An offline run: read the inputs once, analyse as we go, then report (or list HTTP/2 frames).

use super::CliError;
use super::config::Config;
use crate::analyzer::{Analyzer, Finished};
use crate::http2::FrameRecord;
use crate::report::{self, ConnReport, Format, RenderOpts, Report, TimeFmt, rfc3339};
use crate::source::{self, PacketSource};
use crate::ts::Ts;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{self, BufWriter, Write};
use std::time::{Duration, Instant};

/// Shows a progress bar on stderr only once a file takes more than a moment.
struct Progress {
    enabled: bool,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        Progress {
            enabled,
            started: Instant::now(),
            bar: None,
        }
    }

    fn update(&mut self, src: &dyn PacketSource) {
        if !self.enabled {
            return;
        }
        let (done, total) = src.progress();
        if self.bar.is_none() {
            if self.started.elapsed() < Duration::from_millis(700) {
                return;
            }
            let bar = match total {
                Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()).with_style(
                    ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                ),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                    ProgressStyle::with_template("{spinner} {bytes} read, {bytes_per_sec}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                ),
            };
            self.bar = Some(bar);
        }
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

pub fn run(cfg: &Config, inputs: &[std::path::PathBuf]) -> Result<(), CliError> {
    let mut src = source::open(inputs)?;
    let mut analyzer = Analyzer::new(cfg.settings.clone());
    let multi_file = inputs.len() > 1;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut progress = Progress::new(cfg.progress);
    let mut warnings: Vec<String> = Vec::new();
    let mut conns: Vec<(ConnReport, bool)> = Vec::new();
    let mut frames = FrameWriter::new(cfg.format, multi_file);
    let mut n: u64 = 0;

    let keep = |f: &Finished, conns: &mut Vec<(ConnReport, bool)>| {
        let c = report::conn_report(f, multi_file);
        let shown = cfg.selection.matches(&c, &f.tcp);
        if shown && !cfg.frames {
            conns.push((c, shown));
        }
    };

    if cfg.frames {
        frames.begin(&mut out)?;
    }
    while let Some(pkt) = src.next_packet() {
        analyzer.packet(&pkt);
        n += 1;
        if cfg.frames {
            let batch = analyzer.take_frames();
            frames.write(&mut out, &batch, &cfg.selection.conns)?;
        }
        if n % 4096 == 0 {
            for f in analyzer.take_finished() {
                keep(&f, &mut conns);
            }
            progress.update(src.as_ref());
        }
    }
    for f in analyzer.finish() {
        keep(&f, &mut conns);
    }
    progress.finish();
    warnings.extend(src.take_warnings().into_iter().map(|w| w.to_string()));
    for w in &warnings {
        eprintln!("whoclosed: warning: {w}");
    }
    let stats = analyzer.packet_stats().clone();
    if stats.packets == 0
        && let Some(w) = warnings.first()
    {
        return Err(CliError::Nothing(format!("nothing could be analysed: {w}")));
    }
    if cfg.frames {
        let batch = analyzer.take_frames();
        frames.write(&mut out, &batch, &cfg.selection.conns)?;
        frames.end(&mut out)?;
        out.flush()?;
        return Ok(());
    }

    let files = src.files();
    let rep = build_report(&analyzer, files, warnings, conns.into_iter().map(|(c, _)| c).collect());
    render(cfg, &rep, &mut out)?;
    out.flush()?;
    Ok(())
}

/// The report of a run: capture facts from the analyzer, the selected connections in id order.
pub fn build_report(
    analyzer: &Analyzer,
    files: Vec<crate::source::FileInfo>,
    warnings: Vec<String>,
    mut conns: Vec<ConnReport>,
) -> Report {
    conns.sort_by_key(|c| c.id);
    let stats = analyzer.packet_stats();
    let start = stats.first;
    let end = stats.last;
    let mut rep = Report {
        capture: report::CaptureOut {
            files,
            packets: stats.packets,
            bytes: stats.bytes,
            tcp_segments: analyzer.tcp_stats().segments,
            connections: analyzer.tcp_stats().connections,
            start: start.map(rfc3339),
            end: end.map(rfc3339),
            duration_s: match (start, end) {
                (Some(a), Some(b)) => b.since(a).as_secs_f64(),
                _ => 0.0,
            },
            warnings,
            decode: analyzer.decode_stats().clone(),
            tcp: analyzer.tcp_stats().clone(),
            start_ts: start,
        },
        summary: Default::default(),
        connections: conns,
    };
    rep.summarize();
    rep
}

/// Renders a whole report in the configured format.
pub fn render(cfg: &Config, rep: &Report, out: &mut dyn Write) -> Result<(), CliError> {
    let start = rep.capture.start_ts;
    let width = if cfg.format == Format::Table && io::IsTerminal::is_terminal(&io::stdout()) {
        comfy_table::Table::new().width()
    } else {
        None
    };
    let opts = RenderOpts {
        time: TimeFmt {
            mode: cfg.time,
            origin: start.unwrap_or(Ts::ZERO),
        },
        timeline: cfg.timeline,
        color: cfg.color,
        width,
    };
    report::renderer(cfg.format).render(rep, &opts, out)?;
    Ok(())
}

/// Streams `--frames` output in the chosen format.
pub(crate) struct FrameWriter {
    format: Format,
    multi_file: bool,
    first: bool,
}

#[derive(serde::Serialize)]
struct FrameOut<'a> {
    frame: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<u16>,
    time: String,
    connection: u64,
    #[serde(flatten)]
    rec: &'a FrameRecord,
}

impl FrameWriter {
    pub(crate) fn new(format: Format, multi_file: bool) -> FrameWriter {
        FrameWriter {
            format,
            multi_file,
            first: true,
        }
    }

    pub(crate) fn begin(&mut self, out: &mut dyn Write) -> io::Result<()> {
        match self.format {
            Format::Json => out.write_all(b"{\"frames\": [\n"),
            Format::Markdown => {
                writeln!(out, "| frame | conn | dir | stream | type | flags | length | details |")?;
                writeln!(out, "|---:|---:|---|---:|---|---|---:|---|")
            }
            Format::Html => writeln!(
                out,
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>HTTP/2 frames</title></head><body><table>\n<tr><th>frame</th><th>conn</th><th>dir</th><th>stream</th><th>type</th><th>flags</th><th>length</th><th>details</th></tr>"
            ),
            Format::Table => writeln!(
                out,
                "{:>8} {:>5} {:<3} {:>10} {:<13} {:<5} {:>7}  details",
                "frame", "conn", "dir", "stream", "type", "flags", "length"
            ),
            Format::Ndjson => Ok(()),
        }
    }

    /// Writes a batch of frames; with `--conn`, only those connections' frames.
    pub(crate) fn write(&mut self, out: &mut dyn Write, batch: &[(u64, FrameRecord)], conns: &[u64]) -> io::Result<()> {
        for (conn, f) in batch {
            if !conns.is_empty() && !conns.contains(conn) {
                continue;
            }
            let file = self.multi_file.then_some(f.at.file.saturating_add(1));
            let o = FrameOut {
                frame: f.at.frame,
                file,
                time: rfc3339(f.ts),
                connection: *conn,
                rec: f,
            };
            let dir = match f.direction {
                crate::tcp::Dir::ToServer => "→",
                crate::tcp::Dir::ToClient => "←",
            };
            match self.format {
                Format::Json => {
                    if !self.first {
                        out.write_all(b",\n")?;
                    }
                    out.write_all(b"  ")?;
                    serde_json::to_writer(&mut *out, &o).map_err(io::Error::other)?;
                }
                Format::Ndjson => {
                    serde_json::to_writer(&mut *out, &o).map_err(io::Error::other)?;
                    out.write_all(b"\n")?;
                }
                Format::Table => writeln!(
                    out,
                    "{:>8} {:>5} {:<3} {:>10} {:<13} 0x{:02x}  {:>7}  {}",
                    o.frame,
                    conn,
                    dir,
                    f.stream_id,
                    f.frame_type,
                    f.flags,
                    f.length,
                    details_text(f)
                )?,
                Format::Markdown => writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | 0x{:02x} | {} | {} |",
                    o.frame,
                    conn,
                    dir,
                    f.stream_id,
                    f.frame_type,
                    f.flags,
                    f.length,
                    details_text(f).replace('|', "\\|")
                )?,
                Format::Html => writeln!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>0x{:02x}</td><td>{}</td><td>{}</td></tr>",
                    o.frame,
                    conn,
                    dir,
                    f.stream_id,
                    f.frame_type,
                    f.flags,
                    f.length,
                    details_text(f)
                        .replace('&', "&amp;")
                        .replace('<', "&lt;")
                        .replace('>', "&gt;")
                )?,
            }
            self.first = false;
        }
        Ok(())
    }

    pub(crate) fn end(&mut self, out: &mut dyn Write) -> io::Result<()> {
        match self.format {
            Format::Json => out.write_all(if self.first { b"]}\n" } else { b"\n]}\n" }),
            Format::Html => writeln!(out, "</table></body></html>"),
            _ => Ok(()),
        }
    }
}

/// A frame's details on one line: `key=value` pairs, header lists as `name: value; …`.
fn details_text(f: &FrameRecord) -> String {
    let mut parts = Vec::new();
    for (k, v) in &f.details {
        let val = match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Array(items) => items
                .iter()
                .map(|i| match i {
                    serde_json::Value::Array(pair) => pair
                        .iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(": "),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join("; "),
            other => other.to_string(),
        };
        parts.push(format!("{k}={val}"));
    }
    parts.join(" ")
}
