//! Property tests of the request parser: arbitrary bytes never panic or
//! allocate past the limits, and any command survives encoding, arbitrary
//! splitting across reads, and parsing.

use bytes::{Bytes, BytesMut};
use memlog_engine::resp::{ParseLimits, RequestParser};
use proptest::prelude::*;

fn limits() -> ParseLimits {
    ParseLimits {
        proto_max_bulk_len: 1024 * 1024,
        unauthenticated: false,
        max_query_bytes: 1 << 30,
    }
}

fn encode(argv: &[Vec<u8>]) -> Vec<u8> {
    let mut b = format!("*{}\r\n", argv.len()).into_bytes();
    for a in argv {
        b.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        b.extend_from_slice(a);
        b.extend_from_slice(b"\r\n");
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), split in 1usize..64) {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        'outer: for chunk in data.chunks(split) {
            buf.extend_from_slice(chunk);
            loop {
                match p.parse(&mut buf, &limits()) {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
            // Nothing is buffered beyond what was received plus a bounded reservation.
            prop_assert!(buf.capacity() <= data.len() + 2 * 1024 * 1024);
        }
    }

    #[test]
    fn encoded_commands_round_trip(
        cmds in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6), 1..8),
        split in 1usize..50,
    ) {
        let mut wire = Vec::new();
        for c in &cmds {
            wire.extend(encode(c));
        }
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut got: Vec<Vec<Bytes>> = Vec::new();
        for chunk in wire.chunks(split) {
            buf.extend_from_slice(chunk);
            while let Some(cmd) = p.parse(&mut buf, &limits()).expect("valid RESP parses") {
                got.push(cmd);
            }
        }
        let want: Vec<Vec<Bytes>> = cmds.iter().map(|c| c.iter().map(|a| Bytes::from(a.clone())).collect()).collect();
        prop_assert_eq!(got, want);
    }
}

#[test]
fn oversized_bulk_is_refused_before_buffering() {
    let mut p = RequestParser::new();
    let mut buf = BytesMut::from(&b"*1\r\n$2000000\r\n"[..]);
    let err = p.parse(&mut buf, &limits()).unwrap_err();
    assert_eq!(err.to_string(), "Protocol error: invalid bulk length");
    assert!(buf.capacity() < 1024 * 1024);
}

#[test]
fn huge_multibulk_count_does_not_preallocate() {
    let mut p = RequestParser::new();
    let mut buf = BytesMut::from(&b"*2000000000\r\n$1\r\na\r\n"[..]);
    assert!(p.parse(&mut buf, &limits()).unwrap().is_none());
}
