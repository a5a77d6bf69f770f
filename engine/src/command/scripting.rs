//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT, and
//! Redis 7's functions: FUNCTION and FCALL / FCALL_RO. The Lua side and how
//! a script's writes reach the log are in `crate::script`, the libraries in
//! `crate::functions`.

use bytes::Bytes;

use super::flags::*;
use super::server::{subcommand, subcommand_syntax_error, write_help};
use super::{help, CommandSpec, Handler};
use crate::client::ClientState;
use crate::engine::Engine;
use crate::error::{CmdError, CmdResult};
use crate::functions::{RestorePolicy, LOAD_TIMEOUT};
use crate::resp::ReplyBuf;
use crate::script::{self, Callee, Invocation, ScriptError};

const fn scripted(
    name: &'static str,
    arity: i32,
    flags: u32,
    handler: fn(&mut Engine, &mut ClientState, &[Bytes], &mut ReplyBuf) -> CmdResult,
) -> CommandSpec {
    CommandSpec {
        handler: Handler::Engine(handler),
        ..CommandSpec::new(name, arity, flags, (0, 0, 0), "scripting", unused)
            .with_keys_fn(eval_keys)
    }
}

pub static COMMANDS: &[CommandSpec] = &[
    scripted(
        "eval",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        eval,
    ),
    scripted(
        "evalsha",
        -3,
        NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS,
        evalsha,
    ),
    scripted(
        "eval_ro",
        -3,
        NOSCRIPT | STALE | READONLY | SKIP_MONITOR | NO_MANDATORY_KEYS,
        eval_ro,
    ),
    scripted(
        "evalsha_ro",
        -3,
        NOSCRIPT | STALE | READONLY | SKIP_MONITOR | NO_MANDATORY_KEYS,
        evalsha_ro,
    ),
    CommandSpec {
        handler: Handler::Engine(script_command),
        ..CommandSpec::new("script", -2, NOSCRIPT, (0, 0, 0), "scripting", unused)
            .with_subcommands(SCRIPT_SUBS)
    },
    CommandSpec {
        handler: Handler::Engine(fcall),
        ..CommandSpec::new(
            "fcall",
            -3,
            NOSCRIPT | STALE | SKIP_MONITOR | NO_MANDATORY_KEYS,
            (0, 0, 0),
            "scripting",
            unused,
        )
        .with_keys_fn(fcall_keys)
    },
    CommandSpec {
        handler: Handler::Engine(fcall_ro),
        ..CommandSpec::new(
            "fcall_ro",
            -3,
            NOSCRIPT | STALE | READONLY | SKIP_MONITOR | NO_MANDATORY_KEYS,
            (0, 0, 0),
            "scripting",
            unused,
        )
        .with_keys_fn(fcall_keys)
    },
    CommandSpec {
        handler: Handler::Engine(function_command),
        ..CommandSpec::new("function", -2, NOSCRIPT, (0, 0, 0), "scripting", unused)
            .with_subcommands(FUNCTION_SUBS)
    },
];

fn unused(_: &mut crate::engine::Ctx) -> CmdResult {
    Ok(())
}

/// The keys of `EVAL script numkeys key ... arg ...` (none is fine).
fn eval_keys(argv: &[Bytes]) -> Result<Vec<usize>, CmdError> {
    let (keys, _) = split(argv)?;
    Ok((3..3 + keys).collect())
}

/// The keys of `FCALL function numkeys key ... arg ...`; malformed numkeys
/// are the handler's to answer (with FCALL's own errors).
fn fcall_keys(argv: &[Bytes]) -> Result<Vec<usize>, CmdError> {
    Ok(split(argv)
        .map(|(keys, _)| (3..3 + keys).collect())
        .unwrap_or_default())
}

/// How many of the arguments after numkeys are keys; Redis' checks.
fn split(argv: &[Bytes]) -> Result<(usize, usize), CmdError> {
    let n = argv
        .get(2)
        .and_then(|a| crate::numbers::parse_i64(a))
        .ok_or(CmdError::NotInteger)?;
    if n < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    let rest = argv.len().saturating_sub(3);
    if n as u64 > rest as u64 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    Ok((n as usize, rest - n as usize))
}

fn eval(e: &mut Engine, c: &mut ClientState, args: &[Bytes], out: &mut ReplyBuf) -> CmdResult {
    run(e, c, args, out, false, false)
}

fn evalsha(e: &mut Engine, c: &mut ClientState, args: &[Bytes], out: &mut ReplyBuf) -> CmdResult {
    run(e, c, args, out, true, false)
}

fn eval_ro(e: &mut Engine, c: &mut ClientState, args: &[Bytes], out: &mut ReplyBuf) -> CmdResult {
    run(e, c, args, out, false, true)
}

fn evalsha_ro(
    e: &mut Engine,
    c: &mut ClientState,
    args: &[Bytes],
    out: &mut ReplyBuf,
) -> CmdResult {
    run(e, c, args, out, true, true)
}

fn run(
    e: &mut Engine,
    client: &mut ClientState,
    args: &[Bytes],
    out: &mut ReplyBuf,
    by_sha: bool,
    read_only: bool,
) -> CmdResult {
    let (nkeys, _) = split(args)?;
    let sha = if by_sha {
        let sha = String::from_utf8_lossy(&args[1]).to_ascii_lowercase();
        if sha.len() != 40 || !e.srv.scripting.exists(sha.as_bytes()) {
            return Err(CmdError::coded(
                "NOSCRIPT",
                "No matching script. Please use EVAL.",
            ));
        }
        sha
    } else {
        e.srv.scripting.load(&args[1]).map_err(script_error)?
    };
    let time_limit = time_limit(e);
    let inv = Invocation {
        name: &sha,
        keys: &args[3..3 + nkeys],
        args: &args[3 + nkeys..],
        read_only,
        time_limit,
        undo_limit: undo_limit(e),
        command: args,
        eval: true,
        libraries: (0, 0),
    };
    let r = script::run(e, client, inv, out);
    // The commands the script ran recorded their own effects; EVAL adds none.
    e.ks.effects.suppress();
    r.map_err(script_error)
}

/// The script's time limit, `lua-time-limit`.
fn time_limit(e: &Engine) -> std::time::Duration {
    std::time::Duration::from_millis(
        u64::try_from(e.srv.config.get_i64("lua-time-limit")).unwrap_or(5000),
    )
}

/// `written-script-time-limit` (see `script::Invocation`).
fn undo_limit(e: &Engine) -> std::time::Duration {
    std::time::Duration::from_millis(
        u64::try_from(e.srv.config.get_i64("written-script-time-limit")).unwrap_or(60_000),
    )
}

fn fcall(e: &mut Engine, c: &mut ClientState, args: &[Bytes], out: &mut ReplyBuf) -> CmdResult {
    run_function(e, c, args, out, false)
}

fn fcall_ro(e: &mut Engine, c: &mut ClientState, args: &[Bytes], out: &mut ReplyBuf) -> CmdResult {
    run_function(e, c, args, out, true)
}

/// FCALL / FCALL_RO, with Redis' checks in Redis' order.
fn run_function(
    e: &mut Engine,
    client: &mut ClientState,
    args: &[Bytes],
    out: &mut ReplyBuf,
    read_only: bool,
) -> CmdResult {
    let name = String::from_utf8_lossy(&args[1]).into_owned();
    if e.srv.functions.function(&name).is_none() {
        return Err(CmdError::err("Function not found"));
    }
    let nkeys = crate::numbers::parse_i64(&args[2])
        .ok_or_else(|| CmdError::err("Bad number of keys provided"))?;
    if nkeys > (args.len() - 3) as i64 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    if nkeys < 0 {
        return Err(CmdError::err("Number of keys can't be negative"));
    }
    let nkeys = nkeys as usize;
    let limit = time_limit(e);
    let undo_limit = undo_limit(e);
    // The libraries live in the engine; the function's commands need the
    // rest of it, so they are taken out while it runs (FUNCTION is refused
    // inside scripts, so nothing changes them meanwhile).
    let r = crate::script::with_part_taken(
        e,
        |e| &mut e.srv.functions,
        |functions, e| {
            let Some((st, info)) = functions.function(&name) else {
                return Err(ScriptError::new("ERR Function not found".into()));
            };
            if read_only && !info.no_writes() {
                return Err(ScriptError::new(
                    "ERR Can not execute a script with write flag using *_ro command.".into(),
                ));
            }
            let inv = Invocation {
                name: &name,
                keys: &args[3..3 + nkeys],
                args: &args[3 + nkeys..],
                read_only: read_only || info.no_writes(),
                time_limit: limit,
                undo_limit,
                command: args,
                eval: false,
                libraries: (functions.library_count(), functions.function_count()),
            };
            script::execute(st, Callee::Function(info.f.clone()), e, client, inv, out)
        },
    );
    // The commands the function ran recorded their own effects.
    e.ks.effects.suppress();
    r.map_err(script_error)
}

const FUNCTION_SUBS: &[(&str, i32)] = &[
    ("delete", 3),
    ("dump", 2),
    ("flush", -2),
    ("help", 2),
    ("kill", 2),
    ("list", -2),
    ("load", -3),
    ("restore", -3),
    ("stats", 2),
];

fn function_command(
    e: &mut Engine,
    client: &mut ClientState,
    args: &[Bytes],
    out: &mut ReplyBuf,
) -> CmdResult {
    match subcommand(args, "function", FUNCTION_SUBS)? {
        "load" => {
            let mut replace = false;
            let mut at = 2;
            while at < args.len() - 1 {
                if !args[at].eq_ignore_ascii_case(b"replace") {
                    return Err(CmdError::err(format!(
                        "Unknown option given: {}",
                        String::from_utf8_lossy(&args[at])
                    )));
                }
                replace = true;
                at += 1;
            }
            let code = &args[at];
            // Replaying the log must load what was loaded, however long.
            let timeout = (!e.ks.applying).then_some(LOAD_TIMEOUT);
            let name = e
                .srv
                .functions
                .load(code, replace, timeout)
                .map_err(CmdError::Other)?;
            e.ks.modified_many(1);
            // REPLACE: a replay never depends on what was there before.
            e.ks.propagate(
                client.db,
                crate::argv![b"FUNCTION", b"LOAD", b"REPLACE", code],
            );
            out.bulk(name.as_bytes());
        }
        "delete" => {
            if !e.srv.functions.delete(&String::from_utf8_lossy(&args[2])) {
                return Err(CmdError::err("Library not found"));
            }
            e.ks.modified_many(1);
            out.ok();
        }
        "flush" => {
            if args.len() > 3 {
                return Err(subcommand_syntax_error(args, "function"));
            }
            if args.len() == 3
                && !args[2].eq_ignore_ascii_case(b"sync")
                && !args[2].eq_ignore_ascii_case(b"async")
            {
                return Err(CmdError::err(
                    "FUNCTION FLUSH only supports SYNC|ASYNC option",
                ));
            }
            e.srv.functions.flush();
            e.ks.modified_many(1);
            out.ok();
        }
        "list" => function_list(e, args, out)?,
        "stats" => {
            let f = &e.srv.functions;
            let (mut libraries, mut functions) = (f.library_count(), f.function_count());
            if e.srv.busy.as_ref().is_some_and(|b| b.info.eval) {
                return Err(CmdError::Other(crate::busy::BUSY_EVAL.into()));
            }
            out.map(2);
            out.bulk(b"running_script");
            match &e.srv.busy {
                // Only a busy script lets FUNCTION STATS run beside it.
                None => out.null(),
                Some(b) => {
                    // Out of the engine while the function runs.
                    (libraries, functions) = b.info.libraries;
                    out.map(3);
                    out.bulk(b"name");
                    out.bulk(b.info.name.as_bytes());
                    out.bulk(b"command");
                    out.array(b.info.command.len());
                    for a in &b.info.command {
                        out.bulk(a);
                    }
                    out.bulk(b"duration_ms");
                    out.int(b.info.started.elapsed().as_millis() as i64);
                }
            }
            out.bulk(b"engines");
            out.map(1);
            out.bulk(b"LUA");
            out.map(2);
            out.bulk(b"libraries_count");
            out.int(libraries as i64);
            out.bulk(b"functions_count");
            out.int(functions as i64);
        }
        "kill" => {
            kill_busy(e, false)?;
            out.ok();
        }
        "dump" => {
            let payload =
                crate::rdb::dump_functions(e.srv.functions.libraries().map(|l| &l.code[..]));
            out.bulk(&payload);
        }
        "restore" => {
            if args.len() > 4 {
                return Err(subcommand_syntax_error(args, "function"));
            }
            let policy = match args.get(3) {
                None => RestorePolicy::Append,
                Some(p) if p.eq_ignore_ascii_case(b"append") => RestorePolicy::Append,
                Some(p) if p.eq_ignore_ascii_case(b"replace") => RestorePolicy::Replace,
                Some(p) if p.eq_ignore_ascii_case(b"flush") => RestorePolicy::Flush,
                Some(_) => return Err(CmdError::err(
                    "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
                )),
            };
            let codes = crate::rdb::restore_functions(&args[2]).map_err(CmdError::Other)?;
            e.srv
                .functions
                .restore(&codes, policy)
                .map_err(CmdError::Other)?;
            e.ks.modified_many(1);
            out.ok();
        }
        _ => write_help(out, help::FUNCTION),
    }
    Ok(())
}

/// FUNCTION LIST [LIBRARYNAME pattern] [WITHCODE].
fn function_list(e: &Engine, args: &[Bytes], out: &mut ReplyBuf) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if !with_code && a.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && a.eq_ignore_ascii_case(b"libraryname") {
            if i >= args.len() - 1 {
                return Err(CmdError::err("library name argument was not given"));
            }
            i += 1;
            pattern = Some(&args[i]);
        } else {
            return Err(CmdError::err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(a)
            )));
        }
        i += 1;
    }
    let libs: Vec<_> = e
        .srv
        .functions
        .libraries()
        .filter(|l| pattern.is_none_or(|p| crate::glob::glob_match(p, l.name.as_bytes(), true)))
        .collect();
    out.array(libs.len());
    for lib in libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(lib.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(b"LUA");
        out.bulk(b"functions");
        out.array(lib.functions.len());
        for f in &lib.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.description {
                Some(d) => out.bulk(d),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names: Vec<&str> = f.flag_names().collect();
            out.set(names.len());
            for n in names {
                out.simple(n);
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&lib.code);
        }
    }
    Ok(())
}

/// A script's failure as the command's error: counted in errorstats unless
/// it was counted where it arose (see `ScriptError::counted`).
fn script_error(e: ScriptError) -> CmdError {
    if e.counted() {
        CmdError::Counted(e.0)
    } else {
        CmdError::Other(e.0)
    }
}

const SCRIPT_SUBS: &[(&str, i32)] = &[
    ("debug", 3),
    ("exists", -3),
    ("flush", -2),
    ("help", 2),
    ("kill", 2),
    ("load", 3),
];

fn script_command(
    e: &mut Engine,
    _client: &mut ClientState,
    args: &[Bytes],
    out: &mut ReplyBuf,
) -> CmdResult {
    match subcommand(args, "script", SCRIPT_SUBS)? {
        "load" => {
            let sha = e.srv.scripting.load(&args[2]).map_err(script_error)?;
            out.bulk_str(&sha);
        }
        "exists" => {
            out.array(args.len() - 2);
            for sha in &args[2..] {
                out.int(i64::from(e.srv.scripting.exists(sha)));
            }
        }
        "flush" => {
            let ok = match args.len() {
                2 => true,
                3 => {
                    args[2].eq_ignore_ascii_case(b"sync") || args[2].eq_ignore_ascii_case(b"async")
                }
                _ => false,
            };
            if !ok {
                return Err(CmdError::err("SCRIPT FLUSH only support SYNC|ASYNC option"));
            }
            e.srv.scripting.flush();
            out.ok();
        }
        // Runs beside a busy script (crate::busy).
        "kill" => {
            kill_busy(e, true)?;
            out.ok();
        }
        "debug" => return Err(CmdError::err("SCRIPT DEBUG is not supported by memlog")),
        _ => write_help(out, help::SCRIPT),
    }
    Ok(())
}

/// SCRIPT KILL (`eval`) or FUNCTION KILL, in Redis' order of checks: a
/// busy script that has not written and is of the kind named is stopped
/// at its hook's next call.
fn kill_busy(e: &mut Engine, eval: bool) -> CmdResult {
    let Some(b) = e.srv.busy.as_mut() else {
        return Err(CmdError::coded(
            "NOTBUSY",
            "No scripts in execution right now.",
        ));
    };
    if b.wrote {
        return Err(CmdError::Other(crate::busy::UNKILLABLE.into()));
    }
    if eval != b.info.eval {
        return Err(CmdError::Other(b.error().into()));
    }
    b.killed = true;
    Ok(())
}
