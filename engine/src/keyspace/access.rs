//! Each key's access clock (Redis' 24-bit `robj.lru`): when the key was
//! last used (LRU) or how often it is used (LFU), for the `maxmemory-policy`
//! that evicts by it and for OBJECT IDLETIME / FREQ.
//!
//! Not part of the write path's effects: like Redis' AOF, the log does not
//! carry access times (evictions chosen by them are logged as plain DELs).
//! Under an LRU or LFU policy snapshots keep them, as Redis' RDB does: each
//! key's RESTORE carries IDLETIME or FREQ ([`AccessClock::snapshot_option`];
//! a collection written in chunks, on the RESTORE of its first chunk).
//! Replay touches no clock; keys the log creates start freshly used.
//!
//! The encodings are Redis 7.0's (evict.c): LRU is seconds modulo 2^24;
//! LFU is 16 bits of minutes (when the counter was last decremented) and an
//! 8-bit logarithmic counter that starts at 5, grows with probability
//! 1 / ((counter - 5) * lfu-log-factor + 1) per access and loses one per
//! `lfu-decay-time` minutes unused.

/// Redis' `LRU_CLOCK_MAX`.
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;
/// Redis' `LFU_INIT_VAL`: a new key's counter.
const LFU_INIT_VAL: u8 = 5;

/// How access clocks are kept: the policy's kind and the LFU parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessClock {
    /// An LFU `maxmemory-policy` is set (otherwise clocks are LRU, as in
    /// Redis whatever the policy).
    pub lfu: bool,
    /// `lfu-log-factor`.
    pub lfu_log_factor: u32,
    /// `lfu-decay-time`, minutes.
    pub lfu_decay_time: u32,
    /// An LRU or LFU `maxmemory-policy` evicts by the clocks: snapshots
    /// keep them then, as Redis' RDB files keep idle times or frequencies.
    pub in_snapshots: bool,
}

impl Default for AccessClock {
    fn default() -> Self {
        Self {
            lfu: false,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            in_snapshots: false,
        }
    }
}

/// Redis' `LRU_CLOCK()` at `now_ms`.
pub fn lru_clock(now_ms: i64) -> u32 {
    (now_ms.max(0) / 1000) as u32 & LRU_CLOCK_MAX
}

/// Redis' `LFUGetTimeInMinutes()`.
fn minutes(now_ms: i64) -> u32 {
    (now_ms.max(0) / 60_000) as u32 & 0xFFFF
}

impl AccessClock {
    /// The clock of a key created now (Redis' createObject).
    pub fn fresh(&self, now_ms: i64) -> u32 {
        if self.lfu {
            (minutes(now_ms) << 8) | u32::from(LFU_INIT_VAL)
        } else {
            lru_clock(now_ms)
        }
    }

    /// The clock after an access (Redis' lookupKey: updateLFU, or the
    /// current LRU clock).
    pub fn touched(&self, old: u32, now_ms: i64) -> u32 {
        if self.lfu {
            let counter = log_incr(self.frequency(old, now_ms), self.lfu_log_factor);
            (minutes(now_ms) << 8) | u32::from(counter)
        } else {
            lru_clock(now_ms)
        }
    }

    /// Milliseconds since the last access (Redis' estimateObjectIdleTime,
    /// wrapping once).
    pub fn idle_ms(&self, lru: u32, now_ms: i64) -> u64 {
        let now = lru_clock(now_ms);
        let secs = if now >= lru {
            now - lru
        } else {
            now + (LRU_CLOCK_MAX - lru)
        };
        u64::from(secs) * 1000
    }

    /// The LFU counter as of now, decayed by the minutes unused (Redis'
    /// LFUDecrAndReturn).
    pub fn frequency(&self, lru: u32, now_ms: i64) -> u8 {
        let ldt = lru >> 8;
        let counter = (lru & 255) as u8;
        let now = minutes(now_ms);
        let elapsed = if now >= ldt {
            now - ldt
        } else {
            65535 - ldt + now
        };
        if elapsed == 0 {
            return counter;
        }
        let periods = elapsed.checked_div(self.lfu_decay_time).unwrap_or(0);
        counter.saturating_sub(periods.min(255) as u8)
    }

    /// RESTORE's IDLETIME (seconds) or FREQ (Redis' objectSetLRUOrLFU):
    /// the clock they set, or `None` when the policy's kind ignores the
    /// one given.
    pub fn restored(&self, freq: Option<u8>, idle_secs: Option<i64>, now_ms: i64) -> Option<u32> {
        if self.lfu {
            return freq.map(|f| (minutes(now_ms) << 8) | u32::from(f));
        }
        let idle = idle_secs?;
        let now = i64::from(lru_clock(now_ms));
        let mut at = now.wrapping_sub(idle);
        // Before the clock's last wrap: estimateObjectIdleTime unwraps it.
        if at < 0 {
            at = at.wrapping_add(i64::from(LRU_CLOCK_MAX));
        }
        // Redis stores it in a 24-bit field.
        Some(at as u32 & LRU_CLOCK_MAX)
    }

    /// What a snapshot's RESTORE of the key adds to keep its clock:
    /// `FREQ n` under LFU, `IDLETIME seconds` under LRU (nothing unless
    /// `in_snapshots`).
    pub fn snapshot_option(&self, lru: u32, now_ms: i64) -> Option<(&'static str, u64)> {
        if !self.in_snapshots {
            None
        } else if self.lfu {
            Some(("FREQ", u64::from(self.frequency(lru, now_ms))))
        } else {
            Some(("IDLETIME", self.idle_ms(lru, now_ms) / 1000))
        }
    }

    /// How good an eviction candidate the key is, higher first: the idle
    /// time under LRU, 255 minus the frequency under LFU (Redis'
    /// evictionPoolPopulate).
    pub fn eviction_score(&self, lru: u32, now_ms: i64) -> u64 {
        if self.lfu {
            255 - u64::from(self.frequency(lru, now_ms))
        } else {
            self.idle_ms(lru, now_ms)
        }
    }
}

/// Redis' LFULogIncr.
fn log_incr(counter: u8, log_factor: u32) -> u8 {
    if counter == 255 {
        return 255;
    }
    // Up to the initial value the chance is 1: no draw.
    if counter <= LFU_INIT_VAL {
        return counter + 1;
    }
    let base = f64::from(counter.saturating_sub(LFU_INIT_VAL));
    let p = 1.0 / (base * f64::from(log_factor) + 1.0);
    if rand::random::<f64>() < p {
        counter + 1
    } else {
        counter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn lru_idle_time_counts_seconds_and_wraps_once() {
        let c = AccessClock::default();
        let t = 1_700_000_000_000;
        let lru = c.fresh(t);
        assert_eq!(c.idle_ms(lru, t), 0);
        assert_eq!(c.idle_ms(lru, t + 2_500), 2_000);
        assert_eq!(c.idle_ms(c.touched(lru, t + 9_000), t + 9_000), 0);
        // The clock wrapped since the access.
        assert_eq!(c.idle_ms(LRU_CLOCK_MAX - 1, 3_000), 4_000);
    }

    #[test]
    fn lfu_counters_start_at_five_grow_logarithmically_and_decay() {
        let c = AccessClock {
            lfu: true,
            ..AccessClock::default()
        };
        let t = 1_700_000_000_000;
        let mut lru = c.fresh(t);
        assert_eq!(c.frequency(lru, t), 5);
        for _ in 0..1000 {
            lru = c.touched(lru, t);
        }
        // Redis' table for lfu-log-factor 10: 1K hits reach ~18.
        let f = c.frequency(lru, t);
        assert!((10..40).contains(&f), "{f}");
        // One per minute unused (lfu-decay-time 1), never below 0.
        assert_eq!(c.frequency(lru, t + 3 * MIN), f - 3);
        assert_eq!(c.frequency(lru, t + 300 * MIN), 0);
        let never = AccessClock {
            lfu_decay_time: 0,
            ..c
        };
        assert_eq!(never.frequency(lru, t + 300 * MIN), f);
        // A key seen less often is the better candidate.
        assert!(c.eviction_score(c.fresh(t), t) > c.eviction_score(lru, t));
        assert_eq!(log_incr(255, 10), 255);
        assert_eq!(log_incr(0, 10), 1);
    }

    #[test]
    fn snapshots_keep_the_clock_the_policy_evicts_by() {
        let t = 1_700_000_000_000;
        let lru = AccessClock::default();
        let at = lru.restored(None, Some(42), t).unwrap();
        assert_eq!(lru.snapshot_option(at, t), None);
        let lru = AccessClock {
            in_snapshots: true,
            ..lru
        };
        assert_eq!(lru.snapshot_option(at, t), Some(("IDLETIME", 42)));
        let lfu = AccessClock { lfu: true, ..lru };
        let f = lfu.restored(Some(77), None, t).unwrap();
        assert_eq!(lfu.snapshot_option(f, t), Some(("FREQ", 77)));
    }

    #[test]
    fn restore_sets_the_clock_the_policy_keeps() {
        let lru = AccessClock::default();
        let lfu = AccessClock { lfu: true, ..lru };
        let t = 1_700_000_000_000;
        let at = lru.restored(Some(100), Some(1000), t).unwrap();
        assert_eq!(lru.idle_ms(at, t), 1_000_000);
        assert_eq!(lru.restored(Some(100), None, t), None);
        let f = lfu.restored(Some(100), Some(1000), t).unwrap();
        assert_eq!(lfu.frequency(f, t), 100);
        assert_eq!(lfu.restored(None, Some(1000), t), None);
        // Before the clock's last wrap: still exact.
        let now = i64::from(lru_clock(t));
        let at = lru.restored(None, Some(now + 1000), t).unwrap();
        assert_eq!(lru.idle_ms(at, t), 1000 * (now as u64 + 1000));
        // Further back than the clock reaches: what its 24 bits keep.
        let far = lru.restored(None, Some(i64::MAX), t).unwrap();
        assert!(far <= LRU_CLOCK_MAX);
    }
}
