//! Recovery rebuilds exactly the data set the server had: random commands of
//! every family (transactions, expiries, random picks such as SPOP, stores,
//! moves between databases, RESTORE) run against a durable server, with a
//! second client blocking on lists and sorted sets meanwhile; after
//! kill -9 and a restart every database holds the same keys with the same
//! values and expiry times, and no logged effect failed to apply. With the
//! embedded log, with a snapshot taken midway, and with a three-node txlog.
//!
//! The effects the engine logs (SPOP as SREM, relative expiries as
//! PEXPIREAT, a transaction as one record) must replay deterministically;
//! this checks it for the whole command surface at once, through real
//! processes and the real log.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlog_tests::{call_until_ok, MemlogServer, RawConn, RespValue, TxlogCluster};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Databases the workload uses.
const DBS: usize = 3;

/// Keys by the type the commands below give them (a RENAME or MOVE can
/// still put any type anywhere: WRONGTYPE errors are fine, they change
/// nothing).
const STRINGS: [&str; 4] = ["a", "b", "c", "d"];
const LISTS: [&str; 4] = ["l1", "l2", "l3", "l4"];
const HASHES: [&str; 3] = ["h1", "h2", "h3"];
const SETS: [&str; 4] = ["s1", "s2", "s3", "s4"];
const ZSETS: [&str; 4] = ["z1", "z2", "z3", "z4"];
const STREAMS: [&str; 2] = ["x1", "x2"];
const MEMBERS: [&str; 8] = ["x", "y", "z", "w", "1", "2", "3.5", "-7"];

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.gen_range(0..from.len())]
}

fn any_key(rng: &mut StdRng) -> String {
    let pools: [&[&str]; 6] = [&STRINGS, &LISTS, &HASHES, &SETS, &ZSETS, &STREAMS];
    let pool = pools[rng.gen_range(0..pools.len())];
    pick(rng, pool).to_string()
}

/// One random command of any family.
fn random_command(rng: &mut StdRng) -> Vec<String> {
    let (a, a2) = (pick(rng, &STRINGS), pick(rng, &STRINGS));
    let (l, l2) = (pick(rng, &LISTS), pick(rng, &LISTS));
    let (h, st, st2) = (pick(rng, &HASHES), pick(rng, &SETS), pick(rng, &SETS));
    let (z, z2) = (pick(rng, &ZSETS), pick(rng, &ZSETS));
    let x = pick(rng, &STREAMS);
    let (k, k2) = (any_key(rng), any_key(rng));
    let m = pick(rng, &MEMBERS);
    let m2 = pick(rng, &MEMBERS);
    let m3 = pick(rng, &MEMBERS);
    let n = rng.gen_range(-3..8).to_string();
    let db = rng.gen_range(0..DBS).to_string();
    // Either long-lived or gone before the state is read (a key with a TTL
    // of a second could expire between reading the state and recovery).
    let (ms, secs) = if rng.gen_bool(0.5) {
        ("100000000", "100000")
    } else {
        ("1", "-5")
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // Growth often enough that pops, stores and deletes keep finding data
    // (and a divergence is not wiped out as soon as it happens).
    if rng.gen_bool(0.4) {
        return match rng.gen_range(0..5) {
            0 => s(&["MSET", a, m, a2, m2]),
            1 => s(&["RPUSH", l, m, m2, m3, &n]),
            2 => s(&["HSET", h, m, m2, m3, &n]),
            3 => s(&["SADD", st, m, m2, m3, &n]),
            _ => s(&["ZADD", z, &n, m, "2.5", m2, "-1", m3]),
        };
    }
    match rng.gen_range(0..89) {
        0 => s(&["SET", a, m]),
        1 => s(&["SET", a, m, "PX", ms]),
        2 => s(&["SET", a, m, "KEEPTTL", "GET"]),
        3 => s(&["SET", a, m, "NX", "EX", secs]),
        4 => s(&["APPEND", a, m]),
        5 => s(&["INCRBY", a, &n]),
        6 => s(&["INCRBYFLOAT", a, "1.25"]),
        7 => s(&["SETRANGE", a, &rng.gen_range(0..6).to_string(), m]),
        8 => s(&["GETDEL", a]),
        9 => s(&["GETEX", a, "PX", ms]),
        10 => s(&["GETEX", a, "PERSIST"]),
        11 => s(&["SETBIT", a, &rng.gen_range(0..40).to_string(), "1"]),
        12 => s(&["BITOP", "XOR", a, a2, "a"]),
        13 => s(&["BITFIELD", a, "INCRBY", "u8", "4", &n]),
        14 => s(&["MSET", a, m, a2, m2]),
        15 => s(&["LPUSH", l, m, m2]),
        16 => s(&["RPUSH", l, m, m2, m3]),
        17 => s(&["LPOP", l, "2"]),
        18 => s(&["RPOP", l]),
        19 => s(&["LMOVE", l, l2, "LEFT", "RIGHT"]),
        20 => s(&["LINSERT", l, "BEFORE", m, m2]),
        21 => s(&["LSET", l, "0", m]),
        22 => s(&["LTRIM", l, "0", "5"]),
        23 => s(&["LREM", l, "1", m]),
        24 => s(&["BLMOVE", l, l2, "RIGHT", "LEFT", "0.01"]),
        25 => s(&["LMPOP", "2", l, l2, "RIGHT", "COUNT", "2"]),
        26 => s(&["HSET", h, m, m2]),
        27 => s(&["HSET", h, m, m2, m3, &n]),
        28 => s(&["HDEL", h, m]),
        29 => s(&["HINCRBYFLOAT", h, m, "0.5"]),
        30 => s(&["HSETNX", h, m, &n]),
        31 => s(&["HRANDFIELD", h, "2"]),
        32 => s(&["SADD", st, m, m2]),
        33 => s(&["SADD", st, m, m2, m3, &n]),
        34 => s(&["SREM", st, m]),
        35 => s(&["SPOP", st]),
        36 => s(&["SPOP", st, "2"]),
        37 => s(&["SMOVE", st, st2, m]),
        38 => s(&["SINTERSTORE", st, st2, "s1"]),
        39 => s(&["SUNIONSTORE", st, st2, "s2"]),
        40 => s(&["SDIFFSTORE", st, st2, "s3"]),
        41 => s(&["SRANDMEMBER", st, "-3"]),
        42 => s(&["ZADD", z, &n, m]),
        43 => s(&["ZADD", z, &n, m, "2.5", m2]),
        44 => s(&["ZADD", z, "GT", "CH", &n, m]),
        45 => s(&["ZINCRBY", z, "1.5", m]),
        46 => s(&["ZPOPMIN", z, "2"]),
        47 => s(&["ZREMRANGEBYSCORE", z, "-inf", "-1"]),
        48 => s(&["ZUNIONSTORE", z, "2", z2, "z1", "WEIGHTS", "2", "1"]),
        49 => s(&["ZINTERSTORE", z, "2", z2, "z2", "AGGREGATE", "MAX"]),
        50 => s(&["ZRANGESTORE", z, z2, "0", "2"]),
        51 => s(&["BZPOPMAX", z, "0.01"]),
        52 => s(&["ZMPOP", "2", z, z2, "MIN", "COUNT", "2"]),
        53 => s(&["ZRANDMEMBER", z, "2"]),
        54 => s(&["DEL", &k]),
        55 => s(&["EXPIRE", &k, secs]),
        56 => s(&["PEXPIRE", &k, ms, "GT"]),
        57 => s(&["PERSIST", &k]),
        58 => s(&["RENAME", &k, &k2]),
        59 => s(&["COPY", &k, &k2, "DB", &db, "REPLACE"]),
        60 => s(&["MOVE", &k, &db]),
        61 => s(&["SORT", l, "ALPHA", "LIMIT", "0", "3", "STORE", l2]),
        62 => s(&["SORT", st, "ALPHA", "DESC", "STORE", l]),
        63 => s(&["SWAPDB", "0", &db]),
        64 => s(&["UNLINK", &k]),
        65 => s(&["PEXPIREAT", &k, "1"]),
        66 => s(&["EXPIREAT", &k, "99999999999", "NX"]),
        67 => s(&["RENAMENX", &k, &k2]),
        68 => s(&["SMISMEMBER", st, m, m2]),
        69 => s(&["GETSET", a, m]),
        70 => s(&["HINCRBY", h, m2, &n]),
        // Scripts: their commands' effects (SPOP as SREM, relative
        // expiries, a SELECT inside) land in the script's one record.
        71 => s(&[
            "EVAL",
            "redis.call('incr', KEYS[1]); local p = redis.call('spop', KEYS[2]); \
             if p then redis.call('rpush', KEYS[3], p) end; return p",
            "3",
            a,
            st,
            l,
        ]),
        72 => s(&[
            "EVAL",
            "redis.call('select', ARGV[1]); redis.call('hset', KEYS[1], ARGV[2], ARGV[3]); \
             redis.call('expire', KEYS[1], ARGV[4]); return redis.call('hlen', KEYS[1])",
            "1",
            h,
            &db,
            m,
            &n,
            secs,
        ]),
        73 => s(&[
            "EVAL",
            "local n = redis.call('zadd', KEYS[1], ARGV[1], ARGV[2]); \
             redis.call('zrem', KEYS[1], 'no-such-member'); return n",
            "1",
            z,
            &n,
            m2,
        ]),
        // HyperLogLogs live in string keys: PFADD creates them (or meets
        // WRONGTYPE on a plain string), PFCOUNT writes its cache.
        74 => s(&["PFADD", a, m, m2, &n]),
        75 => s(&["PFCOUNT", a]),
        76 => s(&["PFMERGE", a, a2]),
        77 => s(&[
            "GEOADD",
            z,
            "13.36",
            &format!("38.{n}"),
            m,
            "15.08",
            "37.5",
            m2,
        ]),
        78 => s(&["GEORADIUS", z, "14", "38", "300", "km", "STOREDIST", z2]),
        79 => s(&[
            "GEOSEARCHSTORE",
            z2,
            z,
            "FROMMEMBER",
            m,
            "BYBOX",
            "200",
            "100",
            "km",
            "COUNT",
            "2",
        ]),
        // Streams: generated IDs, approximate trims and consumer groups
        // are logged resolved (their replay needs no clock).
        80 => s(&["XADD", x, "MAXLEN", "~", "3", "*", m, m2]),
        81 => s(&["XADD", x, "*", m, &n]),
        82 => s(&["XGROUP", "CREATE", x, "g", "0", "MKSTREAM"]),
        83 => s(&[
            "XREADGROUP",
            "GROUP",
            "g",
            m,
            "COUNT",
            "2",
            "STREAMS",
            x,
            ">",
        ]),
        84 => s(&["XREADGROUP", "GROUP", "g", m, "NOACK", "STREAMS", x, ">"]),
        85 => s(&["XAUTOCLAIM", x, "g", m2, "0", "0", "COUNT", "1"]),
        86 => s(&["XTRIM", x, "MINID", "~", "0"]),
        87 => s(&["XREADGROUP", "GROUP", "g", m, "STREAMS", x, "0"]),
        _ => {
            if rng.gen_bool(0.05) {
                s(&["FLUSHDB"])
            } else {
                s(&["ZREM", z, m, m2])
            }
        }
    }
}

/// Errors that mean the durable path failed rather than the command.
fn is_durability_error(r: &RespValue) -> bool {
    matches!(r, RespValue::Error(e)
        if ["TRYAGAIN", "READONLY", "LOADING", "CLUSTERDOWN"].iter().any(|p| e.starts_with(p)))
}

/// Sends one workload command. A durability error (the log was slow to
/// acknowledge under load, say) is fine: the write may or may not have been
/// applied, and the check compares what the server serves with what it
/// recovers, not with what the workload meant.
fn call(c: &mut RawConn, cmd: &[String]) -> RespValue {
    let r = c.call(cmd).expect("reply");
    if is_durability_error(&r) {
        eprintln!("{cmd:?} answered {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    r
}

/// Runs `steps` random commands, some inside MULTI/EXEC, some after a
/// DUMP / RESTORE round trip, switching databases now and then.
fn run_workload(port: u16, seed: u64, steps: usize) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut c = RawConn::connect(port).expect("connect");
    let mut step = 0;
    while step < steps {
        match rng.gen_range(0..20) {
            0 => {
                let db = rng.gen_range(0..DBS).to_string();
                call(&mut c, &["SELECT".into(), db]);
                step += 1;
            }
            1 => {
                call(&mut c, &["MULTI".into()]);
                let n = rng.gen_range(1..5);
                for _ in 0..n {
                    call(&mut c, &random_command(&mut rng));
                }
                let end = if rng.gen_bool(0.9) { "EXEC" } else { "DISCARD" };
                call(&mut c, &[end.into()]);
                step += n;
            }
            2 => {
                let from = any_key(&mut rng);
                let to = any_key(&mut rng);
                if let RespValue::Bulk(payload) = call(&mut c, &["DUMP".into(), from]) {
                    let ttl = if rng.gen_bool(0.5) { "0" } else { "100000000" };
                    let args: Vec<Vec<u8>> = vec![
                        b"RESTORE".to_vec(),
                        to.into_bytes(),
                        ttl.as_bytes().to_vec(),
                        payload,
                        b"REPLACE".to_vec(),
                    ];
                    c.call(&args).expect("reply");
                }
                step += 1;
            }
            _ => {
                call(&mut c, &random_command(&mut rng));
                step += 1;
            }
        }
    }
}

/// A second client that blocks on lists and sorted sets while the workload
/// runs: a pop served when another client's push wakes it is logged as a
/// plain pop of its own. Returns how many pops got an element.
fn run_blocker(port: u16, seed: u64, stop: &AtomicBool) -> usize {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x626c6f636b);
    let mut c = RawConn::connect(port).expect("connect");
    let mut served = 0;
    while !stop.load(Ordering::Relaxed) {
        let db = rng.gen_range(0..DBS).to_string();
        call(&mut c, &["SELECT".into(), db]);
        let (l, l2) = (pick(&mut rng, &LISTS), pick(&mut rng, &LISTS));
        let z = pick(&mut rng, &ZSETS);
        let cmd: Vec<String> = match rng.gen_range(0..3) {
            0 => vec!["BLPOP".into(), l.into(), l2.into(), "0.05".into()],
            1 => vec![
                "BLMOVE".into(),
                l.into(),
                l2.into(),
                "LEFT".into(),
                "RIGHT".into(),
                "0.05".into(),
            ],
            _ => vec!["BZPOPMIN".into(), z.into(), "0.05".into()],
        };
        if !matches!(
            call(&mut c, &cmd),
            RespValue::Null | RespValue::NullArray | RespValue::Error(_)
        ) {
            served += 1;
        }
    }
    served
}

/// Every key of every database the workload uses, with its type, value
/// digest (order-insensitive where Redis' is) and absolute expiry time.
fn data_set(port: u16) -> Vec<(usize, String, RespValue, RespValue, RespValue)> {
    let mut c = RawConn::connect(port).expect("connect");
    let mut out = Vec::new();
    for db in 0..DBS {
        call_until_ok(&mut c, &["SELECT", &db.to_string()]);
        let RespValue::Array(keys) = call_until_ok(&mut c, &["KEYS", "*"]) else {
            panic!("KEYS did not answer an array");
        };
        let mut keys: Vec<String> = keys
            .into_iter()
            .map(|k| match k {
                RespValue::Bulk(b) => String::from_utf8_lossy(&b).into_owned(),
                other => panic!("key {other:?}"),
            })
            .collect();
        keys.sort();
        for k in keys {
            let t = call_until_ok(&mut c, &["TYPE", &k]);
            let mut d = call_until_ok(&mut c, &["DEBUG", "DIGEST-VALUE", &k]);
            if t == RespValue::Simple("stream".into()) {
                // The digest covers entries; groups too, but for consumers'
                // seen-times (not logged, as on a Redis replica).
                let info = call_until_ok(&mut c, &["XINFO", "STREAM", &k, "FULL", "COUNT", "0"]);
                d = RespValue::Array(vec![d, without_seen_times(info)]);
            }
            let e = call_until_ok(&mut c, &["PEXPIRETIME", &k]);
            out.push((db, k, t, d, e));
        }
    }
    out
}

/// XINFO STREAM FULL with every consumer's seen-time zeroed.
fn without_seen_times(v: RespValue) -> RespValue {
    match v {
        RespValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut zero_next = false;
            for item in items {
                if zero_next {
                    out.push(RespValue::Int(0));
                    zero_next = false;
                    continue;
                }
                zero_next = item == RespValue::Bulk(b"seen-time".to_vec());
                out.push(without_seen_times(item));
            }
            RespValue::Array(out)
        }
        other => other,
    }
}

/// Waits until the server answers writes (it takes its log's leadership
/// and replays first).
fn wait_serving(port: u16) {
    let mut c = RawConn::connect(port).expect("connect");
    call_until_ok(&mut c, &["SET", "__ready", "1"]);
    let _ = c.call(&["DEL", "__ready"]);
}

/// Rounds of the workload, each followed by kill -9 and a restart: the data
/// set must come back identical every time (each restart replays the log
/// from its start, or from the snapshot). With `save_midway` the first round
/// ends with SAVE, so later recoveries are snapshot + log tail.
fn check_recovery(server: &mut MemlogServer, seed: u64, save_midway: bool) {
    const ROUNDS: u64 = 4;
    const STEPS: usize = 400;
    wait_serving(server.port);
    let mut compared = 0;
    let mut served_pops = 0;
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let blocker = {
            let (port, stop) = (server.port, stop.clone());
            std::thread::spawn(move || run_blocker(port, seed + round, &stop))
        };
        run_workload(server.port, seed + round, STEPS);
        stop.store(true, Ordering::Relaxed);
        let served = blocker.join().expect("blocker thread");
        if save_midway && round == 0 {
            let mut c = RawConn::connect(server.port).expect("connect");
            assert_eq!(
                c.call(&["SAVE"]).expect("save"),
                RespValue::Simple("OK".into())
            );
            // Counted as Redis counts its forks (the capture is the stall).
            assert_eq!(memlog_tests::info_i64(&mut c, "total_forks"), 1);
            // SAVE answers once the snapshot's records are durable; the
            // file follows.
            let snapshots = server.dir.path().join("data").join("snapshots");
            let deadline = Instant::now() + Duration::from_secs(30);
            while std::fs::read_dir(&snapshots).map_or(true, |d| d.count() == 0) {
                assert!(Instant::now() < deadline, "no snapshot written");
                std::thread::sleep(Duration::from_millis(50));
            }
            run_workload(server.port, seed + 100, STEPS);
        }
        // Keys given a 1 ms TTL are gone before the state is read.
        std::thread::sleep(Duration::from_millis(20));
        let before = data_set(server.port);
        assert!(
            before.len() >= 3,
            "round {round}: the workload left almost nothing to compare: {before:?}"
        );
        server.restart().expect("restart");
        wait_serving(server.port);
        let after = data_set(server.port);
        let log = server.log_text();
        assert!(
            !log.contains("failed to apply") && !log.contains("undecodable"),
            "round {round}: replay errors:\n{log}"
        );
        let lost: Vec<_> = before.iter().filter(|k| !after.contains(k)).collect();
        let new: Vec<_> = after.iter().filter(|k| !before.contains(k)).collect();
        assert!(
            lost.is_empty() && new.is_empty(),
            "round {round}: the data set differs after recovery\n\
             before only: {lost:?}\nafter only: {new:?}"
        );
        compared += before.len();
        served_pops += served;
    }
    if save_midway {
        let log = server.log_text();
        assert!(
            log.contains("loaded snapshot"),
            "no snapshot loaded:\n{log}"
        );
    }
    assert!(served_pops > 0, "the blocking client never popped anything");
    eprintln!(
        "{compared} keys compared over {ROUNDS} recoveries, all identical \
         ({served_pops} blocking pops served)"
    );
}

#[test]
fn recovery_rebuilds_the_same_data_set_embedded() {
    let mut server = MemlogServer::start(&[]).expect("server");
    check_recovery(&mut server, 0x7265706c6179, false);
}

#[test]
fn recovery_from_snapshot_and_log_rebuilds_the_same_data_set() {
    let mut server = MemlogServer::start(&[]).expect("server");
    check_recovery(&mut server, 0x736e6170, true);
}

#[test]
fn recovery_rebuilds_the_same_data_set_three_node_txlog() {
    let cluster = TxlogCluster::start().expect("cluster");
    let mut server = cluster.server(&[]).expect("server");
    check_recovery(&mut server, 0x74786c6f67, false);
}

/// Waits until `field` of INFO reaches `want`.
fn wait_info_at_least(c: &mut RawConn, field: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while memlog_tests::info_i64(c, field) < want {
        assert!(
            Instant::now() < deadline,
            "INFO {field} never reached {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until no snapshot is being taken (the last one stored or dropped).
fn wait_snapshot_stored(c: &mut RawConn) {
    while memlog_tests::info_i64(c, "rdb_bgsave_in_progress") != 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// kill -9 and a restart that must load a snapshot; a connection to it.
fn restart_on_a_snapshot(server: &mut MemlogServer) -> RawConn {
    server.restart().expect("restart");
    wait_serving(server.port);
    let log = server.log_text();
    assert!(
        log.contains("loaded snapshot"),
        "no snapshot loaded:\n{log}"
    );
    RawConn::connect(server.port).expect("connect")
}

/// SETs `n` distinct keys of `size` bytes under `prefix`.
fn write_bytes(c: &mut RawConn, prefix: &str, n: usize, size: usize) {
    // Letters that do not repeat, so that snapshots (which LZF-compress
    // values, as Redis' RDB does) hold as many bytes as the log.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    let value: String = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    for i in 0..n {
        let key = format!("{prefix}:{i}");
        assert_eq!(
            c.call(&["SET", &key, &value]).expect("set"),
            RespValue::Simple("OK".into())
        );
    }
}

/// The log is memlog's AOF, and `auto-aof-rewrite-*` rewrite it as Redis
/// rewrites its AOF: once the log took the minimum size and grew by the
/// percentage of what the last snapshot holds, a snapshot is taken and the
/// log trimmed, with no SAVE; a restart loads that snapshot.
#[test]
fn the_log_is_snapshotted_as_it_grows() {
    let mut server = MemlogServer::start(&[]).expect("server");
    wait_serving(server.port);
    let mut c = RawConn::connect(server.port).expect("connect");
    for (k, v) in [
        ("auto-aof-rewrite-percentage", "100"),
        ("auto-aof-rewrite-min-size", "1mb"),
    ] {
        assert_eq!(
            c.call(&["CONFIG", "SET", k, v]).expect("config"),
            RespValue::Simple("OK".into())
        );
    }
    // 600 KB: under the minimum, no snapshot.
    write_bytes(&mut c, "a", 150, 4096);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(memlog_tests::info_i64(&mut c, "total_forks"), 0);
    // 1.2 MB in all: a snapshot (any growth counts before the first).
    write_bytes(&mut c, "b", 150, 4096);
    wait_info_at_least(&mut c, "rdb_saves", 1);
    assert_eq!(memlog_tests::info_i64(&mut c, "total_forks"), 1);
    let base = memlog_tests::info_i64(&mut c, "memlog_snapshot_bytes");
    assert!(base > 900_000, "snapshot of {base} bytes");
    // Then as much again as the snapshot holds (the same keys rewritten):
    // the next one (the percentage itself: `log_rewrite_due`'s unit test).
    write_bytes(&mut c, "a", 150, 4096);
    write_bytes(&mut c, "b", 200, 4096);
    wait_info_at_least(&mut c, "rdb_saves", 2);
    assert_eq!(memlog_tests::info_i64(&mut c, "total_forks"), 2);
    // A percentage of 0 turns it off.
    assert_eq!(
        c.call(&["CONFIG", "SET", "auto-aof-rewrite-percentage", "0"])
            .expect("config"),
        RespValue::Simple("OK".into())
    );
    write_bytes(&mut c, "c", 600, 4096);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(memlog_tests::info_i64(&mut c, "total_forks"), 2);
    let before = data_set(server.port);
    server.restart().expect("restart");
    wait_serving(server.port);
    assert_eq!(data_set(server.port), before);
    let log = server.log_text();
    assert!(
        log.contains("loaded snapshot"),
        "no snapshot loaded:\n{log}"
    );
    // The log replayed after the snapshot counts toward the next one.
    let mut c = RawConn::connect(server.port).expect("connect");
    assert!(memlog_tests::info_i64(&mut c, "memlog_log_bytes_since_snapshot") > 2_000_000);
}

/// No snapshot is taken of a data set being rebuilt. A rebuild (here
/// DEBUG LOADAOF; also every failed append) replays the log a chunk (4 MB)
/// per engine lock and counts the changes it replays; a `save` point that
/// came due between two chunks captured the half-loaded data set as of a
/// sequence number acknowledged before the rebuild, and storing it trimmed
/// the log of everything it lacked: after the next restart 12,571 of these
/// 40,000 keys were left.
#[test]
fn no_snapshot_is_taken_of_a_data_set_being_rebuilt() {
    let mut server = MemlogServer::start(&[]).expect("server");
    wait_serving(server.port);
    // A long read timeout: the rebuild of a debug build on a machine the
    // rest of the suite loads took over 30 s once.
    let mut c = RawConn::connect_timeout(server.port, Duration::from_secs(180)).expect("connect");
    // 40 MB of log: ten chunks to replay, over several of the snapshot
    // timer's 100 ms ticks. Under `auto-aof-rewrite-min-size`, and `save`
    // is off: no snapshot yet.
    const KEYS: usize = 40_000;
    let value = "v".repeat(1000);
    for chunk in (0..KEYS).collect::<Vec<_>>().chunks(1000) {
        for i in chunk {
            c.send(&["SET", &format!("key:{i}"), &value]).expect("send");
        }
        for _ in chunk {
            assert_eq!(c.read().expect("reply"), RespValue::Simple("OK".into()));
        }
    }
    // The save point below counts time from the server's start.
    std::thread::sleep(Duration::from_millis(1100));
    // In one batch, so that no snapshot comes due before the rebuild: any
    // change makes one due, and the rebuild replays 40,000 of them. No
    // snapshot after it either: one of the whole data set would cover up
    // one taken during it.
    for cmd in [
        &["CONFIG", "SET", "save", "1 1"][..],
        &["DEBUG", "LOADAOF"],
        &["CONFIG", "SET", "save", ""],
    ] {
        c.send(cmd).expect("send");
    }
    for _ in 0..3 {
        assert_eq!(c.read().expect("reply"), RespValue::Simple("OK".into()));
    }
    assert_eq!(
        c.call(&["DBSIZE"]).expect("dbsize"),
        RespValue::Int(KEYS as i64)
    );
    wait_snapshot_stored(&mut c);
    server.restart().expect("restart");
    wait_serving(server.port);
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        c.call(&["DBSIZE"]).expect("dbsize"),
        RespValue::Int(KEYS as i64),
        "{}",
        server.log_text()
    );
}

/// BGSAVE and BGREWRITEAOF inside MULTI take their snapshot once EXEC is
/// over. Captured at once, the snapshot held the transaction's writes so
/// far as of the record before EXEC's, and the log replayed them again
/// after it: INCR x twice over.
#[test]
fn a_snapshot_asked_for_inside_multi_is_taken_after_exec() {
    let mut server = MemlogServer::start(&[]).expect("server");
    wait_serving(server.port);
    let mut c = RawConn::connect(server.port).expect("connect");
    for (cmd, reply) in [
        (&["MULTI"][..], RespValue::Simple("OK".into())),
        (&["INCR", "x"], RespValue::Simple("QUEUED".into())),
        (&["BGSAVE"], RespValue::Simple("QUEUED".into())),
        (&["INCR", "y"], RespValue::Simple("QUEUED".into())),
        (&["BGREWRITEAOF"], RespValue::Simple("QUEUED".into())),
        (&["INCR", "z"], RespValue::Simple("QUEUED".into())),
    ] {
        assert_eq!(c.call(cmd).expect("call"), reply);
    }
    assert_eq!(
        c.call(&["EXEC"]).expect("exec"),
        RespValue::Array(vec![
            RespValue::Int(1),
            RespValue::Simple("Background saving started".into()),
            RespValue::Int(1),
            RespValue::Simple("Background append only file rewriting started".into()),
            RespValue::Int(1),
        ])
    );
    wait_info_at_least(&mut c, "rdb_saves", 1);
    wait_snapshot_stored(&mut c);
    let mut c = restart_on_a_snapshot(&mut server);
    for key in ["x", "y", "z"] {
        assert_eq!(
            c.call(&["GET", key]).expect("get"),
            RespValue::Bulk(b"1".to_vec()),
            "{key}"
        );
    }
}

/// A snapshot holds the data set exactly as of its capture, though writes go
/// on at once (BGSAVE forks, and its child writes the snapshot while the
/// server serves): a counter INCRed in one pipeline around a BGSAVE comes
/// back from snapshot + log tail with every increment once. A snapshot that
/// saw later increments would count them twice.
#[test]
fn a_snapshot_holds_the_data_set_as_of_its_capture() {
    let mut server = MemlogServer::start(&[]).expect("server");
    wait_serving(server.port);
    let mut c = RawConn::connect(server.port).expect("connect");
    // Enough data that writing the snapshot takes a moment.
    write_bytes(&mut c, "bulk", 2000, 4096);
    const EACH: usize = 300;
    for _ in 0..EACH {
        c.send(&["INCR", "counter"]).expect("send");
    }
    c.send(&["BGSAVE"]).expect("send");
    for _ in 0..EACH {
        c.send(&["INCR", "counter"]).expect("send");
    }
    for i in 0..2 * EACH + 1 {
        let r = c.read().expect("reply");
        if i == EACH {
            assert_eq!(r, RespValue::Simple("Background saving started".into()));
        }
    }
    wait_info_at_least(&mut c, "rdb_saves", 1);
    assert_eq!(memlog_tests::info_i64(&mut c, "total_forks"), 1);
    let mut c = restart_on_a_snapshot(&mut server);
    assert_eq!(
        c.call(&["GET", "counter"]).expect("get"),
        RespValue::Bulk(format!("{}", 2 * EACH).into_bytes())
    );
    assert_eq!(c.call(&["DBSIZE"]).expect("dbsize"), RespValue::Int(2001));
}

/// While a snapshot is being taken, SAVE and BGSAVE refuse to start another
/// and BGREWRITEAOF schedules one for after it, with Redis' replies while
/// a child saves (checked against redis-server by hand: a snapshot here
/// is Redis' fork).
#[test]
fn one_snapshot_at_a_time_as_redis_saves() {
    let server = MemlogServer::start(&[]).expect("server");
    wait_serving(server.port);
    let mut c = RawConn::connect(server.port).expect("connect");
    write_bytes(&mut c, "bulk", 2000, 4096);
    for cmd in [
        &["BGSAVE"][..],
        &["BGSAVE"],
        &["BGSAVE", "SCHEDULE"],
        &["SAVE"],
        &["BGREWRITEAOF"],
    ] {
        c.send(cmd).expect("send");
    }
    let replies: Vec<RespValue> = (0..5).map(|_| c.read().expect("reply")).collect();
    let busy = RespValue::Error("ERR Background save already in progress".into());
    assert_eq!(
        replies,
        vec![
            RespValue::Simple("Background saving started".into()),
            busy.clone(),
            busy.clone(),
            busy,
            RespValue::Simple("Background append only file rewriting scheduled".into()),
        ]
    );
    // The scheduled one follows the first.
    wait_info_at_least(&mut c, "rdb_saves", 2);
    assert_eq!(memlog_tests::info_i64(&mut c, "total_forks"), 2);
    assert_eq!(
        c.call(&["BGSAVE"]).expect("bgsave"),
        RespValue::Simple("Background saving started".into())
    );
}

/// A list, set, hash and sorted set too big for one snapshot command each
/// are written in chunks (RPUSH, SADD, HSET, ZADD, then PEXPIREAT) and
/// come back from the snapshot whole: order, scores and expiry included.
#[test]
fn big_collections_come_back_from_a_snapshot_whole() {
    let mut server = MemlogServer::start(&[]).expect("server");
    wait_serving(server.port);
    let mut c = RawConn::connect(server.port).expect("connect");
    let n = 2500;
    let mut list = vec!["RPUSH".to_string(), "l".into()];
    let mut set = vec!["SADD".to_string(), "s".into()];
    let mut hash = vec!["HSET".to_string(), "h".into()];
    let mut zset = vec!["ZADD".to_string(), "z".into()];
    for i in 0..n {
        list.push(format!("e{}", n - i));
        set.push(format!("m{i}"));
        hash.extend([format!("f{i}"), format!("v{i}")]);
        zset.extend([format!("{}", i as f64 / 3.0), format!("m{i}")]);
    }
    zset.extend(["inf".into(), "top".into(), "-inf".into(), "bottom".into()]);
    for cmd in [&list, &set, &hash, &zset] {
        assert!(
            !matches!(call(&mut c, cmd), RespValue::Error(_)),
            "{}",
            cmd[0]
        );
    }
    for cmd in [
        &["PEXPIRE", "h", "3600000"][..],
        &["PEXPIRE", "z", "7200000"],
    ] {
        assert_eq!(c.call(cmd).expect("pexpire"), RespValue::Int(1));
    }
    assert_eq!(
        c.call(&["SAVE"]).expect("save"),
        RespValue::Simple("OK".into())
    );
    let before = data_set(server.port);
    server.restart().expect("restart");
    wait_serving(server.port);
    assert_eq!(data_set(server.port), before);
    assert!(server.log_text().contains("loaded snapshot"));
}

/// A command that panics (a bug some input reached; DEBUG PANIC here) must
/// not take durability with it. It left its record open, so no record
/// closed after it: the server still answered writes, and every one of them
/// was lost at the next restart. Now the panicking client's connection
/// closes, what its transaction had changed is thrown away (the data set is
/// rebuilt from the log), and the server goes on durably.
#[test]
fn a_panicking_command_loses_nothing_after_it() {
    let mut server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        c.call(&["SET", "before", "1"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    // Too long for a Duration: no sleep (it panicked).
    assert_eq!(
        c.call(&["DEBUG", "SLEEP", "1e20"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    // A blocked client must not be served what the panicking transaction
    // pushed, even by a command that passes the closed gate (QUIT).
    let mut blocked = RawConn::connect(server.port).expect("connect");
    blocked.send(&["BLPOP", "q", "0"]).unwrap();
    let mut p = RawConn::connect(server.port).expect("connect");
    p.call(&["SUBSCRIBE", "news"]).unwrap();
    p.call(&["UNSUBSCRIBE"]).unwrap();
    p.call(&["HELLO", "3"]).unwrap();
    p.call(&["SUBSCRIBE", "news"]).unwrap();
    for cmd in [
        &["MULTI"][..],
        &["SET", "in-multi", "1"],
        &["LPUSH", "q", "lost"],
        &["DEBUG", "PANIC"],
        &["SET", "also-in-multi", "2"],
    ] {
        p.call(cmd).unwrap();
    }
    assert!(p.call(&["EXEC"]).is_err(), "the panicking client stays");
    let mut q = RawConn::connect(server.port).expect("connect");
    let _ = q.call(&["QUIT"]);
    // Rebuilt from the log: the transaction's first SET is gone.
    call_until_ok(&mut c, &["SET", "after", "1"]);
    // Its subscription went with it.
    assert_eq!(
        c.call(&["PUBLISH", "news", "m"]).unwrap(),
        RespValue::Int(0)
    );
    c.call(&["RPUSH", "q", "kept"]).unwrap();
    assert_eq!(
        blocked.read().unwrap(),
        RespValue::Array(vec![
            RespValue::Bulk(b"q".to_vec()),
            RespValue::Bulk(b"kept".to_vec())
        ])
    );
    for (key, want) in [
        ("before", RespValue::Bulk(b"1".to_vec())),
        ("in-multi", RespValue::Null),
        ("also-in-multi", RespValue::Null),
        ("after", RespValue::Bulk(b"1".to_vec())),
    ] {
        assert_eq!(c.call(&["GET", key]).unwrap(), want, "{key}");
    }
    server.restart().expect("restart");
    wait_serving(server.port);
    let mut c = RawConn::connect(server.port).expect("connect");
    for key in ["before", "after"] {
        assert_eq!(
            c.call(&["GET", key]).unwrap(),
            RespValue::Bulk(b"1".to_vec()),
            "{key} after a restart"
        );
    }
    assert_eq!(c.call(&["GET", "in-multi"]).unwrap(), RespValue::Null);
}

/// A script that wrote and then runs past `written-script-time-limit` (here forever,
/// a `pcall` trying to swallow the stop) held the whole server until it
/// was killed; Redis answers -BUSY to everyone until SHUTDOWN NOSAVE. Now
/// it is stopped, its writes are undone by a rebuild from the log (its
/// record never reached it), its client is closed, and the server goes on.
#[test]
fn a_script_that_wrote_and_runs_forever_is_stopped_and_undone() {
    let mut server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    for cmd in [
        &["SET", "x", "0"][..],
        &["CONFIG", "SET", "lua-time-limit", "10"],
        &["CONFIG", "SET", "written-script-time-limit", "500"],
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\nredis.register_function('spin', function(keys) redis.call('incr', keys[1]) while true do end end)",
        ],
    ] {
        assert!(!c.call(cmd).unwrap().is_error(), "{cmd:?}");
    }
    // Past lua-time-limit but within written-script-time-limit: it runs
    // to its end, as in Redis.
    assert_eq!(
        c.call(&[
            "EVAL",
            "redis.call('set', 'y', '1') for i = 1, 2e7 do end return 1",
            "0"
        ])
        .unwrap(),
        RespValue::Int(1)
    );
    let mut s = RawConn::connect(server.port).expect("connect");
    let script = "redis.call('set', 'x', '1') redis.call('rpush', 'l', 'a') \
                  while true do pcall(function() while true do end end) end";
    assert!(
        s.call(&["EVAL", script, "0"]).is_err(),
        "the script's client is closed"
    );
    let mut f = RawConn::connect(server.port).expect("connect");
    call_until_ok(&mut c, &["SET", "after", "1"]);
    assert!(f.call(&["FCALL", "spin", "1", "x"]).is_err());
    call_until_ok(&mut c, &["SET", "after", "2"]);
    let state = |c: &mut RawConn| ["x", "l", "after", "y"].map(|k| c.call(&["DUMP", k]).unwrap());
    let served = state(&mut c);
    assert_eq!(
        c.call(&["GET", "x"]).unwrap(),
        RespValue::Bulk(b"0".to_vec())
    );
    assert_eq!(c.call(&["EXISTS", "l"]).unwrap(), RespValue::Int(0));
    // A script that stays under the limit still runs whole.
    assert_eq!(
        c.call(&["EVAL", "redis.call('set', 'x', '2') return 1", "0"])
            .unwrap(),
        RespValue::Int(1)
    );
    c.call(&["SET", "x", "0"]).unwrap();
    server.restart().expect("restart");
    wait_serving(server.port);
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(state(&mut c), served);
}
