//! `memlog txlog ...`: the command-line surface of the transaction log.
//!
//! `memlog txlog --id N --bind ADDR --data-dir DIR [--init 1=A,2=B,3=C]`
//! runs a node; `memlog txlog status|add-node|remove-node|bench ...`
//! administer or measure a running group.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{ArgMatches, Args, Command, FromArgMatches, Subcommand};

use crate::bench::BenchArgs;
use crate::client::TxlogClient;
use crate::node::{NodeConfig, TxlogNode};

/// `memlog txlog`: run a node (flags only) or one admin subcommand.
///
/// (A struct with a hand-written [`Subcommand`] impl, so that `memlog txlog`
/// takes the node's flags directly as well as subcommands.)
#[derive(Debug)]
pub struct TxlogCommand(pub TxlogArgs);

impl TxlogCommand {
    /// Whether this is a short-lived admin command (`status`, `bench`, ...)
    /// printing to stdout, rather than a node.
    pub fn is_admin(&self) -> bool {
        self.0.admin.is_some()
    }

    /// Runtime threads a node asks for (`--threads`); `None` for an admin
    /// command.
    pub fn node_threads(&self) -> Option<u16> {
        self.0.admin.is_none().then_some(self.0.node.threads)
    }
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TxlogArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(subcommand)]
    pub admin: Option<AdminCommand>,
}

/// Flags of a txlog node.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// This node's Raft id (a positive integer, unique in the group).
    #[arg(long)]
    pub id: Option<u64>,
    /// Address to serve gRPC (clients and peers) on, e.g. 127.0.0.1:7001.
    #[arg(long)]
    pub bind: Option<SocketAddr>,
    /// Address peers and clients reach this node at (default: --bind).
    #[arg(long)]
    pub advertise: Option<String>,
    /// Directory for the node's sled database and snapshots.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Founding members `1=host:port,2=host:port,...`; ignored when the node
    /// already has state (a restarted node just rejoins).
    #[arg(long)]
    pub init: Option<String>,
    /// Raft heartbeat interval in milliseconds.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_ms: u64,
    /// Raft election timeout range in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub election_min_ms: u64,
    #[arg(long, default_value_t = 1000)]
    pub election_max_ms: u64,
    /// Snapshot (and purge the Raft log) every this many Raft entries.
    #[arg(long, default_value_t = 20_000)]
    pub snapshot_every: u64,
    /// ... or every this many bytes of payloads, whichever comes first.
    #[arg(long, default_value_t = crate::node::SNAPSHOT_EVERY_BYTES)]
    pub snapshot_every_bytes: u64,
    /// Raft entries kept behind a snapshot for followers that lag; one that
    /// falls further behind gets the snapshot instead.
    #[arg(long, default_value_t = 1000)]
    pub keep_after_snapshot: u64,
    /// ... but only as many of them as hold this many bytes.
    #[arg(long, default_value_t = crate::node::KEEP_AFTER_SNAPSHOT_BYTES)]
    pub keep_after_snapshot_bytes: u64,
    /// Size of the Raft log's segment files: purged entries free the disk
    /// a whole segment at a time, and never the newest one.
    #[arg(long, default_value_t = crate::store::journal::SEGMENT_BYTES,
          value_parser = clap::value_parser!(u64).range(4096..))]
    pub log_segment_bytes: u64,
    /// Bytes of purged segments kept for new segments to reuse (written
    /// blocks take appends faster than new ones); disk use stays up to
    /// this much above what the log holds. 0 deletes every purged segment
    /// (and, at start, those kept before).
    #[arg(long, default_value_t = crate::store::journal::SPARE_BYTES)]
    pub log_spare_bytes: u64,
    /// Runtime threads. 1 (the default) runs the node on one thread: on the
    /// 2-core development machine that took a fifth off the CPU each Raft
    /// round costs and 0.2 ms off one appender's latency (fewer hand-offs
    /// between threads; docs/txlog.md, Bench). More threads spread the
    /// gRPC and Raft work of a busy group over more cores.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,
}

/// Administration and measurement of a running group.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Add a node to the group (as learner, then voter).
    AddNode {
        /// Any member's address (comma-separated list allowed).
        #[arg(long)]
        addr: String,
        /// The new node's id.
        #[arg(long)]
        id: u64,
        /// The new node's address.
        #[arg(long)]
        node_addr: String,
        /// Keep it a non-voting learner.
        #[arg(long)]
        learner: bool,
    },
    /// Remove a node from the group.
    RemoveNode {
        #[arg(long)]
        addr: String,
        #[arg(long)]
        id: u64,
    },
    /// Print leader, term, members and every log's LSN range, epoch, holder.
    Status {
        #[arg(long)]
        addr: String,
    },
    /// Measure append throughput and latency.
    Bench(BenchArgs),
}

impl FromArgMatches for TxlogCommand {
    fn from_arg_matches(m: &ArgMatches) -> Result<Self, clap::Error> {
        TxlogArgs::from_arg_matches(m).map(Self)
    }

    fn update_from_arg_matches(&mut self, m: &ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl Subcommand for TxlogCommand {
    fn augment_subcommands(cmd: Command) -> Command {
        TxlogArgs::augment_args(cmd)
            .subcommand_required(false)
            .arg_required_else_help(true)
    }

    fn augment_subcommands_for_update(cmd: Command) -> Command {
        TxlogArgs::augment_args_for_update(cmd)
            .subcommand_required(false)
            .arg_required_else_help(true)
    }

    fn has_subcommand(name: &str) -> bool {
        AdminCommand::has_subcommand(name)
    }
}

/// Parses `1=host:port,2=host:port`.
pub fn parse_members(s: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let mut out = BTreeMap::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, addr) = part
            .split_once('=')
            .with_context(|| format!("member {part:?} is not ID=HOST:PORT"))?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("member id {id:?}"))?;
        out.insert(id, addr.trim().to_string());
    }
    if out.is_empty() {
        bail!("--init names no members");
    }
    Ok(out)
}

/// Runs one `memlog txlog` command.
pub async fn run(cmd: TxlogCommand) -> anyhow::Result<()> {
    match cmd.0.admin {
        None => run_node(cmd.0.node).await,
        Some(AdminCommand::Status { addr }) => {
            let s = TxlogClient::from_list(&addr)?.status().await?;
            println!("leader: {} ({})", s.leader_id, s.leader_addr);
            println!("term: {}", s.term);
            println!("applied index: {}", s.last_applied_index);
            println!("members:");
            for m in &s.members {
                let role = if m.voter { "voter" } else { "learner" };
                println!("  {} {} {}", m.id, m.addr, role);
            }
            println!("logs:");
            for l in &s.logs {
                println!(
                    "  {} first_lsn={} last_lsn={} epoch={} holder={:?} checksum={:08x}",
                    l.name, l.first_lsn, l.last_lsn, l.epoch, l.holder, l.checksum
                );
            }
            Ok(())
        }
        Some(AdminCommand::AddNode {
            addr,
            id,
            node_addr,
            learner,
        }) => {
            let r = TxlogClient::from_list(&addr)?
                .add_node(id, &node_addr, learner)
                .await?;
            for m in r.members {
                println!("{} {} voter={}", m.id, m.addr, m.voter);
            }
            Ok(())
        }
        Some(AdminCommand::RemoveNode { addr, id }) => {
            let r = TxlogClient::from_list(&addr)?.remove_node(id).await?;
            for m in r.members {
                println!("{} {} voter={}", m.id, m.addr, m.voter);
            }
            Ok(())
        }
        Some(AdminCommand::Bench(args)) => crate::bench::run(args).await,
    }
}

async fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let id = args.id.context("--id is required to run a node")?;
    let bind = args.bind.context("--bind is required to run a node")?;
    let data_dir = args
        .data_dir
        .context("--data-dir is required to run a node")?;
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let advertise = args.advertise.unwrap_or_else(|| bind.to_string());
    let mut cfg = NodeConfig::new(id, advertise, &data_dir);
    cfg.heartbeat_ms = args.heartbeat_ms;
    cfg.election_min_ms = args.election_min_ms;
    cfg.election_max_ms = args.election_max_ms;
    cfg.snapshot_every = args.snapshot_every;
    cfg.snapshot_every_bytes = args.snapshot_every_bytes;
    cfg.keep_after_snapshot = args.keep_after_snapshot;
    cfg.keep_after_snapshot_bytes = args.keep_after_snapshot_bytes;
    cfg.log_segment_bytes = args.log_segment_bytes;
    cfg.log_spare_bytes = args.log_spare_bytes;
    let node = TxlogNode::start(&cfg).await.context("starting the node")?;
    let init = args.init.as_deref().map(parse_members).transpose()?;
    let serve = {
        let node = node.clone();
        tokio::spawn(async move {
            node.serve(bind, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
        })
    };
    if let Some(members) = init {
        anyhow::ensure!(
            members.contains_key(&id),
            "--init must name this node's id {id}"
        );
        node.initialize(members)
            .await
            .context("initializing the group")?;
    }
    tracing::info!(id, %bind, "txlog node serving");
    tokio::select! {
        served = serve => {
            served.context("server task")??;
            node.shutdown().await;
            Ok(())
        }
        // openraft never resumes after a storage failure: exit (status 1)
        // so that a supervisor restarts the node, which then recovers what
        // it flushed and catches up, as after a crash, instead of leaving a
        // process that answers but can no longer take part in the group.
        why = node.failure() => {
            anyhow::bail!("node {id} stopped: {why}; restart it once the cause (e.g. a full disk) is fixed")
        }
    }
}
