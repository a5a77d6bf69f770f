//! `loglevel`: CONFIG SET (or a configuration file) changes how much the
//! server logs, as in Redis. The binary owns the log subscriber, so it
//! hands the engine a function that swaps the filter ([`on_change`]);
//! without one (tests, `RUST_LOG` given) the parameter is only stored.

use std::sync::OnceLock;

type Apply = Box<dyn Fn(&str) + Send + Sync>;

static APPLY: OnceLock<Apply> = OnceLock::new();

/// Registers the function that installs a log filter (`tracing` directive
/// syntax); the first registration stays.
pub fn on_change(apply: impl Fn(&str) + Send + Sync + 'static) {
    let _ = APPLY.set(Box::new(apply));
}

/// The log filter for one of Redis' levels: `notice`, Redis' default, is
/// memlog's `info`; `verbose` adds memlog's own debug messages, `debug`
/// every crate's.
pub fn filter_for(level: &str) -> &'static str {
    match level {
        "debug" => "debug",
        "verbose" => "info,memlog=debug,memlog_engine=debug,memlog_txlog=debug",
        "warning" => "warn",
        _ => "info",
    }
}

/// Applies `loglevel` (already validated by CONFIG SET).
pub fn set(level: &str) {
    if let Some(apply) = APPLY.get() {
        apply(filter_for(level));
    }
}
