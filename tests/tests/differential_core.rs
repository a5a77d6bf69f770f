//! Differential tests of the engine core against a real redis-server:
//! connection commands, arity and unknown-command errors, SET options,
//! transactions and pub/sub framing.

use memlog_tests::{Differential, RawConn, RespValue};

#[test]
fn connection_and_errors() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "PING
         PING hello
         PING a b
         ECHO x
         ECHO
         SELECT 3
         SELECT 16
         SELECT -1
         SELECT abc
         SELECT 0
         NOSUCHCOMMAND a b c
         GET
         GET a b
         FLUSHALL
         DBSIZE",
    );
}

#[test]
fn wait_without_replicas() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "SET k v
         WAIT 0 0
         WAIT -5 10
         WAIT 1 20
         WAIT a 0
         WAIT 0 a
         WAIT 0 1.5
         WAIT 0 -1
         WAIT 1
         MULTI
         WAIT 1 0
         EXEC",
    );
    // Asked for a replica, WAIT 0 blocks until CLIENT UNBLOCK, which
    // answers as a timeout would: 0 replicas.
    for port in [d.memlog.port, d.redis.port] {
        let mut waiter = RawConn::connect(port).expect("connect");
        let RespValue::Int(id) = waiter.call(&["CLIENT", "ID"]).expect("id") else {
            panic!("CLIENT ID");
        };
        waiter.send(&["WAIT", "1", "0"]).expect("send");
        let mut other = RawConn::connect(port).expect("connect");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let r = other
                .call(&["CLIENT", "UNBLOCK", &id.to_string()])
                .expect("unblock");
            if r == RespValue::Int(1) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "WAIT never blocked");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(waiter.read().expect("reply"), RespValue::Int(0));
    }
}

#[test]
fn set_options() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         SET k v
         GET k
         SET k v2 NX
         SET k v3 XX
         GET k
         SET k v4 GET
         SET nokey v GET
         SET k v EX 0
         SET k v EX -1
         SET k v EX abc
         SET k v PX 100 EX 100
         SET k v KEEPTTL EX 10
         SET k v NX XX
         SET k v BADOPT
         SET k v EX 100
         SET k v2 KEEPTTL
         GET k
         LPUSH l a
         SET l v GET
         GET l
         DEL k l nokey
         EXISTS k l
         TYPE k",
    );
}

#[test]
fn transactions() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "FLUSHALL
         MULTI
         SET a 1
         LPUSH a x
         GET a
         EXEC
         EXEC
         DISCARD
         MULTI
         MULTI
         WATCH x
         NOSUCH
         EXEC
         MULTI
         SET a 1
         GET a b c
         EXEC
         WATCH a
         SET a 2
         MULTI
         GET a
         EXEC
         WATCH a
         MULTI
         GET a
         EXEC
         EXEC x
         MULTI
         SET a 3
         EXEC now
         GET a
         WATCH a
         MULTI
         EXEC x
         SET a 4
         MULTI
         GET a
         EXEC",
    );
}

#[test]
fn pubsub_framing_resp2() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "SUBSCRIBE ch1 ch2
         PSUBSCRIBE p*
         GET x
         PING
         UNSUBSCRIBE ch1
         PUNSUBSCRIBE
         UNSUBSCRIBE",
    );
    // Shard channels: counted apart, a namespace of their own; refused
    // inside EXEC.
    d.script(
        "SSUBSCRIBE s1 s2
         SSUBSCRIBE s1
         SUBSCRIBE c1
         PING
         GET x
         PUBSUB SHARDNUMSUB s1 s2 s3
         SUNSUBSCRIBE s1
         SUNSUBSCRIBE
         UNSUBSCRIBE
         SUNSUBSCRIBE
         SPUBLISH s1 m
         PUBSUB SHARDCHANNELS
         MULTI
         SSUBSCRIBE s3
         EXEC
         COMMAND GETKEYS SSUBSCRIBE a b
         COMMAND GETKEYS SPUBLISH a m
         PUBSUB NUMSUB",
    );
    // Inside MULTI they subscribe at EXEC, confirmed in its reply.
    d.script(
        "MULTI
         SUBSCRIBE m1
         PSUBSCRIBE mp*
         EXEC
         PING
         UNSUBSCRIBE
         PUNSUBSCRIBE",
    );
}

#[test]
fn publish_reaches_subscribers() {
    let server = memlog_tests::MemlogServer::start(&[]).expect("memlog starts");
    let mut sub = RawConn::connect(server.port).unwrap();
    let mut publisher = RawConn::connect(server.port).unwrap();
    sub.call(&["SUBSCRIBE", "news"]).unwrap();
    sub.call(&["PSUBSCRIBE", "n*"]).unwrap();
    assert_eq!(
        publisher.call(&["PUBLISH", "news", "hi"]).unwrap(),
        RespValue::Int(2)
    );
    let m1 = sub.read().unwrap();
    let m2 = sub.read().unwrap();
    assert_eq!(
        m1,
        RespValue::Array(vec![
            RespValue::Bulk(b"message".to_vec()),
            RespValue::Bulk(b"news".to_vec()),
            RespValue::Bulk(b"hi".to_vec()),
        ])
    );
    assert_eq!(
        m2,
        RespValue::Array(vec![
            RespValue::Bulk(b"pmessage".to_vec()),
            RespValue::Bulk(b"n*".to_vec()),
            RespValue::Bulk(b"news".to_vec()),
            RespValue::Bulk(b"hi".to_vec()),
        ])
    );
}

/// SPUBLISH reaches the shard channel's subscribers (`smessage`), and
/// only them: a plain subscriber of the same name is another namespace.
#[test]
fn spublish_reaches_shard_subscribers() {
    let d = Differential::start().expect("servers start");
    for port in [d.memlog.port, d.redis.port] {
        let mut shard = RawConn::connect(port).unwrap();
        let mut plain = RawConn::connect(port).unwrap();
        let mut publisher = RawConn::connect(port).unwrap();
        shard.call(&["SSUBSCRIBE", "orders"]).unwrap();
        plain.call(&["SUBSCRIBE", "orders"]).unwrap();
        assert_eq!(
            publisher.call(&["SPUBLISH", "orders", "o1"]).unwrap(),
            RespValue::Int(1),
            "port {port}"
        );
        assert_eq!(
            shard.read().unwrap(),
            RespValue::Array(vec![
                RespValue::Bulk(b"smessage".to_vec()),
                RespValue::Bulk(b"orders".to_vec()),
                RespValue::Bulk(b"o1".to_vec()),
            ]),
            "port {port}"
        );
        // The plain subscriber got nothing: the next thing it reads is
        // the PUBLISH below.
        assert_eq!(
            publisher.call(&["PUBLISH", "orders", "p1"]).unwrap(),
            RespValue::Int(1)
        );
        assert_eq!(
            plain.read().unwrap(),
            RespValue::Array(vec![
                RespValue::Bulk(b"message".to_vec()),
                RespValue::Bulk(b"orders".to_vec()),
                RespValue::Bulk(b"p1".to_vec()),
            ]),
            "port {port}"
        );
        assert_eq!(
            publisher
                .call(&["PUBSUB", "SHARDNUMSUB", "orders"])
                .unwrap(),
            RespValue::Array(vec![RespValue::Bulk(b"orders".to_vec()), RespValue::Int(1)])
        );
        drop(shard);
        drop(plain);
    }
}

/// A client that closes its connection is gone for commands that other
/// connections send after the close, as in Redis, whose event loop takes
/// ready sockets in the order they became ready: PUBLISH right after a
/// subscriber hung up reaches nobody. (The Redis Tcl suite's pub/sub tests
/// rely on it; a scheduler that runs the newest woken connection first broke
/// it in about one attempt in twenty.)
#[test]
fn publish_after_a_subscriber_hangs_up_reaches_nobody() {
    let server = memlog_tests::MemlogServer::start(&[]).expect("memlog starts");
    let mut publisher = RawConn::connect(server.port).unwrap();
    // A first command on the publisher's connection: a connection the
    // server accepted but has not yet waited for events since can be ahead
    // of older ones in the kernel's ready list, right after start.
    assert_eq!(
        publisher.call(&["PUBLISH", "gone", "x"]).unwrap(),
        RespValue::Int(0)
    );
    for attempt in 0..300 {
        let mut sub = RawConn::connect(server.port).unwrap();
        assert_eq!(
            sub.call(&["SUBSCRIBE", "gone"]).unwrap(),
            RespValue::Array(vec![
                RespValue::Bulk(b"subscribe".to_vec()),
                RespValue::Bulk(b"gone".to_vec()),
                RespValue::Int(1),
            ])
        );
        drop(sub);
        assert_eq!(
            publisher.call(&["PUBLISH", "gone", "x"]).unwrap(),
            RespValue::Int(0),
            "attempt {attempt}: PUBLISH counted a subscriber that had hung up"
        );
    }
}

#[test]
fn protocol_errors_match_redis() {
    let d = Differential::start().expect("servers start");
    for raw in [
        &b"*3000000000\r\n"[..],
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n",
        b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n",
        b"*1\r\nfoo\r\n",
        b"set \"\"\"test-key\"\"\" test-value\r\nping\r\n",
    ] {
        let mut m = RawConn::connect(d.memlog.port).unwrap();
        let mut r = RawConn::connect(d.redis.port).unwrap();
        m.send_raw(raw).unwrap();
        r.send_raw(raw).unwrap();
        assert_eq!(
            m.read().unwrap(),
            r.read().unwrap(),
            "for {:?}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn blocking_pop_is_served_by_a_push() {
    let server = memlog_tests::MemlogServer::start(&[]).expect("memlog starts");
    let mut waiter = RawConn::connect(server.port).unwrap();
    let mut pusher = RawConn::connect(server.port).unwrap();
    waiter.send(&["BLPOP", "q", "0"]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    pusher.call(&["RPUSH", "q", "v"]).unwrap();
    assert_eq!(
        waiter.read().unwrap(),
        RespValue::Array(vec![
            RespValue::Bulk(b"q".to_vec()),
            RespValue::Bulk(b"v".to_vec())
        ])
    );
    assert_eq!(
        waiter.call(&["BLPOP", "q", "0.1"]).unwrap(),
        RespValue::NullArray
    );
}

/// memlog is a standalone primary to Redis clients: cluster commands are
/// refused as with `cluster-enabled no`, ROLE / REPLICAOF / FAILOVER answer
/// as a primary without replicas, and ACL shows the one default user.
#[test]
fn cluster_replication_and_acl_commands() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "CLUSTER
         CLUSTER foo
         CLUSTER INFO x
         CLUSTER INFO
         CLUSTER KEYSLOT a
         CLUSTER HELP
         READONLY
         READONLY x
         READWRITE
         ASKING
         ROLE
         ROLE x
         REPLICAOF a
         REPLICAOF no one
         SLAVEOF NO ONE
         REPLICAOF no two
         REPLICAOF 127.0.0.1 notaport
         REPLICAOF 127.0.0.1 70000
         FAILOVER
         FAILOVER x
         FAILOVER TO 127.0.0.1 1
         FAILOVER TO 127.0.0.1 x
         FAILOVER TO h
         FAILOVER ABORT
         FAILOVER TIMEOUT -1
         FAILOVER TIMEOUT abc
         FAILOVER TIMEOUT 10 TIMEOUT 10
         FAILOVER FORCE FORCE
         ACL
         ACL bogus
         ACL WHOAMI
         ACL WHOAMI x
         ACL USERS
         ACL LIST
         ACL CAT
         ACL CAT nope
         ACL CAT read x
         ACL GETUSER default
         ACL GETUSER nobody
         ACL HELP
         ACL DELUSER default
         ACL DELUSER foo bar
         ACL DELUSER foo default
         ACL LOG
         ACL LOG x
         ACL LOG -1
         ACL LOG 1 2
         ACL GENPASS 0
         ACL GENPASS 4097
         ACL GENPASS x
         ACL GENPASS 1 2
         ACL DRYRUN default get a
         ACL DRYRUN nouser get a
         ACL DRYRUN default nocmd a
         ACL DRYRUN default get
         ACL DRYRUN default GET a
         ACL LOAD
         ACL SAVE
         MULTI
         ROLE
         ACL WHOAMI
         CLUSTER INFO
         EXEC
         CONFIG GET acllog-max-len",
    );
    // RESP3 shapes (HELLO's reply holds the client id, which differs).
    d.both(&["HELLO", "3"]);
    d.script(
        "ACL GETUSER default
         ROLE
         COMMAND INFO get",
    );
    d.both(&["HELLO", "2"]);
    // Categories hold the same kind of commands (memlog has fewer).
    let RespValue::Array(read) = d.m.call(&["ACL", "CAT", "read"]).expect("cat") else {
        panic!("ACL CAT read");
    };
    assert!(read.contains(&RespValue::Bulk(b"get".to_vec())));
    assert!(!read.contains(&RespValue::Bulk(b"set".to_vec())));
    for (bits, len) in [("1", 1), ("5", 2), ("256", 64), ("4096", 1024)] {
        let (a, b) = d.both(&["ACL", "GENPASS", bits]);
        for v in [a, b] {
            let RespValue::Bulk(p) = v else {
                panic!("GENPASS {bits}");
            };
            assert_eq!(p.len(), len);
            assert!(p.iter().all(u8::is_ascii_hexdigit));
        }
    }

    // With a password: its SHA-256 in ACL LIST, failed AUTHs in ACL LOG
    // (same command, user and context within a minute count as one).
    d.script("CONFIG SET requirepass sekret");
    d.script(
        "ACL LIST
         ACL GETUSER default
         AUTH wrong
         AUTH nouser wrong
         AUTH wrong
         HELLO 2 AUTH default wrong
         AUTH sekret",
    );
    let (a, b) = d.both(&["ACL", "LOG"]);
    let stable = |v: RespValue| -> Vec<Vec<RespValue>> {
        let RespValue::Array(entries) = v else {
            panic!("ACL LOG: {v:?}");
        };
        entries
            .into_iter()
            .map(|e| {
                let RespValue::Array(fields) = e else {
                    panic!("ACL LOG entry");
                };
                // Drop age-seconds and client-info, which differ.
                fields.into_iter().take(10).collect()
            })
            .collect()
    };
    let (a, b) = (stable(a), stable(b));
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!(a, b);
    let (a, b) = d.both(&["ACL", "LOG", "1"]);
    assert_eq!(stable(a), stable(b).into_iter().take(1).collect::<Vec<_>>());
    d.script(
        "ACL LOG RESET
         ACL LOG",
    );
    d.check(&["CONFIG", "SET", "requirepass", ""]);
    d.script("ACL LIST");
}

/// SLOWLOG keeps what Redis keeps: commands at or over the threshold, EXEC
/// replaced by the commands it ran, long argument lists and values trimmed,
/// secrets redacted, a blocked command once it is served.
#[test]
fn slowlog_records_commands_as_redis_does() {
    let mut d = Differential::start().expect("servers start");
    let long = "A".repeat(129);
    let mut sadd: Vec<String> = vec!["SADD".into(), "s".into()];
    sadd.extend((0..40).map(|i| i.to_string()));
    let cmds: Vec<Vec<String>> = vec![
        vec!["CLIENT".into(), "SETNAME".into(), "slowpoke".into()],
        vec!["SET".into(), "k".into(), long.clone()],
        sadd,
        vec!["AUTH".into(), "nopass".into()],
        vec![
            "HELLO".into(),
            "2".into(),
            "AUTH".into(),
            "default".into(),
            "x".into(),
        ],
        vec![
            "CONFIG".into(),
            "SET".into(),
            "requirepass".into(),
            "pw".into(),
        ],
        vec![
            "CONFIG".into(),
            "SET".into(),
            "requirepass".into(),
            "".into(),
        ],
        vec!["MULTI".into()],
        vec!["INCR".into(), "n".into()],
        vec!["EXEC".into()],
    ];
    d.script(
        "CONFIG SET slowlog-log-slower-than 0
         SLOWLOG RESET",
    );
    for c in &cmds {
        d.both(c);
    }
    // A blocked BLPOP is logged once a push serves it.
    for port in [d.memlog.port, d.redis.port] {
        let mut waiter = RawConn::connect(port).expect("connect");
        waiter.send(&["BLPOP", "l", "0"]).expect("send");
        let mut pusher = RawConn::connect(port).expect("connect");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while pusher.call(&["CLIENT", "LIST", "TYPE", "NORMAL"]).map_or(true, |r| {
            !matches!(r, RespValue::Bulk(b) if String::from_utf8_lossy(&b).contains("cmd=blpop"))
        }) {
            assert!(std::time::Instant::now() < deadline, "BLPOP never blocked");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        pusher.call(&["RPUSH", "l", "x"]).expect("push");
        waiter.read().expect("served");
    }
    d.check(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    let (a, b) = d.both(&["SLOWLOG", "GET", "-1"]);
    // (args, client name) of each entry, newest first; ids, times,
    // durations and peers differ between the two servers.
    let shape = |v: RespValue| -> Vec<(RespValue, RespValue)> {
        let RespValue::Array(entries) = v else {
            panic!("SLOWLOG GET: {v:?}");
        };
        entries
            .into_iter()
            .map(|e| {
                let RespValue::Array(f) = e else {
                    panic!("entry");
                };
                assert_eq!(f.len(), 6);
                (f[3].clone(), f[5].clone())
            })
            .collect()
    };
    let (a, b) = (shape(a), shape(b));
    assert_eq!(a, b);
    assert!(a.len() >= cmds.len(), "{a:?}");
    d.script(
        "SLOWLOG LEN
         SLOWLOG GET -2
         SLOWLOG GET x
         SLOWLOG GET 1 2
         SLOWLOG RESET
         SLOWLOG LEN
         SLOWLOG GET
         CONFIG SET slowlog-max-len 3
         CONFIG SET slowlog-log-slower-than 0
         PING
         PING
         PING
         PING
         CONFIG SET slowlog-log-slower-than -1
         SLOWLOG LEN
         SLOWLOG RESET
         ~CONFIG GET slowlog-*",
    );
}

/// MONITOR shows the same commands as Redis: what ran, in order, with
/// transactions framed by MULTI/EXEC, passwords redacted, admin commands
/// left out; a monitoring connection may not touch the keyspace.
#[test]
fn monitor_shows_commands_as_redis_does() {
    let d = Differential::start().expect("servers start");
    let script: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"k", b"v \"q\"\r\n\x01\xff"],
        vec![b"GET", b"k"],
        vec![b"SELECT", b"2"],
        vec![b"INCR", b"n"],
        vec![b"CONFIG", b"GET", b"maxmemory"],
        vec![b"AUTH", b"secret"],
        vec![b"HELLO", b"2", b"AUTH", b"default", b"pw"],
        vec![b"MULTI"],
        vec![b"SET", b"a", b"1"],
        vec![b"EXEC"],
        vec![b"MULTI"],
        vec![b"NOSUCHCOMMAND"],
        vec![b"EXEC"],
        vec![b"BLPOP", b"l", b"0"],
    ];
    let mut seen = Vec::new();
    for port in [d.memlog.port, d.redis.port] {
        let mut mon = RawConn::connect(port).expect("connect");
        assert_eq!(
            mon.call(&["MONITOR"]).expect("monitor"),
            RespValue::Simple("OK".into())
        );
        assert!(
            matches!(mon.call(&["GET", "k"]), Ok(RespValue::Error(e)) if e == "ERR Replica can't interact with the keyspace")
        );
        let mut c = RawConn::connect(port).expect("connect");
        let mut blocked = RawConn::connect(port).expect("connect");
        for cmd in &script {
            if cmd[0] == b"BLPOP" {
                blocked.send(cmd).expect("send");
            } else {
                c.call(cmd).expect("reply");
            }
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut lines = Vec::new();
        // Until BLPOP shows up (it runs on its own connection), then a push
        // that serves it.
        loop {
            let RespValue::Simple(l) = mon.read().expect("line") else {
                panic!("MONITOR line");
            };
            assert!(std::time::Instant::now() < deadline);
            let done = l.contains("\"BLPOP\"");
            // "<time> [<db> <peer>] args": the peer's port differs.
            let (time, rest) = l.split_once(" [").expect("time");
            assert!(time.parse::<f64>().is_ok(), "{l}");
            let (db_peer, args) = rest.split_once("] ").expect("peer");
            let db = db_peer.split(' ').next().unwrap_or_default().to_string();
            lines.push(format!("{db} {args}"));
            if done {
                break;
            }
        }
        // (`c` is in database 2, BLPOP waits in 0.)
        let mut pusher = RawConn::connect(port).expect("connect");
        pusher.call(&["RPUSH", "l", "x"]).expect("push");
        blocked.read().expect("served");
        let RespValue::Simple(l) = mon.read().expect("line") else {
            panic!("MONITOR line");
        };
        lines.push(l.split_once("] ").expect("args").1.to_string());
        let list = c.call(&["CLIENT", "LIST"]).expect("list");
        assert!(
            matches!(&list, RespValue::Bulk(b) if String::from_utf8_lossy(b).contains("flags=O")),
            "{list:?}"
        );
        assert_eq!(
            mon.call(&["RESET"]).expect("reset"),
            RespValue::Simple("RESET".into())
        );
        // Out of MONITOR mode it may read the keyspace again.
        assert_eq!(mon.call(&["DBSIZE"]).expect("dbsize"), RespValue::Int(1));
        seen.push(lines);
    }
    assert_eq!(seen[0], seen[1]);
    assert!(
        seen[0].iter().any(|l| l.contains("\"(redacted)\"")),
        "{:?}",
        seen[0]
    );
}

/// A subscriber that stops reading is disconnected once what is queued for
/// it passes client-output-buffer-limit, instead of growing the server's
/// memory without bound; the limits are set and shown as in Redis.
#[test]
fn output_buffer_limit_disconnects_a_subscriber_that_stops_reading() {
    let mut d = Differential::start().expect("servers start");
    for bad in [
        "wrong number",
        "invalid_class 10mb 10mb 60",
        "master 10mb 10mb 60",
        "normal 10mbs 10mb 60",
        "replica 10mb 10mbs 60",
        "pubsub 10mb 10mb 60s",
    ] {
        d.check(&["CONFIG", "SET", "client-output-buffer-limit", bad]);
    }
    d.check(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 1mb 2mb 60 replica 3mb 4mb 70 pubsub 5mb 6mb 80",
    ]);
    d.check(&[
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "pubsub 100kb 0 0",
    ]);
    d.check(&["CONFIG", "GET", "client-output-buffer-limit"]);
    let payload = "x".repeat(4096);
    for port in [d.memlog.port, d.redis.port] {
        let mut sub = RawConn::connect(port).expect("connect");
        sub.call(&["SUBSCRIBE", "feed"]).expect("subscribe");
        // The subscriber never reads again. Loopback socket buffers take a
        // few MB before anything queues in the server.
        let mut publisher = RawConn::connect(port).expect("connect");
        let mut dropped_after = None;
        for i in 0..25_000 {
            if publisher
                .call(&["PUBLISH", "feed", &payload])
                .expect("publish")
                == RespValue::Int(0)
            {
                dropped_after = Some(i);
                break;
            }
        }
        assert!(
            dropped_after.is_some(),
            "port {port}: the subscriber was never dropped"
        );
        // The others are served as before.
        assert_eq!(
            publisher.call(&["PING"]).expect("ping"),
            RespValue::Simple("PONG".into())
        );
    }
}

/// INFO commandstats and LATENCY HISTOGRAM count subcommands apart
/// (`config|get`), and latency events are recorded past the threshold.
#[test]
fn command_latency_histograms_and_events() {
    let mut d = Differential::start().expect("servers start");
    d.script(
        "CONFIG RESETSTAT
         SET a b
         SET c d
         GET a
         CONFIG GET maxmemory
         CONFIG GET maxmemory",
    );
    d.both(&["CLIENT", "ID"]);
    // Bucket bounds depend on timing: compare names and call counts.
    let calls = |v: RespValue| -> Vec<(String, RespValue)> {
        let RespValue::Array(flat) = v else {
            panic!("LATENCY HISTOGRAM: {v:?}");
        };
        let mut out: Vec<(String, RespValue)> = flat
            .chunks(2)
            .map(|kv| {
                let RespValue::Bulk(name) = &kv[0] else {
                    panic!("name");
                };
                let RespValue::Array(h) = &kv[1] else {
                    panic!("histogram");
                };
                assert_eq!(h[2], RespValue::Bulk(b"histogram_usec".to_vec()));
                (String::from_utf8_lossy(name).into_owned(), h[1].clone())
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    for args in [
        &["LATENCY", "HISTOGRAM", "set", "get", "nosuchcommand"][..],
        &["LATENCY", "HISTOGRAM", "config"],
        &["LATENCY", "HISTOGRAM", "client|id", "config|set"],
        &["LATENCY", "HISTOGRAM", "blabla"],
    ] {
        let (a, b) = d.both(args);
        assert_eq!(calls(a), calls(b), "{args:?}");
    }
    let cmdstats = |v: RespValue| -> Vec<String> {
        let RespValue::Bulk(text) = v else {
            panic!("INFO");
        };
        String::from_utf8_lossy(&text)
            .lines()
            .filter(|l| l.starts_with("cmdstat_") && !l.starts_with("cmdstat_latency|"))
            .map(|l| l.split(",usec=").next().unwrap_or_default().to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let (a, b) = d.both(&["INFO", "commandstats"]);
    let a = cmdstats(a);
    assert!(
        a.contains(&"cmdstat_config|get:calls=2".to_string()),
        "{a:?}"
    );
    assert_eq!(a, cmdstats(b));
    let (a, _) = d.both(&["INFO", "latencystats"]);
    assert!(
        matches!(&a, RespValue::Bulk(t) if String::from_utf8_lossy(t).contains("latency_percentiles_usec_set:p50=")),
        "{a:?}"
    );

    // Latency events: a 20 ms command passes a 10 ms threshold.
    d.script(
        "CONFIG SET latency-monitor-threshold 10
         DEBUG SLEEP 0.02
         LATENCY HISTORY blabla
         LATENCY RESET blabla
         LATENCY GRAPH blabla",
    );
    let (a, b) = d.both(&["LATENCY", "LATEST"]);
    for v in [a, b] {
        let RespValue::Array(events) = v else {
            panic!("LATEST");
        };
        assert_eq!(events.len(), 1);
        let RespValue::Array(e) = &events[0] else {
            panic!("event");
        };
        assert_eq!(e[0], RespValue::Bulk(b"command".to_vec()));
        assert!(matches!(e[2], RespValue::Int(ms) if ms >= 20));
    }
    for port in [d.memlog.port, d.redis.port] {
        let mut c = RawConn::connect(port).expect("connect");
        let h = c.call(&["LATENCY", "HISTORY", "command"]).expect("history");
        assert!(matches!(h, RespValue::Array(s) if s.len() == 1));
        let g = c.call(&["LATENCY", "GRAPH", "command"]).expect("graph");
        assert!(matches!(g, RespValue::Bulk(t) if t.starts_with(b"command")));
        let doc = c.call(&["LATENCY", "DOCTOR"]).expect("doctor");
        assert!(matches!(doc, RespValue::Bulk(t) if !t.is_empty()));
    }
    d.script(
        "LATENCY RESET
         LATENCY LATEST
         CONFIG SET latency-monitor-threshold 0",
    );
}

/// Lua scripts: reply conversions both ways, errors and where they were
/// raised, read-only globals, the script cache, EVAL_RO and shebang flags.
#[test]
fn scripting_matches_redis() {
    let mut d = Differential::start().expect("servers start");
    let cases: &[&[&str]] = &[
        &["SET", "str", "hello"],
        &["EVAL", "return redis.call('incr','str')", "0"],
        &["EVAL", "return redis.pcall('incr','str')", "0"],
        &[
            "EVAL",
            "local r = redis.pcall('incr','str'); return r['err']",
            "0",
        ],
        &["EVAL", "return redis.call('nosuch')", "0"],
        &["EVAL", "return redis.pcall('nosuch')", "0"],
        // Lua's pcall / xpcall catch what redis.call raises: its message.
        &[
            "EVAL",
            "local ok, e = pcall(redis.call, 'incr', 'str'); return {type(e), e, tostring(ok)}",
            "0",
        ],
        &[
            "EVAL",
            "local ok, e = pcall(function() return redis.call('nosuch') end); return e",
            "0",
        ],
        &[
            "EVAL",
            "return {xpcall(function() redis.call('incr', 'str') end, function(e) return 'got ' .. e.err end)}",
            "0",
        ],
        &[
            "EVAL",
            "local ok, e = pcall(error, {err = 'MINE x'}); return e",
            "0",
        ],
        &[
            "EVAL",
            "pcall(redis.call, 'incr', 'str'); return redis.call('get', 'str')",
            "0",
        ],
        &["EVAL", "local ok, e = pcall(error, 'plain'); return e", "0"],
        &["EVAL", "local ok, e = pcall(error, {err = 5}); return e", "0"],
        &["EVAL", "local ok, e = pcall(redis.sha1hex); return e", "0"],
        &[
            "EVAL",
            "return {xpcall(redis.sha1hex, function(e) return type(e) end)}",
            "0",
        ],
        &[
            "EVAL",
            "local t = redis.error_reply(1); t.err = 'X'; return redis.error_reply(2)",
            "0",
        ],
        // The redis.* helpers' argument checks.
        &["EVAL", "redis.setresp(4)", "0"],
        &["EVAL", "redis.setresp()", "0"],
        &["EVAL", "redis.setresp('3') return 1", "0"],
        &["EVAL", "redis.sha1hex()", "0"],
        &["EVAL", "return redis.error_reply()", "0"],
        &["EVAL", "return redis.error_reply(5)", "0"],
        &["EVAL", "return redis.error_reply('')", "0"],
        &["EVAL", "return redis.error_reply('-')", "0"],
        &["EVAL", "redis.error_reply() return 'went on'", "0"],
        &["EVAL", "return redis.status_reply()", "0"],
        &["EVAL", "redis.log()", "0"],
        &["EVAL", "redis.log('x', 'y')", "0"],
        &["EVAL", "redis.log(99, 'x')", "0"],
        &["EVAL", "redis.log('3', 'x') return 1", "0"],
        &["EVAL", "redis.set_repl(99)", "0"],
        &["EVAL", "redis.set_repl()", "0"],
        &["EVAL", "redis.set_repl(redis.REPL_ALL) return 1", "0"],
        &["EVAL", "return redis.call('get')", "0"],
        &["EVAL", "return redis.call('subscribe','x')", "0"],
        &["EVAL", "return redis.call('blpop','nolist',0)", "0"],
        &["EVAL", "return redis.call('eval','return 1',0)", "0"],
        &["EVAL", "return redis.call('set', 'k', {})", "0"],
        &["EVAL", "return {1,2,3,'ciao',{1,2}}", "0"],
        &["EVAL", "return {1,2,nil,4}", "0"],
        &["EVAL", "return 3.99", "0"],
        &["EVAL", "return -3.99", "0"],
        &["EVAL", "return true", "0"],
        &["EVAL", "return false", "0"],
        &["EVAL", "return nil", "0"],
        &["EVAL", "return {err='My Error'}", "0"],
        &["EVAL", "return {ok='fine'}", "0"],
        &["EVAL", "return redis.error_reply('x')", "0"],
        &["EVAL", "return redis.error_reply('MY_CODE custom')", "0"],
        &["EVAL", "return redis.error_reply('-MY x')", "0"],
        &["EVAL", "return redis.status_reply('x')", "0"],
        &["EVAL", "return redis.sha1hex('')", "0"],
        &["EVAL", "return KEYS[1]..ARGV[1]", "1", "a", "b"],
        &["EVAL", "return #KEYS", "-1"],
        &["EVAL", "return #KEYS", "2", "a"],
        &["EVAL", "return #KEYS", "x"],
        &["EVAL", "syntax error here", "0"],
        &["EVAL", "error('boom')", "0"],
        &["EVAL", "error({err='custom'})", "0"],
        &["EVAL", "x = 5", "0"],
        &["EVAL", "redis = 1", "0"],
        &["EVAL", "redis.call = 1", "0"],
        &["EVAL", "setmetatable(_G, {})", "0"],
        &["EVAL", "return os", "0"],
        &["EVAL", "print('x')", "0"],
        &[
            "EVAL",
            "return loadstring(string.dump(function() return 1 end))()",
            "0",
        ],
        &[
            "EVAL",
            "return redis.call('set',KEYS[1],ARGV[1])",
            "1",
            "k",
            "v",
        ],
        &["EVAL", "return redis.call('get',KEYS[1])", "1", "k"],
        &["EVAL", "return redis.call('get','nokey')", "0"],
        &["EVAL", "return redis.call('hgetall','nokey')", "0"],
        &["EVAL", "return redis.call('set', 'k', 1.5)", "0"],
        &["GET", "k"],
        &["EVAL", "return redis.call('type','k')", "0"],
        &["EVAL", "return redis.call('type','k')['ok']", "0"],
        &[
            "EVAL",
            "redis.call('select', 3); return redis.call('set', 'in3', 'x')",
            "0",
        ],
        &["GET", "in3"],
        &["SELECT", "3"],
        &["GET", "in3"],
        &["SELECT", "0"],
        &[
            "EVAL",
            "return redis.call('lpush', KEYS[1], 'a', 'b')",
            "1",
            "l",
        ],
        &[
            "EVAL",
            "return redis.call('lrange', KEYS[1], 0, -1)",
            "1",
            "l",
        ],
        &["SADD", "set", "c", "a", "b"],
        &[
            "EVAL",
            "return redis.call('sort', KEYS[1], 'by', 'nosort')",
            "1",
            "set",
        ],
        &[
            "EVAL",
            "return string.format('%d', 5) .. table.concat({'a','b'}, ',')",
            "0",
        ],
        &["EVAL", "return tonumber('0x10')", "0"],
        &[
            "EVAL",
            "return {bit.band(0xff, 0x0f), bit.bor(1,2,4,8,16,32,64,128), bit.bxor(1,2), \
             bit.bnot(0), bit.lshift(1, 33), bit.rshift(-1, 28), bit.arshift(-256, 4), \
             bit.rol(0x12345678, 12), bit.ror(0x12345678, 12), bit.tobit(0xffffffff + 1), \
             bit.tohex(255), bit.tohex(-1, -4), bit.tohex(0x12345678, 3), bit.bswap(0x12345678)}",
            "0",
        ],
        &["EVAL", "bit.band = 1", "0"],
        &["EVAL", "return {1, {2, {3}}}", "0"],
        &["SCRIPT", "LOAD", "return 1"],
        &["EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "0"],
        &["EVALSHA", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", "0"],
        &["EVALSHA", "abc", "0"],
        &[
            "SCRIPT",
            "EXISTS",
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
            "ffff",
        ],
        &["SCRIPT", "FLUSH"],
        &["SCRIPT", "FLUSH", "nope"],
        &[
            "SCRIPT",
            "EXISTS",
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
        ],
        &["SCRIPT", "KILL"],
        &["SCRIPT", "FOO"],
        &["EVAL_RO", "return redis.call('set','a','b')", "0"],
        &["EVAL_RO", "return redis.call('get','k')", "0"],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('set','a','b')",
            "0",
        ],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get','k')",
            "0",
        ],
        &["EVAL", "#!lua flags=bogus\nreturn 1", "0"],
        &["EVAL", "#!lua opt=1\nreturn 1", "0"],
        &["EVAL", "#!python\nreturn 1", "0"],
        &["MULTI"],
        &["EVAL", "return redis.call('incr', KEYS[1])", "1", "counter"],
        &["EXEC"],
        &["HSET", "hash", "field", "value"],
        &["HELLO", "3"],
        &[
            "EVAL",
            "redis.setresp(3); return redis.call('hgetall', KEYS[1])",
            "1",
            "hash",
        ],
        &[
            "EVAL",
            "redis.setresp(2); return redis.call('hgetall', KEYS[1])",
            "1",
            "hash",
        ],
        &["EVAL", "return false", "0"],
        &["HELLO", "2"],
    ];
    for args in cases {
        if args[0] == "HELLO" {
            d.both(args);
        } else {
            d.check(args);
        }
    }
    // Typed replies from tables, each only with the Lua type Redis checks
    // for, in RESP3 and in RESP2.
    let typed = [
        "return {big_number='123456789012345678901234567890'}",
        "return {verbatim_string={format='txt',string='hello'}}",
        "return {verbatim_string={format='markdown',string='x'}}",
        "return {double=3.5}",
        "return {double='3.14'}",
        "return {err=5}",
        "return {ok=5}",
    ];
    for hello in ["3", "2"] {
        d.both(&["HELLO", hello]);
        for script in typed {
            d.check(&["EVAL", script, "0"]);
        }
    }
}
