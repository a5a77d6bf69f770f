//! The receiving side of Raft RPCs: the `RaftInternal` gRPC service handing
//! requests to the local [`openraft::Raft`].

use std::pin::Pin;

use futures::{Stream, StreamExt};
use memlog_proto::txlog::raft_internal_server::RaftInternal;
use memlog_proto::txlog::{RaftPayload, RaftReply};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tonic::{Request, Response, Status, Streaming};

use crate::store::LogsView;
use crate::types::{Raft, Snapshot, SnapshotMeta, Vote};

/// Serves Raft RPCs for one node.
pub struct RaftRpcService {
    raft: Raft,
    view: LogsView,
}

impl RaftRpcService {
    pub fn new(raft: Raft, view: LogsView) -> Self {
        Self { raft, view }
    }
}

fn decode<T: serde::de::DeserializeOwned>(payload: &RaftPayload) -> Result<T, Status> {
    bincode::deserialize(&payload.data)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

fn ok_reply<T: Serialize>(v: &T) -> Result<RaftReply, Status> {
    Ok(RaftReply {
        ok: bincode::serialize(v)
            .map_err(|e| Status::internal(e.to_string()))?
            .into(),
        error_json: String::new(),
    })
}

/// openraft's only error here is Fatal (the node is stopping): the peer
/// treats the node as unreachable.
fn fatal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("raft stopped: {e}"))
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<RaftReply, Status>> + Send>>;

#[tonic::async_trait]
impl RaftInternal for RaftRpcService {
    async fn append_entries(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = decode(request.get_ref())?;
        let resp = self.raft.append_entries(req).await.map_err(fatal)?;
        Ok(Response::new(ok_reply(&resp)?))
    }

    type StreamAppendStream = ReplyStream;

    async fn stream_append(
        &self,
        request: Request<Streaming<RaftPayload>>,
    ) -> Result<Response<ReplyStream>, Status> {
        // A transport error or an undecodable message ends the input, and
        // with it the stream: skipping one would answer the leader's next
        // request in its place.
        let input = request
            .into_inner()
            .map(|m| m.ok().and_then(|p| bincode::deserialize(&p.data).ok()))
            .take_while(|r| futures::future::ready(r.is_some()))
            .filter_map(futures::future::ready);
        let output = self.raft.stream_append(Box::pin(input)).map(|r| match r {
            Ok(result) => ok_reply(&result),
            Err(e) => Err(fatal(e)),
        });
        Ok(Response::new(Box::pin(output)))
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftReply>, Status> {
        let req = decode(request.get_ref())?;
        let resp = self.raft.vote(req).await.map_err(fatal)?;
        Ok(Response::new(ok_reply(&resp)?))
    }

    async fn pre_vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftReply>, Status> {
        let req = decode(request.get_ref())?;
        let resp = self.raft.pre_vote(req).await.map_err(fatal)?;
        Ok(Response::new(ok_reply(&resp)?))
    }

    /// Writes the snapshot's bytes straight into a file (snapshots can be
    /// GBs), then installs it.
    async fn snapshot(
        &self,
        request: Request<Streaming<RaftPayload>>,
    ) -> Result<Response<RaftReply>, Status> {
        let mut input = request.into_inner();
        let first = input
            .next()
            .await
            .ok_or_else(|| Status::invalid_argument("empty snapshot stream"))??;
        let (vote, meta): (Vote, SnapshotMeta) = decode(&first)?;
        let mut data = self
            .view
            .begin_receiving_snapshot()
            .await
            .map_err(|e| Status::internal(format!("snapshot file: {e}")))?;
        let received = async {
            let file = data.file()?;
            while let Some(chunk) = input.next().await {
                let chunk = chunk.map_err(std::io::Error::other)?;
                file.write_all(&chunk.data).await?;
            }
            file.flush().await
        }
        .await;
        // A stream the leader stopped sending (it stepped down, stopped, or
        // failed to read its file) ends as a complete one does: only a file
        // read through to its end, of the snapshot the request names, is
        // installed. Installing a cut one cleared the state machine and then
        // failed, at every start after.
        let received = match received {
            Ok(()) => match data.path().map(std::path::Path::to_path_buf) {
                Some(path) => {
                    let (p, expected) = (path.clone(), meta.clone());
                    tokio::task::spawn_blocking(move || {
                        crate::store::snapshot::verify_file(&p, &expected)
                    })
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r.map_err(|e| std::io::Error::other(e.to_string())))
                }
                None => Ok(()),
            },
            Err(e) => Err(e),
        };
        // Removed before answering on the ways out this task sees; `data`
        // removes it when dropped on the others (this task cancelled when
        // its connection goes), in the background.
        if let Err(e) = received {
            if let Some(p) = data.take_path() {
                let _ = tokio::fs::remove_file(p).await;
            }
            return Err(Status::aborted(format!("receiving snapshot: {e}")));
        }
        let received = data.path().map(std::path::Path::to_path_buf);
        let installed = self
            .raft
            .install_full_snapshot(
                vote,
                Snapshot {
                    meta,
                    snapshot: data,
                },
            )
            .await;
        // openraft answers once the snapshot is installed (which moved the
        // file in place) or skipped (one not newer than this node's state,
        // or from a stale leader: the file is still there).
        if let Some(p) = received {
            let _ = tokio::fs::remove_file(p).await;
        }
        let resp = installed.map_err(fatal)?;
        Ok(Response::new(ok_reply(&resp)?))
    }
}
