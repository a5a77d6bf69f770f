//! DEBUG DIGEST and DEBUG DIGEST-VALUE: Redis 7.0's dataset digest
//! (debug.c: `mixDigest`/`xorDigest` over SHA1), byte for byte, so the same
//! data set gives the same digest in memlog and in redis-server.
//!
//! Unordered collections (sets, hashes, sorted sets) are combined with XOR,
//! so their iteration order does not matter; lists and key/value pairs are
//! mixed in order.

use crate::keyspace::{Db, Keyspace, Value};

/// A SHA1 implementation (FIPS 180-1); small enough not to need a crate.
pub struct Sha1 {
    h: [u32; 5],
    buf: [u8; 64],
    buf_len: usize,
    total: u64,
}

impl Default for Sha1 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha1 {
    pub fn new() -> Self {
        Self {
            h: [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0],
            buf: [0; 64],
            buf_len: 0,
            total: 0,
        }
    }

    fn block(h: &mut [u32; 5], b: &[u8]) {
        let mut w = [0u32; 80];
        for (i, c) in b.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut bb, mut c, mut d, mut e] = *h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((bb & c) | (!bb & d), 0x5A827999),
                20..=39 => (bb ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((bb & c) | (bb & d) | (c & d), 0x8F1BBCDC),
                _ => (bb ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = bb.rotate_left(30);
            bb = a;
            a = t;
        }
        h[0] = h[0].wrapping_add(a);
        h[1] = h[1].wrapping_add(bb);
        h[2] = h[2].wrapping_add(c);
        h[3] = h[3].wrapping_add(d);
        h[4] = h[4].wrapping_add(e);
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.buf_len > 0 {
            let n = (64 - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + n].copy_from_slice(&data[..n]);
            self.buf_len += n;
            data = &data[n..];
            if self.buf_len == 64 {
                let b = self.buf;
                Self::block(&mut self.h, &b);
                self.buf_len = 0;
            }
        }
        while data.len() >= 64 {
            Self::block(&mut self.h, &data[..64]);
            data = &data[64..];
        }
        if !data.is_empty() {
            self.buf[..data.len()].copy_from_slice(data);
            self.buf_len = data.len();
        }
    }

    pub fn finish(mut self) -> [u8; 20] {
        let bits = self.total.wrapping_mul(8);
        self.update(&[0x80]);
        while self.buf_len != 56 {
            self.update(&[0]);
        }
        self.update(&bits.to_be_bytes());
        let mut out = [0u8; 20];
        for (i, v) in self.h.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
        }
        out
    }

    pub fn digest(data: &[u8]) -> [u8; 20] {
        let mut s = Sha1::new();
        s.update(data);
        s.finish()
    }
}

pub type Digest = [u8; 20];

/// debug.c `xorDigest`: digest ^= SHA1(data).
pub fn xor_digest(digest: &mut Digest, data: &[u8]) {
    let h = Sha1::digest(data);
    for (d, x) in digest.iter_mut().zip(h) {
        *d ^= x;
    }
}

/// debug.c `mixDigest`: digest = SHA1(digest ^ SHA1(data)).
pub fn mix_digest(digest: &mut Digest, data: &[u8]) {
    xor_digest(digest, data);
    *digest = Sha1::digest(&digest[..]);
}

/// Redis' OBJ_* type codes.
fn type_code(v: &Value) -> u32 {
    match v {
        Value::Str(_) => 0,
        Value::List(_) => 1,
        Value::Set(_) => 2,
        Value::ZSet(_) => 3,
        Value::Hash(_) => 4,
        Value::Stream(_) => 6,
    }
}

/// debug.c `xorObjectDigest`: mixes one value (and whether it has a TTL)
/// into `digest`.
pub fn object_digest(digest: &mut Digest, v: &Value, has_expire: bool) {
    mix_digest(digest, &type_code(v).to_be_bytes());
    match v {
        Value::Str(s) => mix_digest(digest, s),
        Value::List(l) => {
            for e in l.iter() {
                mix_digest(digest, e);
            }
        }
        Value::Set(s) => {
            for e in s.iter() {
                xor_digest(digest, e);
            }
        }
        Value::ZSet(z) => {
            for (m, score) in z.iter() {
                let mut ele = [0u8; 20];
                mix_digest(&mut ele, m);
                mix_digest(&mut ele, crate::numbers::fmt_double(score).as_bytes());
                xor_digest(digest, &ele);
            }
        }
        Value::Hash(h) => {
            for (k, val) in h.iter() {
                let mut ele = [0u8; 20];
                mix_digest(&mut ele, k);
                mix_digest(&mut ele, val);
                xor_digest(digest, &ele);
            }
        }
        Value::Stream(s) => {
            for (id, fields) in &s.entries {
                mix_digest(digest, format!("{}.{}", id.ms, id.seq).as_bytes());
                for f in fields.iter() {
                    mix_digest(digest, f);
                }
            }
        }
    }
    if has_expire {
        xor_digest(digest, b"!!expire!!");
    }
}

/// The digest of one key's value (DEBUG DIGEST-VALUE); zeros if absent.
pub fn value_digest(db: &Db, key: &[u8]) -> Digest {
    let mut d = [0u8; 20];
    if let Some(v) = db.value(key) {
        object_digest(&mut d, v, db.expire_of(key).is_some());
    }
    d
}

/// debug.c `computeDatasetDigest` (DEBUG DIGEST).
pub fn dataset_digest(ks: &Keyspace) -> Digest {
    let mut fin = [0u8; 20];
    for (j, db) in ks.dbs.iter().enumerate() {
        if db.data.is_empty() {
            continue;
        }
        mix_digest(&mut fin, &(j as u32).to_be_bytes());
        for (k, o) in db.data.iter() {
            let mut d = [0u8; 20];
            mix_digest(&mut d, k);
            object_digest(&mut d, &o.value, db.expire_of(k).is_some());
            xor_digest(&mut fin, &d);
        }
    }
    fin
}

/// Lower-case hex, as Redis prints digests.
pub fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha1_vectors() {
        assert_eq!(
            hex(&Sha1::digest(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            hex(&Sha1::digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        let long = vec![b'a'; 1000];
        let mut s = Sha1::new();
        for c in long.chunks(7) {
            s.update(c);
        }
        assert_eq!(hex(&s.finish()), hex(&Sha1::digest(&long)));
        assert_eq!(
            hex(&Sha1::digest(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn matches_redis() {
        // SET a 1 in db 0 (values from redis-server 7.0.15).
        let mut ks = Keyspace::new(16);
        ks.dbs[0].data.insert(
            b"a"[..].into(),
            crate::keyspace::Object::new(Value::str(b"1"), 0),
        );
        assert_eq!(
            hex(&dataset_digest(&ks)),
            "943d800368fb9c0e951138f1bc0e313ac769d91f"
        );
        assert_eq!(
            hex(&value_digest(&ks.dbs[0], b"a")),
            "b4fc66738120fba0b5aa500ab5c2bf89cea1c5da"
        );
    }

    fn e(s: &str) -> crate::keyspace::Elem {
        s.as_bytes().into()
    }

    fn k(s: &str) -> crate::keyspace::Key {
        s.as_bytes().into()
    }

    #[test]
    fn all_types_match_redis() {
        // Expected values from redis-server 7.0.15 after:
        // SET a 1; RPUSH l x y z; SADD s 1 2 3 abc; HSET h f v g w;
        // ZADD z 1 a 2.5 b 0.1 c; PEXPIREAT l 99999999999999
        let mut ks = Keyspace::new(16);
        let d = &mut ks.dbs[0];
        d.data
            .insert(k("a"), crate::keyspace::Object::new(Value::str(b"1"), 0));
        d.data.insert(
            k("l"),
            crate::keyspace::Object::new(
                Value::List(Box::new(["x", "y", "z"].iter().map(|x| e(x)).collect())),
                0,
            ),
        );
        d.data.insert(
            k("s"),
            crate::keyspace::Object::new(
                Value::Set(Box::new(
                    ["abc", "3", "1", "2"].iter().map(|x| e(x)).collect(),
                )),
                0,
            ),
        );
        let mut h = crate::keyspace::Map::default();
        h.insert(e("g"), e("w"));
        h.insert(e("f"), e("v"));
        d.data.insert(
            k("h"),
            crate::keyspace::Object::new(Value::Hash(Box::new(h)), 0),
        );
        let mut z = crate::keyspace::ZSet::default();
        z.insert(b"a", 1.0);
        z.insert(b"b", 2.5);
        z.insert(b"c", 0.1);
        d.data.insert(
            k("z"),
            crate::keyspace::Object::new(Value::ZSet(Box::new(z)), 0),
        );
        d.expires.insert(k("l"), 99999999999999);
        let d = &ks.dbs[0];
        assert_eq!(
            hex(&value_digest(d, b"l")),
            "e20bf92a7c7c27259b91099ca90cffd8ac84912b"
        );
        assert_eq!(
            hex(&value_digest(d, b"s")),
            "83df140916a75ae3c9b09e9f8894be8d27188adb"
        );
        assert_eq!(
            hex(&value_digest(d, b"h")),
            "d127864ed50239662bf61bafc9bda63c17da5b37"
        );
        assert_eq!(
            hex(&value_digest(d, b"z")),
            "ac3f88f74ce0703ae2c86046b8b8e8180f672692"
        );
        assert_eq!(
            hex(&dataset_digest(&ks)),
            "2b5d850cb9bb48ef6ec8cb4bf775bdfe94cf9dad"
        );
    }

    #[test]
    fn big_collections_match_redis() {
        // 200 members: hashtable / skiplist encodings in Redis.
        let mut ks = Keyspace::new(1);
        let mut s = crate::keyspace::Set::default();
        let mut h = crate::keyspace::Map::default();
        let mut z = crate::keyspace::ZSet::default();
        for i in 1..=200 {
            s.insert(e(&format!("m{i}")));
            h.insert(e(&format!("f{i}")), e(&format!("v{i}")));
            z.insert(format!("m{i}").as_bytes(), i as f64 + 0.5);
        }
        let d = &mut ks.dbs[0];
        d.data.insert(
            k("bs"),
            crate::keyspace::Object::new(Value::Set(Box::new(s)), 0),
        );
        d.data.insert(
            k("bh"),
            crate::keyspace::Object::new(Value::Hash(Box::new(h)), 0),
        );
        d.data.insert(
            k("bz"),
            crate::keyspace::Object::new(Value::ZSet(Box::new(z)), 0),
        );
        let d = &ks.dbs[0];
        assert_eq!(
            hex(&value_digest(d, b"bs")),
            "ceb10dff55893ab967c6da35a875f76b3b9d8b5d"
        );
        assert_eq!(
            hex(&value_digest(d, b"bh")),
            "4ac8fd5d71a5e2047779312636972fa1e4486c44"
        );
        assert_eq!(
            hex(&value_digest(d, b"bz")),
            "fa550dad25de63d32bb7f46ba48c2773d97c8c89"
        );
    }
}
