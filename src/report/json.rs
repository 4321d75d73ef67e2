//! JSON (one document) and NDJSON (one connection per line). The schema is documented in docs/json.md.

use super::{RenderOpts, Renderer, Report};
use std::io::{self, Write};

pub struct Json;
pub struct Ndjson;

impl Renderer for Json {
    fn render(&self, report: &Report, _opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
        out.write_all(b"\n")
    }
}

impl Renderer for Ndjson {
    fn render(&self, report: &Report, _opts: &RenderOpts, out: &mut dyn Write) -> io::Result<()> {
        for c in &report.connections {
            serde_json::to_writer(&mut *out, c).map_err(io::Error::other)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}
