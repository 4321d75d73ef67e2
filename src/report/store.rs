//! Where finished connections wait for the output: their rendered pieces, in memory up to a budget, then in a
//! temporary file, so that memory does not grow with the capture — while the output stays one document in
//! connection-id order, byte for byte what an all-in-memory run would print.
//!
//! Connections end nearly in the order they started (their id order), so the file is written in id order as far
//! as it goes: pieces wait in memory ordered by id, and past the budget the lowest ids go to the file. A piece
//! whose id is below one already written (a long connection ending after thousands of later ones) is "late": it
//! goes to the file too, and only late pieces are indexed in memory. The output reads the file front to back and
//! merges the late pieces in. Memory follows the connections that end out of order, not the file's size.
//!
//! The temporary file is unlinked as soon as it is created (it vanishes with the process, even on a crash).

use super::{Piece, Pieces};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

/// Default bytes of pieces kept in memory (before spilling, and as the window that puts pieces in id order):
/// `--report-memory`'s default. Spilling costs nothing measurable on the benchmark; the memory is worth more.
pub const MEMORY_BUDGET: usize = 1024 * 1024;

/// A piece's place in the output: its connection id, then the order pieces were pushed (equal ids keep it).
type Key = (u64, u64);

/// Record header in the file: the record's length (u32), the push order (u64); the encoded piece follows.
const REC_HEAD: usize = 12;

struct Spill {
    writer: BufWriter<File>,
    /// The same file, read back by position.
    file: RefCell<File>,
    len: u64,
    /// The key of the last piece written in order.
    last: Option<Key>,
    /// Pieces written out of order: key and record offset.
    late: Vec<(Key, u64)>,
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

fn encode(p: &Piece) -> Vec<u8> {
    let mut b = Vec::with_capacity(piece_size(p));
    b.extend_from_slice(&p.id.to_le_bytes());
    b.push(u8::from(p.problem));
    b.extend_from_slice(&u32::try_from(p.cells.len()).unwrap_or(u32::MAX).to_le_bytes());
    for c in &p.cells {
        put_str(&mut b, c);
    }
    put_str(&mut b, &p.detail);
    put_str(&mut b, &p.timeline);
    b
}

/// Reads back what `encode` wrote into `p`, reusing its strings' buffers (the file is ours; a short record is an
/// I/O error, not a panic).
fn decode_into(b: &[u8], p: &mut Piece) -> io::Result<()> {
    struct Cur<'a> {
        b: &'a [u8],
        pos: usize,
    }
    fn bad() -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, "whoclosed spill file damaged")
    }
    impl<'a> Cur<'a> {
        fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
            let end = self.pos.checked_add(n).ok_or_else(bad)?;
            let s = self.b.get(self.pos..end).ok_or_else(bad)?;
            self.pos = end;
            Ok(s)
        }
        fn u32(&mut self) -> io::Result<usize> {
            Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| bad())?) as usize)
        }
        fn string(&mut self, into: &mut String) -> io::Result<()> {
            let n = self.u32()?;
            let bytes = self.take(n)?;
            into.clear();
            match std::str::from_utf8(bytes) {
                Ok(s) => into.push_str(s),
                Err(_) => into.push_str(&String::from_utf8_lossy(bytes)),
            }
            Ok(())
        }
    }
    let mut c = Cur { b, pos: 0 };
    p.id = u64::from_le_bytes(c.take(8)?.try_into().map_err(|_| bad())?);
    p.problem = c.take(1)?.first().copied().unwrap_or(0) != 0;
    let n = c.u32()?;
    p.cells.truncate(n);
    for i in 0..n {
        if i == p.cells.len() {
            p.cells.push(String::new());
        }
        let cell = p.cells.get_mut(i).ok_or_else(bad)?;
        c.string(cell)?;
    }
    c.string(&mut p.detail)?;
    c.string(&mut p.timeline)?;
    Ok(())
}

#[cfg(test)]
fn decode(b: &[u8]) -> io::Result<Piece> {
    let mut p = Piece::default();
    decode_into(b, &mut p)?;
    Ok(p)
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
            // The lowest ids out, until a quarter of the budget is free (the file is written in runs).
            let keep = self.budget - self.budget / 4;
            if self.spill.is_none() {
                self.spill = Some(Self::open_spill()?);
            }
            while self.mem_bytes > keep {
                let Some((k, p)) = self.mem.pop_first() else { break };
                self.mem_bytes = self.mem_bytes.saturating_sub(piece_size(&p));
                if let Some(s) = self.spill.as_mut() {
                    Self::write(s, k, &p)?;
                }
            }
        }
        Ok(())
    }

    fn open_spill() -> io::Result<Spill> {
        let mut path = std::env::temp_dir();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        path.push(format!("whoclosed-{}-{nanos}.spill", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        // Unlinked at once: the open handle keeps it alive, nothing is left behind.
        let _ = std::fs::remove_file(&path);
        let reader = file.try_clone()?;
        Ok(Spill {
            writer: BufWriter::with_capacity(1 << 20, file),
            file: RefCell::new(reader),
            len: 0,
            last: None,
            late: Vec::new(),
        })
    }

    fn write(s: &mut Spill, key: Key, p: &Piece) -> io::Result<()> {
        let rec = encode(p);
        let n = u32::try_from(rec.len()).map_err(|_| io::Error::other("piece too large"))?;
        let off = s.len;
        s.writer.write_all(&n.to_le_bytes())?;
        s.writer.write_all(&key.1.to_le_bytes())?;
        s.writer.write_all(&rec)?;
        s.len = s.len.saturating_add(REC_HEAD as u64 + u64::from(n));
        match s.last {
            Some(last) if key < last => s.late.push((key, off)),
            _ => s.last = Some(key),
        }
        Ok(())
    }

    /// Writes out what is still in memory (once anything was spilled) and makes the file readable; call once
    /// after the last push.
    pub fn seal(&mut self) -> io::Result<()> {
        if let Some(s) = self.spill.as_mut() {
            for (k, p) in std::mem::take(&mut self.mem) {
                Self::write(s, k, &p)?;
            }
            self.mem_bytes = 0;
            s.writer.flush()?;
            s.late.sort_unstable();
        }
        self.sealed = true;
        Ok(())
    }
}

/// One record of the spill file: its key and piece, decoded into `p`.
fn read_record(r: &mut impl Read, buf: &mut Vec<u8>, p: &mut Piece) -> io::Result<u64> {
    let mut head = [0u8; REC_HEAD];
    r.read_exact(&mut head)?;
    let (n, seq) = record_head(&head);
    buf.resize(n, 0);
    r.read_exact(buf)?;
    decode_into(buf, p)?;
    Ok(seq)
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
        let file = s.file.borrow();
        let mut late_offsets: Vec<u64> = s.late.iter().map(|&(_, off)| off).collect();
        late_offsets.sort_unstable();
        let mut late = s.late.iter().peekable();
        let mut late_piece = Piece::default();
        let mut late_buf = Vec::new();
        let mut emit_late_until = |until: Option<Key>, f: &mut dyn FnMut(&Piece) -> io::Result<()>| {
            while let Some(&&(k, off)) = late.peek() {
                if until.is_some_and(|u| k > u) {
                    break;
                }
                late.next();
                let mut head = [0u8; REC_HEAD];
                file.read_exact_at(&mut head, off)?;
                let (n, _) = record_head(&head);
                late_buf.resize(n, 0);
                file.read_exact_at(&mut late_buf, off.saturating_add(REC_HEAD as u64))?;
                decode_into(&late_buf, &mut late_piece)?;
                f(&late_piece)?;
            }
            Ok::<(), io::Error>(())
        };
        // The file front to back: the pieces in order, each after the late ones that come before it.
        (&*file).seek(SeekFrom::Start(0))?;
        let mut r = BufReader::with_capacity(1 << 20, &*file);
        let mut pos: u64 = 0;
        let mut skip = late_offsets.iter().peekable();
        let mut buf = Vec::new();
        let mut piece = Piece::default();
        while pos < s.len {
            if skip.peek().is_some_and(|&&off| off == pos) {
                skip.next();
                let mut head = [0u8; REC_HEAD];
                r.read_exact(&mut head)?;
                let (n, _) = record_head(&head);
                r.seek_relative(i64::try_from(n).unwrap_or(i64::MAX))?;
                pos = pos.saturating_add((REC_HEAD + n) as u64);
                continue;
            }
            let seq = read_record(&mut r, &mut buf, &mut piece)?;
            pos = pos.saturating_add((REC_HEAD + buf.len()) as u64);
            emit_late_until(Some((piece.id, seq)), f)?;
            f(&piece)?;
        }
        emit_late_until(None, f)
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
            detail: "d".repeat(id as usize % 50),
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
        assert!(decode(&[1, 2, 3]).is_err());
        let mut rec = encode(&piece(3));
        rec.truncate(rec.len() - 1);
        assert!(decode(&rec).is_err());
    }
}
