//! A fault-injecting TCP proxy, one per link, listening on 127.0.0.1.
//!
//! Modes: `pass` forwards bytes; `drop` closes every connection on the link
//! and accepts-then-closes new ones (a refused/reset link); `blackhole`
//! keeps connections open but discards every byte in both directions (a
//! silent partition: peers see timeouts, not errors); `delay(ms)` holds each
//! chunk for that long before forwarding it.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkMode {
    Pass,
    Drop,
    BlackHole,
    Delay(u64),
}

impl std::fmt::Display for LinkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkMode::Pass => write!(f, "pass"),
            LinkMode::Drop => write!(f, "drop"),
            LinkMode::BlackHole => write!(f, "blackhole"),
            LinkMode::Delay(ms) => write!(f, "delay{ms}ms"),
        }
    }
}

/// One proxied link: connections to `port` are forwarded to `target`.
pub struct Proxy {
    pub name: String,
    pub port: u16,
    pub target: SocketAddr,
    mode: watch::Sender<LinkMode>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Binds 127.0.0.1:0 and starts forwarding to 127.0.0.1:`target_port` on
    /// `rt`.
    pub fn start(
        rt: &tokio::runtime::Handle,
        name: &str,
        target_port: u16,
    ) -> anyhow::Result<Self> {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let port = std_listener.local_addr()?.port();
        let target: SocketAddr = ([127, 0, 0, 1], target_port).into();
        let (tx, rx) = watch::channel(LinkMode::Pass);
        let listener = {
            let _g = rt.enter();
            TcpListener::from_std(std_listener)?
        };
        let task = rt.spawn(accept_loop(listener, target, rx));
        Ok(Self {
            name: name.to_string(),
            port,
            target,
            mode: tx,
            task,
        })
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn set(&self, mode: LinkMode) {
        self.mode.send_replace(mode);
    }

    pub fn mode(&self) -> LinkMode {
        *self.mode.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.mode.send_replace(LinkMode::Drop);
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, rx: watch::Receiver<LinkMode>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if *rx.borrow() == LinkMode::Drop {
            drop(inbound);
            continue;
        }
        tokio::spawn(serve(inbound, target, rx.clone()));
    }
}

async fn serve(inbound: TcpStream, target: SocketAddr, rx: watch::Receiver<LinkMode>) {
    let outbound =
        match tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(target)).await {
            Ok(Ok(s)) => s,
            _ => return,
        };
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (ir, iw) = inbound.into_split();
    let (or, ow) = outbound.into_split();
    let a = tokio::spawn(pump(ir, ow, rx.clone()));
    let b = tokio::spawn(pump(or, iw, rx));
    let _ = a.await;
    let _ = b.await;
}

async fn pump(mut r: OwnedReadHalf, mut w: OwnedWriteHalf, mut rx: watch::Receiver<LinkMode>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        tokio::select! {
            res = r.read(&mut buf) => {
                let n = match res {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mode = *rx.borrow();
                match mode {
                    LinkMode::Pass => {
                        if w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    LinkMode::Delay(ms) => {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        if w.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    LinkMode::BlackHole => {}
                    LinkMode::Drop => return,
                }
            }
            changed = rx.changed() => {
                if changed.is_err() || *rx.borrow() == LinkMode::Drop {
                    // Dropping both halves' owners closes the sockets.
                    return;
                }
            }
        }
    }
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn pass_blackhole_drop() {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        // An echo server.
        let echo = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let eport = echo.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            for s in echo.incoming() {
                let Ok(mut s) = s else { break };
                std::thread::spawn(move || {
                    let mut b = [0u8; 64];
                    while let Ok(n) = s.read(&mut b) {
                        if n == 0 || s.write_all(&b[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let p = Proxy::start(rt.handle(), "t", eport).expect("proxy");
        let mut c = std::net::TcpStream::connect(p.addr()).expect("connect");
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut b = [0u8; 5];
        c.write_all(b"hello").expect("write");
        c.read_exact(&mut b).expect("echo");
        assert_eq!(&b, b"hello");
        p.set(LinkMode::BlackHole);
        c.write_all(b"again").expect("write");
        assert!(c.read_exact(&mut b).is_err(), "black hole forwards nothing");
        p.set(LinkMode::Drop);
        std::thread::sleep(Duration::from_millis(100));
        let mut rest = Vec::new();
        let r = c.read_to_end(&mut rest);
        assert!(matches!(r, Ok(0)) || r.is_err(), "dropped: {r:?}");
        p.set(LinkMode::Pass);
        let mut c = std::net::TcpStream::connect(p.addr()).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        c.write_all(b"hello").expect("write");
        c.read_exact(&mut b).expect("echo after heal");
    }
}
