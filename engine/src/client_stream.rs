//! A client's socket: TCP, or the Unix domain socket Redis' `unixsocket`
//! configures. The connection task (crate::connection) reads requests from
//! it and writes replies to it without caring which; only how a client is
//! named (CLIENT LIST's `addr`, `laddr` and flag `U`: `connection::register`)
//! differs.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// A connected client's socket.
#[derive(Debug)]
pub enum ClientStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// A client's socket outside the runtime (accepted by a busy script's hook,
/// crate::busy).
#[derive(Debug)]
pub enum StdClientStream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl ClientStream {
    /// Registers a socket accepted outside the runtime with it.
    pub fn from_std(s: StdClientStream) -> io::Result<Self> {
        match s {
            StdClientStream::Tcp(s) => {
                s.set_nonblocking(true)?;
                TcpStream::from_std(s).map(Self::Tcp)
            }
            StdClientStream::Unix(s) => {
                s.set_nonblocking(true)?;
                UnixStream::from_std(s).map(Self::Unix)
            }
        }
    }

    pub fn is_unix(&self) -> bool {
        matches!(self, ClientStream::Unix(_))
    }
}

impl AsFd for ClientStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            ClientStream::Tcp(s) => s.as_fd(),
            ClientStream::Unix(s) => s.as_fd(),
        }
    }
}

impl StdClientStream {
    /// Takes a socket accepted on a listener of the given kind.
    pub fn from_fd(fd: OwnedFd, unix: bool) -> Self {
        if unix {
            StdClientStream::Unix(fd.into())
        } else {
            StdClientStream::Tcp(fd.into())
        }
    }

    /// Writes what the socket takes now (it does not block).
    pub fn write_now(&self, b: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        match self {
            StdClientStream::Tcp(s) => (&*s).write(b),
            StdClientStream::Unix(s) => (&*s).write(b),
        }
    }
}

impl AsFd for StdClientStream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            StdClientStream::Tcp(s) => s.as_fd(),
            StdClientStream::Unix(s) => s.as_fd(),
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// A listening socket of the server.
#[derive(Debug)]
pub enum ClientListener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl ClientListener {
    pub async fn accept(&self) -> io::Result<ClientStream> {
        match self {
            ClientListener::Tcp(l) => l.accept().await.map(|(s, _)| ClientStream::Tcp(s)),
            ClientListener::Unix(l) => l.accept().await.map(|(s, _)| ClientStream::Unix(s)),
        }
    }
}
