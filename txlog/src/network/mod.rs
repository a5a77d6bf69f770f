//! Raft RPCs between txlog nodes over tonic gRPC (`RaftInternal` service).
//!
//! openraft's requests and responses travel bincode-encoded in a bytes
//! field. Replication is one bidirectional `StreamAppend` call per follower
//! (several AppendEntries in flight, each at most ~1 MiB of entries);
//! heartbeats and votes are unary calls. A snapshot is one client-streaming
//! `Snapshot` call: its meta, then the file in chunks of
//! `snapshot_max_chunk_size`, written straight to a file by the receiver,
//! so a GB-size snapshot never sits in memory.

pub mod client;
pub mod deferred_commit;
pub mod server;

/// Largest gRPC message a node sends or accepts (Raft batches, snapshot chunks).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;
