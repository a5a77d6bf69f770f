//! The command table: every command declared once, with its arity, flags and
//! key positions. Dispatch, COMMAND INFO/GETKEYS, and the hazard tracker all
//! read the same declaration, so "which keys does this touch" has one answer.
//!
//! One module per family, each exporting `COMMANDS`; adding a command is one
//! entry in its family's table and one handler function.

pub mod acl;
pub mod bitops;
pub mod client;
pub mod cluster;
pub mod connection;
pub mod geo;
pub mod hash;
pub mod help;
pub mod hyperloglog;
pub mod introspection;
pub mod keys;
pub mod list;
pub mod pubsub;
mod random_picks;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod set;
pub mod sort;
pub mod stream;
pub mod stream_group;
pub mod string;
pub mod transaction;
pub mod zset;

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::client::ClientState;
use crate::engine::{Ctx, Engine};
use crate::error::CmdResult;
use crate::resp::ReplyBuf;

/// Command flags, as in Redis' command table.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    /// Allowed before AUTH (AUTH, HELLO, QUIT).
    pub const NO_AUTH: u32 = 1 << 10;
    /// Runs, not queued, inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
    pub const MULTI_CONTROL: u32 = 1 << 11;
    /// Refused inside MULTI.
    pub const NO_MULTI: u32 = 1 << 12;
    /// Allowed in RESP2 subscriber mode.
    pub const PUBSUB_CONTEXT: u32 = 1 << 13;
    /// Commands that take no keys but observe the whole keyspace (DBSIZE,
    /// KEYS, SCAN, FLUSH*): the hazard tracker waits for the newest LSN.
    pub const WHOLE_KEYSPACE: u32 = 1 << 14;
    pub const MOVABLE_KEYS: u32 = 1 << 15;
    pub const SORT_FOR_SCRIPT: u32 = 1 << 16;
    /// Not logged by SLOWLOG itself (EXEC: the commands it ran are).
    pub const SKIP_SLOWLOG: u32 = 1 << 17;
    // Shown by COMMAND INFO as Redis declares them; memlog's behaviour
    // behind them lives elsewhere (MONITOR's feed of scripts, the script
    // key checks, what runs beside a busy script: crate::busy) or does not
    // exist (no async loading).
    pub const SKIP_MONITOR: u32 = 1 << 18;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 19;
    pub const NO_ASYNC_LOADING: u32 = 1 << 20;
    pub const ALLOW_BUSY: u32 = 1 << 21;

    /// Names for COMMAND INFO, in Redis' order (addReplyFlagsForCommand).
    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLE_KEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
    ];
}

/// Handlers take a [`Ctx`]; the few that run other commands (EXEC) take the
/// whole engine.
#[derive(Clone, Copy)]
pub enum Handler {
    Ctx(fn(&mut Ctx) -> CmdResult),
    Engine(fn(&mut Engine, &mut ClientState, &[Bytes], &mut ReplyBuf) -> CmdResult),
}

impl std::fmt::Debug for Handler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Handler")
    }
}

/// Finds the key indexes of a command with movable keys.
pub type KeysFn = fn(&[Bytes]) -> Result<Vec<usize>, crate::CmdError>;

/// A command's declaration.
#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Lower-case name.
    pub name: &'static str,
    /// Redis arity: N means exactly N arguments (name included), -N at least N.
    pub arity: i32,
    pub flags: u32,
    /// Legacy key spec: first key index, last (negative from the end), step.
    pub first_key: i32,
    pub last_key: i32,
    pub step: i32,
    /// For commands whose keys move (ZUNIONSTORE numkeys, LMPOP, SORT STORE):
    /// returns the key indexes, or an error for malformed arguments.
    pub keys_fn: Option<KeysFn>,
    pub handler: Handler,
    /// Redis' command group (COMMAND DOCS).
    pub group: &'static str,
    /// A container command's subcommands and their arities (CONFIG GET,
    /// CLIENT LIST, ...): stats and latency are kept per subcommand.
    pub subcommands: Option<&'static [(&'static str, i32)]>,
}

impl CommandSpec {
    /// A command with a fixed key spec.
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        keys: (i32, i32, i32),
        group: &'static str,
        handler: fn(&mut Ctx) -> CmdResult,
    ) -> Self {
        Self {
            name,
            arity,
            flags,
            first_key: keys.0,
            last_key: keys.1,
            step: keys.2,
            keys_fn: None,
            handler: Handler::Ctx(handler),
            group,
            subcommands: None,
        }
    }

    /// Declares a container command's subcommand table.
    pub const fn with_subcommands(mut self, subs: &'static [(&'static str, i32)]) -> Self {
        self.subcommands = Some(subs);
        self
    }

    /// The subcommand `argv` names, if this is a container and it is one
    /// of its subcommands.
    pub fn subcommand_of(&self, argv: &[Bytes]) -> Option<&'static str> {
        let asked = argv.get(1)?;
        self.subcommands?
            .iter()
            .find(|(n, _)| asked.eq_ignore_ascii_case(n.as_bytes()))
            .map(|(n, _)| *n)
    }

    /// Adds a function that finds movable keys.
    pub const fn with_keys_fn(mut self, f: KeysFn) -> Self {
        self.keys_fn = Some(f);
        self.flags |= flags::MOVABLE_KEYS;
        self
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        if a >= 0 {
            argc == a as usize
        } else {
            argc >= (-a) as usize
        }
    }

    /// The indexes of the keys in `argv`.
    pub fn key_indexes(&self, argv: &[Bytes]) -> Result<Vec<usize>, crate::CmdError> {
        if let Some(f) = self.keys_fn {
            return f(argv);
        }
        if self.first_key <= 0 {
            return Ok(Vec::new());
        }
        let argc = argv.len() as i32;
        let last = if self.last_key < 0 {
            argc + self.last_key
        } else {
            self.last_key
        };
        let mut v = Vec::new();
        let mut i = self.first_key;
        while i <= last && i < argc {
            v.push(i as usize);
            i += self.step.max(1);
        }
        Ok(v)
    }
}

/// Keys from index `numkeys_at + 1`, counted by the integer at `numkeys_at`
/// (ZUNIONSTORE dest numkeys k..., LMPOP numkeys k..., ...).
pub fn numkeys_keys(
    argv: &[Bytes],
    numkeys_at: usize,
    leading: &[usize],
) -> Result<Vec<usize>, crate::CmdError> {
    let n = argv
        .get(numkeys_at)
        .and_then(|a| crate::numbers::parse_i64(a))
        .ok_or(crate::CmdError::NotInteger)?;
    if n <= 0 {
        return Err(crate::CmdError::err("numkeys should be greater than 0"));
    }
    let n = n as usize;
    if numkeys_at + n >= argv.len() {
        return Err(crate::CmdError::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    let mut v = leading.to_vec();
    v.extend(numkeys_at + 1..=numkeys_at + n);
    Ok(v)
}

fn table() -> &'static HashMap<&'static str, &'static CommandSpec> {
    static TABLE: OnceLock<HashMap<&'static str, &'static CommandSpec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut m = HashMap::new();
        for family in [
            connection::COMMANDS,
            keys::COMMANDS,
            sort::COMMANDS,
            string::COMMANDS,
            bitops::COMMANDS,
            hyperloglog::COMMANDS,
            geo::COMMANDS,
            list::COMMANDS,
            hash::COMMANDS,
            set::COMMANDS,
            zset::COMMANDS,
            stream::COMMANDS,
            stream_group::COMMANDS,
            transaction::COMMANDS,
            pubsub::COMMANDS,
            server::COMMANDS,
            client::COMMANDS,
            introspection::COMMANDS,
            acl::COMMANDS,
            cluster::COMMANDS,
            replication::COMMANDS,
            scripting::COMMANDS,
        ] {
            for spec in family {
                m.insert(spec.name, spec);
            }
        }
        m
    })
}

/// Every command, for COMMAND and COMMAND COUNT.
pub fn all() -> impl Iterator<Item = &'static CommandSpec> {
    table().values().copied()
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<&'static CommandSpec> {
    let mut buf = [0u8; 32];
    if name.len() > buf.len() {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let s = std::str::from_utf8(&buf[..name.len()]).ok()?;
    table().get(s).copied()
}
