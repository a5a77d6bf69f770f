//! The snapshotter: loads the last snapshot, replays the transaction log
//! after it through the engine's `apply_effect`, and writes the new snapshot
//! to S3-compatible storage so the log can be trimmed.
//!
//! Nothing is built here yet: the snapshotter issue fills this crate.
