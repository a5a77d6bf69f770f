//! The `cjson` library Redis 7.0 gives scripts (lua-cjson 2.1.0, Redis'
//! `deps/lua/src/lua_cjson.c`), written in Rust for memlog's Lua state.
//!
//! It follows the C library's decisions exactly, since scripts see its
//! output: when a table is an array (and when one is too sparse), `%.14g`
//! numbers, its string escapes, `lua_next` key order, its error messages
//! and character positions, and its depth limits (both the configured
//! ones and where `lua_checkstack` would fail in the C version). The
//! configuration (`encode_max_depth` and friends) lives with the library
//! table, as the C version keeps it in an upvalue; `cjson.new()` makes an
//! independent copy.

use std::sync::{Arc, Mutex};

use mlua::{Function, LightUserData, Lua, MultiValue, Table, Value};

use crate::script_lib::{
    as_number, c_i32, check_integer, check_string, fmt_g, strtod, type_name, Held, LibCtx,
    LibResult, LUAI_MAXCSTACK,
};

#[derive(Clone, Copy)]
struct Config {
    sparse_convert: i32,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0: error, 1: emit nan/inf, 2: emit null.
    encode_invalid_numbers: i32,
    decode_invalid_numbers: i32,
    keep_buffer: i32,
    precision: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: 0,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            keep_buffer: 1,
            precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

fn config(c: &Shared) -> Config {
    *c.lock().unwrap_or_else(|e| e.into_inner())
}

/// `cjson.null`: a NULL light userdata, as in C.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// Builds a `cjson` table with its own configuration.
pub fn cjson_library(lua: &Lua, ctx: &LibCtx) -> mlua::Result<Table> {
    let cfg: Shared = Arc::new(Mutex::new(Config::default()));
    let t = lua.create_table()?;
    {
        let cfg = cfg.clone();
        // Lua's own `next`, taken before any script runs: objects are
        // written in lua_next order.
        let next: Function = lua.globals().raw_get("next")?;
        t.raw_set(
            "encode",
            ctx.function(lua, move |lua, args| {
                encode(lua, &config(&cfg), &next, &args)
            })?,
        )?;
    }
    {
        let cfg = cfg.clone();
        t.raw_set(
            "decode",
            ctx.function(lua, move |lua, args| decode(lua, &config(&cfg), &args))?,
        )?;
    }
    {
        let cfg = cfg.clone();
        t.raw_set(
            "encode_sparse_array",
            ctx.function(lua, move |lua, args| {
                let mut c = cfg.lock().unwrap_or_else(|e| e.into_inner());
                let name = "encode_sparse_array";
                Ok((|| {
                    arg_init(&args, 3, name)?;
                    let a = enum_option(lua, &args, 0, &mut c.sparse_convert, BOOL_OPTIONS, name)?;
                    let b = int_option(&args, 1, &mut c.sparse_ratio, 0, i32::MAX, name)?;
                    let d = int_option(&args, 2, &mut c.sparse_safe, 0, i32::MAX, name)?;
                    Ok(MultiValue::from_iter([a, b, d]))
                })())
            })?,
        )?;
    }
    type IntField = fn(&mut Config) -> &mut i32;
    let ints: [(&str, IntField, i32, i32); 3] = [
        ("encode_max_depth", |c| &mut c.encode_max_depth, 1, i32::MAX),
        ("decode_max_depth", |c| &mut c.decode_max_depth, 1, i32::MAX),
        ("encode_number_precision", |c| &mut c.precision, 1, 14),
    ];
    for (name, field, min, max) in ints {
        let cfg = cfg.clone();
        t.raw_set(
            name,
            ctx.function(lua, move |_, args| {
                let mut c = cfg.lock().unwrap_or_else(|e| e.into_inner());
                Ok((|| {
                    arg_init(&args, 1, name)?;
                    let v = int_option(&args, 0, field(&mut c), min, max, name)?;
                    Ok(MultiValue::from_iter([v]))
                })())
            })?,
        )?;
    }
    let enums: [(&str, IntField, &'static [&'static str]); 3] = [
        ("encode_keep_buffer", |c| &mut c.keep_buffer, BOOL_OPTIONS),
        (
            "encode_invalid_numbers",
            |c| &mut c.encode_invalid_numbers,
            &["off", "on", "null"],
        ),
        (
            "decode_invalid_numbers",
            |c| &mut c.decode_invalid_numbers,
            BOOL_OPTIONS,
        ),
    ];
    for (name, field, options) in enums {
        let cfg = cfg.clone();
        t.raw_set(
            name,
            ctx.function(lua, move |lua, args| {
                let mut c = cfg.lock().unwrap_or_else(|e| e.into_inner());
                Ok((|| {
                    arg_init(&args, 1, name)?;
                    let v = enum_option(lua, &args, 0, field(&mut c), options, name)?;
                    Ok(MultiValue::from_iter([v]))
                })())
            })?,
        )?;
    }
    {
        let ctx2 = ctx.clone();
        t.raw_set(
            "new",
            lua.create_function(move |lua, ()| cjson_library(lua, &ctx2))?,
        )?;
    }
    t.raw_set("null", null())?;
    t.raw_set("_NAME", "cjson")?;
    t.raw_set("_VERSION", "2.1.0")?;
    Ok(t)
}

const BOOL_OPTIONS: &[&str] = &["off", "on"];

/// An argument error, raised as a Lua error by the callers.
type ArgResult<T> = Result<T, String>;

/// `json_arg_init`: no more than `n` arguments.
fn arg_init(args: &MultiValue, n: usize, name: &str) -> ArgResult<()> {
    if args.len() > n {
        return Err(format!(
            "bad argument #{} to '{name}' (found too many arguments)",
            n + 1
        ));
    }
    Ok(())
}

fn is_nil(args: &MultiValue, i: usize) -> bool {
    matches!(args.get(i), None | Some(Value::Nil))
}

/// `json_integer_option`.
fn int_option(
    args: &MultiValue,
    i: usize,
    setting: &mut i32,
    min: i32,
    max: i32,
    name: &str,
) -> ArgResult<Value> {
    if !is_nil(args, i) {
        let v = check_integer(args, i, name)? as i32;
        if !(min <= v && v <= max) {
            return Err(format!(
                "bad argument #1 to '{name}' (expected integer between {min} and {max})"
            ));
        }
        *setting = v;
    }
    Ok(Value::Integer(*setting as i64))
}

/// `json_enum_option` (with `bool_true` 1, as every caller has it).
fn enum_option(
    lua: &Lua,
    args: &MultiValue,
    i: usize,
    setting: &mut i32,
    options: &[&str],
    name: &str,
) -> ArgResult<Value> {
    match args.get(i) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = *b as i32,
        Some(_) => {
            let s = check_string(args, i, name)?;
            match options.iter().position(|o| o.as_bytes() == s.as_slice()) {
                Some(p) => *setting = p as i32,
                None => {
                    return Err(format!(
                        "bad argument #{} to '{name}' (invalid option '{}')",
                        i + 1,
                        String::from_utf8_lossy(&s)
                    ))
                }
            }
        }
    }
    Ok(if *setting == 0 || *setting == 1 {
        Value::Boolean(*setting == 1)
    } else {
        // Only encode_invalid_numbers' "null" gets here.
        let name = options.get(*setting as usize).copied().unwrap_or("null");
        Value::String(lua.create_string(name).map_err(|e| e.to_string())?)
    })
}

// ---------------------------------------------------------------- encoding

fn encode(lua: &Lua, cfg: &Config, next: &Function, args: &MultiValue) -> mlua::Result<LibResult> {
    if args.len() != 1 {
        return Ok(Err(
            "bad argument #1 to 'encode' (expected 1 argument)".to_string()
        ));
    }
    let mut out = Vec::new();
    let v = args.front().cloned().unwrap_or(Value::Nil);
    match append_data(lua, cfg, v, next, &mut out)? {
        Ok(()) => Ok(Ok(MultiValue::from_iter([Value::String(
            lua.create_string(&out)?,
        )]))),
        Err(e) => Ok(Err(e)),
    }
}

fn serialise_error(v: &Value, reason: &str) -> String {
    format!("Cannot serialise {}: {reason}", type_name(v))
}

fn append_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

fn append_number(cfg: &Config, v: &Value, n: f64, out: &mut Vec<u8>) -> Result<(), String> {
    match cfg.encode_invalid_numbers {
        0 => {
            if n.is_nan() || n.is_infinite() {
                return Err(serialise_error(v, "must not be NaN or Inf"));
            }
        }
        1 => {
            if n.is_nan() {
                out.extend_from_slice(b"nan");
                return Ok(());
            }
        }
        _ => {
            if n.is_nan() || n.is_infinite() {
                out.extend_from_slice(b"null");
                return Ok(());
            }
        }
    }
    out.extend_from_slice(fmt_g(n, cfg.precision.max(1) as usize).as_bytes());
    Ok(())
}

/// `lua_array_length`: the array's length, or `None` for an object.
/// Keys are only looked at, never kept: mlua holds a reference for each
/// string or table it hands out, and it has room for only so many.
fn array_length(cfg: &Config, t: &Table) -> mlua::Result<Result<Option<i32>, String>> {
    let mut max: i32 = 0;
    let mut items: i32 = 0;
    let mut object = false;
    let r = t.for_each::<Value, Value>(|k, _| match as_number(&k) {
        Some(n) if n != 0.0 && n.floor() == n && n >= 1.0 => {
            if n > max as f64 {
                max = c_i32(n);
            }
            items = items.wrapping_add(1);
            Ok(())
        }
        _ => {
            object = true;
            Err(stop())
        }
    });
    if !object {
        r?;
    } else {
        return Ok(Ok(None));
    }
    if cfg.sparse_ratio > 0 && max > items.wrapping_mul(cfg.sparse_ratio) && max > cfg.sparse_safe {
        if cfg.sparse_convert == 0 {
            return Ok(Err(serialise_error(
                &Value::Table(t.clone()),
                "excessively sparse array",
            )));
        }
        return Ok(Ok(None));
    }
    Ok(Ok(Some(max)))
}

/// The error that ends a `for_each` early (the reason is kept aside).
fn stop() -> mlua::Error {
    mlua::Error::RuntimeError(String::new())
}

/// A table being encoded (the table and its last key are in [`Held`]).
enum EncFrame {
    Array { len: i32, i: i32 },
    Object { first: bool },
}

/// `json_append_data` for anything but a table.
fn append_scalar(cfg: &Config, v: &Value, out: &mut Vec<u8>) -> Result<(), String> {
    match v {
        Value::String(s) => append_string(&s.as_bytes(), out),
        Value::Integer(i) => append_number(cfg, v, *i as f64, out)?,
        Value::Number(n) => append_number(cfg, v, *n, out)?,
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        _ => return Err(serialise_error(v, "type not supported")),
    }
    Ok(())
}

/// `json_append_data`, with an explicit stack instead of recursion (the
/// nesting may go thousands deep). `next` is Lua's `next`, so objects
/// come out in `lua_next` order. `used` tracks the Lua stack slots the C
/// version would hold (its `lua_checkstack` limit): the argument, then
/// one per array level and two (key, value) per object level.
fn append_data(
    lua: &Lua,
    cfg: &Config,
    root: Value,
    next: &Function,
    out: &mut Vec<u8>,
) -> mlua::Result<Result<(), String>> {
    let mut stack: Vec<EncFrame> = Vec::new();
    let held = Held::new(lua)?;
    let mut used: usize = 1;
    let mut pending = Some(root);
    loop {
        match pending.take() {
            Some(Value::Table(t)) => {
                let depth = stack.len() as i64 + 1;
                if depth > cfg.encode_max_depth as i64 || used + 3 > LUAI_MAXCSTACK {
                    return Ok(Err(format!(
                        "Cannot serialise, excessive nesting ({depth})"
                    )));
                }
                match array_length(cfg, &t)? {
                    Err(e) => return Ok(Err(e)),
                    Ok(Some(len)) if len > 0 => {
                        out.push(b'[');
                        held.set(stack.len(), t, Value::Nil)?;
                        stack.push(EncFrame::Array { len, i: 0 });
                        used += 1;
                    }
                    Ok(_) => {
                        out.push(b'{');
                        held.set(stack.len(), t, Value::Nil)?;
                        stack.push(EncFrame::Object { first: true });
                        used += 2;
                    }
                }
            }
            Some(v) => {
                if let Err(e) = append_scalar(cfg, &v, out) {
                    return Ok(Err(e));
                }
            }
            None => {}
        }
        let level = stack.len().saturating_sub(1);
        let Some(top) = stack.last_mut() else {
            return Ok(Ok(()));
        };
        match top {
            EncFrame::Array { len, i } => {
                if *i < *len {
                    if *i > 0 {
                        out.push(b',');
                    }
                    *i += 1;
                    pending = Some(held.table(level)?.raw_get::<Value>(*i as i64)?);
                } else {
                    out.push(b']');
                    stack.pop();
                    held.take(level)?;
                    used -= 1;
                }
            }
            EncFrame::Object { first } => {
                let (k, v): (Value, Value) = next.call((held.table(level)?, held.key(level)?))?;
                if k.is_nil() {
                    out.push(b'}');
                    stack.pop();
                    held.take(level)?;
                    used -= 2;
                    continue;
                }
                if !*first {
                    out.push(b',');
                }
                *first = false;
                match &k {
                    Value::Integer(_) | Value::Number(_) => {
                        out.push(b'"');
                        let n = as_number(&k).unwrap_or(0.0);
                        if let Err(e) = append_number(cfg, &k, n, out) {
                            return Ok(Err(e));
                        }
                        out.extend_from_slice(b"\":");
                    }
                    Value::String(s) => {
                        append_string(&s.as_bytes(), out);
                        out.push(b':');
                    }
                    _ => {
                        return Ok(Err(serialise_error(
                            &k,
                            "table key must be a number or string",
                        )))
                    }
                }
                held.set_key(level, k)?;
                pending = Some(v);
            }
        }
    }
}

// ---------------------------------------------------------------- decoding

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    String,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

fn tok_name(t: Tok) -> &'static str {
    match t {
        Tok::ObjBegin => "T_OBJ_BEGIN",
        Tok::ObjEnd => "T_OBJ_END",
        Tok::ArrBegin => "T_ARR_BEGIN",
        Tok::ArrEnd => "T_ARR_END",
        Tok::String => "T_STRING",
        Tok::Number => "T_NUMBER",
        Tok::Boolean => "T_BOOLEAN",
        Tok::Null => "T_NULL",
        Tok::Colon => "T_COLON",
        Tok::Comma => "T_COMMA",
        Tok::End => "T_END",
        Tok::Error => "T_ERROR",
    }
}

struct Token {
    kind: Tok,
    index: usize,
    err: &'static str,
    s: Vec<u8>,
    num: f64,
    boolean: bool,
}

struct Parser<'a> {
    data: &'a [u8],
    ptr: usize,
    cfg: Config,
    depth: i32,
}

/// A decoding failure: the message, or a Lua error from building tables.
enum Fail {
    Msg(String),
    Lua(mlua::Error),
}

impl From<mlua::Error> for Fail {
    fn from(e: mlua::Error) -> Self {
        Fail::Lua(e)
    }
}

impl Parser<'_> {
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn token_error(&self, t: &mut Token, err: &'static str) {
        t.kind = Tok::Error;
        t.index = self.ptr;
        t.err = err;
    }

    fn next_token(&mut self) -> Token {
        let mut t = Token {
            kind: Tok::End,
            index: 0,
            err: "",
            s: Vec::new(),
            num: 0.0,
            boolean: false,
        };
        while matches!(self.at(self.ptr), b' ' | b'\t' | b'\n' | b'\r') {
            self.ptr += 1;
        }
        t.index = self.ptr;
        let ch = self.at(self.ptr);
        let simple = match ch {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            0 => {
                t.kind = Tok::End;
                return t;
            }
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'"' | b'+' | b'-' | b'0'..=b'9' => None,
            _ => {
                self.token_error(&mut t, "invalid token");
                return t;
            }
        };
        if let Some(k) = simple {
            t.kind = k;
            self.ptr += 1;
            return t;
        }
        let rest = &self.data[self.ptr.min(self.data.len())..];
        if ch == b'"' {
            self.string_token(&mut t);
        } else if ch == b'-' || ch.is_ascii_digit() {
            if self.cfg.decode_invalid_numbers == 0 && self.is_invalid_number() {
                self.token_error(&mut t, "invalid number");
            } else {
                self.number_token(&mut t);
            }
        } else if rest.starts_with(b"true") {
            t.kind = Tok::Boolean;
            t.boolean = true;
            self.ptr += 4;
        } else if rest.starts_with(b"false") {
            t.kind = Tok::Boolean;
            self.ptr += 5;
        } else if rest.starts_with(b"null") {
            t.kind = Tok::Null;
            self.ptr += 4;
        } else if self.cfg.decode_invalid_numbers != 0 && self.is_invalid_number() {
            self.number_token(&mut t);
        } else {
            self.token_error(&mut t, "invalid token");
        }
        t
    }

    fn is_invalid_number(&self) -> bool {
        let mut p = self.ptr;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        if self.at(p) == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        } else if self.at(p) <= b'9' {
            return false;
        }
        let word: Vec<u8> = (p..p + 3)
            .map(|i| self.at(i).to_ascii_lowercase())
            .collect();
        word == b"inf" || word == b"nan"
    }

    fn number_token(&mut self, t: &mut Token) {
        let end = self.data[self.ptr..]
            .iter()
            .position(|&c| c == 0)
            .map_or(self.data.len(), |p| self.ptr + p);
        let (v, used) = strtod(&self.data[self.ptr..end]);
        t.kind = Tok::Number;
        t.num = v;
        if used == 0 {
            self.token_error(t, "invalid number");
        } else {
            self.ptr += used;
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let mut v = 0;
        for i in 0..4 {
            let d = (self.at(at + i) as char).to_digit(16)?;
            v = (v << 4) | d;
        }
        Some(v)
    }

    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut cp) = self.hex4(self.ptr + 2) else {
            return false;
        };
        let mut len = 6;
        if cp & 0xF800 == 0xD800 {
            if cp & 0x400 != 0 {
                return false;
            }
            if self.at(self.ptr + 6) != b'\\' || self.at(self.ptr + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.ptr + 8) else {
                return false;
            };
            if low & 0xFC00 != 0xDC00 {
                return false;
            }
            cp = (((cp & 0x3FF) << 10) | (low & 0x3FF)) + 0x10000;
            len = 12;
        }
        if cp <= 0x7F {
            out.push(cp as u8);
        } else if cp <= 0x7FF {
            out.push(((cp >> 6) | 0xC0) as u8);
            out.push(((cp & 0x3F) | 0x80) as u8);
        } else if cp <= 0xFFFF {
            out.push(((cp >> 12) | 0xE0) as u8);
            out.push((((cp >> 6) & 0x3F) | 0x80) as u8);
            out.push(((cp & 0x3F) | 0x80) as u8);
        } else {
            out.push(((cp >> 18) | 0xF0) as u8);
            out.push((((cp >> 12) & 0x3F) | 0x80) as u8);
            out.push((((cp >> 6) & 0x3F) | 0x80) as u8);
            out.push(((cp & 0x3F) | 0x80) as u8);
        }
        self.ptr += len;
        true
    }

    fn string_token(&mut self, t: &mut Token) {
        self.ptr += 1;
        let mut s = Vec::new();
        loop {
            let mut ch = self.at(self.ptr);
            if ch == b'"' {
                break;
            }
            if ch == 0 {
                self.token_error(t, "unexpected end of string");
                return;
            }
            if ch == b'\\' {
                let e = match self.at(self.ptr + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 0x08,
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => 0x0c,
                    b'r' => b'\r',
                    b'u' => b'u',
                    _ => 0,
                };
                if e == b'u' {
                    if self.unicode_escape(&mut s) {
                        continue;
                    }
                    self.token_error(t, "invalid unicode escape code");
                    return;
                }
                if e == 0 {
                    self.token_error(t, "invalid escape code");
                    return;
                }
                ch = e;
                self.ptr += 1;
            }
            s.push(ch);
            self.ptr += 1;
        }
        self.ptr += 1;
        t.kind = Tok::String;
        t.s = s;
    }

    fn parse_error(&self, expected: &str, t: &Token) -> Fail {
        let found = if t.kind == Tok::Error {
            t.err
        } else {
            tok_name(t.kind)
        };
        Fail::Msg(format!(
            "Expected {expected} but found {found} at character {}",
            t.index + 1
        ))
    }

    fn descend(&mut self, used: usize, slots: usize) -> Result<(), Fail> {
        self.depth += 1;
        if self.depth <= self.cfg.decode_max_depth && used + slots <= LUAI_MAXCSTACK {
            return Ok(());
        }
        Err(Fail::Msg(format!(
            "Found too many nested data structures ({}) at character {}",
            self.depth, self.ptr
        )))
    }

    /// An object key and its colon.
    fn object_key(&mut self, lua: &Lua, tok: &Token) -> Result<mlua::LuaString, Fail> {
        if tok.kind != Tok::String {
            return Err(self.parse_error("object key string", tok));
        }
        let key = lua.create_string(&tok.s)?;
        let colon = self.next_token();
        if colon.kind != Tok::Colon {
            return Err(self.parse_error("colon", &colon));
        }
        Ok(key)
    }

    /// `json_process_value` with the object and array contexts, using an
    /// explicit stack instead of recursion. `used`: the Lua stack slots
    /// the C version holds (the argument; then two per object level, one
    /// per array level).
    fn value(&mut self, lua: &Lua, first: Token, mut used: usize) -> Result<Value, Fail> {
        let mut stack: Vec<DecFrame> = Vec::new();
        let held = Held::new(lua)?;
        let mut tok = first;
        loop {
            let mut v = match tok.kind {
                Tok::String => Value::String(lua.create_string(&tok.s)?),
                Tok::Number => Value::Number(tok.num),
                Tok::Boolean => Value::Boolean(tok.boolean),
                Tok::Null => null(),
                Tok::ObjBegin => {
                    self.descend(used, 3)?;
                    let t = lua.create_table()?;
                    let next = self.next_token();
                    if next.kind == Tok::ObjEnd {
                        self.depth -= 1;
                        Value::Table(t)
                    } else {
                        let key = self.object_key(lua, &next)?;
                        held.set(stack.len(), t, Value::String(key))?;
                        stack.push(DecFrame::Object);
                        used += 2;
                        tok = self.next_token();
                        continue;
                    }
                }
                Tok::ArrBegin => {
                    self.descend(used, 2)?;
                    let t = lua.create_table()?;
                    let next = self.next_token();
                    if next.kind == Tok::ArrEnd {
                        self.depth -= 1;
                        Value::Table(t)
                    } else {
                        held.set(stack.len(), t, Value::Nil)?;
                        stack.push(DecFrame::Array { i: 1 });
                        used += 1;
                        tok = next;
                        continue;
                    }
                }
                _ => return Err(self.parse_error("value", &tok)),
            };
            // Hand the value to the enclosing tables, closing those that
            // end here.
            loop {
                let level = stack.len().saturating_sub(1);
                match stack.last_mut() {
                    None => return Ok(v),
                    Some(DecFrame::Array { i }) => {
                        held.table(level)?.raw_set(*i, v)?;
                        *i += 1;
                        let next = self.next_token();
                        if next.kind == Tok::ArrEnd {
                            self.depth -= 1;
                            used -= 1;
                            stack.pop();
                            v = Value::Table(held.take(level)?);
                            continue;
                        }
                        if next.kind != Tok::Comma {
                            return Err(self.parse_error("comma or array end", &next));
                        }
                        tok = self.next_token();
                        break;
                    }
                    Some(DecFrame::Object) => {
                        held.table(level)?.raw_set(held.key(level)?, v)?;
                        let next = self.next_token();
                        if next.kind == Tok::ObjEnd {
                            self.depth -= 1;
                            used -= 2;
                            stack.pop();
                            v = Value::Table(held.take(level)?);
                            continue;
                        }
                        if next.kind != Tok::Comma {
                            return Err(self.parse_error("comma or object end", &next));
                        }
                        let ktok = self.next_token();
                        let key = self.object_key(lua, &ktok)?;
                        held.set_key(level, Value::String(key))?;
                        tok = self.next_token();
                        break;
                    }
                }
            }
        }
    }
}

/// A table being decoded (the table and its pending key are in
/// [`Held`]).
enum DecFrame {
    Array { i: i64 },
    Object,
}

fn decode(lua: &Lua, cfg: &Config, args: &MultiValue) -> mlua::Result<LibResult> {
    if args.len() != 1 {
        return Ok(Err(
            "bad argument #1 to 'decode' (expected 1 argument)".to_string()
        ));
    }
    let data = match check_string(args, 0, "decode") {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Ok(Err("JSON parser does not support UTF-16 or UTF-32".into()));
    }
    let mut p = Parser {
        data: &data,
        ptr: 0,
        cfg: *cfg,
        depth: 0,
    };
    let run = |p: &mut Parser<'_>| -> Result<Value, Fail> {
        let tok = p.next_token();
        let v = p.value(lua, tok, 1)?;
        let tok = p.next_token();
        if tok.kind != Tok::End {
            return Err(p.parse_error("the end", &tok));
        }
        Ok(v)
    };
    match run(&mut p) {
        Ok(v) => Ok(Ok(MultiValue::from_iter([v]))),
        Err(Fail::Msg(m)) => Ok(Err(m)),
        Err(Fail::Lua(e)) => Err(e),
    }
}
