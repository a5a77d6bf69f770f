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
    // Group commit: the 5000 writes went to the log in fewer appends.
    let mut c = RawConn::connect(server.port).expect("connect");
    let RespValue::Bulk(info) = c.call(&["INFO", "persistence"]).expect("info") else {
        panic!("INFO failed");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in {info}"))
    };
    let (appends, records) = (field("memlog_log_appends:"), field("memlog_log_records:"));
    assert_eq!(field("memlog_durable:"), 1);
    assert_eq!(records, 5000);
    assert!(appends < records, "{appends} appends for {records} records");
    eprintln!("{records} records in {appends} appends");
}
