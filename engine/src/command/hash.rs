//! Hash commands.
//!
//! Field order: Redis keeps small hashes as a listpack, in insertion order,
//! with deletions preserving the order of the rest. We keep the IndexMap in
//! the same order while a hash is that small (removal by shift), and use the
//! O(1) swap removal above that size, where Redis' order is its dict's anyway.

use bytes::Bytes;
use rand::Rng;

use super::flags::*;
use super::random_picks;
use super::CommandSpec;
use crate::argv;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Elem, Map, Value, ValueType};
use crate::long_double::LongDouble;
use crate::numbers;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", hset),
    CommandSpec::new(
        "hsetnx",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hsetnx,
    ),
    CommandSpec::new("hget", 3, READONLY | FAST, (1, 1, 1), "hash", hget),
    CommandSpec::new(
        "hmset",
        -4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hmset,
    ),
    CommandSpec::new("hmget", -3, READONLY | FAST, (1, 1, 1), "hash", hmget),
    CommandSpec::new("hdel", -3, WRITE | FAST, (1, 1, 1), "hash", hdel),
    CommandSpec::new("hexists", 3, READONLY | FAST, (1, 1, 1), "hash", hexists),
    CommandSpec::new("hlen", 2, READONLY | FAST, (1, 1, 1), "hash", hlen),
    CommandSpec::new("hkeys", 2, READONLY, (1, 1, 1), "hash", hkeys),
    CommandSpec::new("hvals", 2, READONLY, (1, 1, 1), "hash", hvals),
    CommandSpec::new("hgetall", 2, READONLY, (1, 1, 1), "hash", hgetall),
    CommandSpec::new(
        "hincrby",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hincrby,
    ),
    CommandSpec::new(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hash",
        hincrbyfloat,
    ),
    CommandSpec::new("hstrlen", 3, READONLY | FAST, (1, 1, 1), "hash", hstrlen),
    CommandSpec::new("hrandfield", -2, READONLY, (1, 1, 1), "hash", hrandfield),
    CommandSpec::new("hscan", -3, READONLY, (1, 1, 1), "hash", hscan),
];

/// Redis' hash-max-listpack-entries / -value defaults: below these a hash
/// is a listpack (insertion order, HSCAN answers in one call).
const LISTPACK_ENTRIES: usize = 512;
const LISTPACK_VALUE: usize = 64;

/// Removes a field, keeping insertion order while the hash is small.
fn remove_field(h: &mut Map<Elem, Elem>, field: &[u8]) -> bool {
    if h.len() <= LISTPACK_ENTRIES {
        h.shift_remove(field).is_some()
    } else {
        h.swap_remove(field).is_some()
    }
}

/// Sets a field; returns whether it is new.
fn set_field(h: &mut Map<Elem, Elem>, field: &[u8], value: &[u8]) -> bool {
    match h.get_mut(field) {
        Some(v) => {
            *v = value.into();
            false
        }
        None => {
            h.insert(field.into(), value.into());
            true
        }
    }
}

fn hset_generic(ctx: &mut Ctx, name: &str) -> Result<usize, CmdError> {
    if ctx.argc() % 2 == 1 {
        return Err(CmdError::WrongArity(name.into()));
    }
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    ctx.ks.check_type(db, key, ValueType::Hash)?;
    let Value::Hash(h) = ctx.ks.get_or_insert_with(db, key, Value::new_hash) else {
        return Err(CmdError::WrongType);
    };
    let mut created = 0;
    for pair in args[2..].chunks(2) {
        if set_field(h, &pair[0], &pair[1]) {
            created += 1;
        }
    }
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::HASH, "hset", key);
    Ok(created)
}

fn hset(ctx: &mut Ctx) -> CmdResult {
    let n = hset_generic(ctx, "hset")?;
    ctx.out.int(n as i64);
    Ok(())
}

fn hmset(ctx: &mut Ctx) -> CmdResult {
    hset_generic(ctx, "hmset")?;
    ctx.out.ok();
    Ok(())
}

fn hsetnx(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    if let Some(h) = ctx.ks.get_hash(db, key)? {
        if h.contains_key(&args[2][..]) {
            ctx.out.int(0);
            return Ok(());
        }
    }
    let Value::Hash(h) = ctx.ks.get_or_insert_with(db, key, Value::new_hash) else {
        return Err(CmdError::WrongType);
    };
    set_field(h, &args[2], &args[3]);
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::HASH, "hset", key);
    ctx.out.int(1);
    Ok(())
}

fn hget(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    match ctx.ks.get_hash_read(db, &args[1])? {
        Some(h) => match h.get(&args[2][..]) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        },
        None => ctx.out.null(),
    }
    Ok(())
}

fn hmget(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let h = ctx.ks.get_hash_read(db, &args[1])?;
    ctx.out.array(args.len() - 2);
    for f in &args[2..] {
        match h.and_then(|h| h.get(&f[..])) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn hdel(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let Some(h) = ctx.ks.get_hash_mut(db, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    for f in &args[2..] {
        if remove_field(h, f) {
            deleted += 1;
            if h.is_empty() {
                break;
            }
        }
    }
    if deleted > 0 {
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::HASH, "hdel", key);
        if ctx.ks.remove_if_empty(db, key) {
            ctx.ks.notify(db, notify::GENERIC, "del", key);
        }
    }
    ctx.out.int(deleted);
    Ok(())
}

fn hexists(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let found = ctx
        .ks
        .get_hash_read(db, &args[1])?
        .is_some_and(|h| h.contains_key(&args[2][..]));
    ctx.out.int(found as i64);
    Ok(())
}

fn hlen(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let n = ctx.ks.get_hash_read(db, &args[1])?.map_or(0, |h| h.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn hstrlen(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let n = ctx
        .ks
        .get_hash_read(db, &args[1])?
        .and_then(|h| h.get(&args[2][..]))
        .map_or(0, |v| v.len());
    ctx.out.int(n as i64);
    Ok(())
}

/// HKEYS, HVALS, HGETALL.
fn hgetall_generic(ctx: &mut Ctx, keys: bool, vals: bool) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let h = ctx.ks.get_hash_read(db, &args[1])?;
    let n = h.map_or(0, |h| h.len());
    if keys && vals {
        ctx.out.map(n);
    } else {
        ctx.out.array(n);
    }
    if let Some(h) = h {
        for (k, v) in h.iter() {
            if keys {
                ctx.out.bulk(k);
            }
            if vals {
                ctx.out.bulk(v);
            }
        }
    }
    Ok(())
}

fn hkeys(ctx: &mut Ctx) -> CmdResult {
    hgetall_generic(ctx, true, false)
}

fn hvals(ctx: &mut Ctx) -> CmdResult {
    hgetall_generic(ctx, false, true)
}

fn hgetall(ctx: &mut Ctx) -> CmdResult {
    hgetall_generic(ctx, true, true)
}

fn hincrby(ctx: &mut Ctx) -> CmdResult {
    let incr = ctx.int_arg(3)?;
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let old = match ctx.ks.get_hash(db, key)? {
        Some(h) => match h.get(&args[2][..]) {
            Some(v) => numbers::parse_i64(v)
                .ok_or_else(|| CmdError::err("hash value is not an integer"))?,
            None => 0,
        },
        None => 0,
    };
    let new = old.checked_add(incr).ok_or(CmdError::Overflow)?;
    let Value::Hash(h) = ctx.ks.get_or_insert_with(db, key, Value::new_hash) else {
        return Err(CmdError::WrongType);
    };
    set_field(h, &args[2], &numbers::i64_bytes(new));
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::HASH, "hincrby", key);
    ctx.out.int(new);
    Ok(())
}

fn hincrbyfloat(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    // Redis computes with a C long double (x87 extended on x86-64).
    let incr = LongDouble::parse(&args[3]).ok_or(CmdError::NotFloat)?;
    if !incr.is_finite() {
        return Err(CmdError::err("value is NaN or Infinity"));
    }
    let db = ctx.db();
    let key = &args[1];
    let old = match ctx.ks.get_hash(db, key)? {
        Some(h) => match h.get(&args[2][..]) {
            Some(v) => {
                LongDouble::parse(v).ok_or_else(|| CmdError::err("hash value is not a float"))?
            }
            None => LongDouble::ZERO,
        },
        None => LongDouble::ZERO,
    };
    let Some(new) = old.add(&incr) else {
        return Err(CmdError::err("increment would produce NaN or Infinity"));
    };
    let text = new.to_human_string();
    let Value::Hash(h) = ctx.ks.get_or_insert_with(db, key, Value::new_hash) else {
        return Err(CmdError::WrongType);
    };
    set_field(h, &args[2], text.as_bytes());
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::HASH, "hincrbyfloat", key);
    // The effect is the value reached, not the increment.
    ctx.ks
        .propagate(db, argv![b"HSET", key, args[2], text.as_bytes()]);
    ctx.out.bulk(text.as_bytes());
    Ok(())
}

/// Parses a count argument in [-i64::MAX, i64::MAX] (HRANDFIELD, SRANDMEMBER).
pub(super) fn range_count_arg(ctx: &Ctx, i: usize) -> Result<i64, CmdError> {
    let n = ctx.int_arg(i)?;
    if n == i64::MIN {
        return Err(CmdError::err(
            "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    Ok(n)
}

fn hrandfield(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    if ctx.argc() < 3 {
        match ctx.ks.get_hash_read(db, &args[1])? {
            Some(h) => {
                let i = rand::thread_rng().gen_range(0..h.len());
                let (k, _) = h.get_index(i).expect("index in range");
                ctx.out.bulk(k);
            }
            None => ctx.out.null(),
        }
        return Ok(());
    }
    let count = range_count_arg(ctx, 2)?;
    if ctx.argc() > 4 || (ctx.argc() == 4 && !ctx.arg_is(3, "WITHVALUES")) {
        return Err(CmdError::Syntax);
    }
    let withvalues = ctx.argc() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(CmdError::err("value is out of range"));
    }
    let resp3 = ctx.out.resp3;
    let Some(h) = ctx.ks.get_hash_read(db, &args[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.array(0);
        return Ok(());
    }
    let size = h.len();
    let limit = random_picks::limit(ctx.srv);
    let out = &mut *ctx.out;
    let emit = |out: &mut crate::resp::ReplyBuf, i: usize| {
        let (k, v) = h.get_index(i).expect("index in range");
        if withvalues && resp3 {
            out.array(2);
        }
        out.bulk(k);
        if withvalues {
            out.bulk(v);
        }
    };
    let header = |out: &mut crate::resp::ReplyBuf, n: usize| {
        if withvalues && !resp3 {
            out.array(2 * n);
        } else {
            out.array(n);
        }
    };
    let mut rng = rand::thread_rng();
    if count < 0 || count == 1 {
        // With repetitions.
        let n = count.unsigned_abs() as usize;
        return random_picks::with_repetitions(
            out,
            n,
            limit,
            |o| header(o, n),
            |o| emit(o, rng.gen_range(0..size)),
        );
    } else if count as u64 >= size as u64 {
        header(out, size);
        for i in 0..size {
            emit(out, i);
        }
    } else {
        let n = count as usize;
        header(out, n);
        for i in rand::seq::index::sample(&mut rng, size, n) {
            emit(out, i);
        }
    }
    Ok(())
}

/// SCAN-family options (HSCAN, SSCAN).
pub(super) struct ScanOpts {
    pub cursor: u64,
    pub count: usize,
    pub pattern: Option<Bytes>,
}

/// Parses the options after the cursor (index 3 on).
pub(super) fn parse_scan_opts(ctx: &Ctx, cursor: u64) -> Result<ScanOpts, CmdError> {
    let mut o = ScanOpts {
        cursor,
        count: 10,
        pattern: None,
    };
    let mut i = 3;
    while i < ctx.argc() {
        let more = ctx.argc() - i >= 2;
        if ctx.arg_is(i, "COUNT") && more {
            let n = ctx.int_arg(i + 1)?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            o.count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if ctx.arg_is(i, "MATCH") && more {
            let p = ctx.args[i + 1].clone();
            // "*" matches everything: skip the matching.
            o.pattern = if &p[..] == b"*" { None } else { Some(p) };
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

/// Writes a SCAN reply: the next cursor and the elements.
pub(super) fn write_scan_reply(out: &mut crate::resp::ReplyBuf, next: u64, items: &[&[u8]]) {
    out.array(2);
    let mut b = itoa::Buffer::new();
    out.bulk(b.format(next).as_bytes());
    out.array(items.len());
    for it in items {
        out.bulk(it);
    }
}

/// Whether `s` passes the MATCH filter.
pub(super) fn scan_match(pattern: &Option<Bytes>, s: &[u8]) -> bool {
    match pattern {
        None => true,
        Some(p) => crate::glob::glob_match(p, s, false),
    }
}

fn hscan(ctx: &mut Ctx) -> CmdResult {
    let cursor = super::keys::parse_cursor(ctx.arg(2))?;
    let db = ctx.db();
    let args = ctx.args;
    if ctx.ks.get_hash_read(db, &args[1])?.is_none() {
        write_scan_reply(ctx.out, 0, &[]);
        return Ok(());
    }
    let o = parse_scan_opts(ctx, cursor)?;
    let Some(h) = ctx.ks.get_hash(db, &args[1])? else {
        return Ok(());
    };
    let small = h.len() <= LISTPACK_ENTRIES
        && h.iter()
            .all(|(k, v)| k.len() <= LISTPACK_VALUE && v.len() <= LISTPACK_VALUE);
    // A listpack hash is answered whole; a larger one pages by index. Each
    // field counts twice toward COUNT (Redis counts field and value).
    let (start, end) = if small {
        (0, h.len())
    } else {
        let start = o.cursor.min(h.len() as u64) as usize;
        let fields = o.count.div_ceil(2);
        (start, start.saturating_add(fields).min(h.len()))
    };
    let next = if end >= h.len() { 0 } else { end as u64 };
    let mut items: Vec<&[u8]> = Vec::new();
    for i in start..end {
        let (k, v) = h.get_index(i).expect("index in range");
        if scan_match(&o.pattern, k) {
            items.push(k);
            items.push(v);
        }
    }
    write_scan_reply(ctx.out, next, &items);
    Ok(())
}
