//! [`AppendPipeline`]: the write path for one primary of one log.
//!
//! All appends of a pipeline carry the condition `epoch = E` and travel, in
//! order, on a single `AppendStream` to the Raft leader. Appends made
//! concurrently (by many tasks of the primary) are coalesced into one
//! request with many payloads; up to [`MAX_IN_FLIGHT`] requests are in
//! flight at once, and while they are, new appends queue up into the next,
//! larger request. Coalescing is safe because all appends in a pipeline have
//! the same epoch condition: the entries of one request are contiguous and
//! the epoch cannot change in the middle of a Raft entry.
//!
//! An append may also name the LSN it must follow
//! ([`AppendPipeline::submit_after`], condition `epoch_after`): that is how
//! a primary makes each of its appends land exactly once and in its order,
//! whatever becomes of a request delayed in the network. Such appends are
//! coalesced only when each follows the one before it.
//!
//! A pipeline does not retry: an append that fails (FENCED, leader change,
//! broken stream) fails, and every later append of the pipeline fails too
//! once the stream breaks. The caller opens a new pipeline (after checking
//! the log if the outcome was unknown).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use memlog_proto::txlog as pb;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use crate::client::{to_condition, Appended, TxlogClient};
use crate::error::{Result, TxlogError};
use crate::types::{Condition, MAX_APPEND_PAYLOADS, MAX_APPEND_PAYLOAD_BYTES};

/// Requests sent but not yet answered, at most.
pub const MAX_IN_FLIGHT: usize = 2;
const MAX_PAYLOADS_PER_REQUEST: usize = MAX_APPEND_PAYLOADS;
const MAX_BYTES_PER_REQUEST: usize = 1024 * 1024;
/// See [`gather`].
const MAX_GATHER_YIELDS: usize = 4;

/// The callers waiting on one request: (payload count, reply) each.
type Waiters = Vec<(usize, oneshot::Sender<Result<Appended>>)>;

struct Job {
    payloads: Vec<Bytes>,
    /// The LSN the log must end at before these payloads (`epoch_after`).
    after: Option<u64>,
    reply: oneshot::Sender<Result<Appended>>,
}

/// Whether a job with condition `next` may join a request whose last job
/// had `len` payloads and condition `after`: both unpositioned, or the next
/// one starts where the other ends.
fn follows(after: Option<u64>, len: usize, next: Option<u64>) -> bool {
    match (after, next) {
        (None, None) => true,
        (Some(a), Some(b)) => a + len as u64 == b,
        _ => false,
    }
}

/// An ordered, coalescing append stream for one log and epoch.
#[derive(Clone)]
pub struct AppendPipeline {
    jobs: mpsc::Sender<Job>,
    requests: Arc<AtomicU64>,
}

impl AppendPipeline {
    /// Opens a pipeline at the current Raft leader.
    pub async fn open(client: &TxlogClient, log: &str, epoch: u64) -> Result<Self> {
        let status = client.status().await?;
        if status.leader_addr.is_empty() {
            return Err(TxlogError::Unavailable("no leader".into()));
        }
        let mut conn = client.connection(&status.leader_addr)?;
        let (req_tx, req_rx) = mpsc::channel::<pb::AppendRequest>(MAX_IN_FLIGHT * 2);
        let responses = conn
            .append_stream(ReceiverStream::new(req_rx))
            .await?
            .into_inner();
        let (jobs, rx) = mpsc::channel(65_536);
        let requests = Arc::new(AtomicU64::new(0));
        tokio::spawn(run(
            log.to_string(),
            epoch,
            req_tx,
            responses,
            rx,
            requests.clone(),
        ));
        Ok(Self { jobs, requests })
    }

    /// Requests sent so far: appends divided by this is how well concurrent
    /// appends coalesce.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Appends `payloads` (DATA entries); returns once they are committed.
    /// Appends made one after the other (even without awaiting) keep their
    /// order in the log.
    pub async fn append(&self, payloads: Vec<Bytes>) -> Result<Appended> {
        self.submit(payloads).await?.await
    }

    /// Appends `payloads` right after LSN `last_lsn` (see
    /// [`submit_after`](Self::submit_after)); returns once they are
    /// committed.
    pub async fn append_after(&self, payloads: Vec<Bytes>, last_lsn: u64) -> Result<Appended> {
        self.submit_after(payloads, last_lsn).await?.await
    }

    /// Queues `payloads` and returns at once with a future of the result:
    /// appends submitted one after the other enter the log in that order,
    /// without waiting for each other.
    pub async fn submit(
        &self,
        payloads: Vec<Bytes>,
    ) -> Result<impl std::future::Future<Output = Result<Appended>>> {
        self.queue(payloads, None).await
    }

    /// Like [`submit`](Self::submit), but the payloads must follow LSN
    /// `last_lsn` in the log (condition `epoch_after`), else the append
    /// fails with CONFLICT and appends nothing.
    pub async fn submit_after(
        &self,
        payloads: Vec<Bytes>,
        last_lsn: u64,
    ) -> Result<impl std::future::Future<Output = Result<Appended>>> {
        self.queue(payloads, Some(last_lsn)).await
    }

    async fn queue(
        &self,
        payloads: Vec<Bytes>,
        after: Option<u64>,
    ) -> Result<impl std::future::Future<Output = Result<Appended>>> {
        if payloads.is_empty() {
            return Err(TxlogError::Invalid("no payloads".into()));
        }
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job {
                payloads,
                after,
                reply,
            })
            .await
            .map_err(|_| TxlogError::Unavailable("pipeline closed".into()))?;
        Ok(async move {
            rx.await
                .map_err(|_| TxlogError::OutcomeUnknown("pipeline stopped".into()))?
        })
    }
}

fn response_error(r: &pb::AppendResponse) -> TxlogError {
    match pb::AppendStatus::try_from(r.status) {
        Ok(pb::AppendStatus::Fenced) => TxlogError::Fenced {
            epoch: r.epoch,
            last_lsn: r.log_last_lsn,
            holder: r.holder.clone(),
        },
        Ok(pb::AppendStatus::NotLeader) => TxlogError::NotLeader {
            leader_id: None,
            leader_addr: Some(r.leader_addr.clone()).filter(|a| !a.is_empty()),
        },
        Ok(pb::AppendStatus::Conflict) => TxlogError::Conflict {
            epoch: r.epoch,
            last_lsn: r.log_last_lsn,
            holder: r.holder.clone(),
        },
        Ok(pb::AppendStatus::Invalid) => TxlogError::Invalid(r.message.clone()),
        _ => TxlogError::OutcomeUnknown(format!("status {}: {}", r.status, r.message)),
    }
}

async fn run(
    log: String,
    epoch: u64,
    requests: mpsc::Sender<pb::AppendRequest>,
    mut responses: tonic::Streaming<pb::AppendResponse>,
    mut jobs: mpsc::Receiver<Job>,
    sent: Arc<AtomicU64>,
) {
    let mut in_flight: VecDeque<Waiters> = VecDeque::new();
    let mut open = true;
    // A job that could not join the request before it (see `follows`), or
    // would have made it too big for the log.
    let mut held: Option<Job> = None;
    loop {
        if !open && in_flight.is_empty() && held.is_none() {
            return;
        }
        tokio::select! {
            job = async {
                match held.take() {
                    Some(j) => Some(j),
                    None => jobs.recv().await,
                }
            }, if (open || held.is_some()) && in_flight.len() < MAX_IN_FLIGHT => {
                let Some(first) = job else {
                    open = false;
                    continue;
                };
                gather(&jobs).await;
                let condition = match first.after {
                    Some(last_lsn) => Condition::EpochAfter { epoch, last_lsn },
                    None => Condition::Epoch(epoch),
                };
                let mut bytes: usize = first.payloads.iter().map(Bytes::len).sum();
                let mut payloads = Vec::new();
                let mut waiters = Vec::new();
                let (mut last_len, mut after) = (first.payloads.len(), first.after);
                waiters.push((first.payloads.len(), first.reply));
                payloads.extend(first.payloads);
                while payloads.len() < MAX_PAYLOADS_PER_REQUEST && bytes < MAX_BYTES_PER_REQUEST {
                    let Ok(j) = jobs.try_recv() else { break };
                    let j_bytes = j.payloads.iter().map(Bytes::len).sum::<usize>();
                    // Two appends the log takes must not become one it refuses.
                    if !follows(after, last_len, j.after) || bytes + j_bytes > MAX_APPEND_PAYLOAD_BYTES {
                        held = Some(j);
                        break;
                    }
                    (last_len, after) = (j.payloads.len(), j.after);
                    bytes += j_bytes;
                    waiters.push((j.payloads.len(), j.reply));
                    payloads.extend(j.payloads);
                }
                let req = pb::AppendRequest {
                    log: log.clone(),
                    condition: Some(to_condition(condition)),
                    payloads,
                    kind: pb::EntryKind::Data as i32,
                };
                if requests.send(req).await.is_err() {
                    for (_, w) in waiters {
                        let _ = w.send(Err(TxlogError::Unavailable("stream closed".into())));
                    }
                    fail_all(&mut in_flight, held.take(), &mut jobs, "append stream closed");
                    return;
                }
                sent.fetch_add(1, Ordering::Relaxed);
                in_flight.push_back(waiters);
            }
            msg = responses.message() => {
                match msg {
                    Ok(Some(r)) => {
                        let Some(waiters) = in_flight.pop_front() else {
                            return;
                        };
                        if r.status == pb::AppendStatus::Ok as i32 {
                            let mut lsn = r.first_lsn;
                            for (n, w) in waiters {
                                let _ = w.send(Ok(Appended {
                                    first_lsn: lsn,
                                    last_lsn: lsn + n as u64 - 1,
                                    epoch: r.epoch,
                                }));
                                lsn += n as u64;
                            }
                        } else {
                            for (_, w) in waiters {
                                let _ = w.send(Err(response_error(&r)));
                            }
                        }
                    }
                    Ok(None) | Err(_) => {
                        fail_all(&mut in_flight, held.take(), &mut jobs, "append stream broke");
                        return;
                    }
                }
            }
        }
    }
}

/// Yields while more appends keep arriving (a few rounds at most), so that
/// the callers woken by the last response, which a multi-threaded runtime
/// may well run after this task, join the next request instead of each
/// taking a request slot for a whole round trip. A lone caller costs one
/// yield. (64 pipelined appenders on 2 cores: 25k appends/s without it,
/// 40-44k with it.)
async fn gather(jobs: &mpsc::Receiver<Job>) {
    for _ in 0..MAX_GATHER_YIELDS {
        let queued = jobs.len();
        tokio::task::yield_now().await;
        if jobs.len() == queued {
            return;
        }
    }
}

/// Fails the requests in flight (outcome unknown) and every job not sent
/// yet, `held` (taken off the queue, see `follows`) first.
fn fail_all(
    in_flight: &mut VecDeque<Waiters>,
    held: Option<Job>,
    jobs: &mut mpsc::Receiver<Job>,
    why: &str,
) {
    for waiters in in_flight.drain(..) {
        for (_, w) in waiters {
            let _ = w.send(Err(TxlogError::OutcomeUnknown(why.into())));
        }
    }
    if let Some(j) = held {
        let _ = j.reply.send(Err(TxlogError::Unavailable(why.into())));
    }
    jobs.close();
    while let Ok(j) = jobs.try_recv() {
        let _ = j.reply.send(Err(TxlogError::Unavailable(why.into())));
    }
}
