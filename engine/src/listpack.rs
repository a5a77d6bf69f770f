//! Listpacks, the compact encoding Redis 7 stores small collections and
//! stream nodes in, as DUMP payloads (and so memlog's snapshots) carry
//! them: [`ListpackWriter`] builds one as listpack.c's appends would,
//! [`parse`] reads one back (integers as decimal strings).

use crate::keyspace::Elem;
use crate::numbers::parse_i64;

/// Builds a listpack as listpack.c's lpAppend / lpAppendInteger would.
pub(crate) struct ListpackWriter {
    buf: Vec<u8>,
    count: usize,
}

/// Listpack header: total bytes (u32 LE) and element count (u16 LE).
const LP_HDR_SIZE: usize = 6;
/// The bytes of an empty listpack (header and end byte).
pub(crate) const EMPTY_BYTES: usize = LP_HDR_SIZE + 1;
const LP_EOF: u8 = 0xff;
/// The element count a listpack header holds when the real one does not fit.
const LP_HDR_NUMELE_UNKNOWN: usize = u16::MAX as usize;

impl ListpackWriter {
    pub(crate) fn new() -> Self {
        ListpackWriter {
            buf: vec![0; LP_HDR_SIZE],
            count: 0,
        }
    }

    /// lpEncodeIntegerGetType's encodings.
    pub(crate) fn push_int(&mut self, v: i64) {
        let start = self.buf.len();
        let b = &mut self.buf;
        match v {
            0..=127 => b.push(v as u8),
            -4096..=4095 => {
                let u = (v as u64) & 0x1fff;
                b.push(0xc0 | (u >> 8) as u8);
                b.push(u as u8);
            }
            -32768..=32767 => {
                b.push(0xf1);
                b.extend_from_slice(&(v as i16).to_le_bytes());
            }
            -8388608..=8388607 => {
                b.push(0xf2);
                b.extend_from_slice(&(v as i32).to_le_bytes()[..3]);
            }
            -2147483648..=2147483647 => {
                b.push(0xf3);
                b.extend_from_slice(&(v as i32).to_le_bytes());
            }
            _ => {
                b.push(0xf4);
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        self.end_element(start);
    }

    /// lpAppend: a string that is a valid int64 (lpStringToInt64, which
    /// `parse_i64` follows) is stored as an integer.
    pub(crate) fn push_str(&mut self, s: &[u8]) {
        if let Some(v) = parse_i64(s) {
            return self.push_int(v);
        }
        let start = self.buf.len();
        let b = &mut self.buf;
        let n = s.len();
        if n < 64 {
            b.push(0x80 | n as u8);
        } else if n < 4096 {
            b.push(0xe0 | (n >> 8) as u8);
            b.push(n as u8);
        } else {
            b.push(0xf0);
            // Strings are at most 512 MB (proto-max-bulk-len).
            b.extend_from_slice(&(n as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
        self.end_element(start);
    }

    /// Appends the backlen (lpEncodeBacklen) of the element written from
    /// `start`.
    fn end_element(&mut self, start: usize) {
        let l = (self.buf.len() - start) as u64;
        let b = &mut self.buf;
        if l <= 127 {
            b.push(l as u8);
        } else if l < 16383 {
            b.extend_from_slice(&[(l >> 7) as u8, (l & 127) as u8 | 128]);
        } else if l < 2097151 {
            b.extend_from_slice(&[
                (l >> 14) as u8,
                ((l >> 7) & 127) as u8 | 128,
                (l & 127) as u8 | 128,
            ]);
        } else if l < 268435455 {
            b.extend_from_slice(&[
                (l >> 21) as u8,
                ((l >> 14) & 127) as u8 | 128,
                ((l >> 7) & 127) as u8 | 128,
                (l & 127) as u8 | 128,
            ]);
        } else {
            b.extend_from_slice(&[
                (l >> 28) as u8,
                ((l >> 21) & 127) as u8 | 128,
                ((l >> 14) & 127) as u8 | 128,
                ((l >> 7) & 127) as u8 | 128,
                (l & 127) as u8 | 128,
            ]);
        }
        self.count += 1;
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.buf.push(LP_EOF);
        // A node holds at most stream-node-max-bytes (at most 1 GB) plus one
        // entry (at most one write, 32 MB), well within u32.
        let total = u32::try_from(self.buf.len()).unwrap_or(u32::MAX);
        self.buf[..4].copy_from_slice(&total.to_le_bytes());
        let count = self.count.min(LP_HDR_NUMELE_UNKNOWN) as u16;
        self.buf[4..6].copy_from_slice(&count.to_le_bytes());
        self.buf
    }
}

pub(crate) fn int_elem(v: i64) -> Elem {
    Elem::from(crate::numbers::i64_bytes(v))
}

pub(crate) fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// The number of bytes lpEncodeBacklen uses for an entry of `l` bytes.
pub(crate) fn backlen_size(l: usize) -> usize {
    if l <= 127 {
        1
    } else if l < 16383 {
        2
    } else if l < 2097151 {
        3
    } else if l < 268435455 {
        4
    } else {
        5
    }
}

/// Decodes a listpack into its elements (integers as decimal strings).
pub fn parse(b: &[u8]) -> Option<Vec<Elem>> {
    if b.len() < 7 {
        return None;
    }
    let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if total != b.len() || *b.last()? != 0xff {
        return None;
    }
    let count = u16::from_le_bytes([b[4], b[5]]);
    let mut p = 6;
    let mut out = Vec::new();
    loop {
        let e = *b.get(p)?;
        if e == 0xff {
            if p != b.len() - 1 {
                return None;
            }
            break;
        }
        let rest = &b[p..];
        let need = |n: usize| if rest.len() >= n { Some(()) } else { None };
        let (elem, len) = if e & 0x80 == 0 {
            (int_elem((e & 0x7f) as i64), 1)
        } else if e & 0xc0 == 0x80 {
            let n = (e & 0x3f) as usize;
            need(1 + n)?;
            (Elem::from(&rest[1..1 + n]), 1 + n)
        } else if e & 0xe0 == 0xc0 {
            need(2)?;
            let v = (((e & 0x1f) as u64) << 8) | rest[1] as u64;
            (int_elem(sign_extend(v, 13)), 2)
        } else if e & 0xf0 == 0xe0 {
            need(2)?;
            let n = (((e & 0x0f) as usize) << 8) | rest[1] as usize;
            need(2 + n)?;
            (Elem::from(&rest[2..2 + n]), 2 + n)
        } else {
            match e {
                0xf0 => {
                    need(5)?;
                    let n = u32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
                    need(5usize.checked_add(n)?)?;
                    (Elem::from(&rest[5..5 + n]), 5 + n)
                }
                0xf1 => {
                    need(3)?;
                    (int_elem(i16::from_le_bytes([rest[1], rest[2]]) as i64), 3)
                }
                0xf2 => {
                    need(4)?;
                    let v = rest[1] as u64 | (rest[2] as u64) << 8 | (rest[3] as u64) << 16;
                    (int_elem(sign_extend(v, 24)), 4)
                }
                0xf3 => {
                    need(5)?;
                    let v = i32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]);
                    (int_elem(v as i64), 5)
                }
                0xf4 => {
                    need(9)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&rest[1..9]);
                    (int_elem(i64::from_le_bytes(a)), 9)
                }
                _ => return None,
            }
        };
        p += len + backlen_size(len);
        if p > b.len() {
            return None;
        }
        out.push(elem);
    }
    if count != u16::MAX && count as usize != out.len() {
        return None;
    }
    Some(out)
}

/// The size of a listpack element holding `s` (an integer-looking string
/// is stored as an integer), backlen included.
pub(crate) fn entry_size(s: &[u8]) -> usize {
    let enc = match parse_i64(s) {
        Some(v) if s.len() <= 20 => int_size(v),
        _ => match s.len() {
            n if n < 64 => 1 + n,
            n if n < 4096 => 2 + n,
            n => 5 + n,
        },
    };
    enc + backlen_size(enc)
}

fn int_size(v: i64) -> usize {
    match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    }
}

pub(crate) fn int_entry_size(v: i64) -> usize {
    let enc = int_size(v);
    enc + backlen_size(enc)
}
