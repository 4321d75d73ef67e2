//! An offline run: read the inputs once, analyse as we go, then report (or list HTTP/2 frames).

use super::CliError;
use super::config::Config;
use crate::analyzer::{Analyzer, Ended, Finished};
use crate::http2::FrameRecord;
use crate::report::{self, ConnReport, Format, RenderOpts, TimeFmt, rfc3339};
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
    if !cfg.frames && crate::vantage::is_vantage_pair(inputs) {
        return run_pair(cfg, inputs);
    }
    if !cfg.frames && cfg.threads >= 2 {
        return run_threaded(cfg, inputs);
    }
    let mut src = source::open(inputs)?;
    let mut analyzer = Analyzer::new(cfg.settings.clone());
    let multi_file = inputs.len() > 1;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut progress = Progress::new(cfg.progress);
    let mut frames = FrameWriter::new(cfg.format, multi_file);
    let renderer = report::renderer(cfg.format);
    let mut out_set = Output::new(cfg);
    let mut n: u64 = 0;

    if cfg.frames {
        frames.begin(&mut out)?;
    }
    while let Some(pkt) = src.next_packet() {
        if n == 0 {
            out_set.start(pkt.ts);
        }
        analyzer.packet(&pkt);
        n += 1;
        if cfg.frames {
            let batch = analyzer.take_frames();
            frames.write(&mut out, &batch, &cfg.selection.conns)?;
        }
        if n % BATCH_PACKETS == 0 {
            // Finished one at a time: after a jump in packet time thousands of connections end together.
            for e in analyzer.take_ended() {
                out_set.add(&e.finish(), multi_file, renderer.as_ref())?;
            }
            progress.update(src.as_ref());
        }
    }
    let mut failed = None;
    analyzer.finish_each(|f| {
        if failed.is_none()
            && let Err(e) = out_set.add(&f, multi_file, renderer.as_ref())
        {
            failed = Some(e);
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    progress.finish();
    let warnings = input_warnings(&analyzer, src.as_mut())?;
    if cfg.frames {
        let batch = analyzer.take_frames();
        frames.write(&mut out, &batch, &cfg.selection.conns)?;
        frames.end(&mut out)?;
        out.flush()?;
        return Ok(());
    }
    let capture = capture_out(&analyzer, src.files(), warnings);
    out_set.finish(&capture, renderer.as_ref(), &mut out)?;
    out.flush()?;
    Ok(())
}

/// Packets between two collections of the connections that ended (and progress bar updates). With threads,
/// each collection is a handover to the report thread, which may wake it (1,024 cost 6 % more time on the
/// benchmark), and each connection waiting in a batch holds memory (16,384 cost 8 MiB more peak).
const BATCH_PACKETS: u64 = 4096;
/// Connections per message to the report thread when the input has ended.
const END_BATCH: usize = 64;
/// Messages waiting for the report thread, at most: the packet thread blocks when it is that far ahead.
const QUEUE: usize = 2;

/// What the packet thread tells the report thread.
enum ToReport {
    /// The first packet's time (the origin of relative times), before any connection.
    Start(Ts),
    /// Connections that ended, in the order they ended.
    Ended(Vec<Ended>),
    /// Connections that ended, rendered by the packet thread (it does so when the report thread is behind).
    Rendered(Vec<Rendered>),
}

/// The packet thread's side of the handover: a batch goes to the report thread, or, when the report thread is
/// behind (its queue full), is rendered here first — the channel keeps the batches in order either way, so the
/// output is the same bytes, and the packet thread does the report's work instead of waiting for it.
struct Handover<'c> {
    tx: std::sync::mpsc::SyncSender<ToReport>,
    cfg: &'c Config,
    opts: RenderOpts,
    renderer: Box<dyn report::Renderer>,
    multi_file: bool,
}

impl Handover<'_> {
    fn start(&mut self, ts: Ts) -> Result<(), ()> {
        self.opts.time.origin = ts;
        self.tx.send(ToReport::Start(ts)).map_err(|_| ())
    }

    /// Err when the report thread stopped (on an error, returned when it is joined).
    fn send(&mut self, batch: Vec<Ended>) -> Result<(), ()> {
        use std::sync::mpsc::TrySendError;
        match self.tx.try_send(ToReport::Ended(batch)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(ToReport::Ended(batch))) => {
                let done = batch
                    .into_iter()
                    .filter_map(|e| {
                        render(
                            self.cfg,
                            &self.opts,
                            &e.finish(),
                            self.multi_file,
                            self.renderer.as_ref(),
                        )
                    })
                    .collect();
                self.tx.send(ToReport::Rendered(done)).map_err(|_| ())
            }
            Err(TrySendError::Full(msg)) => self.tx.send(msg).map_err(|_| ()),
            Err(TrySendError::Disconnected(_)) => Err(()),
        }
    }
}

/// An offline run on two threads: this one reads and analyses the packets (source, decode, TCP, HTTP/2) and
/// hands each batch of ended connections on; the report thread finishes them (timeline, diagnosis) and renders
/// their pieces — or takes them rendered, when it was behind and this thread rendered them ([`Handover`]). It
/// gets the connections in the order a one-thread run handles them and does the same with them, so the output
/// is the same bytes.
fn run_threaded(cfg: &Config, inputs: &[std::path::PathBuf]) -> Result<(), CliError> {
    let mut src = source::open_with(
        inputs,
        source::OpenOptions {
            read_ahead: cfg.threads >= 3,
        },
    )?;
    let mut analyzer = Analyzer::new(cfg.settings.clone());
    let multi_file = inputs.len() > 1;
    let mut progress = Progress::new(cfg.progress);
    let out_set = std::thread::scope(|scope| -> Result<Output<'_>, CliError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<ToReport>(QUEUE);
        let report = std::thread::Builder::new()
            .name("whoclosed-report".into())
            .spawn_scoped(scope, move || -> Result<Output<'_>, CliError> {
                let renderer = report::renderer(cfg.format);
                let mut out_set = Output::new(cfg);
                for msg in rx {
                    match msg {
                        ToReport::Start(ts) => out_set.start(ts),
                        ToReport::Ended(batch) => {
                            for e in batch {
                                out_set.add(&e.finish(), multi_file, renderer.as_ref())?;
                            }
                        }
                        ToReport::Rendered(batch) => {
                            for x in batch {
                                out_set.apply(x)?;
                            }
                        }
                    }
                }
                Ok(out_set)
            })?;
        let mut hand = Handover {
            tx,
            cfg,
            opts: render_opts(cfg),
            renderer: report::renderer(cfg.format),
            multi_file,
        };
        // A send fails only when the report thread stopped (on an error, returned by `join` below).
        let mut n: u64 = 0;
        while let Some(pkt) = src.next_packet() {
            if n == 0 && hand.start(pkt.ts).is_err() {
                break;
            }
            analyzer.packet(&pkt);
            n += 1;
            if n % BATCH_PACKETS == 0 {
                let batch = analyzer.take_ended();
                if !batch.is_empty() && hand.send(batch).is_err() {
                    break;
                }
                progress.update(&src);
            }
        }
        let mut batch = Vec::with_capacity(END_BATCH);
        analyzer.end_each(|e| {
            batch.push(e);
            if batch.len() >= END_BATCH {
                let _ = hand.send(std::mem::replace(&mut batch, Vec::with_capacity(END_BATCH)));
            }
        });
        if !batch.is_empty() {
            let _ = hand.send(batch);
        }
        drop(hand);
        match report.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })?;
    progress.finish();
    let warnings = input_warnings(&analyzer, &mut src)?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let renderer = report::renderer(cfg.format);
    let capture = capture_out(&analyzer, src.files(), warnings);
    out_set.finish(&capture, renderer.as_ref(), &mut out)?;
    out.flush()?;
    Ok(())
}

/// The inputs' warnings, printed on standard error; an error when they are all there is (nothing analysed).
fn input_warnings(analyzer: &Analyzer, src: &mut dyn PacketSource) -> Result<Vec<String>, CliError> {
    let warnings: Vec<String> = src.take_warnings().into_iter().map(|w| w.to_string()).collect();
    if analyzer.packet_stats().packets == 0 && !warnings.is_empty() {
        // One line: the damage is the error, not also a warning.
        return Err(CliError::Nothing(format!(
            "nothing could be analysed: {}",
            warnings.join("; ")
        )));
    }
    for w in &warnings {
        eprintln!("whoclosed: warning: {w}");
    }
    Ok(warnings)
}

/// The render options of `cfg` (the origin of relative times is set when the first packet comes).
fn render_opts(cfg: &Config) -> RenderOpts {
    let width = if cfg.format == Format::Table && io::IsTerminal::is_terminal(&io::stdout()) {
        comfy_table::Table::new().width()
    } else {
        None
    };
    RenderOpts {
        time: TimeFmt {
            mode: cfg.time,
            origin: Ts::ZERO,
        },
        timeline: cfg.timeline,
        color: cfg.color,
        width,
    }
}

/// A finished connection made ready for the output: its piece and its share of the summary.
pub(crate) struct Rendered {
    item: report::incident::SummaryItem,
    piece: report::Piece,
}

/// Report, diagnosis and rendering of one finished connection: the per-connection work of the report, which
/// depends on nothing else, so either thread may do it; `None` when the selection leaves the connection out.
fn render(
    cfg: &Config,
    opts: &RenderOpts,
    f: &Finished,
    multi_file: bool,
    r: &dyn report::Renderer,
) -> Option<Rendered> {
    render_report(cfg, opts, &report::conn_report(f, multi_file), &f.tcp, r)
}

/// [`render`] from a connection's report (made, or amended by the two-capture cross-check).
fn render_report(
    cfg: &Config,
    opts: &RenderOpts,
    c: &ConnReport,
    tcp: &crate::tcp::TcpRecord,
    r: &dyn report::Renderer,
) -> Option<Rendered> {
    if !cfg.selection.matches(c, tcp) {
        return None;
    }
    Some(Rendered {
        item: report::incident::SummaryItem::of(c),
        piece: r.piece(c, opts),
    })
}

/// The report being gathered: each selected connection's rendered piece and the summary's inputs.
pub(crate) struct Output<'c> {
    cfg: &'c Config,
    opts: RenderOpts,
    store: report::store::Store,
    acc: report::incident::SummaryAcc,
}

impl<'c> Output<'c> {
    pub(crate) fn new(cfg: &'c Config) -> Output<'c> {
        Output {
            cfg,
            opts: render_opts(cfg),
            store: report::store::Store::new(cfg.report_memory),
            acc: Default::default(),
        }
    }

    /// The first packet's time: the origin of relative times.
    pub(crate) fn start(&mut self, ts: Ts) {
        self.opts.time.origin = ts;
    }

    pub(crate) fn add(&mut self, f: &Finished, multi_file: bool, r: &dyn report::Renderer) -> Result<(), CliError> {
        match render(self.cfg, &self.opts, f, multi_file, r) {
            Some(x) => self.apply(x),
            None => Ok(()),
        }
    }

    /// Takes a connection made ready by [`render`] (on either thread), in the order the connections finished.
    fn apply(&mut self, x: Rendered) -> Result<(), CliError> {
        self.acc.add_item(x.item);
        self.store.push(x.piece)?;
        Ok(())
    }

    pub(crate) fn add_report(
        &mut self,
        c: ConnReport,
        tcp: &crate::tcp::TcpRecord,
        r: &dyn report::Renderer,
    ) -> Result<(), CliError> {
        match render_report(self.cfg, &self.opts, &c, tcp, r) {
            Some(x) => self.apply(x),
            None => Ok(()),
        }
    }

    pub(crate) fn finish(
        mut self,
        capture: &report::CaptureOut,
        r: &dyn report::Renderer,
        out: &mut dyn report::Sink,
    ) -> Result<(), CliError> {
        self.store.seal()?;
        let summary = self.acc.finish();
        if let Some(start) = capture.start_ts {
            self.opts.time.origin = start;
        }
        r.write(
            &report::Head {
                capture,
                summary: &summary,
            },
            &self.store,
            &self.opts,
            out,
        )?;
        Ok(())
    }
}

/// What the report says about the inputs.
pub fn capture_out(
    analyzer: &Analyzer,
    files: Vec<crate::source::FileInfo>,
    warnings: Vec<String>,
) -> report::CaptureOut {
    let stats = analyzer.packet_stats();
    let (start, end) = (stats.first, stats.last);
    let mut notes = Vec::new();
    let tcp = analyzer.tcp_stats();
    if tcp.evicted_table_full > 0 {
        notes.push(format!(
            "the connection table was full: {} connection{} reported early (their verdicts say so; --max-connections {} raises the limit)",
            tcp.evicted_table_full,
            if tcp.evicted_table_full == 1 { " was" } else { "s were" },
            analyzer.tcp_config().max_connections
        ));
    }
    if tcp.evicted_idle > 0 {
        notes.push(format!(
            "{} idle connection{} reported early (--idle-timeout)",
            tcp.evicted_idle,
            if tcp.evicted_idle == 1 { " was" } else { "s were" }
        ));
    }
    let late = analyzer.tcp_stats().late_packets;
    if late > 0 {
        notes.push(format!(
            "{late} packet{} arrived after their connection had been reported closed (the linger time, --linger, had passed) and {} not analysed",
            if late == 1 { "" } else { "s" },
            if late == 1 { "was" } else { "were" }
        ));
    }
    report::CaptureOut {
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
        notes,
        decode: analyzer.decode_stats().clone(),
        tcp: analyzer.tcp_stats().clone(),
        start_ts: start,
    }
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

/// Two captures of the same traffic: each file analysed on its own (one pass, packets dispatched by file), then
/// connections matched across them and each verdict checked against the other side (src/vantage.rs).
fn run_pair(cfg: &Config, inputs: &[std::path::PathBuf]) -> Result<(), CliError> {
    use crate::vantage;
    let mut src = source::open(inputs)?;
    let mut analyzers = [Analyzer::new(cfg.settings.clone()), Analyzer::new(cfg.settings.clone())];
    let mut done: [Vec<Finished>; 2] = [Vec::new(), Vec::new()];
    let mut progress = Progress::new(cfg.progress);
    let mut n: u64 = 0;
    while let Some(pkt) = src.next_packet() {
        let i = usize::from(pkt.at.file.min(1));
        if let Some(a) = analyzers.get_mut(i) {
            a.packet(&pkt);
        }
        n += 1;
        if n % 4096 == 0 {
            progress.update(src.as_ref());
        }
    }
    progress.finish();
    for (a, d) in analyzers.iter_mut().zip(done.iter_mut()) {
        d.extend(a.finish());
        d.sort_by_key(|f| f.tcp.id);
    }
    let warnings: Vec<String> = src.take_warnings().into_iter().map(|w| w.to_string()).collect();
    for w in &warnings {
        eprintln!("whoclosed: warning: {w}");
    }
    let [a, b] = done;
    let (near, far, flipped) = vantage::orient(a, b);
    let note = vantage::describe(inputs, flipped);
    let pairs = vantage::match_pairs(&near, &far);
    let renderer = report::renderer(cfg.format);
    let mut out_set = Output::new(cfg);
    let mut matched_far: Vec<u64> = Vec::new();
    for f in &near {
        let mut c = report::conn_report(f, true);
        if let Some(p) = pairs.iter().find(|p| std::ptr::eq(p.near, f)) {
            matched_far.push(p.far.tcp.id);
            let x = vantage::cross_check(p);
            if let Some(cb) = x.closed_by {
                c.closed_by = cb;
            }
            if let Some(cause) = x.cause {
                c.cause = cause;
            }
            if let Some(conf) = x.confidence {
                c.confidence = conf;
            }
            for e in x.evidence {
                c.evidence.push(report::EvidenceOut {
                    frame: e.at.frame,
                    file: Some(e.at.file.saturating_add(1)),
                    time: rfc3339(e.ts),
                    text: e.text,
                    ts: e.ts,
                });
            }
            if let Some(note) = x.note {
                c.explanation.push(' ');
                c.explanation.push_str(&note);
            }
            let far_report = report::conn_report(p.far, true);
            let offset = p.offset.unwrap_or_default();
            for mut e in far_report.timeline {
                e.ts = e.ts.plus(crate::ts::Dur::from_nanos(offset.nanos().saturating_neg()));
                e.time = rfc3339(e.ts);
                e.text = format!("[seen at the other end] {}", e.text).into();
                c.timeline.push(e);
            }
            c.timeline.sort_by_key(|e| e.ts);
            let ms = |d: Option<crate::ts::Dur>| d.map(|d| (d.as_millis_f64() * 1000.0).round() / 1000.0);
            c.other_side = Some(report::OtherSide {
                file: p.far.tcp.first.at.file.saturating_add(1),
                id: p.far.tcp.id,
                client: p.far.tcp.client.to_string(),
                server: p.far.tcp.server.to_string(),
                closed_by: p.far.verdict.closed_by,
                cause: p.far.verdict.cause,
                clock_offset_ms: ms(p.offset),
                one_way_delay_ms: ms(p.delay),
            });
        }
        out_set.add_report(c, &f.tcp, renderer.as_ref())?;
    }
    // Connections only the other capture has, numbered after this side's.
    let base = near.iter().map(|f| f.tcp.id).max().unwrap_or(0);
    for f in far.iter().filter(|f| !matched_far.contains(&f.tcp.id)) {
        let mut c = report::conn_report(f, true);
        c.id = base.saturating_add(f.tcp.id);
        out_set.add_report(c, &f.tcp, renderer.as_ref())?;
    }
    let files = src.files();
    let mut capture = capture_out(&analyzers[0], files, warnings);
    capture.notes.push(note);
    let other = analyzers[1].packet_stats();
    capture.packets = capture.packets.saturating_add(other.packets);
    capture.bytes = capture.bytes.saturating_add(other.bytes);
    capture.tcp_segments = capture.tcp_segments.saturating_add(analyzers[1].tcp_stats().segments);
    capture.connections = capture.connections.saturating_add(analyzers[1].tcp_stats().connections);
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    out_set.finish(&capture, renderer.as_ref(), &mut out)?;
    out.flush()?;
    Ok(())
}
