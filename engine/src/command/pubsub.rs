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

fn confirm(ctx: &mut Ctx, kind: &[u8], name: Option<&[u8]>) {
    let n = if matches!(kind, b"ssubscribe" | b"sunsubscribe") {
        ctx.client.shard_channels.len()
    } else {
        ctx.client.subscription_count()
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

// (P)SUBSCRIBE inside MULTI subscribe at EXEC, their confirmations in its
// reply, as in Redis 7.0 (which refuses them only to a client that must
// get one reply per command; scripts cannot call them: NOSCRIPT).
fn subscribe(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    for ch in &args[1..] {
        if ctx.client.channels.insert(ch.clone()) {
            ctx.srv.pubsub.subscribe(ctx.client.id, ch);
        }
        confirm(ctx, b"subscribe", Some(ch));
    }
    Ok(())
}

fn unsubscribe(ctx: &mut Ctx) -> CmdResult {
    let chans: Vec<Bytes> = if ctx.argc() == 1 {
        ctx.client.channels.iter().cloned().collect()
    } else {
        ctx.args[1..].to_vec()
    };
    if chans.is_empty() {
        confirm(ctx, b"unsubscribe", None);
    }
    for ch in chans {
        if ctx.client.channels.remove(&ch) {
            ctx.srv.pubsub.unsubscribe(ctx.client.id, &ch);
        }
        confirm(ctx, b"unsubscribe", Some(&ch));
    }
    Ok(())
}

fn psubscribe(ctx: &mut Ctx) -> CmdResult {
    let args = ctx.args;
    for p in &args[1..] {
        if ctx.client.patterns.insert(p.clone()) {
            ctx.srv.pubsub.psubscribe(ctx.client.id, p);
        }
        confirm(ctx, b"psubscribe", Some(p));
    }
    Ok(())
}

fn punsubscribe(ctx: &mut Ctx) -> CmdResult {
    let pats: Vec<Bytes> = if ctx.argc() == 1 {
        ctx.client.patterns.iter().cloned().collect()
    } else {
        ctx.args[1..].to_vec()
    };
    if pats.is_empty() {
        confirm(ctx, b"punsubscribe", None);
    }
    for p in pats {
        if ctx.client.patterns.remove(&p) {
            ctx.srv.pubsub.punsubscribe(ctx.client.id, &p);
        }
        confirm(ctx, b"punsubscribe", Some(&p));
    }
    Ok(())
}

fn ssubscribe(ctx: &mut Ctx) -> CmdResult {
    // Refused inside EXEC, unlike SUBSCRIBE (Redis 7.0 makes an exception
    // for SUBSCRIBE only).
    if ctx.client.in_exec {
        return Err(CmdError::err(
            "SSUBSCRIBE isn't allowed for a DENY BLOCKING client",
        ));
    }
    let args = ctx.args;
    for ch in &args[1..] {
        if ctx.client.shard_channels.insert(ch.clone()) {
            ctx.srv.pubsub.ssubscribe(ctx.client.id, ch);
        }
        confirm(ctx, b"ssubscribe", Some(ch));
    }
    Ok(())
}

fn sunsubscribe(ctx: &mut Ctx) -> CmdResult {
    let chans: Vec<Bytes> = if ctx.argc() == 1 {
        ctx.client.shard_channels.iter().cloned().collect()
    } else {
        ctx.args[1..].to_vec()
    };
    if chans.is_empty() {
        confirm(ctx, b"sunsubscribe", None);
    }
    for ch in chans {
        if ctx.client.shard_channels.remove(&ch) {
            ctx.srv.pubsub.sunsubscribe(ctx.client.id, &ch);
        }
        confirm(ctx, b"sunsubscribe", Some(&ch));
    }
    Ok(())
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
