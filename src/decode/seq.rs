//! TCP sequence numbers: 32-bit values compared on the circle (RFC 9293 §3.4).
//!
//! An analyzer sees arbitrary numbers (crafted packets, mid-stream joins, wrap-around after 4 GiB), so no
//! operation here can panic: everything is wrapping, and comparisons use the signed distance.

use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SeqNum(pub u32);

impl SeqNum {
    /// `self + n`, wrapping. (Named like `Add::add` on purpose: it reads as sequence arithmetic.)
    #[allow(clippy::should_implement_trait)]
    pub fn add(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_add(n))
    }

    /// `self - n`, wrapping.
    #[allow(clippy::should_implement_trait)]
    pub fn sub(self, n: u32) -> SeqNum {
        SeqNum(self.0.wrapping_sub(n))
    }

    /// Signed distance from `other` to `self` (`self - other` on the circle), in `[-2^31, 2^31)`.
    pub fn diff(self, other: SeqNum) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Unsigned distance from `base` forward to `self` (bytes after `base`), wrapping.
    pub fn offset_from(self, base: SeqNum) -> u32 {
        self.0.wrapping_sub(base.0)
    }

    pub fn lt(self, o: SeqNum) -> bool {
        self.diff(o) < 0
    }
    pub fn le(self, o: SeqNum) -> bool {
        self.diff(o) <= 0
    }
    pub fn gt(self, o: SeqNum) -> bool {
        self.diff(o) > 0
    }
    pub fn ge(self, o: SeqNum) -> bool {
        self.diff(o) >= 0
    }

    /// The later of two numbers on the circle.
    pub fn max(self, o: SeqNum) -> SeqNum {
        if self.ge(o) { self } else { o }
    }

    /// The earlier of two numbers on the circle.
    pub fn min(self, o: SeqNum) -> SeqNum {
        if self.le(o) { self } else { o }
    }

    /// Circular order (not a total order over all of u32; valid for numbers within 2^31 of each other).
    pub fn cmp_circular(self, o: SeqNum) -> Ordering {
        self.diff(o).cmp(&0)
    }
}

impl fmt::Display for SeqNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around_zero() {
        let a = SeqNum(u32::MAX - 10);
        let b = a.add(20);
        assert_eq!(b, SeqNum(9));
        assert!(a.lt(b));
        assert!(b.gt(a));
        assert_eq!(b.diff(a), 20);
        assert_eq!(a.diff(b), -20);
        assert_eq!(b.offset_from(a), 20);
        assert_eq!(a.max(b), b);
        assert_eq!(b.sub(20), a);
    }

    #[test]
    fn extreme_distances_do_not_panic() {
        let a = SeqNum(0);
        let b = SeqNum(0x8000_0000);
        assert_eq!(b.diff(a), i32::MIN);
        assert_eq!(a.diff(b), i32::MIN);
        let _ = a.cmp_circular(b);
    }
}
