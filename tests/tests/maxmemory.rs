//! maxmemory: writes refused with Redis' `-OOM` past the limit (as a real
//! redis-server refuses them), and evictions that keep the data set under
//! it, logged like any delete so a restart finds the same keys.

use memlog_tests::resp::{RawConn, RespValue};
use memlog_tests::{info_i64, Differential, MemlogServer};

#[test]
fn over_maxmemory_writes_get_oom_as_in_redis() {
    let mut d = Differential::start().expect("servers start");
    d.check(&["SET", "k", "v"]);
    for cmd in [
        &["FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function(keys, args) return redis.call('get', 'k') end)\nredis.register_function{function_name='ro', callback=function(keys, args) return redis.call('get', 'k') end, flags={'no-writes'}}"][..],
        &["CONFIG", "SET", "maxmemory", "1"],
        &["SET", "k", "w"],
        &["INCR", "n"],
        &["APPEND", "k", "x"],
        &["GET", "k"],
        &["EXISTS", "k"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EVAL", "#!lua flags=no-writes\nreturn redis.call('get', 'k')", "0"],
        &["EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', 'k', 'y')", "0"],
        &["EVAL", "return redis.call('get', 'k')", "0"],
        &["EVAL", "return redis.call('set', 'x', 'y')", "1", "x"],
        &["EVAL", "local t = redis.pcall('set', 'x', 'y') return t['err']", "1", "x"],
        &["FCALL", "f", "0"],
        &["FCALL", "ro", "0"],
        &["FUNCTION", "LOAD", "REPLACE", "#!lua name=lib\nredis.register_function('f', function() return 2 end)"],
        &["MULTI"],
        &["GET", "k"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "k", "z"],
        &["EXEC"],
        &["DEL", "k"],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["SET", "k", "w"],
    ] {
        d.check(cmd);
    }
}

/// allkeys-random keeps the data set under the limit while 20 MB are
/// written; the evictions are in the log, so a restart has the same keys.
#[test]
fn evictions_keep_the_data_set_under_the_limit_and_survive_a_restart() {
    let mut server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    c.call(&["CONFIG", "SET", "maxmemory", "4mb"])
        .expect("config");
    c.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-random"])
        .expect("config");
    let value = "x".repeat(10_000);
    for i in 0..2000 {
        let r = c.call(&["SET", &format!("key:{i}"), &value]).expect("set");
        assert_eq!(r, RespValue::Simple("OK".into()), "SET {i}");
    }
    let evicted = info_i64(&mut c, "evicted_keys");
    let RespValue::Int(n) = c.call(&["DBSIZE"]).expect("dbsize") else {
        panic!("DBSIZE");
    };
    assert!(evicted > 1000, "evicted {evicted}");
    assert_eq!(n + evicted, 2000);
    assert!(n * 10_000 <= 4_500_000, "{n} keys of 10 kB kept");
    let dataset = info_i64(&mut c, "used_memory_dataset");
    assert!(dataset <= 4_500_000, "dataset {dataset}");

    server.restart().expect("restart");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(c.call(&["DBSIZE"]).unwrap(), RespValue::Int(n));
}

/// volatile-ttl evicts the keys that expire soonest and never a key
/// without a TTL: once only those are left, writes get -OOM.
#[test]
fn volatile_ttl_evicts_soonest_expiring_keys_only() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    let value = "x".repeat(100_000);
    for i in 0..5 {
        c.call(&["SET", &format!("keep:{i}"), &value]).expect("set");
    }
    c.call(&["CONFIG", "SET", "maxmemory-policy", "volatile-ttl"])
        .expect("config");
    c.call(&["CONFIG", "SET", "maxmemory", "2mb"])
        .expect("config");
    c.call(&["CONFIG", "SET", "maxmemory-samples", "100"])
        .expect("config");
    for i in 0..20 {
        let r = c
            .call(&[
                "SET",
                &format!("ttl:{i}"),
                &value,
                "EX",
                &(10_000 - i).to_string(),
            ])
            .expect("set");
        assert_eq!(r, RespValue::Simple("OK".into()), "SET ttl:{i}");
    }
    // The newest key expires soonest: it was the first to go each time.
    assert_eq!(c.call(&["EXISTS", "ttl:0"]).unwrap(), RespValue::Int(1));
    for i in 0..5 {
        assert_eq!(
            c.call(&["EXISTS", &format!("keep:{i}")]).unwrap(),
            RespValue::Int(1)
        );
    }
    c.call(&["CONFIG", "SET", "maxmemory", "400kb"])
        .expect("config");
    let r = c.call(&["SET", "more", "x"]).expect("set");
    assert_eq!(
        r,
        RespValue::Error("OOM command not allowed when used memory > 'maxmemory'.".into())
    );
    assert!(info_i64(&mut c, "evicted_keys") > 0);
}

/// Reads the `evicted` event of `key` from a subscriber of them.
fn expect_evicted(sub: &mut RawConn, key: &str) {
    assert_eq!(
        sub.read().unwrap(),
        RespValue::Array(vec![
            RespValue::Bulk(b"message".to_vec()),
            RespValue::Bulk(b"__keyevent@0__:evicted".to_vec()),
            RespValue::Bulk(key.as_bytes().to_vec()),
        ])
    );
}

/// CONFIG SET maxmemory below what is used evicts at once, inside the
/// CONFIG SET, as Redis does: a subscriber hears the `evicted` events
/// before anything else runs (they came one command later).
#[test]
fn config_set_maxmemory_evicts_at_once() {
    let d = Differential::start().expect("servers");
    for port in [d.memlog.port, d.redis.port] {
        let mut c = RawConn::connect(port).unwrap();
        let mut sub = RawConn::connect(port).unwrap();
        for cmd in [
            &["FLUSHALL"][..],
            &["CONFIG", "SET", "notify-keyspace-events", "Ee"],
            &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
            &["SET", "v1", "x"],
        ] {
            c.call(cmd).unwrap();
        }
        sub.call(&["SUBSCRIBE", "__keyevent@0__:evicted"]).unwrap();
        assert_eq!(
            c.call(&["CONFIG", "SET", "maxmemory", "1"]).unwrap(),
            RespValue::Simple("OK".into())
        );
        // Nothing else has run since: the eviction came with CONFIG SET.
        expect_evicted(&mut sub, "v1");
        c.call(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
        // The same from inside a transaction.
        c.call(&["SET", "v2", "x"]).unwrap();
        c.call(&["MULTI"]).unwrap();
        c.call(&["CONFIG", "SET", "maxmemory", "1"]).unwrap();
        c.call(&["EXEC"]).unwrap();
        expect_evicted(&mut sub, "v2");
        c.call(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
        c.call(&["CONFIG", "SET", "notify-keyspace-events", ""])
            .unwrap();
    }
}

/// What counts against `maxmemory`: memlog's data set estimate plus its
/// base, Redis' `used_memory`.
fn counted_memory(c: &mut RawConn, memlog: bool) -> i64 {
    if memlog {
        info_i64(c, "used_memory_overhead") + info_i64(c, "used_memory_dataset")
    } else {
        info_i64(c, "used_memory")
    }
}

/// Fills 1,000 keys, every other one "cold" (restored with `cold` options:
/// long idle or rarely used), then lowers `maxmemory` by about 300 keys'
/// worth under `policy`: nearly every key evicted must be a cold one, as
/// on a real redis-server (random choice would take half from each).
fn evictions_pick_cold_keys(port: u16, memlog: bool, policy: &str, cold: &[&str], hot: &[&str]) {
    let mut c = RawConn::connect(port).expect("connect");
    let value = "v".repeat(1000);
    for cmd in [
        &["FLUSHALL"][..],
        &["CONFIG", "SET", "maxmemory", "0"],
        &["CONFIG", "SET", "maxmemory-policy", policy],
        &["SET", "tmp", &value],
    ] {
        c.call(cmd).expect("setup");
    }
    let RespValue::Bulk(payload) = c.call(&["DUMP", "tmp"]).expect("dump") else {
        panic!("DUMP");
    };
    c.call(&["DEL", "tmp"]).expect("del");
    for i in 0..1000 {
        let key = format!("k:{i}");
        let opts = if i % 2 == 0 { cold } else { hot };
        let mut cmd: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), b"0", &payload];
        cmd.extend(opts.iter().map(|o| o.as_bytes()));
        assert_eq!(
            c.call(&cmd).expect("restore"),
            RespValue::Simple("OK".into()),
            "{cmd:?}"
        );
    }
    let used = counted_memory(&mut c, memlog);
    let before = info_i64(&mut c, "evicted_keys");
    c.call(&[
        "CONFIG",
        "SET",
        "maxmemory",
        &(used - 300 * 1100).to_string(),
    ])
    .expect("config");
    let evicted = info_i64(&mut c, "evicted_keys") - before;
    let mut cold_left = 0;
    for i in (0..1000).step_by(2) {
        cold_left += c
            .call(&["EXISTS", &format!("k:{i}")])
            .expect("exists")
            .as_int()
            .expect("int");
    }
    let cold_evicted = 500 - cold_left;
    assert!(
        (150..500).contains(&evicted),
        "{policy} (memlog {memlog}): {evicted} evicted"
    );
    assert!(
        cold_evicted * 10 >= evicted * 9,
        "{policy} (memlog {memlog}): {cold_evicted} of {evicted} evicted were cold"
    );
    c.call(&["CONFIG", "SET", "maxmemory", "0"])
        .expect("config");
    c.call(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        .expect("config");
}

/// allkeys-lru evicts the keys idle longest and allkeys-lfu the ones used
/// least, sampled into a pool of candidates as Redis does (they used to
/// evict at random), on memlog and on redis-server alike.
#[test]
fn lru_and_lfu_policies_evict_the_coldest_keys() {
    let d = Differential::start().expect("servers");
    for (port, memlog) in [(d.memlog.port, true), (d.redis.port, false)] {
        evictions_pick_cold_keys(port, memlog, "allkeys-lru", &["IDLETIME", "100000"], &[]);
        evictions_pick_cold_keys(port, memlog, "allkeys-lfu", &["FREQ", "0"], &["FREQ", "50"]);
    }
}

/// Each key's access clock as Redis keeps it: reads and writes are
/// accesses, EXISTS / TYPE / TTL / OBJECT are not, TOUCH is; RESTORE sets
/// it; OBJECT IDLETIME and FREQ and DEBUG OBJECT show it.
#[test]
fn access_clocks_follow_lookups_as_in_redis() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    let int = |c: &mut RawConn, cmd: &[&str]| c.call(cmd).expect("call").as_int().expect("int");
    c.call(&["SET", "tmp", "bar"]).unwrap();
    let RespValue::Bulk(payload) = c.call(&["DUMP", "tmp"]).unwrap() else {
        panic!("DUMP");
    };
    let restore = |c: &mut RawConn, key: &str, opts: &[&str]| {
        let mut cmd: Vec<&[u8]> = vec![b"RESTORE", key.as_bytes(), b"0", &payload, b"REPLACE"];
        cmd.extend(opts.iter().map(|o| o.as_bytes()));
        assert_eq!(c.call(&cmd).unwrap(), RespValue::Simple("OK".into()));
    };
    assert_eq!(int(&mut c, &["OBJECT", "IDLETIME", "tmp"]), 0);
    restore(&mut c, "foo", &["IDLETIME", "1000"]);
    let idle = int(&mut c, &["OBJECT", "IDLETIME", "foo"]);
    assert!((1000..1003).contains(&idle), "{idle}");
    for cmd in [
        &["TTL", "foo"][..],
        &["PTTL", "foo"],
        &["TYPE", "foo"],
        &["EXISTS", "foo"],
        &["OBJECT", "ENCODING", "foo"],
        &["MEMORY", "USAGE", "foo"],
        &["SCAN", "0", "TYPE", "string"],
    ] {
        c.call(cmd).unwrap();
        let idle = int(&mut c, &["OBJECT", "IDLETIME", "foo"]);
        assert!(idle >= 1000, "{cmd:?} made it {idle}");
    }
    let RespValue::Simple(debug) = c.call(&["DEBUG", "OBJECT", "foo"]).unwrap() else {
        panic!("DEBUG OBJECT");
    };
    assert!(debug.contains("lru_seconds_idle:10"), "{debug}");
    for (cmd, key) in [
        (&["TOUCH", "foo"][..], "foo"),
        (&["GET", "foo"], "foo"),
        (&["APPEND", "foo", "x"], "foo"),
        (&["STRLEN", "foo"], "foo"),
        (&["SET", "foo", "y"], "foo"),
        (&["RENAME", "foo", "bar"], "bar"),
    ] {
        restore(&mut c, key, &["IDLETIME", "1000"]);
        c.call(cmd).unwrap();
        let idle = int(&mut c, &["OBJECT", "IDLETIME", key]);
        assert!(idle < 3, "{cmd:?} left it at {idle}");
    }
    // LFU: counters instead of times.
    c.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"])
        .unwrap();
    assert!(c.call(&["OBJECT", "IDLETIME", "bar"]).unwrap().is_error());
    c.call(&["SET", "new", "v"]).unwrap();
    assert_eq!(int(&mut c, &["OBJECT", "FREQ", "new"]), 5);
    restore(&mut c, "f", &["FREQ", "100"]);
    assert_eq!(int(&mut c, &["OBJECT", "FREQ", "f"]), 100);
    // RENAME and MOVE take the counter along (and count as one access).
    c.call(&["RENAME", "f", "g"]).unwrap();
    c.call(&["MOVE", "g", "1"]).unwrap();
    c.call(&["SELECT", "1"]).unwrap();
    let f = int(&mut c, &["OBJECT", "FREQ", "g"]);
    assert!((100..103).contains(&f), "{f}");
    c.call(&["SELECT", "0"]).unwrap();
    // A key read often climbs, logarithmically.
    for _ in 0..200 {
        c.call(&["GET", "new"]).unwrap();
    }
    let f = int(&mut c, &["OBJECT", "FREQ", "new"]);
    assert!((6..30).contains(&f), "{f}");
    c.call(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
        .unwrap();
    assert!(c.call(&["OBJECT", "FREQ", "new"]).unwrap().is_error());
}

/// Under LFU each lookup Redis makes is one access: a write command's
/// lookup and its write are one (Redis looks the key up once and keeps the
/// counter when it overwrites), a command that looks a key up twice makes
/// two. With `lfu-log-factor 0` every access adds exactly one, so the
/// counters must match redis-server's step by step.
#[test]
fn lfu_counts_accesses_as_redis_does() {
    let mut d = Differential::start().expect("servers");
    d.script(
        "FLUSHALL
         CONFIG SET maxmemory 1gb
         CONFIG SET maxmemory-policy allkeys-lfu
         CONFIG SET lfu-log-factor 0
         CONFIG SET lfu-decay-time 0",
    );
    for (cmd, key) in [
        (&["SET", "k", "100000"][..], "k"),
        (&["INCR", "k"], "k"),
        (&["INCRBYFLOAT", "k", "1.5"], "k"),
        (&["GET", "k"], "k"),
        (&["SET", "k", "v", "XX"], "k"),
        (&["SET", "k", "w", "NX"], "k"),
        (&["APPEND", "k", "x"], "k"),
        (&["SETRANGE", "k", "0", "y"], "k"),
        (&["TYPE", "k"], "k"),
        (&["EXISTS", "k"], "k"),
        (&["TTL", "k"], "k"),
        (&["LPUSH", "l", "a"], "l"),
        (&["LPUSH", "l", "b"], "l"),
        (&["LRANGE", "l", "0", "-1"], "l"),
        (&["SADD", "s", "a"], "s"),
        (&["SADD", "s", "b"], "s"),
        (&["SISMEMBER", "s", "a"], "s"),
        (&["HSET", "h", "f", "v"], "h"),
        (&["HSET", "h", "g", "v"], "h"),
        (&["HGET", "h", "f"], "h"),
        (&["ZADD", "z", "1", "a"], "z"),
        (&["ZADD", "z", "2", "b"], "z"),
        (&["ZSCORE", "z", "a"], "z"),
        (&["RENAME", "z", "z2"], "z2"),
        // A command that looks a key up twice counts two accesses.
        (&["MGET", "k", "k"], "k"),
        (&["ZINTERCARD", "2", "z2", "z2"], "z2"),
        (&["PFADD", "p", "a"], "p"),
        (&["PFCOUNT", "p", "p"], "p"),
        (&["XADD", "x", "1-1", "f", "v"], "x"),
        (&["XREAD", "STREAMS", "x", "0"], "x"),
        // A read and then a write that looks the key up again: two.
        (&["GETSET", "k", "2"], "k"),
        (&["SET", "k", "3", "GET"], "k"),
        (&["PFMERGE", "p", "p"], "p"),
        (&["ZADD", "bz", "1", "a", "2", "b"], "bz"),
        (&["BZPOPMIN", "bz", "0"], "bz"),
        // A key created by the command starts at the initial count.
        (&["SETRANGE", "nk", "1", "x"], "nk"),
        // Moves count each key once (one key named twice: twice).
        (&["RPUSH", "l1", "a", "b", "c"], "l1"),
        (&["LMOVE", "l1", "l2", "LEFT", "RIGHT"], "l2"),
        (&["LMOVE", "l1", "l2", "LEFT", "RIGHT"], "l2"),
        (&["OBJECT", "FREQ", "l1"], "l1"),
        (&["LMOVE", "l1", "l1", "LEFT", "RIGHT"], "l1"),
        (&["SADD", "s1", "a", "b"], "s1"),
        (&["SADD", "s2", "c"], "s2"),
        (&["SMOVE", "s1", "s2", "a"], "s2"),
        (&["OBJECT", "FREQ", "s1"], "s1"),
        (&["SMOVE", "s1", "s1", "b"], "s1"),
    ] {
        d.check(cmd);
        d.check(&["OBJECT", "FREQ", key]);
    }
    d.script(
        "CONFIG SET maxmemory 0
         CONFIG SET maxmemory-policy noeviction
         CONFIG SET lfu-log-factor 10
         CONFIG SET lfu-decay-time 1",
    );
}

/// Under an LRU or LFU policy a snapshot keeps each key's access clock (a
/// RESTORE with IDLETIME or FREQ), as Redis' RDB keeps idle times and
/// frequencies: after a restart the keys idle longest are still the first
/// to go, not every key freshly used.
#[test]
fn snapshots_keep_access_clocks_under_lru() {
    let mut server =
        MemlogServer::start(&["--", "--maxmemory-policy", "allkeys-lru"]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    c.call(&["SET", "fresh", "v"]).unwrap();
    let RespValue::Bulk(payload) = c.call(&["DUMP", "fresh"]).unwrap() else {
        panic!("DUMP");
    };
    let restore: [&[u8]; 6] = [b"RESTORE", b"idle", b"0", &payload, b"IDLETIME", b"5000"];
    assert_eq!(c.call(&restore).unwrap(), RespValue::Simple("OK".into()));
    // A collection big enough to be written in chunks keeps its clock too.
    let mut rpush = vec!["RPUSH".to_string(), "big".to_string()];
    rpush.extend((0..3000).map(|i| i.to_string()));
    c.call(&rpush).unwrap();
    let RespValue::Bulk(big) = c.call(&["DUMP", "big"]).unwrap() else {
        panic!("DUMP");
    };
    let restore: [&[u8]; 7] = [
        b"RESTORE",
        b"big",
        b"0",
        &big,
        b"REPLACE",
        b"IDLETIME",
        b"5000",
    ];
    assert_eq!(c.call(&restore).unwrap(), RespValue::Simple("OK".into()));
    assert_eq!(c.call(&["SAVE"]).unwrap(), RespValue::Simple("OK".into()));
    server.restart().expect("restart");
    let mut c = RawConn::connect(server.port).expect("connect");
    let idle = |c: &mut RawConn, k: &str| {
        memlog_tests::call_until_ok(c, &["OBJECT", "IDLETIME", k])
            .as_int()
            .expect("int")
    };
    for k in ["idle", "big"] {
        let i = idle(&mut c, k);
        assert!((5000..5100).contains(&i), "{k} idle {i}");
    }
    assert!(idle(&mut c, "fresh") < 100);
    assert_eq!(c.call(&["LLEN", "big"]).unwrap(), RespValue::Int(3000));
    assert_eq!(
        c.call(&["LINDEX", "big", "2999"]).unwrap(),
        RespValue::Bulk(b"2999".to_vec())
    );
}

/// An eviction takes an expired key as it is, as Redis' does: one
/// `evicted` event and INFO evicted_keys, not an expiry first (memlog
/// expired it and then counted it evicted too).
#[test]
fn evicting_an_expired_key_is_only_an_eviction() {
    let d = Differential::start().expect("servers");
    let mut seen = Vec::new();
    for port in [d.memlog.port, d.redis.port] {
        let mut c = RawConn::connect(port).unwrap();
        let mut sub = RawConn::connect(port).unwrap();
        for cmd in [
            &["FLUSHALL"][..],
            &["CONFIG", "RESETSTAT"],
            &["DEBUG", "SET-ACTIVE-EXPIRE", "0"],
            &["CONFIG", "SET", "notify-keyspace-events", "Exe"],
            &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"],
            &["SET", "gone", "v", "PX", "1"],
        ] {
            c.call(cmd).unwrap();
        }
        sub.call(&["PSUBSCRIBE", "__keyevent@0__:*"]).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        c.call(&["CONFIG", "SET", "maxmemory", "1"]).unwrap();
        c.call(&["CONFIG", "SET", "maxmemory", "0"]).unwrap();
        c.call(&["PUBLISH", "__keyevent@0__:end", "x"]).unwrap();
        let mut events = Vec::new();
        loop {
            let RespValue::Array(m) = sub.read().unwrap() else {
                panic!("event");
            };
            let channel = m[2].clone();
            if channel == RespValue::Bulk(b"__keyevent@0__:end".to_vec()) {
                break;
            }
            events.push((channel, m[3].clone()));
        }
        let counts = ["expired_keys", "evicted_keys"].map(|f| info_i64(&mut c, f));
        for cmd in [
            &["DEBUG", "SET-ACTIVE-EXPIRE", "1"][..],
            &["CONFIG", "SET", "notify-keyspace-events", ""],
            &["CONFIG", "SET", "maxmemory-policy", "noeviction"],
        ] {
            c.call(cmd).unwrap();
        }
        seen.push((events, counts));
    }
    assert_eq!(
        seen[0].0,
        vec![(
            RespValue::Bulk(b"__keyevent@0__:evicted".to_vec()),
            RespValue::Bulk(b"gone".to_vec())
        )]
    );
    assert_eq!(seen[0].1, [0, 1]);
    assert_eq!(seen[0], seen[1]);
}
