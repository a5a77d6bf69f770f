//! Faults, scheduled at random from the run's seed. Each fault is applied,
//! held for a while, then healed; every step is recorded in the history as a
//! `nemesis` op (process -1).

use super::cluster::{Cluster, Link, Mode, Role};
use super::history::{ModelKind, Op, OpType, Res, F};
use super::proxy::LinkMode;
use super::workload::Recorder;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// kill -9 the server, restart it after a pause.
    KillServer,
    /// kill -9 the txlog leader, restart it (cluster).
    KillLeader,
    /// kill -9 a txlog follower, restart it (cluster).
    KillFollower,
    /// SIGSTOP any process, SIGCONT later.
    Pause,
    /// Black-hole or drop the clients' link to the server.
    PartitionClients,
    /// Cut the server off from every txlog node (cluster).
    PartitionServerTxlog,
    /// Cut one txlog node's inbound peer link (cluster).
    PartitionTxlogNode,
    /// Add latency to a random link.
    Delay,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::KillServer => "kill-server",
            Fault::KillLeader => "kill-leader",
            Fault::KillFollower => "kill-follower",
            Fault::Pause => "pause",
            Fault::PartitionClients => "partition-clients",
            Fault::PartitionServerTxlog => "partition-server-txlog",
            Fault::PartitionTxlogNode => "partition-txlog",
            Fault::Delay => "delay",
        }
    }
}

/// Parses `--nemesis kill,pause,partition,delay` (or `all`, `none`, or
/// exact fault names) into the faults that apply to `mode`.
pub fn parse_faults(spec: &str, mode: Mode) -> anyhow::Result<Vec<Fault>> {
    let cluster = mode == Mode::Cluster;
    let mut out = Vec::new();
    for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        let add: Vec<Fault> = match word {
            "none" => vec![],
            "all" => {
                let mut v = vec![
                    Fault::KillServer,
                    Fault::Pause,
                    Fault::PartitionClients,
                    Fault::Delay,
                ];
                if cluster {
                    v.extend([
                        Fault::KillLeader,
                        Fault::KillFollower,
                        Fault::PartitionServerTxlog,
                        Fault::PartitionTxlogNode,
                    ]);
                }
                v
            }
            "kill" if cluster => vec![Fault::KillServer, Fault::KillLeader, Fault::KillFollower],
            "kill" | "kill-server" => vec![Fault::KillServer],
            "kill-leader" | "kill-follower" if !cluster => {
                anyhow::bail!("{word} needs --mode cluster")
            }
            "kill-leader" => vec![Fault::KillLeader],
            "kill-follower" => vec![Fault::KillFollower],
            "pause" => vec![Fault::Pause],
            "partition" if cluster => vec![
                Fault::PartitionClients,
                Fault::PartitionServerTxlog,
                Fault::PartitionTxlogNode,
            ],
            "partition" | "partition-clients" => vec![Fault::PartitionClients],
            "partition-server-txlog" | "partition-txlog" if !cluster => {
                anyhow::bail!("{word} needs --mode cluster")
            }
            "partition-server-txlog" => vec![Fault::PartitionServerTxlog],
            "partition-txlog" => vec![Fault::PartitionTxlogNode],
            "delay" => vec![Fault::Delay],
            other => anyhow::bail!("unknown nemesis {other:?}"),
        };
        for f in add {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    Ok(out)
}

#[derive(Clone, Debug)]
pub struct NemesisCfg {
    pub faults: Vec<Fault>,
    /// Mean time between the end of one fault and the start of the next.
    pub interval: Duration,
}

/// Records a nemesis-side step (`what`) that started at `t0`.
pub(super) fn event(rec: &Recorder, t0: u64, what: String) {
    let t1 = rec.now();
    rec.push(Op {
        index: 0,
        process: -1,
        model: ModelKind::Nemesis,
        f: F::Nemesis,
        key: String::new(),
        arg: vec![],
        result: Res::Nil,
        kind: OpType::Ok,
        invoke_ns: t0,
        complete_ns: Some(t1),
        note: Some(what),
    });
}

/// Sleeps up to `d`, returning early (false) when `stop` is set.
fn nap(d: Duration, stop: &AtomicBool) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(end - Instant::now()));
    }
    true
}

/// Runs faults until `stop`; returns how many of each were applied.
pub fn run(
    cluster: Arc<Mutex<Cluster>>,
    cfg: NemesisCfg,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> BTreeMap<&'static str, usize> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x006e_656d_6573_6973);
    let mut counts = BTreeMap::new();
    if cfg.faults.is_empty() {
        return counts;
    }
    let ms = cfg.interval.as_millis() as u64;
    loop {
        let wait = Duration::from_millis(rng.gen_range(ms / 2..=ms + ms / 2));
        if !nap(wait, &stop) {
            break;
        }
        let fault = cfg.faults[rng.gen_range(0..cfg.faults.len())];
        let hold = Duration::from_millis(rng.gen_range(500..=3000));
        let t0 = rec.now();
        let applied = {
            let Ok(mut c) = cluster.lock() else { break };
            apply(&mut c, fault, &mut rng)
        };
        let Some(what) = applied else { continue };
        *counts.entry(fault.name()).or_insert(0) += 1;
        event(&rec, t0, format!("start {what}"));
        nap(hold, &stop);
        let t0 = rec.now();
        let healed = {
            let Ok(mut c) = cluster.lock() else { break };
            c.heal()
        };
        let note = match healed {
            Ok(()) => format!("heal {what}"),
            Err(e) => format!("heal {what} failed: {e}"),
        };
        event(&rec, t0, note);
    }
    counts
}

/// Applies one fault; a description, or None if it does not apply now.
fn apply(c: &mut Cluster, fault: Fault, rng: &mut StdRng) -> Option<String> {
    match fault {
        Fault::KillServer => {
            c.nodes[0].kill();
            Some("kill -9 server".into())
        }
        Fault::KillLeader | Fault::KillFollower => {
            let leader = c.txlog_leader()?;
            let candidates: Vec<usize> = c
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| match n.role {
                    Role::Txlog(id) => (id == leader) == (fault == Fault::KillLeader),
                    Role::Server => false,
                })
                .map(|(i, _)| i)
                .collect();
            let i = *candidates.get(rng.gen_range(0..candidates.len().max(1)))?;
            c.nodes[i].kill();
            Some(format!(
                "kill -9 {} ({})",
                c.nodes[i].name,
                if fault == Fault::KillLeader {
                    "leader"
                } else {
                    "follower"
                }
            ))
        }
        Fault::Pause => {
            let i = rng.gen_range(0..c.nodes.len());
            c.nodes[i].pause().ok()?;
            Some(format!("pause {}", c.nodes[i].name))
        }
        Fault::PartitionClients => {
            let mode = cut_mode(rng);
            c.proxy(Link::ClientServer)?.set(mode);
            Some(format!("{mode} client->server"))
        }
        Fault::PartitionServerTxlog => {
            let mode = cut_mode(rng);
            for (l, p) in &c.proxies {
                if matches!(l, Link::ServerTxlog(_)) {
                    p.set(mode);
                }
            }
            Some(format!("{mode} server->txlog"))
        }
        Fault::PartitionTxlogNode => {
            let id = rng.gen_range(1..=3u64);
            let mode = cut_mode(rng);
            c.proxy(Link::PeersTxlog(id))?.set(mode);
            Some(format!("{mode} peers->n{id}"))
        }
        Fault::Delay => {
            let k = rng.gen_range(0..c.proxies.len());
            let ms = rng.gen_range(20..=300);
            let (_, p) = &c.proxies[k];
            p.set(LinkMode::Delay(ms));
            Some(format!("delay {}ms {}", ms, p.name))
        }
    }
}

fn cut_mode(rng: &mut StdRng) -> LinkMode {
    if rng.gen_bool(0.5) {
        LinkMode::Drop
    } else {
        LinkMode::BlackHole
    }
}
