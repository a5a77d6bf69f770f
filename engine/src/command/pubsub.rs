//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, (S)PUBLISH, PUBSUB.
//! Shard channels (Redis 7's sharded pub/sub) are a namespace of their own;
//! without a cluster every one of them is on this server.

use bytes::Bytes;

use super::flags::*;
use super::CommandSpec;
use crate::client::{Push, ReplyMode};
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};
use crate::glob::glob_match;
use crate::pubsub::Namespace;
use crate::resp::ReplyBuf;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "subscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        subscribe,
    ),
    CommandSpec::new(
        "unsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        unsubscribe,
    ),
    CommandSpec::new(
        "psubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        psubscribe,
    ),
    CommandSpec::new(
        "punsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        punsubscribe,
    ),
    CommandSpec::new(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        (0, 0, 0),
        "pubsub",
        publish,
    ),
    CommandSpec::new(
        "ssubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        ssubscribe,
    ),
    CommandSpec::new(
        "sunsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CONTEXT,
        (0, 0, 0),
        "pubsub",
        sunsubscribe,
    ),
    CommandSpec::new(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST,
        (0, 0, 0),
        "pubsub",
        spublish,
    ),
    CommandSpec::new(
        "pubsub",
        -2,
        PUBSUB | LOADING | STALE,
        (0, 0, 0),
        "pubsub",
        pubsub,
    )
    .with_subcommands(PUBSUB_SUBS),
];

/// Confirms a (un)subscription with the client's count in `ns` (shard
/// channels are counted apart from channels and patterns, as in Redis).
fn confirm(ctx: &mut Ctx, ns: Namespace, kind: &[u8], name: Option<&[u8]>) {
    let n = match ns {
        Namespace::Shard => ctx.client.shard_channels.len(),
        _ => ctx.client.subscription_count(),
    } as i64;
    // A confirmation is a push (an array in RESP2), which CLIENT REPLY
    // OFF/SKIP does not silence: Redis sends pushes regardless of the mode.
    let silenced = !matches!(ctx.client.reply_mode, ReplyMode::On);
    let mut side = ReplyBuf::new(ctx.client.resp3);
    let out: &mut ReplyBuf = if silenced { &mut side } else { ctx.out };
    out.push(3);
    out.bulk(kind);
    match name {
        Some(c) => out.bulk(c),
        None => out.null(),
    }
    out.int(n);
    if !side.is_empty() {
        ctx.client.push(Push::Raw(side.buf));
    }
}

/// (P|S)SUBSCRIBE: each name, confirmed as `kind`.
fn subscribe_to(ctx: &mut Ctx, ns: Namespace, kind: &[u8]) -> CmdResult {
    let args = ctx.args;
    for name in &args[1..] {
        // A copy: a slice of the argument would hold the connection's whole
        // read buffer for as long as the subscription lasts.
        let kept = Bytes::copy_from_slice(name);
        if ctx.client.subscriptions_mut(ns).insert(kept.clone()) {
            ctx.srv.pubsub.add(ns, ctx.client.id, &kept);
        }
        confirm(ctx, ns, kind, Some(name));
    }
    Ok(())
}

/// (P|S)UNSUBSCRIBE: the names given, or every one in `ns`.
fn unsubscribe_from(ctx: &mut Ctx, ns: Namespace, kind: &[u8]) -> CmdResult {
    let names: Vec<Bytes> = if ctx.argc() == 1 {
        ctx.client.subscriptions_mut(ns).iter().cloned().collect()
    } else {
        ctx.args[1..].to_vec()
    };
    if names.is_empty() {
        confirm(ctx, ns, kind, None);
    }
    for name in names {
        if ctx.client.subscriptions_mut(ns).remove(&name) {
            ctx.srv.pubsub.remove(ns, ctx.client.id, &name);
        }
        confirm(ctx, ns, kind, Some(&name));
    }
    Ok(())
}

// (P)SUBSCRIBE inside MULTI subscribe at EXEC, their confirmations in its
// reply, as in Redis 7.0 (which refuses them only to a client that must
// get one reply per command; scripts cannot call them: NOSCRIPT).
fn subscribe(ctx: &mut Ctx) -> CmdResult {
    subscribe_to(ctx, Namespace::Channels, b"subscribe")
}

fn unsubscribe(ctx: &mut Ctx) -> CmdResult {
    unsubscribe_from(ctx, Namespace::Channels, b"unsubscribe")
}

fn psubscribe(ctx: &mut Ctx) -> CmdResult {
    subscribe_to(ctx, Namespace::Patterns, b"psubscribe")
}

fn punsubscribe(ctx: &mut Ctx) -> CmdResult {
    unsubscribe_from(ctx, Namespace::Patterns, b"punsubscribe")
}

fn ssubscribe(ctx: &mut Ctx) -> CmdResult {
    // Refused inside EXEC, unlike SUBSCRIBE (Redis 7.0 makes an exception
    // for SUBSCRIBE only).
    if ctx.client.in_exec {
        return Err(CmdError::err(
            "SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    subscribe_to(ctx, Namespace::Shard, b"ssubscribe")
}

fn sunsubscribe(ctx: &mut Ctx) -> CmdResult {
    unsubscribe_from(ctx, Namespace::Shard, b"sunsubscribe")
}

fn spublish(ctx: &mut Ctx) -> CmdResult {
    let n = ctx
        .srv
        .pubsub
        .spublish(&ctx.args[1], &ctx.args[2], ctx.clients, &*ctx.client);
    ctx.out.int(n as i64);
    Ok(())
}

fn publish(ctx: &mut Ctx) -> CmdResult {
    let n = ctx.srv.pubsub.publish(
        &ctx.args[1],
        &ctx.args[2],
        ctx.clients,
        Some(&*ctx.client),
        0,
    );
    ctx.out.int(n as i64);
    Ok(())
}

/// PUBSUB's subcommands and their arities (Redis 7.0's table).
const PUBSUB_SUBS: &[(&str, i32)] = &[
    ("channels", -2),
    ("help", 2),
    ("numpat", 2),
    ("numsub", -2),
    ("shardchannels", -2),
    ("shardnumsub", -2),
];

fn pubsub(ctx: &mut Ctx) -> CmdResult {
    let sub = ctx.arg_upper(1);
    let shard = sub.starts_with("SHARD");
    let subs = if shard {
        &ctx.srv.pubsub.shard
    } else {
        &ctx.srv.pubsub.channels
    };
    match (sub.as_str(), ctx.argc()) {
        ("CHANNELS" | "SHARDCHANNELS", 2 | 3) => {
            let pat = ctx.args.get(2).cloned();
            let mut chans: Vec<Bytes> = subs
                .keys()
                .filter(|c| pat.as_ref().is_none_or(|p| glob_match(p, c, false)))
                .cloned()
                .collect();
            chans.sort();
            ctx.out.array(chans.len());
            for c in chans {
                ctx.out.bulk(&c);
            }
        }
        ("NUMSUB" | "SHARDNUMSUB", _) => {
            ctx.out.array((ctx.argc() - 2) * 2);
            for c in &ctx.args[2..] {
                ctx.out.bulk(c);
                ctx.out.int(subs.get(c).map_or(0, |s| s.len()) as i64);
            }
        }
        ("NUMPAT", 2) => {
            ctx.out.int(ctx.srv.pubsub.patterns.len() as i64);
        }
        ("HELP", 2) => {
            let lines = [
                "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "CHANNELS [<pattern>]",
                "    Return the currently active channels matching a <pattern> (default: '*').",
                "NUMPAT",
                "    Return number of subscriptions to patterns.",
                "NUMSUB [<channel> ...]",
                "    Return the number of subscribers for the specified channels, excluding",
                "    pattern subscriptions(default: no channels).",
                "SHARDCHANNELS [<pattern>]",
                "    Return the currently active shard level channels matching a <pattern> (default: '*').",
                "SHARDNUMSUB [<shardchannel> ...]",
                "    Return the number of subscribers for the specified shard level channel(s)",
                "HELP",
                "    Prints this help.",
            ];
            ctx.out.array(lines.len());
            for l in lines {
                ctx.out.simple(l);
            }
        }
        // Known, with the wrong number of arguments: NUMPAT and HELP by
        // their fixed arity, the pattern ones by PUBSUB's own check.
        ("NUMPAT" | "HELP", _) => {
            return Err(CmdError::WrongArity(format!(
                "pubsub|{}",
                sub.to_ascii_lowercase()
            )))
        }
        ("CHANNELS" | "SHARDCHANNELS", _) => {
            return Err(crate::command::server::subcommand_syntax_error(
                ctx.args, "pubsub",
            ))
        }
        _ => return Err(CmdError::unknown_subcommand("PUBSUB", ctx.arg(1))),
    }
    Ok(())
}
