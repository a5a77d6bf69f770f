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

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
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
}

impl MemlogServer {
    /// Starts `memlog server` with `extra` arguments and waits for its port.
    pub fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let mut cmd = Command::new(memlog_bin());
        cmd.arg("server")
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(port.to_string())
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(extra);
        let log = dir.path().join("server.log");
        let process = Process::spawn("memlog server", cmd, Some(&log))?;
        wait_for_port(port, Duration::from_secs(30))?;
        Ok(Self { port, process, dir })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
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
