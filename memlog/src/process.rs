//! What the server process does before it serves, as redis-server does it
//! from its configuration: detach from the terminal (`daemonize yes`),
//! write its pid to `pidfile` (removed again at SHUTDOWN), and write its
//! log to `logfile` instead of stderr. Nothing here is on the write path;
//! the directives are also kept in the engine's configuration, so CONFIG
//! GET shows them.

use anyhow::Context;
use memlog_engine::config_file::Directive;
use std::path::{Path, PathBuf};

/// The process settings of a server's configuration (the last directive of
/// each name wins, as in Redis).
#[derive(Debug, Default)]
pub struct ProcessSettings {
    pub daemonize: bool,
    pub pidfile: Option<PathBuf>,
    pub logfile: Option<PathBuf>,
}

impl ProcessSettings {
    /// A relative `pidfile` or `logfile` is inside `dir` (the data
    /// directory), as Redis, which changes into `dir`, finds it.
    pub fn from_directives(directives: &[Directive], dir: &Path) -> anyhow::Result<Self> {
        let mut s = Self::default();
        for d in directives {
            let path = || {
                (!d.value().is_empty()).then(|| memlog_engine::config_file::in_dir(dir, &d.value()))
            };
            match d.name.as_str() {
                "daemonize" => {
                    s.daemonize = match d.value().to_ascii_lowercase().as_str() {
                        "yes" => true,
                        "no" => false,
                        _ => anyhow::bail!("{}: daemonize is yes or no", d.origin),
                    }
                }
                "pidfile" => s.pidfile = path(),
                "logfile" => s.logfile = path(),
                _ => {}
            }
        }
        Ok(s)
    }
}

/// Detaches from the terminal as Redis' daemonize(): the parent exits at
/// once with success, the child leads a new session with its standard
/// streams on /dev/null. Must run before any thread starts (fork copies
/// only the calling thread).
#[cfg(unix)]
pub fn daemonize() -> anyhow::Result<()> {
    // SAFETY: no other thread exists yet (called first thing in main), so
    // the child is a consistent copy; the parent only calls _exit.
    match unsafe { libc::fork() } {
        -1 => return Err(std::io::Error::last_os_error()).context("fork"),
        0 => {}
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: plain system calls on descriptors this process owns.
    unsafe {
        libc::setsid();
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(())
}

#[cfg(not(unix))]
pub fn daemonize() -> anyhow::Result<()> {
    anyhow::bail!("daemonize is only supported on Unix")
}

/// The pid file while the server runs: removed when dropped, at the end of
/// a SHUTDOWN (a killed process leaves it, as Redis does).
#[derive(Debug)]
pub struct PidFile(PathBuf);

impl PidFile {
    /// Writes this process' pid to `path`. As Redis, a pid file that cannot
    /// be written is only a warning.
    pub fn create(path: &Path) -> Option<Self> {
        match std::fs::write(path, format!("{}\n", std::process::id())) {
            Ok(()) => Some(Self(path.to_path_buf())),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "failed to write the pid file");
                None
            }
        }
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Logs to `logfile` (appended to), or to stderr without one. `RUST_LOG`
/// filters when given; otherwise `loglevel` does (`info`, Redis' `notice`,
/// until a directive or CONFIG SET changes it).
pub fn init_logging(logfile: Option<&Path>) -> anyhow::Result<()> {
    use tracing_subscriber::fmt::writer::BoxMakeWriter;
    use tracing_subscriber::prelude::*;
    use tracing_subscriber::{fmt, reload, EnvFilter};
    let (writer, ansi) = match logfile {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening the log file {}", path.display()))?;
            (BoxMakeWriter::new(std::sync::Mutex::new(file)), false)
        }
        None => (BoxMakeWriter::new(std::io::stderr), true),
    };
    match EnvFilter::try_from_default_env() {
        Ok(fixed) => tracing_subscriber::registry()
            .with(fixed)
            .with(fmt::layer().with_writer(writer).with_ansi(ansi))
            .init(),
        Err(_) => {
            let (filter, handle) = reload::Layer::new(EnvFilter::new(
                memlog_engine::log_level::filter_for("notice"),
            ));
            tracing_subscriber::registry()
                .with(filter)
                .with(fmt::layer().with_writer(writer).with_ansi(ansi))
                .init();
            memlog_engine::log_level::on_change(move |directives| {
                let _ = handle.reload(EnvFilter::new(directives));
            });
        }
    }
    Ok(())
}
