//! The HPACK static table (RFC 7541 Appendix A) and dynamic table (§2.3.2, §4).
//!
//! The dynamic table is a FIFO of entries sized `32 + name + value` bytes (§4.1); inserting evicts from the
//! oldest end until the new entry fits, and an entry larger than the maximum empties the table (§4.4). Entry
//! buffers are recycled so that steady-state churn does not allocate.

use std::collections::VecDeque;

/// RFC 7541 Appendix A.
pub const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Per-entry overhead in the size accounting (RFC 7541 §4.1).
pub const ENTRY_OVERHEAD: usize = 32;

/// Size of an entry in the RFC's accounting.
pub fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len().saturating_add(value.len()).saturating_add(ENTRY_OVERHEAD)
}

#[derive(Debug)]
struct Entry {
    /// Name then value.
    bytes: Vec<u8>,
    name_len: usize,
}

impl Entry {
    fn split(&self) -> (&[u8], &[u8]) {
        self.bytes.split_at_checked(self.name_len).unwrap_or((&self.bytes, &[]))
    }
}

/// The dynamic table, and the static one in front of it for lookups.
#[derive(Debug)]
pub struct Table {
    /// Newest first.
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
    /// Buffers of evicted entries, for reuse.
    spare: Vec<Vec<u8>>,
}

const SPARE_KEEP: usize = 16;

impl Table {
    pub fn new(max_size: usize) -> Table {
        Table {
            entries: VecDeque::new(),
            size: 0,
            max_size,
            spare: Vec::new(),
        }
    }

    /// Current size (RFC accounting) and maximum.
    pub fn size(&self) -> usize {
        self.size
    }

    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// Number of dynamic entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Field at a 1-based HPACK index (1–61 static, then dynamic newest first); `None` for 0 or beyond the end.
    pub fn get(&self, index: usize) -> Option<(&[u8], &[u8])> {
        if index == 0 {
            return None;
        }
        if let Some((n, v)) = STATIC.get(index - 1) {
            return Some((n.as_bytes(), v.as_bytes()));
        }
        self.entries.get(index - 1 - STATIC.len()).map(Entry::split)
    }

    /// Inserts a field, evicting as needed (§4.4).
    pub fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = entry_size(name, value);
        if size > self.max_size {
            self.clear();
            return;
        }
        self.evict_to(self.max_size - size);
        let mut bytes = self.spare.pop().unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        self.entries.push_front(Entry {
            bytes,
            name_len: name.len(),
        });
        self.size += size;
    }

    /// Changes the maximum size, evicting as needed (§4.3).
    pub fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    pub fn clear(&mut self) {
        self.evict_to(0);
    }

    fn evict_to(&mut self, target: usize) {
        while self.size > target {
            let Some(e) = self.entries.pop_back() else {
                self.size = 0;
                break;
            };
            let (n, v) = e.split();
            self.size = self.size.saturating_sub(entry_size(n, v));
            if self.spare.len() < SPARE_KEEP {
                self.spare.push(e.bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_then_dynamic_indexes() {
        let mut t = Table::new(4096);
        assert_eq!(t.get(2), Some((&b":method"[..], &b"GET"[..])));
        assert_eq!(t.get(61), Some((&b"www-authenticate"[..], &b""[..])));
        assert_eq!(t.get(62), None);
        assert_eq!(t.get(0), None);
        t.insert(b"a", b"1");
        t.insert(b"b", b"2");
        assert_eq!(t.get(62), Some((&b"b"[..], &b"2"[..])));
        assert_eq!(t.get(63), Some((&b"a"[..], &b"1"[..])));
        assert_eq!(t.size(), 68);
    }

    #[test]
    fn eviction_and_oversized_entries() {
        let mut t = Table::new(100);
        t.insert(b"aaaa", b"1111"); // 40
        t.insert(b"bbbb", b"2222"); // 80
        t.insert(b"cccc", b"3333"); // evicts a
        assert_eq!(t.len(), 2);
        assert_eq!(t.get(63), Some((&b"bbbb"[..], &b"2222"[..])));
        t.set_max_size(40);
        assert_eq!(t.len(), 1);
        t.insert(&[b'x'; 100], b"");
        assert!(t.is_empty());
        assert_eq!(t.size(), 0);
    }
}
