//! memlog's in-memory Redis engine.
//!
//! The write path, as far as this crate goes: a connection task parses
//! requests ([`resp`]), the [`engine::Engine`] executes them against the
//! [`keyspace`] under one short lock per batch, and every mutation leaves a
//! deterministic effect record ([`effect`]) for the transaction log. Replies
//! are encoded straight into the connection's buffer. With the durable path
//! on ([`durable`]), the log client appends the records to the transaction
//! log, the hazard tracker ([`tracker`]) parks every reply that depends on
//! an unacknowledged record, and [`snapshot`] stores the data set as of a
//! log position.

pub mod busy;
pub mod client;
pub mod client_stream;
pub mod command;
pub mod config;
pub mod config_file;
pub mod connection;
pub mod digest;
pub mod durable;
pub mod effect;
pub mod engine;
pub mod error;
pub mod functions;
pub mod geohash;
pub mod glob;
pub mod hyperloglog;
pub mod keyspace;
pub mod latency;
pub mod listpack;
pub mod log_level;
pub mod long_double;
pub mod lzf;
pub mod maxmemory;
pub mod monitor;
pub mod numbers;
pub mod oom_score;
pub mod output_limit;
pub mod pubsub;
pub mod rdb;
pub mod rdb_stream;
pub mod redact;
pub mod resp;
pub mod script;
pub mod script_json;
pub mod script_lib;
pub mod script_msgpack;
pub mod script_struct;
pub mod server;
pub mod short_timer;
pub mod slowlog;
pub mod snapshot;
pub mod stats;
pub mod tracker;
pub mod tracking;

pub use engine::{Ctx, Engine, EngineOptions};
pub use error::{CmdError, CmdResult};
pub use server::ServerConfig;

/// The Redis version memlog is compatible with (INFO, HELLO).
pub const REDIS_VERSION: &str = "7.0.15";
