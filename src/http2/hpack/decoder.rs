//! The HPACK decoder (RFC 7541 §6), incremental and lenient.
//!
//! [`Decoder::decode`] consumes the complete field representations at the front of its input and returns how
//! many bytes it used: fewer than given means "need more bytes" (the caller keeps the rest and calls again
//! with more), never an error. A representation takes effect (field out, table updated) only once all of it is
//! there, so feeding a header block in pieces gives the same result as feeding it whole.
//!
//! Only an integer that cannot end (more than five continuation bytes, or above 2^32-1) is fatal, because the
//! representation's end is then unknown ([`HpackError`]). Everything else is a [`Notice`] and decoding goes
//! on: a Huffman string with bad padding keeps what decoded; index 0 is skipped; a reference to a dynamic entry
//! this decoder never saw (capture joined mid-connection, or bytes lost) gives a placeholder field
//! `<unknown dynamic index N>` and marks the table out of sync; a size update above the peer's
//! SETTINGS_HEADER_TABLE_SIZE is applied anyway, up to this decoder's own cap.
//!
//! Why a smaller table is safe: the entries this decoder has are always the newest ones, at the indexes the
//! encoder uses. Capping the size, or missing older entries, only makes some references unknown; it never makes
//! a known index point at the wrong entry.

use super::huffman::{self, HuffmanError};
use super::table::{STATIC, Table};
use std::io::Write as _;

/// SETTINGS_HEADER_TABLE_SIZE's default (RFC 9113 §6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// One decoded header field, borrowed until the sink returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    /// Sent as "never indexed" (§6.2.3): a sensitive value.
    pub never_indexed: bool,
}

/// A problem decoding went past (see the module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Index beyond the static and dynamic tables: a placeholder was used; the table is out of sync.
    UnknownIndex(u64),
    /// An indexed field with index 0 (§6.1): skipped.
    IndexZero,
    /// A Huffman string that did not decode cleanly: kept as far as it decoded.
    Huffman(HuffmanError),
    /// A dynamic table size update above the peer's SETTINGS_HEADER_TABLE_SIZE (§6.3): applied anyway.
    SizeAboveSettings { size: u64, allowed: u64 },
    /// A size update above this decoder's cap: the cap was applied instead.
    SizeCapped { size: u64, cap: u64 },
}

/// Receives the fields of a header block, in order.
pub trait Sink {
    fn field(&mut self, field: Field<'_>);
    fn notice(&mut self, notice: Notice);
}

/// A representation whose end cannot be found: the rest of the header block is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HpackError {
    /// An integer with more than five continuation bytes or a value above 2^32-1.
    Integer,
}

impl std::fmt::Display for HpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HpackError::Integer => f.write_str("HPACK integer too large"),
        }
    }
}

/// One direction's HPACK decoding context.
#[derive(Debug)]
pub struct Decoder {
    table: Table,
    /// The largest size the peer's SETTINGS_HEADER_TABLE_SIZE allows (for notices only).
    allowed: usize,
    /// The largest size this decoder will hold.
    cap: usize,
    out_of_sync: bool,
    name_buf: Vec<u8>,
    value_buf: Vec<u8>,
}

/// Where a name or value comes from once decoded.
enum Src {
    Raw(Lit),
    Name,
    Value,
    Table(usize),
}

/// Where a string literal lies in the input.
struct Lit {
    huffman: bool,
    start: usize,
    end: usize,
}

impl Decoder {
    /// A decoder whose dynamic table never grows beyond `cap` bytes (RFC accounting).
    pub fn new(cap: usize) -> Decoder {
        Decoder {
            table: Table::new(DEFAULT_TABLE_SIZE.min(cap)),
            allowed: DEFAULT_TABLE_SIZE,
            cap,
            out_of_sync: false,
            name_buf: Vec::new(),
            value_buf: Vec::new(),
        }
    }

    /// The peer's SETTINGS_HEADER_TABLE_SIZE (the most this encoder may use).
    pub fn set_allowed(&mut self, allowed: u32) {
        self.allowed = usize::try_from(allowed).unwrap_or(usize::MAX);
    }

    /// Whether a reference to an unknown entry was seen or the caller said bytes were lost.
    pub fn out_of_sync(&self) -> bool {
        self.out_of_sync
    }

    /// Header block bytes were lost (gap, cut frame, abandoned block): later references may be unknown.
    pub fn mark_out_of_sync(&mut self) {
        self.out_of_sync = true;
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Decodes the complete representations at the front of `buf`; returns the bytes used.
    pub fn decode<S: Sink + ?Sized>(&mut self, buf: &[u8], sink: &mut S) -> Result<usize, HpackError> {
        let mut pos = 0;
        while let Some(rest) = buf.get(pos..).filter(|r| !r.is_empty()) {
            match self.decode_one(rest, sink)? {
                Some(n) => pos += n,
                None => break,
            }
        }
        Ok(pos)
    }

    fn decode_one<S: Sink + ?Sized>(&mut self, buf: &[u8], sink: &mut S) -> Result<Option<usize>, HpackError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        if first & 0x80 != 0 {
            // §6.1 indexed header field.
            let Some((index, n)) = integer(buf, 7)? else {
                return Ok(None);
            };
            match self.table.get(as_index(index)) {
                Some((name, value)) => sink.field(Field {
                    name,
                    value,
                    never_indexed: false,
                }),
                None if index == 0 => sink.notice(Notice::IndexZero),
                None => {
                    self.placeholder(index, sink);
                    let p = &self.name_buf;
                    sink.field(Field {
                        name: p,
                        value: p,
                        never_indexed: false,
                    });
                }
            }
            return Ok(Some(n));
        }
        if first & 0xe0 == 0x20 {
            // §6.3 dynamic table size update.
            let Some((size, n)) = integer(buf, 5)? else {
                return Ok(None);
            };
            self.size_update(size, sink);
            return Ok(Some(n));
        }
        // §6.2 literal header field: with incremental indexing (01), never indexed (0001), without (0000).
        let (prefix, indexing, never_indexed) = match first {
            f if f & 0xc0 == 0x40 => (6, true, false),
            f if f & 0xf0 == 0x10 => (4, false, true),
            _ => (4, false, false),
        };
        let Some((index, mut pos)) = integer(buf, prefix)? else {
            return Ok(None);
        };
        let name_lit = if index == 0 {
            let Some(l) = literal(buf, pos)? else {
                return Ok(None);
            };
            pos = l.end;
            Some(l)
        } else {
            None
        };
        let Some(value_lit) = literal(buf, pos)? else {
            return Ok(None);
        };
        pos = value_lit.end;

        // All of it is here: decode the strings, hand the field out, then update the table.
        let value_src = if self.string(buf, &value_lit, false, sink) {
            Src::Value
        } else {
            Src::Raw(value_lit)
        };
        let name_src = match name_lit {
            Some(l) => {
                if self.string(buf, &l, true, sink) {
                    Src::Name
                } else {
                    Src::Raw(l)
                }
            }
            None => match self.table.get(as_index(index)) {
                Some((n, _)) if indexing => {
                    self.name_buf.clear();
                    self.name_buf.extend_from_slice(n);
                    Src::Name
                }
                Some(_) => Src::Table(as_index(index)),
                None => {
                    self.placeholder(index, sink);
                    Src::Name
                }
            },
        };
        let value: &[u8] = match &value_src {
            Src::Raw(l) => buf.get(l.start..l.end).unwrap_or(&[]),
            _ => &self.value_buf,
        };
        match &name_src {
            Src::Table(i) => {
                let name = self.table.get(*i).map(|(n, _)| n).unwrap_or(&[]);
                sink.field(Field {
                    name,
                    value,
                    never_indexed,
                });
            }
            other => {
                let name: &[u8] = match other {
                    Src::Raw(l) => buf.get(l.start..l.end).unwrap_or(&[]),
                    _ => &self.name_buf,
                };
                sink.field(Field {
                    name,
                    value,
                    never_indexed,
                });
                if indexing {
                    self.table.insert(name, value);
                }
            }
        }
        Ok(Some(pos))
    }

    /// Decodes a Huffman literal into `name_buf` or `value_buf` (`true`), or says to use the raw bytes.
    fn string<S: Sink + ?Sized>(&mut self, buf: &[u8], lit: &Lit, name: bool, sink: &mut S) -> bool {
        if !lit.huffman {
            return false;
        }
        let raw = buf.get(lit.start..lit.end).unwrap_or(&[]);
        let dst = if name { &mut self.name_buf } else { &mut self.value_buf };
        dst.clear();
        if let Err(e) = huffman::decode(raw, dst) {
            sink.notice(Notice::Huffman(e));
        }
        true
    }

    /// Writes the placeholder for an unknown index into `name_buf` and marks the table out of sync.
    fn placeholder<S: Sink + ?Sized>(&mut self, index: u64, sink: &mut S) {
        self.out_of_sync = true;
        sink.notice(Notice::UnknownIndex(index));
        self.name_buf.clear();
        let _ = write!(self.name_buf, "<unknown dynamic index {index}>");
    }

    fn size_update<S: Sink + ?Sized>(&mut self, size: u64, sink: &mut S) {
        let allowed = u64::try_from(self.allowed).unwrap_or(u64::MAX);
        if size > allowed {
            sink.notice(Notice::SizeAboveSettings { size, allowed });
        }
        let cap = u64::try_from(self.cap).unwrap_or(u64::MAX);
        let applied = if size > cap {
            sink.notice(Notice::SizeCapped { size, cap });
            self.cap
        } else {
            usize::try_from(size).unwrap_or(self.cap)
        };
        self.table.set_max_size(applied);
    }
}

fn as_index(i: u64) -> usize {
    usize::try_from(i).unwrap_or(usize::MAX)
}

/// Reads an integer with an N-bit prefix (§5.1): `Ok(None)` when more bytes are needed.
pub fn integer(buf: &[u8], prefix_bits: u8) -> Result<Option<(u64, usize)>, HpackError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let mask = u8::try_from((1u16 << prefix_bits.min(8)) - 1).unwrap_or(u8::MAX);
    let mut value = u64::from(first & mask);
    if value < u64::from(mask) {
        return Ok(Some((value, 1)));
    }
    let mut shift = 0u32;
    for (i, &b) in buf.iter().enumerate().skip(1) {
        if i > 5 {
            return Err(HpackError::Integer);
        }
        value += u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            if value > u64::from(u32::MAX) {
                return Err(HpackError::Integer);
            }
            return Ok(Some((value, i + 1)));
        }
        shift += 7;
    }
    Ok(None)
}

/// Finds a string literal (§5.2) at `pos`: `Ok(None)` when it is not all there.
fn literal(buf: &[u8], pos: usize) -> Result<Option<Lit>, HpackError> {
    let Some(rest) = buf.get(pos..) else {
        return Ok(None);
    };
    let Some(&first) = rest.first() else {
        return Ok(None);
    };
    let Some((len, n)) = integer(rest, 7)? else {
        return Ok(None);
    };
    let start = pos + n;
    let end = start.saturating_add(as_index(len));
    if end > buf.len() {
        return Ok(None);
    }
    Ok(Some(Lit {
        huffman: first & 0x80 != 0,
        start,
        end,
    }))
}

/// The static table's name for an index, for messages.
pub fn static_name(index: usize) -> Option<&'static str> {
    index.checked_sub(1).and_then(|i| STATIC.get(i)).map(|(n, _)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Collect {
        fields: Vec<(String, String)>,
        notices: Vec<Notice>,
    }

    impl Sink for Collect {
        fn field(&mut self, f: Field<'_>) {
            self.fields.push((
                String::from_utf8_lossy(f.name).into(),
                String::from_utf8_lossy(f.value).into(),
            ));
        }
        fn notice(&mut self, n: Notice) {
            self.notices.push(n);
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    fn run(d: &mut Decoder, block: &[u8]) -> Collect {
        let mut c = Collect::default();
        assert_eq!(d.decode(block, &mut c), Ok(block.len()));
        c
    }

    #[test]
    fn integers_rfc7541_c1() {
        assert_eq!(integer(&[0b0000_1010], 5), Ok(Some((10, 1))));
        assert_eq!(
            integer(&[0b0001_1111, 0b1001_1010, 0b0000_1010], 5),
            Ok(Some((1337, 3)))
        );
        assert_eq!(integer(&[42], 8), Ok(Some((42, 1))));
        assert_eq!(integer(&[0x1f, 0x9a], 5), Ok(None));
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], 5),
            Err(HpackError::Integer)
        );
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f], 5),
            Err(HpackError::Integer)
        );
        assert_eq!(
            integer(&[0x1f, 0xe0, 0xff, 0xff, 0xff, 0x0f], 5),
            Ok(Some((0xffff_ffff, 6)))
        );
    }

    #[test]
    fn rfc7541_c2_single_representations() {
        let mut d = Decoder::new(4096);
        let c = run(
            &mut d,
            &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
        );
        assert_eq!(c.fields, pairs(&[("custom-key", "custom-header")]));
        assert_eq!(d.table().size(), 55);
        let mut d = Decoder::new(4096);
        let c = run(&mut d, &hex("040c 2f73 616d 706c 652f 7061 7468"));
        assert_eq!(c.fields, pairs(&[(":path", "/sample/path")]));
        assert!(d.table().is_empty());
        let c = run(&mut d, &hex("1008 7061 7373 776f 7264 0673 6563 7265 74"));
        assert_eq!(c.fields, pairs(&[("password", "secret")]));
        assert!(d.table().is_empty());
        let c = run(&mut d, &hex("82"));
        assert_eq!(c.fields, pairs(&[(":method", "GET")]));
    }

    fn c3_or_c4(blocks: [&str; 3]) {
        let mut d = Decoder::new(4096);
        let c = run(&mut d, &hex(blocks[0]));
        assert_eq!(
            c.fields,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com")
            ])
        );
        assert_eq!(d.table().size(), 57);
        let c = run(&mut d, &hex(blocks[1]));
        assert_eq!(
            c.fields,
            pairs(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/"),
                (":authority", "www.example.com"),
                ("cache-control", "no-cache")
            ])
        );
        assert_eq!(d.table().size(), 110);
        let c = run(&mut d, &hex(blocks[2]));
        assert_eq!(
            c.fields,
            pairs(&[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value")
            ])
        );
        assert_eq!(d.table().size(), 164);
        assert!(c.notices.is_empty());
    }

    #[test]
    fn rfc7541_c3_requests_without_huffman() {
        c3_or_c4([
            "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "8286 84be 5808 6e6f 2d63 6163 6865",
            "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
        ]);
    }

    #[test]
    fn rfc7541_c4_requests_with_huffman() {
        c3_or_c4([
            "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
            "8286 84be 5886 a8eb 1064 9cbf",
            "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
        ]);
    }

    fn c5_or_c6(blocks: [&str; 3]) {
        let mut d = Decoder::new(4096);
        d.table.set_max_size(256);
        let c = run(&mut d, &hex(blocks[0]));
        assert_eq!(
            c.fields,
            pairs(&[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
                ("location", "https://www.example.com")
            ])
        );
        assert_eq!(d.table().size(), 222);
        let c = run(&mut d, &hex(blocks[1]));
        assert_eq!(c.fields[0], (":status".to_string(), "307".to_string()));
        assert_eq!(c.fields.len(), 4);
        assert_eq!(d.table().size(), 222);
        let c = run(&mut d, &hex(blocks[2]));
        assert_eq!(
            c.fields,
            pairs(&[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", "https://www.example.com"),
                ("content-encoding", "gzip"),
                ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")
            ])
        );
        assert_eq!(d.table().size(), 215);
        assert_eq!(d.table().len(), 3);
    }

    #[test]
    fn rfc7541_c5_responses_without_huffman() {
        c5_or_c6([
            "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
            "4803 3330 37c1 c0bf",
            "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
        ]);
    }

    #[test]
    fn rfc7541_c6_responses_with_huffman() {
        c5_or_c6([
            "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
            "4883 640e ffc1 c0bf",
            "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
        ]);
    }

    #[test]
    fn byte_by_byte_equals_whole() {
        let block = hex("8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf");
        let mut whole = Decoder::new(4096);
        let w = run(&mut whole, &block);
        let mut piecewise = Decoder::new(4096);
        let mut c = Collect::default();
        let mut pending = Vec::new();
        for &b in &block {
            pending.push(b);
            let n = piecewise.decode(&pending, &mut c).unwrap();
            pending.drain(..n);
        }
        assert!(pending.is_empty());
        assert_eq!(c.fields, w.fields);
    }

    #[test]
    fn unknown_dynamic_index_gives_a_placeholder_and_goes_on() {
        let mut d = Decoder::new(4096);
        // Indexed 63 (unknown), literal with indexed name 64 (unknown) value "x", then :method GET.
        let c = run(&mut d, &[0x80 | 63, 0x40 | 0x3f, 64 - 63, 0x01, b'x', 0x82]);
        assert_eq!(
            c.fields,
            pairs(&[
                ("<unknown dynamic index 63>", "<unknown dynamic index 63>"),
                ("<unknown dynamic index 64>", "x"),
                (":method", "GET")
            ])
        );
        assert!(d.out_of_sync());
        assert_eq!(c.notices, vec![Notice::UnknownIndex(63), Notice::UnknownIndex(64)]);
        assert_eq!(d.table().len(), 1);
    }

    #[test]
    fn lenient_on_index_zero_bad_huffman_and_big_size_updates() {
        let mut d = Decoder::new(8192);
        let c = run(&mut d, &[0x3f, 0xe9, 0x26, 0x80, 0x01, 0x81, 0x18, 0x82]);
        // A size update to 5000, above the default allowed 4096; index 0 (skipped); :authority with a Huffman
        // value padded with zeros (kept as decoded, "a"); then :method GET.
        assert_eq!(
            c.notices[0],
            Notice::SizeAboveSettings {
                size: 5000,
                allowed: 4096
            }
        );
        assert_eq!(d.table().max_size(), 5000);
        assert!(c.notices.contains(&Notice::IndexZero));
        assert_eq!(c.fields, pairs(&[(":authority", "a"), (":method", "GET")]));
        let c = run(&mut d, &[0x3f, 0xe1, 0xff, 0x03]);
        assert!(
            c.notices
                .iter()
                .any(|n| matches!(n, Notice::SizeCapped { cap: 8192, .. }))
        );
        assert_eq!(d.table().max_size(), 8192);
    }

    #[test]
    fn incomplete_representations_are_not_consumed() {
        let mut d = Decoder::new(4096);
        let mut c = Collect::default();
        let block = hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");
        for cut in 0..block.len() {
            assert_eq!(d.decode(&block[..cut], &mut c), Ok(0));
        }
        assert!(c.fields.is_empty());
        assert!(d.table().is_empty());
        assert_eq!(static_name(2), Some(":method"));
    }
}
