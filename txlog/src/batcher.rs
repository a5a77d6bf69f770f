//! The append batcher: coalesces concurrent client ops into few Raft entries.
//!
//! Every op goes through one channel. The batcher task takes the ops queued
//! so far (up to a size bound) and proposes them as a single Raft entry with
//! `client_write_ff`; up to `MAX_IN_FLIGHT` entries are in flight at once, and
//! while all slots are busy new ops pile up into the next, larger batch. Ops
//! are proposed in channel order, so one client's pipelined ops keep their
//! order in the log. Each op keeps its own condition, checked by the state
//! machine, and gets its own result.

use std::sync::Arc;

use openraft::error::ClientWriteError;
use openraft::impls::ProgressResponder;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::types::{NodeId, Op, OpResult, Raft, Request};

/// Raft entries proposed but not yet applied, at most.
const MAX_IN_FLIGHT: usize = 8;
/// Bounds of one Raft entry.
const MAX_OPS_PER_ENTRY: usize = 4096;
// One entry must replicate within a heartbeat interval (see
// `network::client::MAX_APPEND_RPC_BYTES`); a single bigger op still makes
// one entry.
const MAX_BYTES_PER_ENTRY: usize = 1024 * 1024;
/// Bytes of ops queued for the batcher (not yet in an entry), at most, in
/// KiB: past it `enqueue` waits, so a client streaming appends faster than
/// the log commits them is held back (its stream stops being read) instead
/// of filling memory (the queue held 65,536 ops of up to 40 MiB each).
const MAX_QUEUED_KIB: u32 = 256 * 1024;

/// What became of one op.
#[derive(Debug, Clone)]
pub enum WriteOutcome {
    Done(OpResult),
    /// Not proposed (or discarded before commit): retry at the leader.
    NotLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
    /// Proposed, but the outcome is unknown (leadership lost, node stopping).
    Unknown(String),
}

struct Pending {
    op: Op,
    reply: oneshot::Sender<WriteOutcome>,
    /// Its share of [`MAX_QUEUED_KIB`], given back once it is in an entry.
    _queued: OwnedSemaphorePermit,
}

/// Handle to the batcher task of one node.
#[derive(Clone)]
pub struct AppendBatcher {
    tx: mpsc::Sender<Pending>,
    queued: Arc<Semaphore>,
}

impl AppendBatcher {
    /// Starts the batcher task in front of `raft`.
    pub fn start(raft: Raft) -> Self {
        let (tx, rx) = mpsc::channel(65_536);
        tokio::spawn(run(raft, rx));
        Self {
            tx,
            queued: Arc::new(Semaphore::new(MAX_QUEUED_KIB as usize)),
        }
    }

    /// Queues `op`; the receiver yields its outcome. Ops queued by one caller
    /// one after the other are proposed in that order. An op the log refuses
    /// ([`Op::refusal`]) is answered `Invalid` at once.
    pub async fn enqueue(&self, op: Op) -> oneshot::Receiver<WriteOutcome> {
        let (reply, rx) = oneshot::channel();
        if let Some(why) = op.refusal() {
            let _ = reply.send(WriteOutcome::Done(OpResult::Invalid(why)));
            return rx;
        }
        // One op bigger than the whole bound still goes, alone.
        let kib = (op.size_hint() / 1024 + 1).min(MAX_QUEUED_KIB as usize) as u32;
        let Ok(queued) = self.queued.clone().acquire_many_owned(kib).await else {
            let _ = reply.send(WriteOutcome::Unknown("batcher stopped".into()));
            return rx;
        };
        let pending = Pending {
            op,
            reply,
            _queued: queued,
        };
        if let Err(mpsc::error::SendError(p)) = self.tx.send(pending).await {
            let _ = p.reply.send(WriteOutcome::NotLeader {
                leader_id: None,
                leader_addr: None,
            });
        }
        rx
    }

    /// Queues `op` and waits for its outcome.
    pub async fn submit(&self, op: Op) -> WriteOutcome {
        match self.enqueue(op).await.await {
            Ok(o) => o,
            Err(_) => WriteOutcome::Unknown("batcher stopped".into()),
        }
    }
}

async fn run(raft: Raft, mut rx: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Waiting for a slot lets more ops queue up behind `first`.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut bytes = first.op.size_hint();
        let mut ops = vec![first.op];
        let mut replies = vec![first.reply];
        while ops.len() < MAX_OPS_PER_ENTRY && bytes < MAX_BYTES_PER_ENTRY {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.op.size_hint();
                    ops.push(p.op);
                    replies.push(p.reply);
                }
                Err(_) => break,
            }
        }
        let (responder, reply) = ProgressResponder::complete_only();
        match raft.client_write_ff(Request { ops }, Some(responder)).await {
            Ok(()) => {}
            Err(fatal) => {
                tracing::warn!("raft stopped: {fatal}");
                for r in replies {
                    let _ = r.send(WriteOutcome::NotLeader {
                        leader_id: None,
                        leader_addr: None,
                    });
                }
                continue;
            }
        };
        tokio::spawn(async move {
            let result = reply.await;
            drop(permit);
            match result {
                Ok(Ok(resp)) => {
                    let mut results = resp.data.results.into_iter();
                    for r in replies {
                        let outcome = match results.next() {
                            Some(res) => WriteOutcome::Done(res),
                            None => WriteOutcome::Unknown("missing result".into()),
                        };
                        let _ = r.send(outcome);
                    }
                }
                Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
                    // Rejected by a non-leader, or removed from this log by a
                    // newer leader: in both cases it will never be committed.
                    let addr = f.leader_node.map(|n| n.addr);
                    for r in replies {
                        let _ = r.send(WriteOutcome::NotLeader {
                            leader_id: f.leader_id,
                            leader_addr: addr.clone(),
                        });
                    }
                }
                Ok(Err(e)) => {
                    for r in replies {
                        let _ = r.send(WriteOutcome::Unknown(e.to_string()));
                    }
                }
                Err(_) => {
                    for r in replies {
                        let _ = r.send(WriteOutcome::Unknown(
                            "leadership lost while the write was in flight".into(),
                        ));
                    }
                }
            }
        });
    }
}
