//! `client-output-buffer-limit` for what the engine pushes to a connection
//! on its own (pub/sub messages, MONITOR lines): a subscriber or monitor
//! that stops reading must not make the server hold an ever-growing queue
//! for it. As in Redis, a client past its class's hard limit, or past its
//! soft limit for longer than the soft seconds, is disconnected, and
//! nothing more is queued for it. Subscribers are the `pubsub` class,
//! monitors the `replica` class; replies to a client's own commands are
//! bounded elsewhere (the connection stops reading while they pile up).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// One class's limits (0: none).
#[derive(Debug, Default)]
struct ClassLimit {
    hard: AtomicU64,
    soft: AtomicU64,
    soft_secs: AtomicU64,
}

impl ClassLimit {
    fn get(&self) -> [u64; 3] {
        [
            self.hard.load(Ordering::Relaxed),
            self.soft.load(Ordering::Relaxed),
            self.soft_secs.load(Ordering::Relaxed),
        ]
    }

    fn set(&self, [hard, soft, secs]: [u64; 3]) {
        self.hard.store(hard, Ordering::Relaxed);
        self.soft.store(soft, Ordering::Relaxed);
        self.soft_secs.store(secs, Ordering::Relaxed);
    }
}

/// The three classes, shared by every connection's [`PushQueue`] and
/// changed by CONFIG SET.
#[derive(Debug)]
pub struct OutputLimits {
    normal: ClassLimit,
    replica: ClassLimit,
    pubsub: ClassLimit,
}

/// Redis' default: `normal 0 0 0 slave 268435456 67108864 60 pubsub
/// 33554432 8388608 60`.
impl Default for OutputLimits {
    fn default() -> Self {
        let l = Self {
            normal: ClassLimit::default(),
            replica: ClassLimit::default(),
            pubsub: ClassLimit::default(),
        };
        l.replica.set([256 << 20, 64 << 20, 60]);
        l.pubsub.set([32 << 20, 8 << 20, 60]);
        l
    }
}

impl OutputLimits {
    /// Applies a CONFIG SET value (`class hard soft seconds ...`): the
    /// classes named change, the others keep their limits. Returns Redis'
    /// error text for a malformed value, changing nothing.
    pub fn apply(&self, value: &str) -> Result<(), &'static str> {
        let words: Vec<&str> = value.split_whitespace().collect();
        if !words.len().is_multiple_of(4) {
            return Err("Wrong number of arguments in buffer limit configuration.");
        }
        let mut updates = Vec::new();
        for w in words.chunks(4) {
            let class = match w[0].to_ascii_lowercase().as_str() {
                "normal" => &self.normal,
                "slave" | "replica" => &self.replica,
                "pubsub" => &self.pubsub,
                _ => return Err("Invalid client class specified in buffer limit configuration."),
            };
            let hard = crate::config::parse_memory(w[1]);
            let soft = crate::config::parse_memory(w[2]);
            let secs = w[3].parse::<u64>().ok();
            let (Some(hard), Some(soft), Some(secs)) = (hard, soft, secs) else {
                return Err(
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration.",
                );
            };
            updates.push((class, [hard, soft, secs]));
        }
        for (class, l) in updates {
            class.set(l);
        }
        Ok(())
    }

    /// As CONFIG GET shows it.
    pub fn describe(&self) -> String {
        let [a, b, c] = self.normal.get();
        let [d, e, f] = self.replica.get();
        let [g, h, i] = self.pubsub.get();
        format!("normal {a} {b} {c} slave {d} {e} {f} pubsub {g} {h} {i}")
    }
}

/// What one connection has been sent but not yet taken from its channel,
/// in bytes, and whether it went over its limit.
#[derive(Debug)]
pub struct PushQueue {
    limits: Arc<OutputLimits>,
    bytes: AtomicU64,
    /// Since when (unix ms) it has been over the soft limit; 0: it is not.
    soft_since_ms: AtomicI64,
    overflowed: AtomicBool,
    /// CLIENT KILL named it.
    killed: AtomicBool,
    /// Wakes the connection, even while it waits on a socket that does not
    /// drain, so it closes at once (past its limit, or killed).
    pub overflow: Notify,
}

impl PushQueue {
    pub fn new(limits: Arc<OutputLimits>) -> Self {
        Self {
            limits,
            bytes: AtomicU64::new(0),
            soft_since_ms: AtomicI64::new(0),
            overflowed: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            overflow: Notify::new(),
        }
    }

    /// Counts `size` more bytes queued for a client of the replica class
    /// (`monitor`) or the pubsub class. False once it is over its limit:
    /// the push must be dropped (the connection is being closed).
    pub fn admit(&self, size: u64, monitor: bool, now_ms: i64) -> bool {
        if self.overflowed.load(Ordering::Relaxed) {
            return false;
        }
        let total = self.bytes.fetch_add(size, Ordering::Relaxed) + size;
        let class = if monitor {
            &self.limits.replica
        } else {
            &self.limits.pubsub
        };
        let [hard, soft, secs] = class.get();
        let mut over = hard > 0 && total > hard;
        if soft > 0 && total > soft {
            let since = self.soft_since_ms.load(Ordering::Relaxed);
            if since == 0 {
                self.soft_since_ms.store(now_ms, Ordering::Relaxed);
            } else if now_ms - since > (secs as i64).saturating_mul(1000) {
                over = true;
            }
        } else {
            self.soft_since_ms.store(0, Ordering::Relaxed);
        }
        if over {
            self.overflowed.store(true, Ordering::Relaxed);
            self.overflow.notify_one();
            tracing::warn!(
                queued = total,
                "closing a client past its output buffer limit (client-output-buffer-limit)"
            );
            return false;
        }
        true
    }

    /// The connection took `size` bytes off its channel.
    pub fn taken(&self, size: u64) {
        self.bytes.fetch_sub(size, Ordering::Relaxed);
    }

    pub fn queued(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// CLIENT KILL: the connection closes even while it waits to write to
    /// a client that does not read (a kill queued behind that write would
    /// wait for good).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.overflow.notify_one();
    }

    /// Whether the connection must close now (see `overflowed`, `kill`).
    pub fn must_close(&self) -> bool {
        self.overflowed() || self.killed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_merge_by_class() {
        let l = OutputLimits::default();
        assert_eq!(
            l.describe(),
            "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        l.apply("normal 1mb 2mb 60 replica 3mb 4mb 70")
            .expect("valid");
        l.apply("pubsub 5mb 6mb 80").expect("valid");
        assert_eq!(
            l.describe(),
            "normal 1048576 2097152 60 slave 3145728 4194304 70 pubsub 5242880 6291456 80"
        );
        assert!(l.apply("wrong number").is_err());
        assert!(l.apply("master 10mb 10mb 60").is_err());
        assert!(l.apply("pubsub 10mb 10mb 60 normal 10mbs 10mb 60").is_err());
        assert!(l.describe().contains("pubsub 5242880 6291456 80"));
    }

    #[test]
    fn hard_and_soft_limits_close() {
        let limits = Arc::new(OutputLimits::default());
        limits.apply("pubsub 1000 100 2").expect("valid");
        let q = PushQueue::new(limits.clone());
        assert!(q.admit(50, false, 0));
        assert!(q.admit(60, false, 1_000)); // over soft since t=1s
        assert!(q.admit(10, false, 2_500));
        q.taken(100);
        assert!(q.admit(10, false, 3_500)); // back under: the clock restarts
        assert!(q.admit(100, false, 4_000));
        assert!(!q.admit(1, false, 6_001));
        assert!(q.overflowed());
        let q = PushQueue::new(limits);
        assert!(q.admit(1000, false, 0));
        assert!(!q.admit(1, false, 0));
        assert!(!q.admit(1, true, 0), "stays closed");
    }
}
