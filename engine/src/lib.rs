//! memlog's in-memory Redis engine.

pub mod server;

/// How `memlog server` is configured.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: String,
    pub port: u16,
    pub data_dir: std::path::PathBuf,
    pub requirepass: Option<String>,
    pub proto_max_bulk_len: u64,
    pub databases: usize,
}
