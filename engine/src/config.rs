//! CONFIG GET/SET parameters.
//!
//! Every parameter Redis 7 clients and the test suite read or write is kept
//! here with Redis' default, so CONFIG GET returns what CONFIG SET stored,
//! even for encoding thresholds that memlog's data structures do not need.
//! Parameters the engine acts on are applied by `Engine::config_changed`.

use std::collections::BTreeMap;

/// How a parameter's value is checked on CONFIG SET.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Bool,
    Str,
    /// Memory sizes accept `1gb`, `100mb`, ...
    Memory,
    /// One of these names (any case; stored as written here), listed in
    /// Redis' order for its error message.
    Enum(&'static [&'static str]),
    /// Redis' `save` points: pairs of seconds (at least 1) and changes (at
    /// least 0).
    SavePoints,
}

/// (name, default, kind)
const PARAMS: &[(&str, &str, Kind)] = &[
    ("port", "6379", Kind::Int),
    ("bind", "127.0.0.1", Kind::Str),
    ("databases", "16", Kind::Int),
    ("requirepass", "", Kind::Str),
    ("masterauth", "", Kind::Str),
    ("masteruser", "", Kind::Str),
    ("proto-max-bulk-len", "536870912", Kind::Memory),
    ("client-query-buffer-limit", "1073741824", Kind::Memory),
    ("maxclients", "10000", Kind::Int),
    ("timeout", "0", Kind::Int),
    ("tcp-keepalive", "300", Kind::Int),
    ("hz", "10", Kind::Int),
    ("dynamic-hz", "yes", Kind::Bool),
    ("notify-keyspace-events", "", Kind::Str),
    ("maxmemory", "0", Kind::Memory),
    (
        "maxmemory-policy",
        "noeviction",
        Kind::Enum(&[
            "volatile-lru",
            "volatile-lfu",
            "volatile-random",
            "volatile-ttl",
            "allkeys-lru",
            "allkeys-lfu",
            "allkeys-random",
            "noeviction",
        ]),
    ),
    ("maxmemory-samples", "5", Kind::Int),
    ("maxmemory-clients", "0", Kind::Memory),
    ("maxmemory-eviction-tenacity", "10", Kind::Int),
    ("acllog-max-len", "128", Kind::Int),
    ("lazyfree-lazy-eviction", "no", Kind::Bool),
    ("lazyfree-lazy-expire", "no", Kind::Bool),
    ("lazyfree-lazy-server-del", "no", Kind::Bool),
    ("lazyfree-lazy-user-del", "no", Kind::Bool),
    ("lazyfree-lazy-user-flush", "no", Kind::Bool),
    ("hash-max-listpack-entries", "128", Kind::Int),
    ("hash-max-listpack-value", "64", Kind::Int),
    ("hash-max-ziplist-entries", "128", Kind::Int),
    ("hash-max-ziplist-value", "64", Kind::Int),
    ("list-max-listpack-size", "-2", Kind::Int),
    ("list-max-ziplist-size", "-2", Kind::Int),
    ("list-compress-depth", "0", Kind::Int),
    ("set-max-intset-entries", "512", Kind::Int),
    ("zset-max-listpack-entries", "128", Kind::Int),
    ("zset-max-listpack-value", "64", Kind::Int),
    ("zset-max-ziplist-entries", "128", Kind::Int),
    ("zset-max-ziplist-value", "64", Kind::Int),
    ("stream-node-max-bytes", "4096", Kind::Memory),
    ("stream-node-max-entries", "100", Kind::Int),
    ("hll-sparse-max-bytes", "3000", Kind::Memory),
    ("activerehashing", "yes", Kind::Bool),
    ("active-expire-effort", "1", Kind::Int),
    ("appendonly", "no", Kind::Bool),
    ("aof-use-rdb-preamble", "yes", Kind::Bool),
    (
        "appendfsync",
        "everysec",
        Kind::Enum(&["everysec", "always", "no"]),
    ),
    ("save", "", Kind::SavePoints),
    ("dir", ".", Kind::Str),
    ("dbfilename", "dump.rdb", Kind::Str),
    (
        "loglevel",
        "notice",
        Kind::Enum(&["debug", "verbose", "notice", "warning"]),
    ),
    ("slowlog-log-slower-than", "10000", Kind::Int),
    ("slowlog-max-len", "128", Kind::Int),
    ("latency-tracking", "yes", Kind::Bool),
    ("tracking-table-max-keys", "1000000", Kind::Int),
    ("latency-tracking-info-percentiles", "50 99 99.9", Kind::Str),
    ("lua-time-limit", "5000", Kind::Int),
    ("busy-reply-threshold", "5000", Kind::Int),
    ("io-threads", "1", Kind::Int),
    ("enable-debug-command", "yes", Kind::Str),
    ("enable-protected-configs", "no", Kind::Str),
    ("protected-mode", "no", Kind::Bool),
    ("replica-read-only", "yes", Kind::Bool),
    ("close-on-oom", "no", Kind::Bool),
    ("lfu-log-factor", "10", Kind::Int),
    ("lfu-decay-time", "1", Kind::Int),
    (
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Kind::Str,
    ),
    ("latency-monitor-threshold", "0", Kind::Int),
    ("set-proc-title", "yes", Kind::Bool),
    (
        "sanitize-dump-payload",
        "no",
        Kind::Enum(&["no", "yes", "clients"]),
    ),
];

/// A bad CONFIG SET value: Redis' wording goes around it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("Unknown option or number of arguments for CONFIG SET - '{0}'")]
    Unknown(String),
    #[error("CONFIG SET failed (possibly related to argument '{0}') - {1}")]
    Invalid(String, String),
}

/// The parameter store.
#[derive(Debug, Clone)]
pub struct Config {
    values: BTreeMap<&'static str, String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            values: PARAMS.iter().map(|(n, d, _)| (*n, d.to_string())).collect(),
        }
    }
}

/// Parses a memory size like Redis' memtoull: `100`, `1k`, `1kb`, `2gb`.
pub fn parse_memory(s: &str) -> Option<u64> {
    let l = s.to_ascii_lowercase();
    let (num, mul) = [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ]
    .iter()
    .find_map(|(suf, m)| l.strip_suffix(suf).map(|n| (n.to_string(), *m)))
    .unwrap_or((l.clone(), 1));
    num.parse::<u64>().ok()?.checked_mul(mul)
}

impl Config {
    fn kind(name: &str) -> Option<(&'static str, Kind)> {
        PARAMS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(n, _, k)| (*n, *k))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(|s| s.as_str())
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|v| v.parse().ok().or_else(|| parse_memory(v).map(|m| m as i64)))
            .unwrap_or(0)
    }

    /// Names and values matching a glob pattern, for CONFIG GET.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, &str)> {
        self.values
            .iter()
            .filter(|(k, _)| crate::glob::glob_match(pattern, k.as_bytes(), true))
            .map(|(k, v)| (*k, v.as_str()))
            .collect()
    }

    /// Validates and stores one parameter (the name is case-insensitive).
    pub fn set(&mut self, name: &str, value: &str) -> Result<&'static str, ConfigError> {
        let lname = name.to_ascii_lowercase();
        let Some((key, kind)) = Self::kind(&lname) else {
            return Err(ConfigError::Unknown(name.to_string()));
        };
        let normalized = match kind {
            Kind::Int => {
                if value.parse::<i64>().is_err() {
                    return Err(ConfigError::Invalid(
                        name.to_string(),
                        "argument couldn't be parsed into an integer".into(),
                    ));
                }
                value.to_string()
            }
            Kind::Memory => match parse_memory(value) {
                Some(v) => v.to_string(),
                None => {
                    return Err(ConfigError::Invalid(
                        name.to_string(),
                        "argument must be a memory value".into(),
                    ))
                }
            },
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "yes" | "no" => value.to_ascii_lowercase(),
                _ => {
                    return Err(ConfigError::Invalid(
                        name.to_string(),
                        "argument must be 'yes' or 'no'".into(),
                    ))
                }
            },
            Kind::Enum(names) => match names.iter().find(|n| n.eq_ignore_ascii_case(value)) {
                Some(n) => n.to_string(),
                None => {
                    return Err(ConfigError::Invalid(
                        name.to_string(),
                        format!(
                            "argument(s) must be one of the following: {}",
                            names.join(", ")
                        ),
                    ))
                }
            },
            Kind::SavePoints => {
                // Split on single spaces as Redis does (an empty piece
                // reads as 0).
                let nums: Vec<Option<i64>> = if value.is_empty() {
                    Vec::new()
                } else {
                    value
                        .split(' ')
                        .map(|n| {
                            if n.is_empty() {
                                Some(0)
                            } else {
                                n.parse().ok()
                            }
                        })
                        .collect()
                };
                let valid = nums.len().is_multiple_of(2)
                    && nums
                        .iter()
                        .enumerate()
                        .all(|(j, n)| n.is_some_and(|v| v >= if j % 2 == 0 { 1 } else { 0 }));
                if !valid {
                    return Err(ConfigError::Invalid(
                        name.to_string(),
                        "Invalid save parameters".into(),
                    ));
                }
                value.to_string()
            }
            Kind::Str => value.to_string(),
        };
        self.values.insert(key, normalized);
        Ok(key)
    }

    /// Stores a value without validation (used when the engine normalizes).
    pub fn set_raw(&mut self, name: &'static str, value: String) {
        self.values.insert(name, value);
    }
}
