//! Snapshots of the data set as of a position in the transaction log.
//!
//! A snapshot holds the data set as effect records (one `RESTORE key ttl
//! payload ABSTTL REPLACE` per key, payloads in DUMP format, after one
//! `FUNCTION LOAD REPLACE code` per function library), so recovery
//! loads it through the one replay path, `Engine::apply_effect`. It is taken
//! *as of* a log position: every entry up to `lsn` is in it, plus the first
//! `skip` effect records of entry `lsn + 1` (a SAVE can run in the middle of
//! a group commit). Recovery loads the newest snapshot, then replays the log
//! from `lsn + 1`, skipping those records.
//!
//! [`SnapshotStore`] is the storage interface; [`LocalSnapshotStore`] keeps
//! files under `<data-dir>/snapshots` (the snapshotter issue adds S3). Its
//! methods block on disk: call them from `spawn_blocking`. Files are
//! written and read a record at a time: a snapshot costs no memory beyond
//! the captured data set when saved, and none beyond the data set being
//! rebuilt when loaded.
//!
//! File format (little-endian): `MLSNAP01`, lsn u64, skip u64, log checksum
//! at lsn u32 (0: unknown), created Unix ms i64, body length u64, body (an
//! `EffectBatch` protobuf), crc32c of everything before it u32. A file is
//! written to a temporary name, fsynced, renamed, and the directory fsynced.
//! A forked capture's child writes its body into a file framed already
//! ([`CAPTURE_FRAME`]), which becomes the snapshot file in place.

use std::io::{BufRead, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use memlog_txlog::store::step_synced::{remove_in_steps, StepSyncedFile};
use prost::Message;

use crate::effect::{EffectCommand, EffectRecord, ENGINE_VERSION};
use crate::functions::Functions;
use crate::keyspace::{Key, Keyspace, Value};

const MAGIC: &[u8; 8] = b"MLSNAP01";
const HEADER_LEN: usize = 8 + 8 + 8 + 4 + 8 + 8;
/// Snapshot files kept besides the newest.
const KEEP_OLDER: usize = 1;
/// RESTORE commands per effect record (recovery applies a record at a time).
const KEYS_PER_RECORD: usize = 256;

/// Where a snapshot stands in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SnapshotMeta {
    /// Every log entry up to this LSN is in the snapshot.
    pub lsn: u64,
    /// ... and this many effect records of entry `lsn + 1`.
    pub skip: u64,
    /// The log's running checksum at `lsn` (0: not known).
    pub checksum: u32,
    pub created_ms: i64,
}

/// A data set as of a log position.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub records: Vec<EffectRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot io: {0}")]
    Io(#[from] std::io::Error),
    #[error("snapshot {0} is corrupt: {1}")]
    Corrupt(PathBuf, String),
}

/// Records handed to [`SnapshotStore::load_latest`]'s callback at a time.
pub const LOAD_CHUNK_RECORDS: usize = 64;

/// Storage for snapshots. Methods block: run them on the blocking pool.
pub trait SnapshotStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores `snap` atomically (all or nothing, durable when it returns).
    fn save(&self, snap: &Snapshot) -> Result<(), SnapshotError>;
    /// Loads the newest readable snapshot, if any: checks it whole first
    /// (an unreadable one is skipped for the one before it, and `apply` has
    /// seen nothing of it), then hands its records to `apply` in order, a
    /// few at a time. Returns where it stands in the log.
    fn load_latest(
        &self,
        apply: &mut dyn FnMut(Vec<EffectRecord>),
    ) -> Result<Option<SnapshotMeta>, SnapshotError>;
    /// A local directory where a forked capture may write a snapshot's
    /// body ([`fork_capture`]) for [`SnapshotStore::save_body`]; `None`:
    /// captures are copied in memory instead.
    fn capture_dir(&self) -> Option<PathBuf>;
    /// Stores a snapshot whose body (its records, encoded as [`write`]
    /// encodes them) a forked capture wrote to the file `capture` (in
    /// [`CAPTURE_FRAME`]'s layout), atomically, and consumes `capture`.
    /// Returns the body's length.
    fn save_body(&self, meta: &SnapshotMeta, capture: &Path) -> Result<u64, SnapshotError>;
}

/// Snapshots as files in a local directory.
#[derive(Debug, Clone)]
pub struct LocalSnapshotStore {
    dir: PathBuf,
    /// Held while snapshots are read and while old ones are deleted: they
    /// are cut down in steps before they are unlinked (see
    /// [`remove_in_steps`]), which a reader must never see.
    files: Arc<parking_lot::Mutex<()>>,
}

impl LocalSnapshotStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: Arc::default(),
        }
    }

    fn file_name(meta: &SnapshotMeta) -> String {
        format!("snapshot-{:020}-{:010}.mlsnap", meta.lsn, meta.skip)
    }

    /// Snapshot files, newest first.
    fn list(&self) -> Result<Vec<PathBuf>, SnapshotError> {
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut v: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".mlsnap"))
            })
            .collect();
        v.sort();
        v.reverse();
        Ok(v)
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes a snapshot file to `w` a record at a time: the body (the
/// `EffectBatch` of all records) is never built whole, so a snapshot costs
/// no memory beyond the captured records themselves (encoding it into one
/// buffer and then framing that took two more copies of the data set).
pub fn write(snap: &Snapshot, w: &mut impl Write) -> std::io::Result<()> {
    let body_len = prost::encoding::message::encoded_len_repeated(1, &snap.records);
    write_framed(&snap.meta, body_len as u64, w, |w| {
        let mut buf = Vec::new();
        for r in &snap.records {
            write_record(r, &mut buf, w)?;
        }
        Ok(())
    })
}

/// A snapshot file around a body of `body_len` bytes that `body` writes:
/// header, body, crc32c of both.
fn write_framed<W: Write>(
    meta: &SnapshotMeta,
    body_len: u64,
    w: &mut W,
    body: impl FnOnce(&mut Crc32cWriter<'_, W>) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut w = Crc32cWriter { inner: w, crc: 0 };
    w.write_all(&header(meta, body_len))?;
    body(&mut w)?;
    let crc = w.crc;
    w.inner.write_all(&crc.to_le_bytes())
}

/// A snapshot file's header (see the module docs).
fn header(meta: &SnapshotMeta, body_len: u64) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&meta.lsn.to_le_bytes());
    header.extend_from_slice(&meta.skip.to_le_bytes());
    header.extend_from_slice(&meta.checksum.to_le_bytes());
    header.extend_from_slice(&meta.created_ms.to_le_bytes());
    header.extend_from_slice(&body_len.to_le_bytes());
    header
}

/// One record of a body, which is `EffectBatch { records }`: each record as
/// field 1. Returns the bytes written.
fn write_record(r: &EffectRecord, buf: &mut Vec<u8>, w: &mut impl Write) -> std::io::Result<u64> {
    buf.clear();
    prost::encoding::message::encode(1, r, buf);
    w.write_all(buf)?;
    Ok(buf.len() as u64)
}

/// Passes writes through, keeping the crc32c of everything written.
struct Crc32cWriter<'a, W: Write> {
    inner: &'a mut W,
    crc: u32,
}

impl<W: Write> Write for Crc32cWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Checks a snapshot file whole (header, length, crc32c) without holding
/// it in memory; returns its meta and body length.
fn verify(path: &Path) -> Result<(SnapshotMeta, u64), SnapshotError> {
    let bad = |m: &str| SnapshotError::Corrupt(path.to_path_buf(), m.to_string());
    let mut f = std::fs::File::open(path)?;
    let size = f.metadata()?.len();
    let mut header = [0u8; HEADER_LEN];
    if size < (HEADER_LEN + 4) as u64 || f.read_exact(&mut header).is_err() {
        return Err(bad("bad header"));
    }
    if &header[..8] != MAGIC {
        return Err(bad("bad header"));
    }
    let u64_at = |i: usize| -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&header[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let mut c4 = [0u8; 4];
    c4.copy_from_slice(&header[24..28]);
    let meta = SnapshotMeta {
        lsn: u64_at(8),
        skip: u64_at(16),
        checksum: u32::from_le_bytes(c4),
        created_ms: u64_at(28) as i64,
    };
    let body_len = u64_at(36);
    if body_len.checked_add((HEADER_LEN + 4) as u64) != Some(size) {
        return Err(bad("length mismatch"));
    }
    let mut crc = crc32c::crc32c(&header);
    let mut r = std::io::BufReader::with_capacity(1 << 20, f);
    let mut left = body_len;
    while left > 0 {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(bad("truncated"));
        }
        let n = buf.len().min(left as usize);
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        r.consume(n);
        left -= n as u64;
    }
    let mut tail = [0u8; 4];
    r.read_exact(&mut tail)?;
    if u32::from_le_bytes(tail) != crc {
        return Err(bad("checksum mismatch"));
    }
    Ok((meta, body_len))
}

/// Reads a verified file's records in order (the body is `EffectBatch {
/// records }`: field 1, length-delimited, per record), `LOAD_CHUNK_RECORDS`
/// per call of `apply`.
fn read_records(
    path: &Path,
    body_len: u64,
    apply: &mut dyn FnMut(Vec<EffectRecord>),
) -> Result<(), SnapshotError> {
    let bad = |m: String| SnapshotError::Corrupt(path.to_path_buf(), m);
    let mut r = std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(path)?);
    r.seek(std::io::SeekFrom::Start(HEADER_LEN as u64))?;
    let mut r = r.take(body_len);
    let mut buf = Vec::new();
    let mut chunk = Vec::with_capacity(LOAD_CHUNK_RECORDS);
    while let Some(key) = read_varint(&mut r)? {
        // Field 1, wire type 2 (length-delimited): the only field written.
        if key != (1 << 3) | 2 {
            return Err(bad(format!("unexpected field key {key}")));
        }
        let len = read_varint(&mut r)?.ok_or_else(|| bad("truncated record".into()))?;
        if len > body_len {
            return Err(bad(format!("record of {len} bytes")));
        }
        buf.resize(len as usize, 0);
        r.read_exact(&mut buf)?;
        chunk.push(EffectRecord::decode(&buf[..]).map_err(|e| bad(e.to_string()))?);
        if chunk.len() >= LOAD_CHUNK_RECORDS {
            apply(std::mem::replace(
                &mut chunk,
                Vec::with_capacity(LOAD_CHUNK_RECORDS),
            ));
        }
    }
    if !chunk.is_empty() {
        apply(chunk);
    }
    Ok(())
}

/// A protobuf varint, or `None` at the end of the input.
fn read_varint(r: &mut impl Read) -> std::io::Result<Option<u64>> {
    let mut v = 0u64;
    for i in 0..10 {
        let mut b = [0u8; 1];
        if r.read(&mut b)? == 0 {
            return if i == 0 {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(Some(v));
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "varint longer than 10 bytes",
    ))
}

impl LocalSnapshotStore {
    /// Writes the snapshot file for `meta` with `write`: to a temporary
    /// name, fsynced, renamed, the directory fsynced; then drops the
    /// snapshots the new one makes useless.
    fn store_file(
        &self,
        meta: &SnapshotMeta,
        write: impl FnOnce(&mut std::io::BufWriter<StepSyncedFile>) -> std::io::Result<()>,
    ) -> Result<(), SnapshotError> {
        std::fs::create_dir_all(&self.dir)?;
        let name = Self::file_name(meta);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let written = (|| -> Result<(), SnapshotError> {
            let mut f = std::io::BufWriter::with_capacity(
                1 << 20,
                StepSyncedFile::new(std::fs::File::create(&tmp)?),
            );
            write(&mut f)?;
            f.into_inner()
                .map_err(std::io::IntoInnerError::into_error)?
                .finish()?;
            Ok(())
        })();
        if let Err(e) = written {
            // A full disk, typically: the part written only takes room.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.publish(meta, &tmp)
    }

    /// Renames the complete, synced snapshot file `done` to its name for
    /// `meta`, durably, and removes the snapshots it makes redundant.
    fn publish(&self, meta: &SnapshotMeta, done: &Path) -> Result<(), SnapshotError> {
        std::fs::rename(done, self.dir.join(Self::file_name(meta)))?;
        sync_dir(&self.dir)?;
        // The directory itself may be new (the first snapshot), and the log
        // is trimmed next on the strength of this file.
        if let Some(parent) = self.dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        // Older snapshots are not needed once the log is trimmed past them.
        let _files = self.files.lock();
        for old in self.list()?.into_iter().skip(1 + KEEP_OLDER) {
            let _ = remove_in_steps(&old);
        }
        Ok(())
    }
}

impl SnapshotStore for LocalSnapshotStore {
    fn save(&self, snap: &Snapshot) -> Result<(), SnapshotError> {
        self.store_file(&snap.meta, |f| write(snap, f))
    }

    fn capture_dir(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
    }

    fn save_body(&self, meta: &SnapshotMeta, capture: &Path) -> Result<u64, SnapshotError> {
        let framed = (|| -> Result<u64, SnapshotError> {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(capture)?;
            let len = f.metadata()?.len();
            let corrupt = |why: &str| SnapshotError::Corrupt(capture.to_path_buf(), why.into());
            let body_len = len
                .checked_sub(CAPTURE_FRAME)
                .ok_or_else(|| corrupt("shorter than its frame"))?;
            let mut body_crc = [0u8; 4];
            f.read_exact_at(&mut body_crc, len - 4)?;
            let header = header(meta, body_len);
            let body_len_usize =
                usize::try_from(body_len).map_err(|_| corrupt("too big for this machine"))?;
            let crc = crc32c::crc32c_combine(
                crc32c::crc32c(&header),
                u32::from_le_bytes(body_crc),
                body_len_usize,
            );
            f.write_all_at(&header, 0)?;
            f.write_all_at(&crc.to_le_bytes(), len - 4)?;
            f.sync_data()?;
            Ok(body_len)
        })();
        match framed {
            Ok(body_len) => {
                self.publish(meta, capture)?;
                Ok(body_len)
            }
            Err(e) => {
                let _ = remove_in_steps(capture);
                Err(e)
            }
        }
    }

    fn load_latest(
        &self,
        apply: &mut dyn FnMut(Vec<EffectRecord>),
    ) -> Result<Option<SnapshotMeta>, SnapshotError> {
        let _files = self.files.lock();
        // Bodies of captures a crash or a rebuild left unfinished.
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(CAPTURE_PREFIX) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        for path in self.list()? {
            match verify(&path) {
                Ok((meta, body_len)) => {
                    read_records(&path, body_len, apply)?;
                    return Ok(Some(meta));
                }
                Err(e) => tracing::warn!(error = %e, "skipping unreadable snapshot"),
            }
        }
        Ok(None)
    }
}

/// The data set as of one moment, copied out of the keyspace under the
/// engine lock: a copy of every value is a fraction of the cost of encoding
/// it (measured: 1M keys of 256 bytes held every client up 1.7-2.7 s when
/// the DUMP payloads were built under the lock), so the encoding into
/// records ([`Capture::into_records`]) runs later, off the engine thread.
#[derive(Debug, Default)]
pub struct Capture {
    /// Function libraries' code.
    libraries: Vec<Bytes>,
    /// db, key, absolute expiry in Unix ms (0: none), value, and the
    /// RESTORE option that keeps its access clock, if any.
    keys: Vec<(u32, Key, i64, Value, Option<ClockOption>)>,
}

/// `IDLETIME seconds` or `FREQ n` (`AccessClock::snapshot_option`).
type ClockOption = (&'static str, u64);

/// A data set captured for a snapshot, by either means.
#[derive(Debug)]
pub enum CapturedData {
    Forked(ForkedCapture),
    Copied(Capture),
}

/// A capture given up on, or stored (which consumed it), leaves no body
/// file behind.
impl Drop for ForkedCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.body);
    }
}

/// Waits for a forked capture's child (blocking); whether it wrote its
/// body whole.
#[cfg(target_os = "linux")]
pub fn wait_forked(pid: i32) -> bool {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is ours to write.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
        }
        if r < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return false;
    }
}

#[cfg(not(target_os = "linux"))]
pub fn wait_forked(_: i32) -> bool {
    false
}

/// Copies the data set (see [`Capture`]). Runs under the engine lock.
pub fn capture(ks: &Keyspace, functions: &Functions) -> Capture {
    let libraries = functions.libraries().map(|lib| lib.code.clone()).collect();
    let mut keys = Vec::with_capacity(ks.dbs.iter().map(|d| d.data.len()).sum());
    for (db, d) in ks.dbs.iter().enumerate() {
        for (key, o) in d.data.iter() {
            let ttl = d.expire_of(key).unwrap_or(0).max(0);
            let clock = ks.access.snapshot_option(o.lru, ks.now_ms);
            keys.push((db as u32, key.clone(), ttl, o.value.clone(), clock));
        }
    }
    Capture { libraries, keys }
}

/// `FUNCTION LOAD REPLACE code`: a function library in a snapshot.
fn library_command(code: Bytes) -> EffectCommand {
    EffectCommand {
        db: 0,
        argv: vec![
            Bytes::from_static(b"FUNCTION"),
            Bytes::from_static(b"LOAD"),
            Bytes::from_static(b"REPLACE"),
            code,
        ],
    }
}

/// Elements a snapshot command carries at most for one key: a collection
/// with more is written as several commands (see [`key_commands`]).
const CHUNK_ELEMENTS: usize = 1024;
/// A record is closed once its commands' arguments reach this many bytes
/// (or it holds [`KEYS_PER_RECORD`] commands): loading holds
/// [`LOAD_CHUNK_RECORDS`] records at a time.
const RECORD_BYTES: usize = 1 << 20;

/// A key in a snapshot: `RESTORE key ttl payload ABSTTL REPLACE` (one
/// DUMP; with `clock`, its access clock's option too), or, for a list, set, hash or sorted set of more than
/// [`CHUNK_ELEMENTS`] elements, the commands that build it that many
/// elements at a time (RPUSH, SADD, HSET, ZADD) and then `PEXPIREAT` for
/// its expiry. A big collection is then never one payload of hundreds of
/// MB, which the forked child had to build and grow whole (a 1M-field hash
/// in `make bench`) and recovery had to read whole. Snapshots are loaded
/// into an empty data set, so the first command creates the key.
fn key_commands<E>(
    db: u32,
    key: &[u8],
    ttl: i64,
    value: &Value,
    clock: Option<ClockOption>,
    emit: &mut impl FnMut(EffectCommand) -> Result<(), E>,
) -> Result<(), E> {
    let copy = |b: &[u8]| Bytes::copy_from_slice(b);
    // Each element's arguments: a member, or a field and value, or a score
    // and member.
    type Args<'a> = Box<dyn Iterator<Item = (Bytes, Option<Bytes>)> + 'a>;
    let (name, len, mut items): (&'static [u8], usize, Args<'_>) = match value {
        Value::List(l) => (
            b"RPUSH",
            l.len(),
            Box::new(l.iter().map(|e| (copy(e), None))),
        ),
        Value::Set(m) => (
            b"SADD",
            m.len(),
            Box::new(m.iter().map(|e| (copy(e), None))),
        ),
        Value::Hash(h) => (
            b"HSET",
            h.len(),
            Box::new(h.iter().map(|(f, v)| (copy(f), Some(copy(v))))),
        ),
        Value::ZSet(z) => (
            b"ZADD",
            z.len(),
            Box::new(
                z.iter()
                    .map(|(m, s)| (Bytes::from(crate::numbers::fmt_double(s)), Some(copy(m)))),
            ),
        ),
        Value::Str(_) | Value::Stream(_) => (b"", 0, Box::new(std::iter::empty())),
    };
    let restore = |value: &Value, ttl: i64| {
        let mut argv = vec![
            Bytes::from_static(b"RESTORE"),
            copy(key),
            Bytes::from(ttl.to_string()),
            Bytes::from(crate::rdb::dump_exact(value)),
            Bytes::from_static(b"ABSTTL"),
            Bytes::from_static(b"REPLACE"),
        ];
        if let Some((name, n)) = clock {
            argv.push(Bytes::from_static(name.as_bytes()));
            argv.push(Bytes::from(n.to_string()));
        }
        EffectCommand { db, argv }
    };
    if len <= CHUNK_ELEMENTS {
        return emit(restore(value, ttl));
    }
    // The access clock rides on a RESTORE of the first chunk (the chunks
    // after it do not touch it: replay changes no clock).
    if clock.is_some() {
        emit(restore(&first_chunk(value), 0))?;
        items.by_ref().take(CHUNK_ELEMENTS).for_each(drop);
    }
    loop {
        let mut argv = vec![Bytes::from_static(name), copy(key)];
        for (a, b) in items.by_ref().take(CHUNK_ELEMENTS) {
            argv.push(a);
            argv.extend(b);
        }
        if argv.len() == 2 {
            break;
        }
        emit(EffectCommand { db, argv })?;
    }
    if ttl > 0 {
        emit(EffectCommand {
            db,
            argv: vec![
                Bytes::from_static(b"PEXPIREAT"),
                copy(key),
                Bytes::from(ttl.to_string()),
            ],
        })?;
    }
    Ok(())
}

/// The first [`CHUNK_ELEMENTS`] elements of a collection, as a value of
/// its type (what [`key_commands`] would write first).
fn first_chunk(value: &Value) -> Value {
    match value {
        Value::List(l) => Value::List(Box::new(l.iter().take(CHUNK_ELEMENTS).cloned().collect())),
        Value::Set(m) => Value::Set(Box::new(m.iter().take(CHUNK_ELEMENTS).cloned().collect())),
        Value::Hash(h) => Value::Hash(Box::new(
            h.iter()
                .take(CHUNK_ELEMENTS)
                .map(|(f, v)| (f.clone(), v.clone()))
                .collect(),
        )),
        Value::ZSet(z) => {
            let mut head = crate::keyspace::ZSet::default();
            for (m, s) in z.iter().take(CHUNK_ELEMENTS) {
                head.insert(m, s);
            }
            Value::ZSet(Box::new(head))
        }
        Value::Str(_) | Value::Stream(_) => value.clone(),
    }
}

/// Groups a snapshot's commands into records of [`KEYS_PER_RECORD`]
/// commands or [`RECORD_BYTES`] of arguments.
#[derive(Default)]
struct RecordBuilder {
    commands: Vec<EffectCommand>,
    bytes: usize,
}

impl RecordBuilder {
    /// Adds `c`; returns a record once one is full.
    fn push(&mut self, c: EffectCommand) -> Option<EffectRecord> {
        self.bytes += c.argv.iter().map(Bytes::len).sum::<usize>();
        self.commands.push(c);
        (self.commands.len() >= KEYS_PER_RECORD || self.bytes >= RECORD_BYTES)
            .then(|| self.finish())
            .flatten()
    }

    /// The last, partly filled record, if any.
    fn finish(&mut self) -> Option<EffectRecord> {
        self.bytes = 0;
        (!self.commands.is_empty()).then(|| EffectRecord {
            engine_version: ENGINE_VERSION,
            commands: std::mem::take(&mut self.commands),
        })
    }
}

impl Capture {
    /// The captured data set as effect records: `FUNCTION LOAD REPLACE
    /// code` per function library, then each key's commands
    /// ([`key_commands`]: one RESTORE, or chunks for a big collection),
    /// [`KEYS_PER_RECORD`] commands or [`RECORD_BYTES`] a record. Costs one
    /// DUMP per key: call it off the engine thread. Each value is dropped
    /// once encoded, so the copy and the records are not both held whole.
    pub fn into_records(self) -> Vec<EffectRecord> {
        let mut records = Vec::new();
        let mut b = RecordBuilder::default();
        let mut emit = |c| -> Result<(), std::convert::Infallible> {
            records.extend(b.push(c));
            Ok(())
        };
        for code in self.libraries {
            let Ok(()) = emit(library_command(code));
        }
        for (db, key, ttl, value, clock) in self.keys {
            let Ok(()) = key_commands(db, &key, ttl, &value, clock, &mut emit);
        }
        records.extend(b.finish());
        records
    }
}

/// Writes the data set's records (as [`Capture::into_records`] makes them)
/// straight from the keyspace to `w` as a snapshot body, one record at a
/// time. Returns the bytes written.
pub fn write_body(
    ks: &Keyspace,
    functions: &Functions,
    w: &mut impl Write,
) -> std::io::Result<u64> {
    let mut b = RecordBuilder::default();
    let mut buf = Vec::new();
    let mut written = 0;
    let mut emit = |c| -> std::io::Result<()> {
        if let Some(r) = b.push(c) {
            written += write_record(&r, &mut buf, w)?;
        }
        Ok(())
    };
    for lib in functions.libraries() {
        emit(library_command(lib.code.clone()))?;
    }
    for (db, d) in ks.dbs.iter().enumerate() {
        for (key, o) in d.data.iter() {
            let ttl = d.expire_of(key).unwrap_or(0).max(0);
            let clock = ks.access.snapshot_option(o.lru, ks.now_ms);
            key_commands(db as u32, key, ttl, &o.value, clock, &mut emit)?;
        }
    }
    if let Some(r) = b.finish() {
        written += write_record(&r, &mut buf, w)?;
    }
    Ok(written)
}

/// Names of capture bodies in a store's [`SnapshotStore::capture_dir`].
const CAPTURE_PREFIX: &str = ".capture-";
/// What a capture file holds besides the body: the child writes
/// `HEADER_LEN` zero bytes, the body, then the body's crc32c (u32 LE), so
/// that [`LocalSnapshotStore::save_body`] makes it the snapshot file in
/// place, writing only the header and the whole file's crc (combined from
/// the header's and the body's) over them. Copying the body into a new
/// file instead took a second write of the whole snapshot (and its syncs)
/// on the disk the log syncs on, and a thread copying and checksumming it:
/// 11 % of the server's CPU samples at SET pipeline 16 on the 3-node log,
/// where a snapshot of ~250 MB came about every second.
pub const CAPTURE_FRAME: u64 = HEADER_LEN as u64 + 4;

/// A capture written by a forked child process ([`fork_capture`]).
#[derive(Debug)]
pub struct ForkedCapture {
    /// The child, to be waited for (its exit status says whether `body` is
    /// complete and on disk).
    pub pid: i32,
    /// Where it writes the snapshot's body.
    pub body: PathBuf,
}

/// Captures the data set as Redis does for BGSAVE: forks, and the child,
/// which sees the data set as of the fork, writes its records to a body
/// file in `dir` and exits 0 once it is fsynced. The caller holds the
/// engine lock, so what the child sees is exactly the data set as of the
/// newest record. The parent pays only the fork (its page tables); pages it
/// changes afterwards are copied as it writes them. `None` when the fork
/// failed: capture by copying instead.
///
/// The child runs only this code: it reads the keyspace, allocates
/// (jemalloc and glibc's malloc are fork-safe) and writes one file, never
/// logging, locking or touching the runtime; it dies with its parent and
/// gives up after an hour.
#[cfg(target_os = "linux")]
pub fn fork_capture(
    ks: &Keyspace,
    functions: &Functions,
    dir: &Path,
    seq: u64,
    oom_score: Option<i32>,
) -> Option<ForkedCapture> {
    if std::fs::create_dir_all(dir).is_err() {
        return None;
    }
    let body = dir.join(format!(
        "{CAPTURE_PREFIX}{seq}-{}",
        crate::keyspace::unix_ms()
    ));
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the child only runs `child_writes` (see above) and leaves
    // with `_exit`, never returning into the parent's state.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            child_writes(ks, functions, &body, parent, oom_score)
        }));
        // SAFETY: ends the child without running the parent's atexit
        // handlers or destructors.
        unsafe { libc::_exit(if matches!(ok, Ok(Ok(()))) { 0 } else { 1 }) }
    }
    (pid > 0).then_some(ForkedCapture { pid, body })
}

#[cfg(not(target_os = "linux"))]
pub fn fork_capture(
    _: &Keyspace,
    _: &Functions,
    _: &Path,
    _: u64,
    _: Option<i32>,
) -> Option<ForkedCapture> {
    None
}

/// The forked child's work (see [`fork_capture`]).
#[cfg(target_os = "linux")]
fn child_writes(
    ks: &Keyspace,
    functions: &Functions,
    body: &Path,
    parent: libc::pid_t,
    oom_score: Option<i32>,
) -> std::io::Result<()> {
    // SAFETY: plain syscalls on this process, no memory handed over.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        if libc::getppid() != parent {
            return Err(std::io::Error::other("parent gone"));
        }
        // Signals the parent's runtime handles (through a pipe it shares
        // with us) end the child instead.
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::alarm(3600);
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
    // `oom-score-adj`: the child goes first when memory runs out (a
    // failure here only leaves it the parent's score).
    if let Some(score) = oom_score {
        let _ = crate::oom_score::write_own(score);
    }
    // A panic must not print: stderr's lock may be held by a thread the
    // fork left behind. Set once the alarm and the parent's death bound
    // the child's life: the hook's own lock may be held too (a thread of
    // the parent panicking at the fork), and then this waits forever.
    std::panic::set_hook(Box::new(|_| {}));
    // SAFETY: as above.
    unsafe {
        // Hold none of the parent's files: its listening socket especially,
        // which a restarted server must be able to bind again at once.
        if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) != 0 {
            for fd in 3..65_536 {
                libc::close(fd);
            }
        }
    }
    let mut f = std::io::BufWriter::with_capacity(
        1 << 20,
        StepSyncedFile::new(std::fs::File::create(body)?),
    );
    f.write_all(&[0; HEADER_LEN])?;
    let mut w = Crc32cWriter {
        inner: &mut f,
        crc: 0,
    };
    write_body(ks, functions, &mut w)?;
    let crc = w.crc;
    f.write_all(&crc.to_le_bytes())?;
    f.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .finish()
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effect::EffectBatch;

    /// A forked capture's body (written straight from the keyspace) is
    /// byte for byte the body of the copied capture's records, and a fork
    /// writes it.
    #[test]
    fn a_forked_capture_writes_the_records_a_copy_makes() {
        let mut ks = Keyspace::new(2);
        for i in 0..(KEYS_PER_RECORD * 2 + 7) {
            ks.set(
                i % 2,
                format!("k{i}").as_bytes(),
                Value::Str(vec![b'v'; i].into()),
            );
        }
        ks.set_expire(1, b"k1", 4_000_000_000_000);
        // A collection too big for one command: written in chunks, then
        // its expiry.
        let mut h = crate::keyspace::Map::default();
        for i in 0..(CHUNK_ELEMENTS * 2 + 3) {
            h.insert(
                format!("f{i}").as_bytes().into(),
                format!("v{i}").as_bytes().into(),
            );
        }
        ks.set(0, b"big", Value::Hash(Box::new(h)));
        ks.set_expire(0, b"big", 4_000_000_000_000);
        let functions = Functions::default();
        let records = capture(&ks, &functions).into_records();
        let big: Vec<(&[u8], usize)> = records
            .iter()
            .flat_map(|r| &r.commands)
            .filter(|c| &c.argv[1][..] == b"big")
            .map(|c| (&c.argv[0][..], c.argv.len()))
            .collect();
        let chunk = 2 + 2 * CHUNK_ELEMENTS;
        assert_eq!(
            big,
            [
                (&b"HSET"[..], chunk),
                (b"HSET", chunk),
                (b"HSET", 2 + 2 * 3),
                (b"PEXPIREAT", 3)
            ]
        );
        let mut expected = Vec::new();
        for r in records {
            write_record(&r, &mut Vec::new(), &mut expected).expect("encode");
        }
        let mut streamed = Vec::new();
        let n = write_body(&ks, &functions, &mut streamed).expect("write");
        assert_eq!(n, streamed.len() as u64);
        assert!(streamed == expected, "bodies differ");

        let dir =
            std::env::temp_dir().join(format!("memlog-fork-{}", crate::engine::random_hex(8)));
        let forked = fork_capture(&ks, &functions, &dir, 7, None).expect("fork");
        assert!(wait_forked(forked.pid), "the child failed");
        let file = std::fs::read(&forked.body).expect("body");
        let (gap, rest) = file.split_at(HEADER_LEN);
        let (body, crc) = rest.split_at(rest.len() - 4);
        assert!(gap.iter().all(|&b| b == 0), "room for the header");
        assert!(body == expected);
        assert_eq!(crc, crc32c::crc32c(&expected).to_le_bytes());
        // Stored, it loads as the copy's records would.
        let store = LocalSnapshotStore::new(&dir);
        let meta = SnapshotMeta {
            lsn: 3,
            skip: 1,
            checksum: 5,
            created_ms: 2,
        };
        let body_len = store.save_body(&meta, &forked.body).expect("save");
        assert_eq!(body_len, expected.len() as u64);
        assert!(!forked.body.exists(), "the body is consumed");
        let mut loaded = Vec::new();
        let got = store
            .load_latest(&mut |rs| loaded.extend(rs))
            .expect("load");
        assert_eq!(got.map(|m| (m.lsn, m.skip, m.checksum)), Some((3, 1, 5)));
        assert_eq!(loaded, capture(&ks, &functions).into_records());
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Under an LRU policy every key's RESTORE carries its idle time; a
    /// collection written in chunks carries it on the RESTORE of its first
    /// chunk, and loads whole with it.
    #[test]
    fn collections_in_chunks_keep_their_clock_and_elements() {
        let mut ks = Keyspace::new(1);
        ks.access.in_snapshots = true;
        let n = CHUNK_ELEMENTS * 2 + 5;
        let e = |i: usize| -> crate::keyspace::Elem { format!("e{i}").into_bytes().into() };
        let mut set = crate::keyspace::Set::default();
        let mut hash = crate::keyspace::Map::default();
        let mut zset = crate::keyspace::ZSet::default();
        for i in 0..n {
            set.insert(e(i));
            hash.insert(e(i), e(i * 2));
            zset.insert(&e(i), (i % 7) as f64);
        }
        let values = [
            (&b"list"[..], Value::List(Box::new((0..n).map(e).collect()))),
            (b"set", Value::Set(Box::new(set))),
            (b"hash", Value::Hash(Box::new(hash))),
            (b"zset", Value::ZSet(Box::new(zset))),
            (b"small", Value::str(b"v")),
        ];
        for (k, v) in &values {
            ks.set(0, k, v.clone());
            let lru = ks.access.restored(None, Some(777), ks.now_ms).unwrap();
            ks.set_access_clock(0, k, lru);
        }
        let records = capture(&ks, &Functions::default()).into_records();
        let mut loaded = crate::engine::Engine::new(&crate::engine::EngineOptions::default());
        for r in &records {
            loaded.apply_effect(r).expect("applies");
        }
        for (k, v) in &values {
            assert_eq!(loaded.ks.dbs[0].value(k), Some(v), "{k:?}");
            let lru = loaded.ks.access_clock(0, k).unwrap();
            let idle = loaded.ks.access.idle_ms(lru, loaded.ks.now_ms) / 1000;
            assert!((777..780).contains(&idle), "{k:?} idle {idle}");
        }
    }

    fn snapshot(lsn: u64, records: usize) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                lsn,
                skip: 2,
                checksum: 9,
                created_ms: 1,
            },
            records: (0..records)
                .map(|i| EffectRecord {
                    engine_version: ENGINE_VERSION,
                    commands: vec![EffectCommand {
                        db: 0,
                        argv: vec![
                            Bytes::from_static(b"SET"),
                            Bytes::from(format!("k{lsn}-{i}")),
                            Bytes::from(vec![b'v'; i % 300]),
                        ],
                    }],
                })
                .collect(),
        }
    }

    fn load(store: &LocalSnapshotStore) -> Option<Snapshot> {
        let mut records = Vec::new();
        let meta = store
            .load_latest(&mut |chunk| {
                assert!(!chunk.is_empty() && chunk.len() <= LOAD_CHUNK_RECORDS);
                records.extend(chunk);
            })
            .expect("load");
        meta.map(|meta| Snapshot { meta, records })
    }

    #[test]
    fn files_round_trip_and_unreadable_ones_are_skipped_whole() {
        let dir =
            std::env::temp_dir().join(format!("memlog-snap-{}", crate::engine::random_hex(8)));
        let store = LocalSnapshotStore::new(&dir);
        assert!(load(&store).is_none());
        let snap = snapshot(7, 150);
        store.save(&snap).unwrap();
        let back = load(&store).expect("a snapshot");
        assert_eq!(back.meta, snap.meta);
        assert_eq!(back.records, snap.records);

        // The streamed file is what encoding the body whole gives.
        let mut file = Vec::new();
        write(&snap, &mut file).unwrap();
        let body = EffectBatch {
            records: snap.records.clone(),
        }
        .encode_to_vec();
        assert_eq!(&file[HEADER_LEN..file.len() - 4], &body[..]);
        let crc = u32::from_le_bytes(file[file.len() - 4..].try_into().unwrap());
        assert_eq!(crc, crc32c::crc32c(&file[..file.len() - 4]));

        // A newer snapshot with one byte flipped near its end, or cut short:
        // skipped for the one before it, none of its records applied.
        let newer = snapshot(9, 150);
        store.save(&newer).unwrap();
        let path = dir.join(LocalSnapshotStore::file_name(&newer.meta));
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 10;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(load(&store).expect("the older one").records, snap.records);
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(load(&store).expect("the older one").meta, snap.meta);
        let _ = std::fs::remove_dir_all(dir);
    }
}
