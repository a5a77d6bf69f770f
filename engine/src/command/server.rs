//! Server commands: FLUSHALL, FLUSHDB, DBSIZE, CONFIG, INFO, CLIENT, COMMAND,
//! DEBUG, TIME, SHUTDOWN, ...

use std::fmt::Write as _;

use bytes::Bytes;

use super::flags::*;
use super::{help, CommandSpec};
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::resp::ReplyBuf;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "flushall",
        -1,
        WRITE | WHOLE_KEYSPACE,
        (0, 0, 0),
        "server",
        flushall,
    ),
    CommandSpec::new(
        "flushdb",
        -1,
        WRITE | WHOLE_KEYSPACE,
        (0, 0, 0),
        "server",
        flushdb,
    ),
    CommandSpec::new(
        "dbsize",
        1,
        READONLY | FAST | WHOLE_KEYSPACE,
        (0, 0, 0),
        "server",
        dbsize,
    ),
    CommandSpec::new(
        "config",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        config,
    )
    .with_subcommands(CONFIG_SUBS),
    // WHOLE_KEYSPACE: INFO keyspace counts keys, so it waits for the newest record.
    CommandSpec::new(
        "info",
        -1,
        LOADING | STALE | WHOLE_KEYSPACE,
        (0, 0, 0),
        "server",
        info,
    ),
    CommandSpec::new("time", 1, LOADING | STALE | FAST, (0, 0, 0), "server", time),
    CommandSpec::new(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        (0, 0, 0),
        "server",
        lastsave,
    ),
    CommandSpec::new(
        "save",
        1,
        ADMIN | NOSCRIPT | NO_MULTI | NO_ASYNC_LOADING,
        (0, 0, 0),
        "server",
        save,
    ),
    CommandSpec::new(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        (0, 0, 0),
        "server",
        bgsave,
    ),
    CommandSpec::new(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT | NO_ASYNC_LOADING,
        (0, 0, 0),
        "server",
        bgrewriteaof,
    ),
    CommandSpec::new(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | NO_MULTI | ALLOW_BUSY,
        (0, 0, 0),
        "server",
        shutdown,
    ),
    CommandSpec::new("memory", -2, 0, (0, 0, 0), "server", memory).with_subcommands(MEMORY_SUBS),
    CommandSpec::new("lolwut", -1, READONLY | FAST, (0, 0, 0), "server", lolwut),
    CommandSpec::new(
        "slowlog",
        -2,
        ADMIN | LOADING | STALE,
        (0, 0, 0),
        "server",
        slowlog,
    )
    .with_subcommands(SLOWLOG_SUBS),
    CommandSpec::new(
        "latency",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        latency,
    )
    .with_subcommands(LATENCY_SUBS),
    CommandSpec::new(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        monitor,
    ),
    CommandSpec::new(
        "debug",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        (0, 0, 0),
        "server",
        debug,
    ),
];

/// Writes a HELP text: one status reply per line.
pub fn write_help(out: &mut ReplyBuf, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    out.array(lines.len());
    for l in lines {
        out.simple(l);
    }
}

/// Redis' addReplySubcommandSyntaxError: a known subcommand given the
/// wrong number of arguments, where its handler (not the table) checks them.
pub fn subcommand_syntax_error(args: &[Bytes], cmd: &str) -> CmdError {
    let sub = String::from_utf8_lossy(&args[1]);
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{sub}'. Try {} HELP.",
        cmd.to_ascii_uppercase()
    ))
}

/// Checks a container command's subcommand and its arity (Redis 7's
/// subcommand table): returns the lower-case subcommand name.
pub fn subcommand(
    args: &[Bytes],
    cmd: &str,
    table: &[(&'static str, i32)],
) -> Result<&'static str, CmdError> {
    let sub = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
    let Some(&(name, arity)) = table.iter().find(|(n, _)| *n == sub) else {
        return Err(CmdError::unknown_subcommand(cmd, &args[1]));
    };
    let argc = args.len();
    let ok = if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= (-arity) as usize
    };
    if !ok {
        return Err(CmdError::WrongArity(format!("{cmd}|{name}")));
    }
    Ok(name)
}

fn flush_option(ctx: &Ctx) -> CmdResult {
    match ctx.argc() {
        1 => Ok(()),
        2 if ctx.arg_is(1, "SYNC") || ctx.arg_is(1, "ASYNC") => Ok(()),
        _ => Err(CmdError::Syntax),
    }
}

/// Empties database `db`, with WATCH invalidation; returns keys removed.
pub fn flush_db(ctx: &mut Ctx, db: usize) -> usize {
    ctx.ks.touch_all_watched_in_db(db, None);
    ctx.ks.tracking_flushed |= ctx.ks.tracking_on;
    // Clients blocked on its keys look again (XREADGROUP then fails).
    let blocked: Vec<_> = ctx
        .ks
        .blocked_keys
        .keys()
        .filter(|(d, _)| *d == db)
        .cloned()
        .collect();
    ctx.ks.ready_keys.extend(blocked);
    let d = &mut ctx.ks.dbs[db];
    let n = d.data.len();
    d.data = Default::default();
    d.expires = Default::default();
    n
}

fn flushall(ctx: &mut Ctx) -> CmdResult {
    flush_option(ctx)?;
    let mut n = 0;
    for db in 0..ctx.ks.dbs.len() {
        n += flush_db(ctx, db);
    }
    ctx.ks.modified_many(n as u64);
    ctx.ks
        .propagate(0, vec![bytes::Bytes::from_static(b"FLUSHALL")]);
    ctx.out.ok();
    Ok(())
}

fn flushdb(ctx: &mut Ctx) -> CmdResult {
    flush_option(ctx)?;
    let db = ctx.db();
    let n = flush_db(ctx, db);
    ctx.ks.modified_many(n as u64);
    ctx.ks
        .propagate(db, vec![bytes::Bytes::from_static(b"FLUSHDB")]);
    ctx.out.ok();
    Ok(())
}

fn dbsize(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    ctx.out.int(ctx.ks.dbs[db].len() as i64);
    Ok(())
}

/// CLIENT SETNAME / HELLO SETNAME: no spaces, newlines or control characters.
pub fn validate_client_name(name: &[u8]) -> CmdResult {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}

/// MEMORY USAGE's key, where `argv` is one: the container has no key spec,
/// its `usage` subcommand reads argument 2 (COMMAND GETKEYS, tracking).
pub fn memory_usage_key(argv: &[Bytes]) -> Option<usize> {
    let is_usage = argv
        .first()
        .is_some_and(|c| c.eq_ignore_ascii_case(b"memory"))
        && argv
            .get(1)
            .is_some_and(|s| s.eq_ignore_ascii_case(b"usage"));
    (is_usage && argv.len() >= 3).then_some(2)
}

/// CONFIG SET's error for a value of `name` the server cannot take.
fn set_failed(name: &str, why: &str) -> CmdError {
    CmdError::err(crate::config::ConfigError::Invalid(name.into(), why.into()).to_string())
}

/// Applies a parameter the engine acts on after CONFIG SET stored it.
fn config_applied(ctx: &mut Ctx, name: &str) -> CmdResult {
    if name == "notify-keyspace-events" {
        let v = ctx.srv.config.get(name).unwrap_or("").to_string();
        let flags = crate::keyspace::notify::parse(v.as_bytes()).ok_or_else(|| {
            set_failed(
                name,
                "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
            )
        })?;
        ctx.ks.notify_flags = flags;
        ctx.srv.config.set_raw(
            "notify-keyspace-events",
            crate::keyspace::notify::to_string(flags),
        );
    }
    if name == "client-output-buffer-limit" {
        let v = ctx.srv.config.get(name).unwrap_or("").to_string();
        ctx.srv
            .output_limits
            .apply(&v)
            .map_err(|why| set_failed(name, why))?;
        let now = ctx.srv.output_limits.describe();
        ctx.srv.config.set_raw("client-output-buffer-limit", now);
    }
    if name == "latency-monitor-threshold" {
        ctx.srv.latency_threshold_ms = ctx.srv.config.get_i64(name);
    }
    if name == "latency-tracking" {
        ctx.srv.stats.latency_tracking = ctx.srv.config.get(name) == Some("yes");
    }
    if name == "latency-tracking-info-percentiles" {
        let v = ctx.srv.config.get(name).unwrap_or("").to_string();
        let ok = v.split_whitespace().all(|p| {
            crate::numbers::parse_f64(p.as_bytes()).is_some_and(|f| (0.0..=100.0).contains(&f))
        });
        if !ok {
            return Err(set_failed(
                name,
                "latency-tracking-info-percentiles must be a list of percentiles between 0 and 100",
            ));
        }
    }
    if name == "slowlog-log-slower-than" || name == "slowlog-max-len" {
        let c = &ctx.srv.config;
        let (t, n) = (
            c.get_i64("slowlog-log-slower-than"),
            c.get_i64("slowlog-max-len"),
        );
        ctx.srv.slowlog.configure(t, n);
    }
    if name == "maxmemory" {
        ctx.srv.memory.max = ctx.srv.config.get_i64(name).max(0) as u64;
        ctx.srv.memory.recount(ctx.ks);
    }
    if name == "maxmemory-policy" {
        let v = ctx.srv.config.get(name).unwrap_or("noeviction").to_string();
        let policy = crate::maxmemory::Policy::parse(&v).unwrap_or_default();
        ctx.srv.memory.set_policy(policy);
        ctx.ks.access.lfu = policy.lfu();
        ctx.ks.access.in_snapshots = policy.by_access();
    }
    if name == "lfu-log-factor" {
        ctx.ks.access.lfu_log_factor =
            ctx.srv.config.get_i64(name).clamp(0, u32::MAX.into()) as u32;
    }
    if name == "lfu-decay-time" {
        ctx.ks.access.lfu_decay_time =
            ctx.srv.config.get_i64(name).clamp(0, u32::MAX.into()) as u32;
    }
    if name == "min-replicas-to-write" {
        ctx.srv.min_replicas_to_write = ctx.srv.config.get_i64(name);
    }
    if name == "loglevel" {
        crate::log_level::set(ctx.srv.config.get(name).unwrap_or("notice"));
    }
    if name == "oom-score-adj" || name == "oom-score-adj-values" {
        let c = &ctx.srv.config;
        let mode = c.get("oom-score-adj").unwrap_or("no").to_string();
        let values = c.get("oom-score-adj-values").unwrap_or("").to_string();
        if let Err(e) = ctx.srv.oom_score.apply(&mode, &values) {
            tracing::warn!(error = %e, "unable to set oom_score_adj");
            return Err(set_failed(
                name,
                "Failed to set current oom_score_adj. Check server logs.",
            ));
        }
    }
    if name == "maxmemory-samples" {
        ctx.srv.memory.samples = ctx.srv.config.get_i64(name).max(1) as usize;
    }
    if name == "requirepass" {
        let v = ctx.srv.config.get(name).unwrap_or("").to_string();
        ctx.srv.requirepass = if v.is_empty() { None } else { Some(v) };
    }
    Ok(())
}

/// Puts the parameters a failed CONFIG SET changed back, and what the
/// server did with those it had applied, as Redis does.
fn roll_back(ctx: &mut Ctx, backup: crate::config::Config, applied: &[&'static str]) {
    ctx.srv.config = backup;
    for &n in applied {
        let _ = config_applied(ctx, n);
    }
}

/// CONFIG SET port / bind: the server listens there instead, with Redis'
/// errors when it cannot.
fn move_listeners(ctx: &mut Ctx, name: &str) -> CmdResult {
    let failed = |why: &str| set_failed(name, why);
    if ctx.srv.rebind.is_none() {
        return Err(failed("can't set immutable config"));
    }
    let bind = ctx.srv.config.get("bind").unwrap_or("").to_string();
    let port = ctx.srv.config.get_i64("port").clamp(0, 65535) as u16;
    crate::server::move_listeners(ctx.srv, &bind, port).map_err(|e| {
        tracing::warn!(%bind, port, error = %e, "CONFIG SET could not move the listeners");
        failed(if name == "port" {
            "Unable to listen on this port"
        } else {
            "Failed to bind to specified addresses."
        })
    })?;
    tracing::info!(%bind, port, "listening where CONFIG SET says");
    Ok(())
}

const CONFIG_SUBS: &[(&str, i32)] = &[
    ("get", -3),
    ("set", -4),
    ("resetstat", 2),
    ("rewrite", 2),
    ("help", 2),
];

fn config(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    match subcommand(args, "config", CONFIG_SUBS)? {
        "get" => {
            let mut pairs: Vec<(&'static str, String)> = Vec::new();
            for p in &args[2..] {
                for (k, v) in ctx.srv.config.matching(p) {
                    if !pairs.iter().any(|(n, _)| *n == k) {
                        pairs.push((k, v.to_string()));
                    }
                }
            }
            ctx.out.map(pairs.len());
            for (k, v) in pairs {
                ctx.out.bulk_str(k);
                ctx.out.bulk_str(&v);
            }
            Ok(())
        }
        "set" => {
            if !args.len().is_multiple_of(2) {
                return Err(CmdError::Syntax);
            }
            let backup = ctx.srv.config.clone();
            let mut names: Vec<&'static str> = Vec::new();
            for i in (2..args.len()).step_by(2) {
                let name = String::from_utf8_lossy(&args[i]).into_owned();
                let value = String::from_utf8_lossy(&args[i + 1]).into_owned();
                let r = ctx.srv.config.set(&name, &value).and_then(|k| {
                    if names.contains(&k) {
                        Err(crate::config::ConfigError::Invalid(
                            name.clone(),
                            "duplicate parameter".into(),
                        ))
                    } else {
                        Ok(k)
                    }
                });
                match r {
                    Ok(k) => names.push(k),
                    Err(e) => {
                        ctx.srv.config = backup;
                        return Err(CmdError::err(e.to_string()));
                    }
                }
            }
            for (i, &n) in names.iter().enumerate() {
                if let Err(e) = config_applied(ctx, n) {
                    roll_back(ctx, backup, &names[..i]);
                    return Err(e);
                }
            }
            // Once for both: the listeners move where port and bind say.
            let moved = names
                .iter()
                .find(|n| matches!(**n, "port" | "bind") && ctx.srv.config.get(n) != backup.get(n));
            if let Some(&name) = moved {
                if let Err(e) = move_listeners(ctx, name) {
                    roll_back(ctx, backup, &names);
                    return Err(e);
                }
            }
            ctx.out.ok();
            Ok(())
        }
        "resetstat" => {
            ctx.srv.stats.reset();
            ctx.ks.stat_expired_keys = 0;
            ctx.ks.stat_keyspace_hits = 0;
            ctx.ks.stat_keyspace_misses = 0;
            ctx.out.ok();
            Ok(())
        }
        "rewrite" => {
            let Some(path) = ctx.srv.config_file.clone() else {
                return Err(CmdError::err("The server is running without a config file"));
            };
            let params = ctx.srv.config.rewritable();
            let seq = REWRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let write = move || rewrite_in_order(&path, &params, seq);
            // Answered once the file is written and synced, as in Redis, but
            // off the engine thread (other clients go on meanwhile); inline
            // where the reply cannot wait (MULTI, scripts, no runtime).
            let runtime = tokio::runtime::Handle::try_current();
            match runtime {
                Ok(rt) if !ctx.client.in_exec && !ctx.client.in_script => {
                    let (reply, rx) = tokio::sync::oneshot::channel();
                    let task = rt.spawn_blocking(write);
                    rt.spawn(async move {
                        let bytes = match task.await.map_err(std::io::Error::other).and_then(|r| r)
                        {
                            Ok(()) => b"+OK\r\n".to_vec(),
                            Err(e) => format!("-{}\r\n", rewrite_failed(&e)).into_bytes(),
                        };
                        let _ = reply.send(crate::engine::ParkedReply { bytes, seq: 0 });
                    });
                    ctx.reply_later = Some(rx);
                    Ok(())
                }
                _ => match write() {
                    Ok(()) => {
                        ctx.out.ok();
                        Ok(())
                    }
                    Err(e) => Err(rewrite_failed(&e)),
                },
            }
        }
        _ => {
            write_help(ctx.out, help::CONFIG);
            Ok(())
        }
    }
}

/// CONFIG REWRITEs so far: each writes the parameters as they were when
/// it ran, and one that finds a later one written already leaves the file
/// to it (two can be under way at once).
static REWRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// The newest CONFIG REWRITE written, held while one writes.
static REWRITTEN: std::sync::Mutex<u64> = std::sync::Mutex::new(0);

fn rewrite_in_order(
    path: &std::path::Path,
    params: &[(&'static str, String, bool)],
    seq: u64,
) -> std::io::Result<()> {
    let mut written = REWRITTEN.lock().unwrap_or_else(|p| p.into_inner());
    if *written > seq {
        return Ok(());
    }
    crate::config_file::rewrite(path, params)?;
    *written = seq;
    Ok(())
}

fn rewrite_failed(e: &dyn std::fmt::Display) -> CmdError {
    CmdError::err(format!("Rewriting config file: {e}"))
}

// ---------------------------------------------------------------- INFO

/// INFO sections in output order, and whether "default" includes them.
const SECTIONS: &[(&str, bool)] = &[
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("errorstats", true),
    ("cluster", true),
    ("keyspace", true),
    ("commandstats", false),
    ("latencystats", false),
];

fn human_bytes(n: u64) -> String {
    let d = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if d < 1024.0 * 1024.0 {
        format!("{:.2}K", d / 1024.0)
    } else if d < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", d / (1024.0 * 1024.0))
    } else if d < 1024.0 * 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}G", d / (1024.0 * 1024.0 * 1024.0))
    } else {
        format!("{:.2}T", d / (1024.0 * 1024.0 * 1024.0 * 1024.0))
    }
}

/// Resident set size in bytes, from /proc (0 where unavailable).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// (user, system) CPU seconds of the process.
fn cpu_times() -> (f64, f64) {
    // SAFETY: getrusage only writes the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0.0);
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(ru.ru_utime), t(ru.ru_stime))
}

/// Bytes the data set takes, estimated from the values' sizes (exact for
/// small databases, sampled for large ones so INFO stays cheap).
pub fn dataset_bytes(ks: &crate::keyspace::Keyspace) -> u64 {
    const PER_KEY: usize = 56;
    let mut total = 0u64;
    for db in &ks.dbs {
        let n = db.data.len();
        if n == 0 {
            continue;
        }
        let size = |i: usize| {
            db.data
                .get_index(i)
                .map(|(k, o)| k.len() + o.value.heap_size() + PER_KEY)
                .unwrap_or(0) as u64
        };
        if n <= 4096 {
            total += (0..n).map(size).sum::<u64>();
        } else {
            let step = n / 1024;
            let sampled: u64 = (0..1024).map(|i| size(i * step)).sum();
            total += sampled * n as u64 / 1024;
        }
        total += (db.expires.len() * 32) as u64;
    }
    total
}

/// Baseline memory of an empty server, added to the data set estimate.
const BASE_MEMORY: u64 = 900 * 1024;

pub fn used_memory(ks: &crate::keyspace::Keyspace) -> u64 {
    BASE_MEMORY + dataset_bytes(ks)
}

fn section_text(ctx: &Ctx, name: &str, s: &mut String) {
    let now_ms = crate::keyspace::unix_ms();
    let srv = &*ctx.srv;
    let stats = &srv.stats;
    let nclients = ctx.clients.len() + 1;
    match name {
        "server" => {
            let uptime = srv.start.elapsed().as_secs();
            let _ = write!(
                s,
                "# Server\r\nredis_version:{}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\nredis_build_id:0\r\nredis_mode:standalone\r\nos:{} {}\r\narch_bits:{}\r\nmonotonic_clock:POSIX clock_gettime\r\nmultiplexing_api:epoll\r\natomicvar_api:c11-builtin\r\ngcc_version:0.0.0\r\nprocess_id:{}\r\nprocess_supervised:no\r\nrun_id:{}\r\ntcp_port:{}\r\nserver_time_usec:{}\r\nuptime_in_seconds:{}\r\nuptime_in_days:{}\r\nhz:{}\r\nconfigured_hz:{}\r\nlru_clock:{}\r\nexecutable:{}\r\nconfig_file:{}\r\nio_threads_active:0\r\n",
                crate::REDIS_VERSION,
                if std::env::consts::OS == "linux" { "Linux" } else { std::env::consts::OS },
                std::env::consts::ARCH,
                usize::BITS,
                std::process::id(),
                srv.run_id,
                srv.config.get("port").unwrap_or("6379"),
                now_ms * 1000,
                uptime,
                uptime / 86400,
                srv.config.get_i64("hz"),
                srv.config.get_i64("hz"),
                (now_ms / 1000) & ((1 << 24) - 1),
                std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                srv.config_file.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
            );
        }
        "clients" => {
            let _ = write!(
                s,
                "# Clients\r\nconnected_clients:{}\r\ncluster_connections:0\r\nmaxclients:{}\r\nclient_recent_max_input_buffer:0\r\nclient_recent_max_output_buffer:0\r\nblocked_clients:{}\r\ntracking_clients:{}\r\nclients_in_timeout_table:{}\r\n",
                nclients,
                srv.config.get_i64("maxclients"),
                srv.blocked_client_count(),
                srv.tracking.clients.len(),
                srv.blocked_client_count(),
            );
        }
        "memory" => {
            let used = ctx.srv.memory.process_bytes(ctx.ks);
            let rss = rss_bytes();
            let maxmemory = srv.config.get_i64("maxmemory").max(0) as u64;
            let dataset = dataset_bytes(ctx.ks);
            let _ = write!(
                s,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nused_memory_peak:{used}\r\nused_memory_peak_human:{}\r\nused_memory_peak_perc:100.00%\r\nused_memory_overhead:{BASE_MEMORY}\r\nused_memory_startup:{BASE_MEMORY}\r\nused_memory_dataset:{dataset}\r\nused_memory_dataset_perc:{:.2}%\r\nallocator_allocated:{used}\r\nallocator_active:{rss}\r\nallocator_resident:{rss}\r\ntotal_system_memory:0\r\ntotal_system_memory_human:0B\r\nused_memory_lua:31744\r\nused_memory_vm_eval:31744\r\nused_memory_lua_human:31.00K\r\nused_memory_scripts_eval:0\r\nnumber_of_cached_scripts:{}\r\nnumber_of_functions:{}\r\nnumber_of_libraries:{}\r\nused_memory_vm_functions:32768\r\nused_memory_vm_total:64512\r\nused_memory_vm_total_human:63.00K\r\nused_memory_functions:184\r\nused_memory_scripts:184\r\nused_memory_scripts_human:184B\r\nmaxmemory:{maxmemory}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nallocator_frag_ratio:1.00\r\nallocator_frag_bytes:0\r\nallocator_rss_ratio:1.00\r\nallocator_rss_bytes:0\r\nrss_overhead_ratio:1.00\r\nrss_overhead_bytes:0\r\nmem_fragmentation_ratio:{:.2}\r\nmem_fragmentation_bytes:{}\r\nmem_not_counted_for_evict:{}\r\nmem_replication_backlog:0\r\nmem_total_replication_buffers:0\r\nmem_clients_slaves:0\r\nmem_clients_normal:0\r\nmem_cluster_links:0\r\nmem_aof_buffer:0\r\nmem_allocator:jemalloc-5.3.0\r\nactive_defrag_running:0\r\nlazyfree_pending_objects:0\r\nlazyfreed_objects:0\r\n",
                human_bytes(used),
                human_bytes(rss),
                human_bytes(used),
                dataset as f64 * 100.0 / used.max(1) as f64,
                srv.scripting.len(),
                srv.functions.function_count(),
                srv.functions.library_count(),
                human_bytes(maxmemory),
                srv.config.get("maxmemory-policy").unwrap_or("noeviction"),
                rss as f64 / used.max(1) as f64,
                rss as i64 - used as i64,
                // What maxmemory does not count: the log's memory when it is
                // embedded, the clients' buffers (crate::maxmemory).
                used.saturating_sub(BASE_MEMORY + dataset),
            );
        }
        "persistence" => {
            let _ = write!(
                s,
                "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:-1\r\nrdb_current_bgsave_time_sec:-1\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:0\r\nrdb_last_load_keys_loaded:0\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\nmemlog_durable:{}\r\nmemlog_log_state:{}\r\nmemlog_lease_ms:{}\r\nmemlog_log_appends:{}\r\nmemlog_log_records:{}\r\nmemlog_log_resumes:{}\r\nmemlog_log_rebuilds:{}\r\nmemlog_log_bytes_since_snapshot:{}\r\nmemlog_snapshot_bytes:{}\r\n",
                ctx.ks.dirty,
                u8::from(srv.stats.snapshots_pending > 0),
                srv.lastsave_ms / 1000,
                if srv.stats.snapshot_failed { "err" } else { "ok" },
                srv.stats.snapshots_saved,
                u8::from(ctx.ks.effects.capture),
                srv.gate
                    .as_ref()
                    .map_or("off", |g| g.describe(std::time::Instant::now())),
                srv.gate.as_ref().map_or(0, |g| g.lease.as_millis()),
                srv.stats.log_appends,
                srv.stats.log_records,
                srv.stats.log_resumes,
                srv.stats.log_rebuilds,
                srv.stats.log_bytes_since_snapshot,
                srv.stats.snapshot_bytes,
            );
        }
        "stats" => {
            let _ = write!(
                s,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ninstantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:0\r\ntotal_net_output_bytes:0\r\ntotal_net_repl_input_bytes:0\r\ntotal_net_repl_output_bytes:0\r\ninstantaneous_input_kbps:0.00\r\ninstantaneous_output_kbps:0.00\r\ninstantaneous_input_repl_kbps:0.00\r\ninstantaneous_output_repl_kbps:0.00\r\nrejected_connections:{}\r\nsync_full:0\r\nsync_partial_ok:0\r\nsync_partial_err:0\r\nexpired_keys:{}\r\nexpired_stale_perc:0.00\r\nexpired_time_cap_reached_count:0\r\nexpire_cycle_cpu_milliseconds:0\r\nevicted_keys:{}\r\nevicted_clients:0\r\ntotal_eviction_exceeded_time:0\r\ncurrent_eviction_exceeded_time:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nlatest_fork_usec:{}\r\ntotal_forks:{}\r\nmigrate_cached_sockets:0\r\nslave_expires_tracked_keys:0\r\nactive_defrag_hits:0\r\nactive_defrag_misses:0\r\nactive_defrag_key_hits:0\r\nactive_defrag_key_misses:0\r\ntotal_active_defrag_time:0\r\ncurrent_active_defrag_time:0\r\ntracking_total_keys:{}\r\ntracking_total_items:{}\r\ntracking_total_prefixes:{}\r\nunexpected_error_replies:0\r\ntotal_error_replies:{}\r\ndump_payload_sanitizations:0\r\ntotal_reads_processed:{}\r\ntotal_writes_processed:{}\r\nio_threaded_reads_processed:0\r\nio_threaded_writes_processed:0\r\nreply_buffer_shrinks:0\r\nreply_buffer_expands:0\r\n",
                stats.total_connections_received,
                stats.total_commands_processed,
                stats.rejected_connections,
                ctx.ks.stat_expired_keys,
                srv.memory.evicted_keys,
                ctx.ks.stat_keyspace_hits,
                ctx.ks.stat_keyspace_misses,
                srv.pubsub.channels.len(),
                srv.pubsub.patterns.len(),
                srv.pubsub.shard.len(),
                stats.latest_capture_usec,
                stats.total_captures,
                srv.tracking.total_keys(),
                srv.tracking.total_items(),
                srv.tracking.total_prefixes(),
                stats.total_error_replies,
                stats.total_commands_processed,
                stats.total_commands_processed,
            );
        }
        "replication" => {
            let _ = write!(
                s,
                "# Replication\r\nrole:master\r\nconnected_slaves:0\r\nmaster_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:0\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:0\r\nrepl_backlog_size:1048576\r\nrepl_backlog_first_byte_offset:0\r\nrepl_backlog_histlen:0\r\n",
                srv.replid,
            );
        }
        "cpu" => {
            let (user, sys) = cpu_times();
            let _ = write!(
                s,
                "# CPU\r\nused_cpu_sys:{sys:.6}\r\nused_cpu_user:{user:.6}\r\nused_cpu_sys_children:0.000000\r\nused_cpu_user_children:0.000000\r\nused_cpu_sys_main_thread:{sys:.6}\r\nused_cpu_user_main_thread:{user:.6}\r\n",
            );
        }
        "modules" => s.push_str("# Modules\r\n"),
        "errorstats" => {
            s.push_str("# Errorstats\r\n");
            for (code, n) in &stats.errors {
                let _ = write!(s, "errorstat_{code}:count={n}\r\n");
            }
        }
        "cluster" => s.push_str("# Cluster\r\ncluster_enabled:0\r\n"),
        "keyspace" => {
            s.push_str("# Keyspace\r\n");
            for (i, db) in ctx.ks.dbs.iter().enumerate() {
                if !db.data.is_empty() {
                    let _ = write!(
                        s,
                        "db{i}:keys={},expires={},avg_ttl=0\r\n",
                        db.data.len(),
                        db.expires.len()
                    );
                }
            }
        }
        "commandstats" => {
            s.push_str("# Commandstats\r\n");
            let mut commands: Vec<_> = stats.commands.iter().collect();
            commands.sort_unstable_by_key(|(name, _)| **name);
            for (name, c) in commands {
                if c.calls == 0 && c.rejected_calls == 0 && c.failed_calls == 0 {
                    continue;
                }
                let per = if c.calls == 0 {
                    0.0
                } else {
                    c.nsec as f64 / 1000.0 / c.calls as f64
                };
                let _ = write!(
                    s,
                    "cmdstat_{name}:calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}\r\n",
                    c.calls,
                    c.nsec / 1000,
                    c.rejected_calls,
                    c.failed_calls
                );
            }
        }
        "latencystats" => {
            s.push_str("# Latencystats\r\n");
            let which: Vec<f64> = srv
                .config
                .get("latency-tracking-info-percentiles")
                .unwrap_or("")
                .split_whitespace()
                .filter_map(|p| crate::numbers::parse_f64(p.as_bytes()))
                .collect();
            let mut commands: Vec<_> = stats
                .commands
                .iter()
                .filter_map(|(n, c)| c.latency.as_ref().map(|h| (n, h)))
                .collect();
            commands.sort_unstable_by_key(|(name, _)| **name);
            for (name, h) in commands {
                let _ = write!(
                    s,
                    "latency_percentiles_usec_{name}:{}\r\n",
                    h.percentiles(&which)
                );
            }
        }
        _ => {}
    }
}

/// The INFO text for the requested sections.
pub fn info_text(ctx: &Ctx, args: &[Bytes]) -> String {
    let mut want: Vec<&str> = Vec::new();
    let add = |name: &'static str, want: &mut Vec<&'static str>| {
        if !want.contains(&name) {
            want.push(name);
        }
    };
    if args.is_empty() {
        for (n, d) in SECTIONS {
            if *d {
                add(n, &mut want);
            }
        }
    }
    for a in args {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        match a.as_str() {
            "all" | "everything" => {
                for (n, _) in SECTIONS {
                    add(n, &mut want);
                }
            }
            "default" => {
                for (n, d) in SECTIONS {
                    if *d {
                        add(n, &mut want);
                    }
                }
            }
            other => {
                if let Some((n, _)) = SECTIONS.iter().find(|(n, _)| *n == other) {
                    add(n, &mut want);
                }
            }
        }
    }
    let mut s = String::new();
    let mut first = true;
    for (n, _) in SECTIONS {
        if want.contains(n) {
            if !first {
                s.push_str("\r\n");
            }
            first = false;
            section_text(ctx, n, &mut s);
        }
    }
    s
}

fn info(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let text = info_text(ctx, &args[1..]);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

// ------------------------------------------------- TIME, SAVE, SHUTDOWN

fn time(ctx: &mut Ctx) -> CmdResult {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_int(d.as_secs() as i64);
    ctx.out.bulk_int(d.subsec_micros() as i64);
    Ok(())
}

fn lastsave(ctx: &mut Ctx) -> CmdResult {
    ctx.out.int(ctx.srv.lastsave_ms / 1000);
    Ok(())
}

/// Saves the data set: with the durable path on, captures it as of the
/// newest record and hands it to the snapshot writer, which stores it once
/// those records are durable, trims the log and updates LASTSAVE
/// (`durable::run_snapshots`). Without it, only marks the data set saved.
/// With `wait`, returns where the writer will answer (`+OK` / `-ERR`).
fn mark_saved(
    ctx: &mut Ctx,
    wait: bool,
) -> Option<tokio::sync::oneshot::Receiver<crate::engine::ParkedReply>> {
    request_snapshot(ctx.ks, ctx.srv, wait)
}

/// Hands the data set, as of now, to the snapshot writer (when durable)
/// and resets the changes-since-save counter. With `wait`, returns where
/// the writer answers once the snapshot is stored.
pub fn request_snapshot(
    ks: &mut crate::keyspace::Keyspace,
    srv: &mut crate::engine::ServerState,
    wait: bool,
) -> Option<tokio::sync::oneshot::Receiver<crate::engine::ParkedReply>> {
    let mut waiting = None;
    srv.last_snapshot_try_ms = crate::keyspace::unix_ms();
    if let Some(tx) = &srv.snapshot_requests {
        let (reply, rx) = wait.then(tokio::sync::oneshot::channel).unzip();
        let started = std::time::Instant::now();
        let forked = srv.capture_dir.as_deref().and_then(|dir| {
            crate::snapshot::fork_capture(
                ks,
                &srv.functions,
                dir,
                ks.effects.last_seq,
                srv.oom_score.child,
            )
        });
        let data = match forked {
            Some(f) => crate::snapshot::CapturedData::Forked(f),
            None => {
                crate::snapshot::CapturedData::Copied(crate::snapshot::capture(ks, &srv.functions))
            }
        };
        // What holds every client up: the fork, as Redis reports its own
        // (`latest_fork_usec`), or the copy.
        srv.stats.latest_capture_usec = started.elapsed().as_micros() as u64;
        srv.stats.total_captures += 1;
        // What the log takes from here on is what the next snapshot trims.
        srv.stats.log_bytes_since_snapshot = 0;
        let req = crate::durable::SnapshotRequest {
            seq: ks.effects.last_seq,
            data,
            reply,
        };
        let forked = matches!(req.data, crate::snapshot::CapturedData::Forked(_));
        if tx.send(req).is_ok() {
            // Until the snapshot task reaps the child (`durable`).
            ks.forked_child |= forked;
            srv.stats.snapshots_pending += 1;
            waiting = rx;
        }
    } else {
        srv.lastsave_ms = crate::keyspace::unix_ms();
    }
    ks.dirty = 0;
    waiting
}

/// Whether a snapshot due now must wait: as in Redis, the attempt after a
/// failed one waits 5 seconds.
pub fn snapshot_retry_waits(failed: bool, now_ms: i64, last_try_ms: i64) -> bool {
    failed && now_ms - last_try_ms <= 5000
}

/// Redis' `save` points (`"<seconds> <changes> ..."`): whether one is due,
/// `changes` writes having been made and `seconds` having passed since the
/// last snapshot.
pub fn save_point_due(save: &str, dirty: u64, now_ms: i64, lastsave_ms: i64) -> bool {
    let nums: Vec<i64> = save
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    nums.chunks_exact(2)
        .any(|p| dirty >= p[1].max(0) as u64 && now_ms - lastsave_ms > p[0].saturating_mul(1000))
}

/// Redis' `auto-aof-rewrite-percentage` and `auto-aof-rewrite-min-size`
/// over memlog's log: a snapshot is due once the log took `min_size`
/// bytes since the last one and grew by `percentage` percent of what that
/// snapshot holds (any growth counts before the first snapshot, as Redis
/// takes a zero base as 1). A percentage of 0 turns it off.
pub fn log_rewrite_due(
    percentage: i64,
    min_size: i64,
    log_bytes: u64,
    snapshot_bytes: u64,
) -> bool {
    if percentage <= 0 {
        return false;
    }
    let current = snapshot_bytes.saturating_add(log_bytes);
    let base = snapshot_bytes.max(1);
    current >= min_size.max(0) as u64
        && u128::from(log_bytes) * 100 >= u128::from(base) * percentage as u128
}

/// Answers once the snapshot is stored, like Redis' SAVE (which blocks the
/// whole server; here only this connection waits). Inside MULTI there is
/// no waiting: it answers `+OK` when the snapshot is handed over.
/// Whether a snapshot is being taken (Redis: a child is saving), which
/// SAVE and BGSAVE refuse to start another beside.
fn snapshot_in_progress(ctx: &Ctx) -> bool {
    ctx.srv.snapshot_requests.is_some() && ctx.srv.stats.snapshots_pending > 0
}

const SAVE_IN_PROGRESS: &str = "Background save already in progress";

fn save(ctx: &mut Ctx) -> CmdResult {
    if snapshot_in_progress(ctx) {
        return Err(CmdError::err(SAVE_IN_PROGRESS));
    }
    let wait = !ctx.client.in_exec;
    match mark_saved(ctx, wait) {
        Some(rx) => ctx.reply_later = Some(rx),
        None => ctx.out.ok(),
    }
    Ok(())
}

fn bgsave(ctx: &mut Ctx) -> CmdResult {
    match ctx.argc() {
        1 => {}
        2 if ctx.arg_is(1, "SCHEDULE") => {}
        _ => return Err(CmdError::Syntax),
    }
    if snapshot_in_progress(ctx) {
        return Err(CmdError::err(SAVE_IN_PROGRESS));
    }
    if !schedule_inside_exec(ctx) {
        mark_saved(ctx, false);
    }
    ctx.out.simple("Background saving started");
    Ok(())
}

/// Inside EXEC the transaction's writes so far are in the data set but in
/// no closed record yet (EXEC's record closes when it ends), so a capture
/// now would hold them as of the record before and the log would replay
/// them on top (or keep them though EXEC's append failed). The snapshot is
/// taken right after instead (by `Engine::snapshot_if_due`). Returns
/// whether it was.
fn schedule_inside_exec(ctx: &mut Ctx) -> bool {
    if !ctx.client.in_exec || ctx.srv.snapshot_requests.is_none() {
        return false;
    }
    ctx.srv.snapshot_scheduled = true;
    true
}

/// DEBUG RELOAD: Redis saves an RDB and loads it back; memlog takes a
/// snapshot (unless NOSAVE), then rebuilds the data set from the newest
/// snapshot and the log after it, as a restart would. The reply waits for
/// both, so the next command sees the reloaded data. Without a log (or
/// inside MULTI or a script) there is nothing to reload from: +OK.
fn debug_reload(ctx: &mut Ctx, save: bool) {
    let Some(rebuilds) = ctx.srv.rebuild_requests.clone() else {
        ctx.out.ok();
        return;
    };
    if ctx.client.in_exec || ctx.client.in_script {
        ctx.out.ok();
        return;
    }
    if save && snapshot_in_progress(ctx) {
        ctx.out.error(&format!("ERR {SAVE_IN_PROGRESS}"));
        return;
    }
    let saved = if save { mark_saved(ctx, true) } else { None };
    let (reply, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        if let Some(saved) = saved {
            match saved.await {
                Ok(r) if r.bytes.first() == Some(&b'-') => {
                    let _ = reply.send(r);
                    return;
                }
                _ => {}
            }
        }
        let (rebuilt, done) = tokio::sync::oneshot::channel();
        let answer = match rebuilds.send(rebuilt) {
            Ok(()) => done.await.ok(),
            Err(_) => None,
        };
        let _ = reply.send(answer.unwrap_or(crate::engine::ParkedReply {
            bytes: b"+OK\r\n".to_vec(),
            seq: 0,
        }));
    });
    ctx.reply_later = Some(rx);
}

/// memlog's append-only file is its transaction log, and what rewrites it
/// is a snapshot (the log is trimmed up to it): BGREWRITEAOF takes one.
fn bgrewriteaof(ctx: &mut Ctx) -> CmdResult {
    // As Redis does while a child saves: the rewrite follows it.
    if snapshot_in_progress(ctx) {
        ctx.srv.snapshot_scheduled = true;
        ctx.out
            .simple("Background append only file rewriting scheduled");
        return Ok(());
    }
    if !schedule_inside_exec(ctx) {
        mark_saved(ctx, false);
    }
    ctx.out
        .simple("Background append only file rewriting started");
    Ok(())
}

fn shutdown(ctx: &mut Ctx) -> CmdResult {
    let mut abort = false;
    let mut other = false;
    let mut save_opt = None;
    for i in 1..ctx.argc() {
        match ctx.arg_upper(i).as_str() {
            "NOSAVE" => save_opt = Some(false),
            "SAVE" => save_opt = Some(true),
            "NOW" | "FORCE" => other = true,
            "ABORT" => abort = true,
            _ => return Err(CmdError::Syntax),
        }
    }
    if abort {
        if other || save_opt.is_some() {
            return Err(CmdError::Syntax);
        }
        return Err(CmdError::err("No shutdown in progress."));
    }
    // Beside a busy script only SHUTDOWN NOSAVE, which ends the process
    // from the script's hook (crate::busy): what the script did is not in
    // the log, and the runtime waits for the script.
    if let Some(b) = ctx.srv.busy.as_mut() {
        if save_opt != Some(false) {
            return Err(CmdError::Other(b.error().into()));
        }
        b.exit = true;
        ctx.close = true;
        return Ok(());
    }
    // One snapshot at a time: one in progress covers what this one would.
    if save_opt == Some(true) && !snapshot_in_progress(ctx) {
        mark_saved(ctx, false);
    }
    match &ctx.srv.shutdown {
        Some(tx) => {
            let _ = tx.send(true);
            // No reply: the connection closes as the server exits.
            ctx.close = true;
            Ok(())
        }
        None => Err(CmdError::err("Errors trying to SHUTDOWN. Check logs.")),
    }
}

// --------------------------------------------------------------- MEMORY

const MEMORY_SUBS: &[(&str, i32)] = &[
    ("doctor", 2),
    ("help", 2),
    ("malloc-stats", 2),
    ("purge", 2),
    ("stats", 2),
    ("usage", -3),
];

fn memory(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    match subcommand(args, "memory", MEMORY_SUBS)? {
        "usage" => {
            let mut i = 3;
            while i < args.len() {
                if ctx.arg_is(i, "SAMPLES") && i + 1 < args.len() {
                    let n = ctx.int_arg(i + 1)?;
                    if n < 0 {
                        return Err(CmdError::Syntax);
                    }
                    i += 2;
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            let db = ctx.db();
            let key = &args[2];
            // As Redis: the key as stored, even past its TTL (no lookup).
            let size = ctx.ks.dbs[db]
                .value(key)
                .map(|v| v.heap_size() + key.len() + 40);
            match size {
                Some(n) => ctx.out.int(n as i64),
                None => ctx.out.null(),
            }
            Ok(())
        }
        "stats" => {
            let used = ctx.srv.memory.process_bytes(ctx.ks);
            let dataset = dataset_bytes(ctx.ks);
            let keys: usize = ctx.ks.dbs.iter().map(|d| d.len()).sum();
            let nonempty: Vec<(usize, usize, usize)> = ctx
                .ks
                .dbs
                .iter()
                .enumerate()
                .filter(|(_, d)| !d.is_empty())
                .map(|(i, d)| (i, d.len(), d.expires.len()))
                .collect();
            let o = &mut *ctx.out;
            o.map(27 + nonempty.len());
            let ints: [(&str, i64); 10] = [
                ("peak.allocated", used as i64),
                ("total.allocated", used as i64),
                ("startup.allocated", BASE_MEMORY as i64),
                ("replication.backlog", 0),
                ("clients.slaves", 0),
                ("clients.normal", 0),
                ("cluster.links", 0),
                ("aof.buffer", 0),
                ("lua.caches", 0),
                ("functions.caches", 184),
            ];
            for (k, v) in ints {
                o.bulk_str(k);
                o.int(v);
            }
            for (i, k, e) in nonempty {
                o.bulk_str(&format!("db.{i}"));
                o.map(3);
                o.bulk_str("overhead.hashtable.main");
                o.int((k * 24) as i64);
                o.bulk_str("overhead.hashtable.expires");
                o.int((e * 24) as i64);
                o.bulk_str("overhead.hashtable.slot-to-keys");
                o.int(0);
            }
            o.bulk_str("overhead.total");
            o.int(BASE_MEMORY as i64);
            o.bulk_str("keys.count");
            o.int(keys as i64);
            o.bulk_str("keys.bytes-per-key");
            o.int(if keys == 0 {
                0
            } else {
                (dataset / keys as u64) as i64
            });
            o.bulk_str("dataset.bytes");
            o.int(dataset as i64);
            o.bulk_str("dataset.percentage");
            o.double(dataset as f64 * 100.0 / used.max(1) as f64);
            o.bulk_str("peak.percentage");
            o.double(100.0);
            for k in [
                "allocator.allocated",
                "allocator.active",
                "allocator.resident",
            ] {
                o.bulk_str(k);
                o.int(used as i64);
            }
            // As Redis 7.0 orders them: each ratio beside its bytes.
            for (ratio, bytes) in [
                (
                    "allocator-fragmentation.ratio",
                    "allocator-fragmentation.bytes",
                ),
                ("allocator-rss.ratio", "allocator-rss.bytes"),
                ("rss-overhead.ratio", "rss-overhead.bytes"),
                ("fragmentation", "fragmentation.bytes"),
            ] {
                o.bulk_str(ratio);
                o.double(1.0);
                o.bulk_str(bytes);
                o.int(0);
            }
            Ok(())
        }
        "doctor" => {
            ctx.out.verbatim(b"Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n");
            Ok(())
        }
        "malloc-stats" => {
            ctx.out
                .verbatim(b"Stats not supported for the current allocator");
            Ok(())
        }
        "purge" => {
            ctx.out.ok();
            Ok(())
        }
        _ => {
            write_help(ctx.out, help::MEMORY);
            Ok(())
        }
    }
}

// ------------------------------------------------------- LOLWUT, SLOWLOG

fn lolwut(ctx: &mut Ctx) -> CmdResult {
    let mut i = 1;
    while i < ctx.argc() {
        if ctx.arg_is(i, "VERSION") && i + 1 < ctx.argc() {
            ctx.int_arg(i + 1)?;
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let art = "  _ __ ___   ___ _ __ ___ | | ___   __ _\n | '_ ` _ \\ / _ \\ '_ ` _ \\| |/ _ \\ / _` |\n | | | | | |  __/ | | | | | | (_) | (_| |\n |_| |_| |_|\\___|_| |_| |_|_|\\___/ \\__, |\n                                    |___/\n\n";
    let text = format!("{art}Redis ver. {}\n", crate::REDIS_VERSION);
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// MONITOR: from now on this connection sees every command the server runs
/// (crate::monitor). Already monitoring: no reply at all, as in Redis.
fn monitor(ctx: &mut Ctx) -> CmdResult {
    if ctx.client.in_exec {
        return Err(CmdError::err(
            "MONITOR isn't allowed for DENY BLOCKING client",
        ));
    }
    if ctx.client.monitor {
        return Ok(());
    }
    ctx.client.monitor = true;
    ctx.srv.monitors.add(ctx.client.id);
    ctx.out.ok();
    Ok(())
}

const SLOWLOG_SUBS: &[(&str, i32)] = &[("get", -2), ("help", 2), ("len", 2), ("reset", 2)];

fn slowlog(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    match subcommand(args, "slowlog", SLOWLOG_SUBS)? {
        "get" => {
            if args.len() > 3 {
                return Err(subcommand_syntax_error(args, "slowlog"));
            }
            let mut count = 10;
            if args.len() == 3 {
                match crate::numbers::parse_i64(&args[2]) {
                    Some(n) if n >= -1 => count = n,
                    _ => return Err(CmdError::err("count should be greater than or equal to -1")),
                }
            }
            ctx.srv.slowlog.write(ctx.out, count);
            Ok(())
        }
        "len" => {
            ctx.out.int(ctx.srv.slowlog.len() as i64);
            Ok(())
        }
        "reset" => {
            ctx.srv.slowlog.reset();
            ctx.out.ok();
            Ok(())
        }
        _ => {
            write_help(ctx.out, help::SLOWLOG);
            Ok(())
        }
    }
}

const LATENCY_SUBS: &[(&str, i32)] = &[
    ("doctor", 2),
    ("graph", 3),
    ("help", 2),
    ("histogram", -2),
    ("history", 3),
    ("latest", 2),
    ("reset", -2),
];

fn latency(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let now_s = crate::keyspace::unix_ms().div_euclid(1000);
    match subcommand(args, "latency", LATENCY_SUBS)? {
        "latest" => ctx.srv.latency_events.write_latest(ctx.out),
        "history" => ctx.srv.latency_events.write_history(&args[2], ctx.out),
        "reset" => {
            let n = ctx.srv.latency_events.reset(&args[2..]);
            ctx.out.int(n as i64);
        }
        "histogram" => latency_histogram(ctx),
        "graph" => match ctx.srv.latency_events.graph(&args[2], now_s) {
            Some(g) => ctx.out.verbatim(g.as_bytes()),
            None => {
                return Err(CmdError::err(format!(
                    "No samples available for event '{}'",
                    String::from_utf8_lossy(&args[2])
                )))
            }
        },
        "doctor" => {
            let report = ctx.srv.latency_events.doctor(ctx.srv.latency_threshold_ms);
            ctx.out.verbatim(report.as_bytes());
        }
        _ => write_help(ctx.out, help::LATENCY),
    }
    Ok(())
}

/// LATENCY HISTOGRAM [command ...]: the commands asked for (a container
/// stands for its subcommands), or all, that have latency data.
fn latency_histogram(ctx: &mut Ctx) {
    use crate::stats::CommandName;
    let stats = &ctx.srv.stats.commands;
    let mut names: Vec<CommandName> = Vec::new();
    if ctx.argc() == 2 {
        names.extend(stats.keys().copied());
    } else {
        for a in &ctx.args[2..] {
            let asked = String::from_utf8_lossy(a).to_ascii_lowercase();
            let (cmd, sub) = match asked.split_once('|') {
                Some((c, s)) => (c.to_string(), Some(s.to_string())),
                None => (asked, None),
            };
            let Some(spec) = super::lookup(cmd.as_bytes()) else {
                continue;
            };
            names.extend(stats.keys().copied().filter(|n| {
                n.name == spec.name
                    && match &sub {
                        Some(s) => n.sub == Some(s.as_str()),
                        None => true,
                    }
            }));
        }
    }
    names.sort_unstable();
    names.dedup();
    let with_data: Vec<_> = names
        .iter()
        .filter_map(|n| stats.get(n)?.latency.as_ref().map(|h| (n, h)))
        .collect();
    ctx.out.map(with_data.len());
    for (name, h) in with_data {
        ctx.out.bulk_str(&name.to_string());
        h.write(ctx.out);
    }
}

// ---------------------------------------------------------------- DEBUG

/// OBJECT ENCODING as Redis 7.0 would report it for a value.
pub fn encoding_name(v: &crate::keyspace::Value, cfg: &crate::config::Config) -> &'static str {
    use crate::keyspace::Value;
    match v {
        Value::Str(s) => {
            if s.len() <= 20 && crate::numbers::parse_i64(s).is_some() {
                "int"
            } else if s.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        Value::List(_) => "quicklist",
        Value::Stream(_) => "stream",
        Value::Set(s) => {
            let max = cfg.get_i64("set-max-intset-entries").max(0) as usize;
            if s.len() <= max && s.iter().all(|e| crate::numbers::parse_i64(e).is_some()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::Hash(h) => {
            let n = cfg.get_i64("hash-max-listpack-entries").max(0) as usize;
            let l = cfg.get_i64("hash-max-listpack-value").max(0) as usize;
            if h.len() <= n && h.iter().all(|(k, v)| k.len() <= l && v.len() <= l) {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            let n = cfg.get_i64("zset-max-listpack-entries").max(0) as usize;
            let l = cfg.get_i64("zset-max-listpack-value").max(0) as usize;
            if z.len() <= n && z.iter().all(|(m, _)| m.len() <= l) {
                "listpack"
            } else {
                "skiplist"
            }
        }
    }
}

fn debug_unknown(args: &[Bytes]) -> CmdError {
    CmdError::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        String::from_utf8_lossy(&args[1])
    ))
}

fn debug(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let argc = args.len();
    let sub = ctx.arg_upper(1);
    let db = ctx.db();
    match (sub.as_str(), argc) {
        ("HELP", 2) => write_help(ctx.out, help::DEBUG),
        ("DIGEST", 2) => {
            let d = crate::digest::dataset_digest(ctx.ks);
            ctx.out.simple(&crate::digest::hex(&d));
        }
        ("DIGEST-VALUE", _) => {
            ctx.out.array(argc - 2);
            for k in &args[2..] {
                let d = crate::digest::value_digest(&ctx.ks.dbs[db], k);
                ctx.out.simple(&crate::digest::hex(&d));
            }
        }
        ("SLEEP", 3) => {
            let secs = crate::numbers::parse_f64(&args[2]).unwrap_or(0.0);
            // Past what a Duration holds (1e20 s: Redis sleeps "forever"),
            // no sleep: from_secs_f64 panicked there.
            if let Ok(d) = std::time::Duration::try_from_secs_f64(secs) {
                std::thread::sleep(d);
            }
            ctx.out.ok();
        }
        // Redis crashes here; memlog survives it as it would any panic of a
        // command (`Engine::guarded`): the connection closes and the data
        // set is rebuilt from the log.
        ("PANIC", 2) => panic!("DEBUG PANIC"),
        ("OBJECT", 3) => {
            let Some(o) = ctx.ks.dbs[db].data.get(&args[2][..]) else {
                return Err(CmdError::NoSuchKey);
            };
            let (v, lru) = (&o.value, o.lru);
            let enc = encoding_name(v, &ctx.srv.config);
            let ser = v.heap_size() + 1;
            let ql = if let crate::keyspace::Value::List(l) = v {
                format!(
                    " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:-2 ql_compressed:0 ql_uncompressed_size:{}",
                    l.len().div_ceil(128).max(1),
                    l.len() as f64 / l.len().div_ceil(128).max(1) as f64,
                    ser
                )
            } else {
                String::new()
            };
            let text = format!(
                "Value at:{:p} refcount:1 encoding:{enc} serializedlength:{ser} lru:{lru} lru_seconds_idle:{}{ql}",
                v as *const _,
                ctx.ks.access.idle_ms(lru, ctx.ks.now_ms) / 1000
            );
            ctx.out.simple(&text);
        }
        ("RELOAD", _) => {
            let mut save = true;
            for opt in &args[2..] {
                match opt.to_ascii_uppercase().as_slice() {
                    b"MERGE" | b"NOFLUSH" => {}
                    b"NOSAVE" => save = false,
                    _ => {
                        return Err(CmdError::err(
                            "DEBUG RELOAD only supports the MERGE, NOFLUSH and NOSAVE options.",
                        ))
                    }
                }
            }
            debug_reload(ctx, save);
        }
        // memlog's AOF is its transaction log: rebuild the data set from it
        // (snapshot + replay), which shows that every effect replays to the
        // same data. Without a log there is nothing to load.
        ("LOADAOF", 2) => match &ctx.srv.rebuild_requests {
            Some(tx) if !ctx.client.in_exec && !ctx.client.in_script => {
                let (reply, rx) = tokio::sync::oneshot::channel();
                if tx.send(reply).is_ok() {
                    ctx.reply_later = Some(rx);
                } else {
                    ctx.out.ok();
                }
            }
            _ => ctx.out.ok(),
        },
        ("SET-ACTIVE-EXPIRE", 3) => {
            ctx.srv.active_expire = ctx.int_arg(2)? != 0;
            ctx.out.ok();
        }
        ("QUICKLIST-PACKED-THRESHOLD", 3) => {
            let ok = crate::config::parse_memory(&String::from_utf8_lossy(&args[2])).is_some();
            if !ok {
                return Err(CmdError::err(
                    "argument must be a memory value bigger than 1 and smaller than 4gb",
                ));
            }
            ctx.out.ok();
        }
        ("CHANGE-REPL-ID", 2) => {
            ctx.srv.replid = crate::engine::random_hex(40);
            ctx.out.ok();
        }
        ("SET-SKIP-CHECKSUM-VALIDATION", 3) | ("PAUSE-CRON", 3) | ("REPLYBUFFER", 4) => {
            ctx.out.ok();
        }
        ("LOG", 3) => {
            tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
            ctx.out.ok();
        }
        ("ERROR", 3) => {
            let msg = String::from_utf8_lossy(&args[2]).into_owned();
            return Err(CmdError::Other(msg));
        }
        ("POPULATE", 3..=5) => {
            let count = ctx.int_arg(2)?;
            if count < 0 {
                return Err(CmdError::NotPositive);
            }
            let prefix = if argc >= 4 {
                args[3].to_vec()
            } else {
                b"key".to_vec()
            };
            let size = if argc == 5 {
                let n = ctx.int_arg(4)?;
                if n < 0 {
                    return Err(CmdError::NotPositive);
                }
                Some(n as usize)
            } else {
                None
            };
            let mut added = 0u64;
            for j in 0..count {
                let mut key = prefix.clone();
                key.push(b':');
                key.extend_from_slice(j.to_string().as_bytes());
                if ctx.ks.dbs[db].data.contains_key(&key[..]) {
                    continue;
                }
                let mut val = format!("value:{j}").into_bytes();
                if let Some(n) = size {
                    val.resize(n, 0);
                }
                let o = ctx
                    .ks
                    .new_object(crate::keyspace::Value::Str(val.into_boxed_slice()));
                ctx.ks.dbs[db].data.insert(key.into(), o);
                added += 1;
            }
            if added > 0 {
                ctx.ks.modified_many(added);
            }
            ctx.out.ok();
        }
        ("JMAP", _) | ("STRINGMATCH-LEN", _) => return Err(debug_unknown(args)),
        _ => return Err(debug_unknown(args)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_rewrite_is_due_past_the_minimum_and_the_percentage() {
        const MB: u64 = 1024 * 1024;
        let min = 64 * MB as i64;
        // Before any snapshot, the minimum alone decides.
        assert!(!log_rewrite_due(100, min, 64 * MB - 1, 0));
        assert!(log_rewrite_due(100, min, 64 * MB, 0));
        // After one, the log must also have grown by the percentage of it.
        assert!(!log_rewrite_due(100, min, 99 * MB, 100 * MB));
        assert!(log_rewrite_due(100, min, 100 * MB, 100 * MB));
        assert!(!log_rewrite_due(200, min, 199 * MB, 100 * MB));
        assert!(log_rewrite_due(50, min, 50 * MB, 100 * MB));
        // The minimum counts the snapshot too, as Redis' AOF size does.
        assert!(log_rewrite_due(100, min, 40 * MB, 30 * MB));
        assert!(!log_rewrite_due(100, min, 30 * MB, 30 * MB));
        // 0 turns it off; huge sizes do not overflow.
        assert!(!log_rewrite_due(0, 0, u64::MAX, 1));
        assert!(log_rewrite_due(i64::MAX, 0, u64::MAX, 1));
    }
}
