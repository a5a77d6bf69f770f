//! The `cmsgpack` library Redis 7.0 gives scripts (lua-cmsgpack 0.4.0,
//! Redis' `deps/lua/src/lua_cmsgpack.c`), written in Rust for memlog's
//! Lua state.
//!
//! Encoding follows the C version byte for byte: integral numbers as the
//! smallest integer type, other numbers as float32 when that loses
//! nothing and float64 otherwise, every string as fixstr/str8/16/32,
//! tables as arrays when their keys are exactly 1..n and as maps (in
//! `lua_next` order) otherwise, tables nested 16 deep as nil. Decoding
//! keeps its quirks too (uint64 wraps to a negative integer, bin/ext
//! types are "Bad data format"), its error messages, and the point where
//! the C version runs out of Lua stack.

use mlua::{Lua, MultiValue, Table, Value};

use crate::script_lib::{
    as_number, c_i32, c_i64, check_integer, check_string, Held, LibCtx, LibResult, LUAI_MAXCSTACK,
    RAW_ERROR,
};

/// `LUACMSGPACK_MAX_NESTING`.
const MAX_NESTING: usize = 16;

/// Builds the `cmsgpack` table.
pub fn cmsgpack_library(lua: &Lua, ctx: &LibCtx) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", ctx.function(lua, |lua, args| pack(lua, &args))?)?;
    t.raw_set(
        "unpack",
        ctx.function(lua, |lua, args| {
            let used = args.len();
            unpack_full(lua, &args, 0, 0, "unpack", used)
        })?,
    )?;
    t.raw_set(
        "unpack_one",
        ctx.function(lua, |lua, args| {
            let offset = if matches!(args.get(1), None | Some(Value::Nil)) {
                0
            } else {
                match check_integer(&args, 1, "unpack_one") {
                    Ok(o) => o,
                    Err(e) => return Ok(Err(e)),
                }
            };
            unpack_full(lua, &args, 1, offset, "unpack_one", 1)
        })?,
    )?;
    t.raw_set(
        "unpack_limit",
        ctx.function(lua, |lua, args| {
            let limit = match check_integer(&args, 1, "unpack_limit") {
                Ok(l) => l,
                Err(e) => return Ok(Err(e)),
            };
            let offset = if matches!(args.get(2), None | Some(Value::Nil)) {
                0
            } else {
                match check_integer(&args, 2, "unpack_limit") {
                    Ok(o) => o,
                    Err(e) => return Ok(Err(e)),
                }
            };
            unpack_full(lua, &args, limit, offset, "unpack_limit", 1)
        })?,
    )?;
    t.raw_set("_NAME", "cmsgpack")?;
    t.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    t.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    t.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    Ok(t)
}

// ---------------------------------------------------------------- encoding

fn pack(lua: &Lua, args: &MultiValue) -> mlua::Result<LibResult> {
    if args.is_empty() {
        return Ok(Err(
            "bad argument #0 to 'pack' (MessagePack pack needs input.)".into(),
        ));
    }
    let mut out = Vec::new();
    for v in args.iter() {
        encode_value(v, 0, &mut out)?;
    }
    Ok(Ok(MultiValue::from_iter([Value::String(
        lua.create_string(&out)?,
    )])))
}

fn encode_bytes(s: &[u8], out: &mut Vec<u8>) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

fn encode_double(d: f64, out: &mut Vec<u8>) {
    let f = d as f32;
    if d == f as f64 {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&d.to_be_bytes());
    }
}

fn encode_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_header(n: usize, fix: u8, b16: u8, b32: u8, out: &mut Vec<u8>) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 65535 {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

/// `mp_encode_lua_number`: integral values (as `(int64_t)n == n` on
/// x86-64 decides) as integers, the rest as floats.
fn encode_number(n: f64, out: &mut Vec<u8>) {
    let i = c_i64(n);
    if !n.is_infinite() && i as f64 == n {
        encode_int(i, out);
    } else {
        encode_double(n, out);
    }
}

/// `table_is_an_array`: keys exactly 1..n (an empty table included);
/// also the number of keys. Keys are only looked at, never kept: mlua
/// holds a reference for each string or table it hands out, and it has
/// room for only so many.
fn table_is_an_array(t: &Table) -> mlua::Result<(bool, usize)> {
    let mut count: i32 = 0;
    let mut max: i32 = 0;
    let mut keys: usize = 0;
    let mut array = true;
    t.for_each::<Value, Value>(|k, _| {
        keys += 1;
        if array {
            match as_number(&k) {
                Some(n) if n > 0.0 && !n.is_infinite() && c_i32(n) as f64 == n => {
                    if n > max as f64 {
                        max = n as i32;
                    }
                    count = count.wrapping_add(1);
                }
                _ => array = false,
            }
        }
        Ok(())
    })?;
    Ok((array && max == count, keys))
}

fn encode_value(v: &Value, level: usize, out: &mut Vec<u8>) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(&s.as_bytes(), out),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_number(*i as f64, out),
        Value::Number(n) => encode_number(*n, out),
        Value::Table(t) if level < MAX_NESTING => {
            let (array, keys) = table_is_an_array(t)?;
            if array {
                let len = t.raw_len();
                encode_header(len, 0x90, 0xdc, 0xdd, out);
                for j in 1..=len {
                    let item: Value = t.raw_get(j as i64)?;
                    encode_value(&item, level + 1, out)?;
                }
            } else {
                encode_header(keys, 0x80, 0xde, 0xdf, out);
                for pair in t.pairs::<Value, Value>() {
                    let (k, v) = pair?;
                    encode_value(&k, level + 1, out)?;
                    encode_value(&v, level + 1, out)?;
                }
            }
        }
        _ => out.push(0xc0),
    }
    Ok(())
}

// ---------------------------------------------------------------- decoding

/// Why decoding stopped.
enum Fail {
    /// `MP_CUR_ERROR_EOF`.
    Eof,
    /// `MP_CUR_ERROR_BADFMT`.
    BadFmt,
    /// A `luaL_error` (the C version's stack checks).
    Raise(String),
    Lua(mlua::Error),
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Self {
        Fail::Lua(e)
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    p: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.b.len() - self.p
    }

    fn need(&self, n: usize) -> Result<(), Fail> {
        if self.left() < n {
            Err(Fail::Eof)
        } else {
            Ok(())
        }
    }

    fn byte(&self, i: usize) -> u8 {
        self.b.get(self.p + i).copied().unwrap_or(0)
    }

    fn be(&self, from: usize, n: usize) -> u64 {
        (0..n).fold(0u64, |acc, i| (acc << 8) | self.byte(from + i) as u64)
    }
}

/// A table being decoded (the table and its pending key are in
/// [`Held`]).
enum Frame {
    Array {
        len: usize,
        i: usize,
    },
    Map {
        len: usize,
        done: usize,
        has_key: bool,
    },
}

const TOO_MANY: &str =
    "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";

/// `mp_decode_to_lua_type`, with an explicit stack instead of recursion
/// (nesting can go thousands deep). `used`: the Lua stack slots the C
/// version holds at this point; each array level adds two (table,
/// index), each map level one (table) and one more while its value is
/// decoded (key).
fn decode_value(lua: &Lua, c: &mut Cursor<'_>, mut used: usize) -> Result<Value, Fail> {
    let mut stack: Vec<Frame> = Vec::new();
    let held = Held::new(lua)?;
    loop {
        c.need(1)?;
        if used + 1 > LUAI_MAXCSTACK {
            return Err(Fail::Raise(TOO_MANY.into()));
        }
        let mut v = match container(c)? {
            Some((false, len)) => {
                let t = lua.create_table()?;
                if used + 2 > LUAI_MAXCSTACK {
                    return Err(Fail::Raise(
                        "stack overflow (in function mp_decode_to_lua_array)".into(),
                    ));
                }
                if len > 0 {
                    held.set(stack.len(), t, Value::Nil)?;
                    stack.push(Frame::Array { len, i: 0 });
                    used += 2;
                    continue;
                }
                Value::Table(t)
            }
            Some((true, len)) => {
                let t = lua.create_table()?;
                if len > 0 {
                    held.set(stack.len(), t, Value::Nil)?;
                    stack.push(Frame::Map {
                        len,
                        done: 0,
                        has_key: false,
                    });
                    used += 1;
                    continue;
                }
                Value::Table(t)
            }
            None => decode_scalar(lua, c)?,
        };
        // Hand the value to the enclosing tables, closing those it fills.
        loop {
            let level = stack.len().saturating_sub(1);
            match stack.last_mut() {
                None => return Ok(v),
                Some(Frame::Array { len, i }) => {
                    *i += 1;
                    held.table(level)?.raw_set(*i as i64, v)?;
                    if *i < *len {
                        break;
                    }
                    used -= 2;
                }
                Some(Frame::Map { len, done, has_key }) => {
                    if !*has_key {
                        held.set_key(level, v)?;
                        *has_key = true;
                        used += 1;
                        break;
                    }
                    let k = held.key(level)?;
                    held.set_key(level, Value::Nil)?;
                    *has_key = false;
                    used -= 1;
                    // lua_settable: a nil or NaN key raises, a nil value
                    // deletes.
                    match &k {
                        Value::Nil => {
                            return Err(Fail::Raise(format!("{RAW_ERROR}table index is nil")))
                        }
                        Value::Number(n) if n.is_nan() => {
                            return Err(Fail::Raise(format!("{RAW_ERROR}table index is NaN")))
                        }
                        _ => held.table(level)?.raw_set(k, v)?,
                    }
                    *done += 1;
                    if *done < *len {
                        break;
                    }
                    used -= 1;
                }
            }
            stack.pop();
            v = Value::Table(held.take(level)?);
        }
    }
}

/// An array or map header at the cursor: consumed, with (is a map,
/// length).
#[inline(never)]
fn container(c: &mut Cursor<'_>) -> Result<Option<(bool, usize)>, Fail> {
    let tag = c.byte(0);
    Ok(match tag {
        0xdc..=0xdf => {
            let n = if tag == 0xdc || tag == 0xde { 2 } else { 4 };
            c.need(1 + n)?;
            let l = c.be(1, n) as usize;
            c.p += 1 + n;
            Some((tag >= 0xde, l))
        }
        0x80..=0x9f => {
            c.p += 1;
            Some((tag < 0x90, (tag & 0xf) as usize))
        }
        _ => None,
    })
}

/// Everything but arrays and maps.
#[inline(never)]
fn decode_scalar(lua: &Lua, c: &mut Cursor<'_>) -> Result<Value, Fail> {
    let tag = c.byte(0);
    let fixed = |c: &mut Cursor<'_>, n: usize| -> Result<u64, Fail> {
        c.need(1 + n)?;
        let v = c.be(1, n);
        c.p += 1 + n;
        Ok(v)
    };
    let v = match tag {
        0xcc => Value::Integer(fixed(c, 1)? as i64),
        0xd0 => Value::Integer(fixed(c, 1)? as u8 as i8 as i64),
        0xcd => Value::Integer(fixed(c, 2)? as i64),
        0xd1 => Value::Integer(fixed(c, 2)? as u16 as i16 as i64),
        0xce => Value::Integer(fixed(c, 4)? as i64),
        0xd2 => Value::Integer(fixed(c, 4)? as u32 as i32 as i64),
        // lua_pushunsigned is lua_pushinteger: above 2^63 it wraps.
        0xcf => Value::Number(fixed(c, 8)? as i64 as f64),
        0xd3 => Value::Number(fixed(c, 8)? as i64 as f64),
        0xc0 => {
            c.p += 1;
            Value::Nil
        }
        0xc3 | 0xc2 => {
            c.p += 1;
            Value::Boolean(tag == 0xc3)
        }
        0xca => Value::Number(f32::from_bits(fixed(c, 4)? as u32) as f64),
        0xcb => Value::Number(f64::from_bits(fixed(c, 8)?)),
        0xd9..=0xdb => {
            let n = match tag {
                0xd9 => 1,
                0xda => 2,
                _ => 4,
            };
            c.need(1 + n)?;
            let l = c.be(1, n) as usize;
            c.p += 1 + n;
            c.need(l)?;
            let s = lua.create_string(&c.b[c.p..c.p + l])?;
            c.p += l;
            Value::String(s)
        }
        _ if tag & 0x80 == 0 => {
            c.p += 1;
            Value::Integer(tag as i64)
        }
        _ if tag & 0xe0 == 0xe0 => {
            c.p += 1;
            Value::Integer(tag as i8 as i64)
        }
        _ if tag & 0xe0 == 0xa0 => {
            let l = (tag & 0x1f) as usize;
            c.need(1 + l)?;
            let s = lua.create_string(&c.b[c.p + 1..c.p + 1 + l])?;
            c.p += 1 + l;
            Value::String(s)
        }
        _ => return Err(Fail::BadFmt),
    };
    Ok(v)
}

/// `mp_unpack_full`; `used`: the stack slots the arguments hold.
fn unpack_full(
    lua: &Lua,
    args: &MultiValue,
    limit: i64,
    offset: i64,
    fname: &str,
    used: usize,
) -> mlua::Result<LibResult> {
    let s = match check_string(args, 0, fname) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let len = s.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Ok(Err(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    } else if offset as u64 > len as u64 {
        return Ok(Err(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let limit = if decode_all { i32::MAX as i64 } else { limit };
    let mut c = Cursor {
        b: &s,
        p: offset as usize,
    };
    let mut out = MultiValue::new();
    let mut cnt: i64 = 0;
    while c.left() > 0 && cnt < limit {
        match decode_value(lua, &mut c, used + out.len()) {
            Ok(v) => out.push_back(v),
            Err(Fail::Eof) => return Ok(Err("Missing bytes in input.".into())),
            Err(Fail::BadFmt) => return Ok(Err("Bad data format in input.".into())),
            Err(Fail::Raise(m)) => return Ok(Err(m)),
            Err(Fail::Lua(e)) => return Err(e),
        }
        cnt += 1;
    }
    if !decode_all {
        if used + out.len() + 1 > LUAI_MAXCSTACK {
            return Ok(Err("stack overflow (in function mp_unpack_full)".into()));
        }
        let next = if c.left() == 0 { -1 } else { c.p as i64 };
        out.push_front(Value::Integer(next));
    }
    Ok(Ok(out))
}
