//! `memlog txlog bench`: append throughput and latency against a running
//! group for several numbers of concurrent appenders, next to the raw
//! fdatasync latency of a local disk measured in the same run.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;

use crate::client::TxlogClient;
use crate::pipeline::AppendPipeline;
use crate::types::Condition;

/// Options of `memlog txlog bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Comma-separated node addresses (host:port).
    #[arg(long)]
    pub addr: String,
    /// Comma-separated numbers of concurrent appenders to measure.
    #[arg(long, default_value = "1,16,64,256")]
    pub clients: String,
    /// Payload bytes per append.
    #[arg(long, default_value_t = 256)]
    pub payload: usize,
    /// Seconds per appender count.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// `pipeline`: appenders share one coalescing AppendStream (the engine's
    /// write path); `unary`: one Append RPC per append.
    #[arg(long, default_value = "pipeline")]
    pub mode: String,
    /// Directory on the disk whose fdatasync latency to measure.
    #[arg(long, default_value = ".")]
    pub fsync_dir: PathBuf,
}

/// One measured configuration.
#[derive(Debug, Clone)]
pub struct BenchResult {
    pub clients: usize,
    pub appends_per_sec: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub errors: u64,
    /// Appends per AppendStream request (pipeline mode; 1 for unary).
    pub appends_per_request: f64,
}

fn new_hist() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, 60_000_000, 3).context("histogram")
}

/// How [`fdatasync_latency`] writes its 4 KiB blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncedWrite {
    /// At the end of the file, which grows: each sync also makes the file
    /// system record the new size (what a log that appends to its files
    /// pays, and Redis' AOF).
    Append,
    /// Over blocks the file already has (written and synced before): data
    /// only, what the txlog's preallocated segments pay.
    Overwrite,
}

/// Measures fdatasync of 4 KiB writes in `dir`: (p50, p99) in microseconds.
pub fn fdatasync_latency(
    dir: &std::path::Path,
    rounds: usize,
    how: SyncedWrite,
) -> anyhow::Result<(u64, u64)> {
    use std::os::unix::fs::FileExt;
    let path = dir.join(format!(".txlog-fsync-probe-{}", std::process::id()));
    let mut f =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let block = vec![0xabu8; 4096];
    if how == SyncedWrite::Overwrite {
        for _ in 0..rounds {
            f.write_all(&[0u8; 4096])?;
        }
        f.sync_all()?;
    }
    let mut h = new_hist()?;
    for i in 0..rounds {
        let t = Instant::now();
        match how {
            SyncedWrite::Append => f.write_all(&block)?,
            SyncedWrite::Overwrite => f.write_all_at(&block, (i * block.len()) as u64)?,
        }
        f.sync_data()?;
        h.record(t.elapsed().as_micros().max(1) as u64)?;
    }
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok((h.value_at_quantile(0.5), h.value_at_quantile(0.99)))
}

/// [`fdatasync_latency`] of 200 rounds, off the runtime's threads.
async fn fdatasync_latency_of(
    dir: &std::path::Path,
    how: SyncedWrite,
) -> anyhow::Result<(u64, u64)> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || fdatasync_latency(&dir, 200, how)).await?
}

/// Runs `clients` appenders for `seconds` on a fresh log.
pub async fn measure(
    client: &TxlogClient,
    clients: usize,
    payload: usize,
    seconds: u64,
    pipelined: bool,
) -> anyhow::Result<BenchResult> {
    let log = format!("bench-{clients}-{}", rand::random::<u32>());
    let (epoch, _) = client
        .take_leadership(&log, "bench", 0)
        .await
        .context("taking leadership of the bench log")?;
    let data = Bytes::from(vec![0x5au8; payload]);
    let pipeline = if pipelined {
        Some(AppendPipeline::open(client, &log, epoch).await?)
    } else {
        None
    };
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (client, log, data) = (client.clone(), log.clone(), data.clone());
        let pipeline = pipeline.clone();
        tasks.push(tokio::spawn(async move {
            let mut h = new_hist()?;
            let mut errors = 0u64;
            while Instant::now() < end {
                let t = Instant::now();
                let r = match &pipeline {
                    Some(p) => p.append(vec![data.clone()]).await,
                    None => {
                        client
                            .append(&log, Condition::Epoch(epoch), vec![data.clone()])
                            .await
                    }
                };
                match r {
                    Ok(_) => h.record(t.elapsed().as_micros().max(1) as u64)?,
                    Err(_) => errors += 1,
                }
            }
            anyhow::Ok((h, errors))
        }));
    }
    let mut total = new_hist()?;
    let mut errors = 0;
    for t in tasks {
        let (h, e) = t.await??;
        total.add(h)?;
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let requests = pipeline.as_ref().map_or(total.len(), |p| p.requests_sent());
    Ok(BenchResult {
        appends_per_request: total.len() as f64 / requests.max(1) as f64,
        clients,
        appends_per_sec: total.len() as f64 / elapsed,
        p50_us: total.value_at_quantile(0.5),
        p99_us: total.value_at_quantile(0.99),
        p999_us: total.value_at_quantile(0.999),
        errors,
    })
}

/// The whole bench, printed to stdout.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let client = TxlogClient::from_list(&args.addr)?;
    let counts: Vec<usize> = args
        .clients
        .split(',')
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()
        .context("--clients must be a comma-separated list of numbers")?;
    let (fs_p50, fs_p99) = fdatasync_latency_of(&args.fsync_dir, SyncedWrite::Append).await?;
    println!(
        "fdatasync 4KiB ({}): p50={fs_p50}us p99={fs_p99}us",
        args.fsync_dir.display()
    );
    let (over_p50, over_p99) =
        fdatasync_latency_of(&args.fsync_dir, SyncedWrite::Overwrite).await?;
    println!(
        "fdatasync 4KiB overwriting (as the log's segments): p50={over_p50}us p99={over_p99}us"
    );
    println!("mode: {}, payload {} bytes", args.mode, args.payload);
    let mut results = Vec::new();
    for n in counts {
        let r = measure(&client, n, args.payload, args.seconds, args.mode != "unary").await?;
        println!(
            "appenders={:<4} appends/s={:>10.0} p50={}us p99={}us p999={}us errors={} appends/request={:.1}",
            r.clients,
            r.appends_per_sec,
            r.p50_us,
            r.p99_us,
            r.p999_us,
            r.errors,
            r.appends_per_request
        );
        results.push(r);
    }
    let (fs2_p50, _) = fdatasync_latency_of(&args.fsync_dir, SyncedWrite::Append).await?;
    println!("fdatasync 4KiB again after the run: p50={fs2_p50}us");
    let one = results.iter().find(|r| r.clients == 1);
    let many = results.iter().find(|r| r.clients == 64);
    if let (Some(one), Some(many)) = (one, many) {
        println!(
            "ratio throughput(64)/throughput(1) = {:.1} (goal >= 30)",
            many.appends_per_sec / one.appends_per_sec.max(1e-9)
        );
        println!(
            "ratio p50(1 appender)/p50(fdatasync) = {:.2} (goal <= 3)",
            one.p50_us as f64 / fs_p50.max(1) as f64
        );
        println!(
            "ratio p50(1 appender)/p50(fdatasync overwriting) = {:.2}",
            one.p50_us as f64 / over_p50.max(1) as f64
        );
    }
    Ok(())
}
