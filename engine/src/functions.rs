//! Redis 7 functions: libraries of Lua functions loaded with FUNCTION LOAD
//! and called with FCALL / FCALL_RO.
//!
//! A library runs once when it is loaded, in its own Lua state (apart from
//! EVAL's, as in Redis, so SCRIPT FLUSH leaves functions alone), and
//! registers its functions with `redis.register_function`; a function then
//! runs like an EVAL script (`crate::script::execute`).
//!
//! In the write path the libraries are data: FUNCTION LOAD, DELETE, FLUSH
//! and RESTORE each log an effect (a load as `FUNCTION LOAD REPLACE code`,
//! so that replaying it never depends on what was loaded before), snapshots
//! hold one such load per library, and the commands an FCALL runs land in
//! the FCALL's one effect record, as an EVAL's do.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, MultiValue, Table, Value};

use crate::script::{LuaState, SHEBANG_FLAGS};

/// How long a library's code may run while it loads (Redis' LOAD_TIMEOUT_MS).
pub const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

const NAME_ERROR: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// One registered function.
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<Bytes>,
    /// Bit i set: `SHEBANG_FLAGS[i]`.
    pub flags: u8,
    pub(crate) f: Function,
}

impl FunctionInfo {
    pub fn no_writes(&self) -> bool {
        self.flags & 1 != 0
    }

    /// As a script's flags: a function always declares them.
    pub fn script_flags(&self) -> crate::script::ScriptFlags {
        // no-writes is bit 0, allow-oom bit 1 (SHEBANG_FLAGS' order).
        crate::script::ScriptFlags {
            declared: true,
            no_writes: self.flags & 0b01 != 0,
            allow_oom: self.flags & 0b10 != 0,
        }
    }

    /// The flag names, in Redis' order.
    pub fn flag_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        SHEBANG_FLAGS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.flags & (1 << i) != 0)
            .map(|(_, n)| *n)
    }
}

/// A loaded library.
pub struct Library {
    pub name: String,
    /// The code as loaded, metadata line included.
    pub code: Bytes,
    /// In registration order.
    pub functions: Vec<FunctionInfo>,
}

/// The loaded libraries and the Lua state their functions live in.
#[derive(Default)]
pub struct Functions {
    state: Option<LuaState>,
    libraries: BTreeMap<String, Library>,
    /// Function name, lower-cased (FCALL's lookup ignores case, as Redis'
    /// function table does) → its library.
    index: BTreeMap<String, String>,
}

impl std::fmt::Debug for Functions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Functions")
            .field("libraries", &self.libraries.len())
            .finish()
    }
}

/// What `redis.register_function` collects during one load.
type Registered = Arc<Mutex<Vec<FunctionInfo>>>;

/// The `#!<engine> name=<name>` line of a library: (engine, name, where the
/// code after it starts).
fn metadata(code: &[u8]) -> Result<(String, String, usize), String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    // Split as Redis' sdssplitargs does, so `name="foo"` names foo.
    let parts = crate::resp::split_args(&code[..end])
        .filter(|p| !p.is_empty())
        .ok_or("ERR Invalid library metadata")?;
    let parts: Vec<String> = parts
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let engine = parts[0].get(2..).unwrap_or_default().to_string();
    let mut name = None;
    for part in &parts[1..] {
        if part
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("name="))
        {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(part[5..].to_string());
            continue;
        }
        return Err(format!("ERR Invalid metadata value given: {part}"));
    }
    let name = name.ok_or("ERR Library name was not given")?;
    Ok((engine, name, end))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A Lua string, or a number as Lua converts it (`lua_isstring`).
fn lua_string(v: &Value) -> Option<Bytes> {
    match v {
        Value::String(s) => Some(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Integer(i) => Some(Bytes::from(i.to_string())),
        Value::Number(n) => Some(Bytes::from(crate::script::lua_number_string(*n))),
        _ => None,
    }
}

/// `redis.register_function`'s arguments, checked as Redis checks them.
fn read_registration(args: &MultiValue) -> Result<FunctionInfo, &'static str> {
    match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
            };
            read_named(t)
        }
        2 => {
            let name = args
                .front()
                .and_then(lua_string)
                .ok_or("first argument to redis.register_function must be a string")?;
            let Some(Value::Function(f)) = args.get(1) else {
                return Err("second argument to redis.register_function must be a function");
            };
            Ok(FunctionInfo {
                name: String::from_utf8_lossy(&name).into_owned(),
                description: None,
                flags: 0,
                f: f.clone(),
            })
        }
        _ => Err("wrong number of arguments to redis.register_function"),
    }
}

fn read_named(t: &Table) -> Result<FunctionInfo, &'static str> {
    let (mut name, mut desc, mut flags, mut callback) = (None, None, 0u8, None);
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair.map_err(|_| "unknown argument given to redis.register_function")?;
        let key = lua_string(&k)
            .ok_or("named argument key given to redis.register_function is not a string")?;
        let key = String::from_utf8_lossy(&key).to_ascii_lowercase();
        match key.as_str() {
            "function_name" => {
                name = Some(lua_string(&v).ok_or(
                    "function_name argument given to redis.register_function must be a string",
                )?)
            }
            "description" => {
                desc = Some(lua_string(&v).ok_or(
                    "description argument given to redis.register_function must be a string",
                )?)
            }
            "callback" => match v {
                Value::Function(f) => callback = Some(f),
                _ => {
                    return Err(
                        "callback argument given to redis.register_function must be a function",
                    )
                }
            },
            "flags" => {
                let Value::Table(ft) = v else {
                    return Err("flags argument to redis.register_function must be a table representing function flags");
                };
                flags = 0;
                for i in 1.. {
                    let fv: Value = ft.raw_get(i).map_err(|_| "unknown flag given")?;
                    if fv.is_nil() {
                        break;
                    }
                    let s = lua_string(&fv).ok_or("unknown flag given")?;
                    let s = String::from_utf8_lossy(&s).to_ascii_lowercase();
                    let bit = SHEBANG_FLAGS
                        .iter()
                        .position(|f| *f == s)
                        .ok_or("unknown flag given")?;
                    flags |= 1 << bit;
                }
            }
            _ => return Err("unknown argument given to redis.register_function"),
        }
    }
    let name = name.ok_or("redis.register_function must get a function name argument")?;
    let callback = callback.ok_or("redis.register_function must get a callback argument")?;
    Ok(FunctionInfo {
        name: String::from_utf8_lossy(&name).into_owned(),
        description: desc,
        flags,
        f: callback,
    })
}

/// Reads an error value a library's load raised: its `err` field, or the
/// message with Redis' generic code.
fn load_error(v: &Value) -> String {
    match v {
        Value::Table(t) => t
            .raw_get::<Option<String>>("err")
            .ok()
            .flatten()
            .unwrap_or_else(|| "ERR unknown error".into()),
        Value::String(s) => format!("ERR {}", s.to_string_lossy()),
        Value::Error(e) => format!("ERR {e}"),
        other => format!("ERR {other:?}"),
    }
}

impl Functions {
    fn state(&mut self) -> Result<&LuaState, String> {
        if self.state.is_none() {
            self.state = Some(LuaState::new().map_err(|e| e.0)?);
        }
        self.state
            .as_ref()
            .ok_or_else(|| "ERR Lua could not start".to_string())
    }

    pub fn libraries(&self) -> impl Iterator<Item = &Library> {
        self.libraries.values()
    }

    pub fn library_count(&self) -> usize {
        self.libraries.len()
    }

    pub fn function_count(&self) -> usize {
        self.index.len()
    }

    /// The function and the state to run it in.
    pub(crate) fn function(&self, name: &str) -> Option<(&LuaState, &FunctionInfo)> {
        let lib = self.index.get(&name.to_ascii_lowercase())?;
        let f = self
            .libraries
            .get(lib)?
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))?;
        Some((self.state.as_ref()?, f))
    }

    /// FUNCTION LOAD: compiles and runs `code`, registering its functions.
    /// Returns the library's name, or the error reply (without the `-`).
    /// `timeout`: how long the code may run (none when replaying the log).
    pub fn load(
        &mut self,
        code: &[u8],
        replace: bool,
        timeout: Option<Duration>,
    ) -> Result<String, String> {
        let (engine, name, body_at) = metadata(code)?;
        if !valid_name(&name) {
            return Err(format!("ERR {NAME_ERROR}"));
        }
        if !engine.eq_ignore_ascii_case("lua") {
            return Err(format!("ERR Engine '{engine}' not found"));
        }
        if self.libraries.contains_key(&name) && !replace {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let registered = self.run_library(&code[body_at..], timeout)?;
        if registered.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for f in &registered {
            if let Some(lib) = self.index.get(&f.name.to_ascii_lowercase()) {
                if *lib != name {
                    return Err(format!("ERR Function {} already exists", f.name));
                }
            }
        }
        self.delete(&name);
        for f in &registered {
            self.index.insert(f.name.to_ascii_lowercase(), name.clone());
        }
        let functions = registered;
        self.libraries.insert(
            name.clone(),
            Library {
                name: name.clone(),
                code: Bytes::copy_from_slice(code),
                functions,
            },
        );
        Ok(name)
    }

    /// Compiles a library's code and runs it; returns what it registered.
    fn run_library(
        &mut self,
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Vec<FunctionInfo>, String> {
        let st = self.state()?;
        let lua = &st.lua;
        let chunk = st
            .compile(body, "@user_function")
            .map_err(|msg| format!("ERR Error compiling function: {msg}"))?;
        let registered: Registered = Arc::default();
        let register = {
            let registered = registered.clone();
            lua.create_function(move |_, args: MultiValue| {
                // An error comes back as a value; the prelude raises it as
                // Redis' error table.
                let info = match read_registration(&args) {
                    Ok(r) => r,
                    Err(e) => return Ok(Some(e.to_string())),
                };
                if !valid_name(&info.name) {
                    return Ok(Some(NAME_ERROR.to_string()));
                }
                let mut list = registered
                    .lock()
                    .map_err(|_| mlua::Error::RuntimeError("registration poisoned".into()))?;
                if list.iter().any(|f| f.name == info.name) {
                    return Ok(Some("Function already exists in the library".to_string()));
                }
                list.push(info);
                Ok(None)
            })
            .map_err(|e| format!("ERR {e}"))?
        };
        if let Some(limit) = timeout {
            let started = Instant::now();
            lua.set_hook(
                mlua::HookTriggers::new().every_nth_instruction(100_000),
                move |lua, _| {
                    if started.elapsed() > limit {
                        // Every line of the library from now on, so a pcall
                        // cannot hold it (the prelude's lines that end the
                        // load still run).
                        let _ = lua.set_hook(mlua::HookTriggers::new().every_line(), |_, d| {
                            if d.source().source.as_deref() == Some("@user_function") {
                                return Err(mlua::Error::RuntimeError(
                                    "FUNCTION LOAD timeout".into(),
                                ));
                            }
                            Ok(mlua::VmState::Continue)
                        });
                        return Err(mlua::Error::RuntimeError("FUNCTION LOAD timeout".into()));
                    }
                    Ok(mlua::VmState::Continue)
                },
            )
            .map_err(|e| format!("ERR {e}"))?;
        }
        let outcome: Result<MultiValue, mlua::Error> = st.load_library.call((chunk, register));
        lua.remove_hook();
        let r = outcome.map_err(|e| format!("ERR {e}"))?;
        let mut it = r.into_iter();
        if !matches!(it.next(), Some(Value::Boolean(true))) {
            let err = it.next().unwrap_or(Value::Nil);
            let msg = match &err {
                Value::Error(e) if e.to_string().contains("FUNCTION LOAD timeout") => {
                    "ERR FUNCTION LOAD timeout".to_string()
                }
                other => load_error(other),
            };
            return Err(format!(
                "ERR Error registering functions: {}",
                msg.replace(['\r', '\n'], " ")
            ));
        }
        let list = std::mem::take(
            &mut *registered
                .lock()
                .map_err(|_| "ERR registration poisoned".to_string())?,
        );
        Ok(list)
    }

    /// FUNCTION DELETE: false if there is no such library.
    pub fn delete(&mut self, name: &str) -> bool {
        let Some(lib) = self.libraries.remove(name) else {
            return false;
        };
        for f in &lib.functions {
            self.index.remove(&f.name.to_ascii_lowercase());
        }
        true
    }

    /// FUNCTION FLUSH.
    pub fn flush(&mut self) {
        self.libraries.clear();
        self.index.clear();
        // A fresh state also drops whatever the libraries left in Lua's heap.
        self.state = None;
    }

    /// FUNCTION RESTORE of the libraries' `codes` (from a DUMP payload) with
    /// Redis' policies. All or nothing: on an error nothing changes.
    pub fn restore(&mut self, codes: &[Vec<u8>], policy: RestorePolicy) -> Result<(), String> {
        // The payload must load on its own first (names, duplicates, code).
        let mut incoming = Functions::default();
        let mut names = Vec::with_capacity(codes.len());
        for code in codes {
            names.push(incoming.load(code, false, None)?);
        }
        if policy == RestorePolicy::Flush {
            *self = incoming;
            return Ok(());
        }
        let replace = policy == RestorePolicy::Replace;
        for lib in incoming.libraries.values() {
            if self.libraries.contains_key(&lib.name) && !replace {
                return Err(format!("ERR Library {} already exists", lib.name));
            }
        }
        // A function may take the name of one in a library it replaces.
        for (fname, owner) in &self.index {
            if incoming.index.contains_key(fname)
                && !(replace && incoming.libraries.contains_key(owner))
            {
                return Err(format!("ERR Function {fname} already exists"));
            }
        }
        for name in &names {
            self.delete(name);
        }
        for (code, name) in codes.iter().zip(&names) {
            if let Err(e) = self.load(code, false, None) {
                // Checked above: only code that registers something else on
                // a second run gets here.
                tracing::warn!("FUNCTION RESTORE of library {name}: {e}");
                return Err(e);
            }
        }
        Ok(())
    }
}

/// FUNCTION RESTORE's policy for libraries that already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePolicy {
    Append,
    Replace,
    Flush,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_errors_match_redis() {
        assert_eq!(metadata(b"x").unwrap_err(), "ERR Missing library metadata");
        assert_eq!(
            metadata(b"#!lua name=a").unwrap_err(),
            "ERR Invalid library metadata"
        );
        assert_eq!(
            metadata(b"#!lua name=a name=b\n").unwrap_err(),
            "ERR Invalid metadata value, name argument was given multiple times"
        );
        assert_eq!(
            metadata(b"#!lua foo=b\n").unwrap_err(),
            "ERR Invalid metadata value given: foo=b"
        );
        assert_eq!(
            metadata(b"#!lua\n").unwrap_err(),
            "ERR Library name was not given"
        );
        assert_eq!(
            metadata(b"#!lua \"a\n").unwrap_err(),
            "ERR Invalid library metadata"
        );
        assert_eq!(
            metadata("#!lua nam\u{e9}=x\n".as_bytes()).unwrap_err(),
            "ERR Invalid metadata value given: nam\u{e9}=x"
        );
        assert_eq!(
            metadata(b"#!lua name=\"q\"\n").map(|m| m.1).as_deref(),
            Ok("q")
        );
        let (engine, name, at) = metadata(b"#!LUA NAME=lib1\nreturn").expect("ok");
        assert_eq!((engine.as_str(), name.as_str(), at), ("LUA", "lib1", 15));
    }

    #[test]
    fn load_registers_and_replace_swaps_functions() {
        let mut f = Functions::default();
        let code = b"#!lua name=lib1\nredis.register_function('f1', function() return 1 end)";
        assert_eq!(
            f.load(code, false, Some(LOAD_TIMEOUT)).as_deref(),
            Ok("lib1")
        );
        assert_eq!(
            f.load(code, false, None).unwrap_err(),
            "ERR Library 'lib1' already exists"
        );
        let other = b"#!lua name=lib2\nredis.register_function('f1', function() return 2 end)";
        assert_eq!(
            f.load(other, false, None).unwrap_err(),
            "ERR Function f1 already exists"
        );
        let code2 = b"#!lua name=lib1\nredis.register_function{function_name='f2', callback=function() end, flags={'no-writes'}, description='d'}";
        assert_eq!(f.load(code2, true, None).as_deref(), Ok("lib1"));
        assert!(f.function("f1").is_none());
        let (_, info) = f.function("f2").expect("f2");
        assert!(info.no_writes());
        assert_eq!(info.description.as_deref(), Some(&b"d"[..]));
        assert_eq!((f.library_count(), f.function_count()), (1, 1));
        assert!(f.delete("lib1"));
        assert!(!f.delete("lib1"));
        assert_eq!(f.function_count(), 0);
    }

    #[test]
    fn a_load_that_never_ends_times_out() {
        let mut f = Functions::default();
        let code = b"#!lua name=lib1\nwhile true do end";
        let err = f
            .load(code, false, Some(Duration::from_millis(20)))
            .unwrap_err();
        assert_eq!(
            err,
            "ERR Error registering functions: ERR FUNCTION LOAD timeout"
        );
    }

    #[test]
    fn restore_policies() {
        let a = b"#!lua name=a\nredis.register_function('fa', function() return 1 end)".to_vec();
        let b = b"#!lua name=b\nredis.register_function('fb', function() return 1 end)".to_vec();
        let mut f = Functions::default();
        f.restore(std::slice::from_ref(&a), RestorePolicy::Append)
            .expect("append");
        assert_eq!(
            f.restore(&[a.clone(), b.clone()], RestorePolicy::Append)
                .unwrap_err(),
            "ERR Library a already exists"
        );
        assert_eq!(f.library_count(), 1);
        f.restore(&[a.clone(), b.clone()], RestorePolicy::Replace)
            .expect("replace");
        assert_eq!(f.library_count(), 2);
        f.restore(&[b], RestorePolicy::Flush).expect("flush");
        assert_eq!(
            f.libraries().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["b"]
        );
    }
}
