//! Shared fixtures for memlog's cross-crate tests: start real `memlog` and
//! `redis-server` processes on free loopback ports and stop them by PID.
//!
//! Every process started here is a [`Process`]: dropping it kills it (by PID,
//! never by name), so a failing test leaves nothing running.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `memlog` binary under test: `$MEMLOG_BIN`, else the workspace's
/// `target/{release,debug}/memlog` (`make test` builds it first).
pub fn memlog_bin() -> PathBuf {
    if let Ok(p) = std::env::var("MEMLOG_BIN") {
        return PathBuf::from(p);
    }
    let root = workspace_root();
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    let debug = target.join("debug").join("memlog");
    if debug.exists() {
        return debug;
    }
    target.join("release").join("memlog")
}

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A loopback port nobody listens on right now, for a process started
/// next to listen on. It is taken from below the kernel's ephemeral range:
/// a port from that range (what binding port 0 gives) can be taken, before
/// the process binds it, as the source port of any outgoing connection,
/// such as the txlog nodes' connections to each other (a Jepsen run once
/// failed with "Address already in use" that way).
pub fn free_port() -> u16 {
    use rand::Rng;
    let low = ephemeral_low();
    let (from, to) = if low > 12_000 {
        (10_000, low)
    } else {
        (1_024, low.max(1_025))
    };
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(from..to);
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// The lowest port of the kernel's ephemeral range (Linux; the usual
/// default elsewhere).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Waits until something accepts TCP connections on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    anyhow::bail!("nothing listened on 127.0.0.1:{port} within {timeout:?}")
}

/// Makes `cmd`'s process unable to grow any file past `bytes`, as a full
/// disk would: writes past it fail with EFBIG (SIGXFSZ, which would kill
/// it, is ignored). Only the soft limit is set, so
/// [`lift_file_size_limit`] can lift it again while the process runs.
pub fn limit_file_size(cmd: &mut Command, bytes: u64) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls
    // only async-signal-safe functions (setrlimit, signal).
    unsafe {
        cmd.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
}

/// Lifts the file size limit of process `pid` (see [`limit_file_size`]):
/// the "disk" has room again.
pub fn lift_file_size_limit(pid: u32) -> anyhow::Result<()> {
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain syscall with a valid pointer and no old-limit output.
    let r = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &unlimited,
            std::ptr::null_mut(),
        )
    };
    anyhow::ensure!(
        r == 0,
        "prlimit({pid}): {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}

/// A child process that is killed (SIGKILL, by PID) when dropped.
pub struct Process {
    child: Option<Child>,
    name: String,
}

impl Process {
    /// Spawns `cmd` with stdout and stderr sent to `log` (if given) or discarded.
    pub fn spawn(name: &str, mut cmd: Command, log: Option<&Path>) -> anyhow::Result<Self> {
        match log {
            Some(path) => {
                let f = std::fs::File::create(path)?;
                cmd.stdout(Stdio::from(f.try_clone()?))
                    .stderr(Stdio::from(f));
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        cmd.stdin(Stdio::null());
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("spawning {name}: {e}"))?;
        Ok(Self {
            child: Some(child),
            name: name.to_string(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends `signal` (e.g. "STOP", "CONT", "KILL") to the process by PID.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {} failed", self.pid());
        Ok(())
    }

    /// kill -9 and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.as_mut().map(|c| c.try_wait()) {
                Some(Ok(Some(status))) => return Some(status),
                Some(Ok(None)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                _ => return None,
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A `memlog server` on a free port with its own data directory.
pub struct MemlogServer {
    pub port: u16,
    pub process: Process,
    pub dir: tempfile::TempDir,
    /// Extra arguments it was started with (reused by `restart`).
    pub args: Vec<String>,
    /// See [`MemlogServer::start_with_file_limit`].
    file_limit: Option<u64>,
    starts: u32,
}

impl MemlogServer {
    /// Starts `memlog server` with `extra` arguments and waits for its port.
    pub fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::start_in(dir, free_port(), args)
    }

    /// Starts `memlog server` on `port` with data under `dir/data`.
    pub fn start_in(dir: tempfile::TempDir, port: u16, args: Vec<String>) -> anyhow::Result<Self> {
        Self::launch(dir, port, args, None)
    }

    /// Starts `memlog server` unable to grow any file past `bytes` (see
    /// [`limit_file_size`]), also when restarted, until
    /// [`MemlogServer::lift_file_limit`].
    pub fn start_with_file_limit(extra: &[&str], bytes: u64) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        Self::launch(dir, free_port(), args, Some(bytes))
    }

    fn launch(
        dir: tempfile::TempDir,
        port: u16,
        args: Vec<String>,
        file_limit: Option<u64>,
    ) -> anyhow::Result<Self> {
        let process = Self::spawn(&dir, port, &args, file_limit, 0)?;
        Ok(Self {
            port,
            process,
            dir,
            args,
            file_limit,
            starts: 1,
        })
    }

    /// Lifts the file size limit, of the running process and of restarts.
    pub fn lift_file_limit(&mut self) -> anyhow::Result<()> {
        self.file_limit = None;
        lift_file_size_limit(self.process.pid())
    }

    fn spawn(
        dir: &tempfile::TempDir,
        port: u16,
        args: &[String],
        file_limit: Option<u64>,
        n: u32,
    ) -> anyhow::Result<Process> {
        let mut cmd = Command::new(memlog_bin());
        cmd.arg("server")
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args);
        if let Some(bytes) = file_limit {
            limit_file_size(&mut cmd, bytes);
        }
        let log = Self::log_path(dir, n);
        let process = Process::spawn("memlog server", cmd, Some(&log))?;
        wait_for_port(port, Duration::from_secs(30))?;
        Ok(process)
    }

    /// kill -9, then starts again on the same port, data and arguments.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.process.kill();
        self.process = Self::spawn(
            &self.dir,
            self.port,
            &self.args,
            self.file_limit,
            self.starts,
        )?;
        self.starts += 1;
        Ok(())
    }

    /// The log file of start number `n` (0: the first).
    fn log_path(dir: &tempfile::TempDir, n: u32) -> PathBuf {
        if n == 0 {
            dir.path().join("server.log")
        } else {
            dir.path().join(format!("server.{n}.log"))
        }
    }

    /// What the server logged, every start in order (for failure messages).
    pub fn log_text(&self) -> String {
        (0..self.starts)
            .map(|n| std::fs::read_to_string(Self::log_path(&self.dir, n)).unwrap_or_default())
            .collect()
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// A three-node `memlog txlog` group of real processes on loopback, each
/// node with its own data directory (fast Raft timings for tests), plus any
/// nodes added later with [`TxlogCluster::spawn_extra`].
pub struct TxlogCluster {
    pub dir: tempfile::TempDir,
    pub ports: Vec<u16>,
    pub nodes: Vec<Option<Process>>,
    init: String,
    /// `--snapshot-every` of every node (the binary's default if `None`).
    snapshot_every: Option<u64>,
    /// More arguments for every node.
    node_args: Vec<String>,
    starts: u32,
}

impl TxlogCluster {
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(None)
    }

    /// Starts the founding three with `--snapshot-every` set, if given.
    pub fn start_with(snapshot_every: Option<u64>) -> anyhow::Result<Self> {
        Self::start_with_args(snapshot_every, &[])
    }

    /// Like [`start_with`](Self::start_with), with more node arguments.
    pub fn start_with_args(snapshot_every: Option<u64>, args: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let init = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}=127.0.0.1:{p}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let mut c = Self {
            dir,
            ports,
            nodes: vec![None, None, None],
            init,
            snapshot_every,
            node_args: args.iter().map(|a| a.to_string()).collect(),
            starts: 0,
        };
        for i in 0..3 {
            c.spawn(i)?;
        }
        for i in 0..3 {
            wait_for_port(c.ports[i], Duration::from_secs(30))?;
        }
        Ok(c)
    }

    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    /// Every node's address, founders first.
    pub fn addr_list(&self) -> Vec<String> {
        (0..self.ports.len()).map(|i| self.addr(i)).collect()
    }

    /// `host:port,host:port,...` (what `memlog server --txlog` takes).
    pub fn addrs(&self) -> String {
        self.addr_list().join(",")
    }

    /// Node `i`'s data directory.
    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{}", i + 1))
    }

    /// (Re)starts node `i` on its data directory; only the founding three
    /// get `--init`.
    pub fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        self.spawn_limited(i, None)
    }

    /// kill -9 node `i`, then restarts it unable to grow any file past
    /// `bytes` (see [`limit_file_size`]) and waits for its port.
    pub fn restart_with_file_limit(&mut self, i: usize, bytes: u64) -> anyhow::Result<()> {
        self.kill(i);
        self.spawn_limited(i, Some(bytes))?;
        wait_for_port(self.ports[i], Duration::from_secs(30))
    }

    /// Node `i`'s process, if it was started.
    pub fn process(&mut self, i: usize) -> Option<&mut Process> {
        self.nodes[i].as_mut()
    }

    fn spawn_limited(&mut self, i: usize, file_limit: Option<u64>) -> anyhow::Result<()> {
        self.starts += 1;
        let mut cmd = Command::new(memlog_bin());
        cmd.arg("txlog")
            .arg("--id")
            .arg((i + 1).to_string())
            .arg("--bind")
            .arg(self.addr(i))
            .arg("--data-dir")
            .arg(self.node_dir(i));
        if i < 3 {
            cmd.arg("--init").arg(&self.init);
        }
        if let Some(n) = self.snapshot_every {
            cmd.arg("--snapshot-every").arg(n.to_string());
        }
        cmd.args(&self.node_args);
        cmd.args(["--heartbeat-ms", "50"])
            .args(["--election-min-ms", "300"])
            .args(["--election-max-ms", "600"])
            // MEMLOG_NODE_LOG: the nodes' log filter when debugging a test.
            .env(
                "RUST_LOG",
                std::env::var("MEMLOG_NODE_LOG").unwrap_or_else(|_| "warn".into()),
            );
        if let Some(bytes) = file_limit {
            limit_file_size(&mut cmd, bytes);
        }
        let log = self
            .dir
            .path()
            .join(format!("n{}.{}.log", i + 1, self.starts));
        self.nodes[i] = Some(Process::spawn("memlog txlog", cmd, Some(&log))?);
        Ok(())
    }

    /// Restarts node `i` and waits for its port.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.spawn(i)?;
        wait_for_port(self.ports[i], Duration::from_secs(30))
    }

    /// Starts one more node (id `index + 1`) on a fresh data directory and
    /// without `--init`: it waits to be added to the group. Returns its index.
    pub fn spawn_extra(&mut self) -> anyhow::Result<usize> {
        let i = self.ports.len();
        self.ports.push(free_port());
        self.nodes.push(None);
        self.restart(i)?;
        Ok(i)
    }

    /// Everything node `i` has logged, over all its starts.
    pub fn log_text(&self, i: usize) -> String {
        let prefix = format!("n{}.", i + 1);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.retain(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".log"))
        });
        paths.sort();
        paths
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap_or_default())
            .collect()
    }

    /// kill -9 node `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].take() {
            p.kill();
        }
    }

    /// Sends `sig` ("STOP", "CONT", ...) to node `i`.
    pub fn signal(&self, i: usize, sig: &str) -> anyhow::Result<()> {
        match &self.nodes[i] {
            Some(p) => p.signal(sig),
            None => anyhow::bail!("node {i} is not running"),
        }
    }

    /// A durable `memlog server` on this cluster (`--txlog`).
    pub fn server(&self, extra: &[&str]) -> anyhow::Result<MemlogServer> {
        let mut args = vec!["--txlog".to_string(), self.addrs()];
        args.extend(extra.iter().map(|s| s.to_string()));
        MemlogServer::start_in(tempfile::tempdir()?, free_port(), args)
    }
}

/// A Debian `redis-server` with no persistence on a free port, for
/// differential tests.
pub struct RedisServer {
    pub port: u16,
    pub process: Process,
    pub dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let mut cmd = Command::new("redis-server");
        cmd.arg("--bind")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--save")
            .arg("")
            .arg("--appendonly")
            .arg("no")
            // DEBUG SLEEP & co, as memlog allows them.
            .arg("--enable-debug-command")
            .arg("yes")
            .arg("--dir")
            .arg(dir.path());
        let process = Process::spawn("redis-server", cmd, None)?;
        wait_for_port(port, Duration::from_secs(10))?;
        Ok(Self { port, process, dir })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// Calls until the reply is not an error (bounded: 60 s), e.g. while a
/// durable server takes its log's leadership or its lease has lapsed.
pub fn call_until_ok<A: AsRef<[u8]> + std::fmt::Debug>(
    conn: &mut RawConn,
    args: &[A],
) -> RespValue {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = conn.call(args).expect("reply");
        if !r.is_error() {
            return r;
        }
        assert!(Instant::now() < deadline, "{args:?} kept failing: {r:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A numeric field of `INFO` (every section) read on `c`.
pub fn info_i64(c: &mut RawConn, field: &str) -> i64 {
    let RespValue::Bulk(text) = c.call(&["INFO"]).expect("INFO") else {
        panic!("INFO is not a bulk string");
    };
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no numeric {field} in INFO"))
}

/// A field of a memlog server's `INFO persistence` (`rdb_last_bgsave_status`,
/// `memlog_log_state`, ...), read on a connection of its own.
pub fn persistence_field(port: u16, name: &str) -> String {
    let mut c = RawConn::connect(port).expect("connect");
    let RespValue::Bulk(info) = c.call(&["INFO", "persistence"]).expect("INFO") else {
        panic!("INFO persistence is not a bulk string");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {name} in {info}"))
}

/// A counter of a memlog server's `INFO persistence` (`memlog_log_resumes`,
/// `memlog_log_rebuilds`, ...).
pub fn persistence_counter(port: u16, name: &str) -> u64 {
    let v = persistence_field(port, name);
    v.parse()
        .unwrap_or_else(|_| panic!("{name} is not a counter: {v:?}"))
}

pub mod jepsen;
pub mod resp;
pub mod workload;

pub use resp::{encode_command, RawConn, RespValue};

/// How a differential check compares two replies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Byte for byte, element for element.
    Exact,
    /// Arrays/sets/maps compared as multisets (SMEMBERS, KEYS, ...).
    Unordered,
    /// A flat field/value array compared as a map (HGETALL in RESP2).
    Pairs,
}

/// memlog and a real redis-server side by side: every command goes to both
/// and the replies must be identical (up to [`Order`]).
pub struct Differential {
    pub memlog: MemlogServer,
    pub redis: RedisServer,
    pub m: RawConn,
    pub r: RawConn,
}

impl Differential {
    pub fn start() -> anyhow::Result<Self> {
        let memlog = MemlogServer::start(&[])?;
        let redis = RedisServer::start()?;
        let m = RawConn::connect(memlog.port)?;
        let r = RawConn::connect(redis.port)?;
        Ok(Self {
            memlog,
            redis,
            m,
            r,
        })
    }

    /// Sends `args` to both; returns (memlog, redis) replies without checking.
    ///
    /// The command is sent to both before either reply is read, so both
    /// execute at (nearly) the same time even though memlog answers a write
    /// only once its log has it on disk (time-relative replies such as
    /// PEXPIRETIME after EXPIRE then agree).
    pub fn both<A: AsRef<[u8]>>(&mut self, args: &[A]) -> (RespValue, RespValue) {
        self.m.send(args).expect("memlog send");
        self.r.send(args).expect("redis send");
        let a = self.m.read().expect("memlog reply");
        let b = self.r.read().expect("redis reply");
        (a, b)
    }

    /// Sends `args` to both and asserts the replies are identical.
    pub fn check<A: AsRef<[u8]>>(&mut self, args: &[A]) -> RespValue {
        self.check_with(args, Order::Exact)
    }

    /// Like [`check`](Self::check) with an ordering rule.
    pub fn check_with<A: AsRef<[u8]>>(&mut self, args: &[A], order: Order) -> RespValue {
        let (a, b) = self.both(args);
        let (na, nb) = match order {
            Order::Exact => (a.clone(), b.clone()),
            Order::Unordered => (a.normalized(), b.normalized()),
            Order::Pairs => (a.normalized_pairs(), b.normalized_pairs()),
        };
        let shown: Vec<String> = args
            .iter()
            .map(|x| String::from_utf8_lossy(x.as_ref()).into_owned())
            .collect();
        assert_eq!(
            na, nb,
            "replies differ for {shown:?}\n memlog: {a:?}\n  redis: {b:?}"
        );
        a
    }

    /// Runs a whitespace-separated script of commands, one per line, checking
    /// each (`#` starts a comment line; a line starting with `~` is compared
    /// unordered).
    pub fn script(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (order, line) = match line.strip_prefix('~') {
                Some(rest) => (Order::Unordered, rest.trim()),
                None => (Order::Exact, line),
            };
            let args: Vec<&str> = line.split_whitespace().collect();
            self.check_with(&args, order);
        }
    }
}

/// Runs `cmds` on an in-process engine capturing its effect records,
/// replays the records on a fresh engine, and asserts that both hold the
/// same data set (values and expiry times, every database).
pub fn assert_effects_rebuild(cmds: &[&[&str]]) {
    use memlog_engine::{resp::ReplyBuf, Engine, EngineOptions};
    let mut primary = Engine::new(&EngineOptions::default());
    primary.ks.effects.capture = true;
    let id = primary.register_client(None, "test".into(), "test".into());
    for c in cmds {
        let argv: Vec<bytes::Bytes> = c
            .iter()
            .map(|s| bytes::Bytes::copy_from_slice(s.as_bytes()))
            .collect();
        primary.execute_one(id, &argv, &mut ReplyBuf::new(false));
    }
    let mut replica = Engine::new(&EngineOptions::default());
    for (_, rec) in primary.ks.effects.take_records() {
        replica.apply_effect(&rec).expect("effect applies");
    }
    for (i, (a, b)) in primary.ks.dbs.iter().zip(&replica.ks.dbs).enumerate() {
        assert_eq!(a.data, b.data, "db {i}: data differs after replay");
        assert_eq!(
            a.expires, b.expires,
            "db {i}: expiry times differ after replay"
        );
    }
}
