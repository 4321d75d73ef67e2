//! The default, human format: a header line, one table row per connection, then a paragraph for each
//! connection that did not end normally (what happened, when, the evidence frames), and with `--timeline` each
//! connection's events.

use super::{CaptureOut, ConnReport, Head, Piece, Pieces, RenderOpts, Renderer, Sink, SummaryOut};
use crate::diagnose::Cause;
use crate::ts::Dur;
use comfy_table::{Cell, Color, ContentArrangement, Table as Grid, presets};
use std::fmt::Write as _;
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
pub fn headline(capture: &CaptureOut, opts: &RenderOpts) -> String {
    let files: Vec<&str> = capture.files.iter().map(|f| f.path.as_str()).collect();
    let mut s = format!(
        "{} · {} packets · {} TCP connection{}",
        if files.is_empty() {
            "(no input)".to_string()
        } else {
            files.join(", ")
        },
        capture.packets,
        capture.connections,
        if capture.connections == 1 { "" } else { "s" }
    );
    if let Some(start) = capture.start_ts {
        let end = start.plus(Dur::from_secs_f64(capture.duration_s));
        s.push_str(&format!(
            " · {} → {} ({})",
            opts.time.full(start),
            opts.time.short(end),
            Dur::from_secs_f64(capture.duration_s)
        ));
    }
    s
}

/// The incident summary lines (counts, idle-kill clusters, capture point, advice), shared by the text formats.
pub fn summary_lines(s: &SummaryOut) -> Vec<String> {
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
fn paragraph(c: &ConnReport, opts: &RenderOpts, out: &mut String) -> std::fmt::Result {
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

fn timeline(c: &ConnReport, opts: &RenderOpts, out: &mut String) -> std::fmt::Result {
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

/// Above this many rows the table is laid out here, streaming, instead of by comfy-table (which holds every
/// cell at once).
const TABLE_IN_MEMORY: usize = 5_000;

const HEADER: [&str; 10] = [
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
];

impl Renderer for Table {
    fn piece(&self, c: &ConnReport, opts: &RenderOpts) -> Piece {
        let mut cause = c.cause.as_str().to_string();
        if opts.color {
            // comfy-table styles whole cells; keep the colour as a marker it maps back (see `write`).
            cause = format!("\u{1}{}{cause}", color_code(c.cause));
        }
        let cells = vec![
            c.id.to_string(),
            c.client.clone(),
            c.server.clone(),
            opts.time.short(c.start_ts),
            Dur::from_secs_f64(c.duration_s).to_string(),
            human_bytes(c.tcp.bytes.client),
            human_bytes(c.tcp.bytes.server),
            c.closed_by.as_str().to_string(),
            cause,
            c.reason.clone(),
        ];
        let mut detail = String::new();
        if c.is_problem() {
            let _ = paragraph(c, opts, &mut detail);
        }
        let mut tl = String::new();
        if opts.timeline {
            let _ = timeline(c, opts, &mut tl);
        }
        Piece {
            id: c.id,
            problem: c.is_problem(),
            cells,
            detail: detail.into_bytes(),
            timeline: tl,
        }
    }

    fn write(&self, head: &Head<'_>, pieces: &dyn Pieces, opts: &RenderOpts, out: &mut dyn Sink) -> io::Result<()> {
        writeln!(out, "{}", headline(head.capture, opts))?;
        for w in &head.capture.warnings {
            writeln!(out, "warning: {w}")?;
        }
        for n in &head.capture.notes {
            writeln!(out, "note: {n}")?;
        }
        let total = pieces.count();
        if total == 0 {
            writeln!(out, "No TCP connections to report.")?;
            return Ok(());
        }
        for line in summary_lines(head.summary) {
            writeln!(out, "{line}")?;
        }
        if total <= TABLE_IN_MEMORY {
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
            g.set_header(HEADER.to_vec());
            pieces.walk(&mut |p| {
                g.add_row(p.cells.iter().map(|c| styled_cell(c)).collect::<Vec<_>>());
                Ok(())
            })?;
            writeln!(out, "{g}")?;
        } else {
            streamed_table(pieces, out)?;
        }
        writeln!(
            out,
            "Times in {}. {} of {} connection{} did not end normally.",
            opts.time.zone(),
            head.summary.problems,
            total,
            if total == 1 { "" } else { "s" }
        )?;
        pieces.walk(&mut |p| {
            if p.problem && !p.detail.is_empty() {
                writeln!(out)?;
                out.write_all(&p.detail)?;
            }
            Ok(())
        })?;
        if opts.timeline {
            pieces.walk(&mut |p| {
                writeln!(out)?;
                out.write_all(p.timeline.as_bytes())
            })?;
        }
        Ok(())
    }
}

fn color_code(c: Cause) -> char {
    match cause_color(c) {
        Color::Green => 'g',
        Color::Cyan => 'c',
        Color::Yellow => 'y',
        _ => 'r',
    }
}

/// A cell, with the colour marker of `piece` turned into comfy-table styling.
fn styled_cell(text: &str) -> Cell {
    let mut chars = text.chars();
    if chars.next() == Some('\u{1}') {
        let color = match chars.next() {
            Some('g') => Color::Green,
            Some('c') => Color::Cyan,
            Some('y') => Color::Yellow,
            _ => Color::Red,
        };
        return Cell::new(chars.as_str()).fg(color);
    }
    Cell::new(text)
}

/// A plain layout for very long tables: column widths from a first pass, rows from a second.
fn streamed_table(pieces: &dyn Pieces, out: &mut dyn Write) -> io::Result<()> {
    let plain = |c: &str| -> String {
        match c.strip_prefix('\u{1}') {
            Some(rest) => rest.chars().skip(1).collect(),
            None => c.to_string(),
        }
    };
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.chars().count()).collect();
    pieces.walk(&mut |p| {
        for (w, c) in widths.iter_mut().zip(&p.cells) {
            *w = (*w).max(plain(c).chars().count());
        }
        Ok(())
    })?;
    let line = |cells: &mut dyn Iterator<Item = String>| -> String {
        let parts: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
        format!("│ {} │", parts.join(" ┆ "))
    };
    writeln!(out, "{}", line(&mut HEADER.iter().map(|h| h.to_string())))?;
    pieces.walk(&mut |p| writeln!(out, "{}", line(&mut p.cells.iter().map(|c| plain(c)))))
}
