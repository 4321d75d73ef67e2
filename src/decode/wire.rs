//! Byte readers for header fields. Callers check a header's length once and then read its fields; these
//! accessors never panic either way (a read past the end yields 0), so a missed check is a wrong value, not a
//! crash.

#[inline(always)]
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at.wrapping_add(2)) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

#[inline(always)]
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at.wrapping_add(4)) {
        Some(&[a, c, d, e]) => u32::from_be_bytes([a, c, d, e]),
        _ => 0,
    }
}

#[inline(always)]
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at.wrapping_add(2)) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

#[inline(always)]
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at.wrapping_add(4)) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

#[inline(always)]
pub(crate) fn byte(b: &[u8], at: usize) -> u8 {
    b.get(at).copied().unwrap_or(0)
}

#[inline(always)]
pub(crate) fn arr4(b: &[u8], at: usize) -> [u8; 4] {
    match b.get(at..at.wrapping_add(4)) {
        Some(&[a, c, d, e]) => [a, c, d, e],
        _ => [0; 4],
    }
}

#[inline(always)]
pub(crate) fn arr16(b: &[u8], at: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    if let Some(s) = b.get(at..at.wrapping_add(16)) {
        out.copy_from_slice(s);
    }
    out
}

/// `b[from..]`, or empty.
#[inline(always)]
pub(crate) fn tail(b: &[u8], from: usize) -> &[u8] {
    b.get(from..).unwrap_or(&[])
}

/// `b[from..to]` clamped to what exists.
#[inline(always)]
pub(crate) fn range(b: &[u8], from: usize, to: usize) -> &[u8] {
    let to = to.min(b.len());
    b.get(from..to).unwrap_or(&[])
}
