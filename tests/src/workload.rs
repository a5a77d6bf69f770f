//! A write workload that records what the server acknowledged, and the
//! checks that nothing acknowledged was lost (durability tests).
//!
//! Each client thread, until stopped or its connection fails, cycles
//! through: `SET` of a key unique to it, `INCR` of a shared counter, `RPUSH`
//! of a unique element to a shared list. Before sending it counts the
//! attempt; after an OK/integer reply it records the acknowledgement.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{RawConn, RespValue};

pub const COUNTERS: usize = 4;
pub const LISTS: usize = 4;

/// What one run of the workload acknowledged and attempted.
#[derive(Debug, Default, Clone)]
pub struct Ledger {
    /// key -> value of every acknowledged SET.
    pub sets: HashMap<String, String>,
    /// Acknowledged / attempted INCRs per counter.
    pub incr_acked: [u64; COUNTERS],
    pub incr_attempted: [u64; COUNTERS],
    /// (list, client tag) -> acknowledged elements in push order.
    pub pushes: HashMap<(usize, String), Vec<String>>,
    /// Acknowledged operations in total.
    pub acked: u64,
    /// Error replies seen (e.g. TRYAGAIN while the log fails over).
    pub errors: u64,
}

impl Ledger {
    pub fn merge(&mut self, o: Ledger) {
        self.sets.extend(o.sets);
        for i in 0..COUNTERS {
            self.incr_acked[i] += o.incr_acked[i];
            self.incr_attempted[i] += o.incr_attempted[i];
        }
        for (k, v) in o.pushes {
            self.pushes.entry(k).or_default().extend(v);
        }
        self.acked += o.acked;
        self.errors += o.errors;
    }
}

/// Runs `clients` threads against `port` until `stop` is set or their
/// connection breaks; `tag` makes keys unique per run. With
/// `retry_errors`, error replies are counted and the client goes on.
pub fn run_clients(
    port: u16,
    clients: usize,
    tag: &str,
    stop: Arc<AtomicBool>,
    retry_errors: bool,
) -> Ledger {
    let total = Arc::new(Mutex::new(Ledger::default()));
    let mut threads = Vec::new();
    for c in 0..clients {
        let (stop, total, tag) = (stop.clone(), total.clone(), format!("{tag}:{c}"));
        threads.push(std::thread::spawn(move || {
            let mut l = Ledger::default();
            if let Ok(mut conn) = RawConn::connect(port) {
                client_loop(&mut conn, c, &tag, &stop, retry_errors, &mut l);
            }
            if let Ok(mut t) = total.lock() {
                t.merge(l);
            }
        }));
    }
    for t in threads {
        let _ = t.join();
    }
    let l = total.lock().map(|t| t.clone()).unwrap_or_default();
    l
}

fn client_loop(
    conn: &mut RawConn,
    c: usize,
    tag: &str,
    stop: &AtomicBool,
    retry_errors: bool,
    l: &mut Ledger,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let r = match n % 3 {
            0 => {
                let (k, v) = (format!("k:{tag}:{n}"), format!("v{n}"));
                match conn.call(&["SET", &k, &v]) {
                    Ok(RespValue::Simple(s)) if s == "OK" => {
                        l.sets.insert(k, v);
                        Ok(())
                    }
                    Ok(other) => Err(Some(other)),
                    Err(_) => Err(None),
                }
            }
            1 => {
                let i = (n as usize + c) % COUNTERS;
                l.incr_attempted[i] += 1;
                match conn.call(&["INCR", &format!("ctr{i}")]) {
                    Ok(RespValue::Int(_)) => {
                        l.incr_acked[i] += 1;
                        Ok(())
                    }
                    Ok(other) => Err(Some(other)),
                    Err(_) => Err(None),
                }
            }
            _ => {
                let i = c % LISTS;
                let e = format!("{tag}:{n}");
                match conn.call(&["RPUSH", &format!("list{i}"), &e]) {
                    Ok(RespValue::Int(_)) => {
                        l.pushes.entry((i, tag.to_string())).or_default().push(e);
                        Ok(())
                    }
                    Ok(other) => Err(Some(other)),
                    Err(_) => Err(None),
                }
            }
        };
        match r {
            Ok(()) => l.acked += 1,
            Err(Some(RespValue::Error(_))) if retry_errors => {
                l.errors += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return,
        }
    }
}

/// Checks that the server on `port` holds everything `l` acknowledged.
pub fn verify(port: u16, l: &Ledger) -> anyhow::Result<()> {
    let mut conn = RawConn::connect(port)?;
    // The server may still be recovering: wait for it to answer.
    let mut tries = 0;
    loop {
        match conn.call(&["PING"])? {
            RespValue::Simple(_) => break,
            other => {
                tries += 1;
                anyhow::ensure!(tries < 600, "server never served again: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    let keys: Vec<&String> = l.sets.keys().collect();
    for chunk in keys.chunks(500) {
        let mut args = vec!["MGET".to_string()];
        args.extend(chunk.iter().map(|k| k.to_string()));
        let RespValue::Array(vals) = conn.call(&args)? else {
            anyhow::bail!("MGET failed");
        };
        for (k, v) in chunk.iter().zip(vals) {
            let want = &l.sets[*k];
            anyhow::ensure!(
                v == RespValue::Bulk(want.as_bytes().to_vec()),
                "acknowledged SET {k} = {want} lost: found {v:?}"
            );
        }
    }
    for i in 0..COUNTERS {
        let v = match conn.call(&["GET", &format!("ctr{i}")])? {
            RespValue::Bulk(b) => String::from_utf8(b)?.parse::<u64>()?,
            RespValue::Null => 0,
            other => anyhow::bail!("counter {i}: {other:?}"),
        };
        anyhow::ensure!(
            v >= l.incr_acked[i] && v <= l.incr_attempted[i],
            "counter {i} = {v}, acknowledged {} attempted {}",
            l.incr_acked[i],
            l.incr_attempted[i]
        );
    }
    for i in 0..LISTS {
        let RespValue::Array(items) = conn.call(&["LRANGE", &format!("list{i}"), "0", "-1"])?
        else {
            anyhow::bail!("LRANGE failed");
        };
        let items: Vec<String> = items
            .into_iter()
            .filter_map(|v| match v {
                RespValue::Bulk(b) => String::from_utf8(b).ok(),
                _ => None,
            })
            .collect();
        for ((list, tag), acked) in &l.pushes {
            if *list != i {
                continue;
            }
            // Every acknowledged element, in push order (a subsequence).
            let prefix = format!("{tag}:");
            let mine: Vec<&String> = items.iter().filter(|e| e.starts_with(&prefix)).collect();
            let mut it = mine.iter();
            for e in acked {
                anyhow::ensure!(
                    it.any(|m| *m == e),
                    "list{i}: acknowledged element {e} missing or out of order"
                );
            }
        }
    }
    Ok(())
}
