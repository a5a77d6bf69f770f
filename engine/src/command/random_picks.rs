//! The replies of SRANDMEMBER, HRANDFIELD and ZRANDMEMBER with a negative
//! count: random picks with repetitions, as many as the count asks for,
//! whatever the key holds. That makes them the replies a client can make as
//! large as it likes without data to match, and a reply is built whole on
//! the engine thread before any of it is written: Redis 7 runs out of memory
//! on `SRANDMEMBER s -9223372036854775807` (its normal clients have no
//! output buffer limit), and memlog would stall every client while it grew.
//! So the reply is bounded by `proto-max-bulk-len` (the most one argument
//! may carry, 512 MB by default): its size is projected from the first
//! picks and checked as it grows, and past the bound the command answers an
//! error instead, its partial reply dropped.

use crate::engine::ServerState;
use crate::error::CmdError;
use crate::resp::ReplyBuf;

/// Picks whose size projects the whole reply's.
const SAMPLE: usize = 32;
/// The reply's size is checked again every this many picks (picks differ
/// in size).
const CHECK_EVERY: usize = 1024;

/// The most bytes such a reply may take: `proto-max-bulk-len`.
pub(super) fn limit(srv: &ServerState) -> u64 {
    srv.config.get_i64("proto-max-bulk-len").max(0) as u64
}

/// Writes `header`, then `n` picks by `pick`, unless the reply would grow
/// past `limit` bytes: then nothing stays written and the error says why.
pub(super) fn with_repetitions(
    out: &mut ReplyBuf,
    n: usize,
    limit: u64,
    header: impl FnOnce(&mut ReplyBuf),
    mut pick: impl FnMut(&mut ReplyBuf),
) -> Result<(), CmdError> {
    let mark = out.len();
    header(out);
    let body = out.len();
    for done in 1..=n {
        pick(out);
        let projected = if done == SAMPLE {
            let per_pick = (out.len() - body) as u128 / done as u128;
            (body - mark) as u128 + per_pick * n as u128
        } else if done % CHECK_EVERY == 0 {
            (out.len() - mark) as u128
        } else {
            continue;
        };
        if projected > u128::from(limit) {
            out.buf.truncate(mark);
            return Err(too_large(limit));
        }
    }
    Ok(())
}

fn too_large(limit: u64) -> CmdError {
    CmdError::err(format!(
        "reply too large: the count asks for more than proto-max-bulk-len ({limit} bytes) of random picks"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(n: usize, limit: u64) -> (Result<(), CmdError>, ReplyBuf, usize) {
        let mut out = ReplyBuf::new(false);
        out.simple("before");
        let mut made = 0;
        let r = with_repetitions(
            &mut out,
            n,
            limit,
            |o| o.array(n),
            |o| {
                made += 1;
                o.bulk(b"0123456789");
            },
        );
        (r, out, made)
    }

    #[test]
    fn a_reply_within_the_limit_is_written_whole() {
        let (r, out, made) = picks(5000, 1 << 20);
        assert!(r.is_ok());
        assert_eq!(made, 5000);
        let text = String::from_utf8(out.buf).expect("ascii");
        assert!(text.starts_with("+before\r\n*5000\r\n$10\r\n0123456789\r\n"));
        assert_eq!(text.matches("0123456789").count(), 5000);
    }

    #[test]
    fn a_huge_count_is_refused_after_the_sample() {
        let (r, out, made) = picks(usize::MAX, 512 << 20);
        let e = r.expect_err("too large").to_string();
        assert!(e.starts_with("ERR reply too large"), "{e}");
        assert_eq!(made, SAMPLE);
        assert_eq!(out.buf, b"+before\r\n");
    }

    #[test]
    fn a_reply_that_grows_past_the_limit_is_dropped() {
        // 16 bytes a pick: 100,000 picks are 1.6 MB; the limit is 1 MB.
        let (r, out, made) = picks(100_000, 1 << 20);
        assert!(r.is_err());
        assert_eq!(made, SAMPLE);
        assert_eq!(out.buf, b"+before\r\n");
        // Projected within, written past: caught by the running check.
        let mut out = ReplyBuf::new(false);
        let mut made = 0;
        let r = with_repetitions(
            &mut out,
            100_000,
            1 << 20,
            |o| o.array(100_000),
            |o| {
                made += 1;
                let big = if made > SAMPLE { 100 } else { 1 };
                o.bulk(&vec![b'x'; big]);
            },
        );
        assert!(r.is_err());
        assert!(made < 100_000 && made % CHECK_EVERY == 0, "{made}");
        assert!(out.buf.is_empty());
    }
}
