//! The executor: owns the keyspace and runs commands against it.
//!
//! Connections parse requests on their own tasks and call
//! [`Engine::execute_batch`] with the commands of one read, under one lock
//! acquisition, so a pipeline costs one lock, not one per command. The lock
//! is never held across an `.await`. Dispatch is where every command's rules
//! meet: lookup, arity, AUTH, RESP2 pub/sub context, MULTI queueing, then the
//! handler, then its effect record, WATCH/blocked-client bookkeeping and
//! keyspace notifications.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::client::{ClientState, Push, ReplyMode};
use crate::command::{self, flags, CommandSpec, Handler};
use crate::config::Config;
use crate::durable::GateCheck;
use crate::effect::EffectRecord;
use crate::error::{CmdError, CmdResult};
use crate::keyspace::{unix_ms, ClientId, Elem, Keyspace};
use crate::pubsub::PubSub;
use crate::resp::ReplyBuf;
use crate::stats::Stats;
use crate::tracker::{HazardTracker, LogProgress};

/// A reply produced for a blocked client by another client's command, with
/// the sequence number it must wait for.
#[derive(Debug)]
pub struct ParkedReply {
    pub bytes: Vec<u8>,
    pub seq: u64,
}

/// What a blocking command answers when it times out (or is unblocked by
/// CLIENT UNBLOCK), or when it cannot block at all (inside MULTI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutReply {
    /// `*-1` (BLPOP, BZPOPMIN, BLMPOP, ...).
    NullArray,
    /// BLMOVE, BRPOPLPUSH: `*-1` on timeout, as Redis 7 answers every
    /// blocked list command, but `$-1` when they cannot block.
    NullBulk,
    /// `:0` (WAIT: no replica acknowledged).
    Zero,
}

impl TimeoutReply {
    /// The reply once the timeout passed.
    pub fn write(self, out: &mut ReplyBuf) {
        match self {
            TimeoutReply::NullArray | TimeoutReply::NullBulk => out.null_array(),
            TimeoutReply::Zero => out.int(0),
        }
    }

    /// The reply of a command that could not block.
    pub fn write_unblockable(self, out: &mut ReplyBuf) {
        match self {
            TimeoutReply::NullBulk => out.null(),
            other => other.write(out),
        }
    }
}

/// A handler's request to block until one of `keys` changes.
#[derive(Debug, Clone)]
pub struct BlockRequest {
    pub keys: Vec<Elem>,
    /// The command to retry when a key is ready, when not the original
    /// (XREAD's `$` resolved to the IDs it stood for when it blocked).
    pub retry: Option<Vec<Bytes>>,
    /// `None`: block forever.
    pub timeout: Option<Duration>,
    pub on_timeout: TimeoutReply,
}

/// What a blocked client whose deadline passed answers.
#[derive(Debug)]
pub enum BlockTimedOut {
    /// The timeout reply, released once record `.1` is acknowledged.
    Reply(TimeoutReply, u64),
    /// The log cannot vouch for the data set: this error instead.
    Error(String),
}

/// A client waiting in a blocking command.
#[derive(Debug)]
struct BlockedClient {
    db: usize,
    argv: Vec<Bytes>,
    keys: Vec<Elem>,
    on_timeout: TimeoutReply,
    reply_tx: oneshot::Sender<ParkedReply>,
}

/// What the connection must do after a batch.
#[derive(Debug)]
pub enum BatchOutcome {
    /// All commands ran.
    Done,
    /// A command blocked: wait for the reply (or the deadline), then go on.
    Blocked(BlockedWait),
    /// Close after writing the replies (QUIT, protocol-level kill).
    Close,
    /// The lease lapsed: wait for its renewal (at most until then), then
    /// run the rest (see `LogGate::check`).
    AwaitLease(Instant),
    /// CLIENT PAUSE holds the next command: wait until the pause ends (the
    /// receiver changes when CLIENT UNPAUSE or a new pause comes, the
    /// instant is its end), then run the rest.
    Paused(tokio::sync::watch::Receiver<u64>, Instant),
}

/// The connection's side of a blocked command.
#[derive(Debug)]
pub struct BlockedWait {
    pub reply: oneshot::Receiver<ParkedReply>,
    pub deadline: Option<Instant>,
    /// The error to answer should `reply` close unanswered (`None`: none).
    pub on_close: Option<&'static str>,
}

/// Everything in the engine that is not the keyspace or the clients.
#[derive(Debug)]
pub struct ServerState {
    pub config: Config,
    pub stats: Stats,
    pub pubsub: PubSub,
    pub requirepass: Option<String>,
    pub start: Instant,
    pub start_ms: i64,
    pub run_id: String,
    pub data_dir: std::path::PathBuf,
    /// `--config`: the file CONFIG REWRITE writes (INFO `config_file`).
    pub config_file: Option<std::path::PathBuf>,
    pub lastsave_ms: i64,
    /// When a snapshot was last asked for (for `save` points' retry delay).
    pub last_snapshot_try_ms: i64,
    /// A BGREWRITEAOF arrived while a snapshot was being taken: take one
    /// once it is done.
    pub snapshot_scheduled: bool,
    pub next_client_id: ClientId,
    /// Set by SHUTDOWN: the server stops accepting and exits.
    pub shutdown: Option<tokio::sync::watch::Sender<bool>>,
    /// DEBUG SET-ACTIVE-EXPIRE: whether the active expire cycle runs.
    pub active_expire: bool,
    /// INFO replication master_replid (DEBUG CHANGE-REPL-ID renews it).
    pub replid: String,
    /// Whether commands may run, when the durable path is on (see
    /// `durable`): leadership state and lease.
    pub gate: Option<crate::durable::LogGate>,
    /// Where SAVE / BGSAVE send snapshots when the durable path is on.
    /// Where DEBUG LOADAOF asks the log client to rebuild the data set from
    /// the log (snapshot + replay); answered once serving again.
    pub rebuild_requests: Option<tokio::sync::mpsc::UnboundedSender<oneshot::Sender<ParkedReply>>>,
    pub snapshot_requests:
        Option<tokio::sync::mpsc::UnboundedSender<crate::durable::SnapshotRequest>>,
    /// Where a forked capture writes its snapshot body (the snapshot
    /// store's directory); without one, captures are copied in memory.
    pub capture_dir: Option<std::path::PathBuf>,
    blocked: HashMap<(usize, Elem), VecDeque<ClientId>>,
    blocked_clients: HashMap<ClientId, BlockedClient>,
    /// While a blocked client's command is re-run: the (db, key) whose
    /// readiness woke it. Redis 7.0 serves BLPOP & co from that key.
    pub serving_key: Option<(usize, Elem)>,
    /// Failed authentications, for ACL LOG.
    pub acl_log: crate::command::acl::AclLog,
    pub slowlog: crate::slowlog::SlowLog,
    pub monitors: crate::monitor::Monitors,
    /// client-output-buffer-limit, shared with every connection's queue.
    pub output_limits: std::sync::Arc<crate::output_limit::OutputLimits>,
    pub latency_events: crate::latency::LatencyEvents,
    /// `latency-monitor-threshold` in ms (0: no latency events).
    pub latency_threshold_ms: i64,
    /// EVAL & co: the Lua state and the script cache.
    pub scripting: crate::script::Scripting,
    /// FUNCTION & FCALL: the libraries and their Lua state.
    pub functions: crate::functions::Functions,
    /// CLIENT TRACKING: who may cache what.
    pub tracking: crate::tracking::Tracking,
    /// CLIENT PAUSE.
    pub pause: ClientPause,
    /// maxmemory: the limit, the policy, the last reading.
    pub memory: crate::maxmemory::Memory,
    /// The script now running started over maxmemory: its commands that
    /// may grow the data set are refused until it has written.
    pub script_oom: bool,
    /// The script running past `busy-reply-threshold`, while it does
    /// (crate::busy): other clients get -BUSY.
    pub busy: Option<crate::busy::BusyScript>,
    /// Whether a busy script's hook serves the other clients: only where
    /// the connections run on the script's thread (a current-thread
    /// runtime); otherwise a script past the threshold that has not
    /// written is stopped.
    pub serve_while_busy: bool,
    /// The listening TCP sockets, which a busy script's hook accepts on
    /// and CONFIG SET port / bind moves.
    pub listener_fds: Vec<std::os::fd::RawFd>,
    /// The listening Unix domain socket (`unixsocket`), if any.
    pub unix_listener_fd: Option<std::os::fd::RawFd>,
    /// Ticks of `Engine::resize_query_buffers` so far.
    pub query_buffers_tick: u64,
    /// Where CONFIG SET port / bind hands the serving loop new listeners
    /// (`server::move_listeners`); none without a server.
    pub rebind: Option<tokio::sync::mpsc::UnboundedSender<Vec<std::net::TcpListener>>>,
    /// Connections a busy script's hook accepted, for the accept loop to
    /// start their tasks once it has ended; `adopt_ready` wakes it.
    pub adopted: Vec<crate::busy::Adopted>,
    pub adopt_ready: std::sync::Arc<tokio::sync::Notify>,
    /// `min-replicas-to-write`: writes need this many good replicas, and a
    /// memlog primary has none yet, so any value above 0 refuses writes
    /// (-NOREPLICAS), as on a Redis primary without replicas.
    pub min_replicas_to_write: i64,
    /// `oom-score-adj`: the score memlog gave the process and its
    /// snapshot child.
    pub oom_score: crate::oom_score::OomScore,
    /// When idle clients were last looked for (`timeout`).
    pub idle_checked_ms: i64,
}

/// CLIENT PAUSE: until when, which commands, and who waits.
#[derive(Debug)]
pub struct ClientPause {
    /// End (Unix ms) and whether every command waits (ALL) or only those
    /// that may write (WRITE).
    pub until: Option<(i64, bool)>,
    /// Changed when a pause is lifted or changed: held clients look again.
    pub changed: tokio::sync::watch::Sender<u64>,
    /// Clients holding a command back.
    pub held: std::collections::HashSet<ClientId>,
}

impl Default for ClientPause {
    fn default() -> Self {
        ClientPause {
            until: None,
            changed: tokio::sync::watch::channel(0).0,
            held: std::collections::HashSet::new(),
        }
    }
}

impl ClientPause {
    /// CLIENT PAUSE: the later end and the stricter mode of this and any
    /// pause in force.
    pub fn pause(&mut self, until_ms: i64, all: bool) {
        let (end, was_all) = self.until.unwrap_or((until_ms, all));
        self.until = Some((end.max(until_ms), was_all || all));
        self.changed.send_modify(|n| *n += 1);
    }

    /// CLIENT UNPAUSE.
    pub fn unpause(&mut self) {
        self.until = None;
        self.changed.send_modify(|n| *n += 1);
    }

    /// The pause in force at `now_ms`, if any (an ended one is lifted).
    pub fn active(&mut self, now_ms: i64) -> Option<(i64, bool)> {
        match self.until {
            Some((end, _)) if end <= now_ms => {
                self.unpause();
                None
            }
            other => other,
        }
    }
}

impl ServerState {
    /// Every listening socket, and whether it is the Unix domain one.
    pub fn listening(&self) -> Vec<(std::os::fd::RawFd, bool)> {
        let tcp = self.listener_fds.iter().map(|&fd| (fd, false));
        tcp.chain(self.unix_listener_fd.map(|fd| (fd, true)))
            .collect()
    }

    /// Blocked clients, those held by CLIENT PAUSE included (as Redis
    /// counts them).
    pub fn blocked_client_count(&self) -> usize {
        self.blocked_clients.len() + self.pause.held.len()
    }
}

/// What a command handler works with.
pub struct Ctx<'a> {
    pub ks: &'a mut Keyspace,
    pub srv: &'a mut ServerState,
    /// Every other client (the running one is `client`).
    pub clients: &'a mut HashMap<ClientId, ClientState>,
    pub client: &'a mut ClientState,
    pub args: &'a [Bytes],
    pub out: &'a mut ReplyBuf,
    /// Set by a handler that must wait (see [`Ctx::block_on`]).
    pub block: Option<BlockRequest>,
    /// Set by a handler whose reply comes later from a task (SAVE): the
    /// connection waits for it before running its next command.
    pub reply_later: Option<oneshot::Receiver<ParkedReply>>,
    /// Set by QUIT & co: close once the reply is written.
    pub close: bool,
}

impl Ctx<'_> {
    /// The selected database.
    pub fn db(&self) -> usize {
        self.client.db
    }

    pub fn argc(&self) -> usize {
        self.args.len()
    }

    pub fn arg(&self, i: usize) -> &[u8] {
        &self.args[i]
    }

    /// The argument upper-cased as a `String` (for option matching).
    pub fn arg_upper(&self, i: usize) -> String {
        String::from_utf8_lossy(&self.args[i]).to_ascii_uppercase()
    }

    /// Whether argument `i` equals `word`, ignoring case.
    pub fn arg_is(&self, i: usize, word: &str) -> bool {
        self.args
            .get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    }

    /// Argument `i` as an integer, or `ERR value is not an integer...`.
    pub fn int_arg(&self, i: usize) -> Result<i64, CmdError> {
        crate::numbers::parse_i64(&self.args[i]).ok_or(CmdError::NotInteger)
    }

    /// Argument `i` as a float, or `ERR value is not a valid float`.
    pub fn float_arg(&self, i: usize) -> Result<f64, CmdError> {
        crate::numbers::parse_f64(&self.args[i]).ok_or(CmdError::NotFloat)
    }

    /// The command name as the client typed it, lower-cased.
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.args[0]).to_ascii_lowercase()
    }

    /// Parses a blocking timeout in seconds (fractions allowed; 0 = forever).
    pub fn timeout_arg(&self, i: usize) -> Result<Option<Duration>, CmdError> {
        let text = &self.args[i];
        let t = crate::numbers::parse_f64(text).ok_or(CmdError::BadTimeout)?;
        // Redis 7.0: `(long long) ceill(seconds * 1000)` on a long double; a
        // value out of the range of long long (inf included) converts to
        // LLONG_MIN on x86, so it is "negative". Fractions of a millisecond
        // round up (0.0001 waits 1 ms, -0.0001 is 0: block forever), even
        // one too small for an f64 (1e-400), which a long double holds.
        let mantissa = text.split(|&b| b == b'e' || b == b'E').next();
        let tiny = t == 0.0
            && !text.starts_with(b"-")
            && mantissa.is_some_and(|m| m.iter().any(|b| (b'1'..=b'9').contains(b)));
        let ms = (t * 1000.0).ceil();
        let ms = if tiny {
            1
        } else if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&ms) {
            ms as i64
        } else {
            i64::MIN
        };
        if ms < 0 {
            return Err(CmdError::NegativeTimeout);
        }
        // 0 blocks forever; so, in practice, does anything over ~30 years
        // (and an Instant cannot hold deadlines that far away).
        if ms == 0 || ms > 1_000_000_000_000 {
            return Ok(None);
        }
        Ok(Some(Duration::from_millis(ms as u64)))
    }

    /// Whether the command may block now (not inside MULTI or replay).
    pub fn can_block(&self) -> bool {
        !self.client.in_exec && !self.client.in_script && !self.ks.applying
    }

    /// Blocks the client on `keys` (or answers the timeout reply at once
    /// when blocking is impossible, as in MULTI). The handler writes nothing
    /// else and returns `Ok(())`.
    pub fn block_on(
        &mut self,
        keys: Vec<Elem>,
        timeout: Option<Duration>,
        on_timeout: TimeoutReply,
    ) {
        self.block_on_rewritten(keys, timeout, on_timeout, None);
    }

    /// [`Ctx::block_on`], retrying `retry` instead of the command itself.
    pub fn block_on_rewritten(
        &mut self,
        keys: Vec<Elem>,
        timeout: Option<Duration>,
        on_timeout: TimeoutReply,
        retry: impl Into<Option<Vec<Bytes>>>,
    ) {
        if self.can_block() {
            self.block = Some(BlockRequest {
                keys,
                retry: retry.into(),
                timeout,
                on_timeout,
            });
        } else {
            on_timeout.write_unblockable(self.out);
        }
    }
}

/// The executor.
#[derive(Debug)]
pub struct Engine {
    pub ks: Keyspace,
    pub srv: ServerState,
    pub clients: HashMap<ClientId, ClientState>,
    /// Which replies wait for which log acknowledgements.
    pub tracker: HazardTracker,
    /// The log's acknowledgements, shared with connection tasks.
    pub progress: std::sync::Arc<LogProgress>,
    /// Wakes the log client when records are ready to append.
    pub records_ready: std::sync::Arc<tokio::sync::Notify>,
    /// Barrier of the command being executed (see `tracker`).
    cmd_barrier: u64,
    /// Clock reads shared between the commands of a batch (see
    /// [`Engine::execute_batch`]): when the next top-level command starts,
    /// and when the last one `call` timed ended.
    cmd_start: Option<Instant>,
    call_ended: Option<Instant>,
    /// TEST ONLY: never park replies (see `ServerConfig::unsafe_early_ack`).
    pub unsafe_early_ack: bool,
}

/// How `memlog server` configures the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub databases: usize,
    pub requirepass: Option<String>,
    pub proto_max_bulk_len: u64,
    pub port: u16,
    pub bind: String,
    pub data_dir: std::path::PathBuf,
    /// Who may run DEBUG: `yes`, `no`, or `local` (loopback clients).
    pub enable_debug_command: String,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            databases: 16,
            requirepass: None,
            proto_max_bulk_len: 512 * 1024 * 1024,
            port: 6379,
            bind: "127.0.0.1".into(),
            data_dir: std::path::PathBuf::from("."),
            enable_debug_command: "local".into(),
        }
    }
}

pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    (0..n)
        .map(|_| format!("{:x}", r.gen_range(0..16u8)))
        .collect()
}

impl Engine {
    pub fn new(opts: &EngineOptions) -> Self {
        let mut config = Config::default();
        config.set_raw("databases", opts.databases.to_string());
        config.set_raw("port", opts.port.to_string());
        config.set_raw("bind", opts.bind.clone());
        config.set_raw("enable-debug-command", opts.enable_debug_command.clone());
        config.set_raw("proto-max-bulk-len", opts.proto_max_bulk_len.to_string());
        config.set_raw("dir", opts.data_dir.display().to_string());
        if let Some(p) = &opts.requirepass {
            config.set_raw("requirepass", p.clone());
        }
        let now = unix_ms();
        Self {
            ks: Keyspace::new(opts.databases),
            srv: ServerState {
                config,
                stats: Stats {
                    latency_tracking: true,
                    ..Default::default()
                },
                pubsub: PubSub::default(),
                requirepass: opts.requirepass.clone().filter(|p| !p.is_empty()),
                start: Instant::now(),
                start_ms: now,
                run_id: random_hex(40),
                data_dir: opts.data_dir.clone(),
                config_file: None,
                lastsave_ms: now,
                last_snapshot_try_ms: now,
                snapshot_scheduled: false,
                next_client_id: 1,
                shutdown: None,
                active_expire: true,
                replid: random_hex(40),
                rebuild_requests: None,
                snapshot_requests: None,
                capture_dir: None,
                gate: None,
                blocked: HashMap::new(),
                blocked_clients: HashMap::new(),
                serving_key: None,
                acl_log: Default::default(),
                slowlog: Default::default(),
                monitors: Default::default(),
                output_limits: Default::default(),
                latency_events: Default::default(),
                latency_threshold_ms: 0,
                scripting: Default::default(),
                functions: Default::default(),
                tracking: Default::default(),
                pause: Default::default(),
                memory: crate::maxmemory::Memory::new(),
                script_oom: false,
                busy: None,
                serve_while_busy: false,
                listener_fds: Vec::new(),
                unix_listener_fd: None,
                query_buffers_tick: 0,
                rebind: None,
                adopted: Vec::new(),
                adopt_ready: Default::default(),
                min_replicas_to_write: 0,
                oom_score: Default::default(),
                idle_checked_ms: 0,
            },
            clients: HashMap::new(),
            tracker: HazardTracker::default(),
            progress: std::sync::Arc::new(LogProgress::default()),
            records_ready: std::sync::Arc::new(tokio::sync::Notify::new()),
            cmd_barrier: 0,
            cmd_start: None,
            call_ended: None,
            unsafe_early_ack: false,
        }
    }

    /// Turns on the durable path: effect records are kept for the log
    /// client and replies wait for their acknowledgement.
    pub fn enable_durability(&mut self) {
        self.ks.effects.capture = true;
        if self.srv.gate.is_none() {
            self.srv.gate = Some(crate::durable::LogGate::default());
        }
    }

    /// Empties every database (WATCHes of the old data fail) before the
    /// data set is rebuilt from a snapshot and the log.
    pub fn reset_dataset(&mut self) {
        for db in 0..self.ks.dbs.len() {
            self.ks.touch_all_watched_in_db(db, None);
            let d = &mut self.ks.dbs[db];
            d.data = Default::default();
            d.expires = Default::default();
        }
        self.ks.effects.clear_records();
        self.ks.pending_events.clear();
        self.ks.ready_keys.clear();
        // The snapshot and the log replayed next load them again.
        self.srv.functions.flush();
        self.ks.tracking_flushed |= self.ks.tracking_on;
    }

    /// After a rebuild: clients blocked on keys that now hold data (from the
    /// snapshot or the replay) are served, as if those keys had just been
    /// written.
    pub fn wake_blocked_after_rebuild(&mut self) {
        if self.ks.blocked_keys.is_empty() {
            return;
        }
        let keys: Vec<(usize, Elem)> = self.ks.blocked_keys.keys().cloned().collect();
        self.ks.ready_keys.extend(keys);
        self.ks.now_ms = unix_ms();
        self.serve_blocked(None);
        if !self.ks.effects.records().is_empty() {
            self.records_ready.notify_one();
        }
    }

    /// The error every command gets now, if the durable path forbids
    /// serving (recovering, fenced, lease expired).
    fn gate_error(&self) -> Option<String> {
        self.srv.gate.as_ref().and_then(|g| g.error(Instant::now()))
    }

    /// Closes the current effect record; a finished record is registered
    /// with the hazard tracker under the keys its commands touch. Returns its
    /// sequence number when replies must wait for it.
    fn close_record(&mut self) -> Option<u64> {
        let seq = self.ks.effects.end_record()?;
        if !self.ks.effects.capture {
            // Not durable: nothing will acknowledge it, nothing waits.
            return None;
        }
        let mut whole = false;
        if let Some((_, rec)) = self.ks.effects.records().last() {
            for c in &rec.commands {
                let Some(spec) = command::lookup(&c.argv[0]) else {
                    continue;
                };
                whole |= spec.flags & flags::WHOLE_KEYSPACE != 0;
                if let Ok(idx) = spec.key_indexes(&c.argv) {
                    for i in idx {
                        self.tracker.record_key(seq, c.db, &c.argv[i]);
                    }
                }
                if let Some((db, key)) = key_in_other_db(&c.argv) {
                    self.tracker.record_key(seq, db, key);
                }
                if spec.name == "function" {
                    let (db, key) = FUNCTION_LIBRARIES;
                    self.tracker.record_key(seq, db, key);
                }
            }
        }
        self.tracker.record(seq, whole);
        Some(seq)
    }

    /// The barrier a reply to `argv` (in `db`) must wait behind.
    fn read_barrier(&self, spec: &CommandSpec, argv: &[Bytes], db: usize) -> u64 {
        if self.tracker.is_idle() {
            return 0;
        }
        if spec.flags & flags::WHOLE_KEYSPACE != 0 || reads_by_pattern(spec, argv) {
            return self.tracker.whole_keyspace_barrier();
        }
        let libraries =
            matches!(spec.name, "function" | "fcall" | "fcall_ro").then_some(FUNCTION_LIBRARIES);
        match spec.key_indexes(argv) {
            Ok(idx) => self.tracker.barrier(
                idx.into_iter()
                    .map(|i| (db as u32, &argv[i][..]))
                    .chain(libraries),
            ),
            Err(_) => self.tracker.barrier(libraries),
        }
    }

    /// Registers a connection; returns its CLIENT ID.
    pub fn register_client(
        &mut self,
        push_tx: Option<mpsc::UnboundedSender<Push>>,
        addr: String,
        laddr: String,
    ) -> ClientId {
        let id = self.srv.next_client_id;
        self.srv.next_client_id += 1;
        let mut c = ClientState::new(id, push_tx);
        c.push_queue = std::sync::Arc::new(crate::output_limit::PushQueue::new(
            self.srv.output_limits.clone(),
        ));
        c.addr = addr;
        c.laddr = laddr;
        c.authenticated = self.srv.requirepass.is_none();
        self.clients.insert(id, c);
        self.srv.stats.total_connections_received += 1;
        id
    }

    /// Forgets a closed connection: its subscriptions, WATCHes, waits and
    /// tracking.
    pub fn unregister_client(&mut self, id: ClientId) {
        self.cancel_block(id);
        self.srv.pause.held.remove(&id);
        self.srv.tracking.disable(id);
        self.ks.tracking_on = self.srv.tracking.is_on();
        self.srv.monitors.remove(id);
        if let Some(mut c) = self.clients.remove(&id) {
            for ns in crate::pubsub::Namespace::ALL {
                for name in c.subscriptions_mut(ns).drain() {
                    self.srv.pubsub.remove(ns, id, &name);
                }
            }
            self.ks.unwatch_all(id, &c.watched);
        } else {
            // Its state was out of the map, being run, when a command
            // panicked (`guarded`): its subscriptions and WATCHes are found
            // by its id.
            self.srv.pubsub.forget(id);
            self.ks.forget_watcher(id);
        }
    }

    /// Whether clients must AUTH before anything else.
    pub fn auth_required(&self, id: ClientId) -> bool {
        self.clients.get(&id).is_some_and(|c| !c.authenticated)
    }

    /// Runs commands from the front of `cmds` until they are all done, one
    /// blocks, or the connection must close. Replies go to `out`.
    ///
    /// For every reply that must wait for the log, `(start, end, seq)` of its
    /// bytes in `out` is pushed to `parked`.
    pub fn execute_batch(
        &mut self,
        id: ClientId,
        cmds: &mut VecDeque<Vec<Bytes>>,
        out: &mut ReplyBuf,
        parked: &mut Vec<(usize, usize, u64)>,
    ) -> BatchOutcome {
        let Some(mut client) = self.clients.remove(&id) else {
            return BatchOutcome::Close;
        };
        if !self.srv.pause.held.is_empty() {
            self.srv.pause.held.remove(&id);
        }
        let mut outcome = BatchOutcome::Done;
        // One clock read per command instead of four (the lease check, the
        // command's Unix time, its start and end for the latency stats: 7 %
        // of the server's CPU at pipelined GETs in a VM): a command starts
        // when the previous one ended, and its Unix time (frozen for the
        // command, as Redis' command time snapshot) follows the monotonic
        // clock from the batch's start.
        let (batch_instant, batch_unix_ms) = (Instant::now(), unix_ms());
        let mut now = batch_instant;
        while let Some(argv) = cmds.pop_front() {
            if argv.is_empty() {
                continue;
            }
            // Checked before every command: the one before may have held
            // the engine past the lease.
            let gate = match self.srv.gate.as_mut() {
                None => GateCheck::Open,
                Some(g) => g.check(now),
            };
            if gate != GateCheck::Open
                // QUIT still closes; INFO still reports (memlog_log_state).
                && !argv[0].eq_ignore_ascii_case(b"quit")
                && !argv[0].eq_ignore_ascii_case(b"info")
            {
                if let GateCheck::Wait(until) = gate {
                    cmds.push_front(argv);
                    outcome = BatchOutcome::AwaitLease(until);
                    break;
                }
                if let GateCheck::Refuse(msg) = &gate {
                    // A transaction that lost a command cannot EXEC.
                    if let Some(m) = client.multi.as_mut() {
                        m.aborted = true;
                    }
                    out.resp3 = client.resp3;
                    out.error(msg);
                    self.srv.stats.count_error(msg);
                    continue;
                }
            }
            self.ks.now_ms = batch_unix_ms
                + i64::try_from(now.duration_since(batch_instant).as_millis()).unwrap_or(0);
            if let Some(end) = self.pause_holds(&client, &argv) {
                cmds.push_front(argv);
                self.srv.pause.held.insert(id);
                let wait = Duration::from_millis(u64::try_from(end - self.ks.now_ms).unwrap_or(0));
                outcome =
                    BatchOutcome::Paused(self.srv.pause.changed.subscribe(), Instant::now() + wait);
                break;
            }
            let reply_start = out.buf.len();
            out.resp3 = client.resp3;
            if client.reply_mode == ReplyMode::Skip {
                client.reply_mode = ReplyMode::SkipThis;
            }
            self.cmd_barrier = 0;
            self.cmd_start = Some(now);
            self.call_ended = None;
            if self.ks.tracking_on && client.reply_mode == ReplyMode::On {
                self.srv.tracking.inline_for = Some(client.id);
            }
            let r = self.dispatch(&mut client, &argv, out, true);
            // Not taken when the command was refused before it ran.
            self.cmd_start = None;
            now = self.call_ended.take().unwrap_or_else(Instant::now);
            apply_reply_mode(&mut client, out, reply_start);
            // Its own invalidations right after its reply, as Redis sends
            // them (parked with it).
            self.srv.tracking.inline_for = None;
            if !self.srv.tracking.inline.is_empty() {
                out.raw(&std::mem::take(&mut self.srv.tracking.inline));
            }
            // CLIENT CACHING covers the next command (or transaction) only.
            if self.ks.tracking_on
                && client.multi.is_none()
                && !argv[0].eq_ignore_ascii_case(b"client")
            {
                self.srv.tracking.command_done(client.id);
            }
            if self.cmd_barrier > self.tracker.acked()
                && !self.unsafe_early_ack
                && !matches!(r, Dispatched::Blocked(_) | Dispatched::ReplyLater(_))
            {
                parked.push((reply_start, out.buf.len(), self.cmd_barrier));
            }
            self.after_command(Some(&client));
            match r {
                Dispatched::Done => {}
                Dispatched::Close => {
                    outcome = BatchOutcome::Close;
                    break;
                }
                Dispatched::Blocked(req) => {
                    let wait = self.register_block(&mut client, argv, req);
                    outcome = BatchOutcome::Blocked(wait);
                    break;
                }
                Dispatched::ReplyLater(reply) => {
                    outcome = BatchOutcome::Blocked(BlockedWait {
                        reply,
                        deadline: None,
                        on_close: Some("ERR"),
                    });
                    break;
                }
            }
            if client.killed {
                outcome = BatchOutcome::Close;
                break;
            }
        }
        if self.ks.tracking_on {
            self.tracking_after_batch(Some(&client));
        }
        self.clients.insert(id, client);
        if !self.ks.effects.records().is_empty() {
            self.records_ready.notify_one();
        }
        outcome
    }

    /// Executes one command for an internal caller (tests, effect replay):
    /// replies go to `out`. Blocking commands answer their timeout reply.
    pub fn execute_one(&mut self, id: ClientId, argv: &[Bytes], out: &mut ReplyBuf) {
        let Some(mut client) = self.clients.remove(&id) else {
            return;
        };
        self.ks.now_ms = unix_ms();
        out.resp3 = client.resp3;
        let was_exec = client.in_exec;
        // Internal callers cannot wait: make blocking commands answer at once.
        client.in_exec = true;
        let _ = self.dispatch(&mut client, argv, out, true);
        client.in_exec = was_exec;
        self.after_command(Some(&client));
        self.clients.insert(id, client);
    }

    /// Runs one command of client `id` while a script is busy, from the
    /// script's hook (crate::busy): through the same checks as any (most
    /// get -BUSY), but nothing after it (no blocked client is served, no
    /// event published: the script's record is still open), and with the
    /// script's command bookkeeping put back. Returns whether the
    /// connection must close.
    pub fn execute_while_busy(&mut self, id: ClientId, argv: &[Bytes], out: &mut ReplyBuf) -> bool {
        let Some(mut client) = self.clients.remove(&id) else {
            return true;
        };
        let saved = (
            self.cmd_barrier,
            self.cmd_start,
            self.call_ended,
            self.ks.now_ms,
        );
        self.ks.now_ms = unix_ms();
        let reply_start = out.buf.len();
        out.resp3 = client.resp3;
        if client.reply_mode == ReplyMode::Skip {
            client.reply_mode = ReplyMode::SkipThis;
        }
        let r = self.dispatch(&mut client, argv, out, true);
        apply_reply_mode(&mut client, out, reply_start);
        // It interacted, refused or not (`timeout` must not close it).
        client.last_cmd_ms = self.ks.now_ms;
        (
            self.cmd_barrier,
            self.cmd_start,
            self.call_ended,
            self.ks.now_ms,
        ) = saved;
        let close = matches!(r, Dispatched::Close) || client.killed;
        self.clients.insert(id, client);
        close
    }

    /// Replays one effect record (replicas, recovery, tests). Effects are
    /// deterministic commands; any error reply means divergence.
    pub fn apply_effect(&mut self, record: &EffectRecord) -> Result<(), ApplyError> {
        if record.engine_version > crate::effect::ENGINE_VERSION {
            return Err(ApplyError::NewerEngine(record.engine_version));
        }
        let mut client = ClientState::new(0, None);
        client.authenticated = true;
        client.in_exec = true;
        self.ks.applying = true;
        // The keys it creates are used now (their access clocks).
        self.ks.now_ms = crate::keyspace::unix_ms();
        // A command that fails does not stop the ones after it, as in EXEC:
        // each stands for a change the primary made, and a snapshot's
        // record holds up to 256 keys' RESTOREs that one bad key would take
        // along. The first failure is reported.
        let mut result = Ok(());
        for cmd in &record.commands {
            if cmd.db as usize >= self.ks.dbs.len() {
                if result.is_ok() {
                    result = Err(ApplyError::Failed(format!("db {} out of range", cmd.db)));
                }
                continue;
            }
            client.db = cmd.db as usize;
            let mut out = ReplyBuf::new(false);
            self.dispatch(&mut client, &cmd.argv, &mut out, false);
            if out.buf.first() == Some(&b'-') {
                let argv: Vec<String> = cmd
                    .argv
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into())
                    .collect();
                if result.is_ok() {
                    result = Err(ApplyError::Failed(format!(
                        "{:?} answered {}",
                        argv,
                        String::from_utf8_lossy(&out.buf).trim_end()
                    )));
                }
            }
        }
        self.ks.applying = false;
        self.ks.pending_events.clear();
        self.ks.ready_keys.clear();
        result
    }

    /// Work after each top-level command: publish keyspace events, serve
    /// clients blocked on keys that became ready.
    fn after_command(&mut self, current: Option<&ClientState>) {
        if !self.ks.pending_events.is_empty() {
            let events = std::mem::take(&mut self.ks.pending_events);
            for ev in events {
                self.publish_key_event(&ev, current);
            }
        }
        if !self.ks.ready_keys.is_empty() {
            self.serve_blocked(current.map(|c| c.id));
        }
    }

    fn publish_key_event(&mut self, ev: &crate::keyspace::KeyEvent, current: Option<&ClientState>) {
        use crate::keyspace::notify;
        let f = self.ks.notify_flags;
        // The change it tells of is in the newest record, or an older one:
        // subscribers hear of it once the log has it, as readers of the key
        // would (and never of a change the log then refused).
        let after = if self.tracker.is_idle() {
            0
        } else {
            self.tracker.newest()
        };
        if f & notify::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{}__:", ev.db).into_bytes();
            ch.extend_from_slice(&ev.key);
            let ch = Bytes::from(ch);
            self.srv
                .pubsub
                .publish(&ch, &ev.event, &self.clients, current, after);
        }
        if f & notify::KEYEVENT != 0 {
            let mut ch = format!("__keyevent@{}__:", ev.db).into_bytes();
            ch.extend_from_slice(&ev.event);
            let ch = Bytes::from(ch);
            self.srv
                .pubsub
                .publish(&ch, &ev.key, &self.clients, current, after);
        }
    }

    /// The heart of command execution; see the module docs.
    fn dispatch(
        &mut self,
        client: &mut ClientState,
        argv: &[Bytes],
        out: &mut ReplyBuf,
        top_level: bool,
    ) -> Dispatched {
        let Some(spec) = command::lookup(&argv[0]) else {
            // As Redis: each argument cut to what is left of 128 bytes.
            let mut args = Vec::new();
            for a in argv.iter().skip(1) {
                if args.len() >= 128 {
                    break;
                }
                let room = 128 - args.len();
                args.push(b'\'');
                args.extend_from_slice(&a[..a.len().min(room)]);
                args.extend_from_slice(b"' ");
            }
            let msg = format!(
                "ERR unknown command '{}', with args beginning with: {}",
                truncate_lossy(&argv[0], 128),
                String::from_utf8_lossy(&args)
            );
            self.reject(client, out, None, &msg);
            return Dispatched::Done;
        };
        if !spec.arity_ok(argv.len()) {
            let msg = CmdError::WrongArity(spec.name.to_string()).to_string();
            self.reject(client, out, Some(spec), &msg);
            return Dispatched::Done;
        }
        // Before AUTH, as Redis checks protected commands first.
        if spec.name == "debug" && !self.debug_allowed(client) {
            self.reject(
                client,
                out,
                Some(spec),
                "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
            );
            return Dispatched::Done;
        }
        if !client.authenticated && spec.flags & flags::NO_AUTH == 0 {
            self.reject(client, out, Some(spec), "NOAUTH Authentication required.");
            return Dispatched::Done;
        }
        if client.in_pubsub_mode() && spec.flags & flags::PUBSUB_CONTEXT == 0 {
            // Redis names a known subcommand too (`pubsub|numsub`).
            let name = match spec.subcommand_of(argv) {
                Some(s) => format!("{}|{s}", spec.name),
                None => spec.name.to_string(),
            };
            let msg = format!(
                "ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            );
            self.reject(client, out, Some(spec), &msg);
            return Dispatched::Done;
        }
        if client.monitor && spec.flags & (flags::READONLY | flags::WRITE) != 0 {
            let msg = "ERR Replica can't interact with the keyspace";
            self.reject(client, out, Some(spec), msg);
            return Dispatched::Done;
        }
        // Not beside a busy script: evicting would write into its record.
        if self.srv.memory.max > 0 && !self.ks.applying && top_level && self.srv.busy.is_none() {
            let out_of_memory = !self.perform_evictions();
            // The evicted keys' invalidations for this client come before
            // its reply, as in Redis (which evicts before it runs the
            // command).
            self.inline_invalidations(client, out);
            // In MULTI, queueing takes memory too; EXEC and DISCARD go on.
            let refused = self.denies_oom(spec, client, argv)
                || (client.multi.is_some()
                    && !matches!(spec.name, "exec" | "discard" | "quit" | "reset"));
            if out_of_memory && refused {
                self.reject(client, out, Some(spec), crate::maxmemory::OOM_ERROR);
                return Dispatched::Done;
            }
            // Kept for the script's commands (EXEC's scripts included).
            if is_script_command(spec) || spec.name == "exec" {
                self.srv.script_oom = out_of_memory && !self.script_flags(spec, argv).allow_oom;
            }
            if spec.flags & flags::WRITE != 0 {
                let bytes: usize = argv.iter().map(|a| a.len()).sum();
                self.srv.memory.grew(bytes as u64);
            }
        }
        if self.srv.min_replicas_to_write > 0 && !self.ks.applying && top_level {
            let writes = spec.flags & flags::WRITE != 0
                || match spec.name {
                    // Flag-less scripts are checked command by command.
                    "eval" | "evalsha" | "fcall" => self.script_flags(spec, argv).declares_writes(),
                    "exec" => self.may_write(spec, client, argv),
                    _ => false,
                };
            if writes {
                self.reject(client, out, Some(spec), NOREPLICAS_ERROR);
                return Dispatched::Done;
            }
        }
        // A script is busy: only what may run beside it does (crate::busy).
        if let Some(b) = &self.srv.busy {
            if top_level && !crate::busy::allowed(spec, argv) {
                let msg = b.error();
                self.reject(client, out, Some(spec), msg);
                return Dispatched::Done;
            }
        }
        // Only a write bound for the log is limited (not with --in-memory).
        if spec.flags & flags::WRITE != 0 && self.ks.effects.capture && !self.ks.applying {
            let queued = client.multi.as_ref().map_or(0, |m| m.write_bytes);
            let bytes = queued + crate::effect::command_size_bound(argv);
            if bytes > crate::effect::MAX_WRITE_BYTES {
                let msg = format!(
                    "ERR write too large for the transaction log ({bytes} bytes; the limit is {})",
                    crate::effect::MAX_WRITE_BYTES
                );
                self.reject(client, out, Some(spec), &msg);
                return Dispatched::Done;
            }
            if let Some(m) = client.multi.as_mut() {
                m.write_bytes = bytes;
            }
        }
        if client.multi.is_some() && spec.flags & flags::MULTI_CONTROL == 0 {
            if spec.flags & flags::NO_MULTI != 0 {
                let msg = "ERR Command not allowed inside a transaction".to_string();
                self.reject(client, out, Some(spec), &msg);
                return Dispatched::Done;
            }
            if let Some(m) = client.multi.as_mut() {
                m.queued.push(argv.to_vec());
            }
            out.simple("QUEUED");
            return Dispatched::Done;
        }
        if top_level {
            client.last_cmd = spec.name;
            client.last_cmd_ms = self.ks.now_ms;
        }
        let done = self.call(spec, client, argv, out);
        // CONFIG SET maxmemory below what is used (or an EXEC of it) evicts
        // right after the command, as Redis' eviction timer does (its
        // `evicted` events came a command later).
        if matches!(spec.name, "config" | "exec")
            && self.srv.memory.excess() > 0
            && !self.ks.applying
        {
            self.perform_evictions();
            self.inline_invalidations(client, out);
        }
        done
    }

    /// Writes the invalidations of the changes so far into the reply stream
    /// of `client`, when its own go there (`Tracking::inline_for`).
    fn inline_invalidations(&mut self, client: &ClientState, out: &mut ReplyBuf) {
        if self.srv.tracking.inline_for == Some(client.id) {
            self.send_invalidations(Some(client));
            out.raw(&std::mem::take(&mut self.srv.tracking.inline));
        }
    }

    /// A command a Lua script runs (redis.call): as any other, inside the
    /// script's effect record.
    pub(crate) fn call_from_script(
        &mut self,
        spec: &'static CommandSpec,
        client: &mut ClientState,
        argv: &[Bytes],
        out: &mut ReplyBuf,
    ) {
        let _ = self.call(spec, client, argv, out);
    }

    /// Runs the handler with effect and stats bookkeeping.
    fn call(
        &mut self,
        spec: &'static CommandSpec,
        client: &mut ClientState,
        argv: &[Bytes],
        out: &mut ReplyBuf,
    ) -> Dispatched {
        // A nested call (EXEC's commands, a script's) reads the clock.
        let started = self.cmd_start.take().unwrap_or_else(Instant::now);
        let db = client.db;
        self.ks.begin_command();
        self.ks.effects.begin_record();
        self.ks.effects.begin_command();
        if self.ks.tracking_on && !client.in_script && is_script_command(spec) {
            self.srv.tracking.script_read = false;
        }
        // MONITOR shows a script before the commands it runs, as Redis does.
        if !self.srv.monitors.is_empty() && !self.ks.applying && is_script_command(spec) {
            self.srv
                .monitors
                .feed(client, client.db, argv, &self.clients);
        }
        let (res, block, close) = match spec.handler {
            Handler::Ctx(f) => {
                let mut ctx = Ctx {
                    ks: &mut self.ks,
                    srv: &mut self.srv,
                    clients: &mut self.clients,
                    client,
                    args: argv,
                    out,
                    block: None,
                    reply_later: None,
                    close: false,
                };
                let r = f(&mut ctx);
                let wait = match (ctx.block, ctx.reply_later) {
                    (Some(b), _) => Some(Dispatched::Blocked(b)),
                    (None, Some(rx)) => Some(Dispatched::ReplyLater(rx)),
                    (None, None) => None,
                };
                (r, wait, ctx.close)
            }
            Handler::Engine(f) => (f(self, client, argv, out), None, false),
        };
        let failed = res.is_err();
        if let Err(e) = res {
            let msg = e.to_string();
            out.error(&msg);
            if !matches!(e, CmdError::Counted(_)) {
                self.srv.stats.count_error(&msg);
            }
        }
        if self.ks.tracking_on {
            self.track_command(spec, &*client, argv);
        }
        if !self.ks.applying {
            let changed = self.ks.cmd_dirty > 0;
            self.ks.effects.finish_command(db, argv, changed);
        }
        let own = self.close_record().unwrap_or(0);
        let read = self.read_barrier(spec, argv, db);
        self.cmd_barrier = self.cmd_barrier.max(own).max(read);
        let ended = Instant::now();
        self.call_ended = Some(ended);
        let ns = u64::try_from(ended.duration_since(started).as_nanos()).unwrap_or(u64::MAX);
        let us = ns / 1000;
        let event = if spec.flags & flags::FAST != 0 {
            "fast-command"
        } else {
            "command"
        };
        let threshold = self.srv.latency_threshold_ms;
        self.srv.latency_events.add_if_needed(
            event,
            ns / 1_000_000,
            threshold,
            self.ks.now_ms.div_euclid(1000),
        );
        // A served blocked command was shown when it first ran; a script
        // before the commands it ran (below).
        if !self.srv.monitors.is_empty()
            && !self.ks.applying
            && !crate::monitor::is_admin(spec, argv)
            && self.srv.serving_key.is_none()
            && !is_script_command(spec)
        {
            self.srv
                .monitors
                .feed(client, client.db, argv, &self.clients);
        }
        if block.is_none() {
            let name = crate::stats::CommandName {
                name: spec.name,
                sub: spec.subcommand_of(argv),
            };
            self.srv.stats.count_call(name, ns, failed);
            // EXEC is not logged itself: the commands it ran are.
            // Neither are a script's commands: the EVAL is.
            if self.srv.slowlog.wants(us)
                && !self.ks.applying
                && spec.flags & flags::SKIP_SLOWLOG == 0
                && !client.in_script
            {
                let now_s = self.ks.now_ms.div_euclid(1000);
                self.srv
                    .slowlog
                    .push(argv, us, &client.addr, client.name.as_ref(), now_s);
            }
        }
        if let Some(wait) = block {
            return wait;
        }
        if close {
            return Dispatched::Close;
        }
        Dispatched::Done
    }

    /// CLIENT PAUSE: the pause's end when `argv` must wait for it. A command
    /// that fails its arity or AUTH check answers at once, as in Redis.
    fn pause_holds(&mut self, client: &ClientState, argv: &[Bytes]) -> Option<i64> {
        let active = self.srv.pause.active(self.ks.now_ms);
        self.ks.expire_paused = active.is_some();
        let (end, all) = active?;
        let spec = command::lookup(&argv[0])?;
        if !spec.arity_ok(argv.len()) || (!client.authenticated && spec.flags & flags::NO_AUTH == 0)
        {
            return None;
        }
        (all || self.may_write(spec, client, argv)).then_some(end)
    }

    /// Whether a command may change data or reach replicas (Redis' WRITE
    /// and MAY_REPLICATE flags, with scripts judged by their flags): what
    /// CLIENT PAUSE WRITE holds back.
    fn may_write(&self, spec: &CommandSpec, client: &ClientState, argv: &[Bytes]) -> bool {
        if spec.flags & flags::WRITE != 0 {
            return true;
        }
        match spec.name {
            "publish" | "spublish" | "pfcount" => true,
            "eval" | "evalsha" | "fcall" => self.script_flags(spec, argv).may_write(),
            "function" => argv.get(1).is_some_and(|sub| {
                ["load", "delete", "flush", "restore"]
                    .iter()
                    .any(|w| sub.eq_ignore_ascii_case(w.as_bytes()))
            }),
            "exec" => client.multi.as_ref().is_some_and(|m| {
                m.queued
                    .iter()
                    .any(|q| command::lookup(&q[0]).is_some_and(|s| self.may_write(s, client, q)))
            }),
            _ => false,
        }
    }

    /// Whether a command is refused while over maxmemory: Redis' DENYOOM
    /// commands, EXEC of any, and scripts whose flags do not say
    /// `allow-oom` or `no-writes` (scripts without flags are checked per
    /// command instead, see `script_oom`).
    fn denies_oom(&self, spec: &CommandSpec, client: &ClientState, argv: &[Bytes]) -> bool {
        if spec.flags & flags::DENYOOM != 0 {
            return true;
        }
        match spec.name {
            "eval" | "evalsha" | "fcall" => self.script_flags(spec, argv).denies_oom(),
            "exec" => client.multi.as_ref().is_some_and(|m| {
                m.queued
                    .iter()
                    .any(|q| command::lookup(&q[0]).is_some_and(|s| self.denies_oom(s, client, q)))
            }),
            "function" => argv.get(1).is_some_and(|sub| {
                sub.eq_ignore_ascii_case(b"load") || sub.eq_ignore_ascii_case(b"restore")
            }),
            _ => false,
        }
    }

    /// A script command's flags: its shebang's, or its function's.
    fn script_flags(&self, spec: &CommandSpec, argv: &[Bytes]) -> crate::script::ScriptFlags {
        let Some(arg) = argv.get(1) else {
            return Default::default();
        };
        match spec.name {
            "eval" => crate::script::body_flags(arg),
            "evalsha" => self.srv.scripting.flags(arg),
            "fcall" => self
                .srv
                .functions
                .function(&String::from_utf8_lossy(arg))
                .map(|(_, f)| f.script_flags())
                .unwrap_or_default(),
            _ => Default::default(),
        }
    }

    /// Redis' performEvictions: while over maxmemory, evicts keys by the
    /// policy (each a DEL effect, an `evicted` event). False when still over
    /// with nothing more to evict (or `noeviction`): commands that may grow
    /// the data set are refused then.
    fn perform_evictions(&mut self) -> bool {
        let excess = self.srv.memory.excess();
        if excess == 0 {
            return true;
        }
        // CLIENT PAUSE stops evictions as it stops expiry.
        if self.srv.memory.policy == crate::maxmemory::Policy::NoEviction
            || self.srv.pause.active(unix_ms()).is_some()
        {
            return false;
        }
        self.ks.effects.begin_record();
        let mut freed = 0u64;
        while freed < excess {
            let Some((db, key)) = self.srv.memory.victim(&self.ks) else {
                break;
            };
            let size = self.ks.dbs[db]
                .value(&key[..])
                .map_or(0, |v| key.len() + v.heap_size() + 56);
            self.ks.remove_as_is(db, &key);
            self.ks.modified(db, &key);
            self.ks
                .effects
                .push_command(db, vec![Bytes::from_static(b"DEL"), key.clone()]);
            self.ks
                .notify(db, crate::keyspace::notify::EVICTED, "evicted", &key);
            self.srv.memory.evicted_keys += 1;
            self.srv.memory.freed(size as u64);
            freed += size as u64;
        }
        self.close_record();
        freed >= excess
    }

    /// CLIENT TRACKING after a command: invalidations for what it changed
    /// (first, so a key it read again stays tracked), then the keys it read.
    fn track_command(&mut self, spec: &'static CommandSpec, client: &ClientState, argv: &[Bytes]) {
        if client.in_script {
            // The caller tracks the script's declared keys, and the changes
            // are sent after the script, to the caller's own connection.
            self.srv.tracking.script_read |= spec.flags & flags::READONLY != 0;
            return;
        }
        self.send_invalidations(Some(client));
        let reads = if is_script_command(spec) {
            std::mem::take(&mut self.srv.tracking.script_read)
        } else {
            // The _RO script commands are READONLY but track as scripts.
            spec.flags & flags::READONLY != 0 && spec.flags & flags::PUBSUB == 0
        };
        // MEMORY USAGE reads its key (Redis' memory|usage is readonly).
        let memory_usage = command::server::memory_usage_key(argv);
        if (reads || memory_usage.is_some()) && self.srv.tracking.remembers(client.id) {
            let keys = match memory_usage {
                Some(key) => Ok(vec![key]),
                None => spec.key_indexes(argv),
            };
            if let Ok(idx) = keys {
                self.srv
                    .tracking
                    .remember(client.id, idx.iter().filter_map(|&i| argv.get(i)));
            }
        }
    }

    /// Invalidation messages for the keys changed since the last call.
    fn send_invalidations(&mut self, current: Option<&ClientState>) {
        let changed = std::mem::take(&mut self.ks.tracking_changes);
        let flushed = std::mem::take(&mut self.ks.tracking_flushed);
        if !changed.is_empty() || flushed {
            self.srv.tracking.invalidate(
                changed,
                flushed,
                current.map(|c| c.id),
                current,
                &self.clients,
            );
            self.ks.tracking_on = self.srv.tracking.is_on();
        }
    }

    /// After a batch of commands (or an expire cycle): changes not yet
    /// invalidated, BCAST messages, and the tracking table's size limit.
    fn tracking_after_batch(&mut self, current: Option<&ClientState>) {
        self.send_invalidations(current);
        self.srv.tracking.broadcast(current, &self.clients);
        let max = usize::try_from(self.srv.config.get_i64("tracking-table-max-keys")).unwrap_or(0);
        self.srv.tracking.limit(max, current, &self.clients);
        self.ks.tracking_on = self.srv.tracking.is_on();
    }

    /// maxmemory's recount of the data set, on the 100 ms tick (only with a
    /// limit set: it samples the data set).
    pub fn recount_memory(&mut self) {
        if self.srv.memory.max > 0 {
            self.srv.memory.recount(&self.ks);
        }
    }

    /// Runs [`Self::tracking_after_batch`] outside a client's batch (the
    /// expire cycle, CONFIG SET tracking-table-max-keys on the 100 ms tick).
    pub fn tracking_tick(&mut self) {
        if self.ks.tracking_on {
            self.tracking_after_batch(None);
        }
    }

    /// Applies one startup configuration directive (`config_file`) as
    /// CONFIG SET would; a parameter CONFIG SET refuses to change (one
    /// fixed at startup) is accepted when memlog acts on it as it starts
    /// (`tcp-backlog`, `pidfile`, ...) or when it names the value it has.
    pub fn configure(&mut self, name: &str, value: &str) -> Result<(), String> {
        if self.srv.config.get(name) == Some(value) {
            return Ok(());
        }
        if crate::config::is_fixed(name) {
            return self
                .srv
                .config
                .set_at_startup(name, value)
                .map_err(|e| e.to_string());
        }
        let out = self.run_internal(&[
            Bytes::from_static(b"CONFIG"),
            Bytes::from_static(b"SET"),
            Bytes::copy_from_slice(name.as_bytes()),
            Bytes::copy_from_slice(value.as_bytes()),
        ]);
        match out.buf.strip_prefix(b"-") {
            Some(e) => Err(String::from_utf8_lossy(e).trim_end().to_string()),
            None => Ok(()),
        }
    }

    /// Shuts the server down as SHUTDOWN does, for SIGTERM or SIGINT: with
    /// the flags of `shutdown-on-sigterm` / `shutdown-on-sigint` (`save`,
    /// `nosave`; `now` and `force` change nothing here: there are no
    /// replicas to wait for, and nothing to save that the log lacks).
    pub fn shutdown_on_signal(&mut self, parameter: &str) {
        let flags = self.srv.config.get(parameter).unwrap_or("default");
        let mut argv = vec![Bytes::from_static(b"SHUTDOWN")];
        for flag in ["save", "nosave"] {
            if flags.split(' ').any(|f| f == flag) {
                argv.push(Bytes::from_static(flag.as_bytes()));
            }
        }
        self.run_internal(&argv);
    }

    /// Runs a command of the server's own (startup configuration, a
    /// signal) as an authenticated client of no connection; its reply.
    fn run_internal(&mut self, argv: &[Bytes]) -> ReplyBuf {
        let mut client = ClientState::new(0, None);
        client.authenticated = true;
        let mut out = ReplyBuf::new(false);
        self.dispatch(&mut client, argv, &mut out, false);
        out
    }

    /// Runs `f` on the engine, surviving a panic in it (a bug a client's
    /// input reached). The panicking command may have changed the data set
    /// halfway, and its record was left open, which kept every later
    /// record from closing: acknowledged writes never reached the log. Its
    /// record is thrown away, and with a log the gate closes at once and
    /// the data set is rebuilt from what the log committed (the records
    /// finished before are still appended first), as after a failed append.
    /// Returns `None` after a panic.
    pub fn guarded<R>(&mut self, f: impl FnOnce(&mut Engine) -> R) -> Option<R> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(r) => Some(r),
            Err(payload) => {
                if payload.is::<crate::script::StoppedAfterWriting>() {
                    tracing::warn!(
                        "a script ran past lua-time-limit after writing: it is stopped, the data set is rebuilt from the log"
                    );
                } else {
                    tracing::error!(
                        "a command panicked: its changes are thrown away, the data set is rebuilt from the log"
                    );
                }
                crate::busy::end(self);
                self.ks.effects.abandon_record();
                self.ks.applying = false;
                // Nothing the thrown-away command did may act later: wake a
                // blocked client, or tell subscribers of a change.
                self.ks.ready_keys.clear();
                self.ks.pending_events.clear();
                self.srv.serving_key = None;
                self.srv.script_oom = false;
                self.cmd_barrier = 0;
                // Only a serving server rebuilds: one fenced stays fenced,
                // one already recovering rebuilds from the log anyway.
                if let Some(g) = self.srv.gate.as_mut() {
                    if g.state == crate::durable::GateState::Serving {
                        g.state = crate::durable::GateState::Recovering;
                        if let Some(rebuilds) = &self.srv.rebuild_requests {
                            let (reply, _) = oneshot::channel();
                            let _ = rebuilds.send(reply);
                        }
                    }
                }
                None
            }
        }
    }

    /// `enable-debug-command`: DEBUG can freeze the server (DEBUG SLEEP) or
    /// make it rebuild its data set (DEBUG PANIC, RELOAD), so by default
    /// only loopback clients may run it (Redis' `local`; its default is
    /// `no`). Internal clients (replay) have no address and may.
    fn debug_allowed(&self, client: &ClientState) -> bool {
        match self
            .srv
            .config
            .get("enable-debug-command")
            .unwrap_or("local")
        {
            "yes" => true,
            // Exactly Redis' islocalClient: 127.0.0.1 or ::1 (an IPv4
            // client of a dual-stack listener comes as ::ffff:127.0.0.1).
            "local" => {
                client.addr.is_empty()
                    || client.addr.parse::<std::net::SocketAddr>().is_ok_and(|a| {
                        let ip = a.ip().to_canonical();
                        ip == std::net::IpAddr::from([127, 0, 0, 1])
                            || ip == std::net::Ipv6Addr::LOCALHOST
                    })
            }
            _ => false,
        }
    }

    /// `timeout`: once a second, tells each client idle for longer than it
    /// to close, as Redis' clientsCron does. Blocked clients (a blocking
    /// command, CLIENT PAUSE), subscribers and monitors stay, as in Redis;
    /// the connection itself keeps a client it still owes a reply.
    /// Redis' clients cron for query buffers, run every tick of the
    /// server's cron (10 a second): a client whose buffer has more than
    /// 4 KB free and that is idle, or whose buffer is over 32 KB and more
    /// than twice its peak since the last look, is told to resize it
    /// (`Push::ResizeQueryBuffer`); the peak starts again from what the
    /// buffer holds now. As in Redis, every client is looked at each tick
    /// while there are few (up to 50), else a tenth of them in turn.
    pub fn resize_query_buffers(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        const TICKS_PER_ROUND: u64 = 10;
        let tick = self.srv.query_buffers_tick;
        self.srv.query_buffers_tick = tick.wrapping_add(1);
        let all = self.clients.len() <= 5 * TICKS_PER_ROUND as usize;
        let now = crate::keyspace::unix_ms();
        let idle_ms = crate::client::QUERY_BUFFER_IDLE.as_millis() as i64;
        for c in self.clients.values() {
            if !all && c.id % TICKS_PER_ROUND != tick % TICKS_PER_ROUND {
                continue;
            }
            let Some(b) = &c.buffers else { continue };
            let (len, free) = (b.query.load(Relaxed), b.query_free.load(Relaxed));
            let peak = b.query_peak.swap(len, Relaxed).max(len);
            let size = len + free;
            let idle = now - c.last_cmd_ms > idle_ms;
            let oversized =
                size > crate::client::QUERY_BUFFER_RESIZE_ABOVE as u64 && size / 2 > peak;
            if free > 4096 && (idle || oversized) {
                c.push(Push::ResizeQueryBuffer(peak as usize));
            }
        }
    }

    pub fn close_idle_clients(&mut self) {
        let now = crate::keyspace::unix_ms();
        if now - self.srv.idle_checked_ms < 1000 {
            return;
        }
        self.srv.idle_checked_ms = now;
        let secs = self.srv.config.get_i64("timeout");
        if secs <= 0 {
            return;
        }
        let idle = Duration::from_secs(secs as u64);
        for c in self.clients.values() {
            if now - c.last_cmd_ms > secs.saturating_mul(1000)
                && c.blocked_on.is_none()
                && !c.subscribes()
                && !c.monitor
                && !self.srv.pause.held.contains(&c.id)
            {
                c.push(Push::Idle(idle));
            }
        }
    }

    fn reject(
        &mut self,
        client: &mut ClientState,
        out: &mut ReplyBuf,
        spec: Option<&CommandSpec>,
        msg: &str,
    ) {
        let exec_abort;
        let msg = if spec.is_some_and(|s| s.name == "exec") {
            // Redis' execCommandAbort: a rejected EXEC discards the
            // transaction (in MULTI or not) and says why.
            client.multi = None;
            let watched = std::mem::take(&mut client.watched);
            self.ks.unwatch_all(client.id, &watched);
            let why = msg.strip_prefix("ERR ").unwrap_or(msg);
            exec_abort = format!("EXECABORT Transaction discarded because of: {why}");
            // Monitors saw MULTI: show that the transaction is over.
            if !self.srv.monitors.is_empty() {
                let argv = [Bytes::from_static(b"exec")];
                self.srv
                    .monitors
                    .feed(client, client.db, &argv, &self.clients);
            }
            &exec_abort
        } else {
            if let Some(m) = client.multi.as_mut() {
                m.aborted = true;
            }
            msg
        };
        out.error(msg);
        self.srv.stats.count_error(msg);
        if let Some(s) = spec {
            self.srv.stats.count_rejected(crate::stats::CommandName {
                name: s.name,
                sub: None,
            });
        }
    }

    /// Runs the queued commands of MULTI atomically, as one effect record.
    pub fn exec_transaction(&mut self, client: &mut ClientState, out: &mut ReplyBuf) -> CmdResult {
        let Some(multi) = client.multi.take() else {
            return Err(CmdError::err("EXEC without MULTI"));
        };
        let watched = std::mem::take(&mut client.watched);
        let cas_failed = self.ks.dirty_cas.contains(&client.id)
            || self.ks.watched_key_expired(client.id, &watched);
        self.ks.unwatch_all(client.id, &watched);
        if multi.aborted {
            return Err(CmdError::coded(
                "EXECABORT",
                "Transaction discarded because of previous errors.",
            ));
        }
        if cas_failed {
            out.null_array();
            return Ok(());
        }
        out.array(multi.queued.len());
        client.in_exec = true;
        for argv in &multi.queued {
            out.resp3 = client.resp3;
            match command::lookup(&argv[0]) {
                Some(spec) => {
                    // Blocking commands cannot block inside EXEC (in_exec).
                    let _ = self.call(spec, client, argv, out);
                }
                None => out.error("ERR unknown command"),
            }
        }
        client.in_exec = false;
        // The queued commands recorded their own effects; EXEC adds none.
        self.ks.effects.suppress();
        Ok(())
    }

    fn register_block(
        &mut self,
        client: &mut ClientState,
        argv: Vec<Bytes>,
        req: BlockRequest,
    ) -> BlockedWait {
        let (tx, rx) = oneshot::channel();
        let db = client.db;
        for k in &req.keys {
            let q = self.srv.blocked.entry((db, k.clone())).or_default();
            if !q.contains(&client.id) {
                q.push_back(client.id);
                *self.ks.blocked_keys.entry((db, k.clone())).or_insert(0) += 1;
            }
        }
        client.blocked_on = Some(String::from_utf8_lossy(&argv[0]).to_ascii_lowercase());
        let argv = req.retry.unwrap_or(argv);
        self.srv.stats.blocked_total += 1;
        self.srv.blocked_clients.insert(
            client.id,
            BlockedClient {
                db,
                argv,
                keys: req.keys,
                on_timeout: req.on_timeout,
                reply_tx: tx,
            },
        );
        BlockedWait {
            reply: rx,
            deadline: req.timeout.map(|t| Instant::now() + t),
            on_close: None,
        }
    }

    fn unregister_block(&mut self, id: ClientId) -> Option<BlockedClient> {
        let b = self.srv.blocked_clients.remove(&id)?;
        for k in &b.keys {
            let key = (b.db, k.clone());
            if let Some(q) = self.srv.blocked.get_mut(&key) {
                q.retain(|c| *c != id);
                if q.is_empty() {
                    self.srv.blocked.remove(&key);
                }
            }
            if let Some(n) = self.ks.blocked_keys.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    self.ks.blocked_keys.remove(&key);
                }
            }
        }
        if let Some(c) = self.clients.get_mut(&id) {
            c.blocked_on = None;
        }
        Some(b)
    }

    /// Ends a client's wait (disconnect). Returns the timeout reply, or
    /// `None` if it was not blocked (already served).
    pub fn cancel_block(&mut self, id: ClientId) -> Option<TimeoutReply> {
        self.unregister_block(id).map(|b| b.on_timeout)
    }

    /// A blocked client's deadline passed: ends its wait. `None` if it was
    /// not blocked (already served). Its timeout reply says the keys it
    /// waited on are still empty, which is data like any read's: it waits
    /// behind their unacknowledged changes (`barrier`), and when the log
    /// cannot vouch for the data set (lease expired, recovering, fenced)
    /// the gate's error goes instead.
    pub fn time_out_block(&mut self, id: ClientId) -> Option<BlockTimedOut> {
        let b = self.unregister_block(id)?;
        if let Some(error) = self.gate_error() {
            return Some(BlockTimedOut::Error(error));
        }
        let barrier = self.blocked_keys_barrier(b.db, &b.keys);
        Some(BlockTimedOut::Reply(b.on_timeout, barrier))
    }

    /// The barrier a reply about `keys` of `db` waits behind.
    fn blocked_keys_barrier(&self, db: usize, keys: &[Elem]) -> u64 {
        if self.tracker.is_idle() {
            return 0;
        }
        self.tracker
            .barrier(keys.iter().map(|k| (db as u32, &k[..])))
    }

    /// CLIENT UNBLOCK: ends a wait with the timeout reply or an error.
    pub fn unblock_client(&mut self, id: ClientId, with_error: bool) -> bool {
        let Some(b) = self.unregister_block(id) else {
            return false;
        };
        let resp3 = self.clients.get(&id).is_some_and(|c| c.resp3);
        let mut out = ReplyBuf::new(resp3);
        let seq = if with_error {
            out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
            0
        } else {
            b.on_timeout.write(&mut out);
            // As a timeout's reply (see `time_out_block`).
            self.blocked_keys_barrier(b.db, &b.keys)
        };
        let _ = b.reply_tx.send(ParkedReply {
            bytes: out.buf,
            seq,
        });
        true
    }

    /// Re-runs the commands of clients blocked on keys that became ready,
    /// first blocked first served, until no key is ready.
    fn serve_blocked(&mut self, current: Option<ClientId>) {
        let mut rounds = 0;
        while !self.ks.ready_keys.is_empty() && rounds < 1_000_000 {
            rounds += 1;
            let ready = std::mem::take(&mut self.ks.ready_keys);
            let mut seen = std::collections::HashSet::new();
            for key in ready {
                if !seen.insert(key.clone()) {
                    continue;
                }
                while let Some(&id) = self.srv.blocked.get(&key).and_then(|q| q.front()) {
                    if Some(id) == current {
                        break;
                    }
                    self.srv.serving_key = Some(key.clone());
                    let served = self.serve_one(id);
                    self.srv.serving_key = None;
                    if !served {
                        break;
                    }
                }
            }
        }
    }

    /// Retries one blocked client's command; true if it was answered.
    fn serve_one(&mut self, id: ClientId) -> bool {
        let Some(mut client) = self.clients.remove(&id) else {
            self.unregister_block(id);
            return true;
        };
        let Some(b) = self.srv.blocked_clients.get(&id) else {
            self.clients.insert(id, client);
            return false;
        };
        let argv = b.argv.clone();
        let saved_db = client.db;
        client.db = b.db;
        let mut out = ReplyBuf::new(client.resp3);
        let outer_barrier = std::mem::take(&mut self.cmd_barrier);
        let spec = command::lookup(&argv[0]);
        let served = match spec {
            Some(spec) => !matches!(
                self.call(spec, &mut client, &argv, &mut out),
                Dispatched::Blocked(_)
            ),
            None => true,
        };
        client.db = saved_db;
        let barrier = std::mem::replace(&mut self.cmd_barrier, outer_barrier);
        if !served {
            // Still nothing to take: move it behind? No: Redis keeps order;
            // the key is not ready for it, so stop serving this key.
            self.clients.insert(id, client);
            return false;
        }
        self.clients.insert(id, client);
        if let Some(b) = self.unregister_block(id) {
            let _ = b.reply_tx.send(ParkedReply {
                bytes: out.buf,
                seq: barrier,
            });
        }
        // Serving may have produced events (e.g. BLMOVE's push).
        if !self.ks.pending_events.is_empty() {
            let events = std::mem::take(&mut self.ks.pending_events);
            for ev in events {
                self.publish_key_event(&ev, None);
            }
        }
        true
    }

    /// Takes a snapshot when one of the `save` points is due, or when the
    /// log has grown as `auto-aof-rewrite-*` allow (durable mode only). The
    /// default `save ""` never does: a snapshot is captured under the
    /// engine lock. The log's growth does, as Redis rewrites its AOF: by
    /// default once it took 64 MB and as much as the last snapshot holds,
    /// which bounds both the log's disk and a restart's replay.
    pub fn snapshot_if_due(&mut self) {
        if self.srv.snapshot_requests.is_none() || self.srv.stats.snapshots_pending > 0 {
            return;
        }
        // Not while the data set is being rebuilt (it is loaded a chunk per
        // lock, and this runs between chunks), nor while the log cannot
        // vouch for it: a capture of a half-loaded data set, as of a
        // sequence number acknowledged before the rebuild, would become
        // the newest snapshot and trim the log of everything it lacks.
        if self.gate_error().is_some() {
            return;
        }
        use crate::command::server::{log_rewrite_due, save_point_due, snapshot_retry_waits};
        let now = crate::keyspace::unix_ms();
        let stats = &self.srv.stats;
        if snapshot_retry_waits(stats.snapshot_failed, now, self.srv.last_snapshot_try_ms) {
            return;
        }
        let due = std::mem::take(&mut self.srv.snapshot_scheduled)
            || save_point_due(
                self.srv.config.get("save").unwrap_or(""),
                self.ks.dirty,
                now,
                self.srv.lastsave_ms,
            )
            || log_rewrite_due(
                self.srv.config.get_i64("auto-aof-rewrite-percentage"),
                self.srv.config.get_i64("auto-aof-rewrite-min-size"),
                stats.log_bytes_since_snapshot,
                stats.snapshot_bytes,
            );
        if due {
            crate::command::server::request_snapshot(&mut self.ks, &mut self.srv, false);
        }
    }

    /// One run of the active expire cycle: samples keys with a TTL and
    /// deletes the expired ones, within `budget`. Returns keys deleted.
    pub fn active_expire_cycle(&mut self, budget: Duration) -> usize {
        // CLIENT PAUSE stops expiry too: keys only look expired meanwhile.
        let paused = self.srv.pause.active(unix_ms()).is_some();
        self.ks.expire_paused = paused;
        if !self.srv.active_expire || self.gate_error().is_some() || paused {
            return 0;
        }
        use rand::Rng;
        let started = Instant::now();
        self.ks.now_ms = unix_ms();
        self.ks.effects.begin_record();
        let mut deleted = 0;
        let mut rng = rand::thread_rng();
        for db in 0..self.ks.dbs.len() {
            loop {
                let n = self.ks.dbs[db].expires.len();
                if n == 0 {
                    break;
                }
                let sample = n.min(20);
                let mut expired = Vec::new();
                for _ in 0..sample {
                    let i = rng.gen_range(0..n);
                    if let Some((k, &at)) = self.ks.dbs[db].expires.get_index(i) {
                        if at <= self.ks.now_ms {
                            expired.push(k.clone());
                        }
                    }
                }
                expired.sort();
                expired.dedup();
                for k in &expired {
                    if self.ks.dbs[db].expires.contains_key(k) {
                        self.ks.delete_expired(db, k);
                        deleted += 1;
                    }
                }
                if expired.len() * 4 < sample || started.elapsed() > budget {
                    break;
                }
            }
            if started.elapsed() > budget {
                break;
            }
        }
        self.close_record();
        self.after_command(None);
        if !self.ks.effects.records().is_empty() {
            self.records_ready.notify_one();
        }
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let threshold = self.srv.latency_threshold_ms;
        self.srv.latency_events.add_if_needed(
            "expire-cycle",
            ms,
            threshold,
            self.ks.now_ms.div_euclid(1000),
        );
        deleted
    }
}

/// Outcome of dispatching one command.
#[derive(Debug)]
enum Dispatched {
    Done,
    Blocked(BlockRequest),
    /// The reply comes from elsewhere (see [`Ctx::reply_later`]).
    ReplyLater(oneshot::Receiver<ParkedReply>),
    Close,
}

/// An effect that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("effect record from a newer engine (version {0})")]
    NewerEngine(u32),
    #[error("effect failed to apply: {0}")]
    Failed(String),
}

/// CLIENT REPLY OFF/SKIP: drop the reply just written.
fn apply_reply_mode(client: &mut ClientState, out: &mut ReplyBuf, start: usize) {
    match client.reply_mode {
        ReplyMode::On | ReplyMode::Skip => {}
        ReplyMode::Off => out.buf.truncate(start),
        ReplyMode::SkipThis => {
            out.buf.truncate(start);
            client.reply_mode = ReplyMode::On;
        }
    }
}

fn truncate_lossy(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(&b[..b.len().min(max)]).into_owned()
}

/// Redis' reply to a write when `min-replicas-to-write` is not met.
pub const NOREPLICAS_ERROR: &str = "NOREPLICAS Not enough good replicas to write.";

/// EVAL & co and FCALL & co: the commands that run a script.
fn is_script_command(spec: &CommandSpec) -> bool {
    matches!(
        spec.name,
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro"
    )
}

/// The key a logged command changes in a database other than its own, which
/// its key specs (all in the command's database) miss: MOVE's key in the
/// target database, COPY ... DB's destination. Readers there must wait for
/// it like readers of any pending key.
fn key_in_other_db(argv: &[Bytes]) -> Option<(u32, &[u8])> {
    let db_at = |i: usize| std::str::from_utf8(argv.get(i)?).ok()?.parse::<u32>().ok();
    let name = argv.first()?;
    if name.eq_ignore_ascii_case(b"MOVE") {
        return Some((db_at(2)?, argv.get(1)?));
    }
    if name.eq_ignore_ascii_case(b"COPY") {
        let at = 3 + argv
            .get(3..)?
            .iter()
            .position(|a| a.eq_ignore_ascii_case(b"DB"))?;
        return Some((db_at(at + 1)?, argv.get(2)?));
    }
    None
}

/// Where the hazard tracker keeps the function libraries, as a key in no
/// database: FUNCTION LOAD, DELETE, FLUSH and RESTORE change it, and
/// FUNCTION LIST/DUMP/STATS and FCALL(_RO) read it, so none of those shows
/// a library the log has not acknowledged.
const FUNCTION_LIBRARIES: (u32, &[u8]) = (u32::MAX, b"");

/// SORT's BY and GET patterns read keys that its key specs do not name (any
/// key the pattern makes), so its reply waits as a whole-keyspace read's.
fn reads_by_pattern(spec: &CommandSpec, argv: &[Bytes]) -> bool {
    matches!(spec.name, "sort" | "sort_ro")
        && argv
            .iter()
            .skip(2)
            .any(|a| a.eq_ignore_ascii_case(b"BY") || a.eq_ignore_ascii_case(b"GET"))
}
