//! The transaction log's state machine: the named logs themselves, kept in
//! sled, implementing openraft's [`RaftStateMachine`] (storage-v2).
//!
//! Layout of the `sm` tree:
//! - `s`                         -> [`Cache`]: last applied Raft log id,
//!   membership and every named log's [`LogMeta`], in one value
//! - `r` len(name) name lsn(BE)  -> [`ChunkRef`]: the entries of one append
//!   (or one leadership entry), the first of which has LSN `lsn`: their
//!   epoch, kind and checksums, and the Raft log entry holding their
//!   payloads (see [`super::records`])
//! - `e` len(name) name lsn(BE)  -> [`RecordChunk`](crate::types::RecordChunk):
//!   the same with the payloads themselves (loaded from a snapshot, or
//!   stored before refs)
//!
//! No sled batch or transaction is ever used: the first `apply_batch` in a
//! process switches sled to a global reader-writer lock, after which every
//! batch waits for any running flush (a disk sync) and every read waits for
//! that batch, which serialised the whole write path behind each fsync.
//! Plain inserts are enough: sled recovers a prefix of its operations, and
//! `apply` writes an entry's records before the `s` value that covers them,
//! so after a crash either the new `s` is there with everything before it,
//! or the old `s` is, and re-applying the entries (deterministic) writes the
//! same records under the same keys again. The state machine is not flushed
//! on apply at all: the Raft log is the durable copy. Its entries live in
//! files of their own, not in this sled database, so `apply` first waits
//! until the entries it applies are synced there (openraft may apply an
//! entry the other nodes committed before this node's own sync of it): sled
//! can never hold records referring to entries a crash could take away.
//!
//! Trimming only moves a log's `first_lsn`; a background task deletes the
//! trimmed records later, never while a snapshot is being written (the
//! snapshot builder holds `gc_lock` for reading).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use futures::StreamExt;
use openraft::storage::{EntryResponder, RaftStateMachine};
use openraft::EntryPayload;
use parking_lot::RwLock;
use tokio::sync::{watch, Notify};

use super::log_storage::LogStore;
use super::records::{self, chunk_len, inline_key, ref_key, ChunkReader, ChunkRef, References};
use super::snapshot::{self, Header, SnapshotInfo};
use super::snapshot_file::SnapshotFile;
use crate::error::{Result, TxlogError};
use crate::types::{
    chain_checksum, EntryKind, LogId, LogMeta, LogRecord, Op, OpResult, Response, Snapshot,
    SnapshotMeta, StoredMembership, TypeConfig, MAX_LOGS,
};

const KEY_STATE: &[u8] = b"s";
// The layout before KEY_STATE, still read at open.
const KEY_APPLIED: &[u8] = b"a";
const KEY_MEMBERSHIP: &[u8] = b"b";
/// The snapshot file written last (a [`SnapshotInfo`]).
pub(crate) const CONTROL_CURRENT: &[u8] = b"current_snapshot";
/// The [`snapshot::Header`] of the current snapshot.
pub(crate) const CONTROL_DESCRIPTOR: &[u8] = b"snapshot_descriptor";
const CONTROL_INSTALLING: &[u8] = b"installing_snapshot";

/// The small metadata of the state machine: kept in memory and stored whole
/// under `s` after every apply.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Cache {
    pub last_applied: Option<LogId>,
    pub membership: StoredMembership,
    pub logs: BTreeMap<String, LogMeta>,
}

pub(crate) struct Shared {
    pub db: sled::Db,
    /// Closes the database off the runtime (see [`super::DbKeeper`]).
    _keeper: Arc<super::DbKeeper>,
    pub tree: sled::Tree,
    pub control: sled::Tree,
    /// The Raft log, which holds the payloads of the chunks that refer to it.
    pub raft: LogStore,
    /// Tells the Raft log's purger when chunks that refer to it are deleted.
    pub refs: References,
    pub cache: RwLock<Cache>,
    /// Bumped after every apply or snapshot install; tailers wait on it.
    pub applied_tx: watch::Sender<u64>,
    /// Guards entry records: readers (tailers, the snapshot builder) share
    /// it; the trimmed-record collector and snapshot installs take it alone.
    pub gc_lock: Arc<tokio::sync::RwLock<()>>,
    pub gc_notify: Arc<Notify>,
    pub snapshot_dir: PathBuf,
    /// Payload bytes applied since the last snapshot was built: a snapshot
    /// (and the purge of the Raft log behind it) is due by size too, not only
    /// by entry count, since one group commit can carry megabytes.
    pub applied_bytes: Arc<AtomicU64>,
    /// A trim was applied since the last snapshot: the next snapshot lets
    /// the Raft log behind the trim point go.
    pub trimmed: Arc<AtomicBool>,
}

/// The state machine handed to openraft.
pub struct StateMachineStore {
    pub(crate) shared: Arc<Shared>,
}

/// A read-only view of the named logs, for tailers and status queries.
#[derive(Clone)]
pub struct LogsView {
    shared: Arc<Shared>,
}

/// Entries read for a tailer.
#[derive(Debug)]
pub enum ReadResult {
    Entries(Vec<(u64, LogRecord)>),
    /// `from` is below the trim point.
    Truncated {
        first_retained: u64,
    },
}

fn io_err(e: impl std::fmt::Display) -> TxlogError {
    TxlogError::Io(std::io::Error::other(e.to_string()))
}

impl StateMachineStore {
    /// Opens the state machine in `db`, finishing an interrupted snapshot
    /// install first, and starts the trimmed-record collector. `raft` is
    /// the node's Raft log; `refs` must be made on [`StateMachineStore::tree`].
    pub(crate) async fn open(
        db: sled::Db,
        snapshot_dir: PathBuf,
        raft: LogStore,
        refs: References,
    ) -> Result<Self> {
        tokio::fs::create_dir_all(&snapshot_dir).await?;
        let tree = Self::tree(&db)?;
        let control = db.open_tree("sm_control")?;
        {
            let (tree, control, db, dir) = (
                tree.clone(),
                control.clone(),
                db.clone(),
                snapshot_dir.clone(),
            );
            tokio::task::spawn_blocking(move || -> Result<()> {
                if let Some(v) = control.get(CONTROL_INSTALLING)? {
                    let info: SnapshotInfo = bincode::deserialize(&v)?;
                    tracing::warn!(file = %info.file, "finishing interrupted snapshot install");
                    let header = load_snapshot_file(&tree, &dir.join(&info.file))?;
                    control.insert(CONTROL_DESCRIPTOR, bincode::serialize(&header)?)?;
                    control.insert(CONTROL_CURRENT, v)?;
                    control.remove(CONTROL_INSTALLING)?;
                    db.flush()?;
                }
                remove_stale_snapshot_files(&control, &dir, true);
                Ok(())
            })
            .await
            .map_err(io_err)??;
        }
        let cache = load_cache(&tree)?;
        let (applied_tx, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            _keeper: super::DbKeeper::new(&db),
            db,
            tree,
            control,
            raft,
            refs,
            cache: RwLock::new(cache),
            applied_tx,
            gc_lock: Arc::new(tokio::sync::RwLock::new(())),
            gc_notify: Arc::new(Notify::new()),
            snapshot_dir,
            applied_bytes: Arc::default(),
            trimmed: Arc::default(),
        });
        tokio::spawn(run_collector(
            Arc::downgrade(&shared),
            shared.gc_notify.clone(),
        ));
        shared.gc_notify.notify_one();
        Ok(Self { shared })
    }

    /// The tree holding the state machine in `db`.
    pub(crate) fn tree(db: &sled::Db) -> Result<sled::Tree> {
        Ok(db.open_tree("sm")?)
    }

    /// Payload bytes applied since the last snapshot (see
    /// `Shared::applied_bytes`).
    pub fn applied_bytes(&self) -> (Arc<AtomicU64>, Arc<AtomicBool>) {
        (
            self.shared.applied_bytes.clone(),
            self.shared.trimmed.clone(),
        )
    }

    /// A read handle on the named logs.
    pub fn view(&self) -> LogsView {
        LogsView {
            shared: self.shared.clone(),
        }
    }
}

fn load_cache(tree: &sled::Tree) -> Result<Cache> {
    if let Some(v) = tree.get(KEY_STATE)? {
        return Ok(bincode::deserialize(&v)?);
    }
    let mut cache = Cache::default();
    if let Some(v) = tree.get(KEY_APPLIED)? {
        cache.last_applied = bincode::deserialize(&v)?;
    }
    if let Some(v) = tree.get(KEY_MEMBERSHIP)? {
        cache.membership = bincode::deserialize(&v)?;
    }
    for kv in tree.scan_prefix(b"m") {
        let (k, v) = kv?;
        let name = String::from_utf8_lossy(&k[1..]).into_owned();
        cache.logs.insert(name, bincode::deserialize(&v)?);
    }
    Ok(cache)
}

/// Deletes snapshot files other than the current one; files being written
/// or received (`.tmp`, `.part`) only with `partial` (at open).
pub(crate) fn remove_stale_snapshot_files(control: &sled::Tree, dir: &Path, partial: bool) {
    let current = control
        .get(CONTROL_CURRENT)
        .ok()
        .flatten()
        .and_then(|v| bincode::deserialize::<SnapshotInfo>(&v).ok())
        .map(|i| i.file);
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let in_progress = name.ends_with(".tmp") || name.ends_with(".part");
        if Some(&name) != current.as_ref() && (partial || !in_progress) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Replaces the whole state machine with the content of a snapshot file.
///
/// Not atomic by itself: the caller marks the install in the control tree
/// first and finishes it at open after a crash. The `s` value goes last.
/// Returns the snapshot's header (its descriptor).
pub(crate) fn load_snapshot_file(tree: &sled::Tree, path: &Path) -> Result<Header> {
    let mut reader = snapshot::Reader::open(path)?;
    tree.clear()?;
    let header = &reader.header;
    let state = Cache {
        last_applied: header.meta.last_log_id,
        membership: header.meta.last_membership.clone(),
        logs: header.logs.iter().cloned().collect(),
    };
    let names: Vec<String> = header.logs.iter().map(|(n, _)| n.clone()).collect();
    while let Some(rec) = reader.next_record()? {
        let name = names
            .get(rec.log as usize)
            .ok_or_else(|| TxlogError::Invalid("snapshot record names no log".into()))?;
        tree.insert(inline_key(name, rec.lsn), rec.value)?;
    }
    tree.insert(KEY_STATE, bincode::serialize(&state)?)?;
    Ok(reader.header)
}

/// Where an op is in the Raft log: the entry's index and the op's position
/// in it. The chunk an op adds refers to its payloads there.
#[derive(Debug, Clone, Copy)]
struct OpAt {
    raft_index: u64,
    op: u32,
}

/// Applies one client op to `logs`, staging the records it adds in `records`
/// (key, value).
fn apply_op(
    logs: &mut BTreeMap<String, LogMeta>,
    records: &mut Vec<(Vec<u8>, Vec<u8>)>,
    op: Op,
    at: OpAt,
    trimmed: &mut bool,
) -> std::result::Result<OpResult, bincode::Error> {
    if let Some(why) = op.refusal() {
        return Ok(OpResult::Invalid(why));
    }
    let creates = !matches!(op, Op::Trim { .. }) && !logs.contains_key(op.log());
    if creates && logs.len() >= MAX_LOGS {
        return Ok(OpResult::Invalid(format!(
            "no log named {:?}, and there are already {MAX_LOGS} logs (the limit)",
            op.log()
        )));
    }
    match op {
        Op::Append {
            log,
            condition,
            kind,
            payloads,
        } => {
            if log.is_empty() || payloads.is_empty() || kind == EntryKind::Leadership {
                return Ok(OpResult::Invalid(
                    "append needs a log name, payloads, and a DATA or HEARTBEAT kind".into(),
                ));
            }
            let meta = logs.entry(log.clone()).or_default();
            // An older epoch is FENCED even where the position is wrong too:
            // that writer must stop, not retry.
            if condition.epoch().is_some_and(|e| e != meta.epoch) {
                return Ok(OpResult::Fenced(meta.position()));
            }
            if condition.last_lsn().is_some_and(|l| l != meta.last_lsn) {
                return Ok(OpResult::Conflict(meta.position()));
            }
            let first_lsn = meta.last_lsn + 1;
            let mut checksums = Vec::with_capacity(payloads.len());
            for payload in &payloads {
                meta.checksum = chain_checksum(meta.checksum, payload);
                checksums.push(meta.checksum);
            }
            meta.last_lsn += payloads.len() as u64;
            let chunk = ChunkRef {
                epoch: meta.epoch,
                kind,
                checksums,
                raft_index: at.raft_index,
                op: at.op,
            };
            records.push((ref_key(&log, first_lsn), bincode::serialize(&chunk)?));
            Ok(OpResult::Appended {
                first_lsn,
                last_lsn: meta.last_lsn,
                position: meta.position(),
            })
        }
        Op::TakeLeadership {
            log,
            candidate,
            expected_last_lsn,
        } => {
            if log.is_empty() || candidate.is_empty() {
                return Ok(OpResult::Invalid(
                    "leadership needs a log and a candidate".into(),
                ));
            }
            let meta = logs.entry(log.clone()).or_default();
            if meta.last_lsn != expected_last_lsn {
                return Ok(OpResult::Conflict(meta.position()));
            }
            meta.epoch += 1;
            meta.last_lsn += 1;
            meta.checksum = chain_checksum(meta.checksum, candidate.as_bytes());
            meta.holder = candidate;
            let chunk = ChunkRef {
                epoch: meta.epoch,
                kind: EntryKind::Leadership,
                checksums: vec![meta.checksum],
                raft_index: at.raft_index,
                op: at.op,
            };
            records.push((ref_key(&log, meta.last_lsn), bincode::serialize(&chunk)?));
            Ok(OpResult::Appended {
                first_lsn: meta.last_lsn,
                last_lsn: meta.last_lsn,
                position: meta.position(),
            })
        }
        Op::Trim { log, up_to_lsn } => {
            let Some(meta) = logs.get_mut(&log) else {
                return Ok(OpResult::Invalid(format!("no log named {log:?}")));
            };
            let up_to = up_to_lsn.min(meta.last_lsn);
            if up_to + 1 > meta.first_lsn {
                meta.first_lsn = up_to + 1;
                *trimmed = true;
            }
            Ok(OpResult::Trimmed {
                first_lsn: meta.first_lsn,
                last_lsn: meta.last_lsn,
            })
        }
    }
}

/// Deletes trimmed records in the background, in chunks, never while a
/// snapshot is being built.
async fn run_collector(shared: Weak<Shared>, notify: Arc<Notify>) {
    loop {
        notify.notified().await;
        let Some(s) = shared.upgrade() else { return };
        loop {
            // Never queue as a writer: that would hold up tailers behind a
            // long snapshot build. Retry until the lock is free instead.
            let _guard = loop {
                match s.gc_lock.clone().try_write_owned() {
                    Ok(g) => break g,
                    Err(_) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            };
            // Records the current snapshot covers stay until a newer one.
            let floors: BTreeMap<String, u64> = s
                .control
                .get(CONTROL_DESCRIPTOR)
                .ok()
                .flatten()
                .and_then(|v| bincode::deserialize::<Header>(&v).ok())
                .map(|h| h.logs.into_iter().map(|(n, m)| (n, m.first_lsn)).collect())
                .unwrap_or_default();
            let targets: Vec<(String, u64)> = s
                .cache
                .read()
                .logs
                .iter()
                .map(|(n, m)| {
                    let floor = floors.get(n).copied().unwrap_or(u64::MAX);
                    (n.clone(), m.first_lsn.min(floor))
                })
                .collect();
            let tree = s.tree.clone();
            let done = tokio::task::spawn_blocking(move || -> Result<(bool, usize)> {
                let mut removed = 0usize;
                for (name, first) in targets {
                    for (start, end) in records::log_ranges(&name, first) {
                        for kv in tree.range(start..end) {
                            let (k, v) = kv?;
                            // A chunk straddling the trim point stays.
                            if records::lsn_of_key(&k) + chunk_len(&v)? > first {
                                break;
                            }
                            tree.remove(k)?;
                            removed += 1;
                            if removed >= 20_000 {
                                return Ok((false, removed));
                            }
                        }
                    }
                }
                Ok((true, removed))
            })
            .await;
            // The Raft log may now purge entries only those chunks needed.
            if matches!(done, Ok(Ok((_, removed))) if removed > 0) {
                s.refs.release();
            }
            match done {
                Ok(Ok((true, _))) => break,
                Ok(Ok((false, _))) => continue,
                Ok(Err(e)) => {
                    tracing::error!("collecting trimmed records: {e}");
                    break;
                }
                Err(e) => {
                    tracing::error!("collector task: {e}");
                    break;
                }
            }
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotData = SnapshotFile;
    type SnapshotBuilder = snapshot::Builder;

    async fn applied_state(&mut self) -> std::io::Result<(Option<LogId>, StoredMembership)> {
        let c = self.shared.cache.read();
        Ok((c.last_applied, c.membership.clone()))
    }

    /// Applies a run of committed entries: every op's records first, then
    /// the `s` value covering them, then the replies.
    async fn apply<Strm>(&mut self, mut entries: Strm) -> std::io::Result<()>
    where
        Strm: futures::Stream<Item = std::io::Result<EntryResponder<TypeConfig>>> + Unpin + Send,
    {
        let (mut logs, mut membership) = {
            let c = self.shared.cache.read();
            (c.logs.clone(), c.membership.clone())
        };
        let mut records = Vec::new();
        let mut replies = Vec::new();
        let mut last = None;
        let mut trimmed = false;
        while let Some(item) = entries.next().await {
            let (entry, responder) = item?;
            last = Some(entry.log_id);
            let response = match entry.payload {
                EntryPayload::Blank => Response::default(),
                EntryPayload::Membership(m) => {
                    membership = StoredMembership::new(Some(entry.log_id), m);
                    Response::default()
                }
                EntryPayload::Normal(req) => {
                    let bytes: usize = req.ops.iter().map(Op::size_hint).sum();
                    self.shared
                        .applied_bytes
                        .fetch_add(bytes as u64, Ordering::Relaxed);
                    let mut results = Vec::with_capacity(req.ops.len());
                    for (i, op) in req.ops.into_iter().enumerate() {
                        let at = OpAt {
                            raft_index: entry.log_id.index,
                            op: i as u32,
                        };
                        results.push(
                            apply_op(&mut logs, &mut records, op, at, &mut trimmed)
                                .map_err(std::io::Error::other)?,
                        );
                    }
                    Response { results }
                }
            };
            if let Some(r) = responder {
                replies.push((r, response));
            }
        }
        let Some(last) = last else {
            return Ok(());
        };
        let state = Cache {
            last_applied: Some(last),
            membership,
            logs,
        };
        let state_bytes = bincode::serialize(&state).map_err(std::io::Error::other)?;
        // openraft applies entries as soon as they are committed and
        // appended here, which may be before this node's own sync of them
        // (the others made the majority). sled may make what is written
        // below durable at any time, and records refer to the entries'
        // payloads in the Raft log, so the entries must be on disk first.
        self.shared.raft.durable(last.index).await?;
        let tree = &self.shared.tree;
        for (k, v) in records {
            tree.insert(k, v).map_err(std::io::Error::other)?;
        }
        tree.insert(KEY_STATE, state_bytes)
            .map_err(std::io::Error::other)?;
        *self.shared.cache.write() = state;
        self.shared.applied_tx.send_modify(|n| *n += 1);
        if trimmed {
            self.shared.gc_notify.notify_one();
            self.shared.trimmed.store(true, Ordering::Relaxed);
        }
        // Only now can a tailer read what the replies acknowledge.
        for (r, response) in replies {
            r.send(response);
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        let guard = self.shared.gc_lock.clone().read_owned().await;
        let cache = self.shared.cache.read().clone();
        snapshot::Builder::new(self.shared.clone(), cache, guard)
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut snapshot: SnapshotFile,
    ) -> std::io::Result<()> {
        snapshot.file()?.sync_all().await?;
        let received = snapshot
            .take_path()
            .ok_or_else(|| std::io::Error::other("installing a snapshot that was not received"))?;
        drop(snapshot);
        let file = snapshot::file_name(meta);
        let path = self.shared.snapshot_dir.join(&file);
        let info = SnapshotInfo {
            meta: meta.clone(),
            file,
        };
        let _guard = self.shared.gc_lock.clone().write_owned().await;
        let shared = self.shared.clone();
        let cache = tokio::task::spawn_blocking(move || -> Result<Cache> {
            std::fs::rename(&received, &path)?;
            snapshot::sync_dir(&shared.snapshot_dir)?;
            let info_bytes = bincode::serialize(&info)?;
            shared
                .control
                .insert(CONTROL_INSTALLING, info_bytes.clone())?;
            shared.db.flush()?;
            let header = load_snapshot_file(&shared.tree, &path)?;
            shared
                .control
                .insert(CONTROL_DESCRIPTOR, bincode::serialize(&header)?)?;
            shared.control.insert(CONTROL_CURRENT, info_bytes)?;
            shared.control.remove(CONTROL_INSTALLING)?;
            shared.db.flush()?;
            remove_stale_snapshot_files(&shared.control, &shared.snapshot_dir, false);
            load_cache(&shared.tree)
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        *self.shared.cache.write() = cache;
        self.shared.applied_tx.send_modify(|n| *n += 1);
        tracing::info!(snapshot = %snapshot::snapshot_name(meta), "installed snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> std::io::Result<Option<Snapshot>> {
        if let Some(v) = self
            .shared
            .control
            .get(CONTROL_DESCRIPTOR)
            .map_err(std::io::Error::other)?
        {
            let header: Header = bincode::deserialize(&v).map_err(std::io::Error::other)?;
            return Ok(Some(snapshot::lazy_snapshot(self.shared.clone(), header)));
        }
        // A data directory from before descriptors: the file is the snapshot.
        let Some(v) = self
            .shared
            .control
            .get(CONTROL_CURRENT)
            .map_err(std::io::Error::other)?
        else {
            return Ok(None);
        };
        let info: SnapshotInfo = bincode::deserialize(&v).map_err(std::io::Error::other)?;
        let f = tokio::fs::File::open(self.shared.snapshot_dir.join(&info.file)).await?;
        Ok(Some(Snapshot {
            meta: info.meta,
            snapshot: SnapshotFile::ready(f),
        }))
    }
}

impl LogsView {
    /// A new file for a snapshot being received from the leader; installing
    /// it (openraft's `install_full_snapshot`) moves it in place.
    pub async fn begin_receiving_snapshot(&self) -> std::io::Result<SnapshotFile> {
        let path = self
            .shared
            .snapshot_dir
            .join(format!("recv-{}.part", snapshot::unique_suffix()));
        let f = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .await?;
        Ok(SnapshotFile::received(f, path))
    }

    /// Metadata of one log, if it exists.
    pub fn meta(&self, log: &str) -> Option<LogMeta> {
        self.shared.cache.read().logs.get(log).cloned()
    }

    /// Metadata of every log.
    pub fn all_meta(&self) -> BTreeMap<String, LogMeta> {
        self.shared.cache.read().logs.clone()
    }

    /// The last applied Raft log id.
    pub fn last_applied(&self) -> Option<LogId> {
        self.shared.cache.read().last_applied
    }

    /// A receiver that changes after every apply.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.shared.applied_tx.subscribe()
    }

    /// Reads up to `max_entries` / about `max_bytes` applied entries of `log`
    /// starting at `from` (runs on the blocking pool).
    pub async fn read(
        &self,
        log: &str,
        from: u64,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<ReadResult> {
        // Excludes a concurrent snapshot install (which clears and reloads
        // the tree) and the trimmed-record collector.
        let guard = self.shared.gc_lock.clone().read_owned().await;
        let Some(meta) = self.meta(log) else {
            return Ok(ReadResult::Entries(Vec::new()));
        };
        if from < meta.first_lsn {
            return Ok(ReadResult::Truncated {
                first_retained: meta.first_lsn,
            });
        }
        if from > meta.last_lsn {
            return Ok(ReadResult::Entries(Vec::new()));
        }
        let shared = self.shared.clone();
        let log_name = log.to_string();
        let last = meta.last_lsn;
        let entries = tokio::task::spawn_blocking(move || -> Result<Vec<(u64, LogRecord)>> {
            let _guard = guard;
            let mut out = Vec::new();
            let mut bytes = 0usize;
            let mut reader = ChunkReader::new(&shared.tree, &shared.raft);
            reader.for_each(&log_name, from, last, |first, chunk| {
                for (i, (payload, checksum)) in
                    chunk.payloads.into_iter().zip(chunk.checksums).enumerate()
                {
                    let lsn = first + i as u64;
                    if lsn < from {
                        continue;
                    }
                    if lsn > last || out.len() >= max_entries || bytes >= max_bytes {
                        return Ok(false);
                    }
                    bytes += payload.len() + 32;
                    out.push((
                        lsn,
                        LogRecord {
                            epoch: chunk.epoch,
                            kind: chunk.kind,
                            checksum,
                            payload,
                        },
                    ));
                }
                Ok(true)
            })?;
            Ok(out)
        })
        .await
        .map_err(io_err)??;
        // A concurrent trim may have removed records we were about to read.
        let contiguous = entries
            .iter()
            .enumerate()
            .all(|(i, (lsn, _))| *lsn == from + i as u64);
        if entries.is_empty() || !contiguous {
            let first = self.meta(log).map(|m| m.first_lsn).unwrap_or(1);
            if from < first {
                return Ok(ReadResult::Truncated {
                    first_retained: first,
                });
            }
            return Err(TxlogError::Invalid(format!(
                "log {log:?} has a gap after lsn {from}"
            )));
        }
        Ok(ReadResult::Entries(entries))
    }

    /// The Raft log the chunks refer to.
    #[cfg(test)]
    pub(crate) fn raft_log(&self) -> &LogStore {
        &self.shared.raft
    }

    /// Bytes the node's database takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.shared.db.size_on_disk().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Condition;
    use bytes::Bytes;

    const AT: OpAt = OpAt {
        raft_index: 1,
        op: 0,
    };

    fn append(
        logs: &mut BTreeMap<String, LogMeta>,
        condition: Condition,
        payload: &'static [u8],
    ) -> OpResult {
        let mut records = Vec::new();
        let op = Op::Append {
            log: "l".into(),
            condition,
            kind: EntryKind::Data,
            payloads: vec![Bytes::from_static(payload)],
        };
        match apply_op(logs, &mut records, op, AT, &mut false) {
            Ok(r) => r,
            Err(e) => panic!("apply_op: {e}"),
        }
    }

    fn lead(logs: &mut BTreeMap<String, LogMeta>, expected_last_lsn: u64) {
        let op = Op::TakeLeadership {
            log: "l".into(),
            candidate: "p".into(),
            expected_last_lsn,
        };
        let r = apply_op(logs, &mut Vec::new(), op, AT, &mut false);
        assert!(matches!(r, Ok(OpResult::Appended { .. })), "{r:?}");
    }

    #[test]
    fn epoch_after_takes_only_the_next_append_of_the_current_epoch() {
        let mut logs = BTreeMap::new();
        lead(&mut logs, 0); // lsn 1, epoch 1
        let at = |l| Condition::EpochAfter {
            epoch: 1,
            last_lsn: l,
        };
        assert!(matches!(
            append(&mut logs, at(1), b"a"),
            OpResult::Appended { first_lsn: 2, .. }
        ));
        // A duplicate of the request just taken (a stale resend) and one
        // after a gap (an earlier append lost) are refused.
        assert!(matches!(append(&mut logs, at(1), b"a"), OpResult::Conflict(p) if p.last_lsn == 2));
        assert!(matches!(append(&mut logs, at(3), b"c"), OpResult::Conflict(p) if p.last_lsn == 2));
        assert!(matches!(
            append(&mut logs, at(2), b"b"),
            OpResult::Appended { first_lsn: 3, .. }
        ));
        // An older epoch is fenced, wherever it thinks the log ends.
        lead(&mut logs, 3); // lsn 4, epoch 2
        let old = Condition::EpochAfter {
            epoch: 1,
            last_lsn: 4,
        };
        assert!(matches!(append(&mut logs, old, b"x"), OpResult::Fenced(p) if p.epoch == 2));
        assert!(matches!(
            append(&mut logs, at(3), b"x"),
            OpResult::Fenced(_)
        ));
        let meta = &logs["l"];
        assert_eq!((meta.last_lsn, meta.epoch), (4, 2));
    }

    #[test]
    fn names_past_their_limits_and_logs_past_the_cap_are_refused() {
        use crate::types::{MAX_HOLDER_BYTES, MAX_LOGS, MAX_LOG_NAME_BYTES};
        let mut logs = BTreeMap::new();
        let op = |log: String, candidate: String| Op::TakeLeadership {
            log,
            candidate,
            expected_last_lsn: 0,
        };
        let apply = |logs: &mut BTreeMap<String, LogMeta>, o: Op| {
            apply_op(logs, &mut Vec::new(), o, AT, &mut false).expect("apply_op")
        };
        let long_name = "n".repeat(MAX_LOG_NAME_BYTES + 1);
        let r = apply(&mut logs, op(long_name, "p".into()));
        assert!(
            matches!(&r, OpResult::Invalid(why) if why.contains("log name")),
            "{r:?}"
        );
        let r = apply(&mut logs, op("l".into(), "p".repeat(MAX_HOLDER_BYTES + 1)));
        assert!(
            matches!(&r, OpResult::Invalid(why) if why.contains("candidate")),
            "{r:?}"
        );
        assert!(logs.is_empty(), "a refused op created a log");
        let at_limit = "n".repeat(MAX_LOG_NAME_BYTES);
        let r = apply(&mut logs, op(at_limit, "p".repeat(MAX_HOLDER_BYTES)));
        assert!(matches!(r, OpResult::Appended { .. }), "{r:?}");

        for i in 1..MAX_LOGS {
            let r = apply(&mut logs, op(format!("shard-{i}"), "p".into()));
            assert!(matches!(r, OpResult::Appended { .. }), "{r:?}");
        }
        assert_eq!(logs.len(), MAX_LOGS);
        // A new log past the cap is refused, by an append as by a leadership
        // attempt; the logs already there go on.
        let r = apply(&mut logs, op("one-too-many".into(), "p".into()));
        assert!(
            matches!(&r, OpResult::Invalid(why) if why.contains("limit")),
            "{r:?}"
        );
        let fenced_new = Op::Append {
            log: "another".into(),
            condition: Condition::Epoch(1),
            kind: EntryKind::Data,
            payloads: vec![Bytes::from_static(b"x")],
        };
        assert!(matches!(apply(&mut logs, fenced_new), OpResult::Invalid(_)));
        assert_eq!(logs.len(), MAX_LOGS);
        let existing = Op::Append {
            log: "shard-7".into(),
            condition: Condition::Epoch(1),
            kind: EntryKind::Data,
            payloads: vec![Bytes::from_static(b"x")],
        };
        assert!(matches!(
            apply(&mut logs, existing),
            OpResult::Appended { first_lsn: 2, .. }
        ));
        let trim_unknown = Op::Trim {
            log: "nope".into(),
            up_to_lsn: 1,
        };
        assert!(
            matches!(&apply(&mut logs, trim_unknown), OpResult::Invalid(why) if why.contains("no log named"))
        );
    }

    #[test]
    fn epoch_and_last_lsn_conditions_alone() {
        let mut logs = BTreeMap::new();
        lead(&mut logs, 0);
        assert!(matches!(
            append(&mut logs, Condition::Epoch(1), b"a"),
            OpResult::Appended { .. }
        ));
        assert!(matches!(
            append(&mut logs, Condition::Epoch(0), b"a"),
            OpResult::Fenced(_)
        ));
        assert!(matches!(
            append(&mut logs, Condition::LastLsn(1), b"a"),
            OpResult::Conflict(_)
        ));
        assert!(matches!(
            append(&mut logs, Condition::LastLsn(2), b"a"),
            OpResult::Appended { first_lsn: 3, .. }
        ));
    }
}
