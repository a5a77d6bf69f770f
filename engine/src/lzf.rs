//! LZF, the compression of Redis' RDB strings (`rdbcompression yes`).
//!
//! DUMP payloads, and so memlog's snapshots (a snapshot stores each key as
//! a RESTORE of its DUMP payload), compress every string longer than 20
//! bytes as Redis does: a 10-element list of 256-byte values of one letter
//! takes 40 bytes instead of 2.6 KB, which is what makes a snapshot of
//! `redis-benchmark`'s data set a tenth of its size. The token format is
//! liblzf's (what Redis writes and reads); the encoder is a plain greedy
//! one with a hash of the next three bytes, like liblzf's.
//!
//! Tokens: `000LLLLL` + L+1 literal bytes; `LLLooooo oooooooo` copies L+2
//! bytes from `offset+1` back (L = 1..6); `111ooooo LLLLLLLL oooooooo`
//! copies L+9 bytes. A literal run is at most 32 bytes, a back reference at
//! most 264 bytes and 8192 bytes back.

use std::cell::RefCell;

const MAX_LITERAL: usize = 1 << 5;
const MAX_OFFSET: usize = 1 << 13;
const MAX_REF: usize = (1 << 8) + (1 << 3);
const HASH_LOG: u32 = 16;

/// The encoder's hash table: the last position (plus `base`) of each
/// 3-byte hash. Never cleared per string: each string's positions start
/// above every position an earlier one stored, so an old entry is never
/// taken for a match (zeroing 256 KB per string would cost more than
/// compressing a short one).
struct Table {
    slots: Vec<u32>,
    base: u32,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table { slots: vec![0; 1 << HASH_LOG], base: 0 });
}

/// liblzf's hash of the three bytes at `p` (its "very fast" variant).
fn slot(b: &[u8], p: usize) -> usize {
    let h = u32::from(b[p]) << 16 | u32::from(b[p + 1]) << 8 | u32::from(b[p + 2]);
    ((h >> (24 - HASH_LOG)).wrapping_sub(h.wrapping_mul(5)) & ((1 << HASH_LOG) - 1)) as usize
}

/// Compresses `input` into at most `limit` bytes, or `None` when it does
/// not fit (Redis then stores the string as it is). The output, and when it
/// does not fit, are liblzf's for the same input, so a DUMP payload is
/// Redis' byte for byte.
pub fn compress(input: &[u8], limit: usize) -> Option<Vec<u8>> {
    let n = u32::try_from(input.len()).ok()?;
    TABLE.with(|t| {
        let t = &mut *t.borrow_mut();
        if t.base.checked_add(n).is_none() {
            t.slots.fill(0);
            t.base = 0;
        }
        let out = compress_with(&mut t.slots, t.base, input, limit);
        t.base += n;
        out
    })
}

fn compress_with(table: &mut [u32], base: u32, input: &[u8], limit: usize) -> Option<Vec<u8>> {
    let n = input.len();
    if n == 0 || limit == 0 {
        return None;
    }
    let mut out = Vec::with_capacity(limit);
    // `out[run_at]` counts the literal run being written (`run` bytes).
    out.push(0);
    let mut run_at = 0;
    let mut run = 0;
    let mut ip = 0;
    while ip + 2 < n {
        let s = slot(input, ip);
        let stored = table[s];
        table[s] = base + ip as u32;
        // Position 0 is never a reference (liblzf's `ref > in_data`).
        let r = stored.wrapping_sub(base) as usize;
        let found = stored > base
            && r < ip
            && ip - r - 1 < MAX_OFFSET
            && input[r + 2] == input[ip + 2]
            && input[r..r + 2] == input[ip..ip + 2];
        if !found {
            if out.len() >= limit {
                return None;
            }
            push_literal(&mut out, &mut run_at, &mut run, input[ip]);
            ip += 1;
            continue;
        }
        if out.len() - usize::from(run == 0) + 4 >= limit {
            return None;
        }
        let off = ip - r - 1;
        // The match's length, extended as liblzf does (16 bytes at a time
        // without the bound when far from it, which it may then pass by 2).
        let max = (n - ip - 2).min(MAX_REF);
        let mut len = 2;
        'extend: {
            if max > 16 {
                for _ in 0..16 {
                    len += 1;
                    if input[r + len] != input[ip + len] {
                        break 'extend;
                    }
                }
            }
            loop {
                len += 1;
                if !(len < max && input[r + len] == input[ip + len]) {
                    break;
                }
            }
        }
        if run == 0 {
            out.pop();
        } else {
            out[run_at] = (run - 1) as u8;
        }
        let l = len - 2;
        if l < 7 {
            out.push((off >> 8) as u8 + ((l as u8) << 5));
        } else {
            out.push((off >> 8) as u8 + (7 << 5));
            out.push((l - 7) as u8);
        }
        out.push(off as u8);
        run_at = out.len();
        out.push(0);
        run = 0;
        ip += len;
        if ip + 2 >= n {
            break;
        }
        // Index the match's last two positions.
        for p in [ip - 2, ip - 1] {
            table[slot(input, p)] = base + p as u32;
        }
    }
    if out.len() + 3 > limit {
        return None;
    }
    while ip < n {
        push_literal(&mut out, &mut run_at, &mut run, input[ip]);
        ip += 1;
    }
    if run == 0 {
        out.pop();
    } else {
        out[run_at] = (run - 1) as u8;
    }
    Some(out)
}

fn push_literal(out: &mut Vec<u8>, run_at: &mut usize, run: &mut usize, b: u8) {
    out.push(b);
    *run += 1;
    if *run == MAX_LITERAL {
        out[*run_at] = (MAX_LITERAL - 1) as u8;
        *run_at = out.len();
        out.push(0);
        *run = 0;
    }
}

/// lzf_decompress into exactly `ulen` bytes; `None` for a corrupt input.
pub fn decompress(input: &[u8], ulen: usize) -> Option<Vec<u8>> {
    // LZF expands at most 88 times (a 3-byte back reference to 264 bytes):
    // a larger `ulen` is corrupt, and must not be allocated up front.
    if ulen / 88 > input.len() {
        return None;
    }
    let mut out: Vec<u8> = Vec::with_capacity(ulen);
    let mut i = 0;
    while i < input.len() {
        let ctrl = input[i] as usize;
        i += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if i + n > input.len() || out.len() + n > ulen {
                return None;
            }
            out.extend_from_slice(&input[i..i + n]);
            i += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                len += *input.get(i)? as usize;
                i += 1;
            }
            len += 2;
            let back = ((ctrl & 0x1f) << 8) + *input.get(i)? as usize + 1;
            i += 1;
            if back > out.len() || out.len() + len > ulen {
                return None;
            }
            let start = out.len() - back;
            if back >= len {
                out.extend_from_within(start..start + len);
            } else {
                // Overlapping: each byte may be one this copy just wrote.
                for k in 0..len {
                    let c = out[start + k];
                    out.push(c);
                }
            }
        }
    }
    (out.len() == ulen).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn round_trip(input: &[u8]) -> Option<usize> {
        let c = compress(input, input.len().saturating_sub(4))?;
        assert_eq!(
            decompress(&c, input.len()).as_deref(),
            Some(input),
            "input of {} bytes",
            input.len()
        );
        Some(c.len())
    }

    #[test]
    fn repetitive_input_shrinks_and_round_trips() {
        let n = round_trip(&[b'x'; 256]).expect("compresses");
        assert!(n <= 12, "256 x's took {n} bytes");
        let text = b"the quick brown fox jumps over the lazy dog; ".repeat(200);
        let n = round_trip(&text).expect("compresses");
        assert!(n < text.len() / 10, "{n} of {}", text.len());
        // Runs longer than one back reference and than the offset window.
        let mut long = Vec::new();
        for i in 0..20_000u32 {
            long.extend_from_slice(&(i % 97).to_le_bytes());
        }
        round_trip(&long).expect("compresses");
    }

    #[test]
    fn random_input_does_not_fit_and_any_input_round_trips() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let noise: Vec<u8> = (0..4096).map(|_| rng.gen()).collect();
        assert_eq!(compress(&noise, noise.len() - 4), None);
        for _ in 0..2000 {
            let len = rng.gen_range(1..600);
            let alphabet = rng.gen_range(1..=255u8);
            let input: Vec<u8> = (0..len).map(|_| rng.gen_range(0..=alphabet)).collect();
            if let Some(c) = compress(&input, input.len() + input.len() / 32 + 2) {
                assert_eq!(decompress(&c, input.len()), Some(input));
            }
        }
    }

    #[test]
    fn redis_payload_decompresses_and_is_what_compress_writes() {
        // What Redis 7 writes for 50 x's.
        let c = [0x01, b'x', b'x', 0xe0, 0x25, 0x00, 0x01, b'x', b'x'];
        assert_eq!(compress(&[b'x'; 50], 46).as_deref(), Some(&c[..]));
        assert_eq!(decompress(&c, 50), Some(vec![b'x'; 50]));
        assert_eq!(decompress(&c, 51), None);
        assert_eq!(decompress(&[0xe0, 0x1d, 0x01], 40), None);
    }
}
