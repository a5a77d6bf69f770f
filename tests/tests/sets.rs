//! Differential tests of the set commands against a real redis-server, plus
//! an effect-replay check on the engine itself.

use memlog_tests::{Differential, Order, RespValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn start() -> Differential {
    Differential::start().expect("servers start")
}

/// Switches both connections to RESP3 (the HELLO replies differ in id).
fn hello3(d: &mut Differential) {
    let (m, r) = d.both(&["HELLO", "3"]);
    assert!(matches!(m, RespValue::Map(_)), "{m:?}");
    assert!(matches!(r, RespValue::Map(_)), "{r:?}");
}

/// The reply's kind, without its contents.
fn kind(v: &RespValue) -> &'static str {
    match v {
        RespValue::Array(_) => "array",
        RespValue::Set(_) => "set",
        RespValue::Map(_) => "map",
        RespValue::Bulk(_) => "bulk",
        RespValue::Null => "null",
        RespValue::NullArray => "nullarray",
        RespValue::Int(_) => "int",
        RespValue::Error(_) => "error",
        _ => "other",
    }
}

/// Unordered comparison that still checks set-vs-array (RESP3).
fn check_unordered(d: &mut Differential, args: &[&str]) {
    let (m, r) = d.both(args);
    assert_eq!(kind(&m), kind(&r), "{args:?}: {m:?} vs {r:?}");
    assert_eq!(m.normalized(), r.normalized(), "{args:?}: {m:?} vs {r:?}");
}

/// The bulk strings of an array or set reply.
fn members(v: &RespValue) -> Vec<Vec<u8>> {
    match v {
        RespValue::Array(items) | RespValue::Set(items) => items
            .iter()
            .map(|x| match x {
                RespValue::Bulk(b) => b.clone(),
                other => panic!("unexpected element {other:?}"),
            })
            .collect(),
        other => panic!("unexpected reply {other:?}"),
    }
}

#[test]
fn basics_resp2() {
    let mut d = start();
    d.script(
        "FLUSHALL
         SADD s a b c
         SADD s a d
         SADD s
         SCARD s
         SCARD nokey
         SCARD s x
         SISMEMBER s a
         SISMEMBER s zz
         SISMEMBER nokey a
         SISMEMBER s
         SMISMEMBER s a zz d
         SMISMEMBER nokey a b
         SMISMEMBER s
         ~SMEMBERS s
         SMEMBERS nokey
         SMEMBERS s x
         SREM s a zz
         SREM s
         SREM nokey a
         ~SMEMBERS s
         SREM s b c d
         EXISTS s
         SADD i 5 3 -1 10 3
         SMEMBERS i
         SADD i 100000000000
         SMEMBERS i
         SREM i 3
         SMEMBERS i
         SET str x
         SADD str a
         SREM str a
         SISMEMBER str a
         SMISMEMBER str a
         SMEMBERS str
         SCARD str
         SPOP str
         SPOP str 1
         SRANDMEMBER str
         SRANDMEMBER str 1
         SMOVE str i a
         SINTER str
         SINTERCARD 1 str
         SUNION str
         SDIFF str
         SINTERSTORE d str
         SUNIONSTORE d str
         SDIFFSTORE d str
         SSCAN str 0
         GET str",
    );
}

#[test]
fn smove() {
    let mut d = start();
    d.script(
        "FLUSHALL
         SADD src a b c
         SADD dst c
         SMOVE src dst a
         SMOVE src dst zz
         SMOVE src dst c
         ~SMEMBERS src
         ~SMEMBERS dst
         SMOVE src src b
         SMOVE src src zz
         SMOVE src newdst b
         SMEMBERS newdst
         EXISTS src
         SMOVE nokey dst a
         SET str x
         SMOVE nokey str a
         SMOVE str dst a
         SMOVE dst str c
         SMOVE dst str zz
         SMOVE src dst
         SMOVE src dst a b",
    );
}

#[test]
fn algebra() {
    let mut d = start();
    d.script(
        "FLUSHALL
         SADD a 1 2 3 4 x y
         SADD b 3 4 5 y z
         SADD c 4 y q
         ~SINTER a b
         ~SINTER a b c
         ~SINTER a
         SINTER a nokey
         SINTER nokey a
         SINTER
         ~SUNION a b
         ~SUNION a nokey c
         SUNION nokey
         SUNION
         ~SDIFF a b
         ~SDIFF a b c
         SDIFF nokey a
         ~SDIFF a nokey
         SDIFF a a
         SDIFF
         SINTERSTORE d a b
         ~SMEMBERS d
         SINTERSTORE d a nokey
         EXISTS d
         SINTERSTORE d a nokey
         SUNIONSTORE d a c
         ~SMEMBERS d
         SDIFFSTORE d a b c
         ~SMEMBERS d
         SDIFFSTORE d a a
         EXISTS d
         SUNIONSTORE d nokey
         SUNIONSTORE d
         SINTERSTORE d
         SDIFFSTORE d
         SET str v
         SUNIONSTORE str a
         TYPE str
         SINTERSTORE a a b
         ~SMEMBERS a
         SDIFFSTORE b b a
         ~SMEMBERS b
         SET s2 v
         SINTER a s2
         SINTER nokey s2
         SUNION a s2
         SDIFF nokey s2
         SDIFF a s2
         SINTERSTORE d nokey s2
         SUNIONSTORE s2 a
         ~SMEMBERS s2",
    );
}

#[test]
fn intercard() {
    let mut d = start();
    d.script(
        "FLUSHALL
         SADD a 1 2 3 4 5
         SADD b 2 3 4 5 6
         SINTERCARD 2 a b
         SINTERCARD 1 a
         SINTERCARD 2 a b LIMIT 2
         SINTERCARD 2 a b LIMIT 0
         SINTERCARD 2 a b LIMIT 100
         SINTERCARD 2 a b limit 1
         SINTERCARD 2 a nokey
         SINTERCARD 2 a b LIMIT -1
         SINTERCARD 2 a b LIMIT x
         SINTERCARD 2 a b LIMIT
         SINTERCARD 2 a b LIMIT 1 LIMIT 2
         SINTERCARD 2 a b FOO 1
         SINTERCARD 0 a
         SINTERCARD -1 a
         SINTERCARD x a
         SINTERCARD 3 a b
         SINTERCARD 9223372036854775807 a
         SINTERCARD 1
         SINTERCARD
         SET str v
         SINTERCARD 2 a str
         SINTERCARD 2 nokey str",
    );
}

#[test]
fn pop_and_randmember() {
    let mut d = start();
    d.script(
        "FLUSHALL
         SPOP nokey
         SPOP nokey 3
         SPOP nokey 0
         SPOP nokey -1
         SPOP nokey x
         SPOP nokey 1 2
         SRANDMEMBER nokey
         SRANDMEMBER nokey 3
         SRANDMEMBER nokey -3
         SRANDMEMBER nokey 0
         SRANDMEMBER nokey x
         SRANDMEMBER nokey 1 2
         SRANDMEMBER nokey -9223372036854775808
         SRANDMEMBER nokey 9223372036854775807
         SADD s a b c d e
         SPOP s 0
         SRANDMEMBER s 0
         SPOP s -1
         SRANDMEMBER s -9223372036854775808
         SADD i 3 1 2
         SRANDMEMBER i 3
         SRANDMEMBER i 100
         SPOP i 100
         EXISTS i",
    );
    let all: Vec<Vec<u8>> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    for resp3 in [false, true] {
        if resp3 {
            hello3(&mut d);
        }
        d.script(
            "DEL s
             SADD s a b c d e",
        );
        for count in ["1", "3", "5", "10", "-3", "-20"] {
            let (m, r) = d.both(&["SRANDMEMBER", "s", count]);
            assert_eq!(kind(&m), kind(&r), "SRANDMEMBER {count}: {m:?} vs {r:?}");
            let (mm, rm) = (members(&m), members(&r));
            assert_eq!(mm.len(), rm.len(), "SRANDMEMBER {count}");
            assert!(mm.iter().all(|x| all.contains(x)));
            if !count.starts_with('-') {
                let mut u = mm.clone();
                u.sort();
                u.dedup();
                assert_eq!(u.len(), mm.len(), "duplicates in {m:?}");
            }
        }
        let (m, _) = d.both(&["SRANDMEMBER", "s"]);
        assert!(matches!(&m, RespValue::Bulk(b) if all.contains(b)), "{m:?}");
        // SPOP: same sizes, disjoint pops that add up to the whole set.
        let mut popped = Vec::new();
        for args in [
            &["SPOP", "s"][..],
            &["SPOP", "s", "2"],
            &["SPOP", "s", "10"],
        ] {
            let (m, r) = d.both(args);
            assert_eq!(kind(&m), kind(&r), "{args:?}: {m:?} vs {r:?}");
            match &m {
                RespValue::Bulk(b) => popped.push(b.clone()),
                other => {
                    assert_eq!(members(other).len(), members(&r).len(), "{args:?}");
                    popped.extend(members(other));
                }
            }
        }
        popped.sort();
        assert_eq!(popped, all);
        d.script(
            "EXISTS s
             SPOP s
             SPOP s 2",
        );
    }
}

#[test]
fn resp3_shapes() {
    let mut d = start();
    hello3(&mut d);
    d.script(
        "FLUSHALL
         SADD i 3 1 2
         SMEMBERS i
         SMEMBERS nokey
         SINTER nokey i
         SUNION nokey
         SDIFF nokey
         SMISMEMBER i 1 9
         SSCAN i 0
         SSCAN nokey 0
         SPOP nokey 2
         SPOP nokey
         SRANDMEMBER nokey
         SRANDMEMBER nokey 2
         SRANDMEMBER i 10
         SINTERCARD 1 i",
    );
    d.script("SADD s a b c 1");
    for args in [
        &["SMEMBERS", "s"][..],
        &["SINTER", "s", "i"],
        &["SUNION", "s", "i"],
        &["SDIFF", "s", "i"],
    ] {
        check_unordered(&mut d, args);
    }
}

#[test]
fn scan() {
    let mut d = start();
    d.script(
        "FLUSHALL
         SSCAN nokey 0
         SSCAN nokey x
         SSCAN nokey 0 COUNT 0
         SADD i 10 2 33 4 -5
         SSCAN i 0
         SSCAN i 0 MATCH 3*
         SSCAN i 0 COUNT 1
         SSCAN i 0 COUNT 0
         SSCAN i 0 COUNT x
         SSCAN i 0 MATCH
         SSCAN i 0 FOO bar
         SSCAN i abc
         SSCAN i -5
         SSCAN i
         SET str v
         SSCAN str 0",
    );
    let mut args = vec!["SADD".to_string(), "big".to_string()];
    for i in 0..700 {
        args.push(format!("m{i}"));
    }
    d.check(&args);
    // Large integer set (no intset) too.
    let mut args = vec!["SADD".to_string(), "bigint".to_string()];
    for i in 0..600 {
        args.push(format!("{i}"));
    }
    d.check(&args);
    for key in ["big", "bigint"] {
        // Both page a set this big.
        for c in [&mut d.m, &mut d.r] {
            let reply = c.call(&["SSCAN", key, "0", "COUNT", "13"]).unwrap();
            let RespValue::Array(parts) = reply else {
                panic!("{reply:?}")
            };
            assert_ne!(parts[0], RespValue::Bulk(b"0".to_vec()));
            assert!(members(&parts[1]).len() < 100);
        }
        for extra in [
            &[][..],
            &["COUNT", "13"][..],
            &["MATCH", "*1*", "COUNT", "100"][..],
        ] {
            let m = full_scan(&mut d.m, key, extra);
            let r = full_scan(&mut d.r, key, extra);
            assert_eq!(m, r, "SSCAN {key} {extra:?}");
        }
    }
}

/// Runs an SSCAN to the end; returns the sorted unique members seen.
fn full_scan(c: &mut memlog_tests::RawConn, key: &str, extra: &[&str]) -> Vec<Vec<u8>> {
    let mut cursor = b"0".to_vec();
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let mut args: Vec<Vec<u8>> = vec![b"SSCAN".to_vec(), key.into(), cursor.clone()];
        args.extend(extra.iter().map(|s| s.as_bytes().to_vec()));
        let reply = c.call(&args).expect("reply");
        let RespValue::Array(parts) = reply else {
            panic!("bad reply {reply:?}")
        };
        let RespValue::Bulk(next) = &parts[0] else {
            panic!("bad reply {parts:?}")
        };
        seen.extend(members(&parts[1]));
        if next == b"0" {
            break;
        }
        cursor = next.clone();
    }
    seen.sort();
    seen.dedup();
    seen
}

#[test]
fn big_sets_unordered() {
    let mut d = start();
    d.check(&["FLUSHALL"]);
    let mut a = vec!["SADD".to_string(), "a".to_string()];
    let mut b = vec!["SADD".to_string(), "b".to_string()];
    for i in 0..400 {
        a.push(format!("e{i}"));
        if i % 3 == 0 {
            b.push(format!("e{i}"));
        }
    }
    d.check(&a);
    d.check(&b);
    for args in [
        &["SINTER", "a", "b"][..],
        &["SUNION", "a", "b"],
        &["SDIFF", "a", "b"],
        &["SMEMBERS", "a"],
    ] {
        d.check_with(args, Order::Unordered);
    }
    d.script(
        "SINTERCARD 2 a b
         SINTERCARD 2 a b LIMIT 10
         SINTERSTORE d a b
         SDIFFSTORE d a b
         SCARD d
         SREM a e1 e2 e3 nope
         SCARD a",
    );
}

#[test]
fn randomized() {
    let mut d = start();
    d.check(&["FLUSHALL"]);
    d.check(&["SET", "str", "v"]);
    let mut rng = StdRng::seed_from_u64(0x5e7);
    let keys = ["s1", "s2", "s3", "str"];
    let members_pool = ["a", "b", "c", "1", "2", "-7", "x y"];
    for _ in 0..600 {
        let key = |rng: &mut StdRng| keys[rng.gen_range(0..keys.len())].to_string();
        let mem = |rng: &mut StdRng| members_pool[rng.gen_range(0..members_pool.len())].to_string();
        let mut args: Vec<String> = Vec::new();
        let mut unordered = false;
        match rng.gen_range(0..16) {
            0 | 1 => {
                args.extend(["SADD".into(), key(&mut rng)]);
                for _ in 0..rng.gen_range(0..4) {
                    args.push(mem(&mut rng));
                }
            }
            2 => {
                args.extend(["SREM".into(), key(&mut rng)]);
                for _ in 0..rng.gen_range(0..3) {
                    args.push(mem(&mut rng));
                }
            }
            3 => args.extend(["SISMEMBER".into(), key(&mut rng), mem(&mut rng)]),
            4 => {
                args.extend(["SMISMEMBER".into(), key(&mut rng)]);
                for _ in 0..rng.gen_range(0..3) {
                    args.push(mem(&mut rng));
                }
            }
            5 => {
                args.extend(["SMEMBERS".into(), key(&mut rng)]);
                unordered = true;
            }
            6 => args.extend(["SCARD".into(), key(&mut rng)]),
            7 => args.extend(["SMOVE".into(), key(&mut rng), key(&mut rng), mem(&mut rng)]),
            8..=10 => {
                let op = ["SINTER", "SUNION", "SDIFF"][rng.gen_range(0..3)];
                args.push(op.into());
                for _ in 0..rng.gen_range(0..4) {
                    args.push(key(&mut rng));
                }
                unordered = true;
            }
            11 => {
                let op = ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"][rng.gen_range(0..3)];
                args.extend([op.into(), ["d1", "s1", "str"][rng.gen_range(0..3)].into()]);
                for _ in 0..rng.gen_range(0..3) {
                    args.push(key(&mut rng));
                }
            }
            12 => {
                let n = rng.gen_range(0..4);
                let nk = ["0", "1", "2", "3", "x"][rng.gen_range(0..5)];
                args.extend(["SINTERCARD".into(), nk.into()]);
                for _ in 0..n {
                    args.push(key(&mut rng));
                }
                if rng.gen_bool(0.3) {
                    args.extend(["LIMIT".into(), ["0", "1", "-1"][rng.gen_range(0..3)].into()]);
                }
            }
            13 => {
                // Deterministic forms only: whole-set or error counts.
                let c = ["0", "x", "-9223372036854775808", "1000"][rng.gen_range(0..4)];
                args.extend(["SRANDMEMBER".into(), key(&mut rng), c.into()]);
                unordered = true;
            }
            14 => {
                let c = ["0", "x", "-1"][rng.gen_range(0..3)];
                args.extend(["SPOP".into(), key(&mut rng), c.into()]);
            }
            _ => {
                args.extend(["SSCAN".into(), key(&mut rng), "0".into()]);
                if rng.gen_bool(0.5) {
                    args.extend(["MATCH".into(), "[a-c]".into()]);
                }
                unordered = true;
            }
        }
        let order = if unordered {
            Order::Unordered
        } else {
            Order::Exact
        };
        d.check_with(&args, order);
    }
    for k in ["s1", "s2", "s3", "d1"] {
        d.check_with(&["SMEMBERS", k], Order::Unordered);
    }
}

#[test]
fn effects_replay() {
    memlog_tests::assert_effects_rebuild(&[
        &["SADD", "s", "a", "b", "c", "d", "e", "f"],
        &["SADD", "s", "a"],
        &["SPOP", "s"],
        &["SPOP", "s", "2"],
        &["SREM", "s", "zz"],
        &["SADD", "t", "1", "2"],
        &["SPOP", "t", "5"],
        &["SADD", "u", "x"],
        &["SPOP", "u"],
        &["SADD", "v", "1", "2", "3"],
        &["SMOVE", "s", "v", "a"],
        &["SMOVE", "s", "v", "b"],
        &["SINTERSTORE", "w", "s", "v"],
        &["SUNIONSTORE", "w2", "s", "v"],
        &["SDIFFSTORE", "w3", "v", "s"],
        &["SINTERSTORE", "w3", "nokey", "v"],
        &["SPOP", "v", "1"],
    ]);
}

/// Subscribes to every keyevent of db 0 on both servers, runs `cmds` on the
/// main connections, and compares the events each server published.
fn compare_keyevents(d: &mut Differential, cmds: &[&[&str]]) {
    use memlog_tests::RawConn;
    d.check(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut subs: Vec<RawConn> = [d.memlog.port, d.redis.port]
        .iter()
        .map(|&p| {
            let mut c = RawConn::connect(p).unwrap();
            c.call(&["PSUBSCRIBE", "__keyevent@0__:*"]).unwrap();
            c.call(&["SUBSCRIBE", "done"]).unwrap();
            c
        })
        .collect();
    for c in cmds {
        let (m, r) = d.both(c);
        // Random commands may differ in content, never in kind.
        assert_eq!(kind(&m), kind(&r), "{c:?}: {m:?} vs {r:?}");
    }
    d.both(&["PUBLISH", "done", "x"]);
    let events: Vec<Vec<RespValue>> = subs
        .iter_mut()
        .map(|s| {
            let mut ev = Vec::new();
            loop {
                let msg = s.read().unwrap();
                let RespValue::Array(parts) = &msg else {
                    panic!("{msg:?}")
                };
                if parts[0] == RespValue::Bulk(b"message".to_vec()) {
                    break;
                }
                ev.push(RespValue::Array(parts[2..].to_vec()));
            }
            ev
        })
        .collect();
    assert_eq!(events[0], events[1], "keyspace events differ");
    d.check(&["CONFIG", "SET", "notify-keyspace-events", ""]);
}

#[test]
fn keyspace_events() {
    let mut d = start();
    d.check(&["FLUSHALL"]);
    compare_keyevents(
        &mut d,
        &[
            &["SADD", "s", "a", "b", "c"],
            &["SADD", "s", "a"],
            &["SREM", "s", "zz"],
            &["SREM", "s", "a"],
            &["SMOVE", "s", "t", "b"],
            &["SMOVE", "s", "t", "c"],
            &["SMOVE", "t", "t", "c"],
            &["SADD", "u", "1", "2", "3", "4"],
            &["SPOP", "u"],
            &["SPOP", "u", "2"],
            &["SPOP", "u", "5"],
            &["SADD", "v", "1"],
            &["SPOP", "v"],
            &["SADD", "a", "1", "2"],
            &["SINTERSTORE", "d", "a", "t"],
            &["SUNIONSTORE", "d", "a", "t"],
            &["SDIFFSTORE", "d", "a", "a"],
            &["SDIFFSTORE", "d", "a", "t"],
            &["SINTERSTORE", "d", "a", "nokey"],
            &["HSET", "h", "a", "1", "b", "2"],
            &["HSETNX", "h", "a", "1"],
            &["HSETNX", "h", "c", "1"],
            &["HMSET", "h", "d", "4"],
            &["HINCRBY", "h", "a", "2"],
            &["HINCRBYFLOAT", "h", "a", "2.5"],
            &["HDEL", "h", "zz"],
            &["HDEL", "h", "a", "b"],
            &["HDEL", "h", "c", "d"],
            &["HINCRBY", "h", "x", "y"],
        ],
    );
}

/// A negative count asks for picks with repetitions, as many as it likes:
/// Redis builds such a reply whole and runs out of memory at
/// -9223372036854775807. memlog bounds the reply by proto-max-bulk-len and
/// answers an error past it, at once, and keeps serving; a big reply within
/// the bound still comes whole, and the bound moves with the parameter.
#[test]
fn random_picks_with_repetitions_are_bounded_by_proto_max_bulk_len() {
    use memlog_tests::RawConn;
    let server = memlog_tests::MemlogServer::start(&[]).expect("memlog starts");
    let mut c = RawConn::connect(server.port).expect("connect");
    let mut other = RawConn::connect(server.port).expect("connect");
    for cmd in [
        &["SADD", "s", "0123456789", "abcdefghij"][..],
        &["HSET", "h", "0123456789", "v", "abcdefghij", "w"],
        &["ZADD", "z", "1", "0123456789", "2", "abcdefghij"],
        &["SET", "k", "v"],
    ] {
        c.call(cmd).expect("setup");
    }
    let huge = "-9223372036854775807";
    let half = "-4611686018427387903";
    let too_large = |v: RespValue| match v {
        RespValue::Error(e) => assert!(
            e.starts_with("ERR reply too large")
                && e.contains("proto-max-bulk-len (536870912 bytes)"),
            "{e}"
        ),
        other => panic!("expected an error, got {other:?}"),
    };
    let started = std::time::Instant::now();
    for cmd in [
        &["SRANDMEMBER", "s", huge][..],
        &["HRANDFIELD", "h", huge],
        &["HRANDFIELD", "h", half, "WITHVALUES"],
        &["ZRANDMEMBER", "z", huge],
        &["ZRANDMEMBER", "z", half, "WITHSCORES"],
    ] {
        too_large(c.call(cmd).expect("reply"));
        assert_eq!(
            other.call(&["GET", "k"]).expect("get"),
            RespValue::Bulk(b"v".to_vec())
        );
    }
    // Refused from the first picks' projection, not after building 512 MB.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    // Redis' errors for counts it refuses itself stay first.
    assert_eq!(
        c.call(&["HRANDFIELD", "h", huge, "WITHVALUES"])
            .expect("reply"),
        RespValue::Error("ERR value is out of range".into())
    );
    // Within the bound: whole, in Redis' shapes.
    let picks = |v: RespValue| match v {
        RespValue::Array(a) => a.len(),
        other => panic!("expected an array, got {other:?}"),
    };
    assert_eq!(
        picks(c.call(&["SRANDMEMBER", "s", "-100000"]).expect("reply")),
        100_000
    );
    assert_eq!(
        picks(
            c.call(&["HRANDFIELD", "h", "-100000", "WITHVALUES"])
                .expect("reply")
        ),
        200_000
    );
    assert_eq!(
        picks(
            c.call(&["ZRANDMEMBER", "z", "-100000", "WITHSCORES"])
                .expect("reply")
        ),
        200_000
    );
    // 100,000 picks of 16 bytes: 1.6 MB, past a 1 MB bound.
    c.call(&["CONFIG", "SET", "proto-max-bulk-len", "1mb"])
        .expect("config");
    match c.call(&["SRANDMEMBER", "s", "-100000"]).expect("reply") {
        RespValue::Error(e) => assert!(e.contains("proto-max-bulk-len (1048576 bytes)"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(
        picks(c.call(&["SRANDMEMBER", "s", "-50000"]).expect("reply")),
        50_000
    );
    // The same bound inside a script and a transaction.
    match c
        .call(&[
            "EVAL",
            "return redis.call('SRANDMEMBER', KEYS[1], ARGV[1])",
            "1",
            "s",
            huge,
        ])
        .expect("reply")
    {
        RespValue::Error(e) => assert!(e.contains("reply too large"), "{e}"),
        other => panic!("expected an error, got {other:?}"),
    }
    c.call(&["MULTI"]).expect("multi");
    c.call(&["SRANDMEMBER", "s", huge]).expect("queued");
    c.call(&["SRANDMEMBER", "s", "-2"]).expect("queued");
    match c.call(&["EXEC"]).expect("exec") {
        RespValue::Array(a) => {
            assert!(
                matches!(&a[0], RespValue::Error(e) if e.contains("reply too large")),
                "{a:?}"
            );
            assert!(
                matches!(&a[1], RespValue::Array(p) if p.len() == 2),
                "{a:?}"
            );
        }
        other => panic!("expected EXEC's array, got {other:?}"),
    }
}
