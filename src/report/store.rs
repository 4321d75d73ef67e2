//! Where finished connections wait for the output: their rendered pieces, in memory up to a budget, then in a
//! temporary file. This keeps memory independent of the capture's size — a 10 GB capture with a million
//! connections holds a million pieces on disk and a small index in memory — while the output stays one
//! document in connection-id order, byte for byte what an all-in-memory run would print.
//!
//! The temporary file is unlinked as soon as it is created (it vanishes with the process, even on a crash).

use super::{Piece, Pieces};
use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

/// Default bytes of pieces kept in memory before spilling.
pub const MEMORY_BUDGET: usize = 16 * 1024 * 1024;

struct Spill {
    writer: BufWriter<File>,
    reader: RefCell<File>,
    /// (id, offset, length) of every piece in the file.
    index: Vec<(u64, u64, u32)>,
    len: u64,
}

/// Pieces of the run, in memory or spilled.
pub struct Store {
    mem: Vec<Piece>,
    mem_bytes: usize,
    budget: usize,
    spill: Option<Spill>,
    sorted: bool,
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
            mem: Vec::new(),
            mem_bytes: 0,
            budget,
            spill: None,
            sorted: true,
        }
    }

    /// Whether pieces went to disk.
    pub fn spilled(&self) -> bool {
        self.spill.is_some()
    }

    pub fn push(&mut self, p: Piece) -> io::Result<()> {
        self.sorted = false;
        if let Some(s) = self.spill.as_mut() {
            return Self::write(s, &p);
        }
        self.mem_bytes = self.mem_bytes.saturating_add(piece_size(&p));
        self.mem.push(p);
        if self.mem_bytes > self.budget {
            let mut s = Self::open_spill()?;
            for p in std::mem::take(&mut self.mem) {
                Self::write(&mut s, &p)?;
            }
            self.mem_bytes = 0;
            self.spill = Some(s);
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
            reader: RefCell::new(reader),
            index: Vec::new(),
            len: 0,
        })
    }

    fn write(s: &mut Spill, p: &Piece) -> io::Result<()> {
        let rec = encode(p);
        let n = u32::try_from(rec.len()).map_err(|_| io::Error::other("piece too large"))?;
        s.writer.write_all(&rec)?;
        s.index.push((p.id, s.len, n));
        s.len = s.len.saturating_add(u64::from(n));
        Ok(())
    }

    /// Orders the pieces by connection id and makes the file readable; call once after the last push.
    pub fn seal(&mut self) -> io::Result<()> {
        if let Some(s) = self.spill.as_mut() {
            s.writer.flush()?;
            s.index.sort_unstable_by_key(|e| (e.0, e.1));
        } else {
            self.mem.sort_by_key(|p| p.id);
        }
        self.sorted = true;
        Ok(())
    }
}

impl Pieces for Store {
    fn count(&self) -> usize {
        self.spill.as_ref().map_or(self.mem.len(), |s| s.index.len())
    }

    fn walk(&self, f: &mut dyn FnMut(&Piece) -> io::Result<()>) -> io::Result<()> {
        debug_assert!(self.sorted, "seal() the store before walking it");
        let Some(s) = self.spill.as_ref() else {
            return self.mem.iter().try_for_each(f);
        };
        // The index is in id order; the file is in the order connections finished, which is nearly the same:
        // read through a large buffer, seeking only where the order differs.
        let mut file = s.reader.borrow_mut();
        file.seek(SeekFrom::Start(0))?;
        let mut r = io::BufReader::with_capacity(1 << 20, &mut *file);
        let mut pos: u64 = 0;
        let mut buf = Vec::new();
        let mut piece = Piece::default();
        for &(_, off, len) in &s.index {
            if off != pos {
                let delta = i64::try_from(off).unwrap_or(i64::MAX) - i64::try_from(pos).unwrap_or(i64::MAX);
                r.seek_relative(delta)?;
            }
            buf.resize(len as usize, 0);
            r.read_exact(&mut buf)?;
            pos = off.saturating_add(u64::from(len));
            decode_into(&buf, &mut piece)?;
            f(&piece)?;
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

    #[test]
    fn damaged_records_are_errors() {
        assert!(decode(&[1, 2, 3]).is_err());
        let mut rec = encode(&piece(3));
        rec.truncate(rec.len() - 1);
        assert!(decode(&rec).is_err());
    }
}
