//! Client-side caching (CLIENT TRACKING): the same scenarios against memlog
//! and a real redis-server, comparing everything each connection reads,
//! pushes included: default mode, OPTIN/OPTOUT, BCAST with prefixes and
//! NOLOOP, RESP2 redirection to a `__redis__:invalidate` subscriber,
//! flushes, scripts, the tracking table's limit and the option errors.

use std::time::Duration;

use memlog_tests::resp::{RawConn, RespValue};
use memlog_tests::{info_i64, MemlogServer, RedisServer};

/// Connections to one server, and what the scenario read from them.
struct Run {
    port: u16,
    conns: Vec<RawConn>,
    transcript: Vec<(usize, RespValue)>,
}

impl Run {
    fn new(port: u16, n: usize) -> Self {
        let conns = (0..n)
            .map(|_| RawConn::connect_timeout(port, Duration::from_secs(5)).expect("connect"))
            .collect();
        Run {
            port,
            conns,
            transcript: Vec::new(),
        }
    }

    /// Sends a command on connection `c` and records its reply.
    fn call(&mut self, c: usize, args: &[&str]) -> RespValue {
        let v = self.conns[c].call(args).expect("reply");
        self.transcript.push((c, v.clone()));
        v
    }

    /// Sends a command whose reply names a client id (they differ between
    /// servers): it must not fail, and is not recorded.
    fn quiet(&mut self, c: usize, args: &[&str]) {
        let v = self.conns[c].call(args).expect("reply");
        assert!(!v.is_error(), "{args:?}: {v:?}");
    }

    /// Reads one more value (a push) on connection `c` and records it.
    fn read(&mut self, c: usize) {
        let v = self.conns[c].read().expect("a push");
        self.transcript.push((c, v));
    }

    /// Connection `c`'s client id (ids differ between servers, so it is
    /// not recorded).
    fn id(&mut self, c: usize) -> String {
        match self.conns[c].call(&["CLIENT", "ID"]).expect("id") {
            RespValue::Int(i) => i.to_string(),
            other => panic!("CLIENT ID: {other:?}"),
        }
    }
}

/// Runs `scenario` on both servers with `n` connections each and compares
/// the transcripts.
fn differential(n: usize, scenario: impl Fn(&mut Run)) {
    let memlog = MemlogServer::start(&[]).expect("memlog");
    let redis = RedisServer::start().expect("redis");
    let mut m = Run::new(memlog.port, n);
    let mut r = Run::new(redis.port, n);
    scenario(&mut m);
    scenario(&mut r);
    assert_eq!(m.port, memlog.port);
    for (i, (a, b)) in m.transcript.iter().zip(&r.transcript).enumerate() {
        assert_eq!(a, b, "step {i} differs (memlog, redis)");
    }
    assert_eq!(m.transcript.len(), r.transcript.len());
}

#[test]
fn default_mode_optin_optout_and_flushes_match_redis() {
    differential(2, |s| {
        // 0 tracks (RESP3), 1 writes.
        s.quiet(0, &["HELLO", "3"]);
        s.call(0, &["CLIENT", "TRACKING", "ON"]);
        s.call(1, &["MSET", "k", "1", "j", "1", "untracked", "1"]);
        s.call(0, &["MGET", "k", "j"]);
        s.call(1, &["SET", "untracked", "2"]);
        s.call(1, &["MSET", "j", "2", "k", "2"]);
        s.read(0);
        s.read(0);
        // Forgotten after one invalidation, until read again.
        s.call(1, &["SET", "k", "3"]);
        s.call(0, &["PING"]);
        // Its own change invalidates too (after the reply), with a TTL
        // expiring lazily as well.
        s.call(0, &["GET", "k"]);
        s.call(0, &["SET", "k", "4"]);
        s.read(0);
        s.call(0, &["CLIENT", "TRACKINGINFO"]);
        s.call(0, &["CLIENT", "GETREDIR"]);
        // OPTIN: only reads after CLIENT CACHING YES.
        s.call(0, &["CLIENT", "TRACKING", "OFF"]);
        s.call(0, &["CLIENT", "TRACKING", "ON", "OPTIN"]);
        s.call(0, &["GET", "k"]);
        s.call(1, &["SET", "k", "5"]);
        s.call(0, &["PING"]);
        s.call(0, &["CLIENT", "CACHING", "YES"]);
        s.call(0, &["CLIENT", "TRACKINGINFO"]);
        s.call(0, &["GET", "k"]);
        s.call(0, &["GET", "j"]);
        s.call(1, &["MSET", "j", "6", "k", "6"]);
        s.read(0);
        s.call(0, &["PING"]);
        // OPTOUT: every read but those after CLIENT CACHING NO.
        s.call(0, &["CLIENT", "TRACKING", "OFF"]);
        s.call(0, &["CLIENT", "TRACKING", "ON", "OPTOUT"]);
        s.call(0, &["CLIENT", "CACHING", "NO"]);
        s.call(0, &["GET", "k"]);
        s.call(0, &["GET", "j"]);
        s.call(1, &["MSET", "j", "7", "k", "7"]);
        s.read(0);
        s.call(0, &["PING"]);
        // MEMORY USAGE reads its key.
        s.call(0, &["CLIENT", "TRACKING", "OFF"]);
        s.call(0, &["CLIENT", "TRACKING", "ON"]);
        s.call(0, &["MEMORY", "USAGE", "nosuch"]);
        s.call(1, &["SET", "nosuch", "1"]);
        s.read(0);
        // A flush invalidates everything (a null), FLUSHDB too.
        s.call(0, &["GET", "k"]);
        s.call(1, &["FLUSHALL"]);
        s.read(0);
        s.call(1, &["FLUSHDB"]);
        s.read(0);
        s.call(0, &["CLIENT", "TRACKING", "OFF"]);
        s.call(0, &["CLIENT", "TRACKINGINFO"]);
    });
}

#[test]
fn bcast_noloop_and_resp2_redirection_match_redis() {
    differential(3, |s| {
        // 2 is a RESP2 connection that gets 0's messages.
        let redir = s.id(2);
        s.call(2, &["SUBSCRIBE", "__redis__:invalidate"]);
        s.call(
            0,
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", &redir, "PREFIX", "a:", "PREFIX",
                "b:",
            ],
        );
        s.quiet(0, &["CLIENT", "TRACKINGINFO"]);
        s.call(1, &["MULTI"]);
        s.call(1, &["SET", "a:1", "x"]);
        s.call(1, &["SET", "c:1", "x"]);
        s.call(1, &["SET", "a:2", "x"]);
        s.call(1, &["EXEC"]);
        s.read(2);
        s.call(1, &["SET", "b:1", "x"]);
        s.read(2);
        // More prefixes, then overlaps.
        s.call(
            0,
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", &redir, "PREFIX", "d:",
            ],
        );
        s.call(0, &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"]);
        s.call(
            0,
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "e", "PREFIX", "ef",
            ],
        );
        s.call(1, &["SET", "d:1", "x"]);
        s.read(2);
        // NOLOOP: its own changes are left out.
        s.call(0, &["CLIENT", "TRACKING", "OFF"]);
        s.call(
            0,
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "REDIRECT", &redir, "NOLOOP",
            ],
        );
        s.call(0, &["SET", "mine", "1"]);
        s.call(1, &["SET", "theirs", "1"]);
        s.read(2);
        // Default mode with NOLOOP, redirected.
        s.call(0, &["CLIENT", "TRACKING", "OFF"]);
        s.call(
            0,
            &["CLIENT", "TRACKING", "ON", "REDIRECT", &redir, "NOLOOP"],
        );
        s.call(0, &["MGET", "mine", "theirs"]);
        s.call(0, &["SET", "mine", "2"]);
        s.call(1, &["SET", "theirs", "2"]);
        s.read(2);
        s.quiet(0, &["CLIENT", "GETREDIR"]);
        s.call(0, &["CLIENT", "TRACKING", "OFF"]);
        // A RESP2 client without redirection gets nothing.
        s.call(1, &["CLIENT", "TRACKING", "ON"]);
        s.call(1, &["GET", "mine"]);
        s.call(0, &["SET", "mine", "3"]);
        s.call(1, &["PING"]);
        s.call(2, &["UNSUBSCRIBE"]);
    });
}

#[test]
fn scripts_track_their_declared_keys_when_they_read() {
    differential(2, |s| {
        s.quiet(0, &["HELLO", "3"]);
        s.call(0, &["CLIENT", "TRACKING", "ON"]);
        s.call(1, &["MSET", "k1", "1", "k2", "1"]);
        // A script that only writes tracks nothing.
        s.call(
            0,
            &["EVAL", "redis.call('set', 'k3', 'x')", "2", "k1", "k2"],
        );
        s.call(1, &["MSET", "k2", "2", "k1", "2"]);
        s.call(0, &["PING"]);
        // One that reads tracks every declared key.
        s.call(0, &["EVAL", "redis.call('get', 'k3')", "2", "k1", "k2"]);
        s.call(1, &["MSET", "k2", "3", "k1", "3"]);
        s.read(0);
        s.read(0);
        s.call(0, &["EVAL_RO", "redis.call('ping')", "2", "k1", "k2"]);
        s.call(1, &["MSET", "k2", "4", "k1", "4"]);
        s.call(0, &["EVAL_RO", "return redis.call('get', 'k1')", "1", "k1"]);
        s.call(1, &["SET", "k1", "5"]);
        s.read(0);
        // A script's own write invalidates after its reply.
        s.call(0, &["GET", "k2"]);
        s.call(
            0,
            &["EVAL", "return redis.call('set', KEYS[1], '6')", "1", "k2"],
        );
        s.read(0);
        s.call(0, &["PING"]);
    });
}

#[test]
fn option_errors_match_redis() {
    differential(2, |s| {
        let other = s.id(1);
        for cmd in [
            &["CLIENT", "TRACKING", "ON", "PREFIX", "a"][..],
            &["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"],
            &["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"],
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"],
            &["CLIENT", "TRACKING", "ON", "REDIRECT", "x"],
            &[
                "CLIENT", "TRACKING", "ON", "REDIRECT", &other, "REDIRECT", &other,
            ],
            &["CLIENT", "TRACKING", "ON", "BOGUS"],
            &["CLIENT", "TRACKING", "MAYBE"],
            &["CLIENT", "CACHING", "YES"],
            &["CLIENT", "TRACKING", "ON", "OPTOUT"],
            &["CLIENT", "TRACKING", "ON", "OPTIN"],
            &["CLIENT", "CACHING", "YES"],
            &["CLIENT", "CACHING", "MAYBE"],
            &["CLIENT", "TRACKING", "ON", "BCAST"],
            &["CLIENT", "TRACKING", "OFF"],
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x", "PREFIX", "xy",
            ],
            &["CLIENT", "TRACKINGINFO"],
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x", "PREFIX", "y", "NOLOOP",
            ],
            &["CLIENT", "TRACKINGINFO"],
            &["CLIENT", "TRACKING", "ON"],
        ] {
            s.call(0, cmd);
        }
    });
}

/// tracking-table-max-keys: keys over the limit are forgotten and their
/// clients told, NOLOOP ones included; INFO counts the table.
#[test]
fn the_tracking_table_limit_evicts_with_invalidations() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect_timeout(server.port, Duration::from_secs(5)).expect("connect");
    let mut w = RawConn::connect(server.port).expect("connect");
    c.call(&["HELLO", "3"]).expect("hello");
    c.call(&["CLIENT", "TRACKING", "ON", "NOLOOP"])
        .expect("tracking");
    for i in 0..150 {
        w.call(&["SET", &format!("key{i}"), "v"]).expect("set");
        c.call(&["GET", &format!("key{i}")]).expect("get");
    }
    assert_eq!(info_i64(&mut w, "tracking_total_keys"), 150);
    assert_eq!(info_i64(&mut w, "tracking_total_items"), 150);
    w.call(&["CONFIG", "SET", "tracking-table-max-keys", "10"])
        .expect("config");
    // The first round has an effort of 100 keys, the next 200: 140 go.
    for _ in 0..140 {
        match c.read().expect("an invalidation") {
            RespValue::Push(v) => assert_eq!(v[0], RespValue::Bulk(b"invalidate".to_vec())),
            other => panic!("expected a push, got {other:?}"),
        }
    }
    assert_eq!(
        c.call(&["PING"]).expect("ping"),
        RespValue::Simple("PONG".into())
    );
    assert_eq!(info_i64(&mut w, "tracking_total_keys"), 10);
    // Tracking off leaves its keys in the table until they change.
    c.call(&["CLIENT", "TRACKING", "OFF"]).expect("off");
    assert_eq!(info_i64(&mut w, "tracking_total_keys"), 10);
    w.call(&["FLUSHALL"]).expect("flushall");
    assert_eq!(info_i64(&mut w, "tracking_total_keys"), 0);
}

/// A client's own invalidations arrive right after the reply of the command
/// that caused them, before the replies of the commands pipelined after it,
/// as in Redis; so do those of the keys evicted when CONFIG SET maxmemory
/// falls below what is used (they used to wait for the whole pipeline).
#[test]
fn own_invalidations_follow_the_reply_that_caused_them() {
    differential(1, |s| {
        s.quiet(0, &["HELLO", "3"]);
        s.call(0, &["CLIENT", "TRACKING", "on"]);
        s.call(0, &["SET", "k", "v"]);
        s.call(0, &["GET", "k"]);
        let pipelined = |s: &mut Run, cmds: &[&[&str]], replies: usize| {
            for cmd in cmds {
                s.conns[0].send(cmd).expect("send");
            }
            for _ in 0..replies {
                s.read(0);
            }
        };
        pipelined(s, &[&["SET", "k", "v2"], &["PING"]], 3);
        s.call(0, &["GET", "k"]);
        pipelined(s, &[&["DEL", "k"], &["SET", "other", "x"], &["PING"]], 4);
        s.call(0, &["CONFIG", "SET", "maxmemory-policy", "volatile-random"]);
        s.call(0, &["SETEX", "gone", "1000", "x"]);
        s.call(0, &["GET", "gone"]);
        pipelined(s, &[&["CONFIG", "SET", "maxmemory", "1"], &["PING"]], 3);
        s.call(0, &["CONFIG", "SET", "maxmemory", "0"]);
        s.call(0, &["EXISTS", "gone"]);
    });
}
