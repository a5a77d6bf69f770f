//! The Raft type configuration of the transaction log and the commands its
//! state machine applies.
//!
//! One Raft entry carries a [`Request`]: a batch of [`Op`]s coalesced by the
//! append batcher from many clients. Each op keeps its own [`Condition`] and
//! gets its own [`OpResult`], so one client's failed condition never affects
//! another's append in the same entry.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Raft node ids are plain integers given on the command line.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// openraft type configuration of the transaction log's Raft group.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
);

/// Aliases of openraft's generic types for this configuration.
pub type Raft = openraft::Raft<TypeConfig, crate::store::StateMachineStore>;
pub type LogId = openraft::type_config::alias::LogIdOf<TypeConfig>;
pub type Vote = openraft::type_config::alias::VoteOf<TypeConfig>;
pub type Entry = openraft::type_config::alias::EntryOf<TypeConfig>;
pub type StoredMembership = openraft::type_config::alias::StoredMembershipOf<TypeConfig>;
pub type SnapshotMeta = openraft::type_config::alias::SnapshotMetaOf<TypeConfig>;
pub type Snapshot =
    openraft::type_config::alias::SnapshotOf<TypeConfig, crate::store::snapshot_file::SnapshotFile>;

/// The id of entry `index` written by node 1 in term 1 (unit tests).
#[cfg(test)]
pub(crate) fn test_log_id(index: u64) -> LogId {
    LogId::new(
        openraft::impls::leader_id_adv::LeaderId {
            term: 1,
            node_id: 1,
        },
        index,
    )
}

/// What must hold for an append to take effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Condition {
    /// The writer holds the log's current leadership epoch.
    Epoch(u64),
    /// The log's last LSN is exactly this (0 for an empty log).
    LastLsn(u64),
    /// Both (how a primary appends): the writer holds `epoch` and its
    /// append goes right after `last_lsn`, so a stale or out-of-order
    /// request of its own is refused (CONFLICT) instead of landing twice or
    /// after a gap. A new variant at the end: entries already in a Raft log
    /// decode as before.
    EpochAfter { epoch: u64, last_lsn: u64 },
}

impl Condition {
    /// The epoch the writer must hold, if any.
    pub fn epoch(&self) -> Option<u64> {
        match *self {
            Condition::Epoch(e) | Condition::EpochAfter { epoch: e, .. } => Some(e),
            Condition::LastLsn(_) => None,
        }
    }

    /// The last LSN the log must have, if any.
    pub fn last_lsn(&self) -> Option<u64> {
        match *self {
            Condition::LastLsn(l) | Condition::EpochAfter { last_lsn: l, .. } => Some(l),
            Condition::Epoch(_) => None,
        }
    }
}

/// Kinds of log entries (mirrors `memlog.txlog.EntryKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    Data,
    Leadership,
    Heartbeat,
}

impl EntryKind {
    pub fn to_proto(self) -> i32 {
        match self {
            EntryKind::Data => 0,
            EntryKind::Leadership => 1,
            EntryKind::Heartbeat => 2,
        }
    }
}

/// One client operation inside a Raft entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    /// Append `payloads` to `log` if `condition` holds.
    Append {
        log: String,
        condition: Condition,
        kind: EntryKind,
        payloads: Vec<Bytes>,
    },
    /// Append a leadership entry naming `candidate` with epoch = current + 1,
    /// if the log's last LSN is `expected_last_lsn`.
    TakeLeadership {
        log: String,
        candidate: String,
        expected_last_lsn: u64,
    },
    /// Drop entries up to and including `up_to_lsn`.
    Trim { log: String, up_to_lsn: u64 },
}

/// The most payload bytes one append may carry (all its payloads together).
/// A bigger append is refused (`INVALID`) before it reaches Raft: its entry
/// must replicate and be tailed as one gRPC message ([`MAX_MESSAGE_BYTES`]);
/// every node's Raft core is busy while it writes the entry to sled (in one
/// piece, synchronously), so a big one under load can delay heartbeats into
/// an election (seen with 72 and 40 MiB entries, debug builds, while the
/// whole test suite ran on 2 cores); and committing it must not take a good
/// part of a writer's lease (64 MiB: ~1.7 s on three nodes sharing one
/// 2-core machine's disk).
///
/// [`MAX_MESSAGE_BYTES`]: crate::network::MAX_MESSAGE_BYTES
pub const MAX_APPEND_PAYLOAD_BYTES: usize = 40 * 1024 * 1024;
/// Payloads in one append, at most (as many as an [`crate::AppendPipeline`]
/// request carries). Empty payloads cost next to nothing on the wire and in
/// the byte limit, but 32 bytes each in memory and a stored entry each:
/// millions of them in one append made a Raft entry too big to replicate
/// (stalling every log of the group) or a chunk that every tail read scans.
pub const MAX_APPEND_PAYLOADS: usize = 4096;

/// The longest log name (bytes). Entry keys carry the name's length in two
/// bytes, and every name is in the state machine's metadata.
pub const MAX_LOG_NAME_BYTES: usize = 256;

/// The longest leadership candidate (holder) name (bytes).
pub const MAX_HOLDER_BYTES: usize = 1024;

/// The most named logs one txlog group keeps (one per engine shard). Every
/// apply rewrites the metadata of all of them, so a client that invented
/// log names without bound would slow every write of every other client.
pub const MAX_LOGS: usize = 1024;

impl Op {
    /// The log this op is for.
    pub fn log(&self) -> &str {
        match self {
            Op::Append { log, .. } | Op::TakeLeadership { log, .. } | Op::Trim { log, .. } => log,
        }
    }

    /// Why the log refuses this op whatever its state, if it does: checked
    /// before the op is proposed, and again when it is applied.
    pub fn refusal(&self) -> Option<String> {
        let log = self.log();
        if log.len() > MAX_LOG_NAME_BYTES {
            return Some(format!(
                "log name of {} bytes exceeds the limit of {MAX_LOG_NAME_BYTES}",
                log.len()
            ));
        }
        match self {
            Op::Append { payloads, .. } if payloads.len() > MAX_APPEND_PAYLOADS => Some(format!(
                "append of {} payloads exceeds the limit of {MAX_APPEND_PAYLOADS}",
                payloads.len()
            )),
            Op::Append { payloads, .. } => {
                let bytes: usize = payloads.iter().map(Bytes::len).sum();
                (bytes > MAX_APPEND_PAYLOAD_BYTES).then(|| {
                    format!(
                        "append of {bytes} payload bytes exceeds the limit of {MAX_APPEND_PAYLOAD_BYTES}"
                    )
                })
            }
            Op::TakeLeadership { candidate, .. } if candidate.len() > MAX_HOLDER_BYTES => {
                Some(format!(
                    "candidate name of {} bytes exceeds the limit of {MAX_HOLDER_BYTES}",
                    candidate.len()
                ))
            }
            _ => None,
        }
    }

    /// Approximate encoded size, for bounding batches.
    pub fn size_hint(&self) -> usize {
        match self {
            Op::Append { log, payloads, .. } => {
                log.len() + 32 + payloads.iter().map(|p| p.len() + 8).sum::<usize>()
            }
            Op::TakeLeadership { log, candidate, .. } => log.len() + candidate.len() + 32,
            Op::Trim { log, .. } => log.len() + 16,
        }
    }
}

/// The application data of one Raft entry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Request {
    pub ops: Vec<Op>,
}

/// openraft logs entries by their `Display`: the op count and size, not
/// the payloads.
impl std::fmt::Display for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes: usize = self.ops.iter().map(Op::size_hint).sum();
        write!(f, "Request({} ops, ~{bytes} bytes)", self.ops.len())
    }
}

/// Per-op outcomes of one applied Raft entry (same order as `Request::ops`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Response {
    pub results: Vec<OpResult>,
}

/// The log's state as seen by a failed or successful op.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    pub epoch: u64,
    pub last_lsn: u64,
    pub holder: String,
}

/// The outcome of one op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    Appended {
        first_lsn: u64,
        last_lsn: u64,
        position: LogPosition,
    },
    /// Epoch condition failed.
    Fenced(LogPosition),
    /// last_lsn condition failed.
    Conflict(LogPosition),
    Trimmed {
        first_lsn: u64,
        last_lsn: u64,
    },
    Invalid(String),
}

/// Per-log metadata kept by the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMeta {
    /// First retained LSN (1 until trimmed; last_lsn + 1 when all trimmed).
    pub first_lsn: u64,
    pub last_lsn: u64,
    pub epoch: u64,
    pub holder: String,
    /// Running checksum after `last_lsn`.
    pub checksum: u32,
}

impl Default for LogMeta {
    /// An empty log: nothing trimmed, no leadership taken yet (epoch 0).
    fn default() -> Self {
        Self {
            first_lsn: 1,
            last_lsn: 0,
            epoch: 0,
            holder: String::new(),
            checksum: 0,
        }
    }
}

impl LogMeta {
    pub fn position(&self) -> LogPosition {
        LogPosition {
            epoch: self.epoch,
            last_lsn: self.last_lsn,
            holder: self.holder.clone(),
        }
    }
}

/// One entry of a named log as stored by the state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    pub epoch: u64,
    pub kind: EntryKind,
    pub checksum: u32,
    pub payload: Bytes,
}

/// The entries of one append op as the state machine stores them: one sled
/// value for consecutive entries (one insert per op, not per payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordChunk {
    pub epoch: u64,
    pub kind: EntryKind,
    /// Running checksum after each payload.
    pub checksums: Vec<u32>,
    pub payloads: Vec<Bytes>,
}

impl RecordChunk {
    /// Number of entries in the chunk.
    pub fn len(&self) -> u64 {
        self.payloads.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }
}

/// The running checksum: crc32c over every payload since LSN 1, chained.
pub fn chain_checksum(previous: u32, payload: &[u8]) -> u32 {
    crc32c::crc32c_append(previous, payload)
}
