//! The embedded log: the single-node [`TxlogNode`] inside a `memlog server`
//! process (its default mode), reopened after a storage failure.
//!
//! openraft stops a node for good when its storage fails (a full disk, a
//! file over the size limit, an I/O error): every later write answers
//! "raft stopped". A cluster node then exits so that its supervisor restarts
//! it (`cli::run_node`). The embedded log is part of the server, so it
//! restarts itself: it drops the stopped node, waits, and opens the
//! directory again, which recovers what was flushed exactly as a restart
//! after kill -9 does. Nothing unflushed was ever acknowledged, so nothing
//! acknowledged is lost. sled refuses to open a database that a handle in
//! this process still holds, so opening is retried until the last handle of
//! the stopped node is gone (closed on a thread of its own, see
//! `store::DbKeeper`), and until the disk takes writes again. The server
//! meanwhile refuses commands with `-TRYAGAIN` and rebuilds its data set
//! from the log once the log answers. Should the stopped database never
//! close (sled's last flush can hang on failed storage), the log is
//! [`EmbeddedLog::wedged`] and the server exits: a restart recovers it.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;

use crate::batcher::AppendBatcher;
use crate::error::{Result, TxlogError};
use crate::node::TxlogNode;

/// First wait before reopening a failed log; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long the stopped node's database may stay locked (its last handle
/// closing, see `store::DbKeeper`) before the log is declared wedged.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(60);

/// A single-node log in this process that reopens itself after a storage
/// failure (see the module docs).
#[derive(Clone)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    /// The running node; `None` from a failure until it is open again.
    node: Mutex<Option<TxlogNode>>,
    /// Why the log is down, while it is (the innermost error: what the
    /// disk said, or why it cannot be reopened).
    down: Mutex<Option<String>>,
    stopping: AtomicBool,
    /// Set, with the reason, once the log can no longer be reopened in
    /// this process.
    wedged: tokio::sync::watch::Sender<Option<String>>,
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log under `dir` and starts watching it.
    pub async fn open(dir: impl Into<PathBuf>) -> Result<Self> {
        let dir = dir.into();
        let node = TxlogNode::start_embedded(dir.clone()).await?;
        let inner = Arc::new(Inner {
            dir,
            node: Mutex::new(Some(node.clone())),
            down: Mutex::new(None),
            stopping: AtomicBool::new(false),
            wedged: tokio::sync::watch::channel(None).0,
        });
        tokio::spawn(supervise(Arc::downgrade(&inner), node));
        Ok(Self { inner })
    }

    /// The running node, or `Reopening` while the log is being reopened.
    /// Callers keep it only for the operation at hand: a held handle keeps
    /// a failed node's database open and delays the reopen.
    pub fn node(&self) -> Result<TxlogNode> {
        let node = self.inner.node.lock().clone();
        node.ok_or_else(|| self.reopening())
    }

    /// The running node's append batcher (what the server's appends and
    /// heartbeats go through; cheaper than [`Self::node`]), or `Reopening`.
    pub fn batcher(&self) -> Result<AppendBatcher> {
        let batcher = self.inner.node.lock().as_ref().map(|n| n.batcher.clone());
        batcher.ok_or_else(|| self.reopening())
    }

    fn reopening(&self) -> TxlogError {
        TxlogError::Reopening(self.inner.down.lock().clone().unwrap_or_default())
    }

    /// Resolves, with the reason, if the log cannot be reopened in this
    /// process: the stopped node's database never closed (sled's last
    /// flush hung on the failed storage). Restarting the process recovers
    /// it, as after kill -9; the server exits for that.
    pub async fn wedged(&self) -> String {
        let mut rx = self.inner.wedged.subscribe();
        let why = match rx.wait_for(|w| w.is_some()).await {
            Ok(w) => w.clone(),
            Err(_) => None,
        };
        match why {
            Some(why) => why,
            None => std::future::pending().await,
        }
    }

    /// Stops Raft for good (no reopen).
    pub async fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        let node = self.inner.node.lock().clone();
        if let Some(n) = node {
            n.shutdown().await;
        }
    }
}

/// Waits for `node` to fail, then reopens the log until it runs again;
/// repeats. Ends with the [`EmbeddedLog`] or at [`EmbeddedLog::shutdown`].
async fn supervise(inner: Weak<Inner>, mut node: TxlogNode) {
    loop {
        let failure = node.failure().await;
        let Some(log) = inner.upgrade() else { return };
        if log.stopping.load(Ordering::SeqCst) {
            return;
        }
        tracing::error!(dir = %log.dir.display(), "the embedded log stopped: {failure}; reopening it");
        *log.down.lock() = Some(failure.cause);
        // The handle kept for callers is a clone of `node`.
        drop(log.node.lock().take());
        node.shutdown().await;
        drop(node);
        let dir = log.dir.clone();
        // Not holding the log while waiting: dropping it ends this task.
        drop(log);
        let mut backoff = FIRST_BACKOFF;
        let mut locked_since: Option<tokio::time::Instant> = None;
        node = loop {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            let Some(log) = inner.upgrade() else { return };
            if log.stopping.load(Ordering::SeqCst) {
                return;
            }
            match TxlogNode::start_embedded(dir.clone()).await {
                Ok(n) => {
                    *log.node.lock() = Some(n.clone());
                    *log.down.lock() = None;
                    tracing::info!(dir = %dir.display(), "the embedded log is open again");
                    break n;
                }
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), "reopening the embedded log: {e}");
                    // sled's message when the database is still open here.
                    if !e.to_string().contains("could not acquire lock") {
                        locked_since = None;
                        continue;
                    }
                    let since = *locked_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= CLOSE_TIMEOUT {
                        let why = format!(
                            "the stopped log's database under {} did not close within {CLOSE_TIMEOUT:?} \
                             after a storage failure; restart the process",
                            dir.display()
                        );
                        tracing::error!("{why}");
                        *log.down.lock() = Some(why.clone());
                        log.wedged.send_replace(Some(why));
                        return;
                    }
                }
            }
        };
    }
}
