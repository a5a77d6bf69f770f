//! List commands, blocking pops included.
//!
//! Semantics follow Redis 7.0's t_list.c: argument parsing order (which
//! error wins), index rules, keyspace events, and the effects of blocking
//! commands (always their plain, non-blocking form).

use std::collections::VecDeque;

use bytes::Bytes;

use super::flags::*;
use super::CommandSpec;
use crate::argv;
use crate::engine::{Ctx, TimeoutReply};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Elem, Keyspace, Value, ValueType};
use crate::numbers::parse_i64;

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
    CommandSpec::new(
        "lpushx",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "list",
        lpushx,
    ),
    CommandSpec::new(
        "rpushx",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "list",
        rpushx,
    ),
    CommandSpec::new("lpop", -2, WRITE | FAST, (1, 1, 1), "list", lpop),
    CommandSpec::new("rpop", -2, WRITE | FAST, (1, 1, 1), "list", rpop),
    CommandSpec::new("llen", 2, READONLY | FAST, (1, 1, 1), "list", llen),
    CommandSpec::new("lrange", 4, READONLY, (1, 1, 1), "list", lrange),
    CommandSpec::new("lindex", 3, READONLY, (1, 1, 1), "list", lindex),
    CommandSpec::new("lset", 4, WRITE | DENYOOM, (1, 1, 1), "list", lset),
    CommandSpec::new("linsert", 5, WRITE | DENYOOM, (1, 1, 1), "list", linsert),
    CommandSpec::new("lrem", 4, WRITE, (1, 1, 1), "list", lrem),
    CommandSpec::new("ltrim", 4, WRITE, (1, 1, 1), "list", ltrim),
    CommandSpec::new("lpos", -3, READONLY, (1, 1, 1), "list", lpos),
    CommandSpec::new("lmove", 5, WRITE | DENYOOM, (1, 2, 1), "list", lmove),
    CommandSpec::new(
        "rpoplpush",
        3,
        WRITE | DENYOOM,
        (1, 2, 1),
        "list",
        rpoplpush,
    ),
    CommandSpec::new("lmpop", -4, WRITE, (0, 0, 0), "list", lmpop).with_keys_fn(lmpop_keys),
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
    CommandSpec::new(
        "blmove",
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        (1, 2, 1),
        "list",
        blmove,
    ),
    CommandSpec::new(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        (1, 2, 1),
        "list",
        brpoplpush,
    ),
    CommandSpec::new("blmpop", -5, WRITE | BLOCKING, (0, 0, 0), "list", blmpop)
        .with_keys_fn(blmpop_keys),
];

fn lmpop_keys(argv: &[Bytes]) -> Result<Vec<usize>, CmdError> {
    super::numkeys_keys(argv, 1, &[])
}

fn blmpop_keys(argv: &[Bytes]) -> Result<Vec<usize>, CmdError> {
    super::numkeys_keys(argv, 2, &[])
}

// --- helpers -------------------------------------------------------------

/// Redis' getLongFromObjectOrReply with no custom message.
fn long_arg(ctx: &Ctx, i: usize) -> Result<i64, CmdError> {
    parse_i64(ctx.arg(i)).ok_or(CmdError::NotInteger)
}

/// Redis' getRangeLongFromObjectOrReply with a custom message: any failure
/// (not an integer, or outside `min..=max`) answers `ERR msg`.
fn range_arg(ctx: &Ctx, i: usize, min: i64, max: i64, msg: &str) -> Result<i64, CmdError> {
    match parse_i64(ctx.arg(i)) {
        Some(n) if n >= min && n <= max => Ok(n),
        _ => Err(CmdError::err(msg)),
    }
}

/// LEFT / RIGHT (getListPositionFromObjectOrReply): true for LEFT.
fn where_arg(ctx: &Ctx, i: usize) -> Result<bool, CmdError> {
    if ctx.arg_is(i, "LEFT") {
        Ok(true)
    } else if ctx.arg_is(i, "RIGHT") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

/// Whether the handler is being re-run for a client blocked on its keys.
/// Redis 7.0 serves such clients only from keys that hold lists: a key
/// that became another type keeps them waiting instead of failing them.
fn serving_blocked(ctx: &Ctx) -> bool {
    ctx.client.blocked_on.is_some()
}

/// The keys a blocking pop may take from: all of them on the first run;
/// when serving a blocked client, only the key that became ready (as Redis
/// 7.0 does), if it is one of them.
fn candidate_keys<'k>(ctx: &Ctx, keys: &'k [Bytes]) -> &'k [Bytes] {
    if !serving_blocked(ctx) {
        return keys;
    }
    match &ctx.srv.serving_key {
        Some((db, k)) if *db == ctx.db() => match keys.iter().position(|x| x[..] == k[..]) {
            Some(i) => &keys[i..=i],
            None => keys,
        },
        _ => keys,
    }
}

/// A list for reading (keyspace hits/misses counted, like lookupKeyRead).
fn read_list<'a>(
    ks: &'a mut Keyspace,
    db: usize,
    key: &[u8],
) -> Result<Option<&'a VecDeque<Elem>>, CmdError> {
    match ks.get_counted(db, key) {
        None => Ok(None),
        Some(Value::List(l)) => Ok(Some(l)),
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Converts a possibly negative index to a position in a list of `len`.
fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if index < 0 { len + index } else { index };
    (0..len).contains(&i).then_some(i as usize)
}

/// Redis' start/end normalisation for LRANGE and LTRIM: the inclusive
/// range `[start, end]` inside the list, or `None` when it is empty.
fn resolve_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize))
}

fn pop_event(left: bool) -> &'static str {
    if left {
        "lpop"
    } else {
        "rpop"
    }
}

fn push_event(left: bool) -> &'static str {
    if left {
        "lpush"
    } else {
        "rpush"
    }
}

fn side(left: bool) -> &'static [u8] {
    if left {
        b"LEFT"
    } else {
        b"RIGHT"
    }
}

/// Pops up to `count` elements from the list at `key` (which must exist and
/// be a list), with Redis' bookkeeping (listElementsRemoved): the pop event,
/// `del` when the list empties, and the modification.
fn pop_from(ks: &mut Keyspace, db: usize, key: &[u8], left: bool, count: usize) -> Vec<Elem> {
    let mut out = Vec::new();
    if let Some(Value::List(list)) = ks.dbs[db].value_mut(key) {
        let n = count.min(list.len());
        out.reserve(n);
        for _ in 0..n {
            let e = if left {
                list.pop_front()
            } else {
                list.pop_back()
            };
            if let Some(e) = e {
                out.push(e);
            }
        }
    }
    ks.notify(db, notify::LIST, pop_event(left), key);
    if ks.remove_if_empty(db, key) {
        ks.notify(db, notify::GENERIC, "del", key);
    }
    ks.modified(db, key);
    out
}

/// Pops up to `count` elements from `key`; `None` if the key is missing.
/// WRONGTYPE if it holds another type.
pub fn pop_elements(
    ctx: &mut Ctx,
    key: &[u8],
    left: bool,
    count: usize,
) -> Result<Option<Vec<Elem>>, CmdError> {
    let db = ctx.db();
    match ctx.ks.get_list(db, key)? {
        None => Ok(None),
        Some(l) if l.is_empty() => Ok(Some(Vec::new())),
        Some(_) => Ok(Some(pop_from(ctx.ks, db, key, left, count))),
    }
}

// --- pushes ----------------------------------------------------------------

fn push(ctx: &mut Ctx, left: bool) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    ctx.ks.check_type(db, key, ValueType::List)?;
    let Value::List(list) = ctx.ks.get_or_insert_with(db, key, Value::new_list) else {
        return Err(CmdError::WrongType);
    };
    for v in &args[2..] {
        if left {
            list.push_front(v[..].into());
        } else {
            list.push_back(v[..].into());
        }
    }
    let len = list.len();
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::LIST, push_event(left), key);
    ctx.out.int(len as i64);
    Ok(())
}

fn lpush(ctx: &mut Ctx) -> CmdResult {
    push(ctx, true)
}

fn rpush(ctx: &mut Ctx) -> CmdResult {
    push(ctx, false)
}

fn pushx(ctx: &mut Ctx, left: bool) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let Some(list) = ctx.ks.get_list_mut(db, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    for v in &args[2..] {
        if left {
            list.push_front(v[..].into());
        } else {
            list.push_back(v[..].into());
        }
    }
    let len = list.len();
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::LIST, push_event(left), key);
    ctx.out.int(len as i64);
    Ok(())
}

fn lpushx(ctx: &mut Ctx) -> CmdResult {
    pushx(ctx, true)
}

fn rpushx(ctx: &mut Ctx) -> CmdResult {
    pushx(ctx, false)
}

fn linsert(ctx: &mut Ctx) -> CmdResult {
    let after = if ctx.arg_is(2, "AFTER") {
        true
    } else if ctx.arg_is(2, "BEFORE") {
        false
    } else {
        return Err(CmdError::Syntax);
    };
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let Some(list) = ctx.ks.get_list_mut(db, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let pivot = &args[3][..];
    let Some(pos) = list.iter().position(|e| &e[..] == pivot) else {
        ctx.out.int(-1);
        return Ok(());
    };
    list.insert(if after { pos + 1 } else { pos }, args[4][..].into());
    let len = list.len();
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::LIST, "linsert", key);
    ctx.out.int(len as i64);
    Ok(())
}

// --- reads -----------------------------------------------------------------

fn llen(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let n = read_list(ctx.ks, db, &ctx.args[1])?.map_or(0, |l| l.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn lindex(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    // The key is looked up (and type-checked) before the index is parsed.
    let Some(list) = read_list(ctx.ks, db, &args[1])? else {
        ctx.out.null();
        return Ok(());
    };
    let index = parse_i64(&args[2]).ok_or(CmdError::NotInteger)?;
    match resolve_index(index, list.len()) {
        Some(i) => ctx.out.bulk(&list[i]),
        None => ctx.out.null(),
    }
    Ok(())
}

fn lrange(ctx: &mut Ctx) -> CmdResult {
    let start = long_arg(ctx, 2)?;
    let end = long_arg(ctx, 3)?;
    let db = ctx.db();
    let Some(list) = read_list(ctx.ks, db, &ctx.args[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    match resolve_range(start, end, list.len()) {
        None => ctx.out.array(0),
        Some((s, e)) => {
            ctx.out.array(e - s + 1);
            for v in list.range(s..=e) {
                ctx.out.bulk(v);
            }
        }
    }
    Ok(())
}

fn lpos(ctx: &mut Ctx) -> CmdResult {
    let mut rank: i64 = 1;
    let mut count: i64 = -1; // -1: no COUNT option
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < ctx.argc() {
        let more = j + 1 < ctx.argc();
        if ctx.arg_is(j, "RANK") && more {
            j += 1;
            rank = long_arg(ctx, j)?;
            if rank == 0 {
                return Err(CmdError::err(
                    "RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                ));
            }
        } else if ctx.arg_is(j, "COUNT") && more {
            j += 1;
            count = range_arg(ctx, j, 0, i64::MAX, "COUNT can't be negative")?;
        } else if ctx.arg_is(j, "MAXLEN") && more {
            j += 1;
            maxlen = range_arg(ctx, j, 0, i64::MAX, "MAXLEN can't be negative")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    // A negative rank searches from the tail. As in Redis, negating
    // LONG_MIN leaves it negative: every match then qualifies.
    let from_head = rank > 0;
    if rank < 0 {
        rank = rank.wrapping_neg();
    }
    let db = ctx.db();
    let args = ctx.args;
    let Some(list) = read_list(ctx.ks, db, &args[1])? else {
        if count != -1 {
            ctx.out.array(0);
        } else {
            ctx.out.null();
        }
        return Ok(());
    };
    let ele = &args[2][..];
    let llen = list.len();
    let mut found: Vec<usize> = Vec::new();
    let mut matches: i64 = 0;
    let mut iter: Box<dyn Iterator<Item = &Elem>> = if from_head {
        Box::new(list.iter())
    } else {
        Box::new(list.iter().rev())
    };
    let mut index: i64 = 0;
    while maxlen == 0 || index < maxlen {
        let Some(e) = iter.next() else { break };
        if &e[..] == ele {
            matches += 1;
            if matches >= rank {
                let pos = if from_head {
                    index as usize
                } else {
                    llen - index as usize - 1
                };
                found.push(pos);
                if count == -1 {
                    break;
                }
                if count != 0 && matches.wrapping_sub(rank).wrapping_add(1) >= count {
                    break;
                }
            }
        }
        index += 1;
    }
    if count != -1 {
        ctx.out.array(found.len());
        for p in found {
            ctx.out.int(p as i64);
        }
    } else {
        match found.first() {
            Some(&p) => ctx.out.int(p as i64),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

// --- in-place writes -------------------------------------------------------

fn lset(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let Some(list) = ctx.ks.get_list_mut(db, key)? else {
        return Err(CmdError::NoSuchKey);
    };
    let index = parse_i64(&args[2]).ok_or(CmdError::NotInteger)?;
    let Some(i) = resolve_index(index, list.len()) else {
        return Err(CmdError::IndexOutOfRange);
    };
    list[i] = args[3][..].into();
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::LIST, "lset", key);
    ctx.out.ok();
    Ok(())
}

fn lrem(ctx: &mut Ctx) -> CmdResult {
    let count = long_arg(ctx, 2)?;
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let Some(list) = ctx.ks.get_list_mut(db, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let ele = &args[3][..];
    // 0 removes every match; a negative count walks from the tail. As in
    // Redis, LONG_MIN stays negative when negated and so has no limit.
    let from_tail = count < 0;
    let limit = if count == 0 || count == i64::MIN {
        usize::MAX
    } else {
        count.unsigned_abs() as usize
    };
    // One linear pass (retain), whatever the number of matches.
    let mut removed = 0usize;
    if from_tail {
        // Removing the last `limit` matches = keeping the first ones.
        let total = list.iter().filter(|e| &e[..] == ele).count();
        let keep = total.saturating_sub(limit);
        let mut seen = 0usize;
        list.retain(|e| {
            if &e[..] != ele {
                return true;
            }
            seen += 1;
            seen <= keep
        });
        removed = total - keep;
    } else {
        list.retain(|e| {
            if removed < limit && &e[..] == ele {
                removed += 1;
                false
            } else {
                true
            }
        });
    }
    if removed > 0 {
        ctx.ks.notify(db, notify::LIST, "lrem", key);
        if ctx.ks.remove_if_empty(db, key) {
            ctx.ks.notify(db, notify::GENERIC, "del", key);
        }
        ctx.ks.modified(db, key);
    }
    ctx.out.int(removed as i64);
    Ok(())
}

fn ltrim(ctx: &mut Ctx) -> CmdResult {
    let start = long_arg(ctx, 2)?;
    let end = long_arg(ctx, 3)?;
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let Some(list) = ctx.ks.get_list_mut(db, key)? else {
        ctx.out.ok();
        return Ok(());
    };
    match resolve_range(start, end, list.len()) {
        None => list.clear(),
        Some((s, e)) => {
            list.truncate(e + 1);
            list.drain(..s);
        }
    }
    // Redis signals the key as modified (WATCH) even when nothing was
    // trimmed; the effect is then a harmless no-op LTRIM.
    ctx.ks.notify(db, notify::LIST, "ltrim", key);
    if ctx.ks.remove_if_empty(db, key) {
        ctx.ks.notify(db, notify::GENERIC, "del", key);
    }
    ctx.ks.modified(db, key);
    ctx.out.ok();
    Ok(())
}

// --- pops ------------------------------------------------------------------

fn pop(ctx: &mut Ctx, left: bool) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(CmdError::WrongArity(ctx.name()));
    }
    let count = if ctx.argc() == 3 {
        Some(range_arg(
            ctx,
            2,
            0,
            i64::MAX,
            "value is out of range, must be positive",
        )? as usize)
    } else {
        None
    };
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let Some(list) = ctx.ks.get_list(db, key)? else {
        match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        }
        return Ok(());
    };
    if count == Some(0) || list.is_empty() {
        // Fast exit: nothing popped, nothing changed.
        ctx.out.array(0);
        return Ok(());
    }
    let v = pop_from(ctx.ks, db, key, left, count.unwrap_or(1));
    match count {
        None => ctx.out.bulk(&v[0]),
        Some(_) => {
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

/// Parsed `numkeys key... LEFT|RIGHT [COUNT n]` of LMPOP/BLMPOP.
struct MpopArgs {
    keys: std::ops::Range<usize>,
    left: bool,
    count: usize,
}

fn parse_mpop(ctx: &Ctx, numkeys_at: usize) -> Result<MpopArgs, CmdError> {
    let numkeys = range_arg(
        ctx,
        numkeys_at,
        1,
        i64::MAX,
        "numkeys should be greater than 0",
    )? as usize;
    let where_at = numkeys_at.saturating_add(numkeys).saturating_add(1);
    if where_at >= ctx.argc() {
        return Err(CmdError::Syntax);
    }
    let left = where_arg(ctx, where_at)?;
    let mut count: i64 = -1;
    let mut j = where_at + 1;
    while j < ctx.argc() {
        if count == -1 && ctx.arg_is(j, "COUNT") && j + 1 < ctx.argc() {
            j += 1;
            count = range_arg(ctx, j, 1, i64::MAX, "count should be greater than 0")?;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    Ok(MpopArgs {
        keys: numkeys_at + 1..where_at,
        left,
        count: if count == -1 { 1 } else { count as usize },
    })
}

/// Pops from the first non-empty list among `keys`; replies `[key, [elems]]`
/// and records `LPOP|RPOP key n` as the effect. Returns whether it popped.
/// With `skip_wrong_type`, keys of another type are passed over (serving a
/// blocked client) instead of failing with WRONGTYPE.
fn mpop_first(
    ctx: &mut Ctx,
    keys: &[Bytes],
    left: bool,
    count: usize,
    skip_wrong_type: bool,
) -> Result<bool, CmdError> {
    let db = ctx.db();
    for key in keys {
        let len = match ctx.ks.get_list(db, key) {
            Ok(None) => continue,
            Ok(Some(l)) => l.len(),
            Err(_) if skip_wrong_type => continue,
            Err(e) => return Err(e),
        };
        if len == 0 {
            continue;
        }
        let v = pop_from(ctx.ks, db, key, left, count);
        ctx.ks.propagate(
            db,
            argv![
                if left { &b"LPOP"[..] } else { &b"RPOP"[..] },
                key,
                v.len().to_string()
            ],
        );
        ctx.out.array(2);
        ctx.out.bulk(key);
        ctx.out.array(v.len());
        for e in &v {
            ctx.out.bulk(e);
        }
        return Ok(true);
    }
    Ok(false)
}

fn lmpop(ctx: &mut Ctx) -> CmdResult {
    let a = parse_mpop(ctx, 1)?;
    let args = ctx.args;
    if !mpop_first(ctx, &args[a.keys], a.left, a.count, false)? {
        ctx.out.null_array();
    }
    Ok(())
}

fn blmpop(ctx: &mut Ctx) -> CmdResult {
    let a = parse_mpop(ctx, 2)?;
    let timeout = ctx.timeout_arg(1)?;
    let args = ctx.args;
    let keys = &args[a.keys];
    let candidates = candidate_keys(ctx, keys);
    if mpop_first(ctx, candidates, a.left, a.count, serving_blocked(ctx))? {
        return Ok(());
    }
    ctx.block_on(
        keys.iter().map(|k| k[..].into()).collect(),
        timeout,
        TimeoutReply::NullArray,
    );
    Ok(())
}

fn bpop(ctx: &mut Ctx, left: bool) -> CmdResult {
    let timeout = ctx.timeout_arg(ctx.argc() - 1)?;
    let db = ctx.db();
    let args = ctx.args;
    let keys = &args[1..args.len() - 1];
    let skip_wrong_type = serving_blocked(ctx);
    for key in candidate_keys(ctx, keys) {
        let len = match ctx.ks.get_list(db, key) {
            Ok(None) => continue,
            Ok(Some(l)) => l.len(),
            Err(_) if skip_wrong_type => continue,
            Err(e) => return Err(e),
        };
        if len == 0 {
            continue;
        }
        let v = pop_from(ctx.ks, db, key, left, 1);
        // The effect of a blocking pop is a plain pop.
        ctx.ks.propagate(
            db,
            argv![if left { &b"LPOP"[..] } else { &b"RPOP"[..] }, key],
        );
        ctx.out.array(2);
        ctx.out.bulk(key);
        ctx.out.bulk(&v[0]);
        return Ok(());
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

// --- moves -----------------------------------------------------------------

/// LMOVE's core once the source is known to be a non-empty list: checks the
/// destination's type, moves one element, emits Redis' events (push on the
/// destination, then pop on the source, then `del`) and replies the element.
fn move_one(ctx: &mut Ctx, src: &[u8], dst: &[u8], from_left: bool, to_left: bool) -> CmdResult {
    let db = ctx.db();
    ctx.ks.check_type(db, dst, ValueType::List)?;
    // Redis moves through its lookups of the two keys: no more accesses.
    ctx.ks.accessed(db, src);
    let Some(list) = ctx.ks.get_list_mut(db, src)? else {
        return Ok(());
    };
    let value = if from_left {
        list.pop_front()
    } else {
        list.pop_back()
    };
    let Some(value) = value else {
        return Ok(());
    };
    // The source may be the destination: it still exists (maybe empty).
    ctx.ks.accessed(db, dst);
    let Value::List(dlist) = ctx.ks.get_or_insert_with(db, dst, Value::new_list) else {
        return Err(CmdError::WrongType);
    };
    if to_left {
        dlist.push_front(value.clone());
    } else {
        dlist.push_back(value.clone());
    }
    ctx.ks.modified(db, dst);
    ctx.ks.notify(db, notify::LIST, push_event(to_left), dst);
    ctx.ks.notify(db, notify::LIST, pop_event(from_left), src);
    if ctx.ks.remove_if_empty(db, src) {
        ctx.ks.notify(db, notify::GENERIC, "del", src);
    }
    ctx.ks.modified(db, src);
    ctx.out.bulk(&value);
    Ok(())
}

fn lmove_generic(ctx: &mut Ctx, from_left: bool, to_left: bool) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    match ctx.ks.get_list(db, &args[1])? {
        Some(l) if !l.is_empty() => move_one(ctx, &args[1], &args[2], from_left, to_left),
        _ => {
            ctx.out.null();
            Ok(())
        }
    }
}

fn lmove(ctx: &mut Ctx) -> CmdResult {
    let from_left = where_arg(ctx, 3)?;
    let to_left = where_arg(ctx, 4)?;
    lmove_generic(ctx, from_left, to_left)
}

fn rpoplpush(ctx: &mut Ctx) -> CmdResult {
    lmove_generic(ctx, false, true)
}

fn blmove_generic(ctx: &mut Ctx, from_left: bool, to_left: bool, timeout_at: usize) -> CmdResult {
    let timeout = ctx.timeout_arg(timeout_at)?;
    let db = ctx.db();
    let args = ctx.args;
    let (src, dst) = (&args[1], &args[2]);
    let skip_wrong_type = serving_blocked(ctx);
    let ready = match ctx.ks.get_list(db, src) {
        Ok(l) => l.is_some_and(|l| !l.is_empty()),
        Err(_) if skip_wrong_type => false,
        Err(e) => return Err(e),
    };
    if !ready {
        ctx.block_on(vec![src[..].into()], timeout, TimeoutReply::NullBulk);
        return Ok(());
    }
    move_one(ctx, src, dst, from_left, to_left)?;
    // The effect of a blocking move is the plain move.
    if ctx.ks.cmd_dirty > 0 {
        ctx.ks.propagate(
            db,
            argv![b"LMOVE", src, dst, side(from_left), side(to_left)],
        );
    }
    Ok(())
}

fn blmove(ctx: &mut Ctx) -> CmdResult {
    let from_left = where_arg(ctx, 3)?;
    let to_left = where_arg(ctx, 4)?;
    blmove_generic(ctx, from_left, to_left, 5)
}

fn brpoplpush(ctx: &mut Ctx) -> CmdResult {
    blmove_generic(ctx, false, true, 3)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use bytes::Bytes;

    use crate::engine::{BatchOutcome, Engine, EngineOptions};
    use crate::keyspace::{ClientId, Value};
    use crate::resp::ReplyBuf;

    fn engine() -> Engine {
        let mut e = Engine::new(&EngineOptions::default());
        e.ks.effects.capture = true;
        e
    }

    fn client(e: &mut Engine) -> ClientId {
        e.register_client(None, "test".into(), "test".into())
    }

    fn cmd(line: &str) -> Vec<Bytes> {
        line.split_whitespace()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    /// Runs one command as a connection would; returns the reply bytes, or
    /// the outcome if it blocked.
    fn run(e: &mut Engine, id: ClientId, line: &str) -> (String, Option<BatchOutcome>) {
        let mut q = VecDeque::from([cmd(line)]);
        let mut out = ReplyBuf::new(false);
        let o = e.execute_batch(id, &mut q, &mut out, &mut Vec::new());
        let s = String::from_utf8_lossy(&out.buf).into_owned();
        match o {
            BatchOutcome::Blocked(_) => (s, Some(o)),
            _ => (s, None),
        }
    }

    fn snapshot(e: &Engine) -> Vec<Vec<(Vec<u8>, Value)>> {
        e.ks.dbs
            .iter()
            .map(|d| {
                let mut v: Vec<_> = d
                    .data
                    .iter()
                    .map(|(k, o)| (k.to_vec(), o.value.clone()))
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0));
                v
            })
            .collect()
    }

    fn replay_matches(e: &mut Engine) -> Vec<String> {
        let records = e.ks.effects.take_records();
        let mut r = Engine::new(&EngineOptions::default());
        let mut shown = Vec::new();
        for (_, rec) in &records {
            for c in &rec.commands {
                shown.push(
                    c.argv
                        .iter()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                        .collect::<Vec<_>>()
                        .join(" "),
                );
            }
            r.apply_effect(rec).expect("effect applies");
        }
        assert_eq!(snapshot(e), snapshot(&r), "effects: {shown:#?}");
        shown
    }

    #[test]
    fn effects_replay_to_the_same_data() {
        let mut e = engine();
        let id = client(&mut e);
        for line in [
            "RPUSH l a b c d e f g h",
            "LPUSH l z",
            "LPUSHX l y",
            "RPUSHX nokey y",
            "LPOP l",
            "RPOP l 2",
            "LPOP l 0",
            "LINSERT l AFTER c C",
            "LSET l -1 last",
            "LREM l 1 a",
            "LTRIM l 0 -2",
            "LMOVE l m LEFT RIGHT",
            "RPOPLPUSH m m",
            "LMPOP 2 nokey l RIGHT COUNT 2",
            "LMPOP 1 l LEFT COUNT 100",
            "RPUSH q 1 2 3 4 5 6",
            "BLPOP nokey q 0",
            "BRPOP q 0",
            "BLMOVE q m RIGHT LEFT 0",
            "BRPOPLPUSH q m 0",
            "BLMPOP 0 1 q LEFT COUNT 10",
            "SELECT 3",
            "RPUSH x 1",
            "BLPOP x 0",
        ] {
            let (reply, blocked) = run(&mut e, id, line);
            assert!(blocked.is_none(), "{line} blocked");
            assert!(!reply.starts_with('-'), "{line}: {reply}");
        }
        let effects = replay_matches(&mut e);
        for expected in [
            "LPOP q",
            "RPOP q",
            "LMOVE q m RIGHT LEFT",
            "LMOVE q m RIGHT LEFT",
            "LPOP q 2",
            "RPOP l 2",
            "LPOP l 3",
            "LPOP x",
        ] {
            assert!(
                effects.iter().any(|c| c == expected),
                "missing {expected} in {effects:#?}"
            );
        }
        assert!(!effects.iter().any(|c| c.starts_with('B')), "{effects:#?}");
        assert!(!effects.iter().any(|c| c.starts_with("LMPOP")));
        // Commands that changed nothing record nothing.
        assert!(!effects.iter().any(|c| c.starts_with("RPUSHX")));
        assert!(!effects.iter().any(|c| c == "LPOP l 0"));
    }

    #[test]
    fn served_waiters_record_plain_pops() {
        let mut e = engine();
        let a = client(&mut e);
        let b = client(&mut e);
        let c = client(&mut e);
        let p = client(&mut e);
        let (_, wa) = run(&mut e, a, "BLPOP q 0");
        let (_, wb) = run(&mut e, b, "BLMOVE q d LEFT RIGHT 0");
        let (_, wc) = run(&mut e, c, "BLMPOP 0 1 d RIGHT COUNT 5");
        let waits: Vec<_> = [wa, wb, wc]
            .into_iter()
            .map(|w| match w {
                Some(BatchOutcome::Blocked(w)) => w,
                _ => panic!("did not block"),
            })
            .collect();
        assert_eq!(e.srv.blocked_client_count(), 3);
        let (reply, _) = run(&mut e, p, "RPUSH q x y");
        assert_eq!(reply, ":2\r\n");
        let replies: Vec<String> = waits
            .into_iter()
            .map(|mut w| String::from_utf8(w.reply.try_recv().expect("served").bytes).unwrap())
            .collect();
        assert_eq!(replies[0], "*2\r\n$1\r\nq\r\n$1\r\nx\r\n");
        assert_eq!(replies[1], "$1\r\ny\r\n");
        assert_eq!(replies[2], "*2\r\n$1\r\nd\r\n*1\r\n$1\r\ny\r\n");
        assert_eq!(e.srv.blocked_client_count(), 0);
        assert!(e.ks.dbs[0].data.is_empty());
        let effects = replay_matches(&mut e);
        assert_eq!(
            effects,
            ["RPUSH q x y", "LPOP q", "LMOVE q d LEFT RIGHT", "RPOP d 1"]
        );
    }

    #[test]
    fn key_specs() {
        let keys = |line: &str| {
            let argv = cmd(line);
            crate::command::lookup(&argv[0])
                .expect("command")
                .key_indexes(&argv)
        };
        assert_eq!(keys("LMPOP 2 a b LEFT").unwrap(), vec![2, 3]);
        assert_eq!(keys("BLMPOP 0 2 a b LEFT COUNT 1").unwrap(), vec![3, 4]);
        assert_eq!(keys("BLPOP a b 0").unwrap(), vec![1, 2]);
        assert_eq!(keys("BLMOVE a b LEFT LEFT 0").unwrap(), vec![1, 2]);
        assert_eq!(keys("RPOPLPUSH a b").unwrap(), vec![1, 2]);
        assert_eq!(keys("LPOS a x RANK 1").unwrap(), vec![1]);
        assert!(keys("LMPOP 0 a LEFT").is_err());
        assert!(keys("LMPOP 3 a LEFT").is_err());
    }
}
