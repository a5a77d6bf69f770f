//! Lua scripting (EVAL, EVALSHA, SCRIPT), as Redis 7.0 runs scripts: Lua
//! 5.1, KEYS and ARGV, `redis.call` / `redis.pcall` and their reply
//! conversions, read-only globals, a script cache by SHA1.
//!
//! In the write path a script is one command: every command it calls runs
//! through `Engine::call` and records its own deterministic effect (as in
//! Redis 7's effects replication), and they all land in the one effect
//! record the EVAL opened, so the log commits a script atomically, as it
//! does a MULTI/EXEC. The reply is parked like any write's until then.
//!
//! A script runs on the engine thread and holds up every other client
//! while it runs, as in Redis. Past `busy-reply-threshold`
//! (`lua-time-limit`) its hook serves the others `-BUSY` and lets SCRIPT
//! KILL / FUNCTION KILL stop it if it has not written (crate::busy); with
//! more than one IO thread the hook cannot serve them, and a script that
//! has not written is stopped there instead. One that has written runs
//! on, up to `written-script-time-limit` when the server has a log: then
//! its record is thrown away and the data set rebuilt from the log, as
//! after a panic (`Engine::guarded`), so no half of it is ever committed;
//! without a log it runs to its end.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, Lua, LuaOptions, MultiValue, StdLib, Table, Value};
use sha1::{Digest, Sha1};

use crate::client::ClientState;
use crate::command::{self, flags, CommandSpec};
use crate::engine::Engine;
use crate::resp::ReplyBuf;
use crate::script_json::cjson_library;
use crate::script_lib::LibCtx;
use crate::script_msgpack::cmsgpack_library;
use crate::script_struct::struct_library;

/// Lua code run once per Lua state: the error handler that adds where a
/// script failed, the redis.* functions written in Lua, and read-only
/// globals (Redis 7's `scriptingEnableGlobalsProtection`).
const PRELUDE: &str = r#"
local sha1hex, bit, cjson, cmsgpack, struct = ...
local real_G = _G
local getinfo = debug.getinfo
local rawget, rawset, error, type, tostring = rawget, rawset, error, type, tostring
local raw_setmetatable, raw_loadstring, setfenv = setmetatable, loadstring, setfenv
local raw_pcall, raw_xpcall = pcall, xpcall

local redis = {}

-- What a script that catches an error redis.call raised sees: Redis 7
-- raises {err = message} (here the error is a Rust value, and the message
-- waits on the Rust side for the reply, should nothing catch it), and its
-- pcall gives the message of such a table, as older versions raised it.
local function caught(err)
  if type(err) == 'userdata' then
    local pending = rawget(redis, '__pending_error')
    local msg = nil
    if pending then msg = pending() end
    if msg then return {err = msg} end
    -- Raised by another Rust helper (sha1hex, setresp, bit, ...): Redis'
    -- C helpers raise {err = 'ERR ' .. message}.
    local s = tostring(err)
    s = s:match('^runtime error: (.-)\nstack traceback') or s:match('^runtime error: (.*)$') or s
    return {err = 'ERR ' .. s}
  end
  return err
end
local function err_handler(err)
  local at = nil
  for level = 2, 64 do
    local i = getinfo(level, 'Sl')
    if i == nil then break end
    if i.source == '@user_script' or i.source == '@user_function' then at = i break end
  end
  if type(err) == 'userdata' then
    -- Raised by redis.call (a C function, so that a tail call to it keeps
    -- the script's frame): the error reply waits on the Rust side.
    local pending = rawget(redis, '__pending_error')
    local msg, counted = nil, nil
    if pending then msg, counted = pending() end
    if msg then
      err = {err = msg, counted = counted}
    else
      err = caught(err)
    end
  end
  if type(err) ~= 'table' then
    err = {err = 'ERR ' .. tostring(err)}
  end
  if at then
    err['source'] = at.source
    err['line'] = at.currentline
  end
  return err
end

local function run(f)
  return raw_xpcall(f, err_handler)
end

local function pcall_result(ok, ...)
  if ok then return ok, ... end
  local err = caught((...))
  -- lua_isstring: a number counts too.
  if type(err) == 'table' then
    local e = rawget(err, 'err')
    if type(e) == 'string' or type(e) == 'number' then err = e end
  end
  return ok, err
end
real_G.pcall = function(f, ...)
  return pcall_result(raw_pcall(f, ...))
end
real_G.xpcall = function(f, handler)
  return raw_xpcall(f, function(err) return handler(caught(err)) end)
end

redis.LOG_DEBUG = 0
redis.LOG_VERBOSE = 1
redis.LOG_NOTICE = 2
redis.LOG_WARNING = 3
redis.REPL_NONE = 0
redis.REPL_AOF = 1
redis.REPL_SLAVE = 2
redis.REPL_REPLICA = 2
redis.REPL_ALL = 3
redis.REDIS_VERSION = '7.0.15'
redis.REDIS_VERSION_NUM = 0x07000f
redis.sha1hex = sha1hex
-- "-CODE message" or "message" (code ERR), as Redis reads an error.
-- Bad arguments make them *return* an error (Redis' luaPushError without
-- luaError): the script goes on unless it returns that.
local function bad_reply_args() return {err = 'ERR wrong number or type of arguments'} end
redis.error_reply = function(...)
  local e = ...
  if select('#', ...) ~= 1 or type(e) ~= 'string' then return bad_reply_args() end
  if e:sub(1, 1) == '-' then e = e:sub(2) end
  if not e:find(' ', 1, true) then return {err = 'ERR ' .. e} end
  return {err = e}
end
redis.status_reply = function(...)
  local s = ...
  if select('#', ...) ~= 1 or type(s) ~= 'string' then return bad_reply_args() end
  return {ok = s}
end
redis.log = function(...)
  if select('#', ...) < 2 then error({err = 'ERR redis.log() requires two arguments or more.'}) end
  local level = tonumber((...))
  if level == nil then error({err = 'ERR First argument must be a number (log level).'}) end
  if level < 0 or level > 3 then error({err = 'ERR Invalid debug level.'}) end
end
redis.replicate_commands = function() return true end
redis.set_repl = function(...)
  if select('#', ...) ~= 1 then error({err = 'ERR redis.set_repl() requires two arguments.'}) end
  local flags = tonumber((...)) or 0
  -- C's (int) cast: toward zero.
  if flags >= 0 then flags = math.floor(flags) else flags = math.ceil(flags) end
  if flags ~= 0 and flags ~= 1 and flags ~= 2 and flags ~= 3 then
    error({err = 'ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.'})
  end
end
redis.breakpoint = function() return false end
redis.debug = function(...) end

-- Scripts see read-only views of the globals and libraries (Redis 7's
-- protection): they cannot define globals or change what other scripts
-- will find, through assignments, rawset or setmetatable.
local protected = {}
local function readonly_error() error('Attempt to modify a readonly table', 2) end
local function readonly(t, index)
  local view = {}
  local shown_mt = {}
  raw_setmetatable(shown_mt, {__newindex = readonly_error, __metatable = false})
  raw_setmetatable(view, {__index = index or t, __newindex = readonly_error, __metatable = shown_mt})
  protected[view] = true
  protected[shown_mt] = true
  return view
end

for _, name in ipairs({'debug', 'print', 'dofile', 'loadfile', 'load', 'getfenv', 'setfenv', 'module', 'require'}) do
  real_G[name] = nil
end
real_G.redis = readonly(redis)
real_G.string = readonly(string)
real_G.math = readonly(math)
real_G.table = readonly(table)
real_G.bit = readonly(bit)
real_G.cjson = readonly(cjson)
real_G.cmsgpack = readonly(cmsgpack)
real_G.struct = readonly(struct)
local G = readonly(real_G, function(_, name)
  local v = rawget(real_G, name)
  if v == nil then
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end
  return v
end)
real_G._G = G
-- Raised by a library function: no position, as Redis' C check has none.
real_G.setmetatable = function(t, mt)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return raw_setmetatable(t, mt)
end
real_G.rawset = function(t, k, v)
  if protected[t] then error('Attempt to modify a readonly table', 0) end
  return rawset(t, k, v)
end
-- Strings' methods table is the real string library: hide it too.
local string_mt = getmetatable('')
if string_mt then string_mt.__metatable = false end

local function sandbox(f)
  setfenv(f, G)
  return f
end
real_G.loadstring = function(s, name)
  if type(s) == 'string' and s:byte(1) == 27 then
    return nil, 'binary chunks are not allowed'
  end
  local f, e = raw_loadstring(s, name)
  if f then setfenv(f, G) end
  return f, e
end

-- Functions (FUNCTION LOAD, FCALL). A library's code runs once, when it is
-- loaded, seeing nothing but a `redis` table with register_function, log
-- and the constants; the functions it registers run later with every
-- global. They all share one environment table whose lookups are switched
-- between the two, as Redis swaps its globals' __index around a load.
local load_redis = {}
for _, k in ipairs({'LOG_DEBUG', 'LOG_VERBOSE', 'LOG_NOTICE', 'LOG_WARNING',
                    'REDIS_VERSION', 'REDIS_VERSION_NUM', 'log'}) do
  load_redis[k] = redis[k]
end
local registrar = nil
load_redis.register_function = function(...)
  if registrar == nil then
    error({err = 'ERR redis.register_function can only be called on FUNCTION LOAD command'})
  end
  local err = registrar(...)
  if err then error({err = 'ERR ' .. err}) end
end
local load_redis_view = readonly(load_redis, function(_, name)
  local v = rawget(load_redis, name)
  if v == nil then
    error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
  end
  return v
end)
local function load_index(_, name)
  if name == 'redis' then return load_redis_view end
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end
local function_env_mt = {__index = G, __newindex = readonly_error, __metatable = false}
local function_env = raw_setmetatable({}, function_env_mt)
protected[function_env] = true

-- Runs a library's compiled code with `register` as redis.register_function.
local function load_library(chunk, register)
  setfenv(chunk, function_env)
  registrar = register
  function_env_mt.__index = load_index
  local ok, err = raw_pcall(chunk)
  function_env_mt.__index = G
  registrar = nil
  return ok, err
end

-- Calls a library function as FCALL does: f(keys, args), under the error
-- handler.
local function call_function(f, keys, args)
  return raw_xpcall(function() return f(keys, args) end, err_handler)
end

return run, sandbox, redis, load_library, call_function
"#;

/// The scripts loaded, and the Lua state that runs them.
#[derive(Default)]
pub struct Scripting {
    state: Option<LuaState>,
    /// Compiled scripts by lower-case SHA1 hex.
    scripts: HashMap<String, Script>,
}

struct Script {
    f: Function,
    flags: ScriptFlags,
}

/// What a script declares in its shebang (`#!lua flags=...`), or a function
/// in its flags: how CLIENT PAUSE, maxmemory and min-replicas-to-write
/// judge the command that runs it, as Redis' script flags do.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScriptFlags {
    /// It declares flags at all (a valid shebang, or any function). Without
    /// them Redis judges the script's commands one by one instead.
    pub declared: bool,
    /// `no-writes`: runs as EVAL_RO does.
    pub no_writes: bool,
    /// `allow-oom`: its commands run over maxmemory too.
    pub allow_oom: bool,
}

impl ScriptFlags {
    /// It may write (CLIENT PAUSE WRITE holds it back).
    pub fn may_write(self) -> bool {
        !self.no_writes
    }

    /// It is refused as a whole while over maxmemory.
    pub fn denies_oom(self) -> bool {
        self.declared && !self.no_writes && !self.allow_oom
    }

    /// Redis treats the command that runs it as a write.
    pub fn declares_writes(self) -> bool {
        self.declared && !self.no_writes
    }
}

/// Redis 7's script flags (`#!lua flags=...`).
pub(crate) const SHEBANG_FLAGS: &[&str] = &[
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Reads a `#!lua flags=a,b` first line: its flags, and how many bytes it
/// takes (the newline stays, so line numbers do not move).
fn shebang(body: &[u8]) -> Result<(ScriptFlags, usize), ScriptError> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err(ScriptError::new("ERR Invalid script shebang".into()));
    };
    let line = String::from_utf8_lossy(&body[..end]);
    let mut parts = line.split_whitespace();
    let engine = parts.next().unwrap_or_default();
    if engine != "#!lua" {
        return Err(ScriptError::new(format!(
            "ERR Unexpected engine in script shebang: {engine}"
        )));
    }
    let mut flagged = ScriptFlags {
        declared: true,
        ..Default::default()
    };
    for p in parts {
        let Some(flags) = p.strip_prefix("flags=") else {
            return Err(ScriptError::new(format!(
                "ERR Unknown lua shebang option: {p}"
            )));
        };
        for f in flags.split(',').filter(|f| !f.is_empty()) {
            if !SHEBANG_FLAGS.contains(&f) {
                return Err(ScriptError::new(format!(
                    "ERR Unexpected flag in script shebang: {f}"
                )));
            }
            flagged.no_writes |= f == "no-writes";
            flagged.allow_oom |= f == "allow-oom";
        }
    }
    Ok((flagged, end))
}

/// A script body's flags; an invalid shebang declares none (the script
/// then fails with its error when it runs).
pub fn body_flags(body: &[u8]) -> ScriptFlags {
    shebang(body).map(|(f, _)| f).unwrap_or_default()
}

/// The Lua state and the prelude's handles into it.
pub(crate) struct LuaState {
    pub(crate) lua: Lua,
    /// Runs a script under the error handler: (true, reply) or (false, err).
    run: Function,
    /// Gives a compiled script the read-only globals.
    sandbox: Function,
    /// The real `redis` table (scripts see a read-only view), where
    /// redis.call & co are bound while a script runs.
    redis: Table,
    /// Runs a library's code with a registrar for its functions (see the
    /// prelude): (true) or (false, err).
    pub(crate) load_library: Function,
    /// Calls a library function with keys and args under the error handler.
    call_function: Function,
}

impl std::fmt::Debug for Scripting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripting")
            .field("scripts", &self.scripts.len())
            .finish()
    }
}

thread_local! {
    /// The panic of a command a script ran, until the script's caller
    /// resumes it (see `execute`).
    static PANICKED: RefCell<Option<Box<dyn std::any::Any + Send>>> = const { RefCell::new(None) };
}

const PANICKED_ERROR: &str = "a command the script ran panicked";

/// Resumes the panic of a command the last script ran, if one did: called
/// once the Lua state and libraries are back in the engine.
pub(crate) fn resume_panic() {
    if let Some(payload) = PANICKED.with(|p| p.borrow_mut().take()) {
        std::panic::resume_unwind(payload);
    }
}

/// Runs `f` with the part of the engine `part` names taken out of it (the
/// Lua state, the libraries: a script's commands need the rest of the
/// engine), and puts it back even if `f` panics, before going on with the
/// panic (see [`resume_panic`]): a panic lost the script cache or every
/// function library.
pub(crate) fn with_part_taken<S: Default, T>(
    engine: &mut Engine,
    part: fn(&mut Engine) -> &mut S,
    f: impl FnOnce(&mut S, &mut Engine) -> T,
) -> T {
    let mut taken = std::mem::take(part(engine));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut taken, engine)));
    *part(engine) = taken;
    match r {
        Ok(v) => {
            resume_panic();
            v
        }
        Err(payload) => {
            // This panic wins; one a script's command left must not end
            // the next, unrelated script.
            PANICKED.with(|p| p.borrow_mut().take());
            std::panic::resume_unwind(payload)
        }
    }
}

/// The most memory one Lua state (EVAL's, or the functions') may hold.
const LUA_MEMORY_LIMIT: usize = 1 << 30;

const TIMED_OUT: &str = "Script ran past lua-time-limit without writing and was stopped";
/// What the hook passes this run's `redis.call` to have it serve the
/// others while the script is busy (crate::busy): a light userdata, which
/// no script can make, pointing at this static.
static BUSY_TOKEN: u8 = 0;

fn busy_token() -> mlua::LightUserData {
    mlua::LightUserData(std::ptr::addr_of!(BUSY_TOKEN) as *mut std::ffi::c_void)
}
const STOPPED_AFTER_WRITING: &str =
    "Script ran past written-script-time-limit after writing and was stopped; its writes are undone";

/// What a script stopped past `written-script-time-limit` after writing
/// panics with,
/// once its caller has put the engine back together (see [`resume_panic`]):
/// `Engine::guarded` then throws its record away and rebuilds the data set
/// from the log.
#[derive(Debug)]
pub struct StoppedAfterWriting;

/// A script that did not run: the error reply to send.
#[derive(Debug)]
pub struct ScriptError(pub String, pub bool);

impl ScriptError {
    /// An error not yet counted in INFO errorstats.
    pub fn new(msg: String) -> Self {
        ScriptError(msg, false)
    }

    /// Whether INFO errorstats already counted it where it arose (a
    /// command the script ran, or refused to run): the script's own reply
    /// must not count it again, as in Redis.
    pub fn counted(&self) -> bool {
        self.1
    }
}

pub fn sha1_hex(body: &[u8]) -> String {
    let mut s = String::with_capacity(40);
    for b in Sha1::digest(body) {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl LuaState {
    /// Compiles `code` as a chunk named `name`; the error is Lua's message.
    pub(crate) fn compile(&self, code: &[u8], name: &str) -> Result<Function, String> {
        self.lua
            .load(code)
            .set_name(name)
            .into_function()
            .map_err(|e| match e {
                mlua::Error::SyntaxError { message, .. } => message,
                other => other.to_string(),
            })
    }

    /// A fresh Lua state with the libraries and the prelude run.
    pub(crate) fn new() -> Result<Self, ScriptError> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG;
        // SAFETY: the debug library is what mlua calls unsafe (it can
        // reach past Lua's own checks). Only the prelude's error handler
        // keeps `debug.getinfo`; the prelude removes `debug` from the
        // globals before any script runs, and scripts cannot load
        // libraries or binary chunks.
        let lua = unsafe { Lua::unsafe_new_with(libs, LuaOptions::new()) };
        // A script's allocation past this fails as "not enough memory"
        // instead of aborting the whole server when the allocator cannot
        // serve it (`string.rep('x', 1e10)`).
        lua.set_memory_limit(LUA_MEMORY_LIMIT)
            .map_err(lua_setup_error)?;
        let sha1hex = lua
            .create_function(|_, args: MultiValue| match args.front() {
                Some(Value::String(s)) if args.len() == 1 => Ok(sha1_hex(&s.as_bytes())),
                Some(Value::Integer(i)) if args.len() == 1 => {
                    Ok(sha1_hex(i.to_string().as_bytes()))
                }
                Some(Value::Number(n)) if args.len() == 1 => {
                    Ok(sha1_hex(lua_number_string(*n).as_bytes()))
                }
                _ => Err(mlua::Error::RuntimeError(
                    "wrong number of arguments".into(),
                )),
            })
            .map_err(lua_setup_error)?;
        let bit = bit_library(&lua).map_err(lua_setup_error)?;
        let lib_ctx = LibCtx::new(&lua).map_err(lua_setup_error)?;
        let cjson = cjson_library(&lua, &lib_ctx).map_err(lua_setup_error)?;
        let cmsgpack = cmsgpack_library(&lua, &lib_ctx).map_err(lua_setup_error)?;
        let struct_lib = struct_library(&lua, &lib_ctx).map_err(lua_setup_error)?;
        let (run, sandbox, redis, load_library, call_function): (
            Function,
            Function,
            Table,
            Function,
            Function,
        ) = lua
            .load(PRELUDE)
            .set_name("@redis_prelude")
            .call((sha1hex, bit, cjson, cmsgpack, struct_lib))
            .map_err(lua_setup_error)?;
        Ok(LuaState {
            lua,
            run,
            sandbox,
            redis,
            load_library,
            call_function,
        })
    }
}

impl Scripting {
    fn state(&mut self) -> Result<&LuaState, ScriptError> {
        if self.state.is_none() {
            self.state = Some(LuaState::new()?);
        }
        self.state
            .as_ref()
            .ok_or_else(|| ScriptError::new("ERR Lua could not start".into()))
    }

    /// Compiles and caches a script; returns its SHA1.
    pub fn load(&mut self, body: &[u8]) -> Result<String, ScriptError> {
        let sha = sha1_hex(body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, skip) = shebang(body)?;
        let st = self.state()?;
        let f = st.compile(&body[skip..], "@user_script").map_err(|msg| {
            ScriptError::new(format!(
                "ERR Error compiling script (new function): {}",
                one_line(&msg)
            ))
        })?;
        let f: Function = st.sandbox.call(f).map_err(lua_setup_error)?;
        self.scripts.insert(sha.clone(), Script { f, flags });
        Ok(sha)
    }

    /// The cached script `sha`'s flags (an unknown one declares none).
    pub fn flags(&self, sha: &[u8]) -> ScriptFlags {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.scripts.get(&sha).map(|s| s.flags).unwrap_or_default()
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        self.scripts.contains_key(&sha)
    }

    pub fn flush(&mut self) {
        self.scripts.clear();
        // A fresh state also drops whatever the scripts left in Lua's heap.
        self.state = None;
    }

    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }
}

/// A Lua number as LuaBitOp reads it: rounded, then taken modulo 2^32 as
/// a signed 32-bit integer.
fn tobit(v: &Value) -> mlua::Result<i32> {
    let n = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(n) => *n,
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .ok_or_else(|| mlua::Error::RuntimeError("bad argument (number expected)".into()))?,
        _ => {
            return Err(mlua::Error::RuntimeError(
                "bad argument (number expected)".into(),
            ))
        }
    };
    Ok(n.round_ties_even().rem_euclid(4_294_967_296.0) as u32 as i32)
}

/// The `bit` library (LuaBitOp) Redis scripts can use.
fn bit_library(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let fold = |lua: &Lua, f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: MultiValue| {
            let mut it = args.iter();
            let first = it.next().ok_or_else(|| {
                mlua::Error::RuntimeError("bad argument #1 (number expected)".into())
            })?;
            let mut acc = tobit(first)?;
            for v in it {
                acc = f(acc, tobit(v)?);
            }
            Ok(acc)
        })
    };
    t.raw_set("band", fold(lua, |a, b| a & b)?)?;
    t.raw_set("bor", fold(lua, |a, b| a | b)?)?;
    t.raw_set("bxor", fold(lua, |a, b| a ^ b)?)?;
    t.raw_set("tobit", lua.create_function(|_, v: Value| tobit(&v))?)?;
    t.raw_set("bnot", lua.create_function(|_, v: Value| Ok(!tobit(&v)?))?)?;
    t.raw_set(
        "bswap",
        lua.create_function(|_, v: Value| Ok(tobit(&v)?.swap_bytes()))?,
    )?;
    let shift = |lua: &Lua, f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (x, n): (Value, Value)| {
            Ok(f(tobit(&x)?, (tobit(&n)? as u32) & 31))
        })
    };
    t.raw_set("lshift", shift(lua, |x, n| ((x as u32) << n) as i32)?)?;
    t.raw_set("rshift", shift(lua, |x, n| ((x as u32) >> n) as i32)?)?;
    t.raw_set("arshift", shift(lua, |x, n| x >> n)?)?;
    t.raw_set("rol", shift(lua, |x, n| (x as u32).rotate_left(n) as i32)?)?;
    t.raw_set("ror", shift(lua, |x, n| (x as u32).rotate_right(n) as i32)?)?;
    t.raw_set(
        "tohex",
        lua.create_function(|_, (x, n): (Value, Option<Value>)| {
            let x = tobit(&x)? as u32;
            let n = match n {
                Some(v) => tobit(&v)?,
                None => 8,
            };
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let masked = if digits == 8 {
                x
            } else {
                x & ((1u32 << (4 * digits)) - 1)
            };
            Ok(if upper {
                format!("{masked:0digits$X}")
            } else {
                format!("{masked:0digits$x}")
            })
        })?,
    )?;
    Ok(t)
}

fn lua_setup_error(e: mlua::Error) -> ScriptError {
    ScriptError::new(format!("ERR Lua could not start: {e}"))
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

/// How a script is being run.
pub struct Invocation<'a> {
    /// The script's SHA1, or the function's name: errors name it.
    pub name: &'a str,
    pub keys: &'a [Bytes],
    pub args: &'a [Bytes],
    /// EVAL_RO / EVALSHA_RO: write commands are refused.
    pub read_only: bool,
    /// `busy-reply-threshold` (`lua-time-limit`): past it the script is
    /// busy (crate::busy); where the hook cannot serve the others, one
    /// that has not written is stopped instead (0: never).
    pub time_limit: Duration,
    /// `written-script-time-limit`: one that has written is stopped and
    /// undone past it, where a log can undo it (0: never).
    pub undo_limit: Duration,
    /// The command that runs it (EVAL or FCALL and its arguments), for a
    /// busy script (crate::busy).
    pub command: &'a [Bytes],
    /// EVAL / EVALSHA rather than FCALL: which KILL stops it.
    pub eval: bool,
    /// Libraries and functions loaded (FUNCTION STATS while it is busy).
    pub libraries: (usize, usize),
}

/// Runs a cached script for `client`, writing its reply to `out`.
pub fn run(
    engine: &mut Engine,
    client: &mut ClientState,
    inv: Invocation<'_>,
    out: &mut ReplyBuf,
) -> Result<(), ScriptError> {
    // The Lua state lives in the engine; the script's commands need the
    // rest of the engine, so the state is taken out while it runs.
    with_part_taken(
        engine,
        |e| &mut e.srv.scripting,
        |scripting, engine| run_with(scripting, engine, client, inv, out),
    )
}

fn run_with(
    scripting: &mut Scripting,
    engine: &mut Engine,
    client: &mut ClientState,
    inv: Invocation<'_>,
    out: &mut ReplyBuf,
) -> Result<(), ScriptError> {
    let (f, no_writes) = scripting
        .scripts
        .get(inv.name)
        .map(|s| (s.f.clone(), s.flags.no_writes))
        .ok_or_else(|| ScriptError::new("NOSCRIPT No matching script. Please use EVAL.".into()))?;
    let st = scripting.state()?;
    let inv = Invocation {
        read_only: inv.read_only || no_writes,
        ..inv
    };
    execute(st, Callee::Script(f), engine, client, inv, out)
}

/// What a Lua run calls.
pub(crate) enum Callee {
    /// An EVAL script: KEYS and ARGV are globals.
    Script(Function),
    /// A library function (FCALL): called with the keys and args tables.
    Function(Function),
}

/// Runs `callee` in `st` for `client`, writing its reply to `out`: binds
/// redis.call & co to the engine for the run, stops a read-only run past its
/// time limit, and turns the result or the error into the reply.
pub(crate) fn execute(
    st: &LuaState,
    callee: Callee,
    engine: &mut Engine,
    client: &mut ClientState,
    inv: Invocation<'_>,
    out: &mut ReplyBuf,
) -> Result<(), ScriptError> {
    let lua = &st.lua;
    let fail = |e: mlua::Error| ScriptError::new(format!("ERR {}", one_line(&e.to_string())));
    let sequence = |items: &[Bytes]| -> Result<Table, ScriptError> {
        lua.create_sequence_from(
            items
                .iter()
                .map(|k| lua.create_string(k))
                .collect::<Result<Vec<_>, _>>()
                .map_err(fail)?,
        )
        .map_err(fail)
    };
    let keys = sequence(inv.keys)?;
    let args = sequence(inv.args)?;
    if let Callee::Script(_) = callee {
        let g = lua.globals();
        g.raw_set("KEYS", keys.clone()).map_err(fail)?;
        g.raw_set("ARGV", args.clone()).map_err(fail)?;
    }
    let redis = &st.redis;
    let runner = &st.run;

    // The script's own client: the caller's database, RESP2 unless
    // redis.setresp(3), and never blocking.
    let mut sc = ClientState::new(client.id, None);
    sc.authenticated = true;
    sc.db = client.db;
    sc.in_exec = true;
    // MONITOR shows a script's commands as `[db lua]`, as Redis does.
    sc.addr = "lua".into();
    sc.in_script = true;
    let wrote = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let serve_while_busy = engine.srv.serve_while_busy;
    {
        let wrote = wrote.clone();
        let busy_redis = redis.clone();
        let limit = inv.time_limit;
        // With a log, the data set can be rebuilt from what it committed,
        // which a script's unfinished record is not part of.
        let undo_limit = Some(inv.undo_limit).filter(|l| !l.is_zero() && engine.srv.gate.is_some());
        lua.set_hook(
            mlua::HookTriggers::new().every_nth_instruction(100_000),
            move |lua, _| {
                let elapsed = started.elapsed();
                let wrote = wrote.load(Ordering::Relaxed);
                // A threshold of 0: never busy, as Redis sets no hook.
                let msg = if serve_while_busy
                    && !limit.is_zero()
                    && elapsed >= limit
                    && !(wrote && undo_limit.is_some_and(|l| elapsed > l))
                {
                    // Busy, as in Redis: the others are served -BUSY. The
                    // engine is reached through this run's redis.call,
                    // given a value no script can make (a light userdata).
                    let killed = busy_redis
                        .raw_get::<mlua::Function>("call")
                        .and_then(|call| call.call::<bool>(busy_token()))
                        .unwrap_or(false);
                    if !killed {
                        return Ok(mlua::VmState::Continue);
                    }
                    crate::busy::KILLED
                } else if !serve_while_busy && !wrote && !limit.is_zero() && elapsed > limit {
                    TIMED_OUT
                } else if wrote && undo_limit.is_some_and(|l| elapsed > l) {
                    // Redis would answer -BUSY to everyone until SHUTDOWN
                    // NOSAVE; here the script is stopped as a panicking
                    // command is (`Engine::guarded`): its record thrown
                    // away, the data set rebuilt from the log, its client
                    // closed.
                    PANICKED.with(|p| {
                        p.borrow_mut()
                            .get_or_insert_with(|| Box::new(StoppedAfterWriting));
                    });
                    STOPPED_AFTER_WRITING
                } else {
                    return Ok(mlua::VmState::Continue);
                };
                // From now on every line raises it, so that a pcall in the
                // script cannot swallow it for good.
                let _ = lua.set_hook(mlua::HookTriggers::new().every_line(), move |_, _| {
                    Err(mlua::Error::RuntimeError(msg.into()))
                });
                Err(mlua::Error::RuntimeError(msg.into()))
            },
        )
        .map_err(fail)?;
    }
    let state = RefCell::new((engine, &mut sc));
    let pending: RefCell<Option<CallError>> = RefCell::new(None);
    let read_only = inv.read_only;
    let command = |lua: &Lua, args: MultiValue| -> Result<Value, CallError> {
        if let Some(Value::LightUserData(token)) = args.front() {
            if *token == busy_token() {
                // From the hook, between two Lua instructions.
                let Ok(mut st) = state.try_borrow_mut() else {
                    return Ok(Value::Boolean(false));
                };
                let killed = crate::busy::serve(st.0, wrote.load(Ordering::Relaxed), || {
                    crate::busy::ScriptInfo {
                        eval: inv.eval,
                        name: inv.name.to_string(),
                        command: inv.command.to_vec(),
                        started,
                        libraries: inv.libraries,
                    }
                });
                return Ok(Value::Boolean(killed));
            }
        }
        let mut st = state.borrow_mut();
        let (engine, sc) = &mut *st;
        // A command that panics must reach `Engine::guarded` (mlua would
        // turn the panic into a Lua error a pcall swallows, leaving the
        // command's record open): kept here, the script stopped at its
        // next line, and resumed once the caller has put its state back
        // (`resume_panic`).
        let run =
            std::panic::AssertUnwindSafe(|| script_call(engine, sc, lua, args, read_only, &wrote));
        match std::panic::catch_unwind(run) {
            Ok(r) => r,
            Err(payload) => {
                PANICKED.with(|p| *p.borrow_mut() = Some(payload));
                let _ = lua.set_hook(mlua::HookTriggers::new().every_line(), |_, _| {
                    Err(mlua::Error::RuntimeError(PANICKED_ERROR.into()))
                });
                Err(CallError {
                    msg: format!("ERR {PANICKED_ERROR}"),
                    counted: false,
                })
            }
        }
    };
    let result = lua.scope(|scope| {
        let command = &command;
        let pending = &pending;
        // redis.call: an error reply is raised, as a Lua error.
        let call = scope.create_function(move |lua, args: MultiValue| {
            let failed = match command(lua, args) {
                // The command ran and failed: call() counted it.
                Ok(Value::Table(t)) => match t.raw_get::<Option<String>>("err")? {
                    Some(e) => CallError {
                        msg: e,
                        counted: true,
                    },
                    None => return Ok(Value::Table(t)),
                },
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            let msg = failed.msg.clone();
            *pending.borrow_mut() = Some(failed);
            Err(mlua::Error::RuntimeError(msg))
        })?;
        // redis.pcall: an error reply is returned as {err = ...}.
        let pcall =
            scope.create_function(move |lua, args: MultiValue| match command(lua, args) {
                // The command ran and failed: call() counted it.
                Ok(Value::Table(t)) => {
                    if t.raw_get::<Option<mlua::LuaString>>("err")?.is_some() {
                        t.raw_set("counted", true)?;
                    }
                    Ok(Value::Table(t))
                }
                Ok(v) => Ok(v),
                Err(e) => error_table(lua, &e.msg, e.counted),
            })?;
        let take_pending = scope.create_function(move |_, ()| {
            Ok(pending
                .borrow_mut()
                .take()
                .map(|e| (e.msg, e.counted))
                .unzip())
        })?;
        let setresp = scope.create_function(|_, args: MultiValue| {
            if args.len() != 1 {
                return Err(mlua::Error::RuntimeError(
                    "redis.setresp() requires one argument.".into(),
                ));
            }
            // lua_tonumber: numeric strings count, anything else is 0.
            let n = match args.front() {
                Some(Value::Integer(i)) => *i as f64,
                Some(Value::Number(n)) => *n,
                Some(Value::String(s)) => crate::numbers::parse_f64(&s.as_bytes()).unwrap_or(0.0),
                _ => 0.0,
            };
            let n = n.trunc();
            if n != 2.0 && n != 3.0 {
                return Err(mlua::Error::RuntimeError(
                    "RESP version must be 2 or 3.".into(),
                ));
            }
            state.borrow_mut().1.resp3 = n == 3.0;
            Ok(())
        })?;
        redis.raw_set("call", call)?;
        redis.raw_set("pcall", pcall)?;
        redis.raw_set("__pending_error", take_pending)?;
        redis.raw_set("setresp", setresp)?;
        let r: MultiValue = match &callee {
            Callee::Script(f) => runner.call(f)?,
            Callee::Function(f) => st.call_function.call((f, &keys, &args))?,
        };
        for name in ["call", "pcall", "__pending_error", "setresp"] {
            redis.raw_set(name, Value::Nil)?;
        }
        let mut it = r.into_iter();
        let ok = matches!(it.next(), Some(Value::Boolean(true)));
        let value = it.next().unwrap_or(Value::Nil);
        if ok {
            // An error table returned as the reply fails the script like a
            // raised one (the caller writes it), keeping where it was
            // counted.
            if let Value::Table(t) = &value {
                if let Value::String(e) = t.raw_get::<Value>("err")? {
                    let e = String::from_utf8_lossy(&e.as_bytes()).into_owned();
                    let counted = t.raw_get::<Option<bool>>("counted")?.unwrap_or(false);
                    return Ok(Some(ScriptError(one_line(&e), counted)));
                }
            }
            let resp3 = state.borrow().1.resp3;
            write_reply(out, &value, resp3, 0);
            Ok(None)
        } else {
            Ok(Some(script_error(&value, inv.name)))
        }
    });
    lua.remove_hook();
    if serve_while_busy {
        crate::busy::end(state.borrow_mut().0);
    }
    match result {
        Ok(None) => Ok(()),
        Ok(Some(e)) => Err(e),
        Err(e) => Err(ScriptError::new(format!(
            "ERR {} script: {}",
            one_line(&e.to_string()),
            inv.name
        ))),
    }
}

/// `{err = msg}`, marked when INFO errorstats already counted it.
fn error_table(lua: &Lua, msg: &str, counted: bool) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set("err", msg)?;
    if counted {
        t.raw_set("counted", true)?;
    }
    Ok(Value::Table(t))
}

/// Why a `redis.call` / `redis.pcall` failed before its command ran.
struct CallError {
    msg: String,
    /// Counted in INFO errorstats already (Redis counts what it refuses to
    /// run, but not a malformed call).
    counted: bool,
}

/// The reply to a script that raised an error: the error and where.
fn script_error(v: &Value, sha: &str) -> ScriptError {
    let Value::Table(t) = v else {
        // Not through the error handler: Lua calls none for a memory error
        // ("not enough memory"). Redis' words for it, its newline a space.
        let msg = match v {
            Value::String(s) => String::from_utf8_lossy(&s.as_bytes()).into_owned(),
            _ => "execution failure".into(),
        };
        let msg: String = msg.chars().take(100).collect();
        return ScriptError::new(format!(
            "ERR Error running script {sha}, {} ",
            one_line(&msg)
        ));
    };
    let counted = t
        .raw_get::<Option<bool>>("counted")
        .ok()
        .flatten()
        .unwrap_or(false);
    let err: String = t
        .raw_get::<Option<String>>("err")
        .ok()
        .flatten()
        .unwrap_or_else(|| "ERR unknown error".into());
    let source: Option<String> = t.raw_get("source").ok().flatten();
    let line: Option<i64> = t.raw_get("line").ok().flatten();
    let msg = match (source, line) {
        (Some(s), Some(l)) => format!("{} script: {sha}, on {s}:{l}.", one_line(&err)),
        _ => format!("{} script: {sha}", one_line(&err)),
    };
    ScriptError(msg, counted)
}

/// One `redis.call` / `redis.pcall`: the reply as a Lua value, or the text
/// of an error raised before the command ran.
fn script_call(
    engine: &mut Engine,
    sc: &mut ClientState,
    lua: &Lua,
    args: MultiValue,
    read_only: bool,
    wrote: &AtomicBool,
) -> Result<Value, CallError> {
    // Malformed calls: the script's error counts, not these.
    let malformed = |msg: &str| CallError {
        msg: msg.into(),
        counted: false,
    };
    if args.is_empty() {
        return Err(malformed(
            "ERR Please specify at least one argument for this redis lib call",
        ));
    }
    let mut argv = Vec::with_capacity(args.len());
    for a in args.iter() {
        match a {
            Value::String(s) => argv.push(Bytes::copy_from_slice(&s.as_bytes())),
            Value::Integer(i) => argv.push(Bytes::from(i.to_string())),
            Value::Number(n) => argv.push(Bytes::from(lua_number_string(*n))),
            _ => {
                return Err(malformed(
                    "ERR Lua redis lib command arguments must be strings or integers",
                ))
            }
        }
    }
    // Refused commands count in errorstats here (and as rejected calls),
    // as Redis' scriptCall counts them.
    let refuse = |engine: &mut Engine, spec: Option<&CommandSpec>, msg: &str| {
        engine.srv.stats.count_error(msg);
        if let Some(spec) = spec {
            engine.srv.stats.count_rejected(crate::stats::CommandName {
                name: spec.name,
                sub: None,
            });
        }
        CallError {
            msg: msg.into(),
            counted: true,
        }
    };
    let Some(spec) = command::lookup(&argv[0]) else {
        return Err(refuse(
            engine,
            None,
            "ERR Unknown Redis command called from script",
        ));
    };
    // Blocking commands run, but never block (Ctx::can_block), as in Redis.
    if spec.flags & flags::NOSCRIPT != 0 {
        return Err(refuse(
            engine,
            Some(spec),
            "ERR This Redis command is not allowed from script",
        ));
    }
    if !spec.arity_ok(argv.len()) {
        return Err(refuse(
            engine,
            Some(spec),
            "ERR Wrong number of args calling Redis command from script",
        ));
    }
    // PUBLISH and PFCOUNT reach replicas (Redis' MAY_REPLICATE): not from
    // a read-only script either.
    let may_replicate = matches!(spec.name, "publish" | "spublish" | "pfcount");
    if read_only && (spec.flags & flags::WRITE != 0 || may_replicate) {
        return Err(refuse(
            engine,
            Some(spec),
            "ERR Write commands are not allowed from read-only scripts.",
        ));
    }
    // A script that started over maxmemory may not grow the data set
    // before its first write (Redis' script_oom).
    if engine.srv.memory.max > 0
        && engine.srv.script_oom
        && spec.flags & flags::DENYOOM != 0
        && !wrote.load(Ordering::Relaxed)
    {
        return Err(refuse(engine, Some(spec), crate::maxmemory::OOM_ERROR));
    }
    if spec.flags & flags::WRITE != 0 && engine.srv.min_replicas_to_write > 0 {
        return Err(refuse(engine, Some(spec), crate::engine::NOREPLICAS_ERROR));
    }
    if spec.flags & flags::WRITE != 0 {
        wrote.store(true, Ordering::Relaxed);
    }
    let mut buf = ReplyBuf::new(sc.resp3);
    engine.call_from_script(spec, sc, &argv, &mut buf);
    let mut at = 0;
    parse_reply(lua, &buf.buf, &mut at, 0).map_err(|e| malformed(&format!("ERR {e}")))
}

/// Lua's own number formatting (`%.14g`), as Redis passes numbers.
pub(crate) fn lua_number_string(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        return format!("{}", n as i64);
    }
    let s = format!("{n:.13e}");
    // %.14g: up to 14 significant digits, no trailing zeros.
    let v: f64 = s.parse().unwrap_or(n);
    let mut t = format!("{v}");
    if t.len() > 20 {
        t = format!("{v:e}");
    }
    t
}

/// Converts one RESP reply (as the script's client got it) to Lua, as
/// Redis' redisProtocolToLuaType does.
fn parse_reply(lua: &Lua, b: &[u8], at: &mut usize, depth: usize) -> mlua::Result<Value> {
    let line = |at: &mut usize| -> mlua::Result<&[u8]> {
        let rest = &b[*at..];
        let end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| mlua::Error::RuntimeError("truncated reply".into()))?;
        *at += end + 2;
        Ok(&rest[1..end])
    };
    let num = |s: &[u8]| -> i64 { crate::numbers::parse_i64(s).unwrap_or(0) };
    if *at >= b.len() || depth > 64 {
        return Ok(Value::Nil);
    }
    let kind = b[*at];
    let head = line(at)?;
    Ok(match kind {
        b':' => Value::Integer(num(head)),
        b'$' | b'=' => {
            let n = num(head);
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let n = n as usize;
            let body = b.get(*at..*at + n).unwrap_or_default();
            *at += n + 2;
            let body = if kind == b'=' && body.len() >= 4 {
                &body[4..]
            } else {
                body
            };
            Value::String(lua.create_string(body)?)
        }
        b'+' => {
            let t = lua.create_table()?;
            t.raw_set("ok", lua.create_string(head)?)?;
            Value::Table(t)
        }
        b'-' => {
            let t = lua.create_table()?;
            t.raw_set("err", lua.create_string(head)?)?;
            Value::Table(t)
        }
        b'*' | b'~' | b'>' => {
            let n = num(head);
            if n < 0 {
                return Ok(Value::Boolean(false));
            }
            let t = lua.create_table()?;
            for i in 1..=n {
                let v = parse_reply(lua, b, at, depth + 1)?;
                if kind == b'~' {
                    t.raw_set(v, true)?;
                } else {
                    t.raw_set(i, v)?;
                }
            }
            if kind == b'~' {
                let w = lua.create_table()?;
                w.raw_set("set", t)?;
                Value::Table(w)
            } else {
                Value::Table(t)
            }
        }
        b'%' => {
            let t = lua.create_table()?;
            for _ in 0..num(head).max(0) {
                let k = parse_reply(lua, b, at, depth + 1)?;
                let v = parse_reply(lua, b, at, depth + 1)?;
                t.raw_set(k, v)?;
            }
            let w = lua.create_table()?;
            w.raw_set("map", t)?;
            Value::Table(w)
        }
        b'_' => Value::Nil,
        b'#' => Value::Boolean(head == b"t"),
        b',' => {
            let t = lua.create_table()?;
            t.raw_set("double", crate::numbers::parse_f64(head).unwrap_or(0.0))?;
            Value::Table(t)
        }
        b'(' => {
            let t = lua.create_table()?;
            t.raw_set("big_number", lua.create_string(head)?)?;
            Value::Table(t)
        }
        _ => Value::Nil,
    })
}

/// Converts a script's return value to the caller's reply, as Redis'
/// luaReplyToRedisReply does.
fn write_reply(out: &mut ReplyBuf, v: &Value, script_resp3: bool, depth: usize) {
    if depth > 64 {
        out.error("ERR reached lua stack limit");
        return;
    }
    match v {
        Value::String(s) => out.bulk(&s.as_bytes()),
        Value::Boolean(true) => {
            if script_resp3 {
                out.bool(true)
            } else {
                out.int(1)
            }
        }
        Value::Boolean(false) => {
            if script_resp3 {
                out.bool(false)
            } else {
                out.null()
            }
        }
        Value::Integer(i) => out.int(*i),
        Value::Number(n) => out.int(*n as i64),
        Value::Table(t) => {
            // Each field counts only with the Lua type Redis checks for
            // ({err = 5} is an empty array, not an error).
            let field = |name: &str| t.raw_get::<Value>(name).unwrap_or(Value::Nil);
            if let Value::String(e) = field("err") {
                let e = String::from_utf8_lossy(&e.as_bytes()).into_owned();
                out.error(&one_line(&e));
                return;
            }
            if let Value::String(s) = field("ok") {
                let s = String::from_utf8_lossy(&s.as_bytes()).into_owned();
                out.simple(&one_line(&s));
                return;
            }
            match field("double") {
                Value::Number(d) => return out.double(d),
                Value::Integer(i) => return out.double(i as f64),
                _ => {}
            }
            if let Value::String(n) = field("big_number") {
                let digits: Vec<u8> = n
                    .as_bytes()
                    .iter()
                    .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b })
                    .collect();
                return out.big_number(&digits);
            }
            if let Value::Table(v) = field("verbatim_string") {
                if let (Ok(Value::String(format)), Ok(Value::String(s))) =
                    (v.raw_get::<Value>("format"), v.raw_get::<Value>("string"))
                {
                    return out.verbatim_as(&s.as_bytes(), &format.as_bytes());
                }
            }
            if let Ok(Some(m)) = t.raw_get::<Option<Table>>("map") {
                let pairs: Vec<(Value, Value)> = m.pairs().filter_map(Result::ok).collect();
                out.map(pairs.len());
                for (k, v) in &pairs {
                    write_reply(out, k, script_resp3, depth + 1);
                    write_reply(out, v, script_resp3, depth + 1);
                }
                return;
            }
            if let Ok(Some(set)) = t.raw_get::<Option<Table>>("set") {
                let members: Vec<Value> = set
                    .pairs::<Value, Value>()
                    .filter_map(|kv| kv.ok().map(|(k, _)| k))
                    .collect();
                out.set(members.len());
                for m in &members {
                    write_reply(out, m, script_resp3, depth + 1);
                }
                return;
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(v) => items.push(v),
                }
            }
            out.array(items.len());
            for item in &items {
                write_reply(out, item, script_resp3, depth + 1);
            }
        }
        _ => out.null(),
    }
}
