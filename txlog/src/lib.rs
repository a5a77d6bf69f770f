//! The transaction log service: one Raft group (openraft + sled, gRPC over
//! tonic) that orders and persists the engine's effect batches, streams them
//! to tailers and decides, through leadership entries in the log itself,
//! which server is primary.

// openraft's trait signatures prescribe its (large) error types.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod error;
pub mod store;
pub mod types;

pub use error::{Result, TxlogError};
pub mod batcher;
pub mod bench;
pub mod embedded;
pub mod network;
pub mod node;
pub mod pipeline;
pub mod service;

pub use embedded::EmbeddedLog;
pub use node::{NodeConfig, NodeFailure, TxlogNode};
pub mod client;

pub use client::{Appended, TxlogClient};
pub use pipeline::AppendPipeline;
