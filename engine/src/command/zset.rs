//! Sorted set commands (t_zset.c): ZADD and friends, ranges by rank, score
//! and lex, pops (blocking included), set operations, ZRANDMEMBER, ZSCAN.

use bytes::Bytes;

use super::flags::*;
use super::random_picks;
use super::CommandSpec;
use crate::argv;
use crate::engine::{Ctx, TimeoutReply};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Elem, Map, Value, ValueType, ZSet};
use crate::numbers::{parse_f64, parse_i64};
use crate::resp::ReplyBuf;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "zadd",
        -4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "sorted_set",
        zadd,
    ),
    CommandSpec::new(
        "zincrby",
        4,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "sorted_set",
        zincrby,
    ),
    CommandSpec::new("zrem", -3, WRITE | FAST, (1, 1, 1), "sorted_set", zrem),
    CommandSpec::new("zcard", 2, READONLY | FAST, (1, 1, 1), "sorted_set", zcard),
    CommandSpec::new(
        "zcount",
        4,
        READONLY | FAST,
        (1, 1, 1),
        "sorted_set",
        zcount,
    ),
    CommandSpec::new(
        "zlexcount",
        4,
        READONLY | FAST,
        (1, 1, 1),
        "sorted_set",
        zlexcount,
    ),
    CommandSpec::new(
        "zscore",
        3,
        READONLY | FAST,
        (1, 1, 1),
        "sorted_set",
        zscore,
    ),
    CommandSpec::new(
        "zmscore",
        -3,
        READONLY | FAST,
        (1, 1, 1),
        "sorted_set",
        zmscore,
    ),
    CommandSpec::new("zrank", 3, READONLY | FAST, (1, 1, 1), "sorted_set", zrank),
    CommandSpec::new(
        "zrevrank",
        3,
        READONLY | FAST,
        (1, 1, 1),
        "sorted_set",
        zrevrank,
    ),
    CommandSpec::new("zrange", -4, READONLY, (1, 1, 1), "sorted_set", zrange),
    CommandSpec::new(
        "zrangebyscore",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted_set",
        zrangebyscore,
    ),
    CommandSpec::new(
        "zrevrangebyscore",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted_set",
        zrevrangebyscore,
    ),
    CommandSpec::new(
        "zrangebylex",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted_set",
        zrangebylex,
    ),
    CommandSpec::new(
        "zrevrangebylex",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted_set",
        zrevrangebylex,
    ),
    CommandSpec::new(
        "zrevrange",
        -4,
        READONLY,
        (1, 1, 1),
        "sorted_set",
        zrevrange,
    ),
    CommandSpec::new(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        (1, 2, 1),
        "sorted_set",
        zrangestore,
    ),
    CommandSpec::new(
        "zpopmin",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        "sorted_set",
        zpopmin,
    ),
    CommandSpec::new(
        "zpopmax",
        -2,
        WRITE | FAST,
        (1, 1, 1),
        "sorted_set",
        zpopmax,
    ),
    CommandSpec::new(
        "bzpopmin",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        (1, -2, 1),
        "sorted_set",
        bzpopmin,
    ),
    CommandSpec::new(
        "bzpopmax",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        (1, -2, 1),
        "sorted_set",
        bzpopmax,
    ),
    CommandSpec::new("zmpop", -4, WRITE, (0, 0, 0), "sorted_set", zmpop)
        .with_keys_fn(|a| super::numkeys_keys(a, 1, &[])),
    CommandSpec::new(
        "bzmpop",
        -5,
        WRITE | BLOCKING,
        (0, 0, 0),
        "sorted_set",
        bzmpop,
    )
    .with_keys_fn(|a| super::numkeys_keys(a, 2, &[])),
    CommandSpec::new(
        "zremrangebyrank",
        4,
        WRITE,
        (1, 1, 1),
        "sorted_set",
        zremrangebyrank,
    ),
    CommandSpec::new(
        "zremrangebyscore",
        4,
        WRITE,
        (1, 1, 1),
        "sorted_set",
        zremrangebyscore,
    ),
    CommandSpec::new(
        "zremrangebylex",
        4,
        WRITE,
        (1, 1, 1),
        "sorted_set",
        zremrangebylex,
    ),
    CommandSpec::new("zunion", -3, READONLY, (0, 0, 0), "sorted_set", zunion)
        .with_keys_fn(|a| super::numkeys_keys(a, 1, &[])),
    CommandSpec::new("zinter", -3, READONLY, (0, 0, 0), "sorted_set", zinter)
        .with_keys_fn(|a| super::numkeys_keys(a, 1, &[])),
    CommandSpec::new("zdiff", -3, READONLY, (0, 0, 0), "sorted_set", zdiff)
        .with_keys_fn(|a| super::numkeys_keys(a, 1, &[])),
    CommandSpec::new(
        "zunionstore",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "sorted_set",
        zunionstore,
    )
    .with_keys_fn(|a| super::numkeys_keys(a, 2, &[1])),
    CommandSpec::new(
        "zinterstore",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "sorted_set",
        zinterstore,
    )
    .with_keys_fn(|a| super::numkeys_keys(a, 2, &[1])),
    CommandSpec::new(
        "zdiffstore",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "sorted_set",
        zdiffstore,
    )
    .with_keys_fn(|a| super::numkeys_keys(a, 2, &[1])),
    CommandSpec::new(
        "zintercard",
        -3,
        READONLY,
        (0, 0, 0),
        "sorted_set",
        zintercard,
    )
    .with_keys_fn(|a| super::numkeys_keys(a, 1, &[])),
    CommandSpec::new(
        "zrandmember",
        -2,
        READONLY,
        (1, 1, 1),
        "sorted_set",
        zrandmember,
    ),
    CommandSpec::new("zscan", -3, READONLY, (1, 1, 1), "sorted_set", zscan),
];

// ---------------------------------------------------------------------------
// Parsing helpers

fn is(a: &[u8], word: &str) -> bool {
    a.eq_ignore_ascii_case(word.as_bytes())
}

/// Redis' string2d: a float using the whole string, no leading space, no
/// NaN, no overflow to infinity or underflow to zero.
fn parse_score(s: &[u8]) -> Option<f64> {
    let v = parse_f64(s)?;
    if v.is_infinite() && !s.iter().any(|c| c.eq_ignore_ascii_case(&b'i')) {
        return None;
    }
    if v == 0.0 {
        let mantissa = s.split(|c| *c == b'e' || *c == b'E').next().unwrap_or(s);
        if mantissa.iter().any(|c| (b'1'..=b'9').contains(c)) && !is_hex(s) {
            return None;
        }
    }
    Some(v)
}

fn is_hex(s: &[u8]) -> bool {
    s.windows(2)
        .any(|w| w[0] == b'0' && (w[1] == b'x' || w[1] == b'X'))
}

/// C's strtod on the whole string (as zslParseRange uses it): leading
/// whitespace allowed, the empty string is 0, NaN refused.
fn strtod_full(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let t = match s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
    {
        Some(i) => &s[i..],
        None => return None,
    };
    parse_f64(t)
}

#[derive(Debug, Clone, Copy)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

impl ScoreRange {
    fn gte_min(&self, s: f64) -> bool {
        if self.minex {
            s > self.min
        } else {
            s >= self.min
        }
    }

    fn lte_max(&self, s: f64) -> bool {
        if self.maxex {
            s < self.max
        } else {
            s <= self.max
        }
    }
}

fn parse_score_bound(b: &[u8]) -> Option<(f64, bool)> {
    match b.first() {
        Some(b'(') => Some((strtod_full(&b[1..])?, true)),
        _ => Some((strtod_full(b)?, false)),
    }
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    let bad = || CmdError::err("min or max is not a float");
    let (min, minex) = parse_score_bound(min).ok_or_else(bad)?;
    let (max, maxex) = parse_score_bound(max).ok_or_else(bad)?;
    Ok(ScoreRange {
        min,
        max,
        minex,
        maxex,
    })
}

#[derive(Debug, Clone, Copy)]
enum LexBound<'a> {
    NegInf,
    PosInf,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

#[derive(Debug, Clone, Copy)]
struct LexRange<'a> {
    min: LexBound<'a>,
    max: LexBound<'a>,
}

impl LexRange<'_> {
    fn gte_min(&self, v: &[u8]) -> bool {
        match self.min {
            LexBound::NegInf => true,
            LexBound::PosInf => false,
            LexBound::Incl(m) => v >= m,
            LexBound::Excl(m) => v > m,
        }
    }

    fn lte_max(&self, v: &[u8]) -> bool {
        match self.max {
            LexBound::NegInf => false,
            LexBound::PosInf => true,
            LexBound::Incl(m) => v <= m,
            LexBound::Excl(m) => v < m,
        }
    }
}

fn parse_lex_bound(b: &[u8]) -> Option<LexBound<'_>> {
    match b.first()? {
        b'+' if b.len() == 1 => Some(LexBound::PosInf),
        b'-' if b.len() == 1 => Some(LexBound::NegInf),
        b'(' => Some(LexBound::Excl(&b[1..])),
        b'[' => Some(LexBound::Incl(&b[1..])),
        _ => None,
    }
}

fn parse_lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Result<LexRange<'a>, CmdError> {
    let bad = || CmdError::err("min or max not valid string range item");
    Ok(LexRange {
        min: parse_lex_bound(min).ok_or_else(bad)?,
        max: parse_lex_bound(max).ok_or_else(bad)?,
    })
}

type Items<'z> = Box<dyn Iterator<Item = (&'z [u8], f64)> + 'z>;

/// The members in a score range, ascending or (`rev`) descending.
fn score_items<'z>(z: &'z ZSet, r: ScoreRange, rev: bool) -> Items<'z> {
    // Both bounds are prefixes of the ascending order: O(log n) to find.
    let start = z.count_while(|s| !r.gte_min(s));
    let end = z.count_while(|s| r.lte_max(s));
    let n = end.saturating_sub(start);
    if rev {
        Box::new(z.iter_rev_from_rank(z.len() - end).take(n))
    } else {
        Box::new(z.iter_from_rank(start).take(n))
    }
}

/// How many members a score range holds, in O(log n).
fn score_count(z: &ZSet, r: ScoreRange) -> usize {
    let start = z.count_while(|s| !r.gte_min(s));
    z.count_while(|s| r.lte_max(s)).saturating_sub(start)
}

/// The members in a lex range, found as Redis' listpack code does (first
/// member >= min, then while <= max), which also fixes the answer for sets
/// whose members do not all share one score.
fn lex_items<'z>(z: &'z ZSet, r: LexRange<'z>, rev: bool) -> Items<'z> {
    let (Some(first), Some(last)) = (z.first(), z.last()) else {
        return Box::new(std::iter::empty());
    };
    if !r.gte_min(last.0) || !r.lte_max(first.0) {
        return Box::new(std::iter::empty());
    }
    if rev {
        Box::new(
            z.iter()
                .rev()
                .skip_while(move |(m, _)| !r.lte_max(m))
                .take_while(move |(m, _)| r.gte_min(m)),
        )
    } else {
        Box::new(
            z.iter()
                .skip_while(move |(m, _)| !r.gte_min(m))
                .take_while(move |(m, _)| r.lte_max(m)),
        )
    }
}

/// Normalizes a rank range like Redis; `None` when empty.
fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
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

fn rank_items(z: &ZSet, start: usize, end: usize, rev: bool) -> Items<'_> {
    let n = end - start + 1;
    if rev {
        Box::new(z.iter_rev_from_rank(start).take(n))
    } else {
        Box::new(z.iter_from_rank(start).take(n))
    }
}

/// Writes members (and scores): flat in RESP2, [member, score] pairs in RESP3.
fn emit<'a>(
    out: &mut ReplyBuf,
    items: impl ExactSizeIterator<Item = (&'a [u8], f64)>,
    withscores: bool,
) {
    emit_header(out, items.len(), withscores);
    for (m, s) in items {
        emit_item(out, m, s, withscores);
    }
}

/// The array header of `n` members, with their scores if `withscores`.
fn emit_header(out: &mut ReplyBuf, n: usize, withscores: bool) {
    if withscores && !out.resp3 {
        out.array(2 * n);
    } else {
        out.array(n);
    }
}

/// One member, with its score if `withscores` (a pair in RESP3).
fn emit_item(out: &mut ReplyBuf, m: &[u8], s: f64, withscores: bool) {
    if withscores && out.resp3 {
        out.array(2);
    }
    out.bulk(m);
    if withscores {
        out.double(s);
    }
}

/// Replaces `dst` with the result of a *STORE command (or deletes it when
/// the result is empty) and replies with the result's size.
pub(super) fn store_result(ctx: &mut Ctx, dst: &[u8], z: ZSet, event: &str) {
    let db = ctx.db();
    let n = z.len();
    if n > 0 {
        ctx.ks.set(db, dst, Value::ZSet(Box::new(z)));
        ctx.ks.modified(db, dst);
        ctx.ks.notify(db, notify::ZSET, event, dst);
    } else if ctx.ks.remove(db, dst).is_some() {
        ctx.ks.modified(db, dst);
        ctx.ks.notify(db, notify::GENERIC, "del", dst);
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------
// ZADD / ZINCRBY / ZREM / simple reads

fn zadd_generic(ctx: &mut Ctx, zincrby: bool) -> CmdResult {
    let args = ctx.args;
    zadd_with(ctx, args, zincrby)
}

/// ZADD (or ZINCRBY) with these arguments, which GEOADD builds.
pub(super) fn zadd_with(ctx: &mut Ctx, args: &[Bytes], zincrby: bool) -> CmdResult {
    let db = ctx.db();
    let key = &args[1][..];
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, zincrby);
    let mut idx = 2;
    if !zincrby {
        while idx < args.len() {
            let a = &args[idx][..];
            if is(a, "nx") {
                nx = true;
            } else if is(a, "xx") {
                xx = true;
            } else if is(a, "ch") {
                ch = true;
            } else if is(a, "incr") {
                incr = true;
            } else if is(a, "gt") {
                gt = true;
            } else if is(a, "lt") {
                lt = true;
            } else {
                break;
            }
            idx += 1;
        }
    }
    let elements = args.len() - idx;
    if !elements.is_multiple_of(2) || elements == 0 {
        return Err(CmdError::Syntax);
    }
    let elements = elements / 2;
    if nx && xx {
        return Err(CmdError::err(
            "XX and NX options at the same time are not compatible",
        ));
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(CmdError::err(
            "GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if incr && elements > 1 {
        return Err(CmdError::err(
            "INCR option supports a single increment-element pair",
        ));
    }
    let mut pairs = Vec::with_capacity(elements);
    for i in 0..elements {
        let s = parse_score(&args[idx + 2 * i]).ok_or(CmdError::NotFloat)?;
        pairs.push((s, &args[idx + 2 * i + 1][..]));
    }
    let exists = ctx.ks.check_type(db, key, ValueType::ZSet)?;
    let (mut added, mut updated, mut processed) = (0i64, 0i64, 0i64);
    let mut reply_score = 0.0;
    if exists || !xx {
        let Value::ZSet(z) = ctx.ks.get_or_insert_with(db, key, Value::new_zset) else {
            return Err(CmdError::WrongType);
        };
        for (score, member) in pairs {
            match z.score(member) {
                Some(cur) => {
                    if nx {
                        continue;
                    }
                    let mut s = score;
                    if incr {
                        s += cur;
                        if s.is_nan() {
                            return Err(CmdError::err("resulting score is not a number (NaN)"));
                        }
                    }
                    if (lt && s >= cur) || (gt && s <= cur) {
                        continue;
                    }
                    processed += 1;
                    reply_score = s;
                    if s != cur {
                        z.insert(member, s);
                        updated += 1;
                    }
                }
                None => {
                    if xx {
                        continue;
                    }
                    z.insert(member, score);
                    added += 1;
                    processed += 1;
                    reply_score = score;
                }
            }
        }
        ctx.ks.remove_if_empty(db, key);
    }
    if added > 0 || updated > 0 {
        ctx.ks.modified(db, key);
        ctx.ks
            .notify(db, notify::ZSET, if incr { "zincr" } else { "zadd" }, key);
    }
    if incr {
        if processed > 0 {
            ctx.out.double(reply_score);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out.int(if ch { added + updated } else { added });
    }
    Ok(())
}

fn zadd(ctx: &mut Ctx) -> CmdResult {
    zadd_generic(ctx, false)
}

fn zincrby(ctx: &mut Ctx) -> CmdResult {
    zadd_generic(ctx, true)
}

fn zrem(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let key = &args[1][..];
    let Some(z) = ctx.ks.get_zset_mut(db, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    for m in &args[2..] {
        if z.remove(m).is_some() {
            deleted += 1;
            if z.is_empty() {
                break;
            }
        }
    }
    if deleted > 0 {
        ctx.ks.notify(db, notify::ZSET, "zrem", key);
        if ctx.ks.remove_if_empty(db, key) {
            ctx.ks.notify(db, notify::GENERIC, "del", key);
        }
        ctx.ks.modified(db, key);
    }
    ctx.out.int(deleted);
    Ok(())
}

fn zcard(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let n = ctx
        .ks
        .get_zset_read(db, &ctx.args[1])?
        .map_or(0, |z| z.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn zcount(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let r = parse_score_range(&args[2], &args[3])?;
    let n = match ctx.ks.get_zset_read(db, &args[1])? {
        Some(z) => score_count(z, r),
        None => 0,
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn zlexcount(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let r = parse_lex_range(&args[2], &args[3])?;
    let n = match ctx.ks.get_zset_read(db, &args[1])? {
        Some(z) => lex_items(z, r, false).count(),
        None => 0,
    };
    ctx.out.int(n as i64);
    Ok(())
}

fn zscore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    match ctx
        .ks
        .get_zset_read(db, &args[1])?
        .and_then(|z| z.score(&args[2]))
    {
        Some(s) => ctx.out.double(s),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zmscore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let z = ctx.ks.get_zset_read(db, &args[1])?;
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
    Ok(())
}

fn zrank_generic(ctx: &mut Ctx, rev: bool) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let r = ctx.ks.get_zset_read(db, &args[1])?.and_then(|z| {
        z.rank(&args[2])
            .map(|r| if rev { z.len() - 1 - r } else { r })
    });
    match r {
        Some(r) => ctx.out.int(r as i64),
        None => ctx.out.null(),
    }
    Ok(())
}

fn zrank(ctx: &mut Ctx) -> CmdResult {
    zrank_generic(ctx, false)
}

fn zrevrank(ctx: &mut Ctx) -> CmdResult {
    zrank_generic(ctx, true)
}

// ---------------------------------------------------------------------------
// ZRANGE family

#[derive(Debug, Clone, Copy, PartialEq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Dir {
    Auto,
    Fwd,
    Rev,
}

enum ParsedRange<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

/// zrangeGenericCommand: `argc_start` is the index of the source key.
fn zrange_generic(
    ctx: &mut Ctx,
    argc_start: usize,
    store: bool,
    mut rt: RangeType,
    mut dir: Dir,
) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let key = &args[argc_start][..];
    let (mut minidx, mut maxidx) = (argc_start + 1, argc_start + 2);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = argc_start + 3;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j][..];
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && left >= 2 {
            offset = parse_i64(&args[j + 1]).ok_or(CmdError::NotInteger)?;
            limit = parse_i64(&args[j + 2]).ok_or(CmdError::NotInteger)?;
            j += 2;
        } else if dir == Dir::Auto && is(a, "rev") {
            dir = Dir::Rev;
        } else if rt == RangeType::Auto && is(a, "bylex") {
            rt = RangeType::Lex;
        } else if rt == RangeType::Auto && is(a, "byscore") {
            rt = RangeType::Score;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    if rt == RangeType::Auto {
        rt = RangeType::Rank;
    }
    let rev = dir == Dir::Rev;
    if limit != -1 && rt == RangeType::Rank {
        return Err(CmdError::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        ));
    }
    if withscores && rt == RangeType::Lex {
        return Err(CmdError::err(
            "syntax error, WITHSCORES not supported in combination with BYLEX",
        ));
    }
    if rev && rt != RangeType::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let range = match rt {
        RangeType::Score => ParsedRange::Score(parse_score_range(&args[minidx], &args[maxidx])?),
        RangeType::Lex => ParsedRange::Lex(parse_lex_range(&args[minidx], &args[maxidx])?),
        _ => ParsedRange::Rank(
            parse_i64(&args[minidx]).ok_or(CmdError::NotInteger)?,
            parse_i64(&args[maxidx]).ok_or(CmdError::NotInteger)?,
        ),
    };
    let Some(z) = ctx.ks.get_zset_read(db, key)? else {
        if store {
            store_result(ctx, &args[1], ZSet::default(), "zrangestore");
        } else {
            ctx.out.array(0);
        }
        return Ok(());
    };
    let items: Items<'_> = match range {
        ParsedRange::Rank(s, e) => match rank_range(s, e, z.len()) {
            Some((s, e)) => rank_items(z, s, e, rev),
            None => Box::new(std::iter::empty()),
        },
        _ if offset < 0 => Box::new(std::iter::empty()),
        ParsedRange::Score(r) => limited(score_items(z, r, rev), offset, limit),
        ParsedRange::Lex(r) => limited(lex_items(z, r, rev), offset, limit),
    };
    if store {
        let mut out = ZSet::default();
        for (m, s) in items {
            out.insert(m, s);
        }
        store_result(ctx, &args[1], out, "zrangestore");
    } else {
        let v: Vec<(&[u8], f64)> = items.collect();
        emit(ctx.out, v.into_iter(), withscores);
    }
    Ok(())
}

fn limited(items: Items<'_>, offset: i64, limit: i64) -> Items<'_> {
    let take = if limit < 0 {
        usize::MAX
    } else {
        limit as usize
    };
    Box::new(items.skip(offset as usize).take(take))
}

fn zrange(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, false, RangeType::Auto, Dir::Auto)
}

fn zrangestore(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 2, true, RangeType::Auto, Dir::Auto)
}

fn zrevrange(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, false, RangeType::Rank, Dir::Rev)
}

fn zrangebyscore(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, false, RangeType::Score, Dir::Fwd)
}

fn zrevrangebyscore(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, false, RangeType::Score, Dir::Rev)
}

fn zrangebylex(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, false, RangeType::Lex, Dir::Fwd)
}

fn zrevrangebylex(ctx: &mut Ctx) -> CmdResult {
    zrange_generic(ctx, 1, false, RangeType::Lex, Dir::Rev)
}

// ---------------------------------------------------------------------------
// ZREMRANGEBY*

fn zremrange_generic(ctx: &mut Ctx, rt: RangeType) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let key = &args[1][..];
    let range = match rt {
        RangeType::Score => ParsedRange::Score(parse_score_range(&args[2], &args[3])?),
        RangeType::Lex => ParsedRange::Lex(parse_lex_range(&args[2], &args[3])?),
        _ => ParsedRange::Rank(
            parse_i64(&args[2]).ok_or(CmdError::NotInteger)?,
            parse_i64(&args[3]).ok_or(CmdError::NotInteger)?,
        ),
    };
    let Some(z) = ctx.ks.get_zset(db, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let victims: Vec<Elem> = match range {
        ParsedRange::Rank(s, e) => match rank_range(s, e, z.len()) {
            Some((s, e)) => rank_items(z, s, e, false).map(|(m, _)| m.into()).collect(),
            None => Vec::new(),
        },
        ParsedRange::Score(r) => score_items(z, r, false).map(|(m, _)| m.into()).collect(),
        ParsedRange::Lex(r) => lex_items(z, r, false).map(|(m, _)| m.into()).collect(),
    };
    if !victims.is_empty() {
        if let Some(z) = ctx.ks.get_zset_mut(db, key)? {
            for m in &victims {
                z.remove(m);
            }
        }
        let event = match rt {
            RangeType::Score => "zremrangebyscore",
            RangeType::Lex => "zremrangebylex",
            _ => "zremrangebyrank",
        };
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::ZSET, event, key);
        if ctx.ks.remove_if_empty(db, key) {
            ctx.ks.notify(db, notify::GENERIC, "del", key);
        }
    }
    ctx.out.int(victims.len() as i64);
    Ok(())
}

fn zremrangebyrank(ctx: &mut Ctx) -> CmdResult {
    zremrange_generic(ctx, RangeType::Rank)
}

fn zremrangebyscore(ctx: &mut Ctx) -> CmdResult {
    zremrange_generic(ctx, RangeType::Score)
}

fn zremrangebylex(ctx: &mut Ctx) -> CmdResult {
    zremrange_generic(ctx, RangeType::Lex)
}

// ---------------------------------------------------------------------------
// Pops

/// Pops up to `count` members from the existing zset at `key`, with the
/// events of ZPOPMIN/ZPOPMAX (and `del` when it empties).
fn pop_members(ctx: &mut Ctx, key: &[u8], max: bool, count: usize) -> Vec<(Elem, f64)> {
    let db = ctx.db();
    let mut out = Vec::new();
    if let Ok(Some(z)) = ctx.ks.get_zset_mut(db, key) {
        while out.len() < count {
            let e = if max { z.last() } else { z.first() };
            let Some((m, s)) = e else { break };
            let m: Elem = m.into();
            z.remove(&m);
            out.push((m, s));
        }
    }
    if !out.is_empty() {
        ctx.ks.modified(db, key);
        ctx.ks.notify(
            db,
            notify::ZSET,
            if max { "zpopmax" } else { "zpopmin" },
            key,
        );
        if ctx.ks.remove_if_empty(db, key) {
            ctx.ks.notify(db, notify::GENERIC, "del", key);
        }
    }
    out
}

fn emit_popped(out: &mut ReplyBuf, items: &[(Elem, f64)], nested: bool) {
    for (m, s) in items {
        if nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(*s);
    }
}

fn zpop(ctx: &mut Ctx, max: bool) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    let args = ctx.args;
    let db = ctx.db();
    let count = if args.len() == 3 {
        match parse_i64(&args[2]) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => return Err(CmdError::NotPositive),
        }
    } else {
        None
    };
    let nested = ctx.out.resp3 && count.is_some();
    if ctx.ks.get_zset_read(db, &args[1])?.is_none() || count == Some(0) {
        ctx.out.array(0);
        return Ok(());
    }
    let items = pop_members(ctx, &args[1], max, count.unwrap_or(1));
    ctx.out
        .array(if nested { items.len() } else { 2 * items.len() });
    emit_popped(ctx.out, &items, nested);
    Ok(())
}

fn zpopmin(ctx: &mut Ctx) -> CmdResult {
    zpop(ctx, false)
}

fn zpopmax(ctx: &mut Ctx) -> CmdResult {
    zpop(ctx, true)
}

fn pop_cmd_name(max: bool) -> &'static [u8] {
    if max {
        b"ZPOPMAX"
    } else {
        b"ZPOPMIN"
    }
}

/// The first key holding a zset (WRONGTYPE on an earlier key of another
/// type). When re-run for a blocked client, a key of another type is simply
/// not ready: Redis 7.0 keeps such clients waiting rather than failing them.
fn first_zset_key<'a>(ctx: &mut Ctx, keys: &'a [Bytes]) -> Result<Option<&'a Bytes>, CmdError> {
    let db = ctx.db();
    let serving_blocked = ctx.client.blocked_on.is_some();
    for k in keys {
        match ctx.ks.get_zset(db, k) {
            Ok(Some(z)) if !z.is_empty() => return Ok(Some(k)),
            Ok(_) => {}
            Err(_) if serving_blocked => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn bzpop(ctx: &mut Ctx, max: bool) -> CmdResult {
    let args = ctx.args;
    let timeout = ctx.timeout_arg(args.len() - 1)?;
    let db = ctx.db();
    let keys = &args[1..args.len() - 1];
    if let Some(k) = first_zset_key(ctx, keys)? {
        // Redis looks the key up again to pop from it.
        ctx.ks.access_again();
        let items = pop_members(ctx, k, max, 1);
        ctx.ks.propagate(db, argv![pop_cmd_name(max), k]);
        ctx.out.array(3);
        ctx.out.bulk(k);
        emit_popped(ctx.out, &items, false);
        return Ok(());
    }
    ctx.block_on(
        keys.iter().map(|k| k[..].into()).collect(),
        timeout,
        TimeoutReply::NullArray,
    );
    Ok(())
}

fn bzpopmin(ctx: &mut Ctx) -> CmdResult {
    bzpop(ctx, false)
}

fn bzpopmax(ctx: &mut Ctx) -> CmdResult {
    bzpop(ctx, true)
}

fn zmpop_generic(ctx: &mut Ctx, numkeys_idx: usize, block: bool) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let numkeys = match parse_i64(&args[numkeys_idx]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err(CmdError::err("numkeys should be greater than 0")),
    };
    if numkeys >= (args.len() - numkeys_idx - 1) as u64 {
        return Err(CmdError::Syntax);
    }
    let where_idx = numkeys_idx + numkeys as usize + 1;
    let max = if is(&args[where_idx], "min") {
        false
    } else if is(&args[where_idx], "max") {
        true
    } else {
        return Err(CmdError::Syntax);
    };
    let mut count: i64 = -1;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if count == -1 && is(&args[j], "count") && more > 0 {
            j += 1;
            count = match parse_i64(&args[j]) {
                Some(n) if n >= 1 => n,
                _ => return Err(CmdError::err("count should be greater than 0")),
            };
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let count = count.max(1);
    let keys = &args[numkeys_idx + 1..where_idx];
    let timeout = if block {
        Some(ctx.timeout_arg(1)?)
    } else {
        None
    };
    match first_zset_key(ctx, keys)? {
        Some(k) => {
            let items = pop_members(ctx, k, max, count as usize);
            ctx.ks.propagate(
                db,
                argv![pop_cmd_name(max), k, crate::numbers::i64_bytes(count)],
            );
            ctx.out.array(2);
            ctx.out.bulk(k);
            ctx.out.array(items.len());
            emit_popped(ctx.out, &items, true);
        }
        None => match timeout {
            Some(t) => ctx.block_on(
                keys.iter().map(|k| k[..].into()).collect(),
                t,
                TimeoutReply::NullArray,
            ),
            None => ctx.out.null_array(),
        },
    }
    Ok(())
}

fn zmpop(ctx: &mut Ctx) -> CmdResult {
    zmpop_generic(ctx, 1, false)
}

fn bzmpop(ctx: &mut Ctx) -> CmdResult {
    zmpop_generic(ctx, 2, true)
}

// ---------------------------------------------------------------------------
// ZUNION / ZINTER / ZDIFF (+STORE), ZINTERCARD

#[derive(Debug, Clone, Copy, PartialEq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Aggr {
    Sum,
    Min,
    Max,
}

fn aggregate(target: &mut f64, val: f64, aggr: Aggr) {
    match aggr {
        Aggr::Sum => {
            *target += val;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggr::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggr::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// One input of a set operation: a zset, a plain set (scores 1), or nothing.
enum Src<'a> {
    None,
    Z(&'a ZSet),
    S(&'a crate::keyspace::Set<Elem>),
}

impl Src<'_> {
    fn len(&self) -> usize {
        match self {
            Src::None => 0,
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
        }
    }

    fn find(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::None => None,
            Src::Z(z) => z.score(m),
            Src::S(s) => s.contains(m).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], f64) -> bool) {
        match self {
            Src::None => {}
            Src::Z(z) => {
                for (m, s) in z.iter() {
                    if !f(m, s) {
                        break;
                    }
                }
            }
            Src::S(s) => {
                for m in s.iter() {
                    if !f(m, 1.0) {
                        break;
                    }
                }
            }
        }
    }
}

fn zsetop_generic(
    ctx: &mut Ctx,
    dst: Option<&[u8]>,
    numkeys_idx: usize,
    op: SetOp,
    card_only: bool,
) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let setnum = parse_i64(&args[numkeys_idx]).ok_or(CmdError::NotInteger)?;
    if setnum < 1 {
        return Err(CmdError::err(format!(
            "at least 1 input key is needed for '{}' command",
            ctx.name()
        )));
    }
    if setnum > (args.len() - numkeys_idx - 1) as i64 {
        return Err(CmdError::Syntax);
    }
    let setnum = setnum as usize;
    let keys = &args[numkeys_idx + 1..numkeys_idx + 1 + setnum];
    // Expire lazily and check types first; then borrow all sources at once.
    for k in keys {
        match ctx.ks.get_counted(db, k) {
            None | Some(Value::ZSet(_)) | Some(Value::Set(_)) => {}
            Some(_) => return Err(CmdError::WrongType),
        }
    }
    let mut weights = vec![1.0f64; setnum];
    let mut aggr = Aggr::Sum;
    let mut withscores = false;
    let mut limit: i64 = 0;
    let mut j = numkeys_idx + 1 + setnum;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j][..];
        if op != SetOp::Diff && !card_only && remaining > setnum && is(a, "weights") {
            j += 1;
            for w in weights.iter_mut() {
                *w = parse_score(&args[j])
                    .ok_or_else(|| CmdError::err("weight value is not a float"))?;
                j += 1;
            }
        } else if op != SetOp::Diff && !card_only && remaining >= 2 && is(a, "aggregate") {
            let v = &args[j + 1][..];
            aggr = if is(v, "sum") {
                Aggr::Sum
            } else if is(v, "min") {
                Aggr::Min
            } else if is(v, "max") {
                Aggr::Max
            } else {
                return Err(CmdError::Syntax);
            };
            j += 2;
        } else if dst.is_none() && !card_only && is(a, "withscores") {
            withscores = true;
            j += 1;
        } else if card_only && remaining >= 2 && is(a, "limit") {
            limit = match parse_i64(&args[j + 1]) {
                Some(n) if n >= 0 => n,
                _ => return Err(CmdError::err("LIMIT can't be negative")),
            };
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }

    let d = &ctx.ks.dbs[db];
    let mut srcs: Vec<(Src<'_>, f64)> = keys
        .iter()
        .zip(&weights)
        .map(|(k, w)| {
            let s = match d.value(&k[..]) {
                Some(Value::ZSet(z)) => Src::Z(z),
                Some(Value::Set(s)) => Src::S(s),
                _ => Src::None,
            };
            (s, *w)
        })
        .collect();
    if op != SetOp::Diff {
        srcs.sort_by_key(|(s, _)| s.len());
    }
    let mut result: Map<Elem, f64> = Map::default();
    let mut cardinality: i64 = 0;
    match op {
        SetOp::Union => {
            for (src, w) in &srcs {
                src.for_each(|m, s| {
                    let mut score = w * s;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match result.get_mut(m) {
                        Some(t) => aggregate(t, score, aggr),
                        None => {
                            result.insert(m.into(), score);
                        }
                    }
                    true
                });
            }
        }
        SetOp::Inter => {
            let (first, w0) = &srcs[0];
            first.for_each(|m, s| {
                let mut score = w0 * s;
                if score.is_nan() {
                    score = 0.0;
                }
                for (other, w) in &srcs[1..] {
                    match other.find(m) {
                        Some(v) => aggregate(&mut score, v * w, aggr),
                        None => return true,
                    }
                }
                if card_only {
                    cardinality += 1;
                    if limit > 0 && cardinality >= limit {
                        return false;
                    }
                } else {
                    result.insert(m.into(), score);
                }
                true
            });
        }
        SetOp::Diff => {
            let (first, _) = &srcs[0];
            first.for_each(|m, s| {
                if !srcs[1..].iter().any(|(o, _)| o.find(m).is_some()) {
                    result.insert(m.into(), s);
                }
                true
            });
        }
    }
    drop(srcs);
    if card_only {
        ctx.out.int(cardinality);
        return Ok(());
    }
    match dst {
        Some(dst) => {
            let mut z = ZSet::default();
            for (m, s) in &result {
                z.insert(m, *s);
            }
            let event = match op {
                SetOp::Union => "zunionstore",
                SetOp::Inter => "zinterstore",
                SetOp::Diff => "zdiffstore",
            };
            store_result(ctx, dst, z, event);
        }
        None => {
            // In score order, then member order, as a sorted set keeps
            // them, but with the scores as computed: a -0 (a weight of -1
            // on 0) is shown as Redis shows it.
            let mut v: Vec<(&[u8], f64)> = result.iter().map(|(m, s)| (&m[..], *s)).collect();
            // (-0 and 0 tie, as in the skiplist; no score here is NaN.)
            v.sort_by(|a, b| {
                a.1.partial_cmp(&b.1)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.0.cmp(b.0))
            });
            emit(ctx.out, v.into_iter(), withscores);
        }
    }
    Ok(())
}

fn zunion(ctx: &mut Ctx) -> CmdResult {
    zsetop_generic(ctx, None, 1, SetOp::Union, false)
}

fn zinter(ctx: &mut Ctx) -> CmdResult {
    zsetop_generic(ctx, None, 1, SetOp::Inter, false)
}

fn zdiff(ctx: &mut Ctx) -> CmdResult {
    zsetop_generic(ctx, None, 1, SetOp::Diff, false)
}

fn zunionstore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    zsetop_generic(ctx, Some(&args[1]), 2, SetOp::Union, false)
}

fn zinterstore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    zsetop_generic(ctx, Some(&args[1]), 2, SetOp::Inter, false)
}

fn zdiffstore(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    zsetop_generic(ctx, Some(&args[1]), 2, SetOp::Diff, false)
}

fn zintercard(ctx: &mut Ctx) -> CmdResult {
    zsetop_generic(ctx, None, 1, SetOp::Inter, true)
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER, ZSCAN

fn zrandmember(ctx: &mut Ctx) -> CmdResult {
    use rand::Rng;
    let args = ctx.args;
    let db = ctx.db();
    if args.len() >= 3 {
        let l = match parse_i64(&args[2]) {
            None => return Err(CmdError::NotInteger),
            Some(i64::MIN) => {
                return Err(CmdError::err(
                    "value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                ))
            }
            Some(l) => l,
        };
        if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withscores")) {
            return Err(CmdError::Syntax);
        }
        let withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return Err(CmdError::err("value is out of range"));
        }
        let Some(z) = ctx.ks.get_zset_read(db, &args[1])? else {
            ctx.out.array(0);
            return Ok(());
        };
        let size = z.len();
        let mut rng = rand::thread_rng();
        if l < 0 || l == 1 {
            // Picked as they are written: a count of -20 million held a
            // vector of them (480 MB) beside the reply itself.
            let n = l.unsigned_abs() as usize;
            return random_picks::with_repetitions(
                ctx.out,
                n,
                random_picks::limit(ctx.srv),
                |o| emit_header(o, n, withscores),
                |o| {
                    let (m, s) = z.get_index(rng.gen_range(0..size)).unwrap_or_default();
                    emit_item(o, m, s, withscores);
                },
            );
        }
        let picks: Vec<(&[u8], f64)> = if l == 0 {
            Vec::new()
        } else if l as usize >= size {
            z.iter().collect()
        } else {
            let idx = rand::seq::index::sample(&mut rng, size, l as usize);
            idx.iter().filter_map(|i| z.get_index(i)).collect()
        };
        emit(ctx.out, picks.into_iter(), withscores);
        return Ok(());
    }
    match ctx.ks.get_zset_read(db, &args[1])? {
        Some(z) => {
            let i = rand::thread_rng().gen_range(0..z.len());
            match z.get_index(i) {
                Some((m, _)) => ctx.out.bulk(m),
                None => ctx.out.null(),
            }
        }
        None => ctx.out.null(),
    }
    Ok(())
}

fn zscan(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let cursor = super::keys::parse_cursor(&args[2])?;
    let Some(z) = ctx.ks.get_zset_read(db, &args[1])? else {
        ctx.out.array(2);
        ctx.out.bulk(b"0");
        ctx.out.array(0);
        return Ok(());
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut j = 3;
    while j < args.len() {
        let more = args.len() - j - 1;
        if is(&args[j], "count") && more >= 1 {
            count = parse_i64(&args[j + 1]).ok_or(CmdError::NotInteger)?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
            j += 2;
        } else if is(&args[j], "match") && more >= 1 {
            pattern = Some(&args[j + 1][..]).filter(|p| *p != b"*");
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    // Small sets (Redis' listpack encoding) are returned whole; larger ones
    // are walked by position in the member table.
    let len = z.len();
    let matches = |m: &[u8]| pattern.is_none_or(|p| crate::glob::glob_match(p, m, false));
    let (items, next): (Vec<(&[u8], f64)>, u64) = if len <= 128 {
        (z.iter().filter(|(m, _)| matches(m)).collect(), 0)
    } else {
        let start = cursor.min(len as u64) as usize;
        let end = start.saturating_add(count as usize).min(len);
        let next = if end >= len { 0 } else { end as u64 };
        let items = (start..end)
            .filter_map(|i| z.get_index(i))
            .filter(|(m, _)| matches(m))
            .collect();
        (items, next)
    };
    ctx.out.array(2);
    ctx.out.bulk(next.to_string().as_bytes());
    ctx.out.array(items.len() * 2);
    for (m, s) in items {
        ctx.out.bulk(m);
        ctx.out.bulk(crate::numbers::fmt_double(s).as_bytes());
    }
    Ok(())
}
