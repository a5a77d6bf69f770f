//! Redis' RDB serialization of single values, as DUMP and RESTORE use it.
//!
//! A payload is `type byte + object + RDB version (u16 LE) + CRC64 (u64 LE)`,
//! the CRC being Redis' crc64 (Jones polynomial, reflected) of everything
//! before it. DUMP writes the plain RDB types (string, list, set, hash,
//! zset-2), which every Redis since 2.x loads; RESTORE reads those plus the
//! compact encodings Redis 7.0 writes (quicklist-2 of listpacks, intset,
//! hash/zset listpacks) and the older ziplist ones, LZF-compressed strings
//! included. Streams are written and read in Redis 7.0's own stream format
//! (listpacks of entries, counters, consumer groups): see [`crate::rdb_stream`].

use std::collections::VecDeque;

use crate::keyspace::{Elem, Map, Set, Value, ZSet};
use crate::numbers::parse_i64;

/// The RDB version written in DUMP payloads (Redis 7.0).
pub const RDB_VERSION: u16 = 10;

const TYPE_STRING: u8 = 0;
const TYPE_LIST: u8 = 1;
const TYPE_SET: u8 = 2;
const TYPE_ZSET: u8 = 3;
const TYPE_HASH: u8 = 4;
const TYPE_ZSET_2: u8 = 5;
const TYPE_LIST_ZIPLIST: u8 = 10;
const TYPE_SET_INTSET: u8 = 11;
const TYPE_ZSET_ZIPLIST: u8 = 12;
const TYPE_HASH_ZIPLIST: u8 = 13;
const TYPE_LIST_QUICKLIST: u8 = 14;
const TYPE_HASH_LISTPACK: u8 = 16;
const TYPE_ZSET_LISTPACK: u8 = 17;
const TYPE_LIST_QUICKLIST_2: u8 = 18;

const ENC_INT8: u64 = 0;
const ENC_INT16: u64 = 1;
const ENC_INT32: u64 = 2;
const ENC_LZF: u64 = 3;

// ---------------------------------------------------------------- CRC64

const fn crc64_table() -> [u64; 256] {
    // Jones polynomial 0xad93d23594c935a9, reflected.
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC64_TABLE: [u64; 256] = crc64_table();

/// Redis' crc64 (as in crc64.c), starting from `crc`.
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    for &b in data {
        crc = CRC64_TABLE[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

// ---------------------------------------------------------------- DUMP

pub(crate) fn save_len(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.push(((len >> 8) as u8) | 0x40);
        out.push(len as u8);
    } else if len <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// rdbSaveRawString: small integers in their integer encodings, else raw.
pub(crate) fn save_string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() <= 11 {
        if let Some(v) = parse_i64(s) {
            if (i8::MIN as i64..=i8::MAX as i64).contains(&v) {
                out.push(0xc0 | ENC_INT8 as u8);
                out.push(v as i8 as u8);
                return;
            }
            if (i16::MIN as i64..=i16::MAX as i64).contains(&v) {
                out.push(0xc0 | ENC_INT16 as u8);
                out.extend_from_slice(&(v as i16).to_le_bytes());
                return;
            }
            if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
                out.push(0xc0 | ENC_INT32 as u8);
                out.extend_from_slice(&(v as i32).to_le_bytes());
                return;
            }
        }
    }
    save_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Serializes `value` as a DUMP payload.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut out = match value {
        // type, length (at most 9 bytes), bytes, version, crc64
        Value::Str(s) => Vec::with_capacity(1 + 9 + s.len() + 2 + 8),
        _ => Vec::new(),
    };
    match value {
        Value::Str(s) => {
            out.push(TYPE_STRING);
            save_string(&mut out, s);
        }
        Value::List(l) => {
            out.push(TYPE_LIST);
            save_len(&mut out, l.len() as u64);
            for e in l.iter() {
                save_string(&mut out, e);
            }
        }
        Value::Set(s) => {
            out.push(TYPE_SET);
            save_len(&mut out, s.len() as u64);
            for e in s.iter() {
                save_string(&mut out, e);
            }
        }
        Value::Hash(h) => {
            out.push(TYPE_HASH);
            save_len(&mut out, h.len() as u64);
            for (k, v) in h.iter() {
                save_string(&mut out, k);
                save_string(&mut out, v);
            }
        }
        Value::ZSet(z) => {
            out.push(TYPE_ZSET_2);
            save_len(&mut out, z.len() as u64);
            // Highest first, as Redis writes skiplists.
            for (m, s) in z.iter().rev() {
                save_string(&mut out, m);
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        Value::Stream(s) => crate::rdb_stream::save(&mut out, s),
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// [`dump`] without spare capacity: for payloads kept in memory (a
/// snapshot keeps one per key), where a growing buffer's doubling left up to
/// half of each allocation unused.
pub fn dump_exact(value: &Value) -> Vec<u8> {
    let mut out = dump(value);
    if out.capacity() > out.len() + out.len() / 8 {
        out.shrink_to_fit();
    }
    out
}

/// RDB_OPCODE_FUNCTION2: a function library (its code) in an RDB file or a
/// FUNCTION DUMP payload.
const OPCODE_FUNCTION2: u8 = 245;
/// RDB_OPCODE_FUNCTION: the pre-7.0 library record, which 7.0 still reads.
const OPCODE_FUNCTION_PRE_GA: u8 = 246;

/// FUNCTION DUMP: each library's code after RDB_OPCODE_FUNCTION2, then the
/// RDB version and the CRC, as Redis writes it (uncompressed).
pub fn dump_functions<'a>(codes: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        save_string(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Reads a FUNCTION DUMP payload into the libraries' code, or the error
/// FUNCTION RESTORE answers.
pub fn restore_functions(payload: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    verify(payload).map_err(|_| "ERR DUMP payload version or checksum are wrong".to_string())?;
    let body = &payload[..payload.len() - 10];
    let mut r = Reader::new(body);
    let mut codes = Vec::new();
    while r.pos < body.len() {
        match r.byte() {
            Some(OPCODE_FUNCTION2) => {}
            Some(OPCODE_FUNCTION_PRE_GA) => {
                return Err("ERR Pre-GA function format not supported".into())
            }
            Some(_) => return Err("ERR given type is not a function".into()),
            None => return Err("ERR can not read data type".into()),
        }
        let code = r
            .load_string()
            .ok_or("ERR failed loading the given functions payload")?;
        codes.push(code);
    }
    Ok(codes)
}

// ---------------------------------------------------------------- RESTORE

/// Why a payload cannot be restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreError {
    /// `ERR DUMP payload version or checksum are wrong`
    VersionOrChecksum,
    /// `ERR Bad data format`
    BadData,
}

/// verifyDumpPayload: footer version and CRC.
pub fn verify(payload: &[u8]) -> Result<(), RestoreError> {
    if payload.len() < 10 {
        return Err(RestoreError::VersionOrChecksum);
    }
    let n = payload.len();
    let ver = u16::from_le_bytes([payload[n - 10], payload[n - 9]]);
    if ver > RDB_VERSION {
        return Err(RestoreError::VersionOrChecksum);
    }
    let mut c = [0u8; 8];
    c.copy_from_slice(&payload[n - 8..]);
    if crc64(0, &payload[..n - 8]) != u64::from_le_bytes(c) {
        return Err(RestoreError::VersionOrChecksum);
    }
    Ok(())
}

/// Verifies and decodes a DUMP payload.
pub fn restore(payload: &[u8]) -> Result<Value, RestoreError> {
    verify(payload)?;
    let body = &payload[..payload.len() - 10];
    let mut r = Reader { b: body, pos: 0 };
    let v = r.load_object().ok_or(RestoreError::BadData)?;
    if v.is_empty_collection() {
        return Err(RestoreError::BadData);
    }
    Ok(v)
}

/// A cursor over a payload's body; the readers return `None` on malformed
/// or short input.
pub(crate) struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

type R<T> = Option<T>;

impl<'a> Reader<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        if end > self.b.len() {
            return None;
        }
        let s = &self.b[self.pos..end];
        self.pos = end;
        Some(s)
    }

    fn byte(&mut self) -> R<u8> {
        Some(self.take(1)?[0])
    }

    /// rdbLoadLenByRef: (value, is_encoded).
    fn load_len_enc(&mut self) -> R<(u64, bool)> {
        let b = self.byte()?;
        match b >> 6 {
            0 => Some(((b & 0x3f) as u64, false)),
            1 => {
                let b2 = self.byte()?;
                Some(((((b & 0x3f) as u64) << 8) | b2 as u64, false))
            }
            2 => match b {
                0x80 => {
                    let s = self.take(4)?;
                    Some((u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as u64, false))
                }
                0x81 => {
                    let s = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(s);
                    Some((u64::from_be_bytes(a), false))
                }
                _ => None,
            },
            _ => Some(((b & 0x3f) as u64, true)),
        }
    }

    pub(crate) fn load_len(&mut self) -> R<u64> {
        match self.load_len_enc()? {
            (n, false) => Some(n),
            _ => None,
        }
    }

    pub(crate) fn load_string(&mut self) -> R<Vec<u8>> {
        let (n, enc) = self.load_len_enc()?;
        if !enc {
            return Some(self.take(usize::try_from(n).ok()?)?.to_vec());
        }
        match n {
            ENC_INT8 => Some(crate::numbers::i64_bytes(self.byte()? as i8 as i64)),
            ENC_INT16 => {
                let s = self.take(2)?;
                Some(crate::numbers::i64_bytes(
                    i16::from_le_bytes([s[0], s[1]]) as i64
                ))
            }
            ENC_INT32 => {
                let s = self.take(4)?;
                Some(crate::numbers::i64_bytes(
                    i32::from_le_bytes([s[0], s[1], s[2], s[3]]) as i64,
                ))
            }
            ENC_LZF => {
                let clen = usize::try_from(self.load_len()?).ok()?;
                let ulen = usize::try_from(self.load_len()?).ok()?;
                let c = self.take(clen)?;
                lzf_decompress(c, ulen)
            }
            _ => None,
        }
    }

    fn load_binary_double(&mut self) -> R<f64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(f64::from_le_bytes(a))
    }

    /// rdbLoadDoubleValue (the old textual score format).
    fn load_text_double(&mut self) -> R<f64> {
        let n = self.byte()?;
        match n {
            253 => None, // NaN is never a valid score
            254 => Some(f64::INFINITY),
            255 => Some(f64::NEG_INFINITY),
            _ => {
                let s = self.take(n as usize)?;
                std::str::from_utf8(s).ok()?.parse().ok()
            }
        }
    }

    fn load_object(&mut self) -> R<Value> {
        let t = self.byte()?;
        let v = match t {
            TYPE_STRING => Value::Str(self.load_string()?.into()),
            TYPE_LIST => {
                let n = self.load_len()?;
                let mut l = VecDeque::new();
                for _ in 0..n {
                    l.push_back(Elem::from(self.load_string()?));
                }
                Value::List(Box::new(l))
            }
            TYPE_SET => {
                let n = self.load_len()?;
                let mut s = Set::default();
                for _ in 0..n {
                    if !s.insert(Elem::from(self.load_string()?)) {
                        return None;
                    }
                }
                Value::Set(Box::new(s))
            }
            TYPE_ZSET | TYPE_ZSET_2 => {
                let n = self.load_len()?;
                let mut z = ZSet::default();
                for _ in 0..n {
                    let m = self.load_string()?;
                    let score = if t == TYPE_ZSET {
                        self.load_text_double()?
                    } else {
                        self.load_binary_double()?
                    };
                    if score.is_nan() || z.insert(&m, score).is_some() {
                        return None;
                    }
                }
                Value::ZSet(Box::new(z))
            }
            TYPE_HASH => {
                let n = self.load_len()?;
                let mut h = Map::default();
                for _ in 0..n {
                    let f = self.load_string()?;
                    let v = self.load_string()?;
                    if h.insert(Elem::from(f), Elem::from(v)).is_some() {
                        return None;
                    }
                }
                Value::Hash(Box::new(h))
            }
            TYPE_SET_INTSET => {
                let blob = self.load_string()?;
                let mut s = Set::default();
                for v in parse_intset(&blob)? {
                    s.insert(Elem::from(crate::numbers::i64_bytes(v)));
                }
                Value::Set(Box::new(s))
            }
            TYPE_LIST_ZIPLIST => {
                let blob = self.load_string()?;
                Value::List(Box::new(parse_ziplist(&blob)?.into()))
            }
            TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => {
                let nodes = self.load_len()?;
                let mut l = VecDeque::new();
                for _ in 0..nodes {
                    let container = if t == TYPE_LIST_QUICKLIST_2 {
                        self.load_len()?
                    } else {
                        2
                    };
                    let blob = self.load_string()?;
                    match (t, container) {
                        (_, 1) => l.push_back(Elem::from(blob)),
                        (TYPE_LIST_QUICKLIST_2, 2) => l.extend(parse_listpack(&blob)?),
                        (TYPE_LIST_QUICKLIST, _) => l.extend(parse_ziplist(&blob)?),
                        _ => return None,
                    }
                }
                Value::List(Box::new(l))
            }
            TYPE_HASH_LISTPACK | TYPE_HASH_ZIPLIST => {
                let blob = self.load_string()?;
                let items = if t == TYPE_HASH_LISTPACK {
                    parse_listpack(&blob)?
                } else {
                    parse_ziplist(&blob)?
                };
                if items.len() % 2 != 0 {
                    return None;
                }
                let mut h = Map::default();
                let mut it = items.into_iter();
                while let (Some(f), Some(v)) = (it.next(), it.next()) {
                    if h.insert(f, v).is_some() {
                        return None;
                    }
                }
                Value::Hash(Box::new(h))
            }
            TYPE_ZSET_LISTPACK | TYPE_ZSET_ZIPLIST => {
                let blob = self.load_string()?;
                let items = if t == TYPE_ZSET_LISTPACK {
                    parse_listpack(&blob)?
                } else {
                    parse_ziplist(&blob)?
                };
                if items.len() % 2 != 0 {
                    return None;
                }
                let mut z = ZSet::default();
                let mut it = items.into_iter();
                while let (Some(m), Some(s)) = (it.next(), it.next()) {
                    let score = crate::numbers::parse_f64(&s)?;
                    if z.insert(&m, score).is_some() {
                        return None;
                    }
                }
                Value::ZSet(Box::new(z))
            }
            crate::rdb_stream::RDB_TYPE_STREAM_LISTPACKS => {
                Value::Stream(Box::new(crate::rdb_stream::load(self, false)?))
            }
            crate::rdb_stream::RDB_TYPE_STREAM_LISTPACKS_2 => {
                Value::Stream(Box::new(crate::rdb_stream::load(self, true)?))
            }
            _ => return None,
        };
        if self.pos != self.b.len() {
            return None;
        }
        Some(v)
    }
}

/// lzf_decompress into exactly `ulen` bytes.
fn lzf_decompress(input: &[u8], ulen: usize) -> R<Vec<u8>> {
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
            for k in 0..len {
                let c = out[start + k];
                out.push(c);
            }
        }
    }
    if out.len() != ulen {
        return None;
    }
    Some(out)
}

fn parse_intset(b: &[u8]) -> R<Vec<i64>> {
    if b.len() < 8 {
        return None;
    }
    let enc = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let n = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
    if !matches!(enc, 2 | 4 | 8) || b.len() != 8 + enc.checked_mul(n)? {
        return None;
    }
    let mut v = Vec::with_capacity(n);
    for c in b[8..].chunks(enc) {
        v.push(match enc {
            2 => i16::from_le_bytes([c[0], c[1]]) as i64,
            4 => i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64,
            _ => {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                i64::from_le_bytes(a)
            }
        });
    }
    Some(v)
}

fn int_elem(v: i64) -> Elem {
    Elem::from(crate::numbers::i64_bytes(v))
}

fn sign_extend(v: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((v << shift) as i64) >> shift
}

/// The number of bytes lpEncodeBacklen uses for an entry of `l` bytes.
fn backlen_size(l: usize) -> usize {
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
pub fn parse_listpack(b: &[u8]) -> R<Vec<Elem>> {
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

/// Decodes a ziplist (RDB 9 and older) into its elements.
pub fn parse_ziplist(b: &[u8]) -> R<Vec<Elem>> {
    if b.len() < 11 {
        return None;
    }
    let total = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    if total != b.len() || *b.last()? != 0xff {
        return None;
    }
    let mut p = 10;
    let mut out = Vec::new();
    loop {
        let first = *b.get(p)?;
        if first == 0xff {
            break;
        }
        // prevlen
        p += if first < 254 { 1 } else { 5 };
        let e = *b.get(p)?;
        let rest = b.get(p..)?;
        let need = |n: usize| if rest.len() >= n { Some(()) } else { None };
        let (elem, len) = match e >> 6 {
            0 => {
                let n = (e & 0x3f) as usize;
                need(1 + n)?;
                (Elem::from(&rest[1..1 + n]), 1 + n)
            }
            1 => {
                need(2)?;
                let n = (((e & 0x3f) as usize) << 8) | rest[1] as usize;
                need(2 + n)?;
                (Elem::from(&rest[2..2 + n]), 2 + n)
            }
            2 => {
                need(5)?;
                let n = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
                need(5usize.checked_add(n)?)?;
                (Elem::from(&rest[5..5 + n]), 5 + n)
            }
            _ => match e {
                0xc0 => {
                    need(3)?;
                    (int_elem(i16::from_le_bytes([rest[1], rest[2]]) as i64), 3)
                }
                0xd0 => {
                    need(5)?;
                    let v = i32::from_le_bytes([rest[1], rest[2], rest[3], rest[4]]);
                    (int_elem(v as i64), 5)
                }
                0xe0 => {
                    need(9)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&rest[1..9]);
                    (int_elem(i64::from_le_bytes(a)), 9)
                }
                0xf0 => {
                    need(4)?;
                    let v = rest[1] as u64 | (rest[2] as u64) << 8 | (rest[3] as u64) << 16;
                    (int_elem(sign_extend(v, 24)), 4)
                }
                0xfe => {
                    need(2)?;
                    (int_elem(rest[1] as i8 as i64), 2)
                }
                0xf1..=0xfd => (int_elem((e & 0x0f) as i64 - 1), 1),
                _ => return None,
            },
        };
        p += len;
        out.push(elem);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_check_value() {
        assert_eq!(crc64(0, b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn restores_redis_7_payloads() {
        // SADD s 1 2 3 (intset)
        let v = restore(&hex(
            "0b0e0200000003000000010002000300 0a00a5025ce26d6e4d1b"
                .replace(' ', "")
                .as_str(),
        ))
        .unwrap();
        let Value::Set(s) = v else { panic!() };
        assert_eq!(s.len(), 3);
        // HSET h a 1 (listpack)
        let v = restore(&hex("100c0c000000020081610201 01ff0a0084a693e8aa17e4db"
            .replace(' ', "")
            .as_str()))
        .unwrap();
        let Value::Hash(h) = v else { panic!() };
        assert_eq!(&h.get(&b"a"[..]).unwrap()[..], b"1");
        // ZADD z 1 a 2.5 b (listpack)
        let v = restore(&hex(
            "1114140000000400816102010181620283322e3504ff0a00d44c6ea4f644d9d7",
        ))
        .unwrap();
        let Value::ZSet(z) = v else { panic!() };
        assert_eq!(z.score(b"b"), Some(2.5));
        // RPUSH l a b (quicklist 2)
        let v = restore(&hex(
            "1201020d0d00000002008161028162 02ff0a0068eb0a891341bbb1"
                .replace(' ', "")
                .as_str(),
        ))
        .unwrap();
        let Value::List(l) = v else { panic!() };
        assert_eq!(l.len(), 2);
        // 50 x's, LZF-compressed
        let v = restore(&hex("00c30932017878e0250001787 80a00bcb80bdda0706be7"
            .replace(' ', "")
            .as_str()))
        .unwrap();
        assert_eq!(v, Value::Str(vec![b'x'; 50].into()));
        // a checksum error
        let mut bad = hex("00c240e201000a00432647f443197283");
        assert!(restore(&bad).is_ok());
        bad[2] ^= 1;
        assert_eq!(restore(&bad), Err(RestoreError::VersionOrChecksum));
    }

    #[test]
    fn dump_round_trips() {
        let mut z = ZSet::default();
        z.insert(b"a", 1.5);
        z.insert(b"b", f64::INFINITY);
        for v in [
            Value::str(b"hello"),
            Value::str(b"-123"),
            Value::str(b"70000"),
            Value::str(&[7u8; 20000]),
            Value::ZSet(Box::new(z)),
        ] {
            assert_eq!(restore(&dump(&v)).unwrap(), v);
        }
    }
}
