//! The Raft log and vote, implementing openraft's [`RaftLogStorage`]
//! (storage-v2).
//!
//! The entries live in the [`journal`](super::journal)'s segment files: an
//! append is one record there, and its flush callback fires once the
//! journal's writer has synced it, one `fdatasync` for every append queued
//! meanwhile (group commit). The vote, the committed and the purge point are
//! in sled (`raft_meta`); the vote is durable (sled flush plus [`DiskSync`])
//! before `save_vote` returns.
//!
//! The newest entries are also kept in memory ([`RecentEntries`]):
//! replication and the state machine read them right after they are
//! appended, before the writer has even written them.
//!
//! sled's own flush is `sync_file_range` on Linux and never syncs the files it
//! keeps large values in (`blobs/`): it survives a process crash but not a
//! power loss. [`DiskSync`] closes that gap: after every sled flush it runs
//! `fdatasync` on sled's data file and fsyncs new blob files and the
//! directories, so "flushed" means on the device.

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt::Debug;
use std::fs::File;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::journal::{self, Done, Journal, Record};
use super::records::References;
use super::DbKeeper;
use openraft::storage::{IOFlushed, RaftLogStorage};
use openraft::{LogState, RaftLogReader};

use crate::types::{Entry, LogId, TypeConfig, Vote};

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

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
    /// Blob files synced so far, with the length they had then.
    synced_blobs: HashMap<OsString, u64>,
    /// `blobs/`'s modification time at the last scan, and when that scan
    /// started (see [`DiskSync::blobs_unchanged`]).
    blobs_scanned: Option<(SystemTime, SystemTime)>,
}

/// How long after the last change of `blobs/` its scan keeps being repeated
/// (see [`DiskSync::blobs_unchanged`]).
const BLOBS_SETTLE: Duration = Duration::from_secs(1);

impl DiskSync {
    /// `dir` is sled's directory (holding `db` and `blobs/`).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            data_file: File::open(dir.join("db"))?,
            synced_blobs: HashMap::new(),
            blobs_scanned: None,
        })
    }

    /// fdatasync of the data file, fsync of unsynced blob files and of the
    /// directories.
    pub fn sync(&mut self) -> std::io::Result<()> {
        self.data_file.sync_data()?;
        let blobs = self.dir.join("blobs");
        let mtime = std::fs::metadata(&blobs).and_then(|m| m.modified()).ok();
        if self.blobs_unchanged(mtime) {
            return Ok(());
        }
        let scan_started = SystemTime::now();
        let mut present = HashMap::new();
        let mut new_blobs = false;
        if let Ok(rd) = std::fs::read_dir(&blobs) {
            for e in rd.flatten() {
                let name = e.file_name();
                // A blob collected meanwhile is fine to skip.
                let Ok(len) = e.metadata().map(|m| m.len()) else {
                    continue;
                };
                // Synced again if it grew: it was still being written.
                if self.synced_blobs.get(&name) != Some(&len) {
                    if let Ok(f) = File::open(e.path()) {
                        f.sync_all()?;
                    }
                    new_blobs = true;
                }
                present.insert(name, len);
            }
        }
        self.synced_blobs = present;
        if new_blobs {
            File::open(&blobs)?.sync_all()?;
        }
        self.blobs_scanned = mtime.map(|m| (m, scan_started));
        Ok(())
    }

    /// Whether `blobs/` cannot have changed since the last scan, so the scan
    /// (open, getdents, close: ~25 us after every flush, on the commit path)
    /// can be skipped. A directory's mtime moves when a file is created in
    /// it, but in clock ticks, so a blob created just after a scan in the
    /// same tick leaves it unchanged: "unchanged" is trusted only once a scan
    /// started well after that tick (and the blobs it found were complete:
    /// sled writes a blob in one go).
    fn blobs_unchanged(&self, mtime: Option<SystemTime>) -> bool {
        match (mtime, self.blobs_scanned) {
            (Some(now), Some((seen, scan_started))) => {
                now == seen
                    && scan_started
                        .duration_since(seen)
                        .is_ok_and(|d| d > BLOBS_SETTLE)
            }
            _ => false,
        }
    }
}

/// One sled flush plus [`DiskSync`]: everything inserted before the call is
/// durable when it returns. Blocking.
fn sync_sled(db: &sled::Db, disk: &parking_lot::Mutex<DiskSync>) -> std::io::Result<()> {
    db.flush().map_err(io_err)?;
    disk.lock().sync()
}

/// [`sync_sled`] from async code.
async fn durable_flush(
    db: &sled::Db,
    disk: &Arc<parking_lot::Mutex<DiskSync>>,
) -> std::io::Result<()> {
    // One blocking-pool hop for both steps (sled's `flush_async` would add a
    // hop through sled's own thread pool).
    let (db, disk) = (db.clone(), disk.clone());
    tokio::task::spawn_blocking(move || sync_sled(&db, &disk))
        .await
        .map_err(std::io::Error::other)?
}

/// The newest entries, contiguous by index, about `RECENT_BYTES` of them,
/// each with its size and the number of the journal job that writes it.
#[derive(Default)]
struct RecentEntries {
    entries: VecDeque<(Entry, usize, u64)>,
    bytes: usize,
}

/// Bound of [`RecentEntries`]: a follower further behind reads from the
/// segment files. Entries the journal has yet to write stay whatever their
/// size (they cannot be read from anywhere else).
const RECENT_BYTES: usize = 32 * 1024 * 1024;

impl RecentEntries {
    fn first_index(&self) -> Option<u64> {
        self.entries.front().map(|(e, _, _)| e.log_id.index)
    }

    /// Adds `entry`, written by journal job `job`; `written`: the jobs the
    /// journal has written so far.
    fn push(&mut self, entry: Entry, size: usize, job: u64, written: u64) {
        let contiguous = match self.entries.back() {
            Some((last, _, _)) => last.log_id.index + 1 == entry.log_id.index,
            None => true,
        };
        if !contiguous {
            self.entries.clear();
            self.bytes = 0;
        }
        self.bytes += size;
        self.entries.push_back((entry, size, job));
        while self.bytes > RECENT_BYTES
            && self.entries.len() > 1
            && self.entries.front().is_some_and(|(_, _, j)| *j <= written)
        {
            if let Some((_, n, _)) = self.entries.pop_front() {
                self.bytes -= n;
            }
        }
    }

    /// Entries `start..end` if all of them are here.
    fn get(&self, start: u64, end: u64) -> Option<Vec<Entry>> {
        let first = self.first_index()?;
        let next = first + self.entries.len() as u64;
        if start < first || end > next {
            return None;
        }
        let from = (start - first) as usize;
        let to = (end.max(start) - first) as usize;
        Some(
            self.entries
                .range(from..to)
                .map(|(e, _, _)| e.clone())
                .collect(),
        )
    }

    /// Drops entries with index >= `index`.
    fn truncate(&mut self, index: u64) {
        while self
            .entries
            .back()
            .is_some_and(|(e, _, _)| e.log_id.index >= index)
        {
            if let Some((_, n, _)) = self.entries.pop_back() {
                self.bytes -= n;
            }
        }
    }

    /// Drops entries with index <= `index`.
    fn purge(&mut self, index: u64) {
        while self
            .entries
            .front()
            .is_some_and(|(e, _, _)| e.log_id.index <= index)
        {
            if let Some((_, n, _)) = self.entries.pop_front() {
                self.bytes -= n;
            }
        }
    }
}

struct Inner {
    db: sled::Db,
    /// Closes the database off the runtime (see [`DbKeeper`]).
    _keeper: Arc<DbKeeper>,
    recent: parking_lot::Mutex<RecentEntries>,
    disk: Arc<parking_lot::Mutex<DiskSync>>,
    /// vote, committed, last purged log id
    meta: sled::Tree,
    /// The entries themselves (see [`journal`]).
    journal: Journal,
    /// Highest index the purger is to delete up to (openraft's purge point).
    purge_requests: tokio::sync::watch::Sender<Option<u64>>,
}

/// The sled tree that held the entries before the journal did.
const OLD_LOG_TREE: &str = "raft_log";

impl LogStore {
    /// Opens the log of `db` (stored in `db_dir`; the entries are in the
    /// journal's segments beside it, in `journal/`), starts the journal's
    /// writer and the purger, which keeps every entry the state machine
    /// still `refs` to. Blocking (reads every segment); must run inside a
    /// tokio runtime.
    pub(crate) fn open(
        db: sled::Db,
        db_dir: &Path,
        refs: References,
        segment_bytes: u64,
        spare_bytes: u64,
    ) -> crate::error::Result<Self> {
        let meta = db.open_tree("raft_meta")?;
        let disk = Arc::new(parking_lot::Mutex::new(DiskSync::open(db_dir)?));
        let keeper = DbKeeper::new(&db);
        let journal = Journal::open(
            &db_dir.with_file_name("journal"),
            segment_bytes,
            spare_bytes,
        )?;
        migrate_old_log(&db, &disk, &journal)?;
        let (purge_tx, purge_rx) = tokio::sync::watch::channel(None);
        tokio::spawn(run_purger(
            journal.segments().clone(),
            db.clone(),
            disk.clone(),
            keeper.clone(),
            purge_rx,
            refs,
        ));
        let store = Self {
            inner: Arc::new(Inner {
                db,
                _keeper: keeper,
                recent: parking_lot::Mutex::new(RecentEntries::default()),
                disk,
                meta,
                journal,
                purge_requests: purge_tx,
            }),
        };
        // Finishes a purge a crash interrupted.
        if let Some(purged) = store.read_meta::<LogId>(KEY_LAST_PURGED)? {
            store.inner.purge_requests.send_replace(Some(purged.index));
        }
        Ok(store)
    }

    /// Writes `record` to the journal and waits until it is durable.
    async fn journal(&self, record: Record) -> Result<(), std::io::Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self.inner.journal.write(record, Done::Wait(tx)).is_err() {
            return Err(io_err("the raft log journal's writer stopped"));
        }
        rx.await
            .map_err(|_| io_err("the raft log journal's writer stopped"))?
    }

    fn read_meta<T: serde::de::DeserializeOwned>(
        &self,
        key: &[u8],
    ) -> Result<Option<T>, std::io::Error> {
        match self.inner.meta.get(key).map_err(io_err)? {
            Some(v) => Ok(Some(bincode::deserialize(&v).map_err(io_err)?)),
            None => Ok(None),
        }
    }

    fn write_meta<T: serde::Serialize>(&self, key: &[u8], value: &T) -> Result<(), std::io::Error> {
        let v = bincode::serialize(value).map_err(io_err)?;
        self.inner.meta.insert(key, v).map_err(io_err)?;
        Ok(())
    }

    /// The lowest index still stored, purged or not.
    #[cfg(test)]
    pub(crate) fn first_stored_index(&self) -> Option<u64> {
        self.inner.journal.segments().first_index()
    }

    /// The lowest index `p` such that the stored entries in `p + 1..=upto`
    /// hold at least `budget` bytes, looking back at most `max_entries`
    /// entries; `None` when those entries hold less.
    pub(crate) fn keep_bytes_from(
        &self,
        upto: u64,
        budget: u64,
        max_entries: u64,
    ) -> crate::error::Result<Option<u64>> {
        let mut kept = 0u64;
        let max = usize::try_from(max_entries).unwrap_or(usize::MAX);
        for (index, len) in self.inner.journal.segments().lengths_down_from(upto, max) {
            kept += len;
            if kept >= budget {
                return Ok(Some(index.saturating_sub(1)));
            }
        }
        Ok(None)
    }

    /// Waits until every entry up to `index` is on disk (see
    /// [`journal::Journal::durable`]).
    pub(crate) async fn durable(&self, index: u64) -> std::io::Result<()> {
        self.inner.journal.durable(index).await
    }

    /// The entry at `index`, purged or not, as long as it is still stored
    /// (the state machine reads the payloads its chunks refer to through
    /// this). Blocking when the entry is no longer in memory.
    pub(crate) fn entry(&self, index: u64) -> crate::error::Result<Option<Entry>> {
        if let Some(mut one) = self.inner.recent.lock().get(index, index + 1) {
            return Ok(one.pop());
        }
        match self.inner.journal.segments().read(index)? {
            Some(v) => Ok(Some(bincode::deserialize(&v)?)),
            None => Ok(None),
        }
    }
}

/// Deletes purged entries in the background: openraft runs `purge` inside
/// its core task, which must not wait for disk work. Entries the state
/// machine still refers to stay (whatever openraft purged): the purge stops
/// below the first of them, and goes on when the state machine releases
/// some. A segment file goes only once the purge point is durable in sled,
/// or a crash could bring back a log whose first entries are missing.
async fn run_purger(
    segments: Arc<journal::Segments>,
    db: sled::Db,
    disk: Arc<parking_lot::Mutex<DiskSync>>,
    _keeper: Arc<DbKeeper>,
    mut requests: tokio::sync::watch::Receiver<Option<u64>>,
    refs: References,
) {
    loop {
        tokio::select! {
            changed = requests.changed() => if changed.is_err() { return },
            _ = refs.released() => {}
        }
        // Read before the refs: an entry referred to later than this was
        // applied after openraft's purge point, so it is above `upto`.
        let Some(upto) = *requests.borrow_and_update() else {
            continue;
        };
        let (segments, db, disk, refs) = (segments.clone(), db.clone(), disk.clone(), refs.clone());
        let done = tokio::task::spawn_blocking(move || -> crate::error::Result<usize> {
            let end = match refs.first_index()? {
                Some(referenced) => referenced.min(upto + 1),
                None => upto + 1,
            };
            let gone = segments.forget_below(end);
            let n = gone.len();
            if n > 0 {
                sync_sled(&db, &disk)?;
                segments.delete(gone)?;
            }
            Ok(n)
        })
        .await;
        match done {
            Ok(Ok(n)) => tracing::debug!(upto, segments = n, "purged raft log entries"),
            Ok(Err(e)) => tracing::error!("purging raft log entries: {e}"),
            Err(e) => tracing::error!("raft log purger task: {e}"),
        }
    }
}

/// Moves the entries of a log written before the journal existed (kept in
/// sled's `raft_log` tree) into the journal, then empties the tree. A crash
/// midway moves them again at the next open: the same entries under the
/// same indexes. Blocking.
fn migrate_old_log(
    db: &sled::Db,
    disk: &Arc<parking_lot::Mutex<DiskSync>>,
    journal: &Journal,
) -> crate::error::Result<()> {
    let old = db.open_tree(OLD_LOG_TREE)?;
    if old.is_empty() {
        return Ok(());
    }
    let mut moved = 0usize;
    let mut record = Record::entries();
    let mut bytes = 0usize;
    let mut iter = old.iter().peekable();
    while let Some(kv) = iter.next() {
        let (k, v) = kv?;
        let index = u64::from_be_bytes(k.as_ref().try_into().map_err(io_err)?);
        record.push_entry(index, &v);
        bytes += v.len();
        moved += 1;
        if bytes >= 8 * 1024 * 1024 || iter.peek().is_none() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if journal.write(record, Done::Wait(tx)).is_err() {
                return Err(io_err("the raft log writer stopped").into());
            }
            rx.blocking_recv()
                .map_err(|_| io_err("the raft log writer stopped"))??;
            record = Record::entries();
            bytes = 0;
        }
    }
    old.clear()?;
    sync_sled(db, disk)?;
    tracing::info!(
        entries = moved,
        "moved the raft log from sled into its segment files"
    );
    Ok(())
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, std::io::Error> {
        let start = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let end_index = match range.end_bound() {
            Bound::Included(&i) => Some(i.saturating_add(1)),
            Bound::Excluded(&i) => Some(i),
            Bound::Unbounded => None,
        };
        // The newest entries from memory (those the writer has yet to
        // write are only there), anything older from the segments.
        let (recent_first, newest) = {
            let recent = self.inner.recent.lock();
            match recent.first_index() {
                Some(first) if end_index.is_none_or(|e| e > first) => {
                    let next = first + recent.entries.len() as u64;
                    let to = end_index.map_or(next, |e| e.min(next));
                    let from = start.max(first);
                    (
                        Some(first),
                        recent.get(from, to.max(from)).unwrap_or_default(),
                    )
                }
                first => (first, Vec::new()),
            }
        };
        let older_end = match (recent_first, end_index) {
            (Some(f), Some(e)) => e.min(f),
            (Some(f), None) => f,
            (None, Some(e)) => e,
            (None, None) => u64::MAX,
        };
        let mut out = Vec::new();
        if start < older_end {
            let segments = self.inner.journal.segments();
            for index in segments.indexes(start..older_end) {
                // Gone meanwhile (purged or truncated): the range ends here.
                let Some(v) = segments.read(index)? else {
                    break;
                };
                out.push(bincode::deserialize::<Entry>(&v).map_err(io_err)?);
            }
        }
        out.extend(newest);
        Ok(out)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, std::io::Error> {
        self.read_meta(KEY_VOTE)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, std::io::Error> {
        let last_purged: Option<LogId> = self.read_meta(KEY_LAST_PURGED)?;
        let last_index = self.inner.journal.segments().last_index();
        let last_entry = match last_index {
            Some(i) => self.entry(i).map_err(io_err)?,
            None => None,
        };
        let last = match last_entry {
            Some(e) => {
                // Entries the purger has yet to delete (purged before a
                // crash, replayed from the journal) are not the log's end.
                Some(e.log_id).max(last_purged)
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

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), std::io::Error> {
        self.write_meta(KEY_VOTE, vote)?;
        durable_flush(&self.inner.db, &self.inner.disk)
            .await
            .map_err(io_err)?;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), std::io::Error> {
        // Not flushed: a lost `committed` is recomputed by the next leader.
        self.write_meta(KEY_COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, std::io::Error> {
        let Some(committed) = self.read_meta::<Option<LogId>>(KEY_COMMITTED)?.flatten() else {
            return Ok(None);
        };
        // sled may have kept a `committed` newer than what the log synced
        // before a crash (they are separate files): trusted only if the log
        // holds that very entry, else recomputed by the leader.
        match self.entry(committed.index).map_err(io_err)? {
            Some(e) if e.log_id == committed => Ok(Some(committed)),
            _ => Ok(None),
        }
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: IOFlushed<TypeConfig>,
    ) -> Result<(), std::io::Error>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut record = Record::entries();
        let mut batch = Vec::new();
        for entry in entries {
            let v = bincode::serialize(&entry).map_err(io_err)?;
            let size = v.len();
            record.push_entry(entry.log_id.index, &v);
            batch.push((entry, size));
        }
        // Durable (and acknowledged) once the journal synced it.
        let job = match self.inner.journal.write(record, Done::Raft(callback)) {
            Ok(job) => job,
            Err(done) => {
                done.complete_with(Err(io_err("the raft log writer stopped")));
                return Ok(());
            }
        };
        // Readable from here until the journal has written them.
        let written = self.inner.journal.written();
        let mut recent = self.inner.recent.lock();
        for (entry, size) in batch {
            recent.push(entry, size, job, written);
        }
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogId>) -> Result<(), std::io::Error> {
        let from = last_log_id.map_or(0, |l| l.index + 1);
        self.inner.recent.lock().truncate(from);
        self.journal(Record::truncate(from)).await
    }

    /// Records the purge point and leaves the deletes to the purger. Not
    /// flushed while the log holds an entry at or past it: openraft never
    /// reads below the purge point, and an entry that comes back after a
    /// crash is deleted again. Past the log's end (a snapshot installed
    /// beyond what this node had) the purge point is all that says where
    /// the log goes on: entries appended after it, over a hole, must never
    /// meet a purge point that a crash took back (sled flushes on its own
    /// only every half second; the journal's syncs do not flush it), so it
    /// is flushed first, as a vote is.
    async fn purge(&mut self, log_id: LogId) -> Result<(), std::io::Error> {
        self.write_meta(KEY_LAST_PURGED, &log_id)?;
        let past_end = self
            .inner
            .journal
            .segments()
            .last_index()
            .is_none_or(|last| last < log_id.index);
        if past_end {
            durable_flush(&self.inner.db, &self.inner.disk)
                .await
                .map_err(io_err)?;
        }
        self.inner.recent.lock().purge(log_id.index);
        self.inner.purge_requests.send_replace(Some(log_id.index));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use openraft::EntryPayload;

    use super::*;

    /// A log store on a new sled database in `db_dir`, with the database
    /// and references it was opened with (to open it again).
    fn open_store(db_dir: &Path) -> (sled::Db, References, LogStore) {
        let db = sled::open(db_dir).expect("sled");
        let refs = References::new(db.open_tree("sm").expect("sm"));
        let store = reopen_store(&db, db_dir, &refs);
        (db, refs, store)
    }

    fn reopen_store(db: &sled::Db, db_dir: &Path, refs: &References) -> LogStore {
        LogStore::open(
            db.clone(),
            db_dir,
            refs.clone(),
            journal::SEGMENT_BYTES,
            journal::SPARE_BYTES,
        )
        .expect("open")
    }
    use crate::types::test_log_id;

    fn entry(index: u64) -> Entry {
        Entry {
            log_id: test_log_id(index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(v: Option<Vec<Entry>>) -> Option<Vec<u64>> {
        v.map(|v| v.iter().map(|e| e.log_id.index).collect())
    }

    /// Sets `blobs/`'s mtime `ago` into the past (as if last changed then).
    fn age_blobs_dir(dir: &Path, ago: Duration) -> SystemTime {
        let t = SystemTime::now() - ago;
        File::open(dir.join("blobs"))
            .and_then(|f| f.set_modified(t))
            .expect("set mtime");
        std::fs::metadata(dir.join("blobs"))
            .and_then(|m| m.modified())
            .expect("mtime")
    }

    #[test]
    fn disk_sync_scans_blobs_until_they_settle_and_syncs_new_and_grown_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("db"), b"x").expect("db");
        std::fs::create_dir(dir.path().join("blobs")).expect("blobs");
        let mut d = DiskSync::open(dir.path()).expect("open");
        d.sync().expect("sync");
        // Changed just now: not trusted yet, scanned every time.
        let now = std::fs::metadata(dir.path().join("blobs"))
            .and_then(|m| m.modified())
            .ok();
        assert!(!d.blobs_unchanged(now));
        std::fs::write(dir.path().join("blobs/1"), b"ab").expect("blob");
        d.sync().expect("sync");
        assert_eq!(d.synced_blobs.get(std::ffi::OsStr::new("1")), Some(&2));
        // Last changed long before the last scan: skipped.
        let old = age_blobs_dir(dir.path(), Duration::from_secs(5));
        d.sync().expect("sync");
        assert!(d.blobs_unchanged(Some(old)));
        // A new blob moves the mtime: scanned (and synced) again; a blob
        // that grew since it was synced is synced again.
        std::fs::write(dir.path().join("blobs/1"), b"abcd").expect("grow");
        std::fs::write(dir.path().join("blobs/2"), b"c").expect("blob");
        d.sync().expect("sync");
        assert_eq!(d.synced_blobs.get(std::ffi::OsStr::new("1")), Some(&4));
        assert_eq!(d.synced_blobs.get(std::ffi::OsStr::new("2")), Some(&1));
    }

    #[test]
    fn recent_entries_serve_only_ranges_they_hold() {
        let mut r = RecentEntries::default();
        assert_eq!(indexes(r.get(1, 2)), None);
        for i in 5..=9 {
            r.push(entry(i), 10, 0, 0);
        }
        assert_eq!(indexes(r.get(5, 10)), Some(vec![5, 6, 7, 8, 9]));
        assert_eq!(indexes(r.get(7, 9)), Some(vec![7, 8]));
        assert_eq!(indexes(r.get(7, 7)), Some(vec![]));
        assert_eq!(indexes(r.get(4, 6)), None, "starts before the first");
        assert_eq!(indexes(r.get(8, 11)), None, "ends after the last");

        r.truncate(8);
        assert_eq!(indexes(r.get(5, 8)), Some(vec![5, 6, 7]));
        assert_eq!(indexes(r.get(5, 9)), None);
        r.push(entry(8), 10, 0, 0);
        assert_eq!(indexes(r.get(7, 9)), Some(vec![7, 8]));

        r.purge(6);
        assert_eq!(r.first_index(), Some(7));
        assert_eq!(r.bytes, 20);

        // A gap (or an overwrite without truncate) starts over.
        r.push(entry(20), 10, 0, 0);
        assert_eq!(r.first_index(), Some(20));
        assert_eq!(r.bytes, 10);
        r.push(entry(20), 10, 0, 0);
        assert_eq!(indexes(r.get(20, 21)), Some(vec![20]));
    }

    #[tokio::test]
    async fn purge_returns_at_once_and_the_purger_deletes_in_the_background() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_dir = dir.path().join("db");
        let (db, refs, mut store) = open_store(&db_dir);
        append_durably(&mut store, (1..=100).map(entry).collect()).await;
        store.purge(entry(60).log_id).await.expect("purge");
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id.map(|l| l.index), Some(60));
        assert_eq!(state.last_log_id.map(|l| l.index), Some(100));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.first_stored_index() != Some(61) {
            assert!(std::time::Instant::now() < deadline, "purger never ran");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let entries = store.try_get_log_entries(61..=100).await.expect("read");
        assert_eq!(entries.len(), 40);

        // A purge recorded but not carried out (a crash) finishes at open.
        store
            .inner
            .meta
            .insert(
                KEY_LAST_PURGED,
                bincode::serialize(&entry(80).log_id).expect("ser"),
            )
            .expect("meta");
        drop(store);
        let store = reopen_store(&db, &db_dir, &refs);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.first_stored_index() != Some(81) {
            assert!(
                std::time::Instant::now() < deadline,
                "purge not finished at open"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn keep_bytes_from_finds_the_purge_point_that_keeps_a_byte_budget() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_dir = dir.path().join("db");
        let (_db, _refs, mut store) = open_store(&db_dir);
        append_durably(&mut store, (1..=100).map(entry).collect()).await;
        let one = bincode::serialize(&entry(1)).expect("ser").len() as u64;
        // Entries 91..=100 hold 10 entries' bytes.
        assert_eq!(
            store.keep_bytes_from(100, 10 * one, 1000).expect("scan"),
            Some(90)
        );
        assert_eq!(
            store
                .keep_bytes_from(100, 10 * one - 1, 1000)
                .expect("scan"),
            Some(90)
        );
        assert_eq!(
            store
                .keep_bytes_from(100, 10 * one + 1, 1000)
                .expect("scan"),
            Some(89)
        );
        // Counted back from the snapshot, not from the last entry.
        assert_eq!(
            store.keep_bytes_from(50, 10 * one, 1000).expect("scan"),
            Some(40)
        );
        // Fewer bytes than the budget, or more entries than may be looked at.
        assert_eq!(
            store.keep_bytes_from(100, 101 * one, 1000).expect("scan"),
            None
        );
        assert_eq!(store.keep_bytes_from(100, 10 * one, 5).expect("scan"), None);
    }

    #[tokio::test]
    async fn the_purger_keeps_entries_the_state_machine_refers_to() {
        use crate::store::records::{one_record_ref, ref_key};
        let dir = tempfile::tempdir().expect("tempdir");
        let db_dir = dir.path().join("db");
        let db = sled::open(&db_dir).expect("sled");
        let sm = db.open_tree("sm").expect("sm");
        let refs = References::new(sm.clone());
        let mut store = reopen_store(&db, &db_dir, &refs);
        append_durably(&mut store, (1..=100).map(entry).collect()).await;
        sm.insert(ref_key("l", 5), one_record_ref(70)).expect("ref");
        store.purge(entry(90).log_id).await.expect("purge");
        let wait_first = |want: u64| {
            let store = store.clone();
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while store.first_stored_index() != Some(want) {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "first stored {:?}, want {want}",
                        store.first_stored_index()
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        wait_first(70).await;
        assert!(store.entry(70).expect("read").is_some());
        // Released: the purge goes on up to openraft's purge point.
        sm.remove(ref_key("l", 5)).expect("remove");
        refs.release();
        wait_first(91).await;
        assert!(store.entry(90).expect("read").is_none());
    }

    fn entry_of_term(term: u64, index: u64) -> Entry {
        Entry {
            log_id: LogId::new(
                openraft::impls::leader_id_adv::LeaderId { term, node_id: 1 },
                index,
            ),
            payload: EntryPayload::Blank,
        }
    }

    /// Appends and waits for the flush callback, as openraft does before
    /// it counts the entries as on this node's disk.
    async fn append_durably(store: &mut LogStore, entries: Vec<Entry>) {
        use openraft::type_config::TypeConfigExt;
        let (tx, rx) = TypeConfig::oneshot();
        store
            .append(entries, IOFlushed::signal(tx))
            .await
            .expect("append");
        rx.await.expect("callback").expect("durable");
    }

    #[tokio::test]
    async fn acknowledged_appends_and_truncations_come_back_from_the_journal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_dir = dir.path().join("node/db");
        let (_db, _refs, mut store) = open_store(&db_dir);
        append_durably(&mut store, (1..=10).map(|i| entry_of_term(1, i)).collect()).await;
        store
            .truncate_after(Some(entry_of_term(1, 7).log_id))
            .await
            .expect("truncate");
        append_durably(&mut store, (8..=9).map(|i| entry_of_term(2, i)).collect()).await;

        // The segments as synced above, opened with a sled that kept
        // nothing (a crash before sled's own flush): the log is all there.
        let copy = dir.path().join("copy");
        std::fs::create_dir_all(copy.join("journal")).expect("mkdir");
        for e in std::fs::read_dir(dir.path().join("node/journal")).expect("ls") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), copy.join("journal").join(e.file_name())).expect("copy");
        }
        let copy_db = copy.join("db");
        let (_db, _refs, mut recovered) = open_store(&copy_db);
        let got: Vec<(u64, u64)> = recovered
            .try_get_log_entries(0..)
            .await
            .expect("read")
            .iter()
            .map(|e| (e.log_id.leader_id.term, e.log_id.index))
            .collect();
        let mut want: Vec<(u64, u64)> = (1..=7).map(|i| (1, i)).collect();
        want.extend([(2, 8), (2, 9)]);
        assert_eq!(got, want);
        let state = recovered.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(entry_of_term(2, 9).log_id));
    }

    #[tokio::test]
    async fn a_range_spans_the_segments_and_entries_not_yet_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_dir = dir.path().join("db");
        let (db, refs, mut store) = open_store(&db_dir);
        append_durably(&mut store, (1..=10).map(entry).collect()).await;
        drop(store);
        // Reopened: 1..=10 only in the segments; 11..=12 in memory, maybe
        // not written yet (no wait for the callback), as when openraft
        // applies right after an append.
        let mut store = reopen_store(&db, &db_dir, &refs);
        store
            .append((11..=12).map(entry), IOFlushed::noop())
            .await
            .expect("append");
        for (range, want) in [
            (1..13, (1..=12).collect::<Vec<u64>>()),
            (5..12, (5..=11).collect()),
            (11..13, vec![11, 12]),
            (3..6, vec![3, 4, 5]),
        ] {
            let got = store
                .try_get_log_entries(range.clone())
                .await
                .expect("read");
            assert_eq!(
                got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
                want,
                "{range:?}"
            );
        }
        let all = store.try_get_log_entries(1..).await.expect("read");
        assert_eq!(all.len(), 12);
    }

    #[tokio::test]
    async fn a_stored_committed_counts_only_if_the_log_holds_that_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_dir = dir.path().join("db");
        let (_db, _refs, mut store) = open_store(&db_dir);
        append_durably(&mut store, (1..=5).map(|i| entry_of_term(2, i)).collect()).await;
        store
            .save_committed(Some(entry_of_term(2, 4).log_id))
            .await
            .expect("save");
        assert_eq!(
            store.read_committed().await.expect("read"),
            Some(entry_of_term(2, 4).log_id)
        );
        // Written to sled, but the log lost the entry (a crash before its
        // sync) or holds another one at that index: recomputed instead.
        for lost in [entry_of_term(2, 9), entry_of_term(1, 4)] {
            store.save_committed(Some(lost.log_id)).await.expect("save");
            assert_eq!(store.read_committed().await.expect("read"), None);
        }
    }

    #[test]
    fn a_log_kept_in_sled_moves_into_the_segments_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db_dir = dir.path().join("db");
        let db = sled::open(&db_dir).expect("sled");
        // As a node before the journal kept its log.
        let old = db.open_tree(OLD_LOG_TREE).expect("tree");
        for i in 1..=20u64 {
            let v = bincode::serialize(&entry_of_term(1, i)).expect("ser");
            old.insert(i.to_be_bytes(), v).expect("insert");
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _guard = rt.enter();
        let refs = References::new(db.open_tree("sm").expect("sm"));
        let mut store = reopen_store(&db, &db_dir, &refs);
        assert!(old.is_empty(), "moved out of sled");
        let state = rt.block_on(store.get_log_state()).expect("state");
        assert_eq!(state.last_log_id, Some(entry_of_term(1, 20).log_id));
        drop(store);
        // And stays moved: the next open reads it from the segments.
        let mut store = reopen_store(&db, &db_dir, &refs);
        let got = rt
            .block_on(store.try_get_log_entries(1..=20))
            .expect("read");
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            (1..=20).collect::<Vec<_>>()
        );
    }

    #[test]
    fn recent_entries_stay_within_their_byte_bound() {
        let mut r = RecentEntries::default();
        let size = RECENT_BYTES / 4;
        for i in 1..=10 {
            r.push(entry(i), size, 0, 0);
        }
        assert!(r.bytes <= RECENT_BYTES);
        assert_eq!(r.first_index(), Some(7));
        assert_eq!(indexes(r.get(7, 11)), Some(vec![7, 8, 9, 10]));
    }
}
