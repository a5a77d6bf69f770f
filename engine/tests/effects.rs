//! The effects property: for random command sequences, a second engine fed
//! only the first engine's effect records ends with the same data set.
//! This is what makes replicas, recovery and the snapshotter agree with the
//! primary, so it covers every command family (unknown or failing commands
//! simply emit nothing).

use bytes::Bytes;
use memlog_engine::keyspace::ClientId;
use memlog_engine::resp::ReplyBuf;
use memlog_engine::{Engine, EngineOptions};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const KEYS: &[&str] = &["k1", "k2", "k3", "k4", "{t}a", "{t}b"];
const VALS: &[&str] = &["a", "b", "c", "1", "2", "-3", "10.5", "", "zz"];

fn pick<'a>(rng: &mut StdRng, xs: &'a [&'a str]) -> &'a str {
    xs.choose(rng).copied().unwrap_or("x")
}

/// One random command; `{k}` a key, `{v}` a value, `{n}` a small integer,
/// `{f}` a float, `{t}` a timeout.
fn random_command(rng: &mut StdRng) -> Vec<String> {
    const TEMPLATES: &[&str] = &[
        "SET {k} {v}",
        "SET {k} {v} EX 100",
        "SET {k} {v} PX 50000 GET",
        "SET {k} {v} NX",
        "SET {k} {v} XX KEEPTTL",
        "SETEX {k} 100 {v}",
        "PSETEX {k} 100000 {v}",
        "SETNX {k} {v}",
        "GETSET {k} {v}",
        "GETDEL {k}",
        "GETEX {k} EX 100",
        "GETEX {k} PERSIST",
        "MSET {k} {v} {k} {v}",
        "MSETNX {k} {v} {k} {v}",
        "APPEND {k} {v}",
        "INCR {k}",
        "DECR {k}",
        "INCRBY {k} {n}",
        "DECRBY {k} {n}",
        "INCRBYFLOAT {k} {f}",
        "SETRANGE {k} {n} {v}",
        "SETBIT {k} {n} 1",
        "BITOP OR {k} {k} {k}",
        "BITFIELD {k} INCRBY u8 {n} 7",
        "DEL {k} {k}",
        "UNLINK {k}",
        "EXPIRE {k} 100",
        "PEXPIRE {k} 100000",
        "EXPIREAT {k} 1",
        "PEXPIREAT {k} 4000000000000",
        "EXPIRE {k} 100 NX",
        "PERSIST {k}",
        "RENAME {k} {k}",
        "RENAMENX {k} {k}",
        "COPY {k} {k} REPLACE",
        "MOVE {k} 1",
        "SWAPDB 0 1",
        "SELECT 1",
        "SELECT 0",
        "FLUSHDB",
        "SORT {k} ALPHA STORE {k}",
        "LPUSH {k} {v} {v}",
        "RPUSH {k} {v}",
        "LPUSHX {k} {v}",
        "LPOP {k}",
        "RPOP {k} {n}",
        "LSET {k} {n} {v}",
        "LINSERT {k} BEFORE {v} {v}",
        "LREM {k} {n} {v}",
        "LTRIM {k} {n} {n}",
        "LMOVE {k} {k} LEFT RIGHT",
        "RPOPLPUSH {k} {k}",
        "LMPOP 2 {k} {k} LEFT COUNT 2",
        "BLPOP {k} {k} {t}",
        "BRPOP {k} {t}",
        "BLMOVE {k} {k} RIGHT LEFT {t}",
        "BLMPOP {t} 1 {k} RIGHT",
        "HSET {k} {v} {v} {v} {v}",
        "HSETNX {k} {v} {v}",
        "HDEL {k} {v}",
        "HINCRBY {k} {v} {n}",
        "HINCRBYFLOAT {k} {v} {f}",
        "HMSET {k} {v} {v}",
        "SADD {k} {v} {v} {v}",
        "SREM {k} {v}",
        "SPOP {k}",
        "SPOP {k} {n}",
        "SMOVE {k} {k} {v}",
        "SINTERSTORE {k} {k} {k}",
        "SUNIONSTORE {k} {k} {k}",
        "SDIFFSTORE {k} {k} {k}",
        "ZADD {k} {f} {v} {f} {v}",
        "ZADD {k} INCR {f} {v}",
        "ZADD {k} GT CH {f} {v}",
        "ZINCRBY {k} {f} {v}",
        "ZREM {k} {v}",
        "ZPOPMIN {k}",
        "ZPOPMAX {k} {n}",
        "BZPOPMIN {k} {t}",
        "BZMPOP {t} 1 {k} MAX",
        "ZMPOP 1 {k} MIN COUNT 2",
        "ZREMRANGEBYRANK {k} 0 {n}",
        "ZREMRANGEBYSCORE {k} -inf {f}",
        "ZREMRANGEBYLEX {k} - [b",
        "ZUNIONSTORE {k} 2 {k} {k} WEIGHTS 2 3",
        "ZINTERSTORE {k} 2 {k} {k} AGGREGATE MAX",
        "ZDIFFSTORE {k} 2 {k} {k}",
        "ZRANGESTORE {k} {k} 0 -1",
        "MULTI",
        "EXEC",
        "DISCARD",
        "GET {k}",
        "LRANGE {k} 0 -1",
        "SMEMBERS {k}",
    ];
    let t = TEMPLATES.choose(rng).copied().unwrap_or("PING");
    t.split(' ')
        .map(|w| match w {
            "{k}" => pick(rng, KEYS).to_string(),
            "{v}" => pick(rng, VALS).to_string(),
            "{n}" => rng.gen_range(-3..6).to_string(),
            "{f}" => ["1", "2.5", "-1", "0", "inf", "3"]
                .choose(rng)
                .copied()
                .unwrap_or("1")
                .to_string(),
            "{t}" => "0.01".to_string(),
            other => other.to_string(),
        })
        .collect()
}

fn new_engine() -> (Engine, ClientId) {
    let mut e = Engine::new(&EngineOptions::default());
    let id = e.register_client(None, "test".into(), "test".into());
    (e, id)
}

fn same_dataset(a: &Engine, b: &Engine) -> Result<(), String> {
    for (i, (da, db)) in a.ks.dbs.iter().zip(&b.ks.dbs).enumerate() {
        // Values only: access clocks are stamped when each applies, and a
        // second can turn between the two.
        let values_differ = da.data.len() != db.data.len()
            || da
                .data
                .iter()
                .any(|(k, o)| db.data.get(k).map(|p| &p.value) != Some(&o.value));
        if values_differ {
            return Err(format!(
                "db {i} data differs:\n primary: {:?}\n replica: {:?}",
                da.data, db.data
            ));
        }
        if da.expires != db.expires {
            return Err(format!(
                "db {i} expires differ:\n primary: {:?}\n replica: {:?}",
                da.expires, db.expires
            ));
        }
    }
    Ok(())
}

#[test]
fn effects_rebuild_the_same_dataset() {
    for seed in 0..40u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut primary, id) = new_engine();
        primary.ks.effects.capture = true;
        let (mut replica, _) = new_engine();
        let mut history = Vec::new();
        for _ in 0..400 {
            let cmd = random_command(&mut rng);
            let argv: Vec<Bytes> = cmd.iter().map(|s| Bytes::from(s.clone())).collect();
            let mut out = ReplyBuf::new(false);
            primary.execute_one(id, &argv, &mut out);
            history.push(cmd.join(" "));
            for (_, rec) in primary.ks.effects.take_records() {
                if let Err(e) = replica.apply_effect(&rec) {
                    panic!(
                        "seed {seed}: applying {rec:?} failed: {e}\nhistory:\n{}",
                        history.join("\n")
                    );
                }
            }
        }
        if let Err(e) = same_dataset(&primary, &replica) {
            panic!("seed {seed}: {e}\nhistory:\n{}", history.join("\n"));
        }
    }
}

#[test]
fn a_transaction_is_one_record() {
    let (mut e, id) = new_engine();
    e.ks.effects.capture = true;
    for cmd in [
        &["MULTI"][..],
        &["SET", "a", "1"],
        &["SET", "b", "2"],
        &["LPUSH", "l", "x"],
        &["EXEC"],
    ] {
        let argv: Vec<Bytes> = cmd.iter().map(|s| Bytes::from(s.to_string())).collect();
        e.execute_one(id, &argv, &mut ReplyBuf::new(false));
    }
    let recs = e.ks.effects.take_records();
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0].1.commands.len(), 3);
}

#[test]
fn relative_expiry_becomes_absolute() {
    let (mut e, id) = new_engine();
    e.ks.effects.capture = true;
    let argv: Vec<Bytes> = ["SET", "k", "v", "EX", "100"]
        .iter()
        .map(|s| Bytes::from(s.to_string()))
        .collect();
    e.execute_one(id, &argv, &mut ReplyBuf::new(false));
    let recs = e.ks.effects.take_records();
    let args: Vec<&[u8]> = recs[0].1.commands[0].argv.iter().map(|a| &a[..]).collect();
    assert_eq!(&args[..4], &[&b"SET"[..], b"k", b"v", b"PXAT"]);
}
