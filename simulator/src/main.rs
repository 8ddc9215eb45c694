//! `provider-sim`: the provider simulator on its own, at SIM_ADDR (default 127.0.0.1:3001).

use std::net::SocketAddr;

use anyhow::Context;
use simulator::Simulator;
use tracing_subscriber::EnvFilter;

const DEFAULT_ADDR: &str = "127.0.0.1:3001";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs to stderr; RUST_LOG overrides the default level.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let raw = std::env::var("SIM_ADDR").unwrap_or_else(|_| DEFAULT_ADDR.to_string());
    // A host name (localhost:3001) is accepted as well as an IP address.
    let addr = match raw.parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => tokio::net::lookup_host(&raw)
            .await
            .ok()
            .and_then(|mut addrs| addrs.next()),
    }
    .with_context(|| format!("SIM_ADDR={raw} is not an address like {DEFAULT_ADDR}"))?;
    let sim = Simulator::spawn(addr).await?;
    println!("Provider simulator listening on http://{}", sim.address());
    shutdown_signal().await;
    sim.stop().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM from a process manager.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
