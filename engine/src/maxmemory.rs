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

    /// The next key to evict under the policy: (db, key), or `None` when no
    /// key is a candidate. Keys are sampled (`maxmemory-samples` per
    /// database); volatile-ttl takes the sampled key that expires first.
    /// memlog keeps no access times or counts, so the LRU and LFU policies
    /// evict a random candidate as the random ones do.
    pub fn victim(&self, ks: &Keyspace) -> Option<(usize, bytes::Bytes)> {
        let mut rng = rand::thread_rng();
        let volatile = self.policy.volatile();
        let candidates = |db: &crate::keyspace::Db| {
            if volatile {
                db.expires.len()
            } else {
                db.data.len()
            }
        };
        let dbs: Vec<usize> = (0..ks.dbs.len())
            .filter(|&i| candidates(&ks.dbs[i]) > 0)
            .collect();
        if dbs.is_empty() {
            return None;
        }
        if self.policy == Policy::VolatileTtl {
            let mut best: Option<(i64, usize, &[u8])> = None;
            for &db in &dbs {
                let expires = &ks.dbs[db].expires;
                for _ in 0..self.samples.max(1) {
                    let i = rng.gen_range(0..expires.len());
                    if let Some((k, &at)) = expires.get_index(i) {
                        if best.is_none_or(|(b, ..)| at < b) {
                            best = Some((at, db, &k[..]));
                        }
                    }
                }
            }
            return best.map(|(_, db, k)| (db, bytes::Bytes::copy_from_slice(k)));
        }
        let db = dbs[rng.gen_range(0..dbs.len())];
        let d = &ks.dbs[db];
        let i = rng.gen_range(0..candidates(d));
        let key = if volatile {
            d.expires.get_index(i).map(|(k, _)| k)
        } else {
            d.data.get_index(i).map(|(k, _)| k)
        }?;
        Some((db, bytes::Bytes::copy_from_slice(key)))
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
}
