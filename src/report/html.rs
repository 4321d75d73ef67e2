//! A self-contained HTML page (no scripts, no external resources) to attach to an incident ticket.

use super::table::{frame_label, headline, human_bytes, summary_lines};
use super::{ConnReport, Head, Piece, Pieces, RenderOpts, Renderer, Sink};
use crate::ts::Dur;
use std::fmt::Write as _;
use std::io;

pub struct Html;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:90%}\
td,th{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}\
.problem{color:#b00020;font-weight:bold}.normal{color:#1b5e20}.num{text-align:right}code{font-size:95%}\
section{margin-top:1.5em}.warn{color:#8a5300}";

fn section(c: &ConnReport, opts: &RenderOpts, o: &mut String) -> std::fmt::Result {
    let conf = format!("{:?}", c.confidence).to_lowercase();
    writeln!(
        o,
        "<section id=\"c{}\"><h2>#{} <code>{}</code> → <code>{}</code>: {}, closed by {}</h2>",
        c.id,
        c.id,
        esc(&c.client),
        esc(&c.server),
        c.cause,
        c.closed_by
    )?;
    writeln!(o, "<p>{} <em>({conf} confidence)</em></p>", esc(&c.explanation))?;
    if !c.evidence.is_empty() {
        writeln!(o, "<h3>Evidence</h3><ul>")?;
        for e in &c.evidence {
            writeln!(
                o,
                "<li>frame {} at {}: {}</li>",
                esc(&frame_label(e.frame, e.file)),
                esc(&opts.time.short(e.ts)),
                esc(&e.text)
            )?;
        }
        writeln!(o, "</ul>")?;
    }
    for a in &c.advice {
        writeln!(o, "<p><strong>Advice:</strong> {}</p>", esc(a))?;
    }
    if opts.timeline {
        writeln!(
            o,
            "<h3>Timeline</h3><table><tr><th>frame</th><th>time</th><th>from</th><th>event</th></tr>"
        )?;
        for e in &c.timeline {
            writeln!(
                o,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&frame_label(e.frame, e.file)),
                esc(&opts.time.short(e.ts)),
                e.from,
                esc(&e.text)
            )?;
        }
        writeln!(o, "</table>")?;
    }
    writeln!(o, "</section>")
}

impl Renderer for Html {
    fn piece(&self, c: &ConnReport, opts: &RenderOpts) -> Piece {
        let class = if c.is_problem() { "problem" } else { "normal" };
        let row = format!(
            "<tr><td class=\"num\"><a href=\"#c{id}\">{id}</a></td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
            esc(&c.client),
            esc(&c.server),
            esc(&opts.time.short(c.start_ts)),
            esc(&Dur::from_secs_f64(c.duration_s).to_string()),
            esc(&human_bytes(c.tcp.bytes.client)),
            esc(&human_bytes(c.tcp.bytes.server)),
            c.closed_by,
            c.cause,
            esc(&c.reason),
            id = c.id,
        );
        let mut detail = String::new();
        if c.is_problem() || opts.timeline {
            let _ = section(c, opts, &mut detail);
        }
        Piece {
            id: c.id,
            problem: c.is_problem(),
            cells: vec![row],
            detail: detail.into_bytes(),
            timeline: String::new(),
        }
    }

    fn write(&self, head: &Head<'_>, pieces: &dyn Pieces, opts: &RenderOpts, out: &mut dyn Sink) -> io::Result<()> {
        writeln!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>whoclosed report</title><style>{STYLE}</style></head><body>"
        )?;
        writeln!(
            out,
            "<h1>whoclosed report</h1>\n<p>{}</p>",
            esc(&headline(head.capture, opts))
        )?;
        for w in &head.capture.warnings {
            writeln!(out, "<p class=\"warn\">warning: {}</p>", esc(w))?;
        }
        for n in &head.capture.notes {
            writeln!(out, "<p>note: {}</p>", esc(n))?;
        }
        let lines = summary_lines(head.summary);
        if !lines.is_empty() {
            writeln!(out, "<h2>Summary</h2><ul>")?;
            for l in lines {
                writeln!(out, "<li>{}</li>", esc(&l))?;
            }
            writeln!(out, "</ul>")?;
        }
        writeln!(
            out,
            "<table><tr><th>#</th><th>client</th><th>server</th><th>start ({})</th><th>duration</th><th>bytes c→s</th><th>bytes s→c</th><th>closed by</th><th>cause</th><th>reason</th></tr>",
            esc(opts.time.zone())
        )?;
        pieces.walk(&mut |p| writeln!(out, "{}", p.cells.first().map_or("", String::as_str)))?;
        writeln!(out, "</table>")?;
        pieces.write_details(out, 0)?;
        writeln!(out, "</body></html>")
    }
}
