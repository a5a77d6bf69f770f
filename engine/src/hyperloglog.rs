//! HyperLogLog sketches in Redis' own string format.
//!
//! A HyperLogLog is a plain string value (PFADD's result can be read with
//! GET, copied with DUMP/RESTORE and edited with SETRANGE), so memlog keeps
//! Redis' byte layout exactly: a 16-byte header (`HYLL`, encoding, three
//! unused bytes, the cached cardinality little-endian with its top bit
//! marking it stale) followed by 16384 six-bit registers, either packed
//! (dense, 12288 bytes) or run-length coded (sparse). The sparse coding
//! and the way an update splits and re-joins its runs follow Redis 7.0 byte
//! for byte, so the same commands give the same string on both servers.
//!
//! Everything here is pure: the command handlers (command/hyperloglog.rs)
//! look keys up and record effects. Every function tolerates corrupted
//! input (SETRANGE can write anything), answering `Corrupt` instead of
//! panicking.

/// Bits of the hash that pick a register.
const P: u32 = 14;
/// Bits left for the run of zeroes.
const Q: u32 = 64 - P;
pub const REGISTERS: usize = 1 << P;
const REGISTER_MAX: u8 = 63;
pub const HEADER_LEN: usize = 16;
pub const DENSE_LEN: usize = HEADER_LEN + (REGISTERS * 6).div_ceil(8);
const DENSE: u8 = 0;
const SPARSE: u8 = 1;
/// Default of the `hll-sparse-max-bytes` parameter.
pub const DEFAULT_SPARSE_MAX_BYTES: usize = 3000;

/// The largest value a sparse VAL opcode can hold; bigger ones go dense.
const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;

const ALPHA_INF: f64 = 0.721_347_520_444_481_7;
const HASH_SEED: u64 = 0xadc8_3b19;

/// Why a value cannot be used as a HyperLogLog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HllError {
    /// Not a HyperLogLog at all (wrong magic, encoding or length).
    #[error("WRONGTYPE Key is not a valid HyperLogLog string value.")]
    NotHll,
    /// Looks like one, but its registers do not add up.
    #[error("INVALIDOBJ Corrupted HLL object detected")]
    Corrupt,
}

/// A new, empty sketch: sparse, one XZERO run over every register.
pub fn new_sparse() -> Vec<u8> {
    let mut s = Vec::with_capacity(HEADER_LEN + 2);
    s.extend_from_slice(b"HYLL");
    s.push(SPARSE);
    s.extend_from_slice(&[0; 11]);
    let mut left = REGISTERS;
    while left > 0 {
        let run = left.min(XZERO_MAX_LEN);
        push_xzero(&mut s, run);
        left -= run;
    }
    s
}

/// Checks the header as Redis does before any HyperLogLog command.
pub fn check(s: &[u8]) -> Result<(), HllError> {
    if s.len() < HEADER_LEN || &s[..4] != b"HYLL" || s[4] > SPARSE {
        return Err(HllError::NotHll);
    }
    if s[4] == DENSE && s.len() != DENSE_LEN {
        return Err(HllError::NotHll);
    }
    Ok(())
}

pub fn is_sparse(s: &[u8]) -> bool {
    s[4] == SPARSE
}

/// The cached cardinality, if it is still valid.
pub fn cached_count(s: &[u8]) -> Option<u64> {
    let card: [u8; 8] = s[8..16].try_into().ok()?;
    (card[7] & 0x80 == 0).then(|| u64::from_le_bytes(card))
}

pub fn store_count(s: &mut [u8], card: u64) {
    s[8..16].copy_from_slice(&card.to_le_bytes());
}

pub fn invalidate_count(s: &mut [u8]) {
    s[15] |= 0x80;
}

/// Redis' MurmurHash64A (little-endian reads, as on x86 and ARM).
fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (key.len() as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, b) in rest.iter().enumerate() {
            h ^= (*b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element falls in and the length of its zero run + 1.
pub fn register_of(ele: &[u8]) -> (usize, u8) {
    let hash = murmur64a(ele, HASH_SEED);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    // The stop bit bounds the count at Q + 1.
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

// --- dense registers: 6 bits each, least significant bits first ---

pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let bit = i * 6;
    let (byte, fb) = (bit / 8, bit % 8);
    let b0 = regs.get(byte).copied().unwrap_or(0) as u16;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u16;
    (((b0 >> fb) | (b1 << (8 - fb))) & 63) as u8
}

pub fn dense_set(regs: &mut [u8], i: usize, val: u8) {
    let bit = i * 6;
    let (byte, fb) = (bit / 8, bit % 8);
    let v = val as u16;
    if let Some(b) = regs.get_mut(byte) {
        *b = (*b & !((63u16 << fb) as u8)) | ((v << fb) as u8);
    }
    if let Some(b) = regs.get_mut(byte + 1) {
        let shift = 8 - fb;
        *b = (*b & !((63u16 >> shift) as u8)) | ((v >> shift) as u8);
    }
}

/// Raises register `i` to `count`; whether it changed.
fn dense_raise(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_set(regs, i, count);
        true
    } else {
        false
    }
}

// --- sparse opcodes: ZERO 00xxxxxx, XZERO 01xxxxxx yyyyyyyy, VAL 1vvvvvxx ---

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

impl Op {
    /// The opcode at `p`; a truncated XZERO reads its missing byte as 0,
    /// as Redis reads the string's terminator.
    fn at(s: &[u8], p: usize) -> Op {
        let b = s[p];
        if b & 0xc0 == 0 {
            Op::Zero((b & 0x3f) as usize + 1)
        } else if b & 0x80 == 0 {
            let lo = s.get(p + 1).copied().unwrap_or(0) as usize;
            Op::XZero(((((b & 0x3f) as usize) << 8) | lo) + 1)
        } else {
            Op::Val(((b >> 2) & 0x1f) + 1, (b & 3) as usize + 1)
        }
    }

    fn span(self) -> usize {
        match self {
            Op::Zero(n) | Op::XZero(n) | Op::Val(_, n) => n,
        }
    }

    fn len(self) -> usize {
        if matches!(self, Op::XZero(_)) {
            2
        } else {
            1
        }
    }
}

fn val_byte(val: u8, len: usize) -> u8 {
    0x80 | ((val - 1) << 2) | (len - 1) as u8
}

fn push_xzero(s: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    s.push(0x40 | (l >> 8) as u8);
    s.push((l & 0xff) as u8);
}

/// A zero run as the shortest opcode that holds it.
fn push_zeros(s: &mut Vec<u8>, len: usize) {
    if len > ZERO_MAX_LEN {
        push_xzero(s, len);
    } else {
        s.push((len - 1) as u8);
    }
}

/// Calls `f(first_register, op)` for each opcode; the number of registers
/// covered in all.
fn walk_sparse(s: &[u8], mut f: impl FnMut(usize, Op)) -> usize {
    let mut p = HEADER_LEN;
    let mut idx = 0;
    while p < s.len() {
        let op = Op::at(s, p);
        f(idx, op);
        idx += op.span();
        p += op.len();
    }
    idx
}

/// Calls `f(first_register, len, value)` for each VAL run of a sparse
/// sketch, checked as Redis checks since the CVE-2025-32023 fix: a run past
/// the last register (even one that starts right after it), or opcodes that
/// do not cover exactly every register, are corruption.
fn for_each_val_run(s: &[u8], mut f: impl FnMut(usize, usize, u8)) -> Result<(), HllError> {
    let mut p = HEADER_LEN;
    let mut idx = 0;
    while p < s.len() {
        let op = Op::at(s, p);
        if let Op::Val(v, n) = op {
            if idx + n > REGISTERS {
                return Err(HllError::Corrupt);
            }
            f(idx, n, v);
        }
        idx += op.span();
        p += op.len();
    }
    if idx != REGISTERS {
        return Err(HllError::Corrupt);
    }
    Ok(())
}

/// Rewrites a sparse sketch as a dense one (the header, cache included, is
/// kept). Ok(false) when it already was dense.
pub fn to_dense(s: &mut Vec<u8>) -> Result<bool, HllError> {
    if !is_sparse(s) {
        return Ok(false);
    }
    let mut dense = vec![0u8; DENSE_LEN];
    dense[..HEADER_LEN].copy_from_slice(&s[..HEADER_LEN]);
    dense[4] = DENSE;
    for_each_val_run(s, |idx, n, v| {
        for i in idx..idx + n {
            dense_set(&mut dense[HEADER_LEN..], i, v);
        }
    })?;
    *s = dense;
    Ok(true)
}

/// Raises register `index` of a sparse sketch to `count`, splitting the run
/// that holds it and joining equal neighbours after, exactly as Redis'
/// hllSparseSet does; past `max_bytes` (or for a count a VAL opcode cannot
/// hold) the sketch goes dense first.
fn sparse_raise(
    s: &mut Vec<u8>,
    index: usize,
    count: u8,
    max_bytes: usize,
) -> Result<bool, HllError> {
    if count > VAL_MAX_VALUE {
        return promote(s, index, count);
    }
    // Find the opcode covering `index`.
    let mut p = HEADER_LEN;
    let mut first = 0;
    let mut prev = None;
    let mut found = None;
    while p < s.len() {
        let op = Op::at(s, p);
        if index < first + op.span() {
            found = Some(op);
            break;
        }
        prev = Some(p);
        p += op.len();
        first += op.span();
    }
    let Some(op) = found else {
        return Err(HllError::Corrupt);
    };
    let in_place = match op {
        Op::Val(old, _) if old >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => true,
        _ => false,
    };
    if in_place {
        s[p] = val_byte(count, 1);
    } else {
        // Replace the run by up to three: before, the new value, after.
        let last = first + op.span() - 1;
        let mut seq = Vec::with_capacity(5);
        match op {
            Op::Val(cur, _) => {
                if index != first {
                    seq.push(val_byte(cur, index - first));
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    seq.push(val_byte(cur, last - index));
                }
            }
            _ => {
                if index != first {
                    push_zeros(&mut seq, index - first);
                }
                seq.push(val_byte(count, 1));
                if index != last {
                    push_zeros(&mut seq, last - index);
                }
            }
        }
        let old_len = s.len();
        let new_len = (old_len + seq.len()).saturating_sub(op.len());
        if seq.len() > op.len() && new_len > max_bytes {
            return promote(s, index, count);
        }
        let next = p + op.len();
        let tail = if next < old_len {
            s[next..].to_vec()
        } else {
            Vec::new()
        };
        s.truncate(p);
        s.extend_from_slice(&seq);
        s.extend_from_slice(&tail);
        // A truncated XZERO at the very end loses its last byte, as in Redis.
        s.truncate(new_len);
    }
    // Join adjacent VAL opcodes of equal value, looking at up to five
    // opcodes from the one before the change.
    let mut p = prev.unwrap_or(HEADER_LEN);
    let mut scan = 5;
    while p < s.len() && scan > 0 {
        scan -= 1;
        match Op::at(s, p) {
            Op::XZero(_) => p += 2,
            Op::Zero(_) => p += 1,
            Op::Val(v1, n1) => {
                if p + 1 < s.len() {
                    if let Op::Val(v2, n2) = Op::at(s, p + 1) {
                        if v1 == v2 && n1 + n2 <= VAL_MAX_LEN {
                            s[p + 1] = val_byte(v1, n1 + n2);
                            s.remove(p);
                            continue;
                        }
                    }
                }
                p += 1;
            }
        }
    }
    invalidate_count(s);
    Ok(true)
}

fn promote(s: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, HllError> {
    to_dense(s)?;
    dense_raise(&mut s[HEADER_LEN..], index, count);
    Ok(true)
}

/// Raises register `index` to `count` in either encoding; whether it changed.
pub fn raise(s: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, HllError> {
    if is_sparse(s) {
        sparse_raise(s, index, count, max_bytes)
    } else {
        Ok(dense_raise(&mut s[HEADER_LEN..], index, count))
    }
}

/// Adds an element; whether a register changed.
pub fn add(s: &mut Vec<u8>, ele: &[u8], max_bytes: usize) -> Result<bool, HllError> {
    let (index, count) = register_of(ele);
    raise(s, index, count, max_bytes)
}

/// Raises each of `max` to the sketch's register where that is higher.
pub fn merge_into(max: &mut [u8; REGISTERS], s: &[u8]) -> Result<(), HllError> {
    if !is_sparse(s) {
        let regs = &s[HEADER_LEN..];
        for (i, m) in max.iter_mut().enumerate() {
            *m = (*m).max(dense_get(regs, i));
        }
        return Ok(());
    }
    for_each_val_run(s, |idx, n, v| {
        for m in &mut max[idx..idx + n] {
            *m = (*m).max(v);
        }
    })
}

/// The estimated cardinality of a sketch (not its cache).
pub fn count(s: &[u8]) -> Result<u64, HllError> {
    let mut histo = [0u32; 64];
    if is_sparse(s) {
        let covered = walk_sparse(s, |_, op| match op {
            Op::Zero(n) | Op::XZero(n) => histo[0] += n as u32,
            Op::Val(v, n) => histo[v as usize] += n as u32,
        });
        if covered != REGISTERS {
            return Err(HllError::Corrupt);
        }
    } else {
        let regs = &s[HEADER_LEN..];
        for i in 0..REGISTERS {
            histo[dense_get(regs, i) as usize] += 1;
        }
    }
    Ok(estimate(&histo))
}

/// The cardinality of registers held one per byte (PFCOUNT of many keys).
pub fn count_registers(regs: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in regs.iter() {
        histo[(r & REGISTER_MAX) as usize] += 1;
    }
    estimate(&histo)
}

/// Otmar Ertl's improved estimator, as Redis computes it.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let before = z;
        z += x * y;
        y += y;
        if z == before {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let before = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == before {
            return z / 3.0;
        }
    }
}

/// PFDEBUG DECODE: the sparse opcodes as `z:N`, `Z:N` and `v:VALUE,N`.
pub fn decode_sparse(s: &[u8]) -> String {
    let mut parts = Vec::new();
    walk_sparse(s, |_, op| {
        parts.push(match op {
            Op::Zero(n) => format!("z:{n}"),
            Op::XZero(n) => format!("Z:{n}"),
            Op::Val(v, n) => format!("v:{v},{n}"),
        })
    });
    parts.join(" ")
}

/// PFSELFTEST: register packing round trips, and sparse and dense sketches
/// agree and stay within the expected error up to ten million elements.
pub fn self_test(rng: &mut impl rand::Rng, sparse_max_bytes: usize) -> Result<(), String> {
    let mut regs = vec![0u8; DENSE_LEN - HEADER_LEN];
    let mut expect = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, e) in expect.iter_mut().enumerate() {
            *e = rng.gen::<u8>() & REGISTER_MAX;
            dense_set(&mut regs, i, *e);
        }
        for (i, e) in expect.iter().enumerate() {
            let got = dense_get(&regs, i);
            if got != *e {
                return Err(format!(
                    "TESTFAILED Register {i} should be {e} but is {got}"
                ));
            }
        }
    }
    let mut dense = new_sparse();
    to_dense(&mut dense).map_err(|e| e.to_string())?;
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let seed: u64 = rng.gen();
    let mut checkpoint: u64 = 1;
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        add(&mut dense, &ele, sparse_max_bytes).map_err(|e| e.to_string())?;
        add(&mut sparse, &ele, sparse_max_bytes).map_err(|e| e.to_string())?;
        if j != checkpoint {
            continue;
        }
        if (j as usize) < sparse_max_bytes / 2 && !is_sparse(&sparse) {
            return Err("TESTFAILED sparse encoding not used".into());
        }
        let card = count(&dense).map_err(|e| e.to_string())?;
        if Ok(card) != count(&sparse) {
            return Err("TESTFAILED dense/sparse disagree".into());
        }
        let abserr = checkpoint.abs_diff(card);
        let maxerr = if j == 10 {
            1
        } else {
            (relerr * 6.0 * checkpoint as f64).ceil() as u64
        };
        if abserr > maxerr {
            return Err(format!(
                "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
            ));
        }
        checkpoint *= 10;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_sketch_is_one_xzero_run() {
        let s = new_sparse();
        assert_eq!(s.len(), HEADER_LEN + 2);
        assert_eq!(decode_sparse(&s), "Z:16384");
        assert_eq!(count(&s), Ok(0));
        assert_eq!(check(&s), Ok(()));
    }

    #[test]
    fn dense_registers_round_trip() {
        let mut regs = vec![0u8; DENSE_LEN - HEADER_LEN];
        for i in 0..REGISTERS {
            dense_set(&mut regs, i, (i % 64) as u8);
        }
        for i in 0..REGISTERS {
            assert_eq!(dense_get(&regs, i), (i % 64) as u8);
        }
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut sparse = new_sparse();
        let mut dense = new_sparse();
        to_dense(&mut dense).unwrap();
        for i in 0..2000u32 {
            let e = i.to_string();
            add(&mut sparse, e.as_bytes(), DEFAULT_SPARSE_MAX_BYTES).unwrap();
            add(&mut dense, e.as_bytes(), DEFAULT_SPARSE_MAX_BYTES).unwrap();
            assert_eq!(count(&sparse), count(&dense));
        }
        let c = count(&dense).unwrap();
        assert!((1900..2100).contains(&c), "{c}");
        let mut a = [0u8; REGISTERS];
        merge_into(&mut a, &sparse).unwrap();
        assert_eq!(count_registers(&a), c);
    }

    #[test]
    fn updates_split_and_join_runs() {
        let mut s = new_sparse();
        raise(&mut s, 100, 3, DEFAULT_SPARSE_MAX_BYTES).unwrap();
        assert_eq!(decode_sparse(&s), "Z:100 v:3,1 Z:16283");
        raise(&mut s, 101, 3, DEFAULT_SPARSE_MAX_BYTES).unwrap();
        assert_eq!(decode_sparse(&s), "Z:100 v:3,2 Z:16282");
        assert_eq!(raise(&mut s, 101, 2, DEFAULT_SPARSE_MAX_BYTES), Ok(false));
        raise(&mut s, 0, 40, DEFAULT_SPARSE_MAX_BYTES).unwrap();
        assert!(!is_sparse(&s), "a count over 32 needs the dense encoding");
        assert_eq!(dense_get(&s[HEADER_LEN..], 101), 3);
    }

    #[test]
    fn corrupted_sketches_are_errors_not_panics() {
        let mut rng = rand::thread_rng();
        for _ in 0..2000 {
            let mut s = new_sparse();
            for i in 0..rand::Rng::gen_range(&mut rng, 0..300u32) {
                add(&mut s, &i.to_le_bytes(), DEFAULT_SPARSE_MAX_BYTES).unwrap();
            }
            for _ in 0..3 {
                let pos = rand::Rng::gen_range(&mut rng, 0..s.len());
                s[pos] = rand::Rng::gen(&mut rng);
            }
            if check(&s).is_err() {
                continue;
            }
            let _ = count(&s);
            let mut m = [0u8; REGISTERS];
            let _ = merge_into(&mut m, &s);
            let _ = add(&mut s, b"x", DEFAULT_SPARSE_MAX_BYTES);
            let _ = to_dense(&mut s);
        }
    }
}
