//! Client workloads over real RESP connections, every call under a timeout.
//!
//! - register: GET / SET / compare-and-set (WATCH k, GET k, MULTI, SET k new,
//!   EXEC: a nil EXEC means someone wrote in between, so the CAS failed).
//! - counter: GET / INCRBY k d (INCRBY answers the new value).
//! - list: LRANGE k 0 -1 / MULTI, RPUSH k v, EXEC.
//!
//! Keys rotate: after about `ops_per_key` operations per key the workload
//! moves to fresh keys, which keeps every key's history small enough to
//! check. Values written are unique per run.

use super::history::{ModelKind, Op, OpType, Res, F};
use crate::{RawConn, RespValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct WorkloadCfg {
    pub kinds: Vec<ModelKind>,
    /// Keys per kind alive at a time.
    pub keys: u64,
    pub ops_per_key: u64,
    pub op_timeout: Duration,
    /// Each client sleeps a random 0..=pause between operations.
    pub pause: Duration,
}

/// Collects completed operations from every client.
pub struct Recorder {
    pub start: Instant,
    ops: Mutex<Vec<Op>>,
    pub op_count: AtomicU64,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            ops: Mutex::new(Vec::new()),
            op_count: AtomicU64::new(0),
        })
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    pub fn push(&self, op: Op) {
        if let Ok(mut v) = self.ops.lock() {
            v.push(op);
        }
    }

    /// Every op so far, sorted by invocation, indexed.
    pub fn snapshot(&self) -> Vec<Op> {
        let mut v = self.ops.lock().map(|v| v.clone()).unwrap_or_default();
        v.sort_by_key(|o| (o.invoke_ns, o.complete_ns));
        for (i, o) in v.iter_mut().enumerate() {
            o.index = i;
        }
        v
    }
}

pub fn kind_name(k: ModelKind) -> &'static str {
    match k {
        ModelKind::Register => "register",
        ModelKind::Counter => "counter",
        ModelKind::List => "list",
        ModelKind::Nemesis => "nemesis",
    }
}

/// The outcome of one RESP call.
enum Call {
    Reply(RespValue),
    /// Nothing was sent (connect failed / write failed before any byte).
    NotSent(String),
    /// Sent, no reply: timeout or reset.
    Lost(String),
}

struct Client {
    id: i64,
    port: u16,
    conn: Option<RawConn>,
    timeout: Duration,
}

impl Client {
    fn call(&mut self, args: &[&str]) -> Call {
        if self.conn.is_none() {
            // A fresh connection must answer PING before the operation is
            // sent: through a proxy, "connected" does not mean the server is
            // there, and an operation sent into a dead link is unknown.
            let fresh = RawConn::connect_timeout(self.port, self.timeout).and_then(|mut c| match c
                .call(
                &["PING"],
            )? {
                RespValue::Simple(s) if s == "PONG" => Ok(c),
                other => Err(std::io::Error::other(format!("PING answered {other:?}"))),
            });
            match fresh {
                Ok(c) => self.conn = Some(c),
                Err(e) => {
                    // Back off so that a dead server does not turn into a
                    // flood of failed operations.
                    std::thread::sleep(Duration::from_millis(100));
                    return Call::NotSent(format!("connect: {e}"));
                }
            }
        }
        let Some(conn) = self.conn.as_mut() else {
            return Call::NotSent("no connection".into());
        };
        if let Err(e) = conn.send(args) {
            self.conn = None;
            // A partial write may have reached the server; be conservative.
            return Call::Lost(format!("send: {e}"));
        }
        match conn.read() {
            Ok(v) => Call::Reply(v),
            Err(e) => {
                self.conn = None;
                Call::Lost(format!("recv: {e}"))
            }
        }
    }

    /// Abandon the connection (after an unexpected reply mid-transaction).
    fn reset(&mut self) {
        self.conn = None;
    }
}

/// Classifies an error reply to a write: definite failures vs unknown.
fn write_error_kind(msg: &str) -> OpType {
    let definite = ["WRONGTYPE", "EXECABORT", "ERR wrong number", "ERR unknown"];
    if definite.iter().any(|d| msg.starts_with(d)) {
        OpType::Fail
    } else {
        // -TRYAGAIN, -READONLY, -LOADING, anything else after sending.
        OpType::Info
    }
}

fn int_of(v: &RespValue) -> Option<i64> {
    match v {
        RespValue::Int(i) => Some(*i),
        RespValue::Bulk(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        _ => None,
    }
}

/// Runs one client until `stop`.
pub fn client_loop(
    id: i64,
    port: u16,
    cfg: WorkloadCfg,
    rec: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut client = Client {
        id,
        port,
        conn: None,
        timeout: cfg.op_timeout,
    };
    let mut seq: i64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let n = rec.op_count.fetch_add(1, Ordering::Relaxed);
        let kind = cfg.kinds[rng.gen_range(0..cfg.kinds.len())];
        let per_gen = cfg.ops_per_key * cfg.keys * cfg.kinds.len() as u64;
        let generation = n / per_gen.max(1);
        let key = format!(
            "{}-{generation}-{}",
            kind_name(kind),
            rng.gen_range(0..cfg.keys)
        );
        seq += 1;
        let value = (id + 1) * 100_000_000 + seq;
        let roll: f64 = rng.gen();
        let op = match kind {
            ModelKind::Register if roll < 0.4 => read(&mut client, &rec, kind, &key),
            ModelKind::Register if roll < 0.7 => {
                simple_write(&mut client, &rec, kind, F::Write, &key, value)
            }
            ModelKind::Register => cas(&mut client, &rec, &key, value),
            ModelKind::Counter if roll < 0.3 => read(&mut client, &rec, kind, &key),
            ModelKind::Counter => {
                let d = rng.gen_range(1..=5);
                simple_write(&mut client, &rec, kind, F::Incr, &key, d)
            }
            ModelKind::List if roll < 0.3 => read(&mut client, &rec, kind, &key),
            ModelKind::List => append(&mut client, &rec, &key, value),
            ModelKind::Nemesis => None,
        };
        if let Some(op) = op {
            let unknown = op.kind == OpType::Info;
            rec.push(op);
            if unknown {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if !cfg.pause.is_zero() {
            let us = rng.gen_range(0..=cfg.pause.as_micros() as u64);
            std::thread::sleep(Duration::from_micros(us));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn mk(
    c: &Client,
    model: ModelKind,
    f: F,
    key: &str,
    arg: Vec<i64>,
    result: Res,
    kind: OpType,
    t0: u64,
    t1: u64,
    note: Option<String>,
) -> Op {
    Op {
        index: 0,
        process: c.id,
        model,
        f,
        key: key.to_string(),
        arg,
        result,
        kind,
        invoke_ns: t0,
        complete_ns: (kind != OpType::Info).then_some(t1),
        note,
    }
}

/// A read: GET or LRANGE. Errors and timeouts are info (dropped by the checker).
fn read(c: &mut Client, rec: &Recorder, model: ModelKind, key: &str) -> Option<Op> {
    let t0 = rec.now();
    let r = match model {
        ModelKind::List => c.call(&["LRANGE", key, "0", "-1"]),
        _ => c.call(&["GET", key]),
    };
    let t1 = rec.now();
    let (result, kind, note) = match r {
        Call::Reply(RespValue::Error(e)) => (Res::Nil, OpType::Fail, Some(e)),
        Call::Reply(v) => match (model, v) {
            (ModelKind::List, RespValue::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for it in &items {
                    out.push(int_of(it)?);
                }
                (Res::List(out), OpType::Ok, None)
            }
            (ModelKind::List, other) => (Res::Nil, OpType::Fail, Some(format!("{other:?}"))),
            (ModelKind::Counter, RespValue::Null) => (Res::Int(0), OpType::Ok, None),
            (_, RespValue::Null) => (Res::Nil, OpType::Ok, None),
            (_, other) => match int_of(&other) {
                Some(i) => (Res::Int(i), OpType::Ok, None),
                None => (Res::Nil, OpType::Fail, Some(format!("{other:?}"))),
            },
        },
        Call::NotSent(e) => (Res::Nil, OpType::Fail, Some(e)),
        Call::Lost(e) => (Res::Nil, OpType::Info, Some(e)),
    };
    Some(mk(
        c,
        model,
        F::Read,
        key,
        vec![],
        result,
        kind,
        t0,
        t1,
        note,
    ))
}

/// SET key v (register) or INCRBY key d (counter).
fn simple_write(
    c: &mut Client,
    rec: &Recorder,
    model: ModelKind,
    f: F,
    key: &str,
    v: i64,
) -> Option<Op> {
    let vs = v.to_string();
    let t0 = rec.now();
    let r = match f {
        F::Incr => c.call(&["INCRBY", key, &vs]),
        _ => c.call(&["SET", key, &vs]),
    };
    let t1 = rec.now();
    let (result, kind, note) = match r {
        Call::Reply(RespValue::Error(e)) => (Res::Nil, write_error_kind(&e), Some(e)),
        Call::Reply(RespValue::Int(i)) if f == F::Incr => (Res::Int(i), OpType::Ok, None),
        Call::Reply(RespValue::Simple(s)) if f == F::Write && s == "OK" => {
            (Res::Nil, OpType::Ok, None)
        }
        Call::Reply(other) => {
            c.reset();
            (
                Res::Nil,
                OpType::Info,
                Some(format!("unexpected {other:?}")),
            )
        }
        Call::NotSent(e) => (Res::Nil, OpType::Fail, Some(e)),
        Call::Lost(e) => (Res::Nil, OpType::Info, Some(e)),
    };
    Some(mk(c, model, f, key, vec![v], result, kind, t0, t1, note))
}

/// The reply to EXEC of a one-command transaction: ok / fail / info.
fn exec_outcome(r: Call, expect_ok: impl Fn(&RespValue) -> bool) -> (OpType, Option<String>) {
    match r {
        Call::Reply(RespValue::NullArray) | Call::Reply(RespValue::Null) => {
            (OpType::Fail, Some("EXEC aborted (WATCH)".into()))
        }
        Call::Reply(RespValue::Error(e)) => (write_error_kind(&e), Some(e)),
        Call::Reply(RespValue::Array(items)) => match items.first() {
            Some(RespValue::Error(e)) => (write_error_kind(e), Some(e.clone())),
            Some(v) if items.len() == 1 && expect_ok(v) => (OpType::Ok, None),
            _ => (
                OpType::Info,
                Some(format!("unexpected EXEC reply {items:?}")),
            ),
        },
        Call::Reply(other) => (OpType::Info, Some(format!("unexpected {other:?}"))),
        Call::NotSent(e) | Call::Lost(e) => (OpType::Info, Some(e)),
    }
}

/// Sends MULTI and one queued command; Err(note) if the transaction never
/// reached EXEC (nothing happened).
fn queue(c: &mut Client, cmd: &[&str]) -> Result<(), String> {
    for args in [&["MULTI"][..], cmd] {
        match c.call(args) {
            Call::Reply(RespValue::Simple(_)) => {}
            Call::Reply(other) => {
                c.reset();
                return Err(format!("{} answered {other:?}", args[0]));
            }
            Call::NotSent(e) | Call::Lost(e) => {
                c.reset();
                return Err(e);
            }
        }
    }
    Ok(())
}

/// WATCH k; GET k; MULTI; SET k new; EXEC. Recorded as cas [old, new]; when
/// the key is missing or unreadable it is recorded as the read it was.
fn cas(c: &mut Client, rec: &Recorder, key: &str, new: i64) -> Option<Op> {
    let model = ModelKind::Register;
    let t0 = rec.now();
    let fail = |c: &mut Client, rec: &Recorder, note: String| {
        c.reset();
        let t1 = rec.now();
        Some(mk(
            c,
            model,
            F::Cas,
            key,
            vec![0, new],
            Res::Nil,
            OpType::Fail,
            t0,
            t1,
            Some(note),
        ))
    };
    match c.call(&["WATCH", key]) {
        Call::Reply(RespValue::Simple(_)) => {}
        Call::Reply(other) => return fail(c, rec, format!("WATCH answered {other:?}")),
        Call::NotSent(e) | Call::Lost(e) => return fail(c, rec, e),
    }
    let old = match c.call(&["GET", key]) {
        Call::Reply(RespValue::Null) => {
            let _ = c.call(&["UNWATCH"]);
            let t1 = rec.now();
            return Some(mk(
                c,
                model,
                F::Read,
                key,
                vec![],
                Res::Nil,
                OpType::Ok,
                t0,
                t1,
                None,
            ));
        }
        Call::Reply(v) => match int_of(&v) {
            Some(i) => i,
            None => return fail(c, rec, format!("GET answered {v:?}")),
        },
        Call::NotSent(e) | Call::Lost(e) => return fail(c, rec, e),
    };
    let new_s = new.to_string();
    if let Err(e) = queue(c, &["SET", key, &new_s]) {
        return fail(c, rec, e);
    }
    let r = c.call(&["EXEC"]);
    let (kind, note) = exec_outcome(r, |v| matches!(v, RespValue::Simple(s) if s == "OK"));
    if kind == OpType::Info {
        c.reset();
    }
    let t1 = rec.now();
    Some(mk(
        c,
        model,
        F::Cas,
        key,
        vec![old, new],
        Res::Nil,
        kind,
        t0,
        t1,
        note,
    ))
}

/// MULTI; RPUSH k v; EXEC.
fn append(c: &mut Client, rec: &Recorder, key: &str, v: i64) -> Option<Op> {
    let model = ModelKind::List;
    let vs = v.to_string();
    let t0 = rec.now();
    let (kind, note) = match queue(c, &["RPUSH", key, &vs]) {
        Err(e) => (OpType::Fail, Some(e)),
        Ok(()) => {
            let r = c.call(&["EXEC"]);
            exec_outcome(r, |v| matches!(v, RespValue::Int(_)))
        }
    };
    if kind == OpType::Info {
        c.reset();
    }
    let t1 = rec.now();
    Some(mk(
        c,
        model,
        F::Append,
        key,
        vec![v],
        Res::Nil,
        kind,
        t0,
        t1,
        note,
    ))
}

/// After the run: one read of every key the history touched, retried until
/// `deadline`; recorded as process -2.
pub fn final_reads(port: u16, keys: &[(ModelKind, String)], rec: &Recorder, deadline: Instant) {
    let mut c = Client {
        id: super::lost::FINAL_PROCESS,
        port,
        conn: None,
        timeout: Duration::from_secs(2),
    };
    for (model, key) in keys {
        loop {
            if let Some(op) = read(&mut c, rec, *model, key) {
                if op.kind == OpType::Ok || Instant::now() > deadline {
                    rec.push(op);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
