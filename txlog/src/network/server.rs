//! The receiving side of Raft RPCs: the `RaftInternal` gRPC service handing
//! requests to the local [`openraft::Raft`].

use memlog_proto::txlog::raft_internal_server::RaftInternal;
use memlog_proto::txlog::{RaftPayload, RaftReply};
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::types::Raft;

/// Serves Raft RPCs for one node.
pub struct RaftRpcService {
    raft: Raft,
}

impl RaftRpcService {
    pub fn new(raft: Raft) -> Self {
        Self { raft }
    }
}

fn decode<T: serde::de::DeserializeOwned>(req: Request<RaftPayload>) -> Result<T, Status> {
    bincode::deserialize(&req.into_inner().data)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

fn reply<T: Serialize, E: Serialize>(r: Result<T, E>) -> Result<Response<RaftReply>, Status> {
    let out = match r {
        Ok(v) => RaftReply {
            ok: bincode::serialize(&v)
                .map_err(|e| Status::internal(e.to_string()))?
                .into(),
            error_json: String::new(),
        },
        Err(e) => RaftReply {
            ok: Default::default(),
            error_json: serde_json::to_string(&e).map_err(|e| Status::internal(e.to_string()))?,
        },
    };
    Ok(Response::new(out))
}

#[tonic::async_trait]
impl RaftInternal for RaftRpcService {
    async fn append_entries(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = decode(request)?;
        reply(self.raft.append_entries(req).await)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftReply>, Status> {
        let req = decode(request)?;
        reply(self.raft.vote(req).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftReply>, Status> {
        let req = decode(request)?;
        reply(self.raft.install_snapshot(req).await)
    }
}
