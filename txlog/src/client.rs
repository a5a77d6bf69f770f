//! [`TxlogClient`]: the client library for the transaction log service.
//!
//! It takes the addresses of the group's nodes, finds the Raft leader,
//! follows `NOT_LEADER` redirects and retries while a leader is being elected.
//! It retries an append only when the append certainly did not take effect
//! (refused connection, `NOT_LEADER`); when an append was sent and its outcome
//! is unknown it returns [`TxlogError::OutcomeUnknown`] instead of risking a
//! duplicate: the caller resolves it by reading the log.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use memlog_proto::txlog as pb;
use memlog_proto::txlog::txlog_client::TxlogClient as GrpcClient;
use parking_lot::Mutex;
use tokio::time::Instant;
use tonic::transport::Channel;

use crate::error::{Result, TxlogError};
use crate::network::client::channel;
use crate::network::MAX_MESSAGE_BYTES;
use crate::types::Condition;

/// A successful append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub first_lsn: u64,
    pub last_lsn: u64,
    /// The log's epoch the entries were written under.
    pub epoch: u64,
}

/// Client of a txlog group (cheap to clone; clones share connections).
#[derive(Clone)]
pub struct TxlogClient {
    inner: Arc<Inner>,
}

struct Inner {
    addrs: Vec<String>,
    conns: Mutex<HashMap<String, GrpcClient<Channel>>>,
    leader: Mutex<Option<String>>,
    retry_for: Duration,
    request_timeout: Duration,
}

/// Whether a gRPC error certainly means the request was never delivered.
fn never_delivered(s: &tonic::Status) -> bool {
    s.code() == tonic::Code::Unavailable && {
        let m = s.message().to_ascii_lowercase();
        m.contains("connect") || m.contains("refused")
    }
}

pub(crate) fn to_condition(c: Condition) -> pb::Condition {
    pb::Condition {
        kind: Some(match c {
            Condition::Epoch(e) => pb::condition::Kind::Epoch(e),
            Condition::LastLsn(l) => pb::condition::Kind::LastLsn(l),
            Condition::EpochAfter { epoch, last_lsn } => {
                pb::condition::Kind::EpochAfter(pb::EpochAfter { epoch, last_lsn })
            }
        }),
    }
}

impl TxlogClient {
    /// A client for the nodes at `addrs` (`host:port`); connects lazily.
    pub fn new<S: Into<String>>(addrs: impl IntoIterator<Item = S>) -> Result<Self> {
        let addrs: Vec<String> = addrs.into_iter().map(Into::into).collect();
        if addrs.is_empty() {
            return Err(TxlogError::Invalid("no txlog addresses".into()));
        }
        Ok(Self {
            inner: Arc::new(Inner {
                addrs,
                conns: Mutex::new(HashMap::new()),
                leader: Mutex::new(None),
                retry_for: Duration::from_secs(15),
                request_timeout: Duration::from_secs(30),
            }),
        })
    }

    /// Like [`TxlogClient::new`] with a comma-separated address list.
    pub fn from_list(list: &str) -> Result<Self> {
        Self::new(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }

    /// How long to keep retrying while no leader answers (default 15 s).
    pub fn with_retry_window(self, d: Duration) -> Self {
        self.with_timeouts(d, self.inner.request_timeout)
    }

    /// How long one request may take before its outcome is declared
    /// unknown (default 30 s; an append waits that long for a majority).
    pub fn with_request_timeout(self, d: Duration) -> Self {
        self.with_timeouts(self.inner.retry_for, d)
    }

    fn with_timeouts(&self, retry_for: Duration, request_timeout: Duration) -> Self {
        let inner = Inner {
            addrs: self.inner.addrs.clone(),
            conns: Mutex::new(HashMap::new()),
            leader: Mutex::new(None),
            retry_for,
            request_timeout,
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// A connection to `addr`.
    pub fn connection(&self, addr: &str) -> Result<GrpcClient<Channel>> {
        let mut conns = self.inner.conns.lock();
        if let Some(c) = conns.get(addr) {
            return Ok(c.clone());
        }
        let c = GrpcClient::new(channel(addr)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        conns.insert(addr.to_string(), c.clone());
        Ok(c)
    }

    /// Nodes to try, the presumed leader first.
    fn order(&self) -> Vec<String> {
        let mut v = Vec::with_capacity(self.inner.addrs.len() + 1);
        if let Some(l) = self.inner.leader.lock().clone() {
            v.push(l);
        }
        for a in &self.inner.addrs {
            if !v.contains(a) {
                v.push(a.clone());
            }
        }
        v
    }

    /// Runs a write RPC at the leader, following redirects.
    async fn write<F, Fut>(&self, call: F) -> Result<pb::AppendResponse>
    where
        F: Fn(GrpcClient<Channel>) -> Fut,
        Fut: std::future::Future<
            Output = std::result::Result<tonic::Response<pb::AppendResponse>, tonic::Status>,
        >,
    {
        let deadline = Instant::now() + self.inner.retry_for;
        let mut last_err = String::from("no attempt");
        loop {
            let mut redirected = false;
            // Nodes that said they are not the leader in this round: a
            // redirect back to one of them (a follower still naming a leader
            // whose lease ran out) is no news, and following it at once
            // spun without a pause until the deadline.
            let mut refused: Vec<String> = Vec::new();
            for addr in self.order() {
                let conn = self.connection(&addr)?;
                let Ok(result) = tokio::time::timeout(self.inner.request_timeout, call(conn)).await
                else {
                    return Err(TxlogError::OutcomeUnknown(format!(
                        "{addr} did not answer within {:?}",
                        self.inner.request_timeout
                    )));
                };
                match result {
                    Ok(resp) => {
                        let resp = resp.into_inner();
                        if resp.status == pb::AppendStatus::NotLeader as i32 {
                            last_err = format!("{addr} is not the leader");
                            let mut leader = self.inner.leader.lock();
                            if !resp.leader_addr.is_empty()
                                && resp.leader_addr != addr
                                && !refused.contains(&resp.leader_addr)
                            {
                                *leader = Some(resp.leader_addr);
                                redirected = true;
                                break;
                            }
                            *leader = None;
                            refused.push(addr);
                            continue;
                        }
                        *self.inner.leader.lock() = Some(addr);
                        return Ok(resp);
                    }
                    Err(s) if never_delivered(&s) => {
                        last_err = format!("{addr}: {}", s.message());
                        let mut leader = self.inner.leader.lock();
                        if leader.as_deref() == Some(addr.as_str()) {
                            *leader = None;
                        }
                    }
                    Err(s) => return Err(TxlogError::OutcomeUnknown(format!("{addr}: {s}"))),
                }
            }
            if Instant::now() >= deadline {
                return Err(TxlogError::Unavailable(last_err));
            }
            if !redirected {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    fn check(resp: pb::AppendResponse) -> Result<Appended> {
        match pb::AppendStatus::try_from(resp.status) {
            Ok(pb::AppendStatus::Ok) => Ok(Appended {
                first_lsn: resp.first_lsn,
                last_lsn: resp.last_lsn,
                epoch: resp.epoch,
            }),
            Ok(pb::AppendStatus::Fenced) => Err(TxlogError::Fenced {
                epoch: resp.epoch,
                last_lsn: resp.log_last_lsn,
                holder: resp.holder,
            }),
            Ok(pb::AppendStatus::Conflict) => Err(TxlogError::Conflict {
                epoch: resp.epoch,
                last_lsn: resp.log_last_lsn,
                holder: resp.holder,
            }),
            Ok(pb::AppendStatus::Unknown) => Err(TxlogError::OutcomeUnknown(resp.message)),
            Ok(pb::AppendStatus::Invalid) => Err(TxlogError::Invalid(resp.message)),
            Ok(pb::AppendStatus::NotLeader) | Err(_) => Err(TxlogError::Unavailable(format!(
                "unexpected append status {}",
                resp.status
            ))),
        }
    }

    /// Appends `payloads` (DATA entries) to `log` if `condition` holds;
    /// returns once they are committed on a majority.
    pub async fn append(
        &self,
        log: &str,
        condition: Condition,
        payloads: Vec<Bytes>,
    ) -> Result<Appended> {
        self.append_kind(log, condition, payloads, pb::EntryKind::Data)
            .await
    }

    /// Renews the lease of the holder of `epoch` with a HEARTBEAT entry.
    pub async fn heartbeat(&self, log: &str, epoch: u64, payload: Bytes) -> Result<Appended> {
        self.append_kind(
            log,
            Condition::Epoch(epoch),
            vec![payload],
            pb::EntryKind::Heartbeat,
        )
        .await
    }

    async fn append_kind(
        &self,
        log: &str,
        condition: Condition,
        payloads: Vec<Bytes>,
        kind: pb::EntryKind,
    ) -> Result<Appended> {
        let req = pb::AppendRequest {
            log: log.to_string(),
            condition: Some(to_condition(condition)),
            payloads,
            kind: kind as i32,
        };
        let resp = self
            .write(|mut c| {
                let req = req.clone();
                async move { c.append(req).await }
            })
            .await?;
        Self::check(resp)
    }

    /// Takes leadership of `log` for `candidate` if the log's last LSN is
    /// still `expected_last_lsn`. Returns the new epoch and the LSN of the
    /// leadership entry.
    pub async fn take_leadership(
        &self,
        log: &str,
        candidate: &str,
        expected_last_lsn: u64,
    ) -> Result<(u64, u64)> {
        let req = pb::TakeLeadershipRequest {
            log: log.to_string(),
            candidate: candidate.to_string(),
            expected_last_lsn,
        };
        let resp = self
            .write(|mut c| {
                let req = req.clone();
                async move { c.take_leadership(req).await }
            })
            .await?;
        let a = Self::check(resp)?;
        Ok((a.epoch, a.last_lsn))
    }

    /// Runs an idempotent request against any node (the node forwards to the
    /// leader when needed), retrying on any failure until the retry window
    /// ends.
    async fn idempotent<T, F, Fut>(&self, call: F) -> Result<T>
    where
        F: Fn(GrpcClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = Instant::now() + self.inner.retry_for;
        loop {
            let mut last = None;
            for addr in self.order() {
                let timeout = self.inner.request_timeout;
                match tokio::time::timeout(timeout, call(self.connection(&addr)?)).await {
                    Ok(Ok(r)) => return Ok(r.into_inner()),
                    // Answers that another node or attempt would repeat.
                    Ok(Err(s))
                        if matches!(
                            s.code(),
                            tonic::Code::NotFound
                                | tonic::Code::InvalidArgument
                                | tonic::Code::FailedPrecondition
                        ) =>
                    {
                        return Err(s.into())
                    }
                    Ok(Err(s)) => last = Some(s),
                    Err(_) => {
                        last = Some(tonic::Status::deadline_exceeded(format!(
                            "{addr} timed out"
                        )))
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(last
                    .map(TxlogError::Grpc)
                    .unwrap_or_else(|| TxlogError::Unavailable("no nodes".into())));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Drops entries of `log` up to `up_to_lsn`; returns the first retained LSN.
    pub async fn trim(&self, log: &str, up_to_lsn: u64) -> Result<u64> {
        let req = pb::TrimRequest {
            log: log.to_string(),
            up_to_lsn,
        };
        let r = self
            .idempotent(|mut c| {
                let req = req.clone();
                async move { c.trim(req).await }
            })
            .await?;
        Ok(r.first_lsn)
    }

    /// Linearizable status of the group and its logs.
    pub async fn status(&self) -> Result<pb::StatusResponse> {
        self.idempotent(|mut c| async move { c.status(pb::StatusRequest {}).await })
            .await
    }

    /// Adds node `id` at `addr` to the group.
    pub async fn add_node(
        &self,
        id: u64,
        addr: &str,
        learner_only: bool,
    ) -> Result<pb::MembershipResponse> {
        let req = pb::AddNodeRequest {
            id,
            addr: addr.to_string(),
            learner_only,
        };
        self.idempotent(|mut c| {
            let req = req.clone();
            async move { c.add_node(req).await }
        })
        .await
    }

    /// Removes node `id` from the group.
    pub async fn remove_node(&self, id: u64) -> Result<pb::MembershipResponse> {
        self.idempotent(|mut c| async move { c.remove_node(pb::RemoveNodeRequest { id }).await })
            .await
    }

    /// Tails `log` from `from_lsn` on the node at `addr` (any member).
    pub async fn tail_at(
        &self,
        addr: &str,
        log: &str,
        from_lsn: u64,
    ) -> Result<tonic::Streaming<pb::TailResponse>> {
        let mut c = self.connection(addr)?;
        let s = c
            .tail(pb::TailRequest {
                log: log.to_string(),
                from_lsn,
            })
            .await?;
        Ok(s.into_inner())
    }

    /// Follows `log` from `from_lsn` for as long as the stream is polled,
    /// reading from any node and resuming on another one (at the next LSN)
    /// when a node fails. Yields `TxlogError::Truncated` and ends if the
    /// next LSN was trimmed.
    pub fn follow(
        &self,
        log: &str,
        from_lsn: u64,
    ) -> impl futures::Stream<Item = Result<pb::Entry>> + Send + 'static {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let (client, log) = (self.clone(), log.to_string());
        tokio::spawn(async move {
            let mut next = from_lsn.max(1);
            let mut attempt = 0usize;
            loop {
                let addrs = client.inner.addrs.clone();
                let addr = &addrs[attempt % addrs.len()];
                attempt += 1;
                if let Ok(mut stream) = client.tail_at(addr, &log, next).await {
                    while let Ok(Some(msg)) = stream.message().await {
                        if msg.status == pb::TailStatus::Truncated as i32 {
                            let _ = tx
                                .send(Err(TxlogError::Truncated {
                                    requested: next,
                                    first_retained: msg.first_retained_lsn,
                                }))
                                .await;
                            return;
                        }
                        for e in msg.entries {
                            if e.lsn != next {
                                continue;
                            }
                            next += 1;
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    /// The configured node addresses.
    pub fn addrs(&self) -> &[String] {
        &self.inner.addrs
    }
}
