//! Differential tests of the string and bitmap families against a real
//! redis-server: every command, its options, errors and edge values, RESP3,
//! and a seeded randomized run.

use memlog_tests::{Differential, RespValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Splits a line like redis-cli: whitespace-separated, `"..."` quoted with
/// `\xHH`, `\"` and `\\` escapes.
fn split_line(line: &str) -> Vec<Vec<u8>> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let mut arg = Vec::new();
        if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    if b[i + 1] == b'x' && i + 3 < b.len() {
                        let h = std::str::from_utf8(&b[i + 2..i + 4]).unwrap();
                        arg.push(u8::from_str_radix(h, 16).unwrap());
                        i += 4;
                    } else {
                        arg.push(b[i + 1]);
                        i += 2;
                    }
                } else {
                    arg.push(b[i]);
                    i += 1;
                }
            }
            i += 1;
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                arg.push(b[i]);
                i += 1;
            }
        }
        out.push(arg);
    }
    out
}

/// Like `Differential::script`, with quoted arguments.
fn run(d: &mut Differential, text: &str) {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let args = split_line(line);
        if args[0] == b"TTL" || args[0] == b"PTTL" {
            // TTL/PTTL belong to the keys family: compare them only where
            // this build has them.
            let (m, r) = d.both(&args);
            if !matches!(&m, RespValue::Error(e) if e.starts_with("ERR unknown command")) {
                assert_eq!(m, r, "replies differ for {line}");
            }
            continue;
        }
        d.check(&args);
    }
}

fn both_resp(d: &mut Differential, f: impl Fn(&mut Differential)) {
    f(d);
    d.both(&["HELLO", "3"]);
    f(d);
    d.both(&["HELLO", "2"]);
}

#[test]
fn get_set_family() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(
            d,
            "FLUSHALL
             SET k v
             GET k
             SET k v2 NX
             SET k v3 XX
             SET nokey v XX
             GET nokey
             SET k v4 GET
             SET nokey v GET
             SET nokey2 v NX GET
             SET k v5 XX GET
             SET k v6 NX GET
             GET k
             SET k v EX 0
             SET k v EX -1
             SET k v PX 0
             SET k v EXAT 0
             SET k v PXAT -5
             SET k v EX abc
             SET k v EX abc NOSUCHOPT
             SET k v EX 9223372036854775807
             SET k v PX 9223372036854775807
             SET k v EX 922337203685477
             SET k v PX 100 EX 100
             SET k v EX 100 PX 100
             SET k v EX 100 EX 200
             SET k v KEEPTTL EX 10
             SET k v EX 10 KEEPTTL
             SET k v NX XX
             SET k v XX NX
             SET k v BADOPT
             SET k v EX
             SET k v GET GET
             SET k v EX 100
             TTL k
             SET k v2 KEEPTTL
             TTL k
             SET k v3
             TTL k
             SET k v PX 100000
             TTL k
             SET k v EXAT 99999999999
             TTL k
             SET k v PXAT 99999999999999
             TTL k
             SET k v EXAT 1
             EXISTS k
             GET k
             LPUSH l a
             SET l v GET
             GET l
             SET l v
             GET l
             LPUSH l2 a
             SET l2 v NX GET
             SET
             SET k
             GET
             GET a b
             SETNX k v
             SETNX newk v
             GET newk
             SETNX k
             SETEX k 100 v
             TTL k
             SETEX k 0 v
             SETEX k -3 v
             SETEX k abc v
             SETEX k 9223372036854775807 v
             SETEX k 100
             PSETEX k 100000 v
             TTL k
             PSETEX k 0 v
             PSETEX k x v
             GETSET k new
             GETSET missing new
             GET missing
             GETSET l x
             SETEX k 100 v
             GETSET k w
             TTL k
             GETSET k
             GETDEL k
             GETDEL k
             EXISTS k
             GETDEL l
             GETDEL",
        );
    });
}

#[test]
fn getex() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(
            d,
            "FLUSHALL
             SET k v
             GETEX k
             TTL k
             GETEX k EX 100
             TTL k
             GETEX k PX 200000
             TTL k
             GETEX k EXAT 99999999999
             TTL k
             GETEX k PXAT 99999999999999
             TTL k
             GETEX k PERSIST
             TTL k
             GETEX k PERSIST PERSIST
             GETEX k EX 0
             GETEX k EX -1
             GETEX k EX abc
             GETEX k PX 9223372036854775807
             GETEX k EX 10 PX 10
             GETEX k EX 10 PERSIST
             GETEX k PERSIST EX 10
             GETEX k KEEPTTL
             GETEX k NX
             GETEX k GET
             GETEX k EX
             GETEX k FOO
             GETEX missing EX 10
             GETEX missing EX abc
             GETEX missing FOO
             LPUSH l a
             GETEX l
             GETEX l EX abc
             GETEX k EXAT 1
             EXISTS k
             SET k v
             GETEX k PXAT 1
             EXISTS k
             GETEX",
        );
    });
}

#[test]
fn multi_keys_append_strlen() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(
            d,
            "FLUSHALL
             MSET a 1 b 2 c 3
             MGET a b c nokey
             LPUSH l x
             MGET a l b
             MSET a
             MSET a 1 b
             MSET
             MSETNX a 1 x 2
             MGET x
             MSETNX x 1 y 2
             MGET x y
             MSETNX z
             MSETNX z 1 w
             MSETNX l 1
             MGET
             APPEND s hello
             APPEND s \" world\"
             GET s
             APPEND l x
             APPEND s
             STRLEN s
             STRLEN nokey
             STRLEN l
             STRLEN
             SET n 12345
             APPEND n 6
             GET n
             STRLEN n
             SET e \"\"
             APPEND newe \"\"
             EXISTS newe",
        );
    });
}

#[test]
fn incr_decr() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(
            d,
            "FLUSHALL
             INCR n
             INCR n
             DECR n
             DECR m
             INCRBY n 10
             INCRBY n -100
             DECRBY n 5
             DECRBY n -5
             INCRBY n abc
             INCRBY n 1.5
             INCRBY n 99999999999999999999
             DECRBY n -9223372036854775808
             DECRBY n 9223372036854775807
             DECRBY n 9223372036854775807
             SET max 9223372036854775807
             INCR max
             INCRBY max 0
             SET min -9223372036854775808
             DECR min
             INCRBY min -1
             INCRBY min 9223372036854775807
             SET s hello
             INCR s
             DECR s
             SET sp \" 1\"
             INCR sp
             SET plus +1
             INCR plus
             SET lz 01
             INCR lz
             SET neg0 -0
             INCR neg0
             SET big 99999999999999999999
             INCR big
             LPUSH l a
             INCR l
             DECRBY l 1
             INCR
             INCRBY n
             SETEX t 100 5
             INCR t
             TTL t
             GET t",
        );
    });
}

#[test]
fn incrbyfloat() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(
            d,
            "FLUSHALL
             INCRBYFLOAT f 10.5
             INCRBYFLOAT f 0.25
             INCRBYFLOAT f -10.75
             INCRBYFLOAT f 5.0e3
             INCRBYFLOAT f -5000
             INCRBYFLOAT f 3
             GET f
             INCRBYFLOAT f abc
             INCRBYFLOAT f inf
             INCRBYFLOAT f -inf
             INCRBYFLOAT f nan
             INCRBYFLOAT f \"\"
             INCRBYFLOAT f \" 1\"
             INCRBYFLOAT f 1x
             INCRBYFLOAT f +2
             INCRBYFLOAT f .5
             INCRBYFLOAT f 5.
             INCRBYFLOAT g 0x10
             INCRBYFLOAT h 1e-5000
             SET s hello
             INCRBYFLOAT s 1
             SET s 1.5
             INCRBYFLOAT s 1
             SET s \" 1.5\"
             INCRBYFLOAT s 1
             SET s 1.5abc
             INCRBYFLOAT s 1
             LPUSH l a
             INCRBYFLOAT l 1
             INCRBYFLOAT l x
             INCRBYFLOAT
             INCRBYFLOAT f
             SETEX t 100 1
             INCRBYFLOAT t 1.5
             TTL t
             SET z -1
             INCRBYFLOAT z 1
             SET z 0
             INCRBYFLOAT z -0",
        );
    });
}

#[test]
fn ranges() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(
            d,
            "FLUSHALL
             SET s \"Hello World\"
             GETRANGE s 0 4
             GETRANGE s -5 -1
             GETRANGE s 0 -1
             GETRANGE s 5 2
             GETRANGE s -1 -5
             GETRANGE s -100 100
             GETRANGE s 100 200
             GETRANGE s 0 0
             GETRANGE s -1 -1
             GETRANGE s 9223372036854775807 -9223372036854775808
             GETRANGE s a 1
             GETRANGE s 1 b
             GETRANGE nokey 0 -1
             GETRANGE nokey a b
             SUBSTR s 0 4
             SUBSTR s -3 -1
             SET e \"\"
             GETRANGE e 0 -1
             GETRANGE e -1 0
             LPUSH l a
             GETRANGE l 0 1
             GETRANGE s 0
             SET n 12345
             GETRANGE n 1 2
             SETRANGE s 6 Redis
             GET s
             SETRANGE s 20 X
             GET s
             SETRANGE s 0 \"\"
             SETRANGE nokey 0 \"\"
             EXISTS nokey
             SETRANGE nokey 3 abc
             GET nokey
             SETRANGE s -1 x
             SETRANGE s a x
             SETRANGE l 0 x
             SETRANGE l 0 \"\"
             SETRANGE s 536870912 x
             SETRANGE nokey2 536870912 x
             SETRANGE s 9223372036854775807 x
             SETRANGE s 0",
        );
    });
}

#[test]
fn lcs() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(
            d,
            "FLUSHALL
             MSET k1 ohmytext k2 mynewtext
             LCS k1 k2
             LCS k1 k2 LEN
             LCS k1 k2 IDX
             LCS k1 k2 IDX MINMATCHLEN 4
             LCS k1 k2 IDX MINMATCHLEN 4 WITHMATCHLEN
             LCS k1 k2 IDX WITHMATCHLEN
             LCS k1 k2 IDX MINMATCHLEN -5
             LCS k1 k2 IDX MINMATCHLEN abc
             LCS k1 k2 IDX MINMATCHLEN
             LCS k1 k2 LEN IDX
             LCS k1 k2 FOO
             LCS k1 k2 WITHMATCHLEN
             LCS k1 nokey
             LCS nokey nokey2 IDX
             LCS k1 nokey LEN
             LPUSH l a
             LCS k1 l
             LCS l k1 LEN
             LCS l k1 FOO
             MSET a rosettacode b raisethysword
             LCS a b
             LCS a b IDX WITHMATCHLEN
             MSET x 1234567890abcdef y 0123456789xyzabcdef
             LCS x y IDX WITHMATCHLEN
             LCS x y IDX MINMATCHLEN 3
             LCS k1",
        );
    });
}

#[test]
fn bits() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(
            d,
            "FLUSHALL
             SETBIT b 7 1
             SETBIT b 7 1
             SETBIT b 7 0
             SETBIT b 100 1
             GET b
             STRLEN b
             GETBIT b 100
             GETBIT b 101
             GETBIT b 100000
             GETBIT nokey 5
             SETBIT b 1 2
             SETBIT b 1 -1
             SETBIT b 1 x
             SETBIT b -1 1
             SETBIT b x 1
             SETBIT b 4294967296 1
             GETBIT b -1
             GETBIT b x
             GETBIT b 4294967296
             LPUSH l a
             SETBIT l 0 1
             GETBIT l 0
             SET s foobar
             BITCOUNT s
             BITCOUNT s 0 0
             BITCOUNT s 1 1
             BITCOUNT s 1 1 BYTE
             BITCOUNT s 5 30 BIT
             BITCOUNT s 0 -1 BIT
             BITCOUNT s -5 -1 BIT
             BITCOUNT s -1 -5
             BITCOUNT s -100 100
             BITCOUNT s 0
             BITCOUNT s 0 1 FOO
             BITCOUNT s 0 1 BIT x
             BITCOUNT s a b
             BITCOUNT nokey
             BITCOUNT nokey 0
             BITCOUNT nokey a b
             BITCOUNT l
             BITCOUNT
             SET n 1234
             BITCOUNT n
             GETBIT n 3
             SET p \"\\xff\\xf0\\x00\"
             SETBIT z 0 0
             SET p2 a
             BITPOS p2 1
             BITPOS p2 0
             BITPOS s 1
             BITPOS s 0
             BITPOS s 1 2
             BITPOS s 0 2 -1
             BITPOS s 1 -1
             BITPOS s 1 1 1 BIT
             BITPOS s 0 1 1 BIT
             BITPOS s 1 7 15 BIT
             BITPOS s 0 7 15 BIT
             BITPOS s 1 7 -3 BIT
             BITPOS s 0 0 -1 BYTE
             BITPOS s 1 5 3
             BITPOS s 1 2 1 BIT
             BITPOS s 2
             BITPOS s x
             BITPOS s 1 a
             BITPOS s 1 0 b
             BITPOS s 1 0 1 FOO
             BITPOS s 1 0 1 BIT x
             BITPOS nokey 1
             BITPOS nokey 0
             BITPOS nokey 0 1 2
             BITPOS l 1
             BITPOS s
             SET ones \"\\xff\\xff\"
             SETBIT ones2 0 1
             BITPOS z 0
             BITPOS z 1
             BITPOS z 0 0 -1
             BITPOS n 0",
        );
    });
}

#[test]
fn bitpos_all_ones() {
    let mut d = Differential::start().expect("servers start");
    // Strings of 0xff bytes: BITPOS 0 without an end finds the padding.
    for n in [1usize, 2, 9, 33] {
        let v = vec![0xffu8; n];
        let (a, b) = d.both(&[&b"SET"[..], b"ones", &v]);
        assert_eq!(a, b);
        for args in [
            vec!["BITPOS", "ones", "0"],
            vec!["BITPOS", "ones", "0", "1"],
            vec!["BITPOS", "ones", "0", "0", "-1"],
            vec!["BITPOS", "ones", "0", "3", "-1", "BIT"],
            vec!["BITPOS", "ones", "0", "3", "BIT"],
            vec!["BITPOS", "ones", "1", "3", "-1", "BIT"],
            vec!["BITCOUNT", "ones", "3", "-3", "BIT"],
        ] {
            d.check(&args);
        }
    }
}

#[test]
fn bitop() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(
            d,
            "FLUSHALL
             SET a foobar
             SET b abcdef
             SET c xyz
             BITOP AND d a b
             GET d
             BITOP OR d a b c
             GET d
             BITOP XOR d a b c
             GET d
             BITOP NOT d a
             GET d
             BITOP NOT d c
             GET d
             BITOP NOT d a b
             BITOP FOO d a
             BITOP AND d nokey nokey2
             EXISTS d
             BITOP AND d nokey a
             GET d
             BITOP OR d
             LPUSH l x
             BITOP AND d a l
             BITOP AND l a
             TYPE l
             SETEX t 100 x
             BITOP OR t a
             TTL t
             SET e \"\"
             BITOP OR d e
             EXISTS d",
        );
    });
}

#[test]
fn bitfield() {
    let mut d = Differential::start().expect("servers start");
    both_resp(&mut d, |d| {
        run(d,
            "FLUSHALL
             BITFIELD bf SET i8 0 100 GET i8 0
             BITFIELD bf INCRBY i8 0 100
             BITFIELD bf OVERFLOW SAT INCRBY i8 0 100
             BITFIELD bf OVERFLOW FAIL INCRBY i8 0 100
             BITFIELD bf OVERFLOW WRAP INCRBY i8 0 100 INCRBY i8 0 -300
             BITFIELD bf SET u8 #1 255 GET u8 #1 GET u4 4 GET i4 4
             BITFIELD bf INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1
             BITFIELD bf OVERFLOW SAT INCRBY u8 8 -300 INCRBY i8 8 -300
             BITFIELD bf OVERFLOW FAIL SET u2 0 5 SET i2 0 2 SET i2 0 -3
             BITFIELD bf OVERFLOW SAT SET u2 0 5 SET i2 0 2 SET i2 0 -3
             BITFIELD bf SET u2 0 5 SET i2 0 2 SET i2 0 -3
             BITFIELD bf GET i64 0 GET u63 0 SET i64 0 -1 GET i64 0 GET u63 1
             BITFIELD bf INCRBY i64 0 9223372036854775807
             BITFIELD bf OVERFLOW SAT INCRBY i64 0 -9223372036854775808 INCRBY i64 0 -9223372036854775808
             BITFIELD bf OVERFLOW SAT INCRBY i64 0 9223372036854775807 INCRBY i64 0 9223372036854775807
             BITFIELD bf OVERFLOW WRAP INCRBY u63 0 9223372036854775807 INCRBY u63 0 9223372036854775807
             BITFIELD bf OVERFLOW SAT INCRBY u63 0 -9223372036854775808
             BITFIELD bf SET u8 0 -1 GET u8 0
             BITFIELD bf OVERFLOW FAIL SET u8 0 -1 SET u8 0 256
             GET bf
             BITFIELD bf GET u64 0
             BITFIELD bf GET i65 0
             BITFIELD bf GET i0 0
             BITFIELD bf GET x8 0
             BITFIELD bf GET I8 0
             BITFIELD bf GET i8 -1
             BITFIELD bf GET i8 #-1
             BITFIELD bf GET i8 abc
             BITFIELD bf GET i8 4294967296
             BITFIELD bf GET i8 #536870912
             BITFIELD bf SET i8 0 abc
             BITFIELD bf SET i8 0
             BITFIELD bf GET i8
             BITFIELD bf FOO
             BITFIELD bf OVERFLOW FOO
             BITFIELD bf OVERFLOW
             BITFIELD bf
             BITFIELD nokey
             BITFIELD nokey GET u8 0 GET i16 100
             EXISTS nokey
             BITFIELD nokey OVERFLOW FAIL INCRBY u2 0 5
             LPUSH l a
             BITFIELD l GET u8 0
             BITFIELD l SET u8 0 1
             BITFIELD_RO bf GET u8 0 GET i8 #1
             BITFIELD_RO bf SET u8 0 1
             BITFIELD_RO bf INCRBY u8 0 1
             BITFIELD_RO bf GET u8
             BITFIELD_RO bf
             BITFIELD_RO nokey2 GET i32 0
             BITFIELD_RO l GET u8 0
             BITFIELD
             BITFIELD_RO
             SET n 1234
             BITFIELD n GET u8 0 GET u8 8
             SETEX t 100 x
             BITFIELD t SET u8 100 1
             TTL t",
        );
    });
}

#[test]
fn size_limits_follow_proto_max_bulk_len() {
    let mut d = Differential::start().expect("servers start");
    run(
        &mut d,
        "FLUSHALL
         CONFIG SET proto-max-bulk-len 1048576
         SET s abc
         SETRANGE s 1048573 x
         SETRANGE s 1048576 x
         SETRANGE s 1048575 x
         STRLEN s
         SETBIT b 8388607 1
         SETBIT b 8388608 1
         STRLEN b
         GETBIT b 8388608
         BITFIELD b SET u8 8388600 1
         BITFIELD b SET u8 8388601 1
         BITFIELD b GET u8 8388608
         SET big x
         LCS s big LEN
         SET a1 0123456789
         LCS a1 a1
         CONFIG SET proto-max-bulk-len 536870912",
    );
    // APPEND past the limit.
    let v = vec![b'x'; 600_000];
    d.check(&["CONFIG", "SET", "proto-max-bulk-len", "1048576"]);
    d.check(&[&b"SET"[..], b"ap", &v]);
    d.check(&[&b"APPEND"[..], b"ap", &v]);
    d.check(&["STRLEN", "ap"]);
    d.check(&["CONFIG", "SET", "proto-max-bulk-len", "536870912"]);
}

#[test]
fn keyspace_events() {
    let mut d = Differential::start().expect("servers start");
    d.check(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut subs = Vec::new();
    for port in [d.memlog.port, d.redis.port] {
        let mut c = memlog_tests::RawConn::connect(port).unwrap();
        c.call(&["PSUBSCRIBE", "__key*@0__:*"]).unwrap();
        subs.push(c);
    }
    let script = "SET k v
         SET k v EX 100
         SETEX k 10 v
         GETEX k EX 100
         GETEX k PERSIST
         GETEX k EXAT 1
         SET k v
         GETSET k w
         GETDEL k
         MSET a 1 b 2
         MSETNX c 1
         APPEND a x
         INCR n
         DECRBY n 3
         INCRBYFLOAT f 1.5
         SETRANGE a 5 y
         SETRANGE a 0 \"\"
         SETBIT bits 3 1
         SETBIT bits 3 1
         BITFIELD bf SET u8 0 1
         BITFIELD bf SET u8 0 1
         BITOP OR dst a b
         BITOP AND dst nokey
         SET last x";
    run(&mut d, script);
    for c in &mut subs {
        c.call(&["PING"]).ok();
    }
    let mut got: Vec<Vec<RespValue>> = Vec::new();
    for c in &mut subs {
        let mut evs = Vec::new();
        loop {
            let v = c.read().unwrap();
            let done = matches!(&v, RespValue::Array(a) if a.last() == Some(&RespValue::Bulk(b"last".to_vec())) && a.get(2) == Some(&RespValue::Bulk(b"__keyevent@0__:set".to_vec())));
            evs.push(v);
            if done {
                break;
            }
        }
        got.push(evs);
    }
    assert_eq!(got[0], got[1]);
}

/// A seeded random mix of the family's commands on a small keyspace.
#[test]
fn randomized_differential() {
    let mut d = Differential::start().expect("servers start");
    let mut rng = StdRng::seed_from_u64(0x5717_2024);
    let keys = ["a", "b", "c", "l"];
    let vals = [
        "",
        "0",
        "1",
        "-1",
        "42",
        "9223372036854775807",
        "-9223372036854775808",
        "abc",
        "foobar",
        "1.5",
        "\u{ff}x",
        "10",
        "x y",
    ];
    let ints = [
        "0",
        "1",
        "-1",
        "2",
        "-3",
        "7",
        "100",
        "-100",
        "abc",
        "9223372036854775807",
    ];
    let floats = [
        "0", "1.5", "-2.25", "3", "0.5", "1e3", "abc", "inf", "-0.125",
    ];
    d.check(&["FLUSHALL"]);
    d.check(&["RPUSH", "l", "x"]);
    for _ in 0..600 {
        let k = keys[rng.gen_range(0..keys.len())];
        let k2 = keys[rng.gen_range(0..keys.len())];
        let v = vals[rng.gen_range(0..vals.len())];
        let i1 = ints[rng.gen_range(0..ints.len())];
        let i2 = ints[rng.gen_range(0..ints.len())];
        let f = floats[rng.gen_range(0..floats.len())];
        let bitoff = rng.gen_range(0..64).to_string();
        let bit = ["0", "1", "2"][rng.gen_range(0..3)];
        let ty = ["u8", "i8", "u3", "i5", "i16", "u1", "i64", "u63", "u64"][rng.gen_range(0..9)];
        let ow = ["WRAP", "SAT", "FAIL"][rng.gen_range(0..3)];
        let unit = ["BIT", "BYTE"][rng.gen_range(0..2)];
        let cmd: Vec<&str> = match rng.gen_range(0..30) {
            0 => vec!["SET", k, v],
            1 => vec![
                "SET",
                k,
                v,
                ["NX", "XX", "GET", "KEEPTTL"][rng.gen_range(0..4)],
            ],
            2 => vec!["GET", k],
            3 => vec!["SETNX", k, v],
            4 => vec!["GETSET", k, v],
            5 => vec!["GETDEL", k],
            6 => vec!["MGET", k, k2, "zz"],
            7 => vec!["MSET", k, v, k2, i1],
            8 => vec!["MSETNX", k, v, k2, i1],
            9 => vec!["APPEND", k, v],
            10 => vec!["STRLEN", k],
            11 => vec!["INCR", k],
            12 => vec!["DECR", k],
            13 => vec!["INCRBY", k, i1],
            14 => vec!["DECRBY", k, i1],
            15 => vec!["INCRBYFLOAT", "f", f],
            16 => vec!["GETRANGE", k, i1, i2],
            17 => vec![
                "SETRANGE",
                k,
                ["0", "1", "3", "-1", "x"][rng.gen_range(0..5)],
                v,
            ],
            18 => vec![
                "LCS",
                k,
                k2,
                ["LEN", "IDX", "WITHMATCHLEN"][rng.gen_range(0..3)],
            ],
            19 => vec!["SETBIT", k, &bitoff, bit],
            20 => vec!["GETBIT", k, &bitoff],
            21 => vec!["BITCOUNT", k, i1, i2, unit],
            22 => vec!["BITCOUNT", k],
            23 => vec!["BITPOS", k, bit, i1, i2, unit],
            24 => vec!["BITPOS", k, bit, i1],
            25 => vec![
                "BITOP",
                ["AND", "OR", "XOR", "NOT"][rng.gen_range(0..4)],
                k,
                k2,
                "c",
            ],
            26 => vec!["BITOP", "NOT", k, k2],
            27 => vec![
                "BITFIELD", k, "OVERFLOW", ow, "INCRBY", ty, &bitoff, i1, "GET", ty, "0",
            ],
            28 => vec!["BITFIELD", k, "SET", ty, &bitoff, i1, "GET", "u8", "#1"],
            _ => vec!["BITFIELD_RO", k, "GET", ty, &bitoff],
        };
        d.check(&cmd);
    }
    for k in keys {
        d.check(&["GET", k]);
    }
}

/// INCRBYFLOAT computes with an x87 long double like Redis: decimal
/// fractions, values beyond 2^53 and 2^64, huge and tiny magnitudes, and the
/// `%.17Lf` output (rounded half-even, zeros trimmed).
#[test]
fn incrbyfloat_long_double_precision() {
    let mut d = Differential::start().expect("servers start");
    run(
        &mut d,
        "FLUSHALL
         SET a 0.1
         INCRBYFLOAT a 0.2
         INCRBYFLOAT a 0.3
         INCRBYFLOAT a -0.6
         SET b 3
         INCRBYFLOAT b 1.5e-3
         SET c 9007199254740993
         INCRBYFLOAT c 1.5
         SET c 18446744073709551616
         INCRBYFLOAT c 1
         INCRBYFLOAT c 3
         INCRBYFLOAT c -18446744073709551615
         SET c 123456789012345678901234567890
         INCRBYFLOAT c 0.5
         SET e 1e400
         INCRBYFLOAT e 1
         INCRBYFLOAT e -1e400
         INCRBYFLOAT f 1.18973149535723176502e4932
         INCRBYFLOAT f 1e4932
         INCRBYFLOAT f -1.1897314953572317651e4932
         INCRBYFLOAT g 1e-4940
         INCRBYFLOAT g 3.7e-4951
         INCRBYFLOAT g 1e-4952
         INCRBYFLOAT g 0e999999
         SET h -2.5
         INCRBYFLOAT h -0.0000001
         INCRBYFLOAT h 2.5000001
         SET i 0.000003814697265625
         INCRBYFLOAT i 0
         SET i 0.000011444091796875
         INCRBYFLOAT i 0
         SET i 0.999999999999999999
         INCRBYFLOAT i 0
         SET i -0.000000000000000001
         INCRBYFLOAT i 0
         SET j 0x1.8p1
         INCRBYFLOAT j 0x.8
         INCRBYFLOAT j 0x1p-70
         INCRBYFLOAT j 0X10P+2
         INCRBYFLOAT j 0x1p
         INCRBYFLOAT j 0x
         INCRBYFLOAT j 1e
         INCRBYFLOAT j infinity
         INCRBYFLOAT j -Infinity
         INCRBYFLOAT j infinit
         SET k inf
         INCRBYFLOAT k 1
         SET k 1e5000
         INCRBYFLOAT k 1
         INCRBYFLOAT m 1.000000000000000000000000000000000000000000000000001
         INCRBYFLOAT m 12345678901234567890.123456789",
    );
    // Many repeated increments accumulate long double rounding.
    for (key, step) in [
        ("r1", "0.1"),
        ("r2", "-0.7"),
        ("r3", "1e-9"),
        ("r4", "3.3333333"),
    ] {
        for _ in 0..300 {
            d.check(&["INCRBYFLOAT", key, step]);
        }
        d.check(&["GET", key]);
    }
}

/// Random decimal and hex strings of all magnitudes: parsing, sums and
/// formatting must match Redis' long double code.
#[test]
fn incrbyfloat_long_double_random() {
    let mut d = Differential::start().expect("servers start");
    let mut rng = StdRng::seed_from_u64(0x10d0b1e);
    let num = |rng: &mut StdRng, scale: i32| -> String {
        let mut s = String::new();
        if rng.gen_bool(0.4) {
            s.push('-');
        }
        if rng.gen_bool(0.1) {
            s.push_str("0x");
            for _ in 0..rng.gen_range(1..20) {
                s.push(char::from_digit(rng.gen_range(0..16), 16).unwrap());
            }
            s.push_str(&format!("p{}", rng.gen_range(-80..80)));
            return s;
        }
        for _ in 0..rng.gen_range(1..22) {
            s.push(char::from(b'0' + rng.gen_range(0..10)));
        }
        if rng.gen_bool(0.7) {
            s.push('.');
            for _ in 0..rng.gen_range(0..22) {
                s.push(char::from(b'0' + rng.gen_range(0..10)));
            }
        }
        let e = match rng.gen_range(0..10) {
            0 => rng.gen_range(-4960..4940),
            1..=3 => rng.gen_range(-30..30),
            _ => scale,
        };
        if e != 0 {
            s.push_str(&format!("e{e}"));
        }
        s
    };
    for _ in 0..250 {
        let scale = rng.gen_range(-25..25);
        let start = num(&mut rng, scale);
        d.check(&["SET", "x", &start]);
        for _ in 0..3 {
            let step = num(&mut rng, scale);
            d.check(&["INCRBYFLOAT", "x", &step]);
        }
        d.check(&["GET", "x"]);
    }
}
