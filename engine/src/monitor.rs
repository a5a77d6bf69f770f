//! MONITOR: clients that see every command the server runs, as Redis 7.0
//! shows them (`+<unix time> [<db> <peer>] "arg" ...`).
//!
//! A command is shown once it has run, before the log acknowledges a write
//! (the monitor sees execution, not durability: a write whose append fails
//! was shown all the same). Administrative commands are not shown, and
//! passwords are redacted.

use bytes::Bytes;

use crate::client::{ClientState, Push};
use crate::keyspace::ClientId;

/// The monitoring clients, in the order they started.
#[derive(Debug, Default)]
pub struct Monitors {
    ids: Vec<ClientId>,
}

impl Monitors {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn add(&mut self, id: ClientId) {
        if !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    pub fn remove(&mut self, id: ClientId) {
        self.ids.retain(|&m| m != id);
    }

    /// Sends `argv`, run by `by` in database `db`, to every monitor (`by`
    /// itself is out of `clients` while its command runs).
    pub fn feed(
        &self,
        by: &ClientState,
        db: usize,
        argv: &[Bytes],
        clients: &std::collections::HashMap<ClientId, ClientState>,
    ) {
        let line = line(std::time::SystemTime::now(), db, &by.addr, argv);
        for id in &self.ids {
            let c = if *id == by.id {
                Some(by)
            } else {
                clients.get(id)
            };
            if let Some(c) = c {
                c.push(Push::Raw(line.clone()));
            }
        }
    }
}

/// Whether a command is administrative, which MONITOR does not show. For
/// container commands it depends on the subcommand, as in Redis 7.0's
/// subcommand table.
pub fn is_admin(spec: &crate::command::CommandSpec, argv: &[Bytes]) -> bool {
    let sub_in = |subs: &[&str]| {
        argv.get(1)
            .is_some_and(|a| subs.iter().any(|s| a.eq_ignore_ascii_case(s.as_bytes())))
    };
    match spec.name {
        "client" => sub_in(&["kill", "list", "no-evict", "pause", "unblock", "unpause"]),
        "acl" => !sub_in(&["cat", "whoami", "genpass", "help"]),
        _ => spec.flags & crate::command::flags::ADMIN != 0,
    }
}

/// One MONITOR line, a status reply.
fn line(at: std::time::SystemTime, db: usize, peer: &str, argv: &[Bytes]) -> Vec<u8> {
    let t = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let mut s = format!("+{}.{:06} [{db} {peer}]", t.as_secs(), t.subsec_micros()).into_bytes();
    let secret = crate::redact::secret_args(argv);
    for (i, a) in argv.iter().enumerate() {
        s.push(b' ');
        if secret.contains(&i) {
            repr(&mut s, b"(redacted)");
        } else {
            repr(&mut s, a);
        }
    }
    s.extend_from_slice(b"\r\n");
    s
}

/// Redis' sdscatrepr: a quoted string with C escapes.
fn repr(out: &mut Vec<u8>, a: &[u8]) {
    out.push(b'"');
    for &c in a {
        match c {
            b'\\' | b'"' => out.extend_from_slice(&[b'\\', c]),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x20..=0x7e => out.push(c),
            _ => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_redis() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_339_518_083_107_412);
        let argv: Vec<Bytes> = ["set", "k\"\\", "a\r\n\t\x07\x08\x01\u{ff}", "AUTH"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        let l = line(at, 3, "127.0.0.1:6000", &argv);
        assert_eq!(
            String::from_utf8_lossy(&l),
            "+1339518083.107412 [3 127.0.0.1:6000] \"set\" \"k\\\"\\\\\" \"a\\r\\n\\t\\a\\b\\x01\\xc3\\xbf\" \"AUTH\"\r\n"
        );
        let auth: Vec<Bytes> = ["auth", "pw"].iter().map(|s| Bytes::from(*s)).collect();
        let l = line(at, 0, "p", &auth);
        assert!(String::from_utf8_lossy(&l).ends_with("\"auth\" \"(redacted)\"\r\n"));
    }
}
