//! Serving other clients while a script runs long, as Redis does: past
//! `busy-reply-threshold` (`lua-time-limit`) every other client's command
//! gets `-BUSY`, except the few that may run beside a script (AUTH, HELLO,
//! MULTI, ..., SCRIPT KILL, FUNCTION KILL, FUNCTION STATS, SHUTDOWN
//! NOSAVE).
//!
//! A script runs on the runtime's one thread holding the engine, so no
//! connection task runs until it ends. The script's Lua hook therefore
//! serves the others itself ([`serve`]): it reads the sockets of the
//! connections that were idle when the script went busy (nothing parked,
//! unwritten or half read: a `-BUSY` must never overtake a reply still
//! waiting for the log), runs what they sent through the engine's own
//! checks (`Engine::execute_while_busy`, which answers BUSY), and writes
//! the replies. When the script ends ([`end`]), whatever a connection's
//! socket gave the hook and the hook could not yet write goes back to its
//! task ([`ConnLink`]), which goes on from there.
//!
//! Nothing here is on the write path: BUSY replies vouch for no data, and
//! the commands allowed change none (SHUTDOWN NOSAVE ends the process as
//! kill -9 would: every acknowledged write is in the log). Only with a
//! current-thread runtime (`--io-threads 1`, the default): with more
//! threads a script that runs past the limit without writing is stopped
//! instead (crate::script).

use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use crate::client::Push;
use crate::client_stream::StdClientStream;
use crate::engine::Engine;
use crate::keyspace::ClientId;
use crate::resp::{ReplyBuf, RequestParser};

pub const BUSY_EVAL: &str =
    "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.";
pub const BUSY_FUNCTION: &str =
    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE.";
pub const UNKILLABLE: &str = "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.";
/// What a killed script raises (Redis' words, for functions too).
pub const KILLED: &str = "Script killed by user with SCRIPT KILL...";

/// The most one connection's unread commands and unwritten replies may
/// hold while the hook serves it; past it the hook leaves it until the
/// script ends (a client that pipelines without reading its BUSY replies
/// must not grow the server's memory).
const MAX_HELD: usize = 1 << 20;
/// Read at a time from one socket.
const READ_CHUNK: usize = 16 * 1024;

/// What a connection task shares with the hook, from its start.
#[derive(Debug)]
pub struct ConnLink {
    fd: RawFd,
    /// The task waits for input with nothing parked, unwritten or half
    /// read: the hook may serve it.
    idle: AtomicBool,
    /// What the hook leaves the task when the script ends.
    stash: parking_lot::Mutex<Option<Stash>>,
    /// `stash` holds something: the task looks at every wake-up, the lock
    /// only then.
    stashed: AtomicBool,
    /// The task has ended: `fd` may be closed, or reused by another file.
    gone: AtomicBool,
}

/// A connection's bytes the hook took and did not finish with.
#[derive(Debug, Default)]
pub struct Stash {
    /// Read from the socket and not yet run (a command not yet whole).
    pub input: BytesMut,
    /// Replies not yet written to the socket.
    pub unwritten: Vec<u8>,
    /// The client went away, QUIT, or broke the protocol: close.
    pub closed: bool,
}

impl ConnLink {
    /// A new connection's: idle, as it has read nothing and owes nothing.
    pub fn new(fd: RawFd) -> Self {
        Self {
            fd,
            idle: AtomicBool::new(true),
            stash: parking_lot::Mutex::new(None),
            stashed: AtomicBool::new(false),
            gone: AtomicBool::new(false),
        }
    }

    /// Set by the task before it waits, cleared when it wakes.
    pub fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// Set by the task as it ends, before its socket closes.
    pub fn set_gone(&self) {
        self.gone.store(true, Ordering::Relaxed);
    }

    /// What the hook left, once the script has ended.
    pub fn take_stash(&self) -> Option<Stash> {
        if !self.stashed.load(Ordering::Acquire) {
            return None;
        }
        self.stashed.store(false, Ordering::Relaxed);
        self.stash.lock().take()
    }
}

/// A connection the hook accepted: its task starts once the script ends.
#[derive(Debug)]
pub struct Adopted {
    pub stream: StdClientStream,
    pub id: ClientId,
}

/// Marks a listening socket's epoll events (clients' carry their id).
const LISTENER: u64 = 1 << 63;

/// One connection the hook serves.
struct Served {
    /// Accepted by the hook (no task of its own yet).
    accepted: Option<StdClientStream>,
    link: Arc<ConnLink>,
    parser: RequestParser,
    held: Stash,
    /// Still read from (not past `MAX_HELD`, not closed).
    reading: bool,
}

impl Served {
    fn new(link: Arc<ConnLink>, accepted: Option<StdClientStream>) -> Self {
        Self {
            accepted,
            link,
            parser: RequestParser::new(),
            held: Stash::default(),
            reading: true,
        }
    }
}

/// The script that went busy, and the connections served meanwhile.
pub struct BusyScript {
    pub info: ScriptInfo,
    /// It has written: it cannot be killed, only undone (SHUTDOWN NOSAVE,
    /// `written-script-time-limit`).
    pub wrote: bool,
    /// SCRIPT KILL / FUNCTION KILL asked for it.
    pub killed: bool,
    /// SHUTDOWN NOSAVE asked for it.
    pub exit: bool,
    epoll: Option<OwnedFd>,
    served: HashMap<ClientId, Served>,
}

impl std::fmt::Debug for BusyScript {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusyScript")
            .field("name", &self.info.name)
            .field("served", &self.served.len())
            .field("killed", &self.killed)
            .finish_non_exhaustive()
    }
}

impl BusyScript {
    /// The BUSY error for this script.
    pub fn error(&self) -> &'static str {
        if self.info.eval {
            BUSY_EVAL
        } else {
            BUSY_FUNCTION
        }
    }
}

/// What the script's hook knows of it.
#[derive(Debug)]
pub struct ScriptInfo {
    /// EVAL (SCRIPT KILL stops it) or FCALL (FUNCTION KILL does).
    pub eval: bool,
    /// The function's name (FUNCTION STATS).
    pub name: String,
    /// The command that runs it (FUNCTION STATS).
    pub command: Vec<Bytes>,
    pub started: Instant,
    /// Libraries and functions (FUNCTION STATS: they are out of the engine
    /// while a function runs).
    pub libraries: (usize, usize),
}

/// Whether `argv` may run while a script is busy (Redis' CMD_ALLOW_BUSY,
/// which memlog has per command, and the subcommands that have it).
pub fn allowed(spec: &crate::command::CommandSpec, argv: &[Bytes]) -> bool {
    if spec.flags & crate::command::flags::ALLOW_BUSY != 0 {
        return true;
    }
    match (spec.name, spec.subcommand_of(argv)) {
        ("script", Some(sub)) => sub == "kill",
        ("function", Some(sub)) => sub == "kill" || sub == "stats",
        _ => false,
    }
}

/// Called by the script's hook once it runs past the threshold: marks the
/// script busy (the first time), serves the idle connections, and says
/// whether the script was killed. SHUTDOWN NOSAVE ends the process here.
pub fn serve(engine: &mut Engine, wrote: bool, info: impl FnOnce() -> ScriptInfo) -> bool {
    if engine.srv.busy.is_none() {
        start(engine, info());
    }
    let Some(busy) = engine.srv.busy.as_mut() else {
        return false;
    };
    busy.wrote = wrote;
    let ready = busy
        .epoll
        .as_ref()
        .map_or_else(Vec::new, |ep| ready(ep.as_raw_fd()));
    for id in ready {
        if id & LISTENER != 0 {
            let listening = engine.srv.listening();
            if let Some(&(fd, unix)) = listening.get((id & !LISTENER) as usize) {
                accept(engine, fd, unix);
            }
        } else {
            read_and_run(engine, id);
        }
    }
    let Some(busy) = engine.srv.busy.as_mut() else {
        return false;
    };
    for s in busy.served.values_mut() {
        write_held(s);
    }
    if busy.exit {
        tracing::warn!("SHUTDOWN NOSAVE during a busy script: exiting now");
        // As a shutdown does (the guards of the pid file and the Unix
        // socket's file will not run).
        for file in ["pidfile", "unixsocket"] {
            if let Some(path) = engine.srv.config.get(file).filter(|p| !p.is_empty()) {
                let path = crate::config_file::in_dir(&engine.srv.data_dir, path);
                let _ = std::fs::remove_file(path);
            }
        }
        std::process::exit(0);
    }
    busy.killed
}

fn start(engine: &mut Engine, info: ScriptInfo) {
    tracing::warn!(
        script = %info.name,
        "Slow script detected: still in execution after {} milliseconds. You can try killing the script using the {} command.",
        info.started.elapsed().as_millis(),
        if info.eval { "SCRIPT KILL" } else { "FUNCTION KILL" }
    );
    // SAFETY: a plain system call; the descriptor is owned right away.
    let epoll = unsafe {
        let fd = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd))
    };
    let mut served = HashMap::new();
    if let Some(ep) = &epoll {
        for (id, c) in &engine.clients {
            let Some(link) = &c.link else { continue };
            // Not one with pushes its task has not taken yet (a message
            // published before the script must reach it before a -BUSY),
            // nor one that has not taken what the last busy script left.
            let serve = link.idle.load(Ordering::Relaxed)
                && !link.gone.load(Ordering::Relaxed)
                && !link.stashed.load(Ordering::Acquire)
                && c.push_queue.queued() == 0
                && !c.push_queue.must_close();
            if !serve {
                continue;
            }
            if watch(ep, link.fd, *id) {
                served.insert(*id, Served::new(link.clone(), None));
            }
        }
        // New connections too: an operator's SCRIPT KILL comes on one.
        for (i, (fd, _)) in engine.srv.listening().into_iter().enumerate() {
            watch(ep, fd, LISTENER | i as u64);
        }
    }
    engine.srv.busy = Some(BusyScript {
        info,
        wrote: false,
        killed: false,
        exit: false,
        epoll,
        served,
    });
}

/// Has `epoll` report input on `fd` as `data`; false if it cannot.
fn watch(epoll: &OwnedFd, fd: RawFd, data: u64) -> bool {
    let mut ev = libc::epoll_event {
        events: libc::EPOLLIN as u32,
        u64: data,
    };
    // SAFETY: both descriptors are open; `ev` outlives the call.
    unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut ev) == 0 }
}

/// Accepts a connection waiting on listening socket `fd`, registers its
/// client and serves it from now on, as the accept loop would have.
fn accept(engine: &mut Engine, fd: RawFd, unix: bool) {
    // SAFETY: accepts on a listening socket; the new descriptor is owned
    // at once.
    let stream = unsafe {
        let conn = libc::accept4(
            fd,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
        );
        if conn < 0 {
            return;
        }
        StdClientStream::from_fd(OwnedFd::from_raw_fd(conn), unix)
    };
    let max = engine.srv.config.get_i64("maxclients").max(1) as usize;
    if engine.clients.len() >= max {
        let _ = stream.write_now(b"-ERR max number of clients reached\r\n");
        return;
    }
    // (A busy script serves clients only where links exist.)
    let (id, link) = match crate::connection::register(engine, stream.as_fd(), unix) {
        Ok((id, Some(link))) => (id, link),
        Ok((id, None)) => {
            engine.unregister_client(id);
            return;
        }
        Err(_) => return,
    };
    let Some(busy) = engine.srv.busy.as_mut() else {
        return;
    };
    if let Some(ep) = &busy.epoll {
        watch(ep, link.fd, id);
    }
    busy.served.insert(id, Served::new(link, Some(stream)));
}

/// The clients whose sockets have input, without waiting.
fn ready(epoll: RawFd) -> Vec<ClientId> {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    // SAFETY: `events` is writable for its whole length.
    let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), events.len() as i32, 0) };
    events[..n.max(0) as usize].iter().map(|e| e.u64).collect()
}

/// Reads what client `id` sent and runs its whole commands.
fn read_and_run(engine: &mut Engine, id: ClientId) {
    let Some(busy) = engine.srv.busy.as_mut() else {
        return;
    };
    let epoll = busy.epoll.as_ref().map(|e| e.as_raw_fd());
    let Some(s) = busy.served.get_mut(&id) else {
        return;
    };
    if !s.reading {
        return;
    }
    let input = &mut s.held.input;
    input.reserve(READ_CHUNK);
    let room = input.spare_capacity_mut();
    // SAFETY: reads into the buffer's spare capacity, then counts only
    // the bytes the kernel wrote.
    let n = unsafe {
        libc::recv(
            s.link.fd,
            room.as_mut_ptr().cast(),
            room.len(),
            libc::MSG_DONTWAIT,
        )
    };
    if n > 0 {
        unsafe { input.set_len(input.len() + n as usize) };
    } else if n == 0 || !would_block() {
        // Gone: its task finds out when the script ends.
        stop_reading(s, epoll);
        s.held.closed = true;
        return;
    }
    loop {
        // Recomputed per command: an AUTH lifts the limits for what follows.
        let limits = crate::connection::parse_limits(engine, id);
        let Some(s) = engine.srv.busy.as_mut().and_then(|b| b.served.get_mut(&id)) else {
            return;
        };
        let argv = match s.parser.parse(&mut s.held.input, &limits) {
            Ok(Some(argv)) if argv.is_empty() => continue,
            Ok(Some(argv)) => argv,
            Ok(None) => {
                if s.held.input.len() + s.held.unwritten.len() > MAX_HELD {
                    stop_reading(s, epoll);
                }
                return;
            }
            Err(e) => {
                let mut out = ReplyBuf::new(false);
                out.error(&format!("ERR {e}"));
                s.held.unwritten.extend_from_slice(&out.buf);
                s.held.closed = true;
                stop_reading(s, epoll);
                return;
            }
        };
        let mut out = ReplyBuf::new(false);
        let close = engine.execute_while_busy(id, &argv, &mut out);
        let Some(s) = engine.srv.busy.as_mut().and_then(|b| b.served.get_mut(&id)) else {
            return;
        };
        s.held.unwritten.extend_from_slice(&out.buf);
        if close {
            s.held.closed = true;
            stop_reading(s, epoll);
            return;
        }
    }
}

fn would_block() -> bool {
    let e = std::io::Error::last_os_error();
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
    )
}

fn stop_reading(s: &mut Served, epoll: Option<RawFd>) {
    if s.reading {
        s.reading = false;
        if let Some(ep) = epoll {
            // SAFETY: removes a descriptor this epoll watches.
            unsafe {
                libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, s.link.fd, std::ptr::null_mut());
            }
        }
    }
}

/// Writes what the socket takes now of a connection's replies.
fn write_held(s: &mut Served) {
    let buf = &mut s.held.unwritten;
    while !buf.is_empty() {
        // SAFETY: sends from a live buffer; MSG_NOSIGNAL: a closed peer is
        // an error, not SIGPIPE.
        let n = unsafe {
            libc::send(
                s.link.fd,
                buf.as_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n > 0 {
            buf.drain(..n as usize);
        } else {
            if !would_block() {
                // The peer is gone: nothing more to write.
                buf.clear();
                s.held.closed = true;
            }
            return;
        }
    }
}

/// The script ended (returned, failed, was killed or undone): every
/// connection served meanwhile gets back what the hook holds for it and is
/// woken to go on.
pub fn end(engine: &mut Engine) {
    let Some(busy) = engine.srv.busy.take() else {
        return;
    };
    for (id, s) in busy.served {
        let held = s.held;
        let accepted = s.accepted.is_some();
        if !accepted && held.input.is_empty() && held.unwritten.is_empty() && !held.closed {
            // Its task waits for input, as before.
            continue;
        }
        // Not served again (by a script the same batch runs next) before
        // its task has taken this: the task sets it idle again.
        s.link.set_idle(false);
        *s.link.stash.lock() = Some(held);
        s.link.stashed.store(true, Ordering::Release);
        match s.accepted {
            // Its task starts with what its link holds.
            Some(stream) => {
                engine.srv.adopted.push(Adopted { stream, id });
                engine.srv.adopt_ready.notify_one();
            }
            None => {
                if let Some(c) = engine.clients.get(&id) {
                    c.push(Push::Wake);
                }
            }
        }
    }
}
