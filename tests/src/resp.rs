//! A small blocking RESP2/RESP3 client that returns replies as values, for
//! differential tests that compare memlog's exact replies (error strings
//! included) with a real redis-server's.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A decoded reply.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RespValue {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    NullArray,
    Array(Vec<RespValue>),
    Map(Vec<(RespValue, RespValue)>),
    Set(Vec<RespValue>),
    Double(String),
    Bool(bool),
    BigNumber(String),
    Verbatim(String, Vec<u8>),
    Push(Vec<RespValue>),
}

impl RespValue {
    /// Sorts every array, set and map recursively, for replies whose order
    /// Redis does not define (SMEMBERS, HGETALL, KEYS, ...).
    pub fn normalized(&self) -> RespValue {
        match self {
            RespValue::Array(v) | RespValue::Set(v) | RespValue::Push(v) => {
                let mut v: Vec<_> = v.iter().map(|x| x.normalized()).collect();
                v.sort();
                RespValue::Array(v)
            }
            RespValue::Map(m) => {
                let mut m: Vec<_> = m
                    .iter()
                    .map(|(k, v)| (k.normalized(), v.normalized()))
                    .collect();
                m.sort();
                RespValue::Map(m)
            }
            other => other.clone(),
        }
    }

    /// Sorts pairs of a flat array ([k1, v1, k2, v2, ...]) by key (HGETALL in RESP2).
    pub fn normalized_pairs(&self) -> RespValue {
        match self {
            RespValue::Array(v) if v.len() % 2 == 0 => {
                let mut pairs: Vec<(RespValue, RespValue)> =
                    v.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
                pairs.sort();
                RespValue::Map(pairs)
            }
            other => other.normalized(),
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            RespValue::Int(n) => Some(*n),
            _ => None,
        }
    }

    pub fn is_error(&self) -> bool {
        matches!(self, RespValue::Error(_))
    }
}

/// One connection speaking raw RESP.
pub struct RawConn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl RawConn {
    pub fn connect(port: u16) -> std::io::Result<Self> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Connects with `timeout` on the connect, on every read and on every write.
    pub fn connect_timeout(port: u16, timeout: Duration) -> std::io::Result<Self> {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let s = TcpStream::connect_timeout(&addr, timeout)?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(timeout))?;
        s.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Wraps a connected stream.
    pub fn from_stream(s: TcpStream) -> std::io::Result<Self> {
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        s.set_nodelay(true)?;
        Ok(Self {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        })
    }

    /// Sends one command as a multibulk.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<()> {
        self.writer.write_all(&encode_command(args))
    }

    /// Sends raw bytes as they are.
    pub fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes)
    }

    /// Sends a command and reads its reply.
    pub fn call<A: AsRef<[u8]>>(&mut self, args: &[A]) -> std::io::Result<RespValue> {
        self.send(args)?;
        self.read()
    }

    /// Reads one reply.
    pub fn read(&mut self) -> std::io::Result<RespValue> {
        read_value(&mut self.reader)
    }
}

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if line.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if !line.ends_with(b"\r\n") {
        return Err(bad("line without CRLF"));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn read_value(r: &mut impl BufRead) -> std::io::Result<RespValue> {
    let line = read_line(r)?;
    let (t, rest) = line.split_at(1);
    let n = || {
        rest.parse::<i64>()
            .map_err(|_| bad(format!("bad length {rest}")))
    };
    Ok(match t {
        "+" => RespValue::Simple(rest.to_string()),
        "-" => RespValue::Error(rest.to_string()),
        ":" => RespValue::Int(n()?),
        "$" => {
            let len = n()?;
            if len < 0 {
                RespValue::Null
            } else {
                let mut b = vec![0; len as usize + 2];
                r.read_exact(&mut b)?;
                b.truncate(len as usize);
                RespValue::Bulk(b)
            }
        }
        "*" | "~" | ">" => {
            let len = n()?;
            if len < 0 {
                return Ok(RespValue::NullArray);
            }
            let mut v = Vec::with_capacity(len as usize);
            for _ in 0..len {
                v.push(read_value(r)?);
            }
            match t {
                "*" => RespValue::Array(v),
                "~" => RespValue::Set(v),
                _ => RespValue::Push(v),
            }
        }
        "%" => {
            let len = n()?;
            let mut m = Vec::with_capacity(len as usize);
            for _ in 0..len {
                let k = read_value(r)?;
                let v = read_value(r)?;
                m.push((k, v));
            }
            RespValue::Map(m)
        }
        "_" => RespValue::Null,
        "," => RespValue::Double(rest.to_string()),
        "#" => RespValue::Bool(rest == "t"),
        "(" => RespValue::BigNumber(rest.to_string()),
        "=" => {
            let len = n()? as usize;
            let mut b = vec![0; len + 2];
            r.read_exact(&mut b)?;
            b.truncate(len);
            let fmt = String::from_utf8_lossy(&b[..3.min(b.len())]).into_owned();
            RespValue::Verbatim(fmt, b[4.min(b.len())..].to_vec())
        }
        _ => return Err(bad(format!("unknown reply type {t}"))),
    })
}

/// `args` as a RESP array of bulk strings, as clients send commands.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut buf = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        buf.extend_from_slice(a);
        buf.extend_from_slice(b"\r\n");
    }
    buf
}
