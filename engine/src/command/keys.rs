//! Generic key commands: DEL, EXISTS, TYPE, expiry, SCAN, RENAME, MOVE, COPY,
//! SWAPDB, OBJECT, DUMP/RESTORE, ... (SORT lives in `sort.rs`).

use bytes::Bytes;

use super::flags::*;
use super::CommandSpec;
use crate::argv;
use crate::config::Config;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Value};
use crate::numbers::{i64_bytes, parse_i64};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("del", -2, WRITE, (1, -1, 1), "generic", del),
    CommandSpec::new("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", del),
    CommandSpec::new("exists", -2, READONLY | FAST, (1, -1, 1), "generic", exists),
    CommandSpec::new("type", 2, READONLY | FAST, (1, 1, 1), "generic", type_),
    CommandSpec::new(
        "keys",
        2,
        READONLY | WHOLE_KEYSPACE,
        (0, 0, 0),
        "generic",
        keys,
    ),
    CommandSpec::new(
        "scan",
        -2,
        READONLY | WHOLE_KEYSPACE,
        (0, 0, 0),
        "generic",
        scan,
    ),
    CommandSpec::new(
        "randomkey",
        1,
        READONLY | WHOLE_KEYSPACE,
        (0, 0, 0),
        "generic",
        randomkey,
    ),
    CommandSpec::new("rename", 3, WRITE, (1, 2, 1), "generic", rename),
    CommandSpec::new("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", renamenx),
    CommandSpec::new("move", 3, WRITE | FAST, (1, 1, 1), "generic", move_),
    CommandSpec::new("copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", copy),
    CommandSpec::new(
        "swapdb",
        3,
        WRITE | FAST | WHOLE_KEYSPACE,
        (0, 0, 0),
        "generic",
        swapdb,
    ),
    CommandSpec::new("expire", -3, WRITE | FAST, (1, 1, 1), "generic", expire),
    CommandSpec::new("pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", pexpire),
    CommandSpec::new("expireat", -3, WRITE | FAST, (1, 1, 1), "generic", expireat),
    CommandSpec::new(
        "pexpireat",
        -3,
        WRITE | FAST,
        (1, 1, 1),
        "generic",
        pexpireat,
    ),
    CommandSpec::new("ttl", 2, READONLY | FAST, (1, 1, 1), "generic", ttl),
    CommandSpec::new("pttl", 2, READONLY | FAST, (1, 1, 1), "generic", pttl),
    CommandSpec::new(
        "expiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        "generic",
        expiretime,
    ),
    CommandSpec::new(
        "pexpiretime",
        2,
        READONLY | FAST,
        (1, 1, 1),
        "generic",
        pexpiretime,
    ),
    CommandSpec::new("persist", 2, WRITE | FAST, (1, 1, 1), "generic", persist),
    CommandSpec::new("touch", -2, READONLY | FAST, (1, -1, 1), "generic", touch),
    CommandSpec::new("object", -2, READONLY, (2, 2, 1), "generic", object)
        .with_subcommands(OBJECT_SUBS),
    CommandSpec::new("dump", 2, READONLY, (1, 1, 1), "generic", dump),
    CommandSpec::new(
        "restore",
        -4,
        WRITE | DENYOOM,
        (1, 1, 1),
        "generic",
        restore,
    ),
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
    count_existing(ctx, false)
}

/// EXISTS that counts as an access of each key (its access clock).
fn touch(ctx: &mut Ctx) -> CmdResult {
    count_existing(ctx, true)
}

/// How many of the keys exist. Counted as reads (keyspace hits/misses,
/// keymiss), as Redis does, once per argument; an access of each key only
/// for TOUCH (EXISTS looks up with LOOKUP_NOTOUCH).
fn count_existing(ctx: &mut Ctx, access: bool) -> CmdResult {
    let db = ctx.db();
    let mut n = 0;
    for k in &ctx.args[1..] {
        let found = if access {
            ctx.ks.get_counted(db, k).is_some()
        } else {
            ctx.ks.peek_counted(db, k).is_some()
        };
        n += i64::from(found);
    }
    ctx.out.int(n);
    Ok(())
}

fn type_(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let t = ctx
        .ks
        .peek_counted(db, &ctx.args[1])
        .map(|v| v.type_name())
        .unwrap_or("none");
    ctx.out.simple(t);
    Ok(())
}

fn keys(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let pat = &ctx.args[1][..];
    let all = pat == b"*";
    let now = ctx.ks.now_ms;
    let applying = ctx.ks.applying;
    let d = &ctx.ks.dbs[db];
    let found: Vec<&[u8]> = d
        .data
        .keys()
        .filter(|k| all || crate::glob::glob_match(pat, k, false))
        .filter(|k| applying || d.expire_of(k).is_none_or(|at| at > now))
        .map(|k| &k[..])
        .collect();
    ctx.out.array(found.len());
    for k in found {
        ctx.out.bulk(k);
    }
    Ok(())
}

/// Redis' parseScanCursorOrReply: strtoul without leading space (an empty
/// cursor is 0, as strtoul reads it), for SCAN and its per-key forms.
pub fn parse_cursor(s: &[u8]) -> Result<u64, CmdError> {
    let bad = || CmdError::err("invalid cursor");
    if s.is_empty() {
        return Ok(0);
    }
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add((c - b'0') as u64))
            .ok_or_else(bad)?;
    }
    Ok(if neg { v.wrapping_neg() } else { v })
}

fn scan(ctx: &mut Ctx) -> CmdResult {
    let cursor = parse_cursor(ctx.arg(1))?;
    let args = ctx.args;
    let mut count: i64 = 10;
    let mut pat: Option<&[u8]> = None;
    let mut typ: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i >= 2;
        if ctx.arg_is(i, "COUNT") && more {
            count = ctx.int_arg(i + 1)?;
            if count < 1 {
                return Err(CmdError::Syntax);
            }
        } else if ctx.arg_is(i, "MATCH") && more {
            pat = Some(&args[i + 1][..]).filter(|p| *p != b"*");
        } else if ctx.arg_is(i, "TYPE") && more {
            typ = Some(&args[i + 1][..]);
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let db = ctx.db();
    let start = cursor.min(ctx.ks.dbs[db].data.len() as u64) as usize;
    let end = (cursor.saturating_add(count as u64)).min(ctx.ks.dbs[db].data.len() as u64) as usize;
    let (found, end, len) = if expired_in(ctx.ks, db, start..end) {
        let (keys, end) = scan_expiring(ctx.ks, db, start, end, pat, typ);
        (ScanFound::Owned(keys), end, ctx.ks.dbs[db].data.len())
    } else {
        let ks = &mut *ctx.ks;
        let d = &ks.dbs[db];
        // Redis checks TYPE through a counted lookup of each key its MATCH
        // lets through.
        let mut looked_up = 0;
        let keys = (start..end)
            .filter_map(|i| d.data.get_index(i))
            .filter(|(k, o)| {
                let matched = pat.is_none_or(|p| crate::glob::glob_match(p, k, false));
                looked_up += u64::from(matched);
                matched && type_matches(&o.value, typ)
            })
            .map(|(k, _)| &k[..])
            .collect();
        if typ.is_some() {
            ks.stat_keyspace_hits += looked_up;
        }
        (ScanFound::Borrowed(keys), end, d.data.len())
    };
    let next = if end >= len { 0 } else { end };
    ctx.out.array(2);
    ctx.out.bulk(&i64_bytes(next as i64));
    match found {
        ScanFound::Borrowed(keys) => {
            ctx.out.array(keys.len());
            for k in keys {
                ctx.out.bulk(k);
            }
        }
        ScanFound::Owned(keys) => {
            ctx.out.array(keys.len());
            for k in keys {
                ctx.out.bulk(&k);
            }
        }
    }
    Ok(())
}

/// The keys one SCAN call returns: borrowed from the database, or copied
/// when it deleted expired keys on the way.
enum ScanFound<'a> {
    Borrowed(Vec<&'a [u8]>),
    Owned(Vec<crate::keyspace::Key>),
}

/// SCAN's TYPE filter.
fn type_matches(v: &Value, typ: Option<&[u8]>) -> bool {
    typ.is_none_or(|t| t.eq_ignore_ascii_case(v.type_name().as_bytes()))
}

/// Whether a key at one of `range`'s positions has expired and is due for
/// deletion by the lookup SCAN makes of it.
fn expired_in(ks: &crate::keyspace::Keyspace, db: usize, range: std::ops::Range<usize>) -> bool {
    let d = &ks.dbs[db];
    !d.expires.is_empty()
        && !ks.applying
        && range.into_iter().any(|i| {
            d.data
                .get_index(i)
                .is_some_and(|(k, _)| ks.is_expired(db, k))
        })
}

/// SCAN over positions `start..end` that deletes the expired keys it
/// meets, as Redis' scanGenericCommand does (those the MATCH pattern lets
/// through): each one is a lazy expiry (a DEL effect, an `expired` event),
/// and with TYPE a keyspace miss (the lookup TYPE makes), a live key a hit.
/// A deletion moves the table's last key into the freed position, so that
/// position is looked at again: the moved key, not yet returned by this
/// scan, is returned now rather than skipped by the cursor. Returns the
/// keys and the end of the range, which shrinks with the table.
fn scan_expiring(
    ks: &mut crate::keyspace::Keyspace,
    db: usize,
    start: usize,
    mut end: usize,
    pat: Option<&[u8]>,
    typ: Option<&[u8]>,
) -> (Vec<crate::keyspace::Key>, usize) {
    let mut found = Vec::new();
    let mut i = start;
    while i < end {
        let Some((k, _)) = ks.dbs[db].data.get_index(i) else {
            break;
        };
        if pat.is_some_and(|p| !crate::glob::glob_match(p, k, false)) {
            i += 1;
            continue;
        }
        if ks.is_expired(db, k) {
            let key = k.clone();
            // CLIENT PAUSE: treated as gone, not deleted.
            if ks.expire_paused {
                i += 1;
            } else {
                ks.delete_expired(db, &key);
                end = end.min(ks.dbs[db].data.len());
            }
            if typ.is_some() {
                ks.count_miss(db, &key);
            }
            continue;
        }
        if typ.is_some() {
            ks.stat_keyspace_hits += 1;
        }
        if let Some((k, o)) = ks.dbs[db].data.get_index(i) {
            if type_matches(&o.value, typ) {
                found.push(k.clone());
            }
        }
        i += 1;
    }
    (found, end)
}

fn randomkey(ctx: &mut Ctx) -> CmdResult {
    use rand::Rng;
    let db = ctx.db();
    let mut rng = rand::thread_rng();
    loop {
        let n = ctx.ks.dbs[db].data.len();
        if n == 0 {
            ctx.out.null();
            return Ok(());
        }
        let i = rng.gen_range(0..n);
        let Some((k, _)) = ctx.ks.dbs[db].data.get_index(i) else {
            continue;
        };
        let k = k.clone();
        if ctx.ks.expire_if_needed(db, &k) {
            continue;
        }
        ctx.out.bulk(&k);
        return Ok(());
    }
}

fn rename_generic(ctx: &mut Ctx, nx: bool) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let (src, dst) = (&args[1][..], &args[2][..]);
    if ctx.ks.get(db, src).is_none() {
        return Err(CmdError::NoSuchKey);
    }
    if src == dst {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return Ok(());
    }
    let expire = ctx.ks.dbs[db].expire_of(src);
    if ctx.ks.exists(db, dst) {
        if nx {
            ctx.out.int(0);
            return Ok(());
        }
        ctx.ks.remove(db, dst);
    }
    // The object moves, access clock and all, as in Redis.
    let lru = ctx.ks.access_clock(db, src);
    let v = ctx.ks.remove(db, src).expect("checked above");
    ctx.ks.set(db, dst, v);
    if let Some(lru) = lru {
        ctx.ks.set_access_clock(db, dst, lru);
    }
    if let Some(at) = expire {
        ctx.ks.set_expire(db, dst, at);
    }
    ctx.ks.modified(db, src);
    ctx.ks.modified(db, dst);
    ctx.ks.notify(db, notify::GENERIC, "rename_from", src);
    ctx.ks.notify(db, notify::GENERIC, "rename_to", dst);
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
    Ok(())
}

fn rename(ctx: &mut Ctx) -> CmdResult {
    rename_generic(ctx, false)
}

fn renamenx(ctx: &mut Ctx) -> CmdResult {
    rename_generic(ctx, true)
}

/// getIntFromObjectOrReply: an integer that fits in an i32.
fn int32_arg(ctx: &Ctx, i: usize, msg: Option<&str>) -> Result<i64, CmdError> {
    let v = parse_i64(ctx.arg(i));
    match (v, msg) {
        (Some(v), _) if (i32::MIN as i64..=i32::MAX as i64).contains(&v) => Ok(v),
        (_, Some(m)) => Err(CmdError::err(m)),
        (None, None) => Err(CmdError::NotInteger),
        (Some(_), None) => Err(CmdError::err(
            "value is out of range, value must between -2147483648 and 2147483647",
        )),
    }
}

/// A DB index argument: an i32 naming an existing database.
fn db_arg(ctx: &Ctx, i: usize) -> Result<usize, CmdError> {
    let id = int32_arg(ctx, i, None)?;
    if id < 0 || id as usize >= ctx.ks.dbs.len() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    Ok(id as usize)
}

fn same_object() -> CmdError {
    CmdError::err("source and destination objects are the same")
}

fn move_(ctx: &mut Ctx) -> CmdResult {
    let src = ctx.db();
    let dst = db_arg(ctx, 2)?;
    if src == dst {
        return Err(same_object());
    }
    let key = &ctx.args[1][..];
    if ctx.ks.get(src, key).is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let expire = ctx.ks.dbs[src].expire_of(key);
    if ctx.ks.exists(dst, key) {
        ctx.out.int(0);
        return Ok(());
    }
    let lru = ctx.ks.access_clock(src, key);
    let v = ctx.ks.remove(src, key).expect("checked above");
    ctx.ks.set(dst, key, v);
    if let Some(lru) = lru {
        ctx.ks.set_access_clock(dst, key, lru);
    }
    if let Some(at) = expire {
        ctx.ks.set_expire(dst, key, at);
    }
    ctx.ks.modified(src, key);
    ctx.ks.modified(dst, key);
    ctx.ks.notify(src, notify::GENERIC, "move_from", key);
    ctx.ks.notify(dst, notify::GENERIC, "move_to", key);
    ctx.out.int(1);
    Ok(())
}

fn copy(ctx: &mut Ctx) -> CmdResult {
    let src = ctx.db();
    let mut dst = src;
    let mut replace = false;
    let mut j = 3;
    while j < ctx.argc() {
        if ctx.arg_is(j, "REPLACE") {
            replace = true;
        } else if ctx.arg_is(j, "DB") && j + 1 < ctx.argc() {
            dst = db_arg(ctx, j + 1)?;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let args = ctx.args;
    let (key, newkey) = (&args[1][..], &args[2][..]);
    if src == dst && key == newkey {
        return Err(same_object());
    }
    let Some(v) = ctx.ks.get(src, key).cloned() else {
        ctx.out.int(0);
        return Ok(());
    };
    let expire = ctx.ks.dbs[src].expire_of(key);
    if ctx.ks.exists(dst, newkey) {
        if !replace {
            ctx.out.int(0);
            return Ok(());
        }
        ctx.ks.remove(dst, newkey);
    }
    ctx.ks.set(dst, newkey, v);
    if let Some(at) = expire {
        ctx.ks.set_expire(dst, newkey, at);
    }
    ctx.ks.modified(dst, newkey);
    ctx.ks.notify(dst, notify::GENERIC, "copy_to", newkey);
    ctx.out.int(1);
    Ok(())
}

fn swapdb(ctx: &mut Ctx) -> CmdResult {
    let a = int32_arg(ctx, 1, Some("invalid first DB index"))?;
    let b = int32_arg(ctx, 2, Some("invalid second DB index"))?;
    let n = ctx.ks.dbs.len() as i64;
    if a < 0 || a >= n || b < 0 || b >= n {
        return Err(CmdError::DbIndexOutOfRange);
    }
    let (a, b) = (a as usize, b as usize);
    if a != b {
        ctx.ks.touch_all_watched_in_db(a, Some(b));
        ctx.ks.touch_all_watched_in_db(b, Some(a));
        ctx.ks.dbs.swap(a, b);
        // Clients blocked on a key that now exists (with a type they can
        // pop from) are woken, as Redis' scanDatabaseForReadyKeys does.
        let ready: Vec<_> = ctx
            .ks
            .blocked_keys
            .keys()
            .filter(|(db, key)| {
                (*db == a || *db == b)
                    && matches!(
                        ctx.ks.dbs[*db].value(&key[..]),
                        Some(Value::List(_) | Value::ZSet(_))
                    )
            })
            .cloned()
            .collect();
        ctx.ks.ready_keys.extend(ready);
    }
    ctx.ks.modified_many(1);
    ctx.out.ok();
    Ok(())
}

// ---------------------------------------------------------------- expiry

const EXPIRE_NX: u8 = 1;
const EXPIRE_XX: u8 = 2;
const EXPIRE_GT: u8 = 4;
const EXPIRE_LT: u8 = 8;

fn parse_expire_flags(ctx: &Ctx) -> Result<u8, CmdError> {
    let mut f = 0;
    for j in 3..ctx.argc() {
        f |= match ctx.arg_upper(j).as_str() {
            "NX" => EXPIRE_NX,
            "XX" => EXPIRE_XX,
            "GT" => EXPIRE_GT,
            "LT" => EXPIRE_LT,
            _ => {
                return Err(CmdError::err(format!(
                    "Unsupported option {}",
                    String::from_utf8_lossy(ctx.arg(j))
                )))
            }
        };
    }
    if f & EXPIRE_NX != 0 && f & (EXPIRE_XX | EXPIRE_GT | EXPIRE_LT) != 0 {
        return Err(CmdError::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if f & EXPIRE_GT != 0 && f & EXPIRE_LT != 0 {
        return Err(CmdError::err(
            "GT and LT options at the same time are not compatible",
        ));
    }
    Ok(f)
}

fn expire_generic(ctx: &mut Ctx, relative: bool, seconds: bool) -> CmdResult {
    let flags = parse_expire_flags(ctx)?;
    let mut when = ctx.int_arg(2)?;
    let bad = || CmdError::InvalidExpire(ctx.name());
    if seconds {
        when = when.checked_mul(1000).ok_or_else(bad)?;
    }
    if relative {
        when = when.checked_add(ctx.ks.now_ms).ok_or_else(bad)?;
    }
    let db = ctx.db();
    let key = &ctx.args[1][..];
    if ctx.ks.get(db, key).is_none() {
        ctx.out.int(0);
        return Ok(());
    }
    let current = ctx.ks.dbs[db].expire_of(key);
    let refused = (flags & EXPIRE_NX != 0 && current.is_some())
        || (flags & EXPIRE_XX != 0 && current.is_none())
        || (flags & EXPIRE_GT != 0 && current.is_none_or(|c| when <= c))
        || (flags & EXPIRE_LT != 0 && current.is_some_and(|c| when >= c));
    if refused {
        ctx.out.int(0);
        return Ok(());
    }
    if when <= ctx.ks.now_ms && !ctx.ks.applying {
        ctx.ks.remove(db, key);
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::GENERIC, "del", key);
        ctx.ks.propagate(db, argv![b"DEL", key]);
    } else {
        ctx.ks.set_expire(db, key, when);
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::GENERIC, "expire", key);
        ctx.ks
            .propagate(db, argv![b"PEXPIREAT", key, i64_bytes(when)]);
    }
    ctx.out.int(1);
    Ok(())
}

fn expire(ctx: &mut Ctx) -> CmdResult {
    expire_generic(ctx, true, true)
}

fn pexpire(ctx: &mut Ctx) -> CmdResult {
    expire_generic(ctx, true, false)
}

fn expireat(ctx: &mut Ctx) -> CmdResult {
    expire_generic(ctx, false, true)
}

fn pexpireat(ctx: &mut Ctx) -> CmdResult {
    expire_generic(ctx, false, false)
}

fn ttl_generic(ctx: &mut Ctx, ms: bool, abs: bool) -> CmdResult {
    let db = ctx.db();
    let key = &ctx.args[1][..];
    if ctx.ks.peek_counted(db, key).is_none() {
        ctx.out.int(-2);
        return Ok(());
    }
    let Some(at) = ctx.ks.dbs[db].expire_of(key) else {
        ctx.out.int(-1);
        return Ok(());
    };
    let t = if abs { at } else { at - ctx.ks.now_ms }.max(0);
    ctx.out.int(if ms { t } else { (t + 500) / 1000 });
    Ok(())
}

fn ttl(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, false, false)
}

fn pttl(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, true, false)
}

fn expiretime(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, false, true)
}

fn pexpiretime(ctx: &mut Ctx) -> CmdResult {
    ttl_generic(ctx, true, true)
}

fn persist(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let key = &ctx.args[1][..];
    if ctx.ks.get(db, key).is_some() && ctx.ks.persist(db, key) {
        ctx.ks.modified(db, key);
        ctx.ks.notify(db, notify::GENERIC, "persist", key);
        ctx.out.int(1);
    } else {
        ctx.out.int(0);
    }
    Ok(())
}

// ---------------------------------------------------------------- OBJECT

/// The encoding Redis 7.0 would report for `v` under `config`.
pub fn object_encoding(v: &Value, config: &Config) -> &'static str {
    match v {
        Value::Str(s) => {
            if s.len() <= 20 && parse_i64(s).is_some() {
                "int"
            } else if s.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        // Redis 7.0 lists are always quicklists (listpack lists came in 7.2).
        Value::List(_) => "quicklist",
        Value::Stream(_) => "stream",
        Value::Hash(h) => {
            let entries = config.get_i64("hash-max-listpack-entries");
            let value = config.get_i64("hash-max-listpack-value");
            if h.len() as i64 <= entries
                && h.iter()
                    .all(|(k, v)| k.len() as i64 <= value && v.len() as i64 <= value)
            {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Set(s) => {
            let entries = config.get_i64("set-max-intset-entries");
            if s.len() as i64 <= entries && s.iter().all(|m| parse_i64(m).is_some()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            let entries = config.get_i64("zset-max-listpack-entries");
            let value = config.get_i64("zset-max-listpack-value");
            if z.len() as i64 <= entries && z.iter().all(|(m, _)| m.len() as i64 <= value) {
                "listpack"
            } else {
                "skiplist"
            }
        }
    }
}

const OBJECT_HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

/// OBJECT's subcommands and their arities.
const OBJECT_SUBS: &[(&str, i32)] = &[
    ("encoding", 3),
    ("freq", 3),
    ("help", 2),
    ("idletime", 3),
    ("refcount", 3),
];

fn object(ctx: &mut Ctx) -> CmdResult {
    let sub = ctx.arg_upper(1);
    let want = match sub.as_str() {
        "HELP" => 2,
        "ENCODING" | "REFCOUNT" | "IDLETIME" | "FREQ" => 3,
        _ => return Err(CmdError::unknown_subcommand("OBJECT", ctx.arg(1))),
    };
    if ctx.argc() != want {
        return Err(CmdError::WrongArity(format!(
            "object|{}",
            sub.to_ascii_lowercase()
        )));
    }
    if sub == "HELP" {
        ctx.out.array(OBJECT_HELP.len());
        for l in OBJECT_HELP {
            ctx.out.simple(l);
        }
        return Ok(());
    }
    // Redis looks the key up before it checks the policy.
    let db = ctx.db();
    if ctx.ks.peek_counted_quietly(db, &ctx.args[2]).is_none() {
        ctx.out.null();
        return Ok(());
    }
    let lfu = ctx.ks.access.lfu;
    if sub == "IDLETIME" && lfu {
        return Err(CmdError::err("An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    if sub == "FREQ" && !lfu {
        return Err(CmdError::err("An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."));
    }
    let (access, now) = (ctx.ks.access, ctx.ks.now_ms);
    // Looked up (and expired) above: read it as stored.
    let Some(o) = ctx.ks.dbs[db].data.get(&ctx.args[2][..]) else {
        return Ok(());
    };
    let (v, lru) = (&o.value, o.lru);
    match sub.as_str() {
        "ENCODING" => {
            let e = object_encoding(v, &ctx.srv.config);
            ctx.out.bulk_str(e);
        }
        "REFCOUNT" => {
            // Small integers are shared objects in Redis.
            let shared =
                matches!(v, Value::Str(s) if parse_i64(s).is_some_and(|n| (0..10000).contains(&n)));
            ctx.out.int(if shared { i32::MAX as i64 } else { 1 });
        }
        "IDLETIME" => ctx.out.int((access.idle_ms(lru, now) / 1000) as i64),
        _ => ctx.out.int(i64::from(access.frequency(lru, now))),
    }
    Ok(())
}

// ---------------------------------------------------------------- DUMP/RESTORE

fn dump(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    match ctx.ks.get_counted(db, &ctx.args[1]) {
        Some(v) => {
            let payload = crate::rdb::dump(v);
            ctx.out.bulk(&payload);
        }
        None => ctx.out.null(),
    }
    Ok(())
}

fn restore(ctx: &mut Ctx) -> CmdResult {
    let mut replace = false;
    let mut absttl = false;
    let mut idle: Option<i64> = None;
    let mut freq: Option<u8> = None;
    let mut j = 4;
    while j < ctx.argc() {
        let more = j + 1 < ctx.argc();
        if ctx.arg_is(j, "REPLACE") {
            replace = true;
        } else if ctx.arg_is(j, "ABSTTL") {
            absttl = true;
        } else if ctx.arg_is(j, "IDLETIME") && more && freq.is_none() {
            let secs = ctx.int_arg(j + 1)?;
            if secs < 0 {
                return Err(CmdError::err("Invalid IDLETIME value, must be >= 0"));
            }
            idle = Some(secs);
            j += 1;
        } else if ctx.arg_is(j, "FREQ") && more && idle.is_none() {
            let f = ctx.int_arg(j + 1)?;
            let Ok(f) = u8::try_from(f) else {
                return Err(CmdError::err("Invalid FREQ value, must be >= 0 and <= 255"));
            };
            freq = Some(f);
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    let db = ctx.db();
    let args = ctx.args;
    let key = &args[1][..];
    if !replace && ctx.ks.exists(db, key) {
        return Err(CmdError::coded(
            "BUSYKEY",
            "Target key name already exists.",
        ));
    }
    let mut ttl = ctx.int_arg(2)?;
    if ttl < 0 {
        return Err(CmdError::err("Invalid TTL value, must be >= 0"));
    }
    let value = crate::rdb::restore(&args[3]).map_err(|e| match e {
        crate::rdb::RestoreError::VersionOrChecksum => {
            CmdError::err("DUMP payload version or checksum are wrong")
        }
        crate::rdb::RestoreError::BadData => CmdError::err("Bad data format"),
    })?;
    let deleted = replace && ctx.ks.remove(db, key).is_some();
    if ttl != 0 && !absttl {
        // As Redis' `ttl += mstime()`: a TTL past i64 wraps negative and
        // the key is taken as already expired.
        ttl = ttl.wrapping_add(ctx.ks.now_ms);
    }
    if ttl != 0 && ttl <= ctx.ks.now_ms && !ctx.ks.applying {
        if deleted {
            ctx.ks.modified(db, key);
            ctx.ks.notify(db, notify::GENERIC, "del", key);
            ctx.ks.propagate(db, argv![b"DEL", key]);
        }
        ctx.out.ok();
        return Ok(());
    }
    ctx.ks.set(db, key, value);
    if let Some(lru) = ctx.ks.access.restored(freq, idle, ctx.ks.now_ms) {
        ctx.ks.set_access_clock(db, key, lru);
    }
    if ttl != 0 {
        ctx.ks.set_expire(db, key, ttl);
        if !absttl {
            let mut eff: Vec<Bytes> = argv![b"RESTORE", key, i64_bytes(ttl), args[3]];
            if replace {
                eff.push(Bytes::from_static(b"REPLACE"));
            }
            eff.push(Bytes::from_static(b"ABSTTL"));
            ctx.ks.propagate(db, eff);
        }
    }
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::GENERIC, "restore", key);
    ctx.out.ok();
    Ok(())
}
