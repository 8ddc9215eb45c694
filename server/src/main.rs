//! `impact-connect`: serves the app on LEPTOS_SITE_ADDR with the database at DATABASE_URL.

use server::{config::Config, startup::Application, telemetry};

// Many long-lived event streams allocated among short-lived requests fragment glibc's heap, and
// what a burst of reconnecting subscribers frees is never handed back; mimalloc keeps the
// resident size close to what is live (see docs/BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let mut config = Config::from_env()?;
    // No provider configured: start the built-in provider simulator and connect to it over HTTP.
    let _simulator = if config.settings.provider_url.is_empty() {
        let addr = std::env::var("IMPACT_SIMULATOR_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
        let sim = simulator::Simulator::spawn(addr.parse()?).await?;
        config.settings.provider_url = sim.instance_url("default");
        // The built-in simulator is the one plain-http, loopback provider allowed by default.
        config.settings.outbound.allow(&sim.address().to_string())?;
        println!(
            "Provider simulator at {} (faults: PUT http://{}/sim/instances/default/faults)",
            config.settings.provider_url,
            sim.address()
        );
        Some(sim)
    } else {
        None
    };
    let app = Application::build(config).await?;
    println!("Impact Connect is running at http://{}", app.address());
    match &app.setup_link {
        Some(link) => println!("First start: create the first administrator at {link}"),
        None => println!("Sign in at http://{}/login", app.address()),
    }
    app.run_until_stopped().await
}
