//! The public gRPC API (`memlog.txlog.Txlog`) of one node.
//!
//! Appends go through the node's [`AppendBatcher`](crate::batcher::AppendBatcher);
//! a node that is not the Raft leader answers them with `NOT_LEADER` and the
//! leader's address (the client library retries there). Trim, Status and
//! membership changes are forwarded to the leader. Tail is served by any node
//! from its own applied state machine.

use openraft::async_runtime::watch::WatchReceiver;
use std::collections::BTreeSet;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use memlog_proto::txlog as pb;
use memlog_proto::txlog::txlog_client::TxlogClient as GrpcClient;
use memlog_proto::txlog::txlog_server::Txlog;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::batcher::WriteOutcome;
use crate::error::TxlogError;
use crate::network::client::channel;
use crate::node::TxlogNode;
use crate::store::state_machine::ReadResult;
use crate::types::{Condition, EntryKind, LogPosition, Op, OpResult};

const FORWARDED: &str = "x-txlog-forwarded";
/// Bounds of one Tail message.
const TAIL_MAX_ENTRIES: usize = 1024;
const TAIL_MAX_BYTES: usize = 4 * 1024 * 1024;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The `Txlog` service of one node.
pub struct TxlogService {
    node: TxlogNode,
}

impl TxlogService {
    pub fn new(node: TxlogNode) -> Self {
        Self { node }
    }

    fn leader_addr(&self) -> Option<String> {
        let m = self.node.raft.metrics().borrow_watched().clone();
        let leader = m.current_leader?;
        m.membership_config
            .membership()
            .get_node(&leader)
            .map(|n| n.addr.clone())
    }

    fn is_leader(&self) -> bool {
        self.node.raft.metrics().borrow_watched().current_leader == Some(self.node.id)
    }

    /// A client to the leader, for forwarding `req` (once).
    fn forward_target<T>(
        &self,
        req: &Request<T>,
    ) -> Result<GrpcClient<tonic::transport::Channel>, Status> {
        if req.metadata().get(FORWARDED).is_some() {
            return Err(Status::unavailable("not the leader (already forwarded)"));
        }
        let addr = self
            .leader_addr()
            .filter(|a| *a != self.node.addr)
            .ok_or_else(|| Status::unavailable("no leader known"))?;
        let ch = channel(&addr).map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(GrpcClient::new(ch))
    }
}

fn forwarded<T>(msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert(FORWARDED, tonic::metadata::MetadataValue::from_static("1"));
    r.set_timeout(Duration::from_secs(30));
    r
}

/// A failed membership change as a status: the client does not retry
/// `INVALID_ARGUMENT` or `FAILED_PRECONDITION` (a retry would fail the same
/// way), only the rest (a new leader may succeed).
fn membership_error(e: TxlogError) -> Status {
    match e {
        TxlogError::Invalid(_) => Status::invalid_argument(e.to_string()),
        TxlogError::LearnerBehind { .. } => Status::failed_precondition(e.to_string()),
        _ => Status::unavailable(e.to_string()),
    }
}

fn condition_from(c: Option<pb::Condition>) -> Option<Condition> {
    match c?.kind? {
        pb::condition::Kind::Epoch(e) => Some(Condition::Epoch(e)),
        pb::condition::Kind::LastLsn(l) => Some(Condition::LastLsn(l)),
        pb::condition::Kind::EpochAfter(c) => Some(Condition::EpochAfter {
            epoch: c.epoch,
            last_lsn: c.last_lsn,
        }),
    }
}

fn append_op(req: pb::AppendRequest) -> Result<Op, pb::AppendResponse> {
    let invalid = |m: &str| pb::AppendResponse {
        status: pb::AppendStatus::Invalid as i32,
        message: m.to_string(),
        ..Default::default()
    };
    let Some(condition) = condition_from(req.condition) else {
        return Err(invalid("append needs a condition"));
    };
    let kind = match pb::EntryKind::try_from(req.kind) {
        Ok(pb::EntryKind::Data) => EntryKind::Data,
        Ok(pb::EntryKind::Heartbeat) => EntryKind::Heartbeat,
        _ => return Err(invalid("append kind must be DATA or HEARTBEAT")),
    };
    Ok(Op::Append {
        log: req.log,
        condition,
        kind,
        payloads: req.payloads,
    })
}

fn position_response(status: pb::AppendStatus, p: LogPosition) -> pb::AppendResponse {
    pb::AppendResponse {
        status: status as i32,
        epoch: p.epoch,
        log_last_lsn: p.last_lsn,
        holder: p.holder,
        ..Default::default()
    }
}

/// Maps an op's outcome to the wire response.
pub(crate) fn outcome_response(o: WriteOutcome) -> pb::AppendResponse {
    match o {
        WriteOutcome::Done(OpResult::Appended {
            first_lsn,
            last_lsn,
            position,
        }) => pb::AppendResponse {
            first_lsn,
            last_lsn,
            ..position_response(pb::AppendStatus::Ok, position)
        },
        WriteOutcome::Done(OpResult::Fenced(p)) => position_response(pb::AppendStatus::Fenced, p),
        WriteOutcome::Done(OpResult::Conflict(p)) => {
            position_response(pb::AppendStatus::Conflict, p)
        }
        WriteOutcome::Done(OpResult::Invalid(m)) => pb::AppendResponse {
            status: pb::AppendStatus::Invalid as i32,
            message: m,
            ..Default::default()
        },
        WriteOutcome::Done(OpResult::Trimmed { .. }) => pb::AppendResponse {
            status: pb::AppendStatus::Invalid as i32,
            message: "unexpected trim result".into(),
            ..Default::default()
        },
        WriteOutcome::NotLeader { leader_addr, .. } => pb::AppendResponse {
            status: pb::AppendStatus::NotLeader as i32,
            leader_addr: leader_addr.unwrap_or_default(),
            ..Default::default()
        },
        WriteOutcome::Unknown(m) => pb::AppendResponse {
            status: pb::AppendStatus::Unknown as i32,
            message: m,
            ..Default::default()
        },
    }
}

#[tonic::async_trait]
impl Txlog for TxlogService {
    async fn append(
        &self,
        request: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let op = match append_op(request.into_inner()) {
            Ok(op) => op,
            Err(resp) => return Ok(Response::new(resp)),
        };
        let mut resp = outcome_response(self.node.batcher.submit(op).await);
        if resp.status == pb::AppendStatus::NotLeader as i32 && resp.leader_addr.is_empty() {
            resp.leader_addr = self.leader_addr().unwrap_or_default();
        }
        Ok(Response::new(resp))
    }

    type AppendStreamStream = BoxStream<pb::AppendResponse>;

    async fn append_stream(
        &self,
        request: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        let mut input = request.into_inner();
        let batcher = self.node.batcher.clone();
        let (pending_tx, mut pending_rx) = mpsc::channel(4096);
        let (out_tx, out_rx) = mpsc::channel(4096);
        // Reader: queue requests in stream order.
        tokio::spawn(async move {
            while let Ok(Some(req)) = input.message().await {
                let item = match append_op(req) {
                    Ok(op) => Ok(batcher.enqueue(op).await),
                    Err(resp) => Err(resp),
                };
                if pending_tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        // Writer: answer in the same order.
        tokio::spawn(async move {
            while let Some(item) = pending_rx.recv().await {
                let resp = match item {
                    Ok(rx) => outcome_response(
                        rx.await
                            .unwrap_or(WriteOutcome::Unknown("batcher stopped".into())),
                    ),
                    Err(resp) => resp,
                };
                if out_tx.send(Ok(resp)).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn take_leadership(
        &self,
        request: Request<pb::TakeLeadershipRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        let req = request.into_inner();
        let op = Op::TakeLeadership {
            log: req.log,
            candidate: req.candidate,
            expected_last_lsn: req.expected_last_lsn,
        };
        let mut resp = outcome_response(self.node.batcher.submit(op).await);
        if resp.status == pb::AppendStatus::NotLeader as i32 && resp.leader_addr.is_empty() {
            resp.leader_addr = self.leader_addr().unwrap_or_default();
        }
        Ok(Response::new(resp))
    }

    type TailStream = BoxStream<pb::TailResponse>;

    async fn tail(
        &self,
        request: Request<pb::TailRequest>,
    ) -> Result<Response<Self::TailStream>, Status> {
        let req = request.into_inner();
        let view = self.node.view.clone();
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut next = req.from_lsn.max(1);
            let mut applied = view.subscribe();
            loop {
                applied.borrow_and_update();
                match view
                    .read(&req.log, next, TAIL_MAX_ENTRIES, TAIL_MAX_BYTES)
                    .await
                {
                    Ok(ReadResult::Truncated { first_retained }) => {
                        let _ = tx
                            .send(Ok(pb::TailResponse {
                                status: pb::TailStatus::Truncated as i32,
                                first_retained_lsn: first_retained,
                                entries: Vec::new(),
                            }))
                            .await;
                        return;
                    }
                    Ok(ReadResult::Entries(entries)) if !entries.is_empty() => {
                        next = entries.last().map(|(l, _)| l + 1).unwrap_or(next);
                        let entries = entries
                            .into_iter()
                            .map(|(lsn, r)| pb::Entry {
                                lsn,
                                epoch: r.epoch,
                                kind: r.kind.to_proto(),
                                payload: r.payload,
                                checksum: r.checksum,
                            })
                            .collect();
                        let msg = pb::TailResponse {
                            status: pb::TailStatus::Entries as i32,
                            first_retained_lsn: 0,
                            entries,
                        };
                        if tx.send(Ok(msg)).await.is_err() {
                            return;
                        }
                    }
                    Ok(ReadResult::Entries(_)) => {
                        tokio::select! {
                            r = applied.changed() => if r.is_err() { return },
                            _ = tx.closed() => return,
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(Status::internal(e.to_string()))).await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn trim(
        &self,
        request: Request<pb::TrimRequest>,
    ) -> Result<Response<pb::TrimResponse>, Status> {
        if !self.is_leader() {
            let mut c = self.forward_target(&request)?;
            return c.trim(forwarded(request.into_inner())).await;
        }
        let req = request.into_inner();
        let op = Op::Trim {
            log: req.log,
            up_to_lsn: req.up_to_lsn,
        };
        match self.node.batcher.submit(op).await {
            WriteOutcome::Done(OpResult::Trimmed {
                first_lsn,
                last_lsn,
            }) => Ok(Response::new(pb::TrimResponse {
                first_lsn,
                last_lsn,
            })),
            WriteOutcome::Done(OpResult::Invalid(m)) => Err(Status::not_found(m)),
            WriteOutcome::NotLeader { .. } => Err(Status::unavailable("leader changed")),
            other => Err(Status::internal(format!("{other:?}"))),
        }
    }

    async fn status(
        &self,
        request: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        if let Err(e) = self
            .node
            .raft
            .ensure_linearizable(openraft::ReadPolicy::ReadIndex)
            .await
        {
            if e.forward_to_leader().is_some() {
                let mut c = self.forward_target(&request)?;
                return c.status(forwarded(request.into_inner())).await;
            }
            return Err(Status::unavailable(e.to_string()));
        }
        let m = self.node.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        let members = membership
            .nodes()
            .map(|(id, n)| pb::Member {
                id: *id,
                addr: n.addr.clone(),
                voter: voters.contains(id),
            })
            .collect();
        let leader_addr = m
            .current_leader
            .and_then(|l| membership.get_node(&l).map(|n| n.addr.clone()))
            .unwrap_or_default();
        let logs = self
            .node
            .view
            .all_meta()
            .into_iter()
            .map(|(name, meta)| pb::LogStatus {
                name,
                first_lsn: meta.first_lsn,
                last_lsn: meta.last_lsn,
                epoch: meta.epoch,
                holder: meta.holder,
                checksum: meta.checksum,
            })
            .collect();
        Ok(Response::new(pb::StatusResponse {
            node_id: self.node.id,
            leader_id: m.current_leader.unwrap_or(0),
            leader_addr,
            term: m.current_term,
            members,
            logs,
            last_applied_index: self.node.view.last_applied().map(|l| l.index).unwrap_or(0),
        }))
    }

    async fn add_node(
        &self,
        request: Request<pb::AddNodeRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        if !self.is_leader() {
            let mut c = self.forward_target(&request)?;
            return c.add_node(forwarded(request.into_inner())).await;
        }
        let req = request.into_inner();
        self.node
            .add_node(req.id, req.addr, req.learner_only)
            .await
            .map_err(membership_error)?;
        Ok(Response::new(self.members()))
    }

    async fn remove_node(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        if !self.is_leader() {
            let mut c = self.forward_target(&request)?;
            return c.remove_node(forwarded(request.into_inner())).await;
        }
        self.node
            .remove_node(request.into_inner().id)
            .await
            .map_err(membership_error)?;
        Ok(Response::new(self.members()))
    }
}

impl TxlogService {
    fn members(&self) -> pb::MembershipResponse {
        let m = self.node.raft.metrics().borrow_watched().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<u64> = membership.voter_ids().collect();
        pb::MembershipResponse {
            members: membership
                .nodes()
                .map(|(id, n)| pb::Member {
                    id: *id,
                    addr: n.addr.clone(),
                    voter: voters.contains(id),
                })
                .collect(),
        }
    }
}
