//! String commands: GET, SET and the rest of the string family (Redis 7.0
//! t_string.c semantics, error strings included).

use bytes::Bytes;

use super::flags::*;
use super::CommandSpec;
use crate::argv;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Value};
use crate::long_double::LongDouble;
use crate::numbers::{i64_bytes, parse_i64};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("get", 2, READONLY | FAST, (1, 1, 1), "string", get),
    CommandSpec::new("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", set),
    CommandSpec::new(
        "setnx",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        setnx,
    ),
    CommandSpec::new("setex", 4, WRITE | DENYOOM, (1, 1, 1), "string", setex),
    CommandSpec::new("psetex", 4, WRITE | DENYOOM, (1, 1, 1), "string", psetex),
    CommandSpec::new(
        "getset",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        getset,
    ),
    CommandSpec::new("getdel", 2, WRITE | FAST, (1, 1, 1), "string", getdel),
    CommandSpec::new("getex", -2, WRITE | FAST, (1, 1, 1), "string", getex),
    CommandSpec::new("mget", -2, READONLY | FAST, (1, -1, 1), "string", mget),
    CommandSpec::new("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", mset),
    CommandSpec::new("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", msetnx),
    CommandSpec::new(
        "append",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        append,
    ),
    CommandSpec::new("strlen", 2, READONLY | FAST, (1, 1, 1), "string", strlen),
    CommandSpec::new("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", incr),
    CommandSpec::new("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", decr),
    CommandSpec::new(
        "incrby",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        incrby,
    ),
    CommandSpec::new(
        "decrby",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        decrby,
    ),
    CommandSpec::new(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "string",
        incrbyfloat,
    ),
    CommandSpec::new("getrange", 4, READONLY, (1, 1, 1), "string", getrange),
    CommandSpec::new("substr", 4, READONLY, (1, 1, 1), "string", getrange),
    CommandSpec::new(
        "setrange",
        4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "string",
        setrange,
    ),
    CommandSpec::new("lcs", -3, READONLY, (1, 2, 1), "string", lcs),
];

/// `ERR string exceeds maximum allowed size (proto-max-bulk-len)` unless
/// `size + append` fits (never checked while replaying effects).
pub(crate) fn check_string_length(ctx: &Ctx, size: u64, append: u64) -> CmdResult {
    if ctx.ks.applying {
        return Ok(());
    }
    let max = ctx.srv.config.get_i64("proto-max-bulk-len").max(0) as u64;
    match size.checked_add(append) {
        Some(total) if total <= max => Ok(()),
        _ => Err(CmdError::err(
            "string exceeds maximum allowed size (proto-max-bulk-len)",
        )),
    }
}

/// Redis' getGenericCommand: replies the string (or nil); WRONGTYPE for
/// another type. Returns the value it replied with.
fn get_generic(ctx: &mut Ctx) -> Result<Option<Box<[u8]>>, CmdError> {
    let db = ctx.db();
    let v = match ctx.ks.get_counted(db, &ctx.args[1]) {
        None => None,
        Some(Value::Str(s)) => Some(s.clone()),
        Some(_) => return Err(CmdError::WrongType),
    };
    Ok(v)
}

fn get(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    match ctx.ks.get_counted(db, &ctx.args[1]) {
        None => ctx.out.null(),
        Some(Value::Str(s)) => ctx.out.bulk(s),
        Some(_) => return Err(CmdError::WrongType),
    }
    Ok(())
}

/// Which expiry option was given (units and relative/absolute).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExpireKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

/// Parsed SET / GETEX options.
#[derive(Debug, Default)]
struct ExtOptions {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The expiry option and the index of its argument.
    expire: Option<(ExpireKind, usize)>,
}

/// Redis' parseExtendedStringArgumentsOrReply: `set` selects the SET
/// options (NX XX GET KEEPTTL), otherwise the GETEX ones (PERSIST).
fn parse_ext_options(ctx: &Ctx, set: bool) -> Result<ExtOptions, CmdError> {
    let mut o = ExtOptions::default();
    let mut j = if set { 3 } else { 2 };
    while j < ctx.argc() {
        let a = ctx.arg(j);
        let has_next = j + 1 < ctx.argc();
        let is = |w: &str| a.eq_ignore_ascii_case(w.as_bytes());
        let exp = o.expire.map(|e| e.0);
        if is("NX") && !o.xx && set {
            o.nx = true;
        } else if is("XX") && !o.nx && set {
            o.xx = true;
        } else if is("GET") && set {
            o.get = true;
        } else if is("KEEPTTL") && !o.persist && exp.is_none() && set {
            o.keepttl = true;
        } else if is("PERSIST") && !set && exp.is_none() && !o.keepttl {
            o.persist = true;
        } else if let Some(kind) = [
            ("EX", ExpireKind::Ex),
            ("PX", ExpireKind::Px),
            ("EXAT", ExpireKind::ExAt),
            ("PXAT", ExpireKind::PxAt),
        ]
        .iter()
        .find(|(w, _)| is(w))
        .map(|(_, k)| *k)
        .filter(|k| !o.keepttl && !o.persist && has_next && exp.is_none_or(|e| e == *k))
        {
            o.expire = Some((kind, j + 1));
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(o)
}

/// Redis' getExpireMillisecondsOrReply: the absolute expiry in Unix ms.
fn expire_ms(ctx: &Ctx, kind: ExpireKind, arg: usize, cmd: &str) -> Result<i64, CmdError> {
    let n = ctx.int_arg(arg)?;
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    if n <= 0 || (seconds && n > i64::MAX / 1000) {
        return Err(CmdError::InvalidExpire(cmd.into()));
    }
    let mut ms = if seconds { n * 1000 } else { n };
    if matches!(kind, ExpireKind::Ex | ExpireKind::Px) {
        // Redis adds with wrap-around and then rejects non-positive values.
        ms = ms.wrapping_add(ctx.ks.now_ms);
    }
    if ms <= 0 {
        return Err(CmdError::InvalidExpire(cmd.into()));
    }
    Ok(ms)
}

/// Where SET-like commands reply from.
enum SetReply {
    /// SET: +OK / nil.
    Set,
    /// SETNX: :1 / :0.
    Int,
}

/// Redis' setGenericCommand.
fn set_generic(
    ctx: &mut Ctx,
    o: &ExtOptions,
    val_idx: usize,
    expire_at: Option<i64>,
    reply: SetReply,
) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let old = if o.get {
        let v = get_generic(ctx)?;
        // Redis looks the key up again to write it.
        ctx.ks.access_again();
        Some(v)
    } else {
        None
    };
    // Only NX/XX need to know whether the key exists: a plain SET skips
    // that lookup (one hash probe of three on SET's path).
    let write = if o.nx || o.xx {
        let found = ctx.ks.exists(db, key);
        !((o.nx && found) || (o.xx && !found))
    } else {
        true
    };
    if write {
        let v = Value::str(&args[val_idx]);
        if o.keepttl {
            ctx.ks.set_keep_ttl(db, key, v);
        } else {
            ctx.ks.set(db, key, v);
        }
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::STRING, "set", key);
        if let Some(at) = expire_at {
            ctx.ks.set_expire(db, key, at);
            ctx.ks.propagate(
                db,
                argv![b"SET", key, args[val_idx], b"PXAT", i64_bytes(at)],
            );
            ctx.ks.notify(db, notify::GENERIC, "expire", key);
        } else if o.get {
            // Propagated without the GET option(s).
            let eff: Vec<Bytes> = args
                .iter()
                .enumerate()
                .filter(|(j, a)| *j < 3 || !a.eq_ignore_ascii_case(b"GET"))
                .map(|(_, a)| a.clone())
                .collect();
            ctx.ks.propagate(db, eff);
        }
    }
    match (old, reply) {
        (Some(Some(s)), _) => ctx.out.bulk(&s),
        (Some(None), _) => ctx.out.null(),
        (None, SetReply::Set) if write => ctx.out.ok(),
        (None, SetReply::Set) => ctx.out.null(),
        (None, SetReply::Int) => ctx.out.int(write as i64),
    }
    Ok(())
}

fn set(ctx: &mut Ctx) -> CmdResult {
    let o = parse_ext_options(ctx, true)?;
    let at = match o.expire {
        Some((kind, i)) => Some(expire_ms(ctx, kind, i, "set")?),
        None => None,
    };
    set_generic(ctx, &o, 2, at, SetReply::Set)
}

fn setnx(ctx: &mut Ctx) -> CmdResult {
    let o = ExtOptions {
        nx: true,
        ..Default::default()
    };
    set_generic(ctx, &o, 2, None, SetReply::Int)
}

fn setex_generic(ctx: &mut Ctx, kind: ExpireKind) -> CmdResult {
    let name = ctx.name();
    let at = expire_ms(ctx, kind, 2, &name)?;
    set_generic(ctx, &ExtOptions::default(), 3, Some(at), SetReply::Set)
}

fn setex(ctx: &mut Ctx) -> CmdResult {
    setex_generic(ctx, ExpireKind::Ex)
}

fn psetex(ctx: &mut Ctx) -> CmdResult {
    setex_generic(ctx, ExpireKind::Px)
}

fn getset(ctx: &mut Ctx) -> CmdResult {
    let old = get_generic(ctx)?;
    // Redis looks the key up again to write it.
    ctx.ks.access_again();
    let db = ctx.db();
    let args = ctx.args;
    ctx.ks.set(db, &args[1], Value::str(&args[2]));
    ctx.ks.modified(db, &args[1]);
    ctx.ks.notify(db, notify::STRING, "set", &args[1]);
    ctx.ks.propagate(db, argv![b"SET", args[1], args[2]]);
    match old {
        Some(s) => ctx.out.bulk(&s),
        None => ctx.out.null(),
    }
    Ok(())
}

fn getdel(ctx: &mut Ctx) -> CmdResult {
    let old = get_generic(ctx)?;
    let db = ctx.db();
    let key = &ctx.args[1];
    match old {
        Some(s) => {
            ctx.ks.remove(db, key);
            ctx.ks.modified(db, key);
            ctx.ks.notify(db, notify::GENERIC, "del", key);
            ctx.ks.propagate(db, argv![b"DEL", key]);
            ctx.out.bulk(&s);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

fn getex(ctx: &mut Ctx) -> CmdResult {
    let o = parse_ext_options(ctx, false)?;
    let Some(val) = get_generic(ctx)? else {
        ctx.out.null();
        return Ok(());
    };
    let at = match o.expire {
        Some((kind, i)) => Some(expire_ms(ctx, kind, i, "getex")?),
        None => None,
    };
    ctx.out.bulk(&val);
    let db = ctx.db();
    let key = &ctx.args[1];
    let absolute = matches!(
        o.expire,
        Some((ExpireKind::ExAt, _)) | Some((ExpireKind::PxAt, _))
    );
    match at {
        Some(at) if absolute && at <= ctx.ks.now_ms && !ctx.ks.applying => {
            ctx.ks.remove(db, key);
            ctx.ks.propagate(db, argv![b"DEL", key]);
            ctx.ks.modified(db, key);
            ctx.ks.notify(db, notify::GENERIC, "del", key);
        }
        Some(at) => {
            ctx.ks.set_expire(db, key, at);
            ctx.ks
                .propagate(db, argv![b"PEXPIREAT", key, i64_bytes(at)]);
            ctx.ks.modified(db, key);
            ctx.ks.notify(db, notify::GENERIC, "expire", key);
        }
        None if o.persist && ctx.ks.persist(db, key) => {
            ctx.ks.modified(db, key);
            ctx.ks.propagate(db, argv![b"PERSIST", key]);
            ctx.ks.notify(db, notify::GENERIC, "persist", key);
        }
        None => {}
    }
    Ok(())
}

fn mget(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    ctx.out.array(args.len() - 1);
    for k in &args[1..] {
        match ctx.ks.get_counted(db, k) {
            Some(Value::Str(s)) => ctx.out.bulk(s),
            _ => ctx.out.null(),
        }
    }
    Ok(())
}

fn mset_generic(ctx: &mut Ctx, nx: bool) -> CmdResult {
    if ctx.argc().is_multiple_of(2) {
        return Err(CmdError::WrongArity(ctx.name()));
    }
    let db = ctx.db();
    let args = ctx.args;
    if nx && args[1..].chunks(2).any(|kv| ctx.ks.exists(db, &kv[0])) {
        ctx.out.int(0);
        return Ok(());
    }
    for kv in args[1..].chunks(2) {
        ctx.ks.set(db, &kv[0], Value::str(&kv[1]));
        ctx.ks.modified(db, &kv[0]);
        ctx.ks.notify(db, notify::STRING, "set", &kv[0]);
    }
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn mset(ctx: &mut Ctx) -> CmdResult {
    mset_generic(ctx, false)
}

fn msetnx(ctx: &mut Ctx) -> CmdResult {
    mset_generic(ctx, true)
}

fn append(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let add = &args[2];
    let total = match ctx.ks.get_str(db, key)? {
        None => {
            ctx.ks.set(db, key, Value::str(add));
            add.len()
        }
        Some(s) => {
            let cur = s.len();
            check_string_length(ctx, cur as u64, add.len() as u64)?;
            let Some(Value::Str(s)) = ctx.ks.get_mut(db, key) else {
                return Err(CmdError::WrongType);
            };
            let mut v = std::mem::take(s).into_vec();
            v.extend_from_slice(add);
            let n = v.len();
            *s = v.into_boxed_slice();
            n
        }
    };
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::STRING, "append", key);
    ctx.out.int(total as i64);
    Ok(())
}

fn strlen(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let n = ctx
        .ks
        .get_str_read(db, &ctx.args[1])?
        .map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// Redis' incrDecrCommand.
fn incr_decr(ctx: &mut Ctx, incr: i64) -> CmdResult {
    let db = ctx.db();
    let key = &ctx.args[1];
    let old = match ctx.ks.get_str(db, key)? {
        None => 0,
        Some(s) => parse_i64(s).ok_or(CmdError::NotInteger)?,
    };
    let new = old.checked_add(incr).ok_or(CmdError::Overflow)?;
    ctx.ks.set_keep_ttl(db, key, Value::str(&i64_bytes(new)));
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::STRING, "incrby", key);
    ctx.out.int(new);
    Ok(())
}

fn incr(ctx: &mut Ctx) -> CmdResult {
    incr_decr(ctx, 1)
}

fn decr(ctx: &mut Ctx) -> CmdResult {
    incr_decr(ctx, -1)
}

fn incrby(ctx: &mut Ctx) -> CmdResult {
    let n = ctx.int_arg(2)?;
    incr_decr(ctx, n)
}

fn decrby(ctx: &mut Ctx) -> CmdResult {
    let n = ctx.int_arg(2)?;
    if n == i64::MIN {
        return Err(CmdError::err("decrement would overflow"));
    }
    incr_decr(ctx, -n)
}

fn incrbyfloat(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let old = match ctx.ks.get_str(db, key)? {
        None => Some(LongDouble::ZERO),
        Some(s) => LongDouble::parse(s),
    };
    let (Some(old), Some(incr)) = (old, LongDouble::parse(&args[2])) else {
        return Err(CmdError::NotFloat);
    };
    let Some(new) = old.add(&incr) else {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    };
    let text = new.to_human_string();
    ctx.ks.set_keep_ttl(db, key, Value::str(text.as_bytes()));
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::STRING, "incrbyfloat", key);
    ctx.ks
        .propagate(db, argv![b"SET", key, text.as_bytes(), b"KEEPTTL"]);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

/// GETRANGE / SUBSTR.
fn getrange(ctx: &mut Ctx) -> CmdResult {
    let mut start = ctx.int_arg(2)?;
    let mut end = ctx.int_arg(3)?;
    let db = ctx.db();
    let Some(s) = ctx.ks.get_str_read(db, &ctx.args[1])? else {
        ctx.out.bulk(b"");
        return Ok(());
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        ctx.out.bulk(b"");
        return Ok(());
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&s[start as usize..=end as usize]);
    }
    Ok(())
}

fn setrange(ctx: &mut Ctx) -> CmdResult {
    let offset = ctx.int_arg(2)?;
    if offset < 0 {
        return Err(CmdError::err("offset is out of range"));
    }
    let offset = offset as u64;
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let value = &args[3];
    match ctx.ks.get_str(db, key)? {
        None => {
            if value.is_empty() {
                ctx.out.int(0);
                return Ok(());
            }
            check_string_length(ctx, offset, value.len() as u64)?;
            ctx.ks.set(db, key, Value::Str(Box::default()));
        }
        Some(s) => {
            if value.is_empty() {
                ctx.out.int(s.len() as i64);
                return Ok(());
            }
            check_string_length(ctx, offset, value.len() as u64)?;
        }
    }
    let Some(Value::Str(s)) = ctx.ks.get_mut(db, key) else {
        return Err(CmdError::WrongType);
    };
    let offset = offset as usize;
    let need = offset + value.len();
    if need > s.len() {
        let mut v = std::mem::take(s).into_vec();
        v.resize(need, 0);
        *s = v.into_boxed_slice();
    }
    s[offset..need].copy_from_slice(value);
    let n = s.len();
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::STRING, "setrange", key);
    ctx.out.int(n as i64);
    Ok(())
}

/// LCS key1 key2 [LEN] [IDX] [MINMATCHLEN len] [WITHMATCHLEN]
fn lcs(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let mut get = |k: &[u8]| -> Result<Box<[u8]>, CmdError> {
        match ctx.ks.get_counted(db, k) {
            None => Ok(Box::default()),
            Some(Value::Str(s)) => Ok(s.clone()),
            Some(_) => Err(CmdError::err(
                "The specified keys must contain string values",
            )),
        }
    };
    let a = get(&args[1]);
    let b = get(&args[2]);
    let (a, b) = (a?, b?);
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        if ctx.arg_is(j, "IDX") {
            getidx = true;
        } else if ctx.arg_is(j, "LEN") {
            getlen = true;
        } else if ctx.arg_is(j, "WITHMATCHLEN") {
            withmatchlen = true;
        } else if ctx.arg_is(j, "MINMATCHLEN") && more {
            minmatchlen = ctx.int_arg(j + 1)?.max(0);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if getlen && getidx {
        return Err(CmdError::err(
            "If you want both the length and indexes, please just use IDX.",
        ));
    }
    if a.len() >= u32::MAX as usize - 1 || b.len() >= u32::MAX as usize - 1 {
        return Err(CmdError::err("String too long for LCS"));
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let bytes = cells.saturating_mul(4);
    let max = ctx.srv.config.get_i64("proto-max-bulk-len").max(0) as u64;
    if bytes > max {
        return Err(CmdError::err(
            "Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
        ));
    }
    let w = blen + 1;
    let mut t: Vec<u32> = Vec::new();
    if t.try_reserve_exact(cells as usize).is_err() {
        return Err(CmdError::err(
            "Insufficient memory, failed allocating transient memory for LCS",
        ));
    }
    t.resize(cells as usize, 0);
    for i in 1..=alen {
        for jj in 1..=blen {
            t[i * w + jj] = if a[i - 1] == b[jj - 1] {
                t[(i - 1) * w + jj - 1] + 1
            } else {
                t[(i - 1) * w + jj].max(t[i * w + jj - 1])
            };
        }
    }
    let total = t[alen * w + blen];
    let computelcs = getidx || !getlen;
    let mut result = vec![0u8; if computelcs { total as usize } else { 0 }];
    let mut ranges: Vec<(usize, usize, usize, usize, usize)> = Vec::new();
    let mut idx = total as usize;
    let (mut i, mut jj) = (alen, blen);
    // alen in arange_start signals "no range open".
    let (mut ars, mut are, mut brs, mut bre) = (alen, 0usize, 0usize, 0usize);
    while computelcs && i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            if ars == alen {
                ars = i - 1;
                are = i - 1;
                brs = jj - 1;
                bre = jj - 1;
            } else if ars == i && brs == jj {
                ars -= 1;
                brs -= 1;
            } else {
                emit = true;
            }
            if ars == 0 || brs == 0 {
                emit = true;
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            let l1 = t[(i - 1) * w + jj];
            let l2 = t[i * w + jj - 1];
            if l1 > l2 {
                i -= 1;
            } else {
                jj -= 1;
            }
            if ars != alen {
                emit = true;
            }
        }
        let match_len = are.wrapping_sub(ars).wrapping_add(1);
        if emit {
            if minmatchlen == 0 || match_len as i64 >= minmatchlen {
                ranges.push((ars, are, brs, bre, match_len));
            }
            ars = alen;
        }
    }
    if getidx {
        ctx.out.map(2);
        ctx.out.bulk(b"matches");
        ctx.out.array(ranges.len());
        for (ars, are, brs, bre, ml) in ranges {
            ctx.out.array(2 + withmatchlen as usize);
            ctx.out.array(2);
            ctx.out.int(ars as i64);
            ctx.out.int(are as i64);
            ctx.out.array(2);
            ctx.out.int(brs as i64);
            ctx.out.int(bre as i64);
            if withmatchlen {
                ctx.out.int(ml as i64);
            }
        }
        ctx.out.bulk(b"len");
        ctx.out.int(total as i64);
    } else if getlen {
        ctx.out.int(total as i64);
    } else {
        ctx.out.bulk(&result);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::engine::{Engine, EngineOptions};
    use crate::resp::ReplyBuf;
    use bytes::Bytes;

    fn run(e: &mut Engine, id: u64, line: &str) -> Vec<u8> {
        let argv: Vec<Bytes> = line
            .split_whitespace()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        let mut out = ReplyBuf::new(false);
        e.execute_one(id, &argv, &mut out);
        out.buf
    }

    /// Replaying the effects of the string/bitmap commands on an empty
    /// engine gives the same data set and expiries.
    #[test]
    fn effects_replay_to_the_same_data_set() {
        let opts = EngineOptions::default();
        let mut e = Engine::new(&opts);
        e.ks.effects.capture = true;
        let id = e.register_client(None, String::new(), String::new());
        for line in [
            "SET a 1",
            "SET b v EX 100",
            "SET c v PX 100000 GET",
            "SET d v EXAT 99999999999",
            "SET e v",
            "SET e w KEEPTTL GET",
            "SETEX f 100 x",
            "PSETEX g 100000 x",
            "GETSET a 5",
            "INCR a",
            "INCRBY a 10",
            "DECRBY a 3",
            "INCRBYFLOAT h 1.5",
            "INCRBYFLOAT h 2.25",
            "SET ttl x EX 1000",
            "INCRBYFLOAT ttl2 1",
            "APPEND e tail",
            "SETRANGE e 10 zz",
            "MSET m1 a m2 b",
            "MSETNX m3 c m4 d",
            "SETBIT bits 77 1",
            "BITFIELD bf SET u8 0 200 INCRBY i5 3 7",
            "BITFIELD bf2 OVERFLOW FAIL INCRBY u2 0 9",
            "BITOP XOR dst a e",
            "BITOP AND m1 nokey",
            "GETDEL m2",
            "SET gx v",
            "GETEX gx EX 500",
            "SET gy v EX 100",
            "GETEX gy PERSIST",
            "SET gz v",
            "GETEX gz PXAT 1",
        ] {
            let r = run(&mut e, id, line);
            assert!(
                !r.starts_with(b"-"),
                "{line}: {}",
                String::from_utf8_lossy(&r)
            );
        }
        let records = e.ks.effects.take_records();
        let mut r = Engine::new(&opts);
        for (_, rec) in &records {
            // PEXPIREAT and PERSIST are the keys family's: apply by hand here.
            for cmd in &rec.commands {
                let name = cmd.argv[0].to_ascii_uppercase();
                if name == b"PEXPIREAT" {
                    let at = crate::numbers::parse_i64(&cmd.argv[2]).unwrap();
                    r.ks.set_expire(cmd.db as usize, &cmd.argv[1], at);
                } else if name == b"PERSIST" {
                    r.ks.persist(cmd.db as usize, &cmd.argv[1]);
                } else {
                    let one = crate::effect::EffectRecord {
                        engine_version: rec.engine_version,
                        commands: vec![cmd.clone()],
                    };
                    r.apply_effect(&one).expect("effect applies");
                }
            }
        }
        let (a, b) = (&e.ks.dbs[0], &r.ks.dbs[0]);
        assert_eq!(a.data.len(), b.data.len());
        for (k, o) in &a.data {
            assert_eq!(
                Some(&o.value),
                b.value(k),
                "key {:?}",
                String::from_utf8_lossy(k)
            );
            assert_eq!(a.expire_of(k), b.expire_of(k), "ttl of {:?}", k);
        }
        assert!(!a.data.contains_key(&b"gz"[..]));
        assert!(a.expire_of(b"gy").is_none() && a.expire_of(b"gx").is_some());
        assert!(a.expire_of(b"e").is_none());
    }
}
