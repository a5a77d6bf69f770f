//! Server commands: FLUSHALL, FLUSHDB, DBSIZE, CONFIG, INFO, CLIENT, COMMAND,
//! DEBUG, TIME, SHUTDOWN, ...

use super::flags::*;
use super::CommandSpec;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};

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
    ),
];

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

/// Applies a parameter the engine acts on after CONFIG SET stored it.
fn config_applied(ctx: &mut Ctx, name: &str) -> CmdResult {
    if name == "notify-keyspace-events" {
        let v = ctx.srv.config.get(name).unwrap_or("").to_string();
        let flags = crate::keyspace::notify::parse(v.as_bytes()).ok_or_else(|| {
            CmdError::err(format!(
                "CONFIG SET failed (possibly related to argument '{name}') - Invalid event class character. Use 'Ag$lshzxeKEtmd'."
            ))
        })?;
        ctx.ks.notify_flags = flags;
        ctx.srv.config.set_raw(
            "notify-keyspace-events",
            crate::keyspace::notify::to_string(flags),
        );
    }
    if name == "requirepass" {
        let v = ctx.srv.config.get(name).unwrap_or("").to_string();
        ctx.srv.requirepass = if v.is_empty() { None } else { Some(v) };
    }
    Ok(())
}

fn config(ctx: &mut Ctx) -> CmdResult {
    let sub = ctx.arg_upper(1);
    match sub.as_str() {
        "GET" if ctx.argc() >= 3 => {
            let mut pairs: Vec<(&'static str, String)> = Vec::new();
            for p in &ctx.args[2..] {
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
        "SET" if ctx.argc() >= 4 && ctx.argc().is_multiple_of(2) => {
            let backup = ctx.srv.config.clone();
            let mut names = Vec::new();
            for i in (2..ctx.argc()).step_by(2) {
                let name = String::from_utf8_lossy(ctx.arg(i)).into_owned();
                let value = String::from_utf8_lossy(ctx.arg(i + 1)).into_owned();
                match ctx.srv.config.set(&name, &value) {
                    Ok(k) => names.push(k),
                    Err(e) => {
                        ctx.srv.config = backup;
                        return Err(CmdError::err(e.to_string()));
                    }
                }
            }
            for n in names {
                if let Err(e) = config_applied(ctx, n) {
                    ctx.srv.config = backup;
                    return Err(e);
                }
            }
            ctx.out.ok();
            Ok(())
        }
        "RESETSTAT" if ctx.argc() == 2 => {
            ctx.srv.stats.reset();
            ctx.out.ok();
            Ok(())
        }
        "REWRITE" if ctx.argc() == 2 => {
            Err(CmdError::err("The server is running without a config file"))
        }
        "GET" | "SET" | "RESETSTAT" | "REWRITE" => Err(CmdError::WrongArity(format!(
            "config|{}",
            sub.to_ascii_lowercase()
        ))),
        _ => Err(CmdError::UnknownSubcommand {
            cmd: "CONFIG".into(),
            sub: String::from_utf8_lossy(ctx.arg(1)).into_owned(),
        }),
    }
}
