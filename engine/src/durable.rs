//! The durable write path: the log client that appends the engine's effect
//! records to the transaction log, leadership and recovery, the lease, and
//! snapshots.
//!
//! - **Log client** ([`run_log_client`]): one task per server. It waits on
//!   `engine.records_ready`, takes the finished records under the engine lock
//!   (a `Vec` swap), encodes them as **one `EffectBatch` payload per append**
//!   (one log entry per group commit: under load one append carries every
//!   record executed while the previous appends were in flight) and appends
//!   it with condition `epoch_after (E, L)`: the log takes it only right
//!   after LSN `L`, so a delayed request can never land twice or after a
//!   gap. Up to [`MAX_INFLIGHT_APPENDS`] appends
//!   (and [`MAX_INFLIGHT_BYTES`]) are in flight, in order; past the bound it
//!   stops taking records, which then accumulate in the engine and park their
//!   clients' replies (each connection stops reading past 64 MiB of parked
//!   replies): back-pressure. Each acknowledgement acknowledges the batch's
//!   last sequence number in the hazard tracker and in [`LogProgress`],
//!   which releases parked replies, and renews the lease.
//! - **Failover** (`resume`): when the txlog's Raft leader changes or the
//!   stream to it breaks, the log client asks the log which appends in
//!   flight it committed (after a heartbeat through the new leader settles
//!   them), acknowledges those and resends the rest: clients wait out the
//!   election, the data set stays.
//! - **Failure**: an append that fails otherwise, is FENCED, or cannot be
//!   resumed (its outcome is unknown and the log has no leader within
//!   [`append_timeout`]) fails every unacknowledged record:
//!   their parked replies become `-TRYAGAIN` errors, and every command is
//!   refused (see [`LogGate`]) while the engine rebuilds its data set from
//!   what the log committed (snapshot + replay), because executed but
//!   uncommitted changes must never become visible. FENCED (another server
//!   holds the log) stops serving for good: every command answers
//!   [`FENCED_ERROR`]. Otherwise the server retakes leadership and serves
//!   again by itself.
//! - **Startup** ([`start`]): load the newest snapshot, replay the log after
//!   it, `TakeLeadership(expected_last_lsn)` (on CONFLICT replay more and
//!   retry), wait out the previous holder's lease, renew ours, serve.
//! - **Lease**: any acknowledged append renews it until `send time + lease`;
//!   when idle a HEARTBEAT append goes out every `lease / 4`. When the lease
//!   lapses, commands wait up to one lease for a renewal (a long command
//!   starves the heartbeats), then answer [`LogGate::error`]'s lease error
//!   until one comes (see [`LogGate::check`]).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::{FuturesOrdered, StreamExt};
use memlog_txlog::batcher::WriteOutcome;
use memlog_txlog::store::state_machine::ReadResult;
use memlog_txlog::types::{Condition, EntryKind, Op, OpResult};
use memlog_txlog::{AppendPipeline, EmbeddedLog, TxlogClient, TxlogError};
use parking_lot::Mutex;
use prost::Message;

use crate::effect::EffectBatch;
use crate::server::SharedEngine;
use crate::short_timer::ShortTimer;
use crate::snapshot::{CapturedData, Snapshot, SnapshotMeta, SnapshotStore};

/// Default lease: a server that had no append acknowledged for this long
/// stops answering.
pub const DEFAULT_LEASE: Duration = Duration::from_millis(2000);
/// Appends in flight at once, at most. While one is in flight new records
/// wait and the next append carries them all, which is what makes group
/// commit effective; a second one goes out only for a big backlog (see
/// [`SECOND_APPEND_MIN_RECORDS`]), where the log's pipelining (its leader
/// replicates while it syncs) pays off.
pub const MAX_INFLIGHT_APPENDS: usize = 2;
/// Records queued before a second append may go out while one is in
/// flight. Measured on 2 cores (redis-benchmark SET, 50 clients, openraft
/// 0.10), 3-node log / embedded: always one in flight, pipeline 16 at
/// 69.6k / 125k ops/s; a second one from 64 queued records, 74-81k /
/// 146-158k. Pipeline 1 (at most 50 queued) keeps one in flight: always two
/// made it fall from 19.1k to 17.9k on the 3-node log, as 50 clients split
/// into two half-size appends.
const SECOND_APPEND_MIN_RECORDS: usize = 64;
/// How long the log client may hold back a batch, after an acknowledgement,
/// for the clients that acknowledgement released. Without it, 50 clients
/// settle into two cohorts of ~25 taking turns (one in flight, one queued),
/// each append paying a full round trip and fsyncs for half the clients; a
/// linger until the released clients' next writes arrive merges them into
/// one append. It ends as soon as `LINGER_FILL_QUARTERS`/4 of the expected
/// records (the acknowledged ones plus those already queued) are there, so
/// a lone client never waits. Measured here (50 clients, SET, 3-node log):
/// 26 records per append and 12.7k ops/s without, 38 and 14.5k with 1 ms.
pub const LINGER: Duration = Duration::from_millis(1);
/// Share of the expected records that ends a linger at once (in 1/4): all
/// of them. Ending at three quarters left the last quarter of the clients
/// for the next append, a whole commit later, which set the tail: 3-node
/// SET at pipeline 1 (50 clients, 3 alternations of 3 passes) went from
/// 24.1-31.8k ops/s, p95 2.4-3.1 ms to 26.6-34.7k, p95 1.7-2.3 ms.
const LINGER_FILL_QUARTERS: usize = 4;
/// A linger also ends once no record came for this long: the released
/// clients' next writes arrive in a burst, and a client that thinks before
/// its next write (or one that has no next write) would otherwise hold
/// every append for the whole `LINGER`. Measured (3-node log, 50 clients
/// SET at pipeline 1, beside a 51st client doing one SET per ms): without
/// a gap 24-27k ops/s, with gaps of 150-400 us 30-32k; without the 51st
/// client 38-41k either way. Waited out with a [`ShortTimer`]: tokio's
/// timers tick in whole milliseconds.
const LINGER_GAP: Duration = Duration::from_micros(250);
/// How long a server started with `--unsafe-early-ack` (debug builds, for
/// the Jepsen harness' own test) holds each append back. Its replies do not
/// wait for the log; without the lag a fast log commits them so soon after
/// that a kill -9 every 2 s could find none uncommitted (the preallocated
/// segments made commits fast enough for that to happen in CI).
const EARLY_ACK_LAG: Duration = Duration::from_millis(50);
/// Bytes of appends in flight, at most.
pub const MAX_INFLIGHT_BYTES: usize = 16 * 1024 * 1024;
/// Records taken into one append, about (at least one record).
pub const MAX_APPEND_BYTES: usize = 2 * 1024 * 1024;

/// What a fenced server answers to every command.
pub const FENCED_ERROR: &str = "READONLY You can't write against a read only replica.";
/// What every command answers while the data set is rebuilt from the log.
pub const RECOVERING_ERROR: &str =
    "TRYAGAIN memlog: rebuilding the data set from the transaction log; retry";

/// How long one append may stay unanswered before its outcome counts as
/// unknown (the server then asks the log, see `resume`), and how long a
/// resume may wait for a log leader before the server rebuilds instead.
pub fn append_timeout(lease: Duration) -> Duration {
    (lease * 5).max(Duration::from_secs(10))
}

/// Where the server stands with its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GateState {
    /// Recovering at startup.
    #[default]
    Starting,
    Serving,
    /// An append failed: rebuilding from the log.
    Recovering,
    /// Another server took the log: never serves again.
    Fenced,
}

/// Whether commands may run (kept in `Engine::gate` when durable).
#[derive(Debug, Clone, Default)]
pub struct LogGate {
    pub state: GateState,
    /// While recovering, or resuming after a failed append: why the log
    /// cannot take writes, when it knows (the embedded log's storage
    /// failure, e.g. a full disk).
    pub cause: Option<String>,
    /// Commands run only before this instant (send time of the last
    /// acknowledged append + lease).
    pub lease_until: Option<Instant>,
    pub lease: Duration,
    /// Until when commands wait for the current lapse of the lease to be
    /// renewed (see [`LogGate::check`]); one grace per lapse.
    pub grace_until: Option<Instant>,
}

/// What a command may do now (see [`LogGate::check`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateCheck {
    Open,
    /// Wait, at most until then, for the lease to be renewed, then check
    /// again.
    Wait(Instant),
    Refuse(String),
}

impl LogGate {
    /// Like [`LogGate::error`], except that a lease that lapsed with no
    /// known failure of the log is waited out for up to one lease before
    /// commands are refused. A command that held the engine for longer than
    /// the lease (DEBUG SLEEP, a long script) starves the log client's
    /// heartbeats while the log itself is fine: the heartbeat that goes out
    /// next renews the lease, and proves that no other server took the log
    /// meanwhile, which is what makes serving after it safe. Redis answers
    /// the commands queued behind a long command normally, so memlog holds
    /// them for that heartbeat instead of failing them. Once the grace has
    /// passed without a renewal the log is unavailable: commands are refused
    /// at once until a renewal, which makes the next lapse eligible again.
    pub fn check(&mut self, now: Instant) -> GateCheck {
        if let (GateState::Serving, None, Some(t)) = (self.state, &self.cause, self.lease_until) {
            if now < t {
                return GateCheck::Open;
            }
            let grace = match self.grace_until {
                Some(g) if g >= t => g,
                _ => *self.grace_until.insert(now + self.lease),
            };
            if now < grace {
                return GateCheck::Wait(grace);
            }
        }
        match self.error(now) {
            None => GateCheck::Open,
            Some(e) => GateCheck::Refuse(e),
        }
    }

    /// The error every command answers now, if any.
    /// For INFO: `starting`, `serving`, `lease-expired`, `recovering`, `fenced`.
    pub fn describe(&self, now: Instant) -> &'static str {
        match self.state {
            GateState::Starting => "starting",
            GateState::Recovering => "recovering",
            GateState::Fenced => "fenced",
            GateState::Serving if self.lease_until.is_some_and(|t| now < t) => "serving",
            GateState::Serving => "lease-expired",
        }
    }

    pub fn error(&self, now: Instant) -> Option<String> {
        match self.state {
            GateState::Recovering if self.cause.is_some() => Some(format!(
                "TRYAGAIN memlog: the transaction log cannot write ({}); retry",
                self.cause.as_deref().unwrap_or_default()
            )),
            GateState::Starting | GateState::Recovering => Some(RECOVERING_ERROR.to_string()),
            GateState::Fenced => Some(FENCED_ERROR.to_string()),
            GateState::Serving => match (self.lease_until, &self.cause) {
                (Some(t), _) if now < t => None,
                (_, Some(cause)) => Some(format!(
                    "TRYAGAIN memlog: lease expired: the transaction log acknowledged nothing for {} ms, it cannot write ({cause}); retry",
                    self.lease.as_millis()
                )),
                (_, None) => Some(format!(
                    "TRYAGAIN memlog: lease expired: the transaction log acknowledged nothing for {} ms; retry",
                    self.lease.as_millis()
                )),
            },
        }
    }
}

/// Errors of the durable path.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    #[error("transaction log: {0}")]
    Log(#[from] TxlogError),
    #[error("fenced: another server holds the log (holder {0:?})")]
    Fenced(String),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    #[error("background task failed: {0}")]
    Join(String),
    /// The log's running checksum disagrees with the snapshot + replay:
    /// the snapshot does not belong to this log (or the log is damaged).
    #[error("log checksum mismatch at lsn {0}: the snapshot does not match the log")]
    Checksum(u64),
    /// The log ends before the snapshot the server loaded. A snapshot only
    /// ever covers committed entries, so the snapshot is not of this log
    /// (a new, empty log behind an old data directory, typically) or the
    /// log lost entries; taking leadership at the snapshot's position
    /// could never succeed (it retried without end, a Raft round each).
    #[error(
        "the log ends at lsn {log_last_lsn}, before the snapshot at lsn {snapshot_lsn}: \
         the snapshot is not of this log, or the log lost entries"
    )]
    LogBehindSnapshot {
        snapshot_lsn: u64,
        log_last_lsn: u64,
    },
}

/// Which transaction log the server writes to.
#[derive(Clone)]
pub enum LogBackend {
    /// A single-node txlog in this process (`memlog server` default).
    Embedded(EmbeddedLog),
    /// A txlog cluster over gRPC (`--txlog ADDR,...`).
    Remote(TxlogClient),
}

impl std::fmt::Debug for LogBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogBackend::Embedded(_) => f.write_str("Embedded"),
            LogBackend::Remote(c) => write!(f, "Remote({:?})", c.addrs()),
        }
    }
}

/// A log's state as read by the server.
#[derive(Debug, Clone, Default)]
struct LogInfo {
    first_lsn: u64,
    last_lsn: u64,
    epoch: u64,
    holder: String,
}

/// One entry read back from the log.
struct ReadEntry {
    lsn: u64,
    data: bool,
    payload: Bytes,
    /// The log's running checksum after this entry.
    checksum: u32,
}

type AppendFuture = Pin<Box<dyn Future<Output = Result<u64, TxlogError>> + Send>>;

fn op_result(
    o: Result<WriteOutcome, tokio::sync::oneshot::error::RecvError>,
) -> Result<u64, TxlogError> {
    match o {
        Ok(WriteOutcome::Done(OpResult::Appended { last_lsn, .. })) => Ok(last_lsn),
        Ok(WriteOutcome::Done(OpResult::Fenced(p))) => Err(TxlogError::Fenced {
            epoch: p.epoch,
            last_lsn: p.last_lsn,
            holder: p.holder,
        }),
        Ok(WriteOutcome::Done(OpResult::Conflict(p))) => Err(TxlogError::Conflict {
            epoch: p.epoch,
            last_lsn: p.last_lsn,
            holder: p.holder,
        }),
        Ok(WriteOutcome::Done(other)) => Err(TxlogError::Invalid(format!("{other:?}"))),
        Ok(WriteOutcome::NotLeader {
            leader_id,
            leader_addr,
        }) => Err(TxlogError::NotLeader {
            leader_id,
            leader_addr,
        }),
        Ok(WriteOutcome::Unknown(m)) => Err(TxlogError::OutcomeUnknown(m)),
        Err(_) => Err(TxlogError::OutcomeUnknown("embedded log stopped".into())),
    }
}

impl LogBackend {
    fn is_remote(&self) -> bool {
        matches!(self, LogBackend::Remote(_))
    }

    async fn status(&self, log: &str) -> Result<LogInfo, TxlogError> {
        match self {
            LogBackend::Embedded(e) => {
                let m = e.node()?.view.meta(log).unwrap_or_default();
                Ok(LogInfo {
                    first_lsn: m.first_lsn,
                    last_lsn: m.last_lsn,
                    epoch: m.epoch,
                    holder: m.holder,
                })
            }
            LogBackend::Remote(c) => {
                let st = c.status().await?;
                Ok(st
                    .logs
                    .into_iter()
                    .find(|l| l.name == log)
                    .map(|l| LogInfo {
                        first_lsn: l.first_lsn,
                        last_lsn: l.last_lsn,
                        epoch: l.epoch,
                        holder: l.holder,
                    })
                    .unwrap_or(LogInfo {
                        first_lsn: 1,
                        ..Default::default()
                    }))
            }
        }
    }

    async fn take_leadership(
        &self,
        log: &str,
        holder: &str,
        expected_last_lsn: u64,
    ) -> Result<(u64, u64), TxlogError> {
        match self {
            LogBackend::Embedded(e) => {
                e.node()?
                    .take_leadership(log, holder, expected_last_lsn)
                    .await
            }
            LogBackend::Remote(c) => c.take_leadership(log, holder, expected_last_lsn).await,
        }
    }

    async fn trim(&self, log: &str, up_to: u64) -> Result<u64, TxlogError> {
        match self {
            LogBackend::Embedded(e) => e.node()?.trim(log, up_to).await,
            LogBackend::Remote(c) => c.trim(log, up_to).await,
        }
    }

    /// A HEARTBEAT append under `epoch`; returns its LSN.
    fn heartbeat(&self, log: &str, epoch: u64, payload: Bytes) -> AppendFuture {
        match self {
            LogBackend::Embedded(e) => {
                let (e, log) = (e.clone(), log.to_string());
                Box::pin(async move {
                    let rx = e
                        .batcher()?
                        .enqueue(Op::Append {
                            log,
                            condition: Condition::Epoch(epoch),
                            kind: EntryKind::Heartbeat,
                            payloads: vec![payload],
                        })
                        .await;
                    op_result(rx.await)
                })
            }
            LogBackend::Remote(c) => {
                let (c, log) = (c.clone(), log.to_string());
                Box::pin(async move { Ok(c.heartbeat(&log, epoch, payload).await?.last_lsn) })
            }
        }
    }

    /// Reads entries `from..=to` and hands them to `apply` in chunks.
    async fn replay(
        &self,
        log: &str,
        from: u64,
        to: u64,
        mut apply: impl FnMut(Vec<ReadEntry>),
    ) -> Result<(), TxlogError> {
        let mut next = from;
        match self {
            LogBackend::Embedded(e) => {
                let node = e.node()?;
                while next <= to {
                    match node.view.read(log, next, 1024, 4 * 1024 * 1024).await? {
                        ReadResult::Entries(v) => {
                            let chunk: Vec<ReadEntry> = v
                                .into_iter()
                                .filter(|(lsn, _)| *lsn <= to)
                                .map(|(lsn, r)| ReadEntry {
                                    lsn,
                                    data: r.kind == EntryKind::Data,
                                    payload: r.payload,
                                    checksum: r.checksum,
                                })
                                .collect();
                            let Some(last) = chunk.last().map(|e| e.lsn) else {
                                return Err(TxlogError::Invalid(format!(
                                    "log {log:?} ends before lsn {next}"
                                )));
                            };
                            next = last + 1;
                            apply(chunk);
                            // Reads of the embedded log are often ready at
                            // once: let the server's other tasks (clients
                            // told to wait, timers) run between chunks.
                            tokio::task::yield_now().await;
                        }
                        ReadResult::Truncated { first_retained } => {
                            return Err(TxlogError::Truncated {
                                requested: next,
                                first_retained,
                            })
                        }
                    }
                }
            }
            LogBackend::Remote(c) => {
                if next > to {
                    return Ok(());
                }
                let stream = c.follow(log, next);
                tokio::pin!(stream);
                let mut chunk = Vec::new();
                while next <= to {
                    let item = tokio::time::timeout(Duration::from_secs(15), stream.next())
                        .await
                        .map_err(|_| TxlogError::Unavailable("reading the log timed out".into()))?;
                    let e = match item {
                        Some(Ok(e)) => e,
                        Some(Err(e)) => return Err(e),
                        None => return Err(TxlogError::Unavailable("log tail ended".into())),
                    };
                    next = e.lsn + 1;
                    chunk.push(ReadEntry {
                        lsn: e.lsn,
                        data: e.kind == memlog_proto::txlog::EntryKind::Data as i32,
                        payload: e.payload,
                        checksum: e.checksum,
                    });
                    if chunk.len() >= 256 || next > to {
                        apply(std::mem::take(&mut chunk));
                    }
                }
            }
        }
        Ok(())
    }
}

impl LogBackend {
    /// The log's running checksum after entry `lsn` (0 for lsn 0).
    async fn checksum_at(&self, log: &str, lsn: u64) -> Result<u32, TxlogError> {
        if lsn == 0 {
            return Ok(0);
        }
        let mut found = None;
        self.replay(log, lsn, lsn, |chunk| {
            found = chunk.first().map(|e| e.checksum);
        })
        .await?;
        found.ok_or_else(|| TxlogError::Invalid(format!("no entry {lsn} in {log:?}")))
    }
}

/// The appender's handle for one epoch.
enum Writer {
    Pipeline(AppendPipeline),
    /// The node is looked up for each append: a kept handle would hold a
    /// failed node's database open and stop it from being reopened.
    Embedded(EmbeddedLog),
}

impl Writer {
    async fn open(backend: &LogBackend, log: &str, epoch: u64) -> Result<Self, TxlogError> {
        Ok(match backend {
            LogBackend::Embedded(e) => Writer::Embedded(e.clone()),
            LogBackend::Remote(c) => Writer::Pipeline(AppendPipeline::open(c, log, epoch).await?),
        })
    }

    /// Queues a DATA append that must land right after LSN `*log_end` and
    /// moves `log_end` past it (appends queued one after the other keep
    /// their order); returns the future of its LSN.
    async fn submit(
        &self,
        log: &str,
        epoch: u64,
        log_end: &mut u64,
        payload: Bytes,
    ) -> AppendFuture {
        let after = *log_end;
        *log_end += 1;
        match self {
            Writer::Pipeline(p) => match p.submit_after(vec![payload], after).await {
                Ok(f) => Box::pin(async move { f.await.map(|a| a.last_lsn) }),
                Err(e) => Box::pin(async move { Err(e) }),
            },
            Writer::Embedded(e) => {
                let batcher = match e.batcher() {
                    Ok(b) => b,
                    Err(err) => return Box::pin(async move { Err(err) }),
                };
                let rx = batcher
                    .enqueue(Op::Append {
                        log: log.to_string(),
                        condition: Condition::EpochAfter {
                            epoch,
                            last_lsn: after,
                        },
                        kind: EntryKind::Data,
                        payloads: vec![payload],
                    })
                    .await;
                Box::pin(async move { op_result(rx.await) })
            }
        }
    }
}

/// Which log entry holds which records: maps sequence numbers to LSNs for
/// snapshots.
#[derive(Debug, Default)]
struct Positions {
    /// After the last recovery the data set was the log up to `base_lsn`,
    /// and the record numbered `base_seq` stands for it.
    base_seq: u64,
    base_lsn: u64,
    /// (first seq, last seq, lsn) of recent acknowledged appends (the last
    /// [`KEPT_BATCHES`], and from `pinned` on).
    batches: VecDeque<(u64, u64, u64)>,
    /// The record a snapshot in progress holds the data set as of: the
    /// batch holding it is kept until the snapshot has been located, however
    /// many appends are acknowledged meanwhile (its capture may take
    /// seconds, a client writing at pipeline 1 makes an append per write).
    pinned: Option<u64>,
}

/// Acknowledged appends whose positions are kept for snapshots (see
/// [`Positions::pinned`] for the ones kept beyond).
const KEPT_BATCHES: usize = 4096;

impl Positions {
    /// An acknowledged append: records `first..=last` are entry `lsn`.
    fn push(&mut self, first: u64, last: u64, lsn: u64) {
        self.batches.push_back((first, last, lsn));
        while self.batches.len() > KEPT_BATCHES
            && self
                .batches
                .front()
                .is_some_and(|&(_, b, _)| self.pinned.is_none_or(|seq| b < seq))
        {
            self.batches.pop_front();
        }
    }

    /// (lsn, skip) of the data set as of record `seq`.
    fn locate(&self, seq: u64) -> Option<(u64, u64)> {
        if let Some(&(a, b, lsn)) = self.batches.iter().find(|(a, b, _)| *a <= seq && seq <= *b) {
            return Some(if seq == b {
                (lsn, 0)
            } else {
                (lsn - 1, seq - a + 1)
            });
        }
        (seq == self.base_seq).then_some((self.base_lsn, 0))
    }
}

/// A snapshot to write once the records up to `seq` are durable.
#[derive(Debug)]
pub struct SnapshotRequest {
    pub seq: u64,
    /// The data set as of `seq`, encoded into records off the engine thread.
    pub data: crate::snapshot::CapturedData,
    /// Where SAVE waits for its reply: `+OK` once the snapshot is stored,
    /// `-ERR` if it could not be (as Redis' SAVE answers).
    pub reply: Option<tokio::sync::oneshot::Sender<crate::engine::ParkedReply>>,
}

/// The durable path of one server.
#[derive(Debug)]
pub struct Durable {
    pub backend: LogBackend,
    pub log: String,
    /// Unique per process: names this server in leadership entries.
    pub holder: String,
    pub lease: Duration,
    pub snapshots: Arc<dyn SnapshotStore>,
    positions: Mutex<Positions>,
}

impl Durable {
    pub fn new(
        backend: LogBackend,
        log: impl Into<String>,
        holder: impl Into<String>,
        lease: Duration,
        snapshots: Arc<dyn SnapshotStore>,
    ) -> Arc<Self> {
        Arc::new(Self {
            backend,
            log: log.into(),
            holder: holder.into(),
            lease,
            snapshots,
            positions: Mutex::new(Positions::default()),
        })
    }
}

/// Recovers (snapshot + log replay + leadership), then starts the log client
/// and the snapshot writer. Returns once the server may serve.
pub async fn start(engine: &SharedEngine, d: Arc<Durable>) -> Result<(), DurableError> {
    let (snap_tx, snap_rx) = tokio::sync::mpsc::unbounded_channel();
    let (rebuild_tx, rebuild_rx) = tokio::sync::mpsc::unbounded_channel();
    {
        let mut e = engine.lock();
        e.enable_durability();
        if let Some(g) = e.srv.gate.as_mut() {
            g.lease = d.lease;
        }
        e.srv.snapshot_requests = Some(snap_tx);
        e.srv.capture_dir = d.snapshots.capture_dir();
        e.srv.rebuild_requests = Some(rebuild_tx);
    }
    let mut attempt = 0u32;
    let epoch = loop {
        match recover(engine, &d, None).await {
            Ok(epoch) => break epoch,
            Err(
                e @ (DurableError::Snapshot(_)
                | DurableError::Checksum(_)
                | DurableError::LogBehindSnapshot { .. }
                | DurableError::Fenced(_)
                | DurableError::Log(TxlogError::Truncated { .. })),
            ) => return Err(e),
            Err(e) => {
                attempt += 1;
                if attempt >= 30 {
                    return Err(e);
                }
                tracing::warn!(error = %e, "startup recovery failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    tokio::spawn(run_log_client(engine.clone(), d.clone(), epoch, rebuild_rx));
    tokio::spawn(run_snapshots(engine.clone(), d, snap_rx));
    Ok(())
}

/// Rebuilds the data set from the newest snapshot and the log, takes
/// leadership and renews the lease; returns the new epoch. With
/// `prev_epoch` (recovery after a failed append), finding another holder
/// means this server was fenced.
async fn recover(
    engine: &SharedEngine,
    d: &Arc<Durable>,
    prev_epoch: Option<u64>,
) -> Result<u64, DurableError> {
    if prev_epoch.is_some() {
        // Fail fast if someone else took the log while we were away.
        let info = d.backend.status(&d.log).await?;
        if info.holder != d.holder {
            return Err(DurableError::Fenced(info.holder));
        }
    }
    {
        let mut e = engine.lock();
        e.reset_dataset();
        // Counted again as the snapshot and the log are read (what
        // `auto-aof-rewrite-*` weigh).
        e.srv.stats.snapshot_bytes = 0;
        e.srv.stats.log_bytes_since_snapshot = 0;
    }
    // Records are applied as they are read (a chunk per lock), so loading
    // costs no memory beyond the data set itself.
    let (store, e) = (d.snapshots.clone(), engine.clone());
    let meta = tokio::task::spawn_blocking(move || {
        store.load_latest(&mut |records| {
            let mut e = e.lock();
            e.srv.stats.snapshot_bytes +=
                records.iter().map(|r| r.encoded_len() as u64).sum::<u64>();
            for r in &records {
                if let Err(err) = e.apply_effect(r) {
                    tracing::error!(error = %err, "snapshot record failed to apply");
                }
            }
        })
    })
    .await
    .map_err(|e| DurableError::Join(e.to_string()))??;
    let (mut applied, mut skip) = meta.map(|m| (m.lsn, m.skip)).unwrap_or((0, 0));
    // Verify the log's running checksum from the snapshot on (when known).
    let mut chain = match &meta {
        None => Some(0),
        Some(m) if m.checksum != 0 || m.lsn == 0 => Some(m.checksum),
        Some(_) => None,
    };
    if let Some(m) = &meta {
        tracing::info!(lsn = m.lsn, "loaded snapshot");
    }
    loop {
        let info = d.backend.status(&d.log).await?;
        if prev_epoch.is_some() && info.holder != d.holder {
            return Err(DurableError::Fenced(info.holder));
        }
        if info.last_lsn < applied {
            return Err(DurableError::LogBehindSnapshot {
                snapshot_lsn: applied,
                log_last_lsn: info.last_lsn,
            });
        }
        if info.first_lsn > applied + 1 {
            return Err(TxlogError::Truncated {
                requested: applied + 1,
                first_retained: info.first_lsn,
            }
            .into());
        }
        if info.last_lsn > applied {
            let mut replayed = 0usize;
            let mut mismatch = None;
            d.backend
                .replay(&d.log, applied + 1, info.last_lsn, |chunk| {
                    replayed += chunk.len();
                    for e in &chunk {
                        if let Some(c) = chain {
                            let next = memlog_txlog::types::chain_checksum(c, &e.payload);
                            if next == e.checksum {
                                chain = Some(next);
                            } else {
                                mismatch.get_or_insert(e.lsn);
                                chain = None;
                            }
                        }
                    }
                    apply_entries(engine, chunk, &mut skip);
                })
                .await?;
            if let Some(lsn) = mismatch {
                return Err(DurableError::Checksum(lsn));
            }
            tracing::info!(
                from = applied + 1,
                to = info.last_lsn,
                entries = replayed,
                "replayed the log"
            );
            applied = info.last_lsn;
        }
        skip = 0;
        let other_holder = info.epoch > 0 && info.holder != d.holder;
        match d.backend.take_leadership(&d.log, &d.holder, applied).await {
            Ok((epoch, lsn)) => {
                // What we replayed plus our leadership entry is the log.
                applied = lsn;
                if other_holder && d.backend.is_remote() {
                    // The previous primary may still serve reads until its
                    // lease (measured from before our entry) runs out.
                    tokio::time::sleep(d.lease).await;
                }
                let sent = Instant::now();
                // Fenced here: a newer server took the log right after us.
                let lsn = d
                    .backend
                    .heartbeat(&d.log, epoch, Bytes::from(d.holder.clone()))
                    .await
                    .map_err(|e| match e {
                        TxlogError::Fenced { holder, .. } => DurableError::Fenced(holder),
                        e => e.into(),
                    })?;
                let mut e = engine.lock();
                e.ks.effects.clear_records();
                e.ks.effects.last_seq += 1;
                let base = e.ks.effects.last_seq;
                e.tracker.reset(base);
                e.progress.set_acked(base);
                {
                    let mut p = d.positions.lock();
                    p.base_seq = base;
                    p.base_lsn = lsn.max(applied);
                }
                if let Some(g) = e.srv.gate.as_mut() {
                    g.state = GateState::Serving;
                    g.cause = None;
                    g.lease_until = Some(sent + d.lease);
                }
                e.wake_blocked_after_rebuild();
                tracing::info!(epoch, lsn, "leader of the log; serving");
                return Ok(epoch);
            }
            Err(TxlogError::Conflict { .. }) | Err(TxlogError::OutcomeUnknown(_)) => {
                // Someone appended after what we read: read more, retry.
                continue;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Applies replayed entries (DATA only) to the engine, a chunk per lock.
fn apply_entries(engine: &SharedEngine, chunk: Vec<ReadEntry>, skip: &mut u64) {
    // The replayed log counts toward the next snapshot (`auto-aof-rewrite-*`).
    let bytes: usize = chunk.iter().map(|e| e.payload.len()).sum();
    let mut batches = Vec::with_capacity(chunk.len());
    for entry in chunk {
        let s = std::mem::take(skip);
        if !entry.data {
            continue;
        }
        match EffectBatch::decode(entry.payload) {
            Ok(b) => batches.push((entry.lsn, s as usize, b)),
            Err(err) => tracing::error!(lsn = entry.lsn, error = %err, "undecodable log entry"),
        }
    }
    let mut e = engine.lock();
    e.srv.stats.log_bytes_since_snapshot += bytes as u64;
    for (lsn, s, b) in batches {
        for r in b.records.iter().skip(s) {
            if let Err(err) = e.apply_effect(r) {
                tracing::error!(lsn, error = %err, "log record failed to apply");
            }
        }
    }
}

/// Fails every record not yet acknowledged and closes the gate.
fn fail_pending(engine: &SharedEngine, state: GateState) {
    let mut e = engine.lock();
    if let Some(g) = e.srv.gate.as_mut() {
        g.state = state;
    }
    let from = e.tracker.acked() + 1;
    let until = e.ks.effects.last_seq;
    e.ks.effects.clear_records();
    e.tracker.reset(until);
    e.progress.set_failed(from, until);
}

/// The log client: appends, acknowledges, renews the lease, and recovers
/// from failures until fenced.
pub async fn run_log_client(
    engine: SharedEngine,
    d: Arc<Durable>,
    mut epoch: u64,
    mut rebuilds: tokio::sync::mpsc::UnboundedReceiver<RebuildReply>,
) {
    loop {
        let mut requested = None;
        match serve_epoch(&engine, &d, epoch, &mut rebuilds).await {
            EpochEnd::Rebuild(reply) => {
                tracing::info!("rebuilding from the log (DEBUG RELOAD or LOADAOF)");
                fail_pending(&engine, GateState::Recovering);
                requested = Some(reply);
            }
            EpochEnd::Failed(TxlogError::Fenced { holder, .. }) => {
                tracing::error!(
                    holder,
                    "fenced: another server took the log; no longer serving"
                );
                fail_pending(&engine, GateState::Fenced);
                return;
            }
            EpochEnd::Failed(err) => {
                tracing::warn!(error = %err, "append failed; rebuilding from the log");
                engine.lock().srv.stats.log_rebuilds += 1;
                fail_pending(&engine, GateState::Recovering);
                set_cause(&engine, &err);
            }
        }
        let mut backoff = Duration::from_millis(100);
        loop {
            match recover(&engine, &d, Some(epoch)).await {
                Ok(e) => {
                    epoch = e;
                    if let Some(reply) = requested.take() {
                        let _ = reply.send(crate::engine::ParkedReply {
                            bytes: b"+OK\r\n".to_vec(),
                            seq: 0,
                        });
                    }
                    break;
                }
                Err(DurableError::Fenced(holder)) => {
                    tracing::error!(
                        holder,
                        "fenced: another server took the log; no longer serving"
                    );
                    fail_pending(&engine, GateState::Fenced);
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "recovery failed; retrying");
                    if let Some(g) = engine.lock().srv.gate.as_mut() {
                        g.state = GateState::Recovering;
                    }
                    if let DurableError::Log(err) = &e {
                        set_cause(&engine, err);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

/// Keeps what the log said about its storage for the recovering gate's
/// error (Redis answers `-MISCONF ...` when it cannot write its AOF).
fn set_cause(engine: &SharedEngine, err: &TxlogError) {
    let cause = match err {
        TxlogError::Reopening(cause) => Some(cause.clone()),
        _ => None,
    };
    if let Some(g) = engine.lock().srv.gate.as_mut() {
        g.cause = cause;
    }
}

/// What became of one append (or heartbeat) in flight.
struct Sent {
    result: Result<u64, TxlogError>,
    /// When it was sent: the lease it renews runs from here.
    at: Instant,
    /// `None` for a heartbeat.
    data: Option<DataAppend>,
}

/// A DATA append: the records it carries and its payload, kept to recognise
/// it in the log or send it again after a failover (see [`resume`]).
struct DataAppend {
    /// Sequence numbers of its first and last record.
    seqs: (u64, u64),
    payload: Bytes,
}

type InFlight = Pin<Box<dyn Future<Output = Sent> + Send>>;

/// Where DEBUG LOADAOF's reply goes.
pub type RebuildReply = tokio::sync::oneshot::Sender<crate::engine::ParkedReply>;

/// Why [`serve_epoch`] stopped.
enum EpochEnd {
    /// An append failed for good.
    Failed(TxlogError),
    /// DEBUG LOADAOF: everything executed is acknowledged; rebuild.
    Rebuild(RebuildReply),
}

/// Appends under `epoch` until an append fails for good, or a rebuild is
/// asked for and nothing is left to append.
async fn serve_epoch(
    engine: &SharedEngine,
    d: &Arc<Durable>,
    epoch: u64,
    rebuilds: &mut tokio::sync::mpsc::UnboundedReceiver<RebuildReply>,
) -> EpochEnd {
    let mut writer = match Writer::open(&d.backend, &d.log, epoch).await {
        Ok(w) => w,
        Err(e) => return EpochEnd::Failed(e),
    };
    let mut rebuild: Option<RebuildReply> = None;
    let (records_ready, progress) = {
        let e = engine.lock();
        (e.records_ready.clone(), e.progress.clone())
    };
    let timeout = append_timeout(d.lease);
    let heartbeat_every = d.lease / 4;
    let mut inflight: FuturesOrdered<InFlight> = FuturesOrdered::new();
    let mut inflight_bytes = 0usize;
    let mut last_send = Instant::now();
    // The newest LSN the log acknowledged to this epoch (see `resume`):
    // at first the heartbeat `recover` appended under it.
    let mut acked_lsn: u64 = d.positions.lock().base_lsn;
    // Where the log ends once everything sent so far is in: each DATA
    // append names the LSN it follows (condition `epoch_after`), so a
    // request delayed past a failover can never land twice or after a gap.
    // Every entry of this epoch comes from this loop, and no DATA append
    // goes out while a heartbeat is in flight (their order would be open).
    let mut log_end = acked_lsn;
    let mut heartbeat_in_flight = false;
    // Resumes since the last DATA acknowledgement (see MAX_RESUMES).
    let mut resumes = 0u32;
    // Records expected after the last acknowledgement, and how long a
    // batch may still wait for them (see LINGER).
    let mut last_batch = 0usize;
    let mut linger_timer = match ShortTimer::new() {
        Ok(t) => t,
        Err(e) => return EpochEnd::Failed(TxlogError::Io(e)),
    };
    let mut linger_start: Option<Instant> = None;
    let mut linger_queued = 0usize;
    loop {
        if rebuild.is_some() && inflight.is_empty() && engine.lock().ks.effects.records().is_empty()
        {
            if let Some(reply) = rebuild.take() {
                return EpochEnd::Rebuild(reply);
            }
        }
        let can_take = inflight.len() < MAX_INFLIGHT_APPENDS
            && inflight_bytes < MAX_INFLIGHT_BYTES
            && !heartbeat_in_flight;
        let heartbeat_at = tokio::time::Instant::from_std(last_send + heartbeat_every);
        let take = tokio::select! {
            biased;
            done = inflight.next(), if !inflight.is_empty() => {
                let Some(Sent { result, at, data }) = done else { continue };
                inflight_bytes -= data.as_ref().map_or(0, |a| a.payload.len());
                if data.is_none() {
                    heartbeat_in_flight = false;
                }
                let lsn = match result {
                    Ok(lsn) => lsn,
                    Err(e) => {
                        // A failover of the log, not a refusal: find out what
                        // committed and resend the rest instead of rebuilding.
                        if !retriable(&e) || resumes >= MAX_RESUMES {
                            return EpochEnd::Failed(e);
                        }
                        resumes += 1;
                        tracing::warn!(error = %e, "append failed; resuming at the log's leader");
                        // Named by the lease error should the lease end meanwhile.
                        set_cause(engine, &e);
                        let mut pending: Vec<_> = data.into_iter().collect();
                        while let Some(next) = inflight.next().await {
                            pending.extend(next.data);
                        }
                        inflight_bytes = 0;
                        let resumed = match resume(d, epoch, acked_lsn, pending).await {
                            Ok(r) => r,
                            Err(e) => return EpochEnd::Failed(e),
                        };
                        {
                            let mut e = engine.lock();
                            e.srv.stats.log_resumes += 1;
                            if let Some(g) = e.srv.gate.as_mut() {
                                g.cause = None;
                            }
                        }
                        writer = resumed.writer;
                        acked_lsn = resumed.heartbeat_lsn;
                        log_end = resumed.heartbeat_lsn;
                        last_send = resumed.heartbeat_at;
                        renew_lease(engine, d, resumed.heartbeat_at);
                        if !resumed.committed.is_empty() {
                            resumes = 0;
                        }
                        // Sent before the heartbeat that settled the log.
                        for (a, lsn) in resumed.committed {
                            last_batch = acknowledge(engine, d, &records_ready, &progress, &a, at, lsn);
                        }
                        for a in resumed.resend {
                            inflight_bytes += a.payload.len();
                            let sent_at = Instant::now();
                            let fut = writer.submit(&d.log, epoch, &mut log_end, a.payload.clone()).await;
                            inflight.push_back(in_flight(fut, timeout, sent_at, Some(a)));
                        }
                        continue;
                    }
                };
                acked_lsn = acked_lsn.max(lsn);
                match data {
                    Some(a) => {
                        resumes = 0;
                        last_batch = acknowledge(engine, d, &records_ready, &progress, &a, at, lsn);
                    }
                    None => {
                        // Sent with nothing else in flight: the log ends here.
                        log_end = lsn;
                        renew_lease(engine, d, at);
                    }
                }
                false
            }
            _ = records_ready.notified(), if can_take => {
                let queued = engine.lock().ks.effects.records().len();
                let full = queued * 4 >= last_batch * LINGER_FILL_QUARTERS;
                let now = Instant::now();
                let arrived = queued > linger_queued;
                linger_queued = queued;
                match linger_start {
                    _ if queued == 0 => false,
                    // Re-armed by the acknowledgement (below).
                    _ if !inflight.is_empty() && queued < SECOND_APPEND_MIN_RECORDS => false,
                    _ if full => true,
                    Some(start) if now >= start + LINGER => true,
                    // No new record: the timer set at the last one decides.
                    Some(_) if !arrived => false,
                    _ => {
                        let start = *linger_start.get_or_insert(now);
                        // Without a timer, no linger.
                        linger_timer.arm_at((start + LINGER).min(now + LINGER_GAP)).is_err()
                    }
                }
            }
            _ = linger_timer.expired(), if can_take && linger_timer.is_armed() => true,
            Some(reply) = rebuilds.recv(), if rebuild.is_none() => {
                rebuild = Some(reply);
                false
            }

            _ = tokio::time::sleep_until(heartbeat_at), if inflight.is_empty() => {
                let sent = Instant::now();
                last_send = sent;
                let fut = d.backend.heartbeat(&d.log, epoch, Bytes::from(d.holder.clone()));
                inflight.push_back(in_flight(fut, timeout, sent, None));
                heartbeat_in_flight = true;
                false
            }
        };
        if !take {
            continue;
        }
        linger_start = None;
        linger_queued = 0;
        if linger_timer.is_armed() {
            let _ = linger_timer.disarm();
        }
        let (records, more, early_ack) = {
            let mut e = engine.lock();
            let r = e.ks.effects.take_records_up_to(MAX_APPEND_BYTES);
            (r, !e.ks.effects.records().is_empty(), e.unsafe_early_ack)
        };
        if early_ack {
            // TEST ONLY (replies already went out): keep acknowledged
            // writes off the log long enough that a kill finds some.
            tokio::time::sleep(EARLY_ACK_LAG).await;
        }
        if more {
            records_ready.notify_one();
        }
        let (Some(first), Some(last)) = (records.first().map(|r| r.0), records.last().map(|r| r.0))
        else {
            continue;
        };
        let payload = Bytes::from(
            EffectBatch {
                records: records.into_iter().map(|(_, r)| r).collect(),
            }
            .encode_to_vec(),
        );
        inflight_bytes += payload.len();
        let sent = Instant::now();
        let fut = writer
            .submit(&d.log, epoch, &mut log_end, payload.clone())
            .await;
        last_send = sent;
        let data = DataAppend {
            seqs: (first, last),
            payload,
        };
        inflight.push_back(in_flight(fut, timeout, sent, Some(data)));
    }
}

/// Wraps an append's (or with `data` `None`, a heartbeat's) future with the
/// append timeout.
fn in_flight(
    fut: AppendFuture,
    timeout: Duration,
    at: Instant,
    data: Option<DataAppend>,
) -> InFlight {
    Box::pin(async move {
        let result = tokio::time::timeout(timeout, fut)
            .await
            .unwrap_or_else(|_| {
                Err(TxlogError::OutcomeUnknown(format!(
                    "{} not answered in time",
                    if data.is_some() {
                        "append"
                    } else {
                        "heartbeat"
                    }
                )))
            });
        Sent { result, at, data }
    })
}

/// Extends the lease to `sent + lease` (an append sent then was committed).
fn renew_lease(engine: &SharedEngine, d: &Durable, sent: Instant) {
    let mut e = engine.lock();
    if let Some(g) = e.srv.gate.as_mut() {
        let until = sent + d.lease;
        if g.lease_until.is_none_or(|t| t < until) {
            g.lease_until = Some(until);
        }
    }
    // Commands waiting out a lapse of the lease (`LogGate::check`) go on.
    e.progress.notify();
}

/// The log committed `append`, sent at `sent`, at `lsn`: releases its
/// parked replies, renews the lease. Returns the size of the next expected
/// batch (see LINGER).
fn acknowledge(
    engine: &SharedEngine,
    d: &Durable,
    records_ready: &tokio::sync::Notify,
    progress: &crate::tracker::LogProgress,
    append: &DataAppend,
    sent: Instant,
    lsn: u64,
) -> usize {
    renew_lease(engine, d, sent);
    let (first, last) = append.seqs;
    let queued = {
        let mut e = engine.lock();
        e.tracker.ack(last);
        e.srv.stats.log_appends += 1;
        e.srv.stats.log_records += last - first + 1;
        e.srv.stats.log_bytes_since_snapshot += append.payload.len() as u64;
        e.ks.effects.records().len()
    };
    if queued > 0 {
        // Records held back while this append was in flight.
        records_ready.notify_one();
    }
    // Positions first: a snapshot task woken by the acknowledgement (on
    // another thread with --io-threads) looks its record up at once.
    d.positions.lock().push(first, last, lsn);
    progress.set_acked(last);
    // The clients of this append now send their next writes; the ones
    // queued meanwhile are waiting already.
    (last - first + 1) as usize + queued
}

/// Resumes in a row without a DATA append acknowledged in between; then the
/// epoch ends (rebuild) rather than resending to a log that takes
/// heartbeats but keeps failing appends.
const MAX_RESUMES: u32 = 3;

/// Failures after which the appends in flight may or may not be in the
/// log, and the log itself can say which: the Raft leader changed or the
/// stream to it broke, the embedded log is reopening after a storage
/// failure (it recovers what it flushed), or the log refused an append as
/// not the next one
/// (CONFLICT: one sent before it was lost in a failover). Anything else
/// (FENCED, an invalid request, ...) ends the epoch.
fn retriable(e: &TxlogError) -> bool {
    matches!(
        e,
        TxlogError::NotLeader { .. }
            | TxlogError::OutcomeUnknown(_)
            | TxlogError::Unavailable(_)
            | TxlogError::Reopening(_)
            | TxlogError::Conflict { .. }
    )
}

/// What [`resume`] found out.
struct Resumed {
    writer: Writer,
    /// The heartbeat that settled the log: every entry before it is final.
    heartbeat_lsn: u64,
    heartbeat_at: Instant,
    /// Appends the log holds, with their LSNs, in order.
    committed: Vec<(DataAppend, u64)>,
    /// Appends it does not hold and never will: to be sent again, in order.
    resend: Vec<DataAppend>,
}

/// After a failover of the log (see [`retriable`]): appends a heartbeat
/// under `epoch` through the new Raft leader, which settles every entry
/// before it (committed in the leader's own term, so an entry of an older
/// term is in the log by then or never will be), reads the log after
/// `acked_lsn` (the last LSN acknowledged to this epoch) and matches its
/// DATA entries against `pending`, the appends that were in flight, in
/// order. Those found are committed; the rest are to be sent again. The
/// server keeps its data set and its clients only wait: the alternative,
/// failing them and rebuilding, costs a full replay. Anything unexpected
/// (FENCED, an entry this server did not send in this order, no leader
/// within the append timeout) is returned and ends the epoch as before.
async fn resume(
    d: &Durable,
    epoch: u64,
    acked_lsn: u64,
    pending: Vec<DataAppend>,
) -> Result<Resumed, TxlogError> {
    let deadline = Instant::now() + append_timeout(d.lease);
    let mut backoff = Duration::from_millis(50);
    let (heartbeat_lsn, heartbeat_at) = loop {
        let at = Instant::now();
        let hb = d
            .backend
            .heartbeat(&d.log, epoch, Bytes::from(d.holder.clone()));
        match tokio::time::timeout(d.lease, hb).await {
            Ok(Ok(lsn)) => break (lsn, at),
            Ok(Err(e)) if !retriable(&e) => return Err(e),
            Ok(Err(e)) if Instant::now() >= deadline => return Err(e),
            Err(_) if Instant::now() >= deadline => {
                return Err(TxlogError::OutcomeUnknown("no log leader in time".into()))
            }
            _ => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
        }
    };
    let mut entries = Vec::new();
    d.backend
        .replay(
            &d.log,
            acked_lsn + 1,
            heartbeat_lsn.saturating_sub(1),
            |chunk| {
                entries.extend(chunk.into_iter().filter(|e| e.data));
            },
        )
        .await?;
    let mut pending = pending.into_iter();
    let mut committed = Vec::new();
    for e in entries {
        match pending.next() {
            Some(a) if a.payload == e.payload => committed.push((a, e.lsn)),
            _ => {
                return Err(TxlogError::Invalid(format!(
                    "log entry {} is not the next append this server had in flight",
                    e.lsn
                )))
            }
        }
    }
    let resend: Vec<DataAppend> = pending.collect();
    let writer = loop {
        match Writer::open(&d.backend, &d.log, epoch).await {
            Ok(w) => break w,
            Err(e) if !retriable(&e) || Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    tracing::info!(
        committed = committed.len(),
        resent = resend.len(),
        "resumed at the log's leader"
    );
    Ok(Resumed {
        writer,
        heartbeat_lsn,
        heartbeat_at,
        committed,
        resend,
    })
}

/// Writes snapshots requested by SAVE / BGSAVE once their records are
/// durable, then trims the log up to them.
async fn run_snapshots(
    engine: SharedEngine,
    d: Arc<Durable>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<SnapshotRequest>,
) {
    let progress = engine.lock().progress.clone();
    while let Some(mut req) = rx.recv().await {
        let reply = req.reply.take();
        // Requests come one at a time (SAVE and BGSAVE refuse a second),
        // before thousands of appends could be acknowledged after theirs.
        d.positions.lock().pinned = Some(req.seq);
        // A forked capture's child is reaped first, whatever becomes of it
        // (its body file goes with the request when it is dropped).
        if let CapturedData::Forked(f) = &req.data {
            let pid = f.pid;
            let written = tokio::task::spawn_blocking(move || crate::snapshot::wait_forked(pid))
                .await
                .unwrap_or(false);
            engine.lock().ks.forked_child = false;
            if !written {
                d.positions.lock().pinned = None;
                tracing::warn!(pid, "snapshot dropped: its capture process failed");
                snapshot_done(&engine, reply, false);
                continue;
            }
        }
        // Wait until the records it contains are durable (or failed).
        let ok = loop {
            let changed = progress.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if progress.is_failed(req.seq) {
                break false;
            }
            if progress.acked() >= req.seq {
                break true;
            }
            changed.await;
        };
        let located = {
            let mut p = d.positions.lock();
            p.pinned = None;
            p.locate(req.seq)
        };
        let (true, Some((lsn, skip))) = (ok, located) else {
            tracing::warn!(
                seq = req.seq,
                "snapshot dropped: its records did not commit"
            );
            snapshot_done(&engine, reply, false);
            continue;
        };
        // Read before the trim below makes entry `lsn` unreadable.
        let checksum = match d.backend.checksum_at(&d.log, lsn).await {
            Ok(c) => c,
            // Trimmed: a stored snapshot already covers this position (the
            // log is only trimmed up to one), e.g. a SAVE right after
            // another with no write between. Nothing to add.
            Err(TxlogError::Truncated { .. }) => {
                snapshot_done(&engine, reply, true);
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "snapshot dropped: cannot read the log checksum");
                snapshot_done(&engine, reply, false);
                continue;
            }
        };
        let meta = SnapshotMeta {
            lsn,
            skip,
            checksum,
            created_ms: crate::keyspace::unix_ms(),
        };
        let data = req.data;
        let store = d.snapshots.clone();
        let saved = in_background(move || match data {
            CapturedData::Copied(data) => {
                let snap = Snapshot {
                    meta,
                    records: data.into_records(),
                };
                store.save(&snap)?;
                Ok(prost::encoding::message::encoded_len_repeated(1, &snap.records) as u64)
            }
            CapturedData::Forked(f) => store.save_body(&meta, &f.body),
        })
        .await;
        let ok = matches!(saved, Ok(Ok(_)));
        if let Ok(Ok(bytes)) = saved {
            let srv = &mut engine.lock().srv;
            srv.lastsave_ms = crate::keyspace::unix_ms();
            srv.stats.snapshot_bytes = bytes;
        }
        snapshot_done(&engine, reply, ok);
        match saved {
            Ok(Ok(_)) => {
                tracing::info!(lsn, skip, "snapshot saved");
                if lsn > 0 {
                    if let Err(e) = d.backend.trim(&d.log, lsn).await {
                        tracing::warn!(error = %e, "trimming the log after a snapshot failed");
                    }
                }
            }
            Ok(Err(e)) => tracing::error!(error = %e, "snapshot failed"),
            Err(e) => tracing::error!(error = %e, "snapshot task failed"),
        }
    }
}

/// Runs `work` on a thread of its own at a lower CPU priority (nice 10)
/// and waits for it: encoding and writing a snapshot is seconds of CPU for
/// a large data set, which the threads serving clients should win (on 2
/// cores, LPUSH at pipeline 16 fell to half its rate while one was built
/// at the same priority).
async fn in_background<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, tokio::sync::oneshot::error::RecvError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("snapshot".into())
        .spawn(move || {
            // Per thread on Linux; a failure leaves the priority as it is.
            #[cfg(target_os = "linux")]
            // SAFETY: setpriority has no memory-safety preconditions; `who`
            // 0 is the calling thread.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, 0, 10);
            }
            let _ = tx.send(work());
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "no snapshot thread");
    }
    rx.await
}

/// Counts a finished snapshot request for INFO persistence and answers
/// the SAVE waiting for it, if one is.
fn snapshot_done(
    engine: &SharedEngine,
    reply: Option<tokio::sync::oneshot::Sender<crate::engine::ParkedReply>>,
    saved: bool,
) {
    {
        let stats = &mut engine.lock().srv.stats;
        stats.snapshots_pending = stats.snapshots_pending.saturating_sub(1);
        stats.snapshot_failed = !saved;
        if saved {
            stats.snapshots_saved += 1;
        }
    }
    if let Some(tx) = reply {
        let bytes: &[u8] = if saved { b"+OK\r\n" } else { b"-ERR\r\n" };
        let _ = tx.send(crate::engine::ParkedReply {
            bytes: bytes.to_vec(),
            seq: 0,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_locate_whole_and_partial_entries() {
        let mut p = Positions {
            base_seq: 10,
            base_lsn: 4,
            ..Default::default()
        };
        p.batches.push_back((11, 13, 6));
        assert_eq!(p.locate(10), Some((4, 0)));
        assert_eq!(p.locate(13), Some((6, 0)));
        assert_eq!(p.locate(11), Some((5, 1)));
        assert_eq!(p.locate(12), Some((5, 2)));
        assert_eq!(p.locate(9), None);
    }

    /// The positions of the last KEPT_BATCHES appends are kept, and those
    /// of a snapshot in progress however many come after it.
    #[test]
    fn positions_keep_the_batch_a_snapshot_is_taken_as_of() {
        let mut p = Positions::default();
        for i in 1..=2 * KEPT_BATCHES as u64 {
            p.push(2 * i - 1, 2 * i, i);
        }
        assert_eq!(p.batches.len(), KEPT_BATCHES);
        assert_eq!(p.locate(2), None);
        let seq = 2 * (KEPT_BATCHES as u64 + 10);
        p.pinned = Some(seq);
        for i in 2 * KEPT_BATCHES as u64 + 1..=10 * KEPT_BATCHES as u64 {
            p.push(2 * i - 1, 2 * i, i);
        }
        assert_eq!(p.locate(seq), Some((KEPT_BATCHES as u64 + 10, 0)));
        assert_eq!(p.locate(seq - 1), Some((KEPT_BATCHES as u64 + 9, 1)));
        assert_eq!(p.locate(seq - 2), None);
        p.pinned = None;
        let next = 10 * KEPT_BATCHES as u64 + 1;
        p.push(2 * next - 1, 2 * next, next);
        assert_eq!(p.batches.len(), KEPT_BATCHES);
        assert_eq!(p.locate(seq), None);
    }

    /// The embedded log acknowledges group commits; a second engine on the
    /// same log recovers the data and fences the first.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn embedded_log_group_commit_recovery_and_fencing() {
        use crate::engine::{Engine, EngineOptions};
        use crate::snapshot::LocalSnapshotStore;
        let dir =
            std::env::temp_dir().join(format!("memlog-durable-{}", crate::engine::random_hex(8)));
        let node = EmbeddedLog::open(dir.join("txlog")).await.expect("node");
        let open = |holder: &str| {
            Durable::new(
                LogBackend::Embedded(node.clone()),
                "shard-0",
                holder,
                Duration::from_millis(400),
                Arc::new(LocalSnapshotStore::new(dir.join("snapshots"))),
            )
        };
        let first: SharedEngine = Arc::new(Mutex::new(Engine::new(&EngineOptions::default())));
        start(&first, open("one")).await.expect("start");
        let id = first.lock().register_client(None, "t".into(), "t".into());
        let mut out = crate::resp::ReplyBuf::new(false);
        let mut parked = Vec::new();
        let mut cmds: VecDeque<Vec<Bytes>> = (0..200)
            .map(|i| crate::argv![b"SET", format!("k{i}"), b"v"])
            .collect();
        first
            .lock()
            .execute_batch(id, &mut cmds, &mut out, &mut parked);
        assert_eq!(parked.len(), 200, "every write waits for the log");
        let last = parked.last().map(|p| p.2).unwrap_or(0);
        let progress = first.lock().progress.clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        while progress.acked() < last {
            assert!(Instant::now() < deadline, "never acknowledged");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (appends, records) = {
            let e = first.lock();
            (e.srv.stats.log_appends, e.srv.stats.log_records)
        };
        assert_eq!(records, 200);
        assert!(appends < 200, "no group commit: {appends} appends");

        let second: SharedEngine = Arc::new(Mutex::new(Engine::new(&EngineOptions::default())));
        start(&second, open("two")).await.expect("second start");
        assert_eq!(second.lock().ks.dbs[0].len(), 200);
        // The first one's next heartbeat is fenced.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let state = first.lock().srv.gate.as_ref().map(|g| g.state);
            if state == Some(GateState::Fenced) {
                break;
            }
            assert!(Instant::now() < deadline, "first engine never fenced");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // A snapshot that does not match the log is refused.
        let store = LocalSnapshotStore::new(dir.join("snapshots"));
        let start_after_snapshot = |lsn: u64, checksum: u32, holder: &'static str| {
            store
                .save(&Snapshot {
                    meta: SnapshotMeta {
                        lsn,
                        skip: 0,
                        checksum,
                        created_ms: 0,
                    },
                    records: Vec::new(),
                })
                .expect("save");
            let engine: SharedEngine = Arc::new(Mutex::new(Engine::new(&EngineOptions::default())));
            let d = open(holder);
            async move { start(&engine, d).await }
        };
        let r = start_after_snapshot(1, 12345, "three").await;
        assert!(matches!(r, Err(DurableError::Checksum(_))), "{r:?}");
        // So is one past the log's end, at once (it used to retry forever).
        let r = start_after_snapshot(1_000_000, 0, "four").await;
        assert!(
            matches!(
                r,
                Err(DurableError::LogBehindSnapshot {
                    snapshot_lsn: 1_000_000,
                    ..
                })
            ),
            "{r:?}"
        );
        node.shutdown().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn gate_errors() {
        let now = Instant::now();
        let mut g = LogGate {
            state: GateState::Serving,
            cause: None,
            lease_until: Some(now + Duration::from_secs(1)),
            lease: Duration::from_secs(2),
            grace_until: None,
        };
        assert_eq!(g.error(now), None);
        g.lease_until = Some(now);
        assert!(g.error(now).is_some_and(|e| e.contains("lease expired")));
        // Resuming after a storage failure of the embedded log: named.
        g.cause = Some("File too large (os error 27)".into());
        assert_eq!(
            g.error(now).as_deref(),
            Some("TRYAGAIN memlog: lease expired: the transaction log acknowledged nothing for 2000 ms, it cannot write (File too large (os error 27)); retry")
        );
        g.cause = None;
        g.state = GateState::Recovering;
        assert_eq!(g.error(now).as_deref(), Some(RECOVERING_ERROR));
        g.cause = Some("No space left on device (os error 28)".into());
        assert_eq!(
            g.error(now).as_deref(),
            Some("TRYAGAIN memlog: the transaction log cannot write (No space left on device (os error 28)); retry")
        );
        g.state = GateState::Fenced;
        assert_eq!(g.error(now).as_deref(), Some(FENCED_ERROR));
    }

    #[test]
    fn a_lapsed_lease_is_waited_out_once() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let mut g = LogGate {
            state: GateState::Serving,
            cause: None,
            lease_until: Some(now + ms(100)),
            lease: ms(2000),
            grace_until: None,
        };
        assert_eq!(g.check(now), GateCheck::Open);
        // Lapsed: wait up to one lease from the first command that saw it.
        let lapse = now + ms(500);
        assert_eq!(g.check(lapse), GateCheck::Wait(lapse + ms(2000)));
        assert_eq!(g.check(lapse + ms(10)), GateCheck::Wait(lapse + ms(2000)));
        // No renewal within the grace: refused, and no new grace.
        assert!(
            matches!(g.check(lapse + ms(2000)), GateCheck::Refuse(e) if e.contains("lease expired"))
        );
        assert!(matches!(g.check(lapse + ms(9000)), GateCheck::Refuse(_)));
        // Renewed, then lapsed again: a new grace.
        g.lease_until = Some(lapse + ms(9500));
        assert_eq!(g.check(lapse + ms(9000)), GateCheck::Open);
        assert_eq!(
            g.check(lapse + ms(9600)),
            GateCheck::Wait(lapse + ms(11600))
        );
        // A known failure of the log: refused at once.
        g.cause = Some("No space left on device (os error 28)".into());
        assert!(matches!(g.check(lapse + ms(9700)), GateCheck::Refuse(_)));
        g.cause = None;
        g.state = GateState::Recovering;
        assert_eq!(g.check(now), GateCheck::Refuse(RECOVERING_ERROR.into()));
    }
}
