//! Differential tests of the HyperLogLog family against a real redis-server:
//! replies, errors and the sketches' bytes (GET) must be identical.

use memlog_tests::{assert_effects_rebuild, Differential, RespValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const BASIC: &str = "FLUSHALL
     PFADD h
     GET h
     PFCOUNT h
     GET h
     PFADD h a b c d e f g
     PFADD h a b c
     PFADD h foo bar zap
     PFADD h ''
     GET h
     PFCOUNT h
     GET h
     PFCOUNT nokey
     PFCOUNT h nokey
     PFDEBUG ENCODING h
     PFDEBUG DECODE h
     PFDEBUG decode h
     PFDEBUG GETREG nokey
     PFDEBUG NOSUCH h
     PFDEBUG ENCODING
     PFDEBUG ENCODING h extra
     PFADD h2 1 2 3 4 5 6 7 8 9 10 11 12
     PFMERGE h3 h h2
     GET h3
     PFCOUNT h3
     PFCOUNT h h2
     PFMERGE h3
     PFMERGE h4
     GET h4
     PFDEBUG TODENSE h2
     PFDEBUG TODENSE h2
     PFDEBUG ENCODING h2
     PFDEBUG DECODE h2
     PFMERGE h5 h h2
     PFDEBUG ENCODING h5
     GET h5
     PFCOUNT h5
     GET h5
     SET s hello
     PFADD s a
     PFCOUNT s
     PFCOUNT s h
     PFMERGE s h
     PFMERGE h s
     PFDEBUG ENCODING s
     RPUSH l a
     PFADD l a
     PFCOUNT l
     PFCOUNT h l
     PFMERGE h l
     PFMERGE l h
     PFADD
     PFCOUNT
     PFMERGE
     PFSELFTEST x
     SET i 12345678901234567890
     PFCOUNT i
     EXPIRE h 100
     PFADD h new-element
     TTL h
     OBJECT ENCODING h
     TYPE h";

#[test]
fn hyperloglog_commands_match_redis() {
    let mut d = Differential::start().expect("servers start");
    d.script(&BASIC.replace("''", "\"\""));
    // The empty element: the script splits on whitespace, so send it apart.
    d.check(&["DEL", "e"]);
    d.check(&["PFADD", "e", ""]);
    d.check(&["PFADD", "e", ""]);
    d.check(&["GET", "e"]);
    d.check(&["PFCOUNT", "e"]);
}

#[test]
fn corrupted_sketches_get_redis_errors() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "PFADD h a b c
         APPEND h hello
         PFCOUNT h
         PFADD h x
         DEL h
         PFADD h a b c
         SETRANGE h 0 0123
         PFCOUNT h
         PFADD h a
         DEL h
         PFADD h a b c
         SETRANGE h 4 x
         PFCOUNT h
         DEL h
         PFADD h a b c
         PFDEBUG TODENSE h
         SETRANGE h 12304 x
         PFCOUNT h
         DEL h
         PFADD h a b c
         GETRANGE h 0 3",
    );
    d.check(&["SETRANGE", "h", "4", "\x00"]);
    d.check(&["PFCOUNT", "h"]);
    // Random damage: both servers must agree on the error (or the count).
    let mut rng = StdRng::seed_from_u64(7);
    for round in 0..300 {
        d.check(&["DEL", "h"]);
        let n = rng.gen_range(0..400);
        let items: Vec<String> = (0..n).map(|i| format!("{round}-{i}")).collect();
        let mut add = vec!["PFADD".to_string(), "h".into()];
        add.extend(items);
        d.check(&add);
        let len = match d.check(&["STRLEN", "h"]) {
            RespValue::Int(n) => n,
            other => panic!("STRLEN answered {other:?}"),
        };
        for _ in 0..rng.gen_range(1..4) {
            let pos = rng.gen_range(0..len).to_string();
            let byte = [rng.gen::<u8>()];
            d.check(&[
                b"SETRANGE".as_slice(),
                b"h",
                pos.as_bytes(),
                byte.as_slice(),
            ]);
        }
        d.check(&["PFCOUNT", "h"]);
        d.check(&["PFCOUNT", "h", "nokey"]);
        d.check(&["PFMERGE", "dst", "h"]);
    }
}

/// Random adds across the sparse-to-dense boundary and merges of every
/// encoding mix; after each step the strings themselves are compared.
#[test]
fn sketches_are_byte_identical_to_redis() {
    let mut d = Differential::start().expect("servers start");
    let mut rng = StdRng::seed_from_u64(42);
    for limit in ["3000", "200", "12000"] {
        d.check(&["CONFIG", "SET", "hll-sparse-max-bytes", limit]);
        d.check(&["FLUSHALL"]);
        for step in 0..60 {
            let key = format!("k{}", rng.gen_range(0..4));
            let n = rng.gen_range(1..if step % 7 == 0 { 800 } else { 40 });
            let mut add = vec!["PFADD".to_string(), key.clone()];
            add.extend((0..n).map(|_| rng.gen_range(0..5000u32).to_string()));
            d.check(&add);
            d.check(&["GET", &key]);
            d.check(&["PFDEBUG", "ENCODING", &key]);
            d.check(&["PFCOUNT", &key]);
            d.check(&["GET", &key]);
            if step % 5 == 0 {
                let dst = format!("m{}", rng.gen_range(0..2));
                d.check(&["PFMERGE", &dst, "k0", "k1", "k2", "k3"]);
                d.check(&["GET", &dst]);
                d.check(&["PFCOUNT", "k0", "k1", "k2"]);
            }
            if step % 11 == 0 {
                d.check(&["PFDEBUG", "TODENSE", &key]);
                d.check(&["GET", &key]);
            }
        }
        d.check(&["PFDEBUG", "GETREG", "k0"]);
    }
    d.check(&["CONFIG", "SET", "hll-sparse-max-bytes", "3000"]);
}

#[test]
fn pfselftest_passes() {
    let mut d = Differential::start().expect("servers start");
    d.check(&["PFSELFTEST"]);
}

/// The log replays to the same bytes, also when this server's sparse limit
/// differs from the default that replay uses.
#[test]
fn hyperloglog_effects_rebuild_the_same_strings() {
    let elems: Vec<String> = (0..600).map(|i| format!("e{i}")).collect();
    let mut big: Vec<&str> = vec!["PFADD", "big"];
    big.extend(elems.iter().map(String::as_str));
    let mut big2 = big.clone();
    big2[1] = "big2";
    let cmds: Vec<&[&str]> = vec![
        &["PFADD", "a", "x", "y", "z"],
        &["PFCOUNT", "a"],
        &["PFADD", "b"],
        &["PFDEBUG", "TODENSE", "b"],
        &["PFADD", "b", "q"],
        &["PFMERGE", "c", "a", "b"],
        &["PFCOUNT", "c"],
        &big,
        &["CONFIG", "SET", "hll-sparse-max-bytes", "100"],
        &big2,
        &[
            "PFADD", "small", "1", "2", "3", "4", "5", "6", "7", "8", "9",
        ],
        &[
            "PFADD", "small", "10", "11", "12", "13", "14", "15", "16", "17",
        ],
        &["PFMERGE", "d", "a", "small"],
        &["PFCOUNT", "d"],
        &["PFCOUNT", "a", "d"],
    ];
    assert_effects_rebuild(&cmds);
}
