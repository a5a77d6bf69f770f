//! The `struct` library Redis 7.0 gives scripts (Roberto Ierusalimschy's
//! struct 1.7, Redis' `deps/lua/src/lua_struct.c`), written in Rust for
//! memlog's Lua state.
//!
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, pos])` and
//! `struct.size(fmt)` give the bytes, numbers and error messages of the C
//! version as Redis runs it on x86-64 Linux: native order little endian,
//! `short` 2 bytes, `int` 4, `long` and `size_t` 8, `!` alone aligns to 8,
//! `i`/`I` take sizes up to 32 bytes. Scripts see its output (and may
//! store it), so its quirks are kept too:
//!
//! - the format ends at its first NUL byte (the C reads a C string);
//! - integers go through a C `long`: out-of-range numbers convert as
//!   x86-64 converts them, bytes past the 8th of a wide integer are zero
//!   when packing (even for negative numbers) and ignored when unpacking,
//!   where the sign mask's shift count is taken modulo 64, as the C's
//!   (undefined) over-wide shift does on x86-64;
//! - `unpack`'s start position is a `size_t`: negative positions wrap
//!   around, and one past the data is returned as is by an empty format;
//! - `pack`'s "string too short" names the argument after the string;
//! - `size` skips letters and digits it does not know;
//! - `unpack` fails where the C version's `luaL_checkstack` would, with
//!   the same message.
//!
//! Every size comes from the format (at most `INT_MAX` per item) or from
//! the data, and none allocates before it is checked against the data or
//! the arguments, so no format makes the library allocate without bound.
//!
//! Two differences remain, both from the plumbing rather than this file:
//! an invalid format byte past ASCII appears in the error message as the
//! UTF-8 of that code point (the message is a Rust `String`; the C shows
//! the lone byte), and an `unpack` of about 7990 to 7997 values fails
//! with mlua's "stack overflow (not enough stack slots available)", as
//! an mlua callback cannot return that many, where the C version still
//! succeeds.

use mlua::{Lua, MultiValue, Table, Value};

use crate::script_lib::{
    c_i64, to_lua_bytes, to_number, type_name, LibCtx, LibResult, LUAI_MAXCSTACK,
};

/// `MAXINTSIZE`: the widest `i`/`I` integer, in bytes.
const MAX_INT_SIZE: u64 = 32;

/// `MAXALIGN` on x86-64: what a bare `!` aligns to (a `double`'s
/// alignment, more than an `int`'s).
const MAX_ALIGN: u64 = 8;

/// `sizeof(int)`: the size of `i`/`I` without a number.
const INT_SIZE: u64 = 4;

/// Builds the `struct` table.
pub fn struct_library(lua: &Lua, ctx: &LibCtx) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        ctx.function(lua, |lua, args| {
            let args = Args::new(lua, &args);
            finish(pack(&args).and_then(|b| Ok(Value::String(lua.create_string(b)?))))
        })?,
    )?;
    t.raw_set(
        "unpack",
        ctx.function(lua, |lua, args| finish_many(unpack(&Args::new(lua, &args))))?,
    )?;
    t.raw_set(
        "size",
        ctx.function(lua, |lua, args| {
            finish(size(&Args::new(lua, &args)).map(Value::Number))
        })?,
    )?;
    Ok(t)
}

/// Why a call failed: an error for the script, or one of mlua's own.
enum Fail {
    Raise(String),
    Lua(mlua::Error),
}

impl From<String> for Fail {
    fn from(msg: String) -> Self {
        Fail::Raise(msg)
    }
}

impl From<&str> for Fail {
    fn from(msg: &str) -> Self {
        Fail::Raise(msg.to_string())
    }
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Self {
        Fail::Lua(e)
    }
}

fn finish(r: Result<Value, Fail>) -> mlua::Result<LibResult> {
    finish_many(r.map(|v| MultiValue::from_iter([v])))
}

fn finish_many(r: Result<MultiValue, Fail>) -> mlua::Result<LibResult> {
    match r {
        Ok(v) => Ok(Ok(v)),
        Err(Fail::Raise(msg)) => Ok(Err(msg)),
        Err(Fail::Lua(e)) => Err(e),
    }
}

/// A call's arguments, read as the C version's `luaL_check*` read them
/// (numbered from 1).
struct Args<'a> {
    lua: &'a Lua,
    values: &'a MultiValue,
    /// Whether the C version has pushed a nil above the arguments (as
    /// `pack` does): a check of the argument after the last then finds
    /// nil rather than no value.
    nil_above: bool,
}

impl<'a> Args<'a> {
    fn new(lua: &'a Lua, values: &'a MultiValue) -> Self {
        Args {
            lua,
            values,
            nil_above: false,
        }
    }

    fn get(&self, narg: usize) -> Option<&Value> {
        match self.values.get(narg - 1) {
            None if self.nil_above && narg == self.values.len() + 1 => Some(&Value::Nil),
            v => v,
        }
    }

    /// `luaL_argerror`: the function is named as its caller spelled it
    /// (`struct.pack(...)`: 'pack'; through `pcall(struct.pack, ...)`:
    /// '?'), and a method call does not count `self`. Level 0 is the
    /// mlua callback, level 1 the library function the script called.
    fn arg_error(&self, narg: usize, msg: &str) -> String {
        let (name, method) = self
            .lua
            .inspect_stack(1, |d| {
                let names = d.names();
                (
                    names.name.map(|n| n.into_owned()),
                    names.name_what == Some("method"),
                )
            })
            .unwrap_or((None, false));
        let name = name.unwrap_or_else(|| "?".to_string());
        if method {
            if narg == 1 {
                return format!("calling '{name}' on bad self ({msg})");
            }
            return format!("bad argument #{} to '{name}' ({msg})", narg - 1);
        }
        format!("bad argument #{narg} to '{name}' ({msg})")
    }

    /// `luaL_typerror`.
    fn type_error(&self, narg: usize, expected: &str) -> String {
        let got = self.get(narg).map_or("no value", type_name);
        self.arg_error(narg, &format!("{expected} expected, got {got}"))
    }

    /// `luaL_checknumber` (numeric strings convert).
    fn number(&self, narg: usize) -> Result<f64, String> {
        self.get(narg)
            .and_then(to_number)
            .ok_or_else(|| self.type_error(narg, "number"))
    }

    /// `luaL_checklstring` (numbers convert as `%.14g`).
    fn string(&self, narg: usize) -> Result<Bytes, String> {
        match self.get(narg) {
            Some(Value::String(s)) => Ok(Bytes::Lua(s.as_bytes())),
            v => v
                .and_then(to_lua_bytes)
                .map(Bytes::Owned)
                .ok_or_else(|| self.type_error(narg, "string")),
        }
    }

    /// `luaL_optinteger`: `default` when absent or nil.
    fn opt_integer(&self, narg: usize, default: i64) -> Result<i64, String> {
        match self.get(narg) {
            None | Some(Value::Nil) => Ok(default),
            Some(v) => to_number(v)
                .map(c_i64)
                .ok_or_else(|| self.type_error(narg, "number")),
        }
    }
}

/// `(size_t)d` for a double as gcc compiles it on x86-64: below 2^63
/// (and NaN) a signed conversion, from 2^63 on one of `d - 2^63` with
/// the top bit flipped (so 2^64 and above, and infinity, give 0).
fn c_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d >= TWO_63 {
        (c_i64(d - TWO_63) as u64) ^ (1 << 63)
    } else {
        c_i64(d) as u64
    }
}

/// A string argument's bytes: a Lua string's own, read in place (a
/// script may unpack a long string piece by piece, one call per piece),
/// or a number's text.
enum Bytes {
    Lua(mlua::BorrowedBytes),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Lua(b) => b,
            Bytes::Owned(v) => v,
        }
    }
}

/// The format string, read one option at a time.
struct Format {
    bytes: Bytes,
    /// The C reads the format as a C string: it ends at the first NUL.
    end: usize,
    at: usize,
}

impl Format {
    fn new(bytes: Bytes) -> Self {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Format { bytes, end, at: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes[..self.end].get(self.at).copied()
    }

    fn next_option(&mut self) -> Option<u8> {
        let opt = self.peek()?;
        self.at += 1;
        Some(opt)
    }

    /// `getnum`: the decimal number that follows, or `default` when no
    /// digit does; past `INT_MAX` is an error, as in C.
    fn number(&mut self, default: u64) -> Result<u64, String> {
        let digit = |f: &Self| f.peek().filter(u8::is_ascii_digit);
        if digit(self).is_none() {
            return Ok(default);
        }
        let mut n: i32 = 0;
        while let Some(d) = digit(self) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i32::from(d - b'0')))
                .ok_or_else(|| "integral size overflow".to_string())?;
            self.at += 1;
        }
        Ok(n as u64)
    }
}

/// `optsize`: the bytes an option takes (0 for the control options and
/// the unknown ones, and for `s`, whose size comes from its string),
/// reading the number after `c`, `i` and `I`.
fn option_size(opt: u8, fmt: &mut Format) -> Result<u64, String> {
    Ok(match opt {
        b'b' | b'B' | b'x' => 1,
        b'h' | b'H' => 2,
        b'f' => 4,
        b'l' | b'L' | b'T' | b'd' => 8,
        b'c' => fmt.number(1)?,
        b'i' | b'I' => {
            let size = fmt.number(INT_SIZE)?;
            if size > MAX_INT_SIZE {
                return Err(format!(
                    "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                ));
            }
            size
        }
        _ => 0,
    })
}

/// The byte order and alignment the control options set.
struct Header {
    big_endian: bool,
    align: u64,
}

impl Header {
    /// Native order (little endian on x86-64), no alignment.
    fn new() -> Self {
        Header {
            big_endian: false,
            align: 1,
        }
    }

    /// `gettoalign`: the padding before an item of `size` bytes at `pos`,
    /// aligned to its size but at most to the `!` alignment. The size
    /// need not be a power of 2 (`i3`); the C's mask arithmetic is kept
    /// for those too.
    fn padding(&self, pos: u64, opt: u8, size: u64) -> u64 {
        if size == 0 || opt == b'c' {
            return 0;
        }
        let size = size.min(self.align);
        size.wrapping_sub(pos & (size - 1)) & (size - 1)
    }

    /// `controloptions`: byte order, alignment, spaces; anything else is
    /// an invalid option.
    fn control(&mut self, opt: u8, fmt: &mut Format, args: &Args) -> Result<(), String> {
        match opt {
            b' ' => {}
            b'>' => self.big_endian = true,
            b'<' => self.big_endian = false,
            b'!' => {
                let align = fmt.number(MAX_ALIGN)?;
                if !align.is_power_of_two() {
                    return Err(format!("alignment {align} is not a power of 2"));
                }
                self.align = align;
            }
            // A byte past ASCII is shown as the character of that code
            // point: a Rust string cannot hold the lone byte the C shows.
            _ => return Err(args.arg_error(1, &format!("invalid format option '{}'", opt as char))),
        }
        Ok(())
    }
}

fn is_integer_option(opt: u8) -> bool {
    matches!(
        opt,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

/// `putinteger`: `n` as a C `long` (negative) or `unsigned long`, its low
/// `size` bytes in the given order; bytes past the 8th are zero.
fn put_integer(out: &mut Vec<u8>, n: f64, big_endian: bool, size: u64) {
    let value = if n < 0.0 { c_i64(n) as u64 } else { c_u64(n) };
    let mut bytes = [0u8; MAX_INT_SIZE as usize];
    bytes[..8].copy_from_slice(&value.to_le_bytes());
    let bytes = &mut bytes[..size as usize];
    if big_endian {
        bytes.reverse();
    }
    out.extend_from_slice(bytes);
}

/// `getinteger`: the integer in `bytes` as a Lua number. Wider than 8
/// bytes, the low 8 count; the sign mask's shift count is taken modulo
/// 64 as x86-64 does, the C's shift being undefined there (and for
/// `i0`).
fn get_integer(bytes: &[u8], big_endian: bool, signed: bool) -> f64 {
    let fold = |l: u64, b: &u8| (l << 8) | u64::from(*b);
    let mut l = if big_endian {
        bytes.iter().fold(0, fold)
    } else {
        bytes.iter().rev().fold(0, fold)
    };
    if !signed {
        return l as f64;
    }
    let shift = ((bytes.len() as i64 * 8 - 1) & 63) as u32;
    let mask = u64::MAX << shift;
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

/// Copies `N` bytes at `at` (already checked to be in the data).
fn array<const N: usize>(data: &[u8], at: usize) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&data[at..at + N]);
    a
}

/// `struct.pack(fmt, ...)`.
fn pack(args: &Args) -> Result<Vec<u8>, Fail> {
    let mut fmt = Format::new(args.string(1)?);
    // The C pushes a nil (its buffer's mark) once it has the format.
    let args = &Args {
        nil_above: true,
        ..*args
    };
    let mut h = Header::new();
    let mut arg = 2;
    let mut out = Vec::new();
    while let Some(opt) = fmt.next_option() {
        let size = option_size(opt, &mut fmt)?;
        let pad = h.padding(out.len() as u64, opt, size);
        // Less than the item's size, at most 32 bytes.
        out.resize(out.len() + pad as usize, 0);
        match opt {
            _ if is_integer_option(opt) => {
                let n = args.number(arg)?;
                arg += 1;
                put_integer(&mut out, n, h.big_endian, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let f = args.number(arg)? as f32;
                arg += 1;
                out.extend_from_slice(&if h.big_endian {
                    f.to_be_bytes()
                } else {
                    f.to_le_bytes()
                });
            }
            b'd' => {
                let d = args.number(arg)?;
                arg += 1;
                out.extend_from_slice(&if h.big_endian {
                    d.to_be_bytes()
                } else {
                    d.to_le_bytes()
                });
            }
            b'c' | b's' => {
                let s = args.string(arg)?;
                arg += 1;
                // `c0` and `s` take the whole string; a count longer than
                // the string is refused before anything is copied.
                let take = if size == 0 { s.len() as u64 } else { size };
                if (s.len() as u64) < take {
                    // The C has already counted the string's argument.
                    return Err(args.arg_error(arg, "string too short").into());
                }
                out.extend_from_slice(&s[..take as usize]);
                if opt == b's' {
                    out.push(0);
                }
            }
            _ => h.control(opt, &mut fmt, args)?,
        }
    }
    Ok(out)
}

/// A value `unpack` found: strings stay ranges of the data until the
/// whole format has been read, so that a failing call makes no Lua
/// strings (mlua can hold only about 8000 at once; the C version fails
/// first, in its stack check, and so does this one).
enum Item {
    Number(f64),
    Bytes(std::ops::Range<usize>),
}

/// `struct.unpack(fmt, data [, pos])`: the values, then the position
/// after them.
fn unpack(args: &Args) -> Result<MultiValue, Fail> {
    let mut fmt = Format::new(args.string(1)?);
    let data = args.string(2)?;
    let start = args.opt_integer(3, 1)? as u64;
    if start == 0 {
        return Err(args.arg_error(3, "offset must be 1 or greater").into());
    }
    let len = data.len() as u64;
    let fits = |pos: u64, size: u64| size <= len && pos <= len - size;
    let mut pos = start - 1;
    let mut h = Header::new();
    let mut out: Vec<Item> = Vec::new();
    while let Some(opt) = fmt.next_option() {
        let mut size = option_size(opt, &mut fmt)?;
        pos = pos.wrapping_add(h.padding(pos, opt, size));
        if !fits(pos, size) {
            return Err(args.arg_error(2, "data string too short").into());
        }
        // The C version's `luaL_checkstack(L, 2, ...)`: its stack holds
        // the arguments and the values so far.
        if args.values.len() + out.len() + 2 > LUAI_MAXCSTACK {
            return Err("stack overflow (too many results)".into());
        }
        // In the data, as just checked.
        let at = pos as usize;
        match opt {
            _ if is_integer_option(opt) => {
                let bytes = &data[at..at + size as usize];
                let signed = opt.is_ascii_lowercase();
                out.push(Item::Number(get_integer(bytes, h.big_endian, signed)));
            }
            b'x' => {}
            b'f' => {
                let b = array::<4>(&data, at);
                let f = if h.big_endian {
                    f32::from_be_bytes(b)
                } else {
                    f32::from_le_bytes(b)
                };
                out.push(Item::Number(f64::from(f)));
            }
            b'd' => {
                let b = array::<8>(&data, at);
                out.push(Item::Number(if h.big_endian {
                    f64::from_be_bytes(b)
                } else {
                    f64::from_le_bytes(b)
                }));
            }
            b'c' => {
                if size == 0 {
                    // `c0`: the previous value (a number, or a string
                    // that reads as one) is the length, and is replaced.
                    let n = match out.last() {
                        Some(Item::Number(n)) => Some(*n),
                        Some(Item::Bytes(r)) => {
                            to_number(&Value::String(args.lua.create_string(&data[r.clone()])?))
                        }
                        None => None,
                    };
                    let Some(n) = n else {
                        return Err("format 'c0' needs a previous size".into());
                    };
                    out.pop();
                    size = c_u64(n);
                    if !fits(pos, size) {
                        return Err(args.arg_error(2, "data string too short").into());
                    }
                }
                out.push(Item::Bytes(at..at + size as usize));
            }
            b's' => {
                let Some(nul) = data[at..].iter().position(|&b| b == 0) else {
                    return Err("unfinished string in data".into());
                };
                out.push(Item::Bytes(at..at + nul));
                size = nul as u64 + 1;
            }
            _ => h.control(opt, &mut fmt, args)?,
        }
        pos = pos.wrapping_add(size);
    }
    let mut values = MultiValue::with_capacity(out.len() + 1);
    for item in out {
        values.push_back(match item {
            Item::Number(n) => Value::Number(n),
            Item::Bytes(r) => Value::String(args.lua.create_string(&data[r])?),
        });
    }
    // `lua_pushinteger` of the `size_t` position: as a signed integer.
    values.push_back(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(values)
}

/// `struct.size(fmt)`: the bytes `pack` makes of a format without
/// strings.
fn size(args: &Args) -> Result<f64, Fail> {
    let mut fmt = Format::new(args.string(1)?);
    let mut h = Header::new();
    let mut pos: u64 = 0;
    while let Some(opt) = fmt.next_option() {
        let size = option_size(opt, &mut fmt)?;
        pos = pos.wrapping_add(h.padding(pos, opt, size));
        if opt == b's' {
            return Err(args.arg_error(1, "option 's' has no fixed size").into());
        }
        if opt == b'c' && size == 0 {
            return Err(args.arg_error(1, "option 'c0' has no fixed size").into());
        }
        // The C hands only non-alphanumeric options to
        // `controloptions`: unknown letters and stray digits count 0.
        if !opt.is_ascii_alphanumeric() {
            h.control(opt, &mut fmt, args)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64 as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `code` with `struct` as a global; returns its one result.
    fn run<T: mlua::FromLua>(code: &str) -> T {
        let lua = Lua::new();
        let ctx = LibCtx::new(&lua).expect("ctx");
        let t = struct_library(&lua, &ctx).expect("library");
        lua.globals().set("struct", t).expect("global");
        lua.load(code).set_name("=t").eval().expect("runs")
    }

    /// Runs `code`; returns the bytes of the string it returns.
    fn run_bytes(code: &str) -> Vec<u8> {
        run::<mlua::BString>(code).to_vec()
    }

    #[test]
    fn script_struct_pack_bytes() {
        let b = run_bytes("return struct.pack('>I2<i3!4bd', 258, -2, 1, 1.5)");
        let mut want = vec![1, 2, 0xfe, 0xff, 0xff, 1, 0, 0];
        want.extend_from_slice(&1.5f64.to_le_bytes());
        assert_eq!(b, want);
        let b = run_bytes("return struct.pack('<i10', -1)");
        assert_eq!(b, [255, 255, 255, 255, 255, 255, 255, 255, 0, 0]);
    }

    #[test]
    fn script_struct_unpack_and_size() {
        let s: String = run(
            "local a, b, c, n = struct.unpack('>h!4i s', struct.pack('>h!4i s', -3, 7, 'hi'))
             return a .. ' ' .. b .. ' ' .. c .. ' ' .. n",
        );
        assert_eq!(s, "-3 7 hi 12");
        let n: f64 = run("return struct.size('!bd i3 xc5')");
        assert_eq!(n, 27.0);
    }

    #[test]
    fn script_struct_errors() {
        let e: String = run("return select(2, pcall(function() return struct.pack('z') end))");
        assert_eq!(
            e,
            "t:1: bad argument #1 to 'pack' (invalid format option 'z')"
        );
        let e: String = run("return select(2, pcall(struct.pack, 'c3', 'ab'))");
        assert_eq!(e, "bad argument #3 to '?' (string too short)");
        let e: String = run("return select(2, pcall(struct.unpack, 'i40', ''))");
        assert_eq!(e, "integral size 40 is larger than limit of 32");
        let e: String = run("return select(2, pcall(struct.size, 'c99999999999'))");
        assert_eq!(e, "integral size overflow");
    }

    #[test]
    fn script_struct_conversions() {
        assert_eq!(c_u64(f64::INFINITY), 0);
        assert_eq!(c_u64(f64::NAN), 1 << 63);
        assert_eq!(c_u64(2f64.powi(63)), 1 << 63);
        assert_eq!(c_u64(-1.0), u64::MAX);
        assert_eq!(get_integer(&[0xff, 0xff], true, true), -1.0);
        assert_eq!(get_integer(&[0xff, 0xff], true, false), 65535.0);
        assert_eq!(get_integer(&[], false, true), 0.0);
    }
}
