//! Markdown, ready to paste into an incident ticket: the same table and paragraphs as the text format, with
//! evidence as lists and timelines as tables.

use super::table::{frame_label, headline, human_bytes, summary_lines};
use super::{ConnReport, Head, Piece, Pieces, RenderOpts, Renderer, Sink};
use crate::ts::Dur;
use std::fmt::Write as _;
use std::io;

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

fn section(c: &ConnReport, opts: &RenderOpts, o: &mut String) -> std::fmt::Result {
    let conf = format!("{:?}", c.confidence).to_lowercase();
    writeln!(
        o,
        "\n### {}: `{}`, closed by {}\n",
        conn_heading(c),
        c.cause,
        c.closed_by
    )?;
    writeln!(o, "{} (*{conf} confidence*)\n", md(&c.explanation))?;
    for f in &c.factors {
        writeln!(o, "- contributing: {}", md(f))?;
    }
    if c.roles_inferred {
        writeln!(o, "- note: {}", md(c.roles.describe()))?;
    }
    if !c.evidence.is_empty() {
        writeln!(o, "\n**Evidence**\n")?;
        for e in &c.evidence {
            writeln!(
                o,
                "- frame {} at {}: {}",
                frame_label(e.frame, e.file),
                opts.time.short(e.ts),
                md(&e.text)
            )?;
        }
    }
    for a in &c.advice {
        writeln!(o, "\n**Advice:** {}", md(a))?;
    }
    Ok(())
}

fn timeline(c: &ConnReport, opts: &RenderOpts, o: &mut String) -> std::fmt::Result {
    writeln!(o, "\n### {}: timeline\n", conn_heading(c))?;
    writeln!(o, "| frame | time | from | event |")?;
    writeln!(o, "|---:|---|---|---|")?;
    for e in &c.timeline {
        let frames = match e.until_frame {
            Some(u) => format!("{}–{u}", frame_label(e.frame, e.file)),
            None => frame_label(e.frame, e.file),
        };
        writeln!(
            o,
            "| {frames} | {} | {} | {} |",
            opts.time.short(e.ts),
            e.from,
            md(&e.text)
        )?;
    }
    if c.timeline_dropped > 0 {
        writeln!(o, "\n({} events in the middle left out)", c.timeline_dropped)?;
    }
    Ok(())
}

impl Renderer for Markdown {
    fn piece(&self, c: &ConnReport, opts: &RenderOpts) -> Piece {
        let row = format!(
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
        );
        let mut detail = String::new();
        if c.is_problem() {
            let _ = section(c, opts, &mut detail);
        }
        let mut tl = String::new();
        if opts.timeline {
            let _ = timeline(c, opts, &mut tl);
        }
        Piece {
            id: c.id,
            problem: c.is_problem(),
            cells: vec![row],
            detail: detail.into_bytes(),
            timeline: tl,
        }
    }

    fn write(&self, head: &Head<'_>, pieces: &dyn Pieces, opts: &RenderOpts, out: &mut dyn Sink) -> io::Result<()> {
        writeln!(out, "## whoclosed report\n")?;
        writeln!(out, "{}\n", md(&headline(head.capture, opts)))?;
        for w in &head.capture.warnings {
            writeln!(out, "> **warning:** {}", md(w))?;
        }
        for n in &head.capture.notes {
            writeln!(out, "> note: {}", md(n))?;
        }
        if !head.capture.warnings.is_empty() || !head.capture.notes.is_empty() {
            writeln!(out)?;
        }
        if pieces.count() == 0 {
            writeln!(out, "No TCP connections to report.")?;
            return Ok(());
        }
        let lines = summary_lines(head.summary);
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
        pieces.walk(&mut |p| writeln!(out, "{}", p.cells.first().map_or("", String::as_str)))?;
        writeln!(
            out,
            "\n{} of {} connections did not end normally.",
            head.summary.problems,
            pieces.count()
        )?;
        pieces.write_details(out, 0)?;
        if opts.timeline {
            pieces.walk(&mut |p| out.write_all(p.timeline.as_bytes()))?;
        }
        Ok(())
    }
}
