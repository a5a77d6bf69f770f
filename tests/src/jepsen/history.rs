//! Operations and histories, and their JSON-lines form (one op per line; see
//! docs/jepsen.md for the format).

use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use std::path::Path;

/// Which data type (and checker model) an operation belongs to.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Register,
    Counter,
    List,
    /// A fault injected by the nemesis (not checked, shown for context).
    Nemesis,
}

/// What an operation does.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum F {
    /// GET (register, counter) or LRANGE 0 -1 (list).
    Read,
    /// SET key v.
    Write,
    /// Compare-and-set: arg = [old, new] (WATCH/GET/MULTI/SET/EXEC).
    Cas,
    /// INCRBY key d: arg = [d], result = the new value.
    Incr,
    /// MULTI / RPUSH key v / EXEC: arg = [v].
    Append,
    /// A nemesis event; `note` says what.
    Nemesis,
}

/// The outcome of an operation.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// Completed and took effect.
    Ok,
    /// Definitely did not take effect (WRONGTYPE, EXECABORT, nil EXEC, CAS
    /// comparison failed, connection refused before sending).
    Fail,
    /// Unknown: sent, but no answer (timeout, reset, -TRYAGAIN...). Writes may
    /// or may not have taken effect; the checker gives them an infinite
    /// completion time.
    Info,
}

/// A value an operation observed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash, Default)]
#[serde(untagged)]
pub enum Res {
    /// No result, or a register read of a missing key.
    #[default]
    Nil,
    Int(i64),
    List(Vec<i64>),
}

/// One operation: invocation and completion in one record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Op {
    /// Position in the history file.
    pub index: usize,
    /// Client number; -1 for the nemesis, -2 for the final reads.
    pub process: i64,
    pub model: ModelKind,
    pub f: F,
    pub key: String,
    /// Arguments (see [`F`]).
    #[serde(default)]
    pub arg: Vec<i64>,
    /// What a read or INCRBY returned.
    #[serde(default)]
    pub result: Res,
    #[serde(rename = "type")]
    pub kind: OpType,
    /// Nanoseconds since the start of the run.
    pub invoke_ns: u64,
    /// None for info operations (completion unknown).
    pub complete_ns: Option<u64>,
    /// Error text or nemesis description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Op {
    /// A short readable form, e.g. `p3 cas [1, 2] ok`.
    pub fn describe(&self) -> String {
        let what = match (self.model, self.f) {
            (_, F::Read) => format!("read -> {}", show_res(&self.result)),
            (_, F::Write) => format!("write {}", self.arg.first().copied().unwrap_or(0)),
            (_, F::Cas) => format!(
                "cas {} -> {}",
                self.arg.first().copied().unwrap_or(0),
                self.arg.get(1).copied().unwrap_or(0)
            ),
            (_, F::Incr) => format!(
                "incrby {} -> {}",
                self.arg.first().copied().unwrap_or(0),
                show_res(&self.result)
            ),
            (_, F::Append) => format!("append {}", self.arg.first().copied().unwrap_or(0)),
            (_, F::Nemesis) => format!("nemesis {}", self.note.as_deref().unwrap_or("")),
        };
        let kind = match self.kind {
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        };
        let end = match self.complete_ns {
            Some(c) => format!("{:.3}s", c as f64 / 1e9),
            None => "?".to_string(),
        };
        let note = match (&self.note, self.f) {
            (Some(n), f) if f != F::Nemesis => format!(" ({n})"),
            _ => String::new(),
        };
        format!(
            "[{:>9.3}s .. {:>9}] p{:<3} {:<8} {} {}{}",
            self.invoke_ns as f64 / 1e9,
            end,
            self.process,
            self.key,
            what,
            kind,
            note
        )
    }
}

fn show_res(r: &Res) -> String {
    match r {
        Res::Nil => "nil".into(),
        Res::Int(i) => i.to_string(),
        Res::List(v) if v.len() > 12 => format!(
            "[{} ... {}] ({} elements)",
            v[..4]
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            v[v.len() - 4..]
                .iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" "),
            v.len()
        ),
        Res::List(v) => format!(
            "[{}]",
            v.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Writes a history as JSON lines.
pub fn write_jsonl(path: &Path, ops: &[Op]) -> anyhow::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in ops {
        serde_json::to_writer(&mut f, op)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    Ok(())
}

/// Reads a history written by [`write_jsonl`].
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Op>> {
    let f = std::io::BufReader::new(std::fs::File::open(path)?);
    let mut ops = Vec::new();
    for (n, line) in f.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), n + 1))?;
        ops.push(op);
    }
    Ok(ops)
}
