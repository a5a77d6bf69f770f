//! Differential tests of the hash commands against a real redis-server, plus
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

#[test]
fn basics_resp2() {
    let mut d = start();
    d.script(
        "FLUSHALL
         HSET h a 1 b 2 c 3
         HSET h a 10 d 4
         HSET h a
         HSET h a 1 b
         HSET h
         HGET h a
         HGET h nofield
         HGET nokey a
         HGET h
         HMSET h e 5 f 6
         HMSET h e
         HMSET h e 5 f
         HMGET h a nofield e
         HMGET nokey a b
         HMGET h
         HLEN h
         HLEN nokey
         HLEN h x
         HEXISTS h a
         HEXISTS h zz
         HEXISTS nokey a
         HEXISTS h
         HSTRLEN h a
         HSTRLEN h zz
         HSTRLEN nokey a
         HSTRLEN h
         HKEYS h
         HVALS h
         HGETALL h
         HKEYS nokey
         HVALS nokey
         HGETALL nokey
         HKEYS h x
         HDEL h b zz d
         HKEYS h
         HSET h b 7
         HGETALL h
         HDEL h
         HDEL nokey a
         HSETNX h a 100
         HSETNX h z 26
         HSETNX newh f v
         HSETNX h a
         HGETALL h
         HGETALL newh
         HDEL newh f
         EXISTS newh
         HDEL h a b c e f z
         EXISTS h
         SET str x
         HSET str a 1
         HSETNX str a 1
         HGET str a
         HMSET str a 1
         HMGET str a
         HDEL str a
         HLEN str
         HEXISTS str a
         HSTRLEN str a
         HKEYS str
         HVALS str
         HGETALL str
         HINCRBY str a 1
         HINCRBYFLOAT str a 1
         HRANDFIELD str
         HRANDFIELD str 1
         HSCAN str 0
         GET str
         TYPE str",
    );
}

#[test]
fn empty_and_binary_fields() {
    let mut d = start();
    d.check(&["FLUSHALL"]);
    d.check(&["HSET", "h", "", ""]);
    d.check(&["HSET", "h", "sp ace", "x\r\ny", "\0bin", "\u{7f}"]);
    d.check(&["HGET", "h", ""]);
    d.check(&["HSTRLEN", "h", "sp ace"]);
    d.check(&["HGETALL", "h"]);
    d.check(&["HDEL", "h", ""]);
    d.check(&["HGETALL", "h"]);
    d.check(&["HSCAN", "h", ""]);
}

#[test]
fn incr() {
    let mut d = start();
    d.script(
        "FLUSHALL
         HINCRBY h n 5
         HINCRBY h n -12
         HINCRBY h n 0
         HINCRBY h n abc
         HINCRBY h n 1.5
         HINCRBY h n
         HINCRBY h n 9223372036854775808
         HSET h big 9223372036854775800
         HINCRBY h big 7
         HINCRBY h big 1
         HINCRBY h big 100
         HSET h small -9223372036854775800
         HINCRBY h small -8
         HINCRBY h small -1
         HSET h s hello
         HINCRBY h s 1
         HSET h sp 1x
         HINCRBY h sp 1
         HSET h lead 01
         HINCRBY h lead 1
         HINCRBY newkey f -9223372036854775808
         HGETALL h
         HINCRBYFLOAT h f 1.5
         HINCRBYFLOAT h f 2.25
         HINCRBYFLOAT h f -10
         HINCRBYFLOAT h f 1e3
         HINCRBYFLOAT h f 5.0e2
         HINCRBYFLOAT h n 2.5
         HINCRBYFLOAT h f abc
         HINCRBYFLOAT h f inf
         HINCRBYFLOAT h f -inf
         HINCRBYFLOAT h f nan
         HINCRBYFLOAT h f
         HINCRBYFLOAT h s 1
         HSET h z 0
         HINCRBYFLOAT h z -0
         HINCRBYFLOAT h z 0.5
         HINCRBYFLOAT h z -0.5
         HINCRBYFLOAT newf f 3
         HGETALL h
         HGETALL newf",
    );
}

#[test]
fn randfield() {
    let mut d = start();
    d.script(
        "FLUSHALL
         HRANDFIELD nokey
         HRANDFIELD nokey 5
         HRANDFIELD nokey -5 WITHVALUES
         HRANDFIELD nokey 0
         HRANDFIELD nokey abc
         HRANDFIELD nokey 1 WITHVALUES extra
         HRANDFIELD nokey 1 foo
         HRANDFIELD nokey -9223372036854775808
         HRANDFIELD nokey 9223372036854775807 WITHVALUES
         HRANDFIELD nokey -9223372036854775807 WITHVALUES
         HRANDFIELD nokey 4611686018427387904 WITHVALUES
         HRANDFIELD nokey 4611686018427387903 WITHVALUES
         HSET h a 1 b 2 c 3 d 4 e 5
         HRANDFIELD h 0
         HRANDFIELD h 0 WITHVALUES
         HRANDFIELD h 5
         HRANDFIELD h 100
         HRANDFIELD h 5 WITHVALUES
         HRANDFIELD h 100 withvalues",
    );
    // Random picks: counts and membership only.
    let fields: Vec<Vec<u8>> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
    for resp3 in [false, true] {
        if resp3 {
            hello3(&mut d);
        }
        for (count, withvalues) in [
            ("1", false),
            ("3", false),
            ("-3", false),
            ("-20", false),
            ("1", true),
            ("3", true),
            ("-20", true),
            ("4", true),
        ] {
            let mut args = vec!["HRANDFIELD", "h", count];
            if withvalues {
                args.push("WITHVALUES");
            }
            let (m, r) = d.both(&args);
            let (mv, rv) = (flat(&m), flat(&r));
            assert_eq!(shape(&m), shape(&r), "{args:?}: {m:?} vs {r:?}");
            assert_eq!(mv.len(), rv.len(), "{args:?}: {m:?} vs {r:?}");
            let step = if withvalues { 2 } else { 1 };
            for pair in mv.chunks(step) {
                assert!(fields.contains(&pair[0]), "{args:?}: {m:?}");
                if withvalues {
                    // field "a" holds "1", and so on.
                    assert_eq!(pair[1][0] - b'0', pair[0][0] - b'a' + 1);
                }
            }
            if !count.starts_with('-') {
                let mut uniq = mv.chunks(step).map(|p| p[0].clone()).collect::<Vec<_>>();
                uniq.sort();
                uniq.dedup();
                assert_eq!(uniq.len() * step, mv.len(), "duplicates: {m:?}");
            }
        }
        let (m, _) = d.both(&["HRANDFIELD", "h"]);
        match m {
            RespValue::Bulk(b) => assert!(fields.contains(&b)),
            other => panic!("unexpected {other:?}"),
        }
    }
    // RESP3: the whole hash comes back in order as pairs.
    d.script(
        "HRANDFIELD h 5 WITHVALUES
         HRANDFIELD h 10
         HRANDFIELD h 0 WITHVALUES
         HRANDFIELD nokey
         HRANDFIELD nokey 3",
    );
}

/// The elements of an array reply, flattened one level of pair arrays.
fn flat(v: &RespValue) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    if let RespValue::Array(items) = v {
        for it in items {
            match it {
                RespValue::Bulk(b) => out.push(b.clone()),
                RespValue::Array(p) => {
                    for x in p {
                        if let RespValue::Bulk(b) = x {
                            out.push(b.clone());
                        }
                    }
                }
                other => panic!("unexpected element {other:?}"),
            }
        }
    }
    out
}

/// The reply's type and, for arrays, each element's type.
fn shape(v: &RespValue) -> String {
    match v {
        RespValue::Array(items) => {
            let inner: Vec<String> = items.iter().map(shape).collect();
            format!("array[{}]", inner.join(","))
        }
        RespValue::Set(items) => format!("set{}", items.len()),
        RespValue::Map(items) => format!("map{}", items.len()),
        RespValue::Bulk(_) => "bulk".into(),
        other => format!("{other:?}"),
    }
}

#[test]
fn resp3_shapes() {
    let mut d = start();
    hello3(&mut d);
    d.script(
        "FLUSHALL
         HSET h a 1 b 2 c 3
         HGETALL h
         HGETALL nokey
         HMGET h a zz
         HGET h zz
         HKEYS h
         HVALS h
         HSCAN h 0
         HSCAN nokey 0
         HINCRBYFLOAT h n 1.5
         HRANDFIELD nokey
         HRANDFIELD h 4 WITHVALUES
         HRANDFIELD h 10
         HRANDFIELD h 0
         HSET h a
         HINCRBY h a x",
    );
}

#[test]
fn scan() {
    let mut d = start();
    d.script(
        "FLUSHALL
         HSCAN nokey 0
         HSCAN nokey x
         HSCAN nokey 0 COUNT 0
         HSCAN nokey 0 BADOPT
         HSET h a 1 b 2 c 3 ab 4 abc 5
         HSCAN h 0
         HSCAN h 0 MATCH a*
         HSCAN h 0 match *b* count 1
         HSCAN h 0 MATCH
         HSCAN h 0 COUNT
         HSCAN h 0 COUNT 0
         HSCAN h 0 COUNT -1
         HSCAN h 0 COUNT abc
         HSCAN h 0 TYPE string
         HSCAN h 0 MATCH * COUNT 2 extra
         HSCAN h abc
         HSCAN h -1
         HSCAN h 1x
         HSCAN h 18446744073709551615
         HSCAN h 18446744073709551616
         HSCAN h +0
         HSCAN h
         SET str v
         HSCAN str 0
         HSCAN str x",
    );
    // A hash too big for a listpack pages: iterate to the end on both and
    // compare what was seen.
    let mut args = vec!["HSET".to_string(), "big".to_string()];
    for i in 0..300 {
        args.push(format!("f{i}"));
        args.push(format!("v{i}"));
    }
    d.check(&args);
    for extra in [
        &[][..],
        &["COUNT", "7"][..],
        &["MATCH", "f1*", "COUNT", "50"][..],
    ] {
        let m = full_scan(&mut d.m, "big", extra);
        let r = full_scan(&mut d.r, "big", extra);
        assert_eq!(m, r, "HSCAN big {extra:?}");
    }
}

/// Runs an HSCAN/SSCAN to the end; returns the sorted unique elements seen
/// (field/value pairs joined for hashes).
fn full_scan(c: &mut memlog_tests::RawConn, key: &str, extra: &[&str]) -> Vec<Vec<u8>> {
    let mut cursor = b"0".to_vec();
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let mut args: Vec<Vec<u8>> = vec![b"HSCAN".to_vec(), key.into(), cursor.clone()];
        args.extend(extra.iter().map(|s| s.as_bytes().to_vec()));
        let reply = c.call(&args).expect("reply");
        let RespValue::Array(parts) = reply else {
            panic!("bad reply {reply:?}")
        };
        let (RespValue::Bulk(next), RespValue::Array(items)) = (&parts[0], &parts[1]) else {
            panic!("bad reply {parts:?}")
        };
        for pair in items.chunks(2) {
            if let (RespValue::Bulk(k), RespValue::Bulk(v)) = (&pair[0], &pair[1]) {
                let mut e = k.clone();
                e.push(b'=');
                e.extend_from_slice(v);
                seen.push(e);
            }
        }
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
fn big_hash_unordered() {
    let mut d = start();
    d.check(&["FLUSHALL"]);
    for i in 0..200 {
        d.check(&["HSET", "big", &format!("k{i}"), &format!("{i}")]);
    }
    for i in (0..200).step_by(3) {
        d.check(&["HDEL", "big", &format!("k{i}"), "nope"]);
    }
    d.check(&["HLEN", "big"]);
    d.check_with(&["HGETALL", "big"], Order::Pairs);
    d.check_with(&["HKEYS", "big"], Order::Unordered);
    d.check_with(&["HVALS", "big"], Order::Unordered);
    d.check(&["HINCRBY", "big", "k1", "1000"]);
    d.check(&["HMGET", "big", "k1", "k3", "k4"]);
    // Long values in a small hash.
    let long = "x".repeat(100);
    d.check(&["HSET", "lv", "a", &long, "b", "2"]);
    d.check_with(&["HGETALL", "lv"], Order::Pairs);
    d.check(&["HSTRLEN", "lv", "a"]);
}

#[test]
fn randomized() {
    let mut d = start();
    d.check(&["FLUSHALL"]);
    let mut rng = StdRng::seed_from_u64(0x4a5);
    let keys = ["h1", "h2", "h3", "s1"];
    d.check(&["SET", "s1", "str"]);
    let fields = ["a", "b", "c", "d", "e", "f", "10", "-3"];
    let vals = ["1", "-2", "x", "1.5", "9223372036854775807", "", "0"];
    for _ in 0..600 {
        let key = keys[rng.gen_range(0..keys.len())].to_string();
        let field = |rng: &mut StdRng| fields[rng.gen_range(0..fields.len())].to_string();
        let val = |rng: &mut StdRng| vals[rng.gen_range(0..vals.len())].to_string();
        let mut args: Vec<String> = Vec::new();
        match rng.gen_range(0..16) {
            0 => {
                args.extend(["HSET".into(), key]);
                for _ in 0..rng.gen_range(0..4) {
                    args.push(field(&mut rng));
                    args.push(val(&mut rng));
                }
                if rng.gen_bool(0.1) {
                    args.push(field(&mut rng));
                }
            }
            1 => args.extend(["HSETNX".into(), key, field(&mut rng), val(&mut rng)]),
            2 => args.extend(["HGET".into(), key, field(&mut rng)]),
            3 => {
                args.extend(["HMGET".into(), key]);
                for _ in 0..rng.gen_range(0..4) {
                    args.push(field(&mut rng));
                }
            }
            4 => {
                args.extend(["HDEL".into(), key]);
                for _ in 0..rng.gen_range(0..4) {
                    args.push(field(&mut rng));
                }
            }
            5 => args.extend(["HEXISTS".into(), key, field(&mut rng)]),
            6 => args.extend(["HLEN".into(), key]),
            7 => args.extend(["HKEYS".into(), key]),
            8 => args.extend(["HVALS".into(), key]),
            9 => args.extend(["HGETALL".into(), key]),
            10 => {
                let incr = ["1", "-5", "x", "9223372036854775807", "0"][rng.gen_range(0..5)];
                args.extend(["HINCRBY".into(), key, field(&mut rng), incr.into()]);
            }
            11 => {
                let incr = ["1.5", "-0.25", "x", "inf", "10"][rng.gen_range(0..5)];
                // Its own field: Redis adds in long double, exact only for
                // values an f64 holds exactly.
                args.extend(["HINCRBYFLOAT".into(), key, "fl".into(), incr.into()]);
            }
            12 => args.extend(["HSTRLEN".into(), key, field(&mut rng)]),
            13 => {
                // Only deterministic HRANDFIELD forms.
                let count = ["0", "100", "x", "-9223372036854775808"][rng.gen_range(0..4)];
                args.extend(["HRANDFIELD".into(), key, count.into()]);
                if rng.gen_bool(0.5) {
                    args.push("WITHVALUES".into());
                }
            }
            14 => {
                args.extend(["HSCAN".into(), key, "0".into()]);
                if rng.gen_bool(0.5) {
                    args.extend(["MATCH".into(), "[a-c]*".into()]);
                }
            }
            _ => args.extend(["HMSET".into(), key, field(&mut rng), val(&mut rng)]),
        }
        d.check(&args);
    }
}

#[test]
fn effects_replay() {
    memlog_tests::assert_effects_rebuild(&[
        &["HSET", "h", "a", "1", "b", "2"],
        &["HMSET", "h", "c", "3"],
        &["HSETNX", "h", "a", "9"],
        &["HSETNX", "h", "d", "4"],
        &["HINCRBY", "h", "a", "10"],
        &["HINCRBYFLOAT", "h", "f", "0.1"],
        &["HINCRBYFLOAT", "h", "f", "0.2"],
        &["HINCRBYFLOAT", "h", "f", "1e-3"],
        &["HDEL", "h", "b", "zz"],
        &["HSET", "g", "x", "1"],
        &["HDEL", "g", "x"],
        &["HINCRBY", "h", "a", "x"],
    ]);
}

/// HINCRBYFLOAT computes with an x87 long double like Redis (see also
/// strings.rs): the increment is parsed as a long double too, so 1e400 is a
/// valid increment.
#[test]
fn hincrbyfloat_long_double_precision() {
    let mut d = start();
    d.script(
        "FLUSHALL
         HSET h a 0.1
         HINCRBYFLOAT h a 0.2
         HINCRBYFLOAT h b 3
         HINCRBYFLOAT h b 1.5e-3
         HSET h c 9007199254740993
         HINCRBYFLOAT h c 1.5
         HSET h c 18446744073709551616
         HINCRBYFLOAT h c 3
         HINCRBYFLOAT h d 1e400
         HINCRBYFLOAT h d -1e400
         HINCRBYFLOAT h e 1e-4940
         HINCRBYFLOAT h e 1e-5000
         HINCRBYFLOAT h e 1e5000
         HINCRBYFLOAT h e infinity
         HINCRBYFLOAT h f 1.18973149535723176502e4932
         HINCRBYFLOAT h f 1e4932
         HINCRBYFLOAT h g -2.5
         HINCRBYFLOAT h g -0.0000001
         HSET h i 0.000011444091796875
         HINCRBYFLOAT h i 0
         HSET h j 0x1.8p1
         HINCRBYFLOAT h j 0x.8
         HSET h k 1e5000
         HINCRBYFLOAT h k 1
         HSET h k inf
         HINCRBYFLOAT h k 1",
    );
    // (The 400-digit value makes Redis switch to a hashtable: any order.)
    d.check_with(&["HGETALL", "h"], Order::Pairs);
    for _ in 0..300 {
        d.check(&["HINCRBYFLOAT", "r", "f", "0.1"]);
    }
    let mut rng = StdRng::seed_from_u64(0xf10a7);
    for _ in 0..200 {
        let v = format!(
            "{}{}.{}e{}",
            if rng.gen_bool(0.5) { "-" } else { "" },
            rng.gen_range(0..1_000_000_000u64),
            rng.gen_range(0..1_000_000_000u64),
            rng.gen_range(-22..22)
        );
        d.check(&["HINCRBYFLOAT", "r", "g", &v]);
    }
    d.check(&["HGETALL", "r"]);
}
