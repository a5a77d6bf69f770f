//! A Jepsen-style harness for memlog (`memlog-jepsen`, docs/jepsen.md):
//! concurrent clients against a real cluster under faults, a history of
//! every operation, a linearizability checker and a lost-write check.

pub mod checker;
pub mod cluster;
pub mod history;
pub mod lost;
pub mod nemesis;
pub mod proxy;
pub mod saver;
pub mod workload;

use checker::Verdict;
use history::{ModelKind, Op, OpType};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything one run needs.
#[derive(Clone, Debug)]
pub struct RunCfg {
    pub mode: cluster::Mode,
    pub seed: u64,
    pub time: Duration,
    pub clients: usize,
    pub workload: workload::WorkloadCfg,
    pub nemesis: nemesis::NemesisCfg,
    /// Runs go to `<out>/<run-id>/`.
    pub out: PathBuf,
    /// Bound on the whole linearizability check.
    pub check_time: Duration,
    /// Bound on one key's search.
    pub max_steps: u64,
    /// Extra arguments for `memlog server` (e.g. `--unsafe-early-ack`).
    pub server_args: Vec<String>,
    /// Mean time between snapshots ([`saver`]); None takes none.
    pub save_interval: Option<Duration>,
    /// The txlog nodes' `--snapshot-every` (cluster mode).
    pub txlog_snapshot_every: u64,
}

/// What a run found.
#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub summary: String,
    pub linearizable: Verdict,
    pub lost_acked: usize,
    pub anomalies: usize,
}

impl RunOutcome {
    /// 0 pass, 1 violation (not linearizable, lost acked write, anomaly),
    /// 2 inconclusive (checker budget ran out).
    pub fn exit_code(&self) -> u8 {
        if self.linearizable == Verdict::NotLinearizable
            || self.lost_acked > 0
            || self.anomalies > 0
        {
            1
        } else if self.linearizable == Verdict::Unknown {
            2
        } else {
            0
        }
    }
}

/// Runs the workload against a fresh cluster, then checks the history.
pub fn run(cfg: &RunCfg) -> anyhow::Result<RunOutcome> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mode = match cfg.mode {
        cluster::Mode::Embedded => "embedded",
        cluster::Mode::Cluster => "cluster",
    };
    let dir = cfg.out.join(format!("{stamp}-{mode}-{}", cfg.seed));
    std::fs::create_dir_all(&dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let c = cluster::Cluster::start(
        cfg.mode,
        &dir.join("nodes"),
        &cfg.server_args,
        cfg.txlog_snapshot_every,
        rt.handle(),
    )?;
    let port = c.client_port();
    let cluster = Arc::new(Mutex::new(c));
    let rec = workload::Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    eprintln!(
        "memlog-jepsen: {mode}, seed {}, {} clients, {:?}, nemesis {:?}, in {}",
        cfg.seed,
        cfg.clients,
        cfg.time,
        cfg.nemesis
            .faults
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>(),
        dir.display()
    );
    let mut handles = Vec::new();
    for id in 0..cfg.clients {
        let (w, r, s) = (cfg.workload.clone(), rec.clone(), stop.clone());
        let seed = cfg.seed;
        handles.push(std::thread::spawn(move || {
            workload::client_loop(id as i64, port, w, r, s, seed)
        }));
    }
    let nem = {
        let (c, n, r, s) = (
            cluster.clone(),
            cfg.nemesis.clone(),
            rec.clone(),
            stop.clone(),
        );
        let seed = cfg.seed;
        std::thread::spawn(move || nemesis::run(c, n, r, s, seed))
    };
    let saves = cfg.save_interval.map(|interval| {
        let (c, r, s) = (cluster.clone(), rec.clone(), stop.clone());
        let seed = cfg.seed;
        std::thread::spawn(move || saver::run(c, interval, r, s, seed))
    });
    std::thread::sleep(cfg.time);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let mut counts = nem.join().unwrap_or_default();
    if let Some(saved) = saves.and_then(|h| h.join().ok()) {
        counts.insert("saved", saved);
    }
    // Heal, wait, read every key once more.
    let ready = {
        let mut c = cluster
            .lock()
            .map_err(|_| anyhow::anyhow!("cluster lock poisoned"))?;
        c.heal()?;
        c.wait_ready(Duration::from_secs(30))
    };
    if let Err(e) = &ready {
        eprintln!("memlog-jepsen: cluster not ready after healing: {e}");
    }
    let keys: BTreeSet<(ModelKind, String)> = rec
        .snapshot()
        .into_iter()
        .filter(|o| o.model != ModelKind::Nemesis)
        .map(|o| (o.model, o.key))
        .collect();
    let keys: Vec<_> = keys.into_iter().collect();
    workload::final_reads(port, &keys, &rec, Instant::now() + Duration::from_secs(30));
    if let Ok(mut c) = cluster.lock() {
        c.stop();
    }
    drop(rt);
    let ops = rec.snapshot();
    history::write_jsonl(&dir.join("history.jsonl"), &ops)?;
    let nemesis_desc = if counts.is_empty() {
        "none".to_string()
    } else {
        counts
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let outcome = check_and_report(&ops, cfg, dir, &nemesis_desc)?;
    Ok(outcome)
}

/// Checks a history (also used by `memlog-jepsen check FILE`), writes
/// report.txt and summary.txt into `dir`.
pub fn check_and_report(
    ops: &[Op],
    cfg: &RunCfg,
    dir: PathBuf,
    nemesis_desc: &str,
) -> anyhow::Result<RunOutcome> {
    let t = Instant::now();
    let results = checker::check_history(ops, cfg.check_time, cfg.max_steps);
    let verdict = checker::overall(&results);
    let lost = lost::check_lost(ops);
    let client: Vec<&Op> = ops.iter().filter(|o| o.process >= 0).collect();
    let count = |k: OpType| client.iter().filter(|o| o.kind == k).count();
    let lin = match verdict {
        Verdict::Linearizable => "yes",
        Verdict::NotLinearizable => "no",
        Verdict::Unknown => "unknown",
    };
    let summary = format!(
        "ops={} ok={} fail={} info={} linearizable={lin} lost_acked={} anomalies={} nemesis={nemesis_desc}",
        client.len(),
        count(OpType::Ok),
        count(OpType::Fail),
        count(OpType::Info),
        lost.lost_acked,
        lost.anomalies,
    );
    let mut rep = String::new();
    let _ = writeln!(rep, "memlog-jepsen report\n{summary}\n");
    let _ = writeln!(
        rep,
        "keys checked: {} (linearizable {}, not {}, unknown {}), check took {:.1}s",
        results.len(),
        results
            .iter()
            .filter(|r| r.verdict == Verdict::Linearizable)
            .count(),
        results
            .iter()
            .filter(|r| r.verdict == Verdict::NotLinearizable)
            .count(),
        results
            .iter()
            .filter(|r| r.verdict == Verdict::Unknown)
            .count(),
        t.elapsed().as_secs_f64()
    );
    if lost.unread_keys > 0 {
        let _ = writeln!(
            rep,
            "keys with writes but no final read (not checked for lost writes): {}",
            lost.unread_keys
        );
    }
    if !lost.details.is_empty() {
        let _ = writeln!(rep, "\n== lost acknowledged writes and anomalies");
        for d in lost.details.iter().take(50) {
            let _ = writeln!(rep, "  {d}");
        }
        if lost.details.len() > 50 {
            let _ = writeln!(rep, "  ... {} more", lost.details.len() - 50);
        }
    }
    let nemesis: Vec<&Op> = ops
        .iter()
        .filter(|o| o.model == ModelKind::Nemesis)
        .collect();
    if !nemesis.is_empty() {
        let _ = writeln!(rep, "\n== nemesis");
        for o in &nemesis {
            let _ = writeln!(rep, "  {}", o.describe());
        }
    }
    let prepared = checker::prepare(ops);
    let bad: Vec<_> = results
        .iter()
        .filter(|r| r.verdict == Verdict::NotLinearizable)
        .collect();
    for r in bad.iter().take(5) {
        let Some(kops) = prepared.get(&(r.model, r.key.clone())) else {
            continue;
        };
        let min = checker::minimize(r.model, kops, Duration::from_secs(5));
        let _ = writeln!(
            rep,
            "\n== key {} ({:?}): not linearizable; smallest failing sub-history found: {} of {} ops",
            r.key,
            r.model,
            min.len(),
            kops.len()
        );
        let shown: Vec<&Op> = if min.len() > 40 {
            let _ = writeln!(rep, "  (first 5 and last 30 shown)");
            min[..5]
                .iter()
                .chain(min[min.len() - 30..].iter())
                .collect()
        } else {
            min.iter().collect()
        };
        for o in shown {
            let _ = writeln!(rep, "  {}", o.describe());
        }
        // Nemesis events during the window, for context.
        if let (Some(first), Some(last)) = (min.first(), min.last()) {
            let end = last.complete_ns.unwrap_or(u64::MAX);
            let during: Vec<&&Op> = nemesis
                .iter()
                .filter(|n| n.invoke_ns >= first.invoke_ns && n.invoke_ns <= end)
                .collect();
            if !during.is_empty() {
                let _ = writeln!(rep, "  nemesis meanwhile:");
                for n in during {
                    let _ = writeln!(rep, "    {}", n.describe());
                }
            }
        }
    }
    if bad.len() > 5 {
        let _ = writeln!(rep, "\n({} more non-linearizable keys)", bad.len() - 5);
    }
    std::fs::write(dir.join("report.txt"), &rep)?;
    std::fs::write(dir.join("summary.txt"), format!("{summary}\n"))?;
    Ok(RunOutcome {
        dir,
        summary,
        linearizable: verdict,
        lost_acked: lost.lost_acked,
        anomalies: lost.anomalies,
    })
}
