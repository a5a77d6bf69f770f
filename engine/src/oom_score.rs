//! `oom-score-adj` and `oom-score-adj-values`: how readily the kernel's OOM
//! killer picks the server and its snapshot child, set through
//! `/proc/self/oom_score_adj` as Redis sets them (the first value is the
//! primary's, the third a forked child's). Not on the write path: it only
//! decides which process a machine out of memory kills first, and a
//! killed snapshot child costs a retry, not data.

use std::io::{Read, Write};

const PROC_FILE: &str = "/proc/self/oom_score_adj";

/// The score memlog set, and the process' own from before it did.
#[derive(Debug, Default)]
pub struct OomScore {
    /// The score the process started with, read when memlog first changed
    /// it: `relative` values add to it, and `no` puts it back.
    base: Option<i32>,
    /// What a snapshot child sets for itself; `None` keeps the parent's.
    pub child: Option<i32>,
}

impl OomScore {
    /// Applies `oom-score-adj` (`no`, `yes`/`relative`, `absolute`) with
    /// `oom-score-adj-values` (three numbers, validated by CONFIG SET).
    pub fn apply(&mut self, mode: &str, values: &str) -> std::io::Result<()> {
        let values: Vec<i32> = values
            .split(' ')
            .map(|v| v.parse().unwrap_or(0))
            .chain(std::iter::repeat(0))
            .take(3)
            .collect();
        let own = if mode == "no" {
            self.child = None;
            match self.base.take() {
                Some(base) => base,
                // Never changed: nothing to put back.
                None => return Ok(()),
            }
        } else {
            let base = match self.base {
                Some(b) => b,
                None => {
                    let b = read_own()?;
                    self.base = Some(b);
                    b
                }
            };
            let from = if mode == "absolute" { 0 } else { base };
            let score = |v: i32| (from + v).clamp(-1000, 1000);
            self.child = Some(score(values[2]));
            score(values[0])
        };
        write_own(own)
    }
}

fn read_own() -> std::io::Result<i32> {
    let mut s = String::new();
    std::fs::File::open(PROC_FILE)?.read_to_string(&mut s)?;
    s.trim()
        .parse()
        .map_err(|_| std::io::Error::other(format!("{PROC_FILE} holds '{}'", s.trim())))
}

/// Sets this process' score (lowering it below what it started with
/// takes CAP_SYS_RESOURCE, as for Redis).
pub fn write_own(score: i32) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(PROC_FILE)?
        .write_all(format!("{score}\n").as_bytes())
}
