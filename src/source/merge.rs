//! Several capture files as one stream in timestamp order: a k-way merge over the files' next records.
//!
//! Each file keeps its own order (timestamps that go backwards inside a file stay where they are); between files
//! the earliest next record wins and ties go to the file named first. Only the records at the heads of the files
//! are held, each in its own file's buffer, so memory is one buffer per file.

use super::reader::FileReader;
use super::{FileInfo, Packet, PacketSource, SourceWarning};
use crate::ts::Ts;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub struct Merged {
    readers: Vec<FileReader>,
    /// The files whose current record is waiting, keyed by (timestamp, file index).
    heap: BinaryHeap<Reverse<(Ts, u16)>>,
    /// The file whose record was handed out last; it advances on the next call.
    last: Option<usize>,
    started: bool,
}

impl Merged {
    pub(crate) fn new(readers: Vec<FileReader>) -> Merged {
        let heap = BinaryHeap::with_capacity(readers.len());
        Merged {
            readers,
            heap,
            last: None,
            started: false,
        }
    }

    fn push(&mut self, i: usize) {
        if let Some(r) = self.readers.get_mut(i) {
            r.advance();
            if let Some(ts) = r.current_ts() {
                self.heap.push(Reverse((ts, r.index)));
            }
        }
    }
}

impl PacketSource for Merged {
    #[inline]
    fn next_packet(&mut self) -> Option<Packet<'_>> {
        if self.readers.len() == 1 {
            // One file: nothing to merge.
            self.readers.first_mut()?.advance();
            return self.readers.first()?.packet();
        }
        if !self.started {
            self.started = true;
            for i in 0..self.readers.len() {
                self.push(i);
            }
        } else if let Some(i) = self.last.take() {
            self.push(i);
        }
        let Reverse((_, i)) = self.heap.pop()?;
        let i = usize::from(i);
        self.last = Some(i);
        self.readers.get(i)?.packet()
    }

    fn take_warnings(&mut self) -> Vec<SourceWarning> {
        let mut out = Vec::new();
        for r in &mut self.readers {
            r.take_warnings(&mut out);
        }
        out
    }

    fn files(&self) -> Vec<FileInfo> {
        self.readers.iter().map(|r| r.info().clone()).collect()
    }

    fn progress(&self) -> (u64, Option<u64>) {
        let mut done = 0u64;
        let mut total = Some(0u64);
        for r in &self.readers {
            let (d, t) = r.progress();
            done = done.saturating_add(d);
            total = match (total, t) {
                (Some(a), Some(b)) => Some(a.saturating_add(b)),
                _ => None,
            };
        }
        (done, total)
    }
}
