//! Counters behind INFO stats, commandstats and errorstats.

use std::collections::BTreeMap;

/// A command as INFO commandstats and LATENCY HISTOGRAM name it: `get`,
/// or `config|get` for a container's subcommand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandName {
    pub name: &'static str,
    pub sub: Option<&'static str>,
}

impl std::fmt::Display for CommandName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.sub {
            Some(sub) => write!(f, "{}|{sub}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// Per-command counters (INFO commandstats).
#[derive(Debug, Default, Clone)]
pub struct CommandStat {
    pub calls: u64,
    /// Total time, in nanoseconds (INFO shows microseconds).
    pub nsec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
    /// Created by the first call while `latency-tracking` is on.
    pub latency: Option<Box<crate::latency::CommandHistogram>>,
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
    /// How long the last snapshot's capture held the engine, and how many
    /// captures there were (INFO stats `latest_fork_usec`, `total_forks`:
    /// Redis' fork is what its clients wait for).
    pub latest_capture_usec: u64,
    pub total_captures: u64,
    /// Effect bytes acknowledged by the log since the last snapshot's
    /// capture, and the size of the last snapshot written: what
    /// `auto-aof-rewrite-*` compare (Redis' `aof_current_size` less its
    /// base, and `aof_base_size`).
    pub log_bytes_since_snapshot: u64,
    pub snapshot_bytes: u64,
    /// Hashed, not ordered: it is updated on every command; INFO sorts.
    pub commands: hashbrown::HashMap<CommandName, CommandStat>,
    /// `latency-tracking`: keep a latency histogram per command.
    pub latency_tracking: bool,
    /// Error replies by code (`ERR`, `WRONGTYPE`, ...).
    pub errors: BTreeMap<String, u64>,
}

impl Stats {
    pub fn count_call(&mut self, name: CommandName, nsec: u64, failed: bool) {
        self.total_commands_processed += 1;
        let s = self.commands.entry(name).or_default();
        s.calls += 1;
        s.nsec += nsec;
        if failed {
            s.failed_calls += 1;
        }
        if self.latency_tracking {
            if s.latency.is_none() {
                s.latency = crate::latency::CommandHistogram::new().map(Box::new);
            }
            if let Some(h) = s.latency.as_mut() {
                h.record(nsec);
            }
        }
    }

    pub fn count_rejected(&mut self, name: CommandName) {
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
        let tracking = self.latency_tracking;
        *self = Stats::default();
        self.total_connections_received = conns;
        self.latency_tracking = tracking;
    }
}
