//! Bounded, ordered logs: keep the first `head` and the last `tail` items, count the ones in between.
//!
//! A connection can carry millions of PINGs or streams; the diagnosis needs the beginning and, above all, the
//! end (the last PING before the close, the final GOAWAY), so the middle is what gets dropped. Items carry a
//! sequence number so that several logs can be merged back into one order.

use std::collections::VecDeque;

#[derive(Debug)]
pub(crate) struct BoundedLog<T> {
    head: Vec<(u64, T)>,
    tail: VecDeque<(u64, T)>,
    head_cap: usize,
    tail_cap: usize,
    dropped: u64,
}

impl<T> BoundedLog<T> {
    pub(crate) fn new(head_cap: usize, tail_cap: usize) -> BoundedLog<T> {
        BoundedLog {
            head: Vec::new(),
            tail: VecDeque::new(),
            head_cap,
            tail_cap,
            dropped: 0,
        }
    }

    pub(crate) fn push(&mut self, seq: u64, item: T) {
        if self.head.len() < self.head_cap {
            self.head.push((seq, item));
            return;
        }
        if self.tail.len() >= self.tail_cap {
            self.tail.pop_front();
            self.dropped += 1;
        }
        if self.tail_cap > 0 {
            self.tail.push_back((seq, item));
        } else {
            self.dropped += 1;
        }
    }

    /// When the log is full, drops the oldest of the last items now (counted) and gives it back, so that the
    /// caller can reuse its allocations for the item it is about to push.
    pub(crate) fn evict_for_reuse(&mut self) -> Option<T> {
        if self.head.len() < self.head_cap || self.tail.len() < self.tail_cap || self.tail_cap == 0 {
            return None;
        }
        let (_, item) = self.tail.pop_front()?;
        self.dropped += 1;
        Some(item)
    }

    /// The item with sequence number `seq`, if it is still kept.
    pub(crate) fn get_mut(&mut self, seq: u64) -> Option<&mut T> {
        if let Ok(i) = self.head.binary_search_by_key(&seq, |(s, _)| *s) {
            return self.head.get_mut(i).map(|(_, t)| t);
        }
        let i = self.tail.binary_search_by_key(&seq, |(s, _)| *s).ok()?;
        self.tail.get_mut(i).map(|(_, t)| t)
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    pub(crate) fn into_items(self) -> impl Iterator<Item = (u64, T)> {
        self.head.into_iter().chain(self.tail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_head_and_tail() {
        let mut l = BoundedLog::new(2, 3);
        for i in 0..10u64 {
            l.push(i, i * 10);
        }
        assert_eq!(l.dropped(), 5);
        assert_eq!(l.get_mut(1).copied(), Some(10));
        assert_eq!(l.get_mut(4), None);
        *l.get_mut(9).unwrap() = 0;
        assert_eq!(l.evict_for_reuse(), Some(70));
        l.push(10, 100);
        assert_eq!(l.dropped(), 6);
        let v: Vec<_> = l.into_items().map(|(s, _)| s).collect();
        assert_eq!(v, vec![0, 1, 8, 9, 10]);
    }
}
