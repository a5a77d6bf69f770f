//! `maxmemory`: how much memory the data set takes, and what happens past
//! the limit (Redis' `maxmemory-policy`).
//!
//! What counts against the limit is the data set, estimated as INFO's
//! `used_memory_dataset` is (sampled value sizes, see
//! `command::server::dataset_bytes`) plus a fixed base: recomputed on the
//! 100 ms tick, raised by every write's argument bytes in between and
//! lowered by every eviction, so a burst of writes cannot get far past it.
//! The process as a whole (INFO `used_memory`, from the allocator when the
//! binary installs a probe, [`set_allocated_probe`]) also holds the
//! transaction log's memory when the log is embedded, and the clients'
//! buffers; like Redis' AOF and replication buffers, those are
//! `mem_not_counted_for_evict`.
//!
//! In the write path: before a command that may grow the data set runs
//! while over the limit, keys are evicted by the policy, each eviction a
//! `DEL` effect in the log like an expiry's; if nothing can be evicted
//! (`noeviction`, or no candidate key), the command is refused with Redis'
//! `-OOM` error instead, so a full server keeps serving reads and deletes
//! rather than growing until the kernel kills it.
//!
//! The LRU and LFU policies pick by the keys' access clocks
//! (`keyspace::access`), sampled into a pool of candidates as in Redis.

use std::sync::OnceLock;

use rand::Rng;

use crate::keyspace::Keyspace;

/// Redis' `-OOM` reply.
pub const OOM_ERROR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

static PROBE: OnceLock<fn() -> Option<u64>> = OnceLock::new();

/// Installs the allocator's count of allocated bytes (the binary's job: the
/// engine does not choose the allocator).
pub fn set_allocated_probe(probe: fn() -> Option<u64>) {
    let _ = PROBE.set(probe);
}

/// `maxmemory-policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    #[default]
    NoEviction,
    AllKeysLru,
    AllKeysLfu,
    AllKeysRandom,
    VolatileLru,
    VolatileLfu,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        Some(match s.to_ascii_lowercase().as_str() {
            "noeviction" => Policy::NoEviction,
            "allkeys-lru" => Policy::AllKeysLru,
            "allkeys-lfu" => Policy::AllKeysLfu,
            "allkeys-random" => Policy::AllKeysRandom,
            "volatile-lru" => Policy::VolatileLru,
            "volatile-lfu" => Policy::VolatileLfu,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => return None,
        })
    }

    /// Keys' access clocks count uses (LFU) rather than time (LRU).
    pub fn lfu(self) -> bool {
        matches!(self, Policy::AllKeysLfu | Policy::VolatileLfu)
    }

    /// Keys are chosen by their access clocks (LRU or LFU).
    pub fn by_access(self) -> bool {
        matches!(
            self,
            Policy::AllKeysLru | Policy::AllKeysLfu | Policy::VolatileLru | Policy::VolatileLfu
        )
    }

    /// Only keys with a TTL are candidates.
    fn volatile(self) -> bool {
        matches!(
            self,
            Policy::VolatileLru
                | Policy::VolatileLfu
                | Policy::VolatileRandom
                | Policy::VolatileTtl
        )
    }
}

/// The limit, the policy and what counts against it.
#[derive(Debug, Default)]
pub struct Memory {
    /// `maxmemory` in bytes (0: no limit).
    pub max: u64,
    pub policy: Policy,
    /// `maxmemory-samples`.
    pub samples: usize,
    /// The data set's estimate plus the base, as of the last recount,
    /// adjusted by writes and evictions since.
    counted: u64,
    /// Keys evicted (INFO evicted_keys).
    pub evicted_keys: u64,
    /// The best eviction candidates sampled so far, best last (Redis'
    /// eviction pool; LRU, LFU and volatile-ttl).
    pool: Vec<Candidate>,
}

/// Redis' EVPOOL_SIZE.
const POOL_SIZE: usize = 16;

/// A key sampled for eviction, kept between evictions (Redis'
/// evictionPoolEntry): it may be gone by the time it is picked.
#[derive(Debug, Clone)]
struct Candidate {
    /// Higher is a better candidate.
    score: u64,
    db: usize,
    key: crate::keyspace::Key,
}

impl Memory {
    /// No limit, Redis' defaults.
    pub fn new() -> Self {
        Memory {
            samples: 5,
            ..Default::default()
        }
    }

    /// Recounts the data set (the 100 ms tick, CONFIG SET maxmemory).
    pub fn recount(&mut self, ks: &Keyspace) {
        self.counted = crate::command::server::used_memory(ks);
    }

    /// A write's argument bytes: at most what it adds, until the recount.
    pub fn grew(&mut self, bytes: u64) {
        self.counted = self.counted.saturating_add(bytes);
    }

    /// An evicted key's estimated size.
    pub fn freed(&mut self, bytes: u64) {
        self.counted = self.counted.saturating_sub(bytes);
    }

    /// What counts against the limit now.
    pub fn counted(&self) -> u64 {
        self.counted
    }

    /// Bytes over the limit (0: under it, or no limit).
    pub fn excess(&self) -> u64 {
        if self.max == 0 {
            return 0;
        }
        self.counted.saturating_sub(self.max)
    }

    /// The process's allocated bytes (INFO used_memory): the probe's
    /// reading, or what counts against the limit when there is no probe.
    pub fn process_bytes(&self, ks: &Keyspace) -> u64 {
        PROBE
            .get()
            .and_then(|probe| probe())
            .unwrap_or_else(|| crate::command::server::used_memory(ks))
    }

    /// Sets the policy; candidates kept for the last one go.
    pub fn set_policy(&mut self, policy: Policy) {
        if policy != self.policy {
            self.pool.clear();
        }
        self.policy = policy;
    }

    /// The next key to evict under the policy: (db, key), or `None` when no
    /// key is a candidate. The random policies pick any candidate; the
    /// others, as Redis' performEvictions, sample `maxmemory-samples` keys
    /// of every database into a pool of the best candidates seen so far
    /// (longest idle, least often used, or soonest to expire) and take the
    /// best one that still exists.
    pub fn victim(&mut self, ks: &Keyspace) -> Option<(usize, bytes::Bytes)> {
        let volatile = self.policy.volatile();
        let candidates = |db: &crate::keyspace::Db| {
            if volatile {
                db.expires.len()
            } else {
                db.data.len()
            }
        };
        if matches!(self.policy, Policy::AllKeysRandom | Policy::VolatileRandom) {
            let mut rng = rand::thread_rng();
            let dbs: Vec<usize> = (0..ks.dbs.len())
                .filter(|&i| candidates(&ks.dbs[i]) > 0)
                .collect();
            if dbs.is_empty() {
                return None;
            }
            let db = dbs[rng.gen_range(0..dbs.len())];
            let d = &ks.dbs[db];
            let i = rng.gen_range(0..candidates(d));
            let key = if volatile {
                d.expires.get_index(i).map(|(k, _)| k)
            } else {
                d.data.get_index(i).map(|(k, _)| k)
            }?;
            return Some((db, bytes::Bytes::copy_from_slice(key)));
        }
        loop {
            let mut total = 0;
            for (db, d) in ks.dbs.iter().enumerate() {
                let n = candidates(d);
                if n > 0 {
                    total += n;
                    self.sample_into_pool(ks, db);
                }
            }
            // Nothing sampled (a TTL left without its key): no candidate.
            if total == 0 || self.pool.is_empty() {
                return None;
            }
            // Best first; a candidate deleted since it was sampled is
            // dropped. Only when every one was gone is the pool filled again
            // (then it holds at least one key that exists).
            while let Some(c) = self.pool.pop() {
                let d = &ks.dbs[c.db];
                let exists = if volatile {
                    d.expires.contains_key(&c.key[..])
                } else {
                    d.data.contains_key(&c.key[..])
                };
                if exists {
                    return Some((c.db, bytes::Bytes::copy_from_slice(&c.key)));
                }
            }
        }
    }

    /// Redis' evictionPoolPopulate: samples database `db` and keeps the
    /// samples better than the pool's worst (all of them while it has
    /// room). The pool stays sorted, best candidate last.
    fn sample_into_pool(&mut self, ks: &Keyspace, db: usize) {
        let d = &ks.dbs[db];
        let volatile = self.policy.volatile();
        let n = if volatile {
            d.expires.len()
        } else {
            d.data.len()
        };
        let mut rng = rand::thread_rng();
        let samples = self.samples.max(1);
        for j in 0..samples.min(n) {
            let i = if n <= samples { j } else { rng.gen_range(0..n) };
            let (key, score) = if self.policy == Policy::VolatileTtl {
                let Some((k, &at)) = d.expires.get_index(i) else {
                    continue;
                };
                (k, u64::MAX - at.max(0) as u64)
            } else {
                let entry = if volatile {
                    d.expires
                        .get_index(i)
                        .and_then(|(k, _)| d.data.get_key_value(&k[..]))
                } else {
                    d.data.get_index(i)
                };
                let Some((k, o)) = entry else {
                    continue;
                };
                (k, ks.access.eviction_score(o.lru, ks.now_ms))
            };
            if self.pool.iter().any(|c| c.db == db && c.key == *key) {
                continue;
            }
            let k = self.pool.partition_point(|c| c.score < score);
            if self.pool.len() < POOL_SIZE {
                self.pool.insert(
                    k,
                    Candidate {
                        score,
                        db,
                        key: key.clone(),
                    },
                );
            } else if k > 0 {
                // Full: the worst candidate makes room.
                self.pool.remove(0);
                self.pool.insert(
                    k - 1,
                    Candidate {
                        score,
                        db,
                        key: key.clone(),
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyspace::Value;

    #[test]
    fn policies_parse_and_victims_follow_them() {
        assert_eq!(Policy::parse("ALLKEYS-LRU"), Some(Policy::AllKeysLru));
        assert_eq!(Policy::parse("bogus"), None);
        let mut ks = Keyspace::new(2);
        ks.set(0, b"persistent", Value::str(b"v"));
        ks.set(1, b"soon", Value::str(b"v"));
        ks.set(1, b"later", Value::str(b"v"));
        ks.dbs[1].expires.insert(b"soon"[..].into(), 1);
        ks.dbs[1].expires.insert(b"later"[..].into(), 2);
        let mut m = Memory::new();
        m.policy = Policy::VolatileTtl;
        m.samples = 10;
        assert_eq!(m.victim(&ks), Some((1, bytes::Bytes::from_static(b"soon"))));
        m.policy = Policy::VolatileRandom;
        assert!(m.victim(&ks).is_some_and(|(db, _)| db == 1));
        m.policy = Policy::AllKeysRandom;
        assert!(m.victim(&ks).is_some());
        ks.dbs[1].expires.clear();
        m.policy = Policy::VolatileLru;
        assert_eq!(m.victim(&ks), None);
    }

    #[test]
    fn lru_and_lfu_victims_are_the_coldest_keys_sampled_in_order() {
        let mut ks = Keyspace::new(2);
        let now = ks.now_ms;
        for i in 0..40 {
            ks.set(i % 2, format!("k{i}").as_bytes(), Value::str(b"v"));
        }
        let mut m = Memory::new();
        // Every key is sampled: the pool holds the true coldest.
        m.samples = 100;
        for lfu in [false, true] {
            ks.access.lfu = lfu;
            m.set_policy(if lfu {
                Policy::AllKeysLfu
            } else {
                Policy::AllKeysLru
            });
            for i in 0..40u32 {
                let lru = if lfu {
                    ks.access.restored(Some(10 + i as u8), None, now)
                } else {
                    ks.access.restored(None, Some(i64::from(1000 - i)), now)
                };
                ks.set_access_clock((i % 2) as usize, format!("k{i}").as_bytes(), lru.unwrap());
            }
            for i in 0..20 {
                let (db, key) = m.victim(&ks).expect("a victim");
                assert_eq!(
                    (db, &key[..]),
                    (i % 2, format!("k{i}").as_bytes()),
                    "lfu {lfu}"
                );
                ks.remove(db, &key);
            }
            for i in 0..20 {
                ks.set(i % 2, format!("k{i}").as_bytes(), Value::str(b"v"));
            }
        }
        // Keys deleted after they were sampled are skipped.
        m.set_policy(Policy::AllKeysLru);
        ks.access.lfu = false;
        assert!(m.victim(&ks).is_some());
        for db in 0..2 {
            ks.dbs[db].data.clear();
        }
        assert_eq!(m.victim(&ks), None);
    }
}
