//! Per-connection state the engine needs while executing a client's
//! commands: selected database, protocol, MULTI queue, WATCHed keys,
//! subscriptions, and the channel that carries pushes (pub/sub messages,
//! CLIENT KILL) to the connection task.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::keyspace::{ClientId, Elem};
use crate::output_limit::{OutputLimits, PushQueue};

/// Something the engine sends to a connection outside of a reply.
#[derive(Debug)]
pub enum Push {
    /// A pub/sub message: `message`/`pmessage` with its fields.
    Message {
        pattern: Option<Bytes>,
        channel: Bytes,
        payload: Bytes,
        /// The record a keyspace notification tells of: it goes out once
        /// the log has acknowledged it (0: at once).
        after: u64,
    },
    /// Already-encoded push bytes (subscribe confirmations while
    /// CLIENT REPLY is OFF: pushes are not replies and still go out).
    Raw(Vec<u8>),
    /// A sharded pub/sub message (`smessage`, SPUBLISH).
    ShardMessage { channel: Bytes, payload: Bytes },
    /// CLIENT KILL: close the connection.
    Kill,
    /// A script that kept the connection busy ended: take what its hook
    /// left (crate::busy::ConnLink).
    Wake,
    /// `timeout`: the client ran no command for this long. The connection
    /// closes if it has read nothing and owes the client nothing (no reply
    /// waiting for the log, none unwritten) for as long.
    Idle(std::time::Duration),
    /// Resize the query buffer as Redis' clients cron does (see
    /// [`QUERY_BUFFER_IDLE`]): free it if the client has sent nothing for
    /// that long, else shrink it to this many bytes (its recent peak) if it
    /// is more than twice that and over 32 KB.
    ResizeQueryBuffer(usize),
}

/// A client that sent nothing for longer has its query buffer freed
/// (Redis: idle more than 2 seconds).
pub const QUERY_BUFFER_IDLE: std::time::Duration = std::time::Duration::from_secs(2);
/// A query buffer above this may shrink to twice its recent peak
/// (Redis' PROTO_RESIZE_THRESHOLD).
pub const QUERY_BUFFER_RESIZE_ABOVE: usize = 32 * 1024;

impl Push {
    /// The record this push waits for (see `Push::Message::after`).
    pub fn after(&self) -> u64 {
        match self {
            Push::Message { after, .. } => *after,
            _ => 0,
        }
    }

    /// About what it takes in the connection's output buffer, for
    /// `client-output-buffer-limit`.
    pub fn size(&self) -> u64 {
        let n = match self {
            Push::Message {
                pattern,
                channel,
                payload,
                ..
            } => 32 + pattern.as_ref().map_or(0, |p| p.len()) + channel.len() + payload.len(),
            Push::ShardMessage { channel, payload } => 32 + channel.len() + payload.len(),
            Push::Raw(b) => b.len(),
            Push::Kill | Push::Idle(_) | Push::Wake | Push::ResizeQueryBuffer(_) => 0,
        };
        n as u64
    }
}

/// What CLIENT LIST shows of a connection's buffers (`qbuf`,
/// `qbuf-free`, `obl`, `tot-mem`), kept up to date by its task: relaxed
/// stores when it reads and before it waits, nothing per command.
#[derive(Debug, Default)]
pub struct ConnBuffers {
    /// The socket's file descriptor.
    pub fd: i32,
    /// Bytes read and not yet run (while a batch runs: the batch's too, as
    /// Redis' query buffer holds the command it runs).
    pub query: std::sync::atomic::AtomicU64,
    /// Room left in the query buffer.
    pub query_free: std::sync::atomic::AtomicU64,
    /// The most the query buffer held since the clients cron last looked.
    pub query_peak: std::sync::atomic::AtomicU64,
    /// Reply bytes not yet written (parked for the log, or unflushed).
    pub output: std::sync::atomic::AtomicU64,
}

impl ConnBuffers {
    pub fn new(fd: i32) -> Self {
        Self {
            fd,
            ..Self::default()
        }
    }

    /// The query buffer's length and room.
    pub fn set_query(&self, len: usize, capacity: usize) {
        use std::sync::atomic::Ordering::Relaxed;
        self.query.store(len as u64, Relaxed);
        self.query_free
            .store(capacity.saturating_sub(len) as u64, Relaxed);
        self.query_peak.fetch_max(len as u64, Relaxed);
    }
}

/// MULTI state: the queued commands and whether queueing saw an error.
#[derive(Debug, Default)]
pub struct MultiState {
    pub queued: Vec<Vec<Bytes>>,
    pub aborted: bool,
    /// Bound on the effect record of the queued writes (see
    /// [`crate::effect::MAX_WRITE_BYTES`]).
    pub write_bytes: usize,
}

/// CLIENT REPLY mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
    /// The current command's reply is skipped (SKIP took effect).
    SkipThis,
}

/// A connected client as the engine sees it.
#[derive(Debug)]
pub struct ClientState {
    pub id: ClientId,
    pub db: usize,
    pub resp3: bool,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub authenticated: bool,
    pub multi: Option<MultiState>,
    pub in_exec: bool,
    pub watched: Vec<(usize, Elem)>,
    pub channels: HashSet<Bytes>,
    pub patterns: HashSet<Bytes>,
    /// SSUBSCRIBE's shard channels.
    pub shard_channels: HashSet<Bytes>,
    pub reply_mode: ReplyMode,
    pub no_evict: bool,
    /// Connected through the Unix domain socket (`unixsocket`): flag `U`.
    pub unix_socket: bool,
    pub addr: String,
    pub laddr: String,
    pub created_ms: i64,
    pub last_cmd_ms: i64,
    pub last_cmd: &'static str,
    /// Set while blocked (BLPOP & co): the command it waits in.
    pub blocked_on: Option<String>,
    pub killed: bool,
    /// In MONITOR mode: sees every command, may not touch the keyspace.
    pub monitor: bool,
    /// The client a Lua script runs its commands as.
    pub in_script: bool,
    /// Where pushes go; `None` for internal clients (effect replay).
    pub push_tx: Option<mpsc::UnboundedSender<Push>>,
    /// What the pushes not yet taken by the connection amount to, against
    /// `client-output-buffer-limit`.
    pub push_queue: Arc<PushQueue>,
    /// What the connection shares with a busy script's hook
    /// (crate::busy); none for internal clients.
    pub link: Option<Arc<crate::busy::ConnLink>>,
    /// Its buffers, for CLIENT LIST; none for internal clients.
    pub buffers: Option<Arc<ConnBuffers>>,
}

impl ClientState {
    pub fn new(id: ClientId, push_tx: Option<mpsc::UnboundedSender<Push>>) -> Self {
        let now = crate::keyspace::unix_ms();
        Self {
            id,
            db: 0,
            resp3: false,
            name: None,
            lib_name: None,
            lib_ver: None,
            authenticated: false,
            multi: None,
            in_exec: false,
            watched: Vec::new(),
            channels: HashSet::new(),
            patterns: HashSet::new(),
            shard_channels: HashSet::new(),
            reply_mode: ReplyMode::On,
            no_evict: false,
            unix_socket: false,
            addr: String::new(),
            laddr: String::new(),
            created_ms: now,
            last_cmd_ms: now,
            last_cmd: "NULL",
            blocked_on: None,
            killed: false,
            monitor: false,
            in_script: false,
            push_tx,
            push_queue: Arc::new(PushQueue::new(Arc::new(OutputLimits::default()))),
            link: None,
            buffers: None,
        }
    }

    /// Number of channel and pattern subscriptions (what (P)SUBSCRIBE's
    /// confirmations count; shard channels are counted apart).
    pub fn subscription_count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// Its subscriptions in `ns`.
    pub fn subscriptions_mut(&mut self, ns: crate::pubsub::Namespace) -> &mut HashSet<Bytes> {
        match ns {
            crate::pubsub::Namespace::Channels => &mut self.channels,
            crate::pubsub::Namespace::Patterns => &mut self.patterns,
            crate::pubsub::Namespace::Shard => &mut self.shard_channels,
        }
    }

    /// Whether it subscribes to anything, shard channels included.
    pub fn subscribes(&self) -> bool {
        self.subscription_count() + self.shard_channels.len() > 0
    }

    /// In RESP2, a subscribed client may only run (P|S)SUBSCRIBE & co.
    pub fn in_pubsub_mode(&self) -> bool {
        !self.resp3 && self.subscribes()
    }

    /// Sends a push to the connection; false if it is gone, or past its
    /// output buffer limit (it is then being closed).
    pub fn push(&self, p: Push) -> bool {
        let Some(tx) = &self.push_tx else {
            return false;
        };
        if matches!(p, Push::Kill) {
            self.push_queue.kill();
        }
        if !matches!(
            p,
            Push::Kill | Push::Idle(_) | Push::Wake | Push::ResizeQueryBuffer(_)
        ) && !self
            .push_queue
            .admit(p.size(), self.monitor, crate::keyspace::unix_ms())
        {
            return false;
        }
        tx.send(p).is_ok()
    }
}
