//! ACL: the one user memlog has. The `default` user holds every permission;
//! its password is `requirepass` (AUTH and HELLO AUTH check it). The read
//! side of ACL answers as Redis 7.0 does for that configuration, failed
//! authentications go to ACL LOG, and creating users is refused: there are
//! no per-user permissions to enforce.

use std::collections::VecDeque;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::flags::*;
use super::introspection::acl_categories;
use super::server::{subcommand, subcommand_syntax_error, write_help};
use super::{help, CommandSpec};
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new(
    "acl",
    -2,
    ADMIN | NOSCRIPT | LOADING | STALE,
    (0, 0, 0),
    "server",
    acl,
)
.with_subcommands(SUBS)];

/// Redis 7.0's ACL subcommands and their arities.
const SUBS: &[(&str, i32)] = &[
    ("cat", -2),
    ("deluser", -3),
    ("dryrun", -4),
    ("genpass", -2),
    ("getuser", 3),
    ("help", 2),
    ("list", 2),
    ("load", 2),
    ("log", -2),
    ("save", 2),
    ("setuser", -3),
    ("users", 2),
    ("whoami", 2),
];

/// Redis 7.0's ACL categories, in its order.
const CATEGORIES: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
];

/// Entries of the same kind within this long are counted as one (Redis'
/// ACL_LOG_GROUPING_MAX_TIME_DELTA).
const GROUPING_MS: i64 = 60_000;

/// One ACL LOG entry: a denied authentication (the only denial memlog has).
#[derive(Debug, Clone)]
struct Denial {
    count: u64,
    context: &'static str,
    /// The command as the client typed it (`AUTH`, `hello`, ...).
    object: String,
    username: String,
    created_ms: i64,
    client_info: String,
}

/// ACL LOG: newest first, at most `acllog-max-len` entries.
#[derive(Debug, Default)]
pub struct AclLog {
    entries: VecDeque<Denial>,
}

impl AclLog {
    /// Records a failed AUTH or HELLO AUTH (`command`, as typed). `in_multi`:
    /// run by EXEC.
    pub fn auth_denied(
        &mut self,
        command: &[u8],
        username: &[u8],
        in_multi: bool,
        client_info: String,
        now_ms: i64,
        max_len: usize,
    ) {
        let context = if in_multi { "multi" } else { "toplevel" };
        let object = String::from_utf8_lossy(command).into_owned();
        let username = String::from_utf8_lossy(username).into_owned();
        let same = self.entries.iter().position(|e| {
            e.context == context
                && e.object == object
                && e.username == username
                && now_ms - e.created_ms <= GROUPING_MS
        });
        let entry = match same {
            Some(i) => self.entries.remove(i).map(|mut e| {
                e.count += 1;
                e.client_info = client_info;
                e
            }),
            None => Some(Denial {
                count: 1,
                context,
                object,
                username,
                created_ms: now_ms,
                client_info,
            }),
        };
        if let Some(e) = entry {
            self.entries.push_front(e);
        }
        self.entries.truncate(max_len);
    }
}

fn acl(ctx: &mut Ctx) -> CmdResult {
    match subcommand(ctx.args, "acl", SUBS)? {
        "whoami" => ctx.out.bulk_str("default"),
        "users" => {
            ctx.out.array(1);
            ctx.out.bulk_str("default");
        }
        "list" => {
            let line = format!("user default on {} ~* &* +@all", password_rule(ctx));
            ctx.out.array(1);
            ctx.out.bulk_str(&line);
        }
        "getuser" => getuser(ctx),
        "cat" => cat(ctx)?,
        "genpass" => genpass(ctx)?,
        "dryrun" => dryrun(ctx)?,
        "deluser" => {
            if ctx.args[2..].iter().any(|u| u.as_ref() == b"default") {
                return Err(CmdError::err("The 'default' user cannot be removed"));
            }
            ctx.out.int(0);
        }
        "log" => log(ctx)?,
        "setuser" => {
            return Err(CmdError::err(
                "ACL SETUSER is not supported: memlog has only the default user (CONFIG SET requirepass sets its password)",
            ))
        }
        "load" | "save" => {
            return Err(CmdError::err(
                "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.",
            ))
        }
        _ => write_help(ctx.out, help::ACL),
    }
    Ok(())
}

/// `nopass`, or `#` and the SHA-256 of the password, as ACL LIST shows it.
fn password_rule(ctx: &Ctx) -> String {
    match password_hash(ctx) {
        Some(h) => format!("#{h}"),
        None => "nopass".into(),
    }
}

fn password_hash(ctx: &Ctx) -> Option<String> {
    let p = ctx.srv.requirepass.as_ref()?;
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(p.as_bytes()) {
        let _ = write!(hex, "{b:02x}");
    }
    Some(hex)
}

fn getuser(ctx: &mut Ctx) {
    if ctx.args[2].as_ref() != b"default" {
        ctx.out.null();
        return;
    }
    let hash = password_hash(ctx);
    let out = &mut *ctx.out;
    out.map(6);
    out.bulk_str("flags");
    out.set(if hash.is_some() { 1 } else { 2 });
    out.bulk_str("on");
    if hash.is_none() {
        out.bulk_str("nopass");
    }
    out.bulk_str("passwords");
    match &hash {
        Some(h) => {
            out.array(1);
            out.bulk_str(h);
        }
        None => out.array(0),
    }
    for (k, v) in [("commands", "+@all"), ("keys", "~*"), ("channels", "&*")] {
        out.bulk_str(k);
        out.bulk_str(v);
    }
    out.bulk_str("selectors");
    out.array(0);
}

fn cat(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(subcommand_syntax_error(ctx.args, "acl"));
    }
    if ctx.argc() == 2 {
        ctx.out.array(CATEGORIES.len());
        for c in CATEGORIES {
            ctx.out.bulk_str(c);
        }
        return Ok(());
    }
    let asked = String::from_utf8_lossy(&ctx.args[2]).to_ascii_lowercase();
    let Some(cat) = CATEGORIES.iter().find(|c| **c == asked) else {
        return Err(CmdError::err(format!(
            "Unknown category '{}'",
            String::from_utf8_lossy(&ctx.args[2])
        )));
    };
    let tag = format!("@{cat}");
    let mut names: Vec<&str> = super::all()
        .filter(|s| acl_categories(s).contains(&tag.as_str()))
        .map(|s| s.name)
        .collect();
    names.sort_unstable();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk_str(n);
    }
    Ok(())
}

fn genpass(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(subcommand_syntax_error(ctx.args, "acl"));
    }
    let bits = if ctx.argc() == 3 {
        let b = ctx.int_arg(2)?;
        if !(1..=4096).contains(&b) {
            return Err(CmdError::err(
                "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
            ));
        }
        b as usize
    } else {
        256
    };
    // thread_rng is a CSPRNG (ChaCha, seeded from the OS), as a password needs.
    use rand::Rng;
    let mut r = rand::thread_rng();
    let hex: String = (0..bits.div_ceil(4))
        .map(|_| char::from_digit(r.gen_range(0..16), 16).unwrap_or('0'))
        .collect();
    ctx.out.bulk_str(&hex);
    Ok(())
}

/// The default user may run anything: OK once the command line is valid.
fn dryrun(ctx: &mut Ctx) -> CmdResult {
    if ctx.args[2].as_ref() != b"default" {
        return Err(CmdError::err(format!(
            "User '{}' not found",
            String::from_utf8_lossy(&ctx.args[2])
        )));
    }
    let Some(spec) = super::lookup(&ctx.args[3]) else {
        return Err(CmdError::err(format!(
            "Command '{}' not found",
            String::from_utf8_lossy(&ctx.args[3])
        )));
    };
    if !spec.arity_ok(ctx.argc() - 3) {
        return Err(CmdError::WrongArity(spec.name.to_string()));
    }
    ctx.out.ok();
    Ok(())
}

fn log(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(subcommand_syntax_error(ctx.args, "acl"));
    }
    let mut count = 10;
    if ctx.argc() == 3 {
        if ctx.arg_is(2, "reset") {
            ctx.srv.acl_log.entries.clear();
            ctx.out.ok();
            return Ok(());
        }
        count = ctx.int_arg(2)?;
    }
    let now = crate::keyspace::unix_ms();
    let n = usize::try_from(count)
        .unwrap_or(0)
        .min(ctx.srv.acl_log.entries.len());
    let out = &mut *ctx.out;
    out.array(n);
    for e in ctx.srv.acl_log.entries.iter().take(n) {
        out.map(7);
        out.bulk_str("count");
        out.int(e.count as i64);
        out.bulk_str("reason");
        out.bulk_str("auth");
        out.bulk_str("context");
        out.bulk_str(e.context);
        out.bulk_str("object");
        out.bulk_str(&e.object);
        out.bulk_str("username");
        out.bulk_str(&e.username);
        out.bulk_str("age-seconds");
        out.double((now - e.created_ms) as f64 / 1000.0);
        out.bulk_str("client-info");
        out.bulk_str(&e.client_info);
    }
    Ok(())
}
