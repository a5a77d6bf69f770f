//! [`SnapshotFile`]: the bytes of a snapshot as openraft sees them (its
//! `SnapshotData`), written to disk only when something reads them.
//!
//! Building a snapshot only records what it holds (see `snapshot`): the
//! records it covers stay in sled until a newer snapshot replaces it. The
//! file is streamed out of sled the first time a snapshot is read, which is
//! when a follower has fallen behind the purged Raft log; openraft also asks
//! for the current snapshot at start and after every build, but only looks
//! at its metadata, and those never pay for a file.

use std::future::Future;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::task::JoinHandle;

/// Writes a snapshot's file and opens it (runs on the blocking pool).
pub type Materialize = Box<dyn FnOnce() -> io::Result<std::fs::File> + Send + Sync>;

/// A snapshot's bytes: an open file, or the recipe to write it.
pub struct SnapshotFile {
    state: State,
    /// A seek asked for before the file existed.
    pending_seek: Option<SeekFrom>,
    /// Where a snapshot being received is written. Such a file is removed
    /// when this is dropped, unless an install took it (`take_path`): a
    /// receive cut off (its task cancelled with its connection) or a
    /// snapshot openraft refused leaves nothing behind.
    path: Option<PathBuf>,
}

enum State {
    Ready(tokio::fs::File),
    Pending(Option<Materialize>),
    Writing(JoinHandle<io::Result<std::fs::File>>),
    Failed(io::ErrorKind, String),
}

impl SnapshotFile {
    /// A snapshot that is already a file (or a file being received).
    pub fn ready(file: tokio::fs::File) -> Self {
        Self {
            state: State::Ready(file),
            pending_seek: None,
            path: None,
        }
    }

    /// A snapshot being received into the file at `path`.
    pub fn received(file: tokio::fs::File, path: PathBuf) -> Self {
        Self {
            state: State::Ready(file),
            pending_seek: None,
            path: Some(path),
        }
    }

    /// The file a received snapshot is written to, from now on the
    /// caller's to keep or remove.
    pub fn take_path(&mut self) -> Option<PathBuf> {
        self.path.take()
    }

    /// The file a received snapshot was written to.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A snapshot whose file `materialize` writes on first read or seek.
    pub fn pending(materialize: Materialize) -> Self {
        Self {
            state: State::Pending(Some(materialize)),
            pending_seek: None,
            path: None,
        }
    }

    /// The open file, for a snapshot that is one (a received snapshot).
    pub fn file(&mut self) -> io::Result<&mut tokio::fs::File> {
        match &mut self.state {
            State::Ready(f) => Ok(f),
            _ => Err(io::Error::other("snapshot file not written yet")),
        }
    }

    /// Drives the file into existence.
    fn poll_file(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut tokio::fs::File>> {
        loop {
            match &mut self.state {
                State::Ready(_) => break,
                State::Pending(m) => {
                    let Some(m) = m.take() else {
                        return Poll::Ready(Err(io::Error::other("snapshot recipe lost")));
                    };
                    self.state = State::Writing(tokio::task::spawn_blocking(m));
                }
                State::Writing(h) => {
                    let res = ready!(Pin::new(h).poll(cx));
                    self.state = match res {
                        Ok(Ok(f)) => State::Ready(tokio::fs::File::from_std(f)),
                        Ok(Err(e)) => State::Failed(e.kind(), e.to_string()),
                        Err(e) => State::Failed(io::ErrorKind::Other, e.to_string()),
                    };
                }
                State::Failed(kind, msg) => {
                    return Poll::Ready(Err(io::Error::new(*kind, msg.clone())));
                }
            }
        }
        let State::Ready(f) = &mut self.state else {
            return Poll::Ready(Err(io::Error::other("snapshot file not ready")));
        };
        if let Some(pos) = self.pending_seek.take() {
            Pin::new(&mut *f).start_seek(pos)?;
        }
        Poll::Ready(Ok(f))
    }
}

impl Drop for SnapshotFile {
    fn drop(&mut self) {
        let Some(path) = self.path.take() else {
            return;
        };
        let remove = move || {
            let _ = std::fs::remove_file(path);
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let f = ready!(self.get_mut().poll_file(cx))?;
        Pin::new(f).poll_read(cx, buf)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        match &mut this.state {
            State::Ready(f) => Pin::new(f).start_seek(position),
            _ => {
                this.pending_seek = Some(position);
                Ok(())
            }
        }
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let f = ready!(self.get_mut().poll_file(cx))?;
        Pin::new(f).poll_complete(cx)
    }
}

/// Writing is for snapshots being received, which are files from the start.
impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let f = self.get_mut().file()?;
        Pin::new(f).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let f = self.get_mut().file()?;
        Pin::new(f).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let f = self.get_mut().file()?;
        Pin::new(f).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};

    use super::*;

    #[tokio::test]
    async fn pending_file_is_written_on_first_seek_or_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("snap");
        let p = path.clone();
        let mut s = SnapshotFile::pending(Box::new(move || {
            std::fs::write(&p, b"hello snapshot")?;
            std::fs::File::open(&p)
        }));
        assert!(!path.exists(), "nothing is written before a read");
        s.seek(SeekFrom::Start(6)).await.expect("seek");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        assert_eq!(out, "snapshot");

        let mut never = SnapshotFile::pending(Box::new(|| Err(io::Error::other("boom"))));
        let mut b = [0u8; 4];
        let e = never.read(&mut b).await.expect_err("materialize fails");
        assert!(e.to_string().contains("boom"));
        let e = never.read(&mut b).await.expect_err("stays failed");
        assert!(e.to_string().contains("boom"));
    }
}
