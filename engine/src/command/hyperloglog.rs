//! HyperLogLog commands: PFADD, PFCOUNT, PFMERGE, PFDEBUG, PFSELFTEST, with
//! Redis 7.0's replies and errors, over the sketches of
//! [`crate::hyperloglog`] (plain strings in Redis' byte format).
//!
//! Effects: each command's own arguments replay to the same bytes, because
//! the sketch format is deterministic, with one exception: when a sparse
//! sketch goes dense depends on `hll-sparse-max-bytes`. Replay always uses
//! the default, so a server configured otherwise logs the resulting string
//! (`SET key value KEEPTTL`) instead. PFCOUNT caches the cardinality in the
//! string, as Redis does; that change is logged (as the PFCOUNT itself) so
//! a recovered or replica data set holds the same bytes.

use super::flags::*;
use super::CommandSpec;
use crate::argv;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::hyperloglog::{self as hll, HllError, REGISTERS};
use crate::keyspace::{notify, Value};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "pfadd",
        -2,
        WRITE | DENYOOM | FAST,
        (1, 1, 1),
        "hyperloglog",
        pfadd,
    ),
    CommandSpec::new("pfcount", -2, READONLY, (1, -1, 1), "hyperloglog", pfcount),
    CommandSpec::new(
        "pfmerge",
        -2,
        WRITE | DENYOOM,
        (1, -1, 1),
        "hyperloglog",
        pfmerge,
    ),
    CommandSpec::new(
        "pfdebug",
        3,
        WRITE | DENYOOM | ADMIN,
        (2, 2, 1),
        "hyperloglog",
        pfdebug,
    ),
    CommandSpec::new("pfselftest", 1, ADMIN, (0, 0, 0), "hyperloglog", pfselftest),
];

impl From<HllError> for CmdError {
    fn from(e: HllError) -> Self {
        CmdError::Other(e.to_string())
    }
}

/// The sparse size limit to apply: the configured one, but always the
/// default when replaying the log (see the module doc).
fn sparse_max_bytes(ctx: &Ctx) -> usize {
    if ctx.ks.applying {
        return hll::DEFAULT_SPARSE_MAX_BYTES;
    }
    usize::try_from(ctx.srv.config.get_i64("hll-sparse-max-bytes")).unwrap_or(0)
}

/// The sketch at `key` for a write: None when the key is missing. The
/// caller puts the bytes back with [`store`].
fn take_sketch(ctx: &mut Ctx, key: &[u8]) -> Result<Option<Vec<u8>>, CmdError> {
    let db = ctx.db();
    match ctx.ks.get_mut(db, key) {
        None => Ok(None),
        Some(Value::Str(s)) => {
            hll::check(s)?;
            Ok(Some(std::mem::take(s).into_vec()))
        }
        Some(_) => Err(CmdError::WrongType),
    }
}

/// Puts a sketch back (or creates the key), keeping any TTL.
fn store(ctx: &mut Ctx, key: &[u8], sketch: Vec<u8>) {
    let db = ctx.db();
    match ctx.ks.get_mut(db, key) {
        Some(Value::Str(s)) => *s = sketch.into_boxed_slice(),
        _ => {
            ctx.ks.set(db, key, Value::Str(sketch.into_boxed_slice()));
        }
    }
}

/// Records a PFADD or PFMERGE change to `key`, and its effect when replay
/// could not reproduce it (see the module doc).
fn changed(ctx: &mut Ctx, key: &[u8]) {
    let db = ctx.db();
    ctx.ks.modified(db, key);
    ctx.ks.notify(db, notify::STRING, "pfadd", key);
    if !ctx.ks.applying && sparse_max_bytes(ctx) != hll::DEFAULT_SPARSE_MAX_BYTES {
        if let Some(Value::Str(s)) = ctx.ks.dbs[db].value(key) {
            let eff = argv![b"SET", key, s, b"KEEPTTL"];
            ctx.ks.propagate(db, eff);
        }
    }
}

fn pfadd(ctx: &mut Ctx) -> CmdResult {
    let key = &ctx.args[1];
    let max = sparse_max_bytes(ctx);
    let (mut sketch, mut updated) = match take_sketch(ctx, key)? {
        Some(s) => (s, false),
        None => (hll::new_sparse(), true),
    };
    // Only a sparse sketch can turn out corrupted half way.
    let original = (!updated && hll::is_sparse(&sketch)).then(|| sketch.clone());
    for ele in &ctx.args[2..] {
        match hll::add(&mut sketch, ele, max) {
            Ok(changed) => updated |= changed,
            Err(e) => {
                // Nothing of a failed PFADD is kept, so memory matches the log.
                if let Some(orig) = original {
                    store(ctx, key, orig);
                }
                return Err(e.into());
            }
        }
    }
    if updated {
        hll::invalidate_count(&mut sketch);
    }
    store(ctx, key, sketch);
    if updated {
        changed(ctx, key);
    }
    ctx.out.int(updated as i64);
    Ok(())
}

fn pfcount(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    if ctx.args.len() > 2 {
        let mut max = [0u8; REGISTERS];
        for key in &ctx.args[1..] {
            match ctx.ks.get_counted(db, key) {
                None => continue,
                Some(Value::Str(s)) => {
                    hll::check(s)?;
                    hll::merge_into(&mut max, s)?;
                }
                Some(_) => return Err(CmdError::WrongType),
            }
        }
        ctx.out.int(hll::count_registers(&max) as i64);
        return Ok(());
    }
    let key = &ctx.args[1];
    let card = match ctx.ks.get_counted(db, key) {
        None => 0,
        Some(Value::Str(s)) => {
            hll::check(s)?;
            match hll::cached_count(s) {
                Some(card) => card,
                None => {
                    let card = hll::count(s)?;
                    if let Some(Value::Str(s)) = ctx.ks.dbs[db].value_mut(&key[..]) {
                        hll::store_count(s, card);
                    }
                    ctx.ks.modified(db, key);
                    card
                }
            }
        }
        Some(_) => return Err(CmdError::WrongType),
    };
    ctx.out.int(card as i64);
    Ok(())
}

fn pfmerge(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let mut max = [0u8; REGISTERS];
    let mut use_dense = false;
    for key in &ctx.args[1..] {
        match ctx.ks.get_counted(db, key) {
            None => continue,
            Some(Value::Str(s)) => {
                hll::check(s)?;
                use_dense |= !hll::is_sparse(s);
                hll::merge_into(&mut max, s)?;
            }
            Some(_) => return Err(CmdError::WrongType),
        }
    }
    let key = &ctx.args[1];
    let limit = sparse_max_bytes(ctx);
    // Redis looks the destination up again to write it.
    ctx.ks.access_again();
    let mut sketch = take_sketch(ctx, key)?.unwrap_or_else(hll::new_sparse);
    if use_dense {
        // Merged sketches passed the same checks, so only a corrupted
        // destination can fail here; it is put back unchanged.
        let before = sketch.clone();
        if let Err(e) = hll::to_dense(&mut sketch) {
            store(ctx, key, before);
            return Err(e.into());
        }
    }
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            // As in Redis, a register that cannot be set is skipped.
            let _ = hll::raise(&mut sketch, i, m, limit);
        }
    }
    hll::invalidate_count(&mut sketch);
    store(ctx, key, sketch);
    changed(ctx, key);
    ctx.out.ok();
    Ok(())
}

fn pfdebug(ctx: &mut Ctx) -> CmdResult {
    let sub = ctx.arg_upper(1);
    let key = &ctx.args[2];
    let Some(mut sketch) = take_sketch(ctx, key)? else {
        return Err(CmdError::err("The specified key does not exist"));
    };
    let result = pfdebug_on(ctx, &sub, &mut sketch);
    let converted = matches!(result, Ok(true));
    store(ctx, key, sketch);
    if converted {
        // Redis logs the encoding change without signalling the key.
        ctx.ks.modified_many(1);
    }
    result.map(|_| ())
}

/// Runs a PFDEBUG subcommand on a sketch; Ok(true) when it went dense.
fn pfdebug_on(ctx: &mut Ctx, sub: &str, sketch: &mut Vec<u8>) -> Result<bool, CmdError> {
    match sub {
        "GETREG" => {
            let converted = hll::to_dense(sketch)?;
            let regs = &sketch[hll::HEADER_LEN..];
            ctx.out.array(REGISTERS);
            for i in 0..REGISTERS {
                ctx.out.int(hll::dense_get(regs, i) as i64);
            }
            Ok(converted)
        }
        "DECODE" => {
            if !hll::is_sparse(sketch) {
                return Err(CmdError::err("HLL encoding is not sparse"));
            }
            ctx.out.bulk(hll::decode_sparse(sketch).as_bytes());
            Ok(false)
        }
        "ENCODING" => {
            ctx.out.simple(if hll::is_sparse(sketch) {
                "sparse"
            } else {
                "dense"
            });
            Ok(false)
        }
        "TODENSE" => {
            let converted = hll::to_dense(sketch)?;
            ctx.out.int(converted as i64);
            Ok(converted)
        }
        _ => Err(CmdError::err(format!(
            "Unknown PFDEBUG subcommand '{}'",
            String::from_utf8_lossy(ctx.arg(1))
        ))),
    }
}

fn pfselftest(ctx: &mut Ctx) -> CmdResult {
    let limit = sparse_max_bytes(ctx);
    hll::self_test(&mut rand::thread_rng(), limit).map_err(CmdError::err)?;
    ctx.out.ok();
    Ok(())
}
