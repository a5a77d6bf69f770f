//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! Queued commands run in `Engine::exec_transaction` as one effect record,
//! so the log commits a transaction all or nothing.

use bytes::Bytes;

use super::flags::*;
use super::{CommandSpec, Handler};
use crate::client::{ClientState, MultiState};
use crate::engine::{Ctx, Engine};
use crate::error::{CmdError, CmdResult};
use crate::resp::ReplyBuf;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | MULTI_CONTROL | ALLOW_BUSY,
        (0, 0, 0),
        "transactions",
        multi,
    ),
    CommandSpec {
        handler: Handler::Engine(exec),
        ..CommandSpec::new(
            "exec",
            1,
            NOSCRIPT | LOADING | STALE | MULTI_CONTROL | SKIP_SLOWLOG,
            (0, 0, 0),
            "transactions",
            multi,
        )
    },
    CommandSpec::new(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | MULTI_CONTROL | ALLOW_BUSY,
        (0, 0, 0),
        "transactions",
        discard,
    ),
    CommandSpec::new(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | MULTI_CONTROL | ALLOW_BUSY,
        (1, -1, 1),
        "transactions",
        watch,
    ),
    CommandSpec::new(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        (0, 0, 0),
        "transactions",
        unwatch,
    ),
];

fn multi(ctx: &mut Ctx) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("MULTI calls can not be nested"));
    }
    ctx.client.multi = Some(MultiState::default());
    ctx.out.ok();
    Ok(())
}

fn exec(
    engine: &mut Engine,
    client: &mut ClientState,
    _argv: &[Bytes],
    out: &mut ReplyBuf,
) -> CmdResult {
    engine.exec_transaction(client, out)
}

fn discard(ctx: &mut Ctx) -> CmdResult {
    if ctx.client.multi.take().is_none() {
        return Err(CmdError::err("DISCARD without MULTI"));
    }
    let watched = std::mem::take(&mut ctx.client.watched);
    ctx.ks.unwatch_all(ctx.client.id, &watched);
    ctx.out.ok();
    Ok(())
}

fn watch(ctx: &mut Ctx) -> CmdResult {
    if ctx.client.multi.is_some() {
        return Err(CmdError::err("WATCH inside MULTI is not allowed"));
    }
    let db = ctx.db();
    for k in &ctx.args[1..] {
        if ctx
            .client
            .watched
            .iter()
            .any(|(d, w)| *d == db && w[..] == k[..])
        {
            continue;
        }
        ctx.ks.watch(ctx.client.id, db, k);
        ctx.client.watched.push((db, k[..].into()));
    }
    ctx.out.ok();
    Ok(())
}

fn unwatch(ctx: &mut Ctx) -> CmdResult {
    let watched = std::mem::take(&mut ctx.client.watched);
    ctx.ks.unwatch_all(ctx.client.id, &watched);
    ctx.out.ok();
    Ok(())
}
