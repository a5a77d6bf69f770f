//! Protobuf messages and gRPC services shared across memlog's crates.
//!
//! `effect` is the replication record the engine emits for every mutation;
//! it is the payload the transaction log stores and tailers replay.
//! `txlog` is the transaction log service's public and Raft-internal gRPC API.

/// Deterministic effect records (see `proto/effect.proto`).
pub mod effect {
    tonic::include_proto!("memlog.effect");
}

/// The transaction log service (see `proto/txlog.proto`).
pub mod txlog {
    tonic::include_proto!("memlog.txlog");
}
