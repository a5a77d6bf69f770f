//! Raft RPCs between txlog nodes over tonic gRPC (`RaftInternal` service).
//!
//! openraft's requests and responses travel bincode-encoded in a bytes
//! field; errors travel as JSON. Snapshots are sent by openraft's chunked
//! transport (`snapshot_max_chunk_size` per `InstallSnapshot` call, each with
//! its own timeout), so a GB-size snapshot is many small RPCs.

pub mod client;
pub mod server;

/// Largest gRPC message a node sends or accepts (Raft batches, snapshot chunks).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
