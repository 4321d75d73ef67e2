//! Byte input for one capture: a file or standard input, gzip unwrapped on the fly, read through one reusable
//! buffer.
//!
//! Everything above this works on [`RecBuf`]: "make sure the next `n` bytes are in memory", "hand me them",
//! "drop the next `n` bytes" (skipping past the buffer without storing what it skips). The buffer grows only up
//! to the size of the largest record the readers accept, so memory does not grow with the file.

use super::SourceError;
use super::ahead::{Ahead, HEAD_ROOM};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Bytes read ahead at a time for one input. Large enough that `read` calls are rare.
pub(crate) const READ_CHUNK: usize = 256 * 1024;
/// The read-ahead when many files are merged (one buffer per file is held at once).
pub(crate) const READ_CHUNK_MANY: usize = 32 * 1024;

/// How many leading bytes are sniffed for the format (the longest magic we look at, and a snippet of text).
const SNIFF: usize = 64;

/// The byte stream of one input, counting the bytes taken from the file (before decompression).
pub(crate) struct RawInput {
    head: [u8; SNIFF],
    head_pos: usize,
    head_len: usize,
    inner: RawKind,
    /// Bytes read from the file or pipe so far.
    count: u64,
}

enum RawKind {
    File(File),
    Stdin(io::Stdin),
}

impl Read for RawInput {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.head_pos < self.head_len {
            let rest = self.head.get(self.head_pos..self.head_len).unwrap_or(&[]);
            let n = rest.len().min(out.len());
            if let (Some(dst), Some(src)) = (out.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.head_pos += n;
            return Ok(n);
        }
        self.read_underlying(out)
    }
}

impl RawInput {
    /// Reads from the file or pipe itself (past the sniffed head), counting the bytes.
    fn read_underlying(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.inner {
            RawKind::File(f) => f.read(out)?,
            RawKind::Stdin(s) => s.read(out)?,
        };
        self.count = self.count.saturating_add(n as u64);
        Ok(n)
    }
}

/// The decoded byte stream: plain, or gzip-compressed underneath; either may be read ahead by a thread.
pub(crate) enum Input {
    Plain(RawInput),
    Gzip(Box<MultiGzDecoder<RawInput>>),
    Ahead(Box<Ahead>),
}

impl Input {
    /// Bytes taken from the file or pipe (compressed bytes for gzip input).
    pub(crate) fn raw_consumed(&self) -> u64 {
        match self {
            Input::Plain(r) => r.count,
            Input::Gzip(g) => g.get_ref().count,
            Input::Ahead(a) => a.raw_consumed(),
        }
    }
}

impl Read for Input {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::Plain(r) => r.read(out),
            Input::Gzip(g) => g.read(out),
            Input::Ahead(a) => a.read(out),
        }
    }
}

/// What [`RecBuf`] reads from: any reader, or an input read ahead by a thread, whose chunks it takes over.
pub(crate) trait ByteSource: Read {
    fn ahead(&mut self) -> Option<&mut Ahead> {
        None
    }
}

impl ByteSource for Input {
    fn ahead(&mut self) -> Option<&mut Ahead> {
        match self {
            Input::Ahead(a) => Some(a),
            _ => None,
        }
    }
}

#[cfg(test)]
impl<T: AsRef<[u8]>> ByteSource for io::Cursor<T> {}

/// An opened input, sniffed: its display name, its stream (gzip already unwrapped) and its size when known.
pub(crate) struct Opened {
    pub name: String,
    pub input: Input,
    pub gzip: bool,
    /// Size of the file on disk (compressed size for gzip), `None` for pipes.
    pub size: Option<u64>,
}

/// The name printed for standard input.
pub(crate) const STDIN_NAME: &str = "<stdin>";

fn err(name: &str, message: impl Into<String>) -> SourceError {
    SourceError {
        file: name.to_string(),
        message: message.into(),
    }
}

/// Reads until `buf` is full or the stream ends; returns the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let Some(space) = buf.get_mut(n..) else { break };
        match r.read(space) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn io_message(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => "no such file".into(),
        io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot read: {e}"),
    }
}

/// Opens `path` (`-` is standard input) and checks that it is not empty; gzip is unwrapped. The format itself is
/// recognised by the caller from the first bytes of [`Opened::input`].
pub(crate) fn open_input(path: &Path) -> Result<Opened, SourceError> {
    let is_stdin = path.as_os_str() == "-";
    let name = if is_stdin {
        STDIN_NAME.to_string()
    } else {
        path.to_string_lossy().into_owned()
    };
    let (inner, size) = if is_stdin {
        let stdin = io::stdin();
        widen_pipe(&stdin);
        (RawKind::Stdin(stdin), None)
    } else {
        let meta = std::fs::metadata(path).map_err(|e| err(&name, io_message(&e)))?;
        if meta.is_dir() {
            return Err(err(&name, "is a directory, not a capture file"));
        }
        let file = File::open(path).map_err(|e| err(&name, io_message(&e)))?;
        let size = meta.is_file().then_some(meta.len());
        if size == Some(0) {
            return Err(err(&name, "empty file (0 bytes): not a capture"));
        }
        (RawKind::File(file), size)
    };
    let mut raw = RawInput {
        head: [0; SNIFF],
        head_pos: 0,
        head_len: 0,
        inner,
        count: 0,
    };
    let mut head = [0u8; SNIFF];
    let got = {
        let mut reader = RawReadOnly(&mut raw);
        read_full(&mut reader, &mut head).map_err(|e| err(&name, io_message(&e)))?
    };
    raw.head = head;
    raw.head_len = got;
    if got == 0 {
        let what = if is_stdin {
            "standard input is empty (no capture data)"
        } else {
            "empty file (0 bytes): not a capture"
        };
        return Err(err(&name, what));
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Opened {
            name,
            input: Input::Gzip(Box::new(MultiGzDecoder::new(raw))),
            gzip: true,
            size,
        });
    }
    Ok(Opened {
        name,
        input: Input::Plain(raw),
        gzip: false,
        size,
    })
}

/// Standard input from a pipe (`tcpdump -w - | whoclosed -`): a larger pipe buffer lets the writer run ahead and
/// halves the switches between it and us (Linux's default is 64 KiB). Not a pipe, or not allowed: left as it is.
fn widen_pipe(stdin: &io::Stdin) {
    #[cfg(target_os = "linux")]
    {
        use nix::fcntl::{FcntlArg, fcntl};
        let _ = fcntl(stdin, FcntlArg::F_SETPIPE_SZ(1 << 20));
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stdin;
}

/// Reads from the underlying file of a [`RawInput`] (not its head), counting bytes.
struct RawReadOnly<'a>(&'a mut RawInput);

impl Read for RawReadOnly<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        self.0.read_underlying(out)
    }
}

/// Says what a file that is not pcap/pcapng looks like, from its first bytes.
pub(crate) fn describe_unknown(head: &[u8]) -> String {
    const COMPRESSED: [(&[u8], &str); 6] = [
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (b"BZh", "bzip2"),
        (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
        (b"PK\x03\x04", "zip"),
        (b"7z\xbc\xaf\x27\x1c", "7-zip"),
    ];
    for (magic, name) in COMPRESSED {
        if head.starts_with(magic) {
            return format!("compressed with {name}; decompress it first");
        }
    }
    const OTHER: [(&[u8], &str); 5] = [
        (b"snoop\0\0\0", "a Solaris snoop capture"),
        (b"GMBU", "a Microsoft Network Monitor capture"),
        (b"XCP\0", "a NetXray/Sniffer capture"),
        (b"\x7fELF", "an executable (ELF)"),
        (b"%PDF", "a PDF document"),
    ];
    for (magic, name) in OTHER {
        if head.starts_with(magic) {
            return format!("not a pcap or pcapng file: looks like {name} (convert it with editcap)");
        }
    }
    let text = head.iter().all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if text {
        let s = String::from_utf8_lossy(head);
        let lower = s.trim_start().to_ascii_lowercase();
        if lower.starts_with("<!doctype html") || lower.starts_with("<html") || lower.starts_with("<?xml") {
            return "not a pcap or pcapng file: it is an HTML/XML document (a saved web page or an error page?)".into();
        }
        let first_line: String = s.lines().next().unwrap_or("").chars().take(40).collect();
        return format!("not a pcap or pcapng file: it is text (starts with {first_line:?})");
    }
    let magic: String = head.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("not a pcap or pcapng file (unknown magic number 0x{magic})")
}

/// The read buffer of one input: holds the bytes from `pos` to `end`; `offset` is the stream position of `pos`.
pub(crate) struct RecBuf {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    /// Stream offset of `buf[pos]`.
    offset: u64,
    eof: bool,
}

impl RecBuf {
    /// A buffer of `size` bytes (it grows only for a record larger than that).
    pub(crate) fn new(size: usize) -> RecBuf {
        RecBuf {
            buf: vec![0; size],
            pos: 0,
            end: 0,
            offset: 0,
            eof: false,
        }
    }

    /// The buffered bytes not yet consumed.
    #[inline]
    pub(crate) fn data(&self) -> &[u8] {
        self.buf.get(self.pos..self.end).unwrap_or(&[])
    }

    /// Stream offset of the first unconsumed byte.
    #[inline]
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Makes at least `need` bytes available (fewer only at the end of the stream). Returns the number available.
    /// `need` must already be bounded by the caller's record limits: the buffer grows to it.
    #[inline]
    pub(crate) fn fill(&mut self, r: &mut impl ByteSource, need: usize) -> io::Result<usize> {
        let have = self.end - self.pos;
        if have >= need || self.eof {
            return Ok(have);
        }
        self.fill_slow(r, need)
    }

    #[cold]
    fn fill_slow(&mut self, r: &mut impl ByteSource, need: usize) -> io::Result<usize> {
        if let Some(a) = r.ahead() {
            return self.fill_ahead(a, need);
        }
        if need > self.buf.len() {
            let new_len = need.max(self.buf.len().saturating_mul(2));
            self.buf.resize(new_len, 0);
        }
        if self.pos + need > self.buf.len() || self.pos == self.end {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        while self.end - self.pos < need {
            let Some(space) = self.buf.get_mut(self.end..) else {
                break;
            };
            if space.is_empty() {
                break;
            }
            match r.read(space) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.pos)
    }

    /// [`RecBuf::fill`] from a read-ahead thread: each chunk becomes the buffer (the bytes not yet consumed are
    /// moved into the room before its data) and the previous buffer goes back to the thread.
    fn fill_ahead(&mut self, a: &mut Ahead, need: usize) -> io::Result<usize> {
        while self.end - self.pos < need {
            let Some((mut c, at)) = a.next()? else {
                self.eof = true;
                break;
            };
            let have = self.end - self.pos;
            let data_end = HEAD_ROOM + c.len;
            if have <= at {
                let start = at - have;
                if let (Some(dst), Some(src)) = (c.buf.get_mut(start..at), self.buf.get(self.pos..self.end)) {
                    dst.copy_from_slice(src);
                }
                let old = std::mem::replace(&mut self.buf, c.buf);
                a.give_back(old);
                self.pos = start;
                self.end = data_end;
            } else {
                // More left than the room holds (a record longer than usual): the chunk is copied after it.
                self.buf.copy_within(self.pos..self.end, 0);
                self.end -= self.pos;
                self.pos = 0;
                let add = data_end.saturating_sub(at);
                if self.buf.len() < self.end + add {
                    self.buf.resize(self.end + add, 0);
                }
                if let (Some(dst), Some(src)) = (self.buf.get_mut(self.end..self.end + add), c.buf.get(at..data_end)) {
                    dst.copy_from_slice(src);
                }
                self.end += add;
                a.give_back(c.buf);
            }
        }
        Ok(self.end - self.pos)
    }

    /// Drops the next `n` bytes of the stream: from the buffer, then by reading past it. Returns how many bytes
    /// were really dropped (fewer when the stream ends first).
    pub(crate) fn consume(&mut self, r: &mut impl ByteSource, n: u64) -> io::Result<u64> {
        let have = (self.end - self.pos) as u64;
        if n <= have {
            // n <= have <= usize::MAX
            self.pos += n as usize;
            self.offset = self.offset.saturating_add(n);
            return Ok(n);
        }
        self.offset = self.offset.saturating_add(have);
        self.pos = 0;
        self.end = 0;
        let mut left = n - have;
        if let Some(a) = r.ahead() {
            while left > 0 && !self.eof {
                let Some((c, at)) = a.next()? else {
                    self.eof = true;
                    break;
                };
                let data_end = HEAD_ROOM + c.len;
                let skip = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(data_end.saturating_sub(at));
                let old = std::mem::replace(&mut self.buf, c.buf);
                a.give_back(old);
                self.pos = at + skip;
                self.end = data_end;
                left -= skip as u64;
                self.offset = self.offset.saturating_add(skip as u64);
            }
            return Ok(n - left);
        }
        while left > 0 && !self.eof {
            let want = usize::try_from(left).unwrap_or(usize::MAX).min(self.buf.len());
            let Some(space) = self.buf.get_mut(..want) else {
                break;
            };
            match r.read(space) {
                Ok(0) => self.eof = true,
                Ok(k) => {
                    left -= k as u64;
                    self.offset = self.offset.saturating_add(k as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n - left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_grows_and_consume_skips_past_the_buffer() {
        let data: Vec<u8> = (0..2_000_000u32).map(|i| i as u8).collect();
        let mut r = io::Cursor::new(data.clone());
        let mut b = RecBuf::new(READ_CHUNK);
        assert_eq!(b.fill(&mut r, 10).unwrap(), READ_CHUNK);
        assert_eq!(b.data().get(..3), Some(&[0u8, 1, 2][..]));
        assert_eq!(b.consume(&mut r, 5).unwrap(), 5);
        assert_eq!(b.data().first(), Some(&5));
        assert!(b.fill(&mut r, READ_CHUNK + 100).unwrap() >= READ_CHUNK + 100);
        assert_eq!(b.consume(&mut r, 1_000_000).unwrap(), 1_000_000);
        assert_eq!(b.offset(), 1_000_005);
        b.fill(&mut r, 1).unwrap();
        assert_eq!(b.data().first(), Some(&data[1_000_005]));
        assert_eq!(b.consume(&mut r, 5_000_000).unwrap(), 999_995);
        assert_eq!(b.fill(&mut r, 1).unwrap(), 0);
    }

    /// The same walk (fills of various sizes, consumes within and past the buffer) through a plain input and a
    /// read-ahead one gives the same bytes at the same offsets, across chunk boundaries and with records longer
    /// than the room kept before each chunk.
    #[test]
    fn read_ahead_gives_the_same_bytes() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i ^ (i >> 9)) as u8).collect();
        let path = std::env::temp_dir().join(format!("whoclosed-ahead-{}.bin", std::process::id()));
        std::fs::write(&path, &data).unwrap();
        // About 3.2 MB consumed in all: the end of the file is reached in the last steps.
        let steps: Vec<(usize, u64)> = (0..140u64)
            .map(|i| match i % 7 {
                0 => (100_000, 7_000),
                1 => (HEAD_ROOM + 5_000, 1),
                2 => (9, 30_000),
                3 => (40, 40),
                4 => (1, 100_001),
                5 => (20_000, 19_999),
                _ => (16, 1500 + i),
            })
            .collect();
        let walk = |ahead: bool| {
            let mut input = open_input(&path).unwrap().input;
            if ahead {
                input = Input::Ahead(Box::new(Ahead::start(input, 100_000).unwrap()));
            }
            let mut b = RecBuf::new(READ_CHUNK);
            let mut seen = Vec::new();
            for &(need, skip) in &steps {
                let n = b.fill(&mut input, need).unwrap();
                seen.push((b.offset(), n.min(need), b.data().get(..n.min(need)).unwrap().to_vec()));
                let dropped = b.consume(&mut input, skip).unwrap();
                seen.push((b.offset(), dropped as usize, Vec::new()));
            }
            seen
        };
        let plain = walk(false);
        assert_eq!(plain, walk(true));
        assert_eq!(plain.last().map(|s| s.0), Some(data.len() as u64));
        assert!(plain.iter().rev().nth(24).is_some_and(|s| s.0 < data.len() as u64));
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn unknown_files_are_described() {
        assert!(describe_unknown(b"<!DOCTYPE html><html>").contains("HTML"));
        assert!(describe_unknown(b"hello world\nmore").contains("text (starts with \"hello world\")"));
        assert!(describe_unknown(&[0x28, 0xb5, 0x2f, 0xfd, 0]).contains("zstd"));
        assert!(describe_unknown(&[0x06, 0, 0, 0, 0x99]).contains("0x06000000"));
    }
}
