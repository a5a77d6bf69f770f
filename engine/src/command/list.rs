//! List commands, blocking pops included.

use super::flags::*;
use super::CommandSpec;
use crate::argv;
use crate::engine::{Ctx, TimeoutReply};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Elem, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "lpush",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "list",
        lpush,
    ),
    CommandSpec::new(
        "rpush",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "list",
        rpush,
    ),
    CommandSpec::new("lpop", -2, WRITE | FAST, (1, 1, 1), "list", lpop),
    CommandSpec::new("rpop", -2, WRITE | FAST, (1, 1, 1), "list", rpop),
    CommandSpec::new(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        (1, -2, 1),
        "list",
        blpop,
    ),
    CommandSpec::new(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        (1, -2, 1),
        "list",
        brpop,
    ),
];

fn push(ctx: &mut Ctx, left: bool) -> CmdResult {
    let db = ctx.db();
    let key = ctx.args[1].clone();
    ctx.ks
        .check_type(db, &key, crate::keyspace::ValueType::List)?;
    let Value::List(list) = ctx.ks.get_or_insert_with(db, &key, Value::new_list) else {
        return Err(CmdError::WrongType);
    };
    for v in &ctx.args[2..] {
        if left {
            list.push_front(v[..].into());
        } else {
            list.push_back(v[..].into());
        }
    }
    let len = list.len();
    ctx.ks.modified(db, &key);
    ctx.ks
        .notify(db, notify::LIST, if left { "lpush" } else { "rpush" }, &key);
    ctx.out.int(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx) -> CmdResult {
    push(ctx, true)
}

fn rpush(ctx: &mut Ctx) -> CmdResult {
    push(ctx, false)
}

/// Pops up to `count` elements from `key`; `None` if the key is missing.
pub fn pop_elements(
    ctx: &mut Ctx,
    key: &[u8],
    left: bool,
    count: usize,
) -> Result<Option<Vec<Elem>>, CmdError> {
    let db = ctx.db();
    let Some(list) = ctx.ks.get_list_mut(db, key)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(count.min(list.len()));
    for _ in 0..count {
        let e = if left {
            list.pop_front()
        } else {
            list.pop_back()
        };
        match e {
            Some(e) => out.push(e),
            None => break,
        }
    }
    ctx.ks.modified(db, key);
    ctx.ks
        .notify(db, notify::LIST, if left { "lpop" } else { "rpop" }, key);
    if ctx.ks.remove_if_empty(db, key) {
        ctx.ks.notify(db, notify::GENERIC, "del", key);
    }
    Ok(Some(out))
}

fn pop(ctx: &mut Ctx, left: bool) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let count = if ctx.argc() == 3 {
        let n = ctx.int_arg(2).map_err(|_| CmdError::NotPositive)?;
        if n < 0 {
            return Err(CmdError::NotPositive);
        }
        Some(n as usize)
    } else {
        None
    };
    let key = ctx.args[1].clone();
    match (pop_elements(ctx, &key, left, count.unwrap_or(1))?, count) {
        (None, None) => ctx.out.null(),
        (None, Some(_)) => ctx.out.null_array(),
        (Some(v), None) => ctx.out.bulk(&v[0]),
        (Some(v), Some(_)) => {
            ctx.out.array(v.len());
            for e in &v {
                ctx.out.bulk(e);
            }
        }
    }
    Ok(())
}

fn lpop(ctx: &mut Ctx) -> CmdResult {
    pop(ctx, true)
}

fn rpop(ctx: &mut Ctx) -> CmdResult {
    pop(ctx, false)
}

fn bpop(ctx: &mut Ctx, left: bool) -> CmdResult {
    let timeout = ctx.timeout_arg(ctx.argc() - 1)?;
    let db = ctx.db();
    let keys: Vec<bytes::Bytes> = ctx.args[1..ctx.argc() - 1].to_vec();
    for k in &keys {
        if ctx.ks.get_list(db, k)?.is_some() {
            let Some(v) = pop_elements(ctx, k, left, 1)? else {
                continue;
            };
            // The effect of a blocking pop is a plain pop.
            ctx.ks
                .propagate(db, argv![if left { &b"LPOP"[..] } else { &b"RPOP"[..] }, k]);
            ctx.out.array(2);
            ctx.out.bulk(k);
            ctx.out.bulk(&v[0]);
            return Ok(());
        }
    }
    ctx.block_on(
        keys.iter().map(|k| k[..].into()).collect(),
        timeout,
        TimeoutReply::NullArray,
    );
    Ok(())
}

fn blpop(ctx: &mut Ctx) -> CmdResult {
    bpop(ctx, true)
}

fn brpop(ctx: &mut Ctx) -> CmdResult {
    bpop(ctx, false)
}
