//! CLIENT PAUSE on the durable server: held commands wait without holding
//! anyone else up, run once the pause is lifted or ends, and expiry stops
//! meanwhile.

use std::time::{Duration, Instant};

use memlog_tests::resp::{RawConn, RespValue};
use memlog_tests::{info_i64, MemlogServer};

fn ok() -> RespValue {
    RespValue::Simple("OK".into())
}

/// Waits (bounded) until `blocked_clients` is `n`.
fn wait_blocked(c: &mut RawConn, n: i64) {
    let until = Instant::now() + Duration::from_secs(10);
    while info_i64(c, "blocked_clients") != n {
        assert!(Instant::now() < until, "blocked_clients never reached {n}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn write_pause_holds_writes_until_unpause_and_lets_reads_through() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut admin = RawConn::connect(server.port).expect("connect");
    let mut writer = RawConn::connect(server.port).expect("connect");
    let mut reader = RawConn::connect(server.port).expect("connect");
    admin.call(&["SET", "k", "before"]).expect("set");
    assert_eq!(
        admin.call(&["CLIENT", "PAUSE", "60000", "WRITE"]).unwrap(),
        ok()
    );

    writer.send(&["SET", "k", "during"]).expect("send");
    writer.send(&["GET", "k"]).expect("send");
    wait_blocked(&mut admin, 1);
    // Reads, read-only scripts and a no-writes EVAL go through; the write
    // has not run.
    assert_eq!(
        reader.call(&["GET", "k"]).unwrap(),
        RespValue::Bulk(b"before".to_vec())
    );
    assert_eq!(
        reader
            .call(&[
                "EVAL",
                "#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])",
                "1",
                "k"
            ])
            .unwrap(),
        RespValue::Bulk(b"before".to_vec())
    );
    // A command with the wrong arity answers at once.
    assert!(reader.call(&["SET", "k"]).unwrap().is_error());

    assert_eq!(admin.call(&["CLIENT", "UNPAUSE"]).unwrap(), ok());
    assert_eq!(writer.read().unwrap(), ok());
    assert_eq!(writer.read().unwrap(), RespValue::Bulk(b"during".to_vec()));
    wait_blocked(&mut admin, 0);
}

#[test]
fn all_pause_holds_everything_until_it_ends_and_expiry_waits() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut admin = RawConn::connect(server.port).expect("connect");
    let mut other = RawConn::connect(server.port).expect("connect");
    let expired = info_i64(&mut admin, "expired_keys");
    admin.call(&["SET", "ttl", "v", "PX", "50"]).expect("set");
    admin.call(&["MULTI"]).expect("multi");
    admin
        .call(&["CLIENT", "PAUSE", "600", "WRITE"])
        .expect("queued");
    admin.call(&["SET", "in-tx", "v"]).expect("queued");
    // The pause starts after the transaction that asked for it.
    assert!(matches!(
        admin.call(&["EXEC"]).unwrap(),
        RespValue::Array(_)
    ));
    std::thread::sleep(Duration::from_millis(150));
    // Expired, but not deleted while paused.
    assert_eq!(other.call(&["GET", "ttl"]).unwrap(), RespValue::Null);
    assert_eq!(info_i64(&mut other, "expired_keys"), expired);
    assert_eq!(
        other.call(&["GET", "in-tx"]).unwrap(),
        RespValue::Bulk(b"v".to_vec())
    );
    // The WRITE pause ends by itself; then an ALL one holds a PING too.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(other.call(&["GET", "ttl"]).unwrap(), RespValue::Null);
    assert_eq!(info_i64(&mut other, "expired_keys"), expired + 1);
    assert_eq!(admin.call(&["CLIENT", "PAUSE", "300"]).unwrap(), ok());
    let started = Instant::now();
    assert_eq!(
        other.call(&["PING"]).unwrap(),
        RespValue::Simple("PONG".into())
    );
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "PING waited"
    );
}
