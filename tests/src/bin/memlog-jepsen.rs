//! `memlog-jepsen`: one Jepsen-style run against a real memlog cluster, or a
//! re-check of a recorded history. See docs/jepsen.md.
//!
//! Exit status: 0 linearizable and no lost acknowledged write; 1 violation;
//! 2 inconclusive (checker budget ran out); 3 harness error.

use clap::Parser;
use memlog_tests::jepsen::{self, cluster::Mode, history::ModelKind, nemesis, workload};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "memlog-jepsen", about = "Jepsen-style tests for memlog")]
struct Args {
    /// Cluster layout: `embedded` (server alone) or `cluster` (3 txlog nodes +
    /// server).
    #[arg(long, default_value = "embedded")]
    mode: String,
    /// Random seed for the workload and the nemesis schedule (default: random).
    #[arg(long)]
    seed: Option<u64>,
    /// Seconds of workload.
    #[arg(long, default_value_t = 30)]
    time: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Workloads, comma-separated: register, counter, list, all.
    #[arg(long, default_value = "all")]
    workload: String,
    /// Faults, comma-separated: kill, pause, partition, delay, all, none (or
    /// exact names: kill-server, kill-leader, kill-follower,
    /// partition-clients, partition-server-txlog, partition-txlog).
    #[arg(long, default_value = "all")]
    nemesis: String,
    /// Mean seconds between faults.
    #[arg(long, default_value_t = 4.0)]
    nemesis_interval: f64,
    /// Keys per workload alive at a time.
    #[arg(long, default_value_t = 3)]
    keys: u64,
    /// Operations per key before moving to fresh keys.
    #[arg(long, default_value_t = 150)]
    ops_per_key: u64,
    /// Timeout of every client call, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    op_timeout_ms: u64,
    /// Each client sleeps a random 0..=this many milliseconds between ops.
    #[arg(long, default_value_t = 10)]
    pause_ms: u64,
    /// Output directory (default: <workspace>/target/jepsen).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Bound on the linearizability check, in seconds (then "unknown").
    #[arg(long, default_value_t = 60)]
    check_time: u64,
    /// Bound on one key's search, in steps.
    #[arg(long, default_value_t = 5_000_000)]
    max_steps: u64,
    /// Re-check a recorded history.jsonl instead of running.
    #[arg(long)]
    check: Option<PathBuf>,
    /// Extra argument for `memlog server` (repeatable), e.g.
    /// `--server-arg=--unsafe-early-ack` (debug builds only: breaks
    /// durability on purpose, to prove the checker catches it).
    #[arg(long, allow_hyphen_values = true)]
    server_arg: Vec<String>,
    /// Mean seconds between snapshots (`SAVE` or `BGSAVE` sent straight to
    /// the server, which then trims its log); 0 takes none.
    #[arg(long, default_value_t = 3.0)]
    save_interval: f64,
    /// The txlog nodes' `--snapshot-every` (cluster mode): low, so that the
    /// Raft log is purged and lagging nodes install snapshots within a run.
    #[arg(long, default_value_t = 100)]
    txlog_snapshot_every: u64,
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("memlog-jepsen: error: {e:#}");
            ExitCode::from(3)
        }
    }
}

fn real_main() -> anyhow::Result<u8> {
    let a = Args::parse();
    let mode: Mode = a.mode.parse()?;
    let mut kinds = Vec::new();
    for w in a.workload.split(',').map(str::trim) {
        match w {
            "register" => kinds.push(ModelKind::Register),
            "counter" => kinds.push(ModelKind::Counter),
            "list" => kinds.push(ModelKind::List),
            "all" => kinds.extend([ModelKind::Register, ModelKind::Counter, ModelKind::List]),
            other => anyhow::bail!("unknown workload {other:?}"),
        }
    }
    kinds.dedup();
    anyhow::ensure!(!kinds.is_empty(), "no workload");
    anyhow::ensure!(a.clients > 0, "--clients must be positive");
    let seed = a.seed.unwrap_or_else(rand::random);
    let out = a
        .out
        .unwrap_or_else(|| memlog_tests::workspace_root().join("target").join("jepsen"));
    let cfg = jepsen::RunCfg {
        mode,
        seed,
        time: Duration::from_secs(a.time),
        clients: a.clients,
        workload: workload::WorkloadCfg {
            kinds,
            keys: a.keys.max(1),
            ops_per_key: a.ops_per_key.max(1),
            op_timeout: Duration::from_millis(a.op_timeout_ms.max(1)),
            pause: Duration::from_millis(a.pause_ms),
        },
        nemesis: nemesis::NemesisCfg {
            faults: nemesis::parse_faults(&a.nemesis, mode)?,
            interval: Duration::from_secs_f64(a.nemesis_interval.max(0.1)),
        },
        out,
        check_time: Duration::from_secs(a.check_time),
        max_steps: a.max_steps,
        server_args: a.server_arg.clone(),
        save_interval: (a.save_interval > 0.0)
            .then(|| Duration::from_secs_f64(a.save_interval.max(0.1))),
        txlog_snapshot_every: a.txlog_snapshot_every.max(1),
    };
    let outcome = match &a.check {
        Some(path) => {
            let ops = jepsen::history::read_jsonl(path)?;
            let dir = path
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| PathBuf::from("."));
            jepsen::check_and_report(&ops, &cfg, dir, "from-file")?
        }
        None => jepsen::run(&cfg)?,
    };
    println!("{}", outcome.summary);
    println!("run: {} seed={seed}", outcome.dir.display());
    println!("report: {}", outcome.dir.join("report.txt").display());
    Ok(outcome.exit_code())
}
