//! Counters behind INFO stats, commandstats and errorstats.

use std::collections::BTreeMap;

/// Per-command counters (INFO commandstats).
#[derive(Debug, Default, Clone)]
pub struct CommandStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
}

/// Server-wide counters.
#[derive(Debug, Default)]
pub struct Stats {
    pub total_commands_processed: u64,
    pub total_connections_received: u64,
    pub rejected_connections: u64,
    pub blocked_total: u64,
    pub total_error_replies: u64,
    /// Acknowledged DATA appends of the log client, and the effect records
    /// they carried (records / appends = group commit size).
    pub log_appends: u64,
    pub log_records: u64,
    /// Failovers of the log the log client rode out by resending what was
    /// not committed, and rebuilds of the data set after failed appends.
    pub log_resumes: u64,
    pub log_rebuilds: u64,
    /// SAVE / BGSAVE snapshots requested and not yet finished, written, and
    /// whether the last one to finish failed (INFO persistence
    /// `rdb_bgsave_in_progress`, `rdb_saves`, `rdb_last_bgsave_status`).
    pub snapshots_pending: u64,
    pub snapshots_saved: u64,
    pub snapshot_failed: bool,
    /// Hashed, not ordered: it is updated on every command; INFO sorts.
    pub commands: hashbrown::HashMap<&'static str, CommandStat>,
    /// Error replies by code (`ERR`, `WRONGTYPE`, ...).
    pub errors: BTreeMap<String, u64>,
}

impl Stats {
    pub fn count_call(&mut self, name: &'static str, usec: u64, failed: bool) {
        self.total_commands_processed += 1;
        let s = self.commands.entry(name).or_default();
        s.calls += 1;
        s.usec += usec;
        if failed {
            s.failed_calls += 1;
        }
    }

    pub fn count_rejected(&mut self, name: &'static str) {
        self.commands.entry(name).or_default().rejected_calls += 1;
    }

    /// Counts an error reply by its code (the first word).
    pub fn count_error(&mut self, msg: &str) {
        self.total_error_replies += 1;
        let code = msg.split(' ').next().unwrap_or("ERR");
        // Redis caps distinct error codes at 128 to bound memory.
        if self.errors.len() < 128 || self.errors.contains_key(code) {
            *self.errors.entry(code.to_string()).or_insert(0) += 1;
        }
    }

    pub fn reset(&mut self) {
        let conns = self.total_connections_received;
        *self = Stats::default();
        self.total_connections_received = conns;
    }
}
