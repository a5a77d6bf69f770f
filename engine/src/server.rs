//! The RESP server: accepts clients on TCP ports and a Unix domain socket
//! (`unixsocket`) and runs one task per connection, plus the active expire
//! cycle.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::net::TcpListener;

use crate::client_stream::{ClientListener, ClientStream};
use crate::engine::{Engine, EngineOptions};
use std::os::fd::{AsFd, AsRawFd};

/// How `memlog server` is configured.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: String,
    pub port: u16,
    pub data_dir: std::path::PathBuf,
    pub requirepass: Option<String>,
    pub proto_max_bulk_len: u64,
    /// `enable-debug-command`: yes, no or local.
    pub enable_debug_command: String,
    pub databases: usize,
    /// Where writes are made durable.
    pub durability: Durability,
    /// The write lease (see `durable`).
    pub lease: Duration,
    /// `--config`: the configuration file CONFIG REWRITE writes.
    pub config_file: Option<std::path::PathBuf>,
    /// Directives from the file and the command line, applied in order as
    /// CONFIG SET before clients are taken (`config_file`).
    pub directives: Vec<crate::config_file::Directive>,
    /// TEST ONLY (settable in debug builds alone, `--unsafe-early-ack`):
    /// replies leave before the log acknowledges, breaking durability on
    /// purpose so `memlog-jepsen` can prove it detects lost writes.
    pub unsafe_early_ack: bool,
}

/// Where `memlog server` makes writes durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Durability {
    /// Nothing is persisted; replies go out at once (`--in-memory`).
    InMemory,
    /// A single-node transaction log in this process, on
    /// `<data-dir>/txlog` (the default).
    Embedded,
    /// A txlog cluster: node addresses and the log (shard) name.
    Remote { addrs: String, log: String },
}

/// The log name of the embedded mode (and the default shard).
pub const DEFAULT_LOG: &str = "shard-0";

/// The engine shared by connection tasks; held only for short, await-free
/// critical sections.
pub type SharedEngine = Arc<Mutex<Engine>>;

/// How often the active expire cycle runs (Redis' default hz 10).
const EXPIRE_CYCLE_EVERY: Duration = Duration::from_millis(100);
/// CPU budget per run: keys with a TTL never outlive it by much more than
/// the time to sample through them at this rate.
const EXPIRE_CYCLE_BUDGET: Duration = Duration::from_millis(5);

/// Configures the engine, binds and serves until SHUTDOWN.
pub async fn run(config: ServerConfig) -> std::io::Result<()> {
    let opts = EngineOptions {
        databases: config.databases,
        requirepass: config.requirepass.clone(),
        proto_max_bulk_len: config.proto_max_bulk_len,
        port: config.port,
        bind: config.bind.clone(),
        data_dir: config.data_dir.clone(),
        enable_debug_command: config.enable_debug_command.clone(),
    };
    let mut engine = Engine::new(&opts);
    engine.unsafe_early_ack = config.unsafe_early_ack;
    engine.srv.config_file = config.config_file.clone();
    engine.srv.serve_while_busy = tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread;
    for d in &config.directives {
        let configured = if d.args.len() > 1 && !crate::config::takes_words(&d.name) {
            Err("wrong number of arguments".to_string())
        } else {
            engine.configure(&d.name, &d.value())
        };
        configured.map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "bad configuration directive at {} ('{} {}'): {e}",
                    d.origin,
                    d.name,
                    d.value()
                ),
            )
        })?;
    }
    // Configured before it listens: a bad directive serves no one.
    let backlog = engine
        .srv
        .config
        .get_i64("tcp-backlog")
        .clamp(0, i32::MAX as i64) as i32;
    let listeners = listen(&config.bind, config.port, backlog)?;
    let unix = match engine.srv.config.get("unixsocket").unwrap_or_default() {
        "" => None,
        path => {
            let perm = engine.srv.config.get("unixsocketperm").unwrap_or("0");
            let perm = u32::from_str_radix(perm, 8).unwrap_or(0);
            let path = crate::config_file::in_dir(&config.data_dir, path);
            Some(listen_unix(&path, perm, backlog)?)
        }
    };
    if listeners.is_empty() && unix.is_none() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "configured to not listen anywhere (port 0 and no unixsocket)",
        ));
    }
    let engine: SharedEngine = Arc::new(Mutex::new(engine));
    let embedded = start_durability(&config, &engine)
        .await
        .map_err(std::io::Error::other)?;
    match embedded {
        // An embedded log that cannot be reopened in this process ends it:
        // a restart recovers the log, as after kill -9.
        Some(log) => tokio::select! {
            served = serve(listeners, unix, engine) => served,
            why = log.wedged() => Err(std::io::Error::other(why)),
        },
        None => serve(listeners, unix, engine).await,
    }
}

/// Listens on each address of `bind` (Redis' list: `127.0.0.1 -::1`; a
/// `-` marks an address skipped where the machine does not have it, `*`
/// is every IPv4 address and `::*` every IPv6 one) at `port`, with
/// `backlog` as the listen queue (`tcp-backlog`).
/// Port 0 listens on no TCP port, as in Redis (then only `unixsocket`).
pub fn listen(bind: &str, port: u16, backlog: i32) -> std::io::Result<Vec<std::net::TcpListener>> {
    use std::net::ToSocketAddrs;
    let mut listeners = Vec::new();
    if port == 0 {
        return Ok(listeners);
    }
    for word in bind.split_whitespace() {
        let (optional, host) = match word.strip_prefix('-') {
            Some(h) => (true, h),
            None => (false, word),
        };
        let host = match host {
            "*" => "0.0.0.0",
            "::*" => "::",
            h => h,
        };
        let named = |e: std::io::Error| {
            std::io::Error::new(e.kind(), format!("binding {host}:{port}: {e}"))
        };
        let addrs: Vec<std::net::SocketAddr> =
            (host, port).to_socket_addrs().map_err(named)?.collect();
        for addr in addrs {
            match listen_on(addr, backlog) {
                Ok(l) => {
                    tracing::info!(addr = %l.local_addr()?, "memlog serving RESP");
                    listeners.push(l);
                }
                // As Redis: an optional address the machine lacks (no
                // IPv6, say) is skipped.
                Err(e) if optional && unavailable(&e) => {
                    tracing::warn!(%addr, error = %e, "not listening on an optional address");
                }
                Err(e) => return Err(named(e)),
            }
        }
    }
    if listeners.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrNotAvailable,
            format!("binding {bind}:{port}: no address to listen on"),
        ));
    }
    Ok(listeners)
}

/// The Unix domain socket file the server listens on (`unixsocket`),
/// removed when the server ends, as Redis removes it.
#[derive(Debug)]
pub struct SocketFile(std::path::PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Listens on the Unix domain socket at `path` as Redis does: a file left
/// there (by a server that was killed) is removed first, the listen queue
/// is `backlog` (`tcp-backlog`), and `perm` (`unixsocketperm`), unless 0,
/// sets the file's permissions.
pub fn listen_unix(
    path: &std::path::Path,
    perm: u32,
    backlog: i32,
) -> std::io::Result<(std::os::unix::net::UnixListener, SocketFile)> {
    use socket2::{Domain, SockAddr, Socket, Type};
    use std::os::unix::fs::PermissionsExt;
    let named = |e: std::io::Error| {
        let path = path.display();
        std::io::Error::new(e.kind(), format!("listening on unix socket {path}: {e}"))
    };
    let _ = std::fs::remove_file(path);
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(named)?;
    socket.set_nonblocking(true).map_err(named)?;
    socket
        .bind(&SockAddr::unix(path).map_err(named)?)
        .map_err(named)?;
    let file = SocketFile(path.into());
    socket.listen(backlog).map_err(named)?;
    if perm != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm)).map_err(named)?;
    }
    tracing::info!(path = %path.display(), "memlog serving RESP");
    Ok((socket.into(), file))
}

/// One listening socket, set up as Redis sets its own: reusable address,
/// IPv6 sockets for IPv6 only (so `* ::*` binds both families).
fn listen_on(addr: std::net::SocketAddr, backlog: i32) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Moves the server's listeners where `bind` and `port` now say (CONFIG
/// SET), as Redis does: the old sockets stop listening first (so an
/// address they held can be taken again), the new ones are bound, and the
/// serving loop takes them (`srv.rebind`); if they cannot be, the old ones
/// listen again and the error is returned. Connections already made stay.
pub fn move_listeners(
    srv: &mut crate::engine::ServerState,
    bind: &str,
    port: u16,
) -> std::io::Result<()> {
    let Some(rebind) = srv.rebind.clone() else {
        return Err(std::io::Error::other("no listener to move"));
    };
    let backlog = srv.config.get_i64("tcp-backlog").clamp(0, i32::MAX as i64) as i32;
    let old = srv.listener_fds.clone();
    // SAFETY: shutdown and listen on sockets the accept tasks own, which
    // stay open: a socket shut down this way only stops listening (its
    // accept fails until it listens again or its task ends).
    for fd in &old {
        unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
    }
    match listen(bind, port, backlog) {
        Ok(new) => {
            use std::os::fd::AsRawFd;
            srv.listener_fds = new.iter().map(|l| l.as_raw_fd()).collect();
            let _ = rebind.send(new);
            Ok(())
        }
        Err(e) => {
            for fd in &old {
                unsafe { libc::listen(*fd, backlog) };
            }
            Err(e)
        }
    }
}

fn unavailable(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::AddrNotAvailable
        || matches!(
            e.raw_os_error(),
            Some(libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT | libc::EPFNOSUPPORT)
        )
}

/// Recovers from the transaction log and starts the log client (nothing in
/// in-memory mode). Clients that connect meanwhile get `-TRYAGAIN`. Returns
/// the embedded log, if that is the one.
pub async fn start_durability(
    config: &ServerConfig,
    engine: &SharedEngine,
) -> Result<Option<memlog_txlog::EmbeddedLog>, crate::durable::DurableError> {
    use crate::durable::{Durable, LogBackend};
    let (backend, log) = match &config.durability {
        Durability::InMemory => return Ok(None),
        Durability::Embedded => {
            let dir = config.data_dir.join("txlog");
            let log = memlog_txlog::EmbeddedLog::open(dir).await?;
            (LogBackend::Embedded(log), DEFAULT_LOG.to_string())
        }
        Durability::Remote { addrs, log } => {
            let client = memlog_txlog::TxlogClient::from_list(addrs)?
                .with_request_timeout(crate::durable::append_timeout(config.lease));
            (LogBackend::Remote(client), log.clone())
        }
    };
    let holder = format!(
        "memlog-server {}:{} run {}",
        config.bind,
        config.port,
        engine.lock().srv.run_id
    );
    let snapshots = Arc::new(crate::snapshot::LocalSnapshotStore::new(
        config.data_dir.join("snapshots"),
    ));
    let embedded = match &backend {
        LogBackend::Embedded(log) => Some(log.clone()),
        LogBackend::Remote(_) => None,
    };
    let d = Durable::new(backend, log, holder, config.lease, snapshots);
    crate::durable::start(engine, d).await?;
    Ok(embedded)
}

/// Serves clients from `listeners` and the Unix domain socket `unix` on
/// `engine` until SHUTDOWN.
pub async fn serve(
    listeners: Vec<std::net::TcpListener>,
    unix: Option<(std::os::unix::net::UnixListener, SocketFile)>,
    engine: SharedEngine,
) -> std::io::Result<()> {
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let (rebind_tx, mut rebind_rx) = tokio::sync::mpsc::unbounded_channel();
    {
        let mut e = engine.lock();
        e.srv.shutdown = Some(shutdown_tx);
        e.srv.rebind = Some(rebind_tx);
    }

    let expire_engine = engine.clone();
    let expire_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(EXPIRE_CYCLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            expire_engine.lock().guarded(|e| {
                e.active_expire_cycle(EXPIRE_CYCLE_BUDGET);
                e.tracking_tick();
                e.close_idle_clients();
                e.resize_query_buffers();
                e.recount_memory();
                e.snapshot_if_due();
            });
        }
    });

    engine.lock().srv.listener_fds = listeners.iter().map(|l| l.as_raw_fd()).collect();
    let mut accepting = start_accepting(listeners, &engine)?;
    // Not moved by CONFIG SET port / bind; its file goes when this ends.
    let (unix_accepting, _socket_file) = match unix {
        Some((l, file)) => {
            engine.lock().srv.unix_listener_fd = Some(l.as_raw_fd());
            let l = ClientListener::Unix(tokio::net::UnixListener::from_std(l)?);
            (Some(tokio::spawn(accept(l, engine.clone()))), Some(file))
        }
        None => (None, None),
    };
    let signals = tokio::spawn(shutdown_on_signals(engine.clone()));
    // Only SHUTDOWN ends serving (a closed sender is one that was dropped
    // with the engine, which ends it too).
    loop {
        tokio::select! {
            _ = shutdown_rx.changed() => break,
            Some(moved) = rebind_rx.recv() => {
                // CONFIG SET port / bind (`move_listeners`).
                for task in accepting.drain(..) {
                    task.abort();
                }
                accepting = start_accepting(moved, &engine)?;
            }
        }
    }
    tracing::info!("SHUTDOWN: exiting");
    signals.abort();
    for task in accepting.into_iter().chain(unix_accepting) {
        task.abort();
    }
    expire_task.abort();
    Ok(())
}

/// SIGTERM and SIGINT shut the server down as SHUTDOWN does, as they do
/// redis-server (`shutdown-on-sigterm`, `shutdown-on-sigint`): a service
/// manager's stop ends it cleanly (its pid file removed) instead of killing
/// it. Acknowledged writes are in the log either way.
#[cfg(unix)]
async fn shutdown_on_signals(engine: SharedEngine) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("SIGTERM and SIGINT end the server at once: no handler");
        return;
    };
    loop {
        let (name, parameter) = tokio::select! {
            _ = term.recv() => ("SIGTERM", "shutdown-on-sigterm"),
            _ = int.recv() => ("SIGINT", "shutdown-on-sigint"),
        };
        tracing::warn!("received {name}, shutting down");
        engine.lock().shutdown_on_signal(parameter);
    }
}

#[cfg(not(unix))]
async fn shutdown_on_signals(_: SharedEngine) {}

/// An accept task for each listener.
fn start_accepting(
    listeners: Vec<std::net::TcpListener>,
    engine: &SharedEngine,
) -> std::io::Result<Vec<tokio::task::JoinHandle<()>>> {
    let mut tasks = Vec::new();
    for l in listeners {
        let l = ClientListener::Tcp(TcpListener::from_std(l)?);
        tasks.push(tokio::spawn(accept(l, engine.clone())));
    }
    Ok(tasks)
}

/// Takes the connections of one listener, each into a task of its own.
async fn accept(listener: ClientListener, engine: SharedEngine) {
    let adopt_ready = engine.lock().srv.adopt_ready.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = adopt_ready.notified() => {
                start_adopted(&engine);
                continue;
            }
        };
        let stream = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // As Redis: past `maxclients` a new connection gets the error
        // and is closed (each costs memory and a file descriptor).
        let registered = {
            let mut e = engine.lock();
            let max = e.srv.config.get_i64("maxclients").max(1) as usize;
            (e.clients.len() < max)
                .then(|| crate::connection::register(&mut e, stream.as_fd(), stream.is_unix()))
        };
        let id = match registered {
            Some(Ok((id, _))) => id,
            None => {
                tokio::spawn(refuse(stream));
                continue;
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "connection lost as it was accepted");
                continue;
            }
        };
        let engine = engine.clone();
        tokio::spawn(async move {
            if let Err(e) = crate::connection::serve_client(stream, id, engine).await {
                tracing::debug!(client = id, error = %e, "connection ended");
            }
        });
    }
}

/// Starts the tasks of the connections a busy script's hook accepted
/// (crate::busy), now that it has ended.
fn start_adopted(engine: &SharedEngine) {
    let adopted = std::mem::take(&mut engine.lock().srv.adopted);
    for a in adopted {
        let engine = engine.clone();
        tokio::spawn(async move {
            let id = a.id;
            let stream = match ClientStream::from_std(a.stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "adopting a connection failed");
                    engine.lock().unregister_client(id);
                    return;
                }
            };
            if let Err(e) = crate::connection::serve_client(stream, id, engine).await {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

/// Answers a connection past `maxclients` as Redis does, and closes it.
async fn refuse(mut stream: ClientStream) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(b"-ERR max number of clients reached\r\n"),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server whose port is taken says which address it could not bind.
    #[tokio::test]
    async fn a_busy_port_is_named_in_the_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = taken.local_addr().expect("addr").port();
        let config = ServerConfig {
            bind: "127.0.0.1".into(),
            port,
            data_dir: std::env::temp_dir(),
            requirepass: None,
            proto_max_bulk_len: 512 * 1024 * 1024,
            enable_debug_command: "local".into(),
            databases: 16,
            durability: Durability::InMemory,
            lease: Duration::from_secs(2),
            config_file: None,
            directives: Vec::new(),
            unsafe_early_ack: false,
        };
        let err = run(config).await.expect_err("the port is taken");
        assert!(
            err.to_string()
                .contains(&format!("binding 127.0.0.1:{port}")),
            "{err}"
        );
    }
}
