//! Errors of the transaction log library.

use crate::types::NodeId;

/// Anything that can go wrong in the txlog library.
#[derive(Debug, thiserror::Error)]
pub enum TxlogError {
    #[error("storage: {0}")]
    Storage(#[from] sled::Error),
    #[error("encoding: {0}")]
    Encoding(#[from] bincode::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("raft: {0}")]
    Raft(String),
    #[error("not the leader (leader: {leader_id:?} at {leader_addr:?})")]
    NotLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
    /// The request was sent but its outcome is unknown: it may or may not be
    /// in the log. Resolve by reading the log.
    #[error("outcome unknown: {0}")]
    OutcomeUnknown(String),
    /// The epoch condition failed.
    #[error("fenced: log epoch is {epoch}, last lsn {last_lsn}, holder {holder:?}")]
    Fenced {
        epoch: u64,
        last_lsn: u64,
        holder: String,
    },
    /// The last_lsn condition failed.
    #[error("conflict: log epoch is {epoch}, last lsn {last_lsn}, holder {holder:?}")]
    Conflict {
        epoch: u64,
        last_lsn: u64,
        holder: String,
    },
    #[error("lsn {requested} is trimmed; first retained lsn is {first_retained}")]
    Truncated { requested: u64, first_retained: u64 },
    /// A node added as a learner has not caught up yet, so it was not
    /// promoted; once it runs and catches up, adding it again promotes it.
    #[error("node {id} ({addr}) was added as a learner but did not catch up within {waited:?}; check that it runs there, then add it again")]
    LearnerBehind {
        id: NodeId,
        addr: String,
        waited: std::time::Duration,
    },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("no txlog node reachable: {0}")]
    Unavailable(String),
    /// The embedded log's storage failed; it is being opened again (see
    /// [`crate::EmbeddedLog`]). Carries the failure's innermost error, e.g.
    /// `No space left on device (os error 28)`.
    #[error("the log is reopening after a storage failure: {0}")]
    Reopening(String),
    #[error("grpc: {0}")]
    Grpc(#[from] tonic::Status),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

pub type Result<T, E = TxlogError> = std::result::Result<T, E>;
