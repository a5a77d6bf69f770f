//! Snapshots taken during a run, as an operator would: `SAVE` or `BGSAVE`
//! sent straight to the server's own port (not through the client proxy) at
//! random intervals, whatever the nemesis is doing. Each snapshot lets the
//! server trim its log, so the run also covers recovery from a snapshot
//! plus the log's tail after kill -9 and, in cluster mode (with the nodes'
//! `--snapshot-every` set low), Raft log purges and snapshot installs on
//! nodes that were down or cut off. Every attempt is recorded in the
//! history as a `nemesis` op with the server's reply.

use super::cluster::Cluster;
use super::nemesis::event;
use super::workload::Recorder;
use crate::{RawConn, RespValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends a snapshot command about every `interval` until `stop`; returns
/// how many the server answered `+OK` (or "Background saving started").
pub fn run(
    cluster: Arc<Mutex<Cluster>>,
    interval: Duration,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> usize {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0073_6176_6572);
    let ms = interval.as_millis().max(2) as u64;
    let mut ok = 0;
    loop {
        let end = Instant::now() + Duration::from_millis(rng.gen_range(ms / 2..=ms + ms / 2));
        while Instant::now() < end {
            if stop.load(Ordering::Relaxed) {
                return ok;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // The server's own port: a snapshot is not a client operation, and
        // the client proxy may be cut.
        let Some(port) = cluster.lock().ok().map(|c| c.nodes[0].port) else {
            return ok;
        };
        let cmd = if rng.gen_bool(0.5) { "SAVE" } else { "BGSAVE" };
        let t0 = rec.now();
        let reply =
            RawConn::connect_timeout(port, Duration::from_secs(5)).and_then(|mut c| c.call(&[cmd]));
        let what = match reply {
            Ok(RespValue::Simple(s)) => {
                ok += 1;
                format!("{cmd}: {s}")
            }
            Ok(RespValue::Error(e)) => format!("{cmd}: -{e}"),
            Ok(other) => format!("{cmd}: unexpected reply {other:?}"),
            Err(e) => format!("{cmd}: {e}"),
        };
        event(&rec, t0, what);
    }
}
