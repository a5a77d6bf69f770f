//! SLOWLOG: the commands whose execution took at least
//! `slowlog-log-slower-than` microseconds, newest first, at most
//! `slowlog-max-len` of them, as Redis 7.0 keeps them.
//!
//! It times the engine's own work on a command (`Engine::call`), which is
//! what a slow command costs every other client; the wait for the log to
//! commit a write is not part of it (it holds up only that client's reply;
//! memlog's per-command latency metrics cover it). Arguments that carry
//! secrets (AUTH, HELLO AUTH, ACL SETUSER, CONFIG SET requirepass) are
//! logged as `(redacted)`, as Redis does.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::resp::ReplyBuf;

/// Redis' SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING.
const MAX_ARGC: usize = 32;
const MAX_STRING: usize = 128;

#[derive(Debug)]
struct Entry {
    id: u64,
    unix_s: i64,
    duration_us: u64,
    args: Vec<Bytes>,
    peer: String,
    name: Bytes,
}

#[derive(Debug)]
pub struct SlowLog {
    entries: VecDeque<Entry>,
    next_id: u64,
    /// `slowlog-log-slower-than` (negative: off).
    slower_than_us: i64,
    /// `slowlog-max-len`.
    max_len: usize,
}

impl Default for SlowLog {
    fn default() -> Self {
        Self {
            entries: VecDeque::new(),
            next_id: 0,
            slower_than_us: 10_000,
            max_len: 128,
        }
    }
}

impl SlowLog {
    /// Applies `slowlog-log-slower-than` and `slowlog-max-len`.
    pub fn configure(&mut self, slower_than_us: i64, max_len: i64) {
        self.slower_than_us = slower_than_us;
        self.max_len = usize::try_from(max_len).unwrap_or(0);
    }

    /// Whether a command that took `us` goes into the log (cheap: checked
    /// after every command).
    pub fn wants(&self, us: u64) -> bool {
        self.slower_than_us >= 0 && us >= self.slower_than_us as u64
    }

    /// Logs `argv` (already known to be slow enough), trimmed and redacted.
    pub fn push(&mut self, argv: &[Bytes], us: u64, peer: &str, name: Option<&Bytes>, unix_s: i64) {
        let secret = crate::redact::secret_args(argv);
        let kept = argv.len().min(MAX_ARGC);
        let mut args = Vec::with_capacity(kept);
        for (j, a) in argv.iter().take(kept).enumerate() {
            if kept != argv.len() && j == kept - 1 {
                let more = argv.len() - kept + 1;
                args.push(Bytes::from(format!("... ({more} more arguments)")));
            } else if secret.contains(&j) {
                args.push(Bytes::from_static(b"(redacted)"));
            } else if a.len() > MAX_STRING {
                let mut s = a[..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                args.push(Bytes::from(s));
            } else {
                args.push(a.clone());
            }
        }
        self.entries.push_front(Entry {
            id: self.next_id,
            unix_s,
            duration_us: us,
            args,
            peer: peer.to_string(),
            name: name.cloned().unwrap_or_default(),
        });
        self.next_id += 1;
        self.entries.truncate(self.max_len);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// SLOWLOG GET: the newest `count` entries (-1: all).
    pub fn write(&self, out: &mut ReplyBuf, count: i64) {
        let n = usize::try_from(count).map_or(self.entries.len(), |c| c.min(self.entries.len()));
        out.array(n);
        for e in self.entries.iter().take(n) {
            out.array(6);
            out.int(e.id as i64);
            out.int(e.unix_s);
            out.int(e.duration_us as i64);
            out.array(e.args.len());
            for a in &e.args {
                out.bulk(a);
            }
            out.bulk_str(&e.peer);
            out.bulk(&e.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    fn logged(log: &SlowLog) -> Vec<Vec<String>> {
        log.entries
            .iter()
            .map(|e| {
                e.args
                    .iter()
                    .map(|a| String::from_utf8_lossy(a).into())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn keeps_the_newest_up_to_max_len() {
        let mut log = SlowLog::default();
        log.configure(0, 2);
        assert!(log.wants(0));
        for i in 0..5 {
            log.push(&argv(&["incr", &i.to_string()]), 1, "p", None, 0);
        }
        assert_eq!(logged(&log), vec![vec!["incr", "4"], vec!["incr", "3"]]);
        assert_eq!(log.entries[0].id, 4);
        log.configure(-1, 2);
        assert!(!log.wants(u64::MAX));
    }

    #[test]
    fn trims_and_redacts() {
        let mut log = SlowLog::default();
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let mut words = vec!["sadd"];
        words.extend(many.iter().map(String::as_str));
        log.push(&argv(&words), 1, "p", None, 0);
        let e = &logged(&log)[0];
        assert_eq!(e.len(), 32);
        assert_eq!(e[31], "... (10 more arguments)");
        let long = "A".repeat(130);
        log.push(&argv(&["set", "k", &long]), 1, "p", None, 0);
        assert_eq!(
            logged(&log)[0][2],
            format!("{}... (2 more bytes)", &long[..128])
        );
        for (cmd, want) in [
            (
                &["auth", "u", "p"][..],
                &["auth", "(redacted)", "(redacted)"][..],
            ),
            (
                &["hello", "3", "AUTH", "u", "p", "SETNAME", "n"],
                &[
                    "hello",
                    "3",
                    "AUTH",
                    "(redacted)",
                    "(redacted)",
                    "SETNAME",
                    "n",
                ],
            ),
            (
                &["acl", "setuser", "x", "on"],
                &["acl", "setuser", "(redacted)", "(redacted)"],
            ),
            (
                &["config", "set", "maxmemory", "1", "requirepass", "s"],
                &[
                    "config",
                    "set",
                    "maxmemory",
                    "1",
                    "requirepass",
                    "(redacted)",
                ],
            ),
        ] {
            log.push(&argv(cmd), 1, "p", None, 0);
            assert_eq!(logged(&log)[0], want.to_vec());
        }
    }
}
