//! Durable storage of one txlog node: the Raft log's entries in segment
//! files, everything else in one sled database:
//!
//! - [`log_storage`]: the Raft log and vote ([`openraft::storage::RaftLogStorage`]);
//! - [`journal`]: the Raft log's entries, in segment files written with one
//!   `fdatasync` per group of appends, and their index;
//! - [`state_machine`]: the named logs themselves ([`openraft::storage::RaftStateMachine`]);
//! - [`records`]: how the state machine stores a log's entries, their
//!   payloads left in the Raft log;
//! - [`snapshot`]: the snapshot file format and builder
//!   ([`openraft::RaftSnapshotBuilder`]);
//! - [`snapshot_file`]: a snapshot's bytes, written out on first read;
//! - [`step_synced`]: files written in bulk beside the log, synced in steps
//!   so that the log's own syncs never queue behind a big writeback.

pub mod journal;
pub mod log_storage;
pub(crate) mod records;
pub mod snapshot;
pub mod snapshot_file;
pub mod state_machine;
pub mod step_synced;

use std::path::Path;

pub use log_storage::LogStore;
pub use state_machine::{LogsView, StateMachineStore};

use crate::error::Result;

/// Opens (creating if needed) the sled database under `dir` and returns the
/// node's Raft log store and state machine. Must run inside a tokio runtime.
/// `segment_bytes`: size of the Raft log's segment files; `spare_bytes`:
/// how many bytes of purged ones are kept for reuse.
pub async fn open(
    dir: &Path,
    segment_bytes: u64,
    spare_bytes: u64,
) -> Result<(LogStore, StateMachineStore)> {
    let dir = dir.to_path_buf();
    let db_dir = dir.join("db");
    let sled_dir = db_dir.clone();
    let db = tokio::task::spawn_blocking(move || {
        sled::Config::new()
            .segment_size(segment_size(&sled_dir))
            .path(sled_dir)
            // The log is written once and read back rarely (tails, recovery): a
            // small cache keeps an embedded server's RSS close to its data set.
            .cache_capacity(64 * 1024 * 1024)
            .open()
    })
    .await
    .map_err(|e| crate::error::TxlogError::Raft(format!("open task: {e}")))??;
    let refs = records::References::new(StateMachineStore::tree(&db)?);
    let log = {
        let (db, refs) = (db.clone(), refs.clone());
        // Reads every segment to index it: disk reads.
        tokio::task::spawn_blocking(move || {
            LogStore::open(db, &db_dir, refs, segment_bytes, spare_bytes)
        })
        .await
        .map_err(|e| crate::error::TxlogError::Raft(format!("open task: {e}")))??
    };
    let sm = StateMachineStore::open(db, dir.join("snapshots"), log.clone(), refs).await?;
    Ok((log, sm))
}

/// A handle on a node's sled database that is dropped on a thread of its
/// own. Every holder of sled handles (the log store, the state machine,
/// their background tasks) also holds one, and `sled::Db` keeps every tree
/// it opened, so the database's last handle to go is one of these. sled
/// flushes when its last handle goes: disk I/O, which is not for a runtime
/// thread, and after some storage failures (a blob file that could not be
/// written leaves its reservation open) a flush that never returns, which
/// would hang the runtime thread with it.
pub(crate) struct DbKeeper(Option<sled::Db>);

impl DbKeeper {
    pub(crate) fn new(db: &sled::Db) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self(Some(db.clone())))
    }
}

impl Drop for DbKeeper {
    fn drop(&mut self) {
        if let Some(db) = self.0.take() {
            // Should no thread start, the closure drops the handle here.
            let _ = std::thread::Builder::new()
                .name("sled close".into())
                .spawn(move || drop(db));
        }
    }
}

/// sled segment size for new databases. sled writes a value larger than a
/// quarter segment to a file of its own (`blobs/`), which costs a file
/// create, fsyncs of it and of the directory, and a delete later: with the
/// default 512 KiB every append over 128 KiB (a group commit at pipeline 16
/// is ~250 KiB) did that. 8 MiB keeps values up to 2 MiB inline (3-node
/// SET at pipeline 16 here: 43k -> 59k ops/s).
pub const SEGMENT_SIZE: usize = 8 * 1024 * 1024;

/// Alignment of sled's IO buffers: sled 0.34 allocates each one, a whole
/// segment, from the global allocator as `Layout(segment_size, 8192)` at
/// every flush (the `memlog` binary's allocator keeps a few for reuse).
pub const IO_BUFFER_ALIGN: usize = 8192;

/// The segment size to open `dir` with: sled refuses a size other than the
/// one the database was created with (kept in its `conf` file).
fn segment_size(dir: &Path) -> usize {
    // Text lines followed by a binary crc32.
    std::fs::read(dir.join("conf"))
        .ok()
        .and_then(|conf| {
            String::from_utf8_lossy(&conf).lines().find_map(|l| {
                l.strip_prefix("segment_size:")
                    .and_then(|v| v.trim().parse().ok())
            })
        })
        .unwrap_or(SEGMENT_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn new_databases_get_big_segments_and_old_ones_keep_theirs() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(segment_size(dir.path()), SEGMENT_SIZE);
        // A database created with sled's default keeps it, or sled would
        // refuse to open it.
        let old = dir.path().join("old");
        sled::Config::new()
            .path(&old)
            .segment_size(512 * 1024)
            .open()
            .expect("open")
            .flush()
            .expect("flush");
        assert_eq!(segment_size(&old), 512 * 1024);
        // sled's background flusher can hold the dropped database's file
        // lock for a moment: retry the reopen briefly.
        let mut db = Err(sled::Error::Unsupported("not tried".into()));
        for _ in 0..100 {
            db = sled::Config::new()
                .path(&old)
                .segment_size(segment_size(&old))
                .open();
            if db.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            db.is_ok(),
            "reopens with the size it was created with: {db:?}"
        );
        let new = dir.path().join("new");
        drop(
            sled::Config::new()
                .path(&new)
                .segment_size(segment_size(&new))
                .open()
                .expect("open new"),
        );
        assert_eq!(segment_size(&new), SEGMENT_SIZE);
    }
}
