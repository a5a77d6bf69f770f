//! Snapshots of the state machine: a streamed file format and the
//! [`RaftSnapshotBuilder`].
//!
//! Building a snapshot is cheap: the state machine is already durable in
//! sled, so the builder flushes it and records a descriptor (the [`Header`]:
//! the snapshot's Raft metadata and each log's first and last LSN). Records
//! of a log are never rewritten, and the trimmed-record collector keeps
//! every record the descriptor covers, so the snapshot's content stays in
//! sled until a newer descriptor replaces it; only then can openraft purge
//! the Raft log up to it. The file is written only when a snapshot is read
//! (a follower behind the purged log; see `snapshot_file`), and deleted,
//! like the file of an installed snapshot, once a newer descriptor is
//! recorded.
//!
//! A snapshot file is never a buffer in memory, so GB-size state is fine:
//! records stream from sled into it, openraft sends it in chunks
//! (`snapshot_max_chunk_size`) and the receiver writes chunks straight into a
//! file before loading it.
//!
//! Format: `MAGIC`, then frames `[u32 len LE][u32 crc32c LE][body]`: first a
//! [`Header`], then one [`Record`] per entry, then an empty frame.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;
use std::sync::Arc;

use openraft::RaftSnapshotBuilder;
use serde::{Deserialize, Serialize};
use tokio::sync::OwnedRwLockReadGuard;

use super::records::ChunkReader;
use super::snapshot_file::SnapshotFile;
use super::state_machine::{
    remove_stale_snapshot_files, Cache, Shared, CONTROL_CURRENT, CONTROL_DESCRIPTOR,
};
use super::step_synced::StepSyncedFile;
use crate::error::{Result, TxlogError};
use crate::types::{LogMeta, Snapshot, SnapshotMeta, TypeConfig};

const MAGIC: &[u8; 8] = b"MLTXSNP1";

/// Which file holds which snapshot (kept in the `sm_control` tree).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotInfo {
    pub meta: SnapshotMeta,
    pub file: String,
}

/// First frame of a snapshot file, and the descriptor of the current
/// snapshot (kept in the `sm_control` tree).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub meta: SnapshotMeta,
    pub logs: Vec<(String, LogMeta)>,
}

/// One record chunk: index of its log in `Header::logs`, LSN of its first
/// entry, the encoded [`RecordChunk`](crate::types::RecordChunk) (with its
/// payloads).
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub log: u32,
    pub lsn: u64,
    pub value: Vec<u8>,
}

/// A suffix that makes file names unique within this process and run.
pub fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos}-{}", rand::random::<u32>())
}

/// A snapshot's name: its last log id. The state machine is deterministic,
/// so two snapshots up to the same log id (built here or received) hold the
/// same state.
pub fn snapshot_name(meta: &SnapshotMeta) -> String {
    match &meta.last_log_id {
        Some(l) => format!("{}-{}-{}", l.leader_id.term, l.leader_id.node_id, l.index),
        None => "0-0-0".to_string(),
    }
}

/// The file name a snapshot is stored under.
pub fn file_name(meta: &SnapshotMeta) -> String {
    format!("snap-{}.bin", snapshot_name(meta))
}

/// fsyncs a directory so renames in it are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn write_frame(w: &mut impl Write, body: &[u8]) -> std::io::Result<()> {
    w.write_all(&(body.len() as u32).to_le_bytes())?;
    w.write_all(&crc32c::crc32c(body).to_le_bytes())?;
    w.write_all(body)
}

/// The largest frame a snapshot file may hold (a record chunk of the
/// largest appends, with room to spare): a damaged length must not make
/// the reader allocate gigabytes before its checksum is checked.
const MAX_FRAME_BYTES: usize = 512 * 1024 * 1024;

fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<bool> {
    let mut head = [0u8; 8];
    r.read_exact(&mut head)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len == 0 {
        return Ok(false);
    }
    if len > MAX_FRAME_BYTES {
        return Err(TxlogError::Invalid(format!(
            "snapshot frame of {len} bytes (the most is {MAX_FRAME_BYTES})"
        )));
    }
    buf.resize(len, 0);
    r.read_exact(buf)?;
    if crc32c::crc32c(buf) != crc {
        return Err(TxlogError::Invalid(
            "snapshot frame checksum mismatch".into(),
        ));
    }
    Ok(true)
}

/// Streams the state machine (as `header` describes it) into `path`,
/// fsynced. Chunks referring to the Raft log are written with their
/// payloads: the receiver has no such Raft log entries.
fn write_file(shared: &Shared, header: &Header, path: &Path) -> Result<u64> {
    let f = StepSyncedFile::new(File::create(path)?);
    let mut w = BufWriter::with_capacity(1 << 20, f);
    w.write_all(MAGIC)?;
    write_frame(&mut w, &bincode::serialize(header)?)?;
    let mut n = 0u64;
    let mut reader = ChunkReader::new(&shared.tree, &shared.raft);
    for (i, (name, meta)) in header.logs.iter().enumerate() {
        if meta.first_lsn > meta.last_lsn {
            continue;
        }
        let mut expected: Option<u64> = None;
        reader.for_each(name, meta.first_lsn, meta.last_lsn, |lsn, chunk| {
            let contiguous = match expected {
                None => lsn <= meta.first_lsn && lsn + chunk.len() > meta.first_lsn,
                Some(e) => lsn == e,
            };
            if !contiguous {
                return Err(TxlogError::Invalid(format!(
                    "log {name:?}: records not contiguous at lsn {lsn} while snapshotting"
                )));
            }
            expected = Some(lsn + chunk.len());
            let rec = Record {
                log: i as u32,
                lsn,
                value: bincode::serialize(&chunk)?,
            };
            write_frame(&mut w, &bincode::serialize(&rec)?)?;
            n += 1;
            Ok(true)
        })?;
        if expected != Some(meta.last_lsn + 1) {
            return Err(TxlogError::Invalid(format!(
                "log {name:?}: records end before lsn {} while snapshotting",
                meta.last_lsn
            )));
        }
    }
    w.write_all(&[0u8; 8])?;
    w.into_inner().map_err(|e| e.into_error())?.finish()?;
    Ok(n)
}

/// Reads a snapshot file: the header, then one record at a time.
pub struct Reader {
    r: BufReader<File>,
    buf: Vec<u8>,
    pub header: Header,
}

impl Reader {
    pub fn open(path: &Path) -> Result<Self> {
        let mut r = BufReader::with_capacity(1 << 20, File::open(path)?);
        let mut magic = [0u8; 8];
        r.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(TxlogError::Invalid("not a txlog snapshot file".into()));
        }
        let mut buf = Vec::new();
        if !read_frame(&mut r, &mut buf)? {
            return Err(TxlogError::Invalid("snapshot without header".into()));
        }
        let header: Header = bincode::deserialize(&buf)?;
        Ok(Self { r, buf, header })
    }

    /// The next record, or `None` at the end of the snapshot.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if read_frame(&mut self.r, &mut self.buf)? {
            Ok(Some(bincode::deserialize(&self.buf)?))
        } else {
            Ok(None)
        }
    }
}

/// The bytes of a snapshot file of `meta` that holds no log (a node's state
/// before its first append): what tests send as a well-formed snapshot.
pub fn empty_file(meta: &SnapshotMeta) -> Result<Vec<u8>> {
    let mut b = MAGIC.to_vec();
    let header = Header {
        meta: meta.clone(),
        logs: Vec::new(),
    };
    write_frame(&mut b, &bincode::serialize(&header)?)?;
    b.extend_from_slice(&[0u8; 8]);
    Ok(b)
}

/// Reads the snapshot file at `path` through to its end marker and checks
/// that it is the snapshot `expected` names: what a receiver must know
/// before it installs a file (a cut stream ends like a whole one).
pub fn verify_file(path: &Path, expected: &SnapshotMeta) -> Result<()> {
    let mut reader = Reader::open(path)?;
    if reader.header.meta != *expected {
        return Err(TxlogError::Invalid(format!(
            "snapshot file holds {}, not the {} it was sent as",
            snapshot_name(&reader.header.meta),
            snapshot_name(expected)
        )));
    }
    while reader.next_record()?.is_some() {}
    Ok(())
}

/// Makes the file of the snapshot `header` describes (its records are in
/// `shared.tree`), or opens it if an earlier read wrote it already.
pub(crate) fn materialize(shared: &Arc<Shared>, header: &Header) -> Result<File> {
    let file = file_name(&header.meta);
    let path = shared.snapshot_dir.join(&file);
    if let Some(v) = shared.control.get(CONTROL_CURRENT)? {
        let info: SnapshotInfo = bincode::deserialize(&v)?;
        if info.meta.last_log_id == header.meta.last_log_id {
            if let Ok(f) = File::open(&path) {
                return Ok(f);
            }
        }
    }
    // Keeps the collector from deleting records while they are copied.
    let _guard = tokio::runtime::Handle::current().block_on(shared.gc_lock.clone().read_owned());
    let tmp = shared
        .snapshot_dir
        .join(format!("{file}.{}.tmp", unique_suffix()));
    // A failed write (a full disk) leaves no partial file behind for every
    // retry to add another to.
    let n = match write_file(shared, header, &tmp) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // Opened before it is renamed: a snapshot recorded meanwhile deletes
    // every file not yet named current, and the reader keeps what it opened.
    let opened = File::open(&tmp)?;
    // A newer snapshot recorded while this one was written (builds hold the
    // lock for reading too) already made this file stale: the reader keeps
    // what it opened, and the file is not kept as the current one, which
    // would have held a second copy of the state until the next build.
    let newest = shared
        .control
        .get(CONTROL_DESCRIPTOR)?
        .map(|v| bincode::deserialize::<Header>(&v))
        .transpose()?;
    if newest.is_some_and(|h| h.meta.last_log_id != header.meta.last_log_id) {
        std::fs::remove_file(&tmp)?;
        return Ok(opened);
    }
    std::fs::rename(&tmp, &path)?;
    sync_dir(&shared.snapshot_dir)?;
    let info = SnapshotInfo {
        meta: header.meta.clone(),
        file,
    };
    shared
        .control
        .insert(CONTROL_CURRENT, bincode::serialize(&info)?)?;
    remove_stale_snapshot_files(&shared.control, &shared.snapshot_dir, false);
    tracing::info!(records = n, snapshot = %snapshot_name(&header.meta), "wrote snapshot file");
    Ok(opened)
}

/// The snapshot `header` describes, as openraft's `SnapshotData`: its file
/// is written on first read.
pub(crate) fn lazy_snapshot(shared: Arc<Shared>, header: Header) -> Snapshot {
    let meta = header.meta.clone();
    let file = SnapshotFile::pending(Box::new(move || {
        materialize(&shared, &header).map_err(|e| std::io::Error::other(e.to_string()))
    }));
    Snapshot {
        meta,
        snapshot: file,
    }
}

/// Builds one snapshot from the state captured when openraft asked for it.
pub struct Builder {
    shared: Arc<Shared>,
    cache: Cache,
    /// Keeps the trimmed-record collector from deleting records this
    /// snapshot covers until its descriptor (which the collector respects)
    /// is stored.
    guard: Option<OwnedRwLockReadGuard<()>>,
}

impl Builder {
    pub(crate) fn new(shared: Arc<Shared>, cache: Cache, guard: OwnedRwLockReadGuard<()>) -> Self {
        Self {
            shared,
            cache,
            guard: Some(guard),
        }
    }
}

impl RaftSnapshotBuilder<TypeConfig> for Builder {
    type SnapshotData = SnapshotFile;

    async fn build_snapshot(&mut self) -> std::io::Result<Snapshot> {
        // Counted again from here (see `Shared::applied_bytes`).
        self.shared
            .applied_bytes
            .store(0, std::sync::atomic::Ordering::Relaxed);
        self.shared
            .trimmed
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let last = self.cache.last_applied;
        let meta = SnapshotMeta {
            last_log_id: last,
            last_membership: self.cache.membership.clone(),
        };
        let header = Header {
            meta: meta.clone(),
            logs: self
                .cache
                .logs
                .iter()
                .map(|(n, m)| (n.clone(), m.clone()))
                .collect(),
        };
        let shared = self.shared.clone();
        let guard = self.guard.take();
        let descriptor = header.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            // The state machine must be durable up to the snapshot before
            // openraft purges the Raft log it was built from, and so must
            // the descriptor that stops the collector from deleting it.
            shared
                .control
                .insert(CONTROL_DESCRIPTOR, bincode::serialize(&descriptor)?)?;
            shared.db.flush()?;
            if let Some(root) = shared.snapshot_dir.parent() {
                super::log_storage::DiskSync::open(&root.join("db"))?.sync()?;
            }
            // The file of an older snapshot (one installed here, or written
            // for a follower) is a full copy of state this descriptor
            // supersedes: nothing reads it any more, and kept it would double
            // the node's disk use until a follower needed a newer file.
            if let Some(v) = shared.control.get(CONTROL_CURRENT)? {
                let info: SnapshotInfo = bincode::deserialize(&v)?;
                if info.meta.last_log_id != descriptor.meta.last_log_id {
                    shared.control.remove(CONTROL_CURRENT)?;
                }
            }
            // Files of older snapshots are of no use any more. Under the
            // guard: an install (which takes the lock to write) renames its
            // file in place before it becomes the current one, and this
            // deleted it in between.
            remove_stale_snapshot_files(&shared.control, &shared.snapshot_dir, false);
            drop(guard);
            // Records trimmed while the previous snapshot covered them can go.
            shared.gc_notify.notify_one();
            Ok(())
        })
        .await
        .map_err(std::io::Error::other)?
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        tracing::info!(snapshot = %snapshot_name(&meta), "recorded snapshot");
        Ok(lazy_snapshot(self.shared.clone(), header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::test_log_id;

    fn meta(index: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_log_id: Some(test_log_id(index)),
            last_membership: Default::default(),
        }
    }

    /// A snapshot file of `meta` with `records` records, and where each
    /// frame ends.
    fn file_bytes(meta: &SnapshotMeta, records: u64) -> (Vec<u8>, Vec<usize>) {
        let mut b = MAGIC.to_vec();
        let header = Header {
            meta: meta.clone(),
            logs: Vec::new(),
        };
        write_frame(&mut b, &bincode::serialize(&header).unwrap()).unwrap();
        let mut ends = vec![b.len()];
        for lsn in 1..=records {
            let rec = Record {
                log: 0,
                lsn,
                value: vec![7; 100],
            };
            write_frame(&mut b, &bincode::serialize(&rec).unwrap()).unwrap();
            ends.push(b.len());
        }
        b.extend_from_slice(&[0u8; 8]);
        (b, ends)
    }

    /// A receiver installs only a file read through to its end marker, of
    /// the snapshot it was sent as: a stream cut at any frame boundary (or
    /// inside a frame) ends like a whole one.
    #[test]
    fn only_whole_files_of_the_named_snapshot_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let (whole, ends) = file_bytes(&meta(9), 3);
        std::fs::write(&path, &whole).unwrap();
        verify_file(&path, &meta(9)).expect("a whole file");
        assert!(verify_file(&path, &meta(8)).is_err(), "another snapshot");
        for cut in ends.iter().copied().chain([ends[1] - 5, whole.len() - 3]) {
            std::fs::write(&path, &whole[..cut]).unwrap();
            assert!(verify_file(&path, &meta(9)).is_err(), "cut at {cut}");
        }
        // A damaged length is refused before anything that size is read.
        let mut big = whole[..ends[0]].to_vec();
        big.extend_from_slice(&u32::MAX.to_le_bytes());
        big.extend_from_slice(&[0u8; 4]);
        std::fs::write(&path, &big).unwrap();
        let err = verify_file(&path, &meta(9)).expect_err("a huge frame");
        assert!(err.to_string().contains("the most is"), "{err}");
    }
}
