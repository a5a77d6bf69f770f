//! Files written in bulk beside the log (a snapshot, a segment's zeros),
//! whose data is synced every [`STEP`] bytes instead of once at the end,
//! and files deleted in bulk (purged segments), whose blocks are freed a
//! [`STEP`] at a time.
//!
//! The log's own appends wait on `fdatasync`s of a few KiB, and those share
//! the disk's queue with whatever else the machine writes back. One sync
//! of a whole segment's zeros (8 MiB, ~10 ms on this machine's disk) or of
//! a snapshot (as large as the data set) queued every append's sync behind
//! it, on all three nodes at once since they prepare segments and build
//! snapshots at the same log positions: the log stalled for 10-30 ms every
//! couple of seconds under load. Synced in steps, an append's sync waits at
//! most for one step's writeback (RocksDB's `bytes_per_sync` does the same).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Bytes written between two syncs (~0.3 ms of writeback here), or freed
/// at once.
pub const STEP: u64 = 256 * 1024;

/// Writes through to a [`File`], syncing its data after every [`STEP`]
/// bytes. [`StepSyncedFile::finish`] syncs the rest (and the metadata).
pub struct StepSyncedFile {
    file: File,
    unsynced: u64,
}

impl StepSyncedFile {
    /// Writes to `file` from its current position.
    pub fn new(file: File) -> Self {
        Self { file, unsynced: 0 }
    }

    /// Syncs what is left (`fsync`: the size too) and returns the file.
    pub fn finish(self) -> io::Result<File> {
        self.file.sync_all()?;
        Ok(self.file)
    }
}

impl Write for StepSyncedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Never more than a step between two syncs, whatever the caller's
        // buffer size.
        let room = (STEP - self.unsynced) as usize;
        let n = self.file.write(&buf[..buf.len().min(room)])?;
        self.unsynced += n as u64;
        if self.unsynced >= STEP {
            self.file.sync_data()?;
            self.unsynced = 0;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Frees the blocks of `file` a [`STEP`] at a time, from its end, before
/// the caller unlinks it. Where the file system is mounted with `discard`
/// (this machine's root is, and ext4 without a journal discards as it
/// frees), unlinking an 8 MiB segment discards it in one request, and the
/// log's syncs queue behind it: up to 4 ms idle, 7 ms under load, on every
/// node at once since they purge at the same point; freed in steps, under
/// 1 ms. Only for a file no one else reads: a reader would see it shrink.
pub fn shrink_in_steps(file: &File) -> io::Result<()> {
    let mut len = file.metadata()?.len();
    while len > 0 {
        len = len.saturating_sub(STEP);
        file.set_len(len)?;
    }
    Ok(())
}

/// Unlinks `path` after [`shrink_in_steps`] (see there: only for a file
/// no one else reads). Its blocks are freed whole where it cannot be
/// opened for writing.
pub fn remove_in_steps(path: &Path) -> io::Result<()> {
    if let Ok(file) = OpenOptions::new().write(true).open(path) {
        if let Err(e) = shrink_in_steps(&file) {
            tracing::warn!("cannot free {}'s blocks in steps ({e})", path.display());
        }
    }
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_everything_through_and_finishes_synced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut w = StepSyncedFile::new(File::create(&path).unwrap());
        let data: Vec<u8> = (0..(3 * STEP + 17)).map(|i| (i % 251) as u8).collect();
        for piece in data.chunks(100_000) {
            w.write_all(piece).unwrap();
        }
        assert!(w.unsynced < STEP);
        let f = w.finish().unwrap();
        assert_eq!(f.metadata().unwrap().len(), data.len() as u64);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        shrink_in_steps(&f).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        std::fs::write(&path, &data).unwrap();
        remove_in_steps(&path).unwrap();
        assert!(!path.exists());
        assert!(remove_in_steps(&path).is_err(), "nothing left to remove");
    }
}
