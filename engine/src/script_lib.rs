//! Shared plumbing for the C-style Lua libraries memlog gives scripts
//! (`cjson` in [`crate::script_json`], `cmsgpack` in
//! [`crate::script_msgpack`]).
//!
//! Redis' versions are C functions that raise plain string errors with
//! `luaL_error`, so `pcall(cjson.decode, ...)` in a script gets the bare
//! message. An error raised from an mlua callback reaches Lua as userdata
//! instead, so the libraries here report failure by returning
//! [`LibCtx::fail`] followed by the message, and a small Lua wrapper
//! ([`LibCtx::function`]) turns that into `error(msg, 0)`: a string error
//! without a position, as `luaL_error` in a C function gives.
//!
//! Also here: C's `%.<p>g` number formatting, `lua_tolstring`'s view of a
//! number, and the C conversions (x86-64 truncation) the libraries rely on.

use std::os::raw::c_int;

use mlua::{ffi, Function, Lua, MultiValue, Table, Value};

/// Lua 5.1's `LUAI_MAXCSTACK`: the most stack slots a C function may use;
/// `lua_checkstack` fails beyond it.
pub const LUAI_MAXCSTACK: usize = 8000;

/// The C function every library function runs through: it calls its
/// first upvalue (the Rust function) with the arguments and, when the
/// first result is its second upvalue (the failure sentinel), raises the
/// message that follows as `luaL_error` does in a C library function:
/// prefixed with the caller's position (level 1), a string error.
unsafe extern "C-unwind" fn trampoline(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: the state is the one Lua passes to this C function; both
    // upvalues were set when the closure was made (`LibCtx::function`).
    // The frame holds no values with destructors, so the long jumps of
    // lua_call (an error from the callee) and lua_error leave nothing
    // behind.
    unsafe {
        let nargs = ffi::lua_gettop(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, nargs, ffi::LUA_MULTRET);
        let nres = ffi::lua_gettop(state);
        if nres >= 2 && ffi::lua_rawequal(state, 1, ffi::lua_upvalueindex(2)) != 0 {
            if ffi::lua_toboolean(state, 3) != 0 {
                // An error Lua itself raises inside a C function: no
                // position.
                ffi::lua_pushvalue(state, 2);
            } else {
                ffi::luaL_where(state, 1);
                ffi::lua_pushvalue(state, 2);
                ffi::lua_concat(state, 2);
            }
            ffi::lua_error(state)
        } else {
            nres
        }
    }
}

/// Starts an error message raised without the caller's position (as
/// Lua's own runtime errors inside a C function are).
pub const RAW_ERROR: &str = "\0raw\0";

/// The failure sentinel the library functions return before a message.
#[derive(Clone)]
pub struct LibCtx {
    fail: Table,
}

/// A library function's outcome: its return values, or an error message.
pub type LibResult = Result<MultiValue, String>;

impl LibCtx {
    pub fn new(lua: &Lua) -> mlua::Result<Self> {
        Ok(LibCtx {
            fail: lua.create_table()?,
        })
    }

    /// A Lua function running `f`; an `Err` from `f` is raised as a Lua
    /// string error, as a C library's `luaL_error`.
    pub fn function<F>(&self, lua: &Lua, f: F) -> mlua::Result<Function>
    where
        F: Fn(&Lua, MultiValue) -> mlua::Result<LibResult> + Send + 'static,
    {
        let fail = self.fail.clone();
        let inner = lua.create_function(move |lua, args: MultiValue| {
            Ok(match f(lua, args)? {
                Ok(v) => v,
                Err(msg) => {
                    let mut m = MultiValue::new();
                    m.push_back(Value::Table(fail.clone()));
                    match msg.strip_prefix(RAW_ERROR) {
                        Some(raw) => {
                            m.push_back(Value::String(lua.create_string(raw)?));
                            m.push_back(Value::Boolean(true));
                        }
                        None => m.push_back(Value::String(lua.create_string(msg)?)),
                    }
                    m
                }
            })
        })?;
        // SAFETY: exec_raw pushes the two arguments, which
        // lua_pushcclosure takes as the closure's upvalues, leaving the
        // closure as the one result.
        unsafe {
            lua.exec_raw::<Function>((inner, self.fail.clone()), |state| {
                ffi::lua_pushcclosure(state, trampoline, 2);
            })
        }
    }
}

/// The tables (and pending keys) of a nested encode or decode, kept in a
/// Lua table rather than as mlua references: mlua has room for only about
/// 8000 references, and structures may nest as deep as that.
pub struct Held(Table);

impl Held {
    pub fn new(lua: &Lua) -> mlua::Result<Self> {
        Ok(Held(lua.create_table()?))
    }

    /// The table at nesting `level` (from 0).
    pub fn table(&self, level: usize) -> mlua::Result<Table> {
        self.0.raw_get(2 * level as i64 + 1)
    }

    pub fn key(&self, level: usize) -> mlua::Result<Value> {
        self.0.raw_get(2 * level as i64 + 2)
    }

    pub fn set(&self, level: usize, t: Table, key: Value) -> mlua::Result<()> {
        self.0.raw_set(2 * level as i64 + 1, t)?;
        self.0.raw_set(2 * level as i64 + 2, key)
    }

    pub fn set_key(&self, level: usize, key: Value) -> mlua::Result<()> {
        self.0.raw_set(2 * level as i64 + 2, key)
    }

    /// Forgets `level`, returning its table.
    pub fn take(&self, level: usize) -> mlua::Result<Table> {
        let t = self.table(level)?;
        self.0.raw_set(2 * level as i64 + 1, Value::Nil)?;
        self.0.raw_set(2 * level as i64 + 2, Value::Nil)?;
        Ok(t)
    }
}

/// C's `printf("%.<prec>g", n)` (glibc).
pub fn fmt_g(n: f64, prec: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if n.is_infinite() {
        return if n < 0.0 { "-inf" } else { "inf" }.into();
    }
    if n == 0.0 {
        return if n.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let p = prec.max(1);
    let sci = format!("{:.*e}", p - 1, n);
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.unsigned_abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{n:.decimals$}")).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `lua_tolstring`: strings as they are, numbers as `%.14g`.
pub fn to_lua_bytes(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::String(s) => Some(s.as_bytes().to_vec()),
        Value::Integer(i) => Some(fmt_g(*i as f64, 14).into_bytes()),
        Value::Number(n) => Some(fmt_g(*n, 14).into_bytes()),
        _ => None,
    }
}

/// `lua_tonumber` (no string conversion needed by the callers) .
pub fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// `lua_tonumber` with Lua 5.1's string coercion.
pub fn to_number(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            let t = std::str::from_utf8(&b).ok()?.trim();
            if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                return u64::from_str_radix(h, 16).ok().map(|u| u as f64);
            }
            let lower = t.to_ascii_lowercase();
            if lower.contains("inf") || lower.contains("nan") {
                let (_, used) = strtod(t.as_bytes());
                return if used == t.len() && used > 0 {
                    Some(strtod(t.as_bytes()).0)
                } else {
                    None
                };
            }
            t.parse::<f64>().ok()
        }
        _ => as_number(v),
    }
}

/// `(int64_t)d` as x86-64 computes it: out of range (and NaN) gives
/// `INT64_MIN`.
pub fn c_i64(d: f64) -> i64 {
    if !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// `(int)d` as x86-64 computes it: out of range (and NaN) gives `INT_MIN`.
pub fn c_i32(d: f64) -> i32 {
    if !(-2_147_483_648.0..2_147_483_648.0).contains(&d) {
        i32::MIN
    } else {
        d as i32
    }
}

/// `luaL_typename`, as Lua 5.1 names a value's type.
pub fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) | Value::Error(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// `luaL_checkinteger`'s error, or the argument as C reads it.
pub fn check_integer(args: &MultiValue, i: usize, fname: &str) -> Result<i64, String> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    match to_number(&v) {
        Some(n) => Ok(c_i64(n)),
        None => Err(format!(
            "bad argument #{} to '{fname}' (number expected, got {})",
            i + 1,
            if i >= args.len() {
                "no value"
            } else {
                type_name(&v)
            }
        )),
    }
}

/// `luaL_checklstring`.
pub fn check_string(args: &MultiValue, i: usize, fname: &str) -> Result<Vec<u8>, String> {
    let v = args.get(i).cloned().unwrap_or(Value::Nil);
    to_lua_bytes(&v).ok_or_else(|| {
        format!(
            "bad argument #{} to '{fname}' (string expected, got {})",
            i + 1,
            if i >= args.len() {
                "no value"
            } else {
                type_name(&v)
            }
        )
    })
}

/// glibc's `strtod` on a NUL-terminated buffer: the value and how many
/// bytes it used (0: no conversion).
pub fn strtod(b: &[u8]) -> (f64, usize) {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut i = 0;
    let neg = match at(0) {
        b'-' => {
            i = 1;
            true
        }
        b'+' => {
            i = 1;
            false
        }
        _ => false,
    };
    let sign = |v: f64| if neg { -v } else { v };
    let rest_lower = |from: usize, n: usize| -> Vec<u8> {
        (from..from + n)
            .map(|j| at(j).to_ascii_lowercase())
            .collect()
    };
    if rest_lower(i, 3) == b"inf" {
        let used = if rest_lower(i, 8) == b"infinity" {
            i + 8
        } else {
            i + 3
        };
        return (sign(f64::INFINITY), used);
    }
    if rest_lower(i, 3) == b"nan" {
        let mut used = i + 3;
        if at(used) == b'(' {
            let mut j = used + 1;
            while at(j).is_ascii_alphanumeric() || at(j) == b'_' {
                j += 1;
            }
            if at(j) == b')' {
                used = j + 1;
            }
        }
        return (sign(f64::NAN), used);
    }
    if at(i) == b'0' && (at(i + 1) | 0x20) == b'x' {
        if let Some((v, used)) = hex_float(b, i + 2) {
            return (sign(v), used);
        }
        return (sign(0.0), i + 1);
    }
    let start = i;
    let mut digits = 0;
    while at(i).is_ascii_digit() {
        i += 1;
        digits += 1;
    }
    if at(i) == b'.' {
        let mut j = i + 1;
        let mut frac = 0;
        while at(j).is_ascii_digit() {
            j += 1;
            frac += 1;
        }
        if digits + frac > 0 {
            i = j;
            digits += frac;
        }
    }
    if digits == 0 {
        return (0.0, 0);
    }
    if (at(i) | 0x20) == b'e' {
        let mut j = i + 1;
        if at(j) == b'+' || at(j) == b'-' {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            while at(j).is_ascii_digit() {
                j += 1;
            }
            i = j;
        }
    }
    let text = std::str::from_utf8(&b[start..i]).unwrap_or("0");
    let text = if text.starts_with('.') {
        format!("0{text}")
    } else {
        text.to_string()
    };
    (sign(text.parse::<f64>().unwrap_or(0.0)), i)
}

/// A hexadecimal float's digits after "0x": the value and where it ends.
fn hex_float(b: &[u8], from: usize) -> Option<(f64, usize)> {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let mut i = from;
    let mut mant: u64 = 0;
    let mut exp: i32 = 0;
    let mut any = false;
    let mut sticky = false;
    let mut take = |d: u8, frac: bool, mant: &mut u64, exp: &mut i32| {
        let v = (d as char).to_digit(16).unwrap_or(0) as u64;
        if *mant >> 60 == 0 {
            *mant = (*mant << 4) | v;
            if frac {
                *exp -= 4;
            }
        } else {
            sticky |= v != 0;
            if !frac {
                *exp += 4;
            }
        }
    };
    while at(i).is_ascii_hexdigit() {
        take(at(i), false, &mut mant, &mut exp);
        any = true;
        i += 1;
    }
    if at(i) == b'.' {
        let mut j = i + 1;
        let mut frac_any = false;
        while at(j).is_ascii_hexdigit() {
            take(at(j), true, &mut mant, &mut exp);
            frac_any = true;
            j += 1;
        }
        if any || frac_any {
            i = j;
            any = true;
        }
    }
    if !any {
        return None;
    }
    if (at(i) | 0x20) == b'p' {
        let mut j = i + 1;
        let neg = at(j) == b'-';
        if at(j) == b'+' || at(j) == b'-' {
            j += 1;
        }
        if at(j).is_ascii_digit() {
            let mut e: i32 = 0;
            while at(j).is_ascii_digit() {
                e = e.saturating_mul(10).saturating_add((at(j) - b'0') as i32);
                j += 1;
            }
            exp = exp.saturating_add(if neg { -e } else { e });
            i = j;
        }
    }
    let m = if sticky { mant | 1 } else { mant };
    Some(((m as f64) * 2f64.powi(exp), i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_lib_fmt_g() {
        assert_eq!(fmt_g(100.0, 14), "100");
        assert_eq!(fmt_g(0.1, 14), "0.1");
        assert_eq!(fmt_g(1e300, 14), "1e+300");
        assert_eq!(fmt_g(-0.0, 14), "-0");
        assert_eq!(fmt_g(0.0003, 14), "0.0003");
        assert_eq!(fmt_g(0.00003, 14), "3e-05");
        assert_eq!(fmt_g(1e14, 14), "1e+14");
        assert_eq!(fmt_g(12345678901234.0, 14), "12345678901234");
        assert_eq!(fmt_g(1.0 / 3.0, 14), "0.33333333333333");
        assert_eq!(fmt_g(2f64.powi(53), 14), "9.007199254741e+15");
        assert_eq!(fmt_g(1023.2, 3), "1.02e+03");
    }

    #[test]
    fn script_lib_strtod() {
        assert_eq!(strtod(b"12abc"), (12.0, 2));
        assert_eq!(strtod(b"-5e3,"), (-5000.0, 4));
        assert_eq!(strtod(b"1e"), (1.0, 1));
        assert_eq!(strtod(b"0x10"), (16.0, 4));
        assert_eq!(strtod(b"0x"), (0.0, 1));
        assert_eq!(strtod(b"-"), (0.0, 0));
        assert_eq!(strtod(b"Infinity"), (f64::INFINITY, 8));
        assert!(strtod(b"nan(12)x").0.is_nan());
        assert_eq!(strtod(b"nan(12)x").1, 7);
        assert_eq!(strtod(b".5]"), (0.5, 2));
    }
}
