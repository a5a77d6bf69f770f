//! Generic key commands: DEL, EXISTS, TYPE, expiry, SCAN, RENAME, ...

use super::flags::*;
use super::CommandSpec;
use crate::engine::Ctx;
use crate::error::CmdResult;
use crate::keyspace::notify;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, (1, -1, 1), "generic", del),
    CommandSpec::new("exists", -2, READONLY | FAST, (1, -1, 1), "generic", exists),
    CommandSpec::new("type", 2, READONLY | FAST, (1, 1, 1), "generic", type_),
];

fn del(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for k in &ctx.args[1..] {
        if ctx.ks.remove(db, k).is_some() {
            ctx.ks.modified(db, k);
            ctx.ks.notify(db, notify::GENERIC, "del", k);
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

fn exists(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for k in &ctx.args[1..] {
        if ctx.ks.exists(db, k) {
            n += 1;
        }
    }
    ctx.out.int(n);
    Ok(())
}

fn type_(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let t = ctx
        .ks
        .get(db, &ctx.args[1])
        .map(|v| v.type_name())
        .unwrap_or("none");
    ctx.out.simple(t);
    Ok(())
}
