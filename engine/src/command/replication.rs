//! Redis replication commands: ROLE, REPLICAOF/SLAVEOF, FAILOVER.
//!
//! memlog's replicas do not speak Redis' replication protocol: they tail
//! the transaction log, and the primary is whoever holds the log's
//! leadership. So a server answers as a Redis primary without replicas,
//! as WAIT and INFO replication do; REPLICAOF NO ONE is accepted (it is
//! one already) and making it a replica of another Redis is refused.

use super::flags::*;
use super::CommandSpec;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        (0, 0, 0),
        "server",
        role,
    ),
    CommandSpec::new(
        "replicaof",
        3,
        ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING,
        (0, 0, 0),
        "server",
        replicaof,
    ),
    CommandSpec::new(
        "slaveof",
        3,
        ADMIN | NOSCRIPT | STALE | NO_ASYNC_LOADING,
        (0, 0, 0),
        "server",
        replicaof,
    ),
    CommandSpec::new(
        "failover",
        -1,
        ADMIN | NOSCRIPT | STALE,
        (0, 0, 0),
        "server",
        failover,
    ),
];

/// `master`, the replication offset (INFO's `master_repl_offset`: memlog
/// keeps no Redis replication stream) and no connected replicas.
fn role(ctx: &mut Ctx) -> CmdResult {
    ctx.out.array(3);
    ctx.out.bulk_str("master");
    ctx.out.int(0);
    ctx.out.array(0);
    Ok(())
}

fn replicaof(ctx: &mut Ctx) -> CmdResult {
    if ctx.arg_is(1, "no") && ctx.arg_is(2, "one") {
        ctx.out.ok();
        return Ok(());
    }
    match crate::numbers::parse_i64(&ctx.args[2]) {
        Some(p) if (0..=65535).contains(&p) => Err(CmdError::err(
            "memlog does not replicate from a Redis primary: its replicas tail the transaction log",
        )),
        _ => Err(CmdError::err("Invalid master port")),
    }
}

/// Parses as Redis' failoverCommand does, then answers as a primary
/// without replicas: there is nothing to fail over to.
fn failover(ctx: &mut Ctx) -> CmdResult {
    if ctx.argc() == 2 && ctx.arg_is(1, "abort") {
        return Err(CmdError::err("No failover in progress."));
    }
    let (mut timeout, mut host, mut force) = (0i64, false, false);
    let mut j = 1;
    while j < ctx.argc() {
        if ctx.arg_is(j, "timeout") && j + 1 < ctx.argc() && timeout == 0 {
            timeout = ctx.int_arg(j + 1)?;
            if timeout <= 0 {
                return Err(CmdError::err("FAILOVER timeout must be greater than 0"));
            }
            j += 2;
        } else if ctx.arg_is(j, "to") && j + 2 < ctx.argc() && !host {
            ctx.int_arg(j + 2)?;
            host = true;
            j += 3;
        } else if ctx.arg_is(j, "force") && !force {
            force = true;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Err(CmdError::err("FAILOVER requires connected replicas."))
}
