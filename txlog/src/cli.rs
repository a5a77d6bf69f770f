//! `memlog txlog ...`: the command-line surface of the transaction log.

/// Subcommands of `memlog txlog`.
#[derive(Debug, clap::Subcommand)]
pub enum TxlogCommand {}

/// Runs one `memlog txlog` subcommand.
pub async fn run(cmd: TxlogCommand) -> anyhow::Result<()> {
    match cmd {}
}
