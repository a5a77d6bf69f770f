//! Shared fixtures for memlog's cross-crate tests: start real `memlog` and
//! `redis-server` processes on free loopback ports and stop them by PID.
