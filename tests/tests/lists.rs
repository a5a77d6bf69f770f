//! List commands: differential tests against a real redis-server (replies,
//! error strings, RESP3, keyspace events, a seeded random workload), and
//! blocking behaviour (BLPOP & co) against memlog with two clients.

use std::time::{Duration, Instant};

use memlog_tests::{Differential, MemlogServer, RawConn, RespValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn bulk(s: &str) -> RespValue {
    RespValue::Bulk(s.as_bytes().to_vec())
}

fn arr(items: &[&str]) -> RespValue {
    RespValue::Array(items.iter().map(|s| bulk(s)).collect())
}

#[test]
fn pushes_and_length() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         LPUSH l a
         LPUSH l b c d
         RPUSH l x y
         LRANGE l 0 -1
         LLEN l
         LLEN nokey
         LPUSHX nokey a
         RPUSHX nokey a b
         EXISTS nokey
         LPUSHX l p q
         RPUSHX l r
         LRANGE l 0 -1
         LPUSH
         LPUSH l
         RPUSH l
         LPUSHX l
         RPUSHX
         LLEN
         LLEN a b
         SET s v
         LPUSH s a
         RPUSH s a
         LPUSHX s a
         RPUSHX s a
         LLEN s
         RPUSH n 1 2 3 -4 9223372036854775808 3.5
         LRANGE n 0 -1
         TYPE l",
    );
}

#[test]
fn pops_with_count() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         RPUSH l a b c d e f g
         LPOP l
         RPOP l
         LPOP l 2
         RPOP l 2
         LPOP l 0
         RPOP l 0
         LPOP l -1
         RPOP l abc
         LPOP l 1.5
         LPOP l 9223372036854775808
         LPOP l 1 2
         RPOP l 1 2 3
         LPOP l 100
         EXISTS l
         LPOP l
         RPOP l
         LPOP l 0
         RPOP l 5
         LPOP nokey 0
         LPOP nokey -1
         LPOP
         RPUSH l a b
         RPOP l 9223372036854775807
         SET s v
         LPOP s
         RPOP s 2
         LPOP s -1",
    );
}

#[test]
fn ranges_and_indexes() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         RPUSH l a b c d e
         LRANGE l 0 -1
         LRANGE l 1 2
         LRANGE l -2 -1
         LRANGE l -100 100
         LRANGE l 3 1
         LRANGE l 5 10
         LRANGE l -1 -2
         LRANGE l 0 0
         LRANGE l -9223372036854775808 9223372036854775807
         LRANGE l a 1
         LRANGE l 0 b
         LRANGE nokey 0 -1
         LRANGE nokey a 1
         LRANGE l 0
         LINDEX l 0
         LINDEX l -1
         LINDEX l -5
         LINDEX l -6
         LINDEX l 5
         LINDEX l 9223372036854775807
         LINDEX l -9223372036854775808
         LINDEX l abc
         LINDEX nokey abc
         LINDEX nokey 0
         LINDEX l
         LSET l 0 A
         LSET l -1 E
         LSET l -5 A2
         LSET l 5 x
         LSET l -6 x
         LSET l abc x
         LSET nokey 0 x
         LSET nokey abc x
         LSET l 0
         LRANGE l 0 -1
         LTRIM l 1 -2
         LRANGE l 0 -1
         LTRIM l 0 100
         LRANGE l 0 -1
         LTRIM l -1 -1
         LRANGE l 0 -1
         LTRIM l abc 1
         LTRIM nokey 0 1
         LTRIM nokey a 1
         LTRIM l 1 0
         EXISTS l
         RPUSH l a b c
         LTRIM l 5 10
         EXISTS l
         RPUSH l a b c
         LTRIM l -100 -4
         EXISTS l
         LTRIM l 0
         SET s v
         LRANGE s 0 -1
         LRANGE s a 1
         LINDEX s 0
         LINDEX s abc
         LSET s 0 x
         LSET s abc x
         LTRIM s 0 1
         LLEN s",
    );
}

#[test]
fn insert_and_remove() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         RPUSH l a b c a b c a
         LINSERT l BEFORE b X
         LINSERT l after c Y
         LINSERT l Before a Z
         LINSERT l AFTER a W
         LINSERT l BEFORE nope X
         LINSERT l MIDDLE a X
         LINSERT nokey BEFORE a X
         LINSERT nokey MIDDLE a X
         LRANGE l 0 -1
         LINSERT l BEFORE a
         LREM l 1 a
         LRANGE l 0 -1
         LREM l -1 a
         LRANGE l 0 -1
         LREM l 0 b
         LRANGE l 0 -1
         LREM l 0 nope
         LREM l abc a
         LREM nokey 1 a
         LREM nokey abc a
         RPUSH m x x x y x
         LREM m -2 x
         LRANGE m 0 -1
         LREM m 9223372036854775807 x
         LRANGE m 0 -1
         LREM m -9223372036854775808 y
         EXISTS m
         RPUSH m x
         LREM m 0 x
         EXISTS m
         LREM m 1
         SET s v
         LINSERT s BEFORE a b
         LINSERT s MIDDLE a b
         LREM s 0 a
         LREM s abc a",
    );
}

#[test]
fn lpos_options() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         RPUSH l a b c 1 2 3 c c a
         LPOS l a
         LPOS l c
         LPOS l z
         LPOS l c RANK 1
         LPOS l c RANK 2
         LPOS l c RANK 3
         LPOS l c RANK 4
         LPOS l c RANK -1
         LPOS l c RANK -3
         LPOS l c RANK -4
         LPOS l c RANK 0
         LPOS l c RANK abc
         LPOS l c RANK 9223372036854775807
         LPOS l c RANK -9223372036854775807
         LPOS l c RANK -9223372036854775808
         LPOS l c RANK -9223372036854775808 COUNT 1
         LPOS l c RANK -9223372036854775808 COUNT 0
         LPOS l c COUNT 0
         LPOS l c COUNT 1
         LPOS l c COUNT 2
         LPOS l c COUNT 10
         LPOS l z COUNT 10
         LPOS l c COUNT -1
         LPOS l c COUNT abc
         LPOS l c COUNT 2 RANK 2
         LPOS l c COUNT 2 RANK -1
         LPOS l c COUNT 0 RANK -2
         LPOS l c MAXLEN 3
         LPOS l c MAXLEN 2
         LPOS l c MAXLEN 3 COUNT 0
         LPOS l c MAXLEN 8 COUNT 0
         LPOS l c MAXLEN 2 RANK -1
         LPOS l c MAXLEN 3 RANK -1 COUNT 0
         LPOS l c MAXLEN 0 COUNT 0
         LPOS l c MAXLEN -1
         LPOS l c MAXLEN abc
         LPOS l c RANK 1 RANK 2
         LPOS l c COUNT 1 COUNT 0
         LPOS l c FOO
         LPOS l c RANK
         LPOS l c COUNT
         LPOS l c MAXLEN
         LPOS l 1
         LPOS nokey a
         LPOS nokey a COUNT 0
         LPOS nokey a RANK 0
         LPOS nokey a COUNT -1
         LPOS l
         SET s v
         LPOS s a
         LPOS s a COUNT 1
         LPOS s a RANK 0",
    );
}

#[test]
fn moves_and_mpop() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         RPUSH src a b c
         RPOPLPUSH src dst
         LMOVE src dst LEFT RIGHT
         LMOVE src dst right left
         LRANGE dst 0 -1
         EXISTS src
         RPOPLPUSH src dst
         LMOVE src dst LEFT LEFT
         RPUSH r 1 2 3
         LMOVE r r LEFT RIGHT
         LRANGE r 0 -1
         RPOPLPUSH r r
         LRANGE r 0 -1
         RPUSH one x
         LMOVE one one RIGHT LEFT
         LRANGE one 0 -1
         LMOVE r dst UP LEFT
         LMOVE r dst LEFT DOWN
         LMOVE nokey dst UP LEFT
         SET s v
         LMOVE r s LEFT LEFT
         RPOPLPUSH r s
         LMOVE s r LEFT LEFT
         RPOPLPUSH s r
         LMOVE nokey s LEFT LEFT
         RPOPLPUSH nokey s
         LRANGE r 0 -1
         LMOVE r dst
         RPOPLPUSH r
         LMPOP 1 r LEFT
         RPUSH r 4 5 6 7
         LMPOP 2 nokey r RIGHT
         LMPOP 2 nokey r LEFT COUNT 2
         LMPOP 1 r LEFT COUNT 100
         EXISTS r
         LMPOP 2 nokey r LEFT
         LMPOP 0 r LEFT
         LMPOP -1 r LEFT
         LMPOP abc r LEFT
         LMPOP 2 r LEFT
         LMPOP 3 r LEFT
         LMPOP 1 r UP
         LMPOP 1 r LEFT COUNT 0
         LMPOP 1 r LEFT COUNT -1
         LMPOP 1 r LEFT COUNT abc
         LMPOP 1 r LEFT COUNT 1 COUNT 1
         LMPOP 1 r LEFT COUNT
         LMPOP 1 r LEFT FOO
         LMPOP 9223372036854775807 r LEFT
         LMPOP 1 r
         LMPOP 1
         RPUSH r 1
         LMPOP 2 s r LEFT
         LMPOP 2 r s LEFT
         LMPOP 2 r s LEFT
         LMPOP 1 s LEFT",
    );
}

#[test]
fn blocking_commands_without_blocking() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         RPUSH l a b c d e f g h i j
         BLPOP l 0
         BRPOP l 0
         BLPOP nokey l 1
         BRPOP nokey l 0.5
         BLPOP l -1
         BLPOP l abc
         BLPOP l inf
         BLPOP l -inf
         BLPOP l nan
         BLPOP l 1e300
         BLPOP l 9223372036854775808
         BLPOP l
         BRPOP
         BLMOVE l d LEFT RIGHT 0
         BLMOVE l d RIGHT LEFT 1
         BLMOVE l d UP LEFT 0
         BLMOVE l d LEFT UP 0
         BLMOVE l d LEFT LEFT -1
         BLMOVE l d LEFT LEFT abc
         BLMOVE l d LEFT LEFT
         BRPOPLPUSH l d 0
         BRPOPLPUSH l d -1
         BRPOPLPUSH l d abc
         BRPOPLPUSH l d
         LRANGE d 0 -1
         BLMOVE nokey d LEFT LEFT 0.01
         BRPOPLPUSH nokey d 0.01
         MULTI
         BLMOVE nokey d LEFT LEFT 0
         BRPOPLPUSH nokey d 0
         EXEC
         RPUSH l x y z
         BLMPOP 0 1 l LEFT
         BLMPOP 0 2 nokey l RIGHT COUNT 2
         BLMPOP 0 1 l LEFT COUNT 10
         BLMPOP abc 1 l LEFT
         BLMPOP -1 1 l LEFT
         BLMPOP abc 0 l LEFT
         BLMPOP 0 0 l LEFT
         BLMPOP 0 abc l LEFT
         BLMPOP 0 2 l LEFT
         BLMPOP 0 1 l UP
         BLMPOP 0 1 l LEFT COUNT 0
         BLMPOP 0 1 l LEFT COUNT 1 COUNT 2
         BLMPOP 0 1 l LEFT FOO
         BLMPOP 0 1 l
         SET s v
         BLPOP s 0
         BLPOP nokey s 0
         BRPOP s 0
         BLMOVE s d LEFT LEFT 0
         BRPOPLPUSH s d 0
         RPUSH l q
         BLMOVE l s LEFT LEFT 0
         BRPOPLPUSH l s 0
         BLMPOP 0 2 nokey s LEFT
         LLEN l",
    );
    // Inside MULTI nothing blocks: the timeout reply comes at once.
    d.script(
        "MULTI
         BLPOP empty 0
         BRPOP empty 10
         BLMOVE empty d LEFT LEFT 0
         BRPOPLPUSH empty d 0
         BLMPOP 0 1 empty LEFT
         BLPOP empty 0.0001
         BLPOP empty -0.0001
         BLPOP empty 0x10
         BLPOP empty 9223372036854
         BLPOP empty 1e16
         BLPOP empty nan
         BLPOP empty \" 1\"
         EXEC",
    );
    // Outside it, a timeout under a millisecond rounds up to one (it
    // truncated to 0, which blocked forever), even one too small for a
    // double.
    d.script(
        "BLPOP empty 0.0005
         BLPOP empty 1e-400
         BLMPOP 0.0001 1 empty LEFT
         BLMOVE empty d LEFT LEFT 0.0001
         BZPOPMIN emptyz 0.0001",
    );
}

#[test]
fn resp3_replies() {
    let mut d = Differential::start().expect("servers start");
    // HELLO's reply holds the connection id, which differs.
    d.both(&["HELLO", "3"]);
    d.script(
        "FLUSHALL
         RPUSH l a b c d
         LPOP nokey
         LPOP nokey 2
         LPOP l 0
         LPOP l 2
         RPOP l
         LINDEX l 5
         LINDEX nokey 0
         LRANGE nokey 0 -1
         LPOS l z
         LPOS l z COUNT 0
         LPOS nokey z COUNT 0
         LMPOP 1 nokey LEFT
         LMPOP 1 l LEFT COUNT 3
         LMOVE nokey l LEFT LEFT
         RPUSH l a
         BLPOP l 0
         MULTI
         BLPOP l 0
         BLMOVE l x LEFT LEFT 0
         BLMPOP 0 1 l LEFT
         EXEC",
    );
}

#[test]
fn watch_sees_exactly_the_changes_redis_signals() {
    let mut d = Differential::start().expect("servers start");
    d.check(&["RPUSH", "l", "a", "b", "c"]);
    // Each case: WATCH, one list command, then a transaction that succeeds
    // only if that command did not signal the key as modified.
    for case in [
        "LTRIM l 0 -1",
        "LTRIM nokey 0 1",
        "LREM l 0 nope",
        "LINSERT l BEFORE nope x",
        "LPOP l 0",
        "LPUSHX nokey a",
        "LMOVE nokey l LEFT LEFT",
        "LSET l 0 a",
        "LPOS l a",
        "LRANGE l 0 -1",
        "LMPOP 1 nokey LEFT",
        "RPOPLPUSH l l",
        "LREM l 1 zz",
        "RPUSH l zz",
        "LREM l 1 zz",
    ] {
        let key = if case.contains("nokey") && !case.starts_with("LMOVE") {
            "nokey"
        } else {
            "l"
        };
        d.check(&["WATCH", key]);
        let args: Vec<&str> = case.split_whitespace().collect();
        d.check(&args);
        d.check(&["MULTI"]);
        d.check(&["PING"]);
        let (m, r) = d.both(&["EXEC"]);
        assert_eq!(m, r, "WATCH {key}; {case}; EXEC");
    }
}

/// Runs a blocking scenario on both servers: `waiter` commands are sent
/// (not awaited) on one connection, then `steps` run on another, then the
/// waiter's replies are read and compared.
fn blocking_scenario(d: &Differential, waiter: &str, steps: &[&str]) {
    let mut replies = Vec::new();
    for port in [d.memlog.port, d.redis.port] {
        let mut w = RawConn::connect(port).unwrap();
        let mut p = RawConn::connect(port).unwrap();
        p.call(&["FLUSHALL"]).unwrap();
        w.send(&waiter.split_whitespace().collect::<Vec<_>>())
            .unwrap();
        pause();
        let mut got = Vec::new();
        for s in steps {
            got.push(p.call(&s.split_whitespace().collect::<Vec<_>>()).unwrap());
        }
        got.push(w.read().unwrap());
        got.push(p.call(&["LRANGE", "k", "0", "-1"]).unwrap());
        got.push(p.call(&["LRANGE", "d", "0", "-1"]).unwrap());
        replies.push(got);
    }
    assert_eq!(replies[0], replies[1], "waiter {waiter:?}, steps {steps:?}");
}

#[test]
fn blocking_scenarios_match_redis() {
    let d = Differential::start().expect("servers start");
    blocking_scenario(&d, "BLPOP k 0", &["RPUSH k a b"]);
    blocking_scenario(&d, "BRPOP x k 0", &["SET x v", "RPUSH k a b"]);
    blocking_scenario(&d, "BLMOVE k d RIGHT LEFT 0", &["RPUSH d z", "RPUSH k a b"]);
    blocking_scenario(&d, "BLMOVE k k RIGHT LEFT 0", &["RPUSH k a b"]);
    blocking_scenario(&d, "BRPOPLPUSH k d 0", &["SET d s", "RPUSH k a"]);
    blocking_scenario(
        &d,
        "BLMPOP 0 2 x k LEFT COUNT 5",
        &["MULTI", "RPUSH k a b", "LPUSH k c", "EXEC"],
    );
    blocking_scenario(
        &d,
        "BLPOP k 0",
        &["MULTI", "RPUSH k a", "DEL k", "EXEC", "LPUSH k b"],
    );
    blocking_scenario(&d, "BLPOP k 0", &["RPUSH d a", "LMOVE d k LEFT LEFT"]);
    blocking_scenario(&d, "BLPOP k 0", &["LPUSH k a", "LPUSH k b"]);
    // Several keys ready at once: Redis 7.0 serves from the first key that
    // became ready, not the first in the command's order.
    blocking_scenario(
        &d,
        "BLPOP k d 0",
        &["MULTI", "RPUSH d a", "RPUSH k b", "EXEC"],
    );
    blocking_scenario(
        &d,
        "BLMPOP 0 2 k d RIGHT COUNT 2",
        &["MULTI", "RPUSH d a", "RPUSH k b", "EXEC"],
    );
    blocking_scenario(
        &d,
        "BRPOP k d 0",
        &["MULTI", "RPUSH k a", "RPUSH d b", "DEL k", "EXEC"],
    );
}

/// Reads pub/sub messages until the `zzend` marker; returns them.
fn read_events(c: &mut RawConn) -> Vec<RespValue> {
    let mut v = Vec::new();
    loop {
        let m = c.read().expect("event");
        if let RespValue::Array(items) = &m {
            if items.last() == Some(&bulk("zzend")) {
                return v;
            }
        }
        v.push(m);
    }
}

#[test]
fn keyspace_events_match_redis() {
    let mut d = Differential::start().expect("servers start");
    d.check(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sm = RawConn::connect(d.memlog.port).unwrap();
    let mut sr = RawConn::connect(d.redis.port).unwrap();
    assert_eq!(
        sm.call(&["PSUBSCRIBE", "__key*__:*"]).unwrap(),
        sr.call(&["PSUBSCRIBE", "__key*__:*"]).unwrap()
    );
    d.script(
        "FLUSHALL
         RPUSH l a b c d e f
         LPUSH l z
         LPUSHX l y
         RPUSHX l x
         LPUSHX nokey a
         LPOP l
         RPOP l 2
         LPOP l 0
         LINSERT l BEFORE b B
         LINSERT l BEFORE nope B
         LSET l 0 A
         LREM l 0 B
         LREM l 0 nope
         LTRIM l 0 -1
         LTRIM l 1 2
         LMOVE l m LEFT RIGHT
         RPOPLPUSH m m
         LMOVE l l RIGHT LEFT
         LMPOP 1 l RIGHT COUNT 5
         RPUSH q 1 2 3
         BLPOP q 0
         BRPOP q 0
         BLMOVE q m LEFT LEFT 0
         BLMPOP 0 1 m LEFT COUNT 10
         RPUSH r 1
         LREM r 0 1
         RPUSH r 1
         LTRIM r 1 0
         RPUSH r 1
         BRPOPLPUSH r r2 0
         LSET r2 0 z",
    );
    d.check(&["PUBLISH", "__keyevent@0__:zzend", "zzend"]);
    let em = read_events(&mut sm);
    let er = read_events(&mut sr);
    assert_eq!(em, er);
    assert!(em.len() > 40, "events: {em:?}");
}

/// A random workload of list commands (valid and invalid arguments) on a
/// handful of keys; every reply must match redis-server's.
#[test]
fn randomized_differential() {
    let mut d = Differential::start().expect("servers start");
    let mut rng = StdRng::seed_from_u64(0x11575);
    let keys = ["k1", "k2", "k3", "str"];
    let vals = ["a", "b", "c", "1", "-2", ""];
    d.check(&["SET", "str", "x"]);
    let idx = |rng: &mut StdRng| -> String {
        match rng.gen_range(0..10) {
            0 => "abc".into(),
            1 => "9223372036854775807".into(),
            2 => "-9223372036854775808".into(),
            _ => rng.gen_range(-8i64..8).to_string(),
        }
    };
    for _ in 0..800 {
        let k = keys[rng.gen_range(0..keys.len())].to_string();
        let k2 = keys[rng.gen_range(0..keys.len())].to_string();
        let v = vals[rng.gen_range(0..vals.len())].to_string();
        let side_of = |rng: &mut StdRng| -> String {
            ["LEFT", "RIGHT", "right", "up"][rng.gen_range(0..4)].into()
        };
        let cmd: Vec<String> = match rng.gen_range(0..24) {
            0 | 1 => {
                let mut c = vec![if rng.gen() { "LPUSH" } else { "RPUSH" }.into(), k];
                for _ in 0..rng.gen_range(0..4) {
                    c.push(vals[rng.gen_range(0..vals.len())].into());
                }
                c
            }
            2 => vec![if rng.gen() { "LPUSHX" } else { "RPUSHX" }.into(), k, v],
            3 | 4 => {
                let mut c = vec![if rng.gen() { "LPOP" } else { "RPOP" }.into(), k];
                if rng.gen() {
                    c.push(idx(&mut rng));
                }
                c
            }
            5 => vec!["LLEN".into(), k],
            6 | 7 => vec!["LRANGE".into(), k, idx(&mut rng), idx(&mut rng)],
            8 => vec!["LINDEX".into(), k, idx(&mut rng)],
            9 => vec!["LSET".into(), k, idx(&mut rng), v],
            10 => vec![
                "LINSERT".into(),
                k,
                ["BEFORE", "AFTER", "after", "X"][rng.gen_range(0..4)].into(),
                vals[rng.gen_range(0..vals.len())].into(),
                v,
            ],
            11 => vec!["LREM".into(), k, idx(&mut rng), v],
            12 => vec!["LTRIM".into(), k, idx(&mut rng), idx(&mut rng)],
            13 | 14 => {
                let mut c = vec!["LPOS".into(), k, v];
                for _ in 0..rng.gen_range(0..3) {
                    c.push(["RANK", "COUNT", "MAXLEN", "BAD"][rng.gen_range(0..4)].into());
                    c.push(idx(&mut rng));
                }
                c
            }
            15 => vec!["LMOVE".into(), k, k2, side_of(&mut rng), side_of(&mut rng)],
            16 => vec!["RPOPLPUSH".into(), k, k2],
            17 => {
                let n = rng.gen_range(0..4);
                let mut c = vec!["LMPOP".into(), n.to_string()];
                for _ in 0..n {
                    c.push(keys[rng.gen_range(0..keys.len())].into());
                }
                c.push(side_of(&mut rng));
                if rng.gen() {
                    c.push("COUNT".into());
                    c.push(idx(&mut rng));
                }
                c
            }
            // Blocking commands run inside MULTI so they never wait.
            18 => vec!["BLPOP".into(), k, k2, "0".into()],
            19 => vec!["BRPOP".into(), k, "0.01".into()],
            20 => vec![
                "BLMOVE".into(),
                k,
                k2,
                side_of(&mut rng),
                side_of(&mut rng),
                "0".into(),
            ],
            21 => vec!["BRPOPLPUSH".into(), k, k2, "0".into()],
            22 => {
                let mut c = vec!["BLMPOP".into(), "0".into(), "2".into(), k, k2];
                c.push(side_of(&mut rng));
                if rng.gen() {
                    c.push("COUNT".into());
                    c.push(idx(&mut rng));
                }
                c
            }
            _ => vec!["TYPE".into(), k],
        };
        if cmd[0].starts_with('B') {
            d.check(&["MULTI"]);
            d.check(&cmd);
            d.check(&["EXEC"]);
        } else {
            d.check(&cmd);
        }
    }
    for k in keys {
        d.check(&["LRANGE", k, "0", "-1"]);
    }
}

// --- blocking behaviour, against memlog with two clients ----------------

fn memlog() -> MemlogServer {
    MemlogServer::start(&[]).expect("memlog starts")
}

fn pause() {
    std::thread::sleep(Duration::from_millis(150));
}

#[test]
fn blpop_is_served_by_a_push_and_times_out() {
    let s = memlog();
    let mut w = RawConn::connect(s.port).unwrap();
    let mut p = RawConn::connect(s.port).unwrap();
    w.send(&["BLPOP", "q1", "q2", "0"]).unwrap();
    pause();
    assert_eq!(
        p.call(&["RPUSH", "q2", "a", "b"]).unwrap(),
        RespValue::Int(2)
    );
    assert_eq!(w.read().unwrap(), arr(&["q2", "a"]));
    assert_eq!(p.call(&["LRANGE", "q2", "0", "-1"]).unwrap(), arr(&["b"]));

    w.send(&["BRPOP", "q3", "0"]).unwrap();
    pause();
    p.call(&["RPUSH", "q3", "x", "y"]).unwrap();
    assert_eq!(w.read().unwrap(), arr(&["q3", "y"]));

    let t = Instant::now();
    assert_eq!(
        w.call(&["BLPOP", "empty", "0.1"]).unwrap(),
        RespValue::NullArray
    );
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(90), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Redis 7 answers every timed-out list command with a null array,
    // BLMOVE included (a null bulk only when it cannot block).
    assert_eq!(
        w.call(&["BLMOVE", "empty", "d", "LEFT", "LEFT", "0.05"])
            .unwrap(),
        RespValue::NullArray
    );
    assert_eq!(
        w.call(&["BLMPOP", "0.05", "1", "empty", "LEFT"]).unwrap(),
        RespValue::NullArray
    );
    // The connection is still usable after a timeout.
    assert_eq!(w.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
}

#[test]
fn waiters_are_served_first_come_first_served() {
    let s = memlog();
    let mut w1 = RawConn::connect(s.port).unwrap();
    let mut w2 = RawConn::connect(s.port).unwrap();
    let mut w3 = RawConn::connect(s.port).unwrap();
    let mut p = RawConn::connect(s.port).unwrap();
    w1.send(&["BLPOP", "q", "0"]).unwrap();
    pause();
    w2.send(&["BRPOP", "q", "0"]).unwrap();
    pause();
    w3.send(&["BLPOP", "q", "0"]).unwrap();
    pause();
    // One push of three elements serves all three, oldest first.
    assert_eq!(
        p.call(&["RPUSH", "q", "a", "b", "c"]).unwrap(),
        RespValue::Int(3)
    );
    assert_eq!(w1.read().unwrap(), arr(&["q", "a"]));
    assert_eq!(w2.read().unwrap(), arr(&["q", "c"]));
    assert_eq!(w3.read().unwrap(), arr(&["q", "b"]));
    assert_eq!(p.call(&["EXISTS", "q"]).unwrap(), RespValue::Int(0));

    // With one element for two waiters, the second keeps waiting.
    w1.send(&["BLPOP", "q", "0"]).unwrap();
    pause();
    w2.send(&["BLPOP", "q", "0"]).unwrap();
    pause();
    p.call(&["LPUSH", "q", "first"]).unwrap();
    assert_eq!(w1.read().unwrap(), arr(&["q", "first"]));
    pause();
    p.call(&["LPUSH", "q", "second"]).unwrap();
    assert_eq!(w2.read().unwrap(), arr(&["q", "second"]));
}

#[test]
fn blmove_serves_and_wakes_waiters_on_destination() {
    let s = memlog();
    let mut mover = RawConn::connect(s.port).unwrap();
    let mut popper = RawConn::connect(s.port).unwrap();
    let mut p = RawConn::connect(s.port).unwrap();
    mover
        .send(&["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"])
        .unwrap();
    pause();
    popper.send(&["BLPOP", "dst", "0"]).unwrap();
    pause();
    p.call(&["RPUSH", "src", "v1", "v2"]).unwrap();
    assert_eq!(mover.read().unwrap(), bulk("v2"));
    // The element moved into dst served the client blocked on dst.
    assert_eq!(popper.read().unwrap(), arr(&["dst", "v2"]));
    assert_eq!(p.call(&["EXISTS", "dst"]).unwrap(), RespValue::Int(0));
    assert_eq!(p.call(&["LRANGE", "src", "0", "-1"]).unwrap(), arr(&["v1"]));

    // BRPOPLPUSH chain.
    p.call(&["DEL", "src"]).unwrap();
    mover.send(&["BRPOPLPUSH", "a", "b", "0"]).unwrap();
    pause();
    popper.send(&["BRPOPLPUSH", "b", "c", "0"]).unwrap();
    pause();
    p.call(&["LPUSH", "a", "x"]).unwrap();
    assert_eq!(mover.read().unwrap(), bulk("x"));
    assert_eq!(popper.read().unwrap(), bulk("x"));
    assert_eq!(p.call(&["LRANGE", "c", "0", "-1"]).unwrap(), arr(&["x"]));
    assert_eq!(p.call(&["EXISTS", "a", "b"]).unwrap(), RespValue::Int(0));
}

#[test]
fn blmpop_is_served_with_count() {
    let s = memlog();
    let mut w = RawConn::connect(s.port).unwrap();
    let mut p = RawConn::connect(s.port).unwrap();
    w.send(&["BLMPOP", "0", "2", "a", "b", "RIGHT", "COUNT", "2"])
        .unwrap();
    pause();
    p.call(&["RPUSH", "b", "1", "2", "3"]).unwrap();
    assert_eq!(
        w.read().unwrap(),
        RespValue::Array(vec![bulk("b"), arr(&["3", "2"])])
    );
    assert_eq!(p.call(&["LRANGE", "b", "0", "-1"]).unwrap(), arr(&["1"]));
}

#[test]
fn multi_does_not_block_and_exec_serves_waiters() {
    let s = memlog();
    let mut w = RawConn::connect(s.port).unwrap();
    let mut p = RawConn::connect(s.port).unwrap();
    // BLPOP inside MULTI answers nil at once.
    assert_eq!(w.call(&["MULTI"]).unwrap(), RespValue::Simple("OK".into()));
    w.call(&["BLPOP", "q", "0"]).unwrap();
    assert_eq!(
        w.call(&["EXEC"]).unwrap(),
        RespValue::Array(vec![RespValue::NullArray])
    );
    // Pushes inside MULTI serve the waiter only after EXEC, with the state
    // the whole transaction left.
    w.send(&["BLPOP", "q", "0"]).unwrap();
    pause();
    p.call(&["MULTI"]).unwrap();
    p.call(&["LPUSH", "q", "a"]).unwrap();
    p.call(&["LPUSH", "q", "b"]).unwrap();
    p.call(&["LPUSH", "q", "c"]).unwrap();
    assert_eq!(
        p.call(&["EXEC"]).unwrap(),
        RespValue::Array(vec![
            RespValue::Int(1),
            RespValue::Int(2),
            RespValue::Int(3)
        ])
    );
    assert_eq!(w.read().unwrap(), arr(&["q", "c"]));
    // A push then a pop of the same element in one transaction: nothing for
    // the waiter, which keeps waiting.
    w.send(&["BLPOP", "r", "0"]).unwrap();
    pause();
    p.call(&["MULTI"]).unwrap();
    p.call(&["LPUSH", "r", "gone"]).unwrap();
    p.call(&["LPOP", "r"]).unwrap();
    p.call(&["EXEC"]).unwrap();
    pause();
    p.call(&["RPUSH", "r", "late"]).unwrap();
    assert_eq!(w.read().unwrap(), arr(&["r", "late"]));
}

#[test]
fn blocking_on_wrong_type_and_type_changes() {
    let s = memlog();
    let mut w = RawConn::connect(s.port).unwrap();
    let mut p = RawConn::connect(s.port).unwrap();
    p.call(&["SET", "str", "v"]).unwrap();
    let wrongtype = RespValue::Error(
        "WRONGTYPE Operation against a key holding the wrong kind of value".into(),
    );
    assert_eq!(w.call(&["BLPOP", "str", "0"]).unwrap(), wrongtype);
    assert_eq!(w.call(&["BLPOP", "nokey", "str", "0"]).unwrap(), wrongtype);
    assert_eq!(
        w.call(&["BLMOVE", "str", "x", "LEFT", "LEFT", "0"])
            .unwrap(),
        wrongtype
    );
    assert_eq!(
        w.call(&["BLMPOP", "0", "1", "str", "LEFT"]).unwrap(),
        wrongtype
    );
    // A waiting client is not failed when its key becomes a string (Redis
    // 7.0 keeps it blocked); it is served by a later list.
    w.send(&["BLPOP", "k", "other", "0"]).unwrap();
    pause();
    p.call(&["SET", "k", "v"]).unwrap();
    p.call(&["RPUSH", "other", "x"]).unwrap();
    assert_eq!(w.read().unwrap(), arr(&["other", "x"]));
    // BLMOVE served into a destination of the wrong type fails the waiter
    // and leaves the source intact.
    w.send(&["BLMOVE", "src", "k", "LEFT", "LEFT", "0"])
        .unwrap();
    pause();
    p.call(&["RPUSH", "src", "e"]).unwrap();
    assert_eq!(w.read().unwrap(), wrongtype);
    assert_eq!(p.call(&["LRANGE", "src", "0", "-1"]).unwrap(), arr(&["e"]));
}

#[test]
fn blocked_client_in_resp3_and_other_db() {
    let s = memlog();
    let mut w = RawConn::connect(s.port).unwrap();
    let mut p = RawConn::connect(s.port).unwrap();
    w.call(&["HELLO", "3"]).unwrap();
    w.call(&["SELECT", "2"]).unwrap();
    p.call(&["SELECT", "2"]).unwrap();
    assert_eq!(w.call(&["BLPOP", "q", "0.05"]).unwrap(), RespValue::Null);
    w.send(&["BLPOP", "q", "0"]).unwrap();
    pause();
    // A push to the same key name in another db does not serve it.
    let mut other = RawConn::connect(s.port).unwrap();
    other.call(&["RPUSH", "q", "db0"]).unwrap();
    p.call(&["RPUSH", "q", "db2"]).unwrap();
    assert_eq!(w.read().unwrap(), arr(&["q", "db2"]));
    assert_eq!(other.call(&["LLEN", "q"]).unwrap(), RespValue::Int(1));
}
