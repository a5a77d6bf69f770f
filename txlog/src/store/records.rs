//! How the state machine keeps a named log's entries in its `sm` tree, and
//! reads them back for tailers and snapshot files.
//!
//! An applied append is stored as a [`ChunkRef`] under an `r` key: its
//! epoch, kind and running checksums, and where its payloads are, namely
//! which op of which Raft log entry carried them. The payloads are thus on
//! a node's disk once, in its Raft log, instead of a second time in the
//! state machine. sled rewrites a whole tree node, values inline, every few
//! changes to it, so each stored copy costs about four times its size in
//! writes: with the copy, a txlog follower wrote 2.8 KB per 300-byte SET
//! record at pipeline 16. The Raft log keeps every entry a chunk refers to
//! (see [`first_referenced_index`]), whatever openraft has purged.
//!
//! Chunks holding their payloads ([`RecordChunk`], under `e` keys) come
//! from snapshot installs and from data directories written before refs.
//! Within a log they all precede its refs (an install replaces the whole
//! tree; whatever is applied later is stored as refs), so a log reads as
//! its `e` chunks, then its `r` chunks.
//!
//! Keys: kind byte, log name length (u16 BE), log name, LSN of the chunk's
//! first entry (u64 BE).

use std::sync::Arc;

use bytes::Bytes;
use openraft::EntryPayload;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use super::log_storage::LogStore;
use crate::error::{Result, TxlogError};
use crate::types::{Entry, EntryKind, Op, RecordChunk};

/// Key kind of chunks holding their payloads.
const INLINE: u8 = b'e';
/// Key kind of chunks referring to the Raft log.
const REF: u8 = b'r';

fn prefix(kind: u8, log: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + log.len() + 8);
    k.push(kind);
    k.extend_from_slice(&(log.len() as u16).to_be_bytes());
    k.extend_from_slice(log.as_bytes());
    k
}

fn key(kind: u8, log: &str, lsn: u64) -> Vec<u8> {
    let mut k = prefix(kind, log);
    k.extend_from_slice(&lsn.to_be_bytes());
    k
}

/// Key of a chunk holding its payloads.
pub(crate) fn inline_key(log: &str, lsn: u64) -> Vec<u8> {
    key(INLINE, log, lsn)
}

/// Key of a chunk referring to the Raft log.
pub(crate) fn ref_key(log: &str, lsn: u64) -> Vec<u8> {
    key(REF, log, lsn)
}

/// LSN of a chunk's first entry, from its key.
pub(crate) fn lsn_of_key(key: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if key.len() >= 8 {
        b.copy_from_slice(&key[key.len() - 8..]);
    }
    u64::from_be_bytes(b)
}

/// An applied append (or leadership entry) whose payloads are in the Raft
/// log: op `op` of the entry at `raft_index`.
///
/// Its first three fields are those of [`RecordChunk`], in the same order,
/// so that [`ChunkHead`] decodes either.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkRef {
    pub epoch: u64,
    pub kind: EntryKind,
    /// Running checksum after each payload.
    pub checksums: Vec<u32>,
    pub raft_index: u64,
    pub op: u32,
}

/// The leading fields of both chunk encodings: enough to count a chunk's
/// entries without decoding its payloads.
#[derive(Deserialize)]
struct ChunkHead {
    _epoch: u64,
    _kind: EntryKind,
    checksums: Vec<u32>,
}

/// Number of entries of a stored chunk (either kind).
pub(crate) fn chunk_len(value: &[u8]) -> Result<u64> {
    let head: ChunkHead = bincode::deserialize(value)?;
    Ok(head.checksums.len() as u64)
}

/// The key ranges of one log's chunks, in LSN order.
pub(crate) fn log_ranges(log: &str, upto: u64) -> [(Vec<u8>, Vec<u8>); 2] {
    [
        (prefix(INLINE, log), inline_key(log, upto)),
        (prefix(REF, log), ref_key(log, upto)),
    ]
}

/// The state machine's refs as the Raft log's purger sees them: which
/// entries are still referred to, and a signal when fewer may be.
#[derive(Clone)]
pub(crate) struct References {
    tree: sled::Tree,
    released: Arc<Notify>,
}

impl References {
    /// The refs stored in `tree` (the state machine's `sm` tree).
    pub(crate) fn new(tree: sled::Tree) -> Self {
        Self {
            tree,
            released: Arc::new(Notify::new()),
        }
    }

    /// See [`first_referenced_index`]. Blocking.
    pub(crate) fn first_index(&self) -> Result<Option<u64>> {
        first_referenced_index(&self.tree)
    }

    /// Tells the purger that chunks were deleted.
    pub(crate) fn release(&self) {
        self.released.notify_one();
    }

    /// Waits for [`References::release`].
    pub(crate) async fn released(&self) {
        self.released.notified().await
    }
}

/// The lowest Raft log index any chunk in `tree` refers to: the Raft log
/// must keep that entry and every later one. One lookup per log: a log's
/// refs are in apply order, so its first ref names its lowest index.
pub(crate) fn first_referenced_index(tree: &sled::Tree) -> Result<Option<u64>> {
    let mut lowest: Option<u64> = None;
    let mut from = vec![REF];
    while let Some(kv) = tree.range(from.clone()..).next() {
        let (k, v) = kv?;
        if k.first() != Some(&REF) || k.len() < 8 {
            break;
        }
        let r: ChunkRef = bincode::deserialize(&v)?;
        lowest = Some(lowest.map_or(r.raft_index, |l| l.min(r.raft_index)));
        // Past every key of this log: its prefix, then more than 8 bytes.
        from = k[..k.len() - 8].to_vec();
        from.extend_from_slice(&[0xff; 9]);
    }
    Ok(lowest)
}

/// Reads a log's chunks, resolving refs through the Raft log.
pub(crate) struct ChunkReader<'a> {
    tree: &'a sled::Tree,
    raft: &'a LogStore,
    /// The Raft entry resolved last: consecutive refs often share one.
    entry: Option<Entry>,
}

impl<'a> ChunkReader<'a> {
    pub(crate) fn new(tree: &'a sled::Tree, raft: &'a LogStore) -> Self {
        Self {
            tree,
            raft,
            entry: None,
        }
    }

    /// Calls `f(first_lsn, chunk)` for every chunk of `log` from the one
    /// holding `from` up to the one holding `to`, in LSN order, until `f`
    /// returns false. Blocking (sled reads): for the blocking pool.
    pub(crate) fn for_each(
        &mut self,
        log: &str,
        from: u64,
        to: u64,
        mut f: impl FnMut(u64, RecordChunk) -> Result<bool>,
    ) -> Result<()> {
        // The chunk holding `from` starts at or before it: the last ref
        // there, or else (the log's inline chunks all come first) the last
        // inline chunk there.
        let holding = |kind: u8| -> Result<Option<Vec<u8>>> {
            match self
                .tree
                .range(prefix(kind, log)..=key(kind, log, from))
                .next_back()
            {
                Some(kv) => Ok(Some(kv?.0.to_vec())),
                None => Ok(None),
            }
        };
        let ranges = match holding(REF)? {
            Some(start) => vec![(start, ref_key(log, to))],
            None => {
                let start = holding(INLINE)?.unwrap_or_else(|| inline_key(log, from));
                vec![
                    (start, inline_key(log, to)),
                    (prefix(REF, log), ref_key(log, to)),
                ]
            }
        };
        let mut next: Option<u64> = None;
        for (start, end) in ranges {
            for kv in self.tree.range(start..=end) {
                let (k, v) = kv?;
                let lsn = lsn_of_key(&k);
                // An entry stored both ways (re-applied after a crash by a
                // newer binary than the one that stored it first): once.
                if next.is_some_and(|n| lsn < n) {
                    continue;
                }
                let chunk = if k.first() == Some(&REF) {
                    self.resolve(bincode::deserialize(&v)?)?
                } else {
                    bincode::deserialize(&v)?
                };
                next = Some(lsn + chunk.len());
                if !f(lsn, chunk)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn resolve(&mut self, r: ChunkRef) -> Result<RecordChunk> {
        if self.entry.as_ref().map(|e| e.log_id.index) != Some(r.raft_index) {
            self.entry = Some(self.raft.entry(r.raft_index)?.ok_or_else(|| {
                TxlogError::Invalid(format!(
                    "the raft log entry {} that log records refer to is gone",
                    r.raft_index
                ))
            })?);
        }
        let op = match self.entry.as_ref().map(|e| &e.payload) {
            Some(EntryPayload::Normal(req)) => req.ops.get(r.op as usize),
            _ => None,
        };
        let payloads = match op {
            Some(Op::Append { payloads, .. }) => payloads.clone(),
            Some(Op::TakeLeadership { candidate, .. }) => {
                vec![Bytes::from(candidate.clone().into_bytes())]
            }
            _ => Vec::new(),
        };
        if payloads.len() != r.checksums.len() {
            return Err(TxlogError::Invalid(format!(
                "raft log entry {} op {} does not hold the {} records referring to it",
                r.raft_index,
                r.op,
                r.checksums.len()
            )));
        }
        Ok(RecordChunk {
            epoch: r.epoch,
            kind: r.kind,
            checksums: r.checksums,
            payloads,
        })
    }
}

/// An encoded chunk of one record in the Raft log entry at `raft_index`.
#[cfg(test)]
pub(crate) fn one_record_ref(raft_index: u64) -> Vec<u8> {
    let r = ChunkRef {
        epoch: 1,
        kind: EntryKind::Data,
        checksums: vec![0],
        raft_index,
        op: 0,
    };
    bincode::serialize(&r).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_len_reads_both_encodings() {
        let inline = RecordChunk {
            epoch: 3,
            kind: EntryKind::Data,
            checksums: vec![1, 2, 3],
            payloads: vec![Bytes::from_static(b"a"); 3],
        };
        let r = ChunkRef {
            epoch: 3,
            kind: EntryKind::Leadership,
            checksums: vec![9],
            raft_index: 77,
            op: 2,
        };
        let inline = bincode::serialize(&inline).expect("ser");
        let r = bincode::serialize(&r).expect("ser");
        assert_eq!(chunk_len(&inline).expect("inline"), 3);
        assert_eq!(chunk_len(&r).expect("ref"), 1);
    }

    #[test]
    fn first_referenced_index_takes_each_logs_first_ref() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = sled::open(dir.path()).expect("sled");
        let tree = db.open_tree("sm").expect("tree");
        assert_eq!(first_referenced_index(&tree).expect("empty"), None);
        let put = |log: &str, lsn: u64, raft_index: u64| {
            tree.insert(ref_key(log, lsn), one_record_ref(raft_index))
                .expect("insert");
        };
        tree.insert(inline_key("a", 1), b"x".to_vec())
            .expect("inline");
        put("a", 5, 40);
        put("a", 6, 41);
        put("bb", 2, 30);
        put("bb", 3, 90);
        put("c", 9, 50);
        tree.insert(b"s", b"state".to_vec()).expect("state");
        assert_eq!(first_referenced_index(&tree).expect("read"), Some(30));
        tree.remove(ref_key("bb", 2)).expect("remove");
        assert_eq!(first_referenced_index(&tree).expect("read"), Some(40));
    }

    /// Every log entry's payload reads back after openraft has purged the
    /// Raft log entries holding it, also after a restart; trimming lets the
    /// Raft log delete them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn payloads_outlive_the_raft_log_purge_until_trimmed() {
        use crate::node::{NodeConfig, TxlogNode};
        use crate::store::state_machine::ReadResult;
        use crate::types::{chain_checksum, Condition};
        use openraft::async_runtime::watch::WatchReceiver;
        use std::collections::BTreeMap;
        use std::time::{Duration, Instant};

        let dir = tempfile::tempdir().expect("tempdir");
        let start = || async {
            let mut cfg = NodeConfig::new(1, "embedded", dir.path());
            cfg.heartbeat_ms = 50;
            cfg.election_min_ms = 150;
            cfg.election_max_ms = 300;
            cfg.snapshot_every = 20;
            let node = TxlogNode::start(&cfg).await.expect("start");
            node.initialize(BTreeMap::from([(1, "embedded".to_string())]))
                .await
                .expect("init");
            node.wait_for_leader(Duration::from_secs(10))
                .await
                .expect("leader");
            node
        };
        let payload = |i: usize, j: usize| Bytes::from(format!("p{i}-{j}-{}", "x".repeat(i % 7)));
        let read_all = |node: &TxlogNode, last: u64| {
            let view = node.view.clone();
            async move {
                match view.read("l", 1, 10_000, 1 << 30).await.expect("read") {
                    ReadResult::Entries(e) => {
                        assert_eq!(e.len() as u64, last);
                        let mut sum = 0;
                        for (n, (lsn, rec)) in e.iter().enumerate() {
                            assert_eq!(*lsn, n as u64 + 1);
                            sum = chain_checksum(sum, &rec.payload);
                            assert_eq!(rec.checksum, sum, "checksum at lsn {lsn}");
                            if n > 0 {
                                let (i, j) = ((n - 1) / 3, (n - 1) % 3);
                                assert_eq!(rec.payload, payload(i, j), "lsn {lsn}");
                            }
                        }
                    }
                    other => panic!("expected entries, got {other:?}"),
                }
            }
        };

        let node = start().await;
        let (epoch, _) = node.take_leadership("l", "me", 0).await.expect("lead");
        let mut last = 1;
        for i in 0..200 {
            let batch = (0..3).map(|j| payload(i, j)).collect();
            (_, last) = node
                .append("l", Condition::Epoch(epoch), batch)
                .await
                .expect("append");
        }
        assert_eq!(last, 601);
        let deadline = Instant::now() + Duration::from_secs(20);
        while node
            .raft
            .metrics()
            .borrow_watched()
            .purged
            .map_or(0, |p| p.index)
            < 100
        {
            assert!(Instant::now() < deadline, "openraft never purged");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Purged for openraft, still stored: the records refer to them.
        assert!(node.view.raft_log().first_stored_index() <= Some(2));
        read_all(&node, last).await;
        node.shutdown().await;
        drop(node);
        tokio::time::sleep(Duration::from_millis(200)).await;

        let node = start().await;
        read_all(&node, last).await;
        node.trim("l", 600).await.expect("trim");
        // The current snapshot still covers them: they go after the next.
        for i in 200..230 {
            node.append("l", Condition::Epoch(epoch), vec![payload(i, 0)])
                .await
                .expect("append");
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while node.view.raft_log().first_stored_index() < Some(100) {
            assert!(
                Instant::now() < deadline,
                "trimmed records' raft entries never purged"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        match node.view.read("l", 601, 10, 1 << 20).await.expect("read") {
            ReadResult::Entries(e) => assert_eq!(e[0].1.payload, payload(199, 2)),
            other => panic!("expected the last entry, got {other:?}"),
        }
        node.shutdown().await;
    }
}
