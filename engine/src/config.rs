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
    /// An octal number up to this (`unixsocketperm`), shown in octal.
    Octal(i64),
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
    // Kept so that a redis.conf loads and CONFIG GET/SET answer as Redis,
    // but with nothing in memlog to act on (docs/compatibility.md lists
    // them): defragmentation, RDB/AOF file details (memlog's files are its
    // log and snapshots), replication and cluster tuning, process knobs.
    (
        "acl-pubsub-default",
        "resetchannels",
        Kind::Enum(&["allchannels", "resetchannels"]),
    ),
    ("activedefrag", "no", Kind::Bool),
    ("active-defrag-cycle-max", "25", Kind::IntIn(1, 99)),
    ("active-defrag-cycle-min", "1", Kind::IntIn(1, 99)),
    (
        "active-defrag-ignore-bytes",
        "104857600",
        Kind::MemoryIn(1, i64::MAX as u64),
    ),
    (
        "active-defrag-max-scan-fields",
        "1000",
        Kind::IntIn(1, i64::MAX),
    ),
    ("active-defrag-threshold-lower", "10", Kind::IntIn(0, 1000)),
    ("active-defrag-threshold-upper", "100", Kind::IntIn(0, 1000)),
    ("aof-disable-auto-gc", "no", Kind::Bool),
    ("aof-load-truncated", "yes", Kind::Bool),
    ("aof-rewrite-incremental-fsync", "yes", Kind::Bool),
    ("aof-timestamp-enabled", "no", Kind::Bool),
    ("no-appendfsync-on-rewrite", "no", Kind::Bool),
    ("rdbcompression", "yes", Kind::Bool),
    ("rdb-del-sync-files", "no", Kind::Bool),
    ("rdb-save-incremental-fsync", "yes", Kind::Bool),
    ("stop-writes-on-bgsave-error", "yes", Kind::Bool),
    ("bind-source-addr", "", Kind::Str),
    ("cluster-allow-pubsubshard-when-down", "yes", Kind::Bool),
    ("cluster-allow-reads-when-down", "no", Kind::Bool),
    ("cluster-allow-replica-migration", "yes", Kind::Bool),
    ("cluster-announce-bus-port", "0", Kind::IntIn(0, 65535)),
    ("cluster-announce-hostname", "", Kind::Str),
    ("cluster-announce-ip", "", Kind::Str),
    ("cluster-announce-port", "0", Kind::IntIn(0, 65535)),
    ("cluster-announce-tls-port", "0", Kind::IntIn(0, 65535)),
    ("cluster-link-sendbuf-limit", "0", Kind::Memory),
    (
        "cluster-migration-barrier",
        "1",
        Kind::IntIn(0, i32::MAX as i64),
    ),
    ("cluster-node-timeout", "15000", Kind::IntIn(0, i64::MAX)),
    (
        "cluster-preferred-endpoint-type",
        "ip",
        Kind::Enum(&["ip", "hostname", "unknown-endpoint"]),
    ),
    ("cluster-replica-no-failover", "no", Kind::Bool),
    (
        "cluster-replica-validity-factor",
        "10",
        Kind::IntIn(0, i32::MAX as i64),
    ),
    ("cluster-require-full-coverage", "yes", Kind::Bool),
    ("crash-log-enabled", "yes", Kind::Bool),
    ("crash-memcheck-enabled", "yes", Kind::Bool),
    ("ignore-warnings", "", Kind::Str),
    ("jemalloc-bg-thread", "yes", Kind::Bool),
    (
        "oom-score-adj",
        "no",
        Kind::Enum(&["no", "yes", "relative", "absolute"]),
    ),
    ("oom-score-adj-values", "0 200 800", Kind::Str),
    (
        "proc-title-template",
        "{title} {listen-addr} {server-mode}",
        Kind::Str,
    ),
    (
        "propagation-error-behavior",
        "ignore",
        Kind::Enum(&["ignore", "panic", "panic-on-replicas"]),
    ),
    ("repl-disable-tcp-nodelay", "no", Kind::Bool),
    (
        "repl-diskless-load",
        "disabled",
        Kind::Enum(&["disabled", "on-empty-db", "swapdb"]),
    ),
    ("repl-diskless-sync", "yes", Kind::Bool),
    (
        "repl-diskless-sync-delay",
        "5",
        Kind::IntIn(0, i32::MAX as i64),
    ),
    (
        "repl-diskless-sync-max-replicas",
        "0",
        Kind::IntIn(0, i32::MAX as i64),
    ),
    ("replica-announce-ip", "", Kind::Str),
    ("replica-announce-port", "0", Kind::IntIn(0, 65535)),
    ("replica-announced", "yes", Kind::Bool),
    ("replica-ignore-disk-write-errors", "no", Kind::Bool),
    ("replica-ignore-maxmemory", "yes", Kind::Bool),
    ("replica-lazy-flush", "no", Kind::Bool),
    ("replica-priority", "100", Kind::IntIn(0, i32::MAX as i64)),
    ("shutdown-on-sigint", "default", Kind::Str),
    ("shutdown-on-sigterm", "default", Kind::Str),
    ("shutdown-timeout", "10", Kind::IntIn(0, i32::MAX as i64)),
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
    ("cluster-slave-no-failover", "cluster-replica-no-failover"),
    (
        "cluster-slave-validity-factor",
        "cluster-replica-validity-factor",
    ),
    ("slave-announce-ip", "replica-announce-ip"),
    ("slave-announce-port", "replica-announce-port"),
    ("slave-ignore-maxmemory", "replica-ignore-maxmemory"),
    ("slave-lazy-flush", "replica-lazy-flush"),
    ("slave-priority", "replica-priority"),
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
    ("cluster-port", "0"),
    ("disable-thp", "yes"),
    ("enable-module-command", "no"),
    ("io-threads-do-reads", "no"),
    ("rdbchecksum", "yes"),
    ("socket-mark-id", "0"),
    ("syslog-facility", "local0"),
    ("syslog-ident", "redis"),
    ("unixsocketperm", "0"),
    ("server_cpulist", ""),
    ("bio_cpulist", ""),
    ("aof_rewrite_cpulist", ""),
    ("bgsave_cpulist", ""),
    // Set at startup only (`STARTUP`).
    ("tcp-backlog", "511"),
];

/// The fixed parameters a configuration file or `--name value` option may
/// still set, because the server acts on them as it starts: the listen
/// backlog and Unix domain socket (`server::listen_unix`), and what the
/// binary does before it serves (it daemonizes, writes its pid file and
/// opens its log file: memlog/src/main.rs).
const STARTUP: &[(&str, Kind)] = &[
    ("tcp-backlog", Kind::IntIn(0, i32::MAX as i64)),
    ("unixsocket", Kind::Str),
    ("unixsocketperm", Kind::Octal(0o777)),
    ("daemonize", Kind::Bool),
    ("pidfile", Kind::Str),
    ("logfile", Kind::Str),
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
        "save"
            | "client-output-buffer-limit"
            | "latency-tracking-info-percentiles"
            | "oom-score-adj-values"
            | "shutdown-on-sigint"
            | "shutdown-on-sigterm"
    )
}

/// Whether a parameter is fixed when the server starts (CONFIG SET refuses
/// it; a configuration file may set it: [`Config::set_at_startup`]).
pub fn is_fixed(name: &str) -> bool {
    let name = canonical(name);
    IMMUTABLE.iter().any(|(n, _)| *n == name)
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
        // Also fixed at startup: how many databases, how many IO threads
        // (where the server listens moves: `server::move_listeners`).
        if IMMUTABLE.iter().any(|(n, _)| *n == lname)
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
        let normalized = normalize(name, kind, value)?;
        let normalized = check_special(key, normalized)
            .map_err(|why| ConfigError::Invalid(name.to_string(), why))?;
        self.values.insert(key, normalized);
        Ok(key)
    }

    /// Sets a parameter from the configuration file or a `--name value`
    /// option: as CONFIG SET, and also the fixed ones memlog acts on as it
    /// starts (`STARTUP`); the other fixed ones only with memlog's value.
    pub fn set_at_startup(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        let lname = canonical(name);
        let Some((key, current)) = IMMUTABLE.iter().find(|(n, _)| *n == lname) else {
            return self.set(name, value).map(|_| ());
        };
        match STARTUP.iter().find(|(n, _)| *n == lname) {
            Some((_, kind)) => {
                let v = normalize(name, *kind, value)?;
                self.values.insert(key, v);
                Ok(())
            }
            None if *current == value => Ok(()),
            None => Err(ConfigError::Invalid(
                name.to_string(),
                format!("memlog runs only with '{key} \"{current}\"'"),
            )),
        }
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

/// A value checked against its parameter's kind, as CONFIG SET stores it.
fn normalize(name: &str, kind: Kind, value: &str) -> Result<String, ConfigError> {
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
        Kind::Octal(max) => match i64::from_str_radix(value, 8) {
            Ok(n) if (0..=max).contains(&n) => format!("{n:o}"),
            Ok(_) => {
                return Err(ConfigError::Invalid(
                    name.to_string(),
                    format!("argument must be between 0 and {max} inclusive"),
                ))
            }
            Err(_) => {
                return Err(ConfigError::Invalid(
                    name.to_string(),
                    "argument couldn't be parsed into an integer".into(),
                ))
            }
        },
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
    Ok(normalized)
}

/// Whether a process title template is one Redis takes: each `{name}` a
/// variable it knows (`{{` stands for `{`), and something left once the
/// variables are expanded with an empty title and trimmed of spaces.
fn proc_title_template_valid(template: &str) -> bool {
    let mut expanded = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        expanded.push_str(&rest[..open]);
        let var = &rest[open + 1..];
        if let Some(after) = var.strip_prefix('{') {
            expanded.push('{');
            rest = after;
            continue;
        }
        let Some(close) = var.find('}') else {
            return false;
        };
        let value = match &var[..close] {
            "title" | "server-mode" | "unixsocket" => "",
            "listen-addr" => "addr:port",
            "config-file" => "-",
            "port" | "tls-port" => "0",
            _ => return false,
        };
        expanded.push_str(value);
        rest = &var[close + 1..];
    }
    expanded.push_str(rest);
    !expanded.trim_matches(' ').is_empty()
}

/// The checks Redis makes beyond a parameter's kind, with its reasons.
fn check_special(key: &str, value: String) -> Result<String, String> {
    match key {
        // What a Redis built without jemalloc's defragmentation answers.
        "activedefrag" if value == "yes" => Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution".into()),
        "oom-score-adj-values" => {
            let words: Vec<&str> = value.split(' ').collect();
            if words.len() != 3 {
                return Err("wrong number of arguments".into());
            }
            for w in &words {
                if !w.parse::<i64>().is_ok_and(|n| (-2000..=2000).contains(&n)) {
                    return Err(
                        "Invalid oom-score-adj-values, elements must be between -2000 and 2000."
                            .into(),
                    );
                }
            }
            Ok(value)
        }
        "proc-title-template" if !proc_title_template_valid(&value) => {
            Err("template format is invalid or contains unknown variables".into())
        }
        "shutdown-on-sigint" | "shutdown-on-sigterm" => {
            // Flags, as Redis' multi-argument enum: `default` alone, or any
            // of these with at most one of `save` and `nosave`.
            let words: Vec<String> = value
                .split(' ')
                .map(|w| w.to_ascii_lowercase())
                .collect();
            let known = words
                .iter()
                .all(|w| matches!(w.as_str(), "default" | "save" | "nosave" | "now" | "force"));
            if !known {
                return Err("argument(s) must be one of the following: default, save, nosave, now, force".into());
            }
            let has = |f: &str| words.iter().any(|w| w == f);
            if has("save") && has("nosave") {
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            let mut flags: Vec<&str> = ["save", "nosave", "now", "force"]
                .into_iter()
                .filter(|f| has(f))
                .collect();
            if flags.is_empty() {
                flags.push("default");
            }
            Ok(flags.join(" "))
        }
        _ => Ok(value),
    }
}
