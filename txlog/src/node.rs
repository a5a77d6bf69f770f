//! One txlog node: storage + openraft + append batcher, optionally served
//! over gRPC. Also the embeddable single-node log for the engine's embedded
//! mode ([`TxlogNode::start_embedded`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use memlog_proto::txlog::raft_internal_server::RaftInternalServer;
use memlog_proto::txlog::txlog_server::TxlogServer;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::{BasicNode, ChangeMembers, Config, SnapshotPolicy};

use crate::batcher::{AppendBatcher, WriteOutcome};
use crate::error::{Result, TxlogError};
use crate::network::client::NetworkFactory;
use crate::network::server::RaftRpcService;
use crate::network::MAX_MESSAGE_BYTES;
use crate::service::TxlogService;
use crate::store::{self, LogsView};
use crate::types::{Condition, EntryKind, NodeId, Op, OpResult, Raft, TypeConfig};

/// How long [`TxlogNode::add_node`] waits for a new learner to catch up
/// (below the 30 s a forwarded request and the client allow).
const LEARNER_CATCH_UP: Duration = Duration::from_secs(20);

/// Reset HTTP/2 streams a connection may have waiting (see `serve`): ten
/// minutes of heartbeats at 20 per second.
const MAX_RESET_STREAMS: usize = 12_000;

/// How often the server pings a connection's peer, and how long it waits
/// for the answer before closing the connection (as the clients do).
const KEEPALIVE: Duration = Duration::from_secs(5);

/// How to run one node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub id: NodeId,
    /// Address peers and clients reach this node at (`host:port`).
    pub addr: String,
    pub data_dir: PathBuf,
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Build a snapshot (and purge the Raft log) after this many entries.
    pub snapshot_every: u64,
    /// ... or after this many payload bytes, whichever comes first.
    pub snapshot_every_bytes: u64,
    /// Entries kept behind a snapshot for followers that lag (openraft's
    /// `max_in_snapshot_log_to_keep`).
    pub keep_after_snapshot: u64,
    /// ... but no more of them than hold this many bytes (see
    /// [`purge_by_size`]).
    pub keep_after_snapshot_bytes: u64,
    /// Size of the Raft log's segment files (see [`crate::store::journal`]).
    pub log_segment_bytes: u64,
    /// Bytes of purged segments kept for new ones to reuse (see
    /// [`crate::store::journal::SPARE_BYTES`]).
    pub log_spare_bytes: u64,
}

/// Default of [`NodeConfig::snapshot_every_bytes`].
pub const SNAPSHOT_EVERY_BYTES: u64 = 64 * 1024 * 1024;
/// Default of [`NodeConfig::keep_after_snapshot_bytes`].
pub const KEEP_AFTER_SNAPSHOT_BYTES: u64 = 64 * 1024 * 1024;
/// How often a node checks whether a snapshot is due by size.
const SNAPSHOT_BYTES_CHECK: std::time::Duration = std::time::Duration::from_millis(250);

impl NodeConfig {
    pub fn new(id: NodeId, addr: impl Into<String>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            id,
            addr: addr.into(),
            data_dir: data_dir.into(),
            heartbeat_ms: 100,
            election_min_ms: 500,
            election_max_ms: 1000,
            snapshot_every: 20_000,
            snapshot_every_bytes: SNAPSHOT_EVERY_BYTES,
            keep_after_snapshot: 1000,
            keep_after_snapshot_bytes: KEEP_AFTER_SNAPSHOT_BYTES,
            log_segment_bytes: crate::store::journal::SEGMENT_BYTES,
            log_spare_bytes: crate::store::journal::SPARE_BYTES,
        }
    }

    fn raft_config(&self) -> Result<Arc<Config>> {
        let c = Config {
            cluster_name: "memlog-txlog".into(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            // Per chunk of a snapshot; chunks are a few MB.
            install_snapshot_timeout: 10_000,
            snapshot_max_chunk_size: 4 * 1024 * 1024,
            max_payload_entries: 256,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.snapshot_every.min(self.keep_after_snapshot),
            broadcast_submitted_on_append: Some(true),
            ..Default::default()
        };
        Ok(Arc::new(
            c.validate()
                .map_err(|e| TxlogError::Invalid(e.to_string()))?,
        ))
    }
}

/// Triggers a snapshot once `limit` payload bytes were applied since the
/// last one, or a 64th of that and a trim: openraft's own policy counts
/// entries, and a group commit can carry megabytes, so without this a busy
/// log would keep gigabytes in memory and on disk before its first purge
/// (and a trimmed one would keep what the trim released). Ends with the
/// Raft.
async fn snapshot_by_size(
    raft: Raft,
    applied: std::sync::Arc<std::sync::atomic::AtomicU64>,
    trimmed: std::sync::Arc<std::sync::atomic::AtomicBool>,
    limit: u64,
) {
    let mut tick = tokio::time::interval(SNAPSHOT_BYTES_CHECK);
    loop {
        tick.tick().await;
        // A stopped Raft (storage failure, shutdown) is let go at once: its
        // storage must close before the embedded log can reopen it.
        if raft.metrics().borrow_watched().running_state.is_err() {
            return;
        }
        let bytes = applied.load(std::sync::atomic::Ordering::Relaxed);
        let after_trim = trimmed.load(std::sync::atomic::Ordering::Relaxed) && bytes >= limit / 64;
        if bytes < limit && !after_trim {
            continue;
        }
        if raft.trigger().snapshot().await.is_err() {
            return;
        }
    }
}

/// Bounds what a node keeps behind each snapshot by bytes as well as by
/// entries: openraft keeps `max_in_snapshot_log_to_keep` entries for
/// followers that lag, and with group commits of up to a few MiB each that
/// count alone could keep gigabytes on disk after the logs were trimmed.
/// After every new snapshot this purges further, down to the entries that
/// hold `budget` bytes (a follower lagging further gets the snapshot, as
/// it would past the count). Ends with the Raft.
async fn purge_by_size(raft: Raft, log: store::LogStore, budget: u64, keep: u64) {
    let mut metrics = raft.metrics();
    let mut done = None;
    loop {
        if metrics.changed().await.is_err() {
            return;
        }
        let snapshot = {
            let m = metrics.borrow_watched();
            if m.running_state.is_err() {
                return;
            }
            m.snapshot.map(|s| s.index)
        };
        let Some(snapshot) = snapshot else { continue };
        if done == Some(snapshot) {
            continue;
        }
        done = Some(snapshot);
        let reader = log.clone();
        let from =
            tokio::task::spawn_blocking(move || reader.keep_bytes_from(snapshot, budget, keep))
                .await;
        match from {
            // Beyond what openraft purges by count anyway.
            Ok(Ok(Some(upto))) if upto > snapshot.saturating_sub(keep) => {
                tracing::debug!(snapshot, upto, "purging the raft log by size");
                if raft.trigger().purge_log(upto).await.is_err() {
                    return;
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!("sizing the raft log behind a snapshot: {e}"),
            Err(e) => tracing::warn!("sizing the raft log behind a snapshot: {e}"),
        }
    }
}

/// Why a node's Raft stopped by itself (see [`TxlogNode::failure`]).
#[derive(Debug, Clone)]
pub struct NodeFailure {
    /// openraft's whole error.
    pub message: String,
    /// Its innermost source, e.g. `No space left on device (os error 28)`.
    pub cause: String,
}

impl std::fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A running txlog node.
#[derive(Clone)]
pub struct TxlogNode {
    pub id: NodeId,
    pub addr: String,
    pub raft: Raft,
    pub view: LogsView,
    pub batcher: AppendBatcher,
}

impl TxlogNode {
    /// Opens the node's storage and starts Raft (not yet serving gRPC).
    pub async fn start(cfg: &NodeConfig) -> Result<Self> {
        let (log, sm) =
            store::open(&cfg.data_dir, cfg.log_segment_bytes, cfg.log_spare_bytes).await?;
        let view = sm.view();
        let (applied_bytes, trimmed) = sm.applied_bytes();
        let raft = Raft::new(cfg.id, cfg.raft_config()?, NetworkFactory, log.clone(), sm)
            .await
            .map_err(|e| TxlogError::Raft(e.to_string()))?;
        tokio::spawn(purge_by_size(
            raft.clone(),
            log,
            cfg.keep_after_snapshot_bytes,
            cfg.keep_after_snapshot,
        ));
        tokio::spawn(snapshot_by_size(
            raft.clone(),
            applied_bytes,
            trimmed,
            cfg.snapshot_every_bytes,
        ));
        let batcher = AppendBatcher::start(raft.clone());
        Ok(Self {
            id: cfg.id,
            addr: cfg.addr.clone(),
            raft,
            view,
            batcher,
        })
    }

    /// Forms the group with `members` unless this node already has state
    /// (a restarted node just rejoins). Every founding node may call it with
    /// the same members.
    pub async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<()> {
        if self
            .raft
            .is_initialized()
            .await
            .map_err(|e| TxlogError::Raft(e.to_string()))?
        {
            return Ok(());
        }
        let members: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        match self.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(openraft::error::RaftError::APIError(
                openraft::error::InitializeError::NotAllowed(_),
            )) => Ok(()),
            Err(e) => Err(TxlogError::Raft(e.to_string())),
        }
    }

    /// A single-node log on `data_dir`, in this process, no network: the
    /// engine's embedded mode. Same storage and Raft code as a cluster node.
    pub async fn start_embedded(data_dir: impl Into<PathBuf>) -> Result<Self> {
        let mut cfg = NodeConfig::new(1, "embedded", data_dir);
        // No follower can lag: keep almost nothing behind a snapshot, so a
        // trim (after the server's SAVE) frees the log's memory and disk.
        cfg.keep_after_snapshot = 16;
        cfg.heartbeat_ms = 50;
        cfg.election_min_ms = 150;
        cfg.election_max_ms = 300;
        let node = Self::start(&cfg).await?;
        let ready = async {
            node.initialize(BTreeMap::from([(1, "embedded".to_string())]))
                .await?;
            node.wait_for_leader(Duration::from_secs(10)).await
        };
        if let Err(e) = ready.await {
            // Its Raft would go on holding the database (a retry could
            // never open it) and electing itself.
            node.shutdown().await;
            return Err(e);
        }
        Ok(node)
    }

    /// Waits until the group has a leader.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId> {
        let m = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "leader elected")
            .await
            .map_err(|e| TxlogError::Raft(e.to_string()))?;
        m.current_leader
            .ok_or_else(|| TxlogError::Raft("no leader".into()))
    }

    /// Serves the public and Raft gRPC services on `bind` until `shutdown`
    /// resolves.
    pub async fn serve(
        &self,
        bind: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<()> {
        let public = TxlogServer::new(TxlogService::new(self.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        let internal =
            RaftInternalServer::new(RaftRpcService::new(self.raft.clone(), self.view.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES);
        // Bound here rather than by tonic, whose error for a port in use
        // was only "transport error".
        let incoming = tonic::transport::server::TcpIncoming::bind(bind)
            .map_err(|e| std::io::Error::new(e.kind(), format!("binding {bind}: {e}")))?
            .with_nodelay(Some(true));
        tonic::transport::Server::builder()
            // openraft drops a heartbeat RPC that outlives its interval,
            // which resets its HTTP/2 stream; h2's default of 20 such
            // streams per connection closed the leader's connection (and
            // with it the replication stream) after a 1 s pause of a node.
            .http2_max_pending_accept_reset_streams(Some(MAX_RESET_STREAMS))
            // A peer that vanished without closing its connection (a silent
            // partition) is found out: a snapshot being received from it,
            // or a tail streaming to it, would otherwise wait for good.
            .http2_keepalive_interval(Some(KEEPALIVE))
            .http2_keepalive_timeout(Some(KEEPALIVE))
            .add_service(public)
            .add_service(internal)
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await?;
        Ok(())
    }

    /// Appends `payloads` to `log` under `condition` through this node
    /// (which must be the leader).
    pub async fn append(
        &self,
        log: &str,
        condition: Condition,
        payloads: Vec<Bytes>,
    ) -> Result<(u64, u64)> {
        let op = Op::Append {
            log: log.to_string(),
            condition,
            kind: EntryKind::Data,
            payloads,
        };
        match outcome_to_result(self.batcher.submit(op).await)? {
            OpResult::Appended {
                first_lsn,
                last_lsn,
                ..
            } => Ok((first_lsn, last_lsn)),
            other => Err(op_failure(other)),
        }
    }

    /// Takes leadership of `log` for `candidate` if its last LSN is
    /// `expected_last_lsn`; returns (new epoch, LSN of the leadership entry).
    pub async fn take_leadership(
        &self,
        log: &str,
        candidate: &str,
        expected_last_lsn: u64,
    ) -> Result<(u64, u64)> {
        let op = Op::TakeLeadership {
            log: log.to_string(),
            candidate: candidate.to_string(),
            expected_last_lsn,
        };
        match outcome_to_result(self.batcher.submit(op).await)? {
            OpResult::Appended {
                last_lsn, position, ..
            } => Ok((position.epoch, last_lsn)),
            other => Err(op_failure(other)),
        }
    }

    /// Drops entries of `log` up to `up_to_lsn`; returns the first retained LSN.
    pub async fn trim(&self, log: &str, up_to_lsn: u64) -> Result<u64> {
        let op = Op::Trim {
            log: log.to_string(),
            up_to_lsn,
        };
        match outcome_to_result(self.batcher.submit(op).await)? {
            OpResult::Trimmed { first_lsn, .. } => Ok(first_lsn),
            other => Err(op_failure(other)),
        }
    }

    /// Adds a node as a learner, waits (bounded) until it has caught up to
    /// its own addition, then makes it a voter unless `learner_only`.
    /// Re-running it for the same id and address is harmless (it promotes a
    /// learner added earlier).
    pub async fn add_node(&self, id: NodeId, addr: String, learner_only: bool) -> Result<()> {
        let known = self
            .raft
            .metrics()
            .borrow_watched()
            .membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone());
        // openraft keeps a known node's address: refuse instead of ignoring it.
        if let Some(known) = known.filter(|k| *k != addr) {
            return Err(TxlogError::Invalid(format!(
                "node {id} is already a member at {known}; remove it first"
            )));
        }
        // Not openraft's blocking add_learner: it waits forever for a node
        // that is down or unreachable.
        let added = self
            .raft
            .add_learner(id, BasicNode::new(addr.clone()), false)
            .await
            .map_err(raft_err)?
            .log_id;
        self.raft
            .wait(Some(LEARNER_CATCH_UP))
            .metrics(
                |m| match &m.replication {
                    Some(r) => r
                        .get(&id)
                        .and_then(|matched| matched.as_ref())
                        .is_some_and(|l| l.index >= added.index),
                    // No longer the leader: the promotion below says so.
                    None => true,
                },
                "new learner caught up",
            )
            .await
            .map_err(|_| TxlogError::LearnerBehind {
                id,
                addr: addr.clone(),
                waited: LEARNER_CATCH_UP,
            })?;
        if !learner_only {
            self.raft
                .change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([id])), false)
                .await
                .map_err(raft_err)?;
        }
        Ok(())
    }

    /// Removes a node (voter or learner) from the group; removing a node
    /// that is not a member is a no-op, so a retried request succeeds.
    pub async fn remove_node(&self, id: NodeId) -> Result<()> {
        let (voter, known) = {
            let m = self.raft.metrics().borrow_watched().clone();
            let membership = m.membership_config.membership();
            let voter = membership.voter_ids().any(|v| v == id);
            (voter, membership.get_node(&id).is_some())
        };
        // One change only: without `retain`, removing a voter also drops it
        // from the nodes, and a second change proposed by a leader that just
        // removed itself panics openraft's core.
        let change = if voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else if known {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        } else {
            return Ok(());
        };
        self.raft
            .change_membership(change, false)
            .await
            .map_err(raft_err)?;
        Ok(())
    }

    /// Resolves once Raft has stopped by itself, with the reason: a storage
    /// failure (a full disk, an I/O error), after which openraft never
    /// resumes. Never resolves while Raft runs or after [`Self::shutdown`].
    pub async fn failure(&self) -> NodeFailure {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_watched().running_state {
                if !matches!(fatal, openraft::error::Fatal::Stopped) {
                    // The innermost error says what the disk said.
                    let mut cause: &dyn std::error::Error = fatal;
                    while let Some(inner) = cause.source() {
                        cause = inner;
                    }
                    return NodeFailure {
                        message: fatal.to_string(),
                        cause: cause.to_string(),
                    };
                }
            }
            if metrics.changed().await.is_err() {
                // Raft's core is gone; its last word was read above.
                return std::future::pending().await;
            }
        }
    }

    /// Stops Raft.
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

fn raft_err<E>(e: openraft::error::RaftError<TypeConfig, E>) -> TxlogError
where
    E: std::error::Error + openraft::TryAsRef<openraft::error::ForwardToLeader<TypeConfig>>,
{
    match e.forward_to_leader() {
        Some(f) => TxlogError::NotLeader {
            leader_id: f.leader_id,
            leader_addr: f.leader_node.as_ref().map(|n| n.addr.clone()),
        },
        None => TxlogError::Raft(e.to_string()),
    }
}

fn outcome_to_result(o: WriteOutcome) -> Result<OpResult> {
    match o {
        WriteOutcome::Done(r) => Ok(r),
        WriteOutcome::NotLeader {
            leader_id,
            leader_addr,
        } => Err(TxlogError::NotLeader {
            leader_id,
            leader_addr,
        }),
        WriteOutcome::Unknown(m) => Err(TxlogError::OutcomeUnknown(m)),
    }
}

fn op_failure(r: OpResult) -> TxlogError {
    match r {
        OpResult::Fenced(p) => TxlogError::Fenced {
            epoch: p.epoch,
            last_lsn: p.last_lsn,
            holder: p.holder,
        },
        OpResult::Conflict(p) => TxlogError::Conflict {
            epoch: p.epoch,
            last_lsn: p.last_lsn,
            holder: p.holder,
        },
        OpResult::Invalid(m) => TxlogError::Invalid(m),
        other => TxlogError::Invalid(format!("unexpected result {other:?}")),
    }
}
