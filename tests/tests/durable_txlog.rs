//! The durable server against failures of a three-node txlog: the leader
//! killed under load, two nodes stopped (lease), and fencing by a second
//! server. Real processes, killed / stopped by PID; bounded waits only.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlog_tests::workload::{run_clients, verify, Ledger};
use memlog_tests::{
    call_until_ok, encode_command, persistence_counter, RawConn, RespValue, TxlogCluster,
};

fn leader(cluster: &TxlogCluster) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let addrs: Vec<String> = (0..3).map(|i| cluster.addr(i)).collect();
    for _ in 0..200 {
        let client = memlog_txlog::TxlogClient::new(addrs.clone()).expect("client");
        if let Ok(s) = rt.block_on(client.status()) {
            if let Some(i) = addrs.iter().position(|a| *a == s.leader_addr) {
                return i;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no txlog leader");
}

fn bulk(s: &str) -> RespValue {
    RespValue::Bulk(s.as_bytes().to_vec())
}

/// A raw connection whose reads time out quickly (to show a reply is held).
fn raw(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    s
}

fn nothing_to_read(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => false,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Starts `clients` writing clients on `port` and returns once the server
/// has had 20 appends acknowledged (appends flow, the server is past its
/// start): the flag that stops them and the thread that returns their ledger.
fn load_until_appending(
    port: u16,
    clients: usize,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<Ledger>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let load = std::thread::spawn(move || run_clients(port, clients, "a", s, true));
    let deadline = Instant::now() + Duration::from_secs(60);
    while persistence_counter(port, "memlog_log_appends") < 20 {
        assert!(Instant::now() < deadline, "no appends acknowledged");
        std::thread::sleep(Duration::from_millis(50));
    }
    (stop, load)
}

/// The txlog's Raft leader dies while appends are in flight: the server
/// finds out from the log which of them committed, resends the rest to the
/// new leader, and keeps its data set: its clients wait through the
/// election instead of getting TRYAGAIN while it rebuilds.
#[test]
fn txlog_leader_killed_under_load() {
    let mut cluster = TxlogCluster::start().expect("cluster");
    let server = cluster.server(&["--lease-ms", "1000"]).expect("server");
    let port = server.port;
    // Kill it once appends flow, not while the server is still starting.
    let (stop, load) = load_until_appending(port, 8);
    let l = leader(&cluster);
    cluster.kill(l);
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    let mut total = load.join().expect("load");
    verify(server.port, &total).expect("nothing acknowledged lost");
    assert_eq!(
        persistence_counter(server.port, "memlog_log_rebuilds"),
        0,
        "the server rebuilt its data set instead of resuming at the new leader; server log:\n{}",
        server.log_text()
    );
    let resumes = persistence_counter(server.port, "memlog_log_resumes");
    assert!(
        resumes >= 1,
        "no resume after the leader died; server log:\n{}",
        server.log_text()
    );
    // Writes continue on the surviving majority.
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let load = std::thread::spawn(move || run_clients(port, 4, "b", s, true));
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let after = load.join().expect("load");
    assert!(
        after.acked > 0,
        "no write acknowledged after the leader died"
    );
    total.merge(after);
    cluster.restart(l).expect("restart node");
    verify(server.port, &total).expect("nothing acknowledged lost");
}

/// Entries the server did not send land in its epoch while it appends (what
/// a heartbeat of its own, delayed in the network past later appends, would
/// do): its next append, positioned after the end it knows, is refused
/// (CONFLICT) instead of landing after them unnoticed, and the server
/// resumes (reads the log, resends) without rebuilding or losing a write.
#[test]
fn entries_slipped_into_the_epoch_make_the_server_resume() {
    let cluster = TxlogCluster::start().expect("cluster");
    let server = cluster.server(&["--lease-ms", "1000"]).expect("server");
    let port = server.port;
    let (stop, load) = load_until_appending(port, 8);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = memlog_txlog::TxlogClient::new(cluster.addr_list()).expect("client");
    let log = "shard-0";
    let epoch = rt
        .block_on(client.status())
        .expect("status")
        .logs
        .iter()
        .find(|l| l.name == log)
        .expect("the server's log")
        .epoch;
    for _ in 0..3 {
        let before = persistence_counter(port, "memlog_log_appends");
        rt.block_on(client.heartbeat(log, epoch, bytes::Bytes::from_static(b"stale")))
            .expect("heartbeat under the server's epoch");
        // The server's next appends go through again after its resume.
        let deadline = Instant::now() + Duration::from_secs(30);
        while persistence_counter(port, "memlog_log_appends") < before + 20 {
            assert!(
                Instant::now() < deadline,
                "appends stopped after a foreign entry"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let total = load.join().expect("load");
    verify(server.port, &total).expect("nothing acknowledged lost");
    assert_eq!(
        persistence_counter(server.port, "memlog_log_rebuilds"),
        0,
        "server log:\n{}",
        server.log_text()
    );
    assert!(
        // At least one: an entry that lands right before a heartbeat of the
        // server's own (sent when idle for a quarter lease) goes unnoticed,
        // harmlessly.
        persistence_counter(server.port, "memlog_log_resumes") >= 1,
        "the server did not notice the foreign entries; server log:\n{}",
        server.log_text()
    );
}

#[test]
fn two_txlog_nodes_stopped_lease_then_recovery() {
    let cluster = TxlogCluster::start().expect("cluster");
    // A long lease so that the reads below surely fall inside it.
    let server = cluster.server(&["--lease-ms", "3000"]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        c.call(&["SET", "cold", "1"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    let stopped = [0usize, 1];
    for &i in &stopped {
        cluster.signal(i, "STOP").expect("stop");
    }
    // A write: executed, never acknowledged while the log is stopped.
    let mut w = raw(server.port);
    w.write_all(b"*3\r\n$3\r\nSET\r\n$3\r\nhot\r\n$1\r\n2\r\n")
        .unwrap();
    // A read of a key without pending writes answers within the lease.
    assert_eq!(c.call(&["GET", "cold"]).unwrap(), bulk("1"));
    // Wait until the write has executed before reading its key on another
    // connection.
    wait_until_executed(&mut c, "set");
    // A read of the pending key is held.
    let mut r = raw(server.port);
    r.write_all(b"*2\r\n$3\r\nGET\r\n$3\r\nhot\r\n").unwrap();
    assert!(
        nothing_to_read(&mut w),
        "a write was acknowledged with no log"
    );
    assert!(nothing_to_read(&mut r), "a pending write was revealed");
    // After the lease, everything answers an error.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = c.call(&["GET", "cold"]).unwrap();
        if let RespValue::Error(e) = &v {
            assert!(e.contains("lease expired"), "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "lease never expired");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        nothing_to_read(&mut w),
        "a write was acknowledged with no log"
    );
    for &i in &stopped {
        cluster.signal(i, "CONT").expect("cont");
    }
    // Serves again by itself; the held write either committed or failed.
    call_until_ok(&mut c, &["SET", "after", "3"]);
    let v = call_until_ok(&mut c, &["GET", "hot"]);
    assert!(v == bulk("2") || v == RespValue::Null, "{v:?}");
    assert_eq!(call_until_ok(&mut c, &["GET", "cold"]), bulk("1"));
    assert_eq!(call_until_ok(&mut c, &["GET", "after"]), bulk("3"));
}

#[test]
fn a_second_server_fences_the_first() {
    let cluster = TxlogCluster::start().expect("cluster");
    let first = cluster.server(&["--lease-ms", "1000"]).expect("server 1");
    let mut c1 = RawConn::connect(first.port).expect("connect");
    let mut committed = Ledger::default();
    for i in 0..50 {
        let (k, v) = (format!("k{i}"), format!("v{i}"));
        assert_eq!(
            c1.call(&["SET", &k, &v]).unwrap(),
            RespValue::Simple("OK".into())
        );
        committed.sets.insert(k, v);
    }
    let second = cluster.server(&["--lease-ms", "1000"]).expect("server 2");
    let mut c2 = RawConn::connect(second.port).expect("connect");
    call_until_ok(&mut c2, &["PING"]);
    // The first server's next write is rejected, and it stops serving.
    let r = c1.call(&["SET", "late", "x"]).unwrap();
    assert!(r.is_error(), "a fenced server acknowledged a write: {r:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match c1.call(&["GET", "k1"]).unwrap() {
            RespValue::Error(e) if e.starts_with("READONLY") => break,
            other => {
                assert!(!matches!(other, RespValue::Bulk(_)) || Instant::now() < deadline);
                assert!(
                    Instant::now() < deadline,
                    "fenced server still answers: {other:?}"
                );
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let RespValue::Bulk(info) = c1.call(&["INFO", "persistence"]).unwrap() else {
        panic!("INFO answers on a fenced server");
    };
    assert!(String::from_utf8_lossy(&info).contains("memlog_log_state:fenced"));
    // The second serves exactly what was committed.
    verify(second.port, &committed).expect("committed data on the new primary");
    assert_eq!(c2.call(&["GET", "late"]).unwrap(), RespValue::Null);
    assert_eq!(c2.call(&["DBSIZE"]).unwrap(), RespValue::Int(50));
}

/// The log unavailable for longer than an append may take: the pending
/// write fails (it may or may not be applied), the server rebuilds and
/// retakes leadership by itself once the log is back.
#[test]
fn log_down_past_the_append_timeout_then_back() {
    let cluster = TxlogCluster::start().expect("cluster");
    let server = cluster.server(&["--lease-ms", "500"]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        c.call(&["SET", "cold", "1"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    for i in [0usize, 1] {
        cluster.signal(i, "STOP").expect("stop");
    }
    let mut w = RawConn::connect(server.port).expect("connect");
    w.send(&["SET", "hot", "2"]).unwrap();
    // Appends time out after max(5 x lease, 10 s): the write fails.
    let r = w.read().expect("reply");
    assert!(
        matches!(&r, RespValue::Error(e) if e.starts_with("TRYAGAIN")),
        "{r:?}"
    );
    // Still down: every command fails.
    assert!(c.call(&["GET", "cold"]).unwrap().is_error());
    for i in [0usize, 1] {
        cluster.signal(i, "CONT").expect("cont");
    }
    assert_eq!(call_until_ok(&mut c, &["GET", "cold"]), bulk("1"));
    let v = call_until_ok(&mut c, &["GET", "hot"]);
    assert!(v == bulk("2") || v == RespValue::Null, "{v:?}");
    call_until_ok(&mut c, &["SET", "after", "3"]);
    assert_eq!(call_until_ok(&mut c, &["GET", "after"]), bulk("3"));
}

/// Waits until some client's last command is `cmd` (lower case): CLIENT
/// LIST shows it once it has executed, while INFO keyspace would wait for
/// the log.
fn wait_until_executed(c: &mut RawConn, cmd: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let shown = format!("cmd={cmd} ");
    loop {
        let list = match c.call(&["CLIENT", "LIST"]).unwrap() {
            RespValue::Bulk(b) => b,
            RespValue::Verbatim(_, b) => b,
            other => panic!("CLIENT LIST failed: {other:?}"),
        };
        if String::from_utf8_lossy(&list).contains(&shown) {
            return;
        }
        assert!(Instant::now() < deadline, "{cmd} never executed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads the reply `want` from `s`, exactly.
fn expect_reply(s: &mut TcpStream, want: &[u8]) {
    let mut got = vec![0u8; want.len()];
    s.read_exact(&mut got).expect("reply");
    assert_eq!(got, want, "{}", String::from_utf8_lossy(&got));
}

/// MOVE and COPY ... DB change a key in another database than their own:
/// while the change is not acknowledged, a read of that key there waits
/// for it like a read of any pending key. Its reply went out at once
/// before (the tracker knew the key in the command's own database only),
/// showing a change the log might never commit. Likewise SORT ... GET,
/// which reads keys its key specs do not name, and FUNCTION LIST / FCALL
/// of a library whose FUNCTION LOAD is pending (they answered at once).
#[test]
fn reads_beyond_the_key_specs_wait_for_pending_changes() {
    let cluster = TxlogCluster::start().expect("cluster");
    let server = cluster.server(&["--lease-ms", "10000"]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    for (k, v) in [("moved", "1"), ("copied", "2"), ("w_1", "old")] {
        assert_eq!(
            c.call(&["SET", k, v]).unwrap(),
            RespValue::Simple("OK".into())
        );
    }
    assert_eq!(
        c.call(&["RPUSH", "sorted", "1"]).unwrap(),
        RespValue::Int(1)
    );
    let stopped = [0usize, 1];
    for &i in &stopped {
        cluster.signal(i, "STOP").expect("stop");
    }
    // Executed at once, acknowledged only once the nodes are back.
    let mut w = raw(server.port);
    let library = "#!lua name=pending\n\
        redis.register_function{function_name='one', callback=function() return 1 end, flags={'no-writes'}}";
    let writes: [&[&str]; 4] = [
        &["SET", "w_1", "new"],
        &["MOVE", "moved", "1"],
        &["COPY", "copied", "dest", "DB", "2"],
        &["FUNCTION", "LOAD", library],
    ];
    for cmd in writes {
        w.write_all(&encode_command(cmd)).unwrap();
    }
    wait_until_executed(&mut c, "function");
    let reads: [(&str, &[&str]); 6] = [
        ("1", &["GET", "moved"]),
        ("2", &["GET", "dest"]),
        ("0", &["SORT", "sorted", "GET", "w_*"]),
        ("0", &["FCALL_RO", "one", "0"]),
        ("0", &["FCALL", "one", "0"]),
        ("0", &["FUNCTION", "LIST", "LIBRARYNAME", "pending"]),
    ];
    let mut readers = Vec::new();
    for (db, cmd) in reads {
        let mut r = raw(server.port);
        r.write_all(&encode_command(&["SELECT", db])).unwrap();
        expect_reply(&mut r, b"+OK\r\n");
        r.write_all(&encode_command(cmd)).unwrap();
        assert!(
            nothing_to_read(&mut r),
            "{cmd:?} in db {db}: a pending change was revealed"
        );
        readers.push(r);
    }
    assert!(
        nothing_to_read(&mut w),
        "a write was acknowledged with no log"
    );
    for &i in &stopped {
        cluster.signal(i, "CONT").expect("cont");
    }
    // Once committed, the readers see the changes.
    let seen: [&[u8]; 6] = [
        b"$1\r\n1\r\n",
        b"$1\r\n2\r\n",
        b"*1\r\n$3\r\nnew\r\n",
        b":1\r\n",
        b":1\r\n",
        b"*1\r\n*6\r\n$12\r\nlibrary_name\r\n$7\r\npending\r\n",
    ];
    for (r, want) in readers.iter_mut().zip(seen) {
        r.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        expect_reply(r, want);
    }
    w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    expect_reply(&mut w, b"+OK\r\n:1\r\n:1\r\n$7\r\npending\r\n");
}

/// A blocking pop that times out answers that its keys are still empty:
/// data like any read's. While a change to them is unacknowledged that
/// answer waits for it (it went out at once before, showing a pop the log
/// might never commit), and once the lease has ended the lease's error
/// goes instead (the empty list was an answer the server could no longer
/// vouch for).
#[test]
fn a_blocking_pops_timeout_waits_for_pending_changes_and_the_lease() {
    let cluster = TxlogCluster::start().expect("cluster");
    let server = cluster.server(&["--lease-ms", "2000"]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(c.call(&["RPUSH", "l", "x"]).unwrap(), RespValue::Int(1));
    let stopped = [0usize, 1];
    for &i in &stopped {
        cluster.signal(i, "STOP").expect("stop");
    }
    let mut w = raw(server.port);
    w.write_all(&encode_command(&["LPOP", "l"])).unwrap();
    // Blocked (the LPOP emptied `l`), timed out after 100 ms: held.
    let mut short = raw(server.port);
    short
        .write_all(&encode_command(&["BLPOP", "l", "0.1"]))
        .unwrap();
    // Blocked on a key nobody touched, timed out after the lease.
    let mut long = raw(server.port);
    long.write_all(&encode_command(&["BLPOP", "quiet", "3"]))
        .unwrap();
    assert!(
        nothing_to_read(&mut short),
        "a timeout revealed a pending pop"
    );
    assert!(
        nothing_to_read(&mut w),
        "a write was acknowledged with no log"
    );
    long.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut got = [0u8; 256];
    let n = long.read(&mut got).expect("reply");
    let got = String::from_utf8_lossy(&got[..n]);
    assert!(
        got.starts_with("-TRYAGAIN") && got.contains("lease expired"),
        "{got}"
    );
    for &i in &stopped {
        cluster.signal(i, "CONT").expect("cont");
    }
    // The pop commits (or fails, and then so does the timeout's answer).
    w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    short
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = [0u8; 256];
    let n = w.read(&mut got).expect("reply");
    if &got[..n] == b"$1\r\nx\r\n" {
        expect_reply(&mut short, b"*-1\r\n");
    } else {
        let n = short.read(&mut got).expect("reply");
        assert!(
            got[..n].starts_with(b"-"),
            "{}",
            String::from_utf8_lossy(&got[..n])
        );
    }
}

/// A keyspace notification tells of a change: it reaches subscribers once
/// the log has acknowledged it, as a read of the key would (it went out at
/// once before, and told of a change even when the log then refused it).
#[test]
fn keyspace_notifications_wait_for_the_log() {
    let cluster = TxlogCluster::start().expect("cluster");
    let server = cluster.server(&["--lease-ms", "5000"]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        c.call(&["CONFIG", "SET", "notify-keyspace-events", "E$"])
            .unwrap(),
        RespValue::Simple("OK".into())
    );
    let mut sub = raw(server.port);
    sub.write_all(&encode_command(&["SUBSCRIBE", "__keyevent@0__:set"]))
        .unwrap();
    expect_reply(
        &mut sub,
        b"*3\r\n$9\r\nsubscribe\r\n$18\r\n__keyevent@0__:set\r\n:1\r\n",
    );
    let stopped = [0usize, 1];
    for &i in &stopped {
        cluster.signal(i, "STOP").expect("stop");
    }
    let mut w = raw(server.port);
    w.write_all(&encode_command(&["SET", "k", "v"])).unwrap();
    assert!(nothing_to_read(&mut sub), "a pending change was announced");
    assert!(
        nothing_to_read(&mut w),
        "a write was acknowledged with no log"
    );
    for &i in &stopped {
        cluster.signal(i, "CONT").expect("cont");
    }
    w.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    expect_reply(&mut w, b"+OK\r\n");
    sub.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    expect_reply(
        &mut sub,
        b"*3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n",
    );
}

/// Writes queued for a log that does not commit are bounded across
/// connections: past 64 MiB of records not yet taken into an append, a
/// connection with replies parked reads no more (its client's sends then
/// block), and once the log is back everything commits.
#[test]
fn writes_queued_for_a_stalled_log_are_bounded() {
    let cluster = TxlogCluster::start().expect("cluster");
    let server = cluster.server(&["--lease-ms", "30000"]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        c.call(&["SET", "warm", "1"]).unwrap(),
        RespValue::Simple("OK".into())
    );
    let stopped = [0usize, 1];
    for &i in &stopped {
        cluster.signal(i, "STOP").expect("stop");
    }
    // 160 MiB of writes from two connections, sent without reading.
    let value = "v".repeat(1 << 20);
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (port, value, sent) = (server.port, value.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
                for i in 0..80 {
                    s.write_all(&encode_command(&["SET", &format!("w{w}:{i}"), &value]))
                        .expect("send");
                    sent.fetch_add(1, Ordering::SeqCst);
                }
                s
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    let n = sent.load(Ordering::SeqCst);
    assert!(
        n < 120,
        "{n} MiB of writes went in while the log was stopped"
    );
    for &i in &stopped {
        cluster.signal(i, "CONT").expect("cont");
    }
    let mut conns: Vec<TcpStream> = writers
        .into_iter()
        .map(|t| t.join().expect("writer"))
        .collect();
    for s in &mut conns {
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        expect_reply(s, &b"+OK\r\n".repeat(80));
    }
    assert_eq!(call_until_ok(&mut c, &["DBSIZE"]), RespValue::Int(161));
}
