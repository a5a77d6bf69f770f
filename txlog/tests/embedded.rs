//! The embeddable single-node log: same openraft + sled code as a cluster
//! node, in process, surviving a restart on the same data directory.

use std::time::Duration;

use bytes::Bytes;
use memlog_txlog::store::state_machine::ReadResult;
use memlog_txlog::types::Condition;
use memlog_txlog::{TxlogError, TxlogNode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_node_appends_fences_trims_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (epoch, last) = {
        let node = TxlogNode::start_embedded(dir.path()).await.expect("start");
        let (epoch, lsn) = node
            .take_leadership("shard-0", "me", 0)
            .await
            .expect("lead");
        assert_eq!((epoch, lsn), (1, 1));
        let (first, last) = node
            .append(
                "shard-0",
                Condition::Epoch(epoch),
                vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")],
            )
            .await
            .expect("append");
        assert_eq!((first, last), (2, 3));
        let r = node
            .append(
                "shard-0",
                Condition::Epoch(0),
                vec![Bytes::from_static(b"x")],
            )
            .await;
        assert!(matches!(
            r,
            Err(TxlogError::Fenced {
                epoch: 1,
                last_lsn: 3,
                ..
            })
        ));
        let r = node
            .append(
                "shard-0",
                Condition::LastLsn(2),
                vec![Bytes::from_static(b"x")],
            )
            .await;
        assert!(matches!(r, Err(TxlogError::Conflict { last_lsn: 3, .. })));
        let (_, last) = node
            .append(
                "shard-0",
                Condition::LastLsn(3),
                vec![Bytes::from_static(b"c")],
            )
            .await
            .expect("conditional append");
        assert_eq!(node.trim("shard-0", 2).await.expect("trim"), 3);
        node.shutdown().await;
        (epoch, last)
    };
    // Give the previous runtime's background tasks a moment to drop sled.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let node = TxlogNode::start_embedded(dir.path())
        .await
        .expect("restart");
    let meta = node.view.meta("shard-0").expect("log survives");
    assert_eq!(
        (meta.first_lsn, meta.last_lsn, meta.epoch),
        (3, last, epoch)
    );
    match node
        .view
        .read("shard-0", 1, 100, 1 << 20)
        .await
        .expect("read")
    {
        ReadResult::Truncated { first_retained } => assert_eq!(first_retained, 3),
        other => panic!("expected truncation, got {other:?}"),
    }
    match node
        .view
        .read("shard-0", 3, 100, 1 << 20)
        .await
        .expect("read")
    {
        ReadResult::Entries(e) => {
            let payloads: Vec<&[u8]> = e.iter().map(|(_, r)| &r.payload[..]).collect();
            assert_eq!(payloads, vec![&b"b"[..], &b"c"[..]]);
        }
        other => panic!("expected entries, got {other:?}"),
    }
    node.append(
        "shard-0",
        Condition::Epoch(epoch),
        vec![Bytes::from_static(b"d")],
    )
    .await
    .expect("append after restart");
}

/// A node whose port is taken says which address it could not bind (tonic
/// alone said "transport error").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serving_on_a_busy_port_names_the_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let node = TxlogNode::start_embedded(dir.path()).await.expect("start");
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        node.serve(addr, std::future::pending()),
    )
    .await
    .expect("serve returned");
    let err = r.expect_err("the port is taken").to_string();
    assert!(err.contains(&format!("binding {addr}")), "{err}");
    node.shutdown().await;
}
