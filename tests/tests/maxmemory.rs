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
