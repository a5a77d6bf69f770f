//! One client connection: read bytes, parse commands, execute them in
//! batches on the engine, write replies in order, deliver pub/sub pushes,
//! and wait (without holding the engine) while a blocking command blocks.
//!
//! Replies that depend on changes the log has not yet acknowledged are
//! *parked*: their bytes stay in the output buffer, and nothing after them is
//! written, until [`LogProgress`] says their sequence number is durable. The
//! connection keeps reading and executing pipelined commands meanwhile. If
//! the log fails those records, the parked replies are replaced by errors.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::client::{QUERY_BUFFER_IDLE, QUERY_BUFFER_RESIZE_ABOVE};
use crate::client_stream::ClientStream;
use bytes::{Bytes, BytesMut};
use std::os::fd::{AsRawFd, BorrowedFd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::client::Push;
use crate::engine::{BatchOutcome, BlockTimedOut, BlockedWait};
use crate::keyspace::ClientId;
use crate::resp::{ParseLimits, ReplyBuf, RequestParser};
use crate::server::SharedEngine;
use crate::tracker::LogProgress;

const READ_CHUNK: usize = 16 * 1024;
/// How long a connection waiting out a lapse of the lease sleeps at most
/// before it checks the lease again.
const LEASE_WAIT_SLICE: Duration = Duration::from_millis(10);
/// Past this many bytes of parked replies, stop reading new commands
/// (back-pressure on a client that pipelines faster than the log commits).
const MAX_PARKED_BYTES: usize = 64 * 1024 * 1024;
/// Past this many parked replies, too: a reply of a few bytes can stand for
/// a write of megabytes queued for the log, and with CLIENT REPLY OFF the
/// parked replies hold no bytes at all (the client's writes then queued
/// without bound).
const MAX_PARKED_REPLIES: usize = 65_536;
/// Past this many bytes of records queued for the log (all connections'
/// together, not yet taken into an append), a connection with replies
/// parked reads no more commands until the log catches up: the engine
/// executes at once, the log takes its time, and the bounds above are per
/// connection. One that waits for nothing still reads (its next command
/// may be a read), at most one batch past the bound.
const MAX_LOG_BACKLOG_BYTES: usize = 64 * 1024 * 1024;

/// The error a client gets for a write whose log append failed: retryable,
/// and the write may or may not have been applied (docs/architecture.md).
pub const LOG_FAILED_REPLY: &[u8] =
    b"-TRYAGAIN the transaction log did not acknowledge the write; it may or may not have been applied\r\n";

fn encode_push(out: &mut ReplyBuf, p: Push) -> bool {
    match p {
        Push::Message {
            pattern: None,
            channel,
            payload,
            ..
        } => {
            out.push(3);
            out.bulk(b"message");
            out.bulk(&channel);
            out.bulk(&payload);
            true
        }
        Push::Message {
            pattern: Some(pat),
            channel,
            payload,
            ..
        } => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(&pat);
            out.bulk(&channel);
            out.bulk(&payload);
            true
        }
        Push::ShardMessage { channel, payload } => {
            out.push(3);
            out.bulk(b"smessage");
            out.bulk(&channel);
            out.bulk(&payload);
            true
        }
        Push::Raw(bytes) => {
            out.raw(&bytes);
            true
        }
        Push::Kill => false,
        // Taken by `Connection::take_push` before it gets here.
        Push::Idle(_) | Push::Wake | Push::ResizeQueryBuffer(_) => true,
    }
}

fn output_limit_reached() -> std::io::Error {
    std::io::Error::other("client output buffer limit reached")
}

/// Registers a connection the accept loop (or a busy script's hook) took,
/// before its task first runs: a script that goes busy meanwhile serves it
/// too (crate::busy). A client is named as Redis names it in CLIENT LIST:
/// `ip:port`, or on the Unix domain socket (`unix`) the socket's path and
/// `:0`, flag `U`. Returns its client id and its link to a busy script's
/// hook.
pub fn register(
    engine: &mut crate::engine::Engine,
    socket: BorrowedFd<'_>,
    unix: bool,
) -> std::io::Result<(ClientId, Option<Arc<crate::busy::ConnLink>>)> {
    let (addr, laddr) = if unix {
        let path = engine.srv.config.get("unixsocket").unwrap_or_default();
        (format!("{path}:0"), format!("{path}:0"))
    } else {
        let s = socket2::SockRef::from(&socket);
        s.set_tcp_nodelay(true)?;
        let name = |a: socket2::SockAddr| a.as_socket().map(|a| a.to_string());
        (
            name(s.peer_addr()?).unwrap_or_default(),
            name(s.local_addr()?).unwrap_or_default(),
        )
    };
    let id = engine.register_client(None, addr, laddr);
    if let Some(c) = engine.clients.get_mut(&id) {
        c.unix_socket = unix;
    }
    let link = attach(engine, id, socket.as_raw_fd());
    Ok((id, link))
}

/// Gives registered client `id`, on socket `fd`, what its task shares
/// with the engine: its buffers for CLIENT LIST, and its link to a busy
/// script's hook where the hook serves clients (returned).
pub(crate) fn attach(
    engine: &mut crate::engine::Engine,
    id: ClientId,
    fd: std::os::fd::RawFd,
) -> Option<Arc<crate::busy::ConnLink>> {
    let link = engine
        .srv
        .serve_while_busy
        .then(|| Arc::new(crate::busy::ConnLink::new(fd)));
    let c = engine.clients.get_mut(&id)?;
    c.link = link.clone();
    c.buffers = Some(Arc::new(crate::client::ConnBuffers::new(fd)));
    link
}

/// Serves registered client `id` on `stream` until it disconnects, QUITs
/// or is killed, going on from what a busy script's hook left of it, if
/// anything (crate::busy).
pub async fn serve_client(
    stream: ClientStream,
    id: ClientId,
    engine: SharedEngine,
) -> std::io::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (mut limits, progress, push_queue, link, buffers) = {
        let mut e = engine.lock();
        let (queue, link, buffers) = match e.clients.get_mut(&id) {
            Some(c) => {
                c.push_tx = Some(tx);
                (
                    Some(c.push_queue.clone()),
                    c.link.clone(),
                    c.buffers.clone(),
                )
            }
            None => (None, None, None),
        };
        (
            parse_limits(&e, id),
            e.progress.clone(),
            queue,
            link,
            buffers,
        )
    };
    // A script that went busy before this task first ran (or accepted
    // this connection) woke no one.
    let stash = link.as_ref().and_then(|l| l.take_stash());
    // Its socket closes as this ends: no busy script may use it after.
    let _gone = LinkGone(link.clone());
    let (Some(push_queue), Some(buffers)) = (push_queue, buffers) else {
        return Ok(());
    };
    let mut conn = Connection {
        stream,
        engine: engine.clone(),
        id,
        inbuf: BytesMut::with_capacity(READ_CHUNK),
        inbuf_allocated: READ_CHUNK,
        out: ReplyBuf::new(false),
        parked: VecDeque::new(),
        log_backlog: false,
        batch_parked: Vec::new(),
        progress,
        push_queue,
        last_io: Instant::now(),
        link,
        buffers,
    };
    let r = match stash {
        Some(stash) => match conn.take_stash(stash).await {
            Ok(true) => conn.serve(&mut rx, &mut limits).await,
            other => other.map(|_| ()),
        },
        None => conn.serve(&mut rx, &mut limits).await,
    };
    // Replies still parked when the client goes away are simply dropped; the
    // writes themselves stay in the log's hands.
    engine.lock().unregister_client(id);
    r
}

/// Marks a connection's link gone when its task ends, however it ends.
struct LinkGone(Option<Arc<crate::busy::ConnLink>>);

impl Drop for LinkGone {
    fn drop(&mut self) {
        if let Some(link) = &self.0 {
            link.set_gone();
        }
    }
}

pub(crate) fn parse_limits(e: &crate::engine::Engine, id: ClientId) -> ParseLimits {
    ParseLimits {
        proto_max_bulk_len: e.srv.config.get_i64("proto-max-bulk-len").max(0) as u64,
        unauthenticated: e.auth_required(id),
        max_query_bytes: e.srv.config.get_i64("client-query-buffer-limit").max(0) as u64,
    }
}

/// Bytes `start..end` of the output buffer, held until the log has
/// acknowledged record `seq`.
#[derive(Debug, Clone, Copy)]
struct Parked {
    start: usize,
    end: usize,
    seq: u64,
    /// A push (a keyspace notification) rather than a reply: dropped, not
    /// answered with an error, if its record fails.
    push: bool,
}

struct Connection {
    stream: ClientStream,
    engine: SharedEngine,
    id: ClientId,
    inbuf: BytesMut,
    /// About how much memory the query buffer holds: the most it could
    /// take since it was last resized. Its capacity shrinks as commands
    /// are split off its front while the allocation stays.
    inbuf_allocated: usize,
    out: ReplyBuf,
    /// Parked replies (and pushes) in `out`, in order.
    parked: VecDeque<Parked>,
    /// More than [`MAX_LOG_BACKLOG_BYTES`] were queued for the log when
    /// this connection last looked.
    log_backlog: bool,
    batch_parked: Vec<(usize, usize, u64)>,
    progress: Arc<LogProgress>,
    /// Pushes sent but not yet taken; past its limit the connection closes.
    push_queue: Arc<crate::output_limit::PushQueue>,
    /// When the client last sent bytes or was sent some (`timeout`).
    last_io: Instant,
    /// What a busy script's hook shares with this task (crate::busy).
    link: Option<Arc<crate::busy::ConnLink>>,
    /// What CLIENT LIST shows of its buffers.
    buffers: Arc<crate::client::ConnBuffers>,
}

/// Reads what the client sent into `inbuf`; 0 at its end. A connection
/// whose buffer was freed while it was idle (`resize_query_buffer`) holds
/// none until input comes: then it reads the first bytes on the stack and
/// takes a buffer for them (`read_buf` would take one before waiting).
async fn read_input(stream: &mut ClientStream, inbuf: &mut BytesMut) -> std::io::Result<usize> {
    if inbuf.capacity() != 0 {
        return stream.read_buf(inbuf).await;
    }
    let mut first = [0u8; 512];
    let n = stream.read(&mut first).await?;
    inbuf.reserve(READ_CHUNK);
    inbuf.extend_from_slice(&first[..n]);
    Ok(n)
}

/// PUBLISH or SPUBLISH (see [`Connection::serve`]).
fn is_publish(cmd: &[Bytes]) -> bool {
    cmd.first().is_some_and(|name| {
        name.eq_ignore_ascii_case(b"publish") || name.eq_ignore_ascii_case(b"spublish")
    })
}

impl Connection {
    async fn serve(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<Push>,
        limits: &mut ParseLimits,
    ) -> std::io::Result<()> {
        let mut parser = RequestParser::new();
        let mut pending: VecDeque<Vec<Bytes>> = VecDeque::new();
        loop {
            // Parse everything complete in the buffer.
            let mut protocol_error = None;
            // Stopped after one command before AUTH, with bytes left to parse.
            let mut parse_more = false;
            loop {
                match parser.parse(&mut self.inbuf, limits) {
                    Ok(Some(cmd)) => {
                        if !cmd.is_empty() {
                            pending.push_back(cmd);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        protocol_error = Some(e);
                        break;
                    }
                }
                // Before AUTH the limits are tighter: run what we have first.
                if limits.unauthenticated && !pending.is_empty() {
                    parse_more = !self.inbuf.is_empty();
                    break;
                }
            }
            if pending.iter().any(|cmd| is_publish(cmd)) {
                // A subscriber's hang-up that came before this PUBLISH on the
                // wire may be queued behind this connection in the same turn
                // of the event loop (tokio registers both directions, so this
                // socket can sit earlier in epoll's ready list): let every
                // ready connection run first, as Redis would have closed that
                // subscriber before reading the PUBLISH.
                tokio::task::yield_now().await;
            }
            while !pending.is_empty() {
                let outcome = {
                    let mut e = self.engine.lock();
                    let (out, parked) = (&mut self.out, &mut self.batch_parked);
                    let o = e.guarded(|e| e.execute_batch(self.id, &mut pending, out, parked));
                    *limits = parse_limits(&e, self.id);
                    self.log_backlog = e.ks.effects.records_bytes() > MAX_LOG_BACKLOG_BYTES;
                    o
                };
                // A command panicked: the client learns it as if the server
                // had crashed (what it ran before may or may not be applied).
                let Some(outcome) = outcome else {
                    return Err(std::io::Error::other("a command panicked"));
                };
                self.parked
                    .extend(self.batch_parked.drain(..).map(|(start, end, seq)| Parked {
                        start,
                        end,
                        seq,
                        push: false,
                    }));
                match outcome {
                    BatchOutcome::Done => {}
                    BatchOutcome::Close => {
                        self.flush_all().await?;
                        return Ok(());
                    }
                    BatchOutcome::AwaitLease(until) => {
                        self.flush_released().await?;
                        // Renewals wake `progress`; the short slices cover
                        // one that came before this registered.
                        let progress = self.progress.clone();
                        let slice = Instant::now() + LEASE_WAIT_SLICE;
                        tokio::select! {
                            _ = progress.changed() => {}
                            _ = tokio::time::sleep_until(slice.min(until).into()) => {}
                        }
                    }
                    BatchOutcome::Paused(mut changed, until) => {
                        self.flush_released().await?;
                        tokio::select! {
                            _ = changed.changed() => {}
                            _ = tokio::time::sleep_until(until.into()) => {}
                        }
                    }
                    BatchOutcome::Blocked(wait) => {
                        self.flush_all().await?;
                        if !self.wait_blocked(wait, rx).await? {
                            return Ok(());
                        }
                    }
                }
            }
            if let Some(e) = protocol_error {
                self.out.error(&format!("ERR {e}"));
                self.flush_all().await?;
                return Ok(());
            }
            // Parse the rest under the limits the command just run left (an
            // AUTH lifts them; commands pipelined behind it waited for more
            // bytes to come). Only then: bytes of a command not yet whole
            // wait for the rest below (looping on them froze the server's
            // one thread).
            if parse_more {
                continue;
            }
            // Replies go out after the other ready connections have run their
            // commands, as Redis writes them before it sleeps rather than per
            // command: a pipelining client then finds its next batch read and
            // its replies waiting instead of being woken for each write (GET
            // at pipeline 16: +30 % here). Parked replies wait for the log
            // anyway.
            if self.parked.is_empty() && !self.out.buf.is_empty() {
                tokio::task::yield_now().await;
            }
            self.flush_released().await?;
            // (None at all if freed while idle: `read_input` takes one.)
            let capacity = self.inbuf.capacity();
            if capacity != 0 && capacity - self.inbuf.len() < 1024 {
                self.inbuf.reserve(READ_CHUNK);
            }
            let mut read = None;
            let waiting_for_log = !self.parked.is_empty();
            if self.log_backlog {
                // Looked again at every turn: the log client takes records
                // without telling the connections.
                self.log_backlog =
                    self.engine.lock().ks.effects.records_bytes() > MAX_LOG_BACKLOG_BYTES;
            }
            let may_read = self.out.buf.len() < MAX_PARKED_BYTES
                && self.parked.len() < MAX_PARKED_REPLIES
                && !(self.log_backlog && waiting_for_log);
            let progress = self.progress.clone();
            let log_changed = progress.changed();
            tokio::pin!(log_changed);
            if waiting_for_log {
                // Registered before re-checking, so no acknowledgement is missed.
                log_changed.as_mut().enable();
                if self.releasable() {
                    continue;
                }
            }
            // Everything read was run: the buffer's whole allocation is
            // free again where no argument still holds part of it (Redis'
            // query buffer stays one allocation; this is what CLIENT LIST
            // shows). Never allocates: an idle connection has none.
            if self.inbuf.is_empty() && self.inbuf.capacity() < READ_CHUNK {
                let _ = self.inbuf.try_reclaim(READ_CHUNK);
            }
            self.note_query_buffer();
            self.buffers.output.store(
                self.out.buf.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
            // Nothing owed to the client and nothing half read: a busy
            // script's hook may answer what it sends meanwhile.
            if let Some(link) = &self.link {
                link.set_idle(
                    self.parked.is_empty()
                        && self.out.buf.is_empty()
                        && self.inbuf.is_empty()
                        && may_read,
                );
            }
            tokio::select! {
                n = read_input(&mut self.stream, &mut self.inbuf), if may_read => {
                    read = Some(n?);
                }
                p = rx.recv() => {
                    let Some(p) = p else { return Ok(()) };
                    if !self.take_push(p) {
                        return Ok(());
                    }
                    while let Ok(p) = rx.try_recv() {
                        if !self.take_push(p) {
                            self.flush_released().await?;
                            return Ok(());
                        }
                    }
                }
                _ = self.push_queue.overflow.notified() => return Ok(()),
                _ = &mut log_changed, if waiting_for_log => {}
            }
            match read {
                Some(0) => {
                    // Replies a busy script's hook could not write yet
                    // still go out (the client may only have shut its
                    // writing half).
                    self.take_busy_stash().await?;
                    return Ok(());
                }
                Some(_) => {
                    self.last_io = Instant::now();
                    self.note_query_buffer();
                }
                None => {}
            }
            if !self.take_busy_stash().await? {
                return Ok(());
            }
        }
    }

    /// Goes on from where a busy script's hook left this connection
    /// (crate::busy): its unwritten replies go out first, the bytes it
    /// read and did not run come before any read since. False: close (the
    /// client went away, QUIT or broke the protocol meanwhile).
    async fn take_busy_stash(&mut self) -> std::io::Result<bool> {
        let Some(link) = &self.link else {
            return Ok(true);
        };
        link.set_idle(false);
        match link.take_stash() {
            Some(stash) => self.take_stash(stash).await,
            None => Ok(true),
        }
    }

    /// See [`Self::take_busy_stash`].
    async fn take_stash(&mut self, stash: crate::busy::Stash) -> std::io::Result<bool> {
        if !stash.unwritten.is_empty() {
            self.stream.write_all(&stash.unwritten).await?;
        }
        if stash.closed {
            return Ok(false);
        }
        if !stash.input.is_empty() {
            let mut input = stash.input;
            input.extend_from_slice(&self.inbuf);
            self.inbuf = input;
        }
        Ok(true)
    }

    /// Whether the first parked reply can be released or failed now.
    fn releasable(&self) -> bool {
        match self.parked.front() {
            Some(p) => self.progress.settled(p.seq),
            None => false,
        }
    }

    /// Waits for a blocked command's reply; false if the connection must close.
    async fn wait_blocked(
        &mut self,
        mut wait: BlockedWait,
        rx: &mut mpsc::UnboundedReceiver<Push>,
    ) -> std::io::Result<bool> {
        let deadline = wait.deadline.map(tokio::time::Instant::from_std);
        let mut held_pushes = Vec::new();
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = &mut wait.reply => {
                    match r {
                        Ok(reply) => self.push_reply(reply),
                        Err(_) => {
                            if let Some(e) = wait.on_close {
                                self.out.error(e);
                            }
                        }
                    }
                    break;
                }
                _ = sleep => {
                    let timed_out = self.engine.lock().time_out_block(self.id);
                    match timed_out {
                        Some(BlockTimedOut::Reply(t, seq)) => {
                            let mut out = ReplyBuf::new(self.out.resp3);
                            t.write(&mut out);
                            self.push_reply(crate::engine::ParkedReply { bytes: out.buf, seq });
                        }
                        Some(BlockTimedOut::Error(e)) => self.out.error(&e),
                        // Served at the same moment: the reply is in the channel.
                        None => {
                            if let Ok(reply) = wait.reply.try_recv() {
                                self.push_reply(reply);
                            }
                        }
                    }
                    break;
                }
                n = self.stream.read_buf(&mut self.inbuf) => {
                    if n? == 0 {
                        return Ok(false);
                    }
                    self.last_io = Instant::now();
                }
                p = rx.recv() => {
                    match p {
                        None | Some(Push::Kill) => return Ok(false),
                        Some(p) => held_pushes.push(p),
                    }
                }
                _ = self.push_queue.overflow.notified() => return Ok(false),
            }
        }
        for p in held_pushes {
            self.take_push(p);
        }
        Ok(true)
    }

    fn push_reply(&mut self, reply: crate::engine::ParkedReply) {
        let start = self.out.buf.len();
        self.out.raw(&reply.bytes);
        self.park_from(start, reply.seq, false);
    }

    /// Encodes a push into the output; false if the connection must close.
    /// A keyspace notification waits for the record it tells of, as a
    /// reply to a read of its key would.
    fn take_push(&mut self, p: Push) -> bool {
        if let Push::Idle(timeout) = p {
            return !(self.parked.is_empty()
                && self.out.buf.is_empty()
                && self.last_io.elapsed() >= timeout);
        }
        if let Push::ResizeQueryBuffer(peak) = p {
            self.resize_query_buffer(peak);
            return true;
        }
        self.push_queue.taken(p.size());
        let after = p.after();
        let start = self.out.buf.len();
        if !encode_push(&mut self.out, p) {
            return false;
        }
        self.park_from(start, after, true);
        true
    }

    /// Frees the query buffer (and an empty reply buffer) of a client idle
    /// for [`QUERY_BUFFER_IDLE`], or shrinks one over [`QUERY_BUFFER_RESIZE_ABOVE`] and more than
    /// twice its recent `peak` to that (never below what it holds), as
    /// Redis' clients cron does: a connection holds no read buffer while
    /// idle (the next read takes one), and one big command does not leave
    /// a big buffer behind.
    fn resize_query_buffer(&mut self, peak: usize) {
        let (len, capacity) = (self.inbuf.len(), self.inbuf_allocated);
        let idle = self.last_io.elapsed() > QUERY_BUFFER_IDLE;
        if idle && self.out.buf.is_empty() {
            // The reply buffer too, as Redis shrinks an idle client's: it
            // kept the capacity of the biggest replies written.
            self.out.buf = Vec::new();
        }
        let keep = if idle {
            len
        } else if capacity > QUERY_BUFFER_RESIZE_ABOVE && capacity / 2 > peak {
            len.max(peak)
        } else {
            return;
        };
        if keep >= capacity {
            return;
        }
        let mut resized = BytesMut::with_capacity(keep);
        resized.extend_from_slice(&self.inbuf);
        self.inbuf = resized;
        self.inbuf_allocated = self.inbuf.capacity();
        self.note_query_buffer();
    }

    /// Shows the query buffer in CLIENT LIST (and to the cron above): what
    /// it holds and its room, counted against its allocation.
    fn note_query_buffer(&mut self) {
        self.inbuf_allocated = self.inbuf_allocated.max(self.inbuf.capacity());
        self.buffers
            .set_query(self.inbuf.len(), self.inbuf_allocated);
    }

    /// Parks the output from `start` on until record `seq` is acknowledged
    /// (if it is not yet).
    fn park_from(&mut self, start: usize, seq: u64, push: bool) {
        if seq > self.progress.acked() || self.progress.is_failed(seq) {
            self.parked.push_back(Parked {
                start,
                end: self.out.buf.len(),
                seq,
                push,
            });
        }
    }

    /// Replaces parked replies whose records failed with the retryable error
    /// (and drops pushes that told of them).
    fn fail_parked(&mut self) {
        if !self.parked.iter().any(|p| self.progress.is_failed(p.seq)) {
            return;
        }
        let old = std::mem::take(&mut self.out.buf);
        let mut new = Vec::with_capacity(old.len());
        let mut at = 0;
        let mut kept = VecDeque::new();
        for &p in &self.parked {
            new.extend_from_slice(&old[at..p.start]);
            if !self.progress.is_failed(p.seq) {
                let start = new.len();
                new.extend_from_slice(&old[p.start..p.end]);
                kept.push_back(Parked {
                    start,
                    end: new.len(),
                    ..p
                });
            } else if !p.push {
                new.extend_from_slice(LOG_FAILED_REPLY);
            }
            at = p.end;
        }
        new.extend_from_slice(&old[at..]);
        self.out.buf = new;
        self.parked = kept;
    }

    /// Writes every reply that is not waiting for the log.
    async fn flush_released(&mut self) -> std::io::Result<()> {
        self.fail_parked();
        let acked = self.progress.acked();
        let mut limit = self.out.buf.len();
        while let Some(&p) = self.parked.front() {
            // A range can fail after fail_parked looked: never release it.
            if p.seq <= acked && !self.progress.is_failed(p.seq) {
                self.parked.pop_front();
            } else {
                limit = p.start;
                break;
            }
        }
        if limit == 0 {
            return Ok(());
        }
        if self.push_queue.must_close() {
            return Err(output_limit_reached());
        }
        // A subscriber that stops reading blocks this write: its output
        // buffer limit must still close it.
        tokio::select! {
            r = self.stream.write_all(&self.out.buf[..limit]) => r?,
            _ = self.push_queue.overflow.notified() => return Err(output_limit_reached()),
        }
        self.out.buf.drain(..limit);
        self.last_io = Instant::now();
        for p in self.parked.iter_mut() {
            p.start -= limit;
            p.end -= limit;
        }
        if self.out.buf.is_empty() && self.out.buf.capacity() > 1 << 20 {
            // Give back memory after a huge reply.
            self.out.buf.shrink_to(64 * 1024);
        }
        Ok(())
    }

    /// Writes everything, waiting for the log where replies are parked.
    async fn flush_all(&mut self) -> std::io::Result<()> {
        loop {
            let progress = self.progress.clone();
            let changed = progress.changed();
            tokio::pin!(changed);
            changed.as_mut().enable();
            self.flush_released().await?;
            if self.parked.is_empty() {
                return Ok(());
            }
            changed.await;
        }
    }
}
