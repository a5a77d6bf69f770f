//! Command errors, each with the exact text Redis 7 replies with.

/// What a command handler returns when it refuses or fails; the dispatcher
/// writes it as a RESP error (`-` + the Display text).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR value is not an integer or out of range")]
    NotInteger,
    #[error("ERR value is not a valid float")]
    NotFloat,
    #[error("ERR syntax error")]
    Syntax,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR increment or decrement would overflow")]
    Overflow,
    #[error("ERR index out of range")]
    IndexOutOfRange,
    #[error("ERR wrong number of arguments for '{0}' command")]
    WrongArity(String),
    #[error("ERR timeout is not a float or out of range")]
    BadTimeout,
    #[error("ERR timeout is negative")]
    NegativeTimeout,
    #[error("ERR invalid expire time in '{0}' command")]
    InvalidExpire(String),
    #[error("ERR DB index is out of range")]
    DbIndexOutOfRange,
    #[error("ERR value is out of range, must be positive")]
    NotPositive,
    #[error("ERR unknown subcommand '{sub}'. Try {cmd} HELP.")]
    UnknownSubcommand { cmd: String, sub: String },
    /// Any other error; the text includes its code (`ERR ...`, `NOAUTH ...`).
    #[error("{0}")]
    Other(String),
    /// An error INFO errorstats already counted where it arose (a command a
    /// script ran): the reply says it, the stats do not count it twice.
    #[error("{0}")]
    Counted(String),
}

impl CmdError {
    /// Redis' unknown-subcommand error, with the name cut at 128 bytes as
    /// Redis' `%.128s` cuts it.
    pub fn unknown_subcommand(cmd: &str, sub: &[u8]) -> Self {
        CmdError::UnknownSubcommand {
            cmd: cmd.to_ascii_uppercase(),
            sub: String::from_utf8_lossy(&sub[..sub.len().min(128)]).into_owned(),
        }
    }

    /// An `ERR`-coded error.
    pub fn err(msg: impl AsRef<str>) -> Self {
        CmdError::Other(format!("ERR {}", msg.as_ref()))
    }

    /// An error with its own code, e.g. `CmdError::coded("NOAUTH", "Authentication required.")`.
    pub fn coded(code: &str, msg: impl AsRef<str>) -> Self {
        CmdError::Other(format!("{code} {}", msg.as_ref()))
    }

    /// The error code: the first word (`ERR`, `WRONGTYPE`, ...), for errorstats.
    pub fn code(&self) -> String {
        let s = self.to_string();
        s.split(' ').next().unwrap_or("ERR").to_string()
    }
}

pub type CmdResult = Result<(), CmdError>;
