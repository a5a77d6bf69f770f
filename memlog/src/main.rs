//! The `memlog` binary: one executable, one subcommand per role.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[cfg(not(target_env = "msvc"))]
mod allocator;
mod process;

#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: allocator::Allocator = allocator::Allocator::new();

#[derive(Parser)]
#[command(
    name = "memlog",
    version,
    about = "A durable, Redis-compatible in-memory database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve RESP (Redis protocol) clients.
    Server(ServerArgs),
    /// Run or administer the transaction log service.
    #[command(subcommand)]
    Txlog(memlog_txlog::cli::TxlogCommand),
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Addresses to listen on, separated by spaces as Redis' `bind`
    /// (`"127.0.0.1 -::1"`: a `-` skips an address the machine lacks).
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// TCP port for RESP clients.
    #[arg(long, default_value_t = 6379)]
    port: u16,
    /// Directory for the server's durable state.
    #[arg(long, default_value = "./data")]
    data_dir: std::path::PathBuf,
    /// Require clients to AUTH with this password.
    #[arg(long)]
    requirepass: Option<String>,
    /// Largest bulk string a client may send, in bytes.
    #[arg(long, default_value_t = 512 * 1024 * 1024)]
    proto_max_bulk_len: u64,
    /// Who may run DEBUG (which can freeze the server or make it rebuild its
    /// data set): `yes`, `no`, or `local` (clients on loopback).
    #[arg(long, default_value = "local", value_parser = ["yes", "no", "local"])]
    enable_debug_command: String,
    /// Number of logical databases (SELECT 0..N-1).
    #[arg(long, default_value_t = 16)]
    databases: usize,
    /// Transaction log cluster (comma-separated `host:port` of its nodes).
    /// Without it the server runs a single-node log in-process on
    /// `<data-dir>/txlog`.
    #[arg(long, conflicts_with = "in_memory")]
    txlog: Option<String>,
    /// Name of the log (shard) in the txlog cluster.
    #[arg(long, default_value = memlog_engine::server::DEFAULT_LOG)]
    log: String,
    /// Write lease in milliseconds: with no append acknowledged for this
    /// long the server stops answering until the log acknowledges again.
    #[arg(long, default_value_t = 2000)]
    lease_ms: u64,
    /// Persist nothing: no transaction log, replies are sent at once.
    #[arg(long)]
    in_memory: bool,
    /// Threads that run client connections (reading, parsing, writing
    /// replies) and the embedded log. The engine runs one command at a time
    /// either way, as Redis does; like Redis' `io-threads` the default is 1:
    /// on 2 cores, handing connections between two threads cost more than
    /// it gave (GET at pipeline 16: 0.8M/s with 1 thread, 0.6M with 2).
    /// With 1, everything runs on one current-thread runtime, which takes
    /// ready connections in the order they became ready, as Redis' event
    /// loop does (a multi-threaded runtime runs the newest woken task first).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    io_threads: u16,
    /// A redis.conf-style configuration file: one `name value ...`
    /// directive per line, applied as CONFIG SET at startup (CONFIG
    /// REWRITE writes the running configuration back into it). `port`,
    /// `bind`, `databases`, `dir`, `enable-debug-command` and `io-threads`
    /// there set those flags unless they are given.
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Configuration as redis-server takes it on its command line, after
    /// `--`: `memlog server -- --maxmemory 1gb --maxmemory-policy
    /// allkeys-lru`. Applied after the file's directives.
    #[arg(last = true, value_name = "--NAME VALUE")]
    options: Vec<String>,
    /// TEST ONLY, debug builds only: reply before the log acknowledges
    /// (breaks durability on purpose; see docs/jepsen.md).
    #[cfg(debug_assertions)]
    #[arg(long, hide = true)]
    unsafe_early_ack: bool,
}

/// Starts the thread that hands kept sled IO buffers back once writes stop
/// (see `allocator`). A plain thread: the allocator is no runtime's business.
#[cfg(not(target_env = "msvc"))]
fn release_idle_io_buffers() {
    let spawned = std::thread::Builder::new()
        .name("io-buffer-release".into())
        .spawn(|| {
            let mut seen = 0;
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                GLOBAL.release_if_idle(&mut seen);
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("not releasing idle IO buffers: {e}");
    }
}

fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches)?;
    let mut directives = Vec::new();
    let mut settings = process::ProcessSettings::default();
    if let Command::Server(args) = &mut cli.command {
        let given = |id: &str| {
            matches
                .subcommand_matches("server")
                .and_then(|m| m.value_source(id))
                == Some(clap::parser::ValueSource::CommandLine)
        };
        directives = startup_directives(args, given)?;
        settings = process::ProcessSettings::from_directives(&directives, &args.data_dir)?;
        // Before the pid and log files, which may be inside it (Redis
        // needs `dir` to exist too).
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating data directory {}", args.data_dir.display()))?;
    }
    // Before any thread exists: fork keeps only the calling one.
    if settings.daemonize {
        process::daemonize()?;
    }
    process::init_logging(settings.logfile.as_deref())?;
    // Dropped, and so removed, when the server ends.
    let _pidfile = settings
        .pidfile
        .as_deref()
        .and_then(process::PidFile::create);
    if let Command::Txlog(cmd) = &cli.command {
        if cmd.is_admin() {
            die_on_sigpipe();
        }
    }
    #[cfg(not(target_env = "msvc"))]
    release_idle_io_buffers();
    #[cfg(not(target_env = "msvc"))]
    memlog_engine::maxmemory::set_allocated_probe(|| GLOBAL.allocated_bytes());
    let mut builder = match &cli.command {
        // In order: a client's disconnect is seen before a command another
        // client sent after it (a PUBLISH then counts no stale subscriber).
        Command::Server(args) if args.io_threads == 1 => {
            tokio::runtime::Builder::new_current_thread()
        }
        Command::Server(args) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(usize::from(args.io_threads));
            b
        }
        // A node's Raft round is a chain of hand-offs between tasks; on one
        // thread none of them crosses threads (`memlog txlog --threads`).
        Command::Txlog(cmd) => match cmd.node_threads() {
            Some(1) => tokio::runtime::Builder::new_current_thread(),
            Some(n) => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                b.worker_threads(usize::from(n));
                b
            }
            // Admin commands are one client; `bench`'s appenders stand in
            // for the engine's log client, which runs on the server's one
            // thread. Measured (one appender, 2 cores, four alternations):
            // p50 451 against 502 us with two runtime threads, whose
            // hand-offs also took CPU from the three nodes.
            None => tokio::runtime::Builder::new_current_thread(),
        },
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Server(args) => {
                let config = memlog_engine::ServerConfig {
                    bind: args.bind,
                    port: args.port,
                    data_dir: args.data_dir,
                    requirepass: args.requirepass,
                    proto_max_bulk_len: args.proto_max_bulk_len,
                    enable_debug_command: args.enable_debug_command,
                    databases: args.databases,
                    durability: match (args.in_memory, args.txlog) {
                        (true, _) => memlog_engine::server::Durability::InMemory,
                        (false, Some(addrs)) => memlog_engine::server::Durability::Remote {
                            addrs,
                            log: args.log,
                        },
                        (false, None) => memlog_engine::server::Durability::Embedded,
                    },
                    lease: std::time::Duration::from_millis(args.lease_ms.max(50)),
                    config_file: args.config.map(|p| std::path::absolute(&p).unwrap_or(p)),
                    directives,
                    #[cfg(debug_assertions)]
                    unsafe_early_ack: args.unsafe_early_ack,
                    #[cfg(not(debug_assertions))]
                    unsafe_early_ack: false,
                };
                memlog_engine::server::run(config)
                    .await
                    .context("serving RESP")
            }
            Command::Txlog(cmd) => memlog_txlog::cli::run(cmd).await,
        }
    })
}

/// The configuration file's and the `--` options' directives, in order,
/// less the ones that set the server's own flags (`port`, `bind`,
/// `databases`, `dir`, `enable-debug-command`, `io-threads`): those go into
/// `args`, unless `given(flag)` says the flag was on the command line.
fn startup_directives(
    args: &mut ServerArgs,
    given: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<memlog_engine::config_file::Directive>> {
    use memlog_engine::config_file::{parse_file, parse_options};
    let mut all = Vec::new();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the configuration file {}", path.display()))?;
        all = parse_file(&text).with_context(|| format!("in {}", path.display()))?;
    }
    all.extend(parse_options(&args.options)?);
    let mut rest = Vec::new();
    for d in all {
        let one = || -> anyhow::Result<&str> {
            match d.args.as_slice() {
                [v] => Ok(v.as_str()),
                _ => anyhow::bail!("{}: '{}' takes one argument", d.origin, d.name),
            }
        };
        let number = |v: &str, max: u64| -> anyhow::Result<u64> {
            v.parse().ok().filter(|n| *n <= max).with_context(|| {
                format!(
                    "{}: '{}' needs a number up to {max}, not '{v}'",
                    d.origin, d.name
                )
            })
        };
        match d.name.as_str() {
            "port" if !given("port") => args.port = number(one()?, 65535)? as u16,
            // Redis' list of addresses (`bind 127.0.0.1 -::1`).
            "bind" if !given("bind") => args.bind = d.args.join(" "),
            "databases" if !given("databases") => {
                args.databases = number(one()?, i32::MAX as u64)? as usize;
            }
            "dir" if !given("data_dir") => args.data_dir = one()?.into(),
            "io-threads" if !given("io_threads") => {
                args.io_threads = number(one()?, 256)?.max(1) as u16;
            }
            "enable-debug-command" if !given("enable_debug_command") => {
                let v = one()?;
                if !matches!(v, "yes" | "no" | "local") {
                    anyhow::bail!("{}: enable-debug-command is yes, no or local", d.origin);
                }
                args.enable_debug_command = v.to_string();
            }
            "port" | "bind" | "databases" | "dir" | "io-threads" | "enable-debug-command" => {}
            // Flags the engine starts with; a directive would override them.
            "requirepass" if given("requirepass") => {}
            "proto-max-bulk-len" if given("proto_max_bulk_len") => {}
            _ => rest.push(d),
        }
    }
    Ok(memlog_engine::config_file::merge_save(rest))
}

/// Rust ignores SIGPIPE, so printing to a closed pipe (`memlog txlog status
/// | head -1`) panics. The admin commands are ordinary command-line tools:
/// they get the default action back and end quietly, as `ls | head` does.
/// (Servers and nodes keep ignoring it: a client that goes away must cost
/// them one connection, not the process.)
#[cfg(unix)]
fn die_on_sigpipe() {
    // SAFETY: called before any thread is started; SIG_DFL is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(not(unix))]
fn die_on_sigpipe() {}
