//! Durable mode keeps pipelined replies complete and in order.

use std::io::Write;

use memlog_tests::{MemlogServer, RawConn, RespValue};

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
    let mut c = RawConn::connect(server.port).expect("connect");
    let RespValue::Bulk(info) = c.call(&["INFO", "persistence"]).expect("info") else {
        panic!("INFO failed");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in {info}"))
    };
    let (appends, records) = (field("memlog_log_appends:"), field("memlog_log_records:"));
    assert_eq!(field("memlog_durable:"), 1);
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
