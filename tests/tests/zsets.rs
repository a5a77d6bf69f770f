//! Differential tests of the sorted set family against a real redis-server.

use std::time::Duration;

use memlog_tests::{Differential, RawConn, RespValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BASIC: &str = "FLUSHALL
     ZADD z 1 a 2 b 3 c
     ZADD z 1 a
     ZADD z CH 5 a 2 b
     ZADD z NX 10 a 11 d
     ZADD z XX 20 d 21 e
     ZADD z XX CH 21 d 22 e
     ZADD z GT 1 a
     ZADD z GT CH 6 a
     ZADD z LT CH 100 a
     ZADD z LT CH 0 a
     ZADD z INCR 5 a
     ZADD z INCR NX 5 a
     ZADD z INCR XX 5 nosuch
     ZADD z INCR GT -1 a
     ZADD z INCR LT -1 a
     ZADD z INCR 1 a 2 b
     ZADD z NX XX 1 a
     ZADD z GT LT 1 a
     ZADD z GT NX 1 a
     ZADD z 1
     ZADD z 1 a 2
     ZADD z abc a
     ZADD z nan a
     ZADD z 1e400 a
     ZADD z inf posinf -inf neginf +inf p2 -0 negz 0 zero 1.5 f 0.1 g 1e-5 h
     ZADD z INCR -inf posinf
     ZADD nokey XX 1 a
     ZADD nokey XX INCR 1 a
     EXISTS nokey
     ZADD z
     ZRANGE z 0 -1 WITHSCORES
     ZINCRBY z 2.5 a
     ZINCRBY z 1 newm
     ZINCRBY z abc a
     ZINCRBY z 1
     ZINCRBY z inf a
     ZINCRBY z -inf a
     ZSCORE z a
     ZSCORE z nosuch
     ZSCORE nokey a
     ZSCORE z
     ZMSCORE z a b nosuch f
     ZMSCORE nokey a b
     ZMSCORE z
     ZCARD z
     ZCARD nokey
     ZCARD z x
     ZRANK z a
     ZRANK z nosuch
     ZRANK nokey a
     ZREVRANK z a
     ZREVRANK z b
     ZREVRANK z nosuch
     ZRANK z a WITHSCORE
     ZREM z a b nosuch
     ZREM z nosuch
     ZREM nokey a
     ZREM z
     ZRANGE z 0 -1 WITHSCORES
     SET str v
     ZADD str 1 a
     ZINCRBY str 1 a
     ZREM str a
     ZCARD str
     ZSCORE str a
     ZMSCORE str a
     ZRANK str a
     ZREVRANK str a
     ZADD s2 1 only
     ZREM s2 only
     EXISTS s2";

#[test]
fn zadd_and_simple_reads() {
    let mut d = Differential::start().expect("servers start");
    d.script(BASIC);
    d.both(&["HELLO", "3"]);
    d.script(BASIC);
}

const RANGES: &str = "FLUSHALL
     ZADD z 1 a 2 b 3 c 4 d 5 e 5 f -1 g inf h -inf i
     ZRANGE z 0 -1
     ZRANGE z 0 -1 WITHSCORES
     ZRANGE z 2 4 withscores
     ZRANGE z -3 -1
     ZRANGE z -100 100
     ZRANGE z 5 2
     ZRANGE z 100 200
     ZRANGE z 0 -1 REV WITHSCORES
     ZRANGE z 0 1 REV
     ZRANGE z a b
     ZRANGE z 0 1 LIMIT 0 1
     ZRANGE z 0 1 LIMIT 0 -1
     ZRANGE z 0 1 FOO
     ZRANGE z 0 1 REV REV
     ZRANGE z 2 4 BYSCORE
     ZRANGE z (2 4 BYSCORE WITHSCORES
     ZRANGE z (2 (4 BYSCORE
     ZRANGE z -inf +inf BYSCORE
     ZRANGE z -inf +inf BYSCORE LIMIT 2 3
     ZRANGE z -inf +inf BYSCORE LIMIT -1 3
     ZRANGE z -inf +inf BYSCORE LIMIT 2 -1
     ZRANGE z -inf +inf BYSCORE LIMIT 2 0
     ZRANGE z -inf +inf BYSCORE LIMIT 100 1
     ZRANGE z 4 2 BYSCORE REV WITHSCORES
     ZRANGE z +inf -inf BYSCORE REV LIMIT 1 2
     ZRANGE z (5 (5 BYSCORE
     ZRANGE z 5 5 BYSCORE
     ZRANGE z abc 5 BYSCORE
     ZRANGE z 1 (abc BYSCORE
     ZRANGE z ( 3 BYSCORE
     ZRANGE z 1 2 BYSCORE BYLEX
     ZRANGE z - + BYLEX
     ZRANGE z - + BYLEX WITHSCORES
     ZRANGE z 0 -1 BYSCORE LIMIT 1
     ZRANGE z 0 -1 BYSCORE LIMIT a 1
     ZRANGEBYSCORE z 1 3
     ZRANGEBYSCORE z 1 3 WITHSCORES
     ZRANGEBYSCORE z (1 +inf LIMIT 1 2 WITHSCORES
     ZRANGEBYSCORE z 1 3 REV
     ZRANGEBYSCORE z 1 3 BYSCORE
     ZRANGEBYSCORE z x 3
     ZRANGEBYSCORE nokey 1 3
     ZREVRANGEBYSCORE z 3 1
     ZREVRANGEBYSCORE z +inf -inf WITHSCORES LIMIT 0 3
     ZREVRANGEBYSCORE z 1 3
     ZREVRANGE z 0 2
     ZREVRANGE z 0 -1 WITHSCORES
     ZREVRANGE z 0 2 BYSCORE
     ZREVRANGE z x 2
     ZCOUNT z 1 3
     ZCOUNT z (1 (3
     ZCOUNT z -inf +inf
     ZCOUNT z 3 1
     ZCOUNT z x 1
     ZCOUNT nokey 1 2
     FLUSHALL
     ZADD l 0 a 0 b 0 c 0 d 0 e 0 f 0 g
     ZRANGEBYLEX l - +
     ZRANGEBYLEX l [b [d
     ZRANGEBYLEX l (b (d
     ZRANGEBYLEX l (b [d LIMIT 1 1
     ZRANGEBYLEX l - + LIMIT 2 -1
     ZRANGEBYLEX l + -
     ZRANGEBYLEX l - -
     ZRANGEBYLEX l [d [b
     ZRANGEBYLEX l b d
     ZRANGEBYLEX l [b ++
     ZRANGEBYLEX l [b +
     ZRANGEBYLEX l - + WITHSCORES
     ZREVRANGEBYLEX l + -
     ZREVRANGEBYLEX l [d [b
     ZREVRANGEBYLEX l (e - LIMIT 1 2
     ZRANGE l [d [b BYLEX REV
     ZRANGE l [b [d BYLEX LIMIT 1 5
     ZLEXCOUNT l - +
     ZLEXCOUNT l [b (e
     ZLEXCOUNT l x y
     ZLEXCOUNT nokey - +
     ZADD m 1 z 2 a 3 y
     ZRANGEBYLEX m - +
     ZRANGEBYLEX m [a [y
     ZLEXCOUNT m [b +
     SET str x
     ZRANGE str 0 -1
     ZRANGEBYSCORE str 0 1
     ZRANGEBYLEX str - +
     ZCOUNT str 0 1
     ZLEXCOUNT str - +
     ZRANGE str x y
     ZRANGE
     ZRANGE z 0";

#[test]
fn ranges() {
    let mut d = Differential::start().expect("servers start");
    d.script(RANGES);
    d.both(&["HELLO", "3"]);
    d.script(RANGES);
}

const STORE_AND_REMOVE: &str = "FLUSHALL
     ZADD z 1 a 2 b 3 c 4 d 5 e
     ZRANGESTORE dst z 0 2
     ZRANGE dst 0 -1 WITHSCORES
     ZRANGESTORE dst z 2 4 BYSCORE REV
     ZRANGESTORE dst z +inf -inf BYSCORE REV LIMIT 1 2
     ZRANGE dst 0 -1 WITHSCORES
     ZRANGESTORE dst z [b [c BYLEX
     ZRANGESTORE dst z 0 -1 WITHSCORES
     ZRANGESTORE dst z 10 20
     EXISTS dst
     ZRANGESTORE dst nokey 0 -1
     SET sdst x
     ZRANGESTORE sdst z 0 0
     TYPE sdst
     SET str x
     ZRANGESTORE dst str 0 -1
     ZRANGESTORE dst z
     ZREMRANGEBYRANK z 0 0
     ZREMRANGEBYRANK z -1 -1
     ZREMRANGEBYRANK z 5 10
     ZREMRANGEBYRANK z x 1
     ZRANGE z 0 -1 WITHSCORES
     ZREMRANGEBYSCORE z (2 3
     ZREMRANGEBYSCORE z 100 200
     ZREMRANGEBYSCORE z x 1
     ZRANGE z 0 -1 WITHSCORES
     ZREMRANGEBYRANK z 0 -1
     EXISTS z
     ZADD l 0 a 0 b 0 c 0 d
     ZREMRANGEBYLEX l [b (d
     ZREMRANGEBYLEX l x y
     ZREMRANGEBYLEX l - +
     EXISTS l
     ZREMRANGEBYLEX nokey - +
     ZREMRANGEBYSCORE nokey 1 2
     ZREMRANGEBYRANK nokey 0 1
     ZREMRANGEBYRANK str 0 1
     ZREMRANGEBYSCORE str 0 1
     ZREMRANGEBYLEX str - +
     ZREMRANGEBYLEX str - + x";

#[test]
fn store_and_remove_ranges() {
    let mut d = Differential::start().expect("servers start");
    d.script(STORE_AND_REMOVE);
}

const POPS: &str = "FLUSHALL
     ZADD z 1 a 2 b 3 c 4 d 5 e 6 f
     ZPOPMIN z
     ZPOPMAX z
     ZPOPMIN z 2
     ZPOPMAX z 0
     ZPOPMIN z -1
     ZPOPMIN z x
     ZPOPMIN z 1 2
     ZPOPMIN nokey
     ZPOPMIN nokey 3
     ZPOPMAX z 100
     EXISTS z
     ZADD z 1 a 2 b 3 c
     ZMPOP 1 z MIN
     ZMPOP 1 z MAX COUNT 5
     ZMPOP 1 z MIN
     ZMPOP 2 nokey z MIN
     ZADD z2 1 x 2 y
     ZMPOP 2 nokey z2 MAX COUNT 1
     ZMPOP 0 z MIN
     ZMPOP -1 z MIN
     ZMPOP x z MIN
     ZMPOP 5 z MIN
     ZMPOP 1 z2 FOO
     ZMPOP 1 z2 MIN COUNT 0
     ZMPOP 1 z2 MIN COUNT x
     ZMPOP 1 z2 MIN COUNT 1 COUNT 1
     ZMPOP 1 z2 MIN COUNT
     SET str x
     ZPOPMIN str
     ZMPOP 2 nokey str MIN
     ZMPOP 2 z2 str MIN
     ZADD z2 1 x 2 y 3 w
     BZPOPMIN z2 0
     BZPOPMAX nokey z2 0
     BZPOPMIN str 0
     BZPOPMIN z2 -1
     BZPOPMIN z2 abc
     BZMPOP 0 1 z2 MIN
     ZADD z3 1 a 2 b 3 c
     BZMPOP 0 2 nokey z3 MAX COUNT 2
     BZMPOP 0.1 1 z3 MIN COUNT 10
     BZMPOP -1 1 z3 MIN
     BZMPOP x 1 z3 MIN
     BZMPOP 0 0 z3 MIN
     BZMPOP 0 1 str MIN
     MULTI
     BZPOPMIN nokey 0
     BZMPOP 0 1 nokey MIN
     EXEC";

#[test]
fn pops() {
    let mut d = Differential::start().expect("servers start");
    d.script(POPS);
    d.both(&["HELLO", "3"]);
    d.script(POPS);
}

const SETOPS: &str = "FLUSHALL
     ZADD a 1 x 2 y 3 z
     ZADD b 10 y 20 z 30 w
     ZUNION 2 a b
     ZUNION 2 a b WITHSCORES
     ZUNION 2 a b WEIGHTS 2 3 WITHSCORES
     ZUNION 2 a b AGGREGATE MIN WITHSCORES
     ZUNION 2 a b AGGREGATE MAX WITHSCORES
     ZUNION 2 a b AGGREGATE avg
     ZUNION 2 a b WEIGHTS 1
     ZUNION 2 a b WEIGHTS 1 x
     ZUNION 2 a b WEIGHTS 1 nan
     ZUNION 0 a
     ZUNION -1 a
     ZUNION x a
     ZUNION 3 a b
     ZUNION 2 a nokey WITHSCORES
     ZUNION 1 nokey
     ZUNION 2 a b FOO
     ZADD zero 0 m 0 n -0 o
     ZUNION 1 zero WEIGHTS -1 WITHSCORES
     ZUNION 1 zero WEIGHTS -0 WITHSCORES
     ZINTER 2 zero zero WEIGHTS -1 0 AGGREGATE MAX WITHSCORES
     ZINTER 2 a b WITHSCORES
     ZINTER 2 a b WEIGHTS 0.5 2 AGGREGATE MAX WITHSCORES
     ZINTER 2 a nokey
     ZINTER 2 a a WITHSCORES
     ZDIFF 2 a b
     ZDIFF 2 b a WITHSCORES
     ZDIFF 2 nokey a
     ZDIFF 2 a b WEIGHTS 1 1
     ZDIFF 2 a b AGGREGATE SUM
     ZINTERCARD 2 a b
     ZINTERCARD 2 a b LIMIT 1
     ZINTERCARD 2 a b LIMIT 0
     ZINTERCARD 2 a b LIMIT -1
     ZINTERCARD 2 a b LIMIT x
     ZINTERCARD 2 a b WITHSCORES
     ZINTERCARD 0 a
     ZINTERCARD 3 a b
     ZUNIONSTORE d 2 a b
     ZRANGE d 0 -1 WITHSCORES
     ZUNIONSTORE d 2 a b WEIGHTS 1 -1 AGGREGATE SUM
     ZRANGE d 0 -1 WITHSCORES
     ZUNIONSTORE d 2 a b WITHSCORES
     ZINTERSTORE d 2 a b
     ZRANGE d 0 -1 WITHSCORES
     ZINTERSTORE d 2 a nokey
     EXISTS d
     ZDIFFSTORE d 2 a b
     ZRANGE d 0 -1 WITHSCORES
     ZDIFFSTORE d 2 a a
     EXISTS d
     ZUNIONSTORE d 0 a
     ZINTERSTORE d -1 a
     ZDIFFSTORE d 0 a
     ZADD inf 1 x
     ZADD ninf -1 x
     ZUNION 2 inf ninf WEIGHTS inf inf WITHSCORES
     ZINTER 2 inf ninf WEIGHTS inf inf WITHSCORES
     ZUNION 2 inf ninf WEIGHTS 0 inf WITHSCORES
     ZINTER 2 inf ninf WEIGHTS 0 inf AGGREGATE MIN WITHSCORES
     ZINTER 2 inf ninf WEIGHTS 0 inf AGGREGATE MAX WITHSCORES
     SET str v
     ZUNION 2 a str
     ZINTERSTORE d 2 str a
     ZDIFF 2 a str
     ZINTERCARD 2 a str
     ZUNIONSTORE str 1 a
     TYPE str";

#[test]
fn set_operations() {
    let mut d = Differential::start().expect("servers start");
    d.script(SETOPS);
    d.both(&["HELLO", "3"]);
    d.script(SETOPS);
}

/// Plain sets are valid inputs (scores 1). Runs once the set family exists.
#[test]
fn set_operations_with_plain_sets() {
    let mut d = Differential::start().expect("servers start");
    if d.m.call(&["SADD", "s", "y", "w", "q"]).unwrap().is_error() {
        return;
    }
    d.r.call(&["SADD", "s", "y", "w", "q"]).unwrap();
    d.script(
        "ZADD a 1 x 2 y 3 z
         ZADD b 10 y 20 z 30 w
         ZUNION 3 a b s WITHSCORES
         ZUNION 2 s s WEIGHTS 2 3 WITHSCORES
         ZINTER 3 a b s WITHSCORES
         ZINTER 2 s b AGGREGATE MAX WITHSCORES
         ZINTERCARD 2 s a
         ZDIFF 2 b s WITHSCORES
         ZDIFF 2 s a WITHSCORES
         ZUNIONSTORE d 2 s a
         ZRANGE d 0 -1 WITHSCORES",
    );
}

#[test]
fn randmember_and_scan() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         ZADD z 1 a 2 b 3 c -0 d 1.5 e
         ZRANDMEMBER nokey
         ZRANDMEMBER nokey 5
         ZRANDMEMBER z 0
         ZRANDMEMBER z x
         ZRANDMEMBER z 1 foo
         ZRANDMEMBER z 1 WITHSCORES x
         ZRANDMEMBER z -9223372036854775808
         ZRANDMEMBER z 9223372036854775807 WITHSCORES
         ~ZRANDMEMBER z 5
         ~ZRANDMEMBER z 100
         ~ZRANDMEMBER z 100 WITHSCORES
         SET str v
         ZRANDMEMBER str
         ZRANDMEMBER str 1
         ZSCAN z 0
         ZSCAN z 0 COUNT 1
         ZSCAN z 0 MATCH [ab]
         ZSCAN z 0 MATCH * COUNT 100
         ZSCAN z 0 COUNT 0
         ZSCAN z 0 COUNT x
         ZSCAN z 0 TYPE zset
         ZSCAN z 0 MATCH
         ZSCAN z x
         ZSCAN nokey 0
         ZSCAN nokey 0 FOO
         ZSCAN str 0",
    );
    // Random picks: check sizes and membership.
    for n in ["1", "3", "-7", "5"] {
        let v = d.m.call(&["ZRANDMEMBER", "z", n]).unwrap();
        let RespValue::Array(items) = v else {
            panic!("array expected");
        };
        let want = n.parse::<i64>().unwrap().unsigned_abs() as usize;
        assert_eq!(
            items.len(),
            want.min(if n.starts_with('-') { 99 } else { 5 })
        );
        for it in &items {
            let RespValue::Bulk(m) = it else {
                panic!("bulk expected")
            };
            assert!([b"a", b"b", b"c", b"d", b"e"].iter().any(|x| &x[..] == m));
        }
        if !n.starts_with('-') {
            let mut u = items.clone();
            u.sort();
            u.dedup();
            assert_eq!(u.len(), items.len());
        }
    }
    let v = d.m.call(&["ZRANDMEMBER", "z", "-3", "WITHSCORES"]).unwrap();
    assert!(matches!(v, RespValue::Array(ref a) if a.len() == 6));
    d.both(&["HELLO", "3"]);
    let v = d.m.call(&["ZRANDMEMBER", "z", "-3", "WITHSCORES"]).unwrap();
    assert!(
        matches!(v, RespValue::Array(ref a) if a.len() == 3 && matches!(a[0], RespValue::Array(ref p) if p.len() == 2))
    );
    d.script("ZSCAN z 0\n~ZRANDMEMBER z 10 WITHSCORES\nZRANDMEMBER z 0");
}

#[test]
fn large_zset_scan_and_ranks() {
    let mut d = Differential::start().expect("servers start");
    let mut args: Vec<String> = vec!["ZADD".into(), "big".into()];
    for i in 0..300 {
        args.push(((i * 7919) % 1000).to_string());
        args.push(format!("m{i}"));
    }
    d.check(&args);
    d.script(
        "ZCARD big
         ZRANK big m150
         ZREVRANK big m150
         ZRANGE big 100 110 WITHSCORES
         ZRANGE big -10 -1 REV
         ZRANGEBYSCORE big 100 200 LIMIT 3 4
         ZCOUNT big 100 500",
    );
    // ZSCAN over a big set: the union of all pages is the whole set.
    let mut cursor = "0".to_string();
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let v = d.m.call(&["ZSCAN", "big", &cursor, "COUNT", "50"]).unwrap();
        let RespValue::Array(parts) = v else {
            panic!("array")
        };
        let RespValue::Bulk(c) = &parts[0] else {
            panic!("cursor")
        };
        let RespValue::Array(items) = &parts[1] else {
            panic!("items")
        };
        for pair in items.chunks(2) {
            if let RespValue::Bulk(m) = &pair[0] {
                seen.insert(m.clone());
            }
        }
        cursor = String::from_utf8(c.clone()).unwrap();
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 300);
}

#[test]
fn arity_and_wrongtype() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         SET str v
         ZADD
         ZINCRBY k 1
         ZREM k
         ZCARD
         ZCOUNT k 1
         ZLEXCOUNT k -
         ZSCORE k
         ZMSCORE k
         ZRANK k
         ZREVRANK k
         ZRANGEBYSCORE k 1
         ZREVRANGEBYSCORE k 1
         ZRANGEBYLEX k -
         ZREVRANGEBYLEX k +
         ZREVRANGE k 0
         ZRANGESTORE d k 0
         ZPOPMIN
         ZPOPMAX
         BZPOPMIN k
         BZPOPMAX k
         ZMPOP 1 k
         BZMPOP 0 1 k
         ZREMRANGEBYRANK k 0
         ZREMRANGEBYSCORE k 0
         ZREMRANGEBYLEX k -
         ZUNION 1
         ZINTER 1
         ZDIFF 1
         ZUNIONSTORE d 1
         ZINTERSTORE d 1
         ZDIFFSTORE d 1
         ZINTERCARD 1
         ZRANDMEMBER
         ZSCAN k
         ZPOPMAX str
         BZPOPMAX str 0
         ZREVRANGE str 0 1
         ZREVRANGEBYSCORE str 1 0
         ZREVRANGEBYLEX str + -",
    );
}

#[test]
fn key_specs() {
    use bytes::Bytes;
    let keys = |line: &str| -> Vec<String> {
        let argv: Vec<Bytes> = line
            .split_whitespace()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect();
        let spec = memlog_engine::command::lookup(&argv[0]).expect("command exists");
        spec.key_indexes(&argv)
            .unwrap()
            .into_iter()
            .map(|i| String::from_utf8_lossy(&argv[i]).into_owned())
            .collect()
    };
    assert_eq!(keys("ZUNIONSTORE dst 2 a b WEIGHTS 1 2"), ["dst", "a", "b"]);
    assert_eq!(keys("ZINTER 2 a b"), ["a", "b"]);
    assert_eq!(keys("ZDIFFSTORE d 1 a"), ["d", "a"]);
    assert_eq!(keys("ZMPOP 2 a b MIN"), ["a", "b"]);
    assert_eq!(keys("BZMPOP 0 2 a b MIN"), ["a", "b"]);
    assert_eq!(keys("ZINTERCARD 1 a LIMIT 1"), ["a"]);
    assert_eq!(keys("ZRANGESTORE d s 0 1"), ["d", "s"]);
    assert_eq!(keys("BZPOPMIN a b 0"), ["a", "b"]);
    assert_eq!(keys("ZADD k 1 a"), ["k"]);
}

/// Two raw connections: one blocks, the other feeds it.
fn blocked_pair(port: u16) -> (RawConn, RawConn) {
    (
        RawConn::connect(port).unwrap(),
        RawConn::connect(port).unwrap(),
    )
}

fn bulk(s: &str) -> RespValue {
    RespValue::Bulk(s.as_bytes().to_vec())
}

#[test]
fn blocking_pops() {
    let server = memlog_tests::MemlogServer::start(&[]).expect("memlog starts");
    let (mut w, mut p) = blocked_pair(server.port);

    // BZPOPMIN wakes on ZADD.
    w.send(&["BZPOPMIN", "q1", "q2", "5"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        p.call(&["ZADD", "q2", "3", "x", "1", "y"]).unwrap(),
        RespValue::Int(2)
    );
    assert_eq!(
        w.read().unwrap(),
        RespValue::Array(vec![bulk("q2"), bulk("y"), bulk("1")])
    );

    // BZPOPMAX times out with a null array.
    assert_eq!(
        w.call(&["BZPOPMAX", "empty", "0.1"]).unwrap(),
        RespValue::NullArray
    );

    // BZMPOP wakes and pops up to COUNT.
    w.send(&["BZMPOP", "5", "2", "m1", "m2", "MAX", "COUNT", "2"])
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    p.call(&["ZADD", "m1", "1", "a", "2", "b", "3", "c"])
        .unwrap();
    assert_eq!(
        w.read().unwrap(),
        RespValue::Array(vec![
            bulk("m1"),
            RespValue::Array(vec![
                RespValue::Array(vec![bulk("c"), bulk("3")]),
                RespValue::Array(vec![bulk("b"), bulk("2")]),
            ])
        ])
    );
    assert_eq!(p.call(&["ZCARD", "m1"]).unwrap(), RespValue::Int(1));

    // A key of another type written while blocked does not wake it.
    w.send(&["BZPOPMIN", "other", "0.3"]).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    p.call(&["LPUSH", "other", "x"]).unwrap();
    assert!(matches!(
        w.read().unwrap(),
        RespValue::Error(_) | RespValue::NullArray
    ));

    // BZPOPMIN in RESP3: flat [key, member, double].
    w.call(&["HELLO", "3"]).unwrap();
    w.send(&["BZPOPMIN", "r3", "5"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    p.call(&["ZADD", "r3", "1.5", "m"]).unwrap();
    assert_eq!(
        w.read().unwrap(),
        RespValue::Array(vec![bulk("r3"), bulk("m"), RespValue::Double("1.5".into())])
    );
    assert_eq!(p.call(&["EXISTS", "r3"]).unwrap(), RespValue::Int(0));
}

#[test]
fn keyspace_events() {
    let mut d = Differential::start().expect("servers start");
    d.check(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sm = RawConn::connect(d.memlog.port).unwrap();
    let mut sr = RawConn::connect(d.redis.port).unwrap();
    sm.call(&["PSUBSCRIBE", "__keyevent@0__:*"]).unwrap();
    sr.call(&["PSUBSCRIBE", "__keyevent@0__:*"]).unwrap();
    let cmds = "ZADD z 1 a 2 b 3 c 4 d 5 e 6 f
        ZADD z 1 a
        ZINCRBY z 1 a
        ZADD z INCR 1 a
        ZREM z a
        ZREMRANGEBYSCORE z 2 2
        ZREMRANGEBYRANK z 0 0
        ZADD l 0 a 0 b
        ZREMRANGEBYLEX l - +
        ZPOPMIN z
        ZPOPMAX z
        ZADD y 1 q
        ZUNIONSTORE u 2 z y
        ZINTERSTORE i 2 z y
        ZDIFFSTORE df 2 z y
        ZRANGESTORE rs z 0 0
        ZINTERSTORE u 2 z y
        ZMPOP 1 z MIN COUNT 10
        ZADD w 1 a
        BZPOPMIN w 0
        SET done 1";
    for line in cmds.lines() {
        let args: Vec<&str> = line.split_whitespace().collect();
        d.check(&args);
    }
    let drain = |c: &mut RawConn| {
        let mut v = Vec::new();
        loop {
            let a = c.read().unwrap();
            let done = matches!(&a, RespValue::Array(x) if x.last() == Some(&bulk("done")));
            v.push(a);
            if done {
                return v;
            }
        }
    };
    let em = drain(&mut sm);
    let er = drain(&mut sr);
    assert_eq!(em, er);
}

#[test]
fn randomized_differential() {
    let mut d = Differential::start().expect("servers start");
    let mut rng = StdRng::seed_from_u64(0x25e7);
    let keys = ["z1", "z2", "z3", "str"];
    let members = ["a", "b", "c", "d", "e", "f"];
    let scores = ["0", "1", "2", "-1", "2.5", "inf", "-inf", "(1", "x", "1e3"];
    let lex = ["-", "+", "[a", "(b", "[c", "(e", "x"];
    d.check(&["SET", "str", "v"]);
    for _ in 0..500 {
        let k = keys[rng.gen_range(0..keys.len())];
        let k2 = keys[rng.gen_range(0..keys.len())];
        let m = members[rng.gen_range(0..members.len())];
        let m2 = members[rng.gen_range(0..members.len())];
        let s = scores[rng.gen_range(0..scores.len())];
        let s2 = scores[rng.gen_range(0..scores.len())];
        let l1 = lex[rng.gen_range(0..lex.len())];
        let l2 = lex[rng.gen_range(0..lex.len())];
        let i1 = rng.gen_range(-4..6).to_string();
        let i2 = rng.gen_range(-4..6).to_string();
        let ws = if rng.gen_bool(0.5) { "WITHSCORES" } else { "" };
        let cmd = match rng.gen_range(0..26) {
            0..=3 => {
                let opt = ["", "NX", "XX", "GT", "LT", "CH", "INCR", "GT CH", "XX LT"]
                    [rng.gen_range(0..9)];
                format!("ZADD {k} {opt} {s} {m} 3 {m2}")
            }
            4 => format!("ZADD {k} INCR {s} {m}"),
            5 => format!("ZINCRBY {k} {s} {m}"),
            6 => format!("ZREM {k} {m} {m2}"),
            7 => format!("ZCARD {k}"),
            8 => format!("ZCOUNT {k} {s} {s2}"),
            9 => format!("ZLEXCOUNT {k} {l1} {l2}"),
            10 => format!("ZMSCORE {k} {m} {m2}"),
            11 => format!("ZRANK {k} {m}"),
            12 => format!("ZREVRANK {k} {m}"),
            13 => format!("ZRANGE {k} {i1} {i2} {ws}"),
            14 => format!("ZRANGE {k} {s} {s2} BYSCORE LIMIT {i1} {i2} {ws}"),
            15 => format!("ZREVRANGEBYSCORE {k} {s} {s2} {ws}"),
            16 => format!("ZRANGEBYLEX {k} {l1} {l2}"),
            17 => format!("ZREVRANGEBYLEX {k} {l1} {l2} LIMIT {i1} {i2}"),
            18 => format!("ZPOPMIN {k} {}", rng.gen_range(0..3)),
            19 => format!("ZPOPMAX {k}"),
            20 => format!("ZMPOP 2 {k} {k2} MIN COUNT {}", rng.gen_range(1..3)),
            21 => format!("ZREMRANGEBYRANK {k} {i1} {i2}"),
            22 => format!("ZREMRANGEBYSCORE {k} {s} {s2}"),
            23 => {
                let op = ["ZUNION", "ZINTER", "ZDIFF"][rng.gen_range(0..3)];
                format!("{op} 2 {k} {k2} {ws}")
            }
            24 => {
                let op = ["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"][rng.gen_range(0..3)];
                let dst = keys[rng.gen_range(0..3)];
                format!("{op} {dst} 2 {k} {k2}")
            }
            _ => format!("ZRANGESTORE {k2} {k} {i1} {i2}"),
        };
        let args: Vec<&str> = cmd.split_whitespace().collect();
        d.check(&args);
    }
    for k in keys {
        d.check(&["ZRANGE", k, "0", "-1", "WITHSCORES"]);
    }
}
