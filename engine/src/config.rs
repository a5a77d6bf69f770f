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
    /// An integer within these bounds (inclusive).
    IntIn(i64, i64),
    Bool,
    Str,
    /// Memory sizes accept `1gb`, `100mb`, ..., up to `i64::MAX` bytes.
    Memory,
    /// A memory size within these bounds (inclusive): the limits a value
    /// outside them would lock every client out with (a `proto-max-bulk-len`
    /// of 0 refused every argument).
    MemoryIn(u64, u64),
    /// One of these names (any case; stored as written here), listed in
    /// Redis' order for its error message.
    Enum(&'static [&'static str]),
    /// Redis' `save` points: pairs of seconds (at least 1) and changes (at
    /// least 0).
    SavePoints,
    /// A memory size, or a percentage up to 100 (`maxmemory-clients`).
    MemoryOrPercent,
}

/// (name, default, kind)
const PARAMS: &[(&str, &str, Kind)] = &[
    ("port", "6379", Kind::IntIn(0, 65535)),
    ("bind", "127.0.0.1", Kind::Str),
    ("databases", "16", Kind::Int),
    ("requirepass", "", Kind::Str),
    ("masterauth", "", Kind::Str),
    ("masteruser", "", Kind::Str),
    (
        "proto-max-bulk-len",
        "536870912",
        Kind::MemoryIn(1 << 20, i64::MAX as u64),
    ),
    (
        "client-query-buffer-limit",
        "1073741824",
        Kind::MemoryIn(1 << 20, i64::MAX as u64),
    ),
    ("maxclients", "10000", Kind::IntIn(1, u32::MAX as i64)),
    ("timeout", "0", Kind::IntIn(0, i32::MAX as i64)),
    ("tcp-keepalive", "300", Kind::IntIn(0, i32::MAX as i64)),
    ("hz", "10", Kind::IntIn(0, i32::MAX as i64)),
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
    ("maxmemory-samples", "5", Kind::IntIn(1, i32::MAX as i64)),
    ("maxmemory-clients", "0", Kind::MemoryOrPercent),
    ("maxmemory-eviction-tenacity", "10", Kind::IntIn(0, 100)),
    ("acllog-max-len", "128", Kind::IntIn(0, i64::MAX)),
    ("lazyfree-lazy-eviction", "no", Kind::Bool),
    ("lazyfree-lazy-expire", "no", Kind::Bool),
    ("lazyfree-lazy-server-del", "no", Kind::Bool),
    ("lazyfree-lazy-user-del", "no", Kind::Bool),
    ("lazyfree-lazy-user-flush", "no", Kind::Bool),
    ("hash-max-listpack-entries", "512", Kind::IntIn(0, i64::MAX)),
    ("hash-max-listpack-value", "64", Kind::Memory),
    (
        "list-max-listpack-size",
        "-2",
        Kind::IntIn(i32::MIN as i64, i32::MAX as i64),
    ),
    ("list-compress-depth", "0", Kind::IntIn(0, i32::MAX as i64)),
    ("set-max-intset-entries", "512", Kind::IntIn(0, i64::MAX)),
    ("zset-max-listpack-entries", "128", Kind::IntIn(0, i64::MAX)),
    ("zset-max-listpack-value", "64", Kind::Memory),
    ("stream-node-max-bytes", "4096", Kind::Memory),
    ("stream-node-max-entries", "100", Kind::IntIn(0, i64::MAX)),
    ("hll-sparse-max-bytes", "3000", Kind::Memory),
    ("activerehashing", "yes", Kind::Bool),
    ("active-expire-effort", "1", Kind::IntIn(1, 10)),
    ("appendonly", "no", Kind::Bool),
    // memlog's append-only file is its log, always on: these take a
    // snapshot (and trim the log) as they would rewrite Redis' AOF.
    (
        "auto-aof-rewrite-percentage",
        "100",
        Kind::IntIn(0, i32::MAX as i64),
    ),
    ("auto-aof-rewrite-min-size", "67108864", Kind::Memory),
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
    (
        "slowlog-log-slower-than",
        "10000",
        Kind::IntIn(-1, i64::MAX),
    ),
    ("slowlog-max-len", "128", Kind::IntIn(0, i64::MAX)),
    ("latency-tracking", "yes", Kind::Bool),
    (
        "tracking-table-max-keys",
        "1000000",
        Kind::IntIn(0, i64::MAX),
    ),
    ("latency-tracking-info-percentiles", "50 99 99.9", Kind::Str),
    ("busy-reply-threshold", "5000", Kind::IntIn(0, i64::MAX)),
    // memlog's own: a script that has written and runs longer than this
    // (ms; 0: never) is stopped and undone by a rebuild from the log.
    (
        "written-script-time-limit",
        "60000",
        Kind::IntIn(0, i64::MAX),
    ),
    ("io-threads", "1", Kind::Int),
    ("enable-protected-configs", "no", Kind::Str),
    ("protected-mode", "no", Kind::Bool),
    ("replica-read-only", "yes", Kind::Bool),
    ("replica-serve-stale-data", "yes", Kind::Bool),
    (
        "repl-backlog-size",
        "1048576",
        Kind::MemoryIn(1, i64::MAX as u64),
    ),
    ("repl-backlog-ttl", "3600", Kind::IntIn(0, i64::MAX)),
    (
        "repl-ping-replica-period",
        "10",
        Kind::IntIn(1, i32::MAX as i64),
    ),
    ("repl-timeout", "60", Kind::IntIn(1, i32::MAX as i64)),
    (
        "min-replicas-to-write",
        "0",
        Kind::IntIn(0, i32::MAX as i64),
    ),
    (
        "min-replicas-max-lag",
        "10",
        Kind::IntIn(0, i32::MAX as i64),
    ),
    ("close-on-oom", "no", Kind::Bool),
    ("lfu-log-factor", "10", Kind::IntIn(0, i32::MAX as i64)),
    ("lfu-decay-time", "1", Kind::IntIn(0, i32::MAX as i64)),
    (
        "client-output-buffer-limit",
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
        Kind::Str,
    ),
    ("latency-monitor-threshold", "0", Kind::IntIn(0, i64::MAX)),
    ("set-proc-title", "yes", Kind::Bool),
    (
        "sanitize-dump-payload",
        "no",
        Kind::Enum(&["no", "yes", "clients"]),
    ),
];

/// The old names Redis 7 still takes, and shows beside the new ones in
/// CONFIG GET: (alias, parameter).
const ALIASES: &[(&str, &str)] = &[
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("lua-time-limit", "busy-reply-threshold"),
    ("slaveof", "replicaof"),
    ("slave-read-only", "replica-read-only"),
    ("slave-serve-stale-data", "replica-serve-stale-data"),
    ("repl-ping-slave-period", "repl-ping-replica-period"),
    ("min-slaves-to-write", "min-replicas-to-write"),
    ("min-slaves-max-lag", "min-replicas-max-lag"),
];

/// Parameters fixed at startup: CONFIG GET shows them, CONFIG SET refuses
/// them (Redis' IMMUTABLE_CONFIG), with memlog's values.
const IMMUTABLE: &[(&str, &str)] = &[
    ("daemonize", "no"),
    // `--enable-debug-command` (yes, no, local).
    ("enable-debug-command", "local"),
    ("supervised", "no"),
    ("pidfile", ""),
    ("logfile", ""),
    ("syslog-enabled", "no"),
    ("unixsocket", ""),
    ("aclfile", ""),
    ("always-show-logo", "no"),
    ("appendfilename", "appendonly.aof"),
    ("appenddirname", "appendonlydir"),
    ("cluster-enabled", "no"),
    ("cluster-config-file", "nodes.conf"),
    // A primary without replicas; REPLICAOF is the command for it.
    ("replicaof", ""),
];

/// Parameters CONFIG GET shows only when asked for by name, not through a
/// pattern (Redis' HIDDEN_CONFIG, debugging knobs): (name, default, kind).
const HIDDEN: &[(&str, &str, Kind)] = &[
    (
        "key-load-delay",
        "0",
        Kind::IntIn(i32::MIN as i64, i32::MAX as i64),
    ),
    (
        "rdb-key-save-delay",
        "0",
        Kind::IntIn(i32::MIN as i64, i32::MAX as i64),
    ),
];

/// Whether a parameter's value is a list of words, which a configuration
/// file gives as several arguments (`save 900 1 300 10`); the others take
/// one argument.
pub fn takes_words(name: &str) -> bool {
    matches!(
        canonical(name).as_str(),
        "save" | "client-output-buffer-limit" | "latency-tracking-info-percentiles"
    )
}

/// The parameter `name` (any case) stands for: itself, or what it aliases.
pub fn canonical(name: &str) -> String {
    let lname = name.to_ascii_lowercase();
    ALIASES
        .iter()
        .find(|(alias, _)| *alias == lname)
        .map(|(_, n)| n.to_string())
        .unwrap_or(lname)
}

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
            values: PARAMS
                .iter()
                .chain(HIDDEN)
                .map(|(n, d, _)| (*n, d.to_string()))
                .chain(IMMUTABLE.iter().map(|(n, d)| (*n, d.to_string())))
                .collect(),
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
            .chain(HIDDEN)
            .find(|(n, _, _)| *n == name)
            .map(|(n, _, k)| (*n, *k))
    }

    /// A parameter's value, by its name or an alias.
    pub fn get(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(v) => Some(v.as_str()),
            None => self
                .values
                .get(canonical(name).as_str())
                .map(|s| s.as_str()),
        }
    }

    pub fn get_i64(&self, name: &str) -> i64 {
        self.get(name)
            .and_then(|v| v.parse().ok().or_else(|| parse_memory(v).map(|m| m as i64)))
            .unwrap_or(0)
    }

    /// Names and values matching a glob pattern, for CONFIG GET: aliases
    /// too; hidden parameters only when named exactly.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(&'static str, &str)> {
        let hidden = |k: &str| HIDDEN.iter().any(|(n, _, _)| *n == k);
        let mut out: Vec<(&'static str, &str)> = self
            .values
            .iter()
            .filter(|(k, _)| {
                if hidden(k) {
                    pattern.eq_ignore_ascii_case(k.as_bytes())
                } else {
                    crate::glob::glob_match(pattern, k.as_bytes(), true)
                }
            })
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        for (alias, name) in ALIASES {
            if crate::glob::glob_match(pattern, alias.as_bytes(), true) {
                if let Some(v) = self.values.get(name) {
                    out.push((alias, v.as_str()));
                }
            }
        }
        out
    }

    /// Validates and stores one parameter (the name is case-insensitive).
    pub fn set(&mut self, name: &str, value: &str) -> Result<&'static str, ConfigError> {
        let lname = canonical(name);
        // Also fixed at startup: how many databases, how many IO threads,
        // and where the server listens (Redis moves its listener; memlog
        // does not, and said OK while it kept listening where it was: only
        // the value it has is taken, as a no-op).
        let moves_listener = matches!(lname.as_str(), "port" | "bind")
            && self.get(&lname).is_none_or(|v| v != value);
        if IMMUTABLE.iter().any(|(n, _)| *n == lname)
            || moves_listener
            || matches!(lname.as_str(), "databases" | "io-threads")
        {
            return Err(ConfigError::Invalid(
                name.to_string(),
                "can't set immutable config".into(),
            ));
        }
        let Some((key, kind)) = Self::kind(&lname) else {
            return Err(ConfigError::Unknown(name.to_string()));
        };
        let normalized = match kind {
            Kind::Int | Kind::IntIn(..) => {
                let Ok(n) = value.parse::<i64>() else {
                    return Err(ConfigError::Invalid(
                        name.to_string(),
                        "argument couldn't be parsed into an integer".into(),
                    ));
                };
                if let Kind::IntIn(min, max) = kind {
                    if !(min..=max).contains(&n) {
                        return Err(ConfigError::Invalid(
                            name.to_string(),
                            format!("argument must be between {min} and {max} inclusive"),
                        ));
                    }
                }
                value.to_string()
            }
            Kind::Memory | Kind::MemoryIn(..) => {
                let (min, max) = match kind {
                    Kind::MemoryIn(min, max) => (min, max),
                    _ => (0, i64::MAX as u64),
                };
                match parse_memory(value) {
                    Some(v) if (min..=max).contains(&v) => v.to_string(),
                    Some(_) => {
                        return Err(ConfigError::Invalid(
                            name.to_string(),
                            format!("argument must be between {min} and {max} inclusive"),
                        ))
                    }
                    None => {
                        return Err(ConfigError::Invalid(
                            name.to_string(),
                            "argument must be a memory value".into(),
                        ))
                    }
                }
            }
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
            Kind::MemoryOrPercent => match value.strip_suffix('%') {
                Some(p) => match p.parse::<u64>() {
                    Ok(n) if n <= 100 => value.to_string(),
                    Ok(_) => {
                        return Err(ConfigError::Invalid(
                            name.to_string(),
                            "percentage argument must be less or equal to 100".into(),
                        ))
                    }
                    Err(_) => {
                        return Err(ConfigError::Invalid(
                            name.to_string(),
                            "argument must be a memory or percent value".into(),
                        ))
                    }
                },
                None => match parse_memory(value) {
                    Some(v) => v.to_string(),
                    None => {
                        return Err(ConfigError::Invalid(
                            name.to_string(),
                            "argument must be a memory or percent value".into(),
                        ))
                    }
                },
            },
            Kind::Str => value.to_string(),
        };
        self.values.insert(key, normalized);
        Ok(key)
    }

    /// What CONFIG REWRITE writes: every parameter CONFIG SET can change
    /// (the startup ones and hidden knobs aside), its value, and whether
    /// that is the default.
    pub fn rewritable(&self) -> Vec<(&'static str, String, bool)> {
        PARAMS
            .iter()
            .filter(|(n, ..)| !matches!(*n, "port" | "bind" | "databases" | "io-threads" | "dir"))
            .map(|(n, d, _)| {
                let v = self.get(n).unwrap_or(d).to_string();
                let default = v == *d;
                (*n, v, default)
            })
            .collect()
    }

    /// Stores a value without validation (used when the engine normalizes).
    pub fn set_raw(&mut self, name: &'static str, value: String) {
        self.values.insert(name, value);
    }
}
