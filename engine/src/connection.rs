//! One client connection: read bytes, parse commands, execute them in
//! batches on the engine, write replies in order, deliver pub/sub pushes,
//! and wait (without holding the engine) while a blocking command blocks.

use std::collections::VecDeque;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::client::Push;
use crate::engine::{BatchOutcome, BlockedWait};
use crate::keyspace::ClientId;
use crate::resp::{ParseLimits, ReplyBuf, RequestParser};
use crate::server::SharedEngine;

const READ_CHUNK: usize = 16 * 1024;

fn encode_push(out: &mut ReplyBuf, p: Push) -> bool {
    match p {
        Push::Message {
            pattern: None,
            channel,
            payload,
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
        } => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(&pat);
            out.bulk(&channel);
            out.bulk(&payload);
            true
        }
        Push::Kill => false,
    }
}

/// Serves one client until it disconnects, QUITs or is killed.
pub async fn handle(
    stream: TcpStream,
    peer: SocketAddr,
    engine: SharedEngine,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let local = stream.local_addr()?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (id, mut limits) = {
        let mut e = engine.lock();
        let id = e.register_client(Some(tx), peer.to_string(), local.to_string());
        (id, parse_limits(&e, id))
    };
    let mut conn = Connection {
        stream,
        engine: engine.clone(),
        id,
        inbuf: BytesMut::with_capacity(READ_CHUNK),
        out: ReplyBuf::new(false),
    };
    let r = conn.serve(&mut rx, &mut limits).await;
    engine.lock().unregister_client(id);
    r
}

fn parse_limits(e: &crate::engine::Engine, id: ClientId) -> ParseLimits {
    ParseLimits {
        proto_max_bulk_len: e.srv.config.get_i64("proto-max-bulk-len").max(0) as u64,
        unauthenticated: e.auth_required(id),
    }
}

struct Connection {
    stream: TcpStream,
    engine: SharedEngine,
    id: ClientId,
    inbuf: BytesMut,
    out: ReplyBuf,
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
                    break;
                }
            }
            while !pending.is_empty() {
                let outcome = {
                    let mut e = self.engine.lock();
                    let o = e.execute_batch(self.id, &mut pending, &mut self.out);
                    *limits = parse_limits(&e, self.id);
                    o
                };
                match outcome {
                    BatchOutcome::Done => {}
                    BatchOutcome::Close => {
                        self.flush().await?;
                        return Ok(());
                    }
                    BatchOutcome::Blocked(wait) => {
                        self.flush().await?;
                        if !self.wait_blocked(wait, rx).await? {
                            return Ok(());
                        }
                    }
                }
            }
            if let Some(e) = protocol_error {
                self.out.error(&format!("ERR {e}"));
                self.flush().await?;
                return Ok(());
            }
            if limits.unauthenticated && !self.inbuf.is_empty() && !parser.in_progress() {
                continue;
            }
            self.flush().await?;
            if self.inbuf.capacity() - self.inbuf.len() < 1024 {
                self.inbuf.reserve(READ_CHUNK);
            }
            tokio::select! {
                n = self.stream.read_buf(&mut self.inbuf) => {
                    if n? == 0 {
                        return Ok(());
                    }
                }
                p = rx.recv() => {
                    let Some(p) = p else { return Ok(()) };
                    if !encode_push(&mut self.out, p) {
                        return Ok(());
                    }
                    while let Ok(p) = rx.try_recv() {
                        if !encode_push(&mut self.out, p) {
                            self.flush().await?;
                            return Ok(());
                        }
                    }
                }
            }
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
                    if let Ok(reply) = r {
                        self.out.raw(&reply);
                    }
                    break;
                }
                _ = sleep => {
                    let timed_out = self.engine.lock().cancel_block(self.id);
                    match timed_out {
                        Some(t) => t.write(&mut self.out),
                        // Served at the same moment: the reply is in the channel.
                        None => {
                            if let Ok(reply) = wait.reply.try_recv() {
                                self.out.raw(&reply);
                            }
                        }
                    }
                    break;
                }
                n = self.stream.read_buf(&mut self.inbuf) => {
                    if n? == 0 {
                        return Ok(false);
                    }
                }
                p = rx.recv() => {
                    match p {
                        None | Some(Push::Kill) => return Ok(false),
                        Some(p) => held_pushes.push(p),
                    }
                }
            }
        }
        for p in held_pushes {
            encode_push(&mut self.out, p);
        }
        Ok(true)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.buf.is_empty() {
            self.stream.write_all(&self.out.buf).await?;
            self.out.buf.clear();
            // Give back memory after a huge reply.
            if self.out.buf.capacity() > 1 << 20 {
                self.out.buf.shrink_to(64 * 1024);
            }
        }
        Ok(())
    }
}
