//! The sending side of Raft RPCs: openraft's [`RaftNetworkFactory`] and
//! [`RaftNetwork`] over a lazily connected tonic channel per peer.

use std::time::Duration;

use memlog_proto::txlog::raft_internal_client::RaftInternalClient;
use memlog_proto::txlog::{RaftPayload, RaftReply};
use openraft::error::{
    Fatal, InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    ReplicationClosed, StreamingError, Unreachable,
};
use openraft::network::snapshot_transport::{Chunked, SnapshotTransport};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{BasicNode, OptionalSend, Snapshot, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

use super::MAX_MESSAGE_BYTES;
use crate::types::{NodeId, TypeConfig};

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
        .connect_lazy())
}

type RpcErr<E> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

#[derive(Clone, Copy)]
enum Rpc {
    AppendEntries,
    Vote,
    InstallSnapshot,
}

impl PeerConnection {
    fn client<E: std::error::Error>(&mut self) -> Result<RaftInternalClient<Channel>, RpcErr<E>> {
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

    async fn call<Req, Resp, E>(
        &mut self,
        rpc: Rpc,
        req: &Req,
        ttl: Duration,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let data = bincode::serialize(req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let mut client = self.client()?;
        let mut request = tonic::Request::new(RaftPayload { data: data.into() });
        request.set_timeout(ttl);
        let fut = async {
            match rpc {
                Rpc::AppendEntries => client.append_entries(request).await,
                Rpc::Vote => client.vote(request).await,
                Rpc::InstallSnapshot => client.install_snapshot(request).await,
            }
        };
        let reply: RaftReply = match tokio::time::timeout(ttl, fut).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => {
                return Err(match status.code() {
                    tonic::Code::Unavailable => RPCError::Unreachable(Unreachable::new(&status)),
                    _ => RPCError::Network(NetworkError::new(&status)),
                })
            }
            Err(elapsed) => return Err(RPCError::Network(NetworkError::new(&elapsed))),
        };
        if !reply.error_json.is_empty() {
            let e: RaftError<NodeId, E> = serde_json::from_str(&reply.error_json)
                .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
            return Err(RPCError::RemoteError(RemoteError::new_with_node(
                self.target,
                BasicNode::new(self.addr.clone()),
                e,
            )));
        }
        bincode::deserialize(&reply.ok).map_err(|e| RPCError::Network(NetworkError::new(&e)))
    }
}

/// Bytes of entries in one AppendEntries RPC, about (always at least one
/// entry). openraft 0.9 gives the RPC one heartbeat interval to finish,
/// follower fsync included, and bounds it only by entry count (256): a
/// follower catching up on big entries got RPCs of tens of MB that timed out
/// and were retried whole, forever.
pub const MAX_APPEND_RPC_BYTES: u64 = 1024 * 1024;

/// How many of `entries` fit in [`MAX_APPEND_RPC_BYTES`] (at least one), or
/// `None` if all do.
fn entries_that_fit(entries: &[crate::types::Entry]) -> Option<u64> {
    let mut bytes = 0u64;
    for (i, e) in entries.iter().enumerate() {
        bytes += bincode::serialized_size(e).unwrap_or(0);
        if bytes > MAX_APPEND_RPC_BYTES {
            return Some((i as u64).max(1));
        }
    }
    None
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        if rpc.entries.len() > 1 {
            if let Some(n) = entries_that_fit(&rpc.entries) {
                // openraft resends at once with at most `n` entries.
                return Err(RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(n),
                ));
            }
        }
        self.call(Rpc::AppendEntries, &rpc, option.hard_ttl()).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call(Rpc::InstallSnapshot, &rpc, option.hard_ttl())
            .await
    }

    /// A snapshot's file is written when first read (`store::snapshot_file`),
    /// and openraft reads it before its first chunk goes out: without this
    /// probe every retry towards a node that is down wrote a new file of the
    /// whole state machine whenever a newer snapshot had been recorded.
    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl std::future::Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let probe = tokio::net::TcpStream::connect(self.addr.as_str());
        match tokio::time::timeout(Duration::from_secs(1), probe).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(StreamingError::Unreachable(Unreachable::new(&e))),
            Err(e) => return Err(StreamingError::Unreachable(Unreachable::new(&e))),
        }
        Chunked::send_snapshot(self, vote, snapshot, cancel, option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr<openraft::error::Infallible>> {
        self.call(Rpc::Vote, &rpc, option.hard_ttl()).await
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, EntryPayload, LogId};

    use super::*;
    use crate::types::{Condition, Entry, EntryKind, Op, Request};

    fn entry(index: u64, bytes: usize) -> Entry {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
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

    #[test]
    fn append_rpcs_are_bounded_in_bytes_but_carry_at_least_one_entry() {
        let small: Vec<Entry> = (1..=100).map(|i| entry(i, 1000)).collect();
        assert_eq!(entries_that_fit(&small), None);
        let big: Vec<Entry> = (1..=10).map(|i| entry(i, 300 * 1024)).collect();
        assert_eq!(entries_that_fit(&big), Some(3));
        let huge: Vec<Entry> = (1..=3).map(|i| entry(i, 4 * 1024 * 1024)).collect();
        assert_eq!(entries_that_fit(&huge), Some(1));
    }
}
