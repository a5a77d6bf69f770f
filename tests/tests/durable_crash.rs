//! kill -9 under load: every write the server acknowledged survives the
//! crash (durable mode, embedded log and a three-node txlog).
//!
//! Each iteration: 16 clients SET unique keys, INCR shared counters and
//! RPUSH to shared lists; the server is killed with SIGKILL at a random
//! moment and restarted on the same data; then every acknowledged SET must
//! hold its value, every list every acknowledged element in order, and every
//! counter at least its acknowledged and at most its attempted increments.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memlog_tests::workload::{run_clients, verify, Ledger};
use memlog_tests::{MemlogServer, TxlogCluster};
use rand::Rng;

const CLIENTS: usize = 16;

fn crash_loop(server: &mut MemlogServer, iterations: usize) {
    let mut total = Ledger::default();
    let mut rng = rand::thread_rng();
    for it in 0..iterations {
        let stop = Arc::new(AtomicBool::new(false));
        let port = server.port;
        let s = stop.clone();
        let load =
            std::thread::spawn(move || run_clients(port, CLIENTS, &format!("i{it}"), s, false));
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..300)));
        // The clients stop when their connections break.
        server.restart().expect("restart");
        stop.store(true, Ordering::Relaxed);
        let l = load.join().expect("load thread");
        total.merge(l);
        verify(server.port, &total).unwrap_or_else(|e| panic!("iteration {it}: {e:#}"));
    }
    assert!(total.acked > 0, "no write was acknowledged at all");
    eprintln!(
        "{iterations} crashes: {} acknowledged writes, {} acknowledged SET keys checked",
        total.acked,
        total.sets.len()
    );
}

#[test]
fn kill_9_under_load_embedded() {
    let mut server = MemlogServer::start(&["--lease-ms", "500"]).expect("server");
    crash_loop(&mut server, 20);
}

#[test]
fn kill_9_under_load_three_node_txlog() {
    let cluster = TxlogCluster::start().expect("cluster");
    let mut server = cluster.server(&["--lease-ms", "500"]).expect("server");
    crash_loop(&mut server, 20);
}
