//! Snapshots of the data set as of a position in the transaction log.
//!
//! A snapshot holds the data set as effect records (one `RESTORE key ttl
//! payload ABSTTL REPLACE` per key, payloads in DUMP format), so recovery
//! loads it through the one replay path, `Engine::apply_effect`. It is taken
//! *as of* a log position: every entry up to `lsn` is in it, plus the first
//! `skip` effect records of entry `lsn + 1` (a SAVE can run in the middle of
//! a group commit). Recovery loads the newest snapshot, then replays the log
//! from `lsn + 1`, skipping those records.
//!
//! [`SnapshotStore`] is the storage interface; [`LocalSnapshotStore`] keeps
//! files under `<data-dir>/snapshots` (the snapshotter issue adds S3). Its
//! methods block on disk: call them from `spawn_blocking`.
//!
//! File format (little-endian): `MLSNAP01`, lsn u64, skip u64, log checksum
//! at lsn u32 (0: unknown), created Unix ms i64, body length u64, body (an
//! `EffectBatch` protobuf), crc32c of everything before it u32. A file is
//! written to a temporary name, fsynced, renamed, and the directory fsynced.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use prost::Message;

use crate::effect::{EffectBatch, EffectCommand, EffectRecord, ENGINE_VERSION};
use crate::keyspace::Keyspace;

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

/// Storage for snapshots. Methods block: run them on the blocking pool.
pub trait SnapshotStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores `snap` atomically (all or nothing, durable when it returns).
    fn save(&self, snap: &Snapshot) -> Result<(), SnapshotError>;
    /// The newest readable snapshot, if any.
    fn load_latest(&self) -> Result<Option<Snapshot>, SnapshotError>;
}

/// Snapshots as files in a local directory.
#[derive(Debug, Clone)]
pub struct LocalSnapshotStore {
    dir: PathBuf,
}

impl LocalSnapshotStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
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

/// Encodes a snapshot file.
pub fn encode(snap: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = write(snap, &mut out);
    out
}

/// Writes a snapshot file to `w` a record at a time: the body (the
/// `EffectBatch` of all records) is never built whole, so a snapshot costs
/// no memory beyond the captured records themselves (encoding it into one
/// buffer and then framing that took two more copies of the data set).
pub fn write(snap: &Snapshot, w: &mut impl Write) -> std::io::Result<()> {
    let mut w = Crc32cWriter { inner: w, crc: 0 };
    let body_len = prost::encoding::message::encoded_len_repeated(1, &snap.records);
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&snap.meta.lsn.to_le_bytes());
    header.extend_from_slice(&snap.meta.skip.to_le_bytes());
    header.extend_from_slice(&snap.meta.checksum.to_le_bytes());
    header.extend_from_slice(&snap.meta.created_ms.to_le_bytes());
    header.extend_from_slice(&(body_len as u64).to_le_bytes());
    w.write_all(&header)?;
    // The body is `EffectBatch { records }`: each record as field 1.
    let mut buf = Vec::new();
    for r in &snap.records {
        buf.clear();
        prost::encoding::message::encode(1, r, &mut buf);
        w.write_all(&buf)?;
    }
    let crc = w.crc;
    w.inner.write_all(&crc.to_le_bytes())
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

/// Decodes a snapshot file (`path` only names it in errors).
pub fn decode(path: &Path, b: &[u8]) -> Result<Snapshot, SnapshotError> {
    let bad = |m: &str| SnapshotError::Corrupt(path.to_path_buf(), m.to_string());
    if b.len() < HEADER_LEN + 4 || &b[..8] != MAGIC {
        return Err(bad("bad header"));
    }
    let (content, crc) = b.split_at(b.len() - 4);
    let crc = u32::from_le_bytes(crc.try_into().map_err(|_| bad("crc"))?);
    if crc32c::crc32c(content) != crc {
        return Err(bad("checksum mismatch"));
    }
    let u64_at = |i: usize| -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&content[i..i + 8]);
        u64::from_le_bytes(a)
    };
    let mut c4 = [0u8; 4];
    c4.copy_from_slice(&content[24..28]);
    let meta = SnapshotMeta {
        lsn: u64_at(8),
        skip: u64_at(16),
        checksum: u32::from_le_bytes(c4),
        created_ms: u64_at(28) as i64,
    };
    let len = u64_at(36) as usize;
    if content.len() != HEADER_LEN + len {
        return Err(bad("length mismatch"));
    }
    let batch = EffectBatch::decode(&content[HEADER_LEN..]).map_err(|e| bad(&e.to_string()))?;
    Ok(Snapshot {
        meta,
        records: batch.records,
    })
}

impl SnapshotStore for LocalSnapshotStore {
    fn save(&self, snap: &Snapshot) -> Result<(), SnapshotError> {
        std::fs::create_dir_all(&self.dir)?;
        let name = Self::file_name(&snap.meta);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        {
            let mut f = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
            write(snap, &mut f)?;
            f.into_inner()
                .map_err(std::io::IntoInnerError::into_error)?
                .sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join(&name))?;
        sync_dir(&self.dir)?;
        // Older snapshots are not needed once the log is trimmed past them.
        for old in self.list()?.into_iter().skip(1 + KEEP_OLDER) {
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    fn load_latest(&self) -> Result<Option<Snapshot>, SnapshotError> {
        for path in self.list()? {
            let bytes = std::fs::read(&path)?;
            match decode(&path, &bytes) {
                Ok(s) => return Ok(Some(s)),
                Err(e) => tracing::warn!(error = %e, "skipping unreadable snapshot"),
            }
        }
        Ok(None)
    }
}

/// The data set as effect records (`RESTORE ... ABSTTL REPLACE` per key).
/// Runs under the engine lock; costs one DUMP per key.
pub fn capture(ks: &Keyspace) -> Vec<EffectRecord> {
    let mut records = Vec::new();
    let mut commands = Vec::new();
    for (db, d) in ks.dbs.iter().enumerate() {
        for (key, value) in d.data.iter() {
            let ttl = d.expire_of(key).unwrap_or(0).max(0);
            commands.push(EffectCommand {
                db: db as u32,
                argv: vec![
                    Bytes::from_static(b"RESTORE"),
                    Bytes::copy_from_slice(key),
                    Bytes::from(ttl.to_string()),
                    Bytes::from(crate::rdb::dump_exact(value)),
                    Bytes::from_static(b"ABSTTL"),
                    Bytes::from_static(b"REPLACE"),
                ],
            });
            if commands.len() >= KEYS_PER_RECORD {
                records.push(EffectRecord {
                    engine_version: ENGINE_VERSION,
                    commands: std::mem::take(&mut commands),
                });
            }
        }
    }
    if !commands.is_empty() {
        records.push(EffectRecord {
            engine_version: ENGINE_VERSION,
            commands,
        });
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_round_trip_and_detect_corruption() {
        let dir =
            std::env::temp_dir().join(format!("memlog-snap-{}", crate::engine::random_hex(8)));
        let store = LocalSnapshotStore::new(&dir);
        assert!(store.load_latest().unwrap().is_none());
        let snap = Snapshot {
            meta: SnapshotMeta {
                lsn: 7,
                skip: 2,
                checksum: 9,
                created_ms: 1,
            },
            records: vec![EffectRecord {
                engine_version: ENGINE_VERSION,
                commands: vec![EffectCommand {
                    db: 0,
                    argv: vec![Bytes::from_static(b"SET"), Bytes::from_static(b"k")],
                }],
            }],
        };
        store.save(&snap).unwrap();
        let back = store.load_latest().unwrap().unwrap();
        assert_eq!(back.meta, snap.meta);
        assert_eq!(back.records, snap.records);
        // The streamed file is what encoding the body whole gives.
        let body = EffectBatch {
            records: snap.records.clone(),
        }
        .encode_to_vec();
        let bytes = encode(&snap);
        assert_eq!(&bytes[HEADER_LEN..bytes.len() - 4], &body[..]);
        assert_eq!(
            u32::from_le_bytes(bytes[bytes.len() - 4..].try_into().unwrap()),
            crc32c::crc32c(&bytes[..bytes.len() - 4])
        );
        let mut bytes = bytes;
        bytes[HEADER_LEN + 1] ^= 1;
        assert!(decode(Path::new("x"), &bytes).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
