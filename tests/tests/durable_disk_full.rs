//! A full disk under the embedded log: the server refuses writes (no
//! acknowledgement without the log), stays up, and serves again by itself
//! once there is room, with every acknowledged write kept, also across a
//! later kill -9.
//!
//! "Full" is the server's file size limit (RLIMIT_FSIZE, soft): the log's
//! writes past it fail with EFBIG, as they would with ENOSPC, and the test
//! lifts the limit of the running process to give it room again.
//!
//! Also: a snapshot that cannot be written shows in `INFO persistence`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlog_tests::workload::{run_clients, verify};
use memlog_tests::{call_until_ok, persistence_field, MemlogServer, RawConn, RespValue};

/// Room for each of the embedded log's files: less than one of its 8 MiB
/// segment files (and than sled's data file will need).
const FILE_LIMIT: u64 = 6 * 1024 * 1024;

/// Writes big values until a write is refused; returns how many landed.
fn fill(port: u16) -> usize {
    let mut conn = RawConn::connect(port).expect("connect");
    let value = "x".repeat(64 * 1024);
    for n in 0..4000 {
        match conn.call(&["SET", &format!("fill:{n}"), &value]) {
            Ok(RespValue::Simple(s)) if s == "OK" => {}
            Ok(RespValue::Error(e)) => {
                assert!(e.starts_with("TRYAGAIN"), "refused with {e}");
                return n;
            }
            other => panic!("SET fill:{n}: {other:?}"),
        }
    }
    panic!("4000 SETs of 64 KiB and the log never ran out of room");
}

#[test]
fn embedded_log_recovers_from_a_full_disk_by_itself() {
    let mut server =
        MemlogServer::start_with_file_limit(&["--lease-ms", "500"], FILE_LIMIT).expect("server");
    let stop = Arc::new(AtomicBool::new(false));
    let port = server.port;
    let s = stop.clone();
    // Recorded writes all along; error replies are counted, not fatal.
    let load = std::thread::spawn(move || run_clients(port, 8, "full", s, true));

    let landed = fill(server.port);
    assert!(landed > 0, "the first big write was already refused");
    // Full: writes are refused, promptly, and the server stays up.
    std::thread::sleep(Duration::from_secs(1));
    let mut conn = RawConn::connect(server.port).expect("connect");
    let started = Instant::now();
    let refused = conn.call(&["SET", "while-full", "1"]).expect("reply");
    assert!(
        matches!(&refused, RespValue::Error(e) if e.starts_with("TRYAGAIN")),
        "a write on a full disk got {refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a refused write took {:?}",
        started.elapsed()
    );
    assert!(server.process.is_running(), "the server exited");
    // Once it gives up resuming, clients are told what the disk said.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = conn.call(&["SET", "while-full", "1"]).expect("reply");
        if matches!(&reply, RespValue::Error(e)
            if e.starts_with("TRYAGAIN memlog: the transaction log cannot write (")
                && e.contains("File too large"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the error never named the cause: {reply:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    server.lift_file_limit().expect("room again");
    // Acknowledged again within 60 s.
    assert_eq!(
        call_until_ok(&mut conn, &["SET", "probe", "1"]),
        RespValue::Simple("OK".into())
    );
    // A little more of the recorded load after the recovery.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let ledger = load.join().expect("load");
    assert!(ledger.errors > 0, "the load never saw the disk full");
    verify(server.port, &ledger).unwrap_or_else(|e| panic!("{e:#}\n{}", server.log_text()));
    let log = server.log_text();
    assert!(
        log.contains("the embedded log is open again"),
        "the log was not reopened:\n{log}"
    );

    // What was acknowledged before and after is on disk too.
    server.restart().expect("restart");
    verify(server.port, &ledger).unwrap_or_else(|e| panic!("after kill -9: {e:#}"));
    eprintln!(
        "{landed} big writes filled the disk; {} writes acknowledged, {} refused",
        ledger.acked, ledger.errors
    );
}

/// Waits until no snapshot is being written; the last one's status.
fn last_save_status(port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    while persistence_field(port, "rdb_bgsave_in_progress") != "0" {
        assert!(Instant::now() < deadline, "a snapshot never finished");
        std::thread::sleep(Duration::from_millis(20));
    }
    persistence_field(port, "rdb_last_bgsave_status")
}

/// A snapshot that cannot be written (here: its directory is a file) shows
/// in `INFO persistence` as in Redis (`rdb_last_bgsave_status:err`), leaves
/// `LASTSAVE` alone, and the next one that can be written clears it. SAVE
/// answers as Redis' does: once the snapshot is written, `-ERR` if it
/// could not be.
#[test]
fn a_failed_snapshot_shows_in_info_persistence() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut conn = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        conn.call(&["SET", "k", "v"]).expect("set"),
        RespValue::Simple("OK".into())
    );
    let dir = server.dir.path().join("data").join("snapshots");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::write(&dir, b"not a directory").expect("block the snapshot directory");
    let lastsave = conn.call(&["LASTSAVE"]).expect("lastsave");
    assert_eq!(
        conn.call(&["BGSAVE"]).expect("bgsave"),
        RespValue::Simple("Background saving started".into())
    );
    assert_eq!(last_save_status(server.port), "err");
    assert_eq!(persistence_field(server.port, "rdb_saves"), "0");
    assert_eq!(conn.call(&["LASTSAVE"]).expect("lastsave"), lastsave);
    assert_eq!(
        conn.call(&["SAVE"]).expect("save"),
        RespValue::Error("ERR".into())
    );
    assert_eq!(
        conn.call(&["GET", "k"]).expect("get"),
        RespValue::Bulk(b"v".to_vec())
    );

    std::fs::remove_file(&dir).expect("unblock");
    // LASTSAVE has a one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(
        conn.call(&["SAVE"]).expect("save"),
        RespValue::Simple("OK".into())
    );
    // Answered once written: nothing left to wait for.
    assert_eq!(
        persistence_field(server.port, "rdb_bgsave_in_progress"),
        "0"
    );
    assert_eq!(
        persistence_field(server.port, "rdb_last_bgsave_status"),
        "ok"
    );
    assert_eq!(persistence_field(server.port, "rdb_saves"), "1");
    assert_ne!(conn.call(&["LASTSAVE"]).expect("lastsave"), lastsave);
    assert!(
        std::fs::read_dir(&dir).expect("snapshots").count() > 0,
        "SAVE answered before its snapshot file was there"
    );
}
