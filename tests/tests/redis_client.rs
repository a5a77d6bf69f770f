//! The `redis` crate, an ordinary Redis client library, against memlog:
//! every command family over RESP2 and RESP3.

use memlog_tests::MemlogServer;
use redis::AsyncCommands;

async fn connect(server: &MemlogServer, resp3: bool) -> redis::aio::MultiplexedConnection {
    let url = if resp3 {
        format!("{}?protocol=resp3", server.url())
    } else {
        server.url()
    };
    let client = redis::Client::open(url).expect("valid url");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connects")
}

async fn exercise(con: &mut redis::aio::MultiplexedConnection, p: &str) {
    let k = |s: &str| format!("{p}:{s}");
    // strings
    let _: () = con.set(k("s"), "v").await.unwrap();
    let v: String = con.get(k("s")).await.unwrap();
    assert_eq!(v, "v");
    let n: i64 = con.incr(k("n"), 5).await.unwrap();
    assert_eq!(n, 5);
    let missing: Option<String> = con.get(k("missing")).await.unwrap();
    assert_eq!(missing, None);
    // lists
    let len: i64 = con.rpush(k("l"), &["a", "b", "c"]).await.unwrap();
    assert_eq!(len, 3);
    let items: Vec<String> = con.lrange(k("l"), 0, -1).await.unwrap();
    assert_eq!(items, vec!["a", "b", "c"]);
    // hashes
    let _: () = con
        .hset_multiple(k("h"), &[("f1", "1"), ("f2", "2")])
        .await
        .unwrap();
    let all: std::collections::HashMap<String, String> = con.hgetall(k("h")).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all["f2"], "2");
    // sets
    let added: i64 = con.sadd(k("set"), &["x", "y", "x"]).await.unwrap();
    assert_eq!(added, 2);
    let mut members: Vec<String> = con.smembers(k("set")).await.unwrap();
    members.sort();
    assert_eq!(members, vec!["x", "y"]);
    // sorted sets
    let _: i64 = con
        .zadd_multiple(k("z"), &[(1.5, "a"), (0.5, "b")])
        .await
        .unwrap();
    let ranked: Vec<(String, f64)> = con.zrange_withscores(k("z"), 0, -1).await.unwrap();
    assert_eq!(ranked, vec![("b".to_string(), 0.5), ("a".to_string(), 1.5)]);
    // keys and expiry
    let set: bool = con.expire(k("s"), 100).await.unwrap();
    assert!(set);
    let ttl: i64 = con.ttl(k("s")).await.unwrap();
    assert!((1..=100).contains(&ttl));
    let t: String = redis::cmd("TYPE")
        .arg(k("z"))
        .query_async(con)
        .await
        .unwrap();
    assert_eq!(t, "zset");
    // transactions
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr(k("tx"), 1)
        .incr(k("tx"), 1)
        .query_async(con)
        .await
        .unwrap();
    assert_eq!((a, b), (1, 2));
    // errors come back as errors
    let err = con.lpush::<_, _, i64>(k("s"), "x").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"));
    let deleted: i64 = con
        .del(&[k("s"), k("n"), k("l"), k("h"), k("set"), k("z"), k("tx")])
        .await
        .unwrap();
    assert_eq!(deleted, 7);
}

#[tokio::test]
async fn every_family_over_resp2_and_resp3() {
    let server = MemlogServer::start(&[]).expect("memlog starts");
    let mut c2 = connect(&server, false).await;
    exercise(&mut c2, "resp2").await;
    let mut c3 = connect(&server, true).await;
    exercise(&mut c3, "resp3").await;
}

#[tokio::test]
async fn pubsub_with_the_redis_crate() {
    let server = MemlogServer::start(&[]).expect("memlog starts");
    let client = redis::Client::open(server.url()).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe("chan").await.unwrap();
    let mut publisher = connect(&server, false).await;
    let receivers: i64 = publisher.publish("chan", "hello").await.unwrap();
    assert_eq!(receivers, 1);
    use futures_util::StreamExt;
    let msg = pubsub.on_message().next().await.unwrap();
    let payload: String = msg.get_payload().unwrap();
    assert_eq!(payload, "hello");
}
