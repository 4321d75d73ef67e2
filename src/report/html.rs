//! A self-contained HTML page (no scripts, no external resources) to attach to an incident ticket.

use super::table::{frame_label, headline, human_bytes, summary_lines};
use super::{ConnReport, RenderOpts, Renderer, Report};
use crate::ts::Dur;
use std::io::{self, Write};

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

impl Renderer for Html {
    fn render(&self, r: &Report, opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
        writeln!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>whoclosed report</title><style>{STYLE}</style></head><body>"
        )?;
        writeln!(out, "<h1>whoclosed report</h1>\n<p>{}</p>", esc(&headline(r, opts)))?;
        for w in &r.capture.warnings {
            writeln!(out, "<p class=\"warn\">warning: {}</p>", esc(w))?;
        }
        for n in &r.capture.notes {
            writeln!(out, "<p>note: {}</p>", esc(n))?;
        }
        let lines = summary_lines(r);
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
        for c in &r.connections {
            let class = if c.is_problem() { "problem" } else { "normal" };
            writeln!(
                out,
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
            )?;
        }
        writeln!(out, "</table>")?;
        for c in &r.connections {
            if !c.is_problem() && !opts.timeline {
                continue;
            }
            section(c, opts, out)?;
        }
        writeln!(out, "</body></html>")
    }
}

fn section(c: &ConnReport, opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
    let conf = format!("{:?}", c.confidence).to_lowercase();
    writeln!(
        out,
        "<section id=\"c{}\"><h2>#{} <code>{}</code> → <code>{}</code>: {}, closed by {}</h2>",
        c.id,
        c.id,
        esc(&c.client),
        esc(&c.server),
        c.cause,
        c.closed_by
    )?;
    writeln!(out, "<p>{} <em>({conf} confidence)</em></p>", esc(&c.explanation))?;
    if !c.evidence.is_empty() {
        writeln!(out, "<h3>Evidence</h3><ul>")?;
        for e in &c.evidence {
            writeln!(
                out,
                "<li>frame {} at {}: {}</li>",
                esc(&frame_label(e.frame, e.file)),
                esc(&opts.time.short(e.ts)),
                esc(&e.text)
            )?;
        }
        writeln!(out, "</ul>")?;
    }
    for a in &c.advice {
        writeln!(out, "<p><strong>Advice:</strong> {}</p>", esc(a))?;
    }
    if opts.timeline {
        writeln!(
            out,
            "<h3>Timeline</h3><table><tr><th>frame</th><th>time</th><th>from</th><th>event</th></tr>"
        )?;
        for e in &c.timeline {
            writeln!(
                out,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&frame_label(e.frame, e.file)),
                esc(&opts.time.short(e.ts)),
                e.from,
                esc(&e.text)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "</section>")
}
