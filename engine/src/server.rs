//! Accepts RESP clients.

pub async fn run(_config: crate::ServerConfig) -> anyhow::Result<()> {
    Err(anyhow::anyhow!("the RESP server is being written"))
}
