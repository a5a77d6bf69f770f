//! Redis' RDB serialization of single values, as DUMP and RESTORE use it.
//!
//! A payload is `type byte + object + RDB version (u16 LE) + CRC64 (u64 LE)`,
//! the CRC being Redis' crc64 (Jones polynomial, reflected) of everything
//! before it. DUMP writes strings, lists as Redis 7.0 does (quicklist-2:
//! listpack nodes of up to 8 KB, see [`crate::listpack`]) and the plain
//! types for sets, hashes and zset-2, which every Redis since 2.x loads; its
//! strings, nodes included, LZF-compressed as Redis' are ([`crate::lzf`]).
//! RESTORE reads those plus the other compact encodings Redis 7.0 writes
//! (intset, hash/zset listpacks) and the older ziplist ones. Streams are
//! written and read in Redis 7.0's own stream format (listpacks of entries,
//! counters, consumer groups): see [`crate::rdb_stream`].

use std::collections::VecDeque;

use crate::keyspace::{Elem, Map, Set, Value, ZSet};
use crate::listpack::{int_elem, sign_extend};
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

/// Eight tables for slicing-by-8 (as Redis' crcspeed): `[0]` is the
/// bytewise table of the Jones polynomial (reflected), `[k]` advances a
/// byte's contribution by `k` more bytes.
const fn crc64_tables() -> [[u64; 256]; 8] {
    const POLY: u64 = 0x95ac_9329_ac4b_c9b5;
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u64;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static CRC64_TABLES: [[u64; 256]; 8] = crc64_tables();

/// Redis' crc64 (as in crc64.c), starting from `crc`: eight bytes per
/// step (a snapshot checksums every key's payload: the bytewise loop was
/// slower than compressing it).
pub fn crc64(mut crc: u64, data: &[u8]) -> u64 {
    let t = &CRC64_TABLES;
    let mut words = data.chunks_exact(8);
    for w in words.by_ref() {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        crc ^= u64::from_le_bytes(b);
        crc = t[7][(crc & 0xff) as usize]
            ^ t[6][((crc >> 8) & 0xff) as usize]
            ^ t[5][((crc >> 16) & 0xff) as usize]
            ^ t[4][((crc >> 24) & 0xff) as usize]
            ^ t[3][((crc >> 32) & 0xff) as usize]
            ^ t[2][((crc >> 40) & 0xff) as usize]
            ^ t[1][((crc >> 48) & 0xff) as usize]
            ^ t[0][(crc >> 56) as usize];
    }
    for &b in words.remainder() {
        crc = t[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
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

/// rdbSaveRawString: small integers in their integer encodings, strings
/// over 20 bytes LZF-compressed when that saves at least 4 bytes (Redis'
/// default `rdbcompression yes`), else raw.
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
    if s.len() > 20 {
        if let Some(c) = crate::lzf::compress(s, s.len() - 4) {
            out.push(0xc0 | ENC_LZF as u8);
            save_len(out, c.len() as u64);
            save_len(out, s.len() as u64);
            out.extend_from_slice(&c);
            return;
        }
    }
    save_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Redis' `list-max-listpack-size -2`: a quicklist node's listpack takes at
/// most 8 KB, unless one element alone is bigger.
const QUICKLIST_NODE_BYTES: usize = 8192;
/// Redis' SIZE_ESTIMATE_OVERHEAD: what a node is assumed to grow by beyond
/// the element's own length when deciding whether it still fits.
const QUICKLIST_ELEMENT_OVERHEAD: usize = 8;
/// QUICKLIST_NODE_CONTAINER_PACKED: a node holding a listpack.
const QUICKLIST_PACKED: u64 = 2;

/// A list as Redis 7 writes it (RDB_TYPE_LIST_QUICKLIST_2): its elements
/// in listpack nodes of up to 8 KB, filled as pushing them to the tail
/// would fill Redis' nodes, each saved as one (LZF-compressed) string. A
/// list of many similar elements compresses node by node, as in Redis' RDB.
fn save_quicklist(out: &mut Vec<u8>, l: &VecDeque<Elem>) {
    // First the nodes' element counts: the node count comes first.
    let mut nodes = Vec::new();
    let (mut bytes, mut count) = (0, 0);
    for e in l.iter() {
        if count > 0 && bytes + e.len() + QUICKLIST_ELEMENT_OVERHEAD > QUICKLIST_NODE_BYTES {
            nodes.push(count);
            count = 0;
        }
        if count == 0 {
            bytes = crate::listpack::EMPTY_BYTES;
        }
        bytes += crate::listpack::entry_size(e);
        count += 1;
    }
    if count > 0 {
        nodes.push(count);
    }
    save_len(out, nodes.len() as u64);
    let mut elems = l.iter();
    for n in nodes {
        let mut lp = crate::listpack::ListpackWriter::new();
        for e in elems.by_ref().take(n) {
            lp.push_str(e);
        }
        save_len(out, QUICKLIST_PACKED);
        save_string(out, &lp.finish());
    }
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
            out.push(TYPE_LIST_QUICKLIST_2);
            save_quicklist(&mut out, l);
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
                crate::lzf::decompress(c, ulen)
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
                        (TYPE_LIST_QUICKLIST_2, 2) => l.extend(crate::listpack::parse(&blob)?),
                        (TYPE_LIST_QUICKLIST, _) => l.extend(parse_ziplist(&blob)?),
                        _ => return None,
                    }
                }
                Value::List(Box::new(l))
            }
            TYPE_HASH_LISTPACK | TYPE_HASH_ZIPLIST => {
                let blob = self.load_string()?;
                let items = if t == TYPE_HASH_LISTPACK {
                    crate::listpack::parse(&blob)?
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
                    crate::listpack::parse(&blob)?
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
        // Eight bytes at a time agree with one at a time, at every length
        // and starting value.
        let bytewise = |mut crc: u64, data: &[u8]| {
            for &b in data {
                crc = CRC64_TABLES[0][((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
            }
            crc
        };
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for len in 0..data.len() {
            for start in [0, 0xe9c6d914c4b8d9ca] {
                assert_eq!(crc64(start, &data[..len]), bytewise(start, &data[..len]));
            }
        }
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
