//! Markdown, ready to paste into an incident ticket: the same table and paragraphs as the text format, with
//! evidence as lists and timelines as tables.

use super::table::{frame_label, headline, human_bytes, summary_lines};
use super::{ConnReport, RenderOpts, Renderer, Report};
use crate::ts::Dur;
use std::io::{self, Write};

pub struct Markdown;

/// Escapes text for a Markdown table cell or inline text.
fn md(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '|' | '*' | '_' | '`' | '<' | '>' | '[' | ']' | '\\' => {
                o.push('\\');
                o.push(ch);
            }
            '\n' | '\r' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

fn conn_heading(c: &ConnReport) -> String {
    format!("#{} `{}` → `{}`", c.id, c.client, c.server)
}

impl Renderer for Markdown {
    fn render(&self, r: &Report, opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "## whoclosed report\n")?;
        writeln!(out, "{}\n", md(&headline(r, opts)))?;
        for w in &r.capture.warnings {
            writeln!(out, "> **warning:** {}", md(w))?;
        }
        for n in &r.capture.notes {
            writeln!(out, "> note: {}", md(n))?;
        }
        if !r.capture.warnings.is_empty() {
            writeln!(out)?;
        }
        if r.connections.is_empty() {
            writeln!(out, "No TCP connections to report.")?;
            return Ok(());
        }
        let lines = summary_lines(r);
        if !lines.is_empty() {
            writeln!(out, "### Summary\n")?;
            for l in lines {
                writeln!(out, "- {}", md(&l))?;
            }
            writeln!(out, "\n### Connections\n")?;
        }
        writeln!(
            out,
            "| # | client | server | start ({}) | duration | bytes c→s | bytes s→c | closed by | cause | reason |",
            opts.time.zone()
        )?;
        writeln!(out, "|---:|---|---|---|---:|---:|---:|---|---|---|")?;
        for c in &r.connections {
            writeln!(
                out,
                "| {} | `{}` | `{}` | {} | {} | {} | {} | {} | **{}** | {} |",
                c.id,
                c.client,
                c.server,
                opts.time.short(c.start_ts),
                Dur::from_secs_f64(c.duration_s),
                human_bytes(c.tcp.bytes.client),
                human_bytes(c.tcp.bytes.server),
                c.closed_by,
                c.cause,
                md(&c.reason)
            )?;
        }
        let problems: Vec<&ConnReport> = r.connections.iter().filter(|c| c.is_problem()).collect();
        writeln!(
            out,
            "\n{} of {} connections did not end normally.",
            problems.len(),
            r.connections.len()
        )?;
        for c in problems {
            let conf = format!("{:?}", c.confidence).to_lowercase();
            writeln!(
                out,
                "\n### {}: `{}`, closed by {}\n",
                conn_heading(c),
                c.cause,
                c.closed_by
            )?;
            writeln!(out, "{} (*{conf} confidence*)\n", md(&c.explanation))?;
            for f in &c.factors {
                writeln!(out, "- contributing: {}", md(f))?;
            }
            if c.roles_inferred {
                writeln!(out, "- note: {}", md(c.roles.describe()))?;
            }
            if !c.evidence.is_empty() {
                writeln!(out, "\n**Evidence**\n")?;
                for e in &c.evidence {
                    writeln!(
                        out,
                        "- frame {} at {}: {}",
                        frame_label(e.frame, e.file),
                        opts.time.short(e.ts),
                        md(&e.text)
                    )?;
                }
            }
            for a in &c.advice {
                writeln!(out, "\n**Advice:** {}", md(a))?;
            }
        }
        if opts.timeline {
            for c in &r.connections {
                writeln!(out, "\n### {}: timeline\n", conn_heading(c))?;
                writeln!(out, "| frame | time | from | event |")?;
                writeln!(out, "|---:|---|---|---|")?;
                for e in &c.timeline {
                    let frames = match e.until_frame {
                        Some(u) => format!("{}–{u}", frame_label(e.frame, e.file)),
                        None => frame_label(e.frame, e.file),
                    };
                    writeln!(
                        out,
                        "| {frames} | {} | {} | {} |",
                        opts.time.short(e.ts),
                        e.from,
                        md(&e.text)
                    )?;
                }
                if c.timeline_dropped > 0 {
                    writeln!(out, "\n({} events in the middle left out)", c.timeline_dropped)?;
                }
            }
        }
        Ok(())
    }
}
