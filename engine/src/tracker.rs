//! The hazard tracker: which replies may leave before the log has
//! acknowledged the changes they depend on.
//!
//! Every effect record has a sequence number (see `effect`); the log client
//! acknowledges records in sequence order. The tracker remembers, per key,
//! the sequence number of the last unacknowledged change. A reply must wait
//! for:
//! - the command's own record, if it changed anything;
//! - the last unacknowledged change of every key it touched (a read of a key
//!   written but not yet durable must not reveal the write, nor may a failed
//!   `SET NX` reveal that the key exists);
//! - the newest record, for commands that observe the whole keyspace
//!   (DBSIZE, KEYS, SCAN, FLUSH*), and for any read after a whole-keyspace
//!   change (FLUSHALL, SWAPDB) until that change is acknowledged.
//!
//! A read of a key with no pending change answers at once; in that common
//! case the tracker costs one hash lookup and no allocation (none at all
//! while nothing is pending).

// foldhash (hashbrown's default), as for the keyspace's own maps: SipHash
// showed up in profiles of the write path.
use hashbrown::HashMap;

use crate::keyspace::Elem;

/// Entries the pending map may hold before acknowledged ones are swept out.
const MIN_SWEEP: usize = 1024;

/// Per-key pending sequence numbers.
///
/// An acknowledgement only moves `acked`: an entry at or below it counts as
/// absent, and such entries are swept out in bulk once the map has doubled
/// since the last sweep. Removing each key on its acknowledgement (and
/// keeping a list of keys per sequence number to do so) took ~5 % of the
/// server's CPU at pipeline 16.
#[derive(Debug)]
pub struct HazardTracker {
    /// Highest sequence number the log has acknowledged.
    acked: u64,
    /// Highest sequence number handed to the tracker.
    newest: u64,
    /// Key -> sequence number of its last change (pending if above `acked`).
    pending: HashMap<(u32, Elem), u64>,
    /// Size of `pending` that triggers the next sweep.
    sweep_at: usize,
    /// Last unacknowledged change of the whole keyspace (FLUSHALL, SWAPDB).
    global: u64,
}

impl Default for HazardTracker {
    fn default() -> Self {
        Self {
            acked: 0,
            newest: 0,
            pending: HashMap::new(),
            sweep_at: MIN_SWEEP,
            global: 0,
        }
    }
}

impl HazardTracker {
    pub fn acked(&self) -> u64 {
        self.acked
    }

    pub fn newest(&self) -> u64 {
        self.newest
    }

    /// Whether nothing is waiting for the log.
    pub fn is_idle(&self) -> bool {
        self.newest <= self.acked
    }

    /// Record `seq` is complete: it changed the keys given to
    /// [`HazardTracker::record_key`] and, if `whole_keyspace`, all keys.
    pub fn record(&mut self, seq: u64, whole_keyspace: bool) {
        debug_assert!(
            seq > self.newest,
            "sequence numbers are dense and increasing"
        );
        self.newest = seq;
        if whole_keyspace {
            self.global = seq;
        }
        if self.pending.len() >= self.sweep_at {
            let acked = self.acked;
            self.pending.retain(|_, s| *s > acked);
            self.sweep_at = (self.pending.len() * 2).max(MIN_SWEEP);
        }
    }

    /// Record `seq` (about to be completed by [`HazardTracker::record`])
    /// changed `key` of database `db`.
    pub fn record_key(&mut self, seq: u64, db: u32, key: &[u8]) {
        self.pending.insert((db, Elem::from(key)), seq);
    }

    /// The sequence number a reply touching `keys` must wait for (0: none).
    pub fn barrier<'a>(&self, keys: impl IntoIterator<Item = (u32, &'a [u8])>) -> u64 {
        let mut need = if self.global > self.acked {
            self.global
        } else {
            0
        };
        if self.is_idle() {
            return need;
        }
        for (db, k) in keys {
            // Borrowed lookup without building an owned key.
            if let Some(&s) = self.pending.get(&(db, Elem::from(k))) {
                if s > self.acked {
                    need = need.max(s);
                }
            }
        }
        need
    }

    /// The barrier for a command that observes the whole keyspace.
    pub fn whole_keyspace_barrier(&self) -> u64 {
        if self.newest > self.acked {
            self.newest
        } else {
            0
        }
    }

    /// The log acknowledged every record up to `seq`.
    pub fn ack(&mut self, seq: u64) {
        self.acked = self.acked.max(seq);
    }

    /// Forgets everything pending (after a failed append, once the engine
    /// has been rebuilt from the log): the next record starts after `seq`.
    pub fn reset(&mut self, seq: u64) {
        self.pending.clear();
        self.sweep_at = MIN_SWEEP;
        self.acked = seq;
        self.newest = seq;
        self.global = 0;
    }

    /// Keys with unacknowledged changes (for INFO and tests).
    pub fn pending_keys(&self) -> usize {
        self.pending.values().filter(|&&s| s > self.acked).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(t: &mut HazardTracker, seq: u64, keys: &[&str], whole: bool) {
        for k in keys {
            t.record_key(seq, 0, k.as_bytes());
        }
        t.record(seq, whole);
    }

    #[test]
    fn reads_wait_only_for_their_keys() {
        let mut t = HazardTracker::default();
        record(&mut t, 1, &["a"], false);
        record(&mut t, 2, &["b"], false);
        assert_eq!(t.barrier([(0, &b"a"[..])]), 1);
        assert_eq!(t.barrier([(0, &b"b"[..]), (0, &b"a"[..])]), 2);
        assert_eq!(t.barrier([(0, &b"c"[..])]), 0);
        assert_eq!(t.barrier([(1, &b"a"[..])]), 0, "another database");
        t.ack(1);
        assert_eq!(t.barrier([(0, &b"a"[..])]), 0);
        assert_eq!(t.barrier([(0, &b"b"[..])]), 2);
        t.ack(2);
        assert!(t.is_idle());
        assert_eq!(t.pending_keys(), 0);
    }

    #[test]
    fn a_later_write_keeps_the_key_pending() {
        let mut t = HazardTracker::default();
        record(&mut t, 1, &["a"], false);
        record(&mut t, 2, &["a"], false);
        t.ack(1);
        assert_eq!(t.barrier([(0, &b"a"[..])]), 2);
    }

    #[test]
    fn whole_keyspace_changes_hold_every_read() {
        let mut t = HazardTracker::default();
        record(&mut t, 1, &[], true);
        assert_eq!(t.barrier([(0, &b"x"[..])]), 1);
        assert_eq!(t.whole_keyspace_barrier(), 1);
        t.ack(1);
        assert_eq!(t.barrier([(0, &b"x"[..])]), 0);
        assert_eq!(t.whole_keyspace_barrier(), 0);
    }

    #[test]
    fn acknowledged_keys_are_swept_out_in_bulk() {
        let mut t = HazardTracker::default();
        let n = MIN_SWEEP as u64 * 3;
        for seq in 1..=n {
            record(&mut t, seq, &[&format!("k{seq}")], false);
            // The log keeps up to 10 records behind.
            t.ack(seq.saturating_sub(10));
        }
        assert!(t.pending.len() <= MIN_SWEEP * 2, "{}", t.pending.len());
        assert_eq!(t.pending_keys(), 10);
        assert_eq!(t.barrier([(0, format!("k{n}").as_bytes())]), n);
        assert_eq!(t.barrier([(0, &b"k1"[..])]), 0);
        t.ack(n);
        assert!(t.is_idle());
        assert_eq!(t.barrier([(0, format!("k{n}").as_bytes())]), 0);
    }

    #[test]
    fn failed_ranges_fail_exactly_their_records() {
        let p = LogProgress::default();
        assert!(!p.is_failed(1));
        p.set_acked(4);
        p.set_failed(5, 9);
        p.set_acked(12);
        p.set_failed(13, 13);
        // Nothing was executed past the acknowledged records: no range.
        p.set_failed(21, 20);
        p.set_failed(30, 40);
        let failed: Vec<u64> = (0..=45).filter(|&s| p.is_failed(s)).collect();
        let want: Vec<u64> = (5..=9).chain([13]).chain(30..=40).collect();
        assert_eq!(failed, want);
        assert_eq!(p.failed_from(), 5);
        assert!(p.settled(20) && p.settled(40) && !p.settled(41));
    }
}

/// How far the log has acknowledged, shared with connection tasks so they
/// can release parked replies without taking the engine lock.
///
/// A failed append fails a *range* of sequence numbers (every record that
/// was executed but not acknowledged when the log failed); numbering goes on
/// after the range once the engine is rebuilt, and a reply whose sequence
/// number lies in a failed range is answered with an error even though
/// `acked` has moved past it.
#[derive(Debug)]
pub struct LogProgress {
    acked: std::sync::atomic::AtomicU64,
    /// Start of the newest failed range (u64::MAX: none yet): the fast check.
    failed_from: std::sync::atomic::AtomicU64,
    /// Every failed range, inclusive, oldest first (numbering goes on after
    /// each, so they are sorted and apart: one per rebuild, searched by
    /// bisection at every parked reply's check).
    failed: parking_lot::RwLock<Vec<(u64, u64)>>,
    changed: tokio::sync::Notify,
}

impl Default for LogProgress {
    fn default() -> Self {
        Self {
            acked: std::sync::atomic::AtomicU64::new(0),
            failed_from: std::sync::atomic::AtomicU64::new(u64::MAX),
            failed: parking_lot::RwLock::new(Vec::new()),
            changed: tokio::sync::Notify::new(),
        }
    }
}

impl LogProgress {
    pub fn acked(&self) -> u64 {
        self.acked.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The lowest sequence number that ever failed (u64::MAX: none).
    pub fn failed_from(&self) -> u64 {
        self.failed.read().first().map(|r| r.0).unwrap_or(u64::MAX)
    }

    /// Whether the record `seq` will never be acknowledged.
    pub fn is_failed(&self, seq: u64) -> bool {
        if seq == 0 || self.failed_from.load(std::sync::atomic::Ordering::Acquire) == u64::MAX {
            return false;
        }
        let failed = self.failed.read();
        let after = failed.partition_point(|&(from, _)| from <= seq);
        after > 0 && seq <= failed[after - 1].1
    }

    /// Whether a reply parked on `seq` can leave (as itself or as an error).
    pub fn settled(&self, seq: u64) -> bool {
        seq <= self.acked() || self.is_failed(seq)
    }

    /// Publishes an acknowledgement and wakes waiting connections.
    pub fn set_acked(&self, seq: u64) {
        self.acked
            .fetch_max(seq, std::sync::atomic::Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Marks records `from..=until` as failed, then treats them as settled
    /// (`acked` moves to `until`) and wakes connections.
    pub fn set_failed(&self, from: u64, until: u64) {
        if from <= until {
            let mut failed = self.failed.write();
            // Never out of order (see `failed`); kept sorted if it were.
            let at = failed.partition_point(|&(f, _)| f <= from);
            failed.insert(at, (from, until));
            self.failed_from
                .store(from, std::sync::atomic::Ordering::Release);
        }
        self.acked
            .fetch_max(until, std::sync::atomic::Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Wakes waiting connections without an acknowledgement (the lease was
    /// renewed).
    pub fn notify(&self) {
        self.changed.notify_waiters();
    }

    /// Resolves at the next change (register before re-checking the state).
    pub fn changed(&self) -> tokio::sync::futures::Notified<'_> {
        self.changed.notified()
    }
}
