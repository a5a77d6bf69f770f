//! Incremental request parser.
//!
//! Clients send either RESP multibulk (`*N\r\n$L\r\n...`) or inline commands
//! (`SET k v\r\n`, as typed into telnet). The parser is resumable: a partly
//! received multibulk keeps its progress, so a large pipeline or a huge
//! argument is scanned once, however many reads it arrives in. Errors carry
//! Redis 7's exact text; after one the connection answers it and closes.
//!
//! Allocation is bounded by the limits: a declared bulk length above
//! `proto_max_bulk_len` is refused before any byte of it is buffered, and
//! header lines longer than 64 KiB without a newline are refused.

use bytes::{Buf, Bytes, BytesMut};

/// Longest inline request or header line (Redis' PROTO_INLINE_MAX_SIZE).
const INLINE_MAX: usize = 64 * 1024;
/// Arguments at least this big get their buffer space reserved up front.
const BIG_ARG: usize = 32 * 1024;

/// Limits enforced while parsing.
#[derive(Debug, Clone, Copy)]
pub struct ParseLimits {
    pub proto_max_bulk_len: u64,
    /// Before AUTH, Redis caps multibulk count at 10 and bulk length at 16 KiB.
    pub unauthenticated: bool,
    /// `client-query-buffer-limit`: what one command may hold while it is
    /// read (its bytes so far, and its argument list: an empty argument is
    /// 6 bytes on the wire, 16 in the list), past which the client is
    /// closed, as Redis closes one whose query buffer passes it.
    pub max_query_bytes: u64,
}

/// Bytes the argument list takes per argument (see `max_query_bytes`).
const ARG_OVERHEAD: u64 = 16;

/// A protocol violation; the message is Redis' error text without `-ERR `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Protocol error: {0}")]
pub struct ProtocolError(pub String);

#[derive(Debug, Default)]
struct Multibulk {
    remaining: usize,
    /// Byte ranges of the arguments parsed so far, relative to the buffer start.
    args: Vec<(usize, usize)>,
    /// Where parsing resumes.
    pos: usize,
    /// Bulk length announced by the last `$` header whose payload is incomplete.
    pending_bulk: Option<usize>,
}

/// Turns a byte stream into commands (argument vectors).
#[derive(Debug, Default)]
pub struct RequestParser {
    state: Option<Multibulk>,
}

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    memchr_cr(&buf[from..]).map(|i| i + from)
}

fn memchr_cr(s: &[u8]) -> Option<usize> {
    // `\r` followed by `\n` ends a header line.
    let mut i = 0;
    while let Some(off) = s[i..].iter().position(|&b| b == b'\r') {
        let at = i + off;
        if at + 1 < s.len() {
            if s[at + 1] == b'\n' {
                return Some(at);
            }
            i = at + 1;
        } else {
            return None;
        }
    }
    None
}

/// Parses a header integer the way Redis' string2ll does (no spaces, no '+').
fn parse_header_int(s: &[u8]) -> Option<i64> {
    crate::numbers::parse_i64(s)
}

impl RequestParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the next complete command from `buf`, consuming its bytes.
    ///
    /// `Ok(None)`: more bytes are needed. `Ok(Some(argv))` may be empty (an
    /// empty line or `*0`), which callers skip. `Err`: answer and close.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParseLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.state.is_none() {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                return self.parse_inline(buf);
            }
            // Multibulk header.
            let Some(end) = find_crlf(buf, 0) else {
                if buf.len() > INLINE_MAX {
                    return Err(ProtocolError("too big mbulk count string".into()));
                }
                return Ok(None);
            };
            let n = parse_header_int(&buf[1..end]);
            let n = match n {
                Some(n) if n <= i32::MAX as i64 => n,
                _ => return Err(ProtocolError("invalid multibulk length".into())),
            };
            if limits.unauthenticated && n > 10 {
                return Err(ProtocolError("unauthenticated multibulk length".into()));
            }
            if n <= 0 {
                buf.advance(end + 2);
                return Ok(Some(Vec::new()));
            }
            let n = n as usize;
            self.state = Some(Multibulk {
                remaining: n,
                // Cap the up-front reservation: the count is client-controlled.
                args: Vec::with_capacity(n.min(1024)),
                pos: end + 2,
                pending_bulk: None,
            });
        }
        self.parse_multibulk(buf, limits)
    }

    fn parse_multibulk(
        &mut self,
        buf: &mut BytesMut,
        limits: &ParseLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(st) = self.state.as_mut() else {
            return Ok(None);
        };
        while st.remaining > 0 {
            let len = match st.pending_bulk {
                Some(len) => len,
                None => {
                    if st.pos >= buf.len() {
                        return Ok(None);
                    }
                    let Some(end) = find_crlf(buf, st.pos) else {
                        if buf.len() - st.pos > INLINE_MAX {
                            self.state = None;
                            return Err(ProtocolError("too big bulk count string".into()));
                        }
                        return Ok(None);
                    };
                    if buf[st.pos] != b'$' {
                        let c = buf[st.pos] as char;
                        self.state = None;
                        return Err(ProtocolError(format!("expected '$', got '{c}'")));
                    }
                    let ll = parse_header_int(&buf[st.pos + 1..end]);
                    let ll = match ll {
                        Some(ll) if ll >= 0 && (ll as u64) <= limits.proto_max_bulk_len => ll,
                        _ => {
                            self.state = None;
                            return Err(ProtocolError("invalid bulk length".into()));
                        }
                    };
                    if limits.unauthenticated && ll > 16384 {
                        self.state = None;
                        return Err(ProtocolError("unauthenticated bulk length".into()));
                    }
                    st.pos = end + 2;
                    let len = ll as usize;
                    // Checked before anything is reserved for the argument.
                    let held =
                        (st.pos + len + 2) as u64 + ARG_OVERHEAD * (st.args.len() as u64 + 1);
                    if held > limits.max_query_bytes {
                        self.state = None;
                        return Err(ProtocolError("client query buffer limit reached".into()));
                    }
                    if len >= BIG_ARG {
                        let need = (st.pos + len + 2).saturating_sub(buf.len());
                        buf.reserve(need);
                    }
                    st.pending_bulk = Some(len);
                    len
                }
            };
            if buf.len() < st.pos + len + 2 {
                return Ok(None);
            }
            st.args.push((st.pos, st.pos + len));
            st.pos += len + 2;
            st.pending_bulk = None;
            st.remaining -= 1;
        }
        let Some(st) = self.state.take() else {
            return Ok(None);
        };
        let frame = buf.split_to(st.pos).freeze();
        Ok(Some(
            st.args.iter().map(|&(s, e)| frame.slice(s..e)).collect(),
        ))
    }

    fn parse_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            if buf.len() > INLINE_MAX {
                return Err(ProtocolError("too big inline request".into()));
            }
            return Ok(None);
        };
        let mut line_end = nl;
        if line_end > 0 && buf[line_end - 1] == b'\r' {
            line_end -= 1;
        }
        let line = buf.split_to(nl + 1);
        let args = split_args(&line[..line_end])
            .ok_or_else(|| ProtocolError("unbalanced quotes in request".into()))?;
        Ok(Some(args.into_iter().map(Bytes::from).collect()))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Splits an inline line like Redis' sdssplitargs: whitespace separates,
/// "double quotes" take C escapes, 'single quotes' take only \'. A closing
/// quote must be followed by whitespace or the end. `None`: unbalanced.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let mut inq = false;
        let mut insq = false;
        loop {
            if inq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    let h =
                        hex_val(line[i + 2]).unwrap_or(0) * 16 + hex_val(line[i + 3]).unwrap_or(0);
                    cur.push(h);
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if insq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => {
                        i += 1;
                        break;
                    }
                    b'"' => inq = true,
                    b'\'' => insq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ParseLimits {
        ParseLimits {
            proto_max_bulk_len: 512 * 1024 * 1024,
            unauthenticated: false,
            max_query_bytes: 1 << 30,
        }
    }

    /// A command that would hold more than `client-query-buffer-limit`
    /// while it is read is refused: many empty arguments (6 bytes each on
    /// the wire, more in memory) as well as one big one.
    #[test]
    fn query_buffer_limit() {
        let small = ParseLimits {
            max_query_bytes: 4096,
            ..limits()
        };
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2147483647\r\n"[..]);
        let mut refused = false;
        for _ in 0..1000 {
            buf.extend_from_slice(b"$0\r\n\r\n");
            match p.parse(&mut buf, &small) {
                Ok(None) => {}
                Err(e) => {
                    assert_eq!(e.0, "client query buffer limit reached");
                    refused = true;
                    break;
                }
                Ok(Some(cmd)) => panic!("{cmd:?}"),
            }
        }
        assert!(refused, "1000 empty arguments held under 4 KiB");
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nSET\r\n$5000\r\n"[..]);
        assert!(p.parse(&mut buf, &small).is_err());
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"[..]);
        assert!(matches!(p.parse(&mut buf, &small), Ok(Some(_))));
    }

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(cmd) = p.parse(&mut buf, &limits())? {
            out.push(cmd);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline() {
        let cmds = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nSET a \"b c\"\r\n").unwrap();
        assert_eq!(cmds[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(
            cmds[1],
            vec![Bytes::from("SET"), Bytes::from("a"), Bytes::from("b c")]
        );
    }

    #[test]
    fn resumes_across_reads() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$5\r\nworld\r\n";
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        for (i, b) in input.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            let r = p.parse(&mut buf, &limits()).unwrap();
            if i + 1 < input.len() {
                assert!(r.is_none());
            } else {
                assert_eq!(r.unwrap().len(), 3);
            }
        }
    }

    #[test]
    fn redis_error_texts() {
        let e = |s: &[u8]| parse_all(s).unwrap_err().to_string();
        assert_eq!(
            e(b"*3000000000\r\n"),
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            e(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\nfooz\r\n"),
            "Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            e(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$-10\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            e(b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$blabla\r\n"),
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            e(b"set \"\"\"test-key\"\"\" v\r\n"),
            "Protocol error: unbalanced quotes in request"
        );
        assert_eq!(e(&[b'x'; 70000]), "Protocol error: too big inline request");
    }

    #[test]
    fn empty_and_negative_counts_are_skipped() {
        let cmds = parse_all(b"\r\n*-10\r\n*0\r\nPING\r\n").unwrap();
        assert_eq!(cmds.iter().filter(|c| !c.is_empty()).count(), 1);
    }

    #[test]
    fn split_args_escapes() {
        assert_eq!(
            split_args(b"a \"\\x41\\n\" 'it\\'s'").unwrap(),
            vec![b"a".to_vec(), b"A\n".to_vec(), b"it's".to_vec()]
        );
        assert!(split_args(b"\"abc").is_none());
    }
}
