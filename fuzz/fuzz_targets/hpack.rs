//! The HPACK decoder: one header block decoded whole, and the same block fed in pieces the way the HTTP/2
//! stage feeds it (keeping what `decode` did not use); both must give the same fields and notices, and the
//! same dynamic table. Table size updates, Huffman, unknown indexes and bombs all come from the input.
//!
//! Input: `[cap selector u8][allowed u16 le][split points: n u8, n bytes][block]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use whoclosed::http2::hpack::{Decoder, Field, HpackError, Notice, Sink};

#[derive(Default, PartialEq, Debug)]
struct Collect {
    fields: Vec<(Vec<u8>, Vec<u8>, bool)>,
    notices: Vec<Notice>,
    /// Bytes of names and values decoded (bounded by the test, like the header list cap does in the stage).
    bytes: usize,
}

impl Sink for Collect {
    fn field(&mut self, f: Field<'_>) {
        self.bytes = self.bytes.saturating_add(f.name.len() + f.value.len());
        if self.fields.len() < 4096 {
            self.fields.push((f.name.to_vec(), f.value.to_vec(), f.never_indexed));
        }
    }
    fn notice(&mut self, n: Notice) {
        if self.notices.len() < 4096 {
            self.notices.push(n);
        }
    }
}

/// Decodes `block` in the pieces given by `cuts`, holding unused bytes like the stage does.
fn pieces(dec: &mut Decoder, block: &[u8], cuts: &[u8], sink: &mut Collect) -> Result<(), HpackError> {
    let mut pending: Vec<u8> = Vec::new();
    let mut at = 0usize;
    for &c in cuts.iter().chain(std::iter::once(&255u8)) {
        let end = if c == 255 {
            block.len()
        } else {
            (at + usize::from(c)).min(block.len())
        };
        pending.extend_from_slice(block.get(at..end).unwrap_or(&[]));
        at = end;
        let used = dec.decode(&pending, sink)?;
        assert!(used <= pending.len());
        pending.drain(..used);
        if at >= block.len() {
            break;
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let [sel, a0, a1, n, rest @ ..] = data else {
        return;
    };
    let cap = [0usize, 64, 4096, 65_536][usize::from(*sel % 4)];
    let allowed = u32::from(u16::from_le_bytes([*a0, *a1]));
    let ncuts = usize::from(*n % 16).min(rest.len());
    let (cuts, block) = rest.split_at(ncuts);

    let mut whole = Decoder::new(cap);
    whole.set_allowed(allowed);
    let mut s1 = Collect::default();
    let r1 = whole.decode(block, &mut s1);
    assert!(whole.table().size() <= cap.max(whole.table().max_size()));
    assert!(
        whole.table().size() <= cap,
        "table {} over cap {cap}",
        whole.table().size()
    );

    let mut split = Decoder::new(cap);
    split.set_allowed(allowed);
    let mut s2 = Collect::default();
    let r2 = pieces(&mut split, block, cuts, &mut s2);
    if r1.is_ok() && r2.is_ok() {
        assert_eq!(s1, s2, "whole and split decodes differ");
        assert_eq!(whole.table().size(), split.table().size());
        assert_eq!(whole.table().len(), split.table().len());
    }
    // A second block on the same context (table carried over).
    let _ = whole.decode(block, &mut s1);
});
