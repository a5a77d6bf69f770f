//! Bit operations on strings: SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP,
//! BITFIELD, BITFIELD_RO (Redis 7.0 bitops.c semantics).

use super::flags::*;
use super::CommandSpec;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{notify, Value};
use crate::numbers::parse_i64;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("setbit", 4, WRITE | DENYOOM, (1, 1, 1), "bitmap", setbit),
    CommandSpec::new("getbit", 3, READONLY | FAST, (1, 1, 1), "bitmap", getbit),
    CommandSpec::new("bitcount", -2, READONLY, (1, 1, 1), "bitmap", bitcount),
    CommandSpec::new("bitpos", -3, READONLY, (1, 1, 1), "bitmap", bitpos),
    CommandSpec::new("bitop", -4, WRITE | DENYOOM, (2, -1, 1), "bitmap", bitop),
    CommandSpec::new(
        "bitfield",
        -2,
        WRITE | DENYOOM,
        (1, 1, 1),
        "bitmap",
        bitfield,
    ),
    CommandSpec::new(
        "bitfield_ro",
        -2,
        READONLY | FAST,
        (1, 1, 1),
        "bitmap",
        bitfield_ro,
    ),
];

const BIT_OFFSET_ERR: &str = "bit offset is not an integer or out of range";

/// Redis' getBitOffsetFromArgument: a bit offset, `#n` (times `bits`) when
/// `hash` allows it, below proto-max-bulk-len bytes.
fn bit_offset(ctx: &Ctx, i: usize, hash: bool, bits: u64) -> Result<u64, CmdError> {
    let p = ctx.arg(i);
    let usehash = hash && bits > 0 && p.first() == Some(&b'#');
    let n = parse_i64(if usehash { &p[1..] } else { p })
        .ok_or_else(|| CmdError::err(BIT_OFFSET_ERR))?;
    let n = if usehash {
        n.wrapping_mul(bits as i64)
    } else {
        n
    };
    let max = ctx.srv.config.get_i64("proto-max-bulk-len");
    if n < 0 || (!ctx.ks.applying && (n >> 3) >= max) {
        return Err(CmdError::err(BIT_OFFSET_ERR));
    }
    Ok(n as u64)
}

/// Redis' lookupStringForBitCommand: the string at argv[1], created or
/// zero-grown to hold bit `maxbit`. Returns whether it was created or grown.
fn string_for_bits(ctx: &mut Ctx, maxbit: u64) -> Result<bool, CmdError> {
    let db = ctx.db();
    let key = &ctx.args[1];
    let need = (maxbit >> 3) as usize + 1;
    match ctx.ks.get_mut(db, key) {
        None => {
            ctx.ks.set(db, key, Value::Str(vec![0u8; need].into()));
            Ok(true)
        }
        Some(Value::Str(s)) => {
            if s.len() < need {
                let mut v = std::mem::take(s).into_vec();
                v.resize(need, 0);
                *s = v.into_boxed_slice();
                Ok(true)
            } else {
                Ok(false)
            }
        }
        Some(_) => Err(CmdError::WrongType),
    }
}

fn str_mut<'a>(ctx: &'a mut Ctx) -> &'a mut [u8] {
    let db = ctx.db();
    match ctx.ks.dbs[db].value_mut(&ctx.args[1][..]) {
        Some(Value::Str(s)) => s,
        _ => &mut [],
    }
}

fn setbit(ctx: &mut Ctx) -> CmdResult {
    const ERR: &str = "bit is not an integer or out of range";
    let off = bit_offset(ctx, 2, false, 0)?;
    let on = ctx.int_arg(3).map_err(|_| CmdError::err(ERR))?;
    if on & !1 != 0 {
        return Err(CmdError::err(ERR));
    }
    let dirty = string_for_bits(ctx, off)?;
    let s = str_mut(ctx);
    let byte = (off >> 3) as usize;
    let bit = 7 - (off & 7);
    let old = (s[byte] >> bit) & 1;
    if dirty || old as i64 != on {
        s[byte] = (s[byte] & !(1 << bit)) | ((on as u8) << bit);
        let db = ctx.db();
        ctx.ks.modified(db, &ctx.args[1]);
        ctx.ks.notify(db, notify::STRING, "setbit", &ctx.args[1]);
    }
    ctx.out.int(old as i64);
    Ok(())
}

fn getbit(ctx: &mut Ctx) -> CmdResult {
    let off = bit_offset(ctx, 2, false, 0)?;
    let db = ctx.db();
    let s = ctx
        .ks
        .get_str_read(db, &ctx.args[1])?
        .map_or(&[][..], |s| s);
    let byte = (off >> 3) as usize;
    let v = s.get(byte).map_or(0, |b| (b >> (7 - (off & 7))) & 1);
    ctx.out.int(v as i64);
    Ok(())
}

/// Parses BITCOUNT/BITPOS's BYTE|BIT unit argument.
fn unit_is_bit(a: &[u8]) -> Result<bool, CmdError> {
    if a.eq_ignore_ascii_case(b"BIT") {
        Ok(true)
    } else if a.eq_ignore_ascii_case(b"BYTE") {
        Ok(false)
    } else {
        Err(CmdError::Syntax)
    }
}

fn int(a: &[u8]) -> Result<i64, CmdError> {
    parse_i64(a).ok_or(CmdError::NotInteger)
}

fn popcount(s: &[u8]) -> i64 {
    s.iter().map(|b| b.count_ones() as i64).sum()
}

/// Redis' start/end normalisation for BITCOUNT and BITPOS: negative
/// indexes count from the end of `len` bytes (bits with BIT), the range is
/// clamped, and a BIT range becomes a byte range plus the masks of the bits
/// outside it in its first and last byte. Returns (start, end, first, last).
fn byte_range(mut st: i64, mut en: i64, len: i64, isbit: bool) -> (i64, i64, u8, u8) {
    let totlen = if isbit { len << 3 } else { len };
    if st < 0 {
        st += totlen;
    }
    if en < 0 {
        en += totlen;
    }
    st = st.max(0);
    en = en.max(0);
    if en >= totlen {
        en = totlen - 1;
    }
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    if isbit && st <= en {
        first_mask = (!((1u32 << (8 - (st & 7))) - 1) & 0xff) as u8;
        last_mask = ((1u32 << (7 - (en & 7))) - 1) as u8;
        st >>= 3;
        en >>= 3;
    }
    (st, en, first_mask, last_mask)
}

fn bitcount(ctx: &mut Ctx) -> CmdResult {
    let db = ctx.db();
    let args = ctx.args;
    let Some(s) = ctx.ks.get_str_read(db, &args[1])? else {
        ctx.out.int(0);
        return Ok(());
    };
    let strlen = s.len() as i64;
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    let (start, end);
    match args.len() {
        4 | 5 => {
            let st = int(&args[2])?;
            let en = int(&args[3])?;
            if st < 0 && en < 0 && st > en {
                ctx.out.int(0);
                return Ok(());
            }
            let isbit = args.len() == 5 && unit_is_bit(&args[4])?;
            (start, end, first_mask, last_mask) = byte_range(st, en, strlen, isbit);
        }
        2 => {
            start = 0;
            end = strlen - 1;
        }
        _ => return Err(CmdError::Syntax),
    }
    if start > end {
        ctx.out.int(0);
        return Ok(());
    }
    let (st, en) = (start as usize, end as usize);
    let mut count = popcount(&s[st..=en]);
    if first_mask != 0 {
        count -= (s[st] & first_mask).count_ones() as i64;
    }
    if last_mask != 0 {
        count -= (s[en] & last_mask).count_ones() as i64;
    }
    ctx.out.int(count);
    Ok(())
}

/// Redis' redisBitpos: the first `bit` in `s`; for 0 bits not found, the
/// length in bits (the string is considered zero-padded), for 1 bits -1.
fn bitpos_in(s: &[u8], bit: bool) -> i64 {
    let skip = if bit { 0u8 } else { 0xff };
    match s.iter().position(|&b| b != skip) {
        Some(i) => {
            let b = s[i];
            let off = if bit {
                b.leading_zeros()
            } else {
                b.leading_ones()
            };
            i as i64 * 8 + off as i64
        }
        None if bit => -1,
        None => s.len() as i64 * 8,
    }
}

fn bitpos(ctx: &mut Ctx) -> CmdResult {
    let bit = ctx.int_arg(2)?;
    if bit != 0 && bit != 1 {
        return Err(CmdError::err("The bit argument must be 1 or 0."));
    }
    let db = ctx.db();
    let args = ctx.args;
    let Some(p) = ctx.ks.get_str_read(db, &args[1])? else {
        ctx.out.int(if bit == 1 { -1 } else { 0 });
        return Ok(());
    };
    let strlen = p.len() as i64;
    let (mut first_mask, mut last_mask) = (0u8, 0u8);
    let mut end_given = false;
    let (mut start, end);
    match args.len() {
        4..=6 => {
            let st = int(&args[3])?;
            let isbit = args.len() == 6 && unit_is_bit(&args[5])?;
            let en = if args.len() >= 5 {
                end_given = true;
                int(&args[4])?
            } else if isbit {
                (strlen << 3) + 7
            } else {
                strlen - 1
            };
            (start, end, first_mask, last_mask) = byte_range(st, en, strlen, isbit);
        }
        3 => {
            start = 0;
            end = strlen - 1;
        }
        _ => return Err(CmdError::Syntax),
    }
    if start > end {
        ctx.out.int(-1);
        return Ok(());
    }
    let bitb = bit == 1;
    let mut bytes = end - start + 1;
    let mut pos;
    'result: {
        if first_mask != 0 {
            let mut tmp = if bitb {
                p[start as usize] & !first_mask
            } else {
                p[start as usize] | first_mask
            };
            if last_mask != 0 && bytes == 1 {
                tmp = if bitb {
                    tmp & !last_mask
                } else {
                    tmp | last_mask
                };
            }
            pos = bitpos_in(&[tmp], bitb);
            if bytes == 1 || (pos != -1 && pos != 8) {
                break 'result;
            }
            start += 1;
            bytes -= 1;
        }
        let curbytes = bytes - if last_mask != 0 { 1 } else { 0 };
        if curbytes > 0 {
            let s = start as usize;
            pos = bitpos_in(&p[s..s + curbytes as usize], bitb);
            if bytes == curbytes || (pos != -1 && pos != curbytes << 3) {
                break 'result;
            }
            start += curbytes;
            bytes -= curbytes;
        }
        let tmp = if bitb {
            p[end as usize] & !last_mask
        } else {
            p[end as usize] | last_mask
        };
        pos = bitpos_in(&[tmp], bitb);
    }
    if end_given && !bitb && pos == bytes << 3 {
        ctx.out.int(-1);
        return Ok(());
    }
    if pos != -1 {
        pos += start << 3;
    }
    ctx.out.int(pos);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BitOp {
    And,
    Or,
    Xor,
    Not,
}

fn bitop(ctx: &mut Ctx) -> CmdResult {
    let op = match ctx.arg_upper(1).as_str() {
        "AND" => BitOp::And,
        "OR" => BitOp::Or,
        "XOR" => BitOp::Xor,
        "NOT" => BitOp::Not,
        _ => return Err(CmdError::Syntax),
    };
    if op == BitOp::Not && ctx.argc() != 4 {
        return Err(CmdError::err(
            "BITOP NOT must be called with a single source key.",
        ));
    }
    let db = ctx.db();
    let args = ctx.args;
    let mut srcs: Vec<Option<Box<[u8]>>> = Vec::with_capacity(args.len() - 3);
    for k in &args[3..] {
        srcs.push(ctx.ks.get_str_read(db, k)?.cloned());
    }
    let maxlen = srcs
        .iter()
        .map(|s| s.as_ref().map_or(0, |s| s.len()))
        .max()
        .unwrap_or(0);
    let dest = &args[2];
    if maxlen == 0 {
        if ctx.ks.remove(db, dest).is_some() {
            ctx.ks.modified(db, dest);
            ctx.ks.notify(db, notify::GENERIC, "del", dest);
        }
        ctx.out.int(0);
        return Ok(());
    }
    let byte_at = |s: &Option<Box<[u8]>>, j: usize| s.as_ref().and_then(|s| s.get(j)).copied();
    let mut res = vec![0u8; maxlen];
    for (j, r) in res.iter_mut().enumerate() {
        let mut out = byte_at(&srcs[0], j).unwrap_or(0);
        if op == BitOp::Not {
            out = !out;
        }
        for s in &srcs[1..] {
            let b = byte_at(s, j).unwrap_or(0);
            match op {
                BitOp::And => out &= b,
                BitOp::Or => out |= b,
                BitOp::Xor => out ^= b,
                BitOp::Not => {}
            }
        }
        *r = out;
    }
    ctx.ks.set(db, dest, Value::Str(res.into_boxed_slice()));
    ctx.ks.modified(db, dest);
    ctx.ks.notify(db, notify::STRING, "set", dest);
    ctx.out.int(maxlen as i64);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldOp {
    Get,
    Set,
    IncrBy,
}

struct BitfieldOp {
    offset: u64,
    i64: i64,
    op: FieldOp,
    ow: Overflow,
    bits: u64,
    sign: bool,
}

fn bitfield_type(ctx: &Ctx, i: usize) -> Result<(bool, u64), CmdError> {
    const ERR: &str = "Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";
    let p = ctx.arg(i);
    let sign = match p.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return Err(CmdError::err(ERR)),
    };
    // Redis reads the width with strlen(): it stops at a NUL byte.
    let rest = &p[1..];
    let rest = &rest[..rest.iter().position(|&c| c == 0).unwrap_or(rest.len())];
    match parse_i64(rest) {
        Some(n) if n >= 1 && ((sign && n <= 64) || (!sign && n <= 63)) => Ok((sign, n as u64)),
        _ => Err(CmdError::err(ERR)),
    }
}

fn get_unsigned(p: &[u8], mut offset: u64, bits: u64) -> u64 {
    let mut v = 0u64;
    for _ in 0..bits {
        let byte = p.get((offset >> 3) as usize).copied().unwrap_or(0) as u64;
        let bit = 7 - (offset & 7);
        v = (v << 1) | ((byte >> bit) & 1);
        offset += 1;
    }
    v
}

fn get_signed(p: &[u8], offset: u64, bits: u64) -> i64 {
    let mut v = get_unsigned(p, offset, bits) as i64;
    if bits < 64 && v & (1i64 << (bits - 1)) != 0 {
        v |= -1i64 << bits;
    }
    v
}

fn set_unsigned(p: &mut [u8], mut offset: u64, bits: u64, value: u64) {
    for j in 0..bits {
        let bitval = ((value >> (bits - 1 - j)) & 1) as u8;
        let byte = (offset >> 3) as usize;
        let bit = 7 - (offset & 7);
        p[byte] = (p[byte] & !(1 << bit)) | (bitval << bit);
        offset += 1;
    }
}

/// Redis' checkUnsignedBitfieldOverflow: (overflowed, limit value).
fn unsigned_overflow(value: u64, incr: i64, bits: u64, ow: Overflow) -> (bool, u64) {
    let max = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || {
        let mask = if bits >= 64 { 0 } else { u64::MAX << bits };
        value.wrapping_add(incr as u64) & !mask
    };
    if value > max || (incr > 0 && incr > maxincr) {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, max),
            Overflow::Fail => (true, 0),
        }
    } else if incr < 0 && incr < minincr {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, 0),
            Overflow::Fail => (true, 0),
        }
    } else {
        (false, 0)
    }
}

/// Redis' checkSignedBitfieldOverflow: (overflowed, limit value).
fn signed_overflow(value: i64, incr: i64, bits: u64, ow: Overflow) -> (bool, i64) {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let msb = 1u64 << (bits - 1);
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & msb != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, max),
            Overflow::Fail => (true, 0),
        }
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        match ow {
            Overflow::Wrap => (true, wrap()),
            Overflow::Sat => (true, min),
            Overflow::Fail => (true, 0),
        }
    } else {
        (false, 0)
    }
}

fn bitfield_generic(ctx: &mut Ctx, ro: bool) -> CmdResult {
    let mut ops: Vec<BitfieldOp> = Vec::new();
    let mut ow = Overflow::Wrap;
    let mut readonly = true;
    let mut highest: u64 = 0;
    let argc = ctx.argc();
    let mut j = 2;
    while j < argc {
        let remargs = argc - j - 1;
        let op = if ctx.arg_is(j, "GET") && remargs >= 2 {
            FieldOp::Get
        } else if ctx.arg_is(j, "SET") && remargs >= 3 {
            FieldOp::Set
        } else if ctx.arg_is(j, "INCRBY") && remargs >= 3 {
            FieldOp::IncrBy
        } else if ctx.arg_is(j, "OVERFLOW") && remargs >= 1 {
            ow = if ctx.arg_is(j + 1, "WRAP") {
                Overflow::Wrap
            } else if ctx.arg_is(j + 1, "SAT") {
                Overflow::Sat
            } else if ctx.arg_is(j + 1, "FAIL") {
                Overflow::Fail
            } else {
                return Err(CmdError::err("Invalid OVERFLOW type specified"));
            };
            j += 2;
            continue;
        } else {
            return Err(CmdError::Syntax);
        };
        let (sign, bits) = bitfield_type(ctx, j + 1)?;
        let offset = bit_offset(ctx, j + 2, true, bits)?;
        let mut v = 0;
        if op != FieldOp::Get {
            readonly = false;
            highest = highest.max(offset + bits - 1);
            v = ctx.int_arg(j + 3)?;
        }
        ops.push(BitfieldOp {
            offset,
            i64: v,
            op,
            ow,
            bits,
            sign,
        });
        j += if op == FieldOp::Get { 3 } else { 4 };
    }
    let db = ctx.db();
    let mut dirty = false;
    if readonly {
        ctx.ks.get_str_read(db, &ctx.args[1])?;
    } else {
        if ro {
            return Err(CmdError::err(
                "BITFIELD_RO only supports the GET subcommand",
            ));
        }
        dirty = string_for_bits(ctx, highest)?;
    }
    // Read-only runs never write through `s`.
    let mut empty: [u8; 0] = [];
    let s: &mut [u8] = match ctx.ks.dbs[db].value_mut(&ctx.args[1][..]) {
        Some(Value::Str(s)) => s,
        _ => &mut empty,
    };
    let mut changes = 0;
    ctx.out.array(ops.len());
    for op in &ops {
        match op.op {
            FieldOp::Get => {
                if op.sign {
                    ctx.out.int(get_signed(s, op.offset, op.bits));
                } else {
                    ctx.out.int(get_unsigned(s, op.offset, op.bits) as i64);
                }
            }
            FieldOp::Set | FieldOp::IncrBy if op.sign => {
                let old = get_signed(s, op.offset, op.bits);
                let (overflow, new, ret);
                if op.op == FieldOp::IncrBy {
                    let (o, w) = signed_overflow(old, op.i64, op.bits, op.ow);
                    overflow = o;
                    new = if o { w } else { old.wrapping_add(op.i64) };
                    ret = new;
                } else {
                    let (o, w) = signed_overflow(op.i64, 0, op.bits, op.ow);
                    overflow = o;
                    new = if o { w } else { op.i64 };
                    ret = old;
                }
                if overflow && op.ow == Overflow::Fail {
                    ctx.out.null();
                } else {
                    ctx.out.int(ret);
                    set_unsigned(s, op.offset, op.bits, new as u64);
                    if dirty || old != new {
                        changes += 1;
                    }
                }
            }
            FieldOp::Set | FieldOp::IncrBy => {
                let old = get_unsigned(s, op.offset, op.bits);
                let (overflow, new, ret);
                if op.op == FieldOp::IncrBy {
                    let (o, w) = unsigned_overflow(old, op.i64, op.bits, op.ow);
                    overflow = o;
                    new = if o {
                        w
                    } else {
                        old.wrapping_add(op.i64 as u64)
                    };
                    ret = new;
                } else {
                    let (o, w) = unsigned_overflow(op.i64 as u64, 0, op.bits, op.ow);
                    overflow = o;
                    new = if o { w } else { op.i64 as u64 };
                    ret = old;
                }
                if overflow && op.ow == Overflow::Fail {
                    ctx.out.null();
                } else {
                    ctx.out.int(ret as i64);
                    set_unsigned(s, op.offset, op.bits, new);
                    if dirty || old != new {
                        changes += 1;
                    }
                }
            }
        }
    }
    if dirty || changes > 0 {
        let key = &ctx.args[1];
        // A created or grown key changes the data set even when every
        // write failed: record it so the effect recreates it.
        ctx.ks.modified(db, key);
        if changes > 0 {
            ctx.ks.notify(db, notify::STRING, "setbit", key);
        }
    }
    Ok(())
}

fn bitfield(ctx: &mut Ctx) -> CmdResult {
    bitfield_generic(ctx, false)
}

fn bitfield_ro(ctx: &mut Ctx) -> CmdResult {
    bitfield_generic(ctx, true)
}
