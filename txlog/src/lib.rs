//! The transaction log service: one Raft group (openraft + sled, gRPC over
//! tonic) that orders and persists the engine's effect batches, streams them
//! to tailers and decides, through leadership entries in the log itself,
//! which server is primary.

pub mod cli;
