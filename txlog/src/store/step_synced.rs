//! A file written in bulk beside the log (a snapshot, a segment's zeros)
//! whose data is synced every [`STEP`] bytes instead of once at the end.
//!
//! The log's own appends wait on `fdatasync`s of a few KiB, and those share
//! the disk's queue with whatever else the machine writes back. One sync
//! of a whole segment's zeros (8 MiB, ~10 ms on this machine's disk) or of
//! a snapshot (as large as the data set) queued every append's sync behind
//! it, on all three nodes at once since they prepare segments and build
//! snapshots at the same log positions: the log stalled for 10-30 ms every
//! couple of seconds under load. Synced in steps, an append's sync waits at
//! most for one step's writeback (RocksDB's `bytes_per_sync` does the same).

use std::fs::File;
use std::io::{self, Write};

/// Bytes written between two syncs: ~0.3 ms of writeback here.
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
    }
}
