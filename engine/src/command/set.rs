//! Set commands.
//!
//! Member order: Redis 7.0 keeps a small set of integers as an intset
//! (sorted numerically) and anything else in a dict (no useful order). Whole
//! set replies (SMEMBERS, SSCAN, ...) of an integer set that small come out
//! sorted, as from Redis; other sets come out in insertion order.

use bytes::Bytes;
use rand::Rng;

use super::flags::*;
use super::hash::{parse_scan_opts, range_count_arg, scan_match, write_scan_reply};
use super::keys::parse_cursor;
use super::random_picks;
use super::CommandSpec;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Elem, Set, Value, ValueType};
use crate::numbers;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "set", sadd),
    CommandSpec::new("srem", -3, WRITE | FAST, (1, 1, 1), "set", srem),
    CommandSpec::new("sismember", 3, READONLY | FAST, (1, 1, 1), "set", sismember),
    CommandSpec::new(
        "smismember",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        "set",
        smismember,
    ),
    CommandSpec::new("smembers", 2, READONLY, (1, 1, 1), "set", smembers),
    CommandSpec::new("scard", 2, READONLY | FAST, (1, 1, 1), "set", scard),
    CommandSpec::new("spop", -2, WRITE | FAST, (1, 1, 1), "set", spop),
    CommandSpec::new("srandmember", -2, READONLY, (1, 1, 1), "set", srandmember),
    CommandSpec::new("smove", 4, WRITE | FAST, (1, 2, 1), "set", smove),
    CommandSpec::new("sinter", -2, READONLY, (1, -1, 1), "set", sinter),
    CommandSpec::new("sintercard", -3, READONLY, (0, 0, 0), "set", sintercard)
        .with_keys_fn(sintercard_keys),
    CommandSpec::new("sunion", -2, READONLY, (1, -1, 1), "set", sunion),
    CommandSpec::new("sdiff", -2, READONLY, (1, -1, 1), "set", sdiff),
    CommandSpec::new(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        "set",
        sinterstore,
    ),
    CommandSpec::new(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        "set",
        sunionstore,
    ),
    CommandSpec::new(
        "sdiffstore",
        -3,
        WRITE | DENYOOM,
        (1, -1, 1),
        "set",
        sdiffstore,
    ),
    CommandSpec::new("sscan", -3, READONLY, (1, 1, 1), "set", sscan),
];

fn sintercard_keys(argv: &[Bytes]) -> Result<Vec<usize>, CmdError> {
    super::numkeys_keys(argv, 1, &[])
}

/// Redis' set-max-intset-entries default.
const INTSET_ENTRIES: usize = 512;

/// The members of `s` in the order Redis would list them: sorted
/// numerically if it would be an intset, else as stored.
fn members_in_order(s: &Set<Elem>) -> Vec<&[u8]> {
    if s.len() <= INTSET_ENTRIES {
        let ints: Option<Vec<(i64, &[u8])>> = s
            .iter()
            .map(|m| numbers::parse_i64(m).map(|n| (n, &m[..])))
            .collect();
        if let Some(mut ints) = ints {
            ints.sort_unstable_by_key(|p| p.0);
            return ints.into_iter().map(|p| p.1).collect();
        }
    }
    s.iter().map(|m| &m[..]).collect()
}

fn sadd(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    ctx.ks.check_type(db, key, ValueType::Set)?;
    let Value::Set(s) = ctx.ks.get_or_insert_with(db, key, Value::new_set) else {
        return Err(CmdError::WrongType);
    };
    let mut added = 0;
    for m in &args[2..] {
        if s.insert(m[..].into()) {
            added += 1;
        }
    }
    if added > 0 {
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::SET, "sadd", key);
    }
    ctx.out.int(added);
    Ok(())
}

fn srem(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let Some(s) = ctx.ks.get_set_mut(db, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    for m in &args[2..] {
        if s.swap_remove(&m[..]) {
            deleted += 1;
            if s.is_empty() {
                break;
            }
        }
    }
    if deleted > 0 {
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::SET, "srem", key);
        if ctx.ks.remove_if_empty(db, key) {
            ctx.ks.notify(db, notify::GENERIC, "del", key);
        }
    }
    ctx.out.int(deleted);
    Ok(())
}

fn sismember(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let found = ctx
        .ks
        .get_set_read(db, &args[1])?
        .is_some_and(|s| s.contains(&args[2][..]));
    ctx.out.int(found as i64);
    Ok(())
}

fn smismember(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let s = ctx.ks.get_set_read(db, &args[1])?;
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        ctx.out.int(s.is_some_and(|s| s.contains(&m[..])) as i64);
    }
    Ok(())
}

fn scard(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let n = ctx.ks.get_set_read(db, &args[1])?.map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn smembers(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    match ctx.ks.get_set_read(db, &args[1])? {
        None => ctx.out.set(0),
        Some(s) => {
            let members = members_in_order(s);
            ctx.out.set(members.len());
            for m in members {
                ctx.out.bulk(m);
            }
        }
    }
    Ok(())
}

fn spop(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1];
    let mut rng = rand::thread_rng();
    if ctx.argc() == 2 {
        let Some(s) = ctx.ks.get_set_mut(db, key)? else {
            ctx.out.null();
            return Ok(());
        };
        let i = rng.gen_range(0..s.len());
        let m = s.swap_remove_index(i).expect("index in range");
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::SET, "spop", key);
        ctx.ks.propagate(
            db,
            vec![
                Bytes::from_static(b"SREM"),
                key.clone(),
                Bytes::copy_from_slice(&m),
            ],
        );
        if ctx.ks.remove_if_empty(db, key) {
            ctx.ks.notify(db, notify::GENERIC, "del", key);
        }
        ctx.out.bulk(&m);
        return Ok(());
    }
    let count = ctx.int_arg(2).map_err(|_| CmdError::NotPositive)?;
    if count < 0 {
        return Err(CmdError::NotPositive);
    }
    let Some(s) = ctx.ks.get_set_mut(db, key)? else {
        ctx.out.set(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.set(0);
        return Ok(());
    }
    let size = s.len();
    if count as u64 >= size as u64 {
        let all: Vec<Elem> = members_in_order(s).into_iter().map(Elem::from).collect();
        ctx.ks.remove(db, key);
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::SET, "spop", key);
        ctx.ks.notify(db, notify::GENERIC, "del", key);
        ctx.ks
            .propagate(db, vec![Bytes::from_static(b"DEL"), key.clone()]);
        ctx.out.set(all.len());
        for m in &all {
            ctx.out.bulk(m);
        }
        return Ok(());
    }
    let n = count as usize;
    let mut idx = rand::seq::index::sample(&mut rng, size, n).into_vec();
    // Remove from the highest index down so swap removal keeps the rest valid.
    idx.sort_unstable_by(|a, b| b.cmp(a));
    let mut popped = Vec::with_capacity(n);
    for i in idx {
        popped.push(s.swap_remove_index(i).expect("index in range"));
    }
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::SET, "spop", key);
    let mut eff = Vec::with_capacity(n + 2);
    eff.push(Bytes::from_static(b"SREM"));
    eff.push(key.clone());
    eff.extend(popped.iter().map(|m| Bytes::copy_from_slice(m)));
    ctx.ks.propagate(db, eff);
    ctx.out.set(n);
    for m in &popped {
        ctx.out.bulk(m);
    }
    Ok(())
}

fn srandmember(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let db = ctx.db();
    let args = ctx.args;
    let mut rng = rand::thread_rng();
    if ctx.argc() == 2 {
        match ctx.ks.get_set_read(db, &args[1])? {
            None => ctx.out.null(),
            Some(s) => {
                let i = rng.gen_range(0..s.len());
                ctx.out.bulk(s.get_index(i).expect("index in range"));
            }
        }
        return Ok(());
    }
    let count = range_count_arg(ctx, 2)?;
    let Some(s) = ctx.ks.get_set_read(db, &args[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    let size = s.len();
    if count == 0 {
        ctx.out.array(0);
    } else if count < 0 {
        let n = count.unsigned_abs() as usize;
        return random_picks::with_repetitions(
            ctx.out,
            n,
            random_picks::limit(ctx.srv),
            |o| o.array(n),
            |o| o.bulk(s.get_index(rng.gen_range(0..size)).expect("index in range")),
        );
    } else if count as u64 >= size as u64 {
        let members = members_in_order(s);
        ctx.out.array(members.len());
        for m in members {
            ctx.out.bulk(m);
        }
    } else {
        let n = count as usize;
        ctx.out.array(n);
        for i in rand::seq::index::sample(&mut rng, size, n) {
            ctx.out.bulk(s.get_index(i).expect("index in range"));
        }
    }
    Ok(())
}

fn smove(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let (src, dst, m) = (&args[1], &args[2], &args[3]);
    let src_is_set = match ctx.ks.get(db, src) {
        None => {
            ctx.out.int(0);
            return Ok(());
        }
        Some(v) => v.value_type() == ValueType::Set,
    };
    if !src_is_set {
        return Err(CmdError::WrongType);
    }
    ctx.ks.check_type(db, dst, ValueType::Set)?;
    // Redis goes on through its lookups of the two keys: no more accesses.
    ctx.ks.accessed(db, src);
    if src == dst {
        let found = ctx
            .ks
            .get_set_mut(db, src)?
            .is_some_and(|s| s.contains(&m[..]));
        ctx.out.int(found as i64);
        return Ok(());
    }
    let removed = ctx
        .ks
        .get_set_mut(db, src)?
        .is_some_and(|s| s.swap_remove(&m[..]));
    if !removed {
        ctx.out.int(0);
        return Ok(());
    }
    ctx.ks.notify(db, notify::SET, "srem", src);
    if ctx.ks.remove_if_empty(db, src) {
        ctx.ks.notify(db, notify::GENERIC, "del", src);
    }
    ctx.ks.modified(db, src);
    ctx.ks.accessed(db, dst);
    let Value::Set(d) = ctx.ks.get_or_insert_with(db, dst, Value::new_set) else {
        return Err(CmdError::WrongType);
    };
    if d.insert(m[..].into()) {
        ctx.ks.modified(db, dst);
        ctx.ks.notify(db, notify::SET, "sadd", dst);
    }
    ctx.out.int(1);
    Ok(())
}

/// Type-checks every key (expiring lazily), then borrows them all: `None`
/// for a missing key.
fn load_sets<'k>(ctx: &'k mut Ctx, keys: &[Bytes]) -> Result<Vec<Option<&'k Set<Elem>>>, CmdError> {
    let db = ctx.db();
    for k in keys {
        ctx.ks.get_set_read(db, k)?;
    }
    let d = &ctx.ks.dbs[db];
    Ok(keys
        .iter()
        .map(|k| match d.value(&k[..]) {
            Some(Value::Set(s)) => Some(&**s),
            _ => None,
        })
        .collect())
}

/// The intersection, stopping at `limit` members (0: no limit).
fn intersect(sets: &[Option<&Set<Elem>>], limit: usize) -> Vec<Elem> {
    let mut sets: Vec<&Set<Elem>> = match sets.iter().copied().collect::<Option<Vec<_>>>() {
        Some(v) => v,
        None => return Vec::new(),
    };
    sets.sort_by_key(|s| s.len());
    let mut out = Vec::new();
    let Some((first, rest)) = sets.split_first() else {
        return out;
    };
    for m in first.iter() {
        if rest.iter().all(|s| s.contains(m)) {
            out.push(m.clone());
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
    }
    out
}

fn union(sets: &[Option<&Set<Elem>>]) -> Vec<Elem> {
    let mut out: Set<Elem> = Set::default();
    for s in sets.iter().flatten() {
        for m in s.iter() {
            if !out.contains(m) {
                out.insert(m.clone());
            }
        }
    }
    out.into_iter().collect()
}

fn diff(sets: &[Option<&Set<Elem>>]) -> Vec<Elem> {
    let Some(Some(first)) = sets.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|m| !sets[1..].iter().flatten().any(|s| s.contains(*m)))
        .cloned()
        .collect()
}

#[derive(Clone, Copy)]
enum SetOp {
    Inter,
    Union,
    Diff,
}

fn compute(ctx: &mut Ctx, keys: &[Bytes], op: SetOp) -> Result<Vec<Elem>, CmdError> {
    let sets = load_sets(ctx, keys)?;
    Ok(match op {
        SetOp::Inter => intersect(&sets, 0),
        SetOp::Union => union(&sets),
        SetOp::Diff => diff(&sets),
    })
}

fn set_op_reply(ctx: &mut Ctx, op: SetOp) -> CmdResult {
    let args = ctx.args;
    let result = compute(ctx, &args[1..], op)?;
    ctx.out.set(result.len());
    for m in &result {
        ctx.out.bulk(m);
    }
    Ok(())
}

fn set_op_store(ctx: &mut Ctx, op: SetOp, event: &str) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let dst = &args[1];
    let result = compute(ctx, &args[2..], op)?;
    let n = result.len();
    if n > 0 {
        let set: Set<Elem> = result.into_iter().collect();
        ctx.ks.set(db, dst, Value::Set(Box::new(set)));
        ctx.ks.modified(db, dst);
        ctx.ks.notify(db, notify::SET, event, dst);
    } else if ctx.ks.remove(db, dst).is_some() {
        ctx.ks.modified(db, dst);
        ctx.ks.notify(db, notify::GENERIC, "del", dst);
    }
    ctx.out.int(n as i64);
    Ok(())
}

fn sinter(ctx: &mut Ctx) -> CmdResult {
    set_op_reply(ctx, SetOp::Inter)
}

fn sunion(ctx: &mut Ctx) -> CmdResult {
    set_op_reply(ctx, SetOp::Union)
}

fn sdiff(ctx: &mut Ctx) -> CmdResult {
    set_op_reply(ctx, SetOp::Diff)
}

fn sinterstore(ctx: &mut Ctx) -> CmdResult {
    set_op_store(ctx, SetOp::Inter, "sinterstore")
}

fn sunionstore(ctx: &mut Ctx) -> CmdResult {
    set_op_store(ctx, SetOp::Union, "sunionstore")
}

fn sdiffstore(ctx: &mut Ctx) -> CmdResult {
    set_op_store(ctx, SetOp::Diff, "sdiffstore")
}

fn sintercard(ctx: &mut Ctx) -> CmdResult {
    let numkeys = numbers::parse_i64(ctx.arg(1))
        .filter(|&n| n >= 1)
        .ok_or_else(|| CmdError::err("numkeys should be greater than 0"))?;
    if numkeys as u64 > (ctx.argc() - 2) as u64 {
        return Err(CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let numkeys = numkeys as usize;
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < ctx.argc() {
        let more = ctx.argc() - 1 - j;
        if ctx.arg_is(j, "LIMIT") && more > 0 {
            j += 1;
            let l = numbers::parse_i64(ctx.arg(j))
                .filter(|&l| l >= 0)
                .ok_or_else(|| CmdError::err("LIMIT can't be negative"))?;
            limit = usize::try_from(l).unwrap_or(usize::MAX);
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let args = ctx.args;
    let sets = load_sets(ctx, &args[2..2 + numkeys])?;
    let n = intersect(&sets, limit).len();
    ctx.out.int(n as i64);
    Ok(())
}

fn sscan(ctx: &mut Ctx) -> CmdResult {
    let cursor = parse_cursor(ctx.arg(2))?;
    let db = ctx.db();
    let args = ctx.args;
    if ctx.ks.get_set_read(db, &args[1])?.is_none() {
        write_scan_reply(ctx.out, 0, &[]);
        return Ok(());
    }
    let o = parse_scan_opts(ctx, cursor)?;
    let Some(s) = ctx.ks.get_set(db, &args[1])? else {
        return Ok(());
    };
    let small_ints = s.len() <= INTSET_ENTRIES && s.iter().all(|m| numbers::parse_i64(m).is_some());
    let (items, next): (Vec<&[u8]>, u64) = if small_ints {
        // An intset is answered whole, in order.
        let all = members_in_order(s);
        (
            all.into_iter()
                .filter(|m| scan_match(&o.pattern, m))
                .collect(),
            0,
        )
    } else {
        let start = o.cursor.min(s.len() as u64) as usize;
        let end = start.saturating_add(o.count).min(s.len());
        let next = if end >= s.len() { 0 } else { end as u64 };
        let items = (start..end)
            .map(|i| &s.get_index(i).expect("index in range")[..])
            .filter(|m| scan_match(&o.pattern, m))
            .collect();
        (items, next)
    };
    write_scan_reply(ctx.out, next, &items);
    Ok(())
}
