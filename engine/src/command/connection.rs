//! Connection commands: PING, ECHO, SELECT, QUIT, RESET, HELLO, AUTH, WAIT.

use super::flags::*;
use super::CommandSpec;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "ping",
        -1,
        FAST | PUBSUB_CONTEXT,
        (0, 0, 0),
        "connection",
        ping,
    ),
    CommandSpec::new(
        "echo",
        2,
        FAST | LOADING | STALE,
        (0, 0, 0),
        "connection",
        echo,
    ),
    CommandSpec::new("wait", 3, NOSCRIPT, (0, 0, 0), "connection", wait),
    CommandSpec::new(
        "select",
        2,
        FAST | LOADING | STALE,
        (0, 0, 0),
        "connection",
        select,
    ),
    CommandSpec::new(
        "quit",
        -1,
        FAST | NO_AUTH | STALE | LOADING | MULTI_CONTROL | PUBSUB_CONTEXT | NOSCRIPT | ALLOW_BUSY,
        (0, 0, 0),
        "connection",
        quit,
    ),
    CommandSpec::new(
        "reset",
        1,
        FAST | NO_AUTH | STALE | LOADING | MULTI_CONTROL | PUBSUB_CONTEXT | NOSCRIPT | ALLOW_BUSY,
        (0, 0, 0),
        "connection",
        reset,
    ),
    CommandSpec::new(
        "hello",
        -1,
        FAST | NO_AUTH | STALE | LOADING | NOSCRIPT | ALLOW_BUSY,
        (0, 0, 0),
        "connection",
        hello,
    ),
    CommandSpec::new(
        "auth",
        -2,
        FAST | NO_AUTH | STALE | LOADING | NOSCRIPT | ALLOW_BUSY,
        (0, 0, 0),
        "connection",
        auth,
    ),
];

fn ping(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() > 2 {
        return Err(CmdError::WrongArity("ping".into()));
    }
    if ctx.client.in_pubsub_mode() {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        let msg = ctx.args.get(1).cloned().unwrap_or_default();
        ctx.out.bulk(&msg);
    } else if ctx.argc() == 2 {
        let msg = ctx.args[1].clone();
        ctx.out.bulk(&msg);
    } else {
        ctx.out.simple("PONG");
    }
    Ok(())
}

fn echo(ctx: &mut Ctx) -> CmdResult {
    let msg = ctx.args[1].clone();
    ctx.out.bulk(&msg);
    Ok(())
}

/// WAIT numreplicas timeout-ms: how many replicas acknowledged this
/// connection's writes. memlog has none yet (a write is acknowledged once
/// the log has it on a majority, which WAIT cannot add to), so, as a Redis
/// primary without replicas: 0 at once when no replica is asked for,
/// otherwise 0 once the timeout passes (0: never).
fn wait(ctx: &mut Ctx) -> CmdResult {
    let wanted = ctx.int_arg(1)?;
    let ms = crate::numbers::parse_i64(&ctx.args[2])
        .ok_or_else(|| CmdError::err("timeout is not an integer or out of range"))?;
    if ms < 0 {
        return Err(CmdError::NegativeTimeout);
    }
    if wanted <= 0 {
        ctx.out.int(0);
        return Ok(());
    }
    // 0 waits forever; so, in practice, does anything over ~30 years (an
    // Instant cannot hold deadlines that far away).
    let timeout =
        (ms > 0 && ms <= 1_000_000_000_000).then(|| std::time::Duration::from_millis(ms as u64));
    ctx.block_on(Vec::new(), timeout, crate::engine::TimeoutReply::Zero);
    Ok(())
}

fn select(ctx: &mut Ctx) -> CmdResult {
    let n = ctx.int_arg(1)?;
    if i32::try_from(n).is_err() {
        return Err(CmdError::err(
            "value is out of range, value must between -2147483648 and 2147483647",
        ));
    }
    if n < 0 || n as usize >= ctx.ks.dbs.len() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    ctx.client.db = n as usize;
    ctx.out.ok();
    Ok(())
}

fn quit(ctx: &mut Ctx) -> CmdResult {
    ctx.out.ok();
    ctx.close = true;
    Ok(())
}

/// Puts the connection back to its initial state.
pub fn reset_client(ctx: &mut Ctx) {
    ctx.client.multi = None;
    let watched = std::mem::take(&mut ctx.client.watched);
    ctx.ks.unwatch_all(ctx.client.id, &watched);
    for ns in crate::pubsub::Namespace::ALL {
        for name in std::mem::take(ctx.client.subscriptions_mut(ns)) {
            ctx.srv.pubsub.remove(ns, ctx.client.id, &name);
        }
    }
    ctx.client.db = 0;
    ctx.client.resp3 = false;
    ctx.out.resp3 = false;
    ctx.client.name = None;
    ctx.client.reply_mode = crate::client::ReplyMode::On;
    ctx.client.no_evict = false;
    if ctx.client.monitor {
        ctx.client.monitor = false;
        ctx.srv.monitors.remove(ctx.client.id);
    }
    ctx.client.authenticated = ctx.srv.requirepass.is_none();
    ctx.srv.tracking.disable(ctx.client.id);
    ctx.ks.tracking_on = ctx.srv.tracking.is_on();
}

fn reset(ctx: &mut Ctx) -> CmdResult {
    reset_client(ctx);
    ctx.out.simple("RESET");
    Ok(())
}

/// Checks a username/password pair against `requirepass` (user `default`).
fn check_auth(ctx: &mut Ctx, user: &[u8], pass: &[u8]) -> CmdResult {
    let ok = match &ctx.srv.requirepass {
        // Without a password the default user is `nopass`: anything goes.
        None => user == b"default",
        Some(p) => user == b"default" && pass == p.as_bytes(),
    };
    if ok {
        ctx.client.authenticated = true;
        Ok(())
    } else {
        let now = crate::keyspace::unix_ms();
        let cmd = String::from_utf8_lossy(&ctx.args[0]).to_ascii_lowercase();
        let info = super::client::client_line(ctx.client, None, now, Some(&cmd), ctx.args);
        let max_len = usize::try_from(ctx.srv.config.get_i64("acllog-max-len")).unwrap_or(0);
        ctx.srv
            .acl_log
            .auth_denied(&ctx.args[0], user, ctx.client.in_exec, info, now, max_len);
        Err(CmdError::coded(
            "WRONGPASS",
            "invalid username-password pair or user is disabled.",
        ))
    }
}

fn auth(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() > 3 {
        return Err(CmdError::Syntax);
    }
    if ctx.argc() == 2 {
        if ctx.srv.requirepass.is_none() {
            return Err(CmdError::err(
                "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
            ));
        }
        let pass = ctx.args[1].clone();
        check_auth(ctx, b"default", &pass)?;
    } else {
        let (user, pass) = (ctx.args[1].clone(), ctx.args[2].clone());
        check_auth(ctx, &user, &pass)?;
    }
    ctx.out.ok();
    Ok(())
}

fn hello(ctx: &mut Ctx) -> CmdResult {
    let mut i = 1;
    let mut proto = None;
    if ctx.argc() >= 2 {
        let v = crate::numbers::parse_i64(ctx.arg(1))
            .ok_or_else(|| CmdError::err("Protocol version is not an integer or out of range"))?;
        if !(2..=3).contains(&v) {
            return Err(CmdError::coded("NOPROTO", "unsupported protocol version"));
        }
        proto = Some(v);
        i = 2;
    }
    let mut setname = None;
    while i < ctx.argc() {
        let more = ctx.argc() - i - 1;
        if ctx.arg_is(i, "AUTH") && more >= 2 {
            let (u, p) = (ctx.args[i + 1].clone(), ctx.args[i + 2].clone());
            check_auth(ctx, &u, &p)?;
            i += 3;
        } else if ctx.arg_is(i, "SETNAME") && more >= 1 {
            let name = ctx.args[i + 1].clone();
            super::server::validate_client_name(&name)?;
            setname = Some(name);
            i += 2;
        } else {
            return Err(CmdError::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(ctx.arg(i))
            )));
        }
    }
    if !ctx.client.authenticated {
        return Err(CmdError::coded(
            "NOAUTH",
            "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
    }
    if let Some(n) = setname {
        ctx.client.name = if n.is_empty() {
            None
        } else {
            Some(bytes::Bytes::copy_from_slice(&n))
        };
    }
    if let Some(p) = proto {
        ctx.client.resp3 = p == 3;
        ctx.out.resp3 = p == 3;
    }
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(crate::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if ctx.client.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.client.id as i64);
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}
