//! Where the Raft log's entries live: append-only segment files, written by
//! one thread with one `fdatasync` per group of appends (group commit), and
//! an in-memory index from entry index to its place in them.
//!
//! An append becomes one record at the end of the current segment; its
//! flush callback fires once the writer thread has written it and synced
//! the file. Each entry's bytes are written once. Kept in sled, as before,
//! every entry was written about three times (sled rewrites a leaf of up to
//! 16 entries every 10 changes) and each group commit paid sled's flush on
//! top of our `fdatasync` (`perf`, 3-node log under load: sled's I/O
//! threads copying into the page cache were a third of all CPU time).
//!
//! A truncation (`truncate_after`) is a record too, so that at open,
//! rebuilding the index by reading the segments in order (inserts, then the
//! removals of a truncation) yields the log as it was acknowledged.
//! Segments are deleted oldest first once every entry in them is purged
//! (deleting only a prefix keeps every truncation record that still matters:
//! it only ever removes entries of its own or older segments).
//!
//! Segments are preallocated while the log is written slowly: a new one is
//! written full of zeros and synced before it takes records (the next one
//! is prepared on a thread of its own once the current one is half full),
//! so an append overwrites blocks the file already has and its `fdatasync`
//! writes data only. An append that grows the file also makes the sync
//! write the file's new size (the inode; with a journaling ext4, a journal
//! commit): on the development machine's ext4, 180-200 us per sync instead
//! of 100 us, and 380 us instead of 210-240 us with three nodes syncing on
//! one disk, which is what a commit waits for twice. A log written fast
//! syncs many records at once and gets plain segments instead (see
//! [`PREPARE_BELOW_BYTES_PER_SYNC`]). A record ends at the first zero length
//! field; when zeros cannot be written (a full disk), a segment grows as
//! records are appended.
//!
//! Purged segments are recycled: one a purge frees (with no read holding
//! it) is kept ([`FREE`], up to [`SPARE_BYTES`] of them), its first block
//! zeroed, and the next segment to start takes it instead of a new file. It
//! is preallocated like a prepared one, without a segment's worth of zeros
//! written first; what it held before stays behind the new records, and
//! every record's checksum is seeded with its segment's number, so that
//! none of those old records checks out in the new segment (the reader
//! stops at the first that does not). A segment is cut to its records'
//! end, and synced, before the next one starts: only the newest can end in
//! bytes that are not records.
//!
//! Record layout: `len: u32 LE`, `crc: u32 LE`, `body`, where `crc` is the
//! body's crc32c xor a tag of the segment's number ([`record_crc`]); the
//! body is a kind byte, then for [`KIND_ENTRIES`] `(index: u64 LE, len: u32
//! LE, bincode(Entry))` per entry, for [`KIND_TRUNCATE`] the first removed
//! index (`u64 LE`). Segments written before the seeding (their first
//! record's `crc` is the body's plain crc32c) are read as they are and
//! never written to again. A crash can leave the newest segment's last
//! records torn: they were never acknowledged; open cuts them off.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use openraft::storage::IOFlushed;
use parking_lot::RwLock;

use super::snapshot::sync_dir;
use super::step_synced::{self, STEP};

use crate::types::TypeConfig;

/// A segment is closed once it holds this much (a record is never split, so
/// a bigger one gets a segment of its own). Purged entries free the disk a
/// whole segment at a time, never the newest one: small enough that a trim
/// frees most of what it trimmed, big enough that starting a segment (a file
/// create and a directory sync) is rare.
pub const SEGMENT_BYTES: u64 = 8 * 1024 * 1024;

/// Where the next segment is prepared (filled with zeros) before it is
/// renamed to its sequence number.
const PREPARED: &str = "next.wal.tmp";
/// Extension of a purged segment being deleted (`<seq>.wal.del`).
const DELETING: &str = "wal.del";
/// Extension of a purged segment kept for a segment to start
/// (`<seq>.free.wal.tmp`, see the module docs); its first [`FREE_ZEROED`]
/// bytes are zeros.
const FREE: &str = "free.wal.tmp";
/// Bytes of purged segments kept for reuse ([`FREE`]), at most, by
/// default. A trim behind an engine's snapshot purges hundreds of MB at
/// once, and a log written fast starts a segment every few hundred
/// milliseconds until the next one: kept, those segments take the appends
/// of the whole cycle into blocks the disk (and the page cache) already
/// holds. On the development machine a 200 KB append's `pwrite` took 19 us
/// and its `fdatasync` 142-153 us into a written file, 47-54 us and 260-317
/// us into a new one (fresh page-cache pages and newly allocated blocks,
/// which its `discard`-mounted disk freed when the last segment was
/// deleted); `memlog txlog bench` with 200 KB appends spent 10-35 % less
/// CPU per append on each node. Disk use stays this much above what the
/// log holds, as PostgreSQL's recycled WAL segments (`min_wal_size`) do.
pub const SPARE_BYTES: u64 = 256 * 1024 * 1024;
/// How much of a recycled segment is zeroed before it is reused: the first
/// record's header, rounded to a block.
const FREE_ZEROED: usize = 4096;

/// The next segment is prepared only if the current one's first half took
/// a sync for every this many bytes or fewer. Zeros written ahead cost the
/// disk a segment's bytes once; they save the size update of every sync
/// into the segment (~80 us each here, more with three nodes syncing):
/// worth it when syncs are many per byte (small group commits), not when
/// each sync carries hundreds of KB. 3-node LPUSH at pipeline 16 (~45 MB/s
/// of log per node, ~200 KB per sync) by hand: every segment prepared
/// 152-189k ops/s, p99 18-40 ms; none 167-193k, p99 10-15 ms. The embedded
/// log at pipeline 1 (~15 KB per sync) prepares every segment.
const PREPARE_BELOW_BYTES_PER_SYNC: u64 = 64 * 1024;

const KIND_ENTRIES: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const HEADER: usize = 8;
/// Bounds a record's length field, so a damaged one cannot ask for more.
const MAX_RECORD: usize = 1 << 31;

/// One record being built.
pub(crate) struct Record {
    bytes: Vec<u8>,
    /// (index, offset of its bytes in `bytes`, length)
    entries: Vec<(u64, usize, u32)>,
    truncate: Option<u64>,
}

impl Record {
    /// A record of appended entries; add them with [`Record::push_entry`].
    pub(crate) fn entries() -> Self {
        let mut bytes = Vec::with_capacity(HEADER + 1 + 512);
        bytes.extend_from_slice(&[0; HEADER]);
        bytes.push(KIND_ENTRIES);
        Self {
            bytes,
            entries: Vec::new(),
            truncate: None,
        }
    }

    pub(crate) fn push_entry(&mut self, index: u64, entry: &[u8]) {
        self.bytes.extend_from_slice(&index.to_le_bytes());
        self.bytes
            .extend_from_slice(&(entry.len() as u32).to_le_bytes());
        self.entries
            .push((index, self.bytes.len(), entry.len() as u32));
        self.bytes.extend_from_slice(entry);
    }

    /// A record of `truncate_after`: entries from `from` on are removed.
    pub(crate) fn truncate(from: u64) -> Self {
        let mut bytes = Vec::with_capacity(HEADER + 9);
        bytes.extend_from_slice(&[0; HEADER]);
        bytes.push(KIND_TRUNCATE);
        bytes.extend_from_slice(&from.to_le_bytes());
        Self {
            bytes,
            entries: Vec::new(),
            truncate: Some(from),
        }
    }

    /// Writes the length and the body's plain crc32c into the header; the
    /// writer seeds the crc with the segment ([`record_crc`]).
    fn seal(&mut self) {
        let body_len = (self.bytes.len() - HEADER) as u32;
        let crc = crc32c::crc32c(&self.bytes[HEADER..]);
        self.bytes[..4].copy_from_slice(&body_len.to_le_bytes());
        self.bytes[4..HEADER].copy_from_slice(&crc.to_le_bytes());
    }
}

/// The checksum a record carries in segment `seq`, from its body's plain
/// crc32c: xor a tag that differs for every two segments (a bijection of
/// the number's low 32 bits, never 0 for a segment: they count from 1), so
/// a record written in one segment never checks out in another, and a
/// seeded record never passes for an unseeded one. `crc32c_combine` with
/// the number's crc32c did the same, at 4.5 % of a follower's CPU.
fn record_crc(seq: u64, body_crc: u32) -> u32 {
    body_crc ^ (seq as u32).wrapping_mul(0x9E37_79B1)
}

/// One operation of a record, as the index applies it; `offset` is where
/// the entry's bytes start in the segment.
#[derive(Debug, PartialEq, Eq)]
enum Op {
    Insert { index: u64, offset: u64, len: u32 },
    TruncateFrom(u64),
}

/// A segment's records, decoded.
struct Decoded {
    ops: Vec<Op>,
    /// Bytes the whole records take (anything after them is a torn or
    /// damaged record, zeros, or what a recycled segment held before).
    valid: usize,
    /// Written before checksums were seeded with the segment's number.
    unseeded: bool,
}

/// Decodes segment `seq`'s records: every record whose checksum is seeded
/// with `seq` (or, in a segment whose first record's is not, the body's
/// plain crc32c), up to the first that is not whole and sound.
fn decode(bytes: &[u8], seq: u64) -> Decoded {
    let mut out = Decoded {
        ops: Vec::new(),
        valid: 0,
        unseeded: false,
    };
    let mut at = 0;
    while let Some(header) = bytes.get(at..at + HEADER) {
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let body_at = at + HEADER;
        let Some(body) = bytes.get(body_at..body_at + len) else {
            break;
        };
        if len == 0 || len >= MAX_RECORD {
            break;
        }
        let plain = crc32c::crc32c(body);
        let sound = if out.unseeded {
            plain == crc
        } else if record_crc(seq, plain) == crc {
            true
        } else if at == 0 && plain == crc {
            // Never recycled (the recycled have zeros here), so nothing old
            // can follow its records.
            out.unseeded = true;
            true
        } else {
            false
        };
        if !sound || !decode_body(body, body_at as u64, &mut out.ops) {
            break;
        }
        at = body_at + len;
    }
    out.valid = at;
    out
}

/// Appends `body`'s operations to `ops`; false if it is malformed (then
/// `ops` may hold part of it: the caller drops the whole segment's tail).
fn decode_body(body: &[u8], body_at: u64, ops: &mut Vec<Op>) -> bool {
    let mark = ops.len();
    let ok = (|| -> Option<()> {
        let (&kind, _) = body.split_first()?;
        let mut at = 1usize;
        match kind {
            KIND_ENTRIES => {
                while at < body.len() {
                    let index = u64::from_le_bytes(body.get(at..at + 8)?.try_into().ok()?);
                    let len = u32::from_le_bytes(body.get(at + 8..at + 12)?.try_into().ok()?);
                    let start = at + 12;
                    body.get(start..start + len as usize)?;
                    ops.push(Op::Insert {
                        index,
                        offset: body_at + start as u64,
                        len,
                    });
                    at = start + len as usize;
                }
            }
            KIND_TRUNCATE => ops.push(Op::TruncateFrom(u64::from_le_bytes(
                body.get(1..9)?.try_into().ok()?,
            ))),
            _ => return None,
        }
        Some(())
    })();
    if ok.is_none() {
        ops.truncate(mark);
    }
    ok.is_some()
}

fn segment_path(dir: &Path, seq: u64) -> PathBuf {
    dir.join(format!("{seq:020}.wal"))
}

/// Tidies what [`Segments::delete`] left when the process stopped:
/// removes the segments it was deleting and returns the kept ones
/// ([`FREE`]) for reuse, up to `spare` of them (the rest removed). A kept
/// segment's first block was zeroed and synced before it got its name.
fn tidy_purged(dir: &Path, spare: usize) -> io::Result<Vec<PathBuf>> {
    let mut kept = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let path = e?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(&format!(".{DELETING}")) {
            remove_if_present(&path)?;
        } else if name.ends_with(&format!(".{FREE}")) {
            kept.push(path);
        }
    }
    kept.sort();
    let extra = kept.len().saturating_sub(spare);
    for path in kept.drain(..extra) {
        remove_if_present(&path)?;
    }
    Ok(kept)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The segment files in `dir`, oldest first.
fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        if let Some(seq) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            out.push(seq);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Where an entry's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Loc {
    seq: u64,
    offset: u64,
    len: u32,
}

/// A segment [`Segments::forget_below`] gave up, for [`Segments::delete`].
pub(crate) struct Forgotten {
    pub(crate) path: PathBuf,
    file: Arc<File>,
}

struct Segment {
    file: Arc<File>,
    /// Highest entry index written to it.
    max_index: Option<u64>,
}

#[derive(Default)]
struct State {
    index: BTreeMap<u64, Loc>,
    segments: BTreeMap<u64, Segment>,
}

impl State {
    fn apply(&mut self, seq: u64, op: Op) {
        match op {
            Op::Insert { index, offset, len } => {
                self.index.insert(index, Loc { seq, offset, len });
                if let Some(s) = self.segments.get_mut(&seq) {
                    s.max_index = s.max_index.max(Some(index));
                }
            }
            Op::TruncateFrom(from) => {
                self.index.split_off(&from);
            }
        }
    }
}

/// How far the log is on disk: every entry up to `index` (that the log
/// still holds) is synced; `failed` once a write or sync failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Durable {
    pub(crate) index: u64,
    pub(crate) failed: bool,
}

/// The log's segments and index, shared by the writer thread and readers.
pub(crate) struct Segments {
    dir: PathBuf,
    state: RwLock<State>,
    /// Jobs the writer has indexed (see [`Journal::written`]).
    written: AtomicU64,
    durable: tokio::sync::watch::Sender<Durable>,
    /// Purged segments kept for reuse ([`FREE`]), by path, newest last.
    free: parking_lot::Mutex<Vec<PathBuf>>,
    /// How many of them, at most (see [`SPARE_BYTES`]).
    spare: usize,
}

impl Segments {
    /// The bytes of the entry at `index`, if stored. Blocking (a file read
    /// that may miss the page cache).
    pub(crate) fn read(&self, index: u64) -> io::Result<Option<Vec<u8>>> {
        let (loc, file) = {
            let st = self.state.read();
            let Some(&loc) = st.index.get(&index) else {
                return Ok(None);
            };
            let Some(seg) = st.segments.get(&loc.seq) else {
                return Ok(None);
            };
            (loc, seg.file.clone())
        };
        let mut buf = vec![0; loc.len as usize];
        file.read_exact_at(&mut buf, loc.offset)?;
        Ok(Some(buf))
    }

    /// The indexes stored in `range`, in order.
    pub(crate) fn indexes(&self, range: impl std::ops::RangeBounds<u64>) -> Vec<u64> {
        self.state
            .read()
            .index
            .range(range)
            .map(|(&i, _)| i)
            .collect()
    }

    /// The highest stored index.
    pub(crate) fn last_index(&self) -> Option<u64> {
        self.state.read().index.last_key_value().map(|(&i, _)| i)
    }

    /// The lowest stored index.
    #[cfg(test)]
    pub(crate) fn first_index(&self) -> Option<u64> {
        self.state.read().index.first_key_value().map(|(&i, _)| i)
    }

    /// Byte lengths of the stored entries at or below `upto`, newest first,
    /// at most `max` of them.
    pub(crate) fn lengths_down_from(&self, upto: u64, max: usize) -> Vec<(u64, u64)> {
        self.state
            .read()
            .index
            .range(..=upto)
            .rev()
            .take(max)
            .map(|(&i, l)| (i, u64::from(l.len)))
            .collect()
    }

    /// Forgets the entries below `end` and returns the oldest segments that
    /// hold nothing else (never the newest segment): the caller deletes
    /// them ([`Segments::delete`]) once the purge point is durable.
    pub(crate) fn forget_below(&self, end: u64) -> Vec<Forgotten> {
        let mut st = self.state.write();
        let kept = st.index.split_off(&end);
        st.index = kept;
        let newest = st.segments.last_key_value().map(|(&s, _)| s);
        let mut gone = Vec::new();
        while let Some((&seq, seg)) = st.segments.first_key_value() {
            if Some(seq) == newest || seg.max_index.is_some_and(|m| m >= end) {
                break;
            }
            if let Some(seg) = st.segments.remove(&seq) {
                gone.push(Forgotten {
                    path: segment_path(&self.dir, seq),
                    file: seg.file,
                });
            }
        }
        gone
    }

    /// Makes segment `seq` the newest (synced into the directory) and
    /// returns its file: the prepared one if `prepared` (see [`prepare`]),
    /// else a new empty file that grows as records are appended.
    fn start_segment(&self, seq: u64, prepared: bool) -> io::Result<Arc<File>> {
        let path = segment_path(&self.dir, seq);
        let file = if prepared {
            std::fs::rename(self.dir.join(PREPARED), &path)?;
            OpenOptions::new().read(true).write(true).open(&path)?
        } else {
            OpenOptions::new()
                .create_new(true)
                .read(true)
                .write(true)
                .open(&path)?
        };
        let file = Arc::new(file);
        sync_dir(&self.dir)?;
        self.state.write().segments.insert(
            seq,
            Segment {
                file: file.clone(),
                max_index: None,
            },
        );
        Ok(file)
    }

    /// Keeps the purged segment at `path` for reuse unless `spare` are
    /// kept already: its first block zeroed and synced (so that it reads as
    /// empty under any name), then renamed (made durable by the caller's
    /// directory sync). Whether it was kept. The pool's lock is not held
    /// over the sync: the writer takes from the pool when a segment starts.
    /// Only the purger adds to it, so the count checked first can only
    /// have fallen by the time this one is added.
    fn recycle(&self, path: &Path, file: &File) -> io::Result<bool> {
        if self.free.lock().len() >= self.spare {
            return Ok(false);
        }
        let size = file.metadata()?.len();
        let zeroed = FREE_ZEROED.min(size as usize);
        if zeroed < HEADER {
            return Ok(false);
        }
        file.write_all_at(&[0; FREE_ZEROED][..zeroed], 0)?;
        file.sync_data()?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let seq = name.split('.').next().unwrap_or_default();
        let to = self.dir.join(format!("{seq}.{FREE}"));
        std::fs::rename(path, &to)?;
        self.free.lock().push(to);
        Ok(true)
    }

    /// Renames a kept segment to [`PREPARED`] if there is one (the caller
    /// makes sure no preparation writes that name meanwhile).
    fn take_free(&self) -> bool {
        let Some(path) = self.free.lock().pop() else {
            return false;
        };
        match std::fs::rename(&path, self.dir.join(PREPARED)) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("cannot reuse a purged raft log segment ({e})");
                false
            }
        }
    }

    fn has_free(&self) -> bool {
        !self.free.lock().is_empty()
    }

    /// Deletes segment files [`Segments::forget_below`] gave up, their
    /// blocks freed in steps ([`step_synced::shrink_in_steps`]) where no
    /// read holds them. A shrinking segment first gets a name no open
    /// reads as a segment ([`DELETING`]), durably, so a crash can never
    /// leave a cut segment under a segment's name.
    pub(crate) fn delete(&self, gone: Vec<Forgotten>) -> io::Result<()> {
        if gone.is_empty() {
            return Ok(());
        }
        let mut shrinking = Vec::new();
        for g in gone {
            match Arc::try_unwrap(g.file) {
                Ok(file) => {
                    let to = g.path.with_extension(DELETING);
                    match std::fs::rename(&g.path, &to) {
                        Ok(()) => shrinking.push((to, file)),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
                // A read still has it open: unlinked whole.
                Err(_) => remove_if_present(&g.path)?,
            }
        }
        if !shrinking.is_empty() {
            sync_dir(&self.dir)?;
        }
        for (path, file) in shrinking {
            if self.recycle(&path, &file)? {
                continue;
            }
            if let Err(e) = step_synced::shrink_in_steps(&file) {
                tracing::warn!("cannot free a purged segment's blocks in steps ({e})");
            }
            drop(file);
            remove_if_present(&path)?;
        }
        sync_dir(&self.dir)
    }
}

/// Opens the segments in `dir`, rebuilds the index from them and cuts a
/// torn tail off the newest one; up to `spare` purged segments will be
/// kept for reuse. Returns the segments, the newest segment's sequence
/// number, its records' length and whether it was written before
/// checksums were seeded. Blocking.
fn open_segments(
    dir: &Path,
    spare: usize,
) -> crate::error::Result<(Arc<Segments>, u64, u64, bool)> {
    let seqs = list_segments(dir)?;
    let mut st = State::default();
    let mut tail = (0, 0, false);
    for (n, &seq) in seqs.iter().enumerate() {
        let path = segment_path(dir, seq);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let bytes = std::fs::read(&path)?;
        let Decoded {
            ops,
            valid,
            unseeded,
        } = decode(&bytes, seq);
        // What follows the records: zeros (never written), or a torn or
        // damaged record, up to its last byte that is not zero.
        let junk_end = bytes[valid..]
            .iter()
            .rposition(|&b| b != 0)
            .map(|at| valid + at + 1);
        if let Some(junk_end) = junk_end {
            if n + 1 < seqs.len() {
                // Only the newest segment is ever written unsynced: open
                // cuts its tail before a newer one can exist.
                return Err(crate::error::TxlogError::Raft(format!(
                    "raft log segment {} is damaged at byte {valid}",
                    path.display()
                )));
            }
            tracing::warn!(
                segment = %path.display(),
                cut = junk_end - valid,
                "cutting unacknowledged bytes off the raft log's end"
            );
            // Zeros over them, so that no piece of them can follow a
            // record written there later; else the file ends before them.
            if let Err(e) = fill_zeros(&file, valid as u64, junk_end as u64) {
                tracing::warn!("cannot write zeros over the cut bytes ({e}); truncating");
                file.set_len(valid as u64)?;
                file.sync_all()?;
            }
        }
        st.segments.insert(
            seq,
            Segment {
                file: Arc::new(file),
                max_index: None,
            },
        );
        for op in ops {
            st.apply(seq, op);
        }
        tail = (seq, valid as u64, unseeded);
    }
    // The newest segment's records may be only in the page cache (a kill -9
    // between a write and its sync, or an oversized batch that filled the
    // segment). From here they count as durable (openraft's state at start,
    // the flush callbacks of what follows), and the next segment may start
    // at once, so they are synced first. Every older segment was synced
    // before the one after it started.
    if let Some(newest) = st.segments.get(&tail.0) {
        newest.file.sync_data()?;
    }
    let _ = std::fs::remove_file(dir.join(PREPARED));
    let free = tidy_purged(dir, spare)?;
    let last = st.index.last_key_value().map_or(0, |(&i, _)| i);
    let segments = Arc::new(Segments {
        dir: dir.to_path_buf(),
        state: RwLock::new(st),
        written: AtomicU64::new(0),
        durable: tokio::sync::watch::Sender::new(Durable {
            index: last,
            failed: false,
        }),
        free: parking_lot::Mutex::new(free),
        spare,
    });
    Ok((segments, tail.0, tail.1, tail.2))
}

/// Writes zeros over `from..to` of `file` and syncs it (its size too),
/// a [`STEP`] at a time (see [`step_synced`]).
fn fill_zeros(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeros = vec![0u8; STEP.min(to.saturating_sub(from)) as usize];
    let mut at = from;
    while at < to {
        let n = (to - at).min(STEP) as usize;
        file.write_all_at(&zeros[..n], at)?;
        file.sync_data()?;
        at += n as u64;
    }
    file.sync_all()
}

/// Prepares the next segment in `dir` (the [`PREPARED`] file): `bytes` of
/// zeros, synced. On failure (a full disk) nothing is left behind.
fn prepare(dir: &Path, bytes: u64) -> io::Result<()> {
    let path = dir.join(PREPARED);
    let r = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .and_then(|f| fill_zeros(&f, 0, bytes));
    if r.is_err() {
        let _ = std::fs::remove_file(&path);
    }
    r
}

/// Fills the newest segment with zeros up to `bytes`, so that appends to it
/// overwrite. Left as it is (records are appended, the file grows) when
/// that fails.
fn preallocate_tail(segments: &Segments, seq: u64, bytes: u64) {
    let Some(file) = segments
        .state
        .read()
        .segments
        .get(&seq)
        .map(|s| s.file.clone())
    else {
        return;
    };
    let Ok(size) = file.metadata().map(|m| m.len()) else {
        return;
    };
    if size >= bytes {
        return;
    }
    if let Err(e) = fill_zeros(&file, size, bytes) {
        tracing::warn!(
            "cannot preallocate the raft log's segment ({e}); it grows as it is written"
        );
        if file.set_len(size).and_then(|()| file.sync_all()).is_err() {
            tracing::warn!("cannot cut the raft log's segment back after a failed preallocation");
        }
    }
}

/// Who hears that a record is durable.
pub(crate) enum Done {
    Raft(IOFlushed<TypeConfig>),
    Wait(tokio::sync::oneshot::Sender<io::Result<()>>),
}

impl Done {
    pub(crate) fn complete_with(self, r: io::Result<()>) {
        match self {
            Done::Raft(cb) => cb.io_completed(r),
            Done::Wait(tx) => {
                let _ = tx.send(r);
            }
        }
    }
}

struct Job {
    record: Record,
    done: Done,
}

/// The writer's handle: records go to its thread, in order.
pub(crate) struct Journal {
    jobs: mpsc::Sender<Job>,
    segments: Arc<Segments>,
    /// Jobs sent so far (the next one gets this number plus one).
    sent: AtomicU64,
}

impl Journal {
    /// Opens the log in `dir` (see [`open_segments`]) and starts its
    /// writer thread. Blocking.
    /// `segment_bytes`: see [`SEGMENT_BYTES`]; `spare_bytes`: see
    /// [`SPARE_BYTES`].
    pub(crate) fn open(
        dir: &Path,
        segment_bytes: u64,
        spare_bytes: u64,
    ) -> crate::error::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let lock = lock_dir(dir)?;
        let spare = usize::try_from(spare_bytes / segment_bytes.max(1)).unwrap_or(usize::MAX);
        let (segments, seq, len, unseeded) = open_segments(dir, spare)?;
        // An unseeded segment is only read: records seeded after unseeded
        // ones would not be read back.
        let (seq, len) = if seq == 0 || len >= segment_bytes || unseeded {
            let prepared = prepare(dir, segment_bytes).is_ok();
            segments.start_segment(seq + 1, prepared)?;
            (seq + 1, 0)
        } else {
            preallocate_tail(&segments, seq, segment_bytes);
            (seq, len)
        };
        let (tx, rx) = mpsc::channel();
        let writer = Writer {
            _lock: lock,
            segments: segments.clone(),
            segment_bytes,
            seq,
            len,
            failed: None,
            preparing: None,
            syncs: 0,
        };
        std::thread::Builder::new()
            .name("raft log writer".into())
            .spawn(move || writer.run(rx))?;
        Ok(Self {
            jobs: tx,
            segments,
            sent: AtomicU64::new(0),
        })
    }

    pub(crate) fn segments(&self) -> &Arc<Segments> {
        &self.segments
    }

    /// Queues `record`; `done` hears when it is durable. Returns the job's
    /// number (see [`Journal::written`]), or gives `done` back if the
    /// writer is gone. Callers send in log order (openraft's log I/O is
    /// sequential).
    pub(crate) fn write(&self, mut record: Record, done: Done) -> Result<u64, Done> {
        record.seal();
        let job = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        self.jobs
            .send(Job { record, done })
            .map_err(|mpsc::SendError(job)| job.done)?;
        Ok(job)
    }

    /// Jobs whose entries are in the index (readable from the segments),
    /// by number: every job up to this one.
    pub(crate) fn written(&self) -> u64 {
        self.segments.written.load(Ordering::SeqCst)
    }

    /// Waits until every entry up to `index` is on disk. An error once the
    /// log failed to write before getting there.
    pub(crate) async fn durable(&self, index: u64) -> io::Result<()> {
        let reached = |d: &Durable| d.index >= index;
        if reached(&self.segments.durable.borrow()) {
            return Ok(());
        }
        let mut rx = self.segments.durable.subscribe();
        let d = *rx
            .wait_for(|d| d.failed || reached(d))
            .await
            .map_err(|_| io::Error::other("the raft log writer stopped"))?;
        if reached(&d) {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "the raft log failed before entry {index} was on disk"
            )))
        }
    }
}

/// How long [`lock_dir`] waits for a previous writer to finish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Locks `dir` for one writer: a store opened again in the same process
/// (the embedded log reopens after a storage failure) must not read the
/// segments while the previous writer thread still writes what was queued.
fn lock_dir(dir: &Path) -> crate::error::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match f.try_lock() {
            Ok(()) => return Ok(f),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(crate::error::TxlogError::Raft(format!(
                    "raft log {} is in use by another writer",
                    dir.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}

/// The durable index once `batch` is synced after `index` was: a
/// truncation lowers it, appended entries (which follow the log's end, or a
/// purge point past it) raise it.
fn durable_after(mut index: u64, batch: &[Job]) -> u64 {
    for job in batch {
        if let Some(from) = job.record.truncate {
            index = index.min(from.saturating_sub(1));
        }
        if let Some(&(last, _, _)) = job.record.entries.last() {
            index = index.max(last);
        }
    }
    index
}

struct Writer {
    /// Held until the thread ends (see [`lock_dir`]).
    _lock: File,
    segments: Arc<Segments>,
    segment_bytes: u64,
    seq: u64,
    len: u64,
    /// Set by a failed write or sync: the file may end in a partial record
    /// that would hide every later one, so nothing more is written
    /// (openraft stops the node on a storage error; a reopen cuts the
    /// tail).
    failed: Option<String>,
    /// The thread preparing the next segment, once the current one is half
    /// full (see [`prepare`]).
    preparing: Option<std::thread::JoinHandle<io::Result<()>>>,
    /// Syncs into the current segment (see [`PREPARE_BELOW_BYTES_PER_SYNC`]).
    syncs: u64,
}

impl Writer {
    fn run(mut self, jobs: mpsc::Receiver<Job>) {
        let mut batch = Vec::new();
        let mut buf = Vec::new();
        let mut done_jobs = self.segments.written.load(Ordering::SeqCst);
        while let Ok(first) = jobs.recv() {
            batch.push(first);
            while let Ok(more) = jobs.try_recv() {
                batch.push(more);
            }
            let result = self.write_batch(&batch, &mut buf);
            done_jobs += batch.len() as u64;
            self.segments.written.store(done_jobs, Ordering::SeqCst);
            self.segments.durable.send_modify(|d| match &result {
                Ok(()) => d.index = durable_after(d.index, &batch),
                Err(_) => d.failed = true,
            });
            for job in batch.drain(..) {
                job.done.complete_with(match &result {
                    Ok(()) => Ok(()),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                });
            }
            if buf.capacity() > 4 * 1024 * 1024 {
                buf = Vec::new();
            }
        }
        // Before the directory lock goes with `self`: a store opened again
        // must not find this thread still writing its prepared file.
        if let Some(h) = self.preparing.take() {
            let _ = h.join();
        }
    }

    fn write_batch(&mut self, batch: &[Job], buf: &mut Vec<u8>) -> io::Result<()> {
        if let Some(why) = &self.failed {
            return Err(io::Error::other(why.clone()));
        }
        let r = self.try_write_batch(batch, buf);
        if let Err(e) = &r {
            tracing::error!("raft log write failed: {e}");
            self.failed = Some(format!("raft log segment: {e}"));
        }
        r
    }

    fn try_write_batch(&mut self, batch: &[Job], buf: &mut Vec<u8>) -> io::Result<()> {
        let bytes: u64 = batch.iter().map(|j| j.record.bytes.len() as u64).sum();
        let current = |s: &Segments, seq| match s.state.read().segments.get(&seq) {
            Some(s) => Ok(s.file.clone()),
            None => Err(io::Error::other("the current segment was deleted")),
        };
        if self.len > 0 && self.len + bytes > self.segment_bytes {
            // Only the newest segment may end in anything but records (a
            // prepared one's zeros, a recycled one's old records).
            let file = current(&self.segments, self.seq)?;
            if file.metadata()?.len() > self.len {
                file.set_len(self.len)?;
                file.sync_all()?;
            }
            let prepared = self.take_prepared() || self.segments.take_free();
            self.segments.start_segment(self.seq + 1, prepared)?;
            self.seq += 1;
            self.len = 0;
            self.syncs = 0;
        }
        buf.clear();
        for job in batch {
            let at = buf.len();
            buf.extend_from_slice(&job.record.bytes);
            let header = &mut buf[at..at + HEADER];
            let plain = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
            header[4..HEADER].copy_from_slice(&record_crc(self.seq, plain).to_le_bytes());
        }
        let file = current(&self.segments, self.seq)?;
        file.write_all_at(buf, self.len)?;
        // Readable (from the page cache) before it is durable, as openraft
        // allows: replication reads what was appended.
        {
            let mut st = self.segments.state.write();
            let mut at = self.len;
            for job in batch {
                let r = &job.record;
                if let Some(from) = r.truncate {
                    st.apply(self.seq, Op::TruncateFrom(from));
                }
                for &(index, offset, len) in &r.entries {
                    st.apply(
                        self.seq,
                        Op::Insert {
                            index,
                            offset: at + offset as u64,
                            len,
                        },
                    );
                }
                at += r.bytes.len() as u64;
            }
        }
        let half = self.segment_bytes / 2;
        let crossed_half = self.len <= half && self.len + buf.len() as u64 > half;
        self.len += buf.len() as u64;
        let r = file.sync_data();
        self.syncs += 1;
        if crossed_half
            && self.len <= self.syncs * PREPARE_BELOW_BYTES_PER_SYNC
            && self.preparing.is_none()
            && !self.segments.has_free()
        {
            let (dir, bytes) = (self.segments.dir.clone(), self.segment_bytes);
            self.preparing = std::thread::Builder::new()
                .name("raft log segment preparer".into())
                .spawn(move || prepare(&dir, bytes))
                .ok();
        }
        r
    }

    /// Whether the next segment is prepared, once its preparation (begun
    /// half a segment ago) is done; a failed one is only logged.
    fn take_prepared(&mut self) -> bool {
        match self.preparing.take().map(|h| h.join()) {
            Some(Ok(Ok(()))) => true,
            Some(Ok(Err(e))) => {
                tracing::warn!(
                    "cannot prepare the raft log's next segment ({e}); it grows as it is written"
                );
                false
            }
            Some(Err(_)) | None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `r` as written before checksums were seeded.
    fn sealed(mut r: Record) -> Vec<u8> {
        r.seal();
        r.bytes
    }

    /// `r` as the writer writes it into segment `seq`.
    fn sealed_in(seq: u64, r: Record) -> Vec<u8> {
        let mut b = sealed(r);
        let plain = u32::from_le_bytes(b[4..HEADER].try_into().expect("4"));
        b[4..HEADER].copy_from_slice(&record_crc(seq, plain).to_le_bytes());
        b
    }

    fn inserted(ops: &[Op]) -> Vec<u64> {
        ops.iter()
            .filter_map(|o| match o {
                Op::Insert { index, .. } => Some(*index),
                Op::TruncateFrom(_) => None,
            })
            .collect()
    }

    #[test]
    fn records_decode_to_their_operations_and_a_torn_tail_is_dropped() {
        let mut a = Record::entries();
        a.push_entry(5, b"five");
        a.push_entry(6, b"");
        let mut bytes = sealed_in(4, a);
        bytes.extend(sealed_in(4, Record::truncate(6)));
        let mut c = Record::entries();
        c.push_entry(6, b"six'");
        let last_start = bytes.len();
        bytes.extend(sealed_in(4, c));
        let Decoded {
            ops,
            valid,
            unseeded,
        } = decode(&bytes, 4);
        assert_eq!(valid, bytes.len());
        assert!(!unseeded);
        assert_eq!(inserted(&ops), vec![5, 6, 6]);
        assert_eq!(ops[2], Op::TruncateFrom(6));
        let Op::Insert { offset, len, .. } = ops[3] else {
            panic!("insert")
        };
        assert_eq!(&bytes[offset as usize..][..len as usize], b"six'");
        // Every cut inside the last record drops it, and only it.
        for cut in last_start + 1..bytes.len() {
            let d = decode(&bytes[..cut], 4);
            assert_eq!((d.ops.len(), d.valid), (3, last_start), "cut at {cut}");
        }
        // A flipped bit, or zeros where a record should be, end it too.
        let mut damaged = bytes.clone();
        damaged[last_start + HEADER + 3] ^= 1;
        assert_eq!(decode(&damaged, 4).valid, last_start);
        let mut zeros = bytes[..last_start].to_vec();
        zeros.extend([0u8; 64]);
        assert_eq!(decode(&zeros, 4).valid, last_start);
        // The same records in another segment (a recycled one's old
        // records): none of them.
        assert_eq!(decode(&bytes, 5).valid, 0);
        // Records of before the seeding: read as they are, and only in a
        // segment that starts with one.
        let mut old = Record::entries();
        old.push_entry(1, b"one");
        let old = sealed(old);
        let d = decode(&old, 4);
        assert_eq!((d.valid, d.unseeded), (old.len(), true));
        let mut mixed = bytes.clone();
        mixed.extend(&old);
        assert_eq!(decode(&mixed, 4).valid, bytes.len());
    }

    fn write_sync(j: &Journal, r: Record) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if j.write(r, Done::Wait(tx)).is_err() {
            panic!("writer gone");
        }
        rx.blocking_recv().expect("answered").expect("durable");
    }

    fn entries(range: std::ops::RangeInclusive<u64>, tag: &str) -> Record {
        let mut r = Record::entries();
        for i in range {
            r.push_entry(i, format!("{tag}{i}").as_bytes());
        }
        r
    }

    fn contents(s: &Segments) -> Vec<(u64, String)> {
        s.indexes(..)
            .into_iter()
            .map(|i| {
                let b = s.read(i).expect("read").expect("stored");
                (i, String::from_utf8(b).expect("utf8"))
            })
            .collect()
    }

    #[test]
    fn the_index_is_rebuilt_from_the_segments_with_truncations_and_a_torn_tail_cut() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("open");
        write_sync(&j, entries(1..=10, "a"));
        write_sync(&j, Record::truncate(8));
        write_sync(&j, entries(8..=9, "b"));
        let before = contents(j.segments());
        assert_eq!(before.len(), 9);
        assert_eq!(before[7], (8, "b8".to_string()));
        drop(j);
        // An unacknowledged record, torn by a crash, after the last one in
        // the preallocated segment.
        let seg = segment_path(dir.path(), 1);
        let bytes = std::fs::read(&seg).expect("read");
        assert_eq!(bytes.len() as u64, SEGMENT_BYTES, "preallocated");
        let end = decode(&bytes, 1).valid;
        assert!(bytes[end..].iter().all(|&b| b == 0));
        let mut torn = sealed_in(1, entries(10..=10, "c"));
        torn.truncate(torn.len() - 2);
        let f = OpenOptions::new().write(true).open(&seg).expect("open");
        f.write_all_at(&torn, end as u64).expect("write");
        // ... and a page of it that reached the disk without the one before.
        f.write_all_at(b"stray", end as u64 + 5000).expect("write");
        drop(f);

        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("reopen");
        assert_eq!(contents(j.segments()), before);
        let after_open = std::fs::read(&seg).expect("read");
        assert_eq!(after_open.len() as u64, SEGMENT_BYTES);
        assert!(
            after_open[end..].iter().all(|&b| b == 0),
            "the torn record is overwritten with zeros"
        );
        // Appends go on after the cut, and survive the next open.
        write_sync(&j, entries(10..=10, "d"));
        drop(j);
        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("reopen");
        let after = contents(j.segments());
        assert_eq!(after.last(), Some(&(10, "d10".to_string())));
        assert_eq!(after.len(), 10);

        // Damage anywhere but the newest segment's tail is an error; zeros
        // after an older segment's records are not damage.
        drop(j);
        std::fs::write(
            segment_path(dir.path(), 2),
            sealed_in(2, Record::truncate(1)),
        )
        .expect("seg2");
        drop(
            Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("zeros after the records"),
        );
        let mut bad = std::fs::read(&seg).expect("read");
        let end = decode(&bad, 1).valid;
        bad[end - 1] ^= 1;
        std::fs::write(&seg, bad).expect("damage");
        assert!(Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).is_err());
    }

    #[test]
    fn durable_follows_synced_appends_and_truncations() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("open");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let now = |index: u64| {
            rt.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(50), j.durable(index))
                    .await
                    .is_ok()
            })
        };
        write_sync(&j, entries(1..=10, "a"));
        assert!(now(10));
        assert!(!now(11), "waits for entries not yet synced");
        write_sync(&j, Record::truncate(8));
        assert!(now(7));
        assert!(!now(8), "the truncated entries are not on disk any more");
        write_sync(&j, entries(8..=9, "b"));
        assert!(now(9));
        let mut r = Record::entries();
        r.push_entry(20, b"after a purge point");
        write_sync(&j, r);
        assert!(now(20));
        drop(j);
        // At open, what the segments hold is on disk.
        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("reopen");
        assert_eq!(j.segments.durable.borrow().index, 20);
    }

    /// Writes entries `1..=n` of `bytes` each, one record (and sync) per
    /// entry; returns the file length of segment `seq` after.
    fn write_each(j: &Journal, dir: &Path, n: u64, bytes: &[u8], seq: u64) -> u64 {
        for i in 1..=n {
            let mut r = Record::entries();
            r.push_entry(i, bytes);
            write_sync(j, r);
        }
        std::fs::metadata(segment_path(dir, seq))
            .expect("stat")
            .len()
    }

    #[test]
    fn a_segment_filled_by_small_syncs_gets_a_prepared_successor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = 256 * 1024;
        let j = Journal::open(dir.path(), segment, SPARE_BYTES).expect("open");
        assert_eq!(
            std::fs::metadata(segment_path(dir.path(), 1))
                .expect("stat")
                .len(),
            segment,
            "the first segment is preallocated at open"
        );
        // 80 records of ~4 KiB: segment 2 holds less than its first half.
        let len2 = write_each(&j, dir.path(), 80, &[3u8; 4096], 2);
        assert_eq!(list_segments(dir.path()).expect("ls"), vec![1, 2]);
        assert_eq!(len2, segment, "segment 2 was prepared while 1 filled");
        assert!(!dir.path().join(PREPARED).exists());
        assert_eq!(j.segments().indexes(..).len(), 80);
    }

    #[test]
    fn segments_roll_over_and_only_a_fully_purged_prefix_of_them_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("open");
        // 9 entries of an eighth of a segment each (and a header): segment
        // 1 holds 1..=7, segment 2 the rest.
        let big = vec![7u8; SEGMENT_BYTES as usize / 8];
        let len2 = write_each(&j, dir.path(), 9, &big, 2);
        assert_eq!(list_segments(dir.path()).expect("ls"), vec![1, 2]);
        // A sync per MiB is far above PREPARE_BELOW_BYTES_PER_SYNC: segment
        // 2 was not prepared, it grows as it is written.
        assert!(len2 < SEGMENT_BYTES, "segment 2 is {len2} bytes");
        // Entry 3 is truncated in segment 2 and written again there.
        write_sync(&j, Record::truncate(3));
        write_sync(&j, entries(3..=3, "x"));
        let s = j.segments().clone();
        assert_eq!(s.indexes(..), vec![1, 2, 3]);
        assert_eq!(s.read(3).expect("read"), Some(b"x3".to_vec()));
        // Segment 1 still holds entries up to 7 (truncated, but a rebuild
        // would bring them back without segment 2's truncation): kept.
        assert!(s.forget_below(3).is_empty());
        assert_eq!(s.indexes(..), vec![3]);
        let gone = s.forget_below(8);
        let paths: Vec<_> = gone.iter().map(|g| g.path.clone()).collect();
        assert_eq!(paths, vec![segment_path(dir.path(), 1)]);
        s.delete(gone).expect("delete");
        assert_eq!(list_segments(dir.path()).expect("ls"), vec![2]);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(
            names.iter().all(|n| !n.to_string_lossy().ends_with(".del")),
            "{names:?}"
        );
        // The newest segment stays whatever was purged.
        assert!(s.forget_below(100).is_empty());
        assert_eq!(j.written(), 11);
    }

    #[test]
    fn a_segment_left_half_deleted_is_removed_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("open");
        write_sync(&j, entries(1..=2, "a"));
        drop(j);
        // What a crash inside Segments::delete leaves: renamed, partly cut.
        let left = dir.path().join(format!("{:020}.{DELETING}", 7));
        std::fs::write(&left, b"cut segment").expect("write");
        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("reopen");
        assert!(!left.exists());
        assert_eq!(j.segments().indexes(..), vec![1, 2]);
    }

    fn inode(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).expect("stat").ino()
    }

    #[test]
    fn a_purged_segment_is_reused_and_its_old_records_never_come_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let segment = 64 * 1024;
        let j = Journal::open(dir.path(), segment, SPARE_BYTES).expect("open");
        let fill = |j: &Journal, range: std::ops::RangeInclusive<u64>, tag: &str| {
            for i in range {
                let mut r = Record::entries();
                r.push_entry(i, format!("{tag}{i}:{}", "x".repeat(4000)).as_bytes());
                write_sync(j, r);
            }
        };
        // Segment 1: entries 1..=8, a truncation of 6.., 6..=12 again: what
        // it holds must never be read once it is reused.
        fill(&j, 1..=8, "a");
        write_sync(&j, Record::truncate(6));
        fill(&j, 6..=40, "b");
        let s = j.segments().clone();
        assert!(list_segments(dir.path()).expect("ls").len() >= 3);
        let first = segment_path(dir.path(), 1);
        let ino = inode(&first);
        let gone = s.forget_below(20);
        assert!(!gone.is_empty());
        s.delete(gone).expect("delete");
        let free = dir.path().join(format!("{:020}.{FREE}", 1));
        assert_eq!(inode(&free), ino, "the purged segments are kept");
        let head = std::fs::read(&free).expect("read");
        assert!(head[..FREE_ZEROED].iter().all(|&b| b == 0));
        assert!(
            head[FREE_ZEROED..].iter().any(|&b| b != 0),
            "its old records stay"
        );
        // A segment that starts takes it (unless its successor was being
        // prepared already).
        let mut i = 41;
        while free.exists() {
            fill(&j, i..=i, "c");
            i += 1;
        }
        let newest = *list_segments(dir.path()).expect("ls").last().expect("one") - 1;
        let reused = segment_path(dir.path(), newest + 1);
        assert_eq!(inode(&reused), ino);
        fill(&j, i..=i + 1, "d");
        let before = contents(j.segments());
        let indexes: Vec<u64> = before.iter().map(|e| e.0).collect();
        let first = indexes[0];
        assert!(first <= 20, "{first}");
        assert_eq!(indexes, (first..=i + 1).collect::<Vec<_>>());
        drop(j);
        // Reopened with the reused segment newest: its old records are cut
        // (zeros over them), none read.
        let j = Journal::open(dir.path(), segment, SPARE_BYTES).expect("reopen");
        same_from(&contents(j.segments()), &before);
        let bytes = std::fs::read(&reused).expect("read");
        let end = decode(&bytes, newest + 1).valid;
        assert!(bytes[end..].iter().all(|&b| b == 0));
        // Written on past it, so that it is an older segment: ends at its
        // records (cut when the next one started), not damaged.
        let mut k = i + 2;
        while list_segments(dir.path()).expect("ls").last() == Some(&(newest + 1)) {
            fill(&j, k..=k, "e");
            k += 1;
        }
        let before = contents(j.segments());
        drop(j);
        let j = Journal::open(dir.path(), segment, SPARE_BYTES).expect("reopen with it older");
        same_from(&contents(j.segments()), &before);
        assert_eq!(before.last().map(|e| e.0), Some(k - 1));
    }

    #[test]
    fn every_segment_seeds_checksums_its_own_way() {
        let mut tags = std::collections::HashSet::new();
        for seq in 1..=200_000u64 {
            let tag = record_crc(seq, 0);
            assert_ne!(tag, 0, "segment {seq} would read as unseeded");
            assert!(tags.insert(tag), "segment {seq} shares its tag");
            assert_eq!(record_crc(seq, record_crc(seq, 0x1234_5678)), 0x1234_5678);
        }
    }

    fn free_segments(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .expect("ls")
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(FREE))
            })
            .count()
    }

    #[test]
    fn purged_segments_are_kept_up_to_the_spare_bytes_and_the_rest_deleted() {
        let segment = 64 * 1024;
        for (spare_segments, kept) in [(0, 0), (2, 2)] {
            let dir = tempfile::tempdir().expect("tempdir");
            let j = Journal::open(dir.path(), segment, spare_segments * segment).expect("open");
            for i in 1..=60 {
                let mut r = Record::entries();
                r.push_entry(i, "x".repeat(8000).as_bytes());
                write_sync(&j, r);
            }
            let before = list_segments(dir.path()).expect("ls").len();
            assert!(before >= 6, "{before} segments");
            let s = j.segments().clone();
            let gone = s.forget_below(55);
            assert!(gone.len() >= 4, "{} purged", gone.len());
            let purged = gone.len();
            s.delete(gone).expect("delete");
            assert_eq!(free_segments(dir.path()), kept as usize);
            assert_eq!(
                list_segments(dir.path()).expect("ls").len(),
                before - purged
            );
            // Reopened, the kept segments stay kept (none of them read),
            // and the next segment to start takes one.
            drop(j);
            let j = Journal::open(dir.path(), segment, spare_segments * segment).expect("reopen");
            assert_eq!(free_segments(dir.path()), kept as usize);
            let newest = *list_segments(dir.path()).expect("ls").last().expect("one");
            let mut i = 61;
            while list_segments(dir.path()).expect("ls").last() == Some(&newest) {
                let mut r = Record::entries();
                r.push_entry(i, "y".repeat(8000).as_bytes());
                write_sync(&j, r);
                i += 1;
            }
            assert_eq!(free_segments(dir.path()), (kept as usize).saturating_sub(1));
            let indexes: Vec<u64> = contents(j.segments()).iter().map(|e| e.0).collect();
            assert_eq!(indexes.last(), Some(&(i - 1)));
            // Reopened with no spare bytes: all of them deleted.
            drop(j);
            let j = Journal::open(dir.path(), segment, 0).expect("reopen without spares");
            assert_eq!(free_segments(dir.path()), 0);
            let after: Vec<u64> = contents(j.segments()).iter().map(|e| e.0).collect();
            assert_eq!(after, indexes);
        }
    }

    /// `after` (a reopened log) holds `before` (the log as it was written,
    /// from its purge point on), and below it only what a segment kept
    /// whole still holds (the purge point is openraft's to keep): entries
    /// in order, none of the reused segment's old records.
    fn same_from(after: &[(u64, String)], before: &[(u64, String)]) {
        let first = before[0].0;
        let kept = after.iter().take_while(|e| e.0 < first).count();
        assert!(after[kept..] == *before, "entries differ after reopening");
        let indexes: Vec<u64> = after.iter().map(|e| e.0).collect();
        let expected: Vec<u64> = (indexes[0]..indexes[0] + indexes.len() as u64).collect();
        assert_eq!(indexes, expected);
        assert!(after[..kept]
            .iter()
            .all(|(i, v)| v.starts_with(&format!("b{i}:"))));
    }

    #[test]
    fn a_segment_of_before_the_seeding_is_read_and_left_as_it_is() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut bytes = sealed(entries(1..=3, "old"));
        bytes.extend(sealed(entries(4..=4, "old")));
        std::fs::write(segment_path(dir.path(), 1), &bytes).expect("write");
        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("open");
        assert_eq!(contents(j.segments()).len(), 4);
        write_sync(&j, entries(5..=6, "new"));
        assert_eq!(list_segments(dir.path()).expect("ls"), vec![1, 2]);
        assert_eq!(
            std::fs::read(segment_path(dir.path(), 1)).expect("read"),
            bytes
        );
        let before = contents(j.segments());
        drop(j);
        let j = Journal::open(dir.path(), SEGMENT_BYTES, SPARE_BYTES).expect("reopen");
        assert_eq!(contents(j.segments()), before);
        assert_eq!(before.last(), Some(&(6, "new6".to_string())));
    }
}
