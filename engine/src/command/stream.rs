//! Stream commands (t_stream.c): XADD, XLEN, XRANGE, XREVRANGE, XDEL,
//! XTRIM, XSETID, XREAD (blocking included) and XINFO STREAM, with Redis
//! 7.0's replies and errors, over [`crate::keyspace::Stream`].
//!
//! Effects: what depends on the clock or on node boundaries is logged
//! resolved, as Redis propagates it: XADD logs the ID it generated, and an
//! approximate trim (`~`) is logged as the exact trim it amounted to
//! (`MAXLEN = <length after>` or `MINID = <first ID after>`), so replay
//! rebuilds the same entries whatever the replaying server's node sizes.

use bytes::Bytes;

use super::flags::*;
use super::CommandSpec;
use crate::engine::{Ctx, TimeoutReply};
use crate::error::{CmdError, CmdResult};
use crate::keyspace::stream::Trim;
use crate::keyspace::{notify, Elem, Stream, StreamId, Value, ValueType};
use crate::numbers::parse_i64;
use crate::resp::ReplyBuf;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "xadd",
        -5,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "stream",
        xadd,
    ),
    CommandSpec::new("xlen", 2, READONLY | FAST, (1, 1, 1), "stream", xlen),
    CommandSpec::new("xrange", -4, READONLY, (1, 1, 1), "stream", xrange),
    CommandSpec::new("xrevrange", -4, READONLY, (1, 1, 1), "stream", xrevrange),
    CommandSpec::new("xdel", -3, WRITE | FAST, (1, 1, 1), "stream", xdel),
    CommandSpec::new("xtrim", -4, WRITE, (1, 1, 1), "stream", xtrim),
    CommandSpec::new(
        "xsetid",
        -3,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "stream",
        xsetid,
    ),
    CommandSpec::new("xread", -4, READONLY | BLOCKING, (0, 0, 0), "stream", xread)
        .with_keys_fn(xread_keys),
];

/// The keys of XREAD / XREADGROUP: the first half of what follows STREAMS.
pub fn xread_keys(argv: &[Bytes]) -> Result<Vec<usize>, CmdError> {
    let streams = argv
        .iter()
        .enumerate()
        .skip(1)
        .find(|(_, a)| a.eq_ignore_ascii_case(b"streams"))
        .map(|(i, _)| i + 1)
        .ok_or(CmdError::Syntax)?;
    let n = argv.len() - streams;
    if n == 0 || !n.is_multiple_of(2) {
        return Err(CmdError::Syntax);
    }
    Ok((streams..streams + n / 2).collect())
}

/// getTimeoutFromObjectOrReply in milliseconds: None blocks forever.
pub fn parse_timeout_ms(arg: &[u8]) -> Result<Option<std::time::Duration>, CmdError> {
    let ms =
        parse_i64(arg).ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::NegativeTimeout);
    }
    // 0 blocks forever; so, in practice, does anything over ~30 years.
    Ok((ms > 0 && ms <= 1_000_000_000_000).then(|| std::time::Duration::from_millis(ms as u64)))
}

const INVALID_ID: &str = "Invalid stream ID specified as stream command argument";

/// Redis' string2ull: string2ll when it fits (negative refused), else
/// strtoull (leading spaces and a sign allowed, nothing after the digits).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return u64::try_from(v).ok();
    }
    let t = std::str::from_utf8(s).ok()?;
    let t = t.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let v: u64 = digits.parse().ok()?;
    Some(if neg { v.wrapping_neg() } else { v })
}

/// streamGenericParseIDOrReply. `seq_given` is Some for XADD, where `ms-*`
/// leaves the sequence to the server (returned as `false`).
fn parse_id(arg: &[u8], missing_seq: u64, strict: bool) -> Result<(StreamId, bool), CmdError> {
    let invalid = || CmdError::err(INVALID_ID);
    if arg.len() > 127 {
        return Err(invalid());
    }
    if strict && (arg == b"-" || arg == b"+") {
        return Err(invalid());
    }
    if arg == b"-" {
        return Ok((StreamId::MIN, true));
    }
    if arg == b"+" {
        return Ok((StreamId::MAX, true));
    }
    // C stops at a NUL byte.
    let arg = arg.split(|&c| c == 0).next().unwrap_or_default();
    match arg.iter().position(|&c| c == b'-') {
        Some(dash) => {
            let ms = string2ull(&arg[..dash]).ok_or_else(invalid)?;
            let rest = &arg[dash + 1..];
            if rest == b"*" {
                return Ok((StreamId::new(ms, 0), false));
            }
            let seq = string2ull(rest).ok_or_else(invalid)?;
            Ok((StreamId::new(ms, seq), true))
        }
        None => {
            let ms = string2ull(arg).ok_or_else(invalid)?;
            Ok((StreamId::new(ms, missing_seq), true))
        }
    }
}

/// A strict ID (no `-`/`+`), `ms-*` refused.
pub(super) fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    match parse_id(arg, 0, true)? {
        (id, true) => Ok(id),
        _ => Err(CmdError::err(INVALID_ID)),
    }
}

/// streamParseIntervalIDOrReply: `(` makes the bound exclusive.
pub(super) fn parse_interval_id(
    arg: &[u8],
    missing_seq: u64,
) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        Ok((parse_strict_id_missing(&arg[1..], missing_seq)?, true))
    } else {
        match parse_id(arg, missing_seq, false)? {
            (id, true) => Ok((id, false)),
            _ => Err(CmdError::err(INVALID_ID)),
        }
    }
}

/// streamParseIDOrReply: `-`/`+` allowed, `ms-*` refused.
pub(super) fn parse_any_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    match parse_id(arg, 0, false)? {
        (id, true) => Ok(id),
        _ => Err(CmdError::err(INVALID_ID)),
    }
}

fn parse_strict_id_missing(arg: &[u8], missing_seq: u64) -> Result<StreamId, CmdError> {
    match parse_id(arg, missing_seq, true)? {
        (id, true) => Ok(id),
        _ => Err(CmdError::err(INVALID_ID)),
    }
}

fn id_bytes(id: StreamId) -> Bytes {
    Bytes::from(id.to_bytes())
}

/// Writes one entry: `[id, [field, value, ...]]`.
pub fn reply_entry(out: &mut ReplyBuf, id: StreamId, fields: &[Elem]) {
    out.array(2);
    out.bulk(&id.to_bytes());
    out.array(fields.len());
    for f in fields {
        out.bulk(f);
    }
}

/// Parsed trimming options of XADD and XTRIM.
struct TrimArgs {
    strategy: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Index of the MAXLEN/MINID threshold argument.
    arg_idx: usize,
    nomkstream: bool,
    /// XADD: the ID argument's index, the ID and whether its sequence was
    /// given (None: `*`).
    id: Option<(StreamId, bool)>,
    id_idx: usize,
}

/// streamParseAddOrTrimArgsOrReply.
fn parse_add_or_trim(ctx: &Ctx, xadd: bool) -> Result<TrimArgs, CmdError> {
    let args = ctx.args;
    let mut t = TrimArgs {
        strategy: None,
        approx: false,
        limit: 0,
        arg_idx: 0,
        nomkstream: false,
        id: None,
        id_idx: 0,
    };
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let moreargs = args.len() - 1 - i;
        let opt = &args[i][..];
        let is = |w: &str| opt.eq_ignore_ascii_case(w.as_bytes());
        if xadd && opt == b"*" {
            break;
        } else if (is("maxlen") || is("minid")) && moreargs > 0 {
            if t.strategy.is_some() {
                return Err(CmdError::err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            t.approx = false;
            let next = &args[i + 1][..];
            if moreargs >= 2 && next == b"~" {
                t.approx = true;
                i += 1;
            } else if moreargs >= 2 && next == b"=" {
                i += 1;
            }
            let v = &args[i + 1];
            if is("maxlen") {
                let n = parse_i64(v).ok_or(CmdError::NotInteger)?;
                if n < 0 {
                    return Err(CmdError::err("The MAXLEN argument must be >= 0."));
                }
                t.strategy = Some(Trim::MaxLen(n as u64));
            } else {
                t.strategy = Some(Trim::MinId(parse_strict_id(v)?));
            }
            i += 1;
            t.arg_idx = i;
        } else if is("limit") && moreargs > 0 {
            let n = parse_i64(&args[i + 1]).ok_or(CmdError::NotInteger)?;
            if n < 0 {
                return Err(CmdError::err("The LIMIT argument must be >= 0."));
            }
            t.limit = n as u64;
            limit_given = true;
            i += 1;
        } else if xadd && is("nomkstream") {
            t.nomkstream = true;
        } else if xadd {
            let (id, seq_given) = parse_id(opt, 0, true)?;
            t.id = Some((id, seq_given));
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    t.id_idx = i;
    if t.limit != 0 && t.strategy.is_none() {
        return Err(CmdError::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        ));
    }
    if !xadd && t.strategy.is_none() {
        return Err(CmdError::err(
            "syntax error, XTRIM must be called with a trimming strategy",
        ));
    }
    if ctx.ks.applying {
        // Replay: the logged threshold is already exact.
        t.limit = 0;
    } else if limit_given {
        if !t.approx {
            return Err(CmdError::err(
                "syntax error, LIMIT cannot be used without the special ~ option",
            ));
        }
    } else if t.approx {
        let per_node = ctx.srv.config.get_i64("stream-node-max-entries");
        t.limit = (100i64.saturating_mul(per_node)).clamp(1, 1_000_000) as u64;
        if per_node <= 0 {
            t.limit = 10_000;
        }
    } else {
        t.limit = 0;
    }
    Ok(t)
}

fn node_limits(ctx: &Ctx) -> (u64, usize) {
    let entries = ctx.srv.config.get_i64("stream-node-max-entries").max(0) as u64;
    let bytes = ctx.srv.config.get_i64("stream-node-max-bytes").max(0) as usize;
    (entries, bytes)
}

/// The exact form of an approximate trim, for the log.
fn resolved_trim(s: &Stream, strategy: Trim) -> Bytes {
    match strategy {
        Trim::MaxLen(_) => Bytes::from(s.len().to_string()),
        // Emptied: every ID is below the largest (as Redis logs it); the
        // first ID of an empty stream, 0-0, trimmed nothing on replay.
        Trim::MinId(_) if s.is_empty() => id_bytes(StreamId::MAX),
        Trim::MinId(_) => id_bytes(s.first_id()),
    }
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value ...
fn xadd(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let t = parse_add_or_trim(ctx, true)?;
    let field_pos = t.id_idx + 1;
    let nfields = args.len().saturating_sub(field_pos);
    if nfields < 2 || nfields % 2 == 1 {
        return Err(CmdError::WrongArity("xadd".into()));
    }
    if let Some((id, true)) = t.id {
        if id == StreamId::MIN {
            return Err(CmdError::err(
                "The ID specified in XADD must be greater than 0-0",
            ));
        }
    }
    let db = ctx.db();
    let key = &args[1];
    let exists = ctx.ks.check_type(db, key, ValueType::Stream)?;
    if !exists && t.nomkstream {
        ctx.out.null();
        return Ok(());
    }
    let (max_entries, max_bytes) = node_limits(ctx);
    let now = crate::keyspace::unix_ms().max(0) as u64;
    let Value::Stream(s) = ctx.ks.get_or_insert_with(db, key, Value::new_stream) else {
        return Err(CmdError::WrongType);
    };
    if s.last_id == StreamId::MAX {
        return Err(CmdError::err(
            "The stream has exhausted the last possible ID, unable to add more items",
        ));
    }
    let too_small = || {
        CmdError::err(
            "The ID specified in XADD is equal or smaller than the target stream top item",
        )
    };
    let id = match t.id {
        Some((id, true)) => id,
        Some((id, false)) => {
            if s.last_id.ms == id.ms {
                StreamId::new(id.ms, s.last_id.seq.checked_add(1).ok_or_else(too_small)?)
            } else {
                id
            }
        }
        None => {
            if now > s.last_id.ms {
                StreamId::new(now, 0)
            } else {
                s.last_id.incr().ok_or_else(too_small)?
            }
        }
    };
    if id <= s.last_id {
        // A stream created by this command stays, as in Redis (it cannot
        // be: an empty stream's last ID is 0-0 and 0-0 was refused).
        return Err(too_small());
    }
    let fields: Box<[Elem]> = args[field_pos..]
        .iter()
        .map(|a| Elem::from(&a[..]))
        .collect();
    s.append(id, fields, max_entries, max_bytes);
    let mut trimmed = 0;
    let mut resolved = None;
    if let Some(strategy) = t.strategy {
        trimmed = s.trim(strategy, t.approx, t.limit);
        if t.approx {
            resolved = Some(resolved_trim(s, strategy));
        }
    }
    ctx.out.bulk(&id.to_bytes());
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.ks.notify(db, notify::STREAM, "xtrim", key);
    }
    if t.id != Some((id, true)) || resolved.is_some() {
        let mut eff: Vec<Bytes> = args.to_vec();
        if let Some(r) = resolved {
            eff[t.arg_idx - 1] = Bytes::from_static(b"=");
            eff[t.arg_idx] = r;
        }
        eff[t.id_idx] = id_bytes(id);
        ctx.ks.propagate(db, eff);
    }
    Ok(())
}

fn xlen(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let n = ctx
        .ks
        .get_stream_read(db, &ctx.args[1])?
        .map_or(0, |s| s.len());
    ctx.out.int(n as i64);
    Ok(())
}

fn xrange(ctx: &mut Ctx) -> CmdResult {
    xrange_generic(ctx, false)
}

fn xrevrange(ctx: &mut Ctx) -> CmdResult {
    xrange_generic(ctx, true)
}

fn xrange_generic(ctx: &mut Ctx, rev: bool) -> CmdResult {
    let args = ctx.args;
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (mut start, startex) = parse_interval_id(start_arg, 0)?;
    if startex {
        start = start
            .incr()
            .ok_or_else(|| CmdError::err("invalid start ID for the interval"))?;
    }
    let (mut end, endex) = parse_interval_id(end_arg, u64::MAX)?;
    if endex {
        end = end
            .decr()
            .ok_or_else(|| CmdError::err("invalid end ID for the interval"))?;
    }
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if args[j].eq_ignore_ascii_case(b"count") && j + 1 < args.len() {
            count = parse_i64(&args[j + 1]).ok_or(CmdError::NotInteger)?.max(0);
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let db = ctx.db();
    let Some(s) = ctx.ks.get_stream_read(db, &args[1])? else {
        ctx.out.array(0);
        return Ok(());
    };
    if count == 0 {
        ctx.out.null_array();
        return Ok(());
    }
    let limit = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    if start > end {
        ctx.out.array(0);
        return Ok(());
    }
    let range = s.entries.range(start..=end);
    let items: Vec<(&StreamId, &Box<[Elem]>)> = if rev {
        range.rev().take(limit).collect()
    } else {
        range.take(limit).collect()
    };
    ctx.out.array(items.len());
    for (id, fields) in items {
        reply_entry(ctx.out, *id, fields);
    }
    Ok(())
}

fn xdel(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let db = ctx.db();
    let key = &args[1];
    if ctx.ks.get_stream(db, key)?.is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let ids = args[2..]
        .iter()
        .map(|a| parse_strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let Some(s) = ctx.ks.get_stream_mut(db, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let mut deleted = 0;
    for id in ids {
        if s.delete(id) {
            s.max_deleted_id = s.max_deleted_id.max(id);
            deleted += 1;
        }
    }
    if deleted > 0 {
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::STREAM, "xdel", key);
    }
    ctx.out.int(deleted);
    Ok(())
}

fn xtrim(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let t = parse_add_or_trim(ctx, false)?;
    let db = ctx.db();
    let key = &args[1];
    let Some(s) = ctx.ks.get_stream_mut(db, key)? else {
        ctx.out.int(0);
        return Ok(());
    };
    let Some(strategy) = t.strategy else {
        return Err(CmdError::Syntax);
    };
    let deleted = s.trim(strategy, t.approx, t.limit);
    if deleted > 0 {
        let resolved = t.approx.then(|| resolved_trim(s, strategy));
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::STREAM, "xtrim", key);
        if let Some(r) = resolved {
            let mut eff: Vec<Bytes> = args.to_vec();
            eff[t.arg_idx - 1] = Bytes::from_static(b"=");
            eff[t.arg_idx] = r;
            ctx.ks.propagate(db, eff);
        }
    }
    ctx.out.int(deleted as i64);
    Ok(())
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
fn xsetid(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let id = parse_strict_id(&args[2])?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted: Option<StreamId> = None;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - i - 1;
        if args[i].eq_ignore_ascii_case(b"entriesadded") && more >= 1 {
            let n = parse_i64(&args[i + 1]).ok_or(CmdError::NotInteger)?;
            if n < 0 {
                return Err(CmdError::err("entries_added must be positive"));
            }
            entries_added = Some(n as u64);
            i += 2;
        } else if args[i].eq_ignore_ascii_case(b"maxdeletedid") && more >= 1 {
            let m = parse_strict_id(&args[i + 1])?;
            if id < m {
                return Err(CmdError::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            max_deleted = Some(m);
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let db = ctx.db();
    let key = &args[1];
    let Some(s) = ctx.ks.get_stream_mut(db, key)? else {
        return Err(CmdError::NoSuchKey);
    };
    if let Some(&max) = s.entries.keys().next_back() {
        if id < max {
            return Err(CmdError::err(
                "The ID specified in XSETID is smaller than the target stream top item",
            ));
        }
        if entries_added.is_some_and(|n| (s.len() as u64) > n) {
            return Err(CmdError::err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if let Some(m) = max_deleted.filter(|m| *m != StreamId::MIN) {
        s.max_deleted_id = m;
    }
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::STREAM, "xsetid", key);
    ctx.out.ok();
    Ok(())
}

/// XREAD [COUNT count] [BLOCK milliseconds] STREAMS key ... id ...
/// XREAD's and XREADGROUP's options (xreadCommand's parsing).
pub(super) struct ReadArgs {
    /// Some: BLOCK given (its inner None: forever).
    pub timeout: Option<Option<std::time::Duration>>,
    pub count: i64,
    /// Index of the first key after STREAMS.
    pub streams_arg: usize,
    pub noack: bool,
    /// XREADGROUP: index of the group name (the consumer follows).
    pub group_at: Option<usize>,
}

pub(super) fn parse_read_args(ctx: &Ctx, group: bool) -> Result<ReadArgs, CmdError> {
    let args = ctx.args;
    let mut r = ReadArgs {
        timeout: None,
        count: 0,
        streams_arg: 0,
        noack: false,
        group_at: None,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let o = &args[i][..];
        if o.eq_ignore_ascii_case(b"block") && more > 0 {
            if ctx.client.in_script {
                return Err(CmdError::err(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(&args[0])
                )));
            }
            i += 1;
            r.timeout = Some(parse_timeout_ms(&args[i])?);
        } else if o.eq_ignore_ascii_case(b"count") && more > 0 {
            i += 1;
            r.count = parse_i64(&args[i]).ok_or(CmdError::NotInteger)?.max(0);
        } else if o.eq_ignore_ascii_case(b"streams") && more > 0 {
            r.streams_arg = i + 1;
            if !(args.len() - r.streams_arg).is_multiple_of(2) {
                return Err(CmdError::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                ));
            }
            break;
        } else if o.eq_ignore_ascii_case(b"group") && more >= 2 {
            if !group {
                return Err(CmdError::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group_at = Some(i + 1);
            i += 2;
        } else if o.eq_ignore_ascii_case(b"noack") {
            if !group {
                return Err(CmdError::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if r.streams_arg == 0 {
        return Err(CmdError::Syntax);
    }
    Ok(r)
}

/// Entries served to a reader, per key index.
type Served = Vec<(usize, Vec<(StreamId, Box<[Elem]>)>)>;

fn xread(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    let ReadArgs {
        timeout,
        count,
        streams_arg,
        ..
    } = parse_read_args(ctx, false)?;
    let n = (args.len() - streams_arg) / 2;
    let db = ctx.db();
    // Retried for a blocked client: a key that is no stream (any more)
    // just has nothing to read, as in Redis. Each key is looked up twice,
    // counted twice (hits/misses, keymiss), as in Redis' xreadCommand.
    let retry = ctx.srv.serving_key.is_some();
    let mut ids = Vec::with_capacity(n);
    for k in 0..n {
        let key = &args[streams_arg + k];
        let id_arg = &args[streams_arg + n + k];
        // A retry (serving a blocked client) counts nothing, as Redis'
        // serving of blocked readers does not.
        let s = match if retry {
            ctx.ks.get_stream(db, key)
        } else {
            ctx.ks.get_stream_read(db, key)
        } {
            Err(_) if retry => None,
            r => r?,
        };
        if &id_arg[..] == b"$" {
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
        } else if &id_arg[..] == b">" {
            return Err(CmdError::err(
                "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
            ));
        } else {
            ids.push(parse_strict_id(id_arg)?);
        }
    }
    // Serve what is there.
    let mut served: Served = Vec::new();
    for (k, gt) in ids.iter().enumerate() {
        let key = &args[streams_arg + k];
        let s = match if retry {
            ctx.ks.get_stream(db, key)
        } else {
            ctx.ks.get_stream_read(db, key)
        } {
            Err(_) if retry => None,
            r => r?,
        };
        let Some(s) = s else {
            continue;
        };
        let Some(start) = gt.incr() else { continue };
        let limit = if count == 0 {
            usize::MAX
        } else {
            count as usize
        };
        let items: Vec<(StreamId, Box<[Elem]>)> = s
            .entries
            .range(start..)
            .take(limit)
            .map(|(id, f)| (*id, f.clone()))
            .collect();
        if !items.is_empty() {
            served.push((k, items));
        }
    }
    if !served.is_empty() {
        if ctx.out.resp3 {
            ctx.out.map(served.len());
        } else {
            ctx.out.array(served.len());
        }
        for (k, items) in served {
            if !ctx.out.resp3 {
                ctx.out.array(2);
            }
            ctx.out.bulk(&args[streams_arg + k]);
            ctx.out.array(items.len());
            for (id, fields) in items {
                reply_entry(ctx.out, id, &fields);
            }
        }
        return Ok(());
    }
    let Some(timeout) = timeout else {
        ctx.out.null_array();
        return Ok(());
    };
    let ids = ids.iter().map(|id| id_bytes(*id)).collect();
    block_on_streams(
        ctx,
        timeout,
        vec![Bytes::from_static(b"XREAD")],
        count,
        streams_arg,
        ids,
    );
    Ok(())
}

/// Blocks a stream reader on its keys (at `streams_arg`, as many as `ids`)
/// until one is written or the timeout passes. It is retried as `head COUNT
/// c BLOCK 0 STREAMS key... id...`: with the IDs as resolved now (`$` must
/// keep meaning the end as of now) and Redis' blocked default COUNT, 1000,
/// when none was given.
pub(super) fn block_on_streams(
    ctx: &mut Ctx,
    timeout: Option<std::time::Duration>,
    mut head: Vec<Bytes>,
    count: i64,
    streams_arg: usize,
    ids: Vec<Bytes>,
) {
    let keys = &ctx.args[streams_arg..streams_arg + ids.len()];
    head.push(Bytes::from_static(b"COUNT"));
    head.push(Bytes::from(
        if count == 0 { 1000 } else { count }.to_string(),
    ));
    head.extend([
        Bytes::from_static(b"BLOCK"),
        Bytes::from_static(b"0"),
        Bytes::from_static(b"STREAMS"),
    ]);
    head.extend(keys.iter().cloned());
    head.extend(ids);
    let keys = keys.iter().map(|k| Elem::from(&k[..])).collect();
    ctx.block_on_rewritten(keys, timeout, TimeoutReply::NullArray, head);
}
