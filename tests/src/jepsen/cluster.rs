//! The system under test: real `memlog` processes on 127.0.0.1, each with its
//! own data directory, and a [`Proxy`] on every link.
//!
//! - `embedded`: one `memlog server --data-dir D` (durable on its own once
//!   the durable path lands). Links: clients -> server.
//! - `cluster`: three `memlog txlog` nodes and `memlog server --txlog
//!   S1,S2,S3 --log shard-0`. Links: clients -> server; server -> node i
//!   (the server is given these proxies' addresses); peers -> node i (each
//!   node advertises its inbound proxy, so Raft traffic to node i crosses
//!   it).

use super::proxy::{LinkMode, Proxy};
use crate::{free_port, memlog_bin, wait_for_port, Process, RawConn};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Embedded,
    Cluster,
}

impl std::str::FromStr for Mode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "embedded" => Ok(Mode::Embedded),
            "cluster" => Ok(Mode::Cluster),
            _ => anyhow::bail!("--mode must be embedded or cluster, not {s:?}"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Server,
    Txlog(u64),
}

/// One memlog process that the nemesis may kill, restart and pause.
pub struct Node {
    pub name: String,
    pub role: Role,
    /// The port it listens on (not a proxy's).
    pub port: u16,
    args: Vec<String>,
    dir: PathBuf,
    pub process: Option<Process>,
    pub paused: bool,
    starts: usize,
}

impl Node {
    fn new(name: &str, role: Role, port: u16, args: Vec<String>, dir: &Path) -> Self {
        Self {
            name: name.to_string(),
            role,
            port,
            args,
            dir: dir.to_path_buf(),
            process: None,
            paused: false,
            starts: 0,
        }
    }

    /// Starts the process (again), logging to `<dir>/<name>.<n>.log`.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.process.is_some() {
            return Ok(());
        }
        let mut cmd = Command::new(memlog_bin());
        cmd.args(&self.args);
        let log = self.dir.join(format!("{}.{}.log", self.name, self.starts));
        self.starts += 1;
        self.process = Some(Process::spawn(&self.name, cmd, Some(&log))?);
        self.paused = false;
        Ok(())
    }

    /// kill -9 (works on a paused process too) and reap.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
        self.paused = false;
    }

    pub fn pause(&mut self) -> anyhow::Result<()> {
        if let Some(p) = &self.process {
            p.signal("STOP")?;
            self.paused = true;
        }
        Ok(())
    }

    pub fn resume(&mut self) -> anyhow::Result<()> {
        if let (Some(p), true) = (&self.process, self.paused) {
            p.signal("CONT")?;
        }
        self.paused = false;
        Ok(())
    }

    /// The last log file's tail, for error messages.
    pub fn log_tail(&self) -> String {
        let n = self.starts.saturating_sub(1);
        let path = self.dir.join(format!("{}.{n}.log", self.name));
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Which link a proxy sits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    ClientServer,
    ServerTxlog(u64),
    PeersTxlog(u64),
}

pub struct Cluster {
    pub mode: Mode,
    pub dir: PathBuf,
    /// The server first, then txlog nodes 1..=3.
    pub nodes: Vec<Node>,
    pub proxies: Vec<(Link, Proxy)>,
}

impl Cluster {
    /// Starts every process and proxy under `dir` and waits until the server
    /// answers PING through the client proxy.
    pub fn start(
        mode: Mode,
        dir: &Path,
        extra_server_args: &[String],
        txlog_snapshot_every: u64,
        rt: &tokio::runtime::Handle,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let server_port = free_port();
        let mut proxies = vec![(
            Link::ClientServer,
            Proxy::start(rt, "client->server", server_port)?,
        )];
        let mut server_args: Vec<String> = [
            "server",
            "--bind",
            "127.0.0.1",
            "--port",
            &server_port.to_string(),
            "--data-dir",
            &dir.join("server-data").to_string_lossy(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut nodes = Vec::new();
        if mode == Mode::Cluster {
            let real: Vec<u16> = (0..3).map(|_| free_port()).collect();
            let mut inbound = Vec::new();
            let mut to_server = Vec::new();
            for (i, port) in real.iter().enumerate() {
                let id = i as u64 + 1;
                let p = Proxy::start(rt, &format!("peers->n{id}"), *port)?;
                inbound.push(p.addr());
                proxies.push((Link::PeersTxlog(id), p));
                let s = Proxy::start(rt, &format!("server->n{id}"), *port)?;
                to_server.push(s.addr());
                proxies.push((Link::ServerTxlog(id), s));
            }
            let init: Vec<String> = inbound
                .iter()
                .enumerate()
                .map(|(i, a)| format!("{}={a}", i + 1))
                .collect();
            let init = init.join(",");
            for (i, port) in real.iter().enumerate() {
                let id = i as u64 + 1;
                let args: Vec<String> = vec![
                    "txlog".into(),
                    "--id".into(),
                    id.to_string(),
                    "--bind".into(),
                    format!("127.0.0.1:{port}"),
                    "--advertise".into(),
                    inbound[i].clone(),
                    "--data-dir".into(),
                    dir.join(format!("n{id}-data"))
                        .to_string_lossy()
                        .into_owned(),
                    "--init".into(),
                    init.clone(),
                    "--snapshot-every".into(),
                    txlog_snapshot_every.to_string(),
                ];
                nodes.push(Node::new(
                    &format!("n{id}"),
                    Role::Txlog(id),
                    *port,
                    args,
                    dir,
                ));
            }
            server_args.extend([
                "--txlog".to_string(),
                to_server.join(","),
                "--log".to_string(),
                "shard-0".to_string(),
            ]);
        }
        server_args.extend(extra_server_args.iter().cloned());
        nodes.insert(
            0,
            Node::new("server", Role::Server, server_port, server_args, dir),
        );
        let mut c = Self {
            mode,
            dir: dir.to_path_buf(),
            nodes,
            proxies,
        };
        for n in c.nodes.iter_mut().skip(1) {
            n.start()?;
        }
        if mode == Mode::Cluster {
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.txlog_leader().is_none() {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "the txlog group elected no leader within 30 s\n{}",
                    c.nodes[1].log_tail()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        c.nodes[0].start()?;
        if let Err(e) = c.wait_ready(Duration::from_secs(30)) {
            let running = c.nodes[0].process.as_mut().is_some_and(|p| p.is_running());
            anyhow::bail!(
                "memlog server did not come up ({e}; running: {running}){}\n{}",
                if mode == Mode::Cluster {
                    " -- cluster mode needs the durable write path (`memlog server --txlog`)"
                } else {
                    ""
                },
                c.nodes[0].log_tail()
            );
        }
        Ok(c)
    }

    /// The port clients connect to (the client proxy).
    pub fn client_port(&self) -> u16 {
        self.proxy(Link::ClientServer).map(|p| p.port).unwrap_or(0)
    }

    pub fn proxy(&self, link: Link) -> Option<&Proxy> {
        self.proxies
            .iter()
            .find(|(l, _)| *l == link)
            .map(|(_, p)| p)
    }

    /// Waits until the server answers PING through the client proxy.
    pub fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while wait_for_port(self.nodes[0].port, Duration::from_millis(200)).is_err() {
            let alive = self.nodes[0]
                .process
                .as_mut()
                .is_some_and(|p| p.is_running());
            anyhow::ensure!(alive, "the server exited");
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server did not listen within {timeout:?}"
            );
        }
        loop {
            let ok = RawConn::connect_timeout(self.client_port(), Duration::from_secs(1))
                .and_then(|mut c| c.call(&["PING"]))
                .map(|r| !r.is_error())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            anyhow::ensure!(Instant::now() < deadline, "no PONG within {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The txlog leader's node id, asked with `memlog txlog status` through
    /// the peers' proxies (None if no answer within 3 s).
    pub fn txlog_leader(&self) -> Option<u64> {
        let addrs: Vec<String> = self
            .proxies
            .iter()
            .filter(|(l, _)| matches!(l, Link::PeersTxlog(_)))
            .map(|(_, p)| p.addr())
            .collect();
        if addrs.is_empty() {
            return None;
        }
        let out = run_with_timeout(
            Command::new(memlog_bin())
                .args(["txlog", "status", "--addr"])
                .arg(addrs.join(",")),
            Duration::from_secs(3),
        )?;
        let line = out.lines().find(|l| l.starts_with("leader:"))?;
        line.trim_start_matches("leader:")
            .split_whitespace()
            .next()?
            .parse()
            .ok()
            .filter(|id| *id > 0)
    }

    /// Heals every fault: links pass, paused processes resume, dead ones
    /// restart.
    pub fn heal(&mut self) -> anyhow::Result<()> {
        for (_, p) in &self.proxies {
            p.set(LinkMode::Pass);
        }
        for n in self.nodes.iter_mut() {
            n.resume()?;
            let dead = n.process.as_mut().is_none_or(|p| !p.is_running());
            if dead {
                n.process = None;
                n.start()?;
            }
        }
        Ok(())
    }

    pub fn stop(&mut self) {
        for n in self.nodes.iter_mut() {
            n.kill();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` to completion or kills it (by PID) after `timeout`; its stdout
/// if it exited 0.
fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Option<String> {
    use std::io::Read;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut s = String::new();
                child.stdout.take()?.read_to_string(&mut s).ok()?;
                return status.success().then_some(s);
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}
