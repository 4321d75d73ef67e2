//! Where finished connections wait for the output: their rendered pieces, in memory up to a budget, then in
//! temporary files, so that memory does not grow with the capture — while the output stays one document in
//! connection-id order, byte for byte what an all-in-memory run would print.
//!
//! Connections end nearly in the order they started (their id order), so the files are written in id order as
//! far as they go: pieces wait in memory ordered by id, and past the budget the lowest ids go out. A piece whose
//! id is below one already written (a long connection ending after thousands of later ones) is "late": it goes
//! out too, and only late pieces are indexed in memory. The output reads the index front to back and merges the
//! late pieces in. Memory follows the connections that end out of order, not the file's size.
//!
//! A piece's text (its `detail`: for JSON and NDJSON, the output itself) goes to a text file of its own, so that
//! runs of in-order text reach the output by a copy inside the kernel ([`Sink::copy_from`]) instead of being read
//! back, decoded and written out again: on the benchmark that was 200 MB on one thread at the end of the run.
//!
//! The temporary files are unlinked as soon as they are created (they vanish with the process, even on a crash).

use super::{Piece, Pieces, Sink};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

/// Default bytes of pieces kept in memory (before spilling, and as the window that puts pieces in id order):
/// `--report-memory`'s default. Spilling costs nothing measurable on the benchmark; the memory is worth more.
pub const MEMORY_BUDGET: usize = 1024 * 1024;

/// A piece's place in the output: its connection id, then the order pieces were pushed (equal ids keep it).
type Key = (u64, u64);

/// Record header in the index file: the record's length (u32), the push order (u64); the encoded rest follows.
const REC_HEAD: usize = 12;

/// Where a spilled piece's `detail` lies in the text file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TextAt {
    offset: u64,
    len: u64,
}

/// A piece written out of order: its key, its index record's offset, its text.
#[derive(Clone, Copy, Debug)]
struct Late {
    key: Key,
    rec: u64,
    text: TextAt,
}

/// The spill is two unlinked files written side by side: the pieces' `detail` bytes back to back (the text,
/// which for JSON is the output itself), and an index with one record per piece — its key, where its text
/// is, and the rest of the piece (cells, timeline). Runs of in-order text go to the output by
/// [`Sink::copy_from`], without being read back.
struct Spill {
    index: BufWriter<File>,
    /// The index file, read back (a second handle).
    index_file: File,
    index_len: u64,
    text: BufWriter<File>,
    text_file: File,
    text_len: u64,
    /// The key of the last piece written in order.
    last: Option<Key>,
    /// Pieces written out of order, sorted by key once sealed.
    late: Vec<Late>,
}

/// Pieces of the run, in memory or spilled.
pub struct Store {
    mem: BTreeMap<Key, Piece>,
    mem_bytes: usize,
    budget: usize,
    pushed: u64,
    spill: Option<Spill>,
    sealed: bool,
}

fn piece_size(p: &Piece) -> usize {
    p.cells.iter().map(|c| c.len() + 24).sum::<usize>() + p.detail.len() + p.timeline.len() + 96
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    let n = u32::try_from(s.len()).unwrap_or(u32::MAX);
    buf.extend_from_slice(&n.to_le_bytes());
    buf.extend_from_slice(s.as_bytes().get(..n as usize).unwrap_or(s.as_bytes()));
}

/// A piece's index record (after its header): everything but its text, and where the text is.
fn encode(p: &Piece, text: TextAt) -> Vec<u8> {
    let mut b = Vec::with_capacity(64 + p.cells.iter().map(|c| c.len() + 4).sum::<usize>() + p.timeline.len());
    b.extend_from_slice(&p.id.to_le_bytes());
    b.push(u8::from(p.problem));
    b.extend_from_slice(&text.offset.to_le_bytes());
    b.extend_from_slice(&text.len.to_le_bytes());
    b.extend_from_slice(&u32::try_from(p.cells.len()).unwrap_or(u32::MAX).to_le_bytes());
    for c in &p.cells {
        put_str(&mut b, c);
    }
    put_str(&mut b, &p.timeline);
    b
}

fn bad() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "whoclosed spill file damaged")
}

/// Reads back what `encode` wrote into `p` (all but its text, which is cleared), reusing its strings' buffers;
/// returns where the text is. The file is ours; a short record is an I/O error, not a panic.
fn decode_into(b: &[u8], p: &mut Piece) -> io::Result<TextAt> {
    struct Cur<'a> {
        b: &'a [u8],
        pos: usize,
    }
    impl<'a> Cur<'a> {
        fn take<const N: usize>(&mut self) -> io::Result<[u8; N]> {
            let end = self.pos.checked_add(N).ok_or_else(bad)?;
            let s = self.b.get(self.pos..end).ok_or_else(bad)?;
            self.pos = end;
            s.try_into().map_err(|_| bad())
        }
        fn u32(&mut self) -> io::Result<usize> {
            Ok(u32::from_le_bytes(self.take()?) as usize)
        }
        fn u64(&mut self) -> io::Result<u64> {
            Ok(u64::from_le_bytes(self.take()?))
        }
        fn string(&mut self, into: &mut String) -> io::Result<()> {
            let n = self.u32()?;
            let end = self.pos.checked_add(n).ok_or_else(bad)?;
            let bytes = self.b.get(self.pos..end).ok_or_else(bad)?;
            self.pos = end;
            into.clear();
            match std::str::from_utf8(bytes) {
                Ok(s) => into.push_str(s),
                Err(_) => into.push_str(&String::from_utf8_lossy(bytes)),
            }
            Ok(())
        }
    }
    let mut c = Cur { b, pos: 0 };
    p.id = c.u64()?;
    p.problem = c.take::<1>()? != [0];
    let text = TextAt {
        offset: c.u64()?,
        len: c.u64()?,
    };
    let n = c.u32()?;
    p.cells.truncate(n);
    for i in 0..n {
        if i == p.cells.len() {
            p.cells.push(String::new());
        }
        let cell = p.cells.get_mut(i).ok_or_else(bad)?;
        c.string(cell)?;
    }
    c.string(&mut p.timeline)?;
    p.detail.clear();
    Ok(text)
}

impl Store {
    pub fn new(budget: usize) -> Store {
        Store {
            mem: BTreeMap::new(),
            mem_bytes: 0,
            budget,
            pushed: 0,
            spill: None,
            sealed: true,
        }
    }

    /// Whether pieces went to disk.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    pub fn push(&mut self, p: Piece) -> io::Result<()> {
        self.sealed = false;
        let key = (p.id, self.pushed);
        self.pushed += 1;
        self.mem_bytes = self.mem_bytes.saturating_add(piece_size(&p));
        self.mem.insert(key, p);
        if self.mem_bytes > self.budget {
            // The lowest ids out, until a quarter of the budget is free (the files are written in runs).
            let keep = self.budget - self.budget / 4;
            if self.spill.is_none() {
                self.spill = Some(Spill::open()?);
            }
            while self.mem_bytes > keep {
                let Some((k, p)) = self.mem.pop_first() else { break };
                self.mem_bytes = self.mem_bytes.saturating_sub(piece_size(&p));
                if let Some(s) = self.spill.as_mut() {
                    s.write(k, &p)?;
                }
            }
        }
        Ok(())
    }

    /// Writes out what is still in memory (once anything was spilled) and makes the files readable; call once
    /// after the last push.
    pub fn seal(&mut self) -> io::Result<()> {
        if let Some(s) = self.spill.as_mut() {
            for (k, p) in std::mem::take(&mut self.mem) {
                s.write(k, &p)?;
            }
            self.mem_bytes = 0;
            s.index.flush()?;
            s.text.flush()?;
            s.late.sort_unstable_by_key(|l| l.key);
        }
        self.sealed = true;
        Ok(())
    }
}

/// A temporary file, unlinked at once (the open handles keep it alive, nothing is left behind), with a second
/// handle to read it back by.
fn temp_file(what: &str) -> io::Result<(BufWriter<File>, File)> {
    let mut path = std::env::temp_dir();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    path.push(format!("whoclosed-{}-{nanos}.{what}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let _ = std::fs::remove_file(&path);
    let reader = file.try_clone()?;
    Ok((BufWriter::with_capacity(1 << 20, file), reader))
}

impl Spill {
    fn open() -> io::Result<Spill> {
        let (index, index_file) = temp_file("spill-index")?;
        let (text, text_file) = temp_file("spill-text")?;
        Ok(Spill {
            index,
            index_file,
            index_len: 0,
            text,
            text_file,
            text_len: 0,
            last: None,
            late: Vec::new(),
        })
    }

    fn write(&mut self, key: Key, p: &Piece) -> io::Result<()> {
        let text = TextAt {
            offset: self.text_len,
            len: p.detail.len() as u64,
        };
        self.text.write_all(&p.detail)?;
        self.text_len = self.text_len.saturating_add(text.len);
        let rec = encode(p, text);
        let n = u32::try_from(rec.len()).map_err(|_| io::Error::other("piece too large"))?;
        let at = self.index_len;
        self.index.write_all(&n.to_le_bytes())?;
        self.index.write_all(&key.1.to_le_bytes())?;
        self.index.write_all(&rec)?;
        self.index_len = self.index_len.saturating_add(REC_HEAD as u64 + u64::from(n));
        match self.last {
            Some(last) if key < last => self.late.push(Late { key, rec: at, text }),
            _ => self.last = Some(key),
        }
        Ok(())
    }

    /// Walks the index front to back: `f` gets each in-order piece (all but its text) and where its text is,
    /// after `late` got each late piece that comes before it (and, at the end, the rest of them).
    fn scan(
        &self,
        piece: &mut Piece,
        f: &mut dyn FnMut(&mut Piece, TextAt) -> io::Result<()>,
        late: &mut dyn FnMut(&Late) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut late_recs: Vec<u64> = self.late.iter().map(|l| l.rec).collect();
        late_recs.sort_unstable();
        let mut skip = late_recs.iter().peekable();
        let mut pending = self.late.iter().peekable();
        let mut r = BufReader::with_capacity(1 << 16, &self.index_file);
        r.seek(SeekFrom::Start(0))?;
        let mut pos: u64 = 0;
        let mut buf = Vec::new();
        while pos < self.index_len {
            let mut head = [0u8; REC_HEAD];
            r.read_exact(&mut head)?;
            let (n, seq) = record_head(&head);
            let at = pos;
            pos = pos.saturating_add((REC_HEAD + n) as u64);
            if skip.next_if(|&&late| late == at).is_some() {
                r.seek_relative(i64::try_from(n).map_err(|_| bad())?)?;
                continue;
            }
            buf.resize(n, 0);
            r.read_exact(&mut buf)?;
            let text = decode_into(&buf, piece)?;
            while let Some(l) = pending.next_if(|l| l.key <= (piece.id, seq)) {
                late(l)?;
            }
            f(piece, text)?;
        }
        pending.try_for_each(late)
    }

    /// A late piece, whole.
    fn late_piece(&self, l: &Late, p: &mut Piece) -> io::Result<()> {
        let mut head = [0u8; REC_HEAD];
        self.index_file.read_exact_at(&mut head, l.rec)?;
        let (n, _) = record_head(&head);
        let mut buf = vec![0; n];
        self.index_file
            .read_exact_at(&mut buf, l.rec.saturating_add(REC_HEAD as u64))?;
        let text = decode_into(&buf, p)?;
        read_text(&self.text_file, text, &mut p.detail)
    }
}

fn read_text(file: &File, at: TextAt, into: &mut Vec<u8>) -> io::Result<()> {
    into.resize(usize::try_from(at.len).map_err(|_| bad())?, 0);
    file.read_exact_at(into, at.offset)
}

fn record_head(head: &[u8; REC_HEAD]) -> (usize, u64) {
    let [n0, n1, n2, n3, s0, s1, s2, s3, s4, s5, s6, s7] = *head;
    (
        u32::from_le_bytes([n0, n1, n2, n3]) as usize,
        u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]),
    )
}

impl Pieces for Store {
    fn count(&self) -> usize {
        usize::try_from(self.pushed).unwrap_or(usize::MAX)
    }

    fn walk(&self, f: &mut dyn FnMut(&Piece) -> io::Result<()>) -> io::Result<()> {
        debug_assert!(self.sealed, "seal() the store before walking it");
        let Some(s) = self.spill.as_ref() else {
            return self.mem.values().try_for_each(f);
        };
        // The in-order texts follow one another in the text file, with the late ones' between them.
        let f = std::cell::RefCell::new(f);
        let mut text = BufReader::with_capacity(1 << 16, &s.text_file);
        text.seek(SeekFrom::Start(0))?;
        let mut text_pos: u64 = 0;
        s.scan(
            &mut Piece::default(),
            &mut |p, at| {
                if at.offset != text_pos {
                    text.seek_relative(i64::try_from(at.offset.wrapping_sub(text_pos)).map_err(|_| bad())?)?;
                }
                p.detail.resize(usize::try_from(at.len).map_err(|_| bad())?, 0);
                text.read_exact(&mut p.detail)?;
                text_pos = at.offset.saturating_add(at.len);
                (f.borrow_mut())(p)
            },
            &mut |l| {
                let mut p = Piece::default();
                s.late_piece(l, &mut p)?;
                (f.borrow_mut())(&p)
            },
        )
    }

    fn write_details(&self, out: &mut dyn Sink, skip_first: usize) -> io::Result<()> {
        debug_assert!(self.sealed, "seal() the store before walking it");
        let Some(s) = self.spill.as_ref() else {
            return super::write_walked_details(self, out, skip_first);
        };
        // Runs of consecutive in-order text are copied whole; a late piece ends the run before it.
        let runs = std::cell::RefCell::new(Runs {
            out,
            file: &s.text_file,
            run: None,
            skip: skip_first as u64,
        });
        s.scan(
            &mut Piece::default(),
            &mut |_, at| runs.borrow_mut().add(at),
            &mut |l| {
                let mut r = runs.borrow_mut();
                r.flush()?;
                r.add(l.text)?;
                r.flush()
            },
        )?;
        runs.into_inner().flush()
    }
}

/// Text on its way to the output: consecutive ranges of the text file are joined and copied at once.
struct Runs<'a, 'o> {
    out: &'o mut dyn Sink,
    file: &'a File,
    run: Option<TextAt>,
    /// Bytes still to leave out at the start of the first run.
    skip: u64,
}

impl Runs<'_, '_> {
    fn add(&mut self, at: TextAt) -> io::Result<()> {
        match &mut self.run {
            Some(r) if r.offset.saturating_add(r.len) == at.offset => r.len = r.len.saturating_add(at.len),
            _ => {
                self.flush()?;
                self.run = Some(at);
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let Some(r) = self.run.take() else { return Ok(()) };
        let cut = self.skip.min(r.len);
        self.skip = 0;
        if r.len > cut {
            self.out.copy_from(self.file, r.offset + cut, r.len - cut)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(id: u64) -> Piece {
        Piece {
            id,
            problem: id % 2 == 0,
            cells: vec![format!("cell {id}"), "ünïcode".into()],
            detail: format!("<{id}:{}>", "d".repeat(id as usize % 50)).into_bytes(),
            timeline: format!("t{id}"),
        }
    }

    #[test]
    fn spilled_pieces_come_back_in_id_order_and_equal() {
        let mut s = Store::new(200);
        for id in [5u64, 3, 9, 1, 7, 2, 8, 4, 6] {
            s.push(piece(id)).unwrap();
        }
        assert!(s.spilled());
        s.seal().unwrap();
        let mut got = Vec::new();
        s.walk(&mut |p| {
            got.push(p.clone());
            Ok(())
        })
        .unwrap();
        assert_eq!(got, (1..=9).map(piece).collect::<Vec<_>>());
        // Walkable again (rows, then paragraphs).
        let mut n = 0;
        s.walk(&mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 9);
    }

    #[test]
    fn small_runs_stay_in_memory() {
        let mut s = Store::new(MEMORY_BUDGET);
        s.push(piece(2)).unwrap();
        s.push(piece(1)).unwrap();
        s.seal().unwrap();
        assert!(!s.spilled());
        assert_eq!(s.count(), 2);
    }

    /// Whatever the order of arrival and the budget, the walk gives the pieces sorted by id (equal ids in the
    /// order pushed), every time it is walked; only the pieces that came out of order are indexed.
    #[test]
    fn any_arrival_order_comes_back_sorted() {
        let mut x: u64 = 0x853c_49e6_748f_ea9b;
        let mut next = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for budget in [0, 1, 300, 5_000, 60_000, 1 << 20] {
            // Nearly in order (ids ending late by up to 40 places), a few very late, some ids twice.
            let mut ids: Vec<(u64, u64)> = (0..3000u64).map(|i| (i + next(40), i)).collect();
            for _ in 0..30 {
                let j = next(3000) as usize;
                ids[j].0 += 2000;
            }
            ids.sort_unstable();
            let mut pushed: Vec<Piece> = ids
                .iter()
                .map(|&(_, i)| {
                    let id = if i % 97 == 0 { i + 1 } else { i };
                    let mut p = piece(id);
                    p.timeline = format!("push {i}");
                    p
                })
                .collect();
            let mut s = Store::new(budget);
            for p in &pushed {
                s.push(p.clone()).unwrap();
            }
            s.seal().unwrap();
            assert_eq!(s.count(), pushed.len());
            pushed.sort_by_key(|p| p.id);
            for _ in 0..2 {
                let mut got = Vec::new();
                s.walk(&mut |p| {
                    got.push(p.clone());
                    Ok(())
                })
                .unwrap();
                assert_eq!(got, pushed, "budget {budget}");
                let mut text = Vec::new();
                s.write_details(&mut text, 0).unwrap();
                let want: Vec<u8> = pushed.iter().flat_map(|p| p.detail.iter().copied()).collect();
                assert!(text == want, "budget {budget}: details differ");
            }
            // A window of a few hundred pieces puts all but the very late ones in order.
            if budget == 60_000 {
                let late = s.spill.as_ref().map_or(usize::MAX, |sp| sp.late.len());
                assert!(late <= 60, "{late} late pieces");
            }
        }
    }

    #[test]
    fn damaged_records_are_errors() {
        let mut p = Piece::default();
        assert!(decode_into(&[1, 2, 3], &mut p).is_err());
        let text = TextAt { offset: 7, len: 9 };
        let rec = encode(&piece(3), text);
        assert_eq!(decode_into(&rec, &mut p).unwrap(), text);
        assert_eq!((p.id, p.cells.len()), (3, 2));
        assert!(decode_into(&rec[..rec.len() - 1], &mut p).is_err());
    }

    /// The details written in runs (copied from the text file) are the pieces' details in id order, the first
    /// one's leading bytes left out, whatever the budget and however late pieces came.
    #[test]
    fn details_come_out_in_id_order_in_runs() {
        for budget in [0, 100, 1000, 1 << 20] {
            let mut s = Store::new(budget);
            let order = [5u64, 3, 9, 1, 7, 2, 8, 4, 6, 10, 12, 11, 0];
            for id in order {
                s.push(piece(id)).unwrap();
            }
            s.seal().unwrap();
            let mut want: Vec<u8> = (0..=12).flat_map(|id| piece(id).detail).collect();
            want.drain(..3);
            for _ in 0..2 {
                let mut got = Vec::new();
                s.write_details(&mut got, 3).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "budget {budget}"
                );
            }
        }
    }
}
