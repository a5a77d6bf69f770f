//! The Raft log and vote on sled, implementing openraft's
//! [`RaftLogStorage`] (storage-v2).
//!
//! Appended entries are inserted into sled's in-memory tree right away (so a
//! reader sees them as soon as `append` returns); durability comes from one
//! flusher task that collects every pending [`LogFlushed`] callback, runs a
//! single `flush_async` for all of them and only then fires them: one fsync
//! covers a whole batch of appends (group commit). The vote is flushed before
//! `save_vote` returns.
//!
//! sled's own flush is `sync_file_range` on Linux and never syncs the files it
//! keeps large values in (`blobs/`): it survives a process crash but not a
//! power loss. [`DiskSync`] closes that gap: after every sled flush it runs
//! `fdatasync` on sled's data file and fsyncs new blob files and the
//! directories, so "flushed" means on the device.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::File;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader, StorageIOError};
use tokio::sync::mpsc;

use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_LAST_PURGED: &[u8] = b"last_purged";

/// The Raft log store (cheap to clone; clones share the same trees).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Inner>,
}

/// Makes what sled flushed durable on the device (see the module docs).
pub struct DiskSync {
    dir: PathBuf,
    data_file: File,
    synced_blobs: HashSet<OsString>,
}

impl DiskSync {
    /// `dir` is sled's directory (holding `db` and `blobs/`).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            data_file: File::open(dir.join("db"))?,
            synced_blobs: HashSet::new(),
        })
    }

    /// fdatasync of the data file, fsync of unsynced blob files and of the
    /// directories.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.data_file.sync_data()?;
        let blobs = self.dir.join("blobs");
        let mut present = HashSet::new();
        let mut new_blobs = false;
        if let Ok(rd) = std::fs::read_dir(&blobs) {
            for e in rd.flatten() {
                let name = e.file_name();
                if !self.synced_blobs.contains(&name) {
                    // A blob collected meanwhile is fine to skip.
                    if let Ok(f) = File::open(e.path()) {
                        f.sync_all()?;
                    }
                    new_blobs = true;
                }
                present.insert(name);
            }
        }
        self.synced_blobs = present;
        if new_blobs {
            File::open(&blobs)?.sync_all()?;
        }
        Ok(())
    }
}

/// One sled flush plus [`DiskSync`]: everything inserted before the call is
/// durable when it returns.
async fn durable_flush(
    db: &sled::Db,
    disk: &Arc<parking_lot::Mutex<DiskSync>>,
) -> std::io::Result<()> {
    // One blocking-pool hop for both steps (sled's `flush_async` would add a
    // hop through sled's own thread pool).
    let (db, disk) = (db.clone(), disk.clone());
    tokio::task::spawn_blocking(move || {
        db.flush()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        disk.lock().sync()
    })
    .await
    .map_err(std::io::Error::other)?
}

struct Inner {
    db: sled::Db,
    disk: Arc<parking_lot::Mutex<DiskSync>>,
    /// index (u64 big-endian) -> bincode(Entry)
    log: sled::Tree,
    /// vote, committed, last purged log id
    meta: sled::Tree,
    flush_requests: mpsc::UnboundedSender<LogFlushed<TypeConfig>>,
}

fn index_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

impl LogStore {
    /// Opens the log trees of `db` (stored in `db_dir`) and starts the
    /// group-commit flusher.
    pub fn open(db: sled::Db, db_dir: &Path) -> crate::error::Result<Self> {
        let log = db.open_tree("raft_log")?;
        let meta = db.open_tree("raft_meta")?;
        let disk = Arc::new(parking_lot::Mutex::new(DiskSync::open(db_dir)?));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_flusher(db.clone(), disk.clone(), rx));
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                disk,
                log,
                meta,
                flush_requests: tx,
            }),
        })
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, StorageError> {
        match self
            .inner
            .meta
            .get(key)
            .map_err(|e| StorageIOError::read(&e))?
        {
            Some(v) => Ok(Some(
                bincode::deserialize(&v).map_err(|e| StorageIOError::read(&e))?,
            )),
            None => Ok(None),
        }
    }

    fn write_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), StorageError> {
        let v = bincode::serialize(value).map_err(|e| StorageIOError::write(&e))?;
        self.inner
            .meta
            .insert(key, v)
            .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }

    async fn flush(&self) -> Result<(), StorageError> {
        durable_flush(&self.inner.db, &self.inner.disk)
            .await
            .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }
}

/// Group commit: one `flush_async` for every callback queued so far.
async fn run_flusher(
    db: sled::Db,
    disk: Arc<parking_lot::Mutex<DiskSync>>,
    mut rx: mpsc::UnboundedReceiver<LogFlushed<TypeConfig>>,
) {
    let mut pending = Vec::new();
    while let Some(first) = rx.recv().await {
        pending.push(first);
        while let Ok(more) = rx.try_recv() {
            pending.push(more);
        }
        let result = durable_flush(&db, &disk).await;
        for cb in pending.drain(..) {
            match &result {
                Ok(_) => cb.log_io_completed(Ok(())),
                Err(e) => cb.log_io_completed(Err(std::io::Error::other(e.to_string()))),
            }
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end = match range.end_bound() {
            Bound::Included(&i) => Bound::Included(index_key(i)),
            Bound::Excluded(&i) => Bound::Excluded(index_key(i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut out = Vec::new();
        for kv in self
            .inner
            .log
            .range::<[u8; 8], _>((Bound::Included(index_key(start)), end))
        {
            let (_, v) = kv.map_err(|e| StorageIOError::read_logs(&e))?;
            let entry: Entry =
                bincode::deserialize(&v).map_err(|e| StorageIOError::read_logs(&e))?;
            out.push(entry);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged: Option<LogId> = self.read_meta(KEY_LAST_PURGED)?;
        let last = match self
            .inner
            .log
            .last()
            .map_err(|e| StorageIOError::read_logs(&e))?
        {
            Some((_, v)) => {
                let e: Entry =
                    bincode::deserialize(&v).map_err(|e| StorageIOError::read_logs(&e))?;
                Some(e.log_id)
            }
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_meta(KEY_VOTE, vote)?;
        durable_flush(&self.inner.db, &self.inner.disk)
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        self.read_meta(KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Not flushed: a lost `committed` is recomputed by the next leader.
        self.write_meta(KEY_COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.read_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let v = bincode::serialize(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            batch.insert(&index_key(entry.log_id.index), v);
        }
        self.inner
            .log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        // Readable now; durable (and acknowledged) after the next group flush.
        if let Err(mpsc::error::SendError(cb)) = self.inner.flush_requests.send(callback) {
            let r = self.flush().await;
            cb.log_io_completed(r.map_err(|e| std::io::Error::other(e.to_string())));
        }
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for kv in self.inner.log.range(index_key(log_id.index)..) {
            let (k, _) = kv.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(k);
        }
        self.inner
            .log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.flush().await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        self.write_meta(KEY_LAST_PURGED, &log_id)?;
        let mut batch = sled::Batch::default();
        for kv in self.inner.log.range(..=index_key(log_id.index)) {
            let (k, _) = kv.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(k);
        }
        self.inner
            .log
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.flush().await
    }
}
