//! Differential tests of the server and introspection commands (CONFIG,
//! INFO, CLIENT, COMMAND, DEBUG, MEMORY, SLOWLOG, ...) against redis-server.

use std::process::Command;
use std::time::{Duration, Instant};

use memlog_tests::{
    call_until_ok, free_port, wait_for_port, Differential, MemlogServer, Process, RawConn,
    RedisServer, RespValue,
};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// memlog and a redis-server with DEBUG enabled.
fn start() -> Differential {
    let memlog = MemlogServer::start(&[]).expect("memlog starts");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ])
        .arg("--dir")
        .arg(dir.path());
    let process = Process::spawn("redis-server", cmd, None).unwrap();
    wait_for_port(port, Duration::from_secs(10)).unwrap();
    let redis = RedisServer { port, process, dir };
    let m = RawConn::connect(memlog.port).unwrap();
    let r = RawConn::connect(redis.port).unwrap();
    Differential {
        memlog,
        redis,
        m,
        r,
    }
}

fn text(v: &RespValue) -> String {
    match v {
        RespValue::Bulk(b) | RespValue::Verbatim(_, b) => String::from_utf8_lossy(b).into_owned(),
        RespValue::Simple(s) => s.clone(),
        other => panic!("not text: {other:?}"),
    }
}

fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

#[test]
fn config_get_set() {
    let mut d = start();
    d.script(
        "CONFIG GET maxmemory
         CONFIG SET maxmemory 100mb
         CONFIG GET maxmemory
         CONFIG SET maxmemory 1x
         CONFIG SET maxmemory 10 maxmemory 20
         CONFIG SET hz abc
         CONFIG SET maxmemory 10 hz abc
         CONFIG GET maxmemory
         CONFIG SET maxmemory 1000 timeout 30
         ~CONFIG GET maxmemory timeout
         ~CONFIG GET maxmemory maxmemory
         CONFIG SET activerehashing maybe
         CONFIG SET activerehashing no
         CONFIG GET activerehashing
         CONFIG SET ACTIVEREHASHING yes
         CONFIG SET maxmemory-policy foo
         CONFIG SET maxmemory-policy ALLKEYS-LRU
         CONFIG GET maxmemory-policy
         CONFIG SET maxmemory-policy noeviction
         CONFIG SET appendfsync sometimes
         CONFIG SET loglevel loud
         CONFIG SET loglevel WARNING
         CONFIG GET loglevel
         CONFIG SET loglevel notice
         CONFIG SET sanitize-dump-payload maybe
         CONFIG SET nosuch 1
         CONFIG SET maxmemory
         CONFIG SET maxmemory 1 timeout
         CONFIG GET
         CONFIG GET nosuch*
         CONFIG SET notify-keyspace-events KEA
         CONFIG GET notify-keyspace-events
         CONFIG SET notify-keyspace-events KEm
         CONFIG GET notify-keyspace-events
         CONFIG SET notify-keyspace-events KEnA
         CONFIG GET notify-keyspace-events
         CONFIG SET notify-keyspace-events KEAm
         CONFIG GET notify-keyspace-events
         CONFIG SET notify-keyspace-events Etnm
         CONFIG GET notify-keyspace-events
         CONFIG SET notify-keyspace-events Q
         CONFIG SET notify-keyspace-events \"\"
         CONFIG RESETSTAT
         CONFIG RESETSTAT x
         CONFIG REWRITE
         CONFIG HELP
         CONFIG FOO
         CONFIG",
    );
    // memlog's log is its AOF: the rewrite thresholds exist, as in Redis.
    d.script(
        "CONFIG GET auto-aof-rewrite-percentage
         CONFIG GET auto-aof-rewrite-min-size
         CONFIG SET auto-aof-rewrite-percentage -1
         CONFIG SET auto-aof-rewrite-percentage 2147483648
         CONFIG SET auto-aof-rewrite-percentage x
         CONFIG SET auto-aof-rewrite-percentage 50
         CONFIG GET auto-aof-rewrite-percentage
         CONFIG SET auto-aof-rewrite-min-size 1gb
         CONFIG GET auto-aof-rewrite-min-size
         CONFIG SET auto-aof-rewrite-percentage 100
         CONFIG SET auto-aof-rewrite-min-size 64mb",
    );
    // Integer parameters' bounds, and sizes that are memory values.
    d.script(
        "CONFIG SET maxmemory-eviction-tenacity 101
         CONFIG SET maxmemory-eviction-tenacity -1
         CONFIG SET active-expire-effort 0
         CONFIG SET active-expire-effort 11
         CONFIG SET maxclients 0
         CONFIG SET maxclients 4294967296
         CONFIG SET proto-max-bulk-len 0
         CONFIG SET proto-max-bulk-len 1
         CONFIG SET proto-max-bulk-len 9223372036854775808
         CONFIG SET client-query-buffer-limit 0
         CONFIG SET client-query-buffer-limit 1mb
         CONFIG GET client-query-buffer-limit
         CONFIG SET client-query-buffer-limit 1gb
         CONFIG SET repl-backlog-size 0
         CONFIG SET hll-sparse-max-bytes 9223372036854775808
         PING
         CONFIG SET timeout -1
         CONFIG SET slowlog-log-slower-than -2
         CONFIG SET slowlog-max-len -1
         CONFIG SET list-max-listpack-size 2147483648
         CONFIG SET repl-timeout 0
         CONFIG SET hz 100
         CONFIG GET hz
         CONFIG SET hz 10
         CONFIG SET hash-max-listpack-value 1kb
         CONFIG GET hash-max-listpack-value
         CONFIG SET hash-max-listpack-value -1
         CONFIG SET hash-max-listpack-value 64
         CONFIG SET zset-max-listpack-value 64",
    );
    // Aliases (the old name and the new one are one parameter), parameters
    // fixed at startup, hidden ones, percentages.
    d.script(
        "CONFIG SET hash-max-ziplist-entries 64
         CONFIG GET hash-max-listpack-entries
         ~CONFIG GET hash-max-*-entries
         CONFIG SET hash-max-listpack-entries 512
         CONFIG GET hash-max-ziplist-entries
         CONFIG SET lua-time-limit 4000
         CONFIG GET busy-reply-threshold
         CONFIG SET busy-reply-threshold 5000
         ~CONFIG GET *of
         CONFIG SET daemonize yes
         CONFIG SET databases 4
         CONFIG SET replicaof 127.0.0.1
         CONFIG GET daemonize
         CONFIG GET key-load-delay
         CONFIG GET key-load-*
         CONFIG SET key-load-delay 0
         CONFIG SET maxmemory-clients 200%
         CONFIG SET maxmemory-clients 10%
         CONFIG GET maxmemory-clients
         CONFIG SET maxmemory-clients 0
         CONFIG SET repl-backlog-size 2mb
         CONFIG GET repl-backlog-size
         CONFIG SET repl-ping-slave-period 20
         ~CONFIG GET repl-ping-*",
    );
}

/// CONFIG SET port and bind move the server's listener as in Redis: new
/// clients connect where it says, clients already connected stay, and a
/// port that cannot be listened on fails the whole CONFIG SET, every
/// parameter in it rolled back (what the server did with them too), the
/// server still listening where it was.
#[test]
fn config_set_port_and_bind_move_the_listener() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).unwrap();
    let set = |c: &mut RawConn, args: &[&str]| {
        let mut argv = vec!["CONFIG", "SET"];
        argv.extend_from_slice(args);
        c.call(&argv).unwrap()
    };
    let ok = RespValue::Simple("OK".into());
    let port = server.port.to_string();
    assert_eq!(set(&mut c, &["port", &port, "bind", "127.0.0.1"]), ok);

    let moved = free_port();
    assert_eq!(set(&mut c, &["port", &moved.to_string()]), ok);
    let mut n = RawConn::connect(moved).expect("listening on the new port");
    assert_eq!(n.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err(),
        "no longer on the old port"
    );
    assert_eq!(c.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));

    // A port taken by someone else: nothing changes.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    assert_eq!(
        set(
            &mut c,
            &["maxmemory", "10000001", "port", &taken_port, "timeout", "77"]
        ),
        RespValue::Error(
            "ERR CONFIG SET failed (possibly related to argument 'port') - Unable to listen on this port"
                .into()
        )
    );
    for (name, value) in [
        ("maxmemory", "0".to_string()),
        ("port", moved.to_string()),
        ("timeout", "0".to_string()),
    ] {
        assert_eq!(
            c.call(&["CONFIG", "GET", name]).unwrap(),
            RespValue::Array(vec![
                RespValue::Bulk(name.as_bytes().to_vec()),
                RespValue::Bulk(value.into_bytes()),
            ])
        );
    }
    let RespValue::Bulk(info) = c.call(&["INFO", "memory"]).unwrap() else {
        panic!("INFO");
    };
    assert!(
        String::from_utf8_lossy(&info).contains("\r\nmaxmemory:0\r\n"),
        "maxmemory put back where the server acts on it"
    );
    let mut again = RawConn::connect(moved).expect("still listening");
    assert_eq!(
        again.call(&["PING"]).unwrap(),
        RespValue::Simple("PONG".into())
    );
    // A list of addresses, one the machine lacks skipped.
    assert_eq!(set(&mut c, &["bind", "127.0.0.1 -192.0.2.1"]), ok);
    let mut b = RawConn::connect(moved).expect("listening after bind");
    assert_eq!(b.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
    assert_eq!(
        set(&mut c, &["bind", "192.0.2.1"]),
        RespValue::Error(
            "ERR CONFIG SET failed (possibly related to argument 'bind') - Failed to bind to specified addresses."
                .into()
        )
    );
    let mut b = RawConn::connect(moved).expect("still listening after a bad bind");
    assert_eq!(b.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
}

#[test]
fn command_introspection() {
    let mut d = start();
    d.script(
        "COMMAND GETKEYS get a
         COMMAND GETKEYS set a b
         COMMAND GETKEYS set a b EX 10
         COMMAND GETKEYS del a b c
         COMMAND GETKEYS exists a b
         COMMAND GETKEYS lpush l a b c
         COMMAND GETKEYS blpop a b c 0
         COMMAND GETKEYS type k
         COMMAND GETKEYS watch a b
         COMMAND GETKEYS GET A
         COMMAND GETKEYS get a b
         COMMAND GETKEYS nosuch a
         COMMAND GETKEYS ping x
         COMMAND GETKEYS config get x
         COMMAND GETKEYS get
         COMMAND GETKEYS
         COMMAND GETKEYSANDFLAGS ping x
         COMMAND INFO nosuch
         COMMAND DOCS nosuch
         COMMAND HELP
         COMMAND FOO
         COMMAND COUNT x
         COMMAND LIST FILTERBY MODULE x
         COMMAND LIST FOO
         COMMAND GETKEYS eval x 0
         COMMAND GETKEYS eval x 1 k
         COMMAND GETKEYS fcall f 0
         COMMAND GETKEYS memory usage k
         ~COMMAND LIST FILTERBY PATTERN config*
         ~COMMAND LIST FILTERBY PATTERN xinfo*",
    );
    for d_ in [&mut d.m, &mut d.r] {
        let n = d_.call(&["COMMAND", "COUNT"]).unwrap().as_int().unwrap();
        assert!(n > 0);
        let all = d_.call(&["COMMAND"]).unwrap();
        match all {
            RespValue::Array(v) => assert_eq!(v.len() as i64, n),
            other => panic!("{other:?}"),
        }
    }
    // COMMAND INFO: name, arity and the legacy key spec agree with Redis.
    for c in [
        "get", "set", "del", "lpush", "blpop", "ping", "exists", "watch",
    ] {
        let (a, b) = d.both(&["COMMAND", "INFO", c]);
        let (RespValue::Array(a), RespValue::Array(b)) = (a, b) else {
            panic!("COMMAND INFO {c}");
        };
        let (RespValue::Array(a), RespValue::Array(b)) = (&a[0], &b[0]) else {
            panic!("COMMAND INFO {c} entry");
        };
        assert_eq!(a.len(), 10);
        for i in [0, 1, 3, 4, 5] {
            assert_eq!(a[i], b[i], "COMMAND INFO {c} field {i}");
        }
    }
    let docs = d.m.call(&["COMMAND", "DOCS", "get"]).unwrap();
    let RespValue::Array(v) = docs else {
        panic!("{docs:?}")
    };
    assert_eq!(v[0], RespValue::Bulk(b"get".to_vec()));
    let RespValue::Array(fields) = &v[1] else {
        panic!("{v:?}")
    };
    assert!(fields.contains(&RespValue::Bulk(b"summary".to_vec())));
    assert!(fields.contains(&RespValue::Bulk(b"group".to_vec())));
}

#[test]
fn client_commands() {
    let mut d = start();
    d.script(
        "CLIENT GETNAME
         CLIENT SETNAME my-name
         CLIENT GETNAME
         CLIENT SETNAME has\u{20}space
         CLIENT SETNAME
         CLIENT SETNAME a b
         CLIENT ID x
         CLIENT HELP
         CLIENT FOO
         CLIENT
         CLIENT KILL
         CLIENT KILL 1.2.3.4:5
         CLIENT KILL addr
         CLIENT KILL id 999999
         CLIENT KILL id abc
         CLIENT KILL id 0
         CLIENT KILL foo bar
         CLIENT KILL addr 1.2.3.4:5 skipme maybe
         CLIENT KILL type foo
         CLIENT KILL type normal id 999999
         CLIENT KILL user nosuchuser
         CLIENT UNBLOCK 999999
         CLIENT UNBLOCK abc
         CLIENT UNBLOCK 1 foo
         CLIENT UNBLOCK 999999 ERROR
         CLIENT REPLY foo
         CLIENT REPLY ON
         CLIENT NO-EVICT foo
         CLIENT NO-EVICT on
         CLIENT NO-EVICT off
         CLIENT PAUSE
         CLIENT PAUSE abc
         CLIENT PAUSE -1
         CLIENT PAUSE 10 foo
         CLIENT PAUSE 0
         CLIENT UNPAUSE
         CLIENT LIST TYPE foo
         CLIENT LIST ID abc
         CLIENT LIST foo
         CLIENT GETREDIR",
    );
    // CLIENT SETNAME with a newline and the empty name.
    d.check(&["CLIENT", "SETNAME", "a\nb"]);
    d.check(&["CLIENT", "SETNAME", ""]);
    d.check(&["CLIENT", "GETNAME"]);
    // CLIENT ID / LIST / INFO shapes.
    let id = d.m.call(&["CLIENT", "ID"]).unwrap().as_int().unwrap();
    let list = text(&d.m.call(&["CLIENT", "LIST"]).unwrap());
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .expect("own line");
    for f in [
        "addr=",
        "laddr=",
        "fd=",
        "name=",
        "age=",
        "idle=",
        "flags=N",
        "db=0",
        "sub=0",
        "psub=0",
        "ssub=0",
        "multi=-1",
        "qbuf=",
        "obl=",
        "omem=",
        "tot-mem=",
        "events=r",
        "cmd=client|list",
        "user=default",
        "redir=-1",
        "resp=2",
    ] {
        assert!(line.contains(f), "{f} missing in {line}");
    }
    let info = text(&d.m.call(&["CLIENT", "INFO"]).unwrap());
    assert!(info.starts_with(&format!("id={id} ")) && info.ends_with('\n'));
    let only = text(
        &d.m.call(&["CLIENT", "LIST", "ID", &id.to_string()])
            .unwrap(),
    );
    assert_eq!(only.lines().count(), 1);
    let normal = text(&d.m.call(&["CLIENT", "LIST", "TYPE", "normal"]).unwrap());
    assert!(normal.contains(&format!("id={id} ")));
    // CLIENT SETINFO (Redis 7.2; clients send it on connect).
    let m = &mut d.m;
    assert_eq!(
        m.call(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"])
            .unwrap(),
        RespValue::Simple("OK".into())
    );
    assert!(m
        .call(&["CLIENT", "SETINFO", "LIB-VER", "a b"])
        .unwrap()
        .is_error());
    assert!(m
        .call(&["CLIENT", "SETINFO", "FOO", "x"])
        .unwrap()
        .is_error());
}

#[test]
fn client_reply_modes() {
    let mut d = start();
    for c in [&mut d.m, &mut d.r] {
        c.send(&["CLIENT", "REPLY", "SKIP"]).unwrap();
        c.send(&["PING", "skipped"]).unwrap();
        assert_eq!(
            c.call(&["PING", "b"]).unwrap(),
            RespValue::Bulk(b"b".to_vec())
        );
        c.send(&["CLIENT", "REPLY", "OFF"]).unwrap();
        c.send(&["SET", "x", "1"]).unwrap();
        c.send(&["GET", "x"]).unwrap();
        c.send(&["NOSUCH"]).unwrap();
        c.send(&["CLIENT", "REPLY", "SKIP"]).unwrap();
        assert_eq!(
            c.call(&["CLIENT", "REPLY", "ON"]).unwrap(),
            RespValue::Simple("OK".into())
        );
        assert_eq!(
            c.call(&["GET", "x"]).unwrap(),
            RespValue::Bulk(b"1".to_vec())
        );
    }
}

fn closed(c: &mut RawConn) -> bool {
    c.read().is_err()
}

#[test]
fn client_kill_closes_victim() {
    let d = start();
    for port in [d.memlog.port, d.redis.port] {
        let mut killer = RawConn::connect(port).unwrap();
        let mut victim = RawConn::connect(port).unwrap();
        let vid = victim.call(&["CLIENT", "ID"]).unwrap().as_int().unwrap();
        let n = killer
            .call(&["CLIENT", "KILL", "ID", &vid.to_string()])
            .unwrap();
        assert_eq!(n, RespValue::Int(1), "port {port}");
        assert!(closed(&mut victim));
        // Old form by address.
        let mut victim = RawConn::connect(port).unwrap();
        let list = text(&victim.call(&["CLIENT", "INFO"]).unwrap());
        let addr = list
            .split(' ')
            .find_map(|f| f.strip_prefix("addr="))
            .unwrap()
            .to_string();
        assert_eq!(
            killer.call(&["CLIENT", "KILL", &addr]).unwrap(),
            RespValue::Simple("OK".into())
        );
        assert!(closed(&mut victim));
        // A blocked client is killed too.
        let mut victim = RawConn::connect(port).unwrap();
        let vid = victim.call(&["CLIENT", "ID"]).unwrap().as_int().unwrap();
        victim.send(&["BLPOP", "nolist", "0"]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let n = killer
            .call(&["CLIENT", "KILL", "ID", &vid.to_string(), "SKIPME", "yes"])
            .unwrap();
        assert_eq!(n, RespValue::Int(1));
        assert!(closed(&mut victim));
        // Killing oneself with SKIPME no: the reply comes, then the close.
        let kid = killer.call(&["CLIENT", "ID"]).unwrap().as_int().unwrap();
        let n = killer
            .call(&["CLIENT", "KILL", "ID", &kid.to_string(), "SKIPME", "no"])
            .unwrap();
        assert_eq!(n, RespValue::Int(1));
        assert!(closed(&mut killer));
    }
}

/// `timeout` closes a client that has sent nothing for that long, as in
/// Redis; a client blocked in BLPOP, a subscriber, a monitor and a client
/// that keeps sending commands stay.
#[test]
fn idle_clients_are_closed_after_timeout() {
    let d = start();
    for port in [d.memlog.port, d.redis.port] {
        let mut ctl = RawConn::connect(port).unwrap();
        let mut idle = RawConn::connect(port).unwrap();
        let idle_id = idle.call(&["CLIENT", "ID"]).unwrap().as_int().unwrap();
        let mut sub = RawConn::connect(port).unwrap();
        sub.call(&["SUBSCRIBE", "news"]).unwrap();
        let mut mon = RawConn::connect(port).unwrap();
        assert_eq!(
            mon.call(&["MONITOR"]).unwrap(),
            RespValue::Simple("OK".into())
        );
        let mut blocked = RawConn::connect(port).unwrap();
        blocked.send(&["BLPOP", "idle-list", "0"]).unwrap();
        wait_blocked(&mut ctl, 1);
        assert_eq!(
            ctl.call(&["CONFIG", "SET", "timeout", "2"]).unwrap(),
            RespValue::Simple("OK".into())
        );
        // `ctl` keeps sending; the idle client is closed after 2-3 s.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let list = text(&ctl.call(&["CLIENT", "LIST"]).unwrap());
            if !list.contains(&format!("id={idle_id} ")) {
                break;
            }
            assert!(Instant::now() < deadline, "idle client kept: {list}");
            std::thread::sleep(Duration::from_millis(200));
        }
        match idle.read() {
            Err(e) => assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "port {port}: {e}"
            ),
            Ok(v) => panic!("port {port}: the idle client got {v:?}"),
        }
        // Long past the timeout, the others are all still there.
        for _ in 0..15 {
            ctl.call(&["PING"]).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(
            ctl.call(&["PUBLISH", "news", "m"]).unwrap(),
            RespValue::Int(1),
            "port {port}"
        );
        ctl.call(&["RPUSH", "idle-list", "x"]).unwrap();
        assert_eq!(
            blocked.read().unwrap(),
            RespValue::Array(vec![
                RespValue::Bulk(b"idle-list".to_vec()),
                RespValue::Bulk(b"x".to_vec())
            ]),
            "port {port}"
        );
        // The monitor saw everything since, the RPUSH last.
        while !text(&mon.read().unwrap()).contains("\"RPUSH\"") {}
        ctl.call(&["CONFIG", "SET", "timeout", "0"]).unwrap();
    }
}

fn wait_blocked(c: &mut RawConn, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let info = text(&c.call(&["INFO", "clients"]).unwrap());
        if info_field(&info, "blocked_clients").as_deref() == Some(&n.to_string()) {
            return;
        }
        assert!(Instant::now() < deadline, "blocked_clients never {n}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn client_unblock_and_blocked_clients() {
    let d = start();
    for port in [d.memlog.port, d.redis.port] {
        let mut ctl = RawConn::connect(port).unwrap();
        let mut w = RawConn::connect(port).unwrap();
        let wid = w
            .call(&["CLIENT", "ID"])
            .unwrap()
            .as_int()
            .unwrap()
            .to_string();
        wait_blocked(&mut ctl, 0);
        w.send(&["BLPOP", "nolist", "0"]).unwrap();
        wait_blocked(&mut ctl, 1);
        let list = text(&ctl.call(&["CLIENT", "LIST", "ID", &wid]).unwrap());
        assert!(list.contains("flags=b"), "{list}");
        assert_eq!(
            ctl.call(&["CLIENT", "UNBLOCK", &wid]).unwrap(),
            RespValue::Int(1)
        );
        assert_eq!(w.read().unwrap(), RespValue::NullArray);
        wait_blocked(&mut ctl, 0);
        assert_eq!(
            ctl.call(&["CLIENT", "UNBLOCK", &wid]).unwrap(),
            RespValue::Int(0)
        );
        w.send(&["BRPOP", "nolist", "0"]).unwrap();
        wait_blocked(&mut ctl, 1);
        assert_eq!(
            ctl.call(&["CLIENT", "UNBLOCK", &wid, "ERROR"]).unwrap(),
            RespValue::Int(1)
        );
        assert_eq!(
            w.read().unwrap(),
            RespValue::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
        );
        wait_blocked(&mut ctl, 0);
    }
}

#[test]
fn info_fields_and_sections() {
    let mut d = start();
    d.script(
        "FLUSHALL
         SET a 1
         SET b 2
         RPUSH l x y
         SELECT 2
         SET c 3
         SELECT 0
         INFO keyspace
         INFO KEYSPACE
         INFO nosuchsection
         CONFIG RESETSTAT
         GET
         SET a
         NOSUCH
         INFO errorstats
         LPUSH a x
         INFO errorstats",
    );
    d.both(&["HELLO", "3"]);
    d.check(&["INFO", "keyspace"]);
    d.check(&["INFO", "errorstats"]);
    d.both(&["HELLO", "2"]);
    let info = text(&d.m.call(&["INFO"]).unwrap());
    for f in [
        "redis_version",
        "redis_mode",
        "os",
        "arch_bits",
        "process_id",
        "run_id",
        "tcp_port",
        "uptime_in_seconds",
        "connected_clients",
        "blocked_clients",
        "used_memory",
        "used_memory_human",
        "maxmemory",
        "mem_allocator",
        "rdb_changes_since_last_save",
        "rdb_last_save_time",
        "total_commands_processed",
        "total_connections_received",
        "expired_keys",
        "keyspace_hits",
        "keyspace_misses",
        "total_error_replies",
        "role",
        "connected_slaves",
        "master_replid",
        "used_cpu_sys",
        "used_cpu_user",
    ] {
        assert!(info_field(&info, f).is_some(), "INFO lacks {f}");
    }
    assert_eq!(info_field(&info, "redis_version").unwrap(), "7.0.15");
    assert_eq!(info_field(&info, "redis_mode").unwrap(), "standalone");
    assert_eq!(info_field(&info, "role").unwrap(), "master");
    assert_eq!(
        info_field(&info, "mem_allocator").unwrap(),
        "jemalloc-5.3.0"
    );
    assert_eq!(
        info_field(&info, "tcp_port").unwrap(),
        d.memlog.port.to_string()
    );
    assert!(!info.contains("# Commandstats"));
    assert!(info.contains("# Keyspace\r\ndb0:keys=3,expires=0,avg_ttl=0\r\ndb2:keys=1"));
    let all = text(&d.m.call(&["INFO", "all"]).unwrap());
    assert!(all.contains("# Commandstats") && all.contains("cmdstat_set:calls="));
    let cs = text(&d.m.call(&["INFO", "commandstats"]).unwrap());
    let line = cs.lines().find(|l| l.starts_with("cmdstat_get:")).unwrap();
    assert!(
        line.contains("calls=")
            && line.contains("usec_per_call=")
            && line.contains("failed_calls=")
    );
    let two = text(&d.m.call(&["INFO", "server", "clients"]).unwrap());
    assert!(two.starts_with("# Server\r\n") && two.contains("\r\n\r\n# Clients\r\n"));
    assert!(!two.contains("# Memory"));
    // rdb_changes_since_last_save follows writes, SAVE resets it.
    d.m.call(&["SAVE"]).unwrap();
    d.m.call(&["SET", "z", "1"]).unwrap();
    let p = text(&d.m.call(&["INFO", "persistence"]).unwrap());
    assert_eq!(info_field(&p, "rdb_changes_since_last_save").unwrap(), "1");
}

#[test]
fn debug_digest_matches_redis() {
    let mut d = start();
    d.script(
        "DEBUG DIGEST
         SET a 1
         DEBUG DIGEST
         SET b hello
         RPUSH l x y z 1 2 3
         LPUSH l2 a
         SET e v EX 1000
         DEBUG DIGEST
         DEBUG DIGEST-VALUE a b l l2 e nosuch
         DEBUG DIGEST-VALUE
         SELECT 5
         SET a 1
         DEBUG DIGEST
         DEL a
         SELECT 0
         DEBUG DIGEST
         LPOP l
         DEL b
         DEBUG DIGEST
         FLUSHALL
         DEBUG DIGEST
         DEBUG
         DEBUG FOO
         DEBUG JMAP
         DEBUG STRINGMATCH-LEN
         DEBUG DIGEST x
         DEBUG OBJECT nosuch
         DEBUG SLEEP 0
         DEBUG SET-ACTIVE-EXPIRE 0
         DEBUG SET-ACTIVE-EXPIRE 1
         DEBUG RELOAD
         DEBUG CHANGE-REPL-ID
         DEBUG QUICKLIST-PACKED-THRESHOLD 100
         DEBUG HELP",
    );
    d.check(&["SET", "k", "12"]);
    let obj = text(&d.m.call(&["DEBUG", "OBJECT", "k"]).unwrap());
    assert!(
        obj.starts_with("Value at:") && obj.contains("encoding:int"),
        "{obj}"
    );
    // Same random writes on both sides give the same digest.
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..300 {
        let k = format!("k{}", rng.gen_range(0..20));
        let v = format!("{}", rng.gen_range(0..50));
        let cmd: Vec<String> = match rng.gen_range(0..5) {
            0 => vec!["SET".into(), k, v],
            1 => vec!["RPUSH".into(), format!("l{k}"), v],
            2 => vec!["LPUSH".into(), format!("l{k}"), v],
            3 => vec!["DEL".into(), k],
            _ => vec!["LPOP".into(), format!("l{k}")],
        };
        d.check(&cmd);
    }
    d.check(&["DEBUG", "DIGEST"]);
}

#[test]
fn debug_set_active_expire() {
    let d = start();
    let mut c = RawConn::connect(d.memlog.port).unwrap();
    c.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).unwrap();
    c.call(&["SET", "x", "1", "PX", "20"]).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    // Still in the dict (DBSIZE does not expire lazily).
    assert_eq!(c.call(&["DBSIZE"]).unwrap(), RespValue::Int(1));
    c.call(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while c.call(&["DBSIZE"]).unwrap() != RespValue::Int(0) {
        assert!(Instant::now() < deadline, "active expire never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn misc_server_commands() {
    let mut d = start();
    d.script(
        "FLUSHALL
         SET k v
         SAVE
         BGSAVE x
         TIME x
         LASTSAVE x
         DBSIZE
         DBSIZE x
         FLUSHDB x
         FLUSHALL SYNC x
         MEMORY USAGE nosuch
         MEMORY USAGE k SAMPLES x
         MEMORY USAGE k FOO 1
         MEMORY USAGE
         MEMORY HELP
         MEMORY FOO
         MEMORY DOCTOR
         MEMORY PURGE
         PUBSUB NUMPAT x
         PUBSUB HELP x
         PUBSUB CHANNELS a b
         PUBSUB SHARDCHANNELS a b
         PUBSUB NOSUCH
         SCAN \"\"
         SCAN \"\" COUNT 1000
         CLIENT UNBLOCK a b c d
         CLIENT UNBLOCK a b
         CLIENT UNBLOCK a
         NOSUCHCOMMAND aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbb cccccccccccccccccccccccccccccc dddddddddddddddddddddddddddddd eeeeeeeeeeeeeeeeeeeeeeeeeeeeee ffffffffffffffffffffffffffffff
         OBJECT xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx
         SLOWLOG RESET
         SLOWLOG LEN
         SLOWLOG GET
         SLOWLOG GET x
         SLOWLOG GET -2
         SLOWLOG HELP
         SLOWLOG FOO
         LATENCY LATEST
         LATENCY RESET
         LATENCY HISTORY event
         LATENCY DOCTOR
         LATENCY HELP
         FUNCTION FLUSH
         FUNCTION FLUSH ASYNC
         FUNCTION FLUSH foo
         FUNCTION LIST
         FUNCTION STATS
         FUNCTION HELP
         SHUTDOWN ABORT
         SHUTDOWN FOO
         MULTI
         SHUTDOWN
         DISCARD
         FLUSHDB ASYNC
         FLUSHALL SYNC
         DBSIZE",
    );
    for c in [&mut d.m, &mut d.r] {
        match c.call(&["TIME"]).unwrap() {
            RespValue::Array(v) => {
                assert_eq!(v.len(), 2);
                let s: i64 = text(&v[0]).parse().unwrap();
                let us: i64 = text(&v[1]).parse().unwrap();
                assert!(s > 1_600_000_000 && (0..1_000_000).contains(&us));
            }
            other => panic!("{other:?}"),
        }
        assert!(c.call(&["LASTSAVE"]).unwrap().as_int().unwrap() > 1_600_000_000);
        let l = text(&c.call(&["LOLWUT"]).unwrap());
        assert!(l.ends_with("Redis ver. 7.0.15\n"), "{l}");
        c.call(&["SET", "big", &"x".repeat(1000)]).unwrap();
        let n = c
            .call(&["MEMORY", "USAGE", "big"])
            .unwrap()
            .as_int()
            .unwrap();
        assert!((1000..3000).contains(&n), "{n}");
    }
    d.check(&["BGSAVE"]);
}

/// MEMORY STATS names Redis' fields in Redis' order, and its reply is as
/// long as it says (it sent two pairs more than its header counted, which
/// shifted every later reply on the connection).
#[test]
fn memory_stats_fields() {
    let d = start();
    let mut names = Vec::new();
    for port in [d.memlog.port, d.redis.port] {
        let mut c = RawConn::connect(port).unwrap();
        c.call(&["FLUSHALL"]).unwrap();
        c.call(&["SET", "k", "v"]).unwrap();
        let mut per_protocol = Vec::new();
        for hello in ["2", "3"] {
            c.call(&["HELLO", hello]).unwrap();
            let fields: Vec<String> = match c.call(&["MEMORY", "STATS"]).unwrap() {
                RespValue::Array(v) => v.iter().step_by(2).map(text).collect(),
                RespValue::Map(v) => v.iter().map(|(k, _)| text(k)).collect(),
                other => panic!("port {port}: {other:?}"),
            };
            per_protocol.push(fields);
            assert_eq!(
                c.call(&["PING"]).unwrap(),
                RespValue::Simple("PONG".into()),
                "port {port}, RESP{hello}"
            );
        }
        names.push(per_protocol);
    }
    assert_eq!(names[0], names[1]);
}

/// `enable-debug-command` as Redis reads it: `local` (memlog's default:
/// DEBUG can freeze the server or make it rebuild its data set) lets
/// loopback clients run DEBUG, `no` refuses it with Redis' words; it is
/// fixed at startup.
#[test]
fn debug_is_refused_unless_enabled() {
    let local = MemlogServer::start(&[]).unwrap();
    let mut c = RawConn::connect(local.port).unwrap();
    assert_eq!(
        c.call(&["DEBUG", "SLEEP", "0"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    assert_eq!(
        c.call(&["CONFIG", "GET", "enable-debug-command"]).unwrap(),
        RespValue::Array(vec![
            RespValue::Bulk(b"enable-debug-command".to_vec()),
            RespValue::Bulk(b"local".to_vec())
        ])
    );
    assert!(c
        .call(&["CONFIG", "SET", "enable-debug-command", "yes"])
        .unwrap()
        .is_error());
    let off = MemlogServer::start(&["--enable-debug-command", "no"]).unwrap();
    let mut c = RawConn::connect(off.port).unwrap();
    assert_eq!(
        c.call(&["DEBUG", "SLEEP", "0"]).unwrap(),
        RespValue::Error("ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.".into())
    );
    assert_eq!(c.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
}

#[test]
fn shutdown_exits_the_process() {
    let mut s = MemlogServer::start(&[]).unwrap();
    let mut c = RawConn::connect(s.port).unwrap();
    c.send(&["SHUTDOWN", "NOSAVE"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.process.is_running() {
        assert!(Instant::now() < deadline, "memlog did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn randomized_server_family() {
    let mut d = start();
    let mut rng = StdRng::seed_from_u64(0x5e7e7);
    let params = [
        "lazyfree-lazy-user-del",
        "timeout",
        "activerehashing",
        "slowlog-max-len",
    ];
    let values = ["0", "10", "100mb", "yes", "no", "abc", "1gb", "20"];
    for _ in 0..400 {
        let cmd: Vec<String> = match rng.gen_range(0..12) {
            0 => vec![
                "CONFIG".into(),
                "GET".into(),
                params[rng.gen_range(0..4)].into(),
            ],
            1 => vec![
                "CONFIG".into(),
                "SET".into(),
                params[rng.gen_range(0..4)].into(),
                values[rng.gen_range(0..values.len())].into(),
            ],
            2 => vec!["DBSIZE".into()],
            3 => vec![
                "SET".into(),
                format!("k{}", rng.gen_range(0..10)),
                "v".into(),
            ],
            4 => vec![
                "RPUSH".into(),
                format!("l{}", rng.gen_range(0..5)),
                "v".into(),
            ],
            5 => vec!["DEBUG".into(), "DIGEST".into()],
            6 => vec![
                "DEBUG".into(),
                "DIGEST-VALUE".into(),
                format!("k{}", rng.gen_range(0..10)),
                format!("l{}", rng.gen_range(0..5)),
            ],
            7 => vec!["SELECT".into(), rng.gen_range(0..3).to_string()],
            8 => {
                let names = ["ok", "with space", "", "x\ny"];
                vec![
                    "CLIENT".into(),
                    "SETNAME".into(),
                    names[rng.gen_range(0..names.len())].into(),
                ]
            }
            9 => vec!["CLIENT".into(), "GETNAME".into()],
            10 => {
                let cmds: [&[&str]; 6] = [
                    &["get", "a"],
                    &["set", "a", "b"],
                    &["del", "a", "b"],
                    &["rpush", "l"],
                    &["ping"],
                    &["blpop", "a", "b", "1"],
                ];
                let mut v = vec!["COMMAND".to_string(), "GETKEYS".to_string()];
                v.extend(cmds[rng.gen_range(0..6)].iter().map(|s| s.to_string()));
                v
            }
            _ => {
                if rng.gen_bool(0.2) {
                    vec!["FLUSHDB".into()]
                } else {
                    vec!["INFO".into(), "keyspace".into()]
                }
            }
        };
        d.check(&cmd);
    }
}

const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";

/// Calls `args` on new connections until one answers `busy` (the script
/// has gone past the threshold).
fn until_busy(port: u16, busy: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let mut c = RawConn::connect(port).unwrap();
        if c.call(&["PING"]).unwrap() == RespValue::Error(busy.into()) {
            return;
        }
        assert!(Instant::now() < deadline, "the script never went busy");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A script that runs past `busy-reply-threshold` (`lua-time-limit`) makes
/// the server answer every other client `-BUSY`, as Redis does, on the
/// connections it had and on new ones, except what may run beside it:
/// SCRIPT KILL stops it (also one that swallows errors with pcall) and its
/// client gets the error, MULTI goes on queueing and a command refused
/// meanwhile aborts the transaction, a command sent in pieces around the
/// kill is answered whole, and the server then serves as before.
#[test]
fn a_busy_script_answers_busy_until_script_kill() {
    let server = MemlogServer::start(&[]).expect("server");
    let port = server.port;
    let mut c = RawConn::connect(port).unwrap();
    c.call(&["CONFIG", "SET", "lua-time-limit", "50"]).unwrap();
    c.call(&["SET", "x", "1"]).unwrap();
    for script in [
        "while true do end",
        "local f = function() while true do redis.call('ping') end end while true do pcall(f) end",
    ] {
        let mut idle = RawConn::connect(port).unwrap();
        let mut multi = RawConn::connect(port).unwrap();
        assert_eq!(
            multi.call(&["MULTI"]).unwrap(),
            RespValue::Simple("OK".into())
        );
        let mut s = RawConn::connect(port).unwrap();
        // A command behind the script on its own connection waits for it.
        s.send(&["EVAL", script, "0"]).unwrap();
        s.send(&["PING", "after"]).unwrap();
        until_busy(port, BUSY_EVAL);
        let busy = RespValue::Error(BUSY_EVAL.into());
        assert_eq!(idle.call(&["GET", "x"]).unwrap(), busy);
        assert_eq!(idle.call(&["FUNCTION", "STATS"]).unwrap(), busy);
        assert_eq!(idle.call(&["FUNCTION", "KILL"]).unwrap(), busy);
        assert_eq!(idle.call(&["SHUTDOWN"]).unwrap(), busy);
        assert_eq!(
            multi.call(&["INCR", "x"]).unwrap(),
            busy,
            "refused, and the transaction with it"
        );
        // Pipelined, and the start of one more.
        idle.send_raw(b"PING\r\nPING\r\n*1\r\n$4\r\nPI").unwrap();
        assert_eq!(idle.read().unwrap(), busy);
        assert_eq!(idle.read().unwrap(), busy);
        let mut killer = RawConn::connect(port).unwrap();
        assert_eq!(
            killer.call(&["SCRIPT", "KILL"]).unwrap(),
            RespValue::Simple("OK".into())
        );
        match s.read().unwrap() {
            RespValue::Error(e) => assert!(e.contains("killed by user"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(s.read().unwrap(), RespValue::Bulk(b"after".to_vec()));
        idle.send_raw(b"NG\r\n").unwrap();
        assert_eq!(idle.read().unwrap(), RespValue::Simple("PONG".into()));
        match multi.call(&["EXEC"]).unwrap() {
            RespValue::Error(e) => assert!(e.starts_with("EXECABORT"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            c.call(&["GET", "x"]).unwrap(),
            RespValue::Bulk(b"1".to_vec())
        );
        assert_eq!(
            killer.call(&["SCRIPT", "KILL"]).unwrap(),
            RespValue::Error("NOTBUSY No scripts in execution right now.".into())
        );
    }
    // A script past the threshold that ends by itself just answers.
    assert_eq!(
        c.call(&["EVAL", "for i = 1, 3e6 do end return 1 + 1", "0"])
            .unwrap(),
        RespValue::Int(2)
    );
}

/// A busy function (FCALL): FUNCTION STATS shows it, SCRIPT KILL answers
/// the function's BUSY, FUNCTION KILL stops it. One that has written
/// cannot be killed (UNKILLABLE); plain SHUTDOWN is refused and SHUTDOWN
/// NOSAVE ends the server, without the script's writes, which never
/// reached the log.
#[test]
fn a_busy_function_is_killed_by_function_kill_and_a_writer_by_shutdown_nosave() {
    let mut server = MemlogServer::start(&[]).expect("server");
    let port = server.port;
    let mut c = RawConn::connect(port).unwrap();
    for cmd in [
        &["CONFIG", "SET", "busy-reply-threshold", "50"][..],
        &["CONFIG", "SET", "written-script-time-limit", "0"],
        &["SET", "x", "before"],
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=lib\n\
             redis.register_function('spin', function() while true do end end)\n\
             redis.register_function('write_and_spin', function(keys) \
               redis.call('set', keys[1], 'during') while true do end end)",
        ],
    ] {
        assert!(!c.call(cmd).unwrap().is_error(), "{cmd:?}");
    }
    let mut s = RawConn::connect(port).unwrap();
    s.send(&["FCALL", "spin", "0"]).unwrap();
    until_busy(port, BUSY_FUNCTION);
    assert_eq!(
        c.call(&["SCRIPT", "KILL"]).unwrap(),
        RespValue::Error(BUSY_FUNCTION.into())
    );
    let RespValue::Array(stats) = c.call(&["FUNCTION", "STATS"]).unwrap() else {
        panic!("FUNCTION STATS");
    };
    let RespValue::Array(running) = &stats[1] else {
        panic!("{stats:?}");
    };
    assert_eq!(running[1], RespValue::Bulk(b"spin".to_vec()));
    assert_eq!(
        running[3],
        RespValue::Array(vec![
            RespValue::Bulk(b"FCALL".to_vec()),
            RespValue::Bulk(b"spin".to_vec()),
            RespValue::Bulk(b"0".to_vec()),
        ])
    );
    assert_eq!(
        c.call(&["FUNCTION", "KILL"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    assert!(matches!(s.read().unwrap(), RespValue::Error(e) if e.contains("killed by user")));

    s.send(&["FCALL", "write_and_spin", "1", "x"]).unwrap();
    until_busy(port, BUSY_FUNCTION);
    match c.call(&["FUNCTION", "KILL"]).unwrap() {
        RespValue::Error(e) => assert!(e.starts_with("UNKILLABLE"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.call(&["SHUTDOWN"]).unwrap(),
        RespValue::Error(BUSY_FUNCTION.into())
    );
    assert!(c.call(&["SHUTDOWN", "NOSAVE"]).is_err(), "the server ends");
    assert!(s.read().is_err(), "without answering the script");
    server.restart().expect("restart");
    let mut c = RawConn::connect(server.port).unwrap();
    assert_eq!(
        call_until_ok(&mut c, &["GET", "x"]),
        RespValue::Bulk(b"before".to_vec())
    );
}

/// A script's Lua values are capped (1 GiB): one that grows past it gets an
/// error instead of aborting the whole server when the allocator cannot
/// serve it, and the Lua state goes on working.
#[test]
fn a_script_past_its_memory_limit_fails_alone() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    for script in [
        "return ('x'):rep(1e10)",
        "local t = {} for i = 1, 1e9 do t[i] = i end return #t",
    ] {
        let sha = text(&c.call(&["SCRIPT", "LOAD", script]).expect("load"));
        assert_eq!(
            c.call(&["EVALSHA", &sha, "0"]).expect("eval"),
            RespValue::Error(format!(
                "ERR Error running script {sha}, not enough memory "
            ))
        );
    }
    assert_eq!(
        c.call(&["EVAL", "return ('x'):rep(1000):len()", "0"])
            .expect("eval"),
        RespValue::Int(1000)
    );
}

/// `min-replicas-to-write` on a primary without replicas refuses writes
/// (-NOREPLICAS), scripts that may write included, as Redis does.
#[test]
fn min_replicas_to_write_refuses_writes_without_replicas() {
    let mut d = start();
    d.check(&["SET", "x", "some value"]);
    d.check(&["CONFIG", "SET", "min-replicas-to-write", "1"]);
    for cmd in [
        &["SET", "x", "1"][..],
        &["GET", "x"],
        &["DEL", "x"],
        &[
            "EVAL",
            "#!lua flags=no-writes\nreturn redis.call('get','x')",
            "1",
            "x",
        ],
        &["EVAL", "return redis.call('get','x')", "1", "x"],
        &["EVAL", "#!lua\nreturn redis.call('get','x')", "1", "x"],
        &["EVAL", "return redis.call('set','x', 1)", "1", "x"],
        &["EVAL", "return redis.pcall('set','x', 1)['err']", "1", "x"],
        &["MULTI"],
        &["GET", "x"],
        &["EXEC"],
        &["MULTI"],
        &["SET", "x", "2"],
        &["EXEC"],
        &["PUBLISH", "ch", "m"],
    ] {
        d.check(cmd);
    }
    d.check(&["CONFIG", "SET", "min-replicas-to-write", "0"]);
    d.check(&["SET", "x", "3"]);
}

/// Before AUTH, the bytes of a command not yet whole wait for the rest
/// while other clients are served (the server's one thread spun on them
/// for good), and commands pipelined behind an AUTH run at once (they
/// waited for more bytes to come).
#[test]
fn partial_and_pipelined_input_before_auth() {
    use std::io::{Read, Write};
    let server = MemlogServer::start(&["--requirepass", "pw"]).expect("server");
    let mut a = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    a.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let expect = |s: &mut std::net::TcpStream, want: &[u8]| {
        let mut got = vec![0u8; want.len()];
        s.read_exact(&mut got).expect("reply");
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    };
    const NOAUTH: &[u8] = b"-NOAUTH Authentication required.\r\n";
    a.write_all(b"PING\r\nPI").unwrap();
    expect(&mut a, NOAUTH);
    let mut b = RawConn::connect_timeout(server.port, Duration::from_secs(10)).expect("connect");
    assert_eq!(
        b.call(&["AUTH", "pw"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    assert_eq!(b.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
    a.write_all(b"NG\r\n").unwrap();
    expect(&mut a, NOAUTH);
    a.write_all(b"AUTH pw\r\nSET k v\r\nGET k\r\n").unwrap();
    expect(&mut a, b"+OK\r\n+OK\r\n$1\r\nv\r\n");
}

/// Past `maxclients` a new connection gets Redis' error and is closed; the
/// clients already connected are not touched, and once one leaves a new one
/// gets in.
#[test]
fn connections_past_maxclients_are_refused() {
    use std::io::Read;
    let server = MemlogServer::start(&[]).expect("server");
    let mut a = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        a.call(&["CONFIG", "SET", "maxclients", "2"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    let mut b = RawConn::connect(server.port).expect("connect");
    assert_eq!(b.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
    let mut c = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    c.read_to_end(&mut got).expect("refused and closed");
    assert_eq!(
        String::from_utf8_lossy(&got),
        "-ERR max number of clients reached\r\n"
    );
    assert_eq!(a.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
    drop(b);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut d = RawConn::connect(server.port).expect("connect");
        match d.call(&["PING"]) {
            Ok(RespValue::Simple(s)) if s == "PONG" => break,
            other => assert!(Instant::now() < deadline, "{other:?}"),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// CLIENT KILL closes a client that stopped reading while the server waits
/// to write its replies (the kill waited behind that write for good).
#[test]
fn client_kill_closes_a_client_that_does_not_read() {
    use std::io::Write;
    let server = MemlogServer::start(&[]).expect("server");
    let mut a = RawConn::connect(server.port).expect("connect");
    let big = "x".repeat(8 << 20);
    assert_eq!(
        a.call(&["SET", "big", &big]).unwrap(),
        RespValue::Simple("OK".into())
    );
    let mut lazy = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    lazy.write_all(b"CLIENT SETNAME lazy\r\n").unwrap();
    for _ in 0..8 {
        lazy.write_all(b"GET big\r\n").unwrap();
    }
    let listed = |a: &mut RawConn| match a.call(&["CLIENT", "LIST"]).unwrap() {
        RespValue::Bulk(b) => String::from_utf8_lossy(&b).contains("name=lazy"),
        other => panic!("CLIENT LIST: {other:?}"),
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !listed(&mut a) {
        assert!(Instant::now() < deadline, "the lazy client never showed");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the server fill the socket and wait on it.
    std::thread::sleep(Duration::from_millis(300));
    let id = match a.call(&["CLIENT", "LIST"]).unwrap() {
        RespValue::Bulk(b) => String::from_utf8_lossy(&b)
            .lines()
            .find(|l| l.contains("name=lazy"))
            .and_then(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
            .expect("its id")
            .to_string(),
        other => panic!("CLIENT LIST: {other:?}"),
    };
    assert_eq!(
        a.call(&["CLIENT", "KILL", "ID", &id]).unwrap(),
        RespValue::Int(1)
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while listed(&mut a) {
        assert!(
            Instant::now() < deadline,
            "the killed client is still there"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(lazy);
}

/// `--config FILE` and redis-server-style options after `--` configure the
/// server at startup as CONFIG SET would (the options after the file, the
/// flags over both); CONFIG REWRITE writes the running configuration back
/// into the file, so it outlives a restart (memlog's log keeps data, not
/// configuration). A bad directive stops the start.
#[test]
fn a_config_file_configures_the_server_and_config_rewrite_keeps_changes() {
    let conf_dir = tempfile::tempdir().unwrap();
    let conf = conf_dir.path().join("memlog.conf");
    std::fs::write(
        &conf,
        "# memlog test\nport 1\nmaxmemory 100mb\nmaxmemory-policy allkeys-lfu\n\
         requirepass \"pass word\"\ndaemonize no\nsave 900 1\nsave 300 10\n",
    )
    .unwrap();
    let conf_arg = conf.to_str().unwrap();
    let mut server = MemlogServer::start(&[
        "--config",
        conf_arg,
        "--",
        "--maxmemory",
        "200mb",
        "--timeout",
        "30",
    ])
    .expect("server");
    let login = |port: u16| {
        let mut c = RawConn::connect(port).unwrap();
        assert!(c.call(&["GET", "x"]).unwrap().is_error(), "requirepass");
        assert_eq!(
            c.call(&["AUTH", "pass word"]).unwrap(),
            RespValue::Simple("OK".into())
        );
        c
    };
    // The harness' --port wins over the file's.
    let mut c = login(server.port);
    assert_eq!(
        config_value(&mut c, "maxmemory"),
        RespValue::Bulk(b"209715200".to_vec())
    );
    assert_eq!(
        config_value(&mut c, "maxmemory-policy"),
        RespValue::Bulk(b"allkeys-lfu".to_vec())
    );
    assert_eq!(
        config_value(&mut c, "timeout"),
        RespValue::Bulk(b"30".to_vec())
    );
    // `save` lines add up, as Redis reads them.
    assert_eq!(
        config_value(&mut c, "save"),
        RespValue::Bulk(b"900 1 300 10".to_vec())
    );
    let RespValue::Bulk(info) = c.call(&["INFO", "server"]).unwrap() else {
        panic!("INFO");
    };
    assert!(
        String::from_utf8_lossy(&info).contains(&format!("config_file:{conf_arg}\r\n")),
        "INFO config_file"
    );
    c.call(&["CONFIG", "SET", "maxmemory-samples", "7"])
        .unwrap();
    assert_eq!(
        c.call(&["CONFIG", "REWRITE"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    for line in [
        "# memlog test",
        "port 1",
        "maxmemory 209715200",
        "maxmemory-samples 7",
        "timeout 30",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    // Rewrites pipelined with changes between them: each answers once
    // the file is written, the file ends with the last, and a rewrite
    // inside MULTI answers in EXEC's array.
    for (name, value) in [("maxmemory-samples", "8"), ("maxmemory-samples", "7")] {
        c.send(&["CONFIG", "SET", name, value]).unwrap();
        c.send(&["CONFIG", "REWRITE"]).unwrap();
    }
    for _ in 0..4 {
        assert_eq!(c.read().unwrap(), RespValue::Simple("OK".into()));
    }
    c.call(&["MULTI"]).unwrap();
    c.call(&["CONFIG", "REWRITE"]).unwrap();
    assert_eq!(
        c.call(&["EXEC"]).unwrap(),
        RespValue::Array(vec![RespValue::Simple("OK".into())])
    );
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.lines().any(|l| l == "maxmemory-samples 7"), "{text}");
    server.restart().expect("restart");
    let mut c = login(server.port);
    assert_eq!(
        config_value(&mut c, "maxmemory-samples"),
        RespValue::Bulk(b"7".to_vec())
    );

    // A flag given beats the file.
    let other =
        MemlogServer::start(&["--requirepass", "flag", "--config", conf_arg]).expect("server");
    let mut c = RawConn::connect(other.port).unwrap();
    assert_eq!(
        c.call(&["AUTH", "flag"]).unwrap(),
        RespValue::Simple("OK".into())
    );

    // A bad directive: the server does not start.
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(memlog_tests::memlog_bin())
        .args([
            "server",
            "--port",
            &memlog_tests::free_port().to_string(),
            "--data-dir",
        ])
        .arg(dir.path())
        .args(["--", "--maxmemory-policy", "sometimes"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--maxmemory-policy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// COMMAND's name, arity, flags and legacy key positions are Redis' for
/// every command memlog has (what cluster-aware clients read): containers
/// show theirs on their subcommands, and flags such as allow_busy,
/// skip_monitor and no_async_loading are listed. Shard pub/sub's channels
/// are not keys to memlog's hazard tracker, so their positions stay 0.
#[test]
fn command_flags_and_key_positions_match_redis() {
    let d = start();
    let table = |port: u16| {
        let mut c = RawConn::connect(port).unwrap();
        let RespValue::Array(all) = c.call(&["COMMAND"]).unwrap() else {
            panic!("COMMAND");
        };
        all.into_iter()
            .filter_map(|e| match e {
                RespValue::Array(f) => {
                    let RespValue::Bulk(name) = &f[0] else {
                        return None;
                    };
                    Some((String::from_utf8_lossy(name).into_owned(), f[..6].to_vec()))
                }
                _ => None,
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (m, r) = (table(d.memlog.port), table(d.redis.port));
    let mut differ = Vec::new();
    for (name, info) in &m {
        if matches!(name.as_str(), "ssubscribe" | "sunsubscribe" | "spublish") {
            continue;
        }
        match r.get(name) {
            Some(want) if want == info => {}
            want => differ.push(format!("{name}: memlog {info:?}, redis {want:?}")),
        }
    }
    assert!(differ.is_empty(), "{differ:#?}");
}

/// One parameter's value, by CONFIG GET.
fn config_value(c: &mut RawConn, name: &str) -> RespValue {
    match c.call(&["CONFIG", "GET", name]).unwrap() {
        RespValue::Array(v) => v[1].clone(),
        other => panic!("{other:?}"),
    }
}

/// CONFIG GET * as name → value.
fn all_config(port: u16) -> std::collections::BTreeMap<String, String> {
    let mut c = RawConn::connect(port).unwrap();
    let RespValue::Array(v) = c.call(&["CONFIG", "GET", "*"]).unwrap() else {
        panic!("CONFIG GET *");
    };
    let text = |v: &RespValue| match v {
        RespValue::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("{other:?}"),
    };
    v.chunks(2).map(|p| (text(&p[0]), text(&p[1]))).collect()
}

/// The redis.conf that Debian's redis-server package installs (Redis' own,
/// with `bind 127.0.0.1 -::1`, `tcp-backlog`, `pidfile`, three
/// `client-output-buffer-limit` lines and parameters memlog keeps without
/// acting on) starts memlog, and every parameter then reads as it does in
/// a redis-server started from the same file, TLS aside (memlog has none)
/// and the settings the harness or memlog choose apart.
#[test]
fn redis_own_configuration_file_configures_memlog_as_redis_server() {
    let conf = "/etc/redis/redis.conf";
    assert!(
        std::path::Path::new(conf).exists(),
        "the redis-server package installs {conf} (make test installs it)"
    );
    // The process settings of a packaged service, turned off alike.
    let overrides = ["--daemonize", "no", "--pidfile", "", "--logfile", ""];
    let memlog = MemlogServer::start(&[&["--config", conf, "--"][..], &overrides[..]].concat())
        .expect("memlog starts from Redis' configuration file");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut cmd = Command::new("redis-server");
    cmd.arg(conf)
        .args(["--port", &port.to_string()])
        .args(overrides)
        .arg("--dir")
        .arg(dir.path());
    let _redis = Process::spawn("redis-server", cmd, None).unwrap();
    wait_for_port(port, Duration::from_secs(10)).unwrap();

    let m = all_config(memlog.port);
    let r = all_config(port);
    // Each server's own port and directory, and the harness' `--bind`
    // (the file's list: `bind_listens_on_a_list_of_addresses_as_redis`);
    // DEBUG is allowed to local clients and nothing is saved by time by
    // default in memlog (its log is always on: docs/compatibility.md).
    let apart = ["port", "dir", "bind", "enable-debug-command", "save"];
    for (name, value) in &r {
        if name.starts_with("tls-") || apart.contains(&name.as_str()) {
            continue;
        }
        assert_eq!(m.get(name), Some(value), "CONFIG GET {name}");
    }
    let own: Vec<&String> = m.keys().filter(|k| !r.contains_key(*k)).collect();
    assert_eq!(
        own,
        ["written-script-time-limit"],
        "memlog's own parameters"
    );
}

/// `oom-score-adj` sets the process' score in /proc as Redis does: the
/// first of `oom-score-adj-values`, added to the score the process had
/// (`relative`) or alone (`absolute`), and `no` puts the old score back.
#[test]
fn oom_score_adj_sets_the_process_score_as_redis_does() {
    let d = start();
    let score = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim()
            .to_string()
    };
    let servers = [
        (d.memlog.port, d.memlog.process.pid()),
        (d.redis.port, d.redis.process.pid()),
    ];
    let mut seen = Vec::new();
    for (port, pid) in servers {
        let mut c = RawConn::connect(port).unwrap();
        let mut set = |name: &str, value: &str| c.call(&["CONFIG", "SET", name, value]).unwrap();
        let before = score(pid);
        let mut steps = Vec::new();
        for (name, value) in [
            ("oom-score-adj-values", "100 200 300"),
            ("oom-score-adj", "absolute"),
            ("oom-score-adj-values", "150 200 300"),
            ("oom-score-adj", "relative"),
            ("oom-score-adj", "no"),
            ("oom-score-adj-values", "0 2001 0"),
        ] {
            let reply = set(name, value);
            steps.push((format!("{reply:?}"), score(pid)));
        }
        assert_eq!(steps[1].1, "100", "absolute: the first value");
        assert_eq!(score(pid), before, "no: the score from before");
        seen.push(steps);
    }
    assert_eq!(seen[0], seen[1], "memlog, then redis-server");
}

/// A pid killed (-9) when dropped: a daemon no harness spawned.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-9", &self.0.to_string()])
            .status();
    }
}

/// `daemonize yes` detaches as redis-server does (the command returns at
/// once with success while the server goes on in a session of its own),
/// `pidfile` holds the server's pid until a shutdown removes it (SIGTERM
/// shuts down as SHUTDOWN does), `logfile` gets the log and `loglevel`
/// filters it.
#[test]
fn daemonize_pidfile_and_logfile_work_as_in_redis_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let pidfile = dir.path().join("memlog.pid");
    let logfile = dir.path().join("memlog.log");
    let status = Command::new(memlog_tests::memlog_bin())
        .args(["server", "--bind", "127.0.0.1", "--port", &port.to_string()])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--", "--daemonize", "yes", "--pidfile"])
        .arg(&pidfile)
        .arg("--logfile")
        .arg(&logfile)
        // `loglevel` filters only where RUST_LOG does not.
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the starting process exits 0");
    wait_for_port(port, Duration::from_secs(30)).unwrap();
    let pid: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _daemon = KillOnDrop(pid);
    // Its own session: field 6 of /proc/PID/stat (after the name).
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_name = &stat[stat.rfind(')').unwrap() + 2..];
    let session: u32 = after_name.split(' ').nth(3).unwrap().parse().unwrap();
    assert_eq!(session, pid, "the daemon leads its own session");

    let mut c = RawConn::connect(port).unwrap();
    assert_eq!(
        c.call(&["SET", "k", "v"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    assert_eq!(
        config_value(&mut c, "daemonize"),
        RespValue::Bulk(b"yes".to_vec())
    );
    assert_eq!(
        config_value(&mut c, "pidfile"),
        RespValue::Bulk(pidfile.to_str().unwrap().as_bytes().to_vec())
    );
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert!(log.contains("memlog serving RESP"), "{log}");
    assert!(!log.contains('\x1b'), "no terminal colours in a file");

    // SIGTERM shuts down as SHUTDOWN does (as a service manager stops
    // redis-server); `loglevel warning` keeps its warning and leaves out
    // the notice that follows.
    assert_eq!(
        c.call(&["CONFIG", "SET", "loglevel", "warning"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while pidfile.exists() {
        assert!(
            Instant::now() < deadline,
            "shutting down removes the pid file"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&logfile).unwrap();
    assert!(log.contains("received SIGTERM"), "{log}");
    assert!(!log.contains("SHUTDOWN: exiting"), "{log}");
}

/// `bind` takes Redis' list of addresses: each is listened on, one marked
/// `-` that the machine lacks is skipped (Redis' stock `-::1`), one not
/// marked stops the start and is named; `tcp-backlog` is taken.
#[test]
fn bind_listens_on_a_list_of_addresses_as_redis() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("memlog.conf");
    // 192.0.2.1 is TEST-NET-1: on no machine's interfaces.
    std::fs::write(&conf, "bind 127.0.0.1 -::1 -192.0.2.1\ntcp-backlog 77\n").unwrap();
    let port = free_port();
    let mut cmd = Command::new(memlog_tests::memlog_bin());
    cmd.args(["server", "--port", &port.to_string(), "--config"])
        .arg(&conf)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let _server = Process::spawn("memlog server", cmd, None).unwrap();
    wait_for_port(port, Duration::from_secs(30)).unwrap();
    let mut c = RawConn::connect(port).unwrap();
    assert_eq!(
        config_value(&mut c, "bind"),
        RespValue::Bulk(b"127.0.0.1 -::1 -192.0.2.1".to_vec())
    );
    assert_eq!(
        config_value(&mut c, "tcp-backlog"),
        RespValue::Bulk(b"77".to_vec())
    );
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        use std::io::{Read, Write};
        let mut v6 = std::net::TcpStream::connect(("::1", port)).expect("listening on ::1");
        v6.write_all(b"PING\r\n").unwrap();
        let mut buf = [0u8; 7];
        v6.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"+PONG\r\n");
    }

    let out = Command::new(memlog_tests::memlog_bin())
        .args(["server", "--port", &free_port().to_string()])
        .args(["--bind", "127.0.0.1 192.0.2.1", "--data-dir"])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("binding 192.0.2.1"), "{err}");
}

/// The parameters memlog keeps for Redis' sake check their values as
/// Redis does: ranges, enum names, multi-word flags, process title
/// templates, and defragmentation, which neither server here can do.
#[test]
fn config_set_checks_redis_parameters_as_redis_does() {
    let mut d = start();
    for (name, value) in [
        ("shutdown-on-sigint", "save nosave"),
        ("shutdown-on-sigint", "force now"),
        ("shutdown-on-sigint", "default save"),
        ("shutdown-on-sigint", "bogus"),
        ("shutdown-on-sigterm", "NOW Force"),
        ("oom-score-adj-values", "1 2"),
        ("oom-score-adj-values", "0 100 3000"),
        ("oom-score-adj-values", "1 2 x"),
        ("proc-title-template", "{title}"),
        ("proc-title-template", "x"),
        ("proc-title-template", "{title} {port"),
        ("proc-title-template", "{title} }"),
        ("proc-title-template", "{{title}"),
        ("proc-title-template", "{title} {unknown}"),
        ("proc-title-template", "{title} {listen-addr}"),
        ("active-defrag-cycle-max", "100"),
        ("active-defrag-ignore-bytes", "0"),
        ("activedefrag", "yes"),
        ("slave-priority", "7"),
        ("replica-priority", "-1"),
        ("cluster-node-timeout", "-1"),
        ("repl-diskless-load", "swapdb"),
        ("acl-pubsub-default", "allchannels"),
        ("cluster-preferred-endpoint-type", "hostname"),
        ("rdbchecksum", "no"),
        ("tcp-backlog", "100"),
        ("syslog-ident", "other"),
    ] {
        d.check(&["CONFIG", "SET", name, value]);
        d.check(&["CONFIG", "GET", name]);
    }
}

/// A script that runs for `ms` milliseconds of wall time, however fast
/// the machine.
fn slow_script(ms: u64) -> String {
    format!(
        "local t = redis.call('time') local s = t[1] * 1000000 + t[2] \
         repeat t = redis.call('time') until t[1] * 1000000 + t[2] - s > {} return 1",
        ms * 1000
    )
}

/// What a busy script's hook does keeps each client's replies in order and
/// its connection sound: a message published before the script reaches a
/// subscriber before anything answered meanwhile; a connection the hook
/// accepted, sending half a command during one busy script and the rest
/// during the next of the same batch, gets one reply for it (its value's
/// bytes are never run as commands); one that talked during a long script
/// is not closed by `timeout` when it ends; and a threshold of 0 never
/// makes a script busy, as in Redis.
#[test]
fn busy_scripts_keep_replies_in_order_and_clients_alive() {
    let server = MemlogServer::start(&[]).expect("server");
    let port = server.port;
    let mut c = RawConn::connect(port).unwrap();
    c.call(&["CONFIG", "SET", "busy-reply-threshold", "50"])
        .unwrap();
    c.call(&["CONFIG", "SET", "timeout", "3"]).unwrap();

    // Connected before, and talks through most of both scripts (`timeout`
    // is 3 s).
    let mut talker = RawConn::connect(port).unwrap();
    talker.call(&["PING"]).unwrap();
    let mut a = RawConn::connect(port).unwrap();
    a.send(&["EVAL", &slow_script(1500), "0"]).unwrap();
    a.send(&["EVAL", &slow_script(1500), "0"]).unwrap();
    until_busy(port, BUSY_EVAL);
    // Accepted by the hook; half a SET now, the rest (a value that looks
    // like commands) during the next script.
    let mut x = RawConn::connect(port).unwrap();
    let set = b"*3\r\n$3\r\nSET\r\n$4\r\nnote\r\n$17\r\nx\r\nSHUTDOWN NOSAVE\r\n";
    let cut = 24;
    x.send_raw(&set[..cut]).unwrap();
    let until = Instant::now() + Duration::from_millis(2000);
    while Instant::now() < until {
        let r = talker.call(&["PING"]).unwrap();
        assert!(
            r == RespValue::Error(BUSY_EVAL.into()) || r == RespValue::Simple("PONG".into()),
            "{r:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    x.send_raw(&set[cut..]).unwrap();
    let first = x.read().unwrap();
    assert!(
        first == RespValue::Error(BUSY_EVAL.into()) || first == RespValue::Simple("OK".into()),
        "one reply for the whole SET: {first:?}"
    );
    assert_eq!(a.read().unwrap(), RespValue::Int(1));
    assert_eq!(a.read().unwrap(), RespValue::Int(1));
    assert_eq!(x.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
    // Past the next idle check, within 3 s of its last command (4 s after
    // its last one before the scripts).
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(
        talker.call(&["PING"]).unwrap(),
        RespValue::Simple("PONG".into()),
        "not closed as idle"
    );
    // (`c` said nothing for longer than `timeout`: closed, as in Redis.)
    let mut c = RawConn::connect(port).unwrap();
    c.call(&["CONFIG", "SET", "timeout", "0"]).unwrap();

    // A subscriber with a message not yet sent is left alone until the
    // script ends (its PING's answer must not overtake the message).
    let mut sub = RawConn::connect(port).unwrap();
    sub.call(&["SUBSCRIBE", "ch"]).unwrap();
    a.send(&["PUBLISH", "ch", "hello"]).unwrap();
    a.send(&["EVAL", &slow_script(500), "0"]).unwrap();
    until_busy(port, BUSY_EVAL);
    sub.send(&["PING"]).unwrap();
    assert_eq!(
        sub.read().unwrap(),
        RespValue::Array(vec![
            RespValue::Bulk(b"message".to_vec()),
            RespValue::Bulk(b"ch".to_vec()),
            RespValue::Bulk(b"hello".to_vec()),
        ]),
        "the message published before the script comes first"
    );
    assert_eq!(
        sub.read().unwrap(),
        RespValue::Array(vec![
            RespValue::Bulk(b"pong".to_vec()),
            RespValue::Bulk(b"".to_vec()),
        ])
    );
    assert_eq!(a.read().unwrap(), RespValue::Int(1));
    assert_eq!(a.read().unwrap(), RespValue::Int(1));

    // Threshold 0: the others wait for the script, as in Redis.
    c.call(&["CONFIG", "SET", "busy-reply-threshold", "0"])
        .unwrap();
    a.send(&["EVAL", &slow_script(300), "0"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(c.call(&["PING"]).unwrap(), RespValue::Simple("PONG".into()));
    assert_eq!(a.read().unwrap(), RespValue::Int(1));
}

/// A CLIENT LIST field of the client with `id`.
fn client_field(list: &str, id: &str, field: &str) -> String {
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap_or_else(|| panic!("client {id} in {list}"));
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{field}=")))
        .unwrap_or_else(|| panic!("{field} in {line}"))
        .to_string()
}

/// CLIENT LIST and CLIENT INFO show each connection's own file descriptor
/// and buffers as Redis does: the query buffer holds the command being
/// run (26 bytes for `CLIENT LIST`) or what a client has sent of one not
/// yet whole, `argv-mem` the running command's arguments, `multi-mem` a
/// queued transaction, and `tot-mem` all of it (they were always 0, and
/// `fd` made up).
#[test]
fn client_list_shows_buffers_and_file_descriptors() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).unwrap();
    let text = |v: RespValue| match v {
        RespValue::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("{other:?}"),
    };
    let me = c.call(&["CLIENT", "ID"]).unwrap();
    let RespValue::Int(me) = me else { panic!() };
    let mut half = RawConn::connect(server.port).unwrap();
    let RespValue::Int(half_id) = half.call(&["CLIENT", "ID"]).unwrap() else {
        panic!()
    };
    half.send_raw(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhel")
        .unwrap();
    let mut tx = RawConn::connect(server.port).unwrap();
    let RespValue::Int(tx_id) = tx.call(&["CLIENT", "ID"]).unwrap() else {
        panic!()
    };
    tx.call(&["MULTI"]).unwrap();
    tx.call(&["SET", "key", "value"]).unwrap();
    std::thread::sleep(Duration::from_millis(100));

    let list = text(c.call(&["CLIENT", "LIST"]).unwrap());
    let (me, half_id, tx_id) = (me.to_string(), half_id.to_string(), tx_id.to_string());
    assert_eq!(client_field(&list, &me, "qbuf"), "26");
    assert_eq!(client_field(&list, &me, "argv-mem"), "10");
    assert_eq!(client_field(&list, &half_id, "qbuf"), "27");
    assert_eq!(client_field(&list, &half_id, "argv-mem"), "0");
    assert_ne!(client_field(&list, &tx_id, "multi-mem"), "0");
    let fds: std::collections::HashSet<String> = [&me, &half_id, &tx_id]
        .iter()
        .map(|id| client_field(&list, id, "fd"))
        .collect();
    assert_eq!(fds.len(), 3, "each its own descriptor: {list}");
    for id in [&me, &half_id, &tx_id] {
        let tot: u64 = client_field(&list, id, "tot-mem").parse().unwrap();
        let qbuf: u64 = client_field(&list, id, "qbuf").parse().unwrap();
        assert!(tot > qbuf, "{list}");
    }
    let info = text(c.call(&["CLIENT", "INFO"]).unwrap());
    assert!(info.contains(" qbuf=26 "), "{info}");
    assert!(info.contains(" argv-mem=10 "), "{info}");
}

/// `redis-cli -s SOCKET ARGS...`: its output, trimmed.
fn cli_unix(socket: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-s")
        .arg(socket)
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until the server at `socket` answers PING.
fn wait_for_unix_socket(socket: &std::path::Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while cli_unix(socket, &["PING"]) != "PONG" {
        assert!(
            Instant::now() < deadline,
            "{} never answered",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `unixsocket` and `unixsocketperm` from Redis' own configuration file make
/// memlog listen on a Unix domain socket as redis-server does (here both
/// with `port 0`: no TCP at all): redis-cli answers the same through it,
/// CLIENT INFO names such a client by the socket's path with flag U, the
/// file gets the permissions asked for, both parameters are fixed at
/// startup, a file left by a killed server is replaced, SHUTDOWN removes
/// it, and the socket keeps working beside TCP while CONFIG SET moves the
/// port and while a busy script takes new connections (SCRIPT KILL).
#[test]
fn unixsocket_serves_clients_as_redis_does() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let conf = |name: &str| {
        let path = dir.path().join(format!("{name}.conf"));
        let socket = dir.path().join(format!("{name}.sock"));
        std::fs::write(
            &path,
            format!(
                "port 0\nunixsocket {}\nunixsocketperm 770\nbusy-reply-threshold 100\n",
                socket.display()
            ),
        )
        .unwrap();
        (path, socket)
    };
    let (redis_conf, redis_sock) = conf("redis");
    let mut redis = Command::new("redis-server");
    redis
        .arg(&redis_conf)
        .args(["--save", "", "--appendonly", "no", "--dir"])
        .arg(dir.path());
    let mut redis = Process::spawn("redis-server", redis, None).unwrap();
    let (memlog_conf, memlog_sock) = conf("memlog");
    let memlog_cmd = |port: Option<u16>| {
        let mut cmd = Command::new(memlog_tests::memlog_bin());
        cmd.args(["server", "--config"])
            .arg(&memlog_conf)
            .arg("--data-dir")
            .arg(dir.path().join("data"));
        if let Some(p) = port {
            cmd.args(["--port", &p.to_string()]);
        }
        cmd
    };
    let mut memlog = Process::spawn("memlog server", memlog_cmd(None), None).unwrap();
    wait_for_unix_socket(&redis_sock);
    wait_for_unix_socket(&memlog_sock);

    // The same replies, the socket's path aside.
    for args in [
        &["CONFIG", "GET", "unixsocket"][..],
        &["CONFIG", "GET", "unixsocketperm"],
        &["CONFIG", "GET", "port"],
        &["CONFIG", "SET", "unixsocket", "/tmp/elsewhere.sock"],
        &["CONFIG", "SET", "unixsocketperm", "777"],
        &["SET", "k", "v"],
        &["GET", "k"],
    ] {
        let r = cli_unix(&redis_sock, args).replace("redis.sock", "S");
        let m = cli_unix(&memlog_sock, args).replace("memlog.sock", "S");
        assert_eq!(m, r, "{args:?}");
    }
    for (sock, name) in [(&redis_sock, "redis"), (&memlog_sock, "memlog")] {
        let info = cli_unix(sock, &["CLIENT", "INFO"]);
        let id = info
            .split(' ')
            .next()
            .unwrap_or_default()
            .trim_start_matches("id=");
        let named = format!("{}:0", sock.display());
        assert_eq!(client_field(&info, id, "addr"), named, "{name}");
        assert_eq!(client_field(&info, id, "laddr"), named, "{name}");
        assert_eq!(client_field(&info, id, "flags"), "U", "{name}");
        let mode = std::fs::metadata(sock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o770, "{name}");
    }

    // A killed server leaves its file; the next one replaces it and has
    // the data. With a TCP port too, which CONFIG SET moves while the
    // socket stays.
    memlog.kill();
    assert!(memlog_sock.exists());
    let port = free_port();
    let mut memlog = Process::spawn("memlog server", memlog_cmd(Some(port)), None).unwrap();
    wait_for_unix_socket(&memlog_sock);
    assert_eq!(cli_unix(&memlog_sock, &["GET", "k"]), "v");
    let moved = free_port();
    assert_eq!(
        cli_unix(&memlog_sock, &["CONFIG", "SET", "port", &moved.to_string()]),
        "OK"
    );
    wait_for_port(moved, Duration::from_secs(10)).unwrap();
    assert_eq!(cli_unix(&memlog_sock, &["GET", "k"]), "v");

    // A busy script accepts a connection on the socket for SCRIPT KILL.
    let busy = std::thread::spawn(move || {
        let mut c = RawConn::connect(moved).unwrap();
        c.call(&["EVAL", "while true do end", "0"]).unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = cli_unix(&memlog_sock, &["SCRIPT", "KILL"]);
        if r == "OK" {
            break;
        }
        assert!(Instant::now() < deadline, "SCRIPT KILL: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    match busy.join().unwrap() {
        RespValue::Error(e) => assert!(e.starts_with("ERR Script killed by user"), "{e}"),
        other => panic!("{other:?}"),
    }

    // SHUTDOWN removes the file, as Redis does.
    cli_unix(&redis_sock, &["SHUTDOWN", "NOSAVE"]);
    cli_unix(&memlog_sock, &["SHUTDOWN"]);
    assert!(redis.wait_exit(Duration::from_secs(30)).is_some());
    assert!(memlog.wait_exit(Duration::from_secs(30)).is_some());
    assert!(!redis_sock.exists());
    assert!(!memlog_sock.exists());

    // Nowhere to listen: as Redis, it does not start.
    let out = Command::new(memlog_tests::memlog_bin())
        .args(["server", "--port", "0", "--data-dir"])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not listen anywhere"), "{err}");
}

/// Query buffers as Redis' clients cron keeps them: a client that sent a
/// command has a read buffer of 16-32 KB (qbuf + qbuf-free in CLIENT LIST,
/// its name set by CLIENT SETNAME not holding on to it); after more than 2
/// seconds without input it holds none, and takes one again with its next
/// command; after a 400 KB argument the big buffer shrinks back within a
/// second of small commands. (Tcl unit/querybuf checks the same.)
#[test]
fn query_buffers_are_freed_when_idle_and_shrink_after_big_commands() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut observer = RawConn::connect(server.port).unwrap();
    let mut c = RawConn::connect(server.port).unwrap();
    c.call(&["CLIENT", "SETNAME", "watched"]).unwrap();
    let RespValue::Int(id) = c.call(&["CLIENT", "ID"]).unwrap() else {
        panic!()
    };
    let id = id.to_string();
    let mut size = || -> u64 {
        let RespValue::Bulk(list) = observer.call(&["CLIENT", "LIST"]).unwrap() else {
            panic!()
        };
        let list = String::from_utf8(list).unwrap();
        let field = |f: &str| client_field(&list, &id, f).parse::<u64>().unwrap();
        field("qbuf") + field("qbuf-free")
    };
    let first = size();
    assert!((16384..32768).contains(&first), "{first}");

    let deadline = Instant::now() + Duration::from_secs(10);
    while size() != 0 {
        assert!(
            Instant::now() < deadline,
            "the idle client's buffer was never freed"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        c.call(&["SET", "small", "v"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    let again = size();
    assert!((16384..32768).contains(&again), "{again}");

    let big = "A".repeat(400_000);
    assert_eq!(
        c.call(&["SET", "x", &big]).unwrap(),
        RespValue::Simple("OK".into())
    );
    let peak = size();
    assert!(peak > 32768, "{peak}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        c.call(&["SET", "x", "small"]).unwrap();
        let now = size();
        if now > 0 && now < peak {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {now} bytes after small commands"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        c.call(&["GET", "x"]).unwrap(),
        RespValue::Bulk(b"small".to_vec())
    );
    assert_eq!(
        c.call(&["CLIENT", "GETNAME"]).unwrap(),
        RespValue::Bulk(b"watched".to_vec())
    );
}

/// Once a connection has been idle for 2 s its read buffer and its (empty)
/// reply buffer are freed, as Redis frees an idle client's: 200 clients
/// that each read a 20 KB value hold less than half as much afterwards
/// (by hand: ~64 KB each while active, ~8 KB idle, as Redis' ~8 KB; before,
/// ~48 KB idle: a 16 KB read buffer and a reply buffer as big as the
/// biggest reply). Memory figures belong to `make bench`; this checks that
/// the buffers go.
#[test]
fn idle_connections_give_their_buffers_back() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).unwrap();
    let big = "x".repeat(20_000);
    c.call(&["SET", "big", &big]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let base = memlog_tests::info_i64(&mut c, "used_memory");
    let mut clients: Vec<RawConn> = (0..200)
        .map(|_| RawConn::connect(server.port).unwrap())
        .collect();
    for k in clients.iter_mut() {
        assert_eq!(
            k.call(&["GET", "big"]).unwrap(),
            RespValue::Bulk(big.clone().into_bytes())
        );
    }
    let per_client = |c: &mut RawConn| (memlog_tests::info_i64(c, "used_memory") - base) / 200;
    let active = per_client(&mut c);
    assert!(active > 20_000, "{active} bytes a client while active");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let idle = per_client(&mut c);
        if idle < active / 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{idle} bytes a client after idling"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // And they still work.
    for k in clients.iter_mut().take(5) {
        assert_eq!(
            k.call(&["GET", "big"]).unwrap(),
            RespValue::Bulk(big.clone().into_bytes())
        );
    }
}

/// Relative `pidfile`, `logfile` and `unixsocket` paths are inside `dir`
/// (memlog's data directory), where Redis, which changes into `dir`, puts
/// them; not in the directory the server was started from.
#[test]
fn relative_paths_in_the_configuration_are_inside_dir() {
    let started_in = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let data_dir = data.path().join("data");
    let port = free_port();
    let mut cmd = Command::new(memlog_tests::memlog_bin());
    cmd.current_dir(started_in.path())
        .args(["server", "--port", &port.to_string(), "--data-dir"])
        .arg(&data_dir)
        .args(["--", "--pidfile", "m.pid", "--logfile", "m.log"])
        .args(["--unixsocket", "m.sock"]);
    let mut server = Process::spawn("memlog server", cmd, None).unwrap();
    wait_for_port(port, Duration::from_secs(30)).unwrap();
    let socket = data_dir.join("m.sock");
    wait_for_unix_socket(&socket);
    for name in ["m.pid", "m.log", "m.sock"] {
        assert!(data_dir.join(name).exists(), "{name} in the data directory");
        assert!(
            !started_in.path().join(name).exists(),
            "{name} where it started"
        );
    }
    let pid = std::fs::read_to_string(data_dir.join("m.pid")).unwrap();
    assert_eq!(pid.trim(), server.pid().to_string());
    // CONFIG GET shows them as configured, as Redis does.
    let mut c = RawConn::connect(port).unwrap();
    assert_eq!(
        config_value(&mut c, "unixsocket"),
        RespValue::Bulk(b"m.sock".to_vec())
    );
    cli_unix(&socket, &["SHUTDOWN"]);
    assert!(server.wait_exit(Duration::from_secs(30)).is_some());
    assert!(!data_dir.join("m.pid").exists());
    assert!(!socket.exists());
    assert!(std::fs::read_to_string(data_dir.join("m.log"))
        .unwrap()
        .contains("SHUTDOWN"));
}
