//! The sending side of Raft RPCs: openraft's [`RaftNetworkFactory`] and
//! [`RaftNetworkV2`] over a lazily connected tonic channel per peer.
//!
//! Replication runs on one bidirectional `StreamAppend` call per follower, so
//! the leader keeps several AppendEntries in flight instead of waiting for
//! each follower fsync before sending the next batch.

use std::future::Future;
use std::time::Duration;

use futures::{Stream, StreamExt};
use memlog_proto::txlog::raft_internal_client::RaftInternalClient;
use memlog_proto::txlog::{RaftPayload, RaftReply};
use openraft::base::{BoxFuture, BoxStream};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, StreamAppendResult, VoteRequest,
    VoteResponse,
};
use openraft::{BasicNode, RaftNetworkV2};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use super::deferred_commit::{DeferredCommits, COMMIT_HOLD};
use super::MAX_MESSAGE_BYTES;
use crate::store::snapshot_file::SnapshotFile;
use crate::types::{NodeId, Snapshot, TypeConfig, Vote};

/// Creates one [`PeerConnection`] per replication target.
#[derive(Debug, Clone, Default)]
pub struct NetworkFactory;

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        PeerConnection {
            target,
            addr: node.addr.clone(),
            client: None,
        }
    }
}

/// A gRPC channel to one peer (connected on first use, reconnects by itself).
pub struct PeerConnection {
    target: NodeId,
    addr: String,
    client: Option<RaftInternalClient<Channel>>,
}

/// Opens a lazily connected channel to `addr` (`host:port`).
pub fn channel(addr: &str) -> Result<Channel, tonic::transport::Error> {
    let uri = if addr.starts_with("http://") {
        addr.to_string()
    } else {
        format!("http://{addr}")
    };
    Ok(Endpoint::from_shared(uri)?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true)
        .connect_lazy())
}

type RpcErr = RPCError<TypeConfig>;

/// Bytes of entries in one AppendEntries message, about (always at least
/// one entry). A follower catching up on big entries would otherwise get
/// messages of hundreds of MB (openraft bounds them by entry count only)
/// that time out and are resent whole, forever.
pub const MAX_APPEND_RPC_BYTES: u64 = 1024 * 1024;

/// The shortest time given to one AppendEntries reply: it includes the
/// follower's fsync, and openraft's own budget (a heartbeat interval) is
/// too short for a MB-size batch on a busy disk.
const MIN_APPEND_REPLY_WAIT: Duration = Duration::from_secs(10);

fn encode<T: Serialize>(v: &T) -> Result<RaftPayload, RpcErr> {
    let data = bincode::serialize(v).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
    Ok(RaftPayload { data: data.into() })
}

fn decode_reply<T: DeserializeOwned>(reply: RaftReply) -> Result<T, RpcErr> {
    if !reply.error_json.is_empty() {
        return Err(RPCError::Network(NetworkError::from_string(
            reply.error_json,
        )));
    }
    bincode::deserialize(&reply.ok).map_err(|e| RPCError::Network(NetworkError::new(&e)))
}

fn status_err(status: tonic::Status) -> RpcErr {
    match status.code() {
        tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(&status)),
        _ => RPCError::Network(NetworkError::new(&status)),
    }
}

fn rpc_to_streaming(e: RpcErr) -> StreamingError<TypeConfig> {
    match e {
        RPCError::Timeout(t) => StreamingError::Timeout(t),
        RPCError::Unreachable(u) => StreamingError::Unreachable(u),
        RPCError::Network(n) => StreamingError::Network(n),
        RPCError::RemoteError(r) => StreamingError::Network(NetworkError::from_string(r)),
    }
}

/// Splits one AppendEntries into consecutive ones of at most
/// [`MAX_APPEND_RPC_BYTES`] of entries each (a heartbeat stays one).
fn split_request(req: AppendEntriesRequest<TypeConfig>) -> Vec<AppendEntriesRequest<TypeConfig>> {
    let mut parts = Vec::new();
    let mut prev = req.prev_log_id;
    let mut current = Vec::new();
    let mut bytes = 0u64;
    for e in req.entries {
        let size = bincode::serialized_size(&e).unwrap_or(0);
        if !current.is_empty() && bytes + size > MAX_APPEND_RPC_BYTES {
            let entries: Vec<crate::types::Entry> = std::mem::take(&mut current);
            let next_prev = entries.last().map(|e| e.log_id);
            parts.push(AppendEntriesRequest {
                vote: req.vote,
                prev_log_id: prev,
                entries,
                leader_commit: req.leader_commit,
            });
            prev = next_prev;
            bytes = 0;
        }
        bytes += size;
        current.push(e);
    }
    parts.push(AppendEntriesRequest {
        vote: req.vote,
        prev_log_id: prev,
        entries: current,
        leader_commit: req.leader_commit,
    });
    parts
}

impl PeerConnection {
    fn client(&mut self) -> Result<RaftInternalClient<Channel>, RpcErr> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let ch = channel(&self.addr).map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))?;
        let c = RaftInternalClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        self.client = Some(c.clone());
        Ok(c)
    }

    async fn unary<Req, Resp, F, Fut>(
        &mut self,
        req: &Req,
        ttl: Duration,
        call: F,
    ) -> Result<Resp, RpcErr>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(RaftInternalClient<Channel>, tonic::Request<RaftPayload>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftReply>, tonic::Status>>,
    {
        let mut request = tonic::Request::new(encode(req)?);
        request.set_timeout(ttl);
        let client = self.client()?;
        match tokio::time::timeout(ttl, call(client, request)).await {
            Ok(Ok(r)) => decode_reply(r.into_inner()),
            Ok(Err(status)) => Err(status_err(status)),
            Err(elapsed) => Err(RPCError::Network(NetworkError::new(&elapsed))),
        }
    }

    /// Streams a snapshot's meta and then its file to the peer.
    async fn send_snapshot(
        &mut self,
        vote: Vote,
        mut snapshot: Snapshot,
        chunk_size: usize,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client().map_err(rpc_to_streaming)?;
        let (tx, rx) = mpsc::channel::<RaftPayload>(2);
        let first = encode(&(vote, snapshot.meta.clone())).map_err(rpc_to_streaming)?;
        let call = tokio::spawn(async move {
            client
                .snapshot(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
        });
        let send = async {
            tx.send(first).await.ok();
            let file: &mut SnapshotFile = &mut snapshot.snapshot;
            loop {
                let mut buf = vec![0u8; chunk_size];
                let mut filled = 0;
                while filled < buf.len() {
                    let n = file.read(&mut buf[filled..]).await?;
                    if n == 0 {
                        break;
                    }
                    filled += n;
                }
                if filled == 0 {
                    return Ok::<(), std::io::Error>(());
                }
                buf.truncate(filled);
                if tx.send(RaftPayload { data: buf.into() }).await.is_err() {
                    // The call ended early; its result says why.
                    return Ok(());
                }
            }
        };
        if let Err(e) = send.await {
            return Err(StreamingError::Network(NetworkError::new(&e)));
        }
        drop(tx);
        let reply = call
            .await
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?
            .map_err(|s| rpc_to_streaming(status_err(s)))?;
        decode_reply(reply.into_inner()).map_err(rpc_to_streaming)
    }
}

impl RaftNetworkV2<TypeConfig> for PeerConnection {
    type SnapshotData = SnapshotFile;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RpcErr> {
        let ttl = option.soft_ttl().max(MIN_APPEND_REPLY_WAIT);
        let mut last = None;
        for part in split_request(rpc) {
            let resp: AppendEntriesResponse<TypeConfig> = self
                .unary(
                    &part,
                    ttl,
                    |mut c, r| async move { c.append_entries(r).await },
                )
                .await?;
            let done = !matches!(resp, AppendEntriesResponse::Success);
            last = Some(resp);
            if done {
                break;
            }
        }
        last.ok_or_else(|| RPCError::Network(NetworkError::from_string("empty append")))
    }

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, Result<BoxStream<'s, Result<StreamAppendResult<TypeConfig>, RpcErr>>, RpcErr>>
    where
        S: Stream<Item = AppendEntriesRequest<TypeConfig>> + Send + Unpin + 'static,
    {
        Box::pin(async move {
            let mut client = self.client()?;
            // How many messages each of openraft's requests became, for the
            // reply side to answer each request exactly once.
            let (parts_tx, parts_rx) = mpsc::unbounded_channel::<usize>();
            let outbound = DeferredCommits::new(input, COMMIT_HOLD).flat_map(move |req| {
                let parts: Vec<RaftPayload> = split_request(req)
                    .iter()
                    .map(|p| encode(p).unwrap_or_default())
                    .collect();
                let _ = parts_tx.send(parts.len());
                futures::stream::iter(parts)
            });
            let replies = client
                .stream_append(outbound)
                .await
                .map_err(status_err)?
                .into_inner();
            let wait = option.soft_ttl().max(MIN_APPEND_REPLY_WAIT);
            let out = futures::stream::unfold(Some((replies, parts_rx)), move |state| {
                async move {
                    let (mut replies, mut parts_rx) = state?;
                    let n = parts_rx.recv().await?;
                    let mut last: Option<StreamAppendResult<TypeConfig>> = None;
                    for _ in 0..n {
                        let reply = match tokio::time::timeout(wait, replies.next()).await {
                            Ok(Some(Ok(r))) => r,
                            Ok(Some(Err(status))) => return Some((Err(status_err(status)), None)),
                            // The follower ended the stream (after a partial
                            // success): report what it did.
                            Ok(None) => return last.map(|r| (Ok(r), None)),
                            Err(e) => {
                                return Some((Err(RPCError::Network(NetworkError::new(&e))), None))
                            }
                        };
                        let r: StreamAppendResult<TypeConfig> = match decode_reply(reply) {
                            Ok(r) => r,
                            Err(e) => return Some((Err(e), None)),
                        };
                        let failed = r.is_err();
                        last = Some(r);
                        if failed {
                            return last.map(|r| (Ok(r), None));
                        }
                    }
                    last.map(|r| (Ok(r), Some((replies, parts_rx))))
                }
            });
            Ok(Box::pin(out) as BoxStream<'s, _>)
        })
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcErr> {
        self.unary(&rpc, option.soft_ttl(), |mut c, r| async move {
            c.vote(r).await
        })
        .await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RpcErr> {
        self.unary(&rpc, option.soft_ttl(), |mut c, r| async move {
            c.pre_vote(r).await
        })
        .await
    }

    /// A snapshot's file is written when first read (`store::snapshot_file`):
    /// without this probe every retry towards a node that is down wrote a
    /// new file of the whole state machine whenever a newer snapshot had
    /// been recorded.
    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let probe = tokio::net::TcpStream::connect(self.addr.as_str());
        match tokio::time::timeout(Duration::from_secs(1), probe).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(StreamingError::Unreachable(Unreachable::new(&e))),
            Err(e) => return Err(StreamingError::Unreachable(Unreachable::new(&e))),
        }
        let chunk = option
            .snapshot_chunk_size()
            .unwrap_or(4 * 1024 * 1024)
            .max(64 * 1024);
        let target = self.target;
        tokio::select! {
            r = self.send_snapshot(vote, snapshot, chunk) => r,
            closed = cancel => {
                tracing::info!(target, "snapshot send cancelled: {closed}");
                Err(StreamingError::Closed(closed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use openraft::EntryPayload;

    use super::*;
    use crate::types::{test_log_id, Condition, Entry, EntryKind, Op, Request};

    fn entry(index: u64, bytes: usize) -> Entry {
        Entry {
            log_id: test_log_id(index),
            payload: EntryPayload::Normal(Request {
                ops: vec![Op::Append {
                    log: "l".into(),
                    condition: Condition::Epoch(1),
                    kind: EntryKind::Data,
                    payloads: vec![bytes::Bytes::from(vec![0u8; bytes])],
                }],
            }),
        }
    }

    fn request(entries: Vec<Entry>) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: Some(test_log_id(0)),
            entries,
            leader_commit: None,
        }
    }

    fn shape(parts: &[AppendEntriesRequest<TypeConfig>]) -> Vec<(u64, Vec<u64>)> {
        parts
            .iter()
            .map(|p| {
                (
                    p.prev_log_id.map_or(0, |l| l.index),
                    p.entries.iter().map(|e| e.log_id.index).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn append_messages_are_bounded_in_bytes_chained_and_carry_at_least_one_entry() {
        let small: Vec<Entry> = (1..=100).map(|i| entry(i, 1000)).collect();
        assert_eq!(split_request(request(small)).len(), 1);
        let big: Vec<Entry> = (1..=7).map(|i| entry(i, 300 * 1024)).collect();
        assert_eq!(
            shape(&split_request(request(big))),
            vec![(0, vec![1, 2, 3]), (3, vec![4, 5, 6]), (6, vec![7])]
        );
        let huge: Vec<Entry> = (1..=2).map(|i| entry(i, 4 * 1024 * 1024)).collect();
        assert_eq!(
            shape(&split_request(request(huge))),
            vec![(0, vec![1]), (1, vec![2])]
        );
        assert_eq!(shape(&split_request(request(vec![]))), vec![(0, vec![])]);
    }
}
