//! JSON (one document) and NDJSON (one connection per line). The schema is documented in docs/json.md.
//!
//! The document is written by hand around serde's pretty output of each part, so that connections can be
//! serialized one at a time as they finish; the result is byte for byte what serde would print for the whole.
//! Each part is printed by [`Indented`], serde_json's pretty formatter with the part's depth in the document
//! added to every line it starts (rather than printing the part at depth 0 and re-indenting the text).

use super::{ConnReport, Head, Piece, Pieces, RenderOpts, Renderer, Sink};
use std::io::{self, Write};

pub struct Json;
pub struct Ndjson;

/// A comma, a line break and the spaces of the deepest usual indentation: every line a value starts is a slice
/// of it (one copy per line; deeper lines are finished a slice of spaces at a time).
const BREAK: &[u8; 130] = b",\n                                                                                                                                ";

/// serde_json's `PrettyFormatter` (two spaces a level) whose lines after the first start `base` spaces further
/// in: the output of a value nested `base / 2` levels deep in a pretty-printed document.
struct Indented {
    base: usize,
    level: usize,
    has_value: bool,
}

impl Indented {
    fn new(base: usize) -> Indented {
        Indented {
            base,
            level: 0,
            has_value: false,
        }
    }

    /// A line break (after a comma if `comma`) and the current indentation.
    fn newline<W: ?Sized + Write>(&self, w: &mut W, comma: bool) -> io::Result<()> {
        let from = usize::from(!comma);
        let n = self.base.saturating_add(self.level.saturating_mul(2));
        let here = n.min(BREAK.len() - 2);
        w.write_all(BREAK.get(from..2 + here).unwrap_or_default())?;
        let mut rest = n - here;
        while rest > 0 {
            let k = rest.min(BREAK.len() - 2);
            w.write_all(BREAK.get(2..2 + k).unwrap_or_default())?;
            rest -= k;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Indented {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level = self.level.saturating_sub(1);
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.newline(w, !first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level = self.level.saturating_sub(1);
        if self.has_value {
            self.newline(w, false)?;
        }
        w.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.newline(w, !first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// serde's pretty JSON of `v` after `lead`, every line after the first indented by `indent` spaces. Printed
/// into a buffer kept for the next call, then copied into a vector of its exact size (the pieces wait in
/// memory, counted by their length).
fn pretty_at<T: serde::Serialize>(v: &T, lead: &[u8], indent: usize) -> io::Result<Vec<u8>> {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with_borrow_mut(|buf| {
        buf.clear();
        buf.extend_from_slice(lead);
        let mut ser = serde_json::Serializer::with_formatter(&mut *buf, Indented::new(indent));
        v.serialize(&mut ser).map_err(io::Error::other)?;
        let text = buf.to_vec();
        if buf.capacity() > 1 << 20 {
            *buf = Vec::new();
        }
        Ok(text)
    })
}

/// What goes before every connection of the document but the first (whose piece is written without the comma).
const SEPARATOR: &[u8] = b",\n    ";

impl Renderer for Json {
    fn piece(&self, c: &ConnReport, _opts: &RenderOpts) -> Piece {
        Piece {
            id: c.id,
            problem: c.is_problem(),
            detail: pretty_at(c, SEPARATOR, 4).unwrap_or_default(),
            ..Piece::default()
        }
    }

    fn write(&self, head: &Head<'_>, pieces: &dyn Pieces, _opts: &RenderOpts, out: &mut dyn Sink) -> io::Result<()> {
        out.write_all(b"{\n  \"capture\": ")?;
        out.write_all(&pretty_at(head.capture, b"", 2)?)?;
        out.write_all(b",\n  \"summary\": ")?;
        out.write_all(&pretty_at(head.summary, b"", 2)?)?;
        out.write_all(b",\n  \"connections\": ")?;
        if pieces.count() == 0 {
            return out.write_all(b"[]\n}\n");
        }
        out.write_all(b"[")?;
        pieces.write_details(out, 1)?;
        out.write_all(b"\n  ]\n}\n")
    }
}

impl Renderer for Ndjson {
    fn piece(&self, c: &ConnReport, _opts: &RenderOpts) -> Piece {
        let mut detail = serde_json::to_vec(c).unwrap_or_default();
        detail.push(b'\n');
        detail.shrink_to_fit();
        Piece {
            id: c.id,
            problem: c.is_problem(),
            detail,
            ..Piece::default()
        }
    }

    fn write(&self, _head: &Head<'_>, pieces: &dyn Pieces, _opts: &RenderOpts, out: &mut dyn Sink) -> io::Result<()> {
        pieces.write_details(out, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Serialize)]
    struct Sample {
        a: u32,
        text: &'static str,
        empty: Vec<u8>,
        empty_map: std::collections::BTreeMap<String, u8>,
        list: Vec<Vec<u32>>,
        nested: Option<Box<Sample>>,
        f: f64,
    }

    fn sample() -> Sample {
        Sample {
            a: 1,
            text: "line\nbreak \"quoted\" ünï",
            empty: vec![],
            empty_map: Default::default(),
            list: vec![vec![1, 2], vec![], vec![3]],
            nested: Some(Box::new(Sample {
                a: 2,
                text: "",
                empty: vec![],
                empty_map: [("k".to_string(), 1)].into(),
                list: vec![],
                nested: None,
                f: -0.5,
            })),
            f: 1e21,
        }
    }

    #[test]
    fn indented_output_is_serdes_pretty_output_reindented() {
        for base in [0, 2, 4, 70, 130] {
            let want = serde_json::to_string_pretty(&sample())
                .unwrap()
                .replace('\n', &format!("\n{}", " ".repeat(base)));
            let got = pretty_at(&sample(), b"lead ", base).unwrap();
            assert_eq!(String::from_utf8(got).unwrap(), format!("lead {want}"), "base {base}");
        }
    }
}
