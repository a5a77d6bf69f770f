//! Durable storage of one txlog node, all in one sled database:
//!
//! - [`log_storage`]: the Raft log and vote ([`openraft::storage::RaftLogStorage`]),
//!   with group-committed flushes;
//! - [`state_machine`]: the named logs themselves ([`openraft::storage::RaftStateMachine`]);
//! - [`snapshot`]: the snapshot file format and builder
//!   ([`openraft::RaftSnapshotBuilder`]);
//! - [`snapshot_file`]: a snapshot's bytes, written out on first read.

pub mod log_storage;
pub mod snapshot;
pub mod snapshot_file;
pub mod state_machine;

use std::path::Path;

pub use log_storage::LogStore;
pub use state_machine::{LogsView, StateMachineStore};

use crate::error::Result;

/// Opens (creating if needed) the sled database under `dir` and returns the
/// node's Raft log store and state machine. Must run inside a tokio runtime.
pub async fn open(dir: &Path) -> Result<(LogStore, StateMachineStore)> {
    let dir = dir.to_path_buf();
    let db_dir = dir.join("db");
    let sled_dir = db_dir.clone();
    let db = tokio::task::spawn_blocking(move || {
        sled::Config::new()
            .path(sled_dir)
            // The log is written once and read back rarely (tails, recovery): a
            // small cache keeps an embedded server's RSS close to its data set.
            .cache_capacity(64 * 1024 * 1024)
            .open()
    })
    .await
    .map_err(|e| crate::error::TxlogError::Raft(format!("open task: {e}")))??;
    let log = LogStore::open(db.clone(), &db_dir)?;
    let sm = StateMachineStore::open(db, dir.join("snapshots")).await?;
    Ok((log, sm))
}
