//! The HPACK Huffman code (RFC 7541 §5.2, Appendix B), decoded four bits at a time by a state machine.
//!
//! The code is canonical: sorted by (length, symbol), each code is the previous one plus one, shifted to the
//! new length. So the appendix reduces to the bit length of each of the 257 symbols (`LENGTHS`); the codes,
//! the decoding tree and the 256-state × 16-nibble transition table are all computed at compile time from it.
//! A state is an internal node of the tree (256 of them: the tree has 257 leaves); one nibble moves at most one
//! symbol out, since the shortest code is 5 bits. A string may end only at the root or on a node reached by at
//! most 7 one-bits from it (the padding is the most significant bits of EOS, RFC 7541 §5.2), and EOS itself
//! must never be decoded.

/// Bit length of the code of each symbol 0–255, then EOS (256): the "len in bits" column of RFC 7541 Appendix B.
#[rustfmt::skip]
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
    28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
    6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
    5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
    13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
    15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
    6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
    20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
    24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
    22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
    21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
    26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
    19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
    20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
    26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
    30,
];

const EOS: usize = 256;

/// The code of each symbol, right-aligned, built canonically from [`LENGTHS`].
const CODES: [u32; 257] = build_codes();

const fn build_codes() -> [u32; 257] {
    let mut codes = [0u32; 257];
    let mut code: u32 = 0;
    let mut prev_len: u8 = 0;
    let mut first = true;
    let mut len: u8 = 1;
    while len <= 30 {
        let mut sym = 0;
        while sym < 257 {
            if LENGTHS[sym] == len {
                if first {
                    first = false;
                } else {
                    code = (code + 1) << (len - prev_len);
                }
                prev_len = len;
                codes[sym] = code;
            }
            sym += 1;
        }
        len += 1;
    }
    codes
}

/// Transition flags.
const EMIT: u8 = 1;
/// The state reached may end a string (root, or up to 7 one-bits into EOS).
const ACCEPT: u8 = 2;
/// EOS was decoded: the string is malformed.
const FAIL: u8 = 4;

#[derive(Clone, Copy)]
struct Step {
    next: u8,
    sym: u8,
    flags: u8,
}

struct Machine {
    steps: [[Step; 16]; 256],
}

/// Child links of the 256 internal nodes: `LEAF | symbol` for a leaf, else a node number.
const LEAF: u16 = 0x8000;

const fn build_machine() -> Machine {
    // The tree.
    let mut child = [[0u16; 2]; 256];
    let mut used: usize = 1;
    let mut sym = 0;
    while sym < 257 {
        let len = LENGTHS[sym] as u32;
        let code = CODES[sym];
        let mut node: usize = 0;
        let mut i = len;
        while i > 1 {
            let bit = ((code >> (i - 1)) & 1) as usize;
            if child[node][bit] == 0 {
                child[node][bit] = used as u16;
                used += 1;
            }
            node = child[node][bit] as usize;
            i -= 1;
        }
        child[node][(code & 1) as usize] = LEAF | sym as u16;
        sym += 1;
    }
    assert!(used == 256, "a complete code of 257 symbols has 256 internal nodes");
    // Accepting nodes: reached from the root by one-bits only, at most 7 of them.
    let mut accept = [false; 256];
    accept[0] = true;
    let mut node = 0;
    let mut depth = 0;
    while depth < 7 {
        node = child[node][1] as usize;
        accept[node] = true;
        depth += 1;
    }
    // The transitions.
    let mut steps = [[Step {
        next: 0,
        sym: 0,
        flags: 0,
    }; 16]; 256];
    let mut state = 0;
    while state < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut cur = state;
            let mut flags = 0;
            let mut out = 0u8;
            let mut b = 4;
            while b > 0 {
                let bit = (nibble >> (b - 1)) & 1;
                let c = child[cur][bit];
                if c & LEAF != 0 {
                    let s = (c & !LEAF) as usize;
                    if s == EOS {
                        flags |= FAIL;
                    } else {
                        flags |= EMIT;
                        out = s as u8;
                    }
                    cur = 0;
                } else {
                    cur = c as usize;
                }
                b -= 1;
            }
            if accept[cur] {
                flags |= ACCEPT;
            }
            steps[state][nibble] = Step {
                next: cur as u8,
                sym: out,
                flags,
            };
            nibble += 1;
        }
        state += 1;
    }
    Machine { steps }
}

static MACHINE: Machine = build_machine();

/// Why a Huffman string is malformed. The bytes decoded before the problem are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HuffmanError {
    /// The string holds the EOS symbol.
    Eos,
    /// The padding is longer than 7 bits or not all ones.
    Padding,
}

/// Decodes `src` and appends the result to `dst`.
pub fn decode(src: &[u8], dst: &mut Vec<u8>) -> Result<(), HuffmanError> {
    dst.reserve(src.len() + src.len() / 2);
    let mut state: u8 = 0;
    let mut accept = true;
    for &byte in src {
        for nibble in [byte >> 4, byte & 0x0f] {
            let step = MACHINE.steps[usize::from(state)][usize::from(nibble & 0x0f)];
            if step.flags & FAIL != 0 {
                return Err(HuffmanError::Eos);
            }
            if step.flags & EMIT != 0 {
                dst.push(step.sym);
            }
            state = step.next;
            accept = step.flags & ACCEPT != 0;
        }
    }
    if accept { Ok(()) } else { Err(HuffmanError::Padding) }
}

/// Encodes `src` (tests and synthetic streams): codes MSB first, padded with one-bits.
pub fn encode(src: &[u8], dst: &mut Vec<u8>) {
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = (CODES[usize::from(b)], u32::from(LENGTHS[usize::from(b)]));
        acc = (acc << len) | u64::from(code);
        bits += len;
        while bits >= 8 {
            bits -= 8;
            dst.push((acc >> bits) as u8);
        }
        acc &= (1u64 << bits) - 1;
    }
    if bits > 0 {
        let pad = 8 - bits;
        dst.push(((acc << pad) | ((1u64 << pad) - 1)) as u8);
    }
}

/// Length of `src` once encoded.
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src.iter().map(|&b| usize::from(LENGTHS[usize::from(b)])).sum();
    bits.div_ceil(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_codes_match_the_appendix() {
        // A few rows of RFC 7541 Appendix B, (symbol, code, length).
        for (sym, code, len) in [
            (b'0' as usize, 0x0, 5),
            (b'a' as usize, 0x3, 5),
            (b't' as usize, 0x9, 5),
            (b' ' as usize, 0x14, 6),
            (b'%' as usize, 0x15, 6),
            (b'&' as usize, 0xf8, 8),
            (0, 0x1ff8, 13),
            (1, 0x7fffd8, 23),
            (10, 0x3ffffffc, 30),
            (255, 0x3ffffee, 26),
            (EOS, 0x3fffffff, 30),
        ] {
            assert_eq!((CODES[sym], LENGTHS[sym]), (code, len), "symbol {sym}");
        }
    }

    #[test]
    fn rfc7541_c4_strings() {
        let cases: [(&[u8], &[u8]); 4] = [
            (
                &[0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff],
                b"www.example.com",
            ),
            (&[0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf], b"no-cache"),
            (&[0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f], b"custom-key"),
            (&[0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf], b"custom-value"),
        ];
        for (enc, plain) in cases {
            let mut out = Vec::new();
            decode(enc, &mut out).unwrap();
            assert_eq!(out, plain);
            let mut back = Vec::new();
            encode(plain, &mut back);
            assert_eq!(back, enc);
            assert_eq!(encoded_len(plain), enc.len());
        }
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for n in 0..all.len() {
            let s = &all[n..];
            let mut enc = Vec::new();
            encode(s, &mut enc);
            let mut dec = Vec::new();
            decode(&enc, &mut dec).unwrap();
            assert_eq!(dec, s);
        }
    }

    #[test]
    fn bad_padding_and_eos_are_malformed() {
        let mut out = Vec::new();
        // 'a' (00011) padded with zeros instead of ones.
        assert_eq!(decode(&[0b0001_1000], &mut out), Err(HuffmanError::Padding));
        // A whole byte of padding (8 one-bits) is too long.
        out.clear();
        assert_eq!(decode(&[0b0001_1111, 0xff], &mut out), Err(HuffmanError::Padding));
        // EOS (30 one-bits) inside the string.
        out.clear();
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff], &mut out), Err(HuffmanError::Eos));
        // Empty is fine.
        out.clear();
        assert_eq!(decode(&[], &mut out), Ok(()));
    }
}
