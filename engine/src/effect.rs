//! Deterministic effects: what every mutation sends to the transaction log.
//!
//! A command's effect is the command rewritten so that replaying it anywhere
//! gives the same data set (SPOP → SREM, EXPIRE → PEXPIREAT, INCRBYFLOAT →
//! SET KEEPTTL, lazy expiry → DEL). Handlers that change data either call
//! `Keyspace::propagate` with their rewritten form, or, by default, their own
//! argument vector is recorded when they changed something. A record is one
//! atomic unit: a single command, or a whole MULTI/EXEC. Records get dense
//! sequence numbers; the durable write path (log client and hazard tracker)
//! maps them to log LSNs. `Engine::apply_effect` is the one replay path for
//! replicas, recovery and the snapshotter.

use bytes::Bytes;
pub use memlog_proto::effect::{EffectBatch, EffectCommand, EffectRecord};

/// Bumped whenever the meaning of an effect changes.
pub const ENGINE_VERSION: u32 = 1;

/// The most a write (one command, or the queued writes of a MULTI) may send
/// to the log, as bounded by [`command_size_bound`]: bigger ones are refused
/// before they run, as one record must fit one append the log takes (with
/// the smaller records the log client packs beside it). A handler whose
/// effect outgrows its arguments (SPOP with a count, SORT ... STORE) is not
/// caught here; the log refuses that append and the server rebuilds its data
/// set from the log, which undoes it.
pub const MAX_WRITE_BYTES: usize = 32 * 1024 * 1024;

const _: () = assert!(
    MAX_WRITE_BYTES + 2 * crate::durable::MAX_APPEND_BYTES
        <= memlog_txlog::types::MAX_APPEND_PAYLOAD_BYTES
);

/// [`command_size_bound`] of every command of a record.
fn commands_size_bound(commands: &[EffectCommand]) -> usize {
    commands.iter().map(|c| command_size_bound(&c.argv)).sum()
}

/// An upper bound on the encoded size of the effect command `argv` (each
/// argument with its field tag and length, plus the command's own framing).
pub fn command_size_bound(argv: &[Bytes]) -> usize {
    argv.iter().map(|a| a.len() + 11).sum::<usize>() + 16
}

/// Effects of the command (or transaction) being executed, and the finished
/// records waiting for the log client.
#[derive(Debug, Default)]
pub struct EffectLog {
    current: Vec<EffectCommand>,
    /// The running command recorded its effect explicitly.
    explicit: bool,
    /// Nesting depth of open records (EXEC opens one around its commands).
    depth: usize,
    /// Finished records, oldest first, when `capture` is on.
    records: Vec<(u64, EffectRecord)>,
    /// Their size, about (see [`command_size_bound`]).
    records_bytes: usize,
    /// Sequence number of the last finished record.
    pub last_seq: u64,
    /// Keep finished records for a consumer (log client, tests); when off
    /// they are counted and dropped.
    pub capture: bool,
}

impl EffectLog {
    /// Opens a record; nested opens join the outer one.
    pub fn begin_record(&mut self) {
        self.depth += 1;
    }

    /// Closes a record; returns its sequence number if it holds effects.
    pub fn end_record(&mut self) -> Option<u64> {
        self.depth = self.depth.saturating_sub(1);
        if self.depth > 0 || self.current.is_empty() {
            return None;
        }
        self.last_seq += 1;
        let commands = std::mem::take(&mut self.current);
        if self.capture {
            self.records_bytes += commands_size_bound(&commands);
            self.records.push((
                self.last_seq,
                EffectRecord {
                    engine_version: ENGINE_VERSION,
                    commands,
                },
            ));
        }
        Some(self.last_seq)
    }

    /// Throws away the open record (a command panicked while it was open):
    /// nothing of it goes to the log, and the next command opens a new one.
    pub fn abandon_record(&mut self) {
        self.depth = 0;
        self.current.clear();
        self.explicit = false;
    }

    /// Called before each command runs.
    pub fn begin_command(&mut self) {
        self.explicit = false;
    }

    /// Called after each command: if it changed data and recorded nothing
    /// explicitly, its own argv is the effect.
    pub fn finish_command(&mut self, db: usize, argv: &[Bytes], changed: bool) {
        if changed && !self.explicit {
            self.push_command(db, argv.to_vec());
        }
    }

    /// Records an effect command (lazy-expiry DELs use this directly).
    pub fn push_command(&mut self, db: usize, argv: Vec<Bytes>) {
        self.current.push(EffectCommand {
            db: db as u32,
            argv,
        });
    }

    /// Records a handler's rewritten effect; suppresses the default.
    pub fn push_explicit(&mut self, db: usize, argv: Vec<Bytes>) {
        self.explicit = true;
        self.push_command(db, argv);
    }

    /// Marks the command as propagating nothing even though it changed data.
    pub fn suppress(&mut self) {
        self.explicit = true;
    }

    /// Takes the finished records.
    pub fn take_records(&mut self) -> Vec<(u64, EffectRecord)> {
        self.records_bytes = 0;
        std::mem::take(&mut self.records)
    }

    /// The oldest finished records, up to about `max_bytes` encoded (at
    /// least one).
    pub fn take_records_up_to(&mut self, max_bytes: usize) -> Vec<(u64, EffectRecord)> {
        let mut bytes = 0;
        let mut n = 0;
        for (_, r) in self.records.iter() {
            bytes += prost::Message::encoded_len(r) + 4;
            n += 1;
            if bytes >= max_bytes {
                break;
            }
        }
        if n == self.records.len() {
            return self.take_records();
        }
        let taken: Vec<_> = self.records.drain(..n).collect();
        let gone: usize = taken
            .iter()
            .map(|(_, r)| commands_size_bound(&r.commands))
            .sum();
        self.records_bytes = self.records_bytes.saturating_sub(gone);
        taken
    }

    /// Drops the finished records (a rebuild).
    pub fn clear_records(&mut self) {
        self.take_records();
    }

    /// Finished records not yet taken.
    pub fn records(&self) -> &[(u64, EffectRecord)] {
        &self.records
    }

    /// About how many bytes the finished records not yet taken hold.
    pub fn records_bytes(&self) -> usize {
        self.records_bytes
    }
}

/// Builds an argv from byte-ish pieces: `argv![b"SET", key, value]`.
#[macro_export]
macro_rules! argv {
    ($($x:expr),* $(,)?) => {
        vec![$(::bytes::Bytes::copy_from_slice(AsRef::<[u8]>::as_ref(&$x))),*]
    };
}
