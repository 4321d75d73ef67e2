//! JSON (one document) and NDJSON (one connection per line). The schema is documented in docs/json.md.
//!
//! The document is written by hand around serde's pretty output of each part, so that connections can be
//! serialized one at a time as they finish; the result is byte for byte what serde would print for the whole.

use super::{ConnReport, Head, Piece, Pieces, RenderOpts, Renderer};
use std::io::{self, Write};

pub struct Json;
pub struct Ndjson;

/// serde's pretty JSON of `v`, every line after the first indented by `indent` spaces.
fn pretty_at<T: serde::Serialize>(v: &T, indent: usize) -> io::Result<String> {
    let text = serde_json::to_string_pretty(v).map_err(io::Error::other)?;
    let pad = " ".repeat(indent);
    Ok(text.replace('\n', &format!("\n{pad}")))
}

impl Renderer for Json {
    fn piece(&self, c: &ConnReport, _opts: &RenderOpts) -> Piece {
        let detail = pretty_at(c, 4).unwrap_or_default();
        Piece {
            id: c.id,
            problem: c.is_problem(),
            detail,
            ..Piece::default()
        }
    }

    fn write(&self, head: &Head<'_>, pieces: &dyn Pieces, _opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
        write!(
            out,
            "{{\n  \"capture\": {},\n  \"summary\": {},\n  \"connections\": ",
            pretty_at(head.capture, 2)?,
            pretty_at(head.summary, 2)?
        )?;
        if pieces.count() == 0 {
            return out.write_all(b"[]\n}\n");
        }
        out.write_all(b"[")?;
        let mut first = true;
        pieces.walk(&mut |p| {
            out.write_all(if first { b"\n    " } else { b",\n    " })?;
            first = false;
            out.write_all(p.detail.as_bytes())
        })?;
        out.write_all(b"\n  ]\n}\n")
    }
}

impl Renderer for Ndjson {
    fn piece(&self, c: &ConnReport, _opts: &RenderOpts) -> Piece {
        let detail = serde_json::to_string(c).unwrap_or_default();
        Piece {
            id: c.id,
            problem: c.is_problem(),
            detail,
            ..Piece::default()
        }
    }

    fn write(&self, _head: &Head<'_>, pieces: &dyn Pieces, _opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
        pieces.walk(&mut |p| {
            out.write_all(p.detail.as_bytes())?;
            out.write_all(b"\n")
        })
    }
}
