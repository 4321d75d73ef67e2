//! The default, human format: a header line, one table row per connection, then a paragraph for each
//! connection that did not end normally (what happened, when, the evidence frames), and with `--timeline` each
//! connection's events.

use super::{ConnReport, RenderOpts, Renderer, Report};
use crate::diagnose::Cause;
use crate::ts::Dur;
use comfy_table::{Cell, Color, ContentArrangement, Table as Grid, presets};
use std::io::{self, Write};

pub struct Table;

/// "1.2 MB" style sizes (decimal units, as network people count).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    let unit = UNITS.get(u).copied().unwrap_or("B");
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {unit}")
    }
}

fn cause_color(c: Cause) -> Color {
    match c {
        Cause::GracefulClientClose | Cause::GracefulServerClose => Color::Green,
        Cause::StillOpen => Color::Cyan,
        Cause::Unknown => Color::Yellow,
        _ => Color::Red,
    }
}

/// The line above the table: what was read.
pub fn headline(r: &Report, opts: &RenderOpts) -> String {
    let files: Vec<&str> = r.capture.files.iter().map(|f| f.path.as_str()).collect();
    let mut s = format!(
        "{} · {} packets · {} TCP connection{}",
        if files.is_empty() {
            "(no input)".to_string()
        } else {
            files.join(", ")
        },
        r.capture.packets,
        r.capture.connections,
        if r.capture.connections == 1 { "" } else { "s" }
    );
    if let Some(start) = r.capture.start_ts {
        let end = start.plus(Dur::from_secs_f64(r.capture.duration_s));
        s.push_str(&format!(
            " · {} → {} ({})",
            opts.time.full(start),
            opts.time.short(end),
            Dur::from_secs_f64(r.capture.duration_s)
        ));
    }
    s
}

/// The incident summary lines (counts, idle-kill clusters, capture point, advice), shared by the text formats.
pub fn summary_lines(r: &Report) -> Vec<String> {
    let s = &r.summary;
    let mut out = Vec::new();
    if s.connections == 0 {
        return out;
    }
    let causes: Vec<String> = s.by_cause.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let closers: Vec<String> = s.by_closer.iter().map(|(k, v)| format!("{k} {v}")).collect();
    out.push(format!(
        "{} connection{}, {} did not end normally. Causes: {}. Closed by: {}.",
        s.connections,
        if s.connections == 1 { "" } else { "s" },
        s.problems,
        causes.join(", "),
        closers.join(", ")
    ));
    for c in &s.idle_clusters {
        out.push(format!(
            "{} (connections {}).",
            c.text,
            c.connections
                .iter()
                .map(|i| format!("#{i}"))
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    if let Some(v) = &s.vantage {
        out.push(v.text.clone());
    }
    for a in &s.advice {
        out.push(format!("Advice: {a}"));
    }
    out
}

/// The evidence and advice of one connection, indented, for the text formats.
fn paragraph(c: &ConnReport, opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
    let conf = format!("{:?}", c.confidence).to_lowercase();
    writeln!(
        out,
        "#{}  {} → {} · closed by {} · {} ({conf} confidence)",
        c.id, c.client, c.server, c.closed_by, c.cause
    )?;
    writeln!(out, "    {}", c.explanation)?;
    for f in &c.factors {
        writeln!(out, "    contributing: {f}")?;
    }
    if c.roles_inferred {
        writeln!(out, "    note: {}", c.roles.describe())?;
    }
    if !c.evidence.is_empty() {
        writeln!(out, "    evidence:")?;
        for e in &c.evidence {
            writeln!(
                out,
                "      {:>8}  {}  {}",
                frame_label(e.frame, e.file),
                opts.time.short(e.ts),
                e.text
            )?;
        }
    }
    for a in &c.advice {
        writeln!(out, "    advice: {a}")?;
    }
    Ok(())
}

pub fn frame_label(frame: u64, file: Option<u16>) -> String {
    match file {
        Some(f) => format!("{f}#{frame}"),
        None => frame.to_string(),
    }
}

fn timeline(c: &ConnReport, opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "#{}  {} → {} · timeline ({})",
        c.id,
        c.client,
        c.server,
        opts.time.zone()
    )?;
    for e in &c.timeline {
        let frames = match e.until_frame {
            Some(u) => format!("{}-{u}", frame_label(e.frame, e.file)),
            None => frame_label(e.frame, e.file),
        };
        writeln!(
            out,
            "  {:>11}  {}  {:<7} {}",
            frames,
            opts.time.short(e.ts),
            e.from,
            e.text
        )?;
    }
    if c.timeline_dropped > 0 {
        writeln!(
            out,
            "  ({} events in the middle of the connection left out)",
            c.timeline_dropped
        )?;
    }
    Ok(())
}

impl Renderer for Table {
    fn render(&self, r: &Report, opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "{}", headline(r, opts))?;
        for w in &r.capture.warnings {
            writeln!(out, "warning: {w}")?;
        }
        for n in &r.capture.notes {
            writeln!(out, "note: {n}")?;
        }
        if r.connections.is_empty() {
            writeln!(out, "No TCP connections to report.")?;
            return Ok(());
        }
        for line in summary_lines(r) {
            writeln!(out, "{line}")?;
        }
        let mut g = Grid::new();
        g.load_style(presets::UTF8_FULL_CONDENSED.with_rounded_corners());
        if opts.color {
            g.enforce_styling();
        } else {
            g.force_no_tty();
        }
        match opts.width {
            Some(w) => {
                g.set_width(w);
                g.set_content_arrangement(ContentArrangement::Dynamic);
            }
            None => {
                g.set_content_arrangement(ContentArrangement::Disabled);
            }
        }
        g.set_header(vec![
            "#",
            "client",
            "server",
            "start",
            "duration",
            "bytes c→s",
            "bytes s→c",
            "closed by",
            "cause",
            "reason",
        ]);
        for c in &r.connections {
            let mut cause = Cell::new(c.cause.as_str());
            if opts.color {
                cause = cause.fg(cause_color(c.cause));
            }
            g.add_row(vec![
                Cell::new(c.id),
                Cell::new(&c.client),
                Cell::new(&c.server),
                Cell::new(opts.time.short(c.start_ts)),
                Cell::new(Dur::from_secs_f64(c.duration_s).to_string()),
                Cell::new(human_bytes(c.tcp.bytes.client)),
                Cell::new(human_bytes(c.tcp.bytes.server)),
                Cell::new(c.closed_by.as_str()),
                cause,
                Cell::new(&c.reason),
            ]);
        }
        writeln!(out, "{g}")?;
        let problems: Vec<&ConnReport> = r.connections.iter().filter(|c| c.is_problem()).collect();
        writeln!(
            out,
            "Times in {}. {} of {} connection{} did not end normally.",
            opts.time.zone(),
            problems.len(),
            r.connections.len(),
            if r.connections.len() == 1 { "" } else { "s" }
        )?;
        for c in problems {
            writeln!(out)?;
            paragraph(c, opts, out)?;
        }
        if opts.timeline {
            for c in &r.connections {
                writeln!(out)?;
                timeline(c, opts, out)?;
            }
        }
        Ok(())
    }
}
