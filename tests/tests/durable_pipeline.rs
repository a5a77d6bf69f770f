//! Durable mode keeps pipelined replies complete and in order.

use std::io::Write;

use memlog_tests::{MemlogServer, RawConn, RespValue};

#[test]
fn ten_thousand_pipelined_mixed_commands_in_order() {
    let server = MemlogServer::start(&[]).expect("server");
    let n = 10_000;
    let mut buf = Vec::new();
    for i in 0..n {
        let cmd: Vec<String> = match i % 4 {
            0 => vec!["SET".into(), format!("k{i}"), format!("v{i}")],
            1 => vec!["GET".into(), format!("k{}", i - 1)],
            2 => vec!["INCR".into(), "ctr".into()],
            _ => vec!["GET".into(), "never-written".into()],
        };
        buf.extend_from_slice(format!("*{}\r\n", cmd.len()).as_bytes());
        for a in &cmd {
            buf.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
    }
    let mut w = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    let mut r = RawConn::from_stream(w.try_clone().expect("clone")).expect("reader");
    // Write from a thread while this one reads, so full socket buffers
    // cannot deadlock the test.
    let writer = std::thread::spawn(move || w.write_all(&buf));
    let mut incr = 0;
    for i in 0..n {
        let v = r.read().expect("reply");
        let want = match i % 4 {
            0 => RespValue::Simple("OK".into()),
            1 => RespValue::Bulk(format!("v{}", i - 1).into_bytes()),
            2 => {
                incr += 1;
                RespValue::Int(incr)
            }
            _ => RespValue::Null,
        };
        assert_eq!(v, want, "reply {i}");
    }
    writer.join().expect("writer").expect("write");
}
