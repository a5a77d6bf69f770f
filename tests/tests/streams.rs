//! Differential tests of streams against a real redis-server (replies and
//! errors must be identical, RESP2 and RESP3), blocking reads, and the
//! effects that rebuild streams and consumer groups on replay.

use std::time::Duration;

use memlog_tests::{assert_effects_rebuild, Differential, RawConn, RespValue};

const BASIC: &str = "FLUSHALL
     XADD s 1-1 a 1 b 2
     XADD s 1-1 a 1
     XADD s 1-* a 2
     XADD s 2 a 3
     XADD s 0-0 a 1
     XADD s 0-* a 1
     XADD s 3-0 a
     XADD s NOMKSTREAM 4-0 a 1
     XADD nostream NOMKSTREAM * a 1
     EXISTS nostream
     XADD s MAXLEN 2 5-0 a 5
     XADD s MAXLEN = 2 MINID 1 6-0 a 5
     XADD s LIMIT 5 7-0 a 5
     XADD s MAXLEN x 7-0 a 5
     XADD s MAXLEN -1 7-0 a 5
     XADD s MINID bad 7-0 a 5
     XADD s bad-id a 5
     XADD s 7-0 a
     XLEN s
     XRANGE s - +
     XRANGE s (1-2 +
     XRANGE s - + COUNT 1
     XRANGE s - + COUNT 0
     XRANGE s - + COUNT -1
     XRANGE s - + COUNT x
     XRANGE s - + BOGUS
     XRANGE s 6 6
     XRANGE s 5 +
     XRANGE s + -
     XREVRANGE s + -
     XREVRANGE s + - COUNT 1
     XREVRANGE s (6-0 -
     XRANGE s (18446744073709551615-18446744073709551615 +
     XRANGE s - (0-0
     XRANGE s x +
     XRANGE s (- +
     XRANGE nokey - +
     XDEL s 5-0 99-0
     XDEL s bad
     XDEL nokey 1-1
     XLEN s
     XTRIM s
     XTRIM s LIMIT 10 MAXLEN 1
     XTRIM s MAXLEN = 1 LIMIT 10
     XTRIM s MAXLEN ~ 1 LIMIT -1
     XTRIM s MAXLEN -1
     XTRIM s MAXLEN 1 MINID 1
     XTRIM s BOGUS 1
     XTRIM nokey MAXLEN 1
     XTRIM s MAXLEN 0
     XLEN s
     EXISTS s
     XSETID s 1-0
     XSETID s 100-0 ENTRIESADDED 1 MAXDELETEDID 200-0
     XSETID s 100-0 ENTRIESADDED -1
     XSETID s 100-0 BOGUS
     XSETID nokey 1-1
     XSETID s 100-0 ENTRIESADDED 50 MAXDELETEDID 3-0
     XADD s 100-0 a 1
     XADD s 100-* a 1
     XADD s 100-* a 2
     XREAD STREAMS s 0
     XREAD COUNT 1 STREAMS s nokey 0 0
     XREAD STREAMS s $
     XREAD STREAMS s
     XREAD STREAMS s nokey 0
     XREAD GROUP g c STREAMS s 0
     XREAD NOACK STREAMS s 0
     XREAD STREAMS s >
     XREAD BLOCK -1 STREAMS s 0
     XREAD BLOCK x STREAMS s 0
     XREAD STREAMS s 0-x
     XREAD COUNT 1 BLOCK 0 STREAMS s 0
     XREAD BOGUS STREAMS s 0
     SET str x
     XADD str * a 1
     XLEN str
     XRANGE str - +
     XREAD STREAMS str 0
     XDEL str 1-1
     XTRIM str MAXLEN 1
     XSETID str 1-1
     TYPE s
     OBJECT ENCODING s
     XADD y 18446744073709551615-18446744073709551614 a 1
     XADD y 18446744073709551615-* a 1
     XADD y 18446744073709551615-* a 1
     XADD y * a 1
     XADD z
     XADD z *
     XADD z * a
     XADD z * a 1 b
     DEL s";

const GROUPS: &str = "XADD s 1-1 a 1
     XADD s 2-1 b 2
     XADD s 3-1 c 3
     XGROUP CREATE s g 0
     XGROUP CREATE s g 0
     XGROUP CREATE nokey g 0
     XGROUP CREATE nokey g $ MKSTREAM
     XGROUP CREATE s g2 $ ENTRIESREAD 3
     XGROUP CREATE s g3 0 ENTRIESREAD -2
     XGROUP CREATE s g4 0 BOGUS
     XGROUP CREATE s
     XGROUP BOGUS s g
     XGROUP SETID s nogroup 0
     XGROUP SETID s g2 0 ENTRIESREAD 0
     XGROUP CREATECONSUMER s g alice
     XGROUP CREATECONSUMER s g alice
     XGROUP CREATECONSUMER s nogroup alice
     XINFO GROUPS s
     XREADGROUP GROUP g alice COUNT 1 STREAMS s >
     XREADGROUP GROUP g bob STREAMS s >
     XREADGROUP GROUP g bob STREAMS s >
     XREADGROUP GROUP g alice STREAMS s 0
     XREADGROUP GROUP g alice STREAMS s 2
     XREADGROUP GROUP g alice STREAMS s 2-1
     XREADGROUP GROUP g alice STREAMS s 1-1
     XREADGROUP GROUP nog alice STREAMS s >
     XREADGROUP GROUP g alice STREAMS s $
     XREADGROUP GROUP g alice STREAMS nokey >
     XREADGROUP STREAMS s >
     XREADGROUP GROUP g alice NOACK STREAMS s >
     XINFO GROUPS s
     XPENDING s g
     XPENDING s g - + 10 nobody
     XPENDING s nog
     XPENDING s g - +
     XPENDING s g IDLE 0 - + 10 x y
     XACK s g 1-1 9-9
     XACK s g bad
     XACK s nog 1-1
     XPENDING s g
     XDEL s 2-1
     XINFO GROUPS s
     XCLAIM s g carol 0 2-1 3-1 JUSTID
     XCLAIM s g carol 0 3-1 RETRYCOUNT 7 JUSTID
     XCLAIM s g carol 0 3-1 BOGUS
     XCLAIM s nog carol 0 3-1
     XCLAIM s g carol x 3-1
     XADD s 4-1 d 4
     XCLAIM s g dave 0 4-1 FORCE JUSTID LASTID 4-1
     XINFO GROUPS s
     XAUTOCLAIM s g erin 0 0 COUNT 1 JUSTID
     XAUTOCLAIM s g erin 0 0 JUSTID
     XAUTOCLAIM s g erin 0 0 COUNT 0
     XAUTOCLAIM s nog erin 0 0
     XGROUP DELCONSUMER s g erin
     XGROUP DELCONSUMER s g nobody
     XGROUP DESTROY s g2
     XGROUP DESTROY s g2
     XINFO GROUPS s
     XINFO STREAM s
     XINFO STREAM nokey
     XINFO STREAM s FULL COUNT x
     XINFO STREAM s BOGUS
     XINFO CONSUMERS s nog
     XINFO BOGUS s
     XINFO HELP
     XGROUP HELP
     SET str x
     XINFO STREAM str
     XGROUP CREATE str g 0
     XREADGROUP GROUP g c STREAMS str >";

#[test]
fn stream_commands_match_redis() {
    let mut d = Differential::start().expect("servers start");
    d.script(BASIC);
    d.script(GROUPS);
    // The extended form, idle times (milliseconds since delivery) zeroed.
    let without_idle = |v: RespValue| match v {
        RespValue::Array(rows) => RespValue::Array(
            rows.into_iter()
                .map(|r| match r {
                    RespValue::Array(mut f) if f.len() == 4 => {
                        f[2] = RespValue::Int(0);
                        RespValue::Array(f)
                    }
                    other => other,
                })
                .collect(),
        ),
        other => other,
    };
    d.script(
        "XADD p 1-1 f v
         XADD p 2-1 f v
         XADD p 3-1 f v
         XGROUP CREATE p g 0
         XREADGROUP GROUP g alice STREAMS p >
         XCLAIM p g carol 0 2-1 JUSTID",
    );
    for cmd in [
        &["XPENDING", "p", "g", "-", "+", "10"][..],
        &["XPENDING", "p", "g", "-", "+", "10", "carol"],
        &["XPENDING", "p", "g", "IDLE", "0", "(1-1", "+", "1"],
    ] {
        let (a, b) = d.both(cmd);
        assert!(
            matches!(&a, RespValue::Array(rows) if !rows.is_empty()),
            "{cmd:?}: {a:?}"
        );
        assert_eq!(without_idle(a), without_idle(b), "{cmd:?}");
    }
    // Approximate trimming drops whole nodes of stream-node-max-entries.
    d.check(&["DEL", "t"]);
    for i in 1..=1000 {
        let id = format!("{i}-1");
        let v = i.to_string();
        d.check(&["XADD", "t", "MAXLEN", "~", "555", &id, "xitem", &v]);
    }
    d.script(
        "XLEN t
         XINFO STREAM t
         XTRIM t MAXLEN ~ 400
         XLEN t
         XTRIM t MINID ~ 900
         XLEN t
         XTRIM t MAXLEN ~ 10 LIMIT 100
         XLEN t
         XTRIM t MAXLEN 7
         XRANGE t - +
         XINFO STREAM t
         CONFIG SET stream-node-max-entries 10
         XADD t MAXLEN ~ 5 2000-1 f v
         XLEN t",
    );
    d.check(&["CONFIG", "SET", "stream-node-max-entries", "100"]);
    // RESP3: XREAD answers a map.
    d.both(&["HELLO", "3"]);
    d.script(
        "XADD r3 1-1 f v
         XREAD STREAMS r3 0
         XINFO STREAM r3
         XINFO STREAM r3 FULL
         XGROUP CREATE r3 g 0
         XREADGROUP GROUP g c STREAMS r3 >
         XINFO GROUPS r3",
    );
}

/// An XREAD/XREADGROUP reply (RESP2) of one entry with one field.
fn one_entry_read(key: &str, id: &str, field: &str, value: &str) -> RespValue {
    let bulk = |s: &str| RespValue::Bulk(s.as_bytes().to_vec());
    RespValue::Array(vec![RespValue::Array(vec![
        bulk(key),
        RespValue::Array(vec![RespValue::Array(vec![
            bulk(id),
            RespValue::Array(vec![bulk(field), bulk(value)]),
        ])]),
    ])])
}

/// XREAD and XREADGROUP BLOCK: served by a later XADD, `$` meaning the
/// stream's end when the read blocked, timeouts answering a null array.
#[test]
fn blocking_stream_reads_are_served_by_xadd() {
    let d = Differential::start().expect("servers start");
    for port in [d.memlog.port, d.redis.port] {
        let mut w = RawConn::connect(port).expect("connect");
        let mut r = RawConn::connect(port).expect("connect");
        w.call(&["XADD", "b", "1-1", "f", "v"]).unwrap();
        r.send(&["XREAD", "BLOCK", "0", "STREAMS", "b", "$"])
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        w.call(&["XADD", "b", "2-1", "f", "new"]).unwrap();
        let got = r.read().unwrap();
        assert_eq!(got, one_entry_read("b", "2-1", "f", "new"), "port {port}");
        assert_eq!(
            r.call(&["XREAD", "BLOCK", "50", "STREAMS", "b", "$"])
                .unwrap(),
            RespValue::NullArray,
            "port {port}"
        );
        w.call(&["XGROUP", "CREATE", "b", "g", "$"]).unwrap();
        r.send(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "b",
            ">",
        ])
        .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        w.call(&["XADD", "b", "3-1", "f", "grouped"]).unwrap();
        let got = r.read().unwrap();
        assert_eq!(
            got,
            one_entry_read("b", "3-1", "f", "grouped"),
            "port {port}"
        );
        let pending = w.call(&["XPENDING", "b", "g"]).unwrap();
        assert!(
            format!("{pending:?}").starts_with("Array([Int(1)"),
            "port {port}: {pending:?}"
        );
    }
}

#[test]
fn stream_effects_rebuild_the_same_streams() {
    let mut cmds: Vec<Vec<String>> = Vec::new();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    cmds.push(s(&["XADD", "s", "*", "a", "1"]));
    cmds.push(s(&["XADD", "s", "*", "a", "2"]));
    cmds.push(s(&["XADD", "s", "5-*", "a", "3"]));
    for i in 0..300 {
        cmds.push(vec![
            "XADD".into(),
            "s".into(),
            "MAXLEN".into(),
            "~".into(),
            "120".into(),
            "*".into(),
            "i".into(),
            i.to_string(),
        ]);
    }
    cmds.push(s(&["XTRIM", "s", "MINID", "~", "0-0"]));
    cmds.push(s(&["XGROUP", "CREATE", "s", "g", "0"]));
    cmds.push(s(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "COUNT",
        "5",
        "STREAMS",
        "s",
        ">",
    ]));
    cmds.push(s(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "bob",
        "COUNT",
        "5",
        "NOACK",
        "STREAMS",
        "s",
        ">",
    ]));
    cmds.push(s(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "alice",
        "STREAMS",
        "s",
        "0",
    ]));
    cmds.push(s(&["XGROUP", "CREATECONSUMER", "s", "g", "carol"]));
    cmds.push(s(&[
        "XREADGROUP",
        "GROUP",
        "g",
        "dave",
        "COUNT",
        "2",
        "STREAMS",
        "s",
        ">",
    ]));
    cmds.push(s(&[
        "XCLAIM",
        "s",
        "g",
        "carol",
        "0",
        "0-1",
        "9999999999999-0",
    ]));
    cmds.push(s(&["XAUTOCLAIM", "s", "g", "erin", "0", "0", "COUNT", "3"]));
    cmds.push(s(&["XACK", "s", "g", "0-1"]));
    cmds.push(s(&["XDEL", "s", "5-0"]));
    cmds.push(s(&["XSETID", "s", "99999999999999-0"]));
    cmds.push(s(&["XGROUP", "DELCONSUMER", "s", "g", "bob"]));
    cmds.push(s(&["XGROUP", "CREATE", "e", "g", "$", "MKSTREAM"]));
    let refs: Vec<Vec<&str>> = cmds
        .iter()
        .map(|c| c.iter().map(String::as_str).collect())
        .collect();
    let slices: Vec<&[&str]> = refs.iter().map(Vec::as_slice).collect();
    assert_effects_rebuild(&slices);
}

/// Random stream commands from a vocabulary of valid and invalid
/// arguments: memlog answers each as redis-server does (errors included,
/// nothing time-dependent asked for), and never fails to answer.
#[test]
fn random_stream_commands_match_redis() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut d = Differential::start().expect("servers start");
    let mut rng = StdRng::seed_from_u64(0x57e4);
    let keys = ["s1", "s2", "str"];
    d.check(&["SET", "str", "x"]);
    let ids = [
        "0",
        "0-0",
        "1",
        "1-1",
        "2-0",
        "3-5",
        "5",
        "-",
        "+",
        "(1-1",
        "(5",
        "$",
        ">",
        "9-*",
        "x",
        "18446744073709551615-18446744073709551615",
        "-1",
    ];
    let words = [
        "MAXLEN",
        "MINID",
        "~",
        "=",
        "LIMIT",
        "NOMKSTREAM",
        "COUNT",
        "STREAMS",
        "GROUP",
        "NOACK",
        "JUSTID",
        "FORCE",
        "LASTID",
        "RETRYCOUNT",
        "MKSTREAM",
        "ENTRIESREAD",
        "0",
        "1",
        "2",
        "10",
        "-1",
        "f",
        "v",
        "g",
        "c",
    ];
    for _ in 0..3000 {
        let key = keys[rng.gen_range(0..keys.len())];
        let id = |rng: &mut StdRng| ids[rng.gen_range(0..ids.len())].to_string();
        let word = |rng: &mut StdRng| words[rng.gen_range(0..words.len())].to_string();
        let mut cmd: Vec<String> = match rng.gen_range(0..14) {
            0..=3 => {
                let mut c = vec!["XADD".to_string(), key.into()];
                if rng.gen_bool(0.3) {
                    c.extend([word(&mut rng), word(&mut rng)]);
                }
                c.push(if rng.gen_bool(0.5) {
                    format!("{}-{}", rng.gen_range(1..50), rng.gen_range(0..3))
                } else {
                    id(&mut rng)
                });
                c.extend(["f".into(), rng.gen_range(0..5).to_string()]);
                c
            }
            4 => vec!["XRANGE".into(), key.into(), id(&mut rng), id(&mut rng)],
            5 => vec![
                "XREVRANGE".into(),
                key.into(),
                id(&mut rng),
                id(&mut rng),
                "COUNT".into(),
                rng.gen_range(0..4).to_string(),
            ],
            6 => vec!["XDEL".into(), key.into(), id(&mut rng), id(&mut rng)],
            7 => vec![
                "XTRIM".into(),
                key.into(),
                word(&mut rng),
                word(&mut rng),
                word(&mut rng),
            ],
            8 => vec![
                "XGROUP".into(),
                "CREATE".into(),
                key.into(),
                "g".into(),
                id(&mut rng),
                word(&mut rng),
            ],
            9 => vec![
                "XREADGROUP".into(),
                "GROUP".into(),
                "g".into(),
                word(&mut rng),
                "STREAMS".into(),
                key.into(),
                id(&mut rng),
            ],
            10 => vec!["XACK".into(), key.into(), "g".into(), id(&mut rng)],
            11 => vec![
                "XCLAIM".into(),
                key.into(),
                "g".into(),
                "c".into(),
                "0".into(),
                id(&mut rng),
                "JUSTID".into(),
                word(&mut rng),
            ],
            12 => vec![
                "XSETID".into(),
                key.into(),
                id(&mut rng),
                word(&mut rng),
                word(&mut rng),
            ],
            _ => vec!["XINFO".into(), "STREAM".into(), key.into()],
        };
        if rng.gen_bool(0.05) {
            cmd.push(word(&mut rng));
        }
        d.check(&cmd);
    }
    d.check(&["XLEN", "s1"]);
}

/// Node bookkeeping against Redis' radix tree of listpacks: small nodes,
/// random IDs, deletions and trims, then XINFO STREAM's node counts
/// (radix-tree-keys, radix-tree-nodes) and the approximate trims' results.
#[test]
fn stream_nodes_match_redis() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    let mut d = Differential::start().expect("servers start");
    let mut rng = StdRng::seed_from_u64(0x40de);
    for _ in 0..20 {
        let per_node = rng.gen_range(1..6).to_string();
        d.check(&["CONFIG", "SET", "stream-node-max-entries", &per_node]);
        d.check(&["DEL", "n"]);
        let mut ms: u64 = rng.gen_range(0..1u64 << 40);
        for _ in 0..rng.gen_range(1..200) {
            // IDs spread over very different magnitudes: many radix splits.
            ms += 1 << rng.gen_range(0..40);
            let id = format!("{ms}-{}", rng.gen_range(0..3));
            let value = "v".repeat(rng.gen_range(0..40));
            d.check(&["XADD", "n", &id, "f", &value]);
            match rng.gen_range(0..10) {
                0 => {
                    d.check(&[
                        "XTRIM",
                        "n",
                        "MAXLEN",
                        "~",
                        &rng.gen_range(0..50).to_string(),
                    ]);
                }
                1 => {
                    d.check(&["XDEL", "n", &id]);
                }
                _ => {}
            }
        }
        d.check(&["XINFO", "STREAM", "n"]);
        d.check(&["XTRIM", "n", "MINID", "~", &format!("{}", ms / 2)]);
        d.check(&["XINFO", "STREAM", "n"]);
    }
    d.check(&["CONFIG", "SET", "stream-node-max-entries", "100"]);
}

/// An approximate MINID trim that empties the stream (the usual time-based
/// retention on a stream gone quiet: all its entries in nodes below the
/// threshold) logs a trim that empties it on replay too: it logged the
/// first ID of the emptied stream, 0-0, which trimmed nothing. XADD with a
/// MINID above its own new entry, and a LIMIT, the same.
#[test]
fn an_approximate_minid_trim_that_empties_the_stream_replays() {
    assert_effects_rebuild(&[
        &["XADD", "s", "1-0", "f", "v"],
        &["XADD", "s", "2-0", "f", "v"],
        &["XTRIM", "s", "MINID", "~", "100-0"],
        &["XADD", "t", "1-0", "f", "v"],
        &["XADD", "t", "2-0", "f", "v"],
        &["XTRIM", "t", "MINID", "~", "100-0", "LIMIT", "100"],
        &["XADD", "u", "1-0", "f", "v"],
        &["XADD", "u", "MINID", "~", "100-0", "5-0", "f", "v"],
    ]);
}

/// A delivery count one past i64::MAX (RETRYCOUNT 9223372036854775807 and
/// one more delivery) is logged as it is, and replay takes it back: it
/// answered "Invalid RETRYCOUNT" there, and the rest of the record went.
#[test]
fn a_delivery_count_past_i64_max_replays() {
    assert_effects_rebuild(&[
        &["XADD", "s", "1-0", "f", "v"],
        &["XGROUP", "CREATE", "s", "g", "0"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
        &[
            "XCLAIM",
            "s",
            "g",
            "c",
            "0",
            "1-0",
            "RETRYCOUNT",
            "9223372036854775807",
        ],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "0"],
    ]);
}

/// XCLAIM ... FORCE of an entry nobody has pending claims it whatever its
/// idle time, also when a consumer is named "" (the mark of a pending entry
/// without one): it was left pending for nobody, unlogged, and a snapshot
/// of the stream then failed to restore.
#[test]
fn xclaim_force_claims_beside_a_consumer_named_empty() {
    assert_effects_rebuild(&[
        &["XADD", "s", "1-0", "f", "v"],
        &["XGROUP", "CREATE", "s", "g", "$"],
        &["XGROUP", "CREATECONSUMER", "s", "g", ""],
        &["XCLAIM", "s", "g", "alice", "1000", "1-0", "FORCE"],
    ]);
}
