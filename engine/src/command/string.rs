//! String commands: GET, SET and the rest of the string family.

use super::flags::*;
use super::CommandSpec;
use crate::argv;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, (1, 1, 1), "string", get),
    CommandSpec::new("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", set),
];

fn get(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    match ctx.ks.get_counted(db, &ctx.args[1]) {
        None => ctx.out.null(),
        Some(Value::Str(s)) => ctx.out.bulk(s),
        Some(_) => return Err(CmdError::WrongType),
    }
    Ok(())
}

/// Parsed SET options.
#[derive(Debug, Default)]
struct SetOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    /// Absolute expiry, Unix ms.
    expire_at: Option<i64>,
}

fn parse_set_options(ctx: &Ctx) -> Result<SetOptions, CmdError> {
    let mut o = SetOptions::default();
    let mut i = 3;
    let mut have_expire = false;
    while i < ctx.argc() {
        let a = ctx.arg_upper(i);
        let has_next = i + 1 < ctx.argc();
        match a.as_str() {
            "NX" if !o.xx => o.nx = true,
            "XX" if !o.nx => o.xx = true,
            "GET" => o.get = true,
            "KEEPTTL" if !have_expire => o.keepttl = true,
            "EX" | "PX" | "EXAT" | "PXAT" if !have_expire && !o.keepttl && has_next => {
                let n = ctx.int_arg(i + 1)?;
                let at = match a.as_str() {
                    "EX" => n
                        .checked_mul(1000)
                        .and_then(|ms| ms.checked_add(ctx.ks.now_ms)),
                    "PX" => n.checked_add(ctx.ks.now_ms),
                    "EXAT" => n.checked_mul(1000),
                    _ => Some(n),
                };
                if n <= 0 {
                    return Err(CmdError::InvalidExpire("set".into()));
                }
                o.expire_at = Some(at.ok_or_else(|| CmdError::InvalidExpire("set".into()))?);
                have_expire = true;
                i += 1;
            }
            _ => return Err(CmdError::Syntax),
        }
        i += 1;
    }
    Ok(o)
}

fn set(ctx: &mut Ctx) -> CmdResult {
    let o = parse_set_options(ctx)?;
    let db = ctx.db();
    let key = ctx.args[1].clone();
    let old = match ctx.ks.get(db, &key) {
        None => None,
        Some(Value::Str(s)) => Some(s.clone()),
        Some(_) if o.get => return Err(CmdError::WrongType),
        Some(_) => Some(Box::from(&b""[..])),
    };
    let exists = old.is_some();
    let write = !((o.nx && exists) || (o.xx && !exists));
    if write {
        let v = Value::str(&ctx.args[2]);
        if o.keepttl {
            ctx.ks.set_keep_ttl(db, &key, v);
        } else {
            ctx.ks.set(db, &key, v);
        }
        if let Some(at) = o.expire_at {
            ctx.ks.set_expire(db, &key, at);
        }
        ctx.ks.modified(db, &key);
        ctx.ks.notify(db, notify::STRING, "set", &key);
        if o.expire_at.is_some() {
            ctx.ks.notify(db, notify::GENERIC, "expire", &key);
        }
        // The effect: relative expiries become absolute, GET is dropped.
        let mut eff = argv![b"SET", key, ctx.args[2]];
        if let Some(at) = o.expire_at {
            eff.push(bytes::Bytes::from_static(b"PXAT"));
            eff.push(crate::numbers::i64_bytes(at).into());
        } else if o.keepttl {
            eff.push(bytes::Bytes::from_static(b"KEEPTTL"));
        }
        ctx.ks.propagate(db, eff);
    }
    if o.get {
        match old {
            Some(s) => ctx.out.bulk(&s),
            None => ctx.out.null(),
        }
    } else if write {
        ctx.out.ok();
    } else {
        ctx.out.null();
    }
    Ok(())
}
