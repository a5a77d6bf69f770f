//! COMMAND: the command table as clients see it (COMMAND, COUNT, LIST,
//! INFO, DOCS, GETKEYS, GETKEYSANDFLAGS), in Redis 7.0's reply shapes.

use bytes::Bytes;

use super::flags::*;
use super::server::{subcommand, write_help};
use super::{help, CommandSpec};
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::resp::ReplyBuf;

pub static COMMANDS: &[CommandSpec] =
    &[
        CommandSpec::new("command", -1, LOADING | STALE, (0, 0, 0), "server", command)
            .with_subcommands(SUBS),
    ];

const SUBS: &[(&str, i32)] = &[
    ("count", 2),
    ("docs", -2),
    ("getkeys", -4),
    ("getkeysandflags", -4),
    ("help", 2),
    ("info", -2),
    ("list", -2),
];

/// Every command, sorted by name (a stable order for COMMAND and LIST).
fn sorted() -> Vec<&'static CommandSpec> {
    let mut v: Vec<_> = super::all().collect();
    v.sort_by_key(|s| s.name);
    v
}

/// Redis' ACL categories for a command, derived from its flags and group.
pub fn acl_categories(s: &CommandSpec) -> Vec<&'static str> {
    let mut v = Vec::new();
    if s.flags & WRITE != 0 {
        v.push("@write");
    }
    if s.flags & READONLY != 0 {
        v.push("@read");
    }
    if s.flags & ADMIN != 0 {
        v.push("@admin");
        v.push("@dangerous");
    }
    if s.flags & PUBSUB != 0 {
        v.push("@pubsub");
    }
    v.push(match s.group {
        "string" => "@string",
        "list" => "@list",
        "hash" => "@hash",
        "set" => "@set",
        "sorted-set" | "sorted_set" | "zset" => "@sortedset",
        "generic" | "keys" => "@keyspace",
        "connection" => "@connection",
        "transactions" => "@transaction",
        "pubsub" => "@pubsub",
        "scripting" => "@scripting",
        "hyperloglog" => "@hyperloglog",
        "geo" => "@geo",
        _ => "",
    });
    v.retain(|c| !c.is_empty());
    v.dedup();
    if s.flags & FAST != 0 {
        v.push("@fast");
    } else {
        v.push("@slow");
    }
    if s.flags & BLOCKING != 0 {
        v.push("@blocking");
    }
    v
}

/// The key flags COMMAND GETKEYSANDFLAGS and key specs show.
fn key_flags(s: &CommandSpec) -> &'static [&'static str] {
    if s.flags & WRITE != 0 {
        &["RW", "access", "update"]
    } else {
        &["RO", "access"]
    }
}

fn write_key_specs(out: &mut ReplyBuf, s: &CommandSpec) {
    // Key specs and subcommands are sets in Redis 7.0's RESP3 reply.
    if s.first_key <= 0 && s.keys_fn.is_none() {
        out.set(0);
        return;
    }
    out.set(1);
    out.map(3);
    out.bulk_str("flags");
    let f = key_flags(s);
    out.set(f.len());
    for x in f {
        out.simple(x);
    }
    out.bulk_str("begin_search");
    if s.keys_fn.is_some() {
        out.map(2);
        out.bulk_str("type");
        out.bulk_str("unknown");
        out.bulk_str("spec");
        out.map(0);
        out.bulk_str("find_keys");
        out.map(2);
        out.bulk_str("type");
        out.bulk_str("unknown");
        out.bulk_str("spec");
        out.map(0);
        return;
    }
    out.map(2);
    out.bulk_str("type");
    out.bulk_str("index");
    out.bulk_str("spec");
    out.map(1);
    out.bulk_str("index");
    out.int(s.first_key as i64);
    out.bulk_str("find_keys");
    out.map(2);
    out.bulk_str("type");
    out.bulk_str("range");
    out.bulk_str("spec");
    out.map(3);
    out.bulk_str("lastkey");
    out.int(if s.last_key < 0 {
        s.last_key as i64
    } else {
        (s.last_key - s.first_key) as i64
    });
    out.bulk_str("keystep");
    out.int(s.step as i64);
    out.bulk_str("limit");
    out.int(0);
}

/// One COMMAND INFO entry.
pub fn write_info(out: &mut ReplyBuf, s: &CommandSpec) {
    out.array(10);
    out.bulk_str(s.name);
    out.int(s.arity as i64);
    // A container (CONFIG, OBJECT, XINFO, ...) has neither flags nor keys
    // of its own in Redis: its subcommands do (memlog keeps them on the
    // container, which its dispatch and key tracking use).
    // COMMAND is the one container Redis gives flags of its own.
    let container = s.subcommands.is_some() && s.name != "command";
    let flags: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| s.flags & bit != 0 && !container)
        .map(|(_, n)| *n)
        .collect();
    out.set(flags.len());
    for f in flags {
        out.simple(f);
    }
    let keys = if container {
        (0, 0, 0)
    } else {
        (s.first_key, s.last_key, s.step)
    };
    out.int(keys.0 as i64);
    out.int(keys.1 as i64);
    out.int(keys.2 as i64);
    let cats = acl_categories(s);
    out.set(cats.len());
    for c in cats {
        out.simple(c);
    }
    out.set(0);
    if container {
        out.set(0);
    } else {
        write_key_specs(out, s);
    }
    out.set(0);
}

fn write_docs(out: &mut ReplyBuf, s: &CommandSpec) {
    out.bulk_str(s.name);
    out.map(3);
    out.bulk_str("summary");
    out.bulk_str(&format!("The {} command", s.name.to_ascii_uppercase()));
    out.bulk_str("since");
    out.bulk_str("1.0.0");
    out.bulk_str("group");
    out.bulk_str(s.group);
}

/// The key indexes of a full command line, as COMMAND GETKEYS checks it.
fn getkeys(args: &[Bytes]) -> Result<(&'static CommandSpec, Vec<usize>), CmdError> {
    let cmdline = &args[2..];
    let spec =
        super::lookup(&cmdline[0]).ok_or_else(|| CmdError::err("Invalid command specified"))?;
    if let Some(key) = super::server::memory_usage_key(cmdline) {
        return Ok((spec, vec![key]));
    }
    if spec.first_key <= 0 && spec.keys_fn.is_none() {
        return Err(CmdError::err("The command has no key arguments"));
    }
    if !spec.arity_ok(cmdline.len()) {
        return Err(CmdError::err(
            "Invalid number of arguments specified for command",
        ));
    }
    match spec.key_indexes(cmdline) {
        Ok(v) if !v.is_empty() => Ok((spec, v)),
        // Scripts may take no keys.
        Ok(v) if spec.flags & super::flags::NO_MANDATORY_KEYS != 0 => Ok((spec, v)),
        _ => Err(CmdError::err("Invalid arguments specified for command")),
    }
}

fn command(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    if args.len() == 1 {
        let all = sorted();
        ctx.out.array(all.len());
        for s in all {
            write_info(ctx.out, s);
        }
        return Ok(());
    }
    match subcommand(args, "command", SUBS)? {
        "count" => ctx.out.int(super::all().count() as i64),
        "list" => {
            // Every command and every subcommand (`parent|sub`); a
            // subcommand is in its parent's ACL categories.
            let mut names: Vec<(String, &CommandSpec)> = Vec::new();
            for s in sorted() {
                names.push((s.name.to_string(), s));
                for (sub, _) in s.subcommands.unwrap_or_default() {
                    names.push((format!("{}|{sub}", s.name), s));
                }
            }
            if args.len() > 2 {
                if args.len() != 5 || !ctx.arg_is(2, "FILTERBY") {
                    return Err(CmdError::Syntax);
                }
                let v = &args[4];
                if ctx.arg_is(3, "MODULE") {
                    names.clear();
                } else if ctx.arg_is(3, "ACLCAT") {
                    let cat = format!("@{}", String::from_utf8_lossy(v).to_ascii_lowercase());
                    names.retain(|(_, s)| acl_categories(s).contains(&cat.as_str()));
                } else if ctx.arg_is(3, "PATTERN") {
                    names.retain(|(n, _)| crate::glob::glob_match(v, n.as_bytes(), true));
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            ctx.out.array(names.len());
            for (n, _) in names {
                ctx.out.bulk_str(&n);
            }
        }
        "info" => {
            if args.len() == 2 {
                let all = sorted();
                ctx.out.array(all.len());
                for s in all {
                    write_info(ctx.out, s);
                }
            } else {
                ctx.out.array(args.len() - 2);
                for a in &args[2..] {
                    match super::lookup(a) {
                        Some(s) => write_info(ctx.out, s),
                        None => ctx.out.null(),
                    }
                }
            }
        }
        "docs" => {
            let specs: Vec<&CommandSpec> = if args.len() == 2 {
                sorted()
            } else {
                args[2..].iter().filter_map(|a| super::lookup(a)).collect()
            };
            ctx.out.map(specs.len());
            for s in specs {
                write_docs(ctx.out, s);
            }
        }
        "getkeys" => {
            let (_, idx) = getkeys(args)?;
            ctx.out.array(idx.len());
            for i in idx {
                ctx.out.bulk(&args[2 + i]);
            }
        }
        "getkeysandflags" => {
            let (spec, idx) = getkeys(args)?;
            ctx.out.array(idx.len());
            for i in idx {
                ctx.out.array(2);
                ctx.out.bulk(&args[2 + i]);
                let f = key_flags(spec);
                ctx.out.set(f.len());
                for x in f {
                    ctx.out.simple(x);
                }
            }
        }
        _ => write_help(ctx.out, help::COMMAND),
    }
    Ok(())
}
