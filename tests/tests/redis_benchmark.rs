//! `redis-benchmark` (the real Redis client tool) runs its standard tests
//! against memlog with no error, without and with pipelining, on the
//! default single connection thread and on several (`--io-threads`).

use std::process::Command;

use memlog_tests::MemlogServer;

fn run_benchmark(port: u16, pipeline: u32) {
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-q",
            "-n",
            "2000",
            "-c",
            "10",
        ])
        .args(["-P", &pipeline.to_string()])
        .args([
            "-t",
            "ping,set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,zadd,zpopmin,lrange,mset",
        ])
        .output()
        .expect("redis-benchmark runs (make test installs redis-tools)");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-benchmark failed:\n{text}");
    let lower = text.to_ascii_lowercase();
    assert!(
        !lower.contains("err"),
        "redis-benchmark saw errors:\n{text}"
    );
    for t in [
        "PING_INLINE",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LRANGE_100",
        "MSET",
    ] {
        assert!(
            text.contains(&format!("{t}:")) || text.contains(&format!("{t} (")),
            "no result line for {t}:\n{text}"
        );
    }
}

#[test]
fn redis_benchmark_standard_tests() {
    let server = MemlogServer::start(&[]).expect("memlog starts");
    run_benchmark(server.port, 1);
    run_benchmark(server.port, 16);
}

/// The multi-threaded runtime (`--io-threads 2`) serves the same, over TCP
/// and over the Unix domain socket.
#[test]
fn redis_benchmark_with_io_threads_and_a_unix_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("memlog.sock");
    let server = MemlogServer::start(&[
        "--io-threads",
        "2",
        "--",
        "--unixsocket",
        socket.to_str().expect("utf-8 path"),
    ])
    .expect("memlog starts");
    run_benchmark(server.port, 1);
    run_benchmark(server.port, 16);
    let out = Command::new("redis-benchmark")
        .arg("-s")
        .arg(&socket)
        .args([
            "-q",
            "-n",
            "2000",
            "-c",
            "10",
            "-P",
            "4",
            "-t",
            "set,get,lpush",
        ])
        .output()
        .expect("redis-benchmark runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{text}");
    assert!(!text.to_ascii_lowercase().contains("err"), "{text}");
    for t in ["SET", "GET", "LPUSH"] {
        assert!(
            text.contains(&format!("{t}:")),
            "no result line for {t}:\n{text}"
        );
    }
}
