//! Cluster commands: CLUSTER, READONLY, READWRITE, ASKING. memlog is not a
//! Redis Cluster node (it scales by log shards, not hash slots), so these
//! answer as a Redis 7 server started with `cluster-enabled no`: the
//! subcommand and its arity are checked first, then the cluster is refused.
//! Clients probe them to learn which kind of server they talk to.

use super::flags::*;
use super::server::subcommand;
use super::CommandSpec;
use crate::engine::Ctx;
use crate::error::{CmdError, CmdResult};

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("cluster", -2, NOSCRIPT, (0, 0, 0), "cluster", cluster).with_subcommands(SUBS),
    CommandSpec::new(
        "readonly",
        1,
        FAST | LOADING | STALE,
        (0, 0, 0),
        "cluster",
        disabled,
    ),
    CommandSpec::new(
        "readwrite",
        1,
        FAST | LOADING | STALE,
        (0, 0, 0),
        "cluster",
        disabled,
    ),
    CommandSpec::new("asking", 1, FAST, (0, 0, 0), "cluster", disabled),
];

/// Redis 7.0's CLUSTER subcommands and their arities.
const SUBS: &[(&str, i32)] = &[
    ("addslots", -3),
    ("addslotsrange", -4),
    ("bumpepoch", 2),
    ("count-failure-reports", 3),
    ("countkeysinslot", 3),
    ("delslots", -3),
    ("delslotsrange", -4),
    ("failover", -2),
    ("flushslots", 2),
    ("forget", 3),
    ("getkeysinslot", 4),
    ("help", 2),
    ("info", 2),
    ("keyslot", 3),
    ("links", 2),
    ("meet", -4),
    ("myid", 2),
    ("nodes", 2),
    ("replicas", 3),
    ("replicate", 3),
    ("reset", -2),
    ("saveconfig", 2),
    ("set-config-epoch", 3),
    ("setslot", -4),
    ("shards", 2),
    ("slaves", 3),
    ("slots", 2),
];

fn cluster(ctx: &mut Ctx) -> CmdResult {
    subcommand(ctx.args, "cluster", SUBS)?;
    disabled(ctx)
}

fn disabled(_ctx: &mut Ctx) -> CmdResult {
    Err(CmdError::err("This instance has cluster support disabled"))
}
