//! Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT. The
//! Lua side and how a script's writes reach the log are in `crate::script`.

use bytes::Bytes;

use super::flags::*;
use super::server::{subcommand, write_help};
use super::{help, CommandSpec, Handler};
use crate::client::ClientState;
use crate::engine::Engine;
use crate::error::{CmdError, CmdResult};
use crate::resp::ReplyBuf;
use crate::script::{self, Invocation, ScriptError};

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
    scripted("eval", -3, NOSCRIPT | STALE, eval),
    scripted("evalsha", -3, NOSCRIPT | STALE, evalsha),
    scripted("eval_ro", -3, NOSCRIPT | STALE | READONLY, eval_ro),
    scripted("evalsha_ro", -3, NOSCRIPT | STALE | READONLY, evalsha_ro),
    CommandSpec {
        handler: Handler::Engine(script_command),
        ..CommandSpec::new("script", -2, NOSCRIPT, (0, 0, 0), "scripting", unused)
            .with_subcommands(SCRIPT_SUBS)
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
    let time_limit = std::time::Duration::from_millis(
        u64::try_from(e.srv.config.get_i64("lua-time-limit")).unwrap_or(5000),
    );
    let inv = Invocation {
        sha: &sha,
        keys: &args[3..3 + nkeys],
        args: &args[3 + nkeys..],
        read_only,
        time_limit,
    };
    let start = out.buf.len();
    let r = script::run(e, client, inv, out);
    // An error the script returned (not raised) counts in errorstats too.
    if r.is_ok() && out.buf.get(start) == Some(&b'-') {
        let line = &out.buf[start + 1..];
        let end = line.iter().position(|&b| b == b'\r').unwrap_or(line.len());
        let msg = String::from_utf8_lossy(&line[..end]).into_owned();
        e.srv.stats.count_error(&msg);
    }
    // The commands the script ran recorded their own effects; EVAL adds none.
    e.ks.effects.suppress();
    r.map_err(script_error)
}

fn script_error(e: ScriptError) -> CmdError {
    CmdError::Other(e.0)
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
        // A script holds the engine while it runs, so none is running when
        // SCRIPT KILL is: one that runs too long stops by itself
        // (lua-time-limit, crate::script).
        "kill" => {
            return Err(CmdError::coded(
                "NOTBUSY",
                "No scripts in execution right now.",
            ))
        }
        "debug" => return Err(CmdError::err("SCRIPT DEBUG is not supported by memlog")),
        _ => write_help(out, help::SCRIPT),
    }
    Ok(())
}
