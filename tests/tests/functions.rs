//! Redis 7 functions (FUNCTION LOAD/LIST/DELETE/FLUSH/DUMP/RESTORE/STATS,
//! FCALL, FCALL_RO): differential tests against a real redis-server, and
//! libraries surviving a restart, a rebuild from the log and a snapshot.

use memlog_tests::resp::{RawConn, RespValue};
use memlog_tests::{Differential, MemlogServer, Order};

const LIB1: &str = "#!lua name=lib1
redis.register_function('f1', function(keys, args) return {keys[1], args[1]} end)
redis.register_function('set', function(keys, args) return redis.call('set', keys[1], args[1]) end)
redis.register_function('boom', function(keys, args)
  error('bad thing')
end)
redis.register_function{function_name='ro', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}
redis.register_function{function_name='ro_write', callback=function(keys, args) return redis.call('set', 'x', 'y') end, flags={'NO-WRITES', 'allow-oom'}}
";

fn load(d: &mut Differential, code: &str) -> RespValue {
    d.check(&["FUNCTION", "LOAD", code])
}

#[test]
fn load_and_call_match_redis() {
    let mut d = Differential::start().expect("servers start");
    assert_eq!(load(&mut d, LIB1), RespValue::Bulk(b"lib1".to_vec()));
    // Redis lists a library's functions in its hash table's order.
    for cmd in [
        &["FUNCTION", "LIST", "LIBRARYNAME", "lib1"][..],
        &["FUNCTION", "LIST", "WITHCODE", "LIBRARYNAME", "l*"],
        &["FUNCTION", "LIST"],
    ] {
        d.check_with(cmd, Order::Unordered);
    }
    for cmd in [
        &["FCALL", "f1", "1", "k", "a"][..],
        &["FCALL", "f1", "0"],
        &["FCALL", "set", "1", "k", "v"],
        &["GET", "k"],
        &["FCALL", "ro", "1", "k"],
        &["FCALL_RO", "ro", "1", "k"],
        &["FCALL", "boom", "0"],
        &["FCALL", "ro_write", "0"],
        &["FCALL_RO", "ro_write", "0"],
        &["FCALL_RO", "set", "1", "k", "v"],
        &["FCALL", "nosuch", "0"],
        &["FCALL", "f1", "x"],
        &["FCALL", "f1", "2", "k"],
        &["FCALL", "f1", "-1"],
        &["FCALL", "f1"],
        &["FUNCTION", "LIST", "LIBRARYNAME", "nomatch*"],
        &["FUNCTION", "LIST", "LIBRARYNAME"],
        &["FUNCTION", "LIST", "bogus"],
        &["FUNCTION", "STATS"],
        &["FUNCTION", "KILL"],
        &["FUNCTION", "HELP"],
        &["FUNCTION", "NOSUCH"],
        &["FUNCTION", "DELETE", "nosuch"],
        &["FUNCTION", "FLUSH", "bogus"],
        &["FUNCTION", "FLUSH", "SYNC", "x"],
        &["FUNCTION", "RESTORE", "bad-payload"],
        &["FUNCTION", "RESTORE", "x", "BADPOLICY"],
        &["FUNCTION", "LOAD", "BOGUS", "x"],
        // Functions do not see EVAL's scripts, nor SCRIPT FLUSH them.
        &["SCRIPT", "FLUSH"],
        &["FCALL", "f1", "1", "still-here"],
        // FLUSHALL leaves the libraries alone.
        &["FLUSHALL"],
        &["FCALL", "f1", "1", "after-flushall"],
        &["FUNCTION", "DELETE", "lib1"],
        &["FCALL", "f1", "0"],
        &["FUNCTION", "LIST"],
    ] {
        d.check(cmd);
    }
}

#[test]
fn load_errors_match_redis() {
    let mut d = Differential::start().expect("servers start");
    let ok = "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)";
    load(&mut d, ok);
    for code in [
        ok,
        "#!lua name=lib2\nredis.register_function('f1', function() return 2 end)",
        "no metadata",
        "#!lua name=a",
        "#!lua",
        "#!lua name=a name=b\n",
        "#!lua name=a foo=b\n",
        "#!js name=a\n",
        "#!lua name=bad-name\nredis.register_function('x', function() end)",
        "#!lua name=lib2\nreturn 1",
        "#!lua name=lib2\nlocal x = \n",
        "#!lua name=lib2\nreturn math.random()",
        "#!lua name=lib2\nreturn redis.call('ping')",
        "#!lua name=lib2\nreturn redis.setresp(3)",
        "#!lua name=lib2\nerror('x')",
        "#!lua name=lib2\nredis.register_function(1)",
        "#!lua name=lib2\nredis.register_function('a', 'b')",
        "#!lua name=lib2\nredis.register_function({}, function() end)",
        "#!lua name=lib2\nredis.register_function()",
        "#!lua name=lib2\nredis.register_function('a', function() end, 3)",
        "#!lua name=lib2\nredis.register_function('', function() end)",
        "#!lua name=lib2\nredis.register_function('x y', function() end)",
        "#!lua name=lib2\nredis.register_function('f', function() end) redis.register_function('f', function() end)",
        "#!lua name=lib2\nredis.register_function{function_name='f', callback=function() end, flags={'bad'}}",
        "#!lua name=lib2\nredis.register_function{function_name='f', callback=function() end, flags='no-writes'}",
        "#!lua name=lib2\nredis.register_function{function_name='f', callback=1}",
        "#!lua name=lib2\nredis.register_function{function_name={}, callback=function() end}",
        "#!lua name=lib2\nredis.register_function{function_name='f', description={}, callback=function() end}",
        "#!lua name=lib2\nredis.register_function{callback=function() end}",
        "#!lua name=lib2\nredis.register_function{function_name='f'}",
        "#!lua name=lib2\nredis.register_function{function_name='f', callback=function() end, what=1}",
        "#!lua name=lib2\nredis.register_function{[1]='f'}",
        "#!lua name=lib2\nredis.register_function{function_name=7, callback=function() return 7 end}",
    ] {
        d.check(&["FUNCTION", "LOAD", code]);
    }
    d.check(&["FCALL", "7", "0"]);
    d.check(&["FUNCTION", "LOAD", "REPLACE", ok]);
    d.check(&["FUNCTION", "STATS"]);
}

/// The sandbox: during a load only `redis` (register_function, log, the
/// constants) is visible; at call time the full globals but no
/// register_function, and nothing can be modified.
#[test]
fn load_and_call_sandboxes_match_redis() {
    let mut d = Differential::start().expect("servers start");
    d.check(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=lib1
local lib = redis
lib.log(lib.LOG_NOTICE, 'loading')
lib.register_function('f1', function()
  lib.redis = redis
  return {ok='OK'}
end)
lib.register_function('f2', function()
  lib.register_function('f3', function() return 3 end)
end)
redis.register_function('f4', function(keys, args)
  return redis.register_function('f5', function() return 5 end)
end)
redis.register_function('f6', function(keys, args)
  x = 1
end)
redis.register_function('f7', function(keys, args)
  return {redis.REDIS_VERSION, type(string.format), cjson.encode({1,2}), math.floor(2.5)}
end)
redis.register_function('f8', function(keys, args)
  return redis.pcall('nosuchcommand')
end)",
    ]);
    for f in ["f1", "f2", "f4", "f6", "f7", "f8"] {
        d.check(&["FCALL", f, "0"]);
    }
    d.check(&["FUNCTION", "LOAD", "#!lua name=lib2\nredis.math.random()"]);
    d.check(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=lib2\nredis.redis.call('ping')",
    ]);
}

/// FUNCTION DUMP / RESTORE: Redis' payloads (LZF-compressed) restore into
/// memlog and memlog's into Redis, with every policy's collisions.
#[test]
fn dump_and_restore_interoperate_with_redis() {
    let mut d = Differential::start().expect("servers start");
    let a = "#!lua name=a\nredis.register_function('fa', function() return 'a' end)";
    let b = "#!lua name=b\nredis.register_function('fb', function() return 'b' end)";
    let b2 = "#!lua name=b\nredis.register_function('fb2', function() return 'b2' end)";
    let c = "#!lua name=c\nredis.register_function('fa', function() return 'c' end)";
    load(&mut d, a);
    load(&mut d, b);
    let RespValue::Bulk(redis_dump) = d.r.call(&["FUNCTION", "DUMP"]).expect("dump") else {
        panic!("redis FUNCTION DUMP");
    };
    let RespValue::Bulk(memlog_dump) = d.m.call(&["FUNCTION", "DUMP"]).expect("dump") else {
        panic!("memlog FUNCTION DUMP");
    };
    // Each restores its own and the other's payload the same way (which
    // of two colliding libraries an error names follows Redis' hash order).
    for payload in [&redis_dump, &memlog_dump] {
        for policy in [&b"APPEND"[..], b"append"] {
            let (m, r) = d.both(&[&b"FUNCTION"[..], b"RESTORE", payload, policy]);
            assert!(m.is_error() && r.is_error(), "{m:?} / {r:?}");
        }
        d.check(&[&b"FUNCTION"[..], b"RESTORE", payload, b"REPLACE"]);
        d.check(&[&b"FUNCTION"[..], b"FLUSH"]);
        d.check(&[&b"FUNCTION"[..], b"RESTORE", payload]);
        d.check(&[&b"FCALL"[..], b"fa", b"0"]);
        d.check(&[&b"FCALL"[..], b"fb", b"0"]);
        // A library with one of the payload's function names.
        d.check(&[&b"FUNCTION"[..], b"FLUSH"]);
        d.check(&[&b"FUNCTION"[..], b"LOAD", c.as_bytes()]);
        d.check(&[&b"FUNCTION"[..], b"RESTORE", payload, b"REPLACE"]);
        d.check(&[&b"FUNCTION"[..], b"RESTORE", payload, b"FLUSH"]);
        d.check(&[&b"FCALL"[..], b"fa", b"0"]);
        // Replacing b with the payload's b drops b2's function.
        d.check(&[&b"FUNCTION"[..], b"LOAD", b"REPLACE", b2.as_bytes()]);
        d.check(&[&b"FUNCTION"[..], b"RESTORE", payload, b"REPLACE"]);
        d.check(&[&b"FCALL"[..], b"fb2", b"0"]);
        d.check(&[&b"FCALL"[..], b"fb", b"0"]);
    }
    let mut corrupt = redis_dump.clone();
    let n = corrupt.len();
    corrupt[n - 1] ^= 1;
    d.check(&[&b"FUNCTION"[..], b"RESTORE", &corrupt]);
    // A key's DUMP payload is not a function.
    d.check(&["SET", "k", "v"]);
    let RespValue::Bulk(key_dump) = d.r.call(&["DUMP", "k"]).expect("dump") else {
        panic!("DUMP k");
    };
    d.check(&[&b"FUNCTION"[..], b"RESTORE", &key_dump]);
}

fn call(c: &mut RawConn, args: &[&str]) -> RespValue {
    c.call(args).expect("call")
}

/// Libraries are data: FUNCTION LOAD, DELETE, RESTORE and FLUSH reach the
/// log, so a restart (log replay), a rebuild (DEBUG RELOAD: snapshot and
/// log) and a restart on a snapshot all bring back the same libraries.
#[test]
fn libraries_survive_restart_snapshot_and_rebuild() {
    let mut server = MemlogServer::start(&[]).expect("server");
    let mut c = RawConn::connect(server.port).expect("connect");
    let keep = "#!lua name=keep\nredis.register_function('k1', function(keys) return redis.call('incr', keys[1]) end)";
    let gone = "#!lua name=gone\nredis.register_function('g1', function() return 1 end)";
    assert_eq!(
        call(&mut c, &["FUNCTION", "LOAD", keep]),
        RespValue::Bulk(b"keep".to_vec())
    );
    call(&mut c, &["FUNCTION", "LOAD", gone]);
    assert_eq!(call(&mut c, &["FCALL", "k1", "1", "n"]), RespValue::Int(1));
    assert_eq!(
        call(&mut c, &["FUNCTION", "DELETE", "gone"]),
        RespValue::Simple("OK".into())
    );
    let listed = call(&mut c, &["FUNCTION", "LIST", "WITHCODE"]);

    server.restart().expect("restart");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(call(&mut c, &["FUNCTION", "LIST", "WITHCODE"]), listed);
    assert_eq!(call(&mut c, &["FCALL", "k1", "1", "n"]), RespValue::Int(2));
    assert!(call(&mut c, &["FCALL", "g1", "0"]).is_error());

    assert_eq!(
        call(&mut c, &["DEBUG", "RELOAD"]),
        RespValue::Simple("OK".into())
    );
    assert_eq!(call(&mut c, &["FUNCTION", "LIST", "WITHCODE"]), listed);
    assert_eq!(call(&mut c, &["FCALL", "k1", "1", "n"]), RespValue::Int(3));

    // On a snapshot (the log before it trimmed), then FLUSH after it.
    assert_eq!(call(&mut c, &["SAVE"]), RespValue::Simple("OK".into()));
    server.restart().expect("restart");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(call(&mut c, &["FUNCTION", "LIST", "WITHCODE"]), listed);
    assert_eq!(call(&mut c, &["FCALL", "k1", "1", "n"]), RespValue::Int(4));
    let RespValue::Bulk(payload) = call(&mut c, &["FUNCTION", "DUMP"]) else {
        panic!("FUNCTION DUMP");
    };
    call(&mut c, &["FUNCTION", "FLUSH"]);
    server.restart().expect("restart");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(
        call(&mut c, &["FUNCTION", "LIST"]),
        RespValue::Array(vec![])
    );
    assert_eq!(
        c.call(&[&b"FUNCTION"[..], b"RESTORE", &payload])
            .expect("restore"),
        RespValue::Simple("OK".into())
    );
    server.restart().expect("restart");
    let mut c = RawConn::connect(server.port).expect("connect");
    assert_eq!(call(&mut c, &["FUNCTION", "LIST", "WITHCODE"]), listed);
}

/// MONITOR shows an EVAL or FCALL before the commands it runs, as Redis
/// does.
#[test]
fn monitor_shows_scripts_before_their_commands() {
    let server = MemlogServer::start(&[]).expect("server");
    let mut mon = RawConn::connect(server.port).expect("connect");
    let mut c = RawConn::connect(server.port).expect("connect");
    call(
        &mut c,
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=m\nredis.register_function('setit', function(keys, args) return redis.call('set', keys[1], args[1]) end)",
        ],
    );
    assert_eq!(call(&mut mon, &["MONITOR"]), RespValue::Simple("OK".into()));
    call(
        &mut c,
        &["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "k"],
    );
    call(&mut c, &["FCALL", "setit", "1", "k", "y"]);
    let mut lines = Vec::new();
    for _ in 0..4 {
        match mon.read().expect("monitor line") {
            RespValue::Simple(l) => lines.push(l),
            other => panic!("monitor sent {other:?}"),
        }
    }
    assert!(lines[0].contains("\"EVAL\""), "{lines:?}");
    assert!(
        lines[1].contains("[0 lua] \"set\" \"k\" \"x\""),
        "{lines:?}"
    );
    assert!(lines[2].contains("\"FCALL\" \"setit\""), "{lines:?}");
    assert!(
        lines[3].contains("[0 lua] \"set\" \"k\" \"y\""),
        "{lines:?}"
    );
}
