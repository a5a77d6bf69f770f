//! Durable mode keeps pipelined replies complete and in order.

use std::io::Write;

use memlog_tests::{persistence_counter, MemlogServer, RawConn, RespValue};

#[test]
fn ten_thousand_pipelined_mixed_commands_in_order() {
    let server = MemlogServer::start(&[]).expect("server");
    let n = 10_000;
    let mut buf = Vec::new();
    for i in 0..n {
        let cmd: Vec<String> = match i % 4 {
            0 => vec!["SET".into(), format!("k{i}"), format!("v{i}")],
            1 => vec!["GET".into(), format!("k{}", i - 1)],
            2 => vec!["INCR".into(), "ctr".into()],
            _ => vec!["GET".into(), "never-written".into()],
        };
        buf.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
        for a in &cmd {
            buf.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    let mut w = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let mut r = RawConn::from_stream(w.try_clone().expect("clone")).expect("reader");
    // Write from a thread while this one reads, so full socket buffers
    // cannot deadlock the test.
    let writer = std::thread::spawn(move || w.write_all(&buf));
    let mut incr = 0;
    for i in 0..n {
        let v = r.read().expect("reply");
        let want = match i % 4 {
            0 => RespValue::Simple("OK".into()),
            1 => RespValue::Bulk(format!("v{}", i - 1).into_bytes()),
            2 => {
                incr += 1;
                RespValue::Int(incr)
            }
            _ => RespValue::Null,
        };
        assert_eq!(v, want, "reply {i}");
    }
    writer.join().expect("writer").expect("write");
    // Group commit: the 5000 writes went to the log in fewer appends.
    let field = |name: &str| persistence_counter(server.port, name);
    let (appends, records) = (field("memlog_log_appends"), field("memlog_log_records"));
    assert_eq!(field("memlog_durable"), 1);
    assert_eq!(records, 5000);
    assert!(appends < records, "{appends} appends for {records} records");
    eprintln!("{records} records in {appends} appends");
}

/// SAVE writes a snapshot (once its records are durable); a restart loads it
/// and replays the log after it.
#[test]
fn save_then_kill_9_recovers_from_snapshot_and_log() {
    let mut server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    let ok = RespValue::Simple("OK".into());
    for cmd in [
        vec!["SET", "a", "1"],
        vec!["SET", "ttl", "v", "PX", "1000000"],
        vec!["RPUSH", "l", "x", "y"],
        vec!["HSET", "h", "f", "v"],
        vec!["ZADD", "z", "1.5", "m"],
        vec!["SADD", "s", "a", "b"],
        vec!["SELECT", "3"],
        vec!["SET", "in3", "yes"],
        vec!["SELECT", "0"],
    ] {
        assert!(!c.call(&cmd).expect("reply").is_error(), "{cmd:?}");
    }
    assert_eq!(c.call(&["SAVE"]).expect("save"), ok);
    let snapshots = server.dir.path().join("data").join("snapshots");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_dir(&snapshots)
        .map(|d| d.count() == 0)
        .unwrap_or(true)
    {
        assert!(std::time::Instant::now() < deadline, "no snapshot written");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // Changes after the snapshot come from the log.
    assert_eq!(c.call(&["SET", "after", "2"]).expect("set"), ok);
    assert_eq!(
        c.call(&["RPUSH", "l", "z"]).expect("rpush"),
        RespValue::Int(3)
    );
    server.restart().expect("restart");
    let mut c = RawConn::connect(server.port).expect("connect");
    let b = |s: &str| RespValue::Bulk(s.as_bytes().to_vec());
    assert_eq!(c.call(&["GET", "a"]).unwrap(), b("1"));
    assert_eq!(c.call(&["GET", "after"]).unwrap(), b("2"));
    assert_eq!(
        c.call(&["LRANGE", "l", "0", "-1"]).unwrap(),
        RespValue::Array(vec![b("x"), b("y"), b("z")])
    );
    assert_eq!(c.call(&["HGET", "h", "f"]).unwrap(), b("v"));
    assert_eq!(c.call(&["ZSCORE", "z", "m"]).unwrap(), b("1.5"));
    assert_eq!(c.call(&["SCARD", "s"]).unwrap(), RespValue::Int(2));
    assert!(matches!(c.call(&["PTTL", "ttl"]).unwrap(), RespValue::Int(t) if t > 0));
    c.call(&["SELECT", "3"]).unwrap();
    assert_eq!(c.call(&["GET", "in3"]).unwrap(), b("yes"));
    let log = std::fs::read_to_string(server.dir.path().join("server.1.log")).unwrap_or_default();
    assert!(
        log.contains("loaded snapshot"),
        "restart did not load the snapshot:\n{log}"
    );
}

/// The engine's write limit (`effect::MAX_WRITE_BYTES`).
const WRITE_LIMIT: usize = 32 << 20;

fn is_error_starting(r: &RespValue, prefix: &str) -> bool {
    matches!(r, RespValue::Error(e) if e.starts_with(prefix))
}

/// A write whose log record would exceed the limit is refused before it
/// runs: nothing changes and the server keeps its data set (no rebuild); a
/// transaction is refused while it queues the write that crosses the limit.
/// Writes under the limit are stored and survive a kill -9 as usual.
#[test]
fn writes_too_big_for_the_log_are_refused_before_they_run() {
    let mut server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    let ok = RespValue::Simple("OK".into());
    assert_eq!(c.call(&["SET", "small", "1"]).expect("set"), ok);
    let big = vec![b'x'; WRITE_LIMIT];
    let r = c.call(&[&b"SET"[..], b"big", &big]).expect("reply");
    assert!(
        is_error_starting(&r, "ERR write too large for the transaction log"),
        "{r:?}"
    );
    let half = vec![b'h'; WRITE_LIMIT / 2];
    assert_eq!(c.call(&["MULTI"]).expect("multi"), ok);
    assert_eq!(
        c.call(&[&b"SET"[..], b"a", &half]).expect("queue"),
        RespValue::Simple("QUEUED".into())
    );
    let r = c.call(&[&b"SET"[..], b"b", &half]).expect("reply");
    assert!(
        is_error_starting(&r, "ERR write too large for the transaction log"),
        "{r:?}"
    );
    let r = c.call(&["EXEC"]).expect("exec");
    assert!(is_error_starting(&r, "EXECABORT"), "{r:?}");
    assert_eq!(
        c.call(&["EXISTS", "big", "a", "b"]).expect("exists"),
        RespValue::Int(0)
    );
    let fits = vec![b'f'; 8 << 20];
    assert_eq!(c.call(&[&b"SET"[..], b"fits", &fits]).expect("set"), ok);
    assert_eq!(persistence_counter(server.port, "memlog_log_rebuilds"), 0);
    server.restart().expect("restart");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        c.call(&["STRLEN", "fits"]).expect("strlen"),
        RespValue::Int(8 << 20)
    );
    assert_eq!(
        c.call(&["GET", "small"]).expect("get"),
        RespValue::Bulk(b"1".to_vec())
    );
    assert_eq!(
        c.call(&["EXISTS", "big", "a", "b"]).expect("exists"),
        RespValue::Int(0)
    );
}

/// A write whose effect outgrows its arguments past what the log takes
/// (SPOP of 45 members of 1 MiB each: an SREM of 45 MiB) cannot be refused
/// before it runs. The log refuses its append, the client gets a retryable
/// error, and the server rebuilds its data set from the log, which undoes
/// the pop; then it serves again by itself.
#[test]
fn a_write_the_log_refuses_is_undone_by_a_rebuild() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    for i in 0..46u8 {
        let mut member = vec![b'm'; 1 << 20];
        member[0] = i;
        assert_eq!(
            c.call(&[&b"SADD"[..], b"s", &member]).expect("sadd"),
            RespValue::Int(1)
        );
    }
    let r = c.call(&["SPOP", "s", "45"]).expect("spop");
    assert!(is_error_starting(&r, "TRYAGAIN"), "{r:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        match c.call(&["SCARD", "s"]).expect("scard") {
            RespValue::Int(n) => {
                assert_eq!(n, 46, "the refused pop was undone");
                break;
            }
            r => assert!(
                is_error_starting(&r, "TRYAGAIN") && std::time::Instant::now() < deadline,
                "{r:?}\n{}",
                server.log_text()
            ),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(persistence_counter(server.port, "memlog_log_rebuilds"), 1);
    assert_eq!(
        c.call(&["SET", "after", "1"]).expect("set"),
        RespValue::Simple("OK".into())
    );
}

/// A command that holds the engine for longer than the lease (DEBUG SLEEP
/// here; a long script or PFSELFTEST alike) starves the log client, so the
/// lease lapses meanwhile. The commands after it, Redis answers normally;
/// so does memlog: they wait for the lease to be renewed (a heartbeat
/// through the log, which proves no other server took over) instead of
/// failing with a lease error.
#[test]
fn commands_after_a_command_longer_than_the_lease_are_served() {
    let server = MemlogServer::start(&["--lease-ms", "300"]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        c.call(&["SET", "a", "1"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    for round in 0..3 {
        let mut other = RawConn::connect(server.port).expect("connect");
        // The sleep and the commands behind it in the same read, and a
        // second client's commands queued meanwhile.
        let mut pipeline = Vec::new();
        for args in [&["DEBUG", "SLEEP", "1"][..], &["GET", "a"], &["INCR", "n"]] {
            pipeline.extend(format!("*{}\r\n", args.len()).into_bytes());
            for a in args {
                pipeline.extend(format!("${}\r\n{a}\r\n", a.len()).into_bytes());
            }
        }
        c.send_raw(&pipeline).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        other.send(&["SET", "b", "2"]).unwrap();
        assert_eq!(
            c.read().unwrap(),
            RespValue::Simple("OK".into()),
            "round {round}"
        );
        assert_eq!(
            c.read().unwrap(),
            RespValue::Bulk(b"1".to_vec()),
            "round {round}"
        );
        assert_eq!(
            c.read().unwrap(),
            RespValue::Int(round + 1),
            "round {round}"
        );
        assert_eq!(
            other.read().unwrap(),
            RespValue::Simple("OK".into()),
            "round {round}"
        );
        assert_eq!(
            c.call(&["GET", "b"]).unwrap(),
            RespValue::Bulk(b"2".to_vec())
        );
    }
}

/// DEBUG RELOAD (snapshot, then rebuild) and DEBUG LOADAOF (rebuild from
/// the log) reload the data set on the running server: every type, groups
/// and TTLs come back with the same digest.
#[test]
fn debug_reload_and_loadaof_rebuild_the_same_data() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    for cmd in [
        &["RPUSH", "l", "a", "b", "c"][..],
        &["HSET", "h", "f", "v", "g", "w"],
        &["SADD", "set", "1", "2", "x"],
        &["ZADD", "z", "1.5", "a", "-2", "b"],
        &["PFADD", "hll", "a", "b", "c"],
        &["GEOADD", "geo", "13.361389", "38.115556", "Palermo"],
        &["XADD", "x", "*", "f", "v"],
        &["XGROUP", "CREATE", "x", "g", "0"],
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "x", ">"],
        &["SET", "s", "v", "EX", "1000"],
        &["SELECT", "3"],
        &["SET", "in3", "v"],
        &["SELECT", "0"],
    ] {
        let r = c.call(cmd).unwrap();
        assert!(!r.is_error(), "{cmd:?}: {r:?}");
    }
    let digest = c.call(&["DEBUG", "DIGEST"]).unwrap();
    let pending = c.call(&["XPENDING", "x", "g"]).unwrap();
    assert_eq!(
        c.call(&["DEBUG", "RELOAD"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    assert_eq!(persistence_counter(server.port, "rdb_saves"), 1);
    assert_eq!(c.call(&["DEBUG", "DIGEST"]).unwrap(), digest);
    assert_eq!(
        c.call(&["DEBUG", "LOADAOF"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    assert_eq!(c.call(&["DEBUG", "DIGEST"]).unwrap(), digest);
    assert_eq!(c.call(&["XPENDING", "x", "g"]).unwrap(), pending);
    assert!(matches!(c.call(&["TTL", "s"]).unwrap(), RespValue::Int(t) if t > 900));
    // A snapshot of a position already snapshotted (and trimmed) is fine.
    for _ in 0..2 {
        assert_eq!(c.call(&["SAVE"]).unwrap(), RespValue::Simple("OK".into()));
    }
    assert_eq!(
        server.log_text().matches("rebuilding from the log").count(),
        2,
        "both commands rebuilt the data set"
    );
}

/// `save` points: with the default (none) writes take no snapshot; with
/// `CONFIG SET save "1 1"` one is taken once a second has passed after a
/// write. Invalid points get Redis' errors.
#[test]
fn save_points_take_snapshots_when_configured() {
    let mut d = memlog_tests::Differential::start().expect("servers start");
    for bad in ["abc", "1 2 3", "0 5", "-1 5", "1 -1"] {
        d.check(&["CONFIG", "SET", "save", bad]);
    }
    d.check(&["CONFIG", "SET", "save", "3600  1 300 100"]);
    d.check(&["CONFIG", "SET", "save", "3600 1 300 100"]);
    d.check(&["CONFIG", "GET", "save"]);
    d.check(&["CONFIG", "SET", "save", ""]);
    let port = d.memlog.port;
    let mut c = RawConn::connect(port).expect("connect");
    for i in 0..10 {
        c.call(&["SET", &format!("k{i}"), "v"]).unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        persistence_counter(port, "rdb_saves"),
        0,
        "no save point, no snapshot"
    );
    assert_eq!(persistence_counter(port, "rdb_changes_since_last_save"), 10);
    c.call(&["CONFIG", "SET", "save", "1 1"]).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while persistence_counter(port, "rdb_saves") == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the save point never fired"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(persistence_counter(port, "rdb_changes_since_last_save"), 0);
}
